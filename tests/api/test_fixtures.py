"""test_fixtures.py - every schema version's database still opens.

For each tests/fixtures/schema-N.db (written by the vmlabd of schema N),
a copy is opened by the current vmlabd, which migrates it forward; each
machine must load with the version and digest recorded beside it, the
file must end at the current schema version (the newest fixture's: each
schema change adds one), and the machines must take new operations that
survive a restart.

schema-N.json is, up to schema 1, {id: {arch, version, digest}}; from
schema 2 on (tenants), {"machines": {name: {owner, arch, version, digest,
applied_by}}, "tenants": [...], "tokens": {...}, "shares": {...}}, names
being those a caller with auth off (the namespace "local") uses: its own
machines by id, the others as owner.id. Such a fixture is also opened
with --auth on: its tenants, roles, quotas, tokens, shares and the tenant
that applied each operation must all be there.
"""

import glob
import json
import os
import re
import shutil
import sqlite3
import tempfile

import vmlab

FIXTURES = os.path.join(vmlab.SRCDIR, "tests", "fixtures")


def schema_of(path):
    return int(re.search(r"schema-(\d+)\.db$", path).group(1))


class Fixtures(vmlab.DaemonTest):
    daemon_args = ()

    @classmethod
    def setUpClass(cls):
        pass  # each test starts its own daemons

    @classmethod
    def tearDownClass(cls):
        pass

    def run_daemon(self, db, *args):
        d = vmlab.Daemon("--db", db, *args).start()
        self.addCleanup(d.stop)     # if the test fails first
        self.daemon = d
        return d

    def stop(self, d):
        status, err = d.stop()
        self.assertEqual(status, 0, err)
        self.assertIsNone(vmlab.SANITIZER.search(err), err)

    def test_every_fixture_loads(self):
        found = sorted(glob.glob(os.path.join(FIXTURES, "schema-*.db")),
                       key=schema_of)
        self.assertTrue(found, "no fixtures in " + FIXTURES)
        current = schema_of(found[-1])
        for path in found:
            with self.subTest(fixture=os.path.basename(path)), \
                    tempfile.TemporaryDirectory() as tmp:
                with open(path[:-3] + ".json") as f:
                    recorded = json.load(f)
                expect = recorded.get("machines", recorded)
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
                    self.assertEqual(m["owner"], e.get("owner", "local"))
                if "tenants" in recorded:
                    self.stop(d)
                    self.check_tenants(db, recorded)
                    d = self.run_daemon(db)
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
                c = sqlite3.connect(db)
                (v,) = c.execute("PRAGMA user_version").fetchone()
                c.close()
                self.assertEqual(v, current)

    def check_tenants(self, db, recorded):
        """The fixture's tenants under --auth on: the admin sees them
        with their roles and quotas, and every machine; each recorded
        token still authenticates; shares and history's tenants are as
        recorded."""
        d = self.run_daemon(db, "--auth", "on")
        admin = d.admin_token()
        got = self.ok("GET", "/v1/tenants", token=admin)["items"]
        self.assertEqual([{k: t[k] for k in ("name", "role", "quota")}
                          for t in got], recorded["tenants"])
        roles = {t["name"]: t["role"] for t in recorded["tenants"]}
        for name, token in recorded["tokens"].items():
            me = self.ok("GET", "/v1/whoami", token=token)
            self.assertEqual((me["tenant"], me["role"]), (name, roles[name]))
        machines = recorded["machines"]
        # The admin (namespace "admin") sees every machine: its own by id.
        listed = self.ok("GET", "/v1/machines", token=admin)["items"]
        self.assertEqual(
            sorted((m["owner"], m["id"].split(".")[-1], m["digest"])
                   for m in listed),
            sorted((e["owner"], name.split(".")[-1], e["digest"])
                   for name, e in machines.items()))
        for name, e in machines.items():
            full = "%s.%s" % (e["owner"], name.split(".")[-1])
            shares = self.ok("GET", "/v1/machines/%s/shares" % full,
                             token=admin)["items"]
            self.assertEqual(shares, recorded["shares"].get(name, []), name)
            ops = self.ok("GET", "/v1/machines/%s/history" % full,
                          token=admin)["operations"]
            self.assertEqual([o["tenant"] for o in ops], e["applied_by"],
                             name)
            # Each recorded tenant sees the machine exactly when it owns
            # it, a share names it (or "*"), or it is a grader.
            for tenant, token in recorded["tokens"].items():
                grantees = {s["tenant"] for s in
                            recorded["shares"].get(name, [])}
                visible = (tenant == e["owner"] or roles[tenant] == "grader"
                           or bool(grantees & {tenant, "*"}))
                mine = name.split(".")[-1] if tenant == e["owner"] else full
                r = self.req("GET", "/v1/machines/" + mine, token=token)
                self.assertEqual(r.status, 200 if visible else 404,
                                 (tenant, name, r))
        self.stop(d)


if __name__ == "__main__":
    vmlab.main()
