/*
 * sample.c — sampled recording (run --sample-rate): which allocations are
 * recorded, what each sampled one stands for, and the lock-free test that
 * lets a free of an unsampled block skip the recorder (docs/design.md,
 * "Whole-process tracer", "Sampled recording").
 *
 * As in tcmalloc's and jemalloc's heap profiles, each thread counts down
 * the bytes it allocates (omt_sample_left, initial-exec TLS, no lock);
 * the allocation that takes the count to zero or below is sampled, and
 * the next count is drawn from an exponential distribution of mean R, the
 * rate, with a per-thread xorshift generator.  By memorylessness a block
 * of s bytes is then sampled with probability p(s) = 1 - exp(-s/R), so a
 * sampled block stands for 1/p(s) blocks and s/p(s) bytes: the unbiased
 * estimate.
 *
 * Invariant: omt_sample_filter[h] is the number of live sampled blocks
 * (traces in the engine) whose address falls in slot h (preload.h).  It
 * is changed under the recorder's lock, after the trace is put and after
 * it is taken; a free reads it without a lock.  The thread that frees a block learnt its
 * address from the thread that allocated it, after that thread's
 * increment, so a zero means "not sampled" for certain (a non-zero may be
 * another block's: the free then takes the lock and finds no trace).
 */
#define _GNU_SOURCE
#include "preload.h"

#include <math.h>
#include <stdatomic.h>
#include <time.h>

__thread int64_t omt_sample_left __attribute__((tls_model("initial-exec")));
static __thread uint64_t rng __attribute__((tls_model("initial-exec")));

bool omt_sampling;
static double rate;
static uint64_t seed;
static atomic_uint_fast64_t threads;
/* 0 in the process the recording began in; see omt_sample_forked.
 * children: how many times this process forked (under the recorder's
 * locks, which fork holds). */
static uint64_t lineage, children;

atomic_uint omt_sample_filter[1u << OMT_FILTER_BITS];

static uint64_t splitmix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void omt_sample_init(uint64_t r, uint64_t s) {
    rate = (double)r;
    seed = s;
    omt_sampling = true;
}

/* A uniform double in [0, 1). */
static double uniform(void) {
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

/* Bytes until the next sample: exponential, mean `rate`, at least 1 and
 * bounded so that the countdown cannot overflow (see omt_sample_due). */
static int64_t draw(void) {
    double d = -log1p(-uniform()) * rate;
    if (!(d >= 1))
        return 1;
    return d < 0x1p61 ? (int64_t)d : (int64_t)1 << 61;
}

/* A new generator for this thread: seeded from OBJMEM_TRACE_SEED when
 * set (generators numbered in the order they are made: threads in the
 * order of their first sampled-range allocation), else from the clock. */
static void seed_generator(void) {
    uint64_t n = atomic_fetch_add_explicit(&threads, 1, memory_order_relaxed);
    uint64_t base = seed ^ lineage;
    if (!base) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        base = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
               (uint64_t)(uintptr_t)&rng;
    }
    rng = splitmix(base + n * 0x632be59bd9b4e019ull);
    if (!rng)
        rng = 1;
}

void omt_sample_fork_parent(void) { children++; }

void omt_sample_forked(void) {
    /* The count left is an exponential remainder, as good for the child
     * as for the parent (memorylessness); the generators must differ, or
     * both would draw the same counts from then on.  The child's are
     * numbered afresh in a lineage of its own: the parent's, and which of
     * its children this is (reproducible under OBJMEM_TRACE_SEED). */
    lineage = splitmix(lineage + children + 1);
    children = 0;
    atomic_store(&threads, 0);
    if (rng)
        seed_generator();
}

bool omt_sample_hit(int64_t counted) {
    if (omt_in_tracer || !omt_recording()) {
        omt_sample_left += counted;
        return false;
    }
    if (!rng) {
        /* The thread's first count: as if drawn when it started. */
        seed_generator();
        omt_sample_left += draw();
        if (omt_sample_left > 0)
            return false;
    }
    omt_sample_left = draw();
    return true;
}

void omt_sample_added(uintptr_t p) {
    atomic_fetch_add_explicit(&omt_sample_filter[omt_sample_slot(p)], 1, memory_order_relaxed);
}

void omt_sample_removed(uintptr_t p) {
    atomic_fetch_sub_explicit(&omt_sample_filter[omt_sample_slot(p)], 1, memory_order_relaxed);
}

void omt_sample_estimate(uintptr_t p, size_t n, uint64_t *bytes, uint64_t *count) {
    double prob = n ? -expm1(-(double)n / rate) : 1;
    if (!(prob > 0))
        prob = 0x1p-60;
    double w = 1 / prob;
    *bytes = (uint64_t)((double)n * w + 0.5);
    /* The count rounded up or down at random, so that it stays unbiased;
     * by a hash of the address and size, so that the free subtracts what
     * the allocation added. */
    double frac = (double)(splitmix((uint64_t)p ^ (uint64_t)n << 48) >> 11) * 0x1p-53;
    *count = (uint64_t)(w + frac);
}
