/*
 * poolstats.c — allocator statistics: om_pool_get_stats and the
 * sys._debugmallocstats-style table of om_pool_print_stats
 * (docs/design.md, "Allocator").
 */
#include "internal.h"

#include <string.h>

/* Whether p, with no block in use, is its class's kept empty pool (on the
 * used list) rather than a pool returned to its arena. */
static bool is_kept_pool(const om_runtime *rt, const om_pool *p) {
    return rt->pools.used[p->kind][p->size_class] == p;
}

static void collect(om_runtime *rt, om_pool_stats *s) {
    const om_pool_state *st = &rt->pools;
    for (size_t c = 0; c < OM_SIZE_CLASSES; c++)
        s->classes[c].block_size = (c + 1) * OM_ALIGNMENT;
    for (const om_arena *a = st->arenas; a; a = a->next) {
        s->bytes_arenas += OM_ARENA_SIZE;
        size_t pools_held = 0;
        for (size_t i = 0; i < a->carved; i++) {
            const om_pool *p = om_pool_at(a, i);
            if (p->used == 0 && !is_kept_pool(rt, p))
                continue;
            pools_held++;
            om_pool_class_stats *cs = &s->classes[p->size_class];
            size_t cap = om_pool_capacity(p->block_size);
            cs->pools++;
            cs->blocks_in_use += p->used;
            cs->free_blocks += cap - p->used;
            s->bytes_in_blocks += p->used * p->block_size;
            s->bytes_free_blocks += (cap - p->used) * p->block_size;
            s->bytes_pool_headers += OM_POOL_HEADER_SIZE;
            s->bytes_quantization +=
                OM_POOL_SIZE - OM_POOL_HEADER_SIZE - cap * p->block_size;
        }
        s->bytes_empty_pools += (OM_POOLS_PER_ARENA - pools_held) * OM_POOL_SIZE;
    }
    s->arenas_allocated = st->arenas_allocated;
    s->arenas_freed = st->arenas_freed;
    s->arenas_highwater = st->arenas_highwater;
    s->arenas_current = st->arena_count;
    s->arenas_cached = st->empty_arenas;
    s->arena_cache_limit = st->cache_limit;
    for (int k = 0; k < OM_KINDS; k++) {
        for (const om_large *l = rt->large[k]; l; l = l->next) {
            s->large_blocks++;
            s->bytes_large += l->size;
        }
    }
}

om_status om_pool_get_stats(om_runtime *rt, om_pool_stats *out) {
    if (!rt)
        return OM_ERR_ARG;
    if (!out || out->size == 0)
        return om_error(rt, OM_ERR_ARG, "om_pool_get_stats: %s",
                        out ? "out->size is 0: set it to sizeof(om_pool_stats)"
                            : "out is NULL");
    om_pool_stats full;
    memset(&full, 0, sizeof full);
    collect(rt, &full);
    /* Copy what the caller's struct has room for, keeping its size. */
    size_t n = out->size < sizeof full ? out->size : sizeof full;
    size_t caller_size = out->size;
    memcpy(out, &full, n);
    out->size = caller_size;
    return OM_OK;
}

/* n with thousands separators, right-aligned in `width` columns. */
static void print_count(FILE *f, size_t n, int width) {
    char digits[32], grouped[48];
    int len = snprintf(digits, sizeof digits, "%zu", n), g = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            grouped[g++] = ',';
        grouped[g++] = digits[i];
    }
    grouped[g] = '\0';
    fprintf(f, "%*s", width, grouped);
}

om_status om_pool_print_stats(om_runtime *rt, FILE *f) {
    if (!rt)
        return OM_ERR_ARG;
    if (!f)
        f = stderr;
    om_pool_stats s;
    memset(&s, 0, sizeof s);
    collect(rt, &s);
    fprintf(f, "Small block threshold = %d, in %d size classes.\n\n",
            OM_SMALL_MAX, OM_POOL_SIZE_CLASSES);
    fprintf(f, "class   size   num pools   blocks in use  avail blocks\n"
               "-----   ----   ---------   -------------  ------------\n");
    for (size_t c = 0; c < OM_POOL_SIZE_CLASSES; c++) {
        const om_pool_class_stats *cs = &s.classes[c];
        if (!cs->pools)
            continue;
        fprintf(f, "%5zu %6zu", c, cs->block_size);
        print_count(f, cs->pools, 12);
        print_count(f, cs->blocks_in_use, 16);
        print_count(f, cs->free_blocks, 14);
        fputc('\n', f);
    }
    fputc('\n', f);
#define OM_POOL_STATS_PRINT_(field, label) \
    fprintf(f, "# %-34s =", label);        \
    print_count(f, s.field, 21);           \
    fputc('\n', f);
    OM_POOL_STATS_TABLE(OM_POOL_STATS_PRINT_)
#undef OM_POOL_STATS_PRINT_
    fprintf(f, "\n%zu arenas * %zu bytes/arena, %zu pools * %zu bytes/pool\n",
            s.arenas_current, OM_ARENA_SIZE, OM_POOLS_PER_ARENA, OM_POOL_SIZE);
    return OM_OK;
}
