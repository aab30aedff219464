/*
 * internal.h — declarations shared by the library's modules, and each
 * module's invariants.  Nothing here is part of the public API.
 * docs/design.md explains the layout these invariants protect.
 */
#ifndef OBJMEM_INTERNAL_H
#define OBJMEM_INTERNAL_H

#include "objmem.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef OBJMEM_DEBUG
#define OBJMEM_DEBUG 0
#endif
/* Build option: collect at every tracked allocation where a collection may
 * run (CMake OBJMEM_GC_STRESS), to shake out collector bugs in tests. */
#ifndef OBJMEM_GC_STRESS
#define OBJMEM_GC_STRESS 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define OM_LIKELY(x) __builtin_expect(!!(x), 1)
#define OM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define OM_NORETURN __attribute__((noreturn))
#define OM_NOINLINE __attribute__((noinline))
#define OM_COLD __attribute__((cold))
#define OM_PRINTF(f, a) __attribute__((format(printf, f, a)))
/* The public functions with allocation fast paths start on a cache line:
 * the fast path then spans the fewest lines wherever the linker puts the
 * function, and its cost no longer moves with what lies before it (on the
 * benchmark machine one-at-a-time om_malloc + om_free, the same code, took
 * from 3.1 to 4.3 ns by function placement alone). */
#define OM_FAST_ENTRY __attribute__((aligned(64)))
#else
#define OM_LIKELY(x) (x)
#define OM_UNLIKELY(x) (x)
#define OM_NORETURN
#define OM_NOINLINE
#define OM_COLD
#define OM_PRINTF(f, a)
#define OM_FAST_ENTRY
#endif

/* ---- checks (check.c) ----------------------------------------------------
 * Internal bugs are OM_ASSERT (level 2) and OM_ASSERT_EXPENSIVE (level 3);
 * caller misuse that cannot be returned as an error is om_misuse (level 1).
 */
OM_NORETURN void om_assert_fail(const char *expr, const char *file, int line);
OM_NORETURN OM_PRINTF(2, 3) void om_misuse(const char *func,
                                           const char *fmt, ...);
#if OBJMEM_DEBUG >= 2
#define OM_ASSERT(e) ((e) ? (void)0 : om_assert_fail(#e, __FILE__, __LINE__))
#else
#define OM_ASSERT(e) ((void)0)
#endif

/* ---- errors (status.c) ---------------------------------------------------
 * om_error records status and a formatted message in rt (which may be NULL:
 * then only the status is returned) and returns the status, so that callers
 * can write `return om_error(rt, OM_ERR_ARG, "...")`.
 */
OM_PRINTF(3, 4) om_status om_error(om_runtime *rt, om_status status,
                                   const char *fmt, ...);
/* om_error for a function returning a pointer: records and returns NULL. */
#define OM_FAIL_NULL(rt, status, ...) \
    (om_error((rt), (status), __VA_ARGS__), (void *)0)

/* ---- options (options.c) ------------------------------------------------
 * Every runtime option, declared once: field of om_config, environment
 * variable, the parser of its text, its default (as text, through the same
 * parser), another valid value (for tests) and help.  om_config_init applies
 * defaults and the environment from this table; docs/environment.md lists
 * the same rows and a test keeps the two in step.
 *   X(field, ENV_NAME, parser, default, other, help)
 */
#define OM_OPTION_TABLE(X)                                                  \
    X(leak_report, "OBJMEM_LEAK_REPORT", om_parse_int, "1", "0",             \
      "report objects still alive when a runtime is freed (0 or 1)")        \
    X(malloc_debug, "OBJMEM_MALLOC", om_parse_malloc, "default", "debug",     \
      "allocator mode: default, or debug (guards, fill patterns, serials)")

/* Parsers: store the value of text in *out and return true, or return false
 * (and leave *out alone) when text is not a valid value. */
bool om_parse_int(const char *text, int *out);
bool om_parse_malloc(const char *text, int *out);

typedef struct om_option_info {
    const char *field;
    const char *env;
    bool (*parse)(const char *text, int *out);
    const char *default_text;
    const char *other_text;
    const char *help;
} om_option_info;
extern const om_option_info om_options[];
extern const size_t om_option_count;

/* ---- OS layer (os.c) ------------------------------------------------------ */
/* size bytes aligned to `align` (a power of two, multiple of the page), or
 * NULL.  Memory comes zero-filled. */
void *om_os_map_aligned(size_t size, size_t align);
void om_os_unmap(void *p, size_t size);
/* size bytes of address space, readable and writable, zero-filled, with no
 * memory committed until touched; or NULL. */
void *om_os_reserve(size_t size);
/* Zero-filled memory for a large work array: whole 2 MiB huge pages where
 * the system allows; give it back with om_os_release_huge(p, size). */
void *om_os_reserve_huge(size_t size);
void om_os_release_huge(void *p, size_t size);
const char *om_os_getenv(const char *name);
uint64_t om_os_now_ns(void);

/* ---- object header (object.c) ---------------------------------------------
 * Header word: refcount << OM_RC_SHIFT | flags.
 * Invariants:
 *   - OM_RW_OBJECT is set in every object, live or queued; a free pool
 *     block has it clear (its first word is a 16-aligned free-list link).
 *   - Immortal objects (OM_RW_IMMORTAL) never change their word through
 *     incref/decref and are never queued or freed by refcounting.
 *   - An object with OM_RW_QUEUED has refcount zero and is on its runtime's
 *     dealloc queue; its refcount bits then hold the queue link (the next
 *     object's address >> 4).  Nothing may hand out a new reference to it.
 *   - OM_RW_FINALIZED is set before finalize runs and never cleared.
 *   - OM_RW_LARGE: the object lives outside the pools, behind an om_large
 *     prefix.
 *   - OM_RW_TRACKED: the collector considers the object; its generation is
 *     in the OM_RW_GEN bits (0..2, or OM_GEN_PERMANENT when frozen).
 *   - OM_RW_COLLECTING / OM_RW_REACHABLE are set only while a collection
 *     runs (see gc.c), and only on objects of the generations it examines.
 */
#define OM_RC_SHIFT 12
#define OM_RC_ONE ((uint64_t)1 << OM_RC_SHIFT)
#define OM_RW_FLAGS (OM_RC_ONE - 1)
#define OM_RW_OBJECT ((uint64_t)OM_PRIV_OBJECT_)
#define OM_RW_IMMORTAL ((uint64_t)OM_PRIV_IMMORTAL_)
#define OM_RW_STATIC ((uint64_t)OM_PRIV_STATIC_)
#define OM_RW_LARGE ((uint64_t)0x08)
#define OM_RW_QUEUED ((uint64_t)0x10)
#define OM_RW_FINALIZED ((uint64_t)0x20)
#define OM_RW_TRACKED ((uint64_t)0x40)
#define OM_RW_GEN_SHIFT 7
#define OM_RW_GEN ((uint64_t)3 << OM_RW_GEN_SHIFT)
#define OM_RW_COLLECTING ((uint64_t)0x200)
#define OM_RW_REACHABLE ((uint64_t)0x400)
#define OM_GEN_PERMANENT 3

static inline uint64_t om_rc_of(uint64_t word) { return word >> OM_RC_SHIFT; }
static inline unsigned om_gen_of(uint64_t word) {
    return (unsigned)((word & OM_RW_GEN) >> OM_RW_GEN_SHIFT);
}

/* Where an allocation was asked for, for the tracer: a call site from the
 * public macros (file set) and, always, the return address into the
 * caller of the public function, which starts native unwinding and
 * stands for the call site when file is NULL. */
typedef struct om_site {
    const char *file;
    const char *func;
    int line;
    uintptr_t ret;
} om_site;

/* Where the current function's caller resumes: a public function's call
 * site, when the caller did not pass one. */
#define OM_RETURN_ADDRESS() ((uintptr_t)__builtin_return_address(0))

/* om_new_var on behalf of the public function `func`, which failure
 * messages name, whose caller resumes at ret. */
om_object *om_object_alloc(om_runtime *rt, const char *func,
                           const om_type *type, size_t extra, uintptr_t ret);
/* om_new for the library's own types, valid by construction (small, not
 * weakly referenceable): the inline fast path without om_new's checks. */
om_object *om_object_new_builtin(om_runtime *rt, const char *func,
                                 const om_type *type, uintptr_t ret);
/* Check every object header of rt (called by om_check). */
om_status om_object_check(om_runtime *rt);
/* Clear heap immortal objects and count / report live ones at shutdown. */
void om_object_clear_immortals(om_runtime *rt);
size_t om_object_report_leaks(om_runtime *rt, bool print);

/* ---- pools (pool.c) -------------------------------------------------------
 * Arenas of OM_ARENA_SIZE bytes, aligned to their size, are carved into
 * pools of OM_POOL_SIZE bytes, each serving one size class of one kind
 * (objects or plain data, so that a pool walk sees only objects).
 * Invariants:
 *   - A pool's header is at its start; pool_of(p) = p & ~(OM_POOL_SIZE-1).
 *   - used counts the blocks handed out and not freed; free-list blocks and
 *     blocks below `bump` that are not used are exactly the free ones.
 *   - A pool with free space and used > 0 is on the used list of its class
 *     and kind; a full pool is on no list; an empty pool is on its arena's
 *     free-pool list, except that a used list whose last pool empties may
 *     keep it (om_pool_keep_alone; so a class that churns around zero live
 *     blocks does not take and return a pool every time): a used list holds
 *     at most one empty pool.
 *   - An arena with an available pool (free_count > 0) is in bucket
 *     by_free[free_count], and bit free_count of bucket_mask is set exactly
 *     when that bucket is non-empty.
 *   - At most cache_limit arenas are wholly empty; cache_limit <=
 *     OM_ARENA_CACHE_MAX (see "arenas" in pool.c for how it adapts).
 */
#define OM_POOL_SIZE ((size_t)64 * 1024)
#define OM_ARENA_SHIFT 20
#define OM_ARENA_SIZE ((size_t)1 << OM_ARENA_SHIFT)
#define OM_POOLS_PER_ARENA (OM_ARENA_SIZE / OM_POOL_SIZE)
#define OM_ALIGNMENT 16
#define OM_SMALL_MAX 512
#define OM_SIZE_CLASSES (OM_SMALL_MAX / OM_ALIGNMENT)
#define OM_ADDRESS_BITS 47         /* user address space covered by the map */
#define OM_ARENA_MAP_BYTES (((size_t)1 << OM_ADDRESS_BITS) / OM_ARENA_SIZE / 8)
#define OM_ARENA_CACHE_MAX 1024   /* empty arenas kept at most (1 GiB) */
#define OM_ARENA_DECAY 256        /* pools (16 MiB), plus the cache's own
                                     size, that halve an idle cache */

enum om_pool_kind { OM_KIND_OBJECT = 0, OM_KIND_DATA = 1, OM_KINDS = 2 };

typedef struct om_pool om_pool;

/* The trace of one pool block while its runtime traces (pooltrace.c): the
 * traced size and the engine's traceback id, 0 for a block not traced. */
typedef struct om_block_trace {
    uint32_t size;
    uint32_t tb;
} om_block_trace;

typedef struct om_arena {
    uintptr_t base;
    struct om_arena *next;   /* all arenas of the runtime */
    struct om_arena *prev;
    struct om_arena *next_in_bucket; /* arenas with the same free_count > 0 */
    struct om_arena *prev_in_bucket;
    om_pool *free_pools;     /* emptied pools, linked through pool->next */
    uint32_t free_count;     /* emptied + never carved pools */
    uint32_t carved;         /* pools carved from the arena so far */
} om_arena;

struct om_pool {
    om_runtime *rt;
    om_arena *arena;
    void *freelist;          /* freed blocks, linked through their word 0 */
    struct om_pool *next;    /* used list of its class, or arena free list */
    struct om_pool *prev;
    /* While the runtime traces, the traces of the pool's blocks by index
     * (pooltrace.c), in every pool from pool_new to pool_retire; NULL
     * otherwise. */
    om_block_trace *traces;
    uint32_t bump;           /* offset of the first never-used block */
    uint16_t used;           /* blocks handed out */
    uint16_t block_size;
    /* While young is non-zero, the pool's objects of generation 0 / 1 all
     * start at offsets in [young_lo, young_lo + young_span); young_span is
     * 0 exactly while young is 0.  (Offsets and sizes within a pool fit 16
     * bits; bump alone can reach OM_POOL_SIZE.) */
    uint16_t young_lo;
    uint16_t young_span;
    uint8_t kind;
    uint8_t size_class;
    uint8_t young;           /* OM_POOL_YOUNG* bits (object pools) */
};

/* A pool that may hold objects of generation 0 / 1: such pools are listed in
 * rt->gc.young_pools, so young collections walk only them, and only their
 * young range.  SEEN marks a pool already gathered by the collection under
 * way. */
#define OM_POOL_YOUNG0 0x01
#define OM_POOL_YOUNG1 0x02
#define OM_POOL_SEEN 0x80

#define OM_POOL_HEADER_SIZE \
    ((sizeof(om_pool) + OM_ALIGNMENT - 1) & ~(size_t)(OM_ALIGNMENT - 1))
/* One cache line: the allocation fast path touches only that. */
_Static_assert(OM_POOL_HEADER_SIZE == 64, "the pool header is 64 bytes");

/* p holds no object of generation 0 / 1 (any young-list entry for it is
 * now stale). */
static inline void om_pool_forget_young(om_pool *p) {
    p->young = 0;
    p->young_span = 0;
}

static inline om_pool *om_pool_at(const om_arena *a, size_t i) {
    return (om_pool *)(a->base + i * OM_POOL_SIZE);
}
/* Blocks a pool of this block size holds. */
static inline size_t om_pool_capacity(size_t block_size) {
    return (OM_POOL_SIZE - OM_POOL_HEADER_SIZE) / block_size;
}

static inline om_pool *om_pool_of(const void *p) {
    return (om_pool *)((uintptr_t)p & ~(uintptr_t)(OM_POOL_SIZE - 1));
}

typedef struct om_pool_state {
    om_pool *used[OM_KINDS][OM_SIZE_CLASSES];
    om_arena *arenas;        /* every arena, newest first */
    /* Arenas by available pools (1..OM_POOLS_PER_ARENA); 0 is unused. */
    om_arena *by_free[OM_POOLS_PER_ARENA + 1];
    uint32_t bucket_mask;    /* bit k: by_free[k] is non-empty */
    size_t arena_count;
    size_t empty_arenas;     /* arenas whose pools are all empty */
    size_t cache_limit;      /* empty arenas kept mapped */
    size_t recently_released; /* arenas unmapped and not yet wanted back */
    size_t decay_ticks;      /* pools taken while the cache sat unused */
    size_t arenas_allocated; /* totals since the runtime was made */
    size_t arenas_freed;
    size_t arenas_highwater;
    /* Bit i: an arena of this runtime starts at i MiB (om_pool_owns). */
    uint64_t *arena_map;
} om_pool_state;

static inline bool om_pool_is_full(const om_pool *p) {
    return !p->freelist && p->bump + p->block_size > OM_POOL_SIZE;
}
/* A zeroed traces array for a pool of this class, counted in the tracer's
 * memory, or NULL (pooltrace.c; only while rt traces); and its release. */
om_block_trace *om_pooltrace_new(om_runtime *rt, size_t size_class);
void om_pooltrace_release(om_runtime *rt, om_block_trace *traces,
                          size_t size_class);
/* Slow paths of om_pool_alloc / om_pool_free (below, inline). */
void *om_pool_alloc_slow(om_runtime *rt, int kind, size_t size_class);
void om_pool_became_full(om_pool *p);
void om_pool_free_slow(om_pool *p, bool was_full);
/* Call fn on every live object block (pool kind OBJECT, OM_RW_OBJECT set). */
void om_pool_foreach_object(om_runtime *rt, void (*fn)(om_object *, void *),
                            void *arg);
om_status om_pool_check(om_runtime *rt);
void om_pool_release_all(om_runtime *rt);

/* ---- raw allocator (mem.c) ---------------------------------------------------
 * Every system allocation of the runtime goes through rt->raw (the user's
 * om_raw_allocator, or the C library's).
 */
void *om_raw_malloc(om_runtime *rt, size_t n);
void *om_raw_calloc(om_runtime *rt, size_t count, size_t size);
void *om_raw_realloc(om_runtime *rt, void *p, size_t n);
void om_raw_free(om_runtime *rt, void *p);
/* The C library's malloc family as an om_raw_allocator. */
extern const om_raw_allocator om_libc_allocator;

/* ---- blocks (mem.c) -------------------------------------------------------------
 * The allocator underneath om_malloc and the debug layer: no failure
 * injection, no error messages, no debug layout.  om_block_realloc returns
 * NULL and leaves p untouched on failure.
 */
void *om_block_alloc(om_runtime *rt, size_t n);
void *om_block_realloc(om_runtime *rt, void *p, size_t n);
void om_block_free(om_runtime *rt, void *p);
size_t om_block_usable_size(const om_runtime *rt, const void *p);

/* ---- debug allocator (debugmem.c) -------------------------------------------
 * With config.malloc_debug, om_malloc & co. go through these, which wrap each
 * block in a header (size, serial number, leading guard) and a trailing
 * guard, fill new memory with 0xCD and freed memory with 0xDD, and check the
 * guards on free and realloc, aborting with a report naming `func` on damage
 * or double free.  The same contract as the om_block_* functions otherwise.
 */
void *om_debugmem_alloc(om_runtime *rt, size_t n);
void *om_debugmem_realloc(om_runtime *rt, const char *func, void *p, size_t n);
void om_debugmem_free(om_runtime *rt, const char *func, void *p);
size_t om_debugmem_usable_size(om_runtime *rt, const void *p);
/* Free the quarantined blocks and the debug state (om_runtime_free, before
 * the pools and large blocks go). */
void om_debugmem_release(om_runtime *rt);

/* ---- large blocks (mem.c) --------------------------------------------------
 * Blocks above OM_SMALL_MAX come from the system allocator behind an
 * om_large prefix, on a doubly linked list of their runtime so that the
 * runtime can walk and free them.  The prefix is a multiple of 16 bytes so
 * the payload keeps 16-byte alignment.
 */
typedef struct om_large {
    struct om_large *next;
    struct om_large *prev;
    om_runtime *rt;
    size_t size;             /* payload bytes requested */
} om_large;

static inline om_large *om_large_of(const void *p) {
    return (om_large *)((char *)(uintptr_t)p - sizeof(om_large));
}
/* n payload bytes of the given kind (OM_KIND_OBJECT or OM_KIND_DATA). */
void *om_large_alloc(om_runtime *rt, int kind, size_t n);
void om_large_free(void *p);
void om_large_release_all(om_runtime *rt);

/* ---- containers (list.c, tuple.c, dict.c, str.c, int.c) ------------------
 * Container invariants: len <= capacity; every stored reference is owned
 * (counted in the referent's refcount); a slot is set to NULL before the
 * reference it held is dropped.
 */
/* OM_OK when o is an object of `type`; otherwise the error, recorded in
 * o's runtime when it has one. */
om_status om_expect(const char *func, const om_object *o, const om_type *type);
/* Python-style index resolution: negative counts from the end.  False when
 * the index is out of [0, len). */
static inline bool om_index_resolve(ptrdiff_t index, size_t len, size_t *out) {
    if (index < 0) {
        /* -(index + 1) cannot overflow, unlike -index for PTRDIFF_MIN. */
        size_t back = (size_t)(-(index + 1)) + 1;
        if (back > len)
            return false;
        *out = len - back;
        return true;
    }
    if ((size_t)index >= len)
        return false;
    *out = (size_t)index;
    return true;
}
/* The hash of a byte string, shared by om_str and the dict's C-string keys. */
uint64_t om_hash_bytes(const void *data, size_t len);
/* Whether str is an om_str with these bytes (hash = om_hash_bytes of them). */
bool om_str_equals_bytes(const om_object *str, uint64_t hash,
                         const char *data, size_t len);
/* Hash of a pointer-sized value, for identity hashing and integers. */
static inline uint64_t om_hash_word(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- cycle collector (gc.c) -------------------------------------------------
 * Invariants:
 *   - A tracked object of generation 0 or 1 in a pool has OM_POOL_YOUNG0 or
 *     _YOUNG1 set on its pool, lies in the pool's young range (young_lo,
 *     young_span), and the pool is in young_pools (which may also hold stale
 *     entries: pools since retired or re-flagged, skipped when gathered) or
 *     young_overflow is set.  So a young collection, which walks the young
 *     range of each listed pool, finds every such object.  A pool's range
 *     only widens while it is young (om_gc_young_block); it is set afresh
 *     when a pool without young bits gets its first young object: whoever
 *     clears the bits (om_pool_forget_young: a collection promoting
 *     everything to generation 2, om_gc_freeze, pool retirement or reuse)
 *     knows no young object is left in it.  Large objects are found
 *     through rt->large instead.
 *   - A collection of generations 0..g subtracts, while it gathers, every
 *     reference to a tracked, unqueued object of generation <= g (gc.c),
 *     before knowing whether that object is gathered: so each such object
 *     must be gathered (the invariant above, rt->large, or the walk of
 *     every pool when g is 2), or its count stays short.  Frozen objects
 *     (OM_GEN_PERMANENT) and untracked ones are never subtracted.  This
 *     also means a tracked object must not refer to a tracked object of
 *     another runtime: a collection would subtract that reference and
 *     never give it back.
 *   - count[0] is tracked allocations minus deallocations since the last
 *     collection (never below zero); count[1] counts generation-0
 *     collections since the last generation-1 one, count[2] likewise.
 *   - trigger is count[0]'s limit for an automatic collection: threshold[0]
 *     when the collector is enabled and threshold[0] > 0, else SIZE_MAX.
 */
#define OM_GC_WORK_KEEP ((size_t)1 << 16)

typedef struct om_gc_state {
    size_t count[3];
    size_t threshold[3];
    size_t trigger;
    bool enabled;
    bool collecting;
    size_t long_lived_total;     /* tracked objects in gen 2 after a full run */
    size_t long_lived_pending;   /* promoted into gen 2 since then */
    om_pool **young_pools;       /* raw-allocated vector */
    size_t young_len, young_cap;
    bool young_overflow;         /* a pool could not be listed: walk all */
    om_gc_generation_stats stats[3];
    int debug;                   /* OM_GC_DEBUG_* */
    size_t stress_ticks;         /* OBJMEM_GC_STRESS: allocations seen */
    /* Work arrays kept between collections (raw-allocated, 0 or
     * OM_GC_WORK_KEEP entries each): the gathered objects, the reach queue. */
    om_object **work;
    om_object **queue;
    size_t work_cap;
    om_object *garbage;          /* gc.garbage list, made on first use */
    struct om_gc_callback *callbacks; /* raw-allocated vector */
    size_t ncallbacks, callbacks_cap;
} om_gc_state;

/* Whether a tuple holds only untracked items (tuple.c): such a tuple is
 * untracked when it survives a collection, as in CPython. */
bool om_tuple_all_untracked(const om_object *tuple);

/* A tracked object of generation 0 is at offset `off` of pool p, outside
 * p's young range: widen the range, or, for a pool not young yet, flag and
 * list the pool with a range of that block alone. */
void om_gc_note_young_block(om_runtime *rt, om_pool *p, uint32_t off);

/* Whether o, in pool p, lies outside p's young range.  On the allocation
 * path, so the common case (o inside the range) is one unsigned compare,
 * which fails below the range, past it, and in a pool that is not young
 * (young_span 0). */
static inline bool om_gc_young_outside(const om_pool *p, const om_object *o) {
    uint32_t off = (uint32_t)((uintptr_t)o - (uintptr_t)p);
    return off - p->young_lo >= p->young_span;
}
/* Keep the young-pool invariant for o, a tracked object of generation 0 in
 * pool p. */
static inline void om_gc_young_block(om_runtime *rt, om_pool *p,
                                     const om_object *o) {
    if (OM_UNLIKELY(om_gc_young_outside(p, o)))
        om_gc_note_young_block(rt, p, (uint32_t)((uintptr_t)o - (uintptr_t)p));
}
/* The rare end of creating o, an object of a collectable type, counted in
 * count[0] already: keep the young-pool invariant when o is tracked and
 * outside its pool's young range, then start an automatic collection if
 * one is due.  Returns o, so that allocation fast paths reach it by a tail
 * call and need no stack frame (kept in gc.c, apart from them, so that
 * the compiler cannot see that it returns its argument and make the call
 * an ordinary one). */
om_object *om_gc_new_object_slow(om_runtime *rt, om_object *o);
void om_gc_init(om_runtime *rt);
void om_gc_release(om_runtime *rt);
/* Free the collector's work arrays (om_pool_trim). */
void om_gc_release_work(om_runtime *rt);

/* ---- weak references (weakref.c, weaktable.c, finalize.c) -------------------
 * Invariants:
 *   - An object of a OM_TYPE_WEAKREFABLE type has a list head in the last
 *     8 bytes of its block (om_weaklist_slot): its live weak references,
 *     doubly linked, the plain one (no callback) first if any, then those
 *     with callbacks, newest first.  Each listed ref has referent == that
 *     object; a cleared ref has referent NULL and is in no list.
 *   - A ref is cleared before its referent's memory is released, by the
 *     referent's death (object.c) or by the collector (gc.c).
 *   - While a ref's callback is pending it holds a reference of its own and
 *     its `next` chains the pending callbacks instead of the list.
 *   - A weak table's refs carry om_weaktable_ref_died as callback and the
 *     table as data while the table holds them; the table clears both when
 *     it lets a ref go, so a ref that outlives its entry calls nothing.
 */
typedef struct om_weakref {
    OM_OBJECT_HEAD
    om_object *referent;             /* NULL once cleared */
    om_weakref_callback callback;    /* NULL: none, or already called */
    void *data;
    struct om_weakref *prev, *next;  /* the referent's list (see above) */
    om_object *key;                  /* weak-value tables: the entry's key */
    uint64_t hash;                   /* the referent's, once `hashed` */
    bool hashed;                     /* (fits the 80-byte block) */
} om_weakref;

/* Where a weakly referenceable object keeps its list head. */
static inline om_weakref **om_weaklist_slot(const om_object *o) {
    size_t block = (o->om_refword_ & OM_RW_LARGE) ? om_large_of(o)->size
                                                  : om_pool_of(o)->block_size;
    return (om_weakref **)(uintptr_t)((const char *)o + block -
                                      sizeof(om_weakref *));
}

static inline bool om_has_weakrefs(const om_object *o) {
    return (o->om_type_->flags & OM_TYPE_WEAKREFABLE) &&
           *om_weaklist_slot(o) != NULL;
}

/* A chain of refs whose callbacks are due, in call order. */
typedef struct om_weakref_chain {
    om_weakref *head, *tail;
} om_weakref_chain;

/* Clear every weak reference to o.  Those with a callback that are not in
 * a collection's garbage (COLLECTING) join `due`, each holding a reference;
 * with `due` NULL no callback will run (a weak table learns that its entry
 * died all the same). */
void om_weakref_clear_all(om_object *o, om_weakref_chain *due);
/* What is wrong with obj's weak reference list (om_check), or NULL. */
const char *om_weakref_check_list(const om_object *obj);
/* Clear ref, a weak reference found in a collection's garbage: its
 * callback never runs. */
void om_weakref_clear_garbage(om_object *ref);
/* Call the due callbacks in order and drop the chain's references; returns
 * how many refs that freed. */
size_t om_weakref_run_callbacks(om_weakref_chain *due);
/* A weak table's ref died: the callback weak tables give their refs. */
void om_weaktable_ref_died(om_object *ref, void *table);
/* The same, told without running user code (the table purges later). */
void om_weaktable_note_dead(void *table);
/* At om_runtime_free: run the atexit finalizers, drop the others. */
void om_finalize_shutdown(om_runtime *rt);

/* Hash and equality as dict keys use them: the type's hash/eq, identity
 * without them (dict.c). */
uint64_t om_object_hash(const om_object *o);
bool om_objects_equal(const om_object *a, const om_object *b);
/* The key of dict's entry with this hash whose key passes test(key, ctx)
 * (borrowed), or NULL: lookups by something other than the stored key. */
typedef bool (*om_dict_key_test)(const om_object *key, const void *ctx);
om_object *om_dict_find_key(om_object *dict, uint64_t hash,
                            om_dict_key_test test, const void *ctx);

/* ---- the runtime ------------------------------------------------------------ */
struct om_runtime {
    om_config config;            /* config.raw always set (libc by default) */
    om_pool_state pools;
    om_gc_state gc;
    om_large *large[OM_KINDS];   /* every large block per kind, newest first */
    struct om_debugmem *debugmem; /* malloc_debug serials, quarantine */
    size_t objects;              /* live objects (queued ones included) */
    /* Dealloc queue: objects whose refcount reached zero while another
     * deallocation was under way, linked through their header word. */
    om_object *dealloc_queue;
    bool deallocating;
    struct om_finalizer *finalizers; /* live om_finalize objects, newest first */
    /* Tracing (tracemalloc.c): `tracing` is what the allocation fast paths
     * test; the engine and symbolizer stay after a stop, until the runtime
     * is freed. */
    bool tracing;
    int trace_limit;              /* the latest start's frame limit */
    struct om_tracer *tracer;
    struct om_symbolizer *symbolizer;
    /* Failure injection: attempts left before the one that fails (0 =
     * off), and attempts counted while it was armed.  Nothing is written
     * on the hot path while it is off. */
    uint64_t fail_countdown;
    uint64_t alloc_attempts;
    om_status last_status;
    char last_error[256];
};

/* ---- tracing hooks (tracemalloc.c) ------------------------------------------------
 * Called on the slow paths only while rt->tracing.  om_trace_alloc records
 * the block just allocated; false (error recorded, nothing traced) when the
 * trace cannot be stored: the caller frees the block and fails.
 * om_trace_realloc_begin, before a realloc, gets what the new trace needs
 * (its traceback, room in the table) and takes p's trace out, since the
 * realloc may free p's block and with it its pool's traces (false:
 * nothing changed, fail); om_trace_realloc_end then puts the old trace
 * back on p when the realloc failed, or the new one on the block it
 * returned, without allocating. */
bool om_trace_alloc(om_runtime *rt, void *p, size_t n, const om_site *site);
void om_trace_free(om_runtime *rt, void *p);
typedef struct om_trace_undo {
    bool had;          /* p had a trace: this size and traceback */
    size_t size;
    uint32_t tb;
    size_t new_size;   /* the trace of the block the realloc returns */
    uint32_t new_tb;
} om_trace_undo;
bool om_trace_realloc_begin(om_runtime *rt, void *p, size_t n,
                            const om_site *site, om_trace_undo *undo);
void om_trace_realloc_end(om_runtime *rt, void *p, void *q,
                          const om_trace_undo *undo);
/* Free the tracer and symbolizer (om_runtime_free). */
void om_tracemalloc_release(om_runtime *rt);
/* Whether rt, which may be NULL, is tracing: the first test of the public
 * allocation functions, laid out for a runtime that is not. */
static inline bool om_tracing(const om_runtime *rt) {
    return OM_LIKELY(rt != NULL) && OM_UNLIKELY(rt->tracing);
}

/* ---- hot paths, inline -------------------------------------------------------- */

/* An allocation attempt: false when failure injection says it must fail
 * (the caller then reports OM_ERR_NOMEM). */
static inline bool om_alloc_attempt(om_runtime *rt) {
    if (OM_LIKELY(!rt->fail_countdown))
        return true;
    rt->alloc_attempts++;
    return --rt->fail_countdown != 0;
}

/* A block from p, which is on a used list and so not full: its free list
 * or its bump offset has one. */
static inline void *om_pool_take(om_pool *p) {
    void *block = p->freelist;
    if (block) {
        p->freelist = *(void **)block;
    } else {
        block = (char *)p + p->bump;
        p->bump += p->block_size;
    }
    p->used++;
    if (OM_UNLIKELY(om_pool_is_full(p)))
        om_pool_became_full(p);
    return block;
}

/* A block from p, which is on a used list, when taking it leaves the pool
 * not full (so no list changes), else NULL (the pool's last block): for
 * fast paths that must not call out. */
static inline void *om_pool_take_quick(om_pool *p) {
    void *block = p->freelist;
    if (block) {
        void *next = *(void **)block;
        if (!next && p->bump + p->block_size > OM_POOL_SIZE)
            return NULL;
        p->freelist = next;
    } else {
        if (p->bump + 2 * p->block_size > OM_POOL_SIZE)
            return NULL;
        block = (char *)p + p->bump;
        p->bump += p->block_size;
    }
    p->used++;
    return block;
}

/* A block of n (1..OM_SMALL_MAX) bytes of the given kind, or NULL. */
static inline void *om_pool_alloc(om_runtime *rt, int kind, size_t n) {
    size_t size_class = (n - 1) / OM_ALIGNMENT;
    om_pool *p = rt->pools.used[kind][size_class];
    return OM_LIKELY(p) ? om_pool_take(p)
                        : om_pool_alloc_slow(rt, kind, size_class);
}

/* Whether an emptied pool that is alone on its class's used list stays
 * there: yes if its arena has other pools in use (keeping it costs no
 * arena), or if churn has switched the empty-arena cache on (the arena
 * would be kept anyway); otherwise it goes, so that its arena can go back
 * to the OS. */
static inline bool om_pool_keep_alone(const om_pool *p) {
    /* The runtime's line is hot; the arena descriptor's may not be. */
    return p->rt->pools.cache_limit > 0 ||
           p->arena->free_count != OM_POOLS_PER_ARENA - 1;
}

static inline void om_pool_free(void *block) {
    om_pool *p = om_pool_of(block);
    bool was_full = om_pool_is_full(p);
    /* Word 0 becomes the free-list link (16-aligned, so OM_RW_OBJECT reads
     * as clear); word 1 is left alone so debug builds can still name the
     * type of a freed object. */
    *(void **)block = p->freelist;
    p->freelist = block;
    if (OM_UNLIKELY(--p->used == 0 || was_full)) {
        /* The common case of om_pool_free_slow, decided here. */
        if (!was_full && !p->prev && !p->next && om_pool_keep_alone(p))
            return;
        om_pool_free_slow(p, was_full);
    }
}

/* Whether p lies in one of rt's arenas: one load from the arena map. */
static inline bool om_pool_owns(const om_runtime *rt, const void *p) {
    uintptr_t i = (uintptr_t)p / OM_ARENA_SIZE;
    const uint64_t *map = rt->pools.arena_map;
    return map && !(i >> (OM_ADDRESS_BITS - OM_ARENA_SHIFT)) &&
           ((map[i >> 6] >> (i & 63)) & 1);
}

/* The runtime of a non-static object. */
static inline om_runtime *om_object_runtime(const om_object *o) {
    return (o->om_refword_ & OM_RW_LARGE) ? om_large_of(o)->rt
                                          : om_pool_of(o)->rt;
}

#endif /* OBJMEM_INTERNAL_H */
