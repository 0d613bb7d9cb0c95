#!/usr/bin/python3
"""Captures the seed corpus of tests/fuzz/fuzz_xfr.c from a real primary (knotd): AXFR,
IXFR (after a knsupdate), signed AXFR and knotd's NOTIFY. Run in a private network
namespace from the repository root:
    unshare -n sh -c 'ip link set lo up; /usr/bin/python3 tests/fuzz/gen_xfr_corpus.py'
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, "tests/e2e")
import dns.message  # noqa: E402
import dns.tsigkeyring  # noqa: E402

import test_xfr  # noqa: E402  (the knotd fixture and its zone)

OUT = "tests/fuzz/corpus/fuzz_xfr"


def frame(msgs):
    return b"".join(struct.pack("!H", len(m)) + m for m in msgs)


def transfer(port, wire):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(struct.pack("!H", len(wire)) + wire)
    msgs, soas = [], 0
    s.settimeout(2)
    try:
        while True:
            m = test_xfr.recv_exact(s, struct.unpack("!H", test_xfr.recv_exact(s, 2))[0])
            msgs.append(m)
    except (socket.timeout, EOFError):
        pass
    s.close()
    return msgs


def main():
    os.makedirs(OUT, exist_ok=True)
    d = tempfile.mkdtemp()
    n = test_xfr.NotifyCatcher()
    k = test_xfr.Knot(d, 5300 + os.getpid() % 500, n.port)
    kr = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", test_xfr.SECRET)})
    try:
        q = dns.message.make_query("rpz.test.", "AXFR")
        q.use_tsig(kr, keyname="xfr-key.", algorithm="hmac-sha256")
        open(f"{OUT}/axfr_signed", "wb").write(bytes([3]) + frame(transfer(k.port, q.to_wire())))
        # the same answer without TSIG checking (mode 0): the records alone
        open(f"{OUT}/axfr", "wb").write(bytes([0]) + frame(transfer(k.port, q.to_wire())))
        k.update("del nx.example.rpz.test. CNAME .", "add nx.example.rpz.test. 60 CNAME rpz-drop.",
                 "add new.example.rpz.test. 60 A 192.0.2.7")
        q = dns.message.make_query("rpz.test.", "IXFR")
        q.authority = [dns.rrset.from_text("rpz.test.", 0, "IN", "SOA", ". . 1 0 0 0 0")]
        q.use_tsig(kr, keyname="xfr-key.", algorithm="hmac-sha256")
        open(f"{OUT}/ixfr", "wb").write(bytes([1]) + frame(transfer(k.port, q.to_wire())))
        while True:
            data, _, reply = n.next()
            m = dns.message.from_wire(data, keyring=kr)
            reply(dns.message.make_response(m).to_wire())
            if m.answer and m.answer[0][0].serial == 2:
                break
        open(f"{OUT}/notify_signed", "wb").write(bytes([6]) + frame([data]))
        open(f"{OUT}/notify_nokey", "wb").write(bytes([2]) + frame([data]))
    finally:
        k.stop()
        n.close()


import dns.rrset  # noqa: E402
main()
