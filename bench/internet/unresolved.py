#!/usr/bin/env python3
"""bench/internet/unresolved.py [--list FILE] QUERIES VERBOSE... - per target, the
questions it did not resolve although another target did (issue 21: "no SERVFAIL a peer
does not also give"). Each VERBOSE is one target's `dnsperf -v` output of the same query
file QUERIES; the target is the file's name up to its first dot (bulwark.fixed.v:
bulwark). A question is a (name lowercased, without the trailing dot; type) among the
first "Queries sent" lines of QUERIES, blocked names included. A target failed it when
any of its answers to it was not NOERROR or NXDOMAIN (SERVFAIL, another rcode, "> T":
timed out) or no answer line names it at all; a target resolved it when every answer it
gave to it was NOERROR or NXDOMAIN. Prints "TARGET N" a line: N, the questions TARGET
failed that some other target resolved; --list FILE writes them there as
"TARGET name type rcodes resolved-by" (rcodes: what TARGET answered, "-" for nothing).
"""
import os
import sys

from misses import RESOLVED, answers, first_questions


def queries_sent(path):
    """dnsperf's "Queries sent: N" in a `dnsperf -v` output (0 when absent)."""
    with open(path, errors="replace") as f:
        for line in f:
            p = line.split()
            if p[:2] == ["Queries", "sent:"] and len(p) > 2:
                return int(p[2])
    return 0


def outcomes(queries, verbose):
    """{question: set of rcodes} for every question among the run's first "Queries sent"
    lines of QUERIES (an empty set: no answer line at all)."""
    got = {q: set() for q in first_questions(queries, queries_sent(verbose), set())}
    for key, rcode, _ in answers(verbose):
        if key in got:
            got[key].add(rcode)
    return got


def failed(rcodes):
    return not rcodes or bool(rcodes - set(RESOLVED))


def main():
    args = sys.argv[1:]
    listing = None
    if args[:1] == ["--list"]:
        listing, args = args[1], args[2:]
    queries, runs = args[0], args[1:]
    by = {os.path.basename(v).split(".")[0]: outcomes(queries, v) for v in runs}
    lines = []
    for t, got in by.items():
        n = 0
        for q in sorted(got):
            if not failed(got[q]):
                continue
            ok = [p for p, other in by.items() if p != t and other.get(q) and not failed(other[q])]
            if ok:
                n += 1
                lines.append(f"{t} {q[0]} {q[1]} {','.join(sorted(got[q])) or '-'} {','.join(ok)}")
        print(t, n)
    if listing:
        with open(listing, "w") as f:
            f.write("".join(line + "\n" for line in lines))


if __name__ == "__main__":
    main()
