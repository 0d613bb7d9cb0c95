"""The dashboard (www/, docs/dashboard.md) in a real browser: headless Chromium driven by
selenium against the real daemon's admin listener, on loopback inside the test namespace.

The flow: sign in with an admin token; the overview shows the counts that
GET /api/v1/status and /api/v1/top report; a blocked query sent with dnspython is found on
the query log page; its Unblock button makes the next lookup resolve; the explain box says
it is a local decision by the token; Undo blocks it again; pause and resume show in the
overview's sentence; a viewer token sees no action buttons. Every page is photographed at
desktop (1366x900) and phone (390x844) widths into build/screenshots/ (build output, not
committed: look at them after a change to www/).

Skips, with one line, only where Chromium, chromedriver or selenium are missing
(tools/deps.sh installs them, so `make test` runs it)."""

import base64
import http.client
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import conftest
import dnsutil

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

_missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
try:
    from selenium import webdriver
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:
    _missing.append("python3-selenium")
if _missing:
    pytest.skip("browser tests need %s (tools/deps.sh installs chromium, chromium-driver "
                "and python3-selenium)" % ", ".join(_missing), allow_module_level=True)

SHOTS = os.path.join(conftest.REPO_ROOT, "build", "screenshots")
SIZES = {"desktop": (1366, 900, False), "phone": (390, 844, True)}
BLOCKED = "blocked.insecure.tld"        # listed by urlhaus (malware); 192.0.2.70 in the zone
ALERTING = "evil-target.insecure.tld"   # also urlhaus: enough hits raise an alert
LOCAL_BLOCK = "xblocked.insecure.tld"   # on no feed (192.0.2.75): blocked by the form
WAIT = 15


# -- the daemon with an admin listener, and its tokens -------------------------------------
class Admin:
    def __init__(self, daemon, port):
        self.daemon = daemon
        self.port = port
        self.base = "http://127.0.0.1:%d" % port
        self.tokens = {}

    def token(self, name, role):
        p = subprocess.run([conftest.ctl_binary(), "-c", self.daemon.config_path, "token",
                            "create", name, "--role", role], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, "bulwarkctl token create %s: rc %d\n%s%s" % (
            name, p.returncode, p.stdout, p.stderr)
        tok = p.stdout.strip()
        assert tok and "\n" not in tok, "token create printed more than the token: %r" % p.stdout
        self.tokens[name] = tok
        return tok

    def get(self, path, token, source="127.0.0.1"):
        """(status, JSON) of GET path with the token as Bearer, from address source"""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10,
                                       source_address=(source, 0))
        try:
            c.request("GET", path, headers={"Authorization": "Bearer " + token})
            r = c.getresponse()
            return r.status, json.loads(r.read() or b"null")
        finally:
            c.close()

    def api(self, path, token):
        status, j = self.get(path, token)
        assert status == 200 and j["ok"], "GET %s: %s %s" % (path, status, j)
        return j["result"]

    def wait_token(self, name):
        """The daemon re-reads the tokens file at most once a second: ask until it knows
        the new token, each time from another address (a wrong token counts against its
        address's login limit; the browser comes from 127.0.0.1)"""
        for i in range(12):
            time.sleep(1.05)
            status, j = self.get("/api/v1/whoami", self.tokens[name], "127.0.0.%d" % (10 + i))
            if status == 200:
                return
        pytest.fail("the daemon did not accept the new token %s: %s %s" % (name, status, j))


def wait_admin(port, daemon, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/health" % port,
                                        timeout=1) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        daemon.assert_alive()
        if time.monotonic() > deadline:
            pytest.fail("admin listener 127.0.0.1:%d did not answer /api/v1/health; log:\n%s"
                        % (port, daemon.log_text()))
        time.sleep(0.1)


@pytest.fixture(scope="module")
def admin(bulwark_module):
    port = conftest.free_port()

    def config(dns_port, d):
        conf = conftest.default_config(bulwark_module.internet, dns_port, d)
        conf["admin"] = {"listen": "127.0.0.1@%d" % port}
        # the default privacy mode, said plainly; the log in the test's own directory
        conf["telemetry"] = {"privacy": "blocked-only",
                             "query-log": os.path.join(d, "querylog.sqlite")}
        return conf

    daemon = bulwark_module(config)
    wait_admin(port, daemon)
    a = Admin(daemon, port)
    a.token("dash-admin", "admin")
    a.token("dash-viewer", "viewer")
    a.wait_token("dash-admin")
    a.wait_token("dash-viewer")
    # something to show: blocked queries (enough of one malware name to raise an alert),
    # and a name that resolves
    for _ in range(3):
        assert dnsutil.is_blocked(daemon.query(BLOCKED + ".", "A"))
    for _ in range(6):
        assert dnsutil.is_blocked(daemon.query(ALERTING + ".", "A"))
    assert daemon.query("www.insecure.tld.", "A").rcode() == 0
    tok = a.tokens["dash-admin"]
    wait_for(lambda: any(r["name"] == BLOCKED for r in a.api(
        "/api/v1/querylog?verdict=blocked&name=" + BLOCKED, tok)["rows"]),
        "the blocked query in the query log API")
    return a


def wait_for(fn, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting for " + what)
        time.sleep(0.2)


# -- the browser --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1366,900", "--lang=en-US", "--no-first-run",
              "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()


class Page:
    """The dashboard in the browser: open a route and wait until its data is shown."""

    def __init__(self, drv, admin):
        self.drv = drv
        self.admin = admin

    def open(self, route, ready=None):
        ready = ready or route.split("?")[0]
        self.drv.get(self.admin.base + "/#/" + route)
        self.wait_ready(ready)

    def wait_ready(self, ready):
        try:
            WebDriverWait(self.drv, WAIT).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready")
                == ready)
        except TimeoutException:
            pytest.fail("page %s never showed its data; flash: %r; console: %s" % (
                ready, self.text("flash"), self.console()))

    def el(self, id_):
        return self.drv.find_element(By.ID, id_)

    def text(self, id_):
        try:
            return self.el(id_).text
        except Exception:  # noqa: BLE001 - only for messages
            return ""

    def wait_text(self, id_, pattern):
        try:
            WebDriverWait(self.drv, WAIT).until(
                lambda d: re.search(pattern, d.find_element(By.ID, id_).text))
        except TimeoutException:
            pytest.fail("#%s never matched %r; it says %r; flash %r" % (
                id_, pattern, self.text(id_), self.text("flash")))
        return self.text(id_)

    def login(self, token):
        self.drv.delete_all_cookies()
        self.drv.get(self.admin.base + "/")
        self.wait_ready("login")
        box = self.el("login-token")
        box.clear()
        box.send_keys(token)
        self.drv.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
        self.wait_ready("overview")

    def console(self):
        return [e["message"] for e in self.drv.get_log("browser")]

    def shot(self, name, size):
        w, h, mobile = SIZES[size]
        self.drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": w, "height": h, "deviceScaleFactor": 1, "mobile": mobile})
        time.sleep(0.3)  # the chart follows its box's size
        m = self.drv.execute_cdp_cmd("Page.getLayoutMetrics", {})
        full = m.get("cssContentSize") or m["contentSize"]
        png = self.drv.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": w, "height": max(h, full["height"]), "scale": 1}})
        os.makedirs(SHOTS, exist_ok=True)
        with open(os.path.join(SHOTS, "%s-%s.png" % (name, size)), "wb") as f:
            f.write(base64.b64decode(png["data"]))

    def desktop(self):
        self.drv.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.fixture(scope="module")
def page(browser, admin):
    return Page(browser, admin)


def digits(text):
    return int(re.sub(r"[^0-9]", "", text))


def assert_console_clean(page):
    """No script error and no Content-Security-Policy violation; the one 401 is whoami
    before signing in."""
    bad = [m for m in page.console() if "401" not in m and "favicon" not in m]
    assert not bad, "browser console: %s" % bad


# -- the flow -----------------------------------------------------------------------------
def test_login_and_overview_counts(page, admin):
    tok = admin.tokens["dash-admin"]
    page.drv.get(admin.base + "/")
    page.wait_ready("login")
    assert page.el("nav").is_displayed() is False
    page.login(tok)
    assert "dash-admin" in page.text("who-name")
    # the counts the API reports (nothing is queried meanwhile; read again if a count
    # moved while the page loaded)
    for _ in range(3):
        st = admin.api("/api/v1/status", tok)
        top = admin.api("/api/v1/top?n=10", tok)
        page.open("overview")
        if admin.api("/api/v1/status", tok)["queries"] == st["queries"]:
            break
    assert digits(page.text("count-queries")) == st["queries"]
    assert digits(page.text("count-blocked")) == st["blocked"]
    assert digits(page.text("count-names")) == st["blocked_names"]
    assert st["blocked"] > 0, st
    assert st["protection"] == "on", st
    assert page.text("protection-sentence") == "Protection is on"
    shown = [li.text for li in page.drv.find_elements(By.CSS_SELECTOR, "#top-names li")]
    assert len(shown) == len(top["names"]) > 0, (shown, top)
    for li, t in zip(shown, top["names"]):
        assert t["name"] in li and li.split()[-1] == "{:,}".format(t["count"]), (li, t)
    clients = [li.text for li in page.drv.find_elements(By.CSS_SELECTOR, "#top-clients li")]
    assert len(clients) == len(top["clients"]) > 0, (clients, top)
    for li, t in zip(clients, top["clients"]):
        assert t["client"] in li and li.split()[-1] == "{:,}".format(t["count"]), (li, t)
    assert "working" in page.text("feeds-health"), page.text("feeds-health")
    assert_console_clean(page)


def test_blocked_query_in_log_unblock_explain_undo(page, admin):
    r = admin.daemon.query(BLOCKED + ".", "A")
    assert dnsutil.is_blocked(r), dnsutil.describe(r)
    page.open("log?verdict=blocked&name=" + BLOCKED, ready="log")
    rows = page.drv.find_elements(By.CSS_SELECTOR, "#log-rows tr")
    mine = [tr for tr in rows if tr.find_element(By.CSS_SELECTOR, "td.name").text == BLOCKED]
    assert mine, "no row for %s in the log page: %s" % (BLOCKED, [tr.text for tr in rows])
    assert "Blocked" in mine[0].text and "urlhaus" in mine[0].text
    assert mine[0].find_elements(By.LINK_TEXT, "Why?")
    mine[0].find_element(By.CSS_SELECTOR, "button.unblock").click()
    page.wait_text("flash", re.escape(BLOCKED) + " is allowed now")
    # the very next lookup resolves
    r = admin.daemon.query(BLOCKED + ".", "A")
    assert r.rcode() == 0 and "192.0.2.70" in dnsutil.addresses(r), dnsutil.describe(r)
    # and the explain box says why
    page.open("explain?name=" + BLOCKED, ready="explain")
    # the plain sentence, or the details under it (folded away: read as textContent)
    said = page.text("explain-reason") + "\n" + page.el("explain-lines").get_attribute("textContent")
    assert "local decision by token dash-admin" in said, said
    # the allow is listed, and Undo blocks the name again
    page.open("decisions")
    rows = [tr for tr in page.drv.find_elements(By.CSS_SELECTOR, "#decisions-rows tr")
            if BLOCKED in tr.text]
    assert rows and "Always allowed" in rows[0].text and "dash-admin" in rows[0].text
    page.shot("decisions", "desktop")
    page.desktop()
    rows[0].find_element(By.CSS_SELECTOR, "button.undo").click()
    page.wait_text("flash", "Undone")
    page.wait_ready("decisions")
    assert not [tr for tr in page.drv.find_elements(By.CSS_SELECTOR, "#decisions-rows tr")
                if BLOCKED in tr.text]
    assert dnsutil.is_blocked(admin.daemon.query(BLOCKED + ".", "A"))
    assert_console_clean(page)


def test_pause_and_resume_in_overview_sentence(page, admin):
    page.open("overview")
    assert page.text("protection-sentence") == "Protection is on"
    Select(page.el("pause-minutes")).select_by_value("15")
    profile = page.el("pause-profile").get_attribute("value")
    assert profile
    page.el("pause-button").click()
    sentence = page.wait_text("protection-sentence", "paused")
    assert re.fullmatch(r"Protection is paused for %s until \d\d:\d\d" % re.escape(profile),
                        sentence), sentence
    st = admin.api("/api/v1/status", admin.tokens["dash-admin"])
    assert st["protection"] == "paused" and st["paused"][0]["profile"] == profile, st
    page.shot("overview-paused", "phone")
    page.desktop()
    page.drv.find_element(By.CSS_SELECTOR, "#resume-buttons button").click()
    page.wait_text("protection-sentence", "^Protection is on$")
    assert admin.api("/api/v1/status", admin.tokens["dash-admin"])["protection"] == "on"
    assert_console_clean(page)


def test_screenshots_every_page(page, admin):
    """Every page at both widths, as an admin (build/screenshots/PAGE-SIZE.png)."""
    routes = [("overview", "overview"), ("log", "log?verdict=blocked"), ("alerts", "alerts"),
              ("feeds", "feeds"), ("explain", "explain?name=" + ALERTING),
              ("decisions", "decisions")]
    # a local block decision made with the form, so the decisions page has a row
    page.open("decisions")
    page.el("d-name").send_keys(LOCAL_BLOCK)
    page.el("d-block").click()
    page.wait_text("flash", re.escape(LOCAL_BLOCK) + " is blocked now")
    page.wait_text("decisions-rows", re.escape(LOCAL_BLOCK))
    assert dnsutil.is_blocked(admin.daemon.query(LOCAL_BLOCK + ".", "A"))
    for size in SIZES:
        for name, route in routes:
            page.open(route, ready=name)
            page.shot(name, size)
        page.desktop()
    # the alert the test raised is on the alerts page, with what it tried to reach
    page.open("alerts")
    cards = page.drv.find_element(By.ID, "alerts-cards").text
    assert ALERTING in cards and "urlhaus" in cards, cards
    assert_console_clean(page)


def test_viewer_sees_no_action_buttons(page, admin):
    page.drv.delete_all_cookies()
    page.drv.get(admin.base + "/")
    page.wait_ready("login")
    for size in SIZES:
        page.shot("login", size)
    page.desktop()
    page.login(admin.tokens["dash-viewer"])
    assert "view only" in page.text("who-name")
    assert not page.el("pause-box").is_displayed()
    page.open("log?verdict=blocked", ready="log")
    assert page.drv.find_elements(By.CSS_SELECTOR, "#log-rows tr"), "the viewer sees no rows"
    assert not page.drv.find_elements(By.CSS_SELECTOR, "#log-rows button")
    assert not page.drv.find_elements(By.XPATH, "//button[normalize-space()='Unblock']")
    page.shot("log-viewer", "phone")
    page.desktop()
    page.open("feeds")
    assert not page.drv.find_elements(By.CSS_SELECTOR, "#feeds-rows button")
    page.open("alerts")
    assert not page.drv.find_elements(By.CSS_SELECTOR, "#page-alerts button")
    page.open("decisions")
    assert not page.el("decide-form").is_displayed()
    page.open("explain?name=" + BLOCKED, ready="explain")
    assert not page.drv.find_elements(By.CSS_SELECTOR, "#explain-actions button")
    assert_console_clean(page)
