"""Fetched feeds (docs/feeds.md): lists, RPZ and STIX over HTTPS from a real nginx with a
test CA, conditional GET (304s in nginx's log), gzip, redirects; the guards (too big,
corrupt, truncated transfer, shrunken feed held back until `bulwarkctl feeds accept`); the
last good copy (source down at start or later, daemon restarted: still blocks); a TAXII 2.1
collection served as static JSON (paging, bearer token, the cursor kept across restarts);
expiry (when-expired: stop)."""

import json
import os
import re
import socket
import subprocess
import time

import pytest

import conftest
import dnsutil
from dnsutil import describe
from feedserver import FeedServer, TruncatingServer


from conftest import ctl, ctl_binary  # noqa: E402,F401


def feeds_status(statedir):
    out = json.loads(ctl(statedir, "--json", "feeds").stdout)
    assert out["ok"] is True
    cols = out["result"]["columns"]
    return {row[0]: dict(zip(cols, row)) for row in out["result"]["rows"]}


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        last = pred()
        if last is True:
            return
        assert time.monotonic() < deadline, "%s: not within %.0fs; last: %s" % (what, timeout,
                                                                              last)
        time.sleep(0.2)


def blocked(d, name, want=True):
    def check():
        r = d.query(name, "A", timeout=2)
        return True if dnsutil.is_blocked(r) == want else describe(r)
    return check


def names(prefix, n):
    return ["%s%d.insecure.tld" % (prefix, i) for i in range(n)]


def domains_text(ns):
    return "# test feed\n" + "".join(n + "\n" for n in ns)


@pytest.fixture
def server(tmp_path_factory):
    s = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    s.start()
    yield s
    s.stop()


def start(bulwark, d, feeds, **server_extra):
    statedir = os.path.join(d, "state")
    def make(port, _d):
        conf = conftest.default_config(bulwark.internet, port, d, feeds=feeds,
                                       server=dict({"state-dir": statedir}, **server_extra))
        return conf
    return bulwark(make, workdir=d), statedir


def url_feed(server, name, path, fmt="domains", **kw):
    f = {"name": name, "category": "malware", "format": fmt, "url": server.url(path),
         "ca-file": server.ca, "refresh": "1s", "timeout": "5s"}
    f.update(kw)
    return f


def test_https_formats_gzip_redirect_conditional_get(bulwark, server, workdir):
    server.put("feeds/list.txt", domains_text(names("dom", 3)))
    server.put("feeds/scam.hosts", "0.0.0.0 hosts0.insecure.tld\n0.0.0.0 hosts1.insecure.tld\n")
    server.put("feeds/zone.rpz", "$TTL 60\n@ SOA ns. h. 1 1h 15m 30d 2h\n@ NS ns.\n"
               "rpz0.insecure.tld CNAME .\n*.rpzw.insecure.tld CNAME .\n")
    feeds = [url_feed(server, "lists", "feeds/list.txt"),
             url_feed(server, "hosts", "old/scam.hosts", fmt="hosts"),  # a 301 to /feeds/
             url_feed(server, "zone", "feeds/zone.rpz", fmt="rpz")]
    d, statedir = start(bulwark, workdir, feeds)
    for n in ["dom0.insecure.tld", "dom2.insecure.tld", "hosts1.insecure.tld",
              "rpz0.insecure.tld", "x.rpzw.insecure.tld"]:
        wait_until(blocked(d, n), 10, n + " blocked")
    assert not dnsutil.is_blocked(d.query("www.insecure.tld", "A"))
    # the last good copies and their metadata, in the documented layout
    for f in ("lists.txt", "lists.meta", "hosts.hosts", "hosts.meta", "zone.rpz", "zone.meta"):
        assert os.path.exists(os.path.join(statedir, "feeds", f)), f
    meta = json.load(open(os.path.join(statedir, "feeds", "lists.meta")))
    # entries mean names everywhere: one a name (not its exact and wildcard rule), in the
    # metadata, the log line and bulwarkctl, as the policy counts them
    assert meta["entries"] == 3 and meta["entries-unit"] == "names" and meta["etag"], meta
    assert re.search(r"feed lists: new version applied: 3 entries", d.log_text(50000))
    # conditional GET: nginx answers 304 once the daemon has the version (refresh 1s)
    wait_until(lambda: True if any(l.startswith("/feeds/list.txt 304 ")
                                   for l in server.access_log()) else server.access_log()[-5:],
               10, "a 304 for list.txt")
    log = server.access_log()
    assert any(l.startswith("/feeds/list.txt 200 ") and 'ce="gzip"' in l for l in log), log
    assert any(l.startswith("/old/scam.hosts 301 ") for l in log), log
    assert any(l.startswith("/feeds/list.txt 304 ") and 'inm="W/' in l for l in log) or \
        any(l.startswith("/feeds/list.txt 304 ") and 'inm="' in l for l in log), log
    # a new version is fetched and applied
    server.put("feeds/list.txt", domains_text(names("dom", 4)))
    wait_until(blocked(d, "dom3.insecure.tld"), 10, "dom3 blocked after the update")
    st = feeds_status(statedir)
    assert st["lists"]["state"] == "ok" and st["lists"]["entries"] == 4, st["lists"]
    assert re.search(r"feed lists \(malware\): 4 entries", d.log_text(50000))
    assert st["lists"]["version"].startswith("etag "), st["lists"]
    assert st["zone"]["format"] == "rpz" and st["zone"]["last-error"] == "-", st["zone"]
    # the table form prints a header and a row per feed
    table = ctl(statedir, "feeds").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "SOURCE", "FORMAT"], table
    assert re.search(r"^lists\s+https://127\.0\.0\.80:8443/feeds/list\.txt", table, re.M), table
    # reload over the socket: the main thread reloads as for SIGHUP, the feeds stay
    assert "reload requested" in ctl(statedir, "reload").stdout
    wait_until(lambda: True if "reloaded " in d.log_text(50000) else "no reload yet", 10,
               "the reload")
    assert dnsutil.is_blocked(d.query("dom3.insecure.tld", "A"))
    helptext = ctl(statedir, "help").stdout
    assert re.search(r"^feeds\s+feeds \| feeds accept NAME", helptext, re.M), helptext
    p = ctl(statedir, "nosuch", check=False)
    assert p.returncode == 1 and "unknown command 'nosuch'" in p.stderr, p


def test_guards_reject_too_big_corrupt_and_truncated(bulwark, server, workdir):
    server.put("feeds/small.txt", domains_text(names("small", 3)))
    stix = {"type": "bundle", "id": "bundle--1", "objects": [
        {"type": "indicator", "spec_version": "2.1", "id": "indicator--1",
         "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
         "pattern": "[domain-name:value = 'stix0.insecure.tld']", "pattern_type": "stix",
         "valid_from": "2020-01-01T00:00:00.000Z"}]}
    server.put("feeds/intel.json", json.dumps(stix))
    trunc = TruncatingServer(domains_text(names("cut", 2)).encode(), claimed=5000)
    try:
        feeds = [url_feed(server, "small", "feeds/small.txt", **{"max-size": "200"}),
                 url_feed(server, "intel", "feeds/intel.json", fmt="stix"),
                 {"name": "cut", "category": "malware", "format": "domains",
                  "url": trunc.url("cut.txt"), "refresh": "1s", "timeout": "3s"}]
        d, statedir = start(bulwark, workdir, feeds)
        wait_until(blocked(d, "small2.insecure.tld"), 10, "small2 blocked")
        wait_until(blocked(d, "stix0.insecure.tld"), 10, "stix0 blocked")
        # too big: rejected, the last good version stays
        server.put("feeds/small.txt", domains_text(names("small", 30)))
        wait_until(lambda: True if "larger than max-size" in
                   feeds_status(statedir)["small"]["last-error"] else
                   feeds_status(statedir)["small"], 10, "small rejected as too big")
        assert dnsutil.is_blocked(d.query("small1.insecure.tld", "A"))
        assert not dnsutil.is_blocked(d.query("small20.insecure.tld", "A"))
        # corrupt (STIX cut in the middle): rejected, the last good version stays
        server.put("feeds/intel.json", json.dumps(stix)[:-40])
        wait_until(lambda: True if "rejected" in feeds_status(statedir)["intel"]["last-error"]
                   else feeds_status(statedir)["intel"], 10, "intel rejected as corrupt")
        assert dnsutil.is_blocked(d.query("stix0.insecure.tld", "A"))
        # a transfer cut short is never applied, not even in part
        wait_until(lambda: True if trunc.hits >= 2 else trunc.hits, 10, "two fetches of cut")
        st = feeds_status(statedir)["cut"]
        assert st["state"] == "no copy yet" and "cut short" in st["last-error"], st
        assert not dnsutil.is_blocked(d.query("cut0.insecure.tld", "A"))
        assert not os.path.exists(os.path.join(statedir, "feeds", "cut.txt"))
        text = d.log_text(20000)
        assert "feed cut: no copy yet" in text, text
        assert "feed small: fetch failed: larger than max-size" in text, text
        assert "feed intel: new version rejected" in text, text
    finally:
        trunc.stop()


def test_shrunken_feed_held_back_until_accepted(bulwark, server, workdir):
    server.put("feeds/big.txt", domains_text(names("keep", 10)))
    d, statedir = start(bulwark, workdir, [url_feed(server, "big", "feeds/big.txt")])
    wait_until(blocked(d, "keep9.insecure.tld"), 10, "keep9 blocked")
    server.put("feeds/big.txt", domains_text(names("keep", 2)))
    wait_until(lambda: True if feeds_status(statedir)["big"]["state"] == "held back" else
               feeds_status(statedir)["big"], 10, "big held back")
    st = feeds_status(statedir)["big"]
    assert st["held-back"].startswith("2 entries"), st
    assert st["entries"] == 10, st
    assert dnsutil.is_blocked(d.query("keep9.insecure.tld", "A"))  # still the last good
    assert "ALERT feed big: new version held back" in d.log_text(20000)
    p = ctl(statedir, "feeds", "accept", "big")
    assert "applied" in p.stdout, p.stdout
    wait_until(blocked(d, "keep9.insecure.tld", want=False), 10, "keep9 unblocked after accept")
    assert dnsutil.is_blocked(d.query("keep1.insecure.tld", "A"))
    st = feeds_status(statedir)["big"]
    assert st["entries"] == 2 and st["held-back"] == "-", st
    # nothing left to accept: an error, exit status 1
    p = ctl(statedir, "feeds", "accept", "big", check=False)
    assert p.returncode == 1 and "no held-back version" in p.stderr, p
    p = ctl(statedir, "feeds", "accept", "nosuch", check=False)
    assert p.returncode == 1 and "no feed named nosuch" in p.stderr, p


def test_source_down_later_and_at_restart_keeps_blocking(bulwark, server, workdir):
    server.put("feeds/lg.txt", domains_text(names("lg", 3)))
    d, statedir = start(bulwark, workdir, [url_feed(server, "lg", "feeds/lg.txt")])
    wait_until(blocked(d, "lg2.insecure.tld"), 10, "lg2 blocked")
    server.stop()
    # primary down later: keeps blocking, reports the failure
    wait_until(lambda: True if feeds_status(statedir)["lg"]["state"] == "failing" else
               feeds_status(statedir)["lg"], 10, "lg failing")
    assert dnsutil.is_blocked(d.query("lg0.insecure.tld", "A"))
    # primary down at start: the last good copy is loaded before any network traffic
    d.stop()
    d.start()
    assert dnsutil.is_blocked(d.query("lg1.insecure.tld", "A"))
    wait_until(lambda: True if "fetch failed" in feeds_status(statedir)["lg"]["last-error"]
               else feeds_status(statedir)["lg"], 10, "lg fetch failure reported")
    assert dnsutil.is_blocked(d.query("lg2.insecure.tld", "A"))
    # the source comes back: refreshed (bulwarkctl feeds refresh: now)
    server.put("feeds/lg.txt", domains_text(names("lg", 4)))
    server.start()
    ctl(statedir, "feeds", "refresh", "lg")
    wait_until(blocked(d, "lg3.insecure.tld"), 10, "lg3 blocked once the source is back")


def test_stop_does_not_wait_for_a_slow_source(bulwark, workdir):
    """A source that accepts the connection and never answers: SIGTERM still exits at once
    (the fixture's stop() allows 5s; the feed's timeout is 60s)."""
    silent = socket.socket()
    silent.bind(("127.0.0.82", 8080))
    silent.listen(8)  # the kernel completes connections; nobody reads them
    try:
        feed = {"name": "slow", "category": "malware", "format": "domains",
                "url": "http://127.0.0.82:8080/slow.txt", "timeout": "60s"}
        d, statedir = start(bulwark, workdir, [feed])
        time.sleep(1)
        assert feeds_status(statedir)["slow"]["next-refresh"] == "now"  # in flight
        t0 = time.monotonic()
        d.stop()
        assert time.monotonic() - t0 < 5
    finally:
        silent.close()


def test_tls_verification_is_on(bulwark, server, workdir):
    server.put("feeds/t.txt", domains_text(names("tls", 2)))
    feed = url_feed(server, "untrusted", "feeds/t.txt")
    del feed["ca-file"]  # the system's CAs do not know the test CA
    d, statedir = start(bulwark, workdir, [feed])
    wait_until(lambda: True if "fetch failed" in feeds_status(statedir)["untrusted"]
               ["last-error"] else feeds_status(statedir)["untrusted"], 10, "TLS failure")
    assert not dnsutil.is_blocked(d.query("tls0.insecure.tld", "A"))


def test_expired_feed_stops_when_configured(bulwark, server, workdir):
    server.put("feeds/e1.txt", domains_text(names("exps", 2)))
    server.put("feeds/e2.txt", domains_text(names("expk", 2)))
    feeds = [url_feed(server, "stopper", "feeds/e1.txt", expire="3s",
                      **{"when-expired": "stop"}),
             url_feed(server, "keeper", "feeds/e2.txt", expire="3s")]
    d, statedir = start(bulwark, workdir, feeds)
    wait_until(blocked(d, "exps0.insecure.tld"), 10, "exps0 blocked")
    wait_until(blocked(d, "expk0.insecure.tld"), 10, "expk0 blocked")
    server.stop()
    wait_until(blocked(d, "exps0.insecure.tld", want=False), 15, "the stopped feed's rules gone")
    assert dnsutil.is_blocked(d.query("expk0.insecure.tld", "A"))
    st = feeds_status(statedir)
    assert st["stopper"]["state"] == "expired, stopped", st["stopper"]
    assert st["keeper"]["state"] == "expired, keeps blocking", st["keeper"]
    # the source is back: the feed is applied again
    server.start()
    wait_until(blocked(d, "exps0.insecure.tld"), 15, "exps0 blocked again")


# ---- TAXII 2.1 ----------------------------------------------------------------------------
def indicator(n, name, modified="2026-01-01T00:00:00.000Z"):
    return {"type": "indicator", "spec_version": "2.1", "id": "indicator--%04d" % n,
            "created": "2026-01-01T00:00:00.000Z", "modified": modified,
            "pattern": "[domain-name:value = '%s']" % name, "pattern_type": "stix",
            "valid_from": "2020-01-01T00:00:00.000Z"}


def test_taxii_collection_paging_and_cursor(bulwark, server, workdir):
    server.put("taxii/first.json", json.dumps(
        {"more": True, "next": "2", "objects": [indicator(1, "tx1.insecure.tld"),
                                                indicator(2, "tx2.insecure.tld")]}))
    server.put("taxii/second.json", json.dumps(
        {"more": False, "objects": [indicator(3, "tx3.insecure.tld")]}))
    server.put("taxii/after04.json", json.dumps({"more": False, "objects": []}))
    token = os.path.join(workdir, "token")
    with open(token, "w") as f:
        f.write("s3cret-token\n")
    feed = {"name": "tx", "category": "apt", "format": "stix", "ca-file": server.ca,
            "refresh": "1s", "timeout": "5s",
            "taxii": {"url": server.url("taxii2/api1/"), "collection": "c1",
                      "token-file": token}}
    d, statedir = start(bulwark, workdir, [feed])
    for n in ("tx1", "tx2", "tx3"):
        wait_until(blocked(d, n + ".insecure.tld"), 10, n + " blocked")
    meta_path = os.path.join(statedir, "feeds", "tx.meta")
    wait_until(lambda: True if json.load(open(meta_path))["taxii-cursor"] ==
               "2026-01-01T00:00:04.000Z" else json.load(open(meta_path)), 5, "cursor stored")
    log = server.access_log()
    objs = [l for l in log if l.startswith("/taxii2/api1/collections/c1/objects/")]
    assert objs[0].split()[1] == "200" and "?" not in objs[0].split()[0], objs
    assert objs[1].startswith("/taxii2/api1/collections/c1/objects/?next=2 200"), objs
    assert all('auth="Bearer s3cret-token"' in l for l in objs), objs
    # the next polls ask only for what was added after the cursor
    wait_until(lambda: True if any("added_after=2026-01-01T00%3A00%3A04.000Z" in l
                                   for l in server.access_log()) else server.access_log()[-3:],
               10, "a poll with added_after")
    # restart: the cursor survives, the first poll already sends it; nothing is lost
    d.stop()
    n_before = len(server.access_log())
    d.start()
    assert dnsutil.is_blocked(d.query("tx2.insecure.tld", "A"))
    wait_until(lambda: True if len(server.access_log()) > n_before else "no poll yet", 10,
               "a poll after the restart")
    first = server.access_log()[n_before]
    assert "added_after=2026-01-01T00%3A00%3A04.000Z" in first, first
    # new objects in the collection: merged with the last good bundle
    server.put("taxii/after04.json", json.dumps(
        {"more": False, "objects": [indicator(4, "tx4.insecure.tld"),
                                    indicator(1, "tx1b.insecure.tld",
                                              modified="2026-01-02T00:00:00.000Z")]}))
    wait_until(blocked(d, "tx4.insecure.tld"), 10, "tx4 blocked")
    wait_until(blocked(d, "tx1b.insecure.tld"), 10, "tx1b (a newer version of 1) blocked")
    assert dnsutil.is_blocked(d.query("tx3.insecure.tld", "A"))
    assert not dnsutil.is_blocked(d.query("tx1.insecure.tld", "A"))  # replaced by its update
    st = feeds_status(statedir)["tx"]
    assert st["source"].startswith("taxii https://127.0.0.80:8443/taxii2/api1/"), st
    assert st["version"] == "cursor 2026-01-01T00:00:04.000Z", st
