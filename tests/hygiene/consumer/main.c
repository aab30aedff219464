/*
 * A program outside the objmem tree, built against an installed objmem
 * (through find_package or pkg-config): create a runtime and a list, check
 * reference counts, free everything, and print OK.  Any failure prints why
 * and exits 1.
 */
#include <objmem.h>

#include <stdio.h>

static int fail(const char *why) {
    fprintf(stderr, "consumer: %s\n", why);
    return 1;
}

int main(void) {
    om_runtime *rt;
    om_object *list, *item;

    if (om_version() != OM_VERSION_NUMBER)
        return fail("installed header and library disagree on the version");

    rt = om_runtime_new(NULL);
    if (!rt)
        return fail("om_runtime_new failed");
    list = om_list_new(rt);
    item = om_int_new(rt, 42);
    if (!list || !item)
        return fail("could not create the list or the item");
    if (om_list_append(list, item) != OM_OK)
        return fail(om_last_error(rt));
    if (om_refcount(list) != 1)
        return fail("a new list should have refcount 1");
    if (om_refcount(item) != 2)
        return fail("an appended item should have refcount 2 (ours, list's)");
    if (om_list_len(list) != 1 || om_int_value(om_list_get(list, 0)) != 42)
        return fail("the list does not hold the item");
    om_decref(item);
    if (om_refcount(item) != 1)
        return fail("the list should still hold one reference to the item");
    om_decref(list);
    if (om_object_count(rt) != 0)
        return fail("objects still alive after dropping every reference");
    if (om_runtime_free(rt) != 0)
        return fail("om_runtime_free reported leaks");

    printf("OK objmem %s\n", om_version_string());
    return 0;
}
