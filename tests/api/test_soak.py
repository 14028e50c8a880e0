"""test_soak.py - a random-operation soak on a real vmlabd.

CLIENTS client threads, each on its own keep-alive connection, send seeded
random requests to the machines of MACHINES (every architecture, small and
larger RAM, one or two CPUs): three machines shared between clients and
one of its own for each client. The requests are valid ones of every kind
(processes created and exited, mmap, munmap, brk, kmalloc, kfree, vmalloc,
vfree, pages and their free, switch, translate, batch, dma-check,
virt-to-phys, phys-to-virt, clone and delete) and invalid ones (malformed
JSON, wrong types, sizes, orders and addresses out of range, numbers beyond
2^53, unknown fields, pids and machines, frees of what was never
allocated, double frees, frees with the wrong allocator or order, wrong
methods, a stale If-Match). Every answer must be a 2xx or a 4xx problem
(application/problem+json) that fits docs/openapi.json: never a 5xx, never
a dropped connection. On a machine of its own a client knows the version:
each mutation answered 2xx must be the next one, and a refused mutation is
checked (every other one) to leave version and digest as they were.

Each client keeps a model of what it made on each machine: its processes
and their mappings, its kmalloc objects (with the cache of each), vmalloc
areas and page blocks; the answers of translate, virt-to-phys,
phys-to-virt and dma-check on them are checked against it. The clients
stop together every ROUND steps; then, with nothing in flight, these
invariants are checked through the API on every machine:

  - /frames covers every frame from 0 to memory / 4 KiB exactly once, in
    order; in each zone the free frames equal the zone's free_pages,
    which equal the sum of its free blocks; frames_in_use equals the
    frames neither free nor set aside at boot (reserved, kernel image,
    mem_map), and those set aside never change;
  - the processes listing holds exactly the clients' live processes;
  - the slabs hold exactly the clients' live kmalloc objects, per cache;
  - the version counts the mutations answered 2xx on the machine.

At the end every machine's digest and version are recorded, the daemon is
killed with SIGKILL (so that each machine's log tail is replayed) and
started again, then stopped with SIGTERM and started again: every machine
must come back with the same digest and version, its frames conserved.
Then each client frees everything it made (every free must succeed), and
each machine holds no process and no kmalloc object, and no frame but
those of its boot and the page tables the kernel keeps (SPEC 1.5); a last
SIGKILL and restart must keep that too.

Environment: VMLAB_SOAK_OPS, the random steps in all (default 3000; a
step is one request or two); VMLAB_SOAK_SEED, the seed (default
random; each run prints the one it used, and that seed replays the
requests of each client, though not how the clients interleave).
"""

import http.client
import json
import os
import random
import sys
import threading
import time
import unittest

import vmlab

OPS = max(1, int(os.environ.get("VMLAB_SOAK_OPS", "3000") or 3000))
CLIENTS = 4
ROUND = 200                 # steps between invariant checks, in all
PAGE = 4096
# Set aside at boot: never handed out, never freed.
BOOT_KINDS = ("reserved", "kernel_image", "mem_map")

# id, creation fields, the clients that use it.
MACHINES = [
    ("soak-i386", {"arch": "i386", "memory": "64MiB", "cpus": 2,
                   "churn": 256, "seed": "11"}, (0, 1)),
    ("soak-x64", {"arch": "x86_64", "memory": "128MiB", "cpus": 2,
                  "seed": "12"}, (2, 3)),
    ("soak-pae", {"arch": "i386-pae", "memory": "96MiB", "churn": 64,
                  "seed": "13"}, (0, 1, 2, 3)),
    ("soak-la57", {"arch": "x86_64-la57", "memory": "64MiB",
                   "seed": "14"}, (0,)),
    ("soak-high", {"arch": "i386", "memory": "1100MiB", "churn": 128,
                   "seed": "15"}, (1,)),
    ("soak-x64b", {"arch": "x86_64", "memory": "256MiB", "cpus": 2,
                   "churn": 512, "seed": "16"}, (2,)),
    ("soak-pae2", {"arch": "i386-pae", "memory": "48MiB", "cpus": 2,
                   "seed": "17", "vmsplit": "2G/2G"}, (3,)),
]

MUTATIONS = ("/processes", "/mmap", "/munmap", "/brk", "/kmalloc", "/kfree",
             "/vmalloc", "/vfree", "/pages", "/pages/free", "/switch")


class Raw(bytes):
    """A body sent as these exact bytes."""


def is_mutation(method, path):
    if method == "DELETE":
        return "/processes/" in path
    return method == "POST" and path.endswith(MUTATIONS)


def hexa(v):
    return "0x%x" % v


def num(s):
    return int(s, 16) if isinstance(s, str) else s


class Conn:
    """A keep-alive connection; every answer is checked: 2xx, or a 4xx
    problem; and it must fit docs/openapi.json."""

    # Requests sent on every connection, in all.
    total = 0
    total_lock = threading.Lock()

    def __init__(self, port):
        self.port = port
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def send(self, method, path, body=None, headers=None, validate=True):
        if isinstance(body, Raw):
            data = bytes(body)
        elif body is not None:
            data = json.dumps(body).encode()
        else:
            data = None
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            self.c.request(method, path, body=data, headers=hdrs)
            resp = self.c.getresponse()
            payload = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.c.close()
            raise AssertionError("%s %s %r: no answer (%r)" % (
                method, path, data, e))
        r = vmlab.Response(resp.status,
                           {k.lower(): v for k, v in resp.getheaders()},
                           payload.decode("utf-8", "replace"))
        with Conn.total_lock:
            Conn.total += 1
        where = "%s %s %r -> %r" % (method, path, data, r)
        if not (200 <= r.status < 300 or 400 <= r.status < 500):
            raise AssertionError("neither 2xx nor 4xx: " + where)
        if r.status >= 400:
            if r.headers.get("content-type") != "application/problem+json":
                raise AssertionError("a refusal not a problem: " + where)
            if not r.json or r.json.get("status") != r.status or \
                    not r.json.get("code"):
                raise AssertionError("a problem without its status and "
                                     "code: " + where)
        err = validate and vmlab.check_response(method, path, r)
        if err:
            raise AssertionError("outside docs/openapi.json: " + err)
        return r

    def ok(self, method, path, body=None, headers=None, validate=True):
        r = self.send(method, path, body, headers, validate)
        if not 200 <= r.status < 300:
            raise AssertionError("%s %s %r -> %r" % (method, path, body, r))
        return r

    def close(self):
        self.c.close()


def version_of(r):
    if r.json and "version" in r.json:
        return r.json["version"]
    return int(r.headers["etag"].strip('"'))


class Proc:
    def __init__(self, a):
        self.pid = a["pid"]
        self.name = a["name"]
        self.brk_start = num(a["brk_start"])
        self.brk = num(a["brk"])
        self.regions = [(num(g["start"]), num(g["end"]))
                        for g in a["regions"]]
        self.maps = []          # (start, end) of this client's mmaps


class Model:
    """What one client made on one machine."""

    def __init__(self):
        self.procs = {}         # pid -> Proc
        self.exited = []        # pids (never reused)
        self.kmalloc = {}       # va -> (pa, size, cache)
        self.vmalloc = {}       # va -> (frames, size)
        self.pages = {}         # pa -> (order, va or None)
        self.freed = []         # ("kfree"|"vfree"|"pages", address, order)
        self.mutations = 0      # answered 2xx


class Machine:
    def __init__(self, mid, cfg, users):
        self.id = mid
        self.cfg = cfg
        self.users = users
        self.base = "/v1/machines/" + mid
        self.cpus = cfg.get("cpus", 1)
        self.models = {c: Model() for c in users}
        self.info = None        # the answer to its creation
        self.layout = None
        self.boot = None        # frame counts by kind at boot
        self.boot_pfns = []     # frames owned by "boot"
        self.version = 0        # with one user: what it must be
        self.state = None       # (version, digest) known, one user only

    @property
    def exclusive(self):
        return len(self.users) == 1


class Client:
    """One thread's requests: seeded, on one connection."""

    def __init__(self, test, cid, port, machines, seed):
        self.t = test
        self.cid = cid
        self.conn = Conn(port)
        self.machines = [m for m in machines if cid in m.users]
        self.rng = random.Random(seed * 1000 + cid)
        self.counts = {"valid": 0, "invalid": 0, "2xx": 0, "4xx": 0}
        self.nprocs = 0
        self.clone = None       # the id of this client's live clone
        self.nclones = 0

    # ---- requests ----

    def send(self, m, method, path, body=None, headers=None, valid=True):
        """A request about machine m: path is below m's base unless it
        starts with /v1/. Counts the mutations of m answered 2xx; on a
        machine of its own, checks every version and (one time in two)
        that a refused mutation changed nothing."""
        full = path if path.startswith("/v1/") else m.base + path
        mut = m is not None and is_mutation(method, full) and \
            full.startswith(m.base + "/")
        check = (mut and not valid and m.exclusive and
                 self.rng.random() < 0.5)
        if check and m.state is None:
            g = self.conn.ok("GET", m.base).json
            m.state = (g["version"], g["digest"])
        r = self.conn.send(method, full, body, headers)
        self.counts["valid" if valid else "invalid"] += 1
        self.counts["2xx" if r.status < 300 else "4xx"] += 1
        if mut and r.status < 300:
            m.models[self.cid].mutations += 1
            m.state = None
            if m.exclusive:
                m.version += 1
                self.t.assertEqual(version_of(r), m.version,
                                   "%s %s: version" % (method, full))
        if check and r.status >= 400:
            g = self.conn.ok("GET", m.base).json
            self.t.assertEqual((g["version"], g["digest"]), m.state,
                               "%s %s %r -> %r changed the machine" % (
                                   method, full, body, r))
        return r

    def valid(self, m, method, path, body=None, statuses=None,
              headers=None):
        """A valid request: 2xx, or a refusal in statuses (the state may
        forbid it: out of memory, a busy task)."""
        r = self.send(m, method, path, body, headers)
        if r.status >= 300:
            self.t.assertIn(r.status, statuses or (),
                            "%s %s %r -> %r" % (method, path, body, r))
            return None
        return r.json if r.json is not None else {}

    def invalid(self, m, method, path, body=None, status=None,
                headers=None):
        r = self.send(m, method, path, body, headers, valid=False)
        self.t.assertTrue(400 <= r.status < 500, "%s %s %r -> %r" % (
            method, path, body, r))
        if status is not None:
            self.t.assertEqual(r.status, status, "%s %s %r -> %r" % (
                method, path, body, r))
        return r

    # ---- helpers ----

    def pick(self, d):
        return self.rng.choice(sorted(d)) if d else None

    def user_va(self, md):
        """An address in one of this client's processes: (pid, va)."""
        pid = self.pick(md.procs)
        if pid is None:
            return None, None
        p = md.procs[pid]
        s, e = self.rng.choice(p.regions + p.maps)
        return pid, s + self.rng.randrange(0, e - s)

    def gfp(self):
        return self.rng.choice(["GFP_KERNEL"] * 6 + [
            "GFP_ATOMIC", "GFP_DMA", "GFP_KERNEL|__GFP_ZERO", "GFP_DMA32"])

    def ksize(self):
        x = self.rng.random()
        if x < 0.05:
            return 0
        if x < 0.75:
            return self.rng.randrange(1, 1025)
        if x < 0.93:
            return self.rng.randrange(1025, 8193)
        return self.rng.randrange(8193, 128 * 1024)

    # ---- valid operations ----

    def op_create(self, m, md):
        if len(md.procs) >= 4:
            return self.op_exit(m, md)
        self.nprocs += 1
        body = {"name": "c%dp%d" % (self.cid, self.nprocs),
                "populate": self.rng.random() < 0.7}
        if self.rng.random() < 0.3:
            body["stack"] = "%dKiB" % self.rng.choice([16, 64, 256])
            body["heap"] = self.rng.choice([0, 4096, "8KiB"])
        a = self.valid(m, "POST", "/processes", body, (409,))
        if a:
            md.procs[a["pid"]] = Proc(a)

    def op_exit(self, m, md):
        pid = self.pick(md.procs)
        if pid is None:
            return self.op_create(m, md)
        self.valid(m, "DELETE", "/processes/%d" % pid)
        del md.procs[pid]
        md.exited.append(pid)

    def op_mmap(self, m, md):
        pid = self.pick(md.procs)
        if pid is None:
            return self.op_create(m, md)
        body = {"length": PAGE * self.rng.randrange(1, 17),
                "prot": self.rng.choice(["rw-", "r--", "r-x", "rwx"]),
                "populate": self.rng.random() < 0.5}
        a = self.valid(m, "POST", "/processes/%d/mmap" % pid, body, (409,))
        if a:
            md.procs[pid].maps.append((num(a["start"]), num(a["end"])))

    def op_munmap(self, m, md):
        pid = self.pick(md.procs)
        if pid is None or not md.procs[pid].maps:
            return self.op_mmap(m, md)
        p = md.procs[pid]
        s, e = p.maps.pop(self.rng.randrange(len(p.maps)))
        if e - s > PAGE and self.rng.random() < 0.5:
            # The first page only; the rest stays mapped.
            p.maps.append((s + PAGE, e))
            e = s + PAGE
        self.valid(m, "POST", "/processes/%d/munmap" % pid,
                   {"addr": hexa(s), "length": e - s})

    def op_brk(self, m, md):
        pid = self.pick(md.procs)
        if pid is None:
            return self.op_create(m, md)
        p = md.procs[pid]
        down = (p.brk - p.brk_start) // PAGE
        inc = PAGE * self.rng.randrange(-down, 5)
        a = self.valid(m, "POST", "/processes/%d/brk" % pid,
                       {"increment": inc}, (409,))
        if a:
            p.brk = num(a["brk"])

    def op_kmalloc(self, m, md):
        size = self.ksize()
        hdrs = None
        if m.exclusive and self.rng.random() < 0.2:
            hdrs = {"If-Match": '"%d"' % m.version}
        a = self.valid(m, "POST", "/kmalloc",
                       {"size": size, "gfp": self.gfp()}, (409,), hdrs)
        if a and a["pa"] is not None:
            self.t.assertEqual(num(a["va"]) - num(a["pa"]),
                               num(m.layout["page_offset"]), a)
            self.t.assertNotIn(num(a["va"]), md.kmalloc)
            md.kmalloc[num(a["va"])] = (num(a["pa"]), size, a["cache"])

    def op_kfree(self, m, md):
        va = self.pick(md.kmalloc)
        if va is None or self.rng.random() < 0.03:
            # ZERO_SIZE_PTR and NULL: no-ops that succeed.
            self.valid(m, "POST", "/kfree",
                       {"va": self.rng.choice(["0x10", "0x0"])})
            return
        self.valid(m, "POST", "/kfree", {"va": hexa(va)})
        del md.kmalloc[va]
        md.freed.append(("kfree", va, 0))

    def op_vmalloc(self, m, md):
        size = self.rng.randrange(1, 16 * PAGE)
        a = self.valid(m, "POST", "/vmalloc",
                       {"size": size, "guard": self.rng.random() < 0.8},
                       (409,))
        if a:
            self.t.assertEqual(len(a["frames"]), -(-size // PAGE), a)
            md.vmalloc[num(a["va"])] = ([num(f) for f in a["frames"]],
                                        a["size"])

    def op_vfree(self, m, md):
        va = self.pick(md.vmalloc)
        if va is None:
            return self.op_vmalloc(m, md)
        self.valid(m, "POST", "/vfree", {"va": hexa(va)})
        del md.vmalloc[va]
        md.freed.append(("vfree", va, 0))

    def op_pages(self, m, md):
        order = self.rng.choice([0, 0, 0, 1, 1, 2, 3, 5])
        gfp = self.rng.choice(["GFP_KERNEL", "GFP_KERNEL", "GFP_DMA",
                               "GFP_HIGHUSER", "GFP_DMA32"])
        a = self.valid(m, "POST", "/pages", {"order": order, "gfp": gfp},
                       (409,))
        if a:
            self.t.assertEqual(a["order"], order)
            va = num(a["va"]) if a["va"] is not None else None
            md.pages[num(a["pa"])] = (order, va)

    def op_pages_free(self, m, md):
        pa = self.pick(md.pages)
        if pa is None:
            return self.op_pages(m, md)
        order = md.pages.pop(pa)[0]
        self.valid(m, "POST", "/pages/free", {"pa": hexa(pa),
                                              "order": order})
        md.freed.append(("pages", pa, order))

    def op_switch(self, m, md):
        pid = self.rng.choice(sorted(md.procs) + [0])
        cpu = self.rng.randrange(m.cpus)
        # Another CPU may run the task (409).
        a = self.valid(m, "POST", "/cpus/%d/switch" % cpu, {"pid": pid},
                       (409,))
        if a:
            self.t.assertEqual(a["next_pid"], pid)

    def kernel_va(self, md):
        """A kernel address this client owns and its physical address
        (None where the model cannot tell, e.g. size 0)."""
        kinds = [k for k in ("kmalloc", "vmalloc", "pages")
                 if getattr(md, k)]
        if not kinds:
            return None, None
        k = self.rng.choice(kinds)
        if k == "kmalloc":
            va = self.pick(md.kmalloc)
            pa, size, _ = md.kmalloc[va]
            off = self.rng.randrange(0, max(size, 1))
            return va + off, pa + off
        if k == "vmalloc":
            va = self.pick(md.vmalloc)
            frames = md.vmalloc[va][0]
            i = self.rng.randrange(len(frames))
            off = self.rng.randrange(PAGE)
            return va + i * PAGE + off, frames[i] + off
        pa = self.pick(md.pages)
        order, va = md.pages[pa]
        if va is None:
            return None, None
        off = self.rng.randrange(PAGE << order)
        return va + off, pa + off

    def translate_item(self, md):
        """(request, expected pa or None)."""
        if self.rng.random() < 0.5:
            va, pa = self.kernel_va(md)
            if va is not None:
                return ({"va": hexa(va), "mode": "kernel",
                         "access": self.rng.choice(["read", "write"])}, pa)
        pid, va = self.user_va(md)
        if pid is None:
            return ({"va": hexa(self.rng.getrandbits(32))}, None)
        return ({"va": hexa(va), "pid": pid,
                 "access": self.rng.choice(["read", "write", "exec"])},
                None)

    def check_translation(self, req, res, pa):
        self.t.assertEqual(res["va"], req["va"])
        if pa is not None:
            self.t.assertTrue(res["ok"], (req, res))
            self.t.assertEqual(num(res["pa"]), pa, (req, res))

    def op_translate(self, m, md):
        req, pa = self.translate_item(md)
        a = self.valid(m, "POST", "/translate", req)
        self.check_translation(req, a, pa)

    def op_batch(self, m, md):
        items = [self.translate_item(md)
                 for _ in range(self.rng.randrange(1, 25))]
        a = self.valid(m, "POST", "/translate/batch",
                       {"items": [i[0] for i in items]})
        self.t.assertEqual(len(a["results"]), len(items))
        for (req, pa), res in zip(items, a["results"]):
            self.check_translation(req, res, pa)

    def op_dma(self, m, md):
        if md.kmalloc and self.rng.random() < 0.6:
            va = self.pick(md.kmalloc)
            pa, size, cache = md.kmalloc[va]
            a = self.valid(m, "POST", "/dma-check",
                           {"va": hexa(va), "length": max(size, 1)})
            # kmalloc memory is direct-mapped and contiguous: under a
            # 32-bit mask (every machine here has < 4 GiB) it maps as is.
            self.t.assertTrue(a["single_ok"], (va, size, a))
            self.t.assertEqual(num(a["segments"][0]["pa"]), pa, a)
        elif md.vmalloc:
            va = self.pick(md.vmalloc)
            frames, size = md.vmalloc[va]
            a = self.valid(m, "POST", "/dma-check",
                           {"va": hexa(va), "length": size,
                            "dma_mask_bits": self.rng.choice([24, 32,
                                                              64])})
            self.t.assertFalse(a["single_ok"], a)
            self.t.assertIn("vmalloc_address", a["reasons"], a)
        else:
            self.op_kmalloc(m, md)

    def op_v2p(self, m, md):
        va = self.pick(md.kmalloc)
        if va is None:
            return self.op_kmalloc(m, md)
        a = self.valid(m, "POST", "/virt-to-phys", {"va": hexa(va)})
        self.t.assertEqual(num(a["pa"]), md.kmalloc[va][0], a)

    def op_p2v(self, m, md):
        pa = self.pick(md.pages)
        if pa is None:
            return self.op_pages(m, md)
        va = md.pages[pa][1]
        if va is None:
            # Highmem: no kernel logical address.
            self.invalid(m, "POST", "/phys-to-virt", {"pa": hexa(pa)}, 422)
        else:
            a = self.valid(m, "POST", "/phys-to-virt", {"pa": hexa(pa)})
            self.t.assertEqual(num(a["va"]), va, a)

    def op_read(self, m, md):
        path = self.rng.choice(["", "/zones", "/cpus", "/slabs", "/layout",
                                "/history?page_size=5"])
        if md.procs and self.rng.random() < 0.4:
            pid = self.pick(md.procs)
            path = self.rng.choice(["/processes/%d" % pid,
                                    "/processes/%d/pagetable" % pid])
        self.valid(m, "GET", path)

    def op_clone(self, m, md):
        if self.clone is not None:
            return self.op_delete(m, md)
        self.nclones += 1
        cid = "soak-c%d-%d" % (self.cid, self.nclones)
        before = self.conn.ok("GET", m.base).json if m.exclusive else None
        a = self.valid(None, "POST", m.base + "/clone", {"id": cid})
        self.t.assertEqual(a["id"], cid)
        if before is not None:
            self.t.assertEqual((a["version"], a["digest"]),
                               (before["version"], before["digest"]))
        self.clone = cid

    def op_delete(self, m, md):
        if self.clone is None:
            return self.op_clone(m, md)
        self.valid(None, "DELETE", "/v1/machines/" + self.clone)
        self.invalid(None, "GET", "/v1/machines/" + self.clone, status=404)
        self.clone = None

    VALID = [("create", 4), ("exit", 2), ("mmap", 4), ("munmap", 3),
             ("brk", 3), ("kmalloc", 10), ("kfree", 8), ("vmalloc", 4),
             ("vfree", 3), ("pages", 4), ("pages_free", 4), ("switch", 3),
             ("translate", 4), ("batch", 2), ("dma", 2), ("v2p", 2),
             ("p2v", 2), ("read", 3), ("clone", 1), ("delete", 1)]

    # ---- invalid requests ----

    def bad(self, m, md):
        """One invalid request: (method, path, body, expected status or
        None, headers)."""
        r = self.rng
        pid = self.pick(md.procs)
        ppath = "/processes/%d" % (pid if pid is not None else 999999)
        cases = [
            # Malformed JSON and the wrong JSON types.
            ("POST", "/kmalloc", Raw(b'{"size": 8'), 400),
            ("POST", "/kmalloc", Raw(b'{"size": 8}}'), 400),
            ("POST", "/vmalloc", Raw(b'\xff\xfe\x00garbage'), 400),
            ("POST", "/pages", Raw(b'{"order": 1, "order": 2}'), 400),
            ("POST", "/kmalloc", Raw(b'[8]'), None),
            ("POST", "/kfree", Raw(b'"0x10"'), None),
            ("POST", "/kmalloc", {"size": True}, 400),
            ("POST", "/pages", {"order": [1]}, 400),
            ("POST", "/processes", {"name": 5}, 400),
            ("POST", ppath + "/mmap", {"length": {}}, None),
            ("POST", "/cpus/0/switch", {"pid": "one"}, None),
            ("POST", ppath + "/brk", {"increment": None}, None),
            ("POST", "/kfree", {"va": 1.5}, None),
            # Out of range.
            ("POST", "/kmalloc", {"size": "5MiB"}, 422),
            ("POST", "/kmalloc", {"size": -1}, 422),
            ("POST", "/pages", {"order": 11}, 422),
            ("POST", "/pages", {"order": -1}, 422),
            ("POST", "/vmalloc", {"size": "1TiB"}, None),
            ("POST", "/vmalloc", {"size": 0}, None),
            ("POST", ppath + "/mmap", {"length": 0}, None),
            ("POST", ppath + "/mmap", {"length": 4096, "fixed": True,
                                       "addr": "0xfffffffffffff000"}, None),
            ("POST", ppath + "/munmap", {"addr": "0x1001", "length": 4096},
             None),
            ("POST", ppath + "/brk", {"increment": -(1 << 40)}, None),
            ("POST", "/cpus/%d/switch" % (m.cpus + r.randrange(64)),
             {"pid": 0}, None),
            ("POST", "/translate", {"va": "0x10000000000000000"}, 422),
            ("POST", "/dma-check", {"va": m.layout["page_offset"],
                                    "length": 0}, 422),
            ("POST", "/dma-check", {"va": m.layout["page_offset"],
                                    "length": 4096, "dma_mask_bits": 65},
             422),
            ("POST", "/kmalloc", {"size": 8,
                                  "gfp": "GFP_DMA|__GFP_HIGHMEM"}, 422),
            ("POST", "/kmalloc", {"size": 8, "gfp": "GFP_BOGUS"}, 422),
            ("POST", "/kmalloc", {"size": 8, "flags": 1}, 422),
            ("POST", "/virt-to-phys", {"va": m.layout["vmalloc_start"]},
             422),
            ("POST", "/phys-to-virt", {"pa": hexa(m.info["memory"] * 2)},
             422),
            # Numbers beyond 2^53 and beyond 2^64.
            ("POST", "/kmalloc", Raw(b'{"size": 1e300}'), None),
            ("POST", "/kmalloc",
             Raw(b'{"size": 123456789012345678901234567890}'), 422),
            ("POST", "/pages", Raw(b'{"order": 9007199254740993}'), 422),
            ("POST", "/cpus/0/switch", {"pid": 4294967297}, None),
            ("POST", "/kmalloc", {"size": "18446744073709551616"}, 422),
            # Unknown pids and machines.
            ("POST", "/processes/%d/mmap" % (10 ** 6 + r.randrange(100)),
             {"length": 4096}, 404),
            ("DELETE", "/processes/%d" % (10 ** 6 + r.randrange(100)),
             None, 404),
            ("POST", "/cpus/0/switch", {"pid": 10 ** 6}, None),
            ("POST", "/translate", {"va": "0x1000", "pid": 10 ** 6}, None),
            ("POST", "/v1/machines/soak-nosuch/kmalloc", {"size": 8}, 404),
            ("DELETE", "/v1/machines/soak-nosuch", None, 404),
            # Frees of what was never allocated, or of the wrong kind.
            ("POST", "/kfree", {"va": hexa(num(m.layout["page_offset"]) +
                                           0x1000)}, 409),
            ("POST", "/pages/free", {"pa": "0x1000", "order": 0}, 409),
            ("POST", "/pages/free",
             {"pa": hexa(r.choice(m.boot_pfns) * PAGE), "order": 0}, 409),
            # Wrong methods.
            ("GET", "/kmalloc", None, 405),
            ("PUT", "", {"id": m.id}, 405),
            ("DELETE", "/zones", None, 405),
            ("PATCH", "/processes", {"name": "x"}, 405),
            ("POST", "/frames", {}, 405),
            # Machines that cannot be made.
            ("POST", "/v1/machines", {"arch": "sparc"}, 422),
            ("POST", "/v1/machines", {"memory": 1}, 422),
            ("POST", "/v1/machines", {"arch": "i386", "kaslr": True}, 422),
            ("POST", "/v1/machines", {"id": "Bad_Id"}, 422),
            ("POST", "/v1/machines", {"id": m.id}, 409),
            ("POST", "/clone", {"id": m.id}, 409),
        ]
        if md.exited:
            cases.append(("DELETE", "/processes/%d" % r.choice(md.exited),
                          None, 404))
        if md.kmalloc:
            va = self.pick(md.kmalloc)
            cases += [("POST", "/kfree", {"va": hexa(va + 1)}, 409),
                      ("POST", "/vfree", {"va": hexa(va)}, None)]
        if md.vmalloc:
            va = self.pick(md.vmalloc)
            # Inside the area only when it has a second page: after a
            # one-page area without a guard page the next area starts.
            if len(md.vmalloc[va][0]) > 1:
                cases.append(("POST", "/vfree", {"va": hexa(va + PAGE)},
                              409))
            cases += [("POST", "/kfree", {"va": hexa(va)}, None),
                      ("POST", "/virt-to-phys", {"va": hexa(va)}, 422)]
        if md.pages:
            pa = self.pick(md.pages)
            order = md.pages[pa][0]
            cases.append(("POST", "/pages/free",
                          {"pa": hexa(pa), "order": order + 1}, 409))
        if m.exclusive:
            cases.append(("POST", "/kmalloc", {"size": 64},
                          412, {"If-Match": '"%d"' % (m.version + 7)}))
            live = set(md.kmalloc) | set(md.vmalloc) | set(md.pages)
            live |= {k[0] for k in md.kmalloc.values()}
            live |= {p[1] for p in md.pages.values()}
            for kind, addr, order in md.freed[-8:]:
                # Double frees: this client alone allocates here, so an
                # address it freed and does not hold is no allocation.
                if addr in live:
                    continue
                if kind == "kfree":
                    cases.append(("POST", "/kfree", {"va": hexa(addr)}, 409))
                elif kind == "vfree":
                    cases.append(("POST", "/vfree", {"va": hexa(addr)}, 409))
                else:
                    cases.append(("POST", "/pages/free",
                                  {"pa": hexa(addr), "order": order}, 409))
        c = r.choice(cases)
        method, path, body, status = c[:4]
        return method, path, body, status, (c[4] if len(c) > 4 else None)

    def op_invalid(self, m, md):
        method, path, body, status, hdrs = self.bad(m, md)
        self.invalid(m, method, path, body, status, hdrs)

    # ---- running ----

    def step(self):
        m = self.rng.choice(self.machines)
        md = m.models[self.cid]
        if self.rng.random() < 0.25:
            return self.op_invalid(m, md)
        names, weights = zip(*self.VALID)
        name = self.rng.choices(names, weights)[0]
        getattr(self, "op_" + name)(m, md)

    def run(self, n, errors):
        try:
            for _ in range(n):
                self.step()
        except BaseException as e:
            errors.append((self.cid, e, sys.exc_info()))

    def free_all(self):
        """Frees everything this client made; every free must succeed."""
        for m in self.machines:
            md = m.models[self.cid]
            for va in sorted(md.kmalloc):
                self.valid(m, "POST", "/kfree", {"va": hexa(va)})
            for va in sorted(md.vmalloc):
                self.valid(m, "POST", "/vfree", {"va": hexa(va)})
            for pa in sorted(md.pages):
                self.valid(m, "POST", "/pages/free",
                           {"pa": hexa(pa), "order": md.pages[pa][0]})
            for pid in sorted(md.procs):
                self.valid(m, "DELETE", "/processes/%d" % pid)
            md.kmalloc.clear()
            md.vmalloc.clear()
            md.pages.clear()
            md.procs.clear()
        if self.clone is not None:
            self.conn.ok("DELETE", "/v1/machines/" + self.clone)
            self.clone = None


class Soak(unittest.TestCase):

    def setUp(self):
        env = os.environ.get("VMLAB_SOAK_SEED")
        self.seed = int(env) if env else random.SystemRandom().randrange(
            1 << 32)
        self.rng = random.Random(self.seed)
        self.validated = set()
        print("soak: seed %d (VMLAB_SOAK_SEED=%d replays it), %d steps"
              % (self.seed, self.seed, OPS), flush=True)
        self.daemons = []
        self.first = self.start()

    def tearDown(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()

    def start(self, *args):
        d = vmlab.Daemon(*args).start()
        self.daemons.append(d)
        return d

    def stop(self, d):
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def kill(self, d):
        d.proc.kill()
        d.proc.wait()
        self.assertIsNone(vmlab.SANITIZER.search(d.stderr()), d.stderr())

    # ---- invariants ----

    def frames(self, c, m):
        """The whole /frames listing of machine m, page by page. Checking
        a listing of a thousand ranges against docs/openapi.json takes a
        quarter of a second: the first of each machine is checked."""
        ranges, start = [], 0
        validate = m.id not in self.validated
        self.validated.add(m.id)
        while True:
            a = c.ok("GET", "%s/frames?start_pfn=%d" % (m.base, start),
                     validate=validate).json
            ranges += a["ranges"]
            if a["next_start_pfn"] is None:
                return ranges
            self.assertGreater(a["next_start_pfn"], start)
            start = a["next_start_pfn"]

    def conservation(self, c, m):
        """Frame conservation on machine m; its frame counts by kind."""
        info = c.ok("GET", m.base).json
        ranges = self.frames(c, m)
        nframes = info["memory"] // PAGE
        at = 0
        kinds = {}
        free = []
        for g in ranges:
            self.assertEqual(g["start_pfn"], at, (m.id, g))
            self.assertGreater(g["end_pfn"], g["start_pfn"], (m.id, g))
            at = g["end_pfn"]
            k = g["owner"]["kind"]
            kinds[k] = kinds.get(k, 0) + at - g["start_pfn"]
            if k == "free":
                free.append((g["start_pfn"], at))
        self.assertEqual(at, nframes, m.id)
        zones = c.ok("GET", m.base + "/zones").json["zones"]
        for z in zones:
            n = sum(min(e, z["end_pfn"]) - max(s, z["start_pfn"])
                    for s, e in free
                    if s < z["end_pfn"] and e > z["start_pfn"])
            self.assertEqual(n, z["free_pages"], (m.id, z["name"]))
            self.assertEqual(sum(b << o for o, b in
                                 enumerate(z["free_blocks"])),
                             z["free_pages"], (m.id, z))
        self.assertEqual(sum(z["free_pages"] for z in zones),
                         kinds.get("free", 0), m.id)
        in_use = sum(n for k, n in kinds.items()
                     if k != "free" and k not in BOOT_KINDS)
        self.assertEqual(info["frames_in_use"], in_use, (m.id, kinds))
        if m.boot is not None:
            for k in BOOT_KINDS:
                self.assertEqual(kinds.get(k, 0), m.boot.get(k, 0),
                                 (m.id, k))
        return info, kinds, ranges

    def check_machine(self, c, m):
        info, kinds, _ = self.conservation(c, m)
        # The version counts the mutations answered 2xx.
        self.assertEqual(info["version"],
                         sum(md.mutations for md in m.models.values()),
                         m.id)
        # The processes are the clients' live ones.
        want = {}
        for md in m.models.values():
            want.update({pid: p.name for pid, p in md.procs.items()})
        got, token = {}, None
        while True:
            path = m.base + "/processes?page_size=%d" % self.rng.choice(
                [2, 7, 100])
            if token:
                path += "&page_token=" + token
            a = c.ok("GET", path).json
            got.update({p["pid"]: p["name"] for p in a["items"]})
            token = a["next_page_token"]
            if not token:
                break
        self.assertEqual(got, want, m.id)
        self.assertEqual(info["processes"], len(want), m.id)
        # The slabs hold the clients' live objects.
        want = {}
        for md in m.models.values():
            for _, _, cache in md.kmalloc.values():
                if cache and cache != "large":
                    want[cache] = want.get(cache, 0) + 1
        caches = c.ok("GET", m.base + "/slabs").json["caches"]
        got = {s["name"]: s["active_objects"] for s in caches
               if s["active_objects"]}
        self.assertEqual(got, want, m.id)
        return kinds

    def digests(self, c):
        """Every machine's (version, digest), from the listing."""
        out, token = {}, None
        while True:
            path = "/v1/machines?page_size=3"
            if token:
                path += "&page_token=" + token
            a = c.ok("GET", path).json
            for x in a["items"]:
                out[x["id"]] = (x["version"], x["digest"])
            token = a["next_page_token"]
            if not token:
                return out

    def restart(self, d, machines, how):
        """Stops d (SIGTERM or SIGKILL) and starts a daemon on its
        database: every machine must be back with its digest and version,
        and its frames conserved."""
        c = Conn(d.port)
        before = self.digests(c)
        c.close()
        if how == "SIGKILL":
            self.kill(d)
        else:
            self.stop(d)
        d = self.start("--db", self.first.db)
        c = Conn(d.port)
        self.assertEqual(self.digests(c), before, "after " + how)
        for m in machines:
            self.conservation(c, m)
        c.close()
        return d

    # ---- the soak ----

    def test_soak(self):
        t0 = time.monotonic()
        c = Conn(self.first.port)
        machines = []
        for mid, cfg, users in MACHINES:
            m = Machine(mid, cfg, users)
            m.info = c.ok("POST", "/v1/machines", dict(cfg, id=mid)).json
            m.layout = c.ok("GET", m.base + "/layout").json
            _, m.boot, ranges = self.conservation(c, m)
            m.boot_pfns = [p for g in ranges if g["owner"]["kind"] == "boot"
                           for p in range(g["start_pfn"], g["end_pfn"])][:64]
            machines.append(m)
        clients = [Client(self, i, self.first.port, machines, self.seed)
                   for i in range(CLIENTS)]
        done, rounds = 0, 0
        while done < OPS:
            n = min(ROUND, OPS - done)
            errors, threads = [], []
            for i, cl in enumerate(clients):
                share = n // CLIENTS + (1 if i < n % CLIENTS else 0)
                th = threading.Thread(target=cl.run, args=(share, errors))
                th.start()
                threads.append(th)
            for th in threads:
                th.join()
            if errors:
                cid, e, info = errors[0]
                raise AssertionError("client %d (seed %d): %s" % (
                    cid, self.seed, e)).with_traceback(info[2])
            done += n
            rounds += 1
            for m in machines:
                self.check_machine(c, m)
        t_ops = time.monotonic() - t0

        # Restarts: a kill (each machine's log tail replayed), then a
        # clean stop (every machine snapshot).
        c.close()
        for cl in clients:
            cl.conn.close()
        d = self.restart(self.first, machines, "SIGKILL")
        d = self.restart(d, machines, "SIGTERM")

        # What each client made is still there to free, exactly.
        c = Conn(d.port)
        for cl in clients:
            cl.conn = Conn(d.port)
            cl.free_all()
            cl.conn.close()
        for m in machines:
            kinds = self.check_machine(c, m)
            left = {k: n for k, n in kinds.items()
                    if k not in BOOT_KINDS + ("free", "page_table")}
            self.assertEqual(left, {"boot": m.boot["boot"]}, m.id)
            pt = kinds.get("page_table", 0) - m.boot.get("page_table", 0)
            self.assertGreaterEqual(pt, 0, m.id)
        tables = [g for m in machines for g in self.frames(c, m)
                  if g["owner"]["kind"] == "page_table"]
        self.assertTrue(all(g["owner"]["pid"] == 0 for g in tables),
                        [g for g in tables if g["owner"]["pid"] != 0][:5])
        c.close()
        # The frees are durable too.
        d = self.restart(d, machines, "SIGKILL")
        self.stop(d)
        counts = {k: sum(cl.counts[k] for cl in clients)
                  for k in clients[0].counts}
        print("soak: %d steps, %d random requests (%d valid, %d invalid; "
              "%d 2xx, %d 4xx) by %d clients on %d machines, invariants "
              "checked %d times, in %.1f s; %d requests in all, restarts "
              "and frees included, in %.1f s" % (
                  OPS, counts["valid"] + counts["invalid"],
                  counts["valid"], counts["invalid"], counts["2xx"],
                  counts["4xx"], CLIENTS, len(machines), rounds, t_ops,
                  Conn.total, time.monotonic() - t0), flush=True)


if __name__ == "__main__":
    vmlab.main()
