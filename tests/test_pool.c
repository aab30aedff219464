/*
 * test_pool.c — the allocator's arena policy and statistics: new pools come
 * from the fullest arena, freed memory goes back to the OS, fragmentation
 * does not grow the heap, the empty-arena cache grows with churn and decays
 * without it, and the statistics add up.
 */
#include "internal.h"
#include "harness.h"

#include <stdbool.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long total = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &total, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * 4096;
}

static uintptr_t arena_of(const void *p) {
    return (uintptr_t)p & ~(uintptr_t)(OM_ARENA_SIZE - 1);
}

static om_pool_stats stats_of(om_runtime *rt) {
    om_pool_stats s;
    s.size = sizeof s;
    CHECK(om_pool_get_stats(rt, &s) == OM_OK);
    return s;
}

/* Blocks of one size class, one pool's worth per `pools`. */
static void **alloc_pools(om_runtime *rt, size_t size, size_t pools,
                          size_t *count) {
    size_t n = pools * om_pool_capacity((size + 15) / 16 * 16);
    void **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = om_malloc(rt, size);
    *count = n;
    return v;
}

static void new_pools_come_from_the_fullest_arena(void) {
    om_runtime *rt = om_runtime_new(NULL);
    size_t n;
    /* Three arenas' worth of 32-byte pools. */
    void **v = alloc_pools(rt, 32, 3 * OM_POOLS_PER_ARENA, &n);
    uintptr_t first = arena_of(v[0]), last = arena_of(v[n - 1]);
    CHECK(first != last);
    /* Empty all but one pool of the first arena, and two pools of the
     * last: the last arena is now the fuller one. */
    size_t per_pool = om_pool_capacity(32), freed_last = 0;
    for (size_t i = per_pool; i < n; i++) {
        if (arena_of(v[i]) == first ||
            (arena_of(v[i]) == last && freed_last < 2 * per_pool &&
             (freed_last++, 1))) {
            om_free(rt, v[i]);
            v[i] = NULL;
        }
    }
    CHECK(om_check(rt) == OM_OK);
    void *other = om_malloc(rt, 200);   /* another class: a new pool */
    CHECK(arena_of(other) == last);
    om_free(rt, other);
    for (size_t i = 0; i < n; i++)
        om_free(rt, v[i]);
    free(v);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void freed_memory_goes_back(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *keep = om_int_new(rt, 1);
    size_t before = rss_bytes();
    enum { N = 1000000 };
    void **v = malloc(N * sizeof *v);
    memset(v, 1, N * sizeof *v);       /* resident before the baseline */
    before = rss_bytes();
    for (size_t i = 0; i < N; i++) {
        v[i] = om_malloc(rt, 32);
        memset(v[i], 7, 32);           /* untouched pages are not resident */
    }
    size_t peak = rss_bytes();
    for (size_t i = 0; i < N; i++)
        om_free(rt, v[i]);
    size_t after = rss_bytes();
    printf("  RSS: %zu KiB before, %zu KiB at peak, %zu KiB after\n",
           before / 1024, peak / 1024, after / 1024);
    om_pool_stats s = stats_of(rt);
    /* One arena for `keep`, at most one more holding the class's kept pool;
     * no cache: the program never asked for freed memory back. */
    CHECK(s.arenas_current <= 2 && s.arenas_cached == 0);
#ifndef UNDER_SANITIZER
    CHECK(peak > before + 30 * 1024 * 1024);
    CHECK(after < before + 1024 * 1024);
#endif
    free(v);
    om_decref(keep);
    CHECK(om_runtime_free(rt) == 0);
}

/* After freeing 90% of a mixed heap at random, allocating 10% again takes
 * no new arena: freed blocks are reused first (a pool with free blocks stays
 * on its class's used list, and new pools come from existing arenas before
 * any new one), so the bound is the arena count at the peak. */
static void fragmentation_does_not_grow_the_heap(void) {
    om_runtime *rt = om_runtime_new(NULL);
    enum { N = 1000000 };
    void **v = malloc(N * sizeof *v);
    for (size_t i = 0; i < N; i++)
        v[i] = om_malloc(rt, 16 + th_random() % 497);
    om_pool_stats peak = stats_of(rt);
    for (size_t i = N - 1; i > 0; i--) {      /* shuffle, then free 90% */
        size_t j = th_random() % (i + 1);
        void *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    for (size_t i = 0; i < N / 10 * 9; i++)
        om_free(rt, v[i]);
    for (size_t i = 0; i < N / 10 * 9; i++)
        v[i] = i < N / 10 ? om_malloc(rt, 16 + th_random() % 497) : NULL;
    om_pool_stats again = stats_of(rt);
    printf("  arenas: %zu at the peak, %zu after refilling 10%%\n",
           peak.arenas_current, again.arenas_current);
    CHECK(again.arenas_allocated == peak.arenas_allocated);
    CHECK(again.arenas_current <= peak.arenas_current);
    CHECK(om_check(rt) == OM_OK);
    for (size_t i = 0; i < N; i++)
        om_free(rt, v[i]);
    free(v);
    CHECK(om_runtime_free(rt) == 0);
}

static void fill_and_free(om_runtime *rt, size_t bytes) {
    size_t n = bytes / 256;
    void **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = om_malloc(rt, 256);
    for (size_t i = 0; i < n; i++)
        om_free(rt, v[i]);
    free(v);
}

static void cache_grows_with_churn_and_decays(void) {
    om_runtime *rt = om_runtime_new(NULL);
    fill_and_free(rt, 20u << 20);           /* round 1: all given back */
    om_pool_stats r1 = stats_of(rt);
    CHECK(r1.arenas_freed >= 18 && r1.arenas_cached == 0);
    fill_and_free(rt, 20u << 20);           /* round 2: wanted back */
    om_pool_stats r2 = stats_of(rt);
    CHECK(r2.arena_cache_limit >= 18 && r2.arenas_cached >= 18);
    fill_and_free(rt, 20u << 20);           /* round 3: no new mapping */
    om_pool_stats r3 = stats_of(rt);
    CHECK(r3.arenas_allocated == r2.arenas_allocated);
    CHECK(om_check(rt) == OM_OK);

    /* Decay: pools taken again and again from a non-empty arena while the
     * cached arenas sit unused halve the cache. */
    void *hold = om_malloc(rt, 500);        /* keeps an arena non-empty */
    size_t per_pool = om_pool_capacity(32);
    void **v = malloc(2 * per_pool * sizeof *v);
    size_t rounds = OM_ARENA_DECAY + r3.arena_cache_limit * OM_POOLS_PER_ARENA;
    for (size_t round = 0; round < rounds + 10; round++) {
        for (size_t i = 0; i < 2 * per_pool; i++)
            v[i] = om_malloc(rt, 32);
        for (size_t i = 0; i < 2 * per_pool; i++)
            om_free(rt, v[i]);
    }
    free(v);
    om_pool_stats d = stats_of(rt);
    printf("  cache limit %zu after churn, %zu after decay\n",
           r3.arena_cache_limit, d.arena_cache_limit);
    CHECK(d.arena_cache_limit <= r3.arena_cache_limit / 2);
    CHECK(d.arenas_cached <= d.arena_cache_limit);
    CHECK(om_check(rt) == OM_OK);

    /* Trim gives back everything empty, kept pools included. */
    om_free(rt, hold);
    size_t released = om_pool_trim(rt);
    om_pool_stats t = stats_of(rt);
    CHECK(released > 0 && t.arenas_current == 0 && t.arena_cache_limit == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void statistics_add_up(void) {
    om_runtime *rt = om_runtime_new(NULL);
    void *small[100], *big = om_malloc(rt, 10000);
    for (int i = 0; i < 100; i++)
        small[i] = om_malloc(rt, 48);
    om_object *l = om_list_new(rt);
    om_pool_stats s = stats_of(rt);
    const om_pool_class_stats *c48 = &s.classes[48 / 16 - 1];
    /* Two pools of the 48-byte class: the blocks' and, since objects have
     * pools of their own, the 40-byte list object's. */
    CHECK(c48->block_size == 48 && c48->pools == 2);
    CHECK(c48->blocks_in_use == 100 + 1);
    CHECK(c48->blocks_in_use + c48->free_blocks == 2 * om_pool_capacity(48));
    CHECK(s.large_blocks == 1 && s.bytes_large == 10000);
    CHECK(s.bytes_arenas == s.arenas_current * OM_ARENA_SIZE);
    CHECK(s.bytes_arenas == s.bytes_in_blocks + s.bytes_free_blocks +
                                s.bytes_pool_headers + s.bytes_quantization +
                                s.bytes_empty_pools);
    CHECK(s.arenas_highwater >= s.arenas_current);
    /* An older caller's shorter struct is filled only as far as it goes. */
    om_pool_stats old;
    memset(&old, 0xAB, sizeof old);
    old.size = offsetof(om_pool_stats, arenas_freed);
    CHECK(om_pool_get_stats(rt, &old) == OM_OK);
    CHECK(old.arenas_allocated == s.arenas_allocated);
    CHECK(old.arenas_freed == (size_t)0xABABABABABABABABull);
    old.size = 0;
    CHECK(om_pool_get_stats(rt, &old) == OM_ERR_ARG);
    CHECK(strstr(om_last_error(rt), "sizeof(om_pool_stats)") != NULL);
    CHECK(om_pool_get_stats(NULL, &s) == OM_ERR_ARG);

    FILE *f = tmpfile();
    CHECK(om_pool_print_stats(rt, f) == OM_OK);
    rewind(f);
    char text[8192] = {0};
    CHECK(fread(text, 1, sizeof text - 1, f) > 0);
    fclose(f);
    CHECK(strstr(text, "Small block threshold = 512, in 32 size classes.") != NULL);
    CHECK(strstr(text, "# arenas allocated total") != NULL);
    CHECK(strstr(text, "bytes lost to quantization") != NULL);
    CHECK(strstr(text, "    2     48") != NULL);  /* the 48-byte class row */
    om_decref(l);
    for (int i = 0; i < 100; i++)
        om_free(rt, small[i]);
    om_free(rt, big);
    CHECK(om_runtime_free(rt) == 0);
}

TEST_MAIN(T(new_pools_come_from_the_fullest_arena), T(freed_memory_goes_back),
          T(fragmentation_does_not_grow_the_heap),
          T(cache_grows_with_churn_and_decays), T(statistics_add_up))
