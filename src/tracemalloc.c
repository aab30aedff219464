/*
 * tracemalloc.c — a runtime's om_tracemalloc_* functions: the hooks the
 * allocation paths call while tracing, and snapshots and object
 * tracebacks, which resolve the engine's frames into (file, line,
 * function) (docs/design.md, "Tracer").
 */
#include "pooltrace.h"
#include "snapshot.h"
#include "symbolize.h"

#include <string.h>

/* ---- domain 0's traces: in pool blocks' entries or the engine's table ---------------- */

/* Trace the pool block of entry e; false when memory is short. */
static bool trace_pool_block(om_tracer *t, om_block_trace *e, size_t n,
                             const om_site *site) {
    uint32_t tb = om_tracer_traceback_id(t, site);
    if (!tb)
        return false;
    om_tracer_adjust(t, e->tb ? e->size : 0, n);
    *e = (om_block_trace){(uint32_t)n, tb};
    return true;
}

static bool find_trace(om_runtime *rt, uintptr_t ptr, size_t *size,
                       uint32_t *tb) {
    const om_block_trace *e = om_pooltrace_slot(rt, ptr);
    if (!e)
        return om_tracer_find(rt->tracer, 0, ptr, size, tb);
    *size = e->size;
    *tb = e->tb;
    return e->tb != 0;
}

static bool take_trace(om_runtime *rt, uintptr_t ptr, size_t *size,
                       uint32_t *tb) {
    om_block_trace *e = om_pooltrace_slot(rt, ptr);
    if (!e)
        return om_tracer_take(rt->tracer, 0, ptr, size, tb);
    if (!e->tb)
        return false;
    *size = e->size;
    *tb = e->tb;
    om_tracer_adjust(rt->tracer, e->size, 0);
    *e = (om_block_trace){0, 0};
    return true;
}

/* Store a trace with a known traceback; needs no memory for a pool block
 * or after om_tracer_reserve. */
static void put_trace(om_runtime *rt, uintptr_t ptr, size_t size,
                      uint32_t tb) {
    om_block_trace *e = om_pooltrace_slot(rt, ptr);
    if (e) {
        om_tracer_adjust(rt->tracer, e->tb ? e->size : 0, size);
        *e = (om_block_trace){(uint32_t)size, tb};
        return;
    }
    bool stored = om_tracer_put(rt->tracer, 0, ptr, size, tb, NULL);
    OM_ASSERT(stored);
    (void)stored;
}

/* ---- hooks ---------------------------------------------------------------------------- */

bool om_trace_alloc(om_runtime *rt, void *p, size_t n, const om_site *site) {
    om_block_trace *e = om_pooltrace_slot(rt, (uintptr_t)p);
    if (e ? trace_pool_block(rt->tracer, e, n, site)
          : om_tracer_add(rt->tracer, 0, (uintptr_t)p, n, site))
        return true;
    om_error(rt, OM_ERR_NOMEM, "tracemalloc: out of memory for a trace");
    return false;
}

void om_trace_free(om_runtime *rt, void *p) {
    take_trace(rt, (uintptr_t)p, &(size_t){0}, &(uint32_t){0});
}

bool om_trace_realloc_begin(om_runtime *rt, void *p, size_t n,
                            const om_site *site, om_trace_undo *undo) {
    undo->new_size = n;
    undo->new_tb = om_tracer_traceback_id(rt->tracer, site);
    /* Room in the table for the new trace, should the block move out of
     * the pools (a block in a pool has its entry there). */
    if (!undo->new_tb || !om_tracer_reserve(rt->tracer, 0, n)) {
        om_error(rt, OM_ERR_NOMEM, "tracemalloc: out of memory for a trace");
        return false;
    }
    undo->had = take_trace(rt, (uintptr_t)p, &undo->size, &undo->tb);
    return true;
}

void om_trace_realloc_end(om_runtime *rt, void *p, void *q,
                          const om_trace_undo *undo) {
    if (q)
        put_trace(rt, (uintptr_t)q, undo->new_size, undo->new_tb);
    else if (undo->had)
        put_trace(rt, (uintptr_t)p, undo->size, undo->tb);
}

void om_tracemalloc_release(om_runtime *rt) {
    if (rt->tracing)
        om_pooltrace_stop(rt);
    rt->tracing = false;
    om_tracer_free(rt->tracer);
    om_symbolizer_free(rt->symbolizer);
    rt->tracer = NULL;
    rt->symbolizer = NULL;
}

/* ---- starting and stopping ------------------------------------------------------------------- */

om_status om_tracemalloc_start(om_runtime *rt, int nframe) {
    if (!rt)
        return OM_ERR_ARG;
    if (nframe < 1 || nframe > OM_TRACEMALLOC_MAX_FRAMES)
        return om_error(rt, OM_ERR_ARG,
                        "om_tracemalloc_start: the number of frames must be "
                        "in range [1; %d], not %d",
                        OM_TRACEMALLOC_MAX_FRAMES, nframe);
    if (rt->tracing)
        return OM_OK;
    if (!rt->tracer) {
        rt->tracer = om_tracer_new(rt, nframe, false);
        if (!rt->tracer)
            return om_error(rt, OM_ERR_NOMEM,
                            "om_tracemalloc_start: out of memory");
    }
    if (om_pooltrace_start(rt) != OM_OK)
        return om_error(rt, OM_ERR_NOMEM,
                        "om_tracemalloc_start: out of memory");
    rt->tracer->nframe = nframe;
    rt->trace_limit = nframe;
    rt->tracing = true;
    return OM_OK;
}

void om_tracemalloc_stop(om_runtime *rt) {
    if (!rt || !rt->tracing)
        return;
    rt->tracing = false;
    om_pooltrace_stop(rt);
    om_tracer_clear(rt->tracer);
}

int om_tracemalloc_is_tracing(const om_runtime *rt) {
    return rt && rt->tracing;
}

void om_tracemalloc_clear_traces(om_runtime *rt) {
    if (rt && rt->tracing) {
        om_pooltrace_clear(rt);
        om_tracer_clear(rt->tracer);
    }
}

int om_tracemalloc_get_traceback_limit(const om_runtime *rt) {
    return rt ? rt->trace_limit : 0;
}

void om_tracemalloc_get_traced_memory(const om_runtime *rt, size_t *current,
                                      size_t *peak) {
    bool on = rt && rt->tracing;
    if (current)
        *current = on ? rt->tracer->current : 0;
    if (peak)
        *peak = on ? rt->tracer->peak : 0;
}

void om_tracemalloc_reset_peak(om_runtime *rt) {
    if (rt && rt->tracing)
        rt->tracer->peak = rt->tracer->current;
}

size_t om_tracemalloc_get_tracemalloc_memory(const om_runtime *rt) {
    if (!rt)
        return 0;
    return (rt->tracer ? rt->tracer->memory : 0) +
           (rt->symbolizer ? om_symbolizer_memory(rt->symbolizer) : 0);
}

/* ---- tracking user memory ---------------------------------------------------------------------- */

static om_status track(om_runtime *rt, unsigned domain, uintptr_t ptr,
                       size_t size, const om_site *site) {
    if (!rt)
        return OM_ERR_ARG;
    if (!rt->tracing)
        return om_error(rt, OM_ERR_STATE,
                        "om_tracemalloc_track: not tracing");
    if (!ptr)
        return om_error(rt, OM_ERR_ARG,
                        "om_tracemalloc_track: address 0 cannot be traced");
    om_block_trace *e = domain == 0 ? om_pooltrace_slot(rt, ptr) : NULL;
    if (e && size > UINT32_MAX)
        return om_error(rt, OM_ERR_ARG,
                        "om_tracemalloc_track: %p is a block of objmem's "
                        "pools, whose traces in domain 0 are below 4 GiB, "
                        "not %zu bytes",
                        (void *)ptr, size);
    if (!(e ? trace_pool_block(rt->tracer, e, size, site)
            : om_tracer_add(rt->tracer, domain, ptr, size, site)))
        return om_error(rt, OM_ERR_NOMEM,
                        "om_tracemalloc_track: out of memory for a trace");
    return OM_OK;
}

om_status(om_tracemalloc_track)(om_runtime *rt, unsigned domain,
                                uintptr_t ptr, size_t size) {
    om_site site = {NULL, NULL, 0, OM_RETURN_ADDRESS()};
    return track(rt, domain, ptr, size, &site);
}

om_status om_tracemalloc_track_at(om_runtime *rt, unsigned domain,
                                  uintptr_t ptr, size_t size,
                                  const char *file, int line,
                                  const char *func) {
    om_site site = {file, func, line, OM_RETURN_ADDRESS()};
    return track(rt, domain, ptr, size, &site);
}

om_status om_tracemalloc_untrack(om_runtime *rt, unsigned domain,
                                 uintptr_t ptr) {
    if (!rt)
        return OM_ERR_ARG;
    if (!rt->tracing)
        return om_error(rt, OM_ERR_STATE,
                        "om_tracemalloc_untrack: not tracing");
    if (domain == 0)
        take_trace(rt, ptr, &(size_t){0}, &(uint32_t){0});
    else
        om_tracer_remove(rt->tracer, domain, ptr);
    return OM_OK;
}

/* ---- resolving frames ------------------------------------------------------------------------------ */

/* Frame i of record r as (file, line, function), strings borrowed from the
 * call site or the symbolizer. */
static om_status resolve_frame(om_runtime *rt, const om_tb_record *r,
                               size_t i, om_frame *out) {
    if (i == 0 && r->site0) {
        const om_trace_site *s = (const om_trace_site *)r->frames[0];
        out->filename = s->file;
        out->lineno = s->line > 0 ? (unsigned)s->line : 0;
        out->function = s->func ? s->func : OM_UNKNOWN_NAME;
        return OM_OK;
    }
    if (!rt->symbolizer) {
        rt->symbolizer = om_symbolizer_new(rt);
        if (!rt->symbolizer)
            return OM_ERR_NOMEM;
    }
    return om_symbolize(rt->symbolizer, r->frames[i], out);
}

/* ---- snapshots ------------------------------------------------------------------------------------- */

typedef struct snapshot_builder {
    om_runtime *rt;
    om_snapshot *snap;
    /* The snapshot's traceback for each engine id (index id - 1), made on
     * first use: each distinct traceback is resolved once. */
    const om_traceback **made;
} snapshot_builder;

static const om_traceback *convert_traceback(snapshot_builder *b,
                                             const om_tb_record *r) {
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    for (size_t i = 0; i < r->nframes; i++) {
        om_frame f;
        if (resolve_frame(b->rt, r, i, &f) != OM_OK)
            return NULL;
        frames[i].filename = om_snapshot_intern_string(b->snap, f.filename,
                                                       strlen(f.filename));
        frames[i].function = om_snapshot_intern_string(b->snap, f.function,
                                                       strlen(f.function));
        frames[i].lineno = f.lineno;
        if (!frames[i].filename || !frames[i].function)
            return NULL;
    }
    return om_snapshot_intern_traceback(b->snap, frames, r->nframes,
                                        r->total_nframe);
}

static int add_to_snapshot(unsigned domain, uintptr_t ptr, size_t size,
                           uint32_t tb, void *arg) {
    (void)ptr;
    snapshot_builder *b = arg;
    const om_traceback *made = b->made[tb - 1];
    if (!made) {
        made = convert_traceback(b, om_tracer_traceback(b->rt->tracer, tb));
        if (!made)
            return -1;
        b->made[tb - 1] = made;
    }
    return om_snapshot_append(b->snap, domain, size, made) == OM_OK ? 0 : -1;
}

om_snapshot *om_tracemalloc_take_snapshot(om_runtime *rt) {
    if (!rt)
        return NULL;
    if (!rt->tracing)
        return OM_FAIL_NULL(rt, OM_ERR_STATE,
                            "om_tracemalloc_take_snapshot: the tracer must be "
                            "tracing memory allocations to take a snapshot");
    snapshot_builder b = {rt, om_snapshot_new(rt, rt->tracer->nframe), NULL};
    size_t ntb = rt->tracer->ntracebacks;
    if (b.snap && ntb) {
        if (om_alloc_attempt(rt))
            b.made = om_raw_calloc(rt, ntb, sizeof *b.made);
        if (!b.made) {
            om_snapshot_free(b.snap);
            b.snap = NULL;
        }
    }
    if (b.snap && (om_pooltrace_each(rt, add_to_snapshot, &b) != 0 ||
                   om_tracer_each(rt->tracer, add_to_snapshot, &b) != 0)) {
        om_snapshot_free(b.snap);
        b.snap = NULL;
    }
    om_raw_free(rt, b.made);
    if (!b.snap)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_tracemalloc_take_snapshot: out of memory");
    return b.snap;
}

/* ---- one object's traceback ---------------------------------------------------------------------------- */

/* A standalone traceback is one block: a header naming its runtime, the
 * om_traceback, its frames, then their strings. */
typedef struct standalone_header {
    om_runtime *rt;
    size_t pad; /* keeps the om_traceback 16-byte aligned */
} standalone_header;

static om_traceback *standalone_traceback(om_runtime *rt,
                                          const om_tb_record *r) {
    om_frame frames[OM_TRACEMALLOC_MAX_FRAMES];
    size_t strings = 0;
    for (size_t i = 0; i < r->nframes; i++) {
        if (resolve_frame(rt, r, i, &frames[i]) != OM_OK)
            return NULL;
        strings += strlen(frames[i].filename) + strlen(frames[i].function) + 2;
    }
    size_t head = sizeof(standalone_header) + sizeof(om_traceback);
    size_t n = head + r->nframes * sizeof(om_frame) + strings;
    standalone_header *h = NULL;
    if (om_alloc_attempt(rt))
        h = om_raw_malloc(rt, n);
    if (!h)
        return NULL;
    h->rt = rt;
    om_traceback *tb = (om_traceback *)(void *)(h + 1);
    om_frame *copy = (om_frame *)(void *)(tb + 1);
    char *text = (char *)(copy + r->nframes);
    for (size_t i = 0; i < r->nframes; i++) {
        size_t lf = strlen(frames[i].filename) + 1;
        size_t lfn = strlen(frames[i].function) + 1;
        copy[i].filename = memcpy(text, frames[i].filename, lf);
        copy[i].function = memcpy(text + lf, frames[i].function, lfn);
        copy[i].lineno = frames[i].lineno;
        text += lf + lfn;
    }
    tb->nframes = r->nframes;
    tb->total_nframe = r->total_nframe;
    tb->frames = copy;
    return tb;
}

om_traceback *om_tracemalloc_get_object_traceback(const om_object *o) {
    om_runtime *rt = om_runtime_of(o);
    if (!rt || !rt->tracing)
        return NULL;
    size_t size;
    uint32_t id;
    if (!find_trace(rt, (uintptr_t)o, &size, &id))
        return NULL;
    om_traceback *tb = standalone_traceback(rt, om_tracer_traceback(rt->tracer, id));
    if (!tb)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_tracemalloc_get_object_traceback: out of "
                            "memory");
    return tb;
}

void om_traceback_free(om_traceback *tb) {
    if (!tb)
        return;
    standalone_header *h = (standalone_header *)(void *)tb - 1;
    om_raw_free(h->rt, h);
}
