/*
 * run.c — `objmem-trace run` (run.h): find the program as execvp would,
 * refuse early, with the reason, what preloading cannot trace (a static
 * executable, another architecture, a set-user-ID program, for which the
 * loader ignores LD_PRELOAD), then exec it with LD_PRELOAD and the
 * recording options set (docs/design.md, "Whole-process tracer").
 */
#define _GNU_SOURCE
#include "run.h"

#include "tracefile.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef OMT_PRELOAD_REL_DIR
#define OMT_PRELOAD_REL_DIR "../lib/objmem"
#endif
#define PRELOAD_NAME "libobjmem-trace.so"

static int say(int code, const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "objmem-trace: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return code;
}

/* The program's path, searched in PATH when the name has no slash, as
 * execvp does; 0 or an exit code. */
static int find_program(const char *name, char *out, size_t n) {
    if (strchr(name, '/')) {
        struct stat st;
        if (stat(name, &st) != 0)
            return say(errno == ENOENT ? OMT_EXIT_NOT_FOUND : OMT_EXIT_CANNOT_RUN,
                       "%s: %s", name, strerror(errno));
        if (!S_ISREG(st.st_mode) || access(name, X_OK) != 0)
            return say(OMT_EXIT_CANNOT_RUN, "%s: %s", name,
                       S_ISDIR(st.st_mode) ? "is a directory" : "is not executable");
        snprintf(out, n, "%s", name);
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    bool denied = false;
    for (const char *p = path;; p++) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int w = len ? snprintf(out, n, "%.*s/%s", (int)len, p, name)
                    : snprintf(out, n, "./%s", name);
        struct stat st;
        if (w > 0 && (size_t)w < n && stat(out, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(out, X_OK) == 0)
                return 0;
            denied = true;
        }
        if (!end)
            break;
        p = end;
    }
    if (denied)
        return say(OMT_EXIT_CANNOT_RUN, "%s: found in PATH but %s", name,
                   "not executable");
    return say(OMT_EXIT_NOT_FOUND, "%s: %s", name, "command not found");
}

/* The first bytes of a file's ELF header that identify it, from fd. */
typedef struct elf_id {
    bool elf;
    unsigned char cls, data;
    uint16_t machine;
} elf_id;

static elf_id read_id(int fd) {
    elf_id id = {false, 0, 0, 0};
    unsigned char h[20];
    if (pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h && !memcmp(h, ELFMAG, SELFMAG)) {
        id.elf = true;
        id.cls = h[EI_CLASS];
        id.data = h[EI_DATA];
        id.machine = (uint16_t)(id.data == ELFDATA2MSB ? h[18] << 8 | h[19]
                                                        : h[19] << 8 | h[18]);
    }
    return id;
}

/* Whether a 64-bit native ELF file has a PT_INTERP (is dynamically
 * linked); -1 when its headers cannot be read. */
static int has_interp(int fd) {
    Elf64_Ehdr eh;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh ||
        eh.e_phentsize != sizeof(Elf64_Phdr))
        return -1;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (pread(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + i * sizeof ph)) !=
            (ssize_t)sizeof ph)
            return -1;
        if (ph.p_type == PT_INTERP)
            return 1;
    }
    return 0;
}

/* 0 when the program at path can be traced by preloading, else the exit
 * code (with the reason said).  A script is judged by its interpreter. */
static int check_traceable(const char *path, const char *name, int depth) {
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        /* Executable but not readable: the loader will cope, and so we
         * cannot look; let exec say. */
        return e == EACCES ? 0 : say(OMT_EXIT_CANNOT_RUN, "%s: %s", name, strerror(e));
    }
    if (((st.st_mode & S_ISUID) && st.st_uid != geteuid()) ||
        ((st.st_mode & S_ISGID) && st.st_gid != getegid())) {
        close(fd);
        return say(OMT_EXIT_CANNOT_RUN,
                   "%s: is set-user-ID or set-group-ID: %s", name,
                   "the loader ignores LD_PRELOAD for it, so it cannot be traced");
    }
    char head[256];
    ssize_t n = pread(fd, head, sizeof head - 1, 0);
    if (n >= 2 && head[0] == '#' && head[1] == '!') {
        close(fd);
        head[n] = 0;
        char *p = head + 2;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strcspn(p, " \t\r\n");
        p[len] = 0;
        if (depth > 0 || !*p)
            return 0; /* let exec judge nested or odd interpreters */
        return check_traceable(p, p, depth + 1);
    }
    elf_id id = read_id(fd);
    if (!id.elf) {
        close(fd);
        return 0; /* exec will say what it is */
    }
    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    elf_id me = self >= 0 ? read_id(self) : id;
    if (self >= 0)
        close(self);
    if (id.cls != me.cls || id.data != me.data || id.machine != me.machine) {
        close(fd);
        return say(OMT_EXIT_CANNOT_RUN, "%s: %s", name,
                   "is built for another architecture or word size than "
                   "objmem-trace's preload library, so it cannot be traced");
    }
    int interp = id.cls == ELFCLASS64 ? has_interp(fd) : 1;
    close(fd);
    if (interp == 0)
        return say(OMT_EXIT_CANNOT_RUN,
                   "%s: is statically linked: %s", name,
                   "it cannot be traced by preloading a library (the loader "
                   "that would load it is not there); relink it dynamically");
    return 0;
}

/* The preload library: $OBJMEM_TRACE_PRELOAD, or beside this program (a
 * build tree), or where the install puts it relative to bin/. */
static int find_preload(char *out, size_t n) {
    if (n < PATH_MAX) /* realpath's contract */
        return say(OMT_EXIT_RUN_FAILED, "%s%s", "internal error: buffer too small", "");
    const char *env = getenv("OBJMEM_TRACE_PRELOAD");
    if (env && *env) {
        if (access(env, R_OK) != 0)
            return say(OMT_EXIT_RUN_FAILED, "OBJMEM_TRACE_PRELOAD=%s: %s", env,
                       strerror(errno));
        if (!realpath(env, out))
            return say(OMT_EXIT_RUN_FAILED, "%s: %s", env, strerror(errno));
        return 0;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return say(OMT_EXIT_RUN_FAILED, "%s%s", "cannot find where objmem-trace is",
                   "");
    self[len] = 0;
    char *slash = strrchr(self, '/');
    *slash = 0;
    const char *candidates[] = {"", "/" OMT_PRELOAD_REL_DIR};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s%s/" PRELOAD_NAME, self, candidates[i]);
        if (access(path, R_OK) == 0 && realpath(path, out))
            return 0;
    }
    return say(OMT_EXIT_RUN_FAILED, "cannot find " PRELOAD_NAME " beside %s or in %s",
               self, OMT_PRELOAD_REL_DIR);
}

/* The output path made absolute (the program may change directory), the
 * file there removed, and the directory checked for writing. */
static int prepare_output(const char *output, char *out, size_t n) {
    char def[64];
    if (!output) {
        snprintf(def, sizeof def, "objmem-trace.%d.trace", (int)getpid());
        output = def;
    }
    if (output[0] == '/') {
        snprintf(out, n, "%s", output);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd))
            return say(OMT_EXIT_RUN_FAILED, "cannot get the current directory: %s%s",
                       strerror(errno), "");
        if ((size_t)snprintf(out, n, "%s/%s", cwd, output) >= n)
            return say(OMT_EXIT_RUN_FAILED, "%s: %s", output, "path too long");
    }
    struct stat st;
    if (lstat(out, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return say(OMT_EXIT_RUN_FAILED, "%s: %s", out, "is a directory");
        if (unlink(out) != 0)
            return say(OMT_EXIT_RUN_FAILED, "cannot replace %s: %s", out,
                       strerror(errno));
    }
    int fd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return say(OMT_EXIT_RUN_FAILED, "cannot create %s: %s", out, strerror(errno));
    close(fd);
    unlink(out); /* the recording creates it, exclusively */
    return 0;
}

int omt_run(const omt_run_options *o, char **argv) {
    char program[PATH_MAX], preload[PATH_MAX], output[PATH_MAX];
    int code = find_program(argv[0], program, sizeof program);
    if (!code)
        code = check_traceable(program, argv[0], 0);
    if (!code)
        code = find_preload(preload, sizeof preload);
    if (!code && strpbrk(preload, " :"))
        code = say(OMT_EXIT_RUN_FAILED, "%s: %s", preload,
                   "LD_PRELOAD cannot hold a path with a space or a colon");
    if (!code)
        code = prepare_output(o->output, output, sizeof output);
    if (code)
        return code;
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(preload) + (old ? strlen(old) + 2 : 1);
    char *value = malloc(need);
    char frames[16], interval[16], rate[24];
    if (!value)
        return say(OMT_EXIT_RUN_FAILED, "%s%s", "out of memory", "");
    snprintf(value, need, "%s%s%s", preload, old && *old ? ":" : "",
             old ? old : "");
    snprintf(frames, sizeof frames, "%d", o->frames);
    snprintf(interval, sizeof interval, "%u", o->interval_ms);
    snprintf(rate, sizeof rate, "%llu", (unsigned long long)o->sample_rate);
    /* Unset when exact: a rate inherited from a sampled parent run must
     * not sample this one. */
    if (setenv("LD_PRELOAD", value, 1) || setenv(OMT_ENV_OUTPUT, output, 1) ||
        setenv(OMT_ENV_FRAMES, frames, 1) || setenv(OMT_ENV_INTERVAL, interval, 1) ||
        (o->sample_rate ? setenv(OMT_ENV_SAMPLE_RATE, rate, 1)
                        : unsetenv(OMT_ENV_SAMPLE_RATE)))
        return say(OMT_EXIT_RUN_FAILED, "cannot set the environment: %s%s",
                   strerror(errno), "");
    if (!o->quiet)
        fprintf(stderr, "objmem-trace: recording %s into %s\n", argv[0], output);
    execv(program, argv);
    int e = errno;
    return say(e == ENOENT ? OMT_EXIT_NOT_FOUND : OMT_EXIT_CANNOT_RUN,
               "cannot run %s: %s", argv[0], strerror(e));
}
