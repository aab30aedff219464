/*
 * svg.c — SVG documents and XML text (svg.h).
 */
#include "svg.h"

#include <stdbool.h>
#include <stdint.h>

/* The length of the UTF-8 sequence at p (1 to 4), or 0 when it is not
 * one (a stray continuation byte, an overlong or cut sequence). */
static size_t utf8_length(const unsigned char *p) {
    size_t n;
    uint32_t c;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, c = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, c = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, c = p[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0; /* the NUL at the end stops here too */
        c = c << 6 | (p[i] & 0x3f);
    }
    static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < least[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) ||
        c == 0xfffe || c == 0xffff)
        return 0;
    return n;
}

void omt_svg_text_cut(FILE *out, const char *s, size_t max_chars) {
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0;
    for (const unsigned char *q = p; *q; total++) {
        size_t n = utf8_length(q);
        q += n ? n : 1;
    }
    bool cut = total > max_chars;
    size_t keep = cut ? (max_chars >= 2 ? max_chars - 2 : 0) : total;
    for (size_t i = 0; i < keep; i++) {
        size_t n = utf8_length(p);
        if (!n || (*p < 0x20 && *p != '\t') || *p == 0x7f)
            fputc('?', out);
        else if (*p == '&')
            fputs("&amp;", out);
        else if (*p == '<')
            fputs("&lt;", out);
        else if (*p == '>')
            fputs("&gt;", out);
        else if (*p == '"')
            fputs("&quot;", out);
        else if (*p == '\'')
            fputs("&#39;", out);
        else
            fwrite(p, 1, n, out);
        p += n ? n : 1;
    }
    if (cut)
        fputs(max_chars >= 2 ? ".." : "", out);
}

void omt_svg_text(FILE *out, const char *s) { omt_svg_text_cut(out, s, SIZE_MAX); }

void omt_svg_begin(FILE *out, double width, double height, const char *title) {
    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" "
            "width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"monospace\" font-size=\"12\">\n<title>",
            width, height, width, height);
    omt_svg_text(out, title);
    fputs("</title>\n<style>\n"
          "  .title { font-size: 16px; }\n"
          "  .label { font-size: 11px; }\n"
          "  .note { font-size: 11px; fill: #555; }\n"
          "  .frame:hover rect { stroke: #000; stroke-width: 0.7; }\n"
          "</style>\n",
          out);
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" "
                 "fill=\"#ffffff\"/>\n",
            width, height);
}

void omt_svg_end(FILE *out) { fputs("</svg>\n", out); }
