#!/usr/bin/env python3
"""bench/internet/report.py RESULTS_TSV - the table of bench/cold.sh, its coalescing line,
the ratio of each saturation round ("cold: per-round ratios bulwark/best-peer-of-that-round:
R1 R2 ...", from the sat_reps column: Bulwark's answers/s over the best peer's in the same
round) and its last line: "cold: bulwark QPS ans/s p99 MS ms up/q U; best peer NAME QPS
ans/s p99 MS ms up/q U; ratio R" (sat: the median of the rounds; best peer: the most
answers/s at saturation)."""
import csv
import sys

HEAD = [("target", "target", "{}"), ("sat", "sat ans/s", "{:.0f}"),
        ("sat_reps", "sat reps", "{}"), ("sat_lost", "lost", "{:.0f}"),
        ("sat_servfail", "SERVFAIL", "{:.0f}"),
        ("sat_cpu", "CPU%", "{:.0f}"), ("net_cpu", "net CPU%", "{:.0f}"),
        ("fixed", "fixed ans/s", "{:.0f}"), ("fixed_lost", "lost", "{:.0f}"),
        ("servfail", "SERVFAIL", "{:.0f}"),
        ("sf_peer_ok", "SERVFAIL/lost a peer resolved", "{:.0f}"), ("misses", "misses", "{:.0f}"),
        ("p50", "p50 ms", "{:.1f}"), ("p90", "p90 ms", "{:.1f}"), ("p99", "p99 ms", "{:.1f}"),
        ("lossy_p99", "lossy p99", "{:.0f}"),
        ("upq", "up/q", "{:.2f}"), ("cpu_us", "CPU us/ans", "{:.0f}"),
        ("rss_mb", "RSS MB", "{:.1f}"),
        ("coal", "coalesce", "{:.0f}")]


def cell(row, key, fmt):
    v = row.get(key, "")
    try:
        return fmt.format(float(v)) if fmt != "{}" else (v or "-")
    except ValueError:
        return v or "-"


def summary(name, row):
    return (f"{name} {float(row['sat']):.0f} ans/s p99 {float(row['p99']):.1f} ms "
            f"up/q {float(row['upq']):.2f}")


def round_ratios(bulwark, peers):
    """Bulwark's answers/s over the best peer's, round by round; [] without sat_reps."""
    try:
        reps = [[float(v) for v in r["sat_reps"].split("/")] for r in [bulwark] + peers]
    except (AttributeError, KeyError, ValueError):
        return []
    rounds = min(len(r) for r in reps)
    return [reps[0][i] / max(max(r[i] for r in reps[1:]), 1e-9) for i in range(rounds)]


def main():
    rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
    table = [[h for _, h, _ in HEAD]] + [[cell(r, k, f) for k, _, f in HEAD] for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(HEAD))]
    for t in table:
        print("  ".join(c.rjust(w) for c, w in zip(t, widths)))
    print("(ans/s: answers NOERROR or NXDOMAIN a second; "
          "sat: a cold start with as many queries outstanding as SAT_Q, the median of SAT_REPS "
          "rounds (sat reps: each round's, in order), lost, SERVFAIL, CPU% of the resolver's "
          "core and net CPU% of the internet's processes in that round; fixed: a cold start at "
          "RATE queries/s; latency of misses (lossy p99: the misses in the zones whose only server "
          "loses half its packets), up/q (upstream queries per client query), "
          "SERVFAIL and CPU from the fixed run; SERVFAIL/lost a peer resolved: the distinct "
          "questions of the fixed run this target answered SERVFAIL (or not at all) that another "
          "target resolved every time (bench/internet/unresolved.py); coalesce: upstream "
          "queries for 100 identical uncached queries)")
    if rows:
        print("coalescing: " + ", ".join(
            f"{r['target']} {r['coal']}" + (" upstream for 100 identical queries" if i == 0 else "")
            for i, r in enumerate(rows)))
    by = {r["target"]: r for r in rows}
    peers = [r for r in rows if r["target"] != "bulwark"]
    if "bulwark" not in by or not peers:
        print("cold: need bulwark and at least one peer for the ratio")
        return
    ratios = round_ratios(by["bulwark"], peers)
    if ratios:
        print("cold: per-round ratios bulwark/best-peer-of-that-round: "
              + " ".join(f"{r:.2f}" for r in ratios))
    best = max(peers, key=lambda r: float(r["sat"]))
    ratio = float(by["bulwark"]["sat"]) / max(float(best["sat"]), 1e-9)
    print(f"cold: {summary('bulwark', by['bulwark'])}; best peer {summary(best['target'], best)}; "
          f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
