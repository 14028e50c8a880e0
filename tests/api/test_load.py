"""test_load.py - vmlabd's start: every machine back, every divergence caught.

At start vmlabd decodes each machine's snapshot and replays the log
records written since (server/store.c, store_load), many machines at
once, one per CPU. Each replayed record must take the machine to the
record's version, give the answer recorded with it byte for byte, and
leave the digest recorded with it; a machine that does not stops the
start with a message naming it and the record, and the database is left
exactly as it was (SPEC 1.9: a divergence is never silently accepted).

Each test writes machines through a real vmlabd and kills it with
SIGKILL, so that every machine has a log tail to replay (a clean stop
would snapshot them all). A damaged copy of that database is then made
with python's sqlite3 (vmlabd stopped): a record's digest or answer
changed, a record taken out, a snapshot cut short, at the first or at a
middle record of a tail, on a machine in the middle of the (tenant, id)
order. Loading runs on several threads, so the machine a refusal names
is checked to be the first damaged one in that order, start after start.
Last, 2,000 machines of every architecture, with seeded random
operations (refused ones among them), must all come back from a restart
with the digest and version they answered before it.
"""

import contextlib
import hashlib
import http.client
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest

import vmlab

SCALE = max(1, int(os.environ.get("VMLAB_TEST_SCALE", "1")))
ARCHES = ["i386", "i386-pae", "x86_64", "x86_64-la57"]
NS = "local"                # the namespace of machines with --auth off


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def files_of(folder):
    """Every file of folder but SQLite's -shm (an index vmlabd may make
    and leave while only reading), with the hash of its bytes."""
    return {f: sha(os.path.join(folder, f)) for f in sorted(os.listdir(folder))
            if not f.endswith("-shm")}


class Conn:
    """One keep-alive connection to a daemon; answers checked against
    docs/openapi.json (every one, or one in `sample`)."""

    def __init__(self, test, port, sample=1):
        self.test = test
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.sample = sample
        self.n = 0

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        self.c.request(method, path, body=data, headers=hdrs)
        resp = self.c.getresponse()
        payload = resp.read().decode("utf-8", "replace")
        r = vmlab.Response(resp.status,
                           {k.lower(): v for k, v in resp.getheaders()},
                           payload)
        self.n += 1
        if self.n % self.sample == 0:
            err = vmlab.check_response(method, path, r)
            if err:
                raise AssertionError("response outside docs/openapi.json: "
                                     + err)
        return r

    def ok(self, method, path, body=None):
        r = self.req(method, path, body)
        if not 200 <= r.status < 300:
            raise AssertionError("%s %s -> %r" % (method, path, r))
        return r.json

    def close(self):
        self.c.close()


def ops_for(rng):
    """A seeded sequence of mutations for one machine, as (method, path,
    body) with {pid} and {va} filled in as answers come; some of them are
    refused (and must change nothing)."""
    kinds = ["proc", "mmap", "kmalloc", "kmalloc", "vmalloc", "pages",
             "switch", "kfree", "brk", "bad_kfree", "bad_switch"]
    return [rng.choice(kinds) for _ in range(rng.randrange(0, 9))]


def run_ops(conn, mid, kinds, rng):
    """Sends kinds to machine mid; returns how many were applied."""
    base = "/v1/machines/" + mid
    pids, vas, applied = [], [], 0
    for k in kinds:
        if k == "proc" or (not pids and k in ("mmap", "switch", "brk")):
            a = conn.ok("POST", base + "/processes",
                        {"name": "p%d" % len(pids),
                         "populate": rng.random() < 0.5})
            pids.append(a["pid"])
        elif k == "mmap":
            conn.ok("POST", base + "/processes/%d/mmap" % rng.choice(pids),
                    {"length": 4096 * rng.randrange(1, 5),
                     "populate": rng.random() < 0.5})
        elif k == "kmalloc":
            vas.append(conn.ok("POST", base + "/kmalloc",
                               {"size": rng.choice([8, 100, 5000, 64 * 1024])}
                               )["va"])
        elif k == "vmalloc":
            conn.ok("POST", base + "/vmalloc",
                    {"size": 4096 * rng.randrange(1, 4)})
        elif k == "pages":
            conn.ok("POST", base + "/pages", {"order": rng.randrange(0, 3)})
        elif k == "switch":
            conn.ok("POST", base + "/cpus/0/switch",
                    {"pid": rng.choice(pids)})
        elif k == "brk":
            conn.ok("POST", base + "/processes/%d/brk" % rng.choice(pids),
                    {"increment": 4096 * rng.randrange(1, 3)})
        elif k == "kfree" and vas:
            conn.ok("POST", base + "/kfree",
                    {"va": vas.pop(rng.randrange(len(vas)))})
        elif k in ("kfree", "bad_kfree"):
            # Not an allocation: refused, nothing recorded.
            r = conn.req("POST", base + "/kfree", {"va": "0x1234"})
            assert 400 <= r.status < 500, r
            continue
        elif k == "bad_switch":
            r = conn.req("POST", base + "/cpus/0/switch", {"pid": 4000})
            assert 400 <= r.status < 500, r
            continue
        applied += 1
    return applied


def in_threads(n, fn, items):
    """fn(conn_index, item) over items from n threads; re-raises the
    first failure."""
    errors, lock = [], threading.Lock()

    def work(k):
        try:
            for item in items[k::n]:
                fn(k, item)
        except Exception as e:
            with lock:
                errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


class LoadTest(vmlab.DaemonsTest):

    TMP_PREFIX = "vmlab-load-"

    @classmethod
    def setUpClass(cls):
        # The checker is built once, before any thread asks for it.
        vmlab.openapi()

    def start(self, db):
        d = vmlab.Daemon("--db", db)
        self.daemons.append(d)
        return d.start()

    def machines(self, db, n, seed, sample=1, threads=4):
        """n machines m0000.. on a vmlabd over db, with seeded operations,
        killed at the end: {id: (version, digest)} as they answered."""
        d = self.start(db)
        ids = ["m%04d" % i for i in range(n)]
        state, conns = {}, [Conn(self, d.port, sample)
                            for _ in range(threads)]

        def make(k, mid):
            rng = random.Random("%d %s" % (seed, mid))
            c = conns[k]
            c.ok("POST", "/v1/machines",
                 {"id": mid, "arch": rng.choice(ARCHES), "memory": "64MiB",
                  "cpus": rng.choice([1, 2]), "seed": str(rng.randrange(99))})
            applied = run_ops(c, mid, ops_for(rng), rng)
            m = c.ok("GET", "/v1/machines/" + mid)
            self.assertEqual(m["version"], applied, mid)
            state[mid] = (m["version"], m["digest"])

        try:
            in_threads(threads, make, ids)
        finally:
            for c in conns:
                c.close()
        self.crash(d)
        return state

    # ---- damaged databases ----

    def folder_with(self, src, name):
        """A folder holding a copy of database src as name/v.db."""
        folder = os.path.join(self.tmp.name, name)
        os.mkdir(folder)
        for suffix in ("", "-wal"):
            if os.path.exists(src + suffix):
                shutil.copy(src + suffix, os.path.join(folder,
                                                       "v.db" + suffix))
        return os.path.join(folder, "v.db")

    @staticmethod
    def reading(db):
        """A read-only connection to db, closed after the with block."""
        return contextlib.closing(sqlite3.connect("file:%s?mode=ro" % db,
                                                  uri=True))

    @staticmethod
    def tail(con, mid):
        """The versions of mid's records after its snapshot, in order."""
        return [v for (v,) in con.execute(
            "SELECT version FROM ops WHERE tenant = ? AND id = ? AND "
            "version > (SELECT snapshot_version FROM machines WHERE "
            "tenant = ? AND id = ?) ORDER BY version",
            (NS, mid, NS, mid))]

    def damage(self, db, changes):
        """Applies changes [(kind, mid, where)] to db: kind is "digest",
        "answer", "gone" (a record) or "snapshot"; where "first",
        "middle" or "last" of the tail. Returns [(mid, version)] of the
        records the replay must fail at."""
        con = sqlite3.connect(db)
        out = []
        try:
            for kind, mid, where in changes:
                if kind == "snapshot":
                    con.execute("UPDATE machines SET snapshot = "
                                "substr(snapshot, 1, length(snapshot) / 2) "
                                "WHERE tenant = ? AND id = ?", (NS, mid))
                    out.append((mid, None))
                    continue
                versions = self.tail(con, mid)
                self.assertGreaterEqual(len(versions), 3, (mid, versions))
                v = {"first": versions[0],
                     "middle": versions[len(versions) // 2],
                     "last": versions[-1]}[where]
                key = (NS, mid, v)
                if kind == "digest":
                    (d,), = con.execute(
                        "SELECT digest FROM ops WHERE tenant = ? AND id = ? "
                        "AND version = ?", key)
                    con.execute("UPDATE ops SET digest = ? WHERE tenant = ? "
                                "AND id = ? AND version = ?",
                                (d ^ 1,) + key)
                elif kind == "answer":
                    (a,), = con.execute(
                        "SELECT result FROM ops WHERE tenant = ? AND id = ? "
                        "AND version = ?", key)
                    a = bytes(a[:-1]) + bytes([a[-1] ^ 1])
                    con.execute("UPDATE ops SET result = ? WHERE tenant = ? "
                                "AND id = ? AND version = ?", (a,) + key)
                elif kind == "gone":
                    con.execute("DELETE FROM ops WHERE tenant = ? AND id = ? "
                                "AND version = ?", key)
                    # The replay fails at the record after the gap.
                    v = versions[versions.index(v) + 1]
                out.append((mid, v))
            con.commit()
        finally:
            con.close()
        self.assertFalse(os.path.exists(db + "-wal"))
        return out

    def refused(self, db):
        """vmlabd on db exits non-zero by itself, before serving, and
        leaves every byte of the folder as it was: its stderr."""
        folder = os.path.dirname(db)
        before = files_of(folder)
        cmd = [vmlab.VMLABD, "--listen", "127.0.0.1:0", "--threads", "2",
               "--db", db]
        with tempfile.TemporaryFile(mode="w+") as out:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=out)
            deadline = time.monotonic() + 120
            while p.poll() is None and time.monotonic() < deadline:
                out.seek(0)
                if "listening on" in out.read():
                    break
                time.sleep(0.02)
            if p.poll() is None:
                p.kill()
                p.wait()
                out.seek(0)
                self.fail("vmlabd started on a database it must refuse: "
                          + out.read())
            out.seek(0)
            r = subprocess.CompletedProcess(cmd, p.returncode, None,
                                            out.read())
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("listening on", r.stderr)
        self.assertIsNone(vmlab.SANITIZER.search(r.stderr), r.stderr)
        self.assertIn(db, r.stderr)
        self.assertEqual(files_of(folder), before,
                         "the refused start changed the folder: " + r.stderr)
        return r.stderr

    def assertNames(self, err, mid, version, words):
        self.assertIn("machine %s.%s:" % (NS, mid), err)
        if version is not None:
            self.assertIn("replaying version %d (" % version, err)
        self.assertTrue(any(w in err for w in words), (words, err))

    def test_divergence_caught(self):
        """A record's digest or answer changed, or a record gone, at the
        first or at a middle record of the tail of a machine in the middle
        of the order: refused, naming that machine and record, the file
        left as it was; a second start refuses it just the same."""
        src = os.path.join(self.tmp.name, "src.db")
        state = self.machines(src, 24, seed=1)
        # Machines in the middle of the order with tails long enough.
        with self.reading(src) as con:
            long_ones = [m for m in sorted(state)[6:]
                         if len(self.tail(con, m)) >= 3]
        self.assertGreaterEqual(len(long_ones), 2, state)
        mid = long_ones[0]
        cases = [("digest", "first", ("the digest it had",)),
                 ("digest", "middle", ("the digest it had",)),
                 ("answer", "first", ("the answer it had",)),
                 ("answer", "middle", ("the answer it had",)),
                 ("gone", "middle", ("that version",)),
                 ("snapshot", None, ("snapshot does not decode",))]
        for kind, where, words in cases:
            with self.subTest(kind=kind, where=where):
                db = self.folder_with(src, "%s-%s" % (kind, where))
                (_, version), = self.damage(db, [(kind, mid, where)])
                for _ in range(2):
                    self.assertNames(self.refused(db), mid, version, words)
        # The undamaged database loads whole.
        d = self.start(self.folder_with(src, "whole"))
        c = Conn(self, d.port)
        for m, (version, digest) in sorted(state.items()):
            got = c.ok("GET", "/v1/machines/" + m)
            self.assertEqual((got["version"], got["digest"]),
                             (version, digest), m)
        c.close()
        self.stop(d)

    def test_first_failure_in_order(self):
        """Two machines next to each other damaged, the first at its last
        record, the second at its first: both are replayed at once, and
        the second fails sooner, but the refusal names the first in
        (tenant, id) order, start after start."""
        src = os.path.join(self.tmp.name, "src.db")
        state = self.machines(src, 40, seed=2)
        with self.reading(src) as con:
            order = sorted(state)
            pairs = [(a, b) for a, b in zip(order[4:], order[5:])
                     if len(self.tail(con, a)) >= 5 and
                     len(self.tail(con, b)) >= 3]
        self.assertTrue(pairs, state)
        early, late = pairs[0]
        db = self.folder_with(src, "two")
        (_, v_early), _ = self.damage(db, [("digest", early, "last"),
                                           ("answer", late, "first")])
        for _ in range(5):
            err = self.refused(db)
            self.assertNames(err, early, v_early, ("the digest it had",))
            self.assertNotIn(late, err)

    # ---- many machines ----

    def test_many_machines(self):
        """2,000 machines (every architecture, seeded operations, some
        with none) killed, then started again: each answers the version
        and digest it had; a machine made afterwards sits with them; after
        a clean stop (every machine snapshotted) they load again, the
        same."""
        n = 2000 * SCALE
        db = os.path.join(self.tmp.name, "many.db")
        state = self.machines(db, n, seed=3, sample=50)
        self.assertGreater(sum(1 for v, _ in state.values() if v == 0), 0)
        self.assertGreater(sum(1 for v, _ in state.values() if v >= 5), 0)
        for round_ in ("after kill -9", "after a clean stop"):
            d = self.start(db)
            conns = [Conn(self, d.port, 50) for _ in range(4)]
            got = {}

            def read(k, mid):
                m = conns[k].ok("GET", "/v1/machines/" + mid)
                got[mid] = (m["version"], m["digest"])

            in_threads(4, read, sorted(state))
            self.assertEqual(got, state, round_)
            metrics = conns[0].req("GET", "/metrics").body
            held = re.search(r"^vmlab_machines (\d+)$", metrics, re.M)
            self.assertEqual(int(held.group(1)), n + (round_ != "after "
                                                      "kill -9"))
            if round_ == "after kill -9":
                # The table takes a new machine between loaded ones.
                conns[0].ok("POST", "/v1/machines", {"id": "m0000a"})
                page = conns[0].ok("GET", "/v1/machines?page_size=3")
                self.assertEqual([m["id"] for m in page["items"]],
                                 ["m0000", "m0000a", "m0001"], page)
            for c in conns:
                c.close()
            self.stop(d)


if __name__ == "__main__":
    unittest.main()
