"""tests/e2e/test_client_names.py - named clients (`clients:`) in what Bulwark keeps and in
`bulwark explain`.

Telemetry: a device named "Amira's phone" (matched by its address, 127.0.0.5/32) looks up
names of a malware feed; the query log row, the security event, the alert (`bulwarkctl
alerts`) and `bulwarkctl top` name it, under `blocked-only` (the default) and `full`, the
address still cut as the mode says; a query from an address no client has carries no
name; under `anonymized` the name is nowhere, not in the SQLite file (its bytes are
searched), not in the events, not in the daemon's log. A query whose verdict comes after
resolution (a CNAME into a listed name) and an allowed query that waits for the resolver
carry the name as well as those answered at once.

Explain: `--client` as an address, id:CLIENTID, mac:MAC and a client's name says which
client matched and why, and picks the profile as the daemon does (a schedule included);
an unknown ClientID, MAC or name exits 2 with a message.
"""

import json
import os
import sqlite3
import subprocess
import time

import pytest

import conftest
import dnsutil
from conftest import default_config

BLOCKED = "evil-target.insecure.tld"  # urlhaus (malware)
VIA_CNAME = "to-evil.insecure.tld"     # a CNAME into urlhaus: decided after resolution
ALLOWED = "www.insecure.tld"
PHONE = "Amira's phone"
PHONE_IP = "127.0.0.5"
TABLET_IP = "127.0.0.6"
OTHER_IP = "127.0.0.1"                 # no client has it
CUT = "127.0.0.0/24"                   # what blocked-only and anonymized keep of all three

CLIENTS = [
    {"name": PHONE, "match": [PHONE_IP + "/32", "id:k3j5abcdef", "mac:aa:bb:cc:dd:ee:ff"]},
    {"name": "Guest tablet", "match": [TABLET_IP + "/32"], "profile": "default",
     "schedule": [{"profile": "private", "days": "daily", "from": "00:00", "to": "24:00"}]},
]


def config(internet, port, d, telemetry):
    # one worker: rows come in the order the queries were sent
    conf = default_config(internet, port, d, workers=1, policy={
        "profiles": [{"name": "default"}, {"name": "private", "feeds": "none"}]})
    conf["clients"] = CLIENTS
    conf["telemetry"] = telemetry
    return conf


def rows(path):
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute(
            "SELECT * FROM queries WHERE name != 'localhost' ORDER BY id")]
    finally:
        db.close()


def events(path, kind):
    with open(path) as f:
        return [e for e in map(json.loads, f) if e["event"] == kind]


def wait_for(what, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not what() and time.monotonic() < deadline:
        time.sleep(0.05)
    return what()


def ctl_table(workdir, *args):
    out = json.loads(conftest.ctl(os.path.join(workdir, "state"), "--json", *args).stdout)
    assert out["ok"] is True, out
    return [dict(zip(out["result"]["columns"], r)) for r in out["result"]["rows"]]


def test_blocked_only_names_the_client_in_log_events_alerts_and_top(internet, bulwark, workdir):
    path = os.path.join(workdir, "q.sqlite")
    ev = os.path.join(workdir, "ev.jsonl")
    d = bulwark(lambda port, w: config(internet, port, w, {
        "query-log": path, "events": {"file": ev},
        "alerts": {"threshold": 3, "window": "1m"}}), workdir=workdir)
    for _ in range(2):
        m = d.query(BLOCKED, source=PHONE_IP)
        assert dnsutil.is_blocked(m), dnsutil.describe(m)
    m = d.query(VIA_CNAME, source=PHONE_IP)  # waits for the resolver, then blocked
    assert dnsutil.is_blocked(m), dnsutil.describe(m)
    assert d.query(ALLOWED, source=PHONE_IP).rcode() == 0  # not kept under blocked-only
    m = d.query(BLOCKED, source=OTHER_IP)
    assert dnsutil.is_blocked(m), dnsutil.describe(m)

    # the third malware hit of the phone raised the alert: by its name
    assert wait_for(lambda: events(ev, "alert")), open(ev).read()
    table = ctl_table(workdir, "alerts")
    assert [(a["client"], a["state"], a["hits"], a["addresses"]) for a in table] == [
        (PHONE, "active", 3, CUT)], table
    assert PHONE in conftest.ctl(os.path.join(workdir, "state"), "alerts").stdout
    top = {(r["kind"], r["value"]): r["blocked"] for r in ctl_table(workdir, "top", "5")}
    assert top[("client", PHONE)] == 3 and top[("client", CUT)] == 1, top
    d.stop()

    got = [(r["name"], r["client"], r["client_name"]) for r in rows(path)]
    assert got == [(BLOCKED, CUT, PHONE), (BLOCKED, CUT, PHONE), (VIA_CNAME, CUT, PHONE),
                   (BLOCKED, CUT, None)], got
    blocked = events(ev, "blocked")
    assert [(e["name"], e["client"], e.get("client_name")) for e in blocked] == [
        (BLOCKED, CUT, PHONE), (BLOCKED, CUT, PHONE), (VIA_CNAME, CUT, PHONE),
        (BLOCKED, CUT, None)], blocked
    assert "client_name" not in blocked[3]  # no name: no field
    [alert] = events(ev, "alert")
    assert (alert["client"], alert["client_name"], alert["addresses"], alert["hits"]) == (
        PHONE, PHONE, CUT, 3), alert
    assert "alert: client %s (%s) looks infected" % (PHONE, CUT) in d.log_text(20000)


def test_full_names_every_query_with_the_exact_address(internet, bulwark, workdir):
    path = os.path.join(workdir, "q.sqlite")
    d = bulwark(lambda port, w: config(internet, port, w, {
        "privacy": "full", "query-log": path}), workdir=workdir)
    d.query(ALLOWED, source=PHONE_IP)  # resolved: the answer comes back asynchronously
    d.query(ALLOWED, source=PHONE_IP)  # from the cache, at once
    d.query(ALLOWED, source=OTHER_IP)
    d.stop()
    got = [(r["name"], r["client"], r["client_name"], r["cache_hit"]) for r in rows(path)]
    assert got == [(ALLOWED, PHONE_IP, PHONE, 0), (ALLOWED, PHONE_IP, PHONE, 1),
                   (ALLOWED, OTHER_IP, None, 1)], got


def test_anonymized_keeps_no_name_anywhere(internet, bulwark, workdir):
    path = os.path.join(workdir, "q.sqlite")
    ev = os.path.join(workdir, "ev.jsonl")
    d = bulwark(lambda port, w: config(internet, port, w, {
        "privacy": "anonymized", "query-log": path, "events": {"file": ev},
        "alerts": {"threshold": 2, "window": "1m"}}), workdir=workdir)
    for name in (BLOCKED, BLOCKED, VIA_CNAME, ALLOWED):
        d.query(name, source=PHONE_IP)
    assert wait_for(lambda: events(ev, "alert")), open(ev).read()
    table = ctl_table(workdir, "alerts")
    assert [a["client"] for a in table] == [CUT], table  # by network, as before
    top = ctl_table(workdir, "top", "5")
    assert PHONE not in json.dumps(top), top
    d.stop()
    got = [(r["name"], r["client"], r["client_name"]) for r in rows(path)]
    assert got == [(BLOCKED, CUT, None), (BLOCKED, CUT, None), (VIA_CNAME, CUT, None),
                   (ALLOWED, CUT, None)], got
    # not a byte of it in the log's files (WAL and spool included), the events or the log
    files = [ev] + [os.path.join(workdir, f) for f in os.listdir(workdir)
                    if f.startswith("q.sqlite") and os.path.isfile(os.path.join(workdir, f))]
    spool = path + "-spool"
    files += [os.path.join(spool, f) for f in os.listdir(spool)] if os.path.isdir(spool) else []
    for f in files:
        with open(f, "rb") as fh:
            assert b"Amira" not in fh.read(), f
    assert "Amira" not in d.log_text(100000)


# ---- bulwark explain --client ----

@pytest.fixture(scope="module")
def named(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("named"))
    return bulwark_module(lambda port, w: config(internet, port, w, {}), workdir=d)


def explain(daemon, name, *args):
    return subprocess.run([conftest.bulwark_binary(), "explain", name, "-c", daemon.config_path,
                           "--no-resolve"] + list(args), capture_output=True,
                          encoding="utf-8", timeout=30)


def line(out, key):
    got = [l for l in out.splitlines() if l.startswith(key + ":")]
    assert len(got) == 1, out
    return got[0][len(key) + 1:].strip()


@pytest.mark.parametrize("who,why", [
    (PHONE_IP, "address 127.0.0.5 in network 127.0.0.5/32"),
    ("id:K3J5ABCDEF", "ClientID k3j5\u2026"),
    ("mac:AA-BB-CC-DD-EE-FF", "MAC aa:bb:cc:dd:ee:ff"),
    (PHONE, "by name"),
])
def test_explain_names_the_client_and_why(named, who, why):
    p = explain(named, BLOCKED, "--client", who)
    assert p.returncode == 0, p.stdout + p.stderr
    assert line(p.stdout, "client") == "%s (%s; no profile of its own)" % (PHONE, why)
    assert line(p.stdout, "profile") == "default"
    assert line(p.stdout, "verdict").startswith("NXDOMAIN by feed urlhaus"), p.stdout


@pytest.mark.parametrize("who", [TABLET_IP, "Guest tablet"])
def test_explain_chooses_the_profile_as_the_daemon_does(named, who):
    p = explain(named, BLOCKED, "--client", who)
    assert p.returncode == 0, p.stdout + p.stderr
    assert line(p.stdout, "client").startswith("Guest tablet (")
    assert line(p.stdout, "client").endswith(
        "; profile private by schedule daily 00:00-24:00)"), p.stdout
    assert line(p.stdout, "profile") == "private"
    assert line(p.stdout, "verdict") == "resolve normally", p.stdout
    # and the daemon: the tablet's schedule gives it the profile without feeds
    r = named.query(BLOCKED, source=TABLET_IP)
    assert not dnsutil.is_blocked(r), dnsutil.describe(r)
    assert dnsutil.is_blocked(named.query(BLOCKED, source=PHONE_IP))


def test_explain_address_of_no_client(named):
    p = explain(named, BLOCKED, "--client", OTHER_IP)
    assert p.returncode == 0, p.stdout + p.stderr
    assert line(p.stdout, "client") == "127.0.0.1 (no named client)"
    assert line(p.stdout, "profile") == "default"


@pytest.mark.parametrize("who,msg", [
    ("id:nope", "no client has the ClientID 'nope'"),
    ("mac:00:00:00:00:00:01", "no client has the MAC address 00:00:00:00:00:01"),
    ("mac:zz", "'zz' is not a MAC address"),
    ("amira's phone", "is not an IP address, id:CLIENTID, mac:MAC or the name of a client"),
])
def test_explain_unknown_client_exits_2(named, who, msg):
    p = explain(named, BLOCKED, "--client", who)
    assert p.returncode == 2, p.stdout + p.stderr
    assert msg in p.stderr, p.stderr
    assert p.stdout == ""
