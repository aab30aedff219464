/*
 * test_object.c — objects and reference counting: creation, refcounts,
 * sizeof, type validation, finalizers and resurrection, immortal and static
 * objects, the leak report, configuration and error reporting.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "internal.h"
#include "harness.h"

#include <stdlib.h>

/* A record with two object slots, as a C user would define one. */
typedef struct pair {
    OM_OBJECT_HEAD
    om_object *a;
    om_object *b;
} pair;

static int pair_traverse(om_object *self, om_visit_fn visit, void *arg) {
    pair *p = (pair *)self;
    int r = p->a ? visit(p->a, arg) : 0;
    return r ? r : (p->b ? visit(p->b, arg) : 0);
}

static void pair_clear(om_object *self) {
    pair *p = (pair *)self;
    om_object *a = p->a, *b = p->b;
    p->a = p->b = NULL;
    om_decref(a);
    om_decref(b);
}

static const om_type pair_type = {
    .name = "pair", .size = sizeof(pair),
    .traverse = pair_traverse, .clear = pair_clear,
};

static void new_refcount_sizeof(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *o = om_new(rt, &pair_type);
    CHECK(o != NULL);
    CHECK(((uintptr_t)o & 15) == 0);
    CHECK(om_refcount(o) == 1);
    CHECK(om_type_of(o) == &pair_type);
    CHECK(om_runtime_of(o) == rt);
    CHECK(((pair *)o)->a == NULL && ((pair *)o)->b == NULL);
    CHECK(om_sizeof(o) == sizeof(pair));
    CHECK(sizeof(om_object) == 16);
    om_incref(o);
    CHECK(om_refcount(o) == 2);
    om_decref(o);
    CHECK(om_refcount(o) == 1);
    CHECK(om_object_count(rt) == 1);
    om_decref(o);
    CHECK(om_object_count(rt) == 0);
    /* NULL is accepted everywhere a reference is dropped or queried. */
    om_incref(NULL);
    om_decref(NULL);
    CHECK(om_refcount(NULL) == 0 && om_sizeof(NULL) == 0);
    CHECK(om_type_of(NULL) == NULL && om_runtime_of(NULL) == NULL);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void setref_order(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *p = om_new(rt, &pair_type);
    om_object *x = om_int_new(rt, 1);
    om_setref(&((pair *)p)->a, x);
    CHECK(om_refcount(x) == 2);
    /* Storing the value already held must not free it in between. */
    om_setref(&((pair *)p)->a, x);
    CHECK(om_refcount(x) == 2 && om_int_value(((pair *)p)->a) == 1);
    om_setref(&((pair *)p)->a, NULL);
    CHECK(om_refcount(x) == 1);
    om_decref(x);
    om_decref(p);
    CHECK(om_runtime_free(rt) == 0);
}

static void type_validation(void) {
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(om_new(rt, NULL) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_ARG);
    CHECK(strstr(om_last_error(rt), "om_new") != NULL);
    om_type unnamed = {.size = 32};
    CHECK(om_new(rt, &unnamed) == NULL);
    CHECK(strstr(om_last_error(rt), "no name") != NULL);
    om_type tiny = {.name = "tiny", .size = 8};
    CHECK(om_new(rt, &tiny) == NULL);
    CHECK(strstr(om_last_error(rt), "'tiny'") != NULL);
    om_type flagged = {.name = "flagged", .size = 16, .flags = 0x80000000u};
    CHECK(om_new(rt, &flagged) == NULL);
    CHECK(strstr(om_last_error(rt), "unknown flags") != NULL);
    CHECK(om_new_var(rt, &pair_type, SIZE_MAX) == NULL);
    CHECK(om_last_status(rt) == OM_ERR_OVERFLOW);
    CHECK(strstr(om_last_error(rt), "om_new_var") != NULL);
    om_clear_error(rt);
    CHECK(om_last_status(rt) == OM_OK && om_last_error(rt)[0] == '\0');
    CHECK(om_new(NULL, &pair_type) == NULL);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
}

/* A variable-size object recording its length, for om_new_var. */
typedef struct blob {
    OM_OBJECT_HEAD
    size_t len;
    unsigned char bytes[];
} blob;

static size_t blob_extra(const om_object *self) { return ((const blob *)self)->len; }

static const om_type blob_type = {
    .name = "blob", .size = sizeof(blob), .extra_size = blob_extra,
};

static void var_and_large_objects(void) {
    om_runtime *rt = om_runtime_new(NULL);
    /* Sizes on both sides of the small-object limit. */
    size_t sizes[] = {0, 1, 100, OM_SMALL_MAX - sizeof(blob),
                      OM_SMALL_MAX - sizeof(blob) + 1, 5000, 1 << 20};
    om_object *objs[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        blob *b = (blob *)om_new_var(rt, &blob_type, sizes[i]);
        CHECK(b != NULL);
        CHECK(((uintptr_t)b & 15) == 0);
        CHECK(om_runtime_of(&b->om_head) == rt);
        size_t zeros = 0;
        for (size_t j = 0; j < sizes[i]; j++)
            zeros += b->bytes[j] == 0;
        CHECK(zeros == sizes[i]);
        b->len = sizes[i];
        memset(b->bytes, 0xAB, sizes[i]);
        CHECK(om_sizeof(&b->om_head) == sizeof(blob) + sizes[i]);
        objs[i] = &b->om_head;
    }
    CHECK(om_object_count(rt) == sizeof sizes / sizeof sizes[0]);
    CHECK(om_check(rt) == OM_OK);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        om_decref(objs[i]);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- finalizers ------------------------------------------------------------ */

typedef struct fin {
    OM_OBJECT_HEAD
    om_object *child;
    int id;
} fin;

static int fin_calls;
static int fin_order[16];
static om_object *lazarus_home;   /* where a resurrecting finalizer stores self */
static int fin_mode;              /* 0 plain, 1 resurrect, 2 drop lent ref */

static int fin_traverse(om_object *self, om_visit_fn visit, void *arg) {
    fin *f = (fin *)self;
    return f->child ? visit(f->child, arg) : 0;
}

static void fin_clear(om_object *self) {
    fin *f = (fin *)self;
    om_object *c = f->child;
    f->child = NULL;
    om_decref(c);
}

static void fin_finalize(om_object *self) {
    fin *f = (fin *)self;
    if (fin_calls < 16)
        fin_order[fin_calls] = f->id;
    fin_calls++;
    /* The object is intact while it is finalized. */
    CHECK(om_refcount(self) == 1);
    if (fin_mode == 1) {
        om_incref(self);
        lazarus_home = self;
    } else if (fin_mode == 2) {
        om_decref(self);
    }
}

static const om_type fin_type = {
    .name = "fin", .size = sizeof(fin), .traverse = fin_traverse,
    .clear = fin_clear, .finalize = fin_finalize,
};

static om_object *new_fin(om_runtime *rt, int id, om_object *child) {
    fin *f = (fin *)om_new(rt, &fin_type);
    f->id = id;
    f->child = child; /* takes the caller's reference */
    return &f->om_head;
}

static void finalize_once_parent_first(void) {
    om_runtime *rt = om_runtime_new(NULL);
    fin_calls = 0;
    fin_mode = 0;
    om_object *chain = NULL;
    for (int i = 0; i < 5; i++)
        chain = new_fin(rt, i, chain);
    om_decref(chain);
    CHECK(fin_calls == 5);
    for (int i = 0; i < 5; i++)
        CHECK(fin_order[i] == 4 - i);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
}

static void resurrection(void) {
    om_runtime *rt = om_runtime_new(NULL);
    fin_calls = 0;
    fin_mode = 1;
    om_object *child = om_int_new(rt, 7);
    om_object *f = new_fin(rt, 1, child);
    om_decref(f);
    CHECK(fin_calls == 1);
    CHECK(lazarus_home == f);
    CHECK(om_refcount(f) == 1);
    /* Resurrected intact: its child was not dropped. */
    CHECK(((fin *)f)->child == child && om_int_value(child) == 7);
    CHECK(om_object_count(rt) == 2);
    CHECK(om_check(rt) == OM_OK);
    /* Dying again does not finalize again. */
    lazarus_home = NULL;
    om_decref(f);
    CHECK(fin_calls == 1);
    CHECK(om_object_count(rt) == 0);
    fin_mode = 0;
    CHECK(om_runtime_free(rt) == 0);
}

static void finalizer_dropping_lent_reference(void) {
    om_runtime *rt = om_runtime_new(NULL);
    fin_calls = 0;
    fin_mode = 2;
    om_object *f = new_fin(rt, 1, om_str_new(rt, "child"));
    om_decref(f);
    CHECK(fin_calls == 1);
    CHECK(om_object_count(rt) == 0);
    fin_mode = 0;
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

/* clear() sets a slot to NULL before dropping what it held: a finalizer of
 * the child, reading its parent through a borrowed pointer, sees NULL. */
static om_object *observed_parent;
static int parent_slot_was_null;

static void watcher_finalize(om_object *self) {
    (void)self;
    parent_slot_was_null = ((pair *)observed_parent)->a == NULL;
}

static const om_type watcher_type = {
    .name = "watcher", .size = sizeof(om_object), .finalize = watcher_finalize,
};

static void clear_nulls_before_decref(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *p = om_new(rt, &pair_type);
    ((pair *)p)->a = om_new(rt, &watcher_type);
    observed_parent = p;
    parent_slot_was_null = 0;
    om_decref(p);
    CHECK(parent_slot_was_null == 1);
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- immortal and static objects -------------------------------------------------- */

static int released;
static void counted_finalize(om_object *self) { (void)self; released++; }
static const om_type counted_type = {
    .name = "counted", .size = sizeof(om_object), .finalize = counted_finalize,
};

static void immortal_objects(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *p = om_new(rt, &pair_type);
    ((pair *)p)->a = om_new(rt, &counted_type);
    om_make_immortal(p);
    CHECK(om_is_immortal(p));
    CHECK(om_refcount(p) == OM_REFCOUNT_IMMORTAL);
    for (int i = 0; i < 10; i++)
        om_decref(p);
    om_incref(p);
    CHECK(om_refcount(p) == OM_REFCOUNT_IMMORTAL);
    CHECK(om_object_count(rt) == 2);
    CHECK(om_check(rt) == OM_OK);
    released = 0;
    /* Freeing the runtime clears the immortal, releasing what it holds, and
     * does not call either a leak. */
    CHECK(om_runtime_free(rt) == 0);
    CHECK(released == 1);
}

typedef struct token { OM_OBJECT_HEAD int v; } token;
static const om_type token_type = {.name = "token", .size = sizeof(token)};
static token the_token = {OM_STATIC_OBJECT_INIT(&token_type), 42};

static void static_objects(void) {
    om_object *t = &the_token.om_head;
    CHECK(om_is_immortal(t));
    CHECK(om_runtime_of(t) == NULL);
    CHECK(om_refcount(t) == OM_REFCOUNT_IMMORTAL);
    om_runtime *rt = om_runtime_new(NULL);
    om_object *l = om_list_new(rt);
    for (int i = 0; i < 100; i++)
        CHECK(om_list_append(l, t) == OM_OK);
    CHECK(om_refcount(t) == OM_REFCOUNT_IMMORTAL);
    om_decref(l);
    CHECK(the_token.v == 42 && om_refcount(t) == OM_REFCOUNT_IMMORTAL);
    CHECK(om_runtime_free(rt) == 0);
}

/* ---- runtime, config, errors --------------------------------------------------------- */

static void leak_report(void) {
    om_config cfg;
    om_config_init(&cfg);
    FILE *report = tmpfile();
    cfg.report_stream = report;
    om_runtime *rt = om_runtime_new(&cfg);
    om_object *l = om_list_new(rt);
    om_list_append(l, om_str_new(rt, "leaked"));    /* the str leaks too */
    om_new(rt, &pair_type);
    CHECK(om_runtime_free(rt) == 3);
    rewind(report);
    char text[512] = {0};
    CHECK(fread(text, 1, sizeof text - 1, report) > 0);
    fclose(report);
    CHECK(strstr(text, "3 objects still alive") != NULL);
    CHECK(strstr(text, "list") && strstr(text, "str") && strstr(text, "pair"));

    /* leak_report = 0: nothing printed, the count still returned. */
    report = tmpfile();
    cfg.report_stream = report;
    cfg.leak_report = 0;
    rt = om_runtime_new(&cfg);
    om_new(rt, &pair_type);
    CHECK(om_runtime_free(rt) == 1);
    CHECK(ftell(report) == 0);
    fclose(report);
    CHECK(om_runtime_free(NULL) == 0);
}

static void config_and_environment(void) {
    om_config cfg;
    om_config_init(&cfg);
    CHECK(cfg.size == sizeof cfg && cfg.leak_report == 1);
    setenv("OBJMEM_LEAK_REPORT", "0", 1);
    om_config_init(&cfg);
    CHECK(cfg.leak_report == 0);
    setenv("OBJMEM_LEAK_REPORT", "not-a-number", 1);
    om_config_init(&cfg);
    CHECK(cfg.leak_report == 1);
    unsetenv("OBJMEM_LEAK_REPORT");
    /* Sizes a caller could not have taken from any header are refused. */
    cfg.size = 0;
    CHECK(om_runtime_new(&cfg) == NULL);
    cfg.size = sizeof cfg + 8;
    CHECK(om_runtime_new(&cfg) == NULL);
    /* An older, shorter config keeps the defaults for the fields it lacks. */
    om_config_init(&cfg);
    cfg.size = offsetof(om_config, report_stream);
    om_runtime *rt = om_runtime_new(&cfg);
    CHECK(rt != NULL && rt->config.report_stream == NULL);
    CHECK(om_runtime_free(rt) == 0);
}

static void status_messages(void) {
    CHECK(!strcmp(om_status_message(OM_OK), "success"));
    CHECK(!strcmp(om_status_message(OM_ERR_NOMEM), "out of memory"));
    CHECK(!strcmp(om_status_message(OM_ERR_INDEX), "index out of range"));
    CHECK(!strcmp(om_status_message(12345), "unknown status"));
    CHECK(strcmp(om_last_error(NULL), "") != 0);
    CHECK(om_last_status(NULL) == OM_ERR_ARG);
    CHECK(om_version() == OM_VERSION_NUMBER);
    CHECK(om_debug_level() == OBJMEM_DEBUG);
}

/* om_check finds a broken invariant and names it. */
static void check_detects_corruption(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *a = om_new(rt, &pair_type);
    om_object *b = om_new(rt, &pair_type);
    om_decref(b);               /* b's block is now on a free list */
    CHECK(om_check(rt) == OM_OK);
    rt->objects++;
    CHECK(om_check(rt) == OM_ERR_STATE);
    CHECK(strstr(om_last_error(rt), "objects counted") != NULL);
    rt->objects--;
    void *saved = *(void **)b;
    *(void **)b = (char *)a + 8;    /* a free-list link into the middle of a */
    CHECK(om_check(rt) == OM_ERR_STATE);
    CHECK(strstr(om_last_error(rt), "free-list entry") != NULL);
    *(void **)b = saved;
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_check(NULL) == OM_ERR_ARG);
    om_decref(a);
    CHECK(om_runtime_free(rt) == 0);
}

TEST_MAIN(T(new_refcount_sizeof), T(setref_order), T(type_validation),
          T(var_and_large_objects), T(finalize_once_parent_first),
          T(resurrection), T(finalizer_dropping_lent_reference),
          T(clear_nulls_before_decref), T(immortal_objects), T(static_objects),
          T(leak_report), T(config_and_environment), T(status_messages),
          T(check_detects_corruption))
