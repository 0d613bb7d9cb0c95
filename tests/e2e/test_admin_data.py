"""tests/e2e/test_admin_data.py - the data actions of the admin API (docs/api.md, "Data
endpoints") against the real daemon, through `bulwarkctl` words and, for the actions a
word command of the same name shadows (alerts, top, feeds), the JSON request line the
HTTP server sends to the same code (admin/admin.h).

- querylog: search by name (exact, suffix, prefix), verdict, client, feed, time range,
  paging; one test per privacy mode proving a search returns nothing beyond what that mode
  keeps, and a file written under `full` searched under `anonymized` and `blocked-only`
  (an earlier run's rows never show more than the mode in force keeps);
- series: per-minute counts that match the queries sent (udp/tcp, blocked, cache hits,
  by profile) and the rows of the query log;
- top, alerts (ids, ack, clear), feeds (refresh, accept), why (explain on the daemon's live
  policy: blocked, allowed, allowlisted, for a named client), check-config (good and bad
  YAML, file:line naming the posted text).
"""

import json
import os
import socket
import time

import pytest

import conftest
import dnsutil
from conftest import default_config

BLOCKED = "evil-target.insecure.tld"   # urlhaus (malware)
PHISH = "phish.insecure.tld"            # scam (phishing)
ALLOWED = "www.insecure.tld"
ALLOWLISTED = "ok.blocked.insecure.tld"
PHONE = "Amira's phone"
PHONE_IP = "127.0.0.5"
CUT = "127.0.0.0/24"


def config(internet, port, d, telemetry, **kw):
    conf = default_config(internet, port, d, workers=1, **kw)
    conf["clients"] = [{"name": PHONE, "match": [PHONE_IP + "/32"]}]
    telemetry.setdefault("query-log", os.path.join(d, "q.sqlite"))
    conf["telemetry"] = telemetry
    return conf


def ctl(d, *args, check=True):
    return conftest.ctl(os.path.join(d.dir, "state"), *args, check=check)


def ctl_json(d, *args):
    """bulwarkctl -j ARGS: the result (asserting ok)."""
    out = json.loads(ctl(d, "-j", *args).stdout)
    assert out["ok"] is True, out
    return out["result"]


def action(d, act, **args):
    """The JSON request line, as the HTTP server runs an action: the whole answer."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(os.path.join(d.dir, "state", "control.sock"))
    s.sendall((json.dumps({"action": act, "args": args}) + "\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)


def wait_for(what, timeout=8.0):
    deadline = time.monotonic() + timeout
    while True:
        v = what()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.1)


def search(d, *words):
    return ctl_json(d, "querylog", *words)


def names(result):
    return sorted(r["name"] for r in result["rows"] if r["name"] != "localhost")


def send_mix(d):
    """From the named phone: allowed twice (a cache hit), blocked twice, phishing; and one
    allowlisted and one blocked over TCP from another address."""
    for name in (ALLOWED, ALLOWED, BLOCKED, BLOCKED, PHISH):
        d.query(name, source=PHONE_IP)
    d.query(ALLOWLISTED, source="127.0.0.1")
    assert dnsutil.is_blocked(d.query(BLOCKED, "AAAA", tcp=True, source="127.0.0.1"))


def logged(d, n):
    """Waits until the log holds n rows other than the readiness probes."""
    return wait_for(lambda: len(names(search(d, "limit=1000"))) >= n)


# ---- querylog ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def full(internet, bulwark_module):
    d = bulwark_module(lambda port, w: config(internet, port, w, {"privacy": "full"}))
    send_mix(d)
    assert logged(d, 7)
    return d


def test_querylog_name_patterns(full):
    assert names(search(full, "name=" + BLOCKED)) == [BLOCKED] * 3
    assert names(search(full, "name=" + BLOCKED.upper() + ".")) == [BLOCKED] * 3
    every = sorted([ALLOWED] * 2 + [BLOCKED] * 3 + [PHISH, ALLOWLISTED])
    assert names(search(full, "name=.insecure.tld")) == every
    assert names(search(full, "name=*.insecure.tld")) == every
    assert names(search(full, "name=*.blocked.insecure.tld")) == [ALLOWLISTED]
    assert names(search(full, "name=evil*")) == [BLOCKED] * 3
    assert names(search(full, "name=nothing.example")) == []
    r = ctl(full, "querylog", "name=a*b*", check=False)
    assert r.returncode == 1 and "name:" in r.stderr, r.stderr


def test_querylog_verdict_client_feed_and_paging(full):
    blocked = search(full, "verdict=blocked")
    assert names(blocked) == sorted([BLOCKED] * 3 + [PHISH])
    assert all(r["verdict"] == "blocked" for r in blocked["rows"])
    allowed = search(full, "verdict=allowed")
    assert BLOCKED not in names(allowed) and ALLOWED in names(allowed)
    assert names(search(full, "feed=scam")) == [PHISH]
    phone = search(full, "client=" + PHONE_IP)
    assert len(phone["rows"]) == 5 and {r["client_name"] for r in phone["rows"]} == {PHONE}
    by_name = action(full, "querylog", client=PHONE)["result"]  # a name with a space
    assert len(by_name["rows"]) == 5
    page = search(full, "verdict=blocked", "limit=2")
    assert len(page["rows"]) == 2 and page["more"] is True and page["limit"] == 2
    rest = search(full, "verdict=blocked", "limit=2", "offset=2")
    assert len(rest["rows"]) == 2 and rest["more"] is False
    # newest first: the TCP AAAA query was the last
    assert page["rows"][0]["type"] == "AAAA" and page["rows"][0]["transport"] == "tcp"
    r = ctl(full, "querylog", "limit=1001", check=False)
    assert r.returncode == 1 and "limit" in r.stderr


def test_querylog_time_range(full):
    now = int(time.time())
    assert len(names(search(full, "since=%d" % (now - 600)))) == 7
    assert names(search(full, "until=%d" % (now - 600))) == []
    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600))
    assert len(names(search(full, "since=" + iso))) == 7
    assert names(search(full, "since=" + iso, "until=" + iso)) == []
    r = ctl(full, "querylog", "since=yesterday", check=False)
    assert r.returncode == 1 and "ISO 8601" in r.stderr


def test_querylog_over_the_json_request(full):
    r = action(full, "querylog", name=BLOCKED, verdict="blocked", limit="1")
    assert r["ok"] and r["result"]["privacy"] == "full" and r["result"]["more"] is True
    row = r["result"]["rows"][0]
    assert row["name"] == BLOCKED and row["feed"] == "urlhaus" and row["category"] == "malware"
    assert row["time"].endswith("Z") and row["profile"]


# ---- privacy: never more than the mode keeps -----------------------------------------------

def mode_daemon(internet, bulwark, mode, path=None):
    tel = {"privacy": mode}
    if path:
        tel["query-log"] = path
    d = bulwark(lambda port, w: config(internet, port, w, tel))
    send_mix(d)
    return d


def test_privacy_full_keeps_the_address_and_the_name(internet, bulwark):
    d = mode_daemon(internet, bulwark, "full")
    assert logged(d, 7)
    rows = [r for r in search(d)["rows"] if r["name"] != "localhost"]
    assert {r["client"] for r in rows} == {PHONE_IP, "127.0.0.1"}
    assert [r.get("client_name") for r in rows if r["client"] == PHONE_IP] == [PHONE] * 5


def test_privacy_anonymized_cuts_the_address_and_drops_the_name(internet, bulwark):
    d = mode_daemon(internet, bulwark, "anonymized")
    assert logged(d, 7)
    res = search(d)
    assert res["privacy"] == "anonymized"
    rows = [r for r in res["rows"] if r["name"] != "localhost"]
    assert {r["client"] for r in rows} == {CUT}
    assert not any("client_name" in r for r in rows), rows
    assert PHONE not in json.dumps(res) and PHONE_IP not in json.dumps(res)
    # a search by the exact address finds its network's rows, shown as the network
    assert len(search(d, "client=" + PHONE_IP)["rows"]) >= 7
    assert action(d, "querylog", client=PHONE)["result"]["rows"] == []  # names not kept


def test_privacy_blocked_only_returns_blocked_rows_only(internet, bulwark):
    d = mode_daemon(internet, bulwark, "blocked-only")
    assert wait_for(lambda: len(search(d)["rows"]) >= 4)
    res = search(d)
    assert names(res) == sorted([BLOCKED] * 3 + [PHISH])
    assert {r["verdict"] for r in res["rows"]} == {"blocked"}
    assert {r["client"] for r in res["rows"]} == {CUT}
    assert search(d, "verdict=allowed")["rows"] == []


def test_privacy_none_keeps_nothing(internet, bulwark):
    d = mode_daemon(internet, bulwark, "none")
    res = search(d)
    assert res["privacy"] == "none" and res["rows"] == [] and "message" in res


def test_an_earlier_runs_rows_never_show_more_than_the_mode_in_force(internet, bulwark,
                                                                     tmp_path):
    path = str(tmp_path / "q.sqlite")
    d = mode_daemon(internet, bulwark, "full", path)
    assert logged(d, 7)
    d.stop()
    for mode in ("anonymized", "blocked-only"):
        d = bulwark(lambda port, w: config(internet, port, w, {"privacy": mode,
                                                               "query-log": path}))
        res = search(d, "limit=1000")
        text = json.dumps(res)
        assert res["rows"] and PHONE_IP not in text and "127.0.0.1" not in text, text
        if mode == "anonymized":
            assert PHONE not in text
            assert ALLOWED in names(res)
        else:
            assert {r["verdict"] for r in res["rows"]} == {"blocked"}
            assert ALLOWED not in names(res) and ALLOWLISTED not in names(res)
        d.stop()


# ---- series ------------------------------------------------------------------------------

def test_series_counts_the_queries_sent(internet, bulwark):
    d = bulwark(lambda port, w: config(internet, port, w, {"privacy": "full"}, policy={
        "profiles": [{"name": "default"}, {"name": "private", "feeds": "none"}]}))
    if time.time() % 60 > 45:  # not across a minute's end: the check below waits for it
        time.sleep(61 - time.time() % 60)
    for name in (ALLOWED, ALLOWED, ALLOWED, BLOCKED, PHISH):
        d.query(name)
    for _ in range(2):
        d.query(BLOCKED, tcp=True)
    # the minute of these queries ends, and a tick of the main thread samples it (within
    # half a second, more on a busy machine)
    time.sleep(60.5 - time.time() % 60)
    s = wait_for(lambda: (lambda r: sum(r["queries"]) >= 7 and r)(
        ctl_json(d, "series", "minutes=5")), timeout=15)
    assert s, ctl_json(d, "series", "minutes=5")
    assert s["resolution"] == 60 and len(s["queries"]) == 5
    assert s["start"] % 60 == 0 and abs(s["start"] - (int(time.time()) // 60 - 5) * 60) <= 60
    assert sum(s["blocked"]) == 4, s
    assert sum(s["by_transport"]["tcp"]) == 2, s
    assert sum(s["cache_hits"]) >= 2, s  # ALLOWED twice, the TCP BLOCKED once
    assert sum(s["by_transport"]["dot"]) == sum(s["by_transport"]["doh"]) == 0
    every = sum(s["queries"])
    assert every == sum(sum(v) for v in s["by_transport"].values()), s
    assert every == sum(s["by_profile"]["default"]), s
    assert s["by_profile"]["private"] == [0] * 5
    # the readiness probes are queries too: the log (privacy full) has every one
    assert every == len(search(d, "limit=1000")["rows"]), s
    assert every == 7 + len(search(d, "name=localhost")["rows"])
    r = ctl(d, "series", "minutes=1441", check=False)
    assert r.returncode == 1 and "out of range" in r.stderr


# ---- top, alerts, feeds --------------------------------------------------------------------

def test_top_and_alerts_with_ack_and_clear(internet, bulwark, tmp_path):
    d = bulwark(lambda port, w: config(internet, port, w, {
        "privacy": "blocked-only", "alerts": {"threshold": 3, "window": "1m"}}))
    for _ in range(3):
        d.query(BLOCKED, source=PHONE_IP)
    d.query(PHISH, source=PHONE_IP)
    alerts = wait_for(lambda: action(d, "alerts")["result"]["alerts"])
    assert len(alerts) == 1, alerts
    a = alerts[0]
    assert a["client"] == PHONE and a["state"] == "active" and a["hits"] == 3
    assert a["names"] == [BLOCKED] and a["feeds"] == ["urlhaus"]
    assert a["acknowledged"] is False and a["id"] >= 1
    # the word command still prints its table, with the id
    table = ctl_json(d, "alerts")
    row = dict(zip(table["columns"], table["rows"][0]))
    assert row["client"] == PHONE and row["id"] == a["id"], row
    top = action(d, "top", n="5")["result"]
    assert top["names"][0] == {"name": BLOCKED, "count": 3}
    assert {"name": PHISH, "count": 1} in top["names"]
    assert top["clients"] == [{"client": PHONE, "count": 4}]
    assert top["feeds"] == [{"feed": "urlhaus", "count": 3}, {"feed": "scam", "count": 1}]
    assert "name" in ctl(d, "top", "3").stdout
    # acknowledge, then clear (both audited changes)
    assert ctl_json(d, "alerts-ack", str(a["id"])) == {"id": a["id"], "acknowledged": True}
    assert action(d, "alerts")["result"]["alerts"][0]["acknowledged"] is True
    r = ctl(d, "alerts-ack", "999", check=False)
    assert r.returncode == 1 and "no alert" in r.stderr
    assert ctl_json(d, "alerts-clear", str(a["id"])) == {"cleared": 1}
    assert action(d, "alerts")["result"]["alerts"] == []
    # hits again: a new alert, with a new id
    for _ in range(3):
        d.query(BLOCKED, source=PHONE_IP)
    again = wait_for(lambda: action(d, "alerts")["result"]["alerts"])
    assert again[0]["id"] > a["id"] and again[0]["acknowledged"] is False
    assert ctl_json(d, "alerts-clear", "all") == {"cleared": 1}
    audit = [json.loads(l) for l in open(os.path.join(d.dir, "state", "audit.log"))]
    assert [x["action"] for x in audit] == ["alerts-ack", "alerts-ack", "alerts-clear",
                                            "alerts-clear"], audit
    assert [x["ok"] for x in audit] == [True, False, True, True], audit


def test_feeds_list_refresh_and_accept(internet, bulwark):
    d = bulwark(lambda port, w: config(internet, port, w, {"privacy": "none"}))
    feeds = action(d, "feeds")["result"]["feeds"]
    by = {f["name"]: f for f in feeds}
    assert set(by) == {"urlhaus", "scam"}
    f = by["urlhaus"]
    assert f["state"] == "file" and f["entries"] == 3 and f["held_back"] is False
    assert "updated" in f and "error" in f and f["format"] == "domains"
    # local files are watched, not fetched: both say why, as the words do
    r = ctl(d, "feeds-refresh", "urlhaus", check=False)
    assert r.returncode == 1 and r.stderr
    r = ctl(d, "feeds-accept", "urlhaus", check=False)
    assert r.returncode == 1 and r.stderr
    r = action(d, "feeds-accept", name="nosuch")
    assert r["ok"] is False


# ---- why (explain on the live policy) ---------------------------------------------------------

@pytest.fixture(scope="module")
def live(internet, bulwark_module):
    return bulwark_module(lambda port, w: config(internet, port, w, {"privacy": "none"}))


def test_why_blocked(live):
    r = ctl_json(live, "why", BLOCKED)
    assert r["verdict"] == "blocked" and r["feed"] == "urlhaus" and r["category"] == "malware"
    assert r["profile"] == "default" and r["name"] == BLOCKED
    assert r["reason"] == "Blocked: listed by feed urlhaus (malware) for profile default."
    assert any(l.startswith("verdict:") and "urlhaus" in l for l in r["lines"]), r["lines"]


def test_why_allowed_and_allowlisted(live):
    r = ctl_json(live, "why", ALLOWED)
    assert r["verdict"] == "allowed" and r.get("feed") is None
    assert r["reason"].startswith("Allowed: no feed used by profile default lists")
    assert "verdict:  resolve normally" in r["lines"]
    r = ctl_json(live, "why", ALLOWLISTED)
    assert r["verdict"] == "allowed" and "allowlist" in r["reason"]


def test_why_for_a_named_client_and_errors(live):
    r = ctl_json(live, "why", BLOCKED, PHONE_IP)
    assert any(PHONE in l for l in r["lines"]), r["lines"]
    r = action(live, "why", name=PHISH, client=PHONE, type="AAAA")
    assert r["ok"] and r["result"]["feed"] == "scam", r
    r = ctl(live, "why", "x..y", check=False)
    assert r.returncode == 1 and "not a valid domain name" in r.stderr
    r = ctl(live, "why", BLOCKED, "nobody", check=False)
    assert r.returncode == 1 and "client" in r.stderr


def test_why_follows_a_reload(live, tmp_path):
    path = os.path.join(live.dir, "urlhaus.txt")
    new = "new-evil.insecure.tld"
    assert ctl_json(live, "why", new)["verdict"] == "allowed"
    conftest.write_domains(path + ".tmp", conftest.MALWARE_DOMAINS + [new])
    os.rename(path + ".tmp", path)
    assert wait_for(lambda: ctl_json(live, "why", new)["verdict"] == "blocked")
    conftest.write_domains(path + ".tmp", conftest.MALWARE_DOMAINS)
    os.rename(path + ".tmp", path)
    assert wait_for(lambda: ctl_json(live, "why", new)["verdict"] == "allowed")


def test_why_names_a_local_decision_and_a_pause(live):
    ctl(live, "block", "decided.insecure.tld")
    r = ctl_json(live, "why", "www.decided.insecure.tld")
    assert r["verdict"] == "blocked" and r["feed"] == "local", r
    assert r["reason"].startswith("Blocked: a local decision by bulwarkctl (uid 0) at "), r
    assert r["decision"]["action"] == "block" and r["decision"]["name"] == "decided.insecure.tld"
    ctl(live, "unblock", "decided.insecure.tld")
    ctl(live, "allow", BLOCKED)
    r = ctl_json(live, "why", BLOCKED)
    assert r["verdict"] == "allowed" and "local decision" in r["reason"], r
    ctl(live, "unallow", BLOCKED)
    ctl(live, "pause", "default", "5")
    r = ctl_json(live, "why", BLOCKED)
    assert r["verdict"] == "allowed" and "paused" in r["reason"], r
    ctl(live, "resume", "default")
    assert ctl_json(live, "why", BLOCKED)["verdict"] == "blocked"


# ---- check-config ------------------------------------------------------------------------------

def test_check_config_good_and_bad(live, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(live.config_text)
    r = ctl(live, "check-config", str(good))
    assert "valid" in r.stdout
    bad = tmp_path / "bad.yaml"
    lines = live.config_text.splitlines()
    lines.insert(1, "  no-such-key: 1")
    bad.write_text("\n".join(lines) + "\n")
    r = ctl(live, "-j", "check-config", str(bad), check=False)
    assert r.returncode == 1
    res = json.loads(r.stdout.splitlines()[0])["result"]
    assert res["valid"] is False and len(res["errors"]) == 1
    assert res["errors"][0].startswith("posted:2:"), res
    assert "no-such-key" in res["errors"][0]
    r = action(live, "check-config", yaml="server: [\n")
    assert r["ok"] and r["result"]["valid"] is False
    assert r["result"]["errors"][0].startswith("posted:"), r
    r = action(live, "check-config", yaml="x" * (64 * 1024 + 1))
    assert r["ok"] is False and "64" in r["error"]
    # nothing was applied, nothing left behind
    assert ctl_json(live, "why", BLOCKED)["verdict"] == "blocked"
    assert not [f for f in os.listdir(live.dir) if f.startswith(".bulwark-check")]


def test_help_lists_the_actions(live):
    out = ctl(live, "help").stdout
    for word in ("series", "querylog", "why", "alerts-ack", "alerts-clear", "feeds-refresh",
                 "feeds-accept", "check-config"):
        assert word in out, word
