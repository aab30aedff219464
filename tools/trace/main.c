/*
 * main.c — the objmem-trace command: subcommands, options, help and exit
 * codes (docs/objmem-trace.1 documents them; docs/design.md,
 * "Whole-process tracer", explains the machinery).
 */
#define _GNU_SOURCE
#include "reader.h"
#include "report.h"
#include "run.h"
#include "tracefile.h"

#include <objmem.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_CODES                                                          \
    "exit status:\n"                                                        \
    "  0    success\n"                                                      \
    "  1    a file could not be read or written\n"                          \
    "  2    usage error (unknown command or option, bad value)\n"           \
    "  3    not a readable trace: not a trace file, corrupt, cut before its\n" \
    "       first flush, or written by a newer format version\n"           \
    "  4    report: the trace is incomplete (the program was killed, crashed\n" \
    "       or called _exit); the report covers it up to its last flush\n" \
    "  run: the program's own exit status once it runs; before that\n"      \
    "  125  objmem-trace failed (bad option, no preload library, the output\n" \
    "       cannot be created)\n"                                           \
    "  126  the program cannot be run or traced (not executable, statically\n" \
    "       linked, another architecture, set-user-ID)\n"                  \
    "  127  the program was not found\n"

static const char main_help[] =
    "usage: objmem-trace COMMAND [OPTIONS] [ARGS...]\n"
    "\n"
    "Trace every heap allocation of an unmodified, dynamically linked\n"
    "program, and read the recording back.\n"
    "\n"
    "commands:\n"
    "  run      record a program's allocations into a trace file\n"
    "  report   the heap a trace file shows, at the end or at its peak\n"
    "  help     help on a command: objmem-trace help run\n"
    "\n"
    "options:\n"
    "  -h, --help     this help\n"
    "  -V, --version  the version\n"
    "\n" EXIT_CODES "\n"
    "See objmem-trace(1).\n";

static const char run_help[] =
    "usage: objmem-trace run [-o FILE] [--frames N] [--interval MS] [-q]\n"
    "                        [--] PROG [ARGS...]\n"
    "\n"
    "Run PROG with libobjmem-trace.so preloaded: every malloc, calloc,\n"
    "realloc, free and the rest, in every thread, is recorded with its\n"
    "stack, and the recording is flushed to FILE every interval and at\n"
    "exit.  Processes PROG forks, and programs it execs, record to files\n"
    "of their own, FILE.PID.XXXXXXXX.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  the trace file (default objmem-trace.PID.trace;\n"
    "                     an existing file there is replaced)\n"
    "  --frames N         stack frames kept per allocation, 1 to 100\n"
    "                     (default 16)\n"
    "  --interval MS      flush and sample heap and RSS every MS\n"
    "                     milliseconds (default 100)\n"
    "  -q, --quiet        do not say where the trace goes\n"
    "  -h, --help         this help\n"
    "\n"
    "Runs PROG in place of itself, so its exit status is PROG's; see\n"
    "objmem-trace --help for the codes of failures before PROG starts.\n";

static const char report_help[] =
    "usage: objmem-trace report FILE [--by line|function|file|traceback]\n"
    "                           [--top N] [--peak] [--format text|json]\n"
    "\n"
    "The live heap a trace shows, grouped and sorted by size, then count,\n"
    "largest first (tracemalloc's statistics).\n"
    "\n"
    "options:\n"
    "  --by KEY             group by the allocation site's line (default),\n"
    "                       function, file, or by the whole traceback\n"
    "  --top N              show the N largest groups (default 10; 0: all)\n"
    "  --peak               the heap at its peak, not at the end\n"
    "  --format text|json   text (default) or JSON (fields: objmem-trace(1))\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 4, after the report, when the trace is incomplete.\n";

static int usage_error(const char *fmt, const char *arg, const char *command) {
    fprintf(stderr, "objmem-trace: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'objmem-trace %s%s--help'.\n", command ? command : "",
            command ? " " : "");
    return OMT_EXIT_USAGE;
}

static bool parse_count(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"frames", required_argument, NULL, 'f'},
        {"interval", required_argument, NULL, 'i'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    omt_run_options o = {NULL, OMT_DEFAULT_FRAMES, OMT_DEFAULT_INTERVAL_MS, false};
    long v;
    int c;
    optind = 1;
    /* '+': options end at PROG, whose own options are its business. */
    while ((c = getopt_long(argc, argv, "+o:qh", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.output = optarg;
            break;
        case 'f':
            if (!parse_count(optarg, 1, OMT_MAX_FRAMES, &v))
                return usage_error("--frames takes a number from 1 to 100, not '%s'",
                                   optarg, "run");
            o.frames = (int)v;
            break;
        case 'i':
            if (!parse_count(optarg, 1, OMT_MAX_INTERVAL_MS, &v))
                return usage_error("--interval takes milliseconds, 1 to 3600000, not '%s'",
                                   optarg, "run");
            o.interval_ms = (unsigned)v;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            fputs(run_help, stdout);
            return OMT_EXIT_OK;
        default:
            return usage_error("%s", "bad option", "run");
        }
    }
    if (optind >= argc)
        return usage_error("%s", "run: which program? (objmem-trace run -- PROG ARGS...)",
                           "run");
    return omt_run(&o, argv + optind);
}

static int cmd_report(int argc, char **argv) {
    static const struct option opts[] = {
        {"by", required_argument, NULL, 'b'},
        {"top", required_argument, NULL, 't'},
        {"peak", no_argument, NULL, 'p'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    omt_report_options o = {OMT_BY_LINE, 10, false, false};
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!strcmp(optarg, "line"))
                o.by = OMT_BY_LINE;
            else if (!strcmp(optarg, "function"))
                o.by = OMT_BY_FUNCTION;
            else if (!strcmp(optarg, "file"))
                o.by = OMT_BY_FILE;
            else if (!strcmp(optarg, "traceback"))
                o.by = OMT_BY_TRACEBACK;
            else
                return usage_error("--by takes line, function, file or traceback, not '%s'",
                                   optarg, "report");
            break;
        case 't':
            if (!parse_count(optarg, 0, 1000000000, &v))
                return usage_error("--top takes a count (0 for all), not '%s'",
                                   optarg, "report");
            o.top = (size_t)v;
            break;
        case 'p':
            o.peak = true;
            break;
        case 'f':
            if (!strcmp(optarg, "json"))
                o.json = true;
            else if (!strcmp(optarg, "text"))
                o.json = false;
            else
                return usage_error("--format takes text or json, not '%s'", optarg,
                                   "report");
            break;
        case 'h':
            fputs(report_help, stdout);
            return OMT_EXIT_OK;
        default:
            return usage_error("%s", "bad option", "report");
        }
    }
    if (optind != argc - 1)
        return usage_error("%s", optind >= argc ? "report: which trace file?"
                                                : "report: one trace file at a time",
                           "report");
    const char *path = argv[optind];
    omt_file f;
    char err[512];
    omt_read_status st = omt_file_read(path, &f, err, sizeof err);
    if (st != OMT_READ_OK) {
        fprintf(stderr, "objmem-trace: %s %s\n", path, err);
        return st == OMT_READ_IO ? OMT_EXIT_ERROR : OMT_EXIT_BAD_TRACE;
    }
    int code = omt_report(&f, path, &o, stdout) ? OMT_EXIT_OK : OMT_EXIT_ERROR;
    if (code == OMT_EXIT_OK && f.ending == OMT_ENDING_NONE) {
        fprintf(stderr,
                "objmem-trace: %s is incomplete: the program was killed, crashed "
                "or called _exit%s; this is the heap as of its last flush\n",
                path, f.cut ? " (the file ends inside a chunk)" : "");
        code = OMT_EXIT_INCOMPLETE;
    }
    omt_file_free(&f);
    return code;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(main_help, stderr);
        return OMT_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(main_help, stdout);
        return OMT_EXIT_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        printf("objmem-trace %s (trace format %d)\n", om_version_string(),
               OMT_VERSION);
        return OMT_EXIT_OK;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "help")) {
        const char *on = argc > 2 ? argv[2] : NULL;
        if (!on)
            fputs(main_help, stdout);
        else if (!strcmp(on, "run"))
            fputs(run_help, stdout);
        else if (!strcmp(on, "report"))
            fputs(report_help, stdout);
        else
            return usage_error("no command '%s' (commands: run, report)", on, NULL);
        return OMT_EXIT_OK;
    }
    return usage_error("no command '%s' (commands: run, report, help)", cmd, NULL);
}
