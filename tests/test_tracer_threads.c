/*
 * test_tracer_threads.c — the tracer under threads (run by the
 * ThreadSanitizer stage): one locked engine shared by two threads, as the
 * whole-process tool uses it, and two runtimes tracing in parallel.
 */
#include "support.h"
#include "tracer.h"

enum { PER_THREAD = 20000, LIVE = 500 };

typedef struct shared_job {
    om_tracer *tracer;
    uintptr_t base; /* this thread's addresses: base + 16 * i */
    size_t added;   /* bytes still traced at the end */
} shared_job;

static __attribute__((noinline)) bool add_one(om_tracer *t, uintptr_t ptr,
                                              size_t size) {
    om_site site = {NULL, NULL, 0, OM_RETURN_ADDRESS()};
    return om_tracer_add(t, 0, ptr, size, &site);
}

static void *shared_worker(void *arg) {
    shared_job *job = arg;
    for (size_t i = 0; i < PER_THREAD; i++) {
        uintptr_t ptr = job->base + 16 * i;
        if (!add_one(job->tracer, ptr, 1 + i % 100))
            return NULL;
        /* Keep the last LIVE blocks; free the one LIVE back. */
        if (i >= LIVE)
            om_tracer_remove(job->tracer, 0, ptr - 16 * LIVE);
    }
    for (size_t i = PER_THREAD - LIVE; i < PER_THREAD; i++)
        job->added += 1 + i % 100;
    return job;
}

static void test_shared_locked_engine(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_tracer *t = om_tracer_new(rt, 4, true);
    CHECK(t != NULL);
    if (!t) {
        finish(rt);
        return;
    }
    shared_job jobs[2] = {{t, 0x10000000, 0}, {t, 0x90000000, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, shared_worker, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK(r == &jobs[i]);
    }
    CHECK(t->current == jobs[0].added + jobs[1].added);
    CHECK(t->main.count == 2 * LIVE);
    CHECK(om_tracer_check(t) == OM_OK);
    /* Both threads' allocations came from the same call instruction with
     * different stacks below it only in thread entry: the tracebacks are
     * interned per distinct stack, so there are very few. */
    CHECK(t->ntracebacks >= 1 && t->ntracebacks <= 4);
    om_tracer_free(t);
    finish(rt);
}

typedef struct runtime_job {
    size_t traced;
    size_t snapshot_traces;
} runtime_job;

static const om_type cell_type = {.name = "cell", .size = 32};

static void *runtime_worker(void *arg) {
    runtime_job *job = arg;
    om_runtime *rt = om_runtime_new(NULL);
    if (!rt || om_tracemalloc_start(rt, 8) != OM_OK)
        return NULL;
    om_object *cells[LIVE];
    for (size_t round = 0; round < 20; round++) {
        for (size_t i = 0; i < LIVE; i++)
            cells[i] = om_new(rt, &cell_type);
        for (size_t i = 0; i < LIVE; i++)
            om_decref(cells[i]);
    }
    for (size_t i = 0; i < LIVE; i++)
        cells[i] = om_new(rt, &cell_type);
    om_tracemalloc_get_traced_memory(rt, &job->traced, NULL);
    om_snapshot *snap = om_tracemalloc_take_snapshot(rt);
    if (snap)
        om_snapshot_traces(snap, &job->snapshot_traces);
    om_snapshot_free(snap);
    for (size_t i = 0; i < LIVE; i++)
        om_decref(cells[i]);
    om_runtime_free(rt);
    return job;
}

static void test_runtimes_trace_in_parallel(void) {
    runtime_job jobs[2] = {{0, 0}, {0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, runtime_worker, &jobs[i]) == 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(th[i], &r);
        CHECK(r == &jobs[i]);
        CHECK(jobs[i].traced == LIVE * cell_type.size);
        CHECK(jobs[i].snapshot_traces == LIVE);
    }
}

TEST_MAIN(T(test_shared_locked_engine), T(test_runtimes_trace_in_parallel))
