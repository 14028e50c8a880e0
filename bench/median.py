#!/usr/bin/env python3
"""median.py - the benchmark suite N times, and the median of each figure
as a Markdown table: the one in README.md's Performance section.

usage: bench/median.py [--builddir DIR] [--runs N] [--out FILE]
                       [--readme README.md] [RESULTS.json ...]

Runs bench/run.py N times (default 3) with the programs of DIR (default
.), in the same environment (VMLAB_BENCH_SECONDS and the other knobs of
run.py), or, given result files of earlier runs, reads those instead.
Prints the table (figure, what, goal, measured, met?) followed by a line
naming the machine and the options, writes it to FILE when given and,
with --readme, replaces the text between the lines
`<!-- bench-table-begin -->` and `<!-- bench-table-end -->` of that file.

A relative goal (>= 0.85 x http_healthz_rps) is checked against the
median of its baseline. The median of an even number of runs is the mean
of the middle two.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

# run.py is read from the source tree, which gets no __pycache__.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the figures, their goals and formats)

BEGIN = "<!-- bench-table-begin -->"
END = "<!-- bench-table-end -->"


def run_suite(builddir, n):
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            out = os.path.join(tmp, "results-%d.json" % i)
            print("median: run %d of %d" % (i + 1, n), file=sys.stderr,
                  flush=True)
            subprocess.run([sys.executable, run.__file__, "--builddir",
                            builddir, "--out", out], check=True)
            with open(out) as f:
                results.append(json.load(f))
    return results


def number(v, unit):
    """A figure as the table shows it: thousands separated."""
    s = run.FORMATS[unit] % v
    whole, dot, frac = s.partition(".")
    return "{:,}".format(int(whole)) + dot + frac


def table(results):
    med = {}
    for name, _, _, _ in run.FIGURES:
        vals = [r["figures"][name]["value"] for r in results
                if name in r["figures"]]
        if vals:
            med[name] = statistics.median(vals)
    lines = ["| figure | what | goal | measured | met? |",
             "|---|---|---|---|---|"]
    for name, what, unit, goal in run.FIGURES:
        if name not in med:
            continue
        limit, met = run.goal_check(goal, med[name], med)
        if goal is None:
            g = "measured"
        else:
            op = goal[0].replace("<=", "≤").replace(">=", "≥")
            if len(goal) == 2:
                g = "%s %s %s" % (op, "{:,}".format(goal[1]), unit)
            else:
                g = "%s %g × `%s` (%s)" % (
                    op, goal[1], goal[2],
                    number(limit, unit) if limit is not None else "?")
        mark = {True: "yes", False: "**no**", None: "—"}[met]
        if met is not None and limit:
            mark += " (%.3g× the goal)" % (med[name] / limit)
        lines.append("| `%s` | %s | %s | %s %s | %s |" %
                     (name, what, g, number(med[name], unit), unit, mark))
    return "\n".join(lines)


def machine_line(results):
    r = results[0]
    h, o, v = r["host"], r["options"], r["versions"]
    runs = ("Median of %d runs" % len(results) if len(results) > 1
            else "One run")
    wrk = re.sub(r" \[.*", "", v["wrk"] or "wrk ?")
    load = ", ".join("%.1f" % x["host"]["loadavg_start"][0]
                     for x in results if "loadavg_start" in x["host"])
    return ("%s of `make bench`, %s, on %s CPUs (%s), "
            "Linux %s, databases on %s; %g s per wrk run (wrk -t%d -c%d), "
            "%s core loops, %s creations, %s machines, vmlabd with %s "
            "threads, durability %s; %s, SQLite %s, %s. Load average "
            "as each run began (other work on the host): %s." %
            (runs, r["started"][:10], h["cpus"], h["cpu_model"],
             h["kernel"], h["db_filesystem"], o["seconds"],
             o["wrk_threads"], o["wrk_connections"],
             "{:,}".format(o["loops"]), "{:,}".format(o["creates"]),
             "{:,}".format(o["machines"]), o.get("vmlabd_threads"),
             o.get("durability"), v["vmlabd"], v["sqlite"], wrk,
             load or "?"))


def update_readme(path, text):
    with open(path) as f:
        old = f.read()
    b, e = old.find(BEGIN), old.find(END)
    if b < 0 or e < b:
        sys.exit("median.py: %s has no %s ... %s lines" % (path, BEGIN, END))
    new = old[:b + len(BEGIN)] + "\n" + text + "\n" + old[e:]
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=".")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out")
    ap.add_argument("--readme")
    ap.add_argument("results", nargs="*")
    a = ap.parse_args()
    if a.results:
        results = []
        for p in a.results:
            with open(p) as f:
                results.append(json.load(f))
    else:
        if a.runs < 1:
            sys.exit("median.py: --runs must be at least 1")
        results = run_suite(os.path.abspath(a.builddir), a.runs)
    text = table(results) + "\n\n" + machine_line(results)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.readme:
        update_readme(a.readme, text)
        print("median: updated " + a.readme, file=sys.stderr)


if __name__ == "__main__":
    main()
