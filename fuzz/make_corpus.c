/*
 * make_corpus.c — writes the seed corpus of fuzz_snapshot_load into the
 * directory given: a few small snapshot files made by om_snapshot_dump
 * (empty; tracebacks shared and not; unknown frames; unicode and empty
 * strings; a 100-frame traceback; extreme domains, sizes and lines), so
 * that the fuzzer starts from valid files of the current format version.
 */
#include "objmem.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

static const om_frame frames[] = {
    {"src/alloc.c", 42, "make_node"},
    {"src/main.c", 7, "main"},
    {"\xd1\x84/na\xc3\xafve.c", UINT_MAX, ""},
    {NULL, 0, NULL},
};

/* Every frame above in turn, deep as the limit allows. */
static om_status add_deep(om_snapshot *snap) {
    om_frame deep[OM_TRACEMALLOC_MAX_FRAMES];
    for (int i = 0; i < OM_TRACEMALLOC_MAX_FRAMES; i++)
        deep[i] = frames[i % 4];
    return om_snapshot_add_trace(snap, 3, SIZE_MAX, deep,
                                 OM_TRACEMALLOC_MAX_FRAMES, 65535);
}

static om_status add_mixed(om_snapshot *snap) {
    om_status st = OM_OK;
    for (int i = 0; st == OM_OK && i < 12; i++)
        st = om_snapshot_add_trace(snap, i % 3 ? 0 : UINT_MAX,
                                   (size_t)1 << (i * 5 % 64), frames + i % 3,
                                   (size_t)(i % 2 + 1), (size_t)i);
    return st;
}

static int write_seed(om_runtime *rt, const char *dir, const char *name,
                      int limit, om_status (*fill)(om_snapshot *)) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.omsnap", dir, name);
    om_snapshot *snap = om_snapshot_new(rt, limit);
    om_status st = !snap ? OM_ERR_NOMEM : fill ? fill(snap) : OM_OK;
    if (st == OM_OK)
        st = om_snapshot_dump(snap, path);
    if (st != OM_OK)
        fprintf(stderr, "make_corpus: %s: %s\n", path, om_last_error(rt));
    om_snapshot_free(snap);
    return st == OM_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    om_runtime *rt = om_runtime_new(NULL);
    if (!rt)
        return 1;
    int failures = write_seed(rt, argv[1], "empty", 1, NULL) +
                   write_seed(rt, argv[1], "mixed", 2, add_mixed) +
                   write_seed(rt, argv[1], "deep", OM_TRACEMALLOC_MAX_FRAMES,
                              add_deep);
    om_runtime_free(rt);
    return failures ? 1 : 0;
}
