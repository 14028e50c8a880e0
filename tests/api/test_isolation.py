"""test_isolation.py - who may do what: every route, every relation.

SPEC part 3 (tenants): a tenant sees its own machines and those shared
with it, read or write; every other machine answers 404; a visible
machine the caller may only read answers 403 on mutation; the grader reads
every machine and changes nothing; the admin does everything; a missing
or unknown token is 401; /healthz is open and /metrics needs the admin or
a grader.

The matrix sends one valid request per (route, relation) and compares the
status with EXPECT, a literal table written here from the SPEC, never
computed from the daemon's authorization code. The routes come from the
route table (routes_dump): a route without a row in EXPECT fails, and so
does a row naming no route.

The relations, each a tenant of a daemon with --auth on, and the machine
it targets:

  owner     alice, on her machine `a`            (named "a")
  read      rita, `a` is shared read with her    ("alice.a")
  write     walt, `a` is shared write with him   ("alice.a")
  star      sam, no share of his own; the admin's machine `tmpl` is
            shared read with "*"                  ("admin.tmpl")
  stranger  eve, nothing shared with her         ("alice.a")
  grader    gus, role grader                     ("alice.a")
  admin     the admin token                      ("alice.a")
  none      no Authorization header              ("alice.a")
  bad       alice's token with its last character changed ("alice.a")

On routes that name no machine, owner/read/write/star/stranger are simply
plain tenants. Each cell gets what it consumes (a process to exit, a
kmalloc'd address to kfree, a machine to delete, a share to revoke) from
a fixture that recreates it as the owner or the admin. A 2xx cell is
checked for its effect (a mutation moves the version by one; a read
changes nothing); a refused cell (401, 403, 404) must answer the problem
with its code (unauthorized, forbidden, not_found) and leave the target as
it was (version, digest and shares).

Requests go over one keep-alive http.client connection (a few thousand of
them: forking curl for each would be slow); every response is validated
against docs/openapi.json as vmlab.DaemonTest.req does.
"""

import http.client
import json
import unittest

import vmlab

RELATIONS = ("owner", "read", "write", "star", "stranger", "grader",
             "admin", "none", "bad")

M = "/v1/machines/{m}"
P = M + "/processes/{pid}"

# The expected status of each route for each relation, in RELATIONS order:
#   owner read write star stranger grader admin none bad
EXPECT = {
    ("GET", "/healthz"):                "200 200 200 200 200 200 200 200 200",
    ("GET", "/metrics"):                "403 403 403 403 403 200 200 401 401",
    ("GET", "/v1"):                     "200 200 200 200 200 200 200 401 401",
    ("GET", "/v1/openapi.json"):        "200 200 200 200 200 200 200 401 401",
    ("GET", "/v1/whoami"):              "200 200 200 200 200 200 200 401 401",
    ("POST", "/v1/tenants"):            "403 403 403 403 403 403 201 401 401",
    ("GET", "/v1/tenants"):             "403 403 403 403 403 403 200 401 401",
    ("DELETE", "/v1/tenants/{t}"):      "403 403 403 403 403 403 204 401 401",
    ("POST", "/v1/tenants/{t}/tokens"): "403 403 403 403 403 403 201 401 401",
    ("POST", "/v1/machines"):           "201 201 201 201 201 403 201 401 401",
    ("GET", "/v1/machines"):            "200 200 200 200 200 200 200 401 401",
    ("GET", M):                         "200 200 200 200 404 200 200 401 401",
    ("DELETE", M):                      "204 403 403 403 404 403 204 401 401",
    ("POST", M + "/clone"):             "201 201 201 201 404 403 201 401 401",
    ("POST", M + "/shares"):            "201 403 403 403 404 403 201 401 401",
    ("GET", M + "/shares"):             "200 403 403 403 404 403 200 401 401",
    ("DELETE", M + "/shares/{t}"):      "204 403 403 403 404 403 204 401 401",
    ("GET", M + "/layout"):             "200 200 200 200 404 200 200 401 401",
    ("GET", M + "/zones"):              "200 200 200 200 404 200 200 401 401",
    ("GET", M + "/frames"):             "200 200 200 200 404 200 200 401 401",
    ("GET", M + "/slabs"):              "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/processes"):         "201 403 201 403 404 403 201 401 401",
    ("GET", M + "/processes"):          "200 200 200 200 404 200 200 401 401",
    ("GET", P):                         "200 200 200 200 404 200 200 401 401",
    ("DELETE", P):                      "204 403 204 403 404 403 204 401 401",
    ("POST", P + "/mmap"):              "201 403 201 403 404 403 201 401 401",
    ("POST", P + "/munmap"):            "200 403 200 403 404 403 200 401 401",
    ("POST", P + "/brk"):               "200 403 200 403 404 403 200 401 401",
    ("GET", P + "/pagetable"):          "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/kmalloc"):           "201 403 201 403 404 403 201 401 401",
    ("POST", M + "/kfree"):             "200 403 200 403 404 403 200 401 401",
    ("POST", M + "/vmalloc"):           "201 403 201 403 404 403 201 401 401",
    ("POST", M + "/vfree"):             "200 403 200 403 404 403 200 401 401",
    ("POST", M + "/pages"):             "201 403 201 403 404 403 201 401 401",
    ("POST", M + "/pages/free"):        "200 403 200 403 404 403 200 401 401",
    ("GET", M + "/cpus"):               "200 200 200 200 404 200 200 401 401",
    ("GET", M + "/history"):            "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/cpus/{n}/switch"):   "200 403 200 403 404 403 200 401 401",
    ("POST", M + "/translate"):         "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/translate/batch"):   "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/dma-check"):         "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/virt-to-phys"):      "200 200 200 200 404 200 200 401 401",
    ("POST", M + "/phys-to-virt"):      "200 200 200 200 404 200 200 401 401",
}

# The problem code of each refusal status.
REFUSAL = {401: "unauthorized", 403: "forbidden", 404: "not_found"}

# Who each relation is (None: no token; "bad": a token nobody holds).
TENANT = {"owner": "alice", "read": "rita", "write": "walt", "star": "sam",
          "stranger": "eve", "grader": "gus", "admin": "admin"}

# Quotas that stay out of the way of the matrix (quotas have their own
# tests in test_tenants.py).
ROOMY = {"machines": 10000, "memory": 1 << 44, "processes": 10000,
         "rate": 1000000}


def expected(key):
    """EXPECT[key] as {relation: status}."""
    statuses = [int(s) for s in EXPECT[key].split()]
    assert len(statuses) == len(RELATIONS), key
    return dict(zip(RELATIONS, statuses))


class Client:
    """One keep-alive connection to a daemon; every answer is checked
    against docs/openapi.json (and the daemon's stderr for sanitizer
    reports), as vmlab.DaemonTest.req does."""

    def __init__(self, test, daemon):
        self.test = test
        self.daemon = daemon
        self.conn = None

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None

    def req(self, method, path, body=None, token=None):
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.daemon.port, timeout=60)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                payload = resp.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                # The server closed an idle keep-alive connection before
                # reading this request: nothing was done; send it again.
                self.close()
                if attempt:
                    raise
        if resp.will_close:
            self.close()
        r = vmlab.Response(resp.status,
                           {k.lower(): v for k, v in resp.getheaders()},
                           payload)
        err = vmlab.check_response(method, path, r)
        if err:
            self.test.fail("response outside docs/openapi.json: " + err)
        return r


class Isolation(unittest.TestCase):
    """One daemon with --auth on, the tenants of the module docstring."""

    @classmethod
    def setUpClass(cls):
        cls.daemon = vmlab.Daemon("--auth", "on").start()
        cls.http = Client(None, cls.daemon)
        cls.admin = cls.daemon.admin_token()
        cls.tokens = {"admin": cls.admin}
        try:
            cls.build()
        except BaseException:
            cls.daemon.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.http.close()
        status, err = cls.daemon.stop()
        if status != 0 or vmlab.SANITIZER.search(err):
            raise AssertionError("vmlabd exit %s; stderr:\n%s" % (status, err))

    @classmethod
    def must(cls, status, method, path, body=None, token=None):
        """A setup request that must answer status (validated too)."""
        r = cls.http.req(method, path, body, token or cls.admin)
        if r.status != status:
            raise AssertionError("%s %s -> %r" % (method, path, r))
        return r.json

    @classmethod
    def build(cls):
        # The OpenAPI check needs a TestCase to fail: a throwaway one.
        cls.http.test = unittest.TestCase()
        for name in ("alice", "rita", "walt", "sam", "eve", "olga"):
            t = cls.must(201, "POST", "/v1/tenants",
                         {"name": name, "quota": ROOMY})
            cls.tokens[name] = t["token"]
        t = cls.must(201, "POST", "/v1/tenants",
                     {"name": "gus", "role": "grader"})
        cls.tokens["gus"] = t["token"]
        alice = cls.tokens["alice"]
        # The bad token: alice's with its last character changed.
        last = "A" if alice[-1] != "A" else "B"
        cls.tokens["bad"] = alice[:-1] + last
        # Machine a: alice's, read for rita, write for walt.
        cls.must(201, "POST", "/v1/machines",
                 {"id": "a", "memory": "64MiB", "churn": 0}, alice)
        cls.must(201, "POST", "/v1/machines/a/shares",
                 {"tenant": "rita", "access": "read"}, alice)
        cls.must(201, "POST", "/v1/machines/a/shares",
                 {"tenant": "walt", "access": "write"}, alice)
        # Machine tmpl: the admin's, read for everyone.
        cls.must(201, "POST", "/v1/machines",
                 {"id": "tmpl", "memory": "64MiB", "churn": 0})
        cls.must(201, "POST", "/v1/machines/tmpl/shares",
                 {"tenant": "*", "access": "read"})
        # Each plain tenant but alice owns a machine of its own.
        cls.own = {"rita": "r1", "walt": "w1", "sam": "x1", "eve": "e1"}
        for name, mid in cls.own.items():
            cls.must(201, "POST", "/v1/machines",
                     {"id": mid, "memory": "32MiB", "churn": 0},
                     cls.tokens[name])
        # What every cell may use and never consumes: a process and a
        # kmalloc'd object on both targets (as the admin names them).
        cls.base = {}
        for m in ("alice.a", "tmpl"):
            pid = cls.must(201, "POST", "/v1/machines/%s/processes" % m,
                           {"name": "base"})["pid"]
            k = cls.must(201, "POST", "/v1/machines/%s/kmalloc" % m,
                         {"size": 128})
            cls.base[m] = {"pid": pid, "va": k["va"], "pa": k["pa"]}
        cls.spares = {"alice.a": {}, "tmpl": {}}
        cls.serial = 0

    def setUp(self):
        self.http.test = self

    # ---- who, and which machine ----

    def token(self, rel):
        if rel == "none":
            return None
        if rel == "bad":
            return self.tokens["bad"]
        return self.tokens[TENANT[rel]]

    @staticmethod
    def target(rel):
        """(admin's name of the target machine, its owner)."""
        return ("tmpl", "admin") if rel == "star" else ("alice.a", "alice")

    @staticmethod
    def name_for(rel, owner, mid):
        """What the caller of relation rel calls owner's machine mid."""
        if TENANT.get(rel) == owner:
            return mid
        return "%s.%s" % (owner, mid)

    @staticmethod
    def made_by(rel, mid):
        """The admin's name of machine mid if the caller of relation rel
        made it in its own namespace (None: no caller, nothing made)."""
        who = TENANT.get(rel)
        if who is None:
            return None
        return mid if who == "admin" else "%s.%s" % (who, mid)

    def fresh_id(self, prefix):
        type(self).serial += 1
        return "%s%d" % (prefix, self.serial)

    def call(self, method, path, body=None, token=None):
        """A request as the admin (unless token), checked for a 2xx."""
        r = self.http.req(method, path, body, token or self.admin)
        self.assertTrue(200 <= r.status < 300, (method, path, r))
        return r.json

    def snapshot(self, m):
        """What a refused request must leave alone: the version, digest
        and shares of machine m (the admin's name for it)."""
        r = self.http.req("GET", "/v1/machines/" + m, token=self.admin)
        if r.status == 404:
            return None
        self.assertEqual(r.status, 200, r)
        shares = self.call("GET", "/v1/machines/%s/shares" % m)["items"]
        return r.json["version"], r.json["digest"], shares

    # ---- the fixture: what a cell consumes, made anew when used up ----

    def spare(self, m, kind):
        """A consumable of kind on machine m (admin's name), made by the
        admin when the last one was used up."""
        have = self.spares[m]
        if kind not in have:
            base = "/v1/machines/" + m
            pid = self.base[m]["pid"]
            if kind == "pid":
                v = self.call("POST", base + "/processes", {})["pid"]
            elif kind == "kfree":
                v = self.call("POST", base + "/kmalloc", {"size": 64})["va"]
            elif kind == "vfree":
                v = self.call("POST", base + "/vmalloc", {"size": 8192})["va"]
            elif kind == "pages":
                v = self.call("POST", base + "/pages", {"order": 0})["pa"]
            elif kind == "munmap":
                v = self.call("POST", "%s/processes/%d/mmap" % (base, pid),
                              {"length": 8192})["start"]
            else:
                raise KeyError(kind)
            have[kind] = v
        return have[kind]

    def throwaway(self, rel, extra_share=False):
        """A fresh machine with the target's owner and shares (for a cell
        that deletes it or changes its shares); extra_share adds a read
        share with olga, a tenant outside the matrix. Returns the admin's
        name and the caller's."""
        _, owner = self.target(rel)
        mid = self.fresh_id("t")
        tok = self.tokens[owner] if owner != "admin" else self.admin
        self.call("POST", "/v1/machines",
                  {"id": mid, "memory": "32MiB", "churn": 0}, tok)
        shares = ([("*", "read")] if owner == "admin"
                  else [("rita", "read"), ("walt", "write")])
        if extra_share:
            shares.append(("olga", "read"))
        for t, a in shares:
            self.call("POST", "/v1/machines/%s/shares" % mid,
                      {"tenant": t, "access": a}, tok)
        admin_name = mid if owner == "admin" else "%s.%s" % (owner, mid)
        return admin_name, self.name_for(rel, owner, mid)

    def cell(self, method, pattern, rel):
        """The request of one cell: (path, body, admin's name of the
        machine it touches or None, the consumable it uses, cleanup).
        KeyError for a route this fixture does not know."""
        m, owner = self.target(rel)
        name = self.name_for(rel, owner, m.split(".")[-1])
        base = self.base[m]
        mp = "/v1/machines/" + name
        pp = "%s/processes/%d" % (mp, base["pid"])
        gone = []
        if pattern in ("/healthz", "/metrics", "/v1", "/v1/openapi.json",
                       "/v1/whoami", "/v1/tenants") and method == "GET":
            return pattern, None, None, None, gone
        if (method, pattern) == ("POST", "/v1/tenants"):
            t = self.fresh_id("new")
            gone.append(("tenant", t))
            return pattern, {"name": t}, None, None, gone
        if pattern in ("/v1/tenants/{t}", "/v1/tenants/{t}/tokens"):
            t = self.fresh_id("tmp")
            self.victim = self.call("POST", "/v1/tenants", {"name": t})
            gone.append(("tenant", t))
            return pattern.replace("{t}", t), None, None, None, gone
        if (method, pattern) == ("POST", "/v1/machines"):
            mid = self.fresh_id("n")
            gone.append(("machine", self.made_by(rel, mid)))
            return (pattern, {"id": mid, "memory": "32MiB", "churn": 0},
                    None, None, gone)
        if (method, pattern) == ("GET", "/v1/machines"):
            return pattern, None, None, None, gone
        if (method, pattern) == ("DELETE", M):
            am, cm = self.throwaway(rel)
            gone.append(("machine", am))
            return "/v1/machines/" + cm, None, am, None, gone
        if (method, pattern) == ("POST", M + "/shares"):
            am, cm = self.throwaway(rel)
            gone.append(("machine", am))
            return ("/v1/machines/%s/shares" % cm,
                    {"tenant": "olga", "access": "read"}, am, None, gone)
        if (method, pattern) == ("DELETE", M + "/shares/{t}"):
            am, cm = self.throwaway(rel, extra_share=True)
            gone.append(("machine", am))
            return "/v1/machines/%s/shares/olga" % cm, None, am, None, gone
        if (method, pattern) == ("POST", M + "/clone"):
            mid = self.fresh_id("c")
            gone.append(("machine", self.made_by(rel, mid)))
            return mp + "/clone", {"id": mid}, m, None, gone
        if (method, pattern) == ("DELETE", P):
            pid = self.spare(m, "pid")
            return "%s/processes/%d" % (mp, pid), None, m, "pid", gone
        if (method, pattern) == ("POST", P + "/munmap"):
            return (pp + "/munmap", {"addr": self.spare(m, "munmap"),
                                     "length": 8192}, m, "munmap", gone)
        if (method, pattern) == ("POST", M + "/kfree"):
            return (mp + "/kfree", {"va": self.spare(m, "kfree")}, m,
                    "kfree", gone)
        if (method, pattern) == ("POST", M + "/vfree"):
            return (mp + "/vfree", {"va": self.spare(m, "vfree")}, m,
                    "vfree", gone)
        if (method, pattern) == ("POST", M + "/pages/free"):
            return (mp + "/pages/free",
                    {"pa": self.spare(m, "pages"), "order": 0}, m, "pages",
                    gone)
        va = {"va": "0x400000", "pid": base["pid"]}
        simple = {
            ("GET", M): (mp, None),
            ("GET", M + "/shares"): (mp + "/shares", None),
            ("GET", M + "/layout"): (mp + "/layout", None),
            ("GET", M + "/zones"): (mp + "/zones", None),
            ("GET", M + "/frames"): (mp + "/frames?page_size=4", None),
            ("GET", M + "/slabs"): (mp + "/slabs", None),
            ("POST", M + "/processes"): (mp + "/processes", {"name": "x"}),
            ("GET", M + "/processes"): (mp + "/processes", None),
            ("GET", P): (pp, None),
            ("POST", P + "/mmap"): (pp + "/mmap", {"length": 4096}),
            ("POST", P + "/brk"): (pp + "/brk", {"increment": 4096}),
            ("GET", P + "/pagetable"): (pp + "/pagetable", None),
            ("POST", M + "/kmalloc"): (mp + "/kmalloc", {"size": 32}),
            ("POST", M + "/vmalloc"): (mp + "/vmalloc", {"size": 4096}),
            ("POST", M + "/pages"): (mp + "/pages", {"order": 0}),
            ("GET", M + "/cpus"): (mp + "/cpus", None),
            ("GET", M + "/history"): (mp + "/history", None),
            ("POST", M + "/cpus/{n}/switch"): (mp + "/cpus/0/switch",
                                               {"pid": base["pid"]}),
            ("POST", M + "/translate"): (mp + "/translate", va),
            ("POST", M + "/translate/batch"): (mp + "/translate/batch",
                                               {"items": [va]}),
            ("POST", M + "/dma-check"): (mp + "/dma-check",
                                         {"va": base["va"], "length": 64}),
            ("POST", M + "/virt-to-phys"): (mp + "/virt-to-phys",
                                            {"va": base["va"]}),
            ("POST", M + "/phys-to-virt"): (mp + "/phys-to-virt",
                                            {"pa": base["pa"]}),
        }
        path, body = simple[(method, pattern)]
        return path, body, m, None, gone

    def cleanup(self, gone):
        """Removes what a cell made, whatever it answered."""
        for kind, what in gone:
            if what is not None:
                self.http.req("DELETE", "/v1/%ss/%s" % (kind, what),
                              token=self.admin)

    # ---- checks of a cell's outcome ----

    def check_refused(self, r, status, rel, before, m):
        """A refusal: its problem, and the machine m as it was."""
        self.assertEqual(r.headers.get("content-type"),
                         "application/problem+json", r)
        self.assertEqual((r.json["status"], r.json["code"]),
                         (status, REFUSAL[status]), r)
        if status == 401:
            # RFC 6750: the challenge; error= only when a token was sent.
            self.assertEqual(r.headers.get("www-authenticate"),
                             'Bearer realm="vmlab"' +
                             (', error="invalid_token"' if rel == "bad"
                              else ""), r.headers)
        if m is not None:
            self.assertEqual(self.snapshot(m), before,
                             "a refused request changed the machine")

    def check_done(self, method, pattern, rel, path, body, r, before, m):
        """The effect of a 2xx cell."""
        who = TENANT[rel] if rel in TENANT else None
        key = (method, pattern)
        mutates = self.mutating[key]
        if m is not None and before is not None and mutates:
            after = self.snapshot(m)
            self.assertEqual(after[0], before[0] + 1,
                             "a mutation must move the version by one")
            if r.json is not None and "version" in r.json:
                self.assertEqual(r.json["version"], before[0] + 1, r)
        elif key == ("DELETE", M):
            self.assertIsNone(self.snapshot(m), "the machine is still there")
        elif key == ("POST", M + "/shares"):
            after = self.snapshot(m)
            self.assertEqual(r.json, {"tenant": "olga", "access": "read"})
            self.assertIn({"tenant": "olga", "access": "read"}, after[2])
            self.assertEqual(after[:2], before[:2])
        elif key == ("DELETE", M + "/shares/{t}"):
            after = self.snapshot(m)
            self.assertNotIn("olga", [s["tenant"] for s in after[2]])
            self.assertEqual(after[:2], before[:2])
        elif m is not None:
            # A read (or a clone) changes nothing of the machine it reads.
            self.assertEqual(self.snapshot(m), before)
        if key == ("GET", M):
            self.assertEqual((r.json["id"], r.json["owner"]),
                             (path.split("/")[3], self.target(rel)[1]))
        elif key == ("GET", M + "/shares"):
            self.assertEqual(r.json["items"], before[2])
        elif key == ("POST", M + "/clone"):
            mine = self.call("GET", "/v1/machines/" + body["id"],
                             token=self.token(rel))
            self.assertEqual((mine["id"], mine["owner"]), (body["id"], who))
            self.assertEqual(mine["digest"], before[1])
        elif key == ("POST", "/v1/machines"):
            mine = self.call("GET", "/v1/machines/" + body["id"],
                             token=self.token(rel))
            self.assertEqual((mine["id"], mine["owner"]), (body["id"], who))
        elif key == ("GET", "/v1/whoami"):
            self.assertEqual((r.json["tenant"], r.json["role"]),
                             (who, {"grader": "grader", "admin": "admin"}
                              .get(rel, "tenant")))
        elif key == ("GET", "/healthz"):
            self.assertEqual(r.json, {"status": "ok"})
        elif key == ("POST", "/v1/tenants"):
            names = [t["name"] for t in self.call("GET", "/v1/tenants")
                     ["items"]]
            self.assertIn(body["name"], names)
        elif key == ("GET", "/v1/tenants"):
            names = {t["name"] for t in r.json["items"]}
            self.assertLessEqual({"alice", "rita", "walt", "sam", "eve",
                                  "olga", "gus"}, names)
        elif key == ("DELETE", "/v1/tenants/{t}"):
            self.assertEqual(self.http.req(
                "GET", "/v1/whoami", token=self.victim["token"]).status, 401)
            names = [t["name"] for t in self.call("GET", "/v1/tenants")
                     ["items"]]
            self.assertNotIn(self.victim["name"], names)
        elif key == ("POST", "/v1/tenants/{t}/tokens"):
            self.assertEqual(self.http.req(
                "GET", "/v1/whoami", token=self.victim["token"]).status, 401)
            self.assertEqual(self.call("GET", "/v1/whoami",
                                       token=r.json["token"])["tenant"],
                             self.victim["name"])

    def check_refused_elsewhere(self, method, pattern, body):
        """A refused request on a route that names no machine changed
        nothing either."""
        if pattern.startswith("/v1/tenants/"):
            # The tenant is still there, its token still good.
            self.assertEqual(self.call("GET", "/v1/whoami",
                                       token=self.victim["token"])["tenant"],
                             self.victim["name"])
        elif (method, pattern) == ("POST", "/v1/tenants"):
            names = [t["name"] for t in self.call("GET", "/v1/tenants")
                     ["items"]]
            self.assertNotIn(body["name"], names)
        elif (method, pattern) == ("POST", "/v1/machines"):
            ids = [m["id"] for m in self.call("GET", "/v1/machines")["items"]]
            self.assertFalse([i for i in ids
                              if i.split(".")[-1] == body["id"]], ids)

    # ---- the tests ----

    def test_table_covers_the_route_table(self):
        """EXPECT has a row for every route of the route table and none
        for a route that does not exist."""
        routes = {(r["method"], r["pattern"])
                  for r in vmlab.route_table()["routes"]}
        self.assertEqual(sorted(routes - set(EXPECT)), [],
                         "routes without a row in EXPECT")
        self.assertEqual(sorted(set(EXPECT) - routes), [],
                         "rows in EXPECT for routes that do not exist")
        for key in EXPECT:
            self.assertTrue(set(expected(key).values()) <=
                            {200, 201, 204, 401, 403, 404}, key)

    def test_matrix(self):
        """Every route of the route table, every relation: the status of
        EXPECT, the problem code of a refusal, the effect of a success,
        and a refused request leaves its machine as it was."""
        table = vmlab.route_table()["routes"]
        type(self).mutating = {(r["method"], r["pattern"]): r["mutates"]
                               for r in table}
        cells = 0
        for route in table:
            key = (route["method"], route["pattern"])
            self.assertTrue(key in EXPECT, "%s %s has no row in EXPECT" % key)
            for rel, status in expected(key).items():
                with self.subTest(route="%s %s" % key, relation=rel):
                    self.run_cell(key, rel, status)
                    cells += 1
        self.assertEqual(cells, len(table) * len(RELATIONS))

    def run_cell(self, key, rel, status):
        method, pattern = key
        path, body, m, consumes, gone = self.cell(method, pattern, rel)
        try:
            before = self.snapshot(m) if m is not None else None
            r = self.http.req(method, path, body, self.token(rel))
            if consumes and 200 <= r.status < 300:
                # Used up (expected or not): the next cell gets another.
                del self.spares[m][consumes]
            self.assertEqual(r.status, status, "%s %s as %s: %r" % (
                method, path, rel, r))
            if 200 <= status < 300:
                self.check_done(method, pattern, rel, path, body, r,
                                before, m)
            else:
                self.check_refused(r, status, rel, before, m)
                self.check_refused_elsewhere(method, pattern, body)
        finally:
            self.cleanup(gone)
        self.assertIsNone(vmlab.SANITIZER.search(self.daemon.stderr()),
                          self.daemon.stderr())

    def test_lists(self):
        """GET /v1/machines shows each caller exactly what it may see, in
        (owner, id) order: its own machines by id, others' as owner.id;
        the stranger sees none of alice's; grader and admin see all."""
        see = {
            "alice": [("admin.tmpl", "admin"), ("a", "alice")],
            "rita": [("admin.tmpl", "admin"), ("alice.a", "alice"),
                     ("r1", "rita")],
            "walt": [("admin.tmpl", "admin"), ("alice.a", "alice"),
                     ("w1", "walt")],
            "sam": [("admin.tmpl", "admin"), ("x1", "sam")],
            "eve": [("admin.tmpl", "admin"), ("e1", "eve")],
            "gus": [("admin.tmpl", "admin"), ("alice.a", "alice"),
                    ("eve.e1", "eve"), ("rita.r1", "rita"),
                    ("sam.x1", "sam"), ("walt.w1", "walt")],
            "admin": [("tmpl", "admin"), ("alice.a", "alice"),
                      ("eve.e1", "eve"), ("rita.r1", "rita"),
                      ("sam.x1", "sam"), ("walt.w1", "walt")],
            "olga": [("admin.tmpl", "admin")],
        }
        for who, want in see.items():
            with self.subTest(tenant=who):
                items = self.call("GET", "/v1/machines",
                                  token=self.tokens[who])["items"]
                self.assertEqual([(m["id"], m["owner"]) for m in items],
                                 want)
                # Each listed name opens the machine for this caller.
                for mid, owner in want:
                    got = self.call("GET", "/v1/machines/" + mid,
                                    token=self.tokens[who])
                    self.assertEqual((got["id"], got["owner"]),
                                     (mid, owner))
        eve = self.call("GET", "/v1/machines",
                        token=self.tokens["eve"])["items"]
        self.assertNotIn("alice", [m["owner"] for m in eve])
        self.assertEqual(self.call("GET", "/v1/machines?owner=alice",
                                   token=self.tokens["eve"])["items"], [])
        # ?owner= keeps the caller's view: rita sees alice's a only.
        self.assertEqual([m["id"] for m in self.call(
            "GET", "/v1/machines?owner=alice",
            token=self.tokens["rita"])["items"]], ["alice.a"])
        for rel in ("none", "bad"):
            r = self.http.req("GET", "/v1/machines", token=self.token(rel))
            self.assertEqual((r.status, r.json["code"]),
                             (401, "unauthorized"))

    def test_stranger_sees_nothing_of_a(self):
        """For eve, alice's a does not exist: the answers are those for a
        machine that is really absent (same status and code)."""
        eve = self.tokens["eve"]
        for path in ("/v1/machines/alice.a", "/v1/machines/alice.nothing",
                     "/v1/machines/alice.a/history",
                     "/v1/machines/alice.nothing/history"):
            r = self.http.req("GET", path, token=eve)
            self.assertEqual((r.status, r.json["code"]), (404, "not_found"),
                             path)


if __name__ == "__main__":
    vmlab.main()
