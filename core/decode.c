/*
 * decode.c — JSON scanning primitives for the selective payload decoder:
 * whitespace, strings, numbers, skipping whole values.  decode.h states the
 * accepted subset; lua_decode.c builds Lua values from what is scanned.
 *
 * Numbers: lua-cjson reads every number with strtod.  Most payload numbers
 * (prices, scores, timestamps) have at most 15-19 significant digits and a
 * small decimal exponent, where Clinger's fast path (one exact integer
 * mantissa, one multiplication or division by an exact power of ten) gives
 * the correctly rounded double, i.e. exactly strtod's result, at a fraction
 * of its cost.  The rest (17-digit ratios, large exponents) goes to strtod.
 */
#include "decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* decode.h documents each function: purpose, the [p, end) convention, NULL
 * for "outside the subset".  None allocates or can fail otherwise. */

const char *decode_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Scans one string token; validates its escapes (see decode.h). */
const char *decode_string(const char *p, const char *end, const char **s, size_t *len, int *escaped)
{
    if (p >= end || *p != '"')
        return NULL;
    const char *start = ++p;
    int esc = 0;
    while (p < end) {
        /* Eight plain bytes at a time (no quote, backslash or control byte):
         * the bulk of a payload's strings. */
        while (end - p >= 8) {
            uint64_t x;
            memcpy(&x, p, 8);
            uint64_t quote = x ^ UINT64_C(0x2222222222222222), bslash = x ^ UINT64_C(0x5C5C5C5C5C5C5C5C);
            uint64_t hit = ((quote - UINT64_C(0x0101010101010101)) & ~quote) |
                           ((bslash - UINT64_C(0x0101010101010101)) & ~bslash) |
                           ((x - UINT64_C(0x2020202020202020)) & ~x);
            hit &= UINT64_C(0x8080808080808080);
            if (hit) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* straight to the first such byte: the lowest flag is exact
                 * (a borrow only flags bytes above a true hit) */
                p += __builtin_ctzll(hit) >> 3;
#endif
                break;
            }
            p += 8;
        }
        if (p >= end)
            break;
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *s = start;
            *len = (size_t)(p - start);
            *escaped = esc;
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            esc = 1;
            if (++p >= end)
                return NULL;
            switch (*p) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p++;
                break;
            case 'u': {
                if (end - p < 5)
                    return NULL;
                int v = 0;
                for (int i = 1; i <= 4; i++) {
                    int h = hex_value(p[i]);
                    if (h < 0)
                        return NULL;
                    v = v * 16 + h;
                }
                if (v >= 0xD800 && v <= 0xDFFF) /* surrogates: leave them to cjson */
                    return NULL;
                p += 5;
                break;
            }
            default:
                return NULL;
            }
            continue;
        }
        p++;
    }
    return NULL;
}

/* Exact powers of ten representable as doubles (10^0 .. 10^22). */
static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Validates one RFC 8259 number token and, with out, converts it: the
 * Clinger fast path when exact, strtod on a NUL-terminated copy otherwise. */
const char *decode_number(const char *p, const char *end, double *out)
{
    const char *start = p;
    if (!out) { /* validation only (a skipped value): the grammar, no conversion */
        if (p < end && *p == '-')
            p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        if (*p == '0')
            p++;
        else
            while (p < end && is_digit(*p))
                p++;
        if (p < end && *p == '.') {
            if (++p >= end || !is_digit(*p))
                return NULL;
            while (p < end && is_digit(*p))
                p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < end && (*p == '+' || *p == '-'))
                p++;
            if (p >= end || !is_digit(*p))
                return NULL;
            while (p < end && is_digit(*p))
                p++;
        }
        if (p < end && !(*p == ',' || *p == '}' || *p == ']' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
            return NULL;
        /* only a long or exponent form can overflow: checked then */
        if ((p - start > 300 || memchr(start, 'e', (size_t)(p - start)) || memchr(start, 'E', (size_t)(p - start)))
            && !decode_number_finite(start, (size_t)(p - start)))
            return NULL;
        return p;
    }
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !is_digit(*p))
        return NULL;
    uint64_t mant = 0;
    int digits = 0;      /* significant digits accumulated in mant */
    int dropped = 0;     /* digits that did not fit (the fast path is off) */
    int exp10 = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p)) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                digits++;
            } else {
                dropped = 1;
            }
            p++;
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit(*p))
            return NULL;
        while (p < end && is_digit(*p)) {
            if (digits < 19 && !dropped) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                if (mant)
                    digits++;
                exp10--;
            } else if (*p != '0') {
                dropped = 1;
            }
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        if (p >= end || !is_digit(*p))
            return NULL;
        int e = 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    /* A number ends at a delimiter, as strtod would see it. */
    if (p < end && !(*p == ',' || *p == '}' || *p == ']' || *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        return NULL;
    if (!dropped && mant <= (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
        *out = neg ? -v : v;
        return p;
    }
    char buf[512];
    size_t n = (size_t)(p - start);
    if (n >= sizeof buf)
        return NULL; /* absurdly long: cjson decides */
    memcpy(buf, start, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return isfinite(*out) ? p : NULL; /* 1e400: outside the subset (the caller reports it) */
}

int decode_number_finite(const char *tok, size_t len)
{
    const char *p = tok, *end = tok + len;
    if (p < end && *p == '-')
        p++;
    long int_digits = 0, lead_zeros = 0; /* significant integer digits; zeros after the point before one */
    int seen = 0;
    for (; p < end && is_digit(*p); p++)
        if (seen || *p != '0')
            seen = 1, int_digits++;
    if (p < end && *p == '.') {
        for (p++; p < end && is_digit(*p); p++) {
            if (!seen && *p == '0')
                lead_zeros++;
            else
                seen = 1;
        }
    }
    if (!seen)
        return 1; /* zero */
    long e = 0;
    int eneg = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            eneg = *p++ == '-';
        for (; p < end && is_digit(*p); p++)
            if (e < 100000000)
                e = e * 10 + (*p - '0');
    }
    /* the decimal exponent of the leading digit: the value is d.ddd x 10^mag */
    long mag = (int_digits > 0 ? int_digits - 1 : -(lead_zeros + 1)) + (eneg ? -e : e);
    if (mag < 308)
        return 1; /* below 1e308 (an underflow to 0 is finite) */
    if (mag > 308)
        return 0;
    char buf[1024]; /* at the edge (1e308 .. 9.99e308): strtod decides */
    if (len >= sizeof buf)
        return 0;
    memcpy(buf, tok, len);
    buf[len] = '\0';
    return isfinite(strtod(buf, NULL)) != 0;
}

const char *decode_find_bad_number(const char *p, const char *end, int finite_only, const char **key, size_t *key_len)
{
    *key = NULL, *key_len = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            const char *s = ++p;
            while (p < end && *p != '"')
                p += *p == '\\' ? 2 : 1;
            if (p >= end)
                return NULL;
            const char *after = decode_skip_ws(p + 1, end);
            if (after < end && *after == ':')
                *key = s, *key_len = (size_t)(p - s);
            p++;
            continue;
        }
        if (c == '-' || c == '+' || c == '.' || is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            const char *t = p;
            while (p < end && (*p == '-' || *p == '+' || *p == '.' || is_digit(*p) || (*p >= 'a' && *p <= 'z')
                               || (*p >= 'A' && *p <= 'Z')))
                p++;
            size_t n = (size_t)(p - t);
            if ((n == 4 && (memcmp(t, "true", 4) == 0 || memcmp(t, "null", 4) == 0))
                || (n == 5 && memcmp(t, "false", 5) == 0))
                continue;
            const char *q = t;
            if (q < end && *q == '-')
                q++;
            int rfc = q < p && is_digit(*q) && !(q[0] == '0' && q + 1 < p && is_digit(q[1]));
            for (const char *r = q; rfc && r < p; r++) /* digits . e E + - in number shape */
                if (!(is_digit(*r) || *r == '.' || *r == 'e' || *r == 'E' || *r == '+' || *r == '-'))
                    rfc = 0;
            if (finite_only ? (rfc && !decode_number_finite(t, n)) : (!rfc || !decode_number_finite(t, n)))
                return t;
            continue;
        }
        p++;
    }
    return NULL;
}

/* Skips (and validates) one value of any type, recursing into containers
 * above depth DECODE_MAX_DEPTH (decode.h). */
const char *decode_skip_value(const char *p, const char *end, int depth)
{
    if (depth > DECODE_MAX_DEPTH)
        return NULL;
    p = decode_skip_ws(p, end);
    if (p >= end || ((*p == '{' || *p == '[') && depth >= DECODE_MAX_DEPTH))
        return NULL;
    const char *s;
    size_t len;
    int esc;
    switch (*p) {
    case '"':
        return decode_string(p, end, &s, &len, &esc);
    case '{':
        p = decode_skip_ws(p + 1, end);
        if (p < end && *p == '}')
            return p + 1;
        for (;;) {
            p = decode_string(decode_skip_ws(p, end), end, &s, &len, &esc);
            if (!p)
                return NULL;
            p = decode_skip_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p = decode_skip_value(p + 1, end, depth + 1);
            if (!p)
                return NULL;
            p = decode_skip_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}')
                return p + 1;
            return NULL;
        }
    case '[':
        p = decode_skip_ws(p + 1, end);
        if (p < end && *p == ']')
            return p + 1;
        for (;;) {
            p = decode_skip_value(p, end, depth + 1);
            if (!p)
                return NULL;
            p = decode_skip_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == ']')
                return p + 1;
            return NULL;
        }
    case 't':
        return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        return decode_number(p, end, NULL);
    }
}

uint32_t decode_hash(const char *s, size_t len)
{
    /* Keys are short identifiers: length and the first and last two bytes
     * separate them well enough (a collision costs one memcmp), and this
     * runs for every key of every payload. */
    if (len == 0)
        return 0;
    uint32_t h = (uint32_t)len * 0x9E3779B1u;
    h ^= (uint32_t)(unsigned char)s[0] << 24 | (uint32_t)(unsigned char)s[len - 1] << 16;
    if (len > 2)
        h ^= (uint32_t)(unsigned char)s[1] << 8 | (uint32_t)(unsigned char)s[len - 2];
    h *= 0x85EBCA6Bu;
    return h ^ (h >> 15);
}

int decode_node_find(const decode_node *node, const char *s, size_t len)
{
    if (node->n == 0)
        return -1;
    uint32_t h = decode_hash(s, len);
    for (uint32_t i = h & node->mask;; i = (i + 1) & node->mask) {
        int32_t e = node->slots[i];
        if (e == 0)
            return -1;
        const decode_entry *d = &node->entries[e - 1];
        if (d->hash == h && d->len == len && memcmp(d->name, s, len) == 0)
            return e - 1;
    }
}
