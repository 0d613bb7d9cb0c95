#!/usr/bin/env bash
# bulwark-bench.sh - starts Bulwark as a ../shared/bench `cmd:` target.
# The harness sets PORT AUTH_ADDR AUTH_PORT POLICY_RPZ POLICY_DOMAINS RUNDIR; this writes a
# config equivalent to the peers' (one worker, forward "." to the harness's authoritative
# server, no DNSSEC: the bench root is unsigned, the same RPZ zone the peers load as one
# feed) and execs the daemon so the harness measures its PID.
# BENCH_POLICY=domains loads the policy's domain-list form instead; BENCH_POLICY=probe
# loads only the harness's probe name (which it waits to see blocked): the no-policy
# baseline for "QPS with the policy within 5% of QPS without".
# BENCH_TELEMETRY=off (privacy none: counters only), full (privacy full: every query in
# the SQLite query log $RUNDIR/querylog.sqlite), blocked-only or anonymized (the same file),
# all with log level info so the telemetry counters land in $RUNDIR/stdout.log at exit;
# unset: the config's defaults (bench/telemetry.sh).
# BENCH_GUARD=N adds a guard: section protecting N domains (the first N of the Tranco top
# list in ../shared/data that are not public suffixes; synthetic names without it).
# BENCH_CLIENTS=N adds N named clients (bench/clients.sh): each with a ClientID and an
# address of 10.0.0.0/8, every 16th a /24 and every 64th an IPv6 /56 too, and one more
# for 127.0.0.1 (the harness's dnsperf) so every query finds its client.
# BENCH_ADMIN=PORT adds the dashboard's admin: listener on 127.0.0.1:PORT;
# BENCH_ADMIN_POLL=SECONDS also makes a viewer token and, while the daemon
# runs, fetches what the dashboard's pages show (status, series, top, feeds, alerts, the
# query log) every SECONDS (bench/dashboard.sh).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BULWARK=${BULWARK:-$HERE/../build/bulwark}
# state (the default query log, last good feed copies) in the run's folder, not the
# machine's /var/lib/bulwark: a query log left there by earlier runs grew with each of
# them and took the peak RSS along (issue 21)
mkdir -p "$RUNDIR/state"
cat > "$RUNDIR/bulwark.yaml" <<YAML
server:
  listen: [ { address: 127.0.0.1, port: $PORT } ]
  workers: ${BENCH_WORKERS:-1}
  state-dir: "$RUNDIR/state"
  control-socket: "$RUNDIR/control.sock"
resolver:
  mode: forward
  dnssec: false
  forward: [ "$AUTH_ADDR@$AUTH_PORT" ]
  qname-minimisation: false
  prefetch: false
cache: { size: 256M, max-ttl: 1d }
$(case ${BENCH_POLICY:-rpz} in
  rpz) printf 'policy:\n  feeds:\n    - { name: bench, category: malware, format: rpz, file: "%s" }\n' "$POLICY_RPZ" ;;
  domains) printf 'policy:\n  feeds:\n    - { name: bench, category: malware, format: domains, file: "%s" }\n' "$POLICY_DOMAINS" ;;
  probe) head -n1 "${POLICY_RPZ%.rpz}.probe" > "$RUNDIR/probe.domains"
         printf 'policy:\n  feeds:\n    - { name: bench, category: malware, format: domains, file: "%s" }\n' "$RUNDIR/probe.domains" ;;
esac)
  watch-interval: 0
$(case ${BENCH_TELEMETRY:-} in
  off) printf 'telemetry: { privacy: none }\nlog: { level: info }\n' ;;
  full|blocked-only|anonymized) printf 'telemetry: { privacy: %s, query-log: "%s" }\nlog: { level: info }\n' "$BENCH_TELEMETRY" "$RUNDIR/querylog.sqlite" ;;
  *) printf 'log: { level: warning }\n' ;;
esac)
$(if (( ${BENCH_GUARD:-0} > 0 )); then
  printf 'guard:\n  protected:\n'
  top=$HERE/../../shared/data/toplists/tranco-top10k_20250115.txt
  psl=/usr/share/publicsuffix/public_suffix_list.dat
  if [[ -r $top && -r $psl ]]; then
    grep -v '^#' "$top" | grep -vxFf <(grep -v '^//' "$psl" | grep .) | head -n "$BENCH_GUARD"
  else
    seq -f 'protected%g.org' 1 "$BENCH_GUARD"
  fi | sed 's/^/    - /'
fi)
$(if (( ${BENCH_CLIENTS:-0} > 0 )); then
  printf 'clients:\n  - { name: bench-host, match: [127.0.0.1], profile: default }\n'
  awk -v n="$BENCH_CLIENTS" 'BEGIN { for (i = 0; i < n; i++) {
    m = sprintf("\"id:c%08x%016x\", 10.%d.%d.%d", i, i * 2654435761, int(i / 65536) % 256,
                int(i / 256) % 256, i % 256)
    if (i % 16 == 0) m = m sprintf(", 10.200.%d.0/24", int(i / 16) % 256)
    if (i % 64 == 0) m = m sprintf(", \"2001:db8:%x:%x00::/56\"", int(i / 64) % 65536, i % 256)
    printf "  - { name: c%d, match: [%s], profile: default }\n", i, m } }'
fi)
$([[ -n ${BENCH_ADMIN:-} ]] && printf 'admin: { listen: "127.0.0.1@%s" }\n' "$BENCH_ADMIN")
YAML
if [[ -n ${BENCH_ADMIN:-} && -n ${BENCH_ADMIN_POLL:-} ]]; then
	mkdir -p "$RUNDIR/state"
	token=$("$(dirname "$BULWARK")/bulwarkctl" -c "$RUNDIR/bulwark.yaml" token create bench \
		--role viewer)
	daemon=$$ # the daemon's PID once exec below has run
	(
		api=http://127.0.0.1:$BENCH_ADMIN/api/v1
		urls=()
		for path in status "series?minutes=60" "top?n=10" feeds alerts \
			"querylog?verdict=blocked&limit=100"; do
			urls+=("$api/$path" -o /dev/null)
		done
		while kill -0 "$daemon" 2>/dev/null; do
			# one curl for the six, over one connection, like the browser's
			curl -s -H "Authorization: Bearer $token" "${urls[@]}" || true
			sleep "$BENCH_ADMIN_POLL"
		done
	) </dev/null >/dev/null 2>&1 &
fi
exec "$BULWARK" -f -c "$RUNDIR/bulwark.yaml"
