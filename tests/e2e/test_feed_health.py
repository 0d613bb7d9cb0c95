"""Feed health that tells the truth (docs/feeds.md, "Feed health"): a local domains feed of
real data (the urlhaus-filter excerpt in tests/data) replaced by random bytes, truncated to
a small fraction, or emptied, as an editor or a sync tool writing in place would leave it.
Each gives a failed or held-back feed with its reason in the log, /metrics and `bulwarkctl
feeds`, while a name of the last good version keeps being blocked (real queries); then
`bulwarkctl feeds accept` applies a held-back version. `--check-config` exits 2 on a
random-bytes feed file and names the feed."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import conftest
import dnsutil
from conftest import ctl
from dnsutil import describe
from test_feeds_http import feeds_status, wait_until

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
EXCERPT = os.path.join(DATA, "urlhaus-filter_2025-07-19.domains.txt")


def listed_names():
    """The names the excerpt blocks (comments and IP literals left out), in file order."""
    out = []
    with open(EXCERPT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and not re.match(r"^[\d.]+$", line):
                out.append(line)
    return out


def metrics(mport):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=5) as r:
        return r.read().decode()


def feed_state(text, feed="urlhaus"):
    """(state, reason) of bulwark_feed_state for feed."""
    m = re.search(r'^bulwark_feed_state\{feed="%s",state="([^"]*)",reason="((?:[^"\\]|\\.)*)"\} 1$'
                  % feed, text, re.M)
    assert m, "no bulwark_feed_state for %s:\n%s" % (feed, text)
    return m.group(1), m.group(2)


def gauge(text, name, **labels):
    lab = ",".join('%s="%s"' % kv for kv in labels.items())
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(lab)), text, re.M)
    return float(m.group(1)) if m else None


def blocked(d, name):
    r = d.query(name, "A", timeout=2)
    return True if dnsutil.is_blocked(r) else describe(r)


def write_in_place(path, data):
    """As an editor or a sync tool does: the same file, truncated and rewritten."""
    with open(path, "wb") as f:
        f.write(data)


def test_broken_truncated_emptied_local_feed(bulwark, workdir, internet):
    feed = os.path.join(workdir, "urlhaus.txt")
    shutil.copyfile(EXCERPT, feed)
    names = listed_names()
    first, last = names[0], names[-1]
    mport = conftest.free_port()

    def make(port, d):
        conf = conftest.default_config(internet, port, d, feeds=[
            {"name": "urlhaus", "category": "malware", "format": "domains", "file": feed}],
            allowlist=[])
        conf["metrics"] = {"port": mport}
        conf["telemetry"] = {"events": {"file": os.path.join(d, "events.jsonl")}}
        return conf
    d = bulwark(make)
    statedir = os.path.join(d.dir, "state")

    def feed_events():
        with open(os.path.join(d.dir, "events.jsonl")) as f:
            return [e for e in map(json.loads, f) if e["event"] == "feed"]
    m = metrics(mport)
    total = gauge(m, "bulwark_feed_entries", feed="urlhaus", category="malware")
    assert total == len(set(names)), (total, len(names))  # one entry a name
    assert feed_state(m) == ("ok", "")
    assert gauge(m, "bulwark_feed_load_failed", feed="urlhaus") == 0
    st = feeds_status(statedir)["urlhaus"]
    assert st["state"] == "file" and st["entries"] == total, st
    for n in (first, last):
        assert blocked(d, n) is True, n

    # (a) random bytes: a failed load, the first bad line named, the last good kept
    write_in_place(feed, os.urandom(200000))
    wait_until(lambda: True if feed_state(metrics(mport))[0] == "failed"
               else feed_state(metrics(mport)), 10, "the feed failed")
    m = metrics(mport)
    state, reason = feed_state(m)
    assert "bad" in reason and "urlhaus.txt:" in reason, reason
    assert gauge(m, "bulwark_feed_load_failed", feed="urlhaus") == 1
    assert gauge(m, "bulwark_feed_entries", feed="urlhaus", category="malware") == total
    st = feeds_status(statedir)["urlhaus"]
    assert st["state"] == "failed" and st["entries"] == total, st
    assert re.search(r"urlhaus\.txt:\d+: ", st["last-error"]), st
    table = ctl(statedir, "feeds").stdout
    assert re.search(r"^urlhaus\s+file .*\sfailed\s+-$", table, re.M), table  # state, notes
    text = d.log_text(50000)
    assert re.search(r"bulwark error: ALERT feed urlhaus: unusable \S+urlhaus\.txt: .*"
                     r"first bad: \S+urlhaus\.txt:\d+: .*; keeping the previous version", text), \
        text[-3000:]
    for n in (first, last):
        assert blocked(d, n) is True, n
    # a security event, once: a rebuild for another reason does not say it again
    ev = feed_events()
    assert len(ev) == 1 and ev[0]["feed"] == "urlhaus" and ev[0]["state"] == "failed", ev
    assert ev[0]["category"] == "malware" and ev[0]["reason"] == reason, ev

    # back to the real list: applied, healthy again
    shutil.copyfile(EXCERPT, feed)
    wait_until(lambda: True if feed_state(metrics(mport))[0] == "ok"
               else feed_state(metrics(mport)), 10, "the feed healthy again")
    assert gauge(metrics(mport), "bulwark_feed_load_failed", feed="urlhaus") == 0
    # logrotate moves the events file away; SIGHUP reopens it (docs/config.md, events.file)
    events = os.path.join(d.dir, "events.jsonl")
    os.rename(events, events + ".1")
    d.reload()
    wait_until(lambda: True if os.path.exists(events) else "not reopened", 10,
               "the events file reopened")

    # (b) truncated to a small fraction, in place: held back, the last good kept
    size = os.path.getsize(feed)
    with open(feed, "r+b") as f:
        f.truncate(size // 20)
    wait_until(lambda: True if feed_state(metrics(mport))[0] == "held-back"
               else feed_state(metrics(mport)), 10, "the truncated feed held back")
    state, reason = feed_state(metrics(mport))
    assert re.search(r"held back: \d+ entries against %d" % total, reason), reason
    st = feeds_status(statedir)["urlhaus"]
    assert st["state"] == "held back" and st["entries"] == total, st
    held = int(st["held-back"].split()[0])
    assert 0 < held < total // 10, st
    assert "ALERT feed urlhaus" in d.log_text(50000)
    assert [e["state"] for e in feed_events()] == ["held back"], feed_events()  # the new file
    assert blocked(d, last) is True, last  # past the cut: only the last good version has it

    # (c) emptied: a shrink too, held back
    write_in_place(feed, b"")
    wait_until(lambda: True if feeds_status(statedir)["urlhaus"]["held-back"].startswith("0 ")
               else feeds_status(statedir)["urlhaus"], 10, "the emptied feed held back")
    assert feed_state(metrics(mport))[0] == "held-back"
    for n in (first, last):
        assert blocked(d, n) is True, n

    # the truncated version again, accepted by the operator: applied
    shutil.copyfile(EXCERPT, feed + ".full")
    with open(feed + ".full", "r+b") as f:
        f.truncate(size // 20)
    os.rename(feed + ".full", feed)
    wait_until(lambda: True if feeds_status(statedir)["urlhaus"]["held-back"].startswith(
        "%d " % held) else feeds_status(statedir)["urlhaus"], 10, "the truncated one held")
    p = ctl(statedir, "feeds", "accept", "urlhaus")
    assert "held-back version applied (%d entries)" % held in p.stdout, p.stdout
    st = feeds_status(statedir)["urlhaus"]
    assert st["state"] == "file" and st["entries"] == held and st["held-back"] == "-", st
    assert feed_state(metrics(mport)) == ("ok", "")
    assert blocked(d, first) is True, first
    r = d.query(last, "A", timeout=2)
    assert not dnsutil.is_blocked(r), describe(r)
    # nothing left to accept
    p = ctl(statedir, "feeds", "accept", "urlhaus", check=False)
    assert p.returncode == 1 and "no held-back version" in p.stderr, p


def test_file_written_slowly_is_not_applied_half_way(bulwark, workdir):
    """A writer that rewrites the list in place over a few seconds: the daemon never
    applies a part of it (nor holds one back as a shrink); the whole new version is."""
    feed = os.path.join(workdir, "slow.txt")
    conftest.write_domains(feed, ["old%d.insecure.tld" % i for i in range(40)])
    d = bulwark(feeds=[{"name": "slow", "category": "malware", "format": "domains",
                        "file": feed}], allowlist=[])
    statedir = os.path.join(d.dir, "state")
    assert blocked(d, "old39.insecure.tld") is True
    writer = subprocess.Popen([sys.executable, "-c", (
        "import time\n"
        "with open(%r, 'w') as f:\n"
        "    for i in range(60):\n"
        "        f.write('new%%d.insecure.tld\\n' %% i)\n"
        "        f.flush()\n"
        "        time.sleep(0.05)\n") % feed])
    seen = set()
    try:
        while writer.poll() is None:
            seen.add(feeds_status(statedir)["slow"]["state"])
            r = d.query("old0.insecure.tld", "A", timeout=2)
            assert dnsutil.is_blocked(r), describe(r)  # the old version, whole
            time.sleep(0.2)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0
    wait_until(lambda: blocked(d, "new59.insecure.tld"), 10, "the new version applied")
    st = feeds_status(statedir)["slow"]
    assert st["state"] == "file" and st["entries"] == 60, st
    assert "held back" not in seen and "failed" not in seen, seen
    assert "held back" not in d.log_text(50000)


def test_fetched_feed_failed_is_reported(bulwark, workdir, internet, tmp_path_factory):
    """A fetched version that fails the same rule is rejected and says so everywhere:
    bulwarkctl (state failed, the reason), /metrics; the last good copy keeps blocking."""
    from feedserver import FeedServer
    server = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    server.start()
    try:
        good = "".join("f%d.insecure.tld\n" % i for i in range(30))
        server.put("feeds/list.txt", good)
        mport = conftest.free_port()
        statedir = os.path.join(workdir, "state")

        def make(port, d):
            conf = conftest.default_config(internet, port, d, allowlist=[], feeds=[
                {"name": "fetched", "category": "malware", "format": "domains",
                 "url": server.url("feeds/list.txt"), "ca-file": server.ca,
                 "refresh": "1s", "timeout": "5s"}])
            conf["metrics"] = {"port": mport}
            conf["telemetry"] = {"events": {"file": os.path.join(d, "events.jsonl")}}
            return conf
        d = bulwark(make, workdir=workdir)
        wait_until(lambda: blocked(d, "f29.insecure.tld"), 10, "f29 blocked")
        assert feed_state(metrics(mport), "fetched") == ("ok", "")
        # most lines bad, a few good ones: too large a share of bad lines
        bad = good[:60] + "".join("bad line %d !\n" % i for i in range(40))
        server.put("feeds/list.txt", bad)
        wait_until(lambda: True if feeds_status(statedir)["fetched"]["state"] == "failed"
                   else feeds_status(statedir)["fetched"], 10, "the fetched feed failed")
        st = feeds_status(statedir)["fetched"]
        assert "over max-bad-ratio" in st["last-error"] and "first bad:" in st["last-error"], st
        assert st["entries"] == 30, st
        m = metrics(mport)
        state, reason = feed_state(m, "fetched")
        assert state == "failed" and "over max-bad-ratio" in reason, reason
        assert gauge(m, "bulwark_feed_load_failed", feed="fetched") == 1
        assert blocked(d, "f29.insecure.tld") is True
        # one security event, though the source serves the bad version at every refresh
        time.sleep(2.5)
        with open(os.path.join(workdir, "events.jsonl")) as f:
            ev = [e for e in map(json.loads, f) if e["event"] == "feed"]
        assert [(e["feed"], e["state"]) for e in ev] == [("fetched", "failed")], ev
        assert "over max-bad-ratio" in ev[0]["reason"], ev
        server.put("feeds/list.txt", good + "f30.insecure.tld\n")
        wait_until(lambda: blocked(d, "f30.insecure.tld"), 10, "f30 blocked")
        wait_until(lambda: True if feed_state(metrics(mport), "fetched")[0] == "ok"
                   else feed_state(metrics(mport), "fetched"), 10, "healthy again")
        assert feeds_status(statedir)["fetched"]["state"] == "ok"
    finally:
        server.stop()


def test_check_config_parses_reachable_feeds(workdir):
    good = os.path.join(workdir, "good.txt")
    shutil.copyfile(EXCERPT, good)
    junk = os.path.join(workdir, "junk.txt")
    with open(junk, "wb") as f:
        f.write(os.urandom(100000))
    conf = os.path.join(workdir, "bulwark.yaml")

    def check(feeds):
        with open(conf, "w") as f:
            f.write("server: { state-dir: %s }\npolicy:\n  feeds:\n" % os.path.join(workdir, "st"))
            for name, path in feeds:
                f.write("    - { name: %s, category: malware, format: domains, file: %s }\n"
                        % (name, path))
        return subprocess.run([conftest.bulwark_binary(), "--check-config", conf],
                              capture_output=True, text=True, timeout=30)

    p = check([("urlhaus", good)])
    assert p.returncode == 0, p.stderr
    assert "configuration is valid" in p.stdout
    assert re.search(r"feed urlhaus: \S+good\.txt: %d entries" % len(set(listed_names())),
                     p.stdout), p.stdout
    p = check([("urlhaus", good), ("scrambled", junk)])
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert re.search(r"^%s: feed scrambled: \S+junk\.txt would fail to load: .*bad.*"
                     r"junk\.txt:\d+: " % re.escape(conf), p.stderr, re.M), p.stderr
    assert "configuration is valid" not in p.stdout
    assert "urlhaus" not in p.stderr
