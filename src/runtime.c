/*
 * runtime.c — the om_runtime that owns everything: creation from a config,
 * shutdown with a leak report, version queries and the allocation-failure
 * hook used by tests (docs/design.md, "Runtime").
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int om_version(void) { return OM_VERSION_NUMBER; }

const char *om_version_string(void) { return OM_VERSION_STRING; }

om_runtime *om_runtime_new(const om_config *config) {
    om_config defaults;
    om_config_init(&defaults);
    if (config && (config->size == 0 || config->size > sizeof(om_config)))
        return NULL;
    om_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->config = defaults;
    /* A caller built against an older header passes a shorter config: the
     * fields it does not know keep their defaults. */
    if (config)
        memcpy(&rt->config, config, config->size);
    rt->config.size = sizeof(om_config);
    return rt;
}

size_t om_runtime_free(om_runtime *rt) {
    if (!rt)
        return 0;
    om_object_clear_immortals(rt);
    size_t leaked = om_object_report_leaks(rt, rt->config.leak_report != 0);
    om_pool_release_all(rt);
    om_large_release_all(rt);
    free(rt);
    return leaked;
}

void om_debug_fail_alloc(om_runtime *rt, uint64_t nth) {
    if (rt)
        rt->fail_at = nth ? rt->alloc_attempts + nth : 0;
}

uint64_t om_debug_alloc_count(const om_runtime *rt) {
    return rt ? rt->alloc_attempts : 0;
}
