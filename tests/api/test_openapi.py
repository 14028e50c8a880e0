"""test_openapi.py - docs/openapi.json describes the API that vmlabd serves.

The document is checked on its own (OpenAPI 3.1 shape, every $ref
resolves, every schema is a valid Draft 2020-12 schema), against the route
table (routes_dump: every route, its parameters and body fields, the
problem catalogue, both ways), against the daemon (GET /v1/openapi.json is
the file), and in use: a tour drives a success of every route through
DaemonTest.req(), which validates each response against the document, and a
few refusals of every status class.
"""

import json
import os
import re
import unittest

import jsonschema

import vmlab

METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")
KIND_REF = {"u64": "UInt", "i64": "SInt", "size": "Size"}
# Route needs (routes_dump "need") that a caller's role or share can fail:
# 403 forbidden. "read" cannot: a caller that may not read a machine does
# not see it (404).
FORBIDDING = {"observer", "admin", "creator", "write", "owner"}


def load_text():
    with open(vmlab.OPENAPI, encoding="utf-8") as f:
        return f.read()


def pointer(doc, ref):
    """The target of a local $ref, or KeyError."""
    obj = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = obj[part]
    return obj


def walk(obj, path=""):
    """Yields (json-pointer, value) for every node."""
    yield path, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from walk(v, path + "/" + k.replace("~", "~0")
                            .replace("/", "~1"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, "%s/%d" % (path, i))


def operations(doc):
    for pattern, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield method.upper(), pattern, op


class Document(unittest.TestCase):
    """The file alone, and the file against the route table."""

    @classmethod
    def setUpClass(cls):
        cls.text = load_text()
        cls.doc = json.loads(cls.text)
        cls.table = vmlab.route_table()
        cls.api = vmlab.OpenAPI()

    def deref(self, obj):
        return self.api.deref(obj)

    def test_pretty_printed(self):
        self.assertEqual(self.text,
                         json.dumps(self.doc, indent=2, ensure_ascii=False)
                         + "\n",
                         "docs/openapi.json: pretty-print it with 2 spaces")

    def test_openapi_31_shape(self):
        d = self.doc
        self.assertEqual(d["openapi"], "3.1.0")
        self.assertTrue(d["info"]["title"])
        self.assertTrue(d["info"]["version"])
        self.assertTrue(d["paths"])
        ids = []
        for method, pattern, op in operations(d):
            where = "%s %s" % (method, pattern)
            self.assertTrue(pattern.startswith("/"), where)
            self.assertTrue(op.get("operationId"), where)
            self.assertTrue(op.get("description"), where)
            self.assertTrue(op.get("summary"), where)
            ids.append(op["operationId"])
            self.assertTrue(op["responses"], where)
            for status, resp in op["responses"].items():
                self.assertRegex(status, r"^[1-5][0-9][0-9]$", where)
                self.assertIn("description", self.deref(resp), where)
        self.assertEqual(len(ids), len(set(ids)), "operationIds repeat")

    def test_every_ref_resolves(self):
        refs = 0
        for where, node in walk(self.doc):
            if isinstance(node, dict) and "$ref" in node:
                ref = node["$ref"]
                refs += 1
                self.assertTrue(ref.startswith("#/"), (where, ref))
                try:
                    pointer(self.doc, ref)
                except (KeyError, IndexError, ValueError):
                    self.fail("%s: $ref %s does not resolve" % (where, ref))
        self.assertGreater(refs, 100)

    def schemas(self):
        """(where, schema) for every schema of the document."""
        d = self.doc
        for name, s in d["components"]["schemas"].items():
            yield "components/schemas/" + name, s
        for name, p in d["components"].get("parameters", {}).items():
            yield "components/parameters/" + name, p["schema"]
        for name, h in d["components"].get("headers", {}).items():
            yield "components/headers/" + name, h["schema"]
        for name, r in d["components"].get("responses", {}).items():
            for media, c in r.get("content", {}).items():
                yield "components/responses/%s/%s" % (name, media), \
                    c["schema"]
        for method, pattern, op in operations(d):
            where = "%s %s" % (method, pattern)
            for p in op.get("parameters", []):
                if "schema" in p:
                    yield where + " parameter " + p["name"], p["schema"]
            for media, c in op.get("requestBody", {}).get("content",
                                                          {}).items():
                yield where + " request " + media, c["schema"]
            for status, resp in op["responses"].items():
                for media, c in resp.get("content", {}).items():
                    yield "%s %s %s" % (where, status, media), c["schema"]

    def test_schemas_are_draft_2020_12(self):
        n = 0
        for where, s in self.schemas():
            try:
                jsonschema.Draft202012Validator.check_schema(s)
            except jsonschema.exceptions.SchemaError as e:
                self.fail("%s: %s" % (where, e.message))
            n += 1
        self.assertGreater(n, 60)

    def test_routes_both_ways(self):
        table = {(r["method"], r["pattern"]) for r in self.table["routes"]}
        doc = {(m, p) for m, p, _ in operations(self.doc)}
        self.assertEqual(doc - table, set(), "in the document, not served")
        self.assertEqual(table - doc, set(), "served, not in the document")

    def test_path_parameters(self):
        for method, pattern, op in operations(self.doc):
            names = re.findall(r"\{(\w+)\}", pattern)
            params = [self.deref(p) for p in op.get("parameters", [])]
            path = [p["name"] for p in params if p["in"] == "path"]
            self.assertEqual(path, names, "%s %s" % (method, pattern))
            for p in params:
                if p["in"] == "path":
                    self.assertIs(p["required"], True)
            self.assertTrue(set(names) <= {"m", "pid", "n", "t"}, pattern)

    def test_query_parameters(self):
        want = {("GET", "/v1/machines"):
                    ["page_size", "page_token", "owner"],
                ("GET", "/v1/tenants"): ["page_size", "page_token"],
                ("GET", "/v1/machines/{m}/processes"):
                    ["page_size", "page_token"],
                ("GET", "/v1/machines/{m}/history"):
                    ["page_size", "page_token"],
                ("GET", "/v1/machines/{m}/frames"):
                    ["owner", "start_pfn", "end_pfn"]}
        for method, pattern, op in operations(self.doc):
            q = [self.deref(p)["name"] for p in op.get("parameters", [])
                 if self.deref(p)["in"] == "query"]
            self.assertEqual(q, want.get((method, pattern), []),
                             "%s %s" % (method, pattern))

    def test_request_bodies_are_the_route_fields(self):
        routes = {(r["method"], r["pattern"]): r for r in self.table["routes"]}
        for method, pattern, op in operations(self.doc):
            where = "%s %s" % (method, pattern)
            fields = routes[(method, pattern)]["fields"]
            if fields is None:
                self.assertNotIn("requestBody", op, where)
                continue
            body = self.deref(op["requestBody"])
            schema = self.deref(body["content"]["application/json"]["schema"])
            self.assertEqual(schema["type"], "object", where)
            self.assertIs(schema["additionalProperties"], False, where)
            self.assertEqual(list(schema["properties"]),
                             [f["name"] for f in fields], where)
            self.assertTrue(set(schema.get("required", [])) <=
                            set(schema["properties"]), where)
            for f in fields:
                prop = schema["properties"][f["name"]]
                what = "%s: %s (%s)" % (where, f["name"], f["kind"])
                if f["kind"] in KIND_REF:
                    self.assertEqual(prop["$ref"], "#/components/schemas/" +
                                     KIND_REF[f["kind"]], what)
                    continue
                prop = self.deref(prop)
                want = {"bool": "boolean", "string": "string",
                        "items": "array", "quota": "object"}[f["kind"]]
                self.assertEqual(prop["type"], want, what)

    def test_field_kinds_accept_what_the_parser_accepts(self):
        s = self.doc["components"]["schemas"]
        cases = {
            "UInt": ([0, 9007199254740991, "0x1f", "0XFF", "18446744073709551615",
                      "12"], [-1, 9007199254740992, 1.5, "", "0x", "4KiB",
                              "-1", True, None]),
            "SInt": ([-9007199254740991, 5, "-0x10", "-4096"],
                     [9007199254740992, "--1", "4KiB", 0.5]),
            "Size": ([0, 4096, "0x1000", "4KiB", "1 GiB", "3TiB", "7B"],
                     [-4096, "4 kib", "4KB", "0x1KiB", "1  GiB", "1.5GiB",
                      False]),
            "Gfp": (["GFP_KERNEL", "GFP_KERNEL|__GFP_ZERO",
                     " GFP_DMA | __GFP_HIGHMEM ", "GFP_HIGHUSER_MOVABLE"],
                    ["", "GFP_KERNEL|", "gfp_kernel", "GFP_KERNEL,__GFP_ZERO",
                     "GFP_KERNEL __GFP_ZERO"]),
            "MachineId": (["lab1", "0", "a" * 63], ["Lab1", "-a", "a" * 64,
                                                    "a.b", ""]),
        }
        for name, (good, bad) in cases.items():
            v = jsonschema.Draft202012Validator(s[name])
            for x in good:
                self.assertTrue(v.is_valid(x), "%s should take %r" % (name, x))
            for x in bad:
                self.assertFalse(v.is_valid(x), "%s should refuse %r" %
                                 (name, x))

    def test_enums_match_the_code(self):
        s = self.doc["components"]["schemas"]
        self.assertEqual(s["Arch"]["enum"],
                         ["i386", "i386-pae", "x86_64", "x86_64-la57"])
        self.assertEqual(s["Vmsplit"]["enum"], ["3G/1G", "2G/2G", "1G/3G"])
        self.assertEqual(s["Mode"]["enum"], ["user", "kernel"])
        self.assertEqual(s["Access"]["enum"], ["read", "write", "exec"])
        # Every GFP name of core/gfp.c, and no other.
        with open(os.path.join(vmlab.SRCDIR, "core", "gfp.c")) as f:
            src = f.read()
        table = src[src.index("struct gfp_name names[]"):]
        names = re.findall(r'\{ "([A-Z0-9_]+)",', table[:table.index("};")])
        self.assertGreater(len(names), 30)
        v = jsonschema.Draft202012Validator(s["Gfp"])
        for n in names:
            self.assertTrue(v.is_valid(n), n)
            self.assertTrue(v.is_valid("GFP_KERNEL|" + n), n)
            self.assertFalse(v.is_valid(n + "X"), n)

    def test_problem_code_is_the_catalogue(self):
        cat = self.table["problems"]
        problem = self.doc["components"]["schemas"]["Problem"]
        self.assertEqual(problem["properties"]["code"]["enum"],
                         [p["code"] for p in cat])
        self.assertEqual(sorted(problem["required"]),
                         sorted(["type", "title", "status", "detail", "code"]))
        # Each status's problem schema names exactly that status's codes.
        for status in sorted({p["status"] for p in cat}):
            s = self.doc["components"]["schemas"]["Problem%d" % status]
            self.assertEqual(s["properties"]["status"]["const"], status)
            self.assertEqual(s["properties"]["code"]["enum"],
                             [p["code"] for p in cat
                              if p["status"] == status], status)

    def test_refusals_each_route_can_give(self):
        routes = {(r["method"], r["pattern"]): r for r in self.table["routes"]}
        for method, pattern, op in operations(self.doc):
            where = "%s %s" % (method, pattern)
            r = routes[(method, pattern)]
            got = {int(s) for s in op["responses"] if int(s) >= 400}
            # Any route refuses a body it cannot read; every route but
            # /healthz needs a valid token (401) and counts against the
            # caller's request rate (429); a route whose need a role or a
            # share can fail answers 403; a path with {m}, {pid}, {n} or
            # {t} names something that may not exist; only a route with
            # body fields checks Content-Type; only a mutation takes
            # If-Match (and commits to the store); the history reads the
            # store's log, which may fail to read (503).
            want = {400, 413, 422}
            if r["need"] != "public":
                want |= {401, 429}
            if r["need"] in FORBIDDING:
                want.add(403)
            if "{" in pattern:
                want.add(404)
            if r["fields"] is not None:
                want.add(415)
            if r["mutates"]:
                want |= {412, 503}
            if pattern.endswith("/history"):
                want.add(503)
            # Creating, cloning and deleting machines, tenants, tokens
            # and shares write the store.
            if (method, pattern) in {("POST", "/v1/machines"),
                                     ("POST", "/v1/machines/{m}/clone"),
                                     ("DELETE", "/v1/machines/{m}"),
                                     ("POST", "/v1/tenants"),
                                     ("DELETE", "/v1/tenants/{t}"),
                                     ("POST", "/v1/tenants/{t}/tokens"),
                                     ("POST", "/v1/machines/{m}/shares"),
                                     ("DELETE",
                                      "/v1/machines/{m}/shares/{t}")}:
                want.add(503)
            # A taken name, or a limit of the server or of the machine.
            if (method, pattern) in {("POST", "/v1/machines"),
                                     ("POST", "/v1/machines/{m}/clone"),
                                     ("POST", "/v1/tenants"),
                                     ("POST", "/v1/machines/{m}/shares")}:
                want.add(409)
            self.assertEqual(got - {404, 409}, want - {404, 409}, where)
            self.assertTrue(want <= got, where)
            for s in got:
                resp = self.deref(op["responses"][str(s)])
                self.assertEqual(list(resp["content"]),
                                 ["application/problem+json"], where)
                schema = pointer(self.doc, resp["content"][
                    "application/problem+json"]["schema"]["$ref"])
                self.assertEqual(schema["properties"]["status"]["const"], s)
            success = [int(s) for s in op["responses"] if int(s) < 400]
            self.assertTrue(success, where)
            self.assertTrue(set(success) <= {200, 201, 204}, where)
            self.assertEqual(success == [204], method == "DELETE", where)
            for s in success:
                heads = self.deref(op["responses"][str(s)]).get("headers",
                                                                {})
                self.assertEqual("ETag" in heads, r["mutates"], where)
            names = [self.deref(p)["name"] for p in op.get("parameters", [])]
            self.assertEqual("If-Match" in names, r["mutates"], where)

    def test_bearer_security(self):
        """The bearer scheme applies to every operation but GET /healthz,
        and the refusals it causes carry their headers."""
        d = self.doc
        self.assertEqual(d["components"]["securitySchemes"]["bearerAuth"],
                         dict(d["components"]["securitySchemes"]
                              ["bearerAuth"], type="http", scheme="bearer"))
        self.assertEqual(d["security"], [{"bearerAuth": []}])
        routes = {(r["method"], r["pattern"]): r for r in self.table["routes"]}
        public = set()
        for method, pattern, op in operations(d):
            if routes[(method, pattern)]["need"] == "public":
                public.add((method, pattern))
                self.assertEqual(op.get("security"), [], pattern)
                self.assertFalse({"401", "403", "429"} & set(op["responses"]),
                                 pattern)
            else:
                self.assertNotIn("security", op, pattern)
        self.assertEqual(public, {("GET", "/healthz")})
        r401 = d["components"]["responses"]["Unauthorized"]
        self.assertTrue(self.deref(r401["headers"]["WWW-Authenticate"])
                        ["required"])
        r429 = d["components"]["responses"]["TooManyRequests"]
        # quota_exceeded has no Retry-After: waiting does not cure it.
        self.assertIs(self.deref(r429["headers"]["Retry-After"])["required"],
                      False)
        www = jsonschema.Draft202012Validator(
            d["components"]["headers"]["WWW-Authenticate"]["schema"])
        self.assertTrue(www.is_valid('Bearer realm="vmlab"'))
        self.assertTrue(www.is_valid(
            'Bearer realm="vmlab", error="invalid_token"'))
        self.assertFalse(www.is_valid("Basic"))

    def test_names_of_machines_and_tenants(self):
        """{m} and a machine object's id take id or owner.id; a tenant
        name, a share's tenant and a token have their own forms."""
        s = self.doc["components"]["schemas"]
        m = self.deref(self.doc["components"]["parameters"]["m"])
        cases = {
            "MachineName": (["lab1", "alice.lab1", "a" * 32 + "." + "b" * 63,
                             "local.m-0123456789ab"],
                            ["a..b", ".x", "x.", "a" * 33 + ".b", "A.b",
                             "a.b.c", "-a.b", ""]),
            "TenantName": (["alice", "a", "s-1", "a" * 32],
                           ["", "-a", "Alice", "a" * 33, "a.b", "*"]),
            "ShareTenant": (["*", "bob"], ["**", "", "Bob"]),
            "Token": (["vmlab_" + "A" * 43, "vmlab_" + "-_" * 21 + "a"],
                      ["vmlab_" + "A" * 42, "vmlab_" + "A" * 44,
                       "token_" + "A" * 43]),
        }
        cases["m"] = cases["MachineName"]
        for name, (good, bad) in cases.items():
            v = jsonschema.Draft202012Validator(
                m["schema"] if name == "m" else s[name])
            for x in good:
                self.assertTrue(v.is_valid(x), "%s should take %r" % (name, x))
            for x in bad:
                self.assertFalse(v.is_valid(x), "%s should refuse %r" %
                                 (name, x))
        self.assertEqual(s["Machine"]["properties"]["id"]["$ref"],
                         "#/components/schemas/MachineName")
        self.assertIn("owner", s["Machine"]["required"])
        # A new machine's id has no owner part.
        self.assertEqual(s["MachineCreate"]["properties"]["id"]["$ref"],
                         "#/components/schemas/MachineId")
        self.assertEqual(s["Role"]["enum"], ["admin", "grader", "tenant"])
        self.assertEqual(s["TenantRole"]["enum"], ["tenant", "grader"])
        self.assertEqual(s["ShareAccess"]["enum"], ["read", "write"])

    def test_validator_finds_misfits(self):
        """The response check refuses what the document does not allow."""
        def resp(status, body, ctype="application/json", headers=None):
            h = {"content-type": ctype}
            h.update(headers or {})
            return vmlab.Response(status, h, body if isinstance(body, str)
                                  else json.dumps(body))

        api = self.api
        ok = resp(200, {"status": "ok"})
        self.assertIsNone(api.check("GET", "/healthz", ok))
        # An undocumented status, a wrong shape, a wrong media type.
        self.assertIn("not documented",
                      api.check("GET", "/healthz", resp(201, {"status":
                                                               "ok"})))
        self.assertIsNotNone(api.check("GET", "/healthz",
                                       resp(200, {"status": "up"})))
        self.assertIsNotNone(api.check("GET", "/healthz",
                                       resp(200, {"status": "ok", "x": 1})))
        self.assertIsNotNone(api.check("GET", "/healthz",
                                       resp(200, {"status": "ok"},
                                            "text/plain")))
        self.assertIsNotNone(api.check("GET", "/healthz",
                                       resp(200, "{not json")))
        # Problems: the code must fit the status.
        p = {"type": "/problems/not_found", "title": "No such resource",
             "status": 404, "detail": "no machine", "code": "not_found"}
        self.assertIsNone(api.check("GET", "/v1/machines/x",
                                    resp(404, p, "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/v1/machines/x",
                                       resp(404, dict(p, code="wrong_type"),
                                            "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/v1/machines/x",
                                       resp(404, dict(p, code="nope"),
                                            "application/problem+json")))
        # No route: only no_such_route; a known path: only 405.
        nr = dict(p, code="no_such_route", type="/problems/no_such_route")
        self.assertIsNone(api.check("GET", "/v1/nothing",
                                    resp(404, nr, "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/v1/nothing",
                                       resp(404, p,
                                            "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/v1/machines/" + "a" * 64,
                                       resp(200, {})))
        self.assertIsNotNone(api.check("PUT", "/v1/machines",
                                       resp(404, nr,
                                            "application/problem+json")))
        # 401 needs its WWW-Authenticate; a machine needs its owner.
        un = {"type": "/problems/unauthorized", "title": "x", "status": 401,
              "detail": "no token", "code": "unauthorized"}
        self.assertIsNone(api.check("GET", "/v1", resp(
            401, un, "application/problem+json",
            {"www-authenticate": 'Bearer realm="vmlab"'})))
        self.assertIn("WWW-Authenticate", api.check("GET", "/v1", resp(
            401, un, "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/healthz", resp(
            401, un, "application/problem+json",
            {"www-authenticate": 'Bearer realm="vmlab"'})))
        # Before routing: an unknown path without a token is 401 too.
        self.assertIsNone(api.check("GET", "/v1/nothing", resp(
            401, un, "application/problem+json",
            {"www-authenticate": 'Bearer realm="vmlab"'})))
        fb = dict(un, type="/problems/forbidden", status=403,
                  code="forbidden")
        self.assertIsNone(api.check("POST", "/v1/machines/x/kfree", resp(
            403, fb, "application/problem+json")))
        self.assertIsNotNone(api.check("GET", "/v1/machines/x/zones", resp(
            403, fb, "application/problem+json")))
        machine = {"id": "alice.lab1", "owner": "alice", "arch": "x86_64",
                   "memory": 67108864, "cpus": 1, "seed": "0", "churn": 0,
                   "vmsplit": None, "kaslr": False, "model_version": 1,
                   "version": 0, "digest": "0123456789abcdef",
                   "processes": 0, "frames_in_use": 1,
                   "created": "2024-01-01T00:00:00Z"}
        self.assertIsNone(api.check("GET", "/v1/machines/alice.lab1",
                                    resp(200, machine)))
        no_owner = dict(machine)
        del no_owner["owner"]
        self.assertIsNotNone(api.check("GET", "/v1/machines/alice.lab1",
                                       resp(200, no_owner)))
        # 204: no body; a mutation: ETag.
        self.assertIsNone(api.check("DELETE", "/v1/machines/x",
                                    resp(204, "")))
        self.assertIsNotNone(api.check("DELETE", "/v1/machines/x",
                                       resp(204, "{}")))
        free = {"va": "0xffff888000001000", "version": 3}
        self.assertIsNone(api.check("POST", "/v1/machines/x/kfree",
                                    resp(200, free, headers={"etag":
                                                             '"3"'})))
        self.assertIn("ETag", api.check("POST", "/v1/machines/x/kfree",
                                        resp(200, free)))
        self.assertIsNotNone(api.check("POST", "/v1/machines/x/kfree",
                                       resp(200, dict(free, va=
                                                      "0xFFFF888000001000"),
                                            headers={"etag": '"3"'})))


class Live(vmlab.DaemonTest):
    """The daemon against the document: every response of these requests
    is validated by req()."""

    def test_served_document_is_the_file(self):
        r = self.req("GET", "/v1/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["content-type"], "application/json")
        self.assertTrue(json.loads(r.body) == json.loads(load_text()),
                        "the daemon serves another document than "
                        "docs/openapi.json")

    def test_every_route_succeeds_once(self):
        """A tour: one success of every route, each body validated."""
        api = vmlab.openapi()
        before = set(api.seen)
        api.seen.clear()
        try:
            self.tour()
        finally:
            seen = set(api.seen)
            api.seen |= before
        routes = self.table_routes()
        want = set()
        for method, pattern, op in operations(api.doc):
            for s in op["responses"]:
                if int(s) < 400:
                    want.add((method, pattern, int(s)))
        self.assertEqual(want - seen, set(), "successes not validated")
        self.assertEqual({(m, p) for m, p, _ in want},
                         {(r["method"], r["pattern"]) for r in routes})

    def table_routes(self):
        return vmlab.route_table()["routes"]

    def tour(self):
        self.assertEqual(self.ok("GET", "/healthz"), {"status": "ok"})
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn("text/plain", r.headers["content-type"])
        self.assertEqual(self.ok("GET", "/v1")["links"]["openapi"],
                         "/v1/openapi.json")
        self.ok("GET", "/v1/openapi.json")
        # Auth off: the caller is the admin, in the namespace "local".
        me = self.ok("GET", "/v1/whoami")
        self.assertEqual((me["tenant"], me["role"], me["quota"]),
                         ("local", "admin", None))

        # Tenants.
        self.req("DELETE", "/v1/tenants/oa-student")
        t = self.ok("POST", "/v1/tenants",
                    {"name": "oa-student", "quota": {"memory": "1GiB"}},
                    status=201)
        self.assertEqual((t["role"], t["quota"]["memory"]),
                         ("tenant", 1 << 30))
        self.ok("GET", "/v1/tenants?page_size=1")
        t2 = self.ok("POST", "/v1/tenants/oa-student/tokens", status=201)
        self.assertNotEqual(t2["token"], t["token"])

        # Machines.
        m = self.machine("oa-tour", memory="64MiB", cpus=2, seed="7")
        self.assertEqual(m["vmsplit"], None)
        self.machine("oa-tour-b", memory="64MiB")
        page = self.ok("GET", "/v1/machines?page_size=1")
        self.assertEqual(len(page["items"]), 1)
        if page["next_page_token"] is not None:
            self.ok("GET", "/v1/machines?page_size=1&page_token=" +
                    page["next_page_token"])
        self.ok("GET", "/v1/machines/oa-tour")
        self.assertEqual(self.ok("GET", "/v1/machines/local.oa-tour")["id"],
                         "oa-tour")
        mine = self.ok("GET", "/v1/machines?owner=local")["items"]
        self.assertEqual({x["owner"] for x in mine}, {"local"})

        # Shares: a new one (201), a changed one (200), the list, revoke.
        sh = "/v1/machines/oa-tour/shares"
        self.ok("POST", sh, {"tenant": "oa-student", "access": "read"},
                status=201)
        self.ok("POST", sh, {"tenant": "oa-student", "access": "write"},
                status=200)
        self.ok("POST", sh, {"tenant": "*", "access": "read"}, status=201)
        self.assertEqual(self.ok("GET", sh)["items"],
                         [{"tenant": "*", "access": "read"},
                          {"tenant": "oa-student", "access": "write"}])
        self.assertEqual(self.req("DELETE", sh + "/oa-student").status, 204)
        self.assertEqual(self.req("DELETE", sh + "/%2A").status, 204)
        self.assertEqual(self.ok("GET", sh)["items"], [])
        self.req("DELETE", "/v1/machines/oa-tour-copy")
        c = self.ok("POST", "/v1/machines/oa-tour/clone",
                    {"id": "oa-tour-copy"}, status=201)
        self.assertEqual(c["digest"], m["digest"])
        lay = self.ok("GET", "/v1/machines/oa-tour/layout")
        self.assertEqual(lay["regions"][-1]["end"], "0x10000000000000000")
        self.ok("GET", "/v1/machines/oa-tour/zones")
        fr = self.ok("GET", "/v1/machines/oa-tour/frames")
        self.assertTrue(fr["ranges"])
        self.ok("GET", "/v1/machines/oa-tour/frames?owner=free&start_pfn=0x100"
                "&end_pfn=4096")
        self.ok("GET", "/v1/machines/oa-tour/slabs")

        # Processes.
        base = "/v1/machines/oa-tour"
        p = self.ok("POST", base + "/processes", {"name": "init",
                                                  "heap": "8KiB"}, status=201)
        pid = p["pid"]
        pp = "%s/processes/%d" % (base, pid)
        self.assertEqual(self.ok("GET", base + "/processes")["items"][0]["pid"],
                         pid)
        self.ok("GET", pp)
        mm = self.ok("POST", pp + "/mmap", {"length": "16KiB", "prot": "r--"},
                     status=201)
        self.ok("POST", pp + "/munmap", {"addr": mm["start"],
                                         "length": 4096})
        self.ok("POST", pp + "/brk", {"increment": "0x1000"})
        self.ok("POST", pp + "/brk", {"increment": -4096})
        self.ok("GET", pp + "/pagetable")
        self.ok("GET", base + "/frames?owner=user")
        self.ok("GET", base + "/frames?owner=page_table")

        # The kernel's allocators.
        k = self.ok("POST", base + "/kmalloc", {"size": 64}, status=201)
        self.assertTrue(k["cache"].endswith("kmalloc-64"))
        self.ok("POST", base + "/kfree", {"va": k["va"]})
        z = self.ok("POST", base + "/kmalloc", {"size": 0}, status=200)
        self.assertEqual((z["pa"], z["cache"], z["zone"]), (None, None, None))
        big = self.ok("POST", base + "/kmalloc",
                      {"size": "100000", "gfp": "GFP_KERNEL|__GFP_ZERO"},
                      status=201)
        self.assertEqual(big["cache"], "large")
        w = self.ok("POST", base + "/kmalloc",
                    {"size": 32, "gfp": "GFP_KERNEL|__GFP_DMA32"}, status=201)
        self.assertTrue(w["warnings"])
        v = self.ok("POST", base + "/vmalloc", {"size": 9000}, status=201)
        self.assertEqual(len(v["frames"]), v["pages"])
        self.ok("POST", base + "/vfree", {"va": v["va"]})
        pg = self.ok("POST", base + "/pages", {"order": 1, "gfp": "GFP_DMA"},
                     status=201)
        self.ok("POST", base + "/pages/free", {"pa": pg["pa"], "order": 1})
        self.ok("GET", base + "/frames?owner=slab")
        self.ok("GET", base + "/frames?owner=kmalloc_large")
        self.ok("GET", base + "/frames?owner=kernel_stack")
        self.ok("GET", base + "/frames?owner=kernel_image")

        # CPUs and translation.
        self.ok("GET", base + "/cpus")
        hist = self.ok("GET", base + "/history?page_size=2")
        self.assertEqual(len(hist["operations"]), 2)
        self.ok("GET", base + "/history?page_token=" +
                hist["next_page_token"])
        sw = self.ok("POST", base + "/cpus/1/switch", {"pid": pid})
        self.assertEqual(sw["next_pid"], pid)
        t = self.ok("POST", base + "/translate",
                    {"va": big["va"], "mode": "kernel", "explain": True})
        self.assertTrue(t["ok"])
        self.assertEqual(t["pa"], big["pa"])
        t = self.ok("POST", base + "/translate",
                    {"va": mm["end"], "cpu": 1, "access": "write"})
        self.ok("POST", base + "/translate/batch", {"items": [
            {"va": "0x400000", "pid": pid, "access": "exec",
             "explain": True},
            {"va": "0x400000", "pid": pid, "access": "write"},
            {"va": "0x8000000000000000", "pid": pid},
            {"va": big["va"], "pid": pid},
            {"va": "0x0", "mode": "kernel"},
        ]})
        self.ok("POST", base + "/dma-check",
                {"va": big["va"], "length": "64KiB", "dma_mask_bits": 24})
        self.ok("POST", base + "/dma-check",
                {"va": "0x400000", "length": 8192, "pid": pid})
        self.ok("POST", base + "/virt-to-phys", {"va": big["va"]})
        self.ok("POST", base + "/phys-to-virt", {"pa": big["pa"]})

        # A 32-bit machine: a split, highmem, 4 MiB pages.
        b = self.machine("oa-tour-32", arch="i386", memory="1GiB",
                         vmsplit="3G/1G")
        self.assertEqual(b["vmsplit"], "3G/1G")
        b32 = "/v1/machines/oa-tour-32"
        hp = self.ok("POST", b32 + "/pages", {"gfp": "GFP_HIGHUSER"},
                     status=201)
        self.assertIsNone(hp["va"])
        self.ok("GET", b32 + "/zones")
        self.ok("GET", b32 + "/layout")
        self.ok("POST", b32 + "/translate", {"va": "0xc0001234", "pid": 0,
                                             "explain": True})
        p32 = self.ok("POST", b32 + "/processes", {}, status=201)
        self.ok("GET", "%s/processes/%d/pagetable" % (b32, p32["pid"]))

        # Deletions.
        r = self.req("DELETE", pp)
        self.assertEqual(r.status, 204)
        for mid in ("oa-tour-copy", "oa-tour-b", "oa-tour-32", "oa-tour"):
            self.assertEqual(self.req("DELETE", "/v1/machines/" + mid).status,
                             204)
        self.assertEqual(self.req("DELETE", "/v1/tenants/oa-student").status,
                         204)

    # ---- refusals, by status class ----

    def test_400(self):
        self.problem("POST", "/v1/machines", raw=b'{"arch":', status=400,
                     code="malformed_json")
        self.problem("POST", "/v1/machines",
                     raw=b'{"cpus": 1, "cpus": 2}', status=400,
                     code="duplicate_key")
        self.problem("POST", "/v1/machines", {"kaslr": "yes"}, status=400,
                     code="wrong_type")
        self.problem("POST", "/v1/machines", raw=b"[]", status=400,
                     code="wrong_type")
        self.problem("GET", "/v1/machines?page_size=0", status=400,
                     code="bad_query")
        self.machine("oa-400", memory="64MiB")
        self.problem("GET", "/v1/machines/oa-400/frames?owner=nobody",
                     status=400, code="bad_query")
        self.problem("GET", "/healthz", raw=b"{", status=400,
                     code="malformed_json")

    def test_404(self):
        self.problem("GET", "/v1/machines/oa-none", status=404,
                     code="not_found")
        self.problem("POST", "/v1/machines/oa-none/kmalloc", {"size": 8},
                     status=404, code="not_found")
        self.problem("GET", "/v1/nothing", status=404, code="no_such_route")
        # Longer than any id: the route exists, the machine cannot.
        self.problem("GET", "/v1/machines/" + "a" * 64, status=404,
                     code="not_found")
        self.machine("oa-404", memory="64MiB")
        self.problem("GET", "/v1/machines/oa-404/processes/9", status=404,
                     code="not_found")
        self.problem("GET", "/v1/machines/oa-404/processes/x", status=404,
                     code="not_found")
        self.problem("POST", "/v1/machines/oa-404/cpus/3/switch", {"pid": 0},
                     status=404, code="not_found")

    def test_405(self):
        self.problem("PUT", "/v1/machines", {}, status=405,
                     code="method_not_allowed")
        self.problem("DELETE", "/v1/machines/oa-x/layout", status=405,
                     code="method_not_allowed")
        self.problem("GET", "/v1/machines/oa-x/kmalloc", status=405,
                     code="method_not_allowed")

    def test_409(self):
        self.machine("oa-409", memory="64MiB", cpus=2)
        self.problem("POST", "/v1/machines", {"id": "oa-409"}, status=409,
                     code="already_exists")
        base = "/v1/machines/oa-409"
        k = self.ok("POST", base + "/kmalloc", {"size": 100}, status=201)
        self.ok("POST", base + "/kfree", {"va": k["va"]})
        self.problem("POST", base + "/kfree", {"va": k["va"]}, status=409,
                     code="double_free")
        p = self.ok("POST", base + "/processes", {}, status=201)
        self.ok("POST", base + "/cpus/0/switch", {"pid": p["pid"]})
        self.problem("POST", base + "/cpus/1/switch", {"pid": p["pid"]},
                     status=409, code="task_busy")
        # 64 MiB hold at most 16 blocks of 4 MiB.
        for _ in range(16):
            r = self.req("POST", base + "/pages", {"order": 10})
            if r.status != 201:
                break
        self.problem("POST", base + "/pages", {"order": 10}, status=409,
                     code="out_of_memory")

    def test_412(self):
        m = self.machine("oa-412", memory="64MiB")
        base = "/v1/machines/oa-412"
        self.problem("POST", base + "/kmalloc", {"size": 8}, status=412,
                     code="precondition_failed",
                     headers=['If-Match: "%d"' % (m["version"] + 5)])
        r = self.req("POST", base + "/kmalloc", {"size": 8},
                     headers=['If-Match: "%d"' % m["version"]])
        self.assertEqual(r.status, 201)
        self.assertEqual(r.headers["etag"], '"%d"' % r.json["version"])

    def test_413(self):
        big = b'{"id": "' + b"a" * (1 << 20) + b'"}'
        self.problem("POST", "/v1/machines", raw=big, status=413,
                     code="payload_too_large")
        self.problem("POST", "/v1/nothing", raw=big, status=413,
                     code="payload_too_large")

    def test_415(self):
        self.problem("POST", "/v1/machines", {},
                     headers=["Content-Type: image/png"], status=415,
                     code="unsupported_media_type")
        # JSON, form, text and +json types are read as JSON.
        for ct in ("application/json", "application/x-www-form-urlencoded",
                   "text/plain", "application/merge-patch+json"):
            self.machine("oa-415", memory="64MiB")
            r = self.req("POST", "/v1/machines/oa-415/kmalloc", {"size": 8},
                         headers=["Content-Type: " + ct])
            self.assertEqual(r.status, 201, (ct, r))

    def test_422(self):
        self.problem("POST", "/v1/machines", {"colour": "red"}, status=422,
                     code="unknown_field")
        self.problem("POST", "/v1/machines", {"arch": "arm"}, status=422,
                     code="invalid_value")
        self.problem("POST", "/v1/machines", {"cpus": 65}, status=422,
                     code="out_of_range")
        self.problem("POST", "/v1/machines", raw=b'{"seed": 9007199254740993}',
                     status=422, code="imprecise_number")
        self.problem("GET", "/v1", {"x": 1}, status=422, code="unknown_field")
        self.machine("oa-422", memory="64MiB")
        base = "/v1/machines/oa-422"
        self.problem("POST", base + "/kmalloc", {}, status=422,
                     code="missing_field")
        self.problem("POST", base + "/kmalloc", {"size": 8, "gfp": "GFP_NONE"},
                     status=422, code="invalid_value")
        self.problem("POST", base + "/translate/batch",
                     {"items": [{"va": 0}] * 10001}, status=422,
                     code="batch_too_large")
        self.problem("POST", base + "/virt-to-phys",
                     {"va": "0xffffc90000000000"}, status=422)

    def test_wrong_json_type_is_400(self):
        """SPEC 2.1: a field of the wrong JSON type is 400 wrong_type, for
        string fields too."""
        self.machine("oa-type", memory="64MiB")
        p = self.ok("POST", "/v1/machines/oa-type/processes", {}, status=201)
        for path, body in (
                ("/v1/machines", {"id": 5}),
                ("/v1/machines", {"arch": 64}),
                ("/v1/machines/oa-type/clone", {"id": ["x"]}),
                ("/v1/machines/oa-type/processes/%d/mmap" % p["pid"],
                 {"length": 4096, "prot": 7}),
                ("/v1/machines/oa-type/kmalloc", {"size": 8, "gfp": 1})):
            with self.subTest(path=path, body=body):
                self.problem("POST", path, body, status=400,
                             code="wrong_type")


class LiveAuth(vmlab.DaemonTest):
    """A daemon with --auth on: the refusals of the bearer scheme, the
    roles and the quotas fit the document (req() validates each, headers
    included), and names of other tenants' machines (owner.id) fit the
    machine object."""

    daemon_args = ("--auth", "on")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.token = cls.daemon.admin_token()
        cls.tokens = {}
        for name, role, quota in (
                ("oa-alice", "tenant", {"machines": 1, "rate": 1000}),
                ("oa-grader", "grader", {"rate": 1000}),
                ("oa-slow", "tenant", {"rate": 1})):
            r = vmlab.curl(cls.daemon.url, "POST", "/v1/tenants",
                           {"name": name, "role": role, "quota": quota},
                           headers=("Authorization: Bearer " + cls.token,))
            if r.status != 201:
                raise AssertionError("setup %s: %r" % (name, r))
            cls.tokens[name] = r.json["token"]

    def test_401(self):
        """No token, a bad one, on a route, an unknown path and a known
        path with another method: 401 with WWW-Authenticate."""
        for method, path in (("GET", "/v1"), ("GET", "/v1/machines"),
                             ("GET", "/v1/nothing"), ("PUT", "/v1/machines"),
                             ("GET", "/metrics")):
            r = self.req(method, path, token="")
            self.assertEqual(r.status, 401, (method, path, r))
            self.assertEqual(r.headers["www-authenticate"],
                             'Bearer realm="vmlab"')
            r = self.req(method, path, token="vmlab_" + "x" * 43)
            self.assertEqual(r.status, 401, (method, path, r))
            self.assertIn('error="invalid_token"',
                          r.headers["www-authenticate"])
        self.assertEqual(self.ok("GET", "/healthz", token=""),
                         {"status": "ok"})

    def test_403(self):
        """A tenant on admin routes and /metrics, a grader creating, a
        read share's mutation and deletion: 403 forbidden."""
        alice, grader = self.tokens["oa-alice"], self.tokens["oa-grader"]
        self.problem("GET", "/metrics", status=403, code="forbidden",
                     token=alice)
        self.problem("GET", "/v1/tenants", status=403, code="forbidden",
                     token=alice)
        self.problem("POST", "/v1/tenants", {"name": "oa-x"}, status=403,
                     code="forbidden", token=alice)
        self.problem("POST", "/v1/machines", {"memory": "64MiB"}, status=403,
                     code="forbidden", token=grader)
        self.machine("oa-shared", memory="64MiB")
        self.ok("POST", "/v1/machines/oa-shared/shares",
                {"tenant": "oa-alice", "access": "read"}, status=201)
        m = self.ok("GET", "/v1/machines/admin.oa-shared", token=alice)
        self.assertEqual((m["id"], m["owner"]), ("admin.oa-shared", "admin"))
        self.problem("POST", "/v1/machines/admin.oa-shared/kmalloc",
                     {"size": 8}, status=403, code="forbidden", token=alice)
        self.problem("DELETE", "/v1/machines/admin.oa-shared", status=403,
                     code="forbidden", token=alice)
        self.problem("GET", "/v1/machines/admin.oa-shared/shares",
                     status=403, code="forbidden", token=alice)
        self.problem("POST", "/v1/machines/admin.oa-shared/processes", {},
                     status=403, code="forbidden", token=grader)
        # The grader reads every machine, shared with it or not.
        self.ok("GET", "/v1/machines/admin.oa-shared/zones", token=grader)
        self.problem("DELETE", "/v1/machines/admin.oa-shared", status=403,
                     code="forbidden", token=grader)
        self.assertEqual(self.ok("GET", "/v1/machines/oa-shared")["owner"],
                         "admin")

    def test_429(self):
        """A quota used up (no Retry-After) and a request rate over the
        tenant's (Retry-After): 429."""
        alice = self.tokens["oa-alice"]
        self.req("DELETE", "/v1/machines/oa-q1", token=alice)
        self.ok("POST", "/v1/machines", {"id": "oa-q1", "memory": "64MiB"},
                status=201, token=alice)
        r = self.req("POST", "/v1/machines", {"id": "oa-q2",
                                              "memory": "64MiB"},
                     token=alice)
        self.assertEqual((r.status, r.json["code"]), (429, "quota_exceeded"))
        self.assertNotIn("retry-after", r.headers)
        slow = self.tokens["oa-slow"]
        codes = []
        for _ in range(3):
            r = self.req("GET", "/v1/whoami", token=slow)
            codes.append(r.status)
        self.assertEqual(codes[0], 200)
        self.assertIn(429, codes)
        self.assertEqual(r.json["code"], "rate_limited")
        self.assertRegex(r.headers["retry-after"], r"^[0-9]+$")

    def test_whoami_and_lists(self):
        """whoami of each role; the admin's list names other tenants'
        machines owner.id."""
        me = self.ok("GET", "/v1/whoami")
        self.assertEqual((me["tenant"], me["role"], me["quota"]),
                         ("admin", "admin", None))
        g = self.ok("GET", "/v1/whoami", token=self.tokens["oa-grader"])
        self.assertEqual((g["tenant"], g["role"], g["quota"]["machines"]),
                         ("oa-grader", "grader", 0))
        alice = self.tokens["oa-alice"]
        self.req("DELETE", "/v1/machines/oa-q1", token=alice)
        self.ok("POST", "/v1/machines", {"id": "oa-q1", "memory": "64MiB"},
                status=201, token=alice)
        ids = [x["id"] for x in
               self.ok("GET", "/v1/machines?owner=oa-alice")["items"]]
        self.assertEqual(ids, ["oa-alice.oa-q1"])
        tenants = self.ok("GET", "/v1/tenants")["items"]
        self.assertEqual([t["name"] for t in tenants],
                         ["oa-alice", "oa-grader", "oa-slow"])


class Limits(vmlab.DaemonTest):
    """A daemon that holds one machine: the limit is a 409 the document
    lists for create and clone."""

    daemon_args = ("--max-machines", "1")

    def test_too_many_machines(self):
        self.machine("oa-one", memory="64MiB")
        self.problem("POST", "/v1/machines", {"id": "oa-two",
                                              "memory": "64MiB"},
                     status=409, code="too_many_machines")
        self.problem("POST", "/v1/machines/oa-one/clone", {"id": "oa-two"},
                     status=409, code="too_many_machines")
        self.assertEqual(self.req("DELETE", "/v1/machines/oa-one").status,
                         204)


if __name__ == "__main__":
    vmlab.main()
