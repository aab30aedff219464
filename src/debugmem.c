/*
 * debugmem.c — the debug allocator behind OBJMEM_MALLOC=debug (CPython's
 * PYTHONMALLOC=debug): guards, fill patterns and serial numbers around every
 * om_malloc block, checked by om_free and om_realloc.
 *
 * A block of n requested bytes is one om_block of n + 48 bytes:
 *
 *   base+0   size    8 bytes  n
 *   base+8   serial  8 bytes  1, 2, 3... per runtime; realloc takes a new one
 *   base+16  lead   16 bytes  0xFD
 *   base+32  data    n bytes  0xCD when new              <- p, 16-aligned
 *   p+n      tail   16 bytes  0xFD, right after the data, not rounded up
 *   then the rest of the om_block's size class, never looked at while live.
 *
 * Freeing fills everything from lead to the end of the om_block with 0xDD
 * and keeps size and serial for later reports.  A small block (n + 48 <= 512)
 * goes straight back to its pool, which turns word 0 into its free-list link:
 * the serial survives, the size does not, and the size class stands in for
 * it.  A large block would go back to the raw allocator, after which reading
 * it is undefined, so it waits in a FIFO quarantine of the last 16 large
 * blocks freed, still allocated and reading 0xDD, and is released when
 * pushed out or when the runtime is freed.
 *
 * Detected (a report naming the serial, then abort):
 *   - overrun: a write into the 16 bytes after the data;
 *   - underrun: a write into the 16 bytes before the data, or further back
 *     if it leaves a size the om_block has no room for or a serial number
 *     never handed out;
 *   - double free, or realloc of a freed block (lead reads 0xDD): for a
 *     small block until its memory is handed out again, for a large one
 *     while it is in the quarantine.
 * Not detected: writes that skip over a guard; writes to freed memory; reads
 * of new (0xCD) or freed (0xDD) memory, which the patterns only make easy to
 * spot; a second free of a small block once its memory is reused or its
 * arena unmapped, or of a large block after 16 later large frees (undefined
 * then, like freeing a pointer om_malloc never returned).
 *
 * Objects (om_new) never come through here: only the om_malloc family does.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

enum {
    FIELD = 8,                   /* size and serial words */
    GUARD = 16,                  /* bytes of each guard */
    HEADER = 2 * FIELD + GUARD,  /* base to p */
    OVERHEAD = HEADER + GUARD,
    QUARANTINE = 16,             /* large blocks held back after free */
    SHOWN_BAD = 8,               /* bad guard bytes listed in a report */
    SHOWN_DATA = 8,              /* data bytes shown from each end */
};
_Static_assert(HEADER % OM_ALIGNMENT == 0, "p must keep base's alignment");

#define NEW_BYTE 0xCD
#define DEAD_BYTE 0xDD
#define PAD_BYTE 0xFD

struct om_debugmem {
    uint64_t serial;                        /* the latest handed out */
    unsigned char *quarantine[QUARANTINE];  /* bases, a ring from head */
    size_t head;
    size_t count;
};

static uint64_t load64(const unsigned char *at) {
    uint64_t v;
    memcpy(&v, at, sizeof v);
    return v;
}

static void store64(unsigned char *at, uint64_t v) { memcpy(at, &v, sizeof v); }

static bool all_are(const unsigned char *at, size_t n, unsigned char byte) {
    for (size_t i = 0; i < n; i++)
        if (at[i] != byte)
            return false;
    return true;
}

/* The runtime's debug state, made on first use so that only runtimes in
 * debug mode pay for it.  It is bookkeeping, so it comes from the raw
 * allocator like the runtime's other bookkeeping, and pool statistics and
 * counts show only the user's blocks. */
static struct om_debugmem *debug_state(om_runtime *rt) {
    if (!rt->debugmem)
        rt->debugmem = om_raw_calloc(rt, 1, sizeof *rt->debugmem);
    return rt->debugmem;
}

static bool in_quarantine(const struct om_debugmem *d,
                          const unsigned char *base) {
    for (size_t i = 0; d && i < d->count; i++)
        if (d->quarantine[(d->head + i) % QUARANTINE] == base)
            return true;
    return false;
}

/* What free and realloc learn about a block before trusting it. */
typedef struct inspection {
    unsigned char *base;
    size_t room;        /* most data bytes the om_block can hold */
    size_t size;        /* bytes requested, when size_known */
    uint64_t serial;
    bool small;         /* from a pool */
    bool quarantined;
    bool serial_bad;    /* 0, or beyond the latest handed out */
    bool freed;         /* lead reads 0xDD */
    bool lead_bad;      /* lead neither all 0xFD nor all 0xDD */
    bool size_known;
    bool size_bad;      /* the size field exceeds room */
    bool tail_bad;
} inspection;

static inspection inspect(om_runtime *rt, void *p) {
    inspection b;
    memset(&b, 0, sizeof b);
    b.base = (unsigned char *)p - HEADER;
    b.small = om_pool_owns(rt, b.base);
    /* A freed large block is still allocated, and so safe to read below,
     * only while it is in the quarantine; the report says which. */
    b.quarantined = !b.small && in_quarantine(rt->debugmem, b.base);
    size_t block = om_block_usable_size(rt, b.base);
    b.room = block > OVERHEAD ? block - OVERHEAD : 0;
    b.serial = load64(b.base + FIELD);
    b.serial_bad = b.serial == 0 || !rt->debugmem ||
                   b.serial > rt->debugmem->serial;
    const unsigned char *lead = b.base + 2 * FIELD;
    b.freed = all_are(lead, GUARD, DEAD_BYTE);
    b.lead_bad = !b.freed && !all_are(lead, GUARD, PAD_BYTE);
    if (!(b.freed && b.small)) {
        uint64_t size = load64(b.base);
        b.size_bad = size > b.room;
        b.size_known = !b.size_bad;
        b.size = b.size_known ? (size_t)size : 0;
    }
    b.tail_bad = b.size_known && !b.freed &&
                 !all_are((unsigned char *)p + b.size, GUARD, PAD_BYTE);
    return b;
}

static bool healthy(const inspection *b) {
    return !b->freed && !b->lead_bad && !b->size_bad && !b->tail_bad &&
           !b->serial_bad;
}

/* One line per bad guard byte, the first SHOWN_BAD of them.  lead guards
 * are counted back from p, tail guards forward from tail. */
static void show_bad_guard(FILE *f, const unsigned char *guard, bool lead) {
    size_t bad = 0;
    for (size_t i = 0; i < GUARD; i++) {
        if (guard[i] == PAD_BYTE || bad++ >= SHOWN_BAD)
            continue;
        if (lead)
            fprintf(f, "        at p-%zu: 0x%02x *** OUCH\n", GUARD - i,
                    guard[i]);
        else
            fprintf(f, "        at tail+%zu: 0x%02x *** OUCH\n", i, guard[i]);
    }
    if (bad > SHOWN_BAD)
        fprintf(f, "        ... and %zu more bad bytes\n", bad - SHOWN_BAD);
}

static void show_guard(FILE *f, const char *where, const unsigned char *guard,
                       bool lead) {
    if (all_are(guard, GUARD, PAD_BYTE)) {
        fprintf(f, "    the %d pad bytes at %s=0x%" PRIxPTR
                   " are 0xFD, as expected\n",
                GUARD, where, (uintptr_t)guard);
        return;
    }
    fprintf(f, "    the %d pad bytes at %s=0x%" PRIxPTR
               " are not all 0xFD:\n",
            GUARD, where, (uintptr_t)guard);
    show_bad_guard(f, guard, lead);
}

/* The first and last SHOWN_DATA bytes (all of them when that is all). */
static void show_data(FILE *f, const unsigned char *p, size_t n) {
    fputs("    data at p:", f);
    if (n == 0)
        fputs(" (none)", f);
    for (size_t i = 0; i < n; i++) {
        if (n > 2 * SHOWN_DATA && i == SHOWN_DATA) {
            fputs(" ...", f);
            i = n - SHOWN_DATA;
        }
        fprintf(f, " %02x", p[i]);
    }
    fputc('\n', f);
}

/* Where the block was allocated.  Kept apart so that the allocation tracer
 * can print the traceback it recorded for p here. */
static void show_traceback(FILE *f, const om_runtime *rt,
                           const unsigned char *p) {
    (void)rt;
    (void)p;
    fputs("    (no allocation traceback: tracing is not on)\n", f);
}

/* Describe the damaged block on stderr and abort, naming the function the
 * caller called.  freeing: reached from a free rather than a realloc. */
OM_NORETURN static void report(const om_runtime *rt, const char *func,
                               const inspection *b, bool freeing) {
    FILE *f = stderr;
    const unsigned char *p = b->base + HEADER;
    fprintf(f, "objmem: %s: debug block at p=0x%" PRIxPTR ": ", func,
            (uintptr_t)p);
    if (b->serial_bad)
        fprintf(f, "serial field damaged (0x%016" PRIx64 ")", b->serial);
    else
        fprintf(f, "serial %" PRIu64, b->serial);
    if (b->size_known)
        fprintf(f, ", %zu bytes requested\n", b->size);
    else if (b->size_bad)
        fputs(", size field damaged\n", f);
    else
        fprintf(f, ", size unknown (its block has room for %zu bytes)\n",
                b->room);

    const unsigned char *lead = b->base + 2 * FIELD;
    if (b->freed)
        fprintf(f, "    the %d pad bytes at p-%d=0x%" PRIxPTR
                   " are 0xDD: the block was freed before%s\n",
                GUARD, GUARD, (uintptr_t)lead,
                b->quarantined ? " (it is in the large-block quarantine)"
                               : "");
    else
        show_guard(f, "p-16", lead, true);
    if (b->size_bad)
        fprintf(f, "    the size field at p-%d reads %" PRIu64
                   ", more than the block has room for (%zu bytes)\n",
                HEADER, load64(b->base), b->room);
    if (b->size_known && !b->freed)
        show_guard(f, "tail", p + b->size, false);
    show_data(f, p, b->size_known ? b->size : b->room);
    show_traceback(f, rt, p);

    const char *what;
    if (b->freed)
        what = freeing ? "double free: the block was already freed"
                       : "realloc of a block that was already freed";
    else if (b->lead_bad && b->tail_bad)
        what = "buffer underrun and overrun: bytes written before the start "
               "and after the end of the data";
    else if (b->lead_bad)
        what = "buffer underrun: bytes written before the start of the data";
    else if (b->tail_bad)
        what = "buffer overrun: bytes written after the end of the data";
    else
        what = "damaged block header: a write before the pad bytes, or not "
               "an om_malloc block";
    if (b->serial_bad)
        om_misuse(func, "%s (debug block serial unknown)", what);
    om_misuse(func, "%s (debug block serial %" PRIu64 ")", what, b->serial);
}

/* Fill the checked block with 0xDD (sparing size and serial) and free it:
 * small blocks at once, large ones through the quarantine. */
static void bury(om_runtime *rt, const inspection *b) {
    size_t block = b->room + OVERHEAD;
    memset(b->base + 2 * FIELD, DEAD_BYTE, block - 2 * FIELD);
    struct om_debugmem *d = rt->debugmem;
    if (b->small || !d) {
        om_block_free(rt, b->base);
        return;
    }
    if (d->count == QUARANTINE) {
        om_block_free(rt, d->quarantine[d->head]);
        d->head = (d->head + 1) % QUARANTINE;
        d->count--;
    }
    d->quarantine[(d->head + d->count) % QUARANTINE] = b->base;
    d->count++;
}

void *om_debugmem_alloc(om_runtime *rt, size_t n) {
    if (n > SIZE_MAX - OVERHEAD)
        return NULL;
    struct om_debugmem *d = debug_state(rt);
    if (!d)
        return NULL;
    unsigned char *base = om_block_alloc(rt, n + OVERHEAD);
    if (!base)
        return NULL;
    store64(base, n);
    store64(base + FIELD, ++d->serial);
    memset(base + 2 * FIELD, PAD_BYTE, GUARD);
    memset(base + HEADER, NEW_BYTE, n);
    memset(base + HEADER + n, PAD_BYTE, GUARD);
    return base + HEADER;
}

void om_debugmem_free(om_runtime *rt, const char *func, void *p) {
    inspection b = inspect(rt, p);
    if (!healthy(&b))
        report(rt, func, &b, true);
    bury(rt, &b);
}

/* Always moves, as CPython's debug realloc does: a stale pointer to the old
 * block then meets 0xDD instead of working by luck. */
void *om_debugmem_realloc(om_runtime *rt, const char *func, void *p,
                          size_t n) {
    inspection b = inspect(rt, p);
    if (!healthy(&b))
        report(rt, func, &b, false);
    unsigned char *q = om_debugmem_alloc(rt, n);
    if (!q)
        return NULL;
    memcpy(q, p, b.size < n ? b.size : n);
    bury(rt, &b);
    return q;
}

size_t om_debugmem_usable_size(om_runtime *rt, const void *p) {
    (void)rt;
    return (size_t)load64((const unsigned char *)p - HEADER);
}

void om_debugmem_release(om_runtime *rt) {
    struct om_debugmem *d = rt->debugmem;
    if (!d)
        return;
    for (; d->count; d->count--, d->head = (d->head + 1) % QUARANTINE)
        om_block_free(rt, d->quarantine[d->head]);
    rt->debugmem = NULL;
    om_raw_free(rt, d);
}
