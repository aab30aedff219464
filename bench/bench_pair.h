/*
 * bench_pair.h — the object the objmem benchmarks create: the header and two
 * references, 32 bytes, like CPython's instance of a two-slot __slots__ class
 * minus its GC header, with traverse and clear as a collectable type has.
 */
#ifndef OM_BENCH_PAIR_H
#define OM_BENCH_PAIR_H

#include "objmem.h"

typedef struct pair {
    OM_OBJECT_HEAD
    om_object *a;
    om_object *b;
} pair;

_Static_assert(sizeof(pair) == 32, "the benchmark object must be 32 bytes");

static int pair_traverse(om_object *self, om_visit_fn visit, void *arg) {
    pair *p = (pair *)self;
    int r;
    if (p->a && (r = visit(p->a, arg)) != 0)
        return r;
    if (p->b && (r = visit(p->b, arg)) != 0)
        return r;
    return 0;
}

static void pair_clear(om_object *self) {
    pair *p = (pair *)self;
    om_object *a = p->a, *b = p->b;
    /* The header contract: slots are NULL before what they held is
     * dropped. */
    p->a = NULL;
    p->b = NULL;
    om_decref(a);
    om_decref(b);
}

static const om_type pair_type = {
    .name = "bench.pair",
    .size = sizeof(pair),
    .traverse = pair_traverse,
    .clear = pair_clear,
};

#endif
