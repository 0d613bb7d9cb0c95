"""Case 1: the upstream hung, then down, then back, under a fixed dnsperf load.

The authority for stale.tld. (its own NSD on 127.53.0.6, fakenet.py) is first made slow
and lossy (what goes to it squeezed through 32 kbit/s with a 20-packet queue: htb on lo),
then frozen
(SIGSTOP: packets go in, nothing comes out: an upstream slower than any timeout), then
thawed (the answers it held come late), then killed (down: ICMP port unreachable), then
started again. netem would be the natural tool, but this kernel has no sch_netem (nor
prio, nor the gact action), so delay and loss come from an htb queue and the other
faults are made on the authority itself (README.md).

The load asks cached names (www.insecure.tld, a blocked name), short.stale.tld (TTL 2:
served stale, EDE 3, once its TTL runs out with the authority gone) and a rolling set of
names under stale.tld that are never cached long (NXDOMAIN with a 2 s negative TTL), so
about a tenth of the load needs the failing authority the whole time.
Checks: >= 99.9 % answered within 2 s (NOERROR, NXDOMAIN or SERVFAIL only), the stale
answer and the SERVFAIL come within 2 s, cached names keep their rate.
resolver.timeout is 1200ms here: with the default 5s a name never seen in a dead zone gets
its SERVFAIL after 5 s (a stale answer still comes after 1.8 s at most).
"""

import os
import signal
import subprocess
import time

import dns.rcode

import dnsutil
from conftest import phase

CACHED = ["www.insecure.tld", "www.insecure.tld AAAA", "alias.insecure.tld",
          "evil-target.insecure.tld", "ok.blocked.insecure.tld", "phish.insecure.tld"]


def names(seconds, qps):
    """Blocks of 10: 7 cached, short.stale.tld, one of 500 names asked every 5 s, and every
    other block a name asked only once in the run (a SERVFAIL while the authority fails)."""
    out = []
    for i in range(seconds * qps // 10 + 10):
        out += CACHED + ["short.stale.tld", "nx%d.stale.tld" % (i % 500)]
        out.append("once%d.stale.tld" % i if i % 2 else "www.insecure.tld")
    return out


def shape(dst, rate):
    """Traffic to dst on lo through an htb class of this rate: a queue (delay) that
    overflows (loss). netem is not in this kernel."""
    for argv in (["qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10"],
                 ["class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate",
                  "10gbit"],
                 ["class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate",
                  rate, "ceil", rate],
                 ["qdisc", "add", "dev", "lo", "parent", "1:20", "pfifo", "limit", "20"],
                 ["filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "u32", "match",
                  "ip", "dst", dst + "/32", "flowid", "1:20"]):
        subprocess.run(["tc"] + argv, check=True)


def unshape():
    subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], stderr=subprocess.DEVNULL)


def timed(d, name, rdtype="A"):
    t = time.monotonic()
    m = d.query(name, rdtype, timeout=2.0)
    return m, time.monotonic() - t


def test_upstream_hung_down_back(internet, bulwark, load):
    d = bulwark(resolver={"timeout": "1200ms"}, serve_stale="1d")
    for n in CACHED:
        name, _, ty = n.partition(" ")
        d.query(name, ty or "A")
    assert timed(d, "short.stale.tld")[0].rcode() == dns.rcode.NOERROR
    slow, hung, down, back = phase(6, 4), phase(8, 4), phase(8, 4), phase(5, 3)
    total = 3 + slow + hung + 2 + down + back
    ld = load(d.port, names(total, 1000), qps=1000, seconds=total)
    cached = load(d.port, CACHED, qps=500, seconds=total)
    nsd = internet.nsd["stale"]
    try:
        time.sleep(3)
        # slow and lossy: what goes to the authority squeezed through 32 kbit/s
        shape("127.53.0.6", "32kbit")
        time.sleep(slow - 1.5)
        m, took = timed(d, "slow-never-seen.stale.tld")
        assert m.rcode() in (dns.rcode.SERVFAIL, dns.rcode.NXDOMAIN) and took < 2.0, (
            took, dnsutil.describe(m))
        print("slow: %s in %.2fs, EDE %s" % (dns.rcode.to_text(m.rcode()), took,
                                               dnsutil.ede_codes(m)))
        time.sleep(1.5)
        unshape()
        # hung: the authority takes the packets and never answers
        os.killpg(nsd.pid, signal.SIGSTOP)
        time.sleep(hung - 1.5)
        m, took = timed(d, "short.stale.tld")
        assert m.rcode() == dns.rcode.NOERROR and took < 2.0, (took, dnsutil.describe(m))
        print("hung: stale answer in %.2fs, EDE %s" % (took, dnsutil.ede_codes(m)))
        m, took = timed(d, "never-seen.stale.tld")
        assert m.rcode() == dns.rcode.SERVFAIL and took < 2.0, (took, dnsutil.describe(m))
        print("hung: SERVFAIL in %.2fs, EDE %s" % (took, dnsutil.ede_codes(m)))
        time.sleep(1.5)
        os.killpg(nsd.pid, signal.SIGCONT)  # its backlog comes out late
        time.sleep(2)
        # down: the authority is gone
        internet.stop_role("stale")
        time.sleep(down - 1)
        m, took = timed(d, "short.stale.tld")
        assert m.rcode() == dns.rcode.NOERROR and took < 2.0, (took, dnsutil.describe(m))
        assert 3 in dnsutil.ede_codes(m), "no EDE 3 (stale answer): " + dnsutil.describe(m)
        print("down: stale answer in %.2fs, TTL %d" % (took, m.answer[0].ttl))
        m, took = timed(d, "never-seen-2.stale.tld")
        assert m.rcode() == dns.rcode.SERVFAIL and took < 2.0, (took, dnsutil.describe(m))
        print("down: SERVFAIL in %.2fs, EDE %s" % (took, dnsutil.ede_codes(m)))
        time.sleep(1)
    finally:
        unshape()
        try:
            os.killpg(nsd.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        internet.stop_role("stale")
        internet.start_role("stale")
    r = ld.result().check(rcodes=("NOERROR", "NXDOMAIN", "SERVFAIL"))
    c = cached.result().check()
    assert c.qps >= 0.95 * 500, "cached names slowed down: " + c.summary()
    # back: fresh answers again
    t = time.monotonic()
    deadline = t + 30
    while True:
        m = d.query("short.stale.tld", timeout=2.0)
        if m.rcode() == dns.rcode.NOERROR and 3 not in dnsutil.ede_codes(m):
            break
        assert time.monotonic() < deadline, "not fresh again: " + dnsutil.describe(m)
        time.sleep(0.5)
    print("back: fresh answers %.1fs after the authority came back" % (time.monotonic() - t))
    d.assert_alive()
    assert r.sent >= 0.95 * 1000 * total, r.summary()
