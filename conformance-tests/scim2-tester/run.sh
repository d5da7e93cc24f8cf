#!/usr/bin/env bash
# External conformance: the scim2-tester suite (PyPI) against the release
# build of scim-server on a fresh SQLite database with a fresh token.
# Fails when any check fails. Run from anywhere; ./scripts/test runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/scim2-tester/requirements.txt"

cargo build --release --quiet -p scim-server --manifest-path "$root/Cargo.toml"
bin="$root/target/release/scim-server"

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

db="sqlite://$work/scim.db"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port/scim/v2"
token="$("$bin" token create --database-url "$db" --tenant conformance --scope scim:write 2>/dev/null)"

"$bin" serve --database-url "$db" --bind "127.0.0.1:$port" --base-url "$base" >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

status=0
"$venv/bin/python" "$here/scim2-tester/run.py" "$base" "$token" || status=$?
if [ "$status" != 0 ]; then
  echo "--- server log (last 50 lines)"
  tail -n 50 "$work/server.log"
fi
exit "$status"
