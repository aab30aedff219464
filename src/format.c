/*
 * format.c — tracemalloc's text: _format_size, str() of Statistic and
 * StatisticDiff, and Traceback.format printed with source lines
 * (docs/design.md, "Tracer").
 */
#include "snapshot.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- sizes ------------------------------------------------------------------------ */

/* tracemalloc._format_size's choice for size: the unit, size scaled to it
 * in *size, and the decimals (1 below 100 in a unit above bytes; 0 below
 * 10 KiB-worth of the unit, and always in TiB). */
static const char *size_unit(double *size, int *decimals) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    size_t last = sizeof units / sizeof units[0] - 1;
    /* %f writes a NaN's sign bit ("-nan"); Python never does. */
    if (isnan(*size))
        *size = fabs(*size);
    for (size_t i = 0;; i++) {
        if (i > 0 && fabs(*size) < 100) {
            *decimals = 1;
            return units[i];
        }
        if (fabs(*size) < 10 * 1024 || i == last) {
            *decimals = 0;
            return units[i];
        }
        *size /= 1024;
    }
}

/* ---- writing into a buffer -------------------------------------------------------- */

/* snprintf into buf[0..n) in pieces: what does not fit is counted, not
 * written, and the text stays NUL-terminated. */
typedef struct sink {
    char *buf;
    size_t n;
    size_t len; /* the length the whole text needs */
    bool failed;
} sink;

OM_PRINTF(2, 3) static void put(sink *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *at = t->len < t->n ? t->buf + t->len : NULL;
    size_t room = t->len < t->n ? t->n - t->len : 0;
    int r = vsnprintf(at, room, fmt, ap);
    va_end(ap);
    if (r < 0)
        t->failed = true;
    else
        t->len += (size_t)r;
}

static void put_size(sink *t, double size, bool sign) {
    int decimals;
    const char *unit = size_unit(&size, &decimals);
    put(t, sign ? "%+.*f %s" : "%.*f %s", decimals, size, unit);
}

/* A sink writing into buf[0..n), which may be NULL when n is 0. */
static sink sink_on(char *buf, size_t n) {
    if (n > 0)
        buf[0] = '\0';
    return (sink){buf, n, 0, false};
}

/* The length the text needed, as snprintf returns it. */
static int sink_result(const sink *t) {
    return t->failed || t->len > INT_MAX ? -1 : (int)t->len;
}

/* ---- the public functions ------------------------------------------------------------ */

int om_format_size(char *buf, size_t n, double size, int sign) {
    sink t = sink_on(buf, n);
    put_size(&t, size, sign != 0);
    return sink_result(&t);
}

int om_statistic_format(char *buf, size_t n, const om_statistic *st,
                        int diff) {
    sink t = sink_on(buf, n);
    if (!st || !st->traceback)
        return -1;
    /* str(Traceback) is str of its oldest frame: the last of frames[]. */
    size_t nframes;
    const om_frame *frames = om_traceback_frames(st->traceback, &nframes);
    const om_frame *oldest = &frames[nframes - 1];
    put(&t, "%s:%u: size=", oldest->filename, oldest->lineno);
    put_size(&t, (double)st->size, false);
    if (diff) {
        put(&t, " (");
        put_size(&t, (double)st->size_diff, true);
        put(&t, "), count=%zu (%+lld)", st->count, st->count_diff);
    } else {
        put(&t, ", count=%zu", st->count);
    }
    if (st->count) {
        put(&t, ", average=");
        put_size(&t, (double)st->size / (double)st->count, false);
    }
    return sink_result(&t);
}

/* ---- tracebacks ------------------------------------------------------------------------ */

/* Whitespace as str.strip() sees it, in ASCII: Python also strips
 * \x1c..\x1f. */
static bool is_space(int c) {
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* Move past the end of the current line (\n, \r\n or \r: Python's
 * universal newlines); false if the file ends first. */
static bool skip_line(FILE *in) {
    for (int c; (c = getc(in)) != EOF;) {
        if (c == '\n')
            return true;
        if (c == '\r') {
            c = getc(in);
            if (c != '\n' && c != EOF)
                ungetc(c, in);
            return true;
        }
    }
    return false;
}

/* The offsets of the current line's first non-space byte and just past
 * its last one: false for a blank line. */
static bool find_stripped(FILE *in, long *first, long *end) {
    long at = ftell(in);
    *first = -1;
    for (int c; at >= 0 && (c = getc(in)) != EOF && c != '\n' && c != '\r';
         at++) {
        if (!is_space(c)) {
            if (*first < 0)
                *first = at;
            *end = at + 1;
        }
    }
    return *first >= 0;
}

/* Line lineno of the file, stripped and indented 4, as linecache.getline
 * gives it to Traceback.format; nothing when the file or the line cannot
 * be read or the line is blank.  The file is read line by line and the
 * line copied from it, never held whole.  False only when writing to out
 * failed. */
static bool print_source_line(FILE *out, const char *filename,
                              unsigned lineno) {
    FILE *in = lineno ? fopen(filename, "rb") : NULL;
    if (!in)
        return true;
    bool found = true;
    for (unsigned i = 1; i < lineno && found; i++)
        found = skip_line(in);
    long first = 0, end = 0; /* set by find_stripped when it succeeds */
    found = found && find_stripped(in, &first, &end) &&
            fseek(in, first, SEEK_SET) == 0;
    bool ok = true;
    if (found) {
        ok = fputs("    ", out) >= 0;
        for (long i = first; ok && i < end; i++) {
            int c = getc(in);
            if (c == EOF)
                break; /* the file shrank meanwhile */
            ok = putc(c, out) != EOF;
        }
        ok = ok && putc('\n', out) != EOF;
    }
    fclose(in);
    return ok;
}

static bool print_frame(FILE *out, const om_frame *f) {
    bool ok = fprintf(out, "  File \"%s\", line %u", f->filename,
                      f->lineno) >= 0;
    if (ok && strcmp(f->function, OM_UNKNOWN_NAME) != 0)
        ok = fprintf(out, ", in %s", f->function) >= 0;
    return ok && putc('\n', out) != EOF &&
           print_source_line(out, f->filename, f->lineno);
}

om_status om_traceback_print(const om_traceback *tb, FILE *f, int limit,
                             int most_recent_first) {
    if (!tb || !f)
        return OM_ERR_ARG;
    size_t n;
    const om_frame *frames = om_traceback_frames(tb, &n);
    /* frames[0..n) is most recent first; keep [lo, hi). */
    size_t lo = 0, hi = n;
    size_t keep = limit < 0 ? (size_t)-(limit + 1) + 1 : (size_t)limit;
    if (limit > 0 && keep < n)
        hi = keep;
    else if (limit < 0 && keep < n)
        lo = n - keep;
    bool ok = true;
    for (size_t i = 0; ok && i < hi - lo; i++)
        ok = print_frame(f, &frames[most_recent_first ? lo + i : hi - 1 - i]);
    return ok ? OM_OK : OM_ERR_IO;
}
