/*
 * tracefile.h — the constants of objmem-trace's recording format, shared
 * by the recorder in libobjmem-trace.so (recorder.c) and the reader in
 * the objmem-trace command (reader.c).  docs/design.md, "Whole-process
 * tracer", gives the layout field by field.
 *
 * A file is a 16-byte header followed by chunks, appended as the program
 * runs.  Each chunk carries its own checksum, so a program killed in the
 * middle of a write leaves a file that reads cleanly up to the last chunk
 * it completed.  All integers are little-endian, with no padding.
 */
#ifndef OBJMEM_TRACEFILE_H
#define OBJMEM_TRACEFILE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 0x89 is not 7-bit text and CR LF changes under any text-mode copy, as
 * in the snapshot format; "OMTRC" tells the two apart. */
#define OMT_MAGIC "\x89OMTRC\r\n"
#define OMT_MAGIC_SIZE 8
/* The newest version this code writes; it reads every version up to it.
 * Any layout change bumps it.  Version 2 added SAMPLING (version 1
 * readers refuse a sampled recording as newer, never reading its
 * estimates as exact figures).  Version 3 packs TRACEBACKS and STATE's
 * aggregates into variable-length integers (omt_varint), each traceback
 * sharing its outermost frames with the one before it. */
#define OMT_VERSION 3
/* The version that added SAMPLING, and the one that packed the lists. */
#define OMT_VERSION_SAMPLING 2
#define OMT_VERSION_PACKED 3
/* magic, u32 version, u32 flags (none defined: 0). */
#define OMT_HEADER_SIZE 16
/* Chunk: u32 type, u32 payload size, payload, u64 FNV-1a 64 of the type,
 * size and payload bytes. */
#define OMT_CHUNK_HEAD 8
#define OMT_CHUNK_TAIL 8
/* The largest payload a writer makes and a reader accepts: a STATE
 * chunk lists every aggregate changed in one interval, 20 bytes each. */
#define OMT_CHUNK_MAX (1u << 30)

enum omt_chunk_type {
    OMT_CHUNK_START = 1,      /* who is recording: pid, command, options */
    OMT_CHUNK_MODULES = 2,    /* loaded modules: path, bias, segments */
    OMT_CHUNK_TRACEBACKS = 3, /* new tracebacks, numbered densely from 1 */
    OMT_CHUNK_SAMPLES = 4,    /* timeline: time, traced bytes, RSS */
    OMT_CHUNK_STATE = 5,      /* totals and changed aggregates: a flush */
    OMT_CHUNK_EXEC = 6,       /* the process image was replaced by exec */
    OMT_CHUNK_END = 7,        /* the program finished; nothing follows */
    OMT_CHUNK_SAMPLING = 8,   /* version 2: sampled, u64 mean bytes between
                                 samples; right after START */
    OMT_CHUNK_LAST = OMT_CHUNK_SAMPLING
};

/* START's `origin`: how this recording began. */
enum omt_origin {
    OMT_ORIGIN_START = 0, /* a program loaded the tracer (run, or exec) */
    OMT_ORIGIN_FORK = 1   /* a child forked from a traced process */
};

/* The environment the command passes to the preloaded library. */
#define OMT_ENV_OUTPUT "OBJMEM_TRACE_OUTPUT"
#define OMT_ENV_FRAMES "OBJMEM_TRACE_FRAMES"
#define OMT_ENV_INTERVAL "OBJMEM_TRACE_INTERVAL"
#define OMT_ENV_SAMPLE_RATE "OBJMEM_TRACE_SAMPLE_RATE"
/* For tests: the sampler's seed, a number; unset, from the clock. */
#define OMT_ENV_SEED "OBJMEM_TRACE_SEED"
/* 1 TiB: far beyond any useful rate, and exactly representable. */
#define OMT_MAX_SAMPLE_RATE (1ull << 40)
#define OMT_DEFAULT_FRAMES 16
#define OMT_DEFAULT_INTERVAL_MS 100
#define OMT_MAX_FRAMES 100
#define OMT_MAX_INTERVAL_MS 3600000

#define OMT_FNV_BASIS 0xcbf29ce484222325ull

static inline uint64_t omt_fnv(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline void omt_put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void omt_put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t omt_get32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static inline uint64_t omt_get64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Variable-length integers (version 3): seven bits a byte, least
 * significant first, the high bit set on every byte but the last; at
 * most 10 bytes.  Signed differences are zigzag-coded first, so that
 * small negative ones stay short too. */
#define OMT_VARINT_MAX 10

static inline size_t omt_put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static inline uint64_t omt_zigzag(uint64_t difference) {
    return difference << 1 ^ (uint64_t)-(int64_t)(difference >> 63);
}

static inline uint64_t omt_unzigzag(uint64_t v) {
    return v >> 1 ^ (uint64_t)-(int64_t)(v & 1);
}

#endif /* OBJMEM_TRACEFILE_H */
