/*
 * report.c — `objmem-trace report` (report.h): a recording's heap at the
 * end or at its peak, grouped (group.c) and sorted by size, then count,
 * largest first, as tracemalloc's Snapshot.statistics does.
 */
#define _GNU_SOURCE
#include "report.h"

#include "print.h"

#include <inttypes.h>
#include <string.h>

/* A line group with neither a line nor a function: told apart, and
 * shown, by its offset in its module (group.c). */
static bool unnamed_site(const omt_sym *s) {
    return !s->line && s->function == omt_unknown;
}

void omt_report_json_key(FILE *out, const omt_grouping *g,
                         const omt_group *gr) {
    const omt_sym *s = gr->site;
    if (g->by == OMT_BY_TRACEBACK) {
        const omt_rtraceback *t = omt_group_traceback(g, gr);
        fprintf(out, ", \"total_nframe\": %u, \"frames\": [", t->total_nframe);
        for (unsigned k = 0; k < t->nframes; k++) {
            fputs(k ? ", " : "", out);
            omt_json_frame(out, omt_group_frame(g, gr, k));
        }
        fputc(']', out);
        return;
    }
    fputs(", \"file\": ", out);
    omt_json_string(out, s->file);
    if (g->by == OMT_BY_LINE) {
        fprintf(out, ", \"line\": %u", s->line);
        if (unnamed_site(s))
            fprintf(out, ", \"offset\": %" PRIu64, s->offset);
    }
    if (g->by != OMT_BY_FILE) {
        fputs(", \"function\": ", out);
        omt_json_string(out, s->function);
    }
    fputs(", \"module\": ", out);
    omt_json_string(out, s->module);
}

static void write_json(const omt_grouping *g, const omt_report_options *o,
                       const char *path, FILE *out) {
    const omt_file *f = g->file[0];
    uint64_t heap_bytes = g->total[0].bytes;
    fputs("{\n  \"objmem_trace_report\": 1,\n  ", out);
    omt_json_recording(out, f, path, ",\n  ");
    fprintf(out,
            ",\n  \"snapshot\": \"%s\",\n  \"group_by\": \"%s\","
            "\n  \"heap\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64 "},"
            "\n  \"end\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64 "},"
            "\n  \"peak\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64
            ", \"time_s\": %.3f},"
            "\n  \"allocations\": {\"count\": %" PRIu64 ", \"size\": %" PRIu64
            ", \"untraced\": %" PRIu64 "},"
            "\n  \"groups_total\": %zu,\n  \"groups\": [",
            o->peak ? "peak" : "end", omt_group_by_name(o->by, false), heap_bytes,
            g->total[0].count, f->current_bytes, f->current_blocks,
            f->peak_bytes, f->peak_blocks, omt_seconds(f->peak_t), f->allocs,
            f->alloc_bytes, f->lost, g->ngroups);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        const omt_value *v = &gr->v[0];
        fprintf(out,
                "%s\n    {\"size\": %" PRIu64 ", \"count\": %" PRIu64
                ", \"average\": %" PRIu64 ", \"percent\": %.2f",
                i ? "," : "", v->bytes, v->count, v->count ? v->bytes / v->count : 0,
                heap_bytes ? 100.0 * (double)v->bytes / (double)heap_bytes : 0.0);
        omt_report_json_key(out, g, gr);
        fputc('}', out);
    }
    fputs(shown ? "\n  ]\n}\n" : "]\n}\n", out);
}

void omt_report_text_key(FILE *out, const omt_grouping *g,
                         const omt_group *gr) {
    const omt_sym *s = gr->site;
    switch (g->by) {
    case OMT_BY_LINE:
    case OMT_BY_TRACEBACK:
        fprintf(out, "%s:%u", s->file, s->line);
        break;
    case OMT_BY_FUNCTION:
        fprintf(out, "%s (%s)", s->function, s->file);
        break;
    case OMT_BY_FILE:
        fputs(s->file, out);
        break;
    }
}

void omt_report_text_detail(FILE *out, const omt_grouping *g,
                            const omt_group *gr) {
    if (g->by == OMT_BY_LINE && unnamed_site(gr->site))
        fprintf(out, "    in %s at offset 0x%" PRIx64 "\n", gr->site->function,
                gr->site->offset);
    else if (g->by == OMT_BY_LINE)
        fprintf(out, "    in %s\n", gr->site->function);
    if (g->by != OMT_BY_TRACEBACK)
        return;
    const omt_rtraceback *t = omt_group_traceback(g, gr);
    for (unsigned k = 0; k < t->nframes; k++) {
        const omt_sym *fs = omt_group_frame(g, gr, k);
        fprintf(out, "    %s:%u in %s\n", fs->file, fs->line, fs->function);
    }
}

static void write_text(const omt_grouping *g, const omt_report_options *o,
                       const char *path, FILE *out) {
    const omt_file *f = g->file[0];
    char a[32], b[32], c[32];
    fprintf(out, "objmem-trace report of %s\n", path);
    fputs("command:", out);
    omt_print_command(out, f);
    fprintf(out, " (pid %" PRIu32, f->pid);
    if (f->origin == 1)
        fprintf(out, ", forked from %" PRIu32, f->ppid);
    fputs(")\nended: ", out);
    omt_print_ending(out, f);
    omt_print_sampling(out, f, "\n", "");
    const char *ap = omt_approx(f);
    omt_size_text(a, sizeof a, (double)f->current_bytes, false);
    omt_size_text(b, sizeof b, (double)f->peak_bytes, false);
    fprintf(out, "\ntraced heap: %s%s in %s%" PRIu64 " blocks at the end; peak %s%s "
                 "in %s%" PRIu64 " blocks at %.3f s\n",
            ap, a, ap, f->current_blocks, ap, b, ap, f->peak_blocks,
            omt_seconds(f->peak_t));
    omt_size_text(a, sizeof a, (double)f->alloc_bytes, false);
    fprintf(out, "allocations: %s%" PRIu64 " (%s%s)", ap, f->allocs, ap, a);
    if (f->lost)
        fprintf(out, "; %" PRIu64 " not traced (the tracer ran out of memory)",
                f->lost);
    fputc('\n', out);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    fprintf(out, "\nTop %zu %s %s\n", shown, omt_group_by_name(o->by, true),
            o->peak ? "at the peak" : "at the end");
    omt_value rest = g->total[0];
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        const omt_value *v = &gr->v[0];
        omt_size_text(a, sizeof a, (double)v->bytes, false);
        omt_size_text(c, sizeof c, (double)v->bytes / (double)(v->count ? v->count : 1),
                      false);
        fprintf(out, "#%zu: ", i + 1);
        omt_report_text_key(out, g, gr);
        fprintf(out, ": size=%s%s, count=%s%" PRIu64 ", average=%s%s\n", ap, a, ap,
                v->count, ap, c);
        omt_report_text_detail(out, g, gr);
        rest.bytes -= v->bytes;
        rest.count -= v->count;
    }
    if (shown < g->ngroups) {
        omt_size_text(a, sizeof a, (double)rest.bytes, false);
        fprintf(out, "%zu other: size=%s%s, count=%s%" PRIu64 "\n",
                g->ngroups - shown, ap, a, ap, rest.count);
    }
    omt_size_text(a, sizeof a, (double)g->total[0].bytes, false);
    fprintf(out, "Total: size=%s%s, count=%s%" PRIu64 "\n", ap, a, ap,
            g->total[0].count);
}

bool omt_report(const omt_file *f, const char *path,
                const omt_report_options *o, FILE *out) {
    omt_grouping g;
    bool ok = omt_grouping_of(&g, o->by, f, o->peak);
    if (ok && o->json)
        write_json(&g, o, path, out);
    else if (ok)
        write_text(&g, o, path, out);
    omt_grouping_free(&g);
    return ok;
}
