/*
 * fuzz_snapshot_load.c — the libFuzzer target for om_snapshot_load_bytes
 * (docs/design.md, "Snapshot file format").  Each input is loaded as it
 * is, and again with its last 8 bytes replaced by the checksum of the
 * rest, so that mutations also reach the checks behind the checksum.  A
 * load that fails must say OM_ERR_FORMAT, with a message.  A snapshot that
 * loads is walked, dumped and loaded back: the two must be equal, and
 * dumping the second must give the bytes of the first dump.  Any breach
 * aborts, which libFuzzer reports as a crash.  Built with -DOBJMEM_FUZZ=ON.
 */
#define _POSIX_C_SOURCE 200809L /* getpid */
#include "objmem.h"
#include "require.h"
#include "snapshot_io.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Read every string of every trace, so that the sanitizers see any
 * dangling or unterminated one (each came from the input, so it is
 * shorter than that), and check the snapshot's invariants. */
static void walk(const om_snapshot *snap, size_t input_size) {
    size_t n;
    const om_trace *t = om_snapshot_traces(snap, &n);
    size_t limit = (size_t)om_snapshot_traceback_limit(snap);
    REQUIRE(limit >= 1 && limit <= OM_TRACEMALLOC_MAX_FRAMES);
    for (size_t i = 0; i < n; i++) {
        const om_traceback *tb = t[i].traceback;
        REQUIRE(tb->nframes <= limit && tb->total_nframe >= tb->nframes);
        for (size_t j = 0; j < tb->nframes; j++)
            REQUIRE(strlen(tb->frames[j].filename) < input_size &&
                    strlen(tb->frames[j].function) < input_size);
    }
}

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

/* Equal traces in the same order; trace j shares trace i's traceback in a
 * exactly when it does in b. */
static void require_same(const om_snapshot *a, const om_snapshot *b) {
    size_t na, nb;
    const om_trace *ta = om_snapshot_traces(a, &na);
    const om_trace *tb = om_snapshot_traces(b, &nb);
    REQUIRE(om_snapshot_traceback_limit(a) == om_snapshot_traceback_limit(b));
    REQUIRE(na == nb);
    for (size_t i = 0; i < na; i++) {
        REQUIRE(ta[i].domain == tb[i].domain && ta[i].size == tb[i].size);
        REQUIRE(same_traceback(ta[i].traceback, tb[i].traceback));
        /* Quadratic, but inputs are at most a few thousand traces. */
        for (size_t j = 0; j < i; j++)
            REQUIRE((ta[j].traceback == ta[i].traceback) ==
                    (tb[j].traceback == tb[i].traceback));
    }
}

/* Dump snap to path and return the file's bytes (malloc'ed). */
static uint8_t *dump(const om_snapshot *snap, const char *path, size_t *n) {
    REQUIRE(om_snapshot_dump(snap, path) == OM_OK);
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    REQUIRE(size >= 0 && fseek(f, 0, SEEK_SET) == 0);
    uint8_t *bytes = malloc((size_t)size + 1);
    REQUIRE(bytes && fread(bytes, 1, (size_t)size, f) == (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return bytes;
}

static void round_trip(om_runtime *rt, const om_snapshot *snap) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_snapshot_load.%ld.omsnap",
             (long)getpid());
    size_t n1, n2;
    uint8_t *first = dump(snap, path, &n1);
    om_snapshot *back = om_snapshot_load(rt, path);
    REQUIRE(back != NULL);
    require_same(snap, back);
    uint8_t *second = dump(back, path, &n2);
    REQUIRE(n1 == n2 && memcmp(first, second, n1) == 0);
    remove(path);
    free(first);
    free(second);
    om_snapshot_free(back);
}

static void load(om_runtime *rt, const uint8_t *data, size_t size) {
    om_snapshot *snap = om_snapshot_load_bytes(rt, data, size);
    if (!snap) {
        REQUIRE(om_last_status(rt) == OM_ERR_FORMAT);
        REQUIRE(om_last_error(rt)[0] != '\0');
        return;
    }
    walk(snap, size);
    round_trip(rt, snap);
    om_snapshot_free(snap);
}

/* One runtime for the whole run, made before the first input: loading
 * touches only its raw allocator and last error, and its creation and
 * teardown are not what is fuzzed here.  Never freed: it lives until the
 * process ends, reachable, so LeakSanitizer still sees any block a load
 * loses. */
static om_runtime *rt;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    om_config config;
    om_config_init(&config);
    config.leak_report = 0;
    rt = om_runtime_new(&config);
    REQUIRE(rt != NULL);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load(rt, data, size);
    if (size >= OM_SNAPFILE_CHECKSUM_SIZE) {
        uint8_t *sealed = malloc(size);
        REQUIRE(sealed != NULL);
        size_t body = size - OM_SNAPFILE_CHECKSUM_SIZE;
        memcpy(sealed, data, body);
        uint64_t sum = om_snapfile_fnv(OM_SNAPFILE_FNV_BASIS, data, body);
        for (int i = 0; i < 8; i++)
            sealed[body + i] = (uint8_t)(sum >> 8 * i);
        load(rt, sealed, size);
        free(sealed);
    }
    return 0;
}
