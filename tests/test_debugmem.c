/*
 * test_debugmem.c — the debug allocator (config.malloc_debug,
 * OBJMEM_MALLOC=debug) seen from outside: the block layout of
 * src/debugmem.c (size, serial, 0xFD guards, 0xCD new and 0xDD freed
 * bytes), exact usable sizes, alignment, realloc, the quarantine of large
 * blocks, containers on top, and failure injection.  What it aborts on is
 * death_debugmem.c's subject.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */
#include "objmem.h"
#include "support.h"

#include <stdint.h>
#include <stdlib.h>

enum { GUARD = 16, HEADER = 32 };

static om_runtime *debug_runtime(void) {
    om_config c;
    om_config_init(&c);
    c.malloc_debug = 1;
    return om_runtime_new(&c);
}

static bool all_bytes(const void *p, size_t n, unsigned char byte) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != byte)
            return false;
    return true;
}

static uint64_t word_before(const void *p, size_t back) {
    uint64_t v;
    memcpy(&v, (const unsigned char *)p - back, sizeof v);
    return v;
}
static uint64_t size_field(const void *p) { return word_before(p, HEADER); }
static uint64_t serial_of(const void *p) { return word_before(p, HEADER - 8); }

/* A live debug block of n bytes as the layout says it must look, its data
 * left out (callers know what it should hold). */
static bool well_formed(om_runtime *rt, const void *p, size_t n) {
    const unsigned char *b = p;
    return p && ((uintptr_t)p & 15) == 0 && size_field(p) == n &&
           om_malloc_usable_size(rt, p) == n &&
           all_bytes(b - GUARD, GUARD, 0xFD) && all_bytes(b + n, GUARD, 0xFD);
}

static void fill(unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static bool has_fill(const unsigned char *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return false;
    return true;
}

static const size_t sizes[] = {0, 1, 7, 15, 16, 17, 100, 463, 464, 465,
                               512, 1000, 4096, 70000, 1048579};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void new_blocks_have_the_layout(void) {
    om_runtime *rt = debug_runtime();
    void *blocks[NSIZES];
    for (size_t i = 0; i < NSIZES; i++) {
        blocks[i] = om_malloc(rt, sizes[i]);
        CHECK(well_formed(rt, blocks[i], sizes[i]));
        CHECK(blocks[i] && all_bytes(blocks[i], sizes[i], 0xCD));
    }
    for (size_t i = 0; i < NSIZES; i++)
        om_free(rt, blocks[i]);
    CHECK(om_malloc_usable_size(rt, NULL) == 0);
    finish(rt);
}

static void calloc_gives_zeros(void) {
    om_runtime *rt = debug_runtime();
    unsigned char *p = om_calloc(rt, 10, 7);
    CHECK(well_formed(rt, p, 70) && all_bytes(p, 70, 0));
    unsigned char *big = om_calloc(rt, 1000, 3);
    CHECK(well_formed(rt, big, 3000) && all_bytes(big, 3000, 0));
    unsigned char *none = om_calloc(rt, 0, 8);
    CHECK(well_formed(rt, none, 0));
    om_free(rt, p);
    om_free(rt, big);
    om_free(rt, none);
    finish(rt);
}

static void every_size_keeps_alignment(void) {
    om_runtime *rt = debug_runtime();
    enum { N = 601 };
    static void *blocks[N];
    for (size_t n = 0; n < N; n++) {
        blocks[n] = om_malloc(rt, n);
        CHECK(well_formed(rt, blocks[n], n));
        if (blocks[n])
            memset(blocks[n], 0x5A, n);   /* every byte usable, no guard hit */
    }
    for (size_t n = 0; n < N; n++)
        om_free(rt, blocks[n]);
    size_t large[] = {5000, 65536, 65537, 1 << 20, (1 << 20) + 3};
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        void *p = om_malloc(rt, large[i]);
        CHECK(well_formed(rt, p, large[i]));
        om_free(rt, p);
    }
    finish(rt);
}

static void realloc_keeps_contents_and_fills_growth(void) {
    om_runtime *rt = debug_runtime();
    /* In one class, across classes, small to large, large to large, large
     * to small, down to zero. */
    size_t steps[] = {10, 12, 300, 464, 465, 5000, 100000, 3000, 40, 0, 8};
    size_t n = 5;
    unsigned char *p = om_realloc(rt, NULL, n);
    CHECK(well_formed(rt, p, n) && all_bytes(p, n, 0xCD));
    fill(p, n, 3);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t to = steps[i], keep = n < to ? n : to;
        uint64_t serial = serial_of(p);
        unsigned char *q = om_realloc(rt, p, to);
        CHECK(well_formed(rt, q, to));
        if (!q)
            break;
        CHECK(q != p);                   /* debug realloc always moves */
        CHECK(serial_of(q) > serial);    /* and takes a new serial */
        CHECK(has_fill(q, keep, 3));
        CHECK(all_bytes(q + keep, to - keep, 0xCD));
        fill(q, to, 3);
        p = q;
        n = to;
    }
    om_free(rt, p);
    finish(rt);
}

/* A freed small block stays mapped in its pool (a neighbour keeps the pool
 * in use), so what free left in it can be read back. */
static void freed_small_block_reads_dd(void) {
    om_runtime *rt = debug_runtime();
    void *neighbour = om_malloc(rt, 40);
    unsigned char *p = om_malloc(rt, 40);
    CHECK(neighbour && p);
    memset(p, 0x11, 40);
    uint64_t serial = serial_of(p);
    om_free(rt, p);
    CHECK(all_bytes(p - GUARD, GUARD, 0xDD));   /* lead guard */
    CHECK(all_bytes(p, 40, 0xDD));              /* data */
    CHECK(all_bytes(p + 40, GUARD, 0xDD));      /* tail guard */
    CHECK(serial_of(p) == serial);              /* kept for reports */
    om_free(rt, neighbour);
    finish(rt);
}

static void serials_increase(void) {
    om_runtime *rt = debug_runtime();
    void *a = om_malloc(rt, 8);
    void *b = om_malloc(rt, 8000);
    void *c = om_calloc(rt, 4, 4);
    CHECK(a && b && c);
    CHECK(serial_of(a) == 1);                   /* counted per runtime */
    CHECK(serial_of(b) == 2 && serial_of(c) == 3);
    om_free(rt, a);
    void *d = om_malloc(rt, 8);                 /* likely a's memory */
    CHECK(d && serial_of(d) == 4);
    void *e = om_realloc(rt, c, 100);
    CHECK(e && serial_of(e) == 5);
    om_runtime *other = debug_runtime();
    void *f = om_malloc(other, 8);
    CHECK(f && serial_of(f) == 1);
    om_free(other, f);
    finish(other);
    om_free(rt, b);
    om_free(rt, d);
    om_free(rt, e);
    finish(rt);
}

static void environment_turns_it_on(void) {
    om_config c;
    CHECK(setenv("OBJMEM_MALLOC", "debug", 1) == 0);
    om_config_init(&c);
    CHECK(c.malloc_debug == 1);
    om_runtime *from_config = om_runtime_new(&c);
    om_runtime *from_default = om_runtime_new(NULL);
    om_runtime *rts[] = {from_config, from_default};
    for (int i = 0; i < 2; i++) {
        unsigned char *p = om_malloc(rts[i], 24);
        CHECK(well_formed(rts[i], p, 24) && all_bytes(p, 24, 0xCD));
        om_free(rts[i], p);
        finish(rts[i]);
    }
    CHECK(setenv("OBJMEM_MALLOC", "default", 1) == 0);
    om_config_init(&c);
    CHECK(c.malloc_debug == 0);
    CHECK(unsetenv("OBJMEM_MALLOC") == 0);
    om_config_init(&c);
    CHECK(c.malloc_debug == 0);
}

/* More large frees than the quarantine holds: the oldest are released as
 * they are pushed out, the rest with the runtime (valgrind sees no leak). */
static void large_blocks_pass_through_quarantine(void) {
    om_runtime *rt = debug_runtime();
    for (int i = 0; i < 40; i++) {
        unsigned char *p = om_malloc(rt, 600 + (size_t)i * 100);
        CHECK(well_formed(rt, p, 600 + (size_t)i * 100));
        if (!p)
            break;
        p = om_realloc(rt, p, 700 + (size_t)i * 100);   /* frees the old one */
        CHECK(p != NULL);
        om_free(rt, p);
        CHECK(om_check(rt) == OM_OK);
    }
    void *left = om_malloc(rt, 9000);   /* a live one among the freed */
    CHECK(left != NULL);
    om_free(rt, left);
    finish(rt);
}

static void overflow_fails_cleanly(void) {
    om_runtime *rt = debug_runtime();
    CHECK(om_malloc(rt, SIZE_MAX - 10) == NULL);
    CHECK(error_is(rt, OM_ERR_NOMEM, "om_malloc", NULL));
    unsigned char *p = om_malloc(rt, 20);
    CHECK(p != NULL);
    fill(p, 20, 9);
    CHECK(om_realloc(rt, p, SIZE_MAX - 40) == NULL);
    CHECK(error_is(rt, OM_ERR_NOMEM, "om_realloc", NULL));
    CHECK(well_formed(rt, p, 20) && has_fill(p, 20, 9));   /* untouched */
    CHECK(om_calloc(rt, SIZE_MAX / 2, 4) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_OVERFLOW);
    om_free(rt, p);
    finish(rt);
}

static void containers_work(void) {
    om_runtime *rt = debug_runtime();
    om_object *list = om_list_new(rt);
    om_object *dict = om_dict_new(rt);
    CHECK(list && dict);
    for (int i = 0; i < 1000; i++) {
        om_object *v = om_int_new(rt, i);
        CHECK(om_list_append(list, v) == OM_OK);
        char key[16];
        snprintf(key, sizeof key, "key %d", i);
        CHECK(om_dict_set_str(dict, key, v) == OM_OK);
        om_decref(v);
    }
    CHECK(om_list_len(list) == 1000 && om_dict_len(dict) == 1000);
    for (int i = 0; i < 1000; i += 2) {
        char key[16];
        snprintf(key, sizeof key, "key %d", i);
        CHECK(om_dict_get_str(dict, key) == om_list_get(list, i));
        CHECK(om_dict_del_str(dict, key) == OM_OK);
    }
    while (om_list_len(list) > 10) {
        om_object *v = om_list_pop(list, -1);
        CHECK(v != NULL);
        om_decref(v);
    }
    CHECK(om_dict_len(dict) == 500);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_list_clear(list) == OM_OK && om_dict_clear(dict) == OM_OK);
    om_decref(list);
    om_decref(dict);
    finish(rt);
}

/* Stops at the first failure, leaving nothing to free but what the caller
 * holds; returns false then. */
static bool scenario(om_runtime *rt, om_object *root) {
    unsigned char *p = om_malloc(rt, 30);
    if (!p)
        return false;
    fill(p, 30, 1);
    unsigned char *q;
    size_t to[] = {60, 2000, 9000, 100};
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++) {
        if (!(q = om_realloc(rt, p, to[i]))) {
            CHECK(well_formed(rt, p, i ? to[i - 1] : 30));
            CHECK(has_fill(p, 30, 1));
            om_free(rt, p);
            return false;
        }
        p = q;
    }
    CHECK(has_fill(p, 30, 1));
    om_free(rt, p);
    if (!(p = om_calloc(rt, 100, 10)))
        return false;
    om_free(rt, p);
    for (int i = 0; i < 20; i++) {
        om_object *v = om_int_new(rt, i);
        if (!v)
            return false;
        om_status st = om_list_append(root, v);
        om_decref(v);
        if (st != OM_OK)
            return false;
    }
    om_object *d = om_dict_new(rt);
    if (!d)
        return false;
    om_status st = om_list_append(root, d);
    om_decref(d);
    if (st != OM_OK)
        return false;
    for (int i = 0; st == OM_OK && i < 12; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        st = om_dict_set_str(d, key, root);
    }
    /* root holds d, which holds root: break the cycle for the refcounts. */
    om_dict_clear(d);
    return st == OM_OK;
}

static void alloc_failure_sweep(void) {
    uint64_t nth;
    for (nth = 1; nth < 10000; nth++) {
        om_runtime *rt = debug_runtime();
        om_object *root = om_list_new(rt);
        CHECK(root != NULL);
        uint64_t start = om_debug_alloc_count(rt);
        om_debug_fail_alloc(rt, nth);
        bool done = scenario(rt, root);
        bool fired = om_debug_alloc_count(rt) - start >= nth;
        CHECK(done != fired);
        if (fired)
            CHECK(om_last_status(rt) == OM_ERR_NOMEM);
        CHECK(om_check(rt) == OM_OK);
        om_decref(root);
        finish(rt);
        if (!fired)
            break;
    }
    printf("  swept %llu allocation points\n", (unsigned long long)nth - 1);
    CHECK(nth > 20);
}

TEST_MAIN(T(new_blocks_have_the_layout), T(calloc_gives_zeros),
          T(every_size_keeps_alignment),
          T(realloc_keeps_contents_and_fills_growth),
          T(freed_small_block_reads_dd), T(serials_increase),
          T(environment_turns_it_on), T(large_blocks_pass_through_quarantine),
          T(overflow_fails_cleanly), T(containers_work), T(alloc_failure_sweep))
