/*
 * tuple.c — om_tuple, a fixed-size sequence of references set at creation,
 * the C counterpart of Python's tuple (docs/design.md, "Ready containers").
 */
#include "internal.h"

#include <stdarg.h>

typedef struct om_tuple {
    OM_OBJECT_HEAD
    size_t len;
    om_object *items[];  /* NULL only after clear */
} om_tuple;

static int tuple_traverse(om_object *self, om_visit_fn visit, void *arg) {
    om_tuple *t = (om_tuple *)self;
    for (size_t i = t->len; i-- > 0;) {
        if (t->items[i]) {
            int r = visit(t->items[i], arg);
            if (r)
                return r;
        }
    }
    return 0;
}

static void tuple_clear(om_object *self) {
    om_tuple *t = (om_tuple *)self;
    for (size_t i = 0; i < t->len; i++) {
        om_object *item = t->items[i];
        t->items[i] = NULL;
        om_decref(item);
    }
}

static size_t tuple_extra_size(const om_object *self) {
    return ((const om_tuple *)self)->len * sizeof(om_object *);
}

const om_type om_tuple_type = {
    .name = "tuple",
    .size = sizeof(om_tuple),
    .traverse = tuple_traverse,
    .clear = tuple_clear,
    .extra_size = tuple_extra_size,
};

static bool tuple_too_long(om_runtime *rt, const char *func, size_t n) {
    if (n <= (SIZE_MAX - sizeof(om_tuple)) / sizeof(om_object *))
        return false;
    om_error(rt, OM_ERR_OVERFLOW, "%s: %zu items is too many", func, n);
    return true;
}

/* An empty-slotted tuple of n items for `func`, whose caller resumes at
 * ret; or NULL with the error recorded. */
static om_tuple *tuple_alloc(om_runtime *rt, const char *func, size_t n,
                             uintptr_t ret) {
    if (tuple_too_long(rt, func, n))
        return NULL;
    om_tuple *t = (om_tuple *)om_object_alloc(rt, func, &om_tuple_type,
                                              n * sizeof(om_object *), ret);
    if (t)
        t->len = n;
    return t;
}

om_object *om_tuple_new(om_runtime *rt, size_t n, om_object *const *items) {
    if (!rt)
        return NULL;
    if (n && !items)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_tuple_new: items is NULL");
    /* Refuse an impossible n before reading that many items. */
    if (tuple_too_long(rt, "om_tuple_new", n))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!items[i])
            return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_tuple_new: item %zu is NULL",
                                i);
    om_tuple *t = tuple_alloc(rt, "om_tuple_new", n, OM_RETURN_ADDRESS());
    if (!t)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        om_incref(items[i]);
        t->items[i] = items[i];
    }
    return &t->om_head;
}

om_object *om_tuple_pack(om_runtime *rt, size_t n, ...) {
    if (!rt)
        return NULL;
    om_tuple *t = tuple_alloc(rt, "om_tuple_pack", n, OM_RETURN_ADDRESS());
    if (!t)
        return NULL;
    va_list ap;
    va_start(ap, n);
    size_t i = 0;
    for (; i < n; i++) {
        om_object *item = va_arg(ap, om_object *);
        if (!item)
            break;
        om_incref(item);
        t->items[i] = item;
    }
    va_end(ap);
    if (i < n) {
        om_decref(&t->om_head); /* drops the items taken so far */
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_tuple_pack: item %zu is NULL",
                            i);
    }
    return &t->om_head;
}

om_object *om_tuple_get(om_object *tuple, ptrdiff_t index) {
    if (om_expect("om_tuple_get", tuple, &om_tuple_type) != OM_OK)
        return NULL;
    om_tuple *t = (om_tuple *)tuple;
    size_t i;
    if (!om_index_resolve(index, t->len, &i))
        return OM_FAIL_NULL(om_runtime_of(tuple), OM_ERR_INDEX,
                            "om_tuple_get: index %td out of range for a tuple "
                            "of %zu", index, t->len);
    return t->items[i];
}

bool om_tuple_all_untracked(const om_object *tuple) {
    const om_tuple *t = (const om_tuple *)tuple;
    for (size_t i = 0; i < t->len; i++)
        if (t->items[i] && (t->items[i]->om_refword_ & OM_RW_TRACKED))
            return false;
    return true;
}

size_t om_tuple_len(const om_object *tuple) {
    return om_expect("om_tuple_len", tuple, &om_tuple_type) == OM_OK
               ? ((const om_tuple *)tuple)->len
               : 0;
}
