/*
 * html.h — `objmem-trace html`: one self-contained HTML page of a
 * recording for a browser offline (its style, script and drawings
 * inline, no external reference): the summary, the largest sites and the
 * flame graph (flame.c) at the end or at the peak, and the timeline
 * (plot.c)
 * (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_HTML_H
#define OBJMEM_TRACE_HTML_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

/* Write the page of f (read from `path`) to out, its sites and flame
 * graph those of the heap at its peak when `peak`, else at the end; false
 * when memory ran short (with a message on stderr).  Does not close out. */
bool omt_html(const omt_file *f, const char *path, bool peak, FILE *out);

#endif /* OBJMEM_TRACE_HTML_H */
