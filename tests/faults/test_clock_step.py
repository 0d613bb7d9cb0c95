"""Case 8: the wall clock stepped back an hour, then forward two (to an hour ahead), under
load.

A time namespace (unshare -T) can only offset CLOCK_MONOTONIC and CLOCK_BOOTTIME, and only
before its first process starts, so it cannot step a running daemon's clock; setting the
host's clock would disturb everything else on the machine. So the daemon runs under
libfaketime (Debian's faketime), whose offset is read from a file (cached 1 s) that the
test rewrites: CLOCK_REALTIME (time(), gettimeofday, clock_gettime) jumps; the monotonic
clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as on a real machine whose NTP steps.

After each step: >= 99.9 % of the 1000 qps load answered within 2 s; a local feed file
rewritten after the step is picked up by the watcher (timers recover: the watcher compares
mtimes with the wall clock); a name with a 2 s TTL (short.stale.tld) is fetched afresh
within 4 s of each step (libunbound dates its cache by time(): stepped back an hour, it
served such a record for another hour until the daemon learned to renew its resolvers
when the wall clock steps; the log says so).
"""

import os
import time

import dns.rcode
import pytest

import dnsutil
from conftest import e2e, wait_for

LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
NAMES = ["www.insecure.tld", "evil-target.insecure.tld", "alias.insecure.tld",
         "short.stale.tld", "www.insecure.tld AAAA"]


def test_clock_stepped_back_and_forward(internet, bulwark, load, workdir, monkeypatch):
    if not os.path.exists(LIB):
        pytest.fail("libfaketime is missing (Debian package faketime; tools/deps.sh)")
    offset = os.path.join(workdir, "faketime")
    with open(offset, "w") as f:
        f.write("+0\n")
    wrapper = os.path.join(workdir, "faketime.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexport LD_PRELOAD=%s FAKETIME_TIMESTAMP_FILE=%s '
                'FAKETIME_CACHE_DURATION=1 FAKETIME_DONT_FAKE_MONOTONIC=1 NO_FAKE_STAT=1 '
                'ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"\n'
                'exec %s "$@"\n'
                % (LIB, offset, e2e.bulwark_binary()))
    os.chmod(wrapper, 0o755)
    monkeypatch.setattr(e2e, "bulwark_binary", lambda: wrapper)
    feed = e2e.write_domains(os.path.join(workdir, "live.txt"), ["blocked.insecure.tld"])
    d = bulwark(lambda port, w: e2e.default_config(internet, port, workdir, feeds=[
        {"name": "live", "category": "malware", "format": "domains", "file": feed}]),
        workdir=workdir)
    assert d.query("short.stale.tld").rcode() == dns.rcode.NOERROR
    steps = [("back 1h", "-1h", "newly.insecure.tld"), ("forward 2h", "+1h", "hup.insecure.tld")]
    ld = load(d.port, NAMES, qps=1000, seconds=4 + 9 * len(steps))
    time.sleep(3)
    block = ["blocked.insecure.tld"]
    for what, spec, name in steps:
        with open(offset + ".tmp", "w") as f:
            f.write(spec + "\n")
        os.rename(offset + ".tmp", offset)
        time.sleep(2)  # the library's 1 s cache, then a little
        seen = set()
        last = []

        def ttl_renews():
            m = d.query("short.stale.tld", timeout=2)
            last[:] = [dnsutil.describe(m)]
            if m.rcode() != dns.rcode.NOERROR or 3 in dnsutil.ede_codes(m):
                return None
            seen.add(m.answer[0].ttl)
            return len(seen) >= 2 and max(seen) <= 2
        try:
            wait_for(ttl_renews, 4, "%s: short.stale.tld fetched afresh" % what)
        except AssertionError as e:
            raise AssertionError("%s (TTLs seen %s..%s, last answer %s)"
                                 % (e, min(seen, default=None), max(seen, default=None),
                                    last)) from None
        block.append(name)
        e2e.write_domains(feed, block)
        t = time.monotonic()
        wait_for(lambda: dnsutil.is_blocked(d.query(name, timeout=2)), 6,
                 "%s: the feed file's change picked up" % what)
        print("%s: TTLs seen %s, feed change applied after %.1fs"
              % (what, sorted(seen), time.monotonic() - t))
        time.sleep(max(0.0, 9 - 2 - 4 - (time.monotonic() - t)))
    ld.result().check()
    d.assert_alive()
    log = d.log_text(tail=10**7)
    assert log.count("the wall clock stepped by") == 2, log[-3000:]
