/*
 * version: the version macros of objmem.h and the shared library agree.
 * Linked against the shared library, so om_version() is the library's.
 * Prints "major=N" and "string=S" for check_version.sh, which compares
 * them with the library's SONAME and file name.
 */
#include "objmem.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    int failed = 0;
    char expect[64];

    if (om_version() != OM_VERSION_NUMBER) {
        fprintf(stderr, "om_version() = %d but OM_VERSION_NUMBER = %d\n",
                om_version(), OM_VERSION_NUMBER);
        failed = 1;
    }
    if (strcmp(om_version_string(), OM_VERSION_STRING) != 0) {
        fprintf(stderr, "om_version_string() = \"%s\" but "
                "OM_VERSION_STRING = \"%s\"\n",
                om_version_string(), OM_VERSION_STRING);
        failed = 1;
    }
    /* The string and the numbers are written by hand in the header: they
     * must say the same thing. */
    snprintf(expect, sizeof expect, "%d.%d.%d", OM_VERSION_MAJOR,
             OM_VERSION_MINOR, OM_VERSION_PATCH);
    if (strcmp(expect, OM_VERSION_STRING) != 0) {
        fprintf(stderr, "OM_VERSION_STRING \"%s\" does not match "
                "OM_VERSION_MAJOR.MINOR.PATCH = %s\n",
                OM_VERSION_STRING, expect);
        failed = 1;
    }
    printf("major=%d\nstring=%s\n", OM_VERSION_MAJOR, OM_VERSION_STRING);
    return failed;
}
