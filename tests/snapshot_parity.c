/*
 * snapshot_parity.c — the C half of the CPython parity test
 * (snapshot_parity.py): reads snapshots and queries from a text file,
 * answers each query through the public API and prints the answers in
 * the form the Python half prints tracemalloc's.
 *
 * Input, one record a line, fields separated by tabs:
 *   S <index> <traceback_limit>       start snapshot <index> (0 or 1)
 *   T <domain> <size> <total_nframe> then <file> <line> <function> per
 *                                     frame, most recent first
 *   Q stats <snap> <key> <cumulative>
 *   Q compare <new> <old> <key> <cumulative>
 *   Q filter <snap> then <kind> <inclusive> <pattern> <lineno>
 *            <all_frames> <domain> per filter (kind F or D)
 *   Q sizes <value>...                om_format_size, plain and signed
 *   Q print <snap> <limit> <most_recent_first>
 * Keys are 0 (lineno), 1 (filename), 2 (traceback).  Each query's answer
 * follows a line "== " and the query's line number.
 */
#include "objmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS (4 + 3 * OM_TRACEMALLOC_MAX_FRAMES)

static om_runtime *rt;
static om_snapshot *snaps[2];

static void die(const char *what, long line) {
    fprintf(stderr, "snapshot_parity: line %ld: %s (%s)\n", line, what,
            om_last_error(rt));
    exit(2);
}

static char *line_buf; /* read_line's */
static size_t line_cap;

/* A whole line of any length, without its '\n'; NULL at the end. */
static char *read_line(FILE *in) {
    size_t len = 0;
    for (;;) {
        if (line_cap - len < 2) {
            line_cap = line_cap ? line_cap * 2 : 4096;
            line_buf = realloc(line_buf, line_cap);
            if (!line_buf)
                die("out of memory", 0);
        }
        if (!fgets(line_buf + len, (int)(line_cap - len), in))
            return len ? line_buf : NULL;
        len += strlen(line_buf + len);
        if (len && line_buf[len - 1] == '\n') {
            line_buf[len - 1] = '\0';
            return line_buf;
        }
    }
}

/* Split line at tabs into fields; returns their number. */
static size_t split(char *line, char **fields) {
    size_t n = 0;
    for (char *p = line; n < MAX_FIELDS;) {
        fields[n++] = p;
        p = strchr(p, '\t');
        if (!p)
            break;
        *p++ = '\0';
    }
    return n;
}

/* Print the statistics, one formatted line each, and free them. */
static void print_stats(om_stats *stats, int diff, long line) {
    if (!stats)
        die("statistics failed", line);
    for (size_t i = 0; i < om_stats_len(stats); i++) {
        char buf[1024];
        om_statistic_format(buf, sizeof buf, om_stats_get(stats, i), diff);
        puts(buf);
    }
    om_stats_free(stats);
}

/* Each trace: domain, size, total_nframe, then its frames most recent
 * first ("<unknown>:0" standing for none, as CPython records it). */
static void print_traces(const om_snapshot *snap) {
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (size_t i = 0; i < n; i++) {
        const om_traceback *tb = traces[i].traceback;
        printf("%u %zu %zu", traces[i].domain, traces[i].size,
               tb->total_nframe);
        if (!tb->nframes)
            printf(" <unknown>:0");
        for (size_t k = 0; k < tb->nframes; k++)
            printf(" %s:%u", tb->frames[k].filename, tb->frames[k].lineno);
        putchar('\n');
    }
}

static void query_filter(char **f, size_t n, long line) {
    size_t nfilters = (n - 3) / 6;
    om_filter filters[16];
    if (nfilters > 16)
        die("too many filters", line);
    for (size_t i = 0; i < nfilters; i++) {
        char **g = f + 3 + 6 * i;
        om_filter *flt = &filters[i];
        om_filter_init(flt, atoi(g[1]), g[0][0] == 'F' ? g[2] : NULL);
        flt->lineno = strtol(g[3], NULL, 10);
        flt->all_frames = atoi(g[4]);
        flt->domain = strtoll(g[5], NULL, 10);
    }
    om_snapshot *out =
        om_snapshot_filter_traces(snaps[atoi(f[2])], filters, nfilters);
    if (!out)
        die("filter failed", line);
    print_traces(out);
    print_stats(om_snapshot_statistics(out, OM_STAT_LINENO, 0), 0, line);
    om_snapshot_free(out);
}

static void query_print(char **f, long line) {
    om_stats *stats =
        om_snapshot_statistics(snaps[atoi(f[2])], OM_STAT_TRACEBACK, 0);
    if (!stats)
        die("statistics failed", line);
    for (size_t i = 0; i < om_stats_len(stats) && i < 10; i++)
        if (om_traceback_print(om_stats_get(stats, i)->traceback, stdout,
                               atoi(f[3]), atoi(f[4])) != OM_OK)
            die("print failed", line);
    om_stats_free(stats);
}

static void query(char **f, size_t n, long line) {
    printf("== %ld\n", line);
    if (!strcmp(f[1], "stats")) {
        print_stats(om_snapshot_statistics(snaps[atoi(f[2])],
                                           (om_stat_key)atoi(f[3]),
                                           atoi(f[4])),
                    0, line);
    } else if (!strcmp(f[1], "compare")) {
        print_stats(om_snapshot_compare_to(snaps[atoi(f[2])],
                                           snaps[atoi(f[3])],
                                           (om_stat_key)atoi(f[4]),
                                           atoi(f[5])),
                    1, line);
    } else if (!strcmp(f[1], "filter")) {
        query_filter(f, n, line);
    } else if (!strcmp(f[1], "sizes")) {
        for (size_t i = 2; i < n; i++) {
            char plain[512], sign[512];
            double v = strtod(f[i], NULL);
            om_format_size(plain, sizeof plain, v, 0);
            om_format_size(sign, sizeof sign, v, 1);
            printf("%s|%s\n", plain, sign);
        }
    } else if (!strcmp(f[1], "print")) {
        query_print(f, line);
    } else {
        die("unknown query", line);
    }
}

static void add_trace(char **f, size_t n, om_snapshot *snap, long line) {
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    size_t nframes = (n - 4) / 3;
    for (size_t i = 0; i < nframes; i++) {
        frames[i].filename = f[4 + 3 * i];
        frames[i].lineno = (unsigned)strtoul(f[5 + 3 * i], NULL, 10);
        frames[i].function = f[6 + 3 * i];
    }
    if (!snap ||
        om_snapshot_add_trace(snap, (unsigned)strtoul(f[1], NULL, 10),
                              strtoull(f[2], NULL, 10), frames, nframes,
                              strtoull(f[3], NULL, 10)) != OM_OK)
        die("add_trace failed", line);
}

int main(int argc, char **argv) {
    FILE *in = argc == 2 ? fopen(argv[1], "rb") : NULL;
    if (!in) {
        fprintf(stderr, "usage: snapshot_parity INPUT\n");
        return 2;
    }
    rt = om_runtime_new(NULL);
    om_snapshot *current = NULL;
    char *fields[MAX_FIELDS];
    long line = 0;
    for (char *text; (text = read_line(in));) {
        size_t n = split(text, fields);
        line++;
        if (fields[0][0] == 'S') {
            int i = atoi(fields[1]);
            if (i < 0 || i > 1 || snaps[i])
                die("bad snapshot index", line);
            current = snaps[i] = om_snapshot_new(rt, atoi(fields[2]));
        } else if (fields[0][0] == 'T') {
            add_trace(fields, n, current, line);
        } else if (fields[0][0] == 'Q') {
            query(fields, n, line);
        }
    }
    fclose(in);
    free(line_buf);
    om_snapshot_free(snaps[0]);
    om_snapshot_free(snaps[1]);
    return om_runtime_free(rt) == 0 ? 0 : 1;
}
