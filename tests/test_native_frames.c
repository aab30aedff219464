/*
 * test_native_frames.c — native frames for the tracer: om_unwind_after
 * walks the frame pointers of a recursion of known depth (counts, totals,
 * truncation, the 32-record search, a start that is not on the stack,
 * other threads), and om_symbolize resolves what it found to the
 * recursion's functions and call lines (DWARF through libdw; without
 * libdw, what dladdr says), interns and caches its answers, counts its
 * memory exactly, and fails cleanly at every allocation.
 */
#define _GNU_SOURCE /* dladdr, RTLD_DEFAULT, RTLD_NOLOAD */
#include "internal.h"
#include "symbolize.h"
#include "unwind.h"
#include "harness.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdbool.h>

/* The recursion's functions keep their frames and their names: not
 * inlined, and for gcc not cloned or given a changed signature either
 * (descend.isra.0 would not be "descend"). */
#if defined(__GNUC__) && !defined(__clang__)
#define FRAME __attribute__((noipa))
#else
#define FRAME __attribute__((noinline))
#endif

#define ROOM 128

/* One walk: what bottom() asks om_unwind_after, and what it answers. */
typedef struct walk {
    size_t max;               /* room offered, at most ROOM */
    bool from_top;            /* start after walk_through's record */
    uintptr_t top_ret;        /* walk_through's return address */
    uintptr_t after;          /* the start given to om_unwind_after */
    uintptr_t out[ROOM];
    size_t n, total;
} walk;

/* Lines of the two calls whose return addresses the walk finds; each is
 * set on the line of its call (per thread: threads walk too). */
static _Thread_local unsigned descend_line, walk_line;
/* Stores after each call: no call below is a tail call, and gcc cannot
 * turn the recursion into a loop. */
static _Thread_local volatile unsigned sink;

static FRAME unsigned bottom(walk *w) {
    w->after = w->from_top ? w->top_ret
                           : (uintptr_t)__builtin_return_address(0);
    w->n = om_unwind_after(w->after, w->out, w->max, &w->total);
    sink = (unsigned)w->n;
    return 0;
}

static FRAME unsigned descend(walk *w, unsigned depth) {
    unsigned below;
    if (depth == 0) {
        below = bottom(w);
    } else {
        descend_line = __LINE__; below = descend(w, depth - 1);
    }
    sink = below;
    return below + 1;
}

/* Frames from the walk's start: out[0..depth) return into descend, at
 * descend_line; out[depth] into walk_through, at walk_line; out[depth + 1]
 * into this function's caller, and so on. */
static FRAME void walk_through(walk *w, unsigned depth, size_t max) {
    w->max = max;
    w->top_ret = (uintptr_t)__builtin_return_address(0);
    walk_line = __LINE__; unsigned r = descend(w, depth);
    sink = r;
}

static walk *walk_new(void) {
    walk *w = calloc(1, sizeof *w);
    CHECK(w != NULL);
    return w;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* ---- unwinding ----------------------------------------------------------- */

static void walk_finds_the_recursion(void) {
    walk *w = walk_new(), *deeper = walk_new();
    walk_through(w, 10, ROOM);
    CHECK(w->after != 0);
    CHECK(w->n >= 10 + 2);          /* descend x10, walk_through, this */
    CHECK(w->n == w->total);        /* the whole chain fits in ROOM */
    CHECK(w->out[10] != w->out[9]);
    for (unsigned i = 0; i < 10; i++)
        CHECK(i == 0 || w->out[i] == w->out[i - 1]); /* one call site */
    /* Nine more levels: nine more frames, and the same ones above them
     * (but for the return into this function, from another call). */
    walk_through(deeper, 19, ROOM);
    CHECK(deeper->total == w->total + 9);
    CHECK(deeper->out[19] == w->out[10]);
    CHECK(deeper->out[20] != w->out[11]);
    for (size_t i = 12; i < w->n; i++)
        CHECK(deeper->out[i + 9] == w->out[i]);
    free(w);
    free(deeper);
}

static void walk_truncates_and_keeps_counting(void) {
    walk *full = walk_new(), *w = walk_new();
    /* First with room for everything, then with room for 0..14.  The
     * frames up to the return into walk_through (out[12]) are the same;
     * the compiler may peel the loop, which makes the return into this
     * function another address. */
    for (size_t i = 0; i <= 15; i++) {
        size_t max = i == 0 ? ROOM : i - 1;
        walk_through(w, 12, max);
        if (i == 0) {
            *full = *w;
            CHECK(full->n == full->total && full->n > 14);
            continue;
        }
        CHECK(w->n == max);
        CHECK(w->total == full->total);
        size_t same = max < 13 ? max : 13;
        CHECK(!memcmp(w->out, full->out, same * sizeof w->out[0]));
    }
    free(full);
    free(w);
}

/* The search looks at 32 records: om_unwind_after's own, bottom's, one
 * per descend level, then walk_through's, the one at index depth + 3. */
static void search_covers_32_records(void) {
    walk *w = walk_new();
    w->from_top = true;
    walk_through(w, 28, ROOM);
    CHECK(w->n >= 1 && w->n == w->total);   /* found: this function on */
    walk_through(w, 29, ROOM);
    CHECK(w->n == 0 && w->total == 0);
    free(w);
}

static void walk_needs_its_start(void) {
    uintptr_t out[4] = {0};
    size_t total = 99;
    CHECK(om_unwind_after((uintptr_t)&walk_needs_its_start + 3, out, 4,
                          &total) == 0);
    CHECK(total == 0 && out[0] == 0);
    total = 99;
    CHECK(om_unwind_after(0, out, 4, &total) == 0);
    CHECK(total == 0);
}

typedef struct thread_walk {
    walk w;
    unsigned depth;
} thread_walk;

static void *thread_main(void *arg) {
    thread_walk *t = arg;
    walk_through(&t->w, t->depth, ROOM);
    return NULL;
}

/* Each thread walks its own stack (its own cached bounds). */
static void threads_walk_their_own_stacks(void) {
    static thread_walk t[2];
    t[0].depth = 5;
    t[1].depth = 17;
    pthread_t id[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&id[i], NULL, thread_main, &t[i]) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(id[i], NULL) == 0);
    CHECK(t[0].w.n >= 5 + 2 && t[1].w.n >= 17 + 2);  /* + thread_main */
    CHECK(t[1].w.total - t[0].w.total == 12);
    CHECK(t[0].w.out[0] == t[1].w.out[0]);      /* into descend */
    CHECK(t[0].w.out[5] == t[1].w.out[17]);     /* into walk_through */
    CHECK(t[0].w.out[6] == t[1].w.out[18]);     /* into thread_main */
    om_runtime *rt = om_runtime_new(NULL);
    om_symbolizer *s = om_symbolizer_new(rt);
    om_frame f;
    CHECK(om_symbolize(s, t[0].w.out[6], &f) == OM_OK);
#if OM_HAVE_LIBDW
    CHECK(!strcmp(f.function, "thread_main"));
    CHECK(ends_with(f.filename, "tests/test_native_frames.c"));
#endif
    om_symbolizer_free(s);
    om_runtime_free(rt);
}

/* ---- symbolization ------------------------------------------------------- */

#if !OM_HAVE_LIBDW
/* What dladdr says of ret's call, as the dladdr build must answer. */
static om_frame dladdr_frame(uintptr_t ret) {
    om_frame f = {"<unknown>", 0, "<unknown>"};
    Dl_info info;
    if (dladdr((void *)(ret - 1), &info)) {
        if (info.dli_fname && *info.dli_fname)
            f.filename = info.dli_fname;
        if (info.dli_sname && *info.dli_sname)
            f.function = info.dli_sname;
    }
    return f;
}
#endif

/* f is the frame of a call at `line` of function `function` in this file. */
static bool is_call_here(const om_frame *f, uintptr_t ret,
                         const char *function, unsigned line) {
#if OM_HAVE_LIBDW
    (void)ret;
    bool ok = !strcmp(f->function, function) && f->lineno == line &&
              ends_with(f->filename, "tests/test_native_frames.c") &&
              f->filename[0] == '/';
#else
    (void)function;
    (void)line;
    om_frame want = dladdr_frame(ret);
    bool ok = f->lineno == 0 && !strcmp(f->filename, want.filename) &&
              !strcmp(f->function, want.function) &&
              ends_with(f->filename, "test_native_frames");
#endif
    if (!ok)
        fprintf(stderr, "  got %s:%u in %s, wanted line %u in %s\n",
                f->filename, f->lineno, f->function, line, function);
    return ok;
}

static void frames_resolve_to_calls(void) {
    walk *w = walk_new();
    walk_through(w, 7, ROOM);
    om_runtime *rt = om_runtime_new(NULL);
    om_symbolizer *s = om_symbolizer_new(rt);
    CHECK(s != NULL);
    om_frame f[9];
    for (int i = 0; i < 9; i++)
        CHECK(om_symbolize(s, w->out[i], &f[i]) == OM_OK);
    for (int i = 0; i < 7; i++)
        CHECK(is_call_here(&f[i], w->out[i], "descend", descend_line));
    CHECK(is_call_here(&f[7], w->out[7], "walk_through", walk_line));
#if OM_HAVE_LIBDW
    CHECK(!strcmp(f[8].function, "frames_resolve_to_calls"));
#endif
    /* Interned: one copy of each text. */
    CHECK(f[0].filename == f[7].filename);
    CHECK(f[0].function == f[6].function);
    om_symbolizer_free(s);
    CHECK(om_runtime_free(rt) == 0);
    free(w);
}

static void answers_are_cached(void) {
    walk *w = walk_new();
    walk_through(w, 3, ROOM);
    om_runtime *rt = om_runtime_new(NULL);
    om_symbolizer *s = om_symbolizer_new(rt);
    size_t empty = om_symbolizer_memory(s);
    CHECK(empty >= sizeof(void *));
    om_frame a, b;
    CHECK(om_symbolize(s, w->out[3], &a) == OM_OK);
    size_t used = om_symbolizer_memory(s);
    CHECK(used > empty);
    CHECK(om_symbolize(s, w->out[3], &b) == OM_OK);
    CHECK(a.filename == b.filename && a.function == b.function &&
          a.lineno == b.lineno);
    CHECK(om_symbolizer_memory(s) == used);
    om_symbolizer_free(s);
    om_symbolizer_free(NULL);
    CHECK(om_runtime_free(rt) == 0);
    free(w);
}

/* A C library function: known by name; without line information its file
 * is libc's path and its line 0, with it a source file of the C library. */
static void libc_frames(void) {
    void *qsort_at = dlsym(RTLD_DEFAULT, "qsort");
    CHECK(qsort_at != NULL);
    om_runtime *rt = om_runtime_new(NULL);
    om_symbolizer *s = om_symbolizer_new(rt);
    om_frame f;
    /* A "return address" one past the entry looks the entry up. */
    CHECK(om_symbolize(s, (uintptr_t)qsort_at + 1, &f) == OM_OK);
    CHECK(strstr(f.function, "qsort") != NULL);
    if (f.lineno == 0)
        CHECK(f.filename[0] == '/' && strstr(f.filename, "libc.so"));
    else
        CHECK(strcmp(f.filename, "<unknown>") != 0);
#if !OM_HAVE_LIBDW
    om_frame want = dladdr_frame((uintptr_t)qsort_at + 1);
    CHECK(!strcmp(f.filename, want.filename) && f.lineno == 0);
#endif
    /* No module at all. */
    CHECK(om_symbolize(s, 4096 + 1, &f) == OM_OK);
    CHECK(!strcmp(f.filename, "<unknown>") && f.lineno == 0 &&
          !strcmp(f.function, "<unknown>"));
    CHECK(om_symbolize(s, 0, &f) == OM_OK);
    CHECK(!strcmp(f.function, "<unknown>") && f.lineno == 0);
    om_symbolizer_free(s);
    CHECK(om_runtime_free(rt) == 0);
}

/* A library loaded after the symbolizer looked at the process is found
 * all the same (libdw: the module list is reloaded). */
static void library_loaded_later(void) {
    CHECK(dlopen(OM_PLUGIN_PATH, RTLD_NOW | RTLD_NOLOAD) == NULL);
    om_runtime *rt = om_runtime_new(NULL);
    om_symbolizer *s = om_symbolizer_new(rt);
    om_frame f;
    CHECK(om_symbolize(s, (uintptr_t)&walk_through + 1, &f) == OM_OK);
    void *plugin = dlopen(OM_PLUGIN_PATH, RTLD_NOW);
    CHECK(plugin != NULL);
    void *fn = plugin ? dlsym(plugin, "nf_plugin_function") : NULL;
    const unsigned *line = plugin ? dlsym(plugin, "nf_plugin_line") : NULL;
    CHECK(fn != NULL && line != NULL);
    if (fn && line) {
        CHECK(om_symbolize(s, (uintptr_t)fn + 1, &f) == OM_OK);
        CHECK(!strcmp(f.function, "nf_plugin_function"));
#if OM_HAVE_LIBDW
        CHECK(f.lineno == *line);
        CHECK(ends_with(f.filename, "tests/native_frames_plugin.c"));
#else
        CHECK(f.lineno == 0 && !strcmp(f.filename, OM_PLUGIN_PATH));
#endif
    }
    om_symbolizer_free(s);
    if (plugin)
        dlclose(plugin);
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- allocation failures ------------------------------------------------- */

/* A raw allocator that counts the blocks and bytes it has out. */
typedef struct counting {
    long blocks;
    size_t bytes;
} counting;

typedef union prefix {
    size_t size;
    max_align_t align;
} prefix;

static void *c_malloc(void *ctx, size_t n) {
    counting *c = ctx;
    prefix *p = malloc(sizeof *p + n);
    if (!p)
        return NULL;
    p->size = n;
    c->blocks++;
    c->bytes += n;
    return p + 1;
}
static void *c_calloc(void *ctx, size_t k, size_t n) {
    if (n && k > SIZE_MAX / n)
        return NULL;
    void *p = c_malloc(ctx, k * n);
    if (p)
        memset(p, 0, k * n);
    return p;
}
static void c_free(void *ctx, void *q) {
    if (!q)
        return;
    counting *c = ctx;
    prefix *p = (prefix *)q - 1;
    c->blocks--;
    c->bytes -= p->size;
    free(p);
}
static void *c_realloc(void *ctx, void *q, size_t n) {
    void *r = c_malloc(ctx, n);
    if (r && q) {
        size_t old = ((prefix *)q - 1)->size;
        memcpy(r, q, old < n ? old : n);
        c_free(ctx, q);
    }
    return r;
}

/* Addresses enough to grow both tables more than once: many C library
 * functions (a name each) and many addresses in descend. */
static const char *const libc_names[] = {
    "malloc", "free", "calloc", "realloc", "qsort", "bsearch", "strlen",
    "strcmp", "strncmp", "strchr", "strrchr", "strstr", "memcpy", "memmove",
    "memset", "memcmp", "printf", "fprintf", "snprintf", "vsnprintf",
    "fopen", "fclose", "fread", "fwrite", "fflush", "fputs", "puts", "getenv",
    "setenv", "atoi", "strtol", "strtoul", "strtod", "abs", "labs", "rand",
    "srand", "time", "clock", "exit", "atexit", "abort", "getpid", "read",
    "write", "close", "open", "lseek", "mmap", "munmap", "sysconf", "sleep",
    "isatty", "dup", "pipe", "fork", "strdup", "strndup", "strtok", "toupper",
};
#define NLIBC (sizeof libc_names / sizeof libc_names[0])
#define NADDR (NLIBC + 100)

static size_t sweep_addresses(uintptr_t *addr) {
    size_t n = 0;
    for (size_t i = 0; i < NLIBC; i++) {
        void *p = dlsym(RTLD_DEFAULT, libc_names[i]);
        if (p)
            addr[n++] = (uintptr_t)p + 1;
    }
    CHECK(n >= NLIBC - 5);
    for (uintptr_t i = 1; i <= 100; i++)
        addr[n++] = (uintptr_t)&descend + i;
    return n;
}

/* Every allocation of a symbolizer that resolves NADDR addresses twice,
 * failed in turn: each failure is OM_ERR_NOMEM with a message and *out
 * untouched, the answers that succeed are the same ones, memory counts
 * exactly what is held, and freeing gives everything back. */
static void allocation_failures(void) {
    uintptr_t addr[NADDR];
    size_t naddr = sweep_addresses(addr);
    om_frame expected[NADDR];
    counting c = {0};
    om_config cfg;
    om_config_init(&cfg);
    cfg.raw = (om_raw_allocator){&c, c_malloc, c_calloc, c_realloc, c_free};
    om_runtime *rt = om_runtime_new(&cfg);
    om_symbolizer *ref = om_symbolizer_new(rt);
    for (size_t i = 0; i < naddr; i++)
        CHECK(om_symbolize(ref, addr[i], &expected[i]) == OM_OK);

    bool fired = true;
    uint64_t nth;
    for (nth = 1; fired && nth < 1000; nth++) {
        size_t before = c.bytes;
        long blocks = c.blocks;
        uint64_t start = om_debug_alloc_count(rt);
        om_debug_fail_alloc(rt, nth);
        int failures = 0;
        om_symbolizer *s = om_symbolizer_new(rt);
        if (!s) {
            failures++;
            CHECK(om_last_status(rt) == OM_ERR_NOMEM);
            s = om_symbolizer_new(rt);
        }
        for (int round = 0; round < 2; round++) {
            for (size_t i = 0; i < naddr; i++) {
                om_frame f = {"sentinel", 7, "sentinel"};
                om_status st = om_symbolize(s, addr[i], &f);
                if (st != OM_OK) {
                    failures++;
                    CHECK(st == OM_ERR_NOMEM);
                    CHECK(strstr(om_last_error(rt), "out of memory"));
                    CHECK(!strcmp(f.filename, "sentinel") && f.lineno == 7);
                    st = om_symbolize(s, addr[i], &f);
                }
                CHECK(st == OM_OK);
                CHECK(!strcmp(f.filename, expected[i].filename) &&
                      f.lineno == expected[i].lineno &&
                      !strcmp(f.function, expected[i].function));
            }
        }
        fired = om_debug_alloc_count(rt) - start >= nth;
        om_debug_fail_alloc(rt, 0);
        CHECK(failures == (fired ? 1 : 0));
        CHECK(om_symbolizer_memory(s) == c.bytes - before);
        om_symbolizer_free(s);
        CHECK(c.blocks == blocks && c.bytes == before);
    }
    CHECK(!fired);
    CHECK(nth > 6);   /* the struct, 2+ tables of each kind, a chunk */
    om_symbolizer_free(ref);
    om_runtime_free(rt);
    CHECK(c.blocks == 0 && c.bytes == 0);
}

TEST_MAIN(T(walk_finds_the_recursion), T(walk_truncates_and_keeps_counting),
          T(search_covers_32_records), T(walk_needs_its_start),
          T(threads_walk_their_own_stacks), T(frames_resolve_to_calls),
          T(answers_are_cached), T(libc_frames), T(library_loaded_later),
          T(allocation_failures))
