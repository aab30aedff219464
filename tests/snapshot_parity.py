#!/usr/bin/env python3
"""snapshot_parity.py -- objmem's snapshots against CPython's tracemalloc.

Generates two random snapshots (seeded: the seed is printed and --seed N
replays it), has tests/snapshot_parity.c build them through objmem's API
and answer a list of queries, builds the same snapshots with
tracemalloc.Snapshot(raw_traces, limit) and answers the same queries, then
compares the answers line by line: statistics for every key with and
without cumulative mode, compare_to both ways, filter_traces for random
Filter/DomainFilter lists (the traces kept and their statistics),
_format_size, and Traceback.format of the largest groups.

Filenames are bytes, as C sees them; Python sees os.fsdecode() of them, so
UTF-8 and invalid bytes (surrogateescape) are compared too.  Where the C
API adds to tracemalloc (function names in printed frames, limit 0 for
"all") the C side is read accordingly; negative print limits are left to
test_snapshot.c, since objmem follows tracemalloc's documentation there
and CPython's code does not.

Exit status 0 when every query agrees, 1 otherwise.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import tracemalloc

DEFAULT_SEED = 20261123

FILES = [b"a.c", b"b.c", b"src/x.c", b"/no/such/lib/y.h", b"<unknown>",
         "\u00e9.c".encode(), "\u65e5\u672c.c".encode(), b"\xff.c",
         b"\xc3.c", b"a[1].c", b"q-r.c", b"A.c", b".hidden.c",
         b"/no/such/dir/sub/z.c"]
FUNCTIONS = [b"f", b"g", b"main", b"<unknown>"]
PATTERNS = [b"a.c", b"*.c", b"*", b"?.c", b"[ab].c", b"[!ab].c", b"[^a].c",
            b"src/*", b"*/y.h", b"<unknown>", b"*[0-9]*", b"[a-z].c",
            b"[z-a].c", b"[]a].c", b"a[[]1].c", b"[!]].c", b"*.h",
            "?\u672c.c".encode(), b"[\xff\xc3].c", b"A*", b".*", b"[.]*",
            b"q[-]r.c", b"q[!-]r.c", b""]
PATTERN_CHARS = [b"a", b"b", b".", b"c", b"*", b"?", b"[", b"]", b"!", b"-",
                 b"^", b"/", "\u00e9".encode(), b"\xff"]


def random_size(rnd):
    scale = rnd.choice([100, 10 ** 4, 10 ** 6, 10 ** 9, 2 ** 40])
    return rnd.randrange(scale)


def random_snapshot(rnd):
    """(limit, [(domain, size, total_nframe, [(file, line, func)...])])"""
    limit = rnd.randint(1, 6)
    traces = []
    for _ in range(rnd.randint(300, 1200)):
        nframes = rnd.randint(0, limit)
        frames = [(rnd.choice(FILES), rnd.randint(0, 6),
                   rnd.choice(FUNCTIONS)) for _ in range(nframes)]
        total = nframes + (rnd.randint(0, 5) if rnd.random() < 0.2 else 0)
        traces.append((rnd.randint(0, 3), random_size(rnd), total, frames))
    return limit, traces


def to_tracemalloc(limit, traces):
    raw = []
    for domain, size, total, frames in traces:
        tb = tuple((os.fsdecode(f), line) for f, line, _ in frames)
        # objmem's empty traceback stands for CPython's unknown frame.
        raw.append((domain, size, tb or (("<unknown>", 0),), total))
    return tracemalloc.Snapshot(raw, limit)


def random_pattern(rnd):
    if rnd.random() < 0.6:
        return rnd.choice(PATTERNS)
    return b"".join(rnd.choice(PATTERN_CHARS)
                    for _ in range(rnd.randint(0, 6)))


def random_filter(rnd):
    """(C fields, tracemalloc filter)"""
    inclusive = rnd.random() < 0.5
    if rnd.random() < 0.2:
        domain = rnd.randint(0, 3)
        return ([b"D", b"%d" % inclusive, b"", b"-1", b"0", b"%d" % domain],
                tracemalloc.DomainFilter(inclusive, domain))
    pattern = random_pattern(rnd)
    lineno = rnd.randint(0, 6) if rnd.random() < 0.3 else None
    all_frames = rnd.random() < 0.4
    domain = rnd.randint(0, 3) if rnd.random() < 0.3 else None
    fields = [b"F", b"%d" % inclusive, pattern,
              b"%d" % (-1 if lineno is None else lineno),
              b"%d" % all_frames, b"%d" % (-1 if domain is None else domain)]
    return fields, tracemalloc.Filter(inclusive, os.fsdecode(pattern),
                                      lineno, all_frames, domain)


def random_sizes(rnd):
    values = []
    for unit in range(5):
        base = 1024.0 ** unit
        for edge in (99.95, 100, 10 * 1024):
            values += [edge * base - 1, edge * base, edge * base + 1]
    values += [rnd.uniform(-1e15, 1e15) for _ in range(40)]
    values += [rnd.randrange(10 ** rnd.randint(1, 15)) / rnd.randint(1, 9)
               for _ in range(40)]
    return [float(v) for v in values]


KEYS = ["lineno", "filename", "traceback"]
KEY_COMBOS = [(k, c) for k in range(3) for c in (0, 1) if not (k == 2 and c)]


def trace_line(trace):
    domain, size, tb, total = trace
    frames = " ".join("%s:%s" % frame for frame in tb)
    return "%d %d %d %s" % (domain, size, total, frames)


class Run:
    """The input for the C program and the answers expected of it."""

    def __init__(self):
        self.records = []
        self.expected = []  # (line number, [answer lines])

    def record(self, fields):
        self.records.append(b"\t".join(fields))
        return len(self.records)

    def query(self, fields, answer):
        self.expected.append((self.record([b"Q"] + fields), answer))


def build(seed):
    rnd = random.Random(seed)
    run = Run()
    snaps = []
    for index in range(2):
        limit, traces = random_snapshot(rnd)
        run.record([b"S", b"%d" % index, b"%d" % limit])
        for domain, size, total, frames in traces:
            fields = [b"T", b"%d" % domain, b"%d" % size, b"%d" % total]
            for f, line, func in frames:
                fields += [f, b"%d" % line, func]
            run.record(fields)
        snaps.append(to_tracemalloc(limit, traces))

    for index, snap in enumerate(snaps):
        for key, cum in KEY_COMBOS:
            run.query([b"stats", b"%d" % index, b"%d" % key, b"%d" % cum],
                      [str(s) for s in snap.statistics(KEYS[key], cum)])
    for new, old in ((0, 1), (1, 0), (0, 0)):
        for key, cum in KEY_COMBOS:
            stats = snaps[new].compare_to(snaps[old], KEYS[key], cum)
            run.query([b"compare", b"%d" % new, b"%d" % old, b"%d" % key,
                       b"%d" % cum], [str(s) for s in stats])
    for _ in range(80):
        index = rnd.randint(0, 1)
        chosen = [random_filter(rnd) for _ in range(rnd.randint(0, 4))]
        fields = [b"filter", b"%d" % index]
        for c_fields, _ in chosen:
            fields += c_fields
        result = snaps[index].filter_traces([f for _, f in chosen])
        answer = [trace_line(t) for t in result.traces._traces]
        answer += [str(s) for s in result.statistics("lineno")]
        run.query(fields, answer)
    values = random_sizes(rnd)
    run.query([b"sizes"] + [repr(v).encode() for v in values],
              ["%s|%s" % (tracemalloc._format_size(v, False),
                          tracemalloc._format_size(v, True))
               for v in values])
    for index, snap in enumerate(snaps):
        top = snap.statistics("traceback")[:10]
        for limit in (0, 1, 2, 3):
            for recent in (0, 1):
                lines = []
                for stat in top:
                    lines += stat.traceback.format(limit or None, recent)
                run.query([b"print", b"%d" % index, b"%d" % limit,
                           b"%d" % recent], lines)
    return run


# objmem names the function after the line; tracemalloc has none.
FUNCTION_SUFFIX = re.compile(r'^(  File ".*", line \d+), in .*$')


def answers(output):
    """{query line: [answer lines]} from the C program's output."""
    found = {}
    current = None
    for line in output.decode("utf-8", "surrogateescape").split("\n")[:-1]:
        if line.startswith("== "):
            current = found.setdefault(int(line[3:]), [])
        else:
            current.append(FUNCTION_SUFFIX.sub(r"\1", line))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--program", required=True,
                        help="the snapshot_parity executable")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--keep", help="also write the C program's input "
                        "to this file")
    args = parser.parse_args()
    print("seed %d (rerun with --seed %d)" % (args.seed, args.seed))
    run = build(args.seed)
    data = b"\n".join(run.records) + b"\n"
    if args.keep:
        with open(args.keep, "wb") as f:
            f.write(data)
    with tempfile.NamedTemporaryFile(suffix=".txt") as f:
        f.write(data)
        f.flush()
        done = subprocess.run([args.program, f.name], stdout=subprocess.PIPE)
    if done.returncode != 0:
        print("the C program failed with status %d" % done.returncode)
        return 1
    got = answers(done.stdout)
    passed = failed = 0
    for number, want in run.expected:
        have = got.get(number)
        query = run.records[number - 1][:60].decode("utf-8", "replace")
        if have == want:
            passed += 1
            continue
        failed += 1
        print("FAIL query on line %d (%s)" % (number, query))
        have = have or []
        for i in range(max(len(have), len(want))):
            h = have[i] if i < len(have) else "(nothing)"
            w = want[i] if i < len(want) else "(nothing)"
            if h != w:
                print("  line %d: C      %r\n           CPython %r" % (i, h, w))
                break
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
