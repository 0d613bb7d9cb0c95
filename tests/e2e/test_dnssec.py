"""DNSSEC validation against the fake internet's chain of trust (root -> tld. ->
secure.tld. / bogus.tld.): AD on validated answers only when asked (DO or AD), SERVFAIL +
EDE 6 for bogus data, the bogus data itself with CD=1, no AD for an insecure delegation."""

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import dnsutil
from dnsutil import describe


def ad(r):
    return bool(r.flags & dns.flags.AD)


def test_secure_with_do_gets_ad_and_rrsig(resolver):
    r = resolver.query("www.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert ad(r), "no AD on a validated answer (DO=1): " + describe(r)
    assert r.ednsflags & dns.flags.DO, "DO not echoed"
    types = {rr.rdtype for rr in r.answer}
    assert types == {dns.rdatatype.A, dns.rdatatype.RRSIG}, describe(r)


def test_secure_with_ad_gets_ad(resolver):
    r = resolver.query("www.secure.tld.", "AAAA", ad=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert ad(r), "no AD on a validated answer (AD=1 in query): " + describe(r)
    assert all(rr.rdtype != dns.rdatatype.RRSIG for rr in r.answer), \
        "RRSIG to a client that did not set DO: " + describe(r)


def test_secure_without_do_or_ad_no_ad(resolver):
    r = resolver.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert not ad(r), "AD set for a client that asked neither DO nor AD (RFC 6840 5.8)"
    r = resolver.query("www.secure.tld.", "A", edns=None)
    assert not ad(r), describe(r)


def test_secure_over_tcp(resolver):
    r = resolver.query("mail.secure.tld.", "A", do=True, tcp=True)
    assert r.rcode() == dns.rcode.NOERROR and ad(r), describe(r)


def test_secure_nxdomain_is_validated(resolver):
    r = resolver.query("nonexist.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert ad(r), "NXDOMAIN proven by NSEC without AD: " + describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r)


def test_root_dnskey_validated(resolver):
    r = resolver.query(".", "DNSKEY", do=True)
    assert r.rcode() == dns.rcode.NOERROR and ad(r), describe(r)


def test_secure_cname_ad(resolver):
    # alias.secure.tld -> www.secure.tld is all secure
    r = resolver.query("alias.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR and ad(r), describe(r)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_bogus_servfail_ede6(resolver, tcp):
    r = resolver.query("www.bogus.tld.", "A", do=True, tcp=tcp)
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert dnsutil.EDE_BOGUS in dnsutil.ede_codes(r), "want EDE 6, got " + describe(r)
    assert not r.answer, describe(r)
    assert not ad(r)


def test_bogus_servfail_without_do(resolver):
    r = resolver.query("www.bogus.tld.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert dnsutil.EDE_BOGUS in dnsutil.ede_codes(r), describe(r)
    r = resolver.query("www.bogus.tld.", "A", edns=None)
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert r.edns == -1


def test_bogus_with_cd_returns_data(resolver):
    for _ in range(2):  # a miss, then whatever is cached
        r = resolver.query("www.bogus.tld.", "A", do=True, cd=True)
        assert r.rcode() == dns.rcode.NOERROR, describe(r)
        assert dnsutil.addresses(r) == ["192.0.2.41"], describe(r)
        assert not ad(r), "AD on bogus data: " + describe(r)
        assert r.flags & dns.flags.CD, "CD not copied to the answer"
    # and CD does not poison the cache for validating clients
    r = resolver.query("www.bogus.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)


def test_bogus_kdig(resolver):
    p = dnsutil.kdig(resolver.port, "+dnssec", "www.bogus.tld", "A")
    assert "status: SERVFAIL" in p.stdout, p.stdout
    assert "EDE: 6 (DNSSEC Bogus)" in p.stdout, p.stdout
    p = dnsutil.kdig(resolver.port, "+dnssec", "+cd", "www.bogus.tld", "A")
    assert "status: NOERROR" in p.stdout and "192.0.2.41" in p.stdout, p.stdout


def test_secure_with_cd(resolver):
    r = resolver.query("www.secure.tld.", "A", do=True, cd=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.10"]


def test_insecure_no_ad(resolver):
    for kw in ({"do": True}, {"ad": True}):
        r = resolver.query("www.insecure.tld.", "A", **kw)
        assert r.rcode() == dns.rcode.NOERROR, describe(r)
        assert dnsutil.addresses(r) == ["192.0.2.50"], describe(r)
        assert not ad(r), "AD on an insecure delegation: " + describe(r)


def test_kdig_ad_flag(resolver):
    p = dnsutil.kdig(resolver.port, "+dnssec", "www.secure.tld", "A")
    flags = [l for l in p.stdout.splitlines() if l.startswith(";; Flags:")]
    assert flags and " ad" in flags[0], p.stdout
    p = dnsutil.kdig(resolver.port, "+dnssec", "www.insecure.tld", "A")
    flags = [l for l in p.stdout.splitlines() if l.startswith(";; Flags:")]
    assert flags and " ad" not in flags[0], p.stdout


def test_dnssec_off_no_validation(bulwark):
    d = bulwark(dnssec=False)
    r = d.query("www.bogus.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.41"], describe(r)
    assert not ad(r)
    r = d.query("www.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR and not ad(r), describe(r)
