"""Prometheus metrics end to end: the daemon serves /metrics on loopback; `promtool check
metrics` (Debian's prometheus package) and a strict parser below accept the exposition;
the numbers follow the queries sent (summed over both workers), blocks are counted by feed
and category and keep their labels across a reload that reorders the feeds."""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import conftest
import dnsutil

PROMTOOL = shutil.which("promtool")

SAMPLE_RE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*",?)*)\})?'
    r' (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text):
    """A strict reader of the text format 0.0.4: every sample belongs to a family declared
    by HELP and TYPE before it, no family twice, values are numbers, counters are not
    negative, histogram buckets are cumulative and end with +Inf == _count. Returns
    {(name, frozenset(labels.items())): value} and {family: type}."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    types, helps, samples, seen_families = {}, {}, {}, []
    current = None
    for ln, line in enumerate(text.split("\n")[:-1], 1):
        assert line, "line %d: empty line" % ln
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, "line %d: second HELP for %s" % (ln, name)
            helps[name] = line
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in types, "line %d: second TYPE for %s" % (ln, name)
            assert name in helps, "line %d: TYPE before HELP for %s" % (ln, name)
            types[name] = typ
            current = name
            seen_families.append(name)
            continue
        assert not line.startswith("#"), "line %d: stray comment %r" % (ln, line)
        m = SAMPLE_RE.match(line)
        assert m, "line %d: not a sample: %r" % (ln, line)
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        fam = name
        if types.get(current) == "histogram":
            fam = re.sub(r"_(bucket|sum|count)$", "", name)
        assert fam == current, "line %d: %s outside its family (current %s)" % (ln, name,
                                                                                current)
        if types[current] == "counter":
            assert name.endswith("_total"), "counter %s must end in _total" % name
        labels = dict(LABEL_RE.findall(labels_text))
        v = float(value)  # +Inf, NaN and numbers
        if types[current] in ("counter", "histogram"):
            assert v >= 0, "line %d: negative %s" % (ln, name)
        key = (name, frozenset(labels.items()))
        assert key not in samples, "line %d: duplicate series %r" % (ln, line)
        samples[key] = v
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in samples.items()
                          if k[0] == fam + "_bucket"), key=lambda b: b[0])
        assert buckets and buckets[-1][0] == float("inf"), "%s: no +Inf bucket" % fam
        for (_, a), (_, b) in zip(buckets, buckets[1:]):
            assert a <= b, "%s: buckets not cumulative" % fam
        assert samples[(fam + "_count", frozenset())] == buckets[-1][1], fam
        assert (fam + "_sum", frozenset()) in samples, fam
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def scrape_text(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def scrape(port):
    text = scrape_text(port)
    if PROMTOOL:
        p = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, "promtool check metrics:\n%s%s\n%s" % (p.stdout, p.stderr,
                                                                        text)
    return parse_exposition(text)[0]


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def with_metrics(internet, feeds=None, **section):
    mport = free_tcp_port()

    def make(port, d):
        conf = conftest.default_config(internet, port, d,
                                       feeds=feeds(d) if feeds else None)
        conf["metrics"] = dict({"port": mport}, **section)
        return conf
    return make, mport


def test_promtool_is_installed():
    """The strict check is promtool; the parser above is the second opinion."""
    assert PROMTOOL, "promtool (Debian package prometheus) is missing: run make deps"


def test_counters_follow_queries(bulwark, internet):
    make, mport = with_metrics(internet)
    d = bulwark(make)
    before = scrape(mport)
    n = 24
    for i in range(n):  # fresh source ports: SO_REUSEPORT spreads them over both workers
        r = d.query("m%d.blocked.insecure.tld." % i, "A")
        assert r.rcode() == 3
    for i in range(3):
        d.query("phish.insecure.tld.", "A", tcp=True)
    r1 = d.query("www.insecure.tld.", "A")
    r2 = d.query("www.insecure.tld.", "A")
    assert r1.rcode() == 0 and r2.rcode() == 0
    after = scrape(mport)

    def delta(name, **labels):
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert value(after, "bulwark_workers") == 2
    assert delta("bulwark_queries_total", transport="udp") == n + 2
    assert delta("bulwark_queries_total", transport="tcp") == 3
    assert delta("bulwark_blocked_total", feed="urlhaus", category="malware") == n
    # the phishing name: one policy decision, then two answers from the packet cache
    assert delta("bulwark_blocked_total", feed="scam", category="phishing") == 1
    assert delta("bulwark_responses_total", rcode="NXDOMAIN") == n + 3
    assert delta("bulwark_responses_total", rcode="NOERROR") == 2
    assert delta("bulwark_profile_queries_total", profile="default") == n + 5
    assert delta("bulwark_cache_hits_total") >= 3
    assert delta("bulwark_cache_misses_total") >= n + 2
    assert value(after, "bulwark_cache_entries") >= n + 2
    assert value(after, "bulwark_cache_bytes") > 0
    assert value(after, "bulwark_cache_capacity_bytes") == 64 << 20
    # www.insecure.tld went to the resolver: the backend histogram saw it
    assert delta("bulwark_backend_latency_seconds_count") >= 1
    assert value(after, "bulwark_backend_latency_seconds_sum") > 0
    # feed status
    assert value(after, "bulwark_feed_entries", feed="urlhaus", category="malware") == 3
    assert value(after, "bulwark_feed_entries", feed="scam", category="phishing") == 2
    assert value(after, "bulwark_feed_load_failed", feed="urlhaus") == 0
    assert 0 <= value(after, "bulwark_feed_age_seconds", feed="urlhaus") < 600
    assert value(after, "bulwark_policy_generation") >= 1
    # the query log / events lost nothing at this rate (the daemon's telemetry counters)
    assert value(after, "bulwark_telemetry_dropped_total") == 0
    assert value(after, "bulwark_query_log_waiting") >= 0
    assert value(after, "bulwark_query_log_spool_bytes") >= 0
    # dnstap is off: not exported rather than a fake zero
    assert not any(k[0].startswith("bulwark_dnstap_") for k in after)


def test_block_labels_survive_reordering_reload(bulwark, internet):
    make, mport = with_metrics(internet)
    d = bulwark(make)
    assert d.query("r1.blocked.insecure.tld.").rcode() == 3
    first = scrape(mport)
    assert value(first, "bulwark_blocked_total", feed="urlhaus", category="malware") == 1
    # swap the two feeds: urlhaus is now feed 1, scam feed 0
    conf = conftest.default_config(internet, d.port, d.dir)
    conf["policy"]["feeds"].reverse()
    conf["metrics"] = {"port": mport}
    d.write_config(conf)
    gen = value(first, "bulwark_policy_generation")
    d.reload()
    deadline = time.monotonic() + 10
    while value(scrape(mport), "bulwark_policy_generation") == gen:
        assert time.monotonic() < deadline, "reload not applied:\n" + d.log_text()
        time.sleep(0.1)
    assert d.query("r2.blocked.insecure.tld.").rcode() == 3
    assert d.query("r3.phish.insecure.tld.").rcode() == 3
    s = scrape(mport)
    assert value(s, "bulwark_blocked_total", feed="urlhaus", category="malware") == 2
    assert value(s, "bulwark_blocked_total", feed="scam", category="phishing") == 1


def test_failed_feed_reported(bulwark, internet):
    """A feed file that disappears keeps its previous version, and the endpoint says so."""
    make, mport = with_metrics(internet)
    d = bulwark(make)
    os.unlink(os.path.join(d.dir, "scam.hosts"))
    d.reload()
    deadline = time.monotonic() + 10
    while True:
        s = scrape(mport)
        if value(s, "bulwark_feed_load_failed", feed="scam") == 1:
            break
        assert time.monotonic() < deadline, "no failure reported:\n" + d.log_text()
        time.sleep(0.2)
    errs = [k for k in s if k[0] == "bulwark_feed_last_error_info"]
    assert len(errs) == 1 and dict(errs[0][1])["feed"] == "scam"
    assert value(s, "bulwark_feed_load_failed", feed="urlhaus") == 0
    # the kept version still blocks
    assert d.query("phish.insecure.tld.").rcode() == 3


def test_only_metrics_path_and_get(bulwark, internet):
    make, mport = with_metrics(internet)
    bulwark(make)
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape_text(mport, "/")
    assert e.value.code == 404
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % mport, data=b"x",
                                 method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405


def test_curl_scrape_default_loopback(bulwark, internet):
    """address defaults to 127.0.0.1; curl (the real client an operator uses) gets it."""
    make, mport = with_metrics(internet)
    d = bulwark(make)
    assert "metrics on http://127.0.0.1:%d/metrics" % mport in d.log_text()
    out = subprocess.run(["curl", "-sf", "http://127.0.0.1:%d/metrics" % mport],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert "# TYPE bulwark_queries_total counter" in out.stdout


def test_metrics_off_by_default(bulwark, internet):
    mport = free_tcp_port()
    bulwark()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", mport), timeout=1).close()


def test_port_in_use_is_an_error(bulwark, internet):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    mport = busy.getsockname()[1]

    def make(port, d):
        conf = conftest.default_config(internet, port, d)
        conf["metrics"] = {"port": mport}
        return conf
    try:
        with pytest.raises(BaseException):
            bulwark(make, name="busy")
    finally:
        busy.close()
    d = bulwark.daemons.pop()
    d.proc.wait(10)
    assert d.proc.returncode != 0
    assert "metrics: cannot listen" in d.log_text()


@pytest.mark.parametrize("section,message", [
    ({"port": 0}, "port"),
    ({"address": "localhost"}, "not an IPv4 or IPv6 address"),
    ({"listen": "x"}, "listen"),
])
def test_config_errors(tmp_path, section, message):
    import yaml
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"metrics": section}))
    r = subprocess.run([conftest.bulwark_binary(), "--check-config", str(p)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert re.search(r"c\.yaml:\d+:\d+: .*" + re.escape(message), r.stderr + r.stdout), \
        r.stderr + r.stdout


def test_scrapes_during_load_sum_every_worker(bulwark, internet, workdir):
    """Scrapes while dnsperf keeps both workers busy: every series only grows, and at the
    end the UDP query counter moved by exactly what dnsperf sent (the workers' copies are
    all summed, none counted twice)."""
    make, mport = with_metrics(internet)
    d = bulwark(make)
    qfile = os.path.join(workdir, "queries.txt")
    with open(qfile, "w") as f:
        f.write("www.insecure.tld A\nblocked.insecure.tld A\nphish.insecure.tld A\n"
                "www.secure.tld A\nnonexist.secure.tld A\n")
    before = scrape(mport)
    perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(d.port), "-d", qfile,
                             "-l", "3", "-Q", "1500", "-c", "8", "-t", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = before
    try:
        while perf.poll() is None:
            now = scrape(mport)
            for key, v in last.items():
                if key[0].endswith("_total") or key[0].endswith("_bucket") or \
                        key[0].endswith("_count"):
                    assert now.get(key, 0) >= v, "%s went down: %s -> %s" % (key, v,
                                                                             now.get(key))
            last = now
            time.sleep(0.1)
        out, _ = perf.communicate(timeout=20)
    finally:
        if perf.poll() is None:
            perf.kill()
            perf.wait()
    assert perf.returncode == 0, out
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    assert sent > 1000, out
    after = scrape(mport)
    got = value(after, "bulwark_queries_total", transport="udp") - \
        value(before, "bulwark_queries_total", transport="udp")
    assert got == sent, "queries_total moved by %d, dnsperf sent %d\n%s" % (got, sent, out)
    answered = sum(v for k, v in after.items() if k[0] == "bulwark_responses_total") - \
        sum(v for k, v in before.items() if k[0] == "bulwark_responses_total")
    completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    assert answered >= completed, (answered, completed)
