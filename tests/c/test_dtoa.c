/*
 * test_dtoa.c — retape_format_double writes exactly what the store's number
 * rule says (integral below 1e15: the integer; otherwise the first of
 * "%.15g", "%.16g", "%.17g" that reads back), compared with that rule
 * written plainly, on doubles of every shape: random bit patterns, prices
 * with a few decimals, computed ratios and products, neighbours of powers of
 * ten and of the range limits, and texts whose 17th digit is 5 or that
 * carry.  RETAPE_DTOA_N scales the random rounds (default 100000 each).
 */
#include "check.h"
#include "dtoa.h"

#include <math.h>
#include <stdint.h>

/* The rule as the store defines it (the reference). */
static void reference(double x, char *buf)
{
    if (x == 0) {
        strcpy(buf, "0");
        return;
    }
    if (x == floor(x) && fabs(x) < 1e15) {
        snprintf(buf, RETAPE_DOUBLE_TEXT, "%lld", (long long)x);
        return;
    }
    snprintf(buf, RETAPE_DOUBLE_TEXT, "%.15g", x);
    if (strtod(buf, NULL) != x) {
        snprintf(buf, RETAPE_DOUBLE_TEXT, "%.16g", x);
        if (strtod(buf, NULL) != x)
            snprintf(buf, RETAPE_DOUBLE_TEXT, "%.17g", x);
    }
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) /* splitmix64: the same doubles every run */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double uniform(void) { return (double)(next() >> 11) / 9007199254740992.0; }

static long tried, wrong, wrong_before; /* wrong_before: at the start of a family */
static char first_wrong[160];

/* Compares both on x (and -x); remembers the first difference. */
static void compare(double x)
{
    for (int sign = 0; sign < 2; sign++, x = -x) {
        if (!isfinite(x))
            continue;
        char want[RETAPE_DOUBLE_TEXT], got[RETAPE_DOUBLE_TEXT];
        reference(x, want);
        size_t len = retape_format_double(x, got);
        tried++;
        if (strcmp(want, got) != 0 || len != strlen(got)) {
            if (wrong++ == wrong_before)
                snprintf(first_wrong, sizeof first_wrong, "%a: want %s, got %s (len %zu)", x, want, got, len);
        }
    }
}

/* Runs one family of doubles and reports it as one check. */
#define FAMILY(what, n, expr) do { \
        long before_ = wrong_before = wrong, tried_ = tried; \
        first_wrong[0] = '\0'; \
        for (long i_ = 0; i_ < (n); i_++) compare(expr); \
        CHECK(wrong == before_, "%s: %ld doubles as the rule writes them%s%s", what, tried - tried_, \
              first_wrong[0] ? "; first difference " : "", first_wrong); \
    } while (0)

static double random_bits(void)
{
    uint64_t u = next();
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* A price with 0-6 decimals between 0.0001 and 1e6. */
static double price(void)
{
    int decimals = (int)(next() % 7);
    double scale = pow(10, decimals);
    return floor(uniform() * 1e6 * scale) / scale + (double)(next() % 10000) / 1e4;
}

/* A ratio or product of prices: what a simulator computes (shares, P&L %). */
static double computed(void)
{
    double a = price(), b = price() + 0.01;
    switch (next() % 4) {
    case 0: return a / b;
    case 1: return a * b / 7.0;
    case 2: return (a - b) / b * 100;
    default: return 1000.0 / b;
    }
}

/* Anything from 1e-320 to 1e300: every exponent, every notation. */
static double any_scale(void) { return uniform() * pow(10, (double)((int)(next() % 620) - 320)); }

/* Near the range limits and the powers of ten: a few ulps either side. */
static double near_limit(void)
{
    static const double limits[] = {1e-4, 1e-3, 0.1, 1, 10, 1e14, 1e15, 1e16, 1e17, 9.5, 99.95, 0.00015};
    double x = limits[next() % (sizeof limits / sizeof limits[0])];
    long steps = (long)(next() % 64) - 32;
    for (; steps > 0; steps--) x = nextafter(x, INFINITY);
    for (; steps < 0; steps++) x = nextafter(x, 0);
    return x;
}

/* Texts of 17 digits ending in 5 or made of nines: the rounding edge. */
static double edge_text(void)
{
    char text[40];
    unsigned long long m = next() % 100000000000000000ull;
    if (next() % 2)
        m = m - m % 10 + 5;
    else
        m = 99999999999999999ull - next() % 1000;
    int point = 1 + (int)(next() % 16);
    snprintf(text, sizeof text, "%017llu", m);
    char with_point[48];
    snprintf(with_point, sizeof with_point, "%.*s.%s", point, text, text + point);
    return strtod(with_point, NULL) / pow(10, (double)(next() % 5));
}

int main(void)
{
    const char *env = getenv("RETAPE_DTOA_N");
    long n = env ? atol(env) : 100000;

    static const double fixed[] = {0.1, 0.2, 0.30000000000000004, 1.0 / 3, 2.0 / 3, 1e-4, 1e15 - 0.5, 123.456,
                                   1468.6171428571429, 8.4656279851115, -4.063501432853673, 5e-324, 1e300,
                                   4503599627370495.5, 0.000099999999999999991, 999999999999999.9};
    first_wrong[0] = '\0';
    long before = wrong_before = wrong;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        compare(fixed[i]);
    CHECK(wrong == before, "the listed doubles as the rule writes them%s%s", first_wrong[0] ? ": " : "", first_wrong);

    FAMILY("random bit patterns", n, random_bits());
    FAMILY("prices with 0-6 decimals", n, price());
    FAMILY("ratios and products of prices", n, computed());
    FAMILY("every scale from 1e-320 to 1e300", n, any_scale());
    FAMILY("neighbours of the range limits and powers of ten", n / 4, near_limit());
    FAMILY("17-digit texts ending in 5 or nines", n, edge_text());

    char buf[RETAPE_DOUBLE_TEXT];
    CHECK(retape_format_double(-0.0, buf) == 1 && strcmp(buf, "0") == 0, "-0 is written 0");
    CHECK(retape_format_double(-12.0, buf) == 3 && strcmp(buf, "-12") == 0, "an integral double is an integer");
    CHECK(retape_format_double(1e15, buf) > 0 && strcmp(buf, "1e+15") == 0, "1e15 is past the integer range: %s", buf);
    return done_testing();
}
