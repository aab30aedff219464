/*
 * leaks.c — `objmem-trace leaks` (leaks.h).  Every block still allocated
 * when the recording ends is a leak here: the recorder never scans
 * memory, so it cannot tell, as LeakSanitizer does, a block nothing
 * points to (a direct leak) from one reachable through a leaked block
 * (indirect) or through a global (not reported by LSan).  The report
 * keeps LSan's wording and layout so that what reads LSan output reads
 * this, and says in a NOTE line what the figures mean.
 */
#define _GNU_SOURCE
#include "leaks.h"

#include "group.h"
#include "print.h"
#include "report.h"

#include <inttypes.h>
#include <string.h>

/* "    #k 0xADDR in FUNC FILE:LINE", LSan's frame; without a line
 * "in FUNC (MODULE+0xOFFSET)", without a function "(MODULE+0xOFFSET)". */
static void text_frame(FILE *out, unsigned k, uint64_t ret, const omt_sym *s) {
    fprintf(out, "    #%u 0x%" PRIx64, k, ret);
    if (s->function != omt_unknown)
        fprintf(out, " in %s", s->function);
    if (s->line)
        fprintf(out, " %s:%u\n", s->file, s->line);
    else if (s->module != omt_unknown)
        fprintf(out, " (%s+0x%" PRIx64 ")\n", s->module, s->offset);
    else
        fputs(" (<unknown module>)\n", out);
}

static void write_text(const omt_grouping *g, const omt_leaks_options *o,
                       const char *path, FILE *out) {
    const omt_file *f = g->file[0];
    if (!g->ngroups) {
        fprintf(out, "objmem-trace: no leaks in %s: no traced block is left at the %s\n",
                path, f->ending == OMT_ENDING_NONE ? "last flush" : "end");
        return;
    }
    fprintf(out, "=================================================================\n"
                 "==%" PRIu32 "==ERROR: objmem-trace: detected memory leaks\n",
            f->pid);
    fprintf(out, "==%" PRIu32 "==NOTE: every block still allocated ", f->pid);
    switch (f->ending) {
    case OMT_ENDING_EXIT:
        fputs("at exit", out);
        break;
    case OMT_ENDING_EXEC:
        fputs("when the program called exec", out);
        break;
    case OMT_ENDING_NONE:
        fputs("at the last flush of an incomplete trace", out);
        break;
    }
    fputs(", reachable or not (memory is not scanned); frame #0 is the "
          "allocating call\n", out);
    char note[32];
    snprintf(note, sizeof note, "==%" PRIu32 "==NOTE: ", f->pid);
    omt_print_sampling(out, f, note, "; each sampled block stands for ~N\n");
    const char *ap = omt_approx(f);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    omt_value rest = g->total[0];
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        const omt_rtraceback *t = omt_group_traceback(g, gr);
        fprintf(out, "\nDirect leak of %s%" PRIu64 " byte(s) in %s%" PRIu64
                     " object(s) allocated from:\n",
                ap, gr->v[0].bytes, ap, gr->v[0].count);
        for (unsigned k = 0; k < t->nframes; k++)
            text_frame(out, k, t->frames[k], omt_group_frame(g, gr, k));
        if (t->total_nframe > t->nframes)
            fprintf(out, "    (%u more frame(s) not recorded: see run --frames)\n",
                    t->total_nframe - t->nframes);
        rest.bytes -= gr->v[0].bytes;
        rest.count -= gr->v[0].count;
    }
    if (shown < g->ngroups)
        fprintf(out, "\n%zu more leak(s) of %s%" PRIu64 " byte(s) in %s%" PRIu64
                     " object(s) not shown (--top %zu)\n",
                g->ngroups - shown, ap, rest.bytes, ap, rest.count, o->top);
    fprintf(out, "\nSUMMARY: objmem-trace: %s%" PRIu64 " byte(s) leaked in %s%" PRIu64
                 " allocation(s).\n",
            ap, g->total[0].bytes, ap, g->total[0].count);
}

static void write_json(const omt_grouping *g, const omt_leaks_options *o,
                       const char *path, FILE *out) {
    fputs("{\n  \"objmem_trace_leaks\": 1,\n  ", out);
    omt_json_recording(out, g->file[0], path, ",\n  ");
    fprintf(out, ",\n  \"leaked\": {\"size\": %" PRIu64 ", \"count\": %" PRIu64
                 "},\n  \"leaks_total\": %zu,\n  \"leaks\": [",
            g->total[0].bytes, g->total[0].count, g->ngroups);
    size_t shown = o->top && o->top < g->ngroups ? o->top : g->ngroups;
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g->groups[i];
        fprintf(out, "%s\n    {\"size\": %" PRIu64 ", \"count\": %" PRIu64,
                i ? "," : "", gr->v[0].bytes, gr->v[0].count);
        omt_report_json_key(out, g, gr);
        fputc('}', out);
    }
    fputs(shown ? "\n  ]\n}\n" : "]\n}\n", out);
}

bool omt_leaks(const omt_file *f, const char *path,
               const omt_leaks_options *o, FILE *out, bool *leaked) {
    omt_grouping g;
    bool ok = omt_grouping_of(&g, OMT_BY_TRACEBACK, f, false);
    *leaked = ok && g.ngroups > 0;
    if (ok && o->json)
        write_json(&g, o, path, out);
    else if (ok)
        write_text(&g, o, path, out);
    omt_grouping_free(&g);
    return ok;
}
