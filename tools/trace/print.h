/*
 * print.h — what the readers' outputs share: JSON text, a recording's
 * description (its command, how it ended), sizes as tracemalloc writes
 * them, and output files that are removed when writing them fails
 * (docs/objmem-trace.1 defines the outputs).
 */
#ifndef OBJMEM_TRACE_PRINT_H
#define OBJMEM_TRACE_PRINT_H

#include "reader.h"
#include "resolve.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

static inline double omt_seconds(uint64_t ns) { return (double)ns / 1e9; }

/* tracemalloc's size text ("5002 B", "97.7 KiB"; signed: "+1.5 KiB"). */
void omt_size_text(char *buf, size_t n, double size, bool sign);

/* s as a JSON string, quoted and escaped. */
void omt_json_string(FILE *out, const char *s);
/* {"file", "line", "function", "module", "offset"} of a frame. */
void omt_json_frame(FILE *out, const omt_sym *s);
/* The recording's fields, each after the first preceded by sep: "file"
 * (path), "pid", "ppid", "origin", "command", "executable", "ending",
 * "exec" (when it ended so), "duration_s", "traceback_limit", "sampled",
 * "sample_rate" (0 when exact). */
void omt_json_recording(FILE *out, const omt_file *f, const char *path,
                        const char *sep);

/* "~" for a sampled recording, whose figures are estimates, else "". */
static inline const char *omt_approx(const omt_file *f) {
    return f->sample_rate ? "~" : "";
}
/* For a sampled recording: prefix, then "sampled every N bytes on average:
 * figures are estimates", then suffix.  Nothing for an exact one. */
void omt_print_sampling(FILE *out, const omt_file *f, const char *prefix,
                        const char *suffix);

/* The command line, each argument preceded by a space. */
void omt_print_command(FILE *out, const omt_file *f);
/* How it ended: "exit after 1.234 s", "exec of PATH after ...", or
 * "incomplete (...) as of the last flush, at ...". */
void omt_print_ending(FILE *out, const omt_file *f);
/* "exit", "exec" or "incomplete". */
const char *omt_ending_name(omt_ending e);

/* The output: stdout for NULL or "-", else the file at path, created or
 * truncated.  NULL, with a message on stderr, when it cannot be. */
FILE *omt_output_open(const char *path);
/* Flush and close what omt_output_open gave (stdout is flushed only).
 * False, with a message, if anything failed to be written; a file is
 * then removed rather than left half written. */
bool omt_output_close(FILE *out, const char *path);

#endif /* OBJMEM_TRACE_PRINT_H */
