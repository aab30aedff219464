/*
 * diff.h — `objmem-trace diff`: how the heap of one recording differs
 * from another's, group by group, with the figures and order of
 * tracemalloc's Snapshot.compare_to (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_DIFF_H
#define OBJMEM_TRACE_DIFF_H

#include "reader.h"
#include "report.h"

#include <stdbool.h>
#include <stdio.h>

/* Write the differences from old (read from old_path) to new (new_path)
 * to out, grouped, limited and in the format o says (o->peak: both heaps
 * at their peaks); false when memory ran short (with a message on
 * stderr).  Does not close out. */
bool omt_diff(const omt_file *old, const char *old_path, const omt_file *new,
              const char *new_path, const omt_report_options *o, FILE *out);

#endif /* OBJMEM_TRACE_DIFF_H */
