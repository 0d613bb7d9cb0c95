"""Local names keep working: per-domain forwarding (resolver.forward-zones) to an office DNS
server (a real NSD on 127.54.0.1, plain and over DoT on port 853, in the test's private
namespace), local records (local-records, local-records-file: A/AAAA/PTR), and the
special-use names (localhost, invalid, test, local, onion, home.arpa) answered as their
RFCs say unless a forward zone or a local record covers them, or resolver.special-use
says `recurse`. DNSSEC is on throughout: names of the fake internet still validate.
Whether a query reached the office server is read from NSD's own counters
(nsd-control stats_noreset over a unix socket)."""

import os
import subprocess
import time

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

import conftest
import dnsutil
from dnsutil import describe
from test_config import assert_error, check
from test_encrypted import make_ca, make_cert
from test_formats import explain

OFFICE = "127.54.0.1"

ZONES = {
    "corp.example.": """
@       SOA ns hostmaster 1 3600 600 86400 60
@       NS  ns
ns      A   127.54.0.1
dc      A   192.0.2.10
files   A   192.0.2.11
printer A   192.0.2.99
mail    A   192.0.2.12
""",
    "168.192.in-addr.arpa.": """
@        SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60
@        NS  ns.corp.example.
50.1     PTR scanner.corp.example.
""",
    "home.arpa.": """
@        SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60
@        NS  ns.corp.example.
router   A   192.168.1.1
nas      A   192.168.1.250
""",
    "dot.example.": """
@        SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60
@        NS  ns.corp.example.
secret   A   192.0.2.77
""",
    "lab.test.": """
@        SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60
@        NS  ns.corp.example.
box      A   192.0.2.55
""",
    "strict.example.": """
@        SOA ns.corp.example. hostmaster.corp.example. 1 3600 600 86400 60
@        NS  ns.corp.example.
www      A   192.0.2.88
""",
}

HOSTS = """# the office's hosts file
192.168.1.20   printer.corp.example   Printer.lan   # the printer, also under the AD zone
fd00::20       printer.lan
192.168.1.30   evil-target.insecure.tld          # an admin's own name beats a feed
"""


class OfficeDNS:
    """The office's DNS server: NSD on 127.54.0.1 port 53, and DoT on 853."""

    def __init__(self, d):
        self.dir = d
        self.ca = make_ca(d)
        self.cert, self.key = make_cert(d, "ns", cn="ns.corp.example")
        self.conf = os.path.join(d, "nsd.conf")
        lines = ["server:", "    ip-address: %s" % OFFICE, "    ip-address: %s@853" % OFFICE,
                 "    port: 53", "    do-ip6: no", '    username: ""', '    chroot: ""',
                 '    database: ""', "    zonesdir: %s" % d, "    pidfile: %s/nsd.pid" % d,
                 "    xfrdfile: %s/xfrd.state" % d, "    zonelistfile: %s/zone.list" % d,
                 "    xfrdir: %s" % d, "    logfile: %s/nsd.log" % d, "    server-count: 1",
                 "    tls-service-key: %s" % self.key, "    tls-service-pem: %s" % self.cert,
                 "    tls-port: 853",
                 "remote-control:", "    control-enable: yes",
                 "    control-interface: %s/nsd.ctl" % d]
        for origin, text in ZONES.items():
            path = os.path.join(d, origin.rstrip(".") + ".zone")
            with open(path, "w") as f:
                f.write("$ORIGIN %s\n$TTL 300\n%s" % (origin, text))
            lines += ["zone:", '    name: "%s"' % origin, "    zonefile: %s" % path]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        subprocess.run(["nsd-checkconf", self.conf], check=True, capture_output=True)
        self.proc = subprocess.Popen(["nsd", "-d", "-c", self.conf], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                r = dnsutil.query(53, "dc.corp.example.", "A", server=OFFICE, timeout=0.3)
                if r.rcode() == dns.rcode.NOERROR:
                    break
            except Exception:
                pass
            assert self.proc.poll() is None, "nsd exited"
            assert time.monotonic() < deadline, "nsd does not answer on %s" % OFFICE
            time.sleep(0.05)

    def stats(self):
        """NSD's counters (num.queries, num.tls, ...) as a dict of ints."""
        p = subprocess.run(["nsd-control", "-c", self.conf, "stats_noreset"],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stdout + p.stderr
        out = {}
        for line in p.stdout.splitlines():
            k, _, v = line.partition("=")
            if v.strip().isdigit():
                out[k.strip()] = int(v)
        return out

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(5)


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    o = OfficeDNS(str(tmp_path_factory.mktemp("office")))
    yield o
    o.stop()


def office_config(internet, office, extra_resolver=None):
    def config(port, d):
        with open(os.path.join(d, "office.hosts"), "w") as f:
            f.write(HOSTS)
        resolver = {
            "forward-zones": [
                {"zone": "corp.example", "forward": ["%s@53" % OFFICE]},
                {"zone": "168.192.in-addr.arpa", "forward": [OFFICE]},
                {"zone": "home.arpa", "forward": [OFFICE]},
                {"zone": "lab.test", "forward": [OFFICE], "stub": True},  # authoritative
                {"zone": "strict.example", "forward": [OFFICE], "insecure": False},
            ],
            "tls-ca-file": office.ca,
        }
        resolver.update(extra_resolver or {})
        c = conftest.default_config(internet, port, d, resolver=resolver)
        c["local-records"] = {"nas.home.arpa": ["192.168.1.10", "fd00::10"],
                              "Files.corp.example": "192.168.1.11"}
        c["local-records-file"] = "office.hosts"  # relative: the config's directory
        return c
    return config


@pytest.fixture(scope="module")
def daemon(bulwark_module, internet, office):
    return bulwark_module(office_config(internet, office))


def sent_to_office(office, fn):
    """Runs fn(); returns (its result, how many queries the office server got meanwhile)."""
    before = office.stats()
    r = fn()
    after = office.stats()
    return r, after.get("num.queries", 0) - before.get("num.queries", 0)


# -- forward zones ----------------------------------------------------------------------------
def test_forward_zone_answered_by_office_server(daemon, office):
    r, n = sent_to_office(office, lambda: daemon.query("dc.corp.example.", "A"))
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.10"], describe(r)
    assert r.flags & dns.flags.RA and not r.flags & dns.flags.AD, describe(r)
    assert n >= 1, "the office server got no query"
    # kdig, a second real client, over TCP, for another name of the zone
    p = dnsutil.kdig(daemon.port, "+tcp", "mail.corp.example", "A")
    assert "192.0.2.12" in p.stdout, p.stdout


def test_other_names_still_recursive_and_validated(daemon, office):
    r, n = sent_to_office(office, lambda: daemon.query("www.secure.tld.", "A", do=True))
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.10"], describe(r)
    assert r.flags & dns.flags.AD, "DNSSEC is on: the fake internet's answer validates"
    assert n == 0, "a name outside the forward zones reached the office server"
    r = daemon.query("www.bogus.tld.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)


def test_private_reverse_zone_forwarded(daemon, office):
    """168.192.in-addr.arpa is one of libunbound's built-in empty zones (RFC 6303): the
    forward zone must turn it off, or the answer would be NXDOMAIN."""
    r, n = sent_to_office(office, lambda: daemon.query("50.1.168.192.in-addr.arpa.", "PTR"))
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert [str(rr.target) for rr in r.answer[0]] == ["scanner.corp.example."], describe(r)
    assert n >= 1


def libunbound_has_tls():
    """Debian 12's libunbound is built with nettle, not OpenSSL: it has no TLS at all
    (Debian 13's has OpenSSL)."""
    import glob
    libs = glob.glob("/usr/lib/*/libunbound.so.8") + glob.glob("/usr/lib/libunbound.so.8")
    out = subprocess.run(["ldd"] + libs[:1], capture_output=True, text=True).stdout
    return "libssl" in out


def test_forward_zone_over_dot(bulwark, internet, office):
    """A forward zone over DNS-over-TLS (NSD's DoT on port 853, the test CA). With a
    libunbound that has no TLS (Debian's), Bulwark must refuse to start with a clear
    message rather than answer SERVFAIL to every query."""
    conf = office_config(internet, office, {"forward-zones": [
        {"zone": "dot.example", "forward": ["tls://%s@853#ns.corp.example" % OFFICE]}]})
    if not libunbound_has_tls():
        d = bulwark(conf, wait=False)
        d.proc.wait(timeout=20)
        assert d.proc.returncode != 0
        assert "this libunbound cannot forward over TLS" in d.log_text(), d.log_text()
        bulwark.daemons.remove(d)  # its exit is the point: not a failure at teardown
        return
    d = bulwark(conf)
    before = office.stats().get("num.tls", 0)
    r = d.query("secret.dot.example.", "A")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.0.2.77"], describe(r)
    assert office.stats().get("num.tls", 0) > before, "the query did not come over TLS"


def test_forward_zone_validated_when_not_insecure(daemon):
    """insecure: false keeps validation: a private zone with no chain of trust is bogus."""
    r = daemon.query("www.strict.example.", "A")
    assert r.rcode() == dns.rcode.SERVFAIL, describe(r)
    assert dnsutil.EDE_BOGUS in dnsutil.ede_codes(r), describe(r)


def test_forward_zone_beats_special_use_name(daemon, office):
    """home.arpa forwarded to the router, lab.test below test.: both go to the server."""
    r = daemon.query("router.home.arpa.", "A")
    assert dnsutil.addresses(r) == ["192.168.1.1"], describe(r)
    r = daemon.query("box.lab.test.", "A")
    assert dnsutil.addresses(r) == ["192.0.2.55"], describe(r)
    # test. itself stays special
    r = daemon.query("other.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN and r.flags & dns.flags.AA, describe(r)


# -- local records ----------------------------------------------------------------------------
def test_local_records(daemon, office):
    r, n = sent_to_office(office, lambda: daemon.query("NAS.home.ARPA.", "A"))
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.168.1.10"], describe(r)
    assert r.answer[0].ttl == 300, describe(r)
    assert r.flags & dns.flags.RA and r.flags & dns.flags.AA, describe(r)
    assert str(r.question[0].name) == "NAS.home.ARPA.", "the client's case is kept"
    assert n == 0, "a local record went to the forward zone's server"
    r = daemon.query("nas.home.arpa.", "AAAA")
    assert dnsutil.addresses(r, "AAAA") == ["fd00::10"], describe(r)
    r = daemon.query("nas.home.arpa.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)
    # from local-records-file, case-insensitive, v4 and v6 lines merged
    r = daemon.query("printer.lan.", "A")
    assert dnsutil.addresses(r) == ["192.168.1.20"], describe(r)
    r = daemon.query("printer.lan.", "AAAA", tcp=True)
    assert dnsutil.addresses(r, "AAAA") == ["fd00::20"], describe(r)


def test_local_record_wins_over_forward_zone_and_feed(daemon, office):
    r = daemon.query("files.corp.example.", "A")  # the office server says 192.0.2.11
    assert dnsutil.addresses(r) == ["192.168.1.11"], describe(r)
    r = daemon.query("printer.corp.example.", "A")  # the hosts file beats the server too
    assert dnsutil.addresses(r) == ["192.168.1.20"], describe(r)
    r = daemon.query("evil-target.insecure.tld.", "A")  # listed by the urlhaus feed
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert dnsutil.addresses(r) == ["192.168.1.30"], describe(r)
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), describe(r)
    # the feed still blocks its other names
    r = daemon.query("blocked.insecure.tld.", "A")
    assert dnsutil.EDE_BLOCKED in dnsutil.ede_codes(r), describe(r)


def test_local_ptr(daemon):
    r = daemon.query("10.1.168.192.in-addr.arpa.", "PTR")
    assert r.rcode() == dns.rcode.NOERROR, describe(r)
    assert [str(rr.target) for rr in r.answer[0]] == ["nas.home.arpa."], describe(r)
    # the first name listed for the address
    r = daemon.query("20.1.168.192.in-addr.arpa.", "PTR")  # printer: the hosts file wins
    assert [str(rr.target) for rr in r.answer[0]] == ["printer.corp.example."], describe(r)
    p = dnsutil.dig(daemon.port, "-x", "fd00::10")
    assert "nas.home.arpa." in p.stdout, p.stdout


def test_local_records_file_reread_on_reload(daemon):
    path = os.path.join(daemon.dir, "office.hosts")
    with open(path, "a") as f:
        f.write("192.168.1.40 scanner.lan\n")
    daemon.reload()
    deadline = time.monotonic() + 10
    while True:
        r = daemon.query("scanner.lan.", "A")
        if dnsutil.addresses(r) == ["192.168.1.40"]:
            break
        assert time.monotonic() < deadline, "not answered after SIGHUP: " + describe(r)
        time.sleep(0.1)
    # a bad line: the reload fails and the running records stay
    with open(path, "a") as f:
        f.write("192.168.1.300 broken.lan\n")
    daemon.reload()
    deadline = time.monotonic() + 10
    while "reload failed" not in daemon.log_text():
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.1)
    assert "office.hosts:6: '192.168.1.300' is not an IPv4 or IPv6 address" in \
        daemon.log_text(), daemon.log_text()
    assert dnsutil.addresses(daemon.query("scanner.lan.", "A")) == ["192.168.1.40"]
    with open(path, "w") as f:
        f.write(HOSTS + "192.168.1.40 scanner.lan\n")
    daemon.reload()


# -- special-use names ------------------------------------------------------------------------
def test_special_use_defaults(resolver):
    """RFC 6761 6.3: localhost is the loopback; 6.2, 6.4, RFC 6762, 7686, 8375: NXDOMAIN,
    answered at once (AA, no query leaves: the fake root would add its SOA)."""
    r = resolver.query("localhost.", "A")
    assert r.rcode() == dns.rcode.NOERROR and dnsutil.addresses(r) == ["127.0.0.1"], describe(r)
    r = resolver.query("www.LOCALHOST.", "AAAA")
    assert dnsutil.addresses(r, "AAAA") == ["::1"], describe(r)
    r = resolver.query("localhost.", "MX")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)
    for name in ("x.invalid.", "invalid.", "x.test.", "printer.local.",
                 "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion.",
                 "router.home.arpa."):
        r = resolver.query(name, "A")
        assert r.rcode() == dns.rcode.NXDOMAIN, name + ": " + describe(r)
        assert r.flags & dns.flags.AA and not r.authority, name + ": " + describe(r)
        assert r.flags & dns.flags.RA, describe(r)
    r = resolver.query("home.arpa.", "SOA")  # a locally served empty zone: the apex exists
    assert r.rcode() == dns.rcode.NOERROR and not r.answer, describe(r)
    p = dnsutil.kdig(resolver.port, "foo.onion", "A")
    assert "status: NXDOMAIN" in p.stdout, p.stdout


def test_special_use_recurse(bulwark, internet):
    """special-use: {test: recurse} hands test. to the recursion: the fake root answers it
    (NXDOMAIN with its SOA, which a local answer never carries). The same for every name
    (libunbound's own built-in zones for them are turned off too)."""
    d = bulwark(resolver={"special-use": {"test": "recurse"}})
    r = d.query("x.test.", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert any(rr.rdtype == dns.rdatatype.SOA and str(rr.name) == "." for rr in r.authority), \
        "test. did not reach the root: " + describe(r)
    r = d.query("x.invalid.", "A")  # the others stay local
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.authority, describe(r)
    names = ["localhost", "invalid", "test", "local", "onion", "home.arpa"]
    d = bulwark(resolver={"special-use": {n: "recurse" for n in names}})
    for n in names:
        r = d.query("x.%s." % n, "A")
        assert r.rcode() == dns.rcode.NXDOMAIN, n + ": " + describe(r)
        assert any(rr.rdtype == dns.rdatatype.SOA and str(rr.name) == "."
                   for rr in r.authority), n + " did not reach the root: " + describe(r)


# -- forward mode, explain ----------------------------------------------------------------------
def test_forward_zones_in_forward_mode(bulwark, internet, daemon, office):
    """A second daemon forwarding everything to the first, but corp.example to the office."""
    def config(port, d):
        c = conftest.default_config(internet, port, d)
        c["resolver"] = {"mode": "forward", "dnssec": True,
                         "trust-anchor": c["resolver"]["trust-anchor"],
                         "forward": ["127.0.0.1@%d" % daemon.port],
                         "forward-zones": [{"zone": "corp.example", "forward": [OFFICE]}]}
        return c
    fwd = bulwark(config)
    r, n = sent_to_office(office, lambda: fwd.query("dc.corp.example.", "A"))
    assert dnsutil.addresses(r) == ["192.0.2.10"], describe(r)
    assert n >= 1
    r = fwd.query("www.secure.tld.", "A", do=True)
    assert dnsutil.addresses(r) == ["192.0.2.10"] and r.flags & dns.flags.AD, describe(r)


def test_explain_says_local(daemon):
    out = explain(daemon, "nas.home.arpa", "--no-resolve")
    assert "local:    a local record (local-records): A 192.168.1.10, AAAA fd00::10" in out, out
    assert "verdict:  answered locally" in out, out
    out = explain(daemon, "printer.lan", "--no-resolve")
    assert "local-records-file %s:2" % os.path.join(daemon.dir, "office.hosts") in out, out
    out = explain(daemon, "x.onion", "--no-resolve")
    assert "special-use name onion. (RFC 7686)" in out and "NXDOMAIN" in out, out
    out = explain(daemon, "dc.corp.example", "--no-resolve")
    assert "local:    under forward zone corp.example: forwarded to 127.54.0.1@53" in out, out
    assert "verdict:  resolve normally" in out, out


# -- config errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("text,line,col,words", [
    ("resolver:\n  forward-zones:\n    - { zone: corp.example }\n", 3, 7,
     ["missing required key 'forward'"]),
    ("resolver:\n  forward-zones:\n    - { zone: corp.example, forward: [] }\n", 3, 38,
     ["zone 'corp.example' lists no server"]),
    ("resolver:\n  forward-zones:\n    - { zone: corp..example, forward: [ 192.0.2.1 ] }\n",
     3, 15, ["zone 'corp..example' has an empty label"]),
    ("resolver:\n  forward-zones:\n    - { zone: a.example, forward: [ 192.0.2.1 ] }\n"
     "    - { zone: A.Example., forward: [ 192.0.2.2 ] }\n", 4, 15,
     ["zone 'a.example' is listed twice"]),
    ("resolver:\n  forward-zones:\n    - { zone: a.example, forward: [ host.example ] }\n",
     3, 37, ["'host.example' is not an IPv4 or IPv6 address"]),
    ("resolver:\n  special-use: { test: forward }\n", 2, 24, ["invalid test 'forward'"]),
    ("local-records:\n  nas.lan: 192.168.1.300\n", 2, 12,
     ["'192.168.1.300' is not an IPv4 or IPv6 address"]),
    ("local-records:\n  nas.lan: 10.0.0.1\n  NAS.LAN: 10.0.0.2\n", 3, 3,
     ["name 'NAS.LAN' is given twice"]),
])
def test_config_errors(workdir, text, line, col, words):
    path, p = check(workdir, text)
    assert_error(path, p, line, col, *words)


def test_config_hosts_file_errors(workdir):
    hosts = os.path.join(workdir, "hosts")
    for body, want in (("10.0.0.1 ok.lan\n10.0.0.300 bad.lan\n",
                        "%s:2: '10.0.0.300' is not an IPv4 or IPv6 address" % hosts),
                       ("# only a comment\n\n10.0.0.1\n", "%s:3: no name after '10.0.0.1'" % hosts),
                       ("10.0.0.1 bad_name!.lan\n", "%s:1: name 'bad_name!.lan' has a character" % hosts)):
        with open(hosts, "w") as f:
            f.write(body)
        _, p = check(workdir, "local-records-file: hosts\n")
        assert p.returncode == 2, p.stderr
        assert p.stderr.startswith(want), p.stderr
    with open(hosts, "w") as f:
        f.write("10.0.0.1 ok.lan  # fine\n")
    _, p = check(workdir, "local-records-file: hosts\nlocal-ttl: 60\n")
    assert p.returncode == 0, p.stderr
