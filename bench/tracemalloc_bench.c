/*
 * tracemalloc_bench.c — objmem's side of the tracer benchmark
 * (docs/benchmarks.md, "Tracer benchmarks"); bench/py_tracemalloc.py does
 * the same in CPython and bench/tracemalloc.sh prints the comparison.
 *
 *   tracemalloc_bench time N REPS
 *       N blocks allocated and kept alive (pointers in an array), then freed
 *       in allocation order; the two loops timed apart.  For each case the
 *       best of REPS repetitions, after warm-ups, of ns per allocation
 *       (<case>-alloc), per free (<case>-free) and per allocation + free
 *       (<case>-pair, the best repetition's sum, not the sum of the bests):
 *         malloc-off, malloc-t1     om_malloc(rt, 32) / om_free, tracing
 *                                   off / om_tracemalloc_start(rt, 1)
 *         new-off, new-t1           om_new of the 32-byte pair type /
 *                                   om_decref, off / start(rt, 1)
 *         malloc-deep-off, malloc-t16, new-deep-off, new-t16
 *                                   the same at the bottom of a chain of
 *                                   DEPTH (16) noinline calls, off /
 *                                   start(rt, 16)
 *       Off and traced repetitions alternate in the one process; the
 *       tracer's table keeps its size across stop and start, so the best
 *       traced repetition is the steady state; "<case>-cold-pair" is the
 *       first traced pass of the process (the table growing, its pages
 *       faulted in).  t16-frames and t16-total: the frames kept and the
 *       stack depth seen by a traceback taken at the bottom of the chain.
 *   tracemalloc_bench pair N REPS
 *       tracing off, as om_bench: best ns per om_malloc(rt, 32) + om_free
 *       pair (pair-malloc) and per om_new + om_decref pair (pair-new), one
 *       block at a time.
 *   tracemalloc_bench rss N TRACE
 *       RSS bytes taken by N live 32-byte om_malloc blocks, written to,
 *       with tracing off (TRACE 0: rss-off) or on (TRACE 1: rss-on; the
 *       tracer is started after the first reading, so its whole cost is in
 *       the figure), and with tracing on the tracer's own count of its
 *       memory (tmem, om_tracemalloc_get_tracemalloc_memory) and the traced
 *       bytes (traced).
 *
 * Every line is "om-<key> <value>"; TRACEMALLOC_BENCH_VERBOSE=1 also
 * prints every pass of the time mode on stderr, and
 * TRACEMALLOC_BENCH_ONLY="malloc-t1 ..." runs only the cases named (to
 * profile one).  The program also builds against a
 * library without the tracer (the commit before it, for the "tracing off"
 * comparison: bench/tracemalloc.sh): the traced cases are then left out.
 * Automatic collection is off.  Failures exit with status 2.
 */
#define _GNU_SOURCE

#include "objmem.h"
#include "bench_pair.h"
#include "bench_util.h"

#include <string.h>
#include <sys/mman.h>

#ifdef OM_TRACEMALLOC_MAX_FRAMES
#define HAVE_TRACER 1
#else
#define HAVE_TRACER 0
#endif

/* Functions that must keep a frame of their own (the chain below). */
#define OM_NOINLINE_BENCH __attribute__((noinline, noclone))

/* The depth of the call chain of the 16-frame cases. */
#define DEPTH 16

_Noreturn static void die(const char *what, const char *detail) {
    fprintf(stderr, "tracemalloc_bench: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    exit(2);
}

static om_runtime *runtime_or_die(void) {
    om_config cfg;
    om_config_init(&cfg);
    cfg.leak_report = 1;
    cfg.malloc_debug = 0; /* whatever OBJMEM_MALLOC says */
    om_runtime *rt = om_runtime_new(&cfg);
    if (!rt)
        die("om_runtime_new failed", NULL);
    om_gc_disable(rt);
    return rt;
}

/* The pointer array, mapped and written before anything is measured, so
 * that it comes from no allocator under test and adds no page fault. */
static void **pointer_array(size_t n) {
    void **a = mmap(NULL, n * sizeof *a, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        die("no memory for the pointer array", NULL);
    memset(a, 0xA5, n * sizeof *a);
    return a;
}

/* ---- the timed loops ----------------------------------------------------------- */

enum { KIND_MALLOC, KIND_NEW };

typedef struct job {
    om_runtime *rt;
    void **keep;
    size_t n;
    int kind;
    uint64_t alloc_ns, free_ns;
} job;

/* Allocate n blocks into keep, then free them, timing each loop.  The
 * om_malloc and om_new calls are the header's macros: the call site is
 * passed, as in a program using objmem. */
static OM_NOINLINE_BENCH void run_job(job *j) {
    om_runtime *rt = j->rt;
    void **keep = j->keep;
    size_t n = j->n;
    uint64_t t0 = now_ns();
    if (j->kind == KIND_MALLOC) {
        for (size_t i = 0; i < n; i++)
            keep[i] = om_malloc(rt, 32);
    } else {
        for (size_t i = 0; i < n; i++)
            keep[i] = om_new(rt, &pair_type);
    }
    uint64_t t1 = now_ns();
    /* One check after the loop: a failed allocation stored NULL. */
    for (size_t i = 0; i < n; i++)
        if (!keep[i])
            die("allocation failed", om_last_error(rt));
    uint64_t t2 = now_ns();
    if (j->kind == KIND_MALLOC) {
        for (size_t i = 0; i < n; i++)
            om_free(rt, keep[i]);
    } else {
        for (size_t i = 0; i < n; i++)
            om_decref(keep[i]);
    }
    uint64_t t3 = now_ns();
    j->alloc_ns = t1 - t0;
    j->free_ns = t3 - t2;
}

/* A chain of `depth` frames above run_job: each level calls the next and
 * then stores to a volatile, so no call is a tail call and every level
 * keeps its frame. */
static volatile int chain_sink;

static OM_NOINLINE_BENCH void descend(int depth, job *j) {
    if (depth > 1)
        descend(depth - 1, j);
    else
        run_job(j);
    chain_sink = depth;
}

typedef struct result {
    double alloc, free, pair; /* best of the timed repetitions, ns */
    double first_pair;        /* the first pass of the process */
    int seen;
} result;

static void record(result *r, const job *j, int timed) {
    double a = (double)j->alloc_ns / (double)j->n;
    double f = (double)j->free_ns / (double)j->n;
    if (!r->seen++)
        r->first_pair = a + f;
    if (!timed)
        return;
    if (r->alloc == 0 || a < r->alloc)
        r->alloc = a;
    if (r->free == 0 || f < r->free)
        r->free = f;
    if (r->pair == 0 || a + f < r->pair)
        r->pair = a + f;
}

/* TRACEMALLOC_BENCH_VERBOSE=1: every pass's figures on stderr. */
static int verbose;

typedef struct bench_case {
    const char *name;
    int kind;
    int depth;  /* 0: called from main; else the chain's depth */
    int nframe; /* 0: tracing off */
    result r;
} bench_case;

static void run_case(om_runtime *rt, void **keep, size_t n, bench_case *c,
                     int timed) {
#if HAVE_TRACER
    if (c->nframe && om_tracemalloc_start(rt, c->nframe) != OM_OK)
        die("om_tracemalloc_start failed", om_last_error(rt));
#else
    if (c->nframe)
        die("no tracer in this build", NULL);
#endif
    job j = {rt, keep, n, c->kind, 0, 0};
    if (c->depth)
        descend(c->depth, &j);
    else
        run_job(&j);
#if HAVE_TRACER
    if (c->nframe) {
        size_t current;
        om_tracemalloc_get_traced_memory(rt, &current, NULL);
        if (current != 0)
            die("traced memory left after freeing every block", NULL);
        om_tracemalloc_stop(rt);
    }
#endif
    record(&c->r, &j, timed);
    if (verbose)
        fprintf(stderr, "%-16s %s alloc %8.2f free %8.2f ns\n", c->name,
                timed ? "timed " : "warmup", (double)j.alloc_ns / (double)n,
                (double)j.free_ns / (double)n);
}

#if HAVE_TRACER
/* The traceback of an object made at the bottom of the chain, with
 * start(rt, DEPTH): that the chain gives the frames the case claims. */
static om_traceback *probe_tb;

static OM_NOINLINE_BENCH void probe_bottom(om_runtime *rt) {
    om_object *o = om_new(rt, &pair_type);
    if (!o)
        die("om_new failed", om_last_error(rt));
    probe_tb = om_tracemalloc_get_object_traceback(o);
    om_decref(o);
}

static OM_NOINLINE_BENCH void probe_descend(int depth, om_runtime *rt) {
    if (depth > 1)
        probe_descend(depth - 1, rt);
    else
        probe_bottom(rt);
    chain_sink = depth;
}

static void probe_frames(om_runtime *rt) {
    if (om_tracemalloc_start(rt, DEPTH) != OM_OK)
        die("om_tracemalloc_start failed", om_last_error(rt));
    probe_descend(DEPTH, rt);
    om_tracemalloc_stop(rt);
    if (!probe_tb)
        die("no traceback for the probe object", om_last_error(rt));
    printf("om-t16-frames %zu\n", probe_tb->nframes);
    printf("om-t16-total %zu\n", probe_tb->total_nframe);
    om_traceback_free(probe_tb);
}
#endif

/* TRACEMALLOC_BENCH_ONLY="case case ...": run only those cases (for
 * profiling one of them). */
static const char *only;

static int selected(const bench_case *c) {
    if (!HAVE_TRACER && c->nframe)
        return 0;
    if (!only)
        return 1;
    size_t len = strlen(c->name);
    for (const char *p = only; (p = strstr(p, c->name)) != NULL; p += len)
        if ((p == only || p[-1] == ' ' || p[-1] == ',') &&
            (p[len] == '\0' || p[len] == ' ' || p[len] == ','))
            return 1;
    return 0;
}

static void bench_time(size_t n, int reps) {
    bench_case cases[] = {
        {.name = "malloc-off", .kind = KIND_MALLOC, .depth = 0, .nframe = 0},
        {.name = "malloc-t1", .kind = KIND_MALLOC, .depth = 0, .nframe = 1},
        {.name = "new-off", .kind = KIND_NEW, .depth = 0, .nframe = 0},
        {.name = "new-t1", .kind = KIND_NEW, .depth = 0, .nframe = 1},
        {.name = "malloc-deep-off", .kind = KIND_MALLOC, .depth = DEPTH, .nframe = 0},
        {.name = "malloc-t16", .kind = KIND_MALLOC, .depth = DEPTH, .nframe = DEPTH},
        {.name = "new-deep-off", .kind = KIND_NEW, .depth = DEPTH, .nframe = 0},
        {.name = "new-t16", .kind = KIND_NEW, .depth = DEPTH, .nframe = DEPTH},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    void **keep = pointer_array(n);
    om_runtime *rt = runtime_or_die();
    /* Two warm-up passes over every case: the first maps the arenas, gives
     * them back when they empty and grows each traced table; the second
     * takes the arenas again, after which objmem keeps them cached. */
    for (int r = -2; r < reps; r++)
        for (size_t c = 0; c < ncases; c++)
            if (selected(&cases[c]))
                run_case(rt, keep, n, &cases[c], r >= 0);
    for (size_t c = 0; c < ncases; c++) {
        const bench_case *k = &cases[c];
        if (!selected(k))
            continue;
        printf("om-%s-alloc %.3f\n", k->name, k->r.alloc);
        printf("om-%s-free %.3f\n", k->name, k->r.free);
        printf("om-%s-pair %.3f\n", k->name, k->r.pair);
        if (k->nframe)
            printf("om-%s-cold-pair %.3f\n", k->name, k->r.first_pair);
    }
#if HAVE_TRACER
    probe_frames(rt);
#endif
    if (om_runtime_free(rt) != 0)
        die("objects leaked", NULL);
    munmap(keep, n * sizeof *keep);
}

/* ---- pairs, tracing off ----------------------------------------------------------- */

static double pair_loop(om_runtime *rt, size_t n, int kind) {
    uint64_t t0 = now_ns();
    if (kind == KIND_MALLOC) {
        for (size_t i = 0; i < n; i++) {
            void *p = om_malloc(rt, 32);
            sink = p;
            om_free(rt, p);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            om_object *o = om_new(rt, &pair_type);
            sink = o;
            om_decref(o);
        }
    }
    return (double)(now_ns() - t0) / (double)n;
}

static void bench_pair(size_t n, int reps) {
    om_runtime *rt = runtime_or_die();
    double best[2] = {0, 0};
    for (int r = -1; r < reps; r++)
        for (int kind = 0; kind < 2; kind++) {
            double t = pair_loop(rt, n, kind);
            if (r >= 0 && (best[kind] == 0 || t < best[kind]))
                best[kind] = t;
        }
    if (om_last_status(rt) != OM_OK)
        die("allocation failed", om_last_error(rt));
    printf("om-pair-malloc %.3f\n", best[KIND_MALLOC]);
    printf("om-pair-new %.3f\n", best[KIND_NEW]);
    if (om_runtime_free(rt) != 0)
        die("objects leaked", NULL);
}

/* ---- resident bytes ------------------------------------------------------------------ */

static void bench_rss(size_t n, int trace) {
    void **keep = pointer_array(n);
    om_runtime *rt = runtime_or_die();
    size_t before = rss_bytes();
#if HAVE_TRACER
    if (trace && om_tracemalloc_start(rt, 1) != OM_OK)
        die("om_tracemalloc_start failed", om_last_error(rt));
#else
    if (trace)
        die("no tracer in this build", NULL);
#endif
    for (size_t i = 0; i < n; i++) {
        char *p = om_malloc(rt, 32);
        if (!p)
            die("om_malloc failed", om_last_error(rt));
        p[0] = 1; /* a program writes its blocks */
        keep[i] = p;
    }
    size_t after = rss_bytes();
    printf("om-rss-%s %zd\n", trace ? "on" : "off",
           (ssize_t)after - (ssize_t)before);
#if HAVE_TRACER
    if (trace) {
        size_t current;
        om_tracemalloc_get_traced_memory(rt, &current, NULL);
        printf("om-tmem %zu\n", om_tracemalloc_get_tracemalloc_memory(rt));
        printf("om-traced %zu\n", current);
    }
#endif
    for (size_t i = 0; i < n; i++)
        om_free(rt, keep[i]);
    if (om_runtime_free(rt) != 0)
        die("objects leaked", NULL);
    munmap(keep, n * sizeof *keep);
}

/* ---- command line -------------------------------------------------------------------- */

static size_t parse(const char *s, const char *what) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || v > 1000000000)
        die(what, s);
    return (size_t)v;
}

int main(int argc, char **argv) {
    const char *env = getenv("TRACEMALLOC_BENCH_VERBOSE");
    verbose = env && *env && strcmp(env, "0") != 0;
    only = getenv("TRACEMALLOC_BENCH_ONLY");
    if (only && !*only)
        only = NULL;
    if (argc == 4 && !strcmp(argv[1], "time")) {
        size_t n = parse(argv[2], "bad N"), reps = parse(argv[3], "bad REPS");
        if (!n || !reps)
            die("N and REPS must be positive", NULL);
        bench_time(n, (int)reps);
    } else if (argc == 4 && !strcmp(argv[1], "pair")) {
        size_t n = parse(argv[2], "bad N"), reps = parse(argv[3], "bad REPS");
        if (!n || !reps)
            die("N and REPS must be positive", NULL);
        bench_pair(n, (int)reps);
    } else if (argc == 4 && !strcmp(argv[1], "rss")) {
        size_t n = parse(argv[2], "bad N"), trace = parse(argv[3], "bad TRACE");
        if (!n || trace > 1)
            die("usage: tracemalloc_bench rss N 0|1", NULL);
        bench_rss(n, (int)trace);
    } else {
        die("usage: tracemalloc_bench time|pair N REPS | rss N 0|1", NULL);
    }
    return 0;
}
