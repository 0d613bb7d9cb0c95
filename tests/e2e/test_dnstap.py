"""dnstap end to end, read back by real readers: fstrm_capture (Debian's fstrm-bin) listens on
a unix socket (or TCP), dnstap-ldns (Debian's dnstap-ldns) prints what it captured, and
protoc --decode_raw (Debian's protobuf-compiler, no schema) shows the fields by their
standard numbers, so the Policy of blocked answers is checked against the dnstap
specification and not against our own .proto. The privacy mode decides what is sent; the
daemon reconnects when the collector goes away and comes back."""

import os
import re
import signal
import socket
import struct
import subprocess
import time

import pytest

import conftest

CONTENT_TYPE = "protobuf:dnstap.Dnstap"


class Capture:
    """fstrm_capture on a unix socket (or a TCP port) writing to a file."""

    def __init__(self, d, name="cap", tcp_port=None, sock=None):
        self.sock = sock or os.path.join(d, name + ".sock")
        self.out = os.path.join(d, name + ".fstrm")
        self.log = os.path.join(d, name + ".log")
        self.tcp_port = tcp_port
        where = (["-a", "127.0.0.1", "-p", str(tcp_port)] if tcp_port else ["-u", self.sock])
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["fstrm_capture", "-t", CONTENT_TYPE, *where, "-w",
                                          self.out], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.listening():
            assert self.proc.poll() is None, "fstrm_capture exited: " + self.log_text()
            assert time.monotonic() < deadline, "fstrm_capture not listening"
            time.sleep(0.05)

    def listening(self):
        if self.tcp_port:
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), 0.2).close()
                return True
            except OSError:
                return False
        return os.path.exists(self.sock)

    def log_text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(10)
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def frames(self):
        """The data frames of the captured Frame Streams file (control frames skipped)."""
        data = open(self.out, "rb").read()
        i, out = 0, []
        while i < len(data):
            (n,) = struct.unpack(">I", data[i:i + 4])
            i += 4
            if n == 0:  # control frame: its length, then the frame
                (cl,) = struct.unpack(">I", data[i:i + 4])
                i += 4 + cl
                continue
            out.append(data[i:i + n])
            i += n
        return out

    def ldns(self, *args):
        r = subprocess.run(["dnstap-ldns", *args, "-r", self.out], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def quiet_lines(self):
        """dnstap-ldns -q: 'time CQ|CR address UDP|TCP size "name." IN type' lines."""
        return [ln for ln in self.ldns("-q").splitlines() if ln.strip()]

    def raw(self):
        """Each frame decoded by protoc --decode_raw (field numbers, no schema)."""
        out = []
        for f in self.frames():
            r = subprocess.run(["protoc", "--decode_raw"], input=f, capture_output=True,
                               timeout=30)
            assert r.returncode == 0, r.stderr
            out.append(r.stdout.decode())
        return out


def cq_cr(lines):
    """[(kind, address, transport, name)] from dnstap-ldns -q output."""
    out = []
    for ln in lines:
        m = re.match(r'^\S+ \S+ (CQ|CR) (\S+) (UDP|TCP) \d+b "([^"]*)" IN (\S+)', ln)
        assert m, "unexpected dnstap-ldns line: " + ln
        out.append((m.group(1), m.group(2), m.group(3), m.group(4)))
    return out


def daemon_with(bulwark, internet, cap, privacy, **dnstap):
    def make(port, d):
        conf = conftest.default_config(internet, port, d)
        if cap.tcp_port:
            conf["dnstap"] = dict({"tcp": "127.0.0.1@%d" % cap.tcp_port}, **dnstap)
        else:
            conf["dnstap"] = dict({"socket": cap.sock}, **dnstap)
        conf["telemetry"] = {"privacy": privacy}
        return conf
    return bulwark(make)


def run_queries(d):
    assert d.query("www.insecure.tld.", "A").rcode() == 0
    assert d.query("blocked.insecure.tld.", "A").rcode() == 3
    assert d.query("phish.insecure.tld.", "AAAA", tcp=True).rcode() == 3


def collect(bulwark, internet, tmp_path, privacy, **kw):
    cap = Capture(str(tmp_path))
    try:
        d = daemon_with(bulwark, internet, cap, privacy, **kw)
        run_queries(d)
        d.stop()  # flushes the dnstap queues
        time.sleep(0.3)
    finally:
        cap.stop()
    return cap


def test_full_privacy_everything_with_policy(bulwark, internet, tmp_path):
    cap = collect(bulwark, internet, tmp_path, "full", identity="node-7")
    got = cq_cr(cap.quiet_lines())
    # wait_ready's probes are in there too; ours are:
    for kind in ("CQ", "CR"):
        assert (kind, "127.0.0.1", "UDP", "www.insecure.tld.") in got, got
        assert (kind, "127.0.0.1", "UDP", "blocked.insecure.tld.") in got, got
        assert (kind, "127.0.0.1", "TCP", "phish.insecure.tld.") in got, got
    yaml_text = cap.ldns("-y")
    assert 'identity: "node-7"' in yaml_text
    assert "rcode: NXDOMAIN" in yaml_text and "query_port:" in yaml_text
    raws = cap.raw()
    blocked = [r for r in raws if "\\007blocked\\010insecure\\003tld" in r]
    assert len(blocked) == 2  # its query and its response
    for r in blocked:
        # Message (14) -> Policy (15): type "RPZ", rule, action NXDOMAIN (1), match QNAME (1),
        # value = the name in wire format
        pol = re.search(r"15 \{\s*1: \"RPZ\"\s*2: \"urlhaus/malware\"\s*3: 1\s*4: 1\s*"
                        r"5: \"\\007blocked\\010insecure\\003tld\\000\"\s*\}", r)
        assert pol, r
    phish = [r for r in raws if "\\005phish\\010insecure" in r]
    assert len(phish) == 2 and all('2: "scam/phishing"' in r for r in phish)
    assert all("15 {" not in r for r in raws if "\\003www\\010insecure" in r)
    # query_address (4) is the full 127.0.0.1 and the port (6) is there
    assert all('4: "\\177\\000\\000\\001"' in r and "\n  6: " in r for r in raws)


def test_blocked_only_default(bulwark, internet, tmp_path):
    cap = collect(bulwark, internet, tmp_path, "blocked-only")
    got = cq_cr(cap.quiet_lines())
    names = {g[3] for g in got}
    assert names == {"blocked.insecure.tld.", "phish.insecure.tld."}, got
    assert {g[0] for g in got} == {"CQ", "CR"}
    # the client is truncated to its /24 and its port is left out
    assert all(g[1] == "127.0.0.0" for g in got), got
    assert all("\n  6: " not in r for r in cap.raw())


def test_anonymized_all_truncated(bulwark, internet, tmp_path):
    cap = collect(bulwark, internet, tmp_path, "anonymized")
    got = cq_cr(cap.quiet_lines())
    assert ("CR", "127.0.0.0", "UDP", "www.insecure.tld.") in got
    assert ("CR", "127.0.0.0", "UDP", "blocked.insecure.tld.") in got
    assert all(g[1] == "127.0.0.0" for g in got), got


def test_privacy_none_sends_nothing(bulwark, internet, tmp_path):
    cap = collect(bulwark, internet, tmp_path, "none")
    assert cap.frames() == []


def test_responses_only(bulwark, internet, tmp_path):
    cap = collect(bulwark, internet, tmp_path, "full", **{"log-queries": False})
    got = cq_cr(cap.quiet_lines())
    assert got and all(g[0] == "CR" for g in got)


def test_tcp_collector(bulwark, internet, tmp_path):
    cap = Capture(str(tmp_path), tcp_port=conftest.free_port())
    try:
        d = daemon_with(bulwark, internet, cap, "full")
        run_queries(d)
        d.stop()
        time.sleep(0.3)
    finally:
        cap.stop()
    got = cq_cr(cap.quiet_lines())
    assert ("CR", "127.0.0.1", "UDP", "blocked.insecure.tld.") in got


def wait_for(pred, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def names_seen(cap, prefix):
    return {g[3] for g in cq_cr(cap.quiet_lines()) if g[3].startswith(prefix)}


def test_reconnects(bulwark, internet, tmp_path):
    """A collector that is not there at start-up is no error; when it goes away and comes
    back (a new fstrm_capture on the same socket), messages flow again without a restart."""
    d = str(tmp_path)
    sock = os.path.join(d, "collector.sock")

    def make(port, wd):
        conf = conftest.default_config(internet, port, wd)
        conf["dnstap"] = {"socket": sock}
        conf["telemetry"] = {"privacy": "full"}
        return conf
    b = bulwark(make)
    assert b.query("early.blocked.insecure.tld.").rcode() == 3
    cap1 = Capture(d, "cap1", sock=sock)
    try:
        for i in range(12):  # reconnect attempts are a second apart
            assert b.query("one%d.blocked.insecure.tld." % i).rcode() == 3
            time.sleep(0.25)
    finally:
        cap1.stop()
    assert names_seen(cap1, "one"), cap1.quiet_lines()
    for i in range(5):  # the collector is gone: answers do not wait for it
        assert b.query("gone%d.blocked.insecure.tld." % i).rcode() == 3
    cap2 = Capture(d, "cap2", sock=sock)
    try:
        for i in range(12):
            assert b.query("two%d.blocked.insecure.tld." % i).rcode() == 3
            time.sleep(0.25)
        b.stop()
    finally:
        cap2.stop()
    assert names_seen(cap2, "two"), cap2.quiet_lines()


def test_dnstap_counters_in_metrics(bulwark, internet, tmp_path):
    import test_metrics
    mport = test_metrics.free_tcp_port()
    cap = Capture(str(tmp_path))
    try:
        def make(port, d):
            conf = conftest.default_config(internet, port, d)
            conf["dnstap"] = {"socket": cap.sock}
            conf["telemetry"] = {"privacy": "full"}
            conf["metrics"] = {"port": mport}
            return conf
        b = bulwark(make)
        before = test_metrics.scrape(mport)
        run_queries(b)
        after = test_metrics.scrape(mport)
        sent = (test_metrics.value(after, "bulwark_dnstap_messages_total") -
                test_metrics.value(before, "bulwark_dnstap_messages_total"))
        assert sent == 6  # three queries, a CLIENT_QUERY and a CLIENT_RESPONSE each
        assert test_metrics.value(after, "bulwark_dnstap_dropped_total") == 0
    finally:
        cap.stop()


@pytest.mark.parametrize("section,message", [
    ({}, "say where to send messages"),
    ({"socket": "/tmp/x.sock", "tcp": "127.0.0.1@6000"}, "not both"),
    ({"tcp": "127.0.0.1"}, "address@port"),
    ({"tcp": "nowhere@6000"}, "not an IPv4 or IPv6 address"),
    ({"socket": "/tmp/x.sock", "log-queries": "maybe"}, "log-queries"),
    ({"socket": "/tmp/" + "s" * 120}, "too long for a unix socket"),
])
def test_config_errors(tmp_path, section, message):
    import yaml
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"dnstap": section}))
    r = subprocess.run([conftest.bulwark_binary(), "--check-config", str(p)],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert re.search(r"c\.yaml:\d+:\d+: .*" + re.escape(message), r.stderr + r.stdout), \
        r.stderr + r.stdout
