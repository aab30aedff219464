/*
 * test_weakref_gc.c — weak references and the cycle collector: refs to the
 * garbage are cleared before any finalizer runs, only refs outside the
 * garbage get their callbacks (before the finalizers), refs inside it never
 * do, refs made meanwhile (by finalizers) are cleared before any clear
 * runs, resurrection by a finalizer or a callback, callbacks that allocate,
 * collect and drop refs, what om_gc_collect counts, the CPython
 * test_weakref.py / test_gc.py cases (named at each), and a randomised
 * comparison against a reachability model.
 *
 * Expected behaviour: ../shared/reference/cpython-semantics.md §4 ("What
 * is counted"), §5 and §12.  Refcount deaths are tests/test_weakref.c.
 */
#include "internal.h"
#include "harness.h"
#include "weak_support.h"

static node *as_node(om_object *o) { return (node *)o; }

static void set_slot(om_object *o, int i, om_object *value) {
    om_setref(&as_node(o)->slot[i], value);
}

/* Store a new reference the caller hands over. */
static void give_slot(om_object *o, int i, om_object *value) {
    set_slot(o, i, value);
    om_decref(value);
}

static om_object *held[8];

/* ---- callbacks and finalizers in a collection ----------------------------------- */

/* §5.3: callbacks of refs held from outside run during the collection,
 * before any finalizer, with the refs already dead; per object newest
 * callback ref first. */
static void callbacks_before_finalizers(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *a = new_node(rt, &wfin_type, 1);
    om_object *b = new_node(rt, &wfin_type, 2);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    cbrec ca1 = {.id = 11}, ca2 = {.id = 12}, cb1 = {.id = 21};
    om_object *ra1 = om_weakref_new(a, record_cb, &ca1);
    om_object *ra2 = om_weakref_new(a, record_cb, &ca2);
    om_object *rb1 = om_weakref_new(b, record_cb, &cb1);
    om_object *pa = om_weakref_new(a, NULL, NULL);
    om_decref(a);
    om_decref(b);
    CHECK(log_is(""));                 /* a cycle: nothing yet */
    CHECK(om_weakref_alive(ra1) && om_weakref_alive(pa));
    CHECK(om_gc_collect(rt, 2) == 2);  /* a and b; the refs live on */
    CHECK(ca1.calls == 1 && ca2.calls == 1 && cb1.calls == 1);
    CHECK(ca1.ref == ra1 && ca2.ref == ra2 && cb1.ref == rb1);
    CHECK(!ca1.alive_inside && !ca1.got_inside && !cb1.got_inside);
    CHECK(fin_calls[1] == 1 && fin_calls[2] == 1);
    int f1 = log_pos("F1"), f2 = log_pos("F2");
    int c11 = log_pos("c11"), c12 = log_pos("c12"), c21 = log_pos("c21");
    CHECK(c11 >= 0 && c12 >= 0 && c21 >= 0 && f1 >= 0 && f2 >= 0);
    CHECK(c12 < c11);                  /* newest first */
    CHECK(c11 < f1 && c11 < f2 && c21 < f1 && c21 < f2);
    CHECK(!om_weakref_alive(ra1) && !om_weakref_alive(pa) &&
          !om_weakref_alive(rb1));
    om_decref(ra1);
    om_decref(ra2);
    om_decref(rb1);
    om_decref(pa);
    finish(rt);
}

/* A finalizer looking through a ref held from outside sees it dead (all
 * refs to the garbage are cleared before any finalizer runs). */
static om_object *outside_ref;
static int fin_saw_alive = -1;

static void look_outside(node *self) {
    (void)self;
    om_object *got = om_weakref_get(outside_ref);
    fin_saw_alive = got != NULL;
    om_decref(got);
}

static void finalizer_sees_refs_cleared(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *a = new_node(rt, &wfin_type, 1);
    om_object *b = new_node(rt, &wnode_type, 2);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    outside_ref = om_weakref_new(b, NULL, NULL);
    on_finalize = look_outside;
    om_decref(a);
    om_decref(b);
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(fin_saw_alive == 0);
    om_decref(outside_ref);
    finish(rt);
}

/* Refs inside the garbage (held only by its members) never call back:
 * to another member, to itself's holder, or to an outside object that
 * survives the collection (the ref is unlinked from it) or dies later. */
static void garbage_refs_never_call(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    cbrec c1 = {.id = 1}, c2 = {.id = 2}, c3 = {.id = 3}, c4 = {.id = 4};
    om_object *a = new_node(rt, &wfin_type, 1);
    om_object *b = new_node(rt, &wfin_type, 2);
    om_object *out = new_node(rt, &wnode_type, 3);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    give_slot(a, 1, om_weakref_new(b, record_cb, &c1));
    give_slot(b, 1, om_weakref_new(a, record_cb, &c2));
    give_slot(a, 2, om_weakref_new(a, record_cb, &c3));
    give_slot(b, 2, om_weakref_new(out, record_cb, &c4));
    CHECK(om_weakref_count(out) == 1);
    om_decref(a);
    om_decref(b);
    /* a, b and their three refs to each other and to out */
    CHECK(om_gc_collect(rt, 2) == 6);
    CHECK(c1.calls == 0 && c2.calls == 0 && c3.calls == 0 && c4.calls == 0);
    CHECK(om_weakref_count(out) == 0);
    om_decref(out);
    CHECK(c4.calls == 0);
    finish(rt);
}

/* §4 "What is counted": a self-cycle holding a weakref to itself whose
 * callback is a fresh object held by the cycle counts 3; a reachable ref
 * that dies after its callback ran counts too (WeakValueDictionary entry
 * with a cyclic value: 2). */
static void drop_own_holder(cbrec *self) {
    CHECK(held[0] == self->ref);
    om_object *r = held[0];
    held[0] = NULL;
    om_decref(r);
}

static void what_is_counted(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    cbrec lam = {.id = 1};
    om_object *c = new_node(rt, &wnode_type, 1);
    set_slot(c, 0, c);
    give_slot(c, 1, om_weakref_new(c, record_cb, &lam));
    give_slot(c, 2, om_list_new(rt));   /* the lambda object */
    om_decref(c);
    CHECK(om_gc_collect(rt, 2) == 3);
    CHECK(lam.calls == 0);

    cbrec rm = {.id = 2, .action = drop_own_holder};
    om_object *v = new_node(rt, &wnode_type, 2);
    set_slot(v, 0, v);
    held[0] = om_weakref_new(v, record_cb, &rm);
    om_decref(v);
    CHECK(om_gc_collect(rt, 2) == 2);   /* v and its ref */
    CHECK(rm.calls == 1 && held[0] == NULL);
    /* Callback data that is a reachable object: it runs and may use it. */
    om_object *data = om_list_new(rt);
    cbrec use = {.id = 3, .ctx = data};
    v = new_node(rt, &wnode_type, 3);
    set_slot(v, 0, v);
    om_object *r = om_weakref_new(v, record_cb, &use);
    om_decref(v);
    CHECK(om_gc_collect(rt, 2) == 1);
    CHECK(use.calls == 1 && om_list_len(data) == 0);
    om_decref(r);
    om_decref(data);
    finish(rt);
}

/* A finalizer in the garbage that makes refs (one with a callback) to
 * another member: they are cleared before any clear() runs and the
 * callback never runs. */
static cbrec from_fin = {.id = 7};
static int clear_saw_alive;

static void make_ref_to_partner(node *self) {
    if (self->id != 1)
        return;
    held[1] = om_weakref_new(self->slot[0], record_cb, &from_fin);
    held[2] = om_weakref_new(self->slot[0], NULL, NULL);
    held[3] = om_weakref_new(&self->om_head, record_cb, &from_fin);
}

static void check_refs_dead(node *self) {
    (void)self;
    for (int i = 1; i <= 3; i++)
        if (held[i] && om_weakref_alive(held[i]))
            clear_saw_alive++;
}

static void finalizer_made_refs_cleared_before_clear(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    from_fin.calls = 0;
    clear_saw_alive = 0;
    om_object *a = new_node(rt, &wfin_type, 1);
    om_object *b = new_node(rt, &wfin_type, 2);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    on_finalize = make_ref_to_partner;
    on_clear = check_refs_dead;
    om_decref(a);
    om_decref(b);
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(clear_calls[1] >= 1 && clear_calls[2] >= 1);
    CHECK(clear_saw_alive == 0);
    CHECK(from_fin.calls == 0);
    for (int i = 1; i <= 3; i++) {
        CHECK(held[i] && !om_weakref_alive(held[i]));
        om_decref(held[i]);
        held[i] = NULL;
    }
    CHECK(from_fin.calls == 0);
    finish(rt);
}

/* A finalizer that resurrects: the object's refs were cleared before the
 * finalizer ran (3.13), their callbacks ran, and the object survives with
 * what it reaches; it then takes new refs, and dies later without being
 * finalized again. */
static om_object *lazarus;

static void resurrect_1(node *self) {
    if (self->id != 1)
        return;
    om_incref(&self->om_head);
    lazarus = &self->om_head;
}

static void finalizer_resurrects(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *a = new_node(rt, &wfin_type, 1);
    om_object *b = new_node(rt, &wfin_type, 2);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    cbrec ca = {.id = 11};
    om_object *pa = om_weakref_new(a, NULL, NULL);
    om_object *ra = om_weakref_new(a, record_cb, &ca);
    on_finalize = resurrect_1;
    om_decref(a);
    om_decref(b);
    CHECK(om_gc_collect(rt, 2) == 0);   /* resurrected: not counted */
    CHECK(lazarus == a);
    CHECK(as_node(a)->slot[0] == b && as_node(b)->slot[0] == a);
    CHECK(clear_calls[1] == 0 && clear_calls[2] == 0);
    CHECK(!om_weakref_alive(pa) && !om_weakref_alive(ra));
    CHECK(ca.calls == 1);
    CHECK(log_pos("c11") >= 0 && log_pos("c11") < log_pos("F1"));
    CHECK(om_weakref_count(a) == 0);
    om_object *pa2 = om_weakref_new(a, NULL, NULL);
    CHECK(pa2 != pa && om_weakref_alive(pa2));
    lazarus = NULL;
    om_decref(a);
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(fin_calls[1] == 1 && fin_calls[2] == 1);
    CHECK(!om_weakref_alive(pa2));
    om_decref(pa);
    om_decref(ra);
    om_decref(pa2);
    finish(rt);
}

/* A callback that resurrects a member of the garbage it can see through
 * its data (a borrowed pointer): the collector's resurrection check keeps
 * that member and what it reaches; nothing is cleared or freed twice. */
static void resurrect_data(cbrec *self) {
    om_object *o = self->ctx;
    om_incref(o);
    held[4] = o;
}

static void callback_resurrects_member(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *a = new_node(rt, &wnode_type, 1);
    om_object *b = new_node(rt, &wfin_type, 2);
    om_object *c = new_node(rt, &wnode_type, 3);
    set_slot(a, 0, b);
    set_slot(b, 0, a);
    set_slot(b, 1, c);
    cbrec ca = {.id = 1, .action = resurrect_data, .ctx = b};
    om_object *ra = om_weakref_new(a, record_cb, &ca);
    om_object *pc = om_weakref_new(c, NULL, NULL);
    om_decref(a);
    om_decref(b);
    om_decref(c);
    CHECK(om_gc_collect(rt, 2) == 0);
    CHECK(ca.calls == 1 && held[4] == b);
    CHECK(clear_calls[1] == 0 && clear_calls[2] == 0 && clear_calls[3] == 0);
    CHECK(fin_calls[2] == 1);
    CHECK(as_node(b)->slot[0] == a && as_node(b)->slot[1] == c);
    CHECK(!om_weakref_alive(pc));   /* cleared with the garbage, as CPython */
    CHECK(om_check(rt) == OM_OK);
    om_object *tmp = held[4];
    held[4] = NULL;
    om_decref(tmp);
    CHECK(om_gc_collect(rt, 2) == 3);
    CHECK(ca.calls == 1 && fin_calls[2] == 1);
    CHECK(clear_calls[1] >= 1 && clear_calls[2] >= 1 && clear_calls[3] >= 1);
    om_decref(ra);
    om_decref(pc);
    finish(rt);
}

/* Callbacks inside a collection that allocate, build a cycle, ask for a
 * collection (0: one is under way), and drop another pending ref. */
static ptrdiff_t nested_collect = -1;

static void busy_callback(cbrec *self) {
    om_runtime *rt = self->ctx;
    nested_collect = om_gc_collect(rt, 2);
    om_object *l = om_list_new(rt);
    CHECK(om_list_append(l, l) == OM_OK);
    om_decref(l);
    om_object *n = new_node(rt, &wnode_type, 50);
    held[5] = om_weakref_new(n, NULL, NULL);
    om_decref(n);
    om_object *r = held[0];   /* the other pending ref's last holder */
    held[0] = NULL;
    om_decref(r);
}

static void callbacks_busy_inside_collection(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *x = new_node(rt, &wnode_type, 1);
    set_slot(x, 0, x);
    cbrec c1 = {.id = 1}, c2 = {.id = 2, .action = busy_callback, .ctx = rt};
    held[0] = om_weakref_new(x, record_cb, &c1);
    om_object *r2 = om_weakref_new(x, record_cb, &c2);
    om_decref(x);
    /* x, and c1's ref freed after its callback ran */
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(nested_collect == 0);
    CHECK(log_is("c2 c1"));
    CHECK(held[5] && !om_weakref_alive(held[5]));
    om_decref(held[5]);
    held[5] = NULL;
    CHECK(om_gc_collect(rt, 2) == 1);   /* the list the callback made */
    om_decref(r2);
    finish(rt);
}

/* ---- CPython test_weakref.py / test_gc.py ------------------------------------------ */

/* test_callback_in_cycle: I holds J strongly and a ref to J whose
 * callback would use I; all garbage: the callback never runs. */
static void callback_in_cycle(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *J = new_node(rt, &wnode_type, 1);
    om_object *I = new_node(rt, &wnode_type, 2);
    set_slot(J, 0, J);
    set_slot(I, 0, J);
    cbrec cb = {.id = 1, .ctx = I};
    give_slot(I, 1, om_weakref_new(J, record_cb, &cb));
    set_slot(I, 2, I);
    om_decref(I);
    om_decref(J);
    CHECK(om_gc_collect(rt, 2) == 3);
    CHECK(cb.calls == 0);
    finish(rt);
}

/* test_callback_reachable_one_way: c2 -> c1 but not back, c2.wr = ref(c1,
 * c2.cb): the callback never runs. */
static void callback_reachable_one_way(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *c1 = new_node(rt, &wnode_type, 1);
    om_object *c2 = new_node(rt, &wnode_type, 2);
    set_slot(c2, 0, c2);
    set_slot(c2, 1, c1);
    cbrec cb = {.id = 1, .ctx = c2};
    give_slot(c2, 2, om_weakref_new(c1, record_cb, &cb));
    om_decref(c1);
    om_decref(c2);
    CHECK(om_gc_collect(rt, 2) == 3);
    CHECK(cb.calls == 0);
    finish(rt);
}

/* test_callback_in_cycle_resurrection: c1 <-> c2, each holding a ref to
 * the other whose callback would resurrect; a ref from outside to "class
 * C" (held by both) calls back once, and the rest never. */
static void callback_in_cycle_resurrection(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *C = new_node(rt, &wnode_type, 0);
    set_slot(C, 0, C);
    om_object *c1 = new_node(rt, &wnode_type, 1);
    om_object *c2 = new_node(rt, &wnode_type, 2);
    set_slot(c1, 0, C);
    set_slot(c2, 0, C);
    set_slot(c1, 1, c2);
    set_slot(c2, 1, c1);
    cbrec r1 = {.id = 1, .action = resurrect_data, .ctx = c2};
    cbrec r2 = {.id = 2, .action = resurrect_data, .ctx = c1};
    give_slot(c1, 2, om_weakref_new(c2, record_cb, &r1));
    give_slot(c2, 2, om_weakref_new(c1, record_cb, &r2));
    cbrec went = {.id = 9};
    om_object *wr = om_weakref_new(C, record_cb, &went);
    om_decref(c1);
    om_decref(c2);
    om_decref(C);
    CHECK(log_is(""));
    CHECK(om_gc_collect(rt, 2) == 5);
    CHECK(log_is("c9"));
    CHECK(held[4] == NULL);
    CHECK(!om_weakref_alive(wr));
    log_reset();
    CHECK(om_gc_collect(rt, 2) == 0);
    CHECK(log_is(""));
    om_decref(wr);
    finish(rt);
}

/* test_callbacks_on_callback: the "bound method" M (holding c) is the
 * callback of c.wr = ref(d) and the referent of d.wr = ref(M) and of an
 * external ref: only the external ref's callback runs. */
static void callbacks_on_callback(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    om_object *c = new_node(rt, &wnode_type, 1);
    om_object *d = new_node(rt, &wnode_type, 2);
    om_object *M = new_node(rt, &wnode_type, 3);
    set_slot(c, 0, d);
    set_slot(d, 0, c);
    set_slot(M, 0, c);
    set_slot(c, 1, M);   /* c.wr's callback keeps M alive */
    cbrec ccb = {.id = 1}, dcb = {.id = 2}, safe = {.id = 3};
    give_slot(c, 2, om_weakref_new(d, record_cb, &ccb));
    give_slot(d, 2, om_weakref_new(M, record_cb, &dcb));
    om_object *external = om_weakref_new(M, record_cb, &safe);
    om_object *got = om_weakref_get(external);
    CHECK(got == M);
    om_decref(got);
    om_decref(M);
    om_decref(c);
    om_decref(d);
    CHECK(log_is(""));
    CHECK(om_gc_collect(rt, 2) == 5);
    CHECK(log_is("c3"));
    CHECK(!om_weakref_alive(external));
    log_reset();
    CHECK(om_gc_collect(rt, 2) == 0);
    CHECK(log_is(""));
    om_decref(external);
    finish(rt);
}

/* test_bug1055820c / d: c0 in generation 2 is kept alive only by c1, a
 * self-cycle in generation 0; c2 is another self-cycle with a plain ref
 * c2wr.  Collecting generation 0 clears c1, which frees c0 by refcount;
 * c0's ref callback (c) or c0's finalizer (d) then looks through c2wr and
 * must find it dead: c2 is being cleared. */
static om_object *c2wr;
static int c2wr_seen = -1;

static void look_c2wr(void) {
    om_object *got = om_weakref_get(c2wr);
    c2wr_seen = got != NULL;
    om_decref(got);
}
static void look_c2wr_cb(cbrec *self) { (void)self; look_c2wr(); }
static void look_c2wr_fin(node *self) {
    if (self->id == 0)
        look_c2wr();
}

static void bug1055820(bool with_finalizer) {
    om_runtime *rt = quiet_runtime();
    reset();
    c2wr_seen = -1;
    om_object *c0 = new_node(rt, with_finalizer ? &wfin_type : &wnode_type, 0);
    set_slot(c0, 0, c0);
    CHECK(om_gc_collect(rt, 2) == 0);   /* c0 to generation 2 */
    om_object *c1 = new_node(rt, &wnode_type, 1);
    set_slot(c1, 0, c1);
    set_slot(c1, 1, c0);
    set_slot(c0, 0, NULL);   /* now only c1 keeps c0 alive */
    om_object *c2 = new_node(rt, &wnode_type, 2);
    set_slot(c2, 0, c2);
    c2wr = om_weakref_new(c2, NULL, NULL);
    cbrec cb = {.id = 1, .action = look_c2wr_cb};
    om_object *c0wr = NULL;
    if (with_finalizer)
        on_finalize = look_c2wr_fin;
    else
        c0wr = om_weakref_new(c0, record_cb, &cb);
    om_decref(c0);
    om_decref(c1);
    om_decref(c2);
    CHECK(om_gc_collect(rt, 0) == 2);   /* c1 and c2 */
    CHECK(c2wr_seen == 0);               /* ran, and saw c2 dead */
    CHECK(with_finalizer ? fin_calls[0] == 1 : cb.calls == 1);
    om_decref(c0wr);
    om_decref(c2wr);
    c2wr = NULL;
    finish(rt);
}

static void bug1055820c(void) { bug1055820(false); }
static void bug1055820d(void) { bug1055820(true); }

/* test_finalize in a cycle: weakref.finalize on a member of a garbage
 * cycle runs during the collection (its ref is held by the registry). */
static void finfn(void *data) {
    ++*(int *)data;
    log_event("f");
}

static void finalize_on_cycle_member(void) {
    om_runtime *rt = quiet_runtime();
    reset();
    int ran = 0;
    om_object *a = new_node(rt, &wfin_type, 1);
    set_slot(a, 0, a);
    om_object *f = om_finalize_new(a, finfn, &ran);
    om_decref(f);
    om_decref(a);
    /* a, and the finalizer's ref, which died after its callback ran
     * (§4: such refs count, as in CPython where the finalize object's
     * weakref is freed when the registry lets go). */
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(ran == 1);
    CHECK(log_is("f F1"));   /* callbacks before finalizers */
    finish(rt);
}

/* ---- randomised: graphs of nodes with weak refs, against a model ------------------ */

enum { RN = 48, RREFS = 96 };

typedef struct rref {
    om_object *ref;      /* the outside reference, if outside-held */
    int referent;        /* node index */
    int holder;          /* node index, or -1: held from outside */
    bool callback;
    bool dropped;        /* outside ref dropped before the drops of nodes */
    int id;              /* ref object identity (shared plain refs) */
    cbrec rec;
} rref;

static rref rrefs[RREFS];
static om_runtime *rand_rt;
static int bad_inside;   /* a callback saw its ref alive */

static void random_action(cbrec *self) {
    if (self->got_inside || self->alive_inside)
        bad_inside++;
    switch (self->id % 4) {
    case 0: {
        om_object *l = om_list_new(rand_rt);
        om_decref(l);
        break;
    }
    case 1:
        om_gc_collect(rand_rt, (int)(th_random() % 3));
        break;
    default:
        break;
    }
}

static void random_round(int round) {
    om_runtime *rt = om_runtime_new(NULL);
    rand_rt = rt;
    reset();
    bad_inside = 0;
    int nn = 2 + (int)(th_random() % (RN - 1));
    int nr = (int)(th_random() % RREFS);
    om_object *nodes[RN];
    bool edge[RN][RN];
    memset(edge, 0, sizeof edge);
    bool fin_type_of[RN];
    for (int i = 0; i < nn; i++) {
        fin_type_of[i] = th_random() % 3 == 0;
        nodes[i] = new_node(rt, fin_type_of[i] ? &wfin_type : &wnode_type, i);
    }
    /* Strong edges in slots 0..2; slot 3 may hold a ref. */
    for (int i = 0; i < nn; i++)
        for (int s = 0; s < 3; s++)
            if (th_random() % 3 == 0) {
                int j = (int)(th_random() % (uint64_t)nn);
                set_slot(nodes[i], s, nodes[j]);
                edge[i][j] = true;
            }
    for (int i = 0; i < nn; i++)   /* keep edge[] to what slots hold */
        for (int j = 0; j < nn; j++) {
            bool held_now = false;
            for (int s = 0; s < 3; s++)
                held_now = held_now || as_node(nodes[i])->slot[s] == nodes[j];
            edge[i][j] = held_now;
        }
    int next_id = 0;
    for (int k = 0; k < nr; k++) {
        rref *r = &rrefs[k];
        memset(r, 0, sizeof *r);
        r->referent = (int)(th_random() % (uint64_t)nn);
        r->callback = th_random() % 4 != 0;
        r->holder = th_random() % 3 == 0 ? (int)(th_random() % (uint64_t)nn)
                                         : -1;
        if (r->holder >= 0 && as_node(nodes[r->holder])->slot[3])
            r->holder = -1;   /* one ref per node */
        r->rec.id = 1000 + k;
        r->rec.action = random_action;
        om_object *ref = r->callback
                             ? om_weakref_new(nodes[r->referent], record_cb,
                                              &r->rec)
                             : om_weakref_new(nodes[r->referent], NULL, NULL);
        CHECK(ref != NULL);
        r->id = next_id++;
        if (!r->callback)   /* shared with an earlier plain ref? */
            for (int q = 0; q < k; q++)
                if (!rrefs[q].callback && rrefs[q].referent == r->referent)
                    r->id = rrefs[q].id;
        if (r->holder >= 0) {
            give_slot(nodes[r->holder], 3, ref);
        } else {
            r->ref = ref;
        }
    }
    /* Drop some outside refs first: their callbacks must never run. */
    for (int k = 0; k < nr; k++) {
        if (rrefs[k].holder < 0 && th_random() % 5 == 0) {
            rrefs[k].dropped = true;
            om_decref(rrefs[k].ref);
            rrefs[k].ref = NULL;
        }
    }
    /* Then drop some nodes (in random order) and collect. */
    bool root[RN];
    for (int i = 0; i < nn; i++)
        root[i] = th_random() % 3 == 0;
    int order[RN];
    for (int i = 0; i < nn; i++)
        order[i] = i;
    for (int i = nn - 1; i > 0; i--) {
        int j = (int)(th_random() % (uint64_t)(i + 1)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int i = 0; i < nn; i++) {
        int j = order[i];
        if (!root[j]) {
            om_object *o = nodes[j];
            nodes[j] = NULL;
            om_decref(o);
        }
    }
    CHECK(om_gc_collect(rt, 2) >= 0);
    /* The model: alive = reachable from the roots over strong edges. */
    bool alive[RN];
    int stack[RN], sp = 0;
    for (int i = 0; i < nn; i++) {
        alive[i] = root[i];
        if (root[i])
            stack[sp++] = i;
    }
    while (sp > 0) {
        int i = stack[--sp];
        for (int j = 0; j < nn; j++)
            if (edge[i][j] && !alive[j]) {
                alive[j] = true;
                stack[sp++] = j;
            }
    }
    int bad = 0;
/* Count a mismatch and say which check it was. */
#define BAD(n) (bad++, fprintf(stderr, "  round %d: mismatch %d\n", round, n))
    size_t expect_objects = 0;
    for (int i = 0; i < nn; i++) {
        expect_objects += alive[i];
        int fin = fin_type_of[i] ? 1 : 0;
        if (!alive[i] && (clear_calls[i] < 1 || fin_calls[i] != fin))
            BAD(1);
        if (alive[i] && (clear_calls[i] != 0 || fin_calls[i] != 0))
            BAD(2);
    }
    int ref_live[RREFS];
    memset(ref_live, 0, sizeof ref_live);
    for (int k = 0; k < nr; k++) {
        rref *r = &rrefs[k];
        if (r->rec.calls > 1)
            BAD(3);
        if (r->holder < 0) {
            if (r->dropped) {
                if (r->rec.calls != 0)
                    BAD(4);
                continue;
            }
            ref_live[r->id] = 1;
            bool should = alive[r->referent];
            if (om_weakref_alive(r->ref) != should)
                BAD(5);
            om_object *got = om_weakref_get(r->ref);
            if (should != (got != NULL) ||
                (got && as_node(got)->id != r->referent))
                BAD(6);
            om_decref(got);
            int expect = r->callback && !should ? 1 : 0;
            if (r->rec.calls != expect)
                BAD(7);
            if (r->rec.calls && r->rec.ref != r->ref)
                BAD(8);
        } else if (alive[r->holder]) {
            ref_live[r->id] = 1;
            bool should = alive[r->referent];
            int expect = r->callback && !should ? 1 : 0;
            if (r->rec.calls != expect)
                BAD(9);
        } else if (alive[r->referent] && r->rec.calls != 0) {
            BAD(10);   /* a ref dead with its holder, referent alive */
        }
    }
    /* Weak reference counts of the roots: distinct live ref objects. */
    for (int i = 0; i < nn; i++) {
        if (!nodes[i])
            continue;
        size_t expect = 0;
        for (int id = 0; id < next_id; id++) {
            if (!ref_live[id])
                continue;
            for (int k = 0; k < nr; k++)
                if (rrefs[k].id == id) {
                    expect += rrefs[k].referent == i;
                    break;
                }
        }
        if (om_weakref_count(nodes[i]) != expect)
            BAD(11);
    }
    if (bad || bad_inside)
        fprintf(stderr, "  round %d: %d mismatches, %d callbacks saw their "
                        "ref alive\n", round, bad, bad_inside);
    for (int id = 0; id < next_id; id++)
        expect_objects += (size_t)ref_live[id];
    if (om_object_count(rt) != expect_objects)
        BAD(12);
    CHECK(bad == 0 && bad_inside == 0);
#undef BAD
    for (int k = 0; k < nr; k++)
        om_decref(rrefs[k].ref);
    for (int i = 0; i < nn; i++)
        om_decref(nodes[i]);
    om_gc_collect(rt, 2);
    int twice = 0;   /* the final drops call back at most once more */
    for (int k = 0; k < nr; k++)
        twice += rrefs[k].rec.calls > 1;
    CHECK(twice == 0);
    finish(rt);
}

static void random_graphs_against_model(void) {
    for (int round = 0; round < 200; round++)
        random_round(round);
}

TEST_MAIN(T(callbacks_before_finalizers), T(finalizer_sees_refs_cleared),
          T(garbage_refs_never_call), T(what_is_counted),
          T(finalizer_made_refs_cleared_before_clear),
          T(finalizer_resurrects), T(callback_resurrects_member),
          T(callbacks_busy_inside_collection), T(callback_in_cycle),
          T(callback_reachable_one_way), T(callback_in_cycle_resurrection),
          T(callbacks_on_callback), T(bug1055820c), T(bug1055820d),
          T(finalize_on_cycle_member), T(random_graphs_against_model))
