#!/usr/bin/env bash
# bench/telemetry.sh - the query log's cost: Bulwark with telemetry off (privacy none) and
# with every query logged (privacy full, SQLite) on the same inputs, then the QPS ratio and
# the query log's row count against the queries the daemon answered and the records it
# dropped (from the counters it logs at exit), once what the stop left in the query log's
# spool has been imported.
#   BENCH_ARGS="--reps 1 --duration 5 --policies 1m --mixes mixed" bench/telemetry.sh
# Goal (issue 6): QPS full >= 90% of QPS off, no dropped record, rows == queries.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
if [[ ! -x $SHARED/run.sh ]]; then
	echo "bench: skipped: no benchmark harness at $SHARED"
	exit 0
fi
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
"$SHARED/setup.sh"
OUT=${OUT:-/dev/shm/dnsbench/results/bulwark-telemetry-$(date +%Y%m%d-%H%M%S)}
export BENCH_RUN=${BENCH_RUN:-/dev/shm/dnsbench/run}
# shellcheck disable=SC2086
"$SHARED/run.sh" ${BENCH_ARGS:---reps 3 --mixes mixed --policies 1m} --out "$OUT" ${TARGETS:-} \
	"cmd:env BENCH_TELEMETRY=off $HERE/bulwark-bench.sh" port:5310 name:bulwark-tlm-off \
	"cmd:env BENCH_TELEMETRY=full $HERE/bulwark-bench.sh" port:5311 name:bulwark-tlm-full \
	"cmd:env BENCH_TELEMETRY=blocked-only $HERE/bulwark-bench.sh" port:5312 name:bulwark-tlm-blocked
echo "== QPS (results: $OUT/results.tsv)"
awk -F'\t' 'NR > 1 && $4 ~ /^bulwark-tlm/ { print $1, $2, $3, $4, $5, "lost=" $9 }' "$OUT/results.tsv"
awk -F'\t' 'NR > 1 && $4 == "bulwark-tlm-off" { off[$1 FS $2 FS $3] = $5 }
	NR > 1 && $4 == "bulwark-tlm-full" { full[$1 FS $2 FS $3] = $5 }
	NR > 1 && $4 == "bulwark-tlm-blocked" { blk[$1 FS $2 FS $3] = $5 }
	END { for (k in full) if (k in off) printf "rep/policy/mix %s: full/off = %.3f\n", k, full[k] / off[k]
	      for (k in blk) if (k in off) printf "rep/policy/mix %s: blocked-only/off = %.3f\n", k, blk[k] / off[k] }' \
	"$OUT/results.tsv"
# the last run of each logging target left its query log, its spool and its exit counters;
# what the stop left in the spool (telemetry.spool.stop-wait ran out) is imported by the
# next start, which bench_finish_log is
for target in bulwark-tlm-full bulwark-tlm-blocked; do
	RUNDIR=$BENCH_RUN/$target
	echo "== last $target run"
	grep -E "info: queries [0-9]+|telemetry: records" "$RUNDIR/stdout.log" | sed 's/^[^ ]* //'
	read -r records ring_drops rows_exit log_drops waiting < <(bench_tlm_counts "$RUNDIR/stdout.log")
	echo "records $records, dropped $((ring_drops + log_drops)), rows at exit $rows_exit," \
		"waiting in the spool $waiting"
	secs=$(BULWARK=${BULWARK:-$HERE/../build/bulwark} bench_finish_log "$RUNDIR")
	echo "next start imported the rest in ${secs} s; query log rows:" \
		"$(sqlite3 "$RUNDIR/querylog.sqlite" 'SELECT count(*) FROM queries')"
done
