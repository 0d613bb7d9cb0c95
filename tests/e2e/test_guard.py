"""The guard: look-alikes of protected domains are blocked (NXDOMAIN + EDE 15 "imitates X
(kind)") or answered with a security event (alert) by the daemon; exact protected names,
their subdomains, allowlisted names and feed verdicts come first; dnstwist (Debian's) is
the oracle for typosquats and homoglyphs; the top-sites lists give the false positives;
newly-seen domains get a short TTL or are blocked, and the memory survives a restart."""

import json
import os
import random
import re
import subprocess
import sys
import time

import dns.rcode
import pytest

import conftest
import dnsutil
from dnsutil import describe

sys.path.insert(0, os.path.dirname(conftest.DATA_DIR))  # tests/: the guard_fp script
import guard_fp  # noqa: E402

GUARD_DATA = os.path.join(conftest.DATA_DIR, "guard")
TOPLISTS = os.path.join(conftest.SHARED_DATA_DIR, "toplists")
PSL_FILE = "/usr/share/publicsuffix/public_suffix_list.dat"

PROTECTED = [
    {"domain": "insecure.example", "action": "block"},
    {"domain": "secure.example", "action": "alert"},
    "amnesty.org",
    "microsoft.com",
    {"domain": "apple.com", "action": "block"},
    "ngo.org",
]


def guarded_config(internet, port, workdir, **guard):
    conf = conftest.default_config(internet, port, workdir)
    conf["guard"] = {"protected": PROTECTED}
    conf["guard"].update(guard)
    return conf


@pytest.fixture(scope="module")
def guarded(bulwark_module, internet):
    return bulwark_module(lambda port, d: guarded_config(internet, port, d))


def ede_text(r):
    return dict(dnsutil.ede(r)).get(dnsutil.EDE_BLOCKED)


def assert_imitates(r, protected, kind):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    text = ede_text(r)
    assert text == "imitates %s (%s)" % (protected, kind), describe(r)
    assert not r.answer, describe(r)


def guard_lines(daemon, name):
    return [line for line in daemon.log_text(tail=10 ** 7).splitlines()
            if re.search(r"guard: %s imitates " % re.escape(name), line)]


# -- the daemon ---------------------------------------------------------------------------
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("name,protected,kind", [
    ("www.insecure.tld.", "insecure.example", "tld-swap"),        # exists upstream
    ("insecure-login.tld.", "insecure.example", "combosquat"),
    ("rnicrosoft.com.", "microsoft.com", "homoglyph"),
    ("xn--pple-43d.com.", "apple.com", "idn-homoglyph"),           # Cyrillic a
    ("xn--micrsoft-2dg.com.", "microsoft.com", "idn-homoglyph"),   # Greek omicron
    ("amnesty.org.evil.example.", "amnesty.org", "subdomain"),
    ("ngo-org.com.", "ngo.org", "added-label"),
    ("login-ngo.net.", "ngo.org", "combosquat"),
    ("AmNsty.ORG.", "amnesty.org", "omission"),
])
def test_lookalike_blocked(guarded, name, protected, kind, tcp):
    r = guarded.query(name, "A", tcp=tcp)
    assert_imitates(r, protected, kind)
    assert r.question[0].name.to_text() == name  # the client's case
    assert guard_lines(guarded, name.rstrip(".").lower())


def test_block_is_cached_but_still_blocked(guarded):
    for _ in range(3):
        assert_imitates(guarded.query("amnesty-secure-login.org.", "AAAA"), "amnesty.org",
                        "combosquat")


def test_alert_answers_and_reports_every_query(guarded):
    before = len(guard_lines(guarded, "www.secure.tld"))
    for i in range(3):
        r = guarded.query("www.secure.tld.", "A")
        assert r.rcode() == dns.rcode.NOERROR, describe(r)
        assert "192.0.2.10" in dnsutil.addresses(r), describe(r)
        assert ede_text(r) is None, describe(r)
    # an alert answer is not cached: each query raises its event again
    deadline = time.monotonic() + 3
    while len(guard_lines(guarded, "www.secure.tld")) < before + 3:
        assert time.monotonic() < deadline, guarded.log_text()
        time.sleep(0.05)
    line = guard_lines(guarded, "www.secure.tld")[-1]
    assert line.endswith("guard: www.secure.tld imitates secure.example (tld-swap)")


def test_detections_are_security_events(bulwark, internet):
    """A block and an alert reach the events file (and the query log) as the feed
    `guard`, under the privacy mode (anonymized: the client cut to its /24)."""
    def config(port, d):
        conf = guarded_config(internet, port, d)
        conf["telemetry"] = {"privacy": "anonymized", "events": {"file": d + "/ev.jsonl"},
                             "query-log": d + "/q.sqlite"}
        return conf
    daemon = bulwark(config)
    assert_imitates(daemon.query("login-ngo.net.", "A"), "ngo.org", "combosquat")
    assert daemon.query("www.secure.tld.", "A").rcode() == dns.rcode.NOERROR
    path = os.path.join(daemon.dir, "ev.jsonl")
    deadline = time.monotonic() + 5
    events = []
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
        events = [json.loads(x) for x in open(path)] if os.path.exists(path) else []
    by_name = {e["name"]: e for e in events}
    blocked, alert = by_name["login-ngo.net"], by_name["www.secure.tld"]
    assert blocked["event"] == "blocked" and blocked["feed"] == "guard", blocked
    assert blocked["category"] == "look-alike", blocked
    assert blocked["rule"] == "imitates ngo.org (combosquat)", blocked
    assert alert["event"] == "log-only" and alert["rule"] == \
        "imitates secure.example (tld-swap)", alert
    assert blocked["client"] == alert["client"] == "127.0.0.0/24", events


@pytest.mark.parametrize("name", ["amnesty.org.", "www.amnesty.org.", "login.microsoft.com.",
                                  "a.b.apple.com.", "ngo.org.", "insecure.example."])
def test_protected_names_and_subdomains_never_flagged(guarded, name):
    r = guarded.query(name, "A")
    assert ede_text(r) is None, describe(r)
    assert not guard_lines(guarded, name.rstrip("."))


def test_feeds_and_allowlist_come_first(guarded):
    # a feed's verdict wins over the guard's (the name is both listed and a look-alike)
    r = guarded.query("blocked.insecure.tld.", "A")
    assert "blocked by urlhaus (malware)" == ede_text(r), describe(r)
    # an allowlisted name is never flagged, though its registrable domain imitates one
    r = guarded.query("ok.blocked.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and "192.0.2.73" in dnsutil.addresses(r), describe(r)
    assert not guard_lines(guarded, "ok.blocked.insecure.tld")


def test_daemon_blocks_dnstwist_sample(guarded):
    """A random sample of what dnstwist generates for amnesty.org, through the daemon."""
    perms = [p for p in dnstwist_permutations("amnesty.org")
             if p[0] not in ("tld-swap", "various", "dictionary") or p[1].startswith("amnesty")]
    rnd = random.Random(7)
    for fuzzer, name in rnd.sample(perms, 120):
        r = guarded.query(name + ".", "A", timeout=5)
        assert r.rcode() == dns.rcode.NXDOMAIN, "%s (%s): %s" % (name, fuzzer, describe(r))
        text = ede_text(r) or ""
        assert text.startswith("imitates amnesty.org ("), "%s (%s): %s" % (name, fuzzer,
                                                                          describe(r))


def explain(config_path, name):
    out = subprocess.run([conftest.bulwark_binary(), "explain", name, "-c", config_path],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_explain_reports_lookalikes(guarded):
    text = explain(guarded.config_path, "amnesty-secure-login.org")
    assert "guard:    imitates amnesty.org (combosquat): block\n" in text, text
    assert 'verdict:  NXDOMAIN by the guard, EDE 15 "imitates amnesty.org (combosquat)"' in text
    text = explain(guarded.config_path, "www.secure.tld")
    assert "guard:    imitates secure.example (tld-swap): alert" in text, text
    assert "verdict:  resolve normally" in text, text
    text = explain(guarded.config_path, "www.amnesty.org")
    assert "guard:    imitates none of the 6 protected domains" in text, text
    # a feed's verdict comes first: the guard is not asked
    text = explain(guarded.config_path, "blocked.insecure.tld")
    assert "guard:" not in text and "by feed urlhaus" in text, text


def test_config_errors(bulwark, workdir):
    conf = guarded_config(bulwark.internet, conftest.free_port(), workdir)
    conf["guard"]["protected"] = ["amnesty.org", "co.uk"]
    daemon = conftest.Daemon(workdir, conf, 0)
    out = subprocess.run([conftest.bulwark_binary(), "-f", "-c", daemon.config_path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2, out.stdout + out.stderr
    want = re.escape(daemon.config_path) + r":\d+:\d+: guard.protected: 'co.uk' is a public " \
        r"suffix: it has no registrable domain to protect"
    assert re.search(want, out.stderr + out.stdout), out.stderr + out.stdout


# -- dnstwist: the oracle -----------------------------------------------------------------
def dnstwist_permutations(domain):
    try:
        return guard_fp.dnstwist_permutations(domain)
    except ImportError:
        pytest.fail("dnstwist is not installed (tools/deps.sh installs it)")


def guard_check(config_path, names):
    try:
        return guard_fp.guard_check(conftest.bulwark_binary(), config_path, names, timeout=120)
    except RuntimeError as e:
        pytest.fail(str(e))


def public_suffixes():
    with open(PSL_FILE, encoding="utf-8") as f:
        return {line.strip() for line in f if line.strip() and not line.startswith("//")}


# dnstwist fuzzer -> the kinds Bulwark reports for it. A name that several fuzzers make is
# reported as the first kind in guard.h's order (e.g. a bit flip that is also a keyboard
# neighbour is a "replacement").
FUZZER_KINDS = {
    "addition": {"addition", "repetition", "bitsquatting", "insertion", "combosquat"},
    "bitsquatting": {"bitsquatting", "replacement", "vowel-swap", "homoglyph"},
    "cyrillic": {"idn-homoglyph"},
    "dictionary": {"combosquat", "added-label"},
    "homoglyph": {"homoglyph", "idn-homoglyph", "replacement", "omission", "repetition",
                  "insertion", "vowel-swap", "bitsquatting", "transposition"},
    "hyphenation": {"hyphenation"},
    "insertion": {"insertion", "repetition"},
    "omission": {"omission"},
    "repetition": {"repetition"},
    "replacement": {"replacement", "bitsquatting"},
    "subdomain": {"dot-insertion", "omission", "repetition", "transposition", "replacement",
                  "insertion", "vowel-swap", "bitsquatting", "homoglyph", "addition"},
    "tld-swap": {"tld-swap"},
    "transposition": {"transposition"},
    "various": {"added-label", "tld-swap"},
    "vowel-swap": {"vowel-swap", "replacement", "bitsquatting"},
}
# Fuzzers not checked for labels shorter than guard.min-length (5): every neighbour of a
# three-letter label is some real site (ngi.org, nog.org...). IDN homoglyphs still are.
SHORT_LABEL_SKIPPED = {"addition", "bitsquatting", "dictionary", "hyphenation", "insertion",
                       "omission", "repetition", "replacement", "transposition",
                       "vowel-swap", "subdomain"}
ORACLE_DOMAINS = ["amnesty.org", "microsoft.com", "apple.com", "paypal.com",
                  "protonmail.com", "ngo.org", "example.co.uk"]


def test_dnstwist_oracle(tmp_path):
    cfg = tmp_path / "oracle.yaml"
    # the detector alone: no popular list (tests/guard_fp.py measures it with the list)
    cfg.write_text("guard:\n  popular: none\n  protected: [%s]\n" % ", ".join(ORACLE_DOMAINS))
    suffixes = public_suffixes()
    perms = []
    for d in ORACLE_DOMAINS:
        perms += [(fz, name, d) for fz, name in dnstwist_permutations(d)]
    flagged = guard_check(str(cfg), [p[1] for p in perms])
    missed, wrong, collisions, counted, skipped = [], [], [], {}, {}
    for fz, name, d in perms:
        label = d.split(".")[0]
        ascii_only = "xn--" not in name
        if len(label) < 5 and (fz in SHORT_LABEL_SKIPPED or (fz == "homoglyph" and ascii_only)):
            skipped[fz] = skipped.get(fz, 0) + 1
            continue
        if fz == "tld-swap" and name in suffixes:
            skipped["tld-swap (a public suffix: cannot be registered)"] = 1 + skipped.get(
                "tld-swap (a public suffix: cannot be registered)", 0)
            continue
        counted[fz] = counted.get(fz, 0) + 1
        if name not in flagged:
            missed.append((fz, name, d))
            continue
        kind, prot = flagged[name]
        if prot != d and prot in ORACLE_DOMAINS:
            collisions.append((fz, name, d, kind, prot))  # imitates two protected domains
        elif kind not in FUZZER_KINDS.get(fz, set()) or prot != d:
            wrong.append((fz, name, d, kind, prot))
    print("\ndnstwist permutations checked per fuzzer: %s" % sorted(counted.items()))
    print("not checked (short label or unregistrable): %s" % sorted(skipped.items()))
    print("flagged as imitating another protected domain: %s" % collisions)
    print("total: %d checked, %d flagged, %d not checked" % (
        sum(counted.values()), sum(counted.values()) - len(missed), sum(skipped.values())))
    assert not missed, "%d dnstwist look-alikes not flagged, e.g. %s" % (len(missed), missed[:20])
    assert not wrong, "%d flagged with an unexpected kind or domain, e.g. %s" % (len(wrong),
                                                                                wrong[:20])
    assert sum(counted.values()) > 10000


# -- top sites: false positives -------------------------------------------------------------
def read_expected():
    """tests/data/guard/topsites-flagged.tsv: name, kind, protected, verdict, reason."""
    expected = {}
    with open(os.path.join(GUARD_DATA, "topsites-flagged.tsv")) as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            name, kind, prot, verdict, reason = line.rstrip("\n").split("\t")
            assert verdict in ("lookalike", "owned", "false-positive"), line
            expected[name] = (kind, prot, verdict, reason)
    return expected


def check_toplist(names, label):
    expected = read_expected()
    flagged = guard_check(os.path.join(GUARD_DATA, "protected.yaml"), names)
    unexpected = {n: v for n, v in flagged.items() if n not in expected}
    assert not unexpected, "%s: new false positives (add a reason to topsites-flagged.tsv " \
        "or fix the guard): %s" % (label, unexpected)
    listed = set(names)
    for name, (kind, prot, verdict, reason) in expected.items():
        if name in listed:
            assert flagged.get(name) == (kind, prot), "%s: %s no longer flagged as %s of %s" % (
                label, name, kind, prot)
    fps = sorted(n for n in flagged if expected[n][2] == "false-positive")
    print("\n%s: %d names, %d flagged, %d false positives: %s" % (
        label, len(names), len(flagged), len(fps), fps))
    return flagged


def test_topsites_excerpt_false_positives():
    """Runs without ../shared: the Tranco excerpt in tests/data."""
    with open(os.path.join(conftest.DATA_DIR, "tranco-top10k_20250115.head2000.txt")) as f:
        names = [n.strip() for n in f if n.strip() and not n.startswith("#")]
    assert len(names) == 2000
    check_toplist(names, "tranco head 2000")


@pytest.mark.parametrize("fname", ["cloudflare-top100k_20260810.txt.gz",
                                   "tranco-top10k_20250115.txt",
                                   "majestic-top10k_20231002.txt"])
def test_topsites_shared_false_positives(fname):
    path = os.path.join(TOPLISTS, fname)
    if not os.path.exists(path):
        print("\nSKIP: %s is not there (../shared/data absent)" % path)
        return
    if fname.endswith(".gz"):
        import gzip
        with gzip.open(path, "rt") as f:
            names = [n.strip() for n in f if n.strip()]
    else:
        with open(path) as f:
            names = [n.strip() for n in f if n.strip()]
    assert len(names) > 9000
    check_toplist(names, fname)


# -- false positives: popular names, hosting suffixes, the brand's own ----------------------
def apple_config(internet, port, d, **item):
    conf = conftest.default_config(internet, port, d)
    conf["guard"] = {"protected": [dict({"domain": "apple.com"}, **item)]}
    return conf


def test_popular_hosted_and_owned_names_resolve(bulwark, internet, tmp_path):
    """A phone maker protected without owns: its national-suffix site on the popular list
    and its name under a hosting suffix resolve, a look-alike is still blocked, an
    owns-file (re-read on reload) lets its other national domain through, and explain
    says why and suggests owns."""
    # before the popular list (popular: none) the national site was a tld-swap
    old = bulwark(lambda port, d: dict(apple_config(internet, port, d),
                                       guard={"popular": "none",
                                              "protected": ["apple.com"]}))
    assert_imitates(old.query("www.apple.com.cn.", "A"), "apple.com", "tld-swap")
    old.stop()

    daemon = bulwark(lambda port, d: apple_config(internet, port, d))  # shipped popular list
    r = daemon.query("www.apple.com.cn.", "A")
    assert r.rcode() == dns.rcode.NOERROR and "192.0.2.90" in dnsutil.addresses(r), describe(r)
    r = daemon.query("apple.github.io.", "A")  # PSL private section: not a TLD swap
    assert r.rcode() == dns.rcode.NOERROR and "192.0.2.92" in dnsutil.addresses(r), describe(r)
    assert_imitates(daemon.query("www.apple-secure.cn.", "A"), "apple.com", "combosquat")
    assert_imitates(daemon.query("www.apple.cn.", "A"), "apple.com", "tld-swap")
    assert not guard_lines(daemon, "www.apple.com.cn") and not guard_lines(daemon,
                                                                            "apple.github.io")

    text = explain(daemon.config_path, "www.apple.com.cn")
    assert "would imitate apple.com (tld-swap), but apple.com.cn is on the popular list" in text
    assert "if apple.com.cn belongs to apple.com's owner, add it to owns:" in text, text
    assert "verdict:  resolve normally" in text, text
    text = explain(daemon.config_path, "www.apple.cn")
    assert "guard:    imitates apple.com (tld-swap): block" in text, text
    assert "apple.cn may be apple.com's own: the same name under the national suffix .cn" \
        in text, text
    assert "if apple.cn belongs to apple.com's owner, add it to owns: (or owns-file:) of " \
        "apple.com" in text, text
    text = explain(daemon.config_path, "apple.github.io")
    assert "a hosting suffix (Public Suffix List, private section): not a TLD swap" in text, text
    text = explain(daemon.config_path, "www.apple-secure.cn")  # no suggestion for this one
    assert "imitates apple.com (combosquat): block" in text and "owns" not in text, text

    # the operator follows the suggestion: an owns-file, applied by a reload
    owns = tmp_path / "apple-owns.txt"
    owns.write_text("# Apple's other domains\napple.cn\ncdn-apple.com\n")
    daemon.write_config(apple_config(internet, daemon.port, daemon.dir, **{"owns-file": str(owns)}))
    daemon.reload()
    deadline = time.monotonic() + 10
    while True:
        r = daemon.query("www.apple.cn.", "A")
        if r.rcode() == dns.rcode.NOERROR:
            break
        assert time.monotonic() < deadline, "reload not applied: " + describe(r)
        time.sleep(0.1)
    assert "192.0.2.91" in dnsutil.addresses(r), describe(r)
    assert_imitates(daemon.query("www.apple-secure.cn.", "A"), "apple.com", "combosquat")
    text = explain(daemon.config_path, "www.apple.cn")
    assert "imitates none of the 1 protected domains" in text, text


def test_popular_and_owns_file_config_errors(bulwark, workdir):
    conf = apple_config(bulwark.internet, conftest.free_port(), workdir)
    conf["guard"]["popular"] = os.path.join(workdir, "missing-popular.txt")
    daemon = conftest.Daemon(workdir, conf, 0)
    out = subprocess.run([conftest.bulwark_binary(), "--check-config", daemon.config_path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "guard: cannot read '%s'" % conf["guard"]["popular"] in \
        out.stderr + out.stdout, out.stderr + out.stdout
    owns = os.path.join(workdir, "owns.txt")
    with open(owns, "w") as f:
        f.write("apple.cn\nbad..name\n")
    conf = apple_config(bulwark.internet, conftest.free_port(), workdir, **{"owns-file": owns})
    daemon = conftest.Daemon(workdir, conf, 0)
    out = subprocess.run([conftest.bulwark_binary(), "--check-config", daemon.config_path],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "owns-file %s:2: 'bad..name'" % owns in \
        out.stderr + out.stdout, out.stderr + out.stdout


def test_ten_brands_false_positives_and_detection():
    """tests/guard_fp.py: ten large brands protected, 0 false positives on the top-20k list
    (the excerpt of its hard cases without ../shared), >= 99% of dnstwist's permutations
    flagged."""
    if not os.path.isdir(guard_fp.TOPLISTS):
        print("\nSKIP: %s is not there: the excerpt tests/data/guard/brands-excerpt.txt "
              "only" % guard_fp.TOPLISTS)
    print()
    fp, rate = guard_fp.measure(conftest.bulwark_binary(), guard_fp.BRANDS_YAML)
    assert fp == 0, "false positives on the first list (see the lines above)"
    assert rate >= 99.0, rate


# -- newly seen -----------------------------------------------------------------------------
def nseen_config(internet, port, d, state, **nseen):
    conf = conftest.default_config(internet, port, d, server={"state-dir": state})
    conf["guard"] = {"newly-seen": dict({"warm-up": "0s", "window": "2s",
                                         "action": "short-ttl", "short-ttl": 7}, **nseen)}
    return conf


def ttl_of(r):
    assert r.rcode() == dns.rcode.NOERROR and r.answer, describe(r)
    return r.answer[0].ttl


def test_newly_seen_short_ttl_and_restart(bulwark, internet, workdir):
    state = os.path.join(workdir, "state")
    first = bulwark(lambda port, d: nseen_config(internet, port, d, state), workdir=workdir,
                    name="first")
    t0 = time.monotonic()
    assert ttl_of(first.query("www.secure.tld.", "A")) == 7
    assert ttl_of(first.query("www.secure.tld.", "A")) == 7  # not cached, still new
    assert "www.secure.tld newly-seen (secure.tld first seen" in first.log_text()
    first.stop()
    assert os.path.getsize(os.path.join(state, "newly-seen.bin")) > 1000
    time.sleep(max(0, 2.5 - (time.monotonic() - t0)))
    second = bulwark(lambda port, d: nseen_config(internet, port, d, state), workdir=workdir,
                     name="second")
    assert "newly-seen memory loaded from" in second.log_text()
    # remembered across the restart, and older than the window now
    assert ttl_of(second.query("www.secure.tld.", "A")) > 7
    # a domain it never saw is new
    assert ttl_of(second.query("www.insecure.tld.", "A")) == 7
    text = explain(second.config_path, "www.secure.tld")
    assert "newly-seen: secure.tld first seen about" in text and ": known" in text, text
    text = explain(second.config_path, "never.stale.tld")
    assert "newly-seen: stale.tld was never resolved here" in text, text
    # a fresh state directory: everything is new again
    third = bulwark(lambda port, d: nseen_config(internet, port, d, os.path.join(d, "s3")),
                    name="third")
    assert ttl_of(third.query("www.secure.tld.", "A")) == 7


def test_newly_seen_block_per_profile_and_warm_up(bulwark, internet):
    blocker = bulwark(lambda port, d: nseen_config(
        internet, port, d, os.path.join(d, "state"), window="1h", action="log",
        profiles={"default": "block"}))
    r = blocker.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert ede_text(r) == "newly seen domain secure.tld", describe(r)
    # during the warm-up the memory learns and flags nothing
    learner = bulwark(lambda port, d: nseen_config(
        internet, port, d, os.path.join(d, "state"), **{"warm-up": "1h", "action": "block"}))
    r = learner.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and ttl_of(r) > 7, describe(r)


def test_reload_applies_protected_list(bulwark, internet):
    def conf(port, d, protected):
        c = conftest.default_config(internet, port, d)
        c["guard"] = {"protected": protected}
        return c
    daemon = bulwark(lambda port, d: conf(port, d, ["insecure.example"]))
    assert_imitates(daemon.query("www.insecure.tld.", "A"), "insecure.example", "tld-swap")
    r = daemon.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    daemon.write_config(conf(daemon.port, daemon.dir, ["secure.example"]))
    daemon.reload()
    deadline = time.monotonic() + 10
    while True:
        r = daemon.query("www.secure.tld.", "A")
        if r.rcode() == dns.rcode.NXDOMAIN:
            break
        assert time.monotonic() < deadline, "reload not applied: " + describe(r)
        time.sleep(0.1)
    assert_imitates(r, "secure.example", "tld-swap")
    # the old protected domain's verdict was cached under the old generation: gone
    r = daemon.query("www.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and "192.0.2.50" in dnsutil.addresses(r), describe(r)
