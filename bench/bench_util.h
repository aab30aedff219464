/*
 * bench_util.h — what every benchmark program measures with: a monotonic
 * clock, the process's resident bytes, and a sink the timed loops store to.
 */
#ifndef OM_BENCH_UTIL_H
#define OM_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Every pointer a timed loop produces is stored here: a store to a volatile
 * object is observable, so the compiler can neither drop an allocate/free
 * pair (gcc and clang otherwise do) nor hoist the work out of the loop. */
static void *volatile sink;

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Resident bytes now: the second field of /proc/self/statm (pages), the
 * source the Python scripts read too.  Exits with status 2 when unreadable,
 * as every benchmark failure does. */
static inline size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    int got = f ? fscanf(f, "%lu %lu", &size, &resident) : 0;
    if (f)
        fclose(f);
    if (got != 2) {
        fputs("bench: cannot read /proc/self/statm\n", stderr);
        exit(2);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#endif
