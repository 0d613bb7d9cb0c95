"""Coalescing: a name nobody has cached, asked by 100 clients at once, costs one upstream
resolution, however many workers the queries land on (each worker has its own libunbound,
whose mesh only merges that worker's own queries; core/coalesce.c merges across them).

The upstream is a slow authoritative server this test runs on a loopback address of the
test namespace: it answers every A query after 250 ms (a distant server: long enough for
all 100 queries to arrive while the first is still being resolved, shorter than
libunbound's first retransmit timeout of 376 ms) and counts what it is asked, by name.
"""

import socket
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

import conftest
from test_metrics import free_tcp_port, scrape, value

SLOW_ADDR = "127.53.9.1"
DELAY = 0.25


class SlowServer:
    """Answers A queries with 192.0.2.77 (names starting "fail": SERVFAIL) after DELAY."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((SLOW_ADDR, 53))
        self.asked = {}
        self.lock = threading.Lock()
        self.stop = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(wire)
            name = q.question[0].name.to_text().lower()
            with self.lock:
                self.asked[name] = self.asked.get(name, 0) + 1
            threading.Timer(DELAY, self.answer, (q, peer)).start()

    def answer(self, q, peer):
        r = dns.message.make_response(q)
        qname = q.question[0].name
        if qname.to_text().startswith("fail"):
            r.set_rcode(dns.rcode.SERVFAIL)
        elif q.question[0].rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", "192.0.2.77"))
        try:
            self.sock.sendto(r.to_wire(), peer)
        except OSError:
            pass  # closed at the end of the test

    def count(self, name):
        with self.lock:
            return self.asked.get(name, 0)

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def slow():
    s = SlowServer()
    yield s
    s.close()


def herd(port, name, n=100, timeout=6.0):
    """n clients (n sockets, so n source ports) send the same query at once; returns the
    answers (dns.message.Message) in the order they came and the time the last took."""
    socks = []
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("127.0.0.1", port))
        s.settimeout(timeout)
        socks.append(s)
    wire = [dns.message.make_query(name, "A", id=i + 1).to_wire() for i in range(n)]
    t0 = time.monotonic()
    for s, w in zip(socks, wire):
        s.send(w)
    answers = []
    for s in socks:
        try:
            answers.append(dns.message.from_wire(s.recv(4096)))
        except socket.timeout:
            pass
        s.close()
    return answers, time.monotonic() - t0


def slow_config(internet, metrics_port, workers=4):
    def make(port, workdir):
        conf = conftest.default_config(internet, port, workdir, feeds=[], workers=workers,
                                       dnssec=False, serve_stale="0s")
        conf["resolver"] = {"mode": "forward", "dnssec": False,
                            "forward": ["%s@53" % SLOW_ADDR]}
        conf["metrics"] = {"address": "127.0.0.1", "port": metrics_port}
        return conf
    return make


def coalesced(metrics_port):
    return value(scrape(metrics_port), "bulwark_coalesced_total") or 0


def test_hundred_clients_one_resolution(bulwark, internet, slow):
    mport = free_tcp_port()
    d = bulwark(slow_config(internet, mport))
    name = "herd.example.org."
    answers, took = herd(d.port, name)
    assert len(answers) == 100
    for a in answers:
        assert a.rcode() == dns.rcode.NOERROR
        assert [r.address for rr in a.answer for r in rr] == ["192.0.2.77"]
    assert slow.count(name) == 1, "the upstream was asked %d times" % slow.count(name)
    # the queries reached several workers, and those of the others were handed the answer
    assert coalesced(mport) >= 1
    assert took < 2.0
    d.assert_alive()


def test_one_worker_is_libunbound_alone(bulwark, internet, slow):
    """With one worker there is no table: libunbound's mesh does the merging."""
    mport = free_tcp_port()
    d = bulwark(slow_config(internet, mport, workers=1))
    name = "herd1.example.org."
    answers, _ = herd(d.port, name)
    assert len(answers) == 100 and all(a.rcode() == dns.rcode.NOERROR for a in answers)
    assert slow.count(name) == 1
    assert coalesced(mport) == 0


def test_owner_failure_reaches_every_waiter(bulwark, internet, slow):
    """The owner's failure is handed to the queries waiting for it: every client has its
    SERVFAIL when the owner has, none waits for a resolution of its own."""
    mport = free_tcp_port()
    d = bulwark(slow_config(internet, mport))
    name = "fail-herd.example.org."
    answers, took = herd(d.port, name)
    assert len(answers) == 100
    assert all(a.rcode() == dns.rcode.SERVFAIL for a in answers)
    assert took < 4.0
    # one resolution (libunbound tries a SERVFAIL-ing server again a few times)
    first = slow.count(name)
    assert 1 <= first <= 6
    # the SERVFAIL is not cached: asked again, the name is resolved again, once
    answers, _ = herd(d.port, name)
    assert len(answers) == 100 and all(a.rcode() == dns.rcode.SERVFAIL for a in answers)
    assert first < slow.count(name) <= 2 * first
    # the next name is unaffected
    answers, _ = herd(d.port, "after-fail.example.org.", n=10)
    assert len(answers) == 10 and all(a.rcode() == dns.rcode.NOERROR for a in answers)
    d.assert_alive()
