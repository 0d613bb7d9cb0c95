#!/usr/bin/env python3
# gen_doh_conn_corpus.py - writes the seed corpus of tests/fuzz/fuzz_doh_conn.c: HTTP/2
# frames (HPACK literals, no Huffman) and HTTP/1.1 requests carrying DoH queries, as a
# client would send them. Input layout: mode byte, piece size - 1, the client's bytes.
#   /usr/bin/python3 tests/fuzz/gen_doh_conn_corpus.py
import base64, os, struct
import dns.message

D = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'fuzz_doh_conn')
os.makedirs(D, exist_ok=True)
H2, H1, NOPREFACE, LAZY = 0, 1, 2, 4


def w(name, mode, piece, data):
    open(os.path.join(D, name), 'wb').write(bytes([mode, piece - 1]) + data)


def query(action, name='www.example.com'):
    """a DNS query whose ID tells the fuzz target's core what to do (low 2 bits)"""
    m = dns.message.make_query(name, 'A', use_edns=0, payload=1232)
    m.id = 0x4200 | action
    return m.to_wire()


def hpint(v, prefix, first=0):
    mx = (1 << prefix) - 1
    if v < mx:
        return bytes([first | v])
    out = [first | mx]
    v -= mx
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    out.append(v)
    return bytes(out)


def lit(name, value):  # literal without indexing, new name
    return b'\x00' + hpint(len(name), 7) + name + hpint(len(value), 7) + value


def lit_idx(idx, value):  # literal without indexing, indexed name
    return hpint(idx, 4) + hpint(len(value), 7) + value


def frame(ftype, flags, sid, payload):
    return struct.pack('>I', len(payload))[1:] + bytes([ftype, flags]) + struct.pack('>I', sid) + payload


DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW, CONT = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, PADDED, PRIO = 1, 4, 8, 0x20
settings = frame(SETTINGS, 0, 0, b'')
ack = frame(SETTINGS, 1, 0, b'')


def get_block(q, path='/dns-query'):
    dq = base64.urlsafe_b64encode(q).rstrip(b'=')
    return b'\x82\x87' + lit_idx(1, b'dns.example') + lit_idx(4, path.encode() + b'?dns=' + dq) + \
        lit(b'accept', b'application/dns-message')


def post_block(path='/dns-query'):
    return b'\x83\x87' + lit_idx(1, b'dns.example') + lit_idx(4, path.encode()) + \
        lit_idx(31, b'application/dns-message') + lit(b'content-length', b'%d' % len(query(0)))


def h2_get(sid, q, path='/dns-query'):
    return frame(HEADERS, END_STREAM | END_HEADERS, sid, get_block(q, path))


def h2_post(sid, q, pieces=1):
    out = frame(HEADERS, END_HEADERS, sid, post_block())
    step = (len(q) + pieces - 1) // pieces
    for i in range(0, len(q), step):
        last = i + step >= len(q)
        out += frame(DATA, END_STREAM if last else 0, sid, q[i:i + step])
    return out


w('h2-get', H2, 256, settings + h2_get(1, query(0)))
w('h2-get-clientid', H2, 256, settings + h2_get(1, query(0), '/family/laptop-1'))
w('h2-post', H2, 16, settings + ack + h2_post(1, query(1)))
w('h2-post-split', H2, 7, settings + h2_post(1, query(0), pieces=4))
w('h2-mixed', H2, 64, settings + h2_get(1, query(0)) + h2_get(3, query(1)) + h2_post(5, query(2)) +
  h2_get(7, query(3)) + frame(WINDOW, 0, 0, struct.pack('>I', 65536)) +
  frame(PING, 0, 0, b'12345678') + frame(RST, 0, 3, struct.pack('>I', 8)))
blk = get_block(query(1))
w('h2-continuation', H2, 256, settings + frame(HEADERS, END_STREAM | PRIO, 1,
  struct.pack('>IB', 0, 15) + blk[:10]) + frame(CONT, END_HEADERS, 1, blk[10:]))
w('h2-padded', H2, 256, settings + frame(HEADERS, END_HEADERS | PADDED, 1,
  b'\x04' + post_block() + b'\0' * 4) + frame(DATA, END_STREAM | PADDED, 1, b'\x03' + query(0) + b'\0' * 3) +
  frame(PRIORITY, 0, 3, struct.pack('>IB', 1, 200)))
w('h2-goaway', H2, 256, settings + h2_get(1, query(1)) + frame(GOAWAY, 0, 0, struct.pack('>II', 1, 0)) +
  h2_get(3, query(0)))
w('h2-over-cap', H2, 256, settings + b''.join(h2_get(2 * i + 1, query(1)) for i in range(10)))
w('h2-resets', H2, 128, settings + b''.join(h2_post(2 * i + 1, query(2))[:-len(query(2)) - 9] +
  frame(RST, 0, 2 * i + 1, struct.pack('>I', 8)) for i in range(20)))
w('h2-lazy', H2 | LAZY, 256, settings + b''.join(h2_get(2 * i + 1, query(i % 2)) for i in range(8)))
w('h2-errors', H2, 256, settings + frame(HEADERS, END_STREAM | END_HEADERS, 1,
  b'\x82\x87' + lit_idx(4, b'/nope')) + frame(HEADERS, END_STREAM | END_HEADERS, 3,
  b'\x83\x87' + lit_idx(4, b'/dns-query') + lit_idx(31, b'text/plain')) +
  frame(HEADERS, END_STREAM | END_HEADERS, 5, lit(b':method', b'PUT') + b'\x87' + lit_idx(4, b'/dns-query')))
w('h2-no-preface', H2 | NOPREFACE, 256, b'GET / HTTP/1.1\r\n\r\n')


def h1_get(q, extra=b''):
    dq = base64.urlsafe_b64encode(q).rstrip(b'=')
    return b'GET /dns-query?dns=' + dq + b' HTTP/1.1\r\nHost: dns.example\r\n' + extra + b'\r\n'


def h1_post(q, extra=b''):
    return (b'POST /family/phone HTTP/1.1\r\nHost: dns.example\r\nContent-Type: application/dns-message\r\n'
            b'Content-Length: %d\r\n' % len(q)) + extra + b'\r\n' + q


w('h1-get', H1, 256, h1_get(query(0)))
w('h1-pipeline', H1, 32, h1_get(query(0)) + h1_post(query(1)) + h1_get(query(2)) + h1_get(query(3)))
w('h1-close', H1, 256, h1_post(query(1), b'Connection: close\r\n') + h1_get(query(0)))
w('h1-lazy', H1 | LAZY, 256, b''.join(h1_get(query(i % 2)) for i in range(6)))
w('h1-bad', H1, 256, b'GET /dns-query?dns=AAAA HTTP/1.1\r\n\r\nBREW / HTTP/1.1\r\n\r\n')
