/*
 * snapshot.c — snapshots: a self-contained copy of traces whose strings,
 * frames and tracebacks are interned in the snapshot's bump allocator
 * (docs/design.md, "Tracer").  Statistics are in stats.c, filters in
 * filter.c, text in format.c, files in snapshot_io.c.
 */
#include "snapshot.h"

#include <string.h>

/* ---- bump allocation ----------------------------------------------------------------------- */

struct om_bump_chunk {
    om_bump_chunk *next;
    size_t size; /* bytes after the 16-byte chunk header */
};

/* Chunks are at least this big, so that small strings and frames cost one
 * raw allocation per many. */
#define BUMP_CHUNK_MIN (64 * 1024 - 64)

void om_bump_init(om_bump *a, om_runtime *rt) {
    memset(a, 0, sizeof *a);
    a->rt = rt;
}

void *om_bump_alloc(om_bump *a, size_t n) {
    n = (n + OM_ALIGNMENT - 1) & ~(size_t)(OM_ALIGNMENT - 1);
    if (n > a->left) {
        size_t header = (sizeof(om_bump_chunk) + OM_ALIGNMENT - 1) &
                        ~(size_t)(OM_ALIGNMENT - 1);
        size_t size = n > BUMP_CHUNK_MIN ? n : BUMP_CHUNK_MIN;
        if (size > SIZE_MAX - header || !om_alloc_attempt(a->rt))
            return NULL;
        om_bump_chunk *c = om_raw_malloc(a->rt, header + size);
        if (!c)
            return NULL;
        c->next = a->chunks;
        c->size = size;
        a->chunks = c;
        a->next = (char *)c + header;
        a->left = size;
        a->bytes += header + size;
    }
    void *p = a->next;
    a->next += n;
    a->left -= n;
    return p;
}

void om_bump_free_all(om_bump *a) {
    while (a->chunks) {
        om_bump_chunk *c = a->chunks;
        a->chunks = c->next;
        om_raw_free(a->rt, c);
    }
    a->next = NULL;
    a->left = a->bytes = 0;
}

/* ---- interning ---------------------------------------------------------------------- */

typedef uint64_t (*intern_hash_fn)(const void *item);
typedef bool (*intern_eq_fn)(const void *stored, const void *probe);

/* The slot holding an item equal to probe, or the empty slot where it
 * would go.  The set is never full (grown at 1/2 load). */
static void **intern_slot(const om_intern *set, const void *probe,
                          uint64_t hash, intern_eq_fn eq) {
    size_t mask = set->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        void **slot = &set->slots[i];
        if (!*slot || eq(*slot, probe))
            return slot;
    }
}

/* Make room for one more item; false when memory is short (set unchanged). */
static bool intern_reserve(om_runtime *rt, om_intern *set,
                           intern_hash_fn hash) {
    if (set->capacity && (set->count + 1) * 2 <= set->capacity)
        return true;
    size_t capacity = set->capacity ? set->capacity * 2 : 64;
    if (!om_alloc_attempt(rt))
        return false;
    void **slots = om_raw_calloc(rt, capacity, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < set->capacity; i++) {
        void *item = set->slots[i];
        if (!item)
            continue;
        size_t j = hash(item) & (capacity - 1);
        while (slots[j])
            j = (j + 1) & (capacity - 1);
        slots[j] = item;
    }
    om_raw_free(rt, set->slots);
    set->slots = slots;
    set->capacity = capacity;
    return true;
}

static void intern_free(om_runtime *rt, om_intern *set) {
    om_raw_free(rt, set->slots);
    memset(set, 0, sizeof *set);
}

/* ---- strings ----------------------------------------------------------------------------- */

/* A probe for a string that need not be NUL-terminated. */
typedef struct {
    const char *data;
    size_t len;
} string_probe;

static uint64_t string_hash(const void *s) {
    return om_hash_bytes(s, strlen(s));
}

static bool string_eq(const void *stored, const void *probe) {
    const string_probe *p = probe;
    return strncmp(stored, p->data, p->len) == 0 &&
           ((const char *)stored)[p->len] == '\0';
}

const char *om_snapshot_intern_string(om_snapshot *snap, const char *s,
                                      size_t len) {
    string_probe probe = {s, len};
    uint64_t hash = om_hash_bytes(s, len);
    if (!intern_reserve(snap->rt, &snap->strings, string_hash))
        return NULL;
    void **slot = intern_slot(&snap->strings, &probe, hash, string_eq);
    if (*slot)
        return *slot;
    char *copy = om_bump_alloc(&snap->bump, len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    snap->strings.count++;
    return *slot = copy;
}

/* ---- frames and tracebacks -------------------------------------------------------------------- */

static uint64_t frame_hash(const void *item) {
    const om_frame *f = item;
    return om_hash_word((uintptr_t)f->filename ^
                        ((uint64_t)f->lineno << 32) ^
                        om_hash_word((uintptr_t)f->function));
}

static bool frame_eq(const void *stored, const void *probe) {
    const om_frame *a = stored, *b = probe;
    return a->filename == b->filename && a->lineno == b->lineno &&
           a->function == b->function;
}

/* The interned copy of a frame whose strings are interned. */
static const om_frame *intern_frame(om_snapshot *snap, const om_frame *f) {
    if (!intern_reserve(snap->rt, &snap->frames, frame_hash))
        return NULL;
    void **slot = intern_slot(&snap->frames, f, frame_hash(f), frame_eq);
    if (*slot)
        return *slot;
    om_frame *copy = om_bump_alloc(&snap->bump, sizeof *copy);
    if (!copy)
        return NULL;
    *copy = *f;
    snap->frames.count++;
    return *slot = copy;
}

/* Tracebacks hash and compare by their frames' interned pointers, so a
 * traceback of interned frames is found in one probe sequence. */
static uint64_t traceback_hash(const void *item) {
    const om_traceback *tb = item;
    uint64_t h = om_hash_word(tb->nframes ^ (tb->total_nframe << 20));
    for (size_t i = 0; i < tb->nframes; i++)
        h = om_hash_word(h ^ frame_hash(&tb->frames[i]));
    return h;
}

static bool traceback_eq(const void *stored, const void *probe) {
    const om_traceback *a = stored, *b = probe;
    if (a->nframes != b->nframes || a->total_nframe != b->total_nframe)
        return false;
    for (size_t i = 0; i < a->nframes; i++)
        if (!frame_eq(&a->frames[i], &b->frames[i]))
            return false;
    return true;
}

const om_traceback *om_snapshot_intern_traceback(om_snapshot *snap,
                                                 const om_frame *frames,
                                                 size_t nframes,
                                                 size_t total_nframe) {
    om_traceback probe = {nframes, total_nframe, frames};
    if (!intern_reserve(snap->rt, &snap->tracebacks, traceback_hash))
        return NULL;
    void **slot = intern_slot(&snap->tracebacks, &probe,
                              traceback_hash(&probe), traceback_eq);
    if (*slot)
        return *slot;
    /* The frames are stored once more, contiguously, so that a traceback
     * is one array; each is also interned, for grouping by frame. */
    om_traceback *tb = om_bump_alloc(&snap->bump, sizeof *tb);
    om_frame *copy = nframes ? om_bump_alloc(&snap->bump,
                                              nframes * sizeof *copy)
                             : NULL;
    if (!tb || (nframes && !copy))
        return NULL;
    for (size_t i = 0; i < nframes; i++) {
        if (!intern_frame(snap, &frames[i]))
            return NULL;
        copy[i] = frames[i];
    }
    tb->nframes = nframes;
    tb->total_nframe = total_nframe;
    tb->frames = copy;
    /* slot stays valid across intern_frame: only reserving room in the
     * traceback set moves its slots. */
    snap->tracebacks.count++;
    return *slot = tb;
}

om_status om_snapshot_append(om_snapshot *snap, unsigned domain, size_t size,
                             const om_traceback *tb) {
    if (snap->ntraces == snap->traces_capacity) {
        size_t capacity = snap->traces_capacity ? snap->traces_capacity * 2
                                                : 256;
        if (capacity > SIZE_MAX / sizeof(om_trace) ||
            !om_alloc_attempt(snap->rt))
            return om_error(snap->rt, OM_ERR_NOMEM,
                            "snapshot: out of memory for %zu traces",
                            capacity);
        om_trace *traces = om_raw_realloc(snap->rt, snap->traces,
                                          capacity * sizeof *traces);
        if (!traces)
            return om_error(snap->rt, OM_ERR_NOMEM,
                            "snapshot: out of memory for %zu traces",
                            capacity);
        snap->traces = traces;
        snap->traces_capacity = capacity;
    }
    snap->traces[snap->ntraces++] = (om_trace){domain, size, tb};
    return OM_OK;
}

/* ---- the public functions ---------------------------------------------------------------------- */

static bool valid_limit(int limit) {
    return limit >= 1 && limit <= OM_TRACEMALLOC_MAX_FRAMES;
}

om_snapshot *om_snapshot_new(om_runtime *rt, int traceback_limit) {
    if (!rt)
        return NULL;
    if (!valid_limit(traceback_limit))
        return OM_FAIL_NULL(rt, OM_ERR_ARG,
                            "om_snapshot_new: traceback_limit %d is not in "
                            "range [1; %d]",
                            traceback_limit, OM_TRACEMALLOC_MAX_FRAMES);
    om_snapshot *snap = NULL;
    if (om_alloc_attempt(rt))
        snap = om_raw_calloc(rt, 1, sizeof *snap);
    if (!snap)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_snapshot_new: out of memory");
    snap->rt = rt;
    snap->traceback_limit = traceback_limit;
    om_bump_init(&snap->bump, rt);
    return snap;
}

void om_snapshot_free(om_snapshot *snap) {
    if (!snap)
        return;
    om_runtime *rt = snap->rt;
    intern_free(rt, &snap->strings);
    intern_free(rt, &snap->frames);
    intern_free(rt, &snap->tracebacks);
    om_bump_free_all(&snap->bump);
    om_raw_free(rt, snap->traces);
    om_raw_free(rt, snap);
}

int om_snapshot_traceback_limit(const om_snapshot *snap) {
    return snap ? snap->traceback_limit : 0;
}

const om_trace *om_snapshot_traces(const om_snapshot *snap, size_t *count) {
    if (count)
        *count = snap ? snap->ntraces : 0;
    return snap ? snap->traces : NULL;
}

/* The interned copy of s (NULL: the unknown name). */
static const char *intern_cstring(om_snapshot *snap, const char *s) {
    if (!s)
        s = OM_UNKNOWN_NAME;
    return om_snapshot_intern_string(snap, s, strlen(s));
}

om_status om_snapshot_add_trace(om_snapshot *snap, unsigned domain,
                                size_t size, const om_frame *frames,
                                size_t nframes, size_t total_nframe) {
    if (!snap)
        return OM_ERR_ARG;
    om_runtime *rt = snap->rt;
    if (nframes > (size_t)snap->traceback_limit || (nframes && !frames))
        return om_error(rt, OM_ERR_ARG,
                        "om_snapshot_add_trace: %zu frames for a snapshot "
                        "limited to %d",
                        nframes, snap->traceback_limit);
    om_frame copy[OM_TRACEMALLOC_MAX_FRAMES];
    for (size_t i = 0; i < nframes; i++) {
        copy[i].filename = intern_cstring(snap, frames[i].filename);
        copy[i].function = intern_cstring(snap, frames[i].function);
        copy[i].lineno = frames[i].lineno;
        if (!copy[i].filename || !copy[i].function)
            return om_error(rt, OM_ERR_NOMEM,
                            "om_snapshot_add_trace: out of memory");
    }
    const om_traceback *tb = om_snapshot_intern_traceback(
        snap, copy, nframes, total_nframe < nframes ? nframes : total_nframe);
    if (!tb)
        return om_error(rt, OM_ERR_NOMEM,
                        "om_snapshot_add_trace: out of memory");
    return om_snapshot_append(snap, domain, size, tb);
}
