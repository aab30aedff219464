#!/usr/bin/env python3
"""The CPython side of the weak-reference benchmark (docs/benchmarks.md).

    py_weakref.py N REPS   lines "<key> <ns per op>", as weakref_bench.c:
      create   weakref.ref(o) of an object with no ref yet, then dropped
      get      r() on a live ref
      death1, death10, death100
               the death of an object holding 1, 10 or 100 refs with a
               callback each (refs kept alive elsewhere), per death
      cache    d[key] on a WeakValueDictionary with a str key
    and for each, "<key>-loop": the same loop without the operation, the
    interpreter's share that bench/weakref.sh reports beside it.

W is a class with __slots__ = ('a', 'b', '__weakref__'), the referent
weakref_bench.c mirrors.
"""
import sys
import time
import weakref


class W:
    __slots__ = ('a', 'b', '__weakref__')


def clock():
    return time.perf_counter_ns()


def t_create(n):
    o, ref = W(), weakref.ref
    t0 = clock()
    for _ in range(n):
        ref(o)
    return clock() - t0


def t_get(n):
    o = W()
    r = weakref.ref(o)
    t0 = clock()
    for _ in range(n):
        r()
    return clock() - t0


def t_loop(n):
    o = W()
    t0 = clock()
    for _ in range(n):
        o
    return clock() - t0


def callback(ref):
    pass


def t_death(n, k):
    objs = [W() for _ in range(n)]
    ref = weakref.ref
    refs = [ref(o, callback) for o in objs for _ in range(k)]
    t0 = clock()
    objs.clear()
    t = clock() - t0
    if any(r() is not None for r in refs):
        sys.exit('a referent survived')
    return t


def t_cache(n):
    d = weakref.WeakValueDictionary()
    key = 'image-42.png'
    o = W()
    d[key] = o
    t0 = clock()
    for _ in range(n):
        d[key]
    return clock() - t0


def best(fn, n, reps, *args):
    fn(n, *args)   # warm-up
    return min(fn(n, *args) for _ in range(reps)) / n


def main():
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    loop = best(t_loop, n, reps)
    print(f'py-create {best(t_create, n, reps):.3f}')
    print(f'py-get {best(t_get, n, reps):.3f}')
    for k in (1, 10, 100):
        objs = max(n // 10 // k, 1)
        print(f'py-death{k} {best(t_death, objs, reps, k):.3f}')
    print(f'py-cache {best(t_cache, n, reps):.3f}')
    print(f'py-loop {loop:.3f}')


main()
