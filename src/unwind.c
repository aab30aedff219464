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

#include <link.h>
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

/* The executable segments of the loaded modules, per thread like the
 * stack range (same reasoning: a cache of facts, not runtime state).  A
 * return address outside all of them is a value that code built without
 * frame pointers left where a record was expected (seen under
 * ThreadSanitizer, whose thread start keeps a counter there): the walk
 * ends before it.  Without this check such values would make the total
 * depth, and so the traceback, differ at every allocation.  The list is
 * rebuilt when a miss finds that modules were loaded or unloaded since. */
#define MAX_CODE_RANGES 128
typedef struct code_ranges {
    unsigned long long adds, subs; /* the loader's counters when built */
    size_t n, hint;                /* ranges; the latest one matched */
    uintptr_t lo[MAX_CODE_RANGES], hi[MAX_CODE_RANGES];
} code_ranges;

static _Thread_local code_ranges thread_code;

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg) {
    unsigned long long *c = arg;
    if (size < offsetof(struct dl_phdr_info, dlpi_subs) +
                   sizeof info->dlpi_subs)
        return 1;
    c[0] = info->dlpi_adds;
    c[1] = info->dlpi_subs;
    return 1; /* the first module carries the counters: stop */
}

static int add_ranges(struct dl_phdr_info *info, size_t size, void *arg) {
    (void)size;
    code_ranges *r = arg;
    for (int i = 0; i < info->dlpi_phnum && r->n < MAX_CODE_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        r->lo[r->n] = (uintptr_t)info->dlpi_addr + ph->p_vaddr;
        r->hi[r->n] = r->lo[r->n] + ph->p_memsz;
        r->n++;
    }
    return 0;
}

static bool in_ranges(code_ranges *r, uintptr_t ret) {
    if (ret - r->lo[r->hint] < r->hi[r->hint] - r->lo[r->hint])
        return true;
    for (size_t i = 0; i < r->n; i++) {
        if (ret - r->lo[i] < r->hi[i] - r->lo[i]) {
            r->hint = i;
            return true;
        }
    }
    return false;
}

/* Whether ret lies in a loaded module's code. */
static OM_NOINLINE bool code_miss(code_ranges *r, uintptr_t ret) {
    unsigned long long c[2] = {0, 0};
    dl_iterate_phdr(read_counters, c);
    if (r->n && c[0] == r->adds && c[1] == r->subs)
        return false;
    r->n = r->hint = 0;
    r->adds = c[0];
    r->subs = c[1];
    dl_iterate_phdr(add_ranges, r);
    if (!r->n) { /* nothing found: an empty range at 0 keeps hint valid */
        r->lo[0] = r->hi[0] = 0;
        return false;
    }
    return in_ranges(r, ret);
}

static inline bool is_code(uintptr_t ret) {
    code_ranges *r = &thread_code;
    return (r->n && in_ranges(r, ret)) || code_miss(r, ret);
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
        if (!caller->ret || !is_code(caller->ret))
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
