"""Blocking: listed names and their subdomains get NXDOMAIN + EDE 15 naming the feed and
its category; the allowlist wins; CNAME chains into a listed name are blocked; the first
configured feed wins; real list excerpts from tests/data are blocked."""

import glob
import os
import random

import dns.flags
import dns.rcode
import pytest

import conftest
import dnsutil
from dnsutil import describe


def assert_blocked(r, feed, category):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    edes = dnsutil.ede(r)
    assert edes, "no EDE option: " + describe(r)
    codes = [c for c, _ in edes]
    assert dnsutil.EDE_BLOCKED in codes, "want EDE 15, got " + describe(r)
    text = dict(edes)[dnsutil.EDE_BLOCKED]
    assert feed in text, "EDE text %r does not name the feed %r" % (text, feed)
    assert category in text, "EDE text %r does not name the category %r" % (text, category)
    assert not r.answer or all(rr.rdtype == dns.rdatatype.CNAME for rr in r.answer), \
        "a blocked answer carries data: " + describe(r)
    return text


def assert_resolves(r, addr):
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), describe(r)
    assert addr in dnsutil.addresses(r), describe(r)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_listed_name_blocked(resolver, tcp):
    r = resolver.query("blocked.insecure.tld.", "A", tcp=tcp)
    assert_blocked(r, "urlhaus", "malware")


@pytest.mark.parametrize("name", ["www.blocked.insecure.tld.", "deep.sub.blocked.insecure.tld.",
                                  "not-in-zone.blocked.insecure.tld.",
                                  "www.evil-target.insecure.tld."])
def test_subdomains_blocked(resolver, name):
    assert_blocked(resolver.query(name, "A"), "urlhaus", "malware")


@pytest.mark.parametrize("rdtype", ["AAAA", "TXT", "MX", "HTTPS", "ANY"])
def test_every_qtype_blocked(resolver, rdtype):
    assert_blocked(resolver.query("blocked.insecure.tld.", rdtype), "urlhaus", "malware")


def test_match_ignores_case_and_keeps_it(resolver):
    qname = "WwW.BlOcKeD.InSeCuRe.TlD."
    r = resolver.query(qname, "A")
    assert_blocked(r, "urlhaus", "malware")
    assert r.question[0].name.to_text() == qname


def test_label_boundary(resolver):
    """xblocked.insecure.tld. is not a subdomain of blocked.insecure.tld."""
    assert_resolves(resolver.query("xblocked.insecure.tld.", "A"), "192.0.2.75")


def test_parent_of_listed_name_not_blocked(resolver):
    assert_resolves(resolver.query("www.insecure.tld.", "A"), "192.0.2.50")
    r = resolver.query("insecure.tld.", "SOA")
    assert r.rcode() == dns.rcode.NOERROR and not dnsutil.ede(r), describe(r)


def test_hosts_feed(resolver):
    assert_blocked(resolver.query("phish.insecure.tld.", "A"), "scam", "phishing")


def test_blocked_without_edns(resolver):
    r = resolver.query("blocked.insecure.tld.", "A", edns=None)
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert r.edns == -1, "OPT in an answer to a query without EDNS"
    assert not r.answer


def test_blocked_answer_shape(resolver):
    q = dnsutil.make_query("blocked.insecure.tld.", "A", do=True)
    r = dnsutil.send(resolver.port, q)
    assert r.id == q.id
    assert r.flags & dns.flags.QR and r.flags & dns.flags.RA and r.flags & dns.flags.RD
    assert not r.flags & dns.flags.AD, "a synthesized block must not claim AD"
    assert r.payload == 1232
    assert_blocked(r, "urlhaus", "malware")


def test_allowlist_wins(resolver):
    assert_resolves(resolver.query("ok.blocked.insecure.tld.", "A"), "192.0.2.73")
    assert_resolves(resolver.query("x.ok.blocked.insecure.tld.", "A"), "192.0.2.74")
    # the parent and siblings stay blocked
    assert_blocked(resolver.query("blocked.insecure.tld.", "A"), "urlhaus", "malware")
    assert_blocked(resolver.query("www.blocked.insecure.tld.", "A"), "urlhaus", "malware")


@pytest.mark.parametrize("name", ["to-evil.insecure.tld.", "hop1.insecure.tld.",
                                  "to-evil-cross.secure.tld."])
def test_cname_chain_to_listed_name(resolver, name):
    for attempt in ("miss", "hit"):
        r = resolver.query(name, "A")
        assert_blocked(r, "urlhaus", "malware")
        assert "192.0.2.66" not in dnsutil.addresses(r), "%s: %s" % (attempt, describe(r))


def test_cname_chain_blocked_over_tcp_and_kdig(resolver):
    p = dnsutil.kdig(resolver.port, "+tcp", "+edns", "to-evil.insecure.tld", "A")
    assert "status: NXDOMAIN" in p.stdout, p.stdout
    assert "EDE: 15 (Blocked)" in p.stdout, p.stdout
    assert "192.0.2.66" not in p.stdout, p.stdout


def test_clean_cname_chain_resolves(resolver):
    assert_resolves(resolver.query("alias.insecure.tld.", "A"), "192.0.2.50")


def test_dig_shows_ede(resolver):
    p = dnsutil.dig(resolver.port, "phish.insecure.tld", "A")
    assert "status: NXDOMAIN" in p.stdout, p.stdout
    assert "EDE: 15 (Blocked)" in p.stdout, p.stdout
    assert "scam" in p.stdout, p.stdout


def test_first_feed_wins(resolver, bulwark, workdir):
    # default order: urlhaus (malware) first, then scam (phishing)
    text = assert_blocked(resolver.query("both.insecure.tld.", "A"), "urlhaus", "malware")
    assert "scam" not in text
    feeds = list(reversed(conftest.standard_feeds(workdir)))
    other = bulwark(feeds=feeds)
    text = assert_blocked(other.query("both.insecure.tld.", "A"), "scam", "phishing")
    assert "urlhaus" not in text


def test_no_feeds_blocks_nothing(bulwark):
    d = bulwark(feeds=[], allowlist=[])
    assert_resolves(d.query("blocked.insecure.tld.", "A"), "192.0.2.70")
    assert_resolves(d.query("to-evil.insecure.tld.", "A"), "192.0.2.66")


# -- real list excerpts (tests/data) --------------------------------------------------------
def _looks_like_name(n):
    return ("." in n and not n.replace(".", "").isdigit() and ":" not in n
            and n not in ("localhost", "localhost.localdomain", "broadcasthost")
            and all(c.isalnum() or c in "-._" for c in n))


def read_names(path, fmt):
    names = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            cand = fields[1:] if fmt == "hosts" else fields[:1]
            for n in cand:
                n = n.rstrip(".").lower()
                if _looks_like_name(n):
                    names.append(n)
    return names


def data_feeds():
    """(name, category, format, path) for the list excerpts in tests/data."""
    found = []
    for path in sorted(glob.glob(os.path.join(conftest.DATA_DIR, "**", "*"), recursive=True)):
        base = os.path.basename(path).lower()
        if not os.path.isfile(path) or base.endswith((".md", ".gz", ".json")):
            continue
        if "tranco" in base or "top" in base or "majestic" in base:
            continue
        if base.endswith(".hosts") or "hosts" in base:
            fmt = "hosts"
        elif "domains" in base or base.endswith(".txt"):
            fmt = "domains"
        else:
            continue
        if "adblock" in base or "adguard" in base or "wildcard" in base or "rpz" in base:
            continue
        cat = ("stalkerware" if "stalker" in base else "phishing" if "scam" in base
               else "malware")
        feed = "".join(c if c.isalnum() else "-" for c in os.path.splitext(base)[0])[:40]
        if read_names(path, fmt):
            found.append((feed, cat, fmt, path))
    return found


def tranco_names():
    for path in glob.glob(os.path.join(conftest.DATA_DIR, "**", "*tranco*"), recursive=True):
        if os.path.isfile(path) and not path.endswith((".gz", ".md")):
            out = []
            with open(path, errors="replace") as f:
                for line in f:
                    n = line.strip().split(",")[-1].rstrip(".").lower()
                    if _looks_like_name(n):
                        out.append(n)
            return out
    return []


def listed(name, names):
    labels = name.split(".")
    return any(".".join(labels[i:]) in names for i in range(len(labels)))


def test_real_list_excerpts(bulwark, workdir):
    feeds = data_feeds()
    if not feeds:
        pytest.skip("no list excerpts in %s yet" % conftest.DATA_DIR)
    conf_feeds = [{"name": f, "category": c, "format": fmt, "file": p} for f, c, fmt, p in feeds]
    d = bulwark(feeds=conf_feeds, allowlist=[])
    rng = random.Random(8914)
    sets = [(f, c, fmt, set(read_names(p, fmt))) for f, c, fmt, p in feeds]

    def first_match(n):
        # the first feed listing the name or a parent of it wins
        for f, c, fmt, names in sets:
            if listed(n, names):
                return f, c
        raise AssertionError(n)

    all_names = set().union(*(names for _, _, _, names in sets))
    for f, c, fmt, names in sets:
        for n in rng.sample(sorted(names), min(25, len(names))):
            r = d.query(n + ".", "A")
            assert_blocked(r, *first_match(n))
    clean = [n for n in tranco_names() if not listed(n, all_names)]
    for n in clean[:25]:
        r = d.query(n + ".", "A")
        assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), "%s: %s" % (n, describe(r))
