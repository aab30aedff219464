/*
 * report.h — `objmem-trace report`: a recording's heap at the end or at
 * its peak, grouped and sorted as tracemalloc's statistics are
 * (docs/objmem-trace.1 defines every field of the output).
 */
#ifndef OBJMEM_TRACE_REPORT_H
#define OBJMEM_TRACE_REPORT_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

typedef enum omt_group_by {
    OMT_BY_LINE,      /* the allocation site's file and line */
    OMT_BY_FUNCTION,  /* the allocating function (and its file) */
    OMT_BY_FILE,      /* the allocating function's file */
    OMT_BY_TRACEBACK  /* the whole stack */
} omt_group_by;

typedef struct omt_report_options {
    omt_group_by by;
    size_t top;      /* groups shown; 0 for all */
    bool peak;       /* the heap at the peak instead of at the end */
    bool json;
} omt_report_options;

/* Write the report of f (read from `path`) to out; false if writing
 * failed or memory ran short (with a message on stderr). */
bool omt_report(const omt_file *f, const char *path,
                const omt_report_options *o, FILE *out);

#endif /* OBJMEM_TRACE_REPORT_H */
