"""Feed formats end to end: one feed per format (domains, hosts, wildcard, adblock, rpz,
stix, misp) blocks what it lists and not what it must not (an AdBlock exception, a
`$third-party` rule, an expired STIX indicator, a MISP attribute without to_ids); the
per-feed `action:` overrides log-only, nodata and redirect; a CNAME chain into a name an
RPZ feed lists; and `bulwark explain` (file:line of each matching rule, the winner marked)."""

import json
import os
import subprocess

import dns.rcode
import dns.rdatatype
import pytest

import conftest
import dnsutil
from dnsutil import describe

# names -> address in zones/insecure.tld.zone
ADDR = {
    "fmt-dom": "192.0.2.140", "fmt-hosts": "192.0.2.141", "fmt-wild": "192.0.2.142",
    "fmt-ab": "192.0.2.143", "ok.fmt-ab": "192.0.2.144", "x.fmt-ab": "192.0.2.145",
    "fmt-3p": "192.0.2.146", "fmt-rpz": "192.0.2.147", "fmt-stix": "192.0.2.148",
    "fmt-stix-a": "192.0.2.149", "fmt-stix-b": "192.0.2.150", "fmt-stix-old": "192.0.2.151",
    "fmt-misp": "192.0.2.152", "fmt-misp-noids": "192.0.2.153", "fmt-log": "192.0.2.154",
    "fmt-nodata": "192.0.2.155", "fmt-redir": "192.0.2.156",
}


def fq(label):
    return label + ".insecure.tld."


def ede_text(r):
    for c, text in dnsutil.ede(r):
        if c == dnsutil.EDE_BLOCKED:
            return text
    return None


def assert_blocked(r, feed, category, rcode=dns.rcode.NXDOMAIN, via=None):
    assert r.rcode() == rcode, describe(r)
    want = "blocked by %s (%s)" % (feed, category) + (" via " + via if via else "")
    assert ede_text(r) == want, "want EDE 15 %r: %s" % (want, describe(r))
    assert not r.answer, describe(r)


def assert_resolves(r, label):
    assert r.rcode() == dns.rcode.NOERROR, "%s: %s" % (label, describe(r))
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), "%s: %s" % (label, describe(r))
    assert dnsutil.addresses(r) == [ADDR[label]], "%s: %s" % (label, describe(r))


def write(d, fname, text):
    path = os.path.join(d, fname)
    with open(path, "w") as f:
        f.write(text)
    return path


DOMAINS = "# domains feed\nfmt-dom.insecure.tld\n"
HOSTS = "# hosts feed\n0.0.0.0 fmt-hosts.insecure.tld\n0.0.0.0 fmt-dom.insecure.tld\n"
WILDCARD = "# wildcard feed\n*.fmt-wild.insecure.tld\n"
ADBLOCK = """\
[Adblock Plus 2.0]
! Title: e2e adblock feed
||fmt-ab.insecure.tld^
@@||ok.fmt-ab.insecure.tld^
||fmt-3p.insecure.tld^$third-party
"""
RPZ = """\
$ORIGIN fmt.rpz.test.
$TTL 120
@                     SOA ns hostmaster 1 3600 600 86400 60
@                     NS  ns.example.
fmt-rpz.insecure.tld  CNAME .
"""


def stix_indicator(n, pattern, valid_from="2020-01-01T00:00:00.000Z", **extra):
    ind = {"type": "indicator", "spec_version": "2.1",
           "id": "indicator--00000000-0000-4000-8000-%012d" % n,
           "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
           "name": "e2e indicator %d" % n, "indicator_types": ["malicious-activity"],
           "pattern": pattern, "pattern_type": "stix", "valid_from": valid_from}
    ind.update(extra)
    return ind


STIX = {
    "type": "bundle", "id": "bundle--00000000-0000-4000-8000-000000000000",
    "objects": [
        stix_indicator(1, "[domain-name:value = 'fmt-stix.insecure.tld']"),
        stix_indicator(2, "[domain-name:value = 'fmt-stix-a.insecure.tld' OR "
                          "domain-name:value = 'fmt-stix-b.insecure.tld']"),
        # expired: must not block
        stix_indicator(3, "[domain-name:value = 'fmt-stix-old.insecure.tld']",
                       valid_until="2021-01-01T00:00:00.000Z"),
        {"type": "malware", "spec_version": "2.1",
         "id": "malware--00000000-0000-4000-8000-000000000004",
         "created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z",
         "name": "not an indicator", "is_family": False},
    ],
}

MISP = {"Event": {
    "info": "e2e MISP event", "uuid": "5aa2e262-0000-4000-8000-000000000000",
    "Attribute": [
        {"uuid": "5aa2e262-0000-4000-8000-000000000001", "type": "domain",
         "category": "Network activity", "value": "fmt-misp.insecure.tld", "to_ids": True},
        {"uuid": "5aa2e262-0000-4000-8000-000000000002", "type": "domain",
         "category": "Network activity", "value": "fmt-misp-noids.insecure.tld",
         "to_ids": False},
    ]}}


@pytest.fixture(scope="module")
def fmtd(bulwark_module, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("formats"))
    feeds = [
        {"name": "fdom", "category": "malware", "format": "domains",
         "file": write(d, "fdom.txt", DOMAINS)},
        {"name": "fhosts", "category": "phishing", "format": "hosts",
         "file": write(d, "fhosts.hosts", HOSTS)},
        {"name": "fwild", "category": "malware", "format": "wildcard",
         "file": write(d, "fwild.txt", WILDCARD)},
        {"name": "fab", "category": "ads", "format": "adblock",
         "file": write(d, "fab.txt", ADBLOCK)},
        {"name": "frpz", "category": "c2", "format": "rpz", "file": write(d, "frpz.rpz", RPZ)},
        {"name": "fstix", "category": "apt", "format": "stix",
         "file": write(d, "fstix.json", json.dumps(STIX, indent=1))},
        {"name": "fmisp", "category": "malware", "format": "misp",
         "file": write(d, "fmisp.json", json.dumps(MISP, indent=1))},
        {"name": "flog", "category": "trial", "format": "domains", "action": "log-only",
         "file": write(d, "flog.txt", "fmt-log.insecure.tld\n")},
        {"name": "fnodata", "category": "scam", "format": "domains", "action": "nodata",
         "file": write(d, "fnodata.txt", "fmt-nodata.insecure.tld\n")},
        {"name": "fredir", "category": "adult", "format": "domains", "action": "redirect",
         "redirect": ["192.0.2.80", "2001:db8::80"],
         "file": write(d, "fredir.txt", "fmt-redir.insecure.tld\n")},
    ]
    daemon = bulwark_module(feeds=feeds, allowlist=[], workdir=d)
    daemon.feed_files = {f["name"]: f["file"] for f in feeds}
    return daemon


def test_domains(fmtd):
    assert_blocked(fmtd.query(fq("fmt-dom")), "fdom", "malware")
    assert_blocked(fmtd.query(fq("www.fmt-dom")), "fdom", "malware")


def test_hosts(fmtd):
    assert_blocked(fmtd.query(fq("fmt-hosts")), "fhosts", "phishing")
    assert_blocked(fmtd.query(fq("a.b.fmt-hosts")), "fhosts", "phishing")


def test_wildcard_covers_the_name_itself(fmtd):
    assert_blocked(fmtd.query(fq("fmt-wild")), "fwild", "malware")
    assert_blocked(fmtd.query(fq("x.fmt-wild")), "fwild", "malware")


def test_adblock(fmtd):
    assert_blocked(fmtd.query(fq("fmt-ab")), "fab", "ads")
    r = fmtd.query(fq("x.fmt-ab"))
    assert_blocked(r, "fab", "ads")
    # the @@ exception and what is below it
    assert_resolves(fmtd.query(fq("ok.fmt-ab")), "ok.fmt-ab")
    r = fmtd.query(fq("y.ok.fmt-ab"))
    assert r.rcode() == dns.rcode.NXDOMAIN and not dnsutil.ede(r), describe(r)
    # $third-party cannot be enforced by a resolver: the rule is skipped
    assert_resolves(fmtd.query(fq("fmt-3p")), "fmt-3p")


def test_rpz(fmtd):
    r = fmtd.query(fq("fmt-rpz"))
    assert_blocked(r, "frpz", "c2")
    # an exact RPZ trigger: the name below it is not covered
    r = fmtd.query(fq("x.fmt-rpz"))
    assert r.rcode() == dns.rcode.NXDOMAIN and not dnsutil.ede(r), describe(r)


@pytest.mark.parametrize("label", ["to-fmt-rpz", "hop-fmt-rpz"])
def test_cname_chain_into_rpz_name(fmtd, label):
    for attempt in ("miss", "hit"):
        r = fmtd.query(fq(label))
        assert_blocked(r, "frpz", "c2", via="CNAME fmt-rpz.insecure.tld.")
        assert ADDR["fmt-rpz"] not in dnsutil.addresses(r), "%s: %s" % (attempt, describe(r))


def test_stix(fmtd):
    assert_blocked(fmtd.query(fq("fmt-stix")), "fstix", "apt")
    assert_blocked(fmtd.query(fq("sub.fmt-stix")), "fstix", "apt")
    # both sides of an OR
    assert_blocked(fmtd.query(fq("fmt-stix-a")), "fstix", "apt")
    assert_blocked(fmtd.query(fq("fmt-stix-b")), "fstix", "apt")
    # an expired indicator does not block
    assert_resolves(fmtd.query(fq("fmt-stix-old")), "fmt-stix-old")


def test_misp(fmtd):
    assert_blocked(fmtd.query(fq("fmt-misp")), "fmisp", "malware")
    assert_blocked(fmtd.query(fq("www.fmt-misp")), "fmisp", "malware")
    # to_ids false: not for blocking
    assert_resolves(fmtd.query(fq("fmt-misp-noids")), "fmt-misp-noids")


def test_action_log_only(fmtd):
    assert_resolves(fmtd.query(fq("fmt-log")), "fmt-log")
    log = fmtd.log_text(tail=200000)
    lines = [l for l in log.splitlines() if "log-only" in l and "fmt-log.insecure.tld" in l]
    assert lines, "no log-only line for fmt-log.insecure.tld in the log:\n" + log[-3000:]
    assert "flog" in lines[-1] and "trial" in lines[-1], lines


def test_action_nodata(fmtd):
    for rdtype in ("A", "AAAA"):
        r = fmtd.query(fq("fmt-nodata"), rdtype)
        assert_blocked(r, "fnodata", "scam", rcode=dns.rcode.NOERROR)
    r = fmtd.query(fq("sub.fmt-nodata"))
    assert_blocked(r, "fnodata", "scam", rcode=dns.rcode.NOERROR)


def test_action_redirect(fmtd):
    name = fq("fmt-redir")
    r = fmtd.query(name, "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert ede_text(r) == "blocked by fredir (adult)", describe(r)
    rrset = dnsutil.answer_rrset(r, name, "A")
    assert rrset is not None and [rd.to_text() for rd in rrset] == ["192.0.2.80"], describe(r)
    assert len(r.answer) == 1, describe(r)
    r = fmtd.query(name, "AAAA")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert ede_text(r) == "blocked by fredir (adult)", describe(r)
    assert dnsutil.addresses(r, "AAAA") == ["2001:db8::80"], describe(r)
    assert dnsutil.answer_rrset(r, name, "AAAA") is not None, describe(r)
    # no address for MX: an empty answer, still marked as blocked
    r = fmtd.query(name, "MX")
    assert_blocked(r, "fredir", "adult", rcode=dns.rcode.NOERROR)
    # subdomains too, answered under their own name
    r = fmtd.query(fq("www.fmt-redir"), "A")
    assert dnsutil.addresses(r) == ["192.0.2.80"], describe(r)
    assert r.answer[0].name.to_text() == fq("www.fmt-redir"), describe(r)


# -- bulwark explain -------------------------------------------------------------------------
def explain(daemon, name, *args):
    p = subprocess.run([conftest.bulwark_binary(), "explain", name, "-c", daemon.config_path]
                       + list(args), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, "explain %s: exit %d\n%s%s" % (name, p.returncode, p.stdout,
                                                             p.stderr)
    return p.stdout


def rule_lines(out):
    return [l.strip() for l in out.splitlines() if l.strip().startswith(("* feed", "- feed"))]


def test_explain_marks_the_first_feed(fmtd):
    out = explain(fmtd, "fmt-dom.insecure.tld")
    rules = rule_lines(out)
    # listed on line 2 of fdom and line 3 of fhosts: both shown, fdom wins
    assert len(rules) == 2, out
    assert rules[0].startswith("* feed fdom (malware) %s:2 " % fmtd.feed_files["fdom"]), out
    assert "QNAME -> NXDOMAIN" in rules[0], out
    assert rules[1].startswith("- feed fhosts (phishing) %s:3 " % fmtd.feed_files["fhosts"]), out
    assert "name:     fmt-dom.insecure.tld" in out, out
    assert 'verdict:  NXDOMAIN by feed fdom (malware), EDE 15 "blocked by fdom (malware)"' \
        in out, out


def test_explain_subdomain_and_exception(fmtd):
    out = explain(fmtd, "x.fmt-ab.insecure.tld")
    rules = rule_lines(out)
    assert len(rules) == 1, out
    assert rules[0].startswith("* feed fab (ads) %s:3 " % fmtd.feed_files["fab"]), out
    assert "WILDCARD -> NXDOMAIN" in rules[0], out
    out = explain(fmtd, "ok.fmt-ab.insecure.tld")
    rules = rule_lines(out)
    assert len(rules) == 2, out
    # the exception (line 4) comes first and wins over the block of the parent (line 3)
    assert ("%s:4 " % fmtd.feed_files["fab"]) in rules[0] and "PASSTHRU" in rules[0], out
    assert rules[0].startswith("* feed fab (ads)"), out
    assert "verdict:  PASSTHRU by feed fab (ads)" in out, out
    assert ("%s:3 " % fmtd.feed_files["fab"]) in rules[1] and rules[1].startswith("-"), out


def test_explain_rpz_line_and_unlisted(fmtd):
    out = explain(fmtd, "fmt-rpz.insecure.tld")
    rules = rule_lines(out)
    assert len(rules) == 1, out
    assert rules[0].startswith("* feed frpz (c2) %s:5 " % fmtd.feed_files["frpz"]), out
    out = explain(fmtd, "www.insecure.tld")
    assert rule_lines(out) == [], out
    out = explain(fmtd, "fmt-stix-old.insecure.tld")
    assert rule_lines(out) == [], "an expired STIX indicator matched:\n" + out
    out = explain(fmtd, "fmt-stix-a.insecure.tld")
    rules = rule_lines(out)
    assert len(rules) == 1 and rules[0].startswith("* feed fstix (apt)"), out
    assert "indicator--00000000-0000-4000-8000-000000000002" in rules[0], out
