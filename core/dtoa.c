/*
 * dtoa.c — the decimal text of a double, as retape's JSON encoder writes it
 * (lua_json.c): integral values below 1e15 as integers, any other as the
 * shortest of "%.15g", "%.16g", "%.17g" that reads back to the same double.
 *
 * That rule is the store's format (every version, trade and view holds
 * numbers written by it), so it never changes; what this file does is reach
 * the same text faster than trying the three formats with snprintf and
 * strtod in turn, which cost ~2 us per computed ratio (a trade of the 1-day
 * corpus holds eight): prices with a few decimals are found by exact
 * scaling (format_short_decimal), and a number that needs 16 or 17 digits
 * is rounded exactly in 128-bit integers (format_16_or_17).
 * tests/c/test_dtoa.c holds the plain three-format rule and compares both on
 * millions of doubles of every shape.
 */
#include "dtoa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *retape_format_integer(char *end, long long v)
{
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    char *p = end;
    *--p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return p;
}

/* Exact powers of ten (every one up to 1e22 is a double). */
static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,
                               1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19};

/* For a non-integral x with 1e-4 <= |x| < 1e15: finds the fewest decimals k
 * such that m = round(|x| * 10^k) < 1e15 and m / 10^k == |x|, and writes
 * "[-]I.F" into buf; returns its length, or 0 when there is none (then no
 * text of 15 significant digits reads back to x: it needs 16 or 17).
 * Why it prints exactly what "%.15g" prints: m and 10^k are exact doubles, so
 * m / 10^k is the double nearest the decimal m·10^-k, i.e. what strtod reads
 * from it; and |x| is within half an ulp of that decimal, far less than half
 * a unit of x's 15th digit, so "%.15g" rounds x to the same digits (and
 * trims the same trailing zeros).  Prices with a few decimals take 1-4 tries
 * instead of snprintf + strtod. */
static size_t format_short_decimal(char *buf, double x)
{
    double ax = fabs(x);
    for (int k = 1; k < (int)(sizeof POW10 / sizeof POW10[0]); k++) {
        double scaled = ax * POW10[k];
        if (scaled >= 1e15)
            return 0;
        double m = nearbyint(scaled);
        if (m / POW10[k] != ax)
            continue;
        unsigned long long digits = (unsigned long long)m;
        char tmp[RETAPE_DOUBLE_TEXT], *end = tmp + sizeof tmp, *p = end;
        int frac = 0;
        for (; frac < k; frac++) { /* the k decimals, right to left */
            *--p = (char)('0' + digits % 10);
            digits /= 10;
        }
        char *frac_end = end;
        while (frac_end > p && frac_end[-1] == '0')
            frac_end--;
        *--p = '.';
        do {
            *--p = (char)('0' + digits % 10);
            digits /= 10;
        } while (digits);
        if (x < 0)
            *--p = '-';
        size_t len = (size_t)(frac_end - p);
        memcpy(buf, p, len);
        buf[len] = '\0';
        return len;
    }
    return 0;
}

/* The three-format rule as written: "%.15g", else "%.16g", else "%.17g",
 * the first whose text reads back to x. */
static size_t format_by_trial(double x, char *buf)
{
    snprintf(buf, RETAPE_DOUBLE_TEXT, "%.15g", x);
    if (strtod(buf, NULL) != x) {
        snprintf(buf, RETAPE_DOUBLE_TEXT, "%.16g", x);
        if (strtod(buf, NULL) != x)
            snprintf(buf, RETAPE_DOUBLE_TEXT, "%.17g", x);
    }
    return strlen(buf);
}

__extension__ typedef unsigned __int128 u128;

/* Exact powers of ten as integers, 10^0 .. 10^20 (every k used below). */
static const u128 POW10_INT[21] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000ull,
    100000000000ull, 1000000000000ull, 10000000000000ull, 100000000000000ull, 1000000000000000ull,
    10000000000000000ull, 100000000000000000ull, 1000000000000000000ull, 10000000000000000000ull,
    (u128)10000000000000000000ull * 10,
};
static u128 pow10_int(int k)
{
    return POW10_INT[k];
}

/* round(f * 10^k / 2^s), ties to even: x = f * 2^-s scaled by 10^k and
 * rounded as printf rounds.  f < 2^53, k <= 20, 1 <= s <= 66 (no overflow:
 * f * 10^k < 2^120). */
static unsigned long long scaled_round(unsigned long long f, int k, int s)
{
    u128 n = (u128)f * pow10_int(k);
    u128 q = n >> s, r = n & (((u128)1 << s) - 1), half = (u128)1 << (s - 1);
    if (r > half || (r == half && (q & 1)))
        q++;
    return (unsigned long long)q;
}

/* Whether the decimal q * 10^-k reads back (strtod, ties to even) to
 * x = f * 2^-s: it lies within half the gap to each neighbour of x, the
 * ends included when f is even; the gap below a power of two (f = 2^52) is
 * half the one above.  Compared in units of 10^-k * 2^-(s+2), all exact. */
static int reads_back(unsigned long long q, int k, unsigned long long f, int s)
{
    u128 d = (u128)q << (s + 2), x4 = ((u128)f * pow10_int(k)) << 2, unit = pow10_int(k);
    u128 above = 2 * unit, below = f == (1ull << 52) ? unit : 2 * unit;
    int even = (f & 1) == 0;
    if (d >= x4)
        return even ? d - x4 <= above : d - x4 < above;
    return even ? x4 - d <= below : x4 - d < below;
}

/* Writes [-]digits of q (exactly `digits` of them) with k decimals, in
 * fixed notation, trailing zeros of the decimals trimmed (as %g does). */
static size_t write_fixed(char *buf, int negative, unsigned long long q, int digits, int k)
{
    char d[24];
    for (int i = digits - 1; i >= 0; i--, q /= 10)
        d[i] = (char)('0' + q % 10);
    char *p = buf;
    if (negative)
        *p++ = '-';
    int int_digits = digits - k;
    if (int_digits <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = int_digits; i < 0; i++)
            *p++ = '0';
        memcpy(p, d, (size_t)digits);
        p += digits;
    } else {
        memcpy(p, d, (size_t)int_digits);
        p += int_digits;
        *p++ = '.';
        memcpy(p, d + int_digits, (size_t)k);
        p += k;
    }
    while (p[-1] == '0')
        p--;
    if (p[-1] == '.')
        p--;
    *p = '\0';
    return (size_t)(p - buf);
}

/* For x with 1e-4 <= |x| < 1e15 that needs 16 or 17 digits (no 15-digit
 * text reads back): what "%.16g" prints when that reads back, else what
 * "%.17g" prints, both in fixed notation at these magnitudes, computed
 * exactly in 128-bit integers (x = f * 2^-s) instead of by snprintf and
 * strtod.  A rounding that carries into a new power of ten takes the
 * three-format trial (it cannot happen to such an x; kept for safety). */
static size_t format_16_or_17(double x, char *buf)
{
    int exp2;
    double m = frexp(fabs(x), &exp2); /* |x| = m * 2^exp2, m in [0.5, 1) */
    unsigned long long f = (unsigned long long)ldexp(m, 53);
    int s = 53 - exp2; /* |x| = f * 2^-s; 1 <= s <= 66 in this range */
    if (s < 1 || s > 66)
        return format_by_trial(x, buf);
    /* the decimal exponent: 10^X <= |x| < 10^(X+1), exactly (f * 10^-X
     * against 2^s * 10^X), from the double estimate's neighbourhood down */
    int X = (int)floor(log10(fabs(x))) + 1;
    if (X > 14)
        X = 14;
    while (X > -4 && ((u128)f * pow10_int(X < 0 ? -X : 0)) < ((u128)1 << s) * pow10_int(X > 0 ? X : 0))
        X--;
    int k16 = 15 - X;
    unsigned long long q = scaled_round(f, k16, s);
    if (q >= 10000000000000000ull)
        return format_by_trial(x, buf);
    if (reads_back(q, k16, f, s))
        return write_fixed(buf, x < 0, q, 16, k16);
    q = scaled_round(f, k16 + 1, s);
    if (q >= 100000000000000000ull)
        return format_by_trial(x, buf);
    return write_fixed(buf, x < 0, q, 17, k16 + 1);
}

size_t retape_format_double(double x, char buf[RETAPE_DOUBLE_TEXT])
{
    if (x == 0) {
        buf[0] = '0', buf[1] = '\0'; /* also -0 */
        return 1;
    }
    double ax = fabs(x);
    if (x == floor(x) && ax < 1e15) {
        char tmp[RETAPE_DOUBLE_TEXT];
        char *p = retape_format_integer(tmp + sizeof tmp, (long long)x);
        size_t len = strlen(p);
        memcpy(buf, p, len + 1);
        return len;
    }
    if (ax >= 1e-4 && ax < 1e15) {
        size_t len = format_short_decimal(buf, x);
        return len > 0 ? len : format_16_or_17(x, buf);
    }
    return format_by_trial(x, buf);
}
