/*
 * preload.h — what the parts of libobjmem-trace.so share: the C
 * library's own allocator (resolved at bootstrap), the per-thread guard
 * that keeps the tracer's own allocations untraced, and the recorder's
 * entry points (docs/design.md, "Whole-process tracer").
 */
#ifndef OBJMEM_TRACE_PRELOAD_H
#define OBJMEM_TRACE_PRELOAD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- preload.c: the functions the hooks stand in front of ------------- */

/* The next definitions of the malloc family (the C library's, or another
 * allocator loaded after us).  Valid once the library has bootstrapped,
 * which happens at the first allocation, before any recorder code runs;
 * the optional ones may be NULL. */
struct omt_real_functions {
    void *(*malloc)(size_t);
    void (*free)(void *);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void *(*reallocarray)(void *, size_t, size_t); /* optional */
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);                        /* optional */
    void *(*pvalloc)(size_t);                       /* optional */
    size_t (*malloc_usable_size)(void *);
};
/* The recorder's own allocations go to these, never through the hooks. */
extern struct omt_real_functions omt_real;

/* The guard: non-zero while this thread runs tracer code, whose own
 * allocations (and any made by the C library on its behalf) go straight
 * to the real allocator.  Initial-exec TLS: reading it never calls into
 * the dynamic loader, which could allocate. */
extern __thread int omt_in_tracer __attribute__((tls_model("initial-exec")));

/* ---- exact.c: the hooks of an exact recording (blocks with headers) --- */

/* Set at bootstrap, before the first block is handed out, when the
 * recording is exact: from then on every hook goes through exact.c. */
extern bool omt_exact;
/* memalign or aligned_alloc: (alignment, size). */
typedef void *(*omt_aligner)(size_t, size_t);
/* As the functions they are named after, for a caller resuming at ret;
 * p is never NULL nor a bootstrap block.  omt_exact_aligned: an aligned
 * block from `alloc`, for any alignment that function accepts. */
void *omt_exact_malloc(size_t n, uintptr_t ret);
void *omt_exact_calloc(size_t count, size_t size, uintptr_t ret);
void omt_exact_free(void *p);
void *omt_exact_realloc(void *p, size_t n, uintptr_t ret);
void *omt_exact_aligned(omt_aligner alloc, size_t align, size_t n,
                        uintptr_t ret);
size_t omt_exact_usable_size(void *p);

/* ---- sample.c: sampled recording (run --sample-rate) ---------------- */

/* Set once, before recording starts, when the recording is sampled. */
extern bool omt_sampling;
/* Bytes this thread may still allocate before the next sample. */
extern __thread int64_t omt_sample_left __attribute__((tls_model("initial-exec")));

/* Mean bytes between samples, and the seed (0: from the clock). */
void omt_sample_init(uint64_t rate, uint64_t seed);
/* Called when an allocation of `counted` bytes took the countdown to zero
 * or below: whether to sample it, with the next count drawn.  False for
 * a thread's first count (drawn here), and for an allocation made inside
 * the tracer or after the recording: those are taken off the count
 * again, as if never counted, so that they use up no sample. */
bool omt_sample_hit(int64_t counted);
/* After a fork, in the thread that forked: in the parent, and in the
 * child (which then takes generators of its own). */
void omt_sample_fork_parent(void);
void omt_sample_forked(void);
/* Whether an allocation of n bytes is sampled: the fast path, no lock;
 * an allocation that is not due reads nothing but the countdown. */
static inline bool omt_sample_due(size_t n) {
    /* Counts are at most 2^61 (sample.c): no overflow. */
    int64_t counted = n < ((size_t)1 << 61) ? (int64_t)n : (int64_t)1 << 61;
    omt_sample_left -= counted;
    return __builtin_expect(omt_sample_left <= 0, 0) && omt_sample_hit(counted);
}
/* Whether p may have been sampled (false: certainly not), without a lock:
 * a count per slot of live sampled blocks (sample.c).  The slot is the
 * address's low bits above the alignment, not a hash: neighbouring
 * blocks share cache lines of the table as they share the heap's. */
#define OMT_FILTER_BITS 15
extern atomic_uint omt_sample_filter[1u << OMT_FILTER_BITS];
static inline size_t omt_sample_slot(uintptr_t p) {
    return (size_t)(p >> 4) & ((1u << OMT_FILTER_BITS) - 1);
}
static inline bool omt_sample_maybe(const void *p) {
    return atomic_load_explicit(&omt_sample_filter[omt_sample_slot((uintptr_t)p)],
                                memory_order_relaxed) != 0;
}
/* The filter omt_sample_maybe reads: a sampled block's trace was put or
 * taken.  Under omt_lock. */
void omt_sample_added(uintptr_t p);
void omt_sample_removed(uintptr_t p);
/* What a sampled block of n bytes at p stands for: its estimated bytes
 * and blocks (the same for the same p and n). */
void omt_sample_estimate(uintptr_t p, size_t n, uint64_t *bytes,
                         uint64_t *count);

/* ---- recorder.c: the process's recording ----------------------------- */

/* Whether allocations are being recorded (relaxed read; a hook that sees
 * true and then finds the recording finished does nothing).  Inline: the
 * hooks read it on every call. */
extern atomic_bool omt_recording_now;
static inline bool omt_recording(void) {
    return atomic_load_explicit(&omt_recording_now, memory_order_relaxed);
}

/* Called by the constructor: read the options from the environment, open
 * the file, start the sampler.  On failure, prints why and records
 * nothing. */
void omt_recorder_start(void);
/* Called by the destructor: the last flush and the END chunk. */
void omt_recorder_finish(void);
/* Before an exec replaces the process image: flush and mark the file so
 * (the recording goes on if the exec fails). */
void omt_recorder_exec(const char *path);

/* Events, each with the return address into the allocating caller (the
 * first frame of its traceback).  Each takes the recorder's lock itself,
 * except those named _locked, which need omt_lock held. */
void omt_on_alloc(void *p, size_t n, uintptr_t ret);
/* An exact recording's events: a block of n bytes counted under its
 * traceback, whose id is returned (0: not counted, the recording being
 * over or out of memory); and a counted block taken out again. */
uint32_t omt_record_alloc(size_t n, uintptr_t ret);
void omt_record_free(uint64_t size, uint32_t tb);
void omt_lock(void);
void omt_unlock(void);
void omt_on_alloc_locked(void *p, size_t n, uintptr_t ret);
void omt_on_free_locked(void *p);
/* Start loading what omt_on_free_locked(p) will read. */
void omt_prefetch_locked(const void *p);

#endif /* OBJMEM_TRACE_PRELOAD_H */
