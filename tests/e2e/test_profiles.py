"""Policy profiles end to end: the three shipped tiers (private: no feed; protected:
malware + phishing; family: + adult), chosen by listener (server.listen[].profile), by
client network (profiles[].clients) or by default-profile; a profile's own allowlist; and
the cache, which must never hand one profile's answer to another."""

import os
import subprocess

import dns.rcode
import pytest

import conftest
import dnsutil
from dnsutil import describe

FAMILY_CLIENT = "127.0.0.2"

# name -> its address in zones/insecure.tld.zone
ADDR = {
    "prof-mal.insecure.tld.": "192.0.2.130",
    "prof-phish.insecure.tld.": "192.0.2.131",
    "prof-adult.insecure.tld.": "192.0.2.132",
    "school.prof-adult.insecure.tld.": "192.0.2.133",
    "prof-cache.insecure.tld.": "192.0.2.134",
}
# name -> (feed, category) that lists it
LISTED = {
    "prof-mal.insecure.tld.": ("fmal", "malware"),
    "prof-phish.insecure.tld.": ("fphish", "phishing"),
    "prof-adult.insecure.tld.": ("fadult", "adult"),
    "prof-cache.insecure.tld.": ("fmal", "malware"),
}


def ede_text(r):
    for c, text in dnsutil.ede(r):
        if c == dnsutil.EDE_BLOCKED:
            return text
    return None


def assert_blocked(r, feed, category):
    assert r.rcode() == dns.rcode.NXDOMAIN, describe(r)
    assert ede_text(r) == "blocked by %s (%s)" % (feed, category), describe(r)
    assert not r.answer, describe(r)


def assert_resolves(r, name):
    assert r.rcode() == dns.rcode.NOERROR, "%s: %s" % (name, describe(r))
    assert dnsutil.EDE_BLOCKED not in dnsutil.ede_codes(r), "%s: %s" % (name, describe(r))
    assert dnsutil.addresses(r) == [ADDR[name]], "%s: %s" % (name, describe(r))


def other_port(*taken):
    while True:
        p = conftest.free_port()
        if p not in taken:
            return p


@pytest.fixture(scope="module")
def profd(bulwark_module, internet, tmp_path_factory):
    d = str(tmp_path_factory.mktemp("profiles"))
    feeds = [
        {"name": "fmal", "category": "malware", "format": "domains",
         "file": conftest.write_domains(os.path.join(d, "mal.txt"),
                                        ["prof-mal.insecure.tld", "prof-cache.insecure.tld"])},
        # also lists school.prof-adult.insecure.tld, which family allowlists
        {"name": "fphish", "category": "phishing", "format": "hosts",
         "file": conftest.write_hosts(os.path.join(d, "phish.hosts"),
                                      [("0.0.0.0", "prof-phish.insecure.tld"),
                                       ("0.0.0.0", "school.prof-adult.insecure.tld")])},
        {"name": "fadult", "category": "adult", "format": "domains",
         "file": conftest.write_domains(os.path.join(d, "adult.txt"),
                                        ["prof-adult.insecure.tld"])},
    ]
    ports = {}

    def config(port, workdir):
        ports["default"] = port
        ports["private"] = other_port(port)
        ports["family"] = other_port(port, ports["private"])
        listen = [{"address": "127.0.0.1", "port": port},
                  {"address": "127.0.0.1", "port": ports["private"], "profile": "private"},
                  {"address": "127.0.0.1", "port": ports["family"], "profile": "family"}]
        profiles = [
            {"name": "private", "feeds": "none"},
            {"name": "protected", "categories": ["malware", "phishing"]},
            {"name": "family", "categories": ["malware", "phishing", "adult"],
             "allowlist": ["school.prof-adult.insecure.tld"],
             "clients": [FAMILY_CLIENT + "/32"]},
        ]
        return conftest.default_config(internet, port, workdir, feeds=feeds, allowlist=[],
                                       server={"listen": listen},
                                       policy={"profiles": profiles,
                                               "default-profile": "protected"})

    daemon = bulwark_module(config, workdir=d)
    daemon.ports = ports
    return daemon


def q(daemon, name, listener="default", source=None, tcp=False):
    return dnsutil.query(daemon.ports[listener], name, "A", source=source, tcp=tcp)


def test_default_profile_is_protected(profd):
    assert_blocked(q(profd, "prof-mal.insecure.tld."), "fmal", "malware")
    assert_blocked(q(profd, "prof-phish.insecure.tld."), "fphish", "phishing")
    assert_blocked(q(profd, "school.prof-adult.insecure.tld."), "fphish", "phishing")
    # adult content is not blocked for protected
    assert_resolves(q(profd, "prof-adult.insecure.tld."), "prof-adult.insecure.tld.")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_family_by_client_network(profd, tcp):
    src = FAMILY_CLIENT
    assert_blocked(q(profd, "prof-adult.insecure.tld.", source=src, tcp=tcp), "fadult", "adult")
    assert_blocked(q(profd, "www.prof-adult.insecure.tld.", source=src, tcp=tcp), "fadult",
                   "adult")
    assert_blocked(q(profd, "prof-mal.insecure.tld.", source=src, tcp=tcp), "fmal", "malware")
    assert_blocked(q(profd, "prof-phish.insecure.tld.", source=src, tcp=tcp), "fphish",
                   "phishing")
    # the family allowlist: wins over fadult (its parent) and over fphish (the name itself)
    assert_resolves(q(profd, "school.prof-adult.insecure.tld.", source=src, tcp=tcp),
                    "school.prof-adult.insecure.tld.")


def test_family_by_listener(profd):
    # from 127.0.0.1, which no clients network names: the listener decides
    assert_blocked(q(profd, "prof-adult.insecure.tld.", "family"), "fadult", "adult")
    assert_blocked(q(profd, "prof-mal.insecure.tld.", "family"), "fmal", "malware")
    assert_resolves(q(profd, "school.prof-adult.insecure.tld.", "family"),
                    "school.prof-adult.insecure.tld.")


@pytest.mark.parametrize("source", [None, FAMILY_CLIENT], ids=["127.0.0.1", "127.0.0.2"])
def test_private_listener_blocks_nothing(profd, source):
    # the listener's profile wins over the client network (127.0.0.2 is family's)
    for name in ("prof-mal.insecure.tld.", "prof-phish.insecure.tld.",
                 "prof-adult.insecure.tld.", "school.prof-adult.insecure.tld."):
        assert_resolves(q(profd, name, "private", source=source), name)


def test_profile_allowlist_only_in_its_profile(profd):
    name = "school.prof-adult.insecure.tld."
    assert_resolves(q(profd, name, "family"), name)
    assert_blocked(q(profd, name), "fphish", "phishing")                    # protected
    assert_resolves(q(profd, name, source=FAMILY_CLIENT), name)              # family
    assert_blocked(q(profd, name), "fphish", "phishing")                    # protected again


def test_cache_not_shared_across_profiles(profd):
    name = "prof-cache.insecure.tld."
    # private first: the real answer goes into the cache
    assert_resolves(q(profd, name, "private"), name)
    assert_resolves(q(profd, name, "private"), name)
    # protected (default listener, 127.0.0.1) must not get it
    assert_blocked(q(profd, name), "fmal", "malware")
    # family (by client) neither
    assert_blocked(q(profd, name, source=FAMILY_CLIENT), "fmal", "malware")
    # and the blocked answer does not leak back into private
    assert_resolves(q(profd, name, "private"), name)
    # the other way round, on a name only family blocks
    assert_blocked(q(profd, "www.prof-adult.insecure.tld.", "family"), "fadult", "adult")
    r = q(profd, "www.prof-adult.insecure.tld.")
    assert r.rcode() == dns.rcode.NXDOMAIN and not dnsutil.ede(r), \
        "protected got family's blocked answer (the name does not exist): " + describe(r)


def test_explain_names_profile(profd):
    binary = conftest.bulwark_binary()
    p = subprocess.run([binary, "explain", "prof-adult.insecure.tld", "-c", profd.config_path,
                        "--client", FAMILY_CLIENT], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "profile:  family" in p.stdout, p.stdout
    assert "* feed fadult (adult)" in p.stdout, p.stdout
    p = subprocess.run([binary, "explain", "prof-adult.insecure.tld", "-c", profd.config_path,
                        "--client", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "profile:  protected" in p.stdout, p.stdout
    assert "(feed not in profile protected: ignored)" in p.stdout, p.stdout
    assert "* feed" not in p.stdout, p.stdout
