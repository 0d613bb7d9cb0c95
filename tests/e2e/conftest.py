"""tests/e2e/conftest.py - fixtures for the end-to-end tests.

  internet        (session) the fake internet: signed zones + NSD processes (fakenet.py)
  bulwark         (function) a factory: bulwark(**kw) starts a daemon, stopped at teardown
  bulwark_module  (module) the same factory, daemons live for the whole test module
  workdir         (function) a fresh temp dir (feed files, configs)

A daemon is a Daemon: .port, .pid, .config_path, .log_text(), .reload() (SIGHUP),
.stop() (SIGTERM, asserts exit status 0), .query(name, rdtype, **kw).

The tests must run inside a private network namespace (run.sh makes one): the fake
internet binds port 53 on 127.53.0.x. The session refuses to start anywhere else.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

E2E_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(E2E_DIR))
sys.path.insert(0, E2E_DIR)

import dnsutil  # noqa: E402
import fakenet  # noqa: E402

DATA_DIR = os.path.join(REPO_ROOT, "tests", "data")
SHARED_DATA_DIR = os.path.normpath(os.path.join(REPO_ROOT, "..", "shared", "data"))

# The feeds most tests use (names exist in zones/insecure.tld.zone, so a block is visible).
MALWARE_DOMAINS = ["evil-target.insecure.tld", "blocked.insecure.tld", "both.insecure.tld"]
PHISHING_HOSTS = [("0.0.0.0", "phish.insecure.tld"), ("0.0.0.0", "both.insecure.tld")]
ALLOWLIST = ["ok.blocked.insecure.tld"]


def bulwark_binary():
    path = os.environ.get("BULWARK", "build/bulwark")
    if not os.path.isabs(path):
        path = os.path.join(REPO_ROOT, path)
    return path


def in_private_netns():
    # /sys/class/net shows the namespace sysfs was mounted in; ask the kernel instead
    return [name for _, name in socket.if_nameindex()] == ["lo"]


def pytest_sessionstart(session):
    if not in_private_netns():
        pytest.exit("tests/e2e must run inside a private network namespace: use "
                    "tests/e2e/run.sh (it runs `unshare -n`); refusing to bind port 53 "
                    "on this host's network", returncode=3)


def pytest_report_header(config):
    return "bulwark binary: %s" % bulwark_binary()


# -- the fake internet --------------------------------------------------------------------
@pytest.fixture(scope="session")
def internet(tmp_path_factory):
    net = fakenet.Internet(str(tmp_path_factory.mktemp("internet")))
    try:
        net.start()
    except Exception:
        net.stop()
        raise
    yield net
    net.stop()


# -- feeds and configs --------------------------------------------------------------------
def write_domains(path, names, header="# domains feed written by tests/e2e\n"):
    with open(path, "w") as f:
        f.write(header)
        for n in names:
            f.write(n + "\n")
    return path


def write_hosts(path, entries, header="# hosts feed written by tests/e2e\n"):
    with open(path, "w") as f:
        f.write(header)
        for ip, n in entries:
            f.write("%s %s\n" % (ip, n))
    return path


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def standard_feeds(d):
    """The two feeds most tests use: urlhaus (malware, domains) then scam (phishing, hosts)."""
    return [
        {"name": "urlhaus", "category": "malware", "format": "domains",
         "file": write_domains(os.path.join(d, "urlhaus.txt"), MALWARE_DOMAINS)},
        {"name": "scam", "category": "phishing", "format": "hosts",
         "file": write_hosts(os.path.join(d, "scam.hosts"), PHISHING_HOSTS)},
    ]


def default_config(internet, port, workdir, *, feeds=None, allowlist=None, acl=None,
                   workers=2, dnssec=True, watch_interval="1s", serve_stale="1d",
                   log_level="info", server=None, resolver=None, cache=None, policy=None):
    if feeds is None:
        feeds = standard_feeds(workdir)
    if allowlist is None:
        allowlist = list(ALLOWLIST)
    if acl is None:
        acl = [{"network": "127.0.0.0/8", "action": "allow"}]
    conf = {
        "server": {
            "listen": [{"address": "127.0.0.1", "port": port}],
            "workers": workers,
            "access-control": acl,
            "tcp-idle-timeout": "10s",
            "state-dir": os.path.join(workdir, "state"),  # last good copies, control socket
            # the tests' files are root's (pytest's temp dirs are 0700): stay root, whatever
            # users this machine has (test_privileges.py tests the drop)
            "user": "root",
        },
        "resolver": {
            "mode": "recursive",
            "dnssec": dnssec,
            "root-hints": internet.root_hints,
            "trust-anchor": internet.trust_anchor,
        },
        "cache": {"size": "64M", "serve-stale": serve_stale},
        "policy": {"feeds": feeds, "allowlist": allowlist, "watch-interval": watch_interval},
        "log": {"level": log_level},
    }
    for key, extra in (("server", server), ("resolver", resolver), ("cache", cache),
                       ("policy", policy)):
        if extra:
            conf[key].update(extra)
    return conf


def ctl_binary():
    return os.path.join(os.path.dirname(bulwark_binary()), "bulwarkctl")


def ctl(statedir, *args, check=True):
    """Runs bulwarkctl against the daemon whose state-dir is statedir."""
    p = subprocess.run([ctl_binary(), "-s", os.path.join(statedir, "control.sock")] + list(args),
                       capture_output=True, text=True, timeout=30)
    if check:
        assert p.returncode == 0, "bulwarkctl %s: rc %d\n%s%s" % (" ".join(args), p.returncode,
                                                                  p.stdout, p.stderr)
    return p


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")


# -- the daemon -----------------------------------------------------------------------------
class Daemon:
    def __init__(self, workdir, config, port, name="bulwark"):
        self.dir = workdir
        self.port = port
        self.config_path = os.path.join(workdir, name + ".yaml")
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None
        self.write_config(config)

    def write_config(self, config):
        text = config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False)
        text = text.replace("$PORT", str(self.port))
        with open(self.config_path, "w") as f:
            f.write(text)
        self.config_text = text

    @property
    def pid(self):
        return self.proc.pid

    def start(self, wait=True, timeout=20.0):
        binary = bulwark_binary()
        if not os.access(binary, os.X_OK):
            pytest.fail("daemon binary %s not found or not executable (set $BULWARK or run "
                        "make)" % binary)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([binary, "-f", "-c", self.config_path], stdout=log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20.0):
        """Poll with a UDP query until any answer comes back."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail("bulwark exited with status %s before answering; config:\n%s\n"
                            "log:\n%s" % (self.proc.returncode, self.config_text,
                                          self.log_text()))
            try:
                dnsutil.query(self.port, "localhost.", "A", timeout=0.25)
                return
            except Exception:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail("bulwark did not answer on 127.0.0.1:%d within %.0fs; log:\n%s"
                            % (self.port, timeout, self.log_text()))
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        assert self.alive(), "bulwark died (status %s); log:\n%s" % (
            self.proc.returncode, self.log_text())

    def log_text(self, tail=6000):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def reload(self):
        self.assert_alive()
        os.kill(self.proc.pid, signal.SIGHUP)

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout=5.0):
        """SIGTERM; the daemon must drain and exit 0 within timeout."""
        if self.proc is None:
            return
        if self.proc.poll() is not None:
            rc = self.proc.returncode
            assert rc == 0, "bulwark had already exited with status %s; log:\n%s" % (
                rc, self.log_text())
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("bulwark did not exit within %.0fs of SIGTERM; log:\n%s"
                        % (timeout, self.log_text()))
        assert rc == 0, "bulwark exited with status %s after SIGTERM (want 0); log:\n%s" % (
            rc, self.log_text())

    # convenience
    def query(self, name, rdtype="A", **kw):
        return dnsutil.query(self.port, name, rdtype, **kw)


class Launcher:
    def __init__(self, internet, make_dir):
        self.internet = internet
        self.make_dir = make_dir
        self.daemons = []

    def __call__(self, config=None, *, wait=True, name="bulwark", workdir=None, **kw):
        """bulwark()                 the default config (standard feeds, allowlist)
        bulwark(feeds=[...], ...)    default_config() with these keyword arguments
        bulwark(dict)                this config; bulwark("yaml text") with $PORT replaced
        bulwark(fn)                  the config fn(port, workdir) returns"""
        d = workdir or self.make_dir()
        port = free_port()
        if config is None:
            config = default_config(self.internet, port, d, **kw)
        elif kw:
            raise TypeError("keyword arguments only with the default config")
        elif callable(config):
            config = config(port, d)
        daemon = Daemon(d, config, port, name)
        self.daemons.append(daemon)
        return daemon.start(wait=wait)

    def teardown(self):
        errors = []
        for daemon in self.daemons:
            try:
                daemon.stop()
            except BaseException as e:  # noqa: BLE001 - report every daemon
                errors.append(str(e))
            finally:
                daemon.kill()
        self.daemons = []
        if errors:
            pytest.fail("\n".join(errors), pytrace=False)


@pytest.fixture
def workdir(tmp_path):
    return str(tmp_path)


@pytest.fixture
def bulwark(internet, tmp_path_factory):
    launcher = Launcher(internet, lambda: str(tmp_path_factory.mktemp("bulwark")))
    yield launcher
    launcher.teardown()


@pytest.fixture(scope="module")
def bulwark_module(internet, tmp_path_factory):
    launcher = Launcher(internet, lambda: str(tmp_path_factory.mktemp("bulwark")))
    yield launcher
    launcher.teardown()


@pytest.fixture(scope="module")
def resolver(bulwark_module):
    """One daemon with the default config, shared by a test module."""
    return bulwark_module()
