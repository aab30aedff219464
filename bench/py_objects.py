#!/usr/bin/env python3
"""The CPython side of the foundation benchmark (docs/benchmarks.md).

    py_objects.py time N REPS   best ns per P() call: gross, loop-only, net
    py_objects.py rss N         RSS bytes per P instance, N instances alive

P is a class with __slots__ = ('a', 'b'): a 2-slot instance tracked by the
cyclic GC, the object objmem's benchmark type mirrors.  Output lines are
"<key> <value>" for bench/run.sh to parse.
"""
import os
import sys
import time


class P:
    __slots__ = ('a', 'b')


def rss_bytes():
    # Same source as om_bench.c: resident pages, second field of statm.
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def create_drop(n):
    # Local names: the loop measures the instance, not global lookups.
    cls = P
    t0 = time.perf_counter_ns()
    for _ in range(n):
        cls()
    return time.perf_counter_ns() - t0


def empty_loop(n):
    # The same loop without the call: the baseline subtracted for "net".
    cls = P
    t0 = time.perf_counter_ns()
    for _ in range(n):
        cls
    return time.perf_counter_ns() - t0


def bench_time(n, reps):
    # Repetition 0 warms up (specialising interpreter, pymalloc pools) and is
    # not counted; the best of the rest is reported for each loop.
    create_drop(n)
    empty_loop(n)
    gross = min(create_drop(n) for _ in range(reps))
    loop = min(empty_loop(n) for _ in range(reps))
    print(f'py-gross {gross / n:.3f}')
    print(f'py-loop {loop / n:.3f}')
    print(f'py-net {(gross - loop) / n:.3f}')


def bench_rss(n):
    # Preallocated and filled before the first reading, so that the list's
    # own 8 bytes per entry are not counted.
    keep = [None] * n
    cls = P
    before = rss_bytes()
    for i in range(n):
        keep[i] = cls()
    after = rss_bytes()
    print(f'py-rss {max(after - before, 0) / n:.3f}')
    del keep


def main(argv):
    if len(argv) == 4 and argv[1] == 'time':
        bench_time(int(argv[2]), int(argv[3]))
    elif len(argv) == 3 and argv[1] == 'rss':
        bench_rss(int(argv[2]))
    else:
        sys.exit('usage: py_objects.py time N REPS | rss N')


if __name__ == '__main__':
    main(sys.argv)
