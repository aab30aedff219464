/*
 * status.c — status codes and the per-runtime "last error" message
 * (docs/design.md, "Errors").
 */
#include "internal.h"

#include <stdio.h>

const char *om_status_message(int status) {
    switch (status) {
#define OM_STATUS_CASE_(name, value, text) \
    case value:                            \
        return text;
        OM_STATUS_TABLE(OM_STATUS_CASE_)
#undef OM_STATUS_CASE_
    default:
        return "unknown status";
    }
}

om_status om_error(om_runtime *rt, om_status status, const char *fmt, ...) {
    if (rt) {
        va_list ap;
        va_start(ap, fmt);
        rt->last_status = status;
        vsnprintf(rt->last_error, sizeof rt->last_error, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *om_last_error(const om_runtime *rt) {
    return rt ? rt->last_error : "om_last_error: runtime is NULL";
}

om_status om_last_status(const om_runtime *rt) {
    return rt ? rt->last_status : OM_ERR_ARG;
}

void om_clear_error(om_runtime *rt) {
    if (rt) {
        rt->last_status = OM_OK;
        rt->last_error[0] = '\0';
    }
}
