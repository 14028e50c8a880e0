"""test_smoke.py - the benchmark suite still builds and runs (make check).

Runs bench/run.py, every phase, with tiny loop counts (1 s per wrk run,
20 machines) and checks that every figure of the issue's table is printed
once as `name value unit` and recorded in results.json with its goal and
the options; that a wrong answer during a wrk run fails the suite (the
sampled check of check.lua), as does a non-2xx answer; and that
bench/median.py makes its table and rewrites a README's. It measures
nothing: speed is for `make bench`.

Needs wrk (Debian's package; scripts/setup.sh installs it): without it
the test is skipped (exit 77).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

SRCDIR = os.environ.get("VMLAB_SRCDIR",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(SRCDIR, "bench")
sys.path.insert(0, BENCH)
import run  # noqa: E402

VMLABD = os.environ.get("VMLABD", "server/vmlabd")
BUILDDIR = os.path.dirname(os.path.dirname(os.path.abspath(VMLABD)))

TINY = {"VMLAB_BENCH_SECONDS": "1", "VMLAB_BENCH_LOOPS": "20000",
        "VMLAB_BENCH_CREATES": "20", "VMLAB_BENCH_MACHINES": "20",
        "VMLAB_BENCH_SAMPLE": "10"}


class Suite(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="bench-smoke.")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_suite(self):
        out = os.path.join(self.tmp, "results.json")
        # Only the tiny knobs: none of a caller's own.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VMLAB_BENCH_")}
        env.update(TINY, VMLAB_BENCH_DIR=self.tmp)
        p = subprocess.run([sys.executable, os.path.join(BENCH, "run.py"),
                            "--builddir", BUILDDIR, "--out", out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout, out

    def test_every_figure(self):
        stdout, out = self.run_suite()
        names = [name for name, _, _, _ in run.FIGURES]
        self.assertEqual(len(names), 14)
        lines = stdout.splitlines()
        self.assertEqual(sorted(line.split()[0] for line in lines),
                         sorted(names), stdout)
        for line in lines:
            name, value, unit = line.split()
            self.assertEqual(unit, run.UNITS[name], line)
            self.assertGreater(float(value), 0, line)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual(list(r["figures"]), names)
        for name, _, _, goal in run.FIGURES:
            fig = r["figures"][name]
            self.assertGreater(fig["value"], 0, name)
            if goal is None:
                self.assertEqual(fig["goal"], "measured")
                self.assertIsNone(fig["met"])
            else:
                self.assertIn(fig["met"], (True, False), name)
                self.assertGreater(fig["limit"], 0, name)
        # A relative goal is computed against the same run's baseline.
        t = r["figures"]["http_translate_rps"]
        self.assertAlmostEqual(
            t["limit"], 0.85 * r["figures"]["http_healthz_rps"]["value"])
        o = r["options"]
        self.assertEqual(o["seconds"], 1)
        self.assertEqual(o["machines"], 20)
        self.assertEqual(o["durability"], "full")
        self.assertGreater(o["vmlabd_threads"], 0)
        self.assertEqual(o["host_cpus"], os.cpu_count())
        self.assertTrue(r["versions"]["vmlabd"].startswith("vmlabd"))
        self.assertTrue(r["versions"]["sqlite"])
        self.assertEqual(len(r["host"]["loadavg_start"]), 3)
        self.assertGreater(r["extra"]["http_answers_checked"], 3)
        # The temporary databases are gone.
        self.assertEqual([f for f in os.listdir(self.tmp)
                          if f.startswith("tmp.")], [])

        # median.py: the table from result files, into a README.
        readme = os.path.join(self.tmp, "README.md")
        with open(readme, "w") as f:
            f.write("# x\n\n<!-- bench-table-begin -->\nold\n"
                    "<!-- bench-table-end -->\n\nafter\n")
        p = subprocess.run([sys.executable,
                            os.path.join(BENCH, "median.py"),
                            "--readme", readme, out, out, out],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = [line for line in p.stdout.splitlines()
                if line.startswith("| `")]
        self.assertEqual([row.split("`")[1] for row in rows], names)
        self.assertIn("Median of 3 runs", p.stdout)
        with open(readme) as f:
            text = f.read()
        self.assertNotIn("\nold\n", text)
        self.assertIn("| `restart_10k_s` |", text)
        self.assertTrue(text.endswith("<!-- bench-table-end -->\n\n"
                                      "after\n"))


class Checks(unittest.TestCase):
    """The sampled check of the wrk scripts catches a wrong answer."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="bench-smoke.")
        cls.d = run.Daemon(VMLABD, os.path.join(cls.tmp, "v.db"))
        d = cls.d
        d.call("POST", "/v1/machines", {"id": "c0", "seed": 1}, 201)
        cls.pid = d.call("POST", "/v1/machines/c0/processes",
                         {"name": "c"}, 201)["pid"]
        cls.start = d.call("POST", "/v1/machines/c0/processes/1/mmap",
                           {"length": 16 * 4096}, 201)["start"]

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def translate(self, script, pages, *more):
        return run.wrk(self.d.url + "/", os.path.join(BENCH, script),
                       ["c0", self.pid, self.start, pages, 7, 1] +
                       list(more), 1, 1, 2)

    def test_right_answers_pass(self):
        r = self.translate("translate.lua", 16)
        self.assertGreater(r["checked"], 0)
        self.assertEqual(r["checked"], r["requests"])
        self.assertGreater(self.translate("batch.lua", 16, 10)["checked"],
                           0)

    def test_faults_fail(self):
        # Addresses beyond the 16 mapped pages fault: "ok":false.
        with self.assertRaisesRegex(run.BenchError,
                                    "sampled answers were wrong"):
            self.translate("translate.lua", 4096)
        with self.assertRaisesRegex(run.BenchError, "not 10"):
            self.translate("batch.lua", 4096, 10)

    def test_status_fails(self):
        # No machine "nox0": every kmalloc is a 404.
        with self.assertRaisesRegex(run.BenchError, "not 201"):
            run.wrk(self.d.url + "/", os.path.join(BENCH, "kmalloc.lua"),
                    ["nox", 1], 1, 1, 1)


if __name__ == "__main__":
    if not shutil.which("wrk"):
        print("test_smoke.py: SKIP: the benchmark suite needs wrk "
              "(apt-get install wrk, or scripts/setup.sh)")
        sys.exit(77)
    unittest.main(verbosity=2)
