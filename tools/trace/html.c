/*
 * html.c — `objmem-trace html` (html.h).  Every text from the trace (the
 * command, paths, function names) goes through omt_svg_text, whose
 * escaping serves HTML as it serves XML.  The drawings are the SVG
 * documents flamegraph --svg and plot write, inlined without their XML
 * declaration.  The page's script only reads the page (it sorts the
 * table and fills in #rendered), so that a page whose script did not run
 * still shows everything.
 */
#define _GNU_SOURCE
#include "html.h"

#include "flame.h"
#include "group.h"
#include "plot.h"
#include "print.h"
#include "report.h"
#include "svg.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define TOP_SITES 20

static const char style[] =
    "body { font-family: sans-serif; margin: 1em 2em; color: #222; }\n"
    "h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }\n"
    "table { border-collapse: collapse; font-size: 0.9em; }\n"
    "th, td { padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; }\n"
    "td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }\n"
    "#sites th { cursor: pointer; background: #f0f0f0; }\n"
    "code { font-size: 0.95em; }\n"
    ".drawing { overflow-x: auto; }\n"
    ".drawing svg { max-width: 100%; height: auto; }\n"
    "#rendered { color: #777; font-size: 0.8em; }\n";

/* Sort the sites table by a clicked column; fill in #rendered. */
static const char script[] =
    "(function () {\n"
    "  var table = document.getElementById('sites');\n"
    "  var body = table.tBodies[0];\n"
    "  var heads = table.tHead.rows[0].cells;\n"
    "  function key(row, i) {\n"
    "    var c = row.cells[i];\n"
    "    var v = c.getAttribute('data-v');\n"
    "    return v === null ? c.textContent : Number(v);\n"
    "  }\n"
    "  Array.prototype.forEach.call(heads, function (th, i) {\n"
    "    th.addEventListener('click', function () {\n"
    "      var rows = Array.prototype.slice.call(body.rows);\n"
    "      var down = th.getAttribute('data-down') !== 'yes';\n"
    "      rows.sort(function (a, b) {\n"
    "        var x = key(a, i), y = key(b, i);\n"
    "        return (x === y ? 0 : x > y ? 1 : -1) * (down ? -1 : 1);\n"
    "      });\n"
    "      rows.forEach(function (r) { body.appendChild(r); });\n"
    "      th.setAttribute('data-down', down ? 'yes' : 'no');\n"
    "    });\n"
    "  });\n"
    "  var frames = document.querySelectorAll('#flame g.frame').length;\n"
    "  var mark = document.getElementById('rendered');\n"
    "  mark.textContent = 'rendered: ' + body.rows.length + ' sites, ' +\n"
    "    frames + ' flame graph frames';\n"
    "  mark.setAttribute('data-rendered', 'yes');\n"
    "})();\n";

/* printf, escaped. */
static void text(FILE *out, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    omt_svg_text(out, buf);
}

/* What write(f, out) writes, escaped; false when memory is short. */
static bool captured(FILE *out, const omt_file *f,
                     void (*write)(FILE *, const omt_file *)) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return false;
    write(m, f);
    if (fclose(m) != 0)
        return false;
    omt_svg_text(out, buf);
    free(buf);
    return true;
}

/* An SVG drawing without its XML declaration; false when memory is
 * short. */
static bool drawing(FILE *out, const omt_file *f, const char *path, bool flame,
                    bool peak) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m)
        return false;
    omt_flame_options o = {peak, true};
    bool ok = flame ? omt_flamegraph(f, path, &o, m) : omt_plot(f, path, m);
    if (fclose(m) != 0)
        ok = false;
    if (ok) {
        const char *svg = strstr(buf, "<svg");
        fputs(svg ? svg : buf, out);
    }
    free(buf);
    return ok;
}

static void row(FILE *out, const char *name) {
    fprintf(out, "<tr><th>%s</th><td>", name);
}

static void summary(FILE *out, const omt_file *f, const char *path) {
    char a[32], b[32];
    fputs("<h2>Summary</h2>\n<table id=\"summary\">\n", out);
    row(out, "trace");
    omt_svg_text(out, path);
    fputs("</td></tr>\n", out);
    row(out, "program");
    fputs("<code>", out);
    captured(out, f, omt_print_command);
    fputs("</code></td></tr>\n", out);
    row(out, "pid");
    fprintf(out, "%" PRIu32 "%s</td></tr>\n", f->pid,
            f->origin == 1 ? " (forked)" : "");
    row(out, "ended");
    captured(out, f, omt_print_ending);
    fputs("</td></tr>\n", out);
    row(out, "duration");
    fprintf(out, "%.3f s</td></tr>\n", omt_seconds(f->t));
    omt_size_text(a, sizeof a, (double)f->current_bytes, false);
    row(out, "heap at the end");
    fprintf(out, "<span id=\"end-bytes\">%" PRIu64 "</span> bytes (%s) in "
                 "<span id=\"end-blocks\">%" PRIu64 "</span> blocks</td></tr>\n",
            f->current_bytes, a, f->current_blocks);
    omt_size_text(b, sizeof b, (double)f->peak_bytes, false);
    row(out, "peak heap");
    fprintf(out, "<span id=\"peak-bytes\">%" PRIu64 "</span> bytes (%s) in "
                 "%" PRIu64 " blocks at %.3f s</td></tr>\n",
            f->peak_bytes, b, f->peak_blocks, omt_seconds(f->peak_t));
    omt_size_text(a, sizeof a, (double)f->alloc_bytes, false);
    row(out, "allocations");
    fprintf(out, "<span id=\"allocs\">%" PRIu64 "</span> (%s in all)", f->allocs, a);
    if (f->lost)
        fprintf(out, "; %" PRIu64 " not traced (the tracer ran out of memory)",
                f->lost);
    fputs("</td></tr>\n</table>\n", out);
}

static bool sites(FILE *out, const omt_file *f, bool peak) {
    omt_grouping g;
    if (!omt_grouping_of(&g, OMT_BY_LINE, f, peak))
        return false;
    size_t shown = g.ngroups < TOP_SITES ? g.ngroups : TOP_SITES;
    fprintf(out, "<h2>Top %zu sites %s</h2>\n"
                 "<table id=\"sites\">\n<thead><tr><th class=\"n\">#</th>"
                 "<th class=\"n\">bytes</th><th class=\"n\">blocks</th>"
                 "<th class=\"n\">average</th><th class=\"n\">%%</th>"
                 "<th>site</th><th>function</th></tr></thead>\n<tbody>\n",
            shown, peak ? "at the peak" : "at the end");
    uint64_t heap = g.total[0].bytes;
    for (size_t i = 0; i < shown; i++) {
        const omt_group *gr = &g.groups[i];
        const omt_value *v = &gr->v[0];
        uint64_t avg = v->count ? v->bytes / v->count : 0;
        double pct = heap ? 100.0 * (double)v->bytes / (double)heap : 0.0;
        fprintf(out, "<tr><td class=\"n\" data-v=\"%zu\">%zu</td>"
                     "<td class=\"n\" data-v=\"%" PRIu64 "\">%" PRIu64 "</td>"
                     "<td class=\"n\" data-v=\"%" PRIu64 "\">%" PRIu64 "</td>"
                     "<td class=\"n\" data-v=\"%" PRIu64 "\">%" PRIu64 "</td>"
                     "<td class=\"n\" data-v=\"%.4f\">%.1f</td><td>",
                i + 1, i + 1, v->bytes, v->bytes, v->count, v->count, avg, avg,
                pct, pct);
        text(out, "%s:%u", gr->site->file, gr->site->line);
        fputs("</td><td>", out);
        omt_svg_text(out, gr->site->function);
        fputs("</td></tr>\n", out);
    }
    fputs("</tbody>\n</table>\n", out);
    if (shown < g.ngroups)
        fprintf(out, "<p>and %zu other sites (<code>objmem-trace report --top 0%s"
                     "</code> lists them all)</p>\n",
                g.ngroups - shown, peak ? " --peak" : "");
    omt_grouping_free(&g);
    return true;
}

bool omt_html(const omt_file *f, const char *path, bool peak, FILE *out) {
    const char *exe = f->exe && *f->exe ? f->exe : "the program";
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<title>",
          out);
    text(out, "objmem-trace: %s (pid %" PRIu32 ")", exe, f->pid);
    fprintf(out, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", style);
    text(out, "Heap of %s (pid %" PRIu32 ")", exe, f->pid);
    fputs("</h1>\n<p id=\"rendered\">the page's script did not run</p>\n", out);
    summary(out, f, path);
    bool ok = sites(out, f, peak);
    fprintf(out, "<h2>Flame graph of the heap %s</h2>\n"
                 "<div class=\"drawing\" id=\"flame\">\n",
            peak ? "at its peak" : "at the end");
    ok = ok && drawing(out, f, path, true, peak);
    fputs("</div>\n<h2>Memory over time</h2>\n<div class=\"drawing\" id=\"plot\">\n",
          out);
    ok = ok && drawing(out, f, path, false, false);
    fprintf(out, "</div>\n<script>\n%s</script>\n</body>\n</html>\n", script);
    if (!ok)
        fputs("objmem-trace: out of memory\n", stderr);
    return ok;
}
