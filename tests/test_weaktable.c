/*
 * test_weaktable.c — weak tables (om_weakvaluedict_*, om_weakkeydict_*,
 * om_weakset_*, om_weaktable_*), against CPython's WeakValueDictionary,
 * WeakKeyDictionary and WeakSet: set/get/del/add/discard, contains and len;
 * keys hashed and compared through their type (an entry keeps its first
 * key and dies with THAT key); entries vanishing when their object dies by
 * refcount and by a collection; a replaced value's death leaving the entry
 * alone; argument and type errors; iteration with deaths, deletes, nested
 * iterators and borrowed results kept alive by the iterator; the table
 * dying before its objects (also with the user holding the table's weak
 * references); tables in garbage cycles; a randomised comparison of each
 * kind with a model (--seed N); allocation failure at every step.
 */
#include "internal.h" /* om_weakref: the table's refs' callbacks */
#include "harness.h"
#include "support.h"

/* ---- a weakly referenceable user type ------------------------------------ */

/* Hashes and compares by `val`; `slot` holds one strong reference (cycles,
 * or the table itself). */
typedef struct wobj {
    OM_OBJECT_HEAD
    om_object *slot;
    int64_t val;
} wobj;

static int wobj_traverse(om_object *self, om_visit_fn visit, void *arg) {
    wobj *w = (wobj *)self;
    return w->slot ? visit(w->slot, arg) : 0;
}

static void wobj_clear(om_object *self) {
    wobj *w = (wobj *)self;
    om_object *s = w->slot;
    w->slot = NULL;
    om_decref(s);
}

static uint64_t wobj_hash(const om_object *self) {
    return om_hash_word((uint64_t)((const wobj *)self)->val);
}

static int wobj_eq(const om_object *a, const om_object *b) {
    return ((const wobj *)a)->val == ((const wobj *)b)->val;
}

static const om_type wobj_type = {
    .name = "wobj",
    .size = sizeof(wobj),
    .flags = OM_TYPE_WEAKREFABLE,
    .traverse = wobj_traverse,
    .clear = wobj_clear,
    .hash = wobj_hash,
    .eq = wobj_eq,
};

/* The same without hash/eq: identity keys. */
static const om_type wid_type = {
    .name = "wid",
    .size = sizeof(wobj),
    .flags = OM_TYPE_WEAKREFABLE,
    .traverse = wobj_traverse,
    .clear = wobj_clear,
};

static om_object *wnew(om_runtime *rt, int64_t val) {
    wobj *w = (wobj *)om_new(rt, &wobj_type);
    CHECK(w != NULL);
    if (w)
        w->val = val;
    return &w->om_head;
}

static int64_t wval(const om_object *o) { return ((const wobj *)o)->val; }

/* Store a strong reference to what in o's slot. */
static void wset_slot(om_object *o, om_object *what) {
    om_incref(what);
    om_setref(&((wobj *)o)->slot, what);
    om_decref(what);
}

/* A value dict lookup through a fresh (distinct, equal) str key. */
static om_object *vget(om_object *t, const char *key) {
    om_object *k = om_str_new(om_runtime_of(t), key);
    om_object *v = om_weakvaluedict_get(t, k);
    om_decref(k);
    return v;
}

static om_status vset(om_object *t, const char *key, om_object *value) {
    om_object *k = om_str_new(om_runtime_of(t), key);
    om_status st = om_weakvaluedict_set(t, k, value);
    om_decref(k);
    return st;
}

static om_status vdel(om_object *t, const char *key) {
    om_object *k = om_str_new(om_runtime_of(t), key);
    om_status st = om_weakvaluedict_del(t, k);
    om_decref(k);
    return st;
}

static int vcontains(om_object *t, const char *key) {
    om_object *k = om_str_new(om_runtime_of(t), key);
    int r = om_weaktable_contains(t, k);
    om_decref(k);
    return r;
}

/* Entries seen by a full iteration. */
static size_t iter_count(om_object *t) {
    om_weaktable_iter it;
    size_t n = 0;
    CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
    while (om_weaktable_iter_next(&it, NULL, NULL))
        n++;
    om_weaktable_iter_end(&it);
    return n;
}

/* The table's (callback-carrying) weak reference to obj, as a new
 * reference from om_weakref_list; NULL if there is none. */
static om_object *table_ref_of(om_object *obj) {
    om_object *list = om_weakref_list(obj);
    CHECK(list != NULL);
    om_object *found = NULL;
    for (size_t i = 0; list && i < om_list_len(list); i++) {
        om_object *r = om_list_get(list, (ptrdiff_t)i);
        if (((om_weakref *)r)->callback && !found)
            found = r;
    }
    om_incref(found);
    om_decref(list);
    return found;
}

/* ---- value dicts --------------------------------------------------------- */

static void valuedict_basics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakvaluedict_new(rt);
    CHECK(t && om_refcount(t) == 1 && om_weaktable_len(t) == 0);
    CHECK(om_gc_is_tracked(t));
    om_object *v1 = wnew(rt, 1), *v2 = wnew(rt, 2);
    om_object *k = om_str_new(rt, "alpha");

    om_clear_error(rt);
    CHECK(om_weakvaluedict_get(t, k) == NULL);
    CHECK(om_weaktable_contains(t, k) == 0);
    CHECK(om_last_status(rt) == OM_OK); /* a miss is not an error */

    CHECK(om_weakvaluedict_set(t, k, v1) == OM_OK);
    /* The value is held weakly, the key strongly. */
    CHECK(om_refcount(v1) == 1 && om_refcount(k) == 2);
    CHECK(om_weakref_count(v1) == 1);
    CHECK(om_weaktable_len(t) == 1);
    /* Found through an equal, distinct key; get gives a new reference. */
    om_object *got = vget(t, "alpha");
    CHECK(got == v1 && om_refcount(v1) == 2);
    om_decref(got);
    CHECK(vcontains(t, "alpha") == 1 && vcontains(t, "beta") == 0);
    CHECK(vget(t, "beta") == NULL);

    /* Replacing the value through an equal key keeps the first key. */
    CHECK(vset(t, "alpha", v2) == OM_OK);
    CHECK(om_weaktable_len(t) == 1 && om_refcount(k) == 2);
    got = vget(t, "alpha");
    CHECK(got == v2);
    om_decref(got);
    CHECK(om_weakref_count(v1) == 0 && om_weakref_count(v2) == 1);
    om_weaktable_iter it;
    om_object *ik = NULL, *iv = NULL;
    CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 1);
    CHECK(ik == k && iv == v2);
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 0);
    om_weaktable_iter_end(&it);

    /* Setting the same value again is harmless. */
    CHECK(om_weakvaluedict_set(t, k, v2) == OM_OK);
    CHECK(om_weaktable_len(t) == 1 && om_weakref_count(v2) == 1);

    /* Two keys, one value. */
    CHECK(vset(t, "beta", v2) == OM_OK);
    CHECK(om_weaktable_len(t) == 2 && om_refcount(v2) == 1);

    /* del, then del of a missing key. */
    CHECK(vdel(t, "alpha") == OM_OK);
    CHECK(om_refcount(k) == 1 && om_weaktable_len(t) == 1);
    CHECK(vcontains(t, "alpha") == 0 && vget(t, "alpha") == NULL);
    CHECK(vdel(t, "alpha") == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_weakvaluedict_del", "not found"));
    CHECK(vget(t, "beta") == v2);
    om_decref(v2);

    om_decref(k);
    om_decref(v1);
    om_decref(v2);
    /* v2 died: "beta" vanished. */
    CHECK(om_weaktable_len(t) == 0 && vcontains(t, "beta") == 0);
    om_decref(t);
    finish(rt);
}

static void valuedict_entry_dies_with_value(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakvaluedict_new(rt);
    om_object *k = om_str_new(rt, "k"), *k2 = om_str_new(rt, "cyc");
    om_object *v = wnew(rt, 7);
    CHECK(om_weakvaluedict_set(t, k, v) == OM_OK);
    CHECK(om_refcount(k) == 2);
    /* By refcount: the entry is removed at once, releasing the key. */
    om_decref(v);
    CHECK(om_refcount(k) == 1);
    CHECK(om_weaktable_len(t) == 0 && om_weaktable_contains(t, k) == 0);
    CHECK(om_weakvaluedict_get(t, k) == NULL);
    CHECK(om_weakvaluedict_del(t, k) == OM_ERR_KEY);
    CHECK(iter_count(t) == 0);

    /* By a collection: a value in a cycle of two. */
    om_object *a = wnew(rt, 8), *b = wnew(rt, 9);
    wset_slot(a, b);
    wset_slot(b, a);
    CHECK(om_weakvaluedict_set(t, k2, a) == OM_OK);
    CHECK(om_weakvaluedict_set(t, k, b) == OM_OK);
    om_decref(a);
    om_decref(b);
    CHECK(om_weaktable_len(t) == 2); /* garbage not collected yet */
    CHECK(om_gc_collect(rt, 2) >= 2);
    CHECK(om_weaktable_len(t) == 0);
    CHECK(om_weaktable_contains(t, k) == 0 && om_weaktable_contains(t, k2) == 0);
    CHECK(om_refcount(k) == 1 && om_refcount(k2) == 1);
    CHECK(iter_count(t) == 0);
    om_decref(k);
    om_decref(k2);
    om_decref(t);
    finish(rt);
}

/* CPython's _remove_dead_weakref: the death of a replaced value does not
 * remove the entry that now holds another. */
static void valuedict_replaced_value_dies(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakvaluedict_new(rt);
    om_object *v1 = wnew(rt, 1), *v2 = wnew(rt, 2), *v3 = wnew(rt, 3);
    CHECK(vset(t, "k", v1) == OM_OK);
    /* The user keeps the table's ref to v1 alive across the replacement. */
    om_object *r1 = table_ref_of(v1);
    CHECK(r1 != NULL);
    CHECK(vset(t, "k", v2) == OM_OK);
    om_decref(v1);
    CHECK(!om_weakref_alive(r1));
    CHECK(om_weaktable_len(t) == 1 && vcontains(t, "k") == 1);
    om_object *got = vget(t, "k");
    CHECK(got == v2);
    om_decref(got);
    om_decref(r1);

    /* Same with a deleted entry: a later one under the same key stays. */
    om_object *r2 = table_ref_of(v2);
    CHECK(vdel(t, "k") == OM_OK);
    CHECK(vset(t, "k", v3) == OM_OK);
    om_decref(v2);
    CHECK(!om_weakref_alive(r2));
    CHECK(om_weaktable_len(t) == 1 && vget(t, "k") == v3);
    om_decref(v3);
    om_decref(r2);

    /* Same when the replaced value dies in a collection. */
    om_object *c = wnew(rt, 4), *d = wnew(rt, 5);
    wset_slot(c, c);
    CHECK(vset(t, "cyc", c) == OM_OK);
    CHECK(vset(t, "cyc", d) == OM_OK);
    om_decref(c);
    CHECK(om_gc_collect(rt, 2) >= 1);
    CHECK(om_weaktable_len(t) == 2 && vget(t, "cyc") == d);
    om_decref(d);
    om_decref(d);
    om_decref(v3);
    CHECK(om_weaktable_len(t) == 0);
    om_decref(t);
    finish(rt);
}

/* ---- key dicts and sets -------------------------------------------------- */

static void keydict_basics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakkeydict_new(rt);
    CHECK(t && om_weaktable_len(t) == 0 && om_gc_is_tracked(t));
    om_object *a1 = wnew(rt, 5), *a2 = wnew(rt, 5), *b = wnew(rt, 6);
    om_object *x = om_int_new(rt, 100), *y = om_int_new(rt, 200);

    om_clear_error(rt);
    CHECK(om_weakkeydict_get(t, a1) == NULL && om_weaktable_contains(t, a1) == 0);
    CHECK(om_last_status(rt) == OM_OK);

    CHECK(om_weakkeydict_set(t, a1, x) == OM_OK);
    /* The key is held weakly, the value strongly. */
    CHECK(om_refcount(a1) == 1 && om_refcount(x) == 2);
    CHECK(om_weaktable_len(t) == 1);
    /* An equal, distinct key finds the entry. */
    om_object *got = om_weakkeydict_get(t, a2);
    CHECK(got == x && om_refcount(x) == 3);
    om_decref(got);
    CHECK(om_weaktable_contains(t, a2) == 1 && om_weaktable_contains(t, b) == 0);
    CHECK(om_weakkeydict_get(t, b) == NULL);

    /* Setting through the equal key replaces the value, keeps key a1. */
    CHECK(om_weakkeydict_set(t, a2, y) == OM_OK);
    CHECK(om_weaktable_len(t) == 1 && om_refcount(x) == 1 && om_refcount(y) == 2);
    CHECK(om_weakref_count(a1) == 1 && om_weakref_count(a2) == 0);
    om_weaktable_iter it;
    om_object *ik = NULL, *iv = NULL;
    CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 1 && ik == a1 && iv == y);
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 0);
    om_weaktable_iter_end(&it);

    /* a2 dying changes nothing; a1 dying removes the entry even though an
     * equal key lives (CPython: the entry is ref(a1)). */
    CHECK(om_weakkeydict_set(t, b, x) == OM_OK);
    om_object *a3 = wnew(rt, 5);
    om_decref(a2);
    CHECK(om_weaktable_len(t) == 2 && om_weaktable_contains(t, a3) == 1);
    om_decref(a1);
    CHECK(om_weaktable_len(t) == 1 && om_weaktable_contains(t, a3) == 0);
    CHECK(om_weakkeydict_get(t, a3) == NULL);
    CHECK(om_refcount(y) == 1); /* the value was released */

    /* Re-adding through a3 makes a new entry keyed by a3. */
    CHECK(om_weakkeydict_set(t, a3, y) == OM_OK);
    CHECK(om_weaktable_len(t) == 2 && om_weakref_count(a3) == 1);

    /* del through an equal key; del of a missing key. */
    om_object *b2 = wnew(rt, 6);
    CHECK(om_weakkeydict_del(t, b2) == OM_OK);
    CHECK(om_refcount(x) == 1 && om_weakref_count(b) == 0);
    CHECK(om_weakkeydict_del(t, b2) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_weakkeydict_del", "not found"));
    CHECK(om_weaktable_len(t) == 1);

    /* Identity keys: distinct objects are distinct keys. */
    om_object *i1 = om_new(rt, &wid_type), *i2 = om_new(rt, &wid_type);
    CHECK(om_weakkeydict_set(t, i1, x) == OM_OK);
    CHECK(om_weakkeydict_set(t, i2, y) == OM_OK);
    CHECK(om_weaktable_len(t) == 3);
    CHECK(om_weakkeydict_get(t, i1) == x && om_weakkeydict_get(t, i2) == y);
    om_decref(x);
    om_decref(y);
    om_decref(i1);
    CHECK(om_weaktable_len(t) == 2 && om_weaktable_contains(t, i2) == 1);

    /* A key dying in a collection. */
    wset_slot(i2, i2);
    om_decref(i2);
    CHECK(om_weaktable_len(t) == 2);
    CHECK(om_gc_collect(rt, 2) >= 1);
    CHECK(om_weaktable_len(t) == 1);
    CHECK(om_refcount(y) == 2); /* a3's entry still holds y */

    om_decref(a3);
    CHECK(om_weaktable_len(t) == 0 && om_refcount(y) == 1);
    om_decref(b);
    om_decref(b2);
    om_decref(x);
    om_decref(y);
    om_decref(t);
    finish(rt);
}

static void weakset_basics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *s = om_weakset_new(rt);
    CHECK(s && om_weaktable_len(s) == 0 && om_gc_is_tracked(s));
    om_object *a1 = wnew(rt, 1), *a2 = wnew(rt, 1), *b = wnew(rt, 2);
    CHECK(om_weaktable_contains(s, a1) == 0);
    CHECK(om_weakset_add(s, a1) == OM_OK);
    CHECK(om_refcount(a1) == 1 && om_weaktable_len(s) == 1);
    CHECK(om_weaktable_contains(s, a2) == 1 && om_weaktable_contains(s, b) == 0);
    /* Adding an equal item is a no-op: the set keeps a1. */
    CHECK(om_weakset_add(s, a2) == OM_OK);
    CHECK(om_weakset_add(s, a1) == OM_OK);
    CHECK(om_weaktable_len(s) == 1 && om_weakref_count(a2) == 0);
    CHECK(om_weakref_count(a1) == 1);
    om_weaktable_iter it;
    om_object *ik = NULL, *iv = (om_object *)&it;
    CHECK(om_weaktable_iter_begin(s, &it) == OM_OK);
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 1);
    CHECK(ik == a1 && iv == NULL); /* a set yields no value */
    CHECK(om_weaktable_iter_next(&it, &ik, &iv) == 0);
    om_weaktable_iter_end(&it);

    CHECK(om_weakset_add(s, b) == OM_OK && om_weaktable_len(s) == 2);
    om_decref(a2);
    CHECK(om_weaktable_len(s) == 2);
    om_decref(a1);
    CHECK(om_weaktable_len(s) == 1);
    om_object *a3 = wnew(rt, 1);
    CHECK(om_weaktable_contains(s, a3) == 0);

    /* discard through an equal item; discard of a missing one. */
    om_object *b2 = wnew(rt, 2);
    CHECK(om_weakset_discard(s, b2) == OM_OK);
    CHECK(om_weaktable_len(s) == 0 && om_weakref_count(b) == 0);
    CHECK(om_weakset_discard(s, b2) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_weakset_discard", "not found"));

    /* Death in a collection. */
    wset_slot(a3, a3);
    CHECK(om_weakset_add(s, a3) == OM_OK && om_weaktable_len(s) == 1);
    om_decref(a3);
    CHECK(om_gc_collect(rt, 2) >= 1);
    CHECK(om_weaktable_len(s) == 0 && iter_count(s) == 0);
    om_decref(b);
    om_decref(b2);
    om_decref(s);
    finish(rt);
}

/* ---- errors -------------------------------------------------------------- */

static void argument_errors(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *vd = om_weakvaluedict_new(rt), *kd = om_weakkeydict_new(rt);
    om_object *ws = om_weakset_new(rt), *d = om_dict_new(rt);
    om_object *w = wnew(rt, 1), *str = om_str_new(rt, "s");

    CHECK(om_weakvaluedict_new(NULL) == NULL);
    CHECK(om_weakkeydict_new(NULL) == NULL);
    CHECK(om_weakset_new(NULL) == NULL);

    /* NULL table. */
    CHECK(om_weakvaluedict_set(NULL, str, w) == OM_ERR_ARG);
    CHECK(om_weakvaluedict_get(NULL, str) == NULL);
    CHECK(om_weakvaluedict_del(NULL, str) == OM_ERR_ARG);
    CHECK(om_weakkeydict_set(NULL, w, str) == OM_ERR_ARG);
    CHECK(om_weakkeydict_get(NULL, w) == NULL);
    CHECK(om_weakkeydict_del(NULL, w) == OM_ERR_ARG);
    CHECK(om_weakset_add(NULL, w) == OM_ERR_ARG);
    CHECK(om_weakset_discard(NULL, w) == OM_ERR_ARG);
    CHECK(om_weaktable_contains(NULL, w) == OM_ERR_ARG);
    CHECK(om_weaktable_len(NULL) == 0);
    om_weaktable_iter it;
    CHECK(om_weaktable_iter_begin(NULL, &it) == OM_ERR_ARG);
    CHECK(om_weaktable_iter_begin(vd, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weaktable_iter_begin", "NULL"));
    CHECK(om_refcount(vd) == 1);

    /* NULL key / value / item. */
    CHECK(om_weakvaluedict_set(vd, NULL, w) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakvaluedict_set", "key"));
    CHECK(om_weakvaluedict_set(vd, str, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakvaluedict_set", "value"));
    om_clear_error(rt);
    CHECK(om_weakvaluedict_get(vd, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakvaluedict_get", "key"));
    CHECK(om_weakvaluedict_del(vd, NULL) == OM_ERR_ARG);
    CHECK(om_weakkeydict_set(kd, NULL, str) == OM_ERR_ARG);
    CHECK(om_weakkeydict_set(kd, w, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakkeydict_set", "value"));
    om_clear_error(rt);
    CHECK(om_weakkeydict_get(kd, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakkeydict_get", "key"));
    CHECK(om_weakkeydict_del(kd, NULL) == OM_ERR_ARG);
    CHECK(om_weakset_add(ws, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakset_add", "item"));
    CHECK(om_weakset_discard(ws, NULL) == OM_ERR_ARG);
    CHECK(om_weaktable_contains(ws, NULL) == OM_ERR_ARG);
    CHECK(om_weaktable_len(vd) == 0 && om_weaktable_len(kd) == 0 &&
          om_weaktable_len(ws) == 0);

    /* Wrong kind of table, or not a table. */
    CHECK(om_weakvaluedict_set(kd, str, w) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakvaluedict_set", "weakkeydict"));
    CHECK(om_weakvaluedict_get(ws, str) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakvaluedict_get", "weakset"));
    CHECK(om_weakvaluedict_del(d, str) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakvaluedict_del", "'dict'"));
    CHECK(om_weakkeydict_set(vd, w, str) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakkeydict_set", "weakvaluedict"));
    CHECK(om_weakkeydict_get(ws, w) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakkeydict_get", NULL));
    CHECK(om_weakkeydict_del(ws, w) == OM_ERR_TYPE);
    CHECK(om_weakset_add(kd, w) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakset_add", "weakkeydict"));
    CHECK(om_weakset_discard(vd, w) == OM_ERR_TYPE);
    CHECK(om_weaktable_contains(d, w) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weaktable_contains", "'dict'"));
    CHECK(om_weaktable_contains(str, w) == OM_ERR_TYPE);
    om_clear_error(rt);
    CHECK(om_weaktable_len(d) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weaktable_len", "'dict'"));
    CHECK(om_weaktable_iter_begin(d, &it) == OM_ERR_TYPE);
    CHECK(om_refcount(d) == 1);
    /* next/end on an iterator that never began (zeroed) do nothing. */
    memset(&it, 0, sizeof it);
    CHECK(om_weaktable_iter_next(&it, NULL, NULL) == 0);
    om_weaktable_iter_end(&it);
    CHECK(om_weaktable_iter_next(NULL, NULL, NULL) == 0);
    om_weaktable_iter_end(NULL);

    /* Weakly held objects must be weakly referenceable; the message names
     * the type, as CPython's TypeError does. */
    CHECK(om_weakvaluedict_set(vd, w, str) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakvaluedict_set", "'str'"));
    CHECK(om_weakkeydict_set(kd, str, w) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakkeydict_set", "'str'"));
    CHECK(om_weakset_add(ws, str) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakset_add", "'str'"));
    om_object *dd = om_dict_new(rt);
    CHECK(om_weakset_add(ws, dd) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakset_add", "'dict'"));
    om_decref(dd);
    /* A key of a value dict need not be weakly referenceable, nor a value
     * of a key dict. */
    CHECK(om_weakvaluedict_set(vd, str, w) == OM_OK);
    CHECK(om_weakkeydict_set(kd, w, str) == OM_OK);
    /* CPython's `x in weakset` / `x in weakkeydict` is False for an object
     * that cannot be weakly referenced. */
    CHECK(om_weaktable_contains(ws, str) == 0);
    CHECK(om_weaktable_contains(kd, str) == 0);
    /* Nothing changed by the failures. */
    CHECK(om_weaktable_len(vd) == 1 && om_weaktable_len(kd) == 1 &&
          om_weaktable_len(ws) == 0);
    CHECK(om_refcount(str) == 3 && om_weakref_count(w) == 2);

    om_decref(w);
    CHECK(om_weaktable_len(vd) == 0 && om_weaktable_len(kd) == 0);
    CHECK(om_refcount(str) == 1);
    om_decref(str);
    om_decref(d);
    om_decref(vd);
    om_decref(kd);
    om_decref(ws);
    finish(rt);
}

/* ---- iteration ----------------------------------------------------------- */

/* Value dict: values die inside the loop; removal waits for end. */
static void iterate_valuedict_with_deaths(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakvaluedict_new(rt);
    enum { N = 10 };
    om_object *keys[N], *vals[N];
    for (int i = 0; i < N; i++) {
        char name[8];
        snprintf(name, sizeof name, "k%d", i);
        keys[i] = om_str_new(rt, name);
        vals[i] = wnew(rt, i);
        CHECK(om_weakvaluedict_set(t, keys[i], vals[i]) == OM_OK);
    }
    om_weaktable_iter it;
    CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
    CHECK(om_refcount(t) == 2); /* the iterator holds the table */
    bool seen[N] = {false};
    size_t yielded = 0, dead = 0;
    om_object *k, *v;
    while (om_weaktable_iter_next(&it, &k, &v)) {
        int i = (int)wval(v);
        CHECK(i >= 0 && i < N && !seen[i] && k == keys[i] && v == vals[i]);
        if (i < 0 || i >= N)
            break;
        seen[i] = true;
        yielded++;
        if (i % 3 == 0 && i + 1 < N && vals[i + 1]) {
            /* Kill the next entry's value: it must be skipped. */
            om_decref(vals[i + 1]);
            vals[i + 1] = NULL;
            dead++;
        }
        if (i % 3 == 2) {
            /* Drop our reference to the yielded value: the iterator's keeps
             * it alive and usable until the next call. */
            om_decref(vals[i]);
            vals[i] = NULL;
            dead++;
            CHECK(om_refcount(v) == 1 && wval(v) == i);
            CHECK(om_weaktable_contains(t, keys[i]) == 1);
        }
        /* len counts live entries only, even before the removals (the
         * yielded value lives until the next call). */
        CHECK(om_weaktable_len(t) == N - dead + (i % 3 == 2));
    }
    for (int i = 0; i < N; i++)
        CHECK(seen[i] == (i % 3 != 1));
    /* The dead entries are not removed yet: their keys are still held. */
    for (int i = 0; i < N; i++)
        CHECK(om_refcount(keys[i]) == 2);
    CHECK(om_weaktable_len(t) == N - dead);
    om_weaktable_iter_end(&it);
    CHECK(om_refcount(t) == 1);
    for (int i = 0; i < N; i++) {
        CHECK(om_refcount(keys[i]) == (vals[i] ? 2u : 1u));
        CHECK(om_weaktable_contains(t, keys[i]) == (vals[i] != NULL));
    }
    CHECK(om_weaktable_len(t) == N - dead && iter_count(t) == N - dead);
    CHECK(yielded == N - (N / 3));
    for (int i = 0; i < N; i++) {
        om_decref(keys[i]);
        om_decref(vals[i]);
    }
    om_decref(t);
    finish(rt);
}

/* Key dict and set: keys die inside the loop (by refcount and by a
 * collection run inside it); values stay held until end. */
static void iterate_weak_keys_with_deaths(void) {
    for (int kind = 0; kind < 2; kind++) {
        om_runtime *rt = om_runtime_new(NULL);
        om_object *t = kind ? om_weakset_new(rt) : om_weakkeydict_new(rt);
        enum { N = 12 };
        om_object *keys[N], *vals[N];
        for (int i = 0; i < N; i++) {
            keys[i] = wnew(rt, i);
            vals[i] = om_int_new(rt, 10 * i);
            if (i % 4 == 3)
                wset_slot(keys[i], keys[i]); /* dies only in a collection */
            CHECK((kind ? om_weakset_add(t, keys[i])
                        : om_weakkeydict_set(t, keys[i], vals[i])) == OM_OK);
        }
        om_weaktable_iter it;
        CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
        om_object *k, *v;
        int expect = 0;
        size_t live = N;
        while (om_weaktable_iter_next(&it, &k, &v)) {
            int i = (int)wval(k);
            CHECK(i == expect && k == keys[i]);
            CHECK(kind ? v == NULL : v == vals[i]);
            if (i != expect)
                break;
            expect = i + 1;
            if (i % 4 == 0) {
                /* i+1 dies by refcount, i+3 (a cycle) in a collection. */
                om_decref(keys[i + 1]);
                om_decref(keys[i + 3]);
                keys[i + 1] = keys[i + 3] = NULL;
                CHECK(om_gc_collect(rt, 2) >= 1);
                live -= 2;
                expect = i + 2;
            } else if (i % 4 == 2) {
                /* Drop our only reference to the yielded key and use it. */
                om_decref(keys[i]);
                keys[i] = NULL;
                CHECK(wval(k) == i && om_refcount(k) == 1);
                live--;
                expect = i + 2;
            }
            CHECK(om_weaktable_len(t) == live + (i % 4 == 2));
        }
        CHECK(expect == N);
        if (!kind) /* dead entries still hold their values */
            for (int i = 0; i < N; i++)
                CHECK(om_refcount(vals[i]) == 2);
        om_weaktable_iter_end(&it);
        CHECK(om_weaktable_len(t) == live && live == N / 4);
        for (int i = 0; i < N; i++) {
            if (!kind)
                CHECK(om_refcount(vals[i]) == (keys[i] ? 2u : 1u));
            if (keys[i])
                CHECK(om_weaktable_contains(t, keys[i]) == 1);
            om_decref(keys[i]);
        }
        CHECK(om_weaktable_len(t) == 0);
        for (int i = 0; i < N; i++)
            om_decref(vals[i]);
        om_decref(t);
        finish(rt);
    }
}

/* Two iterations at once: removals wait for the last to end. */
static void nested_iterations(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakkeydict_new(rt);
    enum { N = 6 };
    om_object *keys[N], *val = om_str_new(rt, "v");
    for (int i = 0; i < N; i++) {
        keys[i] = wnew(rt, i);
        CHECK(om_weakkeydict_set(t, keys[i], val) == OM_OK);
    }
    om_weaktable_iter outer, inner;
    CHECK(om_weaktable_iter_begin(t, &outer) == OM_OK);
    om_object *k, *ik;
    size_t outer_n = 0, live = N;
    while (om_weaktable_iter_next(&outer, &k, NULL)) {
        outer_n++;
        CHECK(om_weaktable_iter_begin(t, &inner) == OM_OK);
        size_t inner_n = 0;
        while (om_weaktable_iter_next(&inner, &ik, NULL)) {
            inner_n++;
            int j = (int)wval(ik);
            /* The inner loop kills the last live key that is not the outer
             * loop's current one, once per outer step. */
            if (inner_n == 1) {
                for (int m = N - 1; m >= 0; m--) {
                    if (keys[m] && keys[m] != k && keys[m] != ik) {
                        om_decref(keys[m]);
                        keys[m] = NULL;
                        live--;
                        break;
                    }
                }
            }
            CHECK(keys[j] != NULL || ik != keys[j]);
        }
        CHECK(inner_n == live + 1 || inner_n == live);
        om_weaktable_iter_end(&inner);
        /* The outer iteration still runs: nothing removed (every entry
         * holds val, and so do we and the outer iterator). */
        CHECK(om_refcount(val) == N + 2);
        CHECK(om_weaktable_len(t) == live);
    }
    om_weaktable_iter_end(&outer);
    CHECK(om_refcount(val) == live + 1);
    CHECK(om_weaktable_len(t) == live && iter_count(t) == live);
    CHECK(outer_n >= 1 && live >= 1);
    for (int i = 0; i < N; i++)
        om_decref(keys[i]);
    CHECK(om_refcount(val) == 1);
    om_decref(val);
    om_decref(t);
    finish(rt);
}

/* Deleting (and adding, and replacing) during an iteration. */
static void mutate_while_iterating(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *vd = om_weakvaluedict_new(rt), *ws = om_weakset_new(rt);
    enum { N = 8 };
    om_object *objs[N];
    char name[8];
    for (int i = 0; i < N; i++) {
        objs[i] = wnew(rt, i);
        snprintf(name, sizeof name, "k%d", i);
        CHECK(vset(vd, name, objs[i]) == OM_OK);
        CHECK(om_weakset_add(ws, objs[i]) == OM_OK);
    }
    om_weaktable_iter it;
    om_object *k, *v;
    /* Value dict: delete the current entry and the next one; replace a
     * later one's value by a dying object. */
    CHECK(om_weaktable_iter_begin(vd, &it) == OM_OK);
    int seen = 0;
    om_object *tmp = wnew(rt, 99);
    while (om_weaktable_iter_next(&it, &k, &v)) {
        int i = (int)wval(v);
        seen++;
        if (i == 0 && seen == 1) {
            CHECK(vdel(vd, "k0") == OM_OK);
            CHECK(vdel(vd, "k1") == OM_OK);
            CHECK(vdel(vd, "k1") == OM_ERR_KEY);
            /* k and v stay usable (the iterator holds them). */
            CHECK(om_str_len(k) == 2 && wval(v) == 0);
            CHECK(vset(vd, "k5", tmp) == OM_OK);
            CHECK(vset(vd, "new", objs[0]) == OM_OK); /* add: allowed */
        }
        CHECK(i != 1);
        if (i == 0 && seen > 1) /* "new", added during the loop, seen */
            CHECK(strcmp(om_str_data(k), "new") == 0);
        if (i == 99) {
            CHECK(strcmp(om_str_data(k), "k5") == 0);
        }
        if (i == 3) {
            om_decref(tmp); /* k5's new value dies: skipped if not reached */
            tmp = NULL;
        }
    }
    om_weaktable_iter_end(&it);
    CHECK(seen >= N - 2);
    om_decref(tmp);
    CHECK(om_weaktable_len(vd) == N - 2); /* k2..k4, k6, k7, new */
    CHECK(vcontains(vd, "k5") == 0 && vcontains(vd, "new") == 1);
    /* k5's old value dying changes nothing now. */
    om_decref(objs[5]);
    objs[5] = NULL;
    CHECK(om_weaktable_len(vd) == N - 2);

    /* Set: discard every item while iterating. */
    CHECK(om_weaktable_iter_begin(ws, &it) == OM_OK);
    seen = 0;
    while (om_weaktable_iter_next(&it, &k, NULL)) {
        seen++;
        CHECK(om_weakset_discard(ws, k) == OM_OK);
        CHECK(om_weaktable_contains(ws, k) == 0);
    }
    om_weaktable_iter_end(&it);
    CHECK(seen == N - 1 && om_weaktable_len(ws) == 0);
    for (int i = 0; i < N; i++)
        om_decref(objs[i]);
    CHECK(om_weaktable_len(vd) == 0);
    om_decref(vd);
    om_decref(ws);
    finish(rt);
}

/* The iterator keeps the table alive, and a table dying during a deferred
 * purge is fine. */
static void iterator_keeps_table(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *t = om_weakvaluedict_new(rt);
    om_object *v = wnew(rt, 1), *w = wnew(rt, 2);
    CHECK(vset(t, "a", v) == OM_OK && vset(t, "b", w) == OM_OK);
    om_weaktable_iter it;
    CHECK(om_weaktable_iter_begin(t, &it) == OM_OK);
    om_decref(t); /* the iterator's reference remains */
    om_object *k, *val;
    int n = 0;
    while (om_weaktable_iter_next(&it, &k, &val)) {
        n++;
        om_decref(w);
        w = NULL;
    }
    CHECK(n == 1);
    om_weaktable_iter_end(&it); /* purges, then frees the table */
    CHECK(om_weakref_count(v) == 0);
    om_decref(v);
    finish(rt);
}

/* ---- the table dying first ----------------------------------------------- */

static om_object *new_kind(om_runtime *rt, int kind) {
    return kind == 0   ? om_weakvaluedict_new(rt)
           : kind == 1 ? om_weakkeydict_new(rt)
                       : om_weakset_new(rt);
}

/* Make obj the weakly held side of an entry named n. */
static om_status put(om_object *t, int kind, int n, om_object *obj) {
    om_runtime *rt = om_runtime_of(t);
    om_status st;
    if (kind == 0) {
        om_object *k = om_int_new(rt, n);
        st = om_weakvaluedict_set(t, k, obj);
        om_decref(k);
    } else if (kind == 1) {
        om_object *v = om_int_new(rt, n);
        st = om_weakkeydict_set(t, obj, v);
        om_decref(v);
    } else {
        st = om_weakset_add(t, obj);
    }
    return st;
}

static om_status take(om_object *t, int kind, int n, om_object *obj) {
    if (kind == 0) {
        om_object *k = om_int_new(om_runtime_of(t), n);
        om_status st = om_weakvaluedict_del(t, k);
        om_decref(k);
        return st;
    }
    return kind == 1 ? om_weakkeydict_del(t, obj) : om_weakset_discard(t, obj);
}

static void table_dies_first(void) {
    for (int kind = 0; kind < 3; kind++) {
        om_runtime *rt = om_runtime_new(NULL);
        om_object *t = new_kind(rt, kind);
        enum { N = 5 };
        om_object *objs[N];
        for (int i = 0; i < N; i++) {
            objs[i] = wnew(rt, i);
            if (i == 4)
                wset_slot(objs[i], objs[i]);
            CHECK(put(t, kind, i, objs[i]) == OM_OK);
        }
        /* The user keeps the table's refs to objs[0] and objs[4]. */
        om_object *r0 = table_ref_of(objs[0]), *r4 = table_ref_of(objs[4]);
        CHECK(r0 && r4 && om_weakref_alive(r0));
        om_decref(t);
        CHECK(((om_weakref *)r0)->callback == NULL &&
              ((om_weakref *)r4)->data == NULL);
        /* The other refs died with the table. */
        CHECK(om_weakref_count(objs[1]) == 0 && om_weakref_count(objs[0]) == 1);
        CHECK(om_object_count(rt) == N + 2);
        /* Now the objects die: nothing may call into the dead table. */
        om_decref(objs[0]);
        CHECK(!om_weakref_alive(r0));
        for (int i = 1; i < N; i++)
            om_decref(objs[i]);
        CHECK(om_gc_collect(rt, 2) == 1);
        CHECK(!om_weakref_alive(r4));
        om_decref(r0);
        om_decref(r4);
        finish(rt);
    }
}

/* The user holds a table's ref after its entry was deleted or replaced. */
static void stale_refs_held_by_user(void) {
    for (int kind = 0; kind < 3; kind++) {
        om_runtime *rt = om_runtime_new(NULL);
        om_object *t = new_kind(rt, kind);
        om_object *a = wnew(rt, 1), *b = wnew(rt, 2), *c = wnew(rt, 3);
        CHECK(put(t, kind, 1, a) == OM_OK && put(t, kind, 2, b) == OM_OK);
        om_object *ra = table_ref_of(a), *rb = table_ref_of(b);
        CHECK(ra && rb);
        CHECK(take(t, kind, 1, a) == OM_OK);
        /* Entry 1 again, for another object (a value dict's same key). */
        CHECK(put(t, kind, 1, c) == OM_OK);
        if (kind == 0)
            CHECK(put(t, kind, 2, c) == OM_OK); /* replaces b */
        CHECK(om_weaktable_len(t) == 2);
        om_decref(a);
        om_decref(b);
        CHECK(!om_weakref_alive(ra) && !om_weakref_alive(rb));
        CHECK(om_weaktable_len(t) == (kind == 0 ? 2u : 1u));
        CHECK(om_weaktable_contains(t, c) == (kind != 0));
        om_decref(c);
        CHECK(om_weaktable_len(t) == 0);
        om_decref(ra);
        om_decref(rb);
        om_decref(t);
        finish(rt);
    }
}

/* ---- tables in garbage cycles -------------------------------------------- */

/* kind 0: value dict T whose key U holds T (T -> U -> T); kind 1: key dict
 * whose key U holds T and is its own value (T -> U -> T); kind 2: set whose
 * item U holds T (through a list) and is in a cycle with W.  Another object X, alive outside,
 * is weakly held too, and the user may hold the table's ref to X. */
static void table_in_garbage_cycle(void) {
    for (int kind = 0; kind < 3; kind++) {
        for (int hold = 0; hold < 4; hold++) {
            om_runtime *rt = om_runtime_new(NULL);
            /* With a dict made first, the pool of the table's internal
             * dict comes before the table's in the collector's walk, and
             * the collector clears that dict before the table. */
            om_object *first = hold & 2 ? om_dict_new(rt) : NULL;
            om_object *t = new_kind(rt, kind);
            om_object *u = wnew(rt, 1), *x = wnew(rt, 2), *w = NULL;
            wset_slot(u, t);
            om_status st = OM_OK;
            if (kind == 0) {
                st = om_weakvaluedict_set(t, u, x);
            } else if (kind == 1) {
                st = om_weakkeydict_set(t, u, u);
                if (st == OM_OK)
                    st = om_weakkeydict_set(t, x, u);
            } else {
                /* u -> [t, w], w -> u. */
                w = wnew(rt, 3);
                wset_slot(w, u);
                om_object *l = om_list_new(rt);
                CHECK(om_list_append(l, t) == OM_OK);
                CHECK(om_list_append(l, w) == OM_OK);
                wset_slot(u, l);
                om_decref(l);
                om_decref(w);
                st = om_weakset_add(t, u);
                if (st == OM_OK)
                    st = om_weakset_add(t, x);
            }
            CHECK(st == OM_OK);
            om_object *rx = hold & 1 ? table_ref_of(x) : NULL;
            CHECK(!(hold & 1) || rx);
            om_decref(u);
            om_decref(t);
            CHECK(om_weakref_alive(rx) || !(hold & 1));
            CHECK(om_gc_collect(rt, 2) >= 2);
            CHECK(om_check(rt) == OM_OK);
            /* Only x (and the user's ref) remain. */
            CHECK(om_object_count(rt) == 1u + (hold & 1) + !!first);
            CHECK(om_weakref_count(x) == (hold & 1 ? 1u : 0u));
            /* The table let go of the ref it no longer holds: its callback
             * must not name the freed table (internal.h's invariant). */
            CHECK(!rx || (((om_weakref *)rx)->callback == NULL &&
                          ((om_weakref *)rx)->data == NULL));
            om_clear_error(rt);
            om_decref(x); /* no call into the freed table */
            CHECK(om_last_status(rt) == OM_OK);
            CHECK(!(hold & 1) || !om_weakref_alive(rx));
            om_decref(rx);
            om_decref(first);
            finish(rt);
        }
    }
}

/* ---- randomised comparison with a model ---------------------------------- */

/* Objects the churn made: `strong` is the test's own reference (NULL once
 * dropped), `wref` a plain weak reference of the test's, the oracle of
 * whether the object lives (the weakref module's own tests vouch for it);
 * `ptr` identifies the object while it lives. */
typedef struct rec {
    om_object *ptr, *strong, *wref;
    bool cyclic;
} rec;

enum { CH_POOL = 24, CH_KEYS = 10, CH_OPS = 4000 };

typedef struct churn {
    om_runtime *rt;
    om_object *t;
    int kind;                  /* 0 value dict, 1 key dict, 2 set */
    rec *recs;
    size_t nrecs, cap;
    int pool[CH_POOL];         /* recs held strongly, or -1 */
    int ent[CH_KEYS];          /* entry per key class: rec of the weakly
                                  held object, or -1 */
    int64_t val[CH_KEYS];      /* key dicts: the entry's value */
    int64_t serial;
} churn;

static int rnd(int n) { return (int)(th_random() % (uint64_t)n); }

static bool rec_alive(const churn *c, int r) {
    return r >= 0 && om_weakref_alive(c->recs[r].wref);
}

/* Entries whose object died leave the model. */
static size_t model_sync(churn *c) {
    size_t live = 0;
    for (int k = 0; k < CH_KEYS; k++) {
        if (c->ent[k] >= 0 && !rec_alive(c, c->ent[k]))
            c->ent[k] = -1;
        live += c->ent[k] >= 0;
    }
    return live;
}

/* The key class of a weakly held key (key dicts, sets). */
static int key_class(const om_object *o) { return (int)(wval(o) % CH_KEYS); }

static om_object *class_str(churn *c, int k) {
    char name[16];
    snprintf(name, sizeof name, "k%d", k);
    return om_str_new(c->rt, name);
}

static void churn_new_object(churn *c) {
    int slot = rnd(CH_POOL);
    if (c->pool[slot] >= 0) {
        rec *r = &c->recs[c->pool[slot]];
        om_object *o = r->strong;
        r->strong = NULL;
        om_decref(o);
        if (!r->cyclic)
            CHECK(!om_weakref_alive(r->wref));
    }
    if (c->nrecs == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
        CHECK(c->recs != NULL);
    }
    /* Weak keys of one class are equal (hash/eq by val). */
    int64_t serial = c->serial++;
    om_object *o = wnew(c->rt, c->kind == 0 ? serial : serial % CH_KEYS);
    rec *r = &c->recs[c->nrecs];
    r->ptr = r->strong = o;
    r->wref = om_weakref_new(o, NULL, NULL);
    CHECK(r->wref != NULL);
    r->cyclic = rnd(3) == 0;
    if (r->cyclic)
        wset_slot(o, o);
    c->pool[slot] = (int)c->nrecs++;
}

static void churn_drop_object(churn *c) {
    int slot = rnd(CH_POOL);
    if (c->pool[slot] < 0)
        return;
    rec *r = &c->recs[c->pool[slot]];
    om_object *o = r->strong;
    r->strong = NULL;
    c->pool[slot] = -1;
    om_decref(o);
}

/* A pool object, or NULL. */
static om_object *churn_pick(churn *c, int *recno) {
    int slot = rnd(CH_POOL);
    *recno = c->pool[slot];
    return *recno >= 0 ? c->recs[*recno].strong : NULL;
}

static void churn_set(churn *c) {
    int r;
    om_object *o = churn_pick(c, &r);
    if (!o)
        return;
    if (c->kind == 0) {
        int k = rnd(CH_KEYS);
        om_object *key = class_str(c, k);
        CHECK(om_weakvaluedict_set(c->t, key, o) == OM_OK);
        om_decref(key);
        model_sync(c); /* the set may have run a collection */
        c->ent[k] = r;
        return;
    }
    int k = key_class(o);
    int64_t n = rnd(1000);
    om_status st;
    if (c->kind == 1) {
        om_object *v = om_int_new(c->rt, n);
        st = om_weakkeydict_set(c->t, o, v);
        om_decref(v);
    } else {
        st = om_weakset_add(c->t, o);
    }
    CHECK(st == OM_OK);
    model_sync(c);
    if (c->ent[k] < 0)
        c->ent[k] = r; /* else the entry keeps its first key */
    c->val[k] = n;
}

static void churn_del(churn *c) {
    model_sync(c);
    om_status st;
    int k;
    if (c->kind == 0) {
        k = rnd(CH_KEYS);
        om_object *key = class_str(c, k);
        st = om_weakvaluedict_del(c->t, key);
        om_decref(key);
    } else {
        int r;
        om_object *o = churn_pick(c, &r);
        if (!o)
            return;
        k = key_class(o);
        st = c->kind == 1 ? om_weakkeydict_del(c->t, o)
                          : om_weakset_discard(c->t, o);
    }
    CHECK(st == (c->ent[k] >= 0 ? OM_OK : OM_ERR_KEY));
    c->ent[k] = -1;
}

static void churn_lookup(churn *c) {
    size_t live = model_sync(c);
    CHECK(om_weaktable_len(c->t) == live);
    if (c->kind == 0) {
        int k = rnd(CH_KEYS);
        om_object *key = class_str(c, k);
        om_object *got = om_weakvaluedict_get(c->t, key);
        CHECK(got == (c->ent[k] >= 0 ? c->recs[c->ent[k]].ptr : NULL));
        CHECK(om_weaktable_contains(c->t, key) == (c->ent[k] >= 0));
        om_decref(got);
        om_decref(key);
        return;
    }
    int r;
    om_object *o = churn_pick(c, &r);
    if (!o)
        return;
    int k = key_class(o);
    CHECK(om_weaktable_contains(c->t, o) == (c->ent[k] >= 0));
    if (c->kind == 1) {
        om_object *got = om_weakkeydict_get(c->t, o);
        CHECK((got != NULL) == (c->ent[k] >= 0));
        CHECK(!got || om_int_value(got) == c->val[k]);
        om_decref(got);
    }
}

/* Whether a yielded entry is the model's entry for its class. */
static int churn_entry_class(churn *c, om_object *k, om_object *v) {
    int cls;
    if (c->kind == 0) {
        const char *name = om_str_data(k);
        cls = name && name[0] == 'k' ? atoi(name + 1) : -1;
        if (cls < 0 || cls >= CH_KEYS || c->ent[cls] < 0 ||
            c->recs[c->ent[cls]].ptr != v)
            return -1;
    } else {
        cls = key_class(k);
        if (c->ent[cls] < 0 || c->recs[c->ent[cls]].ptr != k)
            return -1;
        if (c->kind == 1 ? om_int_value(v) != c->val[cls] : v != NULL)
            return -1;
    }
    return cls;
}

/* A full iteration, with deaths, deletes and collections inside the loop
 * when `mutate`. */
static void churn_iterate(churn *c, bool mutate) {
    model_sync(c);
    bool seen[CH_KEYS] = {false};
    om_weaktable_iter it;
    CHECK(om_weaktable_iter_begin(c->t, &it) == OM_OK);
    om_object *k, *v;
    while (om_weaktable_iter_next(&it, &k, &v)) {
        model_sync(c);
        int cls = churn_entry_class(c, k, v);
        CHECK(cls >= 0);
        if (cls < 0)
            continue;
        CHECK(!seen[cls]);
        seen[cls] = true;
        if (!mutate)
            continue;
        switch (rnd(8)) {
        case 0:
        case 1:
            churn_drop_object(c);
            break;
        case 2:
            churn_del(c);
            break;
        case 3:
            CHECK(om_gc_collect(c->rt, rnd(3)) >= 0);
            break;
        default:
            break;
        }
        CHECK(om_weaktable_len(c->t) == model_sync(c));
    }
    om_weaktable_iter_end(&it);
    size_t live = model_sync(c);
    /* Entries live throughout were all seen (none was added). */
    for (int i = 0; i < CH_KEYS; i++)
        CHECK(c->ent[i] < 0 || seen[i]);
    CHECK(om_weaktable_len(c->t) == live);
}

static void churn_kind(int kind) {
    churn c;
    memset(&c, 0, sizeof c);
    c.rt = om_runtime_new(NULL);
    c.kind = kind;
    c.t = new_kind(c.rt, kind);
    for (int i = 0; i < CH_POOL; i++)
        c.pool[i] = -1;
    for (int i = 0; i < CH_KEYS; i++)
        c.ent[i] = -1;
    for (int op = 0; op < CH_OPS; op++) {
        int r = rnd(100);
        if (r < 15)
            churn_new_object(&c);
        else if (r < 27)
            churn_drop_object(&c);
        else if (r < 50)
            churn_set(&c);
        else if (r < 60)
            churn_del(&c);
        else if (r < 85)
            churn_lookup(&c);
        else if (r < 88)
            CHECK(om_gc_collect(c.rt, rnd(3)) >= 0);
        else
            churn_iterate(&c, r < 96);
        if (th_failed_checks) {
            fprintf(stderr, "  kind %d: first failure at operation %d\n",
                    kind, op);
            break;
        }
    }
    churn_iterate(&c, false);
    for (int i = 0; i < CH_POOL; i++) {
        c.pool[i] = -1;
    }
    for (size_t i = 0; i < c.nrecs; i++) {
        om_object *o = c.recs[i].strong;
        c.recs[i].strong = NULL;
        om_decref(o);
    }
    CHECK(om_gc_collect(c.rt, 2) >= 0);
    CHECK(model_sync(&c) == 0 && om_weaktable_len(c.t) == 0);
    CHECK(om_check(c.rt) == OM_OK);
    for (size_t i = 0; i < c.nrecs; i++)
        om_decref(c.recs[i].wref);
    free(c.recs);
    om_decref(c.t);
    finish(c.rt);
}

static void churn_valuedict(void) { churn_kind(0); }
static void churn_keydict(void) { churn_kind(1); }
static void churn_weakset(void) { churn_kind(2); }

/* ---- allocation failure -------------------------------------------------- */

enum { SW_N = 24, SW_KEYS = 7 };

/* The sweep's model: per key class, the index of the weakly held object
 * (-1: none) and a key dict's value. */
typedef struct sw_model {
    int ent[SW_KEYS];
    int64_t val[SW_KEYS];
} sw_model;

/* Whether table t (kind) holds exactly the model's entries. */
static bool sw_matches(om_object *t, int kind, const sw_model *m,
                       om_object *const *objs) {
    size_t live = 0;
    bool seen[SW_KEYS] = {false};
    for (int k = 0; k < SW_KEYS; k++)
        live += m->ent[k] >= 0;
    if (om_weaktable_len(t) != live)
        return false;
    om_weaktable_iter it;
    if (om_weaktable_iter_begin(t, &it) != OM_OK)
        return false;
    bool ok = true;
    om_object *k, *v;
    while (ok && om_weaktable_iter_next(&it, &k, &v)) {
        int cls;
        om_object *weak = kind == 0 ? v : k;
        cls = kind == 0 ? (int)om_int_value(k) : (int)(wval(k) % SW_KEYS);
        ok = cls >= 0 && cls < SW_KEYS && !seen[cls] && m->ent[cls] >= 0 &&
             objs[m->ent[cls]] == weak &&
             (kind != 1 || om_int_value(v) == m->val[cls]) &&
             (kind != 2 || v == NULL);
        if (ok)
            seen[cls] = true;
    }
    om_weaktable_iter_end(&it);
    return ok;
}

/* Builds a table of each kind from SW_N objects (new keys, existing keys
 * through equal objects, replaced values, deletes, deaths) while the nth
 * allocation fails.  False once a run completes without the failure
 * firing. */
static bool weak_build_failing_at(int kind, uint64_t nth) {
    sweep s = {om_runtime_new(NULL), 0, nth, 0};
    s.start = om_debug_alloc_count(s.rt);
    om_debug_fail_alloc(s.rt, nth);
    om_object *t;
    while (!(t = new_kind(s.rt, kind)))
        if (!sweep_failed(&s))
            return false;
    om_object *objs[SW_N] = {NULL};
    sw_model m;
    for (int k = 0; k < SW_KEYS; k++)
        m.ent[k] = -1;
    for (int i = 0; i < SW_N; i++) {
        while (!(objs[i] = om_new(s.rt, &wobj_type)))
            if (!sweep_failed(&s))
                return false;
        ((wobj *)objs[i])->val = i % SW_KEYS; /* equal within a class */
        int cls = i % SW_KEYS;
        om_object *other = NULL; /* the key or value that is not weak */
        if (kind == 0)
            while (!(other = om_int_new(s.rt, cls)))
                if (!sweep_failed(&s))
                    return false;
        if (kind == 1)
            while (!(other = om_int_new(s.rt, 100 + i)))
                if (!sweep_failed(&s))
                    return false;
        size_t other_rc = other ? om_refcount(other) : 0;
        om_status st;
        for (;;) {
            st = kind == 0   ? om_weakvaluedict_set(t, other, objs[i])
                 : kind == 1 ? om_weakkeydict_set(t, objs[i], other)
                             : om_weakset_add(t, objs[i]);
            if (st == OM_OK)
                break;
            CHECK(st == OM_ERR_NOMEM);
            if (!sweep_failed(&s))
                return false;
            /* Unchanged: same entries, no ref left behind. */
            CHECK(sw_matches(t, kind, &m, objs));
            CHECK(om_refcount(objs[i]) == 1);
            CHECK(om_weakref_count(objs[i]) == 0);
            CHECK(!other || om_refcount(other) == other_rc);
        }
        if (kind == 0 || m.ent[cls] < 0)
            m.ent[cls] = i; /* new entry, or a value dict's new value */
        m.val[cls] = 100 + i;
        om_decref(other);
        CHECK(sw_matches(t, kind, &m, objs));
        /* A death and a delete now and then. */
        if (i % 5 == 4 && objs[i - 3]) {
            om_decref(objs[i - 3]);
            objs[i - 3] = NULL;
            for (int k = 0; k < SW_KEYS; k++)
                if (m.ent[k] == i - 3)
                    m.ent[k] = -1;
            CHECK(sw_matches(t, kind, &m, objs));
        }
        if (i % 6 == 5) {
            int k = (i / 6) % SW_KEYS;
            if (m.ent[k] >= 0) {
                if (kind == 0) {
                    om_object *key;
                    while (!(key = om_int_new(s.rt, k)))
                        if (!sweep_failed(&s))
                            return false;
                    CHECK(om_weakvaluedict_del(t, key) == OM_OK);
                    om_decref(key);
                } else {
                    om_object *o = objs[m.ent[k]];
                    CHECK((kind == 1 ? om_weakkeydict_del(t, o)
                                     : om_weakset_discard(t, o)) == OM_OK);
                }
                m.ent[k] = -1;
                CHECK(sw_matches(t, kind, &m, objs));
            }
        }
    }
    CHECK(sw_matches(t, kind, &m, objs));
    bool fired = sweep_fired(&s);
    CHECK(s.failures == (fired ? 1 : 0));
    om_decref(t);
    for (int i = 0; i < SW_N; i++)
        om_decref(objs[i]);
    finish(s.rt);
    return fired;
}

static void alloc_failure_sweep(void) {
    for (int kind = 0; kind < 3; kind++) {
        uint64_t nth = 1;
        while (weak_build_failing_at(kind, nth) && nth < 100000)
            nth++;
        CHECK(nth > 40); /* each kind makes 45..85 allocations */
    }
}

TEST_MAIN(T(valuedict_basics), T(valuedict_entry_dies_with_value),
          T(valuedict_replaced_value_dies), T(keydict_basics),
          T(weakset_basics), T(argument_errors),
          T(iterate_valuedict_with_deaths), T(iterate_weak_keys_with_deaths),
          T(nested_iterations), T(mutate_while_iterating),
          T(iterator_keeps_table), T(table_dies_first),
          T(stale_refs_held_by_user), T(table_in_garbage_cycle),
          T(churn_valuedict), T(churn_keydict), T(churn_weakset),
          T(alloc_failure_sweep))
