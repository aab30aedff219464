/*
 * svg.h — what objmem-trace's two drawings (flame.c, plot.c) share:
 * a self-contained SVG document (no script, no external reference) and
 * text escaped so that any XML parser takes it, whatever bytes a path or
 * symbol holds.
 */
#ifndef OBJMEM_TRACE_SVG_H
#define OBJMEM_TRACE_SVG_H

#include <stdio.h>

/* The XML declaration and the <svg> element of a width x height drawing,
 * with its <title>, a white background and the shared style (class
 * "label" small text, "title" the heading, "note" the grey lines). */
void omt_svg_begin(FILE *out, double width, double height, const char *title);
void omt_svg_end(FILE *out);
/* s as XML character data or attribute text: markup characters escaped,
 * control characters and bytes that are not UTF-8 as '?'. */
void omt_svg_text(FILE *out, const char *s);
/* The same, at most max_chars characters, ending ".." when cut. */
void omt_svg_text_cut(FILE *out, const char *s, size_t max_chars);

#endif /* OBJMEM_TRACE_SVG_H */
