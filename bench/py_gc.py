#!/usr/bin/env python3
"""The CPython side of the collector benchmark (docs/benchmarks.md,
"Collector benchmarks"): the shapes of bench/gc_bench.c, with instances of
a 2-slot class.

    py_gc.py cycles N REPS   (a) N/2 unreachable 2-cycles, gc.collect(2):
                             ns per object
    py_gc.py live N REPS     (b) an N-node chain held by one local, nothing
                             to free: ns per object of gc.collect(2)
    py_gc.py young N REPS    (c) gc.collect(0) of a 1000-node young chain
                             over an N-node chain in generation 2: us per
                             collection, best and median of REPS
    py_gc.py drop N REPS     (d) `del head` of an N-node chain: ns per object
    py_gc.py rss N           (e) RSS bytes per object, an N-node chain alive

Automatic collection is off (gc.disable()) for the whole process, and the
interpreter's own objects are moved out of the collector's way first
(gc.freeze()), so that the measured collections examine the benchmark's
objects only, as objmem's do.  Timed modes run one untimed warm-up
repetition and report the best of REPS.  Output lines are "<key> <value>"
for bench/run.sh.
"""
import gc
import os
import sys
import time

YOUNG = 1000


class P:
    __slots__ = ('a', 'b')


def rss_bytes():
    # Same source as gc_bench.c: resident pages, second field of statm.
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def build_chain(n):
    # Chained through slot a, head first: the order objmem's chain is made
    # in (and the favourable one for CPython's scan, which then meets every
    # node after the node that refers to it).
    cls = P
    head = cur = cls()
    for _ in range(n - 1):
        nxt = cls()
        cur.a = nxt
        cur = nxt
    return head


def build_cycles(n):
    cls = P
    for _ in range(n // 2):
        x = cls()
        y = cls()
        x.a = y
        y.a = x


def check(found, want):
    if found != want:
        sys.exit(f'py_gc.py: the collection found {found} unreachable '
                 f'objects, expected {want}')


def bench_cycles(n, reps):
    objs = n // 2 * 2
    best = None
    for r in range(reps + 1):
        build_cycles(n)
        t0 = time.perf_counter_ns()
        found = gc.collect(2)
        t1 = time.perf_counter_ns()
        check(found, objs)
        if r > 0 and (best is None or t1 - t0 < best):
            best = t1 - t0
    print(f'py-a {best / objs:.3f}')


def bench_live(n, reps):
    head = build_chain(n)
    best = None
    for r in range(reps + 1):
        t0 = time.perf_counter_ns()
        found = gc.collect(2)
        t1 = time.perf_counter_ns()
        check(found, 0)
        if r > 0 and (best is None or t1 - t0 < best):
            best = t1 - t0
    print(f'py-b {best / n:.3f}')
    del head


def bench_young(n, reps):
    old = build_chain(n)
    check(gc.collect(2), 0)
    check(gc.collect(2), 0)
    times = []
    for r in range(reps + 1):
        young = build_chain(YOUNG)
        t0 = time.perf_counter_ns()
        found = gc.collect(0)
        t1 = time.perf_counter_ns()
        check(found, 0)
        del young
        if r > 0:
            times.append((t1 - t0) / 1000)
    times.sort()
    k = len(times)
    median = times[k // 2] if k % 2 else (times[k // 2 - 1] + times[k // 2]) / 2
    print(f'py-c {times[0]:.3f}')
    print(f'py-c-median {median:.3f}')
    del old


def bench_drop(n, reps):
    best = None
    for r in range(reps + 1):
        head = build_chain(n)
        t0 = time.perf_counter_ns()
        del head
        t1 = time.perf_counter_ns()
        if r > 0 and (best is None or t1 - t0 < best):
            best = t1 - t0
    print(f'py-d {best / n:.3f}')


def bench_rss(n):
    before = rss_bytes()
    head = build_chain(n)
    after = rss_bytes()
    print(f'py-e {max(after - before, 0) / n:.3f}')
    del head


def main(argv):
    modes = {'cycles': bench_cycles, 'live': bench_live,
             'young': bench_young, 'drop': bench_drop}
    if len(argv) == 4 and argv[1] in modes:
        args = (int(argv[2]), int(argv[3]))
    elif len(argv) == 3 and argv[1] == 'rss':
        args = (int(argv[2]),)
    else:
        sys.exit('usage: py_gc.py cycles|live|young|drop N REPS | rss N')
    if args[0] < 2 or (len(args) > 1 and args[1] < 1):
        sys.exit('py_gc.py: N must be at least 2 and REPS at least 1')
    gc.disable()
    gc.freeze()
    (modes.get(argv[1]) or bench_rss)(*args)


if __name__ == '__main__':
    main(sys.argv)
