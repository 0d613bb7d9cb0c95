"""Encrypted transports end to end: DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484,
HTTP/2 and HTTP/1.1) with real clients (kdig +tls / +https, curl --doh-url fetching a page
from a private nginx, Python's ssl and h2), profiles chosen by TLS server name and by DoH
path, EDNS padding (RFC 8467), DDR (RFC 9462), certificate reload on SIGHUP, and hostile
clients (slow handshakes, garbage, HTTP/2 floods, huge headers, connection caps).

Certificates are made by the test with openssl: a test CA and a server certificate for
dns.example, family.dns.example, private.dns.example and 127.0.0.1."""

import base64
import os
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import conftest
import dnsutil
from dnsutil import describe

BLOCK = 468
NAMES = ["dns.example", "family.dns.example", "private.dns.example"]


# -- certificates -----------------------------------------------------------------------------
def openssl(*args, cwd):
    p = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    assert p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr)


def make_ca(d):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Bulwark Test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return os.path.join(d, "ca.pem")


def make_cert(d, prefix, cn="dns.example"):
    """A server certificate signed by the test CA: prefix.pem (chain) and prefix.key."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", prefix + ".key", "-out", prefix + ".csr", "-subj", "/CN=" + cn, cwd=d)
    with open(os.path.join(d, prefix + ".ext"), "w") as f:
        f.write("subjectAltName=%s,IP:127.0.0.1\n" % ",".join("DNS:" + n for n in NAMES))
        f.write("extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", prefix + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", prefix + ".pem", "-days", "2", "-extfile",
            prefix + ".ext", cwd=d)
    return os.path.join(d, prefix + ".pem"), os.path.join(d, prefix + ".key")


# -- the daemon -------------------------------------------------------------------------------
FEED_NAMES = {
    "fmal": ("malware", ["prof-mal.insecure.tld", "web-blocked.insecure.tld"]),
    "fadult": ("adult", ["prof-adult.insecure.tld"]),
}


def other_port(*taken):
    while True:
        p = conftest.free_port()
        if p not in taken:
            return p


def encrypted_config(internet, d, port, ports, cert, key, server_extra=None):
    feeds = []
    for name, (cat, names) in FEED_NAMES.items():
        feeds.append({"name": name, "category": cat, "format": "domains",
                      "file": conftest.write_domains(os.path.join(d, name + ".txt"), names)})
    listen = [
        {"address": "127.0.0.1", "port": port},
        {"address": "127.0.0.1", "port": ports["dot"], "transport": "dot",
         "tls-cert": cert, "tls-key": key, "tls-name": "dns.example",
         "sni": {"family.dns.example": "family", "private.dns.example": "private"}},
        {"address": "127.0.0.1", "port": ports["doh"], "transport": "doh",
         "tls-cert": cert, "tls-key": key, "tls-name": "dns.example",
         "doh-paths": {"/dns-query": None, "/dns-query/family": "family",
                       "/dns-query/private": "private"},
         "sni": {"family.dns.example": "family"}},
    ]
    profiles = [
        {"name": "private", "feeds": "none"},
        {"name": "protected", "categories": ["malware", "phishing"]},
        {"name": "family", "categories": ["malware", "phishing", "adult"]},
    ]
    server = {"listen": listen, "tls-handshake-timeout": "1s"}
    server.update(server_extra or {})
    return conftest.default_config(internet, port, d, feeds=feeds, allowlist=[], server=server,
                                   policy={"profiles": profiles,
                                           "default-profile": "protected"})


@pytest.fixture(scope="module")
def enc(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("encrypted"))
    ca = make_ca(d)
    cert, key = make_cert(d, "server")
    ports = {}

    def config(port, workdir):
        ports["dns"] = port
        ports["dot"] = other_port(port)
        ports["doh"] = other_port(port, ports["dot"])
        return encrypted_config(internet, workdir, port, ports, cert, key)

    daemon = bulwark_module(config, workdir=d)
    daemon.ports = ports
    daemon.ca = ca
    daemon.cert = cert
    daemon.key = key
    daemon.d = d
    return daemon


# -- clients ------------------------------------------------------------------------------------
def tls_context(ca, alpn=None):
    ctx = ssl.create_default_context(cafile=ca)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def tls_connect(port, ca, sni="dns.example", alpn=None, timeout=5.0, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s = tls_context(ca, alpn).wrap_socket(raw, server_hostname=sni, session=session)
    s.settimeout(timeout)
    return s


def dot_exchange(sock, q):
    wire = q.to_wire()
    sock.sendall(struct.pack("!H", len(wire)) + wire)
    n = struct.unpack("!H", dnsutil.recv_exact(sock, 2))[0]
    data = dnsutil.recv_exact(sock, n)
    return dns.message.from_wire(data), data


def dot_query(daemon, name, rdtype="A", sni="dns.example", pad=None):
    q = dnsutil.make_query(name, rdtype)
    if pad is not None:
        q.use_edns(0, payload=1232, options=[dns.edns.GenericOption(12, b"\0" * pad)])
    with tls_connect(daemon.ports["dot"], daemon.ca, sni=sni) as s:
        return dot_exchange(s, q)


def http1(daemon, raw_request, sni="dns.example", timeout=5.0):
    """Sends raw bytes over TLS (ALPN http/1.1); returns (status, headers, body)."""
    with tls_connect(daemon.ports["doh"], daemon.ca, sni=sni, alpn=["http/1.1"],
                     timeout=timeout) as s:
        s.sendall(raw_request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (ssl.SSLError, ConnectionResetError):
                break
            if not chunk:
                break
            data += chunk
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                hdrs = {}
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    hdrs[k.strip().lower().decode()] = v.strip().decode()
                n = int(hdrs.get("content-length", "0"))
                if len(body) >= n:
                    return int(head.split(b" ")[1]), hdrs, body[:n]
    raise AssertionError("no complete HTTP response; got %r" % data[:200])


def b64(wire):
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


def kdig_ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def assert_blocked(r):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert dnsutil.EDE_BLOCKED in dnsutil.ede_codes(r), describe(r)


def assert_addr(r, addr):
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == [addr], describe(r)


# -- DoT ------------------------------------------------------------------------------------------
def test_dot_kdig(enc):
    out = kdig_ok(dnsutil.kdig(enc.ports["dot"], "+tls-ca=" + enc.ca, "+tls-hostname=dns.example",
                               "prof-adult.insecure.tld", "A"))
    assert "192.0.2.132" in out and "NOERROR" in out, out
    out = kdig_ok(dnsutil.kdig(enc.ports["dot"], "+tls-ca=" + enc.ca, "+tls-hostname=dns.example",
                               "prof-mal.insecure.tld", "A"))
    assert "NXDOMAIN" in out, out


def test_dot_wrong_name_is_rejected_by_the_client(enc):
    r = dnsutil.kdig(enc.ports["dot"], "+tls-ca=" + enc.ca, "+tls-hostname=other.example",
                     "prof-adult.insecure.tld", "A")
    assert "192.0.2.132" not in r.stdout, r.stdout


def test_dot_alpn_and_tls_versions(enc):
    with tls_connect(enc.ports["dot"], enc.ca, alpn=["dot"]) as s:
        assert s.selected_alpn_protocol() == "dot"
        assert s.version() == "TLSv1.3"
    ctx = tls_context(enc.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    raw = socket.create_connection(("127.0.0.1", enc.ports["dot"]), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="dns.example") as s:
        assert s.version() == "TLSv1.2"
        r, _ = dot_exchange(s, dnsutil.make_query("prof-adult.insecure.tld.", "A"))
        assert_addr(r, "192.0.2.132")


def test_dot_pipelining_out_of_order(enc):
    """Many queries written at once on one connection, each answered under its own ID;
    a cached name answered before slow recursive ones is out of order."""
    names = ["prof-adult.insecure.tld.", "prof-phish.insecure.tld.", "prof-cache.insecure.tld."]
    dot_query(enc, names[0])  # cached from now on
    with tls_connect(enc.ports["dot"], enc.ca) as s:
        qs = {}
        wire = b""
        for i in range(30):
            q = dnsutil.make_query(names[i % 3] if i else "fmt-dom.insecure.tld.", "A")
            q.id = 1000 + i
            qs[q.id] = q
            w = q.to_wire()
            wire += struct.pack("!H", len(w)) + w
        s.sendall(wire)
        got = {}
        for _ in qs:
            n = struct.unpack("!H", dnsutil.recv_exact(s, 2))[0]
            r = dns.message.from_wire(dnsutil.recv_exact(s, n))
            got[r.id] = r
        assert set(got) == set(qs)
        for qid, r in got.items():
            assert r.question == qs[qid].question


def test_dot_session_resumption(enc):
    ctx = tls_context(enc.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the session is known right after
    raw = socket.create_connection(("127.0.0.1", enc.ports["dot"]), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="dns.example") as s:
        dot_exchange(s, dnsutil.make_query("prof-adult.insecure.tld.", "A"))
        sess = s.session
        assert not s.session_reused
    raw = socket.create_connection(("127.0.0.1", enc.ports["dot"]), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="dns.example", session=sess) as s:
        r, _ = dot_exchange(s, dnsutil.make_query("prof-adult.insecure.tld.", "A"))
        assert_addr(r, "192.0.2.132")
        assert s.session_reused


# -- DoH ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["+https", "+https-get"])
def test_doh_kdig(enc, method):
    args = [method, "+tls-ca=" + enc.ca, "+tls-hostname=dns.example"]
    out = kdig_ok(dnsutil.kdig(enc.ports["doh"], *args, "prof-adult.insecure.tld", "A"))
    assert "192.0.2.132" in out and "NOERROR" in out, out
    out = kdig_ok(dnsutil.kdig(enc.ports["doh"], *args, "prof-mal.insecure.tld", "A"))
    assert "NXDOMAIN" in out, out


def curl(*args, timeout=30):
    return subprocess.run(["curl", "-sS", "--max-time", "20"] + list(args), capture_output=True,
                          timeout=timeout)


def doh_url(enc, path="/dns-query", host="dns.example"):
    return "https://%s:%d%s" % (host, enc.ports["doh"], path)


def resolve_args(enc):
    args = ["--cacert", enc.ca]
    for n in NAMES:
        args += ["--resolve", "%s:%d:127.0.0.1" % (n, enc.ports["doh"])]
    return args


@pytest.mark.parametrize("version", ["--http2", "--http1.1"])
def test_doh_get_and_post_with_curl(enc, version):
    q = dnsutil.make_query("prof-adult.insecure.tld.", "A")
    q.id = 0
    wire = q.to_wire()
    p = curl(version, *resolve_args(enc), "-D", "-", "-o", os.path.join(enc.d, "get.bin"),
             doh_url(enc) + "?dns=" + b64(wire))
    assert p.returncode == 0, p.stderr
    head = p.stdout.decode().lower()
    assert " 200" in head.splitlines()[0], head
    assert "content-type: application/dns-message" in head, head
    assert "cache-control: max-age=" in head, head
    with open(os.path.join(enc.d, "get.bin"), "rb") as f:
        r = dns.message.from_wire(f.read())
    assert_addr(r, "192.0.2.132")
    # the max-age is the answer's TTL
    age = int(head.split("cache-control: max-age=")[1].split()[0])
    assert 0 < age <= r.answer[0].ttl, head
    p = subprocess.run(["curl", "-sS", version] + resolve_args(enc) +
                       ["-o", os.path.join(enc.d, "post.bin"), "-H",
                        "content-type: application/dns-message", "--data-binary", "@-",
                        doh_url(enc)], input=wire, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    with open(os.path.join(enc.d, "post.bin"), "rb") as f:
        r = dns.message.from_wire(f.read())
    assert_addr(r, "192.0.2.132")


def status(enc, version, *args):
    p = curl(version, *resolve_args(enc), "-o", "/dev/null", "-w", "%{http_code}", *args)
    return int(p.stdout.decode() or 0)


@pytest.mark.parametrize("version", ["--http2", "--http1.1"])
def test_doh_status_codes(enc, version):
    wire = dnsutil.make_query("prof-adult.insecure.tld.", "A").to_wire()
    url = doh_url(enc)
    assert status(enc, version, url + "?dns=" + b64(wire)) == 200
    assert status(enc, version, url + "?dns=" + b64(wire) + "==") == 400  # padding
    assert status(enc, version, url + "?dns=!!!!") == 400
    assert status(enc, version, url + "?dns=") == 400
    assert status(enc, version, url + "?other=1") == 400
    assert status(enc, version, url + "?dns=" + b64(b"\0\0\0")) == 400  # shorter than a header
    assert status(enc, version, doh_url(enc, "/elsewhere") + "?dns=" + b64(wire)) == 404
    assert status(enc, version, "-X", "PUT", url) == 405
    assert status(enc, version, "-X", "DELETE", url + "?dns=" + b64(wire)) == 405
    assert status(enc, version, "-H", "content-type: text/plain", "--data-binary", "xx",
                  url) == 415
    big = os.path.join(enc.d, "big.bin")
    with open(big, "wb") as f:
        f.write(b"\0" * 70000)
    assert status(enc, version, "-H", "content-type: application/dns-message",
                  "--data-binary", "@" + big, url) == 413
    enc.assert_alive()


def test_doh_http1_strict_parser(enc):
    wire = dnsutil.make_query("prof-adult.insecure.tld.", "A").to_wire()
    get = "GET /dns-query?dns=%s HTTP/1.1\r\nHost: dns.example\r\n\r\n" % b64(wire)
    st, hdrs, body = http1(enc, get.encode())
    assert st == 200 and hdrs["content-type"] == "application/dns-message"
    assert_addr(dns.message.from_wire(body), "192.0.2.132")
    # keep-alive: two requests pipelined on one connection, answered in order
    st, _, body = http1(enc, (get + get).encode())
    assert st == 200
    post = (b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\n"
            b"Content-Length: %d\r\n\r\n" % len(wire)) + wire
    st, _, body = http1(enc, post)
    assert st == 200
    assert_addr(dns.message.from_wire(body), "192.0.2.132")
    assert http1(enc, b"GARBAGE\r\n\r\n")[0] == 400
    assert http1(enc, b"GET /dns-query HTTP/1.0\r\nHost: x\r\n\r\n")[0] == 505
    assert http1(enc, b"GET /dns-query?dns=x HTTP/1.1\r\n\r\n")[0] == 400  # no Host
    assert http1(enc, b"POST /dns-query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                      b"\r\n\r\n")[0] == 501
    assert http1(enc, b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n")[0] == 400
    assert http1(enc, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 9000 + b"\r\n\r\n")[0] == 431
    assert http1(enc, b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n"
                      b"\r\n")[0] == 413
    enc.assert_alive()


# -- curl fetching a page by a name Bulwark resolves over DoH, from a private nginx ----------------
@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    if not shutil.which("nginx") and not os.path.exists("/usr/sbin/nginx"):
        pytest.fail("nginx is not installed (Debian package nginx; tools/deps.sh installs it)")
    d = str(tmp_path_factory.mktemp("nginx"))
    os.makedirs(os.path.join(d, "html"))
    os.makedirs(os.path.join(d, "logs"))
    with open(os.path.join(d, "html", "index.html"), "w") as f:
        f.write("<html><title>bulwark-ok</title><body>hello from nginx</body></html>\n")
    port = conftest.free_port()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("""daemon off;
master_process off;
worker_processes 1;
error_log %(d)s/logs/error.log;
pid %(d)s/nginx.pid;
events { worker_connections 64; }
http {
  access_log %(d)s/logs/access.log;
  client_body_temp_path %(d)s/tmp-body;
  proxy_temp_path %(d)s/tmp-proxy;
  fastcgi_temp_path %(d)s/tmp-fcgi;
  uwsgi_temp_path %(d)s/tmp-uwsgi;
  scgi_temp_path %(d)s/tmp-scgi;
  server {
    listen 127.0.0.80:%(port)d;
    root %(d)s/html;
  }
}
""" % {"d": d, "port": port})
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen([nginx_bin, "-p", d, "-c", os.path.join(d, "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.80", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("nginx did not start: %s" % proc.stderr.read().decode())
            time.sleep(0.05)
    yield port
    proc.terminate()
    proc.wait(5)


def test_curl_doh_url_fetches_page(enc, nginx):
    base = ["--doh-url", doh_url(enc, host="127.0.0.1"), "--cacert", enc.ca]
    p = curl(*base, "http://web-ok.insecure.tld:%d/" % nginx)
    assert p.returncode == 0, p.stderr
    assert b"hello from nginx" in p.stdout
    p = curl(*base, "http://web-blocked.insecure.tld:%d/" % nginx)
    assert p.returncode != 0, p.stdout
    assert b"resolve" in p.stderr.lower(), p.stderr


# -- profiles by server name and path -------------------------------------------------------------
def test_profile_by_sni_dot(enc):
    r, _ = dot_query(enc, "prof-adult.insecure.tld.", sni="dns.example")
    assert_addr(r, "192.0.2.132")  # protected (default)
    r, _ = dot_query(enc, "prof-adult.insecure.tld.", sni="family.dns.example")
    assert_blocked(r)
    r, _ = dot_query(enc, "prof-mal.insecure.tld.", sni="private.dns.example")
    assert_addr(r, "192.0.2.130")
    r, _ = dot_query(enc, "prof-mal.insecure.tld.", sni="dns.example")
    assert_blocked(r)


def test_profile_by_sni_and_path_doh(enc):
    wire = dnsutil.make_query("prof-adult.insecure.tld.", "A").to_wire()

    def get(path, host="dns.example", name="prof-adult.insecure.tld."):
        w = dnsutil.make_query(name, "A").to_wire()
        out = os.path.join(enc.d, "prof.bin")
        p = curl(*resolve_args(enc), "-o", out, doh_url(enc, path, host) + "?dns=" + b64(w))
        assert p.returncode == 0, p.stderr
        with open(out, "rb") as f:
            return dns.message.from_wire(f.read())

    assert wire
    assert_addr(get("/dns-query"), "192.0.2.132")
    assert_blocked(get("/dns-query/family"))
    assert_blocked(get("/dns-query", host="family.dns.example"))
    # the path wins over the server name
    assert_addr(get("/dns-query/private", host="family.dns.example",
                    name="prof-mal.insecure.tld."), "192.0.2.130")
    out = kdig_ok(dnsutil.kdig(enc.ports["doh"], "+https=/dns-query/family", "+tls-ca=" + enc.ca,
                               "+tls-hostname=dns.example", "prof-adult.insecure.tld", "A"))
    assert "NXDOMAIN" in out, out


# -- padding --------------------------------------------------------------------------------------
def padding_len(r):
    for o in r.options:
        if o.otype == 12:
            return len(o.to_wire()) if hasattr(o, "to_wire") else len(o.data)
    return None


def test_padding_on_encrypted_only(enc):
    r, wire = dot_query(enc, "prof-adult.insecure.tld.", pad=100)
    assert len(wire) % BLOCK == 0, len(wire)
    assert padding_len(r) is not None, describe(r)
    # a query without padding gets none
    r, wire = dot_query(enc, "prof-adult.insecure.tld.")
    assert padding_len(r) is None, describe(r)
    # plain DNS: never padded, even when asked
    q = dnsutil.make_query("prof-adult.insecure.tld.", "A")
    q.use_edns(0, payload=1232, options=[dns.edns.GenericOption(12, b"\0" * 100)])
    for tcp in (False, True):
        r = dnsutil.send(enc.ports["dns"], q, tcp=tcp)
        assert_addr(r, "192.0.2.132")
        assert padding_len(r) is None, describe(r)
    # DoH: per request
    out = os.path.join(enc.d, "pad.bin")
    p = curl(*resolve_args(enc), "-o", out, doh_url(enc) + "?dns=" + b64(q.to_wire()))
    assert p.returncode == 0, p.stderr
    with open(out, "rb") as f:
        data = f.read()
    assert len(data) % BLOCK == 0, len(data)
    out = kdig_ok(dnsutil.kdig(enc.ports["dot"], "+tls-ca=" + enc.ca,
                               "+tls-hostname=dns.example", "+padding", "prof-adult.insecure.tld"))
    assert "Received 468 B" in out, out


# -- DDR ------------------------------------------------------------------------------------------
def test_ddr_svcb(enc):
    r = dnsutil.query(enc.ports["dns"], "_dns.resolver.arpa.", "SVCB")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    rrs = [rr for rrset in r.answer for rr in rrset]
    assert len(rrs) == 2, describe(r)
    by_port = {rr.params[dns.rdtypes.svcbbase.ParamKey.PORT].port: rr for rr in rrs}
    dot = by_port[enc.ports["dot"]]
    doh = by_port[enc.ports["doh"]]
    assert str(dot.target) == "dns.example." and str(doh.target) == "dns.example."
    P = dns.rdtypes.svcbbase.ParamKey
    assert [a.decode() for a in dot.params[P.ALPN].ids] == ["dot"]
    assert [a.decode() for a in doh.params[P.ALPN].ids] == ["h2", "http/1.1"]
    assert [str(a) for a in dot.params[P.IPV4HINT].addresses] == ["127.0.0.1"]
    dohpath = doh.params[7]  # RFC 9461 dohpath (key 7; generic in this dnspython)
    assert getattr(dohpath, "value", None) == b"/dns-query{?dns}", dohpath
    # other types: NODATA
    r = dnsutil.query(enc.ports["dns"], "_dns.resolver.arpa.", "A")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)


# -- reload ---------------------------------------------------------------------------------------
def peer_serial(sock):
    der = sock.getpeercert(binary_form=True)
    p = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], input=der,
                       capture_output=True)
    return p.stdout.strip()


# -- hostile clients ------------------------------------------------------------------------------
def closed_within(sock, seconds):
    sock.settimeout(seconds)
    t0 = time.monotonic()
    try:
        data = sock.recv(100)
    except socket.timeout:
        return None
    except OSError:
        data = b""
    return time.monotonic() - t0 if data == b"" else None


def test_slow_handshake_is_cut(enc):
    for port in (enc.ports["dot"], enc.ports["doh"]):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, then nothing
        t = closed_within(s, 5)
        s.close()
        assert t is not None and t < 4, "not closed after the 1s handshake timeout"
    r, _ = dot_query(enc, "prof-adult.insecure.tld.")
    assert_addr(r, "192.0.2.132")


def test_garbage_never_crashes(enc):
    import random
    rnd = random.Random(7)
    for port in (enc.ports["dot"], enc.ports["doh"]):
        for n in (1, 5, 100, 3000):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(bytes(rnd.randrange(256) for _ in range(n)))
            closed_within(s, 3)
            s.close()
    # valid TLS, then garbage DNS framing / HTTP/2 garbage
    with tls_connect(enc.ports["dot"], enc.ca) as s:
        s.sendall(b"\x00\x05hello\x00\x00\xff\xff" + b"x" * 100)
    with tls_connect(enc.ports["doh"], enc.ca, alpn=["h2"]) as s:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 200)
        closed_within(s, 3)
    enc.assert_alive()
    r, _ = dot_query(enc, "prof-adult.insecure.tld.")
    assert_addr(r, "192.0.2.132")


def h2_conn(enc):
    import h2.config
    import h2.connection
    s = tls_connect(enc.ports["doh"], enc.ca, alpn=["h2"])
    assert s.selected_alpn_protocol() == "h2"
    c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                             header_encoding="utf-8"))
    c.initiate_connection()
    s.sendall(c.data_to_send())
    return s, c


def h2_get_headers(path):
    return [(":method", "GET"), (":scheme", "https"), (":authority", "dns.example"),
            (":path", path), ("accept", "application/dns-message")]


def h2_collect(s, c, want, timeout=10):
    """Reads until `want` streams ended or were reset, or the server ended the connection;
    returns ({stream: [status, data]}, the GOAWAY error code or None)."""
    import h2.events
    res, done, goaway = {}, set(), None
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    while len(done) < want and goaway is None and time.monotonic() < deadline:
        try:
            data = s.recv(65536)
        except (socket.timeout, ssl.SSLError, OSError):
            break
        if not data:
            break
        for ev in c.receive_data(data):
            if isinstance(ev, h2.events.ResponseReceived):
                res.setdefault(ev.stream_id, [None, b""])[0] = dict(ev.headers)[":status"]
            elif isinstance(ev, h2.events.DataReceived):
                res.setdefault(ev.stream_id, [None, b""])[1] += ev.data
                c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                done.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                res[ev.stream_id] = ["reset", b""]
                done.add(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                goaway = ev.error_code
        try:
            s.sendall(c.data_to_send())
        except OSError:
            break
    return res, goaway


def test_h2_many_concurrent_streams(enc):
    s, c = h2_conn(enc)
    wire = dnsutil.make_query("prof-adult.insecure.tld.", "A").to_wire()
    ids = []
    for _ in range(50):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, h2_get_headers("/dns-query?dns=" + b64(wire)), end_stream=True)
        ids.append(sid)
    s.sendall(c.data_to_send())
    res, goaway = h2_collect(s, c, len(ids))
    s.close()
    assert goaway is None
    assert sorted(res) == ids
    for sid in ids:
        st, data = res[sid]
        assert st == "200", res[sid]
        assert_addr(dns.message.from_wire(data), "192.0.2.132")


def test_h2_rapid_reset_is_bounded(enc):
    s, c = h2_conn(enc)
    wire = dnsutil.make_query("fmt-dom.insecure.tld.", "A").to_wire()
    for i in range(2000):
        sid = c.get_next_available_stream_id()
        c.send_headers(sid, h2_get_headers("/dns-query?dns=" + b64(wire)), end_stream=True)
        c.reset_stream(sid)
    try:
        s.sendall(c.data_to_send())
    except OSError:
        pass
    res, goaway = h2_collect(s, c, 10**6, timeout=5)
    s.close()
    assert goaway == 11, "2000 stream resets in a burst must end the connection with " \
        "GOAWAY(ENHANCE_YOUR_CALM), got %r" % goaway
    enc.assert_alive()
    r, _ = dot_query(enc, "prof-adult.insecure.tld.")
    assert_addr(r, "192.0.2.132")


def test_h2_huge_headers_are_refused(enc):
    s, c = h2_conn(enc)
    wire = dnsutil.make_query("prof-adult.insecure.tld.", "A").to_wire()
    big = c.get_next_available_stream_id()
    c.send_headers(big, h2_get_headers("/dns-query?dns=" + b64(wire)) +
                   [("x-big-%d" % i, "v" * 1000) for i in range(20)], end_stream=True)
    ok = c.get_next_available_stream_id()
    c.send_headers(ok, h2_get_headers("/dns-query?dns=" + b64(wire)), end_stream=True)
    s.sendall(c.data_to_send())
    res, goaway = h2_collect(s, c, 2)
    s.close()
    assert res.get(big, [None])[0] != "200", res
    if goaway is None:
        assert res[ok][0] == "200", res
    enc.assert_alive()


# -- a daemon of its own: reload, caps ------------------------------------------------------------
def test_cert_reload_on_sighup_keeps_connections(bulwark, internet, tmp_path):
    d = str(tmp_path)
    ca = make_ca(d)
    cert, key = make_cert(d, "server")
    ports = {}

    def config(port, workdir):
        ports["dot"] = other_port(port)
        ports["doh"] = other_port(port, ports["dot"])
        return encrypted_config(internet, workdir, port, ports, cert, key,
                                {"workers": 1, "tcp-idle-timeout": "30s"})

    daemon = bulwark(config, workdir=d)
    old = tls_connect(ports["dot"], ca)
    serial1 = peer_serial(old)
    cert2, key2 = make_cert(d, "server2")
    shutil.copy(cert2, cert)
    shutil.copy(key2, key)
    daemon.reload()
    deadline = time.monotonic() + 10
    while True:
        with tls_connect(ports["dot"], ca) as s:
            serial2 = peer_serial(s)
        if serial2 != serial1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert serial2 != serial1, "new connections must get the reloaded certificate"
    with tls_connect(ports["doh"], ca, alpn=["h2"]) as s:
        assert peer_serial(s) == serial2
    # the connection made before the reload still works, with the old certificate
    r, _ = dot_exchange(old, dnsutil.make_query("prof-adult.insecure.tld.", "A"))
    assert_addr(r, "192.0.2.132")
    assert peer_serial(old) == serial1
    old.close()
    # a broken certificate file: the running one stays
    with open(cert, "w") as f:
        f.write("not a certificate\n")
    daemon.reload()
    time.sleep(0.5)
    with tls_connect(ports["dot"], ca) as s:
        assert peer_serial(s) == serial2
    assert "keeping the old certificate" in daemon.log_text()


def test_connection_cap(bulwark, internet, tmp_path):
    d = str(tmp_path)
    make_ca(d)
    ca = os.path.join(d, "ca.pem")
    cert, key = make_cert(d, "server")
    ports = {}

    def config(port, workdir):
        ports["dot"] = other_port(port)
        ports["doh"] = other_port(port, ports["dot"])
        return encrypted_config(internet, workdir, port, ports, cert, key,
                                {"workers": 1, "tcp-max-connections": 3,
                                 "tcp-max-connections-per-client": 3})

    bulwark(config, workdir=d)
    for kind in ("dot", "doh"):
        held = [tls_connect(ports[kind], ca, alpn=["h2"] if kind == "doh" else None)
                for _ in range(3)]
        with pytest.raises((ssl.SSLError, OSError)):
            extra = tls_connect(ports[kind], ca, timeout=3)
            extra.close()
        for s in held:
            s.close()
        time.sleep(0.3)
        # room again
        tls_connect(ports[kind], ca).close()


def test_encrypted_config_errors(bulwark, internet, tmp_path):
    d = str(tmp_path)
    bin_ = conftest.bulwark_binary()
    cases = [
        ("{address: 127.0.0.1, port: 8853, transport: dot}", "tls-cert"),
        ("{address: 127.0.0.1, port: 53, tls-cert: x.pem}", "only for encrypted listeners"),
        ("{address: 127.0.0.1, transport: dot, tls-cert: c.pem, tls-key: c.pem, "
         "doh-paths: {/q: ~}}", "only for transport: doh"),
        ("{address: 127.0.0.1, transport: doh, tls-cert: c.pem, tls-key: c.pem, "
         "doh-paths: {q: ~}}", "must start with '/'"),
        ("{address: 127.0.0.1, transport: doh, tls-cert: c.pem, tls-key: c.pem, "
         "sni: {a.example: nosuch}}", "unknown profile 'nosuch'"),
        ("{address: 127.0.0.1, transport: quic}", "not supported"),
    ]
    with open(os.path.join(d, "c.pem"), "w") as f:
        f.write("x\n")
    for listen, want in cases:
        path = os.path.join(d, "bad.yaml")
        with open(path, "w") as f:
            f.write("server:\n  listen:\n    - %s\n" % listen)
        p = subprocess.run([bin_, "--check-config", path], capture_output=True, text=True)
        assert p.returncode != 0, listen
        assert want in p.stderr + p.stdout, (listen, p.stderr + p.stdout)
        assert "bad.yaml:" in p.stderr + p.stdout


# -- headless Chromium with Bulwark as its secure DNS ------------------------------------------
CHROMIUM_RUN = r"""
set -e
# a private view of /etc/chromium with our DoH policy (only this mount namespace sees it)
mount --bind "$ETC" /etc/chromium
for url in "$@"; do
  timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$HOME/profile" --dump-dom "$url" > "$OUT/$(printf %s "$url" | tr -c 'a-z0-9' _).dom" \
    2>> "$OUT/chromium.err" || echo "chromium exit $? for $url" >> "$OUT/chromium.err"
done
"""


def run_chromium(d, template, urls, ca):
    """Loads urls in headless Chromium whose only DNS is DoH at template (policy
    DnsOverHttpsMode=secure) with the test CA trusted (an NSS db in a private HOME).
    Returns {url: dom text}."""
    home = os.path.join(d, "home")
    etc = os.path.join(d, "etc-chromium")
    out = os.path.join(d, "out")
    for p in (os.path.join(home, ".pki", "nssdb"), os.path.join(etc, "policies", "managed"), out):
        os.makedirs(p, exist_ok=True)
    for name in os.listdir("/etc/chromium"):
        src = os.path.join("/etc/chromium", name)
        if os.path.isfile(src):
            shutil.copy(src, etc)
    with open(os.path.join(etc, "policies", "managed", "bulwark-doh.json"), "w") as f:
        f.write('{"DnsOverHttpsMode": "secure", "DnsOverHttpsTemplates": "%s", '
                '"BuiltInDnsClientEnabled": true}\n' % template)
    db = "sql:" + os.path.join(home, ".pki", "nssdb")
    for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "bulwark-test-ca", "-i", ca]):
        p = subprocess.run(["certutil", "-d", db] + args, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    env = dict(os.environ, HOME=home, ETC=etc, OUT=out)
    p = subprocess.run(["unshare", "-m", "bash", "-c", CHROMIUM_RUN, "chromium-run"] + urls,
                       env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    res = {}
    for url in urls:
        fn = os.path.join(out, "".join(c if c.isalnum() and c.islower() or c.isdigit() else "_"
                                       for c in url) + ".dom")
        with open(fn, errors="replace") as f:
            res[url] = f.read()
    return res


def test_chromium_secure_dns(enc, nginx, tmp_path):
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed (Debian package chromium; tools/deps.sh)")
    if not shutil.which("certutil"):
        pytest.fail("certutil is not installed (Debian package libnss3-tools; tools/deps.sh)")
    ok = "http://web-ok.insecure.tld:%d/" % nginx
    blocked = "http://web-blocked.insecure.tld:%d/" % nginx
    template = "https://127.0.0.1:%d/dns-query{?dns}" % enc.ports["doh"]
    dom = run_chromium(str(tmp_path / "on"), template, [ok, blocked], enc.ca)
    assert "hello from nginx" in dom[ok], dom[ok][:500]
    assert "hello from nginx" not in dom[blocked], dom[blocked][:500]
    # control: with the DoH server elsewhere (nothing listens), even the allowed page fails,
    # so the page above came through Bulwark's DoH and nothing else
    dead = "https://127.0.0.1:%d/dns-query{?dns}" % other_port(enc.ports["doh"])
    dom = run_chromium(str(tmp_path / "off"), dead, [ok], enc.ca)
    assert "hello from nginx" not in dom[ok], dom[ok][:500]
