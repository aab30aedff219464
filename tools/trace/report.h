/*
 * report.h — `objmem-trace report`: a recording's heap at the end or at
 * its peak, grouped and sorted as tracemalloc's statistics are
 * (docs/objmem-trace.1 defines every field of the output).
 */
#ifndef OBJMEM_TRACE_REPORT_H
#define OBJMEM_TRACE_REPORT_H

#include "group.h"
#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct omt_report_options {
    omt_group_by by;
    size_t top;      /* groups shown; 0 for all */
    bool peak;       /* the heap at the peak instead of at the end */
    bool json;
} omt_report_options;

/* Write the report of f (read from `path`) to out; false when memory ran
 * short (with a message on stderr).  Does not close out. */
bool omt_report(const omt_file *f, const char *path,
                const omt_report_options *o, FILE *out);

/* A group's key, as report writes it and diff too: JSON fields after the
 * group's figures (", \"file\": ..." or the traceback's frames); the
 * text's "#N: " part ("file:line", "function (file)" or "file"); and the
 * text's lines below it (the function of a line, a traceback's frames). */
void omt_report_json_key(FILE *out, const omt_grouping *g,
                         const omt_group *gr);
void omt_report_text_key(FILE *out, const omt_grouping *g,
                         const omt_group *gr);
void omt_report_text_detail(FILE *out, const omt_grouping *g,
                            const omt_group *gr);

#endif /* OBJMEM_TRACE_REPORT_H */
