/* trace_static.c — a statically linked program, which objmem-trace run
 * must refuse with a clear message (test_trace.py). */
#include <stdlib.h>

int main(void) {
    free(malloc(10));
    return 0;
}
