/*
 * test_weakref.c — weak references and finalize outside the collector:
 * om_weakref_new/get/alive/count/list (sharing of the plain ref, list
 * order, errors, the 8 bytes om_sizeof adds, large and variable-size
 * referents), refcount death (finalizer first with the refs still alive,
 * then every ref cleared, then the callbacks in list order, once each),
 * callbacks that drop, create, allocate and collect, resurrection, the
 * om_finalize family (call, detach, peek, atexit and the run at
 * om_runtime_free), and allocation-failure sweeps.
 *
 * Counterparts of CPython's Lib/test/test_weakref.py are named in a comment
 * at each; ../shared/reference/cpython-semantics.md §12 gives the expected
 * behaviour.  The collector's side (callbacks and finalizers inside a
 * collection) is tests/test_weakref_gc.c.
 */
#include "internal.h"
#include "harness.h"
#include "weak_support.h"

/* The same node, not weakly referenceable. */
static const om_type strong_type = {
    .name = "strongnode", .size = sizeof(node),
    .traverse = node_traverse, .clear = wnode_clear,
};

static bool list_is(om_object *list, size_t n, om_object *const *expected) {
    if (!list || om_list_len(list) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (om_list_get(list, (ptrdiff_t)i) != expected[i])
            return false;
    return true;
}

/* ---- refs: creation, sharing, order ------------------------------------------ */

/* test_basic_ref */
static void basic_ref(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *r = om_weakref_new(o, NULL, NULL);
    CHECK(r != NULL && om_type_of(r) == &om_weakref_type);
    CHECK(om_weakref_alive(r));
    CHECK(om_refcount(o) == 1);            /* a weak ref adds nothing */
    om_object *got = om_weakref_get(r);
    CHECK(got == o && om_refcount(o) == 2);   /* a new reference */
    om_decref(got);
    CHECK(om_weakref_count(o) == 1);
    om_decref(o);
    CHECK(!om_weakref_alive(r));
    om_clear_error(rt);
    CHECK(om_weakref_get(r) == NULL);
    CHECK(om_last_status(rt) == OM_OK);    /* dead is not an error */
    CHECK(om_object_count(rt) == 1);       /* the ref itself */
    om_decref(r);
    finish(rt);
}

/* test_shared_ref_without_callback, test_ref_reuse */
static void plain_ref_is_shared(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *r1 = om_weakref_new(o, NULL, NULL);
    om_object *r2 = om_weakref_new(o, NULL, NULL);
    CHECK(r1 == r2 && om_refcount(r1) == 2);
    cbrec a = {.id = 1};
    om_object *c1 = om_weakref_new(o, record_cb, &a);
    om_object *c2 = om_weakref_new(o, record_cb, &a);   /* same callback */
    om_object *c3 = om_weakref_new(o, record_cb, NULL); /* no data */
    CHECK(c1 && c2 && c3 && c1 != c2 && c2 != c3 && c1 != r1);
    CHECK(om_weakref_count(o) == 4);
    om_object *r3 = om_weakref_new(o, NULL, NULL);
    CHECK(r3 == r1);
    om_decref(r3);
    om_decref(r2);
    om_decref(r1);   /* the shared plain ref dies; the next is a new one */
    CHECK(om_weakref_count(o) == 3);
    r1 = om_weakref_new(o, NULL, NULL);
    CHECK(r1 != NULL && om_refcount(r1) == 1);
    CHECK(om_weakref_count(o) == 4);
    om_decref(r1);
    om_decref(c1);
    om_decref(c2);
    om_decref(c3);
    om_decref(o);
    CHECK(a.calls == 0);
    finish(rt);
}

/* test_getweakrefcount, test_getweakrefs: plain ref first, then the
 * callback refs newest first, whatever the order of creation. */
static void count_and_list_order(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *l = om_weakref_list(o);
    CHECK(l && om_list_len(l) == 0);   /* no refs: an empty list */
    om_decref(l);
    CHECK(om_weakref_count(o) == 0);
    cbrec a = {.id = 1};
    om_object *c1 = om_weakref_new(o, record_cb, &a);
    om_object *c2 = om_weakref_new(o, record_cb, &a);
    om_object *p = om_weakref_new(o, NULL, NULL);   /* plain, made last */
    om_object *c3 = om_weakref_new(o, record_cb, &a);
    CHECK(om_weakref_count(o) == 4);
    l = om_weakref_list(o);
    CHECK(list_is(l, 4, (om_object *[]){p, c3, c2, c1}));
    CHECK(om_refcount(c1) == 2);   /* the list holds each */
    om_decref(l);
    om_decref(c2);
    CHECK(om_weakref_count(o) == 3);
    l = om_weakref_list(o);
    CHECK(list_is(l, 3, (om_object *[]){p, c3, c1}));
    om_decref(l);
    om_decref(p);
    l = om_weakref_list(o);
    CHECK(list_is(l, 2, (om_object *[]){c3, c1}));
    om_decref(l);
    /* A plain ref made now goes first again. */
    p = om_weakref_new(o, NULL, NULL);
    l = om_weakref_list(o);
    CHECK(list_is(l, 3, (om_object *[]){p, c3, c1}));
    om_decref(l);
    om_decref(c1);
    om_decref(c3);
    om_decref(p);
    CHECK(om_weakref_count(o) == 0);
    /* Types without weak references: count 0, an empty list. */
    om_object *s = om_str_new(rt, "text");
    CHECK(om_weakref_count(s) == 0);
    l = om_weakref_list(s);
    CHECK(l && om_list_len(l) == 0);
    om_decref(l);
    om_decref(s);
    CHECK(om_weakref_count(NULL) == 0);
    om_decref(o);
    CHECK(a.calls == 0);
    finish(rt);
}

static struct node static_wnode = {OM_STATIC_OBJECT_INIT(&wnode_type),
                                   {NULL, NULL, NULL, NULL}, 0};

static void weakref_errors(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    cbrec a = {.id = 1};
    size_t objects = om_object_count(rt);
    CHECK(om_weakref_new(NULL, NULL, NULL) == NULL);
    CHECK(om_weakref_new(NULL, record_cb, &a) == NULL);
    /* test_basic_ref's TypeError: cannot create weak reference to 'int' */
    om_object *i = om_int_new(rt, 1);
    om_clear_error(rt);
    CHECK(om_weakref_new(i, NULL, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "cannot create weak reference", "'int'"));
    om_object *s = new_node(rt, &strong_type, 2);
    CHECK(om_weakref_new(s, record_cb, &a) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakref_new", "strongnode"));
    /* Weak references themselves are not weakly referenceable here. */
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *r = om_weakref_new(o, NULL, NULL);
    CHECK(om_weakref_new(r, NULL, NULL) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "weakref", NULL));
    /* Data without a callback. */
    om_clear_error(rt);
    CHECK(om_weakref_new(o, NULL, &a) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_weakref_new", "callback"));
    CHECK(om_weakref_count(o) == 1);
    /* A static object: no runtime to report in, so only NULL. */
    CHECK(om_weakref_new(&static_wnode.om_head, NULL, NULL) == NULL);
    CHECK(om_weakref_new(&static_wnode.om_head, record_cb, &a) == NULL);
    CHECK(om_weakref_count(&static_wnode.om_head) == 0);
    CHECK(om_weakref_list(&static_wnode.om_head) == NULL);
    CHECK(om_weakref_list(NULL) == NULL);
    /* om_weakref_get on something else. */
    om_clear_error(rt);
    CHECK(om_weakref_get(o) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_weakref_get", "wnode"));
    CHECK(om_refcount(o) == 1);
    CHECK(om_weakref_get(NULL) == NULL);
    CHECK(!om_weakref_alive(o));
    CHECK(!om_weakref_alive(NULL));
    CHECK(om_object_count(rt) == objects + 4);   /* i, s, o, r */
    om_decref(r);
    om_decref(o);
    om_decref(s);
    om_decref(i);
    CHECK(a.calls == 0);
    finish(rt);
}

/* sys.getsizeof counts the weak reference slot. */
typedef struct sized {
    OM_OBJECT_HEAD
    char body[40];
} sized;
static size_t sized_extra(const om_object *self) { (void)self; return 100; }
static const om_type sized_plain = {.name = "sp", .size = sizeof(sized)};
static const om_type sized_weak = {.name = "sw", .size = sizeof(sized),
                                   .flags = OM_TYPE_WEAKREFABLE};
static const om_type sized_weak_extra = {.name = "swe", .size = sizeof(sized),
                                         .flags = OM_TYPE_WEAKREFABLE,
                                         .extra_size = sized_extra};

static void sizeof_counts_the_slot(void) {
    om_runtime *rt = quiet_runtime();
    om_object *a = om_new(rt, &sized_plain);
    om_object *b = om_new(rt, &sized_weak);
    om_object *c = om_new(rt, &sized_weak_extra);
    CHECK(om_sizeof(a) == sizeof(sized));
    CHECK(om_sizeof(b) == sizeof(sized) + 8);
    CHECK(om_sizeof(c) == sizeof(sized) + 100 + 8);
    om_decref(a);
    om_decref(b);
    om_decref(c);
    finish(rt);
}

/* A weakly referenceable object's block starts with an empty list of weak
 * references whatever the block held before, for every size (pool size
 * classes where the list head lies past the type's size, and large
 * blocks).  Reads the head directly, not to crash on a bad one. */
typedef struct blob {
    OM_OBJECT_HEAD
    unsigned char bytes[];
} blob;

static void fresh_block_has_empty_weaklist(void) {
    om_runtime *rt = quiet_runtime();
    char bad[1024] = "";
    for (size_t size = sizeof(om_object); size <= OM_SMALL_MAX + 64;
         size += 8) {
        om_type wt = {.name = "blob", .size = size,
                      .flags = OM_TYPE_WEAKREFABLE};
        om_type ft = {.name = "filler", .size = size + 16};
        /* Dirty blocks of the sizes around, then reuse them. */
        om_object *keep[4], *dirty[4];
        for (int i = 0; i < 4; i++) {
            keep[i] = om_new(rt, &ft);
            dirty[i] = om_new(rt, &ft);
            memset(((blob *)dirty[i])->bytes, 0xA5,
                   ft.size - sizeof(om_object));
        }
        for (int i = 0; i < 4; i++) {
            om_decref(dirty[i]);
            dirty[i] = om_new(rt, &wt);
        }
        bool empty = true;
        for (int i = 0; i < 4; i++)
            empty = empty && *om_weaklist_slot(dirty[i]) == NULL;
        if (!empty && strlen(bad) < sizeof bad - 8)
            snprintf(bad + strlen(bad), sizeof bad - strlen(bad), " %zu",
                     size);
        for (int i = 0; i < 4; i++) {
            if (empty) {
                om_object *r = om_weakref_new(dirty[i], NULL, NULL);
                CHECK(om_weakref_count(dirty[i]) == 1);
                om_decref(dirty[i]);
                CHECK(!om_weakref_alive(r));
                om_decref(r);
            } else {
                *om_weaklist_slot(dirty[i]) = NULL;   /* to free it safely */
                om_decref(dirty[i]);
            }
            om_decref(keep[i]);
        }
    }
    if (bad[0])
        fprintf(stderr, "  type sizes whose reused block has a non-empty "
                        "weak list:%s\n", bad);
    CHECK(bad[0] == '\0');
    finish(rt);
}

/* Large objects (type size over 512 bytes) and om_new_var objects take
 * weak references; filling the whole body does not touch the list. */
typedef struct bignode {
    OM_OBJECT_HEAD
    unsigned char bytes[600];
} bignode;
static const om_type big_type = {.name = "big", .size = sizeof(bignode),
                                 .flags = OM_TYPE_WEAKREFABLE};
static const om_type var_type = {.name = "var", .size = sizeof(blob) + 8,
                                 .flags = OM_TYPE_WEAKREFABLE};

static void large_and_var_referents(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    cbrec a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    om_object *big = om_new(rt, &big_type);
    om_object *v_small = om_new_var(rt, &var_type, 5);
    om_object *v_large = om_new_var(rt, &var_type, 3000);
    CHECK(big && v_small && v_large);
    om_object *objs[3] = {big, v_small, v_large};
    size_t bodies[3] = {sizeof(bignode) - sizeof(om_object),
                        8 + 5, 8 + 3000};
    cbrec *recs[3] = {&a, &b, &c};
    om_object *plain[3], *cb[3];
    for (int i = 0; i < 3; i++) {
        CHECK(om_weakref_count(objs[i]) == 0);
        plain[i] = om_weakref_new(objs[i], NULL, NULL);
        cb[i] = om_weakref_new(objs[i], record_cb, recs[i]);
        memset(((blob *)objs[i])->bytes, 0xFF, bodies[i]);
        CHECK(om_weakref_count(objs[i]) == 2);
        om_object *got = om_weakref_get(cb[i]);
        CHECK(got == objs[i]);
        om_decref(got);
    }
    CHECK(om_sizeof(big) == sizeof(bignode) + 8);
    for (int i = 0; i < 3; i++) {
        om_decref(objs[i]);
        CHECK(!om_weakref_alive(plain[i]) && !om_weakref_alive(cb[i]));
        CHECK(recs[i]->calls == 1 && recs[i]->ref == cb[i]);
        om_decref(plain[i]);
        om_decref(cb[i]);
    }
    CHECK(log_is("c1 c2 c3"));
    finish(rt);
}

/* ---- refcount death -------------------------------------------------------------- */

static om_object *fin_ref;          /* the ref a finalizer looks through */
static int fin_saw_self, fin_saw_count;

static void look_through_ref(node *self) {
    om_object *got = om_weakref_get(fin_ref);
    fin_saw_self = got == &self->om_head;
    om_decref(got);
    fin_saw_count = (int)om_weakref_count(&self->om_head);
}

/* test_basic_callback, test_multiple_callbacks: the finalizer first (refs
 * alive), then all refs cleared, then the callbacks newest first (r3, r2,
 * r1 in §12's run), each once with its ref and data. */
static void death_order(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wfin_type, 1);
    cbrec a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    om_object *p = om_weakref_new(o, NULL, NULL);
    om_object *r1 = om_weakref_new(o, record_cb, &a);
    om_object *r2 = om_weakref_new(o, record_cb, &b);
    om_object *r3 = om_weakref_new(o, record_cb, &c);
    fin_ref = r2;
    on_finalize = look_through_ref;
    om_decref(o);
    CHECK(fin_calls[1] == 1);
    CHECK(fin_saw_self && fin_saw_count == 4);
    CHECK(log_is("F1 c3 c2 c1"));
    cbrec *recs[3] = {&a, &b, &c};
    om_object *refs[3] = {r1, r2, r3};
    for (int i = 0; i < 3; i++) {
        CHECK(recs[i]->calls == 1);
        CHECK(recs[i]->ref == refs[i]);
        CHECK(!recs[i]->alive_inside && !recs[i]->got_inside);
        CHECK(!om_weakref_alive(refs[i]));
        om_decref(refs[i]);
    }
    CHECK(!om_weakref_alive(p));
    om_decref(p);
    finish(rt);
}

/* A ref that dies before its referent never calls back. */
static void ref_dying_first_never_calls(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    cbrec a = {.id = 1}, b = {.id = 2};
    om_object *r1 = om_weakref_new(o, record_cb, &a);
    om_object *r2 = om_weakref_new(o, record_cb, &b);
    om_decref(r1);
    CHECK(om_weakref_count(o) == 1);
    om_decref(o);
    CHECK(a.calls == 0 && b.calls == 1);
    om_decref(r2);
    finish(rt);
}

static om_object *held[8];   /* references callbacks may drop or fill */

static void drop_held0(cbrec *self) {
    (void)self;
    om_object *r = held[0];
    held[0] = NULL;
    om_decref(r);
}

/* A callback drops the last outside reference to a ref whose callback is
 * still due: that callback runs all the same (CPython's
 * PyObject_ClearWeakRefs holds every due ref in a tuple), and the ref is
 * freed after it. */
static void callback_drops_pending_ref(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    cbrec a = {.id = 1}, b = {.id = 2, .action = drop_held0};
    held[0] = om_weakref_new(o, record_cb, &a);   /* older: called second */
    om_object *r2 = om_weakref_new(o, record_cb, &b);
    size_t before = om_object_count(rt);
    om_decref(o);
    CHECK(log_is("c2 c1"));
    CHECK(a.calls == 1 && b.calls == 1);
    CHECK(held[0] == NULL);
    CHECK(om_object_count(rt) == before - 2);   /* o and the dropped ref */
    om_decref(r2);
    finish(rt);
}

/* test_multiple_selfref_callbacks: a callback that drops its own ref. */
static void drop_own_ref(cbrec *self) {
    int i = *(int *)self->ctx;
    CHECK(held[i] == self->ref);
    om_object *r = held[i];
    held[i] = NULL;
    om_decref(r);
}

static void selfref_callbacks(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    int idx[2] = {0, 1};
    cbrec a = {.id = 1, .action = drop_own_ref, .ctx = &idx[0]};
    cbrec b = {.id = 2, .action = drop_own_ref, .ctx = &idx[1]};
    held[0] = om_weakref_new(o, record_cb, &a);
    held[1] = om_weakref_new(o, record_cb, &b);
    om_decref(o);
    CHECK(log_is("c2 c1"));
    CHECK(held[0] == NULL && held[1] == NULL);
    finish(rt);
}

/* Callbacks that make refs: to another object (which later dies and calls
 * back), and to a new object they drop at once.  That object dies once the
 * callback returns (an object dying while another is destroyed joins the
 * dealloc queue, om_decref's contract), and its ref's callback runs then. */
static cbrec nested = {.id = 9};

static void make_refs(cbrec *self) {
    om_runtime *rt = self->ctx;
    /* To a live object held elsewhere. */
    held[2] = om_weakref_new(held[1], record_cb, &nested);
    /* To a new object dropped here. */
    om_object *n = new_node(rt, &wnode_type, 5);
    held[5] = om_weakref_new(n, record_cb, &nested);
    held[6] = om_weakref_new(n, NULL, NULL);
    om_decref(n);
}

static void callback_creates_refs(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    nested.calls = 0;
    om_object *o = new_node(rt, &wnode_type, 1);
    held[1] = new_node(rt, &wnode_type, 2);
    cbrec a = {.id = 1, .action = make_refs, .ctx = rt};
    om_object *r = om_weakref_new(o, record_cb, &a);
    om_decref(o);
    CHECK(log_is("c1 c9"));
    CHECK(nested.calls == 1 && nested.ref == held[5]);
    CHECK(!om_weakref_alive(held[5]) && !om_weakref_alive(held[6]));
    CHECK(held[2] && om_weakref_alive(held[2]));
    CHECK(om_weakref_count(held[1]) == 1);
    om_decref(held[1]);
    CHECK(nested.calls == 2 && nested.ref == held[2]);
    CHECK(log_is("c1 c9 c9"));
    for (int i = 2; i <= 6; i++) {
        om_decref(held[i]);
        held[i] = NULL;
    }
    om_decref(r);
    held[1] = NULL;
    finish(rt);
}

/* test_callbacks_on_callback, refcount form: the callback's data holds an
 * object with weak references of its own; dropping it in the callback
 * runs their callbacks, nested. */
static void drop_data_object(cbrec *self) {
    (void)self;
    om_object *d = held[3];
    held[3] = NULL;
    om_decref(d);
}

static void callbacks_on_callback(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    held[3] = new_node(rt, &wfin_type, 2);
    cbrec a = {.id = 1, .action = drop_data_object};
    cbrec b = {.id = 2};
    om_object *ra = om_weakref_new(o, record_cb, &a);
    om_object *rb = om_weakref_new(held[3], record_cb, &b);
    om_decref(o);
    CHECK(log_is("c1 F2 c2"));
    CHECK(a.calls == 1 && b.calls == 1);
    om_decref(ra);
    om_decref(rb);
    finish(rt);
}

/* A callback that allocates, builds a cycle and collects (outside any
 * collection: the collection runs and finds the cycle). */
static ptrdiff_t collected_inside;

static void allocate_and_collect(cbrec *self) {
    om_runtime *rt = self->ctx;
    om_object *l = om_list_new(rt);
    CHECK(om_list_append(l, l) == OM_OK);
    om_decref(l);
    om_object *keep = om_list_new(rt);
    for (int i = 0; i < 100; i++) {
        om_object *x = om_int_new(rt, i);
        CHECK(om_list_append(keep, x) == OM_OK);
        om_decref(x);
    }
    held[4] = keep;
    collected_inside = om_gc_collect(rt, 2);
}

static void callback_allocates_and_collects(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wfin_type, 1);
    cbrec a = {.id = 1, .action = allocate_and_collect, .ctx = rt};
    cbrec b = {.id = 2};
    om_object *rb = om_weakref_new(o, record_cb, &b);
    om_object *ra = om_weakref_new(o, record_cb, &a);
    om_decref(o);
    CHECK(collected_inside == 1);   /* the self-cycle */
    CHECK(log_is("F1 c1 c2"));
    CHECK(held[4] && om_list_len(held[4]) == 100);
    CHECK(!om_weakref_alive(ra) && !om_weakref_alive(rb));
    om_decref(held[4]);
    held[4] = NULL;
    om_decref(ra);
    om_decref(rb);
    finish(rt);
}

/* test_ref_created_during_del: refs a finalizer makes to its own object
 * are dead once it is gone; a callback one of them carries runs. */
static om_object *from_del[2];
static cbrec del_cb = {.id = 7};

static void make_refs_to_self(node *self) {
    from_del[0] = om_weakref_new(&self->om_head, NULL, NULL);
    from_del[1] = om_weakref_new(&self->om_head, record_cb, &del_cb);
}

static void ref_created_during_del(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    del_cb.calls = 0;
    om_object *o = new_node(rt, &wfin_type, 1);
    on_finalize = make_refs_to_self;
    om_decref(o);
    CHECK(from_del[0] && !om_weakref_alive(from_del[0]));
    CHECK(from_del[1] && !om_weakref_alive(from_del[1]));
    CHECK(del_cb.calls == 1 && del_cb.ref == from_del[1]);
    CHECK(log_is("F1 c7"));
    om_decref(from_del[0]);
    om_decref(from_del[1]);
    finish(rt);
}

/* A finalizer that resurrects: the refs stay alive and nothing calls
 * back; when the object finally dies the refs die with callbacks, and the
 * finalizer does not run again. */
static om_object *lazarus;

static void resurrect(node *self) {
    om_incref(&self->om_head);
    lazarus = &self->om_head;
}

static void finalizer_resurrects(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wfin_type, 1);
    cbrec a = {.id = 1};
    om_object *p = om_weakref_new(o, NULL, NULL);
    om_object *r = om_weakref_new(o, record_cb, &a);
    on_finalize = resurrect;
    om_decref(o);
    CHECK(lazarus == o && om_refcount(o) == 1);
    CHECK(om_weakref_alive(p) && om_weakref_alive(r));
    CHECK(a.calls == 0 && om_weakref_count(o) == 2);
    om_object *got = om_weakref_get(r);
    CHECK(got == o);
    om_decref(got);
    CHECK(log_is("F1"));
    lazarus = NULL;
    om_decref(o);
    CHECK(fin_calls[1] == 1);
    CHECK(log_is("F1 c1"));
    CHECK(!om_weakref_alive(p) && !om_weakref_alive(r) && a.calls == 1);
    om_decref(p);
    om_decref(r);
    finish(rt);
}

/* test_equality, test_hashing: live refs are equal when their referents
 * are and hash as them; a dead ref keeps the hash it had and equals only
 * itself.  Seen through a dict keyed by refs. */
static void ref_equality_and_hash(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    cbrec a = {.id = 1};
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *r1 = om_weakref_new(o, record_cb, &a);
    om_object *r2 = om_weakref_new(o, record_cb, &a);
    om_object *d = om_dict_new(rt);
    om_object *v = om_int_new(rt, 5);
    CHECK(om_dict_set(d, r1, v) == OM_OK);
    CHECK(om_dict_get(d, r2) == v);   /* equal referents: the same key */
    om_decref(o);
    CHECK(om_dict_get(d, r1) == v);   /* itself, by the remembered hash */
    CHECK(om_dict_contains(d, r2) == 0);
    om_decref(d);
    om_decref(v);
    om_decref(r1);
    om_decref(r2);
    finish(rt);
}

/* ---- finalize ---------------------------------------------------------------------- */

typedef struct finrec {
    int id;
    int calls;
    void (*action)(struct finrec *self);
    void *ctx;
} finrec;

static void fin_fn(void *data) {
    finrec *f = data;
    f->calls++;
    log_event("f%d", f->id);
    if (f->action)
        f->action(f);
}

static void other_fn(void *data) { (void)data; }

/* test_finalize: runs once, when the object dies; the registry keeps the
 * finalizer after its reference is dropped. */
static void finalize_runs_on_death(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    size_t base = om_object_count(rt);
    om_object *o = new_node(rt, &wfin_type, 1);
    finrec fa = {.id = 1}, fb = {.id = 2};
    om_object *f1 = om_finalize_new(o, fin_fn, &fa);
    om_object *f2 = om_finalize_new(o, fin_fn, &fb);
    CHECK(f1 && f2 && om_type_of(f1) == &om_finalize_type);
    CHECK(om_finalize_alive(f1) && om_finalize_alive(f2));
    CHECK(om_weakref_count(o) == 2);
    CHECK(om_refcount(f1) == 2);   /* ours and the registry's */
    om_decref(f1);                 /* dropping it does not cancel it */
    CHECK(om_finalize_alive(f1));
    om_decref(o);
    CHECK(fa.calls == 1 && fb.calls == 1);
    CHECK(log_is("F1 f2 f1"));   /* newest callback first */
    CHECK(!om_finalize_alive(f2));
    CHECK(om_finalize_call(f2) == 0 && fb.calls == 1);
    om_decref(f2);
    CHECK(om_object_count(rt) == base);   /* both finalizers freed */
    finish(rt);
}

/* test_finalize: calling it runs it now, once. */
static void finalize_call(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    finrec fa = {.id = 1};
    om_object *f = om_finalize_new(o, fin_fn, &fa);
    CHECK(om_finalize_call(f) == 1);
    CHECK(fa.calls == 1 && !om_finalize_alive(f));
    CHECK(om_finalize_call(f) == 0 && fa.calls == 1);
    CHECK(om_weakref_count(o) == 0);   /* its ref is gone */
    CHECK(om_refcount(f) == 1);        /* the registry let go */
    om_decref(o);
    CHECK(fa.calls == 1);
    /* Called with only the registry's reference left (a borrowed
     * pointer): it must not be freed before it is done. */
    o = new_node(rt, &wnode_type, 2);
    om_object *f2 = om_finalize_new(o, fin_fn, &fa);
    om_decref(f2);
    CHECK(om_finalize_call(f2) == 1 && fa.calls == 2);
    om_decref(o);
    om_decref(f);
    CHECK(fa.calls == 2);
    finish(rt);
}

/* test_finalize: detach returns (obj, fn, data) and kills it; peek
 * returns the same and leaves it alive. */
static void finalize_detach_and_peek(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *o = new_node(rt, &wnode_type, 1);
    finrec fa = {.id = 1};
    om_object *f = om_finalize_new(o, fin_fn, &fa);
    om_finalizer_fn fn = NULL;
    void *data = NULL;
    om_object *got = om_finalize_peek(f, &fn, &data);
    CHECK(got == o && fn == fin_fn && data == &fa);
    CHECK(om_refcount(o) == 2);   /* a new reference */
    om_decref(got);
    CHECK(om_finalize_alive(f));
    got = om_finalize_peek(f, NULL, NULL);
    CHECK(got == o);
    om_decref(got);
    fn = other_fn;
    data = NULL;
    got = om_finalize_detach(f, &fn, &data);
    CHECK(got == o && fn == fin_fn && data == &fa && om_refcount(o) == 2);
    om_decref(got);
    CHECK(!om_finalize_alive(f));
    CHECK(om_weakref_count(o) == 0);
    fn = other_fn;
    CHECK(om_finalize_detach(f, &fn, &data) == NULL && fn == other_fn);
    CHECK(om_finalize_peek(f, &fn, &data) == NULL);
    CHECK(om_finalize_call(f) == 0);
    om_decref(o);
    CHECK(fa.calls == 0);
    om_decref(f);
    /* Detach with NULL out-pointers. */
    o = new_node(rt, &wnode_type, 2);
    f = om_finalize_new(o, fin_fn, &fa);
    got = om_finalize_detach(f, NULL, NULL);
    CHECK(got == o);
    om_decref(got);
    om_decref(f);
    om_decref(o);
    CHECK(fa.calls == 0);
    finish(rt);
}

static void finalize_errors(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    finrec fa = {.id = 1};
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *s = new_node(rt, &strong_type, 2);
    size_t objects = om_object_count(rt);
    CHECK(om_finalize_new(NULL, fin_fn, &fa) == NULL);
    CHECK(om_finalize_new(o, NULL, &fa) == NULL);
    CHECK(error_is(rt, OM_ERR_ARG, "om_finalize_new", "function"));
    om_clear_error(rt);
    CHECK(om_finalize_new(s, fin_fn, &fa) == NULL);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_finalize_new", "strongnode"));
    CHECK(om_finalize_new(&static_wnode.om_head, fin_fn, &fa) == NULL);
    CHECK(om_object_count(rt) == objects);
    CHECK(om_weakref_count(o) == 0);
    /* The queries on something that is not a finalizer. */
    om_clear_error(rt);
    CHECK(om_finalize_call(o) == 0);
    CHECK(error_is(rt, OM_ERR_TYPE, "om_finalize_call", "wnode"));
    CHECK(om_finalize_set_atexit(o, 1) == OM_ERR_TYPE);
    CHECK(om_finalize_detach(o, NULL, NULL) == NULL);
    CHECK(om_finalize_peek(o, NULL, NULL) == NULL);
    CHECK(!om_finalize_alive(o) && !om_finalize_alive(NULL));
    CHECK(!om_finalize_get_atexit(o) && !om_finalize_get_atexit(NULL));
    CHECK(om_finalize_call(NULL) == 0);
    CHECK(om_finalize_set_atexit(NULL, 0) != OM_OK);
    om_decref(s);
    om_decref(o);
    CHECK(fa.calls == 0);
    finish(rt);
}

/* test_atexit: at om_runtime_free, live finalizers with atexit run newest
 * first, those created meanwhile run too, the others do not run.  Their
 * objects are immortal, so they are alive then without being leaks. */
static finrec late = {.id = 9};

static void make_late_finalizer(finrec *self) {
    om_object *f = om_finalize_new(self->ctx, fin_fn, &late);
    CHECK(f != NULL);
    om_decref(f);
}

static void finalize_atexit(void) {
    om_runtime *rt = om_runtime_new(NULL);
    reset();
    late.calls = 0;
    om_object *o1 = new_node(rt, &wnode_type, 1);
    om_object *o2 = new_node(rt, &wnode_type, 2);
    om_make_immortal(o1);
    om_make_immortal(o2);
    finrec fa = {.id = 1}, fb = {.id = 2}, fc = {.id = 3}, fe = {.id = 5};
    fc.action = make_late_finalizer;
    fc.ctx = o2;
    om_object *f[4];
    f[0] = om_finalize_new(o1, fin_fn, &fa);
    f[1] = om_finalize_new(o1, fin_fn, &fb);
    f[2] = om_finalize_new(o2, fin_fn, &fc);
    f[3] = om_finalize_new(o1, fin_fn, &fe);
    for (int i = 0; i < 4; i++)
        CHECK(om_finalize_get_atexit(f[i]) == 1);   /* the default */
    CHECK(om_finalize_set_atexit(f[1], 0) == OM_OK);
    CHECK(om_finalize_get_atexit(f[1]) == 0);
    CHECK(om_finalize_set_atexit(f[3], 7) == OM_OK);   /* any non-zero */
    CHECK(om_finalize_get_atexit(f[3]) == 1);
    for (int i = 0; i < 4; i++)
        om_decref(f[i]);
    CHECK(log_is(""));
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
    CHECK(log_is("f5 f3 f9 f1"));
    CHECK(fa.calls == 1 && fb.calls == 0 && fc.calls == 1 && fe.calls == 1 &&
          late.calls == 1);
}

/* A finalizer run by a call, a death or shutdown is gone from the
 * registry: nothing runs twice at om_runtime_free. */
static void finalize_not_rerun_at_exit(void) {
    om_runtime *rt = om_runtime_new(NULL);
    reset();
    finrec fa = {.id = 1}, fb = {.id = 2}, fc = {.id = 3};
    om_object *o = new_node(rt, &wnode_type, 1);
    om_object *f1 = om_finalize_new(o, fin_fn, &fa);
    om_object *f2 = om_finalize_new(o, fin_fn, &fb);
    om_object *f3 = om_finalize_new(o, fin_fn, &fc);
    CHECK(om_finalize_call(f1) == 1);
    om_decref(om_finalize_detach(f3, NULL, NULL));
    om_decref(f1);
    om_decref(f2);
    om_decref(f3);
    om_decref(o);   /* runs f2 */
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
    CHECK(fa.calls == 1 && fb.calls == 1 && fc.calls == 0);
    CHECK(log_is("f1 f2"));
}

/* ---- allocation failures -------------------------------------------------------- */

static bool weak_scenario_failing_at(uint64_t nth) {
    sweep s = {om_runtime_new(NULL), 0, nth, 0};
    om_runtime *rt = s.rt;
    reset();
    om_object *o = new_node(rt, &wfin_type, 1);
    cbrec cb[3] = {{.id = 1}, {.id = 2}, {.id = 3}};
    finrec fa = {.id = 4};
    size_t objects = om_object_count(rt);
    s.start = om_debug_alloc_count(rt);
    om_debug_fail_alloc(rt, nth);

    om_object *plain;
    while (!(plain = om_weakref_new(o, NULL, NULL))) {
        CHECK(error_is(rt, OM_ERR_NOMEM, "om_weakref_new", NULL));
        if (!sweep_failed(&s))
            return false;
        CHECK(om_weakref_count(o) == 0 && om_object_count(rt) == objects);
    }
    om_object *again = om_weakref_new(o, NULL, NULL);   /* shared: no alloc */
    CHECK(again == plain);
    om_decref(again);
    om_object *refs[3];
    for (int i = 0; i < 3; i++) {
        size_t count = om_weakref_count(o), n = om_object_count(rt);
        while (!(refs[i] = om_weakref_new(o, record_cb, &cb[i]))) {
            CHECK(error_is(rt, OM_ERR_NOMEM, "om_weakref_new", NULL));
            if (!sweep_failed(&s))
                return false;
            CHECK(om_weakref_count(o) == count && om_object_count(rt) == n);
        }
    }
    om_object *f;
    size_t count = om_weakref_count(o), n = om_object_count(rt);
    while (!(f = om_finalize_new(o, fin_fn, &fa))) {
        CHECK(error_is(rt, OM_ERR_NOMEM, "om_finalize_new", NULL));
        if (!sweep_failed(&s))
            return false;
        CHECK(om_weakref_count(o) == count && om_object_count(rt) == n);
    }
    om_object *l;
    n = om_object_count(rt);
    while (!(l = om_weakref_list(o))) {
        CHECK(error_is(rt, OM_ERR_NOMEM, "om_weakref_list", NULL));
        if (!sweep_failed(&s))
            return false;
        CHECK(om_object_count(rt) == n);
        CHECK(om_refcount(plain) == 1 && om_refcount(refs[0]) == 1);
    }
    bool fired = sweep_fired(&s);
    CHECK(s.failures == (fired ? 1 : 0));
    om_debug_fail_alloc(rt, 0);

    CHECK(om_weakref_count(o) == 5);
    om_object *fref = om_list_get(l, 1);   /* the finalizer's, newest */
    CHECK(fref && om_type_of(fref) == &om_weakref_type &&
          fref != refs[2]);
    CHECK(list_is(l, 5, (om_object *[]){plain, fref, refs[2], refs[1],
                                        refs[0]}));
    om_decref(l);
    om_decref(f);
    om_decref(o);
    CHECK(log_is("F1 f4 c3 c2 c1"));
    CHECK(fa.calls == 1);
    for (int i = 0; i < 3; i++) {
        CHECK(cb[i].calls == 1 && cb[i].ref == refs[i]);
        om_decref(refs[i]);
    }
    om_decref(plain);
    finish(rt);
    return fired;
}

static void alloc_failure_sweep(void) {
    uint64_t nth = 1;
    while (weak_scenario_failing_at(nth) && nth < 1000)
        nth++;
    /* plain + 3 refs + a finalizer and its ref + the list: at least 7. */
    CHECK(nth > 7);
}

TEST_MAIN(T(basic_ref), T(plain_ref_is_shared), T(count_and_list_order),
          T(weakref_errors), T(sizeof_counts_the_slot),
          T(fresh_block_has_empty_weaklist), T(large_and_var_referents),
          T(death_order), T(ref_dying_first_never_calls),
          T(callback_drops_pending_ref), T(selfref_callbacks),
          T(callback_creates_refs), T(callbacks_on_callback),
          T(callback_allocates_and_collects), T(ref_created_during_del),
          T(finalizer_resurrects), T(ref_equality_and_hash),
          T(finalize_runs_on_death), T(finalize_call),
          T(finalize_detach_and_peek), T(finalize_errors),
          T(finalize_atexit), T(finalize_not_rerun_at_exit),
          T(alloc_failure_sweep))
