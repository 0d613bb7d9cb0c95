#!/usr/bin/env python3
"""bench/internet/misses.py QUERIES SENT VERBOSE POLICY_DOMAINS TIMEOUT_S [LOSSY_DOMAINS]
Latency of the misses of one `dnsperf -v` run: a miss is the first time a (name, type)
is asked, blocked names left out (the policy answers them without resolving). dnsperf
sends the file's lines in order, so the misses are the distinct questions among its first
SENT lines; a miss with no answer line timed out, and one answered with another rcode
than NOERROR or NXDOMAIN (SERVFAIL: not resolved) counts as TIMEOUT_S too.
Prints "misses N answered A p50 X p90 Y p99 Z" (milliseconds), then with LOSSY_DOMAINS
(the sites whose only server loses half its packets) "lossy N p99 Z" for the misses there."""
import sys


def blocked_set(path):
    with open(path) as f:
        return set(line.strip() for line in f if line.strip())


def is_blocked(name, blocked):
    labels = name.split(".")
    return any(".".join(labels[i:]) in blocked for i in range(len(labels) - 1))


def first_questions(path, sent, blocked):
    seen = set()
    with open(path) as f:
        for i, line in enumerate(f):
            if i >= sent:
                break
            q = line.split()
            key = (q[0].lower(), q[1])
            if key not in seen and not is_blocked(key[0], blocked):
                seen.add(key)
    return seen


RESOLVED = ("NOERROR", "NXDOMAIN")


def answers(path):
    """The "> RCODE name type seconds" lines of a `dnsperf -v` output, in its order, as
    ((name, type), rcode, seconds); a timed-out query is "> T name type": rcode "T",
    seconds None."""
    with open(path, errors="replace") as f:
        for line in f:
            if not line.startswith("> "):
                continue
            p = line.split()
            if len(p) < 4:
                continue
            yield (p[2].lower().rstrip("."), p[3]), p[1], float(p[4]) if len(p) > 4 else None


def first_latencies(path, misses):
    lat = {}
    for key, rcode, secs in answers(path):
        if secs is not None and key in misses and key not in lat:
            lat[key] = secs * 1000 if rcode in RESOLVED else None
    return lat


def pct(vals, x):
    return vals[min(len(vals) - 1, int(x * len(vals)))] if vals else 0.0


def main():
    queries, sent, verbose, policy, timeout = sys.argv[1:6]
    misses = first_questions(queries, int(sent), blocked_set(policy))
    lost = float(timeout) * 1000
    lat = {k: v for k, v in first_latencies(verbose, misses).items() if v is not None}
    vals = sorted([lat.get(k, lost) for k in misses])
    out = (f"misses {len(misses)} answered {len(lat)} p50 {pct(vals, 0.5):.1f} "
           f"p90 {pct(vals, 0.9):.1f} p99 {pct(vals, 0.99):.1f}")
    if len(sys.argv) > 6:
        lossy = blocked_set(sys.argv[6])
        lv = sorted([lat.get(k, lost) for k in misses if is_blocked(k[0], lossy)])
        out += f" lossy {len(lv)} p99 {pct(lv, 0.99):.1f}"
    print(out)


if __name__ == "__main__":
    main()
