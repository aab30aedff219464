/*
 * options.c — runtime configuration: defaults and OBJMEM_* environment
 * variables, both taken from OM_OPTION_TABLE (docs/environment.md).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const om_option_info om_options[] = {
#define OM_OPTION_INFO_(field, env, def, help) {#field, env, def, help},
    OM_OPTION_TABLE(OM_OPTION_INFO_)
#undef OM_OPTION_INFO_
};
const size_t om_option_count = sizeof om_options / sizeof om_options[0];

/* The integer value of environment variable `name`, or `fallback` when it is
 * unset or not a whole number. */
static long env_long(const char *name, long fallback) {
    const char *s = om_os_getenv(name);
    if (!s || !*s)
        return fallback;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (errno || *end) ? fallback : v;
}

void om_config_init(om_config *config) {
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    config->size = sizeof *config;
#define OM_OPTION_APPLY_(field, env, def, help) \
    config->field = (int)env_long(env, def);
    OM_OPTION_TABLE(OM_OPTION_APPLY_)
#undef OM_OPTION_APPLY_
    config->report_stream = NULL;
}
