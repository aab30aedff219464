/*
 * resolve.h — return addresses recorded in a trace file to (file, line,
 * function), looked up after the fact in the modules' files on disk
 * (docs/design.md, "Whole-process tracer: symbols at report time").
 */
#ifndef OBJMEM_TRACE_RESOLVE_H
#define OBJMEM_TRACE_RESOLVE_H

#include "reader.h"

#include <stdbool.h>
#include <stdint.h>

/* A resolved frame.  Strings are interned (omt_strings): equal texts are
 * one pointer, valid until the table is freed.  Unknown parts are
 * "<unknown>" and line 0; without line information the file is the
 * module's path. */
typedef struct omt_sym {
    const char *file;
    unsigned line;
    const char *function;
    const char *module;   /* the module's path, or "<unknown>" */
    uint64_t offset;      /* of the return address in its module's file */
} omt_sym;

/* Interned strings: equal texts are one pointer, so that frames resolved
 * from different files compare by pointer when they share a table. */
typedef struct omt_strings omt_strings;

omt_strings *omt_strings_new(void);
/* The interned copy of s; "<unknown>" (omt_unknown) for NULL or when
 * memory is short. */
const char *omt_intern(omt_strings *t, const char *s);
void omt_strings_free(omt_strings *t);

/* The one "<unknown>" every resolver and table hands out. */
extern const char omt_unknown[];

typedef struct omt_resolver omt_resolver;

/* A resolver over f's modules (f must outlive it), interning into
 * strings (borrowed; it must outlive the resolver), or into a table of
 * its own when strings is NULL.  NULL when memory is short. */
omt_resolver *omt_resolver_new(const omt_file *f, omt_strings *strings);
/* The frame of return address ret (its call instruction is looked up);
 * never NULL (an out-of-memory lookup reads as unknown). */
const omt_sym *omt_resolve(omt_resolver *r, uint64_t ret);
void omt_resolver_free(omt_resolver *r);

/* The source lines of the function whose code holds return address ret
 * (its call instruction): its file (interned), the line of its
 * declaration and the last line its code covers in that file, from the
 * function's DWARF entry and the line table.  False, the outputs
 * untouched, when that is unknown (no libdw, no debugging information). */
bool omt_resolve_function_lines(omt_resolver *r, uint64_t ret,
                                const char **file, unsigned *first,
                                unsigned *last);

#endif /* OBJMEM_TRACE_RESOLVE_H */
