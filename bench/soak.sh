#!/usr/bin/env bash
# bench/soak.sh - issue 20's soak: Bulwark for DURATION seconds (default 3600) at half the
# QPS it managed in a first 10 s run, with the changes a production resolver sees:
#   - an RPZ feed by zone transfer (Knot DNS primary, 100k names, TSIG) changed by a
#     dynamic update every 10 s (NOTIFY, IXFR, a policy delta each time);
#   - a local list feed rewritten every minute (the file watcher rebuilds the policy)
#     and a SIGHUP every minute (a whole reload);
#   - the query log on (privacy blocked-only), metrics on.
# Every minute it prints the minute's answered QPS, the p99 latency of a 5 s probe at
# 1,000 queries a second (dnsperf -v, beside the load), and the daemon's RSS; at the end,
# the load's lost queries and the RSS growth after the first 10 minutes (the goal: 0
# lost, growth <= 5%, p99 flat). Runs in its own network namespace (loopback only) and
# needs ../shared/bench's harness (the authoritative server and its data).
#   DURATION=3600 bench/soak.sh            results in $OUT (default /dev/shm/bw-soak-DATE)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
BENCH_DATA=${BENCH_DATA:-/dev/shm/dnsbench/data}
BULWARK=${BULWARK:-$HERE/../build/bulwark}
DURATION=${DURATION:-3600}

if [[ ! -x $SHARED/auth.sh ]]; then
	echo "bench/soak.sh: skipped: no benchmark harness at $SHARED"
	exit 0
fi
if [[ ! -f $BENCH_DATA/policy-100k.rpz || ! -f $BENCH_DATA/queries-mixed.txt ]]; then
	python3 "$SHARED/tools/gen_data.py" --out "$BENCH_DATA" >&2
fi
if [[ -z ${SOAK_IN_NETNS:-} ]]; then
	export SOAK_IN_NETNS=1
	exec unshare -n -- "$0" "$@"
fi
ip link set lo up
OUT=${OUT:-/dev/shm/bw-soak-$(date +%Y%m%d-%H%M%S)}
RUN=$OUT/run
mkdir -p "$RUN/knot" "$RUN/state"
cleanup() {
	[[ -n ${LOAD_PID:-} ]] && kill "$LOAD_PID" 2>/dev/null
	[[ -n ${BW_PID:-} ]] && kill "$BW_PID" 2>/dev/null
	[[ -n ${KNOT_PID:-} ]] && kill "$KNOT_PID" 2>/dev/null
	BENCH_RUN=$RUN "$SHARED/auth.sh" stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
}
trap cleanup EXIT
ZONE=rpz.bench
SECRET=$(printf 'soak-bench-secret-0123456789abcd' | base64)
cp "$BENCH_DATA/policy-100k.rpz" "$RUN/knot/$ZONE.zone"
cat > "$RUN/knot/knot.conf" <<EOF
server:
    rundir: $RUN/knot
    listen: 127.0.0.2@53
log:
  - target: $RUN/knot/knotd.log
    any: warning
database:
    storage: $RUN/knot
key:
  - id: soak
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: bulwark
    address: 127.0.0.1@5330
    via: 127.0.0.2
    key: soak
acl:
  - id: xfr
    key: soak
    action: [transfer, update]
zone:
  - domain: $ZONE
    file: $RUN/knot/$ZONE.zone
    storage: $RUN/knot
    acl: xfr
    notify: bulwark
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
EOF
taskset -c 1 chrt --idle 0 knotd -c "$RUN/knot/knot.conf" > "$RUN/knot/stdout.log" 2>&1 &
KNOT_PID=$!
BENCH_RUN=$RUN "$SHARED/auth.sh" start >/dev/null
printf 'soak-list-0.example\n' > "$RUN/list.domains"
cat > "$RUN/bulwark.yaml" <<EOF
server:
  listen: [ { address: 127.0.0.1, port: 5330 } ]
  workers: 1
  state-dir: $RUN/state
  user: root
resolver:
  mode: forward
  dnssec: false
  forward: [ "127.0.0.1@5300" ]
  qname-minimisation: false
  prefetch: false
cache: { size: 256M, max-ttl: 1d }
policy:
  watch-interval: 1s
  feeds:
    - name: soak-rpz
      category: malware
      format: rpz
      primaries: [ "127.0.0.2@53" ]
      zone: $ZONE
      tsig: { name: soak, algorithm: hmac-sha256, secret: "$SECRET" }
    - { name: soak-list, category: phishing, format: domains, file: "$RUN/list.domains" }
telemetry: { privacy: blocked-only, query-log: "$RUN/querylog.sqlite" }
metrics: { address: 127.0.0.1, port: 9330 }
clients-file: /dev/null
log: { level: info }
EOF
for i in $(seq 300); do
	kdig -p 53 @127.0.0.2 +short SOA $ZONE 2>/dev/null | grep -q . && break
	(( i < 300 )) || { echo "bench/soak.sh: knotd did not serve $ZONE" >&2; exit 1; }
	sleep 0.2
done
# not pinned: its worker pins itself, and a reload's rebuild may use the other CPU, as it
# would on a server (pinned whole to one CPU, every reload starved the worker)
"$BULWARK" -f -c "$RUN/bulwark.yaml" > "$RUN/bulwark.log" 2>&1 &
BW_PID=$!
probe=$(head -n1 "$BENCH_DATA/policy-100k.probe")
for i in $(seq 600); do
	kdig -p 5330 @127.0.0.1 +retry=0 +timeout=1 "$probe" A 2>/dev/null | grep -q NXDOMAIN && break
	kill -0 $BW_PID || { cat "$RUN/bulwark.log"; exit 1; }
	(( i < 600 )) || { echo "bench/soak.sh: the zone never loaded" >&2; exit 1; }
	sleep 0.2
done
Q=$BENCH_DATA/queries-mixed.txt
taskset -c 1 dnsperf -s 127.0.0.1 -p 5330 -d "$Q" -n 1 -q 500 >/dev/null   # warm the cache
max=$(taskset -c 1 dnsperf -s 127.0.0.1 -p 5330 -d "$Q" -l 10 -q 500 -c 1 |
	awk '/Queries per second/ { printf "%d", $4 }')
QPS=$((max / 2))
echo "soak: max $max QPS in 10 s; load $QPS QPS for $DURATION s; results in $OUT"
# -b 4096: dnsperf's own socket buffers (KB), as ../shared/bench sets them; with its default
# the answers it could not read in time were dropped by the kernel at its socket and
# counted as lost (the hour of 2026-12-06: 89,909 "lost", every one of them answered)
taskset -c 1 stdbuf -oL dnsperf -s 127.0.0.1 -p 5330 -d "$Q" -l "$DURATION" -Q "$QPS" -q 500 \
	-b 4096 -c 1 -S 60 -O suppress=timeout > "$OUT/load.txt" 2>&1 &
LOAD_PID=$!
rss() { awk '/VmRSS/ { print $2 }' "/proc/$BW_PID/status"; }
p99() {
	taskset -c 1 dnsperf -s 127.0.0.1 -p 5330 -d "$Q" -l 5 -Q 1000 -q 100 -c 1 -v \
		-O suppress=timeout 2>/dev/null |
		awk '/^> / { print $NF }' | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", v[int(NR * 0.99)] * 1000; else print "nan" }'
}
start=$(date +%s)
serial=0
# the daemon's own count, from its metrics: queries received, answers sent
counted() {
	curl -s http://127.0.0.1:9330/metrics | awk '
		/^bulwark_queries_total/ { q += $2 } /^bulwark_responses_total/ { a += $2 }
		END { printf "%d %d", q, a }'
}
printf "minute\tqps\tp99_ms\trss_kb\n" | tee "$OUT/minutes.tsv"
for ((m = 1; m * 60 <= DURATION; m++)); do
	# six IXFRs a minute: one name added and the previous one removed each time
	for ((k = 0; k < 6; k++)); do
		serial=$((serial + 1))
		{ echo "server 127.0.0.2 53"; echo "zone $ZONE."
		  echo "add soak-$serial.example.$ZONE. 300 CNAME ."
		  ((serial > 1)) && echo "del soak-$((serial - 1)).example.$ZONE. 300 CNAME ."
		  echo send; } | knsupdate -y "hmac-sha256:soak:$SECRET" 2>>"$OUT/knsupdate.err" || true
		if ((k == 0)); then
			printf 'soak-list-%d.example\nsoak-list-x%d.example\n' "$m" "$m" > "$RUN/list.new"
			mv "$RUN/list.new" "$RUN/list.domains"
		fi
		if ((k == 3)); then
			kill -HUP "$BW_PID"
		fi
		# paced by the clock, not by sleeps: the probe and the updates take time too,
		# and minute 60 must still be under the load
		left=$((start + (m - 1) * 60 + (k + 1) * 10 - $(date +%s)))
		((left > 0)) && sleep "$left"
		kill -0 "$BW_PID" || { echo "bench/soak.sh: bulwark died" >&2; tail "$RUN/bulwark.log"; exit 1; }
	done
	((m * 60 < DURATION)) && lat=$(p99) || lat=nan # the last minute's probe would outlive the load
	# dnsperf -S 60 prints "TIME: QPS" once a minute
	q=$(awk -F': ' '/^[0-9.]+: [0-9.]+$/ { v = $2 } END { printf "%d", v }' "$OUT/load.txt")
	printf "%d\t%s\t%s\t%s\n" "$m" "${q:-?}" "$lat" "$(rss)" | tee -a "$OUT/minutes.tsv"
done
wait "$LOAD_PID" || true
LOAD_PID=
grep -E "Queries (sent|completed|lost)" "$OUT/load.txt" | sed 's/^ */load: /'
# where anything lost was lost: the daemon's count (every query it read answered?) and the
# kernel's drops at full receive buffers in this namespace (the daemon's socket, dnsperf's)
read -r nq na <<<"$(counted)"
echo "daemon: $nq queries received, $na answers sent ($((nq - na)) unanswered)"
awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print "kernel: " $6 " UDP datagrams dropped at full receive buffers" }' \
	/proc/net/snmp
python3 - "$OUT/minutes.tsv" "$OUT/load.txt" <<'PY'
import re, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
rss = [int(r[3]) for r in rows]
p99 = [float(r[2]) for r in rows if r[2] != "nan"]
load = open(sys.argv[2]).read()
lost = int(re.search(r"Queries lost:\s+(\d+)", load).group(1))
base = rss[min(9, len(rss) - 1)]
growth = (rss[-1] - base) / base * 100 if base else float("nan")
print("soak: %d minutes, lost %d, RSS %d kB at minute %d -> %d kB at the end (%+.1f%%), "
      "p99 min %.2f / median %.2f / max %.2f ms"
      % (len(rows), lost, base, min(10, len(rss)), rss[-1], growth, min(p99),
         sorted(p99)[len(p99) // 2], max(p99)))
PY
