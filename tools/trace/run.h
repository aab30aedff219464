/*
 * run.h — `objmem-trace run`: checks that a program can be traced by
 * preloading, then runs it in place of the command with the preload
 * library and the recording options in its environment.
 */
#ifndef OBJMEM_TRACE_RUN_H
#define OBJMEM_TRACE_RUN_H

#include <stdbool.h>
#include <stdint.h>

/* The command's exit codes (objmem-trace --help lists them). */
enum {
    OMT_EXIT_OK = 0,
    OMT_EXIT_ERROR = 1,
    OMT_EXIT_USAGE = 2,
    OMT_EXIT_BAD_TRACE = 3,
    OMT_EXIT_INCOMPLETE = 4,
    OMT_EXIT_LEAKS = 23, /* leaks found blocks: LeakSanitizer's own code */
    OMT_EXIT_RUN_FAILED = 125,
    OMT_EXIT_CANNOT_RUN = 126,
    OMT_EXIT_NOT_FOUND = 127
};

typedef struct omt_run_options {
    const char *output; /* NULL: objmem-trace.PID.trace */
    int frames;
    unsigned interval_ms;
    uint64_t sample_rate; /* 0: exact; else mean bytes between samples */
    bool quiet;
} omt_run_options;

/* Run argv[0] with argv as its arguments; returns only on failure, with
 * the exit code to use (a message is on stderr). */
int omt_run(const omt_run_options *o, char **argv);

#endif /* OBJMEM_TRACE_RUN_H */
