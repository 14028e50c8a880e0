#!/usr/bin/env python3
"""run.py - vmlab's benchmark suite: what `make bench` runs.

usage: bench/run.py [--builddir DIR] [--out FILE] [--only PHASE,...]

Runs every phase below with the programs of the build directory DIR
(default .), prints one line per figure on stdout, `name value unit`,
and writes them with their goals and the options they ran with to FILE
(default DIR/bench/results.json). Progress, the goals and extra figures
go to stderr.

Phases, in the order they run (--only, or $VMLAB_BENCH_ONLY, picks some):
  core     bench/bench_core: core_walk_ns, core_walk_dep_ns,
           core_translate_batch_ns, machine_host_bytes
  api      bench/bench_api: create_machine_us
  http     wrk against vmlabd: http_healthz_rps, http_translate_rps,
           http_translate_p99_ms, http_batch_tps
  sqlite   bench/bench_sqlite: sqlite_commit_rps
  durable  wrk against vmlabd: durable_mut_1c, durable_mut_16c
  rss      machines_10k_rss_mb
  restart  restart_10k_s

Every daemon is server/vmlabd with its defaults (durability full, group
commit on, a worker thread per CPU) on 127.0.0.1, a port it picks, its
database in a temporary folder under $VMLAB_BENCH_DIR (default
DIR/bench/), which sqlite's baseline uses too; daemons are stopped by
PID and the folder is removed at the end. HTTP load is wrk's (Debian's
package), keep-alive, with the Lua scripts next to this file: addresses
and batches come from a seeded random sequence over the mapped pages,
and a sample of answers is checked while wrk runs (check.lua). A wrong
answer, a non-2xx status or a socket error fails the suite (exit 1);
a goal not met does not.

Environment (with the defaults a whole run takes two to three minutes on
a 2-core machine):
  VMLAB_BENCH_SECONDS   seconds per wrk run and of sqlite's baseline (5)
  VMLAB_BENCH_LOOPS     translations per timing in core (2,000,000)
  VMLAB_BENCH_CREATES   machines created per timing in api (5,000)
  VMLAB_BENCH_MACHINES  machines of rss and restart (10,000)
  VMLAB_BENCH_SAMPLE    every how many single requests one is checked
                        (1,000; batches 50 times as often, kmalloc 10)
  VMLAB_BENCH_CONNECTIONS, VMLAB_BENCH_WRK_THREADS
                        wrk's -c and -t for the http phase (32, 1)
  VMLAB_BENCH_DIR       where the databases go (DIR/bench/)
  VMLAB_BENCH_ONLY      phases to run, comma-separated (all)
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# The table: name, what, unit, goal. A goal is ("<=", limit),
# (">=", factor, baseline) against a figure of the same run, or None
# (measured: a baseline).
FIGURES = [
    ("core_walk_ns", "one 4-level translation, independent random VAs "
     "over 10,000 mapped 4 KiB pages, in-process", "ns", ("<=", 10)),
    ("core_walk_dep_ns", "the same, each VA depending on the last result",
     "ns", ("<=", 30)),
    ("core_translate_batch_ns", "per item of a 1,000-item batch, "
     "in-process, JSON excluded", "ns", ("<=", 15)),
    ("http_healthz_rps", "GET /healthz, wrk -t1 -c32 (the HTTP floor of "
     "this machine)", "req/s", None),
    ("http_translate_rps", "POST translate, one VA each, wrk -t1 -c32",
     "req/s", (">=", 0.85, "http_healthz_rps")),
    ("http_translate_p99_ms", "p99 latency at that load", "ms",
     ("<=", 1)),
    ("http_batch_tps", "translations per second in batches of 1,000",
     "translations/s", (">=", 50, "http_healthz_rps")),
    ("durable_mut_1c", "kmalloc/s, 1 client", "kmalloc/s",
     (">=", 0.8, "sqlite_commit_rps")),
    ("sqlite_commit_rps", "the suite's own baseline: single-row WAL FULL "
     "commits/s on the same disk", "commits/s", None),
    ("durable_mut_16c", "kmalloc/s, 16 clients on 16 machines",
     "kmalloc/s", (">=", 5, "durable_mut_1c")),
    ("machine_host_bytes", "core's bytes per idle x86_64 1 GiB machine "
     "with one process", "bytes", ("<=", 65536)),
    ("machines_10k_rss_mb", "daemon RSS holding 10,000 such machines",
     "MiB", ("<=", 1024)),
    ("restart_10k_s", "restart until every one of 10,000 machines "
     "(10 operations each) answers with its digest", "s", ("<=", 2)),
    ("create_machine_us", "POST /v1/machines, in-process cost", "us",
     ("<=", 200)),
]
UNITS = {name: unit for name, _, unit, _ in FIGURES}
PHASES = ["core", "api", "http", "sqlite", "durable", "rss", "restart"]
BATCH_ITEMS = 1000
MAPPED_PAGES = 10000

# How each figure is printed: its precision.
FORMATS = {"ns": "%.1f", "req/s": "%.0f", "ms": "%.3f",
           "translations/s": "%.0f", "kmalloc/s": "%.0f",
           "commits/s": "%.0f", "bytes": "%.0f", "MiB": "%.1f",
           "s": "%.2f", "us": "%.1f"}


class BenchError(Exception):
    """A run that went wrong: a wrong answer, a failed request, a crash."""


def say(*a):
    print("bench:", *a, file=sys.stderr, flush=True)


def env_num(name, default):
    v = os.environ.get(name, "")
    try:
        n = int(v.replace(",", "").replace("_", "")) if v else default
    except ValueError:
        n = 0
    if n <= 0:
        raise BenchError("%s=%r: a whole number > 0, please" % (name, v))
    return n


def options_from_env():
    sample = env_num("VMLAB_BENCH_SAMPLE", 1000)
    return {
        "seconds": env_num("VMLAB_BENCH_SECONDS", 5),
        "loops": env_num("VMLAB_BENCH_LOOPS", 2000000),
        "creates": env_num("VMLAB_BENCH_CREATES", 5000),
        "machines": env_num("VMLAB_BENCH_MACHINES", 10000),
        "sample_every": sample,
        "sample_every_batch": max(1, sample // 50),
        "sample_every_kmalloc": max(1, sample // 10),
        "wrk_threads": env_num("VMLAB_BENCH_WRK_THREADS", 1),
        "wrk_connections": env_num("VMLAB_BENCH_CONNECTIONS", 32),
        "batch_items": BATCH_ITEMS,
        "mapped_pages": MAPPED_PAGES,
        "durable_clients": [1, 16],
        "fill_threads": 16,
    }


# ---- programs -----------------------------------------------------------

def run_program(argv, env=None, timeout=None):
    """Runs a bench program; its `name value unit` lines as a dict."""
    say("running", " ".join(argv))
    e = dict(os.environ, **(env or {}))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=e, timeout=timeout)
    if p.returncode != 0:
        raise BenchError("%s failed (exit %d): %s" %
                         (argv[0], p.returncode, p.stderr.strip()))
    out = {}
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 3:
            out[f[0]] = f[1]
    return out


# ---- the daemon ---------------------------------------------------------

class Daemon:
    """A vmlabd of the suite's: 127.0.0.1, a port it picks, stopped by PID."""

    def __init__(self, vmlabd, db, args=()):
        self.err = open(db + ".err", "w+")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [vmlabd, "--listen", "127.0.0.1:0", "--db", db] + list(args),
            stdout=subprocess.DEVNULL, stderr=self.err)
        self.port = None
        self.threads = None
        self.durability = None
        self.local = threading.local()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            self.err.seek(0)
            text = self.err.read()
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/ with "
                          r"(\d+) threads", text)
            d = re.search(r"\(durability (\w+)", text)
            if m and d:
                self.port = int(m.group(1))
                self.threads = int(m.group(2))
                self.durability = d.group(1)
                self.listening_at = time.monotonic()
                return
            if self.proc.poll() is not None:
                raise BenchError("vmlabd did not start: " + text)
            time.sleep(0.005)
        self.kill()
        raise BenchError("vmlabd did not listen within 600 s")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port,
                                           timeout=120)
            self.local.conn = c
        return c

    def call(self, method, path, body=None, want=None):
        """A request over this thread's keep-alive connection: the
        answer's JSON (or text), after checking the status."""
        c = self.conn()
        data = json.dumps(body) if body is not None else None
        hdrs = {"Content-Type": "application/json"} if data else {}
        c.request(method, path, data, hdrs)
        r = c.getresponse()
        raw = r.read()
        if (want and r.status != want) or r.status >= 300:
            raise BenchError("%s %s answered %d: %s" %
                             (method, path, r.status, raw[:300]))
        ctype = r.getheader("Content-Type") or ""
        return json.loads(raw) if raw and "json" in ctype else raw.decode()

    def metric(self, name):
        for line in self.call("GET", "/metrics").splitlines():
            f = line.split()
            if len(f) == 2 and f[0] == name:
                return float(f[1])
        raise BenchError("no metric " + name)

    def rss_kib(self, field="VmRSS"):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise BenchError("no %s for PID %d" % (field, self.proc.pid))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.kill()
                raise BenchError("vmlabd did not stop on SIGTERM")
        self.err.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.err.close()


def in_threads(n, fn, count):
    """fn(i) for i in range(count), over n threads; the first error."""
    errors = []

    def work(k):
        try:
            for i in range(k, count, n):
                if errors:
                    return
                fn(i)
        except Exception as e:  # handed to the caller
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


# ---- wrk ----------------------------------------------------------------

def wrk(url, script, args, seconds, threads=1, connections=32):
    """One wrk run with a script of bench/; its VMLAB_WRK figures. Fails
    on any wrong sample, non-2xx answer or socket error."""
    argv = ["wrk", "-t%d" % threads, "-c%d" % connections,
            "-d%ds" % seconds, "--timeout", "10s", "-s", script, url,
            "--"] + [str(a) for a in args]
    say("running", " ".join(argv))
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=seconds + 120)
    res, bad = None, None
    for line in p.stdout.splitlines():
        if line.startswith("VMLAB_WRK "):
            res = {k: float(v) for k, v in
                   (f.split("=", 1) for f in line.split()[1:])}
        elif line.startswith("VMLAB_WRK_BAD "):
            bad = line[len("VMLAB_WRK_BAD "):]
    if p.returncode != 0 or res is None:
        raise BenchError("wrk failed (exit %d): %s" %
                         (p.returncode, p.stdout.strip()[-2000:]))
    name = os.path.basename(script)
    if res["bad"]:
        raise BenchError("%s: %d of %d sampled answers were wrong; the "
                         "first: %s" % (name, res["bad"], res["checked"],
                                        bad))
    if res["checked"] == 0:
        raise BenchError("%s: no answer was checked" % name)
    errs = {k: res[k] for k in ("status_errors", "connect_errors",
                                "read_errors", "write_errors", "timeouts")
            if res[k]}
    if errs:
        raise BenchError("%s: %s" % (name, errs))
    return res


# ---- phases -------------------------------------------------------------

class Suite:
    def __init__(self, builddir, srcdir, opts, tmp):
        self.b = builddir
        self.src = srcdir
        self.o = opts
        self.tmp = tmp
        self.vmlabd = os.path.join(builddir, "server", "vmlabd")
        self.fig = {}
        self.extra = {}
        self.daemons = []
        self.daemon_info = {}

    def put(self, name, value):
        value = float(value)
        self.fig[name] = value
        print("%s %s %s" % (name, FORMATS[UNITS[name]] % value,
                            UNITS[name]), flush=True)

    def start(self, name, args=()):
        db = os.path.join(self.tmp, name + ".db")
        d = Daemon(self.vmlabd, db, args)
        self.daemons.append(d)
        self.daemon_info = {"vmlabd_threads": d.threads,
                            "durability": d.durability,
                            "group_commit": "on"}
        return d

    def lua(self, name):
        return os.path.join(self.src, "bench", name)

    def program(self, argv, names):
        """A bench program's figures; its other lines are extras."""
        r = run_program(argv)
        for k in names:
            if k not in r:
                raise BenchError("%s printed no %s" % (argv[0], k))
            self.put(k, r[k])
        for k, v in r.items():
            if k not in names:
                self.extra[k] = v if k.endswith("_version") else float(v)
        return r

    def core(self):
        self.program([os.path.join(self.b, "bench", "bench_core"),
                      str(self.o["loops"])],
                     ["core_walk_ns", "core_walk_dep_ns",
                      "core_translate_batch_ns", "machine_host_bytes"])

    def api(self):
        self.program([os.path.join(self.b, "bench", "bench_api"),
                      str(self.o["creates"])], ["create_machine_us"])

    def sqlite(self):
        self.program([os.path.join(self.b, "bench", "bench_sqlite"),
                      self.tmp, "%g" % self.o["seconds"]],
                     ["sqlite_commit_rps"])

    def http(self):
        o = self.o
        d = self.start("http")
        d.call("POST", "/v1/machines", {"id": "bench", "seed": 1}, 201)
        pid = d.call("POST", "/v1/machines/bench/processes",
                     {"name": "bench"}, 201)["pid"]
        start = d.call("POST", "/v1/machines/bench/processes/%d/mmap" % pid,
                       {"length": MAPPED_PAGES * 4096, "populate": True},
                       201)["start"]
        t = d.call("POST", "/v1/machines/bench/translate",
                   {"va": start, "pid": pid})
        if not t.get("ok"):
            raise BenchError("the mapping does not translate: %s" % t)
        tc = (o["wrk_threads"], o["wrk_connections"])
        s = o["seconds"]
        h = wrk(d.url + "/healthz", self.lua("healthz.lua"),
                [o["sample_every"]], s, *tc)
        t = wrk(d.url + "/", self.lua("translate.lua"),
                ["bench", pid, start, MAPPED_PAGES, 42, o["sample_every"]],
                s, *tc)
        b = wrk(d.url + "/", self.lua("batch.lua"),
                ["bench", pid, start, MAPPED_PAGES, 43,
                 o["sample_every_batch"], BATCH_ITEMS], s, *tc)
        d.stop()
        self.put("http_healthz_rps", h["rps"])
        self.put("http_translate_rps", t["rps"])
        self.put("http_translate_p99_ms", t["p99_ms"])
        self.put("http_batch_tps", b["rps"] * BATCH_ITEMS)
        self.extra.update({
            "http_healthz_p99_ms": h["p99_ms"],
            "http_translate_p50_ms": t["p50_ms"],
            "http_batch_rps": b["rps"], "http_batch_p99_ms": b["p99_ms"],
            "http_answers_checked": h["checked"] + t["checked"] +
            b["checked"]})

    def durable(self):
        o = self.o
        d = self.start("durable")
        for i in range(16):
            d.call("POST", "/v1/machines",
                   {"id": "d%d" % i, "memory": "256MiB", "churn": 0}, 201)
        s, every = o["seconds"], o["sample_every_kmalloc"]
        one = wrk(d.url + "/", self.lua("kmalloc.lua"), ["d", every], s,
                  1, 1)
        t0 = d.metric("vmlab_db_transactions_total")
        o0 = d.metric("vmlab_durable_operations_total")
        many = wrk(d.url + "/", self.lua("kmalloc.lua"), ["d", every], s,
                   16, 16)
        t1 = d.metric("vmlab_db_transactions_total")
        o1 = d.metric("vmlab_durable_operations_total")
        d.stop()
        self.put("durable_mut_1c", one["rps"])
        self.put("durable_mut_16c", many["rps"])
        self.extra.update({
            "durable_mut_1c_p99_ms": one["p99_ms"],
            "durable_mut_16c_p99_ms": many["p99_ms"],
            "durable_ops_per_transaction_16c":
                (o1 - o0) / (t1 - t0) if t1 > t0 else None})

    def max_machines_args(self):
        n = self.o["machines"]
        return ["--max-machines", str(n)] if n > 10000 else []

    def rss(self):
        n = self.o["machines"]
        d = self.start("rss", self.max_machines_args())
        rss0 = d.rss_kib()

        def make(i):
            mid = "m%d" % i
            d.call("POST", "/v1/machines", {"id": mid}, 201)
            d.call("POST", "/v1/machines/%s/processes" % mid,
                   {"name": "p"}, 201)

        t0 = time.monotonic()
        say("creating %d x86_64 1 GiB machines with a process each" % n)
        in_threads(self.o["fill_threads"], make, n)
        fill = time.monotonic() - t0
        held = d.metric("vmlab_machines")
        if held != n or d.metric("vmlab_processes") != n:
            raise BenchError("the daemon holds %g machines and %g "
                             "processes, not %d" %
                             (held, d.metric("vmlab_processes"), n))
        rss = d.rss_kib()
        hwm = d.rss_kib("VmHWM")
        d.stop()
        self.put("machines_10k_rss_mb", rss / 1024)
        self.extra.update({
            "daemon_rss_empty_mib": rss0 / 1024,
            "daemon_hwm_mib": hwm / 1024,
            "daemon_bytes_per_machine": (rss - rss0) * 1024 / n,
            "rss_fill_per_s": 2 * n / fill})

    # The operations of each machine of the restart phase.
    OPS = [("POST", "/processes", {"name": "p", "populate": False}),
           ("POST", "/kmalloc", {"size": 100}),
           ("POST", "/kmalloc", {"size": 5000}),
           ("POST", "/vmalloc", {"size": 8192}),
           ("POST", "/pages", {"order": 1}),
           ("POST", "/processes/1/mmap", {"length": 8192,
                                          "populate": False}),
           ("POST", "/cpus/0/switch", {"pid": 1}),
           ("POST", "/kmalloc", {"size": 32}),
           ("POST", "/processes", {"name": "q", "populate": False}),
           ("POST", "/cpus/0/switch", {"pid": 2})]

    def restart(self):
        """Machines with 10 operations each, SIGKILL (each replays its log
        from its last snapshot), then the time from the new start until
        every machine has answered with its digest from before."""
        n = self.o["machines"]
        d = self.start("restart", self.max_machines_args())
        digests = {}

        def fill(i):
            mid = "r%d" % i
            d.call("POST", "/v1/machines", {"id": mid, "memory": "64MiB"},
                   201)
            for method, path, body in self.OPS:
                d.call(method, "/v1/machines/" + mid + path, body)
            digests[mid] = d.call("GET", "/v1/machines/" + mid)["digest"]

        say("creating %d machines with 10 operations each" % n)
        in_threads(self.o["fill_threads"], fill, n)
        d.kill()
        listing = os.path.join(self.tmp, "restart-digests")
        with open(listing, "w") as f:
            for mid, digest in sorted(digests.items()):
                f.write("/v1/machines/%s %s\n" % (mid, digest))
        t0 = time.monotonic()
        d = self.start("restart", self.max_machines_args())
        # A C client (bench_get): Python would spend more per GET than
        # the daemon does, and time itself.
        p = subprocess.run([os.path.join(self.b, "bench", "bench_get"),
                            str(d.port), listing,
                            str(self.o["fill_threads"])],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=600)
        elapsed = time.monotonic() - t0
        listening = d.listening_at - t0
        d.stop()
        if p.returncode != 0 or p.stdout.split() != ["checked", str(n)]:
            raise BenchError("after restart: %s%s" % (p.stdout, p.stderr))
        self.put("restart_10k_s", elapsed)
        self.extra["restart_until_listening_s"] = listening

    def cleanup(self):
        for d in self.daemons:
            if d.proc.poll() is None:
                d.kill()


# ---- goals and the record ---------------------------------------------

def goal_text(goal, fig=None, unit=""):
    """'<= 10', '>= 0.85 x http_healthz_rps (= 97750)' or 'measured'."""
    if goal is None:
        return "measured"
    if len(goal) == 2:
        return "%s %g" % goal
    s = "%s %g x %s" % goal
    if fig is not None and goal[2] in fig:
        s += " (= %s)" % (FORMATS.get(unit, "%g") %
                          (goal[1] * fig[goal[2]]))
    return s


def goal_check(goal, value, fig):
    """(limit, met): met is None for a baseline or a missing baseline."""
    if goal is None or value is None:
        return None, None
    if len(goal) == 2:
        limit = goal[1]
    elif goal[2] in fig:
        limit = goal[1] * fig[goal[2]]
    else:
        return None, None
    return limit, (value <= limit if goal[0] == "<=" else value >= limit)


def figures_record(fig):
    out = {}
    for name, what, unit, goal in FIGURES:
        if name not in fig:
            continue
        limit, met = goal_check(goal, fig[name], fig)
        out[name] = {"value": fig[name], "unit": unit, "what": what,
                     "goal": goal_text(goal), "limit": limit, "met": met}
    return out


def first_line(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=10)
        return p.stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return None


def host_info(path):
    cpu = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # The file system the databases are on: the longest mount point.
    fs, best = None, ""
    try:
        real = os.path.realpath(path)
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, kind = line.split()[:3]
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) \
                        and len(mnt) >= len(best):
                    best, fs = mnt, "%s on %s (%s)" % (kind, mnt, dev)
    except OSError:
        pass
    return {"cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "cpu_model": cpu, "kernel": platform.release(),
            "db_filesystem": fs}


def versions(vmlabd, extra):
    v = {"vmlabd": first_line([vmlabd, "--version"]),
         "wrk": first_line(["wrk", "-v"]),
         "sqlite": extra.get("sqlite_version"),
         "python": platform.python_version(),
         "cc": None, "cflags": os.environ.get("VMLAB_BENCH_CFLAGS")}
    cc = os.environ.get("VMLAB_BENCH_CC")
    if cc:
        v["cc"] = first_line(cc.split() + ["--version"])
    if shutil.which("pkg-config"):
        for pkg in ("libmicrohttpd", "libcjson", "sqlite3"):
            v[pkg + "_pkgconfig"] = first_line(["pkg-config",
                                                "--modversion", pkg])
    return v


def print_goals(fig):
    say("goals:")
    for name, what, unit, goal in FIGURES:
        if name not in fig:
            continue
        limit, met = goal_check(goal, fig[name], fig)
        mark = {True: "met", False: "NOT met", None: ""}[met]
        print("  %-26s %14s %-15s %-40s %s" %
              (name, FORMATS[unit] % fig[name], unit,
               goal_text(goal, fig, unit), mark), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=".")
    ap.add_argument("--srcdir", default=os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap.add_argument("--out")
    ap.add_argument("--only", default=os.environ.get("VMLAB_BENCH_ONLY"))
    a = ap.parse_args()
    builddir = os.path.abspath(a.builddir)
    out = a.out or os.path.join(builddir, "bench", "results.json")
    phases = PHASES
    if a.only:
        phases = [p.strip() for p in a.only.split(",") if p.strip()]
        unknown = set(phases) - set(PHASES)
        if unknown:
            sys.exit("run.py: unknown phases %s (known: %s)" %
                     (sorted(unknown), ",".join(PHASES)))
    try:
        opts = options_from_env()
    except BenchError as e:
        sys.exit("run.py: %s" % e)
    if any(p in phases for p in ("http", "durable")) and \
            not shutil.which("wrk"):
        sys.exit("run.py: the http and durable phases need wrk "
                 "(apt-get install wrk; scripts/setup.sh installs it)")
    where = os.environ.get("VMLAB_BENCH_DIR") or \
        os.path.join(builddir, "bench")
    os.makedirs(where, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="tmp.", dir=where)
    info = host_info(tmp)
    # Other work on the host makes every figure noisy: say how much.
    info["loadavg_start"] = [round(x, 2) for x in os.getloadavg()]
    suite = Suite(builddir, a.srcdir, opts, tmp)
    started = datetime.datetime.now(datetime.timezone.utc)
    t0 = time.monotonic()
    times = {}
    try:
        for p in phases:
            say("--", p)
            t = time.monotonic()
            getattr(suite, p)()
            times[p] = round(time.monotonic() - t, 2)
    except (BenchError, subprocess.SubprocessError, OSError,
            http.client.HTTPException) as e:
        sys.exit("run.py: FAILED: %s" % e)
    finally:
        suite.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    info["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    opts.update(suite.daemon_info)
    opts.update({"phases": phases, "db_dir": where,
                 "host_cpus": info["cpus"]})
    record = {
        "suite": "vmlab bench",
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": round(time.monotonic() - t0, 2),
        "phase_s": times,
        "figures": figures_record(suite.fig),
        "extra": suite.extra,
        "options": opts,
        "host": info,
        "versions": versions(suite.vmlabd, suite.extra),
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(out + ".tmp", out)
    print_goals(suite.fig)
    say("extra:", json.dumps(suite.extra))
    say("wrote %s in %.0f s" % (out, record["elapsed_s"]))


if __name__ == "__main__":
    main()
