"""Runs the scim2-tester suite against a live SCIM server.

Usage: python run.py BASE_URL TOKEN

Prints one line per check and a closing line "N passed, N failed" (with
skipped), and exits non-zero when any check ends in ERROR or CRITICAL.
"""

import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

FAILING = {Status.ERROR, Status.CRITICAL}
SKIPPED = {Status.SKIPPED}


def main() -> int:
    base_url, token = sys.argv[1], sys.argv[2]
    http = httpx2.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    results = check_server(client, raise_exceptions=False)
    passed = failed = skipped = 0
    for r in results:
        where = f"[{r.resource_type}] " if r.resource_type else ""
        line = f"{r.status.name:<10} {where}{r.title}"
        if r.status in FAILING:
            failed += 1
            line += f"\n           reason: {r.reason}"
        elif r.status in SKIPPED:
            skipped += 1
            if r.reason:
                line += f"  ({r.reason})"
        else:
            passed += 1
        print(line)
    if not results:
        print("no check ran")
        return 1
    print(f"scim2-tester: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
