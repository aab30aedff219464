/*
 * leaks.h — `objmem-trace leaks`: the blocks a recording ends with,
 * grouped by the stack that allocated them, largest first, worded as
 * LeakSanitizer words its report (docs/objmem-trace.1).
 */
#ifndef OBJMEM_TRACE_LEAKS_H
#define OBJMEM_TRACE_LEAKS_H

#include "reader.h"

#include <stdbool.h>
#include <stdio.h>

typedef struct omt_leaks_options {
    size_t top;  /* stacks shown; 0 for all */
    bool json;
} omt_leaks_options;

/* Write the leak report of f (read from `path`) to out, and whether any
 * block was left into *leaked; false when memory ran short (with a
 * message on stderr).  Does not close out. */
bool omt_leaks(const omt_file *f, const char *path,
               const omt_leaks_options *o, FILE *out, bool *leaked);

#endif /* OBJMEM_TRACE_LEAKS_H */
