"""Named clients end to end (issue 18): devices recognised by their ClientID in the DoH path
(curl, kdig +https, headless Chromium) or in the TLS server name (kdig over DoT), by the MAC
address a router adds (EDNS option 65001), or by their network; each gets its own profile,
group allowlist, extra feeds and schedule. A listener with `client-id: required` answers
only known IDs; unknown IDs are refused and rate limited; a revoked ID stops working at the
reload; a flood of made-up IDs leaves other clients answered and memory flat."""

import json
import os
import re
import secrets
import signal
import subprocess
import time
import urllib.request

import dns.edns
import dns.message
import dns.rcode
import pytest

import conftest
import dnsutil
from dnsutil import describe
from test_encrypted import (b64, curl, kdig_ok, make_ca, nginx, openssl, other_port,  # noqa: F401
                            run_chromium)

PHONE = "p" + secrets.token_hex(12)
LAPTOP = "l" + secrets.token_hex(12)
KID = "k" + secrets.token_hex(12)
MAC = "02:00:5e:10:00:01"
REFUSED_SOURCE = "127.0.0.9"   # access-control refuses it


def make_wildcard_cert(d):
    """server.pem/.key for dns.example and *.dns.example (ClientIDs in the server name)."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=dns.example", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:dns.example,DNS:*.dns.example,IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext",
            cwd=d)
    return os.path.join(d, "server.pem"), os.path.join(d, "server.key")


CLIENTS = {
    "phone": '{ name: "Amira\'s phone", match: ["id:%s"], profile: family }' % PHONE,
    "laptop": '{ name: laptop, match: ["id:%s"], profile: private }' % LAPTOP,
    "kid": '{ name: kid-tablet, match: ["id:%s"], profile: protected, feeds: [fkid] }' % KID,
    "router": '{ name: living-room, match: ["mac:%s"], profile: family }' % MAC,
    "desk": '{ name: desk, match: [127.0.0.3], profile: family }',
    "night": ('{ name: allday, match: [127.0.0.4], schedule: [{ profile: private, days: daily, '
              'from: "00:00", to: "24:00" }] }'),
    "staff": '{ name: staff, profile: family, allowlist: [prof-adult.insecure.tld] }',
    "intern": '{ name: intern, match: [127.0.0.6], group: staff }',
}


def write_clients(path, keys):
    conftest.write_atomic(path, "clients:\n" + "".join("  - %s\n" % CLIENTS[k] for k in keys))


@pytest.fixture(scope="module")
def cl(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("clients"))
    ca = make_ca(d)
    cert, key = make_wildcard_cert(d)
    clients_file = os.path.join(d, "clients.yaml")
    write_clients(clients_file, CLIENTS.keys())
    ports = {}

    def config(port, workdir):
        ports["dns"] = port
        ports["dot"] = other_port(port)
        ports["doh"] = other_port(port, ports["dot"])
        ports["public"] = other_port(port, ports["dot"], ports["doh"])
        tls = {"tls-cert": cert, "tls-key": key, "tls-name": "dns.example"}
        listen = [
            {"address": "127.0.0.1", "port": port},
            dict(tls, address="127.0.0.1", port=ports["dot"], transport="dot"),
            dict(tls, address="127.0.0.1", port=ports["doh"], transport="doh"),
            dict(tls, address="127.0.0.1", port=ports["public"], transport="doh",
                 **{"client-id": "required"}),
        ]
        feeds = []
        for name, cat, names in (("fmal", "malware", ["prof-mal.insecure.tld"]),
                                 ("fadult", "adult", ["prof-adult.insecure.tld"]),
                                 ("fkid", "games", ["web-ok.insecure.tld"])):
            feeds.append({"name": name, "category": cat, "format": "domains",
                          "file": conftest.write_domains(os.path.join(workdir, name + ".txt"),
                                                         names)})
        profiles = [
            {"name": "private", "feeds": "none"},
            {"name": "protected", "categories": ["malware"]},
            {"name": "family", "categories": ["malware", "adult"]},
        ]
        acl = [{"network": REFUSED_SOURCE + "/32", "action": "refuse"},
               {"network": "127.0.0.0/8", "action": "allow"}]
        conf = conftest.default_config(internet, port, workdir, feeds=feeds, allowlist=[],
                                       acl=acl, server={"listen": listen},
                                       policy={"profiles": profiles,
                                               "default-profile": "protected"})
        conf["clients-file"] = clients_file
        conf["metrics"] = {"address": "127.0.0.1", "port": ports.setdefault(
            "metrics", other_port(port, ports["dot"], ports["doh"], ports["public"]))}
        return conf

    daemon = bulwark_module(config, workdir=d)
    daemon.ports = ports
    daemon.ca = ca
    daemon.d = d
    daemon.clients_file = clients_file
    return daemon


# -- clients ----------------------------------------------------------------------------------
def doh_get(daemon, path, name, port=None, host="dns.example", interface=None):
    """A DoH GET with curl; returns the DNS answer."""
    port = port or daemon.ports["doh"]
    wire = dnsutil.make_query(name, "A").to_wire()
    out = os.path.join(daemon.d, "doh-%s.bin" % secrets.token_hex(4))
    args = ["--cacert", daemon.ca, "--resolve", "%s:%d:127.0.0.1" % (host, port), "-o", out,
            "-w", "%{http_code}"]
    if interface:
        args += ["--interface", interface]
    p = curl(*args, "https://%s:%d%s?dns=%s" % (host, port, path, b64(wire)))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"200", p.stdout
    with open(out, "rb") as f:
        r = dns.message.from_wire(f.read())
    os.unlink(out)
    return r


def dot_kdig(daemon, sni, name, *extra):
    return dnsutil.kdig(daemon.ports["dot"], "+tls-ca=" + daemon.ca, "+tls-hostname=" + sni,
                        "+tls-sni=" + sni, *extra, name, "A")


def assert_blocked(r):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert dnsutil.EDE_BLOCKED in dnsutil.ede_codes(r), describe(r)


def assert_addr(r, addr):
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == [addr], describe(r)


def assert_refused(r, text):
    assert r.rcode() == dns.rcode.REFUSED, describe(r)
    assert (18, text) in dnsutil.ede(r), describe(r)


ADULT, MAL, WEB_OK = "prof-adult.insecure.tld.", "prof-mal.insecure.tld.", "web-ok.insecure.tld."


def test_doh_path_id_curl(cl):
    assert_addr(doh_get(cl, "/dns-query", ADULT), "192.0.2.132")       # protected
    assert_blocked(doh_get(cl, "/dns-query/" + PHONE, ADULT))             # family
    assert_blocked(doh_get(cl, "/dns-query/" + PHONE.upper(), ADULT))     # IDs ignore case
    assert_addr(doh_get(cl, "/dns-query/" + LAPTOP, MAL), "192.0.2.130")  # private
    assert_blocked(doh_get(cl, "/dns-query", MAL))


def test_doh_path_id_kdig(cl):
    out = kdig_ok(dnsutil.kdig(cl.ports["doh"], "+https=/dns-query/" + PHONE, "+tls-ca=" + cl.ca,
                               "+tls-hostname=dns.example", ADULT, "A"))
    assert "NXDOMAIN" in out, out
    out = kdig_ok(dnsutil.kdig(cl.ports["doh"], "+https=/dns-query/" + LAPTOP, "+tls-ca=" + cl.ca,
                               "+tls-hostname=dns.example", MAL, "A"))
    assert "192.0.2.130" in out and "NOERROR" in out, out


def test_dot_sni_id_kdig(cl):
    out = kdig_ok(dot_kdig(cl, "dns.example", ADULT))
    assert "192.0.2.132" in out, out                                     # protected
    out = kdig_ok(dot_kdig(cl, PHONE + ".dns.example", ADULT))
    assert "NXDOMAIN" in out and "blocked by fadult" in out, out        # family
    out = kdig_ok(dot_kdig(cl, LAPTOP + ".dns.example", MAL))
    assert "192.0.2.130" in out, out                                     # private


def test_unknown_id_is_refused(cl):
    made_up = "x" + secrets.token_hex(12)
    assert_refused(doh_get(cl, "/dns-query/" + made_up, ADULT), "unknown ClientID")
    out = kdig_ok(dot_kdig(cl, made_up + ".dns.example", ADULT))
    assert "REFUSED" in out and "unknown ClientID" in out, out


def test_required_listener_answers_known_ids_only(cl):
    port = cl.ports["public"]
    assert_refused(doh_get(cl, "/dns-query", ADULT, port=port), "this service needs a ClientID")
    assert_blocked(doh_get(cl, "/dns-query/" + PHONE, ADULT, port=port))
    assert_addr(doh_get(cl, "/dns-query/" + LAPTOP, MAL, port=port), "192.0.2.130")
    # and the ID in the server name works there too
    wire = dnsutil.make_query(ADULT, "A").to_wire()
    out = os.path.join(cl.d, "sni.bin")
    host = PHONE + ".dns.example"
    p = curl("--cacert", cl.ca, "--resolve", "%s:%d:127.0.0.1" % (host, port), "-o", out,
             "https://%s:%d/dns-query?dns=%s" % (host, port, b64(wire)))
    assert p.returncode == 0, p.stderr
    with open(out, "rb") as f:
        assert_blocked(dns.message.from_wire(f.read()))


def test_known_id_passes_a_refusing_access_rule(cl):
    assert_refused(doh_get(cl, "/dns-query", ADULT, interface=REFUSED_SOURCE), "")
    assert_blocked(doh_get(cl, "/dns-query/" + PHONE, ADULT, interface=REFUSED_SOURCE))
    r = dnsutil.query(cl.ports["dns"], ADULT, source=REFUSED_SOURCE)
    assert r.rcode() == dns.rcode.REFUSED, describe(r)


def mac_query(port, name, mac):
    q = dnsutil.make_query(name, "A")
    q.use_edns(0, options=[dns.edns.GenericOption(65001, bytes.fromhex(mac.replace(":", "")))])
    return dnsutil.send(port, q, tcp=False, timeout=5.0, source=None, server=dnsutil.SERVER)


def test_mac_from_the_router(cl):
    assert_blocked(mac_query(cl.ports["dns"], ADULT, MAC))                       # family
    assert_addr(mac_query(cl.ports["dns"], ADULT, "02:00:5e:10:00:02"), "192.0.2.132")


def test_network_group_and_schedule(cl):
    port = cl.ports["dns"]
    assert_blocked(dnsutil.query(port, ADULT, source="127.0.0.3"))               # desk: family
    assert_addr(dnsutil.query(port, ADULT, source="127.0.0.5"), "192.0.2.132")  # nobody
    # intern: the group's profile (family) with the group's allowlist
    assert_addr(dnsutil.query(port, ADULT, source="127.0.0.6"), "192.0.2.132")
    assert_blocked(dnsutil.query(port, MAL, source="127.0.0.6"))
    # allday: a schedule that covers every minute (boundaries: tests/unit/test_clients.c)
    assert_addr(dnsutil.query(port, MAL, source="127.0.0.4"), "192.0.2.130")


def test_client_feeds(cl):
    assert_blocked(doh_get(cl, "/dns-query/" + KID, WEB_OK))
    assert_addr(doh_get(cl, "/dns-query", WEB_OK), "127.0.0.80")
    assert_blocked(doh_get(cl, "/dns-query/" + KID, MAL))   # and the profile's own feeds


def test_chromium_per_device_url(cl, nginx, tmp_path):  # noqa: F811
    page = "http://web-ok.insecure.tld:%d/" % nginx
    template = "https://127.0.0.1:%d/dns-query/%s{?dns}"
    dom = run_chromium(str(tmp_path / "kid"), template % (cl.ports["doh"], KID), [page], cl.ca)
    assert "hello from nginx" not in dom[page], dom[page][:500]
    dom = run_chromium(str(tmp_path / "laptop"), template % (cl.ports["public"], LAPTOP), [page],
                       cl.ca)
    assert "hello from nginx" in dom[page], dom[page][:500]


def metric(daemon, name):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % daemon.ports["metrics"],
                                  timeout=5).read().decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    assert m, "%s not in metrics" % name
    return int(m.group(1))


def test_hostile_path_ids(cl):
    for path in ("/dns-query/a%00b", "/dns-query/..", "/dns-query/-x", "/dns-query/a.b",
                 "/dns-query/" + "a" * 64, "/dns-query/%C3%A9", "/dns-query/a/b",
                 "/dns-query//" + PHONE):
        p = curl("--cacert", cl.ca, "--resolve", "dns.example:%d:127.0.0.1" % cl.ports["doh"],
                 "-o", "/dev/null", "-w", "%{http_code}", "--path-as-is",
                 "https://dns.example:%d%s?dns=%s" % (cl.ports["doh"], path,
                                                    b64(dnsutil.make_query(ADULT).to_wire())))
        assert p.stdout == b"404", (path, p.stdout, p.stderr)
    cl.assert_alive()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_flood_of_unknown_ids(cl, tmp_path):
    """h2load (nghttp2's HTTP/2 load tool) sends 10,000 DoH queries a second for 5 s, each
    with a different made-up ClientID, while the phone keeps asking: the flood is refused at
    the configured rate and the rest reset, the phone gets every answer, memory stays flat.
    (dnsperf -m doh crashes when a server resets a stream, so it cannot be the flood.)"""
    wire = b64(dnsutil.make_query(ADULT, "A").to_wire())
    uris = tmp_path / "uris.txt"
    n = 50000
    uris.write_text("".join("https://dns.example:%d/dns-query/z%s?dns=%s\n"
                            % (cl.ports["doh"], secrets.token_hex(12), wire) for _ in range(n)))
    ref0 = metric(cl, 'bulwark_client_id_refused_total{reason="unknown"}')
    drop0 = metric(cl, 'bulwark_client_id_dropped_total{reason="unknown"}')
    rss0 = rss_kb(cl.pid)
    flood = subprocess.Popen(
        ["h2load", "-i", str(uris), "-n", str(n), "-c", "8", "-m", "32", "--rps", "1250",
         "--connect-to", "127.0.0.1:%d" % cl.ports["doh"]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    asked = answered = 0
    t0 = time.monotonic()
    while flood.poll() is None and time.monotonic() - t0 < 60:
        asked += 1
        assert_blocked(doh_get(cl, "/dns-query/" + PHONE, ADULT))
        answered += 1
    out, _ = flood.communicate(timeout=60)
    took = time.monotonic() - t0
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", out)
    assert m, "h2load rc %s: %s" % (flood.returncode, out)
    done, ok = int(m.group(3)), int(m.group(4))
    refused = metric(cl, 'bulwark_client_id_refused_total{reason="unknown"}') - ref0
    dropped = metric(cl, 'bulwark_client_id_dropped_total{reason="unknown"}') - drop0
    rss1 = rss_kb(cl.pid)
    print("\nflood: %d made-up IDs in %.1f s (%.0f/s): %d answered (REFUSED), %d reset; "
          "refused %d, dropped %d; the phone: %d of %d answered; RSS %d -> %d kB"
          % (done, took, done / took, ok, done - ok, refused, dropped, answered, asked, rss0,
             rss1))
    assert answered == asked and asked > 0
    assert done == n, out
    assert refused + dropped == n, (refused, dropped)
    # at most 100 a second per worker (2 workers), plus one burst each
    assert refused <= 2 * 100 * (took + 1) + 2 * 100, (refused, dropped)
    # ASan keeps freed memory in its quarantine (256 MB by default) before reusing it
    with open("/proc/%d/maps" % cl.pid) as f:
        quarantine = 256 * 1024 if "libasan" in f.read() else 0
    assert rss1 - rss0 < 16 * 1024 + quarantine, (rss0, rss1)
    cl.assert_alive()


def test_revoked_id_is_refused_after_reload(cl):
    assert_addr(doh_get(cl, "/dns-query/" + LAPTOP, MAL), "192.0.2.130")
    write_clients(cl.clients_file, [k for k in CLIENTS if k != "laptop"])
    try:
        p = conftest.ctl(os.path.join(cl.d, "state"), "reload")
        assert p.returncode == 0, p.stdout + p.stderr
        deadline = time.monotonic() + 10
        while True:
            r = doh_get(cl, "/dns-query/" + LAPTOP, MAL)
            if r.rcode() == dns.rcode.REFUSED or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert_refused(r, "unknown ClientID")
        out = kdig_ok(dot_kdig(cl, LAPTOP + ".dns.example", MAL))
        assert "REFUSED" in out, out
        assert_blocked(doh_get(cl, "/dns-query/" + PHONE, ADULT))  # the others still work
    finally:
        write_clients(cl.clients_file, CLIENTS.keys())
        conftest.ctl(os.path.join(cl.d, "state"), "reload")
        time.sleep(0.5)


def test_bulwarkctl_add_setup_query_remove(cl):
    """The whole life of a roaming device: bulwarkctl client add prints its ID, client setup
    prints the URL the device uses, that URL gets the client's profile at once, and client
    remove revokes it."""
    def ctl(*args):
        p = subprocess.run([conftest.ctl_binary(), "-c", cl.config_path] + list(args),
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    try:
        out = ctl("client", "add", "nadia-phone", "--profile", "family")
        cid = re.search(r"\b([a-z2-7]{26})\b", out).group(1)
        setup = json.loads(ctl("--json", "client", "setup", "nadia-phone"))
        url = setup["result"]["doh_url"] if "result" in setup else setup["doh_url"]
        assert url == "https://dns.example:%d/dns-query/%s" % (cl.ports["doh"], cid), setup
        path = url.split(":%d" % cl.ports["doh"], 1)[1]
        assert_blocked(doh_get(cl, path, ADULT))                      # family, at once
        assert_addr(doh_get(cl, path, WEB_OK), "127.0.0.80")
        ctl("client", "remove", "nadia-phone")
        assert_refused(doh_get(cl, path, ADULT), "unknown ClientID")
    finally:
        write_clients(cl.clients_file, CLIENTS.keys())
        conftest.ctl(os.path.join(cl.d, "state"), "reload")
        time.sleep(0.5)
