/*
 * weaktable.c — weak-value dicts, weak-key dicts and weak sets, as Python's
 * WeakValueDictionary, WeakKeyDictionary and WeakSet: an om_dict whose
 * weakly held side is a weak reference with a callback that removes the
 * entry (docs/design.md, "Weak references").
 *
 * Layout of the dict per kind:
 *   value dict: key -> ref(value), the ref's `key` naming the entry's key
 *   key dict:   ref(key) -> value
 *   set:        ref(item) -> the same ref
 * A ref to a key hashes as its referent and compares by referent while
 * alive (weakref.c), so the dict finds it from the key itself.
 *
 * Invariants: every entry whose ref is dead is counted in `dead` (its ref
 * died while iterators ran, or the collector cleared it without a
 * callback), which may over-count (an entry deleted or given a new value
 * meanwhile); when no iterator runs, purge removes those entries before
 * anything reads the dict's length.  The table's refs carry om_weaktable_ref_died and the
 * table as callback and data while the table holds them, never after.
 */
#include "internal.h"

typedef enum weak_kind { WEAK_VALUES, WEAK_KEYS, WEAK_SET } weak_kind;

typedef struct weaktable {
    OM_OBJECT_HEAD
    om_object *dict;
    size_t iterators;   /* iterations under way */
    size_t dead;        /* dead entries not yet removed (see above) */
    weak_kind kind;
} weaktable;

/* The ref of an entry: the value of a value dict, else the key. */
static om_weakref *entry_ref(const weaktable *t, om_object *key,
                             om_object *value) {
    return (om_weakref *)(t->kind == WEAK_VALUES ? value : key);
}

/* The table lets ref go: nothing may call back into it any more. */
static void forget_ref(om_object *ref) {
    om_weakref *r = (om_weakref *)ref;
    r->callback = NULL;
    r->data = NULL;
    r->key = NULL;
}

/* The internal dict is not tracked (see table_new): the table shows the
 * collector the dict's references as its own. */
static int weaktable_traverse(om_object *self, om_visit_fn visit, void *arg) {
    weaktable *t = (weaktable *)self;
    return t->dict ? om_dict_type.traverse(t->dict, visit, arg) : 0;
}

static void weaktable_clear(om_object *self) {
    weaktable *t = (weaktable *)self;
    om_object *dict = t->dict;
    if (!dict)
        return;
    om_object *key, *value;
    for (size_t pos = 0; om_dict_next(dict, &pos, &key, &value);)
        forget_ref(&entry_ref(t, key, value)->om_head);
    t->dict = NULL;
    t->dead = 0;
    om_decref(dict);
}

#define WEAKTABLE_TYPE(type_name, text)                                       \
    static const om_type type_name = {                                        \
        .name = text,                                                         \
        .size = sizeof(weaktable),                                            \
        .traverse = weaktable_traverse,                                       \
        .clear = weaktable_clear,                                             \
    }
WEAKTABLE_TYPE(weakvaluedict_type, "weakvaluedict");
WEAKTABLE_TYPE(weakkeydict_type, "weakkeydict");
WEAKTABLE_TYPE(weakset_type, "weakset");

static const om_type *const kind_types[] = {
    [WEAK_VALUES] = &weakvaluedict_type,
    [WEAK_KEYS] = &weakkeydict_type,
    [WEAK_SET] = &weakset_type,
};

/* A new table for `func`, whose caller resumes at ret. */
static om_object *table_new(om_runtime *rt, const char *func, weak_kind kind,
                            uintptr_t ret) {
    weaktable *t =
        (weaktable *)om_object_alloc(rt, func, kind_types[kind], 0, ret);
    if (!t)
        return NULL;
    t->kind = kind;
    t->dict = om_dict_new(rt);
    if (!t->dict) {
        om_decref(&t->om_head);
        return NULL;
    }
    /* The dict is not tracked: tracked, it could be cleared by the
     * collector before its table (both in one garbage cycle), and
     * weaktable_clear would then find it empty and forget no ref, leaving
     * a ref the user still holds (om_weakref_list) with the freed table as
     * callback data.  Untracked, the dict only dies through
     * weaktable_clear, which forgets every ref first. */
    om_gc_untrack(t->dict);
    return &t->om_head;
}

om_object *om_weakvaluedict_new(om_runtime *rt) {
    return table_new(rt, "om_weakvaluedict_new", WEAK_VALUES, OM_RETURN_ADDRESS());
}

om_object *om_weakkeydict_new(om_runtime *rt) {
    return table_new(rt, "om_weakkeydict_new", WEAK_KEYS, OM_RETURN_ADDRESS());
}

om_object *om_weakset_new(om_runtime *rt) {
    return table_new(rt, "om_weakset_new", WEAK_SET, OM_RETURN_ADDRESS());
}

#define ANY_KIND 7u
#define KIND(k) (1u << (k))

/* The table, when o is one of `kinds` (a bit per weak_kind). */
static om_status get_table(const char *func, om_object *o, unsigned kinds,
                           weaktable **out) {
    if (!o)
        return om_error(NULL, OM_ERR_ARG, "%s: table is NULL", func);
    for (unsigned k = 0; k < 3; k++) {
        if ((kinds & KIND(k)) && o->om_type_ == kind_types[k] &&
            ((weaktable *)o)->dict) {
            *out = (weaktable *)o;
            return OM_OK;
        }
    }
    return om_error(om_runtime_of(o), OM_ERR_TYPE,
                    "%s: expected a %s, got a '%s'", func,
                    kinds == ANY_KIND ? "weak table"
                    : kinds == KIND(WEAK_VALUES) ? "weakvaluedict"
                    : kinds == KIND(WEAK_KEYS)   ? "weakkeydict"
                                                 : "weakset",
                    o->om_type_->name);
}

/* An object argument of a table call: non-NULL and, when it is the weakly
 * held one, weakly referenceable. */
static om_status check_object(const char *func, om_object *table,
                              om_object *obj, const char *what,
                              bool weakly_held) {
    if (!obj)
        return om_error(om_runtime_of(table), OM_ERR_ARG, "%s: %s is NULL",
                        func, what);
    if (weakly_held && !(obj->om_type_->flags & OM_TYPE_WEAKREFABLE))
        return om_error(om_runtime_of(table), OM_ERR_TYPE,
                        "%s: cannot create weak reference to '%s' object",
                        func, obj->om_type_->name);
    return OM_OK;
}

/* get_table, then check_object for obj. */
static om_status get_args(const char *func, om_object *table, unsigned kinds,
                          weaktable **t, om_object *obj, const char *what,
                          bool weakly_held) {
    om_status st = get_table(func, table, kinds, t);
    return st != OM_OK ? st
                       : check_object(func, table, obj, what, weakly_held);
}

/* ---- removal of dead entries ---------------------------------------------------- */

static bool ref_dead(const om_weakref *r) { return r->referent == NULL; }

/* Remove the entries whose ref died, unless an iteration runs.  Removing
 * drops references, which may run code that kills more entries: the pass
 * counts as an iteration (such deaths are only counted) and repeats. */
static void purge(weaktable *t) {
    if (t->iterators)
        return;
    while (t->dead && t->dict) {
        t->dead = 0;
        t->iterators++;
        om_object *key, *value;
        for (size_t pos = 0; om_dict_next(t->dict, &pos, &key, &value);) {
            om_weakref *r = entry_ref(t, key, value);
            if (ref_dead(r)) {
                forget_ref(&r->om_head);
                om_dict_del(t->dict, key);
            }
        }
        t->iterators--;
    }
}

void om_weaktable_note_dead(void *table) { ((weaktable *)table)->dead++; }

void om_weaktable_ref_died(om_object *ref, void *table) {
    weaktable *t = table;
    om_weakref *r = (om_weakref *)ref;
    if (t->iterators) {
        t->dead++;
        return;
    }
    om_object *key = r->key;
    forget_ref(ref);
    /* Remove the entry only if it still holds this ref (a value dict's
     * entry may have been given a new value since). */
    if (t->kind == WEAK_VALUES) {
        if (om_dict_get(t->dict, key) == ref)
            om_dict_del(t->dict, key);
    } else {
        om_dict_del(t->dict, ref);
    }
}

/* ---- lookups ------------------------------------------------------------------------ */

/* Whether the entry key `stored`, a ref, refers to an object equal to ctx. */
static bool ref_refers_to(const om_object *stored, const void *ctx) {
    const om_object *referent = ((const om_weakref *)stored)->referent;
    return referent && om_objects_equal(referent, ctx);
}

/* Whether the entry key `stored` equals ctx. */
static bool key_equals(const om_object *stored, const void *ctx) {
    return om_objects_equal(stored, ctx);
}

/* The ref under which a key dict or set stores key (borrowed), or NULL. */
static om_object *find_ref_key(weaktable *t, om_object *key) {
    return om_dict_find_key(t->dict, om_object_hash(key), ref_refers_to, key);
}

/* A new ref to obj for an entry of t: when obj dies it removes the entry.
 * Its hash is taken now, while obj lives. */
static om_object *entry_ref_new(weaktable *t, om_object *obj) {
    om_object *ref = om_weakref_new(obj, om_weaktable_ref_died, t);
    if (ref)
        (void)om_object_hash(ref);
    return ref;
}

/* Store ref under key (value dicts) or as key (the others), with value;
 * on failure the table is unchanged and ref forgotten. */
static om_status store(weaktable *t, om_object *key, om_object *ref,
                       om_object *value) {
    om_status st = om_dict_set(t->dict, key, value);
    if (st != OM_OK)
        forget_ref(ref);
    return st;
}

/* ---- value dicts ------------------------------------------------------------------- */

om_status om_weakvaluedict_set(om_object *table, om_object *key,
                               om_object *value) {
    weaktable *t = NULL;
    om_status st = get_args("om_weakvaluedict_set", table, KIND(WEAK_VALUES),
                            &t, key, "key", false);
    if (st == OM_OK)
        st = check_object("om_weakvaluedict_set", table, value, "value", true);
    if (st != OM_OK)
        return st;
    purge(t);
    om_object *ref = entry_ref_new(t, value);
    if (!ref)
        return om_last_status(om_runtime_of(table));
    om_object *old = om_dict_get(t->dict, key);
    om_incref(old);
    st = store(t, key, ref, ref);
    if (st == OM_OK) {
        /* An entry keeps the key it was made with, as a dict's does. */
        ((om_weakref *)ref)->key = om_dict_find_key(
            t->dict, om_object_hash(key), key_equals, key);
        if (old)
            forget_ref(old);
    }
    om_decref(old);
    om_decref(ref);
    return st;
}

om_object *om_weakvaluedict_get(om_object *table, om_object *key) {
    weaktable *t = NULL;
    if (get_args("om_weakvaluedict_get", table, KIND(WEAK_VALUES), &t, key,
                 "key", false) != OM_OK)
        return NULL;
    om_object *ref = om_dict_get(t->dict, key);
    return ref ? om_weakref_get(ref) : NULL;
}

om_status om_weakvaluedict_del(om_object *table, om_object *key) {
    weaktable *t = NULL;
    om_status st = get_args("om_weakvaluedict_del", table, KIND(WEAK_VALUES),
                            &t, key, "key", false);
    if (st != OM_OK)
        return st;
    om_object *ref = om_dict_get(t->dict, key);
    if (!ref || ref_dead((om_weakref *)ref))
        return om_error(om_runtime_of(table), OM_ERR_KEY,
                        "om_weakvaluedict_del: key not found");
    forget_ref(ref);
    return om_dict_del(t->dict, key);
}

/* ---- key dicts and sets --------------------------------------------------------------- */

/* Add key (with value, or as a set item when value is NULL). */
static om_status add_weak_key(const char *func, om_object *table,
                              unsigned kind, om_object *key,
                              om_object *value) {
    weaktable *t = NULL;
    om_status st = get_args(func, table, KIND(kind), &t, key,
                            kind == WEAK_SET ? "item" : "key", true);
    if (st == OM_OK && kind == WEAK_KEYS && !value)
        st = om_error(om_runtime_of(table), OM_ERR_ARG, "%s: value is NULL",
                      func);
    if (st != OM_OK)
        return st;
    purge(t);
    om_object *ref = find_ref_key(t, key);
    if (ref)
        return kind == WEAK_SET ? OM_OK : om_dict_set(t->dict, ref, value);
    ref = entry_ref_new(t, key);
    if (!ref)
        return om_last_status(om_runtime_of(table));
    st = store(t, ref, ref, kind == WEAK_SET ? ref : value);
    om_decref(ref);
    return st;
}

static om_status remove_weak_key(const char *func, om_object *table,
                                 unsigned kind, om_object *key) {
    weaktable *t = NULL;
    om_status st = get_args(func, table, KIND(kind), &t, key,
                            kind == WEAK_SET ? "item" : "key", false);
    if (st != OM_OK)
        return st;
    om_object *ref = find_ref_key(t, key);
    if (!ref)
        return om_error(om_runtime_of(table), OM_ERR_KEY, "%s: %s not found",
                        func, kind == WEAK_SET ? "item" : "key");
    forget_ref(ref);
    return om_dict_del(t->dict, ref);
}

om_status om_weakkeydict_set(om_object *table, om_object *key,
                             om_object *value) {
    return add_weak_key("om_weakkeydict_set", table, WEAK_KEYS, key, value);
}

om_object *om_weakkeydict_get(om_object *table, om_object *key) {
    weaktable *t = NULL;
    if (get_args("om_weakkeydict_get", table, KIND(WEAK_KEYS), &t, key, "key",
                 false) != OM_OK)
        return NULL;
    om_object *ref = find_ref_key(t, key);
    om_object *value = ref ? om_dict_get(t->dict, ref) : NULL;
    om_incref(value);
    return value;
}

om_status om_weakkeydict_del(om_object *table, om_object *key) {
    return remove_weak_key("om_weakkeydict_del", table, WEAK_KEYS, key);
}

om_status om_weakset_add(om_object *set, om_object *item) {
    return add_weak_key("om_weakset_add", set, WEAK_SET, item, NULL);
}

om_status om_weakset_discard(om_object *set, om_object *item) {
    return remove_weak_key("om_weakset_discard", set, WEAK_SET, item);
}

/* ---- all kinds -------------------------------------------------------------------------- */

int om_weaktable_contains(om_object *table, om_object *key) {
    weaktable *t = NULL;
    om_status st = get_args("om_weaktable_contains", table, ANY_KIND, &t, key,
                            "key", false);
    if (st != OM_OK)
        return st;
    if (t->kind != WEAK_VALUES)
        return find_ref_key(t, key) != NULL;
    om_object *ref = om_dict_get(t->dict, key);
    return ref && !ref_dead((om_weakref *)ref);
}

size_t om_weaktable_len(om_object *table) {
    weaktable *t = NULL;
    if (get_table("om_weaktable_len", table, ANY_KIND, &t) != OM_OK)
        return 0;
    purge(t);
    if (!t->dead)
        return om_dict_len(t->dict);
    size_t n = 0;
    om_object *key, *value;
    for (size_t pos = 0; om_dict_next(t->dict, &pos, &key, &value);)
        n += !ref_dead(entry_ref(t, key, value));
    return n;
}

/* ---- iteration ---------------------------------------------------------------------------- */

static void iter_release_item(om_weaktable_iter *it) {
    om_object *key = it->key_, *value = it->value_;
    it->key_ = it->value_ = NULL;
    om_decref(key);
    om_decref(value);
}

om_status om_weaktable_iter_begin(om_object *table, om_weaktable_iter *it) {
    weaktable *t = NULL;
    om_status st = get_table("om_weaktable_iter_begin", table, ANY_KIND, &t);
    if (st == OM_OK && !it)
        st = om_error(om_runtime_of(table), OM_ERR_ARG,
                      "om_weaktable_iter_begin: iterator is NULL");
    if (st != OM_OK)
        return st;
    om_incref(table);
    t->iterators++;
    it->table_ = table;
    it->pos_ = 0;
    it->key_ = it->value_ = NULL;
    return OM_OK;
}

int om_weaktable_iter_next(om_weaktable_iter *it, om_object **key,
                           om_object **value) {
    if (!it || !it->table_)
        return 0;
    iter_release_item(it);
    weaktable *t = (weaktable *)it->table_;
    om_object *k, *v;
    while (t->dict && om_dict_next(t->dict, &it->pos_, &k, &v)) {
        om_weakref *r = entry_ref(t, k, v);
        if (ref_dead(r))
            continue;
        switch (t->kind) {
        case WEAK_VALUES:
            v = r->referent;
            break;
        case WEAK_KEYS:
            k = r->referent;
            break;
        case WEAK_SET:
            k = r->referent;
            v = NULL;
            break;
        }
        om_incref(k);
        om_incref(v);
        it->key_ = k;
        it->value_ = v;
        if (key)
            *key = k;
        if (value)
            *value = v;
        return 1;
    }
    return 0;
}

void om_weaktable_iter_end(om_weaktable_iter *it) {
    if (!it || !it->table_)
        return;
    iter_release_item(it);
    om_object *table = it->table_;
    it->table_ = NULL;
    weaktable *t = (weaktable *)table;
    t->iterators--;
    if (t->dict)
        purge(t);
    om_decref(table);
}
