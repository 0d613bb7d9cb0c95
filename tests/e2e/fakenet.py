"""tests/e2e/fakenet.py - the fake internet the end-to-end tests resolve against.

Zone sources live in tests/e2e/zones/. At test time (once per pytest session) this module:
  1. generates DNSSEC keys (ldns-keygen, ECDSA P-256, a KSK and a ZSK per signed zone),
  2. signs the zones bottom-up (ldns-signzone, NSEC), appending each child's DS to its
     parent first, so the chain of trust runs root -> tld. -> secure.tld. / bogus.tld.,
  3. breaks bogus.tld. after signing (www's A data is altered, its RRSIG no longer
     verifies),
  4. writes the root hints and the trust anchor (the root KSK's DS) for the resolver,
  5. starts one NSD per role, each on its own loopback address, port 53:
        root      127.53.0.1   .
        tld       127.53.0.2   tld.
        leaf      127.53.0.3   secure.tld.   (also .4 bogus.tld., .5 insecure.tld., cn., io.)
        stale     127.53.0.6   stale.tld.    (its own NSD, so the stale test can stop it)
        v6        ::1          v6only.tld.   (IPv6 only: its name server has no IPv4 address)
     127.53.0.7 (ns.down.tld.) has nothing listening: an unreachable authority.
     Parent and child zones are on different NSDs so every delegation is a real referral
     (an NSD holding both would answer the child authoritatively at the parent's address).

Everything binds to 127.53.0.0/24 (and ::1) port 53, so it must run inside a private network
namespace (run.sh makes one). Nothing here talks to any address outside 127.0.0.0/8 and ::1.
"""

import datetime
import os
import re
import shutil
import signal
import subprocess
import time

import dns.flags
import dns.message
import dns.query
import dns.rcode

ZONES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zones")

ROOT_ADDR = "127.53.0.1"
UNREACHABLE_ADDR = "127.53.0.7"

# zone origin -> source file, signed?, NSD role
ZONES = {
    ".": ("root.zone", True, "root"),
    "tld.": ("tld.zone", True, "tld"),
    "secure.tld.": ("secure.tld.zone", True, "leaf"),
    "bogus.tld.": ("bogus.tld.zone", True, "leaf"),
    "insecure.tld.": ("insecure.tld.zone", False, "leaf"),
    "stale.tld.": ("stale.tld.zone", False, "stale"),
    "cn.": ("cn.zone", False, "leaf"),   # real suffixes for the guard's tests
    "io.": ("io.zone", False, "leaf"),
    "v6only.tld.": ("v6only.tld.zone", False, "v6"),
}
# child zones whose DS goes into the parent (origin -> parent origin)
DS_IN_PARENT = {"tld.": ".", "secure.tld.": "tld.", "bogus.tld.": "tld."}
# signing order: children before parents
SIGN_ORDER = ["secure.tld.", "bogus.tld.", "tld.", "."]

ROLES = {
    "root": ["127.53.0.1"],
    "tld": ["127.53.0.2"],
    "leaf": ["127.53.0.3", "127.53.0.4", "127.53.0.5"],
    "stale": ["127.53.0.6"],
    "v6": ["::1"],
}
# one address per zone, to check each NSD answers for its zone
ZONE_ADDR = {
    ".": "127.53.0.1",
    "tld.": "127.53.0.2",
    "secure.tld.": "127.53.0.3",
    "bogus.tld.": "127.53.0.4",
    "insecure.tld.": "127.53.0.5",
    "stale.tld.": "127.53.0.6",
    "cn.": "127.53.0.5",
    "io.": "127.53.0.5",
    "v6only.tld.": "::1",
}

BOGUS_OWNER = "www.bogus.tld."
BOGUS_SIGNED_ADDR = "192.0.2.40"
BOGUS_SERVED_ADDR = "192.0.2.41"


def _run(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def _group_running(pgid):
    """Is any process of process group pgid still running (not a zombie)?"""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _fname(origin):
    return "root" if origin == "." else origin.rstrip(".")


class Internet:
    """The fake internet: zones, keys, NSD processes. Use start()/stop()."""

    def __init__(self, workdir):
        self.dir = workdir
        self.keydir = os.path.join(workdir, "keys")
        self.zonedir = os.path.join(workdir, "zones")
        self.nsd = {}        # role -> Popen
        self.signed = {}     # origin -> path of the zone file NSD serves
        self.ds = {}         # origin -> DS RR text (signed zones)
        self.root_hints = os.path.join(workdir, "root.hints")
        self.trust_anchor = os.path.join(workdir, "root.key")
        self.trust_anchor_dnskey = os.path.join(workdir, "root.dnskey")

    # -- generation ---------------------------------------------------------------
    def generate(self):
        os.makedirs(self.keydir, exist_ok=True)
        os.makedirs(self.zonedir, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        inception = (now - datetime.timedelta(days=1)).strftime("%Y%m%d%H%M%S")
        expiration = (now + datetime.timedelta(days=30)).strftime("%Y%m%d%H%M%S")

        texts = {}
        for origin, (src, _signed, _role) in ZONES.items():
            with open(os.path.join(ZONES_DIR, src)) as f:
                texts[origin] = f.read()

        ksk = {}
        for origin in SIGN_ORDER:
            k = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", origin], cwd=self.keydir).strip()
            z = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", origin], cwd=self.keydir).strip()
            ksk[origin] = (k, z)
            with open(os.path.join(self.keydir, k + ".ds")) as f:
                self.ds[origin] = self._sha256_ds(f.read(), k)

        for origin in SIGN_ORDER:
            text = texts[origin]
            for child, parent in DS_IN_PARENT.items():
                if parent == origin:
                    text += "\n; DS of the child zone, added by fakenet.py\n%s\n" % self.ds[child]
            unsigned = os.path.join(self.zonedir, _fname(origin) + ".zone")
            with open(unsigned, "w") as f:
                f.write(text)
            k, z = ksk[origin]
            out = unsigned + ".signed"
            _run(["ldns-signzone", "-i", inception, "-e", expiration, "-o", origin, "-f", out,
                  unsigned, os.path.join(self.keydir, k), os.path.join(self.keydir, z)])
            self.signed[origin] = out

        for origin, (src, signed, _role) in ZONES.items():
            if not signed:
                path = os.path.join(self.zonedir, _fname(origin) + ".zone")
                with open(path, "w") as f:
                    f.write(texts[origin])
                self.signed[origin] = path

        self._break_bogus()

        with open(self.root_hints, "w") as f:
            f.write(".                        3600000 IN NS a.root-servers.tld.\n")
            f.write("a.root-servers.tld.      3600000 IN A  %s\n" % ROOT_ADDR)
        with open(self.trust_anchor, "w") as f:
            f.write(self.ds["."] + "\n")
        with open(os.path.join(self.keydir, ksk["."][0] + ".key")) as f:
            dnskey = [l for l in f.read().splitlines() if "DNSKEY" in l and not l.startswith(";")]
        with open(self.trust_anchor_dnskey, "w") as f:
            f.write("\n".join(dnskey) + "\n")

    @staticmethod
    def _sha256_ds(text, keyname):
        # ldns-keygen writes the DS with SHA-256 (digest type 2); make sure of it
        for line in text.splitlines():
            f = line.split()
            if "DS" in f and f[f.index("DS") + 3] == "2":
                return line.strip()
        raise RuntimeError("no SHA-256 DS for %s in: %r" % (keyname, text))

    def _break_bogus(self):
        path = self.signed["bogus.tld."]
        with open(path) as f:
            lines = f.read().splitlines()
        n = 0
        for i, line in enumerate(lines):
            f = line.split()
            if len(f) == 5 and f[0] == BOGUS_OWNER and f[3] == "A" and f[4] == BOGUS_SIGNED_ADDR:
                lines[i] = "\t".join(f[:4] + [BOGUS_SERVED_ADDR])
                n += 1
        if n != 1:
            raise RuntimeError("could not break %s in %s" % (BOGUS_OWNER, path))
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")

    # -- NSD ----------------------------------------------------------------------
    def _nsd_conf(self, role):
        d = os.path.join(self.dir, "nsd-" + role)
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nsd.conf")
        lines = ["server:"]
        for a in ROLES[role]:
            lines.append("    ip-address: %s" % a)
        lines += [
            "    port: 53",
            "    do-ip6: %s" % ("yes" if role == "v6" else "no"),
            '    username: ""',
            '    chroot: ""',
            '    database: ""',
            "    zonesdir: %s" % self.zonedir,
            "    pidfile: %s/nsd.pid" % d,
            "    xfrdfile: %s/xfrd.state" % d,
            "    zonelistfile: %s/zone.list" % d,
            "    xfrdir: %s" % d,
            "    logfile: %s/nsd.log" % d,
            "    server-count: 1",
            "    verbosity: 1",
            "    hide-version: yes",
            "    tcp-count: 200",
            "remote-control:",
            "    control-enable: no",
        ]
        for origin, (_src, _signed, r) in ZONES.items():
            if r == role:
                lines += ["zone:", '    name: "%s"' % origin,
                          "    zonefile: %s" % self.signed[origin]]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return conf

    def start_role(self, role, timeout=10.0):
        self.spawn_role(role)
        self.wait_role(role, timeout)

    def spawn_role(self, role):
        assert role not in self.nsd or self.nsd[role].poll() is not None, role
        conf = self._nsd_conf(role)
        subprocess.run(["nsd-checkconf", conf], check=True, capture_output=True)
        log = open(os.path.join(self.dir, "nsd-%s.out" % role), "ab")
        self.nsd[role] = subprocess.Popen(["nsd", "-d", "-c", conf], stdout=log, stderr=log,
                                          start_new_session=True)
        log.close()

    def wait_role(self, role, timeout=10.0):
        deadline = time.monotonic() + timeout
        for origin, (_src, _signed, r) in ZONES.items():
            if r != role:
                continue
            while True:
                if self.nsd[role].poll() is not None:
                    raise RuntimeError("nsd %s exited: %s" % (role, self.nsd_log(role)))
                try:
                    q = dns.message.make_query(origin, "SOA")
                    q.flags &= ~dns.flags.RD
                    r_ = dns.query.udp(q, ZONE_ADDR[origin], port=53, timeout=0.3)
                    if r_.rcode() == dns.rcode.NOERROR and r_.flags & dns.flags.AA:
                        break
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("nsd %s does not answer for %s: %s"
                                       % (role, origin, self.nsd_log(role)))
                time.sleep(0.05)

    def stop_role(self, role, timeout=5.0):
        """Stop one NSD at once (SIGKILL to its process group: NSD's graceful shutdown takes
        seconds, and to the resolver a killed server is what an unreachable one looks like)."""
        p = self.nsd.get(role)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout)
        # NSD's serving children are in the same group; wait until none is running (a
        # zombie waiting for init to reap it holds no socket)
        deadline = time.monotonic() + timeout
        while _group_running(p.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def nsd_log(self, role):
        out = ""
        for name in ("nsd-%s.out" % role, os.path.join("nsd-" + role, "nsd.log")):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    out += f.read()
            except OSError:
                pass
        return out[-4000:]

    def start(self):
        self.generate()
        for role in ROLES:
            self.spawn_role(role)
        for role in ROLES:
            self.wait_role(role)

    def stop(self):
        for role in list(self.nsd):
            self.stop_role(role)


def tool_available(name):
    return shutil.which(name) is not None


def verify_zone(path):
    """ldns-verify-zone: returns (ok, output)."""
    p = subprocess.run(["ldns-verify-zone", path], capture_output=True, text=True, timeout=60)
    return p.returncode == 0, p.stdout + p.stderr


if __name__ == "__main__":
    # manual use inside a network namespace:
    #   unshare -n sh -c 'ip link set lo up; python3 tests/e2e/fakenet.py /tmp/net'
    import sys
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/bulwark-fakenet"
    os.makedirs(d, exist_ok=True)
    net = Internet(d)
    t = time.monotonic()
    net.start()
    print("fake internet up in %.2fs in %s; root hints %s, trust anchor %s"
          % (time.monotonic() - t, d, net.root_hints, net.trust_anchor))
    if "--wait" in sys.argv:
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    net.stop()
