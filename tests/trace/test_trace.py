#!/usr/bin/env python3
"""test_trace.py — objmem-trace end to end: record trace_target with
`objmem-trace run`, read it back with `report --format json`, and check
exact bytes and counts per allocation site (the sites are the lines of
trace_target.c marked "@site NAME").  One case per invocation (--case);
each ends with "N passed, N failed" and exits non-zero on any failure.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys

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


def case_badfile():
    good, p = record("good", "sites")
    with open(good, "rb") as f:
        data = f.read()
    d = args.workdir

    def write(name, content):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(content)
        return path

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
    newer[8] = 2
    bad("newer.trace", bytes(newer), 3, ["newer", "format version 2"])
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
    for sub in ([], ["run"], ["report"]):
        r = run(args.cli, *sub, "--help")
        check(r.returncode == 0 and "usage: objmem-trace" in r.stdout,
              "%s --help" % (sub or "objmem-trace"))
    r = run(args.cli, "help", "report")
    check(r.returncode == 0 and "--by" in r.stdout, "help report")
    r = run(args.cli, "--version")
    check(r.returncode == 0 and re.match(r"objmem-trace \d+\.\d+\.\d+ \(trace format 1\)", r.stdout),
          "--version: %r" % r.stdout)
    for bad in (["frobnicate"], ["run"], ["run", "--frames", "0", "--", "true"],
                ["report"], ["report", "x", "--by", "colour"],
                ["report", "x", "--format", "xml"], ["report", "--nope", "x"]):
        r = run(args.cli, *bad, ok=(2,))
        check(r.returncode == 2 and r.stderr, "usage error %s: exit 2" % bad)
    check("exit status" in run(args.cli, "--help").stdout, "--help documents exit codes")


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
