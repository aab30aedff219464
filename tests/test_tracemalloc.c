/*
 * test_tracemalloc.c — the om_tracemalloc_* functions: starting and
 * stopping, traced memory and peak, call-site and native frames, object
 * tracebacks, realloc, user domains, the engine's invariants under random
 * churn, and allocation failures at every step.
 */
#include "support.h"
#include "tracer.h"

#include <stdint.h>

static om_runtime *new_runtime(void) { return om_runtime_new(NULL); }

/* The trace of the snapshot whose most recent frame is at `line` of this
 * file; NULL when there is none or more than one. */
static const om_trace *trace_at_line(const om_snapshot *snap, unsigned line) {
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    const om_trace *found = NULL;
    for (size_t i = 0; i < n; i++) {
        const om_traceback *tb = traces[i].traceback;
        if (tb->nframes && tb->frames[0].lineno == line &&
            strcmp(tb->frames[0].filename, __FILE__) == 0) {
            if (found)
                return NULL;
            found = &traces[i];
        }
    }
    return found;
}

static size_t snapshot_bytes(const om_snapshot *snap, unsigned domain) {
    size_t n, total = 0;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (size_t i = 0; i < n; i++)
        if (traces[i].domain == domain)
            total += traces[i].size;
    return total;
}

static void traced(om_runtime *rt, size_t *current, size_t *peak) {
    om_tracemalloc_get_traced_memory(rt, current, peak);
}

static void test_start_stop_and_limit(void) {
    om_runtime *rt = new_runtime();
    CHECK(!om_tracemalloc_is_tracing(rt));
    CHECK(om_tracemalloc_get_traceback_limit(rt) == 1);
    CHECK(om_tracemalloc_get_tracemalloc_memory(rt) == 0);
    CHECK(om_tracemalloc_start(rt, 0) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tracemalloc_start", "[1; 100]"));
    CHECK(om_tracemalloc_start(rt, OM_TRACEMALLOC_MAX_FRAMES + 1) ==
          OM_ERR_ARG);
    CHECK(!om_tracemalloc_is_tracing(rt));
    CHECK(om_tracemalloc_start(rt, 5) == OM_OK);
    CHECK(om_tracemalloc_is_tracing(rt));
    CHECK(om_tracemalloc_get_traceback_limit(rt) == 5);
    /* Already tracing: nothing changes, not even the limit. */
    CHECK(om_tracemalloc_start(rt, 9) == OM_OK);
    CHECK(om_tracemalloc_get_traceback_limit(rt) == 5);
    CHECK(om_tracemalloc_get_tracemalloc_memory(rt) > 0);
    void *p = om_malloc(rt, 100);
    size_t cur, peak;
    traced(rt, &cur, &peak);
    CHECK(cur == 100 && peak == 100);
    om_tracemalloc_stop(rt);
    CHECK(!om_tracemalloc_is_tracing(rt));
    CHECK(om_tracemalloc_get_traceback_limit(rt) == 5);
    traced(rt, &cur, &peak);
    CHECK(cur == 0 && peak == 0);
    /* The tables stay (tracemalloc's memory is not 0 after stop). */
    CHECK(om_tracemalloc_get_tracemalloc_memory(rt) > 0);
    CHECK(om_tracemalloc_take_snapshot(rt) == NULL);
    CHECK(error_is(rt, OM_ERR_STATE, "om_tracemalloc_take_snapshot",
                   "tracing"));
    /* A block traced before the stop is freed untraced. */
    om_free(rt, p);
    /* Stop twice, clear and reset while stopped: no-ops. */
    om_tracemalloc_stop(rt);
    om_tracemalloc_clear_traces(rt);
    om_tracemalloc_reset_peak(rt);
    traced(rt, &cur, NULL);
    CHECK(cur == 0);
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    CHECK(om_tracemalloc_get_traceback_limit(rt) == 1);
    finish(rt);
}

static void test_current_peak_clear_reset(void) {
    om_runtime *rt = new_runtime();
    void *before = om_malloc(rt, 40); /* allocated untraced */
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    void *a = om_malloc(rt, 1000);
    void *b = om_calloc(rt, 10, 30);
    void *c = om_malloc(rt, 5000); /* a large block */
    size_t cur, peak;
    traced(rt, &cur, &peak);
    CHECK(cur == 1000 + 300 + 5000);
    CHECK(peak == cur);
    om_free(rt, c);
    om_free(rt, before); /* never traced: changes nothing */
    traced(rt, &cur, &peak);
    CHECK(cur == 1300 && peak == 6300);
    om_tracemalloc_reset_peak(rt);
    traced(rt, &cur, &peak);
    CHECK(cur == 1300 && peak == 1300);
    om_tracemalloc_clear_traces(rt);
    traced(rt, &cur, &peak);
    CHECK(cur == 0 && peak == 0);
    CHECK(om_tracemalloc_is_tracing(rt));
    /* Cleared traces are gone: freeing their blocks changes nothing. */
    om_free(rt, a);
    om_free(rt, b);
    traced(rt, &cur, &peak);
    CHECK(cur == 0);
    CHECK(om_check(rt) == OM_OK);
    finish(rt);
}

static const om_type box_type = {.name = "box", .size = 48};
static const om_type var_type = {.name = "var", .size = 32};

static void test_call_site_frames(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    unsigned l1 = __LINE__ + 1;
    void *p = om_malloc(rt, 123);
    unsigned l2 = __LINE__ + 1;
    om_object *o = om_new(rt, &box_type);
    unsigned l3 = __LINE__ + 1;
    om_object *v = om_new_var(rt, &var_type, 1000);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    CHECK(snap != NULL);
    CHECK(om_snapshot_traceback_limit(snap) == 1);
    const om_trace *t1 = trace_at_line(snap, l1);
    const om_trace *t2 = trace_at_line(snap, l2);
    const om_trace *t3 = trace_at_line(snap, l3);
    CHECK(t1 && t1->size == 123 && t1->domain == 0);
    CHECK(t2 && t2->size == 48);
    CHECK(t3 && t3->size == 1032);
    if (t1) {
        CHECK(t1->traceback->nframes == 1);
        CHECK(t1->traceback->total_nframe == 1);
        CHECK(strcmp(t1->traceback->frames[0].function,
                     "test_call_site_frames") == 0);
    }
    /* Equal tracebacks are one: a loop's allocations share it. */
    void *loop[3];
    for (int i = 0; i < 3; i++)
        loop[i] = om_malloc(rt, 16);
    om_snapshot *snap2 = om_tracemalloc_take_snapshot(rt);
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap2, &n);
    CHECK(n == 6);
    const om_traceback *shared = NULL;
    int same = 0;
    for (size_t i = 0; i < n; i++) {
        if (traces[i].size != 16)
            continue;
        if (!shared)
            shared = traces[i].traceback;
        same += traces[i].traceback == shared;
    }
    CHECK(same == 3);
    /* The snapshot outlives tracing. */
    om_tracemalloc_stop(rt);
    CHECK(t1 && strcmp(t1->traceback->frames[0].filename, __FILE__) == 0);
    om_snapshot_free(snap);
    om_snapshot_free(snap2);
    for (int i = 0; i < 3; i++)
        om_free(rt, loop[i]);
    om_free(rt, p);
    om_decref(o);
    om_decref(v);
    finish(rt);
}

/* The call sites of these are found from return addresses (no macro). */
static void test_return_address_frames(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    unsigned l1 = __LINE__ + 1;
    om_object *i = om_int_new(rt, 7);
    unsigned l2 = __LINE__ + 1;
    void *p = (om_malloc)(rt, 64);
    unsigned l3 = __LINE__ + 1;
    om_object *list = om_list_new(rt);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    const om_trace *t1 = trace_at_line(snap, l1);
    const om_trace *t2 = trace_at_line(snap, l2);
    const om_trace *t3 = trace_at_line(snap, l3);
    CHECK(t1 && t2 && t3);
    if (t1)
        CHECK(strcmp(t1->traceback->frames[0].function,
                     "test_return_address_frames") == 0);
    CHECK(t2 && t2->size == 64);
    om_snapshot_free(snap);
    om_decref(i);
    om_decref(list);
    om_free(rt, p);
    finish(rt);
}

static void test_object_traceback(void) {
    om_runtime *rt = new_runtime();
    om_object *untraced = om_new(rt, &box_type);
    CHECK(om_tracemalloc_get_object_traceback(untraced) == NULL);
    CHECK(om_tracemalloc_start(rt, 3) == OM_OK);
    CHECK(om_tracemalloc_get_object_traceback(untraced) == NULL);
    CHECK(om_last_status(rt) == OM_OK);
    unsigned line = __LINE__ + 1;
    om_object *o = om_new(rt, &box_type);
    om_traceback *tb = om_tracemalloc_get_object_traceback(o);
    CHECK(tb != NULL);
    if (tb) {
        CHECK(tb->nframes >= 1 && tb->nframes <= 3);
        CHECK(tb->total_nframe >= tb->nframes);
        CHECK(tb->frames[0].lineno == line);
        CHECK(strcmp(tb->frames[0].filename, __FILE__) == 0);
        CHECK(strcmp(tb->frames[0].function, "test_object_traceback") == 0);
        /* The caller of this test is the harness's th_main, or main when
         * the compiler inlined th_main there. */
        if (tb->nframes >= 2)
            CHECK(strcmp(tb->frames[1].function, "th_main") == 0 ||
                  strcmp(tb->frames[1].function, "main") == 0);
    }
    om_traceback_free(tb);
    om_traceback_free(NULL);
    om_tracemalloc_stop(rt);
    CHECK(om_tracemalloc_get_object_traceback(o) == NULL);
    CHECK(om_tracemalloc_get_object_traceback(NULL) == NULL);
    om_decref(o);
    om_decref(untraced);
    finish(rt);
}

/* noinline, and using the result after the call, so that each level is a
 * real frame (no inlining, no tail call). */
#define NOINLINE __attribute__((noinline))
static unsigned deep_line;
static NOINLINE void *deep_alloc(om_runtime *rt, int depth) {
    if (depth == 0) {
        deep_line = __LINE__ + 1;
        void *p = om_malloc(rt, 77);
        __asm__ volatile("" ::: "memory");
        return p;
    }
    void *p = deep_alloc(rt, depth - 1);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void test_native_callers(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_start(rt, 8) == OM_OK);
    void *p = deep_alloc(rt, 10);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    const om_trace *t = trace_at_line(snap, deep_line);
    CHECK(t != NULL);
    if (t) {
        const om_traceback *tb = t->traceback;
        CHECK(tb->nframes == 8);
        /* 11 deep_alloc frames, this test, th_main, main and what is
         * below main. */
        CHECK(tb->total_nframe >= 14);
        /* gcc -O3 clones the function per constant depth, naming the
         * clones deep_alloc.constprop.N. */
        for (size_t i = 0; i < tb->nframes; i++)
            CHECK(strncmp(tb->frames[i].function, "deep_alloc", 10) == 0);
        /* Frames after the first are the recursive call's line. */
        CHECK(tb->frames[1].lineno > deep_line);
        CHECK(strcmp(tb->frames[1].filename, __FILE__) == 0);
    }
    om_snapshot_free(snap);
    om_free(rt, p);
    finish(rt);
}

static void test_realloc(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    void *p = om_malloc(rt, 100);
    unsigned line = __LINE__ + 1;
    p = om_realloc(rt, p, 3000); /* moves: small to large */
    size_t cur, peak;
    traced(rt, &cur, &peak);
    CHECK(cur == 3000 && peak == 3000);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    const om_trace *t = trace_at_line(snap, line);
    CHECK(t && t->size == 3000);
    om_snapshot_free(snap);
    /* A failed realloc leaves the trace as it was. */
    om_debug_fail_alloc(rt, 1);
    void *q = NULL;
    uint64_t tries = 0;
    do {
        om_debug_fail_alloc(rt, ++tries);
        q = om_realloc(rt, p, 9000);
        if (!q) {
            traced(rt, &cur, NULL);
            CHECK(cur == 3000);
            CHECK(om_check(rt) == OM_OK);
        }
    } while (!q && tries < 20);
    om_debug_fail_alloc(rt, 0);
    CHECK(q != NULL);
    traced(rt, &cur, NULL);
    CHECK(cur == 9000);
    /* realloc of NULL is a malloc; shrinking in place keeps the address. */
    void *r = om_realloc(rt, NULL, 40);
    void *r2 = om_realloc(rt, r, 36);
    CHECK(r2 == r);
    traced(rt, &cur, NULL);
    CHECK(cur == 9036);
    /* A block allocated before tracing gains a trace when reallocated. */
    om_tracemalloc_stop(rt);
    void *old = om_malloc(rt, 10);
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    old = om_realloc(rt, old, 20);
    traced(rt, &cur, NULL);
    CHECK(cur == 20);
    CHECK(om_check(rt) == OM_OK);
    om_free(rt, old);
    om_free(rt, q);
    om_free(rt, r2);
    finish(rt);
}

static void test_domains(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_track(rt, 1, 0x1000, 10) == OM_ERR_STATE);
    CHECK(error_is(rt, OM_ERR_STATE, "om_tracemalloc_track", "tracing"));
    CHECK(om_tracemalloc_untrack(rt, 1, 0x1000) == OM_ERR_STATE);
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    CHECK(om_tracemalloc_track(rt, 7, 0, 10) == OM_ERR_ARG);
    unsigned line = __LINE__ + 1;
    CHECK(om_tracemalloc_track(rt, 7, 0x1000, 10) == OM_OK);
    CHECK(om_tracemalloc_track(rt, 8, 0x1000, 20) == OM_OK);
    /* Sizes above 4 GiB are kept whole. */
    size_t huge = (size_t)5 << 30;
    CHECK(om_tracemalloc_track(rt, 8, 0x2000, huge) == OM_OK);
    size_t cur;
    traced(rt, &cur, NULL);
    CHECK(cur == 30 + huge);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    CHECK(snapshot_bytes(snap, 7) == 10);
    CHECK(snapshot_bytes(snap, 8) == 20 + huge);
    const om_trace *t = trace_at_line(snap, line);
    CHECK(t && t->domain == 7);
    om_snapshot_free(snap);
    /* Re-tracking replaces size and traceback. */
    CHECK(om_tracemalloc_track(rt, 7, 0x1000, 15) == OM_OK);
    CHECK(om_tracemalloc_track(rt, 8, 0x2000, 1) == OM_OK);
    traced(rt, &cur, NULL);
    CHECK(cur == 15 + 20 + 1);
    CHECK(om_tracemalloc_untrack(rt, 7, 0x1000) == OM_OK);
    CHECK(om_tracemalloc_untrack(rt, 7, 0x1000) == OM_OK); /* none: fine */
    CHECK(om_tracemalloc_untrack(rt, 99, 0x1000) == OM_OK);
    traced(rt, &cur, NULL);
    CHECK(cur == 21);
    /* Domain 0 is shared with the runtime's blocks, but an address in
     * another domain is another trace. */
    void *p = om_malloc(rt, 50);
    CHECK(om_tracemalloc_track(rt, 3, (uintptr_t)p, 5) == OM_OK);
    om_free(rt, p);
    traced(rt, &cur, NULL);
    CHECK(cur == 26);
    CHECK(om_check(rt) == OM_OK);
    finish(rt);
}

static void test_tracing_is_per_runtime(void) {
    om_runtime *a = new_runtime(), *b = new_runtime();
    CHECK(om_tracemalloc_start(a, 1) == OM_OK);
    void *pa = om_malloc(a, 30);
    void *pb = om_malloc(b, 30);
    size_t cur;
    traced(a, &cur, NULL);
    CHECK(cur == 30);
    traced(b, &cur, NULL);
    CHECK(cur == 0);
    CHECK(!om_tracemalloc_is_tracing(b));
    om_free(a, pa);
    om_free(b, pb);
    finish(a);
    finish(b);
}

/* Random allocations, reallocations, frees and big user traces against a
 * model of the live sizes; the engine's invariants are checked along. */
static void test_random_churn(void) {
    om_runtime *rt = new_runtime();
    CHECK(om_tracemalloc_start(rt, 1) == OM_OK);
    enum { SLOTS = 3000 };
    static void *blocks[SLOTS];
    static size_t sizes[SLOTS];
    size_t model = 0, peak_model = 0;
    memset(blocks, 0, sizeof blocks);
    for (int step = 0; step < 60000; step++) {
        size_t i = th_random() % SLOTS;
        size_t n = 1 + th_random() % (th_random() % 8 ? 200 : 20000);
        if (!blocks[i]) {
            blocks[i] = om_malloc(rt, n);
            sizes[i] = n;
            model += n;
        } else if (th_random() % 3 == 0) {
            blocks[i] = om_realloc(rt, blocks[i], n);
            model = model - sizes[i] + n;
            sizes[i] = n;
        } else {
            om_free(rt, blocks[i]);
            blocks[i] = NULL;
            model -= sizes[i];
        }
        if (model > peak_model)
            peak_model = model;
        if (step % 10000 == 0)
            CHECK(om_check(rt) == OM_OK);
    }
    size_t cur, peak;
    traced(rt, &cur, &peak);
    CHECK(cur == model);
    CHECK(peak == peak_model);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    size_t live = 0, n;
    for (size_t i = 0; i < SLOTS; i++)
        live += blocks[i] != NULL;
    om_snapshot_traces(snap, &n);
    CHECK(n == live);
    CHECK(snapshot_bytes(snap, 0) == model);
    om_snapshot_free(snap);
    CHECK(om_check(rt) == OM_OK);
    for (size_t i = 0; i < SLOTS; i++)
        om_free(rt, blocks[i]);
    traced(rt, &cur, NULL);
    CHECK(cur == 0);
    finish(rt);
}

/* Each allocation that can fail with tracing on fails cleanly: the
 * tracer's own tables, the trace of a block, a snapshot, the symbolizer, an
 * object's traceback. */
static void test_allocation_failures(void) {
    for (uint64_t nth = 1; nth < 400; nth++) {
        om_runtime *rt = new_runtime();
        om_debug_fail_alloc(rt, nth);
        bool done = false;
        void *blocks[40] = {0};
        om_object *objs[20] = {0};
        if (om_tracemalloc_start(rt, 4) != OM_OK) {
            CHECK(om_last_status(rt) == OM_ERR_NOMEM);
            goto out;
        }
        for (int i = 0; i < 40; i++) {
            blocks[i] = om_malloc(rt, 16 + 40 * (size_t)i);
            if (!blocks[i]) {
                CHECK(om_last_status(rt) == OM_ERR_NOMEM);
                goto out;
            }
        }
        for (int i = 0; i < 20; i++) {
            objs[i] = om_new(rt, &box_type);
            if (!objs[i])
                goto out;
        }
        om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
        if (!snap) {
            CHECK(error_is(rt, OM_ERR_NOMEM, "om_tracemalloc_take_snapshot",
                           NULL));
            goto out;
        }
        size_t n;
        om_snapshot_traces(snap, &n);
        CHECK(n == 60);
        om_snapshot_free(snap);
        om_traceback *tb = om_tracemalloc_get_object_traceback(objs[0]);
        if (!tb) {
            CHECK(om_last_status(rt) == OM_ERR_NOMEM);
            goto out;
        }
        om_traceback_free(tb);
        done = true;
    out:
        om_debug_fail_alloc(rt, 0);
        if (rt->tracer)
            CHECK(om_check(rt) == OM_OK);
        size_t cur = 0, expected = 0;
        traced(rt, &cur, NULL);
        for (int i = 0; i < 40; i++)
            expected += blocks[i] ? 16 + 40 * (size_t)i : 0;
        for (int i = 0; i < 20; i++)
            expected += objs[i] ? box_type.size : 0;
        CHECK(cur == expected);
        for (int i = 0; i < 40; i++)
            om_free(rt, blocks[i]);
        for (int i = 0; i < 20; i++)
            om_decref(objs[i]);
        finish(rt);
        if (done)
            return;
    }
    CHECK(!"the scenario never completed");
}

TEST_MAIN(T(test_start_stop_and_limit), T(test_current_peak_clear_reset),
          T(test_call_site_frames), T(test_return_address_frames),
          T(test_object_traceback), T(test_native_callers), T(test_realloc),
          T(test_domains), T(test_tracing_is_per_runtime),
          T(test_random_churn), T(test_allocation_failures))
