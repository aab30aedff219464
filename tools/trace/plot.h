/*
 * plot.h — `objmem-trace plot`: the recording's timeline (the traced heap
 * and the resident set size at every flush) as an SVG line chart with
 * the heap's exact peak marked, as `mprof plot` draws memory over time
 * (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_PLOT_H
#define OBJMEM_TRACE_PLOT_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

/* Draw f's timeline (f read from `path`) to out; false when memory ran
 * short (with a message on stderr).  Does not close out. */
bool omt_plot(const omt_file *f, const char *path, FILE *out);

#endif /* OBJMEM_TRACE_PLOT_H */
