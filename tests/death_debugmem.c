/*
 * death_debugmem.c — in debug mode (config.malloc_debug, any build level)
 * om_free and om_realloc abort on a damaged or already freed block, with a
 * report naming the function, the damage and the block's serial number.
 * Each case runs in a child process; the parent checks that it died of
 * SIGABRT and what its report said, and shows the report.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, dup2 */
#include "objmem.h"
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

static om_runtime *debug_runtime(void) {
    om_config c;
    om_config_init(&c);
    c.malloc_debug = 1;
    return om_runtime_new(&c);
}

/* Runs bug() in a child with stderr captured; true when the child aborted
 * and its report contains each of the strings after bug (NULL-ended). */
static bool dies_reporting(void (*bug)(void), ...) {
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        bug();
        _exit(0); /* the bug went unnoticed */
    }
    close(fds[1]);
    static char report[8192];
    size_t got = 0;
    ssize_t n;
    while (got < sizeof report - 1 &&
           (n = read(fds[0], report + got, sizeof report - 1 - got)) > 0)
        got += (size_t)n;
    report[got] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    printf("%s", report);
    bool ok = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    va_list ap;
    va_start(ap, bug);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        if (!strstr(report, s)) {
            printf("  (missing from the report: \"%s\")\n", s);
            ok = false;
        }
    }
    va_end(ap);
    return ok;
}

/* Each bug below allocates `before` blocks first, so that the damaged one's
 * serial is before + 1 and the report must name that number. */
static char *nth_block(om_runtime *rt, int before, size_t n) {
    for (int i = 0; i < before; i++)
        (void)om_malloc(rt, 8);
    return om_malloc(rt, n);
}

static void overrun_by_one(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 2, 10);
    p[10] = 'A';
    om_free(rt, p);
}

static void overrun_of_large_block(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 6, 3000);
    p[3005] = 'B';
    om_free(rt, p);
}

static void underrun_by_one(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 0, 24);
    p[-1] = 'C';
    om_free(rt, p);
}

/* Back across the guard into the size field. */
static void underrun_into_header(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 0, 40);
    memset(p - 32, 'D', 32);
    om_free(rt, p);
}

/* Over the guard, leaving it intact: only the serial number tells. */
static void header_damage_behind_the_guard(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 0, 64);
    memset(p - 24, 0, 8);
    om_free(rt, p);
}

/* A neighbour of the same size keeps the pool, and so the freed block's
 * memory, in use: an emptied pool's arena may be unmapped at once. */
static void double_free_small(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 4, 32);
    char *neighbour = om_malloc(rt, 32);
    (void)neighbour;
    om_free(rt, p);
    om_free(rt, p);
}

/* Other large blocks freed in between stay within the quarantine. */
static void double_free_large(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 1, 5000);
    om_free(rt, p);
    for (int i = 0; i < 10; i++)
        om_free(rt, om_malloc(rt, 1000 + (size_t)i));
    om_free(rt, p);
}

static void realloc_of_overrun_block(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 2, 100);
    memset(p, 'E', 101);
    (void)om_realloc(rt, p, 200);
}

static void realloc_of_freed_block(void) {
    om_runtime *rt = debug_runtime();
    char *p = nth_block(rt, 3, 16);
    char *neighbour = om_malloc(rt, 16);
    (void)neighbour;
    om_free(rt, p);
    (void)om_realloc(rt, p, 32);
}

static void overrun_is_reported(void) {
    CHECK(dies_reporting(overrun_by_one, "om_free: debug block at p=0x",
                         "serial 3, 10 bytes requested", "buffer overrun",
                         "at tail=0x", "are not all 0xFD",
                         "at tail+0: 0x41 *** OUCH",
                         "data at p: cd cd cd cd cd cd cd cd cd cd\n",
                         "(no allocation traceback: tracing is not on)",
                         "(debug block serial 3)", NULL));
    CHECK(dies_reporting(overrun_of_large_block, "om_free", "serial 7",
                         "3000 bytes requested", "buffer overrun",
                         "at tail+5: 0x42 *** OUCH", NULL));
}

static void underrun_is_reported(void) {
    CHECK(dies_reporting(underrun_by_one, "om_free", "serial 1",
                         "buffer underrun", "at p-1: 0x43 *** OUCH",
                         "at tail=0x", "are 0xFD, as expected", NULL));
    CHECK(dies_reporting(underrun_into_header, "om_free", "buffer underrun",
                         "serial field damaged (0x4444444444444444)",
                         "size field damaged", "at p-16: 0x44 *** OUCH",
                         "... and 8 more bad bytes", NULL));
    CHECK(dies_reporting(header_damage_behind_the_guard, "om_free",
                         "serial field damaged (0x0000000000000000)",
                         "64 bytes requested", "are 0xFD, as expected",
                         "damaged block header", NULL));
}

static void double_free_is_reported(void) {
    CHECK(dies_reporting(double_free_small, "om_free", "serial 5",
                         "double free", "are 0xDD", NULL));
    CHECK(dies_reporting(double_free_large, "om_free", "serial 2",
                         "5000 bytes requested", "double free",
                         "large-block quarantine", NULL));
}

static void realloc_checks_too(void) {
    CHECK(dies_reporting(realloc_of_overrun_block, "om_realloc", "serial 3",
                         "buffer overrun", "at tail+0: 0x45 *** OUCH", NULL));
    CHECK(dies_reporting(realloc_of_freed_block, "om_realloc", "serial 4",
                         "already freed", NULL));
}

TEST_MAIN(T(overrun_is_reported), T(underrun_is_reported),
          T(double_free_is_reported), T(realloc_checks_too))
