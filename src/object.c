/*
 * object.c — object creation, reference counting, and deallocation through a
 * per-runtime queue so that freeing any structure takes constant C stack
 * (docs/design.md, "Objects" and "Deallocation").
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- creation -------------------------------------------------------------- */

static om_status check_type(om_runtime *rt, const char *func,
                            const om_type *type) {
    if (!type)
        return om_error(rt, OM_ERR_ARG, "%s: type is NULL", func);
    if (!type->name)
        return om_error(rt, OM_ERR_ARG, "%s: type has no name", func);
    if (type->size < sizeof(om_object))
        return om_error(rt, OM_ERR_ARG,
                        "%s: type '%s' has size %zu, below the %zu-byte header",
                        func, type->name, type->size, sizeof(om_object));
    if (type->flags & ~OM_TYPE_FLAGS_KNOWN)
        return om_error(rt, OM_ERR_ARG, "%s: type '%s' has unknown flags 0x%x",
                        func, type->name, type->flags & ~OM_TYPE_FLAGS_KNOWN);
    return OM_OK;
}

/* Zero the n - 16 bytes after the header.  Short bodies are written with
 * fixed-size copies, which compile to plain stores: the library memset uses
 * masked vector stores for short lengths, and the loads that follow (the
 * type's clear reading its slots) cannot be forwarded from those, which
 * stalled every create+drop pair.  Writing up to the next 16 bytes is safe:
 * pool blocks are whole size classes and large bodies go to memset. */
static inline void zero_body(om_object *o, size_t n) {
    static const unsigned char zeros[64];
    size_t body = n - sizeof *o;
    if (body == 0)
        return;
    if (body <= 16)
        memcpy(o + 1, zeros, 16);
    else if (body <= 32)
        memcpy(o + 1, zeros, 32);
    else if (body <= 48)
        memcpy(o + 1, zeros, 48);
    else if (body <= 64)
        memcpy(o + 1, zeros, 64);
    else
        memset(o + 1, 0, body);
}

/* Header and zeroed body for a fresh block of n bytes.  An object of a
 * collectable type is tracked in generation 0, its pool listed as young,
 * and counted, which may start an automatic collection (o is safe: its
 * creator's reference makes it reachable).  Those last two are rare and
 * out of line, reached by a tail call: om_new's fast path calls nothing
 * else. */
static inline om_object *object_init(om_runtime *rt, om_object *o,
                                     const om_type *type, size_t n,
                                     uint64_t flags) {
    zero_body(o, n);
    o->om_type_ = type;
    rt->objects++;
    if (!type->traverse) {
        o->om_refword_ = OM_RC_ONE | flags;
        return o;
    }
    bool young = false;
    if (type->flags & OM_TYPE_GC_MANUAL) {
        o->om_refword_ = OM_RC_ONE | flags;
    } else {
        o->om_refword_ = OM_RC_ONE | flags | OM_RW_TRACKED;
        young = !(flags & OM_RW_LARGE) && om_gc_young_outside(om_pool_of(o), o);
    }
    if (OM_UNLIKELY(++rt->gc.count[0] > rt->gc.trigger) || OM_UNLIKELY(young) ||
        OBJMEM_GC_STRESS)
        return om_gc_new_object_slow(rt, o);
    return o;
}

/* om_new_var on behalf of the public function `func` (failure messages
 * name it).  site is where the allocation was asked for when rt is
 * tracing, else NULL: callers test rt->tracing first, so that they build
 * a site only for the tracer.  Never inlined: the fast paths reach it by
 * tail calls. */
OM_NOINLINE static om_object *object_alloc(om_runtime *rt, const char *func,
                                           const om_type *type, size_t extra,
                                           const om_site *site) {
    if (!rt)
        return NULL;
    if (check_type(rt, func, type) != OM_OK)
        return NULL;
    if (extra > SIZE_MAX - type->size)
        return OM_FAIL_NULL(rt, OM_ERR_OVERFLOW,
                            "%s: '%s' of %zu extra bytes is too large", func,
                            type->name, extra);
    size_t n = type->size + extra;
    if (type->flags & OM_TYPE_WEAKREFABLE) {
        /* Room for the weak reference list head in the last 8 bytes of the
         * block (om_weaklist_slot).  Rounded up to the pool's 16-byte size
         * classes, n is the block's size, so the head is zeroed with the
         * body: an empty list. */
        if (n > SIZE_MAX - sizeof(om_weakref *) - OM_ALIGNMENT)
            return OM_FAIL_NULL(rt, OM_ERR_OVERFLOW,
                                "%s: '%s' of %zu extra bytes is too large",
                                func, type->name, extra);
        n = (n + sizeof(om_weakref *) + OM_ALIGNMENT - 1) &
            ~(size_t)(OM_ALIGNMENT - 1);
    }
    uint64_t flags = OM_RW_OBJECT;
    om_object *o = NULL;
    if (om_alloc_attempt(rt)) {
        if (OM_LIKELY(n <= OM_SMALL_MAX)) {
            o = om_pool_alloc(rt, OM_KIND_OBJECT, n);
        } else {
            o = om_large_alloc(rt, OM_KIND_OBJECT, n);
            flags |= OM_RW_LARGE;
        }
    }
    if (o && OM_UNLIKELY(site != NULL) && !om_trace_alloc(rt, o, n, site)) {
        if (flags & OM_RW_LARGE)
            om_large_free(o);
        else
            om_pool_free(o);
        o = NULL;
    }
    if (!o)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "%s: out of memory for a '%s' of %zu bytes", func,
                            type->name, n);
    return object_init(rt, o, type, n, flags);
}

/* om_object_alloc while tracing: the site is the return address alone.
 * Apart, so that om_object_alloc needs no stack frame for it. */
OM_NOINLINE OM_COLD static om_object *alloc_traced(om_runtime *rt,
                                                   const char *func,
                                                   const om_type *type,
                                                   size_t extra,
                                                   uintptr_t ret) {
    om_site site = {NULL, NULL, 0, ret};
    return object_alloc(rt, func, type, extra, &site);
}

om_object *om_object_alloc(om_runtime *rt, const char *func,
                           const om_type *type, size_t extra, uintptr_t ret) {
    if (om_tracing(rt))
        return alloc_traced(rt, func, type, extra, ret);
    return object_alloc(rt, func, type, extra, NULL);
}

/* om_new while tracing, apart for the same reason: the public functions
 * pass their arguments and their caller's return address through. */
OM_NOINLINE OM_COLD static om_object *new_traced(om_runtime *rt,
                                                 const om_type *type,
                                                 const char *file, int line,
                                                 const char *func,
                                                 uintptr_t ret) {
    om_site site = {file, func, line, ret};
    return object_alloc(rt, "om_new", type, 0, &site);
}

/* Largest type size om_new serves without calling out (zero_body's fixed
 * stores). */
#define NEW_FAST_MAX (sizeof(om_object) + 48)
/* Type flags om_new serves inline (weakly referenceable types need room
 * for their list head: the full path). */
#define NEW_FAST_FLAGS (OM_TYPE_GC_MANUAL | OM_TYPE_LEGACY_FINALIZER)

/* A fresh block for an object of a valid small type, from a pool that it
 * does not fill, or NULL (then the full path must serve it). */
static inline om_object *new_block(om_runtime *rt, const om_type *type) {
    om_pool *p =
        rt->pools.used[OM_KIND_OBJECT][(type->size - 1) / OM_ALIGNMENT];
    return p ? om_pool_take_quick(p) : NULL;
}

/* om_new when rt (which may be NULL) is not tracing, inline in both public
 * functions.  The common case: a valid small type (what check_type
 * accepts, tested in one go) and a block that does not fill its pool,
 * with failure injection off; anything else takes the full path.  Every
 * call is a tail call, so no stack frame (see CMakeLists.txt). */
static inline om_object *new_untraced(om_runtime *rt, const om_type *type) {
    om_object *o = NULL;
    if (OM_LIKELY(rt && type && !rt->fail_countdown && type->name &&
                  type->size - sizeof(om_object) <=
                      NEW_FAST_MAX - sizeof(om_object) &&
                  !(type->flags & ~NEW_FAST_FLAGS)))
        o = new_block(rt, type);
    if (OM_UNLIKELY(!o))
        return object_alloc(rt, "om_new", type, 0, NULL);
    return object_init(rt, o, type, type->size, OM_RW_OBJECT);
}

/* Tracing is tested first, and the return address taken only then: the
 * call site is dead on the rest of the path, and holds no register
 * there. */
OM_FAST_ENTRY
om_object *(om_new)(om_runtime *rt, const om_type *type) {
    if (om_tracing(rt))
        return new_traced(rt, type, NULL, 0, NULL, OM_RETURN_ADDRESS());
    return new_untraced(rt, type);
}

OM_FAST_ENTRY
om_object *om_new_at(om_runtime *rt, const om_type *type, const char *file,
                     int line, const char *func) {
    if (om_tracing(rt))
        return new_traced(rt, type, file, line, func, OM_RETURN_ADDRESS());
    return new_untraced(rt, type);
}

/* Largest type om_object_new_builtin serves inline: what zero_body writes
 * with fixed stores (no call to memset, so no stack frame).  The library's
 * types all fit; a larger one would take the full path. */
#define BUILTIN_FAST_MAX (sizeof(om_object) + 64)

/* As om_new: tracing first, then the common case. */
om_object *om_object_new_builtin(om_runtime *rt, const char *func,
                                 const om_type *type, uintptr_t ret) {
    if (OM_UNLIKELY(rt->tracing))
        return alloc_traced(rt, func, type, 0, ret);
    om_object *o = NULL;
    if (OM_LIKELY(!rt->fail_countdown &&
                  type->size - sizeof(om_object) <=
                      BUILTIN_FAST_MAX - sizeof(om_object)))
        o = new_block(rt, type);
    if (OM_UNLIKELY(!o))
        return object_alloc(rt, func, type, 0, NULL);
    return object_init(rt, o, type, type->size, OM_RW_OBJECT);
}

om_object *(om_new_var)(om_runtime *rt, const om_type *type, size_t extra) {
    if (om_tracing(rt))
        return alloc_traced(rt, "om_new_var", type, extra,
                            OM_RETURN_ADDRESS());
    return object_alloc(rt, "om_new_var", type, extra, NULL);
}

om_object *om_new_var_at(om_runtime *rt, const om_type *type, size_t extra,
                         const char *file, int line, const char *func) {
    if (om_tracing(rt)) {
        om_site site = {file, func, line, OM_RETURN_ADDRESS()};
        return object_alloc(rt, "om_new_var", type, extra, &site);
    }
    return object_alloc(rt, "om_new_var", type, extra, NULL);
}

/* ---- queries ------------------------------------------------------------------ */

om_runtime *om_runtime_of(const om_object *o) {
    return (!o || (o->om_refword_ & OM_RW_STATIC)) ? NULL : om_object_runtime(o);
}

const om_type *om_type_of(const om_object *o) { return o ? o->om_type_ : NULL; }

size_t om_refcount(const om_object *o) {
    if (!o)
        return 0;
    uint64_t w = o->om_refword_;
    if (w & OM_RW_IMMORTAL)
        return OM_REFCOUNT_IMMORTAL;
    return (w & OM_RW_QUEUED) ? 0 : (size_t)om_rc_of(w);
}

size_t om_sizeof(const om_object *o) {
    if (!o)
        return 0;
    const om_type *t = o->om_type_;
    return t->size + (t->extra_size ? t->extra_size(o) : 0) +
           ((t->flags & OM_TYPE_WEAKREFABLE) ? sizeof(om_weakref *) : 0);
}

int om_is_immortal(const om_object *o) {
    return o && (o->om_refword_ & OM_RW_IMMORTAL) != 0;
}

void om_make_immortal(om_object *o) {
    if (o)
        o->om_refword_ |= OM_RW_IMMORTAL;
}

size_t om_object_count(const om_runtime *rt) { return rt ? rt->objects : 0; }

om_status om_expect(const char *func, const om_object *o,
                    const om_type *type) {
    if (!o)
        return OM_ERR_ARG;
    if (o->om_type_ != type)
        return om_error(om_runtime_of(o), OM_ERR_TYPE,
                        "%s: expected a '%s', got a '%s'", func, type->name,
                        o->om_type_->name);
    return OM_OK;
}

/* ---- reference counting -------------------------------------------------------- */

#if OBJMEM_DEBUG >= 1
/* Abort on a reference operation on an object that is not alive.  The type
 * pointer survives in a freed pool block (see om_pool_free), so the message
 * can name it. */
static void check_alive(const char *func, const om_object *o, uint64_t w) {
    const char *name = o->om_type_ ? o->om_type_->name : "?";
    if (!(w & OM_RW_OBJECT))
        om_misuse(func, "use of freed object %p of type '%s'", (void *)o, name);
    if ((w & OM_RW_QUEUED) || om_rc_of(w) == 0)
        om_misuse(func,
                  "reference count of %p (type '%s') would drop below zero",
                  (void *)o, name);
}
#endif

void om_incref(om_object *o) {
    if (!o)
        return;
    uint64_t w = o->om_refword_;
    if (w & OM_RW_IMMORTAL)
        return;
#if OBJMEM_DEBUG >= 1
    check_alive("om_incref", o, w);
#endif
    o->om_refword_ = w + OM_RC_ONE;
}

/* The dealloc queue is a LIFO list threaded through the header word of dead
 * objects: refcount bits hold the next object's address >> 4 (objects are
 * 16-aligned), flag bits are kept. */
static void queue_push(om_runtime *rt, om_object *o) {
    uint64_t link = (uint64_t)((uintptr_t)rt->dealloc_queue >> 4);
    o->om_refword_ = (link << OM_RC_SHIFT) |
                     (o->om_refword_ & OM_RW_FLAGS) | OM_RW_QUEUED;
    rt->dealloc_queue = o;
}

static om_object *queue_pop(om_runtime *rt) {
    om_object *o = rt->dealloc_queue;
    if (o) {
        uint64_t w = o->om_refword_;
        rt->dealloc_queue = (om_object *)(uintptr_t)(om_rc_of(w) << 4);
        o->om_refword_ = w & OM_RW_FLAGS & ~OM_RW_QUEUED;
    }
    return o;
}

static void object_free(om_runtime *rt, om_object *o) {
    rt->objects--;
    if (OM_UNLIKELY(rt->tracing))
        om_trace_free(rt, o);
    /* count[0] follows collectable types whatever their tracking, as
     * CPython counts every GC object's allocation and deallocation. */
    if (o->om_type_->traverse && rt->gc.count[0] > 0)
        rt->gc.count[0]--;
    if (o->om_refword_ & OM_RW_LARGE)
        om_large_free(o);
    else
        om_pool_free(o);
}

/* Run fn(o) for an object whose refcount reached zero, lending o one
 * reference meanwhile so that incref/decref pairs in fn (or a collection
 * it starts) cannot bring o back here.  False when o must not be freed
 * now: fn resurrected it, or dropped the lent reference (the dealloc queue
 * then finishes it). */
static bool run_lending_a_reference(om_object *o, void (*fn)(om_object *)) {
    o->om_refword_ += OM_RC_ONE;
    fn(o);
    uint64_t w = o->om_refword_;
    if (w & OM_RW_QUEUED)
        return false;
    o->om_refword_ = w - OM_RC_ONE;
    return om_rc_of(w) == 1;
}

/* Clear o's weak references and call their callbacks. */
static void clear_weakrefs(om_object *o) {
    om_weakref_chain due = {NULL, NULL};
    om_weakref_clear_all(o, &due);
    om_weakref_run_callbacks(&due);
}

/* Finalize (once), clear the weak references of (calling their callbacks),
 * clear and free an object whose refcount is zero, unless the finalizer or
 * a callback resurrects it (a callback can reach it only through its data,
 * which the weakref contract forbids). */
static void object_destroy(om_runtime *rt, om_object *o) {
    const om_type *t = o->om_type_;
    if (t->finalize && !(o->om_refword_ & OM_RW_FINALIZED)) {
        o->om_refword_ |= OM_RW_FINALIZED;
        if (!run_lending_a_reference(o, t->finalize))
            return;
    }
    if (OM_UNLIKELY(om_has_weakrefs(o))) {
        if (!run_lending_a_reference(o, clear_weakrefs))
            return;
        /* A callback may have made new refs to o: clear them, silently. */
        if (om_has_weakrefs(o))
            om_weakref_clear_all(o, NULL);
    }
    if (t->clear)
        t->clear(o);
    object_free(rt, o);
}

/* The refcount of o reached zero.  The first such object starts a drain loop
 * on its runtime; objects dying while it runs (children dropped by clear,
 * references dropped by finalizers) are queued and destroyed by the same
 * loop, so the C stack never grows with the depth of the structure.  Kept
 * out of line so that om_decref, which mostly does not free, needs no stack
 * frame. */
OM_NOINLINE static void object_dealloc(om_object *o) {
    om_runtime *rt = om_object_runtime(o);
    if (rt->deallocating) {
        queue_push(rt, o);
        return;
    }
    rt->deallocating = true;
    do {
        object_destroy(rt, o);
        o = queue_pop(rt);
    } while (o);
    rt->deallocating = false;
}

OM_FAST_ENTRY
void om_decref(om_object *o) {
    if (!o)
        return;
    uint64_t w = o->om_refword_;
    if (w & OM_RW_IMMORTAL)
        return;
#if OBJMEM_DEBUG >= 1
    check_alive("om_decref", o, w);
#endif
    w -= OM_RC_ONE;
    o->om_refword_ = w;
    if (w < OM_RC_ONE)
        object_dealloc(o);
}

void om_setref(om_object **slot, om_object *value) {
    om_incref(value);
    om_object *old = *slot;
    *slot = value;
    om_decref(old);
}

/* ---- walks over every object ------------------------------------------------ */

static void foreach_object(om_runtime *rt, void (*fn)(om_object *, void *),
                           void *arg) {
    om_pool_foreach_object(rt, fn, arg);
    for (om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        fn((om_object *)(l + 1), arg);
}

typedef struct check_walk {
    size_t count;
    om_object *bad;
    const char *why;
} check_walk;

static void check_one(om_object *o, void *arg) {
    check_walk *cw = arg;
    cw->count++;
    if (cw->bad)
        return;
    uint64_t w = o->om_refword_;
    const om_type *t = o->om_type_;
    if (!t || !t->name || t->size < sizeof(om_object))
        cw->why = "has no valid type";
    else if (w & OM_RW_STATIC)
        cw->why = "is marked static but lives in a runtime";
    else if (!(w & OM_RW_IMMORTAL) && om_rc_of(w) == 0 &&
             !(w & OM_RW_QUEUED))
        cw->why = "has refcount zero but is not queued for deallocation";
    else if ((t->flags & OM_TYPE_WEAKREFABLE) && !(w & OM_RW_QUEUED))
        cw->why = om_weakref_check_list(o);
    if (cw->why)
        cw->bad = o;
}

om_status om_object_check(om_runtime *rt) {
    check_walk cw = {0, NULL, NULL};
    foreach_object(rt, check_one, &cw);
    if (cw.bad)
        return om_error(rt, OM_ERR_STATE, "om_check: object %p %s",
                        (void *)cw.bad, cw.why);
    if (cw.count != rt->objects)
        return om_error(rt, OM_ERR_STATE,
                        "om_check: %zu objects counted, %zu found", rt->objects,
                        cw.count);
    return OM_OK;
}

/* ---- shutdown ------------------------------------------------------------------ */

typedef struct object_array {
    om_runtime *rt;
    om_object **items;
    size_t len, cap;
    bool failed;
} object_array;

static void collect_immortal(om_object *o, void *arg) {
    object_array *a = arg;
    if (!(o->om_refword_ & OM_RW_IMMORTAL) || a->failed)
        return;
    if (a->len == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        om_object **items = om_raw_realloc(a->rt, a->items, cap * sizeof *items);
        if (!items) {
            a->failed = true;
            return;
        }
        a->items = items;
        a->cap = cap;
    }
    a->items[a->len++] = o;
}

void om_object_clear_immortals(om_runtime *rt) {
    /* Collect first: clearing frees objects, which changes the pools. */
    object_array a = {rt, NULL, 0, 0, false};
    foreach_object(rt, collect_immortal, &a);
    for (size_t i = 0; i < a.len; i++) {
        om_object *o = a.items[i];
        if (o->om_type_->clear)
            o->om_type_->clear(o);
    }
    om_raw_free(rt, a.items);
}

#define LEAK_TYPES_SHOWN 32

typedef struct leak_tally {
    size_t total;
    size_t other;   /* leaks of types beyond the table */
    size_t ntypes;
    const om_type *types[LEAK_TYPES_SHOWN];
    size_t counts[LEAK_TYPES_SHOWN];
} leak_tally;

static void tally_leak(om_object *o, void *arg) {
    leak_tally *lt = arg;
    if (o->om_refword_ & OM_RW_IMMORTAL)
        return;
    lt->total++;
    for (size_t i = 0; i < lt->ntypes; i++) {
        if (lt->types[i] == o->om_type_) {
            lt->counts[i]++;
            return;
        }
    }
    if (lt->ntypes == LEAK_TYPES_SHOWN) {
        lt->other++;
        return;
    }
    lt->types[lt->ntypes] = o->om_type_;
    lt->counts[lt->ntypes++] = 1;
}

static int by_count_desc(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x < y) - (x > y);
}

size_t om_object_report_leaks(om_runtime *rt, bool print) {
    leak_tally lt;
    memset(&lt, 0, sizeof lt);
    foreach_object(rt, tally_leak, &lt);
    if (!print || lt.total == 0)
        return lt.total;
    /* Sort (count, index) pairs so that types print most-leaked first. */
    size_t order[LEAK_TYPES_SHOWN][2];
    for (size_t i = 0; i < lt.ntypes; i++) {
        order[i][0] = lt.counts[i];
        order[i][1] = i;
    }
    qsort(order, lt.ntypes, sizeof order[0], by_count_desc);
    FILE *f = rt->config.report_stream ? rt->config.report_stream : stderr;
    fprintf(f, "objmem: %zu object%s still alive when the runtime was freed:\n",
            lt.total, lt.total == 1 ? "" : "s");
    for (size_t i = 0; i < lt.ntypes; i++)
        fprintf(f, "  %10zu  %s\n", order[i][0], lt.types[order[i][1]]->name);
    if (lt.other)
        fprintf(f, "  %10zu  (objects of other types)\n", lt.other);
    return lt.total;
}
