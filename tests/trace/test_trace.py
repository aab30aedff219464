#!/usr/bin/env python3
"""test_trace.py — objmem-trace end to end: record trace_target with
`objmem-trace run`, read it back with `report --format json` and the
other reading commands (leaks, diff, flamegraph, plot), and check exact
bytes and counts per allocation site (the sites are the lines of
trace_target.c marked "@site NAME").  One case per invocation (--case);
each ends with "N passed, N failed" and exits non-zero on any failure.
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

args = None
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def sites():
    """Line of each @site marker in trace_target.c."""
    lines = {}
    with open(args.source) as f:
        for n, text in enumerate(f, 1):
            m = re.search(r"@site (\w+)", text)
            if m:
                lines[m.group(1)] = n
    return lines


SITES = None


def run(*cmd, ok=(0,), env=None):
    p = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, timeout=120)
    if p.returncode not in ok:
        print("command:", " ".join(cmd))
        print("exit:", p.returncode)
        print("stdout:", p.stdout[-3000:])
        print("stderr:", p.stderr[-3000:])
    return p


def record(name, *target_args, interval=20, frames=16):
    out = os.path.join(args.workdir, name + ".trace")
    for old in glob.glob(out + "*"):
        os.remove(old)
    p = run(args.cli, "run", "-q", "-o", out, "--interval", str(interval),
            "--frames", str(frames), "--", args.target, *target_args,
            ok=(0, -9))
    return out, p


def report(path, *opts, ok=(0,)):
    p = run(args.cli, "report", path, "--format", "json", "--top", "0", *opts,
            ok=ok)
    if p.returncode not in ok:
        return None, p
    return json.loads(p.stdout), p


def by_site(rep):
    """{site name: (size, count)} for the groups at marked lines of the
    target's source file."""
    base = os.path.basename(args.source)
    names = {line: name for name, line in SITES.items()}
    out = {}
    for g in rep["groups"]:
        if os.path.basename(g["file"]) == base and g["line"] in names:
            out[names[g["line"]]] = (g["size"], g["count"])
    return out


def expect_sites(rep, expected, what):
    got = by_site(rep)
    for name, value in expected.items():
        check(got.get(name) == value,
              "%s: site %s (line %d): expected %s, got %s"
              % (what, name, SITES[name], value, got.get(name)))
    # Sites not expected must be absent (no bytes live there).
    for name in got:
        check(name in expected, "%s: unexpected site %s: %s" % (what, name, got[name]))


SITES_END = {
    "malloc": (1000, 10),
    "calloc": (600, 5),
    "realloc_to": (300, 1),
    "reallocarray": (56, 1),
    "posix_memalign": (200, 1),
    "aligned_alloc": (64, 1),
    "memalign": (72, 1),
    "valloc": (1000, 1),
    "pvalloc": (os.sysconf("SC_PAGE_SIZE"), 1),
}
SITES_PEAK = dict(SITES_END, freed=(660, 20), big=(1 << 20, 1))


def totals_consistent(rep, what):
    size = sum(g["size"] for g in rep["groups"])
    count = sum(g["count"] for g in rep["groups"])
    check((size, count) == (rep["heap"]["size"], rep["heap"]["count"]),
          "%s: groups add up to the heap (%d, %d) vs %s" % (what, size, count, rep["heap"]))


def case_sites():
    path, p = record("sites", "sites")
    check(p.returncode == 0, "run sites exits 0")
    rep, _ = report(path)
    if not rep:
        return check(False, "report of sites")
    check(rep["ending"] == "exit", "sites: ending exit, got %s" % rep["ending"])
    check(rep["snapshot"] == "end" and rep["group_by"] == "line", "sites: snapshot and key")
    expect_sites(rep, SITES_END, "end")
    totals_consistent(rep, "end")
    check(rep["end"] == rep["heap"], "end snapshot is the heap reported")
    peak, _ = report(path, "--peak")
    expect_sites(peak, SITES_PEAK, "peak")
    totals_consistent(peak, "peak")
    check(peak["heap"]["size"] == rep["peak"]["size"],
          "peak snapshot totals the recorded peak")
    check(rep["peak"]["size"] >= rep["heap"]["size"] + (1 << 20) + 660,
          "the peak holds the big block and the freed ones")
    # Other groupings agree on the target's own allocations.
    fn, _ = report(path, "--by", "function")
    mine = [g for g in fn["groups"] if g["function"] == "sites"]
    check(len(mine) == 1 and mine[0]["size"] == sum(v[0] for v in SITES_END.values())
          and mine[0]["count"] == sum(v[1] for v in SITES_END.values()),
          "by function: sites() holds all its blocks: %s" % mine)
    tb, _ = report(path, "--by", "traceback")
    deep = [g for g in tb["groups"]
            if g["frames"][0]["line"] == SITES["malloc"]
            and os.path.basename(g["frames"][0]["file"]) == os.path.basename(args.source)]
    check(len(deep) == 1 and deep[0]["size"] == 1000
          and any(f["function"] == "main" for f in deep[0]["frames"]),
          "by traceback: malloc site's stack reaches main: %s" % deep)
    fl, _ = report(path, "--by", "file")
    check(any(os.path.basename(g["file"]) == "trace_target.c" for g in fl["groups"]),
          "by file: trace_target.c is there")
    text = run(args.cli, "report", path, "--top", "3")
    check(text.returncode == 0 and "Top 3 lines at the end" in text.stdout
          and "Total:" in text.stdout, "text report")


def case_threads():
    path, p = record("threads", "threads", interval=5)
    check(p.returncode == 0, "run threads exits 0")
    rep, _ = report(path)
    if not rep:
        return check(False, "report of threads")
    expect_sites(rep, {"thread_keep": (4 * 1000 * 24, 4000)}, "threads end")
    totals_consistent(rep, "threads")
    check(rep["allocations"]["count"] >= 44000,
          "every allocation counted: %d" % rep["allocations"]["count"])


def case_fork():
    path, p = record("fork", "fork")
    check(p.returncode == 0, "run fork exits 0")
    m = re.search(r"child (\d+)", p.stdout)
    check(m is not None, "fork: the target printed its child's pid")
    if not m:
        return
    child = int(m.group(1))
    rep, _ = report(path)
    expect_sites(rep, {"parent_before": (333, 3), "parent_after": (333, 1)},
                 "fork parent")
    files = glob.glob("%s.%d.*" % (path, child))
    check(len(files) == 1 and re.fullmatch(r".*\.%d\.[0-9a-f]{8}" % child, files[0]),
          "fork: the child wrote its own file, named by pid and suffix: %s" % files)
    if files:
        crep, _ = report(files[0])
        check(crep["origin"] == "fork" and crep["ppid"] == rep["pid"]
              and crep["pid"] == child, "fork: child's file says it was forked")
        expect_sites(crep, {"parent_before": (333, 3), "child_only": (444, 2)},
                     "fork child")
        totals_consistent(crep, "fork child")


def case_exec():
    path, p = record("exec", "exec")
    check(p.returncode == 0, "run exec exits 0")
    rep, _ = report(path)
    check(rep["ending"] == "exec", "exec: the first image's file ends with exec")
    expect_sites(rep, {"before_exec": (444, 1)}, "before exec")
    files = glob.glob("%s.%d.*" % (path, rep["pid"]))
    check(len(files) == 1, "exec: the new image wrote its own file: %s" % files)
    if files:
        nrep, _ = report(files[0])
        check(nrep["ending"] == "exit", "exec: new image exits normally")
        expect_sites(nrep, SITES_END, "after exec")


def case_vfork():
    path, p = record("vfork", "vfork")
    check(p.returncode == 0, "run vfork exits 0")
    rep, _ = report(path)
    check(rep is not None and rep["ending"] == "exit",
          "vfork: the parent's file is complete although the child closed "
          "its descriptor and exec'd")
    if rep:
        expect_sites(rep, {"after_vfork": (666, 1)}, "vfork parent")


def case_closefds():
    path, p = record("closefds", "closefds")
    check(p.returncode == 0, "run closefds exits 0")
    rep, _ = report(path)
    check(rep is not None and rep["ending"] == "exit",
          "closefds: the file is complete although the program closed it")
    if rep:
        expect_sites(rep, {"before_close": (777, 1), "after_close": (888, 1)},
                     "closefds")


def case_kill():
    path, p = record("kill", "kill")
    check(p.returncode == -9, "kill: the target died of SIGKILL (%d)" % p.returncode)
    rep, r = report(path, ok=(4,))
    check(r.returncode == 4, "kill: report exits 4 for an incomplete trace")
    check("incomplete" in r.stderr, "kill: report says incomplete: %r" % r.stderr)
    if rep:
        check(rep["ending"] == "incomplete", "kill: ending incomplete")
        expect_sites(rep, {"before_kill": (1110, 2)}, "kill")


def case_badinput():
    r = run(args.cli, "run", "--", "/nonexistent/program", ok=(127,))
    check(r.returncode == 127 and "No such file" in r.stderr,
          "missing program path: 127 with a reason: %r" % r.stderr)
    r = run(args.cli, "run", "--", "no-such-command-objmem", ok=(127,))
    check(r.returncode == 127 and "command not found" in r.stderr,
          "missing command: 127: %r" % r.stderr)
    notexec = os.path.join(args.workdir, "not-executable")
    with open(notexec, "w") as f:
        f.write("data\n")
    os.chmod(notexec, 0o644)
    r = run(args.cli, "run", "--", notexec, ok=(126,))
    check(r.returncode == 126 and "not executable" in r.stderr,
          "non-executable file: 126: %r" % r.stderr)
    if args.static:
        out = os.path.join(args.workdir, "static.trace")
        r = run(args.cli, "run", "-o", out, "--", args.static, ok=(126,))
        check(r.returncode == 126 and "statically linked" in r.stderr
              and "preload" in r.stderr,
              "static program: 126 with the reason: %r" % r.stderr)
        check(not os.path.exists(out), "static program: no file written")
    else:
        print("note: no static C library, static-program check not run")
    r = run(args.cli, "run", "-o", "/nonexistent-dir/x.trace", "--", args.target,
            ok=(125,))
    check(r.returncode == 125 and "cannot create" in r.stderr,
          "unwritable output: 125: %r" % r.stderr)


def write_file(name, content):
    """A file of the case's own, in its work directory."""
    path = os.path.join(args.workdir, name)
    with open(path, "wb") as f:
        f.write(content)
    return path


def recorded(name, *target_args):
    """A recording and its bytes."""
    path, _ = record(name, *target_args)
    with open(path, "rb") as f:
        return path, f.read()


def case_badfile():
    good, data = recorded("good", "sites")
    d = args.workdir
    write = write_file

    def bad(name, content, code, words):
        path = write(name, content)
        r = run(args.cli, "report", path, ok=(code,))
        check(r.returncode == code and all(w in r.stderr for w in words),
              "%s: exit %d (got %d) saying %s: %r" % (name, code, r.returncode, words, r.stderr))
        return r

    r = run(args.cli, "report", os.path.join(d, "no-such.trace"), ok=(1,))
    check(r.returncode == 1 and "cannot be opened" in r.stderr, "missing file: exit 1")
    bad("empty.trace", b"", 3, ["not an objmem-trace recording"])
    bad("text.trace", b"hello, this is not a trace\n" * 4, 3, ["not an objmem-trace recording"])
    bad("header-cut.trace", data[:12], 3, ["truncated", "header"])
    bad("start-cut.trace", data[:40], 3, ["no complete snapshot"])
    newer = bytearray(data)
    newer[8] = 4
    bad("newer.trace", bytes(newer), 3, ["newer", "format version 4"])
    flags = bytearray(data)
    flags[12] = 1
    bad("flags.trace", bytes(flags), 3, ["flags"])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    bad("flipped.trace", bytes(flipped), 3, ["corrupt"])
    bad("garbage-after-end.trace", data + b"\x05\0\0\0\0\0\0\0" + b"\0" * 8, 3, ["corrupt"])
    # Cut inside the last chunk: readable up to the last complete flush,
    # which here is the final one, so the numbers are still exact.
    cut = write("cut.trace", data[:-3])
    rep, r = report(cut, ok=(4,))
    check(r.returncode == 4 and "incomplete" in r.stderr, "cut file: exit 4, incomplete")
    if rep:
        expect_sites(rep, SITES_END, "cut file")
    snap = write("snapshot.trace", b"\x89OMSNP\r\n" + b"\0" * 40)
    r = run(args.cli, "report", snap, ok=(3,))
    check(r.returncode == 3 and "snapshot" in r.stderr, "a snapshot file is named as such")


def case_cli():
    commands = ["run", "report", "leaks", "diff", "flamegraph", "plot", "help"]
    for sub in [[]] + [[c] for c in commands]:
        r = run(args.cli, *sub, "--help")
        check(r.returncode == 0 and "usage: objmem-trace" in r.stdout,
              "%s --help" % (sub or "objmem-trace"))
        if sub:
            h = run(args.cli, "help", *sub)
            check(h.returncode == 0 and h.stdout == r.stdout,
                  "help %s is %s --help" % (sub[0], sub[0]))
    main_help = run(args.cli, "--help").stdout
    check(all("  %s " % c in main_help for c in commands), "--help lists every command")
    r = run(args.cli, "help", "report")
    check(r.returncode == 0 and "--by" in r.stdout, "help report")
    r = run(args.cli, "--version")
    check(r.returncode == 0 and re.match(r"objmem-trace \d+\.\d+\.\d+ \(trace format 3\)", r.stdout),
          "--version: %r" % r.stdout)
    for bad in (["frobnicate"], ["run"], ["run", "--frames", "0", "--", "true"],
                ["report"], ["report", "x", "--by", "colour"],
                ["report", "x", "--format", "xml"], ["report", "--nope", "x"],
                ["leaks"], ["leaks", "a", "b"], ["leaks", "x", "--by", "line"],
                ["leaks", "x", "--peak"], ["leaks", "x", "--top", "-1"],
                ["diff"], ["diff", "a"], ["diff", "a", "b", "c"],
                ["diff", "a", "b", "--by", "colour"], ["diff", "a", "b", "--svg"],
                ["flamegraph"], ["flamegraph", "x", "--format", "json"],
                ["flamegraph", "x", "--top", "3"], ["flamegraph", "x", "-o"],
                ["plot"], ["plot", "x", "--peak"], ["plot", "x", "y"],
                ["help", "frobnicate"], ["help", "run", "report"]):
        r = run(args.cli, *bad, ok=(2,))
        check(r.returncode == 2 and r.stderr, "usage error %s: exit 2" % bad)
    check("exit status" in main_help and "  23 " in main_help and "  4 " in main_help,
          "--help documents exit codes, leaks' 23 among them")



# ---- the reading commands ----------------------------------------------------

def read_json(*cmd, ok=(0,)):
    p = run(args.cli, *cmd, "--format", "json", ok=ok)
    if p.returncode not in ok:
        return None, p
    return json.loads(p.stdout), p


def at_site(frame, name):
    return (os.path.basename(frame["file"]) == os.path.basename(args.source)
            and frame["line"] == SITES[name])


def case_leaks():
    path, p = record("leaks", "leaks")
    check(p.returncode == 0, "run leaks exits 0")
    rep, _ = report(path)
    leaks, r = read_json("leaks", path, ok=(23,))
    check(r.returncode == 23, "leaks found: exit 23 (%d)" % r.returncode)
    if not leaks or not rep:
        return check(False, "leaks --format json")
    check(leaks["objmem_trace_leaks"] == 1 and leaks["ending"] == "exit",
          "leaks json: layout version and ending")
    check(leaks["leaked"] == {"size": 4396, "count": 5},
          "leaked: 4396 bytes in 5 blocks: %s" % leaks["leaked"])
    check(leaks["leaked"] == rep["end"], "leaks agree with report's end heap")
    check(leaks["leaks_total"] == 2 and len(leaks["leaks"]) == 2,
          "two leaking stacks: %d" % leaks["leaks_total"])
    expected = [("leak_a", 4096, 2), ("leak_b", 300, 3)]
    for g, (caller, size, count) in zip(leaks["leaks"], expected):
        fr = g["frames"]
        check((g["size"], g["count"]) == (size, count),
              "leak from %s: %d bytes in %d blocks: %s" % (caller, size, count, g))
        check(len(fr) >= 3 and at_site(fr[0], "leak_helper")
              and fr[0]["function"] == "leak_helper" and at_site(fr[1], caller)
              and fr[1]["function"] == "leaky" and fr[2]["function"] == "main",
              "leak from %s: frames helper, caller, main: %s" % (caller, fr[:3]))
    # The text, as LeakSanitizer words it.
    r = run(args.cli, "leaks", path, ok=(23,))
    out = r.stdout
    base = re.escape(os.path.basename(args.source))
    for caller, size, count in expected:
        m = re.search(r"^Direct leak of %d byte\(s\) in %d object\(s\) allocated from:\n"
                      r"    #0 0x[0-9a-f]+ in leak_helper \S*%s:%d\n"
                      r"    #1 0x[0-9a-f]+ in leaky \S*%s:%d\n"
                      r"    #2 0x[0-9a-f]+ in main "
                      % (size, count, base, SITES["leak_helper"], base, SITES[caller]),
                      out, re.M)
        check(m is not None, "text: leak of %d bytes from %s, LSan's wording" % (size, caller))
    check(out.index("4096 byte(s)") < out.index("300 byte(s)"), "text: largest first")
    check(out.startswith("=" * 65 + "\n==%d==ERROR: objmem-trace: detected memory leaks\n"
                         % leaks["pid"]), "text: LSan's header: %r" % out[:150])
    check(out.rstrip().endswith("SUMMARY: objmem-trace: 4396 byte(s) leaked in 5 "
                                "allocation(s)."), "text: SUMMARY line")
    check(str(SITES["not_leaked"]) + "\n" not in out, "the freed block is no leak")
    # --top 1: one shown, the rest counted, the summary whole.
    r = run(args.cli, "leaks", path, "--top", "1", ok=(23,))
    check(r.stdout.count("Direct leak") == 1
          and "1 more leak(s) of 300 byte(s) in 3 object(s) not shown" in r.stdout
          and "4396 byte(s) leaked in 5 allocation(s)" in r.stdout, "--top 1")
    top, _ = read_json("leaks", path, "--top", "1", ok=(23,))
    check(top and len(top["leaks"]) == 1 and top["leaks_total"] == 2, "json --top 1")
    # Nothing left: exit 0.
    tidy, p = record("tidy", "tidy")
    r = run(args.cli, "leaks", tidy)
    check(r.returncode == 0 and "no leaks" in r.stdout, "no leaks: exit 0: %r" % r.stdout)
    j, _ = read_json("leaks", tidy)
    check(j and j["leaked"] == {"size": 0, "count": 0} and j["leaks"] == [],
          "no leaks: json empty")
    # Incomplete: the leaks are printed, the exit says incomplete.
    with open(path, "rb") as f:
        cut = write_file("cut.trace", f.read()[:-3])
    r = run(args.cli, "leaks", cut, ok=(4,))
    check(r.returncode == 4 and "incomplete" in r.stderr and "SUMMARY" in r.stdout
          and "at the last flush of an incomplete trace" in r.stdout,
          "incomplete trace: leaks printed, exit 4")


def diff_by_site(d):
    names = {line: name for name, line in SITES.items()}
    out = {}
    for g in d["groups"]:
        if os.path.basename(g["file"]) == os.path.basename(args.source) and g["line"] in names:
            out[names[g["line"]]] = (g["size"], g["size_diff"], g["count"], g["count_diff"])
    return out


def case_diff():
    old, _ = record("steps1", "steps", "1")
    new, _ = record("steps3", "steps", "3")
    ro, _ = report(old)
    rn, _ = report(new)
    d, r = read_json("diff", old, new, "--top", "0")
    if not d or not ro or not rn:
        return check(False, "diff --format json")
    check(d["objmem_trace_diff"] == 1 and d["snapshot"] == "end" and d["group_by"] == "line",
          "diff json: header")
    check(d["old"]["file"] == old and d["new"]["file"] == new
          and d["old"]["heap"] == ro["end"] and d["new"]["heap"] == rn["end"],
          "diff json: both sides and their heaps")
    check((d["size"], d["size_diff"], d["count"], d["count_diff"])
          == (rn["end"]["size"], rn["end"]["size"] - ro["end"]["size"],
              rn["end"]["count"], rn["end"]["count"] - ro["end"]["count"]),
          "diff totals: new heap and its difference")
    expected = [("step_later", (777, 777, 1, 1)), ("step_first", (0, -250, 0, -1)),
                ("step_grow", (300, 200, 3, 2)), ("step_same", (500, 0, 1, 0))]
    got = diff_by_site(d)
    for name, value in expected:
        check(got.get(name) == value, "diff: %s: expected %s, got %s"
              % (name, value, got.get(name)))
    order = [n for n in diff_by_site(d) if n in dict(expected)]
    check(order == [n for n, _ in expected],
          "diff: sorted by |size_diff|, then size: %s" % order)
    check(sum(g["size_diff"] for g in d["groups"]) == d["size_diff"]
          and sum(g["size"] for g in d["groups"]) == d["size"],
          "diff: groups add up to the totals")
    # At the peaks: the temporary block, 10000 bytes a step.
    dp, _ = read_json("diff", old, new, "--peak", "--top", "0")
    pold, _ = report(old, "--peak")
    pnew, _ = report(new, "--peak")
    check(dp["snapshot"] == "peak"
          and diff_by_site(dp).get("step_temp") == (30000, 20000, 1, 0)
          and dp["size_diff"] == pnew["heap"]["size"] - pold["heap"]["size"],
          "diff --peak: the temporary block: %s" % (diff_by_site(dp).get("step_temp"),))
    # Other keys.
    fn, _ = read_json("diff", old, new, "--by", "function", "--top", "0")
    mine = [g for g in fn["groups"] if g["function"] == "steps"]
    check(len(mine) == 1 and (mine[0]["size"], mine[0]["size_diff"]) == (1577, 727),
          "diff by function: steps() %s" % mine)
    tb, _ = read_json("diff", old, new, "--by", "traceback", "--top", "2")
    check(len(tb["groups"]) == 2 and at_site(tb["groups"][0]["frames"][0], "step_later"),
          "diff by traceback, --top 2")
    same, _ = read_json("diff", new, new, "--top", "0")
    check(all(g["size_diff"] == 0 and g["count_diff"] == 0 for g in same["groups"])
          and same["size_diff"] == 0, "a trace against itself: no differences")
    # The text, as tracemalloc's StatisticDiff reads.
    t = run(args.cli, "diff", old, new)
    check(t.returncode == 0 and re.search(
        r"^#1: \S*%s:%d: size=777 B \(\+777 B\), count=1 \(\+1\), average=777 B$"
        % (re.escape(os.path.basename(args.source)), SITES["step_later"]), t.stdout, re.M)
        and re.search(r"^#2: \S*:%d: size=0 B \(-250 B\), count=0 \(-1\)$"
                      % SITES["step_first"], t.stdout, re.M)
        and "Total: size=1577 B (+727 B), count=5 (+2)" in t.stdout,
        "diff text: %r" % t.stdout[-600:])


def collapsed(text):
    """[(frames, bytes)] of collapsed stacks; None if a line is malformed."""
    out = []
    for line in text.splitlines():
        m = re.fullmatch(r"(\S.*) (\d+)", line)
        if not m:
            return None
        out.append((m.group(1).split(";"), int(m.group(2))))
    return out


def trie_nodes(stacks):
    nodes = set()
    for frames, _ in stacks:
        for i in range(1, len(frames) + 1):
            nodes.add(tuple(frames[:i]))
    return nodes


def svg_frames(root):
    ns = "{http://www.w3.org/2000/svg}"
    return [g for g in root.iter(ns + "g") if g.get("class") == "frame"], ns


def case_flamegraph():
    path, _ = record("flame", "sites")
    rep, _ = report(path)
    peak, _ = report(path, "--peak")
    for snap, opts, total in (("end", [], rep["end"]["size"]),
                              ("peak", ["--peak"], peak["heap"]["size"])):
        r = run(args.cli, "flamegraph", path, *opts)
        stacks = collapsed(r.stdout)
        check(r.returncode == 0 and stacks, "%s: collapsed stacks parse: %r"
              % (snap, r.stdout[:300]))
        if not stacks:
            continue
        check(sum(v for _, v in stacks) == total, "%s: stacks sum to the heap, %d: %d"
              % (snap, total, sum(v for _, v in stacks)))
        check(len({tuple(f) for f, _ in stacks}) == len(stacks), "%s: each stack once" % snap)
        mine = [v for f, v in stacks if f[-2:] == ["main", "sites"]]
        want = sum(v[0] for v in (SITES_END if snap == "end" else SITES_PEAK).values())
        check(mine == [want], "%s: main;sites, outermost first, holds the sites' %d: %s"
              % (snap, want, mine))
        # The SVG: one frame (a rect with a title) per node of the stacks'
        # tree, and the root, "all".
        svg = os.path.join(args.workdir, snap + ".svg")
        r = run(args.cli, "flamegraph", path, "--svg", "-o", svg, *opts)
        check(r.returncode == 0 and r.stdout == "", "%s: --svg -o writes the file only" % snap)
        try:
            root = ET.parse(svg).getroot()
        except (ET.ParseError, OSError) as e:
            check(False, "%s: the SVG is well-formed XML: %s" % (snap, e))
            continue
        frames, ns = svg_frames(root)
        check(root.tag == ns + "svg", "%s: an svg document" % snap)
        check(all(g.find(ns + "rect") is not None and g.find(ns + "title") is not None
                  for g in frames), "%s: every frame has a rect and a title" % snap)
        omitted = root.find(".//*[@id='omitted']")
        n_omitted = int(omitted.text.split()[0]) if omitted is not None else 0
        nodes = len(trie_nodes(stacks)) + 1
        check(len(frames) + n_omitted == nodes,
              "%s: one rect per frame: %d drawn + %d too narrow == %d nodes"
              % (snap, len(frames), n_omitted, nodes))
        if snap == "end":
            check(n_omitted == 0, "end: every frame wide enough to draw")
        titles = [g.find(ns + "title").text for g in frames]
        check(any(t.startswith("all: ") and "(%d bytes)" % total in t for t in titles),
              "%s: the root's title gives the total: %s" % (snap, titles[:1]))
        check(any(t.startswith("sites (") and "(%d bytes)" % want in t for t in titles),
              "%s: sites' frame's title: %s" % (snap, [t for t in titles if "sites" in t]))
    # A stack far narrower than a pixel is left out, and said to be.
    wide, _ = record("wide", "wide")
    stacks = collapsed(run(args.cli, "flamegraph", wide).stdout) or []
    check(sorted(v for _, v in stacks) == [8, 1 << 20]
          and any(f[-7:] == ["main", "wide"] + ["chain"] * 5 for f, _ in stacks)
          and any(f[-3:] == ["main", "wide", "tiny"] for f, _ in stacks),
          "wide: the chain of calls, outermost first: %s" % stacks)
    svg = os.path.join(args.workdir, "wide.svg")
    run(args.cli, "flamegraph", wide, "--svg", "-o", svg)
    root = ET.parse(svg).getroot()
    frames, ns = svg_frames(root)
    omitted = root.find(".//*[@id='omitted']")
    check(omitted is not None and omitted.text.startswith("1 frame narrower")
          and len(frames) + 1 == len(trie_nodes(stacks)) + 1,
          "wide: the 8-byte frame is not drawn and is counted: %d drawn"
          % len(frames))
    labels = ["".join(t.itertext()) for g in frames for t in g.iter(ns + "text")]
    check(labels.count("chain") == 5 and "main" in labels, "wide: frames are labelled: %s"
          % labels)
    # Collapsed stacks to a file.
    out = os.path.join(args.workdir, "stacks.txt")
    r = run(args.cli, "flamegraph", path, "-o", out)
    with open(out) as f:
        check(r.returncode == 0 and r.stdout == "" and collapsed(f.read()),
              "-o writes the collapsed stacks")


def case_plot():
    path, _ = record("plot", "sites", interval=5)
    rep, _ = report(path)
    svg = os.path.join(args.workdir, "plot.svg")
    r = run(args.cli, "plot", path, "-o", svg)
    check(r.returncode == 0 and r.stdout == "", "plot -o exits 0, writes the file only")
    try:
        root = ET.parse(svg).getroot()
    except (ET.ParseError, OSError) as e:
        return check(False, "the plot is well-formed XML: %s" % e)
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", "an svg document")
    texts = ["".join(t.itertext()) for t in root.iter(ns + "text")]
    check("time (s)" in texts and any(re.fullmatch(r"memory \((B|KiB|MiB|GiB)\)", t)
                                      for t in texts), "axes with units: %s" % texts[-8:])
    peak = root.find(".//*[@id='peak']")
    check(peak is not None, "the peak is marked")
    if peak is not None:
        title = peak.find(ns + "title").text
        check("%d bytes" % rep["peak"]["size"] in title,
              "the peak's title gives its exact bytes, %d: %r" % (rep["peak"]["size"], title))
        label = "".join(peak.find(ns + "text").itertext())
        check(re.fullmatch(r"peak \d+(\.\d)? (B|KiB|MiB) at \d+\.\d{3} s", label),
              "the peak is labelled: %r" % label)
        check(peak.find(ns + "circle") is not None, "the peak has its marker")
    heap = root.find(".//*[@id='heap']/" + ns + "polyline")
    points = heap.get("points").split() if heap is not None else []
    check(len(points) >= 3, "the heap's line has the samples and the peak: %d" % len(points))
    xs = [float(p.split(",")[0]) for p in points]
    check(xs == sorted(xs), "the heap's line goes forward in time")
    # The same on standard output.
    r = run(args.cli, "plot", path)
    check(r.returncode == 0 and r.stdout.startswith("<?xml"), "plot to standard output")


def case_readers_badfile():
    """Every reading command refuses bad files and options alike."""
    good, data = recorded("good", "sites")
    d = args.workdir
    write = write_file

    newer = bytearray(data)
    newer[8] = 4
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    bad = [(os.path.join(d, "no-such.trace"), 1, "cannot be opened"),
           (write("empty.trace", b""), 3, "not an objmem-trace recording"),
           (write("text.trace", b"not a trace\n" * 4), 3, "not an objmem-trace recording"),
           (write("header-cut.trace", data[:12]), 3, "truncated"),
           (write("start-cut.trace", data[:40]), 3, "no complete snapshot"),
           (write("newer.trace", bytes(newer)), 3, "format version 4"),
           (write("flipped.trace", bytes(flipped)), 3, "corrupt")]
    cut = write("cut.trace", data[:-3])
    out = os.path.join(d, "out.svg")
    commands = [["leaks", "{}"], ["diff", good, "{}"], ["diff", "{}", good],
                ["flamegraph", "{}"], ["flamegraph", "{}", "--svg", "-o", out],
                ["plot", "{}", "-o", out], ["report", "{}"]]
    for cmd in commands:
        for path, code, words in bad:
            argv = [path if a == "{}" else a for a in cmd]
            r = run(args.cli, *argv, ok=(code,))
            check(r.returncode == code and words in r.stderr and r.stdout == "",
                  "%s on %s: exit %d saying %r (got %d: %r)"
                  % (cmd[0], os.path.basename(path), code, words, r.returncode, r.stderr))
            check(not os.path.exists(out), "%s: no output file for a bad trace" % cmd[0])
        argv = [cut if a == "{}" else a for a in cmd]
        # A cut file reads up to its last complete flush: the output is
        # written, and the exit says incomplete.
        r = run(args.cli, *argv, ok=(4,))
        check(r.returncode == 4 and "incomplete" in r.stderr
              and (r.stdout or os.path.exists(out)),
              "%s on a cut file: output, then exit 4 (%d)" % (cmd[0], r.returncode))
        if os.path.exists(out):
            os.remove(out)
    for cmd in (["flamegraph", good, "-o", "/nonexistent-dir/x.txt"],
                ["plot", good, "-o", "/nonexistent-dir/x.svg"]):
        r = run(args.cli, *cmd, ok=(1,))
        check(r.returncode == 1 and "cannot be written" in r.stderr,
              "%s to an unwritable path: exit 1: %r" % (cmd[0], r.stderr))
    if os.path.exists("/dev/full"):
        r = run(args.cli, "flamegraph", good, "--svg", "-o", "/dev/full", ok=(1,))
        check(r.returncode == 1 and "cannot be written" in r.stderr,
              "a full device: exit 1: %r" % r.stderr)


def sites_lines():
    """(first, last) line of sites() in trace_target.c: its declaration
    to its closing brace."""
    with open(args.source) as f:
        text = f.read().split("\n")
    first = next(n for n, t in enumerate(text, 1) if re.search(r"\bvoid sites\(void\) \{", t))
    last = next(n for n in range(first, len(text) + 1) if text[n - 1] == "}")
    return first, last, text


def case_annotate():
    path, p = record("annotate", "sites")
    check(p.returncode == 0, "run sites exits 0")
    first, last, text = sites_lines()
    for peak, expected in ((False, SITES_END), (True, SITES_PEAK)):
        opts = ["--peak"] if peak else []
        a, _ = read_json("annotate", path, "sites", *opts)
        if not a:
            return check(False, "annotate sites --format json")
        what = "annotate%s" % (" --peak" if peak else "")
        check(a["snapshot"] == ("peak" if peak else "end") and a["function"] == "sites",
              "%s: snapshot and function" % what)
        check(os.path.basename(a["source"]) == "trace_target.c" and a["source_read"],
              "%s: the source is trace_target.c, read: %s" % (what, a["source"]))
        check((a["first_line"], a["last_line"]) == (first, last),
              "%s: lines %d-%d, got %d-%d" % (what, first, last, a["first_line"],
                                              a["last_line"]))
        lines = {l["line"]: l for l in a["lines"]}
        check(sorted(lines) == list(range(first, last + 1)), "%s: every line once" % what)
        running = 0
        for n in range(first, last + 1):
            l = lines.get(n, {})
            names = [k for k, v in SITES.items() if v == n]
            want = expected.get(names[0], (0, 0)) if names else (0, 0)
            running += want[0]
            check((l.get("size"), l.get("count")) == want and l.get("total") == running,
                  "%s: line %d (%s): expected %s total %d, got %s" % (what, n, names, want,
                                                                      running, l))
            check(l.get("text") == text[n - 1], "%s: line %d's text" % (what, n))
        check(a["size"] == running and a["count"] == sum(
            v[1] for v in expected.values()), "%s: totals %d/%d" % (what, a["size"], a["count"]))
    # Callees count on the calling line: main's call of sites() holds all of it.
    m, _ = read_json("annotate", path, "main")
    calls = [l for l in (m or {}).get("lines", []) if re.search(r"\bsites\(\)", l.get("text", ""))]
    check(len(calls) == 1 and calls[0]["size"] == sum(v[0] for v in SITES_END.values()),
          "annotate main: the line calling sites() holds its bytes: %s" % calls)
    t = run(args.cli, "annotate", path, "sites")
    check(t.returncode == 0 and "Line #" in t.stdout and "Line Contents" in t.stdout
          and "bytes live at the end" in t.stdout
          and re.search(r"^\s*%d\s+1000\s+1000\s+10\s+keep\[nkeep\+\+\] = malloc\(100\);"
                        % SITES["malloc"], t.stdout, re.M),
          "annotate text: the malloc line: %s" % t.stdout[:600])
    t = run(args.cli, "annotate", path, "sites", "--peak")
    check(t.returncode == 0 and "bytes live at the peak" in t.stdout, "annotate --peak text")
    r = run(args.cli, "annotate", path, "no_such_function", ok=(1,))
    check(r.returncode == 1 and "no_such_function" in r.stderr and r.stdout == "",
          "annotate of an unknown function: exit 1: %r" % r.stderr)
    r = run(args.cli, "annotate", path, ok=(2,))
    check(r.returncode == 2, "annotate without a function: usage error")
    # The source moved away: the figures without the text.
    moved = os.path.join(args.workdir, "moved")
    os.makedirs(moved)
    src = os.path.join(moved, "trace_target.c")
    shutil.copy(args.source, src)
    target = os.path.join(moved, "trace_target")
    subprocess.run(["cc", "-O0", "-g", "-fno-omit-frame-pointer", "-pthread", src,
                    "-o", target], check=True)
    os.remove(src)
    out = os.path.join(args.workdir, "moved.trace")
    run(args.cli, "run", "-q", "-o", out, "--", target, "sites")
    r = run(args.cli, "annotate", out, "sites", "--format", "json")
    check(r.returncode == 0 and "cannot be read" in r.stderr,
          "annotate with the source gone: exit 0, said: %r" % r.stderr)
    if r.returncode == 0:
        a = json.loads(r.stdout)
        lines = {l["line"]: l for l in a["lines"]}
        check(not a["source_read"] and all("text" not in l for l in a["lines"])
              and lines.get(SITES["malloc"], {}).get("size") == 1000,
              "without the source: the figures, no text")


class Tags(HTMLParser):
    """Open elements; what is left unclosed or closed out of turn."""
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
            "meta", "source", "track", "wbr"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.ids = [], [], {}
        self.texts = []

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        if "id" in d:
            self.ids.setdefault(d["id"], tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> with %s open" % (tag, self.stack[-3:]))
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.texts.append(data)


def html_page(name):
    path, _ = record(name, "sites")
    page = os.path.join(args.workdir, name + ".html")
    r = run(args.cli, "html", path, "-o", page)
    return path, page, r


def html_sites(doc):
    """The rows of a page's table of sites, and {line: (size, count)} of
    those in the target's source file."""
    rows = re.findall(r"<tr><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td><td[^>]*>(\d+)</td>"
                      r".*?<td>([^<]*):(\d+)</td><td>([^<]*)</td></tr>", doc)
    base = os.path.basename(args.source)
    return rows, {int(line): (int(size), int(count)) for _, size, count, f, line, fn
                  in rows if os.path.basename(f) == base}


def case_html():
    path, page, r = html_page("html")
    check(r.returncode == 0 and r.stdout == "", "html -o exits 0, writes the file only")
    with open(page, encoding="utf-8") as f:
        doc = f.read()
    p = Tags()
    p.feed(doc)
    p.close()
    check(not p.errors and not p.stack, "html: tags balance: %s, open %s"
          % (p.errors[:3], p.stack))
    check(doc.startswith("<!DOCTYPE html>"), "html: a doctype")
    refs = set(re.findall(r"\w+://[^\s\"'<>)]*", doc))
    check(refs <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xhtml"},
          "html: no external reference: %s" % refs)
    check(not re.search(r"\b(src|href)\s*=", doc), "html: nothing loaded")
    for want in ("summary", "sites", "flame", "plot", "rendered", "peak"):
        check(want in p.ids, "html: element #%s" % want)
    rep, _ = report(path)
    text = "".join(p.texts)
    for key, value in (("end-bytes", rep["heap"]["size"]),
                       ("end-blocks", rep["heap"]["count"]),
                       ("peak-bytes", rep["peak"]["size"]),
                       ("allocs", rep["allocations"]["count"])):
        check(re.search(r'id="%s">%d<' % (key, value), doc),
              "html: %s is %d" % (key, value))
    rows, got = html_sites(doc)
    for name, value in SITES_END.items():
        check(got.get(SITES[name]) == value, "html: site %s: %s, got %s"
              % (name, value, got.get(SITES[name])))
    check(rows and int(rows[0][1]) == max(v[0] for v in SITES_END.values()),
          "html: the largest site first")
    check("sites at the end" in doc and "heap at the end</h2>" in doc,
          "html: the sites and flame graph at the end")
    # --peak: the sites and the flame graph of the heap at its peak.
    r = run(args.cli, "html", path, "--peak")
    _, got = html_sites(r.stdout)
    check(r.returncode == 0 and "sites at the peak" in r.stdout
          and "heap at its peak</h2>" in r.stdout,
          "html --peak: the sites and flame graph at the peak")
    for name, value in SITES_PEAK.items():
        check(got.get(SITES[name]) == value, "html --peak: site %s: %s, got %s"
              % (name, value, got.get(SITES[name])))
    check("Heap flame graph" in text and "Memory of" in text, "html: both drawings")
    check(doc.count("<?xml") == 0, "html: the drawings without XML declarations")
    # Names from the trace are escaped: a program called <b>&amp;'".
    odd = os.path.join(args.workdir, "<b>&'\"x")
    shutil.copy(args.target, odd)
    out = os.path.join(args.workdir, "odd.trace")
    run(args.cli, "run", "-q", "-o", out, "--", odd, "sites")
    r = run(args.cli, "html", out)
    check(r.returncode == 0 and "<b>&" not in r.stdout
          and "&lt;b&gt;&amp;&#39;&quot;x" in r.stdout,
          "html: the program's name escaped")
    p = Tags()
    p.feed(r.stdout)
    check(not p.errors and not p.stack, "html of the odd name: tags balance")


def case_html_browser():
    """Chromium renders the page and its script runs: #rendered is filled
    in.  Skipped (77) without chromium."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("chromium not installed: trace_html_browser skipped")
        sys.exit(77)
    path, page, r = html_page("browser")
    check(r.returncode == 0, "html exits 0")
    profile = os.path.join(args.workdir, "profile")
    b = subprocess.run([browser, "--headless=new", "--disable-gpu", "--no-sandbox",
                        "--user-data-dir=" + profile, "--dump-dom", "file://" + page],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=100)
    check(b.returncode == 0, "chromium exits 0: %s" % b.stderr[-500:])
    m = re.search(r'<p id="rendered"[^>]*data-rendered="yes"[^>]*>rendered: (\d+) sites, '
                  r'(\d+) flame graph frames</p>', b.stdout)
    check(m is not None, "the page's script ran: %s" % re.findall(
        r'<p id="rendered".*?</p>', b.stdout))
    if m:
        check(int(m.group(1)) >= len(SITES_END),
              "the script counted the sites: %s" % m.group(1))
        check(int(m.group(2)) > 0, "the script counted flame frames")
# ---- sampled recording -------------------------------------------------------

SAMPLE_RATE = 16384
# The truth at the end of `trace_target sampled`: (bytes, blocks) per site.
SAMPLED_TRUTH = {
    "sample_small": (100000 * 64, 100000),
    "sample_mid": (20000 * 1000, 20000),
    "sample_big": (50 * 100000, 50),
    "sample_realloc_to": (5000 * 512, 5000),
}


def case_sampled():
    """--sample-rate: per-site estimates near the truth.  Seeded
    (OBJMEM_TRACE_SEED), so the run is reproducible; the tolerance, 25%,
    is beyond 4 standard deviations of the smallest site's estimate
    (~160 samples: sd ~8%), so another seed passes too."""
    seed = os.environ.get("OBJMEM_TRACE_SEED", "20261123")
    print("seed %s (set OBJMEM_TRACE_SEED to replay)" % seed)
    env = dict(os.environ, OBJMEM_TRACE_SEED=seed)
    out = os.path.join(args.workdir, "sampled.trace")
    p = run(args.cli, "run", "-q", "-o", out, "--sample-rate", str(SAMPLE_RATE),
            "--", args.target, "sampled", env=env)
    check(p.returncode == 0, "sampled run: exit 0")
    rep, _ = report(out)
    if rep is None:
        return check(False, "sampled report reads")
    check(rep["sampled"] is True and rep["sample_rate"] == SAMPLE_RATE,
          "JSON says sampled, at the rate: %s %s" % (rep["sampled"], rep["sample_rate"]))
    got = by_site(rep)
    for name, (size, count) in SAMPLED_TRUTH.items():
        est = got.get(name, (0, 0))
        check(abs(est[0] - size) <= 0.25 * size and abs(est[1] - count) <= 0.25 * count,
              "site %s: estimate %s within 25%% of %s" % (name, est, (size, count)))
    for name in ("sample_churn", "sample_realloc_from"):
        check(name not in got, "site %s: all freed, absent at the end: %s"
              % (name, got.get(name)))
    truth = sum(s for s, _ in SAMPLED_TRUTH.values())
    check(abs(rep["heap"]["size"] - truth) <= 0.1 * truth,
          "heap estimate %d within 10%% of %d" % (rep["heap"]["size"], truth))
    totals_consistent(rep, "sampled")
    with open(out, "rb") as f:
        check(f.read(12)[8] == 3, "a sampled file is format version 3")
    text = run(args.cli, "report", out).stdout
    check("sampled every %d bytes on average: figures are estimates" % SAMPLE_RATE in text
          and "size=~" in text, "text report labels estimates: %r" % text[:400])
    for cmd in (["leaks", out], ["diff", out, out], ["flamegraph", out, "--svg"],
                ["plot", out]):
        r = run(args.cli, *cmd, ok=(0, 23))
        check(r.returncode in (0, 23) and "figures are estimates" in r.stdout,
              "%s labels estimates" % cmd[0])
    leaks = json.loads(run(args.cli, "leaks", out, "--format", "json", ok=(23,)).stdout)
    check(leaks["sampled"] is True, "leaks JSON says sampled")
    # Exact mode unchanged: exact figures, "sampled": false.
    exact, _ = record("exact", "sites")
    rep, _ = report(exact)
    if rep is not None:
        check(rep["sampled"] is False and rep["sample_rate"] == 0, "exact: not sampled")
        expect_sites(rep, SITES_END, "exact beside sampled")
    with open(exact, "rb") as f:
        check(f.read(12)[8] == 3, "an exact file is format version 3")
    check("estimates" not in run(args.cli, "report", exact).stdout,
          "exact report: no estimate label")
    # Bad rates: a usage error that names the value.
    for bad in ("0", "-1", "abc", "1.5", "", "1099511627777", "99999999999999999999"):
        r = run(args.cli, "run", "--sample-rate", bad, "--", args.target, ok=(2,))
        check(r.returncode == 2 and "--sample-rate takes a number of bytes" in r.stderr,
              "--sample-rate %r rejected: %r" % (bad, r.stderr))


# ---- older format versions ---------------------------------------------------

def varints(data, pos, n):
    """n variable-length integers from data at pos, and the position after."""
    out = []
    for _ in range(n):
        v = shift = 0
        while True:
            b = data[pos]
            pos += 1
            v |= (b & 0x7f) << shift
            shift += 7
            if not b & 0x80:
                break
        out.append(v)
    return out, pos


def unzigzag(v):
    return (v >> 1) ^ -(v & 1)


def unpacked(data, version):
    """A version 3 recording written out again as version 1 or 2 would
    have laid it out: TRACEBACKS, SAMPLES and STATE at fixed widths
    (version 1 has no SAMPLING chunk, so an exact recording only)."""
    M = (1 << 64) - 1
    out = bytearray(data[:16])
    struct.pack_into("<I", out, 8, version)
    pos, frames_of = 16, []
    while pos < len(data):
        ctype, size = struct.unpack_from("<II", data, pos)
        payload = data[pos + 8:pos + 8 + size]
        if ctype == 3:  # TRACEBACKS
            first, n = struct.unpack_from("<II", payload, 0)
            body, p = bytearray(struct.pack("<II", first, n)), 8
            for _ in range(n):
                (nframes, total, shared), p = varints(payload, p, 3)
                before = frames_of[-1] if frames_of else []
                last, frames = (before[0] if before else 0), []
                for _ in range(nframes - shared):
                    (d,), p = varints(payload, p, 1)
                    last = (last + unzigzag(d)) & M
                    frames.append(last)
                frames += before[len(before) - shared:] if shared else []
                frames_of.append(frames)
                body += struct.pack("<HH", nframes, total)
                body += b"".join(struct.pack("<Q", f) for f in frames)
            payload = bytes(body)
        elif ctype == 4:  # SAMPLES
            (n,) = struct.unpack_from("<I", payload, 0)
            numbers, _ = varints(payload, 4, 3 * n)
            payload = struct.pack("<I%dQ" % (3 * n), n, *numbers)
        elif ctype == 5:  # STATE: nine totals, then the two lists
            totals, p = varints(payload, 0, 9)
            body = bytearray(struct.pack("<9Q", *totals))
            for _ in range(2):
                (n,) = struct.unpack_from("<I", payload, p)
                body += payload[p:p + 4]
                p, tb = p + 4, 0
                for _ in range(n):
                    (d, size_, count), p = varints(payload, p, 3)
                    tb += unzigzag(d)
                    body += struct.pack("<IQQ", tb, size_, count)
            payload = bytes(body)
        head = struct.pack("<II", ctype, len(payload))
        out += head + payload + struct.pack("<Q", fnv(head + payload))
        pos += 8 + size + 8
    return bytes(out)


def fnv(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & ((1 << 64) - 1)
    return h


def case_old_versions():
    """Recordings in versions 1 and 2 (fixed-width lists) read exactly as
    their version 3 originals, exact and sampled."""
    exact, data = recorded("v3-exact", "wide")
    env = dict(os.environ, OBJMEM_TRACE_SEED="5")
    sampled = os.path.join(args.workdir, "v3-sampled.trace")
    for old in glob.glob(sampled + "*"):
        os.remove(old)
    run(args.cli, "run", "-q", "-o", sampled, "--sample-rate", "16384", "--",
        args.target, "sampled", env=env)
    with open(sampled, "rb") as f:
        sampled_data = f.read()
    for name, path, content, versions in (("exact", exact, data, (1, 2)),
                                          ("sampled", sampled, sampled_data, (2,))):
        want, _ = report(path, "--by", "traceback", "--peak")
        for version in versions:
            old = write_file("v%d-%s.trace" % (version, name), unpacked(content, version))
            got, _ = report(old, "--by", "traceback", "--peak")
            if want is None or got is None:
                check(False, "%s as version %d reads" % (name, version))
                continue
            for rep in (want, got):
                rep.pop("file", None)
            check(got == want, "%s as version %d reads as version 3" % (name, version))
            check(len(content) < len(unpacked(content, version)),
                  "%s: version 3 is the smaller (%d bytes against %d)"
                  % (name, len(content), len(unpacked(content, version))))


def case_sampled_fork():
    """A sampled recording's forked child draws its own samples: parent
    and child make the same 16000 allocations at four sites (~260 samples
    each); with one generator between them, their estimates would be equal
    at every site."""
    env = dict(os.environ, OBJMEM_TRACE_SEED="7")
    out = os.path.join(args.workdir, "alike.trace")
    for old in glob.glob(out + "*"):
        os.remove(old)
    p = run(args.cli, "run", "-q", "-o", out, "--sample-rate", "16384", "--",
            args.target, "fork_alike", env=env)
    m = re.search(r"child (\d+)", p.stdout)
    files = glob.glob("%s.%d.*" % (out, int(m.group(1)))) if m else []
    check(len(files) == 1, "the child wrote its own file: %s" % files)
    if len(files) != 1:
        return
    parent, _ = report(out)
    child, _ = report(files[0])
    names = ["alike_" + c for c in "abcd"]
    # Bytes only: a block count's rounding depends on the address, and
    # the child's addresses part from the parent's at its first flush.
    ours = [by_site(parent).get(n, (0, 0))[0] for n in names]
    theirs = [by_site(child).get(n, (0, 0))[0] for n in names]
    check(all(ours) and all(theirs), "every site sampled on both sides")
    check(ours != theirs, "parent and child sampled differently: %s %s"
          % (ours, theirs))


def case_stripped():
    """Grouping by line in a program without debug information (Debian's
    binaries): each site stays its own group, named by its function, or
    with no symbol either, by its offset in the module."""
    peaks = {}
    for how in ("--strip-debug", "--strip-all"):
        target = os.path.join(args.workdir, "target" + how)
        p = run("strip", how, "-o", target, args.target)
        check(p.returncode == 0, "strip %s" % how)
        out = os.path.join(args.workdir, "stripped%s.trace" % how)
        for old in glob.glob(out + "*"):
            os.remove(old)
        run(args.cli, "run", "-q", "-o", out, "--", target, "agree")
        rep, _ = report(out, "--peak")
        if rep is None:
            return check(False, "%s: the report reads" % how)
        mine = [g for g in rep["groups"] if g["module"] == target]
        peaks[how] = sorted((g["size"], g["count"]) for g in mine)
        check(all(g["line"] == 0 for g in mine), "%s: no lines" % how)
        if how == "--strip-debug":
            names = sorted(g["function"] for g in mine)
            check(names == sorted("agree_" + n for n in
                                  ("table", "nodes", "buffers", "strings", "aligned", "small")),
                  "%s: one group per function: %s" % (how, names))
        else:
            offsets = [g.get("offset") for g in mine]
            check(all(offsets) and len(set(offsets)) == len(offsets),
                  "%s: groups told apart by offset: %s" % (how, offsets))
    check(len(peaks["--strip-debug"]) == 6 and peaks["--strip-debug"] == peaks["--strip-all"],
          "six sites either way, with the same figures: %s" % peaks)


def case_many():
    """400,000 live blocks, recorded exactly, then sampled at every byte:
    the sampled recording's trace table outgrows 4 MiB, and so moves to
    the recorder's huge-page mappings.  The exact figures are exact; the
    sampled ones, each block standing for 1/(1 - e^-16) blocks, within a
    millionth of them."""
    for how, opts, tolerance in (("exact", [], 0), ("sampled", ["--sample-rate", "1"], 1e-6)):
        out = os.path.join(args.workdir, "many-%s.trace" % how)
        for old in glob.glob(out + "*"):
            os.remove(old)
        p = run(args.cli, "run", "-q", "-o", out, *opts, "--", args.target, "many")
        check(p.returncode == 0, "many %s: exit 0" % how)
        peak, _ = report(out, "--peak")
        end, _ = report(out)
        if peak is None or end is None:
            check(False, "many %s: the reports read" % how)
            continue
        for rep, blocks, when in ((peak, 400000, "peak"), (end, 200000, "end")):
            got = by_site(rep).get("many", (0, 0))
            check(abs(got[0] - blocks * 16) <= tolerance * blocks * 16 and
                  abs(got[1] - blocks) <= tolerance * blocks,
                  "many %s at the %s: %s, expected %s" % (how, when, got, (blocks * 16, blocks)))
        totals_consistent(end, "many " + how)


def case_blocks():
    """What an exact recording's block headers must leave as they are:
    alignment, contents across realloc, usable sizes, calloc's zeroes,
    errors, realloc(p, 0), traced and untraced alike (the target prints
    what it sees); and a double free, or a free of a pointer into a block,
    aborts the program with the tracer's message."""
    untraced = run(args.target, "blocks")
    check(untraced.returncode == 0, "blocks untraced: exit 0")
    for how, opts in (("exact", []), ("sampled", ["--sample-rate", "64"])):
        out = os.path.join(args.workdir, "blocks-%s.trace" % how)
        for old in glob.glob(out + "*"):
            os.remove(old)
        p = run(args.cli, "run", "-q", "-o", out, *opts, "--", args.target, "blocks")
        check(p.returncode == 0, "blocks %s: exit 0" % how)
        check(p.stdout == untraced.stdout,
              "blocks %s: the program sees the same blocks:\n%s\nuntraced:\n%s"
              % (how, p.stdout, untraced.stdout))
        rep, _ = report(out)
        check(rep is not None and rep["heap"]["count"] < 10,
              "blocks %s: (nearly) nothing alive at the end: %s"
              % (how, rep and rep["heap"]))
    # A bad free: the C library aborts untraced; traced, the tracer says
    # which pointer, and aborts.
    for mode in ("double_free", "bad_free"):
        aborted = run(args.target, mode, ok=(-signal.SIGABRT,))
        out = os.path.join(args.workdir, mode + ".trace")
        traced = run(args.cli, "run", "-q", "-o", out, "--", args.target, mode,
                     ok=(-signal.SIGABRT,))
        check(aborted.returncode == -signal.SIGABRT and
              traced.returncode == -signal.SIGABRT,
              "%s aborts, untraced and traced: %d %d"
              % (mode, aborted.returncode, traced.returncode))
        check("objmem-trace: free(): not a live block" in traced.stderr,
              "%s: the tracer names it: %r" % (mode, traced.stderr))


def case_sampled_alone():
    """A sampled recording starts no thread (a second thread would switch
    the C library's allocator to locking every call); its timeline comes
    from its sampled events.  An exact recording has its sampler thread."""
    out = os.path.join(args.workdir, "alone.trace")
    for old in glob.glob(out + "*"):
        os.remove(old)
    p = run(args.cli, "run", "-q", "-o", out, "--interval", "5", "--sample-rate",
            "16384", "--", args.target, "single")
    check(p.stdout == "single-threaded 1\n",
          "sampled: the program stays single-threaded: %r" % p.stdout)
    plot = run(args.cli, "plot", out).stdout
    points = re.search(r'id="heap".*?points="([^"]*)"', plot, re.S)
    npoints = len(points.group(1).split()) if points else 0
    # The coarse clock ticks every few ms, and a loaded machine stretches
    # the loop: at least 5 points, where without the events' own samples
    # there would be two (the exit and the peak).
    check(npoints >= 5, "sampled: timeline samples in 100 ms at 5 ms: %d" % npoints)
    exact, p = record("exact-alone", "single")
    check(p.stdout == "single-threaded 0\n",
          "exact: the sampler thread is running: %r" % p.stdout)


CASES = {name[5:]: f for name, f in globals().items() if name.startswith("case_")}


def main():
    global args, SITES
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--cli", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--static")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    SITES = sites()
    args.workdir = os.path.join(args.workdir, args.case)
    shutil.rmtree(args.workdir, ignore_errors=True)
    os.makedirs(args.workdir)
    CASES[args.case]()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
