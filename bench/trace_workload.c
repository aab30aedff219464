/*
 * trace_workload.c — the allocation-heavy C program of the objmem-trace
 * overhead benchmark (bench/trace.sh): what heaptrack and objmem-trace
 * are both run on, beside the same program untraced.
 *
 * It does what allocation-heavy C programs do, through a few layers of
 * calls (so that every traced allocation has a real stack to walk): a
 * chained hash table of small nodes with string keys, built and torn down
 * in rounds; vectors grown by realloc; short-lived scratch buffers; and a
 * cache of mixed sizes churned at random.  Built with frame
 * pointers, as the tracer's unwinder needs.
 *
 * Usage: trace_workload ROUNDS.  Prints a checksum, so that no work can be
 * optimised away and the traced runs can be checked against the untraced.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fputs("trace_workload: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

/* ---- a chained hash table of string keys ---------------------------- */

typedef struct node {
    struct node *next;
    char *key;
    uint64_t value;
} node;

typedef struct table {
    node **buckets;
    size_t nbucket;
} table;

static NOINLINE char *key_of(uint64_t i) {
    char text[32];
    int n = snprintf(text, sizeof text, "key-%llu", (unsigned long long)i);
    char *key = xmalloc((size_t)n + 1);
    memcpy(key, text, (size_t)n + 1);
    return key;
}

static NOINLINE void table_put(table *t, uint64_t i) {
    node *e = xmalloc(sizeof *e);
    e->key = key_of(i);
    e->value = i * 2654435761u;
    size_t b = (size_t)(e->value % t->nbucket);
    e->next = t->buckets[b];
    t->buckets[b] = e;
}

static NOINLINE uint64_t table_free(table *t) {
    uint64_t sum = 0;
    for (size_t b = 0; b < t->nbucket; b++) {
        for (node *e = t->buckets[b], *next; e; e = next) {
            next = e->next;
            sum += e->value + (unsigned char)e->key[4];
            free(e->key);
            free(e);
        }
    }
    free(t->buckets);
    return sum;
}

static NOINLINE uint64_t hash_round(size_t n) {
    table t = {calloc(n / 4, sizeof(node *)), n / 4};
    if (!t.buckets)
        exit(1);
    for (size_t i = 0; i < n; i++)
        table_put(&t, i);
    return table_free(&t);
}

/* ---- vectors grown by realloc ------------------------------------------ */

static NOINLINE uint64_t vector_round(size_t nvec, size_t len) {
    uint64_t sum = 0;
    for (size_t v = 0; v < nvec; v++) {
        uint32_t *items = NULL;
        size_t cap = 0;
        for (size_t i = 0; i < len; i++) {
            if (i == cap) {
                cap = cap ? cap * 2 : 4;
                uint32_t *grown = realloc(items, cap * sizeof *items);
                if (!grown)
                    exit(1);
                items = grown;
            }
            items[i] = (uint32_t)(i ^ v);
        }
        sum += items[len / 2];
        free(items);
    }
    return sum;
}

/* ---- scratch buffers ------------------------------------------------------ */

static NOINLINE uint64_t format_line(uint64_t i) {
    size_t n = 16 + (size_t)(i % 200);
    char *line = xmalloc(n);
    memset(line, 'a' + (int)(i % 26), n - 1);
    line[n - 1] = '\0';
    uint64_t sum = (unsigned char)line[n / 2] + n;
    free(line);
    return sum;
}

static NOINLINE uint64_t scratch_round(size_t n) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += format_line(i);
    return sum;
}

/* ---- a cache of mixed sizes, churned ------------------------------------ */

#define CACHE_SLOTS 65536

static NOINLINE void *cache_entry(uint64_t seed) {
    size_t size = 8 + (size_t)(seed % 500);
    unsigned char *e = xmalloc(size);
    e[0] = (unsigned char)seed;
    e[size - 1] = (unsigned char)(seed >> 8);
    return e;
}

/* Replaces n entries picked at random, then empties the cache: blocks of
 * mixed sizes and lifetimes, freed in an order unrelated to their
 * allocation. */
static NOINLINE uint64_t cache_round(void **slots, size_t n, uint64_t seed) {
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t s = (size_t)(seed >> 48) % CACHE_SLOTS;
        if (slots[s]) {
            sum += *(unsigned char *)slots[s];
            free(slots[s]);
        }
        slots[s] = cache_entry(seed >> 16);
    }
    for (size_t s = 0; s < CACHE_SLOTS; s++) {
        free(slots[s]);
        slots[s] = NULL;
    }
    return sum;
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? strtol(argv[1], NULL, 10) : 10;
    if (rounds < 1 || rounds > 100000) {
        fputs("usage: trace_workload ROUNDS (1 to 100000)\n", stderr);
        return 2;
    }
    static void *slots[CACHE_SLOTS];
    uint64_t sum = 0;
    for (long r = 0; r < rounds; r++) {
        sum += hash_round(200000);
        sum += vector_round(2000, 1000);
        sum += scratch_round(200000);
        sum += cache_round(slots, 300000, (uint64_t)r + 1);
    }
    printf("trace_workload: checksum %llu\n", (unsigned long long)sum);
    return 0;
}
