"""An RPZ feed by zone transfer (primaries:) in the daemon, against a real Knot DNS primary
on loopback: TSIG, NOTIFY + IXFR, and the packet cache across IXFRs (an answer cached
before a change must not outlive it: the changed name, and a CNAME chain into it)."""

import os
import time

import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import pytest
import yaml

import conftest
import dnsutil
import knot

ZONE = "rpz.feed.test"
KEY = ("feed-key", "hmac-sha256", knot.make_secret("feed"))


def blocked(d, name):
    r = d.query(name, "A")
    return r.rcode() == dns.rcode.NXDOMAIN and dnsutil.EDE_BLOCKED in dict(dnsutil.ede(r))


def wait(pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def primary(tmp_path):
    port = conftest.free_port()
    k = knot.KnotPrimary(str(tmp_path), "127.0.0.1", zone=ZONE, port=port,
                         names=["seed.example"], key=KEY)
    yield k
    k.stop()


# compact_after 1: every IXFR's changes are also folded into a new base right away
# (policy.compact-after), which must answer the same
@pytest.mark.parametrize("compact_after", [None, 1])
def test_ixfr_changes_apply_through_the_cache(internet, bulwark, workdir, primary, compact_after):
    def config(port, d):
        conf = conftest.default_config(internet, port, d, feeds=[{
            "name": "cert", "category": "malware", "format": "rpz",
            "primaries": ["127.0.0.1@%d" % primary.port], "zone": ZONE,
            "tsig": {"name": KEY[0], "algorithm": KEY[1], "secret": KEY[2]}}])
        if compact_after:
            conf["policy"]["compact-after"] = compact_after
        return conf
    d = bulwark(config, wait=False)
    primary.notify = ["127.0.0.1@%d" % d.port]
    primary.write_conf()
    primary.start()
    d.wait_ready()
    assert wait(lambda: blocked(d, "seed.example")), d.log_text()
    # cached as allowed: the name itself, and a chain alias -> www
    for name in ("www.insecure.tld", "alias.insecure.tld"):
        r = d.query(name, "A")
        assert r.rcode() == dns.rcode.NOERROR and r.answer, r
        assert d.query(name, "A").rcode() == dns.rcode.NOERROR
    primary.edit(add=["www.insecure.tld"])
    # NOTIFY -> IXFR -> delta: both the name and the chain into it are blocked at once,
    # although the cache holds their earlier answers
    assert wait(lambda: blocked(d, "www.insecure.tld")), d.log_text()
    r = d.query("alias.insecure.tld", "A")
    assert r.rcode() == dns.rcode.NXDOMAIN, r
    assert "IXFR of %s" % ZONE in d.log_text(10 ** 6)
    # a name the IXFR did not touch is still served (from the cache or afresh)
    assert d.query("insecure.tld", "SOA").rcode() == dns.rcode.NOERROR
    # and removed again
    primary.edit(delete=["www.insecure.tld"])
    assert wait(lambda: not blocked(d, "www.insecure.tld")), d.log_text()
    assert d.query("alias.insecure.tld", "A").rcode() == dns.rcode.NOERROR
    # the last good copy is rewritten with the new serial (after the policy has it)
    meta_path = os.path.join(d.dir, "state", "feeds", "cert.meta")
    want = '"serial": %d' % primary.serial()
    assert wait(lambda: want in open(meta_path).read()), open(meta_path).read()
    assert "www.insecure.tld" not in open(os.path.join(d.dir, "state", "feeds", "cert.rpz")).read()
    # rewriting the last good copy is not a change for the file watcher (watch-interval
    # 1 s): no full rebuild after the deltas
    time.sleep(2.5)
    log = d.log_text(10 ** 6)
    assert "feed files changed" not in log
    folded = log.count("from transfers folded into a new base")
    assert folded == (2 if compact_after else 0), log


def test_wrong_tsig_key_is_rejected(internet, bulwark, workdir, primary):
    primary.start()
    bad = knot.make_secret("other")
    d = bulwark(lambda port, w: conftest.default_config(internet, port, w, feeds=[{
        "name": "cert", "category": "malware", "format": "rpz",
        "primaries": ["127.0.0.1@%d" % primary.port], "zone": ZONE,
        "tsig": {"name": KEY[0], "algorithm": KEY[1], "secret": bad}}]))
    assert wait(lambda: "feed cert: fetch failed" in d.log_text(10 ** 6)), d.log_text()
    assert not blocked(d, "seed.example")


def notify_msg(zone):
    q = dns.message.make_query(zone, "SOA")
    q.flags = dns.flags.AA  # (the opcode lives in the flags word: set it after)
    q.set_opcode(dns.opcode.NOTIFY)
    return q


def test_notify_without_tsig_is_refused(internet, bulwark, primary):
    primary.start()
    d = bulwark(lambda port, w: conftest.default_config(internet, port, w, feeds=[{
        "name": "cert", "category": "malware", "format": "rpz",
        "primaries": ["127.0.0.1@%d" % primary.port], "zone": ZONE,
        "tsig": {"name": KEY[0], "algorithm": KEY[1], "secret": KEY[2]}}]))
    assert wait(lambda: blocked(d, "seed.example")), d.log_text()
    # from the primary's address, but unsigned: the feed has a key
    r = dns.query.udp(notify_msg(ZONE), "127.0.0.1", port=d.port, timeout=2)
    assert r.opcode() == dns.opcode.NOTIFY and r.rcode() in (dns.rcode.NOTAUTH,
                                                             dns.rcode.REFUSED), r
    assert wait(lambda: "NOTIFY from 127.0.0.1 refused" in d.log_text(10 ** 6)), d.log_text()
    # a zone we do not transfer: not ours to answer as a secondary
    r = dns.query.udp(notify_msg("other.test"), "127.0.0.1", port=d.port, timeout=2)
    assert r.rcode() in (dns.rcode.NOTAUTH, dns.rcode.REFUSED), r


def test_notify_without_transfer_feeds_is_notimp(resolver):
    r = dns.query.udp(notify_msg("example.org"), "127.0.0.1", port=resolver.port, timeout=2)
    assert r.rcode() == dns.rcode.NOTIMP, r


def ede_text(d, name):
    return dict(dnsutil.ede(d.query(name, "A"))).get(dnsutil.EDE_BLOCKED)


def test_reload_that_inserts_a_feed_keeps_transfers_on_their_feed(internet, bulwark, workdir,
                                                                   primary):
    """The feed manager counts feeds as the start-up config lists them; a reload that puts
    another feed before the transfer feed must not send the next IXFR to that feed (nor
    write that feed's rules into the transfer feed's last good copy)."""
    xfr = {"name": "cert", "category": "malware", "format": "rpz",
           "primaries": ["127.0.0.1@%d" % primary.port], "zone": ZONE,
           "tsig": {"name": KEY[0], "algorithm": KEY[1], "secret": KEY[2]}}
    local = {"name": "local", "category": "phishing", "format": "domains",
             "file": conftest.write_domains(os.path.join(workdir, "local.txt"),
                                            ["phish.insecure.tld"])}
    d = bulwark(lambda port, w: conftest.default_config(internet, port, w, feeds=[xfr]),
                wait=False)
    primary.notify = ["127.0.0.1@%d" % d.port]
    primary.write_conf()
    primary.start()
    d.wait_ready()
    assert wait(lambda: blocked(d, "seed.example")), d.log_text()

    conf = yaml.safe_load(d.config_text)
    conf["policy"]["feeds"] = [local, xfr]
    with open(d.config_path, "w") as f:
        yaml.safe_dump(conf, f)
    d.reload()
    assert wait(lambda: ede_text(d, "phish.insecure.tld") == "blocked by local (phishing)"), \
        d.log_text()

    primary.edit(add=["www.insecure.tld"])
    assert wait(lambda: blocked(d, "www.insecure.tld")), d.log_text()
    assert ede_text(d, "www.insecure.tld") == "blocked by cert (malware)", d.log_text()
    assert ede_text(d, "seed.example") == "blocked by cert (malware)"
    assert ede_text(d, "phish.insecure.tld") == "blocked by local (phishing)"
    # the transfer feed's last good copy holds its own rules only
    meta_path = os.path.join(d.dir, "state", "feeds", "cert.meta")
    want = '"serial": %d' % primary.serial()
    assert wait(lambda: want in open(meta_path).read()), open(meta_path).read()
    copy = open(os.path.join(d.dir, "state", "feeds", "cert.rpz")).read()
    assert "www.insecure.tld" in copy and "seed.example" in copy, copy
    assert "phish.insecure.tld" not in copy, copy
    # and the next IXFR removes from the right feed too
    primary.edit(delete=["www.insecure.tld"])
    assert wait(lambda: not blocked(d, "www.insecure.tld")), d.log_text()
    assert ede_text(d, "phish.insecure.tld") == "blocked by local (phishing)"
