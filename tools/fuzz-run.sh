#!/usr/bin/env bash
# fuzz-run.sh - runs libFuzzer targets one after another (make fuzz, make fuzz-long).
#
#   tools/fuzz-run.sh BUILD SECONDS MERGE TARGET...
#
# Each TARGET (BUILD/TARGET, built by the Makefile) runs for SECONDS, at nice FUZZ_NICE
# (default 15), on a work copy of its corpus (BUILD/work/TARGET: tests/fuzz/corpus/TARGET
# copied in, what earlier runs found kept). MERGE=1 then merges the work corpus into
# tests/fuzz/corpus/TARGET with -merge=1 -use_counters=0: only inputs that reach edges the
# repo's corpus does not are added (hit counts are not told apart, so the repo keeps few
# files; the work corpus keeps them all), none longer than FUZZ_MAX_LEN (default 4096). One table line per
# target from libFuzzer's final stats. A crash (or leak, timeout, out-of-memory) stops the
# run with the reproducer in BUILD/crashes/TARGET/ (FUZZ_KEEP_GOING=1: the next target
# still runs); exit status 1 when any target crashed.
set -uo pipefail
build=$1 secs=$2 merge=$3
shift 3
nice_lvl=${FUZZ_NICE:-15}
max_len=${FUZZ_MAX_LEN:-4096}
[[ -n $max_len ]] || max_len=4096
keep_going=${FUZZ_KEEP_GOING:-0}
[[ -n $nice_lvl ]] || nice_lvl=15
rows=()
failed=0

count() { find "$1" -maxdepth 1 -type f ! -name '.*' 2>/dev/null | wc -l; }

# the value of libFuzzer's final "stat::NAME: N" line
stat() { sed -n "s/^stat::$2: *//p" "$1" | tail -1; }

# cov: and ft: of the last status line ("#N DONE cov: 123 ft: 456 corp: ...")
covft() { grep -E '^#[0-9]+' "$1" | tail -1 | sed -n "s/.* $2: \([0-9]*\).*/\1/p"; }

table() {
	printf '%-16s %6s %12s %9s %7s %7s %15s %7s\n' target seconds executions exec/s cov ft \
		'corpus' crashes
	for r in "${rows[@]}"; do
		# shellcheck disable=SC2086
		printf '%-16s %6s %12s %9s %7s %7s %15s %7s\n' $r
	done
}

for t in "$@"; do
	bin=$build/$t repo=tests/fuzz/corpus/$t work=$build/work/$t crashes=$build/crashes/$t
	log=$build/$t.log
	mkdir -p "$work" "$crashes" "$repo"
	cp -n "$repo"/* "$work"/ 2>/dev/null
	before=$(count "$repo")
	echo "== fuzzing $t for ${secs}s (corpus: $before in the repo, $(count "$work") in $work)"
	nice -n "$nice_lvl" "$bin" -max_total_time="$secs" -max_len="$max_len" -timeout=20 \
		-rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
		"$work" >"$log" 2>&1
	rc=$?
	execs=$(stat "$log" number_of_executed_units) rate=$(stat "$log" average_exec_per_sec)
	cov=$(covft "$log" cov) ft=$(covft "$log" ft)
	ncrash=0
	if ((rc != 0)); then
		ncrash=1
		failed=1
		echo "!! $t: libFuzzer exited $rc; the end of $log:"
		grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
		tail -25 "$log"
		echo "!! reproducer(s): $(ls "$crashes"/* 2>/dev/null | tr '\n' ' ')"
		echo "!! replay: $build/$t REPRODUCER; once fixed, copy it to $repo/crash-<what>"
	fi
	after=$before
	if ((merge == 1 && rc == 0)); then
		# inputs over the cap came from the repo (libFuzzer makes none): not merged again
		find "$work" -maxdepth 1 -type f -size +"${max_len}"c -delete
		if ! nice -n "$nice_lvl" "$bin" -merge=1 -use_counters=0 -max_len="$max_len" -timeout=20 \
			-rss_limit_mb=2048 "$repo" "$work" >"$build/$t.merge.log" 2>&1; then
			echo "!! $t: merge failed, see $build/$t.merge.log"
			failed=1
		fi
		after=$(count "$repo")
	fi
	rows+=("$t ${secs} ${execs:-?} ${rate:-?} ${cov:-?} ${ft:-?} $before->$after $ncrash")
	if ((rc != 0 && keep_going != 1)); then
		table
		exit 1
	fi
done
table
exit $failed
