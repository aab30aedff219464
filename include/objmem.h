/*
 * objmem.h — the one public header of objmem: Python's memory-management
 * model for C programs (reference-counted objects, ready containers, and the
 * runtime that owns them).  docs/design.md explains the design behind it.
 *
 * Reference ownership, everywhere in this header:
 *   - "new reference": the caller owns one reference and must om_decref it.
 *   - "borrowed": valid while the caller (or the container it came from)
 *     keeps the object alive; om_incref it to keep it longer.
 *   - Functions that store an object (append, set, pack) take their own
 *     reference; they never steal the caller's.
 *
 * Errors: functions that can fail return NULL or a negative om_status, and
 * om_last_error(rt) says why in words.  Nothing aborts on a user error,
 * except the refcount-misuse checks of debug builds (OBJMEM_DEBUG >= 1).
 *
 * Threads: a runtime and its objects are used by one thread at a time; any
 * number of runtimes may run in parallel threads.  There is no global
 * mutable state.
 */
#ifndef OBJMEM_H
#define OBJMEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OM_VERSION_MAJOR 0
#define OM_VERSION_MINOR 1
#define OM_VERSION_PATCH 0
#define OM_VERSION_STRING "0.1.0"
/* major * 10000 + minor * 100 + patch, the value om_version() returns. */
#define OM_VERSION_NUMBER \
    (OM_VERSION_MAJOR * 10000 + OM_VERSION_MINOR * 100 + OM_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define OM_API __attribute__((visibility("default")))
#else
#define OM_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Status codes.  Declared once here; om_status_message() gives each one's
 * fixed text, om_last_error() the detailed message of the latest failure.
 * ------------------------------------------------------------------------ */
#define OM_STATUS_TABLE(X)                                                   \
    X(OM_OK, 0, "success")                                                   \
    X(OM_ERR_NOMEM, -1, "out of memory")                                     \
    X(OM_ERR_ARG, -2, "invalid argument")                                    \
    X(OM_ERR_TYPE, -3, "wrong object type")                                  \
    X(OM_ERR_INDEX, -4, "index out of range")                                \
    X(OM_ERR_KEY, -5, "key not found")                                       \
    X(OM_ERR_OVERFLOW, -6, "size overflow")                                  \
    X(OM_ERR_STATE, -7, "operation not allowed in the current state")      \
    X(OM_ERR_FORMAT, -8, "malformed data")                                   \
    X(OM_ERR_IO, -9, "input/output error")

typedef enum om_status {
#define OM_STATUS_ENUM_(name, value, text) name = value,
    OM_STATUS_TABLE(OM_STATUS_ENUM_)
#undef OM_STATUS_ENUM_
} om_status;

/* The fixed text of a status code ("unknown status" for other values). */
OM_API const char *om_status_message(int status);

/* ------------------------------------------------------------------------
 * Version.
 * ------------------------------------------------------------------------ */

/* OM_VERSION_NUMBER of the library actually linked. */
OM_API int om_version(void);
/* OM_VERSION_STRING of the library actually linked. */
OM_API const char *om_version_string(void);
/* The OBJMEM_DEBUG check level the library was built with (0..3):
 *   0  argument checks only (they always run and return errors);
 *   1  + refcount misuse (decref of a dead object, use of a freed object)
 *        aborts with a message naming the type;
 *   2  + internal consistency assertions;
 *   3  + expensive invariant walks (om_check) after bulk operations. */
OM_API int om_debug_level(void);

/* ------------------------------------------------------------------------
 * Objects and types.
 * ------------------------------------------------------------------------ */

typedef struct om_runtime om_runtime;
typedef struct om_type om_type;

/*
 * The object header: 16 bytes on 64-bit platforms (a 64-bit word holding
 * the reference count and flags, and the type; 12 bytes on 32-bit x86).  Its fields are private: read
 * and change them only through the functions below.  A user object is a
 * struct whose first member is OM_OBJECT_HEAD; a pointer to it converts to
 * om_object * and back.
 */
typedef struct om_object {
    uint64_t om_refword_;         /* private: refcount << 8 | flags */
    const om_type *om_type_;      /* private: the object's type */
} om_object;

#define OM_OBJECT_HEAD om_object om_head;

/* Private flag bits of the header word, public only so that the static
 * initialiser below can be a constant expression. */
#define OM_PRIV_OBJECT_ 0x01u
#define OM_PRIV_IMMORTAL_ 0x02u
#define OM_PRIV_STATIC_ 0x04u

/*
 * Initialiser for an immortal object in static storage, for singletons:
 *     static struct my_none none = { OM_STATIC_OBJECT_INIT(&my_none_type) };
 * Such an object belongs to no runtime: incref/decref never change it and it
 * is never freed, traversed or collected.  Its type must own no references
 * (functions that need a runtime, such as container mutators, reject it).
 */
#define OM_STATIC_OBJECT_INIT(type)                                          \
    { (uint64_t)(OM_PRIV_OBJECT_ | OM_PRIV_IMMORTAL_ | OM_PRIV_STATIC_),     \
      (type) }

/* Called by a traverse function once per strong reference; a non-zero return
 * stops the traversal and is returned by it. */
typedef int (*om_visit_fn)(om_object *child, void *arg);

/*
 * Type callbacks.  The contracts below are what the runtime (and, later, the
 * cycle collector) relies on; breaking them is undefined behaviour.
 *
 * traverse(self, visit, arg)
 *     Call visit(child, arg) once for every non-NULL strong reference self
 *     owns, and return the first non-zero result of visit (else 0).  It must
 *     not allocate, change any object, or run user code.  A type without
 *     traverse owns no object references and is never tracked by the
 *     collector (strings, numbers, buffers).  An object may refer only to
 *     objects of its own runtime (and to static objects): runtimes run on
 *     different threads, and a collection examines only its own objects.
 *
 * clear(self)
 *     Release everything self owns: its references and any memory it
 *     allocated, leaving a valid, empty object.  Store NULL in each slot
 *     *before* om_decref'ing what it held, so that code running during that
 *     decref (finalizers) sees a consistent object.  Called when the object
 *     dies, and by the collector to break cycles; it may be called on an
 *     object that is then kept alive, so it must be safe to call twice.
 *
 * finalize(self)
 *     Called at most once per object, before its references are dropped,
 *     with the object still intact (refcount temporarily 1).  It may run any
 *     code, including storing a new reference to self somewhere
 *     ("resurrection"): the object then stays alive and is not finalized
 *     again.  It must not om_decref self without a matching om_incref.
 *
 * extra_size(self)
 *     Bytes owned by self beyond type->size (heap arrays, variable part);
 *     om_sizeof adds it.  NULL means none.
 *
 * hash(self) / eq(self, other)
 *     Used for dictionary keys.  eq is called only with two objects of the
 *     same type and returns non-zero when they are equal; equal objects must
 *     have equal hashes.  A type without hash is hashed and compared by
 *     identity.  Neither may change any object.
 */
typedef int (*om_traverse_fn)(om_object *self, om_visit_fn visit, void *arg);
typedef void (*om_clear_fn)(om_object *self);
typedef void (*om_finalize_fn)(om_object *self);
typedef size_t (*om_extra_size_fn)(const om_object *self);
typedef uint64_t (*om_hash_fn)(const om_object *self);
typedef int (*om_eq_fn)(const om_object *self, const om_object *other);

/* Type flags; om_new rejects unknown bits so that later flags cannot be set
 * by accident.
 *   OM_TYPE_GC_MANUAL: objects of this collectable type start untracked; the
 *     type's own code calls om_gc_track when the object may hold a cycle
 *     (as CPython's dict does).
 *   OM_TYPE_LEGACY_FINALIZER: the finalizer must not run inside a cycle
 *     (Python's pre-3.4 __del__ rule): an unreachable cycle holding such an
 *     object is uncollectable and goes to om_gc_garbage instead.
 *   OM_TYPE_WEAKREFABLE: objects of this type accept weak references
 *     (om_weakref_new); the runtime keeps the list of an object's weak
 *     references in 8 bytes it adds after the object (counted by
 *     om_sizeof), as Python's weakly referenceable types carry a slot. */
#define OM_TYPE_GC_MANUAL 0x1u
#define OM_TYPE_LEGACY_FINALIZER 0x2u
#define OM_TYPE_WEAKREFABLE 0x4u
#define OM_TYPE_FLAGS_KNOWN \
    (OM_TYPE_GC_MANUAL | OM_TYPE_LEGACY_FINALIZER | OM_TYPE_WEAKREFABLE)

struct om_type {
    const char *name;          /* for messages and reports; not NULL */
    size_t size;               /* bytes of the instance, header included */
    unsigned flags;            /* OM_TYPE_* bits */
    om_traverse_fn traverse;
    om_clear_fn clear;
    om_finalize_fn finalize;
    om_extra_size_fn extra_size;
    om_hash_fn hash;
    om_eq_fn eq;
};

/*
 * A new object of `type` (new reference, refcount 1), its body after the
 * header zero-filled.  NULL on failure: type invalid (NULL name, size below
 * sizeof(om_object), unknown flags) or no memory.
 */
OM_API om_object *om_new(om_runtime *rt, const om_type *type);
/* As om_new, with `extra` more zero-filled bytes after type->size, for
 * variable-size objects (the object records its own length). */
OM_API om_object *om_new_var(om_runtime *rt, const om_type *type,
                             size_t extra);

/* Add a reference.  NULL and immortal objects are left alone. */
OM_API void om_incref(om_object *o);
/*
 * Drop a reference.  NULL and immortal objects are left alone.  When the
 * last reference goes, the object is finalized (may resurrect), cleared and
 * freed; objects it held that die as a consequence are freed from a queue,
 * never by recursion, so any depth of structure frees in constant C stack.
 * May run finalizers.
 */
OM_API void om_decref(om_object *o);
/* Store a new reference in *slot and drop the old one, in that order. */
OM_API void om_setref(om_object **slot, om_object *value);

/* The reference count (no +1 for the argument, unlike sys.getrefcount);
 * OM_REFCOUNT_IMMORTAL for immortal objects. */
#define OM_REFCOUNT_IMMORTAL ((size_t)UINT32_MAX)
OM_API size_t om_refcount(const om_object *o);
/* Bytes the object accounts for: type->size (header included) plus what
 * type->extra_size reports (the variable part of an om_new_var object, heap
 * arrays it owns). */
OM_API size_t om_sizeof(const om_object *o);
/* The object's type (borrowed). */
OM_API const om_type *om_type_of(const om_object *o);
/* The runtime that owns the object; NULL for static immortal objects. */
OM_API om_runtime *om_runtime_of(const om_object *o);

/* Make a heap object immortal: its refcount no longer changes and it lives
 * until its runtime is freed, which then clears it (dropping what it holds)
 * without reporting it as a leak. */
OM_API void om_make_immortal(om_object *o);
OM_API int om_is_immortal(const om_object *o);

/* ------------------------------------------------------------------------
 * Runtime.
 * ------------------------------------------------------------------------ */

/*
 * The system allocator a runtime uses for blocks above 512 bytes, for its own
 * bookkeeping and for the runtime itself (pools come from the OS directly),
 * as PyMem_SetAllocator allows for CPython's raw domain.  Set all four
 * functions or none (all NULL: the C library's).  They must return memory
 * aligned to 16 bytes, and may be called with the runtime in any state, but
 * never concurrently for one runtime.
 */
typedef struct om_raw_allocator {
    void *ctx;                                          /* passed to each */
    void *(*malloc)(void *ctx, size_t n);
    void *(*calloc)(void *ctx, size_t count, size_t size);
    void *(*realloc)(void *ctx, void *p, size_t n);
    void (*free)(void *ctx, void *p);
} om_raw_allocator;

/*
 * Runtime configuration.  Always start from om_config_init(), which sets
 * `size` and the defaults and then applies OBJMEM_* environment variables
 * (docs/environment.md); set fields after it to override both.  `size` lets
 * later versions add fields without breaking callers built against this
 * one.
 */
typedef struct om_config {
    size_t size;          /* sizeof(om_config) of the caller's header */
    int leak_report;      /* om_runtime_free prints objects still alive
                             (default 1; OBJMEM_LEAK_REPORT) */
    FILE *report_stream;  /* where reports go; NULL means stderr */
    int malloc_debug;     /* 1: om_malloc blocks carry guards, fill patterns
                             and serial numbers, checked on free and realloc
                             (default 0; OBJMEM_MALLOC=debug) */
    om_raw_allocator raw; /* all NULL: the C library's malloc family */
} om_config;

OM_API void om_config_init(om_config *config);

/*
 * A new runtime; config may be NULL for the defaults.  NULL if config is
 * invalid (size 0 or larger than this library knows, a raw allocator with
 * some functions set and others not) or memory is short.
 */
OM_API om_runtime *om_runtime_new(const om_config *config);
/*
 * Free the runtime and all memory it owns.  Heap immortal objects are
 * cleared first; objects still alive after that are leaks: when
 * config.leak_report is set they are reported (count per type) on the
 * report stream.  Returns the number of leaked objects (0 for a clean
 * shutdown).  NULL is a no-op returning 0.
 */
OM_API size_t om_runtime_free(om_runtime *rt);

/* The message of the latest failure in rt ("" when none): names the
 * function, the bad argument and why. */
OM_API const char *om_last_error(const om_runtime *rt);
/* The status of the latest failure in rt (OM_OK when none). */
OM_API om_status om_last_status(const om_runtime *rt);
/* Forget the latest failure. */
OM_API void om_clear_error(om_runtime *rt);

/* Objects currently alive in rt (immortal ones included). */
OM_API size_t om_object_count(const om_runtime *rt);

/*
 * Walk every internal structure of rt and check its invariants (pool free
 * lists and counts, object headers, container shapes, trace tables).  OM_OK, or
 * OM_ERR_STATE with om_last_error naming the first broken invariant.
 */
OM_API om_status om_check(om_runtime *rt);

/* Testing aid: make the nth allocation attempt from now fail (1 = the next
 * one); 0 turns failure injection off.  Every allocating path of the
 * runtime counts.  Injection disarms itself once the failure happened. */
OM_API void om_debug_fail_alloc(om_runtime *rt, uint64_t nth);
/* Allocation attempts rt has made while failure injection was armed (the
 * failed one included): a scenario's count grew by nth exactly when the
 * injected failure happened.  Attempts are not counted while it is off, so
 * that the allocation paths write nothing for it. */
OM_API uint64_t om_debug_alloc_count(const om_runtime *rt);

/* ------------------------------------------------------------------------
 * Raw memory owned by a runtime (the object allocator's blocks).
 * ------------------------------------------------------------------------ */

/* n bytes, 16-byte aligned; NULL on failure.  n == 0 gives a unique
 * pointer. */
OM_API void *om_malloc(om_runtime *rt, size_t n);
/* count * size zeroed bytes; NULL on overflow or failure. */
OM_API void *om_calloc(om_runtime *rt, size_t count, size_t size);
/* Resize p (NULL acts as om_malloc), keeping the contents; on failure NULL
 * is returned and p is untouched. */
OM_API void *om_realloc(om_runtime *rt, void *p, size_t n);
/* Free p (from om_malloc/om_calloc/om_realloc of rt); NULL is a no-op.  In
 * debug mode a damaged or already freed block is reported and aborts. */
OM_API void om_free(om_runtime *rt, void *p);
/* Bytes usable at p (at least what was asked for: the whole size class for
 * small blocks, exactly the request in debug mode); 0 for NULL. */
OM_API size_t om_malloc_usable_size(om_runtime *rt, const void *p);

/* ------------------------------------------------------------------------
 * Cycle collector (Python's gc module).  Objects of a type with traverse
 * are tracked from creation in generation 0.  A collection of generation g
 * examines generations 0..g, frees the objects only reference cycles keep
 * alive (finalizing each once first, PEP 442; an object a finalizer
 * resurrects survives with everything it reaches), and moves survivors one
 * generation up.  Creating a tracked object may run an automatic
 * collection, and with it finalizers.
 * ------------------------------------------------------------------------ */

typedef struct om_gc_generation_stats {
    size_t collections;     /* collections of this generation */
    size_t collected;       /* unreachable objects they freed */
    size_t uncollectable;   /* unreachable objects they could not free */
} om_gc_generation_stats;

/* Automatic collections on or off (explicit ones always run). */
OM_API void om_gc_enable(om_runtime *rt);
OM_API void om_gc_disable(om_runtime *rt);
OM_API int om_gc_isenabled(const om_runtime *rt);
/*
 * Collect generations 0..generation (2 = everything but frozen objects) and
 * return the number of unreachable objects found, as gc.collect does; 0
 * when a collection is already under way.  OM_ERR_ARG for a generation
 * outside 0..2, OM_ERR_NOMEM when the collector's work arrays cannot be
 * had (nothing changed then).  Runs finalizers.
 */
OM_API ptrdiff_t om_gc_collect(om_runtime *rt, int generation);
/* count[0]: tracked allocations minus deallocations since the last
 * collection; count[1], count[2]: collections of the generation below since
 * the last collection of this one. */
OM_API void om_gc_get_count(const om_runtime *rt, size_t count[3]);
OM_API void om_gc_get_threshold(const om_runtime *rt, size_t threshold[3]);
/* Default (2000, 10, 10).  threshold0 = 0 turns automatic collection off. */
OM_API om_status om_gc_set_threshold(om_runtime *rt, size_t threshold0,
                                     size_t threshold1, size_t threshold2);
OM_API om_status om_gc_get_stats(const om_runtime *rt,
                                 om_gc_generation_stats stats[3]);
/* Whether the collector considers o (tracked), and whether o's finalizer
 * has run. */
OM_API int om_gc_is_tracked(const om_object *o);
OM_API int om_gc_is_finalized(const om_object *o);
/* Start / stop tracking o (a no-op when it already is / is not, or when
 * its type has no traverse). */
OM_API void om_gc_track(om_object *o);
OM_API void om_gc_untrack(om_object *o);

/* A new list of the tracked objects of one generation (0..2), or of all
 * three (generation -1); frozen objects are not included.  NULL with
 * OM_ERR_ARG for another generation. */
OM_API om_object *om_gc_get_objects(om_runtime *rt, int generation);
/* A new list of the tracked objects (frozen ones excepted) whose traverse
 * visits any of the n objects in objs. */
OM_API om_object *om_gc_get_referrers(om_runtime *rt, size_t n,
                                      om_object *const *objs);
/* A new list of what the n objects' traverse functions visit, in visit
 * order (objects without traverse contribute nothing). */
OM_API om_object *om_gc_get_referents(om_runtime *rt, size_t n,
                                      om_object *const *objs);

/* Move every tracked object to the permanent generation, which collections
 * ignore (gc.freeze); unfreeze moves them back into generation 2. */
OM_API void om_gc_freeze(om_runtime *rt);
OM_API void om_gc_unfreeze(om_runtime *rt);
OM_API size_t om_gc_get_freeze_count(om_runtime *rt);

/* gc.garbage: the list (borrowed; the caller may clear it) of uncollectable
 * objects, and with OM_GC_DEBUG_SAVEALL of every unreachable object. */
OM_API om_object *om_gc_garbage(om_runtime *rt);

/* Debug flags, as gc.DEBUG_*: lines go to the runtime's report stream. */
#define OM_GC_DEBUG_STATS 1           /* a line per collection */
#define OM_GC_DEBUG_COLLECTABLE 2     /* each collectable object found */
#define OM_GC_DEBUG_UNCOLLECTABLE 4   /* each uncollectable object found */
#define OM_GC_DEBUG_SAVEALL 32        /* keep garbage in om_gc_garbage */
#define OM_GC_DEBUG_LEAK                                                     \
    (OM_GC_DEBUG_COLLECTABLE | OM_GC_DEBUG_UNCOLLECTABLE | OM_GC_DEBUG_SAVEALL)
OM_API om_status om_gc_set_debug(om_runtime *rt, int flags);
OM_API int om_gc_get_debug(const om_runtime *rt);

/* gc.callbacks: fn(phase, info, data) before ("start") and after ("stop")
 * every collection, automatic or explicit, in the order added. */
typedef struct om_gc_info {
    int generation;
    size_t collected;       /* at "stop": unreachable objects freed */
    size_t uncollectable;   /* at "stop": unreachable objects kept */
} om_gc_info;
typedef void (*om_gc_callback_fn)(const char *phase, const om_gc_info *info,
                                  void *data);
OM_API om_status om_gc_callback_add(om_runtime *rt, om_gc_callback_fn fn,
                                    void *data);
/* Remove the first registration of (fn, data); OM_ERR_KEY when none. */
OM_API om_status om_gc_callback_remove(om_runtime *rt, om_gc_callback_fn fn,
                                       void *data);

/* ------------------------------------------------------------------------
 * Allocator statistics (sys._debugmallocstats for a runtime).
 * ------------------------------------------------------------------------ */

#define OM_POOL_SIZE_CLASSES 32   /* 16-byte steps up to 512 bytes */

typedef struct om_pool_class_stats {
    size_t block_size;      /* bytes per block */
    size_t pools;           /* pools serving the class (objects and data) */
    size_t blocks_in_use;   /* blocks handed out */
    size_t free_blocks;     /* blocks still available in those pools */
} om_pool_class_stats;

/* The allocator-wide figures, declared once: (field, label printed by
 * om_pool_print_stats).  Bytes of arenas = in_blocks + free_blocks +
 * pool_headers + quantization + empty_pools. */
#define OM_POOL_STATS_TABLE(X)                                               \
    X(arenas_allocated, "arenas allocated total")                            \
    X(arenas_freed, "arenas reclaimed")                                      \
    X(arenas_highwater, "arenas highwater mark")                             \
    X(arenas_current, "arenas allocated current")                            \
    X(arenas_cached, "empty arenas kept for reuse")                          \
    X(arena_cache_limit, "empty arenas the cache may keep")                  \
    X(bytes_arenas, "bytes in arenas")                                       \
    X(bytes_in_blocks, "bytes in allocated blocks")                          \
    X(bytes_free_blocks, "bytes in available blocks")                        \
    X(bytes_pool_headers, "bytes lost to pool headers")                      \
    X(bytes_quantization, "bytes lost to quantization")                      \
    X(bytes_empty_pools, "bytes in empty pools")                             \
    X(large_blocks, "blocks above 512 bytes")                                \
    X(bytes_large, "bytes in blocks above 512 bytes")

typedef struct om_pool_stats {
    size_t size;   /* the caller sets sizeof(om_pool_stats) */
    om_pool_class_stats classes[OM_POOL_SIZE_CLASSES];
#define OM_POOL_STATS_FIELD_(field, label) size_t field;
    OM_POOL_STATS_TABLE(OM_POOL_STATS_FIELD_)
#undef OM_POOL_STATS_FIELD_
} om_pool_stats;

/* Fill *out (its `size` first: fields beyond it are left alone, so callers
 * built against an older header keep working).  OM_ERR_ARG for a NULL
 * argument or a size of 0. */
OM_API om_status om_pool_get_stats(om_runtime *rt, om_pool_stats *out);
/* Print the statistics as a table, in the spirit of
 * sys._debugmallocstats(), to f (stderr when NULL). */
OM_API om_status om_pool_print_stats(om_runtime *rt, FILE *f);
/* Give every wholly empty arena back to the OS now, including those the
 * cache keeps and those held only by a size class's kept empty pool, and
 * reset the cache; also frees the collector's work arrays (kept between
 * collections while small: at most 1 MiB).  Returns the bytes of arenas
 * unmapped. */
OM_API size_t om_pool_trim(om_runtime *rt);

/* ------------------------------------------------------------------------
 * Ready containers.  Indices are signed: negative ones count from the end,
 * as in Python.  Getters return borrowed references; functions that store
 * an item take their own reference; pop returns a new reference.
 * ------------------------------------------------------------------------ */

OM_API extern const om_type om_list_type;
OM_API extern const om_type om_tuple_type;
OM_API extern const om_type om_dict_type;
OM_API extern const om_type om_str_type;
OM_API extern const om_type om_int_type;

/* list: a growable array of references (collectable). */
OM_API om_object *om_list_new(om_runtime *rt);
OM_API om_status om_list_append(om_object *list, om_object *item);
/* Insert before index (clamped to [0, len] as Python's list.insert). */
OM_API om_status om_list_insert(om_object *list, ptrdiff_t index,
                                om_object *item);
OM_API om_object *om_list_get(om_object *list, ptrdiff_t index);
OM_API om_status om_list_set(om_object *list, ptrdiff_t index,
                             om_object *item);
/* Remove and return the item at index (new reference); NULL on error. */
OM_API om_object *om_list_pop(om_object *list, ptrdiff_t index);
OM_API size_t om_list_len(const om_object *list);
/* Remove every item (may run finalizers). */
OM_API om_status om_list_clear(om_object *list);

/* tuple: a fixed-size sequence of references, set at creation. */
/* A tuple of the n objects in items (n may be 0 with items NULL). */
OM_API om_object *om_tuple_new(om_runtime *rt, size_t n,
                               om_object *const *items);
/* A tuple of the n object arguments that follow. */
OM_API om_object *om_tuple_pack(om_runtime *rt, size_t n, ...);
OM_API om_object *om_tuple_get(om_object *tuple, ptrdiff_t index);
OM_API size_t om_tuple_len(const om_object *tuple);

/* dict: insertion-ordered hash map from objects to objects (collectable).
 * Keys are hashed with their type's hash/eq (identity without them). */
OM_API om_object *om_dict_new(om_runtime *rt);
OM_API om_status om_dict_set(om_object *dict, om_object *key,
                             om_object *value);
/* The value for key (borrowed), or NULL when absent.  A miss does not set
 * an error; om_dict_contains tells a miss from a bad argument. */
OM_API om_object *om_dict_get(om_object *dict, om_object *key);
/* 1 if key is present, 0 if not, a negative om_status on error. */
OM_API int om_dict_contains(om_object *dict, om_object *key);
/* Remove key; OM_ERR_KEY when absent.  May run finalizers. */
OM_API om_status om_dict_del(om_object *dict, om_object *key);
/* The same, with a C string standing for an om_str key. */
OM_API om_status om_dict_set_str(om_object *dict, const char *key,
                                 om_object *value);
OM_API om_object *om_dict_get_str(om_object *dict, const char *key);
OM_API om_status om_dict_del_str(om_object *dict, const char *key);
OM_API size_t om_dict_len(const om_object *dict);
/*
 * Iterate in insertion order: start with *pos = 0; each call stores the
 * next entry's key and value (borrowed; either pointer may be NULL) and
 * returns 1, or returns 0 at the end (or on a bad argument, which sets an
 * error).  Deleting entries and replacing values during iteration is safe;
 * adding keys is not (a table rebuild may make the iteration skip entries,
 * where Python would raise an error).
 */
OM_API int om_dict_next(om_object *dict, size_t *pos, om_object **key,
                        om_object **value);
/* Remove every entry (may run finalizers). */
OM_API om_status om_dict_clear(om_object *dict);

/* str: an immutable byte string (not collectable), NUL-terminated. */
OM_API om_object *om_str_new(om_runtime *rt, const char *cstr);
OM_API om_object *om_str_from_bytes(om_runtime *rt, const char *data,
                                    size_t len);
/* The bytes (borrowed, NUL-terminated), or NULL if str is not an om_str. */
OM_API const char *om_str_data(const om_object *str);
OM_API size_t om_str_len(const om_object *str);

/* int: an immutable boxed 64-bit integer (not collectable). */
OM_API om_object *om_int_new(om_runtime *rt, int64_t value);
/* The value, or 0 with an error set if o is not an om_int. */
OM_API int64_t om_int_value(const om_object *o);

/* ------------------------------------------------------------------------
 * Weak references (Python's weakref module).
 *
 * A weak reference is an object (om_weakref_type) that refers to another
 * object, its referent, without keeping it alive.  Only objects of types
 * flagged OM_TYPE_WEAKREFABLE accept them (weak references themselves do
 * not, as in Python).  When the referent dies, every weak reference to it
 * is cleared (om_weakref_get returns NULL from then on) and then their
 * callbacks are called, once each, in the order om_weakref_list gave, with
 * the weak reference and the data given at creation; the caller holds each
 * such ref until its callback has run, so one callback dropping another
 * ref does not cancel that ref's callback.  A weak reference that dies
 * before its referent never has its callback called.  Objects whose last
 * reference a callback drops die when the callback returns (deaths during
 * a deallocation are queued, see om_decref), not inside it.
 *
 * Order on refcount death: the referent's finalizer runs first and still
 * sees its weak references alive; then they are cleared and the callbacks
 * run; then the type's clear.  Order in a collection: first every weak
 * reference to an unreachable object is cleared, and the callbacks of
 * those that are not unreachable themselves are called; then finalizers
 * run; after the resurrection check, weak references that point into what
 * will be cleared (including ones finalizers created) are cleared too,
 * without callbacks, so that no code can reach an object being cleared.
 * Refs held only by uncollectable garbage (OM_TYPE_LEGACY_FINALIZER) are
 * not garbage there: their callbacks run.  As in CPython, om_gc_collect
 * counts among the objects found the weak references that died once their
 * callback had run (so an om_finalize on a cycle member adds its ref).
 *
 * A callback must not use the dead referent: its memory is about to be
 * released.  It may create and drop weak references, allocate, request a
 * collection (which does nothing during one) and change weak tables.
 * ------------------------------------------------------------------------ */

OM_API extern const om_type om_weakref_type;

typedef void (*om_weakref_callback)(om_object *ref, void *data);

/*
 * A new weak reference to obj (new reference).  With a NULL callback (and
 * NULL data) the existing plain weak reference to obj is returned if there
 * is one, as Python shares them; a reference with a callback is always new.
 * NULL with OM_ERR_TYPE when obj's type is not weakly referenceable,
 * OM_ERR_ARG for data without a callback, OM_ERR_NOMEM.  NULL obj and
 * static objects (which belong to no runtime, so no error is recorded)
 * give NULL too.
 */
OM_API om_object *om_weakref_new(om_object *obj, om_weakref_callback callback,
                                 void *data);
/* The referent (new reference), or NULL once it has died (or if ref is not
 * a weak reference, which sets an error). */
OM_API om_object *om_weakref_get(om_object *ref);
/* Whether ref's referent is alive (0 also for a non-weak-reference). */
OM_API int om_weakref_alive(const om_object *ref);
/* How many weak references point at obj (0 for types without them). */
OM_API size_t om_weakref_count(const om_object *obj);
/* A new list of the weak references to obj: the plain one first, then
 * those with callbacks, newest first (Python's getweakrefs order).  NULL
 * only on error. */
OM_API om_object *om_weakref_list(om_object *obj);

/*
 * Weak tables, as Python's WeakValueDictionary, WeakKeyDictionary and
 * WeakSet.  Each is an object (collectable) built on an om_dict.  An entry
 * vanishes when its weakly held object dies; len counts live entries only.
 * Keys hash and compare through their type (om_type hash/eq), identity
 * without them.  The weakly held objects must be weakly referenceable
 * (OM_ERR_TYPE otherwise).  get returns a new reference, or NULL when the
 * key is absent or its entry dead (without setting an error); contains
 * returns 1, 0, or a negative om_status.  del and discard return
 * OM_ERR_KEY when the key is absent.  All may run finalizers and callbacks.
 */
OM_API om_object *om_weakvaluedict_new(om_runtime *rt);
OM_API om_status om_weakvaluedict_set(om_object *table, om_object *key,
                                      om_object *value);
OM_API om_object *om_weakvaluedict_get(om_object *table, om_object *key);
OM_API om_status om_weakvaluedict_del(om_object *table, om_object *key);

OM_API om_object *om_weakkeydict_new(om_runtime *rt);
OM_API om_status om_weakkeydict_set(om_object *table, om_object *key,
                                    om_object *value);
OM_API om_object *om_weakkeydict_get(om_object *table, om_object *key);
OM_API om_status om_weakkeydict_del(om_object *table, om_object *key);

OM_API om_object *om_weakset_new(om_runtime *rt);
OM_API om_status om_weakset_add(om_object *set, om_object *item);
OM_API om_status om_weakset_discard(om_object *set, om_object *item);

/* For all three kinds: key membership (item for a set), live entries. */
OM_API int om_weaktable_contains(om_object *table, om_object *key);
OM_API size_t om_weaktable_len(om_object *table);

/*
 * Iteration over any weak table, safe when entries die meanwhile: entries
 * whose object dies during the iteration are skipped, and removing them
 * from the table waits until om_weaktable_iter_end (as Python's tables
 * defer removals while an iterator runs).  The iterator holds a reference
 * on the table and on the current key and value, so the borrowed pointers
 * next stores stay valid until the following next or end.  For a weak set
 * the value is NULL.  Adding entries during iteration is allowed but may be
 * skipped or seen; end must be called exactly once after begin succeeds.
 */
typedef struct om_weaktable_iter {
    om_object *table_;           /* private fields */
    size_t pos_;
    om_object *key_;
    om_object *value_;
} om_weaktable_iter;

OM_API om_status om_weaktable_iter_begin(om_object *table,
                                         om_weaktable_iter *it);
/* 1 and the next live entry, or 0 at the end. */
OM_API int om_weaktable_iter_next(om_weaktable_iter *it, om_object **key,
                                  om_object **value);
OM_API void om_weaktable_iter_end(om_weaktable_iter *it);

/*
 * finalize (Python's weakref.finalize): fn(data) runs once, when obj dies,
 * when om_finalize_call is called, or, if the atexit flag is set (the
 * default), when the runtime is freed — whichever comes first.  The
 * runtime keeps the finalizer alive until then, so the returned reference
 * may be dropped at once.  At om_runtime_free, live finalizers with atexit
 * set run newest first (and any they create run too) before anything is
 * freed; those without it are dropped without running.
 */
typedef void (*om_finalizer_fn)(void *data);

OM_API extern const om_type om_finalize_type;

/* A new finalizer (new reference); obj must be weakly referenceable. */
OM_API om_object *om_finalize_new(om_object *obj, om_finalizer_fn fn,
                                  void *data);
/* Whether it has not run or been detached yet. */
OM_API int om_finalize_alive(const om_object *f);
/* Run fn(data) now if alive (then it is dead); 1 if it ran, else 0. */
OM_API int om_finalize_call(om_object *f);
/* Make it dead without running; returns obj (new reference) and stores fn
 * and data (either pointer may be NULL) if it was alive, else NULL. */
OM_API om_object *om_finalize_detach(om_object *f, om_finalizer_fn *fn,
                                     void **data);
/* As detach, leaving it alive. */
OM_API om_object *om_finalize_peek(om_object *f, om_finalizer_fn *fn,
                                   void **data);
OM_API int om_finalize_get_atexit(const om_object *f);
OM_API om_status om_finalize_set_atexit(om_object *f, int atexit);


/* ------------------------------------------------------------------------
 * Allocation tracer (Python's tracemalloc).
 *
 * While tracing is on, every block the runtime hands out (om_malloc and
 * friends, objects, container storage) has a trace: its address, the size
 * requested, a domain (0 for the runtime's own allocations) and the
 * traceback of the allocation, at most get_traceback_limit() frames deep.
 * Equal tracebacks are stored once.  Frames are (file, line, function):
 *
 *   - The most recent frame is the call site.  The allocating functions
 *     below are macros that pass __FILE__, __LINE__ and __func__, so that
 *     frame costs no unwinding and needs no debug information.  Called
 *     without the macro (a function pointer, or (om_malloc)(rt, n)), the
 *     call site is the return address, resolved like the other frames.
 *     Storage a container allocates as it grows is attributed to the
 *     container function (file src/list.c and so on) and its callers.
 *   - With a limit above 1, the callers follow, from native return
 *     addresses found by walking frame pointers: code built without them
 *     (-fomit-frame-pointer, the default at -O1 and above for gcc and
 *     clang) ends the walk early.  Return addresses are resolved to file,
 *     line and function only when a snapshot or traceback is made, through
 *     the DWARF line tables (code built with -g), else through the symbol
 *     table (function name, the module's path and line 0).
 *
 * Freed blocks lose their trace; a block freed while tracing was off, or
 * allocated before it started, simply has none.  The tracer's own tables
 * come from the runtime's raw allocator, not from its pools, and are
 * counted by om_tracemalloc_get_tracemalloc_memory.  If a trace cannot be
 * stored the allocation fails (OM_ERR_NOMEM), as tracemalloc does.
 * Tracing is per runtime: each runtime traces its own blocks.
 * ------------------------------------------------------------------------ */

/* The most frames a traceback keeps (the deepest limit start accepts). */
#define OM_TRACEMALLOC_MAX_FRAMES 100

/* One frame.  Strings are owned by the snapshot, traceback or statistics
 * that hold the frame.  Unknown parts are "<unknown>" (filename, function)
 * and 0 (lineno). */
typedef struct om_frame {
    const char *filename;
    unsigned lineno;
    const char *function;
} om_frame;

/* frames[0] is the most recent call (the allocation site); total_nframe is
 * how deep the stack really was (at least nframes; capped at 65535), as
 * tracemalloc's Traceback.total_nframe. */
typedef struct om_traceback {
    size_t nframes;
    size_t total_nframe;
    const om_frame *frames;
} om_traceback;

/* One live block in a snapshot. */
typedef struct om_trace {
    unsigned domain;
    size_t size;
    const om_traceback *traceback;
} om_trace;

typedef struct om_snapshot om_snapshot;

/* Start tracing with tracebacks of at most nframe frames (1 to
 * OM_TRACEMALLOC_MAX_FRAMES; else OM_ERR_ARG).  Already tracing: nothing
 * changes (not even the limit), as tracemalloc.start. */
OM_API om_status om_tracemalloc_start(om_runtime *rt, int nframe);
/* Stop tracing and forget every trace and traceback; current and peak
 * become 0.  The limit is kept for get_traceback_limit. */
OM_API void om_tracemalloc_stop(om_runtime *rt);
OM_API int om_tracemalloc_is_tracing(const om_runtime *rt);
/* Forget every trace; current and peak become 0; tracing goes on. */
OM_API void om_tracemalloc_clear_traces(om_runtime *rt);
/* The limit of the latest start (1 before any). */
OM_API int om_tracemalloc_get_traceback_limit(const om_runtime *rt);
/* Bytes in live traced blocks now, and the most there were since tracing
 * started or the peak was reset (both 0 when not tracing).  Either pointer
 * may be NULL. */
OM_API void om_tracemalloc_get_traced_memory(const om_runtime *rt,
                                             size_t *current, size_t *peak);
/* Make the peak the current size (no-op when not tracing). */
OM_API void om_tracemalloc_reset_peak(om_runtime *rt);
/* Bytes the tracer's own tables take (non-zero after a start, even
 * stopped, until the runtime is freed). */
OM_API size_t om_tracemalloc_get_tracemalloc_memory(const om_runtime *rt);
/* A copy of every trace now, with frames resolved; free with
 * om_snapshot_free.  NULL if not tracing (OM_ERR_STATE) or no memory.
 * Runs no user code. */
OM_API om_snapshot *om_tracemalloc_take_snapshot(om_runtime *rt);
/* The traceback of the allocation of o, or NULL when o has no trace (it
 * was made while tracing was off) or memory is short (see om_last_error).
 * Free with om_traceback_free. */
OM_API om_traceback *om_tracemalloc_get_object_traceback(const om_object *o);
OM_API void om_traceback_free(om_traceback *tb);
/* Trace (or re-trace: size and traceback replaced) a block the caller
 * manages elsewhere, in domain (any number; 0 is shared with the runtime's
 * own blocks), as PyTraceMalloc_Track.  OM_ERR_STATE when not tracing,
 * OM_ERR_NOMEM when the trace cannot be stored, OM_ERR_ARG for address 0
 * and for a size of 4 GiB or more in domain 0 at the start of a block of
 * the runtime's pools (whose traces keep 32-bit sizes). */
OM_API om_status om_tracemalloc_track(om_runtime *rt, unsigned domain,
                                      uintptr_t ptr, size_t size);
/* Forget that block's trace; OM_OK also when it had none, OM_ERR_STATE
 * when not tracing. */
OM_API om_status om_tracemalloc_untrack(om_runtime *rt, unsigned domain,
                                        uintptr_t ptr);

/* ---- snapshots ---------------------------------------------------------
 * A snapshot is a self-contained copy: it stays valid after tracing
 * stops, and belongs to the runtime it was made with (its memory comes
 * from that runtime's raw allocator; its errors go to om_last_error of
 * that runtime).  Functions taking a snapshot may not be given NULL
 * unless said otherwise. */

/* An empty snapshot, to fill with om_snapshot_add_trace (for traces from
 * elsewhere, and for tests).  traceback_limit is recorded as given (1 to
 * OM_TRACEMALLOC_MAX_FRAMES, else OM_ERR_ARG). */
OM_API om_snapshot *om_snapshot_new(om_runtime *rt, int traceback_limit);
/* Append a trace; strings are copied.  frames[0] is the most recent;
 * nframes may be 0 (an unknown traceback) and must not exceed the
 * snapshot's limit; total_nframe below nframes means nframes.  A NULL
 * filename or function is stored as "<unknown>". */
OM_API om_status om_snapshot_add_trace(om_snapshot *snap, unsigned domain,
                                       size_t size, const om_frame *frames,
                                       size_t nframes, size_t total_nframe);
/* NULL is a no-op. */
OM_API void om_snapshot_free(om_snapshot *snap);
OM_API int om_snapshot_traceback_limit(const om_snapshot *snap);
/* The traces (borrowed: valid while snap lives) in the order they were
 * added or copied, and their number in *count. */
OM_API const om_trace *om_snapshot_traces(const om_snapshot *snap,
                                          size_t *count);

/* A filter, as tracemalloc.Filter (filename_pattern set) or
 * tracemalloc.DomainFilter (filename_pattern NULL).  Patterns are fnmatch
 * patterns ('*' also matches '/'; no backslash escapes), case-sensitive.
 * Start from om_filter_init or om_domain_filter_init. */
#define OM_FILTER_ANY_LINE (-1)
#define OM_FILTER_ANY_DOMAIN (-1)
typedef struct om_filter {
    int inclusive;                /* 1: keep what matches; 0: drop it */
    const char *filename_pattern; /* NULL: a domain filter */
    long lineno;                  /* OM_FILTER_ANY_LINE or a line */
    int all_frames;               /* test every frame, not only the most
                                     recent */
    long long domain;             /* OM_FILTER_ANY_DOMAIN or a domain */
} om_filter;
OM_API void om_filter_init(om_filter *f, int inclusive,
                           const char *filename_pattern);
OM_API void om_domain_filter_init(om_filter *f, int inclusive,
                                  unsigned domain);

/* A new snapshot with the traces that pass the filters, combined as
 * Snapshot.filter_traces: with any inclusive filter, a trace must match
 * one of them; and it must match no exclusive one.  No filters: a copy.
 * NULL with OM_ERR_ARG for a bad filter (a domain filter without a
 * domain, a domain or line out of range), or OM_ERR_NOMEM. */
OM_API om_snapshot *om_snapshot_filter_traces(const om_snapshot *snap,
                                              const om_filter *filters,
                                              size_t nfilters);

/* How statistics group traces: by the most recent frame's file and line,
 * by its file alone, or by the whole traceback. */
typedef enum om_stat_key {
    OM_STAT_LINENO,
    OM_STAT_FILENAME,
    OM_STAT_TRACEBACK
} om_stat_key;

/* One group.  For OM_STAT_LINENO the traceback is the one frame; for
 * OM_STAT_FILENAME that frame's lineno is 0 and function "<unknown>".  The
 * diffs are new minus old in om_snapshot_compare_to, 0 in statistics. */
typedef struct om_statistic {
    const om_traceback *traceback;
    size_t size;
    size_t count;
    long long size_diff;
    long long count_diff;
} om_statistic;

typedef struct om_stats om_stats;

/* Group the snapshot's traces by key, sorted by size, then count, then
 * traceback, largest first.  cumulative: a trace counts for every frame
 * of its traceback (twice for a frame that appears twice), not only the
 * most recent; not allowed with OM_STAT_TRACEBACK (OM_ERR_ARG).  The result
 * refers to the snapshot: free it before the snapshot. */
OM_API om_stats *om_snapshot_statistics(const om_snapshot *snap,
                                        om_stat_key key, int cumulative);
/* Statistics of snap with differences against old: groups only in old
 * appear with size and count 0.  Sorted by |size_diff|, size,
 * |count_diff|, count, traceback, largest first.  Refers to both
 * snapshots. */
OM_API om_stats *om_snapshot_compare_to(const om_snapshot *snap,
                                        const om_snapshot *old,
                                        om_stat_key key, int cumulative);
OM_API size_t om_stats_len(const om_stats *stats);
/* The ith group (borrowed), NULL past the end. */
OM_API const om_statistic *om_stats_get(const om_stats *stats, size_t i);
/* NULL is a no-op. */
OM_API void om_stats_free(om_stats *stats);

/* Write the snapshot to path in objmem's versioned binary format;
 * OM_ERR_IO (with the system's reason in om_last_error) on failure, and
 * then no partial file is left at path. */
OM_API om_status om_snapshot_dump(const om_snapshot *snap, const char *path);
/* Read a snapshot written by om_snapshot_dump.  NULL with OM_ERR_IO (file
 * unreadable) or OM_ERR_FORMAT (not a snapshot, a version this library
 * does not read, truncated, corrupt, or larger than its contents can be),
 * om_last_error saying which; never reads out of bounds whatever the
 * bytes. */
OM_API om_snapshot *om_snapshot_load(om_runtime *rt, const char *path);
/* As om_snapshot_load, from n bytes in memory. */
OM_API om_snapshot *om_snapshot_load_bytes(om_runtime *rt, const void *data,
                                           size_t n);

/* ---- formatting, as tracemalloc's str() ---------------------------------
 * Each writes a NUL-terminated line into buf (truncated to fit n bytes)
 * and returns the length it needed, as snprintf. */

/* tracemalloc's size format: "5002 B", "97.7 KiB", "212 MiB"; with sign,
 * "+5000 B" and "-1.5 KiB". */
OM_API int om_format_size(char *buf, size_t n, double size, int sign);
/* "file.c:42: size=38.0 KiB, count=374, average=104 B", or with diff set
 * "file.c:42: size=38.0 KiB (+38.0 KiB), count=374 (+374), average=104 B".
 * The location is the traceback's oldest frame, as str(Traceback). */
OM_API int om_statistic_format(char *buf, size_t n, const om_statistic *st,
                               int diff);
/* Print the traceback as Traceback.format does, one
 *   '  File "file.c", line 42, in function'
 * line per frame, each followed by the source line (stripped, indented 4)
 * when the file can be read.  limit > 0 keeps the limit most recent frames,
 * limit < 0 the -limit oldest, 0 all; oldest first unless
 * most_recent_first.  OM_ERR_IO if writing fails. */
OM_API om_status om_traceback_print(const om_traceback *tb, FILE *f,
                                    int limit, int most_recent_first);

/* ---- call sites ---------------------------------------------------------
 * The allocating functions take the caller's file, line and function
 * through these macros; define OM_NO_CALLSITE_MACROS before including
 * this header to call the plain functions (the call site is then found
 * from the return address). */
OM_API void *om_malloc_at(om_runtime *rt, size_t n, const char *file,
                          int line, const char *func);
OM_API void *om_calloc_at(om_runtime *rt, size_t count, size_t size,
                          const char *file, int line, const char *func);
OM_API void *om_realloc_at(om_runtime *rt, void *p, size_t n,
                           const char *file, int line, const char *func);
OM_API om_object *om_new_at(om_runtime *rt, const om_type *type,
                            const char *file, int line, const char *func);
OM_API om_object *om_new_var_at(om_runtime *rt, const om_type *type,
                                size_t extra, const char *file, int line,
                                const char *func);
OM_API om_status om_tracemalloc_track_at(om_runtime *rt, unsigned domain,
                                         uintptr_t ptr, size_t size,
                                         const char *file, int line,
                                         const char *func);

#ifndef OM_NO_CALLSITE_MACROS
#define OM_HERE_ __FILE__, __LINE__, __func__
#define om_malloc(rt, n) om_malloc_at((rt), (n), OM_HERE_)
#define om_calloc(rt, count, size) om_calloc_at((rt), (count), (size), OM_HERE_)
#define om_realloc(rt, p, n) om_realloc_at((rt), (p), (n), OM_HERE_)
#define om_new(rt, type) om_new_at((rt), (type), OM_HERE_)
#define om_new_var(rt, type, extra) om_new_var_at((rt), (type), (extra), OM_HERE_)
#define om_tracemalloc_track(rt, domain, ptr, size) \
    om_tracemalloc_track_at((rt), (domain), (ptr), (size), OM_HERE_)
#endif

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_H */
