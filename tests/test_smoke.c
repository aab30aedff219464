#include "objmem.h"
#include "harness.h"

static void smoke(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    CHECK(om_refcount(l) == 1);
    om_object *s = om_str_new(rt, "hi");
    CHECK(om_list_append(l, s) == OM_OK);
    CHECK(om_refcount(s) == 2);
    om_decref(s);
    om_object *d = om_dict_new(rt);
    CHECK(om_dict_set_str(d, "a", l) == OM_OK);
    CHECK(om_dict_get_str(d, "a") == l);
    om_decref(l);
    om_decref(d);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
}
TEST_MAIN(T(smoke))
