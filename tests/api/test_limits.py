"""test_limits.py - every limit of docs/limits.md, driven to its edge.

Each test drives one limit through the API of a real daemon until it is
refused, checks the refusal's status and problem code (and, for a
machine, that its version and digest did not change), and reads the
daemon's resident set (VmRSS of /proc/<pid>/status) before and after:
the growth must stay within the budget docs/limits.md gives for that
limit. Where the daemon has an option for a limit, the daemon runs with
a small value of it, so that the test is fast; the model's own limits
(processes and mappings per machine) are driven at their real values.

The loops talk to the daemon over one keep-alive connection
(http.client: forking curl for each of 8,192 requests would be slow);
each refusal is then asked again with DaemonTest.problem, whose answer
is validated against docs/openapi.json.

A sanitizer build (the daemon maps libasan) has a larger resident set:
its budgets are scaled (SAN_SCALE, SAN_EXTRA), and its quarantine of
freed memory is kept small, so that the growth still means something.
"""

import http.client
import json
import os

# Before any daemon starts: a sanitizer build keeps freed memory in a
# quarantine (256 MiB by default), which would hide what the test
# measures. Harmless for a build without sanitizers.
os.environ["ASAN_OPTIONS"] = ":".join(
    filter(None, [os.environ.get("ASAN_OPTIONS"),
                  "quarantine_size_mb=16"]))

import vmlab  # noqa: E402

MiB = 1 << 20
GiB = 1 << 30
MAX_MACHINES = 8
MAX_MEMORY = 1 * GiB
MAX_BODY = 1 * MiB
# The model's limits (core/process.h).
MAX_MAPPINGS = 8192
MAX_PROCESSES = 1024
MAX_SHARES = 1024
MAX_BATCH = 10000
SAN_SCALE, SAN_EXTRA = 3, 192 * MiB

# The RSS budgets of docs/limits.md: the most the daemon's resident set
# may grow while a test drives its limit (normal build).
BUDGET = {
    "machines": 4 * MiB,        # MAX_MACHINES empty 1 GiB machines
    "processes": 12 * MiB,      # 1,024 processes
    "mappings": 8 * MiB,        # 8,192 mappings
    "full": 96 * MiB,           # a 1 GiB machine, every frame in use
    "kernel": 8 * MiB,          # kmalloc, vmalloc, alloc_pages to OOM
    "quotas": 4 * MiB,          # a tenant at each of its quotas
    "shares": 4 * MiB,          # 1,025 tenants, 1,024 shares
    "requests": 12 * MiB,       # bodies, batches, JSON, pages at limit
}


class Client:
    """One keep-alive connection: req() -> (status, JSON body)."""

    def __init__(self, port, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port,
                                               timeout=60)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token

    def req(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=self.headers)
        r = self.conn.getresponse()
        raw = r.read()
        return r.status, (json.loads(raw) if raw else None)

    def close(self):
        self.conn.close()


def post_oversized(port, token, path, raw):
    """POSTs raw, larger than --max-body: (status, JSON body). The daemon
    answers 413 from the Content-Length and may close before the body is
    all sent; its answer is still there to read."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        try:
            conn.request("POST", path, body=raw, headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer " + token})
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = conn.getresponse()
        return r.status, json.loads(r.read()), r.getheader("Content-Type")
    finally:
        conn.close()


def rss(pid):
    """The resident set of process pid, in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def sanitized(pid):
    """Whether process pid runs with AddressSanitizer."""
    with open("/proc/%d/maps" % pid) as f:
        return "libasan" in f.read()


class Limits(vmlab.DaemonTest):
    """Each test has a daemon of its own, with auth (for quotas and
    shares) and small options, so that the RSS it measures is its own
    and not what an earlier test left in the allocator."""

    daemon_args = ("--auth", "on", "--durability", "normal",
                   "--max-machines", str(MAX_MACHINES),
                   "--max-memory", str(MAX_MEMORY),
                   "--max-body", str(MAX_BODY))
    figures = {}

    @classmethod
    def setUpClass(cls):
        pass

    @classmethod
    def tearDownClass(cls):
        # The figures docs/limits.md quotes (python3 -m unittest -v).
        for name, (grew, budget) in sorted(cls.figures.items()):
            print("rss %-10s grew %6.1f MiB (budget %6.1f MiB)"
                  % (name, grew / MiB, budget / MiB))

    def setUp(self):
        self.daemon = vmlab.Daemon(*self.daemon_args).start()
        self.addCleanup(self.stop_daemon)
        self.token = self.daemon.admin_token()
        self.pid = self.daemon.proc.pid
        self.san = sanitized(self.pid)
        self.c = Client(self.daemon.port, self.token)
        self.addCleanup(self.c.close)
        self.rss0 = rss(self.pid)

    def stop_daemon(self):
        status, err = self.daemon.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def within_budget(self, name):
        """The daemon's RSS grew by at most BUDGET[name] since setUp."""
        budget = BUDGET[name]
        if self.san:
            budget = budget * SAN_SCALE + SAN_EXTRA
        grew = rss(self.pid) - self.rss0
        self.figures[name] = (grew, budget)
        self.assertLessEqual(grew, budget,
                             "%s: RSS grew by %.1f MiB, budget %.1f MiB"
                             % (name, grew / MiB, budget / MiB))

    def fast(self, method, path, body=None, status=None):
        """A request over the keep-alive connection that must succeed."""
        st, js = self.c.req(method, path, body)
        if status is None:
            self.assertTrue(200 <= st < 300, (method, path, st, js))
        else:
            self.assertEqual(st, status, (method, path, js))
        return js

    def state(self, mid):
        """(version, digest, frames_in_use, processes) of a machine."""
        m = self.ok("GET", "/v1/machines/" + mid)
        return m["version"], m["digest"], m["frames_in_use"], m["processes"]

    def refused(self, mid, method, path, body, status, code):
        """A refusal that leaves machine mid as it was; its detail."""
        before = self.state(mid)
        p = self.problem(method, path, body, status=status, code=code)
        self.assertEqual(self.state(mid), before)
        return p["detail"]

    def drop(self, path):
        """A cleanup: DELETE path, whether or not it exists."""
        c = Client(self.daemon.port, self.token)
        c.req("DELETE", path)
        c.close()

    def new_machine(self, mid, **fields):
        self.addCleanup(self.drop, "/v1/machines/" + mid)
        return self.machine(mid, **fields)

    # ---- per daemon ----

    def test_machines(self):
        """--max-machines: the next machine, or clone, is 409
        too_many_machines, and the list does not change."""
        have = len(self.fast("GET", "/v1/machines?owner=admin")["items"])
        made = ["lm-%d" % i for i in range(MAX_MACHINES - have)]
        for mid in made:
            self.addCleanup(self.drop, "/v1/machines/" + mid)
            self.fast("POST", "/v1/machines", {"id": mid}, status=201)
        self.problem("POST", "/v1/machines", {"id": "lm-over"},
                     status=409, code="too_many_machines")
        self.problem("POST", "/v1/machines/%s/clone" % made[0],
                     {"id": "lm-over"}, status=409, code="too_many_machines")
        self.assertEqual(
            len(self.fast("GET", "/v1/machines?owner=admin")["items"]),
            MAX_MACHINES)
        self.within_budget("machines")

    # ---- per machine: the model's limits ----

    def test_processes(self):
        """1,024 processes; the next is 409 too_many_processes; after one
        exits, one more fits again. Each is as small as a process gets
        (a top-level table and a kernel stack): what its pages cost is
        the budget per GiB of test_full_machine."""
        self.new_machine("lp")
        small = {"text": 0, "data": 0, "stack": 0}
        for i in range(MAX_PROCESSES):
            self.fast("POST", "/v1/machines/lp/processes",
                      dict(small, name="p%d" % i), status=201)
        detail = self.refused("lp", "POST", "/v1/machines/lp/processes",
                              small, 409, "too_many_processes")
        self.assertIn("1024 processes", detail)
        self.fast("DELETE", "/v1/machines/lp/processes/7", status=204)
        pid = self.fast("POST", "/v1/machines/lp/processes", small,
                        status=201)["pid"]
        self.assertEqual(pid, MAX_PROCESSES + 1)
        self.refused("lp", "POST", "/v1/machines/lp/processes", {}, 409,
                     "too_many_processes")
        self.within_budget("processes")

    def test_mappings(self):
        """8,192 mappings in the machine: the next mmap, a munmap that
        would split one and a brk that would add the heap are 409
        out_of_memory, as Linux's ENOMEM at vm.max_map_count; a munmap
        that removes one makes room for one."""
        self.new_machine("lv")
        P = "/v1/machines/lv/processes/"
        # Two processes: the limit is the machine's, not each one's.
        have = 0
        for name in ("a", "b"):
            p = self.fast("POST", "/v1/machines/lv/processes",
                          {"name": name}, status=201)
            have += len(p["regions"])
        n = 0
        while have + n < MAX_MAPPINGS:
            # Alternate protections so that neighbours never merge.
            self.fast("POST", P + "%d/mmap" % (1 + n % 2),
                      {"length": 4096, "populate": False,
                       "prot": "rw-" if n % 4 < 2 else "r--"}, status=201)
            n += 1
        st, js = self.c.req("POST", P + "1/mmap",
                            {"length": 8192, "populate": False})
        self.assertEqual((st, js["code"]), (409, "out_of_memory"), js)
        self.refused("lv", "POST", P + "1/mmap",
                     {"length": 4096, "prot": "rw-"}, 409, "out_of_memory")
        self.refused("lv", "POST", P + "2/mmap",
                     {"length": 4096, "prot": "rw-", "fixed": True,
                      "addr": "0x10000"}, 409, "out_of_memory")
        # A munmap inside the text would split it in two.
        regions = self.fast("GET", P + "1")["regions"]
        text = regions[0]
        self.assertEqual(text["kind"], "text")
        self.refused("lv", "POST", P + "1/munmap",
                     {"addr": hex(int(text["start"], 16) + 4096),
                      "length": 4096}, 409, "out_of_memory")
        self.refused("lv", "POST", P + "1/brk", {"increment": 4096}, 409,
                     "out_of_memory")
        # Removing a whole mapping makes room for exactly one.
        mm = [r for r in regions if r["kind"] == "mmap"][0]
        self.fast("POST", P + "1/munmap",
                  {"addr": mm["start"], "length": 4096})
        self.fast("POST", P + "1/mmap", {"length": 4096, "prot": "r-x",
                                         "populate": False}, status=201)
        self.refused("lv", "POST", P + "1/mmap", {"length": 4096}, 409,
                     "out_of_memory")
        self.within_budget("mappings")

    def test_full_machine(self):
        """A machine of the largest size this daemon allows, every free
        frame populated by mmap: the last mmap is 409 out_of_memory and
        the daemon stays within its budget per GiB of simulated RAM."""
        self.problem("POST", "/v1/machines",
                     {"id": "lf", "memory": MAX_MEMORY + MiB},
                     status=422, code="invalid_value")
        self.new_machine("lf", memory=MAX_MEMORY)
        self.fast("POST", "/v1/machines/lf/processes", {"name": "big"},
                  status=201)
        for chunk in (256 * MiB, 4 * MiB, 64 * 1024, 4096):
            while True:
                st, js = self.c.req("POST",
                                    "/v1/machines/lf/processes/1/mmap",
                                    {"length": chunk, "prot": "rw-"})
                if st != 201:
                    self.assertEqual((st, js["code"]),
                                     (409, "out_of_memory"), js)
                    break
        self.refused("lf", "POST", "/v1/machines/lf/processes/1/mmap",
                     {"length": 4096}, 409, "out_of_memory")
        zones = self.fast("GET", "/v1/machines/lf/zones")["zones"]
        # Only what a page table or a page cannot use is left.
        self.assertLess(sum(z["free_pages"] for z in zones), 64)
        self.within_budget("full")

    def test_kernel_allocators(self):
        """kmalloc (slabs), vmalloc areas and alloc_pages blocks are
        bounded by simulated RAM: each runs a small machine out of
        memory (409 out_of_memory) within its budget."""
        for mid, path, body in (
                ("lk1", "kmalloc", {"size": 8192}),
                ("lk2", "vmalloc", {"size": 65536}),
                ("lk3", "pages", {"order": 3})):
            self.new_machine(mid, memory="32MiB", churn=0)
            url = "/v1/machines/%s/%s" % (mid, path)
            n = 0
            while True:
                st, js = self.c.req("POST", url, body)
                if st != 201:
                    self.assertEqual((st, js["code"]),
                                     (409, "out_of_memory"), js)
                    break
                n += 1
            self.assertGreater(n, 300)
            self.refused(mid, "POST", url, body, 409, "out_of_memory")
        self.within_budget("kernel")

    # ---- per tenant ----

    def test_quotas(self):
        """A tenant at each quota: 429 quota_exceeded (machines, memory,
        processes per machine, a clone) and rate_limited, with nothing
        changed."""
        t = self.ok("POST", "/v1/tenants",
                    {"name": "lq", "quota": {"machines": 2,
                                             "memory": "128MiB",
                                             "processes": 3, "rate": 10}},
                    status=201)["token"]
        self.addCleanup(self.drop, "/v1/tenants/lq")
        self.ok("POST", "/v1/machines", {"id": "a", "memory": "64MiB"},
                status=201, token=t)
        self.problem("POST", "/v1/machines", {"id": "b", "memory": "128MiB"},
                     status=429, code="quota_exceeded", token=t)
        self.ok("POST", "/v1/machines", {"id": "b", "memory": "32MiB"},
                status=201, token=t)
        self.problem("POST", "/v1/machines", {"id": "c", "memory": "32MiB"},
                     status=429, code="quota_exceeded", token=t)
        self.problem("POST", "/v1/machines/a/clone", {"id": "c"},
                     status=429, code="quota_exceeded", token=t)
        for i in range(3):
            self.ok("POST", "/v1/machines/a/processes", {}, status=201,
                    token=t)
        before = self.state("lq.a")
        self.problem("POST", "/v1/machines/a/processes", {}, status=429,
                     code="quota_exceeded", token=t)
        self.assertEqual(self.state("lq.a"), before)
        who = self.ok("GET", "/v1/whoami", token=t)
        self.assertEqual(who["usage"], {"machines": 2,
                                        "memory": 96 * MiB})
        # The rate: a burst of 10, then 429 rate_limited.
        fast = Client(self.daemon.port, t)
        codes = [fast.req("GET", "/v1/whoami")[1].get("code")
                 for _ in range(100)]
        fast.close()
        self.assertIn("rate_limited", codes)
        self.within_budget("quotas")

    # ---- per machine: shares ----

    def test_shares(self):
        """1,024 shares of one machine; the next is 409 too_many_shares."""
        self.new_machine("ls")
        names = ["ls%04d" % i for i in range(MAX_SHARES + 1)]
        for name in names:
            self.fast("POST", "/v1/tenants", {"name": name}, status=201)
            self.addCleanup(self.drop, "/v1/tenants/" + name)
        for name in names[:MAX_SHARES]:
            self.fast("POST", "/v1/machines/ls/shares",
                      {"tenant": name, "access": "read"}, status=201)
        self.refused("ls", "POST", "/v1/machines/ls/shares",
                     {"tenant": names[-1], "access": "read"}, 409,
                     "too_many_shares")
        # Changing an existing share's access is no new share.
        self.fast("POST", "/v1/machines/ls/shares",
                  {"tenant": names[0], "access": "write"}, status=200)
        self.within_budget("shares")

    # ---- per request ----

    def test_requests(self):
        """A body over --max-body (413, from its Content-Length), a batch
        over 10,000 items (422), JSON nested deeper than 32 (400), a page
        over 1,000 (400) and an id over 63 characters (404): none may
        grow the daemon, however often it comes."""
        self.new_machine("lr")
        big = b'{"size": 8, "x": "' + b"a" * MAX_BODY + b'"}'
        batch = {"items": [{"va": "0x1000"}] * (MAX_BATCH + 1)}
        deep = b"[" * 33 + b"]" * 33
        for _ in range(10):
            status, body, ctype = post_oversized(
                self.daemon.port, self.token, "/v1/machines/lr/kmalloc", big)
            self.assertEqual((status, body["code"], ctype),
                             (413, "payload_too_large",
                              "application/problem+json"), body)
            self.refused("lr", "POST", "/v1/machines/lr/translate/batch",
                         batch, 422, "batch_too_large")
            self.problem("POST", "/v1/machines/lr/kmalloc", raw=deep,
                         status=400, code="malformed_json")
            self.problem("GET", "/v1/machines?page_size=1001",
                         status=400, code="bad_query")
            self.problem("GET", "/v1/machines/lr/history?page_size=1001",
                         status=400, code="bad_query")
            self.problem("GET", "/v1/machines/" + "a" * 200,
                         status=404, code="not_found")
        # The largest batch that is allowed is answered whole.
        ok = self.ok("POST", "/v1/machines/lr/translate/batch",
                     {"items": [{"va": "0x1000"}] * MAX_BATCH})
        self.assertEqual(len(ok["results"]), MAX_BATCH)
        self.within_budget("requests")


if __name__ == "__main__":
    vmlab.main()
