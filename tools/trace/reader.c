/*
 * reader.c — reading a trace file (reader.h; the layout in tracefile.h
 * and docs/design.md, "Whole-process tracer: the file").
 *
 * Nothing in the file is trusted: every count and length is checked
 * against the bytes left in its chunk before it is used, every chunk's
 * checksum before its payload is looked at, every traceback id against
 * the tracebacks read so far, and each flush's totals against the sums of
 * the aggregates it leaves.  A chunk that runs past the end of the file
 * is where a killed program stopped writing: reading ends there, with
 * what the chunks before it said.
 */
#define _GNU_SOURCE
#include "reader.h"

#include "tracefile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SNAPSHOT_MAGIC "\x89OMSNP\r\n"

typedef struct cursor {
    const unsigned char *p, *end;
    bool bad;
} cursor;

static bool need(cursor *c, size_t n) {
    if (c->bad || (size_t)(c->end - c->p) < n) {
        c->bad = true;
        return false;
    }
    return true;
}

static uint32_t rd32(cursor *c) {
    if (!need(c, 4))
        return 0;
    uint32_t v = omt_get32(c->p);
    c->p += 4;
    return v;
}

static uint64_t rd64(cursor *c) {
    if (!need(c, 8))
        return 0;
    uint64_t v = omt_get64(c->p);
    c->p += 8;
    return v;
}

static uint16_t rd16(cursor *c) {
    if (!need(c, 2))
        return 0;
    uint16_t v = (uint16_t)(c->p[0] | c->p[1] << 8);
    c->p += 2;
    return v;
}

static uint64_t rd_varint(cursor *c) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (!need(c, 1))
            return 0;
        unsigned char byte = *c->p++;
        /* The tenth byte holds the top bit alone. */
        if (shift == 63 && byte > 1)
            break;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    c->bad = true;
    return 0;
}

/* A number of a list or of the totals: packed (version 3 on), or u64. */
static uint64_t rd_number(cursor *c, bool packed) {
    return packed ? rd_varint(c) : rd64(c);
}

/* A string: its bytes stay in the file's buffer; returns a NUL-terminated
 * copy. */
static char *rd_string(cursor *c, size_t *len) {
    uint32_t n = rd32(c);
    if (!need(c, n))
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) {
        c->bad = true;
        return NULL;
    }
    memcpy(s, c->p, n);
    s[n] = 0;
    c->p += n;
    if (len)
        *len = n;
    return s;
}

typedef struct reader {
    omt_file *f;
    char *err;
    size_t errlen;
    unsigned chunk;    /* number of the chunk being read, from 1 */
    size_t offset;     /* its offset in the file */
    uint64_t sum_cur_bytes, sum_cur_count, sum_peak_bytes, sum_peak_count;
} reader;

static const char *type_name(uint32_t type) {
    static const char *names[] = {"?", "START", "MODULES", "TRACEBACKS",
                                  "SAMPLES", "STATE", "EXEC", "END",
                                  "SAMPLING"};
    return type <= OMT_CHUNK_LAST ? names[type] : "?";
}

static omt_read_status fail(reader *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->errlen, fmt, ap);
    va_end(ap);
    return OMT_READ_FORMAT;
}

static omt_read_status bad_chunk(reader *r, uint32_t type, const char *what) {
    return fail(r, "corrupt: chunk %u (%s) at offset %zu %s", r->chunk,
                type_name(type), r->offset, what);
}

static bool grow(void **array, size_t *capacity, size_t n, size_t each) {
    if (n < *capacity)
        return true;
    size_t cap = *capacity ? *capacity * 2 : 16;
    while (cap <= n)
        cap *= 2;
    void *a = realloc(*array, cap * each);
    if (!a)
        return false;
    *array = a;
    *capacity = cap;
    return true;
}

static omt_read_status read_start(reader *r, cursor *c) {
    omt_file *f = r->f;
    f->start_realtime_ns = rd64(c);
    f->pid = rd32(c);
    f->ppid = rd32(c);
    f->nframe = rd32(c);
    f->interval_ms = rd32(c);
    f->origin = rd32(c);
    f->cmdline = rd_string(c, &f->cmdline_len);
    f->exe = rd_string(c, NULL);
    if (c->bad)
        return bad_chunk(r, OMT_CHUNK_START, "is shorter than its fields");
    if (f->nframe < 1 || f->nframe > OMT_MAX_FRAMES)
        return bad_chunk(r, OMT_CHUNK_START, "has a traceback limit out of range");
    return OMT_READ_OK;
}

static omt_read_status read_modules(reader *r, cursor *c) {
    omt_file *f = r->f;
    uint32_t n = rd32(c);
    for (uint32_t i = 0; i < n && !c->bad; i++) {
        if (!grow((void **)&f->modules, &f->modules_capacity, f->nmodules,
                  sizeof *f->modules))
            return fail(r, "out of memory");
        omt_rmodule *m = &f->modules[f->nmodules];
        memset(m, 0, sizeof *m);
        m->bias = rd64(c);
        m->nseg = rd32(c);
        if (!need(c, (size_t)m->nseg * 16))
            break;
        m->lo = malloc((m->nseg ? m->nseg : 1) * sizeof *m->lo);
        m->hi = malloc((m->nseg ? m->nseg : 1) * sizeof *m->hi);
        f->nmodules++; /* freed with the file from here on */
        if (!m->lo || !m->hi)
            return fail(r, "out of memory");
        for (unsigned s = 0; s < m->nseg; s++) {
            m->lo[s] = rd64(c);
            m->hi[s] = rd64(c);
            if (m->hi[s] < m->lo[s])
                return bad_chunk(r, OMT_CHUNK_MODULES, "has a segment that ends before it starts");
        }
        m->path = rd_string(c, NULL);
    }
    if (c->bad)
        return bad_chunk(r, OMT_CHUNK_MODULES, "is shorter than its modules");
    return OMT_READ_OK;
}

static omt_read_status read_tracebacks(reader *r, cursor *c) {
    omt_file *f = r->f;
    uint32_t first = rd32(c), n = rd32(c);
    if (c->bad)
        return bad_chunk(r, OMT_CHUNK_TRACEBACKS, "is shorter than its header");
    if (first != f->ntracebacks + 1)
        return bad_chunk(r, OMT_CHUNK_TRACEBACKS, "does not continue the numbering of tracebacks");
    bool packed = f->version >= OMT_VERSION_PACKED;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t nframes, total, shared = 0;
        if (packed) {
            nframes = rd_varint(c);
            total = rd_varint(c);
            shared = rd_varint(c);
        } else {
            nframes = rd16(c);
            total = rd16(c);
            need(c, (size_t)nframes * 8);
        }
        if (c->bad)
            return bad_chunk(r, OMT_CHUNK_TRACEBACKS, "is shorter than its tracebacks");
        const omt_rtraceback *before =
            f->ntracebacks ? &f->tracebacks[f->ntracebacks - 1] : NULL;
        if (nframes < 1 || nframes > f->nframe || total < nframes ||
            total > UINT16_MAX || shared > nframes ||
            shared > (before ? before->nframes : 0))
            return bad_chunk(r, OMT_CHUNK_TRACEBACKS, "has a traceback with a bad number of frames");
        uint64_t *frames = malloc(nframes * sizeof *frames);
        if (!frames)
            return fail(r, "out of memory");
        if (packed) {
            uint64_t last = before ? before->frames[0] : 0;
            for (unsigned k = 0; k < nframes - shared; k++)
                frames[k] = last += omt_unzigzag(rd_varint(c));
            for (unsigned k = 0; k < shared; k++)
                frames[nframes - 1 - k] = before->frames[before->nframes - 1 - k];
        } else {
            for (unsigned k = 0; k < nframes; k++)
                frames[k] = rd64(c);
        }
        if (c->bad || !grow((void **)&f->tracebacks, &f->tracebacks_capacity,
                            f->ntracebacks, sizeof *f->tracebacks)) {
            free(frames);
            return c->bad ? bad_chunk(r, OMT_CHUNK_TRACEBACKS, "is shorter than its tracebacks")
                          : fail(r, "out of memory");
        }
        omt_rtraceback *t = &f->tracebacks[f->ntracebacks++];
        t->nframes = (unsigned)nframes;
        t->total_nframe = (unsigned)total;
        t->frames = frames;
    }
    return OMT_READ_OK;
}

static omt_read_status read_samples(reader *r, cursor *c) {
    omt_file *f = r->f;
    uint32_t n = rd32(c);
    bool packed = f->version >= OMT_VERSION_PACKED;
    /* At least 3 bytes a sample packed, 24 unpacked. */
    if (!need(c, (size_t)n * (packed ? 3 : 24)))
        return bad_chunk(r, OMT_CHUNK_SAMPLES, "is shorter than its samples");
    for (uint32_t i = 0; i < n; i++) {
        if (!grow((void **)&f->samples, &f->samples_capacity, f->nsamples,
                  sizeof *f->samples))
            return fail(r, "out of memory");
        omt_rsample *s = &f->samples[f->nsamples];
        s->t = rd_number(c, packed);
        s->heap = rd_number(c, packed);
        s->rss = rd_number(c, packed);
        if (c->bad)
            return bad_chunk(r, OMT_CHUNK_SAMPLES, "is shorter than its samples");
        f->nsamples++;
    }
    return OMT_READ_OK;
}

/* Set the aggregates listed in a STATE chunk, keeping their sums. */
static omt_read_status read_values(reader *r, cursor *c, omt_value **values,
                                   size_t *capacity, uint64_t *sum_bytes,
                                   uint64_t *sum_count) {
    omt_file *f = r->f;
    uint32_t n = rd32(c);
    bool packed = f->version >= OMT_VERSION_PACKED;
    /* At least 3 bytes an aggregate packed, 20 unpacked. */
    if (!need(c, (size_t)n * (packed ? 3 : 20)))
        return bad_chunk(r, OMT_CHUNK_STATE, "is shorter than its aggregates");
    if (*capacity < f->ntracebacks + 1) {
        size_t cap = f->ntracebacks + 1;
        omt_value *v = realloc(*values, cap * sizeof *v);
        if (!v)
            return fail(r, "out of memory");
        memset(v + *capacity, 0, (cap - *capacity) * sizeof *v);
        *values = v;
        *capacity = cap;
    }
    uint64_t id = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t bytes, count;
        if (packed)
            id += omt_unzigzag(rd_varint(c));
        else
            id = rd32(c);
        bytes = rd_number(c, packed);
        count = rd_number(c, packed);
        if (c->bad)
            return bad_chunk(r, OMT_CHUNK_STATE, "is shorter than its aggregates");
        if (id < 1 || id > f->ntracebacks)
            return bad_chunk(r, OMT_CHUNK_STATE, "refers to a traceback not yet defined");
        omt_value *v = &(*values)[id];
        *sum_bytes += bytes - v->bytes;
        *sum_count += count - v->count;
        v->bytes = bytes;
        v->count = count;
    }
    return OMT_READ_OK;
}

typedef struct value_arrays {
    size_t cur_capacity, peak_capacity;
} value_arrays;

static omt_read_status read_state(reader *r, cursor *c, value_arrays *va) {
    omt_file *f = r->f;
    uint64_t fields[9];
    for (int i = 0; i < 9; i++)
        fields[i] = rd_number(c, f->version >= OMT_VERSION_PACKED);
    if (c->bad)
        return bad_chunk(r, OMT_CHUNK_STATE, "is shorter than its totals");
    omt_read_status st = read_values(r, c, &f->current, &va->cur_capacity,
                                     &r->sum_cur_bytes, &r->sum_cur_count);
    if (st == OMT_READ_OK)
        st = read_values(r, c, &f->peak, &va->peak_capacity,
                         &r->sum_peak_bytes, &r->sum_peak_count);
    if (st != OMT_READ_OK)
        return st;
    f->t = fields[0];
    f->current_bytes = fields[1];
    f->current_blocks = fields[2];
    f->peak_bytes = fields[3];
    f->peak_blocks = fields[4];
    f->peak_t = fields[5];
    f->allocs = fields[6];
    f->alloc_bytes = fields[7];
    f->lost = fields[8];
    if (r->sum_cur_bytes != f->current_bytes ||
        r->sum_cur_count != f->current_blocks)
        return bad_chunk(r, OMT_CHUNK_STATE, "has totals that differ from the sum of its tracebacks' aggregates");
    if (r->sum_peak_bytes != f->peak_bytes ||
        r->sum_peak_count != f->peak_blocks || f->peak_bytes < f->current_bytes)
        return bad_chunk(r, OMT_CHUNK_STATE, "has a peak that differs from the sum of its tracebacks' aggregates at the peak");
    f->nstates++;
    return OMT_READ_OK;
}

static omt_read_status read_chunks(reader *r) {
    omt_file *f = r->f;
    size_t pos = OMT_HEADER_SIZE;
    value_arrays va = {0, 0};
    bool ended = false;
    for (r->chunk = 1; pos < f->size; r->chunk++) {
        r->offset = pos;
        size_t left = f->size - pos;
        if (left < OMT_CHUNK_HEAD) {
            f->cut = true;
            break;
        }
        uint32_t type = omt_get32(f->data + pos);
        uint32_t size = omt_get32(f->data + pos + 4);
        if (type < 1 || type > OMT_CHUNK_LAST)
            return fail(r, "corrupt: chunk %u at offset %zu has unknown type %u",
                        r->chunk, pos, type);
        if (size > OMT_CHUNK_MAX)
            return bad_chunk(r, type, "is larger than any chunk can be");
        if (left < (size_t)OMT_CHUNK_HEAD + size + OMT_CHUNK_TAIL) {
            f->cut = true;
            break;
        }
        const unsigned char *payload = f->data + pos + OMT_CHUNK_HEAD;
        uint64_t h = omt_fnv(OMT_FNV_BASIS, f->data + pos, OMT_CHUNK_HEAD + size);
        if (h != omt_get64(payload + size))
            return bad_chunk(r, type, "fails its checksum");
        if (ended)
            return bad_chunk(r, type, "follows the END chunk");
        if ((r->chunk == 1) != (type == OMT_CHUNK_START))
            return bad_chunk(r, type, r->chunk == 1 ? "comes first, where START must"
                                                    : "repeats START");
        cursor c = {payload, payload + size, false};
        omt_read_status st = OMT_READ_OK;
        switch (type) {
        case OMT_CHUNK_START: st = read_start(r, &c); break;
        case OMT_CHUNK_MODULES: st = read_modules(r, &c); break;
        case OMT_CHUNK_TRACEBACKS: st = read_tracebacks(r, &c); break;
        case OMT_CHUNK_SAMPLES: st = read_samples(r, &c); break;
        case OMT_CHUNK_STATE: st = read_state(r, &c, &va); break;
        case OMT_CHUNK_SAMPLING:
            f->sample_rate = rd64(&c);
            if (c.bad)
                st = bad_chunk(r, type, "is shorter than its fields");
            else if (f->version < OMT_VERSION_SAMPLING || r->chunk != 2 || !f->sample_rate)
                st = bad_chunk(r, type, f->version < OMT_VERSION_SAMPLING ? "is not in format version 1"
                                                       : "is misplaced or has a zero rate");
            break;
        case OMT_CHUNK_EXEC:
        case OMT_CHUNK_END:
            f->end_t = rd64(&c);
            if (type == OMT_CHUNK_EXEC) {
                free(f->exec_path);
                f->exec_path = rd_string(&c, NULL);
                f->ending = OMT_ENDING_EXEC;
            } else {
                f->ending = OMT_ENDING_EXIT;
                ended = true;
            }
            if (c.bad)
                st = bad_chunk(r, type, "is shorter than its fields");
            break;
        }
        if (st != OMT_READ_OK)
            return st;
        if (c.p != c.end)
            return bad_chunk(r, type, "is longer than its contents");
        if (type != OMT_CHUNK_EXEC && type != OMT_CHUNK_END &&
            type != OMT_CHUNK_SAMPLES)
            f->ending = OMT_ENDING_NONE; /* an exec that failed: going on */
        pos += OMT_CHUNK_HEAD + size + OMT_CHUNK_TAIL;
    }
    /* Tracebacks defined after the last flush have empty aggregates. */
    for (int which = 0; which < 2; which++) {
        omt_value **values = which ? &f->peak : &f->current;
        size_t *capacity = which ? &va.peak_capacity : &va.cur_capacity;
        if (*capacity < f->ntracebacks + 1) {
            omt_value *v = realloc(*values, (f->ntracebacks + 1) * sizeof *v);
            if (!v)
                return fail(r, "out of memory");
            memset(v + *capacity, 0, (f->ntracebacks + 1 - *capacity) * sizeof *v);
            *values = v;
            *capacity = f->ntracebacks + 1;
        }
    }
    if (!f->nstates)
        return fail(r, f->cut || !ended
                           ? "holds no complete snapshot: the program ended, or the file was cut, before its first flush"
                           : "holds no snapshot");
    return OMT_READ_OK;
}

static omt_read_status read_header(reader *r) {
    omt_file *f = r->f;
    if (!f->size)
        return fail(r, "is empty: not an objmem-trace recording (one that was "
                       "never written to stops before its header)");
    size_t have = f->size < OMT_MAGIC_SIZE ? f->size : OMT_MAGIC_SIZE;
    if (memcmp(f->data, OMT_MAGIC, have) != 0) {
        if (f->size >= OMT_MAGIC_SIZE &&
            memcmp(f->data, SNAPSHOT_MAGIC, OMT_MAGIC_SIZE) == 0)
            return fail(r, "is an objmem snapshot (om_snapshot_dump), not an objmem-trace recording");
        if (f->size >= OMT_MAGIC_SIZE &&
            memcmp(f->data, OMT_MAGIC, 5) == 0)
            return fail(r, "is not an objmem-trace recording: its first bytes look like one whose line ending was changed by a text-mode copy");
        return fail(r, "is not an objmem-trace recording");
    }
    if (f->size < OMT_HEADER_SIZE)
        return fail(r, "is truncated: the header is incomplete (%zu of %d bytes)",
                    f->size, OMT_HEADER_SIZE);
    uint32_t version = omt_get32(f->data + 8);
    uint32_t flags = omt_get32(f->data + 12);
    if (version > OMT_VERSION)
        return fail(r, "was written by a newer objmem-trace (format version %u; this one reads %d)",
                    version, OMT_VERSION);
    if (version == 0)
        return fail(r, "is corrupt: format version 0");
    f->version = version;
    if (flags)
        return fail(r, "uses features this objmem-trace does not know (flags 0x%x)", flags);
    return OMT_READ_OK;
}

omt_read_status omt_file_parse(unsigned char *data, size_t size, omt_file *f,
                               char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    reader r = {f, err, errlen, 0, 0, 0, 0, 0, 0};
    f->data = data;
    f->size = size;
    omt_read_status st = read_header(&r);
    if (st == OMT_READ_OK)
        st = read_chunks(&r);
    if (st != OMT_READ_OK)
        omt_file_free(f);
    return st;
}

omt_read_status omt_file_read(const char *path, omt_file *f, char *err,
                              size_t errlen) {
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "rb");
    if (!in) {
        snprintf(err, errlen, "cannot be opened: %s", strerror(errno));
        return OMT_READ_IO;
    }
    size_t cap = 1 << 16, size = 0;
    unsigned char *data = malloc(cap);
    for (;;) {
        if (!data) {
            fclose(in);
            snprintf(err, errlen, "cannot be read: out of memory");
            return OMT_READ_IO;
        }
        size += fread(data + size, 1, cap - size, in);
        if (size < cap)
            break;
        unsigned char *d = cap * 2 > cap ? realloc(data, cap * 2) : NULL;
        if (!d)
            free(data);
        data = d;
        cap *= 2;
    }
    bool io_error = ferror(in);
    int saved = errno;
    fclose(in);
    if (io_error) {
        free(data);
        snprintf(err, errlen, "cannot be read: %s", strerror(saved));
        return OMT_READ_IO;
    }
    return omt_file_parse(data, size, f, err, errlen);
}

void omt_file_free(omt_file *f) {
    free(f->cmdline);
    free(f->exe);
    for (size_t i = 0; i < f->nmodules; i++) {
        free(f->modules[i].lo);
        free(f->modules[i].hi);
        free(f->modules[i].path);
    }
    free(f->modules);
    for (size_t i = 0; i < f->ntracebacks; i++)
        free((void *)f->tracebacks[i].frames);
    free(f->tracebacks);
    free(f->current);
    free(f->peak);
    free(f->samples);
    free(f->exec_path);
    free(f->data);
    memset(f, 0, sizeof *f);
}
