"""test_endpoints.py - every endpoint of SPEC 2.2 through a real vmlabd.

Success cases check exact values, computed from the SPEC's constants
rather than copied from the daemon: machines use `churn: 0` (a pristine
machine, SPEC 1.3) where addresses matter, so that the allocation policy
alone decides them. Each refusal is checked to leave the machine as it
was (same digest, same version: SPEC 1.9), and each mutation to answer
its new version in the body and as `ETag: "<version>"` (SPEC 2.1).
"""

import json
import os
import re
import subprocess

import vmlab

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = 4096

# SPEC 1.1 and 1.2.
PO64 = 0xffff888000000000          # x86_64 PAGE_OFFSET (page_offset_base)
PO_LA57 = 0xff11000000000000
PO32 = 0xc0000000                  # i386 3G/1G
TASK64 = 0x00007ffffffff000
MMAP_BASE64 = 0x7ffff7fff000       # stack top - 128 MiB (SPEC 1.5)
MMAP_BASE32 = 0xb8000000
VMALLOC64 = 0xffffc90000000000
KTEXT = 0xffffffff80000000         # __START_KERNEL_map
END64 = "0x10000000000000000"

# SPEC 1.3: the kernel image and its sections, in frames.
IMAGE = [(4096, 5120, "text"), (5120, 5632, "rodata"), (5632, 6144, "data")]


def H(s):
    return int(s, 16)


def hx(v):
    return "0x%x" % v


def routes_dump():
    exe = os.environ.get("VMLAB_ROUTES_DUMP") or os.path.join(
        vmlab.SRCDIR, "build", "tests", "api", "routes_dump")
    return json.loads(subprocess.run([exe], capture_output=True,
                                     check=True).stdout)


class Endpoints(vmlab.DaemonTest):
    """One daemon; each test builds the machines it needs."""

    # ---- helpers ----

    def state(self, mid):
        m = self.ok("GET", "/v1/machines/" + mid)
        return m["digest"], m["version"]

    def mut(self, mid, method, path, body=None, status=200, headers=()):
        """A mutation of machine mid: status, version + 1 in the body and
        in ETag, and the machine's version moves by exactly one."""
        _, v0 = self.state(mid)
        r = self.req(method, "/v1/machines/" + mid + path, body, headers)
        self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("etag"), '"%d"' % (v0 + 1), r)
        if status != 204:
            self.assertEqual(r.json["version"], v0 + 1, r)
        else:
            self.assertEqual(r.body, "")
        self.assertEqual(self.state(mid)[1], v0 + 1)
        return r.json

    def refused(self, mid, method, path, body=None, status=None, code=None,
                headers=(), raw=None):
        """A request on machine mid that must be refused with a problem,
        leaving the digest and the version as they were (SPEC 1.9)."""
        before = self.state(mid)
        p = self.problem(method, "/v1/machines/" + mid + path, body, status,
                         code, headers, raw)
        self.assertEqual(self.state(mid), before,
                         "refused %s %s changed the machine" % (method, path))
        return p

    def proc(self, mid, **fields):
        return self.mut(mid, "POST", "/processes", fields, status=201)

    def tr(self, mid, **fields):
        return self.ok("POST", "/v1/machines/%s/translate" % mid, fields,
                       status=200)

    # ---- the service's own resources ----

    def test_healthz_index_openapi(self):
        self.assertEqual(self.ok("GET", "/healthz"), {"status": "ok"})
        idx = self.ok("GET", "/v1")
        links = idx["links"]
        self.assertEqual(links["machines"], "/v1/machines")
        self.assertEqual(links["openapi"], "/v1/openapi.json")
        self.assertEqual(links["tenants"], "/v1/tenants")
        self.assertEqual(links["whoami"], "/v1/whoami")
        for name, href in links.items():
            if "{" in href:
                continue
            r = self.req("GET", href)
            self.assertEqual(r.status, 200, (name, href, r))
        r = self.req("GET", "/v1/openapi.json")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith(
            "application/json"), r.headers)
        doc = json.loads(r.body)
        self.assertTrue(doc["openapi"].startswith("3.1"), doc["openapi"])
        with open(os.path.join(vmlab.SRCDIR, "docs", "openapi.json")) as f:
            self.assertEqual(doc, json.load(f),
                             "/v1/openapi.json is not docs/openapi.json")

    # ---- machines ----

    def test_machine_create_defaults(self):
        m = self.machine("ep-def")
        self.assertEqual(m["id"], "ep-def")
        self.assertEqual(m["arch"], "x86_64")
        self.assertEqual(m["memory"], GiB)
        self.assertEqual(m["cpus"], 1)
        self.assertEqual(m["seed"], "0")
        self.assertEqual(m["churn"], 1024)
        self.assertIsNone(m["vmsplit"])
        self.assertIs(m["kaslr"], False)
        self.assertEqual(m["version"], 0)
        self.assertEqual(m["processes"], 0)
        self.assertIsInstance(m["model_version"], int)
        self.assertRegex(m["digest"], r"^[0-9a-f]{16,}$")
        self.assertRegex(m["created"],
                         r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?"
                         r"(Z|[+-]\d\d:\d\d)$")
        self.assertEqual(self.ok("GET", "/v1/machines/ep-def"), m)

    def test_machine_create_fields(self):
        m = self.machine("ep-cf", arch="i386", memory="512MiB", cpus=4,
                         seed="18446744073709551615", churn=0,
                         vmsplit="2G/2G")
        self.assertEqual((m["arch"], m["memory"], m["cpus"], m["seed"],
                          m["churn"], m["vmsplit"]),
                         ("i386", 512 * MiB, 4, "18446744073709551615", 0,
                          "2G/2G"))
        self.assertEqual(self.machine("ep-cf2", arch="i386-pae")["vmsplit"],
                         "3G/1G")
        self.assertIs(self.machine("ep-cf3", kaslr=True)["kaslr"], True)
        self.problem("POST", "/v1/machines",
                     {"id": "ep-cf4", "arch": "i386", "kaslr": True},
                     status=422)
        self.problem("POST", "/v1/machines",
                     {"id": "ep-cf4", "vmsplit": "2G/2G"}, status=422)
        self.problem("POST", "/v1/machines", {"id": "ep-cf4", "arch": "sparc"},
                     status=422, code="invalid_value")
        self.problem("POST", "/v1/machines", {"id": "ep-cf4", "cpus": 65},
                     status=422)
        self.problem("POST", "/v1/machines", {"id": "ep-cf4", "colour": 1},
                     status=422, code="unknown_field")
        self.problem("GET", "/v1/machines/ep-cf4", status=404,
                     code="not_found")

    def test_machine_determinism(self):
        """Same requests, same digest; another seed, another digest."""
        a = self.machine("ep-det-a", seed="7")
        b = self.machine("ep-det-b", seed="7")
        c = self.machine("ep-det-c", seed="8")
        self.assertEqual(a["digest"], b["digest"])
        self.assertNotEqual(a["digest"], c["digest"])
        for mid in ("ep-det-a", "ep-det-b"):
            self.proc(mid)
            self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        self.assertEqual(self.state("ep-det-a"), self.state("ep-det-b"))

    def test_machine_ids(self):
        for good in ("a", "0", "ep-id-1", "9lab-x", "e" * 63):
            self.assertEqual(self.machine(good)["id"], good)
            self.ok("DELETE", "/v1/machines/" + good, status=204)
        for bad in ("", "Lab", "-x", "a_b", "a.b", "a/b", "a b", "ü",
                    "e" * 64):
            self.problem("POST", "/v1/machines", {"id": bad}, status=422,
                         code="invalid_value")
        self.machine("ep-dup")
        before = self.state("ep-dup")
        self.problem("POST", "/v1/machines", {"id": "ep-dup", "arch": "i386"},
                     status=409, code="already_exists")
        self.assertEqual(self.state("ep-dup"), before)
        self.assertEqual(self.ok("GET", "/v1/machines/ep-dup")["arch"],
                         "x86_64")
        gen = self.ok("POST", "/v1/machines", {"churn": 0}, status=201)
        self.assertRegex(gen["id"], r"^[a-z0-9][a-z0-9-]{0,62}$")
        self.assertEqual(self.ok("GET", "/v1/machines/" + gen["id"])["id"],
                         gen["id"])
        gen2 = self.ok("POST", "/v1/machines", {}, status=201)
        self.assertNotEqual(gen["id"], gen2["id"])
        for g in (gen, gen2):
            self.ok("DELETE", "/v1/machines/" + g["id"], status=204)

    def test_machine_id_wrong_type(self):
        """SPEC 2.1: a field of the wrong JSON type is 400."""
        self.problem("POST", "/v1/machines", {"id": 123}, status=400,
                     code="wrong_type")
        self.machine("ep-idt")
        self.problem("POST", "/v1/machines/ep-idt/clone", {"id": 5},
                     status=400, code="wrong_type")

    def test_machine_list_pagination(self):
        mine = ["ep-pg-%02d" % i for i in range(7)]
        for mid in reversed(mine):
            self.machine(mid, churn=0)
        full = self.ok("GET", "/v1/machines?page_size=1000")
        self.assertIsNone(full["next_page_token"])
        all_ids = [m["id"] for m in full["items"]]
        self.assertEqual(all_ids, sorted(all_ids))
        self.assertEqual(len(all_ids), len(set(all_ids)))
        for mid in mine:
            self.assertIn(mid, all_ids)
        for m in full["items"]:
            for k in ("id", "owner", "arch", "memory", "cpus", "seed",
                      "churn", "vmsplit", "kaslr", "model_version",
                      "version", "digest", "processes", "created"):
                self.assertIn(k, m)
            # Auth off: every machine is the local admin's, named by id.
            self.assertEqual(m["owner"], "local")
        self.assertEqual(self.ok("GET", "/v1/machines")["items"],
                         full["items"][:100])
        for size in (1, 2, 3):
            seen, token, pages = [], None, 0
            while True:
                q = "/v1/machines?page_size=%d" % size
                if token:
                    q += "&page_token=" + token
                page = self.ok("GET", q)
                self.assertLessEqual(len(page["items"]), size)
                seen += [m["id"] for m in page["items"]]
                pages += 1
                token = page["next_page_token"]
                if token is None:
                    break
                self.assertIsInstance(token, str)
                # The token is owner.id of the page's last machine.
                self.assertEqual(token, "local." + page["items"][-1]["id"])
                self.assertEqual(len(page["items"]), size)
                self.assertLess(pages, 1000)
            self.assertEqual(seen, all_ids, size)
        for bad in ("0", "1001", "-1", "abc", ""):
            self.problem("GET", "/v1/machines?page_size=" + bad, status=400,
                         code="bad_query")
        self.problem("GET", "/v1/machines?page_token=%21%21", status=400,
                     code="bad_query")

    def test_machine_delete(self):
        self.machine("ep-del", churn=0)
        self.proc("ep-del")
        r = self.req("DELETE", "/v1/machines/ep-del")
        self.assertEqual(r.status, 204, r)
        self.assertEqual(r.body, "")
        for path in ("", "/layout", "/zones", "/cpus", "/processes",
                     "/processes/1"):
            self.problem("GET", "/v1/machines/ep-del" + path, status=404,
                         code="not_found")
        self.problem("DELETE", "/v1/machines/ep-del", status=404,
                     code="not_found")
        self.problem("POST", "/v1/machines/ep-del/kmalloc", {"size": 8},
                     status=404, code="not_found")
        ids = [m["id"] for m in
               self.ok("GET", "/v1/machines?page_size=1000")["items"]]
        self.assertNotIn("ep-del", ids)

    def test_clone(self):
        src = "ep-cl-src"
        self.machine(src, cpus=2, seed="3")
        self.proc(src, name="init")
        self.mut(src, "POST", "/kmalloc", {"size": 100}, status=201)
        s = self.ok("GET", "/v1/machines/" + src)
        c = self.ok("POST", "/v1/machines/%s/clone" % src, {"id": "ep-cl-dst"},
                    status=201)
        self.req("DELETE", "/v1/machines/ep-cl-dst2")
        self.assertEqual(c["id"], "ep-cl-dst")
        for k in ("arch", "memory", "cpus", "seed", "churn", "vmsplit",
                  "kaslr", "model_version", "digest", "processes"):
            self.assertEqual(c[k], s[k], k)
        self.assertEqual(self.ok("GET", "/v1/machines/ep-cl-dst/processes/1")
                         ["name"], "init")
        # Independent afterwards: a change to the clone leaves the source.
        k = self.mut("ep-cl-dst", "POST", "/kmalloc", {"size": 200},
                     status=201)
        self.assertNotEqual(self.state("ep-cl-dst")[0], s["digest"])
        self.assertEqual(self.state(src), (s["digest"], s["version"]))
        for m, n in ((src, 0), ("ep-cl-dst", 1)):
            caches = {c["name"]: c for c in
                      self.ok("GET", "/v1/machines/%s/slabs" % m)["caches"]}
            self.assertEqual(caches["kmalloc-256"]["active_objects"], n, m)
        # The same operation on the source converges on the same state.
        k2 = self.mut(src, "POST", "/kmalloc", {"size": 200}, status=201)
        self.assertEqual(k2["va"], k["va"])
        self.assertEqual(self.state(src)[0], self.state("ep-cl-dst")[0])
        self.refused(src, "POST", "/clone", {"id": "ep-cl-dst"}, status=409,
                     code="already_exists")
        self.refused(src, "POST", "/clone", {"id": "Bad"}, status=422)
        self.problem("POST", "/v1/machines/ep-cl-none/clone",
                     {"id": "ep-cl-dst2"}, status=404, code="not_found")
        self.problem("GET", "/v1/machines/ep-cl-dst2", status=404)

    # ---- layout ----

    def check_tiling(self, lay, end):
        regs = lay["regions"]
        self.assertEqual(regs[0]["start"], "0x0")
        self.assertEqual(regs[-1]["end"], end)
        for a, b in zip(regs, regs[1:]):
            self.assertEqual(a["end"], b["start"], (a, b))
            self.assertLess(H(a["start"]), H(a["end"]))
        for r in regs:
            self.assertEqual(H(r["last"]), H(r["end"]) - 1, r)
            self.assertIsInstance(r["description"], str)
            self.assertIn(r["name"], ("user", "hole", "direct_map", "vmalloc",
                                      "vmemmap", "kernel_text", "modules",
                                      "pkmap", "fixmap"))
            self.assertRegex(r["start"], r"^0x(0|[1-9a-f][0-9a-f]*)$")
        return [(r["name"], H(r["start"]), H(r["end"])) for r in regs
                if r["name"] != "hole"]

    def test_layout_x86_64(self):
        self.machine("ep-lay64", memory="2GiB", churn=0)
        lay = self.ok("GET", "/v1/machines/ep-lay64/layout")
        self.assertEqual(lay["arch"], "x86_64")
        self.assertEqual(lay["levels"], ["PGD", "PUD", "PMD", "PTE"])
        self.assertEqual(lay["page_offset"], hx(PO64))
        self.assertEqual(lay["task_size"], hx(TASK64))
        self.assertEqual(lay["high_memory"], hx(PO64 + 2 * GiB))
        self.assertEqual((lay["lowmem_bytes"], lay["highmem_bytes"]),
                         (2 * GiB, 0))
        self.assertEqual(lay["vmalloc_start"], hx(VMALLOC64))
        self.assertEqual(lay["vmalloc_end"], "0xffffe90000000000")
        self.assertEqual(self.check_tiling(lay, END64), [
            ("user", 0, 0x800000000000),
            ("direct_map", PO64, 0xffffc88000000000),
            ("vmalloc", VMALLOC64, 0xffffe90000000000),
            ("vmemmap", 0xffffea0000000000, 0xffffeb0000000000),
            ("kernel_text", KTEXT, 0xffffffffa0000000),
            ("modules", 0xffffffffa0000000, 0xffffffffff000000),
            ("fixmap", 0xffffffffff580000, 0xffffffffff800000),
        ])

    def test_layout_la57(self):
        self.machine("ep-lay57", arch="x86_64-la57", churn=0)
        lay = self.ok("GET", "/v1/machines/ep-lay57/layout")
        self.assertEqual(lay["levels"], ["PGD", "P4D", "PUD", "PMD", "PTE"])
        self.assertEqual(lay["page_offset"], hx(PO_LA57))
        self.assertEqual(lay["task_size"], "0xfffffffffff000")
        self.assertEqual(lay["high_memory"], hx(PO_LA57 + GiB))
        self.assertEqual(self.check_tiling(lay, END64), [
            ("user", 0, 0x100000000000000),
            ("direct_map", PO_LA57, PO_LA57 + (32 << 50)),
            ("vmalloc", 0xffa0000000000000, 0xffd2000000000000),
            ("vmemmap", 0xffd4000000000000, 0xffd4000000000000 + (1 << 49)),
            ("kernel_text", KTEXT, 0xffffffffa0000000),
            ("modules", 0xffffffffa0000000, 0xffffffffff000000),
            ("fixmap", 0xffffffffff580000, 0xffffffffff800000),
        ])

    def i386_layout(self, page_offset, ram, pae):
        """SPEC 1.2's i386 formulas."""
        pkmap = 0xffa00000 if pae else 0xff800000
        last_pkmap = 512 if pae else 1024
        vmalloc_end = pkmap - 2 * PAGE
        maxmem = vmalloc_end - page_offset - 128 * MiB
        lowmem = min(ram, maxmem)
        high = page_offset + lowmem
        return lowmem, high, high + 8 * MiB, vmalloc_end, [
            ("user", 0, page_offset),
            ("direct_map", page_offset, high),
            ("vmalloc", high + 8 * MiB, vmalloc_end),
            ("pkmap", pkmap, pkmap + last_pkmap * PAGE),
            ("fixmap", 0xfff1d000, 0xfffff000),
        ]

    def test_layout_i386(self):
        for mid, arch, split, po, ram in (
                ("ep-lay32", "i386", "3G/1G", PO32, 2 * GiB),
                ("ep-lay32b", "i386", "2G/2G", 0x80000000, GiB),
                ("ep-lay32c", "i386", "1G/3G", 0x40000000, 4 * GiB),
                ("ep-laypae", "i386-pae", "3G/1G", PO32, 8 * GiB)):
            self.machine(mid, arch=arch, vmsplit=split, memory=ram, churn=0)
            lay = self.ok("GET", "/v1/machines/%s/layout" % mid)
            pae = arch == "i386-pae"
            lowmem, high, vstart, vend, regions = self.i386_layout(po, ram,
                                                                   pae)
            self.assertEqual(lay["levels"], ["PGD", "PMD", "PTE"] if pae
                             else ["PGD", "PTE"])
            self.assertEqual(lay["page_offset"], hx(po))
            self.assertEqual(lay["task_size"], hx(po))
            self.assertEqual(lay["high_memory"], hx(high))
            self.assertEqual(lay["lowmem_bytes"], lowmem)
            self.assertEqual(lay["highmem_bytes"], ram - lowmem)
            self.assertEqual(lay["vmalloc_start"], hx(vstart))
            self.assertEqual(lay["vmalloc_end"], hx(vend))
            self.assertEqual(self.check_tiling(lay, "0x100000000"), regions,
                             mid)
        # The classic numbers: 3G/1G lowmem ends at 0x377fe000.
        lay = self.ok("GET", "/v1/machines/ep-lay32/layout")
        self.assertEqual(lay["high_memory"], "0xf77fe000")
        self.assertEqual(lay["vmalloc_start"], "0xf7ffe000")
        self.assertEqual(lay["lowmem_bytes"], 0x377fe000)

    # ---- zones, frames, slabs ----

    def zones(self, mid):
        z = self.ok("GET", "/v1/machines/%s/zones" % mid)["zones"]
        for zone in z:
            self.assertEqual(len(zone["free_blocks"]), 11)
            self.assertEqual(zone["free_pages"],
                             sum(n << k for k, n in
                                 enumerate(zone["free_blocks"])), zone)
        return z

    def test_zones(self):
        # (arch, memory) -> [(name, start_pfn, end_pfn)] (SPEC 1.3).
        cases = {
            ("x86_64", GiB): [("DMA", 0, 4096), ("DMA32", 4096, 262144)],
            ("x86_64", 6 * GiB): [("DMA", 0, 4096), ("DMA32", 4096, 1 << 20),
                                  ("Normal", 1 << 20, 6 << 18)],
            ("i386", 2 * GiB): [("DMA", 0, 4096), ("Normal", 4096, 227326),
                                ("HighMem", 227326, 524288)],
            ("i386", 512 * MiB): [("DMA", 0, 4096),
                                  ("Normal", 4096, 131072)],
        }
        for n, ((arch, mem), want) in enumerate(sorted(cases.items())):
            mid = "ep-zone-%d" % n
            self.machine(mid, arch=arch, memory=mem, churn=0)
            z = self.zones(mid)
            self.assertEqual([(x["name"], x["start_pfn"], x["end_pfn"])
                              for x in z], want, (arch, mem))
            # Pristine DMA: [1, 16) MiB free = 1 MiB (order 8) + 2 MiB
            # (order 9) + three 4 MiB blocks (order 10).
            self.assertEqual(z[0]["free_blocks"], [0] * 8 + [1, 1, 3])
            self.assertEqual(z[0]["free_pages"], 3840)
            if (arch, mem) == ("x86_64", 6 * GiB):
                # DMA32 [16 MiB, 4 GiB) less the 8 MiB kernel image, all in
                # 4 MiB blocks; the kernel's tables come from Normal.
                self.assertEqual(z[1]["free_blocks"], [0] * 10 + [1018])
            if (arch, mem) == ("i386", 2 * GiB):
                # HighMem starts at 0x377fe000: one order-1 block below the
                # first 4 MiB boundary, then 290 whole blocks.
                self.assertEqual(z[2]["free_blocks"],
                                 [0, 1] + [0] * 8 + [290])
        # A default machine (churn 1024) has free pages of small orders.
        self.machine("ep-zone-churn")
        z = self.zones("ep-zone-churn")
        self.assertGreater(z[1]["free_blocks"][0], 0)

    def frames(self, mid, query=""):
        r = self.ok("GET", "/v1/machines/%s/frames%s" % (mid, query))
        self.assertIsNone(r["next_start_pfn"])
        return r["ranges"]

    def test_frames(self):
        mid = "ep-frames"
        self.machine(mid, churn=0)
        p = self.proc(mid)
        k = self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        img = self.frames(mid, "?owner=kernel_image")
        self.assertEqual([(r["start_pfn"], r["end_pfn"], r["owner"]["kind"],
                           r["owner"]["section"]) for r in img],
                         [(s, e, "kernel_image", n) for s, e, n in IMAGE])
        self.assertEqual([(r["start_pfn"], r["end_pfn"]) for r in
                          self.frames(mid, "?owner=reserved")], [(0, 256)])
        # mem_map: 64 bytes per frame of 1 GiB = 16 MiB at the top.
        self.assertEqual([(r["start_pfn"], r["end_pfn"]) for r in
                          self.frames(mid, "?owner=mem_map")],
                         [(262144 - 4096, 262144)])
        slab = self.frames(mid, "?owner=slab")
        self.assertEqual(len(slab), 1)
        self.assertEqual(slab[0]["start_pfn"], H(k["pa"]) >> 12)
        self.assertEqual(slab[0]["owner"], {"kind": "slab",
                                            "cache": "kmalloc-128"})
        user = self.frames(mid, "?owner=user")
        self.assertTrue(user)
        for r in user:
            self.assertEqual(r["owner"]["kind"], "user")
            self.assertEqual(r["owner"]["pid"], p["pid"])
        self.assertEqual(sum(r["end_pfn"] - r["start_pfn"] for r in user),
                         (64 + 16 + 128) // 4)
        # The whole listing tiles [0, max_pfn) in order; its free frames
        # are the zones' free pages.
        allr = self.frames(mid)
        self.assertEqual(allr[0]["start_pfn"], 0)
        self.assertEqual(allr[-1]["end_pfn"], 262144)
        for a, b in zip(allr, allr[1:]):
            self.assertEqual(a["end_pfn"], b["start_pfn"])
        free = sum(r["end_pfn"] - r["start_pfn"] for r in allr
                   if r["owner"]["kind"] == "free")
        self.assertEqual(free, sum(z["free_pages"] for z in self.zones(mid)))
        # A range query.
        self.assertEqual(self.frames(mid, "?start_pfn=4096&end_pfn=5000"),
                         [{"start_pfn": 4096, "end_pfn": 5000,
                           "owner": {"kind": "kernel_image",
                                     "section": "text"}}])
        self.problem("GET", "/v1/machines/%s/frames?owner=nobody" % mid,
                     status=400, code="bad_query")
        self.problem("GET", "/v1/machines/%s/frames?start_pfn=9&end_pfn=9"
                     % mid, status=400, code="bad_query")

    def test_frames_adjacent_owners_merged(self):
        """SPEC 2.3: adjacent frames with the same owner are one range."""
        mid = "ep-frames-m"
        self.machine(mid, churn=0)
        self.proc(mid)
        allr = self.frames(mid)
        for a, b in zip(allr, allr[1:]):
            self.assertNotEqual(a["owner"], b["owner"],
                                "adjacent ranges with one owner: %s %s"
                                % (a, b))

    def test_slabs(self):
        mid = "ep-slabs"
        self.machine(mid, churn=0)
        geometry = [(8, 512, 1), (16, 256, 1), (32, 128, 1), (64, 64, 1),
                    (96, 42, 1), (128, 32, 1), (192, 21, 1), (256, 16, 1),
                    (512, 16, 2), (1024, 16, 4), (2048, 16, 8),
                    (4096, 8, 8), (8192, 4, 8)]

        def name(size):
            return "kmalloc-%s" % (size if size < 1024
                                   else "%dk" % (size // 1024))
        caches = {c["name"]: c for c in
                  self.ok("GET", "/v1/machines/%s/slabs" % mid)["caches"]}
        for prefix in ("", "dma-"):
            for size, objs, pages in geometry:
                c = caches[prefix + name(size)]
                self.assertEqual((c["object_size"], c["objects_per_slab"],
                                  c["pages_per_slab"]), (size, objs, pages))
                self.assertEqual((c["active_objects"], c["total_objects"],
                                  c["slabs"]), (0, 0, 0))
        self.assertEqual(len(caches), 26)
        for _ in range(3):
            self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        self.mut(mid, "POST", "/kmalloc", {"size": 600, "gfp": "GFP_DMA"},
                 status=201)
        caches = {c["name"]: c for c in
                  self.ok("GET", "/v1/machines/%s/slabs" % mid)["caches"]}
        c = caches["kmalloc-128"]
        self.assertEqual((c["active_objects"], c["total_objects"],
                          c["slabs"]), (3, 32, 1))
        c = caches["dma-kmalloc-1k"]
        self.assertEqual((c["active_objects"], c["total_objects"],
                          c["slabs"]), (1, 16, 1))

    # ---- kernel allocators ----

    def test_kmalloc_kfree(self):
        mid = "ep-km"
        self.machine(mid, churn=0)
        a = self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        self.assertEqual((a["size"], a["cache"], a["zone"], a["warnings"]),
                         (100, "kmalloc-128", "DMA32", []))
        self.assertEqual(H(a["va"]), PO64 + H(a["pa"]))
        self.assertEqual(H(a["pa"]) % PAGE, 0)
        b = self.mut(mid, "POST", "/kmalloc", {"size": "0x80"}, status=201)
        self.assertEqual(H(b["pa"]), H(a["pa"]) + 128)
        c = self.mut(mid, "POST", "/kmalloc", {"size": "8KiB"}, status=201)
        self.assertEqual(c["cache"], "kmalloc-8k")
        big = self.mut(mid, "POST", "/kmalloc", {"size": "12KiB"},
                       status=201)
        self.assertEqual((big["cache"], big["order"]), ("large", 2))
        self.assertEqual(H(big["pa"]) % (4 * PAGE), 0)
        self.assertEqual(H(big["va"]), PO64 + H(big["pa"]))
        d = self.mut(mid, "POST", "/kmalloc", {"size": 64, "gfp": "GFP_DMA"},
                     status=201)
        self.assertEqual((d["cache"], d["zone"]), ("dma-kmalloc-64", "DMA"))
        self.assertLess(H(d["pa"]), 16 * MiB)
        for gfp, word in (("GFP_KERNEL|GFP_DMA32", "DMA32"),
                          ("GFP_KERNEL|__GFP_HIGHMEM", "HIGHMEM")):
            w = self.mut(mid, "POST", "/kmalloc", {"size": 8, "gfp": gfp},
                         status=201)
            self.assertEqual(len(w["warnings"]), 1, w)
            self.assertIn(word, w["warnings"][0])
            self.assertEqual(H(w["va"]), PO64 + H(w["pa"]))
        self.mut(mid, "POST", "/kmalloc", {"size": 8, "gfp": "GFP_ATOMIC"},
                 status=201)
        # Refusals, none of which changes the machine.
        self.refused(mid, "POST", "/kmalloc",
                     {"size": 8, "gfp": "__GFP_DMA|__GFP_HIGHMEM"}, 422)
        self.refused(mid, "POST", "/kmalloc", {"size": "5MiB"}, 422)
        self.refused(mid, "POST", "/kmalloc", {"size": 8, "gfp": "GFP_NOPE"},
                     422)
        self.refused(mid, "POST", "/kmalloc", {}, 422, "missing_field")
        self.refused(mid, "POST", "/kmalloc", {"size": 8, "flags": 1}, 422,
                     "unknown_field")
        self.refused(mid, "POST", "/kmalloc", {"size": "lots"}, 422)
        self.refused(mid, "POST", "/kfree", {"va": hx(H(a["va"]) + 4)}, 409,
                     "interior_pointer")
        self.refused(mid, "POST", "/kfree", {"va": hx(H(big["va"]) + PAGE)},
                     409)
        f = self.mut(mid, "POST", "/kfree", {"va": a["va"]})
        self.assertEqual(f["va"], a["va"])
        self.refused(mid, "POST", "/kfree", {"va": a["va"]}, 409,
                     "double_free")
        self.mut(mid, "POST", "/kfree", {"va": big["va"]})
        self.refused(mid, "POST", "/kfree", {"va": big["va"]}, 409)
        # A freed object is the next one handed out (lowest free object).
        again = self.mut(mid, "POST", "/kmalloc", {"size": 128}, status=201)
        self.assertEqual(again["va"], a["va"])
        v = self.mut(mid, "POST", "/vmalloc", {"size": PAGE}, status=201)
        self.refused(mid, "POST", "/kfree", {"va": v["va"]}, 409,
                     "wrong_free")

    def test_kmalloc_zero(self):
        """SPEC 1.6: size 0 returns ZERO_SIZE_PTR with status 200, no pa;
        kfree of it or of 0 is a no-op (the digest does not move)."""
        mid = "ep-km0"
        self.machine(mid, churn=0)
        d0 = self.state(mid)[0]
        r = self.req("POST", "/v1/machines/%s/kmalloc" % mid, {"size": 0})
        self.assertEqual(r.json["va"], "0x10", r)
        self.assertIsNone(r.json["pa"])
        for va in ("0x10", "0x0", 0):
            self.ok("POST", "/v1/machines/%s/kfree" % mid, {"va": va},
                    status=200)
        self.assertEqual(self.state(mid)[0], d0)
        self.assertEqual(r.status, 200, r)

    def test_kmalloc_zones(self):
        """GFP_KERNEL falls back NORMAL -> DMA32 -> DMA; i386 kmalloc is
        lowmem at PAGE_OFFSET + pa."""
        self.machine("ep-kmz6", memory="6GiB", churn=0)
        k = self.mut("ep-kmz6", "POST", "/kmalloc", {"size": 64}, status=201)
        self.assertEqual(k["zone"], "Normal")
        self.assertGreaterEqual(H(k["pa"]), 4 * GiB)
        self.assertEqual(H(k["va"]), PO64 + H(k["pa"]))
        self.machine("ep-kmz32", arch="i386", memory="2GiB", churn=0)
        for gfp in ("GFP_KERNEL", "GFP_KERNEL|__GFP_HIGHMEM"):
            k = self.mut("ep-kmz32", "POST", "/kmalloc",
                         {"size": 64, "gfp": gfp}, status=201)
            self.assertEqual(k["zone"], "Normal")
            self.assertLess(H(k["pa"]), 0x377fe000)
            self.assertEqual(H(k["va"]), PO32 + H(k["pa"]))

    def test_vmalloc_vfree_x86_64(self):
        mid = "ep-vm"
        self.machine(mid, churn=0)
        p = self.proc(mid)
        # The first kernel stack is the first vmalloc area: 16 KiB + guard.
        self.assertEqual(p["kernel_stack"], hx(VMALLOC64))
        v = self.mut(mid, "POST", "/vmalloc", {"size": "8KiB"}, status=201)
        self.assertEqual(v["va"], "0xffffc90000005000")
        self.assertEqual((v["size"], v["pages"], v["guard"]), (8192, 2, True))
        self.assertEqual(len(v["frames"]), 2)
        w = self.mut(mid, "POST", "/vmalloc", {"size": 1}, status=201)
        self.assertEqual(w["va"], hx(VMALLOC64 + 0x8000))
        self.assertEqual((w["size"], w["pages"]), (PAGE, 1))
        ng = self.mut(mid, "POST", "/vmalloc", {"size": PAGE, "guard": False},
                      status=201)
        self.assertEqual(ng["va"], hx(VMALLOC64 + 0xa000))
        self.assertIs(ng["guard"], False)
        nx = self.mut(mid, "POST", "/vmalloc", {"size": PAGE}, status=201)
        self.assertEqual(nx["va"], hx(VMALLOC64 + 0xb000))
        # Each page maps its frame, in order, in every address space.
        for i, f in enumerate(v["frames"]):
            for who in ({"pid": 1}, {"cpu": 0}):
                t = self.tr(mid, va=hx(H(v["va"]) + i * PAGE + 0x123),
                            mode="kernel", **who)
                self.assertTrue(t["ok"], t)
                self.assertEqual(t["pa"], hx(H(f) + 0x123))
                self.assertEqual((t["region"], t["page_size"]),
                                 ("vmalloc", PAGE))
        owned = set()
        for r in self.frames(mid, "?owner=vmalloc"):
            if r["owner"] == {"kind": "vmalloc", "area": v["va"]}:
                owned |= set(range(r["start_pfn"], r["end_pfn"]))
        self.assertEqual(owned, {H(f) >> 12 for f in v["frames"]})
        # The guard page is unmapped.
        t = self.tr(mid, va=hx(H(v["va"]) + 2 * PAGE), mode="kernel")
        self.assertFalse(t["ok"])
        self.assertEqual(t["fault"]["kind"], "not_present")
        self.refused(mid, "POST", "/vfree", {"va": hx(H(v["va"]) + PAGE)},
                     409)
        self.refused(mid, "POST", "/vmalloc", {"size": 0}, 422)
        self.refused(mid, "POST", "/vmalloc", {}, 422, "missing_field")
        # Outside the vmalloc region: never valid (SPEC 2.1).
        self.refused(mid, "POST", "/vfree", {"va": hx(PO64 + 0x2000000)},
                     422)
        self.mut(mid, "POST", "/vfree", {"va": v["va"]})
        t = self.tr(mid, va=v["va"], mode="kernel")
        self.assertFalse(t["ok"])
        self.refused(mid, "POST", "/vfree", {"va": v["va"]}, 409)
        # The area is reusable at once (first fit from the lowest address).
        again = self.mut(mid, "POST", "/vmalloc", {"size": "8KiB"},
                         status=201)
        self.assertEqual(again["va"], v["va"])

    def test_vmalloc_i386_highmem(self):
        self.machine("ep-vm32", arch="i386", memory="2GiB", churn=0)
        v = self.mut("ep-vm32", "POST", "/vmalloc", {"size": "8KiB"},
                     status=201)
        self.assertEqual(v["va"], "0xf7ffe000")
        # GFP_KERNEL|__GFP_HIGHMEM: the smallest free list of HighMem
        # first, i.e. the order-1 block at 0x377fe000.
        self.assertEqual(v["frames"], ["0x377fe000", "0x377ff000"])
        w = self.mut("ep-vm32", "POST", "/vmalloc", {"size": PAGE},
                     status=201)
        self.assertEqual(w["va"], hx(0xf7ffe000 + 3 * PAGE))

    def test_vmalloc_churned_not_contiguous(self):
        """SPEC 1.3: on a default machine 8 vmalloc'd pages are not all
        physically contiguous, from highmem too."""
        for mid, arch in (("ep-vmc64", "x86_64"), ("ep-vmc32", "i386")):
            self.machine(mid, arch=arch, memory="2GiB")
            v = self.mut(mid, "POST", "/vmalloc", {"size": 8 * PAGE},
                         status=201)
            pfns = [H(f) >> 12 for f in v["frames"]]
            self.assertEqual(len(set(pfns)), 8)
            self.assertNotEqual(pfns, list(range(pfns[0], pfns[0] + 8)), v)
            if arch == "i386":
                self.assertTrue(all(f >= 0x377fe000 >> 12 for f in pfns))
            d = self.ok("POST", "/v1/machines/%s/dma-check" % mid,
                        {"va": v["va"], "length": 8 * PAGE})
            self.assertFalse(d["single_ok"])
            self.assertIn("vmalloc_address", d["reasons"])
            self.assertIn("not_contiguous", d["reasons"])
            self.assertGreater(len(d["segments"]), 1)
            self.assertEqual(sum(s["length"] for s in d["segments"]),
                             8 * PAGE)

    def test_pages(self):
        mid = "ep-pg"
        self.machine(mid, churn=0)
        a = self.mut(mid, "POST", "/pages", {"order": 2}, status=201)
        self.assertEqual((a["order"], a["zone"]), (2, "DMA32"))
        self.assertEqual(H(a["pa"]) % (4 * PAGE), 0)
        self.assertEqual(a["va"], hx(PO64 + H(a["pa"])))
        b = self.mut(mid, "POST", "/pages", {}, status=201)
        self.assertEqual(b["order"], 0)
        dma = self.mut(mid, "POST", "/pages", {"order": 0, "gfp": "GFP_DMA"},
                       status=201)
        self.assertEqual(dma["zone"], "DMA")
        # Pristine DMA: the order-8 block at 1 MiB is the smallest.
        self.assertEqual(dma["pa"], "0x100000")
        self.refused(mid, "POST", "/pages/free", {"pa": a["pa"], "order": 1},
                     409, "wrong_order")
        self.refused(mid, "POST", "/pages/free", {"pa": a["pa"], "order": 3},
                     409)
        self.refused(mid, "POST", "/pages", {"order": 11}, 422)
        self.refused(mid, "POST", "/pages/free", {"order": 0}, 422,
                     "missing_field")
        f = self.mut(mid, "POST", "/pages/free", {"pa": a["pa"], "order": 2})
        self.assertEqual((f["pa"], f["order"]), (a["pa"], 2))
        self.refused(mid, "POST", "/pages/free", {"pa": a["pa"], "order": 2},
                     409, "double_free")
        # LIFO: the block just freed is the head of its list again.
        self.assertEqual(self.mut(mid, "POST", "/pages", {"order": 2},
                                  status=201)["pa"], a["pa"])
        self.machine("ep-pg32", arch="i386", memory="2GiB", churn=0)
        h = self.mut("ep-pg32", "POST", "/pages",
                     {"order": 1, "gfp": "GFP_HIGHUSER"}, status=201)
        self.assertEqual((h["zone"], h["pa"], h["va"]),
                         ("HighMem", "0x377fe000", None))
        k = self.mut("ep-pg32", "POST", "/pages", {"order": 0}, status=201)
        self.assertEqual(k["zone"], "Normal")
        self.assertEqual(k["va"], hx(PO32 + H(k["pa"])))

    # ---- processes ----

    def test_processes(self):
        mid = "ep-proc"
        self.machine(mid, churn=0)
        p1 = self.proc(mid, name="init")
        self.assertEqual((p1["pid"], p1["name"]), (1, "init"))
        self.assertEqual(p1["regions"], [
            {"start": "0x400000", "end": "0x410000", "perms": "r-x",
             "kind": "text"},
            {"start": "0x410000", "end": "0x414000", "perms": "rw-",
             "kind": "data"},
            {"start": "0x7ffffffdf000", "end": "0x7ffffffff000",
             "perms": "rw-", "kind": "stack"}])
        self.assertRegex(p1["pgd_pa"], r"^0x[0-9a-f]+$")
        p2 = self.proc(mid, name="sh", text="8KiB", data=0, heap="0x2000",
                       stack=65536)
        self.assertEqual(p2["pid"], 2)
        self.assertEqual(p2["regions"], [
            {"start": "0x400000", "end": "0x402000", "perms": "r-x",
             "kind": "text"},
            {"start": "0x402000", "end": "0x404000", "perms": "rw-",
             "kind": "heap"},
            {"start": "0x7ffffffef000", "end": "0x7ffffffff000",
             "perms": "rw-", "kind": "stack"}])
        lst = self.ok("GET", "/v1/machines/%s/processes" % mid)
        self.assertEqual([p["pid"] for p in lst["items"]], [1, 2])
        self.assertIsNone(lst["next_page_token"])
        got = self.ok("GET", "/v1/machines/%s/processes/1" % mid)
        del p1["version"]
        self.assertEqual(got, p1)
        self.assertEqual(self.ok("GET", "/v1/machines/" + mid)["processes"],
                         2)
        # Exit: 204, frames back where they were, pid never reused.
        z_before = self.zones(mid)
        p3 = self.proc(mid)
        self.assertEqual(p3["pid"], 3)
        self.mut(mid, "DELETE", "/processes/3", status=204)
        self.assertEqual(self.zones(mid), z_before)
        self.problem("GET", "/v1/machines/%s/processes/3" % mid, status=404,
                     code="not_found")
        self.refused(mid, "DELETE", "/processes/3", status=404,
                     code="not_found")
        self.assertEqual(self.proc(mid)["pid"], 4)
        self.refused(mid, "POST", "/processes", {"name": ""}, 422)
        self.refused(mid, "POST", "/processes", {"nmae": "x"}, 422,
                     "unknown_field")
        self.refused(mid, "POST", "/processes", {"populate": "yes"}, 400,
                     "wrong_type")
        self.problem("GET", "/v1/machines/%s/processes/abc" % mid,
                     status=404)
        self.problem("GET", "/v1/machines/%s/processes/99" % mid, status=404)
        self.machine("ep-proc32", arch="i386", churn=0)
        q = self.proc("ep-proc32")
        self.assertEqual(q["regions"], [
            {"start": "0x8048000", "end": "0x8058000", "perms": "r-x",
             "kind": "text"},
            {"start": "0x8058000", "end": "0x805c000", "perms": "rw-",
             "kind": "data"},
            {"start": "0xbffe0000", "end": "0xc0000000", "perms": "rw-",
             "kind": "stack"}])

    def test_mmap_munmap_brk(self):
        mid = "ep-mm"
        self.machine(mid, churn=0)
        p = self.proc(mid)
        pp = "/processes/%d" % p["pid"]
        L = 16 * KiB
        m = self.mut(mid, "POST", pp + "/mmap", {"length": L}, status=201)
        self.assertEqual({k: m[k] for k in ("start", "end", "perms", "kind")},
                         {"start": hx(MMAP_BASE64 - L), "end": hx(MMAP_BASE64),
                          "perms": "rw-", "kind": "mmap"})
        r = self.mut(mid, "POST", pp + "/mmap",
                     {"length": "8KiB", "prot": "r--"}, status=201)
        self.assertEqual((r["start"], r["end"], r["perms"]),
                         (hx(MMAP_BASE64 - L - 8 * KiB),
                          hx(MMAP_BASE64 - L), "r--"))
        h = self.mut(mid, "POST", pp + "/mmap",
                     {"length": PAGE, "addr": "0x10000000", "prot": "r-x"},
                     status=201)
        self.assertEqual((h["start"], h["end"]), ("0x10000000", "0x10001000"))
        t = self.tr(mid, va=hx(MMAP_BASE64 - L), pid=1, access="write")
        self.assertTrue(t["ok"], t)
        t = self.tr(mid, va=hx(MMAP_BASE64 - L - PAGE), pid=1,
                    access="write")
        self.assertEqual(t["fault"]["si_code"], "SEGV_ACCERR")
        regs = self.ok("GET", "/v1/machines/%s%s" % (mid, pp))["regions"]
        self.assertIn({"start": r["start"], "end": r["end"], "perms": "r--",
                       "kind": "mmap"}, regs)
        # munmap the middle page of the first mapping: it splits.
        mid_page = MMAP_BASE64 - L + PAGE
        u = self.mut(mid, "POST", pp + "/munmap",
                     {"addr": hx(mid_page), "length": PAGE})
        self.assertEqual(u["pid"], p["pid"])
        self.assertIn({"start": hx(MMAP_BASE64 - L), "end": hx(mid_page),
                       "perms": "rw-", "kind": "mmap"}, u["regions"])
        self.assertIn({"start": hx(mid_page + PAGE), "end": hx(MMAP_BASE64),
                       "perms": "rw-", "kind": "mmap"}, u["regions"])
        t = self.tr(mid, va=hx(mid_page), pid=1)
        self.assertEqual((t["fault"]["kind"], t["fault"]["si_code"]),
                         ("not_present", "SEGV_MAPERR"))
        # brk: grows, shrinks, absolute.
        start = H(p["brk_start"])
        self.assertEqual(start, 0x414000)
        b = self.mut(mid, "POST", pp + "/brk", {"increment": 8192})
        self.assertEqual((H(b["brk"]), b["pid"]), (start + 8192, 1))
        self.assertIn({"start": hx(start), "end": hx(start + 8192),
                       "perms": "rw-", "kind": "heap"}, b["regions"])
        self.assertTrue(self.tr(mid, va=hx(start + 4096), pid=1,
                                access="write")["ok"])
        b = self.mut(mid, "POST", pp + "/brk", {"increment": -4096})
        self.assertEqual(H(b["brk"]), start + 4096)
        b = self.mut(mid, "POST", pp + "/brk", {"addr": hx(start + 3 * PAGE)})
        self.assertEqual(H(b["brk"]), start + 3 * PAGE)
        self.refused(mid, "POST", pp + "/brk", {"addr": hx(start - PAGE)},
                     422)
        self.refused(mid, "POST", pp + "/brk", {}, 422, "missing_field")
        self.refused(mid, "POST", pp + "/brk",
                     {"increment": 1, "addr": "0x500000"}, 422)
        self.refused(mid, "POST", pp + "/mmap", {"prot": "rw-"}, 422,
                     "missing_field")
        self.refused(mid, "POST", pp + "/mmap", {"length": PAGE,
                                                 "prot": "rwq"}, 422)
        self.refused(mid, "POST", pp + "/munmap", {"addr": "0x400000"}, 422,
                     "missing_field")
        self.refused(mid, "POST", "/processes/9/mmap", {"length": PAGE}, 404)
        # Out of memory on a small machine changes nothing.
        self.machine("ep-mm-small", memory="32MiB")
        self.proc("ep-mm-small")
        self.refused("ep-mm-small", "POST", "/processes/1/mmap",
                     {"length": "40MiB"}, 409, "out_of_memory")
        self.refused("ep-mm-small", "POST", "/processes",
                     {"stack": "30MiB"}, 409, "out_of_memory")
        self.refused("ep-mm-small", "POST", "/vmalloc", {"size": "64MiB"},
                     409, "out_of_memory")
        # i386: the first mmap of length L lands at mmap_base - L.
        self.machine("ep-mm32", arch="i386", churn=0)
        self.proc("ep-mm32")
        m = self.mut("ep-mm32", "POST", "/processes/1/mmap", {"length": L},
                     status=201)
        self.assertEqual((m["start"], m["end"]),
                         (hx(MMAP_BASE32 - L), hx(MMAP_BASE32)))

    def test_pagetable(self):
        mid = "ep-pt"
        self.machine(mid, churn=0)
        p = self.proc(mid)
        pt = self.ok("GET", "/v1/machines/%s/processes/1/pagetable" % mid)
        self.assertEqual(pt["pid"], 1)
        maps = {m["va_start"]: m for m in pt["mappings"]}
        starts = [H(m["va_start"]) for m in pt["mappings"]]
        self.assertEqual(starts, sorted(starts))

        def check(va, end, size, has, hasnt, pa=None):
            m = maps[hx(va)]
            self.assertEqual((m["va_end"], m["page_size"]), (hx(end), size),
                             m)
            for f in has:
                self.assertIn(f, m["flags"], m)
            for f in hasnt:
                self.assertNotIn(f, m["flags"], m)
            if pa is not None:
                self.assertEqual(m["pa_start"], hx(pa))
            return m
        # User text and data (contiguous frames on a pristine machine).
        text = check(0x400000, 0x410000, PAGE, ["P", "US", "A"],
                     ["RW", "NX", "G"])
        self.assertEqual(sorted(text["flags"]), ["A", "P", "US"])
        check(0x410000, 0x414000, PAGE, ["P", "RW", "US", "A", "D", "NX"],
              ["G"])
        check(0x7ffffffdf000, 0x7ffffffff000, PAGE,
              ["P", "RW", "US", "NX"], ["G"])
        # The kernel half: the direct map in 1 GiB pages, the kernel image
        # at __START_KERNEL_map + phys in 2 MiB pages, mem_map at vmemmap.
        check(PO64, PO64 + GiB, GiB, ["P", "RW", "PS", "G", "NX"], ["US"],
              pa=0)
        check(0xffffffff81000000, 0xffffffff81400000, 2 * MiB,
              ["P", "PS", "G"], ["RW", "NX", "US"], pa=16 * MiB)
        check(0xffffffff81400000, 0xffffffff81600000, 2 * MiB,
              ["P", "PS", "G", "NX"], ["RW", "US"], pa=20 * MiB)
        check(0xffffffff81600000, 0xffffffff81800000, 2 * MiB,
              ["P", "RW", "PS", "G", "NX"], ["US"], pa=22 * MiB)
        check(0xffffea0000000000, 0xffffea0001000000, 2 * MiB,
              ["P", "RW", "G", "NX"], ["US"], pa=GiB - 16 * MiB)
        check(VMALLOC64, VMALLOC64 + 16 * KiB, PAGE, ["P", "RW", "G", "NX"],
              ["US"])
        # Each mapping agrees with the walker.
        for m in pt["mappings"]:
            t = self.tr(mid, va=m["va_start"], pid=1, mode="kernel")
            self.assertTrue(t["ok"], (m, t))
            self.assertEqual((t["pa"], t["page_size"]),
                             (m["pa_start"], m["page_size"]))
        # Its own tables: the PGD, then PUD, PMD, PTE for the text and data
        # and PUD, PMD, PTE for the stack at the top of user space.
        tf = pt["table_frames"]
        self.assertEqual(len(tf), 7, tf)
        self.assertIn(p["pgd_pa"], tf)
        owned = set()
        for r in self.frames(mid, "?owner=page_table"):
            if r["owner"]["pid"] == 1:
                owned |= {hx(pfn << 12) for pfn in
                          range(r["start_pfn"], r["end_pfn"])}
        self.assertEqual(owned, set(tf))
        self.problem("GET", "/v1/machines/%s/processes/2/pagetable" % mid,
                     status=404)
        self.problem("GET", "/v1/machines/%s/processes/0/pagetable" % mid,
                     status=404)

    # ---- CPUs ----

    def test_cpus_switch(self):
        mid = "ep-cpu"
        self.machine(mid, cpus=2, churn=0)
        cpus = self.ok("GET", "/v1/machines/%s/cpus" % mid)["cpus"]
        self.assertEqual([(c["cpu"], c["pid"]) for c in cpus],
                         [(0, 0), (1, 0)])
        ref = cpus[0]["cr3"]
        self.assertEqual(cpus[1]["cr3"], ref)
        p1, p2 = self.proc(mid), self.proc(mid)
        s = self.mut(mid, "POST", "/cpus/0/switch", {"pid": 1})
        self.assertEqual(s, {"cpu": 0, "prev_pid": 0, "next_pid": 1,
                             "cr3_before": ref, "cr3_after": p1["pgd_pa"],
                             "version": s["version"]})
        self.refused(mid, "POST", "/cpus/1/switch", {"pid": 1}, 409,
                     "task_busy")
        s = self.mut(mid, "POST", "/cpus/1/switch", {"pid": "2"})
        self.assertEqual((s["prev_pid"], s["cr3_after"]), (0, p2["pgd_pa"]))
        self.assertEqual(
            self.ok("GET", "/v1/machines/%s/cpus" % mid)["cpus"],
            [{"cpu": 0, "pid": 1, "cr3": p1["pgd_pa"]},
             {"cpu": 1, "pid": 2, "cr3": p2["pgd_pa"]}])
        # Translation through a CPU uses its current task's tables.
        t1 = self.tr(mid, va="0x400000", cpu=0)
        t2 = self.tr(mid, va="0x400000", cpu=1)
        self.assertEqual((t1["pid"], t1["cpu"], t2["pid"], t2["cpu"]),
                         (1, 0, 2, 1))
        self.assertNotEqual(t1["pa"], t2["pa"])
        self.assertEqual(t1["pa"], self.tr(mid, va="0x400000", pid=1)["pa"])
        # Switching to the current task changes nothing but the version.
        d = self.state(mid)[0]
        s = self.mut(mid, "POST", "/cpus/0/switch", {"pid": 1})
        self.assertEqual((s["prev_pid"], s["next_pid"]), (1, 1))
        self.assertEqual(s["cr3_before"], s["cr3_after"])
        self.assertEqual(self.state(mid)[0], d)
        self.refused(mid, "POST", "/cpus/2/switch", {"pid": 0}, 404)
        self.refused(mid, "POST", "/cpus/0/switch", {"pid": 7}, 404)
        self.refused(mid, "POST", "/cpus/0/switch", {}, 422, "missing_field")
        # An exiting current task leaves its CPU on pid 0.
        self.mut(mid, "DELETE", "/processes/2", status=204)
        self.assertEqual(
            self.ok("GET", "/v1/machines/%s/cpus" % mid)["cpus"][1],
            {"cpu": 1, "pid": 0, "cr3": ref})
        s = self.mut(mid, "POST", "/cpus/0/switch", {"pid": 0})
        self.assertEqual((s["cr3_before"], s["cr3_after"]),
                         (p1["pgd_pa"], ref))

    # ---- translation ----

    def test_translate_spec_example(self):
        """The request of SPEC 2.2, field by field."""
        mid = "ep-lab1"
        self.machine(mid, arch="i386", memory="2GiB")
        p = self.proc(mid)
        t = self.tr(mid, va="0xc0001234", pid=1, mode="user", access="read",
                    explain=True)
        f = t.pop("fault")
        walk = t.pop("walk")
        self.assertEqual(t, {"va": "0xc0001234", "pid": 1, "cpu": None,
                             "mode": "user", "access": "read", "ok": False,
                             "pa": None, "region": "direct_map",
                             "page_size": 4194304})
        reason = f.pop("reason")
        self.assertIn("U/S", reason)
        self.assertIn("PGD entry 768", reason)
        self.assertEqual(f, {"kind": "protection", "error_code": "0x5",
                             "linux_error_code": "0x5", "outcome": "sigsegv",
                             "signal": "SIGSEGV", "si_code": "SEGV_MAPERR",
                             "level": "PGD"})
        self.assertEqual(walk, [{"level": "PGD", "index": 768,
                                 "entry_pa": hx(H(p["pgd_pa"]) + 768 * 4),
                                 "entry": "0x000001e3",
                                 "flags": ["P", "RW", "A", "D", "PS", "G"]}])
        # The same address from the kernel: the direct map, pa = va - 3G.
        k = self.tr(mid, va="0xc0001234", pid=1, mode="kernel")
        self.assertEqual((k["ok"], k["pa"], k["fault"]),
                         (True, "0x1234", None))

    def test_translate_faults_x86_64(self):
        mid = "ep-tr"
        self.machine(mid, churn=0)
        self.proc(mid)
        pt = self.ok("GET", "/v1/machines/%s/processes/1/pagetable" % mid)
        text_pa = H(pt["mappings"][0]["pa_start"])
        d0 = self.state(mid)

        def fault(t, kind, ec, lec, outcome, si, level):
            self.assertFalse(t["ok"], t)
            self.assertIsNone(t["pa"])
            f = t["fault"]
            self.assertEqual((f["kind"], f["error_code"],
                              f["linux_error_code"], f["outcome"],
                              f["si_code"], f["level"]),
                             (kind, ec, lec, outcome, si, level), t)
            self.assertEqual(f["signal"],
                             "SIGSEGV" if outcome == "sigsegv" else None)
            self.assertIsInstance(f["reason"], str)
            self.assertTrue(f["reason"])
        # Success, with the walk: 4 levels, entries 16 hex digits.
        t = self.tr(mid, va="0x400123", pid=1, explain=True)
        self.assertEqual((t["ok"], t["pa"], t["region"], t["page_size"],
                          t["fault"]), (True, hx(text_pa + 0x123), "user",
                                        PAGE, None))
        self.assertEqual([w["level"] for w in t["walk"]],
                         ["PGD", "PUD", "PMD", "PTE"])
        self.assertEqual([w["index"] for w in t["walk"]], [0, 0, 2, 0])
        for w in t["walk"]:
            self.assertRegex(w["entry"], r"^0x[0-9a-f]{16}$")
        self.assertEqual(H(t["walk"][-1]["entry"]) & ~0xfff & ((1 << 52) - 1),
                         text_pa)
        for w in t["walk"][:-1]:
            self.assertEqual(H(w["entry"]) & 0xfff, 0x067)  # _PAGE_TABLE
        self.assertNotIn("walk", self.tr(mid, va="0x400123", pid=1))
        # Kernel mode may read user pages (SMAP off).
        self.assertTrue(self.tr(mid, va="0x400000", pid=1,
                                mode="kernel")["ok"])
        # not_present, no region: SEGV_MAPERR.
        fault(self.tr(mid, va="0x1000", pid=1), "not_present", "0x4", "0x4",
              "sigsegv", "SEGV_MAPERR", "PMD")
        fault(self.tr(mid, va="0x1000", pid=1, access="write"), "not_present",
              "0x6", "0x6", "sigsegv", "SEGV_MAPERR", "PMD")
        # protection inside a region: SEGV_ACCERR.
        fault(self.tr(mid, va="0x400000", pid=1, access="write"),
              "protection", "0x7", "0x7", "sigsegv", "SEGV_ACCERR", "PTE")
        fault(self.tr(mid, va="0x410000", pid=1, access="exec"),
              "protection", "0x15", "0x15", "sigsegv", "SEGV_ACCERR", "PTE")
        self.assertTrue(self.tr(mid, va="0x400000", pid=1,
                                access="exec")["ok"])
        # User access to the kernel: U/S clear at the top level; Linux
        # sets P in what it reports at or above TASK_SIZE_MAX.
        t = self.tr(mid, va=hx(PO64 + 0x1000), pid=1)
        fault(t, "protection", "0x5", "0x5", "sigsegv", "SEGV_MAPERR", "PGD")
        self.assertEqual((t["region"], t["page_size"]), ("direct_map", GiB))
        t = self.tr(mid, va=hx(VMALLOC64 + 0x100000), pid=1)
        fault(t, "not_present", "0x4", "0x5", "sigsegv", "SEGV_MAPERR",
              t["fault"]["level"])
        self.assertIsNone(t["page_size"])
        # Kernel mode: oops, no signal.
        fault(self.tr(mid, va="0xffffffff81000000", mode="kernel",
                      access="write"), "protection", "0x3", "0x3", "oops",
              None, "PMD")
        fault(self.tr(mid, va=hx(PO64), mode="kernel", access="exec"),
              "protection", "0x11", "0x11", "oops", None, "PUD")
        fault(self.tr(mid, va=hx(VMALLOC64 + 0x100000), mode="kernel"),
              "not_present", "0x0", "0x0", "oops", None,
              t["fault"]["level"])
        t = self.tr(mid, va="0xffffffff81000000", mode="kernel",
                    access="exec")
        self.assertEqual((t["ok"], t["pa"], t["region"], t["page_size"]),
                         (True, "0x1000000", "kernel_text", 2 * MiB))
        # Non-canonical: #GP, no walk, error code 0.
        for va in ("0x800000000000", "0xffff7fffffffffff"):
            t = self.tr(mid, va=va, pid=1, explain=True)
            fault(t, "general_protection", "0x0", "0x0", "sigsegv",
                  "SI_KERNEL", None)
            self.assertEqual((t["region"], t["page_size"], t["walk"]),
                             ("hole", None, []))
            fault(self.tr(mid, va=va, mode="kernel"), "general_protection",
                  "0x0", "0x0", "oops", None, None)
        # The idle task has only the kernel half.
        t = self.tr(mid, va="0x400000", cpu=0)
        self.assertEqual((t["pid"], t["cpu"], t["fault"]["kind"]),
                         (0, 0, "not_present"))
        self.assertEqual(self.tr(mid, va="0x400000", pid=0)["pid"], 0)
        # Translation is a pure query.
        self.assertEqual(self.state(mid), d0)
        # Refusals.
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "pid": 1, "cpu": 0}, status=422)
        self.problem("POST", "/v1/machines/%s/translate" % mid, {"pid": 1},
                     status=422, code="missing_field")
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "mode": "root"}, status=422)
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "access": "fly"}, status=422)
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "explian": True}, status=422,
                     code="unknown_field")
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "pid": 5}, status=404)
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1000", "cpu": 1}, status=404)
        self.problem("POST", "/v1/machines/%s/translate" % mid,
                     {"va": "0x1g"}, status=422)

    def test_translate_la57_canonical(self):
        self.machine("ep-tr57", arch="x86_64-la57", churn=0)
        self.proc("ep-tr57")
        t = self.tr("ep-tr57", va="0x800000000000", pid=1)
        self.assertEqual((t["region"], t["fault"]["kind"],
                          t["fault"]["si_code"]),
                         ("user", "not_present", "SEGV_MAPERR"))
        t = self.tr("ep-tr57", va="0x100000000000000", pid=1)
        self.assertEqual(t["fault"]["kind"], "general_protection")
        t = self.tr("ep-tr57", va="0x400000", pid=1, explain=True)
        self.assertTrue(t["ok"])
        self.assertEqual([w["level"] for w in t["walk"]],
                         ["PGD", "P4D", "PUD", "PMD", "PTE"])

    def test_translate_demand_paging(self):
        mid = "ep-dp"
        self.machine(mid, churn=0)
        self.proc(mid, populate=False)
        self.mut(mid, "POST", "/processes/1/mmap",
                 {"length": 8192, "prot": "r--", "populate": False},
                 status=201)
        for va, access, mode, ec in (("0x400000", "read", "user", "0x4"),
                                     ("0x400000", "exec", "user", "0x14"),
                                     ("0x410000", "write", "user", "0x6"),
                                     ("0x7fffffffe000", "write", "user",
                                      "0x6"),
                                     ("0x7ffff7ffd000", "read", "user",
                                      "0x4"),
                                     ("0x410000", "write", "kernel", "0x2")):
            t = self.tr(mid, va=va, pid=1, access=access, mode=mode)
            f = t["fault"]
            self.assertEqual((f["kind"], f["error_code"], f["outcome"],
                              f["signal"], f["si_code"]),
                             ("not_present", ec, "demand_paging", None,
                              None), t)
            self.assertIsNone(t["page_size"])
        # A region that forbids the access: SIGSEGV, SEGV_ACCERR.
        for va, access in (("0x400000", "write"),
                           ("0x7ffff7ffd000", "write"),
                           ("0x410000", "exec")):
            t = self.tr(mid, va=va, pid=1, access=access)
            self.assertEqual((t["fault"]["kind"], t["fault"]["outcome"],
                              t["fault"]["signal"], t["fault"]["si_code"]),
                             ("not_present", "sigsegv", "SIGSEGV",
                              "SEGV_ACCERR"), t)
        # Outside every region: SEGV_MAPERR.
        t = self.tr(mid, va="0x20000000", pid=1)
        self.assertEqual((t["fault"]["outcome"], t["fault"]["si_code"]),
                         ("sigsegv", "SEGV_MAPERR"))

    def test_translate_i386_no_nx(self):
        """Without NX an instruction fetch is checked as a read, and the
        error code has no I bit."""
        mid = "ep-tr32"
        self.machine(mid, arch="i386", churn=0)
        self.proc(mid)
        t = self.tr(mid, va="0x8058000", pid=1, access="exec", explain=True)
        self.assertTrue(t["ok"], t)
        for w in t["walk"]:
            self.assertRegex(w["entry"], r"^0x[0-9a-f]{8}$")
            self.assertNotIn("NX", w["flags"])
        t = self.tr(mid, va="0x1000", pid=1, access="exec")
        self.assertEqual((t["fault"]["kind"], t["fault"]["error_code"]),
                         ("not_present", "0x4"))
        t = self.tr(mid, va="0x8048000", pid=1, access="write")
        self.assertEqual((t["fault"]["kind"], t["fault"]["error_code"],
                          t["fault"]["si_code"]),
                         ("protection", "0x7", "SEGV_ACCERR"))
        # The VMALLOC_OFFSET gap is a hole.
        t = self.tr(mid, va="0xf7800000", mode="kernel")
        self.assertEqual(t["region"], "hole")

    def test_translate_batch(self):
        mid = "ep-batch"
        self.machine(mid, churn=0)
        self.proc(mid)
        items = [{"va": "0x400000", "pid": 1},
                 {"va": "0x1000", "pid": 1, "access": "write"},
                 {"va": "0x800000000000"},
                 {"va": hx(PO64 + 0x5000), "mode": "kernel", "explain": True},
                 {"va": "0x410000", "pid": 1, "access": "exec"}]
        res = self.ok("POST", "/v1/machines/%s/translate/batch" % mid,
                      {"items": items})["results"]
        self.assertEqual(len(res), len(items))
        for item, r in zip(items, res):
            self.assertEqual(r, self.tr(mid, **item))
        self.assertEqual(self.ok("POST", "/v1/machines/%s/translate/batch"
                                 % mid, {"items": []}), {"results": []})
        # 10,000 items: fine, in order; 10,001: 422.
        n = 10000
        big = [{"va": hx(PO64 + i * PAGE), "mode": "kernel"}
               for i in range(n)]
        res = self.ok("POST", "/v1/machines/%s/translate/batch" % mid,
                      {"items": big})["results"]
        self.assertEqual(len(res), n)
        for i in (0, 1, 4999, n - 1):
            self.assertEqual((res[i]["va"], res[i]["pa"]),
                             (hx(PO64 + i * PAGE), hx(i * PAGE)))
        self.assertEqual([r["va"] for r in res], [b["va"] for b in big])
        self.refused(mid, "POST", "/translate/batch",
                     {"items": big + [{"va": "0x0"}]}, 422,
                     "batch_too_large")
        p = self.refused(mid, "POST", "/translate/batch",
                         {"items": [{"va": "0x0"}, {"va": "0x0", "x": 1}]},
                         422, "unknown_field")
        self.assertIn("items[1]", p["detail"])
        self.refused(mid, "POST", "/translate/batch", {"items": {}}, 400,
                     "wrong_type")
        self.refused(mid, "POST", "/translate/batch", {"items": [3]}, 400,
                     "wrong_type")
        self.refused(mid, "POST", "/translate/batch", {}, 422,
                     "missing_field")

    # ---- DMA, __pa, __va ----

    def dma(self, mid, **fields):
        return self.ok("POST", "/v1/machines/%s/dma-check" % mid, fields,
                       status=200)

    def test_dma_check(self):
        mid = "ep-dma"
        self.machine(mid, churn=0)
        self.proc(mid)
        k = self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        d = self.dma(mid, va=k["va"], length=100)
        self.assertEqual(d, {"va": k["va"], "length": 100,
                             "dma_mask_bits": 32, "single_ok": True,
                             "sg_ok": True, "reasons": [],
                             "segments": [{"pa": k["pa"], "length": 100}]})
        # pa above a 24-bit (ISA) mask: bounce buffer.
        d = self.dma(mid, va=k["va"], length=100, dma_mask_bits=24)
        self.assertEqual((d["single_ok"], d["sg_ok"], d["reasons"]),
                         (False, False, ["above_dma_mask"]))
        kd = self.mut(mid, "POST", "/kmalloc", {"size": 100, "gfp": "GFP_DMA"},
                      status=201)
        d = self.dma(mid, va=kd["va"], length=100, dma_mask_bits=24)
        self.assertEqual((d["single_ok"], d["reasons"]), (True, []))
        # Two kmalloc objects side by side: one range, two allocations.
        k2 = self.mut(mid, "POST", "/kmalloc", {"size": 100}, status=201)
        self.assertEqual(H(k2["pa"]), H(k["pa"]) + 128)
        d = self.dma(mid, va=k["va"], length=256)
        self.assertFalse(d["single_ok"])
        self.assertIn("crosses_allocations", d["reasons"])
        # alloc_pages memory is DMA-able in one piece.
        pg = self.mut(mid, "POST", "/pages", {"order": 1}, status=201)
        d = self.dma(mid, va=pg["va"], length=2 * PAGE)
        self.assertEqual((d["single_ok"], d["segments"]),
                         (True, [{"pa": pg["pa"], "length": 2 * PAGE}]))
        # vmalloc: never single-mapped.
        v = self.mut(mid, "POST", "/vmalloc", {"size": 2 * PAGE}, status=201)
        d = self.dma(mid, va=v["va"], length=2 * PAGE)
        self.assertFalse(d["single_ok"])
        self.assertIn("vmalloc_address", d["reasons"])
        self.assertEqual(sum(s["length"] for s in d["segments"]), 2 * PAGE)
        # The kernel image, by either alias.
        for va in ("0xffffffff81000000", hx(PO64 + 16 * MiB)):
            d = self.dma(mid, va=va, length=64)
            self.assertFalse(d["single_ok"])
            self.assertIn("kernel_image", d["reasons"])
        # Unmapped vmalloc space.
        d = self.dma(mid, va=hx(VMALLOC64 + 0x1000000), length=64)
        self.assertEqual((d["single_ok"], d["sg_ok"]), (False, False))
        self.assertIn("unmapped", d["reasons"])
        # The x86_64 kernel stack is vmalloc'd (CONFIG_VMAP_STACK).
        d = self.dma(mid, va=hx(VMALLOC64), length=64)
        self.assertFalse(d["single_ok"])
        self.assertIn("vmalloc_address", d["reasons"])
        # A user buffer, with its pid.
        d = self.dma(mid, va="0x410000", length=64, pid=1)
        self.assertFalse(d["single_ok"])
        self.assertIn("user_address", d["reasons"])
        self.assertEqual(len(d["segments"]), 1)
        for bad in ({"va": k["va"], "length": 0},
                    {"va": k["va"], "length": "2GiB"},
                    {"va": k["va"], "length": 8, "dma_mask_bits": 0},
                    {"va": k["va"], "length": 8, "dma_mask_bits": 65},
                    {"length": 8}, {"va": k["va"]},
                    {"va": k["va"], "length": 8, "mask": 32}):
            self.problem("POST", "/v1/machines/%s/dma-check" % mid, bad,
                         status=422)

    def test_virt_phys(self):
        mid = "ep-pa"
        self.machine(mid, churn=0)
        self.proc(mid)

        def v2p(m, va):
            return self.ok("POST", "/v1/machines/%s/virt-to-phys" % m,
                           {"va": va})

        def p2v(m, pa):
            return self.ok("POST", "/v1/machines/%s/phys-to-virt" % m,
                           {"pa": pa})

        def no(m, path, body, word):
            p = self.problem("POST", "/v1/machines/%s/%s" % (m, path), body,
                             status=422, code="out_of_range")
            self.assertIn(word, p["detail"].lower())
        self.assertEqual(v2p(mid, hx(PO64 + 0x1234567)),
                         {"va": hx(PO64 + 0x1234567), "pa": "0x1234567"})
        self.assertEqual(v2p(mid, "0xffffffff81000010")["pa"], "0x1000010")
        self.assertEqual(p2v(mid, "0x1234567"),
                         {"pa": "0x1234567", "va": hx(PO64 + 0x1234567)})
        self.assertEqual(p2v(mid, hx(GiB - 1))["va"], hx(PO64 + GiB - 1))
        no(mid, "virt-to-phys", {"va": hx(VMALLOC64)}, "vmalloc")
        no(mid, "virt-to-phys", {"va": "0x400000"}, "")
        no(mid, "virt-to-phys", {"va": hx(PO64 + GiB)}, "")
        no(mid, "phys-to-virt", {"pa": hx(GiB)}, "ram")
        self.machine("ep-pa32", arch="i386", memory="2GiB", churn=0)
        self.assertEqual(v2p("ep-pa32", "0xc0001000")["pa"], "0x1000")
        self.assertEqual(p2v("ep-pa32", "0x377fd000")["va"], "0xf77fd000")
        no("ep-pa32", "phys-to-virt", {"pa": "0x377fe000"}, "highmem")
        no("ep-pa32", "phys-to-virt", {"pa": "0x40000000"}, "highmem")
        no("ep-pa32", "virt-to-phys", {"va": "0xf77fe000"}, "")
        no("ep-pa32", "virt-to-phys", {"va": "0xf7ffe000"}, "vmalloc")
        self.problem("POST", "/v1/machines/%s/virt-to-phys" % mid, {},
                     status=422, code="missing_field")

    # ---- conventions: versions, ETag, If-Match, Content-Type ----

    def test_mutating_routes_answer_versions(self):
        """Each mutating route of the table answers its version and ETag
        (checked by mut() throughout); here, one of each in a row."""
        mid = "ep-ver"
        self.machine(mid, churn=0, cpus=2)
        done = set()

        def m(method, path, pattern, body=None, status=200):
            done.add((method, "/v1/machines/{m}" + pattern))
            return self.mut(mid, method, path, body, status)
        m("POST", "/processes", "/processes", {}, 201)
        m("POST", "/processes/1/mmap", "/processes/{pid}/mmap",
          {"length": PAGE}, 201)
        m("POST", "/processes/1/munmap", "/processes/{pid}/munmap",
          {"addr": hx(MMAP_BASE64 - PAGE), "length": PAGE})
        m("POST", "/processes/1/brk", "/processes/{pid}/brk",
          {"increment": PAGE})
        m("POST", "/cpus/1/switch", "/cpus/{n}/switch", {"pid": 1})
        k = m("POST", "/kmalloc", "/kmalloc", {"size": 8}, 201)
        m("POST", "/kfree", "/kfree", {"va": k["va"]})
        v = m("POST", "/vmalloc", "/vmalloc", {"size": PAGE}, 201)
        m("POST", "/vfree", "/vfree", {"va": v["va"]})
        p = m("POST", "/pages", "/pages", {"order": 0}, 201)
        m("POST", "/pages/free", "/pages/free", {"pa": p["pa"]})
        m("DELETE", "/processes/1", "/processes/{pid}", None, 204)
        self.assertEqual(self.state(mid)[1], 12)
        flagged = {(r["method"], r["pattern"]) for r in
                   routes_dump()["routes"] if r["mutates"]}
        self.assertEqual(done - flagged, set())
        # Reads carry no version bump.
        self.ok("GET", "/v1/machines/%s/zones" % mid)
        self.tr(mid, va="0x0")
        self.assertEqual(self.state(mid)[1], 12)

    def test_if_match(self):
        mid = "ep-ifm"
        self.machine(mid, churn=0)
        k = self.mut(mid, "POST", "/kmalloc", {"size": 8}, status=201)
        self.assertEqual(k["version"], 1)
        k = self.mut(mid, "POST", "/kmalloc", {"size": 8}, status=201,
                     headers=['If-Match: "1"'])
        self.assertEqual(k["version"], 2)
        for stale in ('"1"', '"0"', '"3"', '"x"'):
            self.refused(mid, "POST", "/kmalloc", {"size": 8}, 412,
                         "precondition_failed",
                         headers=["If-Match: " + stale])
        self.refused(mid, "DELETE", "/processes/1", status=None,
                     headers=['If-Match: "1"'])
        self.proc(mid)
        self.refused(mid, "DELETE", "/processes/1", status=412,
                     code="precondition_failed", headers=['If-Match: "2"'])
        self.mut(mid, "DELETE", "/processes/1", status=204,
                 headers=['If-Match: "3"'])
        self.mut(mid, "POST", "/kmalloc", {"size": 8}, status=201,
                 headers=['If-Match: *'])
        # A refused mutation under the right If-Match changes nothing.
        self.refused(mid, "POST", "/kfree", {"va": hx(PO64 + 0x5000)}, 409,
                     headers=['If-Match: "5"'])
        self.assertEqual(self.state(mid)[1], 5)

    def test_content_types(self):
        mid = "ep-ct"
        self.machine(mid, churn=0)
        url = self.daemon.url + "/v1/machines/%s/kmalloc" % mid
        # Plain curl -d: application/x-www-form-urlencoded.
        out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", "-d",
                              '{"size": 64}', url], capture_output=True,
                             text=True, check=True).stdout
        body, _, code = out.rpartition("\n")
        self.assertEqual(code, "201", out)
        self.assertEqual(json.loads(body)["cache"], "kmalloc-64")
        for ct in ("text/plain", "application/json",
                   "application/json; charset=utf-8"):
            self.mut(mid, "POST", "/kmalloc", {"size": 64}, status=201,
                     headers=["Content-Type: " + ct])
        for ct in ("application/xml", "multipart/form-data; boundary=x",
                   "image/png"):
            self.refused(mid, "POST", "/kmalloc", {"size": 64}, 415,
                         "unsupported_media_type",
                         headers=["Content-Type: " + ct])
        # Strict JSON, whatever the type.
        self.refused(mid, "POST", "/kmalloc", raw=b'{"size": 64,}',
                     status=400, code="malformed_json")
        self.refused(mid, "POST", "/kmalloc", raw=b'{"size": 64} x',
                     status=400, code="malformed_json")
        self.refused(mid, "POST", "/kmalloc",
                     raw=b'{"size": 64, "size": 8}', status=400,
                     code="duplicate_key")
        self.refused(mid, "POST", "/kmalloc", raw=b'{"size": 9007199254740993}',
                     status=422)

    def test_not_found_and_method(self):
        self.machine("ep-nf", churn=0)
        self.problem("GET", "/v1/machines/ep-nf/nothing", status=404,
                     code="no_such_route")
        self.problem("POST", "/v1/machines/ep-nf/layout", {}, status=405,
                     code="method_not_allowed")
        self.problem("DELETE", "/v1/machines/ep-nf/kmalloc", status=405,
                     code="method_not_allowed")
        self.problem("GET", "/v1/machines/ep-none/layout", status=404,
                     code="not_found")


if __name__ == "__main__":
    vmlab.main()
