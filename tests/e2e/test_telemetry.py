"""tests/e2e/test_telemetry.py - the query log (SQLite), security events, alerts and the
webhook, under each privacy mode, checked from the outside: the real daemon answers real
queries, then the test opens the SQLite file with python3's sqlite3 module (and reads the
events file, and what a webhook receiver got) and checks exactly what was kept.

Also: a full file system (a tiny tmpfs in a mount namespace of the daemon's own) and a
webhook that never answers make records drop (counted, logged at exit) while every query
is still answered.
"""

import http.server
import json
import os
import re
import socket
import sqlite3
import stat
import threading
import time
import urllib.request

import pytest

import conftest
import dnsutil
from conftest import default_config

BLOCKED = "evil-target.insecure.tld"  # urlhaus (malware), domains feed
PHISH = "phish.insecure.tld"           # scam (phishing), hosts feed
ALLOWED = "www.insecure.tld"
ALLOWLISTED = "ok.blocked.insecure.tld"


def tconfig(internet, port, d, telemetry, **kw):
    # one worker: rows come in the order the queries were sent (each worker has its own
    # ring, so with several the order across workers is the telemetry thread's)
    kw.setdefault("workers", 1)
    conf = default_config(internet, port, d, **kw)
    conf["telemetry"] = telemetry
    return conf


def rows(path, where="name != 'localhost'"):
    """Every row (as dicts) except the readiness probes conftest sends for localhost."""
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM queries WHERE %s ORDER BY id" % where)]
    finally:
        db.close()


def send_mix(d):
    """Queries every mode sees the same way: allowed (twice: a cache hit), blocked (twice),
    phishing, allowlisted, and one blocked over TCP."""
    for name in (ALLOWED, ALLOWED, BLOCKED, BLOCKED, PHISH, ALLOWLISTED):
        d.query(name, "A")
    m = d.query(BLOCKED, "AAAA", tcp=True)
    assert dnsutil.is_blocked(m), dnsutil.describe(m)


def stats_line(d):
    m = re.search(r"telemetry: records (\d+), dropped (\d+) \(rings full\), query log rows "
                  r"(\d+) \(dropped (\d+), pruned (\d+), waiting in the spool (\d+)\), events (\d+) "
                  r"\(dropped (\d+)\), "
                  r"webhook sent (\d+) \(dropped (\d+)\), alerts (\d+)", d.log_text(20000))
    assert m, "no telemetry stats line at exit; log:\n%s" % d.log_text()
    keys = ("records", "ring_drops", "rows", "log_drops", "pruned", "waiting", "events", "event_drops",
            "webhook_sent", "webhook_drops", "alerts")
    return dict(zip(keys, map(int, m.groups())))


def test_privacy_full_logs_every_query_with_the_full_address(internet, bulwark):
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "full", "query-log": os.path.join(w, "q.sqlite")}))
    send_mix(d)
    d.stop()
    assert "privacy full" in d.log_text(), "no warning about full logging at start"
    r = rows(os.path.join(d.dir, "q.sqlite"))
    assert [(x["name"], x["type"], x["transport"]) for x in r] == [
        (ALLOWED, "A", "udp"), (ALLOWED, "A", "udp"), (BLOCKED, "A", "udp"),
        (BLOCKED, "A", "udp"), (PHISH, "A", "udp"), (ALLOWLISTED, "A", "udp"),
        (BLOCKED, "AAAA", "tcp")]
    assert {x["client"] for x in r} == {"127.0.0.1"}
    assert {x["profile"] for x in r} == {"default"}
    allowed, allowed2, blk, blk2, phish, okl, blk_tcp = r
    assert (allowed["verdict"], allowed["rcode"], allowed["cache_hit"]) == ("allowed", "NOERROR", 0)
    assert (allowed2["verdict"], allowed2["cache_hit"]) == ("allowed", 1)
    assert allowed["feed"] is None and allowed["rule"] is None and allowed["action"] is None
    for b in (blk, blk2, blk_tcp):
        assert (b["verdict"], b["action"], b["rcode"], b["feed"], b["category"], b["rule"]) == (
            "blocked", "nxdomain", "NXDOMAIN", "urlhaus", "malware", BLOCKED), b
    assert (blk["cache_hit"], blk2["cache_hit"]) == (0, 1)
    assert (phish["feed"], phish["category"], phish["verdict"]) == ("scam", "phishing", "blocked")
    assert okl["verdict"] == "allowlisted" and okl["rcode"] == "NOERROR"
    now_ms = time.time() * 1000
    for x in r:
        assert now_ms - 120000 < x["time"] <= now_ms + 1000
        assert 0 <= x["latency_us"] < 30_000_000
    s = stats_line(d)
    assert s["ring_drops"] == 0 and s["log_drops"] == 0
    assert s["rows"] == s["records"] >= len(r)


def test_privacy_anonymized_truncates_the_client(internet, bulwark):
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "anonymized", "query-log": os.path.join(w, "q.sqlite")}))
    send_mix(d)
    d.stop()
    assert "privacy full" not in d.log_text()
    r = rows(os.path.join(d.dir, "q.sqlite"))
    assert len(r) == 7
    assert {x["client"] for x in r} == {"127.0.0.0/24"}
    assert [x["verdict"] for x in r] == ["allowed", "allowed", "blocked", "blocked", "blocked",
                                         "allowlisted", "blocked"]
    db = sqlite3.connect(os.path.join(d.dir, "q.sqlite"))
    assert db.execute("SELECT count(*) FROM queries WHERE client LIKE '127.0.0.1%'").fetchone()[0] == 0
    db.close()


@pytest.mark.parametrize("mode,client", [("anonymized", "::/56"), ("full", "::1")])
def test_ipv6_client(internet, bulwark, mode, client):
    def conf(port, w):
        c = tconfig(internet, port, w, {"privacy": mode, "query-log": os.path.join(w, "q.sqlite")})
        c["server"]["listen"].append({"address": "::1", "port": port})
        c["server"]["access-control"].append({"network": "::1/128", "action": "allow"})
        return c
    d = bulwark(conf)
    dnsutil.query(d.port, BLOCKED, "A", server="::1")
    dnsutil.query(d.port, ALLOWED, "A", server="::1", tcp=True)
    d.stop()
    r = rows(os.path.join(d.dir, "q.sqlite"))
    assert [(x["client"], x["name"], x["transport"]) for x in r] == [
        (client, BLOCKED, "udp"), (client, ALLOWED, "tcp")]


def test_privacy_blocked_only_is_the_default_and_keeps_blocked_queries_only(internet, bulwark):
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "query-log": os.path.join(w, "q.sqlite"), "events": {"file": os.path.join(w, "ev.jsonl")}}))
    send_mix(d)
    d.stop()
    path = os.path.join(d.dir, "q.sqlite")
    r = rows(path, "1")  # readiness probes are not blocked: none may be there either
    assert [(x["name"], x["verdict"], x["client"]) for x in r] == [
        (BLOCKED, "blocked", "127.0.0.0/24"), (BLOCKED, "blocked", "127.0.0.0/24"),
        (PHISH, "blocked", "127.0.0.0/24"), (BLOCKED, "blocked", "127.0.0.0/24")]
    with open(os.path.join(d.dir, "ev.jsonl")) as f:
        ev = [json.loads(line) for line in f]
    assert [(e["event"], e["name"], e["client"], e["feed"], e["category"]) for e in ev] == [
        ("blocked", BLOCKED, "127.0.0.0/24", "urlhaus", "malware"),
        ("blocked", BLOCKED, "127.0.0.0/24", "urlhaus", "malware"),
        ("blocked", PHISH, "127.0.0.0/24", "scam", "phishing"),
        ("blocked", BLOCKED, "127.0.0.0/24", "urlhaus", "malware")]
    assert ev[0]["rcode"] == "NXDOMAIN" and ev[0]["action"] == "nxdomain"
    assert ev[0]["time"].endswith("Z") and ev[3]["transport"] == "tcp"


def test_query_log_in_a_state_dir_not_made_yet(internet, bulwark):
    """The default query log lives in server.state-dir; a daemon that keeps root's identity
    (the tests' user: root) has nobody else to make that directory, so the query log makes
    it (it used to fail with "unable to open database file" and stay off)."""
    d = bulwark(lambda port, w: tconfig(internet, port, w, {}))
    state = os.path.join(d.dir, "state")
    d.query(BLOCKED, "A")
    d.stop()
    assert "unable to open" not in d.log_text(10**6)
    r = rows(os.path.join(state, "querylog.sqlite"), "1")
    assert [(x["name"], x["verdict"]) for x in r] == [(BLOCKED, "blocked")]


def test_rule_verdicts_in_the_log(internet, bulwark, workdir):
    """What the rule column says for a subdomain (wildcard), a CNAME into a listed name, a
    feed on trial (log-only) and an allowlisted name."""
    feeds = conftest.standard_feeds(workdir) + [
        {"name": "trial", "category": "malware", "format": "domains", "action": "log-only",
         "file": conftest.write_domains(os.path.join(workdir, "trial.txt"), ["newly.insecure.tld"])}]
    path = os.path.join(workdir, "q.sqlite")
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "anonymized", "query-log": path}, feeds=feeds), workdir=workdir)
    m = d.query("www.blocked.insecure.tld")
    assert dnsutil.is_blocked(m), dnsutil.describe(m)
    m = d.query("to-evil.insecure.tld")
    assert dnsutil.is_blocked(m), dnsutil.describe(m)
    m = d.query("newly.insecure.tld")
    assert dnsutil.addresses(m) == ["192.0.2.90"]
    d.query(ALLOWLISTED)
    d.stop()
    got = [(x["name"], x["verdict"], x["action"], x["feed"], x["category"], x["rule"],
            x["rcode"]) for x in rows(path)]
    assert got == [
        ("www.blocked.insecure.tld", "blocked", "nxdomain", "urlhaus", "malware",
         "*.blocked.insecure.tld", "NXDOMAIN"),
        ("to-evil.insecure.tld", "blocked", "nxdomain", "urlhaus", "malware",
         "CNAME www.evil-target.insecure.tld", "NXDOMAIN"),
        ("newly.insecure.tld", "log-only", "nxdomain", "trial", "malware",
         "newly.insecure.tld", "NOERROR"),
        (ALLOWLISTED, "allowlisted", None, None, None, None, "NOERROR"),
    ]


def test_privacy_none_keeps_no_names(internet, bulwark):
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "none", "query-log": os.path.join(w, "q.sqlite"),
        "events": {"file": os.path.join(w, "ev.jsonl")}}))
    send_mix(d)
    d.stop()
    assert not os.path.exists(os.path.join(d.dir, "q.sqlite"))
    assert not os.path.exists(os.path.join(d.dir, "ev.jsonl"))
    log = d.log_text(20000)
    assert "counters only" in log
    assert BLOCKED not in log.replace("log-only", "")
    s = stats_line(d)
    assert s["records"] == 0 and s["rows"] == 0 and s["events"] == 0


def test_query_log_off_still_writes_events(internet, bulwark):
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "full", "query-log": "off", "events": {"file": os.path.join(w, "ev.jsonl")}}))
    d.query(BLOCKED)
    d.stop()
    assert not [f for f in os.listdir(d.dir) if f.endswith(".sqlite")]
    with open(os.path.join(d.dir, "ev.jsonl")) as f:
        ev = [json.loads(line) for line in f]
    assert [(e["name"], e["client"]) for e in ev] == [(BLOCKED, "127.0.0.1")]


def test_retention_prunes_old_rows_at_start(internet, bulwark, workdir):
    path = os.path.join(workdir, "q.sqlite")
    # a log written earlier: two rows from 10 days ago, one from an hour ago
    d = bulwark(lambda port, w: tconfig(internet, port, w, {"privacy": "full", "query-log": path}))
    d.stop()
    db = sqlite3.connect(path)
    now = int(time.time() * 1000)
    # (rows refer to their name by id: docs/querylog.md)
    for t, name in ((now - 10 * 86400000, "old.example"), (now - 10 * 86400000 + 5, "gone.example"),
                    (now - 3600000, "old.example")):
        db.execute("INSERT OR IGNORE INTO names (name) VALUES (?)", (name,))
        db.execute("INSERT INTO log (time, client, profile, transport, name_id, type, verdict, "
                   "latency_us, cache_hit) VALUES (?, '192.0.2.1', 'default', 'udp', "
                   "(SELECT id FROM names WHERE name = ?), 'A', 'allowed', 1, 0)", (t, name))
    db.commit()
    db.close()
    d2 = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "full", "query-log": path, "retention": "2d"}))
    d2.stop()
    left = rows(path, "name IN ('old.example', 'gone.example')")
    assert [(x["time"], x["name"]) for x in left] == [(now - 3600000, "old.example")]
    assert stats_line(d2)["pruned"] == 2
    # a name whose rows are all gone is gone too; one still used stays
    db = sqlite3.connect(path)
    names = [r[0] for r in db.execute("SELECT name FROM names")]
    db.close()
    assert "gone.example" not in names and "old.example" in names, names


@pytest.mark.parametrize("end", ["stop", "kill"])
def test_spool_keeps_rows_while_the_log_is_locked_and_the_next_start_imports_them(
        internet, bulwark, workdir, end):
    """Another program holds the query log's write lock: the rows wait in the spool, the
    answers go on, the stop leaves them there (spool.stop-wait) or the daemon is killed
    (SIGKILL: the segment it was writing is never closed), and the next start writes every
    one of them, once, in order."""
    path = os.path.join(workdir, "q.sqlite")
    spool = path + "-spool"
    conf = {"privacy": "full", "query-log": path, "spool": {"stop-wait": "1s"}}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    mport = sock.getsockname()[1]
    sock.close()

    def with_metrics(port, w):
        c = tconfig(internet, port, w, conf)
        c["metrics"] = {"port": mport}
        return c
    d = bulwark(with_metrics, workdir=workdir)
    lock = sqlite3.connect(path, isolation_level=None, timeout=10)
    lock.execute("BEGIN IMMEDIATE")  # the write lock, as a long-running writer holds it
    try:
        names = ["spool%d.insecure.tld" % i for i in range(30)]
        for n in names:
            assert d.query(n, "A").rcode() in (0, 3)
        time.sleep(1.5)  # the query log thread has tried and is waiting
        assert rows(path, "name LIKE 'spool%'") == []
        assert any(f.endswith(".seg") for f in os.listdir(spool)), os.listdir(spool)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
            text = r.read().decode()
        waiting = int(re.search(r"^bulwark_query_log_waiting (\d+)$", text, re.M).group(1))
        spooled = int(re.search(r"^bulwark_query_log_spool_bytes (\d+)$", text, re.M).group(1))
        assert waiting >= len(names) and spooled > 0, text
        if end == "kill":
            d.kill()
            d.proc = None  # killed on purpose: nothing left for the teardown to stop
        else:
            d.stop()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert "another program writes to it" in d.log_text(20000)
    if end == "stop":
        s = stats_line(d)
        assert s["log_drops"] == 0 and s["ring_drops"] == 0, s
        assert s["waiting"] >= len(names), s
        assert s["rows"] + s["waiting"] == s["records"], s

    d2 = bulwark(lambda port, w: tconfig(internet, port, w, conf), workdir=workdir,
                 name="again")
    deadline = time.monotonic() + 15
    while any(f.endswith(".seg") for f in os.listdir(spool)) and time.monotonic() < deadline:
        time.sleep(0.1)
    d2.stop()
    got = [x["name"] for x in rows(path, "name LIKE 'spool%'")]
    assert got == names  # each once, in the order sent
    assert not any(f.endswith(".seg") for f in os.listdir(spool)), os.listdir(spool)
    s2 = stats_line(d2)
    assert s2["log_drops"] == 0 and s2["waiting"] == 0, s2


def test_alert_for_an_infected_client_is_raised_once_then_clears(internet, bulwark, workdir):
    feeds = conftest.standard_feeds(workdir) + [
        {"name": "c2feed", "category": "c2", "format": "domains",
         "file": conftest.write_domains(os.path.join(workdir, "c2.txt"), ["hop1.insecure.tld"])}]
    ev_path = os.path.join(workdir, "ev.jsonl")
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "anonymized", "query-log": "off", "events": {"file": ev_path},
        "alerts": {"threshold": 3, "window": "1m", "clear-after": "2s"}}, feeds=feeds),
        workdir=workdir)
    d.query(PHISH)  # phishing: not a watched category
    d.query(PHISH)
    d.query(PHISH)
    d.query(BLOCKED)
    d.query("hop1.insecure.tld")
    time.sleep(0.3)
    assert "alert" not in open(ev_path).read()
    d.query(BLOCKED, "AAAA")  # third malware/c2 hit within the window
    for _ in range(4):        # more hits while active: no new alert
        d.query(BLOCKED)
    time.sleep(0.5)
    alerts = [json.loads(x) for x in open(ev_path) if '"alert"' in x]
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["client"] == "127.0.0.0/24" and a["hits"] == 3
    assert a["domains"] == "%s,hop1.insecure.tld" % BLOCKED
    assert a["feeds"] == "urlhaus,c2feed"
    assert a["first_seen"] <= a["last_seen"]
    # the same, over the control socket
    out = json.loads(conftest.ctl(os.path.join(workdir, "state"), "--json", "alerts").stdout)
    assert out["ok"] is True, out
    table = [dict(zip(out["result"]["columns"], r)) for r in out["result"]["rows"]]
    assert len(table) == 1 and table[0]["client"] == "127.0.0.0/24", table
    assert table[0]["state"] == "active" and table[0]["hits"] >= 3, table
    text = conftest.ctl(os.path.join(workdir, "state"), "alerts").stdout
    assert "127.0.0.0/24" in text and "hop1.insecure.tld" in text, text
    out = json.loads(conftest.ctl(os.path.join(workdir, "state"), "--json", "top", "3").stdout)
    top = {(r[0], r[1]): r[2] for r in out["result"]["rows"]}
    assert top[("name", BLOCKED)] >= 5 and top[("client", "127.0.0.0/24")] >= 8, top
    assert conftest.ctl(os.path.join(workdir, "state"), "top", "x", check=False).returncode == 1
    # quiet for clear-after (2 s, checked at least every 2 s): the alert clears, and new
    # hits raise a new one
    time.sleep(5)
    for _ in range(3):
        d.query(BLOCKED)
    time.sleep(0.5)
    alerts = [json.loads(x) for x in open(ev_path) if '"alert"' in x]
    assert len(alerts) == 2, alerts
    assert alerts[1]["domains"] == BLOCKED and alerts[1]["hits"] == 3
    d.stop()
    assert "looks infected" in d.log_text(20000)
    assert stats_line(d)["alerts"] == 2


class Recorder(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        Recorder.got.append((self.headers.get("Content-Type"), self.rfile.read(n)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_receives_events(internet, bulwark):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    Recorder.got = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/hook" % srv.server_address[1]
        d = bulwark(lambda port, w: tconfig(internet, port, w, {
            "query-log": "off", "events": {"webhook": {"url": url, "timeout": "2s"}}}))
        d.query(ALLOWED)
        d.query(BLOCKED)
        d.query(PHISH)
        deadline = time.monotonic() + 10
        while len(Recorder.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        d.stop()
    finally:
        srv.shutdown()
    assert [ct for ct, _ in Recorder.got] == ["application/json"] * 2
    ev = [json.loads(b) for _, b in Recorder.got]
    assert [(e["event"], e["name"], e["feed"], e["client"]) for e in ev] == [
        ("blocked", BLOCKED, "urlhaus", "127.0.0.0/24"), ("blocked", PHISH, "scam", "127.0.0.0/24")]
    s = stats_line(d)
    assert (s["webhook_sent"], s["webhook_drops"]) == (2, 0)


class FailsOnce(http.server.BaseHTTPRequestHandler):
    got = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        FailsOnce.got.append(self.rfile.read(n))
        self.send_response(503 if len(FailsOnce.got) == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def test_webhook_retries_after_a_failure(internet, bulwark):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailsOnce)
    FailsOnce.got = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d/" % srv.server_address[1]
        d = bulwark(lambda port, w: tconfig(internet, port, w, {
            "query-log": "off", "events": {"webhook": {"url": url, "retries": 2}}}))
        d.query(BLOCKED)
        deadline = time.monotonic() + 10
        while len(FailsOnce.got) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        d.stop()
    finally:
        srv.shutdown()
    assert len(FailsOnce.got) == 2 and FailsOnce.got[0] == FailsOnce.got[1]
    assert json.loads(FailsOnce.got[1])["name"] == BLOCKED
    s = stats_line(d)
    assert (s["webhook_sent"], s["webhook_drops"]) == (1, 0)
    assert "HTTP status not 2xx" in d.log_text(20000)


def test_webhook_that_hangs_drops_events_and_answers_go_on(internet, bulwark):
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(100)  # accepts connections (kernel backlog), never answers
    try:
        url = "http://127.0.0.1:%d/" % hang.getsockname()[1]
        d = bulwark(lambda port, w: tconfig(internet, port, w, {
            "query-log": os.path.join(w, "q.sqlite"),
            "events": {"webhook": {"url": url, "timeout": "1s", "retries": 1, "queue": 3}}}))
        t0 = time.monotonic()
        for i in range(40):
            m = d.query(BLOCKED, timeout=2.0)
            assert dnsutil.is_blocked(m)
        elapsed = time.monotonic() - t0
        d.stop()
    finally:
        hang.close()
    s = stats_line(d)
    # none is sent; every event (40 blocked queries, and the alert they raised) is dropped:
    # at the full queue, after its retries, or still queued at exit
    assert s["webhook_sent"] == 0
    assert s["alerts"] == 1
    assert s["webhook_drops"] == 40 + 1, (s, d.log_text())
    assert s["rows"] == 40 and s["log_drops"] == 0  # the query log does not wait either
    assert elapsed < 40  # answered without waiting on the webhook (a 1 s timeout each)


def test_full_disk_drops_rows_and_answers_go_on(internet, bulwark, workdir, monkeypatch):
    """The query log and events file live on a 320 KiB tmpfs, mostly filled, mounted in a
    mount namespace of the daemon's own (unshare -m): SQLite and the events file hit
    ENOSPC; every query is still answered and the drops are counted."""
    small = os.path.join(workdir, "small")
    os.mkdir(small)
    wrapper = os.path.join(workdir, "in-tmpfs.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec unshare -m --propagation private sh -c \'mount -t tmpfs '
                '-o size=320k tmpfs "%s" && dd if=/dev/zero of="%s/fill" bs=4k count=60 '
                '2>/dev/null; exec "$0" "$@"\' "%s" "$@"\n'
                % (small, small, conftest.bulwark_binary()))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "bulwark_binary", lambda: wrapper)
    d = bulwark(lambda port, w: tconfig(internet, port, w, {
        "privacy": "full", "query-log": os.path.join(small, "q.sqlite"),
        "events": {"file": os.path.join(small, "ev.jsonl")}}, workers=2), workdir=workdir)
    n = 3000
    for i in range(n):
        m = d.query(BLOCKED if i % 2 else ALLOWED, timeout=2.0)
        assert m.rcode() in (0, 3)
    d.stop()
    assert not os.path.exists(os.path.join(small, "q.sqlite")), "tmpfs leaked out"
    s = stats_line(d)
    assert s["records"] >= n
    assert s["log_drops"] > 0, s
    assert s["rows"] + s["log_drops"] + s["ring_drops"] == s["records"], s
    assert s["event_drops"] > 0, s
    assert "query log" in d.log_text(20000)
