"""Case 3: the state disk full, then a little space freed, under a fixed dnsperf load.

The daemon runs in a mount namespace of its own (unshare -m) with a 16 MiB tmpfs as its
state-dir and query-log location (the last good feed copies, the control socket, the
SQLite query log with its WAL, the spool). The test reaches the tmpfs through
/proc/<pid>/root. Phases under 1000 qps (privacy full: every query is a record):
  good    rows go in
  full    a file takes every free byte: the spool and SQLite hit ENOSPC, records are
          dropped and counted, DNS goes on
  freed   only 1 MiB of the filler is given back: rows must go into the log again
Checks: >= 99.9 % answered within 2 s throughout; rows were written after the space came
back; at stop, rows + counted drops = records (nothing lost uncounted); the query log
opens and passes `PRAGMA integrity_check`. A fetched feed (nginx, refresh 1s) gets a new
version while the disk is full: its last good copy stays byte-identical and in force, and
the new version is stored and applied once there is room.
"""

import os
import re
import json
import subprocess
import stat
import time

import pytest

import conftest
import dnsutil
from conftest import e2e, phase, wait_for
from feedserver import FeedServer

BLOCKED = "evil-target.insecure.tld"
TMPFS_SIZE = os.environ.get("FAULTS_TMPFS", "4m")
BALLAST = 1 << 20    # the disk's other files
GIVE_BACK = 512 << 10  # "a little space": half of them deleted
NAMES = ["www.insecure.tld", BLOCKED, "alias.insecure.tld", "phish.insecure.tld",
         "www.insecure.tld AAAA"]


def stats_line(d):
    m = re.search(r"telemetry: records (\d+), dropped (\d+) \(rings full\), query log rows "
                  r"(\d+) \(dropped (\d+), pruned (\d+), waiting in the spool (\d+)\)",
                  d.log_text(200000))
    assert m, "no telemetry stats line at exit; log:\n%s" % d.log_text()
    keys = ("records", "ring_drops", "rows", "log_drops", "pruned", "waiting")
    return dict(zip(keys, map(int, m.groups())))


def in_ns(pid, sql, path):
    """Runs sql on the query log from inside the daemon's mount namespace (SQLite resolves
    /proc/<pid>/root to this namespace's /, so it cannot open the file through it)."""
    code = ("import sqlite3, sys, json; db = sqlite3.connect(sys.argv[1], timeout=5); "
            "print(json.dumps(db.execute(sys.argv[2]).fetchall()))")
    p = subprocess.run(["nsenter", "-t", str(pid), "-m", "/usr/bin/python3", "-c", code, path,
                        sql], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def count_rows(pid, path):
    return tuple(in_ns(pid, "SELECT count(*), max(time) FROM log", path)[0])


def fill(path):
    """Writes zeros into path until the file system is full; returns the bytes written."""
    n = 0
    with open(path, "ab", buffering=0) as f:
        block = b"\0" * 65536
        while True:
            try:
                n += f.write(block)
            except OSError:
                break
        while True:  # the last partial block
            try:
                w = f.write(b"\0" * 4096)
                if not w:
                    break
                n += w
            except OSError:
                break
    return n


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture
def server(tmp_path_factory):
    s = FeedServer(str(tmp_path_factory.mktemp("nginx")))
    s.start()
    yield s
    s.stop()


def feed_text(names):
    return "# web\n" + "".join(n + "\n" for n in names)


def test_state_disk_full_then_a_little_space(internet, bulwark, load, workdir, monkeypatch,
                                             server):
    small = os.path.join(workdir, "small")
    os.mkdir(small)
    wrapper = os.path.join(workdir, "in-tmpfs.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec unshare -m --propagation private sh -c \'mount -t tmpfs '
                '-o size=%s tmpfs "%s" && exec "$0" "$@"\' "%s" "$@"\n'
                % (TMPFS_SIZE, small, e2e.bulwark_binary()))
    os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IXUSR)
    monkeypatch.setattr(e2e, "bulwark_binary", lambda: wrapper)

    def config(port, w):
        conf = e2e.default_config(internet, port, w, workers=2)
        conf["policy"]["feeds"].append({
            "name": "web", "category": "malware", "format": "domains",
            "url": server.url("feeds/web.txt"), "ca-file": server.ca, "refresh": "1s"})
        conf["server"]["state-dir"] = os.path.join(small, "state")
        conf["telemetry"] = {"privacy": "full", "query-log": os.path.join(small, "q.sqlite")}
        return conf
    server.put("feeds/web.txt", feed_text(["newly.insecure.tld"] +
                                          ["w%d.insecure.tld" % i for i in range(300)]))
    d = bulwark(config, workdir=workdir)
    wait_for(lambda: dnsutil.is_blocked(d.query("newly.insecure.tld", timeout=2)), 15,
             "the web feed's first version")
    root = "/proc/%d/root" % d.pid
    tmpfs = root + small
    assert os.path.ismount(tmpfs), "no tmpfs in the daemon's mount namespace"
    db = os.path.join(small, "q.sqlite")
    good, full, freed = phase(5, 3), phase(8, 5), phase(10, 5)
    with open(tmpfs + "/fill", "wb") as f:  # ballast: other files on the same disk
        f.write(b"\0" * BALLAST)
    ld = load(d.port, NAMES, qps=1000, seconds=good + full)
    time.sleep(good)
    rows_good = count_rows(d.pid, db)[0]
    assert rows_good > 0, "no rows before the fault"
    filled = BALLAST + fill(tmpfs + "/fill")
    print("full: %d KiB of filler, %d bytes free" % (filled >> 10, free_bytes(tmpfs)))
    copy = tmpfs + "/state/feeds/web.txt"
    with open(copy, "rb") as f:
        good_copy = f.read()
    # a new version while the disk is full (the filler takes back, every 50 ms, what the
    # query log frees by truncating its WAL): the copy must stay whole, old or new
    new_text = feed_text(["hup.insecure.tld"] + ["x%d.insecure.tld" % i for i in range(300)])
    server.put("feeds/web.txt", new_text)
    t = time.monotonic()
    while time.monotonic() < t + 3:
        filled += fill(tmpfs + "/fill")
        time.sleep(0.05)
    with open(copy, "rb") as f:
        now_copy = f.read()
    assert now_copy in (good_copy, new_text.encode()), "the last good copy is cut or mixed"
    which = "newly" if now_copy == good_copy else "hup"
    assert dnsutil.is_blocked(d.query(which + ".insecure.tld", timeout=2)), "copy not in force"
    err = [line[24:] for line in d.log_text(100000).splitlines() if "feed web" in line][-1:]
    print("full: the feed copy whole (%s version); %s"
          % ("the old" if which == "newly" else "the new", err))
    r1 = ld.result().check()
    time.sleep(1)
    rows_full = count_rows(d.pid, db)[0]
    os.truncate(tmpfs + "/fill", max(0, filled - GIVE_BACK))
    t_freed = int(time.time() * 1000)
    print("freed %d KiB: %d KiB free, rows so far %d" % (GIVE_BACK >> 10, free_bytes(tmpfs) >> 10, rows_full))
    # 100 qps: about 100 KiB of rows, room enough in what was given back
    r2 = load(d.port, NAMES, qps=100, seconds=freed).result().check()
    time.sleep(2)
    # the query log tries the disk again every 0.5 s: the first second's rows may be lost
    after = in_ns(d.pid, "SELECT count(*) FROM log WHERE time >= %d" % t_freed, db)[0][0]
    after_1s = in_ns(d.pid, "SELECT count(*) FROM log WHERE time >= %d" % (t_freed + 1000),
                     db)[0][0]
    print("after: %d rows of %d queries since the space came back (%d of %d after its first "
          "second), %d KiB free" % (after, r2.sent, after_1s, r2.sent - 100,
                                     free_bytes(tmpfs) >> 10))
    sizes = {n: os.path.getsize(os.path.join(tmpfs, n)) for n in os.listdir(tmpfs)
             if os.path.isfile(os.path.join(tmpfs, n))}
    print("files on the tmpfs: %s" % sizes)
    wait_for(lambda: dnsutil.is_blocked(d.query("hup.insecure.tld", timeout=2)), 10,
             "the web feed's new version stored once there is room")
    ok = in_ns(d.pid, "PRAGMA integrity_check", db)
    assert ok == [["ok"]], ok
    d.stop()
    s = stats_line(d)
    print("stats: %s" % s)
    assert s["rows"] + s["log_drops"] + s["ring_drops"] + s["waiting"] == s["records"], s
    assert s["log_drops"] > 0, "the full disk dropped nothing? %s" % s
    assert after_1s >= 0.999 * (r2.sent - 100), (
        "%d rows for %d queries from 1 s after 512 KiB was freed: logging did not recover; "
        "log:\n%s" % (after_1s, r2.sent - 100, d.log_text(3000)))
    _ = (r1, conftest)
