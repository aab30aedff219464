/*
 * test_snapshot.c — snapshots built by hand (om_snapshot_new and
 * om_snapshot_add_trace) against results worked out by hand and checked
 * with CPython's tracemalloc: statistics by line, file and traceback,
 * cumulative mode with repeated frames, sort order and its tie breaks,
 * compare_to with new and vanished groups, filters of every kind alone and
 * combined, tracemalloc's size format across every unit boundary,
 * statistic lines, traceback printing with source lines, argument errors,
 * invariants over random snapshots (--seed N), and allocation failure at
 * every step.  tests/snapshot_parity.py compares random snapshots with
 * CPython line by line.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fdopen */
#include "support.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>

/* ---- building snapshots ------------------------------------------------------------ */

/* Add a trace whose frames, most recent first, are written as
 * "file:line" or "file:line:function" separated by spaces ("" for an
 * empty traceback; a missing function is "f"). */
static void add(om_snapshot *snap, unsigned domain, size_t size,
                const char *spec) {
    char buf[512];
    om_frame frames[8];
    size_t n = 0;
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *word = strtok(buf, " "); word; word = strtok(NULL, " ")) {
        char *colon = strchr(word, ':');
        CHECK(colon != NULL && n < 8);
        *colon = '\0';
        char *end;
        frames[n].filename = word;
        frames[n].lineno = (unsigned)strtoul(colon + 1, &end, 10);
        frames[n].function = *end == ':' ? end + 1 : "f";
        n++;
    }
    CHECK(om_snapshot_add_trace(snap, domain, size, frames, n, n) == OM_OK);
}

/* "file:line" of each frame, most recent first, space separated
 * ("<unknown>:0" for an empty traceback, which stands for that frame). */
static const char *frames_text(const om_traceback *tb, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
    if (!tb->nframes)
        snprintf(buf, n, "<unknown>:0");
    for (size_t i = 0; i < tb->nframes && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s:%u", i ? " " : "",
                                tb->frames[i].filename, tb->frames[i].lineno);
    return buf;
}

/* Whether the statistics, formatted, are exactly `lines` (NULL-ended);
 * prints the difference when not. */
static bool stats_are(const om_stats *stats, int diff,
                      const char *const *lines) {
    size_t n = 0;
    while (lines[n])
        n++;
    bool same = om_stats_len(stats) == n;
    for (size_t i = 0; i < om_stats_len(stats); i++) {
        char buf[256];
        om_statistic_format(buf, sizeof buf, om_stats_get(stats, i), diff);
        if (i >= n || strcmp(buf, lines[i]) != 0) {
            fprintf(stderr, "  line %zu: got \"%s\", want \"%s\"\n", i, buf,
                    i < n ? lines[i] : "(nothing)");
            same = false;
        }
    }
    return same;
}

/* statistics(key, cumulative) formatted is `lines`. */
static bool statistics_are(const om_snapshot *snap, om_stat_key key,
                           int cumulative, const char *const *lines) {
    om_stats *stats = om_snapshot_statistics(snap, key, cumulative);
    CHECK(stats != NULL);
    bool same = stats && stats_are(stats, 0, lines);
    om_stats_free(stats);
    return same;
}

/* ---- statistics --------------------------------------------------------------------- */

/* Six traces: a line reached from two callers with two functions, an
 * empty traceback, and one line from two functions. */
static om_snapshot *grouping_snapshot(om_runtime *rt) {
    om_snapshot *snap = om_snapshot_new(rt, 4);
    add(snap, 0, 10, "a.c:1:first x.c:9");
    add(snap, 0, 20, "a.c:1:second y.c:3");
    add(snap, 0, 5, "b.c:2");
    add(snap, 1, 7, "");
    add(snap, 0, 3, "a.c:2:f");
    add(snap, 0, 4, "a.c:2:g");
    return snap;
}

static void test_group_by_line_file_traceback(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = grouping_snapshot(rt);
    /* Expected lines: CPython's statistics() of the same traces (an empty
     * traceback given as CPython's unknown frame). */
    CHECK(statistics_are(snap, OM_STAT_LINENO, 0,
                         (const char *const[]){
                             "a.c:1: size=30 B, count=2, average=15 B",
                             "a.c:2: size=7 B, count=2, average=4 B",
                             "<unknown>:0: size=7 B, count=1, average=7 B",
                             "b.c:2: size=5 B, count=1, average=5 B", NULL}));
    CHECK(statistics_are(snap, OM_STAT_FILENAME, 0,
                         (const char *const[]){
                             "a.c:0: size=37 B, count=4, average=9 B",
                             "<unknown>:0: size=7 B, count=1, average=7 B",
                             "b.c:0: size=5 B, count=1, average=5 B", NULL}));
    /* A traceback prints as its oldest frame. */
    CHECK(statistics_are(snap, OM_STAT_TRACEBACK, 0,
                         (const char *const[]){
                             "y.c:3: size=20 B, count=1, average=20 B",
                             "x.c:9: size=10 B, count=1, average=10 B",
                             "a.c:2: size=7 B, count=2, average=4 B",
                             "<unknown>:0: size=7 B, count=1, average=7 B",
                             "b.c:2: size=5 B, count=1, average=5 B", NULL}));

    /* Line groups: one frame, owned by the stats, with the function of
     * the first trace seen at that line. */
    om_stats *st = om_snapshot_statistics(snap, OM_STAT_LINENO, 0);
    const om_traceback *tb = om_stats_get(st, 0)->traceback;
    CHECK(tb->nframes == 1 && tb->total_nframe == 1);
    CHECK(!strcmp(tb->frames[0].function, "first"));
    CHECK(!strcmp(om_stats_get(st, 1)->traceback->frames[0].function, "f"));
    const om_statistic *unknown = om_stats_get(st, 2);
    CHECK(!strcmp(unknown->traceback->frames[0].filename, "<unknown>"));
    CHECK(!strcmp(unknown->traceback->frames[0].function, "<unknown>"));
    CHECK(unknown->size_diff == 0 && unknown->count_diff == 0);
    CHECK(om_stats_get(st, 4) == NULL);
    om_stats_free(st);

    /* File groups: line 0, function "<unknown>". */
    st = om_snapshot_statistics(snap, OM_STAT_FILENAME, 0);
    tb = om_stats_get(st, 0)->traceback;
    CHECK(tb->nframes == 1 && tb->frames[0].lineno == 0);
    CHECK(!strcmp(tb->frames[0].filename, "a.c"));
    CHECK(!strcmp(tb->frames[0].function, "<unknown>"));
    om_stats_free(st);

    /* Traceback groups: the snapshot's traceback of the first trace; the
     * two a.c:2 tracebacks (functions f and g) are one group. */
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    st = om_snapshot_statistics(snap, OM_STAT_TRACEBACK, 0);
    CHECK(om_stats_get(st, 0)->traceback == traces[1].traceback);
    CHECK(om_stats_get(st, 2)->traceback == traces[4].traceback);
    CHECK(om_stats_get(st, 3)->traceback == traces[3].traceback);
    CHECK(om_stats_get(st, 3)->traceback->nframes == 0);
    om_stats_free(st);
    om_snapshot_free(snap);
    finish(rt);
}

static void test_cumulative(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = grouping_snapshot(rt);
    /* Every frame of every traceback counts (CPython's output). */
    CHECK(statistics_are(snap, OM_STAT_LINENO, 1,
                         (const char *const[]){
                             "a.c:1: size=30 B, count=2, average=15 B",
                             "y.c:3: size=20 B, count=1, average=20 B",
                             "x.c:9: size=10 B, count=1, average=10 B",
                             "a.c:2: size=7 B, count=2, average=4 B",
                             "<unknown>:0: size=7 B, count=1, average=7 B",
                             "b.c:2: size=5 B, count=1, average=5 B", NULL}));
    CHECK(statistics_are(snap, OM_STAT_FILENAME, 1,
                         (const char *const[]){
                             "a.c:0: size=37 B, count=4, average=9 B",
                             "y.c:0: size=20 B, count=1, average=20 B",
                             "x.c:0: size=10 B, count=1, average=10 B",
                             "<unknown>:0: size=7 B, count=1, average=7 B",
                             "b.c:0: size=5 B, count=1, average=5 B", NULL}));
    om_snapshot_free(snap);

    /* A frame twice in a traceback counts twice, as in CPython. */
    snap = om_snapshot_new(rt, 3);
    add(snap, 0, 10, "r.c:1 r.c:1 s.c:2");
    add(snap, 0, 1, "s.c:2");
    add(snap, 0, 6, "");
    CHECK(statistics_are(snap, OM_STAT_LINENO, 1,
                         (const char *const[]){
                             "r.c:1: size=20 B, count=2, average=10 B",
                             "s.c:2: size=11 B, count=2, average=6 B",
                             "<unknown>:0: size=6 B, count=1, average=6 B",
                             NULL}));
    CHECK(statistics_are(snap, OM_STAT_FILENAME, 1,
                         (const char *const[]){
                             "r.c:0: size=20 B, count=2, average=10 B",
                             "s.c:0: size=11 B, count=2, average=6 B",
                             "<unknown>:0: size=6 B, count=1, average=6 B",
                             NULL}));
    /* Not cumulative, only the most recent frame counts. */
    CHECK(statistics_are(snap, OM_STAT_LINENO, 0,
                         (const char *const[]){
                             "r.c:1: size=10 B, count=1, average=10 B",
                             "<unknown>:0: size=6 B, count=1, average=6 B",
                             "s.c:2: size=1 B, count=1, average=1 B", NULL}));
    om_snapshot_free(snap);
    finish(rt);
}

static void test_sort_order_and_ties(void) {
    om_runtime *rt = om_runtime_new(NULL);
    /* Equal sizes: the larger count first, then the larger (filename,
     * line), lines compared as numbers (CPython's order). */
    om_snapshot *snap = om_snapshot_new(rt, 2);
    add(snap, 0, 8, "a.c:9");
    add(snap, 0, 8, "a.c:100");
    add(snap, 0, 8, "b.c:1");
    add(snap, 0, 8, "a.c:10");
    add(snap, 0, 4, "c.c:1");
    add(snap, 0, 4, "c.c:1");
    add(snap, 0, 8, "0.c:1");
    CHECK(statistics_are(snap, OM_STAT_LINENO, 0,
                         (const char *const[]){
                             "c.c:1: size=8 B, count=2, average=4 B",
                             "b.c:1: size=8 B, count=1, average=8 B",
                             "a.c:100: size=8 B, count=1, average=8 B",
                             "a.c:10: size=8 B, count=1, average=8 B",
                             "a.c:9: size=8 B, count=1, average=8 B",
                             "0.c:1: size=8 B, count=1, average=8 B", NULL}));
    om_snapshot_free(snap);

    /* Tracebacks compare oldest frame first; a prefix sorts lower.
     * Oldest first these are (x:1), (x:1, y:2) and (a:5, x:1). */
    snap = om_snapshot_new(rt, 2);
    add(snap, 0, 5, "x.c:1");
    add(snap, 0, 5, "y.c:2 x.c:1");
    add(snap, 0, 5, "x.c:1 a.c:5");
    om_stats *st = om_snapshot_statistics(snap, OM_STAT_TRACEBACK, 0);
    char buf[128];
    CHECK(om_stats_len(st) == 3);
    CHECK(!strcmp(frames_text(om_stats_get(st, 0)->traceback, buf, 128),
                  "y.c:2 x.c:1"));
    CHECK(!strcmp(frames_text(om_stats_get(st, 1)->traceback, buf, 128),
                  "x.c:1"));
    CHECK(!strcmp(frames_text(om_stats_get(st, 2)->traceback, buf, 128),
                  "x.c:1 a.c:5"));
    om_stats_free(st);
    om_snapshot_free(snap);

    /* Filenames compare as str: by code point, invalid UTF-8 bytes as
     * U+DC80..U+DCFF.  By bytes, \xff would come first. */
    snap = om_snapshot_new(rt, 1);
    add(snap, 0, 1, "\xc3\xa9.c:1");     /* U+00E9 */
    add(snap, 0, 1, "\xff.c:1");         /* U+DCFF */
    add(snap, 0, 1, "\xe4\xb8\x80.c:1"); /* U+4E00 */
    add(snap, 0, 1, "\xef\xbc\xa1.c:1"); /* U+FF21 */
    CHECK(statistics_are(snap, OM_STAT_LINENO, 0,
                         (const char *const[]){
                             "\xef\xbc\xa1.c:1: size=1 B, count=1, average=1 B",
                             "\xff.c:1: size=1 B, count=1, average=1 B",
                             "\xe4\xb8\x80.c:1: size=1 B, count=1, average=1 B",
                             "\xc3\xa9.c:1: size=1 B, count=1, average=1 B",
                             NULL}));
    om_snapshot_free(snap);

    /* A filename that is a prefix of another sorts lower. */
    snap = om_snapshot_new(rt, 1);
    add(snap, 0, 1, "a.c:1");
    add(snap, 0, 1, "a.cc:1");
    add(snap, 0, 1, "a.c:2");
    CHECK(statistics_are(snap, OM_STAT_LINENO, 0,
                         (const char *const[]){
                             "a.cc:1: size=1 B, count=1, average=1 B",
                             "a.c:2: size=1 B, count=1, average=1 B",
                             "a.c:1: size=1 B, count=1, average=1 B", NULL}));
    om_snapshot_free(snap);
    finish(rt);
}

static void test_empty_snapshot(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = om_snapshot_new(rt, 1);
    for (int key = OM_STAT_LINENO; key <= OM_STAT_TRACEBACK; key++) {
        om_stats *st = om_snapshot_statistics(snap, (om_stat_key)key, 0);
        CHECK(st != NULL && om_stats_len(st) == 0);
        CHECK(om_stats_get(st, 0) == NULL);
        om_stats_free(st);
        st = om_snapshot_compare_to(snap, snap, (om_stat_key)key, 0);
        CHECK(st != NULL && om_stats_len(st) == 0);
        om_stats_free(st);
    }
    om_snapshot *copy = om_snapshot_filter_traces(snap, NULL, 0);
    size_t n = 1;
    CHECK(copy != NULL);
    om_snapshot_traces(copy, &n);
    CHECK(n == 0);
    om_snapshot_free(copy);
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- compare_to ----------------------------------------------------------------------- */

static void test_compare_to(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_runtime *rt_old = om_runtime_new(NULL);
    /* The old snapshot belongs to another runtime: its strings are other
     * pointers, so groups must meet by content. */
    om_snapshot *old = om_snapshot_new(rt_old, 1);
    add(old, 0, 10, "a.c:1");
    add(old, 0, 5, "b.c:2");
    add(old, 0, 60, "c.c:3");
    add(old, 0, 40, "c.c:3");
    om_snapshot *snap = om_snapshot_new(rt, 1);
    add(snap, 0, 10, "a.c:1");
    add(snap, 0, 10, "a.c:1");
    add(snap, 0, 10, "a.c:1");
    add(snap, 0, 5, "b.c:2");
    add(snap, 0, 7, "d.c:4");
    /* Expected lines: CPython's compare_to. */
    om_stats *st = om_snapshot_compare_to(snap, old, OM_STAT_LINENO, 0);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "c.c:3: size=0 B (-100 B), count=0 (-2)",
                        "a.c:1: size=30 B (+20 B), count=3 (+2), average=10 B",
                        "d.c:4: size=7 B (+7 B), count=1 (+1), average=7 B",
                        "b.c:2: size=5 B (+0 B), count=1 (+0), average=5 B",
                        NULL}));
    const om_statistic *gone = om_stats_get(st, 0);
    CHECK(gone->size == 0 && gone->count == 0 && gone->size_diff == -100 &&
          gone->count_diff == -2);
    om_stats_free(st);

    st = om_snapshot_compare_to(snap, snap, OM_STAT_LINENO, 0);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "a.c:1: size=30 B (+0 B), count=3 (+0), average=10 B",
                        "d.c:4: size=7 B (+0 B), count=1 (+0), average=7 B",
                        "b.c:2: size=5 B (+0 B), count=1 (+0), average=5 B",
                        NULL}));
    om_stats_free(st);

    st = om_snapshot_compare_to(old, snap, OM_STAT_FILENAME, 0);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "c.c:0: size=100 B (+100 B), count=2 (+2), average=50 B",
                        "a.c:0: size=10 B (-20 B), count=1 (-2), average=10 B",
                        "d.c:0: size=0 B (-7 B), count=0 (-1)",
                        "b.c:0: size=5 B (+0 B), count=1 (+0), average=5 B",
                        NULL}));
    om_stats_free(st);
    om_snapshot_free(snap);
    om_snapshot_free(old);

    /* Ties: |size_diff| first, then size, |count_diff|, count, traceback
     * (CPython's order of the same groups). */
    old = om_snapshot_new(rt, 2);
    add(old, 0, 5, "p.c:1");
    add(old, 0, 5, "q.c:1");
    add(old, 0, 3, "t.c:1 u.c:1");
    snap = om_snapshot_new(rt, 2);
    add(snap, 0, 10, "p.c:1");
    add(snap, 0, 0, "q.c:1");
    add(snap, 0, 5, "r.c:1");
    add(snap, 0, 5, "s.c:1");
    add(snap, 0, 3, "t.c:1 v.c:1");
    st = om_snapshot_compare_to(snap, old, OM_STAT_LINENO, 0);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "p.c:1: size=10 B (+5 B), count=1 (+0), average=10 B",
                        "s.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "r.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "q.c:1: size=0 B (-5 B), count=1 (+0), average=0 B",
                        "t.c:1: size=3 B (+0 B), count=1 (+0), average=3 B",
                        NULL}));
    om_stats_free(st);
    /* By traceback, t.c:1 called from u.c and from v.c differ: one
     * vanished, one new, listed oldest frame first. */
    st = om_snapshot_compare_to(snap, old, OM_STAT_TRACEBACK, 0);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "p.c:1: size=10 B (+5 B), count=1 (+0), average=10 B",
                        "s.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "r.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "q.c:1: size=0 B (-5 B), count=1 (+0), average=0 B",
                        "v.c:1: size=3 B (+3 B), count=1 (+1), average=3 B",
                        "u.c:1: size=0 B (-3 B), count=0 (-1)", NULL}));
    om_stats_free(st);
    /* Cumulative: t.c:1 is in both; u.c:1 vanished, v.c:1 is new. */
    st = om_snapshot_compare_to(snap, old, OM_STAT_LINENO, 1);
    CHECK(stats_are(st, 1,
                    (const char *const[]){
                        "p.c:1: size=10 B (+5 B), count=1 (+0), average=10 B",
                        "s.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "r.c:1: size=5 B (+5 B), count=1 (+1), average=5 B",
                        "q.c:1: size=0 B (-5 B), count=1 (+0), average=0 B",
                        "v.c:1: size=3 B (+3 B), count=1 (+1), average=3 B",
                        "u.c:1: size=0 B (-3 B), count=0 (-1)",
                        "t.c:1: size=3 B (+0 B), count=1 (+0), average=3 B",
                        NULL}));
    om_stats_free(st);
    om_snapshot_free(snap);
    om_snapshot_free(old);
    finish(rt_old);
    finish(rt);
}

/* ---- filters ------------------------------------------------------------------------------ */

/* Five traces, told apart by size: 10 * (index + 1). */
static om_snapshot *filter_snapshot(om_runtime *rt) {
    om_snapshot *snap = om_snapshot_new(rt, 3);
    add(snap, 0, 10, "a.c:1 main.c:10");
    add(snap, 0, 20, "b.c:2 a.c:1");
    add(snap, 1, 30, "a.c:3");
    add(snap, 2, 40, "lib/x.h:4 b.c:5");
    add(snap, 0, 50, "");
    return snap;
}

/* The indexes of the traces in snap, as digits ("" for none). */
static const char *trace_indexes(const om_snapshot *snap, char *buf) {
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)('0' + traces[i].size / 10 - 1);
    buf[n] = '\0';
    return buf;
}

#define ANY_LINE OM_FILTER_ANY_LINE
#define ANY_DOMAIN OM_FILTER_ANY_DOMAIN

/* Each filter kind alone and combined.  Expected: the traces CPython's
 * filter_traces keeps from the same traces. */
static const struct filter_case {
    const char *kept;
    size_t n;
    om_filter f[2];
} filter_cases[] = {
    {"02", 1, {{1, "a.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"012", 1, {{1, "a.c", ANY_LINE, 1, ANY_DOMAIN}}},
    {"134", 1, {{0, "a.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"34", 1, {{0, "a.c", ANY_LINE, 1, ANY_DOMAIN}}},
    {"0", 1, {{1, "a.c", 1, 0, ANY_DOMAIN}}},
    {"01", 1, {{1, "a.c", 1, 1, ANY_DOMAIN}}},
    {"1234", 1, {{0, "a.c", 1, 0, ANY_DOMAIN}}},
    {"234", 1, {{0, "a.c", 1, 1, ANY_DOMAIN}}},
    {"3", 1, {{1, "b.c", 5, 1, ANY_DOMAIN}}},
    {"012", 1, {{1, "*.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"01234", 1, {{1, "*", ANY_LINE, 0, ANY_DOMAIN}}},
    {"4", 1, {{1, "<unknown>", ANY_LINE, 0, ANY_DOMAIN}}},
    {"4", 1, {{1, "<unknown>", 0, 0, ANY_DOMAIN}}},
    {"3", 1, {{1, "lib/*", ANY_LINE, 0, ANY_DOMAIN}}},
    {"3", 1, {{1, "*x.h", ANY_LINE, 0, ANY_DOMAIN}}}, /* '*' matches '/' */
    {"", 1, {{1, "A.C", ANY_LINE, 0, ANY_DOMAIN}}},  /* case matters */
    {"012", 1, {{1, "[ab].c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"1", 1, {{1, "[!a].c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"02", 1, {{1, "[^a].c", ANY_LINE, 0, ANY_DOMAIN}}}, /* '^' is literal */
    {"012", 1, {{1, "?.c", ANY_LINE, 0, ANY_DOMAIN}}},
    /* A domain on a Filter: inclusive needs both, exclusive drops only
     * what matches both. */
    {"2", 1, {{1, "a.c", ANY_LINE, 0, 1}}},
    {"1234", 1, {{0, "a.c", ANY_LINE, 0, 0}}},
    {"234", 1, {{0, "a.c", ANY_LINE, 1, 0}}},
    /* Domain filters. */
    {"2", 1, {{1, NULL, ANY_LINE, 0, 1}}},
    {"23", 1, {{0, NULL, ANY_LINE, 0, 0}}},
    /* Combined: any inclusive one, and every exclusive one. */
    {"012", 2, {{1, "a.c", ANY_LINE, 0, ANY_DOMAIN},
                {1, "b.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"02", 2, {{1, "*.c", ANY_LINE, 0, ANY_DOMAIN},
               {0, "b.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"01", 2, {{1, "a.c", ANY_LINE, 1, ANY_DOMAIN},
               {0, NULL, ANY_LINE, 0, 1}}},
    {"34", 2, {{0, "a.c", ANY_LINE, 0, ANY_DOMAIN},
               {0, "b.c", ANY_LINE, 0, ANY_DOMAIN}}},
    {"0134", 2, {{1, NULL, ANY_LINE, 0, 0}, {1, NULL, ANY_LINE, 0, 2}}},
};

static void test_filter_kinds(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = filter_snapshot(rt);
    size_t n_before;
    const om_trace *before = om_snapshot_traces(snap, &n_before);
    for (size_t i = 0; i < sizeof filter_cases / sizeof filter_cases[0];
         i++) {
        const struct filter_case *c = &filter_cases[i];
        om_snapshot *out = om_snapshot_filter_traces(snap, c->f, c->n);
        char buf[8];
        CHECK(out != NULL);
        if (!out)
            continue;
        if (strcmp(trace_indexes(out, buf), c->kept) != 0)
            fprintf(stderr, "  case %zu: kept \"%s\", want \"%s\"\n", i, buf,
                    c->kept);
        CHECK(!strcmp(buf, c->kept));
        CHECK(om_snapshot_traceback_limit(out) == 3);
        om_snapshot_free(out);
    }
    /* The original is untouched. */
    size_t n_after;
    CHECK(om_snapshot_traces(snap, &n_after) == before && n_after == 5);
    char buf[8];
    CHECK(!strcmp(trace_indexes(snap, buf), "01234"));
    om_snapshot_free(snap);
    finish(rt);
}

static void test_filter_init(void) {
    om_filter f;
    om_filter_init(&f, 1, "x.c");
    CHECK(f.inclusive == 1 && !strcmp(f.filename_pattern, "x.c"));
    CHECK(f.lineno == OM_FILTER_ANY_LINE && f.all_frames == 0);
    CHECK(f.domain == OM_FILTER_ANY_DOMAIN);
    om_domain_filter_init(&f, 0, UINT_MAX);
    CHECK(f.inclusive == 0 && f.filename_pattern == NULL);
    CHECK(f.lineno == OM_FILTER_ANY_LINE && f.all_frames == 0);
    CHECK(f.domain == (long long)UINT_MAX);
}

/* No filters: a copy that shares nothing with the original, which can go
 * first. */
static void test_filter_copy_is_independent(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = filter_snapshot(rt);
    om_filter unused;
    om_filter_init(&unused, 1, "a.c");
    om_snapshot *copy = om_snapshot_filter_traces(snap, &unused, 0);
    size_t n, m;
    const om_trace *a = om_snapshot_traces(snap, &n);
    const om_trace *b = om_snapshot_traces(copy, &m);
    CHECK(n == m && a != b);
    for (size_t i = 0; i < n && i < m; i++) {
        char x[128], y[128];
        CHECK(a[i].domain == b[i].domain && a[i].size == b[i].size);
        CHECK(a[i].traceback != b[i].traceback);
        CHECK(a[i].traceback->total_nframe == b[i].traceback->total_nframe);
        CHECK(!strcmp(frames_text(a[i].traceback, x, sizeof x),
                      frames_text(b[i].traceback, y, sizeof y)));
        if (a[i].traceback->nframes && b[i].traceback->nframes)
            CHECK(a[i].traceback->frames[0].filename !=
                  b[i].traceback->frames[0].filename);
    }
    om_snapshot_free(snap);
    /* Equal tracebacks of the copy are still one. */
    om_snapshot *twice = om_snapshot_new(rt, 2);
    add(twice, 0, 1, "a.c:1:f b.c:2");
    add(twice, 5, 2, "a.c:1:f b.c:2");
    om_snapshot *copy2 = om_snapshot_filter_traces(twice, NULL, 0);
    b = om_snapshot_traces(copy2, &m);
    CHECK(m == 2 && b[0].traceback == b[1].traceback && b[1].domain == 5);
    om_snapshot_free(twice);
    CHECK(statistics_are(copy, OM_STAT_FILENAME, 0,
                         (const char *const[]){
                             "<unknown>:0: size=50 B, count=1, average=50 B",
                             "a.c:0: size=40 B, count=2, average=20 B",
                             "lib/x.h:0: size=40 B, count=1, average=40 B",
                             "b.c:0: size=20 B, count=1, average=20 B", NULL}));
    om_snapshot_free(copy2);
    om_snapshot_free(copy);
    finish(rt);
}

/* Names are matched by code point: '?' takes a whole UTF-8 sequence, or
 * one byte of an invalid one. */
static void test_filter_code_points(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = om_snapshot_new(rt, 1);
    add(snap, 0, 10, "\xc3\xa9.c:1");     /* é.c */
    add(snap, 0, 20, "\xe4\xb8\x80.c:1"); /* 一.c */
    add(snap, 0, 30, "\xff.c:1");
    add(snap, 0, 40, "\xc3.c:1"); /* a lone lead byte */
    add(snap, 0, 50, "ab.c:1");
    static const struct {
        const char *pattern, *kept;
    } cases[] = {
        {"?.c", "0123"},
        {"??.c", "4"},
        {"[\xc3\xa9\xff].c", "02"},
        {"[\xc3]*", "3"},
        {"[a-\xe4\xb8\x80]*", "014"}, /* U+0061..U+4E00 */
        {"[!a-\xe4\xb8\x80]*", "23"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_filter f;
        om_filter_init(&f, 1, cases[i].pattern);
        om_snapshot *out = om_snapshot_filter_traces(snap, &f, 1);
        char buf[8];
        CHECK(out && !strcmp(trace_indexes(out, buf), cases[i].kept));
        om_snapshot_free(out);
    }
    om_snapshot_free(snap);
    finish(rt);
}

/* fnmatch.translate's quirks, each name a trace told apart by size
 * (letters a..m).  Expected: what fnmatch.fnmatchcase (CPython 3.11) says
 * of each name and pattern. */
static void test_filter_pattern_quirks(void) {
    static const char *const names[] = {
        "a", "b", "-", "!", "]", "^", "z", "ab", "a.c", "a.cc",
        "\xf0\x9f\x98\x80", "[", "\x5c"};
    static const struct {
        const char *pattern, *kept;
    } cases[] = {
        {"[a-]", "ac"},
        {"[-a]", "ac"},
        {"[!-a]", "bdefgklm"},
        {"[ab-c]", "ab"},
        {"[z-a]", ""},            /* an empty range matches nothing */
        {"[z-a!]", "abcdefgklm"}, /* ... and leaves "[!]": any one */
        {"[z-a!b]", "acdefgklm"}, /* ... or a negated set */
        {"[c-a-b]", "bc"},
        {"[a--c]", ""},
        {"[]-a]", "aef"},
        {"[!]]", "abcdfgklm"},
        {"[^]", "f"},
        {"[[]", "l"},
        {"[", "l"},
        {"a*", "ahij"},
        {"a**", "ahij"},
        {"*c", "ij"},
        {"?", "abcdefgklm"},
        {"[\xf0\x9f\x98\x80]", "k"},
        {"[\x5c]", "m"},
        {"\x5c", "m"},
        {"[a-c-e]", "abc"},
    };
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = om_snapshot_new(rt, 1);
    size_t nnames = sizeof names / sizeof names[0];
    for (size_t i = 0; i < nnames; i++) {
        om_frame frame = {names[i], 1, "f"};
        CHECK(om_snapshot_add_trace(snap, 0, i, &frame, 1, 1) == OM_OK);
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        om_filter f;
        om_filter_init(&f, 1, cases[i].pattern);
        om_snapshot *out = om_snapshot_filter_traces(snap, &f, 1);
        char kept[16] = "";
        size_t n = 0;
        const om_trace *traces = om_snapshot_traces(out, &n);
        for (size_t k = 0; k < n && k < 15; k++)
            kept[k] = (char)('a' + traces[k].size);
        if (strcmp(kept, cases[i].kept) != 0)
            fprintf(stderr, "  pattern %zu: kept \"%s\", want \"%s\"\n", i,
                    kept, cases[i].kept);
        CHECK(out && !strcmp(kept, cases[i].kept));
        om_snapshot_free(out);
    }
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- argument errors ------------------------------------------------------------------------ */

static void test_argument_errors(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = filter_snapshot(rt);
    CHECK(om_snapshot_filter_traces(NULL, NULL, 0) == NULL);
    CHECK(om_snapshot_filter_traces(snap, NULL, 2) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_filter_traces", "NULL"));
    om_filter f[2];
    om_filter_init(&f[0], 1, "a.c");
    om_filter_init(&f[1], 1, NULL); /* a domain filter with no domain */
    CHECK(om_snapshot_filter_traces(snap, f, 2) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "filter 1", "needs a domain"));
    om_filter_init(&f[1], 1, "b.c");
    f[0].lineno = -2;
    CHECK(om_snapshot_filter_traces(snap, f, 2) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "filter 0", "lineno -2"));
    f[0].lineno = OM_FILTER_ANY_LINE;
    f[1].domain = -2;
    CHECK(om_snapshot_filter_traces(snap, f, 2) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "filter 1", "domain -2"));
    f[1].domain = (long long)UINT_MAX + 1;
    CHECK(om_snapshot_filter_traces(snap, f, 2) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "filter 1", "domain 4294967296"));
    f[1].domain = UINT_MAX; /* the largest domain is fine */
    om_snapshot *kept = om_snapshot_filter_traces(snap, f, 2);
    char buf[16] = "";
    CHECK(kept && !strcmp(trace_indexes(kept, buf), "02"));
    om_snapshot_free(kept);

    CHECK(om_snapshot_statistics(NULL, OM_STAT_LINENO, 0) == NULL);
    CHECK(om_snapshot_statistics(snap, (om_stat_key)7, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_statistics",
                   "unknown key type 7"));
    CHECK(om_snapshot_statistics(snap, OM_STAT_TRACEBACK, 1) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_statistics",
                   "cumulative mode cannot be used with key type "
                   "'traceback'"));
    CHECK(om_snapshot_compare_to(NULL, snap, OM_STAT_LINENO, 0) == NULL);
    CHECK(om_snapshot_compare_to(snap, NULL, OM_STAT_LINENO, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_compare_to", "old"));
    CHECK(om_snapshot_compare_to(snap, snap, (om_stat_key)-1, 0) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_compare_to",
                   "unknown key type -1"));
    CHECK(om_snapshot_compare_to(snap, snap, OM_STAT_TRACEBACK, 1) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_compare_to", "cumulative"));
    CHECK(om_stats_len(NULL) == 0 && om_stats_get(NULL, 0) == NULL);
    om_stats_free(NULL);

    CHECK(om_statistic_format(buf, sizeof buf, NULL, 0) == -1 && !buf[0]);
    om_traceback empty = {0, 0, NULL};
    CHECK(om_traceback_print(NULL, stdout, 0, 0) == OM_ERR_ARG);
    CHECK(om_traceback_print(&empty, NULL, 0, 0) == OM_ERR_ARG);
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- text ------------------------------------------------------------------------------------------ */

static void test_format_size(void) {
    /* Produced by CPython 3.11's tracemalloc._format_size(v, False) and
     * (v, True): every unit boundary, rounding halves to even, signs,
     * infinities and NaN. */
    static const struct {
        double v;
        const char *plain, *sign;
    } cases[] = {
        {0, "0 B", "+0 B"},
        {1, "1 B", "+1 B"},
        {0.5, "0 B", "+0 B"},
        {1.5, "2 B", "+2 B"},
        {2.5, "2 B", "+2 B"},
        {99, "99 B", "+99 B"},
        {100, "100 B", "+100 B"},
        {1023, "1023 B", "+1023 B"},
        {1024, "1024 B", "+1024 B"},
        {9999, "9999 B", "+9999 B"},
        {10239, "10239 B", "+10239 B"},
        {10239.5, "10240 B", "+10240 B"},
        {10240, "10.0 KiB", "+10.0 KiB"},
        {10241, "10.0 KiB", "+10.0 KiB"},
        {102297, "99.9 KiB", "+99.9 KiB"},
        {102348, "99.9 KiB", "+99.9 KiB"},
        {102349, "100.0 KiB", "+100.0 KiB"},
        {102399, "100.0 KiB", "+100.0 KiB"},
        {102400, "100 KiB", "+100 KiB"},
        {1048575, "1024 KiB", "+1024 KiB"},
        {10485759, "10240 KiB", "+10240 KiB"},
        {10485760, "10.0 MiB", "+10.0 MiB"},
        {104805171, "99.9 MiB", "+99.9 MiB"},
        {104857599, "100.0 MiB", "+100.0 MiB"},
        {104857600, "100 MiB", "+100 MiB"},
        {10737418239, "10240 MiB", "+10240 MiB"},
        {10737418240, "10.0 GiB", "+10.0 GiB"},
        {107374182399, "100.0 GiB", "+100.0 GiB"},
        {107374182400, "100 GiB", "+100 GiB"},
        {10995116277759, "10240 GiB", "+10240 GiB"},
        {10995116277760, "10.0 TiB", "+10.0 TiB"},
        {109951162777599, "100.0 TiB", "+100.0 TiB"},
        {109951162777600, "100 TiB", "+100 TiB"},
        {11258999068426240, "10240 TiB", "+10240 TiB"},
        {1e+20, "90949470 TiB", "+90949470 TiB"},
        {-1, "-1 B", "-1 B"},
        {-5000, "-5000 B", "-5000 B"},
        {-10240, "-10.0 KiB", "-10.0 KiB"},
        {-102400, "-100 KiB", "-100 KiB"},
        {-104857600, "-100 MiB", "-100 MiB"},
        {-1e+20, "-90949470 TiB", "-90949470 TiB"},
        {HUGE_VAL, "inf TiB", "+inf TiB"},
        {-HUGE_VAL, "-inf TiB", "-inf TiB"},
        {NAN, "nan TiB", "+nan TiB"},
        {-NAN, "nan TiB", "+nan TiB"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        int len = om_format_size(buf, sizeof buf, cases[i].v, 0);
        CHECK(!strcmp(buf, cases[i].plain) &&
              len == (int)strlen(cases[i].plain));
        if (strcmp(buf, cases[i].plain))
            fprintf(stderr, "  %g: got \"%s\"\n", cases[i].v, buf);
        len = om_format_size(buf, sizeof buf, cases[i].v, 1);
        CHECK(!strcmp(buf, cases[i].sign) &&
              len == (int)strlen(cases[i].sign));
    }
    /* snprintf's contract: the length needed, the text cut to fit. */
    char small[4];
    CHECK(om_format_size(small, sizeof small, 10240, 0) == 8);
    CHECK(!strcmp(small, "10."));
    CHECK(om_format_size(NULL, 0, 10240, 1) == 9);
}

static void test_statistic_format(void) {
    /* Produced by CPython 3.11's str(Statistic) and str(StatisticDiff). */
    const om_frame frames[3] = {
        {"c.c", 3, "h"}, {"b.c", 2, "g"}, {"a.c", 1, "f"}};
    om_traceback tb = {3, 3, frames};
    om_statistic st = {&tb, 10737418240u, 3, 0, 0};
    char buf[128];
    const char *want = "a.c:1: size=10.0 GiB, count=3, average=3413 MiB";
    CHECK(om_statistic_format(buf, sizeof buf, &st, 0) == (int)strlen(want));
    CHECK(!strcmp(buf, want));
    /* Cut short: the whole length still returned. */
    CHECK(om_statistic_format(buf, 10, &st, 0) == (int)strlen(want));
    CHECK(!strcmp(buf, "a.c:1: si"));
    CHECK(om_statistic_format(NULL, 0, &st, 0) == (int)strlen(want));

    om_traceback one = {1, 1, &frames[2]};
    st = (om_statistic){&one, 0, 0, -104857600, -7};
    CHECK(om_statistic_format(buf, sizeof buf, &st, 1) > 0);
    CHECK(!strcmp(buf, "a.c:1: size=0 B (-100 MiB), count=0 (-7)"));
    CHECK(om_statistic_format(buf, sizeof buf, &st, 0) > 0);
    CHECK(!strcmp(buf, "a.c:1: size=0 B, count=0"));
    st = (om_statistic){&one, 5000, 2, 4999, 1};
    CHECK(om_statistic_format(buf, sizeof buf, &st, 1) > 0);
    CHECK(!strcmp(buf, "a.c:1: size=5000 B (+4999 B), count=2 (+1), "
                       "average=2500 B"));
    /* No frames: CPython's unknown frame. */
    om_traceback none = {0, 0, NULL};
    st = (om_statistic){&none, 1, 1, 0, 0};
    CHECK(om_statistic_format(buf, sizeof buf, &st, 0) > 0);
    CHECK(!strcmp(buf, "<unknown>:0: size=1 B, count=1, average=1 B"));
}

/* What om_traceback_print wrote to a fresh tmpfile. */
static bool printed(const om_traceback *tb, int limit, int most_recent_first,
                    const char *want) {
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (!f)
        return false;
    CHECK(om_traceback_print(tb, f, limit, most_recent_first) == OM_OK);
    char got[2048];
    rewind(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    got[n] = '\0';
    fclose(f);
    if (strcmp(got, want) != 0)
        fprintf(stderr, "  printed:\n%s  wanted:\n%s", got, want);
    return strcmp(got, want) == 0;
}

/* Limits and order, against Traceback.format of the same frames (CPython
 * has no function names and no limit 0; see the header for negative
 * limits, which keep the -limit oldest frames as CPython documents). */
static void test_traceback_limits(void) {
    const om_frame frames[4] = {{"/no/such/d.c", 4, "<unknown>"},
                                {"/no/such/c.c", 3, "<unknown>"},
                                {"/no/such/b.c", 2, "<unknown>"},
                                {"/no/such/a.c", 1, "<unknown>"}};
    om_traceback tb = {4, 7, frames};
#define LINE_OF(x) "  File \"/no/such/" #x ".c\", line "
    const char *a = LINE_OF(a) "1\n", *b = LINE_OF(b) "2\n",
               *c = LINE_OF(c) "3\n", *d = LINE_OF(d) "4\n";
#undef LINE_OF
    char all[256], all_rev[256], two[256], two_rev[256], old2[256],
        old2_rev[256];
    snprintf(all, sizeof all, "%s%s%s%s", a, b, c, d);
    snprintf(all_rev, sizeof all_rev, "%s%s%s%s", d, c, b, a);
    snprintf(two, sizeof two, "%s%s", c, d);
    snprintf(two_rev, sizeof two_rev, "%s%s", d, c);
    snprintf(old2, sizeof old2, "%s%s", a, b);
    snprintf(old2_rev, sizeof old2_rev, "%s%s", b, a);
    CHECK(printed(&tb, 0, 0, all));
    CHECK(printed(&tb, 0, 1, all_rev));
    CHECK(printed(&tb, 1, 0, d));
    CHECK(printed(&tb, 1, 1, d));
    CHECK(printed(&tb, 2, 0, two));
    CHECK(printed(&tb, 2, 1, two_rev));
    CHECK(printed(&tb, 5, 0, all));
    CHECK(printed(&tb, -1, 0, a));
    CHECK(printed(&tb, -2, 0, old2));
    CHECK(printed(&tb, -2, 1, old2_rev));
    CHECK(printed(&tb, -5, 0, all));
    CHECK(printed(&tb, INT_MIN, 1, all_rev));
    om_traceback none = {0, 0, NULL};
    CHECK(printed(&none, 0, 0, "  File \"<unknown>\", line 0\n"));
}

/* A source file with every kind of line end: \n, \r\n, a lone \r, a
 * blank line, the whitespace str.strip() also removes (\x1c..\x1f), and a
 * last line with no end. */
static const char source_text[] = "first\n"
                                  "   second line  \r\n"
                                  "\tthird\r"
                                  "   \t \n"
                                  "\x1c fifth \x1f\n"
                                  "last without newline";

static void test_traceback_source_lines(void) {
    char path[] = "/tmp/om_test_snapshot_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    FILE *src = fdopen(fd, "wb");
    fputs(source_text, src);
    fclose(src);
    /* Lines 0..7; what linecache.getline(path, n).strip() gives. */
    static const char *const stripped[8] = {
        "", "first", "second line", "third", "", "fifth",
        "last without newline", ""};
    for (unsigned line = 0; line < 8; line++) {
        om_frame frame = {path, line, "<unknown>"};
        om_traceback tb = {1, 1, &frame};
        char want[256];
        int len = snprintf(want, sizeof want, "  File \"%s\", line %u\n",
                           path, line);
        if (stripped[line][0])
            snprintf(want + len, sizeof want - (size_t)len, "    %s\n",
                     stripped[line]);
        CHECK(printed(&tb, 0, 0, want));
    }

    /* This file's own line, and a function name. */
    unsigned marker_line = __LINE__; /* the source line printed below */
    const om_frame frames[2] = {{__FILE__, marker_line, "here"},
                                {path, 2, "caller"}};
    om_traceback tb = {2, 2, frames};
    char want[1024];
    snprintf(want, sizeof want,
             "  File \"%s\", line 2, in caller\n"
             "    second line\n"
             "  File \"%s\", line %u, in here\n"
             "    unsigned marker_line = __LINE__; /* the source line "
             "printed below */\n",
             path, __FILE__, marker_line);
    CHECK(printed(&tb, 0, 0, want));

    /* A stream that cannot be written. */
    FILE *ro = fopen(path, "r");
    CHECK(ro && om_traceback_print(&tb, ro, 0, 0) == OM_ERR_IO);
    if (ro)
        fclose(ro);
    remove(path);
}

/* ---- random snapshots ------------------------------------------------------------------------ */

static const char *const pool_files[] = {"a.c", "b.c", "lib/c.h", "d.c",
                                         "<unknown>"};
static const char *const pool_functions[] = {"f", "g", "<unknown>"};

/* n random traces over few files, lines and functions, so that groups
 * gather many traces; 1 in 8 has an empty traceback.  Sizes grow with the
 * index, so a trace's size tells which it is. */
static om_snapshot *random_snapshot(om_runtime *rt, size_t n, int limit) {
    om_snapshot *snap = om_snapshot_new(rt, limit);
    for (size_t i = 0; i < n; i++) {
        om_frame frames[8];
        size_t nframes = th_random() % 8 ? 1 + th_random() % (size_t)limit
                                         : 0;
        for (size_t k = 0; k < nframes; k++)
            frames[k] = (om_frame){pool_files[th_random() % 5],
                                   (unsigned)(th_random() % 4),
                                   pool_functions[th_random() % 3]};
        size_t size = i * 8 + (size_t)(th_random() % 8);
        CHECK(om_snapshot_add_trace(snap, (unsigned)(th_random() % 3), size,
                                    frames, nframes, nframes) == OM_OK);
    }
    return snap;
}

/* The frames a trace counts for under key (cumulative or not), written
 * "file:line" (line 0 for OM_STAT_FILENAME). */
static size_t trace_keys(const om_trace *t, om_stat_key key, int cumulative,
                         char keys[][64]) {
    size_t n = t->traceback->nframes;
    if (n == 0) {
        snprintf(keys[0], 64, "<unknown>:0");
        return 1;
    }
    if (!cumulative)
        n = 1;
    for (size_t i = 0; i < n; i++) {
        const om_frame *f = &t->traceback->frames[i];
        snprintf(keys[i], 64, "%s:%u", f->filename,
                 key == OM_STAT_LINENO ? f->lineno : 0);
    }
    return n;
}

/* Each group's totals, recounted trace by trace. */
static void check_against_recount(const om_snapshot *snap, const om_stats *st,
                                  om_stat_key key, int cumulative) {
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (size_t g = 0; g < om_stats_len(st); g++) {
        const om_statistic *s = om_stats_get(st, g);
        char want[64];
        const om_frame *f = &s->traceback->frames[0];
        snprintf(want, 64, "%s:%u", f->filename, f->lineno);
        size_t size = 0, count = 0;
        for (size_t i = 0; i < n; i++) {
            char keys[8][64];
            size_t nk = trace_keys(&traces[i], key, cumulative, keys);
            for (size_t k = 0; k < nk; k++)
                if (!strcmp(keys[k], want)) {
                    size += traces[i].size;
                    count++;
                }
        }
        CHECK(s->size == size && s->count == count);
        /* Largest first: by size, then count. */
        const om_statistic *next = om_stats_get(st, g + 1);
        CHECK(!next || next->size < s->size ||
              (next->size == s->size && next->count <= s->count));
    }
}

static void test_random_statistics(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = random_snapshot(rt, 2000, 4);
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    size_t total = 0, frame_count = 0;
    for (size_t i = 0; i < n; i++) {
        total += traces[i].size;
        size_t nf = traces[i].traceback->nframes;
        frame_count += nf ? nf : 1;
    }
    for (int key = OM_STAT_LINENO; key <= OM_STAT_FILENAME; key++)
        for (int cumulative = 0; cumulative < 2; cumulative++) {
            om_stats *st =
                om_snapshot_statistics(snap, (om_stat_key)key, cumulative);
            check_against_recount(snap, st, (om_stat_key)key, cumulative);
            size_t counted = 0;
            for (size_t g = 0; g < om_stats_len(st); g++)
                counted += om_stats_get(st, g)->count;
            CHECK(counted == (cumulative ? frame_count : n));
            om_stats_free(st);
        }
    /* By traceback, every trace once. */
    om_stats *st = om_snapshot_statistics(snap, OM_STAT_TRACEBACK, 0);
    size_t size = 0, count = 0;
    for (size_t g = 0; g < om_stats_len(st); g++) {
        size += om_stats_get(st, g)->size;
        count += om_stats_get(st, g)->count;
    }
    CHECK(size == total && count == n);
    om_stats_free(st);

    /* compare_to: new minus diff is the old snapshot's total. */
    om_snapshot *old = random_snapshot(rt, 1500, 4);
    const om_trace *old_traces = om_snapshot_traces(old, &n);
    size_t old_total = 0;
    for (size_t i = 0; i < n; i++)
        old_total += old_traces[i].size;
    for (int key = OM_STAT_LINENO; key <= OM_STAT_TRACEBACK; key++) {
        st = om_snapshot_compare_to(snap, old, (om_stat_key)key, 0);
        long long now = 0, before = 0;
        for (size_t g = 0; g < om_stats_len(st); g++) {
            const om_statistic *s = om_stats_get(st, g);
            now += (long long)s->size;
            before += (long long)s->size - s->size_diff;
        }
        CHECK(now == (long long)total && before == (long long)old_total);
        om_stats_free(st);
    }
    om_snapshot_free(old);
    om_snapshot_free(snap);
    finish(rt);
}

/* A filter and its opposite (inclusive flipped) split the traces in two,
 * in order: every filter kind answers one exactly where the other does
 * not. */
static void test_random_filter_halves(void) {
    static const char *const patterns[] = {"a.c", "*.c", "lib/*", "?.c",
                                           "[ab].c", "[!a]*", "<*>", "*"};
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = random_snapshot(rt, 500, 3);
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    for (int round = 0; round < 200; round++) {
        om_filter f;
        if (th_random() % 4 == 0) {
            om_domain_filter_init(&f, 1, (unsigned)(th_random() % 3));
        } else {
            om_filter_init(&f, 1, patterns[th_random() % 8]);
            f.lineno = th_random() % 2 ? OM_FILTER_ANY_LINE
                                       : (long)(th_random() % 4);
            f.all_frames = (int)(th_random() % 2);
            f.domain = th_random() % 2 ? OM_FILTER_ANY_DOMAIN
                                       : (long long)(th_random() % 3);
        }
        om_snapshot *in = om_snapshot_filter_traces(snap, &f, 1);
        f.inclusive = 0;
        om_snapshot *out = om_snapshot_filter_traces(snap, &f, 1);
        size_t nin, nout, i = 0, o = 0;
        const om_trace *ti = om_snapshot_traces(in, &nin);
        const om_trace *to = om_snapshot_traces(out, &nout);
        CHECK(nin + nout == n);
        /* The two halves merge back into the original order. */
        for (size_t k = 0; k < n; k++) {
            if (i < nin && ti[i].size == traces[k].size)
                i++;
            else if (o < nout && to[o].size == traces[k].size)
                o++;
            else
                CHECK(!"a trace was lost or reordered");
        }
        om_snapshot_free(in);
        om_snapshot_free(out);
    }
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- allocation failure ------------------------------------------------------------------------ */

/* A digest of a result, to tell a retried success from the reference. */
static uint64_t digest(const char *text, uint64_t h) {
    for (; *text; text++)
        h = (h ^ (unsigned char)*text) * 0x100000001b3ull;
    return h;
}

static uint64_t stats_digest(const om_stats *st, int diff) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < om_stats_len(st); i++) {
        char buf[256], tb[512];
        om_statistic_format(buf, sizeof buf, om_stats_get(st, i), diff);
        h = digest(frames_text(om_stats_get(st, i)->traceback, tb, 512),
                   digest(buf, h));
    }
    return h;
}

static uint64_t snapshot_digest(const om_snapshot *snap) {
    size_t n;
    const om_trace *traces = om_snapshot_traces(snap, &n);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        char buf[512];
        snprintf(buf, sizeof buf, "%u %zu %zu ", traces[i].domain,
                 traces[i].size, traces[i].traceback->total_nframe);
        h = digest(frames_text(traces[i].traceback, buf + strlen(buf),
                               sizeof buf - strlen(buf)),
                   h);
        h = digest(buf, h);
    }
    return h;
}

/* The operations swept, each returning its result's digest, or 0 when it
 * failed. */
enum {
    OP_FILTER,
    OP_COPY,
    OP_STATS,
    OP_COMPARE = OP_STATS + 5,
    OP_COUNT = OP_COMPARE + 5
};

static uint64_t run_op(int op, const om_snapshot *snap, const om_snapshot *old,
                       const char **func) {
    static const om_filter filters[3] = {
        {1, "*[0-9]*.c", OM_FILTER_ANY_LINE, 1, OM_FILTER_ANY_DOMAIN},
        {0, "f1?.c", 2, 0, OM_FILTER_ANY_DOMAIN},
        {0, NULL, OM_FILTER_ANY_LINE, 0, 2}};
    if (op == OP_FILTER || op == OP_COPY) {
        *func = "om_snapshot_filter_traces";
        om_snapshot *out =
            om_snapshot_filter_traces(snap, filters, op == OP_FILTER ? 3 : 0);
        uint64_t h = out ? snapshot_digest(out) : 0;
        om_snapshot_free(out);
        return h;
    }
    /* Keys: lineno, filename, traceback; lineno and filename cumulative. */
    int k = op >= OP_COMPARE ? op - OP_COMPARE : op - OP_STATS;
    om_stat_key key = (om_stat_key)(k % 3);
    int cumulative = k >= 3;
    om_stats *st;
    if (op >= OP_COMPARE) {
        *func = "om_snapshot_compare_to";
        st = om_snapshot_compare_to(snap, old, key, cumulative);
    } else {
        *func = "om_snapshot_statistics";
        st = om_snapshot_statistics(snap, key, cumulative);
    }
    uint64_t h = st ? stats_digest(st, op >= OP_COMPARE) : 0;
    om_stats_free(st);
    return h;
}

/* Failing the 1st, 2nd, ... allocation of each operation in turn: each
 * failure returns NULL with OM_ERR_NOMEM naming the function, leaks
 * nothing (the sanitizers and valgrind see to that), and the snapshots
 * are unchanged, until the operation completes with the reference
 * result.  The snapshots are big enough that intern sets, trace arrays
 * and bump chunks all grow. */
static void test_allocation_failures(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_snapshot *snap = om_snapshot_new(rt, 3), *old = om_snapshot_new(rt, 3);
    for (unsigned i = 0; i < 700; i++) {
        char file[32], caller[32];
        snprintf(file, sizeof file, "f%u.c", i % 90);
        snprintf(caller, sizeof caller, "g%u.c", i % 7);
        om_frame frames[2] = {{file, i % 5, "fn"}, {caller, i % 3, "gn"}};
        CHECK(om_snapshot_add_trace(i % 3 ? snap : old, i % 4, i, frames,
                                    i % 11 ? 2 : 0, 2) == OM_OK);
    }
    uint64_t before = snapshot_digest(snap);
    for (int op = 0; op < OP_COUNT; op++) {
        const char *func;
        uint64_t reference = run_op(op, snap, old, &func);
        CHECK(reference != 0);
        uint64_t nth = 1;
        for (; nth < 1000; nth++) {
            uint64_t start = om_debug_alloc_count(rt);
            om_debug_fail_alloc(rt, nth);
            uint64_t h = run_op(op, snap, old, &func);
            bool fired = om_debug_alloc_count(rt) - start >= nth;
            om_debug_fail_alloc(rt, 0);
            if (h) {
                CHECK(!fired && h == reference);
                break;
            }
            CHECK(fired);
            CHECK(error_is(rt, OM_ERR_NOMEM, func, "out of memory"));
            om_clear_error(rt);
        }
        CHECK(nth > 1 && nth < 1000);
    }
    CHECK(snapshot_digest(snap) == before);
    om_snapshot_free(snap);
    om_snapshot_free(old);
    finish(rt);
}

TEST_MAIN(T(test_group_by_line_file_traceback), T(test_cumulative),
          T(test_sort_order_and_ties), T(test_empty_snapshot),
          T(test_compare_to), T(test_filter_kinds), T(test_filter_init),
          T(test_filter_copy_is_independent), T(test_filter_code_points),
          T(test_filter_pattern_quirks),
          T(test_argument_errors), T(test_format_size),
          T(test_statistic_format), T(test_traceback_limits),
          T(test_traceback_source_lines), T(test_random_statistics),
          T(test_random_filter_halves), T(test_allocation_failures))
