#!/usr/bin/python3
"""tools/guard-popular.py - makes the guard's popular list (etc/guard/popular-domains.txt):
the registrable domains, by the Public Suffix List (libpsl, the same list the daemon
uses), of the names in one or more popularity lists (one name a line, or Tranco's
"RANK,NAME"), sorted and unique, under a header that names the sources.

    tools/guard-popular.py --header "source, date, licence" LIST... > popular-domains.txt
"""
import argparse
import ctypes
import sys


def registrable_fn():
    lib = ctypes.CDLL("libpsl.so.5")
    lib.psl_latest.restype = ctypes.c_void_p
    lib.psl_latest.argtypes = [ctypes.c_char_p]
    lib.psl_registrable_domain.restype = ctypes.c_char_p
    lib.psl_registrable_domain.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ctx = lib.psl_latest(None)
    if not ctx:
        sys.exit("guard-popular: libpsl has no list")

    def registrable(name):
        r = lib.psl_registrable_domain(ctx, name.encode())
        return r.decode() if r else None
    return registrable


def names(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.split("#", 1)[0].strip().lower()
            if "," in line:
                line = line.split(",", 1)[1].strip()
            if line:
                yield line.rstrip(".")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--header", action="append", default=[],
                    help="a comment line for the header (repeatable)")
    ap.add_argument("lists", nargs="+")
    args = ap.parse_args()
    registrable = registrable_fn()
    out = set()
    for path in args.lists:
        for n in names(path):
            r = registrable(n)
            if r:
                out.add(r)
    for h in args.header:
        print("# " + h if h else "#")
    print("# %d registrable domains" % len(out))
    for r in sorted(out):
        print(r)


if __name__ == "__main__":
    main()
