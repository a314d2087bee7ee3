/*
 * pack.c — the packed value format (pack.h): writers and readers of its
 * primitives.  The walk over a value tree is the caller's (lua_pack.c).
 */
#include "pack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Makes room for `more` bytes; 0, or -1 (and w->failed) when out of memory. */
static int reserve(pack_writer *w, size_t more)
{
    if (w->failed)
        return -1;
    if (w->len + more <= w->cap)
        return 0;
    if (grow_buffer(&w->data, &w->cap, w->len + more, 256) != 0) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

static void put_varint(pack_writer *w, uint64_t v)
{
    if (reserve(w, 10) != 0)
        return;
    unsigned char *p = (unsigned char *)w->data + w->len;
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    w->len = (size_t)((char *)p - w->data);
}

static void put_byte(pack_writer *w, int b)
{
    if (reserve(w, 1) == 0)
        w->data[w->len++] = (char)b;
}

void pack_writer_reset(pack_writer *w)
{
    w->len = 0;
    w->failed = 0;
}

void pack_writer_free(pack_writer *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

void pack_put_nil(pack_writer *w) { put_byte(w, PACK_NIL); }
void pack_put_bool(pack_writer *w, int b) { put_byte(w, b ? PACK_TRUE : PACK_FALSE); }

void pack_put_number(pack_writer *w, double x)
{
    if (!isfinite(x)) {
        put_byte(w, PACK_NIL);
        return;
    }
    if (x == 0)
        x = 0; /* -0 reads back as 0 from JSON: the same here */
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (reserve(w, 9) != 0)
        return;
    unsigned char *p = (unsigned char *)w->data + w->len;
    p[0] = PACK_NUMBER;
    for (int i = 0; i < 8; i++)
        p[1 + i] = (unsigned char)(bits >> (8 * i));
    w->len += 9;
}

void pack_put_key(pack_writer *w, const char *s, size_t len)
{
    put_varint(w, len);
    if (reserve(w, len) != 0)
        return;
    memcpy(w->data + w->len, s, len);
    w->len += len;
}

void pack_put_raw(pack_writer *w, const char *s, size_t len)
{
    if (reserve(w, len) != 0)
        return;
    memcpy(w->data + w->len, s, len);
    w->len += len;
}

void pack_put_string(pack_writer *w, const char *s, size_t len)
{
    put_byte(w, PACK_STRING);
    pack_put_key(w, s, len);
}

void pack_put_count(pack_writer *w, int tag, uint64_t n)
{
    put_byte(w, tag);
    put_varint(w, n);
}

void pack_reader_init(pack_reader *r, const char *data, size_t len)
{
    r->p = (const unsigned char *)data;
    r->end = r->p + len;
}

int pack_get_tag(pack_reader *r)
{
    if (r->p >= r->end)
        return 0;
    return *r->p++;
}

int pack_get_count(pack_reader *r, uint64_t *n)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return -1;
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *n = v;
            return 0;
        }
    }
    return -1;
}

int pack_get_number(pack_reader *r, double *out)
{
    if (r->end - r->p < 8)
        return -1;
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memcpy(out, &bits, sizeof *out);
    return 0;
}

int pack_get_string(pack_reader *r, const char **s, size_t *len)
{
    uint64_t n;
    if (pack_get_count(r, &n) != 0 || n > (uint64_t)(r->end - r->p))
        return -1;
    *s = (const char *)r->p;
    *len = (size_t)n;
    r->p += n;
    return 0;
}

int pack_skip_value(pack_reader *r, int depth)
{
    if (depth > PACK_MAX_DEPTH)
        return -1;
    const char *s;
    size_t len;
    uint64_t n;
    double x;
    switch (pack_get_tag(r)) {
    case PACK_NIL:
    case PACK_FALSE:
    case PACK_TRUE: return 0;
    case PACK_NUMBER: return pack_get_number(r, &x);
    case PACK_STRING: return pack_get_string(r, &s, &len);
    case PACK_LIST:
        if (pack_get_count(r, &n) != 0)
            return -1;
        for (uint64_t i = 0; i < n; i++)
            if (pack_skip_value(r, depth + 1) != 0)
                return -1;
        return 0;
    case PACK_OBJECT:
        if (pack_get_count(r, &n) != 0)
            return -1;
        for (uint64_t i = 0; i < n; i++)
            if (pack_get_string(r, &s, &len) != 0 || pack_skip_value(r, depth + 1) != 0)
                return -1;
        return 0;
    default: return -1;
    }
}
