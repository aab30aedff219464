/*
 * stats.c — Snapshot.statistics and Snapshot.compare_to: traces grouped by
 * line, file or traceback, totalled and sorted as tracemalloc does
 * (docs/design.md, "Tracer").
 *
 * Two passes keep the work proportional to what differs: traces are first
 * totalled per interned traceback (a pointer lookup each), then each
 * distinct traceback adds its totals to its group(s), found by content so
 * that groups of two snapshots meet in compare_to.
 *
 * As in tracemalloc, a group is known by filenames and line numbers only.
 * What else its om_statistic shows comes from the first trace seen (in the
 * new snapshot first, for compare_to): for OM_STAT_TRACEBACK the traceback
 * itself (functions, total_nframe), for OM_STAT_LINENO the function of the
 * first frame seen at that line.  Such a group's traceback is one frame
 * that the om_stats owns, with total_nframe 1; strings stay the
 * snapshot's.
 */
#include "snapshot.h"

#include <stdlib.h>
#include <string.h>

struct om_stats {
    om_runtime *rt;
    size_t len;
    om_statistic *items;
};

/* ---- totals per traceback -------------------------------------------------------- */

typedef struct tb_total {
    const om_traceback *tb;
    size_t size, count;
} tb_total;

/* The snapshot's traces totalled per traceback, in the order each
 * traceback first appears; *out is the raw-allocated array (NULL for no
 * traces) and *n its length. */
static om_status total_by_traceback(om_runtime *rt, const om_snapshot *snap,
                                    tb_total **out, size_t *n) {
    *out = NULL;
    *n = 0;
    if (snap->ntraces == 0)
        return OM_OK;
    /* Every trace's traceback is interned: no more distinct ones. */
    size_t most = snap->tracebacks.count;
    tb_total *totals = NULL;
    if (most <= SIZE_MAX / sizeof *totals && om_alloc_attempt(rt))
        totals = om_raw_malloc(rt, most * sizeof *totals);
    om_ptrmap seen;
    if (!totals || om_ptrmap_init(&seen, rt, most) != OM_OK) {
        om_raw_free(rt, totals);
        return OM_ERR_NOMEM;
    }
    for (size_t i = 0; i < snap->ntraces; i++) {
        const om_trace *trace = &snap->traces[i];
        om_ptrmap_slot *slot = om_ptrmap_slot_of(&seen, trace->traceback);
        if (!slot->value) {
            totals[*n] = (tb_total){trace->traceback, 0, 0};
            slot->value = ++*n;
        }
        tb_total *t = &totals[slot->value - 1];
        t->size += trace->size;
        t->count++;
    }
    om_ptrmap_free(&seen);
    *out = totals;
    return OM_OK;
}

/* ---- groups ------------------------------------------------------------------------- */

/* A group's key is a traceback (OM_STAT_TRACEBACK) or one frame; its
 * totals are kept for the new snapshot and, in compare_to, the old. */
typedef struct group {
    const om_traceback *tb; /* OM_STAT_TRACEBACK */
    om_frame frame;         /* the others: filename, line (0 for
                               OM_STAT_FILENAME) and the first function */
    uint64_t hash;
    size_t size, count;
    size_t old_size, old_count;
} group;

/* Groups in order of creation; `slots` holds index + 1 by hash (0:
 * empty).  Sized for the most groups the snapshots can make, so adding
 * never grows anything. */
typedef struct grouping {
    om_runtime *rt;
    om_stat_key key;
    bool cumulative;
    group *groups;
    size_t ngroups;
    size_t *slots;
    size_t mask;
} grouping;

/* The most groups a snapshot can make: one per traceback, or cumulative,
 * one per frame (plus the unknown frame of empty tracebacks). */
static size_t most_groups(const om_snapshot *snap, bool cumulative) {
    return cumulative ? snap->frames.count + 1 : snap->tracebacks.count;
}

static om_status grouping_init(grouping *g, om_runtime *rt, om_stat_key key,
                               bool cumulative, size_t most) {
    size_t capacity = 16;
    while (capacity / 2 < most) {
        if (capacity > SIZE_MAX / 4 / sizeof(group))
            return OM_ERR_NOMEM;
        capacity *= 2;
    }
    *g = (grouping){rt, key, cumulative, NULL, 0, NULL, capacity - 1};
    /* Groups, then slots: one block, both aligned for size_t. */
    if (!om_alloc_attempt(rt))
        return OM_ERR_NOMEM;
    g->groups = om_raw_calloc(rt, 1, most * sizeof(group) +
                                         capacity * sizeof(size_t));
    if (!g->groups)
        return OM_ERR_NOMEM;
    g->slots = (size_t *)(g->groups + most);
    return OM_OK;
}

/* The frames a group is known by. */
static const om_frame *group_frames(const grouping *g, const group *gr,
                                    size_t *n) {
    if (g->key == OM_STAT_TRACEBACK)
        return om_traceback_frames(gr->tb, n);
    *n = 1;
    return &gr->frame;
}

/* Equal content, as str: byte equality, since decoding is one-to-one. */
static bool same_text(const char *a, const char *b) {
    return a == b || strcmp(a, b) == 0;
}

static bool same_frames(const om_frame *a, size_t na, const om_frame *b,
                        size_t nb) {
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (a[i].lineno != b[i].lineno ||
            !same_text(a[i].filename, b[i].filename))
            return false;
    return true;
}

static uint64_t hash_frames(const om_frame *f, size_t n) {
    uint64_t h = n;
    for (size_t i = 0; i < n; i++)
        h = om_hash_word(h ^ om_hash_bytes(f[i].filename,
                                           strlen(f[i].filename)) ^
                         f[i].lineno);
    return h;
}

/* Add size and count to the group known by frames[0..n) (tb: the
 * traceback it comes from, for OM_STAT_TRACEBACK), making the group if
 * it is new. */
static void add_to_group(grouping *g, const om_frame *frames, size_t n,
                         const om_traceback *tb, size_t size, size_t count,
                         bool old) {
    uint64_t hash = hash_frames(frames, n);
    size_t i = hash & g->mask;
    group *gr = NULL;
    for (; g->slots[i]; i = (i + 1) & g->mask) {
        group *cand = &g->groups[g->slots[i] - 1];
        size_t nc;
        const om_frame *fc = group_frames(g, cand, &nc);
        if (cand->hash == hash && same_frames(fc, nc, frames, n)) {
            gr = cand;
            break;
        }
    }
    if (!gr) {
        gr = &g->groups[g->ngroups];
        gr->tb = tb;
        gr->frame = frames[0];
        gr->hash = hash;
        g->slots[i] = ++g->ngroups;
    }
    if (old) {
        gr->old_size += size;
        gr->old_count += count;
    } else {
        gr->size += size;
        gr->count += count;
    }
}

/* Add one traceback's totals to its group, or cumulative, to the group of
 * each of its frames (a frame there twice counts twice, as in
 * tracemalloc). */
static void add_traceback(grouping *g, const tb_total *t, bool old) {
    size_t n;
    const om_frame *frames = om_traceback_frames(t->tb, &n);
    if (g->key == OM_STAT_TRACEBACK) {
        add_to_group(g, frames, n, t->tb, t->size, t->count, old);
        return;
    }
    if (!g->cumulative)
        n = 1; /* the most recent frame */
    for (size_t i = 0; i < n; i++) {
        om_frame key = frames[i];
        if (g->key == OM_STAT_FILENAME) {
            key.lineno = 0;
            key.function = OM_UNKNOWN_NAME;
        }
        add_to_group(g, &key, 1, NULL, t->size, t->count, old);
    }
}

static om_status add_snapshot(grouping *g, const om_snapshot *snap,
                              bool old) {
    tb_total *totals;
    size_t n;
    if (total_by_traceback(g->rt, snap, &totals, &n) != OM_OK)
        return OM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        add_traceback(g, &totals[i], old);
    om_raw_free(g->rt, totals);
    return OM_OK;
}

/* ---- order -------------------------------------------------------------------------- */

/* Traceback order: frames oldest first (Traceback reverses the C order),
 * each by (filename, lineno); a traceback that is a prefix of the other
 * sorts first. */
static int compare_tracebacks(const om_traceback *a, const om_traceback *b) {
    size_t na, nb;
    const om_frame *fa = om_traceback_frames(a, &na);
    const om_frame *fb = om_traceback_frames(b, &nb);
    for (size_t i = 1; i <= na && i <= nb; i++) {
        const om_frame *x = &fa[na - i], *y = &fb[nb - i];
        int c = om_text_compare(x->filename, y->filename);
        if (c)
            return c;
        if (x->lineno != y->lineno)
            return x->lineno < y->lineno ? -1 : 1;
    }
    return (na > nb) - (na < nb);
}

static int compare_sizes(size_t a, size_t b) { return (a > b) - (a < b); }

static size_t magnitude(long long v) {
    return v < 0 ? (size_t)0 - (size_t)v : (size_t)v;
}

/* qsort orders: largest first by Statistic._sort_key ... */
static int by_statistic(const void *pa, const void *pb) {
    const om_statistic *a = pa, *b = pb;
    int c = compare_sizes(b->size, a->size);
    if (!c)
        c = compare_sizes(b->count, a->count);
    return c ? c : compare_tracebacks(b->traceback, a->traceback);
}

/* ... and by StatisticDiff._sort_key.  Groups differ in their tracebacks,
 * so neither order has ties and qsort's instability cannot show. */
static int by_difference(const void *pa, const void *pb) {
    const om_statistic *a = pa, *b = pb;
    int c = compare_sizes(magnitude(b->size_diff), magnitude(a->size_diff));
    if (!c)
        c = compare_sizes(b->size, a->size);
    if (!c)
        c = compare_sizes(magnitude(b->count_diff), magnitude(a->count_diff));
    if (!c)
        c = compare_sizes(b->count, a->count);
    return c ? c : compare_tracebacks(b->traceback, a->traceback);
}

/* ---- the statistics ------------------------------------------------------------------ */

static long long difference(size_t now, size_t before) {
    return now >= before ? (long long)(now - before)
                         : -(long long)(before - now);
}

/* The groups as a sorted om_stats, in one block with the one-frame
 * tracebacks it owns; NULL when memory is short. */
static om_stats *make_stats(const grouping *g, bool diff) {
    size_t n = g->ngroups;
    bool own = g->key != OM_STAT_TRACEBACK;
    size_t each = sizeof(om_statistic) +
                  (own ? sizeof(om_traceback) + sizeof(om_frame) : 0);
    if (n > (SIZE_MAX - sizeof(om_stats)) / each || !om_alloc_attempt(g->rt))
        return NULL;
    om_stats *stats = om_raw_malloc(g->rt, sizeof(om_stats) + n * each);
    if (!stats)
        return NULL;
    om_statistic *items = (om_statistic *)(stats + 1);
    om_traceback *tbs = (om_traceback *)(items + n);
    om_frame *frames = (om_frame *)(tbs + n);
    for (size_t i = 0; i < n; i++) {
        const group *gr = &g->groups[i];
        const om_traceback *tb = gr->tb;
        if (own) {
            frames[i] = gr->frame;
            tbs[i] = (om_traceback){1, 1, &frames[i]};
            tb = &tbs[i];
        }
        items[i] = (om_statistic){tb, gr->size, gr->count, 0, 0};
        if (diff) {
            items[i].size_diff = difference(gr->size, gr->old_size);
            items[i].count_diff = difference(gr->count, gr->old_count);
        }
    }
    qsort(items, n, sizeof *items, diff ? by_difference : by_statistic);
    *stats = (om_stats){g->rt, n, items};
    return stats;
}

static bool valid_key(om_runtime *rt, const char *func, om_stat_key key,
                      int cumulative) {
    if (key != OM_STAT_LINENO && key != OM_STAT_FILENAME &&
        key != OM_STAT_TRACEBACK) {
        om_error(rt, OM_ERR_ARG, "%s: unknown key type %d", func, (int)key);
        return false;
    }
    if (cumulative && key == OM_STAT_TRACEBACK) {
        om_error(rt, OM_ERR_ARG,
                 "%s: cumulative mode cannot be used with key type "
                 "'traceback'",
                 func);
        return false;
    }
    return true;
}

/* Statistics of snap, with differences against old when old is set. */
static om_stats *statistics(const om_snapshot *snap, const om_snapshot *old,
                            om_stat_key key, int cumulative,
                            const char *func) {
    om_runtime *rt = snap->rt;
    if (!valid_key(rt, func, key, cumulative))
        return NULL;
    bool cum = cumulative != 0;
    size_t most = most_groups(snap, cum);
    if (old)
        most += most_groups(old, cum); /* no overflow: both are in memory */
    grouping g;
    om_stats *stats = NULL;
    if (grouping_init(&g, rt, key, cum, most) == OM_OK) {
        if (add_snapshot(&g, snap, false) == OM_OK &&
            (!old || add_snapshot(&g, old, true) == OM_OK))
            stats = make_stats(&g, old != NULL);
        om_raw_free(rt, g.groups);
    }
    if (!stats)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM, "%s: out of memory", func);
    return stats;
}

om_stats *om_snapshot_statistics(const om_snapshot *snap, om_stat_key key,
                                 int cumulative) {
    if (!snap)
        return NULL;
    return statistics(snap, NULL, key, cumulative, "om_snapshot_statistics");
}

om_stats *om_snapshot_compare_to(const om_snapshot *snap,
                                 const om_snapshot *old, om_stat_key key,
                                 int cumulative) {
    if (!snap)
        return NULL;
    if (!old)
        return OM_FAIL_NULL(snap->rt, OM_ERR_ARG,
                            "om_snapshot_compare_to: old is NULL");
    return statistics(snap, old, key, cumulative, "om_snapshot_compare_to");
}

size_t om_stats_len(const om_stats *stats) { return stats ? stats->len : 0; }

const om_statistic *om_stats_get(const om_stats *stats, size_t i) {
    return stats && i < stats->len ? &stats->items[i] : NULL;
}

void om_stats_free(om_stats *stats) {
    if (stats)
        om_raw_free(stats->rt, stats);
}
