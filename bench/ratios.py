#!/usr/bin/env python3
"""ratios.py - Bulwark's QPS against the best peer and against `limit`, per rep, from one
results.tsv of ../shared/bench/run.sh (ratios are only meaningful within one run), and
Bulwark's peak RSS with the 1m policy against its bar (RSS_BAR_MB, 100 MB: issue 21; the
process's VmHWM after the warm-up and the measured runs, as the harness reads it)."""
import csv
import sys
from collections import defaultdict

PEERS = {"unbound", "dnsdist", "pdns-recursor", "kresd"}
RSS_BAR_MB = 100.0


def main(path):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    by = defaultdict(dict)
    lost = {}
    for r in rows:
        key = (r["rep"], r["policy"], r["mix"])
        by[key][r["target"]] = float(r["qps"])
        if r["target"] == "bulwark":
            lost[key] = r["lost"]
    print("rep policy mix   bulwark_qps  best_peer(qps)             x_best  x_limit  lost")
    for key in sorted(by):
        t = by[key]
        if "bulwark" not in t:
            continue
        bw = t["bulwark"]
        peers = {k: v for k, v in t.items() if k in PEERS}
        best = max(peers.items(), key=lambda kv: kv[1]) if peers else None
        lim = t.get("limit")
        xb = f"{bw / best[1]:.2f}" if best else "-"
        xl = f"{bw / lim:.2f}" if lim else "-"
        bs = f"{best[0]}({best[1]:.0f})" if best else "-"
        print(f"{key[0]:>3} {key[1]:<6} {key[2]:<6} {bw:>11.0f}  {bs:<25} {xb:>6} {xl:>8}  {lost[key]}")
    rss = [float(r["rss_mb"]) for r in rows
           if r["target"] == "bulwark" and r["policy"] == "1m" and r["rss_mb"] != "NA"]
    if rss:
        peak = max(rss)
        print(f"memory: bulwark peak RSS with the 1m policy {peak:.1f} MB (bar {RSS_BAR_MB:.0f} MB): "
              + ("ok" if peak <= RSS_BAR_MB else "OVER THE BAR"))


if __name__ == "__main__":
    main(sys.argv[1])
