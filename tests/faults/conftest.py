"""tests/faults/conftest.py - fixtures for the fault-injection suite.

The daemon, the fake internet and the helpers are tests/e2e's (loaded from there, not
copied): `internet`, `bulwark`, `workdir` are the e2e fixtures, `e2e` is tests/e2e's
conftest module (default_config, ctl, write_domains, ...). Added here:

  Load            dnsperf at a fixed rate in the background; .result() parses its report
                  and the per-query latencies (-v) into a LoadResult
  load            (function) a factory: load(port, names, qps=, seconds=) -> a started Load
  SHORT           True in the short form (FAULTS_SHORT=1): cases shorten their phases

Every case checks the same promise: >= 99.9 % of the queries answered within 2 s
(dnsperf's timeout is 2 s, so a late answer counts as lost), with only the rcodes the
case documents.
"""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time

import pytest

FAULTS_DIR = os.path.dirname(os.path.abspath(__file__))
E2E_DIR = os.path.join(os.path.dirname(FAULTS_DIR), "e2e")

_spec = importlib.util.spec_from_file_location("e2e_conftest", os.path.join(E2E_DIR,
                                                                            "conftest.py"))
e2e = importlib.util.module_from_spec(_spec)
sys.modules["e2e_conftest"] = e2e
_spec.loader.exec_module(e2e)  # puts tests/e2e on sys.path (dnsutil, fakenet, feedserver)

# the e2e fixtures, under their own names
internet = e2e.internet
bulwark = e2e.bulwark
workdir = e2e.workdir
pytest_sessionstart = e2e.pytest_sessionstart
pytest_report_header = e2e.pytest_report_header

SHORT = os.environ.get("FAULTS_SHORT") == "1"
ANSWERED_MIN = 0.999  # of the queries sent, answered within TIMEOUT
TIMEOUT = 2


class LoadResult:
    def __init__(self, text, latencies):
        self.text = text
        self.latencies = sorted(latencies)

        def num(pattern, conv=int):
            m = re.search(pattern, text)
            return conv(m.group(1)) if m else None
        self.sent = num(r"Queries sent:\s+(\d+)") or 0
        self.completed = num(r"Queries completed:\s+(\d+)") or 0
        self.lost = num(r"Queries lost:\s+(\d+)") or 0
        self.qps = num(r"Queries per second:\s+([\d.]+)", float) or 0.0
        self.rcodes = {}
        m = re.search(r"Response codes:\s+(.*)", text)
        if m:
            for code, n in re.findall(r"([A-Z]+) (\d+) \(", m.group(1)):
                self.rcodes[code] = int(n)

    @property
    def answered(self):
        return self.completed / self.sent if self.sent else 0.0

    def pct(self, p):
        if not self.latencies:
            return float("nan")
        return self.latencies[min(len(self.latencies) - 1, int(len(self.latencies) * p))]

    def summary(self):
        return ("sent %d answered %.3f%% (lost %d) at %.0f qps, p99 %.1f ms, max %.1f ms, "
                "rcodes %s" % (self.sent, 100 * self.answered, self.lost, self.qps,
                               1000 * self.pct(0.99), 1000 * self.pct(1.0), self.rcodes))

    def check(self, rcodes=("NOERROR", "NXDOMAIN"), minimum=ANSWERED_MIN):
        """The promise: answered >= minimum within 2 s, only these rcodes."""
        print("load: " + self.summary())
        assert self.sent > 0, "dnsperf sent nothing:\n" + self.text
        assert self.answered >= minimum, "answered %.3f%% < %.1f%%: %s\n%s" % (
            100 * self.answered, 100 * minimum, self.summary(), self.text[-2000:])
        odd = {k: v for k, v in self.rcodes.items() if k not in rcodes}
        assert not odd, "unexpected rcodes %s (allowed %s): %s" % (odd, rcodes, self.summary())
        return self


class Load:
    """dnsperf against 127.0.0.1:port at a fixed rate, the names in turn (A queries unless a
    name is given as "name TYPE")."""

    def __init__(self, d, port, names, qps=1000, seconds=10, clients=4, outstanding=4000):
        self.qfile = os.path.join(d, "queries-%d-%d.txt" % (port, time.monotonic_ns()))
        with open(self.qfile, "w") as f:
            for n in names:
                f.write(n if " " in n else n + " A")
                f.write("\n")
        self.out = os.path.join(d, "dnsperf-%d-%d.out" % (port, time.monotonic_ns()))
        self.seconds = seconds
        self.argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", self.qfile,
                     "-Q", str(qps), "-l", str(seconds), "-t", str(TIMEOUT), "-c", str(clients),
                     "-q", str(outstanding), "-v"]
        self.proc = None

    def start(self):
        with open(self.out, "w") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT)
        return self

    def result(self):
        try:
            self.proc.wait(self.seconds + TIMEOUT + 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with open(self.out, errors="replace") as f:
            text = f.read()
        # -v: "> NOERROR name A 0.000123" per answer
        lat = [float(m) for m in re.findall(r"^> \S+ \S+ \S+ ([\d.]+)$", text, re.M)]
        summary = text[text.find("Statistics:"):] if "Statistics:" in text else text[-3000:]
        return LoadResult(summary, lat)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def load(tmp_path):
    loads = []

    def start(port, names, **kw):
        ld = Load(str(tmp_path), port, names, **kw).start()
        loads.append(ld)
        return ld
    yield start
    for ld in loads:
        ld.stop()


def phase(seconds_long, seconds_short):
    """A phase's length: shorter in the short form."""
    return seconds_short if SHORT else seconds_long


def wait_for(pred, timeout, what, step=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(step)
