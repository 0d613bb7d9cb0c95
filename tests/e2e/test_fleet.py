"""Fleet: one Knot DNS primary and three Bulwark nodes, each in a network namespace of its
own (netns.py), the RPZ zone transferred with TSIG and kept fresh by NOTIFY + IXFR.

Measures and prints the convergence time from a change on the primary (a dynamic update
with knsupdate) to the last node blocking the new name. The goal (issue 4: <= 1 s with
NOTIFY) is reported, not asserted: tests never assert a time. What is asserted: every
node converges, keeps blocking when the primary dies, and a node restarted while the
primary is down blocks from its last good copy.
"""

import datetime
import os
import subprocess
import time

import dns.message
import dns.query
import dns.rcode
import pytest
import yaml

import conftest
import knot
import netns

ZONE = "rpz.fleet.test"
KEY = ("fleet-key", "hmac-sha256", knot.make_secret("fleet"))
NODES = (11, 12, 13)


def blocked(addr, name, timeout=2.0):
    """NXDOMAIN with EDE 15 from the node. A name it does not block has nowhere to be
    resolved in this test (its forwarder is the loopback of its own namespace, where
    nothing listens), so the node answers SERVFAIL: not blocked."""
    q = dns.message.make_query(name, "A")
    q.use_edns(0, payload=1232)
    r = dns.query.udp(q, addr, port=53, timeout=timeout)
    return r.rcode() == dns.rcode.NXDOMAIN and any(o.otype == 15 for o in r.options)


def wait_blocked(addr, name, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if blocked(addr, name, 0.2):
                return time.monotonic()
        except Exception:
            pass
        time.sleep(0.005)
    return None


class Node:
    def __init__(self, host, workdir):
        self.host = host
        self.dir = os.path.join(workdir, "node%d" % host.n)
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, "bulwark.yaml")
        self.log = os.path.join(self.dir, "bulwark.log")
        self.proc = None
        config = {
            "server": {
                "listen": [{"address": host.addr, "port": 53}],
                "workers": 1,
                "access-control": [{"network": netns.SUBNET + ".0/24", "action": "allow"}],
                "state-dir": os.path.join(self.dir, "state"),
            },
            # nothing to resolve in this test: blocked names are answered by the policy
            "resolver": {"mode": "forward", "dnssec": False, "timeout": "1s",
                         "forward": ["127.0.0.1@5399"]},
            "cache": {"serve-stale": "0"},
            "policy": {"feeds": [{
                "name": "national-cert", "category": "malware", "format": "rpz",
                "primaries": ["%s.1@53" % netns.SUBNET], "zone": ZONE,
                "tsig": {"name": KEY[0], "algorithm": KEY[1], "secret": KEY[2]},
            }]},
            "log": {"level": "info"},
        }
        with open(self.conf, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)

    def start(self):
        log = open(self.log, "ab")
        self.proc = self.host.popen([conftest.bulwark_binary(), "-f", "-c", self.conf],
                                    stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            rc = self.proc.wait(10)
            assert rc == 0, "node %s exited %s:\n%s" % (self.host.addr, rc, self.log_text())

    def log_text(self):
        return open(self.log, errors="replace").read()[-4000:]


def notify_time(node, serial):
    """Wall-clock time of the node's log line for the NOTIFY of `serial` (ms precision)."""
    for line in open(node.log, errors="replace"):
        if "NOTIFY for serial %d:" % serial in line:
            stamp = line.split()[0]  # 2026-11-22T15:03:10.574Z
            t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
            return t.replace(tzinfo=datetime.timezone.utc).timestamp()
    return None


@pytest.fixture
def fleet(tmp_path):
    f = netns.Fleet()
    yield f
    f.close()


def test_fleet_converges_and_fails_safe(fleet, tmp_path):
    work = str(tmp_path)
    primary_host = fleet.host(1)
    hosts = [fleet.host(n) for n in NODES]
    seed = ["seed%d.fleet.example" % i for i in range(50)]
    primary = knot.KnotPrimary(work, primary_host.addr, zone=ZONE, names=seed, key=KEY,
                               notify=["%s@53" % h.addr for h in hosts])
    primary.start(host=primary_host)
    nodes = [Node(h, work) for h in hosts]
    try:
        for n in nodes:
            n.start()
        for n in nodes:
            assert wait_blocked(n.host.addr, "seed7.fleet.example", 20), \
                "node %s never blocked the seed zone:\n%s" % (n.host.addr, n.log_text())

        # a change on the primary reaches every node by NOTIFY + IXFR: three changes by
        # zone reload, then one by dynamic update
        rounds = []
        for round_ in range(4):
            name = "new%d.fleet.example" % round_
            for n in nodes:
                assert not blocked(n.host.addr, name)
            t0 = time.monotonic()
            if round_ < 3:
                primary.edit(add=[name])
            else:
                primary.update(add=[name])
            serial = primary.serial()
            last, own = 0.0, 0.0
            for n in nodes:
                t = wait_blocked(n.host.addr, name, 30)
                seen = time.time() - (time.monotonic() - t)
                assert t is not None, "node %s never blocked %s:\n%s" % (
                    n.host.addr, name, n.log_text())
                last = max(last, t - t0)
                got = notify_time(n, serial)
                assert got is not None, "node %s logged no NOTIFY for serial %d:\n%s" % (
                    n.host.addr, serial, n.log_text())
                own = max(own, seen - got)
            rounds.append((last, own))
        print("\nfleet convergence, change on the primary -> last of 3 nodes blocking "
              "(goal <= 1 s with NOTIFY): zone reload %s; dynamic update %s (Knot sends its "
              "NOTIFY ~1 s after an update). NOTIFY received -> blocking: %s" %
              (", ".join("%.3f s" % a for a, _ in rounds[:3]), "%.3f s" % rounds[3][0],
               ", ".join("%.3f s" % b for _, b in rounds)))

        # a removal converges too
        primary.edit(delete=["new0.fleet.example"])
        deadline = time.monotonic() + 30
        for n in nodes:
            while blocked(n.host.addr, "new0.fleet.example"):
                assert time.monotonic() < deadline, "removal never reached " + n.host.addr
                time.sleep(0.01)

        # the primary dies: every node keeps blocking
        primary.stop()
        time.sleep(1.5)
        for n in nodes:
            assert blocked(n.host.addr, "new1.fleet.example"), n.log_text()
            assert blocked(n.host.addr, "seed3.fleet.example")

        # a node restarted while the primary is down blocks from its last good copy
        nodes[1].stop()
        nodes[1].start()
        assert wait_blocked(nodes[1].host.addr, "new2.fleet.example", 20), \
            "restarted node did not block from last good:\n" + nodes[1].log_text()
        assert not blocked(nodes[1].host.addr, "new0.fleet.example")
    finally:
        errors = []
        for n in nodes:
            try:
                n.stop()
            except AssertionError as e:
                errors.append(str(e))
        primary.stop()
        assert not errors, "\n".join(errors)
