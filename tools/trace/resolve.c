/*
 * resolve.c — symbols at report time (resolve.h).  The recording holds
 * return addresses and, for each module, its path, load bias and
 * segments; here each module's file is opened with libdw, placed at its
 * recorded bias, and asked for the DWARF line and the symbol of each
 * address.  One libdw session per module, made on first use: modules
 * recorded at different times may overlap in address (one unloaded,
 * another loaded there), which a single session would refuse.
 *
 * The file must still be the one that ran: a module rebuilt since gives
 * wrong lines (a later format can store build ids to detect it).
 *
 * Without libdw (OBJMEM_LIBDW=OFF), every frame is its module's path,
 * line 0, function "<unknown>".
 */
#define _GNU_SOURCE
#include "resolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if OM_HAVE_LIBDW
#include "symbolize.h" /* om_dwarf_line_row, libdwfl.h */
#include <dwarf.h>
#endif

const char omt_unknown[] = "<unknown>";

typedef struct module_state {
    bool tried;
#if OM_HAVE_LIBDW
    Dwfl *dwfl;
    Dwfl_Module *mod;
#endif
} module_state;

typedef struct cache_entry {
    uint64_t ret;      /* 0: empty */
    omt_sym *sym;
} cache_entry;

struct omt_strings {
    char **slots;
    size_t capacity, count; /* a power of two; at most 1/2 full */
};

struct omt_resolver {
    const omt_file *f;
    module_state *mods;
    cache_entry *cache;
    size_t cache_capacity, cache_count; /* a power of two; at most 1/2 full */
    omt_strings *strings;
    bool own_strings;
    omt_sym unknown;
};

static uint64_t hash_bytes(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_word(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

omt_strings *omt_strings_new(void) { return calloc(1, sizeof(omt_strings)); }

const char *omt_intern(omt_strings *t, const char *s) {
    if (!s || !strcmp(s, omt_unknown))
        return omt_unknown;
    if ((t->count + 1) * 2 > t->capacity) {
        size_t cap = t->capacity ? t->capacity * 2 : 256;
        char **slots = calloc(cap, sizeof *slots);
        if (!slots)
            return omt_unknown;
        for (size_t i = 0; i < t->capacity; i++) {
            char *e = t->slots[i];
            if (!e)
                continue;
            size_t j = hash_bytes(e) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = e;
        }
        free(t->slots);
        t->slots = slots;
        t->capacity = cap;
    }
    size_t mask = t->capacity - 1, j = hash_bytes(s) & mask;
    for (; t->slots[j]; j = (j + 1) & mask)
        if (!strcmp(t->slots[j], s))
            return t->slots[j];
    char *copy = strdup(s);
    if (!copy)
        return omt_unknown;
    t->slots[j] = copy;
    t->count++;
    return copy;
}

void omt_strings_free(omt_strings *t) {
    if (!t)
        return;
    for (size_t i = 0; i < t->capacity; i++)
        free(t->slots[i]);
    free(t->slots);
    free(t);
}

omt_resolver *omt_resolver_new(const omt_file *f, omt_strings *strings) {
    omt_resolver *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    r->strings = strings;
    r->own_strings = !strings;
    if (r->own_strings)
        r->strings = omt_strings_new();
    r->mods = calloc(f->nmodules ? f->nmodules : 1, sizeof *r->mods);
    if (!r->mods || !r->strings) {
        if (r->own_strings)
            omt_strings_free(r->strings);
        free(r->mods);
        free(r);
        return NULL;
    }
    r->unknown = (omt_sym){omt_unknown, 0, omt_unknown, omt_unknown, 0};
    return r;
}

/* The module holding address a: the latest recorded whose segments hold
 * it; -1 for none. */
static long module_of(const omt_file *f, uint64_t a) {
    for (size_t i = f->nmodules; i-- > 0;) {
        const omt_rmodule *m = &f->modules[i];
        for (unsigned s = 0; s < m->nseg; s++)
            if (a >= m->lo[s] && a < m->hi[s])
                return (long)i;
    }
    return -1;
}

#if OM_HAVE_LIBDW
static char *debuginfo_path;
static const Dwfl_Callbacks offline_callbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &debuginfo_path,
};

static Dwfl_Module *open_module(omt_resolver *r, size_t i) {
    module_state *ms = &r->mods[i];
    if (ms->tried)
        return ms->mod;
    ms->tried = true;
    const omt_rmodule *m = &r->f->modules[i];
    ms->dwfl = dwfl_begin(&offline_callbacks);
    if (!ms->dwfl)
        return NULL;
    dwfl_report_begin(ms->dwfl);
    ms->mod = dwfl_report_elf(ms->dwfl, m->path, m->path, -1, m->bias, true);
    dwfl_report_end(ms->dwfl, NULL, NULL);
    return ms->mod;
}

static void lookup(omt_resolver *r, size_t i, uint64_t pc, omt_sym *out) {
    Dwfl_Module *m = open_module(r, i);
    if (!m)
        return;
    GElf_Off offset;
    GElf_Sym sym;
    const char *name = dwfl_module_addrinfo(m, pc, &offset, &sym, NULL, NULL,
                                            NULL);
    if (name) {
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", name);
        char *at = strchr(buf, '@'); /* a symbol version: malloc@@GLIBC_2.2.5 */
        if (at && at != buf)
            *at = 0;
        out->function = omt_intern(r->strings, buf);
    }
    Dwarf_Line *row = om_dwarf_line_row(m, pc);
    const char *file = row ? dwarf_linesrc(row, NULL, NULL) : NULL;
    int lineno;
    if (file && dwarf_lineno(row, &lineno) == 0 && lineno > 0) {
        out->file = omt_intern(r->strings, file);
        out->line = (unsigned)lineno;
    }
}
#endif

static omt_sym *resolve_new(omt_resolver *r, uint64_t ret) {
    omt_sym *s = malloc(sizeof *s);
    if (!s)
        return NULL;
    *s = r->unknown;
    uint64_t pc = ret - 1; /* inside the call instruction */
    long i = module_of(r->f, pc);
    if (i < 0)
        return s;
    const omt_rmodule *m = &r->f->modules[i];
    s->module = omt_intern(r->strings, m->path);
    s->file = s->module;
    s->offset = ret - m->bias;
#if OM_HAVE_LIBDW
    lookup(r, (size_t)i, pc, s);
#endif
    return s;
}

const omt_sym *omt_resolve(omt_resolver *r, uint64_t ret) {
    if ((r->cache_count + 1) * 2 > r->cache_capacity) {
        size_t cap = r->cache_capacity ? r->cache_capacity * 2 : 1024;
        cache_entry *t = calloc(cap, sizeof *t);
        if (!t)
            return &r->unknown;
        for (size_t i = 0; i < r->cache_capacity; i++) {
            if (!r->cache[i].ret)
                continue;
            size_t j = hash_word(r->cache[i].ret) & (cap - 1);
            while (t[j].ret)
                j = (j + 1) & (cap - 1);
            t[j] = r->cache[i];
        }
        free(r->cache);
        r->cache = t;
        r->cache_capacity = cap;
    }
    if (!ret)
        return &r->unknown;
    size_t mask = r->cache_capacity - 1, j = hash_word(ret) & mask;
    for (; r->cache[j].ret; j = (j + 1) & mask)
        if (r->cache[j].ret == ret)
            return r->cache[j].sym;
    omt_sym *s = resolve_new(r, ret);
    if (!s)
        return &r->unknown;
    r->cache[j] = (cache_entry){ret, s};
    r->cache_count++;
    return s;
}

#if OM_HAVE_LIBDW
/* The compilation unit holding pc (a module address): through the
 * address ranges, else by asking each unit (clang writes no
 * .debug_aranges unless told to). */
static Dwarf_Die *unit_of(Dwfl_Module *m, Dwarf_Addr pc, Dwarf_Addr *bias) {
    Dwarf_Die *cu = dwfl_module_addrdie(m, pc, bias);
    if (cu)
        return cu;
    for (cu = dwfl_module_nextcu(m, NULL, bias); cu;
         cu = dwfl_module_nextcu(m, cu, bias))
        if (dwarf_haspc(cu, pc - *bias) > 0)
            return cu;
    return NULL;
}

static bool function_lines(omt_resolver *r, Dwfl_Module *m, Dwarf_Addr pc,
                           const char **in, unsigned *first, unsigned *last) {
    Dwarf_Addr bias;
    Dwarf_Die *cu = unit_of(m, pc, &bias);
    Dwarf_Die *scopes = NULL;
    int n = cu ? dwarf_getscopes(cu, pc - bias, &scopes) : 0;
    bool found = false;
    for (int k = 0; k < n && !found; k++) {
        Dwarf_Die *fn = &scopes[k];
        int decl;
        Dwarf_Addr lo, hi;
        const char *file = dwarf_decl_file(fn);
        if (dwarf_tag(fn) != DW_TAG_subprogram || !file ||
            dwarf_decl_line(fn, &decl) != 0 || decl <= 0 ||
            dwarf_lowpc(fn, &lo) != 0 || dwarf_highpc(fn, &hi) != 0)
            continue;
        found = true;
        unsigned end = (unsigned)decl;
        Dwarf_Lines *lines;
        size_t nlines;
        if (dwarf_getsrclines(cu, &lines, &nlines) == 0) {
            for (size_t i = 0; i < nlines; i++) {
                Dwarf_Line *row = dwarf_onesrcline(lines, i);
                Dwarf_Addr a;
                int lineno;
                const char *src = dwarf_linesrc(row, NULL, NULL);
                if (dwarf_lineaddr(row, &a) == 0 && a >= lo && a < hi && src &&
                    !strcmp(src, file) && dwarf_lineno(row, &lineno) == 0 &&
                    lineno > 0 && (unsigned)lineno > end)
                    end = (unsigned)lineno;
            }
        }
        *in = omt_intern(r->strings, file);
        *first = (unsigned)decl;
        *last = end;
    }
    free(scopes);
    return found;
}
#endif

bool omt_resolve_function_lines(omt_resolver *r, uint64_t ret,
                                const char **file, unsigned *first,
                                unsigned *last) {
#if OM_HAVE_LIBDW
    uint64_t pc = ret - 1;
    long i = module_of(r->f, pc);
    Dwfl_Module *m = i < 0 ? NULL : open_module(r, (size_t)i);
    return m && function_lines(r, m, pc, file, first, last);
#else
    (void)r, (void)ret, (void)file, (void)first, (void)last;
    return false;
#endif
}

void omt_resolver_free(omt_resolver *r) {
    if (!r)
        return;
#if OM_HAVE_LIBDW
    for (size_t i = 0; i < r->f->nmodules; i++)
        if (r->mods[i].dwfl)
            dwfl_end(r->mods[i].dwfl);
#endif
    for (size_t i = 0; i < r->cache_capacity; i++)
        free(r->cache[i].sym);
    if (r->own_strings)
        omt_strings_free(r->strings);
    free(r->cache);
    free(r->mods);
    free(r);
}
