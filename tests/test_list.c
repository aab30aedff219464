/*
 * test_list.c — om_list: reference ownership, Python index semantics,
 * argument errors, clearing under finalizers, a randomised comparison with a
 * model, and allocation failure at every step of building a list.
 */
#include "objmem.h"
#include "harness.h"
#include "support.h"

#include <stdbool.h>

/* ---- helpers ------------------------------------------------------------- */

/* A list of fresh om_ints with the given values; the list owns the only
 * reference to each. */
static om_object *int_list(om_runtime *rt, const int64_t *values, size_t n) {
    om_object *l = om_list_new(rt);
    for (size_t i = 0; i < n; i++) {
        om_object *v = om_int_new(rt, values[i]);
        CHECK(om_list_append(l, v) == OM_OK);
        om_decref(v);
    }
    return l;
}

/* Whether l holds om_ints equal to values[0..n). */
static bool list_is(om_object *l, const int64_t *values, size_t n) {
    if (om_list_len(l) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        om_object *v = om_list_get(l, (ptrdiff_t)i);
        if (!v || om_int_value(v) != values[i])
            return false;
    }
    return true;
}

/* ---- basics -------------------------------------------------------------- */

static void new_and_empty(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    CHECK(l != NULL);
    CHECK(om_type_of(l) == &om_list_type);
    CHECK(om_runtime_of(l) == rt);
    CHECK(om_refcount(l) == 1);
    CHECK(om_list_len(l) == 0);
    CHECK(om_sizeof(l) >= sizeof(om_object) + 2 * sizeof(size_t));
    om_clear_error(rt);
    CHECK(om_list_get(l, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_list_get", NULL));
    om_clear_error(rt);
    CHECK(om_list_get(l, -1) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_list_get", NULL));
    om_clear_error(rt);
    CHECK(om_list_pop(l, -1) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_list_pop", NULL));
    CHECK(om_list_clear(l) == OM_OK);
    CHECK(om_list_len(l) == 0);
    CHECK(om_list_new(NULL) == NULL);
    om_decref(l);
    finish(rt);
}

static void append_get_refcounts(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    om_object *a = om_str_new(rt, "a"), *b = om_int_new(rt, 7);
    CHECK(om_list_append(l, a) == OM_OK);
    CHECK(om_refcount(a) == 2);
    CHECK(om_list_append(l, b) == OM_OK);
    CHECK(om_list_append(l, a) == OM_OK);
    CHECK(om_refcount(a) == 3 && om_refcount(b) == 2);
    CHECK(om_list_len(l) == 3);
    /* get is borrowed: it changes no refcount. */
    CHECK(om_list_get(l, 0) == a && om_list_get(l, 1) == b);
    CHECK(om_list_get(l, 2) == a);
    CHECK(om_list_get(l, -1) == a && om_list_get(l, -2) == b);
    CHECK(om_list_get(l, -3) == a);
    CHECK(om_refcount(a) == 3 && om_refcount(b) == 2);
    /* The list keeps its items alive after the caller lets go. */
    om_decref(a);
    om_decref(b);
    CHECK(om_refcount(a) == 2 && om_refcount(b) == 1);
    CHECK(om_object_count(rt) == 3);
    CHECK(strcmp(om_str_data(om_list_get(l, 0)), "a") == 0);
    om_decref(l);
    finish(rt);
}

static void index_out_of_range(void) {
    om_runtime *rt = om_runtime_new(NULL);
    static const int64_t v[] = {10, 20, 30};
    om_object *l = int_list(rt, v, 3);
    const ptrdiff_t bad[] = {3, 4, -4, -5, PTRDIFF_MAX, PTRDIFF_MIN,
                             PTRDIFF_MIN + 1};
    om_object *x = om_int_new(rt, 99);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        om_clear_error(rt);
        CHECK(om_list_get(l, bad[i]) == NULL);
        CHECK(error_is(rt, OM_ERR_INDEX, "om_list_get", "out of range"));
        om_clear_error(rt);
        CHECK(om_list_set(l, bad[i], x) == OM_ERR_INDEX);
        CHECK(error_is(rt, OM_ERR_INDEX, "om_list_set", NULL));
        om_clear_error(rt);
        CHECK(om_list_pop(l, bad[i]) == NULL);
        CHECK(error_is(rt, OM_ERR_INDEX, "om_list_pop", NULL));
    }
    /* Failed calls took no reference and changed nothing. */
    CHECK(om_refcount(x) == 1);
    CHECK(list_is(l, v, 3));
    /* The boundaries just inside the range work. */
    CHECK(om_int_value(om_list_get(l, 2)) == 30);
    CHECK(om_int_value(om_list_get(l, -3)) == 10);
    om_decref(x);
    om_decref(l);
    finish(rt);
}

static void set_replaces(void) {
    om_runtime *rt = om_runtime_new(NULL);
    static const int64_t v[] = {1, 2, 3};
    om_object *l = int_list(rt, v, 3);
    om_object *old = om_list_get(l, 1);
    om_incref(old);
    om_object *x = om_int_new(rt, 42);
    CHECK(om_list_set(l, 1, x) == OM_OK);
    CHECK(om_refcount(x) == 2 && om_refcount(old) == 1);
    CHECK(om_list_get(l, 1) == x);
    CHECK(om_list_set(l, -1, x) == OM_OK);
    CHECK(om_refcount(x) == 3);
    static const int64_t want[] = {1, 42, 42};
    CHECK(list_is(l, want, 3));
    om_decref(old);
    CHECK(om_object_count(rt) == 3); /* list, 1, 42 */

    /* Storing the item a slot already holds, when the list owns the only
     * reference, must not free it in between. */
    om_object *only = om_list_get(l, 0);
    CHECK(om_refcount(only) == 1);
    CHECK(om_list_set(l, 0, only) == OM_OK);
    CHECK(om_refcount(only) == 1 && om_int_value(om_list_get(l, 0)) == 1);
    CHECK(om_check(rt) == OM_OK);
    om_decref(x);
    om_decref(l);
    finish(rt);
}

static void pop_returns_new_reference(void) {
    om_runtime *rt = om_runtime_new(NULL);
    static const int64_t v[] = {0, 1, 2, 3, 4};
    om_object *l = int_list(rt, v, 5);
    om_object *last = om_list_pop(l, -1);
    CHECK(om_int_value(last) == 4);
    /* The list's reference passed to us: still alive, we own it alone. */
    CHECK(om_refcount(last) == 1);
    om_object *first = om_list_pop(l, 0);
    CHECK(om_int_value(first) == 0 && om_refcount(first) == 1);
    om_object *mid = om_list_pop(l, 1);
    CHECK(om_int_value(mid) == 2 && om_refcount(mid) == 1);
    static const int64_t left[] = {1, 3};
    CHECK(list_is(l, left, 2));
    om_decref(last);
    om_decref(first);
    om_decref(mid);
    CHECK(om_object_count(rt) == 3);
    om_object *a = om_list_pop(l, -2), *b = om_list_pop(l, 0);
    CHECK(om_int_value(a) == 1 && om_int_value(b) == 3);
    CHECK(om_list_len(l) == 0);
    om_clear_error(rt);
    CHECK(om_list_pop(l, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_INDEX, "om_list_pop", NULL));
    om_decref(a);
    om_decref(b);
    om_decref(l);
    finish(rt);
}

static void insert_clamps(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    /* Each row: index, then the list expected after inserting the value. */
    static const struct {
        ptrdiff_t index;
        int64_t value;
        size_t n;
        int64_t want[8];
    } steps[] = {
        {5, 1, 1, {1}},                      /* past the end of [] */
        {-5, 2, 2, {2, 1}},                  /* before the start */
        {1, 3, 3, {2, 3, 1}},
        {-1, 4, 4, {2, 3, 4, 1}},            /* before the last item */
        {4, 5, 5, {2, 3, 4, 1, 5}},          /* exactly len: append */
        {-5, 6, 6, {6, 2, 3, 4, 1, 5}},      /* exactly -len: front */
        {0, 7, 7, {7, 6, 2, 3, 4, 1, 5}},
        {PTRDIFF_MIN, 8, 8, {8, 7, 6, 2, 3, 4, 1, 5}},
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        om_object *v = om_int_new(rt, steps[i].value);
        CHECK(om_list_insert(l, steps[i].index, v) == OM_OK);
        CHECK(om_refcount(v) == 2);
        om_decref(v);
        CHECK(list_is(l, steps[i].want, steps[i].n));
    }
    om_object *v = om_int_new(rt, 9);
    CHECK(om_list_insert(l, PTRDIFF_MAX, v) == OM_OK);
    CHECK(om_list_get(l, -1) == v && om_list_len(l) == 9);
    om_decref(v);
    om_decref(l);
    finish(rt);
}

static void clear_and_free_drop_items(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    size_t empty_size = om_sizeof(l);
    om_object *s = om_str_new(rt, "shared");
    for (int i = 0; i < 50; i++)
        CHECK(om_list_append(l, s) == OM_OK);
    CHECK(om_refcount(s) == 51);
    CHECK(om_sizeof(l) >= empty_size + 50 * sizeof(om_object *));
    CHECK((om_sizeof(l) - empty_size) % sizeof(om_object *) == 0);
    CHECK(om_list_clear(l) == OM_OK);
    CHECK(om_refcount(s) == 1 && om_list_len(l) == 0);
    CHECK(om_sizeof(l) == empty_size);
    /* Cleared lists are reusable, and clearing twice is harmless. */
    CHECK(om_list_clear(l) == OM_OK);
    CHECK(om_list_append(l, s) == OM_OK && om_list_get(l, 0) == s);
    CHECK(om_refcount(s) == 2);
    /* Freeing the list drops its references. */
    om_decref(l);
    CHECK(om_refcount(s) == 1);
    om_decref(s);
    finish(rt);
}

static void wrong_type_and_null(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    om_object *d = om_dict_new(rt);
    om_object *x = om_int_new(rt, 1);

    om_clear_error(rt);
    CHECK(om_list_append(d, x) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_append", "'dict'"));
    CHECK(strstr(om_last_error(rt), "'list'") != NULL);
    om_clear_error(rt);
    CHECK(om_list_insert(x, 0, x) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_insert", "'int'"));
    om_clear_error(rt);
    CHECK(om_list_get(d, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_get", "'dict'"));
    om_clear_error(rt);
    CHECK(om_list_set(d, 0, x) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_set", "'list'"));
    om_clear_error(rt);
    CHECK(om_list_pop(d, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_pop", "'dict'"));
    om_clear_error(rt);
    CHECK(om_list_len(d) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_len", "'dict'"));
    om_clear_error(rt);
    CHECK(om_list_clear(d) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_list_clear", "'dict'"));
    CHECK(om_refcount(x) == 1);

    /* A NULL list has no runtime to record in: only the status. */
    CHECK(om_list_append(NULL, x) == OM_ERR_ARG);
    CHECK(om_list_insert(NULL, 0, x) == OM_ERR_ARG);
    CHECK(om_list_set(NULL, 0, x) == OM_ERR_ARG);
    CHECK(om_list_clear(NULL) == OM_ERR_ARG);
    CHECK(om_list_get(NULL, 0) == NULL && om_list_pop(NULL, 0) == NULL);
    CHECK(om_list_len(NULL) == 0);

    /* A NULL item is refused before anything changes. */
    CHECK(om_list_append(l, x) == OM_OK);
    om_clear_error(rt);
    CHECK(om_list_append(l, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_list_append", "NULL"));
    om_clear_error(rt);
    CHECK(om_list_insert(l, 0, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_list_insert", "NULL"));
    om_clear_error(rt);
    CHECK(om_list_set(l, 0, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_list_set", "NULL"));
    CHECK(om_list_len(l) == 1 && om_list_get(l, 0) == x);
    CHECK(om_refcount(x) == 2);

    /* Successful calls leave the last error alone. */
    om_clear_error(rt);
    CHECK(om_list_get(l, 0) == x);
    CHECK(om_last_status(rt) == OM_OK && om_last_error(rt)[0] == '\0');

    om_decref(x);
    om_decref(d);
    om_decref(l);
    finish(rt);
}

/* A type with no references of its own, for static immortal items. */
static const om_type leaf_type = {.name = "leaf", .size = sizeof(om_object)};

static void immortal_items(void) {
    static om_object leaf = OM_STATIC_OBJECT_INIT(&leaf_type);
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    CHECK(om_list_append(l, &leaf) == OM_OK);
    CHECK(om_list_insert(l, 0, &leaf) == OM_OK);
    CHECK(om_refcount(&leaf) == OM_REFCOUNT_IMMORTAL);
    om_object *p = om_list_pop(l, 0);
    CHECK(p == &leaf);
    om_decref(p);
    /* A heap immortal item outlives the list and is no leak at shutdown. */
    om_object *s = om_str_new(rt, "forever");
    om_make_immortal(s);
    CHECK(om_list_append(l, s) == OM_OK);
    om_decref(l);
    CHECK(om_refcount(s) == OM_REFCOUNT_IMMORTAL);
    CHECK(strcmp(om_str_data(s), "forever") == 0);
    CHECK(om_object_count(rt) == 1);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- finalizers ---------------------------------------------------------- */

typedef struct probe {
    OM_OBJECT_HEAD
    int id;
} probe;

/* What probe finalizers observe; reset by each test. */
static struct {
    om_object *list;        /* the list under test (borrowed) */
    size_t finalized;
    size_t saw_nonempty;    /* finalizers that saw the list not yet emptied */
    size_t saw_self;        /* finalizers that found themselves in the list */
    om_object *refill;      /* appended to the list by each finalizer */
    bool resurrect;         /* finalizers append themselves to the list */
} fin;

static void probe_finalize(om_object *self) {
    fin.finalized++;
    size_t n = om_list_len(fin.list);
    if (n != 0)
        fin.saw_nonempty++;
    for (size_t i = 0; i < n; i++)
        if (om_list_get(fin.list, (ptrdiff_t)i) == self)
            fin.saw_self++;
    if (fin.refill)
        CHECK(om_list_append(fin.list, fin.refill) == OM_OK);
    if (fin.resurrect)
        CHECK(om_list_append(fin.list, self) == OM_OK);
}

static const om_type probe_type = {
    .name = "probe", .size = sizeof(probe), .finalize = probe_finalize,
};

/* n probes owned only by a new list. */
static om_object *probe_list(om_runtime *rt, int n) {
    om_object *l = om_list_new(rt);
    for (int i = 0; i < n; i++) {
        om_object *p = om_new(rt, &probe_type);
        ((probe *)p)->id = i;
        CHECK(om_list_append(l, p) == OM_OK);
        om_decref(p);
    }
    return l;
}

static void clear_runs_finalizers_on_empty_list(void) {
    om_runtime *rt = om_runtime_new(NULL);
    memset(&fin, 0, sizeof fin);
    om_object *l = probe_list(rt, 20);
    fin.list = l;
    CHECK(om_list_clear(l) == OM_OK);
    CHECK(fin.finalized == 20);
    CHECK(fin.saw_nonempty == 0 && fin.saw_self == 0);
    CHECK(om_list_len(l) == 0 && om_object_count(rt) == 1);

    /* Finalizers may append to the list being cleared: what they add stays,
     * consistently, once the clear is over. */
    om_decref(l);
    memset(&fin, 0, sizeof fin);
    l = probe_list(rt, 10);
    fin.list = l;
    fin.refill = om_str_new(rt, "added by a finalizer");
    CHECK(om_list_clear(l) == OM_OK);
    CHECK(fin.finalized == 10);
    /* The first finalizer saw an empty list; each later one saw the items
     * its predecessors appended, never a probe. */
    CHECK(fin.saw_nonempty == 9 && fin.saw_self == 0);
    CHECK(om_list_len(l) == 10);
    for (ptrdiff_t i = 0; i < 10; i++)
        CHECK(om_list_get(l, i) == fin.refill);
    CHECK(om_refcount(fin.refill) == 11);
    om_decref(fin.refill);
    CHECK(om_check(rt) == OM_OK);
    om_decref(l);
    finish(rt);
}

static void set_runs_finalizer_after_store(void) {
    om_runtime *rt = om_runtime_new(NULL);
    memset(&fin, 0, sizeof fin);
    om_object *l = probe_list(rt, 3);
    fin.list = l;
    om_object *x = om_int_new(rt, 5);
    /* The replaced probe dies inside set and must already be gone. */
    CHECK(om_list_set(l, 1, x) == OM_OK);
    CHECK(fin.finalized == 1 && fin.saw_self == 0);
    CHECK(om_list_get(l, 1) == x && om_list_len(l) == 3);
    /* pop hands the probe over alive; it dies with our reference. */
    om_object *p = om_list_pop(l, 0);
    CHECK(fin.finalized == 1 && om_type_of(p) == &probe_type);
    om_decref(p);
    CHECK(fin.finalized == 2 && fin.saw_self == 0);
    /* The last probe is finalized after the dying list is freed (objects
     * it releases are queued), so the finalizer must not look at it. */
    fin.list = NULL;
    om_decref(x);
    om_decref(l);
    CHECK(fin.finalized == 3);
    finish(rt);
}

static void resurrection_during_clear(void) {
    om_runtime *rt = om_runtime_new(NULL);
    memset(&fin, 0, sizeof fin);
    om_object *l = probe_list(rt, 5);
    fin.list = l;
    fin.resurrect = true;
    CHECK(om_list_clear(l) == OM_OK);
    /* Every probe put itself back, so every probe is alive again. */
    CHECK(fin.finalized == 5 && om_list_len(l) == 5);
    CHECK(om_object_count(rt) == 6);
    for (ptrdiff_t i = 0; i < 5; i++)
        CHECK(om_refcount(om_list_get(l, i)) == 1);
    CHECK(om_check(rt) == OM_OK);
    /* Finalized once only: dying for good does not run it again. */
    om_decref(l);
    CHECK(fin.finalized == 5);
    finish(rt);
}

/* ---- type callbacks ------------------------------------------------------ */

static int stop_at_third(om_object *child, void *arg) {
    (void)child;
    return ++*(int *)arg == 3 ? 77 : 0;
}

static void traverse_and_direct_clear(void) {
    om_runtime *rt = om_runtime_new(NULL);
    static const int64_t v[] = {1, 2, 3, 4};
    om_object *l = int_list(rt, v, 4);
    int seen = 0;
    /* traverse visits each item and stops on the first non-zero visit. */
    CHECK(om_list_type.traverse(l, stop_at_third, &seen) == 77 && seen == 3);
    om_list_type.clear(l);
    om_list_type.clear(l); /* the contract allows a second clear */
    CHECK(om_list_len(l) == 0 && om_object_count(rt) == 1);
    seen = 0;
    CHECK(om_list_type.traverse(l, stop_at_third, &seen) == 0 && seen == 0);
    om_decref(l);
    finish(rt);
}

/* ---- scale --------------------------------------------------------------- */

static void grow_large_and_shrink(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    om_object *s = om_str_new(rt, "x");
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        CHECK(om_list_append(l, s) == OM_OK);
    CHECK(om_list_len(l) == N && om_refcount(s) == N + 1);
    CHECK(om_sizeof(l) >= N * sizeof(om_object *));
    CHECK(om_check(rt) == OM_OK);
    for (int i = N; i > 0; i--) {
        om_object *p = om_list_pop(l, i % 2 ? -1 : i - 1);
        CHECK(p == s);
        om_decref(p);
    }
    CHECK(om_refcount(s) == 1 && om_list_len(l) == 0);
    om_decref(s);
    om_decref(l);
    finish(rt);
}

static void deep_nesting_frees(void) {
    om_runtime *rt = om_runtime_new(NULL);
    /* Each list holds the previous one only: freeing the outermost must
     * release the whole chain without recursion. */
    om_object *inner = om_list_new(rt);
    for (int i = 0; i < 20000; i++) {
        om_object *outer = om_list_new(rt);
        CHECK(om_list_append(outer, inner) == OM_OK);
        om_decref(inner);
        inner = outer;
    }
    CHECK(om_object_count(rt) == 20001);
    om_decref(inner);
    finish(rt);
}

/* Python's rules, written independently of the library. */
static bool model_resolve(ptrdiff_t index, size_t len, size_t *out) {
    ptrdiff_t n = (ptrdiff_t)len;
    if (index < 0)
        index += n;
    if (index < 0 || index >= n)
        return false;
    *out = (size_t)index;
    return true;
}

static size_t model_insert_at(ptrdiff_t index, size_t len) {
    ptrdiff_t n = (ptrdiff_t)len;
    if (index < 0)
        index = index + n < 0 ? 0 : index + n;
    return index > n ? len : (size_t)index;
}

static void random_against_model(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    enum { MAX = 300, OPS = 20000 };
    int64_t model[MAX + 1];
    size_t len = 0;
    int64_t next_value = 0;
    for (int op = 0; op < OPS; op++) {
        /* Indices range a little past both ends to hit the errors too. */
        ptrdiff_t index = (ptrdiff_t)(th_random() % (2 * len + 7)) -
                          (ptrdiff_t)len - 3;
        size_t at;
        int kind = (int)(th_random() % 100);
        if (kind < 30 && len < MAX) {
            om_object *v = om_int_new(rt, next_value);
            bool append = kind < 10;
            CHECK((append ? om_list_append(l, v)
                          : om_list_insert(l, index, v)) == OM_OK);
            om_decref(v);
            at = append ? len : model_insert_at(index, len);
            memmove(&model[at + 1], &model[at], (len - at) * sizeof *model);
            model[at] = next_value++;
            len++;
        } else if (kind < 55) {
            om_object *p = om_list_pop(l, index);
            if (model_resolve(index, len, &at)) {
                CHECK(p && om_int_value(p) == model[at]);
                CHECK(om_refcount(p) == 1);
                memmove(&model[at], &model[at + 1],
                        (len - at - 1) * sizeof *model);
                len--;
            } else {
                CHECK(p == NULL && om_last_status(rt) == OM_ERR_INDEX);
            }
            om_decref(p);
        } else if (kind < 70) {
            om_object *v = om_int_new(rt, next_value);
            om_status st = om_list_set(l, index, v);
            om_decref(v);
            if (model_resolve(index, len, &at)) {
                CHECK(st == OM_OK);
                model[at] = next_value++;
            } else {
                CHECK(st == OM_ERR_INDEX);
            }
        } else if (kind < 99) {
            om_object *g = om_list_get(l, index);
            if (model_resolve(index, len, &at))
                CHECK(g && om_int_value(g) == model[at]);
            else
                CHECK(g == NULL && om_last_status(rt) == OM_ERR_INDEX);
        } else {
            CHECK(om_list_clear(l) == OM_OK);
            len = 0;
        }
        CHECK(om_list_len(l) == len);
        if (op % 500 == 0) {
            CHECK(list_is(l, model, len));
            /* Each item is a fresh int that only the list owns. */
            for (size_t i = 0; i < len; i++)
                CHECK(om_refcount(om_list_get(l, (ptrdiff_t)i)) == 1);
            CHECK(om_object_count(rt) == len + 1);
        }
    }
    CHECK(list_is(l, model, len));
    CHECK(om_check(rt) == OM_OK);
    om_decref(l);
    finish(rt);
}

/* ---- allocation failure -------------------------------------------------- */

/* The om_str items of l spell "item <n>" for n in want[0..len). */
static bool list_spells(om_object *l, const int *want, size_t len) {
    if (om_list_len(l) != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        char text[32];
        snprintf(text, sizeof text, "item %d", want[i]);
        const char *got = om_str_data(om_list_get(l, (ptrdiff_t)i));
        if (!got || strcmp(got, text) != 0)
            return false;
    }
    return true;
}

/* Builds a list of 100 strings by appends and inserts with the nth
 * allocation failing; false once a run completes without the failure. */
static bool build_list_failing_at(uint64_t nth) {
    sweep s = {om_runtime_new(NULL), 0, nth, 0};
    s.start = om_debug_alloc_count(s.rt);
    om_debug_fail_alloc(s.rt, nth);
    om_object *l;
    while (!(l = om_list_new(s.rt)))
        if (!sweep_failed(&s))
            return false;
    enum { N = 100 };
    int model[N];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "item %d", i);
        om_object *item;
        while (!(item = om_str_new(s.rt, text))) {
            if (!sweep_failed(&s))
                return false;
            CHECK(list_spells(l, model, len));
        }
        ptrdiff_t index = i % 3 ? (ptrdiff_t)len : -(ptrdiff_t)(i / 2);
        om_status st;
        while ((st = i % 2 ? om_list_append(l, item)
                           : om_list_insert(l, index, item)) != OM_OK) {
            CHECK(st == OM_ERR_NOMEM);
            if (!sweep_failed(&s))
                return false;
            /* Unchanged: same items, and no reference taken. */
            CHECK(list_spells(l, model, len));
            CHECK(om_refcount(item) == 1);
        }
        size_t at = i % 2 ? len : model_insert_at(index, len);
        memmove(&model[at + 1], &model[at], (len - at) * sizeof *model);
        model[at] = i;
        len++;
        om_decref(item);
    }
    CHECK(list_spells(l, model, len));
    bool fired = sweep_fired(&s);
    CHECK(s.failures == (fired ? 1 : 0));
    om_decref(l);
    finish(s.rt);
    return fired;
}

static void alloc_failure_sweep(void) {
    uint64_t nth = 1;
    while (build_list_failing_at(nth) && nth < 100000)
        nth++;
    /* 100 strings need at least 100 allocations, so many runs failed. */
    CHECK(nth > 100);
}

TEST_MAIN(T(new_and_empty), T(append_get_refcounts), T(index_out_of_range),
          T(set_replaces), T(pop_returns_new_reference), T(insert_clamps),
          T(clear_and_free_drop_items), T(wrong_type_and_null),
          T(immortal_items), T(clear_runs_finalizers_on_empty_list),
          T(set_runs_finalizer_after_store), T(resurrection_during_clear),
          T(traverse_and_direct_clear), T(grow_large_and_shrink),
          T(deep_nesting_frees), T(random_against_model),
          T(alloc_failure_sweep))
