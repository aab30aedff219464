/*
 * preload.c — the entry points of libobjmem-trace.so: the malloc family
 * and the exec family, interposed by LD_PRELOAD in every thread of a
 * program, and the bootstrap that finds the functions they stand in
 * front of (docs/design.md, "Whole-process tracer").
 *
 * In an exact recording every hook goes to exact.c, which gives each
 * block a header.  In a sampled one, each allocation hook calls the real
 * function, then hands the result to the recorder when it is sampled.
 * Either way nothing is recorded while this thread is already inside
 * tracer code (the guard omt_in_tracer): the recorder's tables, the
 * unwinder's lookups and whatever the C library allocates on their behalf
 * go untraced (with a header when exact), and never recurse.
 *
 * Bootstrap: the real functions are found with dlsym(RTLD_NEXT), which
 * itself allocates (calloc for its error state).  Until they are known,
 * requests are served from a static arena; its blocks are never freed
 * (free ignores them) and never traced.
 */
#define _GNU_SOURCE
#include "preload.h"

#include "tracefile.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The exported names: everything else in the library is hidden (the
 * version script preload.map says the same to the linker). */
#define EXPORT __attribute__((visibility("default")))
#define RET ((uintptr_t)__builtin_return_address(0))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LIKELY(x) __builtin_expect(!!(x), 1)
#define NOINLINE __attribute__((noinline))

__thread int omt_in_tracer __attribute__((tls_model("initial-exec")));

/* ---- the real functions ------------------------------------------------ */

struct omt_real_functions omt_real;
bool omt_exact;

static struct {
    int (*execve)(const char *, char *const[], char *const[]);
    int (*execv)(const char *, char *const[]);
    int (*execvp)(const char *, char *const[]);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
} real_exec;

/* 0: not resolved; 1: resolving (the arena serves); 2: resolved. */
static atomic_int resolve_state;

static void die(const char *what) {
    static const char prefix[] = "libobjmem-trace: cannot find the real ";
    ssize_t r = write(2, prefix, sizeof prefix - 1);
    r = write(2, what, strlen(what));
    r = write(2, "\n", 1);
    (void)r;
    abort();
}

/* dlsym gives a void *, which ISO C does not convert to a function
 * pointer; POSIX guarantees the bits are the function's. */
#define LOAD(field, name, required)                        \
    do {                                                    \
        void *f_ = dlsym(RTLD_NEXT, name);                  \
        if (!f_ && (required))                              \
            die(name);                                      \
        memcpy(&(field), &f_, sizeof f_);                   \
    } while (0)

static void resolve(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&resolve_state, &expected, 1))
        return;
    LOAD(omt_real.malloc, "malloc", true);
    LOAD(omt_real.free, "free", true);
    LOAD(omt_real.calloc, "calloc", true);
    LOAD(omt_real.realloc, "realloc", true);
    LOAD(omt_real.posix_memalign, "posix_memalign", true);
    LOAD(omt_real.aligned_alloc, "aligned_alloc", true);
    LOAD(omt_real.memalign, "memalign", true);
    LOAD(omt_real.malloc_usable_size, "malloc_usable_size", true);
    /* Absent from some C libraries: emulated below. */
    LOAD(omt_real.reallocarray, "reallocarray", false);
    LOAD(omt_real.valloc, "valloc", false);
    LOAD(omt_real.pvalloc, "pvalloc", false);
    LOAD(real_exec.execve, "execve", true);
    LOAD(real_exec.execv, "execv", true);
    LOAD(real_exec.execvp, "execvp", true);
    LOAD(real_exec.execvpe, "execvpe", false);
    LOAD(real_exec.fexecve, "fexecve", false);
    /* The kind of recording, fixed before the first real block is handed
     * out: an exact one gives every block a header (exact.c).  The
     * environment is the same one the recorder reads at its start. */
    const char *rate = getenv(OMT_ENV_SAMPLE_RATE);
    omt_exact = !rate || !*rate;
    atomic_store(&resolve_state, 2);
}

static inline bool resolved(void) {
    if (UNLIKELY(atomic_load_explicit(&resolve_state, memory_order_acquire) != 2)) {
        resolve();
        return atomic_load(&resolve_state) == 2;
    }
    return true;
}

/* ---- the bootstrap arena ----------------------------------------------- */

/* Each block is preceded by its size (16 bytes, keeping 16 alignment). */
#define ARENA_SIZE (256 * 1024)
static _Alignas(64) unsigned char arena[ARENA_SIZE];
static atomic_size_t arena_used;

static bool in_arena(const void *p) {
    return (const unsigned char *)p >= arena &&
           (const unsigned char *)p < arena + ARENA_SIZE;
}

static void *arena_alloc(size_t n, size_t align) {
    if (align < 16)
        align = 16;
    size_t start = atomic_load(&arena_used), end;
    uintptr_t p;
    do {
        p = ((uintptr_t)arena + start + 16 + align - 1) & ~(uintptr_t)(align - 1);
        if (n > ARENA_SIZE || p + n > (uintptr_t)arena + ARENA_SIZE) {
            errno = ENOMEM;
            return NULL;
        }
        end = p + n - (uintptr_t)arena;
    } while (!atomic_compare_exchange_weak(&arena_used, &start, end));
    ((size_t *)p)[-1] = n;
    return (void *)p; /* static storage, never reused: already zero */
}

static size_t arena_size(const void *p) { return ((const size_t *)p)[-1]; }

/* ---- the malloc family --------------------------------------------------- */

/* A traced call: the guard up around the real call and the record, so
 * that nothing either does is traced. */
#define TRACED(call, ptr, size)                        \
    do {                                              \
        omt_in_tracer++;                              \
        call;                                         \
        if (ptr)                                      \
            omt_on_alloc((ptr), (size), ret);         \
        omt_in_tracer--;                              \
    } while (0)

static inline bool tracing(void) { return !omt_in_tracer && omt_recording(); }

/* Whether an allocation of n bytes goes untraced, when the recording is
 * not exact: not sampled (the countdown, no lock; it checks the rest when
 * due), or not recording (sampled recording has not started). */
static inline bool skip(size_t n) {
    return !omt_sampling || !omt_sample_due(n);
}

/* calloc's size, saturated: for the countdown only. */
static inline size_t product(size_t count, size_t size) {
    return size && count > SIZE_MAX / size ? SIZE_MAX : count * size;
}

/* malloc on behalf of a hook whose caller resumes at ret. */
static void *traced_malloc(size_t n, uintptr_t ret) {
    if (skip(n))
        return omt_real.malloc(n);
    void *p;
    TRACED(p = omt_real.malloc(n), p, n);
    return p;
}

/* malloc past its fast path: the bootstrap, exact recording, and a
 * sampled allocation that reaches its count. */
static NOINLINE void *malloc_slow(size_t n, uintptr_t ret) {
    if (UNLIKELY(!resolved()))
        return arena_alloc(n, 16);
    if (omt_exact)
        return omt_exact_malloc(n, ret);
    return traced_malloc(n, ret);
}

/* The fast paths of malloc and free, for a sampled recording: a test and
 * a tail call to the real function, no frame.  Every other path is
 * reached by a tail call too, so the unwinder still finds the return
 * address into the program on the frame-pointer chain. */
EXPORT void *malloc(size_t n) {
    /* omt_sample_left is positive outside omt_sample_hit. */
    if (LIKELY(omt_sampling) && LIKELY((uint64_t)omt_sample_left > n)) {
        omt_sample_left -= (int64_t)n;
        return omt_real.malloc(n);
    }
    return malloc_slow(n, RET);
}

EXPORT void *calloc(size_t count, size_t size) {
    if (UNLIKELY(!resolved())) {
        if (size && count > SIZE_MAX / size) {
            errno = ENOMEM;
            return NULL;
        }
        return arena_alloc(count * size, 16);
    }
    if (omt_exact)
        return omt_exact_calloc(count, size, RET);
    if (skip(product(count, size)))
        return omt_real.calloc(count, size);
    uintptr_t ret = RET;
    void *p;
    TRACED(p = omt_real.calloc(count, size), p, count * size);
    return p;
}

static NOINLINE void free_slow(void *p);

EXPORT void free(void *p) {
    if (LIKELY(omt_sampling) && LIKELY(!omt_sample_maybe(p)) && !in_arena(p)) {
        omt_real.free(p); /* free(NULL) included */
        return;
    }
    free_slow(p);
}

/* free past its fast path (above). */
static NOINLINE void free_slow(void *p) {
    if (!p || in_arena(p))
        return;
    if (omt_exact) {
        omt_exact_free(p);
        return;
    }
    /* Here a sampled recording's block may have been sampled (free's
     * test). */
    if (!tracing()) {
        omt_real.free(p);
        return;
    }
    /* Under the recorder's lock, so that another thread given the same
     * address by the real allocator cannot trace it before this thread
     * has forgotten the old trace.  The free runs while the trace's slot,
     * likely a cache miss, loads. */
    omt_in_tracer++;
    omt_lock();
    omt_prefetch_locked(p);
    omt_real.free(p);
    omt_on_free_locked(p);
    omt_unlock();
    omt_in_tracer--;
}

/* realloc keeps the recorder's lock across the real call: between the
 * real allocator freeing the old block and the recorder forgetting it,
 * another thread could be given that address and trace it, and the
 * forgetting would then drop the wrong trace. */
static void *traced_realloc(void *p, size_t n, uintptr_t ret) {
    /* The old block is forgotten under the lock only if it may have been
     * sampled; the new one is recorded only if due. */
    bool record = omt_sample_due(n);
    if (!record && !omt_sample_maybe(p))
        return omt_real.realloc(p, n);
    omt_in_tracer++;
    omt_lock();
    void *q = omt_real.realloc(p, n);
    if (q) {
        omt_on_free_locked(p);
        if (record)
            omt_on_alloc_locked(q, n, ret);
    } else if (n == 0) {
        omt_on_free_locked(p); /* glibc: realloc(p, 0) frees p */
    }
    omt_unlock();
    omt_in_tracer--;
    return q;
}

static void *arena_realloc(void *p, size_t n) {
    /* A bootstrap block moves to the real allocator, untraced like the
     * block it replaces (with a header, as every block of an exact
     * recording). */
    void *q;
    if (omt_exact) {
        omt_in_tracer++;
        q = omt_exact_malloc(n, 0);
        omt_in_tracer--;
    } else {
        q = omt_real.malloc(n);
    }
    if (q) {
        size_t old = arena_size(p);
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

EXPORT void *realloc(void *p, size_t n) {
    if (UNLIKELY(!resolved())) {
        void *q = arena_alloc(n, 16);
        if (q && p)
            memcpy(q, p, arena_size(p) < n ? arena_size(p) : n);
        return q;
    }
    if (!p)
        return malloc_slow(n, RET);
    if (in_arena(p))
        return arena_realloc(p, n);
    if (omt_exact)
        return omt_exact_realloc(p, n, RET);
    if (!tracing())
        return omt_real.realloc(p, n);
    return traced_realloc(p, n, RET);
}

EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    if (UNLIKELY(!resolved()) || in_arena(p))
        return realloc(p, count * size);
    if (!p)
        return malloc_slow(count * size, RET);
    if (omt_exact)
        return omt_exact_realloc(p, count * size, RET);
    if (!tracing())
        return omt_real.reallocarray ? omt_real.reallocarray(p, count, size)
                                 : omt_real.realloc(p, count * size);
    return traced_realloc(p, count * size, RET);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n) {
    if (UNLIKELY(!resolved())) {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        *out = arena_alloc(n, align);
        return *out ? 0 : ENOMEM;
    }
    if (omt_exact) {
        if (align < sizeof(void *) || (align & (align - 1)))
            return EINVAL;
        int saved = errno; /* posix_memalign reports by its result only */
        void *p = omt_exact_aligned(omt_real.memalign, align, n, RET);
        errno = saved;
        if (!p)
            return ENOMEM;
        *out = p;
        return 0;
    }
    if (skip(n))
        return omt_real.posix_memalign(out, align, n);
    uintptr_t ret = RET;
    int r;
    TRACED(r = omt_real.posix_memalign(out, align, n), r == 0 ? *out : NULL, n);
    return r;
}

EXPORT void *aligned_alloc(size_t align, size_t n) {
    if (UNLIKELY(!resolved()))
        return arena_alloc(n, align);
    if (omt_exact)
        return omt_exact_aligned(omt_real.aligned_alloc, align, n, RET);
    if (skip(n))
        return omt_real.aligned_alloc(align, n);
    uintptr_t ret = RET;
    void *p;
    TRACED(p = omt_real.aligned_alloc(align, n), p, n);
    return p;
}

EXPORT void *memalign(size_t align, size_t n) {
    if (UNLIKELY(!resolved()))
        return arena_alloc(n, align);
    if (omt_exact)
        return omt_exact_aligned(omt_real.memalign, align, n, RET);
    if (skip(n))
        return omt_real.memalign(align, n);
    uintptr_t ret = RET;
    void *p;
    TRACED(p = omt_real.memalign(align, n), p, n);
    return p;
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

EXPORT void *valloc(size_t n) {
    if (UNLIKELY(!resolved()))
        return arena_alloc(n, 4096);
    if (omt_exact)
        return omt_exact_aligned(omt_real.memalign, page_size(), n, RET);
    if (skip(n))
        return omt_real.valloc ? omt_real.valloc(n) : omt_real.memalign(page_size(), n);
    uintptr_t ret = RET;
    void *p;
    TRACED(p = omt_real.valloc ? omt_real.valloc(n) : omt_real.memalign(page_size(), n),
           p, n);
    return p;
}

EXPORT void *pvalloc(size_t n) {
    size_t page = 4096;
    if (UNLIKELY(!resolved()))
        return arena_alloc((n + page - 1) & ~(page - 1), page);
    page = page_size();
    /* pvalloc rounds the request up to whole pages: that is the size. */
    size_t rounded = n ? (n + page - 1) & ~(page - 1) : page;
    if (omt_exact)
        return omt_exact_aligned(omt_real.memalign, page, rounded, RET);
    if (skip(rounded))
        return omt_real.pvalloc ? omt_real.pvalloc(n) : omt_real.memalign(page, rounded);
    uintptr_t ret = RET;
    void *p;
    TRACED(p = omt_real.pvalloc ? omt_real.pvalloc(n) : omt_real.memalign(page, rounded),
           p, rounded);
    return p;
}

EXPORT size_t malloc_usable_size(void *p) {
    if (!p)
        return 0;
    if (in_arena(p))
        return arena_size(p);
    if (UNLIKELY(!resolved()))
        return 0;
    if (omt_exact)
        return omt_exact_usable_size(p);
    return omt_real.malloc_usable_size(p);
}

/* ---- the exec family ------------------------------------------------------
 * The C library's exec functions call execve internally, past any
 * interposition, so each one is wrapped: the recording is flushed and
 * marked before the image is replaced (the new image starts a recording
 * of its own, in a new file). */

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
    if (resolved())
        omt_recorder_exec(path);
    return real_exec.execve(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[]) {
    if (resolved())
        omt_recorder_exec(path);
    return real_exec.execv(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[]) {
    if (resolved())
        omt_recorder_exec(file);
    return real_exec.execvp(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (!resolved() || !real_exec.execvpe) {
        errno = ENOSYS;
        return -1;
    }
    omt_recorder_exec(file);
    return real_exec.execvpe(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
    if (!resolved() || !real_exec.fexecve) {
        errno = ENOSYS;
        return -1;
    }
    omt_recorder_exec("(fexecve)");
    return real_exec.fexecve(fd, argv, envp);
}

/* execl, execle, execlp: their arguments into an array on the stack. */
#define COLLECT_ARGS(first, ap, argv, extra)                         \
    size_t argc_ = 1; /* first: declared non-null by the C library */ \
    va_start(ap, first);                                             \
    while (va_arg(ap, char *))                                       \
        argc_++;                                                     \
    va_end(ap);                                                      \
    char *argv[argc_ + 1];                                           \
    va_start(ap, first);                                             \
    argv[0] = (char *)(first);                                       \
    for (size_t i_ = 1; i_ <= argc_; i_++) /* the last: the NULL */  \
        argv[i_] = va_arg(ap, char *);                               \
    extra;                                                           \
    va_end(ap)

EXPORT int execl(const char *path, const char *arg, ...) {
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, (void)0);
    return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg, ...) {
    va_list ap;
    COLLECT_ARGS(arg, ap, argv, (void)0);
    return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg, ...) {
    va_list ap;
    char *const *envp;
    COLLECT_ARGS(arg, ap, argv, envp = va_arg(ap, char *const *));
    return execve(path, argv, envp);
}

/* ---- start and end --------------------------------------------------------- */

__attribute__((constructor)) static void omt_constructor(void) {
    if (!resolved())
        return;
    omt_in_tracer++;
    omt_recorder_start();
    omt_in_tracer--;
}

__attribute__((destructor)) static void omt_destructor(void) {
    omt_in_tracer++;
    omt_recorder_finish();
    omt_in_tracer--;
}
