"""Case 6: kill -9 during a feed store and during the query log's import; the restart
finds consistent files.

Feed store: a 100,000-name feed fetched over HTTPS (refresh 1s) whose content alternates
between two versions every second, so the daemon fetches, checks and stores a 2.6 MB copy
all the time; SIGKILL at staggered moments, 4 times. After each restart: the last good
copy is exactly one of the two versions (never a mix or a cut file), its .meta is valid
JSON with the entries of that version, and the restarted daemon blocks from it at once
(before any fetch: the feed server is stopped for the check).

Query log: privacy full, a load of names that are all different (each blocked by a
wildcard, answered without upstream), SIGKILL under load 3 times, restarting each time.
At the end: the query log passes integrity_check, no name has two rows (the import
resumes from the position committed with the rows: none twice), and the rows are at
least 99 % of the answers (what a kill takes is what sat in the rings and the spool's
buffer: milliseconds of records).
"""

import gzip
import hashlib
import json
import os
import sqlite3
import time

import pytest

import dnsutil
from conftest import e2e, phase, wait_for
from feedserver import FeedServer


def digest(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def server(tmp_path_factory):
    s = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    s.start()
    yield s
    s.stop()


def version(tag, n=100000):
    return "# version %s\nkill-%s.insecure.tld\n" % (tag, tag) + "".join(
        "v%s-%d.insecure.tld\n" % (tag, i) for i in range(n - 1))


def test_kill9_during_feed_store(bulwark, server, workdir):
    texts = {t: version(t) for t in ("a", "b")}
    shas = {hashlib.sha256(x.encode()).hexdigest(): t for t, x in texts.items()}
    server.put("feeds/big.txt", texts["a"])
    statedir = os.path.join(workdir, "state")
    feeds = [{"name": "big", "category": "malware", "format": "domains",
              "url": server.url("feeds/big.txt"), "ca-file": server.ca, "refresh": "1s",
              "timeout": "10s", "min-ratio": 0}]
    d = bulwark(lambda port, w: e2e.default_config(bulwark.internet, port, workdir,
                                                   feeds=feeds), workdir=workdir)
    copy = os.path.join(statedir, "feeds", "big.txt")
    wait_for(lambda: os.path.exists(copy), 20, "the first copy")
    for k in range(phase(4, 2)):
        t_end = time.monotonic() + 2.3 + 0.7 * k
        i = 0
        while time.monotonic() < t_end:  # a new version every 0.5 s: stores all the time
            server.put("feeds/big.txt", texts["ab"[i % 2]])
            i += 1
            time.sleep(0.5)
        d.kill()
        tag = shas.get(digest(copy))
        assert tag, "kill %d: the last good copy is neither version (cut or mixed)" % k
        meta = json.load(open(os.path.join(statedir, "feeds", "big.meta")))
        assert meta["entries"] == 100000, meta
        left = [f for f in os.listdir(os.path.dirname(copy)) if f not in ("big.txt", "big.meta")]
        print("kill %d: copy is version %s, meta %s, other files %s"
              % (k, tag, {x: meta.get(x) for x in ("entries", "size")}, left))
        server.stop()  # the restart must block from the copy alone
        try:
            d.start()
            n = "kill-%s.insecure.tld" % tag
            assert dnsutil.is_blocked(d.query(n, timeout=2)), "restart %d: %s not blocked" % (k, n)
        finally:
            server.start()
    d.assert_alive()


def test_kill9_during_query_log_import(internet, bulwark, load, workdir):
    db = os.path.join(workdir, "q.sqlite")

    def config(port, w):
        conf = e2e.default_config(internet, port, workdir, workers=2)
        conf["telemetry"] = {"privacy": "full", "query-log": db}
        return conf
    d = bulwark(config, workdir=workdir)
    answered = 0
    rounds = phase(3, 2)
    for k in range(rounds):
        names = ["k%d-%d.blocked.insecure.tld" % (k, i) for i in range(20000)]
        ld = load(d.port, names, qps=1500, seconds=6)
        time.sleep(3 + k * 0.37)
        d.kill()
        r = ld.result()
        answered += r.completed
        print("kill %d: %d answered before the kill" % (k, r.completed))
        d.start()
    time.sleep(2)
    d.stop()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT count(*) FROM queries WHERE name LIKE 'k%'").fetchone()[0]
        dups = conn.execute("SELECT name, count(*) FROM queries WHERE name LIKE 'k%' "
                            "GROUP BY name HAVING count(*) > 1 LIMIT 5").fetchall()
    finally:
        conn.close()
    print("query log: %d rows for %d answers over %d kills, duplicates %s"
          % (rows, answered, rounds, dups))
    assert not dups, "rows written twice after a kill: %s" % dups
    assert rows <= answered, (rows, answered)
    assert rows >= 0.99 * answered, "rows lost beyond the kill's buffers: %d of %d" % (
        rows, answered)
