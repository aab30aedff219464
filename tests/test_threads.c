/*
 * test_threads.c — runtimes share nothing: several threads, each with its
 * own runtime, build and tear down random graphs at the same time.  Run
 * under ThreadSanitizer by make test (stage tsan), where any shared mutable
 * state would be reported as a race.
 */
#include "objmem.h"
#include "harness.h"

#include <pthread.h>

#define THREADS 4
#define ROUNDS 20000

typedef struct worker {
    uint64_t seed;
    size_t leaked;
    int errors;
} worker;

static uint64_t next_random(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static void *work(void *arg) {
    worker *w = arg;
    om_runtime *rt = om_runtime_new(NULL);
    om_object *roots = om_list_new(rt);
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t r = next_random(&w->seed);
        om_object *o = NULL;
        switch (r % 4) {
        case 0: o = om_int_new(rt, (int64_t)r); break;
        case 1: o = om_str_new(rt, "shared nothing"); break;
        case 2:
            o = om_dict_new(rt);
            if (om_list_len(roots))
                om_dict_set_str(o, "x", om_list_get(roots, -1));
            break;
        default:
            o = om_list_new(rt);
            if (om_list_len(roots))
                om_list_append(o, om_list_get(roots, 0));
        }
        if (!o || om_list_append(roots, o) != OM_OK)
            w->errors++;
        om_decref(o);
        if (om_list_len(roots) > 64 && (r >> 8) % 2)
            om_decref(om_list_pop(roots, (ptrdiff_t)((r >> 16) % 64)));
    }
    if (om_check(rt) != OM_OK)
        w->errors++;
    om_decref(roots);
    w->leaked = om_runtime_free(rt);
    return NULL;
}

static void runtimes_in_parallel_threads(void) {
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){th_random() | 1, 0, 0};
        CHECK(pthread_create(&t[i], NULL, work, &w[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK(w[i].errors == 0);
        CHECK(w[i].leaked == 0);
    }
}

TEST_MAIN(T(runtimes_in_parallel_threads))
