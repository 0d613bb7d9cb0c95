"""tests/e2e/feedserver.py - a real HTTPS feed server for the feed tests: nginx (Debian's)
with its own prefix and config in a temp dir, a test CA and a server certificate made with
openssl, listening on 127.0.0.80 (HTTPS 8443) inside the test's network namespace.

  www/feeds/...            static feeds (ETag and Last-Modified are nginx's own)
  /old/X                   301 to /feeds/X (redirect test)
  /taxii2/api1/collections/c1/objects/
                           a TAXII 2.1 collection as static JSON: the page is chosen from
                           the query (added_after, next) by a map (see PAGES below)
  access.log               one line per request: uri, status, If-None-Match,
                           If-Modified-Since, Content-Encoding sent, Authorization

Also TruncatingServer: a plain socket server that announces more bytes than it sends and
hangs up (nginx cannot be made to cut a transfer short on purpose).
"""

import os
import socket
import subprocess
import threading
import time

ADDR = "127.0.0.80"
PORT = 8443

NGINX_CONF = """
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    types {{ text/plain txt hosts rpz; application/json json; }}
    default_type application/octet-stream;
    log_format feeds '$request_uri $status inm="$http_if_none_match" '
                     'ims="$http_if_modified_since" ce="$sent_http_content_encoding" '
                     'auth="$http_authorization"';
    access_log {d}/access.log feeds;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    gzip on;
    gzip_types text/plain application/json application/taxii+json;
    gzip_min_length 1;

    # TAXII: the page for (added_after, next). Page files hold the envelope; the
    # X-TAXII-Date-Added-Last header is the date of the page's last object (none for the
    # page after the last one: polls then keep asking from the same cursor).
    map "$arg_added_after|$arg_next" $taxii_page {{
        default                                   first;
        "~^\\|2$"                                 second;
        "2026-01-01T00%3A00%3A04.000Z|"           after04;
    }}
    map $taxii_page $taxii_last {{
        first   "2026-01-01T00:00:02.000Z";
        second  "2026-01-01T00:00:04.000Z";
        default "";
    }}

    server {{
        listen {addr}:{port} ssl;
        ssl_certificate {d}/server.pem;
        ssl_certificate_key {d}/server.key;
        root {d}/www;
        location /old/ {{
            rewrite ^/old/(.*)$ /feeds/$1 permanent;
        }}
        location = /taxii2/api1/collections/c1/objects/ {{
            default_type application/taxii+json;
            add_header X-TAXII-Date-Added-Last $taxii_last always;
            if ($http_authorization != "Bearer s3cret-token") {{
                return 401;
            }}
            rewrite ^ /taxii/$taxii_page.json break;
        }}
    }}
}}
"""


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


class FeedServer:
    def __init__(self, d):
        self.dir = d
        self.www = os.path.join(d, "www")
        self.proc = None
        for sub in ("www/feeds", "www/taxii", "tmp"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.make_certs()
        with open(os.path.join(d, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(d=d, addr=ADDR, port=PORT))

    @property
    def ca(self):
        return os.path.join(self.dir, "ca.pem")

    def url(self, path):
        return "https://%s:%d/%s" % (ADDR, PORT, path.lstrip("/"))

    def make_certs(self):
        d = self.dir
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=Bulwark test feed CA"], d)
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=%s" % ADDR], d)
        with open(os.path.join(d, "san.ext"), "w") as f:
            f.write("subjectAltName=IP:%s\n" % ADDR)
        run(["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"], d)

    def start(self):
        self.proc = subprocess.Popen(
            ["nginx", "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf"),
             "-g", "daemon off; master_process off;"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "stderr.log"), "ab"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((ADDR, PORT), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: %s" % self.error_log())
                time.sleep(0.05)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def error_log(self):
        try:
            with open(os.path.join(self.dir, "error.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def access_log(self):
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def put(self, rel, text):
        """Writes www/REL atomically (a new file renamed over the old one)."""
        path = os.path.join(self.www, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
        # a new mtime second, so that Last-Modified and the ETag change for sure
        t = time.time() + 1
        os.utime(path, (t, t))
        return path


class TruncatingServer:
    """HTTP/1.1 200 with Content-Length N and fewer bytes, then close."""

    def __init__(self, body, claimed, addr="127.0.0.81", port=8080):
        self.body, self.claimed = body, claimed
        self.addr, self.port = addr, port
        self.hits = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(8)
        self.stopping = False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://%s:%d/%s" % (self.addr, self.port, path.lstrip("/"))

    def loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(2)
                try:
                    c.recv(4096)
                    self.hits += 1
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % self.claimed
                              + self.body)
                except OSError:
                    pass

    def stop(self):
        self.stopping = True
        self.sock.close()
