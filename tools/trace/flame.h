/*
 * flame.h — `objmem-trace flamegraph`: the live heap (at the end or at
 * its peak) by stack, as collapsed stacks for flame-graph tools or as a
 * self-contained SVG flame graph (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_FLAME_H
#define OBJMEM_TRACE_FLAME_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct omt_flame_options {
    bool peak; /* the heap at its peak instead of at the end */
    bool svg;  /* an SVG drawing instead of collapsed stacks */
} omt_flame_options;

/* Write the flame graph of f (read from `path`) to out; false when
 * memory ran short (with a message on stderr).  Does not close out. */
bool omt_flamegraph(const omt_file *f, const char *path,
                    const omt_flame_options *o, FILE *out);

#endif /* OBJMEM_TRACE_FLAME_H */
