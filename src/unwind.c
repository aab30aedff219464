/*
 * unwind.c — the callers of an allocation, by walking frame pointers
 * (docs/design.md, "Native frames").  On x86-64 and AArch64 every function
 * built with frame pointers keeps a frame record, [caller's record, return
 * address], at the address in its frame-pointer register, so the records
 * form a chain up the stack.  Code built without them leaves anything in
 * that register; the checks below make such a record end the walk instead
 * of a fault.
 */
#define _GNU_SOURCE
#include "unwind.h"

#include "internal.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__linux__) && \
    (defined(__x86_64__) || defined(__aarch64__))

#include <pthread.h>

typedef struct frame_record {
    uintptr_t next;  /* the caller's record */
    uintptr_t ret;   /* return address into the caller */
} frame_record;

/* The walk reads stack words that may lie in another frame's redzone
 * when a garbage frame pointer passes the checks: mapped stack, harmless
 * to read, but not to the address sanitizer. */
#define NO_ASAN __attribute__((no_sanitize_address))

/* Both ABIs keep the stack pointer 16-aligned at a call, so a record is
 * 16-aligned: on x86-64 it is pushed right below the return address, on
 * AArch64 it is stored at a 16-aligned stack pointer. */
#define RECORD_ALIGN 16

/* The calling thread's stack, [lo, top).  A thread's stack never moves, so
 * it is looked up once per thread; this cache of an immutable fact is the
 * only thread-local state in objmem, and is not hidden runtime state.
 * top == 0: not looked up yet.  lo == top == 1: unknown (the lookup failed
 * or is under way), an empty range in which no walk starts. */
typedef struct stack_range {
    uintptr_t lo, top;
} stack_range;

static _Thread_local stack_range thread_stack;

static OM_NOINLINE OM_COLD void stack_lookup(stack_range *s) {
    /* Unknown while looking: pthread_getattr_np allocates (for the main
     * thread it reads /proc/self/maps), and an allocation hook that unwinds
     * from there must find no stack rather than look it up again. */
    s->lo = s->top = 1;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return;
    void *addr;
    size_t size;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size) {
        s->lo = (uintptr_t)addr;
        s->top = (uintptr_t)addr + size;
    }
    pthread_attr_destroy(&attr);
}

/* Whether the record at fp, whose callee's record is at prev, can be read:
 * aligned, strictly above prev (so the walk ends), below the stack top.
 * Everything from the first record (ours, above the stack pointer) to the
 * top is mapped stack. */
static inline bool record_ok(uintptr_t fp, uintptr_t prev, uintptr_t top) {
    return fp > prev && !(fp & (RECORD_ALIGN - 1)) &&
           fp <= top - sizeof(frame_record);
}

/* The first of the OM_UNWIND_SEARCH records from fp whose return address
 * is `after` (non-zero), or NULL. */
static inline NO_ASAN const frame_record *
find_record(uintptr_t fp, uintptr_t top, uintptr_t after) {
    uintptr_t prev = fp - 1;
    for (int i = 0; i < OM_UNWIND_SEARCH && record_ok(fp, prev, top); i++) {
        const frame_record *r = (const frame_record *)fp;
        if (r->ret == after)
            return r;
        if (!r->ret)
            return NULL;
        prev = fp;
        fp = r->next;
    }
    return NULL;
}

/* Store the return addresses of the records after r (at most max) and
 * count them all, up to OM_UNWIND_TOTAL_MAX. */
static inline NO_ASAN size_t collect(const frame_record *r, uintptr_t top,
                                     uintptr_t *out, size_t max,
                                     size_t *total) {
    size_t n = 0;
    uintptr_t prev = (uintptr_t)r, fp = r->next;
    while (n < OM_UNWIND_TOTAL_MAX && record_ok(fp, prev, top)) {
        const frame_record *caller = (const frame_record *)fp;
        if (!caller->ret)
            break;
        if (n < max)
            out[n] = caller->ret;
        n++;
        prev = fp;
        fp = caller->next;
    }
    *total = n;
    return n < max ? n : max;
}

NO_ASAN size_t om_unwind_after(uintptr_t after, uintptr_t *out, size_t max,
                               size_t *total) {
    *total = 0;
    stack_range *s = &thread_stack;
    if (OM_UNLIKELY(!s->top))
        stack_lookup(s);
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    /* On another stack (a signal's alternate stack, a coroutine's) the
     * thread's range says nothing about what is mapped: no walk. */
    if (!after || fp < s->lo || fp >= s->top)
        return 0;
    const frame_record *r = find_record(fp, s->top, after);
    return r ? collect(r, s->top, out, max, total) : 0;
}

#else /* no frame-record layout known for this target */

size_t om_unwind_after(uintptr_t after, uintptr_t *out, size_t max,
                       size_t *total) {
    (void)after;
    (void)out;
    (void)max;
    *total = 0;
    return 0;
}

#endif
