/*
 * weakref.c — weak references: om_weakref objects, each object's list of
 * them, clearing them when the referent dies and calling their callbacks
 * (docs/design.md, "Weak references").  The collector's side of the
 * interplay is in gc.c; it uses om_weakref_clear_all and
 * om_weakref_run_callbacks from here.
 */
#include "internal.h"

/* ---- the list of an object's weak references -------------------------------- */

static void list_unlink(om_weakref *r) {
    if (r->prev)
        r->prev->next = r->next;
    else
        *om_weaklist_slot(r->referent) = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Link r into obj's list: a plain ref at the head, a ref with a callback
 * after the plain one (newest callback ref first). */
static void list_link(om_object *obj, om_weakref *r) {
    om_weakref **slot = om_weaklist_slot(obj);
    om_weakref *head = *slot;
    if (head && !head->callback && r->callback) {
        r->prev = head;
        r->next = head->next;
        if (head->next)
            head->next->prev = r;
        head->next = r;
    } else {
        r->prev = NULL;
        r->next = head;
        if (head)
            head->prev = r;
        *slot = r;
    }
    r->referent = obj;
}

const char *om_weakref_check_list(const om_object *obj) {
    const om_weakref *prev = NULL;
    for (const om_weakref *r = *om_weaklist_slot(obj); r; r = r->next) {
        if (r->om_head.om_type_ != &om_weakref_type)
            return "lists a weak reference that is not one";
        if (r->referent != obj)
            return "lists a weak reference to another object";
        if (r->prev != prev)
            return "has a broken weak reference list";
        prev = r;
    }
    return NULL;
}

/* ---- the weak reference type ------------------------------------------------- */

/* A weak reference owns no strong reference; it is tracked all the same so
 * that a collection can tell a ref that is itself garbage (whose callback
 * must not run) from one that is not. */
static int weakref_traverse(om_object *self, om_visit_fn visit, void *arg) {
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

/* Detach from the referent, for good: the callback can no longer run. */
static void weakref_clear(om_object *self) {
    om_weakref *r = (om_weakref *)self;
    if (r->referent)
        list_unlink(r);
    r->referent = NULL;
    r->callback = NULL;
    r->data = NULL;
    r->key = NULL;
}

/* As Python's: the referent's hash, remembered once taken, so that a ref
 * keeps its hash after the referent dies.  A ref first hashed after that
 * hashes by identity (Python raises an error there). */
static uint64_t weakref_hash(const om_object *self) {
    om_weakref *r = (om_weakref *)(uintptr_t)self;
    if (!r->hashed && r->referent) {
        r->hash = om_object_hash(r->referent);
        r->hashed = true;
    }
    return r->hashed ? r->hash : om_hash_word((uint64_t)(uintptr_t)self);
}

/* Two live refs are equal when their referents are; otherwise only a ref
 * is equal to itself. */
static int weakref_eq(const om_object *self, const om_object *other) {
    const om_weakref *a = (const om_weakref *)self;
    const om_weakref *b = (const om_weakref *)other;
    if (a->referent && b->referent)
        return om_objects_equal(a->referent, b->referent);
    return a == b;
}

const om_type om_weakref_type = {
    .name = "weakref",
    .size = sizeof(om_weakref),
    .traverse = weakref_traverse,
    .clear = weakref_clear,
    .hash = weakref_hash,
    .eq = weakref_eq,
};

static bool is_weakref(const om_object *o) {
    return o && o->om_type_ == &om_weakref_type;
}

/* ---- API ------------------------------------------------------------------------ */

om_object *om_weakref_new(om_object *obj, om_weakref_callback callback,
                          void *data) {
    if (!obj || (obj->om_refword_ & OM_RW_STATIC))
        return OM_FAIL_NULL(NULL, OM_ERR_ARG, "om_weakref_new: %s",
                            obj ? "object belongs to no runtime"
                                : "object is NULL");
    om_runtime *rt = om_object_runtime(obj);
    if (!(obj->om_type_->flags & OM_TYPE_WEAKREFABLE))
        return OM_FAIL_NULL(rt, OM_ERR_TYPE,
                            "om_weakref_new: cannot create weak reference to "
                            "'%s' object",
                            obj->om_type_->name);
    if (!callback && data)
        return OM_FAIL_NULL(rt, OM_ERR_ARG,
                            "om_weakref_new: data given without a callback");
    om_weakref *head = *om_weaklist_slot(obj);
    if (!callback && head && !head->callback) {
        om_incref(&head->om_head);
        return &head->om_head;
    }
    om_weakref *r = (om_weakref *)om_object_new_builtin(
        rt, "om_weakref_new", &om_weakref_type, OM_RETURN_ADDRESS());
    if (!r)
        return NULL;
    r->callback = callback;
    r->data = data;
    list_link(obj, r);
    return &r->om_head;
}

om_object *om_weakref_get(om_object *ref) {
    if (OM_UNLIKELY(!is_weakref(ref))) {
        om_expect("om_weakref_get", ref, &om_weakref_type);
        return NULL;
    }
    /* A listed referent is alive (not queued, refcount > 0): the plain
     * increment om_incref would make after its checks. */
    om_object *o = ((om_weakref *)ref)->referent;
    if (o && !(o->om_refword_ & OM_RW_IMMORTAL))
        o->om_refword_ += OM_RC_ONE;
    return o;
}

int om_weakref_alive(const om_object *ref) {
    return is_weakref(ref) && ((const om_weakref *)ref)->referent != NULL;
}

size_t om_weakref_count(const om_object *obj) {
    if (!obj || !(obj->om_type_->flags & OM_TYPE_WEAKREFABLE) ||
        !om_runtime_of(obj))
        return 0;
    size_t n = 0;
    for (om_weakref *r = *om_weaklist_slot(obj); r; r = r->next)
        n++;
    return n;
}

om_object *om_weakref_list(om_object *obj) {
    om_runtime *rt = om_runtime_of(obj);
    if (!rt)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_weakref_list: %s",
                            obj ? "object belongs to no runtime"
                                : "object is NULL");
    om_object *list = om_list_new(rt);
    if (!list)
        goto nomem;
    if (!(obj->om_type_->flags & OM_TYPE_WEAKREFABLE))
        return list;
    /* Appending only grows the list's array: no object is made, so no
     * collection can run and change obj's list meanwhile. */
    for (om_weakref *r = *om_weaklist_slot(obj); r; r = r->next) {
        if (om_list_append(list, &r->om_head) != OM_OK) {
            om_decref(list);
            goto nomem;
        }
    }
    return list;
nomem:
    /* Reported as this function's failure, not the list function's
     * (only memory can fail there). */
    return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                        "om_weakref_list: out of memory for the list");
}

/* ---- clearing ---------------------------------------------------------------------- */

/* A cleared ref whose callback will not run: a weak table still learns
 * that its entry died. */
static void drop_callback(om_weakref *r) {
    if (r->callback == om_weaktable_ref_died)
        om_weaktable_note_dead(r->data);
    r->callback = NULL;
}

void om_weakref_clear_all(om_object *o, om_weakref_chain *due) {
    om_weakref **slot = om_weaklist_slot(o);
    om_weakref *r = *slot;
    *slot = NULL;
    while (r) {
        om_weakref *next = r->next;
        r->referent = NULL;
        r->prev = r->next = NULL;
        /* In a collection the garbage is COLLECTING and not REACHABLE
         * (the collector marks the uncollectable part REACHABLE for this
         * step: CPython calls back refs kept alive as uncollectable). */
        uint64_t w = r->om_head.om_refword_;
        bool in_garbage =
            (w & (OM_RW_COLLECTING | OM_RW_REACHABLE)) == OM_RW_COLLECTING;
        bool runs = r->callback && !in_garbage;
        if (runs && due) {
            r->om_head.om_refword_ += OM_RC_ONE; /* r is alive: listed */
            if (due->tail)
                due->tail->next = r;
            else
                due->head = r;
            due->tail = r;
        } else {
            drop_callback(r);
        }
        r = next;
    }
}

void om_weakref_clear_garbage(om_object *ref) {
    om_weakref *r = (om_weakref *)ref;
    if (r->referent)
        list_unlink(r);
    r->referent = NULL;
    drop_callback(r);
}

size_t om_weakref_run_callbacks(om_weakref_chain *due) {
    size_t freed = 0;
    while (due->head) {
        om_weakref *r = due->head;
        due->head = r->next;
        if (!due->head)
            due->tail = NULL;
        r->next = NULL;
        om_weakref_callback cb = r->callback;
        r->callback = NULL; /* once */
        if (cb)
            cb(&r->om_head, r->data);
        /* The chain's reference goes: plainly, unless it is the last. */
        uint64_t w = r->om_head.om_refword_;
        if (om_rc_of(w) > 1) {
            r->om_head.om_refword_ = w - OM_RC_ONE;
        } else {
            freed++;
            om_decref(&r->om_head);
        }
    }
    return freed;
}
