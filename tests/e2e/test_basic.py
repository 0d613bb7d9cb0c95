"""Basic resolution over UDP and TCP, query-name case, QTYPE ANY, EDNS buffer sizes and
truncation (with the TCP retry real clients do), TCP pipelining."""

import socket
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

import dnsutil
from dnsutil import describe


def test_udp_a(resolver):
    q = dnsutil.make_query("www.secure.tld.", "A")
    r = dnsutil.send(resolver.port, q)
    assert r.id == q.id
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert r.flags & dns.flags.QR and r.flags & dns.flags.RA and r.flags & dns.flags.RD
    assert not r.flags & dns.flags.AA
    assert dnsutil.addresses(r) == ["192.0.2.10"], describe(r)


def test_tcp_a_and_aaaa(resolver):
    r = resolver.query("www.insecure.tld.", "AAAA", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r, "AAAA") == ["2001:db8::50"], describe(r)
    r = resolver.query("www.insecure.tld.", "A", tcp=True)
    assert dnsutil.addresses(r) == ["192.0.2.50"], describe(r)


def test_nxdomain_is_not_a_block(resolver):
    r = resolver.query("nonexist.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), describe(r)
    assert any(rr.rdtype == dns.rdatatype.SOA for rr in r.authority), describe(r)


def test_nodata(resolver):
    r = resolver.query("www.insecure.tld.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)


def test_cname_followed(resolver):
    r = resolver.query("alias.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    cname = dnsutil.answer_rrset(r, "alias.insecure.tld.", "CNAME")
    assert cname is not None and cname[0].target == dns.name.from_text("www.insecure.tld."), \
        describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.50"], describe(r)


def test_kdig_tcp(resolver):
    p = dnsutil.kdig(resolver.port, "+tcp", "mail.secure.tld", "A")
    assert p.returncode == 0, p.stderr
    assert "status: NOERROR" in p.stdout, p.stdout
    assert "192.0.2.11" in p.stdout, p.stdout
    assert "(TCP)" in p.stdout, p.stdout


def test_dig_udp(resolver):
    p = dnsutil.dig(resolver.port, "+short", "www.secure.tld", "AAAA")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["2001:db8::10"], p.stdout


def _exact_names(r):
    return r.question[0].name.to_text(), [rr.name.to_text() for rr in r.answer]


def test_query_case_preserved_miss_and_hit(resolver):
    """0x20: the question and the owner names come back in the client's case, on the
    cache miss and on the cache hit (a second client with another case)."""
    for qname in ("cAsE.InSeCuRe.TlD.", "CaSe.iNsEcUrE.tLd.", "case.insecure.tld."):
        for tcp in (False, True):
            r = resolver.query(qname, "A", tcp=tcp)
            assert r.rcode() == dns.rcode.NOERROR, describe(r)
            question, owners = _exact_names(r)
            assert question == qname, "question came back as %r, sent %r" % (question, qname)
            assert owners == [qname], "answer owner %r, sent %r" % (owners, qname)
            assert dnsutil.addresses(r) == ["192.0.2.100"]


def test_query_case_preserved_through_cname(resolver):
    r = resolver.query("AlIaS.sEcUrE.tLd.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert r.question[0].name.to_text() == "AlIaS.sEcUrE.tLd."
    assert r.answer[0].name.to_text() == "AlIaS.sEcUrE.tLd.", describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.10"], describe(r)


def test_qtype_any_minimal(resolver):
    """RFC 8482: ANY gets one synthesized HINFO "RFC8482", not the whole node."""
    for tcp in (False, True):
        r = resolver.query("www.secure.tld.", "ANY", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR, describe(r)
        assert len(r.answer) == 1, describe(r)
        rrset = r.answer[0]
        assert rrset.rdtype == dns.rdatatype.HINFO, describe(r)
        assert rrset.name == dns.name.from_text("www.secure.tld.")
        assert len(rrset) == 1 and rrset[0].cpu == b"RFC8482", describe(r)


def test_edns_advertises_1232(resolver):
    for payload in (512, 1232, 4096):
        r = resolver.query("www.secure.tld.", "A", payload=payload)
        assert r.edns == 0, describe(r)
        assert r.payload == 1232, "server advertised %d (client sent %d)" % (r.payload, payload)


def test_no_edns_no_opt(resolver):
    r = resolver.query("www.secure.tld.", "A", edns=None)
    assert r.rcode() == dns.rcode.NOERROR
    assert r.edns == -1, "answer to a query without EDNS carries an OPT record"


def test_truncation_without_edns(resolver):
    """medium TXT is ~700 bytes: truncated at 512 (no EDNS), whole at 1232."""
    r = resolver.query("medium.secure.tld.", "TXT", edns=None)
    assert r.flags & dns.flags.TC, describe(r)
    assert len(r.to_wire()) <= 512
    r = resolver.query("medium.secure.tld.", "TXT", payload=1232)
    assert not r.flags & dns.flags.TC, describe(r)
    assert r.rcode() == dns.rcode.NOERROR and len(r.answer[0]) == 3, describe(r)


def test_truncation_with_edns(resolver):
    """big TXT is ~2.5 KB: truncated at the client's 1232 and at 512."""
    for payload in (512, 1232):
        q = dnsutil.make_query("big.secure.tld.", "TXT", payload=payload)
        wire = dnsutil.raw_udp(resolver.port, q.to_wire(), timeout=5)
        assert wire is not None, "no answer"
        assert len(wire) <= payload, "%d-byte answer to a %d-byte buffer" % (len(wire), payload)
        r = dns.message.from_wire(wire)
        assert r.flags & dns.flags.TC, describe(r)


def test_tcp_gets_whole_big_answer(resolver):
    r = resolver.query("big.secure.tld.", "TXT", tcp=True)
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert not r.flags & dns.flags.TC
    assert len(r.answer) == 1 and len(r.answer[0]) == 12
    assert len(r.to_wire()) > 1232


def test_kdig_retries_over_tcp(resolver):
    p = dnsutil.kdig(resolver.port, "+bufsize=1232", "big.secure.tld", "TXT")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "truncated reply" in p.stdout + p.stderr and "retrying over TCP" in p.stdout + p.stderr
    assert "status: NOERROR" in p.stdout and "ANSWER: 12" in p.stdout, p.stdout
    assert "(TCP)" in p.stdout


def test_dig_tc_bit_and_retry(resolver):
    p = dnsutil.dig(resolver.port, "+ignore", "+bufsize=1232", "big.secure.tld", "TXT")
    assert p.returncode == 0, p.stderr
    flags = [l for l in p.stdout.splitlines() if l.startswith(";; flags:")]
    assert flags and " tc" in flags[0].split(";")[2], p.stdout
    p = dnsutil.dig(resolver.port, "+bufsize=1232", "big.secure.tld", "TXT")
    assert "Truncated, retrying in TCP mode" in p.stdout, p.stdout
    assert "ANSWER: 12," in p.stdout, p.stdout


def test_tcp_several_queries_one_connection(resolver):
    s = dnsutil.tcp_connect(resolver.port)
    try:
        for name in ("www.secure.tld.", "www.insecure.tld.", "mail.secure.tld."):
            q = dnsutil.make_query(name, "A")
            s.sendall(dnsutil.frame(q.to_wire()))
            r = dns.message.from_wire(dnsutil.tcp_read_msg(s))
            assert r.id == q.id and r.question[0].name == q.question[0].name, describe(r)
            assert r.rcode() == dns.rcode.NOERROR, describe(r)
    finally:
        s.close()


def test_tcp_pipelining(resolver):
    """Queries sent back-to-back on one connection all get answered (any order)."""
    names = [("pipe1.insecure.tld.", "A"), ("pipe2.insecure.tld.", "A"),
             ("www.secure.tld.", "AAAA"), ("nonexist.secure.tld.", "A"),
             ("big.secure.tld.", "TXT"), ("blocked.insecure.tld.", "A"),
             ("alias.secure.tld.", "A"), ("www.bogus.tld.", "A"),
             ("medium.secure.tld.", "TXT"), ("www.insecure.tld.", "MX")]
    sent = {}
    wire = b""
    for name, rdtype in names:
        q = dnsutil.make_query(name, rdtype, qid=dnsutil.random_id(sent))
        sent[q.id] = q
        wire += dnsutil.frame(q.to_wire())
    s = dnsutil.tcp_connect(resolver.port, timeout=10)
    try:
        s.sendall(wire)  # all in one write
        got = {}
        for _ in names:
            r = dns.message.from_wire(dnsutil.tcp_read_msg(s))
            assert r.id in sent, "answer with unknown ID %d" % r.id
            assert r.id not in got, "two answers for ID %d" % r.id
            q = sent[r.id]
            assert r.question[0].name == q.question[0].name
            assert r.question[0].rdtype == q.question[0].rdtype
            got[r.id] = r
    finally:
        s.close()
    assert len(got) == len(names)
    by_name = {(r.question[0].name.to_text(), dns.rdatatype.to_text(r.question[0].rdtype)): r
               for r in got.values()}
    assert dnsutil.addresses(by_name[("pipe1.insecure.tld.", "A")]) == ["192.0.2.102"]
    assert len(by_name[("big.secure.tld.", "TXT")].answer[0]) == 12
    assert by_name[("nonexist.secure.tld.", "A")].rcode() == dns.rcode.NXDOMAIN
    assert dnsutil.is_blocked(by_name[("blocked.insecure.tld.", "A")])


def test_tcp_idle_connection_then_query(resolver):
    """A connection opened and left idle briefly still serves a query."""
    s = dnsutil.tcp_connect(resolver.port)
    try:
        s.settimeout(0.5)
        try:
            assert s.recv(1) == b"", "server sent data unprompted"
        except socket.timeout:
            pass
        s.settimeout(5)
        q = dnsutil.make_query("www.secure.tld.", "A")
        s.sendall(dnsutil.frame(q.to_wire()))
        r = dns.message.from_wire(dnsutil.tcp_read_msg(s))
        assert r.id == q.id and dnsutil.addresses(r) == ["192.0.2.10"]
    finally:
        s.close()


def test_ttl_decrements_in_cache(resolver):
    r1 = resolver.query("ttl.insecure.tld.", "A")
    assert r1.rcode() == dns.rcode.NOERROR and r1.answer, describe(r1)
    assert 0 < r1.answer[0].ttl <= 300, describe(r1)
    time.sleep(1.1)
    r2 = resolver.query("ttl.insecure.tld.", "A")
    assert r2.answer and 0 < r2.answer[0].ttl < r1.answer[0].ttl, \
        "TTL %d then %d a second later" % (r1.answer[0].ttl, r2.answer[0].ttl)


def test_still_alive(resolver):
    resolver.assert_alive()


def test_ipv6_listener(bulwark):
    def config(port, d):
        import conftest
        c = conftest.default_config(bulwark.internet, port, d)
        c["server"]["listen"].append({"address": "::1", "port": port})
        c["server"]["access-control"].append({"network": "::1/128", "action": "allow"})
        return c
    d = bulwark(config)
    for tcp in (False, True):
        r = dnsutil.query(d.port, "www.secure.tld.", "A", tcp=tcp, server="::1")
        assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["192.0.2.10"], \
            describe(r)
        r = dnsutil.query(d.port, "blocked.insecure.tld.", "A", tcp=tcp, server="::1")
        assert dnsutil.is_blocked(r), describe(r)


def test_forward_mode(bulwark, resolver):
    """A second daemon forwarding to the first: answers and blocks (its own feeds)."""
    def config(port, d):
        import conftest
        c = conftest.default_config(bulwark.internet, port, d, feeds=[])
        c["resolver"] = {"mode": "forward", "dnssec": True,
                         "trust-anchor": bulwark.internet.trust_anchor,
                         "forward": ["127.0.0.1@%d" % resolver.port]}
        return c
    fwd = bulwark(config)
    r = fwd.query("www.secure.tld.", "A", do=True)
    assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["192.0.2.10"], describe(r)
    assert r.flags & dns.flags.AD, "validated answer through the forwarder lacks AD: " + describe(r)
    r = fwd.query("www.bogus.tld.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    # the upstream daemon blocks; the forwarder passes its NXDOMAIN on
    r = fwd.query("blocked.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)


def test_ipv6_upstream_auto_follows_routes(bulwark):
    """resolver.ipv6: auto (the default) asks name servers over IPv6 only where the host has
    a route to the IPv6 internet: the test namespace has none (only ::1), so v6only.tld.,
    whose one server has only an IPv6 address, is out of reach and the log says why."""
    d = bulwark()
    r = d.query("www.v6only.tld.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert "no route to the IPv6 internet" in d.log_text(), d.log_text()
    r = d.query("www.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)


@pytest.mark.parametrize("value", ["yes", True])
def test_ipv6_upstream_yes(bulwark, value):
    """resolver.ipv6: yes asks over IPv6 whatever the routes: the IPv6-only server answers."""
    def config(port, d):
        import conftest
        return conftest.default_config(bulwark.internet, port, d, resolver={"ipv6": value})
    d = bulwark(config)
    r = d.query("www.v6only.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["192.0.2.60"], describe(r)
    assert "route to the IPv6 internet" not in d.log_text(), d.log_text()
