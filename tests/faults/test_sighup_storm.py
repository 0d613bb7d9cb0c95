"""Case 5: 100 SIGHUPs in 10 s under load, the config rewritten before each.

Config i has the standard feeds plus one feed of its own parity: even versions block
keep.insecure.tld, odd ones gone.insecure.tld; the last version (99, odd) adds a feed
that blocks hup.insecure.tld, which no earlier version has. Checks: >= 99.9 % answered
within 2 s with NOERROR/NXDOMAIN only (a SERVFAIL or a lost answer would show a reload
that got in the way), the daemon alive, and afterwards the last config in force:
hup and gone blocked, keep not.
"""

import os
import signal
import time

import yaml

import dnsutil
from conftest import e2e, wait_for

NAMES = ["www.insecure.tld", "evil-target.insecure.tld", "alias.insecure.tld",
         "phish.insecure.tld", "www.insecure.tld AAAA", "newly.insecure.tld"]


def test_hundred_sighups_in_ten_seconds(internet, bulwark, load, workdir):
    even = e2e.write_domains(os.path.join(workdir, "even.txt"), ["keep.insecure.tld"])
    odd = e2e.write_domains(os.path.join(workdir, "odd.txt"), ["gone.insecure.tld"])
    last = e2e.write_domains(os.path.join(workdir, "last.txt"), ["hup.insecure.tld"])

    def config(port, i):
        conf = e2e.default_config(internet, port, workdir)
        conf["policy"]["feeds"].append({"name": "parity", "category": "malware",
                                        "format": "domains", "file": odd if i % 2 else even})
        if i == 99:
            conf["policy"]["feeds"].append({"name": "last", "category": "malware",
                                            "format": "domains", "file": last})
        return conf
    d = bulwark(lambda port, w: config(port, 0), workdir=workdir)
    assert dnsutil.is_blocked(d.query("keep.insecure.tld"))
    ld = load(d.port, NAMES, qps=1000, seconds=14)
    time.sleep(2)
    t = time.monotonic()
    for i in range(1, 100):
        d.write_config(yaml.safe_dump(config(d.port, i), sort_keys=False))
        os.kill(d.pid, signal.SIGHUP)
        time.sleep(max(0.0, t + i * 0.1 - time.monotonic()))
    os.kill(d.pid, signal.SIGHUP)  # the 100th
    print("100 SIGHUPs in %.1fs" % (time.monotonic() - t))
    r = ld.result().check()
    d.assert_alive()
    wait_for(lambda: dnsutil.is_blocked(d.query("hup.insecure.tld", timeout=2)), 15,
             "hup.insecure.tld blocked (the last config)")
    assert dnsutil.is_blocked(d.query("gone.insecure.tld", timeout=2))
    assert not dnsutil.is_blocked(d.query("keep.insecure.tld", timeout=2))
    assert r.rcodes.get("SERVFAIL", 0) == 0, r.summary()
    st = e2e.ctl(os.path.join(workdir, "state"), "status").stdout
    print(st.strip().splitlines()[-3:])
