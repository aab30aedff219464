/*
 * recorder.c — the recording of one traced process: the tracing engine
 * (src/tracer.h) interning tracebacks (and, when sampled, holding every
 * sampled block), per-traceback totals with the exact peak, the sampler
 * thread, and the trace file it appends to (docs/design.md, "Whole-process
 * tracer"; the format in tracefile.h).
 *
 * This is the only process-global mutable state in objmem, and it exists
 * because a preloaded library has nowhere else to keep it.  It is shared
 * by every thread of the program:
 *   - `lock` guards the engine, the totals and the aggregates; every
 *     event takes it (a spinning lock: see lock_take).  The engine is
 *     made without a lock of its own: every call into it is under `lock`.
 *   - `flush_lock` serialises writers (the sampler, exit, exec, fork) and
 *     guards the writer's fields; it is taken before `lock`, never after.
 *   - `recording` is read without a lock by the hooks, and set or cleared
 *     under `lock`; an event re-checks it under `lock`.
 *
 * The peak is exact, per traceback, at O(1) an event: each traceback's
 * aggregate (bytes, blocks) is kept live; each new peak of the total bumps
 * `epoch`; the first change of an aggregate after a peak saves its old
 * value, tagged with the epoch.  The aggregate at the peak is the saved
 * value when its tag is the current epoch, else the live one.
 *
 * Invariants (under `lock`):
 *   - `current` and `blocks` are the sums of the aggregates' bytes and
 *     counts: of the counted blocks' sizes and number (exact.c), or of
 *     what the engine's traces stand for (sampled).
 *   - `peak` >= `current`; the aggregates' values at the peak (as above)
 *     sum to `peak` and `peak_blocks`.
 *   - An aggregate is on `dirty` iff its flag `dirty` is set, and so for
 *     `peak_dirty`; each list holds an id at most once.
 *   - Every aggregate whose live value differs from the one last written
 *     is dirty; every aggregate whose value at the peak may differ from
 *     the one last written is peak-dirty (see flush_state).
 */
#define _GNU_SOURCE
#include "preload.h"

#include "modules.h"
#include "tracefile.h"
#include "tracer.h"
#include "unwind.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct agg {
    uint64_t bytes, count;           /* live */
    uint64_t peak_bytes, peak_count; /* at the peak, if epoch is current */
    uint64_t epoch;
    bool dirty, peak_dirty;
} agg;

typedef struct sample {
    uint64_t t, heap, rss;
} sample;

#define MAX_SAMPLES 256

static struct recorder {
    atomic_bool lock;
    pthread_mutex_t flush_lock;
    om_runtime *rt;
    om_tracer *tracer;
    int nframe;
    unsigned interval_ms;
    uint64_t sample_rate;   /* 0: exact; else sample.c's mean, in bytes */
    uint64_t start_ns;      /* CLOCK_MONOTONIC at the start of the file */
    /* Under `lock`. */
    uint64_t current, blocks, peak, peak_blocks, peak_ns, epoch;
    uint64_t allocs, alloc_bytes, lost;
    agg *aggs;              /* indexed by traceback id; [0] unused */
    size_t aggs_capacity;
    uint32_t max_tb;
    uint32_t *dirty, *peak_dirty;
    size_t ndirty, npeak_dirty;
    pid_t pid;              /* of the process recording (not a vfork child) */
    /* Under `flush_lock`. */
    int fd, statm_fd;
    dev_t dev;              /* the file's identity, to find it again */
    ino_t ino;
    bool write_failed;
    uint32_t tb_written;
    uint64_t epoch_written;
    uint64_t flushed_at;    /* since_start, coarse, at the last flush */
    size_t modules_written;
    sample samples[MAX_SAMPLES];
    size_t nsamples;
    char base[PATH_MAX], path[PATH_MAX];
} g = {
    .flush_lock = PTHREAD_MUTEX_INITIALIZER,
    .epoch = 1,
    .fd = -1,
    .statm_fd = -1,
};

atomic_bool omt_recording_now;

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Time since the start of this file.  New peaks read the coarse clock
 * (a few ms of resolution, but no system call and no TSC read). */
static uint64_t since_start(clockid_t clock) {
    uint64_t t = now_ns(clock);
    return t > g.start_ns ? t - g.start_ns : 0;
}

/* ---- the lock --------------------------------------------------------------------- */

/* `lock` is held for well under a microsecond by an event, but taken by
 * every one of them: a pthread mutex (a call and an atomic operation each
 * way) took a sixth of an allocation-heavy program's time under exact
 * recording, this about half that (its release is a plain store).  A waiter spins on a
 * read, and yields the processor after a while: a flush holds the lock
 * for as long as it takes to encode what changed. */
static void lock_take(void) {
    while (atomic_exchange_explicit(&g.lock, true, memory_order_acquire)) {
        for (unsigned spins = 0;
             atomic_load_explicit(&g.lock, memory_order_relaxed); spins++) {
            if (spins >= 64)
                sched_yield();
#if defined(__x86_64__) || defined(__i386__)
            else
                __builtin_ia32_pause();
#endif
        }
    }
}

static void lock_give(void) {
    atomic_store_explicit(&g.lock, false, memory_order_release);
}

/* ---- the engine's raw allocator: the real one, and huge pages ------------- */

/* The engine's large arrays (a sampled recording's trace table, above all) are read at
 * random, once or twice an event: on 4 KiB pages each access is likely a
 * TLB miss too, and filling a new table faults every page in.  So arrays
 * of HUGE_MIN bytes or more are mapped on their own, 2 MiB-aligned, with
 * MADV_HUGEPAGE (transparent huge pages, which the kernel may decline:
 * then they are ordinary pages).  Fresh mappings are zero, which the
 * engine's calloc of a new table relies on.  The mappings are listed in
 * `huge`; every engine call is under the recorder's lock, and so are
 * these. */
#define HUGE_PAGE (2u << 20)
#define HUGE_MIN (4u << 20)
#define HUGE_MAX_MAPPINGS 32

static struct {
    void *p;
    size_t n;
} huge[HUGE_MAX_MAPPINGS];
static size_t nhuge;

static void *huge_map(size_t n) {
    if (nhuge == HUGE_MAX_MAPPINGS || n > SIZE_MAX - 2 * HUGE_PAGE)
        return NULL;
    n = (n + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    unsigned char *m = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* Keep the 2 MiB-aligned n bytes; give back the rest around them. */
    unsigned char *p = (unsigned char *)(((uintptr_t)m + HUGE_PAGE - 1) &
                                         ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > m)
        munmap(m, (size_t)(p - m));
    munmap(p + n, (size_t)(m + HUGE_PAGE - p)); /* never empty: m is page-aligned */
    madvise(p, n, MADV_HUGEPAGE);
    huge[nhuge].p = p;
    huge[nhuge].n = n;
    nhuge++;
    return p;
}

/* The index of p's mapping in `huge`, or nhuge. */
static size_t huge_index(const void *p) {
    size_t i = 0;
    while (i < nhuge && huge[i].p != p)
        i++;
    return i;
}

static void raw_free(void *ctx, void *p) {
    (void)ctx;
    size_t i = huge_index(p);
    if (i == nhuge) {
        omt_real.free(p);
        return;
    }
    munmap(huge[i].p, huge[i].n);
    huge[i] = huge[--nhuge];
}
static void *raw_malloc(void *ctx, size_t n) {
    (void)ctx;
    void *p = n >= HUGE_MIN ? huge_map(n) : NULL;
    return p ? p : omt_real.malloc(n);
}
static void *raw_calloc(void *ctx, size_t count, size_t size) {
    (void)ctx;
    void *p = size && count <= SIZE_MAX / size && count * size >= HUGE_MIN
                  ? huge_map(count * size) : NULL;
    return p ? p : omt_real.calloc(count, size);
}
static void *raw_realloc(void *ctx, void *p, size_t n) {
    size_t i = huge_index(p);
    if (!p || i == nhuge)
        return omt_real.realloc(p, n);
    void *q = raw_malloc(ctx, n);
    if (q) {
        memcpy(q, p, huge[i].n < n ? huge[i].n : n);
        raw_free(ctx, p);
    }
    return q;
}

/* ---- aggregates and the peak ------------------------------------------------ */

static bool aggs_reserve(uint32_t tb) {
    if (tb < g.aggs_capacity)
        return true;
    size_t capacity = g.aggs_capacity ? g.aggs_capacity * 2 : 1024;
    while (capacity <= tb)
        capacity *= 2;
    agg *a = omt_real.realloc(g.aggs, capacity * sizeof *a);
    if (!a)
        return false;
    g.aggs = a;
    memset(a + g.aggs_capacity, 0, (capacity - g.aggs_capacity) * sizeof *a);
    /* The lists hold distinct ids: at most one per aggregate. */
    uint32_t *d = omt_real.realloc(g.dirty, capacity * sizeof *d);
    if (!d)
        return false;
    g.dirty = d;
    uint32_t *pd = omt_real.realloc(g.peak_dirty, capacity * sizeof *pd);
    if (!pd)
        return false;
    g.peak_dirty = pd;
    g.aggs_capacity = capacity;
    return true;
}

static void mark(uint32_t tb) {
    agg *a = &g.aggs[tb];
    if (!a->dirty) {
        a->dirty = true;
        g.dirty[g.ndirty++] = tb;
    }
    if (!a->peak_dirty) {
        a->peak_dirty = true;
        g.peak_dirty[g.npeak_dirty++] = tb;
    }
}

/* Add (bytes, count) to traceback tb's aggregate (two's complement for a
 * removal), saving its value at the peak first. */
static void change(uint32_t tb, uint64_t bytes, uint64_t count) {
    agg *a = &g.aggs[tb];
    if (a->epoch != g.epoch) {
        a->peak_bytes = a->bytes;
        a->peak_count = a->count;
        a->epoch = g.epoch;
    }
    a->bytes += bytes;
    a->count += count;
    mark(tb);
    g.current += bytes;
    g.blocks += count;
    if (g.current > g.peak) {
        /* Every aggregate's live value is now its value at the peak. */
        g.peak = g.current;
        g.peak_blocks = g.blocks;
        g.peak_ns = since_start(CLOCK_MONOTONIC_COARSE);
        g.epoch++;
    }
}

static void peak_value(const agg *a, uint64_t *bytes, uint64_t *count) {
    bool saved = a->epoch == g.epoch;
    *bytes = saved ? a->peak_bytes : a->bytes;
    *count = saved ? a->peak_count : a->count;
}

/* ---- events ------------------------------------------------------------------- */

static void tick(void);

void omt_lock(void) { lock_take(); }

void omt_unlock(void) {
    lock_give();
    /* A sampled recording has no sampler thread (see start_sampler): its
     * sampled events take the samples and flushes in the thread's stead. */
    if (g.sample_rate)
        tick();
}

/* The engine's traces are a sampled recording's (an exact one keeps its
 * blocks' sizes and tracebacks in their headers: exact.c).  A sampled
 * block counts in the aggregates for the bytes and blocks it stands for
 * (sample.c). */

/* The trace of size bytes at p, traceback tb, leaves the aggregates. */
static void forgotten(uintptr_t p, size_t size, uint32_t tb) {
    uint64_t bytes, count;
    omt_sample_estimate(p, size, &bytes, &count);
    omt_sample_removed(p);
    change(tb, -bytes, -count);
}

/* The traceback of the allocation returning into ret, interned, with an
 * aggregate to count it in: its id, or 0 (out of memory: the allocation
 * is lost). */
static uint32_t traceback_here(uintptr_t ret) {
    om_site site = {NULL, NULL, 0, ret};
    uint32_t tb = om_tracer_traceback_id(g.tracer, &site);
    if (!tb || !aggs_reserve(tb)) {
        g.lost++;
        return 0;
    }
    if (tb > g.max_tb)
        g.max_tb = tb;
    return tb;
}

/* A new allocation, standing for `bytes` bytes in `count` blocks. */
static void allocated(uint32_t tb, uint64_t bytes, uint64_t count) {
    g.allocs += count;
    g.alloc_bytes += bytes;
    change(tb, bytes, count);
}

void omt_on_alloc_locked(void *p, size_t n, uintptr_t ret) {
    if (!omt_recording())
        return;
    /* The block's slot is likely a cache miss: it loads while the
     * traceback is unwound and interned. */
    om_tracer_prefetch(g.tracer, (uintptr_t)p);
    uint32_t tb = traceback_here(ret);
    if (!tb)
        return;
    om_trace_was was;
    if (!om_tracer_put(g.tracer, 0, (uintptr_t)p, n, tb, &was)) {
        g.lost++;
        return;
    }
    /* A stale trace at this address (its block freed where no hook saw
     * it) leaves its aggregate first. */
    if (was.found)
        forgotten((uintptr_t)p, was.size, was.tb);
    uint64_t bytes, count;
    omt_sample_estimate((uintptr_t)p, n, &bytes, &count);
    omt_sample_added((uintptr_t)p);
    allocated(tb, bytes, count);
}

uint32_t omt_record_alloc(size_t n, uintptr_t ret) {
    uint32_t tb = 0;
    omt_lock();
    if (omt_recording()) {
        tb = traceback_here(ret);
        if (tb)
            allocated(tb, n, 1);
    }
    omt_unlock();
    return tb;
}

void omt_record_free(uint64_t size, uint32_t tb) {
    omt_lock();
    /* tb <= max_tb: a sealed header that is not ours after all (once in
     * 65536 frees of a bad pointer) is kept out of the aggregates' array. */
    if (omt_recording() && tb <= g.max_tb)
        change(tb, -size, -1);
    omt_unlock();
}

void omt_on_free_locked(void *p) {
    size_t size;
    uint32_t tb;
    if (omt_recording() && om_tracer_take(g.tracer, 0, (uintptr_t)p, &size, &tb))
        forgotten((uintptr_t)p, size, tb);
}

void omt_on_alloc(void *p, size_t n, uintptr_t ret) {
    omt_lock();
    omt_on_alloc_locked(p, n, ret);
    omt_unlock();
}

void omt_prefetch_locked(const void *p) {
    if (omt_recording())
        om_tracer_prefetch(g.tracer, (uintptr_t)p);
}

/* ---- building chunks ------------------------------------------------------------ */

typedef struct buf {
    unsigned char *data;
    size_t len, cap;
    size_t chunk;  /* offset of the open chunk's header */
    bool failed;
} buf;

static unsigned char *buf_room(buf *b, size_t n) {
    if (b->failed)
        return NULL;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = omt_real.realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return NULL;
        }
        b->data = d;
        b->cap = cap;
    }
    unsigned char *p = b->data + b->len;
    b->len += n;
    return p;
}

static void put32(buf *b, uint32_t v) {
    unsigned char *p = buf_room(b, 4);
    if (p)
        omt_put32(p, v);
}

static void put64(buf *b, uint64_t v) {
    unsigned char *p = buf_room(b, 8);
    if (p)
        omt_put64(p, v);
}

static void put_varint(buf *b, uint64_t v) {
    unsigned char *p = buf_room(b, OMT_VARINT_MAX);
    if (p)
        b->len -= OMT_VARINT_MAX - omt_put_varint(p, v);
}

static void put_string(buf *b, const char *s, size_t n) {
    put32(b, (uint32_t)n);
    unsigned char *p = buf_room(b, n);
    if (p && n)
        memcpy(p, s, n);
}

static void chunk_begin(buf *b, uint32_t type) {
    b->chunk = b->len;
    put32(b, type);
    put32(b, 0);
}

static size_t chunk_payload(const buf *b) {
    return b->len - b->chunk - OMT_CHUNK_HEAD;
}

static void chunk_end(buf *b) {
    if (b->failed)
        return;
    size_t size = chunk_payload(b);
    if (size > OMT_CHUNK_MAX) {
        b->failed = true;
        return;
    }
    omt_put32(b->data + b->chunk + 4, (uint32_t)size);
    uint64_t h = omt_fnv(OMT_FNV_BASIS, b->data + b->chunk, b->len - b->chunk);
    put64(b, h);
}

/* ---- writing --------------------------------------------------------------------- */

static void write_all(const unsigned char *p, size_t n) {
    while (n && !g.write_failed) {
        ssize_t w = write(g.fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            /* Stop here: a chunk after a hole would be unreadable. */
            g.write_failed = true;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Whether g.fd is still our file: a program may close every descriptor it
 * did not open (daemons, a child before exec) and reuse the number.  If
 * it is gone, the file is opened again by its path, if that is still the
 * same file; else writing stops. */
static bool fd_is_ours(void) {
    struct stat st;
    if (fstat(g.fd, &st) == 0 && st.st_dev == g.dev && st.st_ino == g.ino)
        return true;
    int fd = open(g.path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return false;
    if (fstat(fd, &st) != 0 || st.st_dev != g.dev || st.st_ino != g.ino) {
        close(fd);
        return false;
    }
    g.fd = fd; /* the old number is the program's now: not closed */
    return true;
}

static void buf_write(buf *b) {
    if (g.fd < 0 || g.write_failed)
        return;
    if (!fd_is_ours()) {
        g.write_failed = true;
        return;
    }
    if (b->failed)
        g.write_failed = true; /* a chunk lost: nothing after it is valid */
    else
        write_all(b->data, b->len);
}

static void write_start(buf *b, uint32_t origin, uint64_t realtime) {
    char cmdline[8192], exe[PATH_MAX];
    ssize_t ncmd = 0, nexe;
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ncmd = read(fd, cmdline, sizeof cmdline);
        close(fd);
    }
    if (ncmd < 0)
        ncmd = 0;
    nexe = readlink("/proc/self/exe", exe, sizeof exe);
    if (nexe < 0)
        nexe = 0;
    chunk_begin(b, OMT_CHUNK_START);
    put64(b, realtime);
    put32(b, (uint32_t)getpid());
    put32(b, (uint32_t)getppid());
    put32(b, (uint32_t)g.nframe);
    put32(b, g.interval_ms);
    put32(b, origin);
    put_string(b, cmdline, (size_t)ncmd);
    put_string(b, exe, (size_t)nexe);
    chunk_end(b);
    if (g.sample_rate) {
        chunk_begin(b, OMT_CHUNK_SAMPLING);
        put64(b, g.sample_rate);
        chunk_end(b);
    }
}

static void write_modules(buf *b) {
    size_t n;
    const omt_module *mods = omt_modules_seen(&n);
    if (n <= g.modules_written)
        return;
    chunk_begin(b, OMT_CHUNK_MODULES);
    put32(b, (uint32_t)(n - g.modules_written));
    for (size_t i = g.modules_written; i < n; i++) {
        const omt_module *m = &mods[i];
        put64(b, m->bias);
        put32(b, m->nseg);
        for (unsigned s = 0; s < m->nseg; s++) {
            put64(b, m->lo[s]);
            put64(b, m->hi[s]);
        }
        put_string(b, m->path, strlen(m->path));
    }
    chunk_end(b);
    g.modules_written = n;
}

/* New tracebacks, in chunks of at most about 1 MiB.  Under `lock`. */
static void write_tracebacks(buf *b) {
    while (g.tb_written < g.max_tb && !b->failed) {
        chunk_begin(b, OMT_CHUNK_TRACEBACKS);
        size_t count_at = b->len + 4;
        put32(b, g.tb_written + 1);
        put32(b, 0);
        uint32_t count = 0;
        while (g.tb_written < g.max_tb && chunk_payload(b) < (1u << 20) &&
               !b->failed) {
            uint32_t id = g.tb_written + 1;
            const om_tb_record *r = om_tracer_traceback(g.tracer, id);
            const om_tb_record *before =
                id > 1 ? om_tracer_traceback(g.tracer, id - 1) : NULL;
            /* The outermost frames it shares with the traceback before. */
            unsigned shared = 0;
            while (before && shared < r->nframes && shared < before->nframes &&
                   r->frames[r->nframes - 1 - shared] ==
                       before->frames[before->nframes - 1 - shared])
                shared++;
            put_varint(b, r->nframes);
            put_varint(b, r->total_nframe);
            put_varint(b, shared);
            /* Each frame as its difference from the one before it, the
             * first from the previous traceback's first. */
            uint64_t last = before ? before->frames[0] : 0;
            for (unsigned i = 0; i < r->nframes - shared; i++) {
                put_varint(b, omt_zigzag(r->frames[i] - last));
                last = r->frames[i];
            }
            g.tb_written++;
            count++;
        }
        if (!b->failed)
            omt_put32(b->data + count_at, count);
        chunk_end(b);
    }
}

static void write_samples(buf *b) {
    if (!g.nsamples)
        return;
    chunk_begin(b, OMT_CHUNK_SAMPLES);
    put32(b, (uint32_t)g.nsamples);
    for (size_t i = 0; i < g.nsamples; i++) {
        put_varint(b, g.samples[i].t);
        put_varint(b, g.samples[i].heap);
        put_varint(b, g.samples[i].rss);
    }
    chunk_end(b);
    g.nsamples = 0;
}

/* One aggregate of a STATE list: its traceback id as the difference from
 * the one before it in the list (*last), its bytes and count. */
static void put_aggregate(buf *b, uint32_t *last, uint32_t tb, uint64_t bytes,
                          uint64_t count) {
    put_varint(b, omt_zigzag((uint64_t)tb - *last));
    put_varint(b, bytes);
    put_varint(b, count);
    *last = tb;
}

/* The totals, the aggregates changed since the last flush, and, when the
 * peak moved, the values at the peak of the aggregates that may differ
 * from those last written.  An aggregate leaves `peak_dirty` only when
 * its live value is its value at the peak (it has not changed since):
 * whatever changes it later puts it back, so at the next peak every
 * aggregate whose value there differs from the one written is listed.
 * Under `lock`. */
static void write_state(buf *b) {
    chunk_begin(b, OMT_CHUNK_STATE);
    put_varint(b, since_start(CLOCK_MONOTONIC));
    put_varint(b, g.current);
    put_varint(b, g.blocks);
    put_varint(b, g.peak);
    put_varint(b, g.peak_blocks);
    put_varint(b, g.peak_ns);
    put_varint(b, g.allocs);
    put_varint(b, g.alloc_bytes);
    put_varint(b, g.lost);
    put32(b, (uint32_t)g.ndirty);
    uint32_t last = 0;
    for (size_t i = 0; i < g.ndirty; i++) {
        agg *a = &g.aggs[g.dirty[i]];
        put_aggregate(b, &last, g.dirty[i], a->bytes, a->count);
        a->dirty = false;
    }
    g.ndirty = 0;
    if (g.epoch_written == g.epoch) {
        put32(b, 0);
    } else {
        put32(b, (uint32_t)g.npeak_dirty);
        last = 0;
        size_t kept = 0;
        for (size_t i = 0; i < g.npeak_dirty; i++) {
            uint32_t tb = g.peak_dirty[i];
            agg *a = &g.aggs[tb];
            uint64_t bytes, count;
            peak_value(a, &bytes, &count);
            put_aggregate(b, &last, tb, bytes, count);
            if (a->epoch == g.epoch)
                g.peak_dirty[kept++] = tb; /* changed since the peak */
            else
                a->peak_dirty = false;
        }
        g.npeak_dirty = kept;
        g.epoch_written = g.epoch;
    }
    chunk_end(b);
}

/* Write what changed since the last flush, then the extra chunk the
 * caller built (EXEC, END), if any.  Under `flush_lock`, guard up. */
static void flush(buf *extra) {
    if (g.fd < 0 || g.write_failed)
        return;
    g.flushed_at = since_start(CLOCK_MONOTONIC_COARSE);
    buf b = {0};
    omt_modules_refresh();
    write_modules(&b);
    write_samples(&b);
    lock_take();
    write_tracebacks(&b);
    write_state(&b);
    lock_give();
    buf_write(&b);
    omt_real.free(b.data);
    if (extra) {
        buf_write(extra);
        omt_real.free(extra->data);
    }
}

/* ---- sampling ---------------------------------------------------------------------- */

static uint64_t rss_bytes(void) {
    char text[128];
    if (g.statm_fd < 0)
        return 0;
    ssize_t n = pread(g.statm_fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = 0;
    unsigned long long size, resident;
    if (sscanf(text, "%llu %llu", &size, &resident) != 2)
        return 0;
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* While nothing but the timeline changes, a flush every second is
 * enough: a program that sits idle then loses at most a second of
 * timeline when killed, and its file grows by one small flush a second
 * instead of ten. */
#define IDLE_FLUSH_NS 1000000000ull

/* Whether this interval's samples are flushed now: anything to write
 * besides the timeline, or a second since the last flush, or the sample
 * buffer full.  Under `flush_lock`. */
static bool flush_due(void) {
    if (g.nsamples == MAX_SAMPLES ||
        since_start(CLOCK_MONOTONIC_COARSE) - g.flushed_at >= IDLE_FLUSH_NS)
        return true;
    lock_take();
    bool changed = g.ndirty || g.tb_written < g.max_tb;
    lock_give();
    return changed;
}

/* Under `flush_lock`. */
static void take_sample(void) {
    if (g.nsamples == MAX_SAMPLES)
        return;
    lock_take();
    uint64_t heap = g.current;
    lock_give();
    sample *s = &g.samples[g.nsamples++];
    s->t = since_start(CLOCK_MONOTONIC);
    s->heap = heap;
    s->rss = rss_bytes();
}

/* A sample of the timeline and a flush, unless another thread is making
 * them (then this one has nothing to add).  Whether the recording goes
 * on. */
static bool sample_and_flush(void) {
    if (pthread_mutex_trylock(&g.flush_lock) != 0)
        return true;
    bool go_on = omt_recording();
    if (go_on) {
        take_sample();
        if (flush_due())
            flush(NULL);
        else
            omt_modules_refresh(); /* for the unwinder, as a flush does */
    }
    pthread_mutex_unlock(&g.flush_lock);
    return go_on;
}

static void *sampler_main(void *arg) {
    (void)arg;
    omt_in_tracer = 1; /* for good: nothing this thread does is traced */
    struct timespec interval = {g.interval_ms / 1000,
                                (long)(g.interval_ms % 1000) * 1000000};
    for (;;) {
        struct timespec left = interval;
        while (nanosleep(&left, &left) != 0 && errno == EINTR)
            ;
        if (!sample_and_flush())
            return NULL;
    }
}

/* When the coarse clock (ns since the start) passes it, the next sampled
 * event takes a sample and flushes: a sampled recording's clock. */
static atomic_uint_fast64_t next_tick;

/* Called by a sampled recording's events, lock released, guard up. */
static void tick(void) {
    uint64_t now = since_start(CLOCK_MONOTONIC_COARSE);
    uint64_t due = atomic_load_explicit(&next_tick, memory_order_relaxed);
    if (now < due ||
        !atomic_compare_exchange_strong(&next_tick, &due,
                                        now + g.interval_ms * 1000000ull))
        return;
    sample_and_flush();
}

/* The sampler thread, with every signal blocked so that the program's
 * handlers run on its own threads.  Only an exact recording has one: a
 * second thread switches the C library's allocator from its
 * single-threaded fast path to locking every call, which costs the
 * program more than the whole sampled mode may (docs/design.md, "Sampled
 * recording").  A sampled recording samples and flushes from its sampled
 * events instead (tick), so its timeline has no points, and its file no
 * flushes, while the program makes no sampled allocation. */
static bool start_sampler(void) {
    if (g.sample_rate) {
        atomic_store(&next_tick, since_start(CLOCK_MONOTONIC_COARSE) +
                                     g.interval_ms * 1000000ull);
        return true;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    int r = pthread_create(&t, &attr, sampler_main, NULL);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r == 0;
}

/* ---- the file ------------------------------------------------------------------------ */

static uint32_t random32(void) {
    uint32_t v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    return (uint32_t)(now_ns(CLOCK_MONOTONIC) ^ ((uint64_t)getpid() << 16));
}

/* Create the file: the base path itself for the first process of a run
 * (try_base), else, or when it exists already, "<base>.<pid>.<8 hex>".
 * Creation is exclusive, so no recording ever overwrites another's, even
 * with a pid reused.  Then the header and START. */
static bool open_output(bool try_base, uint32_t origin) {
    int fd = -1;
    if (try_base) {
        fd = open(g.base, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0)
            snprintf(g.path, sizeof g.path, "%s", g.base);
    }
    for (int i = 0; fd < 0 && i < 64; i++) {
        if (i > 0 && errno != EEXIST)
            break;
        int len = snprintf(g.path, sizeof g.path, "%s.%d.%08x", g.base,
                           (int)getpid(), random32());
        if (len < 0 || (size_t)len >= sizeof g.path) {
            errno = ENAMETOOLONG;
            break;
        }
        fd = open(g.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        return false;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return false;
    }
    g.fd = fd;
    g.dev = st.st_dev;
    g.ino = st.st_ino;
    g.pid = getpid();
    g.write_failed = false;
    g.start_ns = now_ns(CLOCK_MONOTONIC);
    unsigned char header[OMT_HEADER_SIZE];
    memcpy(header, OMT_MAGIC, OMT_MAGIC_SIZE);
    omt_put32(header + 8, OMT_VERSION);
    omt_put32(header + 12, 0);
    buf b = {0};
    write_start(&b, origin, now_ns(CLOCK_REALTIME));
    write_all(header, sizeof header);
    buf_write(&b);
    omt_real.free(b.data);
    return !g.write_failed;
}

/* ---- fork ------------------------------------------------------------------------------- */

static void fork_prepare(void) {
    omt_in_tracer++;
    pthread_mutex_lock(&g.flush_lock);
    lock_take();
}

static void fork_parent(void) {
    if (g.sample_rate)
        omt_sample_fork_parent();
    lock_give();
    pthread_mutex_unlock(&g.flush_lock);
    omt_in_tracer--;
}

/* The child holds a copy of the parent's heap, so it keeps the traces and
 * starts a file of its own with all of them: every traceback, module and
 * non-empty aggregate is written again, and its peak starts at the heap
 * it was born with. */
static void child_restart(void) {
    if (g.fd >= 0)
        close(g.fd); /* the parent's file: not ours to write */
    g.fd = -1;
    if (g.statm_fd >= 0)
        close(g.statm_fd);
    g.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    g.tb_written = 0;
    g.epoch_written = 0;
    g.modules_written = 0;
    g.nsamples = 0;
    g.allocs = g.alloc_bytes = g.lost = 0;
    g.ndirty = g.npeak_dirty = 0;
    for (uint32_t tb = 1; tb <= g.max_tb; tb++) {
        agg *a = &g.aggs[tb];
        a->dirty = a->peak_dirty = false;
        if (a->bytes || a->count)
            mark(tb);
    }
    if (!open_output(false, OMT_ORIGIN_FORK)) {
        atomic_store(&omt_recording_now, false);
        return;
    }
    g.peak = g.current;
    g.peak_blocks = g.blocks;
    g.peak_ns = 0;
    g.epoch++;
    if (!start_sampler())
        atomic_store(&omt_recording_now, false);
}

static void fork_child(void) {
    lock_give(); /* held by the thread that forked, which is this one */
    pthread_mutex_init(&g.flush_lock, NULL);
    if (g.sample_rate)
        omt_sample_forked();
    if (omt_recording())
        child_restart();
    omt_in_tracer--;
}

/* ---- start, exec, finish ---------------------------------------------------------------- */

static void complain(const char *what) {
    char msg[PATH_MAX + 200];
    int n = snprintf(msg, sizeof msg, "objmem-trace: not recording pid %d: %s\n",
                     (int)getpid(), what);
    if (n > 0) {
        ssize_t w = write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
        (void)w;
    }
}

static long env_number(const char *name, long def, long lo, long hi) {
    const char *s = getenv(name);
    if (!s || !*s)
        return def;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < lo || v > hi ? def : v;
}

void omt_recorder_start(void) {
    const char *out = getenv(OMT_ENV_OUTPUT);
    int n = out && *out ? snprintf(g.base, sizeof g.base, "%s", out)
                        : snprintf(g.base, sizeof g.base,
                                   "objmem-trace.%d.trace", (int)getpid());
    if (n < 0 || (size_t)n >= sizeof g.base) {
        complain("the output path is too long");
        return;
    }
    g.nframe = (int)env_number(OMT_ENV_FRAMES, OMT_DEFAULT_FRAMES, 1,
                               OMT_MAX_FRAMES);
    g.interval_ms = (unsigned)env_number(OMT_ENV_INTERVAL,
                                         OMT_DEFAULT_INTERVAL_MS, 1,
                                         OMT_MAX_INTERVAL_MS);
    const char *rate = getenv(OMT_ENV_SAMPLE_RATE);
    /* The hooks chose exact or sampled at bootstrap, from this same
     * variable: were the environment changed in between, they and the
     * recorder would disagree on what a block is. */
    if (omt_exact == (rate && *rate)) {
        complain("OBJMEM_TRACE_SAMPLE_RATE changed after the first allocation");
        return;
    }
    if (rate && *rate) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(rate, &end, 10);
        if (*end || errno || !v || v > OMT_MAX_SAMPLE_RATE || rate[0] == '-') {
            complain("OBJMEM_TRACE_SAMPLE_RATE is not a number of bytes");
            return;
        }
        g.sample_rate = v;
        const char *seed = getenv(OMT_ENV_SEED);
        omt_sample_init(v, seed && *seed ? strtoull(seed, NULL, 10) : 0);
    }
    om_config config;
    om_config_init(&config);
    config.leak_report = 0;
    config.raw = (om_raw_allocator){NULL, raw_malloc, raw_calloc, raw_realloc,
                                    raw_free};
    g.rt = om_runtime_new(&config);
    g.tracer = g.rt ? om_tracer_new(g.rt, g.nframe, false) : NULL;
    if (!g.tracer) {
        complain("out of memory");
        return;
    }
    /* Look up this thread's stack now, outside any hook: for the main
     * thread the C library reads /proc/self/maps with stdio. */
    size_t total;
    om_unwind_after(0, NULL, 0, &total);
    if (!omt_modules_refresh()) {
        complain("out of memory");
        return;
    }
    g.statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (!open_output(true, OMT_ORIGIN_START)) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof why, "cannot create %s: %s", g.path,
                 strerror(errno));
        complain(why);
        return;
    }
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
        complain("pthread_atfork failed");
        return;
    }
    atomic_store(&omt_recording_now, true);
    if (!start_sampler()) {
        atomic_store(&omt_recording_now, false);
        complain("cannot start the sampler thread");
    }
}

/* Stop recording events, so that what the last flush writes is final. */
static bool stop(void) {
    lock_take();
    bool was = omt_recording();
    atomic_store(&omt_recording_now, false);
    lock_give();
    return was;
}

static void end_chunk(buf *b, uint32_t type, const char *path) {
    chunk_begin(b, type);
    put64(b, since_start(CLOCK_MONOTONIC));
    if (path)
        put_string(b, path, strlen(path));
    chunk_end(b);
}

void omt_recorder_exec(const char *path) {
    /* In a vfork child (no fork handlers ran), the recording is the
     * parent's, and so is the memory: leave both alone. */
    if (!omt_recording() || getpid() != g.pid)
        return;
    omt_in_tracer++;
    pthread_mutex_lock(&g.flush_lock);
    if (omt_recording()) {
        take_sample();
        buf extra = {0};
        end_chunk(&extra, OMT_CHUNK_EXEC, path ? path : "");
        flush(&extra);
    }
    pthread_mutex_unlock(&g.flush_lock);
    omt_in_tracer--;
}

void omt_recorder_finish(void) {
    pthread_mutex_lock(&g.flush_lock);
    if (stop()) {
        take_sample();
        buf extra = {0};
        end_chunk(&extra, OMT_CHUNK_END, NULL);
        flush(&extra);
        close(g.fd);
        g.fd = -1;
    }
    pthread_mutex_unlock(&g.flush_lock);
}
