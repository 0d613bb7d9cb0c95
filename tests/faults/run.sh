#!/bin/bash
# tests/faults/run.sh - run the fault-injection suite inside a private network namespace.
#
#   BULWARK=build/bulwark tests/faults/run.sh [pytest args]
#   FAULTS_SHORT=1 tests/faults/run.sh      the short form CI runs (leaves out -m long)
#
# It is tests/e2e/run.sh (unshare -n, lo up, refuses to run elsewhere) pointed at this
# directory, with a higher open-file limit for the connection cases.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
args=()
[ "${FAULTS_SHORT:-0}" = 1 ] && args=(-m "not long")
cd "$root"
exec "$root/tests/e2e/run.sh" tests/faults --basetemp="${FAULTS_TMP:-/tmp/bulwark-faults-$(id -u)}" "${args[@]}" "$@"
