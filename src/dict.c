/*
 * dict.c — om_dict, an insertion-ordered hash map from objects to objects,
 * laid out as CPython's compact dict: a dense array of entries in insertion
 * order plus a sparse index of entry numbers (docs/design.md, "Ready
 * containers").
 */
#include "internal.h"

#include <string.h>

typedef struct dict_entry {
    uint64_t hash;
    om_object *key;      /* NULL: entry deleted */
    om_object *value;
} dict_entry;

/* Index slot values other than entry numbers. */
#define SLOT_EMPTY (-1)
#define SLOT_DELETED (-2)
#define MIN_INDEX_SLOTS 8

/*
 * Invariants: index_slots is 0 or a power of two; entries_cap is two thirds
 * of it, so the index is never more than 2/3 full; entries [0, nentries)
 * were appended in insertion order and those with a non-NULL key are the
 * `len` live ones; each live entry is named by exactly one index slot on its
 * probe path.  `table` is one om_malloc block: the index, then the entries.
 */
typedef struct om_dict {
    OM_OBJECT_HEAD
    size_t len;
    size_t nentries;
    size_t entries_cap;
    size_t index_slots;
    void *table;
} om_dict;

static int64_t *dict_index(const om_dict *d) { return d->table; }

static dict_entry *dict_entries(const om_dict *d) {
    return (dict_entry *)(dict_index(d) + d->index_slots);
}

static int dict_traverse(om_object *self, om_visit_fn visit, void *arg) {
    om_dict *d = (om_dict *)self;
    dict_entry *e = d->table ? dict_entries(d) : NULL;
    for (size_t i = 0; i < d->nentries; i++) {
        if (!e[i].key)
            continue;
        int r = visit(e[i].key, arg);
        if (!r)
            r = visit(e[i].value, arg);
        if (r)
            return r;
    }
    return 0;
}

static void dict_clear(om_object *self) {
    om_dict *d = (om_dict *)self;
    void *table = d->table;
    dict_entry *e = table ? dict_entries(d) : NULL;
    size_t n = d->nentries;
    /* Detach the table first: finalizers run by the decrefs below see an
     * empty dict. */
    d->table = NULL;
    d->len = d->nentries = d->entries_cap = d->index_slots = 0;
    for (size_t i = 0; i < n; i++) {
        om_decref(e[i].key);
        om_decref(e[i].value);
    }
    om_free(om_runtime_of(self), table);
}

static size_t dict_extra_size(const om_object *self) {
    const om_dict *d = (const om_dict *)self;
    return d->index_slots * sizeof(int64_t) +
           d->entries_cap * sizeof(dict_entry);
}

const om_type om_dict_type = {
    .name = "dict",
    .size = sizeof(om_dict),
    .traverse = dict_traverse,
    .clear = dict_clear,
    .extra_size = dict_extra_size,
};

om_object *om_dict_new(om_runtime *rt) {
    return om_object_alloc(rt, "om_dict_new", &om_dict_type, 0,
                           OM_RETURN_ADDRESS());
}

/* ---- lookup ------------------------------------------------------------------- */

/* How a lookup recognises its key: an object, the bytes of a C string, or
 * a caller's test (om_dict_find_key). */
typedef struct dict_key {
    uint64_t hash;
    const om_object *obj;   /* NULL for the other two */
    const char *bytes;
    size_t len;
    om_dict_key_test test;  /* non-NULL: the caller's test, with ctx */
    const void *ctx;
} dict_key;

uint64_t om_object_hash(const om_object *o) {
    const om_type *t = o->om_type_;
    return t->hash ? t->hash(o) : om_hash_word((uint64_t)(uintptr_t)o);
}

bool om_objects_equal(const om_object *a, const om_object *b) {
    if (a == b)
        return true;
    const om_type *t = a->om_type_;
    return b->om_type_ == t && t->hash && t->eq && t->eq(a, b);
}

static bool key_matches(const dict_key *k, const dict_entry *e) {
    if (e->hash != k->hash)
        return false;
    if (k->test)
        return k->test(e->key, k->ctx);
    if (!k->obj)
        return om_str_equals_bytes(e->key, k->hash, k->bytes, k->len);
    return om_objects_equal(e->key, k->obj);
}

/* Probe sequence: linear, starting at the hash's low bits. */
#define PROBE(d, h, i) \
    for (size_t i = (size_t)(h) & ((d)->index_slots - 1);; \
         i = (i + 1) & ((d)->index_slots - 1))

/* The index slot naming the entry for k, or SIZE_MAX when absent. */
static size_t dict_find(const om_dict *d, const dict_key *k) {
    if (!d->index_slots)
        return SIZE_MAX;
    const int64_t *index = dict_index(d);
    const dict_entry *e = dict_entries(d);
    PROBE(d, k->hash, i) {
        int64_t ix = index[i];
        if (ix == SLOT_EMPTY)
            return SIZE_MAX;
        if (ix >= 0 && key_matches(k, &e[ix]))
            return i;
    }
}

/* Rebuild the table with room for at least `want` live entries, dropping
 * deleted ones; the dict is unchanged on failure. */
static om_status dict_resize(const char *func, om_dict *d, size_t want) {
    om_runtime *rt = om_runtime_of(&d->om_head);
    size_t slots = MIN_INDEX_SLOTS;
    while (slots / 3 * 2 < want) {
        if (slots > SIZE_MAX / 2 / (sizeof(int64_t) + sizeof(dict_entry)))
            return om_error(rt, OM_ERR_OVERFLOW, "%s: dict too large", func);
        slots *= 2;
    }
    size_t cap = slots / 3 * 2;
    void *table = om_malloc(rt, slots * sizeof(int64_t) + cap * sizeof(dict_entry));
    if (!table)
        return om_error(rt, OM_ERR_NOMEM,
                        "%s: out of memory growing a dict of %zu entries", func,
                        d->len);
    om_dict fresh = *d;
    fresh.table = table;
    fresh.index_slots = slots;
    fresh.entries_cap = cap;
    fresh.nentries = 0;
    int64_t *index = dict_index(&fresh);
    for (size_t i = 0; i < slots; i++)
        index[i] = SLOT_EMPTY;
    dict_entry *to = dict_entries(&fresh);
    const dict_entry *from = d->table ? dict_entries(d) : NULL;
    for (size_t j = 0; j < d->nentries; j++) {
        if (!from[j].key)
            continue;
        to[fresh.nentries] = from[j];
        PROBE(&fresh, from[j].hash, i) {
            if (index[i] == SLOT_EMPTY) {
                index[i] = (int64_t)fresh.nentries++;
                break;
            }
        }
    }
    om_free(rt, d->table);
    d->table = fresh.table;
    d->index_slots = fresh.index_slots;
    d->entries_cap = fresh.entries_cap;
    d->nentries = fresh.nentries;
    return OM_OK;
}

/* Store value under k: replace an existing entry's value, or append a new
 * entry whose key is `key_obj` (already owned by the caller, who passes its
 * reference on only when this returns OM_OK and *appended is true). */
static om_status dict_store(const char *func, om_dict *d, const dict_key *k,
                            om_object *key_obj, om_object *value,
                            bool *appended) {
    *appended = false;
    size_t slot = dict_find(d, k);
    if (slot != SIZE_MAX) {
        om_setref(&dict_entries(d)[dict_index(d)[slot]].value, value);
        return OM_OK;
    }
    if (!key_obj)
        return OM_ERR_KEY; /* caller must supply a key object to insert */
    if (d->nentries == d->entries_cap) {
        om_status st = dict_resize(func, d, d->len + 1 + (d->len >> 1));
        if (st != OM_OK)
            return st;
    }
    int64_t *index = dict_index(d);
    PROBE(d, k->hash, i) {
        if (index[i] < 0) { /* empty or deleted: reuse it */
            index[i] = (int64_t)d->nentries;
            break;
        }
    }
    dict_entry *e = &dict_entries(d)[d->nentries++];
    e->hash = k->hash;
    e->key = key_obj;
    om_incref(value);
    e->value = value;
    d->len++;
    *appended = true;
    return OM_OK;
}

/* Remove the entry named by index slot `slot`. */
static void dict_remove(om_dict *d, size_t slot) {
    int64_t *index = dict_index(d);
    dict_entry *e = &dict_entries(d)[index[slot]];
    om_object *key = e->key, *value = e->value;
    index[slot] = SLOT_DELETED;
    e->key = e->value = NULL;
    d->len--;
    om_decref(key);
    om_decref(value);
}

/* ---- object keys ---------------------------------------------------------------- */

static om_status check_args(const char *func, om_object *dict,
                            const om_object *key) {
    om_status st = om_expect(func, dict, &om_dict_type);
    if (st == OM_OK && !key)
        st = om_error(om_runtime_of(dict), OM_ERR_ARG, "%s: key is NULL", func);
    return st;
}

static dict_key object_key(const om_object *key) {
    dict_key k = {om_object_hash(key), key, NULL, 0, NULL, NULL};
    return k;
}

om_object *om_dict_find_key(om_object *dict, uint64_t hash,
                            om_dict_key_test test, const void *ctx) {
    om_dict *d = (om_dict *)dict;
    dict_key k = {hash, NULL, NULL, 0, test, ctx};
    size_t slot = dict_find(d, &k);
    return slot == SIZE_MAX ? NULL : dict_entries(d)[dict_index(d)[slot]].key;
}

om_status om_dict_set(om_object *dict, om_object *key, om_object *value) {
    om_status st = check_args("om_dict_set", dict, key);
    if (st == OM_OK && !value)
        st = om_error(om_runtime_of(dict), OM_ERR_ARG,
                      "om_dict_set: value is NULL");
    if (st != OM_OK)
        return st;
    dict_key k = object_key(key);
    bool appended;
    om_incref(key);
    st = dict_store("om_dict_set", (om_dict *)dict, &k, key, value, &appended);
    if (!appended)
        om_decref(key);
    return st;
}

om_object *om_dict_get(om_object *dict, om_object *key) {
    if (check_args("om_dict_get", dict, key) != OM_OK)
        return NULL;
    om_dict *d = (om_dict *)dict;
    dict_key k = object_key(key);
    size_t slot = dict_find(d, &k);
    return slot == SIZE_MAX ? NULL
                            : dict_entries(d)[dict_index(d)[slot]].value;
}

int om_dict_contains(om_object *dict, om_object *key) {
    om_status st = check_args("om_dict_contains", dict, key);
    if (st != OM_OK)
        return st;
    dict_key k = object_key(key);
    return dict_find((om_dict *)dict, &k) != SIZE_MAX;
}

/* A C-string key as messages show it: quoted, cut at 40 bytes. */
static void describe_bytes(char *buf, size_t size, const char *data,
                           size_t len) {
    snprintf(buf, size, "'%.*s%s'", len > 40 ? 40 : (int)len, data,
             len > 40 ? "..." : "");
}

/* An object key as messages show it: str and int by value. */
static void describe_key(char *buf, size_t size, const om_object *key) {
    if (key->om_type_ == &om_str_type)
        describe_bytes(buf, size, om_str_data(key), om_str_len(key));
    else if (key->om_type_ == &om_int_type)
        snprintf(buf, size, "%lld", (long long)om_int_value(key));
    else
        snprintf(buf, size, "<%s object at %p>", key->om_type_->name,
                 (const void *)key);
}

/* Delete k, or report it missing under `shown` (the key as text). */
static om_status dict_delete(const char *func, om_dict *d, const dict_key *k,
                             const char *shown) {
    size_t slot = dict_find(d, k);
    if (slot == SIZE_MAX)
        return om_error(om_runtime_of(&d->om_head), OM_ERR_KEY,
                        "%s: key %s not found", func, shown);
    dict_remove(d, slot);
    return OM_OK;
}

om_status om_dict_del(om_object *dict, om_object *key) {
    om_status st = check_args("om_dict_del", dict, key);
    if (st != OM_OK)
        return st;
    dict_key k = object_key(key);
    char shown[80];
    describe_key(shown, sizeof shown, key);
    return dict_delete("om_dict_del", (om_dict *)dict, &k, shown);
}

/* ---- C-string keys ---------------------------------------------------------------- */

static om_status check_str_args(const char *func, om_object *dict,
                                const char *key) {
    om_status st = om_expect(func, dict, &om_dict_type);
    if (st == OM_OK && !key)
        st = om_error(om_runtime_of(dict), OM_ERR_ARG, "%s: key is NULL", func);
    return st;
}

static dict_key str_key(const char *key) {
    size_t len = strlen(key);
    dict_key k = {om_hash_bytes(key, len), NULL, key, len, NULL, NULL};
    return k;
}

om_status om_dict_set_str(om_object *dict, const char *key, om_object *value) {
    om_status st = check_str_args("om_dict_set_str", dict, key);
    if (st == OM_OK && !value)
        st = om_error(om_runtime_of(dict), OM_ERR_ARG,
                      "om_dict_set_str: value is NULL");
    if (st != OM_OK)
        return st;
    om_dict *d = (om_dict *)dict;
    dict_key k = str_key(key);
    bool appended;
    /* Replace in place when present, so no key object is made. */
    if (dict_store("om_dict_set_str", d, &k, NULL, value, &appended) == OM_OK)
        return OM_OK;
    om_object *key_obj = om_str_from_bytes(om_runtime_of(dict), key, k.len);
    if (!key_obj)
        return om_last_status(om_runtime_of(dict));
    st = dict_store("om_dict_set_str", d, &k, key_obj, value, &appended);
    if (!appended)
        om_decref(key_obj);
    return st;
}

om_object *om_dict_get_str(om_object *dict, const char *key) {
    if (check_str_args("om_dict_get_str", dict, key) != OM_OK)
        return NULL;
    om_dict *d = (om_dict *)dict;
    dict_key k = str_key(key);
    size_t slot = dict_find(d, &k);
    return slot == SIZE_MAX ? NULL
                            : dict_entries(d)[dict_index(d)[slot]].value;
}

om_status om_dict_del_str(om_object *dict, const char *key) {
    om_status st = check_str_args("om_dict_del_str", dict, key);
    if (st != OM_OK)
        return st;
    dict_key k = str_key(key);
    char shown[80];
    describe_bytes(shown, sizeof shown, key, k.len);
    return dict_delete("om_dict_del_str", (om_dict *)dict, &k, shown);
}

/* ---- size and iteration --------------------------------------------------------- */

size_t om_dict_len(const om_object *dict) {
    return om_expect("om_dict_len", dict, &om_dict_type) == OM_OK
               ? ((const om_dict *)dict)->len
               : 0;
}

int om_dict_next(om_object *dict, size_t *pos, om_object **key,
                 om_object **value) {
    if (om_expect("om_dict_next", dict, &om_dict_type) != OM_OK || !pos)
        return 0;
    om_dict *d = (om_dict *)dict;
    while (*pos < d->nentries) {
        dict_entry *e = &dict_entries(d)[(*pos)++];
        if (e->key) {
            if (key)
                *key = e->key;
            if (value)
                *value = e->value;
            return 1;
        }
    }
    return 0;
}

om_status om_dict_clear(om_object *dict) {
    om_status st = om_expect("om_dict_clear", dict, &om_dict_type);
    if (st == OM_OK)
        dict_clear(dict);
    return st;
}
