"""test_guide.py - docs/instructor.md runs as written.

The instructor's guide is a story told in ```sh blocks. This test
extracts them in order and runs them as one bash script (set -euo
pipefail) in a temporary directory, against the daemon the guide itself
starts: its first block runs `vmlabd --listen 127.0.0.1:8080 ... &`. The
test rewrites 127.0.0.1:8080 to a free port it picks, and puts the built
vmlabd (env VMLABD) and clients/ first on PATH, so `vmlabd` and
`vmlab-roster` are the ones under test; the database goes to the
temporary directory because the guide names it relative to there. A
command that fails fails the test, which names the block.

After each block the script prints a marker with the block's number and
the daemon's PID (from the vmlabd.pid file the guide writes), so the
test knows what each block printed and which daemons to stop should the
guide fail half-way (by PID, after checking it is our vmlabd).

A ```text or ```json block shows what the nearest ```sh block above it
printed. The test compares them: JSON values (pretty or compact) field
by field, other lines as text; only `created` times and token strings
(`vmlab_` + 43 characters) may differ. Then it checks the facts the
guide claims from the files the run left: tokens.csv has mode 0600 and
one line per roster student; results/<student>.json holds the student's
own lab1 (owner, id, operations all theirs) or the 404 the daemon gave;
a student's change to the template got 403 and another student's
machine 404; no token ever reached the terminal; the guide stopped every
daemon it started, cleanly. The non-loopback refusal the guide shows in
a ```console block is checked by running it (on port 0; vmlabd must
refuse before it binds).

RosterTool drives clients/vmlab-roster through the cases the guide only
describes: a refused login, a login that exists without a token on
file, a tokens file with loose permissions, a bad admin token.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import vmlab

GUIDE = os.path.join(vmlab.SRCDIR, "docs", "instructor.md")
ROSTER_TOOL = os.path.join(vmlab.SRCDIR, "clients", "vmlab-roster")
DOC_ADDR = "127.0.0.1:8080"
TOKEN = re.compile(r"vmlab_[A-Za-z0-9_-]{43}")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.S | re.M)
OUTPUT_LANGS = ("text", "json")
MARK = re.compile(r"\n@@guide-block (\d+) ([0-9]*)@@\n")
IGNORED_KEYS = {"created"}


def load_blocks(path=GUIDE):
    """[(language, body, line number)] of every fenced block."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(text)]


def load_steps(path=GUIDE):
    """[{"cmd", "line", "shown": [output block bodies]}]: the sh blocks
    in order, each with the output blocks that follow it."""
    steps = []
    for lang, body, line in load_blocks(path):
        if lang == "sh":
            steps.append({"cmd": body, "line": line, "shown": []})
        elif lang in OUTPUT_LANGS:
            if not steps:
                raise ValueError("line %d: output before any sh block" % line)
            steps[-1]["shown"].append(body)
    return steps


def segments(text):
    """The output as [("json", value) | ("text", line)]: a line that
    starts a JSON object or array is read as one JSON value (over as many
    lines as it takes), any other non-blank line as text."""
    dec = json.JSONDecoder()
    out, pos = [], 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end]
        stripped = line.strip()
        if stripped[:1] in ("{", "["):
            start = pos + len(line) - len(line.lstrip())
            try:
                value, stop = dec.raw_decode(text, start)
            except ValueError:
                value = None
            else:
                out.append(("json", value))
                rest_end = text.find("\n", stop)
                rest_end = len(text) if rest_end < 0 else rest_end
                rest = text[stop:rest_end].strip()
                if rest:
                    out.append(("text", rest))
                pos = rest_end + 1
                continue
        if stripped:
            out.append(("text", line.rstrip()))
        pos = end + 1
    return out


def first_difference(want, got, path="$"):
    """Where two JSON values differ (None if nowhere), skipping `created`
    and accepting any token for a token."""
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                return "%s.%s: missing (shown %r)" % (path, k, want[k])
        for k in got:
            if k not in want:
                return "%s.%s: extra field %r" % (path, k, got[k])
        for k in want:
            if k in IGNORED_KEYS:
                continue
            d = first_difference(want[k], got[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return "%s: %d items shown, %d printed" % (path, len(want),
                                                       len(got))
        for i, (w, g) in enumerate(zip(want, got)):
            d = first_difference(w, g, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if (isinstance(want, str) and isinstance(got, str) and
            TOKEN.fullmatch(want) and TOKEN.fullmatch(got)):
        return None
    # bool is an int in Python: compare types as JSON sees them.
    if type(want) is not type(got) or want != got:
        return "%s: shown %r, printed %r" % (path, want, got)
    return None


def compare(shown, printed):
    """None when the printed output is what the page shows, else the
    first difference."""
    want, got = segments(shown), segments(printed)
    for i, (w, g) in enumerate(zip(want, got)):
        if w[0] != g[0]:
            return "item %d: shown %s %r, printed %s %r" % (
                i + 1, w[0], w[1], g[0], g[1])
        if w[0] == "text":
            if w[1] != g[1]:
                return "line shown %r, printed %r" % (w[1], g[1])
        else:
            d = first_difference(w[1], g[1])
            if d:
                return "JSON item %d: %s" % (i + 1, d)
    if len(want) != len(got):
        return "%d items shown, %d printed; the rest: %r" % (
            len(want), len(got), (want[len(got):] or got[len(want):])[:3])
    return None


def free_port():
    """A port nothing listens on now (bound, then released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_our_daemon(pid):
    """True when pid is alive and runs the vmlabd under test."""
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return False
    return os.path.realpath(exe) == os.path.realpath(vmlab.VMLABD)


def stop_daemon(pid):
    """SIGTERM by PID (SIGKILL after 30 s); the daemon is not our child,
    so wait for /proc to forget it."""
    if not is_our_daemon(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while is_our_daemon(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_our_daemon(pid):
        os.kill(pid, signal.SIGKILL)


def parse_roster(path):
    """The logins of a roster file, as the guide defines it."""
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            name = line.split("#", 1)[0].strip()
            if name and name not in names:
                names.append(name)
    return names


def run_guide(workdir, steps, port):
    """Runs the steps in one bash session in workdir. Returns (exit
    status, [output per finished block], stderr, PIDs seen)."""
    bindir = os.path.join(workdir, ".bin")
    os.mkdir(bindir)
    os.symlink(os.path.realpath(vmlab.VMLABD), os.path.join(bindir, "vmlabd"))
    os.symlink(ROSTER_TOOL, os.path.join(bindir, "vmlab-roster"))
    script = ["set -euo pipefail",
              "__guide_mark() { printf '\\n@@guide-block %d %s@@\\n' "
              "\"$1\" \"$(cat vmlabd.pid 2>/dev/null || true)\"; }"]
    for i, st in enumerate(steps, 1):
        script.append(st["cmd"].replace(DOC_ADDR, "127.0.0.1:%d" % port))
        script.append("__guide_mark %d" % i)
    path = os.path.join(workdir, ".guide.sh")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(script) + "\n")
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    for k in ("VMLAB_URL", "VMLAB_TOKEN"):
        env.pop(k, None)
    out_path = os.path.join(workdir, ".guide.out")
    err_path = os.path.join(workdir, ".guide.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(["bash", path], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err)
        try:
            status = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            status = "timeout"
    with open(out_path, encoding="utf-8", errors="replace") as f:
        stdout = f.read()
    with open(err_path, encoding="utf-8", errors="replace") as f:
        stderr = f.read()
    parts = MARK.split(stdout)
    outputs, pids = [], set()
    for i in range(1, len(parts) - 1, 3):
        outputs.append(parts[i - 1])
        if parts[i + 1]:
            pids.add(int(parts[i + 1]))
    try:
        with open(os.path.join(workdir, "vmlabd.pid")) as f:
            pids.add(int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return status, outputs, stdout, stderr, pids


class GuideFormat(unittest.TestCase):
    """The guide's shape, read from the file alone."""

    @classmethod
    def setUpClass(cls):
        with open(GUIDE, encoding="utf-8") as f:
            cls.text = f.read()
        cls.steps = load_steps()

    def test_sections_tell_the_story_in_order(self):
        heads = re.findall(r"^## (\d+)\. (.*)$", self.text, re.M)
        self.assertEqual([int(n) for n, _ in heads], list(range(1, 8)))
        words = ["set up", "roster", "tokens", "template", "grader",
                 "results", "quotas"]
        for (_, title), word in zip(heads, words):
            self.assertIn(word, title.lower())

    def test_first_block_starts_the_daemon_with_auth(self):
        first = self.steps[0]["cmd"]
        self.assertTrue(first.startswith("vmlabd --listen %s " % DOC_ADDR),
                        first)
        self.assertIn("--auth on", first.split("\n")[0])
        self.assertIn("&", first.split("\n")[0])
        self.assertIn("echo $! > vmlabd.pid", first)

    def test_says_what_a_class_needs_to_know(self):
        for fact in ("--admin-token-file", "0600", "reverse proxy", "TLS",
                     "plain HTTP", "?owner=", "page_token",
                     "Retry-After", "quota_exceeded", "rate_limited",
                     "`local`", "/v1/whoami", "Authorization: Bearer",
                     "admin.lab1/clone"):
            self.assertIn(fact, self.text)

    def test_commands_show_what_they_print(self):
        """Most commands are followed by their output (load_steps has
        already refused an output block before the first command)."""
        shown = [s for s in self.steps if s["shown"]]
        self.assertGreaterEqual(len(self.steps), 20)
        self.assertGreaterEqual(len(shown), 20)

    def test_no_jq(self):
        self.assertIsNone(re.search(r"\bjq\b", self.text))


class Comparison(unittest.TestCase):
    """What the output comparison catches, and what it lets differ."""

    def test_json_pretty_or_compact(self):
        self.assertIsNone(compare('{\n  "a": [1, 2]\n}', '{"a":[1,2]}'))
        self.assertIn("$.a[1]", compare('{"a": [1, 2]}', '{"a": [1, 3]}'))
        self.assertIn("missing", compare('{"a": 1, "b": 2}', '{"a": 1}'))
        self.assertIn("extra", compare('{"a": 1}', '{"a": 1, "b": 2}'))
        self.assertIsNotNone(compare('{"ok": true}', '{"ok": 1}'))

    def test_only_times_and_tokens_may_differ(self):
        t1, t2 = "vmlab_" + "A" * 43, "vmlab_" + "b" * 43
        self.assertIsNone(compare('{"created": "x", "token": "%s"}' % t1,
                                  '{"created": "y", "token": "%s"}' % t2))
        self.assertIsNotNone(compare('{"token": "%s"}' % t1,
                                     '{"token": "vmlab_short"}'))

    def test_text_and_mixed(self):
        self.assertIsNone(compare("201\n{\n \"a\": 1\n}\nok\n",
                                  "201\n{\"a\": 1}\nok"))
        self.assertIsNotNone(compare("201\n", "403\n"))
        self.assertIsNotNone(compare("201\n", "201\n201\n"))
        self.assertIsNotNone(compare("a\nb\n", "a\n"))
        self.assertIsNotNone(compare('{"a": 1}', "a: 1"))


class GuideRun(unittest.TestCase):
    """Runs the guide's commands and checks what they printed and left."""

    @classmethod
    def setUpClass(cls):
        cls.steps = load_steps()
        cls.tmp = tempfile.TemporaryDirectory(prefix="vmlab-guide-")
        cls.dir = cls.tmp.name
        cls.status, cls.outputs, cls.stdout, cls.stderr, cls.pids = \
            run_guide(cls.dir, cls.steps, free_port())
        # What the guide left running (it should be nothing).
        cls.left_running = sorted(p for p in cls.pids if is_our_daemon(p))
        for pid in cls.pids:
            stop_daemon(pid)
        try:
            with open(os.path.join(cls.dir, "vmlabd.log")) as f:
                cls.log = f.read()
        except OSError:
            cls.log = ""

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, *names):
        return os.path.join(self.dir, *names)

    def require_run(self):
        """Fails with the failing block when the guide did not run to its
        end."""
        done = len(self.outputs)
        if self.status == 0 and done == len(self.steps):
            return
        where = ""
        if done < len(self.steps):
            st = self.steps[done]
            where = "block %d (docs/instructor.md line %d):\n%s\n" % (
                done + 1, st["line"], st["cmd"])
        self.fail("the guide failed (exit %s) in %sstderr:\n%s\n"
                  "vmlabd.log:\n%s" % (self.status, where,
                                       self.stderr[-3000:], self.log[-2000:]))

    def output_of(self, pattern):
        """The output of the one block whose command matches pattern."""
        self.require_run()
        hits = [i for i, st in enumerate(self.steps)
                if re.search(pattern, st["cmd"])]
        self.assertEqual(len(hits), 1, "blocks matching %r: %s" % (
            pattern, hits))
        return self.outputs[hits[0]]

    def test_every_block_runs(self):
        self.require_run()
        self.assertEqual(self.stderr.strip(), "",
                         "the guide's commands wrote to stderr")

    def test_outputs_are_as_shown(self):
        self.require_run()
        diffs = []
        for i, st in enumerate(self.steps):
            if not st["shown"]:
                continue
            diff = compare("\n".join(st["shown"]), self.outputs[i])
            if diff:
                diffs.append("block %d (docs/instructor.md line %d):\n%s\n"
                             "--- printed:\n%s\n--- %s" % (
                                 i + 1, st["line"], st["cmd"],
                                 self.outputs[i], diff))
        self.assertEqual(diffs, [], "\n\n".join(diffs))

    def test_no_token_reaches_the_terminal(self):
        self.require_run()
        self.assertIsNone(TOKEN.search(self.stdout))
        self.assertIsNone(TOKEN.search(self.stderr))

    def test_tokens_file(self):
        """tokens.csv: mode 0600, one name,token line per roster student
        (the roster's comment and blank lines skipped), distinct tokens."""
        self.require_run()
        roster = parse_roster(self.path("roster.txt"))
        self.assertEqual(roster, ["alice", "bob", "carol", "dave"])
        st = os.stat(self.path("tokens.csv"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(self.path("tokens.csv")) as f:
            rows = [line.rstrip("\n").split(",") for line in f]
        self.assertEqual([r[0] for r in rows], roster)
        for r in rows:
            self.assertEqual(len(r), 2, r)
            self.assertRegex(r[1], "^" + TOKEN.pattern + "$")
        self.assertEqual(len({r[1] for r in rows}), len(rows))
        st = os.stat(self.path("grader.token"))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

    def test_roster_rerun_reports_existing_students(self):
        out = self.output_of(r"echo dave >> roster.txt")
        for s in ("alice", "bob", "carol"):
            self.assertIn("%s: exists already" % s, out)
        self.assertIn("dave: created", out)

    def test_rotation_revokes_the_old_token(self):
        out = self.output_of(r"--rotate alice")
        self.assertEqual(out.split()[-2:], ["401", "200"])

    def test_template_is_read_only_to_students(self):
        out = segments(self.output_of(r"ALICE.*\n?.*admin\.lab1/kmalloc"))
        self.assertEqual(out[0][0], "json")
        self.assertEqual((out[0][1]["status"], out[0][1]["code"]),
                         (403, "forbidden"))
        out = segments(self.output_of(r"\$ALICE.*admin\.lab1/clone"))
        self.assertEqual(out[0][1]["owner"], "alice")
        self.assertEqual(out[0][1]["id"], "lab1")

    def test_other_students_machines_are_not_found(self):
        out = segments(self.output_of(r"BOB.*/v1/machines/alice\.lab1"))
        self.assertEqual((out[0][1]["status"], out[0][1]["code"]),
                         (404, "not_found"))
        self.assertEqual(out[-1], ("text", "admin.lab1 lab1"))

    def test_grader_reads_and_changes_nothing(self):
        out = self.output_of(r"GRADER.*\n?.*alice\.lab1/kmalloc")
        self.assertEqual(out.split(), ["200", "403"])

    def test_results(self):
        """results/<student>.json for every roster student: the student's
        own lab1 fetched as <student>.lab1 with every operation theirs,
        or the daemon's 404 for a student without one."""
        self.require_run()
        roster = parse_roster(self.path("roster.txt"))
        self.assertEqual(sorted(os.listdir(self.path("results"))),
                         sorted(s + ".json" for s in roster))
        have = []
        for s in roster:
            with open(self.path("results", s + ".json")) as f:
                r = json.load(f)
            self.assertEqual(r["student"], s)
            if r["machine"] is None:
                self.assertEqual((r["problem"]["status"],
                                  r["problem"]["code"]), (404, "not_found"))
                continue
            have.append(s)
            self.assertEqual(r["machine"]["owner"], s)
            self.assertEqual(r["machine"]["id"], s + ".lab1")
            for op in r["operations"]:
                self.assertEqual(op["tenant"], s, op)
        self.assertEqual(have, ["alice", "bob"])
        with open(self.path("results", "alice.json")) as f:
            alice = json.load(f)
        self.assertEqual([op["op"] for op in alice["operations"]],
                         ["kmalloc"])
        self.assertEqual(alice["machine"]["version"],
                         alice["operations"][-1]["version"])

    def test_withdrawn_template_leaves_the_copies(self):
        out = self.output_of(r"DELETE \"\$URL/v1/machines/lab1/shares/\*")
        self.assertEqual(out.split(), ["204", "lab1"])

    def test_pagination_follows_tokens(self):
        out = self.output_of(r"page_size=2")
        self.assertEqual(out.strip().split("\n"),
                         ["admin.lab1 alice.lab1", "bob.lab1"])

    def test_quota_and_rate_refusals(self):
        out = self.output_of(r"\"name\": \"guest\"")
        self.assertEqual(out.count("quota_exceeded"), 2)
        out = self.output_of(r"rate\": 1")
        self.assertEqual([line.split() for line in out.strip().split("\n")],
                         [["200"], ["429", "1"], ["429", "1"]])

    def test_deleted_tenant_is_gone(self):
        out = self.output_of(r"-X DELETE \"\$URL/v1/tenants/guest\"")
        self.assertEqual(out.split()[0], "204")
        self.assertEqual(out.split()[-1], "401")

    def test_auth_off_acts_as_admin_in_local(self):
        out = segments(self.output_of(r"--db scratch\.db"))
        self.assertEqual(out[0][1]["tenant"], "local")
        self.assertEqual(out[0][1]["role"], "admin")
        self.assertEqual(out[1], ("text", "draft owner local"))

    def test_daemons_stopped_cleanly(self):
        """The guide stops both daemons it starts (wait returned 0, or the
        script would have failed) and neither reported a sanitizer
        error."""
        self.require_run()
        self.assertEqual(len(self.pids), 2, self.pids)
        self.assertEqual(self.left_running, [])
        self.assertEqual(self.log.count("vmlabd: stopped"), 2, self.log)
        self.assertIsNone(vmlab.SANITIZER.search(self.log), self.log)

    def test_non_loopback_refusal_as_shown(self):
        """The ```console block's refusal, run on port 0 so that nothing
        is bound even if vmlabd failed to refuse."""
        blocks = [b for lang, b, _ in load_blocks() if lang == "console"
                  and "0.0.0.0:8080" in b]
        self.assertEqual(len(blocks), 1)
        cmd, shown = blocks[0].split("\n", 1)
        args = cmd[2:].replace("0.0.0.0:8080", "0.0.0.0:0").split()
        self.assertEqual(args[0], "vmlabd")
        args[args.index("--db") + 1] = self.path("refused.db")
        p = subprocess.Popen([vmlab.VMLABD] + args[1:], cwd=self.dir,
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("vmlabd listened on 0.0.0.0 without --auth on")
        self.assertEqual(p.returncode, 2)
        self.assertEqual(err.strip(),
                         shown.strip().replace("0.0.0.0:8080", "0.0.0.0:0"))
        self.assertFalse(os.path.exists(self.path("refused.db")))


class RosterTool(vmlab.DaemonTest):
    """clients/vmlab-roster's other paths, against a daemon with auth."""

    daemon_args = ("--auth", "on")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="vmlab-roster-")
        self.addCleanup(self.tmp.cleanup)
        self.token_file = os.path.join(self.tmp.name, "admin-token")
        shutil.copy(self.daemon.db + ".admin-token", self.token_file)
        os.chmod(self.token_file, 0o600)

    def roster(self, *args, token_file=None, env=None):
        cmd = [ROSTER_TOOL, "--url", self.daemon.url, "--token-file",
               token_file or self.token_file] + list(args)
        e = dict(os.environ)
        e.pop("VMLAB_TOKEN", None)
        e.update(env or {})
        return subprocess.run(cmd, cwd=self.tmp.name, capture_output=True,
                              text=True, env=e, timeout=60)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def tokens(self, name="tokens.csv"):
        with open(os.path.join(self.tmp.name, name)) as f:
            return dict(line.rstrip("\n").split(",", 1) for line in f)

    def test_help_and_executable(self):
        self.assertTrue(os.access(ROSTER_TOOL, os.X_OK))
        r = subprocess.run([ROSTER_TOOL, "--help"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("ROSTER", "--rotate", "--tokens", "0600"):
            self.assertIn(word, r.stdout)

    def test_refused_login_is_reported_and_others_go_on(self):
        self.write("r.txt", "rt-ann\nRT_Bad\n  # note\n\nrt-bo # x\n")
        r = self.roster("--tokens", "t.csv", "r.txt")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("RT_Bad: refused (422 invalid_value", r.stdout)
        self.assertIn("2 created, 0 existing, 1 refused", r.stdout)
        self.assertIsNone(TOKEN.search(r.stdout + r.stderr))
        self.assertEqual(sorted(self.tokens("t.csv")), ["rt-ann", "rt-bo"])
        for name, tok in self.tokens("t.csv").items():
            who = self.ok("GET", "/v1/whoami", token=tok)
            self.assertEqual((who["tenant"], who["role"]), (name, "tenant"))

    def test_existing_without_token_and_loose_file(self):
        """A tenant made elsewhere is reported as existing (exit 0) and
        the file says nothing for it; a tokens file others could read is
        replaced by one of mode 0600, keeping its lines; --rotate gives
        the tenant a line."""
        self.ok("POST", "/v1/tenants", {"name": "rt-cy"}, status=201,
                token=self.daemon.admin_token())
        self.write("t2.csv", "rt-old,vmlab_%s\n" % ("x" * 43), mode=0o644)
        self.write("r2.txt", "rt-cy\nrt-dee\n")
        r = self.roster("--tokens", "t2.csv", "--role", "grader",
                        "--rate", "7", "r2.txt")
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("rt-cy: exists already, but t2.csv has no token",
                      r.stdout)
        path = os.path.join(self.tmp.name, "t2.csv")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(sorted(self.tokens("t2.csv")), ["rt-dee", "rt-old"])
        who = self.ok("GET", "/v1/whoami", token=self.tokens("t2.csv")
                      ["rt-dee"])
        self.assertEqual((who["role"], who["quota"]["rate"]), ("grader", 7))
        r = self.roster("--tokens", "t2.csv", "--rotate", "rt-cy")
        self.assertEqual(r.returncode, 0, r)
        who = self.ok("GET", "/v1/whoami", token=self.tokens("t2.csv")
                      ["rt-cy"])
        self.assertEqual(who["tenant"], "rt-cy")

    def test_bad_admin_token_changes_nothing(self):
        bad = self.write("bad-token", "vmlab_" + "y" * 43 + "\n", 0o600)
        self.write("r3.txt", "rt-eve\n")
        r = self.roster("--tokens", "t3.csv", "r3.txt", token_file=bad)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("401 unauthorized", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name,
                                                     "t3.csv")))
        tenants = self.ok("GET", "/v1/tenants",
                          token=self.daemon.admin_token())
        self.assertNotIn("rt-eve", [t["name"] for t in tenants["items"]])


if __name__ == "__main__":
    vmlab.main()
