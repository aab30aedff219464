/*
 * test_options.c — the option table and docs/environment.md agree: every
 * option's environment variable and default is documented, and setting the
 * variable changes what om_config_init produces.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "internal.h"
#include "harness.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)n + 1);
    if (text && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

static void every_option_is_documented(void) {
    char *doc = read_file(OM_SOURCE_DIR "/docs/environment.md");
    CHECK(doc != NULL);
    if (!doc)
        return;
    CHECK(om_option_count > 0);
    for (size_t i = 0; i < om_option_count; i++) {
        /* The row reads: | `OBJMEM_X` | `default` | help | */
        char row[160];
        snprintf(row, sizeof row, "| `%s` | `%s` |", om_options[i].env,
                 om_options[i].default_text);
        if (!strstr(doc, row))
            fprintf(stderr, "  docs/environment.md lacks the row '%s'\n", row);
        CHECK(strstr(doc, row) != NULL);
    }
    free(doc);
}

static void environment_overrides_defaults(void) {
    om_config base;
    om_config_init(&base);
    for (size_t i = 0; i < om_option_count; i++) {
        int parsed;
        CHECK(om_options[i].parse(om_options[i].default_text, &parsed));
        CHECK(om_options[i].parse(om_options[i].other_text, &parsed));
        setenv(om_options[i].env, om_options[i].other_text, 1);
        om_config cfg;
        om_config_init(&cfg);
        CHECK(memcmp(&cfg, &base, sizeof cfg) != 0);
        /* An invalid value is ignored: the default stays. */
        setenv(om_options[i].env, "not a valid value", 1);
        om_config_init(&cfg);
        CHECK(memcmp(&cfg, &base, sizeof cfg) == 0);
        unsetenv(om_options[i].env);
    }
}

TEST_MAIN(T(every_option_is_documented), T(environment_overrides_defaults))
