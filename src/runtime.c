/*
 * runtime.c — the om_runtime that owns everything: creation from a config,
 * shutdown with a leak report, version queries and the allocation-failure
 * hook used by tests (docs/design.md, "Runtime").
 */
#include "internal.h"

#include <string.h>

int om_version(void) { return OM_VERSION_NUMBER; }

const char *om_version_string(void) { return OM_VERSION_STRING; }

/* Whether all four functions of a raw allocator are set, or none. */
static bool raw_complete(const om_raw_allocator *raw, bool *none) {
    int set = !!raw->malloc + !!raw->calloc + !!raw->realloc + !!raw->free;
    *none = set == 0;
    return set == 0 || set == 4;
}

om_runtime *om_runtime_new(const om_config *config) {
    if (config && (config->size == 0 || config->size > sizeof(om_config)))
        return NULL;
    /* A caller built against an older header passes a shorter config: the
     * fields it does not know keep their defaults. */
    om_config c;
    om_config_init(&c);
    if (config)
        memcpy(&c, config, config->size);
    c.size = sizeof(om_config);
    bool none;
    if (!raw_complete(&c.raw, &none))
        return NULL;
    if (none)
        c.raw = om_libc_allocator;
    om_runtime *rt = c.raw.calloc(c.raw.ctx, 1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->config = c;
    rt->trace_limit = 1;
    om_gc_init(rt);
    return rt;
}

size_t om_runtime_free(om_runtime *rt) {
    if (!rt)
        return 0;
    om_tracemalloc_release(rt);
    om_finalize_shutdown(rt);
    om_object_clear_immortals(rt);
    /* Cycles are not leaks: collect them before counting what is left.
     * gc.garbage goes first; what it held and cannot be collected (legacy
     * finalizers) is reported as leaked. */
    om_object *garbage = rt->gc.garbage;
    rt->gc.garbage = NULL;
    om_decref(garbage);
    /* As CPython's shutdown collection: no debug output, no callbacks. */
    rt->gc.debug = 0;
    rt->gc.ncallbacks = 0;
    om_gc_collect(rt, 2);
    om_decref(rt->gc.garbage);
    rt->gc.garbage = NULL;
    size_t leaked = om_object_report_leaks(rt, rt->config.leak_report != 0);
    om_debugmem_release(rt);
    om_gc_release(rt);
    om_pool_release_all(rt);
    om_large_release_all(rt);
    om_raw_free(rt, rt);
    return leaked;
}

void om_debug_fail_alloc(om_runtime *rt, uint64_t nth) {
    if (rt)
        rt->fail_countdown = nth;
}

uint64_t om_debug_alloc_count(const om_runtime *rt) {
    return rt ? rt->alloc_attempts : 0;
}
