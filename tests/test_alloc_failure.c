/*
 * test_alloc_failure.c — failure injection sweeps: fail the 1st, 2nd, 3rd…
 * allocation of a scenario that touches every allocating path (objects small
 * and large, raw blocks small and large, realloc in place / moving / across
 * the small-large line, container growth, arena creation), until the
 * scenario completes untouched.  At each step the failing call must report
 * OM_ERR_NOMEM with a message, nothing may crash, the invariants must hold,
 * and nothing may leak.
 */
#include "internal.h"
#include "harness.h"

typedef struct big {
    OM_OBJECT_HEAD
    char payload[2000];   /* beyond the small-object limit */
} big;
static const om_type big_type = {.name = "big", .size = sizeof(big)};

static int failures_seen;

/* True when the last call failed with a well-formed out-of-memory error. */
static int failed_cleanly(om_runtime *rt) {
    failures_seen++;
    return om_last_status(rt) == OM_ERR_NOMEM &&
           strstr(om_last_error(rt), "out of memory") != NULL;
}

#define STEP(cond)                            \
    do {                                      \
        if (!(cond)) {                        \
            CHECK(failed_cleanly(rt));        \
            return;                           \
        }                                     \
    } while (0)

/* Builds into root; stops at the first failure, leaving root consistent. */
static void scenario(om_runtime *rt, om_object *root) {
    om_object *o;
    STEP((o = om_str_new(rt, "first")));
    om_status st = om_list_append(root, o);
    om_decref(o);
    STEP(st == OM_OK);
    for (int i = 0; i < 12; i++) {               /* list growth */
        STEP((o = om_int_new(rt, i)));
        st = om_list_append(root, o);
        om_decref(o);
        STEP(st == OM_OK);
    }
    om_object *d;
    STEP((d = om_dict_new(rt)));
    st = om_list_append(root, d);
    om_decref(d);
    STEP(st == OM_OK);
    for (int i = 0; i < 10; i++) {               /* dict growth, str keys */
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        STEP((o = om_int_new(rt, i)));
        st = om_dict_set_str(d, key, o);
        om_decref(o);
        STEP(st == OM_OK);
        STEP(om_dict_len(d) == (size_t)i + 1);
    }
    /* A var-size object, used as key and value (items taken from root, not
     * root itself: that would be a cycle, which refcounting cannot free). */
    STEP((o = om_tuple_pack(rt, 2, om_list_get(root, 0), om_list_get(root, 1))));
    st = om_dict_set(d, o, o);
    om_decref(o);
    STEP(st == OM_OK);
    STEP((o = om_new(rt, &big_type)));           /* large object */
    st = om_list_insert(root, 0, o);
    om_decref(o);
    STEP(st == OM_OK);
    char *p;                                     /* raw blocks */
    STEP((p = om_malloc(rt, 40)));
    memcpy(p, "abc", 4);
    char *q = om_realloc(rt, p, 44);             /* same class: in place */
    if (!q)
        om_free(rt, p);
    STEP(q);
    p = om_realloc(rt, q, 300);                  /* moves to another class */
    if (!p)
        om_free(rt, q);
    STEP(p && !strcmp(p, "abc"));
    q = om_realloc(rt, p, 5000);                 /* small to large */
    if (!q)
        om_free(rt, p);
    STEP(q && !strcmp(q, "abc"));
    p = om_realloc(rt, q, 50000);                /* large to large */
    if (!p)
        om_free(rt, q);
    STEP(p && !strcmp(p, "abc"));
    q = om_realloc(rt, p, 10);                   /* large to small */
    if (!q)
        om_free(rt, p);
    STEP(q && !strcmp(q, "abc"));
    om_free(rt, q);
    STEP((p = om_calloc(rt, 10, 10)));
    om_free(rt, p);
}

static void sweep_every_allocation(void) {
    uint64_t n;
    failures_seen = 0;
    for (n = 1;; n++) {
        om_runtime *rt = om_runtime_new(NULL);
        om_object *root = om_list_new(rt);
        CHECK(root != NULL);
        uint64_t before = om_debug_alloc_count(rt);
        om_debug_fail_alloc(rt, n);
        scenario(rt, root);
        int fired = om_debug_alloc_count(rt) - before >= n;
        CHECK(om_check(rt) == OM_OK);
        om_decref(root);
        CHECK(om_object_count(rt) == 0);
        CHECK(om_runtime_free(rt) == 0);
        if (!fired)
            break;
    }
    printf("  swept %llu allocation points, %d failures reported\n",
           (unsigned long long)(n - 1), failures_seen);
    /* Every injected failure was seen by the scenario as an error. */
    CHECK(failures_seen == (int)(n - 1));
    CHECK(n > 40);
}

/* The arena address set grows when the ninth arena arrives; fail each of
 * that arena's system allocations in turn. */
static void arena_creation_failures(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *keep = om_list_new(rt);
    while (rt->pools.arena_count < 8) {
        om_object *o = om_new(rt, &big_type);   /* large: no arena */
        om_decref(o);
        void *p = om_malloc(rt, 512);
        om_object *s = om_str_from_bytes(rt, (const char *)"x", 1);
        om_list_append(keep, s);
        om_decref(s);
        om_free(rt, p);
        p = om_malloc(rt, 512);
        (void)p; /* kept: fills arenas; freed with the runtime */
    }
    for (uint64_t n = 1; n <= 4; n++) {
        om_debug_fail_alloc(rt, n);
        size_t arenas = rt->pools.arena_count;
        while (rt->pools.arena_count == arenas) {
            if (!om_malloc(rt, 512)) {
                CHECK(failed_cleanly(rt));
                CHECK(rt->pools.arena_count == arenas);
                break;
            }
        }
        CHECK(om_check(rt) == OM_OK);
    }
    om_debug_fail_alloc(rt, 0);
    om_decref(keep);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void calloc_overflow(void) {
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(om_calloc(rt, SIZE_MAX / 2, 3) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_OVERFLOW);
    CHECK(strstr(om_last_error(rt), "om_calloc") != NULL);
    CHECK(om_runtime_free(rt) == 0);
}

/* Out-of-memory messages name the function the caller called. */
static void messages_name_the_constructor(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *keep = om_int_new(rt, 0); /* the arena exists already */
    struct { const char *name; om_object *(*make)(om_runtime *); } cases[] = {
        {"om_list_new", om_list_new}, {"om_dict_new", om_dict_new},
    };
    for (size_t i = 0; i < 2; i++) {
        om_debug_fail_alloc(rt, 1);
        CHECK(cases[i].make(rt) == NULL);
        CHECK(strstr(om_last_error(rt), cases[i].name) != NULL);
    }
    om_debug_fail_alloc(rt, 1);
    CHECK(om_int_new(rt, 1) == NULL && strstr(om_last_error(rt), "om_int_new"));
    om_debug_fail_alloc(rt, 1);
    CHECK(om_str_new(rt, "x") == NULL && strstr(om_last_error(rt), "om_str_new"));
    om_debug_fail_alloc(rt, 1);
    CHECK(om_tuple_pack(rt, 1, keep) == NULL &&
          strstr(om_last_error(rt), "om_tuple_pack"));
    om_decref(keep);
    CHECK(om_runtime_free(rt) == 0);
}

TEST_MAIN(T(sweep_every_allocation), T(arena_creation_failures),
          T(calloc_overflow), T(messages_name_the_constructor))
