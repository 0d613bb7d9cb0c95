"""tests/e2e/knot.py - a real Knot DNS primary for RPZ zones (transfers, NOTIFY, TSIG).

    k = KnotPrimary(workdir, "10.77.0.1", zone="rpz.test", names=["a.example"],
                    key=("xfrkey", "hmac-sha256", SECRET), notify=["10.77.0.11@53"])
    k.start(host=None)            # or a netns.Host to run inside its namespace
    k.update(add=["new.example"]) # dynamic update (knsupdate, TSIG): serial + 1, NOTIFY sent
    k.edit(add=["new.example"])   # the zone file edited + `knotc zone-reload`: the same
    k.serial()                    # SOA serial as served
    k.stop()

The zone holds one NXDOMAIN rule per name (`name CNAME .`). Either way Knot keeps the
change in its journal (zonefile-load: difference-no-serial computes it from the file and
bumps the serial) and serves it by IXFR. Knot sends its NOTIFY about 1 s after a dynamic
update, but at once after a zone reload.
"""

import base64
import os
import subprocess
import time

import dns.message
import dns.query
import dns.rdatatype


def make_secret(seed):
    return base64.b64encode((seed * 32)[:32].encode()).decode()


class KnotPrimary:
    def __init__(self, workdir, addr, zone="rpz.test", names=(), key=None, notify=(),
                 port=53, serial=1):
        self.dir = os.path.join(workdir, "knot-" + addr)
        os.makedirs(self.dir, exist_ok=True)
        self.addr, self.port, self.zone = addr, port, zone
        self.key = key
        self.notify = list(notify)
        self.proc = None
        self.host = None
        self.conf = os.path.join(self.dir, "knot.conf")
        self.zonefile = os.path.join(self.dir, zone + ".zone")
        self.names = list(names)
        self.write_zone(self.names, serial)
        self.write_conf()

    def write_zone(self, names, serial):
        with open(self.zonefile, "w") as f:
            f.write("$ORIGIN %s.\n$TTL 60\n" % self.zone)
            f.write("@ SOA ns.%s. hostmaster.%s. %d 3600 600 86400 60\n" %
                    (self.zone, self.zone, serial))
            f.write("@ NS ns.%s.\nns A %s\n" % (self.zone, self.addr))
            for n in names:
                f.write("%s CNAME .\n" % n)

    def write_conf(self):
        lines = ["server:", "    rundir: %s" % self.dir,
                 "    listen: %s@%d" % (self.addr, self.port), "",
                 "log:", "  - target: %s/knotd.log" % self.dir, "    any: info", "",
                 "database:", "    storage: %s" % self.dir, ""]
        if self.key:
            name, alg, secret = self.key
            lines += ["key:", "  - id: %s" % name, "    algorithm: %s" % alg,
                      "    secret: %s" % secret, ""]
        if self.notify:
            lines.append("remote:")
            for i, r in enumerate(self.notify):
                lines += ["  - id: node%d" % i, "    address: %s" % r]
                if self.key:
                    lines.append("    key: %s" % self.key[0])
            lines.append("")
        lines += ["acl:", "  - id: xfr", "    action: [transfer, update, notify]"]
        if self.key:
            lines.append("    key: %s" % self.key[0])
        lines += ["", "zone:", "  - domain: %s" % self.zone, "    file: %s" % self.zonefile,
                  "    storage: %s" % self.dir, "    acl: xfr",
                  "    zonefile-sync: -1", "    zonefile-load: difference-no-serial",
                  "    journal-content: all", "    semantic-checks: off"]
        if self.notify:
            lines.append("    notify: [%s]" % ", ".join("node%d" % i
                                                       for i in range(len(self.notify))))
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, host=None, timeout=10.0):
        self.host = host
        argv = ["knotd", "-c", self.conf]
        log = open(os.path.join(self.dir, "stdout.log"), "ab")
        if host:
            self.proc = host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        else:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("knotd exited: %s" % self.log_text())
            try:
                if self.serial() is not None:
                    return self
            except Exception:
                pass
            time.sleep(0.05)
        raise RuntimeError("knotd did not serve %s: %s" % (self.zone, self.log_text()))

    def log_text(self):
        out = ""
        for name in ("stdout.log", "knotd.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                out += open(p, errors="replace").read()
        return out

    def serial(self):
        q = dns.message.make_query(self.zone, dns.rdatatype.SOA)
        r = dns.query.udp(q, self.addr, port=self.port, timeout=1)
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None

    def update(self, add=(), delete=()):
        """Adds/deletes NXDOMAIN rules with knsupdate (TSIG-signed when a key is set)."""
        script = ["server %s %d" % (self.addr, self.port), "zone %s." % self.zone,
                  "origin %s." % self.zone]
        for n in delete:
            script.append("del %s CNAME" % n)
        for n in add:
            script.append("add %s 60 CNAME ." % n)
        script.append("send")
        argv = ["knsupdate"]
        if self.key:
            name, alg, secret = self.key
            argv += ["-y", "%s:%s:%s" % (alg, name, secret)]
        run = self.host.run if self.host else subprocess.run
        r = run(argv, input="\n".join(script) + "\n", capture_output=True, text=True,
                timeout=10)
        if r.returncode != 0:
            raise RuntimeError("knsupdate failed: %s %s" % (r.stdout, r.stderr))
        self.names = [n for n in self.names if n not in set(delete)] + list(add)

    def edit(self, add=(), delete=()):
        """Edits the zone file and reloads it (knotc zone-reload)."""
        self.names = [n for n in self.names if n not in set(delete)] + list(add)
        before = self.serial()
        self.write_zone(self.names, 1)  # the serial is Knot's business (no-serial)
        argv = ["knotc", "-s", os.path.join(self.dir, "knot.sock"), "zone-reload", self.zone]
        run = self.host.run if self.host else subprocess.run
        r = run(argv, capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            raise RuntimeError("knotc zone-reload failed: %s %s" % (r.stdout, r.stderr))
        deadline = time.monotonic() + 10  # the reload runs after knotc returns
        while self.serial() == before:
            if time.monotonic() > deadline:
                raise RuntimeError("knotd did not reload %s: %s" % (self.zone, self.log_text()))
            time.sleep(0.005)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
