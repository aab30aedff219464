/*
 * annotate.h — `objmem-trace annotate`: one function's source, line by
 * line, with the bytes and blocks allocated from each line (live at the
 * end, or at the peak) and their running total down the function, the
 * table memory_profiler's @profile prints for Python (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_ANNOTATE_H
#define OBJMEM_TRACE_ANNOTATE_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct omt_annotate_options {
    const char *function; /* the function's name as the trace resolves it */
    bool peak;            /* the heap at its peak instead of at the end */
    bool json;
} omt_annotate_options;

/* Write the table of o->function in f (read from `path`) to out.  False,
 * with a message on stderr, when no stack of the trace passes through
 * the function or memory ran short.  A source file that cannot be read
 * is said on stderr, and the table is written without the text. */
bool omt_annotate(const omt_file *f, const char *path,
                  const omt_annotate_options *o, FILE *out);

#endif /* OBJMEM_TRACE_ANNOTATE_H */
