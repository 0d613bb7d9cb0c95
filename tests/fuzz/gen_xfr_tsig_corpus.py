#!/usr/bin/env python3
# gen_xfr_tsig_corpus.py - seeds of tests/fuzz/fuzz_xfr.c that get through TSIG: signed as
# the target expects (key xfr-key., hmac-sha256, its secret; the request MAC 32 bytes of
# 0x5a; the time 1700000000), so verification succeeds and the fuzzer starts from the
# paths after it (the MAC chained over several messages, the records). With dnspython:
#   /usr/bin/python3 tests/fuzz/gen_xfr_tsig_corpus.py
import os, struct
import dns.flags, dns.message, dns.opcode, dns.rrset, dns.tsigkeyring
import dns.message as _m

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz_xfr')
NOW = 1700000000
_m.time.time = lambda: NOW  # dnspython signs at time.time()
KR = dns.tsigkeyring.from_text({'xfr-key.': ('hmac-sha256', 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==')})
SOA = ('rpz.test.', 3600, 'IN', 'SOA', 'ns.rpz.test. admin.rpz.test. 7 3600 600 86400 60')


def frame(msgs):
    return b''.join(struct.pack('>H', len(m)) + m for m in msgs)


def answers(parts):
    q = dns.message.make_query('rpz.test.', 'AXFR')
    q.id = 0x2a2a
    out, ctx = [], None
    for i, rrs in enumerate(parts):
        r = dns.message.make_response(q)
        r.request_mac = b'\x5a' * 32
        for t in rrs:
            r.answer.append(dns.rrset.from_text(*t))
        r.use_tsig(KR, keyname='xfr-key.', algorithm='hmac-sha256')
        out.append(r.to_wire(multi=True, tsig_ctx=ctx))
        ctx = r.tsig_ctx
    return out


recs = [('bad.example.rpz.test.', 60, 'IN', 'CNAME', '.'),
        ('*.bad.example.rpz.test.', 60, 'IN', 'CNAME', '.'),
        ('redir.example.rpz.test.', 60, 'IN', 'A', '192.0.2.7'),
        ('32.1.2.0.192.rpz-ip.rpz.test.', 60, 'IN', 'CNAME', 'rpz-drop.')]
ns = ('rpz.test.', 3600, 'IN', 'NS', 'ns.rpz.test.')
one = answers([[SOA, ns] + recs + [SOA]])
three = answers([[SOA, ns], recs[:2], recs[2:] + [SOA]])
open(os.path.join(OUT, 'axfr_tsig_ok'), 'wb').write(bytes([3]) + frame(one))
open(os.path.join(OUT, 'axfr_tsig_multi'), 'wb').write(bytes([3]) + frame(three))
bad = bytearray(three[1])
bad[-40] ^= 1  # inside the second message's MAC
open(os.path.join(OUT, 'axfr_tsig_badmac'), 'wb').write(bytes([3]) + frame([three[0], bytes(bad), three[2]]))

# a NOTIFY signed at NOW (mode 2 | 4: checked with the key)
n = dns.message.make_query('rpz.test.', 'SOA')
n.flags = dns.flags.AA
n.set_opcode(dns.opcode.NOTIFY)
n.answer.append(dns.rrset.from_text(*SOA))
n.use_tsig(KR, keyname='xfr-key.', algorithm='hmac-sha256')
open(os.path.join(OUT, 'notify_tsig_ok'), 'wb').write(bytes([6]) + frame([n.to_wire()]))
