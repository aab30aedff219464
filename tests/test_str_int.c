/*
 * test_str_int.c — om_str and om_int: contents and sizes, embedded NULs and
 * empty strings, the full int64 range, argument errors, and allocation
 * failure.
 */
#include "objmem.h"
#include "harness.h"
#include "support.h"

#include <stdbool.h>

/* Whether s holds exactly data[0..len) followed by a NUL. */
static bool str_is(const om_object *s, const char *data, size_t len) {
    const char *got = om_str_data(s);
    return got && om_str_len(s) == len && memcmp(got, data, len) == 0 &&
           got[len] == '\0';
}

/* ---- str ----------------------------------------------------------------- */

static void str_basics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *s = om_str_new(rt, "hello");
    CHECK(s && om_type_of(s) == &om_str_type && om_refcount(s) == 1);
    CHECK(str_is(s, "hello", 5));
    CHECK(strcmp(om_str_data(s), "hello") == 0);
    /* The bytes are copied: the source may change afterwards. */
    char buf[] = "mutable";
    om_object *m = om_str_new(rt, buf);
    om_object *b = om_str_from_bytes(rt, buf, 3);
    buf[0] = 'X';
    CHECK(str_is(m, "mutable", 7) && str_is(b, "mut", 3));
    /* Equal contents make distinct objects: strings are not interned. */
    om_object *s2 = om_str_new(rt, "hello");
    CHECK(s2 != s && om_refcount(s) == 1 && om_refcount(s2) == 1);
    om_decref(s);
    om_decref(s2);
    om_decref(m);
    om_decref(b);
    finish(rt);
}

static void str_empty(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *a = om_str_new(rt, "");
    om_object *b = om_str_from_bytes(rt, NULL, 0);
    om_object *c = om_str_from_bytes(rt, "ignored", 0);
    CHECK(a && b && c);
    CHECK(str_is(a, "", 0) && str_is(b, "", 0) && str_is(c, "", 0));
    CHECK(om_sizeof(a) == om_sizeof(b) && om_sizeof(b) == om_sizeof(c));
    om_decref(a);
    om_decref(b);
    om_decref(c);
    finish(rt);
}

static void str_embedded_nul(void) {
    om_runtime *rt = om_runtime_new(NULL);
    static const char raw[] = {'a', '\0', 'b', '\0', '\0', 'c'};
    om_object *s = om_str_from_bytes(rt, raw, sizeof raw);
    CHECK(str_is(s, raw, sizeof raw));
    CHECK(strlen(om_str_data(s)) == 1); /* C sees only the first byte */
    om_object *nul = om_str_from_bytes(rt, "\0", 1);
    CHECK(str_is(nul, "\0", 1) && om_str_len(nul) == 1);
    /* Every byte value survives, in a string long enough to need a block
     * outside the pools. */
    char all[4 * 256];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (char)(unsigned char)(i * 7 + 3);
    om_object *big = om_str_from_bytes(rt, all, sizeof all);
    CHECK(str_is(big, all, sizeof all));
    om_decref(s);
    om_decref(nul);
    om_decref(big);
    finish(rt);
}

static void str_sizes(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *empty = om_str_new(rt, "");
    size_t base = om_sizeof(empty);
    CHECK(base > sizeof(om_object));
    static char text[70000];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = (char)('a' + i % 26);
    /* Every length around the pool limit, then some large ones. */
    for (size_t len = 0; len < 600; len++) {
        om_object *s = om_str_from_bytes(rt, text, len);
        CHECK(str_is(s, text, len));
        CHECK(om_sizeof(s) == base + len);
        om_decref(s);
    }
    for (size_t len = 4096; len <= sizeof text; len *= 4) {
        om_object *s = om_str_from_bytes(rt, text, len);
        CHECK(str_is(s, text, len) && om_sizeof(s) == base + len);
        om_decref(s);
    }
    om_decref(empty);
    finish(rt);
}

static void str_errors(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_clear_error(rt);
    CHECK(om_str_new(rt, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_str_new", "NULL"));
    om_clear_error(rt);
    CHECK(om_str_from_bytes(rt, NULL, 3) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_str_from_bytes", "NULL"));
    om_clear_error(rt);
    CHECK(om_str_from_bytes(rt, NULL, 1) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_str_from_bytes", "NULL"));
    /* An impossible length is refused before the bytes are read. */
    om_clear_error(rt);
    CHECK(om_str_from_bytes(rt, "x", SIZE_MAX) == NULL);
    CHECK(error_is(rt, OM_ERR_OVERFLOW, "om_str_from_bytes", NULL));
    CHECK(om_str_new(NULL, "x") == NULL);
    CHECK(om_str_new(NULL, NULL) == NULL);
    CHECK(om_str_from_bytes(NULL, "x", 1) == NULL);
    CHECK(om_object_count(rt) == 0);

    om_object *i = om_int_new(rt, 3);
    om_clear_error(rt);
    CHECK(om_str_data(i) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_str_data", "'int'"));
    CHECK(strstr(om_last_error(rt), "'str'") != NULL);
    om_clear_error(rt);
    CHECK(om_str_len(i) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_str_len", "'int'"));
    CHECK(om_str_data(NULL) == NULL && om_str_len(NULL) == 0);

    /* Reading a valid string records nothing. */
    om_object *s = om_str_new(rt, "");
    om_clear_error(rt);
    CHECK(om_str_len(s) == 0 && om_str_data(s) != NULL);
    CHECK(om_last_status(rt) == OM_OK && om_last_error(rt)[0] == '\0');
    om_decref(s);
    om_decref(i);
    finish(rt);
}

static void str_immortal(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *s = om_str_new(rt, "kept");
    om_make_immortal(s);
    om_incref(s);
    om_decref(s);
    om_decref(s);
    CHECK(om_refcount(s) == OM_REFCOUNT_IMMORTAL && str_is(s, "kept", 4));
    CHECK(om_object_count(rt) == 1);
    CHECK(om_check(rt) == OM_OK);
    /* Immortal objects are not leaks. */
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- int ----------------------------------------------------------------- */

static void int_round_trip(void) {
    om_runtime *rt = om_runtime_new(NULL);
    const int64_t values[] = {0,          1,           -1,
                              INT64_MAX,  INT64_MIN,   INT64_MAX - 1,
                              INT64_MIN + 1, INT32_MAX, (int64_t)INT32_MIN - 1,
                              (int64_t)1 << 62};
    om_object *first = NULL;
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        om_object *o = om_int_new(rt, values[i]);
        CHECK(o && om_type_of(o) == &om_int_type && om_refcount(o) == 1);
        om_clear_error(rt);
        CHECK(om_int_value(o) == values[i]);
        /* 0 is a value, not an error. */
        CHECK(om_last_status(rt) == OM_OK);
        /* Every int has the same size, whatever its value. */
        if (!first) {
            first = o;
        } else {
            CHECK(om_sizeof(o) == om_sizeof(first));
            om_decref(o);
        }
    }
    CHECK(om_sizeof(first) >= sizeof(om_object) + sizeof(int64_t));
    om_decref(first);
    for (int i = 0; i < 1000; i++) {
        int64_t v = (int64_t)th_random();
        om_object *o = om_int_new(rt, v);
        CHECK(om_int_value(o) == v);
        om_decref(o);
    }
    finish(rt);
}

static void int_errors(void) {
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(om_int_new(NULL, 5) == NULL);
    om_object *s = om_str_new(rt, "12");
    om_clear_error(rt);
    CHECK(om_int_value(s) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_int_value", "'str'"));
    CHECK(strstr(om_last_error(rt), "'int'") != NULL);
    CHECK(om_int_value(NULL) == 0);
    om_decref(s);
    finish(rt);
}

/* ---- allocation failure -------------------------------------------------- */

static void alloc_failure(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *keep = om_int_new(rt, 1);
    static char big[5000];
    memset(big, 'z', sizeof big);
    /* Each constructor, pooled and large, fails cleanly when the very next
     * allocation does, and works again right after. */
    for (int kind = 0; kind < 5; kind++) {
        om_clear_error(rt);
        om_debug_fail_alloc(rt, 1);
        om_object *o = kind == 0   ? om_int_new(rt, 7)
                       : kind == 1 ? om_str_new(rt, "small")
                       : kind == 2 ? om_str_from_bytes(rt, big, sizeof big)
                       : kind == 3 ? om_str_new(rt, "")
                                   : om_str_from_bytes(rt, big, 100);
        CHECK(o == NULL);
        CHECK(error_is(rt, OM_ERR_NOMEM, NULL, NULL));
        CHECK(om_object_count(rt) == 1);
        CHECK(om_check(rt) == OM_OK);
        o = kind == 0 ? om_int_new(rt, 7) : om_str_from_bytes(rt, big, 10);
        CHECK(o != NULL);
        om_decref(o);
    }
    /* Failure injection aims at the nth attempt, not only the next one. */
    uint64_t start = om_debug_alloc_count(rt);
    om_debug_fail_alloc(rt, 3);
    om_object *a = om_int_new(rt, 1), *b = om_str_new(rt, "b");
    om_object *c = om_int_new(rt, 3), *d = om_str_new(rt, "d");
    CHECK(a && b && !c && d);
    /* Counted while armed: up to and including the failed third one. */
    CHECK(om_debug_alloc_count(rt) - start == 3);
    om_decref(a);
    om_decref(b);
    om_decref(d);
    om_decref(keep);
    finish(rt);
}

TEST_MAIN(T(str_basics), T(str_empty), T(str_embedded_nul), T(str_sizes),
          T(str_errors), T(str_immortal), T(int_round_trip), T(int_errors),
          T(alloc_failure))
