/*
 * header_c11: objmem.h must compile on its own as strict C11.  This file
 * includes nothing else, so a header that leans on an include it does not
 * make itself, or on a GNU extension, fails here under -pedantic -Werror.
 * It uses a few declarations (types, macros, prototypes) so that they are
 * really parsed, not just skipped over.
 */
#include "objmem.h"

/* A user type and a static immortal object: OM_STATIC_OBJECT_INIT must be a
 * constant expression, usable in a static initialiser. */
struct hygiene_none {
    OM_OBJECT_HEAD
};

static const om_type hygiene_none_type = {
    .name = "hygiene_none",
    .size = sizeof(struct hygiene_none),
};

static struct hygiene_none hygiene_none_object = {
    OM_STATIC_OBJECT_INIT(&hygiene_none_type)
};

/* The status table expands to valid C in user code too. */
#define HYGIENE_COUNT_(name, value, text) +1
enum { hygiene_status_count = 0 OM_STATUS_TABLE(HYGIENE_COUNT_) };
#undef HYGIENE_COUNT_

int hygiene_header_c11(om_runtime *rt);

int hygiene_header_c11(om_runtime *rt) {
    om_config config;
    om_config_init(&config);
    om_object *list = om_list_new(rt);
    om_status st = om_list_append(list, &hygiene_none_object.om_head);
    int ok = st == OM_OK && om_refcount(&hygiene_none_object.om_head) ==
                                OM_REFCOUNT_IMMORTAL;
    om_decref(list);
    return ok && om_version() == OM_VERSION_NUMBER &&
           hygiene_status_count > 0 && om_type_of(NULL) != &om_list_type;
}
