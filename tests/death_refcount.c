/*
 * death_refcount.c — debug builds (OBJMEM_DEBUG >= 1) abort on refcount
 * misuse with a message naming the object's type.  Each case runs in a
 * child process; the parent checks it died of SIGABRT and what it said.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, dup2 */
#include "objmem.h"
#include "harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct node {
    OM_OBJECT_HEAD
    om_object *child;
} node;

/* A buggy clear that drops its child twice. */
static void double_drop_clear(om_object *self) {
    node *n = (node *)self;
    om_object *c = n->child;
    n->child = NULL;
    om_decref(c);
    om_decref(c);
}

static const om_type node_type = {.name = "node", .size = sizeof(node)};
static const om_type buggy_type = {
    .name = "buggy", .size = sizeof(node), .clear = double_drop_clear,
};

/* Run misuse() in a child; true when it aborted and its stderr contains
 * every string in `expect`. */
static int dies_saying(void (*misuse)(void), const char *expect1,
                       const char *expect2) {
    int fds[2];
    if (pipe(fds) != 0)
        return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        misuse();
        _exit(0); /* reached only when the misuse went unnoticed */
    }
    close(fds[1]);
    char text[1024] = {0};
    size_t got = 0;
    ssize_t n;
    while (got < sizeof text - 1 &&
           (n = read(fds[0], text + got, sizeof text - 1 - got)) > 0)
        got += (size_t)n;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("  child said: %s", text);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
           strstr(text, expect1) && strstr(text, expect2);
}

/* The checks read the freed block, so a neighbour keeps its pool and arena
 * mapped (a wholly empty arena goes back to the OS at once). */
static void decref_after_free(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *o = om_new(rt, &node_type);
    om_object *keep = om_new(rt, &node_type);
    (void)keep;
    om_decref(o);
    om_decref(o);
}

static void incref_after_free(void) {
    om_runtime *rt = om_runtime_new(NULL);
    om_object *o = om_new(rt, &node_type);
    om_object *keep = om_new(rt, &node_type);
    (void)keep;
    om_decref(o);
    om_incref(o);
}

static void decref_below_zero(void) {
    om_runtime *rt = om_runtime_new(NULL);
    node *n = (node *)om_new(rt, &buggy_type);
    n->child = om_new(rt, &node_type);
    om_decref(&n->om_head);
}

static void use_of_freed_object_is_caught(void) {
    CHECK(dies_saying(decref_after_free, "om_decref", "use of freed object"));
    CHECK(dies_saying(decref_after_free, "'node'", "om_decref"));
    CHECK(dies_saying(incref_after_free, "om_incref", "'node'"));
}

static void decref_below_zero_is_caught(void) {
    CHECK(dies_saying(decref_below_zero, "below zero", "'node'"));
}

TEST_MAIN(T(use_of_freed_object_is_caught), T(decref_below_zero_is_caught))
