#!/usr/bin/env bash
# bench/telemetry-rate.sh - how fast Bulwark can answer while the query log keeps every
# query: privacy `full`, the worker and the telemetry thread on CPU 0 (dnsperf and the
# harness's authoritative server on CPU 1), dnsperf at fixed rates. For each rate: a warm-up
# pass over the query set at 20,000 QPS, then DURATION s at the rate; at exit the daemon's
# own counters; then what the stop left in the query log's spool is imported by starting
# the daemon again (import_s: how long that took), and the row count of its SQLite file is
# compared with the queries dnsperf sent.
# A rate is kept whole when nothing was lost, no record was dropped and rows = queries sent.
#   bench/telemetry-rate.sh            RATES="50000 100000 150000 200000" DURATION=10
# Needs the bench data (../shared/bench generates it into $BENCH_DATA).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
BENCH_DATA=${BENCH_DATA:-/dev/shm/dnsbench/data}
RATES=${RATES:-50000 100000 150000 200000}
DURATION=${DURATION:-10}
POLICY=${POLICY:-1m}
MIX=${MIX:-mixed}

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_need_harness
bench_in_netns "$0" "$@"
QUERIES=$BENCH_DATA/queries-$MIX.txt
export POLICY_RPZ=$BENCH_DATA/policy-$POLICY.rpz POLICY_DOMAINS=$BENCH_DATA/policy-$POLICY.domains
for f in "$QUERIES" "$POLICY_RPZ"; do
	[[ -f $f ]] || { echo "missing $f: run make bench (or ../shared/bench/run.sh) once" >&2; exit 1; }
done
PROBE=$(head -n1 "$BENCH_DATA/policy-$POLICY.probe")
WORK=$(mktemp -d /dev/shm/bw-tlm-rate.XXXXXX)
export BENCH_RUN=$WORK PORT=5310 AUTH_ADDR=127.0.0.1 AUTH_PORT=5300 BENCH_TELEMETRY=full
T_PID=""
cleanup() {
	[[ -n $T_PID ]] && kill -TERM "$T_PID" 2>/dev/null || true
	"$SHARED/auth.sh" stop >/dev/null 2>&1 || true
	[[ -n ${TLM_KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
"$SHARED/auth.sh" start >/dev/null

sent_of() { awk '/Queries sent:/ { print $3 }' "$1"; }
lost_of() { awk '/Queries lost:/ { print $3 }' "$1"; }

printf '%-8s %-9s %-6s %-9s %-9s %-8s %-9s %-9s %-8s %-9s %s\n' rate sent lost answered records \
	dropped rows@exit waiting import_s rows whole
for rate in $RATES; do
	export RUNDIR=$WORK/r$rate
	rm -rf "$RUNDIR" # a fresh query log for each run (a rate may be given twice)
	mkdir -p "$RUNDIR"
	taskset -c 0 "$HERE/bulwark-bench.sh" > "$RUNDIR/stdout.log" 2>&1 &
	T_PID=$!
	probes=0 tries=0 # probes: the ones answered (each is a query the log must have)
	while :; do
		out=$(kdig -p "$PORT" @127.0.0.1 +retry=0 +timeout=1 "$PROBE" A 2>/dev/null || true)
		[[ $out == *"status: "* ]] && probes=$((probes + 1))
		[[ $out == *"status: NXDOMAIN"* ]] && break
		kill -0 "$T_PID" 2>/dev/null || { cat "$RUNDIR/stdout.log" >&2; exit 1; }
		(( ++tries < 600 )) || { echo "bench/telemetry-rate.sh: the policy never loaded" >&2; exit 1; }
		sleep 0.1
	done
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$QUERIES" -n 1 -q 200 -Q 20000 -c 1 -T 1 \
		> "$RUNDIR/warm.txt" 2>&1
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$QUERIES" -l "$DURATION" -q 200 -Q "$rate" \
		-c 1 -T 1 > "$RUNDIR/run.txt" 2>&1
	kill -TERM "$T_PID"
	wait "$T_PID" || true
	T_PID=""
	sent=$(( $(sent_of "$RUNDIR/warm.txt") + $(sent_of "$RUNDIR/run.txt") + probes ))
	lost=$(( $(lost_of "$RUNDIR/warm.txt") + $(lost_of "$RUNDIR/run.txt") ))
	answered=$(sed -n 's/.*info: queries \([0-9]*\) .*/\1/p' "$RUNDIR/stdout.log" | tail -n1)
	read -r records ring_drops rows_exit log_drops waiting < <(bench_tlm_counts "$RUNDIR/stdout.log")
	dropped=$((ring_drops + log_drops))
	import_s=$(bench_finish_log "$RUNDIR") # what the stop left in the spool: the next start
	rows=$(sqlite3 "$RUNDIR/querylog.sqlite" 'SELECT count(*) FROM queries')
	whole=no
	[[ $lost == 0 && $dropped == 0 && $rows == "$sent" ]] && whole=yes
	printf '%-8s %-9s %-6s %-9s %-9s %-8s %-9s %-9s %-8s %-9s %s\n' "$rate" "$sent" "$lost" \
		"$answered" "$records" "$dropped" "$rows_exit" "$waiting" "$import_s" "$rows" "$whole"
done
