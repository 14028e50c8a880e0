"""test_problems.py - the problem catalogue, as documented and as served.

docs/problems.md documents every problem `code` (its table: code, status,
title; then one section per code under a heading per status). This test
keeps it equal to the catalogue api/problem.c serves (routes_dump prints
it), both ways. Then it sends a real vmlabd a sample of bad requests, one
or more per reachable code, and checks each answer: an RFC 9457 problem
(application/problem+json with type "/problems/<code>", title, status,
detail, code) whose code is in the catalogue with the catalogue's status
and title, the code the documentation names for that mistake, and, for a
refused mutation, a machine whose version and digest did not move.
"""

import http.client
import json
import os
import re
import subprocess
import unittest

import vmlab

PROBLEMS_MD = os.path.join(vmlab.SRCDIR, "docs", "problems.md")
ROUTES_DUMP = os.environ.get("VMLAB_ROUTES_DUMP") or os.path.join(
    vmlab.SRCDIR, "build", "tests", "api", "routes_dump")

# A daemon that holds at most this many machines (too_many_machines).
MAX_MACHINES = 2


def served_catalogue():
    """{code: (status, title)} from routes_dump."""
    out = subprocess.run([ROUTES_DUMP], capture_output=True, check=True)
    probs = json.loads(out.stdout)["problems"]
    cat = {p["code"]: (p["status"], p["title"]) for p in probs}
    assert len(cat) == len(probs), "a code twice in the served catalogue"
    return cat


def documented():
    """(table rows {code: (status, title)}, section headings
    {code: status of the group they sit under}, duplicates)."""
    with open(PROBLEMS_MD, encoding="utf-8") as f:
        text = f.read()
    table, headings, dups = {}, {}, []
    row = re.compile(r"^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|\s*(.+?)\s*\|\s*$")
    group = None
    for line in text.splitlines():
        m = row.match(line)
        if m:
            if m.group(1) in table:
                dups.append(m.group(1))
            table[m.group(1)] = (int(m.group(2)), m.group(3))
            continue
        m = re.match(r"^## (\d{3})\b", line)
        if m:
            group = int(m.group(1))
            continue
        if line.startswith("## "):
            group = None
            continue
        m = re.match(r"^### `([a-z_]+)`\s*$", line)
        if m:
            if m.group(1) in headings:
                dups.append(m.group(1))
            headings[m.group(1)] = group
    return table, headings, dups


class Catalogue(unittest.TestCase):
    """docs/problems.md against the served catalogue, both ways."""

    @classmethod
    def setUpClass(cls):
        cls.served = served_catalogue()
        cls.table, cls.headings, cls.dups = documented()

    def test_served_catalogue_is_not_empty(self):
        self.assertGreaterEqual(len(self.served), 20)

    def test_no_code_documented_twice(self):
        self.assertEqual(self.dups, [])

    def test_every_served_code_is_documented(self):
        for code, (status, title) in sorted(self.served.items()):
            self.assertIn(code, self.table, "%s missing from the table" % code)
            self.assertEqual(self.table[code], (status, title), code)

    def test_every_documented_code_is_served(self):
        for code, entry in sorted(self.table.items()):
            self.assertIn(code, self.served, "%s is not served" % code)
            self.assertEqual(self.served[code], entry, code)

    def test_every_code_has_a_section_under_its_status(self):
        self.assertEqual(set(self.headings), set(self.served))
        for code, group in self.headings.items():
            self.assertEqual(group, self.served[code][0],
                             "%s sits under the wrong status" % code)

    def test_prose_names_every_status(self):
        """The paragraph on statuses names each status the catalogue has
        (5xx for the server's own)."""
        with open(PROBLEMS_MD, encoding="utf-8") as f:
            text = f.read()
        start = text.index("The statuses follow")
        para = text[start:text.index("\n\n", start)]
        for status in sorted({st for st, _ in self.served.values()}):
            self.assertRegex(para, r"\b%s\b" % (status if status < 500
                                                else "5xx"), status)

    def test_mentions_the_rfc_9457_shape(self):
        with open(PROBLEMS_MD, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("RFC 9457", text)
        self.assertIn("/problems/<code>", text)
        for member in ("type", "title", "status", "detail", "code"):
            self.assertIn("`%s`" % member, text)


M = "/v1/machines/p1"

# (expected code, method, path, JSON body or None, raw body or None,
#  extra headers, whether it is a refused change to machine p1).
# {K}, {K2}, {V}, {P} are filled in from the setup's allocations.
SAMPLES = [
    ("malformed_json", "POST", M + "/kmalloc", None, b'{"size":', (), True),
    ("malformed_json", "POST", M + "/kmalloc", None, b'{"size":8} x', (),
     True),
    ("duplicate_key", "POST", M + "/kmalloc", None,
     b'{"size":8,"size":16}', (), True),
    ("wrong_type", "POST", M + "/kmalloc", {"size": True}, None, (), True),
    ("wrong_type", "POST", M + "/kmalloc", [64], None, (), True),
    ("wrong_type", "POST", M + "/cpus/0/switch", {"pid": [1]}, None, (),
     True),
    ("invalid_value", "POST", M + "/cpus/0/switch", {"pid": "one"}, None,
     (), True),
    ("wrong_type", "POST", M + "/kmalloc", {"size": 1.5}, None, (), True),
    ("wrong_type", "POST", M + "/processes/1/brk", {"increment": 0.5}, None,
     (), True),
    # A string field given another JSON type is a wrong type too (SPEC 2.1).
    ("wrong_type", "POST", "/v1/machines", {"id": 5}, None, (), False),
    ("wrong_type", "POST", M + "/clone", {"id": True}, None, (), False),
    ("wrong_type", "POST", M + "/processes/1/mmap",
     {"length": 4096, "prot": 7}, None, (), True),
    ("bad_query", "GET", M + "/frames?owner=bogus", None, None, (), False),
    ("bad_query", "GET", "/v1/machines?page_size=0", None, None, (), False),
    ("not_found", "GET", "/v1/machines/nope", None, None, (), False),
    ("not_found", "DELETE", "/v1/machines/nope", None, None, (), False),
    ("not_found", "GET", M + "/processes/99", None, None, (), False),
    ("not_found", "POST", M + "/cpus/7/switch", {"pid": 1}, None, (), True),
    ("no_such_route", "GET", "/v1/nothing", None, None, (), False),
    ("no_such_route", "GET", M + "/registers", None, None, (), False),
    ("method_not_allowed", "PUT", "/v1/machines", None, None, (), False),
    ("method_not_allowed", "GET", M + "/kmalloc", None, None, (), False),
    ("precondition_failed", "POST", M + "/kmalloc", {"size": 64}, None,
     ('If-Match: "123456"',), True),
    ("payload_too_large", "POST", M + "/kmalloc", None,
     b" " * (1024 * 1024 + 1), (), True),
    ("unsupported_media_type", "POST", M + "/kmalloc", None,
     b'{"size":64}', ("Content-Type: application/xml",), True),
    ("unknown_field", "POST", M + "/kmalloc", {"sise": 64}, None, (), True),
    ("unknown_field", "POST", "/v1/machines", {"id": "p9", "ram": "1GiB"},
     None, (), False),
    ("unknown_field", "GET", M, {"verbose": True}, None, (), False),
    ("missing_field", "POST", M + "/kmalloc", {}, None, (), True),
    ("missing_field", "POST", M + "/translate", {"pid": 1}, None, (), False),
    ("invalid_value", "POST", "/v1/machines", {"arch": "sparc"}, None, (),
     False),
    ("invalid_value", "POST", "/v1/machines", {"id": "Lab1"}, None, (),
     False),
    ("invalid_value", "POST", "/v1/machines",
     {"arch": "i386", "kaslr": True}, None, (), False),
    ("invalid_value", "POST", M + "/kmalloc",
     {"size": 64, "gfp": "__GFP_DMA|__GFP_HIGHMEM"}, None, (), True),
    ("invalid_value", "POST", M + "/translate",
     {"va": "0x1000", "cpu": 0, "pid": 1}, None, (), False),
    ("out_of_range", "POST", "/v1/machines", {"cpus": 65}, None, (), False),
    ("out_of_range", "POST", M + "/pages", {"order": 11}, None, (), True),
    ("out_of_range", "POST", M + "/kmalloc", {"size": -1}, None, (), True),
    ("out_of_range", "POST", M + "/phys-to-virt", {"pa": "0x7f000000"},
     None, (), False),
    ("out_of_range", "POST", M + "/virt-to-phys", {"va": "{V}"}, None, (),
     False),
    ("out_of_range", "POST", M + "/dma-check",
     {"va": "{K}", "length": 64, "dma_mask_bits": 65}, None, (), False),
    ("imprecise_number", "POST", M + "/kmalloc", None,
     b'{"size":9007199254740993}', (), True),
    ("batch_too_large", "POST", M + "/translate/batch",
     {"items": [{"va": "0x8048000"}] * 10001}, None, (), False),
    ("too_many_machines", "POST", "/v1/machines", {"id": "p3"}, None, (),
     False),
    ("already_exists", "POST", "/v1/machines", {"id": "p1"}, None, (),
     False),
    ("out_of_memory", "POST", M + "/vmalloc", {"size": "128MiB"}, None, (),
     True),
    ("out_of_memory", "POST", M + "/pages",
     {"order": 10, "gfp": "GFP_DMA"}, None, (), True),
    ("no_virtual_space", "POST", M + "/processes/1/mmap",
     {"length": "3000MiB", "populate": False}, None, (), True),
    ("double_free", "POST", M + "/kfree", {"va": "{K2}"}, None, (), True),
    ("interior_pointer", "POST", M + "/kfree", {"va": "{K+8}"}, None, (),
     True),
    ("wrong_free", "POST", M + "/kfree", {"va": "{V}"}, None, (), True),
    ("wrong_free", "POST", M + "/vfree", {"va": "{K}"}, None, (), True),
    ("wrong_order", "POST", M + "/pages/free", {"pa": "{P}", "order": 1},
     None, (), True),
    ("not_allocated", "POST", M + "/vfree", {"va": "0xfe000000"}, None, (),
     True),
    ("task_busy", "POST", M + "/cpus/1/switch", {"pid": 1}, None, (), True),
    # Tenants and shares (auth off: the caller is the admin, "local").
    ("already_exists", "POST", "/v1/tenants", {"name": "pt"}, None, (),
     False),
    ("invalid_value", "POST", "/v1/tenants", {"name": "local"}, None, (),
     False),
    ("invalid_value", "POST", "/v1/tenants", {"name": "PT"}, None, (),
     False),
    ("invalid_value", "POST", "/v1/tenants", {"name": "px", "role": "admin"},
     None, (), False),
    ("missing_field", "POST", "/v1/tenants", {"role": "grader"}, None, (),
     False),
    ("wrong_type", "POST", "/v1/tenants", {"name": "px", "quota": 5}, None,
     (), False),
    ("unknown_field", "POST", "/v1/tenants",
     {"name": "px", "quota": {"cpus": 1}}, None, (), False),
    ("out_of_range", "POST", "/v1/tenants",
     {"name": "px", "quota": {"rate": 0}}, None, (), False),
    ("out_of_range", "POST", "/v1/tenants",
     {"name": "px", "quota": {"memory": "2000TiB"}}, None, (), False),
    ("not_found", "DELETE", "/v1/tenants/nobody", None, None, (), False),
    ("not_found", "POST", "/v1/tenants/local/tokens", None, None, (), False),
    ("invalid_value", "POST", M + "/shares",
     {"tenant": "nobody", "access": "read"}, None, (), False),
    ("invalid_value", "POST", M + "/shares",
     {"tenant": "local", "access": "read"}, None, (), False),
    ("invalid_value", "POST", M + "/shares",
     {"tenant": "pt", "access": "admin"}, None, (), False),
    ("not_found", "DELETE", M + "/shares/pt", None, None, (), False),
    ("not_found", "GET", "/v1/machines/nobody.p1", None, None, (), False),
    ("bad_query", "GET", "/v1/machines?owner=No", None, None, (), False),
]

# Reached only with --auth on (class ServedAuth); the tokens are named by
# tenant: "" sends none, "bad" an unknown one.
AUTH_SAMPLES = [
    # (code, token, method, path, JSON body, extra headers)
    ("unauthorized", "", "GET", "/v1/machines", None, ()),
    ("unauthorized", "", "GET", "/v1/nothing", None, ()),
    ("unauthorized", "bad", "GET", "/v1", None, ()),
    ("unauthorized", "", "GET", "/v1", None,
     ("Authorization: Basic YTpi",)),
    ("forbidden", "pa", "GET", "/metrics", None, ()),
    ("forbidden", "pa", "POST", "/v1/tenants", {"name": "px"}, ()),
    ("forbidden", "pg", "POST", "/v1/machines", {"memory": "64MiB"}, ()),
    ("forbidden", "pa", "POST", "/v1/machines/admin.s1/kmalloc",
     {"size": 8}, ()),
    ("forbidden", "pa", "DELETE", "/v1/machines/admin.s1", None, ()),
    ("not_found", "pa", "GET", "/v1/machines/admin.s2", None, ()),
    ("quota_exceeded", "pa", "POST", "/v1/machines",
     {"id": "q2", "memory": "64MiB"}, ()),
    ("quota_exceeded", "pa", "POST", "/v1/machines/q1/processes", {}, ()),
    ("too_many_shares", "admin", "POST", "/v1/machines/s2/shares",
     {"tenant": "pa", "access": "read"}, ()),
    ("rate_limited", "ps", "GET", "/v1/whoami", None, ()),
]
# The codes only a daemon with auth answers (not_found is everywhere).
AUTH_CODES = {code for code, *_ in AUTH_SAMPLES} - {"not_found"}
# Unreachable by a request: the server's own failures, and the tenant
# limit (10,000 tenants take too long to create in this test); the
# process limit is reached in test_limits.py.
UNREACHED = {"internal_error", "service_unavailable", "too_many_tenants",
             "too_many_processes"}


class Served(vmlab.DaemonTest):
    """Bad requests to a real daemon: each answer is in the catalogue."""

    daemon_args = ("--max-machines", str(MAX_MACHINES))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.catalogue = served_catalogue()
        base = cls.daemon.url

        def ok(method, path, body, status):
            r = vmlab.curl(base, method, path, body)
            if r.status != status:
                raise AssertionError("setup %s %s: %r" % (method, path, r))
            return r.json

        ok("POST", "/v1/machines", {"id": "p1", "arch": "i386",
                                    "memory": "64MiB", "cpus": 2,
                                    "seed": 7}, 201)
        ok("POST", "/v1/machines", {"id": "p2", "arch": "x86_64"}, 201)
        ok("POST", "/v1/tenants", {"name": "pt"}, 201)
        ok("POST", M + "/processes", {"name": "p"}, 201)
        ok("POST", M + "/cpus/0/switch", {"pid": 1}, 200)
        k = ok("POST", M + "/kmalloc", {"size": 64}, 201)["va"]
        k2 = ok("POST", M + "/kmalloc", {"size": 64}, 201)["va"]
        ok("POST", M + "/kfree", {"va": k2}, 200)
        v = ok("POST", M + "/vmalloc", {"size": "8KiB"}, 201)["va"]
        p = ok("POST", M + "/pages", {"order": 0}, 201)["pa"]
        # Empty ZONE_DMA of order-10 blocks (there are a few at most).
        for _ in range(8):
            r = vmlab.curl(base, "POST", M + "/pages",
                           {"order": 10, "gfp": "GFP_DMA"})
            if r.status != 201:
                break
        cls.values = {"{K}": k, "{K2}": k2, "{V}": v, "{P}": p,
                      "{K+8}": hex(int(k, 16) + 8)}

    def fill(self, body):
        if isinstance(body, dict):
            return {k: self.values.get(v, v) if isinstance(v, str) else v
                    for k, v in body.items()}
        return body

    def state(self):
        m = self.ok("GET", M)
        return m["version"], m["digest"]

    def test_samples(self):
        seen = set()
        for code, method, path, body, raw, headers, mutates in SAMPLES:
            what = "%s %s %s" % (method, path,
                                 (raw or json.dumps(self.fill(body)))[:80]
                                 if (raw or body is not None) else "")
            with self.subTest(request=what):
                before = self.state()
                r = self.req(method, path, self.fill(body), headers, raw)
                self.assertEqual(r.headers.get("content-type"),
                                 "application/problem+json", r)
                p = r.json
                self.assertIsInstance(p, dict, r)
                for k in ("type", "title", "status", "detail", "code"):
                    self.assertIn(k, p, r)
                self.assertIn(p["code"], self.catalogue,
                              "%r is not in the catalogue" % p["code"])
                status, title = self.catalogue[p["code"]]
                self.assertEqual(r.status, status, r)
                self.assertEqual(p["status"], status, r)
                self.assertEqual(p["title"], title, r)
                self.assertEqual(p["type"], "/problems/" + p["code"], r)
                self.assertTrue(p["detail"].strip(), r)
                self.assertEqual(p["code"], code, r)
                self.assertNotIn("etag", r.headers, r)
                if mutates:
                    self.assertEqual(self.state(), before,
                                     "a refused request changed p1")
                seen.add(p["code"])
        # Everything but the server-side codes and those of auth is
        # reachable here.
        self.assertEqual(set(self.catalogue) - seen, UNREACHED | AUTH_CODES)

    def test_documented_status_of_each_code(self):
        table, _, _ = documented()
        for code, *_ in SAMPLES + AUTH_SAMPLES:
            self.assertEqual(table.get(code), self.catalogue[code], code)


class ServedAuth(vmlab.DaemonTest):
    """With --auth on: the codes of tokens, roles, shares and quotas."""

    daemon_args = ("--auth", "on")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.catalogue = served_catalogue()
        admin = cls.daemon.admin_token()
        conn = http.client.HTTPConnection("127.0.0.1", cls.daemon.port,
                                          timeout=60)

        def ok(method, path, body, status, token=admin):
            conn.request(method, path, json.dumps(body),
                         {"Authorization": "Bearer " + token})
            r = conn.getresponse()
            text = r.read()
            if r.status != status:
                raise AssertionError("setup %s %s: %d %r" % (
                    method, path, r.status, text))
            return json.loads(text) if text else None

        cls.tokens = {"admin": admin, "": "", "bad": "vmlab_" + "x" * 43}
        for name, role, quota in (
                ("pa", "tenant", {"machines": 1, "processes": 1,
                                  "rate": 1000}),
                ("pg", "grader", {"rate": 1000}),
                ("ps", "tenant", {"rate": 1})):
            cls.tokens[name] = ok("POST", "/v1/tenants", {
                "name": name, "role": role, "quota": quota}, 201)["token"]
        ok("POST", "/v1/machines", {"id": "q1", "memory": "64MiB"}, 201,
           cls.tokens["pa"])
        ok("POST", "/v1/machines/q1/processes", {}, 201, cls.tokens["pa"])
        ok("POST", "/v1/machines", {"id": "s1", "memory": "64MiB"}, 201)
        ok("POST", "/v1/machines/s1/shares",
           {"tenant": "pa", "access": "read"}, 201)
        # s2: a machine with as many shares as a machine may have.
        ok("POST", "/v1/machines", {"id": "s2", "memory": "64MiB"}, 201)
        for i in range(1024):
            ok("POST", "/v1/tenants", {"name": "pf%d" % i, "quota":
                                       {"machines": 0}}, 201)
            ok("POST", "/v1/machines/s2/shares",
               {"tenant": "pf%d" % i, "access": "read"}, 201)
        conn.close()

    def test_samples(self):
        seen = set()
        for code, who, method, path, body, headers in AUTH_SAMPLES:
            with self.subTest(code=code, who=who, path=path):
                r = self.req(method, path, body, headers,
                             token=self.tokens[who])
                if code == "rate_limited":
                    # A bucket of 1 request: the next ones wait.
                    for _ in range(3):
                        if r.status != 200:
                            break
                        r = self.req(method, path, body, headers,
                                     token=self.tokens[who])
                p = r.json
                self.assertEqual(r.headers.get("content-type"),
                                 "application/problem+json", r)
                status, title = self.catalogue[p["code"]]
                self.assertEqual((r.status, p["status"], p["title"]),
                                 (status, status, title), r)
                self.assertEqual(p["type"], "/problems/" + p["code"], r)
                self.assertEqual(p["code"], code, r)
                self.assertNotIn("etag", r.headers, r)
                # The headers each code comes with (RFC 6750, RFC 9110).
                self.assertEqual("www-authenticate" in r.headers,
                                 code == "unauthorized", r.headers)
                self.assertEqual("retry-after" in r.headers,
                                 code == "rate_limited", r.headers)
                seen.add(p["code"])
        self.assertEqual(seen, AUTH_CODES | {"not_found"})
        # Refused: nothing changed.
        m = self.ok("GET", "/v1/machines/s1", token=self.tokens["admin"])
        self.assertEqual(m["version"], 0)
        self.assertEqual(self.ok("GET", "/v1/whoami",
                                 token=self.tokens["pa"])["usage"],
                         {"machines": 1, "memory": 64 << 20})


if __name__ == "__main__":
    vmlab.main()
