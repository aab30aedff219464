/*
 * fuzz_trace_read.c — the libFuzzer target for objmem-trace's reader,
 * omt_file_parse (tools/trace/reader.c; the format in docs/design.md,
 * "Whole-process tracer").  Each input is parsed as it is, and again with
 * every whole chunk's checksum set right, so that mutations also reach
 * the checks behind the checksums.  A parse that fails must say why; a
 * file that parses is walked, and must keep the promises the readers
 * build on: every traceback has 1 to nframe frames, every aggregate
 * belongs to a traceback, the aggregates sum to the totals, and the peak
 * is at least the current heap.  Any breach aborts, which libFuzzer
 * reports as a crash.  Built with -DOBJMEM_FUZZ=ON.
 */
#include "reader.h"
#include "require.h"
#include "tracefile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where walk puts what it reads, so that no read is optimised away. */
static volatile uint64_t sink;

/* Touch every byte the file points to, so that the sanitizers see any
 * dangling pointer or unterminated string, and check the promises. */
static void walk(const omt_file *f) {
    REQUIRE(f->nstates >= 1);
    REQUIRE(f->version >= 1 && f->version <= OMT_VERSION);
    REQUIRE(f->peak_bytes >= f->current_bytes);
    if (f->cmdline)
        REQUIRE(f->cmdline[f->cmdline_len] == '\0');
    if (f->exe)
        sink ^= strlen(f->exe);
    if (f->exec_path)
        sink ^= strlen(f->exec_path);
    for (size_t i = 0; i < f->nmodules; i++) {
        const omt_rmodule *m = &f->modules[i];
        sink ^= strlen(m->path);
        for (unsigned s = 0; s < m->nseg; s++)
            sink ^= m->lo[s] ^ m->hi[s];
    }
    uint64_t bytes = 0, count = 0, peak_bytes = 0, peak_count = 0;
    for (size_t id = 1; id <= f->ntracebacks; id++) {
        const omt_rtraceback *t = &f->tracebacks[id - 1];
        REQUIRE(t->nframes >= 1 && t->nframes <= f->nframe);
        REQUIRE(t->total_nframe >= t->nframes);
        for (unsigned k = 0; k < t->nframes; k++)
            sink ^= t->frames[k];
        bytes += f->current[id].bytes;
        count += f->current[id].count;
        peak_bytes += f->peak[id].bytes;
        peak_count += f->peak[id].count;
    }
    REQUIRE(bytes == f->current_bytes && count == f->current_blocks);
    REQUIRE(peak_bytes == f->peak_bytes && peak_count == f->peak_blocks);
    for (size_t i = 0; i < f->nsamples; i++)
        sink ^= f->samples[i].t ^ f->samples[i].heap ^ f->samples[i].rss;
}

static void parse(const unsigned char *data, size_t size) {
    /* The reader owns the bytes it parses: a copy, exactly as long as the
     * input, so that any read past its end is caught. */
    unsigned char *copy = malloc(size ? size : 1);
    REQUIRE(copy);
    memcpy(copy, data, size);
    omt_file f;
    char err[512] = "";
    omt_read_status st = omt_file_parse(copy, size, &f, err, sizeof err);
    if (st == OMT_READ_OK) {
        walk(&f);
        omt_file_free(&f);
    } else {
        REQUIRE(st == OMT_READ_FORMAT && err[0]);
        REQUIRE(f.data == NULL && f.tracebacks == NULL && f.modules == NULL);
    }
}

/* The input with each whole chunk's checksum recomputed. */
static unsigned char *with_checksums(const unsigned char *data, size_t size) {
    unsigned char *fixed = malloc(size ? size : 1);
    REQUIRE(fixed);
    memcpy(fixed, data, size);
    size_t pos = OMT_HEADER_SIZE;
    while (pos < size && size - pos >= OMT_CHUNK_HEAD) {
        uint32_t payload = omt_get32(fixed + pos + 4);
        if (size - pos - OMT_CHUNK_HEAD < (uint64_t)payload + OMT_CHUNK_TAIL)
            break;
        size_t tail = pos + OMT_CHUNK_HEAD + payload;
        omt_put64(fixed + tail,
                  omt_fnv(OMT_FNV_BASIS, fixed + pos, OMT_CHUNK_HEAD + payload));
        pos = tail + OMT_CHUNK_TAIL;
    }
    return fixed;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    parse(data, size);
    unsigned char *fixed = with_checksums(data, size);
    parse(fixed, size);
    free(fixed);
    return 0;
}
