/*
 * test_mem.c — om_malloc, om_calloc, om_realloc, om_free: alignment of every
 * size class, unique zero-size blocks, contents kept across every kind of
 * realloc, and a seeded random churn checked against byte patterns.
 */
#include "internal.h"
#include "harness.h"

static void alignment_of_every_size(void) {
    om_runtime *rt = om_runtime_new(NULL);
    void *blocks[700];
    for (size_t n = 0; n < 700; n++) {
        blocks[n] = om_malloc(rt, n);
        CHECK(blocks[n] != NULL);
        CHECK(((uintptr_t)blocks[n] & 15) == 0);
        memset(blocks[n], 0x5A, n);
    }
    for (size_t n = 0; n < 700; n++)
        om_free(rt, blocks[n]);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void zero_size_blocks_are_unique(void) {
    om_runtime *rt = om_runtime_new(NULL);
    void *a = om_malloc(rt, 0), *b = om_malloc(rt, 0);
    CHECK(a && b && a != b);
    void *c = om_calloc(rt, 0, 8);
    CHECK(c && c != a && c != b);
    om_free(rt, a);
    om_free(rt, b);
    om_free(rt, c);
    om_free(rt, NULL);
    CHECK(om_malloc(NULL, 8) == NULL);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void calloc_zeroes_reused_blocks(void) {
    om_runtime *rt = om_runtime_new(NULL);
    unsigned char *p = om_malloc(rt, 64);
    memset(p, 0xFF, 64);
    om_free(rt, p);
    unsigned char *q = om_calloc(rt, 8, 8);   /* likely the same block */
    int zero = 1;
    for (int i = 0; i < 64; i++)
        zero &= q[i] == 0;
    CHECK(zero);
    om_free(rt, q);
    CHECK(om_runtime_free(rt) == 0);
}

static int has_pattern(const unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i))
            return 0;
    return 1;
}

static void fill(unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i);
}

static void realloc_keeps_contents(void) {
    om_runtime *rt = om_runtime_new(NULL);
    /* Grow and shrink through in-place, class-changing, small-to-large,
     * large-to-large and large-to-small moves. */
    size_t steps[] = {1, 10, 16, 17, 100, 512, 513, 4000, 100000, 600, 30, 0};
    size_t n = 1;
    unsigned char *p = om_realloc(rt, NULL, n);
    fill(p, n, 7);
    for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
        size_t keep = n < steps[i] ? n : steps[i];
        unsigned char *q = om_realloc(rt, p, steps[i]);
        CHECK(q != NULL);
        CHECK(((uintptr_t)q & 15) == 0);
        CHECK(has_pattern(q, keep, 7));
        fill(q, steps[i], 7);
        p = q;
        n = steps[i];
        CHECK(om_check(rt) == OM_OK);
    }
    om_free(rt, p);
    CHECK(om_runtime_free(rt) == 0);
}

static void random_churn(void) {
    om_runtime *rt = om_runtime_new(NULL);
    enum { SLOTS = 4096, OPS = 200000 };
    unsigned char *ptr[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    int bad = 0;
    for (int op = 0; op < OPS; op++) {
        size_t i = th_random() % SLOTS;
        if (ptr[i]) {
            bad += !has_pattern(ptr[i], size[i], (unsigned char)i);
            if (th_random() % 2) {
                om_free(rt, ptr[i]);
                ptr[i] = NULL;
                continue;
            }
            size_t n = th_random() % 2 ? th_random() % 600 : th_random() % 5000;
            unsigned char *q = om_realloc(rt, ptr[i], n);
            bad += !has_pattern(q, n < size[i] ? n : size[i], (unsigned char)i);
            ptr[i] = q;
            size[i] = n;
        } else {
            size[i] = th_random() % 8 ? th_random() % 512 : th_random() % 20000;
            ptr[i] = om_malloc(rt, size[i]);
        }
        fill(ptr[i], size[i], (unsigned char)i);
        if (op % 50000 == 0)
            CHECK(om_check(rt) == OM_OK);
    }
    CHECK(bad == 0);
    for (size_t i = 0; i < SLOTS; i++)
        om_free(rt, ptr[i]);
    CHECK(om_check(rt) == OM_OK);
    /* Everything freed: what remains is at most one kept empty pool per
     * class, each holding its arena, plus the cached empty arenas. */
    size_t kept = 0;
    for (int k = 0; k < OM_KINDS; k++)
        for (size_t c = 0; c < OM_SIZE_CLASSES; c++)
            if (rt->pools.used[k][c]) {
                kept++;
                CHECK(rt->pools.used[k][c]->used == 0);
                CHECK(rt->pools.used[k][c]->next == NULL);
            }
    CHECK(rt->pools.arena_count <= rt->pools.cache_limit + kept);
    CHECK(om_runtime_free(rt) == 0);
}

TEST_MAIN(T(alignment_of_every_size), T(zero_size_blocks_are_unique),
          T(calloc_zeroes_reused_blocks), T(realloc_keeps_contents),
          T(random_churn))
