/*
 * test_gc.c — the cycle collector: cycles freed, counts and thresholds as
 * CPython keeps them, finalizers once (PEP 442), resurrection, statistics,
 * re-entrancy, failure injection, and random graphs checked against a
 * reachability model.
 */
#include "internal.h"
#include "harness.h"
#include "support.h"

/* A node with up to four references and an optional finalizer. */
static int finalized[4096];     /* finalizer calls per node id */
static om_object *lazarus;      /* where a resurrecting finalizer stores self */
static int resurrect_id = -1;   /* the node whose finalizer resurrects it */
static om_runtime *nested_rt;   /* set: finalizers try a nested collection */
static ptrdiff_t nested_result = -1;

static void node_clear(om_object *self) { node_drop_slots((node *)self); }

static void node_finalize(om_object *self) {
    node *n = (node *)self;
    finalized[n->id]++;
    if (n->id == resurrect_id) {
        om_incref(self);
        lazarus = self;
    }
    if (nested_rt)
        nested_result = om_gc_collect(nested_rt, 2);
}

static const om_type node_type = {
    .name = "node", .size = sizeof(node),
    .traverse = node_traverse, .clear = node_clear,
};
static const om_type fnode_type = {
    .name = "fnode", .size = sizeof(node),
    .traverse = node_traverse, .clear = node_clear,
    .finalize = node_finalize,
};

static om_object *new_node(om_runtime *rt, const om_type *t, int id) {
    node *n = (node *)om_new(rt, t);
    n->id = id;
    return &n->om_head;
}

static void link_to(om_object *from, int slot, om_object *to) {
    om_setref(&((node *)from)->slot[slot], to);
}

static void reset_finalized(void) {
    memset(finalized, 0, sizeof finalized);
    lazarus = NULL;
    resurrect_id = -1;
    nested_rt = NULL;
    nested_result = -1;
}

static om_runtime *quiet_runtime(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_gc_disable(rt); /* tests decide when collections run */
    return rt;
}

static void self_referencing_list(void) {
    om_runtime *rt = quiet_runtime();
    om_object *l = om_list_new(rt);
    CHECK(om_list_append(l, l) == OM_OK);
    CHECK(om_refcount(l) == 2);
    om_decref(l);
    CHECK(om_object_count(rt) == 1);      /* refcounting alone cannot */
    CHECK(om_gc_collect(rt, 2) == 1);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_gc_collect(rt, 2) == 0);
    finish(rt);
}

static void two_cycle_with_finalizers(void) {
    om_runtime *rt = quiet_runtime();
    reset_finalized();
    om_object *a = new_node(rt, &fnode_type, 1), *b = new_node(rt, &fnode_type, 2);
    link_to(a, 0, b);
    link_to(b, 0, a);
    om_decref(a);
    om_decref(b);
    CHECK(om_gc_collect(rt, 2) == 2);
    CHECK(finalized[1] == 1 && finalized[2] == 1);
    CHECK(om_object_count(rt) == 0);
    finish(rt);
}

static void counts_follow_cpython(void) {
    om_runtime *rt = quiet_runtime();
    size_t c[3];
    om_object *x = om_list_new(rt);
    om_gc_get_count(rt, c);
    CHECK(c[0] == 1);
    om_gc_collect(rt, 0);
    om_gc_get_count(rt, c);
    CHECK(c[0] == 0 && c[1] == 1 && c[2] == 0);
    om_gc_collect(rt, 1);
    om_gc_get_count(rt, c);
    CHECK(c[1] == 0 && c[2] == 1);
    om_gc_collect(rt, 2);
    om_gc_get_count(rt, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    /* Deallocations count down, never below zero. */
    om_object *y = om_list_new(rt);
    om_gc_get_count(rt, c);
    CHECK(c[0] == 1);
    om_decref(y);
    om_decref(x);
    om_gc_get_count(rt, c);
    CHECK(c[0] == 0);
    /* Untracked types do not count. */
    om_object *s = om_str_new(rt, "not tracked");
    om_gc_get_count(rt, c);
    CHECK(c[0] == 0 && !om_gc_is_tracked(s));
    om_decref(s);
    finish(rt);
}

static void thresholds_and_enable(void) {
    om_runtime *rt = om_runtime_new(NULL);
    size_t t[3];
    om_gc_get_threshold(rt, t);
    CHECK(t[0] == 2000 && t[1] == 10 && t[2] == 10);
    CHECK(om_gc_isenabled(rt));
    CHECK(om_gc_set_threshold(rt, 100, 10, 10) == OM_OK);
    om_gc_disable(rt);
    for (int i = 0; i < 500; i++) {          /* 500 garbage self-cycles */
        om_object *l = om_list_new(rt);
        om_list_append(l, l);
        om_decref(l);
    }
    CHECK(om_object_count(rt) == 500);       /* disabled: none collected */
    om_gc_enable(rt);
    for (int i = 0; i < 150; i++) {
        om_object *l = om_list_new(rt);
        om_decref(l);
        l = om_list_new(rt);
        om_list_append(l, l);
        om_decref(l);
    }
    om_gc_generation_stats st[3];
    om_gc_get_stats(rt, st);
    CHECK(st[0].collections + st[1].collections + st[2].collections > 0);
    CHECK(om_object_count(rt) < 650);        /* automatic runs freed some */
    om_gc_set_threshold(rt, 0, 10, 10);      /* 0: automatic off */
    size_t before = st[0].collections;
    for (int i = 0; i < 300; i++)
        (void)om_list_new(rt);               /* kept alive: counts up */
    om_gc_get_stats(rt, st);
    CHECK(st[0].collections == before);
    CHECK(om_gc_collect(rt, 3) == OM_ERR_ARG);
    CHECK(strstr(om_last_error(rt), "invalid generation") != NULL);
    CHECK(om_gc_collect(rt, -1) == OM_ERR_ARG);
    om_gc_collect(rt, 2);
    /* The 300 lists kept alive on purpose are leaks for the report. */
    rt->config.leak_report = 0;
    CHECK(om_runtime_free(rt) == 300);
}

static void resurrection(void) {
    om_runtime *rt = quiet_runtime();
    reset_finalized();
    resurrect_id = 7;
    om_object *a = new_node(rt, &fnode_type, 7);
    om_object *kid = om_list_new(rt);
    link_to(a, 0, a);
    link_to(a, 1, kid);
    om_decref(kid);
    om_decref(a);
    CHECK(om_gc_collect(rt, 2) == 0);        /* resurrected: not counted */
    CHECK(lazarus == a && finalized[7] == 1);
    CHECK(om_gc_is_finalized(a));
    /* It survived intact, with what it reaches. */
    CHECK(((node *)a)->slot[0] == a && ((node *)a)->slot[1] == kid);
    CHECK(om_list_len(kid) == 0);
    resurrect_id = -1;
    lazarus = NULL;
    om_decref(a);
    CHECK(om_gc_collect(rt, 2) == 2);        /* the node and its list */
    CHECK(finalized[7] == 1);                /* not finalized again */
    finish(rt);
}

static void many_cycles_and_one_lazarus(void) {
    om_runtime *rt = quiet_runtime();
    reset_finalized();
    resurrect_id = 100;
    for (int i = 0; i <= 100; i++) {
        om_object *n = new_node(rt, &fnode_type, i);
        link_to(n, 0, n);
        om_decref(n);
    }
    CHECK(om_gc_collect(rt, 2) == 100);
    CHECK(om_object_count(rt) == 1 && lazarus != NULL);
    om_object *l = lazarus;
    resurrect_id = -1;
    lazarus = NULL;
    om_decref(l);
    CHECK(om_gc_collect(rt, 2) == 1);
    finish(rt);
}

static void stats_and_nested_collect(void) {
    om_runtime *rt = quiet_runtime();
    reset_finalized();
    nested_rt = rt;
    for (int i = 0; i < 10; i++) {
        om_object *n = new_node(rt, &fnode_type, i);
        link_to(n, 0, n);
        om_decref(n);
    }
    CHECK(om_gc_collect(rt, 1) == 10);
    CHECK(nested_result == 0);               /* collecting: a no-op */
    om_gc_generation_stats st[3];
    CHECK(om_gc_get_stats(rt, st) == OM_OK);
    CHECK(st[1].collections == 1 && st[1].collected == 10);
    CHECK(st[0].collections == 0 && st[2].collected == 0);
    reset_finalized();
    finish(rt);
}

/* A finalizer that makes new cyclic garbage: collected by the next run. */
static void new_garbage_finalize(om_object *self) {
    om_object *l = om_list_new(om_runtime_of(self));
    om_list_append(l, l);
    om_decref(l);
}
static const om_type maker_type = {
    .name = "maker", .size = sizeof(node), .traverse = node_traverse,
    .clear = node_clear, .finalize = new_garbage_finalize,
};

static void finalizer_making_garbage(void) {
    om_runtime *rt = quiet_runtime();
    om_object *m = new_node(rt, &maker_type, 0);
    link_to(m, 0, m);
    om_decref(m);
    CHECK(om_gc_collect(rt, 2) == 1);
    CHECK(om_object_count(rt) == 1);         /* the finalizer's new cycle */
    CHECK(om_gc_collect(rt, 2) == 1);
    finish(rt);
}

static void generations_and_tracking(void) {
    om_runtime *rt = quiet_runtime();
    om_object *keep = om_list_new(rt);
    CHECK(om_gc_is_tracked(keep));
    om_object *i = om_int_new(rt, 1);
    CHECK(!om_gc_is_tracked(i) && !om_gc_is_finalized(i));
    CHECK(om_gen_of(keep->om_refword_) == 0);
    om_gc_collect(rt, 0);
    CHECK(om_gen_of(keep->om_refword_) == 1);
    om_gc_collect(rt, 1);
    CHECK(om_gen_of(keep->om_refword_) == 2);
    /* A young collection leaves old cycles alone; a full one finds them. */
    om_object *old = om_list_new(rt);
    om_list_append(old, old);
    om_gc_collect(rt, 1);                    /* old is generation 2 now */
    om_decref(old);
    CHECK(om_gc_collect(rt, 0) == 0 && om_gc_collect(rt, 1) == 0);
    CHECK(om_gc_collect(rt, 2) == 1);
    om_decref(i);
    om_decref(keep);
    finish(rt);
}

static void runtime_free_collects_cycles(void) {
    om_runtime *rt = quiet_runtime();
    om_object *a = om_list_new(rt), *d = om_dict_new(rt);
    om_list_append(a, d);
    om_dict_set_str(d, "back", a);
    om_decref(a);
    om_decref(d);
    CHECK(om_runtime_free(rt) == 0);
}

/* Collections with nothing to gather, before the collector ever made its
 * work arrays: in a runtime that never had an object (freeing it collects
 * once more), and in one whose only object died by refcount.  Clang's
 * UBSan once caught the collection offsetting a null array here. */
static void empty_runtime_collects_and_frees(void) {
    om_runtime *rt = quiet_runtime();
    CHECK(om_runtime_free(rt) == 0);
    rt = quiet_runtime();
    for (int g = 0; g <= 2; g++)
        CHECK(om_gc_collect(rt, g) == 0);
    om_gc_generation_stats stats[3];
    CHECK(om_gc_get_stats(rt, stats) == OM_OK);
    for (int g = 0; g <= 2; g++)
        CHECK(stats[g].collections == 1 && stats[g].collected == 0);
    CHECK(om_runtime_free(rt) == 0);
    rt = quiet_runtime();
    om_decref(om_list_new(rt));
    CHECK(om_runtime_free(rt) == 0);
}

static void collection_out_of_memory(void) {
    om_runtime *rt = quiet_runtime();
    om_object *l = om_list_new(rt);
    om_list_append(l, l);
    om_decref(l);
    for (uint64_t n = 1; n <= 2; n++) {
        om_debug_fail_alloc(rt, n);
        CHECK(om_gc_collect(rt, 2) == OM_ERR_NOMEM);
        CHECK(strstr(om_last_error(rt), "om_gc_collect") != NULL);
        CHECK(om_object_count(rt) == 1);     /* nothing changed */
        CHECK(om_check(rt) == OM_OK);
    }
    om_debug_fail_alloc(rt, 0);
    CHECK(om_gc_collect(rt, 2) == 1);
    finish(rt);
}

/* A young collection walks only the young range of each young pool.  In a
 * pool of old objects, young objects made in holes on either side of that
 * range, also when the pool's young objects were promoted to generation 1
 * (so the range must widen, not start afresh) or when one is tracked late
 * (GC_MANUAL), must all be found. */
static const om_type manual_node_type = {
    .name = "manual node", .size = sizeof(node), .flags = OM_TYPE_GC_MANUAL,
    .traverse = node_traverse, .clear = node_clear,
};

enum { OLD = 600 };

/* Free old[i], making a hole in the pool; returns its address.  Holes are
 * reused last made first. */
static om_object *hole(om_object **old, int i) {
    om_object *o = old[i];
    om_decref(o);
    old[i] = NULL;
    return o;
}

/* A cycle of n objects dropped by its makers. */
static void close_cycle(om_object **objs, int n) {
    for (int i = 0; i < n; i++)
        link_to(objs[i], 0, objs[(i + 1) % n]);
    for (int i = 0; i < n; i++)
        om_decref(objs[i]);
}

static void young_ranges_in_old_pools(void) {
    om_runtime *rt = quiet_runtime();
    om_object *old[OLD];
    for (int i = 0; i < OLD; i++)
        old[i] = new_node(rt, &node_type, i);
    CHECK(om_pool_of(old[0]) == om_pool_of(old[OLD - 1]));
    om_gc_collect(rt, 2);                    /* all old, no young pool */

    /* A generation-1 object high in the pool, then a young one low. */
    om_object *low = hole(old, 10), *high = hole(old, 590);
    om_object *c1[2];
    c1[0] = new_node(rt, &node_type, 1000);
    CHECK(c1[0] == high);
    CHECK(om_gc_collect(rt, 0) == 0);        /* generation 1 now */
    c1[1] = new_node(rt, &node_type, 1001);
    CHECK(c1[1] == low);
    close_cycle(c1, 2);
    CHECK(om_gc_collect(rt, 0) == 0);        /* c1[0] holds c1[1] */
    CHECK(om_gc_collect(rt, 1) == 2);
    CHECK(om_check(rt) == OM_OK);

    /* The pool is old again; an object tracked late, above the range. */
    high = hole(old, 591);
    low = hole(old, 11);
    om_object *c2[2];
    c2[0] = new_node(rt, &node_type, 1002);
    c2[1] = new_node(rt, &manual_node_type, 1003);
    CHECK(c2[0] == low && c2[1] == high && !om_gc_is_tracked(c2[1]));
    om_gc_track(c2[1]);
    close_cycle(c2, 2);
    CHECK(om_gc_collect(rt, 0) == 2);
    CHECK(om_check(rt) == OM_OK);

    /* The pool still young (generation 1 is empty): widened both ways,
     * past the range c2 left. */
    high = hole(old, 593);
    low = hole(old, 9);
    om_object *mid = hole(old, 300);
    om_object *c3[3];
    for (int i = 0; i < 3; i++)
        c3[i] = new_node(rt, &node_type, 1004 + i);
    CHECK(c3[0] == mid && c3[1] == low && c3[2] == high);
    close_cycle(c3, 3);
    CHECK(om_gc_collect(rt, 0) == 3);
    CHECK(om_check(rt) == OM_OK);
    for (int i = 0; i < OLD; i++)
        om_decref(old[i]);
    CHECK(om_object_count(rt) == 0);
    finish(rt);
}

/* Young pools whose objects all died, so that their pools were retired and
 * their arenas possibly released and mapped again, leave stale entries in
 * the young-pool list; the young cycles made afterwards, in the same
 * address range or not, are all found by young collections. */
static void young_cycles_after_arena_reuse(void) {
    om_runtime *rt = quiet_runtime();
    enum { MANY = 40000, PAIRS = 3000 };  /* 64-byte blocks: 2.4 MiB */
    for (int round = 0; round < 4; round++) {
        om_object *head = new_node(rt, &node_type, 0), *tail = head;
        for (int i = 1; i < MANY; i++) {
            om_object *n = new_node(rt, &node_type, i);
            link_to(tail, 0, n);
            om_decref(n);
            tail = n;
        }
        if (round % 2)
            CHECK(om_gc_collect(rt, 0) == 0);
        om_decref(head);                     /* all freed by refcounting */
        CHECK(om_object_count(rt) == 0);
        for (int i = 0; i < PAIRS; i++) {
            om_object *x = new_node(rt, &node_type, i);
            om_object *y = new_node(rt, &node_type, i);
            link_to(x, 0, y);
            link_to(y, 0, x);
            om_decref(x);
            om_decref(y);
        }
        CHECK(om_gc_collect(rt, round % 2) == 2 * PAIRS);
        CHECK(om_object_count(rt) == 0);
        CHECK(om_check(rt) == OM_OK);
        om_pool_trim(rt);                    /* unmap what is empty */
    }
    finish(rt);
}

/* Random graphs: nodes with random edges, some held from outside, and in
 * half the rounds one unheld node whose finalizer resurrects it.  After the
 * outside references go and a collection runs, exactly the nodes that
 * neither a held node nor the resurrected one reaches are gone (whether
 * refcounting or the collector freed them), each finalized at most once. */
enum { GRAPH = 400 };

static void random_graphs_against_a_model(void) {
    int resurrections = 0;
    for (int round = 0; round < 20; round++) {
        om_runtime *rt = quiet_runtime();
        reset_finalized();
        om_object *nodes[GRAPH];
        int edges[GRAPH][4];
        bool held[GRAPH];
        for (int i = 0; i < GRAPH; i++)
            nodes[i] = new_node(rt, th_random() % 2 ? &fnode_type : &node_type, i);
        for (int i = 0; i < GRAPH; i++) {
            for (int s = 0; s < 4; s++) {
                edges[i][s] = th_random() % 3 ? (int)(th_random() % GRAPH) : -1;
                if (edges[i][s] >= 0)
                    link_to(nodes[i], s, nodes[edges[i][s]]);
            }
            held[i] = th_random() % 10 == 0;
        }
        /* Model: what the held nodes reach; then, in half the rounds, one
         * finalizable node they do not reach resurrects (it is garbage, so
         * it is finalized, by refcounting or by the collector), and what it
         * reaches lives too. */
        bool alive[GRAPH] = {false};
        int stack[GRAPH], top = 0;
        for (int i = 0; i < GRAPH; i++)
            if (held[i])
                alive[i] = true, stack[top++] = i;
        int lazarus_node = -1;
        for (int pass = 0; pass < 2; pass++) {
            while (top) {
                int i = stack[--top];
                for (int s = 0; s < 4; s++) {
                    int j = edges[i][s];
                    if (j >= 0 && !alive[j])
                        alive[j] = true, stack[top++] = j;
                }
            }
            int candidates[GRAPH], nc = 0;
            for (int i = 0; i < GRAPH; i++)
                if (!alive[i] && nodes[i]->om_type_ == &fnode_type)
                    candidates[nc++] = i;
            if (pass == 0 && round % 2 == 0 && nc > 0) {
                int r = candidates[th_random() % (size_t)nc];
                lazarus_node = resurrect_id = r;
                alive[r] = true;
                stack[top++] = r;
                resurrections++;
            }
        }
        size_t expected_alive = 0;
        for (int i = 0; i < GRAPH; i++)
            expected_alive += alive[i];
        for (int i = 0; i < GRAPH; i++)
            if (!held[i])
                om_decref(nodes[i]);
        /* Refcounting already freed the acyclic garbage.  Every node is in
         * generation 0, so collecting generation 1 or 2 covers them all. */
        size_t before = om_object_count(rt);
        ptrdiff_t found = om_gc_collect(rt, 1 + (int)(th_random() % 2));
        CHECK(om_object_count(rt) == expected_alive);
        CHECK((size_t)found == before - expected_alive);
        for (int i = 0; i < GRAPH; i++) {
            if (held[i]) {
                CHECK(finalized[i] == 0);
                CHECK(om_refcount(nodes[i]) >= 1);
            } else if (!alive[i]) {
                CHECK(finalized[i] <= 1);
            }
        }
        if (lazarus_node >= 0) {
            CHECK(lazarus == nodes[lazarus_node]);
            CHECK(finalized[lazarus_node] == 1);
        }
        CHECK(om_check(rt) == OM_OK);
        resurrect_id = -1;
        om_decref(lazarus);
        lazarus = NULL;
        for (int i = 0; i < GRAPH; i++)
            if (held[i])
                om_decref(nodes[i]);
        om_gc_collect(rt, 2);
        for (int i = 0; i < GRAPH; i++)
            CHECK(finalized[i] <= 1);
        finish(rt);
    }
    CHECK(resurrections >= 5); /* the resurrection path was exercised */
}

TEST_MAIN(T(self_referencing_list), T(two_cycle_with_finalizers),
          T(counts_follow_cpython), T(thresholds_and_enable), T(resurrection),
          T(many_cycles_and_one_lazarus), T(stats_and_nested_collect),
          T(finalizer_making_garbage), T(generations_and_tracking),
          T(runtime_free_collects_cycles),
          T(empty_runtime_collects_and_frees), T(collection_out_of_memory),
          T(young_ranges_in_old_pools), T(young_cycles_after_arena_reuse),
          T(random_graphs_against_a_model))
