/*
 * test_snapshot_io.c — om_snapshot_dump and om_snapshot_load(_bytes): round
 * trips (empty, many traces with random domains, 64-bit sizes, unicode,
 * empty and long strings, 100-frame tracebacks, lineno 0 and UINT_MAX;
 * equal tracebacks shared after loading; dumps canonical); the bytes of a
 * small dump spelled out against the format (docs/design.md, "Snapshot
 * file format"); every truncation and every single-bit flip of a valid
 * file rejected; hand-made files with a recomputed checksum for each check
 * behind it (magic, versions, flags, limits, counts, indices, NUL bytes,
 * trailing bytes); I/O errors with nothing left behind; and allocation
 * failure at every step of dump and load, with nothing leaked (a counting
 * raw allocator).  Random snapshots take --seed.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, opendir, chmod, setrlimit, SIGXFSZ */
#include "support.h"
#include "snapshot_io.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- a raw allocator counting live blocks -------------------------------- */

typedef struct counter {
    long live;   /* blocks allocated and not freed */
    long calls;  /* allocations asked for */
} counter;

static void *count_malloc(void *ctx, size_t n) {
    void *p = malloc(n);
    counter *c = ctx;
    c->calls++;
    c->live += p != NULL;
    return p;
}

static void *count_calloc(void *ctx, size_t count, size_t size) {
    void *p = calloc(count, size);
    counter *c = ctx;
    c->calls++;
    c->live += p != NULL;
    return p;
}

static void *count_realloc(void *ctx, void *old, size_t n) {
    void *p = realloc(old, n);
    counter *c = ctx;
    c->calls++;
    c->live += !old && p;
    return p;
}

static void count_free(void *ctx, void *p) {
    ((counter *)ctx)->live -= p != NULL;
    free(p);
}

static om_runtime *new_runtime(counter *c) {
    om_config config;
    om_config_init(&config);
    config.raw = (om_raw_allocator){c, count_malloc, count_calloc,
                                    count_realloc, count_free};
    om_runtime *rt = om_runtime_new(&config);
    CHECK(rt != NULL);
    return rt;
}

/* ---- a scratch directory ------------------------------------------------- */

typedef struct scratch {
    char dir[64];
    char path[128]; /* dir/snap.omsnap */
} scratch;

static void scratch_open(scratch *s) {
    strcpy(s->dir, "/tmp/om_snapio.XXXXXX");
    CHECK(mkdtemp(s->dir) != NULL);
    snprintf(s->path, sizeof s->path, "%s/snap.omsnap", s->dir);
}

/* Names in the directory other than . and .. */
static int dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static void scratch_close(scratch *s) {
    DIR *d = opendir(s->dir);
    if (d) {
        for (struct dirent *e; (e = readdir(d));) {
            char p[512];
            snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                CHECK(remove(p) == 0);
        }
        closedir(d);
    }
    CHECK(rmdir(s->dir) == 0);
}

/* The whole file at path (malloc'ed; free it), or NULL. */
static uint8_t *read_whole(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    *n = 0;
    size_t got;
    while ((got = fread(buf + *n, 1, cap - *n, f)) > 0) {
        *n += got;
        if (*n == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    return buf;
}

static void write_whole(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (f) {
        CHECK(fwrite(data, 1, n, f) == n);
        CHECK(fclose(f) == 0);
    }
}

/* ---- comparing snapshots ------------------------------------------------- */

static bool same_traceback(const om_traceback *a, const om_traceback *b) {
    if (a->nframes != b->nframes || a->total_nframe != b->total_nframe)
        return false;
    for (size_t i = 0; i < a->nframes; i++)
        if (strcmp(a->frames[i].filename, b->frames[i].filename) ||
            strcmp(a->frames[i].function, b->frames[i].function) ||
            a->frames[i].lineno != b->frames[i].lineno)
            return false;
    return true;
}

/* a and b hold equal traces in the same order, and two traces of a share
 * their traceback exactly when the same two of b do. */
static void check_same(const om_snapshot *a, const om_snapshot *b) {
    size_t na, nb;
    const om_trace *ta = om_snapshot_traces(a, &na);
    const om_trace *tb = om_snapshot_traces(b, &nb);
    CHECK(om_snapshot_traceback_limit(a) == om_snapshot_traceback_limit(b));
    CHECK(na == nb);
    if (na != nb)
        return;
    enum { PAIRS = 4096 };
    static const om_traceback *pairs[PAIRS][2];
    size_t npairs = 0;
    for (size_t i = 0; i < na; i++) {
        CHECK(ta[i].domain == tb[i].domain);
        CHECK(ta[i].size == tb[i].size);
        CHECK(same_traceback(ta[i].traceback, tb[i].traceback));
        size_t k = 0;
        while (k < npairs && pairs[k][0] != ta[i].traceback &&
               pairs[k][1] != tb[i].traceback)
            k++;
        if (k < npairs) {
            CHECK(pairs[k][0] == ta[i].traceback);
            CHECK(pairs[k][1] == tb[i].traceback);
        } else if (npairs < PAIRS) {
            pairs[npairs][0] = ta[i].traceback;
            pairs[npairs++][1] = tb[i].traceback;
        }
    }
}

/* Dump snap to s->path and return the file's bytes (free them). */
static uint8_t *dump_bytes(const om_snapshot *snap, const scratch *s,
                           size_t *n) {
    CHECK(om_snapshot_dump(snap, s->path) == OM_OK);
    uint8_t *bytes = read_whole(s->path, n);
    CHECK(bytes != NULL);
    return bytes;
}

/* Dump, load from the file and from its bytes: both equal to snap, and
 * dumping what was loaded gives the same bytes.  Returns the file's size. */
static size_t check_round_trip(om_runtime *rt, const om_snapshot *snap) {
    scratch s;
    scratch_open(&s);
    size_t n, n2;
    uint8_t *bytes = dump_bytes(snap, &s, &n);
    om_snapshot *loaded = om_snapshot_load(rt, s.path);
    om_snapshot *from_bytes = om_snapshot_load_bytes(rt, bytes, n);
    CHECK(loaded && from_bytes);
    if (loaded && from_bytes) {
        check_same(snap, loaded);
        check_same(snap, from_bytes);
        uint8_t *again = dump_bytes(loaded, &s, &n2);
        CHECK(n2 == n && memcmp(again, bytes, n) == 0);
        free(again);
    }
    CHECK(dir_entries(s.dir) == 1);
    om_snapshot_free(loaded);
    om_snapshot_free(from_bytes);
    free(bytes);
    scratch_close(&s);
    return n;
}

/* ---- round trips --------------------------------------------------------- */

static void test_round_trip_empty(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_new(rt, 7);
    check_round_trip(rt, snap);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

/* Strings to draw frames from: ASCII, unicode, empty, every non-NUL byte,
 * one longer than the writer's buffer. */
enum { NAMES = 6, LONG_NAME = 20000 };
static char long_name[LONG_NAME + 1];
static char all_bytes[256];

static const char *names[NAMES] = {
    "src/alloc.c", "ф/naïve_ünïcødé_\xf0\x9f\x99\x82.c", "", "main",
    all_bytes, long_name};

static void init_names(void) {
    for (int b = 1; b < 256; b++)
        all_bytes[b - 1] = (char)b;
    memset(long_name, 'x', LONG_NAME);
}

static unsigned random_lineno(void) {
    static const unsigned edges[] = {0, 1, UINT_MAX};
    uint64_t r = th_random();
    return r % 4 < 3 ? edges[r % 4] : (unsigned)(r >> 32);
}

/* A traceback of at most limit frames from the name pool. */
static size_t random_frames(om_frame *frames, int limit) {
    size_t n = th_random() % ((size_t)limit + 1);
    for (size_t i = 0; i < n; i++)
        frames[i] = (om_frame){names[th_random() % NAMES], random_lineno(),
                               names[th_random() % NAMES]};
    return n;
}

static void test_round_trip_random(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    static const size_t sizes[] = {0, 1, SIZE_MAX, (size_t)1 << 63,
                                   0x0123456789abcdefull};
    static const unsigned domains[] = {0, 1, 2, 12345, UINT_MAX};
    enum { TRACEBACKS = 40, TRACES = 3000 };
    init_names();
    om_frame frames[TRACEBACKS][8];
    size_t nframes[TRACEBACKS];
    om_snapshot *snap = om_snapshot_new(rt, 8);
    for (int i = 0; i < TRACEBACKS; i++)
        nframes[i] = random_frames(frames[i], 8);
    for (int i = 0; i < TRACES; i++) {
        size_t tb = th_random() % TRACEBACKS;
        size_t total = nframes[tb] + (tb % 3 ? 0 : 1000 * tb);
        size_t size = i % 2 ? sizes[th_random() % 5] : (size_t)th_random();
        CHECK(om_snapshot_add_trace(snap, domains[th_random() % 5], size,
                                    frames[tb], nframes[tb],
                                    total) == OM_OK);
    }
    /* Larger than the loader's first read of a file (64 KiB). */
    CHECK(check_round_trip(rt, snap) > 64 * 1024);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

static void test_round_trip_deep(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_new(rt, OM_TRACEMALLOC_MAX_FRAMES);
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    char fnames[OM_TRACEMALLOC_MAX_FRAMES][16];
    for (int i = 0; i < OM_TRACEMALLOC_MAX_FRAMES; i++) {
        snprintf(fnames[i], sizeof fnames[i], "f%d", i);
        frames[i] = (om_frame){names[1], i % 2 ? UINT_MAX : 0, fnames[i]};
    }
    static const size_t totals[] = {100, 65535, SIZE_MAX};
    for (int i = 0; i < 3; i++)
        CHECK(om_snapshot_add_trace(snap, (unsigned)i, SIZE_MAX - (size_t)i,
                                    frames, OM_TRACEMALLOC_MAX_FRAMES,
                                    totals[i]) == OM_OK);
    CHECK(om_snapshot_add_trace(snap, 0, 1, frames, 0, 0) == OM_OK);
    check_round_trip(rt, snap);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

/* ---- files by hand ------------------------------------------------------- */

typedef struct image {
    uint8_t b[1024];
    size_t n;
} image;

static void put32(image *im, uint32_t v) {
    for (int i = 0; i < 4; i++)
        im->b[im->n++] = (uint8_t)(v >> 8 * i);
}

static void put64(image *im, uint64_t v) {
    put32(im, (uint32_t)v);
    put32(im, (uint32_t)(v >> 32));
}

static void put_header(image *im, uint32_t version, uint32_t flags,
                       uint32_t limit, uint32_t nstrings, uint32_t nframes,
                       uint32_t ntracebacks, uint64_t ntraces) {
    memcpy(im->b, OM_SNAPFILE_MAGIC, OM_SNAPFILE_MAGIC_SIZE);
    im->n = OM_SNAPFILE_MAGIC_SIZE;
    put32(im, version);
    put32(im, flags);
    put32(im, limit);
    put32(im, nstrings);
    put32(im, nframes);
    put32(im, ntracebacks);
    put64(im, ntraces);
}

static void put_string(image *im, const char *s, size_t len) {
    put32(im, (uint32_t)len);
    memcpy(im->b + im->n, s, len);
    im->n += len;
}

static void put_frame(image *im, uint32_t file, uint32_t line, uint32_t func) {
    put32(im, file);
    put32(im, line);
    put32(im, func);
}

/* A traceback of n frames, indices 0, 1, ..., n-1 (mod `frames`). */
static void put_traceback(image *im, uint32_t n, uint64_t total,
                          uint32_t frames) {
    put32(im, n);
    put64(im, total);
    for (uint32_t i = 0; i < n; i++)
        put32(im, i % frames);
}

static void put_trace(image *im, uint32_t domain, uint64_t size,
                      uint32_t tb) {
    put32(im, domain);
    put64(im, size);
    put32(im, tb);
}

/* Append the checksum, so that the loader's later checks are reached. */
static void seal(image *im) {
    put64(im, om_snapfile_fnv(OM_SNAPFILE_FNV_BASIS, im->b, im->n));
}

/* Where each part of small_file starts: header, strings, frames,
 * tracebacks, traces, checksum, and its end. */
static const char *const part_names[] = {"header", "strings", "frames",
                                         "tracebacks", "traces",
                                         "checksum"};
enum { PARTS = 6 };

/* A valid file with every section non-empty: two strings, two frames, two
 * tracebacks (one shared by two traces), three traces. */
static void small_file(image *im, size_t parts[PARTS + 1]) {
    parts[0] = 0;
    put_header(im, 1, 0, 4, 2, 2, 2, 3);
    parts[1] = im->n;
    put_string(im, "a.c", 3);
    put_string(im, "main", 4);
    parts[2] = im->n;
    put_frame(im, 0, 10, 1);
    put_frame(im, 0, 0xffffffff, 1);
    parts[3] = im->n;
    put_traceback(im, 2, 9, 2);
    put_traceback(im, 1, 1, 2);
    parts[4] = im->n;
    put_trace(im, 0, 100, 0);
    put_trace(im, 5, UINT64_MAX, 1);
    put_trace(im, 0, 7, 0);
    parts[5] = im->n;
    seal(im);
    parts[6] = im->n;
}

/* Loading the image fails with OM_ERR_FORMAT and a message naming w1 and
 * w2 (either may be NULL), and leaves no block behind. */
static void expect_format(const image *im, const char *w1, const char *w2) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    long live = c.live;
    CHECK(om_snapshot_load_bytes(rt, im->b, im->n) == NULL);
    CHECK(error_is(rt, OM_ERR_FORMAT, w1, w2));
    CHECK(c.live == live);
    finish(rt);
}

/* ---- the format, byte by byte -------------------------------------------- */

static void test_dump_bytes_spelled_out(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_new(rt, 3);
    om_frame frames[] = {{"a.c", 10, "f"}, {"b.c", 20, "g"}};
    CHECK(om_snapshot_add_trace(snap, 7, 0x0102030405060708ull, frames, 2,
                                5) == OM_OK);
    CHECK(om_snapshot_add_trace(snap, 0, 16, frames, 2, 5) == OM_OK);
    CHECK(om_snapshot_add_trace(snap, 1, 0, NULL, 0, 0) == OM_OK);
    /* Strings, frames and tracebacks are numbered as the traces first use
     * them: a.c f b.c g; (a.c 10 f) (b.c 20 g); the 2-frame traceback. */
    image want = {{0}, 0};
    put_header(&want, 1, 0, 3, 4, 2, 2, 3);
    CHECK(want.n == OM_SNAPFILE_HEADER_SIZE);
    put_string(&want, "a.c", 3);
    put_string(&want, "f", 1);
    put_string(&want, "b.c", 3);
    put_string(&want, "g", 1);
    put_frame(&want, 0, 10, 1);
    put_frame(&want, 2, 20, 3);
    put_traceback(&want, 2, 5, 2);
    put_traceback(&want, 0, 0, 1);
    put_trace(&want, 7, 0x0102030405060708ull, 0);
    put_trace(&want, 0, 16, 0);
    put_trace(&want, 1, 0, 1);
    put64(&want, 0x323c48daf11ecc3aull); /* FNV-1a 64 of the 168 bytes */
    scratch s;
    scratch_open(&s);
    size_t n;
    uint8_t *got = dump_bytes(snap, &s, &n);
    CHECK(n == want.n && memcmp(got, want.b, n) == 0);
    CHECK(n > 12 && !memcmp(got, "\x89OMSNP\r\n\x01\0\0\0", 12));
    free(got);
    scratch_close(&s);
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- damaged files ------------------------------------------------------- */

/* Every proper prefix is rejected as truncated, naming the part the cut
 * falls in: the sections are walked in [header, length - 8), the last 8
 * bytes being taken for the checksum. */
static void test_every_truncation(void) {
    image im = {{0}, 0};
    size_t parts[PARTS + 1];
    small_file(&im, parts);
    for (size_t len = 0; len < im.n; len++) {
        size_t at = len < OM_SNAPFILE_HEADER_SIZE + 8 ? parts[1] : len - 8;
        int part = 0;
        while (len >= OM_SNAPFILE_HEADER_SIZE && at >= parts[part + 1])
            part++;
        image cut = im;
        cut.n = len;
        expect_format(&cut, "truncated", part_names[part]);
    }
}

/* Every single-bit flip is rejected: the checksum catches any change
 * confined to one byte, and flips it misses first fail earlier checks. */
static void test_every_bit_flip(void) {
    image im = {{0}, 0};
    size_t parts[PARTS + 1];
    small_file(&im, parts);
    for (size_t bit = 0; bit < im.n * 8; bit++) {
        image bad = im;
        bad.b[bit / 8] ^= (uint8_t)(1u << bit % 8);
        expect_format(&bad, NULL, NULL);
    }
    /* The intact file loads. */
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_load_bytes(rt, im.b, im.n);
    size_t n;
    const om_trace *t = om_snapshot_traces(snap, &n);
    CHECK(snap && n == 3 && t[0].traceback == t[2].traceback);
    CHECK(n == 3 && t[1].size == SIZE_MAX && t[1].domain == 5 &&
          t[0].traceback->frames[1].lineno == UINT_MAX);
    om_snapshot_free(snap);
    finish(rt);
}

static void test_bad_header(void) {
    image im = {{0}, 0};
    memcpy(im.b, "GIF89a\0\0", 8);
    im.n = 60;
    expect_format(&im, "not an objmem snapshot", NULL);
    /* CR LF turned into LF, and LF into CR LF. */
    put_header(&im, 1, 0, 1, 0, 0, 0, 0);
    seal(&im);
    image lf = im;
    memmove(lf.b + 6, lf.b + 7, lf.n - 7);
    lf.n--;
    expect_format(&lf, "line endings", NULL);
    image crlf = im;
    memmove(crlf.b + 8, crlf.b + 7, crlf.n - 7);
    crlf.b[7] = '\r';
    crlf.n++;
    expect_format(&crlf, "line endings", NULL);
    put_header(&im, 2, 0, 1, 0, 0, 0, 0);
    seal(&im);
    expect_format(&im, "written by a newer objmem (format version 2; "
                  "this library reads 1)", NULL);
    put_header(&im, 0, 0, 1, 0, 0, 0, 0);
    seal(&im);
    expect_format(&im, "format version 0", NULL);
    put_header(&im, 1, 0x10, 1, 0, 0, 0, 0);
    seal(&im);
    expect_format(&im, "unknown flags 0x10", NULL);
    put_header(&im, 1, 0, 0, 0, 0, 0, 0);
    seal(&im);
    expect_format(&im, "traceback_limit 0", "[1; 100]");
    put_header(&im, 1, 0, 101, 0, 0, 0, 0);
    seal(&im);
    expect_format(&im, "traceback_limit 101", NULL);
    /* The smallest valid file: an empty snapshot. */
    put_header(&im, 1, 0, 100, 0, 0, 0, 0);
    seal(&im);
    CHECK(im.n == OM_SNAPFILE_HEADER_SIZE + OM_SNAPFILE_CHECKSUM_SIZE);
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_load_bytes(rt, im.b, im.n);
    CHECK(snap && om_snapshot_traceback_limit(snap) == 100);
    om_snapshot_free(snap);
    CHECK(om_snapshot_load_bytes(rt, "", 0) == NULL);
    CHECK(error_is(rt, OM_ERR_FORMAT, "om_snapshot_load_bytes",
                   "truncated in the header"));
    CHECK(om_snapshot_load_bytes(rt, NULL, 5) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_load_bytes", "NULL"));
    CHECK(om_snapshot_load_bytes(NULL, im.b, im.n) == NULL);
    finish(rt);
}

/* Counts and lengths beyond the bytes present are refused before anything
 * is allocated. */
static void test_counts_beyond_the_file(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    image im = {{0}, 0};
    put_header(&im, 1, 0, 1, 0, 0, 0, (uint64_t)1 << 40);
    memset(im.b + im.n, 0, 52);
    im.n += 52;
    seal(&im);
    long calls = c.calls;
    CHECK(om_snapshot_load_bytes(rt, im.b, im.n) == NULL);
    CHECK(error_is(rt, OM_ERR_FORMAT, "larger than its contents",
                   "1099511627776 traces"));
    CHECK(c.calls == calls);
    put_header(&im, 1, 0, 1, UINT32_MAX, 0, 0, 0);
    seal(&im);
    expect_format(&im, "larger than its contents", "strings");
    put_header(&im, 1, 0, 1, 1, 0, 0, 0);
    put32(&im, UINT32_MAX); /* a string of 4 GiB */
    seal(&im);
    expect_format(&im, "truncated in the strings section", "string index 0");
    put_header(&im, 1, 0, 1, 0, 0, 1, 0);
    put32(&im, UINT32_MAX); /* a traceback of 2^32 - 1 frames */
    put64(&im, UINT32_MAX);
    seal(&im);
    expect_format(&im, "truncated in the tracebacks section", NULL);
    put_header(&im, 1, 0, 1, 0, 0, 0, 0);
    put32(&im, 0);
    seal(&im);
    expect_format(&im, "4 bytes of trailing garbage", NULL);
    finish(rt);
}

/* A file like small_file's, whose records the caller writes. */
static void test_bad_records(void) {
    image im = {{0}, 0};
    put_header(&im, 1, 0, 4, 1, 1, 1, 1);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 1);           /* function: string 1 of 1 */
    put_traceback(&im, 1, 1, 1);
    put_trace(&im, 0, 1, 0);
    seal(&im);
    expect_format(&im, "frame 0 names string 1", "there are 1");
    put_header(&im, 1, 0, 4, 1, 1, 1, 1);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 0);
    put_traceback(&im, 2, 2, 2);       /* frame 1 of 1 */
    put_trace(&im, 0, 1, 0);
    seal(&im);
    expect_format(&im, "traceback 0 names frame 1", "there are 1");
    put_header(&im, 1, 0, 4, 1, 1, 1, 2);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 0);
    put_traceback(&im, 1, 1, 1);
    put_trace(&im, 0, 1, 0);
    put_trace(&im, 0, 1, 1);           /* traceback 1 of 1 */
    seal(&im);
    expect_format(&im, "trace 1 names traceback 1", "there are 1");
    put_header(&im, 1, 0, 2, 1, 1, 1, 0);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 0);
    put_traceback(&im, 3, 3, 1);       /* 3 frames, limit 2 */
    seal(&im);
    expect_format(&im, "traceback 0 has 3 frames", "traceback_limit 2");
    put_header(&im, 1, 0, 100, 1, 1, 1, 0);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 0);
    put_traceback(&im, 101, 101, 1);   /* beyond OM_TRACEMALLOC_MAX_FRAMES */
    seal(&im);
    expect_format(&im, "101 frames", "traceback_limit 100");
    put_header(&im, 1, 0, 4, 1, 1, 1, 0);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 1, 0);
    put_traceback(&im, 2, 1, 1);       /* total_nframe below nframes */
    seal(&im);
    expect_format(&im, "total_nframe 1", "fewer than its 2 frames");
    put_header(&im, 1, 0, 4, 2, 0, 0, 0);
    put_string(&im, "ok", 2);
    put_string(&im, "a\0b", 3);
    seal(&im);
    expect_format(&im, "string 1 contains a NUL byte", NULL);
    put_header(&im, 1, 0, 4, 0, 0, 0, 0);
    seal(&im);
    im.b[im.n - 1] ^= 0x40;
    expect_format(&im, "corrupt: checksum mismatch", NULL);
}

/* Duplicates in a file (which dump never writes) are merged on loading:
 * equal strings are one pointer, equal tracebacks one traceback. */
static void test_duplicates_are_shared(void) {
    image im = {{0}, 0};
    put_header(&im, 1, 0, 4, 2, 2, 2, 2);
    put_string(&im, "a.c", 3);
    put_string(&im, "a.c", 3);
    put_frame(&im, 0, 5, 0);
    put_frame(&im, 1, 5, 1);
    put32(&im, 1);
    put64(&im, 1);
    put32(&im, 0);
    put32(&im, 1);
    put64(&im, 1);
    put32(&im, 1);
    put_trace(&im, 0, 1, 0);
    put_trace(&im, 0, 2, 1);
    seal(&im);
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_load_bytes(rt, im.b, im.n);
    size_t n;
    const om_trace *t = om_snapshot_traces(snap, &n);
    CHECK(snap && n == 2 && t[0].traceback == t[1].traceback);
    CHECK(n == 2 && t[0].traceback->frames[0].filename ==
                        t[1].traceback->frames[0].function);
    om_snapshot_free(snap);
    finish(rt);
}

/* ---- I/O errors ---------------------------------------------------------- */

static void test_load_io_errors(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    scratch s;
    scratch_open(&s);
    CHECK(om_snapshot_load(rt, s.path) == NULL);
    CHECK(error_is(rt, OM_ERR_IO, s.path, strerror(ENOENT)));
    CHECK(om_snapshot_load(rt, s.dir) == NULL);
    CHECK(error_is(rt, OM_ERR_IO, "cannot read", strerror(EISDIR)));
    CHECK(om_snapshot_load(rt, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_load", "NULL"));
    /* Not a snapshot: the message comes from the format checks. */
    write_whole(s.path, "hello", 5);
    CHECK(om_snapshot_load(rt, s.path) == NULL);
    CHECK(error_is(rt, OM_ERR_FORMAT, "om_snapshot_load:", "magic"));
    /* Endless, but not read past what shows it is no snapshot. */
    CHECK(om_snapshot_load(rt, "/dev/zero") == NULL);
    CHECK(error_is(rt, OM_ERR_FORMAT, "om_snapshot_load:", "magic"));
    CHECK(chmod(s.path, 0) == 0);
    if (access(s.path, R_OK) != 0) {
        CHECK(om_snapshot_load(rt, s.path) == NULL);
        CHECK(error_is(rt, OM_ERR_IO, "cannot open", strerror(EACCES)));
    } else {
        printf("  unreadable file not tried: this user reads it\n");
    }
    scratch_close(&s);
    finish(rt);
    CHECK(c.live == 0);
}

/* A failed dump leaves the directory as it was: old file intact, no
 * temporary file. */
static void expect_dump_io_error(om_runtime *rt, const om_snapshot *snap,
                                 const char *path, const char *why,
                                 const scratch *s, int entries) {
    CHECK(om_snapshot_dump(snap, path) == OM_ERR_IO);
    CHECK(error_is(rt, OM_ERR_IO, "om_snapshot_dump", why));
    CHECK(dir_entries(s->dir) == entries);
}

static void test_dump_io_errors(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = om_snapshot_new(rt, 2);
    om_frame f = {"a.c", 1, "main"};
    for (int i = 0; i < 2000; i++)
        CHECK(om_snapshot_add_trace(snap, 0, (size_t)i, &f, 1, 1) == OM_OK);
    scratch s;
    scratch_open(&s);
    char path[256];
    snprintf(path, sizeof path, "%s/missing/snap", s.dir);
    expect_dump_io_error(rt, snap, path, strerror(ENOENT), &s, 0);
    /* The destination is a directory: the rename fails, and the
     * temporary file written beside it goes. */
    snprintf(path, sizeof path, "%s/sub", s.dir);
    CHECK(mkdir(path, 0700) == 0);
    expect_dump_io_error(rt, snap, path, "rename", &s, 1);
    CHECK(dir_entries(path) == 0);
    CHECK(rmdir(path) == 0);
    /* A file that cannot be written past 1000 bytes (EFBIG): the old file
     * at the path stays as it was. */
    write_whole(s.path, "old", 3);
    struct rlimit old_limit, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    small = old_limit;
    small.rlim_cur = 1000;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    expect_dump_io_error(rt, snap, s.path, strerror(EFBIG), &s, 1);
    CHECK(setrlimit(RLIMIT_FSIZE, &old_limit) == 0);
    signal(SIGXFSZ, old_handler);
    size_t n;
    uint8_t *kept = read_whole(s.path, &n);
    CHECK(kept && n == 3 && !memcmp(kept, "old", 3));
    free(kept);
    /* A directory that cannot be written. */
    CHECK(chmod(s.dir, 0500) == 0);
    if (access(s.dir, W_OK) != 0)
        expect_dump_io_error(rt, snap, s.path, strerror(EACCES), &s, 1);
    else
        printf("  read-only directory not tried: this user writes it\n");
    CHECK(chmod(s.dir, 0700) == 0);
    /* A path under a regular file. */
    snprintf(path, sizeof path, "%s/x", s.path);
    expect_dump_io_error(rt, snap, path, strerror(ENOTDIR), &s, 1);
    CHECK(om_snapshot_dump(snap, NULL) == OM_ERR_ARG);
    CHECK(error_is(rt, OM_ERR_ARG, "om_snapshot_dump", "NULL"));
    CHECK(om_snapshot_dump(NULL, s.path) == OM_ERR_ARG);
    /* And the dump that can succeed replaces the old file. */
    CHECK(om_snapshot_dump(snap, s.path) == OM_OK);
    CHECK(dir_entries(s.dir) == 1);
    om_snapshot *back = om_snapshot_load(rt, s.path);
    CHECK(back != NULL);
    if (back)
        check_same(snap, back);
    om_snapshot_free(back);
    scratch_close(&s);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

/* ---- allocation failures ------------------------------------------------- */

/* A snapshot with enough traces to grow the trace array, and shared and
 * distinct tracebacks. */
static om_snapshot *sweep_snapshot(om_runtime *rt) {
    om_snapshot *snap = om_snapshot_new(rt, 3);
    om_frame f[3] = {{"a.c", 1, "f"}, {"b.c", 2, "g"}, {"a.c", 3, "g"}};
    for (int i = 0; i < 600; i++)
        CHECK(om_snapshot_add_trace(snap, (unsigned)i % 3, (size_t)i * 8,
                                    f + i % 2, 1 + (size_t)i % 2,
                                    0) == OM_OK);
    return snap;
}

static void test_dump_allocation_failures(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = sweep_snapshot(rt);
    scratch s;
    scratch_open(&s);
    uint64_t k;
    for (k = 1;; k++) {
        sweep sw = {rt, om_debug_alloc_count(rt), k, 0};
        long live = c.live;
        om_debug_fail_alloc(rt, k);
        om_status st = om_snapshot_dump(snap, s.path);
        om_debug_fail_alloc(rt, 0);
        CHECK(c.live == live);
        if (st == OM_OK) {
            CHECK(!sweep_fired(&sw));
            break;
        }
        CHECK(st == OM_ERR_NOMEM);
        CHECK(sweep_failed(&sw));
        CHECK(dir_entries(s.dir) == 0);
    }
    CHECK(k > 3);
    om_snapshot *back = om_snapshot_load(rt, s.path);
    CHECK(back != NULL);
    if (back)
        check_same(snap, back);
    om_snapshot_free(back);
    scratch_close(&s);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

/* Load from the path (or the bytes) with the kth allocation failing,
 * until it succeeds; each failure clean. */
static void sweep_load(om_runtime *rt, counter *c, const om_snapshot *want,
                       const char *path, const uint8_t *bytes, size_t n) {
    uint64_t k;
    for (k = 1;; k++) {
        sweep sw = {rt, om_debug_alloc_count(rt), k, 0};
        long live = c->live;
        om_debug_fail_alloc(rt, k);
        om_snapshot *got = path ? om_snapshot_load(rt, path)
                                : om_snapshot_load_bytes(rt, bytes, n);
        om_debug_fail_alloc(rt, 0);
        if (got) {
            CHECK(!sweep_fired(&sw));
            check_same(want, got);
            om_snapshot_free(got);
            CHECK(c->live == live);
            break;
        }
        CHECK(sweep_failed(&sw));
        CHECK(c->live == live);
    }
    CHECK(k > 5);
}

static void test_load_allocation_failures(void) {
    counter c = {0, 0};
    om_runtime *rt = new_runtime(&c);
    om_snapshot *snap = sweep_snapshot(rt);
    scratch s;
    scratch_open(&s);
    size_t n;
    uint8_t *bytes = dump_bytes(snap, &s, &n);
    sweep_load(rt, &c, snap, NULL, bytes, n);
    sweep_load(rt, &c, snap, s.path, NULL, 0);
    free(bytes);
    scratch_close(&s);
    om_snapshot_free(snap);
    finish(rt);
    CHECK(c.live == 0);
}

TEST_MAIN(T(test_round_trip_empty), T(test_round_trip_random),
          T(test_round_trip_deep), T(test_dump_bytes_spelled_out),
          T(test_every_truncation), T(test_every_bit_flip),
          T(test_bad_header), T(test_counts_beyond_the_file),
          T(test_bad_records), T(test_duplicates_are_shared),
          T(test_load_io_errors), T(test_dump_io_errors),
          T(test_dump_allocation_failures),
          T(test_load_allocation_failures))
