#!/usr/bin/env python3
"""bench/internet/gen.py - generates the benchmark internet: zone files for three NSD
instances (root, TLDs, second-level zones), the "network" (a dnsdist config that routes by
destination address and adds each server's RTT and loss), root hints, an RPZ policy and a
query stream for dnsperf. DNSSEC: the root, every TLD, a fraction of the sites and half of
the CDN zones are signed (ldns-keygen, ldns-signzone; ECDSA P-256, NSEC, signatures valid
from a day ago to 30 days on), each child's DS in its parent; DIR/root.key holds the
root's DS, the trust anchor. Deterministic: the same inputs and --seed give the same bytes,
but for the keys and signatures (fresh ones each time).

  gen.py --out DIR [--toplist FILE] [--zones 30000] [--queries 1000000] [--seed 21]
         [--signed-fraction 0.1] [--jobs N]

Addresses are 127.(10*ROLE + CLASS).X.Y: ROLE 1 root, 2 TLD, 3 second-level servers (own
and DNS-hosting), 4 CDN; CLASS 0..5 = RTT 5, 10, 20, 40, 80, 150 ms. 127.50/16 is dead
(every packet dropped: lame delegations), 127.6C/16 loses half its packets (then RTT class
C). Every name server address answers on port 53 of dnsdist inside the namespace.
bench/internet/README.md describes the shape.
"""
import argparse
import bisect
import concurrent.futures
import datetime
import gzip
import os
import random
import re
import shutil
import string
import subprocess
import time

RTT_MS = [5, 10, 20, 40, 80, 150]
# share of servers in each RTT class, per role (most servers are near, a few far)
CLASS_W = {
    "root": [4, 4, 2, 1, 1, 1],
    "tld": [4, 4, 3, 2, 1, 1],
    "sld": [3, 4, 4, 3, 2, 1],
    "host": [5, 4, 2, 1, 0, 0],
    "cdn": [6, 3, 1, 0, 0, 0],
}
ROLE = {"root": 1, "tld": 2, "sld": 3, "host": 3, "cdn": 4}
DEAD_NET, LOSSY_NET = 50, 60
NSD_ADDR = {"root": "127.250.0.1@5401", "tld": "127.250.0.2@5402", "sld": "127.250.0.3@5403"}
KEEP_TLDS = 16  # TLDs of their own; the other names are folded under .com
HOSTERS = 40  # "DNS hosting" providers (dnshost-N.net/com) serving most domains
CDNS = 4  # cdn-N.net (per-customer CNAMEs) -> edge-N.com (short-TTL A records)
EDGES = 200  # edge names per CDN
HOST_TTLS = [60, 300, 300, 600, 3600, 3600, 3600, 14400, 86400]
HOSTNAMES = ["", "www", "api", "m", "mail", "static", "cdn", "login"]
HOST_W = [30, 40, 6, 6, 4, 6, 4, 4]
SIGNED_CDNS = (1, 3)  # cdn-K.net and edge-K.com signed (like Cloudflare), the others not
DS_TTL = 86400
# names the generator uses itself
RESERVED = re.compile(
    r"^(nic\.|(dnshost-\d+|cdn-\d+|edge-\d+|lossy-dns|coalesce-probe|root-servers)\.)")
VALID = re.compile(r"^(?=.{1,200}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}$")


class Addrs:
    """Hands out unique server addresses per (role, RTT class)."""

    def __init__(self, rng):
        self.rng = rng
        self.next = {}
        self.rows = []  # (address, role, rtt ms, name)

    def take(self, role, name, cls=None, net=None):
        if cls is None:
            cls = self.rng.choices(range(6), CLASS_W[role])[0]
        if net is None:
            net = 10 * ROLE[role] + cls
        n = self.next.get(net, 1)
        self.next[net] = n + 1
        addr = f"127.{net}.{n // 250}.{n % 250 + 1}"
        ms = "dead" if net == DEAD_NET else RTT_MS[net % 10]
        kind = role if net < DEAD_NET else ("dead" if net == DEAD_NET else "lossy")
        self.rows.append((addr, kind, ms, name))
        return addr


class Signer:
    """Signs zone files with ldns: ECDSA P-256 (algorithm 13), NSEC, signatures valid from a
    day ago to 30 days from now. The root and the TLDs get a KSK and a ZSK, as the real ones
    have; the sites and CDN zones one combined key (flags 257, signs every RRset), which
    halves the key generations. Keys (K<name>+013+<tag>.key/.private/.ds) stay in KEYDIR.
    sign() runs one ldns-keygen per key and one ldns-signzone, and is called from a thread
    pool: the zones of one level are signed side by side."""

    def __init__(self, keydir):
        for tool in ("ldns-keygen", "ldns-signzone"):
            if not shutil.which(tool):
                raise SystemExit(f"gen.py: missing {tool} (package ldnsutils, make deps)")
        self.keydir = keydir
        os.makedirs(keydir, exist_ok=True)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.inception = (now - datetime.timedelta(days=1)).strftime("%Y%m%d%H%M%S")
        self.expiration = (now + datetime.timedelta(days=30)).strftime("%Y%m%d%H%M%S")

    def run(self, cmd):
        p = subprocess.run(cmd, cwd=self.keydir, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
        return p.stdout.strip()

    def sign(self, origin, text, path, split):
        """Signs zone ORIGIN (TEXT) into PATH, with a KSK and a ZSK when SPLIT; returns the
        RDATA of the KSK's SHA-256 DS ("TAG 13 2 HEX")."""
        name = fqdn(origin)
        alg = ["ldns-keygen", "-a", "ECDSAP256SHA256"]
        keys = [self.run(alg + ["-k", name])]
        if split:
            keys.append(self.run(alg + [name]))
        unsigned = path + ".unsigned"
        with open(unsigned, "w") as f:
            f.write(text)
        self.run(["ldns-signzone", "-i", self.inception, "-e", self.expiration, "-o", name,
                  "-f", path, unsigned] + keys)
        os.remove(unsigned)
        with open(os.path.join(self.keydir, keys[0] + ".ds")) as f:
            for line in f:
                rr = line.split(";")[0].split()
                if "DS" in rr and rr[rr.index("DS") + 3] == "2":  # digest type SHA-256
                    return " ".join(rr[rr.index("DS") + 1:])
        raise RuntimeError(f"no SHA-256 DS in {keys[0]}.ds")


def fqdn(origin):
    return "." if origin == "." else origin + "."


def read_names(path):
    opener = gzip.open if path.endswith(".gz") else open
    out, seen = [], set()
    with opener(path, "rt", errors="replace") as f:
        for line in f:
            n = line.strip().lower().rstrip(".")
            if n and VALID.match(n) and not RESERVED.match(n) and n not in seen:
                seen.add(n)
                out.append(n)
    return out


def pick_domains(names, want, rng):
    """The zones: the list's names (ranked by a seeded shuffle: the shipped lists are
    alphabetical), rare TLDs folded under .com, names below another name dropped, padded
    with synthetic names in the same TLD mix when the list is short."""
    count = {}
    for n in names:
        t = n.rsplit(".", 1)[1]
        count[t] = count.get(t, 0) + 1
    tlds = sorted(count, key=lambda t: (-count[t], t))[:KEEP_TLDS]
    keep = set(tlds)
    out, seen = [], set()
    for n in names:
        t = n.rsplit(".", 1)[1]
        if t not in keep:
            n = n.replace(".", "-") + ".com"
        out.append(n)
    out = sorted(set(out))
    rng.shuffle(out)
    setall = set(out)
    dom = []
    for n in out:
        labels = n.split(".")
        if any(".".join(labels[i:]) in setall for i in range(1, len(labels) - 1)):
            continue  # below another zone of the list: keep the list flat
        dom.append(n)
        seen.add(n)
    tld_w = [count[t] for t in tlds]
    i = 0
    while len(dom) < want:
        n = f"site{i}-{rng.randrange(10**6)}.{rng.choices(tlds, tld_w)[0]}"
        i += 1
        if n not in seen:
            seen.add(n)
            dom.append(n)
    return dom[:want], tlds


def ip4(rng):
    return f"198.{rng.randrange(18, 20)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def ip6(rng):
    return f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}"


def soa(origin, ttl=3600):
    return (f"$ORIGIN {origin}.\n$TTL {ttl}\n"
            f"@ 3600 SOA ns.{origin}. hostmaster.{origin}. 1 7200 3600 1209600 {min(ttl, 3600)}\n")


class Net:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.addrs = Addrs(random.Random(args.seed + 1))
        self.out = args.out
        self.zones = {"root": {}, "tld": {}, "sld": {}}  # instance -> {origin: text}
        self.lossy = self.addrs.take("host", "ns1.lossy-dns.net", net=LOSSY_NET + 2)  # 20 ms

    def add_zone(self, inst, origin, text):
        self.zones[inst][origin] = text

    def build(self, domains, tlds):
        rng = self.rng
        roots = [(f"{c}.root-servers.net", self.addrs.take("root", f"{c}.root-servers.net"))
                 for c in "abcdefghijklm"]
        self.roots = roots
        tldns = {}
        for t in tlds:
            tldns[t] = [(f"{c}.nic.{t}", self.addrs.take("tld", f"{c}.nic.{t}"))
                        for c in "abcd"[:rng.choice([2, 3, 4, 4])]]
        deleg = {t: [] for t in tlds}  # tld -> delegation lines
        hosters = self.hosting(deleg)
        cdns = self.cdn(deleg)
        self.sld_zones(domains, deleg, hosters, cdns)
        self.probe(deleg)
        self.root_zone(roots, tldns, deleg)
        for t in tlds:
            z = [soa(t, 86400)] + [f"@ 172800 NS {n}.\n" for n, _ in tldns[t]]
            z += [f"{n}. 172800 A {a}\n" for n, a in tldns[t]]
            z += deleg[t]
            self.add_zone("tld", t, "".join(z))

    def ns_lines(self, tld_deleg, origin, ns, glue):
        tld_deleg += [f"{origin}. 172800 NS {n}.\n" for n in ns]
        tld_deleg += [f"{n}. 172800 A {a}\n" for n, a in glue]
        return [f"@ 86400 NS {n}.\n" for n in ns] + [f"{n}. 86400 A {a}\n" for n, a in glue]

    def hosting(self, deleg):
        hosters = []
        for k in range(1, HOSTERS + 1):
            t = "net" if k % 3 else "com"
            origin = f"dnshost-{k}.{t}"
            cls = self.addrs.rng.choices(range(6), CLASS_W["host"])[0]
            glue = [(f"ns{i}.{origin}", self.addrs.take("host", f"ns{i}.{origin}", cls))
                    for i in range(1, 5)]
            ns = [n for n, _ in glue]
            z = [soa(origin)] + self.ns_lines(deleg[t], origin, ns, glue)
            self.add_zone("sld", origin, "".join(z))
            hosters.append(ns)
        origin = "lossy-dns.net"  # one server that loses half of what it gets
        z = [soa(origin)] + self.ns_lines(deleg["net"], origin, [f"ns1.{origin}"],
                                          [(f"ns1.{origin}", self.lossy)])
        self.add_zone("sld", origin, "".join(z))
        return hosters

    def cdn(self, deleg):
        cdns = []
        for k in range(1, CDNS + 1):
            for origin in (f"cdn-{k}.net", f"edge-{k}.com"):
                t = origin.rsplit(".", 1)[1]
                glue = [(f"ns{i}.{origin}", self.addrs.take("cdn", f"ns{i}.{origin}"))
                        for i in range(1, 3)]
                z = [soa(origin, 300)] + self.ns_lines(deleg[t], origin, [n for n, _ in glue], glue)
                if origin.startswith("edge"):
                    z += [f"e{i} 20 A {ip4(self.rng)}\ne{i} 20 AAAA {ip6(self.rng)}\n"
                          for i in range(EDGES)]
                self.add_zone("sld", origin, "".join(z))
            cdns.append([])  # customer CNAMEs of cdn-k.net, filled by sld_zones
        return cdns

    def sld_zones(self, domains, deleg, hosters, cdns):
        rng = self.rng
        host_w = [1.0 / (k + 1) for k in range(HOSTERS)]
        self.special = {}  # kind -> sites: the lossy and the dead ones
        self.stats = {"own-ns": 0, "hosted": 0, "lame-one": 0, "dead": 0, "lossy": 0, "cdn": 0}
        for d in domains:
            t = d.rsplit(".", 1)[1]
            u = rng.random()
            if u < 0.001:  # every server dead: SERVFAIL for everyone
                glue = [(f"ns{i}.{d}", self.addrs.take("sld", f"ns{i}.{d}", net=DEAD_NET))
                        for i in (1, 2)]
                kind = "dead"
            elif u < 0.006:  # the one lossy server
                glue, kind = [], "lossy"
            elif u < 0.36:
                glue = [(f"ns{i}.{d}", self.addrs.take("sld", f"ns{i}.{d}")) for i in (1, 2)]
                kind = "own-ns"
                if rng.random() < 0.03:  # lame: the second server is dead
                    glue[1] = (glue[1][0], self.addrs.take("sld", glue[1][0], net=DEAD_NET))
                    kind = "lame-one"
            else:
                glue, kind = [], "hosted"
            self.stats[kind] += 1
            if kind in ("lossy", "dead"):
                self.special.setdefault(kind, []).append(d)
            if kind == "lossy":
                ns = ["ns1.lossy-dns.net"]
            elif kind == "hosted":
                ns = rng.choices(hosters, host_w)[0][:rng.choice([2, 2, 4])]
            else:
                ns = [n for n, _ in glue]
            z = [soa(d, 3600)] + self.ns_lines(deleg[t], d, ns, glue)
            z += self.sld_records(d, cdns)
            self.add_zone("sld", d, "".join(z))
        for k, lines in enumerate(cdns, 1):
            self.zones["sld"][f"cdn-{k}.net"] += "".join(lines)

    def sld_records(self, d, cdns):
        rng = self.rng
        ttl = rng.choice(HOST_TTLS)
        z = [f"@ {ttl} A {ip4(rng)}\n", f"@ {ttl} AAAA {ip6(rng)}\n",
             f"@ {ttl} MX 10 mail.{d}.\n"]
        if rng.random() < 0.4:  # www behind a CDN: www.d -> d.cdn-K.net -> eN.edge-K.com
            k = rng.randrange(CDNS)
            z.append(f"www {ttl} CNAME {d}.cdn-{k + 1}.net.\n")
            cdns[k].append(f"{d} 300 CNAME e{rng.randrange(EDGES)}.edge-{k + 1}.com.\n")
            self.stats["cdn"] += 1
        else:
            z.append(f"www {ttl} A {ip4(rng)}\nwww {ttl} AAAA {ip6(rng)}\n")
        for h in HOSTNAMES[2:]:
            z.append(f"{h} {ttl} A {ip4(rng)}\n")
        z.append(f"* 300 A {ip4(rng)}\n* 300 AAAA {ip6(rng)}\n")  # never-seen names resolve
        return z

    def probe(self, deleg):
        """coalesce-probe.net: the name 100 clients ask at once, on a 150 ms server."""
        origin = "coalesce-probe.net"
        glue = [(f"ns1.{origin}", self.addrs.take("sld", f"ns1.{origin}", 5))]
        z = [soa(origin)] + self.ns_lines(deleg["net"], origin, [n for n, _ in glue], glue)
        z.append("* 300 A 198.18.0.1\n")
        self.add_zone("sld", origin, "".join(z))

    def root_zone(self, roots, tldns, deleg):
        z = ["$ORIGIN .\n$TTL 86400\n. 86400 SOA a.root-servers.net. hostmaster.root-servers.net. "
             "1 1800 900 604800 86400\n"]
        z += [f". 518400 NS {n}.\n" for n, _ in roots]
        z += [f"{n}. 518400 A {a}\n" for n, a in roots]
        for t, ns in tldns.items():
            z += [f"{t}. 172800 NS {n}.\n" for n, _ in ns]
            z += [f"{n}. 172800 A {a}\n" for n, a in ns]
        self.add_zone("root", ".", "".join(z))
        rs = [soa("root-servers.net", 518400)] + [f"@ 518400 NS {n}.\n" for n, _ in roots]
        rs += [f"{n}. 518400 A {a}\n" for n, a in roots]
        self.add_zone("root", "root-servers.net", "".join(rs))
        deleg["net"] += [f"root-servers.net. 172800 NS {n}.\n" for n, _ in roots]
        deleg["net"] += [f"{n}. 172800 A {a}\n" for n, a in roots]

    def write(self, signer, signed, jobs):
        """Writes the zone files, those in SIGNED signed by SIGNER, children first: the
        second-level instance, then the TLDs (with the DS of their signed children), then the
        root (with the TLDs' DS). Returns the root's DS rdata."""
        for kind in ("lossy", "dead"):  # lossy.domains, dead.domains
            with open(os.path.join(self.out, kind + ".domains"), "w") as f:
                f.write("".join(d + "\n" for d in self.special.get(kind, [])))
        ds = {}  # parent -> DS lines of its signed children
        root_ds = None
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for inst in ("sld", "tld", "root"):
                zdir = os.path.join(self.out, inst)
                os.makedirs(zdir, exist_ok=True)
                conf, todo = [], {}
                for origin, text in sorted(self.zones[inst].items()):
                    fn = "root.zone" if origin == "." else origin + ".zone"
                    path = os.path.join(zdir, fn)
                    children = ds.pop(origin, [])
                    if children and origin not in signed:
                        raise RuntimeError(f"{origin} is not signed, some of its children are")
                    text += "".join(children)
                    if origin in signed:
                        todo[origin] = pool.submit(signer.sign, origin, text, path, inst != "sld")
                    else:
                        with open(path, "w") as f:
                            f.write(text)
                    conf.append(f"zone:\n\tname: \"{origin}\"\n\tzonefile: \"{path}\"\n")
                for origin, job in todo.items():
                    rdata = job.result()
                    if origin == ".":
                        root_ds = rdata
                    else:  # every delegation comes from a TLD or the root
                        parent = "." if inst == "tld" else origin.rsplit(".", 1)[1]
                        ds.setdefault(parent, []).append(f"{fqdn(origin)} {DS_TTL} DS {rdata}\n")
                with open(os.path.join(zdir, "zones.conf"), "w") as f:
                    f.write("".join(conf))
        if ds:
            raise RuntimeError(f"signed zones under an unsigned parent: {sorted(ds)}")
        with open(os.path.join(self.out, "root.hints"), "w") as f:
            for n, a in self.roots:
                f.write(f".\t3600000\tNS\t{n}.\n")
            for n, a in self.roots:
                f.write(f"{n}.\t3600000\tA\t{a}\n")
        with open(os.path.join(self.out, "servers.tsv"), "w") as f:
            f.write("address\trole\trtt_ms\tname\n")
            for row in self.addrs.rows:
                f.write("\t".join(map(str, row)) + "\n")
        return root_ds


def dnsdist_conf(out, lossy):
    """The network: delay by destination /16 (RTT class), drop for dead and half of lossy,
    route by role to the NSD instance that serves it."""
    L = ['-- generated by bench/internet/gen.py: the network between resolvers and servers',
         'setSecurityPollSuffix("")', 'setLocal("0.0.0.0:53", { reusePort = false })',
         'setACL({ "127.0.0.0/8" })',
         'controlSocket("127.250.0.9:5409")', 'setKey("{{KEY}}")',
         'function nmg(masks) local g = newNMG(); for _, m in ipairs(masks) do g:addMask(m) end; '
         'return g end']
    for inst, a in NSD_ADDR.items():
        host, port = a.split("@")
        L.append(f'newServer({{ address = "{host}:{port}", pool = "{inst}", '
                 f'name = "{inst}", checkInterval = 3600 }}):setUp()')
    L.append('probe = newSuffixMatchNode(); probe:add("coalesce-probe.net")')
    L.append('addAction(SuffixMatchNodeRule(probe), NoneAction(), { name = "probe" })')
    L.append(f'addAction(NetmaskGroupRule(nmg({{"127.{DEAD_NET}.0.0/16"}}), false), '
             'DropAction(), { name = "dead" })')
    lossy_nets = ",".join(f'"127.{LOSSY_NET + c}.0.0/16"' for c in range(6))
    L.append(f'addAction(AndRule({{ NetmaskGroupRule(nmg({{{lossy_nets}}}), false), '
             'ProbaRule(0.5) }), DropAction(), { name = "loss" })')
    for c, ms in enumerate(RTT_MS):
        nets = ",".join(f'"127.{10 * r + c}.0.0/16"' for r in range(1, 7))
        L.append(f'addAction(NetmaskGroupRule(nmg({{{nets}}}), false), DelayAction({ms}), '
                 f'{{ name = "rtt{ms}" }})')
    L.append('addAction(NetmaskGroupRule(nmg({"127.10.0.0/15", "127.12.0.0/14"}), false), '
             'PoolAction("root"), { name = "to-root" })')
    L.append('addAction(NetmaskGroupRule(nmg({"127.20.0.0/14", "127.24.0.0/15"}), false), '
             'PoolAction("tld"), { name = "to-tld" })')
    L.append('addAction(AllRule(), PoolAction("sld"), { name = "to-sld" })')
    with open(os.path.join(out, "dnsdist.conf.tmpl"), "w") as f:
        f.write("\n".join(L) + "\n")


def policy(out, rng, n):
    """n blocked names (synthetic, like fresh malware domains), RPZ and plain list."""
    tl = ["top", "xyz", "info", "com", "net", "ru", "shop", "online"]
    alnum = string.ascii_lowercase + string.digits
    names = sorted({"".join(rng.choices(alnum, k=rng.randint(6, 14))) + "." + rng.choice(tl)
                    for _ in range(n)})
    with open(os.path.join(out, "policy.rpz"), "w") as f:
        f.write("$TTL 300\n$ORIGIN rpz.bench.\n@ SOA localhost. hostmaster.localhost. 1 3600 600 "
                "86400 300\n@ NS localhost.\n")
        for d in names:
            f.write(f"{d} CNAME .\n*.{d} CNAME .\n")
    with open(os.path.join(out, "policy.domains"), "w") as f:
        f.write("".join(d + "\n" for d in names))
    return names


def label(rng):
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(5, 12)))


def queries(out, rng, domains, blocked, n, zipf_s):
    """dnsperf input: Zipf popularity over the sites, a host within the site, 10% names
    never asked before (random labels under a site: the zone's wildcard answers), 3% blocked."""
    cum, acc = [], 0.0
    for r in range(len(domains)):
        acc += 1.0 / (r + 1) ** zipf_s
        cum.append(acc)
    host_cum, acc = [], 0
    for w in HOST_W:
        acc += w
        host_cum.append(acc)
    fresh = set()
    with open(os.path.join(out, "queries.txt"), "w") as f:
        for _ in range(n):
            d = domains[min(bisect.bisect(cum, rng.random() * cum[-1]), len(domains) - 1)]
            u = rng.random()
            if u < 0.10:
                name = label(rng) + "." + d
                while name in fresh:
                    name = label(rng) + "." + d
                fresh.add(name)
            elif u < 0.13:
                b = rng.choice(blocked)
                name = b if rng.random() < 0.5 else label(rng) + "." + b
            else:
                h = HOSTNAMES[bisect.bisect(host_cum, rng.random() * host_cum[-1])]
                name = f"{h}.{d}" if h else d
            f.write(f"{name} {'AAAA' if rng.random() < 0.25 else 'A'}\n")


def pick_signed(domains, tlds, fraction, rng):
    """The zones to sign: the root, every TLD, FRACTION of the sites (any kind, drawn
    uniformly, so about that share of the queries) and the SIGNED_CDNS' two zones."""
    sites = set(rng.sample(domains, round(fraction * len(domains))))
    cdns = {z for k in SIGNED_CDNS for z in (f"cdn-{k}.net", f"edge-{k}.com")}
    return sites, {"."} | set(tlds) | sites | cdns


def main():
    t0 = time.monotonic()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--toplist", required=True, help="top-sites list, one name a line (.gz ok)")
    ap.add_argument("--zones", type=int, default=30000)
    ap.add_argument("--queries", type=int, default=1000000)
    ap.add_argument("--blocked", type=int, default=10000)
    ap.add_argument("--zipf", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--signed-fraction", type=float, default=0.1,
                    help="share of the sites whose zone is signed (root and TLDs always are)")
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                    help="zones signed at once (default: the CPUs this may run on)")
    args = ap.parse_args()
    if not 0 <= args.signed_fraction <= 1:
        ap.error("--signed-fraction must be between 0 and 1")
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    domains, tlds = pick_domains(read_names(args.toplist), args.zones, rng)
    net = Net(args)
    net.build(domains, tlds)
    # a stream of its own, so that the zones and queries are those of an unsigned internet
    sites, signed = pick_signed(domains, tlds, args.signed_fraction, random.Random(args.seed + 4))
    signer = Signer(os.path.join(args.out, "keys"))
    t1 = time.monotonic()
    root_ds = net.write(signer, signed, args.jobs)
    t_sign = time.monotonic() - t1
    with open(os.path.join(args.out, "root.key"), "w") as f:  # the trust anchor
        f.write(f". {DS_TTL} IN DS {root_ds}\n")
    with open(os.path.join(args.out, "signed.domains"), "w") as f:
        f.write("".join(d + "\n" for d in domains if d in sites))
    dnsdist_conf(args.out, net.lossy)
    blocked = policy(args.out, random.Random(args.seed + 2), args.blocked)
    queries(args.out, random.Random(args.seed + 3), domains, blocked, args.queries, args.zipf)
    with open(os.path.join(args.out, "summary.txt"), "w") as f:
        f.write(f"toplist {os.path.basename(args.toplist)} seed {args.seed}\n")
        f.write(f"zones: root {len(net.zones['root'])} tld {len(net.zones['tld'])} "
                f"sld {len(net.zones['sld'])}\n")
        f.write(f"tlds: {' '.join(tlds)}\n")
        f.write("second-level: " + " ".join(f"{k} {v}" for k, v in net.stats.items()) + "\n")
        f.write(f"servers: {len(net.addrs.rows)} addresses\n")
        f.write(f"queries: {args.queries} (zipf s={args.zipf}), blocked names {len(blocked)}\n")
        f.write(f"signed: {len(signed)} zones: root, {len(tlds)} TLDs, {len(sites)} of "
                f"{len(domains)} sites (--signed-fraction {args.signed_fraction}), "
                f"{len(signed) - len(sites) - len(tlds) - 1} CDN zones; ECDSA P-256, NSEC; "
                f"trust anchor root.key\n")
        f.write(f"signatures: {signer.inception} to {signer.expiration} UTC\n")
        f.write(f"generated in {time.monotonic() - t0:.1f} s (writing and signing the zones "
                f"{t_sign:.1f} s, {args.jobs} jobs)\n")


if __name__ == "__main__":
    main()
