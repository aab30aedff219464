/*
 * reader.h — a trace file read back: what `objmem-trace report` and the
 * other readers work from (docs/design.md, "Whole-process tracer").
 */
#ifndef OBJMEM_TRACE_READER_H
#define OBJMEM_TRACE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct omt_rmodule {
    uint64_t bias;
    unsigned nseg;
    uint64_t *lo, *hi;
    char *path;
} omt_rmodule;

typedef struct omt_rtraceback {
    unsigned nframes, total_nframe;
    const uint64_t *frames; /* return addresses, most recent first */
} omt_rtraceback;

/* A traceback's aggregate: bytes and blocks. */
typedef struct omt_value {
    uint64_t bytes, count;
} omt_value;

typedef struct omt_rsample {
    uint64_t t, heap, rss;
} omt_rsample;

/* How the file ends. */
typedef enum omt_ending {
    OMT_ENDING_NONE, /* no END: killed, crashed, _exit, or a cut file */
    OMT_ENDING_EXIT, /* the program exited normally */
    OMT_ENDING_EXEC  /* the process image was replaced by exec */
} omt_ending;

typedef struct omt_file {
    uint32_t version;     /* of the format */
    /* SAMPLING: mean bytes between samples; 0 for an exact recording,
     * whose figures are exact.  Else every figure (aggregates, totals,
     * timeline) is an unbiased estimate, already scaled by the recorder. */
    uint64_t sample_rate;
    /* START */
    uint64_t start_realtime_ns;
    uint32_t pid, ppid, nframe, interval_ms, origin;
    char *cmdline;        /* arguments separated by NULs */
    size_t cmdline_len;
    char *exe;
    /* Everything else, as of the last complete STATE chunk. */
    omt_rmodule *modules;
    size_t nmodules;
    omt_rtraceback *tracebacks; /* id i is tracebacks[i - 1] */
    size_t ntracebacks;
    omt_value *current, *peak;  /* indexed by id; [0] unused */
    uint64_t t, current_bytes, current_blocks, peak_bytes, peak_blocks,
        peak_t, allocs, alloc_bytes, lost;
    size_t nstates;
    omt_rsample *samples;
    size_t nsamples;
    omt_ending ending;
    uint64_t end_t;
    char *exec_path;       /* for OMT_ENDING_EXEC */
    bool cut;              /* the file ends inside a chunk */
    /* storage */
    unsigned char *data;
    size_t size;
    size_t samples_capacity, modules_capacity, tracebacks_capacity;
} omt_file;

typedef enum omt_read_status {
    OMT_READ_OK = 0,
    OMT_READ_IO = 1,     /* the file cannot be opened or read */
    OMT_READ_FORMAT = 2  /* not a trace, corrupt, cut before any flush, or
                            a newer format version */
} omt_read_status;

/* Read the trace file at path into *f (zeroed first).  On failure, *f
 * holds nothing to free and why is in err (a sentence without the
 * path).  A file that ends without END but holds at least one complete
 * flush reads as OMT_READ_OK with f->ending OMT_ENDING_NONE. */
omt_read_status omt_file_read(const char *path, omt_file *f, char *err,
                              size_t errlen);
/* The same from the file's bytes: data (from malloc, size bytes) is the
 * file's from then on, freed by omt_file_free or on failure. */
omt_read_status omt_file_parse(unsigned char *data, size_t size, omt_file *f,
                               char *err, size_t errlen);
void omt_file_free(omt_file *f);

#endif /* OBJMEM_TRACE_READER_H */
