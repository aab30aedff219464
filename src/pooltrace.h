/*
 * pooltrace.h — while a runtime traces, its pool blocks' traces, kept
 * beside their pools rather than in the engine's tables (pooltrace.c).
 */
#ifndef OBJMEM_POOLTRACE_H
#define OBJMEM_POOLTRACE_H

#include "internal.h"
#include "tracer.h"

/* ceil(2^32 / d) for d = 1..OM_SIZE_CLASSES: (q * r[d-1]) >> 32 is q / d
 * for every q below 2^27, so a block's index needs no division. */
extern const uint64_t om_pooltrace_reciprocal[OM_SIZE_CLASSES];

/* The trace entry of the pool block that starts at ptr, or NULL when ptr is
 * not the start of a block below the bump offset of one of rt's pools
 * (those have their entries only while rt traces). */
static inline om_block_trace *om_pooltrace_slot(const om_runtime *rt,
                                                uintptr_t ptr) {
    if (!om_pool_owns(rt, (const void *)ptr))
        return NULL;
    om_pool *p = om_pool_of((const void *)ptr);
    if (!p->traces)
        return NULL; /* a retired pool, or one never carved */
    /* Below the first block, off wraps around and fails the bound. */
    uint32_t off = (uint32_t)(ptr - (uintptr_t)p - OM_POOL_HEADER_SIZE);
    if (off >= p->bump - OM_POOL_HEADER_SIZE || (off & (OM_ALIGNMENT - 1)))
        return NULL;
    uint32_t index = (uint32_t)(((uint64_t)(off / OM_ALIGNMENT) *
                                 om_pooltrace_reciprocal[p->size_class]) >>
                                32);
    if (index * p->block_size != off)
        return NULL;
    return &p->traces[index];
}

/* Give every pool in use its array of traces (om_tracemalloc_start);
 * OM_ERR_NOMEM, with no pool changed, when memory is short. */
om_status om_pooltrace_start(om_runtime *rt);
/* Free every pool's array (tracing stops). */
void om_pooltrace_stop(om_runtime *rt);
/* Forget every pool block's trace (om_tracemalloc_clear_traces). */
void om_pooltrace_clear(om_runtime *rt);
/* Call fn for every pool block's trace (domain 0); stops at the first
 * non-zero return and returns it. */
int om_pooltrace_each(om_runtime *rt, om_tracer_visit_fn fn, void *arg);
/* Check the invariants of pooltrace.c; OM_OK or OM_ERR_STATE. */
om_status om_pooltrace_check(om_runtime *rt);

#endif /* OBJMEM_POOLTRACE_H */
