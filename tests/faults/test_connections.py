"""Case 7: 10,000 idle TCP connections and 1,000 slow-loris TLS clients (DoT and DoH), while
other clients get answers.

The daemon (2 workers, tcp-max-connections 4096 per worker and listener, the default
per-client share 4096/16 = 256, tcp-idle-timeout 60s, tls-handshake-timeout 2s) gets:
  idle        10,000 TCP connections to the DNS port that never send a byte, from 200
              addresses 127.10.x.y (50 each, under the per-client share): more than the
              8,192 slots, so the least recently active ones are closed for newer ones
  slow-loris  500 DoT and 500 DoH connections from 127.20.x.y sending a TLS ClientHello one
              byte a second (they are closed by the handshake timeout and come back)
Meanwhile: dnsperf (UDP, 1000 qps), a TCP client on a fresh connection every 50 ms, a DoT
client and a DoH client (curl) every 200 ms. Checks: >= 99.9 % of each answered within 2 s;
the daemon alive and answering afterwards. The run raises the open-file limit (run.sh).
"""

import os
import socket
import ssl
import subprocess
import threading
import time

import dns.message
import dns.rcode

import dnsutil
from conftest import e2e, phase

IDLE = 10000
LORIS = 1000


def certs(d):
    def openssl(*a):
        subprocess.run(["openssl"] + list(a), cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=faults CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "srv.key", "-out", "srv.csr", "-subj", "/CN=dns.example")
    with open(os.path.join(d, "srv.ext"), "w") as f:
        f.write("subjectAltName=DNS:dns.example,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "srv.pem", "-days", "2", "-extfile", "srv.ext")
    return [os.path.join(d, x) for x in ("ca.pem", "srv.pem", "srv.key")]


def src(net, i):
    return "127.%d.%d.%d" % (net, i // 250, 1 + i % 250)


class Loris(threading.Thread):
    """LORIS connections to the DoT and DoH ports, one byte of a ClientHello a second;
    a connection the server closed is made again."""
    HELLO = bytes.fromhex("160301020001") + os.urandom(512)

    def __init__(self, ports):
        super().__init__(daemon=True)
        self.ports, self.stop, self.reconnects = ports, False, 0
        self.socks = [None] * LORIS

    def connect(self, i):
        s = socket.socket()
        s.setblocking(True)
        s.settimeout(1)
        s.bind((src(20, i // 10), 0))  # 10 connections per address
        try:
            s.connect(("127.0.0.1", self.ports[i % 2]))
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        return [s, 0]

    def run(self):
        while not self.stop:
            t = time.monotonic()
            for i in range(LORIS):
                c = self.socks[i]
                if c is None:
                    self.socks[i] = c = self.connect(i)
                    if c is None:
                        continue
                try:
                    c[0].send(self.HELLO[c[1]:c[1] + 1])
                    c[1] = min(c[1] + 1, len(self.HELLO) - 1)
                except OSError:
                    c[0].close()
                    self.socks[i] = None
                    self.reconnects += 1
            time.sleep(max(0.0, 1 - (time.monotonic() - t)))
        for c in self.socks:
            if c:
                c[0].close()


class Prober(threading.Thread):
    def __init__(self, fn, every):
        super().__init__(daemon=True)
        self.fn, self.every, self.stop = fn, every, False
        self.ok, self.fail, self.worst, self.errors = 0, 0, 0.0, []

    def run(self):
        while not self.stop:
            t = time.monotonic()
            try:
                self.fn()
                took = time.monotonic() - t
                self.worst = max(self.worst, took)
                if took <= 2.0:
                    self.ok += 1
                else:
                    self.fail += 1
            except Exception as e:  # noqa: BLE001 - every failure counts
                self.fail += 1
                self.errors.append(repr(e))
            time.sleep(max(0.0, self.every - (time.monotonic() - t)))

    def summary(self):
        n = self.ok + self.fail
        return "%d/%d answered within 2 s (worst %.0f ms)%s" % (
            self.ok, n, 1000 * self.worst, (", errors: %s" % self.errors[:3]) if self.errors else "")


def test_idle_tcp_and_slow_loris_tls(internet, bulwark, load, workdir):
    ca, cert, key = certs(workdir)
    ports = {}

    def config(port, w):
        ports["dot"] = e2e.free_port()
        ports["doh"] = e2e.free_port()
        listen = [{"address": "127.0.0.1", "port": port},
                  {"address": "127.0.0.1", "port": ports["dot"], "transport": "dot",
                   "tls-cert": cert, "tls-key": key, "tls-name": "dns.example"},
                  {"address": "127.0.0.1", "port": ports["doh"], "transport": "doh",
                   "tls-cert": cert, "tls-key": key, "tls-name": "dns.example"}]
        return e2e.default_config(internet, port, workdir, server={
            "listen": listen, "tcp-max-connections": 4096, "tcp-idle-timeout": "60s",
            "tls-handshake-timeout": "2s"})
    d = bulwark(config, workdir=workdir)
    seconds = phase(25, 15)
    ld = load(d.port, ["www.insecure.tld", "evil-target.insecure.tld", "alias.insecure.tld"],
              qps=1000, seconds=seconds)
    idle = []
    t = time.monotonic()
    for i in range(IDLE):
        s = socket.socket()
        s.bind((src(10, i // 50), 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", d.port))
            idle.append(s)
        except OSError:
            s.close()
    print("idle: %d connections made in %.1fs" % (len(idle), time.monotonic() - t))
    loris = Loris((ports["dot"], ports["doh"]))
    loris.start()
    ctx = ssl.create_default_context(cafile=ca)
    q = dns.message.make_query("www.insecure.tld", "A")
    wire = q.to_wire()

    def tcp():
        m = dnsutil.query(d.port, "www.insecure.tld", tcp=True, timeout=2)
        assert m.rcode() == dns.rcode.NOERROR

    def dot():
        with socket.create_connection(("127.0.0.1", ports["dot"]), timeout=2) as raw:
            with ctx.wrap_socket(raw, server_hostname="dns.example") as s:
                s.sendall(dnsutil.frame(wire))
                m = dns.message.from_wire(dnsutil.tcp_read_msg(s))
                assert m.rcode() == dns.rcode.NOERROR

    def doh():
        p = subprocess.run(["curl", "-s", "--max-time", "2", "--cacert", ca, "--http2",
                            "-H", "content-type: application/dns-message", "--data-binary",
                            "@-", "--resolve", "dns.example:%d:127.0.0.1" % ports["doh"],
                            "-o", "/dev/null", "-w", "%{http_code}",
                            "https://dns.example:%d/dns-query" % ports["doh"]],
                           input=wire, capture_output=True, timeout=5)
        assert p.stdout == b"200", p
    probes = {"tcp": Prober(tcp, 0.05), "dot": Prober(dot, 0.2), "doh": Prober(doh, 0.2)}
    for p in probes.values():
        p.start()
    time.sleep(max(1.0, seconds - (time.monotonic() - t) - 1))
    for p in probes.values():
        p.stop = True
    loris.stop = True
    for p in probes.values():
        p.join(10)
    loris.join(10)
    still = 0
    for s in idle:
        try:
            s.setblocking(False)
            if s.recv(1) == b"":
                continue  # closed by the daemon (made room for newer ones)
        except BlockingIOError:
            still += 1
        except OSError:
            pass
    for s in idle:
        s.close()
    ld.result().check()
    for name, p in probes.items():
        print("%s: %s" % (name, p.summary()))
    print("idle connections still open at the end: %d of %d; slow-loris reconnects %d"
          % (still, len(idle), loris.reconnects))
    for name, p in probes.items():
        n = p.ok + p.fail
        assert n > 0 and p.ok >= 0.999 * n, "%s client: %s" % (name, p.summary())
    d.assert_alive()
    assert d.query("www.insecure.tld", tcp=True).rcode() == dns.rcode.NOERROR
