/*
 * finalize.c — om_finalize objects, Python's weakref.finalize: fn(data)
 * runs once when an object dies, when called, or when the runtime is
 * freed (docs/design.md, "Weak references").
 *
 * Invariants: a finalizer is alive exactly while it is in its runtime's
 * registry (rt->finalizers, newest first), which then holds a reference to
 * it, and `ref` is a weak reference to the object whose callback is
 * finalizer_ref_died with the finalizer as data.  Killing it (running,
 * detaching, shutdown) unlinks it, drops `ref` and the registry's
 * reference, in that order.
 */
#include "internal.h"

typedef struct om_finalizer {
    OM_OBJECT_HEAD
    om_object *ref;
    om_finalizer_fn fn;
    void *data;
    bool atexit;
    struct om_finalizer *prev, *next;   /* the registry, newest first */
} om_finalizer;

static int finalizer_traverse(om_object *self, om_visit_fn visit, void *arg) {
    om_finalizer *f = (om_finalizer *)self;
    return f->ref ? visit(f->ref, arg) : 0;
}

static void finalizer_clear(om_object *self) {
    om_finalizer *f = (om_finalizer *)self;
    om_object *ref = f->ref;
    f->ref = NULL;
    om_decref(ref);
}

const om_type om_finalize_type = {
    .name = "finalize",
    .size = sizeof(om_finalizer),
    .traverse = finalizer_traverse,
    .clear = finalizer_clear,
};

static bool is_alive(const om_finalizer *f) { return f->ref != NULL; }

/* Unlink a live finalizer and drop what keeps it alive; the caller holds a
 * reference of its own across this call. */
static void kill(om_finalizer *f) {
    om_runtime *rt = om_runtime_of(&f->om_head);
    if (f->prev)
        f->prev->next = f->next;
    else
        rt->finalizers = f->next;
    if (f->next)
        f->next->prev = f->prev;
    f->prev = f->next = NULL;
    om_object *ref = f->ref;
    f->ref = NULL;
    ((om_weakref *)ref)->callback = NULL;
    om_decref(ref);
    om_decref(&f->om_head);   /* the registry's */
}

/* Kill f and run its function. */
static void run(om_finalizer *f) {
    om_incref(&f->om_head);
    om_finalizer_fn fn = f->fn;
    void *data = f->data;
    kill(f);
    fn(data);
    om_decref(&f->om_head);
}

static void finalizer_ref_died(om_object *ref, void *data) {
    (void)ref;
    om_finalizer *f = data;
    if (is_alive(f))
        run(f);
}

om_object *om_finalize_new(om_object *obj, om_finalizer_fn fn, void *data) {
    om_runtime *rt = om_runtime_of(obj);
    if (!rt || !fn)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_finalize_new: %s is NULL",
                            !obj ? "object" : !rt ? "object's runtime"
                                                  : "function");
    if (!(obj->om_type_->flags & OM_TYPE_WEAKREFABLE))
        return OM_FAIL_NULL(rt, OM_ERR_TYPE,
                            "om_finalize_new: cannot create weak reference "
                            "to '%s' object",
                            obj->om_type_->name);
    om_finalizer *f = (om_finalizer *)om_object_alloc(
        rt, "om_finalize_new", &om_finalize_type, 0, OM_RETURN_ADDRESS());
    if (!f)
        return NULL;
    f->ref = om_weakref_new(obj, finalizer_ref_died, f);
    if (!f->ref) {
        om_decref(&f->om_head);
        /* Reported as this function's failure, not om_weakref_new's (obj
         * was checked: only memory can fail). */
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_finalize_new: out of memory for its weak "
                            "reference");
    }
    f->fn = fn;
    f->data = data;
    f->atexit = true;
    f->next = rt->finalizers;
    if (f->next)
        f->next->prev = f;
    rt->finalizers = f;
    om_incref(&f->om_head);   /* the registry's */
    return &f->om_head;
}

static om_finalizer *finalizer_of(const char *func, const om_object *o) {
    if (om_expect(func, o, &om_finalize_type) != OM_OK)
        return NULL;
    return (om_finalizer *)(uintptr_t)o;
}

int om_finalize_alive(const om_object *f) {
    return f && f->om_type_ == &om_finalize_type &&
           is_alive((const om_finalizer *)f);
}

int om_finalize_call(om_object *fo) {
    om_finalizer *f = finalizer_of("om_finalize_call", fo);
    if (!f || !is_alive(f))
        return 0;
    run(f);
    return 1;
}

/* peek and detach: the object, fn and data of a live finalizer. */
static om_object *describe(om_finalizer *f, om_finalizer_fn *fn,
                           void **data) {
    if (!f || !is_alive(f))
        return NULL;
    om_object *obj = om_weakref_get(f->ref);
    if (obj) {
        if (fn)
            *fn = f->fn;
        if (data)
            *data = f->data;
    }
    return obj;
}

om_object *om_finalize_peek(om_object *fo, om_finalizer_fn *fn, void **data) {
    return describe(finalizer_of("om_finalize_peek", fo), fn, data);
}

om_object *om_finalize_detach(om_object *fo, om_finalizer_fn *fn,
                              void **data) {
    om_finalizer *f = finalizer_of("om_finalize_detach", fo);
    om_object *obj = describe(f, fn, data);
    if (obj)
        kill(f);
    return obj;
}

int om_finalize_get_atexit(const om_object *fo) {
    return fo && fo->om_type_ == &om_finalize_type &&
           ((const om_finalizer *)fo)->atexit;
}

om_status om_finalize_set_atexit(om_object *fo, int atexit) {
    om_status st = om_expect("om_finalize_set_atexit", fo, &om_finalize_type);
    if (st == OM_OK)
        ((om_finalizer *)fo)->atexit = atexit != 0;
    return st;
}

void om_finalize_shutdown(om_runtime *rt) {
    /* As Python at exit: no automatic collection from here on. */
    om_gc_disable(rt);
    /* Newest first; one may make others, which run too (they are newer,
     * so the walk restarts from the head each time). */
    for (;;) {
        om_finalizer *f = rt->finalizers;
        while (f && !f->atexit)
            f = f->next;
        if (!f)
            break;
        run(f);
    }
    while (rt->finalizers) {
        om_finalizer *f = rt->finalizers;
        om_incref(&f->om_head);
        kill(f);
        om_decref(&f->om_head);
    }
}
