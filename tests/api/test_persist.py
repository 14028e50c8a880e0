"""test_persist.py - machines survive vmlabd: SPEC part 3, persistence.

"A mutation is acknowledged only after it is durable; after kill -9 and
restart every acknowledged mutation is there and every machine has the
digest it had. Schema versioned with migrations." Each test runs real
vmlabd processes over one --db file in a temporary directory, stops them
with SIGTERM (a clean stop) or SIGKILL (no shutdown at all), starts them
again on the same file and compares everything the API can show about
every machine before and after. A twin daemon on another database that
never restarts receives the same requests: what a restarted machine
answers next must be what the twin answers (SPEC 1.9: a machine's state
is a function of its parameters and its operations).

The database is read directly (python's sqlite3) only after the daemon
has stopped: the snapshot/log layout is db/db.c's (machines.snapshot,
snapshot_version; ops, one row per operation).
"""

import hashlib
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import vmlab

SCALE = max(1, int(os.environ.get("VMLAB_TEST_SCALE", "1")))
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4096
SNAPSHOT_EVERY = 1024       # server/store.c: a snapshot every 1024 operations


def schema_version():
    """This vmlabd's schema (db/db.h DB_SCHEMA_VERSION)."""
    with open(os.path.join(vmlab.SRCDIR, "db", "db.h")) as f:
        m = re.search(r"#define DB_SCHEMA_VERSION (\d+)", f.read())
    return int(m.group(1))


# A schema this vmlabd does not know: the next one.
NEWER = schema_version() + 1

# The four architectures, two CPUs each (SPEC 1.1); a seed and, where the
# architecture has it, KASLR, so that the PRNG state must survive too.
ARCHES = [
    ("i386", {"arch": "i386", "memory": "2GiB", "cpus": 2, "seed": "7"}),
    ("pae", {"arch": "i386-pae", "cpus": 2, "seed": "11"}),
    ("x64", {"arch": "x86_64", "cpus": 2, "seed": "13", "kaslr": True}),
    ("la57", {"arch": "x86_64-la57", "cpus": 2, "seed": "17"}),
]

# What history's args hold for a field the request left out (SPEC 2.4).
ARG_DEFAULTS = {
    "process_create": {"populate": True},
    "mmap": {"prot": "rw-", "fixed": False, "populate": True},
    "kmalloc": {"gfp": "GFP_KERNEL"},
    "vmalloc": {"guard": True},
    "alloc_pages": {"order": 0, "gfp": "GFP_KERNEL"},
}

# The fields each operation's history result must carry (SPEC 2.3 History:
# "the fields of its own answer").
RESULT_KEYS = {
    "process_create": {"pid"},
    "mmap": {"start", "end", "perms"},
    "vmalloc": {"va", "size", "pages"},
    "alloc_pages": {"pa", "zone"},
    "switch": {"prev_pid", "next_pid", "cr3_before", "cr3_after"},
}


def H(s):
    return int(s, 16)


def hx(v):
    return "0x%x" % v


def strip_created(answers):
    """Answers without `created` (service metadata, SPEC 2.3), to compare
    the answers of two daemons."""
    out = []
    for a in answers:
        body = a[4]
        if isinstance(body, dict) and "created" in body:
            body = {k: v for k, v in body.items() if k != "created"}
        out.append(a[:4] + (body,))
    return out


def sha(path):
    """The bytes of a file, hashed (None when absent)."""
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Client:
    """Requests to one daemon over http.client (a connection each), every
    answer checked against docs/openapi.json as vmlab.DaemonTest does."""

    def __init__(self, test, daemon):
        self.test = test
        self.daemon = daemon

    def req(self, method, path, body=None, check=True):
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port,
                                          timeout=60)
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read().decode("utf-8", "replace")
            headers = {k.lower(): v for k, v in resp.getheaders()}
            r = vmlab.Response(resp.status, headers, payload)
        finally:
            conn.close()
        if check:
            err = vmlab.check_response(method, path, r)
            if err:
                self.test.fail("response outside docs/openapi.json: " + err)
        return r

    def ok(self, method, path, body=None, status=None):
        r = self.req(method, path, body)
        if status is None:
            self.test.assertTrue(200 <= r.status < 300, (method, path, r))
        else:
            self.test.assertEqual(r.status, status, (method, path, r))
        return r.json


class Recorder:
    """Sends the mutations of a workload, and keeps, per machine, each
    operation with the args and answer the history must show."""

    def __init__(self, test, client):
        self.test = test
        self.c = client
        self.log = {}       # machine id -> [(op, args, answer)]
        self.answers = []   # (method, path, status, etag, body) in order

    def send(self, method, path, body=None, status=None):
        r = self.c.req(method, path, body)
        if status is not None:
            self.test.assertEqual(r.status, status, (method, path, r))
        else:
            self.test.assertTrue(200 <= r.status < 300, (method, path, r))
        self.answers.append((method, path, r.status, r.headers.get("etag"),
                             r.json))
        return r.json

    def create(self, mid, fields):
        body = dict(fields, id=mid)
        m = self.send("POST", "/v1/machines", body, 201)
        self.log[mid] = []
        return m

    def clone(self, src, dst):
        m = self.send("POST", "/v1/machines/%s/clone" % src, {"id": dst}, 201)
        self.log[dst] = []
        return m

    def delete(self, mid):
        self.send("DELETE", "/v1/machines/" + mid, None, 204)
        self.log.pop(mid, None)

    def mut(self, mid, op, path, body=None, status=None, args_extra=None):
        """One mutation of mid; its expected history entry is noted."""
        ans = self.send("POST" if op != "process_exit" else "DELETE",
                        "/v1/machines/%s%s" % (mid, path), body, status)
        args = dict(ARG_DEFAULTS.get(op, {}))
        args.update(body or {})
        args.update(args_extra or {})
        self.log[mid].append((op, args, ans, self.answers[-1][3]))
        return ans

    # ---- the operations, each as SPEC 2.2 names it ----

    def proc(self, mid, **fields):
        return self.mut(mid, "process_create", "/processes", fields, 201)

    def exit(self, mid, pid):
        return self.mut(mid, "process_exit", "/processes/%d" % pid, None,
                        204, {"pid": pid})

    def mmap(self, mid, pid, **fields):
        return self.mut(mid, "mmap", "/processes/%d/mmap" % pid, fields, 201,
                        {"pid": pid})

    def munmap(self, mid, pid, addr, length):
        return self.mut(mid, "munmap", "/processes/%d/munmap" % pid,
                        {"addr": hx(addr), "length": length}, 200,
                        {"pid": pid})

    def brk(self, mid, pid, **fields):
        return self.mut(mid, "brk", "/processes/%d/brk" % pid, fields, 200,
                        {"pid": pid})

    def kmalloc(self, mid, size, **fields):
        fields["size"] = size
        return self.mut(mid, "kmalloc", "/kmalloc", fields,
                        200 if size == 0 else 201)

    def kfree(self, mid, va):
        return self.mut(mid, "kfree", "/kfree", {"va": va}, 200)

    def vmalloc(self, mid, size, **fields):
        fields["size"] = size
        return self.mut(mid, "vmalloc", "/vmalloc", fields, 201)

    def vfree(self, mid, va):
        return self.mut(mid, "vfree", "/vfree", {"va": va}, 200)

    def pages(self, mid, **fields):
        return self.mut(mid, "alloc_pages", "/pages", fields, 201)

    def pages_free(self, mid, pa, order):
        return self.mut(mid, "free_pages", "/pages/free",
                        {"pa": pa, "order": order}, 200)

    def switch(self, mid, cpu, pid):
        return self.mut(mid, "switch", "/cpus/%d/switch" % cpu, {"pid": pid},
                        200, {"cpu": cpu})


def workload(rec, tag, fields):
    """Every kind of mutation on machine tag (SPEC 2.2), a clone of it
    changed afterwards, and a machine created, changed and deleted.
    Returns the ids that remain."""
    m = tag
    rec.create(m, fields)
    p1 = rec.proc(m, name="init")["pid"]
    p2 = rec.proc(m, name="worker", data=8192, heap=64 * KiB,
                  stack=64 * KiB)["pid"]
    p3 = rec.proc(m, name="doomed", populate=False)["pid"]
    # mmap: anywhere, at a hint, fixed, unpopulated.
    a = rec.mmap(m, p1, length=16 * KiB)
    rec.mmap(m, p1, length=8 * KiB, addr="0x10000000")
    rec.mmap(m, p1, length=8 * KiB, addr="0x20000000", fixed=True,
             prot="r--")
    rec.mmap(m, p2, length=PAGE, prot="r-x", populate=False)
    # munmap the second page of the first mapping: it splits in two.
    u = rec.munmap(m, p1, H(a["start"]) + PAGE, PAGE)
    rec.test.assertEqual(
        sum(1 for r in u["regions"] if r["kind"] == "mmap"
            and H(a["start"]) <= H(r["start"]) < H(a["end"])), 2, u)
    # brk: grow, shrink, absolute.
    b = rec.brk(m, p1, increment=8192)
    rec.brk(m, p1, increment=-4096)
    rec.brk(m, p2, addr=hx(H(b["brk_start"]) + 96 * KiB))
    # kmalloc: a slab object, size 0 (ZERO_SIZE_PTR), a large one, DMA.
    k1 = rec.kmalloc(m, 100)
    k0 = rec.kmalloc(m, 0)
    rec.kmalloc(m, 64 * KiB)
    rec.kmalloc(m, 64, gfp="GFP_DMA")
    rec.kmalloc(m, 200, gfp="GFP_KERNEL|__GFP_ZERO")
    rec.kfree(m, k1["va"])
    rec.kfree(m, k0["va"])
    v1 = rec.vmalloc(m, 8 * KiB)
    rec.vmalloc(m, PAGE, guard=False)
    rec.vfree(m, v1["va"])
    g = rec.pages(m, order=2)
    rec.pages(m, order=0, gfp="GFP_DMA")
    rec.pages(m)
    rec.pages_free(m, g["pa"], 2)
    rec.switch(m, 0, p1)
    rec.switch(m, 1, p2)
    rec.switch(m, 0, 0)
    rec.exit(m, p3)
    # A clone, changed afterwards; a machine that goes away.
    rec.clone(m, m + "-c")
    rec.kmalloc(m + "-c", 300)
    rec.switch(m + "-c", 0, p1)
    rec.create(m + "-x", fields)
    rec.kmalloc(m + "-x", 128)
    rec.delete(m + "-x")
    return [m, m + "-c"]


def more(rec, m, rnd):
    """More mutations of every kind on an existing machine (round rnd)."""
    p = rec.proc(m, name="r%d" % rnd, heap=PAGE * (rnd + 1))["pid"]
    a = rec.mmap(m, p, length=4 * PAGE)
    rec.munmap(m, p, H(a["start"]) + PAGE, PAGE)
    rec.brk(m, p, increment=PAGE)
    k = rec.kmalloc(m, 40 + rnd)
    rec.kmalloc(m, 5000 + rnd)
    rec.kfree(m, k["va"])
    v = rec.vmalloc(m, 3 * PAGE)
    rec.vfree(m, v["va"])
    g = rec.pages(m, order=1)
    rec.pages_free(m, g["pa"], 1)
    rec.switch(m, 1, p)
    rec.switch(m, 1, 0)
    q = rec.proc(m, name="gone%d" % rnd)["pid"]
    rec.exit(m, q)


class Persist(vmlab.DaemonsTest):
    """Daemons over databases in a temporary directory of the test's own."""

    TMP_PREFIX = "vmlab-persist-"

    def start(self, db, *args):
        d = vmlab.Daemon("--db", db, *args)
        self.daemons.append(d)
        d.start()
        return d, Client(self, d)

    def refused_start(self, db, *args):
        """vmlabd on db must exit non-zero by itself: (status, stderr)."""
        cmd = [vmlab.VMLABD, "--listen", "127.0.0.1:0", "--threads", "2",
               "--db", db] + list(args)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=20, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.fail("vmlabd %s started on a database it must refuse"
                      % " ".join(cmd[1:]))
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertIsNone(vmlab.SANITIZER.search(r.stderr), r.stderr)
        self.assertNotIn("listening on", r.stderr)
        return r.returncode, r.stderr

    # ---- everything the API shows about the machines ----

    def pages_of(self, c, path, key):
        """Every item of a paginated list (page_size 2, to page)."""
        out, token = [], None
        while True:
            q = "?page_size=2" + ("&page_token=" + token if token else "")
            page = c.ok("GET", path + q, status=200)
            out += page[key]
            token = page["next_page_token"]
            if token is None:
                return out

    def capture(self, c):
        """The answers of every read of every machine, in a fixed order."""
        snap = {"list": self.pages_of(c, "/v1/machines", "items")}
        for item in snap["list"]:
            m = "/v1/machines/" + item["id"]
            s = snap[item["id"]] = {}
            s["machine"] = c.ok("GET", m, status=200)
            for r in ("layout", "zones", "frames", "slabs", "cpus"):
                s[r] = c.ok("GET", m + "/" + r, status=200)
            s["history"] = self.pages_of(c, m + "/history", "operations")
            s["processes"] = self.pages_of(c, m + "/processes", "items")
            lay = s["layout"]
            for p in s["processes"]:
                pp = "%s/processes/%d" % (m, p["pid"])
                s["p%d" % p["pid"]] = c.ok("GET", pp, status=200)
                s["pt%d" % p["pid"]] = c.ok("GET", pp + "/pagetable",
                                            status=200)
                for i, reg in enumerate(p["regions"][:4]):
                    s["tr%d.%d" % (p["pid"], i)] = c.ok(
                        "POST", m + "/translate",
                        {"va": reg["start"], "pid": p["pid"],
                         "access": "write", "explain": True}, status=200)
            po = H(lay["page_offset"])
            for i, va in enumerate((po + 0x123456, H(lay["vmalloc_start"]),
                                    H(lay["vmalloc_start"]) + 0x21000)):
                for cpu in (0, 1):
                    s["trk%d.%d" % (i, cpu)] = c.ok(
                        "POST", m + "/translate",
                        {"va": hx(va), "cpu": cpu, "mode": "kernel",
                         "explain": True}, status=200)
            s["dma"] = c.ok("POST", m + "/dma-check",
                            {"va": hx(po + 0x200000), "length": 3 * PAGE,
                             "dma_mask_bits": 32}, status=200)
            s["dma-v"] = c.ok("POST", m + "/dma-check",
                              {"va": lay["vmalloc_start"], "length": PAGE,
                               "dma_mask_bits": 24}, status=200)
            s["v2p"] = c.ok("POST", m + "/virt-to-phys",
                            {"va": hx(po + 0x5000)}, status=200)
        return snap

    def assertSameMachines(self, before, after, created=True):
        """Every answer equal; `created` too unless the two come from
        different daemons (it is service metadata, SPEC 2.3)."""
        def strip(snap):
            snap = json.loads(json.dumps(snap))
            if not created:
                for it in snap["list"]:
                    it.pop("created")
                for k, v in snap.items():
                    if k != "list":
                        v["machine"].pop("created")
            return snap
        before, after = strip(before), strip(after)
        self.assertEqual(sorted(before), sorted(after))
        for k in before:
            if k == "list":
                self.assertEqual(before[k], after[k], "the machine list")
                continue
            for what in before[k]:
                self.assertEqual(before[k][what], after[k].get(what),
                                 "machine %s: %s" % (k, what))

    def build_all(self, c):
        """The workload on the four architectures; the recorder."""
        rec = Recorder(self, c)
        ids = []
        for tag, fields in ARCHES:
            ids += workload(rec, tag, fields)
        self.assertEqual([m["id"] for m in self.pages_of(c, "/v1/machines",
                                                         "items")],
                         sorted(ids))
        return rec

    # ---- 1: restarts ----

    def test_restart_clean(self):
        """(a) SIGTERM and restart: every machine answers every read as
        before, deleted machines stay deleted."""
        db = self.path("vmlab.db")
        d, c = self.start(db)
        self.build_all(c)
        before = self.capture(c)
        self.stop(d)
        d, c = self.start(db)
        self.assertRegex(d.stderr(), r"\b%d machines, \d+ tenants from" %
                         len(before["list"]))
        self.assertSameMachines(before, self.capture(c))
        for tag, _ in ARCHES:
            c.ok("GET", "/v1/machines/%s-x" % tag, status=404)
        # A second clean restart, with nothing changed in between.
        self.stop(d)
        d, c = self.start(db)
        self.assertSameMachines(before, self.capture(c))
        self.stop(d)

    def test_restart_after_kill(self):
        """(b) SIGKILL (no clean stop: every machine is in the log only)
        and restart: every acknowledged mutation is there, every digest
        as it was."""
        db = self.path("vmlab.db")
        d, c = self.start(db)
        self.build_all(c)
        before = self.capture(c)
        self.crash(d)
        d, c = self.start(db)
        self.assertSameMachines(before, self.capture(c))
        for tag, _ in ARCHES:
            c.ok("GET", "/v1/machines/%s-x" % tag, status=404)
        # Killed again straight after a restart, and once more after a
        # clean stop: still the same.
        self.crash(d)
        d, c = self.start(db)
        self.assertSameMachines(before, self.capture(c))
        self.stop(d)
        d, c = self.start(db)
        self.assertSameMachines(before, self.capture(c))
        self.stop(d)

    def test_restart_continues_like_twin(self):
        """(c) After a clean restart, and after a kill -9, new mutations
        continue from the version reached and answer exactly what a twin
        machine that never restarted answers (another daemon, another
        database, the same requests)."""
        db = self.path("vmlab.db")
        d, c = self.start(db)
        t, tc = self.start(self.path("twin.db"))
        rec, twin = self.build_all(c), self.build_all(tc)
        self.assertEqual(strip_created(rec.answers),
                         strip_created(twin.answers))
        ids = [m["id"] for m in self.pages_of(tc, "/v1/machines", "items")]
        for rnd, stop in enumerate((self.stop, self.crash), 1):
            versions = {m: c.ok("GET", "/v1/machines/" + m)["version"]
                        for m in ids}
            stop(d)
            d, c = self.start(db)
            rec.c = c
            for m in ids:
                n = len(rec.answers)
                more(rec, m, rnd)
                more(twin, m, rnd)
                first = rec.answers[n]
                self.assertEqual(first[4]["version"], versions[m] + 1,
                                 "machine %s after restart %d: %r"
                                 % (m, rnd, first))
            # The machine deleted before the restart can be made again,
            # with a log of its own (the old records went with it).
            tag, fields = ARCHES[rnd]
            for r in (rec, twin):
                r.create(tag + "-x", fields)
                r.kmalloc(tag + "-x", 128)
                r.vmalloc(tag + "-x", PAGE)
            self.assertEqual(strip_created(rec.answers),
                             strip_created(twin.answers))
            hist = self.pages_of(c, "/v1/machines/%s-x/history" % tag,
                                 "operations")
            self.assertEqual([(h["version"], h["op"]) for h in hist],
                             [(1, "kmalloc"), (2, "vmalloc")], hist)
            for r in (rec, twin):
                r.delete(tag + "-x")
        self.assertSameMachines(self.capture(tc), self.capture(c),
                                created=False)
        self.stop(d)
        self.stop(t)

    def test_kill_under_load(self):
        """kill -9 while mutations run in parallel on several machines:
        after the restart every acknowledged mutation is in the machine's
        history with the answer it gave, no machine is behind what was
        acknowledged, and replaying its history on a fresh machine gives
        its digest."""
        db = self.path("vmlab.db")
        d, c = self.start(db, "--threads", "4")
        mids = ["load%d" % i for i in range(4)]
        for i, m in enumerate(mids):
            c.ok("POST", "/v1/machines", {"id": m, "churn": 0, "cpus": 2,
                                          "seed": str(i)}, status=201)
        acked = {m: [] for m in mids}
        stop = threading.Event()
        errors = []

        def worker(m):
            held = []
            i = 0
            while not stop.is_set():
                i += 1
                if held and i % 3 == 0:
                    body = {"va": held.pop(0)}
                    path, op = "/kfree", "kfree"
                else:
                    body = {"size": 16 + (i % 7) * 100,
                            "gfp": "GFP_KERNEL"}
                    path, op = "/kmalloc", "kmalloc"
                try:
                    r = c.req("POST", "/v1/machines/" + m + path, body,
                              check=False)
                except (OSError, http.client.HTTPException):
                    return      # the daemon is gone
                if r.status >= 300:
                    errors.append((m, path, body, r))
                    return
                if op == "kmalloc":
                    held.append(r.json["va"])
                acked[m].append((r.json["version"], op, body, r.json))

        threads = [threading.Thread(target=worker, args=(m,)) for m in mids]
        for th in threads:
            th.start()
        time.sleep(1.0 * SCALE)
        self.crash(d)
        stop.set()
        for th in threads:
            th.join(60)
        self.assertEqual(errors, [])
        d, c = self.start(db)
        t, tc = self.start(self.path("twin.db"))
        for i, m in enumerate(mids):
            self.assertGreater(len(acked[m]), 10, m)
            got = c.ok("GET", "/v1/machines/" + m, status=200)
            self.assertGreaterEqual(got["version"], acked[m][-1][0], m)
            hist = {h["version"]: h for h in self.pages_of(
                c, "/v1/machines/%s/history" % m, "operations")}
            self.assertEqual(sorted(hist), list(range(1, got["version"] + 1)))
            for version, op, body, ans in acked[m]:
                h = hist[version]
                self.assertEqual((h["op"], h["args"]), (op, body), h)
                for k, v in h["result"].items():
                    self.assertEqual(ans[k], v, (m, version, k, h, ans))
            # The log replayed on a fresh machine gives the same digest.
            tc.ok("POST", "/v1/machines", {"id": m, "churn": 0, "cpus": 2,
                                           "seed": str(i)}, status=201)
            for v in sorted(hist):
                h = hist[v]
                r = tc.ok("POST", "/v1/machines/%s/%s" % (m, h["op"]),
                          h["args"])
                self.assertEqual(r["version"], v)
            twin = tc.ok("GET", "/v1/machines/" + m, status=200)
            self.assertEqual((twin["digest"], twin["version"]),
                             (got["digest"], got["version"]), m)
        self.stop(d)
        self.stop(t)

    # ---- 2: history ----

    def check_history(self, c, rec):
        """Each machine's history against the operations sent to it."""
        for m, log in rec.log.items():
            full = c.ok("GET", "/v1/machines/%s/history?page_size=1000" % m,
                        status=200)
            self.assertIsNone(full["next_page_token"])
            ops = full["operations"]
            cur = c.ok("GET", "/v1/machines/" + m, status=200)
            # A clone's own operations are the tail of its history (SPEC
            # does not say whether the source's come with it).
            self.assertGreaterEqual(len(ops), len(log), m)
            ops_tail = ops[len(ops) - len(log):]
            versions = [h["version"] for h in ops]
            self.assertEqual(versions,
                             list(range(cur["version"] - len(ops) + 1,
                                        cur["version"] + 1)), m)
            if not m.endswith("-c"):
                self.assertEqual(versions, list(range(1, len(log) + 1)), m)
            for h, (op, args, ans, etag) in zip(ops_tail, log):
                where = "machine %s version %d" % (m, h["version"])
                self.assertEqual(h["op"], op, where)
                self.assertEqual(h["tenant"], "local", where)
                self.assertEqual('"%d"' % h["version"], etag, where)
                if ans is not None:
                    self.assertEqual(h["version"], ans["version"], where)
                got = dict(h["args"])
                if op == "brk" and "increment" in got:
                    # A decimal string or an integer: the same request.
                    got["increment"] = int(got["increment"])
                self.assertEqual(got, args, where)
                need = set(RESULT_KEYS.get(op, ()))
                if op == "kmalloc":
                    need = {"va"} if ans["pa"] is None else \
                        {"va", "pa", "cache", "zone"} | (
                            {"order"} if ans["cache"] == "large" else set())
                if op == "alloc_pages" and ans["va"] is not None:
                    need.add("va")
                self.assertEqual(set(h["result"]), need,
                                 (where, h["result"]))
                for k, v in h["result"].items():
                    self.assertEqual(v, ans[k], (where, k))

    def check_pagination(self, c, m):
        """Every page size covers the whole history exactly once."""
        full = c.ok("GET", "/v1/machines/%s/history?page_size=1000" % m,
                    status=200)["operations"]
        n = len(full)
        for size in sorted({1, 2, 3, 7, max(1, n - 1), n, n + 1, 100}):
            got, token, pages = [], None, 0
            while True:
                q = "?page_size=%d" % size + (
                    "&page_token=" + token if token else "")
                page = c.ok("GET", "/v1/machines/%s/history%s" % (m, q),
                            status=200)
                pages += 1
                got += page["operations"]
                token = page["next_page_token"]
                if token is None:
                    break
                self.assertEqual(len(page["operations"]), size)
                self.assertLessEqual(pages, n + 1, "pages without end")
            self.assertEqual(got, full, "page_size %d" % size)
            self.assertEqual(pages, max(1, -(-n // size)),
                             "page_size %d: %d pages for %d" % (size, pages,
                                                                n))

    def test_history(self):
        """GET history: every operation in order, versions 1..n, op names,
        args and results as the mutations answered, tenant "local";
        pages cover it exactly once; the same after restarts."""
        db = self.path("vmlab.db")
        d, c = self.start(db)
        rec = self.build_all(c)
        self.check_history(c, rec)
        for m in ("i386", "x64", "la57-c"):
            self.check_pagination(c, m)
        full = {m: self.pages_of(c, "/v1/machines/%s/history" % m,
                                 "operations") for m in rec.log}
        c.ok("GET", "/v1/machines/nosuch/history", status=404)
        self.stop(d)
        d, c = self.start(db)
        rec.c = c
        for m in rec.log:
            self.assertEqual(self.pages_of(
                c, "/v1/machines/%s/history" % m, "operations"), full[m], m)
        # More after the restart; then killed: all of it is there.
        for m in list(rec.log):
            more(rec, m, 1)
        self.check_history(c, rec)
        self.crash(d)
        d, c = self.start(db)
        self.check_history(c, rec)
        self.check_pagination(c, "pae")
        self.stop(d)

    # ---- 3: databases refused at start, and left as they are ----

    def vmlab_db(self, name, crash=False):
        """A database written by vmlabd: two machines with a log."""
        db = self.path(name)
        d, c = self.start(db)
        rec = Recorder(self, c)
        workload(rec, "a", {"arch": "x86_64", "cpus": 2})
        if crash:
            self.crash(d)
        else:
            self.stop(d)
        return db

    def assertRefused(self, db, *words):
        """vmlabd refuses db at start, naming it and saying why (one of
        words), and changes no byte of it, nor of its WAL."""
        files = {f: sha(os.path.join(self.tmp.name, f))
                 for f in os.listdir(self.tmp.name)
                 if not f.endswith("-shm")}
        _, err = self.refused_start(db)
        self.assertIn(db, err)
        self.assertTrue(any(w in err for w in words), err)
        after = {f: sha(os.path.join(self.tmp.name, f))
                 for f in os.listdir(self.tmp.name)
                 if not f.endswith("-shm")}
        self.assertEqual(after, files, "the refused database was changed: "
                         + err)
        return err

    def test_refuse_newer_schema(self):
        """A database of a newer schema (PRAGMA user_version above this
        vmlabd's) is refused with its version named, and left as it is."""
        db = self.path("newer.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE machines (x)")
        con.execute("PRAGMA user_version = 99")
        con.commit()
        con.close()
        err = self.assertRefused(db, "schema")
        self.assertIn("99", err)
        # One written by vmlabd, then by a newer one.
        db = self.vmlab_db("ours.db")
        con = sqlite3.connect(db)
        con.execute("PRAGMA user_version = %d" % NEWER)
        con.commit()
        con.close()
        err = self.assertRefused(db, "schema")
        self.assertRegex(err, r"\b%d\b" % NEWER)

    def test_refuse_newer_schema_with_wal(self):
        """A newer vmlabd killed with changes still in its WAL: the older
        one refuses, and neither the file nor its WAL is written (no
        checkpoint on the way out)."""
        db = self.vmlab_db("ours.db", crash=True)
        self.assertTrue(os.path.exists(db + "-wal"))
        # The newer schema, committed into the WAL and never checkpointed.
        subprocess.run(
            [sys.executable, "-c",
             "import sqlite3, os, sys\n"
             "c = sqlite3.connect(sys.argv[1])\n"
             "c.execute('PRAGMA wal_autocheckpoint = 0')\n"
             "c.execute('PRAGMA user_version = %d')\n"
             "c.commit()\n"
             "os._exit(0)\n" % NEWER, db], check=True)
        self.assertGreater(os.path.getsize(db + "-wal"), 0)
        err = self.assertRefused(db, "schema")
        self.assertRegex(err, r"\b%d\b" % NEWER)

    def test_refuse_corrupt(self):
        """Random bytes, a database whose header is overwritten, one with a
        damaged table page: refused with a clear message, left as is."""
        db = self.path("random.db")
        with open(db, "wb") as f:
            f.write(os.urandom(64 * KiB))
        self.assertRefused(db, "not a database")
        good = self.vmlab_db("ours.db")
        self.assertFalse(os.path.exists(good + "-wal"))
        with open(good, "rb") as f:
            image = f.read()
        page = int.from_bytes(image[16:18], "big")
        page = 65536 if page == 1 else page
        for name, start, length in (("header.db", 0, 100),
                                    ("magic.db", 0, 16),
                                    ("page2.db", page, page)):
            db = self.path(name)
            bad = bytearray(image)
            bad[start:start + length] = os.urandom(length)
            with open(db, "wb") as f:
                f.write(bad)
            self.assertRefused(db, "not a database", "damaged", "malformed",
                               "corrupt")

    def test_refuse_foreign_database(self):
        """An SQLite database of another program (tables, no vmlab schema
        version) is refused and left as it is."""
        db = self.path("grades.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE students (name TEXT, grade INTEGER)")
        con.execute("INSERT INTO students VALUES ('ada', 20)")
        con.commit()
        con.close()
        self.assertRefused(db, "not a vmlab database")

    def test_refuse_foreign_database_with_user_version(self):
        """Many programs set user_version = 1 or 2 (vmlab's own schema
        numbers: 1 is migrated, 2 is this one): a database of another
        program that does must be refused as well, and left as it is."""
        for v in range(1, NEWER):
            db = self.path("grades-%d.db" % v)
            con = sqlite3.connect(db)
            con.execute("CREATE TABLE students (name TEXT, grade INTEGER)")
            con.execute("INSERT INTO students VALUES ('ada', 20)")
            con.execute("PRAGMA user_version = %d" % v)
            con.commit()
            con.close()
            self.assertRefused(db, "not a vmlab database", "no such table",
                               "schema")

    def attempt_start(self, db):
        """vmlabd on db: (exit status, stderr), or (None, stderr) when it
        started serving (it is then stopped)."""
        err = tempfile.TemporaryFile(mode="w+")
        proc = subprocess.Popen(
            [vmlab.VMLABD, "--listen", "127.0.0.1:0", "--threads", "2",
             "--db", db], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    err.seek(0)
                    return proc.returncode, err.read()
                err.seek(0)
                if "listening on" in err.read():
                    break
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            err.seek(0)
            return None, err.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            err.close()

    def test_refuse_bad_records(self):
        """A log record whose replay does not give its recorded digest, and
        a snapshot that does not decode: the start is refused naming the
        machine and the record (SPEC 1.9: a divergence is never silently
        accepted), a second start refuses it just the same, and the file
        is not written by either."""
        for name, sql, words in (
                ("digest.db", "UPDATE ops SET digest = digest + 1 "
                 "WHERE id = 'a' AND version = 5", ("version 5",)),
                ("snapshot.db", "UPDATE machines SET snapshot = "
                 "x'0001020304050607' WHERE id = 'a'", ("snapshot",))):
            with self.subTest(name):
                db = self.vmlab_db(name, crash=True)
                con = sqlite3.connect(db)
                # Killed: the machine is its first snapshot and its log.
                self.assertEqual(con.execute(
                    "SELECT snapshot_version FROM machines WHERE id = 'a'"
                ).fetchone()[0], 0)
                con.execute(sql)
                con.commit()
                con.close()
                self.assertFalse(os.path.exists(db + "-wal"))
                image = sha(db)
                first = self.attempt_start(db)
                after_first = sha(db)
                second = self.attempt_start(db)
                for n, (status, err) in enumerate((first, second), 1):
                    self.assertIsNotNone(
                        status, "start %d accepted the damaged %s: %s"
                        % (n, name, err))
                    self.assertNotEqual(status, 0, err)
                    self.assertIn(db, err)
                    self.assertIn("local.a", err)
                    self.assertTrue(any(w in err for w in words), err)
                self.assertEqual(after_first, image,
                                 "the refused start wrote to the file: "
                                 + first[1])
                self.assertEqual(sha(db), image)

    # ---- 4: --durability ----

    def test_durability_modes(self):
        """--durability full and normal are accepted (and said at start);
        what either acknowledged survives kill -9; a bad value is refused
        before the database is touched."""
        db = self.path("vmlab.db")
        digests = []
        for mode in ("normal", "full", "normal"):
            d, c = self.start(db, "--durability", mode)
            self.assertIn("(durability %s," % mode, d.stderr())
            for m in digests:
                got = c.ok("GET", "/v1/machines/" + m[0], status=200)
                self.assertEqual((got["digest"], got["version"]), m[1:])
            mid = "d%d" % len(digests)
            c.ok("POST", "/v1/machines", {"id": mid}, status=201)
            c.ok("POST", "/v1/machines/%s/kmalloc" % mid, {"size": 64},
                 status=201)
            got = c.ok("GET", "/v1/machines/" + mid, status=200)
            digests.append((mid, got["digest"], got["version"]))
            self.crash(d)
        d, _ = self.start(db)
        self.assertIn("(durability full,", d.stderr())   # the default
        self.stop(d)
        for bad in ("fast", "", "FULLY", "off", "0"):
            fresh = self.path("bad.db")
            status, err = self.refused_start(fresh, "--durability", bad)
            self.assertIn("--durability", err, bad)
            self.assertFalse(os.path.exists(fresh), bad)
        status, err = self.refused_start(self.path("bad.db"), "--durability")
        self.assertFalse(os.path.exists(self.path("bad.db")))

    # ---- 5: snapshots compact the log ----

    def read_db(self, db, query):
        """Rows of a query on a copy of a stopped daemon's database."""
        copy = tempfile.mkdtemp(dir=self.tmp.name)
        for ext in ("", "-wal", "-shm"):
            if os.path.exists(db + ext):
                with open(db + ext, "rb") as f, \
                        open(os.path.join(copy, "c.db" + ext), "wb") as g:
                    g.write(f.read())
        con = sqlite3.connect(os.path.join(copy, "c.db"))
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    def test_snapshot_compaction(self):
        """Over 1,100 operations: the machine is snapshotted every 1024
        (so a restart replays fewer than 1024 records); a clean stop
        snapshots it at its final version; the history keeps them all
        (retention 100,000, SPEC part 3)."""
        db = self.path("vmlab.db")
        d, c = self.start(db)
        c.ok("POST", "/v1/machines", {"id": "busy", "cpus": 2}, status=201)
        c.ok("POST", "/v1/machines/busy/processes", {"name": "p"},
             status=201)
        n = 1100 * SCALE
        va = None
        for i in range(2, n + 1):
            if i % 4 == 0:
                r = c.req("POST", "/v1/machines/busy/kmalloc", {"size": 32},
                          check=(i < 50))
                va = r.json["va"]
            elif i % 4 == 1 and va:
                r = c.req("POST", "/v1/machines/busy/kfree", {"va": va},
                          check=(i < 50))
            else:
                r = c.req("POST", "/v1/machines/busy/cpus/0/switch",
                          {"pid": i % 2}, check=(i < 50))
            self.assertLess(r.status, 300, r)
            self.assertEqual(r.json["version"], i, r)
        before = c.ok("GET", "/v1/machines/busy", status=200)
        self.assertEqual(before["version"], n)
        self.crash(d)
        rows = self.read_db(db, "SELECT snapshot_version FROM machines "
                                "WHERE id = 'busy'")
        snap = rows[0][0]
        self.assertGreaterEqual(snap, SNAPSHOT_EVERY)
        self.assertEqual(snap, n // SNAPSHOT_EVERY * SNAPSHOT_EVERY)
        self.assertEqual(self.read_db(
            db, "SELECT count(*), min(version), max(version) FROM ops "
                "WHERE id = 'busy'"), [(n, 1, n)])
        d, c = self.start(db)
        after = c.ok("GET", "/v1/machines/busy", status=200)
        self.assertEqual(after, before)
        hist = self.pages_of_size(c, "/v1/machines/busy/history", 1000)
        self.assertEqual([h["version"] for h in hist], list(range(1, n + 1)))
        for i in range(3):
            c.ok("POST", "/v1/machines/busy/kmalloc", {"size": 8},
                 status=201)
        final = c.ok("GET", "/v1/machines/busy", status=200)
        self.stop(d)
        self.assertEqual(self.read_db(
            db, "SELECT snapshot_version FROM machines WHERE id = 'busy'"),
            [(n + 3,)])
        self.assertEqual(self.read_db(
            db, "SELECT count(*), max(version) FROM ops WHERE id = 'busy'"),
            [(n + 3, n + 3)])
        d, c = self.start(db)
        self.assertEqual(c.ok("GET", "/v1/machines/busy", status=200), final)
        self.stop(d)

    def pages_of_size(self, c, path, size):
        out, token = [], None
        while True:
            q = "?page_size=%d" % size + ("&page_token=" + token
                                          if token else "")
            page = c.ok("GET", path + q, status=200)
            out += page["operations"]
            token = page["next_page_token"]
            if token is None:
                return out


if __name__ == "__main__":
    vmlab.main()
