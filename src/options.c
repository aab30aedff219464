/*
 * options.c — runtime configuration: defaults and OBJMEM_* environment
 * variables, both taken from OM_OPTION_TABLE (docs/environment.md).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const om_option_info om_options[] = {
#define OM_OPTION_INFO_(field, env, parse, def, other, help) \
    {#field, env, parse, def, other, help},
    OM_OPTION_TABLE(OM_OPTION_INFO_)
#undef OM_OPTION_INFO_
};
const size_t om_option_count = sizeof om_options / sizeof om_options[0];

bool om_parse_int(const char *text, int *out) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || !*text || *end || v < -2147483647L || v > 2147483647L)
        return false;
    *out = (int)v;
    return true;
}

bool om_parse_malloc(const char *text, int *out) {
    if (!strcmp(text, "default"))
        *out = 0;
    else if (!strcmp(text, "debug"))
        *out = 1;
    else
        return false;
    return true;
}

void om_config_init(om_config *config) {
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    config->size = sizeof *config;
    /* The default first, then the environment when it holds a valid value. */
#define OM_OPTION_APPLY_(field, env, parse, def, other, help) \
    parse(def, &config->field);                               \
    if (om_os_getenv(env))                                    \
        parse(om_os_getenv(env), &config->field);
    OM_OPTION_TABLE(OM_OPTION_APPLY_)
#undef OM_OPTION_APPLY_
}
