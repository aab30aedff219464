/*
 * pool.c — small blocks: arenas from the OS, carved into pools of one size
 * class each, carved into blocks (docs/design.md, "Allocator").  Objects and
 * plain data live in separate pools so that walking object pools in address
 * order finds exactly the objects.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct om_arena {
    uintptr_t base;
    om_arena *next;          /* all arenas of the runtime */
    om_arena *prev;
    om_arena *next_usable;   /* arenas with an available pool */
    om_arena *prev_usable;
    om_pool *free_pools;     /* emptied pools, linked through pool->next */
    uint32_t free_count;     /* emptied + never carved pools */
    uint32_t carved;         /* pools carved from the arena so far */
    bool usable;             /* on the usable list */
};

static om_pool *pool_at(const om_arena *a, size_t i) {
    return (om_pool *)(a->base + i * OM_POOL_SIZE);
}

/* ---- the arena address set (open addressing, linear probing) ------------ */

static size_t set_slot(uintptr_t base, size_t cap) {
    uint64_t h = (uint64_t)(base / OM_ARENA_SIZE) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 20) & (cap - 1);
}

static bool set_insert_raw(uintptr_t *set, size_t cap, uintptr_t base) {
    size_t i = set_slot(base, cap);
    while (set[i])
        i = (i + 1) & (cap - 1);
    set[i] = base;
    return true;
}

static bool set_add(om_runtime *rt, uintptr_t base) {
    om_pool_state *st = &rt->pools;
    if ((st->arena_count + 1) * 2 > st->arena_set_cap) {
        size_t cap = st->arena_set_cap ? st->arena_set_cap * 2 : 16;
        uintptr_t *set =
            om_alloc_attempt(rt) ? om_raw_calloc(rt, cap, sizeof *set) : NULL;
        if (!set)
            return false;
        for (size_t i = 0; i < st->arena_set_cap; i++)
            if (st->arena_set[i])
                set_insert_raw(set, cap, st->arena_set[i]);
        om_raw_free(rt, st->arena_set);
        st->arena_set = set;
        st->arena_set_cap = cap;
    }
    return set_insert_raw(st->arena_set, st->arena_set_cap, base);
}

/* Remove base, shifting later members of its probe run back so that lookups
 * never stop at a hole inside a run. */
static void set_remove(om_pool_state *st, uintptr_t base) {
    size_t cap = st->arena_set_cap, i = set_slot(base, cap);
    while (st->arena_set[i] != base)
        i = (i + 1) & (cap - 1);
    size_t hole = i;
    for (;;) {
        i = (i + 1) & (cap - 1);
        uintptr_t b = st->arena_set[i];
        if (!b)
            break;
        size_t home = set_slot(b, cap);
        /* b may fill the hole if its home is not in (hole, i]. */
        bool home_between = hole < i ? (home > hole && home <= i)
                                     : (home > hole || home <= i);
        if (!home_between) {
            st->arena_set[hole] = b;
            hole = i;
        }
    }
    st->arena_set[hole] = 0;
}

bool om_pool_owns(const om_runtime *rt, const void *p) {
    const om_pool_state *st = &rt->pools;
    if (!st->arena_set_cap)
        return false;
    uintptr_t base = (uintptr_t)p & ~(uintptr_t)(OM_ARENA_SIZE - 1);
    for (size_t i = set_slot(base, st->arena_set_cap);;
         i = (i + 1) & (st->arena_set_cap - 1)) {
        if (st->arena_set[i] == base)
            return true;
        if (!st->arena_set[i])
            return false;
    }
}

/* ---- arenas ---------------------------------------------------------------- */

static void usable_link(om_pool_state *st, om_arena *a) {
    a->usable = true;
    a->prev_usable = NULL;
    a->next_usable = st->usable;
    if (st->usable)
        st->usable->prev_usable = a;
    st->usable = a;
}

static void usable_unlink(om_pool_state *st, om_arena *a) {
    a->usable = false;
    if (a->prev_usable)
        a->prev_usable->next_usable = a->next_usable;
    else
        st->usable = a->next_usable;
    if (a->next_usable)
        a->next_usable->prev_usable = a->prev_usable;
}

/* A new arena, or NULL.  Each system allocation is an allocation attempt,
 * so failure injection reaches every step of this rollback. */
static om_arena *arena_new(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
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
    if (!set_add(rt, a->base)) {
        om_os_unmap(base, OM_ARENA_SIZE);
        om_raw_free(rt, a);
        return NULL;
    }
    a->free_count = OM_POOLS_PER_ARENA;
    a->next = st->arenas;
    if (st->arenas)
        st->arenas->prev = a;
    st->arenas = a;
    st->arena_count++;
    st->empty_arenas++;
    usable_link(st, a);
    return a;
}

static void arena_release(om_runtime *rt, om_arena *a) {
    om_pool_state *st = &rt->pools;
    if (a->usable)
        usable_unlink(st, a);
    if (a->prev)
        a->prev->next = a->next;
    else
        st->arenas = a->next;
    if (a->next)
        a->next->prev = a->prev;
    set_remove(st, a->base);
    st->arena_count--;
    st->empty_arenas--;
    om_os_unmap((void *)a->base, OM_ARENA_SIZE);
    om_raw_free(rt, a);
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

/* A pool for (kind, size_class) from an arena with room, linked as the
 * class's first used pool; NULL when no arena can be had. */
static om_pool *pool_new(om_runtime *rt, int kind, size_t size_class) {
    om_pool_state *st = &rt->pools;
    om_arena *a = st->usable ? st->usable : arena_new(rt);
    if (!a)
        return NULL;
    if (a->free_count == OM_POOLS_PER_ARENA)
        st->empty_arenas--;
    om_pool *p;
    if (a->free_pools) {
        p = a->free_pools;
        a->free_pools = p->next;
    } else {
        p = pool_at(a, a->carved++);
    }
    if (--a->free_count == 0)
        usable_unlink(st, a);
    p->rt = rt;
    p->arena = a;
    p->freelist = NULL;
    p->bump = (uint32_t)OM_POOL_HEADER_SIZE;
    p->used = 0;
    p->block_size = (uint32_t)((size_class + 1) * OM_ALIGNMENT);
    p->kind = (uint8_t)kind;
    p->size_class = (uint8_t)size_class;
    used_link(st, p);
    return p;
}

/* Give an emptied pool back to its arena; release the arena when every pool
 * is empty and the cache of empty arenas is full. */
static void pool_retire(om_pool_state *st, om_pool *p) {
    om_arena *a = p->arena;
    p->next = a->free_pools;
    a->free_pools = p;
    if (a->free_count++ == 0)
        usable_link(st, a);
    if (a->free_count == OM_POOLS_PER_ARENA) {
        st->empty_arenas++;
        if (st->empty_arenas > OM_ARENA_CACHE)
            arena_release(p->rt, a);
    }
}

void *om_pool_alloc_slow(om_runtime *rt, int kind, size_t size_class) {
    if (!pool_new(rt, kind, size_class))
        return NULL;
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
    if (alone) {
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

void om_pool_foreach_object(om_runtime *rt, void (*fn)(om_object *, void *),
                            void *arg) {
    for (om_arena *a = rt->pools.arenas; a; a = a->next) {
        for (size_t i = 0; i < a->carved; i++) {
            om_pool *p = pool_at(a, i);
            if (p->kind != OM_KIND_OBJECT || !pool_in_use(p))
                continue;
            for (uint32_t off = (uint32_t)OM_POOL_HEADER_SIZE; off < p->bump;
                 off += p->block_size) {
                om_object *o = (om_object *)((char *)p + off);
                if (o->om_refword_ & OM_RW_OBJECT)
                    fn(o, arg);
            }
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
    om_raw_free(rt, st->arena_set);
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
          p->block_size, p->size_class);
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
          nfree, p->used, carved);
    return OM_OK;
}

om_status om_pool_check(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    size_t arenas = 0, empty = 0, listed = 0, expected_listed = 0;
    for (om_arena *a = st->arenas; a; a = a->next) {
        arenas++;
        CHECK(om_pool_owns(rt, (void *)a->base),
              "arena %p missing from the address set", (void *)a->base);
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
        CHECK(a->usable == (a->free_count > 0),
              "arena %p: usable flag is wrong", (void *)a->base);
        if (a->free_count == OM_POOLS_PER_ARENA)
            empty++;
        for (size_t i = 0; i < a->carved; i++) {
            om_pool *p = pool_at(a, i);
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
    CHECK(empty == st->empty_arenas && empty <= OM_ARENA_CACHE,
          "%zu empty arenas, counted %zu (cache %d)", empty,
          st->empty_arenas, OM_ARENA_CACHE);
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
