"""The block page (block-page:, docs/blockpage.md): a feed with `action: redirect` sends a
name to the page's address; a browser asking the page for that name (its Host header)
is told the name, the feed and category, the configured text and contact, with 403; a
name that is not blocked, or no name, gets the neutral page with 200; text is escaped;
only GET and HEAD; the page follows a reload of the config's texts; a bad section is a
config error with file:line."""

import http.client
import os
import subprocess
import time

import dns.rdatatype

import conftest

PAGE_ADDR = "127.0.0.80"


def page_config(workdir, port, contact="call Ana on +44 20 7946 0000 <it@ngo.example>"):
    feed = conftest.write_domains(os.path.join(workdir, "redir.txt"),
                                  ["lure.insecure.tld", "evil<b>.insecure.tld"])
    feeds = [{"name": "phish-redirect", "category": "phishing", "format": "domains",
              "file": feed, "action": "redirect", "redirect": PAGE_ADDR}]
    return feeds, {"listen": f"{PAGE_ADDR}@{port}", "contact": contact,
                   "text": "Stopped by the Example NGO's resolver."}


def get(port, host, method="GET", path="/"):
    c = http.client.HTTPConnection(PAGE_ADDR, port, timeout=5)
    c.request(method, path, headers={"Host": host} if host is not None else {})
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r, body


def start(bulwark, internet, tmp_path, **page_kw):
    d = str(tmp_path)
    page_port = conftest.free_port()

    def cfg(port, workdir):
        feeds, page = page_config(workdir, page_port, **page_kw)
        conf = conftest.default_config(internet, port, workdir, feeds=feeds)
        conf["block-page"] = page
        return conf
    return bulwark(cfg, workdir=d), page_port


def test_redirected_name_gets_the_page(bulwark, internet, tmp_path):
    b, page_port = start(bulwark, internet, tmp_path)
    # the DNS side: the name is answered with the page's address
    r = b.query("lure.insecure.tld.", "A")
    addrs = [rr.address for rrs in r.answer if rrs.rdtype == dns.rdatatype.A for rr in rrs]
    assert addrs == [PAGE_ADDR], r
    # the browser side: it asks the page for the blocked site
    resp, body = get(page_port, "lure.insecure.tld")
    assert resp.status == 403
    assert "<code>lure.insecure.tld</code>" in body
    assert "phish-redirect (phishing)" in body
    assert "Stopped by the Example NGO&#39;s resolver." in body
    assert "call Ana on +44 20 7946 0000 &lt;it@ngo.example&gt;" in body
    assert "<it@ngo.example>" not in body  # escaped, never markup
    assert resp.getheader("Content-Security-Policy").startswith("default-src 'none'")
    assert resp.getheader("Cache-Control") == "no-store"
    # a port in the Host header, upper case, a final dot
    resp, body = get(page_port, "LURE.insecure.tld.:80")
    assert resp.status == 403 and "<code>lure.insecure.tld</code>" in body


def test_other_requests(bulwark, internet, tmp_path):
    _, page_port = start(bulwark, internet, tmp_path)
    resp, body = get(page_port, "harmless.insecure.tld")
    assert resp.status == 200
    assert "<code>harmless.insecure.tld</code> is not blocked now" in body
    resp, body = get(page_port, PAGE_ADDR)  # the address itself: no name
    assert resp.status == 200 and "is not blocked" not in body
    resp, body = get(page_port, None)
    assert resp.status == 200
    resp, body = get(page_port, "<script>alert(1)</script>")
    assert resp.status == 200 and "<script>" not in body
    resp, _ = get(page_port, "lure.insecure.tld", method="POST")
    assert resp.status == 405 and resp.getheader("Allow") == "GET, HEAD"
    resp, body = get(page_port, "lure.insecure.tld", method="HEAD")
    assert resp.status == 403 and body == ""
    # any path: the page is the same (the browser asked for the blocked site's path)
    resp, body = get(page_port, "lure.insecure.tld", path="/login.php?x=1")
    assert resp.status == 403 and "phish-redirect" in body


def test_reload_changes_the_text(bulwark, internet, tmp_path):
    b, page_port = start(bulwark, internet, tmp_path)
    old = "call Ana on +44 20 7946 0000 <it@ngo.example>"
    assert old in b.config_text
    b.write_config(b.config_text.replace(old, "write to help@ngo.example"))
    b.reload()
    for _ in range(50):
        _, body = get(page_port, "lure.insecure.tld")
        if "help@ngo.example" in body:
            break
        time.sleep(0.1)
    assert "write to help@ngo.example" in body


def test_bad_section_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("block-page:\n  title: x\n")
    r = subprocess.run([conftest.bulwark_binary(), "--check-config", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{path}:2:3: block-page: listen is required" in r.stderr, r.stderr
    path.write_text("block-page:\n  listen: 127.0.0.1\n")
    r = subprocess.run([conftest.bulwark_binary(), "--check-config", str(path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "must be address@port" in r.stderr, r.stderr
