/*
 * mem.c — om_malloc and friends: small requests go to the pools, large ones
 * to the raw allocator behind an om_large prefix that links them to their
 * runtime; debug mode wraps both (docs/design.md, "Allocator").
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- the raw allocator ---------------------------------------------------------- */

static void *libc_malloc(void *ctx, size_t n) { (void)ctx; return malloc(n); }
static void *libc_calloc(void *ctx, size_t c, size_t s) {
    (void)ctx;
    return calloc(c, s);
}
static void *libc_realloc(void *ctx, void *p, size_t n) {
    (void)ctx;
    return realloc(p, n);
}
static void libc_free(void *ctx, void *p) { (void)ctx; free(p); }

const om_raw_allocator om_libc_allocator = {
    NULL, libc_malloc, libc_calloc, libc_realloc, libc_free,
};

void *om_raw_malloc(om_runtime *rt, size_t n) {
    return rt->config.raw.malloc(rt->config.raw.ctx, n);
}
void *om_raw_calloc(om_runtime *rt, size_t count, size_t size) {
    return rt->config.raw.calloc(rt->config.raw.ctx, count, size);
}
void *om_raw_realloc(om_runtime *rt, void *p, size_t n) {
    return rt->config.raw.realloc(rt->config.raw.ctx, p, n);
}
void om_raw_free(om_runtime *rt, void *p) {
    rt->config.raw.free(rt->config.raw.ctx, p);
}

/* ---- large blocks ----------------------------------------------------------------- */

void *om_large_alloc(om_runtime *rt, int kind, size_t n) {
    if (n > SIZE_MAX - sizeof(om_large))
        return NULL;
    om_large *l = om_raw_malloc(rt, sizeof *l + n);
    if (!l)
        return NULL;
    OM_ASSERT(((uintptr_t)(l + 1) & (OM_ALIGNMENT - 1)) == 0);
    l->rt = rt;
    l->size = n;
    l->prev = NULL;
    l->next = rt->large[kind];
    if (l->next)
        l->next->prev = l;
    rt->large[kind] = l;
    return l + 1;
}

/* The list head that points at l (which has no predecessor). */
static om_large **large_head(om_large *l) {
    om_runtime *rt = l->rt;
    return rt->large[OM_KIND_OBJECT] == l ? &rt->large[OM_KIND_OBJECT]
                                          : &rt->large[OM_KIND_DATA];
}

static void large_unlink(om_large *l) {
    if (l->prev)
        l->prev->next = l->next;
    else
        *large_head(l) = l->next;
    if (l->next)
        l->next->prev = l->prev;
}

void om_large_free(void *p) {
    om_large *l = om_large_of(p);
    large_unlink(l);
    om_raw_free(l->rt, l);
}

void om_large_release_all(om_runtime *rt) {
    for (int k = 0; k < OM_KINDS; k++) {
        while (rt->large[k]) {
            om_large *l = rt->large[k];
            rt->large[k] = l->next;
            om_raw_free(rt, l);
        }
    }
}

/* Resize a large block in place or by moving it; NULL (block untouched) on
 * failure. */
static void *large_realloc(void *p, size_t n) {
    om_large *l = om_large_of(p);
    if (n > SIZE_MAX - sizeof(om_large))
        return NULL;
    om_large *prev = l->prev, *next = l->next;
    om_large **head = prev ? &prev->next : large_head(l);
    om_large *m = om_raw_realloc(l->rt, l, sizeof *m + n);
    if (!m)
        return NULL;
    m->size = n;
    *head = m;
    if (next)
        next->prev = m;
    return m + 1;
}

/* ---- blocks ------------------------------------------------------------------------- */

void *om_block_alloc(om_runtime *rt, size_t n) {
    if (n == 0)
        n = 1;
    return n <= OM_SMALL_MAX ? om_pool_alloc(rt, OM_KIND_DATA, n)
                             : om_large_alloc(rt, OM_KIND_DATA, n);
}

void om_block_free(om_runtime *rt, void *p) {
    if (om_pool_owns(rt, p))
        om_pool_free(p);
    else
        om_large_free(p);
}

size_t om_block_usable_size(const om_runtime *rt, const void *p) {
    return om_pool_owns(rt, p) ? om_pool_of(p)->block_size
                               : om_large_of(p)->size;
}

void *om_block_realloc(om_runtime *rt, void *p, size_t n) {
    bool small = om_pool_owns(rt, p);
    size_t old = small ? om_pool_of(p)->block_size : om_large_of(p)->size;
    /* Stay put when the size class would not change. */
    if (small && n <= old && n + OM_ALIGNMENT > old)
        return p;
    if (!small && n > OM_SMALL_MAX)
        return large_realloc(p, n);
    void *q = om_block_alloc(rt, n);
    if (q) {
        memcpy(q, p, n < old ? n : old);
        om_block_free(rt, p);
    }
    return q;
}

/* ---- the public functions ------------------------------------------------------------- */

static void *out_of_memory(om_runtime *rt, const char *func, size_t n) {
    return OM_FAIL_NULL(rt, OM_ERR_NOMEM, "%s: out of memory for %zu bytes",
                        func, n);
}

/* Free p (a block of the raw or debug allocator, traced or not). */
static void block_release(om_runtime *rt, const char *func, void *p) {
    if (OM_UNLIKELY(rt->config.malloc_debug))
        om_debugmem_free(rt, func, p);
    else
        om_block_free(rt, p);
}

/* Everything om_malloc's fast path leaves out: a NULL runtime, failure
 * injection, debug mode, tracing (site: where the allocation was asked
 * for, while tracing; else NULL), zero and large sizes, a class with no
 * pool in use, a pool's last block.  Never inlined: the fast path reaches
 * it by a tail call. */
OM_NOINLINE static void *malloc_full(om_runtime *rt, size_t n,
                                     const om_site *site) {
    if (!rt)
        return NULL;
    void *p = NULL;
    if (om_alloc_attempt(rt))
        p = OM_UNLIKELY(rt->config.malloc_debug) ? om_debugmem_alloc(rt, n)
                                                 : om_block_alloc(rt, n);
    if (p && OM_UNLIKELY(site != NULL) && !om_trace_alloc(rt, p, n, site)) {
        block_release(rt, "om_malloc", p);
        p = NULL;
    }
    return p ? p : out_of_memory(rt, "om_malloc", n);
}

/* om_malloc while tracing, apart so that the fast path needs no stack
 * frame: the public function passes its arguments and its caller's
 * return address through. */
OM_NOINLINE OM_COLD static void *malloc_traced(om_runtime *rt, size_t n,
                                               const char *file, int line,
                                               const char *func,
                                               uintptr_t ret) {
    om_site site = {file, func, line, ret};
    return malloc_full(rt, n, &site);
}

/* om_malloc when rt (which may be NULL) is not tracing.  Every call is a
 * tail call, so no stack frame (see CMakeLists.txt). */
static inline void *malloc_untraced(om_runtime *rt, size_t n) {
    void *block = NULL;
    if (OM_LIKELY(rt && !rt->fail_countdown && !rt->config.malloc_debug &&
                  n - 1 < OM_SMALL_MAX)) {
        om_pool *p = rt->pools.used[OM_KIND_DATA][(n - 1) / OM_ALIGNMENT];
        if (OM_LIKELY(p))
            block = om_pool_take_quick(p);
    }
    if (OM_UNLIKELY(!block))
        return malloc_full(rt, n, NULL);
    return block;
}

/* om_malloc for a public function whose caller resumes at ret. */
static inline void *malloc_impl(om_runtime *rt, size_t n, const char *file,
                                int line, const char *func, uintptr_t ret) {
    if (om_tracing(rt))
        return malloc_traced(rt, n, file, line, func, ret);
    return malloc_untraced(rt, n);
}

/* The same, spelt out in the two public functions so that their return
 * address is taken inside the tracing branch, where only the tracer pays
 * for it. */
OM_FAST_ENTRY
void *(om_malloc)(om_runtime *rt, size_t n) {
    if (om_tracing(rt))
        return malloc_traced(rt, n, NULL, 0, NULL, OM_RETURN_ADDRESS());
    return malloc_untraced(rt, n);
}

OM_FAST_ENTRY
void *om_malloc_at(om_runtime *rt, size_t n, const char *file, int line,
                   const char *func) {
    if (om_tracing(rt))
        return malloc_traced(rt, n, file, line, func, OM_RETURN_ADDRESS());
    return malloc_untraced(rt, n);
}

static void *calloc_impl(om_runtime *rt, size_t count, size_t size,
                         const char *file, int line, const char *func,
                         uintptr_t ret) {
    if (!rt)
        return NULL;
    if (size && count > SIZE_MAX / size)
        return OM_FAIL_NULL(rt, OM_ERR_OVERFLOW,
                            "om_calloc: %zu * %zu bytes overflows", count,
                            size);
    void *p = malloc_impl(rt, count * size, file, line, func, ret);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void *(om_calloc)(om_runtime *rt, size_t count, size_t size) {
    return calloc_impl(rt, count, size, NULL, 0, NULL, OM_RETURN_ADDRESS());
}

void *om_calloc_at(om_runtime *rt, size_t count, size_t size,
                   const char *file, int line, const char *func) {
    return calloc_impl(rt, count, size, file, line, func,
                       OM_RETURN_ADDRESS());
}

OM_NOINLINE OM_COLD static void free_slow(om_runtime *rt, void *p) {
    if (!rt || !p)
        return;
    if (OM_UNLIKELY(rt->tracing))
        om_trace_free(rt, p);
    block_release(rt, "om_free", p);
}

OM_FAST_ENTRY
void om_free(om_runtime *rt, void *p) {
    if (OM_LIKELY(rt && p && !rt->config.malloc_debug && !rt->tracing &&
                  om_pool_owns(rt, p))) {
        om_pool_free(p);
        return;
    }
    free_slow(rt, p);
}

/* Resize p (an allocation attempt); NULL with p untouched on failure. */
static void *block_resize(om_runtime *rt, void *p, size_t n) {
    if (!om_alloc_attempt(rt))
        return NULL;
    return OM_UNLIKELY(rt->config.malloc_debug)
               ? om_debugmem_realloc(rt, "om_realloc", p, n)
               : om_block_realloc(rt, p, n);
}

/* A traced realloc: the trace is updated for the new size first, so that a
 * failure to store it leaves the block untouched; then the block changes,
 * and settling the trace needs no memory. */
static void *realloc_traced(om_runtime *rt, void *p, size_t n,
                            const om_site *site) {
    om_trace_undo undo;
    if (!om_trace_realloc_begin(rt, p, n, site, &undo))
        return NULL;
    void *q = block_resize(rt, p, n);
    om_trace_realloc_end(rt, p, q, &undo);
    return q;
}

static void *realloc_impl(om_runtime *rt, void *p, size_t n,
                          const char *file, int line, const char *func,
                          uintptr_t ret) {
    if (!rt)
        return NULL;
    if (!p)
        return malloc_impl(rt, n, file, line, func, ret);
    void *q;
    if (OM_UNLIKELY(rt->tracing)) {
        om_site site = {file, func, line, ret};
        q = realloc_traced(rt, p, n, &site);
    } else {
        q = block_resize(rt, p, n);
    }
    return q ? q : out_of_memory(rt, "om_realloc", n);
}

void *(om_realloc)(om_runtime *rt, void *p, size_t n) {
    return realloc_impl(rt, p, n, NULL, 0, NULL, OM_RETURN_ADDRESS());
}

void *om_realloc_at(om_runtime *rt, void *p, size_t n, const char *file,
                    int line, const char *func) {
    return realloc_impl(rt, p, n, file, line, func, OM_RETURN_ADDRESS());
}

size_t om_malloc_usable_size(om_runtime *rt, const void *p) {
    if (!rt || !p)
        return 0;
    return OM_UNLIKELY(rt->config.malloc_debug) ? om_debugmem_usable_size(rt, p)
                                                : om_block_usable_size(rt, p);
}
