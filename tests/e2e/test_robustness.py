"""Malformed packets, EDNS version, access control, upstream failures and serve-stale."""

import os
import random
import resource
import socket
import struct
import time

import dns.flags
import dns.message
import dns.rcode
import pytest

import dnsutil
from dnsutil import describe


def still_answers(d):
    d.assert_alive()
    r = d.query("www.secure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["192.0.2.10"], \
        describe(r)


# -- malformed ----------------------------------------------------------------------------
@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x12\x34\x01", b"\xff" * 11,
                                     b"hello world"], ids=lambda g: "%d-bytes" % len(g))
def test_short_garbage_no_answer(resolver, garbage):
    assert dnsutil.raw_udp(resolver.port, garbage, timeout=0.5) is None, \
        "answered %d bytes of garbage" % len(garbage)
    still_answers(resolver)


def broken_question():
    # ID 0x1234, RD, QDCOUNT=1; the question's first label claims 10 bytes, 3 follow
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x0aabc"


@pytest.mark.parametrize("payload", [
    broken_question(),
    # name without its type and class
    struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x03www\x00",
    # a compression pointer pointing at itself
    struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01",
], ids=["label-overrun", "no-qtype", "pointer-loop"])
def test_broken_question_formerr(resolver, payload):
    wire = dnsutil.raw_udp(resolver.port, payload, timeout=2)
    assert wire is not None, "no answer to a header with a broken question"
    qid, flags, qd, an, ns, ar = dnsutil.header(wire)
    assert qid == 0x1234, "answer ID %#x" % qid
    assert flags & 0x8000, "QR not set"
    assert flags & 0x000F == dns.rcode.FORMERR, "rcode %d, want FORMERR (1)" % (flags & 0xF)
    assert an == 0
    still_answers(resolver)


def test_broken_question_over_tcp(resolver):
    s = dnsutil.tcp_connect(resolver.port)
    try:
        s.sendall(dnsutil.frame(broken_question()))
        s.settimeout(2)
        try:
            wire = dnsutil.tcp_read_msg(s)
        except (EOFError, ConnectionError):
            wire = None  # closing the connection is acceptable over TCP
        if wire is not None:
            qid, flags, *_ = dnsutil.header(wire)
            assert qid == 0x1234 and flags & 0xF == dns.rcode.FORMERR
    finally:
        s.close()
    still_answers(resolver)


def test_tcp_truncated_frame_and_close(resolver):
    for data in (b"\x00", b"\x00\x40" + b"x" * 10, b"\xff\xff" + os.urandom(300)):
        s = dnsutil.tcp_connect(resolver.port)
        s.sendall(data)
        s.close()
    still_answers(resolver)


def test_response_not_answered(resolver):
    """A packet with QR=1 is a response: answering it would make loops."""
    q = dnsutil.make_query("www.secure.tld.", "A")
    q.flags |= dns.flags.QR
    assert dnsutil.raw_udp(resolver.port, q.to_wire(), timeout=0.5) is None
    still_answers(resolver)


def test_random_garbage_survives(resolver):
    rng = random.Random(1035)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base = dnsutil.make_query("www.secure.tld.", "A").to_wire()
    try:
        for i in range(500):
            if i % 2:
                pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 600)))
            else:  # mutate a real query
                pkt = bytearray(base)
                for _ in range(rng.randrange(1, 6)):
                    pkt[rng.randrange(len(pkt))] = rng.randrange(256)
                pkt = bytes(pkt[:rng.randrange(1, len(pkt) + 1)])
            s.sendto(pkt, ("127.0.0.1", resolver.port))
    finally:
        s.close()
    time.sleep(0.2)
    still_answers(resolver)


def test_badvers(resolver):
    q = dnsutil.make_query("www.secure.tld.", "A", edns=1)
    assert q.edns == 1
    r = dnsutil.send(resolver.port, q)
    assert r.id == q.id
    assert r.rcode() == dns.rcode.BADVERS, "rcode %s, want BADVERS (16)" % dnsutil.rcode_text(r)
    assert r.edns == 0, "BADVERS answer must carry an OPT of version 0"
    assert not r.answer


def test_badvers_kdig(resolver):
    p = dnsutil.kdig(resolver.port, "+edns=1", "www.secure.tld", "A")
    assert "status: BADVERS" in p.stdout, p.stdout


# -- access control -----------------------------------------------------------------------
def test_acl_first_match_wins(bulwark):
    d = bulwark(acl=[
        {"network": "127.0.0.2/32", "action": "refuse"},
        {"network": "127.0.0.3/32", "action": "drop"},
        {"network": "127.0.0.0/30", "action": "allow"},     # 127.0.0.1-3; .2 and .3 matched first
        {"network": "127.0.0.8/29", "action": "allow"},
    ])
    r = d.query("www.secure.tld.", "A", source="127.0.0.1")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    r = d.query("www.secure.tld.", "A", source="127.0.0.9")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    r = d.query("www.secure.tld.", "A", source="127.0.0.2")
    assert r.rcode() == dns.rcode.REFUSED, describe(r)
    assert not r.answer
    assert dnsutil.no_answer(d.port, "www.secure.tld.", source="127.0.0.3"), \
        "answered a client whose rule is drop"
    # no rule matches 127.0.0.4: refused
    r = d.query("www.secure.tld.", "A", source="127.0.0.4")
    assert r.rcode() == dns.rcode.REFUSED, describe(r)


def test_acl_refuse_all(bulwark):
    d = bulwark(acl=[{"network": "127.0.0.0/8", "action": "refuse"}])
    for tcp in (False, True):
        r = d.query("www.secure.tld.", "A", tcp=tcp)
        assert r.rcode() == dns.rcode.REFUSED, describe(r)
        assert not r.answer
    # blocked names are refused too: the ACL comes before the policy
    r = d.query("blocked.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.REFUSED, describe(r)


# -- upstream failures ----------------------------------------------------------------------
def test_lame_delegation_servfail(resolver):
    """lame.tld. is delegated to a server that answers REFUSED for it."""
    r = resolver.query("www.lame.tld.", "A", timeout=15)
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert dnsutil.ede(r), "SERVFAIL without any EDE: " + describe(r)


def test_unreachable_servfail(resolver):
    """down.tld.'s only server (127.53.0.7) does not exist; nothing cached."""
    t = time.monotonic()
    r = resolver.query("www.down.tld.", "A", timeout=20)
    took = time.monotonic() - t
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert dnsutil.ede(r), "SERVFAIL without any EDE: " + describe(r)
    assert took < 15, "SERVFAIL took %.1fs" % took
    resolver.assert_alive()


def test_serve_stale(internet, bulwark):
    d = bulwark()
    r = d.query("short.stale.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["192.0.2.60"], describe(r)
    assert r.answer[0].ttl <= 2, describe(r)
    internet.stop_role("stale")
    try:
        time.sleep(3.2)  # past the 2 s TTL
        t = time.monotonic()
        r = d.query("short.stale.tld.", "A", timeout=10)
        print("stale answer after %.1fs" % (time.monotonic() - t))
        assert r.rcode() == dns.rcode.NOERROR, "not served stale: " + describe(r)
        assert dnsutil.addresses(r) == ["192.0.2.60"], describe(r)
        assert r.answer[0].ttl == 30, "stale TTL %d, want 30 (RFC 8767)" % r.answer[0].ttl
        assert dnsutil.EDE_STALE in dnsutil.ede_codes(r), "want EDE 3: " + describe(r)
        # a name never resolved in the dead zone: SERVFAIL, nothing stale to give
        t = time.monotonic()
        r = d.query("other.stale.tld.", "A", timeout=20)
        assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
        print("SERVFAIL for other.stale.tld after %.1fs" % (time.monotonic() - t))
    finally:
        internet.start_role("stale")
    # back up: fresh answers again (the stale one may be served until the refresh lands)
    t = time.monotonic()
    deadline = t + 10
    while True:
        r = d.query("short.stale.tld.", "A", timeout=5)
        if not dnsutil.EDE_STALE in dnsutil.ede_codes(r) and r.answer and r.answer[0].ttl <= 2:
            break
        assert time.monotonic() < deadline, "still stale after the server came back: " + describe(r)
        time.sleep(0.5)
    print("fresh again after %.1fs" % (time.monotonic() - t))


def test_serve_stale_off(internet, bulwark):
    d = bulwark(serve_stale="0s")
    r = d.query("short.stale.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    internet.stop_role("stale")
    try:
        time.sleep(3.2)
        r = d.query("short.stale.tld.", "A", timeout=20)
        assert r.rcode() == dns.rcode.SERVFAIL, "stale answer with serve-stale off: " + describe(r)
    finally:
        internet.start_role("stale")


def test_tcp_idle_timeout(bulwark):
    d = bulwark(server={"tcp-idle-timeout": "1s"})
    s = dnsutil.tcp_connect(d.port)
    try:
        q = dnsutil.make_query("www.secure.tld.", "A")
        s.sendall(dnsutil.frame(q.to_wire()))
        assert dns.message.from_wire(dnsutil.tcp_read_msg(s)).id == q.id
        t = time.monotonic()
        s.settimeout(5)
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - t
        assert data == b"", "server sent data on an idle connection"
        assert 0.5 < took < 3.5, "idle connection closed after %.1fs (tcp-idle-timeout 1s)" % took
    except socket.timeout:
        pytest.fail("idle TCP connection still open 5s later (tcp-idle-timeout 1s)")
    finally:
        s.close()
    still_answers(d)


def test_sigterm_under_load_exits_0(bulwark):
    d = bulwark()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(200):
            s.sendto(dnsutil.make_query("www.secure.tld.", "A").to_wire(), ("127.0.0.1", d.port))
        c = dnsutil.tcp_connect(d.port)  # an open TCP connection must not hold the exit
        t = time.monotonic()
        d.stop(timeout=8)
        assert time.monotonic() - t < 8
        c.close()
    finally:
        s.close()


# -- open files ---------------------------------------------------------------------------
def test_open_files_limit_raised(bulwark):
    """Started with a shell's usual soft limit (1,024 open files), the daemon raises it to
    what its workers may hold (every upstream query and connection is a socket): 2 workers
    x (4,096 + 1,024 x 1 listener) + 1,024 = 11,264 (started as root, as here, it may
    raise the hard limit too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        d = bulwark(workers=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open("/proc/%d/limits" % d.pid) as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert int(line.split()[3]) == 11264, line
    assert "open files: limit raised from 1024 to 11264" in d.log_text()
    still_answers(d)
