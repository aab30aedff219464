#!/usr/bin/env python3
"""The CPython side of the tracer benchmark (docs/benchmarks.md, "Tracer
benchmarks"); bench/tracemalloc_bench.c does the same with objmem.

    py_tracemalloc.py time N REPS
        N instances of P made into a preallocated list (lst[i] = cls()),
        then dropped (lst[i] = None), the two loops timed apart; best of
        REPS repetitions (after one warm-up) of ns per allocation
        (<case>-alloc), per drop (<case>-free) and per both (<case>-pair,
        the best repetition's sum):
          off, t1          tracing off / tracemalloc.start(1)
          deep-off, t25, t16
                           the same at the bottom of a DEPTH (25) deep
                           Python recursion, off / start(25) / start(16)
        Off and traced repetitions alternate in the one process.
        t25-frames, t16-frames: the frames in the traceback of an object
        made at the bottom of the recursion; t25-depth: the stack's real
        depth there.  Every 64th of N instances made before timing stays
        alive (pin_pools), so that pymalloc keeps its arenas.
    py_tracemalloc.py rss N TRACE
        RSS bytes taken by N live instances of P, tracing off (TRACE 0:
        rss-off) or on (TRACE 1: rss-on, tracemalloc.start(1) after the
        first reading), and with tracing on tracemalloc's own count of its
        memory (tmem, get_tracemalloc_memory) and the traced bytes
        (traced).

Every line is "py-<key> <value>".  The loop indexes the list with ints made
before any timing (idx), so that the only allocation in the loop is the
instance: range() would make an int per iteration, and tracemalloc would
trace it too.  P is the 2-slot class of the other tables.  The cyclic GC
is off, as objmem's automatic collection is.
"""
import gc
import os
import sys
import time
import tracemalloc

DEPTH = 25


class P:
    __slots__ = ('a', 'b')


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def run(lst, idx):
    cls = P
    t0 = time.perf_counter_ns()
    for i in idx:
        lst[i] = cls()
    t1 = time.perf_counter_ns()
    for i in idx:
        lst[i] = None
    t2 = time.perf_counter_ns()
    return t1 - t0, t2 - t1


def descend(depth, fn, *args):
    # Not a tail call in CPython anyway: every level keeps its frame.
    if depth > 1:
        return descend(depth - 1, fn, *args)
    return fn(*args)


def pin_pools(n):
    # pymalloc unmaps an arena as soon as its last block is freed, so every
    # pass would fault in all its pages again (11,000 faults per 10^6
    # instances, some 10 us each on a VM): the figures would be page
    # faults.  Keeping every 64th of n instances made here alive keeps
    # each pool (341 blocks of 48 bytes) and so each arena in use; the
    # timed passes then reuse the pools' free blocks, as objmem reuses
    # the arenas it keeps.
    tmp = [P() for _ in range(n + n // 64)]
    pin = tmp[::64]
    del tmp
    return pin


def run_case(case, lst, idx):
    name, depth, nframe = case
    if nframe:
        tracemalloc.start(nframe)
    if depth:
        a, f = descend(depth, run, lst, idx)
    else:
        a, f = run(lst, idx)
    if nframe:
        if tracemalloc.get_traced_memory()[0] > 1 << 20:
            sys.exit('py_tracemalloc: traced memory left after the drop')
        tracemalloc.stop()
    return a, f


def stack_depth():
    f, depth = sys._getframe(1), 0
    while f is not None:
        depth, f = depth + 1, f.f_back
    return depth


def probe_bottom():
    return P(), stack_depth()


def probe(nframe):
    tracemalloc.start(nframe)
    o, depth = descend(DEPTH, probe_bottom)
    tb = tracemalloc.get_object_traceback(o)
    tracemalloc.stop()
    return len(tb), depth


def bench_time(n, reps):
    cases = [('off', 0, 0), ('t1', 0, 1),
             ('deep-off', DEPTH, 0), ('t25', DEPTH, 25), ('t16', DEPTH, 16)]
    lst = [None] * n
    idx = list(range(n))
    pin = pin_pools(n)
    best = {}
    for r in range(-1, reps):
        for case in cases:
            a, f = run_case(case, lst, idx)
            if r < 0:
                continue
            for key, v in (('alloc', a), ('free', f), ('pair', a + f)):
                k = (case[0], key)
                if k not in best or v < best[k]:
                    best[k] = v
    for case in cases:
        for key in ('alloc', 'free', 'pair'):
            print(f'py-{case[0]}-{key} {best[(case[0], key)] / n:.3f}')
    frames, total = probe(25)
    print(f'py-t25-frames {frames}')
    print(f'py-t25-depth {total}')
    print(f'py-t16-frames {probe(16)[0]}')
    del pin


def bench_rss(n, trace):
    lst = [None] * n
    idx = list(range(n))
    cls = P
    before = rss_bytes()
    if trace:
        tracemalloc.start(1)
    for i in idx:
        lst[i] = cls()
    after = rss_bytes()
    print(f'py-rss-{"on" if trace else "off"} {after - before}')
    if trace:
        print(f'py-tmem {tracemalloc.get_tracemalloc_memory()}')
        print(f'py-traced {tracemalloc.get_traced_memory()[0]}')
        tracemalloc.stop()
    del lst


def main(argv):
    if tracemalloc.is_tracing():
        sys.exit('py_tracemalloc: tracing already on (PYTHONTRACEMALLOC?)')
    gc.disable()
    if len(argv) == 4 and argv[1] == 'time':
        bench_time(int(argv[2]), int(argv[3]))
    elif len(argv) == 4 and argv[1] == 'rss' and argv[3] in ('0', '1'):
        bench_rss(int(argv[2]), int(argv[3]))
    else:
        sys.exit('usage: py_tracemalloc.py time N REPS | rss N 0|1')


if __name__ == '__main__':
    main(sys.argv)
