/*
 * pool.c — small blocks: arenas from the OS, carved into pools of one size
 * class each, carved into blocks (docs/design.md, "Allocator").  Objects and
 * plain data live in separate pools so that walking object pools in address
 * order finds exactly the objects.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>


/* ---- the arena map ------------------------------------------------------------
 * One bit per 1 MiB of the user address space says whether an arena of this
 * runtime starts there; om_pool_owns reads it.  The map is reserved (16 MiB
 * of address space, no memory) with the first arena; only the pages around
 * the arenas' addresses are ever touched.
 */

static void map_set(om_pool_state *st, uintptr_t base, bool on) {
    uintptr_t i = base / OM_ARENA_SIZE;
    uint64_t bit = (uint64_t)1 << (i & 63);
    if (on)
        st->arena_map[i >> 6] |= bit;
    else
        st->arena_map[i >> 6] &= ~bit;
}

/* ---- arenas ----------------------------------------------------------------
 * Arenas with an available pool sit in buckets by their number of available
 * pools, so that a new pool comes from the fullest arena in O(1) (the lowest
 * non-empty bucket, found from a bit mask): nearly empty arenas are left to
 * drain and go back to the OS.  Wholly empty arenas (bucket
 * OM_POOLS_PER_ARENA) are used last; they form the cache, whose size adapts:
 *   - an empty arena beyond cache_limit is unmapped at once;
 *   - mapping a new arena while arenas were recently unmapped means the
 *     program wanted that memory back (churn): cache_limit grows by the
 *     arenas released since, up to the arena high-water mark and
 *     OM_ARENA_CACHE_MAX;
 *   - decay_threshold() pools in a row served from non-empty arenas while
 *     the cache holds arenas that no pool is taken from halve cache_limit
 *     and release the excess.
 * A program that frees its heap once gets the memory back immediately; one
 * that frees and refills it keeps it after the first round.
 */

static void bucket_link(om_pool_state *st, om_arena *a) {
    uint32_t k = a->free_count;
    if (k == 0)
        return;
    a->prev_in_bucket = NULL;
    a->next_in_bucket = st->by_free[k];
    if (a->next_in_bucket)
        a->next_in_bucket->prev_in_bucket = a;
    st->by_free[k] = a;
    st->bucket_mask |= 1u << k;
}

static void bucket_unlink(om_pool_state *st, om_arena *a) {
    uint32_t k = a->free_count;
    if (k == 0)
        return;
    if (a->prev_in_bucket)
        a->prev_in_bucket->next_in_bucket = a->next_in_bucket;
    else
        st->by_free[k] = a->next_in_bucket;
    if (a->next_in_bucket)
        a->next_in_bucket->prev_in_bucket = a->prev_in_bucket;
    if (!st->by_free[k])
        st->bucket_mask &= ~(1u << k);
}

/* The fullest arena with an available pool, or NULL. */
static om_arena *fullest_usable(const om_pool_state *st) {
    uint32_t mask = st->bucket_mask;
    if (!mask)
        return NULL;
#if defined(__GNUC__) || defined(__clang__)
    return st->by_free[__builtin_ctz(mask)];
#else
    uint32_t k = 1;
    while (!(mask & (1u << k)))
        k++;
    return st->by_free[k];
#endif
}

/* A new arena, or NULL.  Each system allocation is an allocation attempt,
 * so failure injection reaches every step of this rollback. */
static om_arena *arena_new(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    if (!st->arena_map) {
        st->arena_map = om_alloc_attempt(rt) ? om_os_reserve(OM_ARENA_MAP_BYTES)
                                             : NULL;
        if (!st->arena_map)
            return NULL;
    }
    om_arena *a = om_alloc_attempt(rt) ? om_raw_calloc(rt, 1, sizeof *a) : NULL;
    if (!a)
        return NULL;
    void *base = om_alloc_attempt(rt)
                     ? om_os_map_aligned(OM_ARENA_SIZE, OM_ARENA_SIZE)
                     : NULL;
    if (!base) {
        om_raw_free(rt, a);
        return NULL;
    }
    a->base = (uintptr_t)base;
    if (a->base >> OM_ADDRESS_BITS) {  /* beyond the map (57-bit hints) */
        om_os_unmap(base, OM_ARENA_SIZE);
        om_raw_free(rt, a);
        return NULL;
    }
    map_set(st, a->base, true);
    a->free_count = OM_POOLS_PER_ARENA;
    a->next = st->arenas;
    if (st->arenas)
        st->arenas->prev = a;
    st->arenas = a;
    st->arena_count++;
    st->empty_arenas++;
    bucket_link(st, a);
    st->arenas_allocated++;
    if (st->arena_count > st->arenas_highwater)
        st->arenas_highwater = st->arena_count;
    if (st->recently_released) {
        /* Memory given back moments ago is wanted again: from now on keep
         * as much as was given back (a drain releases many arenas at once,
         * and the refill that follows wants them all). */
        size_t limit = st->cache_limit + st->recently_released;
        if (limit > st->arenas_highwater)
            limit = st->arenas_highwater;
        st->cache_limit = limit < OM_ARENA_CACHE_MAX ? limit : OM_ARENA_CACHE_MAX;
        st->recently_released = 0;
    }
    return a;
}

static void arena_release(om_runtime *rt, om_arena *a) {
    om_pool_state *st = &rt->pools;
    bucket_unlink(st, a);
    if (a->prev)
        a->prev->next = a->next;
    else
        st->arenas = a->next;
    if (a->next)
        a->next->prev = a->prev;
    map_set(st, a->base, false);
    st->arena_count--;
    st->empty_arenas--;
    st->arenas_freed++;
    om_os_unmap((void *)a->base, OM_ARENA_SIZE);
    om_raw_free(rt, a);
}

/* Unmap empty arenas until at most `keep` remain. */
static size_t release_empty_arenas(om_runtime *rt, size_t keep) {
    om_pool_state *st = &rt->pools;
    size_t released = 0;
    while (st->empty_arenas > keep) {
        arena_release(rt, st->by_free[OM_POOLS_PER_ARENA]);
        released++;
    }
    return released;
}

/* ---- pools ------------------------------------------------------------------- */

static void used_link(om_pool_state *st, om_pool *p) {
    om_pool **head = &st->used[p->kind][p->size_class];
    p->prev = NULL;
    p->next = *head;
    if (*head)
        (*head)->prev = p;
    *head = p;
}

static void used_unlink(om_pool_state *st, om_pool *p) {
    if (p->prev)
        p->prev->next = p->next;
    else
        st->used[p->kind][p->size_class] = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* Pools served from non-empty arenas, while cached arenas sit unused, that
 * halve the cache: OM_ARENA_DECAY plus as many pools as the cache holds.  A
 * refill takes cached arenas last by design, so it must not pass for
 * idleness: the program has to have allocated the cache's worth elsewhere. */
static size_t decay_threshold(const om_pool_state *st) {
    return OM_ARENA_DECAY + st->cache_limit * OM_POOLS_PER_ARENA;
}

/* A pool for (kind, size_class) from an arena with room, linked as the
 * class's first used pool, with these traces (pooltrace.c); NULL when no
 * arena can be had. */
static om_pool *pool_new(om_runtime *rt, int kind, size_t size_class,
                         om_block_trace *traces) {
    om_pool_state *st = &rt->pools;
    om_arena *a = fullest_usable(st);
    if (!a && !(a = arena_new(rt)))
        return NULL;
    if (a->free_count == OM_POOLS_PER_ARENA) {
        st->empty_arenas--;
        st->decay_ticks = 0;            /* the cache is being used */
    } else if (st->empty_arenas &&
               ++st->decay_ticks >= decay_threshold(st)) {
        st->decay_ticks = 0;
        st->recently_released = 0;
        st->cache_limit /= 2;
        release_empty_arenas(rt, st->cache_limit);
    }
    om_pool *p;
    if (a->free_pools) {
        p = a->free_pools;
        a->free_pools = p->next;
    } else {
        p = om_pool_at(a, a->carved++);
    }
    bucket_unlink(st, a);
    a->free_count--;
    bucket_link(st, a);
    p->rt = rt;
    p->arena = a;
    p->freelist = NULL;
    p->traces = traces;
    p->bump = (uint32_t)OM_POOL_HEADER_SIZE;
    p->used = 0;
    p->block_size = (uint16_t)((size_class + 1) * OM_ALIGNMENT);
    p->kind = (uint8_t)kind;
    p->size_class = (uint8_t)size_class;
    om_pool_forget_young(p);
    used_link(st, p);
    return p;
}

/* Give an emptied pool back to its arena; release the arena when every pool
 * is empty and the cache of empty arenas is full. */
static void pool_retire(om_pool_state *st, om_pool *p) {
    om_arena *a = p->arena;
    om_pool_forget_young(p);
    if (p->traces) {
        om_pooltrace_release(p->rt, p->traces, p->size_class);
        p->traces = NULL;
    }
    p->next = a->free_pools;
    a->free_pools = p;
    bucket_unlink(st, a);
    a->free_count++;
    bucket_link(st, a);
    if (a->free_count == OM_POOLS_PER_ARENA) {
        st->empty_arenas++;
        if (st->empty_arenas > st->cache_limit) {
            arena_release(p->rt, a);
            if (st->recently_released < st->arenas_highwater)
                st->recently_released++;
        }
    }
}

void *om_pool_alloc_slow(om_runtime *rt, int kind, size_t size_class) {
    /* While tracing, every pool has its traces: made first, so that
     * failing to make them changes nothing. */
    om_block_trace *traces = NULL;
    if (OM_UNLIKELY(rt->tracing) &&
        !(traces = om_pooltrace_new(rt, size_class)))
        return NULL;
    if (!pool_new(rt, kind, size_class, traces)) {
        if (traces)
            om_pooltrace_release(rt, traces, size_class);
        return NULL;
    }
    return om_pool_alloc(rt, kind, size_class * OM_ALIGNMENT + 1);
}

void om_pool_became_full(om_pool *p) { used_unlink(&p->rt->pools, p); }

void om_pool_free_slow(om_pool *p, bool was_full) {
    om_pool_state *st = &p->rt->pools;
    om_pool **head = &st->used[p->kind][p->size_class];
    if (p->used > 0) {          /* full → partly used */
        used_link(st, p);
        return;
    }
    /* Emptied.  Keep it when it is (or would be) its class's only used
     * pool; otherwise give it back to its arena. */
    bool alone = was_full ? *head == NULL : (*head == p && !p->next);
    if (alone && om_pool_keep_alone(p)) {
        if (was_full)
            used_link(st, p);
        return;
    }
    if (!was_full)
        used_unlink(st, p);
    pool_retire(st, p);
}

/* Whether pool p (carved from its arena) is in use rather than emptied. */
static bool pool_in_use(const om_pool *p) { return p->used > 0; }

static void pool_walk(om_pool *p, void (*fn)(om_object *, void *), void *arg) {
    for (uint32_t off = (uint32_t)OM_POOL_HEADER_SIZE; off < p->bump;
         off += p->block_size) {
        om_object *o = (om_object *)((char *)p + off);
        if (o->om_refword_ & OM_RW_OBJECT)
            fn(o, arg);
    }
}

void om_pool_foreach_object(om_runtime *rt, void (*fn)(om_object *, void *),
                            void *arg) {
    for (om_arena *a = rt->pools.arenas; a; a = a->next) {
        for (size_t i = 0; i < a->carved; i++) {
            om_pool *p = om_pool_at(a, i);
            if (p->kind == OM_KIND_OBJECT && pool_in_use(p))
                pool_walk(p, fn, arg);
        }
    }
}

void om_pool_release_all(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    while (st->arenas) {
        om_arena *a = st->arenas;
        st->arenas = a->next;
        om_os_unmap((void *)a->base, OM_ARENA_SIZE);
        om_raw_free(rt, a);
    }
    if (st->arena_map)
        om_os_unmap(st->arena_map, OM_ARENA_MAP_BYTES);
    memset(st, 0, sizeof *st);
}

/* ---- invariants ----------------------------------------------------------- */

#define CHECK(cond, ...) \
    do {                  \
        if (!(cond))      \
            return om_error(rt, OM_ERR_STATE, "om_check: pools: " __VA_ARGS__); \
    } while (0)

static om_status check_pool(om_runtime *rt, const om_pool *p) {
    CHECK(p->rt == rt, "pool %p belongs to another runtime", (void *)p);
    CHECK(p->block_size == (p->size_class + 1u) * OM_ALIGNMENT,
          "pool %p: block size %u does not match class %u", (void *)p,
          (unsigned)p->block_size, p->size_class);
    CHECK(p->bump >= OM_POOL_HEADER_SIZE && p->bump <= OM_POOL_SIZE,
          "pool %p: bump offset %u out of range", (void *)p, p->bump);
    size_t carved = (p->bump - OM_POOL_HEADER_SIZE) / p->block_size;
    size_t nfree = 0;
    for (void *b = p->freelist; b; b = *(void **)b) {
        size_t off = (size_t)((char *)b - (char *)p);
        CHECK(om_pool_of(b) == p && off >= OM_POOL_HEADER_SIZE &&
                  off < p->bump &&
                  (off - OM_POOL_HEADER_SIZE) % p->block_size == 0,
              "pool %p: free-list entry %p is not one of its blocks",
              (void *)p, b);
        CHECK(++nfree <= carved, "pool %p: free list longer than the pool",
              (void *)p);
    }
    CHECK(nfree + p->used == carved,
          "pool %p: %zu free + %u used != %zu carved blocks", (void *)p,
          nfree, (unsigned)p->used, carved);
    return OM_OK;
}

om_status om_pool_check(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    size_t arenas = 0, empty = 0, listed = 0, expected_listed = 0;
    for (om_arena *a = st->arenas; a; a = a->next) {
        arenas++;
        CHECK(om_pool_owns(rt, (void *)a->base),
              "arena %p missing from the arena map", (void *)a->base);
        size_t free_listed = 0;
        for (om_pool *p = a->free_pools; p; p = p->next) {
            CHECK(p->arena == a && p->used == 0,
                  "arena %p: free pool %p is in use", (void *)a->base,
                  (void *)p);
            CHECK(++free_listed <= a->carved, "arena %p: free-pool cycle",
                  (void *)a->base);
        }
        CHECK(a->free_count == free_listed + (OM_POOLS_PER_ARENA - a->carved),
              "arena %p: free count %u is wrong", (void *)a->base,
              a->free_count);
        if (a->free_count == OM_POOLS_PER_ARENA)
            empty++;
        for (size_t i = 0; i < a->carved; i++) {
            om_pool *p = om_pool_at(a, i);
            if (!pool_in_use(p))
                continue;
            om_status s = check_pool(rt, p);
            if (s != OM_OK)
                return s;
            if (!om_pool_is_full(p))
                expected_listed++;
        }
    }
    CHECK(arenas == st->arena_count, "arena count %zu, list holds %zu",
          st->arena_count, arenas);
    CHECK(empty == st->empty_arenas && empty <= st->cache_limit &&
              st->cache_limit <= OM_ARENA_CACHE_MAX,
          "%zu empty arenas, counted %zu (cache limit %zu)", empty,
          st->empty_arenas, st->cache_limit);
    size_t bucketed = 0, with_room = 0;
    for (om_arena *a = st->arenas; a; a = a->next)
        with_room += a->free_count > 0;
    for (uint32_t k = 0; k <= OM_POOLS_PER_ARENA; k++) {
        CHECK(((st->bucket_mask >> k) & 1) == (st->by_free[k] != NULL),
              "bucket mask bit %u is wrong", k);
        for (om_arena *a = st->by_free[k]; a; a = a->next_in_bucket) {
            CHECK(k > 0 && a->free_count == k,
                  "arena %p with %u free pools is in bucket %u",
                  (void *)a->base, a->free_count, k);
            CHECK(++bucketed <= arenas, "bucket %u has a cycle", k);
        }
    }
    CHECK(bucketed == with_room, "%zu arenas with room, %zu in buckets",
          with_room, bucketed);
    for (int k = 0; k < OM_KINDS; k++) {
        for (size_t c = 0; c < OM_SIZE_CLASSES; c++) {
            size_t kept_empty = 0;
            for (om_pool *p = st->used[k][c]; p; p = p->next) {
                CHECK(p->kind == k && p->size_class == c && !om_pool_is_full(p),
                      "used list %d/%zu holds a wrong pool %p", k, c,
                      (void *)p);
                if (p->used == 0) {
                    om_status s = check_pool(rt, p);
                    if (s != OM_OK)
                        return s;
                    CHECK(++kept_empty == 1,
                          "used list %d/%zu holds two empty pools", k, c);
                } else {
                    listed++;
                }
            }
        }
    }
    CHECK(listed == expected_listed,
          "%zu pools on used lists, %zu partly used pools", listed,
          expected_listed);
    return OM_OK;
}

/* ---- trim --------------------------------------------------------------------- */

size_t om_pool_trim(om_runtime *rt) {
    if (!rt)
        return 0;
    om_pool_state *st = &rt->pools;
    /* A class's kept empty pool goes back to its arena first, so that
     * arenas held only by such pools become empty too. */
    for (int k = 0; k < OM_KINDS; k++) {
        for (size_t c = 0; c < OM_SIZE_CLASSES; c++) {
            om_pool *p = st->used[k][c];
            if (p && p->used == 0) {
                used_unlink(st, p);
                st->cache_limit = SIZE_MAX; /* retire without releasing */
                pool_retire(st, p);
            }
        }
    }
    st->cache_limit = 0;
    st->recently_released = 0;
    st->decay_ticks = 0;
    om_gc_release_work(rt);
    return release_empty_arenas(rt, 0) * OM_ARENA_SIZE;
}
