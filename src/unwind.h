/*
 * unwind.h — native return addresses of the calling thread, found by
 * walking frame pointers (docs/design.md, "Native frames").
 */
#ifndef OBJMEM_UNWIND_H
#define OBJMEM_UNWIND_H

#include <stddef.h>
#include <stdint.h>

/* The most frame records searched for `after`. */
#define OM_UNWIND_SEARCH 32
/* *total stops counting here (tracemalloc's total_nframe is 16 bits). */
#define OM_UNWIND_TOTAL_MAX 65535

/* Walk the calling thread's frame-pointer chain from the caller's own
 * frame.  Among the first OM_UNWIND_SEARCH frame records, find the first
 * whose return address is `after`; store in out[0..max) the return
 * addresses of the records that follow it (the callers of the function
 * `after` returns into, innermost first; `after` itself is not stored) and
 * return how many were stored.  *total is how many follow in all (at least
 * the return value; capped at OM_UNWIND_TOTAL_MAX).  When `after` is not
 * found, or frame pointers cannot be trusted (no frame pointers on this
 * architecture or compiler, not on the thread's own stack), returns 0 with
 * *total 0.
 *
 * Never faults on garbage frame pointers (code built without them leaves
 * anything in the frame-pointer register): the walk ends at the first
 * record that is misaligned, not above the previous one, or outside
 * [current stack pointer, the thread's stack top), and at a zero return
 * address.  Allocates nothing after the first call in each thread. */
size_t om_unwind_after(uintptr_t after, uintptr_t *out, size_t max,
                       size_t *total);

#endif /* OBJMEM_UNWIND_H */
