/*
 * support.h — helpers shared by the container tests: the closing checks of
 * every test, error-message matching, and the bookkeeping of
 * allocation-failure sweeps.
 */
#ifndef OM_TEST_SUPPORT_H
#define OM_TEST_SUPPORT_H

#include "objmem.h"
#include "harness.h"

#include <pthread.h>
#include <stdbool.h>

/* Every test ends here: invariants hold, nothing is alive, nothing leaked. */
static inline void finish(om_runtime *rt) {
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
}

/* Whether the latest failure has status st and a message naming w1 and w2
 * (either may be NULL).  Prints the message when not, to make a failing
 * CHECK readable. */
static inline bool error_is(om_runtime *rt, om_status st, const char *w1,
                            const char *w2) {
    const char *msg = om_last_error(rt);
    bool ok = om_last_status(rt) == st && msg[0] != '\0' &&
              (!w1 || strstr(msg, w1)) && (!w2 || strstr(msg, w2));
    if (!ok)
        fprintf(stderr, "  last error: status %d, \"%s\"\n",
                (int)om_last_status(rt), msg);
    return ok;
}

/* A traverse visitor counting the references it is shown. */
static inline int count_visit(om_object *child, void *arg) {
    (void)child;
    ++*(int *)arg;
    return 0;
}

/* One run of a scenario with the nth allocation from its start failing. */
typedef struct sweep {
    om_runtime *rt;
    uint64_t start;
    uint64_t nth;
    int failures;
} sweep;

/* Whether the injected failure has fired (the nth attempt was made). */
static inline bool sweep_fired(const sweep *s) {
    return om_debug_alloc_count(s->rt) - s->start >= s->nth;
}

/* A call just failed: it must be the injected failure, reported in words,
 * and the first one.  True when the caller should retry the call. */
static inline bool sweep_failed(sweep *s) {
    CHECK(sweep_fired(s));
    CHECK(s->failures == 0);
    CHECK(om_last_status(s->rt) == OM_ERR_NOMEM);
    CHECK(om_last_error(s->rt)[0] != '\0');
    om_clear_error(s->rt);
    return sweep_fired(s) && s->failures++ == 0;
}

/* Run fn(arg) on a thread with a 256 KiB stack, and wait for it: what must
 * not recurse in proportion to the data is run there. */
#define SMALL_STACK (256 * 1024)

static inline void on_small_stack(void *(*fn)(void *), void *arg) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setstacksize(&attr, SMALL_STACK) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, fn, arg) == 0);
    pthread_join(t, NULL);
    pthread_attr_destroy(&attr);
}

/* The collector tests' object: four references and an id. */
typedef struct node {
    OM_OBJECT_HEAD
    om_object *slot[4];
    int id;
} node;

static inline int node_traverse(om_object *self, om_visit_fn visit, void *arg) {
    node *n = (node *)self;
    for (int i = 0; i < 4; i++) {
        if (n->slot[i]) {
            int r = visit(n->slot[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

/* Drop the four references, each slot emptied before its decref. */
static inline void node_drop_slots(node *n) {
    for (int i = 0; i < 4; i++) {
        om_object *old = n->slot[i];
        n->slot[i] = NULL;
        om_decref(old);
    }
}

#endif
