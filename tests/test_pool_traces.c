/*
 * test_pool_traces.c — where domain 0's traces live while a runtime
 * traces: pool blocks' traces beside their pools, everything else in the
 * engine's table (src/pooltrace.c).  Blocks that move between the two by
 * realloc, blocks allocated before tracing started, user traces on pool
 * addresses, clearing and stopping, the debug allocator, and allocation
 * failures at every step; om_check verifies the layout after each.
 */
#include "support.h"
#include "tracer.h"

#include <stdint.h>

static const om_type box_type = {.name = "box", .size = 48};

static om_runtime *new_runtime(bool debug) {
    om_config cfg;
    om_config_init(&cfg);
    cfg.malloc_debug = debug;
    return om_runtime_new(&cfg);
}

static size_t current(om_runtime *rt) {
    size_t cur;
    om_tracemalloc_get_traced_memory(rt, &cur, NULL);
    return cur;
}

/* The snapshot's one trace of this domain whose most recent frame is at
 * `line` of this file: its size, or 0 when there is none or more than
 * one. */
static size_t traced_at(om_runtime *rt, unsigned domain, unsigned line) {
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    CHECK(snap != NULL);
    if (!snap)
        return 0;
    size_t n, size = 0, found = 0;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (size_t i = 0; i < n; i++) {
        const om_frame *f = &traces[i].traceback->frames[0];
        if (traces[i].domain == domain && f->lineno == line &&
            strcmp(f->filename, __FILE__) == 0) {
            size = traces[i].size;
            found++;
        }
    }
    om_snapshot_free(snap);
    return found == 1 ? size : 0;
}

/* Blocks allocated before tracing started are untraced, in pools that get
 * their traces at the start (om_check counts them), including a class's
 * emptied pool that its used list keeps. */
static void test_blocks_from_before_the_start(void) {
    om_runtime *rt = new_runtime(false);
    void *old = om_malloc(rt, 40);
    om_object *obj = om_new(rt, &box_type);
    om_free(rt, om_malloc(rt, 200)); /* its pool stays, empty */
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    CHECK(om_check(rt) == OM_OK);
    CHECK(current(rt) == 0);
    CHECK(om_tracemalloc_get_object_traceback(obj) == NULL);
    void *fresh = om_malloc(rt, 200); /* from the kept pool */
    unsigned line = __LINE__ - 1;
    CHECK(current(rt) == 200);
    CHECK(traced_at(rt, 0, line) == 200);
    om_free(rt, old); /* untraced: nothing changes */
    om_decref(obj);
    CHECK(current(rt) == 200);
    om_free(rt, fresh);
    CHECK(current(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    om_tracemalloc_stop(rt);
    CHECK(om_check(rt) == OM_OK); /* no pool keeps traces */
    finish(rt);
}

/* A realloc moves a trace between pools of different classes, out of the
 * pools, into them, or keeps it in place; each keeps the new size and
 * line. */
static void test_realloc_moves(void) {
    for (int debug = 0; debug <= 1; debug++) {
        om_runtime *rt = new_runtime(debug);
        CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
        void *keep = om_malloc(rt, 24); /* the class's pool stays in use */
        void *p = om_malloc(rt, 24);
        static const size_t sizes[] = {30, 100, 5000, 9000, 64, 60, 512, 513, 1};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            unsigned line = __LINE__ + 1;
            p = om_realloc(rt, p, sizes[i]);
            CHECK(p != NULL);
            CHECK(current(rt) == 24 + sizes[i]);
            CHECK(traced_at(rt, 0, line) == sizes[i]);
            CHECK(om_check(rt) == OM_OK);
        }
        om_free(rt, p);
        om_free(rt, keep);
        CHECK(current(rt) == 0);
        finish(rt);
    }
}

/* A realloc that fails at any allocation leaves the block and its trace as
 * they were, wherever it was going. */
static void test_realloc_failures(void) {
    static const size_t from[] = {24, 24, 3000, 3000, 100};
    static const size_t to[] = {200, 4000, 40, 9000, 100};
    for (size_t k = 0; k < sizeof from / sizeof *from; k++) {
        for (uint64_t nth = 1;; nth++) {
            om_runtime *rt = new_runtime(false);
            CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
            unsigned line = __LINE__ + 1;
            void *p = om_malloc(rt, from[k]);
            om_debug_fail_alloc(rt, nth);
            void *q = om_realloc(rt, p, to[k]);
            om_debug_fail_alloc(rt, 0);
            bool failed = q == NULL;
            if (failed) {
                CHECK(om_last_status(rt) == OM_ERR_NOMEM);
                CHECK(current(rt) == from[k]);
                CHECK(traced_at(rt, 0, line) == from[k]);
                q = p;
            } else {
                CHECK(current(rt) == to[k]);
            }
            CHECK(om_check(rt) == OM_OK);
            om_free(rt, q);
            CHECK(current(rt) == 0);
            finish(rt);
            if (!failed)
                break;
        }
    }
}

/* User traces in domain 0 at a pool block's address replace its trace;
 * other addresses inside the block are traces of their own. */
static void test_tracking_pool_addresses(void) {
    om_runtime *rt = new_runtime(false);
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    char *p = om_malloc(rt, 64);
    unsigned line = __LINE__ + 1;
    CHECK(om_tracemalloc_track(rt, 0, (uintptr_t)p, 10) == OM_OK);
    CHECK(current(rt) == 10);
    CHECK(traced_at(rt, 0, line) == 10);
    CHECK(om_tracemalloc_track(rt, 0, (uintptr_t)(p + 16), 7) == OM_OK);
    CHECK(current(rt) == 17);
    CHECK(om_tracemalloc_track(rt, 0, (uintptr_t)p, (size_t)UINT32_MAX + 1) ==
          OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tracemalloc_track", "pools"));
    CHECK(current(rt) == 17);
    CHECK(om_tracemalloc_track(rt, 0, (uintptr_t)p, UINT32_MAX) == OM_OK);
    CHECK(current(rt) == (size_t)UINT32_MAX + 7);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_tracemalloc_untrack(rt, 0, (uintptr_t)p) == OM_OK);
    CHECK(current(rt) == 7);
    om_free(rt, p); /* no trace left at p: nothing changes */
    CHECK(current(rt) == 7);
    CHECK(om_tracemalloc_untrack(rt, 0, (uintptr_t)(p + 16)) == OM_OK);
    CHECK(current(rt) == 0);
    finish(rt);
}

/* Clearing forgets every trace but keeps the pools' traces ready; stopping
 * gives them back. */
static void test_clear_and_stop(void) {
    om_runtime *rt = new_runtime(false);
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    void *blocks[300];
    for (size_t i = 0; i < 300; i++)
        blocks[i] = om_malloc(rt, 1 + i * 3);
    size_t with_traces = om_tracemalloc_get_tracemalloc_memory(rt);
    om_tracemalloc_clear_traces(rt);
    CHECK(current(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    void *p = om_malloc(rt, 33);
    CHECK(current(rt) == 33);
    om_tracemalloc_stop(rt);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_tracemalloc_get_tracemalloc_memory(rt) < with_traces);
    for (size_t i = 0; i < 300; i++)
        om_free(rt, blocks[i]);
    om_free(rt, p);
    finish(rt);
}

/* Each allocation of the start, of a new pool's traces and of an object
 * in a new pool fails cleanly. */
static void test_allocation_failures(void) {
    for (uint64_t nth = 1;; nth++) {
        om_runtime *rt = new_runtime(false);
        void *before[3] = {om_malloc(rt, 16), om_malloc(rt, 300), NULL};
        om_object *obj = NULL;
        om_debug_fail_alloc(rt, nth);
        bool done = false;
        if (om_tracemalloc_start(rt, 2) != OM_OK) {
            CHECK(error_is(rt, OM_ERR_NOMEM, "om_tracemalloc_start", NULL));
            CHECK(!om_tracemalloc_is_tracing(rt));
        } else if (!(before[2] = om_malloc(rt, 100))) {
            CHECK(error_is(rt, OM_ERR_NOMEM, "om_malloc", NULL));
        } else if (!(obj = om_new(rt, &box_type))) {
            CHECK(error_is(rt, OM_ERR_NOMEM, "om_new", NULL));
        } else {
            done = true;
        }
        om_debug_fail_alloc(rt, 0);
        CHECK(om_check(rt) == OM_OK);
        CHECK(current(rt) == (before[2] ? 100 : 0) +
                                 (obj ? box_type.size : 0));
        for (size_t i = 0; i < 3; i++)
            om_free(rt, before[i]);
        om_decref(obj);
        CHECK(current(rt) == 0);
        finish(rt);
        if (done)
            break;
    }
}

TEST_MAIN(T(test_blocks_from_before_the_start), T(test_realloc_moves),
          T(test_realloc_failures), T(test_tracking_pool_addresses),
          T(test_clear_and_stop), T(test_allocation_failures))
