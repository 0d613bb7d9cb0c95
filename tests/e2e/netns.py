"""tests/e2e/netns.py - hosts of their own for multi-node tests.

A Fleet is a bridge in the test's private network namespace (made by run.sh) and, per
host, a named network namespace joined to the bridge by a veth pair, with the address
10.77.0.<n>/24. The test's own namespace is 10.77.0.254 on the bridge, so the test talks
to every host; the hosts talk to each other. Nothing here can reach any other network:
the bridge has no uplink and the namespaces are deleted at teardown.

    fleet = Fleet("fleet")
    p = fleet.host(1)                 # namespace bwt-<pid>-1 with address 10.77.0.1
    proc = p.popen(["knotd", ...])    # runs inside the host's namespace
    fleet.close()                     # kills what was started, deletes the namespaces
"""

import os
import signal
import subprocess

SUBNET = "10.77.0"
BRIDGE_ADDR = SUBNET + ".254"


def _ip(*args, ns=None):
    cmd = ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


class Host:
    def __init__(self, fleet, n):
        self.fleet = fleet
        self.n = n
        self.ns = "bwt-%d-%d" % (os.getpid(), n)
        self.addr = "%s.%d" % (SUBNET, n)
        self.procs = []
        veth_out, veth_in = "bwv%d-%d" % (os.getpid() % 10000, n), "eth0"
        _ip("netns", "add", self.ns)
        self.fleet.namespaces.append(self.ns)
        _ip("link", "add", veth_out, "type", "veth", "peer", "name", "bwtmp%d" % n)
        _ip("link", "set", "bwtmp%d" % n, "netns", self.ns)
        _ip("link", "set", "bwtmp%d" % n, "name", veth_in, ns=self.ns)
        _ip("link", "set", veth_out, "master", fleet.bridge, "up")
        _ip("addr", "add", self.addr + "/24", "dev", veth_in, ns=self.ns)
        _ip("link", "set", veth_in, "up", ns=self.ns)
        _ip("link", "set", "lo", "up", ns=self.ns)

    def argv(self, argv):
        return ["ip", "netns", "exec", self.ns] + list(argv)

    def popen(self, argv, **kw):
        proc = subprocess.Popen(self.argv(argv), **kw)
        self.procs.append(proc)
        return proc

    def run(self, argv, **kw):
        return subprocess.run(self.argv(argv), **kw)


class Fleet:
    def __init__(self, name="bwbr%d" % (os.getpid() % 10000)):
        self.bridge = name[:15]
        self.namespaces = []
        self.hosts = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("link", "set", self.bridge, "up")
        _ip("addr", "add", BRIDGE_ADDR + "/24", "dev", self.bridge)

    def host(self, n):
        if n not in self.hosts:
            self.hosts[n] = Host(self, n)
        return self.hosts[n]

    def close(self):
        for h in self.hosts.values():
            for p in h.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.bridge], stderr=subprocess.DEVNULL)
