/*
 * harness.h — the tests' tiny harness: TEST cases, CHECK assertions that
 * report and carry on, a reproducible random seed (printed, and accepted
 * back with --seed N), and a closing "N passed, N failed" line.
 */
#ifndef OM_TEST_HARNESS_H
#define OM_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int th_failed_checks;   /* failed CHECKs in the current test */
static uint64_t th_rng;        /* xorshift64* state, seeded by th_main */

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            th_failed_checks++;                                            \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__,        \
                    __LINE__, #cond);                                      \
        }                                                                  \
    } while (0)

static inline uint64_t th_random(void) {
    th_rng ^= th_rng >> 12;
    th_rng ^= th_rng << 25;
    th_rng ^= th_rng >> 27;
    return th_rng * 0x2545F4914F6CDD1Dull;
}

typedef struct th_test { const char *name; void (*fn)(void); } th_test;

/* Runs the tests (all, or those named on the command line) and returns the
 * process exit status. */
static int th_main(int argc, char **argv, const th_test *tests, size_t n) {
    uint64_t seed = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else
            only = argv[i];
    }
    if (!seed)
        seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    printf("seed %llu (rerun with --seed %llu)\n", (unsigned long long)seed,
           (unsigned long long)seed);
    int passed = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && strcmp(only, tests[i].name))
            continue;
        th_rng = seed + i * 0x9E3779B97F4A7C15ull;
        th_failed_checks = 0;
        tests[i].fn();
        printf("%s %s\n", th_failed_checks ? "FAIL" : "ok  ", tests[i].name);
        if (th_failed_checks)
            failed++;
        else
            passed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed || (passed == 0) ? 1 : 0;
}

#define TEST_MAIN(...)                                                     \
    int main(int argc, char **argv) {                                      \
        static const th_test tests[] = {__VA_ARGS__};                      \
        return th_main(argc, argv, tests, sizeof tests / sizeof tests[0]); \
    }
#define T(fn) {#fn, fn}

#endif
