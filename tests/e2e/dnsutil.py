"""tests/e2e/dnsutil.py - query helpers for the end-to-end tests (dnspython, raw sockets,
kdig/dig/dnsperf as subprocesses). Every helper talks to 127.0.0.1 (or another loopback
source/destination) only."""

import random
import socket
import struct
import subprocess

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype

SERVER = "127.0.0.1"

EDE_STALE = 3
EDE_BOGUS = 6
EDE_BLOCKED = 15


def make_query(name, rdtype="A", *, edns=0, payload=1232, do=False, cd=False, ad=False,
               rd=True, qid=None):
    """edns: None = no OPT record, else the EDNS version."""
    if edns is None:
        q = dns.message.make_query(name, rdtype, use_edns=False)
        assert q.edns == -1
        if do:
            raise ValueError("DO needs EDNS")
    else:
        q = dns.message.make_query(name, rdtype, use_edns=False)
        # (make_query's use_edns=1 means "True", i.e. version 0)
        q.use_edns(edns, ednsflags=dns.flags.DO if do else 0, payload=payload)
        assert q.edns == edns
    if not rd:
        q.flags &= ~dns.flags.RD
    if cd:
        q.flags |= dns.flags.CD
    if ad:
        q.flags |= dns.flags.AD
    if qid is not None:
        q.id = qid
    return q


def query(port, name, rdtype="A", *, tcp=False, timeout=5.0, source=None, server=SERVER,
          **kw):
    """One query to the daemon; returns the dns.message.Message (raises on timeout)."""
    q = make_query(name, rdtype, **kw)
    return send(port, q, tcp=tcp, timeout=timeout, source=source, server=server)


def send(port, q, *, tcp=False, timeout=5.0, source=None, server=SERVER):
    if tcp:
        return dns.query.tcp(q, server, port=port, timeout=timeout, source=source)
    return dns.query.udp(q, server, port=port, timeout=timeout, source=source)


def no_answer(port, name, rdtype="A", *, timeout=1.0, source=None, **kw):
    """True when a UDP query gets no answer within timeout."""
    try:
        query(port, name, rdtype, timeout=timeout, source=source, **kw)
    except dns.exception.Timeout:
        return True
    return False


def ede(msg):
    """[(code, text), ...] of the Extended DNS Error options in msg."""
    return [(o.code, o.text or "") for o in msg.options if o.otype == dns.edns.OptionType.EDE]


def ede_codes(msg):
    return [c for c, _ in ede(msg)]


def rcode_text(msg):
    return dns.rcode.to_text(msg.rcode())


def answer_rrset(msg, name, rdtype):
    for rrset in msg.answer:
        if rrset.name == dns.name.from_text(name) and rrset.rdtype == dns.rdatatype.from_text(rdtype):
            return rrset
    return None


def addresses(msg, rdtype="A"):
    t = dns.rdatatype.from_text(rdtype)
    return sorted(rd.to_text() for rrset in msg.answer if rrset.rdtype == t for rd in rrset)


def describe(msg):
    """A compact one-line description for assertion messages."""
    flags = dns.flags.to_text(msg.flags)
    return "rcode=%s flags=[%s] edns=%d ede=%r answer=%r" % (
        rcode_text(msg), flags, msg.edns, ede(msg),
        [rr.to_text() for rr in msg.answer])


def is_blocked(msg):
    return msg.rcode() == dns.rcode.NXDOMAIN and EDE_BLOCKED in ede_codes(msg)


# -- raw packets --------------------------------------------------------------------------
def raw_udp(port, payload, *, timeout=1.0, source=None, server=SERVER):
    """Send bytes over UDP; returns the reply bytes or None on timeout."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout)
        s.sendto(payload, (server, port))
        try:
            data, _ = s.recvfrom(65535)
            return data
        except socket.timeout:
            return None
    finally:
        s.close()


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def tcp_read_msg(sock):
    (ln,) = struct.unpack("!H", recv_exact(sock, 2))
    return recv_exact(sock, ln)


def tcp_connect(port, timeout=5.0, server=SERVER):
    s = socket.create_connection((server, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def frame(wire):
    return struct.pack("!H", len(wire)) + wire


def header(wire):
    """(id, flags, qdcount, ancount, nscount, arcount) of a DNS message."""
    return struct.unpack("!HHHHHH", wire[:12])


def random_id(used=()):
    while True:
        i = random.randrange(1, 65536)
        if i not in used:
            return i


# -- command-line clients -----------------------------------------------------------------
def run_tool(args, timeout=20):
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    return p


def kdig(port, *args, timeout=20):
    return run_tool(["kdig", "@" + SERVER, "-p", str(port), "+time=5", "+retry=0"] + list(args),
                    timeout=timeout)


def dig(port, *args, timeout=20):
    return run_tool(["dig", "@" + SERVER, "-p", str(port), "+time=5", "+tries=1"] + list(args),
                    timeout=timeout)
