#!/usr/bin/env bash
# bench/run.sh - `make bench`: runs ../shared/bench/run.sh with Bulwark beside the peers on
# the same inputs, then prints Bulwark's QPS as ratios to the best peer and to `limit`.
#   bench/run.sh                       full matrix: limit, the four peers, bulwark (3 reps)
#   BENCH_ARGS="--reps 1 --duration 5 --policies 1m" TARGETS="limit pdns-recursor" bench/run.sh
#   BENCH_GUARD=100 TARGETS="" bench/run.sh   Bulwark without and with 100 protected domains
#   BENCH_IXFR=0 bench/run.sh          skip the IXFR line (bench/ixfr.sh: 1k changes into a
#                                      1M-entry zone while queries flow), run after the matrix
#   then bench/encrypted.sh: DoT and DoH for Bulwark and dnsdist (REPS, DURATION; ENCRYPTED=0: none)
#   then bench/telemetry.sh and bench/telemetry-rate.sh: the query log's cost (privacy full
#   and blocked-only against telemetry off at full speed; full logging at fixed rates, is
#   every query in the log?) (TELEMETRY=0: none)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
if [[ ! -x $SHARED/run.sh ]]; then
	echo "bench: skipped: no benchmark harness at $SHARED (it lives in the shared/ folder beside the checkout)"
	exit 0
fi
"$SHARED/setup.sh"
TARGETS=${TARGETS:-limit unbound dnsdist pdns-recursor kresd}
OUT=${OUT:-/dev/shm/dnsbench/results/bulwark-$(date +%Y%m%d-%H%M%S)}
# BENCH_GUARD=N: Bulwark twice in the same run, without and with N protected domains
GUARDED=()
if (( ${BENCH_GUARD:-0} > 0 )); then
	GUARDED=("cmd:env BENCH_GUARD=$BENCH_GUARD $HERE/bulwark-bench.sh" port:5311
		"name:bulwark-guard$BENCH_GUARD")
fi
# shellcheck disable=SC2086
BENCH_GUARD=0 "$SHARED/run.sh" ${BENCH_ARGS:---reps 3} --out "$OUT" $TARGETS \
	"cmd:$HERE/bulwark-bench.sh" port:5310 name:bulwark "${GUARDED[@]}"
/usr/bin/python3 "$HERE/ratios.py" "$OUT/results.tsv"
# DoT and DoH, Bulwark beside dnsdist (the shared harness drives UDP only); ENCRYPTED=0 skips
if [[ ${ENCRYPTED:-1} != 0 ]]; then
	OUT=$OUT/encrypted "$HERE/encrypted.sh"
fi
if [[ ${TELEMETRY:-1} != 0 ]]; then
	echo "# the query log: privacy full / blocked-only against telemetry off, then full at fixed rates"
	OUT=$OUT/telemetry BENCH_ARGS="--reps 3 --duration 5 --policies 1m --mixes mixed" TARGETS="" \
		"$HERE/telemetry.sh"
	"$HERE/telemetry-rate.sh"
fi
if [[ ${BENCH_IXFR:-1} != 0 ]]; then
	echo "# IXFR: 1,000 changes into a 1M-entry RPZ zone from Knot DNS, under query load"
	"$HERE/ixfr.sh"
fi
