/*
 * resolve.h — return addresses recorded in a trace file to (file, line,
 * function), looked up after the fact in the modules' files on disk
 * (docs/design.md, "Whole-process tracer: symbols at report time").
 */
#ifndef OBJMEM_TRACE_RESOLVE_H
#define OBJMEM_TRACE_RESOLVE_H

#include "reader.h"

/* A resolved frame.  Strings are interned by the resolver: equal texts
 * are one pointer, valid until omt_resolver_free.  Unknown parts are
 * "<unknown>" and line 0; without line information the file is the
 * module's path. */
typedef struct omt_sym {
    const char *file;
    unsigned line;
    const char *function;
    const char *module;   /* the module's path, or "<unknown>" */
    uint64_t offset;      /* of the return address in its module's file */
} omt_sym;

typedef struct omt_resolver omt_resolver;

/* A resolver over f's modules (f must outlive it); NULL when memory is
 * short. */
omt_resolver *omt_resolver_new(const omt_file *f);
/* The frame of return address ret (its call instruction is looked up);
 * never NULL (an out-of-memory lookup reads as unknown). */
const omt_sym *omt_resolve(omt_resolver *r, uint64_t ret);
void omt_resolver_free(omt_resolver *r);

#endif /* OBJMEM_TRACE_RESOLVE_H */
