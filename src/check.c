/*
 * check.c — failure reports for internal assertions and caller misuse,
 * and om_check, which runs every module's invariant walker
 * (docs/design.md, "Checks").
 */
#include "internal.h"
#include "pooltrace.h"

#include <stdio.h>
#include <stdlib.h>

void om_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "objmem: internal error: assertion '%s' failed at %s:%d\n",
            expr, file, line);
    abort();
}

void om_misuse(const char *func, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "objmem: %s: ", func);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

int om_debug_level(void) { return OBJMEM_DEBUG; }

om_status om_check(om_runtime *rt) {
    if (!rt)
        return OM_ERR_ARG;
    om_status st = om_pool_check(rt);
    if (st == OM_OK)
        st = om_object_check(rt);
    if (st == OM_OK && rt->tracer)
        st = om_tracer_check(rt->tracer);
    if (st == OM_OK)
        st = om_pooltrace_check(rt);
    return st;
}
