"""The shipped config (etc/bulwark.yaml) on a machine that cannot reach its feeds yet: no
network (the test's own namespace) and no last good copy. Bulwark must start, answer, and
say loudly - in its log and in `bulwarkctl feeds` - that no threat feed is loaded yet.

Only the listener, the state directory and the resolver (pointed at the fake internet)
are changed; the feeds, profiles and everything else are the shipped ones. (The two small
local example lists still load: they are the organisation's own, not threat feeds.)
"""

import json
import os

import dns.rcode
import yaml

import conftest

SHIPPED = os.path.join(conftest.REPO_ROOT, "etc", "bulwark.yaml")


def shipped_config(internet, port, workdir):
    with open(SHIPPED) as f:
        conf = yaml.safe_load(f)
    conf["server"]["listen"] = [{"address": "127.0.0.1", "port": port}]
    conf["server"]["state-dir"] = os.path.join(workdir, "state")
    for feed in conf["policy"]["feeds"]:  # the local examples, relative to etc/
        if "file" in feed:
            feed["file"] = os.path.join(os.path.dirname(SHIPPED), feed["file"])
    conf["resolver"] = {"mode": "recursive", "dnssec": True,
                        "root-hints": internet.root_hints,
                        "trust-anchor": internet.trust_anchor}
    return conf


def test_shipped_config_without_network_starts_answers_and_says_no_feed(internet, bulwark,
                                                                        workdir):
    with open(SHIPPED) as f:
        shipped = yaml.safe_load(f)
    names = [feed["name"] for feed in shipped["policy"]["feeds"] if "url" in feed]
    assert len(names) >= 5

    d = bulwark(lambda port, w: shipped_config(internet, port, workdir), workdir=workdir)
    # it answers: a name of the fake internet resolves, with DNSSEC
    r = d.query("www.insecure.tld.", "A")
    assert r.rcode() == dns.rcode.NOERROR and r.answer, r
    log = d.log_text(10 ** 6)
    assert "NO THREAT FEED IS LOADED YET" in log, log
    for name in names:
        assert "feed %s: no copy yet" % name in log, log
    out = json.loads(conftest.ctl(os.path.join(workdir, "state"), "--json", "feeds").stdout)
    rows = [dict(zip(out["result"]["columns"], r)) for r in out["result"]["rows"]]
    fetched = [r for r in rows if r["state"] != "file"]
    assert [r["name"] for r in fetched] == names
    assert all(r["state"] == "no copy yet" for r in fetched), rows
    assert all(r["source"].startswith("https://") for r in fetched), rows
    # the human-readable table says it too
    text = conftest.ctl(os.path.join(workdir, "state"), "feeds").stdout
    assert text.count("no copy yet") == len(names), text
