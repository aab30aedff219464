/*
 * ptrmap.c — a map from pointers to numbers for the snapshot modules: a
 * traceback interned in a snapshot is known by its address, so statistics
 * and filters look tracebacks up by address alone (docs/design.md,
 * "Tracer").  Sized once, for the most keys the caller will add (the
 * snapshot's count of interned tracebacks), so adding cannot fail.
 *
 * Invariant: capacity (mask + 1) is a power of two at least twice the
 * most keys, so a probe always ends at the key or an empty slot.
 */
#include "snapshot.h"

om_status om_ptrmap_init(om_ptrmap *m, om_runtime *rt, size_t n) {
    size_t capacity = 16;
    while (capacity / 2 < n) {
        if (capacity > SIZE_MAX / 2 / sizeof(om_ptrmap_slot))
            return OM_ERR_NOMEM;
        capacity *= 2;
    }
    m->rt = rt;
    m->mask = capacity - 1;
    m->room = n;
    m->slots = NULL;
    if (om_alloc_attempt(rt))
        m->slots = om_raw_calloc(rt, capacity, sizeof *m->slots);
    return m->slots ? OM_OK : OM_ERR_NOMEM;
}

om_ptrmap_slot *om_ptrmap_slot_of(om_ptrmap *m, const void *key) {
    for (size_t i = om_hash_word((uintptr_t)key) & m->mask;;
         i = (i + 1) & m->mask) {
        om_ptrmap_slot *slot = &m->slots[i];
        if (slot->key == key)
            return slot;
        if (!slot->key) {
            OM_ASSERT(m->room > 0); /* else probes could find no end */
            m->room--;
            slot->key = key;
            return slot;
        }
    }
}

void om_ptrmap_free(om_ptrmap *m) {
    om_raw_free(m->rt, m->slots);
    m->slots = NULL;
}
