/*
 * report.c — `objmem-trace report` (report.h).  The recording gives, per
 * traceback, the bytes and blocks live at the end and at the peak; here
 * tracebacks are resolved to frames, grouped by a key (site, function,
 * file or whole stack: tracebacks whose frames resolve alike share a
 * group), and sorted by size, then count, largest first, as
 * tracemalloc's Snapshot.statistics does.
 */
#define _GNU_SOURCE
#include "report.h"

#include "resolve.h"

#include <objmem.h>

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct group {
    uint64_t bytes, count;
    uint32_t tb;        /* a traceback of the group, for its frames */
    const omt_sym *site; /* its first frame */
    size_t key, nkey;   /* its key: words [key, key + nkey) of `keys` */
} group;

typedef struct grouping {
    const omt_file *f;
    omt_resolver *resolver;
    omt_group_by by;
    group *groups;
    size_t ngroups, groups_capacity;
    uintptr_t *keys;
    size_t nkeys, keys_capacity;
    size_t *table;      /* group index + 1; 0 empty; a power of two */
    size_t table_capacity;
} grouping;

static uint64_t hash_words(const uintptr_t *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= w[i];
        h *= 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

/* The key words of traceback tb's group, into out (room for 3 per frame). */
static size_t key_of(grouping *g, const omt_rtraceback *t, uintptr_t *out) {
    const omt_sym *s = omt_resolve(g->resolver, t->frames[0]);
    switch (g->by) {
    case OMT_BY_LINE:
        out[0] = (uintptr_t)s->file;
        out[1] = s->line;
        return 2;
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
        s = omt_resolve(g->resolver, t->frames[i]);
        out[n++] = (uintptr_t)s->file;
        out[n++] = s->line;
        out[n++] = (uintptr_t)s->function;
    }
    return n;
}

static bool table_grow(grouping *g) {
    size_t cap = g->table_capacity ? g->table_capacity * 2 : 256;
    size_t *t = calloc(cap, sizeof *t);
    if (!t)
        return false;
    for (size_t i = 0; i < g->ngroups; i++) {
        const group *gr = &g->groups[i];
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

static bool add(grouping *g, uint32_t tb, const omt_value *v) {
    uintptr_t key[3 * 100];
    size_t n = key_of(g, &g->f->tracebacks[tb - 1], key);
    if ((g->ngroups + 1) * 2 > g->table_capacity && !table_grow(g))
        return false;
    size_t mask = g->table_capacity - 1, j = hash_words(key, n) & mask;
    for (; g->table[j]; j = (j + 1) & mask) {
        group *gr = &g->groups[g->table[j] - 1];
        if (gr->nkey == n && !memcmp(g->keys + gr->key, key, n * sizeof *key)) {
            gr->bytes += v->bytes;
            gr->count += v->count;
            return true;
        }
    }
    if (g->ngroups == g->groups_capacity) {
        size_t cap = g->groups_capacity ? g->groups_capacity * 2 : 256;
        group *a = realloc(g->groups, cap * sizeof *a);
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
    g->groups[g->ngroups] = (group){v->bytes, v->count, tb,
                                    omt_resolve(g->resolver, g->f->tracebacks[tb - 1].frames[0]),
                                    g->nkeys, n};
    g->nkeys += n;
    g->table[j] = ++g->ngroups;
    return true;
}

/* Size, then count, largest first; then by the first frame's file and
 * line, so that the order does not depend on traceback numbering. */
static int compare_groups(const void *pa, const void *pb) {
    const group *a = pa, *b = pb;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    const omt_sym *sa = a->site, *sb = b->site;
    int c = strcmp(sa->file, sb->file);
    if (c)
        return c;
    if (sa->line != sb->line)
        return sa->line < sb->line ? -1 : 1;
    c = strcmp(sa->function, sb->function);
    return c ? c : (a->tb < b->tb ? -1 : a->tb > b->tb);
}

/* ---- output ---------------------------------------------------------------- */

static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out); /* UTF-8 passes through; other bytes too */
    }
    fputc('"', out);
}

static const char *by_name(omt_group_by by) {
    static const char *names[] = {"line", "function", "file", "traceback"};
    return names[by];
}

static const char *ending_name(omt_ending e) {
    static const char *names[] = {"incomplete", "exit", "exec"};
    return names[e];
}

static double seconds(uint64_t ns) { return (double)ns / 1e9; }

static void json_frame(FILE *out, const omt_sym *s) {
    fputs("{\"file\": ", out);
    json_string(out, s->file);
    fprintf(out, ", \"line\": %u, \"function\": ", s->line);
    json_string(out, s->function);
    fputs(", \"module\": ", out);
    json_string(out, s->module);
    fprintf(out, ", \"offset\": %" PRIu64 "}", s->offset);
}

static void json_command(FILE *out, const omt_file *f) {
    fputc('[', out);
    size_t i = 0;
    bool first = true;
    while (i < f->cmdline_len) {
        size_t n = strnlen(f->cmdline + i, f->cmdline_len - i);
        char *arg = strndup(f->cmdline + i, n);
        if (!first)
            fputs(", ", out);
        json_string(out, arg ? arg : "");
        free(arg);
        first = false;
        i += n + 1;
    }
    fputc(']', out);
}

static void write_json(const grouping *g, const omt_report_options *o,
                       const char *path, uint64_t heap_bytes,
                       uint64_t heap_count, FILE *out) {
    const omt_file *f = g->f;
    fputs("{\n  \"objmem_trace_report\": 1,\n  \"file\": ", out);
    json_string(out, path);
    fprintf(out, ",\n  \"pid\": %" PRIu32 ",\n  \"ppid\": %" PRIu32
                 ",\n  \"origin\": \"%s\",\n  \"command\": ",
            f->pid, f->ppid, f->origin == 1 ? "fork" : "start");
    json_command(out, f);
    fputs(",\n  \"executable\": ", out);
    json_string(out, f->exe ? f->exe : "");
    fprintf(out, ",\n  \"ending\": \"%s\"", ending_name(f->ending));
    if (f->ending == OMT_ENDING_EXEC) {
        fputs(",\n  \"exec\": ", out);
        json_string(out, f->exec_path ? f->exec_path : "");
    }
    fprintf(out,
            ",\n  \"duration_s\": %.3f,\n  \"traceback_limit\": %" PRIu32
            ",\n  \"snapshot\": \"%s\",\n  \"group_by\": \"%s\","
            "\n  \"heap\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64 "},"
            "\n  \"end\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64 "},"
            "\n  \"peak\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64
            ", \"time_s\": %.3f},"
            "\n  \"allocations\": {\"count\": %" PRIu64 ", \"size\": %" PRIu64
            ", \"untraced\": %" PRIu64 "},"
            "\n  \"groups_total\": %zu,\n  \"groups\": [",
            seconds(f->t), f->nframe, o->peak ? "peak" : "end", by_name(o->by),
            heap_bytes, heap_count, f->current_bytes, f->current_blocks,
            f->peak_bytes, f->peak_blocks, seconds(f->peak_t), f->allocs,
            f->alloc_bytes, f->lost, g->ngroups);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    for (size_t i = 0; i < shown; i++) {
        const group *gr = &g->groups[i];
        const omt_rtraceback *t = &f->tracebacks[gr->tb - 1];
        const omt_sym *s = omt_resolve(g->resolver, t->frames[0]);
        fprintf(out,
                "%s\n    {\"size\": %" PRIu64 ", \"count\": %" PRIu64
                ", \"average\": %" PRIu64 ", \"percent\": %.2f",
                i ? "," : "", gr->bytes, gr->count,
                gr->count ? gr->bytes / gr->count : 0,
                heap_bytes ? 100.0 * (double)gr->bytes / (double)heap_bytes : 0.0);
        if (o->by != OMT_BY_TRACEBACK) {
            fputs(", \"file\": ", out);
            json_string(out, s->file);
            if (o->by == OMT_BY_LINE)
                fprintf(out, ", \"line\": %u", s->line);
            if (o->by != OMT_BY_FILE) {
                fputs(", \"function\": ", out);
                json_string(out, s->function);
            }
            fputs(", \"module\": ", out);
            json_string(out, s->module);
        } else {
            fprintf(out, ", \"total_nframe\": %u, \"frames\": [", t->total_nframe);
            for (unsigned k = 0; k < t->nframes; k++) {
                fputs(k ? ", " : "", out);
                json_frame(out, omt_resolve(g->resolver, t->frames[k]));
            }
            fputc(']', out);
        }
        fputc('}', out);
    }
    fputs(shown ? "\n  ]\n}\n" : "]\n}\n", out);
}

static void size_text(char *buf, size_t n, double size) {
    om_format_size(buf, n, size, 0);
}

static void write_text(const grouping *g, const omt_report_options *o,
                       const char *path, uint64_t heap_bytes,
                       uint64_t heap_count, FILE *out) {
    const omt_file *f = g->f;
    char a[32], b[32], c[32];
    fprintf(out, "objmem-trace report of %s\n", path);
    fputs("command:", out);
    for (size_t i = 0; i < f->cmdline_len;) {
        size_t n = strnlen(f->cmdline + i, f->cmdline_len - i);
        fprintf(out, " %.*s", (int)n, f->cmdline + i);
        i += n + 1;
    }
    fprintf(out, " (pid %" PRIu32, f->pid);
    if (f->origin == 1)
        fprintf(out, ", forked from %" PRIu32, f->ppid);
    fputs(")\n", out);
    switch (f->ending) {
    case OMT_ENDING_EXIT:
        fprintf(out, "ended: exit after %.3f s\n", seconds(f->t));
        break;
    case OMT_ENDING_EXEC:
        fprintf(out, "ended: exec of %s after %.3f s\n",
                f->exec_path ? f->exec_path : "?", seconds(f->t));
        break;
    case OMT_ENDING_NONE:
        fprintf(out, "ended: incomplete (killed, crashed or cut short); "
                     "as of the last flush, at %.3f s\n", seconds(f->t));
        break;
    }
    size_text(a, sizeof a, (double)f->current_bytes);
    size_text(b, sizeof b, (double)f->peak_bytes);
    fprintf(out, "traced heap: %s in %" PRIu64 " blocks at the end; peak %s "
                 "in %" PRIu64 " blocks at %.3f s\n",
            a, f->current_blocks, b, f->peak_blocks, seconds(f->peak_t));
    size_text(a, sizeof a, (double)f->alloc_bytes);
    fprintf(out, "allocations: %" PRIu64 " (%s)", f->allocs, a);
    if (f->lost)
        fprintf(out, "; %" PRIu64 " not traced (the tracer ran out of memory)",
                f->lost);
    fputc('\n', out);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    static const char *plural[] = {"lines", "functions", "files", "tracebacks"};
    fprintf(out, "\nTop %zu %s %s\n", shown, plural[o->by],
            o->peak ? "at the peak" : "at the end");
    uint64_t rest_bytes = heap_bytes, rest_count = heap_count;
    for (size_t i = 0; i < shown; i++) {
        const group *gr = &g->groups[i];
        const omt_rtraceback *t = &f->tracebacks[gr->tb - 1];
        const omt_sym *s = omt_resolve(g->resolver, t->frames[0]);
        size_text(a, sizeof a, (double)gr->bytes);
        size_text(c, sizeof c, (double)gr->bytes / (double)(gr->count ? gr->count : 1));
        fprintf(out, "#%zu: ", i + 1);
        switch (o->by) {
        case OMT_BY_LINE:
            fprintf(out, "%s:%u", s->file, s->line);
            break;
        case OMT_BY_FUNCTION:
            fprintf(out, "%s (%s)", s->function, s->file);
            break;
        case OMT_BY_FILE:
            fputs(s->file, out);
            break;
        case OMT_BY_TRACEBACK:
            fprintf(out, "%s:%u", s->file, s->line);
            break;
        }
        fprintf(out, ": size=%s, count=%" PRIu64 ", average=%s\n", a,
                gr->count, c);
        if (o->by == OMT_BY_LINE)
            fprintf(out, "    in %s\n", s->function);
        if (o->by == OMT_BY_TRACEBACK)
            for (unsigned k = 0; k < t->nframes; k++) {
                const omt_sym *fs = omt_resolve(g->resolver, t->frames[k]);
                fprintf(out, "    %s:%u in %s\n", fs->file, fs->line,
                        fs->function);
            }
        rest_bytes -= gr->bytes;
        rest_count -= gr->count;
    }
    if (shown < g->ngroups) {
        size_text(a, sizeof a, (double)rest_bytes);
        fprintf(out, "%zu other: size=%s, count=%" PRIu64 "\n",
                g->ngroups - shown, a, rest_count);
    }
    size_text(a, sizeof a, (double)heap_bytes);
    fprintf(out, "Total: size=%s, count=%" PRIu64 "\n", a, heap_count);
}

bool omt_report(const omt_file *f, const char *path,
                const omt_report_options *o, FILE *out) {
    grouping g = {0};
    g.f = f;
    g.by = o->by;
    g.resolver = omt_resolver_new(f);
    bool ok = g.resolver != NULL;
    const omt_value *values = o->peak ? f->peak : f->current;
    uint64_t heap_bytes = 0, heap_count = 0;
    for (uint32_t tb = 1; ok && tb <= f->ntracebacks; tb++) {
        if (!values[tb].bytes && !values[tb].count)
            continue;
        heap_bytes += values[tb].bytes;
        heap_count += values[tb].count;
        ok = add(&g, tb, &values[tb]);
    }
    if (!ok) {
        fprintf(stderr, "objmem-trace: out of memory\n");
    } else {
        if (g.ngroups) /* an empty heap has no array to sort */
            qsort(g.groups, g.ngroups, sizeof *g.groups, compare_groups);
        if (o->json)
            write_json(&g, o, path, heap_bytes, heap_count, out);
        else
            write_text(&g, o, path, heap_bytes, heap_count, out);
        ok = fflush(out) == 0 && !ferror(out);
        if (!ok)
            fprintf(stderr, "objmem-trace: cannot write the report\n");
    }
    omt_resolver_free(g.resolver);
    free(g.groups);
    free(g.keys);
    free(g.table);
    return ok;
}
