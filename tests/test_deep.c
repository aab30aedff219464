/*
 * test_deep.c — deallocation never recurses on the C stack: dropping the
 * head of a 10^7-tree_node chain, a 10^7-deep nested list or a 10^7-tree_node tree
 * completes on a thread whose stack is 256 KiB.  Also: finalizers that
 * allocate while a long chain is being freed.
 */
#include "internal.h"
#include "harness.h"
#include "support.h"

#include <pthread.h>

#define DEEP 10000000

typedef struct tree_node {
    OM_OBJECT_HEAD
    om_object *left;
    om_object *right;
} tree_node;

static int tree_node_traverse(om_object *self, om_visit_fn visit, void *arg) {
    tree_node *n = (tree_node *)self;
    int r = n->left ? visit(n->left, arg) : 0;
    return r ? r : (n->right ? visit(n->right, arg) : 0);
}

static void tree_node_clear(om_object *self) {
    tree_node *n = (tree_node *)self;
    om_object *l = n->left, *r = n->right;
    n->left = n->right = NULL;
    om_decref(l);
    om_decref(r);
}

static const om_type tree_node_type = {
    .name = "node", .size = sizeof(tree_node),
    .traverse = tree_node_traverse, .clear = tree_node_clear,
};


static void *drop(void *o) {
    om_decref(o);
    return NULL;
}

static void chain_of_ten_million(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *head = NULL;
    for (int i = 0; i < DEEP; i++) {
        tree_node *n = (tree_node *)om_new(rt, &tree_node_type);
        n->left = head;
        head = &n->om_head;
    }
    CHECK(om_object_count(rt) == DEEP);
    on_small_stack(drop, head);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void nested_list_ten_million_deep(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *inner = om_list_new(rt);
    for (int i = 0; i < DEEP; i++) {
        om_object *outer = om_list_new(rt);
        CHECK(om_list_append(outer, inner) == OM_OK);
        om_decref(inner);
        inner = outer;
    }
    on_small_stack(drop, inner);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

static void tree_of_ten_million(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object **nodes = malloc(DEEP * sizeof *nodes);
    CHECK(nodes != NULL);
    for (size_t i = 0; i < DEEP; i++)
        nodes[i] = om_new(rt, &tree_node_type);
    /* Heap layout: tree_node i owns 2i+1 and 2i+2; each child's creation
     * reference passes to its parent. */
    for (size_t i = 0; 2 * i + 1 < DEEP; i++) {
        ((tree_node *)nodes[i])->left = nodes[2 * i + 1];
        if (2 * i + 2 < DEEP)
            ((tree_node *)nodes[i])->right = nodes[2 * i + 2];
    }
    om_object *root = nodes[0];
    free(nodes);
    on_small_stack(drop, root);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

/* A chain mixing every container, each level holding the next. */
static void mixed_containers_deep(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *inner = om_int_new(rt, 0);
    for (int i = 0; i < 1000000; i++) {
        om_object *outer;
        switch (i % 3) {
        case 0: outer = om_tuple_pack(rt, 1, inner); break;
        case 1:
            outer = om_dict_new(rt);
            CHECK(om_dict_set_str(outer, "next", inner) == OM_OK);
            break;
        default:
            outer = om_list_new(rt);
            CHECK(om_list_append(outer, inner) == OM_OK);
        }
        om_decref(inner);
        inner = outer;
    }
    on_small_stack(drop, inner);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_runtime_free(rt) == 0);
}

/* Finalizers that allocate and drop objects while a chain is being freed,
 * and that see the chain die parent first. */
typedef struct fnode {
    OM_OBJECT_HEAD
    om_object *next;
    long id;
} fnode;

static long finalized, order_breaks, last_id;

static void fnode_finalize(om_object *self) {
    fnode *f = (fnode *)self;
    if (finalized && f->id != last_id - 1)
        order_breaks++;
    last_id = f->id;
    finalized++;
    om_object *tmp = om_list_new(om_runtime_of(self));
    om_list_append(tmp, self);   /* a new reference to self, dropped again */
    om_decref(tmp);
}

static void fnode_clear(om_object *self) {
    fnode *f = (fnode *)self;
    om_object *n = f->next;
    f->next = NULL;
    om_decref(n);
}

static const om_type fnode_type = {
    .name = "fnode", .size = sizeof(fnode),
    .clear = fnode_clear, .finalize = fnode_finalize,
};

static void *build_and_drop_finalized_chain(void *arg) {
    om_runtime *rt = arg;
    om_object *head = NULL;
    for (long i = 0; i < 100000; i++) {
        fnode *f = (fnode *)om_new(rt, &fnode_type);
        f->id = i;
        f->next = head;
        head = &f->om_head;
    }
    om_decref(head);
    return NULL;
}

static void finalizers_that_allocate_during_teardown(void) {
    om_runtime *rt = om_runtime_new(NULL);
    finalized = order_breaks = 0;
    on_small_stack(build_and_drop_finalized_chain, rt);
    CHECK(finalized == 100000);
    CHECK(order_breaks == 0);
    CHECK(om_object_count(rt) == 0);
    CHECK(om_check(rt) == OM_OK);
    CHECK(om_runtime_free(rt) == 0);
}

TEST_MAIN(T(chain_of_ten_million), T(nested_list_ten_million_deep),
          T(tree_of_ten_million), T(mixed_containers_deep),
          T(finalizers_that_allocate_during_teardown))
