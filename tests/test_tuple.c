/*
 * test_tuple.c — om_tuple: creation from an array and from arguments,
 * reference ownership, Python index semantics, argument errors, clearing,
 * and allocation failure while building tuples.
 */
#include "objmem.h"
#include "harness.h"
#include "support.h"

#include <stdbool.h>

/* ---- helpers ------------------------------------------------------------- */

/* ---- creation ------------------------------------------------------------ */

static void new_from_array(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *items[3] = {om_int_new(rt, 1), om_str_new(rt, "two"),
                           om_int_new(rt, 3)};
    om_object *t = om_tuple_new(rt, 3, items);
    CHECK(t != NULL && om_type_of(t) == &om_tuple_type);
    CHECK(om_refcount(t) == 1 && om_tuple_len(t) == 3);
    for (int i = 0; i < 3; i++) {
        CHECK(om_tuple_get(t, i) == items[i]);
        CHECK(om_refcount(items[i]) == 2);
    }
    /* The tuple copied the array: changing it afterwards changes nothing. */
    om_object *keep = items[1];
    items[1] = items[0];
    CHECK(om_tuple_get(t, 1) == keep);
    items[1] = keep;
    for (int i = 0; i < 3; i++)
        om_decref(items[i]);
    CHECK(om_int_value(om_tuple_get(t, 0)) == 1);
    CHECK(strcmp(om_str_data(om_tuple_get(t, 1)), "two") == 0);
    CHECK(om_refcount(om_tuple_get(t, 2)) == 1);
    /* Freeing the tuple frees what only it held. */
    om_decref(t);
    finish(rt);
}

static void empty_tuples(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *a = om_tuple_new(rt, 0, NULL);
    om_object *x = om_int_new(rt, 0);
    om_object *b = om_tuple_new(rt, 0, &x); /* items ignored for n == 0 */
    om_object *c = om_tuple_pack(rt, 0);
    CHECK(a && b && c);
    CHECK(om_tuple_len(a) == 0 && om_tuple_len(b) == 0);
    CHECK(om_tuple_len(c) == 0);
    CHECK(om_refcount(x) == 1);
    CHECK(om_sizeof(a) == om_sizeof(c));
    om_clear_error(rt);
    CHECK(om_tuple_get(a, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_tuple_get", "out of range"));
    om_clear_error(rt);
    CHECK(om_tuple_get(c, -1) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_tuple_get", NULL));
    om_decref(a);
    om_decref(b);
    om_decref(c);
    om_decref(x);
    finish(rt);
}

static void pack_takes_references(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *x = om_int_new(rt, 5), *s = om_str_new(rt, "s");
    om_object *t = om_tuple_pack(rt, 4, x, s, x, x);
    CHECK(t && om_tuple_len(t) == 4);
    CHECK(om_refcount(x) == 4 && om_refcount(s) == 2);
    CHECK(om_tuple_get(t, 0) == x && om_tuple_get(t, 1) == s);
    CHECK(om_tuple_get(t, -1) == x && om_tuple_get(t, -3) == s);
    om_object *one = om_tuple_pack(rt, 1, s);
    CHECK(om_tuple_len(one) == 1 && om_tuple_get(one, 0) == s);
    CHECK(om_refcount(s) == 3);
    om_decref(t);
    CHECK(om_refcount(x) == 1 && om_refcount(s) == 2);
    om_decref(one);
    CHECK(om_refcount(s) == 1);
    om_decref(x);
    om_decref(s);
    finish(rt);
}

static void sizeof_counts_slots(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *x = om_int_new(rt, 1);
    om_object *items[100];
    for (int i = 0; i < 100; i++)
        items[i] = x;
    om_object *empty = om_tuple_new(rt, 0, NULL);
    /* Sizes straddle the pool limit: big tuples live outside the pools. */
    for (size_t n = 1; n <= 100; n += 11) {
        om_object *t = om_tuple_new(rt, n, items);
        CHECK(om_sizeof(t) == om_sizeof(empty) + n * sizeof(om_object *));
        CHECK(om_refcount(x) == 1 + n);
        CHECK(om_tuple_get(t, (ptrdiff_t)n - 1) == x);
        om_decref(t);
    }
    CHECK(om_refcount(x) == 1);
    om_decref(empty);
    om_decref(x);
    finish(rt);
}

static void nested_tuples(void) {
    om_runtime *rt = om_runtime_new(NULL);
    /* A long chain of 1-tuples frees without recursion. */
    om_object *inner = om_int_new(rt, -1);
    for (int i = 0; i < 20000; i++) {
        om_object *outer = om_tuple_pack(rt, 1, inner);
        om_decref(inner);
        inner = outer;
    }
    CHECK(om_object_count(rt) == 20001);
    om_object *t = inner;
    for (int i = 0; i < 20000; i++)
        t = om_tuple_get(t, 0);
    CHECK(om_int_value(t) == -1);
    om_decref(inner);
    finish(rt);
}

/* ---- errors -------------------------------------------------------------- */

static void index_semantics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = om_int_new(rt, i);
    om_object *t = om_tuple_new(rt, 4, v);
    for (ptrdiff_t i = -4; i < 4; i++)
        CHECK(om_tuple_get(t, i) == v[i < 0 ? i + 4 : i]);
    const ptrdiff_t bad[] = {4, 5, -5, PTRDIFF_MAX, PTRDIFF_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_clear_error(rt);
        CHECK(om_tuple_get(t, bad[i]) == NULL);
        CHECK(error_is(rt, OM_ERR_INDEX, "om_tuple_get", "tuple of 4"));
    }
    for (int i = 0; i < 4; i++) {
        CHECK(om_refcount(v[i]) == 2);
        om_decref(v[i]);
    }
    om_decref(t);
    finish(rt);
}

static void bad_arguments(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *x = om_int_new(rt, 1), *y = om_int_new(rt, 2);
    om_object *l = om_list_new(rt);

    om_clear_error(rt);
    CHECK(om_tuple_new(rt, 2, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tuple_new", "NULL"));
    /* A NULL among the items: nothing is created and no reference kept. */
    om_object *holes[3] = {x, NULL, y};
    om_clear_error(rt);
    CHECK(om_tuple_new(rt, 3, holes) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tuple_new", "item 1"));
    om_object *hole_first[2] = {NULL, x};
    om_clear_error(rt);
    CHECK(om_tuple_new(rt, 2, hole_first) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tuple_new", "item 0"));
    om_clear_error(rt);
    CHECK(om_tuple_pack(rt, 3, x, y, (om_object *)NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tuple_pack", "item 2"));
    om_clear_error(rt);
    CHECK(om_tuple_pack(rt, 2, (om_object *)NULL, x) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_tuple_pack", "item 0"));
    CHECK(om_refcount(x) == 1 && om_refcount(y) == 1);
    CHECK(om_object_count(rt) == 3);

    /* Too many items to address is refused before any argument is read. */
    om_clear_error(rt);
    CHECK(om_tuple_pack(rt, SIZE_MAX) == NULL);
    CHECK(error_is(rt, OM_ERR_OVERFLOW, "om_tuple_pack", NULL));

    CHECK(om_tuple_new(NULL, 1, &x) == NULL);
    CHECK(om_tuple_pack(NULL, 1, x) == NULL);
    CHECK(om_refcount(x) == 1);

    om_clear_error(rt);
    CHECK(om_tuple_get(l, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_tuple_get", "'list'"));
    CHECK(strstr(om_last_error(rt), "'tuple'") != NULL);
    om_clear_error(rt);
    CHECK(om_tuple_len(x) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_tuple_len", "'int'"));
    CHECK(om_tuple_get(NULL, 0) == NULL && om_tuple_len(NULL) == 0);

    /* A successful get records nothing. */
    om_object *t = om_tuple_pack(rt, 1, x);
    om_clear_error(rt);
    CHECK(om_tuple_get(t, 0) == x && om_last_status(rt) == OM_OK);
    CHECK(om_last_error(rt)[0] == '\0');
    om_decref(t);
    om_decref(x);
    om_decref(y);
    om_decref(l);
    finish(rt);
}

/* ---- clearing ------------------------------------------------------------ */

typedef struct probe {
    OM_OBJECT_HEAD
    size_t slot;
} probe;

static om_object *watched;     /* the tuple probes inspect (borrowed) */
static size_t finalized;
static size_t inconsistent;    /* probes still found in their slot */

static void probe_finalize(om_object *self) {
    finalized++;
    if (watched && om_tuple_get(watched, (ptrdiff_t)((probe *)self)->slot))
        inconsistent++;
}

static const om_type probe_type = {
    .name = "probe", .size = sizeof(probe), .finalize = probe_finalize,
};

static void clear_empties_slots_first(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *items[6];
    for (size_t i = 0; i < 6; i++) {
        items[i] = om_new(rt, &probe_type);
        ((probe *)items[i])->slot = i;
    }
    om_object *t = om_tuple_new(rt, 6, items);
    for (size_t i = 0; i < 6; i++)
        om_decref(items[i]);
    int seen = 0;
    CHECK(om_tuple_type.traverse(t, count_visit, &seen) == 0 && seen == 6);

    /* The collector may clear a tuple it then keeps: each probe, dying
     * during the clear, must find its slot already empty. */
    watched = t;
    finalized = inconsistent = 0;
    om_tuple_type.clear(t);
    CHECK(finalized == 6 && inconsistent == 0);
    om_tuple_type.clear(t);
    CHECK(finalized == 6 && om_object_count(rt) == 1);
    seen = 0;
    CHECK(om_tuple_type.traverse(t, count_visit, &seen) == 0 && seen == 0);
    watched = NULL;
    om_decref(t);
    finish(rt);
}

/* ---- allocation failure -------------------------------------------------- */

/* Builds strings, a tuple of them and a packed tuple with the nth allocation
 * failing; checks that the failing call changed nothing.  False once a run
 * completes without the failure firing. */
static bool build_tuples_failing_at(uint64_t nth) {
    om_runtime *rt = om_runtime_new(NULL);
    uint64_t start = om_debug_alloc_count(rt);
    om_debug_fail_alloc(rt, nth);
    int failures = 0;
    enum { N = 40 };
    om_object *items[N];
    om_object *tuples[N + 2];
    size_t ntuples = 0;
    for (int i = 0; i < N; i++) {
        char text[600];
        /* Every fifth string is too big for the pools. */
        size_t len = i % 5 == 4 ? 550 : (size_t)i;
        memset(text, 'a' + i % 26, len);
        text[len] = '\0';
        while (!(items[i] = om_str_new(rt, text))) {
            CHECK(om_debug_alloc_count(rt) - start >= nth);
            CHECK(error_is(rt, OM_ERR_NOMEM, NULL, NULL));
            CHECK(om_object_count(rt) == 2 * (size_t)i); /* strings, tuples */
            om_clear_error(rt);
            if (failures++)
                return false;
        }
        /* Tuples of every length up to i+1, the big ones outside pools. */
        size_t before = om_object_count(rt);
        while (!(tuples[ntuples] = om_tuple_new(rt, (size_t)i + 1, items))) {
            CHECK(om_debug_alloc_count(rt) - start >= nth);
            CHECK(error_is(rt, OM_ERR_NOMEM, NULL, NULL));
            CHECK(om_object_count(rt) == before);
            for (int j = 0; j <= i; j++)
                CHECK(om_refcount(items[j]) == 1 + ntuples - (size_t)j);
            om_clear_error(rt);
            if (failures++)
                return false;
        }
        ntuples++;
    }
    size_t before = om_object_count(rt);
    while (!(tuples[ntuples] = om_tuple_pack(rt, 3, items[0], items[N - 1],
                                             items[0]))) {
        CHECK(om_debug_alloc_count(rt) - start >= nth);
        CHECK(error_is(rt, OM_ERR_NOMEM, NULL, NULL));
        CHECK(om_object_count(rt) == before);
        CHECK(om_refcount(items[0]) == 1 + N && om_refcount(items[N - 1]) == 2);
        om_clear_error(rt);
        if (failures++)
            return false;
    }
    ntuples++;
    bool fired = om_debug_alloc_count(rt) - start >= nth;
    CHECK(failures == (fired ? 1 : 0));
    for (size_t i = 0; i < ntuples - 1; i++)
        CHECK(om_tuple_len(tuples[i]) == i + 1 &&
              om_tuple_get(tuples[i], -1) == items[i]);
    for (size_t i = 0; i < ntuples; i++)
        om_decref(tuples[i]);
    for (int i = 0; i < N; i++) {
        CHECK(om_refcount(items[i]) == 1);
        om_decref(items[i]);
    }
    finish(rt);
    return fired;
}

static void alloc_failure_sweep(void) {
    uint64_t nth = 1;
    while (build_tuples_failing_at(nth) && nth < 100000)
        nth++;
    CHECK(nth > 2 * 40);
}

TEST_MAIN(T(new_from_array), T(empty_tuples), T(pack_takes_references),
          T(sizeof_counts_slots), T(nested_tuples), T(index_semantics),
          T(bad_arguments), T(clear_empties_slots_first),
          T(alloc_failure_sweep))
