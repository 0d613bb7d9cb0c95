"""Case 2: corrupt, truncated, gzip-bombed and 10x oversized feed versions, under load.

Two feeds: `web` fetched over HTTPS from nginx (tests/e2e/feedserver.py, refresh 1s,
max-size 1M) and `loc`, a local file (watched every second; max-size and max-entries are
for fetched feeds only, so a local file gets no oversized version: a big valid file of the
operator's own loads, by design). Each holds 2000 names, among
them names that exist in the fake internet (so an unblocked one would answer NOERROR).
Each bad version in turn replaces both sources:
  corrupt     20 KiB of random bytes
  truncated   a gzip file of a good, larger list, cut in the middle
  gzip bomb   64 MiB of the same line, gzip-compressed to some 64 KiB (over max-size only
              once inflated)
  oversized   a valid list of 10x max-size (10 MiB)
Checks after each: the failure is reported (bulwarkctl feeds: a new last error; the log),
the sample names stay blocked, the web feed's last good copy on disk is byte-identical;
and under the whole run (1000 qps) >= 99.9 % answered within 2 s, every blocked name
NXDOMAIN (an unblocked one would be NOERROR).
"""

import gzip
import hashlib
import json
import os
import time

import pytest

import dnsutil
from conftest import e2e, wait_for
from feedserver import FeedServer

WEB_LIVE = ["newly.insecure.tld", "hup.insecure.tld"]   # exist: NOERROR when not blocked
LOC_LIVE = ["gone.insecure.tld", "keep.insecure.tld"]
ALLOWED = "www.insecure.tld"


def good_list(prefix, live, n=2000):
    return "# good\n" + "".join(x + "\n" for x in live) + "".join(
        "%s%d.insecure.tld\n" % (prefix, i) for i in range(n - len(live)))


def bad_versions(prefix, oversized=True):
    rnd = os.urandom(20 << 10)
    bigger = good_list(prefix, [], 6000).encode()
    cut = gzip.compress(bigger)
    cut = cut[:len(cut) // 2]
    bomb = gzip.compress(("%sbomb.insecure.tld\n" % prefix).encode() * (64 << 20 >> 5),
                         compresslevel=9)
    line = "%sover%%07d.insecure.tld\n" % prefix
    over = "".join(line % i for i in range((10 << 20) // len(line % 0) + 1)).encode()
    return [("corrupt", rnd), ("truncated gzip", cut), ("gzip bomb", bomb),
            ("10x oversized", over if oversized else None)]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def feeds_status(statedir):
    out = json.loads(e2e.ctl(statedir, "--json", "feeds").stdout)
    cols = out["result"]["columns"]
    return {row[0]: dict(zip(cols, row)) for row in out["result"]["rows"]}


@pytest.fixture
def server(tmp_path_factory):
    s = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    s.start()
    yield s
    s.stop()


def put_bytes(server, rel, data):
    path = os.path.join(server.www, rel)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)
    t = time.time() + 1
    os.utime(path, (t, t))


def test_bad_feed_versions_keep_the_last_good(bulwark, server, load, workdir):
    server.put("feeds/web.txt", good_list("web", WEB_LIVE))
    loc = os.path.join(workdir, "loc.txt")
    e2e.write_atomic(loc, good_list("loc", LOC_LIVE))
    statedir = os.path.join(workdir, "state")
    feeds = [{"name": "web", "category": "malware", "format": "domains",
              "url": server.url("feeds/web.txt"), "ca-file": server.ca, "refresh": "1s",
              "timeout": "5s", "max-size": "1M"},
             {"name": "loc", "category": "phishing", "format": "domains", "file": loc}]
    d = bulwark(lambda port, w: e2e.default_config(internet_of(bulwark), port, workdir,
                                                   feeds=feeds), workdir=workdir)
    for n in WEB_LIVE + LOC_LIVE:
        wait_for(lambda: dnsutil.is_blocked(d.query(n, timeout=2)), 15, n + " blocked")
    copy = os.path.join(statedir, "feeds", "web.txt")
    good_sha = sha(copy)
    names = [ALLOWED] + WEB_LIVE + LOC_LIVE
    versions = list(zip(bad_versions("web"), bad_versions("loc", oversized=False)))
    ld = load(d.port, names, qps=1000, seconds=8 * len(versions) + 4)
    time.sleep(2)
    for ((what, web_bad), (_, loc_bad)) in versions:
        before = feeds_status(statedir)
        put_bytes(server, "feeds/web.txt", web_bad)
        changed = ["web"]
        if loc_bad is not None:
            with open(loc + ".tmp", "wb") as f:
                f.write(loc_bad)
            os.rename(loc + ".tmp", loc)
            changed.append("loc")
        t = time.monotonic()

        def reported():
            st = feeds_status(statedir)
            new = [st[f]["last-error"] != before[f]["last-error"] and st[f]["last-error"] != "-"
                   for f in changed]
            return st if all(new) else None
        st = wait_for(reported, 15, what + " reported by bulwarkctl feeds")
        print("%s: reported after %.1fs; web: %s [%s]; loc: %s [%s]" % (
            what, time.monotonic() - t, st["web"]["state"], st["web"]["last-error"],
            st["loc"]["state"], st["loc"]["last-error"]))
        for n in WEB_LIVE + LOC_LIVE:
            assert dnsutil.is_blocked(d.query(n, timeout=2)), "%s unblocked after %s" % (n, what)
        assert sha(copy) == good_sha, "the last good copy changed after " + what
        assert st["web"]["entries"] == 2000 and st["loc"]["entries"] == 2000, st
        time.sleep(max(0.0, 8 - (time.monotonic() - t)))
    r = ld.result().check()
    blocked_share = r.rcodes.get("NXDOMAIN", 0) / max(1, r.completed)
    assert blocked_share >= 0.8 - 0.001, "blocking lapsed under load: " + r.summary()
    log = d.log_text(200000)
    assert "feed web: fetch failed" in log or "feed web: new version rejected" in log, log[-3000:]
    assert sha(copy) == good_sha
    d.assert_alive()


def internet_of(launcher):
    return launcher.internet
