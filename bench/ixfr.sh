#!/usr/bin/env bash
# bench/ixfr.sh - issue 4's IXFR benchmark: Bulwark as a secondary of a 1M-entry RPZ zone
# served by Knot DNS; while dnsperf sends the mixed query set at a fixed rate, 1,000 names
# are added on the primary in one dynamic update (one IXFR). Reports:
#   - the apply time Bulwark logs (IXFR received -> new policy published), and the time
#     from the update to the first blocked answer for an added name;
#   - lost queries and p99 latency in a window before and a window during the apply
#     (which starts when the primary has committed the update: NOTIFY, IXFR, apply and the
#     rewrite of the last good copy all fall inside it).
# Runs in its own network namespace (loopback only). Needs the 1m bench data
# (../shared/bench generates it into $BENCH_DATA).
#   bench/ixfr.sh                 QPS=20000 WINDOW=6 CHANGES=1000
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SHARED=${SHARED_BENCH:-$HERE/../../shared/bench}
BENCH_DATA=${BENCH_DATA:-/dev/shm/dnsbench/data}
BULWARK=${BULWARK:-$HERE/../build/bulwark}
QPS=${QPS:-20000}
WINDOW=${WINDOW:-6}
CHANGES=${CHANGES:-1000}

if [[ ! -f $BENCH_DATA/policy-1m.rpz || ! -f $BENCH_DATA/queries-mixed.txt ]]; then
	if [[ ! -x $SHARED/run.sh ]]; then
		echo "bench/ixfr.sh: skipped: no bench data in $BENCH_DATA and no harness at $SHARED"
		exit 0
	fi
	python3 "$SHARED/tools/gen_data.py" --out "$BENCH_DATA" >&2
fi
if [[ -z ${IXFR_IN_NETNS:-} ]]; then
	export IXFR_IN_NETNS=1
	exec unshare -n -- "$0" "$@"
fi
ip link set lo up
RUN=$(mktemp -d /dev/shm/bw-ixfr.XXXXXX)
cleanup() {
	[[ -n ${BW_PID:-} ]] && kill "$BW_PID" 2>/dev/null
	[[ -n ${KNOT_PID:-} ]] && kill "$KNOT_PID" 2>/dev/null
	BENCH_RUN=$RUN "$SHARED/auth.sh" stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	[[ -n ${IXFR_KEEP:-} ]] || rm -rf "$RUN"
}
trap cleanup EXIT
ZONE=rpz.bench
SECRET=$(printf 'ixfr-bench-secret-0123456789abcd' | base64)

# the primary: Knot DNS on 127.0.0.2:53 with the 1M zone, NOTIFY to Bulwark
mkdir -p "$RUN/knot"
cp "$BENCH_DATA/policy-1m.rpz" "$RUN/knot/$ZONE.zone"
cat > "$RUN/knot/knot.conf" <<EOF
server:
    rundir: $RUN/knot
    listen: 127.0.0.2@53
log:
  - target: $RUN/knot/knotd.log
    any: info
database:
    storage: $RUN/knot
key:
  - id: bench
    algorithm: hmac-sha256
    secret: $SECRET
remote:
  - id: bulwark
    address: 127.0.0.1@5310
    via: 127.0.0.2
    key: bench
acl:
  - id: xfr
    key: bench
    action: [transfer, update]
zone:
  - domain: $ZONE
    file: $RUN/knot/$ZONE.zone
    storage: $RUN/knot
    acl: xfr
    notify: bulwark
    zonefile-sync: -1
    journal-content: changes
    semantic-checks: off
EOF
# The primary stands for another machine. With a spare core it gets one; on a 2-core
# machine it shares CPU 1 with dnsperf at idle priority (SCHED_IDLE): Knot is still busy
# with the old zone for a while after it has answered the update, and dnsperf counts the
# time its threads wait for the CPU as Bulwark's latency (runs without it: p99 ratio
# 0.8-2.9, with it 0.9-1.4, same binary).
if (( $(nproc) >= 3 )); then
	KNOT_RUN=(taskset -c 2)
else
	KNOT_RUN=(taskset -c 1 chrt --idle 0)
fi
"${KNOT_RUN[@]}" knotd -c "$RUN/knot/knot.conf" > "$RUN/knot/stdout.log" 2>&1 &
KNOT_PID=$!
BENCH_RUN=$RUN "$SHARED/auth.sh" start >/dev/null

cat > "$RUN/bulwark.yaml" <<EOF
server:
  listen: [ { address: 127.0.0.1, port: 5310 } ]
  workers: 1
  state-dir: $RUN/state
resolver:
  mode: forward
  dnssec: false
  forward: [ "127.0.0.1@5300" ]
  qname-minimisation: false
  prefetch: false
cache: { size: 256M, max-ttl: 1d }
policy:
  feeds:
    - name: bench
      category: malware
      format: rpz
      primaries: [ "127.0.0.2@53" ]
      zone: $ZONE
      tsig: { name: bench, algorithm: hmac-sha256, secret: "$SECRET" }
log: { level: info }
EOF
probe=$(head -n1 "$BENCH_DATA/policy-1m.probe")
for i in $(seq 600); do   # knotd loads 1M names, then Bulwark transfers them
	kdig -p 53 @127.0.0.2 +short SOA $ZONE 2>/dev/null | grep -q . && break
	(( i < 600 )) || { echo "bench/ixfr.sh: knotd did not serve $ZONE" >&2
		tail -n 20 "$RUN/knot/knotd.log" >&2; exit 1; }
	sleep 0.2
done
t0=$(date +%s.%N)
taskset -c 0 "$BULWARK" -f -c "$RUN/bulwark.yaml" > "$RUN/bulwark.log" 2>&1 &
BW_PID=$!
for i in $(seq 1500); do
	kdig -p 5310 @127.0.0.1 +retry=0 +timeout=1 "$probe" A 2>/dev/null | grep -q NXDOMAIN && break
	kill -0 $BW_PID || { cat "$RUN/bulwark.log"; exit 1; }
	(( i < 1500 )) || { echo "bench/ixfr.sh: the secondary never blocked the zone's names" >&2
		tail -n 20 "$RUN/bulwark.log" "$RUN/knot/knotd.log" >&2; exit 1; }
	sleep 0.2
done
echo "AXFR of 1M names and first policy: $(echo "$(date +%s.%N) - $t0" | bc) s"
dp() { taskset -c 1 dnsperf -s 127.0.0.1 -p 5310 -d "$BENCH_DATA/queries-mixed.txt" -c 1 -T 1 \
	-q 200 -Q "$QPS" -l "$WINDOW" -v "$@"; }
# warm the cache, then a window without changes
taskset -c 1 dnsperf -s 127.0.0.1 -p 5310 -d "$BENCH_DATA/queries-mixed.txt" -n 1 -q 200 >/dev/null
dp > "$RUN/before.txt"
# the change: CHANGES new names in one update (one IXFR), sent 1 s into the second window
{ echo "server 127.0.0.2 53"; echo "zone $ZONE."
  for i in $(seq "$CHANGES"); do echo "add ixfr-bench-$i.example.$ZONE. 300 CNAME ."; done
  echo send; } > "$RUN/update.txt"
# Knot applies a 1,000-record update to a 1M-record zone in about 0.75 s and sends its
# NOTIFY about 1 s later; the second window starts when the update is committed: the
# NOTIFY, the IXFR, the apply and the rewrite of the last good copy all fall inside it
# One process asks for the last added name every 5 ms until it is blocked and prints the
# time; it is started before the update so that its start-up stays out of the window (a
# kdig per try, forked every few ms, showed up as latency in the window)
python3 - "ixfr-bench-$CHANGES.example" > "$RUN/blocked-at" <<'PY' &
import socket, struct, sys, time
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in sys.argv[1].split(".")) + b"\0"
q += struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    s.sendto(q, ("127.0.0.1", 5310))
    try:
        r = s.recv(4096)
        if r[:2] == q[:2] and r[3] & 0x0f == 3:   # NXDOMAIN: blocked
            print("%.6f" % time.time())
            sys.exit(0)
    except socket.timeout:
        pass
    time.sleep(0.005)
sys.exit(1)
PY
PROBE=$!
sleep 0.5
tu=$(date +%s.%N)
knsupdate -y "hmac-sha256:bench:$SECRET" "$RUN/update.txt"
dp > "$RUN/during.txt" &
DP=$!
if ! wait $PROBE; then
	echo "bench/ixfr.sh: the change never arrived" >&2
	tail -n 20 "$RUN/bulwark.log" "$RUN/knot/knotd.log" >&2
	exit 1
fi
tb=$(cat "$RUN/blocked-at")
wait $DP
python3 - "$RUN/before.txt" "$RUN/during.txt" "$(echo "$tb - $tu" | bc)" "$RUN/bulwark.log" <<'PY'
import re, sys
def stats(path):
    lat, sent, lost = [], None, None
    for line in open(path, errors="replace"):
        m = re.match(r"^> \S+ .* ([0-9.]+)$", line.strip())
        if m:
            lat.append(float(m.group(1)))
        m = re.search(r"Queries sent:\s+(\d+)", line)
        if m: sent = int(m.group(1))
        m = re.search(r"Queries lost:\s+(\d+)", line)
        if m: lost = int(m.group(1))
    lat.sort()
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000 if lat else float("nan")
    return sent, lost, p99
b, d = stats(sys.argv[1]), stats(sys.argv[2])
applied = [l.strip() for l in open(sys.argv[4], errors="replace") if "applied in" in l]
print("apply log: " + (applied[-1] if applied else "(no IXFR line in the log)"))
print("update sent -> last added name blocked (Knot's update + NOTIFY delay included): %.1f ms" % (float(sys.argv[3]) * 1000))
print("window   sent     lost  p99_ms")
print("before   %-8s %-5s %.3f" % (b[0], b[1], b[2]))
print("during   %-8s %-5s %.3f" % (d[0], d[1], d[2]))
print("p99 during / before: %.2f" % (d[2] / b[2] if b[2] else float("nan")))
PY
