/*
 * require.h — the fuzz targets' check: a breach aborts, which libFuzzer
 * reports as a crash, after saying which condition failed where.
 */
#ifndef OBJMEM_FUZZ_REQUIRE_H
#define OBJMEM_FUZZ_REQUIRE_H

#include <stdio.h>
#include <stdlib.h>

#define REQUIRE(cond)                                                  \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "%s:%d: REQUIRE(%s) failed\n", __FILE__,   \
                    __LINE__, #cond);                                  \
            abort();                                                   \
        }                                                              \
    } while (0)

#endif /* OBJMEM_FUZZ_REQUIRE_H */
