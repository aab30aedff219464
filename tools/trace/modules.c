/*
 * modules.c — libobjmem-trace.so's copy of the loaded-module list
 * (modules.h; docs/design.md, "Whole-process tracer: the loader's lock").
 *
 * The unwinder (src/unwind.c) checks each return address against the
 * executable segments of the loaded modules, which it lists with
 * dl_iterate_phdr.  That call takes the dynamic loader's write lock, and
 * the loader frees memory while holding it (dlclose): a hook that unwound
 * under the recorder's lock while another thread's free waited for that
 * lock inside dlclose would deadlock.  So the preload links the unwinder
 * with -Wl,--wrap=dl_iterate_phdr: its calls land in
 * __wrap_dl_iterate_phdr below, which answers from a copy made by
 * omt_modules_refresh, called only where no hook is running (the
 * constructor, the sampler thread's flushes).  The copy is at most one
 * sampling interval old: a return address in a module loaded since ends
 * a walk early, it never faults.
 *
 * Invariants:
 *   - `live` is the whole loader list as of the last refresh; it is
 *     replaced, never changed, and only under `live_lock`; readers hold
 *     `live_lock` while they look at it.
 *   - `seen` holds each (path, bias) once, in the order first seen, and
 *     only grows.
 */
#define _GNU_SOURCE
#include "modules.h"

#include "preload.h"

#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct live_module {
    uintptr_t addr;
    const char *name;
    ElfW(Phdr) *phdr;
    ElfW(Half) phnum;
} live_module;

typedef struct live_map {
    unsigned long long adds, subs;
    size_t n, capacity;
    live_module *mods;
} live_map;

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static live_map *live;

static omt_module *seen;
static size_t nseen, seen_capacity;

/* The real dl_iterate_phdr (the linker's --wrap names it so). */
int __real_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
                           void *data);
int __wrap_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
                           void *data);

static void map_free(live_map *m) {
    if (!m)
        return;
    for (size_t i = 0; i < m->n; i++) {
        omt_real.free((void *)m->mods[i].name);
        omt_real.free(m->mods[i].phdr);
    }
    omt_real.free(m->mods);
    omt_real.free(m);
}

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = omt_real.malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

typedef struct collect {
    live_map *map;
    bool failed;
} collect;

/* One module into the new map: its name and its PT_LOAD headers (all the
 * unwinder looks at, and all the file needs). */
static int collect_one(struct dl_phdr_info *info, size_t size, void *arg) {
    collect *c = arg;
    live_map *m = c->map;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        m->adds = info->dlpi_adds;
        m->subs = info->dlpi_subs;
    }
    if (m->n == m->capacity) {
        size_t capacity = m->capacity ? m->capacity * 2 : 32;
        live_module *mods = omt_real.realloc(m->mods, capacity * sizeof *mods);
        if (!mods) {
            c->failed = true;
            return 1;
        }
        m->mods = mods;
        m->capacity = capacity;
    }
    size_t nload = 0;
    for (int i = 0; i < info->dlpi_phnum; i++)
        nload += info->dlpi_phdr[i].p_type == PT_LOAD;
    live_module *lm = &m->mods[m->n];
    lm->addr = info->dlpi_addr;
    lm->name = copy_string(info->dlpi_name ? info->dlpi_name : "");
    lm->phdr = omt_real.malloc((nload ? nload : 1) * sizeof *lm->phdr);
    lm->phnum = 0;
    if (!lm->name || !lm->phdr) {
        omt_real.free((void *)lm->name);
        omt_real.free(lm->phdr);
        c->failed = true;
        return 1;
    }
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_LOAD)
            lm->phdr[lm->phnum++] = info->dlpi_phdr[i];
    m->n++;
    return 0;
}

/* The path a module's file is at: the executable's (its loader name is
 * empty) from /proc/self/exe, others as loaded, made absolute. */
static bool module_path(const live_module *lm, char *out, size_t n) {
    if (!lm->name[0]) {
        ssize_t len = readlink("/proc/self/exe", out, n - 1);
        if (len <= 0)
            return false;
        out[len] = 0;
        return true;
    }
    if (lm->name[0] == '/') {
        if (strlen(lm->name) >= n)
            return false;
        strcpy(out, lm->name);
        return true;
    }
    /* The vDSO and other names without a file ("linux-vdso.so.1") fail
     * here and are not recorded: there is nothing to read them from. */
    return n >= PATH_MAX && realpath(lm->name, out) != NULL;
}

static bool is_seen(uint64_t bias, const char *path) {
    for (size_t i = 0; i < nseen; i++)
        if (seen[i].bias == bias && !strcmp(seen[i].path, path))
            return true;
    return false;
}

static bool add_seen(const live_module *lm) {
    char path[PATH_MAX];
    if (!module_path(lm, path, sizeof path) || is_seen(lm->addr, path))
        return true;
    if (nseen == seen_capacity) {
        size_t capacity = seen_capacity ? seen_capacity * 2 : 32;
        omt_module *s = omt_real.realloc(seen, capacity * sizeof *s);
        if (!s)
            return false;
        seen = s;
        seen_capacity = capacity;
    }
    omt_module *m = &seen[nseen];
    memset(m, 0, sizeof *m);
    m->bias = lm->addr;
    m->path = copy_string(path);
    if (!m->path)
        return false;
    for (unsigned i = 0; i < lm->phnum && m->nseg < OMT_MAX_SEGMENTS; i++) {
        m->lo[m->nseg] = lm->addr + lm->phdr[i].p_vaddr;
        m->hi[m->nseg] = m->lo[m->nseg] + lm->phdr[i].p_memsz;
        m->nseg++;
    }
    nseen++;
    return true;
}

bool omt_modules_refresh(void) {
    live_map *m = omt_real.malloc(sizeof *m);
    if (!m)
        return false;
    memset(m, 0, sizeof *m);
    collect c = {m, false};
    __real_dl_iterate_phdr(collect_one, &c);
    if (c.failed) {
        map_free(m);
        return false;
    }
    pthread_mutex_lock(&live_lock);
    live_map *old = live;
    bool same = old && old->adds == m->adds && old->subs == m->subs;
    if (!same)
        live = m;
    pthread_mutex_unlock(&live_lock);
    if (same) {
        map_free(m);
        return true;
    }
    map_free(old);
    bool ok = true;
    for (size_t i = 0; i < m->n; i++)
        ok = add_seen(&m->mods[i]) && ok;
    return ok;
}

const omt_module *omt_modules_seen(size_t *n) {
    *n = nseen;
    return seen;
}

int __wrap_dl_iterate_phdr(int (*cb)(struct dl_phdr_info *, size_t, void *),
                           void *data) {
    int r = 0;
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; live && i < live->n && !r; i++) {
        struct dl_phdr_info info;
        memset(&info, 0, sizeof info);
        info.dlpi_addr = live->mods[i].addr;
        info.dlpi_name = live->mods[i].name;
        info.dlpi_phdr = live->mods[i].phdr;
        info.dlpi_phnum = live->mods[i].phnum;
        info.dlpi_adds = live->adds;
        info.dlpi_subs = live->subs;
        r = cb(&info, sizeof info, data);
    }
    pthread_mutex_unlock(&live_lock);
    return r;
}
