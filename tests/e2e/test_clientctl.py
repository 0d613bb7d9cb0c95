"""bulwarkctl client add / remove / list / setup (issue 18): named clients with a ClientID in
the clients file, against a running daemon with a DoT and a DoH listener.

`client add` writes the entry (mode 0640, hand-written entries kept) and the daemon reloads
(its policy generation moves); refused additions (a duplicate name, an unknown profile,
hostile names) leave the file as it was; a removal the config cannot load without is put
back; `client list` masks the IDs; `client setup` prints the DoH URL and DoT host name, and
its files are checked by independent readers: the Apple profile by plistlib (unsigned) and
`openssl cms -verify` (signed), the QR code by `zbarimg`. The audit lines go to a /dev/log
of the test's own (a private mount namespace) and never carry the ID."""

import json
import os
import re
import stat
import subprocess
import time

import pytest
import yaml

import conftest
from test_encrypted import make_ca, make_cert, other_port

ID_RE = re.compile(r"ClientID: ([a-z2-7]{26})\n")
INLINE = {"name": "office", "match": ["192.0.2.0/24"], "profile": "private"}
PROFILES = [{"name": "private", "feeds": "none"},
            {"name": "protected", "categories": ["malware", "phishing"]},
            {"name": "family", "categories": ["malware", "phishing", "adult"]}]


def tls_listeners(ports, cert, key):
    return [
        {"address": "127.0.0.1", "port": ports["dot"], "transport": "dot",
         "tls-cert": cert, "tls-key": key, "tls-name": "dns.example"},
        {"address": "127.0.0.1", "port": ports["doh"], "transport": "doh",
         "tls-cert": cert, "tls-key": key, "tls-name": "dns.example",
         "doh-paths": {"/dns-query": None, "/dns-query/family": "family"}},
    ]


@pytest.fixture(scope="module")
def daemon(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("clientctl"))
    make_ca(d)
    cert, key = make_cert(d, "server")
    ports = {}

    def config(port, workdir):
        ports["dot"] = other_port(port)
        ports["doh"] = other_port(port, ports["dot"])
        listen = [{"address": "127.0.0.1", "port": port}] + tls_listeners(ports, cert, key)
        conf = conftest.default_config(internet, port, workdir, server={"listen": listen},
                                       policy={"profiles": PROFILES,
                                               "default-profile": "protected"})
        conf["clients"] = [INLINE]
        return conf

    dm = bulwark_module(config, workdir=d)
    dm.ports, dm.cert, dm.key = ports, cert, key
    dm.clients = os.path.join(d, "clients.yaml")
    return dm


def ctl(daemon_or_config, *args):
    config = getattr(daemon_or_config, "config_path", daemon_or_config)
    return subprocess.run([conftest.ctl_binary(), "-c", config] + list(args),
                          capture_output=True, text=True, timeout=60)


def ok(p):
    assert p.returncode == 0, "rc %d\n%s%s" % (p.returncode, p.stdout, p.stderr)
    return p


def generation(dm):
    out = conftest.ctl(os.path.join(dm.dir, "state"), "status").stdout
    return int(re.search(r"policy generation (\d+)", out).group(1))


def read(path):
    with open(path, "rb") as f:
        return f.read()


def entries(path):
    with open(path) as f:
        return {e["name"]: e for e in yaml.safe_load(f)["clients"]}


def add(dm, name, *args):
    p = ok(ctl(dm, "client", "add", name, *args))
    return ID_RE.search(p.stdout).group(1), p


# -- add, list, remove ------------------------------------------------------------------------
def test_add_writes_the_file_and_reloads(daemon):
    g0 = generation(daemon)
    cid, p = add(daemon, "alice-phone", "--profile", "family")
    assert "bulwark reloaded" in p.stdout, p.stdout
    assert generation(daemon) > g0
    assert "reloaded" in daemon.log_text()
    st = os.stat(daemon.clients)
    assert stat.S_IMODE(st.st_mode) == 0o640
    text = read(daemon.clients).decode()
    assert text.startswith("# ") and "bulwarkctl" in text.splitlines()[0]
    assert entries(daemon.clients)["alice-phone"] == {
        "name": "alice-phone", "match": ["id:" + cid], "profile": "family"}
    # --match adds networks beside the ID; --json says the same as the text
    p = ok(ctl(daemon, "client", "add", "bob-laptop", "--match", "10.9.0.0/16", "--json",
               "--no-reload"))
    j = json.loads(p.stdout)
    assert j["name"] == "bob-laptop" and re.fullmatch(r"[a-z2-7]{26}", j["id"])
    assert j["reloaded"] is False
    assert entries(daemon.clients)["bob-laptop"]["match"] == ["id:" + j["id"], "10.9.0.0/16"]
    # the daemon loads what was written (a reload that fails keeps the old generation)
    g1 = generation(daemon)
    ok(conftest.ctl(os.path.join(daemon.dir, "state"), "reload"))
    deadline = time.monotonic() + 10
    while generation(daemon) == g1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert generation(daemon) > g1
    assert "reload failed" not in daemon.log_text()


@pytest.mark.parametrize("args,message", [
    (["alice-phone"], "already exists"),
    (["office"], "already exists"),
    (["carol", "--profile", "no-such"], "unknown profile 'no-such'"),
    (["carol", "--match", "not-a-net"], "not an address or a network"),
    (['say "hi"'], "invalid client name"),
    (["a/b"], "invalid client name"),
    (["two\nlines"], "invalid client name"),
    (["back\\slash"], "invalid client name"),
    (["x" * 65], "invalid client name"),
    ([" padded"], "invalid client name"),
])
def test_refused_add_leaves_the_file(daemon, args, message):
    if not os.path.exists(daemon.clients):
        add(daemon, "alice-phone", "--profile", "family")
    before = read(daemon.clients)
    g0 = generation(daemon)
    p = ctl(daemon, "client", "add", *args)
    assert p.returncode == 1, p.stdout + p.stderr
    assert message in p.stderr
    assert p.stderr.count("\n") == 1, p.stderr  # one clean line, no name echoed raw
    assert read(daemon.clients) == before
    assert generation(daemon) == g0


def test_list_masks_ids(daemon):
    cid, _ = add(daemon, "dora-tablet", "--profile", "private", "--no-reload")
    out = ok(ctl(daemon, "client", "list")).stdout
    assert out.splitlines()[0].split() == ["NAME", "PROFILE", "MATCH", "DEFINED", "IN"]
    row = [line for line in out.splitlines() if line.startswith("dora-tablet")][0]
    assert "id:" + cid[:4] + "\u2026" in row and cid not in out
    assert "private" in row and row.endswith("clients file")
    office = [line for line in out.splitlines() if line.startswith("office")][0]
    assert "192.0.2.0/24" in office and office.endswith("config")
    assert cid in ok(ctl(daemon, "client", "list", "--show-ids")).stdout
    j = json.loads(ok(ctl(daemon, "--json", "client", "list")).stdout)
    rows = {r[0]: r for r in j["result"]["rows"]}
    assert j["ok"] is True and rows["dora-tablet"][2] == "id:" + cid[:4] + "\u2026"


def test_remove(daemon):
    cid, _ = add(daemon, "erin-phone", "--no-reload")
    g0 = generation(daemon)
    p = ok(ctl(daemon, "client", "remove", "erin-phone"))
    assert "revoked" in p.stdout and "bulwark reloaded" in p.stdout
    assert generation(daemon) > g0
    assert "erin-phone" not in entries(daemon.clients)
    assert cid not in read(daemon.clients).decode()
    p = ctl(daemon, "client", "remove", "erin-phone")
    assert p.returncode == 1 and "no client named 'erin-phone'" in p.stderr
    # a client of the config itself is removed there
    before = read(daemon.clients)
    p = ctl(daemon, "client", "remove", "office")
    assert p.returncode == 1 and "written in" in p.stderr and "itself" in p.stderr
    assert read(daemon.clients) == before


def test_hand_entries_kept_and_bad_removal_put_back(workdir):
    conf = os.path.join(workdir, "b.yaml")
    with open(conf, "w") as f:
        yaml.safe_dump({"policy": {"profiles": PROFILES}, "clients-file": "kids.yaml"}, f)
    clients = os.path.join(workdir, "kids.yaml")
    # the named clients-file does not exist yet: add makes it
    ok(ctl(conf, "client", "add", "first", "--no-reload"))
    with open(clients, "a") as f:
        f.write("- name: kids  # a group, by hand\n  profile: family\n  schedule:\n"
                "  - { profile: private, days: weekend, from: \"08:00\", to: \"20:00\" }\n"
                "- { name: tablet, group: kids, match: [ \"id:tablet-1\" ] }\n")
    ok(ctl(conf, "client", "add", "second", "--profile", "private", "--no-reload"))
    e = entries(clients)
    assert e["kids"]["schedule"] == [{"profile": "private", "days": "weekend",
                                      "from": "08:00", "to": "20:00"}]
    assert e["tablet"] == {"name": "tablet", "group": "kids", "match": ["id:tablet-1"]}
    assert list(e) == ["first", "kids", "tablet", "second"]
    # removing the group would leave tablet without it: the config would not load
    before = read(clients)
    p = ctl(conf, "client", "remove", "kids", "--no-reload")
    assert p.returncode == 1 and "no client or group named 'kids'" in p.stderr
    assert "put back" in p.stderr and read(clients) == before


# -- setup --------------------------------------------------------------------------------------
def test_setup_text_and_json(daemon):
    cid, _ = add(daemon, "frank-phone", "--profile", "family", "--no-reload")
    url = "https://dns.example:%d/dns-query/%s" % (daemon.ports["doh"], cid)
    host = "%s.dns.example" % cid
    out = ok(ctl(daemon, "client", "setup", "frank-phone")).stdout
    assert "DoH URL:        %s\n" % url in out
    assert "DoT host name:  %s" % host in out
    assert "DoT port:       %d (Android only uses 853" % daemon.ports["dot"] in out
    for where in ("Private DNS", "--mobileconfig", "Windows 11", "Firefox", "Chrome"):
        assert where in out
    j = json.loads(ok(ctl(daemon, "client", "setup", "frank-phone", "--json")).stdout)
    assert j["doh_url"] == url and j["dot_host"] == host and j["profile"] == "family"
    j = json.loads(ok(ctl(daemon, "client", "setup", "frank-phone", "--json", "--host",
                          "resolver.example.org")).stdout)
    assert j["dot_host"] == cid + ".resolver.example.org"
    p = ctl(daemon, "client", "setup", "office")
    assert p.returncode == 1 and "no ClientID" in p.stderr
    p = ctl(daemon, "client", "setup", "frank-phone", "--host", "evil/host")
    assert p.returncode == 2


def test_setup_needs_an_encrypted_listener(workdir):
    conf = os.path.join(workdir, "plain.yaml")
    with open(conf, "w") as f:
        yaml.safe_dump({"policy": {"profiles": PROFILES}}, f)
    cid, _ = add(conf, "gina", "--no-reload")
    p = ctl(conf, "client", "setup", "gina")
    assert p.returncode == 1 and "no DoT or DoH listener" in p.stderr and "--host" in p.stderr
    j = json.loads(ok(ctl(conf, "client", "setup", "gina", "--host", "dns.example",
                          "--json")).stdout)
    assert j["doh_url"] == "https://dns.example/dns-query/" + cid
    assert j["dot_host"] == cid + ".dns.example"


def check_profile(p, url, name):
    assert p["PayloadType"] == "Configuration" and p["PayloadVersion"] == 1
    assert name in p["PayloadDisplayName"]
    inner = p["PayloadContent"][0]
    assert inner["PayloadType"] == "com.apple.dnsSettings.managed"
    assert inner["DNSSettings"] == {"DNSProtocol": "HTTPS", "ServerURL": url}
    for d in (p, inner):
        assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-"
                            r"[0-9A-F]{12}", d["PayloadUUID"])
        assert d["PayloadIdentifier"]
    assert p["PayloadUUID"] != inner["PayloadUUID"]


def test_setup_mobileconfig(daemon, tmp_path):
    import plistlib
    name = "Hana's <iPhone> & co"  # every string of the plist is XML-escaped
    cid, _ = add(daemon, name, "--profile", "family", "--no-reload")
    url = "https://dns.example:%d/dns-query/%s" % (daemon.ports["doh"], cid)
    path = str(tmp_path / "hana.mobileconfig")
    ok(ctl(daemon, "client", "setup", name, "--mobileconfig", path))
    text = read(path)
    assert text.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist')
    assert b"&lt;iPhone&gt; &amp; co" in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    check_profile(plistlib.loads(text), url, name)
    # signed: CMS SignedData in DER with the content attached, chain included
    signed, content = str(tmp_path / "signed.mobileconfig"), str(tmp_path / "content.xml")
    ok(ctl(daemon, "client", "setup", name, "--mobileconfig", signed,
           "--sign-cert", daemon.cert, "--sign-key", daemon.key))
    v = subprocess.run(["openssl", "cms", "-verify", "-inform", "DER", "-in", signed,
                        "-noverify", "-out", content], capture_output=True, text=True)
    assert v.returncode == 0 and "Verification successful" in v.stderr, v.stderr
    check_profile(plistlib.loads(read(content)), url, name)
    certs = subprocess.run(["openssl", "pkcs7", "-inform", "DER", "-in", signed,
                            "-print_certs", "-noout"], capture_output=True, text=True)
    assert "subject=CN = dns.example" in certs.stdout, certs.stdout + certs.stderr
    p = ctl(daemon, "client", "setup", name, "--mobileconfig", signed, "--sign-cert",
            daemon.cert)
    assert p.returncode == 2 and "together" in p.stderr


def test_setup_qr(daemon, tmp_path):
    cid, _ = add(daemon, "ivan-phone", "--no-reload")
    url = "https://dns.example:%d/dns-query/%s" % (daemon.ports["doh"], cid)
    png = str(tmp_path / "ivan.png")
    ok(ctl(daemon, "client", "setup", "ivan-phone", "--qr", png))
    assert read(png).startswith(b"\x89PNG\r\n\x1a\n")
    z = subprocess.run(["zbarimg", "--raw", "-q", png], capture_output=True, text=True)
    assert z.returncode == 0, z.stderr
    assert z.stdout.rstrip("\n") == url
    out = ok(ctl(daemon, "client", "setup", "ivan-phone", "--qr", "-")).stdout
    art = out.split("as a QR code:\n")[1].splitlines()
    assert len(art) > 15 and all(len(line) == len(art[0]) for line in art)
    assert set("".join(art)) <= set(" \u2580\u2584\u2588")


# -- audit ----------------------------------------------------------------------------------------
AUDIT = r"""
import socket, subprocess, sys
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/dev"], check=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
s.settimeout(5)
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(p.stdout)
sys.stderr.write(p.stderr)
print("SYSLOG " + s.recv(4096).decode())
"""


def test_audit_to_syslog(workdir):
    conf = os.path.join(workdir, "audit.yaml")
    with open(conf, "w") as f:
        yaml.safe_dump({"policy": {"profiles": PROFILES}}, f)
    for args in (["add", "judy", "--profile", "family", "--no-reload"],
                 ["remove", "judy", "--no-reload"]):
        p = subprocess.run(["unshare", "-m", "/usr/bin/python3", "-c", AUDIT,
                            conftest.ctl_binary(), "-c", conf, "client"] + args,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        line = p.stdout.split("SYSLOG ")[1]
        # <85>: authpriv (10 * 8) + notice (5)
        assert line.startswith("<85>"), line
        what = "added" if args[0] == "add" else "removed"
        assert "client %s: 'judy'" % what in line and "by uid 0 (root)" in line
        m = ID_RE.search(p.stdout)
        if m:
            assert m.group(1) not in line
