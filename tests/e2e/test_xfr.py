"""RPZ secondary (src/feeds/xfr.h) against a real primary, Knot DNS (knotd), through the
test tool build/tests/xfr_fetch (the daemon side is wired by the feeds framework):

- AXFR with TSIG (hmac-sha256): every record, and the rules the zone text gives;
- a wrong TSIG secret and an unknown key name are refused, nothing returned;
- IXFR after dynamic updates (knsupdate, TSIG): exactly the delta, as records and as rule
  removes/adds; two updates give a chain of two sequences;
- IXFR from a serial the primary's journal no longer has: answered with the whole zone;
  up to date: UPTODATE; a serial newer than the primary's: rollback refused;
- NOTIFY: knotd's own NOTIFY (captured on a UDP socket) is accepted from the primary with
  the key and answered signed; from another address, without the key or with another key
  it is refused;
- a python TCP server replaying a captured AXFR but cutting it short, or answering IXFR
  with NOTIMP (fallback to AXFR), or with a changed record count (garbled).
"""

import os
import queue
import shutil
import socket
import struct
import subprocess
import threading
import time

import dns.message
import dns.query
import dns.rdatatype
import dns.tsigkeyring
import pytest

import conftest

KNOTD = shutil.which("knotd") or "/usr/sbin/knotd"
KNOTC = shutil.which("knotc") or "/usr/sbin/knotc"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA=="
OTHER_SECRET = "b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXI="
KEY = "xfr-key.:hmac-sha256:" + SECRET
ADDR = "127.0.0.1"

ZONE = """\
$ORIGIN rpz.test.
$TTL 60
@                   SOA   ns.rpz.test. hostmaster.rpz.test. 1 3600 600 86400 60
                    NS    ns.rpz.test.
ns                  A     192.0.2.53
nx.example          CNAME .
nodata.example      CNAME *.
*.wild.example      CNAME .
pass.example        CNAME rpz-passthru.
drop.example        CNAME rpz-drop.
tcp.example         CNAME rpz-tcp-only.
local.example       A     192.0.2.1
local.example       A     192.0.2.2
local.example       TXT   "hello world"
redir.example       CNAME walled.garden.
wredir.example      CNAME *.garden.
32.1.2.0.192.rpz-ip CNAME .
24.0.2.0.192.rpz-client-ip CNAME rpz-drop.
ns.bad.example.rpz-nsdname CNAME .
*.bad.example.rpz-nsdname CNAME .
32.5.2.0.192.rpz-nsip CNAME .
128.1.zz.db8.2001.rpz-ip CNAME .
"""
N_RECORDS = 20  # the SOA included
RULES = [
    "rule QNAME ns. LOCAL_DATA type 1 rdlen 4",
    "rule QNAME nx.example. NXDOMAIN",
    "rule QNAME nodata.example. NODATA",
    "rule WILDCARD wild.example. NXDOMAIN",
    "rule QNAME pass.example. PASSTHRU",
    "rule QNAME drop.example. DROP",
    "rule QNAME tcp.example. TCP_ONLY",
    "rule QNAME local.example. LOCAL_DATA type 1 rdlen 4",
    "rule QNAME local.example. LOCAL_DATA type 1 rdlen 4",
    "rule QNAME local.example. LOCAL_DATA type 16 rdlen 12",
    "rule QNAME redir.example. REDIRECT walled.garden.",
    "rule QNAME wredir.example. REDIRECT *.garden.",
    "rule RESPONSE_IP 192.0.2.1/32 NXDOMAIN",
    "rule CLIENT_IP 192.0.2.0/24 DROP",
    "rule NSDNAME ns.bad.example. NXDOMAIN",
    "rule NSDNAME* bad.example. NXDOMAIN",
    "rule NSIP 192.0.2.5/32 NXDOMAIN",
    "rule RESPONSE_IP 2001:db8::1/128 NXDOMAIN",
]

PLAIN = """\
$ORIGIN plain.test.
$TTL 60
@      SOA ns.plain.test. hostmaster.plain.test. 7 3600 600 86400 60
       NS  ns.plain.test.
ns     A   192.0.2.53
""" + "".join(f"name{i}.example CNAME .\n" for i in range(400))


BIG = """\
$ORIGIN big.test.
$TTL 60
@      SOA ns.big.test. hostmaster.big.test. 3 3600 600 86400 60
       NS  ns.big.test.
ns     A   192.0.2.53
""" + "".join(f"some-longer-name-{i}.blocked.example CNAME rpz-drop.\n" for i in range(3000))


def tool():
    b = conftest.bulwark_binary()
    path = os.path.join(os.path.dirname(b), "tests", "xfr_fetch")
    assert os.path.exists(path), f"{path} missing: make {os.path.relpath(path)}"
    return path


def fetch(*args, timeout=30):
    p = subprocess.run([tool(), *args], capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def lines(out, prefix):
    return [l for l in out.splitlines() if l.startswith(prefix)]


class Knot:
    def __init__(self, d, port, notify_port):
        self.d, self.port = d, port
        os.makedirs(f"{d}/storage", exist_ok=True)
        os.makedirs(f"{d}/db", exist_ok=True)
        with open(f"{d}/storage/rpz.test.zone", "w") as f:
            f.write(ZONE)
        with open(f"{d}/storage/plain.test.zone", "w") as f:
            f.write(PLAIN)
        with open(f"{d}/storage/big.test.zone", "w") as f:
            f.write(BIG)
        self.conf = f"{d}/knot.conf"
        with open(self.conf, "w") as f:
            f.write(f"""\
server:
    rundir: "{d}"
    listen: {ADDR}@{port}
    background-workers: 1
    tcp-workers: 1
    udp-workers: 1
log:
  - target: "{d}/knot.log"
    any: debug
database:
    storage: "{d}/db"
key:
  - id: xfr-key.
    algorithm: hmac-sha256
    secret: {SECRET}
remote:
  - id: bulwark
    address: {ADDR}@{notify_port}
    key: xfr-key.
acl:
  - id: signed
    address: 127.0.0.0/8
    key: xfr-key.
    action: [transfer, update]
  - id: open
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: "{d}/storage"
    zonefile-sync: -1
    zonefile-load: difference-no-serial
    journal-content: all
zone:
  - domain: rpz.test.
    file: rpz.test.zone
    acl: signed
    notify: bulwark
  - domain: plain.test.
    file: plain.test.zone
    acl: open
  - domain: big.test.
    file: big.test.zone
    acl: signed
""")
        self.log = open(f"{d}/knotd.out", "w")
        self.proc = subprocess.Popen([KNOTD, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.soa_serial("rpz.test.") is not None and \
                    self.soa_serial("plain.test.") is not None:
                return
            time.sleep(0.2)
        raise RuntimeError("knotd did not start: " + open(f"{d}/knot.log").read()[-2000:])

    def soa_serial(self, zone):
        try:
            q = dns.message.make_query(zone, "SOA")
            r = dns.query.udp(q, ADDR, port=self.port, timeout=1)
            return r.answer[0][0].serial if r.answer else None
        except Exception:
            return None

    def update(self, *cmds):
        script = f"server {ADDR} {self.port}\nzone rpz.test.\n" + "\n".join(cmds) + "\nsend\n"
        p = subprocess.run(["knsupdate", "-y", "hmac-sha256:xfr-key.:" + SECRET],
                           input=script, capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p.stdout + p.stderr

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class NotifyCatcher:
    """Where knotd sends its NOTIFY: UDP and TCP on one port (knotd 3.2 uses TCP)."""

    def __init__(self):
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind((ADDR, 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind((ADDR, self.port))
        self.tcp.listen(8)
        self.got = queue.Queue()
        threading.Thread(target=self.loop_udp, daemon=True).start()
        threading.Thread(target=self.loop_tcp, daemon=True).start()

    def loop_udp(self):
        while True:
            try:
                data, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            self.got.put((data, peer, lambda resp, peer=peer: self.udp.sendto(resp, peer)))

    def loop_tcp(self):
        while True:
            try:
                c, peer = self.tcp.accept()
                c.settimeout(10)
                data = recv_exact(c, struct.unpack("!H", recv_exact(c, 2))[0])
            except (OSError, EOFError):
                return

            def reply(resp, c=c):
                c.sendall(struct.pack("!H", len(resp)) + resp)
                c.close()
            self.got.put((data, peer, reply))

    def next(self, timeout=15):
        return self.got.get(timeout=timeout)

    def close(self):
        self.udp.close()
        self.tcp.close()


@pytest.fixture
def notify_sock():
    n = NotifyCatcher()
    yield n
    n.close()


@pytest.fixture
def knot(tmp_path, notify_sock):
    k = Knot(str(tmp_path / "knot"), conftest.free_port(), notify_sock.port)
    yield k
    k.stop()


def prim(k):
    return f"{ADDR}#{k.port}"


def test_axfr_with_tsig(knot, tmp_path):
    zf = str(tmp_path / "out.zone")
    rc, out, err = fetch("-k", KEY, "-o", zf, "rpz.test.", prim(knot))
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith(f"kind FULL serial 1 records {N_RECORDS} ")
    assert sorted(lines(out, "rule ")) == sorted(RULES)
    assert lines(out, "rules ") == [f"rules {len(RULES)} bad 0"]
    # the zone text is what knotd serves: knotd's own AXFR seen through dnspython agrees
    keyring = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
    z = dns.query.xfr(ADDR, "rpz.test.", port=knot.port, keyring=keyring,
                      keyname="xfr-key.", keyalgorithm="hmac-sha256", relativize=False)
    want = set()
    for m in z:
        for rrset in m.answer:
            for rd in rrset:
                want.add((rrset.name.to_text().lower(), dns.rdatatype.to_text(rrset.rdtype),
                          rd.to_text().lower()))
    got = set()
    for l in open(zf):
        if l.startswith(";"):
            continue
        owner, ttl, cls, rtype, rdata = l.rstrip("\n").split(None, 4)
        got.add((owner.lower(), rtype, rdata.lower()))
    assert got == want


def test_axfr_multi_message_tsig(knot):
    # knotd splits this zone over several messages, each signed over the previous MAC
    rc, out, err = fetch("-k", KEY, "big.test.", prim(knot))
    assert rc == 0, out + err
    kind = lines(out, "kind ")[0].split()
    assert kind[:6] == ["kind", "FULL", "serial", "3", "records", "3003"]
    assert int(kind[7]) > 1, kind  # messages
    assert lines(out, "rules ") == ["rules 3001 bad 0"]
    # the wrong key on the same stream: refused
    rc, out, _ = fetch("-k", "xfr-key.:hmac-sha256:" + OTHER_SECRET, "big.test.", prim(knot))
    assert rc == 1 and "rules" not in out


def test_axfr_without_key_refused(knot):
    rc, out, _ = fetch("rpz.test.", prim(knot))
    assert rc == 1 and out.startswith("error: ") and "rcode" in out
    assert "rule " not in out


def test_wrong_key_refused(knot):
    rc, out, _ = fetch("-k", "xfr-key.:hmac-sha256:" + OTHER_SECRET, "rpz.test.", prim(knot))
    assert rc == 1 and "TSIG error 16" in out, out  # BADSIG from the primary
    rc, out, _ = fetch("-k", "other-key.:hmac-sha256:" + SECRET, "rpz.test.", prim(knot))
    assert rc == 1 and "TSIG error 17" in out, out  # BADKEY
    assert "kind " not in out


def test_tsig_time_checked(knot):
    # our clock 1 hour off: knotd refuses our request with BADTIME
    rc, out, _ = fetch("-k", KEY, "-n", str(int(time.time()) - 3600), "rpz.test.", prim(knot))
    assert rc == 1 and "TSIG error 18" in out, out


def test_ixfr_delta(knot):
    knot.update("del nx.example.rpz.test. CNAME .",
                "add nx.example.rpz.test. 60 CNAME rpz-drop.",
                "del local.example.rpz.test. A 192.0.2.2",
                "add new.example.rpz.test. 60 CNAME .")
    assert knot.soa_serial("rpz.test.") == 2
    rc, out, err = fetch("-k", KEY, "-s", "1", "rpz.test.", prim(knot))
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith("kind DELTA serial 2 records 4 ")
    assert lines(out, "diff ") == ["diff 1 2 del 2 add 2"]
    # each touched owner: its trigger removed, what it holds after the change added; the
    # tool passes no lookup of the owner's other records, so local.example's A 192.0.2.1
    # and TXT (not in the delta) are not re-added here (the feed manager looks them up)
    assert sorted(lines(out, "remove ")) == sorted([
        "remove QNAME nx.example. NXDOMAIN",
        "remove QNAME local.example. NXDOMAIN",
        "remove QNAME new.example. NXDOMAIN"])
    assert sorted(lines(out, "add ")) == sorted([
        "add QNAME nx.example. DROP",
        "add QNAME new.example. NXDOMAIN"])
    # a second update: a chain of two sequences from 1, one from 2
    knot.update("add 24.0.2.0.192.rpz-ip.rpz.test. 60 CNAME *.")
    rc, out, _ = fetch("-k", KEY, "-s", "1", "rpz.test.", prim(knot))
    assert rc == 0 and lines(out, "diff ") == ["diff 1 2 del 2 add 2", "diff 2 3 del 0 add 1"]
    rc, out, _ = fetch("-k", KEY, "-s", "2", "rpz.test.", prim(knot))
    assert rc == 0 and lines(out, "diff ") == ["diff 2 3 del 0 add 1"]
    assert lines(out, "add ") == ["add RESPONSE_IP 192.0.2.0/24 NODATA"]
    # up to date
    rc, out, _ = fetch("-k", KEY, "-s", "3", "rpz.test.", prim(knot))
    assert rc == 0 and lines(out, "kind ")[0].startswith("kind UPTODATE serial 3")
    # we claim a serial ahead of the primary's: a rollback, refused
    rc, out, _ = fetch("-k", KEY, "-s", "9", "rpz.test.", prim(knot))
    assert rc == 1 and "rollback" in out, out


def test_ixfr_applied_to_policy_equals_axfr(knot, tmp_path):
    """The whole secondary path: AXFR -> last-good file -> policy snapshot; IXFR -> rule
    removes/adds (owner lookup in the live snapshot) -> bw_policy_apply_delta -> export.
    The exported rules must be exactly those of a fresh AXFR of the new version."""
    last = str(tmp_path / "last.zone")
    rc, out, err = fetch("-k", KEY, "-o", last, "rpz.test.", prim(knot))
    assert rc == 0, out + err
    knot.update("del local.example.rpz.test. A 192.0.2.2",       # one of three records
                "add local.example.rpz.test. 60 AAAA 2001:db8::7",
                "del nx.example.rpz.test. CNAME .",               # action changed
                "add nx.example.rpz.test. 60 CNAME rpz-tcp-only.",
                "del drop.example.rpz.test. CNAME rpz-drop.",     # removed
                "add *.new.example.rpz.test. 60 CNAME *.garden.",  # new wildcard redirect
                "add 32.9.2.0.192.rpz-nsip.rpz.test. 60 CNAME rpz-passthru.")
    knot.update("del 32.1.2.0.192.rpz-ip.rpz.test. CNAME .",
                "add 32.1.2.0.192.rpz-ip.rpz.test. 60 A 192.0.2.66")  # IP trigger, local data
    exported = str(tmp_path / "export.zone")
    rc, out, err = fetch("-k", KEY, "-s", "1", "-p", last, "-e", exported, "rpz.test.",
                         prim(knot))
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith("kind DELTA serial 3 ")
    assert lines(out, "delta ") == ["delta removes 6 adds 7 bad 0"]
    after_ixfr = sorted(lines(out, "rule "))
    rc, out, err = fetch("-k", KEY, "rpz.test.", prim(knot))
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith("kind FULL serial 3 ")
    assert after_ixfr == sorted(lines(out, "rule "))
    assert "rule QNAME drop.example. DROP" not in after_ixfr
    assert "rule QNAME nx.example. TCP_ONLY" in after_ixfr
    assert after_ixfr.count("rule QNAME local.example. LOCAL_DATA type 1 rdlen 4") == 1
    assert "rule QNAME local.example. LOCAL_DATA type 28 rdlen 16" in after_ixfr
    assert "rule RESPONSE_IP 192.0.2.1/32 LOCAL_DATA type 1 rdlen 4" in after_ixfr


def test_ixfr_answered_with_full_zone(knot):
    knot.update("add new.example.rpz.test. 60 CNAME .")
    # serial 0 is not in knotd's journal (the zone was loaded at 1): the whole zone comes
    rc, out, err = fetch("-k", KEY, "-s", "0", "rpz.test.", prim(knot))
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith(f"kind FULL serial 2 records {N_RECORDS + 1} ")
    assert "ixfr-was-full" in out
    assert "rule QNAME new.example. NXDOMAIN" in lines(out, "rule ")


def test_ixfr_journal_gone(knot):
    knot.update("add new.example.rpz.test. 60 CNAME .")
    p = subprocess.run([KNOTC, "-c", knot.conf, "-f", "zone-purge", "rpz.test.", "+journal"],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    rc, out, err = fetch("-k", KEY, "-s", "1", "rpz.test.", prim(knot))
    assert rc == 0, out + err
    kind = lines(out, "kind ")[0]
    assert kind.startswith("kind FULL serial 2 ") and "ixfr-was-full" in kind


def test_notify_from_knotd(knot, notify_sock, tmp_path):
    knot.update("add new.example.rpz.test. 60 CNAME .")
    # the NOTIFY of the update (knotd also notifies at start-up: skip serial 1's)
    while True:
        data, peer, reply = notify_sock.next()
        m = dns.message.from_wire(data, keyring=dns.tsigkeyring.from_text(
            {"xfr-key.": ("hmac-sha256", SECRET)}))
        if m.answer and m.answer[0][0].serial == 2:
            break
        reply(dns.message.make_response(m).to_wire())
    assert (data[2] >> 3) & 15 == 4  # opcode NOTIFY
    f = str(tmp_path / "notify.bin")
    with open(f, "wb") as fh:
        fh.write(data)
    src = f"{peer[0]}#{peer[1]}"
    rc, out, _ = fetch("notify", "-k", KEY, "rpz.test.", prim(knot), src, f)
    assert rc == 0 and lines(out, "notify ") == ["notify ok zone 0 serial 2"], out
    resp = bytes.fromhex(lines(out, "response ")[0].split()[1])
    keyring = dns.tsigkeyring.from_text({"xfr-key.": ("hmac-sha256", SECRET)})
    req = dns.message.from_wire(data, keyring=keyring)
    # dnspython checks our response's TSIG against the request MAC
    msg = dns.message.from_wire(resp, keyring=keyring, request_mac=req.mac)
    assert msg.id == req.id and msg.opcode() == 4 and msg.flags & 0x8000
    assert msg.question[0].name.to_text() == "rpz.test." and msg.had_tsig
    # knotd accepts it as the answer to its NOTIFY: sent back, it stops retrying
    reply(resp)
    want = f"notify, outgoing, remote {ADDR}@{notify_sock.port}, serial 2"
    deadline = time.time() + 10
    while want not in open(f"{knot.d}/knot.log").read() and time.time() < deadline:
        time.sleep(0.1)
    assert want in open(f"{knot.d}/knot.log").read()  # knotd verified our signed answer
    # not from a primary, without a key, with another key: refused
    rc, out, _ = fetch("notify", "-k", KEY, "rpz.test.", "127.0.0.9", src, f)
    assert rc == 1 and lines(out, "notify ")[0].startswith("notify refused")
    rc, out, _ = fetch("notify", "-k", "xfr-key.:hmac-sha256:" + OTHER_SECRET, "rpz.test.",
                       prim(knot), src, f)
    assert rc == 1 and lines(out, "notify ")[0].startswith("notify refused")
    # knotd's signed NOTIFY to a feed without a key: accepted, unsigned answer
    rc, out, _ = fetch("notify", "rpz.test.", prim(knot), src, f)
    assert rc == 0, out
    # an unsigned NOTIFY to a feed with a key: refused
    unsigned = dns.message.make_query("rpz.test.", "SOA")
    unsigned.set_opcode(4)
    with open(f, "wb") as fh:
        fh.write(unsigned.to_wire())
    rc, out, _ = fetch("notify", "-k", KEY, "rpz.test.", prim(knot), src, f)
    assert rc == 1 and lines(out, "notify ")[0].startswith("notify refused")


# -- a primary that misbehaves: replays knotd's own messages, altered --------------------

def capture_axfr(port, zone):
    s = socket.create_connection((ADDR, port), timeout=10)
    q = dns.message.make_query(zone, "AXFR").to_wire()
    s.sendall(struct.pack("!H", len(q)) + q)
    msgs = []
    while True:
        hdr = recv_exact(s, 2)
        m = recv_exact(s, struct.unpack("!H", hdr)[0])
        msgs.append(m)
        ancount = struct.unpack("!H", m[6:8])[0]
        r = dns.message.from_wire(m, one_rr_per_rrset=True)
        if len(msgs) > 0 and ancount and r.answer[-1].rdtype == dns.rdatatype.SOA and \
                (len(msgs) > 1 or sum(len(x) for x in r.answer) > 1):
            break
    s.close()
    return msgs


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


class Replay:
    """Answers each TCP query with `answer(query_wire)` -> list of raw chunks to send."""

    def __init__(self, answer):
        self.answer = answer
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((ADDR, 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.qtypes = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                q = recv_exact(c, struct.unpack("!H", recv_exact(c, 2))[0])
                self.qtypes.append(dns.message.from_wire(q).question[0].rdtype)
                for chunk in self.answer(q):
                    c.sendall(chunk)
            except Exception:
                pass
            finally:
                c.close()

    def close(self):
        self.srv.close()


def framed(msgs, qid):
    out = []
    for m in msgs:
        m = struct.pack("!H", qid) + m[2:]
        out.append(struct.pack("!H", len(m)) + m)
    return out


def test_truncated_and_garbled_transfers(knot):
    msgs = capture_axfr(knot.port, "plain.test.")
    assert len(msgs) >= 1
    total = sum(len(m) for m in msgs)

    def qid(q):
        return struct.unpack("!H", q[:2])[0]

    # whole: accepted
    r = Replay(lambda q: framed(msgs, qid(q)))
    rc, out, _ = fetch("-t", "2000", "plain.test.", f"{ADDR}#{r.port}")
    r.close()
    assert rc == 0 and lines(out, "kind ")[0].startswith("kind FULL serial 7 records 403 ")
    assert lines(out, "rules ") == ["rules 401 bad 0"]
    # the last message cut in half, then the connection closed
    def cut(q):
        f = framed(msgs, qid(q))
        return f[:-1] + [f[-1][: len(f[-1]) // 2]]
    r = Replay(cut)
    rc, out, _ = fetch("-t", "2000", "plain.test.", f"{ADDR}#{r.port}")
    r.close()
    assert rc == 1 and out.startswith("error: ") and "rule" not in out, out
    # the final SOA dropped from the last message (records count lowered to match)
    def no_final_soa(q):
        last = dns.message.from_wire(msgs[-1])
        last.answer = last.answer[:-1]
        w = last.to_wire()
        return framed(msgs[:-1] + [w], qid(q))
    r = Replay(no_final_soa)
    rc, out, _ = fetch("-t", "2000", "plain.test.", f"{ADDR}#{r.port}")
    r.close()
    assert rc == 1 and "rule" not in out, out
    # ANCOUNT one more than the records sent: garbled
    def garbled(q):
        f = framed(msgs, qid(q))
        m = bytearray(f[0])
        an = struct.unpack("!H", m[2 + 6:2 + 8])[0]
        m[8:10] = struct.pack("!H", an + 1)
        return [bytes(m)] + f[1:]
    r = Replay(garbled)
    rc, out, _ = fetch("-t", "2000", "plain.test.", f"{ADDR}#{r.port}")
    r.close()
    assert rc == 1 and out.startswith("error: ") and "rule" not in out, out
    assert total > 0


def test_ixfr_notimp_falls_back_to_axfr(knot):
    msgs = capture_axfr(knot.port, "plain.test.")

    def answer(q):
        m = dns.message.from_wire(q)
        qid = m.id
        if m.question[0].rdtype == dns.rdatatype.SOA:
            r = dns.message.make_response(m)
            r.answer = [dns.rrset.from_text("plain.test.", 60, "IN", "SOA",
                                            "ns.plain.test. h.plain.test. 7 3600 600 86400 60")]
            return framed([r.to_wire()], qid)
        if m.question[0].rdtype == dns.rdatatype.IXFR:
            r = dns.message.make_response(m)
            r.set_rcode(4)  # NOTIMP
            return framed([r.to_wire()], qid)
        return framed(msgs, qid)
    r = Replay(answer)
    rc, out, err = fetch("-t", "2000", "-s", "5", "plain.test.", f"{ADDR}#{r.port}")
    r.close()
    assert rc == 0, out + err
    assert lines(out, "kind ")[0].startswith("kind FULL serial 7 ") and "fell-back" in out
    assert r.qtypes == [dns.rdatatype.SOA, dns.rdatatype.IXFR, dns.rdatatype.AXFR]


import dns.rrset  # noqa: E402  (used by the fallback test)
