/*
 * om_bench.c — the C side of the foundation benchmark (docs/benchmarks.md):
 * create+destroy time and resident bytes per object, for objmem and for
 * glibc malloc of the same size.  bench/run.sh runs each measurement in a
 * process of its own and prints the comparison table.
 *
 *   om_bench objmem-time N REPS   best ns per om_new+om_decref pair
 *   om_bench objmem-held N REPS   the same with one object kept alive
 *   om_bench objmem-rss  N        RSS bytes per object, N objects alive
 *   om_bench malloc-time N REPS   best ns per malloc(32)+free pair
 *   om_bench malloc-rss  N        RSS bytes per block, N blocks alive
 *
 * Each mode prints one line "<mode> <value>" on stdout for run.sh to parse.
 */
#define _POSIX_C_SOURCE 200809L

#include "objmem.h"
#include "bench_pair.h"
#include "bench_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every pointer the timed loops produce is stored here.  A store to a
 * volatile object is observable behaviour, so the compiler can neither drop
 * a malloc/free pair (which gcc and clang otherwise do) nor hoist the work
 * out of the loop. */

static om_runtime *runtime_or_die(void) {
    om_config cfg;
    om_config_init(&cfg);
    /* A leak at shutdown would mean the benchmark is wrong: keep the
     * report on, whatever the environment says. */
    cfg.leak_report = 1;
    om_runtime *rt = om_runtime_new(&cfg);
    if (!rt) {
        fprintf(stderr, "om_bench: om_runtime_new failed\n");
        exit(2);
    }
    return rt;
}

static void finish_runtime(om_runtime *rt) {
    size_t leaked = om_runtime_free(rt);
    if (leaked) {
        fprintf(stderr, "om_bench: %zu objects leaked\n", leaked);
        exit(2);
    }
}

static om_object *new_pair_or_die(om_runtime *rt) {
    om_object *o = om_new(rt, &pair_type);
    if (!o) {
        fprintf(stderr, "om_bench: om_new: %s\n", om_last_error(rt));
        exit(2);
    }
    return o;
}

/* ---- time per create+destroy pair ---------------------------------------- */

static double objmem_time(size_t n, int reps, int hold_one) {
    om_runtime *rt = runtime_or_die();
    /* With hold_one, a live neighbour keeps the pool from emptying on every
     * decref; comparing the two modes isolates the cost of pool turnover. */
    om_object *held = hold_one ? new_pair_or_die(rt) : NULL;
    double best = 0;
    /* Repetition 0 is a warm-up (first arena mapped, code paged in) and is
     * not counted. */
    for (int r = 0; r <= reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            om_object *o = om_new(rt, &pair_type);
            sink = o;
            om_decref(o);
        }
        uint64_t t1 = now_ns();
        double ns = (double)(t1 - t0) / (double)n;
        if (r > 0 && (r == 1 || ns < best))
            best = ns;
    }
    /* A failed om_new records its status, so one check after the loop
     * catches a failure anywhere in it without adding work inside. */
    if (om_last_status(rt) != OM_OK) {
        fprintf(stderr, "om_bench: %s\n", om_last_error(rt));
        exit(2);
    }
    om_decref(held);
    finish_runtime(rt);
    return best;
}

static double malloc_time(size_t n, int reps) {
    double best = 0;
    for (int r = 0; r <= reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            void *p = malloc(32);
            sink = p;
            free(p);
        }
        uint64_t t1 = now_ns();
        double ns = (double)(t1 - t0) / (double)n;
        if (r > 0 && (r == 1 || ns < best))
            best = ns;
    }
    if (!sink) {
        fprintf(stderr, "om_bench: malloc failed\n");
        exit(2);
    }
    return best;
}

/* ---- resident bytes per live object ----------------------------------------- */

/* The pointer array is allocated and written before the first RSS reading
 * so that only the objects themselves show up in the difference. */
static void **pointer_array(size_t n) {
    void **a = malloc(n * sizeof *a);
    if (!a) {
        fprintf(stderr, "om_bench: no memory for %zu pointers\n", n);
        exit(2);
    }
    /* Non-zero fill: a zero memset after malloc may be turned into calloc,
     * which would leave the pages unmapped. */
    memset(a, 0xA5, n * sizeof *a);
    return a;
}

static double objmem_rss(size_t n) {
    void **keep = pointer_array(n);
    om_runtime *rt = runtime_or_die();
    size_t before = rss_bytes();
    for (size_t i = 0; i < n; i++)
        keep[i] = new_pair_or_die(rt);
    size_t after = rss_bytes();
    if (om_object_count(rt) != n) {
        fprintf(stderr, "om_bench: %zu objects alive, expected %zu\n",
                om_object_count(rt), n);
        exit(2);
    }
    for (size_t i = 0; i < n; i++)
        om_decref(keep[i]);
    finish_runtime(rt);
    free(keep);
    return after < before ? 0.0 : (double)(after - before) / (double)n;
}

static double malloc_rss(size_t n) {
    void **keep = pointer_array(n);
    size_t before = rss_bytes();
    for (size_t i = 0; i < n; i++) {
        keep[i] = malloc(32);
        if (!keep[i]) {
            fprintf(stderr, "om_bench: malloc failed at block %zu\n", i);
            exit(2);
        }
    }
    size_t after = rss_bytes();
    for (size_t i = 0; i < n; i++)
        free(keep[i]);
    free(keep);
    return after < before ? 0.0 : (double)(after - before) / (double)n;
}

/* ---- command line ---------------------------------------------------------- */

static size_t parse_count(const char *s, const char *what) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v == 0 || v > SIZE_MAX / 16) {
        fprintf(stderr, "om_bench: bad %s '%s'\n", what, s);
        exit(2);
    }
    return (size_t)v;
}

_Noreturn static void usage(void) {
    fprintf(stderr,
            "usage: om_bench objmem-time|objmem-held|malloc-time N REPS\n"
            "       om_bench objmem-rss|malloc-rss N\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3)
        usage();
    const char *mode = argv[1];
    size_t n = parse_count(argv[2], "object count");
    int is_time = strstr(mode, "-rss") == NULL;
    if (argc != (is_time ? 4 : 3))
        usage();
    size_t reps = is_time ? parse_count(argv[3], "repetition count") : 0;
    if (reps > 1000)
        usage();

    if (om_debug_level() != 0)
        fprintf(stderr,
                "om_bench: warning: library built with OBJMEM_DEBUG=%d; "
                "figures are not comparable\n",
                om_debug_level());

    double v;
    if (strcmp(mode, "objmem-time") == 0)
        v = objmem_time(n, (int)reps, 0);
    else if (strcmp(mode, "objmem-held") == 0)
        v = objmem_time(n, (int)reps, 1);
    else if (strcmp(mode, "malloc-time") == 0)
        v = malloc_time(n, (int)reps);
    else if (strcmp(mode, "objmem-rss") == 0)
        v = objmem_rss(n);
    else if (strcmp(mode, "malloc-rss") == 0)
        v = malloc_rss(n);
    else
        usage();
    printf("%s %.3f\n", mode, v);
    return 0;
}
