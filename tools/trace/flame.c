/*
 * flame.c — `objmem-trace flamegraph` (flame.h).  Every traceback with
 * live bytes is a path of frame labels, outermost first, in a tree whose
 * nodes add up the bytes beneath them: sibling frames with the same label
 * are one node, as a flame graph draws them.  The collapsed output is the
 * tree's paths, one line each ("main;parse;xmalloc 4096", as Brendan
 * Gregg's stackcollapse scripts write and flamegraph.pl, speedscope and
 * inferno read); the SVG draws the tree itself, a rectangle per node,
 * width for bytes, the root ("all") at the bottom.
 */
#define _GNU_SOURCE
#include "flame.h"

#include "print.h"
#include "resolve.h"
#include "svg.h"
#include "tracefile.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Node 0 is the root; 0 as a child or sibling index means none. */
typedef struct node {
    const char *label; /* interned */
    const char *file;  /* the frames' source file, NULL when they differ */
    uint32_t parent, child, next;
    unsigned depth;    /* the root's is 0 */
    uint64_t bytes, count; /* of every stack through this node */
    uint64_t self;     /* bytes of the stacks that end here */
} node;

typedef struct tree {
    node *nodes;
    size_t n, capacity;
    uint32_t *table; /* node index, 0 empty (the root is never looked up) */
    size_t table_capacity;
    unsigned depth;  /* the deepest node's */
    omt_strings *strings;
} tree;

#define TRUNCATED "[truncated]"

static uint64_t hash_child(uint32_t parent, const char *label) {
    uint64_t h = ((uint64_t)parent << 32 | 0x9e3779b9u) ^ (uint64_t)(uintptr_t)label;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static bool table_grow(tree *t) {
    size_t cap = t->table_capacity ? t->table_capacity * 2 : 1024;
    uint32_t *a = calloc(cap, sizeof *a);
    if (!a)
        return false;
    for (size_t i = 1; i < t->n; i++) {
        size_t j = hash_child(t->nodes[i].parent, t->nodes[i].label) & (cap - 1);
        while (a[j])
            j = (j + 1) & (cap - 1);
        a[j] = (uint32_t)i;
    }
    free(t->table);
    t->table = a;
    t->table_capacity = cap;
    return true;
}

/* The child of parent labelled label, made if new; 0 when memory is
 * short. */
static uint32_t child(tree *t, uint32_t parent, const char *label,
                      const char *file) {
    if ((t->n + 1) * 2 > t->table_capacity && !table_grow(t))
        return 0;
    size_t mask = t->table_capacity - 1, j = hash_child(parent, label) & mask;
    for (; t->table[j]; j = (j + 1) & mask) {
        node *c = &t->nodes[t->table[j]];
        if (c->parent == parent && c->label == label) {
            if (c->file != file)
                c->file = NULL;
            return t->table[j];
        }
    }
    if (t->n == t->capacity) {
        size_t cap = t->capacity * 2;
        node *a = cap < UINT32_MAX ? realloc(t->nodes, cap * sizeof *a) : NULL;
        if (!a)
            return 0;
        t->nodes = a;
        t->capacity = cap;
    }
    uint32_t i = (uint32_t)t->n++;
    node *p = &t->nodes[parent];
    t->nodes[i] = (node){label, file, parent, 0, p->child, p->depth + 1, 0, 0, 0};
    p->child = i;
    if (t->nodes[i].depth > t->depth)
        t->depth = t->nodes[i].depth;
    t->table[j] = i;
    return i;
}

/* A frame's label: its function, else "module+0xoffset" (the module's
 * file name), else "<unknown>".  ';' separates frames in the collapsed
 * format, and a line ends a stack: neither may appear inside a label. */
static const char *label_of(tree *t, const omt_sym *s) {
    char buf[1024];
    if (s->function != omt_unknown)
        snprintf(buf, sizeof buf, "%s", s->function);
    else if (s->module != omt_unknown) {
        const char *base = strrchr(s->module, '/');
        snprintf(buf, sizeof buf, "%s+0x%" PRIx64, base ? base + 1 : s->module,
                 s->offset);
    } else
        return omt_unknown;
    for (char *c = buf; *c; c++)
        if (*c == ';')
            *c = ':';
        else if (*c == '\n' || *c == '\r')
            *c = ' ';
    return omt_intern(t->strings, buf);
}

static bool add_stack(tree *t, omt_resolver *r, const omt_rtraceback *tb,
                      const omt_value *v) {
    uint32_t at = 0;
    t->nodes[0].bytes += v->bytes;
    t->nodes[0].count += v->count;
    if (tb->total_nframe > tb->nframes) {
        /* Its outermost frames are missing: keep it apart from stacks
         * that do start at the program's entry. */
        if (!(at = child(t, at, omt_intern(t->strings, TRUNCATED), NULL)))
            return false;
        t->nodes[at].bytes += v->bytes;
        t->nodes[at].count += v->count;
    }
    for (unsigned k = tb->nframes; k-- > 0;) {
        const omt_sym *s = omt_resolve(r, tb->frames[k]);
        if (!(at = child(t, at, label_of(t, s), s->line ? s->file : NULL)))
            return false;
        t->nodes[at].bytes += v->bytes;
        t->nodes[at].count += v->count;
    }
    t->nodes[at].self += v->bytes;
    return true;
}

static int by_label(const void *pa, const void *pb) {
    const node *const *a = pa, *const *b = pb;
    return strcmp((*a)->label, (*b)->label);
}

/* Relink every node's children in the order of their labels (the order
 * flamegraph.pl draws them in, and a stable output). */
static bool sort_children(tree *t) {
    node **kids = malloc(t->n * sizeof *kids);
    if (!kids)
        return false;
    for (size_t i = 0; i < t->n; i++) {
        size_t n = 0;
        for (uint32_t c = t->nodes[i].child; c; c = t->nodes[c].next)
            kids[n++] = &t->nodes[c];
        if (n < 2)
            continue;
        qsort(kids, n, sizeof *kids, by_label);
        t->nodes[i].child = (uint32_t)(kids[0] - t->nodes);
        for (size_t k = 0; k + 1 < n; k++)
            kids[k]->next = (uint32_t)(kids[k + 1] - t->nodes);
        kids[n - 1]->next = 0;
    }
    free(kids);
    return true;
}

static bool build(tree *t, const omt_file *f, bool peak) {
    t->capacity = 1024;
    t->nodes = malloc(t->capacity * sizeof *t->nodes);
    t->strings = omt_strings_new();
    omt_resolver *r = t->strings ? omt_resolver_new(f, t->strings) : NULL;
    bool ok = t->nodes && r;
    if (ok) {
        t->nodes[0] = (node){"all", NULL, 0, 0, 0, 0, 0, 0, 0};
        t->n = 1;
    }
    const omt_value *values = peak ? f->peak : f->current;
    for (uint32_t id = 1; ok && id <= f->ntracebacks; id++)
        if (values[id].bytes)
            ok = add_stack(t, r, &f->tracebacks[id - 1], &values[id]);
    ok = ok && sort_children(t);
    omt_resolver_free(r);
    if (!ok)
        fprintf(stderr, "objmem-trace: out of memory\n");
    return ok;
}

static void tree_free(tree *t) {
    free(t->nodes);
    free(t->table);
    omt_strings_free(t->strings);
}

/* ---- collapsed stacks ------------------------------------------------------- */

static void write_collapsed(const tree *t, uint32_t at, const char **path,
                            FILE *out) {
    const node *nd = &t->nodes[at];
    if (at)
        path[nd->depth - 1] = nd->label;
    if (at && nd->self) {
        for (unsigned k = 0; k < nd->depth; k++)
            fprintf(out, "%s%s", k ? ";" : "", path[k]);
        fprintf(out, " %" PRIu64 "\n", nd->self);
    }
    for (uint32_t c = nd->child; c; c = t->nodes[c].next)
        write_collapsed(t, c, path, out);
}

/* ---- SVG -------------------------------------------------------------------- */

enum {
    SVG_WIDTH = 1200,
    SVG_PAD = 10,        /* left and right */
    SVG_HEAD = 58,       /* the title and the subtitle */
    SVG_FOOT = 26,       /* the note below the frames */
    FRAME_HEIGHT = 16
};
#define MIN_WIDTH 0.1    /* px; narrower frames are not drawn */
#define CHAR_WIDTH 7.0   /* px of a 11 px monospace character */

typedef struct drawing {
    const tree *t;
    FILE *out;
    double scale;        /* px per byte */
    size_t omitted;      /* nodes too narrow to draw */
} drawing;

/* flamegraph.pl's warm colours, picked by the label so that a function
 * keeps its colour wherever it appears. */
static void colour(const char *label, unsigned rgb[3]) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *c = label; *c; c++)
        h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
    rgb[0] = 205 + (unsigned)(h % 51);
    rgb[1] = (unsigned)((h >> 16) % 231);
    rgb[2] = (unsigned)((h >> 32) % 56);
}

static size_t subtree_size(const tree *t, uint32_t at) {
    size_t n = 1;
    for (uint32_t c = t->nodes[at].child; c; c = t->nodes[c].next)
        n += subtree_size(t, c);
    return n;
}

static void draw(drawing *d, uint32_t at, double x) {
    const node *nd = &d->t->nodes[at];
    double w = (double)nd->bytes * d->scale;
    if (w < MIN_WIDTH) {
        d->omitted += subtree_size(d->t, at);
        return;
    }
    FILE *out = d->out;
    double y = SVG_HEAD + (double)(d->t->depth - nd->depth) * FRAME_HEIGHT;
    char size[32];
    unsigned rgb[3];
    omt_size_text(size, sizeof size, (double)nd->bytes, false);
    colour(nd->label, rgb);
    fputs("<g class=\"frame\"><title>", out);
    omt_svg_text(out, nd->label);
    if (nd->file) {
        fputs(" (", out);
        omt_svg_text(out, nd->file);
        fputc(')', out);
    }
    fprintf(out, ": %s (%" PRIu64 " bytes) in %" PRIu64 " blocks, %.2f%%</title>"
                 "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" rx=\"2\" "
                 "fill=\"rgb(%u,%u,%u)\"/>",
            size, nd->bytes, nd->count,
            100.0 * (double)nd->bytes / (double)d->t->nodes[0].bytes, x, y, w,
            FRAME_HEIGHT - 1, rgb[0], rgb[1], rgb[2]);
    size_t chars = w > 6 ? (size_t)((w - 6) / CHAR_WIDTH) : 0;
    if (chars >= 3) {
        fprintf(out, "<text class=\"label\" x=\"%.2f\" y=\"%.1f\">", x + 3,
                y + FRAME_HEIGHT - 4.5);
        omt_svg_text_cut(out, nd->label, chars);
        fputs("</text>", out);
    }
    fputs("</g>\n", out);
    for (uint32_t c = nd->child; c; c = d->t->nodes[c].next) {
        draw(d, c, x);
        x += (double)d->t->nodes[c].bytes * d->scale;
    }
}

static void write_svg(const tree *t, const omt_file *f, const char *path,
                      bool peak, FILE *out) {
    double height = SVG_HEAD + (t->depth + 1) * FRAME_HEIGHT + SVG_FOOT;
    char title[512], size[32];
    const char *exe = f->exe && *f->exe ? f->exe : "the program";
    snprintf(title, sizeof title, "Heap flame graph of %s (pid %" PRIu32 ")", exe,
             f->pid);
    omt_svg_begin(out, SVG_WIDTH, height, title);
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\">",
            SVG_WIDTH / 2);
    omt_svg_text(out, title);
    omt_size_text(size, sizeof size, (double)t->nodes[0].bytes, false);
    fprintf(out, "</text>\n<text class=\"note\" x=\"%d\" y=\"44\" "
                 "text-anchor=\"middle\">live heap %s: %s%s in %s%" PRIu64
                 " blocks; width is bytes allocated by each stack and not yet "
                 "freed; trace ",
            SVG_WIDTH / 2, peak ? "at the peak" : "at the end", omt_approx(f), size,
            omt_approx(f), t->nodes[0].count);
    omt_svg_text(out, path);
    omt_print_sampling(out, f, "; ", "");
    fputs("</text>\n", out);
    drawing d = {t, out, 0, 0};
    if (t->nodes[0].bytes) {
        d.scale = (double)(SVG_WIDTH - 2 * SVG_PAD) / (double)t->nodes[0].bytes;
        draw(&d, 0, SVG_PAD);
    }
    double note_y = height - 9;
    if (!t->nodes[0].bytes)
        fprintf(out, "<text class=\"note\" id=\"empty\" x=\"%d\" y=\"%.0f\">"
                     "the heap is empty: nothing to draw</text>\n",
                SVG_PAD, note_y);
    else if (d.omitted)
        fprintf(out, "<text class=\"note\" id=\"omitted\" x=\"%d\" y=\"%.0f\">"
                     "%zu frame%s narrower than %.1f px not drawn</text>\n",
                SVG_PAD, note_y, d.omitted, d.omitted == 1 ? "" : "s", MIN_WIDTH);
    omt_svg_end(out);
}

bool omt_flamegraph(const omt_file *f, const char *path,
                    const omt_flame_options *o, FILE *out) {
    tree t = {0};
    bool ok = build(&t, f, o->peak);
    if (ok && o->svg) {
        write_svg(&t, f, path, o->peak, out);
    } else if (ok) {
        const char *frames[OMT_MAX_FRAMES + 1]; /* + TRUNCATED */
        write_collapsed(&t, 0, frames, out);
    }
    tree_free(&t);
    return ok;
}
