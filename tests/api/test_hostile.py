"""test_hostile.py - hostile input for every route and every body field,
generated from the route table (tests/api/routes_dump).

For every route that takes a body, each field is sent with a value of the
wrong JSON type, out of its range, as an integer literal beyond 2^53 - 1, as
a string beyond 2^64 - 1, missing where it is required, and with an unknown
field beside it; each such body is also sent malformed, as binary garbage,
as an array or a string instead of an object, nested 1000 deep, with data
after the value, with duplicate keys, with invalid UTF-8 or a lone surrogate
inside a string, and (to a daemon started with a small --max-body) too
large. Routes without a body get a non-empty one. Path parameters get
unknown machines (and names that cannot be one: owner.id forms), pids,
CPUs and tenants. The daemon runs with auth off, so the caller is the
admin and the tenant routes and shares are open to it.

Every case checks the status and the problem `code`, that the machine's
digest and version (GET /v1/machines/{m}) and the list of machines did not
move, and that the next valid request on the route succeeds; a 5xx is
never right. Routes on a machine run against a fresh i386 machine with
2 GiB and a fresh x86_64 machine, each with a process, a kmalloc'd object,
a vmalloc area and a page block, so that a valid request exists for every
route.

The expectations come from the field's kind (routes_dump) and the table
ROUTES below, written from SPEC part 2 and docs/problems.md (which fields
are required, the bounds of each), not from the daemon's code. The codes:

  wrong_type (400)        the JSON type is not the field's: an object, an
                          array, a boolean or null for a number; a number
                          for a string or a boolean; a fraction where an
                          integer goes; anything but an array for `items`
  invalid_value (422)     the right type, but text that is no value of the
                          field: "twelve", "-1" or "2^64" for an integer, an
                          unknown unit, an id outside its pattern, an
                          unknown name, a string with a NUL in it; and, as
                          docs/problems.md names them, a `memory` outside
                          the arch's bounds, a kmalloc above 4 MiB, a
                          vmalloc larger than its region
  out_of_range (422)      any other number outside its range
                          (docs/problems.md): a negative number where
                          unsigned, order 11, cpus 65, dma_mask_bits 65, a
                          dma-check length over 1 GiB, a size or an address
                          past what the machine has
  imprecise_number (422)  an integer literal beyond 2^53 - 1 in magnitude

A tenant's `quota` (kind "quota") is an object of integers and a size:
anything but an object is wrong_type, an unknown member unknown_field, a
member of the wrong type wrong_type, and a member outside its bounds
(machines and processes 0 to 100,000, memory 0 to 2^50, rate 1 to
1,000,000) out_of_range; null or {} take the role's defaults.
  missing_field (422), unknown_field (422), duplicate_key (400),
  malformed_json (400), payload_too_large (413), not_found (404).

Requests go over http.client (one connection each) rather than curl: the
file sends a few thousand of them, and exact bytes (NUL, invalid UTF-8,
chunked bodies) are easier to send that way. The daemon is the harness's.
"""

import http.client
import json
import os
import random
import re
import subprocess

import vmlab

SCALE = max(1, int(os.environ.get("VMLAB_TEST_SCALE", "1") or 1))


# --- the route table ---------------------------------------------------------

def load_routes():
    exe = os.environ.get("VMLAB_ROUTES_DUMP") or os.path.join(
        vmlab.SRCDIR, "build", "tests", "api", "routes_dump")
    out = subprocess.run([exe], capture_output=True, check=True)
    return json.loads(out.stdout)


DUMP = load_routes()
CATALOGUE = {p["code"]: p["status"] for p in DUMP["problems"]}


def key(route):
    return "%s %s" % (route["method"], route["pattern"])


# --- bodies as exact bytes ---------------------------------------------------

class Raw(str):
    """JSON text sent as is (an integer literal beyond 2^53, an escape)."""


def enc(v):
    if isinstance(v, Raw):
        return str(v)
    return json.dumps(v)


def obj(pairs):
    """pairs: [(name, value)]; name is a str (JSON-encoded) or Raw."""
    return ("{" + ",".join(enc(k) + ":" + enc(v) for k, v in pairs) +
            "}").encode("utf-8")


def body_bytes(d):
    return obj(list(d.items()))


def hexa(v):
    return "0x%x" % v


# --- expectations by kind ----------------------------------------------------

WT, INV, OOR = "wrong_type", "invalid_value", "out_of_range"
# A size or an address beyond what the machine has: a number outside the
# field's bounds, so out_of_range, like order 11 or cpus 65.
BEYOND = OOR
NUMERIC = ("u64", "i64", "size")

# An integer literal beyond 2^53 - 1 is refused by the scanner, whatever the
# field (SPEC 2.1: a JSON number is accepted up to 2^53 - 1 exactly).
IMPRECISE = [
    ("2^53+1 as a number", Raw("9007199254740993"), "imprecise_number"),
    ("2^53 as a number", Raw("9007199254740992"), "imprecise_number"),
    ("-(2^53+1) as a number", Raw("-9007199254740993"), "imprecise_number"),
    ("2^64 as a number", Raw("18446744073709551616"), "imprecise_number"),
]


def quota_cases():
    """(label, value, code) for a tenant's quota: an object whose members
    are integers (machines, processes, rate) and a size (memory)."""
    return list(IMPRECISE) + [
        ("a number", 5, WT),
        ("a string", "x", WT),
        ("a size string", "1GiB", WT),
        ("an empty array", [], WT),
        ("an array of one object", [{"machines": 1}], WT),
        ("true", True, WT),
        ("an unknown member", {"cpus": 1}, "unknown_field"),
        ("a known member beside an unknown one",
         {"machines": 1, "disk": "1GiB"}, "unknown_field"),
        ("a member name in another case", {"Machines": 1},
         "unknown_field"),
        ("a member that is an object", {"machines": {}}, WT),
        ("a member that is null", {"rate": None}, WT),
        ("a boolean member", {"processes": True}, WT),
        ("a fraction", {"memory": 1.5}, WT),
        ("machines over 100000", {"machines": 100001}, OOR),
        ("processes over 100000", {"processes": 100001}, OOR),
        ("machines -1", {"machines": -1}, OOR),
        ("memory of 2^50 + 1 bytes", {"memory": "0x4000000000001"}, OOR),
        ("memory of 1025 TiB", {"memory": "1025TiB"}, OOR),
        ("memory of 2^64 - 1 bytes", {"memory": HUGE}, OOR),
        ("rate 0", {"rate": 0}, OOR),
        ("rate over 1000000", {"rate": 1000001}, OOR),
        ("a word for a number", {"rate": "fast"}, INV),
        ("a decimal unit", {"memory": "4GB"}, INV),
        ("a unit on a count", {"machines": "4KiB"}, INV),
        ("2^64 as a string", {"processes": "18446744073709551616"}, INV),
        ("a member beyond 2^53 as a number",
         Raw('{"machines":9007199254740993}'), "imprecise_number"),
        ("a member twice", Raw('{"rate":1,"rate":2}'), "duplicate_key"),
    ]


def kind_cases(kind):
    """(label, value, code) for a field of this kind, from its kind alone."""
    if kind == "quota":
        return quota_cases()
    cases = list(IMPRECISE) + [
        ("an object", {}, WT),
        ("an object with a member", {"value": 1}, WT),
        ("null", None, WT),
    ]
    if kind != "items":
        cases.append(("an empty array", [], WT))
    if kind in NUMERIC:
        cases += [
            ("true", True, WT),
            ("false", False, WT),
            ("an array of one number", [1], WT),
            ("a fraction", 1.5, WT),
            ("2^64 as a string", "18446744073709551616", INV),
            ("2^64 as a hex string", "0x10000000000000000", INV),
            ("a word", "twelve", INV),
            ("0x alone", "0x", INV),
            ("an empty string", "", INV),
            ("trailing junk", "12abc", INV),
            ("a leading blank", " 12", INV),
            ("a plus sign", "+12", INV),
        ]
    if kind in ("u64", "size"):
        cases += [
            ("-1 as a number", -1, OOR),
            ("-1 as a string", "-1", INV),
        ]
    if kind == "i64":
        cases += [
            ("below INT64_MIN", "-9223372036854775809", INV),
            ("above INT64_MAX", "9223372036854775808", INV),
        ]
    if kind == "size":
        cases += [
            ("a decimal unit", "4KB", INV),
            ("a lowercase unit", "4kib", INV),
            ("a unit that overflows 2^64", "16777216TiB", INV),
            ("a hex number with a unit", "0x10KiB", INV),
        ]
    if kind == "u64":
        cases.append(("a unit where none is taken", "4KiB", INV))
    if kind == "bool":
        cases += [
            ("1", 1, WT),
            ("0", 0, WT),
            ("the string true", "true", WT),
            ("2^64 as a string", "18446744073709551616", WT),
        ]
    if kind == "string":
        cases += [
            ("a number", 5, WT),
            ("true", True, WT),
            ("an array of one string", ["x"], WT),
        ]
    if kind == "items":
        cases += [
            ("a string", "x", WT),
            ("a number", 5, WT),
            ("true", True, WT),
            ("an array of a number", [5], WT),
            ("an array of a string", ["x"], WT),
            ("an array of null", [None], WT),
            ("an array of an array", [[]], WT),
        ]
    return cases


# --- the machines the routes run on ------------------------------------------

class Family:
    """A fresh machine with a process, a kmalloc'd object, a vmalloc area
    and an order-0 page block: every route has a valid request on it."""

    def __init__(self, t, arch, mid):
        self.t, self.arch, self.mid = t, arch, mid
        self.build()

    @property
    def m(self):
        return "/v1/machines/" + self.mid

    @property
    def p(self):
        return "%s/processes/%d" % (self.m, self.pid)

    def build(self):
        t = self.t
        t.req("DELETE", self.m)
        body = {"id": self.mid, "arch": self.arch, "cpus": 2}
        if self.arch == "i386":
            body["memory"] = "2GiB"
        t.ok("POST", "/v1/machines", body, status=201)
        # A tenant to share with and to name in paths (kept if there).
        r = t.req("POST", "/v1/tenants", {"name": "hx-t"})
        t.assertIn(r.status, (201, 409), r)
        proc = t.ok("POST", self.m + "/processes", {"name": "hp1"},
                    status=201)
        self.pid = proc["pid"]
        self.brk = int(proc["brk"], 16)
        self.text = [r for r in proc["regions"] if r["kind"] == "text"][0]
        self.kva = t.ok("POST", self.m + "/kmalloc", {"size": 64},
                        status=201)["va"]
        self.vva = t.ok("POST", self.m + "/vmalloc", {"size": "8KiB"},
                        status=201)["va"]
        self.ppa = t.ok("POST", self.m + "/pages", {"order": 0},
                        status=201)["pa"]
        # A user range nothing maps, for mmap MAP_FIXED and munmap.
        self.free_addr = hexa(0x40000000 if self.arch == "i386"
                              else 0x100000000000)

    def is32(self):
        return self.arch.startswith("i386")

    def past(self):
        """An address no machine of this arch has: past the 32-bit space
        on i386, past user space, RAM and the direct map on x86_64."""
        return "0x100000000" if self.is32() else "0xfffffffffffff000"


# --- per-route rules (SPEC 2.2, 2.4, 1.x) ------------------------------------

class Route:
    """What the tests know of one route, beyond routes_dump.

    bases(fam): valid bodies; a field's cases use the first that has it.
    required: fields whose absence is missing_field.
    rules: field -> [(label, value or fn(fam), code)] beyond its kind.
    strings: field -> a valid value of the field, for the NUL case.
    valid(t, fam): a valid request (and its undo), asserting success.
    """

    def __init__(self, scope, bases=None, required=(), rules=None,
                 strings=None, valid=None, params=None):
        self.scope = scope
        self.bases = bases
        self.required = set(required)
        self.rules = rules or {}
        self.strings = strings or {}
        self.valid = valid
        self.params = params or {}


HUGE = "0xffffffffffffffff"


def huge_size(label="2^64-1 bytes"):
    return [(label, HUGE, BEYOND)]


def v_get(path_fn):
    def run(t, fam):
        t.ok("GET", path_fn(fam), status=200)
    return run


def v_post(path_fn, body_fn, status=200):
    def run(t, fam):
        t.ok("POST", path_fn(fam), body_fn(fam), status=status)
    return run


def v_create(t, fam):
    t.ok("POST", "/v1/machines", CREATE_BASE, status=201)
    t.ok("DELETE", "/v1/machines/hx-new", status=204)


def v_clone(t, fam):
    t.ok("POST", fam.m + "/clone", {"id": "hx-clone"}, status=201)
    t.ok("DELETE", "/v1/machines/hx-clone", status=204)


def v_delete_machine(t, fam):
    t.ok("POST", "/v1/machines", {"id": "hx-scratch", "memory": "32MiB"},
         status=201)
    t.ok("DELETE", "/v1/machines/hx-scratch", status=204)


def v_process(t, fam):
    p = t.ok("POST", fam.m + "/processes", PROCESS_BASE, status=201)
    t.ok("DELETE", "%s/processes/%d" % (fam.m, p["pid"]), status=204)


def v_mmap(t, fam):
    t.ok("POST", fam.p + "/mmap", mmap_base(fam), status=201)
    t.ok("POST", fam.p + "/munmap", {"addr": fam.free_addr,
                                     "length": "8KiB"}, status=200)


def v_brk(t, fam):
    t.ok("POST", fam.p + "/brk", {"increment": 4096}, status=200)
    t.ok("POST", fam.p + "/brk", {"increment": -4096}, status=200)


def v_kmalloc(t, fam):
    va = t.ok("POST", fam.m + "/kmalloc", {"size": 64}, status=201)["va"]
    t.ok("POST", fam.m + "/kfree", {"va": va}, status=200)


def v_kfree(t, fam):
    t.ok("POST", fam.m + "/kfree", {"va": fam.kva}, status=200)
    fam.kva = t.ok("POST", fam.m + "/kmalloc", {"size": 64},
                   status=201)["va"]


def v_vmalloc(t, fam):
    va = t.ok("POST", fam.m + "/vmalloc", {"size": "8KiB"},
              status=201)["va"]
    t.ok("POST", fam.m + "/vfree", {"va": va}, status=200)


def v_vfree(t, fam):
    t.ok("POST", fam.m + "/vfree", {"va": fam.vva}, status=200)
    fam.vva = t.ok("POST", fam.m + "/vmalloc", {"size": "8KiB"},
                   status=201)["va"]


def v_pages(t, fam):
    pa = t.ok("POST", fam.m + "/pages", {"order": 0}, status=201)["pa"]
    t.ok("POST", fam.m + "/pages/free", {"pa": pa, "order": 0}, status=200)


def v_pages_free(t, fam):
    t.ok("POST", fam.m + "/pages/free", {"pa": fam.ppa, "order": 0},
         status=200)
    fam.ppa = t.ok("POST", fam.m + "/pages", {"order": 0},
                   status=201)["pa"]


def v_switch(t, fam):
    t.ok("POST", fam.m + "/cpus/1/switch", {"pid": fam.pid}, status=200)
    t.ok("POST", fam.m + "/cpus/1/switch", {"pid": 0}, status=200)


def v_exit(t, fam):
    p = t.ok("POST", fam.m + "/processes", {"name": "scratch"}, status=201)
    t.ok("DELETE", "%s/processes/%d" % (fam.m, p["pid"]), status=204)


def v_tenant_create(t, fam):
    t.ok("POST", "/v1/tenants", TENANT_BASE, status=201)
    t.ok("DELETE", "/v1/tenants/hx-tenant", status=204)


def v_tenant_delete(t, fam):
    t.ok("POST", "/v1/tenants", {"name": "hx-scratch-t"}, status=201)
    t.ok("DELETE", "/v1/tenants/hx-scratch-t", status=204)


def v_token(t, fam):
    r = t.ok("POST", "/v1/tenants/hx-t/tokens", status=201)
    t.assertEqual(r["name"], "hx-t")


def v_share(t, fam):
    t.ok("POST", fam.m + "/shares", SHARE_BASE, status=201)
    t.ok("DELETE", fam.m + "/shares/hx-t", status=204)


TENANT_BASE = {"name": "hx-tenant", "role": "tenant",
               "quota": {"machines": 2, "memory": "1GiB", "processes": 4,
                         "rate": 50}}
SHARE_BASE = {"tenant": "hx-t", "access": "read"}
CREATE_BASE = {"id": "hx-new", "arch": "i386", "memory": "64MiB", "cpus": 2,
               "seed": "7", "churn": 16, "vmsplit": "2G/2G", "kaslr": False}
PROCESS_BASE = {"name": "hp", "text": "64KiB", "data": "16KiB", "heap": 0,
                "stack": "128KiB", "populate": True}


def mmap_base(fam):
    return {"length": "8KiB", "prot": "rw-", "addr": fam.free_addr,
            "fixed": True, "populate": True}


def translate_bases(fam):
    common = {"va": fam.kva, "mode": "kernel", "access": "read",
              "explain": True}
    return [dict(common, pid=fam.pid), dict(common, cpu=0)]


def only32(value):
    """A value for 32-bit machines only (None: no such case here)."""
    return lambda fam: value if fam.is32() else None


M = "/v1/machines/{m}"
P = M + "/processes/{pid}"

ROUTES = {
    "GET /healthz": Route("service", valid=v_get(lambda f: "/healthz")),
    "GET /metrics": Route("service", valid=v_get(lambda f: "/metrics")),
    "GET /v1": Route("service", valid=v_get(lambda f: "/v1")),
    "GET /v1/openapi.json": Route(
        "service", valid=v_get(lambda f: "/v1/openapi.json")),
    "GET /v1/machines": Route(
        "service", valid=v_get(lambda f: "/v1/machines")),
    "GET /v1/whoami": Route("service", valid=v_get(lambda f: "/v1/whoami")),
    "POST /v1/tenants": Route(
        "service", bases=lambda f: [TENANT_BASE], required=["name"],
        rules={
            "name": [("a name outside the pattern", "Bad_Name", INV),
                     ("a name of 33 characters", "t" * 33, INV),
                     ("a leading hyphen", "-t", INV),
                     ("a dot", "a.b", INV),
                     ("the admin's namespace", "admin", INV),
                     ("the local namespace", "local", INV),
                     ("an empty name", "", INV)],
            "role": [("the admin role", "admin", INV),
                     ("an unknown role", "owner", INV)],
        },
        strings={"name": "hx-tenant", "role": "tenant"},
        valid=v_tenant_create),
    "GET /v1/tenants": Route(
        "service", valid=v_get(lambda f: "/v1/tenants")),
    "DELETE /v1/tenants/{t}": Route("service", valid=v_tenant_delete),
    "POST /v1/tenants/{t}/tokens": Route("service", valid=v_token),
    "POST " + M + "/shares": Route(
        "machine", bases=lambda f: [SHARE_BASE],
        required=["tenant", "access"],
        rules={
            "tenant": [("a tenant that does not exist", "hx-nobody", INV),
                       ("the owner itself", "local", INV),
                       ("a name outside the pattern", "Hx_T", INV),
                       ("a name of 33 characters", "t" * 33, INV),
                       ("two stars", "**", INV),
                       ("an empty name", "", INV)],
            "access": [("owner access", "owner", INV),
                       ("an empty access", "", INV),
                       ("read in capitals", "READ", INV)],
        },
        strings={"tenant": "hx-t", "access": "read"}, valid=v_share),
    "GET " + M + "/shares": Route(
        "machine", valid=v_get(lambda f: f.m + "/shares")),
    "DELETE " + M + "/shares/{t}": Route("machine", valid=v_share),
    "POST /v1/machines": Route(
        "service", bases=lambda f: [CREATE_BASE],
        rules={
            "id": [("an id outside the pattern", "Bad_Id", INV),
                   ("an id of 64 characters", "a" * 64, INV)],
            "arch": [("an unknown arch", "sparc", INV)],
            # docs/problems.md: memory outside the arch's bounds is
            # invalid_value.
            "memory": [("2^64-1 bytes", HUGE, INV),
                       ("more than an i386 holds", "8GiB", INV)],
            "cpus": [("65 CPUs", 65, OOR), ("0 CPUs", 0, OOR),
                     ("2^64-1 CPUs", HUGE, OOR)],
            "churn": huge_size("2^64-1 pages"),
            "vmsplit": [("an unknown split", "4G/0G", INV)],
        },
        strings={"id": "hx-new", "arch": "i386", "vmsplit": "2G/2G"},
        valid=v_create),
    "GET " + M: Route("machine", valid=v_get(lambda f: f.m)),
    "DELETE " + M: Route("machine", valid=v_delete_machine),
    "POST " + M + "/clone": Route(
        "machine", bases=lambda f: [{"id": "hx-clone"}],
        rules={"id": [("an id outside the pattern", "-bad", INV)]},
        strings={"id": "hx-clone"}, valid=v_clone),
    "GET " + M + "/layout": Route(
        "machine", valid=v_get(lambda f: f.m + "/layout")),
    "GET " + M + "/zones": Route(
        "machine", valid=v_get(lambda f: f.m + "/zones")),
    "GET " + M + "/frames": Route(
        "machine", valid=v_get(lambda f: f.m + "/frames")),
    "GET " + M + "/slabs": Route(
        "machine", valid=v_get(lambda f: f.m + "/slabs")),
    "GET " + M + "/history": Route(
        "machine", valid=v_get(lambda f: f.m + "/history")),
    "POST " + M + "/processes": Route(
        "machine", bases=lambda f: [PROCESS_BASE],
        rules={
            "name": [("a name of 32 bytes", "n" * 32, INV)],
            "text": huge_size(), "data": huge_size(), "heap": huge_size(),
            "stack": huge_size(),
        },
        strings={"name": "hp"}, valid=v_process),
    "GET " + M + "/processes": Route(
        "machine", valid=v_get(lambda f: f.m + "/processes")),
    "GET " + P: Route("machine", valid=v_get(lambda f: f.p)),
    "DELETE " + P: Route("machine", valid=v_exit),
    "POST " + P + "/mmap": Route(
        "machine", bases=lambda f: [mmap_base(f)], required=["length"],
        rules={
            "length": huge_size(),
            "prot": [("four characters", "rw-x", INV),
                     ("an unknown right", "rwz", INV)],
            "addr": [("a fixed address past user space",
                      lambda f: f.past(), BEYOND)],
        },
        strings={"prot": "rw-"}, valid=v_mmap),
    "POST " + P + "/munmap": Route(
        "machine", bases=lambda f: [{"addr": f.free_addr, "length": "8KiB"}],
        required=["addr", "length"],
        rules={"addr": [("an address past user space", lambda f: f.past(),
                         BEYOND)],
               "length": huge_size()},
        valid=v_post(lambda f: f.p + "/munmap",
                     lambda f: {"addr": f.free_addr, "length": "8KiB"})),
    "POST " + P + "/brk": Route(
        "machine",
        bases=lambda f: [{"increment": 4096}, {"addr": hexa(f.brk + 4096)}],
        required=["increment", "addr"],  # one of them: each base has one
        rules={"increment": [("INT64_MAX bytes", "9223372036854775807",
                              BEYOND)],
               "addr": [("a break past user space", lambda f: f.past(),
                         BEYOND)]},
        valid=v_brk),
    "GET " + P + "/pagetable": Route(
        "machine", valid=v_get(lambda f: f.p + "/pagetable")),
    "POST " + M + "/kmalloc": Route(
        "machine", bases=lambda f: [{"size": 64, "gfp": "GFP_KERNEL"}],
        required=["size"],
        # docs/problems.md: a kmalloc above 4 MiB is invalid_value.
        rules={"size": [("2^64-1 bytes", HUGE, INV)],
               "gfp": [("an unknown flag", "GFP_NOPE", INV),
                       ("two zones at once (GFP_ZONE_BAD)",
                        "GFP_DMA|__GFP_HIGHMEM", INV)]},
        strings={"gfp": "GFP_KERNEL"}, valid=v_kmalloc),
    "POST " + M + "/kfree": Route(
        "machine", bases=lambda f: [{"va": f.kva}], required=["va"],
        rules={"va": [("an address past the direct map",
                       lambda f: f.past(), BEYOND)]},
        valid=v_kfree),
    "POST " + M + "/vmalloc": Route(
        "machine", bases=lambda f: [{"size": "8KiB", "guard": True}],
        # docs/problems.md: a vmalloc larger than its region is
        # invalid_value.
        required=["size"], rules={"size": [("2^64-1 bytes", HUGE, INV)]},
        valid=v_vmalloc),
    "POST " + M + "/vfree": Route(
        "machine", bases=lambda f: [{"va": f.vva}], required=["va"],
        rules={"va": [("an address past the vmalloc region",
                       lambda f: f.past(), BEYOND)]},
        valid=v_vfree),
    "POST " + M + "/pages": Route(
        "machine", bases=lambda f: [{"order": 0, "gfp": "GFP_KERNEL"}],
        rules={"order": [("order 11", 11, OOR), ("order 2^64-1", HUGE, OOR)],
               "gfp": [("an unknown flag", "GFP_NOPE", INV)]},
        strings={"gfp": "GFP_KERNEL"}, valid=v_pages),
    "POST " + M + "/pages/free": Route(
        "machine", bases=lambda f: [{"pa": f.ppa, "order": 0}],
        required=["pa"],
        rules={"pa": [("a physical address past RAM", lambda f: f.past(),
                       BEYOND)],
               "order": [("order 11", 11, OOR)]},
        valid=v_pages_free),
    "GET " + M + "/cpus": Route(
        "machine", valid=v_get(lambda f: f.m + "/cpus")),
    "POST " + M + "/cpus/{n}/switch": Route(
        "machine", bases=lambda f: [{"pid": f.pid}], required=["pid"],
        rules={"pid": [("pid 2^64-1", HUGE, OOR)]}, valid=v_switch),
    "POST " + M + "/translate": Route(
        "machine", bases=translate_bases, required=["va"],
        rules={"va": [("an address past 32 bits",
                       only32("0x100000000"), BEYOND)],
               "cpu": [("cpu 2^64-1", HUGE, OOR)],
               "pid": [("pid 2^64-1", HUGE, OOR)],
               "mode": [("an unknown mode", "hypervisor", INV)],
               "access": [("an unknown access", "fly", INV)]},
        strings={"mode": "kernel", "access": "read"},
        valid=v_post(lambda f: f.m + "/translate",
                     lambda f: translate_bases(f)[0])),
    "POST " + M + "/translate/batch": Route(
        "machine", bases=lambda f: [{"items": [translate_bases(f)[0]]}],
        required=["items"],
        rules={"items": [("10,001 items", [{"va": 0}] * 10001,
                          "batch_too_large")]},
        valid=v_post(lambda f: f.m + "/translate/batch",
                     lambda f: {"items": translate_bases(f)})),
    "POST " + M + "/dma-check": Route(
        "machine",
        bases=lambda f: [{"va": f.kva, "length": 64, "dma_mask_bits": 32},
                         {"va": f.text["start"], "length": 4096,
                          "dma_mask_bits": 32, "pid": f.pid}],
        required=["va", "length"],
        rules={"va": [("an address past 32 bits", only32("0x100000000"),
                       BEYOND)],
               "length": huge_size() + [
                   ("1 GiB + 1", "0x40000001", BEYOND)],
               "dma_mask_bits": [("65 bits", 65, OOR), ("0 bits", 0, OOR)],
               "pid": [("pid 2^64-1", HUGE, OOR)]},
        valid=v_post(lambda f: f.m + "/dma-check",
                     lambda f: {"va": f.kva, "length": 64})),
    "POST " + M + "/virt-to-phys": Route(
        "machine", bases=lambda f: [{"va": f.kva}], required=["va"],
        rules={"va": [("an address past the direct map",
                       lambda f: f.past(), BEYOND)]},
        valid=v_post(lambda f: f.m + "/virt-to-phys",
                     lambda f: {"va": f.kva})),
    "POST " + M + "/phys-to-virt": Route(
        "machine", bases=lambda f: [{"pa": "0x1000"}], required=["pa"],
        rules={"pa": [("a physical address past RAM", lambda f: f.past(),
                       BEYOND)]},
        valid=v_post(lambda f: f.m + "/phys-to-virt",
                     lambda f: {"pa": "0x1000"})),
}

ARCHES = ("i386", "x86_64")


# --- hostile bodies shared by every route that takes one ---------------------

def garbage(rng, n):
    """Random bytes with NUL and invalid UTF-8 in them; never JSON, since
    the first byte is NUL."""
    return (b"\x00" + bytes(rng.randrange(256) for _ in range(n)) +
            b"\xff\xfe\xc0\xaf")


def body_cases(base, first_field, string_field, rng):
    """(label, raw bytes, status, code) for a route's body as a whole."""
    good = body_bytes(base)
    name = first_field
    dup = obj(list(base.items()) + [(name, base[name])])
    rest = [(k, v) for k, v in base.items() if k != name]
    deep = b"[" * 1000 + b"]" * 1000
    deep_obj = b'{"a":' * 1000 + b"1" + b"}" * 1000
    cases = [
        ("an unknown field", obj(list(base.items()) + [("zz_unknown", 1)]),
         422, "unknown_field"),
        ("a field name with a typo",
         obj(rest + [(name + "s", base[name])]), 422, "unknown_field"),
        ("a field name in another case",
         obj(rest + [(name.upper(), base[name])]), 422, "unknown_field"),
        ("a duplicate key", dup, 400, "duplicate_key"),
        ("a duplicate key at depth",
         obj(list(base.items()) + [("zz", Raw('{"a":{"b":1,"b":2}}'))]),
         400, "duplicate_key"),
        ("truncated JSON", good[:-1], 400, "malformed_json"),
        ("an unquoted name", b"{" + name.encode() + b":1}", 400,
         "malformed_json"),
        ("single quotes", b"{'" + name.encode() + b"':1}", 400,
         "malformed_json"),
        ("a trailing comma", good[:-1] + b",}", 400, "malformed_json"),
        ("a comment", b"/* x */" + good, 400, "malformed_json"),
        ("a bare word", b"hello", 400, "malformed_json"),
        ("only blanks", b" \n\t ", 400, "malformed_json"),
        ("NaN", b'{"zz":NaN}', 400, "malformed_json"),
        ("a JSON array", b"[" + good + b"]", 400, "wrong_type"),
        ("an empty JSON array", b"[]", 400, "wrong_type"),
        ("a JSON string", b'"' + name.encode() + b'"', 400, "wrong_type"),
        ("a JSON number", b"5", 400, "wrong_type"),
        ("JSON null", b"null", 400, "wrong_type"),
        ("JSON true", b"true", 400, "wrong_type"),
        ("arrays 1000 deep", deep, 400, "malformed_json"),
        ("objects 1000 deep", deep_obj, 400, "malformed_json"),
        ("a field nested 1000 deep",
         obj(rest + [(name, Raw(deep.decode()))]), 400, "malformed_json"),
        ("data after the value: {} x", b"{} x", 400, "malformed_json"),
        ("data after the body", good + b" x", 400, "malformed_json"),
        ("a second object", good + b"{}", 400, "malformed_json"),
        ("a NUL after the body", good + b"\x00", 400, "malformed_json"),
        ("an invalid UTF-8 byte in a name",
         good[:-1] + b',"z\xff":1}', 400, "malformed_json"),
        ("an overlong UTF-8 form in a name",
         good[:-1] + b',"z\xc0\xaf":1}', 400, "malformed_json"),
        ("an encoded surrogate in a name",
         good[:-1] + b',"z\xed\xa0\x80":1}', 400, "malformed_json"),
        ("a lone high surrogate escape",
         good[:-1] + b',"z\\ud800":1}', 400, "malformed_json"),
        ("a lone low surrogate escape",
         good[:-1] + b',"z\\udc00":1}', 400, "malformed_json"),
        ("a raw control character in a string",
         good[:-1] + b',"z\x01":1}', 400, "malformed_json"),
        ("a bad escape", good[:-1] + b',"z\\x41":1}', 400, "malformed_json"),
    ]
    if string_field:
        f, v = string_field
        others = [(k, x) for k, x in base.items() if k != f]
        for label, text in (("an invalid UTF-8 byte", b"\xff"),
                            ("an overlong UTF-8 form", b"\xc0\xaf"),
                            ("a lone surrogate escape", b"\\ud83d")):
            cases.append((
                "%s inside the string %s" % (label, f),
                obj(others)[:-1] + (b"," if others else b"") +
                json.dumps(f).encode() + b':"' + v.encode() + text + b'"}',
                400, "malformed_json"))
    for i in range(3 * SCALE):
        cases.append(("binary garbage #%d" % i, garbage(rng, 64 + 40 * i),
                      400, "malformed_json"))
        cases.append(("garbage after an opening brace #%d" % i,
                      b"{" + garbage(rng, 32), 400, "malformed_json"))
    return cases


def escape_cases(base):
    """A field name written with escapes: the same key twice when one is
    spelled \\u0073ize (400 duplicate_key), and no field's name when it
    holds a NUL (422 unknown_field: "size\\u0000x" is not "size")."""
    name = next(iter(base))
    esc = Raw('"\\u%04x%s"' % (ord(name[0]), name[1:]))
    rest = [(k, v) for k, v in base.items() if k != name]
    return [
        ("%s twice, once spelled with an escape" % name,
         obj(list(base.items()) + [(esc, base[name])]), 400,
         "duplicate_key"),
        ("%s with a NUL escape after it" % name,
         obj(rest + [(Raw('"%s\\u0000x"' % name), base[name])]), 422,
         "unknown_field"),
    ]


NO_BODY_CASES = [
    ("a JSON object with a member", b'{"x":1}', 422, "unknown_field"),
    ("a JSON array", b"[1]", 422, "unknown_field"),
    ("a JSON string", b'"x"', 422, "unknown_field"),
    ("malformed JSON", b"x", 400, "malformed_json"),
    ("binary garbage", b"\x00\xff\xfe\x80 garbage", 400, "malformed_json"),
    ("arrays 1000 deep", b"[" * 1000 + b"]" * 1000, 400, "malformed_json"),
]


# --- the test class ----------------------------------------------------------

def send(port, method, path, raw=None, headers=None, chunked=False):
    """One request on its own connection; a vmlab.Response."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = dict(headers or {})
    try:
        if chunked:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in headers.items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for i in range(0, len(raw), 1000):
                part = raw[i:i + 1000]
                conn.send(b"%x\r\n" % len(part) + part + b"\r\n")
            conn.send(b"0\r\n\r\n")
        else:
            try:
                conn.request(method, path, body=raw, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                # The daemon may answer (413) and close before reading
                # the whole body: its answer is still there to read.
                pass
        r = conn.getresponse()
        payload = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return vmlab.Response(r.status, hdrs,
                              payload.decode("utf-8", "replace"))
    finally:
        conn.close()


class HostileBase(vmlab.DaemonTest):
    """Shared machinery; the generated tests live in the subclasses."""

    def req(self, method, path, body=None, headers=(), raw=None,
            chunked=False, token=None):
        hdrs = {}
        for h in headers:
            k, _, v = h.partition(":")
            hdrs[k.strip()] = v.strip()
        token = self.token if token is None else token
        if token:
            hdrs["Authorization"] = "Bearer " + token
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is not None:
            hdrs.setdefault("Content-Type", "application/json")
        r = send(self.daemon.port, method, path, raw, hdrs, chunked)
        self.assertIsNone(vmlab.SANITIZER.search(self.daemon.stderr()),
                          self.daemon.stderr())
        return r

    # -- state and expectations --

    def snapshot(self, fam, path=""):
        """What no refused request may change: the family machine's digest
        and version, and the machines there are; for a request on tenants
        or shares (path), also the tenants and the machine's shares."""
        ids = self.ok("GET", "/v1/machines?page_size=1000", status=200)
        m = self.ok("GET", fam.m, status=200)
        snap = (m["digest"], m["version"], m["processes"],
                sorted(i["id"] for i in ids["items"]))
        if "/tenants" in path or "/shares" in path:
            shares = self.ok("GET", fam.m + "/shares", status=200)["items"]
            tenants = self.ok("GET", "/v1/tenants?page_size=1000",
                              status=200)["items"]
            snap += (shares, [(t["name"], t["role"], t["quota"])
                              for t in tenants])
        return snap

    def expect_problem(self, r, status, code):
        self.assertLess(r.status, 500, r)
        self.assertIn(code, CATALOGUE, "not a catalogue code: " + code)
        self.assertEqual(CATALOGUE[code], status, code)
        self.assertEqual((r.status, (r.json or {}).get("code")),
                         (status, code), r)
        self.assertEqual(r.headers.get("content-type"),
                         "application/problem+json", r)
        self.assertEqual(r.json["status"], r.status, r)
        self.assertEqual(r.json["type"], "/problems/" + code, r)
        self.assertTrue(r.json.get("title") and r.json.get("detail"), r)

    def family(self, arch):
        fam = Family(self, arch, "hf-" + arch.replace("_", "-"))
        self.addCleanup(self.req, "DELETE", fam.m)
        return fam

    def rebuild(self, fam):
        for mid in ("hx-new", "hx-clone", "hx-scratch"):
            self.req("DELETE", "/v1/machines/" + mid)
        for t in ("hx-tenant", "hx-scratch-t"):
            self.req("DELETE", "/v1/tenants/" + t)
        fam.build()

    def run_cases(self, fam, route, method, path_fn, cases, chunked=False):
        """Each case: refused as expected, nothing moved, and the route's
        next valid request succeeds. A case that fails rebuilds the
        machine so that the next one starts clean."""
        where = path_fn(fam)
        before = self.snapshot(fam, where)
        for label, raw, status, code in cases:
            with self.subTest(case=label):
                try:
                    r = self.req(method, path_fn(fam), raw=raw,
                                 chunked=chunked)
                    self.expect_problem(r, status, code)
                    self.assertEqual(self.snapshot(fam, where), before,
                                     "a refused request changed the "
                                     "machine: " + label)
                    route.valid(self, fam)
                    before = self.snapshot(fam, where)
                except BaseException:
                    self.rebuild(fam)
                    before = self.snapshot(fam, where)
                    raise

    def run_path_cases(self, fam, route, spec, cases):
        """(label, path) cases, each 404 not_found with nothing moved."""
        raw = body_bytes(route.bases(fam)[0]) if route.bases else None
        where = spec["pattern"]
        before = self.snapshot(fam, where)
        for label, p in cases:
            with self.subTest(case=label):
                try:
                    r = self.req(spec["method"], p, raw=raw)
                    self.expect_problem(r, 404, "not_found")
                    self.assertEqual(self.snapshot(fam, where), before,
                                     label)
                    route.valid(self, fam)
                    before = self.snapshot(fam, where)
                except BaseException:
                    self.rebuild(fam)
                    before = self.snapshot(fam, where)
                    raise

    def each_route(self, fam, with_body):
        """(spec, route) of every route of the table, or of those that
        take a body."""
        for spec in DUMP["routes"]:
            route = ROUTES.get(key(spec))
            if route and (not with_body or spec["fields"] is not None):
                yield spec, route

    def path(self, pattern, fam, n="1"):
        return (pattern.replace("{m}", fam.mid)
                .replace("{pid}", str(fam.pid)).replace("{n}", n)
                .replace("{t}", "hx-t"))


def field_cases(route, spec, fam):
    """(label, raw, status, code) for every field of a route."""
    bases = route.bases(fam)
    out = []
    for f in spec["fields"]:
        name, kind = f["name"], f["kind"]
        base = next(b for b in bases if name in b)
        cases = kind_cases(kind) + route.rules.get(name, [])
        for label, value, code in cases:
            if callable(value):
                value = value(fam)
                if value is None:
                    continue
            raw = obj([(k, value if k == name else v)
                       for k, v in base.items()])
            out.append(("%s: %s" % (name, label), raw, CATALOGUE[code],
                        code))
        if name in route.required:
            raw = obj([(k, v) for k, v in base.items() if k != name])
            out.append(("%s: missing" % name, raw, 422, "missing_field"))
    return out


def nul_string_cases(route, fam):
    """A valid string value with a NUL escape and more after it: cJSON
    stops strings at NUL, so "hp\\u0000x" must be refused (422
    invalid_value), not read as "hp"."""
    out = []
    for name, good in route.strings.items():
        base = next(b for b in route.bases(fam) if name in b)
        raw = obj([(k, Raw('"%s\\u0000x"' % good) if k == name else v)
                   for k, v in base.items()])
        out.append(("%s: a NUL inside the string" % name, raw, 422,
                    "invalid_value"))
    return out


def items_cases(fam):
    """The translate route's field cases again, inside items[0]."""
    tr = ROUTES["POST " + M + "/translate"]
    spec = next(r for r in DUMP["routes"]
                if key(r) == "POST " + M + "/translate")
    out = []
    for label, raw, status, code in field_cases(tr, spec, fam):
        out.append(("items[0]: " + label,
                    b'{"items":[' + raw + b"]}", status, code))
    return out


class Hostile(HostileBase):
    """Every route and field, on a daemon with the default --max-body."""

    def test_route_table_is_covered(self):
        """Every route of the table has rules here and every rule names a
        route and field of the table: a new route or field must come with
        its hostile cases."""
        dumped = {key(r): r for r in DUMP["routes"]}
        self.assertEqual(sorted(dumped), sorted(ROUTES))
        for k, r in dumped.items():
            rule = ROUTES[k]
            names = [f["name"] for f in (r["fields"] or [])]
            if r["fields"] is None:
                self.assertIsNone(rule.bases, k)
                continue
            self.assertIsNotNone(rule.bases, k)
            for f in r["fields"]:
                self.assertIn(f["kind"], NUMERIC + ("bool", "string",
                                                    "items", "quota"), k)
            for n in list(rule.rules) + list(rule.required) + list(
                    rule.strings):
                self.assertIn(n, names, k)
            self.assertEqual(("{m}" in k), rule.scope == "machine", k)


    def test_field_names_written_with_escapes(self):
        """Every route with a body: a field named twice, once with a \\u
        escape, is a duplicate key (SPEC 2.1: a name is compared after
        its escapes are decoded, RFC 8259 section 8.3); a name with a NUL
        escape in it names no field, whatever cJSON makes of it."""
        fam = self.family("i386")
        for spec, route in self.each_route(fam, True):
            with self.subTest(route=key(spec)):
                self.run_cases(
                    fam, route, spec["method"],
                    lambda f, p=spec["pattern"]: self.path(p, f),
                    escape_cases(route.bases(fam)[0]))

    def test_nul_inside_string_values(self):
        """Every string field of every route: a NUL escape inside a
        value (an id, a name, a GFP, a mode) is refused, never read as
        the text before it."""
        fam = self.family("i386")
        for spec, route in self.each_route(fam, True):
            cases = nul_string_cases(route, fam)
            if cases:
                with self.subTest(route=key(spec)):
                    self.run_cases(
                        fam, route, spec["method"],
                        lambda f, p=spec["pattern"]: self.path(p, f), cases)

    def test_an_overlong_machine_id_is_not_found(self):
        """Every route on a machine: an id of 64 characters (longer than
        any id can be), an owner.id whose id is that long, and a name
        longer than any owner.id can be are unknown machines on a known
        route: 404 not_found, like any other unknown machine."""
        fam = self.family("i386")
        names = [("{m} of 64 characters", "y" * 64),
                 ("{m} of 97 characters, an id of 64",
                  "o" * 32 + "." + "y" * 64),
                 ("{m} of 98 characters", "y" * 98),
                 ("{m} of 200 characters", "local." + "y" * 194)]
        for spec, route in self.each_route(fam, False):
            if "{m}" not in spec["pattern"]:
                continue
            cases = [(label, self.path(spec["pattern"], fam).replace(
                "/" + fam.mid, "/" + name, 1)) for label, name in names]
            with self.subTest(route=key(spec)):
                self.run_path_cases(fam, route, spec, cases)


def make_field_test(spec, route, arch):
    def test(self):
        fam = self.family(arch)
        cases = field_cases(route, spec, fam)
        if any(f["kind"] == "items" for f in spec["fields"]):
            cases += items_cases(fam)
        self.run_cases(fam, route, spec["method"],
                       lambda f: self.path(spec["pattern"], f), cases)
    test.__doc__ = "%s on %s: every field, wrong in every way" % (
        key(spec), arch)
    return test


def make_body_test(spec, route, arch):
    def test(self):
        fam = self.family(arch)
        base = route.bases(fam)[0]
        strings = [(f["name"], route.strings[f["name"]])
                   for f in spec["fields"] if f["name"] in route.strings]
        rng = random.Random(key(spec) + arch)
        cases = body_cases(base, next(iter(base)),
                           strings[0] if strings else None, rng)
        self.run_cases(fam, route, spec["method"],
                       lambda f: self.path(spec["pattern"], f), cases)
    test.__doc__ = "%s on %s: malformed, hostile bodies" % (key(spec), arch)
    return test


def make_no_body_test(spec, route, arch):
    def test(self):
        fam = self.family(arch)
        self.run_cases(fam, route, spec["method"],
                       lambda f: self.path(spec["pattern"], f),
                       NO_BODY_CASES)
    test.__doc__ = "%s on %s: a body where none is taken" % (key(spec),
                                                            arch)
    return test


def path_variants(pattern, fam):
    """(label, path) with one parameter wrong, each a 404 not_found."""
    out = []
    good = {"{m}": fam.mid, "{pid}": str(fam.pid), "{n}": "1",
            "{t}": "hx-t"}
    bad = {
        "{m}": ["no-such-machine", "NoSuch", "x" * 63,
                # owner.id: no such owner, or no such id there, or a
                # name that cannot be one.
                "nobody." + fam.mid, "local.no-such", "hx-t." + fam.mid,
                "local.." + fam.mid, "." + fam.mid, "local.",
                "Local." + fam.mid, "local." + fam.mid + ".x",
                "o" * 33 + "." + fam.mid],
        "{t}": ["no-such-tenant", "NoSuch", "t" * 33, "admin", "local",
                "-t", "hx-t.x"],
        "{pid}": ["abc", "-1", "99999999999", "99", "0", "1x", "0x1"],
        "{n}": ["2", "64", "abc", "-1", "99999999999", "1x", "0x1"],
    }
    for param, values in bad.items():
        if param not in pattern:
            continue
        for v in values:
            p = pattern
            for k, g in good.items():
                p = p.replace(k, v if k == param else g)
            out.append(("%s = %r" % (param, v), p))
    return out


def make_path_test(spec, route, arch):
    def test(self):
        fam = self.family(arch)
        self.run_path_cases(fam, route, spec,
                            path_variants(spec["pattern"], fam))
    test.__doc__ = "%s on %s: unknown machines, pids, CPUs" % (key(spec),
                                                              arch)
    return test


def slug(spec):
    s = spec["pattern"].replace("/v1/machines/{m}", "m").replace(
        "/processes/{pid}", "_p").replace("/cpus/{n}", "_cpu")
    s = re.sub(r"[^a-zA-Z0-9]+", "_", s).strip("_") or "root"
    return spec["method"].lower() + "_" + s


def generate():
    for spec in DUMP["routes"]:
        route = ROUTES.get(key(spec))
        if route is None:
            continue  # test_route_table_is_covered fails for it
        arches = ARCHES if route.scope == "machine" else ARCHES[:1]
        for arch in arches:
            prefix = "test_%s_%s" % (arch, slug(spec)) if len(arches) > 1 \
                else "test_%s" % slug(spec)
            if spec["fields"] is not None:
                setattr(Hostile, prefix + "_fields",
                        make_field_test(spec, route, arch))
                setattr(Hostile, prefix + "_body",
                        make_body_test(spec, route, arch))
            else:
                setattr(Hostile, prefix + "_no_body",
                        make_no_body_test(spec, route, arch))
            if "{" in spec["pattern"]:
                setattr(Hostile, prefix + "_path",
                        make_path_test(spec, route, arch))


generate()


# --- bodies over --max-body --------------------------------------------------

MAX_BODY = 4096


def padded(raw, size):
    """raw with blanks before its closing brace, size bytes in all: still
    valid JSON, so only the size can refuse it."""
    assert raw.endswith(b"}") and len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


class Oversize(HostileBase):
    """Bodies past --max-body: 413 before the body is read (announced by
    Content-Length) or while it is read (chunked); the limit itself is
    accepted."""

    daemon_args = ("--max-body", str(MAX_BODY))

    def test_the_limit_itself_is_accepted(self):
        fam = self.family("i386")
        route = ROUTES["POST " + M + "/translate"]
        raw = padded(body_bytes(route.bases(fam)[0]), MAX_BODY)
        r = self.req("POST", fam.m + "/translate", raw=raw)
        self.assertEqual(r.status, 200, r)
        r = self.req("POST", fam.m + "/translate", raw=raw, chunked=True)
        self.assertEqual(r.status, 200, r)


def make_oversize_test(spec, route, arch):
    def test(self):
        fam = self.family(arch)
        base = body_bytes(route.bases(fam)[0])
        cases = [("one byte over", padded(base, MAX_BODY + 1)),
                 ("a megabyte", padded(base, 1 << 20))]
        for chunked in (False, True):
            self.run_cases(
                fam, route, spec["method"],
                lambda f: self.path(spec["pattern"], f),
                [("%s%s" % (label, ", chunked" if chunked else ""), raw,
                  413, "payload_too_large") for label, raw in cases],
                chunked=chunked)
    test.__doc__ = "%s on %s: bodies over --max-body" % (key(spec), arch)
    return test


def generate_oversize():
    for spec in DUMP["routes"]:
        route = ROUTES.get(key(spec))
        if route is None or spec["fields"] is None:
            continue
        arch = "i386"
        setattr(Oversize, "test_%s_oversize" % slug(spec),
                make_oversize_test(spec, route, arch))


generate_oversize()


if __name__ == "__main__":
    vmlab.main()
