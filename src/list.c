/*
 * list.c — om_list, a growable array of references, the C counterpart of
 * Python's list (docs/design.md, "Ready containers").
 */
#include "internal.h"

#include <string.h>

typedef struct om_list {
    OM_OBJECT_HEAD
    size_t len;
    size_t cap;
    om_object **items;   /* om_malloc'ed, cap slots, NULL when cap == 0 */
} om_list;

static int list_traverse(om_object *self, om_visit_fn visit, void *arg) {
    om_list *l = (om_list *)self;
    /* Last to first, as CPython does (gc.get_referents([1, 2]) is [2, 1]). */
    for (size_t i = l->len; i-- > 0;) {
        int r = visit(l->items[i], arg);
        if (r)
            return r;
    }
    return 0;
}

static void list_clear(om_object *self) {
    om_list *l = (om_list *)self;
    om_object **items = l->items;
    size_t n = l->len;
    /* Detach the array first: finalizers run by the decrefs below see an
     * empty list. */
    l->items = NULL;
    l->len = l->cap = 0;
    while (n-- > 0)
        om_decref(items[n]);
    om_free(om_runtime_of(self), items);
}

static size_t list_extra_size(const om_object *self) {
    return ((const om_list *)self)->cap * sizeof(om_object *);
}

const om_type om_list_type = {
    .name = "list",
    .size = sizeof(om_list),
    .traverse = list_traverse,
    .clear = list_clear,
    .extra_size = list_extra_size,
};

om_object *om_list_new(om_runtime *rt) {
    return om_object_alloc(rt, "om_list_new", &om_list_type, 0,
                           OM_RETURN_ADDRESS());
}

/* Room for one more item; the list is unchanged on failure. */
static om_status list_reserve_one(const char *func, om_list *l) {
    if (l->len < l->cap)
        return OM_OK;
    om_runtime *rt = om_runtime_of(&l->om_head);
    /* Over-allocate by about 1/8, as CPython does, for amortised O(1)
     * appends. */
    size_t cap = l->len + (l->len >> 3) + 6;
    if (cap > SIZE_MAX / sizeof(om_object *))
        return om_error(rt, OM_ERR_OVERFLOW, "%s: list too long", func);
    om_object **items = om_realloc(rt, l->items, cap * sizeof *items);
    if (!items)
        return om_error(rt, OM_ERR_NOMEM, "%s: out of memory growing a list "
                        "of %zu items", func, l->len);
    l->items = items;
    l->cap = cap;
    return OM_OK;
}

static om_status check_item(const char *func, om_object *list,
                            const om_object *item) {
    om_status st = om_expect(func, list, &om_list_type);
    if (st == OM_OK && !item)
        st = om_error(om_runtime_of(list), OM_ERR_ARG, "%s: item is NULL", func);
    return st;
}

om_status om_list_insert(om_object *list, ptrdiff_t index, om_object *item) {
    om_status st = check_item("om_list_insert", list, item);
    if (st != OM_OK)
        return st;
    om_list *l = (om_list *)list;
    if ((st = list_reserve_one("om_list_insert", l)) != OM_OK)
        return st;
    /* Clamp as list.insert does: past either end means at that end. */
    size_t at;
    if (index < 0)
        at = (size_t)(-(index + 1)) + 1 >= l->len ? 0 : l->len + (size_t)index;
    else
        at = (size_t)index > l->len ? l->len : (size_t)index;
    memmove(&l->items[at + 1], &l->items[at], (l->len - at) * sizeof *l->items);
    om_incref(item);
    l->items[at] = item;
    l->len++;
    return OM_OK;
}

om_status om_list_append(om_object *list, om_object *item) {
    om_status st = check_item("om_list_append", list, item);
    if (st != OM_OK)
        return st;
    om_list *l = (om_list *)list;
    if ((st = list_reserve_one("om_list_append", l)) != OM_OK)
        return st;
    om_incref(item);
    l->items[l->len++] = item;
    return OM_OK;
}

/* The slot for index, or NULL with an error recorded. */
static om_object **list_slot(const char *func, om_object *list,
                             ptrdiff_t index) {
    if (om_expect(func, list, &om_list_type) != OM_OK)
        return NULL;
    om_list *l = (om_list *)list;
    size_t i;
    if (!om_index_resolve(index, l->len, &i))
        return OM_FAIL_NULL(om_runtime_of(list), OM_ERR_INDEX,
                            "%s: index %td out of range for a list of %zu",
                            func, index, l->len);
    return &l->items[i];
}

om_object *om_list_get(om_object *list, ptrdiff_t index) {
    om_object **slot = list_slot("om_list_get", list, index);
    return slot ? *slot : NULL;
}

om_status om_list_set(om_object *list, ptrdiff_t index, om_object *item) {
    om_status st = check_item("om_list_set", list, item);
    if (st != OM_OK)
        return st;
    om_object **slot = list_slot("om_list_set", list, index);
    if (!slot)
        return om_last_status(om_runtime_of(list));
    om_setref(slot, item);
    return OM_OK;
}

om_object *om_list_pop(om_object *list, ptrdiff_t index) {
    om_object **slot = list_slot("om_list_pop", list, index);
    if (!slot)
        return NULL;
    om_list *l = (om_list *)list;
    om_object *item = *slot;
    size_t after = (size_t)(&l->items[l->len] - slot) - 1;
    memmove(slot, slot + 1, after * sizeof *slot);
    l->len--;
    return item; /* the list's reference passes to the caller */
}

size_t om_list_len(const om_object *list) {
    return om_expect("om_list_len", list, &om_list_type) == OM_OK
               ? ((const om_list *)list)->len
               : 0;
}

om_status om_list_clear(om_object *list) {
    om_status st = om_expect("om_list_clear", list, &om_list_type);
    if (st == OM_OK)
        list_clear(list);
    return st;
}
