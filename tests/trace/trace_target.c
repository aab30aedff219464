/*
 * trace_target.c — a program with known allocation sites, sizes and
 * counts, for objmem-trace's tests (test_trace.py).  Each allocating call
 * is alone on its line and marked "@site NAME", so the test finds the
 * line the report must name.  The mode (argv[1]) picks a scenario; the
 * program prints what the test needs to know (child pids) on stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Blocks kept to the end; a global so nothing is optimised away. */
static void *keep[100000];
static size_t nkeep;

#define NOINLINE __attribute__((noinline))

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

NOINLINE static void sites(void) {
    for (int i = 0; i < 10; i++)
        keep[nkeep++] = malloc(100); /* @site malloc */
    for (int i = 0; i < 5; i++)
        keep[nkeep++] = calloc(3, 40); /* @site calloc */
    void *p = malloc(50); /* @site realloc_from */
    p = realloc(p, 300); /* @site realloc_to */
    keep[nkeep++] = p;
    keep[nkeep++] = reallocarray(NULL, 7, 8); /* @site reallocarray */
    void *q = NULL;
    if (posix_memalign(&q, 64, 200) == 0) /* @site posix_memalign */
        keep[nkeep++] = q;
    keep[nkeep++] = aligned_alloc(32, 64); /* @site aligned_alloc */
    keep[nkeep++] = memalign(128, 72); /* @site memalign */
    keep[nkeep++] = valloc(1000); /* @site valloc */
    keep[nkeep++] = pvalloc(100); /* @site pvalloc */
    void *z = malloc(77); /* @site realloc_zero */
    z = realloc(z, 0);
    if (malloc_usable_size(keep[0]) < 100)
        abort();
    /* Live at the peak, gone at the end. */
    void *gone[20];
    for (int i = 0; i < 20; i++)
        gone[i] = malloc(33); /* @site freed */
    void *big = malloc(1 << 20); /* @site big */
    memset(big, 1, 1 << 20);
    free(big);
    for (int i = 0; i < 20; i++)
        free(gone[i]);
}

static void *thread_main(void *arg) {
    void **mine = arg;
    for (int i = 0; i < 1000; i++)
        mine[i] = malloc(24); /* @site thread_keep */
    for (int i = 0; i < 10000; i++) {
        void *p = malloc(16); /* @site thread_churn */
        free(p);
    }
    return NULL;
}

NOINLINE static void threads(void) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, thread_main, keep + 1000 * i);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    nkeep = 4000;
}

NOINLINE static void forked(void) {
    for (int i = 0; i < 3; i++)
        keep[nkeep++] = malloc(111); /* @site parent_before */
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 2; i++)
            keep[nkeep++] = malloc(222); /* @site child_only */
        exit(0);
    }
    printf("child %d\n", (int)pid);
    int status;
    waitpid(pid, &status, 0);
    keep[nkeep++] = malloc(333); /* @site parent_after */
}

/* Parent and child make the same allocations after the fork: sampled,
 * each must draw its own samples. */
NOINLINE static void forked_alike(void) {
    fflush(stdout);
    pid_t pid = fork();
    for (int i = 0; i < 4000; i++) {
        keep[nkeep++] = malloc(500); /* @site alike_a */
        keep[nkeep++] = malloc(700); /* @site alike_b */
        keep[nkeep++] = malloc(900); /* @site alike_c */
        keep[nkeep++] = malloc(1100); /* @site alike_d */
    }
    if (pid == 0)
        exit(0);
    printf("child %d\n", (int)pid);
    int status;
    waitpid(pid, &status, 0);
}

NOINLINE static void exec_self(const char *self) {
    keep[nkeep++] = malloc(444); /* @site before_exec */
    fflush(stdout);
    execl(self, self, "sites", (char *)NULL);
    perror("execl");
    exit(1);
}

/* As CPython's subprocess does: vfork, close every inherited descriptor
 * (the recording's too), exec.  The parent's recording must go on. */
NOINLINE static void vforked(void) {
    pid_t pid = vfork();
    if (pid == 0) {
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    keep[nkeep++] = malloc(666); /* @site after_vfork */
}

/* As a daemon does: close every descriptor it did not open, and open
 * others, which get the numbers back. */
NOINLINE static void close_fds(void) {
    keep[nkeep++] = malloc(777); /* @site before_close */
    sleep_ms(50);
    for (int fd = 3; fd < 1024; fd++)
        close(fd);
    for (int i = 0; i < 8; i++)
        if (open("/dev/null", O_RDONLY) < 0)
            abort();
    keep[nkeep++] = malloc(888); /* @site after_close */
    sleep_ms(50);
}

NOINLINE static void killed(void) {
    for (int i = 0; i < 2; i++)
        keep[nkeep++] = malloc(555); /* @site before_kill */
    sleep_ms(400); /* several flushes at the test's interval */
    raise(SIGKILL);
}

/* Known leaks for `leaks`: one helper allocates for two callers, so
 * that the stacks differ below frame #0; a block freed is no leak. */
NOINLINE static void *leak_helper(size_t n) {
    return malloc(n); /* @site leak_helper */
}

NOINLINE static void leaky(void) {
    for (int i = 0; i < 2; i++)
        keep[nkeep++] = leak_helper(2048); /* @site leak_a */
    for (int i = 0; i < 3; i++)
        keep[nkeep++] = leak_helper(100); /* @site leak_b */
    free(leak_helper(5000)); /* @site not_leaked */
}

/* Nothing left at exit: every block is freed. */
NOINLINE static void tidy(void) {
    for (int i = 0; i < 10; i++)
        keep[nkeep++] = malloc(64); /* @site tidy */
    while (nkeep)
        free(keep[--nkeep]);
}

/* Two runs, `steps 1` and `steps 3`, with known differences for `diff`:
 * a site growing with the step, one the same in both, one only in the
 * first run, one only in later runs.  Each keeps its blocks to the end,
 * and a temporary block raises the peak by the step too. */
NOINLINE static void steps(int n) {
    for (int i = 0; i < n; i++)
        keep[nkeep++] = malloc(100); /* @site step_grow */
    keep[nkeep++] = malloc(500); /* @site step_same */
    if (n == 1)
        keep[nkeep++] = malloc(250); /* @site step_first */
    else
        keep[nkeep++] = malloc(777); /* @site step_later */
    void *tmp = malloc((size_t)n * 10000); /* @site step_temp */
    memset(tmp, 1, (size_t)n * 10000);
    free(tmp);
}

/* A wide flame graph: 1 MiB down a chain of calls, and 8 bytes in a
 * stack of their own, far narrower than a pixel beside it. */
NOINLINE static void chain(int depth) {
    if (depth > 0)
        chain(depth - 1);
    else
        keep[nkeep++] = malloc(1 << 20); /* @site wide_big */
}

NOINLINE static void *tiny(void) {
    return malloc(8); /* @site wide_tiny */
}

NOINLINE static void wide(void) {
    chain(4);
    keep[nkeep++] = tiny();
}

/* Many blocks of known sizes at known sites, for sampled recording: the
 * estimates per site are checked against these figures.  The churn site's
 * blocks are all freed. */
static void *sampled_blocks[130000];

NOINLINE static void sampled(void) {
    size_t n = 0;
    for (int i = 0; i < 100000; i++)
        sampled_blocks[n++] = malloc(64); /* @site sample_small */
    for (int i = 0; i < 20000; i++)
        sampled_blocks[n++] = malloc(1000); /* @site sample_mid */
    for (int i = 0; i < 50; i++)
        sampled_blocks[n++] = malloc(100000); /* @site sample_big */
    for (int i = 0; i < 200000; i++)
        free(malloc(256)); /* @site sample_churn */
    for (int i = 0; i < 5000; i++) {
        void *p = malloc(16); /* @site sample_realloc_from */
        sampled_blocks[n++] = realloc(p, 512); /* @site sample_realloc_to */
    }
}

/* Whether the C library still takes this process for single-threaded
 * (a sampled recording starts no thread), after allocating steadily for
 * 100 ms, so that a sampled recording's events take timeline samples. */
NOINLINE static void single(void) {
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        for (int i = 0; i < 100; i++)
            free(malloc(4096));
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 +
                 (now.tv_nsec - start.tv_nsec) / 1000000 < 100);
    printf("single-threaded %d\n", (int)__libc_single_threaded);
}

/* 400,000 blocks alive at once.  Sampled at every byte, the recorder's
 * trace table passes 4 MiB and moves to huge-page mappings (recorder.c),
 * grows on them, and is given back as the blocks go. */
static void *many_blocks[400000];

NOINLINE static void many(void) {
    for (int i = 0; i < 400000; i++)
        many_blocks[i] = malloc(16); /* @site many */
    for (int i = 0; i < 400000; i += 2)
        free(many_blocks[i]);
}

/* What an exact recording's block headers (tools/trace/exact.c) must not
 * change: the program prints what it sees of its blocks, and the test
 * compares the output of a traced run with an untraced one's.  Every
 * block is filled to its full size, so that an overlap with a header or
 * with the C library's own chunk headers breaks the comparison or makes
 * the C library abort. */
static void fill(void *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        ((unsigned char *)p)[i] = (unsigned char)(seed + i);
}

static bool filled(const void *p, size_t n, unsigned char seed) {
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)(seed + i))
            return false;
    return true;
}

NOINLINE static void blocks(void) {
    static const size_t aligns[] = {8, 16, 32, 64, 256, 4096, 65536, 2u << 20};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        size_t a = aligns[i], n = 3 * a + 5;
        void *p = NULL, *q = aligned_alloc(a, n), *r = memalign(a, n);
        int e = posix_memalign(&p, a, n);
        printf("align %zu: posix_memalign %d %d, aligned_alloc %d, memalign %d\n",
               a, e, p && (uintptr_t)p % a == 0, q && (uintptr_t)q % a == 0,
               r && (uintptr_t)r % a == 0);
        fill(p, n, 1);
        fill(q, n, 2);
        fill(r, n, 3);
        /* An aligned block resized keeps its contents, either way. */
        p = realloc(p, 2 * n);
        q = realloc(q, n / 2);
        printf("  realloc grown %d, shrunk %d\n", p && filled(p, n, 1),
               q && filled(q, n / 2, 2));
        fill(p, 2 * n, 4);
        printf("  usable %d %d %d\n", malloc_usable_size(p) >= 2 * n,
               malloc_usable_size(q) >= n / 2, malloc_usable_size(r) >= n);
        free(p);
        free(q);
        free(r);
    }
    /* Whatever the C library refuses, it refuses traced too. */
    void *p = NULL;
    printf("posix_memalign(24) %d, posix_memalign(3) %d\n",
           posix_memalign(&p, 24, 10), posix_memalign(&p, 3, 10));
    /* volatile: compilers warn of sizes they can see are too large. */
    volatile size_t too_large = SIZE_MAX - 8, half = SIZE_MAX / 2;
    errno = 0;
    void *huge = malloc(too_large);
    printf("malloc(SIZE_MAX - 8) %s, errno %s\n", huge ? "a block" : "NULL",
           errno == ENOMEM ? "ENOMEM" : "other");
    errno = 0;
    huge = calloc(half, 4);
    printf("calloc overflowing %s, errno %s\n", huge ? "a block" : "NULL",
           errno == ENOMEM ? "ENOMEM" : "other");
    /* The usable size is the program's to write, all of it. */
    for (size_t n = 1; n < 300; n += 7) {
        unsigned char *b = malloc(n);
        size_t usable = malloc_usable_size(b);
        fill(b, usable, (unsigned char)n);
        b = realloc(b, usable + 40);
        printf("%s", b && filled(b, usable, (unsigned char)n) ? "" : "usable bytes lost\n");
        free(b);
    }
    /* calloc zeroes, including memory the C library had handed out. */
    for (int i = 0; i < 100; i++) {
        unsigned char *b = malloc(200);
        fill(b, 200, 7);
        free(b);
        b = calloc(50, 4);
        for (int j = 0; j < 200; j++)
            if (b[j])
                printf("calloc not zero at %d\n", j);
        free(b);
    }
    /* realloc(p, 0) frees p and gives NULL, as the C library's does. */
    void *z = malloc(100);
    z = realloc(z, 0);
    printf("realloc(p, 0) %s\n", z ? "a block" : "NULL");
    free(z);
    char *s = strdup("a string from the C library");
    printf("%s\n", s);
    free(s);
    fflush(stdout);
}

/* Freeing a block twice, and freeing a pointer into a block: the C
 * library aborts the program, and so does the tracer. */
NOINLINE static void double_free(void) {
    void *p = malloc(40);
    free(p);
    free(p);
}

NOINLINE static void bad_free(void) {
    char *p = calloc(1, 64);
    volatile size_t inside = 32; /* volatile: compilers warn of it */
    free(p + inside);
}

/* An allocation-heavy loop for timing (docs/benchmarks.md): N rounds of
 * 64 blocks of 16 to 1024 bytes, allocated then freed. */
NOINLINE static void churn(long rounds) {
    void *p[64];
    unsigned x = 1;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 64; i++) {
            x = x * 1103515245u + 12345u;
            p[i] = malloc(16 + (x >> 16) % 1009);
        }
        for (int i = 0; i < 64; i++)
            free(p[i]);
    }
}

/* For the comparison with heaptrack (heaptrack_agree.py).  Six sites,
 * each alone in a function of its own, since heaptrack's flame-graph
 * output, the one with exact figures, names a frame by function only.
 * Only malloc, calloc and aligned_alloc: heaptrack 1.4 does not intercept
 * memalign or pvalloc.  Every block is live at the peak, so that a site's
 * figures at the peak (all objmem-trace's report shows) are also its calls
 * and bytes over the run (what heaptrack counts); then some are freed and
 * the rest leak.  No stdio: its buffer would be one more allocation. */
static void *agree_kept[1 + 40 + 2000 + 300];
static void *agree_freed[5000 + 10];

NOINLINE static void agree_table(void) {
    agree_kept[0] = calloc(75000, 4); /* @site agree_table */
}

NOINLINE static void agree_nodes(void) {
    for (int i = 0; i < 5000; i++)
        agree_freed[i] = malloc(48); /* @site agree_nodes */
}

NOINLINE static void agree_buffers(void) {
    for (int i = 0; i < 40; i++)
        agree_kept[1 + i] = malloc(4096); /* @site agree_buffers */
}

/* Sizes 8 to 39; the odd-numbered ones are freed after the peak. */
NOINLINE static void agree_strings(void) {
    for (int i = 0; i < 2000; i++)
        agree_kept[41 + i] = malloc(8 + i % 32); /* @site agree_strings */
}

NOINLINE static void agree_aligned(void) {
    for (int i = 0; i < 10; i++)
        agree_freed[5000 + i] = aligned_alloc(64, 640); /* @site agree_aligned */
}

NOINLINE static void agree_small(void) {
    for (int i = 0; i < 300; i++)
        agree_kept[2041 + i] = malloc(16); /* @site agree_small */
}

NOINLINE static void agree(void) {
    agree_table();
    agree_nodes();
    agree_buffers();
    agree_strings();
    agree_aligned();
    agree_small();
    /* The peak. */
    for (size_t i = 0; i < sizeof agree_freed / sizeof *agree_freed; i++)
        free(agree_freed[i]);
    for (int i = 1; i < 2000; i += 2)
        free(agree_kept[41 + i]);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "sites";
    if (!strcmp(mode, "sites"))
        sites();
    else if (!strcmp(mode, "threads"))
        threads();
    else if (!strcmp(mode, "fork"))
        forked();
    else if (!strcmp(mode, "fork_alike"))
        forked_alike();
    else if (!strcmp(mode, "exec"))
        exec_self(argv[0]);
    else if (!strcmp(mode, "vfork"))
        vforked();
    else if (!strcmp(mode, "closefds"))
        close_fds();
    else if (!strcmp(mode, "kill"))
        killed();
    else if (!strcmp(mode, "leaks"))
        leaky();
    else if (!strcmp(mode, "wide"))
        wide();
    else if (!strcmp(mode, "tidy"))
        tidy();
    else if (!strcmp(mode, "agree"))
        agree();
    else if (!strcmp(mode, "sampled"))
        sampled();
    else if (!strcmp(mode, "single"))
        single();
    else if (!strcmp(mode, "many"))
        many();
    else if (!strcmp(mode, "blocks"))
        blocks();
    else if (!strcmp(mode, "double_free"))
        double_free();
    else if (!strcmp(mode, "bad_free"))
        bad_free();
    else if (!strcmp(mode, "churn") && argc > 2)
        churn(atol(argv[2]));
    else if (!strcmp(mode, "steps") && argc > 2)
        steps(atoi(argv[2]));
    else
        return 2;
    return 0;
}
