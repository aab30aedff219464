/*
 * header_cxx: objmem.h must compile as C++11 (extern "C" guards, no C-only
 * syntax such as designated initialisers or implicit void * conversions)
 * and link: om_version() must resolve to the C symbol of the library.
 * objmem.h comes first so that it is parsed before anything else is
 * included.
 */
#include "objmem.h"

#include <cstdio>
#include <cstring>

struct hygiene_none {
    OM_OBJECT_HEAD
};

static const om_type hygiene_none_type = {
    "hygiene_none", sizeof(hygiene_none), 0, 0, 0, 0, 0, 0, 0};

// OM_STATIC_OBJECT_INIT must also work as a C++ aggregate initialiser.
static hygiene_none hygiene_none_object = {
    OM_STATIC_OBJECT_INIT(&hygiene_none_type)};

int main() {
    if (om_version() != OM_VERSION_NUMBER) {
        std::fprintf(stderr, "header_cxx: om_version() = %d, header says %d\n",
                     om_version(), OM_VERSION_NUMBER);
        return 1;
    }
    if (std::strcmp(om_status_message(OM_OK), "success") != 0 ||
        om_refcount(&hygiene_none_object.om_head) != OM_REFCOUNT_IMMORTAL) {
        std::fprintf(stderr, "header_cxx: unexpected library answers\n");
        return 1;
    }
    std::printf("header_cxx: OK, objmem %s\n", om_version_string());
    return 0;
}
