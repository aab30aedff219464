/*
 * text.c — C strings read as the Python str they stand for: UTF-8 with
 * surrogateescape, as os.fsdecode reads a POSIX filename.  Filters match
 * patterns against filenames, and statistics sort filenames, code point by
 * code point, as tracemalloc does on str (docs/design.md, "Tracer").
 */
#include "snapshot.h"

/* Whether byte b continues a sequence whose allowed range is [lo, hi]. */
static bool in_range(unsigned char b, unsigned char lo, unsigned char hi) {
    return b >= lo && b <= hi;
}

/* Length of the well-formed UTF-8 sequence at s (Unicode table 3-7), or 0.
 * The NUL byte ends a sequence early, being no continuation byte. */
static int sequence_length(const unsigned char *s) {
    unsigned char b = s[0];
    if (b < 0x80)
        return 1;
    if (in_range(b, 0xC2, 0xDF))
        return in_range(s[1], 0x80, 0xBF) ? 2 : 0;
    if (in_range(b, 0xE0, 0xEF)) {
        /* E0 excludes overlong forms, ED the surrogates. */
        unsigned char lo = b == 0xE0 ? 0xA0 : 0x80;
        unsigned char hi = b == 0xED ? 0x9F : 0xBF;
        return in_range(s[1], lo, hi) && in_range(s[2], 0x80, 0xBF) ? 3 : 0;
    }
    if (in_range(b, 0xF0, 0xF4)) {
        /* F0 excludes overlong forms, F4 what lies past U+10FFFF. */
        unsigned char lo = b == 0xF0 ? 0x90 : 0x80;
        unsigned char hi = b == 0xF4 ? 0x8F : 0xBF;
        return in_range(s[1], lo, hi) && in_range(s[2], 0x80, 0xBF) &&
                       in_range(s[3], 0x80, 0xBF)
                   ? 4
                   : 0;
    }
    return 0;
}

uint32_t om_text_next(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    int len = sequence_length(p);
    if (len == 0) {
        *s += 1;
        return 0xDC00u + p[0]; /* surrogateescape: U+DC80..U+DCFF */
    }
    static const unsigned char lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t c = p[0] & lead_mask[len];
    for (int i = 1; i < len; i++)
        c = c << 6 | (p[i] & 0x3F);
    *s += len;
    return c;
}

int om_text_compare(const char *a, const char *b) {
    if (a == b)
        return 0;
    while (*a && *b) {
        /* ASCII on both sides compares as bytes; decode only past it. */
        if (!((unsigned char)*a & 0x80) && !((unsigned char)*b & 0x80)) {
            if (*a != *b)
                return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
            a++, b++;
            continue;
        }
        uint32_t ca = om_text_next(&a), cb = om_text_next(&b);
        if (ca != cb)
            return ca < cb ? -1 : 1;
    }
    return (*a != '\0') - (*b != '\0');
}
