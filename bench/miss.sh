#!/usr/bin/env bash
# bench/miss.sh - the cache-miss path alone (issue 21's "first rough look", repeatable):
# every query a name nobody asked before, so every one goes upstream. Forward mode to the
# harness's authoritative server (NSD, a wildcard root zone: every name resolves, in one
# hop), the server under test on CPU 0, dnsperf and NSD sharing CPU 1. For each target:
# answers per second, average latency, queries lost, SERVFAILs (dnsperf's rcode count), and
# the server's CPU per answer. No RTT, no delegations: this isolates what each server
# spends per miss; bench/cold.sh measures recursion over a delegation tree with RTTs.
#   bench/miss.sh                      bulwark and the three resolver peers, 10 s each
#   TARGETS="bulwark unbound" DURATION=20 OUTSTANDING=500 bench/miss.sh
#   RATE=10000 bench/miss.sh           a fixed offered load (dnsperf -Q): CPU per answer
#                                      below saturation, less at the mercy of a busy machine
# BULWARK (the binary) and BENCH_WORKERS pass to bench/bulwark-bench.sh. Needs
# ../shared/bench; runs in its own network namespace (loopback only).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
. "$HERE/lib.sh"
bench_need_harness
bench_in_netns "$0" "$@"

TARGETS=${TARGETS:-bulwark unbound pdns-recursor kresd}
DURATION=${DURATION:-10}
OUTSTANDING=${OUTSTANDING:-500}
RATE=${RATE:-}
OUT=${OUT:-/dev/shm/bw-miss-$(date +%Y%m%d-%H%M%S)}
export BENCH_RUN=$OUT/run
mkdir -p "$BENCH_RUN"
cleanup() {
	for t in $TARGETS; do
		[[ $t == bulwark ]] || "$SHARED/peer.sh" "$t" stop >/dev/null 2>&1 || true
	done
	[[ -n ${BW_PID:-} ]] && kill "$BW_PID" 2>/dev/null
	"$SHARED/auth.sh" stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
}
trap cleanup EXIT

# a policy of one name, so the peers load the same kind of feed and it costs nothing
POLICY=$OUT/policy.rpz
printf '$TTL 300\n@ SOA ns. h. 1 3600 600 86400 300\n@ NS ns.\nblocked-probe.bench CNAME .\n' \
	> "$POLICY"
export POLICY_RPZ=$POLICY POLICY_DOMAINS= AUTH_ADDR=127.0.0.1 AUTH_PORT=5300
"$SHARED/auth.sh" start >/dev/null

# names nobody asked before: a fresh label per query, each run its own suffix
QUERIES=$OUT/queries.txt
awk -v n=$((DURATION * 200000)) -v s="$RANDOM$RANDOM" \
	'BEGIN { for (i = 0; i < n; i++) printf "m%d-%s.miss%d.com A\n", i, s, i % 97 }' > "$QUERIES"

# UDP datagrams the kernel dropped for a full receive buffer, any socket of the namespace
rcvbuf_errors() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ { print $6 }' /proc/net/snmp; }

wait_port() { # port pid
	for _ in $(seq 200); do
		kdig +short +timeout=1 +retry=0 -p "$1" @127.0.0.1 blocked-probe.bench A \
			>/dev/null 2>&1 && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

start_target() { # name -> sets PID, PORT
	case $1 in
	bulwark)
		PORT=5310
		mkdir -p "$BENCH_RUN/bulwark"
		RUNDIR=$BENCH_RUN/bulwark PORT=$PORT taskset -c 0 "$HERE/bulwark-bench.sh" \
			> "$BENCH_RUN/bulwark/stdout.log" 2>&1 &
		BW_PID=$!
		PID=$BW_PID ;;
	*)
		case $1 in unbound) PORT=5301 ;; pdns-recursor) PORT=5303 ;; kresd) PORT=5304 ;;
		*) echo "bench/miss.sh: unknown target $1" >&2; return 1 ;; esac
		PID=$(CPU=0 PORT=$PORT "$SHARED/peer.sh" "$1" start) ;;
	esac
	wait_port "$PORT" "$PID"
}

stop_target() {
	if [[ $1 == bulwark ]]; then
		kill "$BW_PID" 2>/dev/null; wait "$BW_PID" 2>/dev/null || true; BW_PID=
	else
		"$SHARED/peer.sh" "$1" stop >/dev/null 2>&1 || true
	fi
}

printf "target\tanswers_per_s\tavg_ms\tlost\tservfail\tcpu_us_per_answer\trcvbuf_drops\n" | tee "$OUT/miss.tsv"
hz=$(getconf CLK_TCK)
for t in $TARGETS; do
	if ! start_target "$t"; then
		echo "$t: did not start (see $BENCH_RUN)" >&2
		continue
	fi
	c0=$(bench_cpu_ticks "$PID") d0=$(rcvbuf_errors)
	taskset -c 1 dnsperf -s 127.0.0.1 -p "$PORT" -d "$QUERIES" -l "$DURATION" \
		-q "$OUTSTANDING" ${RATE:+-Q "$RATE"} -b 4096 -c 1 -t 5 > "$OUT/$t.dnsperf" 2>&1 || true
	c1=$(bench_cpu_ticks "$PID") d1=$(rcvbuf_errors)
	stop_target "$t"
	awk -v t="$t" -v cpu=$((c1 - c0)) -v hz="$hz" -v drops=$((d1 - d0)) '
		/Queries completed:/ { done = $3 }
		/Queries lost:/ { lost = $3 }
		/Queries per second:/ { qps = $4 }
		/Average Latency/ { sub(/s/, "", $4); avg = $4 * 1000 }
		/SERVFAIL/ { for (i = 1; i <= NF; i++) if ($i ~ /^SERVFAIL/) { sf = $(i + 1); sub(/\(.*/, "", sf) } }
		END { printf "%s\t%.0f\t%.1f\t%d\t%d\t%.1f\t%d\n", t, qps, avg, lost, sf, done ? cpu / hz * 1e6 / done : 0, drops }
	' "$OUT/$t.dnsperf" | tee -a "$OUT/miss.tsv"
done
echo "bench/miss.sh: results in $OUT"
