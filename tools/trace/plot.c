/*
 * plot.c — `objmem-trace plot` (plot.h).  The recorder samples the traced
 * heap and the resident set size at every flush (SAMPLES chunks), and
 * keeps the heap's exact peak apart (STATE): a peak between two flushes
 * is higher than either sample.  So the heap's line goes through the
 * exact peak at its time, and the peak is marked there, with dashed lines
 * to both axes and its figures, as `mprof plot` marks its maximum.
 */
#define _GNU_SOURCE
#include "plot.h"

#include "print.h"
#include "svg.h"
#include "tracefile.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
    WIDTH = 960,
    HEIGHT = 540,
    LEFT = 90,   /* room for the memory axis' labels */
    RIGHT = 30,
    TOP = 70,    /* the title and the subtitle */
    BOTTOM = 60, /* the time axis' labels and title */
    PLOT_W = WIDTH - LEFT - RIGHT,
    PLOT_H = HEIGHT - TOP - BOTTOM,
    MARKED_SAMPLES = 60 /* a dot on each sample up to this many */
};

#define HEAP_COLOUR "#1f77b4"
#define RSS_COLOUR "#ff7f0e"
#define PEAK_COLOUR "#d62728"
#define CHAR_WIDTH 6.7 /* px of an 11 px monospace character */

/* An axis from 0 to top in steps, in a unit of `scale` raw units. */
typedef struct axis {
    double scale, step, top;
    int decimals;       /* of the tick labels */
    const char *unit;
} axis;

/* 1, 2 or 5 times a power of ten, the smallest at least range / ticks. */
static double nice_step(double range, int ticks) {
    double raw = range / ticks, p = 1;
    while (p * 10 <= raw)
        p *= 10;
    while (p > raw)
        p /= 10;
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static axis make_axis(double max, double scale, const char *unit, int ticks) {
    axis a = {scale, 0, 0, 0, unit};
    double range = max / scale;
    a.step = nice_step(range > 0 ? range : 1, ticks);
    /* At least one step, and headroom above the highest point. */
    int n = (int)(range * 1.04 / a.step) + 1;
    a.top = n * a.step;
    for (double v = a.step; v < 0.999999 && a.decimals < 9; v *= 10)
        a.decimals++;
    return a;
}

/* The memory axis in the binary unit its largest value reads best in. */
static axis memory_axis(uint64_t max) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double scale = 1;
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof *units && (double)max >= 1024 * scale) {
        scale *= 1024;
        u++;
    }
    return make_axis((double)max, scale, units[u], 5);
}

static double px_x(const axis *a, uint64_t t) {
    return LEFT + (double)t / a->scale / a->top * PLOT_W;
}

static double px_y(const axis *a, uint64_t v) {
    return TOP + PLOT_H - (double)v / a->scale / a->top * PLOT_H;
}

static void ticks(FILE *out, const axis *a, bool horizontal) {
    int n = (int)(a->top / a->step + 0.5);
    for (int i = 0; i <= n; i++) {
        double v = i * a->step, frac = v / a->top;
        if (horizontal) {
            double x = LEFT + frac * PLOT_W;
            fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                         "stroke=\"#e4e4e4\"/>"
                         "<text class=\"label\" x=\"%.1f\" y=\"%d\" "
                         "text-anchor=\"middle\">%.*f</text>\n",
                    x, TOP, x, TOP + PLOT_H, x, TOP + PLOT_H + 16, a->decimals, v);
        } else {
            double y = TOP + PLOT_H - frac * PLOT_H;
            fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                         "stroke=\"#e4e4e4\"/>"
                         "<text class=\"label\" x=\"%d\" y=\"%.1f\" "
                         "text-anchor=\"end\">%.*f</text>\n",
                    LEFT, y, LEFT + PLOT_W, y, LEFT - 6, y + 4, a->decimals, v);
        }
    }
}

static void axes(FILE *out, const axis *x, const axis *y) {
    fputs("<g id=\"grid\">\n", out);
    ticks(out, x, true);
    ticks(out, y, false);
    fprintf(out, "</g>\n<g id=\"axes\"><polyline fill=\"none\" stroke=\"#000\" "
                 "points=\"%d,%d %d,%d %d,%d\"/>\n"
                 "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (%s)</text>\n"
                 "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 %d %d)\">memory (%s)</text></g>\n",
            LEFT, TOP, LEFT, TOP + PLOT_H, LEFT + PLOT_W, TOP + PLOT_H,
            LEFT + PLOT_W / 2, HEIGHT - 14, x->unit, 20, TOP + PLOT_H / 2, 20,
            TOP + PLOT_H / 2, y->unit);
}

typedef struct point {
    uint64_t t, v;
} point;

static void series(FILE *out, const char *id, const char *colour,
                   const point *p, size_t n, const axis *x, const axis *y) {
    fprintf(out, "<g id=\"%s\"><polyline fill=\"none\" stroke=\"%s\" "
                 "stroke-width=\"1.5\" points=\"",
            id, colour);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%.1f,%.1f", i ? " " : "", px_x(x, p[i].t), px_y(y, p[i].v));
    fputs("\"/>\n", out);
    if (n <= MARKED_SAMPLES)
        for (size_t i = 0; i < n; i++)
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>",
                    px_x(x, p[i].t), px_y(y, p[i].v), colour);
    fputs("</g>\n", out);
}

static void peak_mark(FILE *out, const omt_file *f, const axis *x, const axis *y) {
    double px = px_x(x, f->peak_t), py = px_y(y, f->peak_bytes);
    char size[32];
    omt_size_text(size, sizeof size, (double)f->peak_bytes, false);
    /* The label goes on the side with more room. */
    bool left = px > LEFT + PLOT_W / 2;
    fprintf(out,
            "<g id=\"peak\"><title>peak of the traced heap: %" PRIu64
            " bytes (%s) in %" PRIu64 " blocks at %.3f s</title>\n"
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-dasharray=\"4 3\"/>"
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" "
            "stroke-dasharray=\"4 3\"/>\n"
            "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\" fill=\"none\" stroke=\"%s\" "
            "stroke-width=\"2\"/>\n"
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" fill=\"%s\">peak %s at "
            "%.3f s</text></g>\n",
            f->peak_bytes, size, f->peak_blocks, omt_seconds(f->peak_t), LEFT, py,
            px, py, PEAK_COLOUR, px, py, px, TOP + PLOT_H, PEAK_COLOUR, px, py,
            PEAK_COLOUR, left ? px - 8 : px + 8, py - 8, left ? "end" : "start",
            PEAK_COLOUR, size, omt_seconds(f->peak_t));
}

static void legend(FILE *out, const omt_file *f, bool rss, uint64_t rss_max) {
    char heap_text[80], rss_text[80], size[32];
    omt_size_text(size, sizeof size, (double)f->peak_bytes, false);
    snprintf(heap_text, sizeof heap_text, "traced heap (peak %s%s, %s)",
             omt_approx(f), size, f->sample_rate ? "estimated" : "exact");
    omt_size_text(size, sizeof size, (double)rss_max, false);
    snprintf(rss_text, sizeof rss_text, "resident set size (highest sample %s)", size);
    /* Right-aligned in the plot, by the longer label's width. */
    size_t chars = strlen(rss && strlen(rss_text) > strlen(heap_text) ? rss_text
                                                                       : heap_text);
    int x = LEFT + PLOT_W - 40 - (int)((double)chars * CHAR_WIDTH), y = TOP + 16;
    fprintf(out, "<g id=\"legend\"><line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                 "stroke=\"%s\" stroke-width=\"2\"/><text class=\"label\" x=\"%d\" "
                 "y=\"%d\">%s</text>\n",
            x, y - 4, x + 24, y - 4, HEAP_COLOUR, x + 30, y, heap_text);
    if (rss)
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                     "stroke-width=\"2\"/><text class=\"label\" x=\"%d\" y=\"%d\">"
                     "%s</text>\n",
                x, y + 12, x + 24, y + 12, RSS_COLOUR, x + 30, y + 16, rss_text);
    fputs("</g>\n", out);
}

static void heading(FILE *out, const omt_file *f, const char *path,
                    const char *title) {
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"26\" text-anchor=\"middle\">",
            WIDTH / 2);
    omt_svg_text(out, title);
    fprintf(out, "</text>\n<text class=\"note\" x=\"%d\" y=\"46\" "
                 "text-anchor=\"middle\">trace ",
            WIDTH / 2);
    omt_svg_text(out, path);
    fputs("; ", out);
    char *ending = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&ending, &len);
    if (mem) {
        omt_print_ending(mem, f);
        fclose(mem);
    }
    omt_svg_text(out, ending ? ending : "");
    free(ending);
    fprintf(out, "; sampled every %" PRIu32 " ms", f->interval_ms);
    omt_print_sampling(out, f, "; allocations ", "");
    fputs("</text>\n", out);
}

bool omt_plot(const omt_file *f, const char *path, FILE *out) {
    /* The heap's samples with the exact peak in its place in time; a
     * recording that began with the program began with an empty heap. */
    point *heap = malloc((f->nsamples + 2) * sizeof *heap);
    point *rss = malloc((f->nsamples ? f->nsamples : 1) * sizeof *rss);
    if (!heap || !rss) {
        free(heap);
        free(rss);
        fprintf(stderr, "objmem-trace: out of memory\n");
        return false;
    }
    size_t nheap = 0;
    if (f->origin == OMT_ORIGIN_START)
        heap[nheap++] = (point){0, 0};
    uint64_t t_max = f->t > f->peak_t ? f->t : f->peak_t, v_max = f->peak_bytes,
             rss_max = 0;
    bool peak_placed = false;
    for (size_t i = 0; i < f->nsamples; i++) {
        const omt_rsample *s = &f->samples[i];
        if (!peak_placed && s->t > f->peak_t) {
            heap[nheap++] = (point){f->peak_t, f->peak_bytes};
            peak_placed = true;
        }
        heap[nheap++] = (point){s->t, s->heap};
        rss[i] = (point){s->t, s->rss};
        t_max = s->t > t_max ? s->t : t_max;
        v_max = s->heap > v_max ? s->heap : v_max;
        rss_max = s->rss > rss_max ? s->rss : rss_max;
    }
    if (!peak_placed)
        heap[nheap++] = (point){f->peak_t, f->peak_bytes};
    v_max = rss_max > v_max ? rss_max : v_max;
    /* Time in seconds; memory in the unit its largest value reads in. */
    axis x = make_axis((double)(t_max ? t_max : 1000000), 1e9, "s", 8);
    axis y = memory_axis(v_max ? v_max : 1024);

    char title[512];
    snprintf(title, sizeof title, "Memory of %s (pid %" PRIu32 ")",
             f->exe && *f->exe ? f->exe : "the program", f->pid);
    omt_svg_begin(out, WIDTH, HEIGHT, title);
    heading(out, f, path, title);
    axes(out, &x, &y);
    if (rss_max) /* no RSS where /proc could not be read */
        series(out, "rss", RSS_COLOUR, rss, f->nsamples, &x, &y);
    series(out, "heap", HEAP_COLOUR, heap, nheap, &x, &y);
    peak_mark(out, f, &x, &y);
    legend(out, f, rss_max != 0, rss_max);
    omt_svg_end(out);
    free(heap);
    free(rss);
    return true;
}
