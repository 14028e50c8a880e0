"""test_tutorial.py - docs/tutorial.md is what vmlabd really prints.

Every ```console block of the tutorial holds one `$ curl ...` command and
the output it printed. This test replays the commands in order, with a
shell, against a fresh vmlabd (localhost:8080 rewritten to the daemon's
address), and compares each output with the printed one field by field:
both are parsed as JSON and compared recursively, a missing or an extra
field fails, and only the fields that differ from run to run are skipped
(a machine's `created` time, and an `id` the daemon generated). Output
that is not JSON is compared as text. The first mismatch is reported
with its command and the path of the field.

It also checks that the tutorial tells the whole story: at least 20
commands, and the steps of each topic (a) to (g).
"""

import json
import os
import re
import subprocess
import unittest

import vmlab

TUTORIAL = os.path.join(vmlab.SRCDIR, "docs", "tutorial.md")
DOC_BASE = "localhost:8080"
# What varies per run: the creation time, and ids the daemon makes up.
IGNORED_KEYS = {"created"}
GENERATED_ID = re.compile(r"^m-[0-9a-f]{12}$")


def load_steps(path=TUTORIAL):
    """[(command, printed output)] in document order."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    steps = []
    for block in re.findall(r"^```console\n(.*?)^```$", text, re.S | re.M):
        cmd, out = None, []
        for line in block.split("\n")[:-1]:
            if line.startswith("$ "):
                if cmd is not None:
                    steps.append((cmd, "\n".join(out)))
                cmd, out = line[2:], []
            elif cmd is None:
                raise ValueError("output before any command in:\n" + block)
            else:
                out.append(line)
        if cmd is None:
            raise ValueError("a console block without a command")
        steps.append((cmd, "\n".join(out)))
    return steps


def machine_of(cmd):
    """The machine id in a command's /v1/machines/{m}/... path."""
    m = re.search(r"/v1/machines/([a-z0-9][a-z0-9-]*)", cmd)
    return m.group(1) if m else None


def parse(text):
    try:
        return True, json.loads(text)
    except ValueError:
        return False, text


def first_difference(want, got, path="$"):
    """The path of the first difference between two JSON values, with
    what differs; None when they agree."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                return "%s.%s: missing (printed %r)" % (path, k, want[k])
        for k in got:
            if k not in want:
                return "%s.%s: extra field %r" % (path, k, got[k])
        for k in want:
            if k in IGNORED_KEYS:
                continue
            if (k == "id" and isinstance(want[k], str) and
                    isinstance(got[k], str) and GENERATED_ID.match(want[k])
                    and GENERATED_ID.match(got[k])):
                continue
            d = first_difference(want[k], got[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(want, list) and isinstance(got, list):
        for i, (w, g) in enumerate(zip(want, got)):
            d = first_difference(w, g, "%s[%d]" % (path, i))
            if d:
                return d
        if len(want) != len(got):
            return "%s: %d items printed, %d now" % (path, len(want),
                                                     len(got))
        return None
    # bool is an int in Python: compare types as JSON sees them.
    if type(want) is not type(got) or want != got:
        return "%s: printed %r, now %r" % (path, want, got)
    return None


def compare(printed, actual):
    """None when actual matches the printed output, else what differs."""
    is_json, want = parse(printed)
    if not is_json:
        a, b = printed.rstrip(), actual.rstrip()
        if a == b:
            return None
        return "text differs:\n--- printed\n%s\n--- now\n%s" % (a, b)
    ok, got = parse(actual)
    if not ok:
        return "$: printed JSON, now not JSON:\n%s" % actual
    return first_difference(want, got)


class TutorialFormat(unittest.TestCase):
    """The tutorial's shape and coverage, read from the file alone."""

    @classmethod
    def setUpClass(cls):
        cls.steps = load_steps()
        cls.cmds = [c for c, _ in cls.steps]

    def test_at_least_twenty_commands(self):
        self.assertGreaterEqual(len(self.steps), 20)

    def test_every_command_is_curl_to_the_documented_address(self):
        for cmd, out in self.steps:
            self.assertTrue(cmd.startswith("curl -s "), cmd)
            self.assertIn(DOC_BASE + "/", cmd)
            self.assertTrue(out.strip(), "no output printed for " + cmd)

    def test_one_command_per_block(self):
        with open(TUTORIAL, encoding="utf-8") as f:
            text = f.read()
        blocks = re.findall(r"^```console\n(.*?)^```$", text, re.S | re.M)
        for b in blocks:
            self.assertEqual(len(re.findall(r"^\$ ", b, re.M)), 1, b)

    def test_intro_says_what_differs(self):
        with open(TUTORIAL, encoding="utf-8") as f:
            intro = f.read().split("## 1.")[0]
        self.assertIn("times differ", intro)
        self.assertIn("scripts/run.sh", intro)
        self.assertIn(DOC_BASE, intro)

    def outputs(self, pattern):
        """Printed JSON outputs of the commands matching pattern."""
        res = []
        for cmd, out in self.steps:
            if re.search(pattern, cmd):
                ok, v = parse(out)
                if ok:
                    res.append((cmd, v))
        return res

    def i386_machines(self, memory=None):
        ids = set()
        for _, m in self.outputs(r"-X POST \S+/v1/machines -d"):
            if m.get("arch") == "i386" and (memory is None or
                                            m.get("memory") == memory):
                ids.add(m["id"])
        return ids

    def test_a_split_on_i386(self):
        ids = self.i386_machines()
        self.assertTrue(ids, "no i386 machine is created")
        lays = [v for c, v in self.outputs(r"/layout\b")
                if v.get("arch") == "i386"]
        self.assertTrue(lays, "no i386 layout")
        lay = lays[0]
        self.assertEqual(lay["page_offset"], "0xc0000000")
        self.assertEqual(lay["task_size"], "0xc0000000")
        names = [r["name"] for r in lay["regions"]]
        self.assertEqual(names[:2], ["user", "direct_map"])

    def test_b_context_switch(self):
        i386 = self.i386_machines()
        procs = [c for c, _ in
                 self.outputs(r"-X POST \S+/v1/machines/[^/]+/processes -d")
                 if machine_of(c) in i386]
        self.assertGreaterEqual(len(procs), 2, "two i386 processes")
        sw = self.outputs(r"/cpus/\d+/switch")
        self.assertGreaterEqual(len(sw), 2)
        for _, s in sw:
            self.assertNotEqual(s["cr3_before"], s["cr3_after"])
        self.assertTrue(self.outputs(r"/cpus' |/cpus \|"), "no GET cpus")
        # The same user va through two processes: two frames.
        user = {}
        for _, t in self.outputs(r"/translate -d"):
            if t.get("region") == "user" and t.get("ok"):
                user.setdefault(t["va"], {})[t["pid"]] = t["pa"]
        self.assertTrue(any(len(set(p.values())) >= 2 for p in user.values()),
                        user)
        # A kernel va through two processes: one frame, walked through
        # two page directories.
        kern = {}
        for _, t in self.outputs(r"/translate -d"):
            if t.get("mode") == "kernel" and t.get("ok") and t.get("walk") \
                    and t["region"] == "direct_map":
                kern.setdefault(t["va"], []).append(t)
        same = [ts for ts in kern.values()
                if len({t["pid"] for t in ts}) >= 2 and
                len({t["pa"] for t in ts}) == 1 and
                len({t["walk"][0]["entry_pa"] for t in ts}) >= 2 and
                len({t["walk"][0]["entry"] for t in ts}) == 1]
        self.assertTrue(same, "no kernel va walked through two processes")

    def test_c_kmalloc_logical_addresses(self):
        offset = {}
        for cmd, v in self.outputs(r"/layout\b"):
            offset[machine_of(cmd)] = int(v["page_offset"], 16)
        km = [(machine_of(c), v) for c, v in self.outputs(r"/kmalloc")
              if v.get("pa")]
        self.assertTrue(any(m in self.i386_machines() for m, _ in km),
                        "no kmalloc on an i386 machine")
        for m, k in km:
            self.assertEqual(int(k["va"], 16) - int(k["pa"], 16), offset[m],
                             k)
        v2p = [v for _, v in self.outputs(r"/virt-to-phys") if "pa" in v]
        self.assertTrue(any(v["va"] == k["va"] and v["pa"] == k["pa"]
                            for v in v2p for _, k in km), "no virt-to-phys "
                        "of a kmalloc address")

    def test_d_vmalloc_scattered(self):
        vm = self.outputs(r"/vmalloc")
        self.assertTrue(vm)
        frames = [int(f, 16) for f in vm[0][1]["frames"]]
        self.assertGreaterEqual(len(frames), 8)
        self.assertTrue(any(b - a != 4096 for a, b in zip(frames,
                                                          frames[1:])),
                        "vmalloc frames are contiguous")

    def test_e_dma(self):
        dma = [v for _, v in self.outputs(r"/dma-check")]
        self.assertTrue(any(d["single_ok"] for d in dma))
        self.assertTrue(any(not d["single_ok"] and
                            "vmalloc_address" in d["reasons"]
                            for d in dma))

    def test_f_highmem(self):
        self.assertTrue(self.i386_machines(2 << 30), "no 2 GiB i386 machine")
        zones = [v for _, v in self.outputs(r"/zones")]
        self.assertTrue(any("HighMem" in [z["name"] for z in v["zones"]]
                            for v in zones))
        refused = [v for _, v in self.outputs(r"/phys-to-virt")
                   if v.get("status") == 422]
        self.assertTrue(refused, "no refused phys-to-virt")
        hm = [z for v in zones for z in v["zones"] if z["name"] == "HighMem"]
        start = hm[0]["start_pfn"]
        pfns = [r["start_pfn"] for _, v in self.outputs(r"owner=vmalloc")
                for r in v["ranges"]]
        vm_frames = [int(f, 16) >> 12 for _, v in self.outputs(r"/vmalloc")
                     for f in v["frames"]]
        self.assertTrue(any(p >= start for p in pfns + vm_frames),
                        "no vmalloc page from HighMem")

    def test_g_x86_64(self):
        lays = [v for _, v in self.outputs(r"/layout\b")
                if v.get("arch") == "x86_64"]
        self.assertTrue(lays, "no x86_64 layout")
        self.assertIn("vmemmap", [r["name"] for r in lays[0]["regions"]])
        walks = [v for _, v in self.outputs(r"/translate -d")
                 if len(v.get("walk") or []) == 4]
        self.assertTrue(walks, "no 4-level walk with explain")
        self.assertEqual([w["level"] for w in walks[0]["walk"]],
                         ["PGD", "PUD", "PMD", "PTE"])


class TutorialReplay(vmlab.DaemonTest):
    """Runs the tutorial's commands against a fresh daemon."""

    def test_replay(self):
        steps = load_steps()
        base = "127.0.0.1:%d" % self.daemon.port
        for i, (cmd, printed) in enumerate(steps, 1):
            run = cmd.replace(DOC_BASE, base)
            r = subprocess.run(["bash", "-c", "set -o pipefail; " + run],
                               capture_output=True, text=True, timeout=60)
            self.assertIsNone(vmlab.SANITIZER.search(self.daemon.stderr()),
                              self.daemon.stderr())
            self.assertEqual(r.returncode, 0, "command %d failed: %s\n%s"
                             % (i, cmd, r.stderr))
            diff = compare(printed, r.stdout)
            if diff:
                self.fail("command %d of docs/tutorial.md:\n$ %s\n%s"
                          % (i, cmd, diff))


class Comparison(unittest.TestCase):
    """The comparison itself: what it must catch and what it skips."""

    def test_catches_and_skips(self):
        a = {"id": "lab1", "x": [1, {"y": "0x1"}], "created": "t1"}
        self.assertIsNone(compare(json.dumps(a), json.dumps(
            dict(a, created="t2"))))
        self.assertIn("$.x[1].y", compare(json.dumps(a), json.dumps(
            {"id": "lab1", "x": [1, {"y": "0x2"}], "created": "t1"})))
        self.assertIn("missing", compare(json.dumps(a), json.dumps(
            {"id": "lab1", "created": "t1"})))
        self.assertIn("extra", compare(json.dumps(a), json.dumps(
            dict(a, z=1))))
        self.assertIn("$.id", compare(json.dumps(a), json.dumps(
            dict(a, id="lab2"))))
        self.assertIsNone(compare('{"id": "m-0123456789ab"}',
                                  '{"id": "m-ba9876543210"}'))
        self.assertIsNotNone(compare('{"ok": true}', '{"ok": 1}'))
        self.assertIsNotNone(compare('[1, 2]', '[1, 2, 3]'))
        self.assertIsNone(compare("plain text\n", "plain text"))
        self.assertIsNotNone(compare("plain text", "other text"))


if __name__ == "__main__":
    vmlab.main()
