#!/usr/bin/env python3
# gen_tcp_conn_corpus.py - writes the seed corpus of tests/fuzz/fuzz_tcp_conn.c: DNS
# queries framed as over TCP (RFC 7766). Input layout: mode byte (1 the client reads late,
# 2 it half-closes at the end), piece size - 1, the client's bytes. The low 2 bits of each
# query's ID tell the target's core: 0 answer, 1 hold then answer, 2 hold then release,
# 3 drop.   /usr/bin/python3 tests/fuzz/gen_tcp_conn_corpus.py
import os, struct
import dns.message

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz_tcp_conn')
os.makedirs(D, exist_ok=True)


def q(action, name='www.example.com', t='A'):
    m = dns.message.make_query(name, t, use_edns=0, payload=1232)
    m.id = 0x4200 | action
    w = m.to_wire()
    return struct.pack('>H', len(w)) + w


def w(name, mode, piece, data):
    open(os.path.join(D, name), 'wb').write(bytes([mode, piece - 1]) + data)


w('one', 0, 256, q(0))
w('pipelined', 0, 256, q(0) + q(1) + q(0, 'example.org', 'AAAA') + q(2))
w('byte-by-byte', 0, 1, q(1) + q(0))
w('over-inflight', 0, 256, b''.join(q(1) for _ in range(8)) + q(0))
w('held-half-close', 2, 256, q(1) + q(2) + q(1))
w('lazy-reader', 1, 64, b''.join(q(i % 2, 'n%d.example' % i) for i in range(40)))
w('dropped', 0, 256, q(3) + q(0))
w('zero-length', 0, 256, b'\x00\x00' + q(0) + b'\x00\x05abc')
w('cut', 2, 256, q(0)[:20])
