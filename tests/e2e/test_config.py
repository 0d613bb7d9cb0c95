"""`bulwark --check-config`: exit 0 for a good config; exit 2 and `file:line:col: message`
on stderr for a bad one. The daemon refuses to start on a bad config."""

import os
import re
import subprocess

import pytest
import yaml

import conftest

GOOD = """\
server:
  listen: [ { address: 127.0.0.1, port: 5353 } ]
  workers: 2
  access-control: [ { network: 127.0.0.0/8, action: allow } ]
  tcp-idle-timeout: 10s
resolver:
  mode: recursive
  dnssec: true
cache: { size: 64M, serve-stale: 1d }
policy:
  feeds:
    - { name: urlhaus, category: malware, format: domains, file: FEED }
  allowlist: [ allowed.example ]
  watch-interval: 1s
log: { level: info }
"""


def check(workdir, text, name="bulwark.yaml", cwd=None):
    path = os.path.join(workdir, name)
    with open(path, "w") as f:
        f.write(text)
    p = subprocess.run([conftest.bulwark_binary(), "--check-config", path], capture_output=True,
                       text=True, timeout=30, cwd=cwd)
    return path, p


@pytest.fixture
def feed(workdir):
    return conftest.write_domains(os.path.join(workdir, "feed.txt"), ["evil.example"])


@pytest.fixture(autouse=True)
def need_binary():
    if not os.access(conftest.bulwark_binary(), os.X_OK):
        pytest.fail("daemon binary %s not found" % conftest.bulwark_binary())


def assert_error(path, p, line, col=None, *words):
    assert p.returncode == 2, "exit %d (want 2); stderr: %s" % (p.returncode, p.stderr)
    m = re.search(r"^%s:(\d+):(\d+): (.+)$" % re.escape(path), p.stderr, re.M)
    assert m, "no '%s:line:col: message' on stderr: %r" % (path, p.stderr)
    got_line, got_col, msg = int(m.group(1)), int(m.group(2)), m.group(3)
    lines = line if isinstance(line, (list, tuple, set)) else [line]
    assert got_line in lines, "error reported at line %d, want %s: %s" % (got_line, line,
                                                                         m.group(0))
    if col is not None:
        assert got_col == col, "error at column %d, want %d: %s" % (got_col, col, m.group(0))
    for w in words:
        assert w in msg, "message %r does not mention %r" % (msg, w)
    return msg


def test_good_config(workdir, feed):
    path, p = check(workdir, GOOD.replace("FEED", feed))
    assert p.returncode == 0, p.stderr
    assert "error" not in p.stderr.lower(), p.stderr


def test_test_harness_config_is_valid(internet, workdir):
    conf = conftest.default_config(internet, 5353, workdir)
    path, p = check(workdir, yaml.safe_dump(conf, sort_keys=False))
    assert p.returncode == 0, p.stderr


def test_empty_config_is_valid(workdir):
    path, p = check(workdir, "# nothing but a comment\n")
    assert p.returncode == 0, p.stderr


def test_relative_feed_path_is_relative_to_config(workdir, feed, tmp_path_factory):
    elsewhere = str(tmp_path_factory.mktemp("cwd"))
    path, p = check(workdir, GOOD.replace("FEED", "feed.txt"), cwd=elsewhere)
    assert p.returncode == 0, p.stderr


def test_bad_yaml(workdir, feed):
    text = GOOD.replace("FEED", feed).replace("  workers: 2\n", "  workers: [2\n")
    # where libyaml (PyYAML mirrors it) places the problem
    try:
        yaml.safe_load(text)
        raise AssertionError("test config is valid YAML")
    except yaml.MarkedYAMLError as e:
        want = {e.problem_mark.line + 1, (e.context_mark.line + 1) if e.context_mark else 0}
    path, p = check(workdir, text)
    assert_error(path, p, want)


def test_bad_yaml_tab_indent(workdir):
    path, p = check(workdir, "server:\n\tworkers: 2\n")
    assert_error(path, p, [1, 2])


def test_unknown_key(workdir, feed):
    text = GOOD.replace("FEED", feed).replace("  workers: 2\n", "  workers: 2\n  wrokers: 3\n")
    path, p = check(workdir, text)
    assert_error(path, p, 4, 3, "wrokers")


def test_unknown_top_level_key(workdir, feed):
    text = GOOD.replace("FEED", feed) + "policyy: {}\n"
    path, p = check(workdir, text)
    assert_error(path, p, 16, 1, "policyy")


def test_duplicate_key(workdir, feed):
    text = GOOD.replace("FEED", feed).replace("  workers: 2\n", "  workers: 2\n  workers: 3\n")
    path, p = check(workdir, text)
    assert_error(path, p, 4, 3, "workers")


def test_missing_feed_file(workdir):
    missing = os.path.join(workdir, "no-such-feed.txt")
    path, p = check(workdir, GOOD.replace("FEED", missing))
    msg = assert_error(path, p, 12, None, "no-such-feed.txt")
    assert "urlhaus" in msg or "No such file" in msg, msg


@pytest.mark.parametrize("old,new,line,word", [
    ("port: 5353", "port: 70000", 2, "port"),
    ("port: 5353", "port: abc", 2, "port"),
    ("action: allow", "action: permit", 4, "action"),
    ("network: 127.0.0.0/8", "network: 127.0.0.0/33", 4, "network"),
    ("mode: recursive", "mode: iterate", 7, "mode"),
    ("size: 64M", "size: lots", 9, "size"),
    ("format: domains", "format: xml", 12, "format"),
    ("tcp-idle-timeout: 10s", "tcp-idle-timeout: 10 parsecs", 5, "tcp-idle-timeout"),
    ("dnssec: true", "dnssec: maybe", 8, "dnssec"),
])
def test_bad_values(workdir, feed, old, new, line, word):
    text = GOOD.replace("FEED", feed)
    assert old in text
    path, p = check(workdir, text.replace(old, new))
    assert_error(path, p, line, None, word)


def test_duplicate_feed_name(workdir, feed):
    text = GOOD.replace("FEED", feed).replace(
        "  allowlist:",
        "    - { name: urlhaus, category: phishing, format: domains, file: %s }\n  allowlist:"
        % feed)
    path, p = check(workdir, text)
    assert_error(path, p, 13, None, "urlhaus")


def test_forward_mode_needs_upstreams(workdir, feed):
    text = GOOD.replace("FEED", feed).replace("mode: recursive", "mode: forward")
    path, p = check(workdir, text)
    assert p.returncode == 2, p.stderr
    assert path + ":" in p.stderr, p.stderr


def test_daemon_refuses_bad_config(workdir, feed):
    path = os.path.join(workdir, "bad.yaml")
    with open(path, "w") as f:
        f.write(GOOD.replace("FEED", feed).replace("  workers: 2\n", "  wrokers: 2\n"))
    p = subprocess.run([conftest.bulwark_binary(), "-f", "-c", path], capture_output=True,
                       text=True, timeout=15)
    assert p.returncode != 0, "daemon started on a bad config"
    assert p.returncode > 0, "daemon crashed (signal %d)" % -p.returncode
    assert re.search(r"%s:3:3: " % re.escape(path), p.stderr), p.stderr


def test_missing_config_file(workdir):
    path = os.path.join(workdir, "absent.yaml")
    p = subprocess.run([conftest.bulwark_binary(), "--check-config", path], capture_output=True,
                       text=True, timeout=15)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "absent.yaml" in p.stderr
