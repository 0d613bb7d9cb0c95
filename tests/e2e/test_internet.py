"""The fake internet itself (no daemon needed): NSD answers each zone, the signed zones
verify, bogus.tld. does not, and a validating resolver (unbound-host, when installed) sees
secure / bogus / insecure as intended. If these fail, the daemon tests mean nothing."""

import os
import subprocess

import dns.flags
import dns.rcode
import pytest

import dnsutil
import fakenet


def auth_query(addr, name, rdtype, **kw):
    q = dnsutil.make_query(name, rdtype, rd=False, **kw)
    return dnsutil.send(53, q, server=addr, timeout=2)


@pytest.mark.parametrize("origin", sorted(fakenet.ZONE_ADDR))
def test_nsd_serves_zone(internet, origin):
    r = auth_query(fakenet.ZONE_ADDR[origin], origin, "SOA")
    assert r.rcode() == dns.rcode.NOERROR
    assert r.flags & dns.flags.AA
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.SOA


def test_root_refers_to_tld(internet):
    r = auth_query(fakenet.ROOT_ADDR, "www.secure.tld.", "A", do=True)
    assert not r.flags & dns.flags.AA
    kinds = {(rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype)) for rr in r.authority}
    assert ("tld.", "NS") in kinds and ("tld.", "DS") in kinds


def test_tld_has_no_ds_for_insecure(internet):
    r = auth_query("127.53.0.2", "www.insecure.tld.", "A", do=True)
    kinds = {(rr.name.to_text(), dns.rdatatype.to_text(rr.rdtype)) for rr in r.authority}
    assert ("insecure.tld.", "NS") in kinds
    assert ("insecure.tld.", "DS") not in kinds
    assert ("insecure.tld.", "NSEC") in kinds  # signed proof that there is no DS


def test_big_txt_needs_tcp(internet):
    r = auth_query("127.53.0.3", "big.secure.tld.", "TXT", payload=1232)
    assert r.flags & dns.flags.TC
    r = dnsutil.send(53, dnsutil.make_query("big.secure.tld.", "TXT", rd=False),
                     server="127.53.0.3", tcp=True)
    assert len(r.answer[0]) == 12
    assert len(r.to_wire()) > 1232
    r = auth_query("127.53.0.3", "medium.secure.tld.", "TXT", payload=1232)
    assert not r.flags & dns.flags.TC and len(r.answer[0]) == 3
    assert 512 < len(r.to_wire()) < 1232


def test_stale_zone_short_ttl(internet):
    r = auth_query("127.53.0.6", "short.stale.tld.", "A")
    assert r.answer[0].ttl == 2


@pytest.mark.parametrize("origin", ["." , "tld.", "secure.tld."])
def test_signed_zone_verifies(internet, origin):
    ok, out = fakenet.verify_zone(internet.signed[origin])
    assert ok, out


def test_bogus_zone_fails_verification(internet):
    ok, out = fakenet.verify_zone(internet.signed["bogus.tld."])
    assert not ok
    assert "www.bogus.tld" in out


def test_trust_anchor_is_root_ds(internet):
    with open(internet.trust_anchor) as f:
        text = f.read()
    fields = text.split()
    assert fields[0] == "." and "DS" in fields
    r = auth_query(fakenet.ROOT_ADDR, ".", "DNSKEY", do=True)
    assert r.answer


UNBOUND_CASES = [
    ("www.secure.tld", "has address 192.0.2.10 (secure)"),
    ("nonexist.secure.tld", "NXDOMAIN). (secure)"),
    ("www.bogus.tld", "(BOGUS (security failure))"),
    ("www.insecure.tld", "has address 192.0.2.50 (insecure)"),
    ("to-evil-cross.secure.tld", "alias for www.evil-target.insecure.tld. (insecure)"),
]


@pytest.mark.parametrize("name,expect", UNBOUND_CASES)
def test_unbound_host_validates(internet, tmp_path, name, expect):
    """An independent validator (libunbound's unbound-host) agrees on the chain of trust."""
    if not fakenet.tool_available("unbound-host"):
        pytest.skip("unbound-host not installed (apt-get install unbound-host)")
    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n    do-not-query-localhost: no\n    root-hints: %s\n"
                    % internet.root_hints)
    p = subprocess.run(["unbound-host", "-v", "-t", "A", "-C", str(conf), "-f",
                        internet.trust_anchor, name], capture_output=True, text=True,
                       timeout=20)
    assert expect in p.stdout, p.stdout + p.stderr
