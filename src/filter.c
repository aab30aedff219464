/*
 * filter.c — Snapshot.filter_traces: tracemalloc's Filter and DomainFilter,
 * and the fnmatch patterns filters match filenames with (docs/design.md,
 * "Tracer").
 *
 * Patterns follow Python's fnmatch.fnmatchcase, not fnmatch(3): glibc also
 * negates a set with '^' and knows [:classes:], where Python takes both
 * literally, and its ranges follow the locale.  Here a pattern is compiled
 * the way fnmatch.translate builds its regular expression (quirks of sets
 * included) and matched code point by code point (text.c).  tracemalloc's
 * .pyc -> .py rewrite does not apply to C files, and os.path.normcase does
 * nothing on POSIX.
 */
#include "snapshot.h"

#include <limits.h>
#include <string.h>

void om_filter_init(om_filter *f, int inclusive,
                    const char *filename_pattern) {
    f->inclusive = inclusive;
    f->filename_pattern = filename_pattern;
    f->lineno = OM_FILTER_ANY_LINE;
    f->all_frames = 0;
    f->domain = OM_FILTER_ANY_DOMAIN;
}

void om_domain_filter_init(om_filter *f, int inclusive, unsigned domain) {
    om_filter_init(f, inclusive, NULL);
    f->domain = domain;
}

/* ---- patterns -------------------------------------------------------------------- */

/* One element of a compiled pattern; each but STAR matches one code
 * point.  Consecutive '*' are one STAR. */
typedef enum item_kind { ITEM_CHAR, ITEM_ANY, ITEM_STAR, ITEM_SET } item_kind;

typedef struct range {
    uint32_t lo, hi; /* lo <= hi */
} range;

typedef struct item {
    item_kind kind;
    uint32_t c;         /* ITEM_CHAR */
    size_t first, n;    /* ITEM_SET: its ranges (n = 0: matches nothing) */
    bool negate;        /* ITEM_SET */
} item;

/* A set under construction: its characters, and the hyphens between two
 * chunks that make a range (c is '-' for those too). */
typedef struct set_token {
    uint32_t c;
    bool hyphen;
    bool dead; /* dropped as part of an empty range */
} set_token;

/* Where the set opened by the '[' before p[i] closes (its ']'), or m when
 * it does not close and the '[' is a plain character.  A ']' right after
 * the '[' or "[!" belongs to the set. */
static size_t set_end(const uint32_t *p, size_t m, size_t i) {
    size_t j = i;
    if (j < m && p[j] == '!')
        j++;
    if (j < m && p[j] == ']')
        j++;
    while (j < m && p[j] != ']')
        j++;
    return j;
}

static bool has_hyphen(const uint32_t *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] == '-')
            return true;
    return false;
}

/* The set's contents s[0..len) as fnmatch.translate rewrites them: split
 * into chunks at the hyphens that make ranges (searching from the second
 * character, or the third after '!', and from two past each range's end);
 * an empty last chunk gives its hyphen back to the one before; then each
 * range whose ends are out of order is dropped, ends included, scanning
 * from the right.  Returns how many tokens are left in tok. */
static size_t set_tokens(const uint32_t *s, size_t len, set_token *tok) {
    size_t n = 0;
    if (!has_hyphen(s, len)) {
        for (size_t i = 0; i < len; i++)
            tok[n++] = (set_token){s[i], false, false};
        return n;
    }
    size_t start = 0;
    for (size_t k = s[0] == '!' ? 2 : 1; k < len; k++) {
        if (s[k] != '-')
            continue;
        while (start < k)
            tok[n++] = (set_token){s[start++], false, false};
        tok[n++] = (set_token){'-', true, false};
        start = k + 1;
        k += 2; /* the loop's k++ makes it the range end + 2 */
    }
    if (start == len)
        tok[n - 1].hyphen = false; /* the chunk before ends with a '-' */
    while (start < len)
        tok[n++] = (set_token){s[start++], false, false};
    /* Every chunk but the first and last has two characters or more, so
     * the ends compared here are never ones already dropped. */
    for (size_t p = n - 1; p > 0; p--)
        if (tok[p].hyphen && tok[p - 1].c > tok[p + 1].c)
            tok[p - 1].dead = tok[p].dead = tok[p + 1].dead = true;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (!tok[i].dead)
            tok[kept++] = tok[i];
    return kept;
}

/* The item for the set s[0..len), its ranges appended at ranges[*nranges],
 * read from the tokens as Python's re reads the class translate writes:
 * nothing left matches nothing, a lone '!' anything, a leading '!'
 * negates, and a range hyphen with no character before it (the '!' was)
 * is a plain '-'. */
static item compile_set(const uint32_t *s, size_t len, set_token *tok,
                        range *ranges, size_t *nranges) {
    size_t n = set_tokens(s, len, tok);
    item it = {.kind = ITEM_SET, .first = *nranges};
    if (n == 1 && !tok[0].hyphen && tok[0].c == '!')
        return (item){.kind = ITEM_ANY};
    size_t k = 0;
    if (n > 0 && !tok[0].hyphen && tok[0].c == '!') {
        it.negate = true;
        k = 1;
    }
    while (k < n) {
        range r = {tok[k].c, tok[k].c};
        if (k + 2 < n && tok[k + 1].hyphen) {
            r.hi = tok[k + 2].c;
            k += 3;
        } else {
            k += 1;
        }
        OM_ASSERT(r.lo <= r.hi); /* out-of-order ranges were dropped */
        ranges[(*nranges)++] = r;
        it.n++;
    }
    return it;
}

/* Scratch and output space for compiling patterns of up to m code
 * points: each yields at most m items and m ranges. */
typedef struct pattern_space {
    uint32_t *cps;
    set_token *tok;
    item *items;
    range *ranges;
} pattern_space;

/* Compile the m code points at p into items (returned count) and ranges
 * (count added to *nranges). */
static size_t compile_pattern(const uint32_t *p, size_t m,
                              const pattern_space *sp, size_t *nranges) {
    size_t n = 0;
    for (size_t i = 0; i < m;) {
        uint32_t c = p[i++];
        size_t j;
        if (c == '*') {
            if (n == 0 || sp->items[n - 1].kind != ITEM_STAR)
                sp->items[n++] = (item){.kind = ITEM_STAR};
        } else if (c == '?') {
            sp->items[n++] = (item){.kind = ITEM_ANY};
        } else if (c == '[' && (j = set_end(p, m, i)) < m) {
            sp->items[n++] =
                compile_set(p + i, j - i, sp->tok, sp->ranges, nranges);
            i = j + 1;
        } else {
            sp->items[n++] = (item){.kind = ITEM_CHAR, .c = c};
        }
    }
    return n;
}

/* A filter ready to match: its pattern compiled (none for a domain
 * filter). */
typedef struct cfilter {
    const om_filter *f;
    const item *items;
    size_t nitems;
    const range *ranges;
} cfilter;

static bool item_matches(const cfilter *cf, const item *it, uint32_t c) {
    switch (it->kind) {
    case ITEM_CHAR:
        return c == it->c;
    case ITEM_SET:
        for (size_t i = 0; i < it->n; i++) {
            const range *r = &cf->ranges[it->first + i];
            if (c >= r->lo && c <= r->hi)
                return !it->negate;
        }
        return it->negate;
    case ITEM_ANY:
    case ITEM_STAR: /* never asked: the walk handles stars itself */
        break;
    }
    return true;
}

/* Whether the whole of name matches.  Every item but STAR takes exactly
 * one code point, so on a mismatch only the latest STAR need take one
 * more: the classic glob walk, O(len(name) * items) at worst. */
static bool pattern_matches(const cfilter *cf, const char *name) {
    size_t p = 0, star = SIZE_MAX;
    const char *s = name, *star_s = NULL;
    while (*s) {
        if (p < cf->nitems && cf->items[p].kind == ITEM_STAR) {
            star = ++p;
            star_s = s;
            continue;
        }
        const char *next = s;
        uint32_t c = om_text_next(&next);
        if (p < cf->nitems && item_matches(cf, &cf->items[p], c)) {
            p++;
            s = next;
        } else if (star != SIZE_MAX) {
            p = star;
            om_text_next(&star_s);
            s = star_s;
        } else {
            return false;
        }
    }
    while (p < cf->nitems && cf->items[p].kind == ITEM_STAR)
        p++;
    return p == cf->nitems;
}

static size_t count_code_points(const char *s) {
    size_t n = 0;
    while (*s) {
        om_text_next(&s);
        n++;
    }
    return n;
}

/* The filters compiled, in one block from the raw allocator (free with
 * om_raw_free; NULL for no filters); OM_ERR_NOMEM if memory is short. */
static om_status compile_filters(om_runtime *rt, const om_filter *filters,
                                 size_t nfilters, cfilter **out) {
    *out = NULL;
    if (nfilters == 0)
        return OM_OK;
    size_t total = 0, longest = 0;
    for (size_t i = 0; i < nfilters; i++) {
        const char *pattern = filters[i].filename_pattern;
        size_t m = pattern ? count_code_points(pattern) : 0;
        if (m > SIZE_MAX - total)
            return OM_ERR_NOMEM;
        total += m;
        longest = m > longest ? m : longest;
    }
    /* Items and ranges for every pattern; code points and set tokens
     * for the longest, one pattern at a time.  Types in decreasing
     * alignment, so each part starts aligned. */
    size_t per_point = sizeof(item) + sizeof(range);
    size_t scratch = sizeof(uint32_t) + sizeof(set_token);
    if (nfilters > SIZE_MAX / 4 / sizeof(cfilter) ||
        total > SIZE_MAX / 4 / per_point ||
        longest > SIZE_MAX / 4 / scratch || !om_alloc_attempt(rt))
        return OM_ERR_NOMEM;
    cfilter *cfs = om_raw_malloc(rt, nfilters * sizeof(cfilter) +
                                         total * per_point +
                                         longest * scratch);
    if (!cfs)
        return OM_ERR_NOMEM;
    item *items = (item *)(cfs + nfilters);
    range *ranges = (range *)(items + total);
    pattern_space sp = {(uint32_t *)(ranges + total), NULL, items, ranges};
    sp.tok = (set_token *)(sp.cps + longest);
    for (size_t i = 0; i < nfilters; i++) {
        const char *text = filters[i].filename_pattern;
        size_t m = 0, nranges = 0;
        for (; text && *text; m++)
            sp.cps[m] = om_text_next(&text);
        size_t nitems = compile_pattern(sp.cps, m, &sp, &nranges);
        cfs[i] = (cfilter){&filters[i], sp.items, nitems, sp.ranges};
        sp.items += nitems;
        sp.ranges += nranges;
    }
    *out = cfs;
    return OM_OK;
}

/* ---- matching traces ------------------------------------------------------------- */

/* Filter._match_frame_impl. */
static bool frame_matches(const cfilter *cf, const om_frame *frame) {
    long lineno = cf->f->lineno;
    if (lineno != OM_FILTER_ANY_LINE &&
        (unsigned long)lineno != (unsigned long)frame->lineno)
        return false;
    return pattern_matches(cf, frame->filename);
}

/* Filter._match_traceback: the most recent frame, or with all_frames any
 * frame; exclusive filters answer the opposite. */
static bool traceback_matches(const cfilter *cf, const om_traceback *tb) {
    size_t n;
    const om_frame *frames = om_traceback_frames(tb, &n);
    bool inclusive = cf->f->inclusive != 0;
    if (!cf->f->all_frames)
        n = 1;
    for (size_t i = 0; i < n; i++)
        if (frame_matches(cf, &frames[i]))
            return inclusive;
    return !inclusive;
}

/* Filter._match and DomainFilter._match: true when the filter lets the
 * trace through.  An exclusive Filter with a domain drops only what
 * matches both its pattern and its domain. */
static bool trace_passes(const cfilter *cf, const om_trace *trace) {
    const om_filter *f = cf->f;
    bool inclusive = f->inclusive != 0;
    bool same_domain = (long long)trace->domain == f->domain;
    if (!f->filename_pattern)
        return same_domain == inclusive;
    if (f->domain == OM_FILTER_ANY_DOMAIN)
        return traceback_matches(cf, trace->traceback);
    if (inclusive)
        return same_domain && traceback_matches(cf, trace->traceback);
    return !same_domain || traceback_matches(cf, trace->traceback);
}

/* Snapshot._filter_trace: with inclusive filters one must let the trace
 * through, and every exclusive one must. */
static bool keep_trace(const cfilter *cfs, size_t n, const om_trace *trace) {
    bool any_inclusive = false, included = false;
    for (size_t i = 0; i < n; i++) {
        if (cfs[i].f->inclusive) {
            any_inclusive = true;
            included = included || trace_passes(&cfs[i], trace);
        } else if (!trace_passes(&cfs[i], trace)) {
            return false;
        }
    }
    return !any_inclusive || included;
}

/* ---- filter_traces --------------------------------------------------------------- */

static om_status check_filters(om_runtime *rt, const om_filter *filters,
                               size_t n) {
    if (n && !filters)
        return om_error(rt, OM_ERR_ARG,
                        "om_snapshot_filter_traces: filters is NULL and "
                        "nfilters is %zu",
                        n);
    for (size_t i = 0; i < n; i++) {
        const om_filter *f = &filters[i];
        if (f->domain < OM_FILTER_ANY_DOMAIN || f->domain > UINT_MAX)
            return om_error(rt, OM_ERR_ARG,
                            "om_snapshot_filter_traces: filter %zu: domain "
                            "%lld is neither OM_FILTER_ANY_DOMAIN nor in "
                            "[0; %u]",
                            i, f->domain, UINT_MAX);
        if (!f->filename_pattern && f->domain == OM_FILTER_ANY_DOMAIN)
            return om_error(rt, OM_ERR_ARG,
                            "om_snapshot_filter_traces: filter %zu: a domain "
                            "filter (no filename_pattern) needs a domain",
                            i);
        if (f->lineno < OM_FILTER_ANY_LINE)
            return om_error(rt, OM_ERR_ARG,
                            "om_snapshot_filter_traces: filter %zu: lineno "
                            "%ld is neither OM_FILTER_ANY_LINE nor a line "
                            "(>= 0)",
                            i, f->lineno);
    }
    return OM_OK;
}

/* The copy in dst of tb, a traceback of the source snapshot: made on
 * first use, then found through `copies` (tb -> 1 + the index of the
 * first trace of dst holding the copy).  NULL when memory is short. */
static const om_traceback *copy_traceback(om_snapshot *dst,
                                          const om_ptrmap_slot *slot,
                                          const om_traceback *tb) {
    if (slot->value)
        return dst->traces[slot->value - 1].traceback;
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    for (size_t i = 0; i < tb->nframes; i++) {
        const om_frame *f = &tb->frames[i];
        frames[i].filename =
            om_snapshot_intern_string(dst, f->filename, strlen(f->filename));
        frames[i].function =
            om_snapshot_intern_string(dst, f->function, strlen(f->function));
        frames[i].lineno = f->lineno;
        if (!frames[i].filename || !frames[i].function)
            return NULL;
    }
    return om_snapshot_intern_traceback(dst, frames, tb->nframes,
                                        tb->total_nframe);
}

/* Append to dst a copy of each trace of src the filters keep. */
static om_status copy_kept(const om_snapshot *src, om_snapshot *dst,
                           const cfilter *cfs, size_t nfilters,
                           om_ptrmap *copies) {
    for (size_t i = 0; i < src->ntraces; i++) {
        const om_trace *t = &src->traces[i];
        if (!keep_trace(cfs, nfilters, t))
            continue;
        om_ptrmap_slot *slot = om_ptrmap_slot_of(copies, t->traceback);
        const om_traceback *tb = copy_traceback(dst, slot, t->traceback);
        if (!tb || om_snapshot_append(dst, t->domain, t->size, tb) != OM_OK)
            return OM_ERR_NOMEM;
        if (!slot->value)
            slot->value = dst->ntraces;
    }
    return OM_OK;
}

om_snapshot *om_snapshot_filter_traces(const om_snapshot *snap,
                                       const om_filter *filters,
                                       size_t nfilters) {
    if (!snap)
        return NULL;
    om_runtime *rt = snap->rt;
    if (check_filters(rt, filters, nfilters) != OM_OK)
        return NULL;
    cfilter *cfs;
    om_snapshot *dst = NULL;
    om_ptrmap copies = {rt, NULL, 0, 0};
    om_status st = compile_filters(rt, filters, nfilters, &cfs);
    if (st == OM_OK) {
        dst = om_snapshot_new(rt, snap->traceback_limit);
        st = dst ? om_ptrmap_init(&copies, rt, snap->tracebacks.count)
                 : OM_ERR_NOMEM;
    }
    if (st == OM_OK)
        st = copy_kept(snap, dst, cfs, nfilters, &copies);
    om_ptrmap_free(&copies);
    om_raw_free(rt, cfs);
    if (st != OM_OK) {
        om_snapshot_free(dst);
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_snapshot_filter_traces: out of memory");
    }
    return dst;
}
