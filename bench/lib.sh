# bench/lib.sh - sourced by the bench scripts that drive Bulwark themselves or read what it
# left (encrypted.sh, telemetry.sh, telemetry-rate.sh, miss.sh, cold.sh, internet/net.sh):
# the functions that use SHARED need it set.

# The CPU time (user + system, in clock ticks: getconf CLK_TCK a second) process PID has
# used so far; 0 when it is gone.
bench_cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Exits 0 with one line when ../shared/bench (its authoritative server) is not there.
bench_need_harness() {
	if [[ ! -x $SHARED/auth.sh ]]; then
		echo "$(basename "$0"): skipped: no benchmark harness at $SHARED"
		exit 0
	fi
}

# Runs the calling script again, with the same arguments, in a network namespace of its
# own with only loopback up (bench traffic never leaves it); returns at once when already
# there. Usage: bench_in_netns "$0" "$@"
bench_in_netns() {
	if [[ -z ${BULWARK_BENCH_NETNS:-} ]]; then
		export BULWARK_BENCH_NETNS=1
		exec unshare -n -- bash -c 'ip link set lo up && exec "$0" "$@"' "$@"
	fi
}

# What a stopped run left in its query log's spool (telemetry.spool.stop-wait ran out) is
# imported by the next start: this is that start. Runs the daemon on RUNDIR/bulwark.yaml
# (its port must be free) until RUNDIR/querylog.sqlite-spool holds no segment, stops it,
# and prints the seconds that took ("0" when nothing was left). BULWARK: the binary.
bench_finish_log() {
	local dir=$1/querylog.sqlite-spool pid t0 i
	if ! compgen -G "$dir/*.seg" >/dev/null; then
		echo 0
		return
	fi
	t0=$(date +%s.%N)
	"${BULWARK:-$HERE/../build/bulwark}" -f -c "$1/bulwark.yaml" >> "$1/import.log" 2>&1 &
	pid=$!
	for ((i = 0; i < 6000; i++)); do
		compgen -G "$dir/*.seg" >/dev/null || break
		sleep 0.05
	done
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || true
	echo "$(date +%s.%N) - $t0" | bc
}

# The numbers of the daemon's last telemetry line in LOG, as "records ring_drops rows
# log_drops waiting".
bench_tlm_counts() {
	sed -n 's/.*telemetry: records \([0-9]*\), dropped \([0-9]*\) (rings full), query log rows \([0-9]*\) (dropped \([0-9]*\), pruned [0-9]*, waiting in the spool \([0-9]*\)).*/\1 \2 \3 \4 \5/p' \
		"$1" | tail -n1
}
