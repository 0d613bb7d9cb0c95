#!/usr/bin/env bash
# packaged-config.sh - the config an install ships (/etc/bulwark/bulwark.yaml), made from
# the checkout's etc/bulwark.yaml at build time so that there is one file to keep: port 53
# on 127.0.0.1 and ::1, state in /var/lib/bulwark, the control socket in /run/bulwark (the
# unit's StateDirectory and RuntimeDirectory). Everything else (feeds, profiles, comments)
# is the shipped file's. Fails when a line it rewrites is no longer there.
#   packaged-config.sh etc/bulwark.yaml /etc/bulwark/bulwark.yaml > build/bulwark.yaml
set -euo pipefail
src=$1 path=$2
out=$(sed \
	-e "1s|^# etc/bulwark.yaml - the default Bulwark configuration.|# $path - the Bulwark configuration (installed by the package).|" \
	-e "s|bulwark --check-config etc/bulwark.yaml|bulwark --check-config $path|" \
	-e 's|^  # Addresses and ports to answer DNS on (UDP and TCP). Port 5353 needs no root; a$|  # Addresses and ports to answer DNS on (UDP and TCP): this machine only, on port 53.\n  # To serve the network, add the address the network reaches this machine on, e.g.\n  #   - { address: 192.0.2.10, port: 53, transport: dns }\n  # then `systemctl restart bulwark` (access-control below says who may ask).|' \
	-e '/^  # production resolver listens on port 53 (see docs\/config.md).$/d' \
	-e 's|^    - { address: 127.0.0.1, port: 5353, transport: dns }$|    - { address: 127.0.0.1, port: 53, transport: dns }|' \
	-e 's|^    # IPv6 loopback; enable it where the machine has ::1 configured:$|    # IPv6 loopback (comment it out where the machine has no ::1):|' \
	-e 's|^    # - { address: "::1", port: 5353, transport: dns }$|    - { address: "::1", port: 53, transport: dns }|' \
	-e 's|^  # restart are kept (relative to this file; a production install uses /var/lib/bulwark).$|  # restart are kept (systemd creates it for the bulwark user: StateDirectory=).|' \
	-e 's|^  state-dir: ../state$|  state-dir: /var/lib/bulwark\n\n  # bulwarkctl talks to the daemon here (systemd creates /run/bulwark: RuntimeDirectory=).\n  control-socket: /run/bulwark/control.sock|' \
	"$src")
# every rewrite above must have happened: a changed etc/bulwark.yaml needs this script too
for want in "^# $path - " "port: 53, transport: dns }" '"::1", port: 53' \
	'^  state-dir: /var/lib/bulwark$' '^  control-socket: /run/bulwark/control.sock$' \
	'this machine only, on port 53' 'StateDirectory='; do
	grep -q -- "$want" <<<"$out" || { echo "packaged-config.sh: $src: no line for '$want'" >&2; exit 1; }
done
printf '%s\n' "$out"
