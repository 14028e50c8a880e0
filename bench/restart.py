#!/usr/bin/env python3
"""restart.py - how long until every machine is back after a crash.

Creates N machines (default 10,000) with 10 operations each on a vmlabd
of its own (127.0.0.1, a port it picks, its own database), notes every
digest, kills it with SIGKILL (no clean stop, so each machine replays its
log from the last snapshot), starts it again and measures the time from
the start until every machine has answered GET /v1/machines/{m} with its
digest from before. Prints `restart_10k_s SECONDS s` (the name keeps
10k whatever N is).

usage: bench/restart.py VMLABD [N]
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time


def start(vmlabd, db, err):
    p = subprocess.Popen([vmlabd, "--listen", "127.0.0.1:0", "--db", db],
                         stderr=err, stdout=subprocess.DEVNULL)
    while True:
        err.seek(0)
        m = re.search(r"127\.0\.0\.1:(\d+)/", err.read())
        if m:
            return p, int(m.group(1))
        if p.poll() is not None:
            err.seek(0)
            sys.exit("vmlabd did not start: " + err.read())
        time.sleep(0.01)


def call(conn, method, path, body=None):
    conn.request(method, path, json.dumps(body) if body is not None else None)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit("%s %s -> %d %s" % (method, path, r.status, data[:200]))
    return json.loads(data) if data else None


OPS = [("POST", "/processes", {"name": "p", "populate": False}),
       ("POST", "/kmalloc", {"size": 100}),
       ("POST", "/kmalloc", {"size": 5000}),
       ("POST", "/vmalloc", {"size": 8192}),
       ("POST", "/pages", {"order": 1}),
       ("POST", "/processes/1/mmap", {"length": 8192, "populate": False}),
       ("POST", "/cpus/0/switch", {"pid": 1}),
       ("POST", "/kmalloc", {"size": 32}),
       ("POST", "/processes", {"name": "q", "populate": False}),
       ("POST", "/cpus/0/switch", {"pid": 2})]


def main():
    vmlabd = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    threads = 8
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR", ".")) as tmp:
        db = os.path.join(tmp, "v.db")
        err = open(os.path.join(tmp, "err"), "w+")
        proc, port = start(vmlabd, db, err)
        digests = {}

        def fill(k):
            c = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(k, n, threads):
                mid = "r%d" % i
                call(c, "POST", "/v1/machines",
                     {"id": mid, "memory": "64MiB"})
                for method, path, body in OPS:
                    call(c, method, "/v1/machines/" + mid + path, body)
                digests[mid] = call(c, "GET", "/v1/machines/" + mid)["digest"]

        ts = [threading.Thread(target=fill, args=(k,)) for k in range(threads)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err.seek(0)
        err.truncate()

        t0 = time.monotonic()
        proc, port = start(vmlabd, db, err)
        bad = []

        def check(k):
            c = http.client.HTTPConnection("127.0.0.1", port)
            for i in range(k, n, threads):
                mid = "r%d" % i
                if call(c, "GET", "/v1/machines/" + mid)["digest"] != \
                        digests[mid]:
                    bad.append(mid)

        ts = [threading.Thread(target=check, args=(k,))
              for k in range(threads)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        elapsed = time.monotonic() - t0
        proc.send_signal(signal.SIGTERM)
        proc.wait()
        if bad:
            sys.exit("digests differ after restart: %s" % bad[:5])
        print("restart_10k_s %.2f s" % elapsed)


if __name__ == "__main__":
    main()
