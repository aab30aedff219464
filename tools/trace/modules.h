/*
 * modules.h — the loaded modules as libobjmem-trace.so sees them: a copy
 * of the loader's list, refreshed only outside allocation hooks, that
 * serves the unwinder's dl_iterate_phdr calls (so that a hook never waits
 * for the dynamic loader's lock) and tells the recorder which modules to
 * write to the trace file (docs/design.md, "Whole-process tracer").
 */
#ifndef OBJMEM_TRACE_MODULES_H
#define OBJMEM_TRACE_MODULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A module as the trace file records it: its path, load bias and the
 * absolute [lo, hi) ranges of its loadable segments. */
#define OMT_MAX_SEGMENTS 16
typedef struct omt_module {
    uint64_t bias;
    unsigned nseg;
    uint64_t lo[OMT_MAX_SEGMENTS], hi[OMT_MAX_SEGMENTS];
    char *path;
} omt_module;

/* Read the loader's list again (takes its lock: never call from inside an
 * allocation hook).  Returns false when memory is short; the previous
 * copy then stays. */
bool omt_modules_refresh(void);

/* Modules seen since the start, in the order first seen; *n is their
 * number.  The list only grows, and only in omt_modules_refresh: callers
 * serialise the two (the recorder calls both under its flush lock). */
const omt_module *omt_modules_seen(size_t *n);

#endif /* OBJMEM_TRACE_MODULES_H */
