/*
 * gc_bench.c — objmem's side of the collector benchmark (docs/benchmarks.md,
 * "Collector benchmarks").  bench/py_gc.py runs the same shapes in CPython
 * and bench/boehm_bench.c in Boehm GC; bench/run.sh runs every measurement
 * in a process of its own and prints the comparison table.
 *
 *   gc_bench cycles N REPS  (a) N/2 unreachable 2-cycles, then
 *                           om_gc_collect(rt, 2): ns per object
 *   gc_bench live N REPS    (b) an N-node chain held by one root, nothing
 *                           to free: ns per object of om_gc_collect(rt, 2)
 *   gc_bench young N REPS   (c) om_gc_collect(rt, 0) of a 1000-node young
 *                           chain over an N-node chain in generation 2:
 *                           us per collection, best and median of REPS
 *   gc_bench drop N REPS    (d) om_decref of the head of an N-node chain:
 *                           ns per object
 *   gc_bench rss N          (e) RSS bytes per object, an N-node chain alive
 *
 * The object is bench.pair of om_bench.c: the 16-byte header and two
 * references (32 bytes), with traverse and clear; chains link through the
 * first slot.  Automatic collection is off (om_gc_disable) for the whole
 * process, so that the only collections are the measured ones; the
 * collector's statistics (om_gc_get_stats) are checked at the end to prove
 * it.  The timed modes run one untimed warm-up repetition and report the
 * best of the REPS timed ones (the warm-up is also printed, as a
 * diagnostic: it is the first collection the process makes).
 *
 * Each line of output is "<key> <value>"; any failure exits with status 2.
 */
#define _POSIX_C_SOURCE 200809L

#include "objmem.h"
#include "bench_pair.h"
#include "bench_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The generation-0 collection of (c) examines this many young objects. */
#define YOUNG 1000

_Noreturn static void die(const char *what, const char *detail) {
    fprintf(stderr, "gc_bench: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(2);
}

/* The process's peak resident bytes so far. */
static size_t peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        die("getrusage failed", NULL);
    return (size_t)ru.ru_maxrss * 1024u;
}

static om_runtime *runtime_or_die(void) {
    om_config cfg;
    om_config_init(&cfg);
    cfg.leak_report = 1;
    om_runtime *rt = om_runtime_new(&cfg);
    if (!rt)
        die("om_runtime_new failed", NULL);
    /* Only the measured collections run. */
    om_gc_disable(rt);
    return rt;
}

/* Check that exactly the expected collections ran (none automatic) and
 * free the runtime, which must find nothing alive. */
static void finish_runtime(om_runtime *rt, size_t gen0, size_t gen2) {
    om_gc_generation_stats st[3];
    if (om_gc_get_stats(rt, st) != OM_OK)
        die("om_gc_get_stats failed", om_last_error(rt));
    if (st[0].collections != gen0 || st[1].collections != 0 ||
        st[2].collections != gen2) {
        fprintf(stderr,
                "gc_bench: collections per generation %zu/%zu/%zu, "
                "expected %zu/0/%zu\n",
                st[0].collections, st[1].collections, st[2].collections,
                gen0, gen2);
        exit(2);
    }
    if (om_last_status(rt) != OM_OK)
        die("a call failed", om_last_error(rt));
    size_t leaked = om_runtime_free(rt);
    if (leaked) {
        fprintf(stderr, "gc_bench: %zu objects leaked\n", leaked);
        exit(2);
    }
}

static om_object *new_pair(om_runtime *rt) {
    om_object *o = om_new(rt, &pair_type);
    if (!o)
        die("om_new failed", om_last_error(rt));
    return o;
}

/* An n-node chain through the first slot; the caller owns the head.  Each
 * node's creation reference moves into its predecessor's slot. */
static om_object *build_chain(om_runtime *rt, size_t n) {
    om_object *head = new_pair(rt);
    pair *cur = (pair *)head;
    for (size_t i = 1; i < n; i++) {
        om_object *o = new_pair(rt);
        cur->a = o;
        cur = (pair *)o;
    }
    return head;
}

/* n/2 pairs of objects referring to each other and to nothing else. */
static void build_cycles(om_runtime *rt, size_t n) {
    for (size_t i = 0; i < n / 2; i++) {
        om_object *x = new_pair(rt);
        om_object *y = new_pair(rt);
        /* Each creation reference moves into the other's slot. */
        ((pair *)x)->a = y;
        ((pair *)y)->a = x;
    }
}

static ptrdiff_t collect_or_die(om_runtime *rt, int gen) {
    ptrdiff_t r = om_gc_collect(rt, gen);
    if (r < 0)
        die("om_gc_collect failed", om_last_error(rt));
    return r;
}

static void expect_count(om_runtime *rt, size_t want, const char *when) {
    if (om_object_count(rt) != want) {
        fprintf(stderr, "gc_bench: %zu objects alive %s, expected %zu\n",
                om_object_count(rt), when, want);
        exit(2);
    }
}

static void expect_found(ptrdiff_t found, size_t want) {
    if (found != (ptrdiff_t)want) {
        fprintf(stderr, "gc_bench: the collection found %td unreachable "
                        "objects, expected %zu\n", found, want);
        exit(2);
    }
}

/* Keeps the best of the timed repetitions (r >= 1); repetition 0 is the
 * warm-up, kept apart. */
typedef struct best_of {
    double first, best;
} best_of;

static void note(best_of *b, int r, double v) {
    if (r == 0)
        b->first = v;
    else if (r == 1 || v < b->best)
        b->best = v;
}

/* ---- (a) unreachable 2-cycles ------------------------------------------------ */

static void bench_cycles(size_t n, int reps) {
    om_runtime *rt = runtime_or_die();
    size_t objs = n / 2 * 2;
    best_of b = {0, 0};
    for (int r = 0; r <= reps; r++) {
        build_cycles(rt, n);
        expect_count(rt, objs, "before the collection");
        uint64_t t0 = now_ns();
        ptrdiff_t found = collect_or_die(rt, 2);
        uint64_t t1 = now_ns();
        expect_found(found, objs);
        expect_count(rt, 0, "after the collection");
        note(&b, r, (double)(t1 - t0) / (double)objs);
    }
    finish_runtime(rt, 0, (size_t)reps + 1);
    printf("om-a %.3f\nom-a-first %.3f\n", b.best, b.first);
}

/* ---- (b) a reachable chain, nothing to free ------------------------------------ */

static void bench_live(size_t n, int reps) {
    om_runtime *rt = runtime_or_die();
    om_object *head = build_chain(rt, n);
    best_of b = {0, 0};
    double transient = 0;
    for (int r = 0; r <= reps; r++) {
        size_t before = rss_bytes();
        uint64_t t0 = now_ns();
        ptrdiff_t found = collect_or_die(rt, 2);
        uint64_t t1 = now_ns();
        expect_found(found, 0);
        if (r == 0) {
            /* The memory the first full collection needed beyond the heap
             * (its work arrays): the peak RSS over the RSS just before it,
             * which was the peak until then, since the process only grew. */
            size_t peak = peak_rss_bytes();
            transient = peak > before ? (double)(peak - before) / (double)n
                                      : 0.0;
        }
        note(&b, r, (double)(t1 - t0) / (double)n);
    }
    expect_count(rt, n, "after the collections");
    om_decref(head);
    finish_runtime(rt, 0, (size_t)reps + 1);
    printf("om-b %.3f\nom-b-first %.3f\nom-b-transient %.3f\n", b.best,
           b.first, transient);
}

/* ---- (c) a young collection over an old heap -------------------------------------- */

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void bench_young(size_t n, int reps) {
    om_runtime *rt = runtime_or_die();
    om_object *old = build_chain(rt, n);
    /* Twice, as the issue says: the chain is then in generation 2. */
    expect_found(collect_or_die(rt, 2), 0);
    expect_found(collect_or_die(rt, 2), 0);
    double *us = malloc((size_t)reps * sizeof *us);
    if (!us)
        die("out of memory", NULL);
    for (int r = 0; r <= reps; r++) {
        om_object *young = build_chain(rt, YOUNG);
        uint64_t t0 = now_ns();
        ptrdiff_t found = collect_or_die(rt, 0);
        uint64_t t1 = now_ns();
        expect_found(found, 0);
        expect_count(rt, n + YOUNG, "after a young collection");
        om_decref(young);
        if (r > 0)
            us[r - 1] = (double)(t1 - t0) / 1000.0;
    }
    qsort(us, (size_t)reps, sizeof *us, cmp_double);
    double median = reps % 2 ? us[reps / 2]
                             : (us[reps / 2 - 1] + us[reps / 2]) / 2;
    printf("om-c %.3f\nom-c-median %.3f\n", us[0], median);
    free(us);
    om_decref(old);
    finish_runtime(rt, (size_t)reps + 1, 2);
}

/* ---- (d) dropping the head of a chain ---------------------------------------------- */

static void bench_drop(size_t n, int reps) {
    om_runtime *rt = runtime_or_die();
    best_of b = {0, 0};
    for (int r = 0; r <= reps; r++) {
        om_object *head = build_chain(rt, n);
        uint64_t t0 = now_ns();
        om_decref(head);
        uint64_t t1 = now_ns();
        expect_count(rt, 0, "after dropping the head");
        note(&b, r, (double)(t1 - t0) / (double)n);
    }
    finish_runtime(rt, 0, 0);
    printf("om-d %.3f\n", b.best);
}

/* ---- (e) resident bytes per object ------------------------------------------------- */

static void bench_rss(size_t n) {
    om_runtime *rt = runtime_or_die();
    size_t before = rss_bytes();
    om_object *head = build_chain(rt, n);
    size_t after = rss_bytes();
    expect_count(rt, n, "in the chain");
    om_decref(head);
    finish_runtime(rt, 0, 0);
    printf("om-e %.3f\n",
           after > before ? (double)(after - before) / (double)n : 0.0);
}

/* ---- command line ---------------------------------------------------------------- */

static size_t parse_count(const char *s, const char *what, size_t max) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 1 || v > max)
        die("bad count", what);
    return (size_t)v;
}

_Noreturn static void usage(void) {
    fprintf(stderr, "usage: gc_bench cycles|live|young|drop N REPS\n"
                    "       gc_bench rss N\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3)
        usage();
    const char *mode = argv[1];
    size_t n = parse_count(argv[2], "object count", SIZE_MAX / 64);
    int is_rss = strcmp(mode, "rss") == 0;
    if (argc != (is_rss ? 3 : 4))
        usage();
    int reps = is_rss ? 0 : (int)parse_count(argv[3], "repetitions", 1000);
    if (n < 2)
        die("bad count", "N must be at least 2");
    if (om_debug_level() != 0)
        fprintf(stderr,
                "gc_bench: warning: library built with OBJMEM_DEBUG=%d; "
                "figures are not comparable\n",
                om_debug_level());

    if (strcmp(mode, "cycles") == 0)
        bench_cycles(n, reps);
    else if (strcmp(mode, "live") == 0)
        bench_live(n, reps);
    else if (strcmp(mode, "young") == 0)
        bench_young(n, reps);
    else if (strcmp(mode, "drop") == 0)
        bench_drop(n, reps);
    else if (is_rss)
        bench_rss(n);
    else
        usage();
    return 0;
}
