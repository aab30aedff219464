/*
 * exact.c — the malloc family of an exact recording: every block the
 * program gets carries a header in front of it with its size and its
 * traceback (docs/design.md, "Exact recording").
 *
 * A free must learn the size and traceback of the block it frees.  A
 * table keyed by address costs a cache miss at every allocation and every
 * free, a quarter of what tracing costs; the header sits on the cache
 * line that the C library's own free reads anyway (its chunk header is
 * just before it).  The recorder then keeps per-traceback totals only.
 *
 * Layout: the real allocator's block starts at `base`; the program's
 * block at p = base + offset; the header fills the 16 bytes before p
 * (below, with the seal that tells a live header from anything else).
 * offset is 16 for plain blocks, and for aligned ones (memalign and
 * kin) whatever rounds p up to the alignment: at most the alignment, for
 * which the real block gets that many extra bytes.
 *
 * Invariants:
 *   - Once exact recording is chosen (at bootstrap, before the first
 *     block is handed out: preload.c), every block that a hook returns
 *     has a header, traced or not, for the life of the process: the
 *     guard (omt_in_tracer) decides whether a block is traced, never
 *     whether it has a header.  So every pointer a hook is given back
 *     (free, realloc, malloc_usable_size) has one, except bootstrap-arena
 *     blocks, which preload.c handles first.
 *   - tb != 0 iff the block was counted in the recorder's totals; a free
 *     takes it out of them again (omt_record_free), whatever the guard
 *     says, unless the recording has ended.
 */
#define _GNU_SOURCE
#include "preload.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct header {
    uint64_t sealed_size; /* the size the program asked for, and the seal */
    uint32_t tb;          /* traceback id in the recorder; 0: not counted */
    uint32_t offset;      /* from the real block's start to the program's */
} header;

/* The size takes the low 48 bits (no block is larger: the address space
 * is not), the seal the high 16: a hash of the block's address and the
 * other fields, so that a free of a pointer that is not a live block of
 * ours (one freed already, whose header the C library has overwritten
 * with its free-list links; one from nowhere) is told from a real one but
 * once in 65536 (bad_pointer). */
#define SIZE_BITS 48
#define SIZE_MAX_BLOCK (((uint64_t)1 << SIZE_BITS) - 1)

static inline uint64_t seal(const void *p, uint32_t tb, uint32_t offset) {
    uint64_t x = ((uint64_t)(uintptr_t)p >> 4) ^ ((uint64_t)tb << 20) ^ offset;
    return (x * 0x9e3779b97f4a7c15ull) >> SIZE_BITS << SIZE_BITS;
}

#define HEADER sizeof(header)
/* The real allocator aligns its blocks for max_align_t: a header of a
 * multiple of that keeps the program's block aligned as well. */
_Static_assert(sizeof(header) == 16 &&
                   sizeof(header) % _Alignof(max_align_t) == 0,
               "the header keeps malloc's alignment");
/* Alignments above this are refused (ENOMEM): offset is 32 bits. */
#define ALIGN_MAX ((size_t)1 << 30)

/* Whether n bytes and `extra` more are more than a block can hold. */
static inline bool too_big(size_t n, size_t extra) {
    return n > SIZE_MAX - extra || n > SIZE_MAX_BLOCK - extra;
}

static inline header *header_of(void *p) { return (header *)p - 1; }

/* Whether p, given back by the program, is a live block of ours, with
 * its header's fields. */
static inline bool read_header(void *p, uint64_t *size, uint32_t *tb,
                               uint32_t *offset) {
    const header *h = header_of(p);
    *tb = h->tb;
    *offset = h->offset;
    *size = h->sealed_size & SIZE_MAX_BLOCK;
    return (h->sealed_size & ~SIZE_MAX_BLOCK) == seal(p, *tb, *offset);
}

/* The program's block at base + offset: its header written, and counted
 * when tracing (the guard down, the recording on). */
static void *finish(unsigned char *base, size_t offset, size_t n,
                    uintptr_t ret) {
    void *p = base + offset;
    uint32_t tb = 0;
    if (!omt_in_tracer && omt_recording()) {
        omt_in_tracer++;
        tb = omt_record_alloc(n, ret);
        omt_in_tracer--;
    }
    header *h = header_of(p);
    h->tb = tb;
    h->offset = (uint32_t)offset;
    h->sealed_size = n | seal(p, tb, (uint32_t)offset);
    return p;
}

/* Take a block out of the totals, if it is in them.  Not inside tracer
 * code, where this thread may hold the recorder's lock: the tracer frees
 * only what it allocated itself, uncounted, so the one counted block that
 * can be freed there is one freed by a signal handler that interrupted
 * the tracer.  That block stays counted (an over-count, where taking the
 * lock would deadlock). */
static void uncount(uint64_t size, uint32_t tb) {
    if (tb && !omt_in_tracer) {
        omt_in_tracer++;
        omt_record_free(size, tb);
        omt_in_tracer--;
    }
}

/* A pointer given to free or realloc that is not a live block: freed
 * already, or never allocated.  Untraced, the C library would find most
 * such errors and abort; handed the pointer as it is, it would look for
 * its own chunk header where ours was and could fault instead.  So it is
 * reported here, as the C library reports it (a message, then abort),
 * without allocating. */
static _Noreturn void bad_pointer(const char *function, const void *p) {
    char msg[160] = "objmem-trace: "; /* 14 + 16 + 60 + 16 + 1 bytes at most */
    size_t n = strlen(msg);
    for (const char *c = function; *c && n < 30; c++)
        msg[n++] = *c;
    static const char what[] = "(): not a live block (freed already, or never allocated): 0x";
    memcpy(msg + n, what, sizeof what - 1);
    n += sizeof what - 1;
    for (int shift = (int)sizeof(uintptr_t) * 8 - 4; shift >= 0; shift -= 4)
        msg[n++] = "0123456789abcdef"[((uintptr_t)p >> shift) & 15];
    msg[n++] = '\n';
    ssize_t w = write(2, msg, n);
    (void)w;
    abort();
}

void *omt_exact_malloc(size_t n, uintptr_t ret) {
    if (too_big(n, HEADER)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned char *base = omt_real.malloc(n + HEADER);
    return base ? finish(base, HEADER, n, ret) : NULL;
}

void *omt_exact_calloc(size_t count, size_t size, uintptr_t ret) {
    if ((size && count > SIZE_MAX / size) ||
        too_big(count * size, HEADER)) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = count * size;
    unsigned char *base = omt_real.calloc(1, n + HEADER);
    return base ? finish(base, HEADER, n, ret) : NULL;
}

void omt_exact_free(void *p) {
    uint64_t size;
    uint32_t tb, offset;
    if (!read_header(p, &size, &tb, &offset))
        bad_pointer("free", p);
    omt_real.free((unsigned char *)p - offset);
    uncount(size, tb);
}

/* The smallest power of two >= align, or 0 above ALIGN_MAX. */
static size_t power_of_two(size_t align) {
    size_t a = HEADER;
    while (a < align && a < ALIGN_MAX)
        a *= 2;
    return a >= align ? a : 0;
}

void *omt_exact_aligned(omt_aligner alloc, size_t align, size_t n,
                        uintptr_t ret) {
    if (align <= HEADER)
        return omt_exact_malloc(n, ret);
    size_t a = power_of_two(align);
    if (!a || too_big(n, a)) {
        errno = ENOMEM;
        return NULL;
    }
    /* The real function refuses what it refuses untraced (an alignment
     * that is not a power of two, for some); it is asked for `align`, so
     * that its checks see the program's value. */
    unsigned char *base = alloc(align, n + a);
    if (!base)
        return NULL;
    /* base is aligned to at least 16: p = round_up(base + 16, a) is at
     * most base + a, so the n bytes from p fit. */
    uintptr_t p = ((uintptr_t)base + HEADER + a - 1) & ~(uintptr_t)(a - 1);
    return finish(base, p - (uintptr_t)base, n, ret);
}

void *omt_exact_realloc(void *p, size_t n, uintptr_t ret) {
    uint64_t size;
    uint32_t tb, offset;
    if (!read_header(p, &size, &tb, &offset))
        bad_pointer("realloc", p);
    if (n == 0) {
        /* As the C library's realloc(p, 0): p freed, NULL returned. */
        omt_exact_free(p);
        return NULL;
    }
    if (offset != HEADER) {
        /* An aligned block: the real realloc would keep the offset but
         * not the alignment; it moves to a plain block. */
        void *q = omt_exact_malloc(n, ret);
        if (q) {
            memcpy(q, p, size < n ? size : n);
            omt_exact_free(p);
        }
        return q;
    }
    if (too_big(n, HEADER)) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned char *base = omt_real.realloc((unsigned char *)p - HEADER,
                                           n + HEADER);
    if (!base)
        return NULL; /* p is untouched, and still counted */
    uncount(size, tb);
    return finish(base, HEADER, n, ret);
}

size_t omt_exact_usable_size(void *p) {
    uint64_t size;
    uint32_t tb, offset;
    if (!read_header(p, &size, &tb, &offset))
        return omt_real.malloc_usable_size(p); /* the C library's answer */
    return omt_real.malloc_usable_size((unsigned char *)p - offset) - offset;
}
