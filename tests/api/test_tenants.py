"""test_tenants.py - tenants, tokens, quotas: SPEC part 3, shared sandboxes.

What a class's daemon promises besides who may see what (that is
test_isolation.py):

- tokens are kept only as hashes: after issuing and rotating tokens, the
  database and its WAL hold none of them in any usual encoding;
- quotas hold at their edges (machines, memory, processes per machine,
  clones, the request rate with 429 and Retry-After), and a refused
  request changes nothing;
- a rotated token stops working at once; a deleted tenant takes its
  token, its machines and the shares granted to it along, and its name
  can be used again with an empty namespace;
- tenants, roles, quotas, shares and tokens survive a restart (SIGTERM
  and kill -9), the admin's token file too;
- vmlabd refuses a non-loopback address without --auth on, and checks
  the admin's token file;
- history records the tenant that applied each operation;
- a schema-1 database opened with --auth on keeps its machines in the
  namespace "local";
- the class template flow: the admin shares a machine with "*", students
  clone it under the same id, each into a namespace of its own.

Each test class runs its own vmlabd on 127.0.0.1 (port 0); the one address
that is not loopback appears only in runs that must refuse to start.
"""

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

import vmlab

MiB = 1 << 20
FIXTURES = os.path.join(vmlab.SRCDIR, "tests", "fixtures")
TOKEN = re.compile(r"^vmlab_[A-Za-z0-9_-]{43}$")
# Tenants of these tests are not here to meet the rate limit (only
# RateLimit is): a rate that a run of curl never reaches.
FAST = 100000


def run_vmlabd(*args, timeout=10):
    """vmlabd with args, expected to exit by itself: (status, stderr,
    seconds it took)."""
    t0 = time.monotonic()
    r = subprocess.run([vmlab.VMLABD] + list(args), capture_output=True,
                       text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return r.returncode, r.stderr, time.monotonic() - t0


class AuthTest(vmlab.DaemonTest):
    """A daemon with --auth on; requests carry the admin's token unless
    told otherwise."""

    daemon_args = ("--auth", "on")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.daemon.admin_token()

    def tenant(self, name, role="tenant", **quota):
        """Creates a tenant (quota fields as given, rate FAST unless
        given) and returns its token."""
        quota.setdefault("rate", FAST)
        t = self.ok("POST", "/v1/tenants",
                    {"name": name, "role": role, "quota": quota},
                    status=201)
        self.assertEqual((t["name"], t["role"]), (name, role))
        self.assertRegex(t["token"], TOKEN)
        return t["token"]

    def whoami(self, token):
        return self.ok("GET", "/v1/whoami", token=token)

    def share_with_all(self, mid, token=None):
        """Shares machine mid read with "*" for the rest of this test (the
        share is revoked after it, so that other tests' lists do not see
        the machine)."""
        self.ok("POST", "/v1/machines/%s/shares" % mid,
                {"tenant": "*", "access": "read"}, status=201, token=token)
        self.addCleanup(self.ok, "DELETE", "/v1/machines/%s/shares/*" % mid,
                        status=204, token=token)

    def ids(self, token, query=""):
        return [m["id"] for m in
                self.ok("GET", "/v1/machines" + query, token=token)["items"]]

    def state(self, name, token=None):
        m = self.ok("GET", "/v1/machines/" + name, token=token)
        return m["version"], m["digest"]

    def unauthorized(self, token, path="/v1/whoami"):
        """token is refused: 401 unauthorized, with WWW-Authenticate."""
        r = self.req("GET", path, token=token)
        self.assertEqual((r.status, r.json["code"]), (401, "unauthorized"),
                         r)
        self.assertEqual(r.headers.get("www-authenticate"),
                         'Bearer realm="vmlab", error="invalid_token"')


# ---- tokens at rest ----

def encodings(token):
    """Every form of token to look for in a file: the text, its base64url
    part, the 32 raw bytes it encodes, their hex (lower, upper) and
    base64 (standard and url, with and without padding); the same for the
    text's bytes."""
    assert TOKEN.match(token), token
    b64 = token[len("vmlab_"):]
    raw = base64.urlsafe_b64decode(b64 + "=")
    assert len(raw) == 32
    forms = {"text": token.encode(), "base64url part": b64.encode()}
    for what, data in (("raw", raw), ("text", token.encode())):
        forms[what + " bytes"] = data
        forms[what + " hex"] = data.hex().encode()
        forms[what + " HEX"] = data.hex().upper().encode()
        for kind, enc in (("b64", base64.b64encode),
                          ("b64url", base64.urlsafe_b64encode)):
            e = enc(data)
            forms["%s %s" % (what, kind)] = e
            forms["%s %s unpadded" % (what, kind)] = e.rstrip(b"=")
    return forms


def pieces(value, width=16, stride=8):
    """value and its windows of width bytes every stride bytes: any part
    of value at least width + stride - 1 bytes long contains one."""
    if len(value) <= width:
        return [value]
    return [value] + [value[i:i + width]
                      for i in range(0, len(value) - width + 1, stride)]


def scan(paths, forms):
    """The names of forms of which the files hold a piece (pieces())."""
    found = set()
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        found |= {name for name, v in forms.items()
                  if any(x in data for x in pieces(v))}
    return sorted(found)


class TokensAtRest(AuthTest):
    """Only BLAKE2b-256 hashes of tokens reach the database."""

    def db_files(self):
        db = self.daemon.db
        return [p for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)]

    def test_database_holds_no_token(self):
        """After creating tenants and rotating tokens, neither the
        database, its WAL nor its shared memory holds any token (issued
        or revoked, the admin's too) in raw, hex or base64 form, nor a
        piece of one 23 bytes long, while vmlabd runs and after it
        stops. The scan itself is shown to work: the hash of each current
        token, which is what is stored, is found."""
        issued, current = [self.token], {}
        for i, role in enumerate(("tenant", "tenant", "grader", "tenant",
                                  "tenant", "grader")):
            name = "rest%d" % i
            current[name] = self.tenant(name, role)
            issued.append(current[name])
        for name in ("rest0", "rest2", "rest3", "rest3"):
            t = self.ok("POST", "/v1/tenants/%s/tokens" % name, status=201)
            self.unauthorized(current[name])
            current[name] = t["token"]
            issued.append(t["token"])
        for name, tok in current.items():
            self.assertEqual(self.whoami(tok)["tenant"], name)
        # While it runs: the writes sit in the WAL (no checkpoint yet).
        files = self.db_files()
        self.assertIn(self.daemon.db + "-wal", files)
        self.assertGreater(os.path.getsize(self.daemon.db + "-wal"), 0)
        for when in ("running", "stopped"):
            if when == "stopped":
                status, err = self.daemon.stop()
                self.assertEqual(status, 0, err)
                files = self.db_files()
            for tok in issued:
                self.assertEqual(scan(files, encodings(tok)), [],
                                 "%s: a token in %s" % (when, files))
            # The positive control: what is stored is found.
            for name, tok in current.items():
                digest = hashlib.blake2b(tok.encode(), digest_size=32)
                self.assertEqual(scan(files, {"hash": digest.digest(),
                                              "name": name.encode()}),
                                 ["hash", "name"], (when, name))

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()   # stopped and checked by the test already


# ---- quotas ----

class Quotas(AuthTest):
    """Quotas at their edges; a refused request changes nothing."""

    def create(self, token, mid, memory="32MiB"):
        return self.ok("POST", "/v1/machines",
                       {"id": mid, "memory": memory, "churn": 0},
                       status=201, token=token)

    def usage(self, token):
        return self.whoami(token)["usage"]

    def refused(self, token, method, path, body=None):
        """A request refused 429 quota_exceeded that changes neither the
        caller's list nor its usage."""
        before = (self.ids(token), self.usage(token))
        self.problem(method, path, body, status=429, code="quota_exceeded",
                     token=token)
        self.assertEqual((self.ids(token), self.usage(token)), before)

    def test_machines(self):
        """machines = 3: three creations pass, the fourth is 429
        quota_exceeded; after a delete, one more passes."""
        t = self.tenant("qm", machines=3)
        for i in range(3):
            self.create(t, "m%d" % i)
        self.assertEqual(self.usage(t), {"machines": 3, "memory": 96 * MiB})
        self.refused(t, "POST", "/v1/machines",
                     {"id": "m3", "memory": "32MiB"})
        self.problem("GET", "/v1/machines/m3", status=404, token=t)
        self.ok("DELETE", "/v1/machines/m1", status=204, token=t)
        self.create(t, "m3")
        self.assertEqual(self.ids(t), ["m0", "m2", "m3"])
        self.refused(t, "POST", "/v1/machines",
                     {"id": "m4", "memory": "32MiB"})
        # machines = 0: nothing at all.
        z = self.tenant("qm0", machines=0)
        self.refused(z, "POST", "/v1/machines", {"id": "x"})

    def test_memory(self):
        """memory exactly reached passes; one byte over is refused."""
        t = self.tenant("qmem", machines=10, memory="96MiB")
        self.create(t, "a", "64MiB")
        self.create(t, "b", "32MiB")
        self.assertEqual(self.usage(t), {"machines": 2, "memory": 96 * MiB})
        self.refused(t, "POST", "/v1/machines", {"id": "c", "memory": "32MiB"})
        # 96 MiB - 1: the same two machines are one byte too many.
        u = self.tenant("qmem1", machines=10, memory=96 * MiB - 1)
        self.create(u, "a", "64MiB")
        self.refused(u, "POST", "/v1/machines", {"id": "b", "memory": "32MiB"})
        self.assertEqual(self.usage(u), {"machines": 1, "memory": 64 * MiB})
        # One machine alone one byte over its quota.
        v = self.tenant("qmem2", memory=32 * MiB - 1)
        self.refused(v, "POST", "/v1/machines", {"id": "a", "memory": "32MiB"})

    def test_processes(self):
        """processes = 2 per machine: two pass, the third is 429 and
        leaves the machine as it was; another machine has its own two."""
        t = self.tenant("qp", processes=2)
        self.create(t, "p")
        self.create(t, "q")
        for _ in range(2):
            self.ok("POST", "/v1/machines/p/processes", {}, status=201,
                    token=t)
        before = self.state("p", t)
        self.problem("POST", "/v1/machines/p/processes", {}, status=429,
                     code="quota_exceeded", token=t)
        self.assertEqual(self.state("p", t), before)
        self.assertEqual(len(self.ok("GET", "/v1/machines/p/processes",
                                     token=t)["items"]), 2)
        self.ok("POST", "/v1/machines/q/processes", {}, status=201, token=t)
        # An exit makes room again.
        self.ok("DELETE", "/v1/machines/p/processes/1", status=204, token=t)
        self.ok("POST", "/v1/machines/p/processes", {}, status=201, token=t)

    def test_clone(self):
        """A clone counts as a machine of its memory, and brings its
        processes: each quota refuses it at its edge."""
        self.machine("tpl", memory="64MiB", churn=0)
        for _ in range(2):
            self.ok("POST", "/v1/machines/tpl/processes", {}, status=201)
        self.share_with_all("tpl")
        tpl = self.state("tpl")
        t = self.tenant("qc", machines=2, memory="96MiB", processes=2)
        c = self.ok("POST", "/v1/machines/admin.tpl/clone", {"id": "c1"},
                    status=201, token=t)
        self.assertEqual((c["id"], c["owner"], c["digest"]),
                         ("c1", "qc", tpl[1]))
        self.assertEqual(self.usage(t), {"machines": 1, "memory": 64 * MiB})
        # 64 + 64 MiB > 96 MiB: the memory quota refuses the next one.
        self.refused(t, "POST", "/v1/machines/admin.tpl/clone", {"id": "c2"})
        self.create(t, "x", "32MiB")
        # Now at 2 machines (and exactly 96 MiB): the machines quota.
        self.refused(t, "POST", "/v1/machines/c1/clone", {"id": "c3"})
        # processes = 1 per machine: a clone of a 2-process machine is
        # refused.
        u = self.tenant("qcp", processes=1)
        self.refused(u, "POST", "/v1/machines/admin.tpl/clone", {"id": "c"})
        self.assertEqual(self.state("tpl"), tpl)


class RateLimit(AuthTest):
    """The request rate: a token bucket of `rate` requests, refilled at
    `rate` a second."""

    RATE = 3

    def burst(self, token, n):
        """n GET /v1/whoami over one keep-alive connection, as fast as
        they go: (responses, seconds from the first send to the last
        answer). Each answer is checked against docs/openapi.json."""
        conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port,
                                          timeout=30)
        out = []
        try:
            conn.connect()
            t0 = time.monotonic()
            for _ in range(n):
                conn.request("GET", "/v1/whoami",
                             headers={"Authorization": "Bearer " + token})
                resp = conn.getresponse()
                body = resp.read().decode()
                out.append(vmlab.Response(
                    resp.status, {k.lower(): v for k, v in resp.getheaders()},
                    body))
            elapsed = time.monotonic() - t0
        finally:
            conn.close()
        for r in out:
            err = vmlab.check_response("GET", "/v1/whoami", r)
            self.assertIsNone(err, err)
        return out, elapsed

    def test_burst_then_429_then_again(self):
        """rate = 3: three quick requests pass, the fourth is 429
        rate_limited with Retry-After >= 1; after Retry-After seconds
        requests pass again. Other callers are not limited meanwhile.

        A burst of 4 must end within 1/3 s for the edge to hold (the
        bucket gains a request every 1/3 s); one that took longer is
        tried again after the bucket has refilled."""
        r = self.RATE
        t = self.tenant("rl", rate=r)
        other = self.tenant("rl-other", rate=r)
        for attempt in range(5):
            # However long it waits, the bucket holds r requests at most
            # (it fills in 1 s).
            time.sleep(1.5)
            out, elapsed = self.burst(t, r + 1)
            if elapsed < 1.0 / r:
                break
        else:
            self.fail("a burst of %d requests never took less than %.2f s"
                      % (r + 1, 1.0 / r))
        self.assertEqual([x.status for x in out], [200] * r + [429], out)
        limited = out[-1]
        self.assertEqual(limited.json["code"], "rate_limited")
        self.assertEqual(limited.headers.get("content-type"),
                         "application/problem+json")
        wait = int(limited.headers["retry-after"])
        self.assertGreaterEqual(wait, 1)
        # Another tenant and the admin are not limited by rl's bucket.
        self.assertEqual(self.whoami(other)["tenant"], "rl-other")
        self.assertEqual(self.whoami(self.token)["tenant"], "admin")
        time.sleep(wait)
        again, _ = self.burst(t, 1)
        self.assertEqual(again[0].status, 200, again)
        self.assertEqual(again[0].json["tenant"], "rl")


# ---- the life of a tenant ----

class Lifecycle(AuthTest):

    def test_rotation_revokes_at_once(self):
        """A new token works at once and the old one is 401 on the very
        next request; the tenant keeps its machines."""
        t1 = self.tenant("rot")
        self.ok("POST", "/v1/machines", {"id": "m", "memory": "32MiB"},
                status=201, token=t1)
        new = self.ok("POST", "/v1/tenants/rot/tokens", status=201)
        self.assertEqual((new["name"], new["role"]), ("rot", "tenant"))
        self.assertRegex(new["token"], TOKEN)
        self.assertNotEqual(new["token"], t1)
        self.unauthorized(t1)
        self.unauthorized(t1, "/v1/machines/m")
        self.assertEqual(self.whoami(new["token"])["tenant"], "rot")
        self.assertEqual(self.ids(new["token"]), ["m"])
        t3 = self.ok("POST", "/v1/tenants/rot/tokens", status=201)["token"]
        self.unauthorized(new["token"])
        self.unauthorized(t1)
        self.assertEqual(self.whoami(t3)["tenant"], "rot")
        self.problem("POST", "/v1/tenants/nobody/tokens", status=404,
                     code="not_found")

    def test_delete_tenant(self):
        """Deleting a tenant revokes its token, removes its machines and
        every share granted to it; the name can be created again, with an
        empty namespace and none of the old shares."""
        alice = self.tenant("del-alice")
        dan = self.tenant("dan")
        self.ok("POST", "/v1/machines", {"id": "am", "memory": "32MiB"},
                status=201, token=alice)
        self.ok("POST", "/v1/machines/am/shares",
                {"tenant": "dan", "access": "write"}, status=201,
                token=alice)
        self.share_with_all("am", alice)
        self.ok("POST", "/v1/machines", {"id": "d1", "memory": "32MiB"},
                status=201, token=dan)
        self.assertEqual(self.ids(dan), ["d1", "del-alice.am"])
        self.ok("DELETE", "/v1/tenants/dan", status=204)
        self.unauthorized(dan)
        self.problem("GET", "/v1/machines/dan.d1", status=404,
                     code="not_found")
        self.assertNotIn("dan", [m["owner"] for m in self.ok(
            "GET", "/v1/machines")["items"]])
        self.assertEqual(self.ok("GET", "/v1/machines/am/shares",
                                 token=alice)["items"],
                         [{"tenant": "*", "access": "read"}])
        self.assertNotIn("dan", [t["name"] for t in self.ok(
            "GET", "/v1/tenants")["items"]])
        self.problem("DELETE", "/v1/tenants/dan", status=404,
                     code="not_found")
        # The name again: a new tenant, nothing of the old one's.
        dan2 = self.tenant("dan")
        self.unauthorized(dan)
        self.assertEqual(self.whoami(dan2)["usage"],
                         {"machines": 0, "memory": 0})
        self.problem("GET", "/v1/machines/d1", status=404, token=dan2)
        # alice's machine: the "*" share still shows it, read only now.
        self.assertEqual(self.ids(dan2), ["del-alice.am"])
        self.problem("POST", "/v1/machines/del-alice.am/kmalloc",
                     {"size": 8}, status=403, code="forbidden", token=dan2)
        self.ok("POST", "/v1/machines", {"id": "d1", "memory": "32MiB"},
                status=201, token=dan2)
        self.assertEqual(self.state("d1", dan2)[0], 0)

    def test_shares(self):
        """A machine's shares: none at first; 201 for a new share, 200
        when its access changes; unknown tenants and the owner itself are
        422; a revoked share is 404 the second time."""
        o = self.tenant("sh-owner")
        self.tenant("sh-reader")
        self.ok("POST", "/v1/machines", {"id": "s", "memory": "32MiB"},
                status=201, token=o)
        empty = {"items": [], "next_page_token": None}
        self.assertEqual(self.ok("GET", "/v1/machines/s/shares", token=o),
                         empty)
        share = {"tenant": "sh-reader", "access": "read"}
        self.assertEqual(self.ok("POST", "/v1/machines/s/shares", share,
                                 status=201, token=o), share)
        self.assertEqual(self.ok("POST", "/v1/machines/s/shares", share,
                                 status=200, token=o), share)
        share["access"] = "write"
        self.assertEqual(self.ok("POST", "/v1/machines/s/shares", share,
                                 status=200, token=o), share)
        self.assertEqual(self.ok("GET", "/v1/machines/sh-owner.s/shares"),
                         {"items": [share], "next_page_token": None})
        for who in ("nobody", "sh-owner"):
            self.problem("POST", "/v1/machines/s/shares",
                         {"tenant": who, "access": "read"}, status=422,
                         code="invalid_value", token=o)
        self.ok("DELETE", "/v1/machines/s/shares/sh-reader", status=204,
                token=o)
        self.problem("DELETE", "/v1/machines/s/shares/sh-reader",
                     status=404, code="not_found", token=o)
        self.assertEqual(self.ok("GET", "/v1/machines/s/shares", token=o),
                         empty)

    def test_history_names_the_tenant(self):
        """Each operation in history carries the tenant that applied it:
        the owner, a write-share holder, the admin."""
        alice = self.tenant("h-alice")
        walt = self.tenant("walt")
        self.ok("POST", "/v1/machines", {"id": "h", "memory": "32MiB"},
                status=201, token=alice)
        self.ok("POST", "/v1/machines/h/shares",
                {"tenant": "walt", "access": "write"}, status=201,
                token=alice)
        self.ok("POST", "/v1/machines/h/processes", {}, status=201,
                token=alice)
        k = self.ok("POST", "/v1/machines/h-alice.h/kmalloc", {"size": 64},
                    status=201, token=walt)
        self.ok("POST", "/v1/machines/h-alice.h/vmalloc", {"size": 4096},
                status=201)
        ops = self.ok("GET", "/v1/machines/h/history",
                      token=alice)["operations"]
        self.assertEqual([(o["version"], o["op"], o["tenant"]) for o in ops],
                         [(1, "process_create", "h-alice"),
                          (2, "kmalloc", "walt"), (3, "vmalloc", "admin")])
        self.assertEqual(ops[1]["result"]["va"], k["va"])
        # Everyone who may read it sees the same record.
        self.assertEqual(self.ok("GET", "/v1/machines/h-alice.h/history",
                                 token=walt)["operations"], ops)

    def test_template_flow(self):
        """The admin publishes a template (read for "*"); two students
        clone it as the same id lab1, each into its own namespace; they
        work independently and neither sees the other's."""
        self.machine("lab", memory="64MiB", churn=0)
        self.ok("POST", "/v1/machines/lab/processes", {}, status=201)
        self.share_with_all("lab")
        tpl = self.state("lab")
        s1, s2 = self.tenant("stu1"), self.tenant("stu2")
        for s, who in ((s1, "stu1"), (s2, "stu2")):
            c = self.ok("POST", "/v1/machines/admin.lab/clone", {"id": "lab1"},
                        status=201, token=s)
            self.assertEqual((c["id"], c["owner"], c["version"], c["digest"]),
                             ("lab1", who, tpl[0], tpl[1]))
            self.problem("POST", "/v1/machines/admin.lab/kmalloc",
                         {"size": 8}, status=403, code="forbidden", token=s)
        a = self.ok("POST", "/v1/machines/lab1/kmalloc", {"size": 64},
                    status=201, token=s1)
        self.ok("POST", "/v1/machines/lab1/processes", {}, status=201,
                token=s2)
        self.ok("POST", "/v1/machines/lab1/processes", {}, status=201,
                token=s2)
        v1, d1 = self.state("lab1", s1)
        v2, d2 = self.state("lab1", s2)
        self.assertEqual((v1, v2), (tpl[0] + 1, tpl[0] + 2))
        self.assertNotEqual(d1, d2)
        self.assertEqual(self.state("lab"), tpl)
        self.assertEqual(self.ok("GET", "/v1/machines/stu1.lab1")["version"],
                         v1)
        for s, other in ((s1, "stu2"), (s2, "stu1")):
            self.assertEqual(self.ids(s), ["admin.lab", "lab1"])
            self.problem("GET", "/v1/machines/%s.lab1" % other, status=404,
                         code="not_found", token=s)
            self.problem("POST", "/v1/machines/%s.lab1/clone" % other,
                         {"id": "x"}, status=404, code="not_found", token=s)
        self.assertEqual(self.ok("GET", "/v1/machines/lab1/history",
                                 token=s1)["operations"][-1]["result"]["va"],
                         a["va"])


# ---- restarts ----

class Restart(vmlab.DaemonTest):
    """Everything about tenants survives vmlabd: SIGTERM and kill -9."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def start(self, db):
        self.daemon = vmlab.Daemon("--auth", "on", "--db", db).start()
        self.addCleanup(self.daemon.stop)   # if the test fails first
        return self.daemon

    def check_stop(self, d, kill):
        if kill:
            d.proc.kill()
            d.proc.wait()
            err = d.stderr()
        else:
            status, err = d.stop()
            self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def seen(self, admin, tokens):
        """What the API shows of the tenants: the admin's tenant list,
        whoami of each token, the shares and the machines each sees."""
        out = {"tenants": self.ok("GET", "/v1/tenants", token=admin),
               "shares": self.ok("GET", "/v1/machines/alice.a/shares",
                                 token=admin),
               "admin": self.ok("GET", "/v1/whoami", token=admin)}
        for name, tok in tokens.items():
            out[name] = (self.ok("GET", "/v1/whoami", token=tok),
                         self.ok("GET", "/v1/machines", token=tok))
        return out

    def restart(self, kill):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, "vmlab.db")
            d = self.start(db)
            admin = d.admin_token()
            with open(db + ".admin-token", "rb") as f:
                admin_file = f.read()
            tokens = {}
            for name, role, quota in (
                    ("alice", "tenant", {"machines": 1, "memory": "64MiB",
                                         "processes": 3, "rate": 77}),
                    ("rita", "tenant", {"rate": 5000}),
                    ("gus", "grader", {"rate": 900})):
                tokens[name] = self.ok("POST", "/v1/tenants", {
                    "name": name, "role": role, "quota": quota},
                    status=201, token=admin)["token"]
            old_rita = tokens["rita"]
            tokens["rita"] = self.ok("POST", "/v1/tenants/rita/tokens",
                                     status=201, token=admin)["token"]
            self.ok("POST", "/v1/machines", {"id": "a", "memory": "64MiB"},
                    status=201, token=tokens["alice"])
            self.ok("POST", "/v1/machines/a/shares",
                    {"tenant": "rita", "access": "write"}, status=201,
                    token=tokens["alice"])
            self.ok("POST", "/v1/machines/a/shares",
                    {"tenant": "*", "access": "read"}, status=201,
                    token=tokens["alice"])
            self.ok("POST", "/v1/machines/alice.a/kmalloc", {"size": 8},
                    status=201, token=tokens["rita"])
            before = self.seen(admin, tokens)
            self.check_stop(d, kill)
            d = self.start(db)
            with open(db + ".admin-token", "rb") as f:
                self.assertEqual(f.read(), admin_file)
            self.assertEqual(stat.S_IMODE(os.stat(db + ".admin-token")
                                          .st_mode), 0o600)
            self.assertEqual(d.admin_token(), admin)
            self.assertEqual(self.seen(admin, tokens), before)
            # The revoked token stays revoked; roles and quotas still
            # decide: rita still writes, alice has her one machine, the
            # grader still cannot create.
            r = self.req("GET", "/v1/whoami", token=old_rita)
            self.assertEqual(r.status, 401, r)
            self.ok("POST", "/v1/machines/alice.a/kmalloc", {"size": 8},
                    status=201, token=tokens["rita"])
            self.problem("POST", "/v1/machines", {"id": "b"}, status=429,
                         code="quota_exceeded", token=tokens["alice"])
            self.problem("POST", "/v1/machines", {"id": "g"}, status=403,
                         code="forbidden", token=tokens["gus"])
            self.problem("POST", "/v1/machines/alice.a/kmalloc", {"size": 8},
                         status=403, code="forbidden", token=tokens["gus"])
            self.check_stop(d, False)

    def test_sigterm(self):
        """A clean stop keeps tenants, roles, quotas, shares, tokens and
        the admin's token."""
        self.restart(kill=False)

    def test_kill_9(self):
        """kill -9 keeps them too: each was durable when answered."""
        self.restart(kill=True)


# ---- starting vmlabd ----

class Startup(unittest.TestCase):
    """The command line: addresses and the admin's token file. Runs that
    must be refused are given a non-loopback address only when they must
    refuse it; a daemon that starts always listens on 127.0.0.1."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.db = os.path.join(self.tmp.name, "vmlab.db")

    def tearDown(self):
        self.tmp.cleanup()

    def refused(self, *args):
        """vmlabd args exits 2 at once without listening; its stderr."""
        status, err, took = run_vmlabd(*args)
        self.assertEqual(status, 2, err)
        self.assertLess(took, 5, "vmlabd took %.1f s to refuse" % took)
        self.assertNotIn("listening on", err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)
        return err

    def started(self, *args):
        d = vmlab.Daemon(*args)
        d.start()
        self.addCleanup(self.stop, d)
        return d

    def stop(self, d):
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def whoami(self, d, token):
        return vmlab.curl(d.url, "GET", "/v1/whoami",
                          headers=("Authorization: Bearer " + token,))

    def test_non_loopback_needs_auth(self):
        """--listen 0.0.0.0:0 or [::]:0 without --auth on (absent or off)
        exits 2 naming --auth, without listening."""
        for addr in ("0.0.0.0:0", "[::]:0"):
            for auth in ((), ("--auth", "off")):
                with self.subTest(addr=addr, auth=auth):
                    err = self.refused("--listen", addr, "--db", self.db,
                                       *auth)
                    self.assertIn("--auth", err)
                    self.assertIn(addr, err)

    def test_loopback_with_auth_starts(self):
        """--auth on on a loopback address starts, and asks for tokens."""
        d = self.started("--auth", "on", "--db", self.db)
        self.assertIn("auth on", d.stderr())
        r = vmlab.curl(d.url, "GET", "/v1/whoami")
        self.assertEqual(r.status, 401)
        self.assertEqual(vmlab.curl(d.url, "GET", "/healthz").status, 200)

    def test_admin_token_generated(self):
        """An absent --admin-token-file is created with mode 0600 and a
        fresh token, which is the admin's; the next start reads it."""
        path = os.path.join(self.tmp.name, "admin.token")
        d = self.started("--auth", "on", "--db", self.db,
                         "--admin-token-file", path)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path) as f:
            text = f.read()
        token = text.strip()
        self.assertRegex(token, TOKEN)
        r = self.whoami(d, token)
        self.assertEqual((r.status, r.json["role"]), (200, "admin"), r)
        self.assertFalse(os.path.exists(self.db + ".admin-token"))
        self.stop(d)
        d = self.started("--auth", "on", "--db", self.db,
                         "--admin-token-file", path)
        with open(path) as f:
            self.assertEqual(f.read(), text)
        self.assertEqual(self.whoami(d, token).status, 200)

    def write_token(self, path, text, mode):
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def test_admin_token_file_refused(self):
        """A token file others may read (any group or other bit), or with
        a token shorter than 32 or longer than 64 characters, or with a
        space inside, is refused with exit 2; the file is left alone."""
        path = os.path.join(self.tmp.name, "admin.token")
        good = "t" * 40
        cases = [(good, 0o644), (good, 0o640), (good, 0o604), (good, 0o660),
                 ("s" * 31, 0o600), ("l" * 65, 0o600), ("", 0o600),
                 ("with space" + "x" * 30, 0o600)]
        for text, mode in cases:
            with self.subTest(length=len(text), mode=oct(mode)):
                self.write_token(path, text + "\n", mode)
                err = self.refused("--listen", "127.0.0.1:0", "--auth",
                                   "on", "--db", self.db,
                                   "--admin-token-file", path)
                self.assertIn(path, err)
                with open(path) as f:
                    self.assertEqual(f.read(), text + "\n")
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode)

    def test_admin_token_file_used_as_is(self):
        """An existing good file (0600 or stricter; 32 to 64 characters,
        with or without a final newline) is the admin's token, unchanged."""
        path = os.path.join(self.tmp.name, "admin.token")
        for text, mode in (("A" * 32, 0o600), ("my-class-token-" + "9" * 49,
                                                0o400),
                           ("Zz0-_.~!" * 5 + "\n", 0o600)):
            with self.subTest(text=text, mode=oct(mode)):
                if os.path.exists(path):
                    os.chmod(path, 0o600)
                self.write_token(path, text, mode)
                d = self.started("--auth", "on", "--db", self.db,
                                 "--admin-token-file", path)
                r = self.whoami(d, text.strip())
                self.assertEqual((r.status, r.json["tenant"]),
                                 (200, "admin"), r)
                self.assertEqual(self.whoami(d, text.strip() + "x").status,
                                 401)
                with open(path) as f:
                    self.assertEqual(f.read(), text)
                self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), mode)
                self.stop(d)


# ---- the schema-1 fixture ----

class SchemaOne(vmlab.DaemonTest):
    """A schema-1 database (machines from before tenants) under auth."""

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        pass

    def open_fixture(self, tmp, *args):
        db = os.path.join(tmp, "vmlab.db")
        if not os.path.exists(db):
            shutil.copy(os.path.join(FIXTURES, "schema-1.db"), db)
        self.daemon = vmlab.Daemon("--db", db, *args).start()
        self.addCleanup(self.stop, self.daemon)
        return self.daemon

    def stop(self, d):
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def test_machines_live_in_local(self):
        """With --auth on the old machines belong to the namespace
        "local": the admin sees them as local.<id> with their recorded
        digests; a tenant sees none of them. With auth off they are the
        caller's own again."""
        with open(os.path.join(FIXTURES, "schema-1.json")) as f:
            expect = json.load(f)
        with tempfile.TemporaryDirectory() as tmp:
            d = self.open_fixture(tmp, "--auth", "on")
            admin = d.admin_token()
            items = self.ok("GET", "/v1/machines", token=admin)["items"]
            self.assertEqual(
                [(m["id"], m["owner"], m["version"], m["digest"])
                 for m in items],
                [("local." + mid, "local", e["version"], e["digest"])
                 for mid, e in sorted(expect.items())])
            for mid, e in expect.items():
                m = self.ok("GET", "/v1/machines/local." + mid, token=admin)
                self.assertEqual((m["arch"], m["digest"]),
                                 (e["arch"], e["digest"]))
                self.problem("GET", "/v1/machines/" + mid, status=404,
                             token=admin)
            tok = self.ok("POST", "/v1/tenants", {"name": "local-student"},
                          status=201, token=admin)["token"]
            self.assertEqual(self.ok("GET", "/v1/machines",
                                     token=tok)["items"], [])
            for mid in expect:
                self.problem("GET", "/v1/machines/local." + mid, status=404,
                             code="not_found", token=tok)
            # "local" is reserved: no tenant may take the namespace.
            self.problem("POST", "/v1/tenants", {"name": "local"},
                         status=422, token=admin)
            self.stop(d)
            d = self.open_fixture(tmp)
            items = self.ok("GET", "/v1/machines")["items"]
            self.assertEqual([(m["id"], m["owner"], m["digest"])
                              for m in items],
                             [(mid, "local", e["digest"])
                              for mid, e in sorted(expect.items())])


if __name__ == "__main__":
    vmlab.main()
