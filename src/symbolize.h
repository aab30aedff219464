/*
 * symbolize.h — native return addresses to (file, line, function), looked
 * up lazily when a snapshot or traceback is made and cached per address
 * (docs/design.md, "Native frames").  With libdw (CMake OBJMEM_LIBDW) the
 * file and line come from the DWARF line tables and the function from the
 * symbol table; without it, dladdr gives the function and the module's
 * path, and the line is 0.
 *
 * A symbolizer is not thread-safe: one thread at a time.
 */
#ifndef OBJMEM_SYMBOLIZE_H
#define OBJMEM_SYMBOLIZE_H

#include "internal.h"

typedef struct om_symbolizer om_symbolizer;

/* A new symbolizer whose memory comes from rt's raw allocator; NULL with
 * OM_ERR_NOMEM recorded in rt when memory is short.  Reads nothing about
 * the process until the first om_symbolize. */
om_symbolizer *om_symbolizer_new(om_runtime *rt);

/* Resolve ret, a return address (the call instruction before it is looked
 * up), into *out.  Unknown parts are "<unknown>" and line 0; without
 * line information the file is the path of the module holding ret (the
 * executable or a shared library) and the line 0.  The strings stay valid,
 * and are the same pointers for the same ret, while s lives.  OM_OK, or
 * OM_ERR_NOMEM (recorded in s's runtime, *out untouched) when s's own
 * tables cannot grow. */
om_status om_symbolize(om_symbolizer *s, uintptr_t ret, om_frame *out);

/* Bytes of s's own tables and strings (not counting what libdw holds). */
size_t om_symbolizer_memory(const om_symbolizer *s);

/* Free s and everything it resolved; NULL is a no-op. */
void om_symbolizer_free(om_symbolizer *s);

#if OM_HAVE_LIBDW
#include <elfutils/libdwfl.h>
/* The line-table row of addr (an address as the module was loaded) in m,
 * or NULL: found through the module's address ranges (.debug_aranges),
 * failing that by asking each compilation unit whether it covers addr, as
 * clang emits no .debug_aranges unless told to (-gdwarf-aranges).  Shared
 * with objmem-trace's reader. */
Dwarf_Line *om_dwarf_line_row(Dwfl_Module *m, uintptr_t addr);
#endif

#endif /* OBJMEM_SYMBOLIZE_H */
