/*
 * preload.h — what the parts of libobjmem-trace.so share: the C
 * library's own allocator (resolved at bootstrap), the per-thread guard
 * that keeps the tracer's own allocations untraced, and the recorder's
 * entry points (docs/design.md, "Whole-process tracer").
 */
#ifndef OBJMEM_TRACE_PRELOAD_H
#define OBJMEM_TRACE_PRELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- preload.c: the functions the hooks stand in front of ------------- */

/* The next definitions of the malloc family (the C library's, or another
 * allocator loaded after us).  Valid once the library has bootstrapped,
 * which happens at the first allocation, before any recorder code runs. */
void *omt_real_malloc(size_t n);
void *omt_real_calloc(size_t count, size_t size);
void *omt_real_realloc(void *p, size_t n);
void omt_real_free(void *p);

/* The guard: non-zero while this thread runs tracer code, whose own
 * allocations (and any made by the C library on its behalf) go straight
 * to the real allocator.  Initial-exec TLS: reading it never calls into
 * the dynamic loader, which could allocate. */
extern __thread int omt_in_tracer __attribute__((tls_model("initial-exec")));

/* ---- recorder.c: the process's recording ----------------------------- */

/* Whether allocations are being recorded (relaxed read; a hook that sees
 * true and then finds the recording finished does nothing). */
bool omt_recording(void);

/* Called by the constructor: read the options from the environment, open
 * the file, start the sampler.  On failure, prints why and records
 * nothing. */
void omt_recorder_start(void);
/* Called by the destructor: the last flush and the END chunk. */
void omt_recorder_finish(void);
/* Before an exec replaces the process image: flush and mark the file so
 * (the recording goes on if the exec fails). */
void omt_recorder_exec(const char *path);

/* Events, each with the return address into the allocating caller (the
 * first frame of its traceback).  Each takes the recorder's lock itself,
 * except those named _locked, which need omt_lock held. */
void omt_on_alloc(void *p, size_t n, uintptr_t ret);
void omt_on_free(void *p);
void omt_lock(void);
void omt_unlock(void);
void omt_on_alloc_locked(void *p, size_t n, uintptr_t ret);
void omt_on_free_locked(void *p);

#endif /* OBJMEM_TRACE_PRELOAD_H */
