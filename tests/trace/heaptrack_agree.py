#!/usr/bin/env python3
"""heaptrack_agree.py — objmem-trace against heaptrack: `trace_target
agree` recorded by both, and the figures compared site by site (function
and line, calls, bytes at the peak, bytes leaked), the top sites by bytes
and by calls in each tool's own order, and the totals.  Skipped (77)
without heaptrack.  The harness (arguments, check, the @site lines) is
test_trace.py's; run as `heaptrack_agree.py --case heaptrack ...`.

What is compared, and why so.  heaptrack counts per site the calls, the
bytes live at the process's peak and the bytes leaked; objmem-trace's
per-site figures are blocks and bytes live at one moment, the end or the
peak.  The agree mode keeps every block to its peak, so there a site's
live blocks and bytes are also all its calls and bytes.

The processes are not the same, though: heaptrack's preload library is
C++, so it loads libstdc++, whose constructor allocates its exception
emergency pool (72704 bytes here) before main; objmem-trace's library is
C and loads nothing.  Allocations made by the loader before either
library starts are seen by neither.  So the figures compared are those of
the program's sites (heaptrack's stacks through main), and the process
totals are checked to differ by exactly heaptrack's stacks that never
reach main.
"""
import glob
import os
import re
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import test_trace as tt  # noqa: E402
from test_trace import check

# The truth of `trace_target agree` per site (each the function of that
# name): calls, bytes, and blocks and bytes left at the end.
AGREE = {
    "agree_table": (1, 300000, 1, 300000),
    "agree_nodes": (5000, 5000 * 48, 0, 0),
    "agree_buffers": (40, 40 * 4096, 40, 40 * 4096),
    "agree_strings": (2000, sum(8 + i % 32 for i in range(2000)),
                      1000, sum(8 + i % 32 for i in range(0, 2000, 2))),
    "agree_aligned": (10, 10 * 640, 0, 0),
    "agree_small": (300, 300 * 16, 300, 300 * 16),
}
# Sites in the top lists compared: five of the six, so that the cut is
# compared too.
TOP = 5


def ht_bytes(n):
    """A byte figure as heaptrack_print writes it: powers of 1000, two
    decimals above 1000 bytes."""
    value, units = float(n), "BKMGTPEZY"
    i = 0
    while i < len(units) - 1 and value > 1000:
        value /= 1000
        i += 1
    return "%dB" % n if i == 0 else "%.2f%s" % (value, units[i])


def heaptrack_record(heaptrack):
    """Run the target under heaptrack; the data file it wrote."""
    base = os.path.join(tt.args.workdir, "agree.heaptrack")
    p = tt.run(heaptrack, "-o", base, tt.args.target, "agree")
    check(p.returncode == 0, "heaptrack run: exit 0")
    # .zst, or .gz where heaptrack found no zstd.
    files = glob.glob(base + ".*")
    check(len(files) == 1, "heaptrack wrote one file: %s" % files)
    return files[0] if len(files) == 1 else None


def heaptrack_sections(printer, data):
    """heaptrack_print's text: {section title: [(function, file, line,
    calls, bytes as printed)]} in its order, and the summary lines."""
    p = tt.run(printer, "-f", data, "-a", "1", "-p", "1", "-l", "1", "-T", "0",
               "-n", "100")
    check(p.returncode == 0, "heaptrack_print: exit 0")
    entry = {
        "MOST CALLS TO ALLOCATION FUNCTIONS":
            r"^(\d+) calls to allocation functions with (\S+) peak consumption from\n",
        "PEAK MEMORY CONSUMERS": r"^(\S+) peak memory consumed over (\d+) calls from\n",
        "MEMORY LEAKS": r"^(\S+) leaked over (\d+) calls from\n",
    }
    sections = {}
    for title in entry:
        # A section: its title alone on a line, up to two empty lines.
        m = re.search(r"^%s\n(.*?)(?:\n\n\n|\Z)" % title, p.stdout, re.M | re.S)
        part = m.group(1) if m else ""
        rows = []
        # An entry: its figures, the allocating function, its place
        # ("at" is missing where a frame has no line).
        for m in re.finditer(entry[title] + r"(\S+)\n(?:  at (.*):(\d+)\n)?", part, re.M):
            a, b, function, path, line = m.groups()
            calls, size = (a, b) if title.startswith("MOST CALLS") else (b, a)
            rows.append((function, os.path.basename(path or ""), int(line or 0),
                         int(calls), size))
        sections[title] = rows
    summary = dict(re.findall(r"^([a-z ]+): (\S+)", p.stdout, re.M))
    return sections, summary


def heaptrack_costs(printer, data, cost):
    """heaptrack_print's flame-graph stacks with their exact cost:
    {stack: cost}, each stack the frames' functions from main out."""
    out = os.path.join(tt.args.workdir, "heaptrack-%s.txt" % cost)
    p = tt.run(printer, "-f", data, "-a", "0", "-p", "0", "-T", "0",
               "--flamegraph-cost-type", cost, "-F", out)
    check(p.returncode == 0, "heaptrack_print -F (%s): exit 0" % cost)
    costs = {}
    with open(out) as f:
        for text in f:
            stack, value = text.rsplit(" ", 1)
            # Frames are "function (file)", separated (and ended) by ';'.
            key = tuple(re.sub(r" \(.*\)$", "", fr) for fr in stack.split(";") if fr)
            check(key not in costs, "heaptrack: stack %s once" % (key,))
            costs[key] = int(value)
    return costs


def objmem_record():
    """objmem-trace's report of the same run: (at the peak, at the end)."""
    path, p = tt.record("agree", "agree")
    check(p.returncode == 0, "objmem-trace run agree: exit 0")
    peak, _ = tt.report(path, "--peak")
    end, _ = tt.report(path)
    return peak, end


def objmem_sites(rep):
    """[(function, line, bytes, blocks)] of a report, in its order."""
    return [(g["function"], g["line"], g["size"], g["count"]) for g in rep["groups"]
            if os.path.basename(g["file"]) == os.path.basename(tt.args.source)]


def case_heaptrack():
    heaptrack, printer = shutil.which("heaptrack"), shutil.which("heaptrack_print")
    if not heaptrack or not printer:
        print("heaptrack not installed: trace_heaptrack skipped")
        sys.exit(77)
    data = heaptrack_record(heaptrack)
    peak, end = objmem_record()
    if not data or not peak or not end:
        return check(False, "both recordings read")
    sections, summary = heaptrack_sections(printer, data)
    calls, at_peak, leaked = (heaptrack_costs(printer, data, c)
                              for c in ("allocations", "peak", "leaked"))
    # The program's stacks are those through main; by function.
    mine = {st[-1]: st for st in calls if "main" in st}
    check(sorted(mine) == sorted(AGREE), "heaptrack: the program's sites are the agree "
          "sites: %s" % sorted(mine))

    o_peak = {fn: (line, size, count) for fn, line, size, count in objmem_sites(peak)}
    o_end = {fn: (line, size, count) for fn, line, size, count in objmem_sites(end)}
    check(len(peak["groups"]) == len(o_peak) == len(AGREE),
          "objmem-trace: at the peak only the agree sites: %s" % sorted(o_peak))
    h_line = {fn: (f, line) for fn, f, line, _, _ in
              sections.get("MOST CALLS TO ALLOCATION FUNCTIONS", [])}
    base = os.path.basename(tt.args.source)

    for fn, (n, size, left, left_size) in AGREE.items():
        line = tt.SITES[fn]
        st = mine.get(fn, ())
        h = (calls.get(st), at_peak.get(st), leaked.get(st))
        o = o_peak.get(fn, (None, None, None))
        check(h_line.get(fn) == (base, line) and o[0] == line,
              "%s: at %s:%d in both: heaptrack %s, objmem-trace line %s"
              % (fn, base, line, h_line.get(fn), o[0]))
        check(h[0] == o[2] == n, "%s: %d calls: heaptrack %s, objmem-trace %s"
              % (fn, n, h[0], o[2]))
        check(h[1] == o[1] == size, "%s: %d bytes at the peak: heaptrack %s, "
              "objmem-trace %s" % (fn, size, h[1], o[1]))
        e = o_end.get(fn, (line, 0, 0))
        check(h[2] == e[1] == left_size and e[2] == left,
              "%s: %d bytes in %d blocks leaked: heaptrack %s bytes, objmem-trace %s"
              % (fn, left_size, left, h[2], e[1:]))

    # The top sites in each tool's order: heaptrack's, less its stacks
    # outside the program (its bytes as it prints them); objmem-trace's
    # report, by size, and by blocks.
    def h_top(title, figure):
        rows = [r for r in sections.get(title, []) if r[0] in mine]
        return [(r[0], r[2], r[figure]) for r in rows[:TOP]]

    by_size = objmem_sites(peak)
    by_count = sorted(by_size, key=lambda s: -s[3])
    for what, h, o in (
            ("bytes", h_top("PEAK MEMORY CONSUMERS", 4),
             [(fn, line, ht_bytes(size)) for fn, line, size, _ in by_size[:TOP]]),
            ("calls", h_top("MOST CALLS TO ALLOCATION FUNCTIONS", 3),
             [(fn, line, count) for fn, line, _, count in by_count[:TOP]])):
        check(len(h) == TOP and h == o, "top %d by %s:\n  heaptrack    %s\n  "
              "objmem-trace %s" % (TOP, what, h, o))

    # Totals: the program's alike in both; the processes' apart by
    # heaptrack's stacks outside main, no more.
    program = [mine.get(fn) for fn in AGREE]
    outside = [st for st in calls if "main" not in st]
    h_calls = sum(calls.get(st, 0) for st in program)
    h_bytes = sum(at_peak.get(st, 0) for st in program)
    h_leaked = sum(leaked.get(st, 0) for st in program)
    truth_calls = sum(v[0] for v in AGREE.values())
    truth_bytes = sum(v[1] for v in AGREE.values())
    truth_leaked = sum(v[3] for v in AGREE.values())
    # Every block is live at the peak: the bytes allocated are the peak's.
    for what, truth, h, ours in (
            ("calls", truth_calls, h_calls, peak["allocations"]["count"]),
            ("bytes allocated", truth_bytes, h_bytes, peak["allocations"]["size"]),
            ("peak", truth_bytes, h_bytes, peak["peak"]["size"]),
            ("leaked", truth_leaked, h_leaked, end["end"]["size"])):
        check(h == ours == truth, "%s: %d: heaptrack %d, objmem-trace %d"
              % (what, truth, h, ours))
    print("heaptrack only, outside main: %s"
          % {st: (calls[st], at_peak.get(st), leaked.get(st)) for st in outside})
    process = (str(peak["allocations"]["count"] + sum(calls[st] for st in outside)),
               ht_bytes(peak["peak"]["size"] + sum(at_peak.get(st, 0) for st in outside)),
               ht_bytes(end["end"]["size"] + sum(leaked.get(st, 0) for st in outside)))
    got = (summary.get("calls to allocation functions"),
           summary.get("peak heap memory consumption"), summary.get("total memory leaked"))
    check(got == process, "process totals (calls, peak, leaked): heaptrack %s, objmem-trace "
          "with heaptrack's own %s" % (got, process))


if __name__ == "__main__":
    tt.CASES["heaptrack"] = case_heaptrack
    sys.exit(tt.main())
