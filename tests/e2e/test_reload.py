"""Policy reloads: a feed file changed on disk is picked up by the watcher within a few
seconds while queries keep flowing with none lost (dnsperf); SIGHUP reloads feeds and the
allowlist at once; a feed that disappears keeps its last good version."""

import os
import re
import subprocess
import threading
import time

import dns.exception
import dns.rcode

import conftest
import dnsutil
from dnsutil import describe

WATCH_DEADLINE = 5.0  # watch-interval is 1s


def wait_until(pred, timeout, what):
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        last = pred()
        if last is True:
            return time.monotonic() - t0
        assert time.monotonic() < deadline, "%s: not within %.0fs; last: %s" % (what, timeout, last)
        time.sleep(0.1)


def blocked_check(d, name, want=True):
    def check():
        r = d.query(name, "A", timeout=2)
        return True if dnsutil.is_blocked(r) == want else describe(r)
    return check


def feed_dict(path, name="urlhaus", category="malware"):
    return {"name": name, "category": category, "format": "domains", "file": path}


def test_watch_reload_under_dnsperf_load(bulwark, workdir):
    feed = conftest.write_domains(os.path.join(workdir, "live.txt"), ["blocked.insecure.tld"])
    d = bulwark(feeds=[feed_dict(feed)], watch_interval="1s")
    assert not dnsutil.is_blocked(d.query("newly.insecure.tld.", "A"))
    qfile = os.path.join(workdir, "queries.txt")
    with open(qfile, "w") as f:
        f.write("www.secure.tld A\nwww.insecure.tld AAAA\nnewly.insecure.tld A\n"
                "blocked.insecure.tld A\nmail.secure.tld A\nalias.insecure.tld A\n"
                "nonexist.secure.tld A\nwww.bogus.tld A\n")
    perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(d.port), "-d", qfile,
                             "-l", "5", "-Q", "400", "-c", "4", "-t", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        # the way feed updaters write: a new file renamed over the old one
        conftest.write_atomic(feed, "# updated\nblocked.insecure.tld\nnewly.insecure.tld\n")
        took = wait_until(blocked_check(d, "newly.insecure.tld."), WATCH_DEADLINE,
                          "newly.insecure.tld blocked after the feed file changed")
        assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))
        out, _ = perf.communicate(timeout=20)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait()
    print(out)
    assert perf.returncode == 0, out
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    assert sent and lost, out
    assert int(sent.group(1)) > 1000, out
    assert int(lost.group(1)) == 0, "queries lost during the reload (blocked after %.1fs):\n%s" \
        % (took, out)
    d.assert_alive()


def test_watch_in_place_rewrite(bulwark, workdir):
    feed = conftest.write_domains(os.path.join(workdir, "inplace.txt"), ["blocked.insecure.tld"])
    d = bulwark(feeds=[feed_dict(feed)], watch_interval="1s")
    assert not dnsutil.is_blocked(d.query("gone.insecure.tld.", "A"))
    time.sleep(0.05)
    with open(feed, "a") as f:  # appended in place: same inode
        f.write("gone.insecure.tld\n")
    wait_until(blocked_check(d, "gone.insecure.tld."), WATCH_DEADLINE, "appended name blocked")
    # and removed again, rewriting the same file
    with open(feed, "w") as f:
        f.write("blocked.insecure.tld\n")
    wait_until(blocked_check(d, "gone.insecure.tld.", want=False), WATCH_DEADLINE,
               "removed name unblocked")
    assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))


def udp_stream(port, names, stop, results):
    """A client that keeps querying; counts answers and timeouts."""
    i = 0
    while not stop.is_set():
        name = names[i % len(names)]
        i += 1
        try:
            dnsutil.query(port, name, "A", timeout=1.0)
            results["answered"] += 1
        except dns.exception.Timeout:
            results["lost"] += 1
        except Exception as e:  # noqa: BLE001 - anything else is a failure too
            results["errors"].append(repr(e))


def test_sighup_reloads_feed(bulwark, workdir):
    feed = conftest.write_domains(os.path.join(workdir, "hup.txt"),
                                  ["blocked.insecure.tld", "keep.insecure.tld"])
    d = bulwark(feeds=[feed_dict(feed)], watch_interval="0s")  # 0 = no polling
    pid = d.pid
    assert not dnsutil.is_blocked(d.query("hup.insecure.tld.", "A"))
    assert dnsutil.is_blocked(d.query("keep.insecure.tld.", "A"))

    stop = threading.Event()
    results = {"answered": 0, "lost": 0, "errors": []}
    t = threading.Thread(target=udp_stream, args=(d.port, ["www.secure.tld.", "keep.insecure.tld.",
                                                           "hup.insecure.tld."], stop, results))
    t.start()
    try:
        with open(feed, "w") as f:
            f.write("blocked.insecure.tld\nhup.insecure.tld\n")
        time.sleep(1.5)
        # polling is off: nothing changes until SIGHUP
        assert not dnsutil.is_blocked(d.query("hup.insecure.tld.", "A")), \
            "feed reloaded without SIGHUP while watch-interval is 0"
        d.reload()
        wait_until(blocked_check(d, "hup.insecure.tld."), 3, "hup.insecure.tld blocked after SIGHUP")
        wait_until(blocked_check(d, "keep.insecure.tld.", want=False), 3,
                   "keep.insecure.tld unblocked after SIGHUP")
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    assert d.pid == pid and d.alive()
    assert results["answered"] > 50, results
    assert results["lost"] == 0 and not results["errors"], results


def test_sighup_reloads_allowlist(bulwark, workdir):
    feed = conftest.write_domains(os.path.join(workdir, "f.txt"), ["allow-later.insecure.tld"])
    port_conf = {}

    def config(port, d):
        c = conftest.default_config(bulwark.internet, port, d, feeds=[feed_dict(feed)],
                                    allowlist=["unrelated.example"], watch_interval="0s")
        port_conf["c"] = c
        return c

    d = bulwark(config)
    assert dnsutil.is_blocked(d.query("allow-later.insecure.tld.", "A"))
    c = port_conf["c"]
    c["policy"]["allowlist"] = ["unrelated.example", "allow-later.insecure.tld"]
    d.write_config(c)
    d.reload()
    wait_until(blocked_check(d, "allow-later.insecure.tld.", want=False), 3,
               "allowlisted name unblocked after SIGHUP")
    r = d.query("allow-later.insecure.tld.", "A")
    assert dnsutil.addresses(r) == ["192.0.2.94"], describe(r)


def test_sighup_bad_feed_keeps_last_good(bulwark, workdir):
    feed = conftest.write_domains(os.path.join(workdir, "lg.txt"), ["blocked.insecure.tld"])
    d = bulwark(feeds=[feed_dict(feed)], watch_interval="0s")
    assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))
    os.rename(feed, feed + ".away")
    d.reload()
    time.sleep(1.0)
    d.assert_alive()
    r = d.query("blocked.insecure.tld.", "A")
    assert dnsutil.is_blocked(r), "a feed that vanished was dropped (fail open): " + describe(r)
    os.rename(feed + ".away", feed)
    with open(feed, "a") as f:
        f.write("gone.insecure.tld\n")
    d.reload()
    wait_until(blocked_check(d, "gone.insecure.tld."), 3, "feed back: new name blocked")


def test_sighup_burst(bulwark):
    d = bulwark()
    for _ in range(20):
        d.reload()
        time.sleep(0.01)
    time.sleep(0.5)
    d.assert_alive()
    assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))
    r = d.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)


def test_sighup_bad_config_keeps_running(bulwark, workdir):
    d = bulwark()
    assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))
    good = d.config_text
    with open(d.config_path, "w") as f:
        f.write(good + "bogus-section: {}\n")
    d.reload()
    time.sleep(1.0)
    d.assert_alive()
    assert dnsutil.is_blocked(d.query("blocked.insecure.tld.", "A"))
    assert "bogus-section" in d.log_text(), "the reload error was not logged:\n" + d.log_text()
    with open(d.config_path, "w") as f:
        f.write(good)
