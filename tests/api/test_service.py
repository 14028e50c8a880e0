"""test_service.py - vmlabd as a service (SPEC part 3): its options,
limits, /healthz, /v1, /metrics, shutdown on signals, and mutations of
several machines in parallel.

Every daemon listens on 127.0.0.1 only; requests that need exact control
of the bytes on the wire (a Content-Length with no body behind it, a
chunked body, a request left in flight) use a raw socket to it.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import vmlab

SCALE = max(1, int(os.environ.get("VMLAB_TEST_SCALE", "1")))


def run(*args, timeout=20):
    return subprocess.run([vmlab.VMLABD] + list(args), capture_output=True,
                          text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def read_response(sock, timeout=10.0, data=b""):
    """Reads one HTTP/1.1 response from sock, data being what was read of
    it already. Returns (status, headers, body bytes, complete, nbytes):
    complete when the whole body announced by Content-Length arrived;
    nbytes counts every byte received. A reset or EOF ends the read."""
    sock.settimeout(timeout)
    head = None
    want = None
    try:
        while True:
            if head is None and b"\r\n\r\n" in data:
                head, _, _ = data.partition(b"\r\n\r\n")
                m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
                want = len(head) + 4 + int(m.group(1)) if m else None
            if want is not None and len(data) >= want:
                break
            d = sock.recv(1 << 16)
            if not d:
                break
            data += d
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        pass
    if head is None:
        return None, {}, b"", False, len(data)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = data[len(head) + 4:]
    complete = want is not None and len(data) >= want
    return status, headers, body[:want], complete, len(data)


def parse_metrics(text):
    """Prometheus text format 0.0.4 -> {(name, ((label, value), ...)):
    float}; raises AssertionError on a line outside the format or a
    sample of a family with no # TYPE before it."""
    samples, types = {}, {}
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                        r'(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                        r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)?\})?'
                        r' (\S+)$')
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary",
                            "untyped"), line
            types[name] = kind
            continue
        if line.startswith("#"):
            assert line.startswith("# HELP "), line
            continue
        m = sample.match(line)
        assert m, "not a Prometheus sample: %r" % line
        name = m.group(1)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, "no # TYPE for %r" % line
        labels = tuple(sorted(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="'
                                         r'((?:[^"\\]|\\.)*)"',
                                         m.group(2) or "")))
        samples[(name, labels)] = float(m.group(3))
    return samples, types


class Options(unittest.TestCase):
    """The command line, without serving anything."""

    def test_help_lists_every_option(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ("--listen", "--db", "--threads", "--max-body",
                    "--max-machines", "--help", "--version"):
            self.assertRegex(r.stdout, r"(?m)^\s*%s\b" % re.escape(opt),
                             opt)
        # Every option the help names is one the daemon takes (the
        # trailing --version makes each run exit at once).
        for opt in set(re.findall(r"(?m)^\s*(--[a-z-]+)", r.stdout)):
            other = run(opt, "1", "--version")
            self.assertNotIn("unrecognized option", other.stderr, opt)

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^vmlabd \d+\.\d+(\.\d+)?\b")

    def test_non_loopback_refused(self):
        """SPEC 3: no listening beyond loopback without authentication.
        Refused at start, before any socket is bound."""
        for addr in ("0.0.0.0:0", "[::]:0"):
            r = run("--listen", addr, timeout=10)
            self.assertNotEqual(r.returncode, 0, addr)
            self.assertNotIn("listening on", r.stderr)
            self.assertIn(addr, r.stderr)
            self.assertRegex(r.stderr.lower(), r"loopback")

    def test_bad_options(self):
        for args in (["--no-such-option"], ["--max-body", "lots"],
                     ["--threads", "0"], ["--listen", "localhost"],
                     ["extra-argument"]):
            r = run(*args)
            self.assertNotEqual(r.returncode, 0, args)
            self.assertTrue(r.stderr.strip(), args)
            self.assertNotIn("listening on", r.stderr)


class Raw:
    """Raw requests to a daemon on 127.0.0.1."""

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.daemon.port),
                                        timeout=10)

    def check_413(self, status, headers, body):
        self.assertEqual(status, 413)
        self.assertEqual(headers.get("content-type"),
                         "application/problem+json")
        p = json.loads(body)
        self.assertEqual((p["status"], p["code"], p["type"]),
                         (413, "payload_too_large",
                          "/problems/payload_too_large"))
        self.assertTrue(p["detail"])


class MaxBody(Raw, vmlab.DaemonTest):
    daemon_args = ("--max-body", "4096")

    def padded(self, mid, n):
        """A machine-create body of exactly n bytes."""
        b = json.dumps({"id": mid, "churn": 0}).encode()
        return b[:-1] + b" " * (n - len(b)) + b"}"

    def test_content_length_refused_unread(self):
        """A Content-Length over --max-body is answered 413 from the
        headers alone: the body is never sent, and the answer comes."""
        s = self.connect()
        s.sendall(b"POST /v1/machines HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Content-Length: 1000000000000\r\n\r\n")
        t0 = time.monotonic()
        status, headers, body, complete, _ = read_response(s, timeout=5)
        self.assertLess(time.monotonic() - t0, 4)
        self.assertTrue(complete)
        self.check_413(status, headers, body)
        err = vmlab.check_response("POST", "/v1/machines", vmlab.Response(
            status, headers, body.decode()))
        self.assertIsNone(err, err)
        # Nothing more will be read on that connection: it is closed.
        s.settimeout(5)
        try:
            rest = s.recv(1)
        except ConnectionResetError:
            rest = b""
        self.assertEqual(rest, b"")
        s.close()
        # One byte over the limit too, sent whole.
        s = self.connect()
        body = self.padded("ep-mb-over", 4097)
        s.sendall(b"POST /v1/machines HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Length: 4097\r\nConnection: close\r\n\r\n" + body)
        status, headers, body, _, _ = read_response(s)
        self.check_413(status, headers, body)
        s.close()
        self.problem("GET", "/v1/machines/ep-mb-over", status=404)

    def test_limit_is_inclusive(self):
        r = self.req("POST", "/v1/machines",
                     raw=self.padded("ep-mb-exact", 4096))
        self.assertEqual(r.status, 201, r)
        self.problem("POST", "/v1/machines",
                     raw=self.padded("ep-mb-over2", 4097), status=413,
                     code="payload_too_large")

    def test_chunked_over_limit(self):
        """No Content-Length: the body is counted as it arrives."""
        s = self.connect()
        s.sendall(b"POST /v1/machines HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        body = self.padded("ep-mb-chunk", 3 * 4096)
        try:
            for i in range(0, len(body), 1000):
                c = body[i:i + 1000]
                s.sendall(b"%x\r\n%s\r\n" % (len(c), c))
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the end: the answer is still there
        status, headers, rbody, _, _ = read_response(s)
        self.check_413(status, headers, rbody)
        s.close()
        self.problem("GET", "/v1/machines/ep-mb-chunk", status=404)
        # A chunked body within the limit is served.
        s = self.connect()
        body = self.padded("ep-mb-chunk2", 3000)
        s.sendall(b"POST /v1/machines HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                  + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 700]),
                                                body[i:i + 700])
                             for i in range(0, len(body), 700))
                  + b"0\r\n\r\n")
        status, _, rbody, complete, _ = read_response(s)
        s.close()
        self.assertEqual(status, 201, rbody)
        self.assertTrue(complete)
        self.assertEqual(json.loads(rbody)["id"], "ep-mb-chunk2")


class MaxMachines(vmlab.DaemonTest):
    daemon_args = ("--max-machines", "3")

    def test_limit(self):
        for i in range(3):
            self.machine("ep-mx-%d" % i, memory="32MiB", churn=0)
        # The server's state forbids it: 409 (docs/problems.md).
        p = self.problem("POST", "/v1/machines", {"id": "ep-mx-3"},
                         status=409, code="too_many_machines")
        self.assertIn("3", p["detail"])
        self.problem("POST", "/v1/machines/ep-mx-0/clone", {"id": "ep-mx-c"},
                     status=409, code="too_many_machines")
        self.problem("GET", "/v1/machines/ep-mx-3", status=404)
        ids = [m["id"] for m in self.ok("GET", "/v1/machines")["items"]]
        self.assertEqual(ids, ["ep-mx-0", "ep-mx-1", "ep-mx-2"])
        self.ok("DELETE", "/v1/machines/ep-mx-1", status=204)
        self.machine("ep-mx-3", memory="32MiB")
        self.problem("POST", "/v1/machines", {}, status=409,
                     code="too_many_machines")


class Service(vmlab.DaemonTest):
    """/healthz, /v1 and /metrics on a daemon of its own."""

    def metrics(self):
        r = self.req("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        ct = r.headers.get("content-type", "")
        self.assertTrue(ct.startswith("text/plain"), ct)
        self.assertIn("version=0.0.4", ct)
        return parse_metrics(r.body)

    def test_healthz(self):
        r = self.req("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith(
            "application/json"))
        self.assertEqual(r.json, {"status": "ok"})
        self.problem("POST", "/healthz", {}, status=405,
                     code="method_not_allowed")

    def test_index_links(self):
        idx = self.ok("GET", "/v1")
        self.assertEqual(idx["links"]["machines"], "/v1/machines")
        self.assertEqual(idx["links"]["openapi"], "/v1/openapi.json")
        for name, href in idx["links"].items():
            if "{" not in href:
                self.assertEqual(self.req("GET", href).status, 200, href)
        v = run("--version").stdout.split()[1]
        self.assertEqual(idx["version"], v)

    def test_metrics_format_and_counters(self):
        m1, types = self.metrics()
        self.assertEqual(types.get("vmlab_requests_total"), "counter")
        self.assertEqual(types.get("vmlab_request_duration_seconds"),
                         "histogram")
        for g in ("vmlab_machines", "vmlab_processes", "vmlab_frames_in_use"):
            self.assertEqual(types.get(g), "gauge", g)
            self.assertIn((g, ()), m1)

        def req_total(m, route, status):
            return m.get(("vmlab_requests_total",
                          (("route", route), ("status", str(status)))), 0)

        for _ in range(3):
            self.ok("GET", "/healthz")
        self.problem("GET", "/v1/no-such-thing", status=404)
        self.machine("ep-met", churn=0)
        self.ok("POST", "/v1/machines/ep-met/kmalloc", {"size": 8},
                status=201)
        self.problem("POST", "/v1/machines/ep-met/kfree",
                     {"va": "0x1000"}, status=None)
        m2, _ = self.metrics()
        self.assertEqual(req_total(m2, "/healthz", 200) -
                         req_total(m1, "/healthz", 200), 3)
        self.assertEqual(req_total(m2, "/metrics", 200) -
                         req_total(m1, "/metrics", 200), 1)
        self.assertEqual(req_total(m2, "/v1/machines/{m}/kmalloc", 201) -
                         req_total(m1, "/v1/machines/{m}/kmalloc", 201), 1)

        def by_status(m, status):
            return sum(v for (n, labels), v in m.items()
                       if n == "vmlab_requests_total"
                       and ("status", str(status)) in labels)
        # 404: the unknown path, and self.machine()'s DELETE of a
        # machine that is not there yet.
        self.assertEqual(by_status(m2, 404) - by_status(m1, 404), 2)
        self.assertEqual(req_total(m2, "/v1/machines/{m}", 404) -
                         req_total(m1, "/v1/machines/{m}", 404), 1)
        # Routes are patterns, never a machine's id.
        for (n, labels), _ in m2.items():
            for k, v in labels:
                self.assertNotIn("ep-met", v)
        # Each request since the first scrape: 3 + 1 + 2 (DELETE, POST
        # of self.machine) + 2 + the first scrape itself.
        count = ("vmlab_request_duration_seconds_count", ())
        self.assertEqual(m2[count] - m1[count], 9)
        total = sum(v for (n, _), v in m2.items()
                    if n == "vmlab_requests_total")
        self.assertEqual(total, m2[count])
        buckets = sorted(((float(dict(labels)["le"]), v)
                          for (n, labels), v in m2.items()
                          if n == "vmlab_request_duration_seconds_bucket"))
        self.assertGreaterEqual(len(buckets), 2)
        self.assertEqual(buckets[-1][0], float("inf"))
        self.assertEqual(buckets[-1][1], m2[count])
        for (_, a), (_, b) in zip(buckets, buckets[1:]):
            self.assertLessEqual(a, b)
        self.assertGreater(m2[("vmlab_request_duration_seconds_sum", ())],
                           m1[("vmlab_request_duration_seconds_sum", ())])

    def test_metrics_gauges(self):
        m0, _ = self.metrics()

        def delta(m, name):
            return m[(name, ())] - m0[(name, ())]
        a = self.machine("ep-gauge-a", churn=0)
        b = self.machine("ep-gauge-b", arch="i386", churn=0)
        m1, _ = self.metrics()
        self.assertEqual(delta(m1, "vmlab_machines"), 2)
        self.assertEqual(delta(m1, "vmlab_frames_in_use"),
                         a["frames_in_use"] + b["frames_in_use"])
        p = self.ok("POST", "/v1/machines/ep-gauge-a/processes", {},
                    status=201)
        self.ok("POST", "/v1/machines/ep-gauge-b/processes", {}, status=201)
        # kmalloc_large of 16 KiB: one order-2 block, four frames.
        self.ok("POST", "/v1/machines/ep-gauge-a/kmalloc",
                {"size": "16KiB"}, status=201)
        after_a = self.ok("GET", "/v1/machines/ep-gauge-a")
        after_b = self.ok("GET", "/v1/machines/ep-gauge-b")
        m2, _ = self.metrics()
        self.assertEqual(delta(m2, "vmlab_processes"), 2)
        self.assertEqual(delta(m2, "vmlab_frames_in_use"),
                         after_a["frames_in_use"] + after_b["frames_in_use"])
        self.ok("DELETE", "/v1/machines/ep-gauge-a/processes/%d" % p["pid"],
                status=204)
        self.ok("DELETE", "/v1/machines/ep-gauge-b", status=204)
        m3, _ = self.metrics()
        self.assertEqual(delta(m3, "vmlab_machines"), 1)
        self.assertEqual(delta(m3, "vmlab_processes"), 0)
        self.assertEqual(
            delta(m3, "vmlab_frames_in_use"),
            self.ok("GET", "/v1/machines/ep-gauge-a")["frames_in_use"])
        self.ok("DELETE", "/v1/machines/ep-gauge-a", status=204)
        m4, _ = self.metrics()
        for g in ("vmlab_machines", "vmlab_processes", "vmlab_frames_in_use"):
            self.assertEqual(delta(m4, g), 0, g)


class Parallel(vmlab.DaemonTest):
    daemon_args = ("--threads", "4")

    def test_concurrent_mutations_keep_versions(self):
        """Two machines mutated from several threads each: every success
        gets its own version, and each machine ends at the number of
        successful mutations on it (refusals count for nothing)."""
        mids = ("ep-par-a", "ep-par-b")
        for mid in mids:
            self.machine(mid, churn=0)
        nthreads, per = 4, 20 * SCALE
        lock = threading.Lock()
        ok_versions = {mid: [] for mid in mids}
        refused = {mid: 0 for mid in mids}
        errors = []

        def worker(mid, seed):
            conn = http.client.HTTPConnection("127.0.0.1", self.daemon.port,
                                              timeout=60)
            try:
                for i in range(per):
                    kind = (seed + i) % 5
                    headers = {"Content-Type": "application/json"}
                    if kind == 3:   # a refusal: firmware, never kmalloc'd
                        body = {"va": "0xffff888000005000"}
                        path = "/kfree"
                    elif kind == 4:  # a stale condition
                        body = {"size": 16}
                        path = "/kmalloc"
                        headers["If-Match"] = '"999999"'
                    elif kind == 2:
                        body = {"order": i % 3}
                        path = "/pages"
                    else:
                        body = {"size": 8 + 40 * ((seed * 7 + i) % 50)}
                        path = "/kmalloc"
                    conn.request("POST", "/v1/machines/%s%s" % (mid, path),
                                 json.dumps(body), headers)
                    r = conn.getresponse()
                    data = json.loads(r.read())
                    with lock:
                        if r.status == 201:
                            v = data["version"]
                            if r.getheader("ETag") != '"%d"' % v:
                                errors.append(("etag", r.getheader("ETag"),
                                               v))
                            ok_versions[mid].append(v)
                        elif r.status in (409, 412):
                            refused[mid] += 1
                        else:
                            errors.append((r.status, data))
                    if i % 4 == 0:
                        conn.request("GET", "/v1/machines/" + mid)
                        g = conn.getresponse()
                        json.loads(g.read())
                        if g.status != 200:
                            errors.append(("get", g.status))
            except Exception as e:  # reported below, with the rest
                with lock:
                    errors.append(repr(e))
            finally:
                conn.close()
        threads = [threading.Thread(target=worker, args=(mid, s))
                   for mid in mids for s in range(nthreads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        for mid in mids:
            n = len(ok_versions[mid])
            self.assertEqual(sorted(ok_versions[mid]), list(range(1, n + 1)),
                             mid)
            self.assertGreater(refused[mid], 0)
            self.assertEqual(n + refused[mid], nthreads * per)
            self.assertEqual(self.ok("GET", "/v1/machines/" + mid)["version"],
                             n, mid)


class Signals(Raw, unittest.TestCase):
    """SIGTERM and SIGINT: requests in flight end cleanly, exit 0."""

    def setUp(self):
        self.daemon = None

    def tearDown(self):
        if self.daemon:
            if self.daemon.proc.poll() is None:
                self.daemon.proc.kill()
                self.daemon.proc.wait()
            self.daemon.err.close()

    def start(self, *args):
        self.daemon = vmlab.Daemon(*args).start()
        return self.daemon

    def call(self, method, path, body=None):
        r = vmlab.curl(self.daemon.url, method, path, body)
        self.assertLess(r.status, 300, r)
        return r.json

    def finish(self, sig):
        d = self.daemon
        d.proc.send_signal(sig)
        try:
            status = d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("vmlabd did not stop within 30 s of signal %d" % sig)
        err = d.stderr()
        self.assertIsNone(vmlab.SANITIZER.search(err), err)
        self.assertEqual(status, 0, err)
        return err

    def test_sigterm_with_requests_in_flight(self):
        """SPEC 3: shutdown finishes the requests in flight. Eight batch
        translations are sent; four of them have begun to answer (their
        clients read slowly) when SIGTERM arrives. Each request must get
        its whole answer, or (for one not yet started) a close with no
        byte of answer: never a truncated one."""
        self.start("--threads", "2")
        self.call("POST", "/v1/machines", {"id": "ep-sig", "churn": 0})
        self.call("POST", "/v1/machines/ep-sig/processes", {})
        items = [{"va": "0x400000", "pid": 1, "explain": True}] * 10000
        body = json.dumps({"items": items}).encode()
        req = (b"POST /v1/machines/ep-sig/translate/batch HTTP/1.1\r\n"
               b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\nConnection: close\r\n\r\n"
               % len(body)) + body
        n = 8
        ready = threading.Barrier(n + 1, timeout=60)
        go = threading.Event()
        results = [None] * n

        def client(i):
            s = None
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
                s.connect(("127.0.0.1", self.daemon.port))
                s.sendall(req)
                first = b""
                if i % 2 == 0:
                    # Wait for the answer to begin, then stop reading.
                    s.settimeout(30)
                    first = s.recv(16)
            except OSError as e:
                results[i] = ("error before SIGTERM", repr(e))
                first = None
            try:
                ready.wait()
            except threading.BrokenBarrierError:
                pass
            if first is None:
                return
            go.wait(60)
            status, headers, rbody, complete, nbytes = read_response(
                s, 30, first)
            s.close()
            results[i] = (first != b"", status, complete, nbytes, rbody,
                          headers)

        threads = [threading.Thread(target=client, args=(i,))
                   for i in range(n)]
        for t in threads:
            t.start()
        ready.wait()
        self.daemon.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        go.set()
        for t in threads:
            t.join(60)
        try:
            status = self.daemon.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("vmlabd did not stop within 30 s of SIGTERM")
        err = self.daemon.stderr()
        self.assertIsNone(vmlab.SANITIZER.search(err), err)
        self.assertEqual(status, 0, err)
        answered = 0
        for i, r in enumerate(results):
            self.assertIsNotNone(r, i)
            self.assertNotEqual(r[0], "error before SIGTERM", r)
            started, status, complete, nbytes = r[:4]
            if started:
                # Its answer had begun: it must arrive whole.
                self.assertEqual(status, 200, (i, r[:4]))
                self.assertTrue(complete, "request %d: answer cut after %d "
                                "bytes" % (i, nbytes))
            elif nbytes:
                self.assertTrue(complete, "request %d: answer cut after %d "
                                "bytes" % (i, nbytes))
                self.assertEqual(status, 200)
                self.assertEqual(len(json.loads(r[4])["results"]), 10000)
            if complete:
                answered += 1
        self.assertGreaterEqual(answered, n // 2)

    def test_sigterm_idle(self):
        self.start()
        self.call("GET", "/healthz")
        err = self.finish(signal.SIGTERM)
        self.assertIn("SIGTERM", err)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", self.daemon.port),
                                     timeout=5).close()

    def test_sigint(self):
        self.start()
        self.call("POST", "/v1/machines", {"id": "ep-int", "churn": 0})
        # A keep-alive connection left open does not hold the exit.
        s = self.connect()
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status, _, _, complete, _ = read_response(s)
        self.assertEqual((status, complete), (200, True))
        self.finish(signal.SIGINT)
        s.close()

    def test_db_option_accepted(self):
        with tempfile.TemporaryDirectory() as tmp:
            self.start("--db", os.path.join(tmp, "vmlab.db"))
            self.assertEqual(self.call("GET", "/healthz"), {"status": "ok"})
            self.finish(signal.SIGTERM)


if __name__ == "__main__":
    vmlab.main()
