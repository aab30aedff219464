/*
 * diff.c — `objmem-trace diff` (diff.h).  Both recordings are grouped by
 * the same key into one grouping, the old in slot 0 and the new in slot
 * 1, with one string table, so that a site resolved from either file is
 * the same key; a group missing from one side counts zero there, as in
 * tracemalloc's compare_to.
 */
#define _GNU_SOURCE
#include "diff.h"

#include "print.h"

#include <inttypes.h>

/* now - before as a signed figure (sizes fit in 63 bits in practice; the
 * format does not bound them, so saturate rather than wrap). */
static int64_t difference(uint64_t now, uint64_t before) {
    uint64_t d = now >= before ? now - before : before - now;
    if (d > INT64_MAX)
        d = INT64_MAX;
    return now >= before ? (int64_t)d : -(int64_t)d;
}

static void json_side(FILE *out, const char *name, const omt_grouping *g,
                      unsigned slot, const char *path) {
    fprintf(out, ",\n  \"%s\": {", name);
    omt_json_recording(out, g->file[slot], path, ", ");
    fprintf(out, ", \"heap\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64 "}}",
            g->total[slot].bytes, g->total[slot].count);
}

static void write_json(const omt_grouping *g, const omt_report_options *o,
                       const char *old_path, const char *new_path, FILE *out) {
    fputs("{\n  \"objmem_trace_diff\": 1", out);
    json_side(out, "old", g, 0, old_path);
    json_side(out, "new", g, 1, new_path);
    fprintf(out,
            ",\n  \"snapshot\": \"%s\",\n  \"group_by\": \"%s\",\n  \"size\": %" PRIu64
            ", \"size_diff\": %" PRId64 ", \"count\": %" PRIu64 ", \"count_diff\": %" PRId64
            ",\n  \"groups_total\": %zu,\n  \"groups\": [",
            o->peak ? "peak" : "end", omt_group_by_name(o->by, false), g->total[1].bytes,
            difference(g->total[1].bytes, g->total[0].bytes), g->total[1].count,
            difference(g->total[1].count, g->total[0].count), g->ngroups);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        const omt_value *a = &gr->v[0], *b = &gr->v[1];
        fprintf(out,
                "%s\n    {\"size\": %" PRIu64 ", \"size_diff\": %" PRId64
                ", \"count\": %" PRIu64 ", \"count_diff\": %" PRId64
                ", \"average\": %" PRIu64,
                i ? "," : "", b->bytes, difference(b->bytes, a->bytes), b->count,
                difference(b->count, a->count), b->count ? b->bytes / b->count : 0);
        omt_report_json_key(out, g, gr);
        fputc('}', out);
    }
    fputs(shown ? "\n  ]\n}\n" : "]\n}\n", out);
}

/* "size=X (+D), count=N (+D)", and ", average=A" when count, as
 * tracemalloc's StatisticDiff reads. */
static void text_figures(FILE *out, const omt_value *a, const omt_value *b,
                         bool average) {
    char s[32], d[32];
    omt_size_text(s, sizeof s, (double)b->bytes, false);
    omt_size_text(d, sizeof d, (double)difference(b->bytes, a->bytes), true);
    fprintf(out, "size=%s (%s), count=%" PRIu64 " (%+" PRId64 ")", s, d, b->count,
            difference(b->count, a->count));
    if (average && b->count) {
        omt_size_text(s, sizeof s, (double)b->bytes / (double)b->count, false);
        fprintf(out, ", average=%s", s);
    }
    fputc('\n', out);
}

static void text_side(FILE *out, const char *name, const omt_grouping *g,
                      unsigned slot, const char *path) {
    const omt_file *f = g->file[slot];
    char s[32];
    omt_size_text(s, sizeof s, (double)g->total[slot].bytes, false);
    fprintf(out, "%s: %s:", name, path);
    omt_print_command(out, f);
    fprintf(out, " (pid %" PRIu32 "); ", f->pid);
    omt_print_ending(out, f);
    const char *ap = omt_approx(f);
    fprintf(out, "; %s%s in %s%" PRIu64 " blocks\n", ap, s, ap, g->total[slot].count);
    omt_print_sampling(out, f, "  ", "\n");
}

static void write_text(const omt_grouping *g, const omt_report_options *o,
                       const char *old_path, const char *new_path, FILE *out) {
    const char *when = o->peak ? "at the peak" : "at the end";
    fprintf(out, "objmem-trace diff of the heaps %s, by %s\n", when,
            omt_group_by_name(o->by, false));
    text_side(out, "old", g, 0, old_path);
    text_side(out, "new", g, 1, new_path);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    fprintf(out, "\nTop %zu differences in %s\n", shown, omt_group_by_name(o->by, true));
    omt_value rest[2] = {g->total[0], g->total[1]};
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        fprintf(out, "#%zu: ", i + 1);
        omt_report_text_key(out, g, gr);
        fputs(": ", out);
        text_figures(out, &gr->v[0], &gr->v[1], true);
        omt_report_text_detail(out, g, gr);
        for (int k = 0; k < 2; k++) {
            rest[k].bytes -= gr->v[k].bytes;
            rest[k].count -= gr->v[k].count;
        }
    }
    if (shown < g->ngroups) {
        fprintf(out, "%zu other: ", g->ngroups - shown);
        text_figures(out, &rest[0], &rest[1], false);
    }
    fputs("Total: ", out);
    text_figures(out, &g->total[0], &g->total[1], false);
}

bool omt_diff(const omt_file *old, const char *old_path, const omt_file *new,
              const char *new_path, const omt_report_options *o, FILE *out) {
    omt_grouping g;
    bool ok = omt_grouping_init(&g, o->by) && omt_grouping_add(&g, 0, old, o->peak) &&
              omt_grouping_add(&g, 1, new, o->peak);
    if (ok) {
        omt_grouping_sort_by_difference(&g);
        if (o->json)
            write_json(&g, o, old_path, new_path, out);
        else
            write_text(&g, o, old_path, new_path, out);
    }
    omt_grouping_free(&g);
    return ok;
}
