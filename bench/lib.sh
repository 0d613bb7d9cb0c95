# bench/lib.sh - sourced by the bench scripts that drive Bulwark themselves (encrypted.sh,
# telemetry-rate.sh): SHARED must be set.

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
