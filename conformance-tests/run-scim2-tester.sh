#!/usr/bin/env bash
# Picked up by ./scripts/test: the scim2-tester suite against the release server.
exec bash "$(dirname "$0")/scim2-tester/run.sh" "$@"
