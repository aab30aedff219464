/*
 * test_raw.c — the pluggable raw allocator: the runtime itself, its
 * bookkeeping and every block above 512 bytes come from it and go back to
 * it; a half-set allocator is refused; a failing one is an ordinary
 * out-of-memory error.
 */
#include "objmem.h"
#include "harness.h"

#include <stdbool.h>

typedef struct counting {
    long live;            /* blocks handed out and not freed */
    long calls;
    size_t bytes_asked;
    bool fail;            /* refuse every request */
} counting;

static void *c_malloc(void *ctx, size_t n) {
    counting *c = ctx;
    c->calls++;
    c->bytes_asked += n;
    void *p = c->fail ? NULL : malloc(n);
    c->live += p != NULL;
    return p;
}
static void *c_calloc(void *ctx, size_t k, size_t n) {
    counting *c = ctx;
    c->calls++;
    void *p = c->fail ? NULL : calloc(k, n);
    c->live += p != NULL;
    return p;
}
static void *c_realloc(void *ctx, void *p, size_t n) {
    counting *c = ctx;
    c->calls++;
    c->bytes_asked += n;
    if (c->fail)
        return NULL;
    void *q = realloc(p, n);
    c->live += p == NULL && q != NULL;
    return q;
}
static void c_free(void *ctx, void *p) {
    counting *c = ctx;
    if (p)
        c->live--;
    free(p);
}

static om_config config_with(counting *c) {
    om_config cfg;
    om_config_init(&cfg);
    cfg.raw = (om_raw_allocator){c, c_malloc, c_calloc, c_realloc, c_free};
    return cfg;
}

static void everything_goes_through_it(void) {
    counting c = {0};
    om_config cfg = config_with(&c);
    om_runtime *rt = om_runtime_new(&cfg);
    CHECK(rt != NULL && c.live == 1);           /* the runtime itself */
    void *big = om_malloc(rt, 100000);
    CHECK(big != NULL && c.bytes_asked >= 100000);
    long before = c.calls;
    big = om_realloc(rt, big, 200000);          /* large to large */
    CHECK(big != NULL && c.calls == before + 1);
    om_object *t = om_new_var(rt, &om_tuple_type, 8000); /* large object */
    CHECK(t != NULL);
    void *small = om_malloc(rt, 64);            /* pools: not the raw one */
    CHECK(small != NULL);
    CHECK(c.live >= 4);                         /* + arena descriptor */
    om_free(rt, big);
    om_free(rt, small);
    om_decref(t);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
    CHECK(c.live == 0);
}

static void half_set_allocator_is_refused(void) {
    counting c = {0};
    om_config cfg = config_with(&c);
    cfg.raw.realloc = NULL;
    CHECK(om_runtime_new(&cfg) == NULL);
    CHECK(c.calls == 0);
}

static void failing_allocator_is_out_of_memory(void) {
    counting c = {0};
    om_config cfg = config_with(&c);
    c.fail = true;
    CHECK(om_runtime_new(&cfg) == NULL);        /* not even the runtime */
    c.fail = false;
    om_runtime *rt = om_runtime_new(&cfg);
    void *big = om_malloc(rt, 5000);
    c.fail = true;
    CHECK(om_malloc(rt, 5000) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_NOMEM);
    CHECK(strstr(om_last_error(rt), "om_malloc") != NULL);
    CHECK(om_realloc(rt, big, 9000) == NULL);   /* big is untouched */
    CHECK(om_new_var(rt, &om_tuple_type, 8000) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_NOMEM);
    /* A new arena needs a descriptor from the raw allocator. */
    CHECK(om_malloc(rt, 32) == NULL);
    c.fail = false;
    CHECK(om_malloc_usable_size(rt, big) == 5000);
    om_free(rt, big);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
    CHECK(c.live == 0);
}

TEST_MAIN(T(everything_goes_through_it), T(half_set_allocator_is_refused),
          T(failing_allocator_is_out_of_memory))
