"""Compressed feeds end to end: gzip-compressed local files (hosts, domains, adblock, RPZ:
real excerpts of tests/data) load the same entries as their plain forms and block the
same names; a gzip bomb (a ~1 MB file that expands past 1 GiB) is refused with a clear
error while the feed keeps its previous rules; a fetched .gz (served as is) is checked,
kept compressed as the last good copy and loaded from it, and a fetched bomb is rejected
at max-size."""

import gzip
import os
import re
import time
import zlib

import pytest

import conftest
import dnsutil
from dnsutil import describe
from test_feed_health import feed_state, feeds_status, gauge, metrics
from test_feeds_http import wait_until
from test_metrics import free_tcp_port
from test_profiles import ede_text

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")

# (format, excerpt, how a line names a blocked name)
EXCERPTS = [
    ("hosts", "scamblocklist_2026-08-22.hosts", re.compile(r"^0\.0\.0\.0\s+(\S+)\s*$")),
    ("domains", "stalkerware_2023-05-31.domains.txt", re.compile(r"^([a-z0-9][^\s#]*)\s*$")),
    ("adblock", "urlhaus-filter_2025-07-19.agh.adblock.txt", re.compile(r"^\|\|([^/^$]+)\^$")),
    ("rpz", "rpz/urlhaus-filter_2025-07-19.head1011.rpz", re.compile(r"^(\S+) CNAME \.$")),
]


def sample(path, rx, n=8):
    """Some of the names a feed file blocks: the first ones and the last ones."""
    with open(path) as f:
        found = [m.group(1) for m in map(rx.match, f.read().splitlines()) if m]
    found = [x for x in found if not re.match(r"^[\d.]+$", x)]
    assert len(found) > 2 * n, path
    return found[:n] + found[-n:]


def loaded(text, name):
    """(entries, bad, skipped) of the last load of feed name in the log."""
    found = re.findall(r"feed %s \([^)]*\): (\d+) entries, (\d+) bad, (\d+) skipped"
                       % re.escape(name), text)
    assert found, "no load line for feed %s:\n%s" % (name, text[-3000:])
    return tuple(int(x) for x in found[-1])


def gzip_file(src, dst):
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        g.write(f.read())


def test_gzip_files_load_like_plain_ones(bulwark, workdir):
    feeds = []
    for fmt, rel, _ in EXCERPTS:  # the compressed ones first: they name the blocks
        dst = os.path.join(workdir, "gz-" + fmt + ".gz")
        gzip_file(os.path.join(DATA, rel), dst)
        feeds.append({"name": "gz-" + fmt, "category": "malware", "format": fmt, "file": dst})
    for fmt, rel, _ in EXCERPTS:
        feeds.append({"name": "plain-" + fmt, "category": "malware", "format": fmt,
                      "file": os.path.abspath(os.path.join(DATA, rel))})
    d = bulwark(feeds=feeds, allowlist=[])
    text = d.log_text(200000)
    for fmt, rel, rx in EXCERPTS:
        gz, plain = loaded(text, "gz-" + fmt), loaded(text, "plain-" + fmt)
        assert gz == plain and gz[0] > 100, (fmt, gz, plain)
        for name in sample(os.path.join(DATA, rel), rx):
            r = d.query(name + ".", "A")
            assert dnsutil.is_blocked(r), "%s (%s): %s" % (name, fmt, describe(r))
            # a compressed feed blocks it (the adblock and RPZ excerpts share names: the
            # first feed listing a name is the one reported)
            assert ede_text(r).startswith("blocked by gz-"), describe(r)
    assert not dnsutil.is_blocked(d.query("www.insecure.tld.", "A"))


def write_bomb(path, gib=1.1):
    """A gzip file of lines of 'a', streamed: ~1 MB on disk, more than `gib` GiB inflated."""
    line = b"a" * 4095 + b"\n"
    chunk = line * 256  # 1 MiB
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    with open(path, "wb") as f:
        for _ in range(int(gib * 1024)):
            f.write(z.compress(chunk))
        f.write(z.flush())
    assert os.path.getsize(path) < 4 << 20


def test_gzip_bomb_is_refused_and_the_feed_keeps_its_rules(bulwark, workdir):
    path = os.path.join(workdir, "bombed.txt")
    with gzip.open(path, "wt") as g:
        g.write("# before\nbomb0.insecure.tld\nbomb1.insecure.tld\n")
    mport = free_tcp_port()

    def config(port, w):
        conf = conftest.default_config(bulwark.internet, port, w, allowlist=[], feeds=[{
            "name": "bombed", "category": "malware", "format": "domains", "file": path}])
        conf["metrics"] = {"port": mport}
        return conf
    d = bulwark(config)
    assert dnsutil.is_blocked(d.query("bomb1.insecure.tld.", "A"))
    tmp = path + ".tmp"
    write_bomb(tmp)
    os.rename(tmp, path)  # the watcher (watch-interval 1s) reloads it
    want = ("feed bombed: unusable %s: compressed data expands past its size limit "
            "(a gzip bomb?); keeping the previous version" % path)
    wait_until(lambda: True if want in d.log_text(50000) else d.log_text(2000), 90,
               "the bomb refused")
    text = d.log_text(50000)
    assert "gzip: data expands past the limit of 1073741824 bytes" in text, text
    d.assert_alive()
    # a failed feed, with its reason, in /metrics and bulwarkctl feeds
    m = metrics(mport)
    state, reason = feed_state(m, "bombed")
    assert state == "failed" and "expands past" in reason, (state, reason)
    assert gauge(m, "bulwark_feed_load_failed", feed="bombed") == 1, m
    st = feeds_status(os.path.join(d.dir, "state"))["bombed"]
    assert st["state"] == "failed" and "expands past" in st["last-error"], st
    for n in ("bomb0", "bomb1", "www.bomb1"):
        r = d.query(n + ".insecure.tld.", "A")
        assert dnsutil.is_blocked(r), describe(r)
    assert not dnsutil.is_blocked(d.query("www.insecure.tld.", "A"))


@pytest.fixture
def server(tmp_path_factory):
    from feedserver import FeedServer
    s = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    s.start()
    yield s
    s.stop()


def put_bytes(server, rel, data):
    path = os.path.join(server.www, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.rename(path + ".tmp", path)
    time.sleep(1.1)  # a new Last-Modified second


def test_fetched_gzip_file_and_bomb(bulwark, server, workdir):
    """A .gz served as is (no Content-Encoding): inflated when checked and when loaded from
    the last good copy; a bomb is rejected at max-size and the last good version stays."""
    put_bytes(server, "feeds/list.gz",
              gzip.compress(b"# fetched\nhttpgz0.insecure.tld\nhttpgz1.insecure.tld\n"))
    feeds = [{"name": "fetchedgz", "category": "malware", "format": "domains",
              "url": server.url("feeds/list.gz"), "ca-file": server.ca, "refresh": "1s",
              "timeout": "10s", "max-size": "10M"}]
    d = bulwark(feeds=feeds, allowlist=[], workdir=workdir,
                server={"state-dir": os.path.join(workdir, "st")})
    wait_until(lambda: True if dnsutil.is_blocked(d.query("httpgz1.insecure.tld.", "A"))
               else "not yet", 15, "httpgz1 blocked")
    copy = os.path.join(workdir, "st", "feeds", "fetchedgz.txt")
    with open(copy, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # the last good copy, as fetched
    bomb = os.path.join(workdir, "bomb.gz")
    write_bomb(bomb, gib=0.05)  # 51 MiB inflated, for max-size 10M
    with open(bomb, "rb") as f:
        put_bytes(server, "feeds/list.gz", f.read())
    wait_until(lambda: True if "new version rejected" in d.log_text(50000) else "not yet", 20,
               "the bomb rejected")
    text = d.log_text(50000)
    assert "gzip: data expands past the limit of 10485760 bytes" in text, text
    assert "larger than max-size; keeping the last good version" in text, text
    with open(copy, "rb") as f:
        assert len(f.read()) < 1000  # the last good copy is untouched
    assert dnsutil.is_blocked(d.query("httpgz0.insecure.tld.", "A"))
    # a restart loads the compressed last good copy before any fetch
    d.stop()
    d.start()
    assert dnsutil.is_blocked(d.query("httpgz1.insecure.tld.", "A"))
