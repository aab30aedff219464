/*
 * tracer.h — the tracing engine: traces (address -> size, traceback) per
 * domain, and interned tracebacks (docs/design.md, "Tracer").  One engine
 * serves a runtime's om_tracemalloc_* functions (tracemalloc.c) and the
 * whole-process tool; it knows nothing of objects or pools.  A user of the
 * engine may keep some traces outside its tables (a runtime keeps its pool
 * blocks' traces beside their pools, pooltrace.c): it interns their
 * tracebacks with om_tracer_traceback_id and counts their bytes with
 * om_tracer_adjust.
 *
 * Invariants:
 *   - Each domain's traces live in one open-addressing table with Robin
 *     Hood ordering: walking from an entry's home slot to the entry passes
 *     only occupied slots whose entries are at least as far from their own
 *     home.  Address 0 marks an empty slot, so address 0 is never traced.
 *   - A table has room for `limit` traces; a table reserved for one more
 *     trace (om_tracer_reserve) has count < limit.
 *   - An entry's 32-bit size is the block's size, or OM_TRACE_BIG_SIZE when
 *     the size does not fit; the real size is then in the domain's `big`
 *     list, which holds exactly those entries' addresses.
 *   - `current` is the sum of the sizes of all traces in all domains plus
 *     `outside`, the bytes of the traces kept outside the tables;
 *     `peak` >= `current`.
 *   - A traceback id is an index into `tracebacks` + 1; ids are never
 *     reused until om_tracer_clear, which forgets every trace first.
 *     Only frames[0] of a traceback can be a call site (flag `site0`);
 *     other frames are native return addresses.
 *   - `memory` is the sum of the sizes of every block the engine holds.
 *   - With `locked` set, every function below takes `lock` (the engine is
 *     then safe to share between threads); otherwise the caller guarantees
 *     one thread at a time.
 */
#ifndef OBJMEM_TRACER_H
#define OBJMEM_TRACER_H

#include "internal.h"

#include <pthread.h>

#define OM_TRACE_BIG_SIZE UINT32_MAX

typedef struct om_trace_entry {
    uintptr_t ptr;
    uint32_t size;
    uint32_t tb;
} om_trace_entry;

typedef struct om_trace_big {
    uintptr_t ptr;
    size_t size;
} om_trace_big;

typedef struct om_trace_table {
    unsigned domain;
    om_trace_entry *slots;
    size_t capacity;   /* 0, or at least OM_TRACE_MIN_CAPACITY */
    size_t count;
    size_t limit;      /* grow when count would pass it */
    om_trace_big *big;
    size_t nbig, big_capacity;
} om_trace_table;

/* A call site, interned. */
typedef struct om_trace_site {
    const char *file;
    const char *func;
    int line;
} om_trace_site;

typedef struct om_tb_record {
    uint64_t hash;
    uint16_t nframes;
    uint16_t total_nframe; /* capped at 65535 */
    bool site0;            /* frames[0] is an om_trace_site pointer */
    uintptr_t frames[];
} om_tb_record;

/* Entries of the call-site cache: the traceback of a one-frame trace from
 * a given return address and file (NULL for none). */
#define OM_SITE_CACHE_SIZE 512
typedef struct om_site_cache_entry {
    uintptr_t ret;
    const char *file;
    uint32_t tb;
} om_site_cache_entry;

typedef struct om_tb_chunk om_tb_chunk;

typedef struct om_tracer {
    om_runtime *rt;        /* allocations come from its raw allocator */
    bool locked;
    pthread_mutex_t lock;
    int nframe;            /* traceback limit */
    size_t current, peak;
    size_t outside;        /* bytes of traces kept outside the tables */
    size_t memory;
    om_trace_table main;   /* domain 0 */
    om_trace_table *domains; /* the others, in order of first use */
    size_t ndomains, domains_capacity;
    /* Tracebacks: records in chunks; ids index `tracebacks`; `tb_set`
     * holds ids by hash (0 = empty). */
    om_tb_chunk *tb_chunks;
    char *tb_next;
    size_t tb_left;
    om_tb_record **tracebacks;
    size_t ntracebacks, tracebacks_capacity;
    uint32_t *tb_set;
    size_t tb_set_capacity;
    /* Call sites, interned by (file, line, func) pointers and line. */
    om_trace_site **sites;
    size_t nsites, sites_capacity;
    om_site_cache_entry site_cache[OM_SITE_CACHE_SIZE];
} om_tracer;

/* A new engine (not tracing anything yet) with traceback limit nframe;
 * NULL when memory is short. */
om_tracer *om_tracer_new(om_runtime *rt, int nframe, bool locked);
void om_tracer_free(om_tracer *t);
/* Forget every trace and traceback; current and peak become 0. */
void om_tracer_clear(om_tracer *t);

/* Trace (or re-trace) the block at ptr; false when memory is short (then
 * nothing changed). */
bool om_tracer_add(om_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                   const om_site *site);
/* Forget the block's trace; false when it had none. */
bool om_tracer_remove(om_tracer *t, unsigned domain, uintptr_t ptr);
/* Forget the block's trace, telling its size and traceback id; false when
 * it had none. */
bool om_tracer_take(om_tracer *t, unsigned domain, uintptr_t ptr,
                    size_t *size, uint32_t *tb);
/* Make room for one more trace of this size in the domain's table, so that
 * the next om_tracer_put of a new address needs no memory; false when
 * memory is short. */
bool om_tracer_reserve(om_tracer *t, unsigned domain, size_t size);
/* The trace om_tracer_put replaced: whether there was one, and if so its
 * size and traceback id. */
typedef struct om_trace_was {
    bool found;
    size_t size;
    uint32_t tb;
} om_trace_was;
/* Trace ptr with a traceback id the engine gave out, replacing any trace
 * it has (told in *was, unless was is NULL).  Allocates only when ptr is
 * new and no room was reserved; false when memory is short (then nothing
 * changed, and *was is not set). */
bool om_tracer_put(om_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                   uint32_t tb, om_trace_was *was);
/* Start loading the slot where domain 0's table would keep ptr, so that
 * work done before the om_tracer_put or om_tracer_take of ptr (interning
 * its traceback, say) hides the cache miss. */
void om_tracer_prefetch(om_tracer *t, uintptr_t ptr);
/* The block's size and traceback id; false when it has no trace. */
bool om_tracer_find(om_tracer *t, unsigned domain, uintptr_t ptr,
                    size_t *size, uint32_t *tb);
/* Traceback record of an id from om_tracer_find or om_tracer_each. */
const om_tb_record *om_tracer_traceback(const om_tracer *t, uint32_t tb);

/* ---- traces kept outside the tables ----
 * The id of the interned traceback of an allocation at site (frames from
 * unwinding past site->ret when the limit is above 1); 0 when memory is
 * short. */
uint32_t om_tracer_traceback_id(om_tracer *t, const om_site *site);
/* A trace kept outside the tables changed from `removed` to `added` bytes
 * (either may be 0).  Unlocked: only for an engine used by one thread. */
static inline void om_tracer_adjust(om_tracer *t, size_t removed,
                                    size_t added) {
    t->outside = t->outside - removed + added;
    t->current = t->current - removed + added;
    if (t->current > t->peak)
        t->peak = t->current;
}
/* A block of n bytes counted in the engine's memory (for the tables kept
 * outside it), or NULL; om_tracer_release gives it back. */
void *om_tracer_alloc(om_tracer *t, size_t n);
void om_tracer_release(om_tracer *t, void *p, size_t n);

/* Call fn for every trace, domain 0 first; stops at the first non-zero
 * return and returns it.  fn must not change the engine. */
typedef int (*om_tracer_visit_fn)(unsigned domain, uintptr_t ptr, size_t size,
                                  uint32_t tb, void *arg);
int om_tracer_each(om_tracer *t, om_tracer_visit_fn fn, void *arg);

/* Walk every table and check the invariants above (the traces kept outside
 * are their keeper's to check); OM_OK or OM_ERR_STATE with a message naming
 * the broken one. */
om_status om_tracer_check(om_tracer *t);

#endif /* OBJMEM_TRACER_H */
