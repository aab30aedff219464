/*
 * snapshot.h — the inside of om_snapshot and om_stats, shared by
 * snapshot.c (building, interning, filters), stats.c (statistics and
 * compare_to), format.c (text) and snapshot_io.c (dump and load).
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

#endif /* OBJMEM_SNAPSHOT_H */
