/*
 * tour.c — a guided tour of objmem, one chapter per capability, written to
 * be read next to its output.  `make demo` builds and runs it.
 */
#include <objmem.h>

#include <stdio.h>
#include <stdlib.h>

static void chapter(int n, const char *title) {
    printf("\n== Chapter %d: %s ==\n\n", n, title);
}

static void say(const char *text) { printf("%s\n", text); }

/* Stop the tour with the runtime's own explanation if a call fails. */
static void *need(om_runtime *rt, void *p) {
    if (!p) {
        fprintf(stderr, "tour: %s\n", om_last_error(rt));
        exit(1);
    }
    return p;
}

/* ---- Chapter 1: reference counting ---------------------------------------- */

/* A type that announces its own end, so we can watch objects die. */
typedef struct noisy {
    OM_OBJECT_HEAD
    const char *label;
} noisy;

static void noisy_finalize(om_object *self) {
    printf("    (the %s is freed: its finalizer runs as the last reference goes)\n",
           ((noisy *)self)->label);
}

static const om_type noisy_type = {
    .name = "noisy", .size = sizeof(noisy), .finalize = noisy_finalize,
};

/* A record with fixed slots, like a Python class with __slots__ = ('x', 'y'). */
typedef struct point {
    OM_OBJECT_HEAD
    om_object *x;
    om_object *y;
} point;

static int point_traverse(om_object *self, om_visit_fn visit, void *arg) {
    point *p = (point *)self;
    int r = p->x ? visit(p->x, arg) : 0;
    return r ? r : (p->y ? visit(p->y, arg) : 0);
}

static void point_clear(om_object *self) {
    point *p = (point *)self;
    om_object *x = p->x, *y = p->y;
    p->x = p->y = NULL;
    om_decref(x);
    om_decref(y);
}

static const om_type point_type = {
    .name = "point", .size = sizeof(point),
    .traverse = point_traverse, .clear = point_clear,
};

/* A record whose attributes live in a dict, like a plain Python instance. */
typedef struct open_record {
    OM_OBJECT_HEAD
    om_object *dict;
} open_record;

static int open_record_traverse(om_object *self, om_visit_fn visit, void *arg) {
    open_record *r = (open_record *)self;
    return r->dict ? visit(r->dict, arg) : 0;
}

static void open_record_clear(om_object *self) {
    open_record *r = (open_record *)self;
    om_object *d = r->dict;
    r->dict = NULL;
    om_decref(d);
}

static const om_type open_record_type = {
    .name = "open_record", .size = sizeof(open_record),
    .traverse = open_record_traverse, .clear = open_record_clear,
};

static void chapter_refcounting(om_runtime *rt) {
    chapter(1, "reference counting");
    say("Every object carries a count of the references to it. A new object");
    say("starts with one: the reference its creator holds.");
    om_object *a = need(rt, om_list_new(rt));
    size_t empty_list_size = om_sizeof(a);
    printf("\n  a = om_list_new(rt)          om_refcount(a) = %zu\n",
           om_refcount(a));
    say("  (Python's sys.getrefcount([]) shows 2: the call's own argument is one");
    say("   more reference. om_refcount counts only the real ones.)");

    om_object *b = a;
    om_incref(b);
    printf("\n  b = a; om_incref(b)          om_refcount(a) = %zu\n",
           om_refcount(a));
    om_decref(b);
    printf("  om_decref(b)                 om_refcount(a) = %zu\n",
           om_refcount(a));

    say("\nWhen the last reference goes, the object is freed at once - no");
    say("collector needed. Watch a noisy object:");
    noisy *n = need(rt, om_new(rt, &noisy_type));
    n->label = "noisy object";
    printf("\n  live objects before: %zu\n", om_object_count(rt));
    printf("  om_decref(noisy)\n");
    om_decref(&n->om_head);
    printf("  live objects after:  %zu\n", om_object_count(rt));

    say("\nContainers own their items: storing an item adds a reference,");
    say("removing it drops one.");
    om_object *s = need(rt, om_str_new(rt, "spam"));
    om_list_append(a, s);
    printf("\n  om_list_append(a, s)         om_refcount(s) = %zu\n",
           om_refcount(s));
    om_decref(om_list_pop(a, -1));  /* pop hands its reference to us */
    printf("  om_decref(om_list_pop(a, -1))  om_refcount(s) = %zu\n",
           om_refcount(s));
    om_decref(s);

    say("\nSizes (om_sizeof, like sys.getsizeof: header included). Every object");
    say("has a 16-byte header - refcount and flags, and the type; CPython's");
    say("collectable objects pay 32.");
    printf("\n  empty list                     %4zu bytes\n", empty_list_size);
    for (int i = 1; i <= 3; i++) {
        om_object *item = need(rt, om_int_new(rt, i));
        om_list_append(a, item);
        om_decref(item);
    }
    printf("  list of three ints             %4zu bytes (room for %zu items)\n",
           om_sizeof(a), (om_sizeof(a) - empty_list_size) / sizeof(om_object *));

    point *p = need(rt, om_new(rt, &point_type));
    p->x = need(rt, om_int_new(rt, 3));
    p->y = need(rt, om_int_new(rt, 4));
    open_record *r = need(rt, om_new(rt, &open_record_type));
    r->dict = need(rt, om_dict_new(rt));
    om_dict_set_str(r->dict, "x", p->x);
    om_dict_set_str(r->dict, "y", p->y);
    size_t open_total = om_sizeof(&r->om_head) + om_sizeof(r->dict);
    printf("  point with fixed slots x, y    %4zu bytes\n",
           om_sizeof(&p->om_head));
    printf("  record with a dict of x, y     %4zu bytes (%zu record + %zu dict)\n",
           open_total, om_sizeof(&r->om_head), om_sizeof(r->dict));
    say("\nThe __slots__ lesson: fixed slots cost a few words; a per-object");
    say("dict costs a table. For millions of small records, use slots.");

    om_decref(&p->om_head);
    om_decref(&r->om_head);
    om_decref(a);
    printf("\n  all dropped: live objects = %zu\n", om_object_count(rt));
}

/* ---- Chapter 2: memory pools ------------------------------------------------ */

static om_pool_stats pool_stats(om_runtime *rt) {
    om_pool_stats s;
    s.size = sizeof s;
    om_pool_get_stats(rt, &s);
    return s;
}

static void show_pools(const char *when, om_runtime *rt) {
    om_pool_stats s = pool_stats(rt);
    printf("  %-26s %3zu arenas mapped (%zu given back so far), "
           "%zu ints in 32-byte blocks\n",
           when, s.arenas_current, s.arenas_freed,
           s.classes[32 / 16 - 1].blocks_in_use);
}

static void chapter_pools(om_runtime *rt) {
    chapter(2, "memory pools");
    say("Small objects do not come from malloc one by one. Like CPython's");
    say("pymalloc, objmem maps 1 MiB arenas, cuts them into 64 KiB pools, and");
    say("each pool into blocks of one size class (16, 32, ... 512 bytes). A");
    say("boxed int is 24 bytes, so it takes a 32-byte block, with no per-block");
    say("header at all.\n");
    show_pools("before:", rt);
    om_object *ints = need(rt, om_list_new(rt));
    for (int i = 0; i < 100000; i++) {
        om_object *n = need(rt, om_int_new(rt, i));
        om_list_append(ints, n);
        om_decref(n);
    }
    show_pools("with 100,000 ints alive:", rt);

    say("\nA freed block goes back on its pool's free list, and the next");
    say("request of that size class takes it again:");
    om_object *victim = om_list_pop(ints, -1);
    void *where = victim;
    om_decref(victim);
    om_object *fresh = need(rt, om_int_new(rt, 7));
    printf("\n  freed an int at %p; the next int is at %p (%s)\n", where,
           (void *)fresh, where == (void *)fresh ? "the same block" : "elsewhere");
    om_decref(fresh);

    say("\nWhen every block of every pool of an arena is free, the arena goes");
    say("back to the operating system - unless the program keeps asking for");
    say("memory back, in which case a cache of empty arenas spares it the page");
    say("faults (docs/design.md explains the policy).\n");
    om_decref(ints);
    show_pools("after dropping the list:", rt);

    say("\nThe whole picture, as sys._debugmallocstats() prints it for Python,");
    say("comes from om_pool_print_stats(rt, stdout). Its summary lines:\n");
    FILE *table = tmpfile();
    if (table) {
        om_pool_print_stats(rt, table);
        rewind(table);
        char line[160];
        while (fgets(line, sizeof line, table))
            if (line[0] == '#')
                printf("  %s", line);
        fclose(table);
    }
}

/* ---- Chapter 3: the cycle collector ----------------------------------------- */

/* A pair of objects that point at each other, and say when they go. */
typedef struct partner {
    OM_OBJECT_HEAD
    om_object *other;
    const char *name;
} partner;

static int partner_traverse(om_object *self, om_visit_fn visit, void *arg) {
    partner *p = (partner *)self;
    return p->other ? visit(p->other, arg) : 0;
}

static void partner_clear(om_object *self) {
    partner *p = (partner *)self;
    om_object *o = p->other;
    p->other = NULL;
    om_decref(o);
}

static void partner_finalize(om_object *self) {
    printf("    %s deleted\n", ((partner *)self)->name);
}

static const om_type partner_type = {
    .name = "partner", .size = sizeof(partner), .traverse = partner_traverse,
    .clear = partner_clear, .finalize = partner_finalize,
};

static void show_counts(const char *when, om_runtime *rt) {
    size_t c[3];
    om_gc_get_count(rt, c);
    printf("  %-34s om_gc_get_count = (%zu, %zu, %zu)\n", when, c[0], c[1], c[2]);
}

static void chapter_collector(om_runtime *rt) {
    chapter(3, "the cycle collector");
    say("Reference counting cannot free a cycle: each member keeps the next");
    say("alive. A list that contains itself is the smallest cycle:\n");
    om_object *l = need(rt, om_list_new(rt));
    om_list_append(l, l);
    om_decref(l);
    printf("  after dropping our reference: %zu object(s) still alive\n",
           om_object_count(rt));
    printf("  om_gc_collect(rt, 2) = %td (unreachable objects found)\n",
           om_gc_collect(rt, 2));
    printf("  now: %zu alive\n", om_object_count(rt));

    say("\nObjects in a cycle with finalizers are finalized first, each once,");
    say("then the cycle is broken (PEP 442):\n");
    partner *a = need(rt, om_new(rt, &partner_type));
    partner *b = need(rt, om_new(rt, &partner_type));
    a->name = "a";
    b->name = "b";
    a->other = &b->om_head;
    om_incref(a->other);
    b->other = &a->om_head;
    om_incref(b->other);
    om_decref(&a->om_head);
    om_decref(&b->om_head);
    printf("  om_gc_collect(rt, 2):\n");
    ptrdiff_t found = om_gc_collect(rt, 2);
    printf("  = %td\n", found);

    say("\nThe collector keeps statistics per generation. 10,000 cycles later:\n");
    om_gc_generation_stats before[3], after[3];
    om_gc_get_stats(rt, before);
    for (int i = 0; i < 10000; i++) {
        om_object *c = need(rt, om_list_new(rt));
        om_list_append(c, c);
        om_decref(c);
    }
    om_gc_get_stats(rt, after);
    for (int g = 0; g < 3; g++)
        printf("  generation %d: %zu collections, %zu collected "
               "(before: %zu, %zu)\n",
               g, after[g].collections, after[g].collected,
               before[g].collections, before[g].collected);
    say("  (Automatic collections ran: one of generation 0 whenever 2,000");
    say("   tracked objects have been made since the last; after 10 of those,");
    say("   the next one takes generation 1 too, and so on up.)");

    say("\nNew objects start in generation 0; each collection they survive");
    say("moves them one generation older. om_gc_get_count shows the");
    say("allocations since the last collection, then how many collections of");
    say("generations 0 and 1 ran since the one above them:\n");
    size_t t[3];
    om_gc_get_threshold(rt, t);
    printf("  thresholds: (%zu, %zu, %zu)\n", t[0], t[1], t[2]);
    om_gc_collect(rt, 2);
    show_counts("after a full collection:", rt);
    om_object *keep = need(rt, om_list_new(rt));
    show_counts("after one new list:", rt);
    om_gc_collect(rt, 0);
    show_counts("after om_gc_collect(rt, 0):", rt);
    om_gc_collect(rt, 1);
    show_counts("after om_gc_collect(rt, 1):", rt);

    say("\nom_gc_disable stops automatic collections (explicit ones still run):\n");
    om_gc_disable(rt);
    for (int i = 0; i < 5000; i++) {
        om_object *c = need(rt, om_list_new(rt));
        om_list_append(c, c);
        om_decref(c);
    }
    printf("  disabled, after 5,000 cycles: %zu objects alive\n",
           om_object_count(rt));
    om_gc_enable(rt);
    printf("  om_gc_collect(rt, 2) = %td; enabled again: %s\n",
           om_gc_collect(rt, 2), om_gc_isenabled(rt) ? "yes" : "no");
    om_decref(keep);
}

/* ---- Chapter 4: weak references -------------------------------------------- */

/* A decoded image: weakly referenceable, so a cache can hold it weakly. */
typedef struct image {
    OM_OBJECT_HEAD
    char name[24];
    size_t bytes;
} image;

static void image_finalize(om_object *self) {
    printf("    (image %s freed)\n", ((image *)self)->name);
}

static const om_type image_type = {
    .name = "image", .size = sizeof(image),
    .flags = OM_TYPE_WEAKREFABLE, .finalize = image_finalize,
};

static int decodes;

/* The image called name: from the cache while someone still uses it, else
 * decoded anew (and cached, weakly).  A new reference. */
static om_object *load_image(om_runtime *rt, om_object *cache,
                             const char *name) {
    om_object *key = need(rt, om_str_new(rt, name));
    om_object *img = om_weakvaluedict_get(cache, key);
    if (!img) {
        decodes++;
        img = need(rt, om_new(rt, &image_type));
        snprintf(((image *)img)->name, sizeof ((image *)img)->name, "%s", name);
        ((image *)img)->bytes = 4096;
        if (om_weakvaluedict_set(cache, key, img) != OM_OK)
            need(rt, NULL);
    }
    om_decref(key);
    return img;
}

static void on_death(om_object *ref, void *data) {
    (void)ref;
    printf("    callback: %s has died\n", (const char *)data);
}

static void goodbye(void *data) {
    printf("    finalize: %s\n", (const char *)data);
}

static void chapter_weakrefs(om_runtime *rt) {
    chapter(4, "weak references");
    say("A weak reference finds an object while something else keeps it alive,");
    say("and never keeps it alive itself:\n");
    om_object *img = need(rt, om_new(rt, &image_type));
    snprintf(((image *)img)->name, sizeof ((image *)img)->name, "logo.png");
    om_object *ref = need(rt, om_weakref_new(img, NULL, NULL));
    om_object *got = om_weakref_get(ref);
    printf("  om_weakref_get(ref) == img: %s\n", got == img ? "yes" : "no");
    om_decref(got);
    om_object *watch = need(rt, om_weakref_new(img, on_death, "logo.png"));
    printf("  refs to img: %zu (one plain, one with a callback)\n",
           om_weakref_count(img));
    say("  dropping the last strong reference:");
    om_decref(img);
    printf("  om_weakref_get(ref) now: %s\n",
           om_weakref_get(ref) ? "the object" : "NULL");
    om_decref(ref);
    om_decref(watch);

    say("\nA cache on a weak-value dict keeps an image only while the program");
    say("uses it: asking again for one in use costs nothing, and an image");
    say("nobody uses leaves the cache by itself.\n");
    om_object *cache = need(rt, om_weakvaluedict_new(rt));
    om_object *a = load_image(rt, cache, "a.png");
    om_object *b = load_image(rt, cache, "b.png");
    om_object *a2 = load_image(rt, cache, "a.png");
    printf("  loaded a, b, a: %d decodes, same a: %s, cached: %zu\n", decodes,
           a == a2 ? "yes" : "no", om_weaktable_len(cache));
    say("  the program lets go of b:");
    om_decref(b);
    printf("  cached now: %zu\n", om_weaktable_len(cache));
    om_object *b2 = load_image(rt, cache, "b.png");
    printf("  b asked for again: decoded anew (%d decodes)\n", decodes);
    om_decref(a);
    om_decref(a2);
    om_decref(b2);
    printf("  nothing in use: cached %zu\n", om_weaktable_len(cache));
    om_decref(cache);

    say("\nom_finalize runs a function once when an object dies, or when the");
    say("runtime is freed if the object is still alive then:\n");
    om_object *session = need(rt, om_new(rt, &image_type));
    snprintf(((image *)session)->name, sizeof ((image *)session)->name, "session");
    om_decref(need(rt, om_finalize_new(session, goodbye, "session closed")));
    om_decref(session);
    say("  (and one on an immortal object, alive until the runtime goes:");
    say("   it runs at om_runtime_free, below)");
    om_object *kept = need(rt, om_new(rt, &image_type));
    snprintf(((image *)kept)->name, sizeof ((image *)kept)->name, "kept");
    om_decref(need(rt, om_finalize_new(kept, goodbye, "runtime freed, 'kept' still alive")));
    om_make_immortal(kept);
}

/* ---- Chapter 5: tracing allocations ------------------------------------------ */

typedef struct record {
    OM_OBJECT_HEAD
    int64_t id;
    double score;
} record;

static const om_type record_type = {.name = "record", .size = sizeof(record)};

/* Print the first n groups of stats, one tracemalloc-style line each. */
static void print_stats(const om_stats *stats, size_t n, int diff) {
    char line[512];
    for (size_t i = 0; i < n && i < om_stats_len(stats); i++) {
        om_statistic_format(line, sizeof line, om_stats_get(stats, i), diff);
        printf("  #%zu %s\n", i + 1, line);
    }
}

/* A request handler with a leak: it remembers every request in a history
 * list that nobody ever trims. */
static void handle_request(om_runtime *rt, om_object *history, int64_t n) {
    om_object *scratch = need(rt, om_list_new(rt));
    for (int64_t i = 0; i < 4; i++) {
        om_object *v = need(rt, om_int_new(rt, n * 4 + i));
        om_list_append(scratch, v);
        om_decref(v);
    }
    om_object *entry = need(rt, om_str_new(rt, "GET /index.html"));
    om_list_append(history, entry); /* the leak: history only grows */
    om_decref(entry);
    om_decref(scratch);
}

static void chapter_tracing(om_runtime *rt) {
    chapter(5, "tracing allocations");
    say("om_tracemalloc_start records where each block was allocated; a");
    say("snapshot groups the live blocks by source line, largest first.");
    say("Build a list of 1000 records, then print the top 10 lines:\n");
    if (om_tracemalloc_start(rt, 1) != OM_OK)
        need(rt, NULL);
    om_object *list = need(rt, om_list_new(rt));
    for (int i = 0; i < 1000; i++) {
        om_object *r = need(rt, om_new(rt, &record_type));
        ((record *)r)->id = i;
        om_list_append(list, r);
        om_decref(r);
    }
    om_snapshot *snap = need(rt, om_tracemalloc_take_snapshot(rt));
    om_stats *top = need(rt, om_snapshot_statistics(snap, OM_STAT_LINENO, 0));
    print_stats(top, 10, 0);
    om_stats_free(top);
    om_snapshot_free(snap);
    om_decref(list);

    say("\nFinding a leak: snapshot, run 1000 requests, snapshot again, and");
    say("compare.  The line that leaks comes first:\n");
    om_object *history = need(rt, om_list_new(rt));
    om_snapshot *before = need(rt, om_tracemalloc_take_snapshot(rt));
    for (int64_t n = 0; n < 1000; n++)
        handle_request(rt, history, n);
    om_snapshot *after = need(rt, om_tracemalloc_take_snapshot(rt));
    om_stats *diff =
        need(rt, om_snapshot_compare_to(after, before, OM_STAT_LINENO, 0));
    print_stats(diff, 3, 1);
    om_stats_free(diff);
    om_snapshot_free(before);
    om_snapshot_free(after);
    om_decref(history);

    say("\nA generator's lesson, measured: summing 10^6 boxed integers after");
    say("building a list of them, versus making and dropping one at a time.");
    size_t current, peak;
    om_tracemalloc_reset_peak(rt);
    om_tracemalloc_get_traced_memory(rt, &current, NULL);
    size_t base = current;
    int64_t sum = 0;
    om_object *all = need(rt, om_list_new(rt));
    for (int64_t i = 0; i < 1000000; i++) {
        om_object *v = need(rt, om_int_new(rt, i));
        om_list_append(all, v);
        om_decref(v);
    }
    for (size_t i = 0; i < om_list_len(all); i++)
        sum += om_int_value(om_list_get(all, (ptrdiff_t)i));
    om_decref(all);
    om_tracemalloc_get_traced_memory(rt, NULL, &peak);
    char size[32];
    om_format_size(size, sizeof size, (double)(peak - base), 0);
    printf("  list first:   sum %lld, peak %s above the start\n",
           (long long)sum, size);
    om_tracemalloc_reset_peak(rt);
    sum = 0;
    for (int64_t i = 0; i < 1000000; i++) {
        om_object *v = need(rt, om_int_new(rt, i));
        sum += om_int_value(v);
        om_decref(v);
    }
    om_tracemalloc_get_traced_memory(rt, NULL, &peak);
    om_format_size(size, sizeof size, (double)(peak - base), 0);
    printf("  one at a time: sum %lld, peak %s above the start\n",
           (long long)sum, size);
    om_format_size(size, sizeof size,
                   (double)om_tracemalloc_get_tracemalloc_memory(rt), 0);
    printf("  (the tracer's own memory now: %s; the traces of the first way's\n"
           "   10^6 blocks went with their pools, the rest goes when tracing\n"
           "   stops)\n",
           size);
    om_tracemalloc_stop(rt);
}

int main(void) {
    printf("objmem %s - a tour\n", om_version_string());
    om_runtime *rt = om_runtime_new(NULL);
    if (!rt) {
        fprintf(stderr, "tour: cannot create a runtime\n");
        return 1;
    }
    chapter_refcounting(rt);
    chapter_pools(rt);
    chapter_collector(rt);
    chapter_weakrefs(rt);
    chapter_tracing(rt);
    size_t leaked = om_runtime_free(rt);
    printf("\nThe runtime is freed; it reports any object still alive (%zu here).\n",
           leaked);
    return leaked ? 1 : 0;
}
