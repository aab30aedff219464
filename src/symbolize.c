/*
 * symbolize.c — return addresses to (file, line, function), resolved on
 * first request and then cached (docs/design.md, "Native frames").  With
 * libdw (OM_HAVE_LIBDW) a Dwfl session over this process's modules gives
 * DWARF lines and symbol names; it is made on first use and reloads the
 * module list once for an address no known module covers.  Without libdw,
 * dladdr gives the dynamic symbol and the module.
 *
 * Invariants:
 *   - `cache` holds every non-zero address resolved so far (address 0
 *     marks an empty slot) and is at most 3/4 full.  An entry never
 *     changes, so an address gives the same string pointers every time.
 *   - Each string of a cached frame is unknown_name or an entry of `strings`,
 *     which holds one copy of each text (at most 3/4 full), stored in
 *     `chunks` and freed only with the symbolizer.
 *   - (libdw) `ranges` are functions libdw has named, [start, end) with
 *     end > start and an interned name, sorted by start.
 *   - `memory` is the sum of the sizes of the blocks the symbolizer holds
 *     from the raw allocator: itself, its tables and the chunks.
 */
#define _GNU_SOURCE
#include "symbolize.h"

#include <string.h>

#if OM_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#include <unistd.h>
#else
#include <dlfcn.h>
#endif

#define TABLE_MIN 64       /* slots of a table's first allocation */
#define CHUNK_SIZE 4096    /* bytes of a string chunk, header included */

typedef struct cache_entry {
    uintptr_t ret;
    om_frame frame;
} cache_entry;

typedef struct interned {
    uint64_t hash;
    const char *text;    /* NULL: an empty slot */
} interned;

/* A block of string storage; its bytes follow the header. */
typedef struct chunk {
    struct chunk *next;
    size_t size;         /* of the whole block */
} chunk;

/* What a frame's unknown parts say, as snapshot.h's OM_UNKNOWN_NAME. */
static const char unknown_name[] = "<unknown>";

struct om_symbolizer {
    om_runtime *rt;
    cache_entry *cache;
    size_t cache_capacity, cache_count;  /* capacity: 0 or a power of 2 */
    interned *strings;
    size_t strings_capacity, strings_count;
    chunk *chunks;       /* newest first; strings are carved from it */
    char *free_space;
    size_t free_left;
    size_t memory;
#if OM_HAVE_LIBDW
    Dwfl *dwfl;          /* NULL until the first lookup */
    struct fn_range *ranges;
    size_t nranges, ranges_capacity;
#endif
};

/* ---- memory -------------------------------------------------------------- */

/* count * size zeroed bytes from the raw allocator, counted as one attempt
 * by failure injection; NULL when it fails. */
static void *sym_calloc(om_symbolizer *s, size_t count, size_t size) {
    if (!om_alloc_attempt(s->rt))
        return NULL;
    void *p = om_raw_calloc(s->rt, count, size);
    if (p)
        s->memory += count * size;
    return p;
}

static void sym_free(om_symbolizer *s, void *p, size_t size) {
    if (!p)
        return;
    s->memory -= size;
    om_raw_free(s->rt, p);
}

/* n bytes of string storage, or NULL. */
static char *chunk_alloc(om_symbolizer *s, size_t n) {
    if (n > s->free_left) {
        size_t size = sizeof(chunk) + n > CHUNK_SIZE ? sizeof(chunk) + n
                                                     : CHUNK_SIZE;
        chunk *c = sym_calloc(s, 1, size);
        if (!c)
            return NULL;
        c->next = s->chunks;
        c->size = size;
        s->chunks = c;
        s->free_space = (char *)(c + 1);
        s->free_left = size - sizeof(chunk);
    }
    char *p = s->free_space;
    s->free_space += n;
    s->free_left -= n;
    return p;
}

/* Whether a table of `capacity` slots can take one more than `count`. */
static bool has_room(size_t count, size_t capacity) {
    return (count + 1) * 4 <= capacity * 3;
}

static size_t grown(size_t capacity) {
    return capacity ? capacity * 2 : TABLE_MIN;
}

/* ---- the address cache --------------------------------------------------- */

static cache_entry *cache_slot(cache_entry *table, size_t capacity,
                               uintptr_t ret) {
    size_t mask = capacity - 1;
    size_t i = (size_t)om_hash_word(ret) & mask;
    while (table[i].ret && table[i].ret != ret)
        i = (i + 1) & mask;
    return &table[i];
}

static const cache_entry *cache_find(const om_symbolizer *s, uintptr_t ret) {
    if (!s->cache_capacity)
        return NULL;
    const cache_entry *e = cache_slot(s->cache, s->cache_capacity, ret);
    return e->ret ? e : NULL;
}

/* Room for one more entry; false when the table cannot grow. */
static bool cache_reserve(om_symbolizer *s) {
    if (has_room(s->cache_count, s->cache_capacity))
        return true;
    size_t capacity = grown(s->cache_capacity);
    cache_entry *table = sym_calloc(s, capacity, sizeof *table);
    if (!table)
        return false;
    for (size_t i = 0; i < s->cache_capacity; i++)
        if (s->cache[i].ret)
            *cache_slot(table, capacity, s->cache[i].ret) = s->cache[i];
    sym_free(s, s->cache, s->cache_capacity * sizeof *table);
    s->cache = table;
    s->cache_capacity = capacity;
    return true;
}

/* ---- interned strings ---------------------------------------------------- */

/* The slot holding the len bytes at text, or the empty one where they
 * would go. */
static interned *string_slot(interned *table, size_t capacity, uint64_t hash,
                             const char *text, size_t len) {
    size_t mask = capacity - 1;
    size_t i = (size_t)hash & mask;
    while (table[i].text &&
           (table[i].hash != hash || strncmp(table[i].text, text, len) != 0 ||
            table[i].text[len] != '\0'))
        i = (i + 1) & mask;
    return &table[i];
}

static bool strings_reserve(om_symbolizer *s) {
    if (has_room(s->strings_count, s->strings_capacity))
        return true;
    size_t capacity = grown(s->strings_capacity);
    interned *table = sym_calloc(s, capacity, sizeof *table);
    if (!table)
        return false;
    size_t mask = capacity - 1;
    for (size_t i = 0; i < s->strings_capacity; i++) {
        const interned *old = &s->strings[i];
        if (!old->text)
            continue;
        size_t j = (size_t)old->hash & mask;  /* texts are distinct */
        while (table[j].text)
            j = (j + 1) & mask;
        table[j] = *old;
    }
    sym_free(s, s->strings, s->strings_capacity * sizeof *table);
    s->strings = table;
    s->strings_capacity = capacity;
    return true;
}

/* The symbolizer's copy of the len bytes at text (borrowed from libdw or
 * the dynamic linker), or NULL when memory is short. */
static const char *intern(om_symbolizer *s, const char *text, size_t len) {
    uint64_t hash = om_hash_bytes(text, len);
    if (s->strings_capacity) {
        const interned *e =
            string_slot(s->strings, s->strings_capacity, hash, text, len);
        if (e->text)
            return e->text;
    }
    if (!strings_reserve(s))
        return NULL;
    char *copy = chunk_alloc(s, len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    interned *slot =
        string_slot(s->strings, s->strings_capacity, hash, text, len);
    slot->hash = hash;
    slot->text = copy;
    s->strings_count++;
    return copy;
}

/* ---- resolution ----------------------------------------------------------- *
 * resolve(s, addr, frame) fills in what can be learnt of the instruction
 * at addr, with strings interned in s; false when memory is short (frame
 * is then partly filled). */

#if OM_HAVE_LIBDW

/* A function libdw named.  Its symbol lookup is a linear search of the
 * module's symbol table (about 0.1 ms in a C library with its debug
 * symbols), so each function is looked up once, and other addresses in
 * it are named from here.  (A sized symbol nested in another, which C
 * compilers do not emit, would then be named by the outer one.) */
typedef struct fn_range {
    uintptr_t start, end;
    const char *name;
} fn_range;

/* The last range starting at or below addr, if it holds addr; else NULL. */
static const fn_range *range_find(const om_symbolizer *s, uintptr_t addr) {
    size_t lo = 0, hi = s->nranges;   /* ranges[lo..hi) may start above */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->ranges[mid].start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo && addr < s->ranges[lo - 1].end ? &s->ranges[lo - 1] : NULL;
}

static bool range_add(om_symbolizer *s, fn_range r) {
    size_t i = s->nranges;
    while (i && s->ranges[i - 1].start > r.start)
        i--;
    /* Known already: found by an address that a later range also starts
     * below (overlapping symbols). */
    if (i && s->ranges[i - 1].start == r.start && s->ranges[i - 1].end == r.end)
        return true;
    if (s->nranges == s->ranges_capacity) {
        size_t capacity = grown(s->ranges_capacity);
        fn_range *table = sym_calloc(s, capacity, sizeof *table);
        if (!table)
            return false;
        if (s->nranges)
            memcpy(table, s->ranges, s->nranges * sizeof *table);
        sym_free(s, s->ranges, s->ranges_capacity * sizeof *table);
        s->ranges = table;
        s->ranges_capacity = capacity;
    }
    memmove(&s->ranges[i + 1], &s->ranges[i],
            (s->nranges - i) * sizeof *s->ranges);
    s->ranges[i] = r;
    s->nranges++;
    return true;
}

static const Dwfl_Callbacks proc_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
};

/* Load the process's module list from /proc.  Modules still mapped keep
 * what libdw has read of them; a failure leaves fewer modules, and their
 * addresses resolve as unknown. */
static void report_modules(Dwfl *dwfl) {
    dwfl_report_begin(dwfl);
    dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
}

/* The module whose extent holds addr, or NULL.  libdw may answer with a
 * module below a gap that holds addr (seen under valgrind, for a library
 * loaded since the report), so the extent is checked. */
static Dwfl_Module *module_holding(Dwfl *dwfl, Dwarf_Addr addr) {
    Dwfl_Module *m = dwfl_addrmodule(dwfl, addr);
    Dwarf_Addr start, end;
    if (m && dwfl_module_info(m, NULL, &start, &end, NULL, NULL, NULL, NULL) &&
        addr >= start && addr < end)
        return m;
    return NULL;
}

/* The module holding addr: the session is made on first use, and the
 * module list reloaded once for an address it does not cover (a library
 * loaded since). */
static Dwfl_Module *module_of(om_symbolizer *s, Dwarf_Addr addr) {
    bool fresh = !s->dwfl;
    if (fresh) {
        s->dwfl = dwfl_begin(&proc_callbacks);
        if (!s->dwfl)
            return NULL;
        report_modules(s->dwfl);
    }
    Dwfl_Module *m = module_holding(s->dwfl, addr);
    if (!m && !fresh) {
        report_modules(s->dwfl);
        m = module_holding(s->dwfl, addr);
    }
    return m;
}

/* The symbol holding addr, from the ranges or from libdw (then recorded
 * with its extent, when it has one). */
static bool name_function(om_symbolizer *s, Dwfl_Module *m, uintptr_t addr,
                          om_frame *frame) {
    const fn_range *known = range_find(s, addr);
    if (known) {
        frame->function = known->name;
        return true;
    }
    GElf_Off offset;
    GElf_Sym sym;
    const char *name =
        dwfl_module_addrinfo(m, addr, &offset, &sym, NULL, NULL, NULL);
    /* Without the symbol version a full symbol table appends
     * (quick_exit@@GLIBC_2.24). */
    size_t len = name ? strcspn(name, "@") : 0;
    if (!len)
        return true;
    if (!(frame->function = intern(s, name, len)))
        return false;
    if (offset >= sym.st_size)   /* no extent known */
        return true;
    fn_range r = {addr - offset, addr - offset + sym.st_size, frame->function};
    return range_add(s, r);
}

Dwarf_Line *om_dwarf_line_row(Dwfl_Module *m, uintptr_t addr) {
    Dwarf_Addr bias;
    Dwfl_Line *line = dwfl_module_getsrc(m, addr);
    if (line)
        return dwfl_dwarf_line(line, &bias);
    for (Dwarf_Die *cu = NULL; (cu = dwfl_module_nextcu(m, cu, &bias));)
        if (dwarf_haspc(cu, addr - bias) > 0)
            return dwarf_getsrc_die(cu, addr - bias);
    return NULL;
}

/* The source line of addr; without line information there, the module's
 * name, which for a process's modules is the path of the mapped file. */
static bool name_line(om_symbolizer *s, Dwfl_Module *m, uintptr_t addr,
                      om_frame *frame) {
    Dwarf_Line *row = om_dwarf_line_row(m, addr);
    const char *file = row ? dwarf_linesrc(row, NULL, NULL) : NULL;
    int lineno;
    if (file && *file)
        frame->lineno = dwarf_lineno(row, &lineno) == 0 && lineno > 0
                            ? (unsigned)lineno
                            : 0;
    else
        file = dwfl_module_info(m, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    if (!file || !*file)
        return true;
    frame->filename = intern(s, file, strlen(file));
    return frame->filename != NULL;
}

static bool resolve(om_symbolizer *s, uintptr_t addr, om_frame *frame) {
    Dwfl_Module *m = module_of(s, addr);
    return !m || (name_function(s, m, addr, frame) &&
                  name_line(s, m, addr, frame));
}

static void resolver_end(om_symbolizer *s) {
    if (s->dwfl)
        dwfl_end(s->dwfl);
    sym_free(s, s->ranges, s->ranges_capacity * sizeof *s->ranges);
}

#else /* dladdr: the dynamic symbol table only, no lines */

static bool resolve(om_symbolizer *s, uintptr_t addr, om_frame *frame) {
    Dl_info info;
    if (!dladdr((void *)addr, &info))
        return true;
    if (info.dli_fname && *info.dli_fname &&
        !(frame->filename =
              intern(s, info.dli_fname, strlen(info.dli_fname))))
        return false;
    if (info.dli_sname && *info.dli_sname &&
        !(frame->function =
              intern(s, info.dli_sname, strlen(info.dli_sname))))
        return false;
    return true;
}

static void resolver_end(om_symbolizer *s) { (void)s; }

#endif

/* ---- the symbolizer ------------------------------------------------------ */

om_symbolizer *om_symbolizer_new(om_runtime *rt) {
    om_symbolizer *s =
        om_alloc_attempt(rt) ? om_raw_calloc(rt, 1, sizeof *s) : NULL;
    if (!s)
        return OM_FAIL_NULL(rt, OM_ERR_NOMEM,
                            "om_symbolizer_new: out of memory");
    s->rt = rt;
    s->memory = sizeof *s;
    return s;
}

/* Resolve ret (not cached, not 0) and cache its frame in *out; false when
 * memory is short. */
static bool resolve_and_cache(om_symbolizer *s, uintptr_t ret, om_frame *out) {
    om_frame frame = {unknown_name, 0, unknown_name};
    /* The call instruction ends just before the return address, and may
     * be the last of its function or line. */
    if (!cache_reserve(s) || !resolve(s, ret - 1, &frame))
        return false;
    cache_entry *slot = cache_slot(s->cache, s->cache_capacity, ret);
    slot->ret = ret;
    slot->frame = frame;
    s->cache_count++;
    *out = frame;
    return true;
}

om_status om_symbolize(om_symbolizer *s, uintptr_t ret, om_frame *out) {
    if (!ret) {
        *out = (om_frame){unknown_name, 0, unknown_name};
        return OM_OK;
    }
    const cache_entry *e = cache_find(s, ret);
    if (e) {
        *out = e->frame;
        return OM_OK;
    }
    if (!resolve_and_cache(s, ret, out))
        return om_error(s->rt, OM_ERR_NOMEM,
                        "om_symbolize: out of memory caching the frame of %p",
                        (void *)ret);
    return OM_OK;
}

size_t om_symbolizer_memory(const om_symbolizer *s) { return s->memory; }

void om_symbolizer_free(om_symbolizer *s) {
    if (!s)
        return;
    resolver_end(s);
    for (chunk *c = s->chunks, *next; c; c = next) {
        next = c->next;
        sym_free(s, c, c->size);
    }
    sym_free(s, s->cache, s->cache_capacity * sizeof *s->cache);
    sym_free(s, s->strings, s->strings_capacity * sizeof *s->strings);
    OM_ASSERT(s->memory == sizeof *s);
    om_raw_free(s->rt, s);
}
