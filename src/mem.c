/*
 * mem.c — om_malloc and friends: small requests go to the pools, large ones
 * to the system allocator behind an om_large prefix that links them to their
 * runtime (docs/design.md, "Allocator").
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void *om_large_alloc(om_runtime *rt, int kind, size_t n) {
    if (n > SIZE_MAX - sizeof(om_large))
        return NULL;
    om_large *l = malloc(sizeof *l + n);
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
    free(l);
}

void om_large_release_all(om_runtime *rt) {
    for (int k = 0; k < OM_KINDS; k++) {
        while (rt->large[k]) {
            om_large *l = rt->large[k];
            rt->large[k] = l->next;
            free(l);
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
    om_large *m = realloc(l, sizeof *m + n);
    if (!m)
        return NULL;
    m->size = n;
    *head = m;
    if (next)
        next->prev = m;
    return m + 1;
}

static void *data_alloc(om_runtime *rt, size_t n) {
    if (n == 0)
        n = 1;
    return n <= OM_SMALL_MAX ? om_pool_alloc(rt, OM_KIND_DATA, n)
                             : om_large_alloc(rt, OM_KIND_DATA, n);
}

void *om_malloc(om_runtime *rt, size_t n) {
    if (!rt)
        return NULL;
    void *p = om_alloc_attempt(rt) ? data_alloc(rt, n) : NULL;
    if (!p)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_malloc: out of memory for %zu bytes", n);
    return p;
}

void *om_calloc(om_runtime *rt, size_t count, size_t size) {
    if (!rt)
        return NULL;
    if (size && count > SIZE_MAX / size)
        return OM_FAIL_NULL(rt, OM_ERR_OVERFLOW,
                            "om_calloc: %zu * %zu bytes overflows", count,
                            size);
    void *p = om_malloc(rt, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

void om_free(om_runtime *rt, void *p) {
    if (!rt || !p)
        return;
    if (om_pool_owns(rt, p))
        om_pool_free(p);
    else
        om_large_free(p);
}

void *om_realloc(om_runtime *rt, void *p, size_t n) {
    if (!rt)
        return NULL;
    if (!p)
        return om_malloc(rt, n);
    bool small = om_pool_owns(rt, p);
    size_t old = small ? om_pool_of(p)->block_size : om_large_of(p)->size;
    if (!om_alloc_attempt(rt))
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_realloc: out of memory for %zu bytes", n);
    /* Stay put when the size class would not change. */
    if (small && n <= old && n + OM_ALIGNMENT > old)
        return p;
    if (!small && n > OM_SMALL_MAX) {
        void *q = large_realloc(p, n);
        return q ? q
                 : OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                                "om_realloc: out of memory for %zu bytes", n);
    }
    void *q = data_alloc(rt, n);
    if (!q)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_realloc: out of memory for %zu bytes", n);
    memcpy(q, p, n < old ? n : old);
    om_free(rt, p);
    return q;
}
