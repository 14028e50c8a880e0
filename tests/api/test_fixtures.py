"""test_fixtures.py - every schema version's database still opens.

For each tests/fixtures/schema-N.db (written by the vmlabd of schema N),
a copy is opened by the current vmlabd, which migrates it forward; each
machine must load with the version and digest recorded beside it, the
file must end at the current schema version, and the machines must take
new operations that survive a restart.
"""

import glob
import json
import os
import shutil
import sqlite3
import tempfile

import vmlab

FIXTURES = os.path.join(vmlab.SRCDIR, "tests", "fixtures")


class Fixtures(vmlab.DaemonTest):
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        pass  # each test starts its own daemons

    @classmethod
    def tearDownClass(cls):
        pass

    def run_daemon(self, db):
        d = vmlab.Daemon("--db", db).start()
        self.daemon = d
        return d

    def stop(self, d):
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def test_every_fixture_loads(self):
        found = sorted(glob.glob(os.path.join(FIXTURES, "schema-*.db")))
        self.assertTrue(found, "no fixtures in " + FIXTURES)
        for path in found:
            with self.subTest(fixture=os.path.basename(path)), \
                    tempfile.TemporaryDirectory() as tmp:
                expect = json.load(open(path[:-3] + ".json"))
                db = os.path.join(tmp, "vmlab.db")
                shutil.copy(path, db)
                d = self.run_daemon(db)
                listed = self.ok("GET", "/v1/machines")["items"]
                self.assertEqual(sorted(m["id"] for m in listed),
                                 sorted(expect))
                for m in listed:
                    e = expect[m["id"]]
                    self.assertEqual((m["arch"], m["version"], m["digest"]),
                                     (e["arch"], e["version"], e["digest"]),
                                     m["id"])
                # It takes new operations, and keeps them over a restart.
                k = self.ok("POST", "/v1/machines/%s/kmalloc" % listed[0]["id"],
                            {"size": 64}, status=201)
                after = self.ok("GET", "/v1/machines/" + listed[0]["id"])
                self.stop(d)
                d = self.run_daemon(db)
                again = self.ok("GET", "/v1/machines/" + listed[0]["id"])
                self.assertEqual((again["version"], again["digest"]),
                                 (after["version"], after["digest"]))
                self.assertEqual(again["version"], k["version"])
                self.stop(d)
                with sqlite3.connect(db) as c:
                    (v,) = c.execute("PRAGMA user_version").fetchone()
                self.assertEqual(v, 1)


if __name__ == "__main__":
    vmlab.main()
