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
 * takes one "%.17g" whose digits are rounded to 16 (format_16_or_17).
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

/* For x with 1e-4 <= |x| < 1e15 that needs 16 or 17 digits (no 15-digit
 * text reads back): both "%.16g" and "%.17g" print it in fixed notation.
 * Writes "%.17g" (E, x rounded to 17 significant digits) and derives "%.16g"
 * from E's digits: unless E's 17th digit is 5, rounding E to 16 digits gives
 * what rounding x does (|x - E| is at most a twentieth of a unit of the 16th
 * digit, so x falls on the same side of the half-unit as E).  Keeps the
 * 16-digit text when it reads back to x.  A 17th digit of 5, or a carry out
 * of the first digit, takes the three-format trial (rare). */
static size_t format_16_or_17(double x, char *buf)
{
    size_t len = (size_t)snprintf(buf, RETAPE_DOUBLE_TEXT, "%.17g", x);
    const char *first = buf + (buf[0] == '-');
    size_t at[17];
    int n = 0;
    for (const char *q = first; *q && n < 17; q++) {
        if (*q == '.' || (n == 0 && *q == '0'))
            continue;
        at[n++] = (size_t)(q - buf);
    }
    if (n < 17) /* E's own trailing zeros are trimmed: "%.16g" prints E */
        return len;
    char digit17 = buf[at[16]];
    if (digit17 == '5')
        return format_by_trial(x, buf);
    char cand[RETAPE_DOUBLE_TEXT];
    size_t cut = at[15] + 1;
    memcpy(cand, buf, cut);
    if (digit17 > '5') { /* round the 16th digit up, carrying leftwards */
        size_t i = cut;
        for (;;) {
            if (i == (size_t)(first - buf))
                return format_by_trial(x, buf);
            i--;
            if (cand[i] == '.')
                continue;
            if (cand[i] != '9') {
                cand[i]++;
                break;
            }
            cand[i] = '0';
        }
    }
    /* the 16th digit is a decimal (|x| < 1e15): trim zeros, then a bare '.' */
    while (cut > 0 && cand[cut - 1] == '0')
        cut--;
    if (cut > 0 && cand[cut - 1] == '.')
        cut--;
    cand[cut] = '\0';
    if (strtod(cand, NULL) != x)
        return len;
    memcpy(buf, cand, cut + 1);
    return cut;
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
