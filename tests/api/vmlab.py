"""vmlab.py - what the HTTP tests share: a real vmlabd, and curl.

Each test module starts its own vmlabd on 127.0.0.1 with a port the
daemon picks (--listen 127.0.0.1:0; the port is read from its first line
on stderr), talks to it with curl, and stops it by PID with SIGTERM. A
daemon that does not exit 0, or whose stderr carries a sanitizer report,
fails the test that stopped it.

Responses can be checked against docs/openapi.json (jsonschema, Draft
2020-12, as OpenAPI 3.1 uses).
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SRCDIR = os.environ.get("VMLAB_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
VMLABD = os.environ.get("VMLABD") or os.path.join(SRCDIR, "build", "server",
                                                  "vmlabd")
SANITIZER = re.compile(r"(ERROR: AddressSanitizer|runtime error:|"
                       r"ERROR: LeakSanitizer|SUMMARY: UndefinedBehavior)")


class Daemon:
    """A vmlabd of our own: start(), url, stop() -> (exit status, stderr)."""

    def __init__(self, *args):
        self.args = list(args)
        self.proc = None
        self.port = None
        self.err = tempfile.TemporaryFile(mode="w+")

    def start(self):
        cmd = [VMLABD, "--listen", "127.0.0.1:0", "--threads", "2"]
        self.proc = subprocess.Popen(cmd + self.args, stdout=subprocess.DEVNULL,
                                     stderr=self.err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.err.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/",
                          self.err.read())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        self.err.seek(0)
        raise RuntimeError("vmlabd did not start: " + self.err.read())

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        """SIGTERM by PID; returns (exit status, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, self.stderr()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "<%d %s>" % (self.status, self.body[:300])


def curl(base, method, path, body=None, headers=(), raw=None):
    """One request with curl; body is JSON-encoded unless raw (bytes) is
    given. Returns a Response."""
    cmd = ["curl", "-sS", "-X", method, "-D", "-", "--max-time", "60",
           "-H", "Expect:"]
    for h in headers:
        cmd += ["-H", h]
    data = None
    if raw is not None:
        data = raw
    elif body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        cmd += ["--data-binary", "@-"]
    cmd.append(base + path)
    out = subprocess.run(cmd, input=data, capture_output=True, check=True)
    head, _, payload = out.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return Response(status, hdrs, payload.decode("utf-8", "replace"))


class DaemonTest(unittest.TestCase):
    """A TestCase with one daemon for the class; self.req(...) is curl."""

    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(*cls.daemon_args).start()

    @classmethod
    def tearDownClass(cls):
        status, err = cls.daemon.stop()
        if status != 0 or SANITIZER.search(err):
            raise AssertionError("vmlabd exit %s; stderr:\n%s" % (status, err))

    def req(self, method, path, body=None, headers=(), raw=None):
        r = curl(self.daemon.url, method, path, body, headers, raw)
        self.assertIsNone(SANITIZER.search(self.daemon.stderr()),
                          self.daemon.stderr())
        return r

    def ok(self, method, path, body=None, status=None, headers=()):
        """A request that must succeed (2xx, or exactly status)."""
        r = self.req(method, path, body, headers)
        if status is None:
            self.assertTrue(200 <= r.status < 300, r)
        else:
            self.assertEqual(r.status, status, r)
        return r.json

    def problem(self, method, path, body=None, status=None, code=None,
                headers=(), raw=None):
        """A request that must be refused with an RFC 9457 problem."""
        r = self.req(method, path, body, headers, raw)
        if status is not None:
            self.assertEqual(r.status, status, r)
        self.assertEqual(r.headers.get("content-type"),
                         "application/problem+json", r)
        for k in ("type", "title", "status", "detail", "code"):
            self.assertIn(k, r.json, r)
        self.assertEqual(r.json["status"], r.status)
        self.assertEqual(r.json["type"], "/problems/" + r.json["code"])
        if code is not None:
            self.assertEqual(r.json["code"], code, r)
        return r.json

    def machine(self, mid, **fields):
        """Creates machine mid (deleting any old one) and returns it."""
        self.req("DELETE", "/v1/machines/" + mid)
        fields["id"] = mid
        return self.ok("POST", "/v1/machines", fields, status=201)


def main():
    unittest.main(verbosity=2)
