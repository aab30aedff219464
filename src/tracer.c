/*
 * tracer.c — the tracing engine: per-domain trace tables and interned
 * tracebacks (src/tracer.h states the invariants; docs/design.md,
 * "Tracer", the layout and its costs).
 *
 * A trace is 16 bytes in an open-addressing table kept at 57-85% load,
 * so a live traced block costs about 22 bytes.  A runtime keeps its pool
 * blocks' traces outside the tables, beside their pools (pooltrace.c),
 * where they cost 8 bytes and no hashing; the tables hold the rest (large
 * blocks, blocks of the debug allocator, tracked memory, and every block of
 * the whole-process tool).
 */
#include "tracer.h"
#include "unwind.h"

#include <string.h>

/* ---- memory ------------------------------------------------------------------------ */

/* Every block the engine holds is counted in t->memory, with its size
 * stored by the caller (the engine knows each of its blocks' sizes). */
static void *engine_alloc(om_tracer *t, size_t n) {
    if (!om_alloc_attempt(t->rt))
        return NULL;
    void *p = om_raw_malloc(t->rt, n);
    if (p)
        t->memory += n;
    return p;
}

/* n zeroed bytes: the raw allocator's calloc, which skips the clearing
 * when its memory comes fresh from the system (a large table does). */
static void *engine_zalloc(om_tracer *t, size_t n) {
    if (!om_alloc_attempt(t->rt))
        return NULL;
    void *p = om_raw_calloc(t->rt, 1, n);
    if (p)
        t->memory += n;
    return p;
}

static void engine_free(om_tracer *t, void *p, size_t n) {
    if (!p)
        return;
    t->memory -= n;
    om_raw_free(t->rt, p);
}

void *om_tracer_alloc(om_tracer *t, size_t n) { return engine_alloc(t, n); }

void om_tracer_release(om_tracer *t, void *p, size_t n) {
    engine_free(t, p, n);
}

/* The growable array `items` (count items of item_size bytes in room for
 * *capacity) with room for one more: itself, or a copy twice as large
 * (`first` items at first), the old one freed.  NULL, with nothing
 * changed, when memory is short or the array would pass `most` items. */
static void *array_reserve(om_tracer *t, void *items, size_t *capacity,
                           size_t count, size_t item_size, size_t first,
                           size_t most) {
    if (count < *capacity)
        return items;
    size_t n = *capacity ? *capacity * 2 : first;
    if (n > most || n > SIZE_MAX / item_size)
        return NULL;
    void *grown = engine_alloc(t, n * item_size);
    if (!grown)
        return NULL;
    if (count)
        memcpy(grown, items, count * item_size);
    engine_free(t, items, *capacity * item_size);
    *capacity = n;
    return grown;
}

/* ---- trace tables ---------------------------------------------------------------------- */

#define OM_TRACE_MIN_CAPACITY 256

/* Home slots spread every address over the whole table (a multiplicative
 * hash of the address's 16-byte granule, scaled to the capacity, which
 * need not be a power of two).  Keeping blocks that are close in memory in
 * close slots saves cache misses, but their runs merge into clusters that
 * Robin Hood probing then walks end to end. */
static size_t home_slot(const om_trace_table *tab, uintptr_t ptr) {
    uint64_t h = (uint64_t)(ptr >> 4) * 0x9e3779b97f4a7c15ull;
    return (size_t)(((h >> 32) * (uint64_t)tab->capacity) >> 32);
}

/* How far slot i is from the home of the entry in it. */
static size_t displacement(const om_trace_table *tab, size_t i) {
    size_t home = home_slot(tab, tab->slots[i].ptr);
    return i >= home ? i - home : i + tab->capacity - home;
}

/* Capacities alternate between powers of two and 1.5 times them, so that
 * growing (at 85% load) leaves the table 57-64% full, never half empty. */
static size_t next_capacity(size_t capacity) {
    if (capacity < OM_TRACE_MIN_CAPACITY)
        return OM_TRACE_MIN_CAPACITY;
    bool power_of_two = (capacity & (capacity - 1)) == 0;
    return power_of_two ? capacity / 2 * 3 : capacity / 3 * 4;
}

static size_t load_limit(size_t capacity) { return capacity / 20 * 17; }

/* Place an entry known to be absent (Robin Hood: take the slot of any entry
 * closer to its home, and carry that one on). */
static void table_place(om_trace_table *tab, om_trace_entry e) {
    size_t i = home_slot(tab, e.ptr), dist = 0;
    for (;;) {
        om_trace_entry *s = &tab->slots[i];
        if (!s->ptr) {
            *s = e;
            return;
        }
        size_t d = displacement(tab, i);
        if (d < dist) {
            om_trace_entry held = *s;
            *s = e;
            e = held;
            dist = d;
        }
        if (++i == tab->capacity)
            i = 0;
        dist++;
    }
}

static bool table_grow(om_tracer *t, om_trace_table *tab) {
    size_t capacity = next_capacity(tab->capacity);
    if (capacity > SIZE_MAX / sizeof(om_trace_entry))
        return false;
    om_trace_entry *slots = engine_zalloc(t, capacity * sizeof *slots);
    if (!slots)
        return false;
    om_trace_table old = *tab;
    tab->slots = slots;
    tab->capacity = capacity;
    tab->limit = load_limit(capacity);
    for (size_t i = 0; i < old.capacity; i++)
        if (old.slots[i].ptr)
            table_place(tab, old.slots[i]);
    engine_free(t, old.slots, old.capacity * sizeof *old.slots);
    return true;
}

/* The slot holding ptr, or SIZE_MAX. */
static size_t table_find(const om_trace_table *tab, uintptr_t ptr) {
    if (!tab->capacity)
        return SIZE_MAX;
    size_t i = home_slot(tab, ptr);
    for (size_t dist = 0;; dist++) {
        const om_trace_entry *s = &tab->slots[i];
        if (s->ptr == ptr)
            return i;
        /* Robin Hood order: ptr would sit before any entry nearer home. */
        if (!s->ptr || displacement(tab, i) < dist)
            return SIZE_MAX;
        if (++i == tab->capacity)
            i = 0;
    }
}

/* Empty slot i, shifting the run after it back one slot (no tombstones). */
static void table_delete(om_trace_table *tab, size_t i) {
    for (;;) {
        size_t next = i + 1 == tab->capacity ? 0 : i + 1;
        if (!tab->slots[next].ptr || displacement(tab, next) == 0)
            break;
        tab->slots[i] = tab->slots[next];
        i = next;
    }
    tab->slots[i].ptr = 0;
    tab->count--;
}

/* ---- sizes that need more than 32 bits ------------------------------------------------- */

static size_t big_index(const om_trace_table *tab, uintptr_t ptr) {
    for (size_t i = 0; i < tab->nbig; i++)
        if (tab->big[i].ptr == ptr)
            return i;
    return SIZE_MAX;
}

static bool big_reserve(om_tracer *t, om_trace_table *tab) {
    om_trace_big *big = array_reserve(t, tab->big, &tab->big_capacity,
                                      tab->nbig, sizeof *big, 4, SIZE_MAX);
    if (big)
        tab->big = big;
    return big != NULL;
}

static void big_remove(om_trace_table *tab, uintptr_t ptr) {
    size_t i = big_index(tab, ptr);
    OM_ASSERT(i != SIZE_MAX);
    tab->big[i] = tab->big[--tab->nbig];
}

static size_t entry_size(const om_trace_table *tab, const om_trace_entry *e) {
    return e->size == OM_TRACE_BIG_SIZE ? tab->big[big_index(tab, e->ptr)].size
                                        : e->size;
}

/* ---- domains ------------------------------------------------------------------------------ */

static om_trace_table *table_of(om_tracer *t, unsigned domain, bool create) {
    if (domain == 0)
        return &t->main;
    for (size_t i = 0; i < t->ndomains; i++)
        if (t->domains[i].domain == domain)
            return &t->domains[i];
    om_trace_table *d =
        create ? array_reserve(t, t->domains, &t->domains_capacity,
                               t->ndomains, sizeof *d, 4, SIZE_MAX)
               : NULL;
    if (!d)
        return NULL;
    t->domains = d;
    om_trace_table *tab = &t->domains[t->ndomains++];
    memset(tab, 0, sizeof *tab);
    tab->domain = domain;
    return tab;
}

static void table_release(om_tracer *t, om_trace_table *tab) {
    engine_free(t, tab->slots, tab->capacity * sizeof *tab->slots);
    engine_free(t, tab->big, tab->big_capacity * sizeof *tab->big);
    unsigned domain = tab->domain;
    memset(tab, 0, sizeof *tab);
    tab->domain = domain;
}

/* ---- tracebacks ------------------------------------------------------------------------------ */

struct om_tb_chunk {
    om_tb_chunk *next;
    size_t size;
};

#define TB_CHUNK_SIZE (64 * 1024)

static om_tb_record *tb_alloc(om_tracer *t, size_t nframes) {
    size_t n = sizeof(om_tb_record) + nframes * sizeof(uintptr_t);
    n = (n + 7) & ~(size_t)7;
    if (n > t->tb_left) {
        size_t header = (sizeof(om_tb_chunk) + 15) & ~(size_t)15;
        om_tb_chunk *c = engine_alloc(t, header + TB_CHUNK_SIZE);
        if (!c)
            return NULL;
        c->next = t->tb_chunks;
        c->size = header + TB_CHUNK_SIZE;
        t->tb_chunks = c;
        t->tb_next = (char *)c + header;
        t->tb_left = TB_CHUNK_SIZE;
    }
    om_tb_record *r = (om_tb_record *)(void *)t->tb_next;
    t->tb_next += n;
    t->tb_left -= n;
    return r;
}

/* One multiply per frame (a polynomial hash of the frames), one full mix
 * at the end: interning a 16-frame traceback is on every allocation. */
static uint64_t frames_hash(const uintptr_t *frames, size_t n, bool site0,
                            size_t total) {
    uint64_t h = n | (uint64_t)site0 << 8 | (uint64_t)total << 16;
    for (size_t i = 0; i < n; i++)
        h = (h ^ frames[i]) * 0x9e3779b97f4a7c15ull;
    return om_hash_word(h);
}

static bool tb_equals(const om_tb_record *r, uint64_t hash,
                      const uintptr_t *frames, size_t n, bool site0,
                      size_t total) {
    if (r->hash != hash || r->nframes != n || r->site0 != site0 ||
        r->total_nframe != total)
        return false;
    /* A loop, not memcmp: a few words, compared on every event of the
     * whole-process tracer, where the call cost more than the compare. */
    for (size_t i = 0; i < n; i++)
        if (r->frames[i] != frames[i])
            return false;
    return true;
}

static bool tb_set_grow(om_tracer *t) {
    size_t capacity = t->tb_set_capacity ? t->tb_set_capacity * 2 : 256;
    uint32_t *set = engine_zalloc(t, capacity * sizeof *set);
    if (!set)
        return false;
    for (size_t id = 1; id <= t->ntracebacks; id++) {
        size_t i = t->tracebacks[id - 1]->hash & (capacity - 1);
        while (set[i])
            i = (i + 1) & (capacity - 1);
        set[i] = (uint32_t)id;
    }
    engine_free(t, t->tb_set, t->tb_set_capacity * sizeof *set);
    t->tb_set = set;
    t->tb_set_capacity = capacity;
    return true;
}

static bool tracebacks_reserve(om_tracer *t) {
    /* Ids are 32 bits, and 0 is none. */
    om_tb_record **ids = array_reserve(t, t->tracebacks,
                                       &t->tracebacks_capacity, t->ntracebacks,
                                       sizeof *ids, 256, UINT32_MAX - 1);
    if (!ids)
        return false;
    t->tracebacks = ids;
    /* The set stays at most half full. */
    return (t->ntracebacks + 1) * 2 <= t->tb_set_capacity || tb_set_grow(t);
}

/* The id of the interned traceback of these frames; 0 when memory is short. */
static uint32_t intern_traceback(om_tracer *t, const uintptr_t *frames,
                                 size_t n, bool site0, size_t total) {
    if (total > UINT16_MAX)
        total = UINT16_MAX;
    uint64_t hash = frames_hash(frames, n, site0, total);
    size_t mask = t->tb_set_capacity - 1, i = 0;
    if (t->tb_set_capacity) {
        for (i = hash & mask; t->tb_set[i]; i = (i + 1) & mask) {
            const om_tb_record *r = t->tracebacks[t->tb_set[i] - 1];
            if (tb_equals(r, hash, frames, n, site0, total))
                return t->tb_set[i];
        }
    }
    if (!tracebacks_reserve(t))
        return 0;
    om_tb_record *r = tb_alloc(t, n);
    if (!r)
        return 0;
    r->hash = hash;
    r->nframes = (uint16_t)n;
    r->total_nframe = (uint16_t)total;
    r->site0 = site0;
    memcpy(r->frames, frames, n * sizeof *frames);
    t->tracebacks[t->ntracebacks++] = r;
    uint32_t id = (uint32_t)t->ntracebacks;
    mask = t->tb_set_capacity - 1;
    for (i = hash & mask; t->tb_set[i]; i = (i + 1) & mask)
        ;
    t->tb_set[i] = id;
    return id;
}

const om_tb_record *om_tracer_traceback(const om_tracer *t, uint32_t tb) {
    return t->tracebacks[tb - 1];
}

/* ---- call sites ---------------------------------------------------------------------------------- */

/* The interned record of a call site; NULL when memory is short.  Sites
 * are few (one per call in the source), so a linear search is enough
 * behind the cache. */
static const om_trace_site *intern_site(om_tracer *t, const om_site *s) {
    for (size_t i = 0; i < t->nsites; i++) {
        const om_trace_site *r = t->sites[i];
        if (r->file == s->file && r->line == s->line && r->func == s->func)
            return r;
    }
    om_trace_site **sites = array_reserve(t, t->sites, &t->sites_capacity,
                                          t->nsites, sizeof *sites, 32,
                                          SIZE_MAX);
    if (!sites)
        return NULL;
    t->sites = sites;
    om_trace_site *r = engine_alloc(t, sizeof *r);
    if (!r)
        return NULL;
    *r = (om_trace_site){s->file, s->func, s->line};
    t->sites[t->nsites++] = r;
    return r;
}

static om_site_cache_entry *site_cache_slot(om_tracer *t, const om_site *s) {
    uint64_t h = om_hash_word((uint64_t)s->ret ^ (uintptr_t)s->file);
    return &t->site_cache[h & (OM_SITE_CACHE_SIZE - 1)];
}

/* The traceback id of an allocation at site: frame 0 is the call site (or
 * the return address when there is none), then the callers found by
 * unwinding when the limit allows more frames.  0 when memory is short. */
static uint32_t traceback_of(om_tracer *t, const om_site *site) {
    if (t->nframe == 1) {
        /* One frame: the same call instruction always has the same
         * traceback, so a hit costs one compare. */
        om_site_cache_entry *c = site_cache_slot(t, site);
        if (OM_LIKELY(c->ret == site->ret && c->file == site->file && c->tb))
            return c->tb;
    }
    uintptr_t frames[OM_TRACEMALLOC_MAX_FRAMES];
    size_t n = 1, callers = 0;
    if (site->file) {
        const om_trace_site *r = intern_site(t, site);
        if (!r)
            return 0;
        frames[0] = (uintptr_t)r;
    } else {
        frames[0] = site->ret;
    }
    if (t->nframe > 1)
        n += om_unwind_after(site->ret, frames + 1, (size_t)t->nframe - 1,
                             &callers);
    uint32_t tb = intern_traceback(t, frames, n, site->file != NULL,
                                   1 + callers);
    if (tb && t->nframe == 1)
        *site_cache_slot(t, site) =
            (om_site_cache_entry){site->ret, site->file, tb};
    return tb;
}

/* ---- locking ------------------------------------------------------------------------------------- */

static void lock(om_tracer *t) {
    if (t->locked)
        pthread_mutex_lock(&t->lock);
}

static void unlock(om_tracer *t) {
    if (t->locked)
        pthread_mutex_unlock(&t->lock);
}

/* ---- the engine's functions ------------------------------------------------------------------------ */

om_tracer *om_tracer_new(om_runtime *rt, int nframe, bool locked) {
    om_tracer *t = NULL;
    if (om_alloc_attempt(rt))
        t = om_raw_calloc(rt, 1, sizeof *t);
    if (!t)
        return NULL;
    t->rt = rt;
    t->nframe = nframe;
    t->memory = sizeof *t;
    t->locked = locked;
    if (locked && pthread_mutex_init(&t->lock, NULL) != 0) {
        om_raw_free(rt, t);
        return NULL;
    }
    return t;
}

/* Forget every trace and traceback and give their tables back: a table
 * sized for a past peak would otherwise stay for good.  Call sites stay
 * (they are few, and the cache of the engine is cleared). */
static void clear_locked(om_tracer *t) {
    table_release(t, &t->main);
    for (size_t i = 0; i < t->ndomains; i++)
        table_release(t, &t->domains[i]);
    engine_free(t, t->domains, t->domains_capacity * sizeof *t->domains);
    t->domains = NULL;
    t->ndomains = t->domains_capacity = 0;
    while (t->tb_chunks) {
        om_tb_chunk *c = t->tb_chunks;
        t->tb_chunks = c->next;
        engine_free(t, c, c->size);
    }
    t->tb_next = NULL;
    t->tb_left = 0;
    engine_free(t, t->tracebacks, t->tracebacks_capacity * sizeof *t->tracebacks);
    engine_free(t, t->tb_set, t->tb_set_capacity * sizeof *t->tb_set);
    t->tracebacks = NULL;
    t->tb_set = NULL;
    t->ntracebacks = t->tracebacks_capacity = t->tb_set_capacity = 0;
    memset(t->site_cache, 0, sizeof t->site_cache);
    t->current = t->peak = t->outside = 0;
}

void om_tracer_clear(om_tracer *t) {
    lock(t);
    clear_locked(t);
    unlock(t);
}

void om_tracer_free(om_tracer *t) {
    if (!t)
        return;
    clear_locked(t);
    for (size_t i = 0; i < t->nsites; i++)
        engine_free(t, t->sites[i], sizeof *t->sites[i]);
    engine_free(t, t->sites, t->sites_capacity * sizeof *t->sites);
    if (t->locked)
        pthread_mutex_destroy(&t->lock);
    om_raw_free(t->rt, t);
}

uint32_t om_tracer_traceback_id(om_tracer *t, const om_site *site) {
    lock(t);
    uint32_t tb = traceback_of(t, site);
    unlock(t);
    return tb;
}

/* Set entry e's size (the big list keeps sizes that need 64 bits). */
static bool set_size(om_tracer *t, om_trace_table *tab, om_trace_entry *e,
                     size_t size) {
    bool was_big = e->size == OM_TRACE_BIG_SIZE;
    if (size < OM_TRACE_BIG_SIZE) {
        if (was_big)
            big_remove(tab, e->ptr);
        e->size = (uint32_t)size;
        return true;
    }
    if (was_big) {
        tab->big[big_index(tab, e->ptr)].size = size;
        return true;
    }
    if (!big_reserve(t, tab))
        return false;
    tab->big[tab->nbig++] = (om_trace_big){e->ptr, size};
    e->size = OM_TRACE_BIG_SIZE;
    return true;
}

static bool reserve_locked(om_tracer *t, om_trace_table *tab, size_t size) {
    if (tab->count + 1 > tab->limit && !table_grow(t, tab))
        return false;
    return size < OM_TRACE_BIG_SIZE || big_reserve(t, tab);
}

static bool put_locked(om_tracer *t, om_trace_table *tab, uintptr_t ptr,
                       size_t size, uint32_t tb, om_trace_was *was) {
    size_t i = table_find(tab, ptr);
    if (i != SIZE_MAX) {
        /* Re-traced: the new size and traceback replace the old. */
        om_trace_entry *e = &tab->slots[i];
        size_t old = entry_size(tab, e);
        uint32_t old_tb = e->tb;
        if (!set_size(t, tab, e, size))
            return false;
        e->tb = tb;
        t->current = t->current - old + size;
        if (was)
            *was = (om_trace_was){true, old, old_tb};
    } else {
        if (!reserve_locked(t, tab, size))
            return false;
        om_trace_entry e = {ptr, (uint32_t)size, tb};
        if (size >= OM_TRACE_BIG_SIZE) {
            tab->big[tab->nbig++] = (om_trace_big){ptr, size};
            e.size = OM_TRACE_BIG_SIZE;
        }
        table_place(tab, e);
        tab->count++;
        t->current += size;
        if (was)
            was->found = false;
    }
    if (t->current > t->peak)
        t->peak = t->current;
    return true;
}

bool om_tracer_add(om_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                   const om_site *site) {
    OM_ASSERT(ptr != 0);
    lock(t);
    om_trace_table *tab = table_of(t, domain, true);
    uint32_t tb = tab ? traceback_of(t, site) : 0;
    bool ok = tb && put_locked(t, tab, ptr, size, tb, NULL);
    unlock(t);
    return ok;
}

bool om_tracer_put(om_tracer *t, unsigned domain, uintptr_t ptr, size_t size,
                   uint32_t tb, om_trace_was *was) {
    OM_ASSERT(ptr != 0 && tb != 0 && tb <= t->ntracebacks);
    lock(t);
    om_trace_table *tab = table_of(t, domain, true);
    bool ok = tab && put_locked(t, tab, ptr, size, tb, was);
    unlock(t);
    return ok;
}

void om_tracer_prefetch(om_tracer *t, uintptr_t ptr) {
    lock(t);
    if (t->main.capacity)
        __builtin_prefetch(&t->main.slots[home_slot(&t->main, ptr)], 1);
    unlock(t);
}

bool om_tracer_reserve(om_tracer *t, unsigned domain, size_t size) {
    lock(t);
    om_trace_table *tab = table_of(t, domain, true);
    bool ok = tab && reserve_locked(t, tab, size);
    unlock(t);
    return ok;
}

bool om_tracer_take(om_tracer *t, unsigned domain, uintptr_t ptr,
                    size_t *size, uint32_t *tb) {
    lock(t);
    om_trace_table *tab = table_of(t, domain, false);
    size_t i = tab ? table_find(tab, ptr) : SIZE_MAX;
    if (i != SIZE_MAX) {
        om_trace_entry *e = &tab->slots[i];
        size_t n = entry_size(tab, e);
        if (size)
            *size = n;
        if (tb)
            *tb = e->tb;
        t->current -= n;
        if (e->size == OM_TRACE_BIG_SIZE)
            big_remove(tab, e->ptr);
        table_delete(tab, i);
    }
    unlock(t);
    return i != SIZE_MAX;
}

bool om_tracer_remove(om_tracer *t, unsigned domain, uintptr_t ptr) {
    return om_tracer_take(t, domain, ptr, NULL, NULL);
}

bool om_tracer_find(om_tracer *t, unsigned domain, uintptr_t ptr,
                    size_t *size, uint32_t *tb) {
    lock(t);
    om_trace_table *tab = table_of(t, domain, false);
    size_t i = tab ? table_find(tab, ptr) : SIZE_MAX;
    if (i != SIZE_MAX) {
        *size = entry_size(tab, &tab->slots[i]);
        *tb = tab->slots[i].tb;
    }
    unlock(t);
    return i != SIZE_MAX;
}

static int each_in(const om_trace_table *tab, om_tracer_visit_fn fn,
                   void *arg) {
    for (size_t i = 0; i < tab->capacity; i++) {
        const om_trace_entry *e = &tab->slots[i];
        if (!e->ptr)
            continue;
        int r = fn(tab->domain, e->ptr, entry_size(tab, e), e->tb, arg);
        if (r)
            return r;
    }
    return 0;
}

int om_tracer_each(om_tracer *t, om_tracer_visit_fn fn, void *arg) {
    lock(t);
    int r = each_in(&t->main, fn, arg);
    for (size_t i = 0; !r && i < t->ndomains; i++)
        r = each_in(&t->domains[i], fn, arg);
    unlock(t);
    return r;
}

/* ---- checking ------------------------------------------------------------------------------------- */

static om_status check_table(om_tracer *t, const om_trace_table *tab,
                             size_t *total) {
    size_t count = 0, big = 0;
    for (size_t i = 0; i < tab->capacity; i++) {
        const om_trace_entry *e = &tab->slots[i];
        if (!e->ptr)
            continue;
        count++;
        if (e->tb == 0 || e->tb > t->ntracebacks)
            return om_error(t->rt, OM_ERR_STATE,
                            "tracer: domain %u trace %p has traceback id %u "
                            "of %zu",
                            tab->domain, (void *)e->ptr, e->tb,
                            t->ntracebacks);
        if (table_find(tab, e->ptr) != i)
            return om_error(t->rt, OM_ERR_STATE,
                            "tracer: domain %u trace %p is not where a "
                            "lookup finds it",
                            tab->domain, (void *)e->ptr);
        if (e->size == OM_TRACE_BIG_SIZE) {
            if (big_index(tab, e->ptr) == SIZE_MAX)
                return om_error(t->rt, OM_ERR_STATE,
                                "tracer: domain %u trace %p has no big size",
                                tab->domain, (void *)e->ptr);
            big++;
        }
        *total += entry_size(tab, e);
    }
    if (count != tab->count || big != tab->nbig)
        return om_error(t->rt, OM_ERR_STATE,
                        "tracer: domain %u counts %zu traces (%zu big), "
                        "holds %zu (%zu big)",
                        tab->domain, tab->count, tab->nbig, count, big);
    return OM_OK;
}

om_status om_tracer_check(om_tracer *t) {
    lock(t);
    size_t total = 0;
    om_status st = check_table(t, &t->main, &total);
    for (size_t i = 0; st == OM_OK && i < t->ndomains; i++)
        st = check_table(t, &t->domains[i], &total);
    if (st == OM_OK &&
        (total + t->outside != t->current || t->peak < t->current))
        st = om_error(t->rt, OM_ERR_STATE,
                      "tracer: tables hold %zu bytes and %zu are kept "
                      "outside, current says %zu (peak %zu)",
                      total, t->outside, t->current, t->peak);
    unlock(t);
    return st;
}
