#!/usr/bin/env bash
# bench/encrypted.sh - DoT and DoH throughput of Bulwark and dnsdist (the peer with both
# frontends), each beside its own UDP figure, run the way ../shared/bench runs UDP: the
# server alone on CPU 0, dnsperf on CPU 1, the harness's authoritative server (auth.sh),
# policy and query files, and dnsperf options (-q 200 -t 2 -b 4096 -c 1 -T 1, after a
# warm-up pass over the query file), plus -m dot / -m doh. The shared harness has no way to
# pass -m to dnsperf, hence this script.
#
# With -c 1, dnsperf opens one connection and keeps it: every query after the first rides
# an established TLS session. Handshakes are measured separately with `openssl s_time` on
# the DoT port: full handshakes per second (-new) and resumed ones (-reuse, session
# resumption), and Bulwark's own counters (logged at exit) say how many of each it saw.
#
#   flock /tmp/bench.lock bench/encrypted.sh              # 1 rep, 10 s per run
#   REPS=3 DURATION=15 POLICY=1m flock /tmp/bench.lock bench/encrypted.sh
# Output: a TSV (rep target mode qps avg_ms lost server_cpu_pct) and the ratios, in $OUT.
# server_cpu_pct is the server's CPU use during the run: well under 100 means the client
# on CPU 1 (dnsperf, h2load, s_time) was the limit, not the server.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
BULWARK=${BULWARK:-$HERE/../build/bulwark}
REPS=${REPS:-1}
DURATION=${DURATION:-10}
POLICY=${POLICY:-100k}
MIX=${MIX:-hits}
HS_SECONDS=${HS_SECONDS:-5}
BENCH_DATA=${BENCH_DATA:-/dev/shm/dnsbench/data}
OUT=${OUT:-/dev/shm/dnsbench/results/encrypted-$(date +%Y%m%d-%H%M%S)}
UDP_PORT=5310 DOT_PORT=5853 DOH_PORT=5443

# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
bench_need_harness
bench_in_netns "$0" "$@"
QUERIES=$BENCH_DATA/queries-$MIX.txt
RPZ=$BENCH_DATA/policy-$POLICY.rpz
DOMAINS=$BENCH_DATA/policy-$POLICY.domains
for f in "$QUERIES" "$RPZ" "$DOMAINS"; do
	[[ -f $f ]] || { echo "missing $f: run make bench (or ../shared/bench/run.sh) once" >&2; exit 1; }
done
PROBE=$(head -n1 "$BENCH_DATA/policy-$POLICY.probe")
mkdir -p "$OUT"
WORK=$(mktemp -d /dev/shm/bw-encrypted.XXXXXX)
TSV=$OUT/encrypted.tsv
LOG=$OUT/encrypted.log
printf 'rep\ttarget\tmode\tqps\tavg_ms\tlost\tserver_cpu_pct\n' > "$TSV"
{ echo "date: $(date -Is)"; echo "policy=$POLICY mix=$MIX duration=${DURATION}s reps=$REPS"
  echo "dnsperf -s 127.0.0.1 -p PORT -d $QUERIES -l $DURATION -q 200 -t 2 -b 4096 -c 1 -T 1 [-m dot|doh] (taskset -c 1)"
  uname -r; } > "$LOG"

T_PID=""
cleanup() {
	[[ -n $T_PID ]] && kill -TERM "$T_PID" 2>/dev/null || true
	"$SHARED/auth.sh" stop >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# a test CA and a certificate for dns.example / 127.0.0.1 (both servers use it)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/ca.key" \
	-out "$WORK/ca.pem" -days 2 -subj "/CN=bench CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$WORK/server.key" \
	-out "$WORK/server.csr" -subj "/CN=dns.example" 2>/dev/null
printf 'subjectAltName=DNS:dns.example,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$WORK/ext.cnf"
openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
	-CAcreateserial -out "$WORK/server.pem" -days 2 -extfile "$WORK/ext.cnf" 2>/dev/null

AUTH_PID=$("$SHARED/auth.sh" start)
export AUTH_PID

start_bulwark() {
	# as bench/bulwark-bench.sh (one worker, forward to the harness's server, the RPZ policy),
	# plus the DoT and DoH listeners; tcp-max-inflight 256 so one connection can carry
	# dnsperf's 200 outstanding queries
	cat > "$WORK/bulwark.yaml" <<YAML
server:
  listen:
    - { address: 127.0.0.1, port: $UDP_PORT }
    - { address: 127.0.0.1, port: $DOT_PORT, transport: dot, tls-cert: "$WORK/server.pem", tls-key: "$WORK/server.key" }
    - { address: 127.0.0.1, port: $DOH_PORT, transport: doh, tls-cert: "$WORK/server.pem", tls-key: "$WORK/server.key" }
  workers: 1
  tcp-max-inflight: 256
resolver:
  mode: forward
  dnssec: false
  forward: [ "127.0.0.1@5300" ]
  qname-minimisation: false
  prefetch: false
cache: { size: 256M, max-ttl: 1d }
policy:
  feeds:
    - { name: bench, category: malware, format: rpz, file: "$RPZ" }
  watch-interval: 0
log: { level: info }
YAML
	taskset -c 0 "$BULWARK" -f -c "$WORK/bulwark.yaml" > "$WORK/bulwark.log" 2>&1 &
	T_PID=$!
}

start_dnsdist() {
	# the harness's dnsdist config (packet cache, suffix block list), plus a DoT and a DoH
	# frontend; maxInFlight lets one DoT connection carry pipelined queries as Bulwark does
	sed -e "s|{{PORT}}|$UDP_PORT|g" -e "s|{{AUTH_ADDR}}|127.0.0.1|g" -e "s|{{AUTH_PORT}}|5300|g" \
		-e "s|{{DOMAINS}}|$DOMAINS|g" "$SHARED/peers/dnsdist/dnsdist.conf.tmpl" > "$WORK/dnsdist.conf"
	cat >> "$WORK/dnsdist.conf" <<LUA
addTLSLocal("127.0.0.1:$DOT_PORT", "$WORK/server.pem", "$WORK/server.key", { reusePort = false, maxInFlight = 256 })
addDOHLocal("127.0.0.1:$DOH_PORT", "$WORK/server.pem", "$WORK/server.key", "/dns-query", { reusePort = false })
LUA
	taskset -c 0 dnsdist --supervised --disable-syslog -C "$WORK/dnsdist.conf" > "$WORK/dnsdist.log" 2>&1 &
	T_PID=$!
}

stop_target() {
	kill -TERM "$T_PID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$T_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$T_PID" 2>/dev/null || true
	wait "$T_PID" 2>/dev/null || true
	T_PID=""
}

ticks() { bench_cpu_ticks "$T_PID"; }
HZ=$(getconf CLK_TCK)
# h2load (nghttp2-client) drives DoH too: dnsperf 2.10's DoH client completes almost nothing
# against dnsdist 1.7.3 beyond one outstanding query. The same query file, as GET URIs.
URIS=$BENCH_DATA/doh-uris-$MIX.txt
if [[ ! -f $URIS ]]; then
	/usr/bin/python3 - "$QUERIES" "$URIS" $DOH_PORT <<'PY'
import base64, sys, dns.message
out = open(sys.argv[2] + ".tmp", "w")
first = True
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 2:
        continue
    q = dns.message.make_query(f[0], f[1], use_edns=False)
    q.id = 0
    b = base64.urlsafe_b64encode(q.to_wire()).rstrip(b"=").decode()
    out.write(("https://127.0.0.1:%s" % sys.argv[3] if first else "") + "/dns-query?dns=" + b + "\n")
    first = False
out.close()
import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
fi

dp() { taskset -c 1 dnsperf -s 127.0.0.1 -b 4096 -c 1 -T 1 "$@"; }
qps_of() { awk '/Queries per second:/ {print $4}' "$1"; }
lat_of() { awk '/Average Latency/ {print $4*1000; exit}' "$1"; }
lost_of() { awk '/Queries lost:/ {print $3}' "$1"; }

# handshakes per second on the DoT port: full (-new) and resumed (-reuse)
handshakes() { # name mode
	local f=$OUT/r$rep-$1-hs-$2.txt
	# -reuse with TLS 1.2: s_time never reads, so it never sees TLS 1.3 tickets (sent after
	# the handshake); a TLS 1.2 session is known at once
	local v=""
	[[ $2 == reuse ]] && v=-tls1_2
	taskset -c 1 openssl s_time -connect 127.0.0.1:$DOT_PORT -"$2" $v -time "$HS_SECONDS" \
		-CAfile "$WORK/ca.pem" > "$f" 2>&1 || true
	# "N connections in T real seconds"
	awk '/connections in .* real seconds/ {n=$1; t=$4} END {if (t > 0) printf "%.0f", n/t; else print "NA"}' "$f"
}

for ((rep = 1; rep <= REPS; rep++)); do
	for target in bulwark dnsdist; do
		"start_$target"
		if ! python3 "$SHARED/tools/probe.py" 127.0.0.1 $UDP_PORT "$PROBE" --want-rcode 3 \
			--max 900 --pid "$T_PID" > /dev/null; then
			echo "$target did not start; log:" >&2; tail -20 "$WORK/$target.log" >&2; exit 1
		fi
		dp -p $UDP_PORT -d "$QUERIES" -n 1 -q 100 -t 2 > "$OUT/warm.log" 2>&1 || true
		for mode in udp dot doh doh-h2load; do
			f=$OUT/r$rep-$target-$mode.txt
			c0=$(ticks)
			case $mode in
			udp) dp -p $UDP_PORT -d "$QUERIES" -l "$DURATION" -q 200 -t 2 > "$f" 2>&1 || true ;;
			dot) dp -m dot -p $DOT_PORT -d "$QUERIES" -l "$DURATION" -q 200 -t 2 > "$f" 2>&1 || true ;;
			doh) dp -m doh -p $DOH_PORT -O doh-uri=https://127.0.0.1:$DOH_PORT/dns-query \
				-d "$QUERIES" -l "$DURATION" -q 200 -t 2 > "$f" 2>&1 || true ;;
			doh-h2load) taskset -c 1 h2load -i "$URIS" -D "$DURATION" -c 1 -m 100 -t 1 \
				> "$f" 2>&1 || true ;;
			esac
			c1=$(ticks)
			if [[ $mode == doh-h2load ]]; then
				# "finished in 10.00s, 123456.78 req/s"; failed requests as lost
				q=$(awk '/finished in/ {gsub(",", "", $4); print $4}' "$f")
				lost=$(awk '/^requests:/ {print $10}' "$f")
				lat=$(awk '/time for request:/ {print $6; exit}' "$f")
			else
				q=$(qps_of "$f"); lost=$(lost_of "$f"); lat=$(lat_of "$f")
			fi
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rep" "$target" "$mode" "$q" "$lat" \
				"$lost" "$(awk -v a="$c0" -v b="$c1" -v d="$DURATION" -v hz="$HZ" \
				'BEGIN{printf "%.0f", 100*(b-a)/hz/d}')" | tee -a "$TSV"
		done
		for hs in new reuse; do
			c0=$(ticks); w0=$(date +%s.%N)
			r=$(handshakes $target $hs)
			c1=$(ticks); w1=$(date +%s.%N)
			printf '%s\t%s\t%s\t%s\t\t\t%s\n' "$rep" "$target" "handshake-$hs" "$r" \
				"$(awk -v a="$c0" -v b="$c1" -v s="$w0" -v e="$w1" -v hz="$HZ" \
				'BEGIN{printf "%.0f", 100*(b-a)/hz/(e-s)}')" | tee -a "$TSV"
		done
		stop_target
		[[ $target == bulwark ]] && grep -h "TLS handshakes" "$WORK/bulwark.log" | tee -a "$LOG" || true
	done
done

python3 - "$TSV" <<'PY' | tee "$OUT/ratios.txt"
import sys, statistics
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
v, eff = {}, {}
for rep, target, mode, qps, _lat, _lost, cpu in rows:
    if qps and qps != "NA":
        v.setdefault((target, mode), []).append(float(qps))
        if cpu and float(cpu) > 0:
            eff.setdefault((target, mode), []).append(float(qps) / (float(cpu) / 100))
m = {k: statistics.median(x) for k, x in v.items()}
def show(label, a, b):
    if a in m and b in m and m[b] > 0:
        print("%-44s %10.0f / %10.0f = %.2f" % (label, m[a], m[b], m[a] / m[b]))
for mode in ("udp", "dot", "doh", "doh-h2load"):
    show("%s: bulwark / dnsdist (goal >= 1.5 for dot, doh)" % mode, ("bulwark", mode), ("dnsdist", mode))
for t in ("bulwark", "dnsdist"):
    for mode in ("dot", "doh", "doh-h2load"):
        show("%s: %s / own udp (goal >= 0.5 for bulwark)" % (t, mode), (t, mode), (t, "udp"))
for hs in ("handshake-new", "handshake-reuse"):
    show("%s/s: bulwark / dnsdist" % hs[10:], ("bulwark", hs), ("dnsdist", hs))
# the clients on CPU 1 may be the limit (server_cpu_pct < 100): per server CPU-second
m = {k: statistics.median(x) for k, x in eff.items()}
print("per server CPU-second (queries or handshakes / s of the server's CPU time):")
for mode in ("udp", "dot", "doh", "doh-h2load", "handshake-new", "handshake-reuse"):
    show("  %s: bulwark / dnsdist" % mode, ("bulwark", mode), ("dnsdist", mode))
for mode in ("dot", "doh", "doh-h2load"):
    show("  bulwark: %s / own udp" % mode, ("bulwark", mode), ("bulwark", "udp"))
PY
echo "# results: $TSV" >&2
