"""vmlab.py - what the HTTP tests share: a real vmlabd, and curl.

Each test module starts its own vmlabd on 127.0.0.1 with a port the
daemon picks (--listen 127.0.0.1:0; the port is read from its first line
on stderr), talks to it with curl, and stops it by PID with SIGTERM. A
daemon that does not exit 0, or whose stderr carries a sanitizer report,
fails the test that stopped it.

Every response DaemonTest.req() receives is validated against
docs/openapi.json (jsonschema, Draft 2020-12, as OpenAPI 3.1 uses): the
request path is matched against the route table (routes_dump) segment by
segment, and the body must fit the operation's response for that status
and Content-Type; a status the operation does not list is itself a
failure. A path that matches no route must be answered 404 no_such_route,
a known path with another method 405 method_not_allowed.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import warnings

SRCDIR = os.environ.get("VMLAB_SRCDIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
VMLABD = os.environ.get("VMLABD") or os.path.join(SRCDIR, "build", "server",
                                                  "vmlabd")
ROUTES_DUMP = os.environ.get("VMLAB_ROUTES_DUMP") or os.path.join(
    SRCDIR, "build", "tests", "api", "routes_dump")
OPENAPI = os.path.join(SRCDIR, "docs", "openapi.json")
SANITIZER = re.compile(r"(ERROR: AddressSanitizer|runtime error:|"
                       r"ERROR: LeakSanitizer|SUMMARY: UndefinedBehavior)")


class Daemon:
    """A vmlabd of our own: start(), url, stop() -> (exit status, stderr)."""

    def __init__(self, *args):
        self.args = list(args)
        self.proc = None
        self.port = None
        self.err = tempfile.TemporaryFile(mode="w+")
        # Each daemon has its own database, unless the test names one.
        self.dir = tempfile.TemporaryDirectory(prefix="vmlabd-")
        if "--db" not in self.args:
            self.args += ["--db", os.path.join(self.dir.name, "vmlab.db")]

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

    @property
    def db(self):
        return self.args[self.args.index("--db") + 1]

    def admin_token(self):
        """The admin's token of a daemon started with --auth on."""
        if "--admin-token-file" in self.args:
            path = self.args[self.args.index("--admin-token-file") + 1]
        else:
            path = self.db + ".admin-token"
        with open(path) as f:
            return f.read().strip()

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


_route_table = None


def route_table():
    """The route table and problem catalogue as routes_dump prints them
    (run once per process)."""
    global _route_table
    if _route_table is None:
        out = subprocess.run([ROUTES_DUMP], capture_output=True, check=True)
        _route_table = json.loads(out.stdout)
    return _route_table


class OpenAPI:
    """docs/openapi.json and the route table, with validators compiled
    once per (operation, status, media type)."""

    # What a path that the route table does not serve is answered with
    # (with auth on, the token is checked first: 401 or 429).
    NO_ROUTE = {401: "Unauthorized", 404: "NoSuchRoute",
                413: "PayloadTooLarge", 429: "TooManyRequests"}
    NO_METHOD = {401: "Unauthorized", 405: "MethodNotAllowed",
                 413: "PayloadTooLarge", 429: "TooManyRequests"}

    def __init__(self, path=OPENAPI):
        import jsonschema
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.routes = [(r["method"], r["pattern"], r["pattern"].split("/"))
                       for r in route_table()["routes"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            self.resolver = jsonschema.RefResolver.from_schema(self.doc)
        self.validator_class = jsonschema.Draft202012Validator
        self.validators = {}
        self.seen = set()   # (method, pattern, status) validated
        # A RefResolver keeps a scope stack: one validation at a time.
        self.lock = threading.Lock()

    def deref(self, obj):
        """Follows a local $ref ("#/components/...") in the document."""
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("not a local $ref: " + ref)
            obj = self.doc
            for part in ref[2:].split("/"):
                obj = obj[part.replace("~1", "/").replace("~0", "~")]
        return obj

    def match(self, method, path):
        """(pattern, path_known): the route serving method and path, as
        api/routes.c matches ({name} is one non-empty segment; one too
        long to be an id still matches and is answered not_found)."""
        segs = path.split("/")
        known = False
        for m, pattern, psegs in self.routes:
            if len(psegs) != len(segs):
                continue
            if all(len(s) > 0 if p.startswith("{") else p == s
                   for p, s in zip(psegs, segs)):
                known = True
                if m == method:
                    return pattern, True
        return None, known

    def validator(self, key, schema):
        v = self.validators.get(key)
        if v is None:
            v = self.validator_class(schema, resolver=self.resolver)
            self.validators[key] = v
        return v

    def check(self, method, path, r):
        """None when response r fits the document, else what is wrong."""
        with self.lock:
            err = self._check(method, path, r)
        return err

    def _check(self, method, path, r):
        raw_path = path.split("?", 1)[0]
        # The daemon sees the path %-decoded (libmicrohttpd unescapes it).
        path = urllib.parse.unquote_to_bytes(raw_path).decode("latin-1")
        pattern, known = self.match(method, path)
        where = "%s %s -> %d" % (method, raw_path, r.status)
        if pattern is None:
            names = self.NO_METHOD if known else self.NO_ROUTE
            if r.status not in names:
                return "%s: %s must be answered %s" % (
                    where, "a known path with another method" if known
                    else "a path that matches no route",
                    " or ".join(map(str, sorted(names))))
            resp = self.doc["components"]["responses"][names[r.status]]
            key = ("#", names[r.status])
        else:
            op = self.doc["paths"].get(pattern, {}).get(method.lower())
            if op is None:
                return "%s: %s %s is not in the document" % (
                    where, method, pattern)
            resp = op["responses"].get(str(r.status))
            if resp is None:
                return "%s: status %d is not documented for %s %s" % (
                    where, r.status, method, pattern)
            resp = self.deref(resp)
            key = (method, pattern, r.status)
        for name, h in resp.get("headers", {}).items():
            h = self.deref(h)
            if h.get("required") and name.lower() not in r.headers:
                return "%s: header %s missing" % (where, name)
        content = resp.get("content")
        if not content:
            if r.body:
                return "%s: a body where the document has none: %r" % (
                    where, r.body[:200])
            self.seen.add(key)
            return None
        ctype = r.headers.get("content-type", "")
        media = ctype.split(";", 1)[0].strip().lower()
        if media not in content:
            return "%s: Content-Type %r, the document has %s" % (
                where, ctype, sorted(content))
        schema = content[media].get("schema", {})
        if media == "application/json" or media.endswith("+json"):
            try:
                instance = json.loads(r.body)
            except ValueError as e:
                return "%s: body is not JSON (%s): %r" % (where, e,
                                                          r.body[:200])
        else:
            instance = r.body
        v = self.validator(key + (media,), schema)
        errors = list(v.iter_errors(instance))
        if not errors:
            self.seen.add(key)
            return None
        import jsonschema
        e = jsonschema.exceptions.best_match(errors)
        return "%s: body does not fit the document at %s: %s\nbody: %s" % (
            where, "/" + "/".join(map(str, e.absolute_path)), e.message,
            r.body[:600])


_openapi = None


def openapi():
    """The shared OpenAPI checker (loaded once per process)."""
    global _openapi
    if _openapi is None:
        _openapi = OpenAPI()
    return _openapi


def check_response(method, path, r):
    """None when r (a Response to method path) fits docs/openapi.json,
    else a description of what does not."""
    return openapi().check(method, path, r)


class DaemonsTest(unittest.TestCase):
    """Tests that start their own daemons, over databases in a temporary
    folder of the test's own (path()); whatever is still running at the
    end is killed by PID."""

    TMP_PREFIX = "vmlab-"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix=self.TMP_PREFIX)
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            if d.proc and d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait()
            d.err.close()
            d.dir.cleanup()
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def stop(self, d):
        """A clean stop (SIGTERM): exit 0, no sanitizer report; its
        stderr."""
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(SANITIZER.search(err), err)
        return err

    def crash(self, d):
        """SIGKILL: no shutdown at all, and no sanitizer report."""
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        self.assertEqual(d.proc.returncode, -signal.SIGKILL)
        self.assertIsNone(SANITIZER.search(d.stderr()), d.stderr())


class DaemonTest(unittest.TestCase):
    """A TestCase with one daemon for the class; self.req(...) is curl."""

    daemon_args = ()
    # The bearer token every request carries unless one is given (auth on).
    token = None

    @classmethod
    def setUpClass(cls):
        cls.daemon = Daemon(*cls.daemon_args).start()

    @classmethod
    def tearDownClass(cls):
        status, err = cls.daemon.stop()
        if status != 0 or SANITIZER.search(err):
            raise AssertionError("vmlabd exit %s; stderr:\n%s" % (status, err))

    def req(self, method, path, body=None, headers=(), raw=None, token=None):
        """One request; token (or the class's token) as the bearer;
        token="" sends none."""
        token = self.token if token is None else token
        if token:
            headers = tuple(headers) + ("Authorization: Bearer " + token,)
        r = curl(self.daemon.url, method, path, body, headers, raw)
        self.assertIsNone(SANITIZER.search(self.daemon.stderr()),
                          self.daemon.stderr())
        err = check_response(method, path, r)
        if err:
            self.fail("response outside docs/openapi.json: " + err)
        return r

    def ok(self, method, path, body=None, status=None, headers=(),
           token=None):
        """A request that must succeed (2xx, or exactly status)."""
        r = self.req(method, path, body, headers, token=token)
        if status is None:
            self.assertTrue(200 <= r.status < 300, r)
        else:
            self.assertEqual(r.status, status, r)
        return r.json

    def problem(self, method, path, body=None, status=None, code=None,
                headers=(), raw=None, token=None):
        """A request that must be refused with an RFC 9457 problem."""
        r = self.req(method, path, body, headers, raw, token=token)
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
