#!/usr/bin/env bash
# bench/cold.sh - the cold-cache benchmark (issue 21): Bulwark in recursive mode and the
# peers (Unbound, PowerDNS Recursor, Knot Resolver), each starting with an empty cache,
# resolve the same top-list-shaped query stream over the benchmark internet
# (bench/internet: root, TLDs and 30k second-level zones behind per-address RTTs, loss and
# dead servers; the root, the TLDs and a tenth of the sites signed). Every target validates
# DNSSEC with the generated root's DS as its only trust anchor ($NET/root.key), QNAME
# minimisation and prefetch off. Everything runs in a network namespace of its own.
#   bench/cold.sh                         every target, 20 s per run
#   DURATION=10 TARGETS="bulwark unbound" bench/cold.sh
# env: DURATION (20 s per run), TARGETS (bulwark unbound pdns-recursor kresd), RATE (the
#      fixed offered load, 1000 queries/s), SAT_Q (queries outstanding at saturation, 2000),
#      SAT_REPS (saturation runs per target, 3),
#      NET (the generated internet, kept between runs: /dev/shm/bw-internet; ZONES, QUERIES,
#      TOPLIST, SEED as bench/internet/net.sh), OUT (results: /dev/shm/bw-cold-DATE),
#      BULWARK (build/bulwark), BULWARK_UB_OPTS ("name: value;..." added to Bulwark's
#      resolver.unbound-options, for experiments)
# Per target: a start with the 100-clients coalescing probe then the fixed-load run
# (dnsperf -Q RATE -v: answers/s, latency of misses, upstream queries per client query,
# SERVFAILs, CPU per answer), after which a signed name must come back with AD (the run
# stops where a target does not validate). Then SAT_REPS rounds of saturation: in each,
# every target gets a cold start of its own with SAT_Q queries outstanding (dnsperf -q
# SAT_Q), the order rotated by one each round (A B C, then B C A, ...) so that none always
# runs first or last: on a shared machine one such run of a target moved by +-25% between
# runs. A target's sat figure is the median of its rounds (the lower middle one for an even
# SAT_REPS), its lost, SERVFAIL and CPU% from that round; every round's figure in sat_reps.
# RSS (VmHWM): the largest of all its runs. sf_peer_ok: the distinct questions of its
# fixed run it answered SERVFAIL (or not at all) that another target resolved every time
# (bench/internet/unresolved.py; the questions in OUT/unresolved.txt). Answers/s =
# resolved answers (NOERROR, NXDOMAIN: a SERVFAIL resolves nothing) / DURATION (dnsperf's
# own figure also counts the wait for the last answers). Resolvers on CPU 0, dnsperf and
# the internet on CPU 1.
# Ends with "cold: per-round ratios bulwark/best-peer-of-that-round: R1 R2 ..." and then,
# the last line, "cold: bulwark QPS ans/s p99 MS ms up/q U; best peer NAME ...; ratio R"
# (the medians).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
DURATION=${DURATION:-20}
TARGETS=${TARGETS:-bulwark unbound pdns-recursor kresd}
RATE=${RATE:-1000}
SAT_Q=${SAT_Q:-2000}
SAT_REPS=${SAT_REPS:-3}
TIMEOUT=5
NET=${NET:-/dev/shm/bw-internet}
OUT=${OUT:-/dev/shm/bw-cold-$(date +%Y%m%d-%H%M%S)}
BULWARK=${BULWARK:-$HERE/../build/bulwark}
INET=$HERE/internet
declare -A PORT=([bulwark]=5310 [unbound]=5301 [pdns-recursor]=5303 [kresd]=5304)
declare -A BIN=([bulwark]=$BULWARK [unbound]=unbound [pdns-recursor]=pdns_recursor [kresd]=kresd)

die() { echo "cold: $*" >&2; exit 1; }

[[ $SAT_REPS =~ ^[1-9][0-9]*$ ]] || die "SAT_REPS must be a positive integer, not '$SAT_REPS'"

for c in dnsperf dig nsd dnsdist taskset python3 bc ldns-signzone; do
	command -v "$c" >/dev/null || die "missing $c (make deps installs it)"
done
bench_in_netns "$0" "$@"

# BULWARK_UB_OPTS="name: value;name: value" -> resolver.unbound-options (experiments)
bulwark_ub_opts() {
	[[ -n ${BULWARK_UB_OPTS:-} ]] || return 0
	printf '  unbound-options: [ "%s" ]' "${BULWARK_UB_OPTS//;/\", \"}"
}

conf_bulwark() { # dir port
	mkdir -p "$1/state"
	cat > "$1/bulwark.yaml" <<-YAML
	server:
	  listen: [ { address: 127.0.0.1, port: $2 } ]
	  workers: 1
	  # dnsperf is one client standing for a whole network: Bulwark's bound on one
	  # client's share of the queries in flight (max-inflight / 4, against floods of
	  # random names) would refuse what the peers, which have none, take
	  max-inflight-per-client: 4096
	  state-dir: "$1/state"
	  control-socket: "$1/control.sock"
	resolver:
	  mode: recursive
	  dnssec: true
	  trust-anchor: "$NET/root.key"
	  root-hints: "$NET/root.hints"
	  qname-minimisation: false
	  prefetch: false
	  # no IPv6 upstream, as the peers here (unbound do-ip6: no, kresd net.ipv6 = false,
	  # pdns-recursor's IPv4-only query-local-address): Bulwark's default, ipv6: auto,
	  # finds no route to the IPv6 internet in this namespace (with IPv6 on, libunbound
	  # also looked up the name servers' AAAA records: 1.46 upstream queries per client
	  # query, not 1.16)
	$(bulwark_ub_opts)
	cache: { size: 256M, max-ttl: 1d }
	policy:
	  feeds:
	    - { name: bench, category: malware, format: rpz, file: "$NET/policy.rpz" }
	  watch-interval: 0
	log: { level: warning }
	YAML
	echo "$BULWARK" -f -c "$1/bulwark.yaml"
}

conf_unbound() {
	cat > "$1/unbound.conf" <<-EOF
	server:
	  interface: 127.0.0.1@$2
	  port: $2
	  num-threads: 1
	  so-reuseport: no
	  do-ip6: no
	  username: ""
	  chroot: ""
	  directory: "$1"
	  pidfile: "$1/unbound.pid"
	  use-syslog: no
	  logfile: ""
	  verbosity: 0
	  access-control: 127.0.0.0/8 allow
	  do-not-query-localhost: no
	  root-hints: "$NET/root.hints"
	  module-config: "respip validator iterator"
	  trust-anchor-file: "$NET/root.key"
	  qname-minimisation: no
	  prefetch: no
	  msg-cache-size: 256m
	  rrset-cache-size: 512m
	  cache-max-ttl: 86400
	rpz:
	  name: "rpz.bench."
	  zonefile: "$NET/policy.rpz"
	  rpz-log: no
	remote-control:
	  control-enable: no
	EOF
	echo unbound -d -c "$1/unbound.conf"
}

conf_pdns-recursor() {
	cat > "$1/recursor.conf" <<-EOF
	local-address=127.0.0.1
	local-port=$2
	allow-from=127.0.0.0/8
	threads=1
	pdns-distributes-queries=no
	reuseport=no
	hint-file=$NET/root.hints
	dont-query=
	security-poll-suffix=
	dnssec=validate
	qname-minimization=no
	quiet=yes
	loglevel=3
	log-common-errors=no
	statistics-interval=0
	webserver=no
	max-cache-entries=2000000
	max-packetcache-entries=2000000
	max-cache-ttl=86400
	lua-config-file=$1/recursor.lua
	EOF
	# the generated root's DS instead of the real root's (built in)
	cat > "$1/recursor.lua" <<-EOF
	clearTA('.')
	addTA('.', "$(awk '$4 == "DS" { print $5, $6, $7, $8 }' "$NET/root.key")")
	rpzFile("$NET/policy.rpz", { policyName = "bench" })
	EOF
	echo pdns_recursor --config-dir="$1" --socket-dir="$1" --daemon=no --write-pid=no --disable-syslog
}

conf_kresd() {
	cat > "$1/kresd.conf" <<-EOF
	log_level('crit')
	net.ipv6 = false
	net.listen('127.0.0.1', $2, { kind = 'dns' })
	-- the generated root's DS replaces the real root's (loaded before this file), read-only
	-- (no RFC 5011 updates, no bootstrap from the internet); none of the modules that talk
	-- to the real root (unloading ta_update also cancels the DNSKEY refresh add_file plans)
	trust_anchors.remove('.')
	trust_anchors.add_file('$NET/root.key', true)
	for _, m in ipairs({ 'ta_update', 'ta_signal_query', 'priming', 'detect_time_skew',
	                     'detect_time_jump', 'ta_sentinel', 'watchdog' }) do
	  pcall(modules.unload, m)
	end
	modules.load('hints > iterate')
	hints.root_file('$NET/root.hints')
	cache.open(1024 * MB, 'lmdb://$1/cache')
	policy.add(policy.rpz(policy.DENY, '$NET/policy.rpz', false))
	-- the servers are on 127/8: allowed; no QNAME minimisation, like the others here
	policy.add(policy.all(policy.FLAGS({ 'ALLOW_LOCAL', 'NO_MINIMIZE' })))
	EOF
	echo kresd -n -q -c "$1/kresd.conf" "$1"
}

# start TARGET: an empty cache, on CPU 0; waits until the policy answers
start_target() {
	local t=$1 dir=$OUT/run/$1 cmd i probe
	rm -rf "$dir"
	mkdir -p "$dir"
	read -r -a cmd <<< "$("conf_$t" "$dir" "${PORT[$t]}")"
	taskset -c 0 "${cmd[@]}" > "$dir/stdout.log" 2>&1 < /dev/null &
	echo $! > "$dir/pid"
	probe=$(head -n1 "$NET/policy.domains")
	for ((i = 0; i < 600; i++)); do
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || die "$t exited at start (see $dir/stdout.log)"
		if dig +tries=1 +time=1 -p "${PORT[$t]}" @127.0.0.1 "$probe" A 2>/dev/null |
			grep -q 'status: NXDOMAIN'; then
			return 0
		fi
		sleep 0.1
	done
	die "$t did not answer within 60 s (see $dir/stdout.log)"
}

stop_target() {
	local pid i
	pid=$(cat "$OUT/run/$1/pid")
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cpu_ticks() { bench_cpu_ticks "$(cat "$OUT/run/$1/pid")"; }
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$(cat "$OUT/run/$1/pid")/status"; }
upstream() { "$INET/net.sh" counters "$NET"; }
dp() { taskset -c 1 dnsperf -s 127.0.0.1 -p "${PORT[$T]}" -c 1 -T 1 -b 4096 -t "$TIMEOUT" "$@"; }
# A / B with SCALE decimals, "-" when B is 0 or empty
div() { if [[ -z $2 || $2 == 0 ]]; then echo -; else echo "scale=$3; $1 / $2" | bc; fi; }
# one field of dnsperf's summary: FILE PATTERN
dp_field() { sed -n "s/.*$2:[[:space:]]*\([0-9.]*\).*/\1/p" "$1" | head -n1; }
# the answers of a dnsperf run with one of RCODES (default: resolved, NOERROR or NXDOMAIN)
dp_rcodes() {
	sed -n 's/^ *Response codes: *//p' "$1" | tr ',' '\n' |
		awk -v want="${2:-NOERROR NXDOMAIN}" '
			BEGIN { n = split(want, w, " "); for (i = 1; i <= n; i++) ok[w[i]] = 1 }
			$1 in ok { s += $2 } END { print s + 0 }'
}

# 100 clients ask one name nobody asked before at once; prints the upstream queries for it
coalesce() {
	local f=$OUT/$T.coalesce.txt before after i
	for ((i = 0; i < 100; i++)); do echo "cold-$T.coalesce-probe.net A"; done > "$f"
	before=$(upstream | cut -d' ' -f2)
	dp -d "$f" -n 1 -q 100 > "$OUT/$T.coalesce.out" 2>&1 || true
	sleep 1
	after=$(upstream | cut -d' ' -f2)
	echo $((after - before))
}

# does target T validate? A signed site (neither lossy nor dead) must come back with AD
validates() {
	local name out
	name=$(grep -m1 -vxF -f "$NET/lossy.domains" -f "$NET/dead.domains" "$NET/signed.domains")
	out=$(dig +dnssec +tries=3 +time=2 -p "${PORT[$T]}" @127.0.0.1 "$name" A || true)
	if grep -q '^;; flags:[a-z ]* ad[ ;]' <<< "$out"; then
		echo "cold: $T validates (AD for $name)" >&2
	else
		die "$T does not validate: no AD for $name (see $OUT/run/$T)"
	fi
}

# the fixed-load run: sets R[...] for target T
run_fixed() {
	local base=$OUT/$T.fixed q0 q1 c0 c1 sent m
	start_target "$T"
	R[coal]=$(coalesce)
	q0=$(upstream | cut -d' ' -f1); c0=$(cpu_ticks "$T")
	dp -d "$NET/queries.txt" -l "$DURATION" -Q "$RATE" -q 10000 -v > "$base.v" 2>&1 || true
	q1=$(upstream | cut -d' ' -f1); c1=$(cpu_ticks "$T")
	R[rss]=$(hwm_kb "$T")
	validates
	stop_target "$T"
	sent=$(dp_field "$base.v" "Queries sent")
	R[fixed]=$(div "$(dp_rcodes "$base.v")" "$DURATION" 0)
	R[fixed_lost]=$(dp_field "$base.v" "Queries lost")
	R[servfail]=$(dp_rcodes "$base.v" SERVFAIL)
	R[upq]=$(div "($q1 - $q0)" "$sent" 3)
	R[cpu_us]=$(div "($c1 - $c0) * 1000000 / $(getconf CLK_TCK)" "$(dp_rcodes "$base.v")" 1)
	m=$(python3 "$INET/misses.py" "$NET/queries.txt" "$sent" "$base.v" "$NET/policy.domains" \
		"$TIMEOUT" "$NET/lossy.domains")
	read -r _ "R[misses]" _ "R[answered]" _ "R[p50]" _ "R[p90]" _ "R[p99]" _ "R[lossy_n]" \
		_ "R[lossy_p99]" <<< "$m"
}

# the saturation run of round ROUND: a cold start of its own, as many queries outstanding
# as SAT_Q; sets R[sat] ... (SAT_KEYS) and keeps them as R[sat.ROUND] ...
SAT_KEYS=(sat sat_lost sat_servfail sat_cpu net_cpu)
run_sat() {
	local base=$OUT/$T.sat$1 rss c0 c1 n0 n1 k
	start_target "$T"
	c0=$(cpu_ticks "$T"); n0=$(upstream | cut -d' ' -f3)
	dp -d "$NET/queries.txt" -l "$DURATION" -q "$SAT_Q" > "$base.txt" 2>&1 || true
	c1=$(cpu_ticks "$T"); n1=$(upstream | cut -d' ' -f3)
	# busy % of the resolver's CPU and of the internet's processes (their CPU, shared with dnsperf)
	R[sat_cpu]=$(div "($c1 - $c0) * 100 / $(getconf CLK_TCK)" "$DURATION" 0)
	R[net_cpu]=$(div "($n1 - $n0) / 10" "$DURATION" 0)
	rss=$(hwm_kb "$T")
	stop_target "$T"
	((rss > R[rss])) && R[rss]=$rss
	R[sat]=$(div "$(dp_rcodes "$base.txt")" "$DURATION" 0)
	R[sat_lost]=$(dp_field "$base.txt" "Queries lost")
	R[sat_servfail]=$(dp_rcodes "$base.txt" SERVFAIL)
	for k in "${SAT_KEYS[@]}"; do R[$k.$1]=${R[$k]}; done
}

# a target's sat figures: those of the round with the median answers/s (the lower middle
# one for an even SAT_REPS); R[sat_reps] every round's answers/s, "A/B/C" in round order
sat_median() {
	local i k med reps=()
	for ((i = 1; i <= SAT_REPS; i++)); do reps+=("${R[sat.$i]}"); done
	med=$(for ((i = 1; i <= SAT_REPS; i++)); do echo "${R[sat.$i]} $i"; done |
		sort -n -k1,1 | sed -n "$(((SAT_REPS + 1) / 2))p" | cut -d' ' -f2)
	for k in "${SAT_KEYS[@]}"; do R[$k]=${R[$k.$med]}; done
	R[sat_reps]=$(IFS=/; echo "${reps[*]}")
}

# every target's R between its runs: ALL[TARGET.KEY]
declare -A ALL=()
r_save() {
	local k
	for k in "${!R[@]}"; do ALL[$T.$k]=${R[$k]}; done
}
r_load() {
	local k
	declare -gA R=()
	for k in "${!ALL[@]}"; do
		if [[ $k == "$T".* ]]; then R[${k#"$T".}]=${ALL[$k]}; fi
	done
}

# on the way out, also after an error: the target still running, then the internet
cleanup() {
	local f
	for f in "$OUT"/run/*/pid; do
		[[ -e $f ]] && { kill -KILL "$(cat "$f")" 2>/dev/null || true; }
	done
	"$INET/net.sh" stop "$NET"
}

COLS=(sat sat_reps sat_lost sat_servfail sat_cpu net_cpu fixed fixed_lost servfail sf_peer_ok
	misses answered p50 p90 p99 lossy_n lossy_p99 upq cpu_us rss_mb coal)
report_row() {
	R[rss_mb]=$(echo "scale=1; ${R[rss]} / 1024" | bc)
	local row=$T c
	for c in "${COLS[@]}"; do row+=$'\t'${R[$c]}; done
	echo "$row" >> "$OUT/results.tsv"
}

main() {
	local targets=() fixed=() n r i t v
	mkdir -p "$OUT"
	echo "cold: results in $OUT" >&2
	# the trap only once the internet is ours: net.sh refuses to start where another run's
	# is up, and stopping it then would stop that run's servers (a failed start cleans up
	# after itself)
	"$INET/net.sh" start "$NET"
	trap cleanup EXIT
	[[ -s $NET/root.key ]] ||
		die "$NET has no root.key (generated before the signed zones): delete it to regenerate"
	printf 'target\t%s\n' "$(IFS=$'\t'; echo "${COLS[*]}")" > "$OUT/results.tsv"
	{ echo "date: $(date -Is)"
	  echo "DURATION=$DURATION RATE=$RATE SAT_Q=$SAT_Q SAT_REPS=$SAT_REPS TIMEOUT=$TIMEOUT"
	  cat "$NET/summary.txt"; } > "$OUT/info.txt"
	for T in $TARGETS; do
		[[ -n ${PORT[$T]:-} ]] || die "unknown target $T"
		if ! command -v "${BIN[$T]}" >/dev/null; then
			echo "cold: $T skipped: no ${BIN[$T]}"
			continue
		fi
		targets+=("$T")
	done
	for T in "${targets[@]}"; do
		echo "cold: $T fixed" >&2
		declare -gA R=()
		run_fixed
		r_save
		fixed+=("$OUT/$T.fixed.v")
	done
	# what each target left unresolved that another one resolved (issue 21's goal: no
	# SERVFAIL a peer does not also give)
	v=$(python3 "$INET/unresolved.py" --list "$OUT/unresolved.txt" "$NET/queries.txt" \
		"${fixed[@]}")
	while read -r t n; do ALL[$t.sf_peer_ok]=$n; done <<< "$v"
	n=${#targets[@]}
	for ((r = 1; r <= SAT_REPS; r++)); do
		for ((i = 0; i < n; i++)); do
			T=${targets[(i + r - 1) % n]}
			echo "cold: $T sat $r/$SAT_REPS" >&2
			r_load
			run_sat "$r"
			r_save
		done
	done
	for T in "${targets[@]}"; do
		r_load
		sat_median
		report_row
	done
	python3 "$INET/report.py" "$OUT/results.tsv" | tee "$OUT/summary.txt"
}

main
