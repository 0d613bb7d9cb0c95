#!/usr/bin/env bash
# bench/internet/net.sh - the benchmark internet: three NSD instances (root, TLDs,
# second-level zones) behind one dnsdist that plays the network (per-address RTT, loss,
# dead servers). Run it inside a network namespace of your own (unshare -n, lo up): it
# listens on 0.0.0.0:53 there and refuses to start where another interface exists.
#   net.sh start DIR     generate DIR (once: gen.py) and start the servers
#   net.sh stop DIR      stop them
#   net.sh counters DIR  "QUERIES PROBE CPU_MS": what the network carried so far (all
#                        queries, those for coalesce-probe.net) and the servers' CPU time
# env: TOPLIST (default: ../shared's Cloudflare top 100k, else data/tranco-excerpt.txt),
#      ZONES (30000), QUERIES (1000000), SEED (21), SIGNED_FRACTION (0.1: the share of the
#      sites whose zone is signed): used only when DIR is generated;
#      NET_CPU (1): the CPU the servers run on
# DIR/queries.txt, DIR/policy.rpz, DIR/root.hints and DIR/root.key (the trust anchor: the
# root's DS) are what resolvers and dnsperf use. The signatures are valid for 30 days from
# the generation: start refuses a DIR whose signatures expire within a day (delete it to
# regenerate).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/../lib.sh"
ACTION=${1:?usage: net.sh start|stop|counters DIR}
DIR=${2:?usage: net.sh start|stop|counters DIR}
RUN=$DIR/run
NET_CPU=${NET_CPU:-1}
INSTANCES=(root tld sld)
declare -A NSD_ADDR=([root]=127.250.0.1@5401 [tld]=127.250.0.2@5402 [sld]=127.250.0.3@5403)

die() { echo "net.sh: $*" >&2; exit 1; }

toplist() {
	local shared=$HERE/../../../shared/data/toplists/cloudflare-top100k_20260810.txt.gz
	if [[ -n ${TOPLIST:-} ]]; then echo "$TOPLIST"
	elif [[ -r $shared ]]; then readlink -f "$shared"
	else echo "$HERE/data/tranco-excerpt.txt"; fi
}

generate() {
	[[ -f $DIR/summary.txt ]] && return 0
	echo "net.sh: generating $DIR from $(toplist)" >&2
	python3 "$HERE/gen.py" --out "$DIR" --toplist "$(toplist)" --zones "${ZONES:-30000}" \
		--queries "${QUERIES:-1000000}" --seed "${SEED:-21}" \
		--signed-fraction "${SIGNED_FRACTION:-0.1}"
}

# the signed zones of DIR must stay valid for the run (a directory from before the signed
# zones has no "signatures:" line and nothing to expire)
check_signatures() {
	local until limit
	until=$(sed -n 's/^signatures: [0-9]* to \([0-9]*\) UTC$/\1/p' "$DIR/summary.txt")
	[[ -n $until ]] || return 0
	limit=$(date -u -d '+1 day' +%Y%m%d%H%M%S)
	if [[ $until < $limit ]]; then
		die "the signatures in $DIR expire at $until UTC, in less than a day:" \
			"delete $DIR to regenerate it"
	fi
}

nsd_conf() { # instance
	local d=$RUN/nsd-$1
	mkdir -p "$d"
	cat > "$d/nsd.conf" <<-EOF
	server:
	  ip-address: ${NSD_ADDR[$1]}
	  do-ip6: no
	  server-count: 1
	  username: ""
	  chroot: ""
	  database: ""
	  zonesdir: "$DIR/$1"
	  pidfile: "$d/nsd.pid"
	  xfrdfile: "$d/xfrd.state"
	  xfrdir: "$d"
	  zonelistfile: "$d/zone.list"
	  logfile: "$d/nsd.log"
	  verbosity: 0
	  hide-version: yes
	  zonefiles-write: 0
	remote-control:
	  control-enable: no
	include: "$DIR/$1/zones.conf"
	EOF
}

# waits until a server answers QNAME/TYPE at ADDR PORT (30 s at most)
wait_answer() {
	local i
	for ((i = 0; i < 300; i++)); do
		if dig +tries=1 +time=1 -p "$2" @"$1" "$3" "$4" 2>/dev/null | grep -q 'status: NOERROR'; then
			return 0
		fi
		sleep 0.1
	done
	die "no answer for $3 $4 from $1#$2 (see $RUN)"
}

start() {
	if ip -o link show | grep -qv ': lo:'; then
		die "run me inside a network namespace of your own (unshare -n), not beside real interfaces"
	fi
	ip link set lo up
	generate
	check_signatures
	local f
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] && kill -0 "$(cat "$f")" 2>/dev/null && die "already running ($RUN)"
	done
	rm -rf "$RUN"
	mkdir -p "$RUN"
	# from here the servers are ours: a start that fails stops what it started (and only
	# that: one refused above leaves the running ones alone)
	trap stop EXIT
	local inst t0 a key last
	for inst in "${INSTANCES[@]}"; do
		nsd_conf "$inst"
		t0=$(date +%s.%N)
		taskset -c "$NET_CPU" nsd -d -c "$RUN/nsd-$inst/nsd.conf" > "$RUN/nsd-$inst/stdout.log" 2>&1 &
		echo $! > "$RUN/nsd-$inst.pid"
		a=${NSD_ADDR[$inst]}
		last=$(sed -n 's/^\tname: "\(.*\)"/\1/p' "$DIR/$inst/zones.conf" | tail -n1)
		wait_answer "${a%@*}" "${a#*@}" "$last" SOA
		if grep -q 'error:' "$RUN/nsd-$inst/nsd.log"; then
			grep -m3 'error:' "$RUN/nsd-$inst/nsd.log" >&2
			die "nsd $inst: errors in the generated zones (see $RUN/nsd-$inst/nsd.log)"
		fi
		echo "net.sh: nsd $inst: $(grep -c '^zone:' "$DIR/$inst/zones.conf") zones," \
			"loaded in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s" >&2
	done
	key=$(openssl rand -base64 32)
	sed "s|{{KEY}}|$key|" "$DIR/dnsdist.conf.tmpl" > "$RUN/dnsdist.conf"
	taskset -c "$NET_CPU" dnsdist --supervised --disable-syslog -C "$RUN/dnsdist.conf" \
		> "$RUN/dnsdist.log" 2>&1 < /dev/null &
	echo $! > "$RUN/dnsdist.pid"
	a=$(awk '$1 == "." { print $4; exit }' "$DIR/root.hints")
	wait_answer "$(awk -v n="$a" '$1 == n { print $4 }' "$DIR/root.hints")" 53 . SOA
	echo "net.sh: up: $(sed -n 2p "$DIR/summary.txt"), network on 0.0.0.0:53" >&2
	trap - EXIT
}

stop() {
	local f pid i
	for f in "$RUN"/*.pid; do
		[[ -e $f ]] || continue
		pid=$(cat "$f")
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$f"
	done
}

# CPU time (ms) of the servers and their children so far
cpu_ms() {
	local pids p
	pids=$(cat "$RUN"/*.pid)
	for p in $pids; do pids+=" $(ps -o pid= --ppid "$p" | tr '\n' ' ')"; done
	for p in $pids; do bench_cpu_ticks "$p"; done |
		awk -v hz="$(getconf CLK_TCK)" '{ s += $1 } END { printf "%d\n", s * 1000 / hz }'
}

counters() {
	local q p
	q=$(dnsdist -C "$RUN/dnsdist.conf" -c -e 'dumpStats()' |
		awk '{ for (i = 1; i < NF; i += 2) if ($i == "queries") print $(i + 1) }')
	p=$(dnsdist -C "$RUN/dnsdist.conf" -c -e 'showRules()' |
		awk '$2 == "probe" { print $3 }')
	echo "${q:-0} ${p:-0} $(cpu_ms)"
}

case $ACTION in
start) start ;;
stop) stop ;;
counters) counters ;;
*) die "usage: net.sh start|stop|counters DIR" ;;
esac
