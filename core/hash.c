/*
 * hash.c — the engine's FNV-1a hashes: 32 bits over the UTF-16 code units of
 * UTF-8 text, as the original worker hashed JavaScript strings (receipt ids,
 * payload hashes, rule sources, the part and shard of a ticker), and 64 bits
 * over bytes (the fingerprint of a part of the store).  No allocation, no
 * failure.
 */
#include "hash.h"
#include "retape.h"

#include <string.h>

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and the
 * code point in *cp, or length 1 and U+FFFD for an invalid byte. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (len > n)
        goto invalid;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            goto invalid;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        goto invalid;
    *cp = v;
    return len;
invalid:
    *cp = 0xFFFD;
    return 1;
}

uint32_t retape_fnv1a32_utf16(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    uint32_t h = 2166136261u;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        i += utf8_decode(s + i, len - i, &cp);
        if (cp >= 0x10000) { /* surrogate pair, as JavaScript strings store it */
            cp -= 0x10000;
            h = (h ^ (0xD800 + (cp >> 10))) * 16777619u;
            h = (h ^ (0xDC00 + (cp & 0x3FF))) * 16777619u;
        } else {
            h = (h ^ cp) * 16777619u;
        }
    }
    return h;
}

/* The part (0..parts-1) that owns a ticker: its FNV-1a 32 modulo the
 * parts.  The one function of both a threaded replay's inboxes and
 * `--shard i/n` (retape.pool.part_of, which retape.scope calls). */
unsigned retape_part_of(const char *ticker, unsigned parts)
{
    return parts ? retape_fnv1a32_utf16(ticker, strlen(ticker)) % parts : 0;
}

uint64_t retape_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}
