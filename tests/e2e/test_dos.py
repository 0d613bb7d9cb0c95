"""Denial-of-service holes, tried as an attacker would from one allowed address:

- hash flooding: names computed (as the attack did) to share one packet-cache bucket under
  the cache's old fixed-seed hash are sent at 2,000 queries per second while dnsperf
  measures an unrelated cached name; its rate stays within 2x of a control run that sends
  the same number of ordinary random names (with the old hash it fell from ~150k to 85
  queries per second on the development machine);
- connection slots: one client holding its share of idle TCP and DoT connections is
  refused further ones, while another client still gets TCP and DoT answers at once; a
  full listener closes its least recently active idle connection for a newcomer; /metrics
  counts both, and the log says so (rate limited).
"""

import os
import random
import re
import socket
import ssl
import subprocess
import threading
import time

import dns.message
import pytest

import conftest
import dnsutil
from test_encrypted import make_ca, make_cert, other_port, tls_connect, dot_exchange
from test_metrics import free_tcp_port, scrape, value

M64 = (1 << 64) - 1
OLD_SEED = 0x62756C7761726B  # the cache's fixed seed before the hash was keyed
GOLDEN = 0x9E3779B97F4A7C15
BLOCK_ADD = 0x2545F4914F6CDD1D


# -- the cache's old hash, and names that collide under it ----------------------------------
def mix(h):
    h ^= h >> 33
    h = h * 0xFF51AFD7ED558CCD & M64
    h ^= h >> 33
    h = h * 0xC4CEB9FE1A85EC53 & M64
    return h ^ (h >> 33)


def mix_inverse(h):
    h ^= h >> 33
    h = h * pow(0xC4CEB9FE1A85EC53, -1, 1 << 64) & M64
    h ^= h >> 33
    h = h * pow(0xFF51AFD7ED558CCD, -1, 1 << 64) & M64
    return h ^ (h >> 33)


def rotl(h, b):
    return (h << b | h >> (64 - b)) & M64


def word(data, off):
    return int.from_bytes(data[off:off + 8], "little")


def old_hash(data, seed=OLD_SEED):
    """bw_hash() of src/base/base.c (unchanged; the cache used it with OLD_SEED)."""
    total, n, p = len(data), len(data), 0
    h = seed ^ (n * GOLDEN & M64)
    while n >= 8:
        h ^= mix((word(data, p) + BLOCK_ADD) & M64)
        h = rotl(h, 27) * GOLDEN & M64
        p += 8
        n -= 8
    v = 0
    if n:
        if total >= 8:
            v = word(data, p + n - 8)
        elif n >= 4:
            v = int.from_bytes(data[p:p + 4], "little") << 32 | \
                int.from_bytes(data[p + n - 4:p + n], "little")
        else:
            v = data[p] << 16 | data[p + (n >> 1)] << 8 | data[p + n - 1]
    h ^= (v + n) & M64
    return mix(h)


def colliding_names(target, count):
    """Wire names of one 22-byte label whose old hash is target: the first word is chosen,
    the last fixed, the middle one solved by running the hash's steps backwards."""
    ginv = pow(GOLDEN, -1, 1 << 64)
    tail = b"x" * 7 + b"\0"
    h3 = mix_inverse(target)
    h2 = rotl((h3 * ginv) & M64, 64 - 27) ^ mix((word(tail, 0) + BLOCK_ADD) & M64)
    out, ctr = [], 0
    while len(out) < count:
        head = bytes([22]) + bytes(ord("a") + (ctr >> (4 * i) & 15) for i in range(7))
        ctr += 1
        h = OLD_SEED ^ (24 * GOLDEN & M64)
        h ^= mix((word(head, 0) + BLOCK_ADD) & M64)
        h = rotl(h, 27) * GOLDEN & M64
        w2 = (mix_inverse(rotl((h2 * ginv) & M64, 64 - 27) ^ h) - BLOCK_ADD) & M64
        middle = w2.to_bytes(8, "little")
        if any(0x41 <= b <= 0x5A for b in middle):
            continue  # the cache sees names lower-cased
        out.append(head + middle + tail)
    return out


def random_names(count):
    rnd = random.Random(7)
    return [bytes([22]) + bytes(rnd.randrange(0x61, 0x7B) for _ in range(22)) + b"\0"
            for _ in range(count)]


def query_wire(qname, qid):
    # header: id, RD, one question; then the name, type A, class IN
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + qname + \
        b"\x00\x01\x00\x01"


def send_at_rate(port, names, qps, stop):
    """Sends the names (in order, then again) at qps from one UDP socket until stop."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    start, i = time.monotonic(), 0
    while not stop.is_set():
        due = start + i / qps
        now = time.monotonic()
        if due > now:
            time.sleep(min(due - now, 0.01))
        try:
            while True:
                s.recv(4096)  # drain the answers
        except BlockingIOError:
            pass
        if due <= time.monotonic():
            try:
                s.sendto(query_wire(names[i % len(names)], i & 0xFFFF), ("127.0.0.1", port))
            except BlockingIOError:
                pass
            i += 1
    s.close()
    return i


def dnsperf_qps(port, qfile, seconds=3):
    p = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile, "-l",
                        str(seconds), "-c", "1", "-T", "1", "-q", "50"],
                       capture_output=True, text=True, timeout=seconds + 30)
    assert p.returncode == 0, p.stdout + p.stderr
    return float(re.search(r"Queries per second:\s+([\d.]+)", p.stdout).group(1)), p.stdout


def test_old_hash_port_matches_c():
    # the constants bw_hash() gives these names with the old seed (printed by a C build)
    assert old_hash(b"\x03www\x08insecure\x03tld\x00") == 0x6FA49131C3A5BA94
    assert old_hash(b"\x03www\x07example\x03com\x00") == 0x2DC01AC872F7952B
    names = colliding_names(old_hash(b"\x03www\x08insecure\x03tld\x00"), 50)
    assert len(set(names)) == 50
    assert {old_hash(n) for n in names} == {0x6FA49131C3A5BA94}


def test_hash_flood_does_not_slow_other_names(bulwark, workdir):
    d = bulwark(workers=1)
    victim = b"\x03www\x08insecure\x03tld\x00"
    attack = colliding_names(old_hash(victim), 20000)
    control = random_names(20000)
    qfile = os.path.join(workdir, "unrelated.txt")
    with open(qfile, "w") as f:
        f.write("www.insecure.tld A\n")
    assert d.query("www.insecure.tld").rcode() == 0  # cached from here on

    rates = {}
    for kind, names in (("control", control), ("attack", attack)):
        stop = threading.Event()
        sent = []
        t = threading.Thread(target=lambda: sent.append(send_at_rate(d.port, names, 2000, stop)))
        t.start()
        try:
            time.sleep(2)  # the flood is under way (4,000 names in the cache)
            rates[kind], out = dnsperf_qps(d.port, qfile)
        finally:
            stop.set()
            t.join()
        print("%s: the unrelated name at %.0f QPS while %d names were sent\n%s"
              % (kind, rates[kind], sent[0], out))
    assert rates["attack"] * 2 >= rates["control"], rates
    d.stop()


# -- connection slots -------------------------------------------------------------------------
def held_open(sock):
    """True when the server has not closed sock (nothing to read within a short wait)."""
    sock.settimeout(0.3)
    try:
        data = sock.recv(1)
    except (socket.timeout, TimeoutError):
        return True
    except (ConnectionResetError, ssl.SSLError, OSError):
        return False
    return data != b""


def tcp_from(source, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def dot_from(source, port, ca):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.bind((source, 0))
    raw.settimeout(5)
    raw.connect(("127.0.0.1", port))
    ctx = ssl.create_default_context(cafile=ca)
    s = ctx.wrap_socket(raw, server_hostname="dns.example")
    s.settimeout(5)
    return s


@pytest.fixture
def capped(bulwark, internet, tmp_path):
    """A daemon with one worker, TCP and DoT listeners, and /metrics."""
    d = str(tmp_path)
    ca = make_ca(d)
    cert, key = make_cert(d, "server")
    ports = {"metrics": free_tcp_port()}

    def start(server_extra):
        def config(port, workdir):
            ports["dns"] = port
            ports["dot"] = other_port(port, ports["metrics"])
            server = {"listen": [
                {"address": "127.0.0.1", "port": port},
                {"address": "127.0.0.1", "port": ports["dot"], "transport": "dot",
                 "tls-cert": cert, "tls-key": key, "tls-name": "dns.example"}]}
            server.update(server_extra)
            conf = conftest.default_config(internet, port, workdir, workers=1, server=server)
            conf["metrics"] = {"port": ports["metrics"]}
            return conf
        daemon = bulwark(config, workdir=d)
        daemon.ports, daemon.ca = ports, ca
        return daemon
    return start


def test_client_share_tcp_and_dot(capped):
    d = capped({"tcp-max-connections": 64, "tcp-max-connections-per-client": 4})
    ports = d.ports
    held = [tcp_from("127.0.0.1", ports["dns"]) for _ in range(4)]
    held += [dot_from("127.0.0.1", ports["dot"], d.ca) for _ in range(4)]
    extra_tcp = [tcp_from("127.0.0.1", ports["dns"]) for _ in range(6)]
    extra_dot = []
    for _ in range(3):
        try:
            extra_dot.append(dot_from("127.0.0.1", ports["dot"], d.ca))
        except (ssl.SSLError, OSError):
            extra_dot.append(None)  # closed during the handshake: refused
    assert all(held_open(s) for s in held), "the client's share was not kept open"
    assert not any(held_open(s) for s in extra_tcp), "TCP connections beyond the share stayed"
    assert not any(s and held_open(s) for s in extra_dot), "DoT beyond the share stayed"

    # another client is answered at once, over TCP and DoT, while the first holds its share
    t0 = time.monotonic()
    r = dnsutil.kdig(ports["dns"], "+tcp", "-b", "127.0.0.2", "www.insecure.tld")
    assert "status: NOERROR" in r.stdout and "192.0.2.50" in r.stdout, r.stdout + r.stderr
    with dot_from("127.0.0.2", ports["dot"], d.ca) as s:
        msg, _ = dot_exchange(s, dnsutil.make_query("www.insecure.tld"))
        assert dnsutil.addresses(msg) == ["192.0.2.50"], dnsutil.describe(msg)
    assert time.monotonic() - t0 < 3

    samples = scrape(ports["metrics"])
    assert value(samples, "bulwark_connections_refused_total", transport="tcp",
                 reason="client-share") == 6
    assert value(samples, "bulwark_connections_refused_total", transport="dot",
                 reason="client-share") == 3
    assert value(samples, "bulwark_connections_evicted_total", transport="tcp") == 0
    log = d.log_text()
    assert "tcp: refused a connection: the client holds its share" in log, log
    assert "client 127.0.0.0/24" in log, log
    # one line per 10 s per listener, not one per refusal
    assert log.count("tcp: refused a connection") == 1, log
    for s in held + extra_tcp + [s for s in extra_dot if s]:
        s.close()
    d.stop()


def test_full_listener_closes_the_idle_connection(capped):
    d = capped({"tcp-max-connections": 6, "tcp-max-connections-per-client": 4})
    port = d.ports["dns"]
    first = [tcp_from("127.0.0.1", port) for _ in range(4)]
    time.sleep(0.2)
    busy = [tcp_from("127.0.0.3", port) for _ in range(2)]
    for s in busy + first[1:]:  # every connection but first[0] has just asked something
        s.sendall(dnsutil.frame(dnsutil.make_query("www.insecure.tld").to_wire()))
        dnsutil.tcp_read_msg(s)
    # full: the newcomer takes the place of the least recently active idle connection
    r = dnsutil.kdig(port, "+tcp", "-b", "127.0.0.2", "www.insecure.tld")
    assert "status: NOERROR" in r.stdout, r.stdout + r.stderr
    assert not held_open(first[0]), "the least recently active connection was kept"
    assert all(held_open(s) for s in first[1:] + busy)
    samples = scrape(d.ports["metrics"])
    assert value(samples, "bulwark_connections_evicted_total", transport="tcp") == 1
    assert value(samples, "bulwark_connections_refused_total", transport="tcp",
                 reason="full") == 0
    assert "closed an idle connection to make room" in d.log_text()
    for s in first + busy:
        s.close()
    d.stop()


def test_config_rejects_a_share_above_the_cap(workdir):
    path = os.path.join(workdir, "c.yaml")
    with open(path, "w") as f:
        f.write("server:\n  tcp-max-connections: 10\n  tcp-max-connections-per-client: 11\n")
    p = subprocess.run([conftest.bulwark_binary(), "--check-config", path], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert re.search(r"c\.yaml:3:\d+: tcp-max-connections-per-client \(11\) is more than "
                     r"tcp-max-connections \(10\)", p.stderr), p.stderr
