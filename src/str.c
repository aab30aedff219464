/*
 * str.c — om_str, an immutable NUL-terminated byte string with a cached
 * hash; not collectable, as it holds no references (docs/design.md, "Ready
 * containers").
 */
#include "internal.h"

#include <string.h>

typedef struct om_str {
    OM_OBJECT_HEAD
    size_t len;
    uint64_t hash;
    char data[];         /* len bytes and a NUL */
} om_str;

uint64_t om_hash_bytes(const void *data, size_t len) {
    /* FNV-1a over the bytes, then a full-avalanche finish so that the low
     * bits a hash table uses depend on every byte. */
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return om_hash_word(h ^ len);
}

static uint64_t str_hash(const om_object *self) {
    return ((const om_str *)self)->hash;
}

static int str_eq(const om_object *self, const om_object *other) {
    const om_str *a = (const om_str *)self, *b = (const om_str *)other;
    return a->len == b->len && a->hash == b->hash &&
           memcmp(a->data, b->data, a->len) == 0;
}

static size_t str_extra_size(const om_object *self) {
    return ((const om_str *)self)->len + 1;
}

const om_type om_str_type = {
    .name = "str",
    .size = sizeof(om_str),
    .extra_size = str_extra_size,
    .hash = str_hash,
    .eq = str_eq,
};

/* The string, or NULL with an error naming `func`, whose caller resumes at
 * ret. */
static om_object *str_make(om_runtime *rt, const char *func, const char *data,
                           size_t len, uintptr_t ret) {
    if (!rt)
        return NULL;
    if (!data && len)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "%s: data is NULL", func);
    if (len > SIZE_MAX - sizeof(om_str) - 1)
        return OM_FAIL_NULL(rt, OM_ERR_OVERFLOW, "%s: %zu bytes is too long",
                            func, len);
    om_str *s = (om_str *)om_object_alloc(rt, func, &om_str_type, len + 1, ret);
    if (!s)
        return NULL;
    s->len = len;
    if (len)
        memcpy(s->data, data, len);
    s->data[len] = '\0';
    s->hash = om_hash_bytes(s->data, len);
    return &s->om_head;
}

om_object *om_str_from_bytes(om_runtime *rt, const char *data, size_t len) {
    return str_make(rt, "om_str_from_bytes", data, len, OM_RETURN_ADDRESS());
}

om_object *om_str_new(om_runtime *rt, const char *cstr) {
    if (rt && !cstr)
        return OM_FAIL_NULL(rt, OM_ERR_ARG, "om_str_new: string is NULL");
    return str_make(rt, "om_str_new", cstr, cstr ? strlen(cstr) : 0,
                    OM_RETURN_ADDRESS());
}

const char *om_str_data(const om_object *str) {
    return om_expect("om_str_data", str, &om_str_type) == OM_OK
               ? ((const om_str *)str)->data
               : NULL;
}

size_t om_str_len(const om_object *str) {
    return om_expect("om_str_len", str, &om_str_type) == OM_OK
               ? ((const om_str *)str)->len
               : 0;
}

bool om_str_equals_bytes(const om_object *str, uint64_t hash,
                         const char *data, size_t len) {
    const om_str *s = (const om_str *)str;
    return str->om_type_ == &om_str_type && s->hash == hash && s->len == len &&
           memcmp(s->data, data, len) == 0;
}
