/*
 * snapshot.h — the inside of om_snapshot and om_stats, shared by
 * snapshot.c (building, interning), filter.c (filters), stats.c
 * (statistics and compare_to), format.c (text) and snapshot_io.c (dump
 * and load).
 *
 * Invariants of a snapshot:
 *   - Strings, frames and tracebacks are interned: two equal strings are
 *     one pointer, two equal frames (same filename pointer, lineno and
 *     function pointer) one om_frame, two equal tracebacks (same nframes,
 *     total_nframe and frame pointers) one om_traceback.  So grouping
 *     and comparing within one snapshot can use pointer equality; across
 *     two snapshots (compare_to) strings must be compared by content.
 *   - Every trace's traceback pointer is one of the snapshot's interned
 *     tracebacks, with nframes <= traceback_limit.
 *   - Everything interned lives in the snapshot's bump allocator and is freed with
 *     it; nothing is freed before.
 */
#ifndef OBJMEM_SNAPSHOT_H
#define OBJMEM_SNAPSHOT_H

#include "internal.h"

/* Bump allocation in chunks from the runtime's raw allocator (each
 * attempt counted by failure injection); freed all at once. */
typedef struct om_bump_chunk om_bump_chunk;
typedef struct om_bump {
    om_runtime *rt;
    om_bump_chunk *chunks; /* newest first */
    char *next;             /* free space in the newest chunk */
    size_t left;
    size_t bytes;           /* chunk bytes taken from the raw allocator */
} om_bump;

void om_bump_init(om_bump *a, om_runtime *rt);
/* n bytes aligned to 16, or NULL (nothing changed). */
void *om_bump_alloc(om_bump *a, size_t n);
void om_bump_free_all(om_bump *a);

/* An open-addressing set of pointers with a caller's hash and equality,
 * used to intern strings, frames and tracebacks. */
typedef struct om_intern {
    void **slots;     /* capacity entries, NULL = empty */
    size_t capacity;  /* a power of two, or 0 */
    size_t count;
} om_intern;

struct om_snapshot {
    om_runtime *rt;
    int traceback_limit;
    om_bump bump;
    om_trace *traces;
    size_t ntraces, traces_capacity;
    om_intern strings, frames, tracebacks;
};

/* The interned copy of the len bytes at s (NUL added), or NULL. */
const char *om_snapshot_intern_string(om_snapshot *snap, const char *s,
                                      size_t len);
/* The interned traceback of these frames, whose strings must already be
 * interned in snap; or NULL. */
const om_traceback *om_snapshot_intern_traceback(om_snapshot *snap,
                                                 const om_frame *frames,
                                                 size_t nframes,
                                                 size_t total_nframe);
/* Append a trace whose traceback is interned in snap. */
om_status om_snapshot_append(om_snapshot *snap, unsigned domain, size_t size,
                             const om_traceback *tb);

/* The unknown frame's strings, as CPython spells them. */
#define OM_UNKNOWN_NAME "<unknown>"

/* The frames a traceback stands for: its own, or for an empty one the
 * unknown frame ("<unknown>", 0), which is what CPython records when it
 * knows no frame.  Filters, statistics and text all see tracebacks so. */
static inline const om_frame *om_traceback_frames(const om_traceback *tb,
                                                  size_t *nframes) {
    static const om_frame unknown = {OM_UNKNOWN_NAME, 0, OM_UNKNOWN_NAME};
    *nframes = tb->nframes ? tb->nframes : 1;
    return tb->nframes ? tb->frames : &unknown;
}

/* ---- text as Python sees it (text.c) --------------------------------------
 * A C string stands for the str os.fsdecode would make of it: UTF-8, each
 * byte of an invalid sequence decoded alone to U+DC80..U+DCFF
 * (surrogateescape).  Patterns match, and filenames sort, by code point. */

/* The code point at *s, moving *s past it; *s must not be at the NUL. */
uint32_t om_text_next(const char **s);
/* <0, 0, >0 as the str of a sorts before, equal to, after that of b. */
int om_text_compare(const char *a, const char *b);

/* ---- pointer maps (ptrmap.c) ------------------------------------------------
 * Open addressing from a non-NULL pointer to a number (an index + 1, say),
 * sized once for the most keys it will hold: statistics total the traces
 * of each interned traceback, filters find a traceback's copy. */
typedef struct om_ptrmap_slot {
    const void *key; /* NULL: empty */
    size_t value;
} om_ptrmap_slot;

typedef struct om_ptrmap {
    om_runtime *rt;
    om_ptrmap_slot *slots;
    size_t mask;
    size_t room; /* keys that may still be added */
} om_ptrmap;

/* A map for up to n keys; OM_ERR_NOMEM (nothing to free) if memory is
 * short. */
om_status om_ptrmap_init(om_ptrmap *m, om_runtime *rt, size_t n);
/* The slot of key, added with value 0 if key was not there.  At most n
 * keys may be added. */
om_ptrmap_slot *om_ptrmap_slot_of(om_ptrmap *m, const void *key);
void om_ptrmap_free(om_ptrmap *m);

#endif /* OBJMEM_SNAPSHOT_H */
