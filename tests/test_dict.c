/*
 * test_dict.c — om_dict: reference ownership, keys by value (str, int, user
 * types with hash/eq) and by identity, insertion order, iteration with
 * deletes, argument errors, clearing under finalizers, a randomised
 * comparison with a model over many keys, and allocation failure at every
 * step of building a dict.
 */
#include "internal.h" /* om_hash_bytes, om_hash_word: to forge collisions */
#include "harness.h"
#include "support.h"

/* ---- helpers ------------------------------------------------------------- */

/* Whether the dict's keys, in iteration order, are om_ints equal to
 * want[0..n), each mapped to an om_int of ten times its value. */
static bool int_dict_is(om_object *d, const int64_t *want, size_t n) {
    if (om_dict_len(d) != n)
        return false;
    size_t pos = 0, i = 0;
    om_object *k, *v;
    while (om_dict_next(d, &pos, &k, &v)) {
        if (i >= n || om_int_value(k) != want[i] ||
            om_int_value(v) != 10 * want[i])
            return false;
        i++;
    }
    return i == n;
}

/* Sets key -> 10 * key with fresh om_ints that only the dict keeps. */
static void set_int(om_object *d, int64_t key) {
    om_runtime *rt = om_runtime_of(d);
    om_object *k = om_int_new(rt, key), *v = om_int_new(rt, 10 * key);
    CHECK(om_dict_set(d, k, v) == OM_OK);
    om_decref(k);
    om_decref(v);
}

static om_status del_int(om_object *d, int64_t key) {
    om_object *k = om_int_new(om_runtime_of(d), key);
    om_status st = om_dict_del(d, k);
    om_decref(k);
    return st;
}

/* ---- basics -------------------------------------------------------------- */

static void new_and_empty(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    CHECK(d && om_type_of(d) == &om_dict_type && om_refcount(d) == 1);
    CHECK(om_dict_len(d) == 0);
    om_object *k = om_str_new(rt, "k");
    om_clear_error(rt);
    CHECK(om_dict_get(d, k) == NULL && om_dict_get_str(d, "k") == NULL);
    CHECK(om_dict_contains(d, k) == 0);
    /* A miss is not an error. */
    CHECK(om_last_status(rt) == OM_OK && om_last_error(rt)[0] == '\0');
    size_t pos = 0;
    CHECK(om_dict_next(d, &pos, NULL, NULL) == 0);
    CHECK(om_dict_del(d, k) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_dict_del", "not found"));
    CHECK(om_dict_clear(d) == OM_OK && om_dict_len(d) == 0);
    CHECK(om_dict_new(NULL) == NULL);
    om_decref(k);
    om_decref(d);
    finish(rt);
}

static void set_get_refcounts(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *k = om_str_new(rt, "key"), *v = om_int_new(rt, 1);
    CHECK(om_dict_set(d, k, v) == OM_OK);
    CHECK(om_refcount(k) == 2 && om_refcount(v) == 2);
    CHECK(om_dict_len(d) == 1);
    /* Lookups are borrowed. */
    CHECK(om_dict_get(d, k) == v && om_dict_get_str(d, "key") == v);
    CHECK(om_dict_contains(d, k) == 1);
    CHECK(om_refcount(k) == 2 && om_refcount(v) == 2);

    /* Replacing through an equal but distinct key keeps the first key, as
     * Python does, and swaps the value's reference. */
    om_object *k2 = om_str_new(rt, "key"), *v2 = om_int_new(rt, 2);
    CHECK(om_dict_set(d, k2, v2) == OM_OK);
    CHECK(om_dict_len(d) == 1 && om_dict_get(d, k) == v2);
    CHECK(om_refcount(k) == 2 && om_refcount(k2) == 1);
    CHECK(om_refcount(v) == 1 && om_refcount(v2) == 2);
    size_t pos = 0;
    om_object *gotk = NULL, *gotv = NULL;
    CHECK(om_dict_next(d, &pos, &gotk, &gotv) == 1);
    CHECK(gotk == k && gotv == v2);
    /* Setting the value already stored, which only the dict owns, must not
     * free it in between. */
    om_decref(v2);
    CHECK(om_dict_set(d, k, om_dict_get(d, k)) == OM_OK);
    CHECK(om_refcount(om_dict_get(d, k)) == 1);
    CHECK(om_int_value(om_dict_get(d, k)) == 2);

    /* set_str on an existing key replaces in place. */
    CHECK(om_dict_set_str(d, "key", v) == OM_OK);
    CHECK(om_dict_len(d) == 1 && om_dict_get(d, k2) == v);
    CHECK(om_refcount(v) == 2 && om_refcount(k) == 2);

    CHECK(om_dict_del(d, k2) == OM_OK);
    CHECK(om_dict_len(d) == 0 && om_refcount(k) == 1 && om_refcount(v) == 1);
    CHECK(om_object_count(rt) == 4);
    om_decref(k);
    om_decref(k2);
    om_decref(v);
    om_decref(d);
    finish(rt);
}

static void free_and_clear_drop_references(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    size_t empty_size = om_sizeof(d);
    om_object *v = om_str_new(rt, "shared value");
    for (int i = 0; i < 100; i++) {
        om_object *k = om_int_new(rt, i);
        CHECK(om_dict_set(d, k, v) == OM_OK);
        om_decref(k);
    }
    CHECK(om_refcount(v) == 101 && om_dict_len(d) == 100);
    CHECK(om_sizeof(d) > empty_size);
    CHECK(om_object_count(rt) == 102);
    CHECK(om_dict_clear(d) == OM_OK);
    CHECK(om_refcount(v) == 1 && om_dict_len(d) == 0);
    CHECK(om_sizeof(d) == empty_size && om_object_count(rt) == 2);
    CHECK(om_dict_clear(d) == OM_OK); /* twice is harmless */
    /* Usable again after a clear. */
    CHECK(om_dict_set_str(d, "again", v) == OM_OK);
    CHECK(om_dict_get_str(d, "again") == v && om_refcount(v) == 2);
    om_decref(d);
    CHECK(om_refcount(v) == 1);
    om_decref(v);
    finish(rt);
}

/* ---- keys ---------------------------------------------------------------- */

static void str_keys_by_value(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *one = om_int_new(rt, 1), *two = om_int_new(rt, 2);
    om_object *a1 = om_str_new(rt, "abc"), *a2 = om_str_new(rt, "abc");
    CHECK(om_dict_set(d, a1, one) == OM_OK);
    CHECK(om_dict_get(d, a2) == one && om_dict_contains(d, a2) == 1);
    CHECK(om_dict_get_str(d, "abc") == one);
    CHECK(om_dict_get_str(d, "ab") == NULL);
    CHECK(om_dict_get_str(d, "abcd") == NULL);

    /* Embedded NULs are part of the key; C-string keys stop at the first. */
    om_object *nul = om_str_from_bytes(rt, "abc\0x", 5);
    CHECK(om_dict_set(d, nul, two) == OM_OK);
    CHECK(om_dict_len(d) == 2);
    CHECK(om_dict_get(d, nul) == two && om_dict_get(d, a2) == one);
    CHECK(om_dict_get_str(d, "abc") == one);

    /* The empty string is a key like any other, in either spelling. */
    om_object *e = om_str_from_bytes(rt, NULL, 0);
    CHECK(om_dict_set_str(d, "", two) == OM_OK);
    CHECK(om_dict_get(d, e) == two && om_dict_len(d) == 3);
    CHECK(om_dict_del(d, e) == OM_OK && om_dict_get_str(d, "") == NULL);

    /* A key set as a C string is found, replaced and deleted as a str. */
    CHECK(om_dict_set_str(d, "xyz", one) == OM_OK);
    om_object *x = om_str_new(rt, "xyz");
    CHECK(om_dict_get(d, x) == one);
    CHECK(om_dict_set(d, x, two) == OM_OK && om_dict_len(d) == 3);
    CHECK(om_refcount(x) == 1); /* the key made by set_str stayed */
    CHECK(om_dict_get_str(d, "xyz") == two);
    CHECK(om_dict_del_str(d, "xyz") == OM_OK && om_dict_get(d, x) == NULL);
    CHECK(om_dict_del_str(d, "abc") == OM_OK && om_dict_get(d, a1) == NULL);
    CHECK(om_refcount(a1) == 1);
    CHECK(om_dict_len(d) == 1 && om_dict_get(d, nul) == two);

    om_decref(x);
    om_decref(e);
    om_decref(nul);
    om_decref(a1);
    om_decref(a2);
    om_decref(one);
    om_decref(two);
    om_decref(d);
    finish(rt);
}

static void int_and_str_keys_differ(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *i1 = om_int_new(rt, 1), *i1b = om_int_new(rt, 1);
    om_object *s1 = om_str_new(rt, "1");
    om_object *i0 = om_int_new(rt, 0), *s0 = om_str_new(rt, "");
    om_object *lo = om_int_new(rt, INT64_MIN), *hi = om_int_new(rt, INT64_MAX);
    CHECK(om_dict_set(d, i1, i1) == OM_OK);
    CHECK(om_dict_set(d, s1, s1) == OM_OK);
    CHECK(om_dict_set(d, i0, i0) == OM_OK);
    CHECK(om_dict_set(d, s0, s0) == OM_OK);
    CHECK(om_dict_set(d, lo, lo) == OM_OK);
    CHECK(om_dict_set(d, hi, hi) == OM_OK);
    CHECK(om_dict_len(d) == 6);
    CHECK(om_dict_get(d, i1b) == i1 && om_dict_get_str(d, "1") == s1);
    CHECK(om_dict_get(d, s1) == s1 && om_dict_get(d, i0) == i0);
    CHECK(om_dict_get_str(d, "") == s0);
    om_object *lo2 = om_int_new(rt, INT64_MIN);
    CHECK(om_dict_get(d, lo2) == lo);
    CHECK(om_dict_del(d, i1b) == OM_OK && om_dict_len(d) == 5);
    CHECK(om_dict_get_str(d, "1") == s1 && om_dict_get(d, i1) == NULL);
    om_object *objs[] = {i1, i1b, s1, i0, s0, lo, hi, lo2};
    om_decref(d);
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        CHECK(om_refcount(objs[i]) == 1);
        om_decref(objs[i]);
    }
    finish(rt);
}

/* A user type without hash: compared by identity. */
typedef struct blob {
    OM_OBJECT_HEAD
    int64_t n;
} blob;
static const om_type blob_type = {.name = "blob", .size = sizeof(blob)};

/* A user type with hash/eq over its fields, and a `clash` mode in which
 * every instance hashes alike, to force long probe chains. */
typedef struct point {
    OM_OBJECT_HEAD
    int64_t x, y;
    uint64_t forced_hash;   /* used instead when non-zero */
} point;

static size_t eq_calls, eq_wrong_type;

static uint64_t point_hash(const om_object *self) {
    const point *p = (const point *)self;
    return p->forced_hash ? p->forced_hash
                          : om_hash_word((uint64_t)p->x * 31 + (uint64_t)p->y);
}

static int point_eq(const om_object *a, const om_object *b);

static const om_type point_type = {
    .name = "point", .size = sizeof(point),
    .hash = point_hash, .eq = point_eq,
};

static int point_eq(const om_object *a, const om_object *b) {
    eq_calls++;
    if (om_type_of(a) != &point_type || om_type_of(b) != &point_type) {
        eq_wrong_type++;
        return 1; /* a greedy answer, so a wrong call also shows as a hit */
    }
    const point *p = (const point *)a, *q = (const point *)b;
    return p->x == q->x && p->y == q->y;
}

static om_object *new_point(om_runtime *rt, int64_t x, int64_t y,
                            uint64_t forced_hash) {
    point *p = (point *)om_new(rt, &point_type);
    p->x = x;
    p->y = y;
    p->forced_hash = forced_hash;
    return &p->om_head;
}

static void identity_keys_without_hash(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *a = om_new(rt, &blob_type), *b = om_new(rt, &blob_type);
    om_object *va = om_str_new(rt, "a"), *vb = om_str_new(rt, "b");
    /* Same contents (all zero), different objects: different keys. */
    CHECK(om_dict_set(d, a, va) == OM_OK && om_dict_set(d, b, vb) == OM_OK);
    CHECK(om_dict_len(d) == 2);
    CHECK(om_dict_get(d, a) == va && om_dict_get(d, b) == vb);
    CHECK(om_dict_set(d, a, vb) == OM_OK && om_dict_len(d) == 2);
    CHECK(om_dict_del(d, b) == OM_OK);
    CHECK(om_dict_contains(d, b) == 0 && om_dict_get(d, a) == vb);
    om_object *c = om_new(rt, &blob_type);
    om_clear_error(rt);
    CHECK(om_dict_del(d, c) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_dict_del", "blob"));
    om_decref(d);
    om_object *objs[] = {a, b, c, va, vb};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        CHECK(om_refcount(objs[i]) == 1);
        om_decref(objs[i]);
    }
    finish(rt);
}

static void user_hash_and_eq(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    eq_calls = eq_wrong_type = 0;
    om_object *p = new_point(rt, 3, 4, 0), *q = new_point(rt, 3, 4, 0);
    om_object *r = new_point(rt, 4, 3, 0);
    om_object *v = om_int_new(rt, 1);
    CHECK(om_dict_set(d, p, v) == OM_OK && om_dict_set(d, r, v) == OM_OK);
    CHECK(om_dict_get(d, q) == v && om_dict_len(d) == 2);
    CHECK(eq_calls > 0);
    CHECK(om_dict_set(d, q, p) == OM_OK && om_dict_len(d) == 2);
    CHECK(om_dict_get(d, p) == p && om_refcount(q) == 1);
    CHECK(om_dict_del(d, q) == OM_OK && om_dict_contains(d, p) == 0);
    CHECK(om_dict_contains(d, r) == 1);

    /* Keys of other types whose hash equals a point's are still other
     * keys, and eq is never asked to compare across types.  Each pair is
     * tried in both insertion orders, so that either type's lookup walks
     * past the other's entry.  fake_i's first field equals i1's value. */
    uint64_t h_str1 = om_hash_bytes("1", 1);
    uint64_t h_int1 = om_hash_word(1);
    om_object *fake_s = new_point(rt, 9, 9, h_str1);
    om_object *fake_i = new_point(rt, 1, 1, h_int1);
    om_object *s1 = om_str_new(rt, "1"), *i1 = om_int_new(rt, 1);
    for (int round = 0; round < 2; round++) {
        om_object *first[] = {fake_s, fake_i, s1, i1};
        for (int j = 0; j < 4; j++) {
            om_object *key = first[round ? 3 - j : j];
            CHECK(om_dict_get(d, key) == NULL);
            CHECK(om_dict_set(d, key, key) == OM_OK);
        }
        CHECK(om_dict_len(d) == 5);
        CHECK(om_dict_get(d, fake_s) == fake_s);
        CHECK(om_dict_get(d, fake_i) == fake_i);
        CHECK(om_dict_get(d, s1) == s1 && om_dict_get(d, i1) == i1);
        CHECK(om_dict_get_str(d, "1") == s1);
        CHECK(om_dict_set_str(d, "1", i1) == OM_OK && om_dict_len(d) == 5);
        CHECK(om_dict_get(d, s1) == i1 && om_dict_get(d, fake_s) == fake_s);
        CHECK(om_dict_del(d, fake_s) == OM_OK && om_dict_get_str(d, "1") == i1);
        CHECK(om_dict_del(d, i1) == OM_OK && om_dict_get(d, fake_i) == fake_i);
        CHECK(om_dict_del_str(d, "1") == OM_OK);
        CHECK(om_dict_del(d, fake_i) == OM_OK);
        CHECK(om_dict_len(d) == 1);
    }
    CHECK(eq_wrong_type == 0);

    om_decref(d);
    om_object *objs[] = {p, q, r, v, fake_s, fake_i, s1, i1};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++) {
        CHECK(om_refcount(objs[i]) == 1);
        om_decref(objs[i]);
    }
    finish(rt);
}

static void colliding_keys(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    eq_wrong_type = 0;
    enum { N = 300 };
    om_object *keys[N];
    /* All keys share one hash: every lookup walks the same probe chain,
     * across deleted slots and regrowth. */
    for (int i = 0; i < N; i++) {
        keys[i] = new_point(rt, i, -i, 12345);
        om_object *v = om_int_new(rt, i);
        CHECK(om_dict_set(d, keys[i], v) == OM_OK);
        om_decref(v);
    }
    for (int i = 0; i < N; i += 2)
        CHECK(om_dict_del(d, keys[i]) == OM_OK);
    for (int i = 0; i < N; i++) {
        om_object *probe = new_point(rt, i, -i, 12345);
        om_object *v = om_dict_get(d, probe);
        CHECK(i % 2 ? v && om_int_value(v) == i : v == NULL);
        om_decref(probe);
    }
    /* Refill the deleted keys: they go to the end, and nothing doubles. */
    for (int i = 0; i < N; i += 2) {
        om_object *v = om_int_new(rt, -i);
        CHECK(om_dict_set(d, keys[i], v) == OM_OK);
        om_decref(v);
    }
    CHECK(om_dict_len(d) == N);
    size_t pos = 0, seen = 0;
    om_object *k, *v;
    while (om_dict_next(d, &pos, &k, &v)) {
        int64_t x = ((point *)k)->x;
        CHECK(seen < N / 2 ? x == 2 * (int64_t)seen + 1
                           : x == 2 * (int64_t)(seen - N / 2));
        CHECK(om_int_value(v) == (x % 2 ? x : -x));
        seen++;
    }
    CHECK(seen == N && eq_wrong_type == 0);
    om_decref(d);
    for (int i = 0; i < N; i++) {
        CHECK(om_refcount(keys[i]) == 1);
        om_decref(keys[i]);
    }
    finish(rt);
}

/* ---- order and iteration ------------------------------------------------- */

static void insertion_order(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    int64_t want[64];
    size_t n = 0;
    /* Ten keys in a scrambled order, through a few regrowths. */
    for (int64_t i = 0; i < 10; i++) {
        set_int(d, (i * 7) % 10);
        want[n++] = (i * 7) % 10;
    }
    CHECK(int_dict_is(d, want, n));
    /* Replacing a value keeps the key's place. */
    om_object *k = om_int_new(rt, want[3]), *v = om_int_new(rt, 10 * want[3]);
    CHECK(om_dict_set(d, k, v) == OM_OK);
    om_decref(k);
    om_decref(v);
    CHECK(int_dict_is(d, want, n));
    /* Deleting leaves the others in order; re-adding goes to the end. */
    CHECK(del_int(d, want[0]) == OM_OK && del_int(d, want[5]) == OM_OK);
    int64_t moved = want[0];
    memmove(&want[5], &want[6], 4 * sizeof *want);
    memmove(&want[0], &want[1], 8 * sizeof *want);
    n = 8;
    CHECK(int_dict_is(d, want, n));
    set_int(d, moved);
    want[n++] = moved;
    CHECK(int_dict_is(d, want, n));
    /* Growth well past the first tables keeps the order. */
    for (int64_t i = 100; i < 150; i++) {
        set_int(d, i);
        want[n++] = i;
        if (i % 3 == 0) {
            CHECK(del_int(d, i - 1) == OM_OK);
            memmove(&want[n - 2], &want[n - 1], sizeof *want);
            n--;
        }
    }
    CHECK(n <= 64 && int_dict_is(d, want, n));
    om_decref(d);
    finish(rt);
}

static void next_edges(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    set_int(d, 1);
    set_int(d, 2);
    size_t pos = 0;
    om_object *k = NULL, *v = NULL;
    CHECK(om_dict_next(d, &pos, &k, NULL) == 1 && om_int_value(k) == 1);
    CHECK(om_dict_next(d, &pos, NULL, &v) == 1 && om_int_value(v) == 20);
    CHECK(om_dict_next(d, &pos, &k, &v) == 0);
    CHECK(om_dict_next(d, &pos, &k, &v) == 0); /* stays at the end */
    pos = 1000;
    CHECK(om_dict_next(d, &pos, &k, &v) == 0);
    CHECK(om_dict_next(d, NULL, &k, &v) == 0);
    pos = 0;
    CHECK(om_dict_next(NULL, &pos, &k, &v) == 0);
    om_object *l = om_list_new(rt);
    om_clear_error(rt);
    CHECK(om_dict_next(l, &pos, &k, &v) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_next", "'list'"));
    om_decref(l);
    om_decref(d);
    finish(rt);
}

static void delete_while_iterating(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    enum { N = 200 };
    for (int64_t i = 0; i < N; i++)
        set_int(d, i);
    /* Delete the current entry at every step, and also the one three
     * ahead every tenth step: the rest are still seen once, in order. */
    bool seen[N] = {false};
    int64_t last = -1;
    size_t pos = 0;
    om_object *k, *v;
    while (om_dict_next(d, &pos, &k, &v)) {
        int64_t i = om_int_value(k);
        CHECK(i > last && !seen[i] && om_int_value(v) == 10 * i);
        seen[i] = true;
        last = i;
        CHECK(om_dict_del(d, k) == OM_OK); /* k is now dead */
        if (i % 10 == 0 && i + 3 < N)
            CHECK(del_int(d, i + 3) == OM_OK);
    }
    for (int64_t i = 0; i < N; i++)
        CHECK(seen[i] == !(i >= 3 && (i - 3) % 10 == 0));
    CHECK(om_dict_len(d) == 0);

    /* Deleting every other entry while iterating keeps the rest. */
    for (int64_t i = 0; i < N; i++)
        set_int(d, i);
    pos = 0;
    while (om_dict_next(d, &pos, &k, NULL))
        if (om_int_value(k) % 2 == 0)
            CHECK(om_dict_del(d, k) == OM_OK);
    int64_t odd[N / 2];
    for (int64_t i = 0; i < N / 2; i++)
        odd[i] = 2 * i + 1;
    CHECK(int_dict_is(d, odd, N / 2));
    om_decref(d);
    finish(rt);
}

/* ---- errors -------------------------------------------------------------- */

static void wrong_type_and_null(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *l = om_list_new(rt);
    om_object *k = om_int_new(rt, 1), *v = om_int_new(rt, 2);

    om_clear_error(rt);
    CHECK(om_dict_set(l, k, v) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_set", "'list'"));
    CHECK(strstr(om_last_error(rt), "'dict'") != NULL);
    om_clear_error(rt);
    CHECK(om_dict_get(k, k) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_get", "'int'"));
    om_clear_error(rt);
    CHECK(om_dict_contains(l, k) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_contains", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_del(l, k) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_del", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_set_str(l, "a", v) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_set_str", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_get_str(l, "a") == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_get_str", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_del_str(l, "a") == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_del_str", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_len(l) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_len", "'list'"));
    om_clear_error(rt);
    CHECK(om_dict_clear(l) == OM_ERR_TYPE);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_dict_clear", "'list'"));

    /* NULL dict: only the status, there is no runtime to record in. */
    CHECK(om_dict_set(NULL, k, v) == OM_ERR_ARG);
    CHECK(om_dict_get(NULL, k) == NULL);
    CHECK(om_dict_contains(NULL, k) == OM_ERR_ARG);
    CHECK(om_dict_del(NULL, k) == OM_ERR_ARG);
    CHECK(om_dict_set_str(NULL, "a", v) == OM_ERR_ARG);
    CHECK(om_dict_get_str(NULL, "a") == NULL);
    CHECK(om_dict_del_str(NULL, "a") == OM_ERR_ARG);
    CHECK(om_dict_len(NULL) == 0 && om_dict_clear(NULL) == OM_ERR_ARG);

    /* NULL key or value. */
    om_clear_error(rt);
    CHECK(om_dict_set(d, NULL, v) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_set", "key"));
    om_clear_error(rt);
    CHECK(om_dict_set(d, k, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_set", "value"));
    om_clear_error(rt);
    CHECK(om_dict_get(d, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_get", "key"));
    om_clear_error(rt);
    CHECK(om_dict_contains(d, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_contains", "key"));
    om_clear_error(rt);
    CHECK(om_dict_del(d, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_del", "key"));
    om_clear_error(rt);
    CHECK(om_dict_set_str(d, NULL, v) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_set_str", "key"));
    om_clear_error(rt);
    CHECK(om_dict_set_str(d, "a", NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_set_str", "value"));
    om_clear_error(rt);
    CHECK(om_dict_get_str(d, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_get_str", "key"));
    om_clear_error(rt);
    CHECK(om_dict_del_str(d, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_dict_del_str", "key"));
    CHECK(om_dict_len(d) == 0);
    CHECK(om_refcount(k) == 1 && om_refcount(v) == 1);

    /* Missing keys. */
    CHECK(om_dict_set(d, k, v) == OM_OK);
    om_object *k2 = om_int_new(rt, 2);
    om_clear_error(rt);
    CHECK(om_dict_del(d, k2) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_dict_del", "key 2 not found"));
    om_clear_error(rt);
    CHECK(om_dict_del_str(d, "missing") == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_dict_del_str", "'missing'"));
    char long_key[200];
    memset(long_key, 'q', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    om_clear_error(rt);
    CHECK(om_dict_del_str(d, long_key) == OM_ERR_KEY);
    CHECK(error_is(rt, OM_ERR_KEY, "om_dict_del_str", "..."));
    CHECK(om_dict_len(d) == 1 && om_dict_get(d, k) == v);
    /* Failed deletes left the entry's references alone. */
    CHECK(om_refcount(k) == 2 && om_refcount(v) == 2);

    om_decref(k2);
    om_decref(k);
    om_decref(v);
    om_decref(l);
    om_decref(d);
    finish(rt);
}

/* A type with no references of its own, for static immortal keys. */
static const om_type leaf_type = {.name = "leaf", .size = sizeof(om_object)};

static void immortal_keys_and_values(void) {
    static om_object leaf = OM_STATIC_OBJECT_INIT(&leaf_type);
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    CHECK(om_dict_set(d, &leaf, &leaf) == OM_OK);
    CHECK(om_dict_get(d, &leaf) == &leaf);
    CHECK(om_dict_set_str(d, "leaf", &leaf) == OM_OK);
    CHECK(om_dict_del(d, &leaf) == OM_OK);
    CHECK(om_refcount(&leaf) == OM_REFCOUNT_IMMORTAL);
    om_decref(d);
    finish(rt);
}

/* ---- finalizers ---------------------------------------------------------- */

typedef struct probe {
    OM_OBJECT_HEAD
    int64_t id;
} probe;

/* What probe finalizers observe; reset by each test. */
static struct {
    om_object *dict;       /* the dict under test (borrowed) */
    size_t finalized;
    size_t saw_entries;    /* finalizers that found the dict non-empty */
    size_t saw_self;       /* finalizers that found themselves in it */
    bool refill;           /* each finalizer sets "refill:<id>" */
} fin;

static void probe_finalize(om_object *self) {
    fin.finalized++;
    if (!fin.dict)
        return;
    if (om_dict_len(fin.dict) != 0)
        fin.saw_entries++;
    size_t pos = 0;
    om_object *k, *v;
    while (om_dict_next(fin.dict, &pos, &k, &v))
        if (k == self || v == self)
            fin.saw_self++;
    if (fin.refill) {
        int64_t id = ((probe *)self)->id;
        char key[32];
        snprintf(key, sizeof key, "refill:%lld", (long long)id);
        om_object *x = om_int_new(om_runtime_of(self), id);
        CHECK(om_dict_set_str(fin.dict, key, x) == OM_OK);
        om_decref(x);
    }
}

static const om_type probe_type = {
    .name = "probe", .size = sizeof(probe), .finalize = probe_finalize,
};

static om_object *new_probe(om_runtime *rt, int64_t id) {
    om_object *p = om_new(rt, &probe_type);
    ((probe *)p)->id = id;
    return p;
}

/* A dict of n entries whose keys and values are probes it alone owns. */
static om_object *probe_dict(om_runtime *rt, int n) {
    om_object *d = om_dict_new(rt);
    for (int i = 0; i < n; i++) {
        om_object *k = new_probe(rt, i), *v = new_probe(rt, 1000 + i);
        CHECK(om_dict_set(d, k, v) == OM_OK);
        om_decref(k);
        om_decref(v);
    }
    return d;
}

static void clear_runs_finalizers_on_empty_dict(void) {
    om_runtime *rt = om_runtime_new(NULL);
    memset(&fin, 0, sizeof fin);
    om_object *d = probe_dict(rt, 30);
    fin.dict = d;
    CHECK(om_dict_clear(d) == OM_OK);
    CHECK(fin.finalized == 60);
    CHECK(fin.saw_entries == 0 && fin.saw_self == 0);
    CHECK(om_dict_len(d) == 0 && om_object_count(rt) == 1);
    om_decref(d);

    /* Finalizers may add entries to the dict being cleared. */
    memset(&fin, 0, sizeof fin);
    d = probe_dict(rt, 10);
    fin.dict = d;
    fin.refill = true;
    CHECK(om_dict_clear(d) == OM_OK);
    CHECK(fin.finalized == 20 && fin.saw_self == 0);
    CHECK(om_dict_len(d) == 20);
    CHECK(om_int_value(om_dict_get_str(d, "refill:3")) == 3);
    CHECK(om_int_value(om_dict_get_str(d, "refill:1009")) == 1009);
    CHECK(om_check(rt) == OM_OK);
    fin.dict = NULL;
    om_decref(d);
    finish(rt);
}

static void del_and_replace_run_finalizers_after_update(void) {
    om_runtime *rt = om_runtime_new(NULL);
    memset(&fin, 0, sizeof fin);
    om_object *d = probe_dict(rt, 5);
    fin.dict = d;
    /* Deleting: both key and value die inside del, already unreachable. */
    size_t pos = 0;
    om_object *k;
    CHECK(om_dict_next(d, &pos, &k, NULL) == 1);
    CHECK(om_dict_del(d, k) == OM_OK);
    CHECK(fin.finalized == 2 && fin.saw_self == 0 && om_dict_len(d) == 4);
    /* Replacing: the old value dies with the new one already in place. */
    CHECK(om_dict_next(d, &pos, &k, NULL) == 1);
    om_object *x = om_int_new(rt, 0);
    CHECK(om_dict_set(d, k, x) == OM_OK);
    CHECK(fin.finalized == 3 && fin.saw_self == 0 && om_dict_get(d, k) == x);
    om_decref(x);
    /* Dying dicts queue what they drop: their finalizers run after the dict
     * is gone, so they must not look at it. */
    fin.dict = NULL;
    om_decref(d);
    CHECK(fin.finalized == 10);
    finish(rt);
}

/* ---- type callbacks ------------------------------------------------------ */

static int stop_at_three(om_object *child, void *arg) {
    (void)child;
    return ++*(int *)arg == 3 ? 55 : 0;
}

static void traverse_and_direct_clear(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    for (int64_t i = 0; i < 6; i++)
        set_int(d, i);
    CHECK(del_int(d, 2) == OM_OK);
    int seen = 0;
    /* Keys and values of live entries only. */
    CHECK(om_dict_type.traverse(d, count_visit, &seen) == 0 && seen == 10);
    seen = 0;
    CHECK(om_dict_type.traverse(d, stop_at_three, &seen) == 55 && seen == 3);
    om_dict_type.clear(d);
    om_dict_type.clear(d);
    CHECK(om_dict_len(d) == 0 && om_object_count(rt) == 1);
    seen = 0;
    CHECK(om_dict_type.traverse(d, count_visit, &seen) == 0 && seen == 0);
    om_decref(d);
    finish(rt);
}

/* ---- many keys against a model ------------------------------------------- */

enum { MODEL_KEYS = 100000, MODEL_VALUES = 16 };

/* The model: per int key, the value index (-1 when absent) and when the key
 * was inserted (iteration follows it). */
static int8_t model_value[MODEL_KEYS];
static uint64_t model_since[MODEL_KEYS];

/* Iterates d and compares it with the model in full. */
static void check_against_model(om_object *d, om_object *const *values,
                                size_t len) {
    CHECK(om_dict_len(d) == len);
    size_t pos = 0, n = 0;
    uint64_t last = 0;
    om_object *k, *v;
    bool ok = true;
    while (om_dict_next(d, &pos, &k, &v)) {
        int64_t key = om_int_value(k);
        ok = ok && key >= 0 && key < MODEL_KEYS && model_value[key] >= 0 &&
             values[model_value[key]] == v &&
             (n == 0 || model_since[key] > last) && om_refcount(k) == 1;
        if (!ok)
            break;
        last = model_since[key];
        n++;
    }
    CHECK(ok && n == len);
}

static void many_keys_against_model(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *d = om_dict_new(rt);
    om_object *values[MODEL_VALUES];
    for (int i = 0; i < MODEL_VALUES; i++)
        values[i] = om_int_new(rt, -i);
    memset(model_value, -1, sizeof model_value);
    size_t len = 0;
    uint64_t clock = 0;
    /* Phases: fill up, drain, then churn, so the table grows, shrinks on
     * rebuild and reuses deleted slots. */
    static const struct { int ops, set_pct, del_pct; } phases[] = {
        {250000, 85, 10}, {250000, 15, 80}, {200000, 45, 45}};
    for (size_t ph = 0; ph < sizeof phases / sizeof phases[0]; ph++) {
        for (int op = 0; op < phases[ph].ops; op++) {
            int64_t key = (int64_t)(th_random() % MODEL_KEYS);
            int roll = (int)(th_random() % 100);
            om_object *k = om_int_new(rt, key);
            if (roll < phases[ph].set_pct) {
                int vi = (int)(th_random() % MODEL_VALUES);
                CHECK(om_dict_set(d, k, values[vi]) == OM_OK);
                if (model_value[key] < 0) {
                    model_since[key] = ++clock;
                    len++;
                }
                model_value[key] = (int8_t)vi;
            } else if (roll < phases[ph].set_pct + phases[ph].del_pct) {
                om_status st = om_dict_del(d, k);
                CHECK(st == (model_value[key] >= 0 ? OM_OK : OM_ERR_KEY));
                if (model_value[key] >= 0)
                    len--;
                model_value[key] = -1;
            } else {
                om_object *v = om_dict_get(d, k);
                int in = om_dict_contains(d, k);
                if (model_value[key] >= 0)
                    CHECK(v == values[model_value[key]] && in == 1);
                else
                    CHECK(v == NULL && in == 0);
            }
            om_decref(k);
            CHECK(om_dict_len(d) == len);
        }
        check_against_model(d, values, len);
        CHECK(om_check(rt) == OM_OK);
        CHECK(om_object_count(rt) == 1 + MODEL_VALUES + len);
    }

    /* Drop a third of the keys during one pass of iteration. */
    size_t pos = 0;
    om_object *k;
    while (om_dict_next(d, &pos, &k, NULL)) {
        int64_t key = om_int_value(k);
        if (key % 3 == 0) {
            CHECK(om_dict_del(d, k) == OM_OK);
            model_value[key] = -1;
            len--;
        }
    }
    check_against_model(d, values, len);

    /* Each value is referenced once per entry holding it, plus ours. */
    size_t uses[MODEL_VALUES] = {0};
    for (int64_t key = 0; key < MODEL_KEYS; key++)
        if (model_value[key] >= 0)
            uses[model_value[key]]++;
    for (int i = 0; i < MODEL_VALUES; i++)
        CHECK(om_refcount(values[i]) == 1 + uses[i]);
    CHECK(om_dict_clear(d) == OM_OK);
    for (int i = 0; i < MODEL_VALUES; i++) {
        CHECK(om_refcount(values[i]) == 1);
        om_decref(values[i]);
    }
    om_decref(d);
    finish(rt);
}

/* ---- allocation failure -------------------------------------------------- */

/* The sweep's model: entries in insertion order, keyed by an int or by the
 * string "k<n>", each mapped to an om_int. */
typedef struct entry {
    int n;
    bool str_key;
    bool alive;
    int64_t value;
} entry;

static bool dict_matches(om_object *d, const entry *e, size_t count) {
    size_t pos = 0, live = 0;
    om_object *k, *v;
    for (size_t i = 0; i < count; i++) {
        if (!e[i].alive)
            continue;
        live++;
        if (!om_dict_next(d, &pos, &k, &v) || om_int_value(v) != e[i].value)
            return false;
        if (e[i].str_key) {
            char text[16];
            snprintf(text, sizeof text, "k%d", e[i].n);
            const char *got = om_str_data(k);
            if (!got || strcmp(got, text) != 0)
                return false;
        } else if (om_type_of(k) != &om_int_type || om_int_value(k) != e[i].n) {
            return false;
        }
    }
    return !om_dict_next(d, &pos, NULL, NULL) && om_dict_len(d) == live;
}

/* Builds a dict of 100 entries (int keys through om_dict_set, string keys
 * through om_dict_set_str), with replacements and deletes along the way,
 * while the nth allocation fails.  False once a run completes without the
 * failure firing. */
static bool build_dict_failing_at(uint64_t nth) {
    sweep s = {om_runtime_new(NULL), 0, nth, 0};
    s.start = om_debug_alloc_count(s.rt);
    om_debug_fail_alloc(s.rt, nth);
    om_object *d;
    while (!(d = om_dict_new(s.rt)))
        if (!sweep_failed(&s))
            return false;
    enum { N = 100 };
    entry model[N];
    size_t count = 0;
    for (int i = 0; i < N; i++) {
        om_object *v, *k = NULL;
        while (!(v = om_int_new(s.rt, 1000 + i)))
            if (!sweep_failed(&s))
                return false;
        bool str_key = i % 3 == 2;
        if (str_key) {
            char text[16];
            snprintf(text, sizeof text, "k%d", i);
            om_status st;
            while ((st = om_dict_set_str(d, text, v)) != OM_OK) {
                CHECK(st == OM_ERR_NOMEM);
                if (!sweep_failed(&s))
                    return false;
                CHECK(dict_matches(d, model, count));
                CHECK(om_refcount(v) == 1);
            }
        } else {
            while (!(k = om_int_new(s.rt, i)))
                if (!sweep_failed(&s))
                    return false;
            om_status st;
            while ((st = om_dict_set(d, k, v)) != OM_OK) {
                CHECK(st == OM_ERR_NOMEM);
                if (!sweep_failed(&s))
                    return false;
                CHECK(dict_matches(d, model, count));
                CHECK(om_refcount(k) == 1 && om_refcount(v) == 1);
            }
        }
        model[count++] = (entry){i, str_key, true, 1000 + i};
        om_decref(k);
        om_decref(v);
        /* Replacing the value of a present key stores no new entry, so it
         * needs no memory beyond an int key object to name it. */
        entry *e = &model[i / 2];
        if (i % 4 == 3 && e->alive) {
            om_object *v2 = om_dict_get_str(d, "k2");
            CHECK(v2 && om_int_value(v2) == 1002);
            if (e->str_key) {
                char text[16];
                snprintf(text, sizeof text, "k%d", e->n);
                CHECK(om_dict_set_str(d, text, v2) == OM_OK);
            } else {
                om_object *rk;
                while (!(rk = om_int_new(s.rt, e->n)))
                    if (!sweep_failed(&s))
                        return false;
                CHECK(om_dict_set(d, rk, v2) == OM_OK);
                om_decref(rk);
            }
            e->value = 1002;
        }
        /* Deleting needs memory only for the int key object. */
        e = &model[i > 5 ? i - 5 : 0];
        if (i % 10 == 9 && e->alive) {
            char text[16];
            snprintf(text, sizeof text, "k%d", e->n);
            if (e->str_key) {
                CHECK(om_dict_del_str(d, text) == OM_OK);
            } else {
                om_object *dk;
                while (!(dk = om_int_new(s.rt, e->n)))
                    if (!sweep_failed(&s))
                        return false;
                CHECK(om_dict_del(d, dk) == OM_OK);
                om_decref(dk);
            }
            e->alive = false;
        }
    }
    CHECK(dict_matches(d, model, count));
    bool fired = sweep_fired(&s);
    CHECK(s.failures == (fired ? 1 : 0));
    om_decref(d);
    finish(s.rt);
    return fired;
}

static void alloc_failure_sweep(void) {
    uint64_t nth = 1;
    while (build_dict_failing_at(nth) && nth < 100000)
        nth++;
    CHECK(nth > 200);
}

TEST_MAIN(T(new_and_empty), T(set_get_refcounts),
          T(free_and_clear_drop_references), T(str_keys_by_value),
          T(int_and_str_keys_differ), T(identity_keys_without_hash),
          T(user_hash_and_eq), T(colliding_keys), T(insertion_order),
          T(next_edges), T(delete_while_iterating), T(wrong_type_and_null),
          T(immortal_keys_and_values),
          T(clear_runs_finalizers_on_empty_dict),
          T(del_and_replace_run_finalizers_after_update),
          T(traverse_and_direct_clear), T(many_keys_against_model),
          T(alloc_failure_sweep))
