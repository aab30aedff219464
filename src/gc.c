/*
 * gc.c — the generational cycle collector (docs/design.md, "Collector").
 *
 * No object carries GC links: a collection gathers its objects by walking
 * pools (all of them for generation 2; for generations 0 and 1 only the
 * young range of each young-listed pool) and large objects, into an array.
 * The scratch count CPython keeps in the GC header lives in the refcount
 * bits themselves while no user code runs:
 *   1. subtract, while gathering: every gathered object's traverse
 *      decrements the refcount of each referent the collection takes
 *      (gathered before or after it), leaving the references from outside;
 *   2. reach: objects with outside references are roots; everything they
 *      reach is marked REACHABLE (a work queue, no recursion);
 *   3. restore: the same traverse adds the references back.
 * What is not REACHABLE is garbage.  Survivors are promoted before any user
 * code runs (after that the survivor entries may dangle).  The collector then
 * holds a reference on every garbage object, so none can be freed under it,
 * runs finalizers, repeats the three steps on the garbage alone to find what
 * finalizers resurrected, clears the rest and drops its references: the
 * cycles fall apart by refcounting.
 */
#include "internal.h"

#include <string.h>

/* The gathered objects of a collection. */
typedef struct obj_vec {
    om_object **items;
    size_t len;
} obj_vec;

/* ---- state, counts, thresholds -------------------------------------------- */

static void update_trigger(om_gc_state *gc) {
    gc->trigger = gc->enabled && gc->threshold[0] ? gc->threshold[0] : SIZE_MAX;
}

void om_gc_init(om_runtime *rt) {
    om_gc_state *gc = &rt->gc;
    gc->threshold[0] = 2000;
    gc->threshold[1] = 10;
    gc->threshold[2] = 10;
    gc->enabled = true;
    update_trigger(gc);
}

void om_gc_release_work(om_runtime *rt) {
    om_gc_state *gc = &rt->gc;
    om_raw_free(rt, gc->work);
    om_raw_free(rt, gc->queue);
    gc->work = gc->queue = NULL;
    gc->work_cap = 0;
}

void om_gc_release(om_runtime *rt) {
    om_gc_release_work(rt);
    om_raw_free(rt, rt->gc.callbacks);
    om_raw_free(rt, rt->gc.young_pools);
    rt->gc.young_pools = NULL;
    rt->gc.young_len = rt->gc.young_cap = 0;
}

void om_gc_enable(om_runtime *rt) {
    if (rt) {
        rt->gc.enabled = true;
        update_trigger(&rt->gc);
    }
}

void om_gc_disable(om_runtime *rt) {
    if (rt) {
        rt->gc.enabled = false;
        update_trigger(&rt->gc);
    }
}

int om_gc_isenabled(const om_runtime *rt) { return rt && rt->gc.enabled; }

void om_gc_get_count(const om_runtime *rt, size_t count[3]) {
    for (int i = 0; i < 3; i++)
        count[i] = rt ? rt->gc.count[i] : 0;
}

void om_gc_get_threshold(const om_runtime *rt, size_t threshold[3]) {
    for (int i = 0; i < 3; i++)
        threshold[i] = rt ? rt->gc.threshold[i] : 0;
}

om_status om_gc_set_threshold(om_runtime *rt, size_t t0, size_t t1, size_t t2) {
    if (!rt)
        return OM_ERR_ARG;
    rt->gc.threshold[0] = t0;
    rt->gc.threshold[1] = t1;
    rt->gc.threshold[2] = t2;
    update_trigger(&rt->gc);
    return OM_OK;
}

om_status om_gc_get_stats(const om_runtime *rt,
                          om_gc_generation_stats stats[3]) {
    if (!rt || !stats)
        return OM_ERR_ARG;
    memcpy(stats, rt->gc.stats, sizeof rt->gc.stats);
    return OM_OK;
}

int om_gc_is_tracked(const om_object *o) {
    return o && (o->om_refword_ & OM_RW_TRACKED) != 0;
}

int om_gc_is_finalized(const om_object *o) {
    return o && (o->om_refword_ & OM_RW_FINALIZED) != 0;
}

/* ---- young pools ------------------------------------------------------------ */

void om_gc_note_young_block(om_runtime *rt, om_pool *p, uint32_t off) {
    om_gc_state *gc = &rt->gc;
    if (p->young & (OM_POOL_YOUNG0 | OM_POOL_YOUNG1)) {
        /* Listed already (or young_overflow is set): widen the range. */
        uint32_t lo = p->young_lo, end = lo + p->young_span;
        if (off < lo)
            lo = off;
        if (off + p->block_size > end)
            end = off + p->block_size;
        p->young_lo = lo;
        p->young_span = end - lo;
        return;
    }
    /* No young object in the pool: the range starts afresh. */
    p->young_lo = off;
    p->young_span = p->block_size;
    p->young = OM_POOL_YOUNG0;
    if (gc->young_len == gc->young_cap) {
        size_t cap = gc->young_cap ? gc->young_cap * 2 : 64;
        om_pool **v = om_raw_realloc(rt, gc->young_pools, cap * sizeof *v);
        if (!v) {
            /* Young collections then walk every pool: slower, still right. */
            gc->young_overflow = true;
            return;
        }
        gc->young_pools = v;
        gc->young_cap = cap;
    }
    gc->young_pools[gc->young_len++] = p;
}

/* ---- gathering ------------------------------------------------------------------- */

/* Gathering appends to an array with room for every live object of the
 * runtime (the collector sizes it so), so it cannot run out. */
typedef struct gather {
    om_object **out;
    unsigned max_gen;
} gather;

/* Whether the collection of generations 0..max_gen takes an object with
 * header word w (gathered already or not). */
static inline bool taken(uint64_t w, unsigned max_gen) {
    return (w & (OM_RW_TRACKED | OM_RW_QUEUED)) == OM_RW_TRACKED &&
           om_gen_of(w) <= max_gen;
}

/* Step 1 during the gather: a referent the collection takes is, or will
 * be, gathered (every tracked object of the collected generations is: see
 * the collector's invariants in internal.h), so the reference is internal
 * and leaves its count now, whichever of the two is gathered first.  Were
 * such an object left out, its count would stay short. */
static int visit_subtract_taken(om_object *child, void *arg) {
    uint64_t w = child->om_refword_;
    if (taken(w, *(const unsigned *)arg))
        child->om_refword_ = w - OM_RC_ONE;
    return 0;
}

static void gather_one(gather *g, om_object *o) {
    uint64_t w = o->om_refword_;
    if (taken(w, g->max_gen) && !(w & OM_RW_COLLECTING)) {
        o->om_refword_ = w | OM_RW_COLLECTING;
        *g->out++ = o;
        o->om_type_->traverse(o, visit_subtract_taken, &g->max_gen);
    }
}

/* gather_one over the blocks of pool p at offsets [from, to), in one loop. */
static void gather_blocks(gather *g, om_pool *p, uint32_t from, uint32_t to) {
    char *block = (char *)p + from, *end = (char *)p + to;
    for (; block < end; block += p->block_size)
        if (((om_object *)block)->om_refword_ & OM_RW_OBJECT)
            gather_one(g, (om_object *)block);
}

/* Rebuild the young-pool list after gathering generations 0..gen from it
 * (pools then carry SEEN, once each): a generation-0 run keeps its pools,
 * flagged YOUNG1 since its survivors become generation 1; older runs promote
 * everything to generation 2 and drop them all.  Stale entries and
 * duplicates go.  Pools that new allocations list during the collection
 * append themselves afterwards. */
static void rebuild_young_list(om_runtime *rt, unsigned gen) {
    om_gc_state *gc = &rt->gc;
    size_t kept = 0;
    for (size_t i = 0; i < gc->young_len; i++) {
        om_pool *p = gc->young_pools[i];
        if (!om_pool_owns(rt, p) || p->kind != OM_KIND_OBJECT ||
            !(p->young & OM_POOL_SEEN))
            continue;
        if (gen == 0) {
            p->young = OM_POOL_YOUNG1;
            gc->young_pools[kept++] = p;
        } else {
            om_pool_forget_young(p);
        }
    }
    gc->young_len = kept;
}

/* Gather the tracked objects of generations 0..gen into set (room for
 * every live object), marking them COLLECTING and subtracting the
 * references among them (step 1); returns how many.
 * Generation 2 (or a young list that could not grow) walks every pool;
 * younger ones walk the young range of each young-listed pool only. */
static size_t gather_generations(om_runtime *rt, unsigned gen,
                                 om_object **set) {
    om_gc_state *gc = &rt->gc;
    gather g = {set, gen};
    bool walk_all = gen == 2 || gc->young_overflow;
    if (walk_all) {
        for (om_arena *a = rt->pools.arenas; a; a = a->next) {
            for (size_t i = 0; i < a->carved; i++) {
                om_pool *p = om_pool_at(a, i);
                if (p->kind == OM_KIND_OBJECT && p->used > 0)
                    gather_blocks(&g, p, (uint32_t)OM_POOL_HEADER_SIZE,
                                  p->bump);
            }
        }
    } else {
        for (size_t i = 0; i < gc->young_len; i++) {
            om_pool *p = gc->young_pools[i];
            /* Entries may be stale: arena gone, pool retired or reused. */
            if (!om_pool_owns(rt, p) || p->kind != OM_KIND_OBJECT ||
                !(p->young & (OM_POOL_YOUNG0 | OM_POOL_YOUNG1)) ||
                (p->young & OM_POOL_SEEN))
                continue;
            p->young |= OM_POOL_SEEN;
            gather_blocks(&g, p, p->young_lo, p->young_lo + p->young_span);
        }
    }
    for (om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        gather_one(&g, (om_object *)(l + 1));
    if (gen == 2 && !gc->young_overflow) {
        /* Everything becomes generation 2: no pool stays young. */
        for (size_t i = 0; i < gc->young_len; i++) {
            om_pool *p = gc->young_pools[i];
            if (om_pool_owns(rt, p) && p->kind == OM_KIND_OBJECT)
                om_pool_forget_young(p);
        }
        gc->young_len = 0;
    } else if (!walk_all) {
        rebuild_young_list(rt, gen);
    }
    return (size_t)(g.out - set);
}

/* How many objects gathering generations 0..gen can find at most: every
 * live object for a full collection, else those of the young pools and the
 * large objects. */
static size_t gather_bound(const om_runtime *rt, unsigned gen) {
    const om_gc_state *gc = &rt->gc;
    if (gen == 2 || gc->young_overflow)
        return rt->objects;
    size_t n = 0;
    for (size_t i = 0; i < gc->young_len; i++) {
        const om_pool *p = gc->young_pools[i];
        if (om_pool_owns(rt, p) && p->kind == OM_KIND_OBJECT)
            n += p->used; /* a pool listed twice is counted twice: a bound */
    }
    for (const om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        n++;
    return n;
}

/* ---- work arrays -------------------------------------------------------------------- */

/* The collection's two arrays (gathered objects, reach queue), each with
 * room for every live object.  Up to OM_GC_WORK_KEEP entries they come from
 * the raw allocator and are kept for the next collection, so young
 * collections allocate nothing; larger ones are address space reserved for
 * this collection alone and unmapped after it (kept, they would add 16
 * bytes per object of the largest heap collected, for good; and the raw
 * allocator need not give freed memory back).  False when memory is short.
 * Never null pointers, even for n == 0: the collection offsets them, and
 * even a zero offset from a null pointer is undefined. */
static bool work_arrays(om_runtime *rt, size_t n, om_object ***set,
                        om_object ***queue) {
    om_gc_state *gc = &rt->gc;
    if (n == 0 && gc->work_cap == 0) {
        /* Nothing to gather and no arrays kept (so none to hand out):
         * rather than allocate them, an array that is never written. */
        static om_object *none[1];
        *set = *queue = none;
        return true;
    }
    if (n > OM_GC_WORK_KEEP) {
        *set = om_alloc_attempt(rt) ? om_os_reserve_huge(n * sizeof **set)
                                    : NULL;
        *queue = *set && om_alloc_attempt(rt)
                     ? om_os_reserve_huge(n * sizeof **queue)
                     : NULL;
        if (*set && !*queue)
            om_os_release_huge(*set, n * sizeof **set);
        return *queue != NULL;
    }
    if (gc->work_cap < n) {
        om_object **w = om_alloc_attempt(rt)
                            ? om_raw_realloc(rt, gc->work, OM_GC_WORK_KEEP * sizeof *w)
                            : NULL;
        om_object **q = w && om_alloc_attempt(rt)
                            ? om_raw_realloc(rt, gc->queue, OM_GC_WORK_KEEP * sizeof *q)
                            : NULL;
        if (w)
            gc->work = w;
        if (!q)
            return false;
        gc->queue = q;
        gc->work_cap = OM_GC_WORK_KEEP;
    }
    *set = gc->work;
    *queue = gc->queue;
    return true;
}

static void work_arrays_done(om_runtime *rt, size_t n, om_object **set,
                             om_object **queue) {
    if (n > OM_GC_WORK_KEEP) {
        om_os_release_huge(set, n * sizeof *set);
        om_os_release_huge(queue, n * sizeof *queue);
    }
    (void)rt;
}

/* ---- the three steps ------------------------------------------------------------ */

static int visit_subtract(om_object *child, void *arg) {
    (void)arg;
    if (child->om_refword_ & OM_RW_COLLECTING)
        child->om_refword_ -= OM_RC_ONE;
    return 0;
}

static int visit_restore(om_object *child, void *arg) {
    (void)arg;
    if (child->om_refword_ & OM_RW_COLLECTING)
        child->om_refword_ += OM_RC_ONE;
    return 0;
}

/* queue holds objects marked REACHABLE and not yet traversed; its capacity
 * is the set's size, and each object enters it at most once. */
typedef struct reach_queue {
    om_object **items;
    size_t len;
} reach_queue;

static int visit_reach(om_object *child, void *arg) {
    reach_queue *q = arg;
    uint64_t w = child->om_refword_;
    if ((w & OM_RW_COLLECTING) && !(w & OM_RW_REACHABLE)) {
        child->om_refword_ = w | OM_RW_REACHABLE;
        q->items[q->len++] = child;
    }
    return 0;
}

/* Reach and restore in one visit (as QuickJS does): the edge to child is
 * added back, and child, if not yet reached, is marked and queued. */
static int visit_reach_restore(om_object *child, void *arg) {
    reach_queue *q = arg;
    uint64_t w = child->om_refword_;
    if (!(w & OM_RW_COLLECTING))
        return 0;
    w += OM_RC_ONE;
    if (!(w & OM_RW_REACHABLE)) {
        w |= OM_RW_REACHABLE;
        q->items[q->len++] = child;
    }
    child->om_refword_ = w;
    return 0;
}

/* Steps 2 and 3 on objs[0..n), all COLLECTING, whose counts have lost the
 * references from within the set (step 1): mark REACHABLE every object
 * referenced from outside the set, and everything those reach, and give
 * the references back.  queue has room for n.  Each reached object's
 * traversal restores its edges; only the unreachable objects need a pass
 * of their own for that. */
static void mark_reachable(om_object **objs, size_t n, om_object **queue) {
    reach_queue q = {queue, 0};
    for (size_t i = 0; i < n; i++) {
        if (om_rc_of(objs[i]->om_refword_) > 0) {
            objs[i]->om_refword_ |= OM_RW_REACHABLE;
            q.items[q.len++] = objs[i];
        }
    }
    size_t reached = 0;
    while (q.len > 0) {
        om_object *o = q.items[--q.len];
        o->om_type_->traverse(o, visit_reach_restore, &q);
        reached++;
    }
    if (reached < n)
        for (size_t i = 0; i < n; i++)
            if (!(objs[i]->om_refword_ & OM_RW_REACHABLE))
                objs[i]->om_type_->traverse(objs[i], visit_restore, NULL);
}

/* mark_reachable on objs[0..n), each held once by the collector, with
 * their counts whole: the three steps, with a pass of its own for step 1
 * (the set is not gathered), the holds set aside meanwhile. */
static void mark_reachable_held(om_object **objs, size_t n,
                                om_object **queue) {
    for (size_t i = 0; i < n; i++) {
        objs[i]->om_refword_ -= OM_RC_ONE;
        objs[i]->om_type_->traverse(objs[i], visit_subtract, NULL);
    }
    mark_reachable(objs, n, queue);
    for (size_t i = 0; i < n; i++)
        objs[i]->om_refword_ += OM_RC_ONE;
}

/* The object leaves the collection, in generation `to`. */
static void release(om_object *o, unsigned to) {
    uint64_t w = o->om_refword_ & ~(OM_RW_COLLECTING | OM_RW_REACHABLE | OM_RW_GEN);
    o->om_refword_ = w | ((uint64_t)to << OM_RW_GEN_SHIFT);
}

/* A survivor leaves the collection for generation `to`; a tuple of
 * untracked items stops being tracked (it can never be part of a cycle). */
static void survive(om_object *o, unsigned to) {
    release(o, to);
    if (o->om_type_ == &om_tuple_type && om_tuple_all_untracked(o))
        o->om_refword_ &= ~OM_RW_TRACKED;
}

/* Split set into garbage, moved to the front, and survivors after it
 * (promoted and released from the collection); returns the garbage count. */
static size_t partition(om_object **set, size_t n, unsigned to) {
    size_t garbage = 0;
    for (size_t i = 0; i < n; i++) {
        om_object *o = set[i];
        if (o->om_refword_ & OM_RW_REACHABLE) {
            survive(o, to);
        } else {
            set[i] = set[garbage];
            set[garbage++] = o;
        }
    }
    return garbage;
}

/* ---- reporting ------------------------------------------------------------------- */

typedef struct om_gc_callback {
    om_gc_callback_fn fn;
    void *data;
} om_gc_callback;

static FILE *report_stream(const om_runtime *rt) {
    return rt->config.report_stream ? rt->config.report_stream : stderr;
}

static void invoke_callbacks(om_runtime *rt, const char *phase,
                             const om_gc_info *info) {
    /* By index, re-reading the count: a callback may add or remove some. */
    for (size_t i = 0; i < rt->gc.ncallbacks; i++)
        rt->gc.callbacks[i].fn(phase, info, rt->gc.callbacks[i].data);
}

typedef struct gen_census {
    size_t count[OM_GEN_PERMANENT + 1];
} gen_census;

static void census_one(om_object *o, void *arg) {
    uint64_t w = o->om_refword_;
    if ((w & OM_RW_TRACKED) && !(w & OM_RW_QUEUED))
        ((gen_census *)arg)->count[om_gen_of(w)]++;
}

/* Tracked objects per generation, by walking the heap. */
static gen_census take_census(om_runtime *rt) {
    gen_census c;
    memset(&c, 0, sizeof c);
    om_pool_foreach_object(rt, census_one, &c);
    for (om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        census_one((om_object *)(l + 1), &c);
    return c;
}

static void report_objects(om_runtime *rt, const char *what,
                           om_object **objs, size_t n) {
    for (size_t i = 0; i < n; i++)
        fprintf(report_stream(rt), "gc: %s <%s %p>\n", what,
                objs[i]->om_type_->name, (void *)objs[i]);
}

/* Keep o in gc.garbage; false when the list cannot be had or grown. */
static bool save_garbage(om_runtime *rt, om_object *o) {
    om_object *list = om_gc_garbage(rt);
    return list && om_list_append(list, o) == OM_OK;
}

/* ---- a collection ------------------------------------------------------------------ */

/* Move the objects of objs[0..n) marked REACHABLE to the end (keeping them
 * in the collection) and clear the mark; returns how many are unmarked. */
static size_t split_marked(om_object **objs, size_t n) {
    size_t unmarked = 0;
    for (size_t i = 0; i < n; i++) {
        om_object *o = objs[i];
        if (o->om_refword_ & OM_RW_REACHABLE) {
            o->om_refword_ &= ~OM_RW_REACHABLE;
        } else {
            objs[i] = objs[unmarked];
            objs[unmarked++] = o;
        }
    }
    return unmarked;
}

/* Among the garbage objs[0..n), move to the end the objects of legacy-
 * finalizer types and everything they reach (they cannot be collected);
 * returns how many remain collectable, at the front. */
static size_t split_uncollectable(om_object **objs, size_t n,
                                  om_object **queue) {
    reach_queue q = {queue, 0};
    for (size_t i = 0; i < n; i++) {
        if (objs[i]->om_type_->flags & OM_TYPE_LEGACY_FINALIZER) {
            objs[i]->om_refword_ |= OM_RW_REACHABLE;
            q.items[q.len++] = objs[i];
        }
    }
    if (q.len == 0)
        return n; /* none: nothing is marked, nothing moves */
    while (q.len > 0) {
        om_object *o = q.items[--q.len];
        o->om_type_->traverse(o, visit_reach, &q);
    }
    return split_marked(objs, n);
}

static int visit_peel(om_object *child, void *arg) {
    reach_queue *q = arg;
    uint64_t w = child->om_refword_;
    if (!(w & OM_RW_COLLECTING))
        return 0;
    w -= OM_RC_ONE;
    if (om_rc_of(w) == 0 && !(w & OM_RW_REACHABLE)) {
        w |= OM_RW_REACHABLE;
        q->items[q->len++] = child;
    }
    child->om_refword_ = w;
    return 0;
}

/* Among objs[0..n), each held once by the collector and referenced from
 * nowhere outside the collection, mark REACHABLE ("peeled") the objects
 * refcounting alone would free if the collector let go: those with no
 * reference but its hold, and, transitively, those only peeled objects
 * refer to.  CPython frees such objects by refcount while finalizers run
 * and does not count them as found.  Moves the peeled ones to the end and
 * returns how many others remain, at the front. */
static size_t peel(om_object **objs, size_t n, om_object **queue) {
    for (size_t i = 0; i < n; i++)
        objs[i]->om_refword_ -= OM_RC_ONE;
    reach_queue q = {queue, 0};
    for (size_t i = 0; i < n; i++) {
        if (om_rc_of(objs[i]->om_refword_) == 0) {
            objs[i]->om_refword_ |= OM_RW_REACHABLE;
            q.items[q.len++] = objs[i];
        }
    }
    /* Each peeled object drops its references once; restore adds them
     * back the same way. */
    while (q.len > 0) {
        om_object *o = q.items[--q.len];
        o->om_type_->traverse(o, visit_peel, &q);
    }
    for (size_t i = 0; i < n; i++)
        if (objs[i]->om_refword_ & OM_RW_REACHABLE)
            objs[i]->om_type_->traverse(objs[i], visit_restore, NULL);
    for (size_t i = 0; i < n; i++)
        objs[i]->om_refword_ += OM_RC_ONE;
    return split_marked(objs, n);
}

/* What the garbage needs after it is found (false: a step has nothing to
 * do and is skipped). */
typedef struct garbage_work {
    bool finalizers;   /* an object not yet finalized has a finalizer */
    bool legacy;       /* an object has a legacy finalizer */
    bool weakrefs;     /* an object is a weak reference or may have some */
} garbage_work;

/* Hold every object of objs[0..n), the garbage, before any user code runs,
 * so that none is freed before the collector is done with it whatever that
 * code does; and, in the same pass, see which later steps have work. */
static garbage_work hold_garbage(om_object **objs, size_t n) {
    garbage_work g = {false, false, false};
    for (size_t i = 0; i < n; i++) {
        om_object *o = objs[i];
        const om_type *t = o->om_type_;
        uint64_t w = o->om_refword_ + OM_RC_ONE;
        o->om_refword_ = w;
        g.finalizers |= t->finalize && !(w & OM_RW_FINALIZED);
        g.legacy |= (t->flags & OM_TYPE_LEGACY_FINALIZER) != 0;
        g.weakrefs |= t == &om_weakref_type ||
                      (t->flags & OM_TYPE_WEAKREFABLE) != 0;
    }
    return g;
}

/* The first weak-reference step of a collection, before any user code
 * runs: clear every weak reference to the garbage objs[0..n), and every
 * weak reference that is garbage itself (its callback must never run).
 * Returns the callbacks due: those of the cleared refs that are not
 * garbage, so that no callback is handed a member of the garbage. */
static om_weakref_chain clear_weakrefs_to_garbage(om_object **objs, size_t n,
                                                  om_object **uncollectable,
                                                  size_t nu) {
    /* The uncollectable objects stay alive: refs among them are not
     * garbage here, as in CPython (om_weakref_clear_all reads the mark). */
    for (size_t i = 0; i < nu; i++)
        uncollectable[i]->om_refword_ |= OM_RW_REACHABLE;
    om_weakref_chain due = {NULL, NULL};
    for (size_t i = 0; i < n; i++) {
        om_object *o = objs[i];
        if (o->om_type_ == &om_weakref_type)
            om_weakref_clear_garbage(o);
        else if (om_has_weakrefs(o))
            om_weakref_clear_all(o, &due);
    }
    for (size_t i = 0; i < nu; i++)
        uncollectable[i]->om_refword_ &= ~OM_RW_REACHABLE;
    return due;
}

/* Collect generations 0..gen: the number of unreachable objects found, or
 * OM_ERR_NOMEM with nothing changed. */
static ptrdiff_t collect(om_runtime *rt, unsigned gen) {
    om_gc_state *gc = &rt->gc;
    om_gc_info info = {(int)gen, 0, 0};
    /* Callbacks run inside the collection: one that asks for another
     * collection gets 0, as in CPython. */
    gc->collecting = true;
    invoke_callbacks(rt, "start", &info);
    uint64_t started = 0;
    if (gc->debug & OM_GC_DEBUG_STATS) {
        gen_census c = take_census(rt);
        fprintf(report_stream(rt),
                "gc: collecting generation %u...\n"
                "gc: objects in each generation: %zu %zu %zu\n"
                "gc: objects in permanent generation: %zu\n",
                gen, c.count[0], c.count[1], c.count[2],
                c.count[OM_GEN_PERMANENT]);
        started = om_os_now_ns();
    }
    size_t room = gather_bound(rt, gen);
    om_object **work, **queue;
    if (!work_arrays(rt, room, &work, &queue)) {
        invoke_callbacks(rt, "stop", &info);
        gc->collecting = false;
        return om_error(rt, OM_ERR_NOMEM,
                        "om_gc_collect: out of memory for the collector's "
                        "work arrays");
    }
    obj_vec set = {work, gather_generations(rt, gen, work)};
    if (gen < 2)
        gc->count[gen + 1]++;
    for (unsigned i = 0; i <= gen; i++)
        gc->count[i] = 0;

    /* Layout of set.items from here: [collectable | resurrected-or-peeled
     * | uncollectable], the regions shrinking the first as they are found. */
    unsigned to = gen < 2 ? gen + 1 : 2;
    mark_reachable(set.items, set.len, queue);
    size_t unreachable = partition(set.items, set.len, to);
    size_t survivors = set.len - unreachable;
    om_object **objs = set.items;
    garbage_work work_left = hold_garbage(objs, unreachable);
    size_t n = work_left.legacy ? split_uncollectable(objs, unreachable, queue)
                                : unreachable;
    size_t nu = unreachable - n;                 /* uncollectable */
    om_object **uncollectable = objs + n;
    if (gc->debug & OM_GC_DEBUG_COLLECTABLE)
        report_objects(rt, "collectable", objs, n);

    om_weakref_chain due = {NULL, NULL};
    if (work_left.weakrefs)
        due = clear_weakrefs_to_garbage(objs, n, uncollectable, nu);

    /* From here on user code runs (the garbage is held). */
    bool user_code_ran = due.head != NULL;
    size_t refs_freed = om_weakref_run_callbacks(&due);
    for (size_t i = 0; work_left.finalizers && i < n; i++) {
        om_object *o = objs[i];
        const om_type *t = o->om_type_;
        if (t->finalize && !(o->om_refword_ & OM_RW_FINALIZED)) {
            o->om_refword_ |= OM_RW_FINALIZED;
            t->finalize(o);
            user_code_ran = true;
        }
    }
    size_t collectable = n, found = n;
    if (user_code_ran) {
        /* What finalizers resurrected survives, with all it reaches. */
        mark_reachable_held(objs, n, queue);
        collectable = partition(objs, n, to);
        survivors += n - collectable;
        /* What they orphaned would have died by refcount: not counted. */
        found = peel(objs, collectable, queue);
    }
    /* Weak references made meanwhile (by callbacks or finalizers) to what
     * is about to be cleared must not outlive it either. */
    for (size_t i = 0; work_left.weakrefs && i < collectable; i++)
        if (om_has_weakrefs(objs[i]))
            om_weakref_clear_all(objs[i], NULL);
    for (size_t i = 0; i < collectable; i++) {
        om_object *o = objs[i];
        release(o, to);
        if ((gc->debug & OM_GC_DEBUG_SAVEALL) && i < found &&
            save_garbage(rt, o))
            continue;
        if (o->om_type_->clear)
            o->om_type_->clear(o);
    }
    /* The resurrected objects' holds go last: they may reach garbage. */
    for (size_t i = 0; i < n; i++)
        om_decref(objs[i]);

    /* Uncollectable is what is left of that set now that the collectable
     * garbage is gone (CPython counts it after deleting the garbage). */
    size_t kept = peel(uncollectable, nu, queue);
    if (gc->debug & OM_GC_DEBUG_UNCOLLECTABLE)
        report_objects(rt, "uncollectable", uncollectable, kept);
    for (size_t i = 0; i < nu; i++) {
        om_object *o = uncollectable[i];
        release(o, to);
        if (i < kept && (o->om_type_->flags & OM_TYPE_LEGACY_FINALIZER))
            save_garbage(rt, o);
    }
    for (size_t i = 0; i < nu; i++)
        om_decref(uncollectable[i]);
    survivors += kept;

    if (gen == 1)
        gc->long_lived_pending += survivors;
    if (gen == 2) {
        gc->long_lived_pending = 0;
        gc->long_lived_total = survivors;
    }
    /* As CPython, weak references that died after their callback ran
     * count as found. */
    found += refs_freed;
    gc->stats[gen].collections++;
    gc->stats[gen].collected += found;
    gc->stats[gen].uncollectable += kept;
    if (gc->debug & OM_GC_DEBUG_STATS)
        fprintf(report_stream(rt),
                "gc: done, %zu unreachable, %zu uncollectable, %.4fs elapsed\n",
                found + kept, kept,
                (double)(om_os_now_ns() - started) / 1e9);
    work_arrays_done(rt, room, work, queue);
    info.collected = found;
    info.uncollectable = kept;
    invoke_callbacks(rt, "stop", &info);
    gc->collecting = false;
    return (ptrdiff_t)(found + kept);
}

/* ---- when to collect --------------------------------------------------------------- */

/* The oldest generation whose count passed its threshold, as CPython picks
 * it: a full collection also waits until the objects promoted since the
 * last one exceed 25% of those it left (the guard against quadratic cost). */
static int generation_due(const om_gc_state *gc) {
    for (int g = 2; g >= 0; g--) {
        if (gc->count[g] > gc->threshold[g]) {
            if (g == 2 && gc->long_lived_pending < gc->long_lived_total / 4)
                continue;
            return g;
        }
    }
    return -1;
}

static void collect_automatic(om_runtime *rt) {
    om_gc_state *gc = &rt->gc;
    /* Never inside a collection.  During a refcount drain is fine: queued
     * objects are never gathered (nothing alive refers to them), and what
     * the collection frees joins the drain's queue. */
    /* Not while failure injection is armed either: the failure is meant
     * for the caller's allocation, and a collection would swallow it. */
    if (gc->collecting || gc->trigger == SIZE_MAX || rt->fail_countdown)
        return;
    if (OBJMEM_GC_STRESS) {
        size_t tick = ++gc->stress_ticks;
        collect(rt, tick % 100 == 0 ? 2 : tick % 10 == 0 ? 1 : 0);
        return;
    }
    int g = generation_due(gc);
    if (g >= 0)
        collect(rt, (unsigned)g);
}

om_object *om_gc_new_object_slow(om_runtime *rt, om_object *o) {
    if ((o->om_refword_ & (OM_RW_TRACKED | OM_RW_LARGE)) == OM_RW_TRACKED)
        om_gc_young_block(rt, om_pool_of(o), o);
    if (rt->gc.count[0] > rt->gc.trigger || OBJMEM_GC_STRESS)
        collect_automatic(rt);
    return o;
}

ptrdiff_t om_gc_collect(om_runtime *rt, int generation) {
    if (!rt)
        return OM_ERR_ARG;
    if (generation < 0 || generation > 2)
        return om_error(rt, OM_ERR_ARG,
                        "om_gc_collect: invalid generation %d (0..2)",
                        generation);
    if (rt->gc.collecting)
        return 0;
    return collect(rt, (unsigned)generation);
}

/* ---- tracking ------------------------------------------------------------------------- */

void om_gc_track(om_object *o) {
    om_runtime *rt = om_runtime_of(o);
    if (!rt || !o->om_type_->traverse || (o->om_refword_ & OM_RW_TRACKED))
        return;
    o->om_refword_ = (o->om_refword_ & ~OM_RW_GEN) | OM_RW_TRACKED;
    if (!(o->om_refword_ & OM_RW_LARGE))
        om_gc_young_block(rt, om_pool_of(o), o);
}

void om_gc_untrack(om_object *o) {
    if (o && !(o->om_refword_ & OM_RW_STATIC))
        o->om_refword_ &= ~OM_RW_TRACKED;
}

/* ---- introspection ---------------------------------------------------------------------- */

/* Walks over the tracked objects that append to a result list. */
typedef struct listing {
    om_object *result;
    int generation;              /* -1: any of 0..2 */
    size_t n;
    om_object *const *targets;   /* get_referrers: what to look for */
    bool failed;
} listing;

static bool listable(const listing *ls, const om_object *o) {
    uint64_t w = o->om_refword_;
    if (!(w & OM_RW_TRACKED) || (w & OM_RW_QUEUED) || o == ls->result)
        return false;
    unsigned g = om_gen_of(w);
    return ls->generation < 0 ? g != OM_GEN_PERMANENT
                              : g == (unsigned)ls->generation;
}

static void list_add(listing *ls, om_object *o) {
    if (!ls->failed && om_list_append(ls->result, o) != OM_OK)
        ls->failed = true;
}

static void walk_tracked(om_runtime *rt, void (*fn)(om_object *, void *),
                         listing *ls) {
    om_pool_foreach_object(rt, fn, ls);
    for (om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        fn((om_object *)(l + 1), ls);
}

/* The result of a listing walk, or NULL (result dropped) when it failed. */
static om_object *listing_done(listing *ls) {
    if (!ls->failed)
        return ls->result;
    om_decref(ls->result);
    return NULL;
}

static void object_of_generation(om_object *o, void *arg) {
    listing *ls = arg;
    if (listable(ls, o))
        list_add(ls, o);
}

om_object *om_gc_get_objects(om_runtime *rt, int generation) {
    if (!rt)
        return NULL;
    if (generation < -1 || generation > 2)
        return OM_FAIL_NULL(rt, OM_ERR_ARG,
                            "om_gc_get_objects: generation %d is not 0..2 "
                            "(or -1 for all)", generation);
    listing ls = {om_list_new(rt), generation, 0, NULL, false};
    if (!ls.result)
        return NULL;
    walk_tracked(rt, object_of_generation, &ls);
    return listing_done(&ls);
}

static int visit_is_target(om_object *child, void *arg) {
    const listing *ls = arg;
    for (size_t i = 0; i < ls->n; i++)
        if (child == ls->targets[i])
            return 1;
    return 0;
}

static void referrer(om_object *o, void *arg) {
    listing *ls = arg;
    if (listable(ls, o) && o->om_type_->traverse(o, visit_is_target, ls))
        list_add(ls, o);
}

om_object *om_gc_get_referrers(om_runtime *rt, size_t n,
                               om_object *const *objs) {
    if (!rt)
        return NULL;
    if (n && !objs)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_gc_get_referrers: objs is NULL");
    listing ls = {om_list_new(rt), -1, n, objs, false};
    if (!ls.result)
        return NULL;
    walk_tracked(rt, referrer, &ls);
    return listing_done(&ls);
}

static int visit_append(om_object *child, void *arg) {
    listing *ls = arg;
    list_add(ls, child);
    return ls->failed;
}

om_object *om_gc_get_referents(om_runtime *rt, size_t n,
                               om_object *const *objs) {
    if (!rt)
        return NULL;
    if (n && !objs)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_gc_get_referents: objs is NULL");
    listing ls = {om_list_new(rt), -1, 0, NULL, false};
    if (!ls.result)
        return NULL;
    for (size_t i = 0; i < n && !ls.failed; i++)
        if (objs[i] && objs[i]->om_type_->traverse)
            objs[i]->om_type_->traverse(objs[i], visit_append, &ls);
    return listing_done(&ls);
}

/* ---- freezing --------------------------------------------------------------------------- */

/* Move tracked objects into generation `to`: the frozen ones, or all others. */
typedef struct regen {
    bool from_permanent;
    unsigned to;
} regen;

static void regen_one(om_object *o, void *arg) {
    const regen *r = arg;
    uint64_t w = o->om_refword_;
    if (!(w & OM_RW_TRACKED) || (w & OM_RW_QUEUED) ||
        (om_gen_of(w) == OM_GEN_PERMANENT) != r->from_permanent)
        return;
    o->om_refword_ = (w & ~OM_RW_GEN) | ((uint64_t)r->to << OM_RW_GEN_SHIFT);
}

static void move_generations(om_runtime *rt, regen r) {
    om_pool_foreach_object(rt, regen_one, &r);
    for (om_large *l = rt->large[OM_KIND_OBJECT]; l; l = l->next)
        regen_one((om_object *)(l + 1), &r);
}

void om_gc_freeze(om_runtime *rt) {
    if (!rt)
        return;
    move_generations(rt, (regen){false, OM_GEN_PERMANENT});
    /* Nothing is young any more. */
    om_gc_state *gc = &rt->gc;
    for (size_t i = 0; i < gc->young_len; i++) {
        om_pool *p = gc->young_pools[i];
        if (om_pool_owns(rt, p) && p->kind == OM_KIND_OBJECT)
            om_pool_forget_young(p);
    }
    gc->young_len = 0;
    memset(gc->count, 0, sizeof gc->count);
}

void om_gc_unfreeze(om_runtime *rt) {
    if (rt)
        move_generations(rt, (regen){true, 2});
}

size_t om_gc_get_freeze_count(om_runtime *rt) {
    return rt ? take_census(rt).count[OM_GEN_PERMANENT] : 0;
}

/* ---- garbage, debug flags, callbacks ---------------------------------------------------- */

om_object *om_gc_garbage(om_runtime *rt) {
    if (rt && !rt->gc.garbage)
        rt->gc.garbage = om_list_new(rt);
    return rt ? rt->gc.garbage : NULL;
}

om_status om_gc_set_debug(om_runtime *rt, int flags) {
    if (!rt)
        return OM_ERR_ARG;
    if (flags & ~(OM_GC_DEBUG_STATS | OM_GC_DEBUG_LEAK))
        return om_error(rt, OM_ERR_ARG, "om_gc_set_debug: unknown flags 0x%x",
                        (unsigned)flags);
    rt->gc.debug = flags;
    return OM_OK;
}

int om_gc_get_debug(const om_runtime *rt) { return rt ? rt->gc.debug : 0; }

om_status om_gc_callback_add(om_runtime *rt, om_gc_callback_fn fn, void *data) {
    if (!rt)
        return OM_ERR_ARG;
    if (!fn)
        return om_error(rt, OM_ERR_ARG, "om_gc_callback_add: fn is NULL");
    om_gc_state *gc = &rt->gc;
    if (gc->ncallbacks == gc->callbacks_cap) {
        size_t cap = gc->callbacks_cap ? gc->callbacks_cap * 2 : 4;
        om_gc_callback *v = om_alloc_attempt(rt)
                                ? om_raw_realloc(rt, gc->callbacks, cap * sizeof *v)
                                : NULL;
        if (!v)
            return om_error(rt, OM_ERR_NOMEM,
                            "om_gc_callback_add: out of memory");
        gc->callbacks = v;
        gc->callbacks_cap = cap;
    }
    gc->callbacks[gc->ncallbacks++] = (om_gc_callback){fn, data};
    return OM_OK;
}

om_status om_gc_callback_remove(om_runtime *rt, om_gc_callback_fn fn,
                                void *data) {
    if (!rt)
        return OM_ERR_ARG;
    om_gc_state *gc = &rt->gc;
    for (size_t i = 0; i < gc->ncallbacks; i++) {
        if (gc->callbacks[i].fn == fn && gc->callbacks[i].data == data) {
            memmove(&gc->callbacks[i], &gc->callbacks[i + 1],
                    (gc->ncallbacks - i - 1) * sizeof gc->callbacks[0]);
            gc->ncallbacks--;
            return OM_OK;
        }
    }
    return om_error(rt, OM_ERR_KEY, "om_gc_callback_remove: no such callback");
}
