/*
 * weakref_bench.c — objmem's side of the weak-reference benchmark
 * (docs/benchmarks.md, "Weak-reference benchmarks"); bench/py_weakref.py
 * does the same in CPython and bench/weakref.sh prints the comparison.
 *
 *   weakref_bench N REPS   one line per measurement, "<key> <ns per op>":
 *     create   om_weakref_new (no callback, none shared) + om_decref
 *     get      om_weakref_get on a live ref + om_decref of the result
 *     death1, death10, death100
 *              the death of an object holding 1, 10 or 100 refs with a
 *              callback each (refs kept alive elsewhere): ns per death,
 *              callbacks included
 *     cache    om_weakvaluedict_get of a live entry (str key) + om_decref
 *
 * The referent is a weakly referenceable 2-slot object.  Each figure is the
 * best of REPS timed repetitions after one warm-up; automatic collection
 * is off so that only the measured work runs.  Failures exit with status 2.
 */
#define _POSIX_C_SOURCE 200809L

#include "objmem.h"
#include "bench_util.h"

#include <string.h>

typedef struct wnode {
    OM_OBJECT_HEAD
    om_object *a, *b;
} wnode;

static const om_type wnode_type = {
    .name = "bench.wnode",
    .size = sizeof(wnode),
    .flags = OM_TYPE_WEAKREFABLE,
};

_Noreturn static void die(const char *what) {
    fprintf(stderr, "weakref_bench: %s\n", what);
    exit(2);
}

static void *must(void *p, const char *what) {
    if (!p)
        die(what);
    return p;
}

static size_t callbacks;
static void count_callback(om_object *ref, void *data) {
    (void)ref;
    (void)data;
    callbacks++;
}

/* Best of reps timings of fn(rt, n), in ns per operation. */
typedef uint64_t (*timed_fn)(om_runtime *rt, size_t n, size_t arg);

static double best(om_runtime *rt, timed_fn fn, size_t n, size_t arg,
                   int reps) {
    double b = 0;
    for (int r = 0; r <= reps; r++) {
        double t = (double)fn(rt, n, arg) / (double)n;
        if (r == 1 || (r > 1 && t < b))
            b = t;
    }
    return b;
}

static uint64_t time_create(om_runtime *rt, size_t n, size_t arg) {
    (void)arg;
    om_object *o = must(om_new(rt, &wnode_type), "om_new failed");
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        om_object *r = om_weakref_new(o, NULL, NULL);
        sink = r;
        om_decref(r);
    }
    uint64_t t = now_ns() - t0;
    om_decref(o);
    return t;
}

static uint64_t time_get(om_runtime *rt, size_t n, size_t arg) {
    (void)arg;
    om_object *o = must(om_new(rt, &wnode_type), "om_new failed");
    om_object *r = must(om_weakref_new(o, NULL, NULL), "om_weakref_new failed");
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        om_object *got = om_weakref_get(r);
        sink = got;
        om_decref(got);
    }
    uint64_t t = now_ns() - t0;
    om_decref(r);
    om_decref(o);
    return t;
}

/* n objects with k callback refs each; the drop of the n objects is
 * timed. */
static uint64_t time_death(om_runtime *rt, size_t n, size_t k) {
    om_object **objs = must(malloc(n * sizeof *objs), "out of memory");
    om_object **refs = must(malloc(n * k * sizeof *refs), "out of memory");
    for (size_t i = 0; i < n; i++) {
        objs[i] = must(om_new(rt, &wnode_type), "om_new failed");
        for (size_t j = 0; j < k; j++)
            refs[i * k + j] = must(om_weakref_new(objs[i], count_callback, NULL),
                                   "om_weakref_new failed");
    }
    size_t before = callbacks;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++)
        om_decref(objs[i]);
    uint64_t t = now_ns() - t0;
    if (callbacks - before != n * k)
        die("a callback did not run");
    for (size_t i = 0; i < n * k; i++)
        om_decref(refs[i]);
    free(refs);
    free(objs);
    return t;
}

static uint64_t time_cache(om_runtime *rt, size_t n, size_t arg) {
    (void)arg;
    om_object *table = must(om_weakvaluedict_new(rt), "table failed");
    om_object *key = must(om_str_new(rt, "image-42.png"), "key failed");
    om_object *value = must(om_new(rt, &wnode_type), "om_new failed");
    if (om_weakvaluedict_set(table, key, value) != OM_OK)
        die("om_weakvaluedict_set failed");
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        om_object *got = om_weakvaluedict_get(table, key);
        sink = got;
        om_decref(got);
    }
    uint64_t t = now_ns() - t0;
    om_decref(value);
    om_decref(key);
    om_decref(table);
    return t;
}

static size_t parse(const char *s, const char *what) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v == 0 || v > 100000000)
        die(what);
    return (size_t)v;
}

int main(int argc, char **argv) {
    if (argc != 3)
        die("usage: weakref_bench N REPS");
    size_t n = parse(argv[1], "bad N");
    int reps = (int)parse(argv[2], "bad REPS");
    om_runtime *rt = must(om_runtime_new(NULL), "om_runtime_new failed");
    om_gc_disable(rt);
    printf("om-create %.3f\n", best(rt, time_create, n, 0, reps));
    printf("om-get %.3f\n", best(rt, time_get, n, 0, reps));
    /* Deaths: fewer objects as they hold more refs, ~10^6 refs a round. */
    size_t ks[] = {1, 10, 100};
    for (int i = 0; i < 3; i++) {
        size_t objs = n / 10 / ks[i] ? n / 10 / ks[i] : 1;
        printf("om-death%zu %.3f\n", ks[i],
               best(rt, time_death, objs, ks[i], reps));
    }
    printf("om-cache %.3f\n", best(rt, time_cache, n, 0, reps));
    if (om_runtime_free(rt) != 0)
        die("objects leaked");
    return 0;
}
