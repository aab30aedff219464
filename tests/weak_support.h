/*
 * weak_support.h — what the weak-reference tests (test_weakref.c,
 * test_weakref_gc.c) share: an event log to check orders, weakly
 * referenceable nodes that count their finalizer and clear calls, and a
 * weak-reference callback that records how it was called.
 */
#ifndef OM_TEST_WEAK_SUPPORT_H
#define OM_TEST_WEAK_SUPPORT_H

#include "support.h"

#include <stdarg.h>

/* ---- an event log ------------------------------------------------------------ */

static char log_buf[4096];

static inline void log_reset(void) { log_buf[0] = '\0'; }

/* Append a word to the log, space-separated. */
static inline void log_event(const char *fmt, ...) {
    size_t len = strlen(log_buf);
    if (len && len + 1 < sizeof log_buf)
        log_buf[len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_buf + len, sizeof log_buf - len, fmt, ap);
    va_end(ap);
}

static inline bool log_is(const char *expected) {
    if (!strcmp(log_buf, expected))
        return true;
    fprintf(stderr, "  log \"%s\", expected \"%s\"\n", log_buf, expected);
    return false;
}

/* Position of event `ev` in the log (word index), -1 if absent. */
static inline int log_pos(const char *ev) {
    int pos = 0;
    const char *p = log_buf;
    size_t n = strlen(ev);
    while (*p) {
        if (!strncmp(p, ev, n) && (p[n] == ' ' || p[n] == '\0'))
            return pos;
        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        pos++;
    }
    return -1;
}

/* ---- weakly referenceable nodes ------------------------------------------------ */

enum { MAX_ID = 4096 };
static int fin_calls[MAX_ID];               /* finalizer calls per node id */
static int clear_calls[MAX_ID];             /* clear calls per node id */
static void (*on_finalize)(node *self);     /* what a finalizer also does */
static void (*on_clear)(node *self);        /* what a clear also does */
static bool log_clears;                     /* clears log "X<id>" */

static inline void reset(void) {
    memset(fin_calls, 0, sizeof fin_calls);
    memset(clear_calls, 0, sizeof clear_calls);
    on_finalize = NULL;
    on_clear = NULL;
    log_clears = false;
    log_reset();
}

static inline void wnode_clear(om_object *self) {
    node *n = (node *)self;
    if (n->id >= 0 && n->id < MAX_ID)
        clear_calls[n->id]++;
    if (log_clears)
        log_event("X%d", n->id);
    if (on_clear)
        on_clear(n);
    node_drop_slots(n);
}

/* Logs "F<id>". */
static inline void wnode_finalize(om_object *self) {
    node *n = (node *)self;
    if (n->id >= 0 && n->id < MAX_ID)
        fin_calls[n->id]++;
    log_event("F%d", n->id);
    if (on_finalize)
        on_finalize(n);
}

static const om_type wnode_type = {
    .name = "wnode", .size = sizeof(node), .flags = OM_TYPE_WEAKREFABLE,
    .traverse = node_traverse, .clear = wnode_clear,
};
static const om_type wfin_type = {
    .name = "wfin", .size = sizeof(node), .flags = OM_TYPE_WEAKREFABLE,
    .traverse = node_traverse, .clear = wnode_clear, .finalize = wnode_finalize,
};

static inline om_object *new_node(om_runtime *rt, const om_type *t, int id) {
    node *n = (node *)om_new(rt, t);
    CHECK(n != NULL);
    if (n)
        n->id = id;
    return &n->om_head;
}

/* A runtime whose collections run only when the test asks. */
static inline om_runtime *quiet_runtime(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_gc_disable(rt);
    return rt;
}

/* ---- callbacks that record ---------------------------------------------------- */

typedef struct cbrec {
    int id;
    int calls;
    om_object *ref;        /* the ref the latest call was given */
    int alive_inside;      /* om_weakref_alive(ref) during that call */
    int got_inside;        /* om_weakref_get(ref) != NULL during it */
    void (*action)(struct cbrec *self);
    void *ctx;
} cbrec;

/* A weak-reference callback whose data is a cbrec; logs "c<id>". */
static inline void record_cb(om_object *ref, void *data) {
    cbrec *c = data;
    c->calls++;
    c->ref = ref;
    c->alive_inside = om_weakref_alive(ref);
    om_object *got = om_weakref_get(ref);
    c->got_inside = got != NULL;
    om_decref(got);
    log_event("c%d", c->id);
    if (c->action)
        c->action(c);
}

#endif
