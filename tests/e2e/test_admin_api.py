"""tests/e2e/test_admin_api.py - the admin HTTP API's framework against the real daemon,
over real HTTP (http.client): health, tokens and roles, sessions (cookie flags, CSRF,
logout), the failed-login limit, the audit log, `bulwarkctl token`, hostile input (bad
JSON, an oversized body, path traversal, wrong methods, a slow client), the dashboard's
files, TLS, and the config check of a non-loopback listener without TLS.

Routing is tested with the actions that exist: status (viewer) and reload (admin, a
change). Other helpers' endpoints have their own test files.
"""

import http.client
import json
import os
import socket
import ssl
import subprocess
import time

import pytest

from conftest import bulwark_binary, ctl_binary, default_config, free_port
from test_encrypted import make_ca, make_cert

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


# -- helpers ----------------------------------------------------------------------------------
def token(config_path, name, role):
    p = subprocess.run([ctl_binary(), "-c", config_path, "token", "create", name, "--role", role],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bwk_") and len(lines[0]) == 47, p.stdout
    return lines[0]


def ctl_token(config_path, *args):
    return subprocess.run([ctl_binary(), "-c", config_path, "token"] + list(args),
                          capture_output=True, text=True, timeout=30)


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())


def request(port, method, path, body=None, headers=None, source=None, tls=None, timeout=10):
    if tls:
        c = http.client.HTTPSConnection("127.0.0.1", port, context=tls, timeout=timeout)
    else:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                       source_address=(source, 0) if source else None)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {}
    for k, v in r.getheaders():
        hdrs.setdefault(k.lower(), v)
    hdrs["set-cookie-all"] = r.msg.get_all("Set-Cookie") or []
    c.close()
    return Answer(r.status, hdrs, data)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


def audit_lines(d):
    path = os.path.join(d, "state", "audit.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def admin_config(internet, port, d, admin):
    conf = default_config(internet, port, d)
    conf["admin"] = admin
    return conf


@pytest.fixture(scope="module")
def api(bulwark_module, internet, tmp_path_factory):
    """One daemon with an admin listener on loopback, a viewer and an admin token."""
    d = str(tmp_path_factory.mktemp("admin"))
    www = os.path.join(d, "www")
    os.makedirs(os.path.join(www, "assets"))
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<!doctype html><title>test placeholder</title>\n")
    with open(os.path.join(www, "assets", "app.css"), "w") as f:
        f.write("body { color: black }\n")
    os.symlink("/etc/passwd", os.path.join(www, "assets", "out.css"))
    aport = free_port()
    cfg = {"listen": "127.0.0.1@%d" % aport, "www-dir": www, "session-minutes": 5}
    daemon = bulwark_module(lambda port, wd: admin_config(internet, port, wd, cfg), workdir=d)
    daemon.aport = aport
    daemon.viewer = token(daemon.config_path, "alice-viewer", "viewer")
    daemon.admin = token(daemon.config_path, "bob-admin", "admin")
    deadline = time.monotonic() + 10
    while request(aport, "GET", "/api/v1/status", headers=bearer(daemon.admin),
                  source="127.0.0.5").status != 200:
        assert time.monotonic() < deadline, "the new tokens were not picked up"
        time.sleep(0.2)
    return daemon


def login(api, tok=None, source=None):
    r = request(api.aport, "POST", "/api/v1/login", {"token": tok or api.admin}, source=source)
    assert r.status == 200, r.body
    cookie = r.header("set-cookie-all")[0]
    return r, cookie.split(";")[0], r.json()["result"]["csrf"]


# -- health, tokens, roles ----------------------------------------------------------------------
def test_health_needs_no_token(api):
    r = request(api.aport, "GET", "/api/v1/health")
    assert r.status == 200 and r.json() == {"ok": True, "result": {"status": "ok"}}
    for k, v in SECURITY_HEADERS.items():
        assert r.header(k) == v
    assert r.header("cache-control") == "no-store"


@pytest.mark.parametrize("method,path", [("GET", "/api/v1/status"), ("POST", "/api/v1/reload"),
                                         ("GET", "/api/v1/whoami"), ("POST", "/api/v1/logout")])
def test_401_without_a_token(api, method, path):
    r = request(api.aport, method, path)
    assert r.status == 401, r.body
    assert r.json()["ok"] is False and "token" in r.json()["error"]
    assert r.header("www-authenticate").startswith("Bearer")
    # a wrong token counts as a failed login: from an address of its own
    r = request(api.aport, method, path, headers=bearer("bwk_" + "A" * 43), source="127.0.0.3")
    assert r.status == 401


def test_viewer_reads_but_cannot_act(api):
    r = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer))
    assert r.status == 200, r.body
    s = r.json()["result"]
    for key in ("version", "uptime", "workers", "policy_generation", "feeds_loaded",
                "feeds_total", "blocked_names", "cache", "queries", "blocked", "protection"):
        assert key in s, key
    assert s["protection"] == "on" and s["feeds_loaded"] == 2 and s["feeds_total"] == 2
    assert set(s["cache"]) >= {"entries", "hits", "misses", "hit_ratio"}
    r = request(api.aport, "POST", "/api/v1/reload", headers=bearer(api.viewer))
    assert r.status == 403 and "admin" in r.json()["error"]


def test_status_counts_queries(api):
    before = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()
    api.query("blocked.insecure.tld")
    after = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()
    assert after["result"]["queries"] > before["result"]["queries"]
    assert after["result"]["blocked"] > before["result"]["blocked"]
    # every blocked query counts, the repeats the cache answers too
    for _ in range(5):
        api.query("blocked.insecure.tld")
    again = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()
    assert again["result"]["blocked"] == after["result"]["blocked"] + 5, again


def test_status_says_when_protection_is_paused(api):
    s = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()["result"]
    assert s["protection"] == "on" and s["paused"] == []
    r = request(api.aport, "POST", "/api/v1/pause", headers=bearer(api.admin),
                body={"profile": "default", "minutes": 5})
    assert r.status == 200, r.body
    try:
        s = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()["result"]
        assert s["protection"] == "paused", s
        assert [(p["profile"], p["by"]) for p in s["paused"]] == [("default", "token bob-admin")], s
        assert s["paused"][0]["until"] > time.time() + 200
    finally:
        r = request(api.aport, "POST", "/api/v1/resume", headers=bearer(api.admin),
                    body={"profile": "default"})
    assert r.status == 200, r.body
    s = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.viewer)).json()["result"]
    assert s["protection"] == "on" and s["paused"] == []


def test_admin_acts_and_is_audited(api):
    gen = request(api.aport, "GET", "/api/v1/status",
                  headers=bearer(api.admin)).json()["result"]["policy_generation"]
    r = request(api.aport, "POST", "/api/v1/reload", headers=bearer(api.admin))
    assert r.status == 200 and r.json()["ok"] is True
    deadline = time.monotonic() + 10
    while request(api.aport, "GET", "/api/v1/status",
                  headers=bearer(api.admin)).json()["result"]["policy_generation"] == gen:
        assert time.monotonic() < deadline, "reload did not happen"
        time.sleep(0.1)
    lines = [x for x in audit_lines(api.dir) if x["action"] == "reload" and x["ok"]]
    assert any(x["who"] == "token bob-admin" for x in lines), lines
    assert all(api.admin not in json.dumps(x) for x in audit_lines(api.dir))


# -- sessions and CSRF ----------------------------------------------------------------------------
def test_login_cookie_csrf_logout(api):
    r, cookie, csrf = login(api)
    assert r.json()["result"]["name"] == "bob-admin" and r.json()["result"]["role"] == "admin"
    flags = [f.strip().lower() for f in r.header("set-cookie-all")[0].split(";")]
    assert flags[0].startswith("bulwark_session=") and len(flags[0]) == len("bulwark_session=") + 32
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "max-age=300" in flags and "secure" not in flags  # plain HTTP on loopback
    h = {"Cookie": cookie}
    who = request(api.aport, "GET", "/api/v1/whoami", headers=h)
    assert who.status == 200 and who.json()["result"]["csrf"] == csrf
    assert request(api.aport, "GET", "/api/v1/status", headers=h).status == 200
    # a change with the cookie needs the CSRF header
    r = request(api.aport, "POST", "/api/v1/reload", headers=h)
    assert r.status == 403 and "CSRF" in r.json()["error"]
    r = request(api.aport, "POST", "/api/v1/reload", headers=dict(h, **{"X-Bulwark-CSRF": "0" * 32}))
    assert r.status == 403
    r = request(api.aport, "POST", "/api/v1/reload", headers=dict(h, **{"X-Bulwark-CSRF": csrf}))
    assert r.status == 200, r.body
    assert request(api.aport, "POST", "/api/v1/logout", headers=h).status == 403
    r = request(api.aport, "POST", "/api/v1/logout", headers=dict(h, **{"X-Bulwark-CSRF": csrf}))
    assert r.status == 200
    assert "max-age=0" in r.header("set-cookie-all")[0].lower()
    assert request(api.aport, "GET", "/api/v1/whoami", headers=h).status == 401
    logins = [x for x in audit_lines(api.dir) if x["action"] in ("login", "logout")]
    assert any(x["action"] == "login" and x["ok"] and x["who"] == "token bob-admin"
               for x in logins)
    assert any(x["action"] == "logout" for x in logins)


def test_viewer_session_cannot_act(api):
    _, cookie, csrf = login(api, api.viewer)
    r = request(api.aport, "POST", "/api/v1/reload",
                headers={"Cookie": cookie, "X-Bulwark-CSRF": csrf})
    assert r.status == 403 and "admin" in r.json()["error"]


def test_failed_logins_are_limited_and_audited(api):
    # from 127.0.0.2, so that the other tests' logins from 127.0.0.1 are not limited
    for _ in range(5):
        r = request(api.aport, "POST", "/api/v1/login", {"token": "bwk_wrong"}, source="127.0.0.2")
        assert r.status == 401
    r = request(api.aport, "POST", "/api/v1/login", {"token": "bwk_wrong"}, source="127.0.0.2")
    assert r.status == 429 and r.header("retry-after") == "60"
    # even the right token waits, from there
    r = request(api.aport, "POST", "/api/v1/login", {"token": api.admin}, source="127.0.0.2")
    assert r.status == 429
    r = request(api.aport, "GET", "/api/v1/status", headers=bearer(api.admin), source="127.0.0.2")
    assert r.status == 429
    login(api)  # another address is not held up
    failed = [x for x in audit_lines(api.dir)
              if x["action"] == "login" and not x["ok"] and x["who"] == "login from 127.0.0.2"]
    assert len(failed) >= 5


# -- tokens with bulwarkctl -----------------------------------------------------------------------
def test_token_create_list_revoke(api):
    tok = token(api.config_path, "carol", "admin")
    deadline = time.monotonic() + 5
    # polls with a token not read yet (or revoked) fail: from an address of their own
    while request(api.aport, "GET", "/api/v1/whoami", headers=bearer(tok),
                  source="127.0.0.4").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    _, cookie, _ = login(api, tok)
    p = ctl_token(api.config_path, "list")
    assert p.returncode == 0 and "carol" in p.stdout and "admin" in p.stdout
    assert tok not in p.stdout and tok[4:] not in p.stdout
    with open(os.path.join(api.dir, "state", "admin-tokens")) as f:
        text = f.read()
    assert tok not in text
    assert os.stat(os.path.join(api.dir, "state", "admin-tokens")).st_mode & 0o777 == 0o640
    assert ctl_token(api.config_path, "create", "carol", "--role", "viewer").returncode == 1
    p = ctl_token(api.config_path, "revoke", "carol")
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 5
    while request(api.aport, "GET", "/api/v1/whoami", headers=bearer(tok),
                  source="127.0.0.4").status != 401:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.2)
    assert request(api.aport, "GET", "/api/v1/whoami", headers={"Cookie": cookie}).status == 401
    assert ctl_token(api.config_path, "revoke", "carol").returncode == 1
    assert ctl_token(api.config_path, "create", "x", "--role", "root").returncode == 2


# -- hostile input ----------------------------------------------------------------------------------
def test_bad_json_and_bad_query(api):
    h = dict(bearer(api.admin), **{"Content-Type": "application/json"})
    r = request(api.aport, "POST", "/api/v1/reload", "{not json", headers=h)
    assert r.status == 400 and "JSON" in r.json()["error"]
    r = request(api.aport, "POST", "/api/v1/reload", "[1, 2]", headers=h)
    assert r.status == 400
    r = request(api.aport, "POST", "/api/v1/login", "{\"token\": ")
    assert r.status == 400
    r = request(api.aport, "GET", "/api/v1/status?x=%zz", headers=bearer(api.viewer))
    assert r.status == 400
    r = request(api.aport, "GET", "/api/v1/status?a=1&a=2", headers=bearer(api.viewer))
    assert r.status == 400
    r = request(api.aport, "POST", "/api/v1/reload", "x", headers=dict(
        bearer(api.admin), **{"Content-Type": "application/x-www-form-urlencoded"}))
    assert r.status == 415


def test_oversized_body(api):
    body = json.dumps({"name": "x" * (70 * 1024)})
    r = request(api.aport, "POST", "/api/v1/reload", body, headers=dict(
        bearer(api.admin), **{"Content-Type": "application/json"}))
    assert r.status == 413
    assert request(api.aport, "GET", "/api/v1/health").status == 200


@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
    "/assets/..%2f..%2f..%2fetc/passwd", "/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "//etc/passwd", "/assets//etc/passwd", "/.hidden", "/assets/out.css", "/assets/",
    "/%2fetc%2fpasswd", "/assets\\..\\..\\etc\\passwd", "/index.html%00.css",
])
def test_no_path_traversal(api, path):
    r = request(api.aport, "GET", path)
    assert r.status in (400, 404), (path, r.status)
    assert b"root:" not in r.body


def test_dashboard_files(api):
    r = request(api.aport, "GET", "/")
    assert r.status == 200 and b"test placeholder" in r.body
    assert r.header("content-type").startswith("text/html")
    assert r.header("content-security-policy") == SECURITY_HEADERS["content-security-policy"]
    r = request(api.aport, "GET", "/assets/app.css")
    assert r.status == 200 and r.header("content-type").startswith("text/css")
    if os.path.exists("/usr/share/javascript/chart.js/chart.min.js"):
        r = request(api.aport, "GET", "/vendor/chart.js")
        assert r.status == 200 and b"Chart.js" in r.body[:200]
        assert r.header("content-type").startswith("text/javascript")
    r = request(api.aport, "GET", "/nothing-here.html")
    assert r.status == 404


def test_wrong_methods(api):
    r = request(api.aport, "DELETE", "/api/v1/status", headers=bearer(api.admin))
    assert r.status == 405 and r.header("allow") == "GET"
    r = request(api.aport, "GET", "/api/v1/reload", headers=bearer(api.admin))
    assert r.status == 405 and r.header("allow") == "POST"
    r = request(api.aport, "GET", "/api/v1/login")
    assert r.status == 405
    r = request(api.aport, "POST", "/")
    assert r.status == 405 and "GET" in r.header("allow")
    r = request(api.aport, "GET", "/api/v1/no-such-thing", headers=bearer(api.admin))
    assert r.status == 404


def test_slow_client_does_not_block_others(api):
    slow = socket.create_connection(("127.0.0.1", api.aport), timeout=20)
    slow.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthor")
    start = time.monotonic()
    r = request(api.aport, "GET", "/api/v1/health", timeout=3)
    assert r.status == 200 and time.monotonic() - start < 2
    # and the slow one is closed once idle for the timeout (10 s)
    start = time.monotonic()
    data = b""
    try:
        while True:
            chunk = slow.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    assert time.monotonic() - start < 15
    assert b"200 OK" not in data
    slow.close()


# -- TLS and the config check -----------------------------------------------------------------------
def test_tls_listener(bulwark, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("admintls"))
    ca = make_ca(d)
    cert, key = make_cert(d, "admin")
    aport = free_port()
    cfg = {"listen": "127.0.0.1@%d" % aport, "tls-cert": cert, "tls-key": key}
    daemon = bulwark(lambda port, wd: admin_config(internet, port, wd, cfg), workdir=d)
    tok = token(daemon.config_path, "tls-admin", "admin")
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    r = request(aport, "GET", "/api/v1/health", tls=ctx)
    assert r.status == 200
    deadline = time.monotonic() + 5
    while True:
        r = request(aport, "POST", "/api/v1/login", {"token": tok}, tls=ctx)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status == 200, r.body
    flags = [f.strip().lower() for f in r.header("set-cookie-all")[0].split(";")]
    assert "secure" in flags
    # plain HTTP on the TLS port gets nothing useful
    s = socket.create_connection(("127.0.0.1", aport), timeout=5)
    s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        data = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        data = b""
    assert b"\"ok\":true" not in data
    s.close()


@pytest.mark.parametrize("listen", ["192.0.2.1@8080", "0.0.0.0@8080", "[::]@8080", "::@8080"])
def test_non_loopback_needs_tls(tmp_path, listen):
    path = tmp_path / "bulwark.yaml"
    path.write_text("server:\n  state-dir: %s\nadmin:\n  listen: \"%s\"\n" % (tmp_path, listen))
    p = subprocess.run([bulwark_binary(), "--check-config", str(path)], capture_output=True,
                       text=True, timeout=30)
    if listen.startswith("["):
        assert p.returncode == 2 and "not an IPv4 or IPv6 address" in p.stderr
        return
    assert p.returncode == 2, p.stdout + p.stderr
    assert "%s:4:" % path in p.stderr and "loopback" in p.stderr and "tls-cert" in p.stderr


def test_loopback_without_tls_is_fine(tmp_path):
    path = tmp_path / "bulwark.yaml"
    path.write_text("server:\n  state-dir: %s\nadmin:\n  listen: \"::1@8080\"\n" % tmp_path)
    p = subprocess.run([bulwark_binary(), "--check-config", str(path)], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, p.stderr
