/*
 * group.c — tracebacks grouped by what their frames resolve to (group.h).
 * The recording gives, per traceback, the bytes and blocks live at the
 * end and at the peak; tracebacks whose keys resolve alike (the same
 * file and line, or function, or file, or every frame) share a group.
 * Keys are words: interned string pointers and line numbers, so that
 * comparing two keys compares no text.
 */
#define _GNU_SOURCE
#include "group.h"

#include "tracefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *omt_group_by_name(omt_group_by by, bool plural) {
    static const char *names[][2] = {{"line", "lines"},
                                     {"function", "functions"},
                                     {"file", "files"},
                                     {"traceback", "tracebacks"}};
    return names[by][plural];
}

static uint64_t hash_words(const uintptr_t *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* The key words of traceback t, into out (room for 3 per frame, and at
 * least 4). */
static size_t key_of(omt_group_by by, omt_resolver *r,
                     const omt_rtraceback *t, uintptr_t *out) {
    const omt_sym *s = omt_resolve(r, t->frames[0]);
    switch (by) {
    case OMT_BY_LINE:
        out[0] = (uintptr_t)s->file;
        out[1] = s->line;
        /* Without line information (line 0: a module built without
         * debug information), the function keeps apart what the line
         * would have, or without a name the return address's offset in
         * its module: else every site of the module is one group,
         * named after whichever function came first. */
        out[2] = s->line ? 0 : (uintptr_t)s->function;
        out[3] = !s->line && s->function == omt_unknown ? s->offset : 0;
        return 4;
    case OMT_BY_FUNCTION:
        out[0] = (uintptr_t)s->file;
        out[1] = (uintptr_t)s->function;
        return 2;
    case OMT_BY_FILE:
        out[0] = (uintptr_t)s->file;
        return 1;
    case OMT_BY_TRACEBACK:
        break;
    }
    size_t n = 0;
    for (unsigned i = 0; i < t->nframes; i++) {
        s = omt_resolve(r, t->frames[i]);
        out[n++] = (uintptr_t)s->file;
        out[n++] = s->line;
        out[n++] = (uintptr_t)s->function;
    }
    return n;
}

static bool table_grow(omt_grouping *g) {
    size_t cap = g->table_capacity ? g->table_capacity * 2 : 256;
    size_t *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < g->ngroups; i++) {
        const omt_group *gr = &g->groups[i];
        size_t j = hash_words(g->keys + gr->key, gr->nkey) & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = i + 1;
    }
    free(g->table);
    g->table = t;
    g->table_capacity = cap;
    return true;
}

static bool add(omt_grouping *g, unsigned slot, uint32_t tb,
                const omt_value *v) {
    uintptr_t key[3 * OMT_MAX_FRAMES];
    const omt_rtraceback *t = &g->file[slot]->tracebacks[tb - 1];
    size_t n = key_of(g->by, g->resolver[slot], t, key);
    if ((g->ngroups + 1) * 2 > g->table_capacity && !table_grow(g))
        return false;
    size_t mask = g->table_capacity - 1, j = hash_words(key, n) & mask;
    for (; g->table[j]; j = (j + 1) & mask) {
        omt_group *gr = &g->groups[g->table[j] - 1];
        if (gr->nkey == n && !memcmp(g->keys + gr->key, key, n * sizeof *key)) {
            gr->v[slot].bytes += v->bytes;
            gr->v[slot].count += v->count;
            return true;
        }
    }
    if (g->ngroups == g->groups_capacity) {
        size_t cap = g->groups_capacity ? g->groups_capacity * 2 : 256;
        omt_group *a = realloc(g->groups, cap * sizeof *a);
        if (!a)
            return false;
        g->groups = a;
        g->groups_capacity = cap;
    }
    if (g->nkeys + n > g->keys_capacity) {
        size_t cap = g->keys_capacity ? g->keys_capacity * 2 : 1024;
        while (cap < g->nkeys + n)
            cap *= 2;
        uintptr_t *k = realloc(g->keys, cap * sizeof *k);
        if (!k)
            return false;
        g->keys = k;
        g->keys_capacity = cap;
    }
    memcpy(g->keys + g->nkeys, key, n * sizeof *key);
    omt_group *gr = &g->groups[g->ngroups];
    memset(gr, 0, sizeof *gr);
    gr->v[slot] = *v;
    gr->slot = slot;
    gr->tb = tb;
    gr->site = omt_resolve(g->resolver[slot], t->frames[0]);
    gr->key = g->nkeys;
    gr->nkey = n;
    g->nkeys += n;
    g->table[j] = ++g->ngroups;
    return true;
}

bool omt_grouping_init(omt_grouping *g, omt_group_by by) {
    memset(g, 0, sizeof *g);
    g->by = by;
    g->strings = omt_strings_new();
    if (!g->strings)
        fprintf(stderr, "objmem-trace: out of memory\n");
    return g->strings != NULL;
}

bool omt_grouping_add(omt_grouping *g, unsigned slot, const omt_file *f,
                      bool peak) {
    g->file[slot] = f;
    g->resolver[slot] = omt_resolver_new(f, g->strings);
    bool ok = g->resolver[slot] != NULL;
    const omt_value *values = peak ? f->peak : f->current;
    for (uint32_t tb = 1; ok && tb <= f->ntracebacks; tb++) {
        if (!values[tb].bytes && !values[tb].count)
            continue;
        g->total[slot].bytes += values[tb].bytes;
        g->total[slot].count += values[tb].count;
        ok = add(g, slot, tb, &values[tb]);
    }
    if (!ok)
        fprintf(stderr, "objmem-trace: out of memory\n");
    return ok;
}

void omt_grouping_free(omt_grouping *g) {
    for (unsigned i = 0; i < OMT_GROUP_SLOTS; i++)
        omt_resolver_free(g->resolver[i]);
    omt_strings_free(g->strings);
    free(g->groups);
    free(g->keys);
    free(g->table);
    memset(g, 0, sizeof *g);
}

const omt_rtraceback *omt_group_traceback(const omt_grouping *g,
                                          const omt_group *gr) {
    return &g->file[gr->slot]->tracebacks[gr->tb - 1];
}

const omt_sym *omt_group_frame(const omt_grouping *g, const omt_group *gr,
                               unsigned k) {
    return omt_resolve(g->resolver[gr->slot],
                       omt_group_traceback(g, gr)->frames[k]);
}

/* ---- orders ----------------------------------------------------------------- */

/* qsort has no context argument: the grouping being sorted. */
static const omt_grouping *sorting;

static int compare_syms(const omt_sym *a, const omt_sym *b) {
    int c = strcmp(a->file, b->file);
    if (c)
        return c;
    if (a->line != b->line)
        return a->line < b->line ? -1 : 1;
    return strcmp(a->function, b->function);
}

/* Groups differ in their keys, so this tells any two apart by the text
 * of their frames, whichever file and numbering they came from. */
static int compare_sites(const omt_group *a, const omt_group *b) {
    int c = compare_syms(a->site, b->site);
    if (c || sorting->by != OMT_BY_TRACEBACK)
        return c;
    const omt_rtraceback *ta = omt_group_traceback(sorting, a);
    const omt_rtraceback *tb = omt_group_traceback(sorting, b);
    for (unsigned k = 1; k < ta->nframes && k < tb->nframes; k++) {
        c = compare_syms(omt_group_frame(sorting, a, k),
                         omt_group_frame(sorting, b, k));
        if (c)
            return c;
    }
    return (ta->nframes > tb->nframes) - (ta->nframes < tb->nframes);
}

static int larger_first(uint64_t a, uint64_t b) { return (a < b) - (a > b); }

static uint64_t magnitude(uint64_t now, uint64_t before) {
    return now >= before ? now - before : before - now;
}

static int by_size(const void *pa, const void *pb) {
    const omt_group *a = pa, *b = pb;
    int c = larger_first(a->v[0].bytes, b->v[0].bytes);
    if (!c)
        c = larger_first(a->v[0].count, b->v[0].count);
    return c ? c : compare_sites(a, b);
}

static int by_difference(const void *pa, const void *pb) {
    const omt_group *a = pa, *b = pb;
    int c = larger_first(magnitude(a->v[1].bytes, a->v[0].bytes),
                         magnitude(b->v[1].bytes, b->v[0].bytes));
    if (!c)
        c = larger_first(a->v[1].bytes, b->v[1].bytes);
    if (!c)
        c = larger_first(magnitude(a->v[1].count, a->v[0].count),
                         magnitude(b->v[1].count, b->v[0].count));
    if (!c)
        c = larger_first(a->v[1].count, b->v[1].count);
    return c ? c : compare_sites(a, b);
}

static void sort(omt_grouping *g, int (*order)(const void *, const void *)) {
    if (!g->ngroups) /* an empty heap has no array to sort */
        return;
    sorting = g;
    qsort(g->groups, g->ngroups, sizeof *g->groups, order);
    sorting = NULL;
}

void omt_grouping_sort_by_size(omt_grouping *g) { sort(g, by_size); }

void omt_grouping_sort_by_difference(omt_grouping *g) {
    sort(g, by_difference);
}

bool omt_grouping_of(omt_grouping *g, omt_group_by by, const omt_file *f,
                     bool peak) {
    if (!omt_grouping_init(g, by) || !omt_grouping_add(g, 0, f, peak))
        return false;
    omt_grouping_sort_by_size(g);
    return true;
}
