"""test_crash.py - acknowledged means durable: SPEC part 3 under crashes
and failing disks.

"A mutation is acknowledged only after it is durable; no request ever
sees a mutation that is not yet durable; after kill -9 (or a power loss)
and restart every acknowledged mutation is there and every machine has
the digest it had." And when the database cannot be written, the mutation
is refused with 503 service_unavailable and the machine is exactly as
before (docs/persistence.md), for every member of a failed group commit.

Two daemons are used: the normal vmlabd (VMLABD) and the same sources
built over db/faultvfs.c (VMLABD_FAULT, tests/db/vmlabd_fault). The latter
reads VMLAB_FAULT (db/faultvfs.h): "readonly", "full_after=BYTES",
"ioerr_write=N", "ioerr_sync=N", "sync_delay_ms=MS", "powerloss"; it
keeps an undo log of every write not yet synced, and on SIGUSR1 puts each
database file back to its last fsync and exits 137: a power loss. It
prints "vmlabd: N syncs" at a clean stop.

Crash rounds: client threads on http.client keep-alive connections keep
one mutation each in flight on machines of their own (kmalloc, kfree,
vmalloc, process create, mmap, switch) and log every 2xx answer; the
daemon is killed (SIGKILL) or loses power (SIGUSR1) once a number of
answers has arrived; a normal vmlabd restarted on the database must show
every acknowledged operation in the history at its version with the same
op, args and result, nothing beyond the requests left unanswered, and a
digest equal to a twin machine that replays the history on another
daemon. Machines of earlier rounds must keep their digests.
"""

import http.client
import json
import os
import random
import re
import signal
import subprocess
import threading
import time

import vmlab

SCALE = max(1, int(os.environ.get("VMLAB_TEST_SCALE", "1")))
VMLABD_FAULT = os.environ.get("VMLABD_FAULT") or os.path.join(
    os.path.dirname(os.path.abspath(vmlab.VMLABD)), "..", "tests", "db",
    "vmlabd_fault")
SEED = int(os.environ.get("VMLAB_TEST_SEED") or time.time())
# Power loss exits the faulty daemon with this status (db/faultvfs.c).
POWER_LOSS_STATUS = 137

# The machines the rounds use: small, of every paging mode the workload
# fits in (x86_64 is the default).
MACHINE_KINDS = [
    {"arch": "x86_64", "memory": "128MiB"},
    {"arch": "i386-pae", "memory": "128MiB"},
    {"arch": "i386", "memory": "128MiB"},
    {"arch": "x86_64-la57", "memory": "128MiB", "cpus": 2},
]


def norm(v):
    """A request or history value in one form: hex and decimal strings
    become integers."""
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return v
    return v


class Daemon(vmlab.Daemon):
    """A vmlabd (or the faulty build, with VMLAB_FAULT) on a given --db."""

    def __init__(self, db, binary=None, fault=None, *args):
        super().__init__("--db", db, *args)
        self.binary = binary or vmlab.VMLABD
        self.env = dict(os.environ)
        self.env.pop("VMLAB_FAULT", None)
        if fault is not None:
            self.env["VMLAB_FAULT"] = fault

    def start(self):
        cmd = [self.binary, "--listen", "127.0.0.1:0", "--threads", "2"]
        self.proc = subprocess.Popen(cmd + self.args, env=self.env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self.err,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/",
                          self.stderr())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError("%s did not start: %s" % (self.binary,
                                                     self.stderr()))


class Client:
    """One keep-alive HTTP/1.1 connection; call() gives a vmlab.Response
    (for vmlab.check_response)."""

    def __init__(self, port, timeout=60):
        self.conn = http.client.HTTPConnection("127.0.0.1", port,
                                               timeout=timeout)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json"} if data else {}
        self.conn.request(method, path, body=data, headers=hdrs)
        r = self.conn.getresponse()
        raw = r.read().decode("utf-8", "replace")
        resp = vmlab.Response(r.status, {k.lower(): v
                                         for k, v in r.getheaders()}, raw)
        return resp

    def close(self):
        self.conn.close()


def replay_request(mid, op):
    """The request that performs a history entry again: (method, path,
    body)."""
    a = dict(op["args"])
    base = "/v1/machines/" + mid
    name = op["op"]
    if name == "process_create":
        return "POST", base + "/processes", a
    if name == "process_exit":
        return "DELETE", "%s/processes/%s" % (base, a["pid"]), None
    if name in ("mmap", "munmap", "brk"):
        pid = a.pop("pid")
        return "POST", "%s/processes/%s/%s" % (base, pid, name), a
    if name in ("kmalloc", "kfree", "vmalloc", "vfree"):
        return "POST", "%s/%s" % (base, name), a
    if name == "alloc_pages":
        return "POST", base + "/pages", a
    if name == "free_pages":
        return "POST", base + "/pages/free", a
    if name == "switch":
        cpu = a.pop("cpu")
        return "POST", "%s/cpus/%s/switch" % (base, cpu), a
    raise AssertionError("an operation this test does not know: %r" % op)


class Worker(threading.Thread):
    """Mutates one machine without pause until the daemon goes away;
    every 2xx answer is logged (acks), and the request left without an
    answer (inflight) is kept."""

    def __init__(self, port, mid, rng, counter):
        super().__init__(daemon=True)
        self.port, self.mid, self.rng = port, mid, rng
        self.counter = counter
        self.acks = []          # (version, op, body, answer)
        self.inflight = None    # (op, body) sent, never answered
        self.errors = []        # answers that are neither 2xx nor allowed
        self.kmallocs, self.pids = [], []
        self.max_ops = None

    def pick(self):
        """(op, method, path, body) valid on the machine as it is."""
        base = "/v1/machines/" + self.mid
        r = self.rng.random()
        if r < 0.12 and len(self.pids) < 6 or not self.pids and r < 0.3:
            return ("process_create", "POST", base + "/processes",
                    {"name": "p%d" % len(self.pids)})
        if r < 0.40:
            return ("kmalloc", "POST", base + "/kmalloc",
                    {"size": self.rng.choice([8, 100, 512, 3000, 9000])})
        if r < 0.55 and self.kmallocs:
            va = self.kmallocs.pop(self.rng.randrange(len(self.kmallocs)))
            return "kfree", "POST", base + "/kfree", {"va": va}
        if r < 0.70:
            return ("vmalloc", "POST", base + "/vmalloc",
                    {"size": self.rng.choice([4096, 10000, 65536])})
        if r < 0.85 and self.pids:
            pid = self.rng.choice(self.pids)
            return ("mmap", "POST", "%s/processes/%d/mmap" % (base, pid),
                    {"length": self.rng.choice([4096, 8192, 65536]),
                     "prot": self.rng.choice(["rw-", "r--", "r-x"])})
        if self.pids:
            return ("switch", "POST", base + "/cpus/0/switch",
                    {"pid": self.rng.choice(self.pids + [0])})
        return ("kmalloc", "POST", base + "/kmalloc", {"size": 64})

    def run(self):
        c = Client(self.port)
        try:
            while self.max_ops is None or len(self.acks) < self.max_ops:
                op, method, path, body = self.pick()
                self.inflight = (op, body)
                try:
                    r = c.call(method, path, body)
                except (OSError, http.client.HTTPException):
                    return          # the daemon is gone
                self.inflight = None
                if 200 <= r.status < 300 and r.json is not None:
                    self.acks.append((r.json["version"], op, body, r.json))
                    if op == "kmalloc" and r.status == 201:
                        self.kmallocs.append(r.json["va"])
                    elif op == "process_create":
                        self.pids.append(r.json["pid"])
                    self.counter.add()
                elif not (r.status == 409 and r.json and
                          r.json.get("code") == "out_of_memory"):
                    self.errors.append((op, body, r))
                    if op == "kfree":
                        self.kmallocs.append(body["va"])
        finally:
            c.close()


class Counter:
    """Answers received, and an event when the count reaches a target."""

    def __init__(self, target):
        self.lock = threading.Lock()
        self.n = 0
        self.target = target
        self.reached = threading.Event()

    def add(self):
        with self.lock:
            self.n += 1
            if self.n >= self.target:
                self.reached.set()


class Base(vmlab.DaemonsTest):

    TMP_PREFIX = "vmlab-crash-"

    def start(self, db, fault=None, *args):
        """A daemon on db: the faulty build when fault is not None."""
        d = Daemon(db, VMLABD_FAULT if fault is not None else None, fault,
                   *args)
        self.daemons.append(d)
        return d.start()

    def kill(self, d, power_loss):
        """SIGKILL, or SIGUSR1 to the faulty daemon: a power loss."""
        if power_loss:
            d.proc.send_signal(signal.SIGUSR1)
            d.proc.wait(timeout=30)
            self.assertEqual(d.proc.returncode, POWER_LOSS_STATUS,
                             d.stderr())
        else:
            d.proc.kill()
            d.proc.wait(timeout=30)
            self.assertEqual(d.proc.returncode, -signal.SIGKILL)
        self.assertIsNone(vmlab.SANITIZER.search(d.stderr()), d.stderr())

    def call(self, c, method, path, body=None, status=None):
        """A request checked against docs/openapi.json."""
        r = c.call(method, path, body)
        err = vmlab.check_response(method, path, r)
        if err:
            self.fail("response outside docs/openapi.json: " + err)
        if status is not None:
            self.assertEqual(r.status, status, (method, path, body, r))
        return r

    def ok(self, c, method, path, body=None):
        r = c.call(method, path, body)
        self.assertTrue(200 <= r.status < 300, (method, path, body, r))
        return r.json

    def refused(self, c, method, path, body=None):
        """A request that must be refused 503 service_unavailable, as an
        RFC 9457 problem (SPEC 2.1)."""
        r = self.call(c, method, path, body, status=503)
        self.assertEqual(r.headers.get("content-type"),
                         "application/problem+json", r)
        for k in ("type", "title", "status", "detail", "code"):
            self.assertIn(k, r.json, r)
        self.assertEqual(r.json["status"], 503, r)
        self.assertEqual(r.json["code"], "service_unavailable", r)
        self.assertEqual(r.json["type"], "/problems/service_unavailable", r)
        return r.json

    def state(self, c, mid):
        """(version, digest) of a machine."""
        m = self.ok(c, "GET", "/v1/machines/" + mid)
        return m["version"], m["digest"]

    def history(self, c, mid):
        ops, token = [], None
        while True:
            q = "?page_size=1000" + ("&page_token=" + token if token else "")
            h = self.ok(c, "GET", "/v1/machines/%s/history%s" % (mid, q))
            ops += h["operations"]
            token = h["next_page_token"]
            if not token:
                return ops

    def assertAcked(self, hist, mid, acks, why=""):
        """Every acknowledged (version, op, body, answer) is in the
        history at its version with the same op, args and result."""
        by_version = {o["version"]: o for o in hist}
        for version, op, body, ans in acks:
            h = by_version.get(version)
            self.assertIsNotNone(h, "%s: acknowledged %s at version %d is "
                                 "not in the history%s" % (mid, op, version,
                                                           why))
            self.assertEqual(h["op"], op, (mid, version, h, body, why))
            for k, v in (body or {}).items():
                self.assertIn(k, h["args"], (mid, version, h, body, why))
                self.assertEqual(norm(h["args"][k]), norm(v),
                                 (mid, version, k, h, body, why))
            for k, v in h["result"].items():
                self.assertIn(k, ans, (mid, version, h, ans, why))
                self.assertEqual(norm(ans[k]), norm(v),
                                 (mid, version, k, h, ans, why))

    def prepare(self, db, n, tag="m"):
        """A database with n machines, each with a process and a few
        operations, stopped cleanly; returns the ids."""
        d = self.start(db)
        c = Client(d.port)
        ids = []
        for i in range(n):
            mid = "%s%d" % (tag, i)
            self.ok(c, "POST", "/v1/machines",
                    dict(MACHINE_KINDS[i % len(MACHINE_KINDS)], id=mid))
            self.ok(c, "POST", "/v1/machines/%s/processes" % mid,
                    {"name": "init"})
            self.ok(c, "POST", "/v1/machines/%s/kmalloc" % mid,
                    {"size": 200})
            self.ok(c, "POST", "/v1/machines/%s/cpus/0/switch" % mid,
                    {"pid": 1})
            ids.append(mid)
        c.close()
        self.stop(d)
        return ids


class CrashRounds(Base):
    """kill -9 and power loss in the middle of concurrent mutations."""

    def setUp(self):
        super().setUp()
        self.twin = self.start(self.path("twin.db"), None, "--durability",
                               "normal")
        self.known = {}     # machine id -> digest after its round
        self.undone = []    # unsynced writes each power loss took back

    def tearDown(self):
        if self.twin.proc.poll() is None:
            self.stop(self.twin)
        super().tearDown()

    def replay(self, mid, fields, hist, out):
        """Creates mid on the twin and applies hist; out[mid] gets the
        final digest, or a failure message."""
        c = Client(self.twin.port)
        try:
            r = c.call("POST", "/v1/machines", dict(fields, id=mid))
            if r.status != 201:
                out[mid] = "twin create: %r" % r
                return
            for h in hist:
                method, path, body = replay_request(mid, h)
                r = c.call(method, path, body)
                if not 200 <= r.status < 300:
                    out[mid] = "twin %s at version %d: %r" % (
                        h["op"], h["version"], r)
                    return
                if r.json["version"] != h["version"]:
                    out[mid] = "twin %s: version %d, history %d" % (
                        h["op"], r.json["version"], h["version"])
                    return
                for k, v in h["result"].items():
                    if norm(r.json.get(k)) != norm(v):
                        out[mid] = ("twin %s at version %d answered %s=%r, "
                                    "the history %r" % (h["op"], h["version"],
                                                        k, r.json.get(k), v))
                        return
            r = c.call("GET", "/v1/machines/" + mid)
            out[mid] = ("digest", r.json["digest"], r.json["version"])
        finally:
            c.close()

    def round(self, db, n, rnd, clients, power_loss, faulty, args=(),
              target=None, delay=None):
        """One round: n is its number, args the daemon's options, target
        the answers to wait for (else random); returns the answers."""
        kind = "power loss" if power_loss else "kill -9"
        # The faulty daemon's fsync is slow enough that the loss usually
        # comes while a transaction is written and not yet synced.
        delay = delay or rnd.choice([1, 3, 8])
        spec = "powerloss,sync_delay_ms=%d" % delay if faulty else None
        d = self.start(db, spec, *args)
        c = Client(d.port)
        fields = {}
        for i in range(clients):
            mid = "r%dm%d" % (n, i)
            fields[mid] = dict(rnd.choice(MACHINE_KINDS),
                               seed=str(rnd.randrange(1 << 32)))
            self.ok(c, "POST", "/v1/machines", dict(fields[mid], id=mid))
        c.close()
        target = target or rnd.randint(1, 12 * clients)
        counter = Counter(target)
        workers = [Worker(d.port, mid, random.Random(rnd.random()), counter)
                   for mid in fields]
        for w in workers:
            w.start()
        self.assertTrue(counter.reached.wait(60),
                        "round %d: %d answers of %d in 60 s" % (
                            n, counter.n, target))
        self.kill(d, power_loss)
        if power_loss:
            m = re.search(r"power loss after \d+ syncs: (\d+) unsynced",
                          d.stderr())
            self.assertIsNotNone(m, d.stderr())
            self.undone.append(int(m.group(1)))
        for w in workers:
            w.join(60)
            self.assertFalse(w.is_alive())
        why = " (round %d, %s, %s %s, seed %d, after %d answers)" % (
            n, kind, spec, " ".join(args), SEED, target)
        for w in workers:
            self.assertEqual(w.errors, [], w.mid + why)

        # A normal vmlabd on the same database.
        d = self.start(db)
        c = Client(d.port)
        hists, out = {}, {}
        for w in workers:
            r = c.call("GET", "/v1/machines/" + w.mid)
            self.assertEqual(r.status, 200, "%s: its acknowledged creation "
                             "is lost%s: %r" % (w.mid, why, r))
            version = r.json["version"]
            hist = self.history(c, w.mid)
            hists[w.mid] = hist
            versions = [h["version"] for h in hist]
            # Nothing half-applied: the log is whole and ends where the
            # machine is.
            self.assertEqual(versions, list(range(1, version + 1)),
                             w.mid + why)
            acked = [a[0] for a in w.acks]
            self.assertEqual(acked, list(range(1, len(acked) + 1)),
                             "%s: the answers' versions%s" % (w.mid, why))
            last = acked[-1] if acked else 0
            self.assertGreaterEqual(version, last,
                                    "%s: acknowledged operations lost%s" % (
                                        w.mid, why))
            pending = 1 if w.inflight else 0
            self.assertLessEqual(version, last + pending,
                                 "%s: versions beyond what was sent%s" % (
                                     w.mid, why))
            if version > last:
                # The request left unanswered, applied and durable.
                op, body = w.inflight
                self.assertEqual(hist[-1]["op"], op, w.mid + why)
                for k, v in body.items():
                    self.assertEqual(norm(hist[-1]["args"].get(k)), norm(v),
                                     (w.mid, hist[-1], body, why))
            self.assertAcked(hist, w.mid, w.acks, why)
        # Each machine's digest is what its history gives on a twin.
        threads = [threading.Thread(target=self.replay,
                                    args=(m, fields[m], hists[m], out))
                   for m in fields]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for mid in fields:
            version, digest = self.state(c, mid)
            self.assertEqual(out.get(mid), ("digest", digest, version),
                             mid + why)
            self.known[mid] = (version, digest)
        # The machines of earlier rounds are as they were.
        for mid, vd in self.known.items():
            self.assertEqual(self.state(c, mid), vd, mid + why)
        c.close()
        self.stop(d)
        return counter.n

    def test_crash_rounds(self):
        """20 rounds (x VMLAB_TEST_SCALE) alternating kill -9 (of the
        normal and of the faulty daemon) and power loss, 8 clients on 8
        machines; one power-loss round with 16 clients, one long enough
        (one transaction per answer) that the WAL passes SQLite's
        checkpoint and is written over from its start, two kill -9 rounds
        with --group-commit off. Every acknowledged mutation survives,
        nothing half-applied, digests as replayed."""
        rnd = random.Random(SEED)
        db = self.path("vmlab.db")
        rounds = 20 * SCALE
        answers = 0
        for n in range(rounds):
            power_loss = n % 2 == 1
            faulty = power_loss or n % 4 == 2
            if n == 1:
                answers += self.round(db, n, rnd, 16, True, True,
                                      target=rnd.randint(32, 240))
            elif n == 3:
                answers += self.round(db, n, rnd, 8, True, True,
                                      ("--group-commit", "off"), 1500, 1)
            elif n % 8 == 0 and n:
                answers += self.round(db, n, rnd, 8, False, False,
                                      ("--group-commit", "off"))
            else:
                answers += self.round(db, n, rnd, 8, power_loss, faulty)
        self.assertGreater(answers, rounds)
        # The power losses took back writes that were not synced: they
        # did hit transactions in the middle.
        self.assertGreater(sum(1 for u in self.undone if u), 0, self.undone)


class Faults(Base):
    """A database that cannot be written: 503, and nothing changes."""

    def mutations(self, mid):
        """One of each kind of mutation on a prepared machine (pid 1)."""
        b = "/v1/machines/" + mid
        return [("POST", b + "/kmalloc", {"size": 100}),
                ("POST", b + "/vmalloc", {"size": 8192}),
                ("POST", b + "/processes", {"name": "x"}),
                ("POST", b + "/processes/1/mmap", {"length": 4096}),
                ("POST", b + "/cpus/0/switch", {"pid": 0}),
                ("POST", b + "/pages", {"order": 1}),
                ("DELETE", b + "/processes/1", None)]

    def reads(self, c, mid):
        b = "/v1/machines/" + mid
        for path in (b, b + "/layout", b + "/zones", b + "/processes",
                     b + "/processes/1", b + "/cpus", b + "/slabs",
                     b + "/history", "/v1/machines", "/healthz"):
            self.call(c, "GET", path, status=200)
        self.call(c, "POST", b + "/translate",
                  {"va": "0x400000", "pid": 1, "mode": "user",
                   "access": "read"}, status=200)

    def refused_unchanged(self, c, mid, method, path, body):
        before = self.state(c, mid)
        hist = self.history(c, mid)
        self.refused(c, method, path, body)
        self.assertEqual(self.state(c, mid), before, (method, path, body))
        self.assertEqual(self.history(c, mid), hist, (method, path, body))

    def test_readonly(self):
        """readonly: every kind of mutation of a machine is 503 and
        changes nothing; reads work; all is as it was after a restart."""
        db = self.path("vmlab.db")
        ids = self.prepare(db, 4)
        d = self.start(db)
        c = Client(d.port)
        states = {m: self.state(c, m) for m in ids}
        c.close()
        self.stop(d)
        d = self.start(db, "readonly")
        c = Client(d.port)
        for mid in ids:
            for method, path, body in self.mutations(mid):
                self.refused_unchanged(c, mid, method, path, body)
            self.reads(c, mid)
        for mid in ids:
            self.assertEqual(self.state(c, mid), states[mid])
        c.close()
        self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        for mid in ids:
            self.assertEqual(self.state(c, mid), states[mid])
        c.close()
        self.stop(d)

    def test_readonly_machines(self):
        """readonly: creating, cloning and deleting a machine are 503
        problems (SPEC 2.1, documented for these operations too) and
        change nothing."""
        db = self.path("vmlab.db")
        ids = self.prepare(db, 2)
        d = self.start(db, "readonly")
        c = Client(d.port)
        states = {m: self.state(c, m) for m in ids}
        undocumented = []
        for method, path, body in (
                ("POST", "/v1/machines", {"id": "new"}),
                ("POST", "/v1/machines/%s/clone" % ids[0], {"id": "new"}),
                ("DELETE", "/v1/machines/" + ids[1], None)):
            r = c.call(method, path, body)
            self.assertEqual(r.status, 503, (method, path, r))
            self.assertEqual(r.headers.get("content-type"),
                             "application/problem+json", r)
            self.assertEqual(r.json["code"], "service_unavailable", r)
            self.assertEqual(r.json["type"], "/problems/service_unavailable")
            err = vmlab.check_response(method, path, r)
            if err:
                undocumented.append(err)
        self.call(c, "GET", "/v1/machines/new", status=404)
        for mid in ids:
            self.assertEqual(self.state(c, mid), states[mid])
        c.close()
        self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        self.call(c, "GET", "/v1/machines/new", status=404)
        for mid in ids:
            self.assertEqual(self.state(c, mid), states[mid])
        c.close()
        self.stop(d)
        self.assertEqual(undocumented, [])

    def one_shot(self, spec, kill, args=()):
        """A one-shot fault (ioerr_write=N, ioerr_sync=N): mutations one
        after another on the machines until one is refused; it changed
        nothing and the next one succeeds. Then a stop (clean, or
        kill -9) and a restart: the acknowledged ones are all there, the
        refused one is not."""
        db = self.path("vmlab-%s-%d-%d.db" % (spec.replace("=", "-"), kill,
                                              len(args)))
        ids = self.prepare(db, 2)
        d = self.start(db, spec, *args)
        c = Client(d.port)
        acks = {m: [] for m in ids}
        refused = 0
        for i in range(40):
            mid = ids[i % 2]
            before = self.state(c, mid)
            body = {"size": 64 + i}
            r = self.call(c, "POST", "/v1/machines/%s/kmalloc" % mid, body)
            if r.status == 503:
                refused += 1
                self.assertEqual(r.json["code"], "service_unavailable", r)
                self.assertEqual(self.state(c, mid), before,
                                 "%s: a refused kmalloc changed the machine"
                                 % spec)
                self.reads(c, mid)
                # The next mutation succeeds (the fault was one-shot).
                r = self.call(c, "POST", "/v1/machines/%s/kmalloc" % mid,
                              body)
                self.assertEqual(r.status, 201, "%s: after the fault: %r" %
                                 (spec, r))
            else:
                self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json["version"], before[0] + 1, r)
            acks[mid].append((r.json["version"], "kmalloc", body, r.json))
            if refused and i >= 6:
                break
        self.assertEqual(refused, 1, spec)
        final = {m: self.state(c, m) for m in ids}
        c.close()
        if kill:
            self.kill(d, False)
        else:
            self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        for mid in ids:
            self.assertEqual(self.state(c, mid), final[mid], spec)
            self.assertAcked(self.history(c, mid), mid, acks[mid],
                             " (%s)" % spec)
        c.close()
        self.stop(d)

    def test_ioerr_write(self):
        """ioerr_write=N for several N (the WAL header, a frame header, a
        page): the mutation whose commit hits it is 503, unchanged; the
        next succeeds; all survives a clean stop and a kill -9."""
        for n in (1, 2, 3, 4, 7):
            for kill in (False, True):
                with self.subTest(n=n, kill=kill):
                    self.one_shot("ioerr_write=%d" % n, kill)

    def test_ioerr_sync(self):
        """ioerr_sync=N: the commit whose fsync fails is 503, unchanged;
        the next succeeds; all survives a clean stop and a kill -9."""
        for n in (1, 2, 3):
            for kill in (False, True):
                with self.subTest(n=n, kill=kill):
                    self.one_shot("ioerr_sync=%d" % n, kill)

    def test_one_shot_without_group_commit(self):
        """The same with --group-commit off (each mutation commits in its
        own transaction, in the request's thread)."""
        for spec in ("ioerr_write=4", "ioerr_write=5", "ioerr_sync=2",
                     "ioerr_sync=3"):
            with self.subTest(spec=spec):
                self.one_shot(spec, True, ("--group-commit", "off"))

    def test_refused_then_crash(self):
        """A mutation refused 503 because its fsync failed, then kill -9
        (or a clean stop) before any other write: after the restart the
        machine has the digest and version it had, the refused operation
        is not back (from the WAL, where its frames were written)."""
        for n, kill, args in ((1, True, ()), (2, True, ()), (3, True, ()),
                              (4, True, ()), (2, False, ()), (3, False, ()),
                              (3, True, ("--group-commit", "off"))):
            with self.subTest(n=n, kill=kill, args=args):
                db = self.path("vmlab-%d-%d-%d.db" % (n, kill, len(args)))
                mid = self.prepare(db, 1)[0]
                d = self.start(db, "ioerr_sync=%d" % n, *args)
                c = Client(d.port)
                acks = []
                for i in range(n + 1):
                    before = self.state(c, mid)
                    body = {"size": 32 + i}
                    r = self.call(c, "POST", "/v1/machines/%s/kmalloc" % mid,
                                  body)
                    if r.status == 503:
                        break
                    self.assertEqual(r.status, 201, r)
                    acks.append((r.json["version"], "kmalloc", body, r.json))
                self.assertEqual(r.status, 503, "ioerr_sync=%d" % n)
                self.assertEqual(self.state(c, mid), before)
                c.close()
                if kill:
                    self.kill(d, False)
                else:
                    self.stop(d)
                d = self.start(db)
                c = Client(d.port)
                hist = self.history(c, mid)
                self.assertEqual(
                    self.state(c, mid), before,
                    "ioerr_sync=%d %s, then %s: the refused kmalloc %r is "
                    "back: %r" % (n, " ".join(args),
                                  "kill -9" if kill else "a clean stop",
                                  body, hist[-1]))
                self.assertAcked(hist, mid, acks)
                c.close()
                self.stop(d)

    def test_disk_full(self):
        """full_after=BYTES: mutations succeed until the disk is full,
        then every one is 503 and changes nothing; reads work; what was
        acknowledged survives."""
        db = self.path("vmlab.db")
        ids = self.prepare(db, 3)
        d = self.start(db, "full_after=60000")
        c = Client(d.port)
        acks = {m: [] for m in ids}
        full = False
        for i in range(30):
            mid = ids[i % 3]
            before = self.state(c, mid)
            hist = self.history(c, mid)
            body = {"size": 4096 * (1 + i % 4)}
            r = self.call(c, "POST", "/v1/machines/%s/vmalloc" % mid, body)
            if full or r.status == 503:
                full = True
                self.assertEqual(r.status, 503, "the disk stays full: %r" % r)
                self.assertEqual(r.json["code"], "service_unavailable", r)
                self.assertEqual(self.state(c, mid), before)
                self.assertEqual(self.history(c, mid), hist)
            else:
                self.assertEqual(r.status, 201, r)
                acks[mid].append((r.json["version"], "vmalloc", body,
                                  r.json))
        self.assertTrue(full, "60000 bytes and never full")
        self.assertTrue(any(acks.values()), "full before any write")
        for mid in ids:
            self.reads(c, mid)
            self.refused_unchanged(c, mid, "POST",
                                   "/v1/machines/%s/processes" % mid,
                                   {"name": "late"})
        final = {m: self.state(c, m) for m in ids}
        c.close()
        self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        for mid in ids:
            self.assertEqual(self.state(c, mid), final[mid])
            self.assertAcked(self.history(c, mid), mid, acks[mid])
        c.close()
        self.stop(d)

    def group(self, spec, clients=8, per_client=4):
        """One mutation (the blocker, on a machine of its own) holds the
        committer in a slow fsync while clients on machines of their own
        queue theirs: the next transaction holds all of them, and spec
        makes it fail. Every member answered 503 is unchanged (each client
        reads its machine before and after), and each client's next
        mutation succeeds."""
        db = self.path("vmlab-%s.db" % re.sub(r"[=,]", "-", spec))
        ids = self.prepare(db, clients + 1)
        blocker_id, ids = ids[-1], ids[:-1]
        d = self.start(db, spec)
        results, blocker = {}, {}
        lock = threading.Lock()

        def block():
            c = Client(d.port)
            blocker["r"] = c.call("POST", "/v1/machines/%s/kmalloc" %
                                  blocker_id, {"size": 100})
            c.close()

        def client(mid, rng):
            c = Client(d.port)
            log = []
            for i in range(per_client):
                before = self.ok(c, "GET", "/v1/machines/" + mid)
                body = {"size": rng.choice([32, 500, 5000])}
                r = c.call("POST", "/v1/machines/%s/kmalloc" % mid, body)
                after = self.ok(c, "GET", "/v1/machines/" + mid)
                log.append((body, r, before, after))
            c.close()
            with lock:
                results[mid] = log

        first = threading.Thread(target=block)
        first.start()
        time.sleep(0.05)
        threads = [threading.Thread(target=client,
                                    args=(m, random.Random(SEED + i)))
                   for i, m in enumerate(ids)]
        for t in threads:
            t.start()
        for t in threads + [first]:
            t.join(120)
        self.assertEqual(blocker["r"].status, 201,
                         "%s: the fault hit the first transaction, not the "
                         "group after it: %r" % (spec, blocker["r"]))
        self.assertEqual(len(results), clients)
        refused = []
        acks = {m: [] for m in ids}
        for mid, log in sorted(results.items()):
            for i, (body, r, before, after) in enumerate(log):
                if r.status == 503:
                    refused.append(mid)
                    self.assertEqual(vmlab.check_response(
                        "POST", "/v1/machines/%s/kmalloc" % mid, r), None)
                    self.assertEqual(r.json["code"], "service_unavailable")
                    self.assertEqual(r.headers.get("content-type"),
                                     "application/problem+json")
                    self.assertEqual((after["version"], after["digest"]),
                                     (before["version"], before["digest"]),
                                     "%s: refused in a failed group, "
                                     "changed (%s)" % (mid, spec))
                    self.assertLess(i, len(log) - 1, "%s: the last" % mid)
                else:
                    self.assertEqual(r.status, 201, (mid, r))
                    self.assertEqual(r.json["version"],
                                     before["version"] + 1, (mid, r))
                    self.assertEqual(after["version"], r.json["version"])
                    acks[mid].append((r.json["version"], "kmalloc", body,
                                      r.json))
        # One one-shot fault: one group refused, of several members.
        self.assertGreaterEqual(len(refused), clients // 2,
                                (spec, refused))
        self.assertEqual(len(refused), len(set(refused)), refused)
        c = Client(d.port)
        final = {m: self.state(c, m) for m in ids}
        c.close()
        self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        for mid in ids:
            self.assertEqual(self.state(c, mid), final[mid], spec)
            self.assertAcked(self.history(c, mid), mid, acks[mid])
        c.close()
        self.stop(d)

    def test_group_fault_sync(self):
        """A group commit whose fsync fails: every member 503, unchanged.
        (After a clean stop the WAL is new: the first commit syncs its
        header, then itself; the third sync is the group's.)"""
        self.group("ioerr_sync=3,sync_delay_ms=150")

    def test_group_fault_write(self):
        """A group commit whose WAL write fails: every member 503,
        unchanged. (The first commit writes the WAL header and one frame
        in three writes; the fourth is the group's.)"""
        self.group("ioerr_write=4,sync_delay_ms=150")

    def test_group_fault_full(self):
        """The disk fills up under groups: every member refused is 503 and
        unchanged; a full disk stays full (a client refused once is
        refused again); what was acknowledged survives a restart."""
        db = self.path("full.db")
        ids = self.prepare(db, 8)
        d = self.start(db, "full_after=30000,sync_delay_ms=20")
        out = {}

        def client(mid):
            c = Client(d.port)
            log = []
            for i in range(8):
                before = self.state(c, mid)
                body = {"size": 2000 + i}
                r = c.call("POST", "/v1/machines/%s/kmalloc" % mid, body)
                log.append((body, r, before, self.state(c, mid)))
            c.close()
            out[mid] = log

        threads = [threading.Thread(target=client, args=(m,)) for m in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(out), 8)
        refused = 0
        acks = {m: [] for m in ids}
        for mid, log in out.items():
            seen_full = False
            for body, r, before, after in log:
                if r.status == 503:
                    refused += 1
                    seen_full = True
                    self.assertEqual(r.json["code"], "service_unavailable")
                    self.assertEqual(after, before, mid)
                else:
                    self.assertFalse(seen_full, "%s: written after the "
                                     "disk was full: %r" % (mid, r))
                    self.assertEqual(r.status, 201, r)
                    self.assertEqual(after[0], before[0] + 1)
                    acks[mid].append((after[0], "kmalloc", body, r.json))
        self.assertGreaterEqual(refused, 8)
        self.assertGreater(sum(map(len, acks.values())), 0)
        c = Client(d.port)
        final = {m: self.state(c, m) for m in ids}
        c.close()
        self.stop(d)
        d = self.start(db)
        c = Client(d.port)
        for mid in ids:
            self.assertEqual(self.state(c, mid), final[mid])
            self.assertAcked(self.history(c, mid), mid, acks[mid])
        c.close()
        self.stop(d)


class GroupCommit(Base):
    """Many clients, few fsyncs."""

    def test_group_commit(self):
        """16 clients on 16 machines: transactions (/metrics) and the
        VFS's syncs stay well below the acknowledgements. Each fsync
        takes 5 ms more, as a real disk's flush may: over a flush of
        microseconds, groups stay small whatever the daemon does. (That no
        answer precedes its fsync is what the power-loss rounds show.)"""
        db = self.path("vmlab.db")
        d = self.start(db, "sync_delay_ms=5")
        c = Client(d.port)
        ids = ["g%d" % i for i in range(16)]
        for mid in ids:
            self.ok(c, "POST", "/v1/machines",
                    {"id": mid, "memory": "128MiB"})
        metrics = self.call(c, "GET", "/metrics", status=200).body
        t0 = int(re.search(r"^vmlab_db_transactions_total (\d+)$", metrics,
                           re.M).group(1))
        counter = Counter(1 << 30)
        rng = random.Random(SEED)
        workers = [Worker(d.port, m, random.Random(rng.random()), counter)
                   for m in ids]
        for w in workers:
            w.max_ops = 40 * SCALE
            w.start()
        for w in workers:
            w.join(120)
            self.assertEqual(w.errors, [], w.mid)
        acks = sum(len(w.acks) for w in workers)
        self.assertEqual(acks, 16 * 40 * SCALE)
        metrics = self.call(c, "GET", "/metrics", status=200).body
        t1 = int(re.search(r"^vmlab_db_transactions_total (\d+)$", metrics,
                           re.M).group(1))
        durable = int(re.search(r"^vmlab_durable_operations_total (\d+)$",
                                metrics, re.M).group(1))
        c.close()
        err = self.stop(d)
        syncs = int(re.search(r"vmlabd: (\d+) syncs", err).group(1))
        self.assertEqual(durable, acks)
        self.assertLess(t1 - t0, 0.7 * acks,
                        "%d transactions for %d answers" % (t1 - t0, acks))
        # The syncs of the creates and of the clean stop come on top.
        self.assertLess(syncs, 0.7 * acks + 16 + 8,
                        "%d syncs for %d answers" % (syncs, acks))
        self.assertGreater(syncs, 0)
        print("group commit: %d answers, %d transactions, %d syncs" % (
            acks, t1 - t0, syncs))

    def test_durable_count(self):
        """vmlab_durable_operations_total counts every acknowledged
        mutation, with group commit on or off, by the time it is
        answered."""
        for args in ((), ("--group-commit", "off")):
            with self.subTest(args=args):
                d = self.start(self.path("count-%d.db" % len(args)), None,
                               *args)
                c = Client(d.port)
                self.ok(c, "POST", "/v1/machines", {"id": "n"})
                for i in range(5):
                    self.ok(c, "POST", "/v1/machines/n/kmalloc",
                            {"size": 32 + i})
                    metrics = self.call(c, "GET", "/metrics",
                                        status=200).body
                    self.assertEqual(int(re.search(
                        r"^vmlab_durable_operations_total (\d+)$", metrics,
                        re.M).group(1)), i + 1, args)
                c.close()
                self.stop(d)


if __name__ == "__main__":
    vmlab.main()
