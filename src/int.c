/*
 * int.c — om_int, an immutable boxed 64-bit integer; not collectable
 * (docs/design.md, "Ready containers").
 */
#include "internal.h"

typedef struct om_int {
    OM_OBJECT_HEAD
    int64_t value;
} om_int;

static uint64_t int_hash(const om_object *self) {
    return om_hash_word((uint64_t)((const om_int *)self)->value);
}

static int int_eq(const om_object *self, const om_object *other) {
    return ((const om_int *)self)->value == ((const om_int *)other)->value;
}

const om_type om_int_type = {
    .name = "int",
    .size = sizeof(om_int),
    .hash = int_hash,
    .eq = int_eq,
};

om_object *om_int_new(om_runtime *rt, int64_t value) {
    om_int *i = (om_int *)om_object_alloc(rt, "om_int_new", &om_int_type, 0,
                                            OM_RETURN_ADDRESS());
    if (i)
        i->value = value;
    return i ? &i->om_head : NULL;
}

int64_t om_int_value(const om_object *o) {
    return om_expect("om_int_value", o, &om_int_type) == OM_OK
               ? ((const om_int *)o)->value
               : 0;
}
