#!/usr/bin/python3
"""tests/alloc/sweep.py - the allocation-failure sweep (make test-alloc; STYLE rule 18).

Runs the programs of the allocation-failure build (make ALLOC_FAULTS=1, build-alloc/) with
BW_ALLOC_FAIL_AT=N: the Nth of Bulwark's own allocations returns NULL
(docs/internals/alloc-faults.md). A run may fail (a unit test's assertion, the daemon's exit
with an error), but must never crash, hang, leak or trip a sanitizer.

  tests/alloc/sweep.py [--full] [--unit-only | --daemon-only] [-j JOBS] [--only NAME]

  short form (default, make test): the regression list (tests/alloc/regressions.txt) and a
      few N values spread over each program's count; under a minute.
  --full: for each unit test binary every N from 1 to its allocation count, within a time
      budget per binary (BUDGET_S, default 90 CPU-seconds): a binary whose runs would take
      longer gets its first N consecutively and a stride over the rest (printed); the
      daemon scenario every N over its first DAEMON_MAX (default 3000) allocations, with a
      stride above that budget as well.

The daemon scenario: start on a one-feed config on 127.0.0.1, one query for a blocked name
(NXDOMAIN from the feed, no upstream needed), SIGHUP, a second query, SIGTERM. It runs in a
private network namespace (unshare -n, as tests/e2e/run.sh), so it binds loopback only.
For each N the daemon either does it all with the right answers and exits 0, or exits
non-zero with a message saying "out of memory" on stderr; never a signal, a sanitizer
report, a hang or a wrong answer.
"""

import argparse
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BW_ALLOC_BUILD", os.path.join(ROOT, "build-alloc"))
REGRESSIONS = os.path.join(ROOT, "tests", "alloc", "regressions.txt")

SAN_ENV = {
    # leaks are reported at exit (LSan); a distinct exit status for each sanitizer
    "ASAN_OPTIONS": ("detect_leaks=1:exitcode=86:abort_on_error=0:handle_segv=1:"
                     # ASan, not cmocka, reports a SEGV: with the stack
                     "allow_user_segv_handler=0"),
    "LSAN_OPTIONS": "exitcode=87",
    "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1:exitcode=88",
}
SAN_PATTERNS = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|"
                          r"Test failed with exception|Segmentation fault|Aborted")


def count_line(text):
    m = re.findall(r"bw-alloc: (\d+) allocations", text)
    return int(m[-1]) if m else 0


def env_for(n, count=False, fail_all=False):
    e = dict(os.environ)
    e.update(SAN_ENV)
    e.pop("BW_ALLOC_FAIL_ALL", None)
    if fail_all:
        e["BW_ALLOC_FAIL_ALL"] = "1"
    if n:
        e["BW_ALLOC_FAIL_AT"] = str(n)
    else:
        e.pop("BW_ALLOC_FAIL_AT", None)
    if count:
        e["BW_ALLOC_COUNT"] = "1"
    return e


def classify(rc, out, timed_out, unit=False):
    """'ok', 'failed' (a reported failure: allowed) or a problem: 'hang', 'crash', 'sanitizer',
    'leak'. A unit test whose assertion failed leaves the test function at once (cmocka
    longjmps), so what the test itself still held leaks: in a run where a test failed a leak
    is 'failed' (not counted); where every test passed, it is a problem."""
    if timed_out:
        return "hang"
    if re.search(r"ERROR: AddressSanitizer|runtime error:", out) or rc in (86, 88):
        # a test that reads the NULL an API returned (assert_string_equal(NULL, ...)) is
        # the test's own crash, not Bulwark's: its first frame of ours is in tests/
        m = re.search(r"ERROR: AddressSanitizer: SEGV.*?\n(?:.*\n)*?.* in \S+ "
                      r"((?:src|tools|tests)/\S+)", out)
        if unit and m and m.group(1).startswith("tests/"):
            return "test-crash"
        return "sanitizer"
    if "ERROR: LeakSanitizer" in out or rc == 87:
        if rc < 0 or "Test failed with exception" in out:
            return "crash"
        if unit and re.search(r"\[  FAILED  \]", out):
            return "failed"
        return "leak"
    if rc < 0 or "Test failed with exception" in out:
        return "crash"
    return "ok" if rc == 0 else "failed"


def summary(out):
    """The lines that say what went wrong (the sanitizer's headline and first frames)."""
    lines = out.splitlines()
    for i, l in enumerate(lines):
        if SAN_PATTERNS.search(l):
            return "\n".join(lines[i:i + 12])
    return "\n".join(lines[-12:])


# ---- unit tests ---------------------------------------------------------------------------
def run_unit(binary, n, timeout):
    t0 = time.monotonic()
    try:
        p = subprocess.run([binary], env=env_for(n), capture_output=True, timeout=timeout,
                           cwd=ROOT)
        rc, out, to = p.returncode, (p.stdout + p.stderr).decode(errors="replace"), False
    except subprocess.TimeoutExpired as e:
        rc, to = -9, True
        out = ((e.stdout or b"") + (e.stderr or b"")).decode(errors="replace")
    return classify(rc, out, to, unit=True), rc, out, time.monotonic() - t0


def choose(total, budget_runs, first):
    """N values: all of 1..total when they fit budget_runs, else the first `first` and a
    stride over the rest. Returns (list, description)."""
    if total <= budget_runs:
        return list(range(1, total + 1)), "every N in 1..%d" % total
    first = min(first, budget_runs // 2)
    rest = budget_runs - first
    stride = max(1, (total - first) // max(1, rest))
    ns = list(range(1, first + 1)) + list(range(first + stride, total + 1, stride))
    return ns, "N 1..%d, then every %dth to %d (%d runs)" % (first, stride, total, len(ns))


def sample(total, k):
    if total <= 0:
        return []
    return sorted({max(1, (total * i) // (k + 1)) for i in range(1, k + 1)})


def regressions():
    out = {}
    if os.path.exists(REGRESSIONS):
        for line in open(REGRESSIONS):
            line = line.split("#", 1)[0].split()
            if len(line) == 2:
                out.setdefault(line[0], []).append(int(line[1]))
    return out


def count_unit(path, full):
    """(allocation count, seconds a run takes, rc, output) of a run without a fault."""
    t0 = time.monotonic()
    p = subprocess.run([path], env=env_for(0, count=True), capture_output=True, cwd=ROOT,
                       timeout=300)
    out = (p.stdout + p.stderr).decode(errors="replace")
    once = time.monotonic() - t0
    if full and once < 2:  # the first run pays for a cold start: time a second one
        t0 = time.monotonic()
        subprocess.run([path], env=env_for(0), capture_output=True, cwd=ROOT, timeout=300)
        once = min(once, time.monotonic() - t0)
    return count_line(out), once, p.returncode, out


def sweep_units(args, pool, problems):
    regs = regressions()
    bins = sorted(b for b in os.listdir(os.path.join(BUILD, "tests"))
                  if b.startswith("test_") and not b.endswith(".d"))
    if args.only:
        bins = [b for b in bins if b in args.only]
    paths = [os.path.join(BUILD, "tests", b) for b in bins]
    counts = list(pool.map(lambda p: count_unit(p, args.full), paths))
    plan = []  # (binary, how, [N]) then every run of every binary on the pool at once
    for b, path, (total, once, rc, out) in zip(bins, paths, counts):
        if rc != 0:
            problems.append((b, 0, "fails without a fault", summary(out)))
            print("%-22s FAILS WITHOUT A FAULT (rc %d)" % (b, rc), flush=True)
            continue
        if args.full:
            budget_runs = max(20, int(args.budget / max(once, 0.02)))
            ns, how = choose(total, budget_runs, args.first)
        else:
            # the short form: a few seconds per binary (one N for the slow ones)
            ns = sample(total, max(1, min(args.samples, int(6 / max(once, 0.01)))))
            how = "%d samples of 1..%d" % (len(ns), total)
        ns = sorted(set(ns) | {n for n in regs.get(b, []) if n <= total})
        plan.append((b, how, [(path, n, max(30, once * 10)) for n in ns]))
    runs = [r for _, _, rs in plan for r in rs]
    t1 = time.monotonic()
    res = dict(zip([(p, n) for p, n, _ in runs],
                   pool.map(lambda r: run_unit(*r), runs)))
    for b, how, rs in plan:
        kinds, secs = {}, 0.0
        for path, n, _ in rs:
            kind, rc, out, t = res[(path, n)]
            secs += t
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind not in ("ok", "failed", "test-crash"):
                problems.append((b, n, kind, summary(out)))
        print("%-22s %s: %s  (%.0f s of runs)" % (b, how, " ".join("%s %d" % kv for kv in
              sorted(kinds.items())), secs), flush=True)
    print("unit tests: %d runs in %.0f s" % (len(runs), time.monotonic() - t1), flush=True)


# ---- the daemon ---------------------------------------------------------------------------
BLOCKED = "evil.example"
CONFIG = """server:
  listen:
    - {{ address: 127.0.0.1, port: {port} }}
  workers: 1
  access-control:
    - {{ network: 127.0.0.0/8, action: allow }}
  state-dir: {dir}/state
  user: root
resolver:
  mode: forward
  forward: [ "127.0.0.1@9" ]
  dnssec: false
cache: {{ size: 1M }}
policy:
  feeds:
    - {{ name: testfeed, category: malware, format: domains, file: {dir}/feed.txt }}
  watch-interval: 0s
log: {{ level: warning }}
"""


def dns_query(port, name, qid, tcp=False):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        if tcp:
            s.connect(("127.0.0.1", port))
            s.sendall(struct.pack(">H", len(q)) + q)
            data = b""
            while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
                more = s.recv(4096)
                if not more:
                    return None
                data += more
            return data[2:]
        s.sendto(q, ("127.0.0.1", port))
        data = s.recv(4096)
    except OSError:
        return None
    finally:
        s.close()
    return data


def run_daemon(n, port, timeout=20, fail_all=False):
    """One scenario with BW_ALLOC_FAIL_AT=n (0: none; fail_all: and every one after).
    Returns (kind, detail, out)."""
    d = tempfile.mkdtemp(prefix="bw-alloc-")
    os.mkdir(os.path.join(d, "state"))
    with open(os.path.join(d, "feed.txt"), "w") as f:
        f.write("# alloc sweep\n%s\n" % BLOCKED)
    conf = os.path.join(d, "bulwark.yaml")
    with open(conf, "w") as f:
        f.write(CONFIG.format(port=port, dir=d))
    errpath = os.path.join(d, "stderr")
    errf = open(errpath, "wb")
    p = subprocess.Popen([os.path.join(BUILD, "bulwark"), "-f", "-c", conf],
                         env=env_for(n, True, fail_all),
                         stdout=errf, stderr=errf, cwd=d)
    answers, steps = [], []
    deadline = time.monotonic() + timeout

    def ask(qid, tcp=False, tries=None):
        while time.monotonic() < deadline and p.poll() is None and tries != 0:
            r = dns_query(port, BLOCKED, qid, tcp)
            if r is not None:
                return r
            tries = tries - 1 if tries else tries
        return None

    r = ask(1)
    if r is not None:
        answers.append(r)
        steps.append("q1")
        p.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        if p.poll() is None:
            r = ask(2)
            if r is not None:
                answers.append(r)
                steps.append("q2")
            # over TCP: a connection of its own (a few tries: a refused one is allowed)
            r = ask(3, tcp=True, tries=4)
            if r is not None:
                answers.append(r)
                steps.append("tcp")
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        steps.append("term")
    try:
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
        hung = False
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        hung = True
    errf.close()
    out = open(errpath, errors="replace").read()
    subprocess.run(["rm", "-rf", d])
    kind = classify(rc, out, hung)
    for a in answers:  # a query answered must be answered right: NXDOMAIN from the feed
        if len(a) < 12 or (a[3] & 0x0f) != 3 or not (a[2] & 0x80):
            rcode = a[3] & 0x0f if len(a) >= 4 else -1
            if kind in ("ok", "failed") and rcode != 2:  # SERVFAIL is an honest answer
                kind = "wrong-answer"
    if kind == "failed" and not re.search(r"out of memory|cannot allocate", out, re.I):
        kind = "unclear-error"
    if kind == "ok" and "q1" not in steps:
        kind = "no-answer"
    return kind, "rc %d, %s" % (rc, " ".join(steps) or "never answered"), out


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sweep_daemon(args, pool, problems):
    kind, detail, out = run_daemon(0, free_port())
    total = count_line(out)
    if kind != "ok":
        problems.append(("bulwark", 0, "fails without a fault: " + detail, summary(out)))
        print("bulwark scenario FAILS WITHOUT A FAULT: %s %s" % (kind, detail), flush=True)
        return
    regs = regressions().get("bulwark", [])
    if args.full:
        ns, how = choose(min(total, args.daemon_max), args.daemon_budget, args.daemon_max)
    else:
        ns = sample(total, args.daemon_samples)
        how = "%d samples of 1..%d" % (len(ns), total)
    ns = sorted(set(ns) | set(regs))
    t1 = time.monotonic()
    for fail_all in ([False, True] if args.full else [False]):
        t1 = time.monotonic()
        res = list(pool.map(lambda n: (n,) + run_daemon(n, free_port(), fail_all=fail_all), ns))
        kinds = {}
        name = "bulwark" + (" (FAIL_ALL)" if fail_all else "")
        for n, kind, detail, out in res:
            kinds[kind] = kinds.get(kind, 0) + 1
            if kind not in ("ok", "failed"):
                problems.append((name, n, "%s (%s)" % (kind, detail), summary(out)))
        print("%-22s %s of %d in the scenario: %s  (%.0f s)" % (name, how, total,
              " ".join("%s %d" % kv for kv in sorted(kinds.items())), time.monotonic() - t1),
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--daemon-only", action="store_true")
    ap.add_argument("--only", nargs="*", help="unit test binaries (test_conf ...)")
    ap.add_argument("-j", "--jobs", type=int, default=2)
    ap.add_argument("--budget", type=float, default=float(os.environ.get("BUDGET_S", 90)))
    ap.add_argument("--first", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=6)
    ap.add_argument("--daemon-max", type=int, default=int(os.environ.get("DAEMON_MAX", 3000)))
    ap.add_argument("--daemon-budget", type=int, default=3000)
    ap.add_argument("--daemon-samples", type=int, default=12)
    args = ap.parse_args()

    if not args.unit_only and os.environ.get("BW_ALLOC_IN_NETNS") != "1":
        # the daemon binds loopback of a private network namespace only
        if os.geteuid() != 0:
            sys.exit("tests/alloc/sweep.py: must run as root (unshare -n)")
        env = dict(os.environ, BW_ALLOC_IN_NETNS="1")
        cmd = ["unshare", "-n", "--", "sh", "-c", 'ip link set lo up && exec "$0" "$@"',
               sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
        sys.exit(subprocess.run(cmd, env=env).returncode)
    if not args.unit_only and [x for _, x in socket.if_nameindex()] != ["lo"]:
        sys.exit("tests/alloc/sweep.py: not in a private network namespace")

    t0 = time.monotonic()
    problems = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        if not args.daemon_only:
            sweep_units(args, pool, problems)
        if not args.unit_only:
            sweep_daemon(args, pool, problems)
    for name, n, kind, text in problems:
        print("\n== %s BW_ALLOC_FAIL_AT=%d: %s\n%s" % (name, n, kind, text))
    print("\nallocation sweep (%s): %d problem(s), %.0f s" %
          ("full" if args.full else "short", len(problems), time.monotonic() - t0))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
