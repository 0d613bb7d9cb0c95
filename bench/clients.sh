#!/usr/bin/env bash
# bench/clients.sh - what named clients cost: Bulwark without clients and with 10,000 (each
# with a ClientID and an address, some networks; dnsperf's own address a client too, so
# every query is matched and its profile chosen through the client) on the same inputs,
# cache hits, then the QPS ratio per rep. Both targets run in the same harness run.
#   BENCH_ARGS="--reps 3 --duration 10 --policies 100k --mixes hits" bench/clients.sh
# Goal (issue 18): QPS with 10k clients >= 97% of QPS without.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
if [[ ! -x $SHARED/run.sh ]]; then
	echo "bench: skipped: no benchmark harness at $SHARED"
	exit 0
fi
"$SHARED/setup.sh"
OUT=${OUT:-/dev/shm/dnsbench/results/bulwark-clients-$(date +%Y%m%d-%H%M%S)}
export BENCH_RUN=${BENCH_RUN:-/dev/shm/dnsbench/run}
# shellcheck disable=SC2086
"$SHARED/run.sh" ${BENCH_ARGS:---reps 3 --mixes hits --policies 100k} --out "$OUT" \
	"cmd:env BENCH_CLIENTS=0 $HERE/bulwark-bench.sh" port:5320 name:bulwark-clients-0 \
	"cmd:env BENCH_CLIENTS=${CLIENTS:-10000} $HERE/bulwark-bench.sh" port:5321 name:bulwark-clients-10k
echo "== QPS (results: $OUT/results.tsv)"
awk -F'\t' 'NR > 1 && $4 ~ /^bulwark-clients/ { print $1, $2, $3, $4, $5, "lost=" $9 }' "$OUT/results.tsv"
awk -F'\t' 'NR > 1 && $4 == "bulwark-clients-0" { a[$1 FS $2 FS $3] = $5 }
	NR > 1 && $4 == "bulwark-clients-10k" { b[$1 FS $2 FS $3] = $5 }
	END { for (k in b) if (k in a) printf "rep/policy/mix %s: 10k clients / none = %.3f\n", k, b[k] / a[k] }' \
	"$OUT/results.tsv"
