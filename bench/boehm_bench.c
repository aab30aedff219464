/*
 * boehm_bench.c — Boehm GC's side of the collector benchmark
 * (docs/benchmarks.md, "Collector benchmarks"), for reference: the same
 * shapes as bench/gc_bench.c, with 2-slot objects (two pointers, 16 bytes:
 * Boehm needs no header) from GC_MALLOC.
 *
 *   boehm_bench info            "info <libgc version>, <markers> marker(s)"
 *   boehm_bench live N REPS     (b) an N-node chain reachable from a static
 *                               root: ns per object of GC_gcollect()
 *   boehm_bench cycles N REPS   (a) N/2 unreachable 2-cycles, then
 *                               GC_gcollect(): ns per object
 *
 * One marker thread.  Debian's libgc is built with parallel marking and by
 * default starts one marker per CPU; this program asks for one marker both
 * ways libgc offers, before GC_INIT: GC_set_markers_count(1) and the
 * environment variable GC_MARKERS=1 (which libgc reads at initialisation
 * and which would override the call), and then verifies it:
 * GC_get_parallel() must be 0 (it is the number of marker threads besides
 * the collecting one) and the process must have exactly one thread
 * (/proc/self/status) after a collection.  If either check fails the
 * program exits with status 3 and run.sh reports the column as missing.
 *
 * Automatic collections are off (GC_disable) while the heap is built; the
 * timed GC_gcollect calls run with collection re-enabled, and
 * GC_get_gc_no() proves that each timed call made exactly one collection.
 * Each line of output is "<key> <value>"; other failures exit with status 2.
 */
#define _GNU_SOURCE
#define GC_THREADS
#include <gc/gc.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

typedef struct node {
    struct node *a;
    struct node *b;
} node;

_Static_assert(sizeof(node) == 16, "a 2-slot object is two pointers");

/* The root of (b)'s chain: static data, which Boehm scans as a root. */
static node *volatile root;

_Noreturn static void die(const char *what) {
    fprintf(stderr, "boehm_bench: %s\n", what);
    exit(2);
}

_Noreturn static void unavailable(const char *why) {
    fprintf(stderr, "boehm_bench: %s\n", why);
    exit(3);
}

static int thread_count(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    int threads = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0)
            threads = atoi(line + 8);
    fclose(f);
    return threads;
}

static void setup(void) {
    if (setenv("GC_MARKERS", "1", 1) != 0)
        die("setenv failed");
    GC_set_markers_count(1);
    GC_INIT();
    /* Make sure a collection has run (marker threads, if any, would exist
     * by then), then check that there is one marker and one thread. */
    GC_gcollect();
    if (GC_get_parallel() != 0)
        unavailable("GC_get_parallel() != 0: more than one marker");
    if (thread_count() != 1)
        unavailable("the process has more than one thread: marker threads "
                    "were started");
}

static node *new_node(void) {
    node *p = GC_MALLOC(sizeof(node));
    if (!p)
        die("GC_MALLOC failed");
    return p;
}

static double timed_gcollect(void) {
    GC_word before = GC_get_gc_no();
    uint64_t t0 = now_ns();
    GC_gcollect();
    uint64_t t1 = now_ns();
    if (GC_get_gc_no() != before + 1)
        die("GC_gcollect did not make exactly one collection");
    return (double)(t1 - t0);
}

/* One warm-up repetition, then the best of reps (per object). */
static void bench_live(size_t n, int reps) {
    GC_disable();
    node *head = new_node(), *cur = head;
    for (size_t i = 1; i < n; i++) {
        node *p = new_node();
        cur->a = p;
        cur = p;
    }
    root = head;
    head = cur = NULL;
    GC_enable();
    double best = 0;
    for (int r = 0; r <= reps; r++) {
        double ns = timed_gcollect() / (double)n;
        if (r == 1 || (r > 1 && ns < best))
            best = ns;
    }
    /* The chain must have survived every collection. */
    size_t len = 0;
    for (node *p = root; p; p = p->a)
        len++;
    if (len != n)
        die("the chain lost nodes");
    printf("gc-b %.3f\n", best);
}

static void bench_cycles(size_t n, int reps) {
    size_t objs = n / 2 * 2;
    double best = 0;
    for (int r = 0; r <= reps; r++) {
        GC_disable();
        for (size_t i = 0; i < n / 2; i++) {
            node *x = new_node(), *y = new_node();
            x->a = y;
            y->a = x;
        }
        GC_enable();
        double ns = timed_gcollect() / (double)objs;
        if (r == 1 || (r > 1 && ns < best))
            best = ns;
    }
    printf("gc-a %.3f\n", best);
}

static size_t parse_count(const char *s, size_t min, size_t max) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < min || v > max)
        die("bad count");
    return (size_t)v;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "info") == 0) {
        setup();
        unsigned v = GC_get_version();
        printf("info libgc %u.%u.%u, 1 marker\n", v >> 16, (v >> 8) & 0xff,
               v & 0xff);
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: boehm_bench info | live|cycles N REPS\n");
        return 2;
    }
    size_t n = parse_count(argv[2], 2, SIZE_MAX / 64);
    int reps = (int)parse_count(argv[3], 1, 1000);
    setup();
    if (strcmp(argv[1], "live") == 0)
        bench_live(n, reps);
    else if (strcmp(argv[1], "cycles") == 0)
        bench_cycles(n, reps);
    else
        die("unknown mode");
    return 0;
}
