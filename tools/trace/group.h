/*
 * group.h — a recording's tracebacks grouped by what their frames resolve
 * to (the allocating line, function or file, or the whole stack), the
 * shared step of `report`, `leaks` and `diff` (docs/objmem-trace.1).
 *
 * A grouping holds up to two snapshots, each in a slot of its own: one
 * for report and leaks, the old (0) and the new (1) for diff.  Both
 * slots' frames are interned in one string table, so that a key resolved
 * from one file equals the same key resolved from another.
 */
#ifndef OBJMEM_TRACE_GROUP_H
#define OBJMEM_TRACE_GROUP_H

#include "reader.h"
#include "resolve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum omt_group_by {
    OMT_BY_LINE,      /* the allocation site's file and line */
    OMT_BY_FUNCTION,  /* the allocating function (and its file) */
    OMT_BY_FILE,      /* the allocating function's file */
    OMT_BY_TRACEBACK  /* the whole stack */
} omt_group_by;

/* "line", "function", "file", "traceback", or their plurals. */
const char *omt_group_by_name(omt_group_by by, bool plural);

#define OMT_GROUP_SLOTS 2

typedef struct omt_group {
    omt_value v[OMT_GROUP_SLOTS]; /* bytes and blocks in each snapshot */
    unsigned slot;       /* the slot of tb, the group's example traceback */
    uint32_t tb;
    const omt_sym *site; /* tb's first frame */
    size_t key, nkey;    /* the key: words [key, key + nkey) of `keys` */
} omt_group;

typedef struct omt_grouping {
    omt_group_by by;
    omt_strings *strings;
    const omt_file *file[OMT_GROUP_SLOTS];
    omt_resolver *resolver[OMT_GROUP_SLOTS];
    omt_value total[OMT_GROUP_SLOTS]; /* the sums over all groups */
    omt_group *groups;
    size_t ngroups, groups_capacity;
    uintptr_t *keys;
    size_t nkeys, keys_capacity;
    size_t *table; /* group index + 1; 0 empty; a power of two */
    size_t table_capacity;
} omt_grouping;

/* An empty grouping by `by`; false when memory is short. */
bool omt_grouping_init(omt_grouping *g, omt_group_by by);
/* Add into `slot` every traceback of f with bytes or blocks live at the
 * end (or at the peak); f must outlive g.  False when memory is short
 * (with a message on stderr). */
bool omt_grouping_add(omt_grouping *g, unsigned slot, const omt_file *f,
                      bool peak);
void omt_grouping_free(omt_grouping *g);
/* Init, add f alone into slot 0, sort by size: the grouping report and
 * leaks show.  False when memory is short (with a message on stderr);
 * free g either way. */
bool omt_grouping_of(omt_grouping *g, omt_group_by by, const omt_file *f,
                     bool peak);

/* The example traceback of a group, and its frame k (k < nframes). */
const omt_rtraceback *omt_group_traceback(const omt_grouping *g,
                                          const omt_group *gr);
const omt_sym *omt_group_frame(const omt_grouping *g, const omt_group *gr,
                               unsigned k);

/* Sort the groups largest first by slot 0's size, then count, then the
 * site (so that the order does not depend on traceback numbering):
 * tracemalloc's Snapshot.statistics order. */
void omt_grouping_sort_by_size(omt_grouping *g);
/* Sort them as tracemalloc's compare_to does, slot 0 the old snapshot
 * and slot 1 the new: largest first by |size difference|, new size,
 * |count difference|, new count, then the site. */
void omt_grouping_sort_by_difference(omt_grouping *g);

#endif /* OBJMEM_TRACE_GROUP_H */
