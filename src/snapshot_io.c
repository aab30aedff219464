/*
 * snapshot_io.c — om_snapshot_dump and om_snapshot_load: snapshots in
 * objmem's versioned little-endian binary format (docs/design.md,
 * "Snapshot file format", gives the layout field by field; its constants
 * are in snapshot_io.h).
 *
 * Loading trusts nothing in the bytes, in two passes.  The first walks the
 * sections by their records' lengths alone, checking every count and
 * length against the bytes that remain before using it, so truncation,
 * impossible counts and trailing bytes are all found before anything is
 * allocated; then the checksum is verified.  The second checks what the
 * records say (indices, frame counts, NUL bytes) as it builds the
 * snapshot, interning each string and traceback once, by its index.
 *
 * Dumping numbers the strings, frames and tracebacks that the traces use
 * in the order it first meets them (so equal snapshots give equal files),
 * and writes a temporary file beside the destination, synced to the disk
 * and then renamed over it, so that the name never points at a partial
 * file, even after a crash of the machine.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fsync */

#include "snapshot.h"
#include "snapshot_io.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Domains and line numbers are unsigned in the API and u32 in the file. */
_Static_assert(UINT_MAX == UINT32_MAX, "unsigned is 32 bits");

uint64_t om_snapfile_fnv(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* ---- fields and layout --------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static void set_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

static void set_u64(uint8_t *p, uint64_t v) {
    set_u32(p, (uint32_t)v);
    set_u32(p + 4, (uint32_t)(v >> 32));
}

/* The sections, in file order.  Every record starts with `head` fixed
 * bytes; in strings and tracebacks the first 4 of them count the
 * `elem`-byte items that follow. */
enum { SEC_STRINGS, SEC_FRAMES, SEC_TRACEBACKS, SEC_TRACES, SECTIONS };

typedef struct section_layout {
    const char *name; /* the section's, in messages */
    const char *item; /* one record's */
    size_t head;
    size_t elem;      /* 0: every record is `head` bytes */
} section_layout;

static const section_layout layouts[SECTIONS] = {
    /* u32 length, then that many bytes (no NUL) */
    [SEC_STRINGS] = {"strings", "string", 4, 1},
    /* u32 filename (a string index), u32 lineno, u32 function (ditto) */
    [SEC_FRAMES] = {"frames", "frame", 12, 0},
    /* u32 nframes, u64 total_nframe, then nframes u32 frame indices, the
     * most recent frame first */
    [SEC_TRACEBACKS] = {"tracebacks", "traceback", 12, 4},
    /* u32 domain, u64 size, u32 traceback index */
    [SEC_TRACES] = {"traces", "trace", 16, 0},
};

/* Header offsets: the magic number at 0, then these; the counts of
 * strings, frames and tracebacks are u32, the count of traces u64. */
enum { OFF_VERSION = 8, OFF_FLAGS = 12, OFF_LIMIT = 16, OFF_COUNTS = 20,
       OFF_NTRACES = 32 };
_Static_assert(OFF_NTRACES + 8 == OM_SNAPFILE_HEADER_SIZE, "header size");

typedef struct file_header {
    uint32_t version;
    uint32_t flags;           /* none defined: any set bit is rejected */
    uint32_t traceback_limit;
    uint64_t count[SECTIONS]; /* records in each section */
} file_header;

static void encode_header(uint8_t *out, const file_header *h) {
    memcpy(out, OM_SNAPFILE_MAGIC, OM_SNAPFILE_MAGIC_SIZE);
    set_u32(out + OFF_VERSION, h->version);
    set_u32(out + OFF_FLAGS, h->flags);
    set_u32(out + OFF_LIMIT, h->traceback_limit);
    for (int s = 0; s < SEC_TRACES; s++)
        set_u32(out + OFF_COUNTS + 4 * s, (uint32_t)h->count[s]);
    set_u64(out + OFF_NTRACES, h->count[SEC_TRACES]);
}

static void decode_header(const uint8_t *in, file_header *h) {
    h->version = get_u32(in + OFF_VERSION);
    h->flags = get_u32(in + OFF_FLAGS);
    h->traceback_limit = get_u32(in + OFF_LIMIT);
    for (int s = 0; s < SEC_TRACES; s++)
        h->count[s] = get_u32(in + OFF_COUNTS + 4 * s);
    h->count[SEC_TRACES] = get_u64(in + OFF_NTRACES);
}

/* *total += count * size; false (and *total unchanged) on overflow. */
static bool add_array_bytes(size_t *total, uint64_t count, size_t size) {
    if (count > (SIZE_MAX - *total) / size)
        return false;
    *total += (size_t)count * size;
    return true;
}

/* ---- loading: the checks before anything is built ------------------------ */

/* Record a malformed-input failure of func. */
static OM_PRINTF(3, 4) om_status format_error(om_runtime *rt,
                                              const char *func,
                                              const char *fmt, ...) {
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return om_error(rt, OM_ERR_FORMAT, "%s: %s", func, msg);
}

static om_status bad_magic(om_runtime *rt, const char *func,
                           const uint8_t *data, size_t n) {
    /* The magic number ends in CR LF: the rest intact means a text-mode
     * copy changed the line endings. */
    if (n > OM_SNAPFILE_MAGIC_SIZE - 2 &&
        memcmp(data, OM_SNAPFILE_MAGIC, OM_SNAPFILE_MAGIC_SIZE - 2) == 0)
        return format_error(rt, func,
                            "not a snapshot as written: its line endings "
                            "were changed (copied in text mode?)");
    return format_error(rt, func, "not an objmem snapshot (bad magic number)");
}

/* The magic number, and a header this library can read. */
static om_status check_header(om_runtime *rt, const char *func,
                              const uint8_t *data, size_t n, file_header *h) {
    size_t m = n < OM_SNAPFILE_MAGIC_SIZE ? n : OM_SNAPFILE_MAGIC_SIZE;
    if (memcmp(data, OM_SNAPFILE_MAGIC, m) != 0)
        return bad_magic(rt, func, data, n);
    if (n < OM_SNAPFILE_HEADER_SIZE)
        return format_error(rt, func, "truncated in the header (%zu of %d "
                            "bytes)", n, OM_SNAPFILE_HEADER_SIZE);
    decode_header(data, h);
    if (h->version > OM_SNAPFILE_VERSION)
        return format_error(rt, func, "written by a newer objmem (format "
                            "version %" PRIu32 "; this library reads %d)",
                            h->version, OM_SNAPFILE_VERSION);
    if (h->version < 1)
        return format_error(rt, func, "invalid format version 0 (this "
                            "library reads %d)", OM_SNAPFILE_VERSION);
    /* A flag would announce something this reader does not know. */
    if (h->flags)
        return format_error(rt, func, "unknown flags 0x%" PRIx32 " (written "
                            "by a newer objmem?)", h->flags);
    return OM_OK;
}

/* Find where each section starts in [p, end) from the records' lengths
 * alone.  Each count and length is checked against the bytes left before
 * it is used, so every product below fits. */
static om_status find_sections(om_runtime *rt, const char *func,
                               const file_header *h, const uint8_t *p,
                               const uint8_t *end,
                               const uint8_t *start[SECTIONS]) {
    for (int s = 0; s < SECTIONS; s++) {
        const section_layout *l = &layouts[s];
        uint64_t count = h->count[s];
        size_t room = (size_t)(end - p) / l->head;
        start[s] = p;
        if (count > room)
            return format_error(rt, func, "truncated in the %s section, or "
                                "larger than its contents: %" PRIu64 " %s "
                                "claimed, room for at most %zu",
                                l->name, count, l->name, room);
        if (!l->elem) {
            p += (size_t)count * l->head;
            continue;
        }
        for (uint64_t i = 0; i < count; i++) {
            size_t left = (size_t)(end - p);
            if (left < l->head || (left - l->head) / l->elem < get_u32(p))
                return format_error(rt, func, "truncated in the %s section "
                                    "(%s index %" PRIu64 " of %" PRIu64 ")",
                                    l->name, l->item, i, count);
            p += l->head + (size_t)get_u32(p) * l->elem;
        }
    }
    if (p != end)
        return format_error(rt, func, "%zu bytes of trailing garbage after "
                            "the traces section", (size_t)(end - p));
    return OM_OK;
}

/* Everything that can be checked before building: header, layout,
 * checksum, then the header's values.  Layout comes before the checksum
 * so that a truncated file is reported as such, with its section. */
static om_status check_file(om_runtime *rt, const char *func,
                            const uint8_t *data, size_t n, file_header *h,
                            const uint8_t *start[SECTIONS]) {
    om_status st = check_header(rt, func, data, n, h);
    if (st != OM_OK)
        return st;
    size_t body = n - OM_SNAPFILE_HEADER_SIZE;
    bool summed = body >= OM_SNAPFILE_CHECKSUM_SIZE;
    const uint8_t *end = data + (summed ? n - OM_SNAPFILE_CHECKSUM_SIZE
                                        : OM_SNAPFILE_HEADER_SIZE);
    st = find_sections(rt, func, h, data + OM_SNAPFILE_HEADER_SIZE, end,
                       start);
    if (st != OM_OK)
        return st;
    if (!summed)
        return format_error(rt, func, "truncated in the checksum");
    uint64_t stored = get_u64(end);
    uint64_t actual = om_snapfile_fnv(OM_SNAPFILE_FNV_BASIS, data,
                                      (size_t)(end - data));
    if (stored != actual)
        return format_error(rt, func, "corrupt: checksum mismatch (stored "
                            "%016" PRIx64 ", computed %016" PRIx64 ")",
                            stored, actual);
    if (h->traceback_limit < 1 ||
        h->traceback_limit > OM_TRACEMALLOC_MAX_FRAMES)
        return format_error(rt, func, "traceback_limit %" PRIu32 " is not "
                            "in range [1; %d]", h->traceback_limit,
                            OM_TRACEMALLOC_MAX_FRAMES);
    return OM_OK;
}

/* ---- loading: building the snapshot -------------------------------------- */

/* The records decoded so far, by index. */
typedef struct loader {
    om_runtime *rt;
    const char *func;
    const file_header *h;
    om_snapshot *snap;
    om_frame *frames;                /* strings interned in snap */
    const char **strings;            /* interned in snap */
    const om_traceback **tracebacks; /* interned in snap */
} loader;

static om_status load_nomem(const loader *ld) {
    return om_error(ld->rt, OM_ERR_NOMEM, "%s: out of memory", ld->func);
}

/* One block for the three index tables; their counts are bounded by the
 * input's size (find_sections), so this is at most a few times that. */
static om_status alloc_tables(loader *ld) {
    const uint64_t *count = ld->h->count;
    size_t bytes = 0;
    if (!add_array_bytes(&bytes, count[SEC_FRAMES], sizeof(om_frame)) ||
        !add_array_bytes(&bytes, count[SEC_STRINGS], sizeof(char *)) ||
        !add_array_bytes(&bytes, count[SEC_TRACEBACKS],
                         sizeof(om_traceback *)))
        return load_nomem(ld);
    if (!bytes)
        return OM_OK;
    ld->frames = om_alloc_attempt(ld->rt) ? om_raw_malloc(ld->rt, bytes)
                                          : NULL;
    if (!ld->frames)
        return load_nomem(ld);
    ld->strings = (const char **)(ld->frames + count[SEC_FRAMES]);
    ld->tracebacks =
        (const om_traceback **)(ld->strings + count[SEC_STRINGS]);
    return OM_OK;
}

static om_status load_strings(loader *ld, const uint8_t *p) {
    for (uint64_t i = 0; i < ld->h->count[SEC_STRINGS]; i++) {
        uint32_t len = get_u32(p);
        const char *s = (const char *)p + 4;
        if (memchr(s, '\0', len))
            return format_error(ld->rt, ld->func, "string %" PRIu64
                                " contains a NUL byte", i);
        ld->strings[i] = om_snapshot_intern_string(ld->snap, s, len);
        if (!ld->strings[i])
            return load_nomem(ld);
        p += 4 + (size_t)len;
    }
    return OM_OK;
}

static om_status load_frames(loader *ld, const uint8_t *p) {
    uint64_t nstrings = ld->h->count[SEC_STRINGS];
    for (uint64_t i = 0; i < ld->h->count[SEC_FRAMES]; i++, p += 12) {
        uint32_t file = get_u32(p), func = get_u32(p + 8);
        if (file >= nstrings || func >= nstrings)
            return format_error(ld->rt, ld->func, "frame %" PRIu64 " names "
                                "string %" PRIu32 "; there are %" PRIu64,
                                i, file >= nstrings ? file : func, nstrings);
        ld->frames[i] = (om_frame){ld->strings[file], get_u32(p + 4),
                                   ld->strings[func]};
    }
    return OM_OK;
}

/* Traceback i, whose record is at p: its frames by index, checked. */
static om_status load_traceback(loader *ld, uint64_t i, const uint8_t *p) {
    uint32_t nframes = get_u32(p);
    uint64_t total = get_u64(p + 4);
    uint64_t nknown = ld->h->count[SEC_FRAMES];
    if (nframes > ld->h->traceback_limit)
        return format_error(ld->rt, ld->func, "traceback %" PRIu64 " has %"
                            PRIu32 " frames, more than the traceback_limit "
                            "%" PRIu32, i, nframes, ld->h->traceback_limit);
    if (total < nframes)
        return format_error(ld->rt, ld->func, "traceback %" PRIu64 " has "
                            "total_nframe %" PRIu64 ", fewer than its %"
                            PRIu32 " frames", i, total, nframes);
#if SIZE_MAX < UINT64_MAX
    if (total > SIZE_MAX)
        return format_error(ld->rt, ld->func, "traceback %" PRIu64 " has "
                            "total_nframe %" PRIu64 ", beyond size_t here",
                            i, total);
#endif
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    for (uint32_t j = 0; j < nframes; j++) {
        uint32_t f = get_u32(p + 12 + 4 * (size_t)j);
        if (f >= nknown)
            return format_error(ld->rt, ld->func, "traceback %" PRIu64
                                " names frame %" PRIu32 "; there are %"
                                PRIu64, i, f, nknown);
        frames[j] = ld->frames[f];
    }
    ld->tracebacks[i] = om_snapshot_intern_traceback(ld->snap, frames,
                                                     nframes, (size_t)total);
    return ld->tracebacks[i] ? OM_OK : load_nomem(ld);
}

static om_status load_tracebacks(loader *ld, const uint8_t *p) {
    for (uint64_t i = 0; i < ld->h->count[SEC_TRACEBACKS]; i++) {
        om_status st = load_traceback(ld, i, p);
        if (st != OM_OK)
            return st;
        p += 12 + 4 * (size_t)get_u32(p);
    }
    return OM_OK;
}

static om_status load_traces(loader *ld, const uint8_t *p) {
    uint64_t ntracebacks = ld->h->count[SEC_TRACEBACKS];
    for (uint64_t i = 0; i < ld->h->count[SEC_TRACES]; i++, p += 16) {
        uint64_t size = get_u64(p + 4);
        uint32_t tb = get_u32(p + 12);
        if (tb >= ntracebacks)
            return format_error(ld->rt, ld->func, "trace %" PRIu64 " names "
                                "traceback %" PRIu32 "; there are %" PRIu64,
                                i, tb, ntracebacks);
#if SIZE_MAX < UINT64_MAX
        if (size > SIZE_MAX)
            return format_error(ld->rt, ld->func, "trace %" PRIu64 " has "
                                "size %" PRIu64 ", beyond size_t here", i,
                                size);
#endif
        om_status st = om_snapshot_append(ld->snap, get_u32(p), (size_t)size,
                                          ld->tracebacks[tb]);
        if (st != OM_OK)
            return st;
    }
    return OM_OK;
}

/* The snapshot of a file that passed check_file, or NULL (nothing left
 * allocated). */
static om_snapshot *build(om_runtime *rt, const char *func,
                          const file_header *h,
                          const uint8_t *const start[SECTIONS]) {
    loader ld = {.rt = rt, .func = func, .h = h};
    ld.snap = om_snapshot_new(rt, (int)h->traceback_limit);
    if (!ld.snap)
        return NULL;
    if (alloc_tables(&ld) != OM_OK ||
        load_strings(&ld, start[SEC_STRINGS]) != OM_OK ||
        load_frames(&ld, start[SEC_FRAMES]) != OM_OK ||
        load_tracebacks(&ld, start[SEC_TRACEBACKS]) != OM_OK ||
        load_traces(&ld, start[SEC_TRACES]) != OM_OK) {
        om_snapshot_free(ld.snap);
        ld.snap = NULL;
    }
    om_raw_free(rt, ld.frames);
    return ld.snap;
}

static om_snapshot *decode(om_runtime *rt, const char *func,
                           const uint8_t *data, size_t n) {
    file_header h;
    const uint8_t *start[SECTIONS];
    if (check_file(rt, func, data, n, &h, start) != OM_OK)
        return NULL;
    return build(rt, func, &h, start);
}

om_snapshot *om_snapshot_load_bytes(om_runtime *rt, const void *data,
                                    size_t n) {
    if (!rt)
        return NULL;
    if (!data)
        return OM_FAIL_NULL(rt, OM_ERR_ARG,
                            "om_snapshot_load_bytes: data is NULL");
    return decode(rt, "om_snapshot_load_bytes", data, n);
}

/* ---- loading a file ------------------------------------------------------ */

/* A file is read whole rather than streamed: files and bytes then share
 * one parser, which checks every count, length and the checksum before it
 * builds anything.  The snapshot built takes more memory than the file (a
 * 16-byte trace record becomes a 24-byte om_trace), so holding the file
 * meanwhile at most doubles the peak.  Reading stops past LOAD_MAX bytes
 * (about 268 million traces), and after the first chunk if that does not
 * start like a snapshot, so a wrong path (a device that never ends, a huge
 * unrelated file) costs little. */
#define LOAD_CHUNK ((size_t)64 * 1024)
#define LOAD_MAX                                                   \
    ((uint64_t)SIZE_MAX / 2 < (uint64_t)1 << 32 ? (size_t)SIZE_MAX / 2 \
                                                : (size_t)((uint64_t)1 << 32))

/* Grow *buf (holding *cap bytes) towards LOAD_MAX + 1, so that a file
 * over LOAD_MAX shows itself by filling it. */
static om_status grow_buffer(om_runtime *rt, const char *path, uint8_t **buf,
                             size_t *cap) {
    size_t want = !*cap                  ? LOAD_CHUNK
                  : *cap > LOAD_MAX / 2 ? LOAD_MAX + 1
                                        : *cap * 2;
    uint8_t *grown = om_alloc_attempt(rt) ? om_raw_realloc(rt, *buf, want)
                                          : NULL;
    if (!grown)
        return om_error(rt, OM_ERR_NOMEM, "om_snapshot_load: out of memory "
                        "reading '%s' (%zu bytes)", path, want);
    *buf = grown;
    *cap = want;
    return OM_OK;
}

static om_status read_file(om_runtime *rt, FILE *f, const char *path,
                           uint8_t **out, size_t *out_n) {
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    om_status st = OM_OK;
    for (;;) {
        if (n == cap) {
            bool not_snapshot =
                n && memcmp(buf, OM_SNAPFILE_MAGIC, OM_SNAPFILE_MAGIC_SIZE);
            if (not_snapshot || n > LOAD_MAX)
                break;
            if ((st = grow_buffer(rt, path, &buf, &cap)) != OM_OK)
                break;
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            if (ferror(f))
                st = om_error(rt, OM_ERR_IO, "om_snapshot_load: cannot read "
                              "'%s': %s", path,
                              strerror(errno ? errno : EIO));
            break;
        }
    }
    if (st == OM_OK && n > LOAD_MAX)
        st = format_error(rt, "om_snapshot_load", "'%s' is larger than %zu "
                          "bytes, the most a snapshot file may have", path,
                          LOAD_MAX);
    if (st != OM_OK) {
        om_raw_free(rt, buf);
        return st;
    }
    *out = buf;
    *out_n = n;
    return OM_OK;
}

om_snapshot *om_snapshot_load(om_runtime *rt, const char *path) {
    if (!rt)
        return NULL;
    if (!path)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_snapshot_load: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return OM_FAIL_NULL(rt, OM_ERR_IO, "om_snapshot_load: cannot open "
                            "'%s': %s", path, strerror(errno));
    uint8_t *data;
    size_t n;
    om_status st = read_file(rt, f, path, &data, &n);
    fclose(f);
    if (st != OM_OK)
        return NULL;
    om_snapshot *snap = decode(rt, "om_snapshot_load", data, n);
    om_raw_free(rt, data);
    return snap;
}

/* ---- dumping: numbering what the traces use ------------------------------ */

/* A string or traceback by its (interned) address; a frame by its
 * strings' indices and its line. */
typedef struct item_key {
    uint64_t a, b;
} item_key;

/* Items numbered in the order they are first added.  Not om_ptrmap:
 * frames are keyed by content (a traceback holds copies of its frames, not
 * the interned ones), and writing needs the items in number order.
 * Invariant: count <= bound, the snapshot's number of interned items of
 * the kind, which is at least the number its traces use; slots are at most
 * half full. */
typedef struct item_table {
    item_key *keys;  /* keys[i] is item i */
    uint32_t *slots; /* mask + 1 entries: an index + 1, or 0 when empty */
    size_t count, bound, mask;
} item_table;

static om_status table_init(om_runtime *rt, item_table *t, size_t bound,
                            const char *kind) {
    if (bound > UINT32_MAX)
        return om_error(rt, OM_ERR_OVERFLOW, "om_snapshot_dump: %zu %s are "
                        "more than the format's 32-bit indices can number",
                        bound, kind);
    /* Each interned item takes at least 16 bytes of the snapshot's arena,
     * so 2 * bound cannot overflow. */
    size_t capacity = 8;
    while (capacity < 2 * bound)
        capacity *= 2;
    size_t bytes = 0;
    void *block = NULL;
    if (add_array_bytes(&bytes, bound, sizeof(item_key)) &&
        add_array_bytes(&bytes, capacity, sizeof(uint32_t)) &&
        om_alloc_attempt(rt))
        block = om_raw_calloc(rt, 1, bytes);
    if (!block)
        return om_error(rt, OM_ERR_NOMEM, "om_snapshot_dump: out of memory");
    t->keys = block;
    t->slots = (uint32_t *)(t->keys + bound);
    t->bound = bound;
    t->mask = capacity - 1;
    return OM_OK;
}

/* The slot of k: holding its index + 1, or the empty one where it goes. */
static uint32_t *table_slot(const item_table *t, item_key k) {
    for (size_t i = om_hash_word(k.a ^ om_hash_word(k.b)) & t->mask;;
         i = (i + 1) & t->mask) {
        uint32_t *slot = &t->slots[i];
        if (!*slot || (t->keys[*slot - 1].a == k.a &&
                       t->keys[*slot - 1].b == k.b))
            return slot;
    }
}

/* The index of k, numbering it next when new (*added says so). */
static uint32_t table_add(item_table *t, item_key k, bool *added) {
    uint32_t *slot = table_slot(t, k);
    *added = !*slot;
    if (*added) {
        OM_ASSERT(t->count < t->bound);
        t->keys[t->count++] = k;
        *slot = (uint32_t)t->count;
    }
    return *slot - 1;
}

/* The index of k, which table_add numbered. */
static uint32_t table_index(const item_table *t, item_key k) {
    uint32_t *slot = table_slot(t, k);
    OM_ASSERT(*slot);
    return *slot - 1;
}

static item_key address_key(const void *p) {
    return (item_key){(uintptr_t)p, 0};
}

static item_key frame_key(uint32_t filename, uint32_t function,
                          unsigned lineno) {
    return (item_key){filename | (uint64_t)function << 32, lineno};
}

typedef struct dumper {
    const om_snapshot *snap;
    item_table strings, frames, tracebacks;
} dumper;

static uint32_t add_string(dumper *d, const char *s) {
    bool added;
    return table_add(&d->strings, address_key(s), &added);
}

/* Number the traces' tracebacks, and the frames and strings of each new
 * one, in the order first met. */
static void number_items(dumper *d) {
    for (size_t i = 0; i < d->snap->ntraces; i++) {
        const om_traceback *tb = d->snap->traces[i].traceback;
        bool added;
        table_add(&d->tracebacks, address_key(tb), &added);
        if (!added)
            continue;
        for (size_t j = 0; j < tb->nframes; j++) {
            const om_frame *f = &tb->frames[j];
            uint32_t file = add_string(d, f->filename);
            uint32_t func = add_string(d, f->function);
            bool new_frame;
            table_add(&d->frames, frame_key(file, func, f->lineno),
                      &new_frame);
        }
    }
}

static void dumper_free(dumper *d) {
    om_runtime *rt = d->snap->rt;
    om_raw_free(rt, d->strings.keys);
    om_raw_free(rt, d->frames.keys);
    om_raw_free(rt, d->tracebacks.keys);
}

static om_status dumper_init(dumper *d, const om_snapshot *snap) {
    memset(d, 0, sizeof *d);
    d->snap = snap;
    om_status st = table_init(snap->rt, &d->strings, snap->strings.count,
                              "strings");
    if (st == OM_OK)
        st = table_init(snap->rt, &d->frames, snap->frames.count, "frames");
    if (st == OM_OK)
        st = table_init(snap->rt, &d->tracebacks, snap->tracebacks.count,
                        "tracebacks");
    if (st == OM_OK)
        number_items(d);
    return st;
}

/* ---- dumping: writing ---------------------------------------------------- */

/* Buffered output that sums every byte put through it; after the first
 * failed write it writes nothing more and keeps that errno. */
typedef struct writer {
    FILE *f;
    uint64_t sum;
    int error;
    size_t used;
    uint8_t buf[8192];
} writer;

static void w_out(writer *w, const void *p, size_t n) {
    errno = 0;
    if (!w->error && fwrite(p, 1, n, w->f) != n)
        w->error = errno ? errno : EIO;
}

static void w_flush(writer *w) {
    w_out(w, w->buf, w->used);
    w->used = 0;
}

static void w_put(writer *w, const void *p, size_t n) {
    w->sum = om_snapfile_fnv(w->sum, p, n);
    if (n > sizeof w->buf - w->used) {
        w_flush(w);
        if (n > sizeof w->buf) {
            w_out(w, p, n);
            return;
        }
    }
    memcpy(w->buf + w->used, p, n);
    w->used += n;
}

static void w_u32(writer *w, uint32_t v) {
    uint8_t b[4];
    set_u32(b, v);
    w_put(w, b, sizeof b);
}

static void w_u64(writer *w, uint64_t v) {
    uint8_t b[8];
    set_u64(b, v);
    w_put(w, b, sizeof b);
}

static void write_header(writer *w, const dumper *d) {
    file_header h = {
        OM_SNAPFILE_VERSION, 0, (uint32_t)d->snap->traceback_limit,
        {d->strings.count, d->frames.count, d->tracebacks.count,
         d->snap->ntraces}};
    uint8_t b[OM_SNAPFILE_HEADER_SIZE];
    encode_header(b, &h);
    w_put(w, b, sizeof b);
}

static void write_strings(writer *w, const dumper *d) {
    for (size_t i = 0; i < d->strings.count; i++) {
        const char *s = (const char *)(uintptr_t)d->strings.keys[i].a;
        size_t len = strlen(s);
        if (len > UINT32_MAX) {
            w->error = EOVERFLOW;
            return;
        }
        w_u32(w, (uint32_t)len);
        w_put(w, s, len);
    }
}

static void write_frames(writer *w, const dumper *d) {
    for (size_t i = 0; i < d->frames.count; i++) {
        item_key k = d->frames.keys[i];
        w_u32(w, (uint32_t)k.a);
        w_u32(w, (uint32_t)k.b);
        w_u32(w, (uint32_t)(k.a >> 32));
    }
}

static void write_tracebacks(writer *w, const dumper *d) {
    for (size_t i = 0; i < d->tracebacks.count; i++) {
        const om_traceback *tb =
            (const om_traceback *)(uintptr_t)d->tracebacks.keys[i].a;
        w_u32(w, (uint32_t)tb->nframes);
        w_u64(w, tb->total_nframe);
        for (size_t j = 0; j < tb->nframes; j++) {
            const om_frame *f = &tb->frames[j];
            item_key k = frame_key(
                table_index(&d->strings, address_key(f->filename)),
                table_index(&d->strings, address_key(f->function)),
                f->lineno);
            w_u32(w, table_index(&d->frames, k));
        }
    }
}

static void write_traces(writer *w, const dumper *d) {
    for (size_t i = 0; i < d->snap->ntraces; i++) {
        const om_trace *t = &d->snap->traces[i];
        w_u32(w, t->domain);
        w_u64(w, t->size);
        w_u32(w, table_index(&d->tracebacks, address_key(t->traceback)));
    }
}

/* Write the whole file to f, sync it to the disk and close it: 0, or the
 * errno of the first failure. */
static int write_file(FILE *f, const dumper *d) {
    writer w = {.f = f, .sum = OM_SNAPFILE_FNV_BASIS};
    write_header(&w, d);
    write_strings(&w, d);
    write_frames(&w, d);
    write_tracebacks(&w, d);
    write_traces(&w, d);
    w_flush(&w);
    uint8_t sum[OM_SNAPFILE_CHECKSUM_SIZE];
    set_u64(sum, w.sum);
    w_out(&w, sum, sizeof sum);
    errno = 0;
    if (!w.error && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        w.error = errno ? errno : EIO;
    errno = 0;
    if (fclose(f) != 0 && !w.error)
        w.error = errno ? errno : EIO;
    return w.error;
}

/* ".<16 hex digits>.tmp" */
#define TEMP_SUFFIX_SIZE sizeof ".0123456789abcdef.tmp"
#define TEMP_ATTEMPTS 8

/* Create "<path>.<16 hex digits>.tmp" (a name of size bytes) for writing.
 * Mode "x" (C11) creates exclusively, so another dump's temporary file or
 * an unrelated one is never overwritten; the digits vary with time and
 * address, and a name already taken is retried.  NULL, errno set, when it
 * cannot be made. */
static FILE *create_temp(const char *path, char *name, size_t size) {
    uint64_t token = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 24) ^
                     (uintptr_t)name;
    for (int attempt = 0; attempt < TEMP_ATTEMPTS; attempt++) {
        token = om_hash_word(token + (uint64_t)attempt);
        snprintf(name, size, "%s.%016llx.tmp", path,
                 (unsigned long long)token);
        errno = 0;
        FILE *f = fopen(name, "wbx");
        if (f || errno != EEXIST)
            return f;
    }
    return NULL;
}

/* Write a temporary file beside path and rename it over path, so that a
 * failure leaves path as it was (and no temporary file behind). */
static om_status write_atomically(const dumper *d, const char *path) {
    om_runtime *rt = d->snap->rt;
    size_t size = strlen(path) + TEMP_SUFFIX_SIZE;
    char *tmp = om_alloc_attempt(rt) ? om_raw_malloc(rt, size) : NULL;
    if (!tmp)
        return om_error(rt, OM_ERR_NOMEM, "om_snapshot_dump: out of memory");
    om_status st = OM_OK;
    FILE *f = create_temp(path, tmp, size);
    bool created = f != NULL;
    int err;
    if (!created) {
        st = om_error(rt, OM_ERR_IO, "om_snapshot_dump: cannot create '%s': "
                      "%s", tmp, strerror(errno ? errno : EIO));
    } else if ((err = write_file(f, d)) != 0) {
        st = om_error(rt, OM_ERR_IO, "om_snapshot_dump: cannot write '%s': "
                      "%s", tmp, strerror(err));
    } else if (rename(tmp, path) != 0) {
        st = om_error(rt, OM_ERR_IO, "om_snapshot_dump: cannot rename '%s' "
                      "to '%s': %s", tmp, path, strerror(errno));
    }
    if (created && st != OM_OK)
        remove(tmp);
    om_raw_free(rt, tmp);
    return st;
}

om_status om_snapshot_dump(const om_snapshot *snap, const char *path) {
    if (!snap)
        return OM_ERR_ARG;
    if (!path)
        return om_error(snap->rt, OM_ERR_ARG,
                        "om_snapshot_dump: path is NULL");
    dumper d;
    om_status st = dumper_init(&d, snap);
    if (st == OM_OK)
        st = write_atomically(&d, path);
    dumper_free(&d);
    return st;
}
