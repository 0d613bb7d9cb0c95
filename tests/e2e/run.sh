#!/bin/bash
# tests/e2e/run.sh - run the end-to-end tests inside a private network namespace.
#
#   BULWARK=build/bulwark tests/e2e/run.sh [pytest args]     e.g. -k stale, -x, -v
#
# The fake internet (NSD on 127.53.0.x port 53) and the daemon only ever bind loopback
# addresses of a namespace made here with `unshare -n`, so nothing can reach or disturb
# the host's network. Needs root (CI runs as root); fails loudly otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

die() { echo "tests/e2e/run.sh: FAIL: $*" >&2; exit 1; }

if [ "${BULWARK_E2E_IN_NETNS:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || die "must run as root (it makes a network namespace with unshare -n)"
	command -v unshare >/dev/null || die "unshare (util-linux) not found"
	for tool in nsd nsd-checkconf ldns-keygen ldns-signzone ldns-verify-zone kdig dig dnsperf ip; do
		command -v "$tool" >/dev/null || die "$tool not found (make deps)"
	done
	/usr/bin/python3 -c 'import dns.edns, pytest, yaml' 2>/dev/null \
		|| die "/usr/bin/python3 lacks dnspython, pytest or PyYAML (python3-dnspython python3-pytest python3-yaml)"
	unshare -n -- true || die "unshare -n failed: cannot make a private network namespace"
	export BULWARK_E2E_IN_NETNS=1
	unshare -n -- "$here/run.sh" "$@" && rc=0 || rc=$?
	exit "$rc"
fi

ip link set lo up || die "cannot bring lo up in the new network namespace"
[ "$(ip -o link show | awk -F': ' '{print $2}')" = lo ] || die "not in a private network namespace"

cd "$root"
export BULWARK="${BULWARK:-build/bulwark}"
case "$BULWARK" in /*) ;; *) BULWARK="$root/$BULWARK" ;; esac
[ -x "$BULWARK" ] || echo "tests/e2e/run.sh: warning: $BULWARK does not exist; daemon tests will fail" >&2
export PYTHONDONTWRITEBYTECODE=1
# run the whole suite unless the arguments name test files or directories themselves
paths=()
for a in "$@"; do
	case "$a" in -*) continue ;; esac
	if [ -e "${a%%::*}" ]; then paths=(given); break; fi
done
[ ${#paths[@]} -gt 0 ] || set -- tests/e2e "$@"
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider "$@"
