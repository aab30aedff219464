/*
 * print.c — the pieces of output every reader of a trace file writes
 * alike (print.h).
 */
#define _GNU_SOURCE
#include "print.h"

#include <objmem.h>

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void omt_size_text(char *buf, size_t n, double size, bool sign) {
    om_format_size(buf, n, size, sign);
}

void omt_json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out); /* UTF-8 passes through; other bytes too */
    }
    fputc('"', out);
}

void omt_json_frame(FILE *out, const omt_sym *s) {
    fputs("{\"file\": ", out);
    omt_json_string(out, s->file);
    fprintf(out, ", \"line\": %u, \"function\": ", s->line);
    omt_json_string(out, s->function);
    fputs(", \"module\": ", out);
    omt_json_string(out, s->module);
    fprintf(out, ", \"offset\": %" PRIu64 "}", s->offset);
}

static void json_command(FILE *out, const omt_file *f) {
    fputc('[', out);
    for (size_t i = 0; i < f->cmdline_len;) {
        size_t n = strnlen(f->cmdline + i, f->cmdline_len - i);
        char *arg = strndup(f->cmdline + i, n);
        if (i)
            fputs(", ", out);
        omt_json_string(out, arg ? arg : "");
        free(arg);
        i += n + 1;
    }
    fputc(']', out);
}

const char *omt_ending_name(omt_ending e) {
    static const char *names[] = {"incomplete", "exit", "exec"};
    return names[e];
}

void omt_json_recording(FILE *out, const omt_file *f, const char *path,
                        const char *sep) {
    fputs("\"file\": ", out);
    omt_json_string(out, path);
    fprintf(out, "%s\"pid\": %" PRIu32 "%s\"ppid\": %" PRIu32
                 "%s\"origin\": \"%s\"%s\"command\": ",
            sep, f->pid, sep, f->ppid, sep, f->origin == 1 ? "fork" : "start",
            sep);
    json_command(out, f);
    fprintf(out, "%s\"executable\": ", sep);
    omt_json_string(out, f->exe ? f->exe : "");
    fprintf(out, "%s\"ending\": \"%s\"", sep, omt_ending_name(f->ending));
    if (f->ending == OMT_ENDING_EXEC) {
        fprintf(out, "%s\"exec\": ", sep);
        omt_json_string(out, f->exec_path ? f->exec_path : "");
    }
    fprintf(out, "%s\"duration_s\": %.3f%s\"traceback_limit\": %" PRIu32, sep,
            omt_seconds(f->t), sep, f->nframe);
    fprintf(out, "%s\"sampled\": %s%s\"sample_rate\": %" PRIu64, sep,
            f->sample_rate ? "true" : "false", sep, f->sample_rate);
}

void omt_print_sampling(FILE *out, const omt_file *f, const char *prefix,
                        const char *suffix) {
    if (f->sample_rate)
        fprintf(out, "%ssampled every %" PRIu64 " bytes on average: figures are "
                     "estimates%s", prefix, f->sample_rate, suffix);
}

void omt_print_command(FILE *out, const omt_file *f) {
    for (size_t i = 0; i < f->cmdline_len;) {
        size_t n = strnlen(f->cmdline + i, f->cmdline_len - i);
        fprintf(out, " %.*s", (int)n, f->cmdline + i);
        i += n + 1;
    }
}

void omt_print_ending(FILE *out, const omt_file *f) {
    switch (f->ending) {
    case OMT_ENDING_EXIT:
        fprintf(out, "exit after %.3f s", omt_seconds(f->t));
        break;
    case OMT_ENDING_EXEC:
        fprintf(out, "exec of %s after %.3f s",
                f->exec_path ? f->exec_path : "?", omt_seconds(f->t));
        break;
    case OMT_ENDING_NONE:
        fprintf(out, "incomplete (killed, crashed or cut short); as of the "
                     "last flush, at %.3f s", omt_seconds(f->t));
        break;
    }
}

static bool is_stdout(const char *path) { return !path || !strcmp(path, "-"); }

FILE *omt_output_open(const char *path) {
    if (is_stdout(path))
        return stdout;
    FILE *out = fopen(path, "w");
    if (!out)
        fprintf(stderr, "objmem-trace: %s cannot be written: %s\n", path,
                strerror(errno));
    return out;
}

bool omt_output_close(FILE *out, const char *path) {
    bool ok = fflush(out) == 0 && !ferror(out);
    int err = ok ? 0 : errno;
    if (!is_stdout(path)) {
        if (fclose(out) != 0 && ok) {
            ok = false;
            err = errno;
        }
        if (!ok)
            remove(path);
    }
    if (!ok)
        fprintf(stderr, "objmem-trace: %s cannot be written%s%s\n",
                is_stdout(path) ? "the output" : path, err ? ": " : "",
                err ? strerror(err) : "");
    return ok;
}
