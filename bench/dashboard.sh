#!/usr/bin/env bash
# bench/dashboard.sh - what the dashboard costs: Bulwark without an admin: section, and with
# it and a client that fetches everything the dashboard's overview and query log show
# (status, series, top, feeds, alerts, 100 query-log rows) every POLL seconds (default 1:
# the dashboard itself refreshes every 30 s), on the same inputs, cache hits; the QPS ratio
# per rep. Both targets run in the same harness run.
#   BENCH_ARGS="--reps 3 --duration 10 --policies 100k --mixes hits" bench/dashboard.sh
# Goal (issue 16): QPS with the dashboard polling >= 97% of QPS without.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
if [[ ! -x $SHARED/run.sh ]]; then
	echo "bench: skipped: no benchmark harness at $SHARED"
	exit 0
fi
"$SHARED/setup.sh"
OUT=${OUT:-/dev/shm/dnsbench/results/bulwark-dashboard-$(date +%Y%m%d-%H%M%S)}
export BENCH_RUN=${BENCH_RUN:-/dev/shm/dnsbench/run}
# shellcheck disable=SC2086
"$SHARED/run.sh" ${BENCH_ARGS:---reps 3 --mixes hits --policies 100k} --out "$OUT" \
	"cmd:$HERE/bulwark-bench.sh" port:5330 name:bulwark-no-dashboard \
	"cmd:env BENCH_ADMIN=5380 BENCH_ADMIN_POLL=${POLL:-1} $HERE/bulwark-bench.sh" port:5331 \
	name:bulwark-dashboard
echo "== QPS (results: $OUT/results.tsv)"
awk -F'\t' 'NR > 1 && $4 ~ /^bulwark-/ { print $1, $2, $3, $4, $5, "lost=" $9 }' "$OUT/results.tsv"
awk -F'\t' 'NR > 1 && $4 == "bulwark-no-dashboard" { a[$1 FS $2 FS $3] = $5 }
	NR > 1 && $4 == "bulwark-dashboard" { b[$1 FS $2 FS $3] = $5 }
	END { for (k in b) if (k in a) printf "rep/policy/mix %s: polled dashboard / none = %.3f\n", k, b[k] / a[k] }' \
	"$OUT/results.tsv"
