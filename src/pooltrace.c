/*
 * pooltrace.c — while a runtime traces, the traces of its pool blocks: an
 * array of one om_block_trace per block beside each pool
 * (docs/design.md, "Tracer").  A block's entry is found from its address
 * by arithmetic, so tracing a pool block costs 8 bytes and no hashing;
 * large blocks, debug-allocator blocks and tracked memory stay in the
 * engine's tables.
 *
 * Invariants, while rt->tracing:
 *   - Every pool from pool_new to pool_retire (in use, or kept empty on its
 *     class's used list) has its array, so a trace can be stored in any
 *     block handed out without allocating; retired and never-carved pools
 *     have none.  Without tracing, no pool has one.
 *   - An entry's tb is 0 (no trace) or an id of rt->tracer; the sizes of the
 *     entries with a tb add up to the engine's `outside`.
 */
#include "pooltrace.h"

#include <string.h>

#define R(d) ((((uint64_t)1 << 32) + (d) - 1) / (d))
#define R4(d) R(d), R(d + 1), R(d + 2), R(d + 3)
const uint64_t om_pooltrace_reciprocal[OM_SIZE_CLASSES] = {
    R4(1), R4(5), R4(9), R4(13), R4(17), R4(21), R4(25), R4(29),
};
#undef R4
#undef R
_Static_assert(OM_SIZE_CLASSES == 32, "one reciprocal per size class");

static size_t array_bytes(size_t size_class) {
    return om_pool_capacity((size_class + 1) * OM_ALIGNMENT) *
           sizeof(om_block_trace);
}

om_block_trace *om_pooltrace_new(om_runtime *rt, size_t size_class) {
    size_t n = array_bytes(size_class);
    om_block_trace *traces = om_tracer_alloc(rt->tracer, n);
    if (traces)
        memset(traces, 0, n);
    return traces;
}

void om_pooltrace_release(om_runtime *rt, om_block_trace *traces,
                          size_t size_class) {
    om_tracer_release(rt->tracer, traces, array_bytes(size_class));
}

/* Call fn on every pool that has its array. */
static void each_traced_pool(om_runtime *rt, void (*fn)(om_runtime *, om_pool *)) {
    for (om_arena *a = rt->pools.arenas; a; a = a->next)
        for (size_t i = 0; i < a->carved; i++)
            if (om_pool_at(a, i)->traces)
                fn(rt, om_pool_at(a, i));
}

static void detach(om_runtime *rt, om_pool *p) {
    om_pooltrace_release(rt, p->traces, p->size_class);
    p->traces = NULL;
}

static bool attach(om_runtime *rt, om_pool *p) {
    if (p->traces)
        return true;
    p->traces = om_pooltrace_new(rt, p->size_class);
    return p->traces != NULL;
}

om_status om_pooltrace_start(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    bool ok = true;
    for (om_arena *a = st->arenas; ok && a; a = a->next)
        for (size_t i = 0; ok && i < a->carved; i++)
            if (om_pool_at(a, i)->used > 0)
                ok = attach(rt, om_pool_at(a, i));
    /* Emptied pools that their class keeps are in use too. */
    for (int k = 0; ok && k < OM_KINDS; k++)
        for (size_t c = 0; ok && c < OM_SIZE_CLASSES; c++)
            for (om_pool *p = st->used[k][c]; ok && p; p = p->next)
                ok = attach(rt, p);
    if (ok)
        return OM_OK;
    each_traced_pool(rt, detach);
    return OM_ERR_NOMEM;
}

void om_pooltrace_stop(om_runtime *rt) { each_traced_pool(rt, detach); }

static void forget(om_runtime *rt, om_pool *p) {
    (void)rt;
    memset(p->traces, 0, array_bytes(p->size_class));
}

void om_pooltrace_clear(om_runtime *rt) { each_traced_pool(rt, forget); }

int om_pooltrace_each(om_runtime *rt, om_tracer_visit_fn fn, void *arg) {
    for (om_arena *a = rt->pools.arenas; a; a = a->next) {
        for (size_t i = 0; i < a->carved; i++) {
            om_pool *p = om_pool_at(a, i);
            size_t blocks = p->traces ? om_pool_capacity(p->block_size) : 0;
            for (size_t b = 0; b < blocks; b++) {
                const om_block_trace *e = &p->traces[b];
                uintptr_t ptr = (uintptr_t)p + OM_POOL_HEADER_SIZE +
                                b * p->block_size;
                int r = e->tb ? fn(0, ptr, e->size, e->tb, arg) : 0;
                if (r)
                    return r;
            }
        }
    }
    return 0;
}

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond))                                                        \
            return om_error(rt, OM_ERR_STATE, "om_check: pool traces: "     \
                            __VA_ARGS__);                                   \
    } while (0)

om_status om_pooltrace_check(om_runtime *rt) {
    om_pool_state *st = &rt->pools;
    size_t arrays = 0, in_use = 0, total = 0;
    size_t ntb = rt->tracer ? rt->tracer->ntracebacks : 0;
    for (om_arena *a = st->arenas; a; a = a->next) {
        for (size_t i = 0; i < a->carved; i++) {
            const om_pool *p = om_pool_at(a, i);
            in_use += p->used > 0;
            if (!p->traces)
                continue;
            arrays++;
            CHECK(rt->tracing, "pool %p has traces while not tracing",
                  (const void *)p);
            size_t blocks = om_pool_capacity(p->block_size);
            for (size_t b = 0; b < blocks; b++) {
                const om_block_trace *e = &p->traces[b];
                CHECK(e->tb <= ntb &&
                          (!e->tb || OM_POOL_HEADER_SIZE +
                                             b * p->block_size <
                                         p->bump),
                      "pool %p block %zu has traceback id %u of %zu",
                      (const void *)p, b, (unsigned)e->tb, ntb);
                total += e->tb ? e->size : 0;
            }
        }
    }
    for (int k = 0; k < OM_KINDS; k++)
        for (size_t c = 0; c < OM_SIZE_CLASSES; c++)
            for (om_pool *p = st->used[k][c]; p; p = p->next)
                in_use += p->used == 0;
    CHECK(!rt->tracing || arrays == in_use,
          "%zu pools in use, %zu with traces", in_use, arrays);
    size_t outside = rt->tracer ? rt->tracer->outside : 0;
    CHECK(total == outside, "pool blocks' traces hold %zu bytes, the "
          "engine counts %zu", total, outside);
    return OM_OK;
}
