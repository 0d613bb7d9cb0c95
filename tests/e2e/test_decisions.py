"""Local decisions and pause (issue 16) through bulwarkctl, against the real daemon: an allow
of a feed-blocked name takes effect in the very next answer (and explain says who decided
it), undo blocks it again, a block of an unlisted name answers NXDOMAIN with EDE 15
"local"; decisions survive a restart and a SIGHUP; every change is in the audit log; a
pause lets a blocked name resolve, ends by itself at its time, and a resume ends it now."""

import json
import os
import sqlite3
import subprocess
import time
import urllib.request

import dns.rcode

import conftest
import dnsutil
from dnsutil import describe

BLOCKED = "blocked.insecure.tld."     # urlhaus (malware) lists it: conftest
PHISH = "phish.insecure.tld."         # scam (phishing)
UNLISTED = "www.insecure.tld."        # resolves to 192.0.2.50


def statedir(daemon):
    return os.path.join(daemon.dir, "state")


def ctl(daemon, *args, check=True):
    return conftest.ctl(statedir(daemon), *args, check=check)


def ctl_json(daemon, *args):
    p = ctl(daemon, "--json", *args, check=False)
    return json.loads(p.stdout) if p.stdout.strip() else {"ok": False, "error": p.stderr}


def explain(daemon, name):
    p = subprocess.run([conftest.bulwark_binary(), "explain", name, "-c", daemon.config_path,
                        "--no-resolve"], capture_output=True, encoding="utf-8", timeout=30)
    return p.stdout + p.stderr


def assert_local_block(r):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    text = dict(dnsutil.ede(r)).get(dnsutil.EDE_BLOCKED)
    assert text == "blocked by local (local)", describe(r)


def assert_feed_block(r):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert dnsutil.EDE_BLOCKED in dnsutil.ede_codes(r), describe(r)
    assert "local" not in dict(dnsutil.ede(r))[dnsutil.EDE_BLOCKED], describe(r)


def assert_resolves(r):
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), describe(r)


def audit_lines(daemon):
    try:
        with open(os.path.join(statedir(daemon), "audit.log")) as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []


def test_allow_takes_effect_in_the_next_answer_and_undo(bulwark):
    d = bulwark()
    # cached as blocked first: the allow must not leave that answer in the cache
    assert_feed_block(d.query(BLOCKED))
    assert_feed_block(d.query("www." + BLOCKED))
    r = ctl_json(d, "allow", "Blocked.Insecure.TLD")
    assert r["ok"], r
    res = r["result"]
    assert res["name"] == "blocked.insecure.tld" and res["action"] == "allow", res
    assert res["by"] == "bulwarkctl (uid %d)" % os.getuid(), res
    assert abs(res["at"] - time.time()) < 60 and res["policy_generation"] > 1, res
    assert_resolves(d.query(BLOCKED))
    assert_resolves(d.query("www." + BLOCKED))       # the subdomains too
    out = explain(d, "www." + BLOCKED)
    assert "local decision by bulwarkctl (uid %d) at " % os.getuid() in out, out
    assert "allowed by a local decision" in out, out

    listed = ctl_json(d, "decisions")["result"]
    assert [(x["name"], x["action"]) for x in listed["decisions"]] == \
        [("blocked.insecure.tld", "allow")], listed
    assert listed["max"] == 10000

    ctl(d, "unallow", "blocked.insecure.tld")
    assert_feed_block(d.query(BLOCKED))
    assert_feed_block(d.query("www." + BLOCKED))
    assert ctl_json(d, "decisions")["result"]["decisions"] == []
    again = ctl_json(d, "unallow", "blocked.insecure.tld")
    assert not again["ok"] and "no local allow" in again["error"], again


def test_block_an_unlisted_name_everywhere(bulwark):
    d = bulwark()
    assert_resolves(d.query(UNLISTED))            # cached as allowed first
    ctl(d, "block", UNLISTED)
    assert_local_block(d.query(UNLISTED))
    assert_local_block(d.query("deep.sub." + UNLISTED))
    assert_resolves(d.query("insecure.tld.", "SOA"))  # the parent is not covered
    out = explain(d, UNLISTED)
    assert "local decision by bulwarkctl" in out and "block www.insecure.tld" in out, out
    assert 'EDE 15 "blocked by local (local)"' in out, out
    ctl(d, "unblock", UNLISTED)
    assert_resolves(d.query(UNLISTED))


def test_most_specific_decision_wins(bulwark):
    d = bulwark()
    ctl(d, "block", "insecure.tld")
    ctl(d, "allow", "www.insecure.tld")
    assert_local_block(d.query("other.insecure.tld."))
    assert_resolves(d.query(UNLISTED))
    ctl(d, "allow", "insecure.tld")   # replaces the block on the same name
    assert [x["action"] for x in ctl_json(d, "decisions")["result"]["decisions"]] == \
        ["allow", "allow"]
    assert_resolves(d.query(PHISH))   # an allow wins over every feed


def test_invalid_names_and_arguments(bulwark):
    d = bulwark()
    for bad in ("", ".", "*.example.com", "exa!mple.com", "a..b", "x" * 64 + ".com",
                "ex/ample.com"):
        r = ctl_json(d, "allow", "name=" + bad)
        assert not r["ok"] and ("invalid name" in r["error"] or "name is needed" in r["error"]), \
            (bad, r)
    for args in (("pause", "default", "0"), ("pause", "default", "1441"),
                 ("pause", "default", "soon"), ("pause", "nosuchprofile", "5"),
                 ("resume", "default")):
        r = ctl_json(d, *args)
        assert not r["ok"], (args, r)
    assert_feed_block(d.query(BLOCKED))


def test_decisions_survive_restart_and_reload(bulwark):
    d = bulwark()
    ctl(d, "allow", "blocked.insecure.tld")
    ctl(d, "block", UNLISTED)
    path = os.path.join(statedir(d), "local-decisions")
    with open(path) as f:
        lines = [l.split() for l in f if not l.startswith("#")]
    assert [l[:2] for l in lines] == [["allow", "blocked.insecure.tld"],
                                      ["block", "www.insecure.tld"]], lines
    assert lines[0][3:] == ["bulwarkctl", "(uid", "%d)" % os.getuid()], lines

    d.stop()
    d.start()
    assert_resolves(d.query(BLOCKED))
    assert_local_block(d.query(UNLISTED))

    d.reload()
    time.sleep(1)
    d.assert_alive()
    assert_resolves(d.query(BLOCKED))
    assert_local_block(d.query(UNLISTED))
    # a hand edit takes effect at the next reload
    with open(path, "a") as f:
        f.write("block other.insecure.tld 2030-01-01T00:00:00Z an editor\nnonsense line\n")
    d.reload()
    # (other.insecure.tld does not exist: NXDOMAIN alone would not say the block is there)
    deadline = time.monotonic() + 10
    while dict(dnsutil.ede(d.query("other.insecure.tld."))).get(dnsutil.EDE_BLOCKED) is None:
        assert time.monotonic() < deadline, d.log_text()
        time.sleep(0.2)
    assert_local_block(d.query("other.insecure.tld."))
    deadline = time.monotonic() + 5
    while "unusable line" not in d.log_text(10**6):
        assert time.monotonic() < deadline, d.log_text()
        time.sleep(0.1)


def test_audit_log_has_every_change(bulwark):
    d = bulwark()
    ctl(d, "block", UNLISTED)
    ctl(d, "unblock", UNLISTED)
    ctl_json(d, "allow", "name=not!valid")
    ctl(d, "decisions")    # a read: not audited
    lines = audit_lines(d)
    got = [(l["action"], l["args"].get("name"), l["ok"]) for l in lines]
    assert got == [("block", UNLISTED, True), ("unblock", UNLISTED, True),
                   ("allow", "not!valid", False)], lines
    assert all(l["who"] == "bulwarkctl (uid %d)" % os.getuid() for l in lines), lines


def metric_paused(port, profile="default"):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    line = [l for l in text.splitlines()
            if l.startswith('bulwark_profile_paused{profile="%s"}' % profile)]
    assert len(line) == 1, text
    return int(line[0].split()[-1])


def test_pause_resume_by_hand(bulwark):
    mport = conftest.free_port()

    def config(port, workdir):
        conf = conftest.default_config(bulwark.internet, port, workdir)
        conf["metrics"] = {"port": mport}
        return conf
    d = bulwark(config)
    assert_feed_block(d.query(BLOCKED))   # cached blocked before the pause
    assert metric_paused(mport) == 0
    r = ctl_json(d, "pause", "default", "10")
    assert r["ok"], r
    until = r["result"]["until"]
    assert 590 <= until - time.time() <= 610, r
    assert_resolves(d.query(BLOCKED))
    assert_resolves(d.query(PHISH))
    assert metric_paused(mport) == 1
    assert "blocking PAUSED for profile default" in d.log_text()
    paused = ctl_json(d, "decisions")["result"]["paused"]
    assert [(p["profile"], p["until"]) for p in paused] == [("default", until)], paused
    out = explain(d, BLOCKED)
    assert "blocking is paused for profile default until" in out and "bulwarkctl (uid" in out, out
    assert "resolve normally (blocking is paused)" in out, out

    ctl(d, "resume", "default")
    assert_feed_block(d.query(BLOCKED))     # nothing cached while paused leaks
    assert_feed_block(d.query(PHISH))
    assert metric_paused(mport) == 0
    assert "blocking RESUMED for profile default by bulwarkctl" in d.log_text()
    assert ctl_json(d, "decisions")["result"]["paused"] == []


def test_pause_ends_by_itself(bulwark):
    def config(port, workdir):
        conf = conftest.default_config(bulwark.internet, port, workdir)
        conf["telemetry"] = {"query-log": os.path.join(workdir, "q.sqlite")}
        return conf
    d = bulwark(config)
    r = ctl_json(d, "pause", "profile=default", "seconds=3")
    assert r["ok"], r
    assert_resolves(d.query(BLOCKED))
    assert_resolves(d.query(BLOCKED))    # and again (not cached as blocked, not hidden)
    deadline = time.monotonic() + 10
    while d.query(BLOCKED).rcode() != dns.rcode.NXDOMAIN:
        assert time.monotonic() < deadline, d.log_text()
        time.sleep(0.1)
    assert_feed_block(d.query(BLOCKED))
    assert "the pause by bulwarkctl (uid %d) is over" % os.getuid() in d.log_text()
    assert ctl_json(d, "decisions")["result"]["paused"] == []
    # the query log (blocked-only, the default) kept what the pause let through
    d.stop()
    db = sqlite3.connect(os.path.join(d.dir, "q.sqlite"))
    verdicts = [v for (v,) in db.execute(
        "SELECT verdict FROM queries WHERE name = 'blocked.insecure.tld' ORDER BY id")]
    db.close()
    assert verdicts[:2] == ["paused", "paused"] and verdicts[-1] == "blocked", verdicts


def test_pause_survives_restart(bulwark):
    d = bulwark()
    ctl(d, "pause", "default", "5")
    d.stop()
    d.start()
    assert_resolves(d.query(BLOCKED))
    assert "paused before the restart" in d.log_text()
    ctl(d, "resume", "default")
    assert_feed_block(d.query(BLOCKED))
