"""RPZ feeds (format: rpz) end to end: every RPZ action as a client sees it (NXDOMAIN,
NODATA, PASSTHRU, DROP, TCP-only, local data, wildcard local data, CNAME redirect),
CLIENT-IP triggers (per client address, before the cache), RESPONSE-IP triggers (v4 /32,
/24, v6), precedence (feed order, exact before wildcard, the most specific wildcard, the
longest IP prefix), the real Unbound RPZ test zones from tests/data/rpz/unbound, and a
SIGHUP reload of an RPZ file under query load.

Every policy answer carries EDE 15 with "blocked by FEED (CATEGORY)" (plus " via ..."
when the match was not the query name). NSDNAME/NSIP rules are loaded but not enforced
(a documented limitation): not tested here."""

import os
import re
import subprocess
import threading
import time

import dns.exception
import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import conftest
import dnsutil
from dnsutil import describe

CLIENT2 = "127.0.0.2"  # a second loopback client address (the daemon listens on 127.0.0.1)
CLIENT3 = "127.0.0.3"

# The main test zone: one feed "rpzmain" (category malware). Names are relative to the
# zone's origin; every trigger name exists in zones/insecure.tld.zone, so a resolved answer
# and a policy answer can be told apart.
MAIN_RPZ = """\
; written by tests/e2e/test_rpz.py
$ORIGIN rpz.test.
$TTL 60
@                         SOA   ns.rpz.test. hostmaster.rpz.test. ( 2026081501 3600 600 86400 60 )
                          NS    ns.rpz.test.
; QNAME exact and wildcard
bad.insecure.tld          CNAME .
*.wild.insecure.tld       CNAME .
ok.wild.insecure.tld      CNAME rpz-passthru.
nodata.insecure.tld       CNAME *.
drop.insecure.tld         CNAME rpz-drop.
tcponly.insecure.tld      CNAME rpz-tcp-only.
; local data: two types at one owner, and a wildcard owner
local.insecure.tld        A     192.0.2.98
local.insecure.tld        TXT   "blocked by the security team"
*.ld.insecure.tld         A     192.0.2.99
; CNAME redirect to a walled garden that resolves in the fake internet
redir.insecure.tld        CNAME garden.insecure.tld.
*.lure.insecure.tld       CNAME *.garden.insecure.tld.
; the older PASSTHRU form (a CNAME to the trigger's own name), under the *.ld wildcard
legacy.ld.insecure.tld    CNAME legacy.ld.insecure.tld.
; precedence within the feed (the wildcard comes first in the file on purpose)
*.prec.insecure.tld       CNAME .
*.deep.prec.insecure.tld  A     192.0.2.96
a.prec.insecure.tld       A     192.0.2.97
; precedence between feeds (see FIRST_RPZ)
both.insecure.tld         CNAME .
keep.insecure.tld         CNAME rpz-passthru.
; RESPONSE-IP: 198.51.100.7/32, 203.0.113.0/24, 2001:db8:66::1/128
32.7.100.51.198.rpz-ip    CNAME .
24.0.113.0.203.rpz-ip     CNAME .
128.1.zz.66.db8.2001.rpz-ip CNAME .
"""

# The first feed: a passthru and a block for names the second feed treats the other way.
FIRST_RPZ = """\
$ORIGIN first.rpz.test.
$TTL 300
@                  SOA  ns.first.rpz.test. hostmaster.first.rpz.test. 1 3600 600 86400 60
@                  NS   ns.first.rpz.test.
both.insecure.tld  CNAME rpz-passthru.
keep.insecure.tld  CNAME .
"""


def ede_text(r, code=dnsutil.EDE_BLOCKED):
    for c, text in dnsutil.ede(r):
        if c == code:
            return text
    return None


def assert_policy(r, rcode, feed, category, via=None):
    """A policy answer: rcode, EDE 15 whose text is "blocked by FEED (CATEGORY)[ via VIA]"."""
    assert r.rcode() == rcode, "want %s, got %s" % (dns.rcode.to_text(rcode), describe(r))
    text = ede_text(r)
    assert text is not None, "no EDE 15: " + describe(r)
    want = "blocked by %s (%s)" % (feed, category)
    if via:
        want += " via " + via
    assert text == want, "EDE text %r, want %r: %s" % (text, want, describe(r))
    return text


def assert_nxdomain(r, feed="rpzmain", category="malware", via=None):
    assert_policy(r, dns.rcode.NXDOMAIN, feed, category, via)
    assert not r.answer, "a blocked answer carries data: " + describe(r)


def assert_nodata(r, feed="rpzmain", category="malware", via=None):
    assert_policy(r, dns.rcode.NOERROR, feed, category, via)
    assert not r.answer, "NODATA with an answer: " + describe(r)


def assert_resolves(r, rdtype="A", addrs=None):
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), describe(r)
    if addrs is not None:
        assert dnsutil.addresses(r, rdtype) == sorted(addrs), describe(r)


def rpz_feed(d, name, text, category="malware", fname=None, **extra):
    path = os.path.join(d, fname or name + ".rpz")
    with open(path, "w") as f:
        f.write(text)
    feed = {"name": name, "category": category, "format": "rpz", "file": path}
    feed.update(extra)
    return feed


@pytest.fixture(scope="module")
def rpzd(bulwark_module, tmp_path_factory):
    """A daemon with two RPZ feeds: rpzfirst (passthru/block), then rpzmain."""
    d = str(tmp_path_factory.mktemp("rpz"))
    feeds = [rpz_feed(d, "rpzfirst", FIRST_RPZ, category="phishing"),
             rpz_feed(d, "rpzmain", MAIN_RPZ)]
    return bulwark_module(feeds=feeds, allowlist=[], workdir=d)


# -- QNAME triggers ---------------------------------------------------------------------------
@pytest.mark.parametrize("rdtype", ["A", "AAAA", "TXT"])
def test_exact_nxdomain(rpzd, rdtype):
    assert_nxdomain(rpzd.query("bad.insecure.tld.", rdtype))


def test_exact_nxdomain_tcp_and_case(rpzd):
    r = rpzd.query("BaD.InSeCuRe.TlD.", "A", tcp=True)
    assert_nxdomain(r)
    assert r.question[0].name.to_text() == "BaD.InSeCuRe.TlD."


def test_exact_does_not_cover_subdomains(rpzd):
    # "bad.insecure.tld CNAME ." is a QNAME trigger: x.bad.insecure.tld is not below a
    # wildcard, so it resolves (to the zone's NXDOMAIN: there is no such name) without EDE
    r = rpzd.query("x.bad.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and not dnsutil.ede(r), describe(r)


def test_wildcard_blocks_below_not_apex(rpzd):
    assert_nxdomain(rpzd.query("sub.wild.insecure.tld.", "A"))
    assert_nxdomain(rpzd.query("a.b.wild.insecure.tld.", "A"))
    # the wildcard's own apex is not covered
    assert_resolves(rpzd.query("wild.insecure.tld.", "A"), addrs=["192.0.2.111"])


def test_passthru_under_wildcard(rpzd):
    assert_resolves(rpzd.query("ok.wild.insecure.tld.", "A"), addrs=["192.0.2.113"])
    # only the exact name: names below it are still under the wildcard block
    assert_nxdomain(rpzd.query("x.ok.wild.insecure.tld.", "A"))


def test_nodata(rpzd):
    for rdtype in ("A", "AAAA"):
        r = rpzd.query("nodata.insecure.tld.", rdtype)
        assert_nodata(r)
        assert "192.0.2.114" not in dnsutil.addresses(r)


def test_drop_gets_no_answer(rpzd):
    assert dnsutil.no_answer(rpzd.port, "drop.insecure.tld.", "A", timeout=1.0), \
        "rpz-drop. answered"
    # the daemon is fine and answers the next query
    assert_resolves(rpzd.query("www.insecure.tld.", "A"), addrs=["192.0.2.50"])


def test_tcp_only(rpzd):
    r = rpzd.query("tcponly.insecure.tld.", "A")
    assert r.flags & dns.flags.TC, "no TC over UDP: " + describe(r)
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)
    r = rpzd.query("tcponly.insecure.tld.", "A", tcp=True)
    assert not r.flags & dns.flags.TC, describe(r)
    assert_resolves(r, addrs=["192.0.2.116"])
    # kdig follows the TC over TCP by itself
    p = dnsutil.kdig(rpzd.port, "tcponly.insecure.tld", "A")
    assert "192.0.2.116" in p.stdout, p.stdout + p.stderr


def test_local_data_per_type(rpzd):
    r = rpzd.query("local.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NOERROR, "rpzmain", "malware")
    rrset = dnsutil.answer_rrset(r, "local.insecure.tld.", "A")
    assert rrset is not None and [rd.to_text() for rd in rrset] == ["192.0.2.98"], describe(r)
    assert 0 < rrset.ttl <= 60, "local data TTL %d, want the zone's $TTL 60" % rrset.ttl
    assert "192.0.2.119" not in dnsutil.addresses(r)
    r = rpzd.query("local.insecure.tld.", "TXT")
    assert_policy(r, dns.rcode.NOERROR, "rpzmain", "malware")
    rrset = dnsutil.answer_rrset(r, "local.insecure.tld.", "TXT")
    assert rrset is not None and [rd.to_text() for rd in rrset] == \
        ['"blocked by the security team"'], describe(r)
    # a type with no local data: NODATA (RPZ: the owner's records replace the real ones)
    assert_nodata(rpzd.query("local.insecure.tld.", "AAAA"))


def test_wildcard_local_data(rpzd):
    r = rpzd.query("x.ld.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NOERROR, "rpzmain", "malware")
    rrset = dnsutil.answer_rrset(r, "x.ld.insecure.tld.", "A")
    assert rrset is not None, "answer not owned by the query name: " + describe(r)
    assert [rd.to_text() for rd in rrset] == ["192.0.2.99"], describe(r)
    r = rpzd.query("Deep.Name.LD.insecure.tld.", "A")
    assert [rr.name.to_text().lower() for rr in r.answer] == ["deep.name.ld.insecure.tld."], \
        describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.99"], describe(r)
    # the wildcard's apex resolves
    assert_resolves(rpzd.query("ld.insecure.tld.", "A"), addrs=["192.0.2.117"])


def test_cname_redirect_to_walled_garden(rpzd):
    r = rpzd.query("redir.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.EDE_BLOCKED in dnsutil.ede_codes(r), describe(r)
    assert ede_text(r) == "blocked by rpzmain (malware)", describe(r)
    assert r.answer, describe(r)
    first = r.answer[0]
    assert first.rdtype == dns.rdatatype.CNAME and first.name.to_text() == "redir.insecure.tld.", \
        describe(r)
    assert first[0].target.to_text() == "garden.insecure.tld.", describe(r)
    assert "192.0.2.121" not in dnsutil.addresses(r), describe(r)
    # the walled garden itself resolves normally
    assert_resolves(rpzd.query("garden.insecure.tld.", "A"), addrs=["192.0.2.120"])


def test_cname_redirect_follows_target(rpzd):
    """The walled garden must be reachable: the CNAME is followed and the target's address
    comes with it (as BIND does), else a stub resolver (getaddrinfo) gets no address."""
    r = rpzd.query("redir.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.CNAME, describe(r)
    rrset = dnsutil.answer_rrset(r, "garden.insecure.tld.", "A")
    assert rrset is not None and [rd.to_text() for rd in rrset] == ["192.0.2.120"], \
        "the redirect target's A record is not in the answer: " + describe(r)


def test_wildcard_cname_redirect(rpzd):
    # "*.lure CNAME *.garden.": the query name is prepended to the target (RPZ, BIND)
    r = rpzd.query("x.lure.insecure.tld.", "A")
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN), describe(r)
    assert ede_text(r) == "blocked by rpzmain (malware)", describe(r)
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.CNAME, describe(r)
    assert r.answer[0].name.to_text() == "x.lure.insecure.tld.", describe(r)
    assert r.answer[0][0].target.to_text() == "x.lure.insecure.tld.garden.insecure.tld.", \
        describe(r)


def test_legacy_passthru_cname_to_self(rpzd):
    # resolved normally (no such name in the zone) instead of *.ld's local data
    r = rpzd.query("legacy.ld.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and not dnsutil.ede(r), describe(r)
    assert "192.0.2.99" not in dnsutil.addresses(r), describe(r)


def test_cname_chain_into_rpz_name(rpzd):
    r = rpzd.query("to-bad.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NXDOMAIN, "rpzmain", "malware", via="CNAME bad.insecure.tld.")
    assert "192.0.2.110" not in dnsutil.addresses(r), describe(r)


# -- precedence -------------------------------------------------------------------------------
def test_first_feed_wins(rpzd):
    # rpzfirst passthrus both.insecure.tld, rpzmain blocks it: it resolves
    assert_resolves(rpzd.query("both.insecure.tld.", "A"), addrs=["192.0.2.81"])
    # rpzfirst blocks keep.insecure.tld, rpzmain passthrus it: blocked by rpzfirst
    assert_nxdomain(rpzd.query("keep.insecure.tld.", "A"), "rpzfirst", "phishing")


def test_exact_beats_wildcard(rpzd):
    r = rpzd.query("a.prec.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NOERROR, "rpzmain", "malware")
    assert dnsutil.addresses(r) == ["192.0.2.97"], describe(r)


def test_more_specific_wildcard_wins(rpzd):
    r = rpzd.query("b.deep.prec.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NOERROR, "rpzmain", "malware")
    assert dnsutil.addresses(r) == ["192.0.2.96"], describe(r)
    # the less specific wildcard still applies elsewhere; the apex is untouched
    assert_nxdomain(rpzd.query("c.prec.insecure.tld.", "A"))
    assert_nxdomain(rpzd.query("deep.prec.insecure.tld.", "A"))
    assert_resolves(rpzd.query("prec.insecure.tld.", "A"), addrs=["192.0.2.122"])


ORDER_A = """\
$ORIGIN a.rpz.test.
@                            SOA ns hostmaster 1 3600 600 86400 60
respip-clean.insecure.tld    CNAME rpz-passthru.
"""
ORDER_B = """\
$ORIGIN b.rpz.test.
@                            SOA ns hostmaster 1 3600 600 86400 60
32.7.100.51.198.rpz-ip       CNAME *.
32.8.100.51.198.rpz-ip       CNAME .
"""
ORDER_C = """\
$ORIGIN c.rpz.test.
@                            SOA ns hostmaster 1 3600 600 86400 60
respip32.insecure.tld        CNAME .
bad.insecure.tld             CNAME .
"""


def test_feed_order_across_trigger_types(bulwark, workdir):
    """The first feed with any matching rule wins, whatever the trigger type: a QNAME
    PASSTHRU in feed A beats feed B's RESPONSE-IP block; feed B's RESPONSE-IP rule beats a
    QNAME rule of the later feed C (whose verdict must wait for the answer)."""
    d = bulwark(feeds=[rpz_feed(workdir, "oa", ORDER_A), rpz_feed(workdir, "ob", ORDER_B),
                       rpz_feed(workdir, "oc", ORDER_C, category="c2")], allowlist=[])
    assert_resolves(d.query("respip-clean.insecure.tld.", "A"), addrs=["198.51.100.8"])
    for attempt in ("miss", "hit"):
        assert_nodata(d.query("respip32.insecure.tld.", "A"), "ob", "malware",
                      via="address 198.51.100.7")
    assert_nxdomain(d.query("bad.insecure.tld.", "A"), "oc", "c2")


# -- RESPONSE-IP --------------------------------------------------------------------------------
def test_response_ip_v4_32(rpzd):
    for attempt in ("miss", "hit"):
        r = rpzd.query("respip32.insecure.tld.", "A")
        assert_nxdomain(r, via="address 198.51.100.7")
    assert_resolves(rpzd.query("respip-clean.insecure.tld.", "A"), addrs=["198.51.100.8"])


def test_response_ip_v4_24(rpzd):
    r = rpzd.query("respip24.insecure.tld.", "A")
    assert_nxdomain(r, via="address 203.0.113.9")
    assert "203.0.113.9" in ede_text(r)


def test_response_ip_v6(rpzd):
    r = rpzd.query("respip6.insecure.tld.", "AAAA")
    assert_nxdomain(r, via="address 2001:db8:66::1")
    # the same name's A record is not listed
    assert_resolves(rpzd.query("respip6.insecure.tld.", "A"), addrs=["192.0.2.126"])


def test_unlisted_names_resolve(rpzd):
    assert_resolves(rpzd.query("www.insecure.tld.", "A"), addrs=["192.0.2.50"])
    assert_resolves(rpzd.query("www.insecure.tld.", "AAAA"), "AAAA", addrs=["2001:db8::50"])
    r = rpzd.query("www.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD, describe(r)


# -- CLIENT-IP ----------------------------------------------------------------------------------
CLIENT_RPZ = """\
$ORIGIN clients.rpz.test.
$TTL 60
@                             SOA ns hostmaster 1 3600 600 86400 60
@                             NS  ns.example.
32.1.0.0.127.rpz-client-ip    CNAME .
32.3.0.0.127.rpz-client-ip    CNAME *.
"""


def test_client_ip(bulwark, workdir):
    d = bulwark(feeds=[rpz_feed(workdir, "clients", CLIENT_RPZ, category="quarantine")],
                allowlist=["allowed.insecure.tld"])
    # another client is not affected; its answer goes into the cache first
    r = d.query("www.insecure.tld.", "A", source=CLIENT2)
    assert_resolves(r, addrs=["192.0.2.50"])
    # 127.0.0.1 gets NXDOMAIN for everything, cached or not (CLIENT-IP runs before the cache)
    for name in ("www.insecure.tld.", "www.secure.tld.", "nonexistent.insecure.tld."):
        r = d.query(name, "A")
        assert_nxdomain(r, "clients", "quarantine", via="client address")
    # 127.0.0.3: NODATA for everything
    r = d.query("www.insecure.tld.", "A", source=CLIENT3)
    assert_nodata(r, "clients", "quarantine", via="client address")
    # and 127.0.0.2 still gets the real (cached) answer
    assert_resolves(d.query("www.insecure.tld.", "A", source=CLIENT2), addrs=["192.0.2.50"])
    assert_resolves(d.query("www.secure.tld.", "A", source=CLIENT2))


PASSTHRU_CLIENT_RPZ = """\
$ORIGIN exempt.rpz.test.
$TTL 60
@                             SOA ns hostmaster 1 3600 600 86400 60
@                             NS  ns.example.
32.2.0.0.127.rpz-client-ip    CNAME rpz-passthru.
"""


def test_client_ip_passthru_is_not_cached_for_others(bulwark, workdir):
    """An exempt client (CLIENT-IP PASSTHRU: an analyst's machine) gets the real answer for
    a listed name; that answer must not go into the cache the other clients of its profile
    are answered from, or everyone would get the real address of a listed name."""
    feeds = [rpz_feed(workdir, "exempt", PASSTHRU_CLIENT_RPZ, category="exempt")]
    feeds += conftest.standard_feeds(workdir)
    d = bulwark(feeds=feeds)
    assert_resolves(d.query("blocked.insecure.tld.", "A", source=CLIENT2), addrs=["192.0.2.70"])
    for _ in range(2):  # the exempt client asked first: everyone else is still protected
        r = d.query("blocked.insecure.tld.", "A")
        assert_nxdomain(r, "urlhaus")
        r = d.query("blocked.insecure.tld.", "A", source=CLIENT3)
        assert_nxdomain(r, "urlhaus")
    assert_resolves(d.query("blocked.insecure.tld.", "A", source=CLIENT2), addrs=["192.0.2.70"])


# -- the Unbound RPZ test zones (tests/data/rpz/unbound) ---------------------------------------
UNBOUND_DIR = os.path.join(conftest.DATA_DIR, "rpz", "unbound")


def split_zones(path):
    """The Unbound test files hold several zones, each after a "; ---- zone file" line."""
    if not os.path.isfile(path):
        pytest.skip("%s not in this checkout" % path)
    with open(path) as f:
        text = f.read()
    parts = re.split(r"(?m)^(?=; ---- zone file)", text)
    return [p for p in parts if p.strip()]


def test_unbound_rpz_qname_zones(bulwark, workdir):
    z = split_zones(os.path.join(UNBOUND_DIR, "rpz_qname.zone"))
    assert len(z) == 2
    d = bulwark(feeds=[rpz_feed(workdir, "ub1", z[0]), rpz_feed(workdir, "ub2", z[1])],
                allowlist=[])
    # "a CNAME ." (the duplicate "a CNAME *." after it is bad: the first is kept); zone 2's
    # TXT for a. comes too late
    assert_nxdomain(d.query("a.", "A"), "ub1")
    assert_nxdomain(d.query("a.", "TXT"), "ub1")
    # "b.a CNAME *.": the exact name beats "*.a"
    assert_nodata(d.query("b.a.", "TXT"), "ub1")
    # "*.a TXT ...": wildcard local data
    r = d.query("x.a.", "TXT")
    assert_policy(r, dns.rcode.NOERROR, "ub1", "malware")
    rrset = dnsutil.answer_rrset(r, "x.a.", "TXT")
    assert rrset is not None and [rd.to_text() for rd in rrset] == ['"wildcard local data"'], \
        describe(r)
    assert_nodata(d.query("x.a.", "A"), "ub1")
    # "c.a CNAME rpz-passthru.": resolved normally (the fake root says NXDOMAIN), no EDE 15
    r = d.query("c.a.", "TXT")
    assert r.rcode() == dns.rcode.NXDOMAIN and dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), \
        describe(r)
    # "c.g": ub1 passthru before ub2's NXDOMAIN
    r = d.query("c.g.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), \
        describe(r)
    # zone 2: local data, TCP-only, drop
    r = d.query("d.", "TXT")
    assert_policy(r, dns.rcode.NOERROR, "ub2", "malware")
    assert [rd.to_text() for rs in r.answer for rd in rs] == ['"local data 2nd zone"'], describe(r)
    r = d.query("tcp.", "A")
    assert r.flags & dns.flags.TC and not r.answer, describe(r)
    assert dnsutil.no_answer(d.port, "drop.", "A", timeout=1.0), "rpz-drop. answered"


def test_unbound_rpz_respip_zones(bulwark, workdir):
    z = split_zones(os.path.join(UNBOUND_DIR, "rpz_respip.zone"))
    assert len(z) == 2
    d = bulwark(feeds=[rpz_feed(workdir, "ubip1", z[0]), rpz_feed(workdir, "ubip2", z[1])],
                allowlist=[])
    # 10.0.0.0/8 CNAME *.  -> NODATA
    assert_nodata(d.query("ub-nodata8.insecure.tld.", "A"), "ubip1", via="address 10.0.0.5")
    # 10.10.0.0/16 CNAME . -> NXDOMAIN (the longer prefix beats /8)
    assert_nxdomain(d.query("ub-nx16.insecure.tld.", "A"), "ubip1", via="address 10.10.0.5")
    # 10.10.10.0/24 rpz-drop.
    assert dnsutil.no_answer(d.port, "ub-drop24.insecure.tld.", "A", timeout=1.0), \
        "10.10.10.0/24 rpz-drop. answered"
    # 10.10.10.10/32 rpz-passthru. (beats the /24 drop, and ubip2's local data)
    assert_resolves(d.query("ub-pass32.insecure.tld.", "A"), addrs=["10.10.10.10"])
    # 10.1.1.1/32 rpz-tcp-only. (beats /8 NODATA)
    r = d.query("ub-tcp32.insecure.tld.", "A")
    assert r.flags & dns.flags.TC and not r.answer, describe(r)
    assert_resolves(d.query("ub-tcp32.insecure.tld.", "A", tcp=True), addrs=["10.1.1.1"])
    # 192.0.2.123/32 in ubip2: local data A 203.0.113.123
    r = d.query("ub-ld32.insecure.tld.", "A")
    assert_policy(r, dns.rcode.NOERROR, "ubip2", "malware", via="address 192.0.2.123")
    assert dnsutil.addresses(r) == ["203.0.113.123"], describe(r)
    # IPv6: 2001:db8::/32 NODATA, 2001:db8:aa::/48 NXDOMAIN, a /128 with local data AAAA
    assert_nodata(d.query("ub-nodata6.insecure.tld.", "AAAA"), "ubip1",
                  via="address 2001:db8::5")
    assert_nxdomain(d.query("ub-nx6.insecure.tld.", "AAAA"), "ubip1",
                    via="address 2001:db8:aa::5")
    r = d.query("ub-ld6.insecure.tld.", "AAAA")
    assert_policy(r, dns.rcode.NOERROR, "ubip1", "malware", via="address 2001:db8:aa:bb:cc::123")
    assert dnsutil.addresses(r, "AAAA") == ["2001:db8::123"], describe(r)
    # an address in no network resolves
    assert_resolves(d.query("www.insecure.tld.", "A"), addrs=["192.0.2.50"])


# -- reload --------------------------------------------------------------------------------------
RELOAD_RPZ = """\
$ORIGIN reload.rpz.test.
$TTL 60
@                        SOA ns hostmaster %d 3600 600 86400 60
@                        NS  ns.example.
bad.insecure.tld         CNAME .
%s
"""


def test_reload_rpz_under_load(bulwark, workdir):
    feed = rpz_feed(workdir, "live", RELOAD_RPZ % (1, ""))
    d = bulwark(feeds=[feed], allowlist=[], watch_interval="0s")  # SIGHUP only
    r = d.query("rpz-new.insecure.tld.", "A")
    assert_resolves(r, addrs=["192.0.2.125"])
    assert_nxdomain(d.query("bad.insecure.tld.", "A"), "live")
    qfile = os.path.join(workdir, "queries.txt")
    with open(qfile, "w") as f:
        f.write("www.insecure.tld A\nbad.insecure.tld A\nrpz-new.insecure.tld A\n"
                "www.secure.tld A\nrpz-new.insecure.tld AAAA\nalias.insecure.tld A\n")
    perf = subprocess.Popen(["dnsperf", "-s", "127.0.0.1", "-p", str(d.port), "-d", qfile,
                             "-l", "4", "-Q", "400", "-c", "4", "-t", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # a Python client too, which checks each answer
    stop = threading.Event()
    seen = {"answered": 0, "lost": 0, "errors": []}

    def loop():
        names = ["www.insecure.tld.", "rpz-new.insecure.tld.", "bad.insecure.tld."]
        i = 0
        while not stop.is_set():
            try:
                dnsutil.query(d.port, names[i % 3], "A", timeout=1.0, source=CLIENT2)
                seen["answered"] += 1
            except dns.exception.Timeout:
                seen["lost"] += 1
            except Exception as e:  # noqa: BLE001
                seen["errors"].append(repr(e))
            i += 1

    t = threading.Thread(target=loop)
    t.start()
    try:
        time.sleep(1.0)
        conftest.write_atomic(feed["file"], RELOAD_RPZ % (2, "rpz-new.insecure.tld CNAME ."))
        d.reload()
        t0 = time.monotonic()
        while True:
            r = d.query("rpz-new.insecure.tld.", "A", timeout=2)
            if r.rcode() == dns.rcode.NXDOMAIN and ede_text(r) == "blocked by live (malware)":
                break
            assert time.monotonic() - t0 < 3.0, "rpz-new not blocked 3s after SIGHUP: " + \
                describe(r)
            time.sleep(0.05)
        assert_nxdomain(d.query("bad.insecure.tld.", "A"), "live")
        out, _ = perf.communicate(timeout=20)
    finally:
        stop.set()
        t.join()
        if perf.poll() is None:
            perf.kill()
            perf.wait()
    assert perf.returncode == 0, out
    sent = re.search(r"Queries sent:\s+(\d+)", out)
    lost = re.search(r"Queries lost:\s+(\d+)", out)
    assert sent and lost, out
    assert int(sent.group(1)) > 1000, out
    assert int(lost.group(1)) == 0, "dnsperf lost queries over the RPZ reload:\n" + out
    assert seen["lost"] == 0 and not seen["errors"] and seen["answered"] > 20, seen
    d.assert_alive()
