/*
 * alloc_bench.c — the allocator benchmark (docs/benchmarks.md, "Allocator
 * benchmarks"): one program, compiled once per allocator with one of
 *
 *   -DALLOC_OM        om_malloc(rt, n) / om_free(rt, p)       (objmem)
 *   -DALLOC_GLIBC     malloc / free of the C library          (glibc)
 *   -DALLOC_MIMALLOC  mi_malloc / mi_free                     (mimalloc)
 *   -DALLOC_JEMALLOC  malloc / free of a linked libjemalloc   (jemalloc)
 *   -DALLOC_PYMALLOC  PyObject_Malloc / PyObject_Free of an
 *                     embedded CPython                        (pymalloc)
 *
 * so that every allocator runs exactly the same loops.  bench/run.sh runs
 * each (allocator, measurement) in a process of its own:
 *
 *   alloc_bench info             "info <allocator version>"
 *   alloc_bench pair N REPS      (i) best ns per malloc(32)+free pair
 *   alloc_bench mixed N ROUNDS   (ii) N blocks of 16..512 B alive, freed in
 *                                random order: ns per block (alloc + touch +
 *                                free), best and mean of ROUNDS rounds
 *                                and minor page faults per round
 *   alloc_bench live N           (iii) RSS bytes per 32-byte block, N alive;
 *                                (iv) MiB of RSS left once all are freed
 *   alloc_bench faults PAGES     ns per first touch of a fresh anonymous
 *                                page (the machine's page-fault cost)
 *
 * Each line of output is "<key> <value>".  Every mode first checks that the
 * allocator it calls is the one it claims to measure (exit status 3 when it
 * is not, or cannot be set up: run.sh then reports the column as missing);
 * any other failure exits with status 2.
 *
 * The benchmark's own arrays (sizes, permutation, pointers) are mapped with
 * mmap, never taken from the allocator under test, so that they neither
 * disturb its heap nor depend on which malloc the program is linked with.
 */
#if defined(ALLOC_PYMALLOC)
/* Python.h must come first: it sets the feature-test macros. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#else
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

_Noreturn static void die(const char *fmt, const char *arg) {
    fputs("alloc_bench: ", stderr);
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(2);
}

/* Status 3: this allocator is not what it should be, or cannot be set up.
 * Not a failure of the benchmark: run.sh reports the column as missing. */
_Noreturn static void unavailable(const char *why);

/* ---- the allocator shims -------------------------------------------------------
 * Each defines ALLOC_LABEL_, alloc_setup() (set up and verify), bench_malloc,
 * bench_free and alloc_version().
 */
#if defined(ALLOC_OM)

#include "objmem.h"
#define ALLOC_LABEL_ "objmem"

static om_runtime *rt;

static void alloc_setup(void) {
    om_config cfg;
    om_config_init(&cfg);
    /* The plain allocator whatever OBJMEM_MALLOC says. */
    cfg.malloc_debug = 0;
    cfg.leak_report = 0;
    rt = om_runtime_new(&cfg);
    if (!rt)
        die("%s", "om_runtime_new failed");
    if (om_debug_level() != 0)
        fprintf(stderr,
                "alloc_bench: warning: objmem built with OBJMEM_DEBUG=%d; "
                "figures are not comparable\n",
                om_debug_level());
    /* A pool block is its whole size class (a debug block would be exactly
     * the request): 20 bytes must come from the 32-byte class. */
    void *p = om_malloc(rt, 20);
    if (!p || om_malloc_usable_size(rt, p) != 32)
        unavailable("om_malloc(20) did not come from the 32-byte pool class");
    om_free(rt, p);
}
static inline void *bench_malloc(size_t n) { return om_malloc(rt, n); }
static inline void bench_free(void *p) { om_free(rt, p); }
static void alloc_version(char *buf, size_t size) {
    snprintf(buf, size, "%s", om_version_string());
}

#elif defined(ALLOC_GLIBC)

#include <gnu/libc-version.h>
#include <malloc.h>
#define ALLOC_LABEL_ "glibc"

static void alloc_setup(void) {
    /* glibc's own statistics must see a fresh block: they would not, were
     * malloc interposed by another allocator (LD_PRELOAD, a stray -l). */
    struct mallinfo2 before = mallinfo2();
    void *p = malloc(4000);
    struct mallinfo2 after = mallinfo2();
    if (!p || after.uordblks < before.uordblks + 4000)
        unavailable("malloc is not glibc's (mallinfo2 did not see it)");
    free(p);
}
static inline void *bench_malloc(size_t n) { return malloc(n); }
static inline void bench_free(void *p) { free(p); }
static void alloc_version(char *buf, size_t size) {
    snprintf(buf, size, "%s", gnu_get_libc_version());
}

#elif defined(ALLOC_MIMALLOC)

#include <mimalloc.h>
#define ALLOC_LABEL_ "mimalloc"

static void alloc_setup(void) {
    void *p = mi_malloc(32);
    if (!p || !mi_is_in_heap_region(p))
        unavailable("mi_malloc did not return a mimalloc block");
    mi_free(p);
}
static inline void *bench_malloc(size_t n) { return mi_malloc(n); }
static inline void bench_free(void *p) { mi_free(p); }
static void alloc_version(char *buf, size_t size) {
    int v = mi_version();
    snprintf(buf, size, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
}

#elif defined(ALLOC_JEMALLOC)

/* Debian's libjemalloc is built without a symbol prefix: linking it
 * replaces malloc and free for the whole process, and that is the API
 * measured (the one jemalloc's users call; mallocx/dallocx take slower,
 * general paths).  alloc_setup proves the replacement took effect. */
#include <jemalloc/jemalloc.h>
#define ALLOC_LABEL_ "jemalloc"

static uint64_t je_thread_allocated(void) {
    uint64_t v = 0;
    size_t len = sizeof v;
    if (mallctl("thread.allocated", &v, &len, NULL, 0) != 0)
        unavailable("mallctl(\"thread.allocated\") failed");
    return v;
}

static void alloc_setup(void) {
    uint64_t before = je_thread_allocated();
    void *p = malloc(4000);
    uint64_t after = je_thread_allocated();
    if (!p || after < before + 4000)
        unavailable("malloc is not jemalloc's (thread.allocated unchanged)");
    free(p);
}
static inline void *bench_malloc(size_t n) { return malloc(n); }
static inline void bench_free(void *p) { free(p); }
static void alloc_version(char *buf, size_t size) {
    const char *v = "?";
    size_t len = sizeof v;
    if (mallctl("version", (void *)&v, &len, NULL, 0) != 0)
        unavailable("mallctl(\"version\") failed");
    /* "5.3.0-0-g54eaed1d..." -> "5.3.0" */
    snprintf(buf, size, "%.*s", (int)strcspn(v, "-"), v);
}

#elif defined(ALLOC_PYMALLOC)

#define ALLOC_LABEL_ "pymalloc"

/* Exported by libpython, declared only in its internal headers. */
PyAPI_FUNC(Py_ssize_t) _Py_GetAllocatedBlocks(void);
PyAPI_FUNC(int) _PyObject_DebugMallocStats(FILE *out);

static void alloc_setup(void) {
    /* Isolated: PYTHONMALLOC and the rest of the environment are ignored,
     * and pymalloc is asked for explicitly. */
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    pre.allocator = PYMEM_ALLOCATOR_PYMALLOC;
    PyStatus st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        unavailable(st.err_msg ? st.err_msg : "Py_PreInitialize failed");
    PyConfig cfg;
    PyConfig_InitIsolatedConfig(&cfg);
    cfg.site_import = 0;
    cfg.install_signal_handlers = 0;
    st = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st))
        unavailable(st.err_msg ? st.err_msg : "Py_InitializeFromConfig failed");
    /* Three witnesses: the allocator's name (cpython/pymem.h), the arena
     * statistics of sys._debugmallocstats (which print nothing and return
     * 0 without pymalloc), and pymalloc's block count below. */
    const char *name = _PyMem_GetCurrentAllocatorName();
    if (!name || strcmp(name, "pymalloc") != 0)
        unavailable("the object allocator is not pymalloc");
    FILE *devnull = fopen("/dev/null", "w");
    if (!devnull)
        die("cannot open /dev/null: %s", strerror(errno));
    int stats = _PyObject_DebugMallocStats(devnull);
    fclose(devnull);
    if (!stats)
        unavailable("sys._debugmallocstats reports no pymalloc arenas");
    /* pymalloc counts its blocks; the system allocator would not. */
    enum { K = 100 };
    void *blocks[K];
    Py_ssize_t before = _Py_GetAllocatedBlocks();
    for (int i = 0; i < K; i++)
        if (!(blocks[i] = PyObject_Malloc(32)))
            die("%s", "PyObject_Malloc failed");
    Py_ssize_t after = _Py_GetAllocatedBlocks();
    for (int i = 0; i < K; i++)
        PyObject_Free(blocks[i]);
    if (after - before != K)
        unavailable("PyObject_Malloc blocks are not counted by pymalloc");
}
static inline void *bench_malloc(size_t n) { return PyObject_Malloc(n); }
static inline void bench_free(void *p) { PyObject_Free(p); }
static void alloc_version(char *buf, size_t size) {
    const char *v = Py_GetVersion();
    /* "3.11.7 (main, ...) [GCC ...]" -> "3.11.7" */
    snprintf(buf, size, "%.*s", (int)strcspn(v, " "), v);
}

#else
#error "define one of ALLOC_OM, ALLOC_GLIBC, ALLOC_MIMALLOC, ALLOC_JEMALLOC, ALLOC_PYMALLOC"
#endif

static void unavailable(const char *why) {
    fprintf(stderr, "alloc_bench: %s: %s\n", ALLOC_LABEL_, why);
    exit(3);
}

/* ---- helpers ---------------------------------------------------------------------- */

/* Every pointer the pair loop produces is stored here: a store to a
 * volatile object is observable, so the compiler can neither drop a
 * malloc/free pair nor hoist the work out of the loop. */

/* Memory for the benchmark's own arrays, straight from the kernel and
 * written all over (non-zero), so that it is resident before any RSS
 * reading and no allocator under test ever sees it. */
static void *bench_array(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap of the benchmark's arrays failed: %s", strerror(errno));
    memset(p, 0xA5, bytes);
    return p;
}

/* splitmix64 with a fixed seed: every allocator gets the same sizes and
 * the same free order. */
static uint64_t rng_state = 0x6f626a6d656d2121u;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
/* Uniform in [0, bound): the modulo bias of 64-bit draws is negligible. */
static uint64_t rng_below(uint64_t bound) { return rng_next() % bound; }

_Noreturn static void out_of_memory(size_t i) {
    char msg[64];
    snprintf(msg, sizeof msg, "%zu", i);
    die("allocation failed at block %s", msg);
}

/* Minor page faults of this process so far. */
static long minor_faults(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        die("getrusage failed: %s", strerror(errno));
    return ru.ru_minflt;
}

/* ---- the machine's page-fault cost -------------------------------------------------
 * Not an allocator figure: the price of first touching a fresh anonymous
 * page here, which every allocator pays for each page it takes from the OS
 * again after handing it back.  Virtual machines vary widely in it. */

static void bench_faults(size_t pages) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            die("mmap failed: %s", strerror(errno));
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < pages; i++)
            *(volatile char *)(p + i * page) = 1;
        uint64_t t1 = now_ns();
        munmap(p, pages * page);
        double ns = (double)(t1 - t0) / (double)pages;
        if (r == 0 || ns < best)
            best = ns;
    }
    printf("fault-ns %.0f\n", best);
}

/* ---- (i) malloc(32) + free pairs ---------------------------------------------------- */

static void bench_pair(size_t n, size_t reps) {
    double best = 0;
    /* Repetition 0 is a warm-up and is not counted. */
    for (size_t r = 0; r <= reps; r++) {
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            void *p = bench_malloc(32);
            sink = p;
            bench_free(p);
        }
        uint64_t t1 = now_ns();
        double ns = (double)(t1 - t0) / (double)n;
        if (r > 0 && (r == 1 || ns < best))
            best = ns;
    }
    /* One check after the loops (a NULL would have been passed to free,
     * which every allocator here accepts) keeps the loop free of it. */
    if (!sink)
        out_of_memory(0);
    printf("pair %.3f\n", best);
}

/* ---- (ii) mixed sizes, random free order ---------------------------------------------- */

static void bench_mixed(size_t n, size_t rounds) {
    if (n > UINT32_MAX)
        die("%s", "too many blocks for the permutation");
    uint16_t *sizes = bench_array(n * sizeof *sizes);
    uint32_t *order = bench_array(n * sizeof *order);
    void **ptrs = bench_array(n * sizeof *ptrs);
    for (size_t i = 0; i < n; i++)
        sizes[i] = (uint16_t)(16 + rng_below(512 - 16 + 1));
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(i + 1);
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }

    /* ALLOC_BENCH_VERBOSE=1 shows every round on stderr (diagnostics). */
    const char *v = getenv("ALLOC_BENCH_VERBOSE");
    int verbose = v && *v && strcmp(v, "0") != 0;
    double best = 0, sum = 0;
    long faults = 0;
    /* Round 0 is a warm-up and is not counted. */
    for (size_t r = 0; r <= rounds; r++) {
        long f0 = minor_faults();
        uint64_t t0 = now_ns();
        for (size_t i = 0; i < n; i++) {
            char *p = bench_malloc(sizes[i]);
            if (!p)
                out_of_memory(i);
            /* Touch the block as a program would: a fresh page faults here,
             * whichever allocator hands it out. */
            *(volatile char *)p = (char)i;
            ptrs[i] = p;
        }
        for (size_t i = 0; i < n; i++)
            bench_free(ptrs[order[i]]);
        uint64_t t1 = now_ns();
        long f1 = minor_faults();
        double ns = (double)(t1 - t0) / (double)n;
        if (verbose)
            fprintf(stderr,
                    "alloc_bench: %s mixed round %zu: %.3f ns, %ld page "
                    "faults\n",
                    ALLOC_LABEL_, r, ns, f1 - f0);
        if (r > 0) {
            faults += f1 - f0;
            sum += ns;
            if (r == 1 || ns < best)
                best = ns;
        }
    }
    printf("mixed-best %.3f\n", best);
    printf("mixed-mean %.3f\n", sum / (double)rounds);
    /* Minor faults per timed round: pages taken from the OS again, which
     * is where an allocator that hands memory back pays for it. */
    printf("mixed-faults %.0f\n", (double)faults / (double)rounds);
}

/* ---- (iii) RSS per live block, (iv) RSS left after freeing them ---------------------- */

static void bench_live(size_t n) {
    void **keep = bench_array(n * sizeof *keep);
    size_t before = rss_bytes();
    for (size_t i = 0; i < n; i++) {
        char *p = bench_malloc(32);
        if (!p)
            out_of_memory(i);
        /* Written, as a program writes its blocks: an allocator that carves
         * blocks lazily would otherwise leave their pages unmapped. */
        *(volatile char *)p = (char)i;
        keep[i] = p;
    }
    size_t alive = rss_bytes();
    for (size_t i = 0; i < n; i++)
        bench_free(keep[i]);
    /* Read at once, with no trim or collect call: what the allocator keeps
     * while the program goes on. */
    size_t freed = rss_bytes();
    double per_block = alive < before ? 0.0
                                      : (double)(alive - before) / (double)n;
    double kept = freed < before ? 0.0
                                 : (double)(freed - before) / (1024.0 * 1024.0);
    printf("live-bytes %.3f\n", per_block);
    printf("kept-mib %.3f\n", kept);
}

/* ---- command line ------------------------------------------------------------------ */

static size_t parse_count(const char *s, size_t max) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v == 0 || v > max)
        die("bad count '%s'", s);
    return (size_t)v;
}

_Noreturn static void usage(void) {
    fprintf(stderr, "usage: alloc_bench info\n"
                    "       alloc_bench faults PAGES\n"
                    "       alloc_bench pair N REPS\n"
                    "       alloc_bench mixed N ROUNDS\n"
                    "       alloc_bench live N\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    int args = strcmp(mode, "info") == 0   ? 2
               : strcmp(mode, "live") == 0 || strcmp(mode, "faults") == 0
                   ? 3
               : strcmp(mode, "pair") == 0 || strcmp(mode, "mixed") == 0
                   ? 4
                   : 0;
    if (args == 0 || argc != args)
        usage();
    size_t n = args > 2 ? parse_count(argv[2], (size_t)1 << 32)
                        : 0;
    size_t reps = args > 3 ? parse_count(argv[3], 1000)
                           : 0;

    alloc_setup();
    if (strcmp(mode, "info") == 0) {
        char version[128];
        alloc_version(version, sizeof version);
        printf("info %s\n", version);
    } else if (strcmp(mode, "faults") == 0) {
        bench_faults(n);
    } else if (strcmp(mode, "pair") == 0) {
        bench_pair(n, reps);
    } else if (strcmp(mode, "mixed") == 0) {
        bench_mixed(n, reps);
    } else {
        bench_live(n);
    }
    return 0;
}
