#!/usr/bin/env python3
# gen_corpus.py - regenerates the seed corpora of the dns fuzz targets (and the byte arrays
# used in tests/unit/test_dns.c) with dnspython: /usr/bin/python3 tests/fuzz/gen_corpus.py
import os, struct, sys
import dns.message, dns.rrset, dns.edns, dns.flags, dns.rcode, dns.name, dns.opcode, dns.rdatatype

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus')
Q = os.path.join(root, 'fuzz_query'); A = os.path.join(root, 'fuzz_answer')
os.makedirs(Q, exist_ok=True); os.makedirs(A, exist_ok=True)
out = {}

def w(d, name, b):
    open(os.path.join(d, name), 'wb').write(b)
    out[(d, name)] = b

def q(name, t='A', **kw):
    m = dns.message.make_query(name, t, **kw)
    m.id = 0x1234
    return m

# ---- queries ----
w(Q, 'plain_a', q('www.example.com', 'A', use_edns=False).to_wire())
w(Q, 'edns', q('www.example.com', 'A', use_edns=0, payload=1232).to_wire())
w(Q, 'edns_do', q('www.example.com', 'AAAA', use_edns=0, payload=4096, want_dnssec=True).to_wire())
w(Q, 'edns_padding', q('www.example.com', 'A', use_edns=0, payload=1232,
   options=[dns.edns.GenericOption(12, b'\0' * 20)]).to_wire())
w(Q, 'edns_cookie', q('example.org', 'MX', use_edns=0, payload=1232,
   options=[dns.edns.GenericOption(10, bytes(range(8)))]).to_wire())
w(Q, 'edns_ecs', q('example.org', 'A', use_edns=0, payload=512,
   options=[dns.edns.ECSOption('192.0.2.0', 24)]).to_wire())
# dnsmasq's add-mac (65001, 6 bytes), alone, beside other options, and with a bad length
mac = dns.edns.GenericOption(65001, bytes.fromhex('02005e0053aa'))
w(Q, 'edns_mac', q('www.example.com', 'A', use_edns=0, payload=1232, options=[mac]).to_wire())
w(Q, 'edns_mac_many', q('www.example.com', 'AAAA', use_edns=0, payload=1232, want_dnssec=True,
   options=[dns.edns.ECSOption('2001:db8::', 56), dns.edns.GenericOption(10, bytes(range(8))), mac,
            dns.edns.GenericOption(12, b'\0' * 9)]).to_wire())
w(Q, 'edns_mac_short', q('www.example.com', 'A', use_edns=0, payload=1232,
   options=[dns.edns.GenericOption(65001, b'\x02\x00\x5e')]).to_wire())
m = q('www.example.com', 'A', use_edns=0, payload=1232); m.use_edns(1, payload=1232)
w(Q, 'edns_v1', m.to_wire())
w(Q, 'edns_small', q('www.example.com', 'A', use_edns=0, payload=100).to_wire())
w(Q, 'any', q('example.com', 'ANY').to_wire())
w(Q, 'axfr', q('example.com', 'AXFR', use_edns=False).to_wire())
w(Q, 'mixed_case', q('WwW.ExAmPlE.CoM', 'A', use_edns=0).to_wire())
w(Q, 'root_ns', q('.', 'NS', use_edns=0, want_dnssec=True).to_wire())
w(Q, 'https', q('svc.example.net', 'HTTPS', use_edns=0).to_wire())
m = q('example.com', 'TXT', use_edns=0); m.flags |= dns.flags.CD
w(Q, 'txt_cd', m.to_wire())
lab63 = 'a' * 63
w(Q, 'label63', q(lab63 + '.example', 'A').to_wire())
long = '.'.join(['b' * 63] * 3 + ['c' * 61])  # 4*64 - 2 + 1 = 255 wire bytes
w(Q, 'name255', q(long, 'A', use_edns=False).to_wire())
m = q('example.com', 'SOA', use_edns=False); m.set_opcode(dns.opcode.NOTIFY)
w(Q, 'opcode_notify', m.to_wire())

base = q('www.example.com', 'A', use_edns=False).to_wire()
hdr, body = base[:12], base[12:]
def hdr_with(qd=1, an=0, ns=0, ar=0, flags=0x0100):
    return struct.pack('>HHHHHH', 0x1234, flags, qd, an, ns, ar)
opt = b'\x00' + struct.pack('>HHIH', 41, 1232, 0, 0)
w(Q, 'bad_qr', hdr_with(flags=0x8100) + body)
w(Q, 'bad_qd0', hdr_with(qd=0))
w(Q, 'bad_qd2', hdr_with(qd=2) + body + body)
w(Q, 'bad_an1', hdr_with(an=1) + body + b'\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02\x03\x04')
w(Q, 'bad_compressed_qname', hdr_with() + b'\x03www\xc0\x0c\x00\x01\x00\x01')
w(Q, 'bad_label_0x40', hdr_with() + b'\x41' + b'x' * 1 + b'\x00\x00\x01\x00\x01')
w(Q, 'bad_truncated', hdr_with() + body[:-3])
w(Q, 'bad_trailing', hdr_with() + body + b'\x00')
w(Q, 'bad_opt_twice', hdr_with(ar=2) + body + opt + opt)
w(Q, 'bad_opt_owner', hdr_with(ar=1) + body + b'\x01a\x00' + opt[1:])
w(Q, 'bad_opt_overrun', hdr_with(ar=1) + body + b'\x00' + struct.pack('>HHIH', 41, 1232, 0, 6) +
  struct.pack('>HH', 12, 8) + b'\0\0')
# additional record whose owner points to itself / forward
w(Q, 'bad_ar_loop', hdr_with(ar=1) + body + b'\xc0' + bytes([12 + len(body)]) +
  struct.pack('>HHIH', 1, 1, 0, 0))
w(Q, 'bad_ar_forward', hdr_with(ar=1) + body + b'\xc0' + bytes([12 + len(body) + 4]) +
  struct.pack('>HHIH', 1, 1, 0, 0) + b'\x00')
# a valid TSIG-shaped record after the OPT, owner compressed to the question
tsig = b'\xc0\x0c' + struct.pack('>HHIH', 250, 255, 0, 4) + b'\x00\x00\x00\x00'
w(Q, 'opt_and_tsig', hdr_with(ar=2) + body + opt + tsig)
w(Q, 'short', hdr_with()[:11])
w(Q, 'name256', hdr_with() + b'\x3f' + b'd' * 63 + b'\x3f' + b'd' * 63 + b'\x3f' + b'd' * 63 +
  b'\x3f' + b'd' * 63 + b'\x00\x00\x01\x00\x01')

# ---- responses ----
def resp(qname, qtype, answer=(), authority=(), additional=(), rcode=0, edns=-1, do=False):
    qm = dns.message.make_query(qname, qtype, use_edns=edns, want_dnssec=do)
    r = dns.message.make_response(qm)
    r.id = 0x0000
    r.set_rcode(rcode)
    for sec, rrs in ((r.answer, answer), (r.authority, authority), (r.additional, additional)):
        for t in rrs:
            sec.append(dns.rrset.from_text(*t))
    return r

def setid(b, i):
    return struct.pack('>H', i) + b[2:]

soa = ('example.com.', 900, 'IN', 'SOA', 'ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300')
sig = 'A 13 3 300 20300101000000 20200101000000 12345 example.com. ' + 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=='
w(A, 'a_simple', resp('www.example.com', 'A', [('www.example.com.', 300, 'IN', 'A', '192.0.2.1', '192.0.2.2')]).to_wire())
cname = resp('www.example.com', 'A', [
    ('www.example.com.', 3600, 'IN', 'CNAME', 'cdn.example.net.'),
    ('cdn.example.net.', 600, 'IN', 'CNAME', 'edge.www.example.com.'),
    ('edge.www.example.com.', 60, 'IN', 'A', '198.51.100.7')])
w(A, 'cname_chain', cname.to_wire())
nx = resp('nope.example.com', 'A', [], [soa], rcode=dns.rcode.NXDOMAIN)
w(A, 'nxdomain_soa', nx.to_wire())
w(A, 'nodata_soa', resp('www.example.com', 'AAAA', [], [soa]).to_wire())
sigr = resp('www.example.com', 'A', [('www.example.com.', 300, 'IN', 'A', '192.0.2.1'),
    ('www.example.com.', 300, 'IN', 'RRSIG', sig)], edns=0, do=True)
w(A, 'rrsig', setid(sigr.to_wire(), 0x0001))
nsec = resp('nope.example.com', 'A', [], [soa,
    ('example.com.', 300, 'IN', 'RRSIG', 'SOA 13 2 900 20300101000000 20200101000000 12345 example.com. AAEC'),
    ('example.com.', 300, 'IN', 'NSEC', 'www.example.com. A NS SOA RRSIG NSEC'),
    ('ckmd.example.com.', 300, 'IN', 'NSEC3', '1 0 10 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG')],
    rcode=dns.rcode.NXDOMAIN, edns=0, do=True)
w(A, 'nsec_nxdomain', setid(nsec.to_wire(), 0x0001))
w(A, 'mx', resp('example.com', 'MX', [('example.com.', 300, 'IN', 'MX', '10 mail.example.com.', '20 mx.other.net.')],
    [], [('mail.example.com.', 300, 'IN', 'A', '192.0.2.25')]).to_wire())
w(A, 'soa', resp('example.com', 'SOA', [soa], [('example.com.', 86400, 'IN', 'NS', 'ns1.example.com.')]).to_wire())
w(A, 'srv', resp('_sip._tcp.example.com', 'SRV', [('_sip._tcp.example.com.', 300, 'IN', 'SRV', '0 5 5060 sip.example.com.')]).to_wire())
w(A, 'ns_glue', resp('example.com', 'NS', [('example.com.', 86400, 'IN', 'NS', 'ns1.example.com.', 'ns2.example.com.')], [],
    [('ns1.example.com.', 300, 'IN', 'A', '192.0.2.53'), ('ns2.example.com.', 300, 'IN', 'AAAA', '2001:db8::53')]).to_wire())
w(A, 'dname', resp('www.old.example', 'A', [('old.example.', 300, 'IN', 'DNAME', 'new.example.'),
    ('www.old.example.', 300, 'IN', 'CNAME', 'www.new.example.'), ('www.new.example.', 300, 'IN', 'A', '192.0.2.9')]).to_wire())
w(A, 'ptr', resp('1.2.0.192.in-addr.arpa', 'PTR', [('1.2.0.192.in-addr.arpa.', 300, 'IN', 'PTR', 'host.example.com.')]).to_wire())
w(A, 'txt_opt', setid(resp('example.com', 'TXT', [('example.com.', 300, 'IN', 'TXT', '"v=spf1 -all"', '"hello world"')], edns=0).to_wire(), 0x0002))
w(A, 'aaaa_mixedcase', setid(resp('WWW.Example.COM', 'AAAA', [('www.example.com.', 300, 'IN', 'AAAA', '2001:db8::1')]).to_wire(), 0x0008))
w(A, 'https', resp('svc.example.net', 'HTTPS', [('svc.example.net.', 300, 'IN', 'HTTPS', '1 . alpn=h2,h3 ipv4hint=192.0.2.1')]).to_wire())
many = resp('many.example.com', 'A', [('many.example.com.', 300, 'IN', 'A', *['10.0.%d.%d' % (i // 250, i % 250) for i in range(100)])])
w(A, 'many_ttls', many.to_wire())
big = resp('big.example.com', 'TXT', [('big.example.com.', 300, 'IN', 'TXT', *['"%s"' % (chr(97 + i) * 200) for i in range(5)])], edns=0)
w(A, 'big_txt', setid(big.to_wire(), 0x0002))
b = bytearray(resp('www.example.com', 'A', [('www.example.com.', 300, 'IN', 'A', '192.0.2.1')]).to_wire())
b[-10:-6] = b'\x80\x00\x00\x01'  # TTL with the top bit set
w(A, 'ttl_topbit', bytes(b))
w(A, 'servfail_empty', resp('www.example.com', 'A', rcode=dns.rcode.SERVFAIL).to_wire())
# hostile
ok = resp('www.example.com', 'A', [('www.example.com.', 300, 'IN', 'A', '192.0.2.1')]).to_wire()
ans_at = 12 + 17 + 4
w(A, 'bad_owner_loop', ok[:ans_at] + b'\xc0' + bytes([ans_at]) + ok[ans_at + 2:])
w(A, 'bad_owner_forward', ok[:ans_at] + b'\xc0' + bytes([ans_at + 2]) + ok[ans_at + 2:])
w(A, 'bad_truncated', ok[:-2])
w(A, 'bad_trailing', ok + b'\x00')
w(A, 'bad_rdlen', ok[:-6] + b'\x00\x05' + ok[-4:])
w(A, 'bad_qd0', ok[:4] + b'\x00\x00' + ok[6:])
cn = resp('www.example.com', 'CNAME', [('www.example.com.', 300, 'IN', 'CNAME', 'x.example.com.')]).to_wire()
w(A, 'bad_cname_rdata_short', cn[:-4] + b'\x00\x01\x00')  # rdlen 1 on a name
w(A, 'bad_two_opt', setid(cn[:10] + b'\x00\x02' + cn[12:] + opt + opt, 0x0002))

# C arrays for the unit tests
if len(sys.argv) > 1:
    with open(sys.argv[1], 'w') as f:
        for (d, name), b in sorted(out.items()):
            pre = 'q_' if d == Q else 'r_'
            f.write('static const uint8_t %s%s[] = {' % (pre, name))
            for i, x in enumerate(b):
                if i % 12 == 0:
                    f.write('\n\t')
                f.write('0x%02x,%s' % (x, '' if i % 12 == 11 or i == len(b) - 1 else ' '))
            f.write('\n};\n')
print(len([k for k in out if k[0] == Q]), len([k for k in out if k[0] == A]))
