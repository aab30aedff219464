/*
 * annotate.c — `objmem-trace annotate` (annotate.h).  Each traceback
 * counts once, on the line of its most recent frame in the function, so
 * that a line's figures include what the functions it calls allocate
 * (memory_profiler's increment) and recursion is not counted twice.  The
 * function's lines run from its declaration to the last line of its code
 * (resolve.c, from DWARF), or, without that, over the lines the trace
 * names.
 */
#define _GNU_SOURCE
#include "annotate.h"

#include "print.h"
#include "resolve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct line_figures {
    omt_value v;
    char *text; /* the source line without its newline, or NULL */
} line_figures;

/* The figures of lines [first, first + n) of o->function in f. */
typedef struct annotation {
    const char *file;  /* the function's source file (interned) */
    unsigned first, n;
    line_figures *lines;
    omt_value total;
    bool source_read;
    int source_errno;
} annotation;

/* The frame of traceback t in the function, most recent first, whose
 * file is `file` (any file when NULL); NULL when none is. */
static const omt_sym *frame_in(omt_resolver *r, const omt_rtraceback *t,
                               const char *function, const char *file,
                               uint64_t *ret) {
    for (unsigned k = 0; k < t->nframes; k++) {
        const omt_sym *s = omt_resolve(r, t->frames[k]);
        if (!strcmp(s->function, function) && (!file || s->file == file)) {
            *ret = t->frames[k];
            return s;
        }
    }
    return NULL;
}

static bool grow_to(annotation *a, unsigned line) {
    if (!a->n) {
        a->lines = calloc(1, sizeof *a->lines);
        if (!a->lines)
            return false;
        a->first = line, a->n = 1;
        return true;
    }
    unsigned lo = line < a->first ? line : a->first;
    unsigned hi = line >= a->first + a->n ? line + 1 : a->first + a->n;
    if (lo == a->first && hi == a->first + a->n)
        return true;
    line_figures *t = calloc(hi - lo, sizeof *t);
    if (!t)
        return false;
    memcpy(t + (a->first - lo), a->lines, a->n * sizeof *t);
    free(a->lines);
    a->lines = t, a->first = lo, a->n = hi - lo;
    return true;
}

static bool out_of_memory(void) {
    fputs("objmem-trace: out of memory\n", stderr);
    return false;
}

static void read_source(annotation *a) {
    FILE *src = fopen(a->file, "r");
    if (!src) {
        a->source_errno = errno;
        return;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    for (unsigned line = 1; (len = getline(&buf, &cap, src)) >= 0 &&
                            line < a->first + a->n;
         line++) {
        if (line < a->first)
            continue;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = 0;
        a->lines[line - a->first].text = strdup(buf);
    }
    free(buf);
    a->source_errno = ferror(src) ? EIO : 0;
    a->source_read = !a->source_errno;
    fclose(src);
}

static bool annotate(const omt_file *f, const omt_annotate_options *o,
                     omt_resolver *r, annotation *a) {
    uint64_t first_ret = 0;
    size_t elsewhere = 0;
    const omt_value *live = o->peak ? f->peak : f->current;
    for (size_t id = 1; id <= f->ntracebacks; id++) {
        const omt_rtraceback *t = &f->tracebacks[id - 1];
        uint64_t ret;
        const omt_sym *s = frame_in(r, t, o->function, a->file, &ret);
        if (!s) {
            elsewhere += a->file && frame_in(r, t, o->function, NULL, &ret);
            continue;
        }
        if (!a->file)
            a->file = s->file, first_ret = ret;
        if (!grow_to(a, s->line))
            return out_of_memory();
        a->lines[s->line - a->first].v.bytes += live[id].bytes;
        a->lines[s->line - a->first].v.count += live[id].count;
        a->total.bytes += live[id].bytes;
        a->total.count += live[id].count;
    }
    if (!a->file) {
        fprintf(stderr, "objmem-trace: no stack in the trace passes through a "
                        "function named '%s'\n", o->function);
        return false;
    }
    if (elsewhere)
        fprintf(stderr, "objmem-trace: note: %zu stacks pass through a '%s' in "
                        "another file than %s; they are not counted\n",
                elsewhere, o->function, a->file);
    /* The declaration's range only when it is in the file the frames name
     * (code inlined from a header names the header). */
    const char *decl_file;
    unsigned lo, hi;
    if (omt_resolve_function_lines(r, first_ret, &decl_file, &lo, &hi) &&
        decl_file == a->file && lo > 0 && hi >= lo &&
        (!grow_to(a, lo) || !grow_to(a, hi)))
        return out_of_memory();
    if (a->file != omt_unknown && a->first > 0)
        read_source(a);
    else
        a->source_errno = ENOENT;
    if (!a->source_read)
        fprintf(stderr, "objmem-trace: the source %s cannot be read (%s); the "
                        "figures follow without it\n",
                a->file, strerror(a->source_errno));
    return true;
}

static void write_text(const annotation *a, const omt_annotate_options *o,
                       const char *path, FILE *out) {
    char size[32];
    omt_size_text(size, sizeof size, (double)a->total.bytes, false);
    fprintf(out, "objmem-trace annotate of %s\nfunction %s in %s, lines %u-%u\n"
                 "bytes live %s: %s in %" PRIu64 " blocks\n\n",
            path, o->function, a->file, a->first, a->first + a->n - 1,
            o->peak ? "at the peak" : "at the end", size, a->total.count);
    fprintf(out, "%6s %12s %12s %8s  %s\n", "Line #", "Total", "Increment",
            "Count", "Line Contents");
    fputs("==============================================================\n",
          out);
    uint64_t running = 0;
    for (unsigned i = 0; i < a->n; i++) {
        const line_figures *l = &a->lines[i];
        running += l->v.bytes;
        fprintf(out, "%6u %12" PRIu64 " ", a->first + i, running);
        if (l->v.count)
            fprintf(out, "%12" PRIu64 " %8" PRIu64, l->v.bytes, l->v.count);
        else
            fprintf(out, "%12s %8s", "", "");
        fprintf(out, "  %s\n", l->text ? l->text : "");
    }
}

static void write_json(const omt_file *f, const annotation *a,
                       const omt_annotate_options *o, const char *path,
                       FILE *out) {
    fputs("{\n  \"objmem_trace_annotate\": 1,\n  ", out);
    omt_json_recording(out, f, path, ",\n  ");
    fprintf(out, ",\n  \"snapshot\": \"%s\",\n  \"function\": ",
            o->peak ? "peak" : "end");
    omt_json_string(out, o->function);
    fputs(",\n  \"source\": ", out);
    omt_json_string(out, a->file);
    fprintf(out, ",\n  \"source_read\": %s,\n  \"first_line\": %u,"
                 "\n  \"last_line\": %u,\n  \"size\": %" PRIu64
                 ",\n  \"count\": %" PRIu64 ",\n  \"lines\": [",
            a->source_read ? "true" : "false", a->first, a->first + a->n - 1,
            a->total.bytes, a->total.count);
    uint64_t running = 0;
    for (unsigned i = 0; i < a->n; i++) {
        const line_figures *l = &a->lines[i];
        running += l->v.bytes;
        fprintf(out, "%s\n    {\"line\": %u, \"size\": %" PRIu64
                     ", \"count\": %" PRIu64 ", \"total\": %" PRIu64,
                i ? "," : "", a->first + i, l->v.bytes, l->v.count, running);
        if (l->text) {
            fputs(", \"text\": ", out);
            omt_json_string(out, l->text);
        }
        fputc('}', out);
    }
    fputs(a->n ? "\n  ]\n}\n" : "]\n}\n", out);
}

bool omt_annotate(const omt_file *f, const char *path,
                  const omt_annotate_options *o, FILE *out) {
    omt_resolver *r = omt_resolver_new(f, NULL);
    if (!r)
        return out_of_memory();
    annotation a = {0};
    bool ok = annotate(f, o, r, &a);
    if (ok && o->json)
        write_json(f, &a, o, path, out);
    else if (ok)
        write_text(&a, o, path, out);
    for (unsigned i = 0; i < a.n; i++)
        free(a.lines[i].text);
    free(a.lines);
    omt_resolver_free(r);
    return ok;
}
