/*
 * main.c — the objmem-trace command: subcommands, options, help and exit
 * codes (docs/objmem-trace.1 documents them; docs/design.md,
 * "Whole-process tracer", explains the machinery).  The commands are one
 * table, and the options of the commands that read trace files another,
 * so that the help, the dispatch and the parsing cannot disagree.
 */
#define _GNU_SOURCE
#include "annotate.h"
#include "diff.h"
#include "flame.h"
#include "html.h"
#include "leaks.h"
#include "plot.h"
#include "print.h"
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
    "  0    success (leaks: no block was left allocated)\n"                \
    "  1    a file could not be read or written\n"                          \
    "  2    usage error (unknown command or option, bad value)\n"           \
    "  3    not a readable trace: not a trace file, corrupt, cut before its\n" \
    "       first flush, or written by a newer format version\n"           \
    "  4    the trace is incomplete (the program was killed, crashed or\n"  \
    "       called _exit); the output covers it up to its last flush\n"    \
    "  23   leaks: blocks were left allocated at exit (LeakSanitizer's code)\n" \
    "  run: the program's own exit status once it runs; before that\n"      \
    "  125  objmem-trace failed (bad option, no preload library, the output\n" \
    "       cannot be created)\n"                                           \
    "  126  the program cannot be run or traced (not executable, statically\n" \
    "       linked, another architecture, set-user-ID)\n"                  \
    "  127  the program was not found\n"

static const char run_help[] =
    "usage: objmem-trace run [-o FILE] [--frames N] [--interval MS]\n"
    "                        [--sample-rate BYTES] [-q] [--] PROG [ARGS...]\n"
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
    "  --sample-rate BYTES\n"
    "                     record a sample of the allocations, one every\n"
    "                     BYTES allocated on average, at near-zero cost;\n"
    "                     the readers then show unbiased estimates (~)\n"
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

static const char leaks_help[] =
    "usage: objmem-trace leaks FILE [--top N] [--format text|json]\n"
    "\n"
    "The blocks still allocated when the program exited, grouped by the\n"
    "stack that allocated them, largest first, worded as LeakSanitizer\n"
    "reports leaks.  Every block left counts, whether or not something\n"
    "still points to it: the recording does not scan memory.\n"
    "\n"
    "options:\n"
    "  --top N              show the N largest (default 0: all)\n"
    "  --format text|json   text (default) or JSON (fields: objmem-trace(1))\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 0 when no block was left, 23 (LeakSanitizer's code) when some\n"
    "were, 4 when the trace is incomplete (its end is not the program's).\n";

static const char diff_help[] =
    "usage: objmem-trace diff OLD NEW [--by line|function|file|traceback]\n"
    "                         [--top N] [--peak] [--format text|json]\n"
    "\n"
    "How the heap of trace NEW differs from that of trace OLD, group by\n"
    "group: size and count in NEW and their differences from OLD, sorted\n"
    "by the size difference, largest first (tracemalloc's compare_to).\n"
    "\n"
    "options:\n"
    "  --by KEY             group by the allocation site's line (default),\n"
    "                       function, file, or by the whole traceback\n"
    "  --top N              show the N largest differences (default 10;\n"
    "                       0: all)\n"
    "  --peak               compare the heaps at their peaks, not at the end\n"
    "  --format text|json   text (default) or JSON (fields: objmem-trace(1))\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 4, after the output, when either trace is incomplete.\n";

static const char flamegraph_help[] =
    "usage: objmem-trace flamegraph FILE [--peak] [--svg] [-o OUT]\n"
    "\n"
    "The live heap by stack as a flame graph: collapsed stacks, one line\n"
    "per stack, \"outermost;...;allocating-function BYTES\" (for\n"
    "flamegraph.pl, speedscope, inferno), or with --svg a self-contained\n"
    "SVG drawing (hover a frame for its figures).\n"
    "\n"
    "options:\n"
    "  --peak               the heap at its peak, not at the end\n"
    "  --svg                draw the SVG instead of writing collapsed stacks\n"
    "  -o, --output OUT     write to OUT (default: standard output)\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 4, after the output, when the trace is incomplete.\n";

static const char plot_help[] =
    "usage: objmem-trace plot FILE [-o OUT.svg]\n"
    "\n"
    "Memory over time as an SVG chart: the traced heap and the resident\n"
    "set size at every flush of the recording, with the heap's exact peak\n"
    "marked (mprof plot's drawing).\n"
    "\n"
    "options:\n"
    "  -o, --output OUT     write to OUT (default: standard output)\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 4, after the output, when the trace is incomplete.\n";

static const char annotate_help[] =
    "usage: objmem-trace annotate FILE FUNCTION [--peak] [--format text|json]\n"
    "\n"
    "FUNCTION's source, line by line, with the bytes and blocks live from\n"
    "each line (what the functions it calls allocate included) and their\n"
    "running total down the function: the table memory_profiler's @profile\n"
    "prints for Python.  The lines run from the function's declaration to\n"
    "its last line of code; its source file is read from where the\n"
    "debugging information says it was compiled.\n"
    "\n"
    "options:\n"
    "  --peak               the heap at its peak, not at the end\n"
    "  --format text|json   text (default) or JSON (fields: objmem-trace(1))\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 1 when no stack of the trace passes through FUNCTION; an\n"
    "unreadable source is said, and the figures written without it.\n"
    "Exits 4, after the output, when the trace is incomplete.\n";

static const char html_help[] =
    "usage: objmem-trace html FILE [--peak] [-o OUT.html]\n"
    "\n"
    "One self-contained page (no external reference; its style, script and\n"
    "drawings inline) for a browser offline: the recording's summary, the\n"
    "largest sites at the end, the flame graph and the timeline.\n"
    "\n"
    "options:\n"
    "  --peak               the sites and flame graph of the heap at its peak\n"
    "  -o, --output OUT     write to OUT (default: standard output)\n"
    "  -h, --help           this help\n"
    "\n"
    "Exits 4, after the output, when the trace is incomplete.\n";

static const char help_help[] =
    "usage: objmem-trace help [COMMAND]\n"
    "\n"
    "The help of COMMAND (as COMMAND --help), or of objmem-trace.\n";

/* What a reading command takes and does (reading_command). */
typedef struct reading_spec reading_spec;

typedef struct subcommand {
    const char *name;
    const char *summary; /* its line in objmem-trace --help */
    const char *help;
    /* Either the command's own function, or a reading command's spec. */
    int (*run)(int argc, char **argv);
    const reading_spec *reading;
} subcommand;

static const subcommand *find_command(const char *name);
static void list_commands(FILE *out);

static void main_help(FILE *out) {
    fputs("usage: objmem-trace COMMAND [OPTIONS] [ARGS...]\n"
          "\n"
          "Trace every heap allocation of an unmodified, dynamically linked\n"
          "program, and read the recording back.\n"
          "\n"
          "commands:\n",
          out);
    list_commands(out);
    fputs("\n"
          "options:\n"
          "  -h, --help     this help\n"
          "  -V, --version  the version\n"
          "\n" EXIT_CODES "\n"
          "See objmem-trace(1).\n",
          out);
}

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
        {"sample-rate", required_argument, NULL, 's'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    omt_run_options o = {NULL, OMT_DEFAULT_FRAMES, OMT_DEFAULT_INTERVAL_MS, 0, false};
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
        case 's':
            if (!parse_count(optarg, 1, (long)OMT_MAX_SAMPLE_RATE, &v))
                return usage_error("--sample-rate takes a number of bytes, 1 to "
                                   "1099511627776, not '%s'", optarg, "run");
            o.sample_rate = (uint64_t)v;
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

/* ---- the commands that read trace files -------------------------------------- */

enum {
    OPT_BY = 1 << 0,
    OPT_TOP = 1 << 1,
    OPT_PEAK = 1 << 2,
    OPT_FORMAT = 1 << 3,
    OPT_SVG = 1 << 4,
    OPT_OUTPUT = 1 << 5,
    ARG_FUNCTION = 1 << 6 /* a function's name follows the trace files */
};

/* Every option a reading command may take; each command allows some. */
static const struct {
    struct option option;
    unsigned flag;
} reading_options[] = {
    {{"by", required_argument, NULL, 'b'}, OPT_BY},
    {{"top", required_argument, NULL, 't'}, OPT_TOP},
    {{"peak", no_argument, NULL, 'p'}, OPT_PEAK},
    {{"format", required_argument, NULL, 'f'}, OPT_FORMAT},
    {{"svg", no_argument, NULL, 's'}, OPT_SVG},
    {{"output", required_argument, NULL, 'o'}, OPT_OUTPUT},
};
#define NREADING (sizeof reading_options / sizeof *reading_options)

typedef struct reading {
    const char *command;
    unsigned allowed;
    omt_group_by by;
    size_t top;
    bool peak, json, svg;
    const char *output;   /* NULL: standard output */
    const char *files[2];
    const char *function; /* ARG_FUNCTION's */
} reading;

/* Parse the options and the nfiles trace files of a reading command
 * into r; -1 to go on, else the exit code (after --help, or a usage
 * error). */
static int parse_reading(int argc, char **argv, reading *r, size_t nfiles,
                         const char *help) {
    struct option opts[NREADING + 2];
    size_t n = 0;
    for (size_t i = 0; i < NREADING; i++)
        if (reading_options[i].flag & r->allowed)
            opts[n++] = reading_options[i].option;
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){NULL, 0, NULL, 0};
    const char *shorts = r->allowed & OPT_OUTPUT ? "ho:" : "h";
    long v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!strcmp(optarg, "line"))
                r->by = OMT_BY_LINE;
            else if (!strcmp(optarg, "function"))
                r->by = OMT_BY_FUNCTION;
            else if (!strcmp(optarg, "file"))
                r->by = OMT_BY_FILE;
            else if (!strcmp(optarg, "traceback"))
                r->by = OMT_BY_TRACEBACK;
            else
                return usage_error("--by takes line, function, file or traceback, not '%s'",
                                   optarg, r->command);
            break;
        case 't':
            if (!parse_count(optarg, 0, 1000000000, &v))
                return usage_error("--top takes a count (0 for all), not '%s'", optarg,
                                   r->command);
            r->top = (size_t)v;
            break;
        case 'p':
            r->peak = true;
            break;
        case 'f':
            if (!strcmp(optarg, "json"))
                r->json = true;
            else if (!strcmp(optarg, "text"))
                r->json = false;
            else
                return usage_error("--format takes text or json, not '%s'", optarg,
                                   r->command);
            break;
        case 's':
            r->svg = true;
            break;
        case 'o':
            r->output = optarg;
            break;
        case 'h':
            fputs(help, stdout);
            return OMT_EXIT_OK;
        default:
            return usage_error("%s", "bad option", r->command);
        }
    }
    size_t nargs = nfiles + (r->allowed & ARG_FUNCTION ? 1 : 0);
    if ((size_t)(argc - optind) != nargs) {
        char what[80];
        snprintf(what, sizeof what, "%s: %s", r->command,
                 r->allowed & ARG_FUNCTION
                     ? "a trace file and a function's name"
                 : argc - optind < (int)nfiles
                     ? (nfiles == 1 ? "which trace file?" : "which two trace files?")
                     : (nfiles == 1 ? "one trace file at a time" : "two trace files"));
        return usage_error("%s", what, r->command);
    }
    for (size_t i = 0; i < nfiles; i++)
        r->files[i] = argv[optind + (int)i];
    if (r->allowed & ARG_FUNCTION)
        r->function = argv[optind + (int)nfiles];
    return -1;
}

/* Read the trace at path into f: OMT_EXIT_OK, or the exit code of why
 * not (with a message). */
static int load(const char *path, omt_file *f) {
    char err[512];
    omt_read_status st = omt_file_read(path, f, err, sizeof err);
    if (st == OMT_READ_OK)
        return OMT_EXIT_OK;
    fprintf(stderr, "objmem-trace: %s %s\n", path, err);
    return st == OMT_READ_IO ? OMT_EXIT_ERROR : OMT_EXIT_BAD_TRACE;
}

/* After a command's output: OMT_EXIT_INCOMPLETE, with a note, when the
 * trace does not reach the program's end; else code. */
static int incomplete(int code, const char *path, const omt_file *f) {
    if (f->ending != OMT_ENDING_NONE)
        return code;
    fprintf(stderr,
            "objmem-trace: %s is incomplete: the program was killed, crashed "
            "or called _exit%s; this covers it up to its last flush\n",
            path, f->cut ? " (the file ends inside a chunk)" : "");
    return code == OMT_EXIT_ERROR ? code : OMT_EXIT_INCOMPLETE;
}

/* Run a reading command: parse, read its files, open the output, write
 * it with `write`, close; the exit code. */
typedef bool (*writer)(const reading *r, const omt_file *f, FILE *out, int *code);

struct reading_spec {
    unsigned allowed;  /* OPT_* and ARG_* */
    omt_group_by by;   /* defaults */
    size_t top;
    size_t nfiles;     /* trace files it reads: 1 or 2 */
    writer write;
};

/* Run reading command c: its options, its files loaded, its output
 * written. */
static int reading_command(int argc, char **argv, const subcommand *c) {
    const reading_spec *spec = c->reading;
    size_t nfiles = spec->nfiles;
    reading parsed = {.command = c->name, .allowed = spec->allowed,
                      .by = spec->by, .top = spec->top};
    reading *r = &parsed;
    int code = parse_reading(argc, argv, r, nfiles, c->help);
    if (code >= 0)
        return code;
    omt_file f[2];
    size_t loaded = 0;
    for (code = OMT_EXIT_OK; loaded < nfiles && code == OMT_EXIT_OK; loaded++)
        code = load(r->files[loaded], &f[loaded]);
    if (code != OMT_EXIT_OK)
        loaded--; /* the one that failed holds nothing */
    FILE *out = code == OMT_EXIT_OK ? omt_output_open(r->output) : NULL;
    if (code == OMT_EXIT_OK && !out)
        code = OMT_EXIT_ERROR;
    if (out) {
        bool written = spec->write(r, f, out, &code);
        if (!omt_output_close(out, r->output) || !written)
            code = OMT_EXIT_ERROR;
        for (size_t i = 0; i < nfiles; i++)
            code = incomplete(code, r->files[i], &f[i]);
    }
    for (size_t i = 0; i < loaded; i++)
        omt_file_free(&f[i]);
    return code;
}

static bool write_report(const reading *r, const omt_file *f, FILE *out, int *code) {
    (void)code;
    omt_report_options o = {r->by, r->top, r->peak, r->json};
    return omt_report(f, r->files[0], &o, out);
}


static bool write_leaks(const reading *r, const omt_file *f, FILE *out, int *code) {
    omt_leaks_options o = {r->top, r->json};
    bool leaked = false;
    bool ok = omt_leaks(f, r->files[0], &o, out, &leaked);
    if (leaked)
        *code = OMT_EXIT_LEAKS;
    return ok;
}


static bool write_diff(const reading *r, const omt_file *f, FILE *out, int *code) {
    (void)code;
    omt_report_options o = {r->by, r->top, r->peak, r->json};
    return omt_diff(&f[0], r->files[0], &f[1], r->files[1], &o, out);
}


static bool write_flamegraph(const reading *r, const omt_file *f, FILE *out,
                             int *code) {
    (void)code;
    omt_flame_options o = {r->peak, r->svg};
    return omt_flamegraph(f, r->files[0], &o, out);
}


static bool write_plot(const reading *r, const omt_file *f, FILE *out, int *code) {
    (void)code;
    return omt_plot(f, r->files[0], out);
}


static bool write_annotate(const reading *r, const omt_file *f, FILE *out,
                           int *code) {
    (void)code;
    omt_annotate_options o = {r->function, r->peak, r->json};
    return omt_annotate(f, r->files[0], &o, out);
}


static bool write_html(const reading *r, const omt_file *f, FILE *out, int *code) {
    (void)code;
    return omt_html(f, r->files[0], r->peak, out);
}


static int cmd_help(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(help_help, stdout);
        return OMT_EXIT_OK;
    }
    if (argc > 2)
        return usage_error("%s", "help: one command at a time", "help");
    if (argc < 2) {
        main_help(stdout);
        return OMT_EXIT_OK;
    }
    const subcommand *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "objmem-trace: no command '%s' (commands:", argv[1]);
        list_commands(NULL);
        fputs(")\n", stderr);
        return OMT_EXIT_USAGE;
    }
    fputs(c->help, stdout);
    return OMT_EXIT_OK;
}

/* The reading commands: options allowed, default grouping and --top,
 * files read, and the writer. */
static const reading_spec report_spec = {
    OPT_BY | OPT_TOP | OPT_PEAK | OPT_FORMAT, OMT_BY_LINE, 10, 1, write_report};
static const reading_spec leaks_spec = {
    OPT_TOP | OPT_FORMAT, OMT_BY_TRACEBACK, 0, 1, write_leaks};
static const reading_spec diff_spec = {
    OPT_BY | OPT_TOP | OPT_PEAK | OPT_FORMAT, OMT_BY_LINE, 10, 2, write_diff};
static const reading_spec flamegraph_spec = {
    OPT_PEAK | OPT_SVG | OPT_OUTPUT, OMT_BY_TRACEBACK, 0, 1, write_flamegraph};
static const reading_spec plot_spec = {
    OPT_OUTPUT, OMT_BY_LINE, 0, 1, write_plot};
static const reading_spec annotate_spec = {
    OPT_PEAK | OPT_FORMAT | ARG_FUNCTION, OMT_BY_LINE, 0, 1, write_annotate};
static const reading_spec html_spec = {
    OPT_PEAK | OPT_OUTPUT, OMT_BY_LINE, 0, 1, write_html};

static const subcommand commands[] = {
    {"run", "record a program's allocations into a trace file", run_help,
     cmd_run, NULL},
    {"report", "the heap a trace shows, at the end or at its peak", report_help,
     NULL, &report_spec},
    {"leaks", "the blocks left at exit, by stack, as LeakSanitizer reports",
     leaks_help, NULL, &leaks_spec},
    {"diff", "how one trace's heap differs from another's", diff_help, NULL,
     &diff_spec},
    {"flamegraph", "the heap by stack: collapsed stacks, or an SVG flame graph",
     flamegraph_help, NULL, &flamegraph_spec},
    {"plot", "memory over time, the peak marked, as an SVG chart", plot_help,
     NULL, &plot_spec},
    {"annotate", "a function's source lines with the bytes allocated on each",
     annotate_help, NULL, &annotate_spec},
    {"html", "one offline HTML page: summary, top sites, flame graph, timeline",
     html_help, NULL, &html_spec},
    {"help", "help on a command: objmem-trace help run", help_help, cmd_help,
     NULL},
};
#define NCOMMANDS (sizeof commands / sizeof *commands)

static const subcommand *find_command(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

/* The commands with their summaries to out, or their names, separated by
 * commas, to stderr when out is NULL. */
static void list_commands(FILE *out) {
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (out)
            fprintf(out, "  %-12s%s\n", commands[i].name, commands[i].summary);
        else
            fprintf(stderr, "%s %s", i ? "," : "", commands[i].name);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        main_help(stderr);
        return OMT_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
        main_help(stdout);
        return OMT_EXIT_OK;
    }
    if (!strcmp(name, "-V") || !strcmp(name, "--version")) {
        printf("objmem-trace %s (trace format %d)\n", om_version_string(),
               OMT_VERSION);
        return OMT_EXIT_OK;
    }
    const subcommand *c = find_command(name);
    if (c)
        return c->run ? c->run(argc - 1, argv + 1)
                      : reading_command(argc - 1, argv + 1, c);
    fprintf(stderr, "objmem-trace: no command '%s' (commands:", name);
    list_commands(NULL);
    fputs(")\nTry 'objmem-trace --help'.\n", stderr);
    return OMT_EXIT_USAGE;
}
