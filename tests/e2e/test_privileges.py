"""Started as root, the daemon binds port 53 and then becomes server.user: /proc says
its uid and gid are the user's, it keeps no capability and no_new_privs is set; it
answers on port 53, reloads its feeds on SIGHUP as that user, and says at start which
feed file that user could not read (a reload then keeps the running version). Uses the
`nobody` user and `nogroup` group every Debian system has."""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import conftest
import dnsutil
from test_encrypted import make_ca, make_cert, other_port, peer_serial, tls_connect
from test_xfr_feed import wait


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


@pytest.fixture
def open_dir():
    # pytest's own temp dirs are root's alone (0700): the user must reach its files
    d = tempfile.mkdtemp(prefix="bw-privs-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_drops_to_the_user_after_binding_port_53(bulwark, internet, open_dir):
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrnam("nogroup")
    feed = conftest.write_domains(os.path.join(open_dir, "local.txt"), ["bad.insecure.tld"])
    secret = conftest.write_domains(os.path.join(open_dir, "secret.txt"),
                                    ["phish.insecure.tld"])
    os.chmod(secret, 0o600)  # root's alone
    # the resolver's files too: libunbound reads them in the workers, after the drop
    hints = shutil.copy(internet.root_hints, open_dir)
    anchor = shutil.copy(internet.trust_anchor, open_dir)
    # a DoT listener whose certificate a reload re-reads as the user
    make_ca(open_dir)
    ca = os.path.join(open_dir, "ca.pem")
    cert, key = make_cert(open_dir, "server")
    os.chmod(key, 0o644)
    dot = other_port(53)

    def config(port, workdir):
        conf = conftest.default_config(internet, port, open_dir, allowlist=[], feeds=[
            {"name": "local", "category": "malware", "format": "domains", "file": feed},
            {"name": "secret", "category": "phishing", "format": "domains", "file": secret}],
            server={"listen": [{"address": "127.0.0.1", "port": port},
                               {"address": "127.0.0.1", "port": 53},
                               {"address": "127.0.0.1", "port": dot, "transport": "dot",
                                "tls-cert": cert, "tls-key": key, "tls-name": "dns.example"}],
                    "user": "nobody", "group": "nogroup"},
            resolver={"root-hints": hints, "trust-anchor": anchor},
            watch_interval=0)  # reloads by SIGHUP only
        return conf
    d = bulwark(config, workdir=open_dir)
    st = proc_status(d.pid)
    assert st["Uid"] == [str(nobody.pw_uid)] * 4, st["Uid"]
    assert st["Gid"] == [str(nogroup.gr_gid)] * 4, st["Gid"]
    assert st["Groups"] == [], st["Groups"]
    assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, st["CapEff"]
    assert st["NoNewPrivs"] == ["1"], st
    log = d.log_text()
    assert "running as user nobody (uid %d, gid %d), no capabilities" % (
        nobody.pw_uid, nogroup.gr_gid) in log, log
    assert "feed secret: %s is not readable by user nobody" % secret in log, log
    # the state directory is the user's now: the daemon writes there
    assert os.stat(os.path.join(open_dir, "state")).st_uid == nobody.pw_uid
    status = conftest.ctl(os.path.join(open_dir, "state"), "status").stdout
    assert re.search(r"^running as\s+nobody$", status, re.M), status

    # answers on port 53, blocks from both feeds (loaded as root)
    assert dnsutil.is_blocked(dnsutil.query(53, "bad.insecure.tld"))
    assert dnsutil.is_blocked(dnsutil.query(53, "phish.insecure.tld"))
    r = dnsutil.query(53, "www.insecure.tld")
    assert r.rcode() == 0, dnsutil.describe(r) + "\n" + d.log_text()

    # SIGHUP while a feed file is unreadable: the reload is refused, saying why, and the
    # running configuration and policy stay
    conftest.write_domains(feed, ["bad.insecure.tld", "newly.insecure.tld"])
    os.kill(d.pid, signal.SIGHUP)
    assert wait(lambda: "reload failed, keeping the running configuration" in
                d.log_text(50000), timeout=10), d.log_text()
    assert "secret.txt': Permission denied" in d.log_text(50000)
    assert not dnsutil.is_blocked(dnsutil.query(53, "newly.insecure.tld"))
    assert dnsutil.is_blocked(dnsutil.query(53, "phish.insecure.tld"))

    # readable again: SIGHUP reloads the feeds and the certificate as the user
    with tls_connect(dot, ca) as s:
        serial1 = peer_serial(s)
    os.chmod(secret, 0o644)
    cert2, key2 = make_cert(open_dir, "server2")
    shutil.copyfile(cert2, cert)  # the contents; the files keep their modes (0644)
    shutil.copyfile(key2, key)
    os.kill(d.pid, signal.SIGHUP)
    assert wait(lambda: dnsutil.is_blocked(dnsutil.query(53, "newly.insecure.tld")),
                timeout=10), d.log_text()
    assert dnsutil.is_blocked(dnsutil.query(53, "phish.insecure.tld"))
    with tls_connect(dot, ca) as s:
        assert peer_serial(s) != serial1, "the certificate was not re-read after the drop"
    d.stop()


def test_an_unknown_user_is_a_start_error(bulwark, internet, workdir):
    path = os.path.join(workdir, "c.yaml")
    with open(path, "w") as f:
        f.write("server:\n  user: no-such-user-here\n  state-dir: %s\n" % workdir)
    p = subprocess.run([conftest.bulwark_binary(), "-f", "-c", path], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "server.user: there is no user 'no-such-user-here'" in p.stderr, p.stderr


def notifications(sock, until, timeout=10):
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if until in got[-1]:
            return got
    raise AssertionError("no %r among %r" % (until, got))


def test_tells_systemd_ready_reloading_stopping(bulwark, workdir):
    """Type=notify without systemd: the daemon talks to NOTIFY_SOCKET as systemd would
    have it (sd_notify), and logs without timestamps when stderr is the journal's."""
    path = os.path.join(workdir, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.environ["NOTIFY_SOCKET"] = path
    os.environ["JOURNAL_STREAM"] = "8:12345"
    try:
        d = bulwark()
    finally:
        del os.environ["NOTIFY_SOCKET"]
        del os.environ["JOURNAL_STREAM"]
    ready = notifications(sock, "READY=1")[-1]
    assert re.search(r"STATUS=policy generation \d+: \d+ blocked names from 2 feeds", ready), \
        ready
    os.kill(d.pid, signal.SIGHUP)
    got = notifications(sock, "READY=1")
    assert got[0].startswith("RELOADING=1\nMONOTONIC_USEC="), got
    d.stop()
    assert "STOPPING=1" in notifications(sock, "STOPPING=1")[-1]
    log = d.log_text()
    assert re.search(r"^<6>info: started \d+ workers$", log, re.M), log
    sock.close()
