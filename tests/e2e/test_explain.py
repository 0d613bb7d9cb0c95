"""`bulwark explain` takes the pipeline's own decisions (src/policy/decide.c), so what it
says is what the answer does: for each kind of match (QNAME, wildcard, a CNAME target,
a response address, the client's address, the look-alike guard, the allowlist, a QNAME
verdict deferred until the answer is known) the daemon is asked over DNS and explain is
asked about the same name and client, and explain's verdict carries exactly the answer's
Extended DNS Error (code and text). NSDNAME/NSIP rules are reported as loaded, not
enforced, by explain and in the start-up log."""

import os
import re

import dns.rcode
import pytest

import conftest
import dnsutil
from dnsutil import describe
from test_formats import explain

# feed "ipfirst" (response-IP rules) comes first, so QNAME rules of "names" are deferred
IPFIRST = """$TTL 300
@ SOA localhost. root.localhost. 1 3600 600 86400 60
@ NS localhost.
32.7.100.51.198.rpz-ip        CNAME .
24.0.113.0.203.rpz-ip         CNAME .
"""
NAMES = """$TTL 300
@ SOA localhost. root.localhost. 1 3600 600 86400 60
@ NS localhost.
bad.insecure.tld              CNAME .
*.wild.insecure.tld           CNAME .
evil-target.insecure.tld      CNAME *.
respip24.insecure.tld         CNAME .
32.9.0.0.127.rpz-client-ip    CNAME .
ns.evil.example.rpz-nsdname   CNAME .
32.5.0.53.127.rpz-nsip        CNAME .
"""


@pytest.fixture(scope="module")
def explained(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("explain"))
    files = {}
    for name, text in (("ipfirst", IPFIRST), ("names", NAMES)):
        files[name] = os.path.join(d, name + ".rpz")
        with open(files[name], "w") as f:
            f.write(text)

    def config(port, workdir):
        feeds = [{"name": "ipfirst", "category": "malware", "format": "rpz",
                  "file": files["ipfirst"]},
                 {"name": "names", "category": "phishing", "format": "rpz",
                  "file": files["names"]}]
        conf = conftest.default_config(internet, port, workdir, feeds=feeds,
                                       allowlist=["ok.wild.insecure.tld"])
        conf["guard"] = {"protected": [{"domain": "microsoft.com"}]}
        return conf

    daemon = bulwark_module(config, workdir=d)
    return daemon


def explain_ede(out):
    """(code, text) of explain's verdict line, or None when it names no EDE."""
    line = [l for l in out.splitlines() if l.startswith("verdict:")]
    assert len(line) == 1, out
    m = re.search(r', EDE (\d+) "(.*)"$', line[0])
    return (int(m.group(1)), m.group(2)) if m else None


def answer_ede(r):
    eds = dnsutil.ede(r)
    assert len(eds) <= 1, describe(r)
    return tuple(eds[0]) if eds else None


@pytest.mark.parametrize("name,source,kind", [
    ("bad.insecure.tld", "127.0.0.1", "QNAME"),
    ("sub.wild.insecure.tld", "127.0.0.1", "wildcard"),
    ("to-bad.insecure.tld", "127.0.0.1", "CNAME target"),
    ("respip32.insecure.tld", "127.0.0.1", "response address"),
    ("respip24.insecure.tld", "127.0.0.1", "deferred QNAME, an earlier feed's address wins"),
    ("www.insecure.tld", "127.0.0.9", "client address"),
    ("rnicrosoft.com", "127.0.0.1", "guard"),
    ("ok.wild.insecure.tld", "127.0.0.1", "allowlist"),
    ("www.insecure.tld", "127.0.0.1", "nothing"),
])
def test_explain_says_what_the_answer_says(explained, name, source, kind):
    r = explained.query(name, source=source)
    out = explain(explained, name, "--client", source)
    got = explain_ede(out)
    assert got == answer_ede(r), "%s: explain says %r, the answer %s\n%s" % (
        kind, got, describe(r), out)
    if kind in ("allowlist", "nothing"):
        assert r.rcode() == dns.rcode.NOERROR, describe(r)
        assert "verdict:  resolve normally" in out, out
    else:
        assert got is not None and got[0] == dnsutil.EDE_BLOCKED, (kind, out)


def test_explain_shows_the_rule_of_the_cname_target(explained):
    out = explain(explained, "to-bad.insecure.tld")
    assert "CNAME chain to bad.insecure.tld." in out, out
    assert "rules matching the answer's CNAME bad.insecure.tld.:" in out, out
    # the rule with its file and line
    assert re.search(r"\* feed names \(phishing\) .*names\.rpz:4  QNAME -> NXDOMAIN", out), out


def test_explain_shows_the_address_rule(explained):
    out = explain(explained, "respip24.insecure.tld")
    # the QNAME rule of the second feed matched, but the first feed's address rule wins
    assert re.search(r"- feed names \(phishing\) .*names\.rpz:7  QNAME -> NXDOMAIN", out), out
    assert re.search(r"\* feed ipfirst \(malware\) .*ipfirst\.rpz:5  RESPONSE-IP -> NXDOMAIN",
                     out), out


def test_explain_without_resolving_says_what_is_left_open(explained):
    out = explain(explained, "to-bad.insecure.tld", "--no-resolve")
    assert "verdict:  resolve normally" in out, out
    assert "answer:   not checked (explain --no-resolve)" in out, out


def test_nsdname_and_nsip_rules_are_loaded_not_enforced(explained):
    out = explain(explained, "www.insecure.tld")
    assert "feed names: 2 NSDNAME/NSIP rules loaded, not enforced (Bulwark resolves " \
           "through libunbound" in out, out
    assert "feed names: 2 NSDNAME/NSIP rules loaded, not enforced" in explained.log_text()
    feeds = conftest.ctl(os.path.join(explained.dir, "state"), "feeds").stdout
    assert re.search(r"names .* 2 NSDNAME/NSIP rules loaded, not enforced", feeds), feeds
    # and indeed not enforced: the name server of insecure.tld is 127.53.0.5
    r = explained.query("www.insecure.tld")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
