/* test_decode.c — the JSON scanning primitives of the selective decoder:
 * numbers against strtod (fast path and fallback), the accepted subset of
 * strings and values, and that nothing reads past the end of the text. */
#include "check.h"
#include "decode.h"

#include <math.h>
#include <string.h>

/* Parses s whole with decode_number and compares with strtod bit for bit. */
static void check_number(const char *s)
{
    double got = 0;
    const char *end = s + strlen(s);
    const char *p = decode_number(s, end, &got);
    double want = strtod(s, NULL);
    CHECK(p == end && memcmp(&got, &want, sizeof got) == 0, "number %s reads as strtod (%.17g, got %.17g)", s, want, got);
    CHECK(decode_number(s, end, NULL) == end, "number %s validates without conversion", s);
}

static void check_rejected_number(const char *s)
{
    double d;
    CHECK(decode_number(s, s + strlen(s), &d) == NULL, "'%s' is not an RFC 8259 number", s);
}

/* Skips s whole as one value (1) or refuses it (0). */
static void check_skip(const char *s, int accepted)
{
    const char *p = decode_skip_value(s, s + strlen(s), 0);
    CHECK(accepted ? p == s + strlen(s) : p == NULL, "%s %s", accepted ? "accepts" : "refuses", s);
}

int main(void)
{
    const char *numbers[] = {
        "0", "-0", "1", "-1", "0.1", "0.3", "123.456", "278.53", "1770042600000", "1e22", "1e23", "-1.5e-7",
        "9007199254740992", "9007199254740993", "12345678901234567890", "0.30000000000000004",
        "2.2250738585072014e-308", "4.9e-324", "1.7976931348623157e308", "1e-400", "0.000001234",
        "3.141592653589793238462643383279", "100.00000000000000000000001", "1E+2", "0.0000000000000000000000001",
    };
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++)
        check_number(numbers[i]);
    double neg;
    const char *neg0 = "-0";
    decode_number(neg0, neg0 + 2, &neg);
    CHECK(signbit(neg), "-0 keeps its sign");

    const char *bad[] = {"01", "1.", ".5", "+1", "-", "1e", "1e+", "0x10", "inf", "NaN", "1.5x", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_rejected_number(bad[i]);

    /* a number ends at a delimiter; the text may end right after it */
    const char *t = "12,";
    double d;
    CHECK(decode_number(t, t + 3, &d) == t + 2 && d == 12, "a number stops at a comma");
    CHECK(decode_number(t, t + 1, &d) == t + 1 && d == 1, "nothing past the end is read");

    const char *s;
    size_t len;
    int esc;
    const char *str = "\"a\\\"b\\u00e9\" tail";
    CHECK(decode_string(str, str + strlen(str), &s, &len, &esc) == str + 12 && len == 10 && esc == 1,
          "an escaped string: raw contents and the escape flag");
    const char *plain = "\"price\"";
    CHECK(decode_string(plain, plain + 7, &s, &len, &esc) == plain + 7 && len == 5 && esc == 0 && memcmp(s, "price", 5) == 0,
          "a plain string");
    CHECK(decode_string(plain, plain + 6, &s, &len, &esc) == NULL, "an unterminated string is refused");

    /* the eight-bytes-at-a-time scan: a quote, a backslash escape, a control
     * byte and a high byte at every position around the word boundaries */
    int scan_ok = 1;
    for (int at = 0; at < 24; at++) {
        char buf[40];
        memset(buf, 'a', sizeof buf);
        buf[0] = '"';
        buf[1 + at] = '"'; /* the closing quote at `at` */
        const char *q = decode_string(buf, buf + sizeof buf, &s, &len, &esc);
        scan_ok &= q == buf + 2 + at && len == (size_t)at && esc == 0;
        buf[1 + at] = '\x01';
        buf[sizeof buf - 1] = '"';
        scan_ok &= decode_string(buf, buf + sizeof buf, &s, &len, &esc) == NULL;
        buf[1 + at] = '\\';
        buf[2 + at] = 'n';
        q = decode_string(buf, buf + sizeof buf, &s, &len, &esc);
        scan_ok &= q == buf + sizeof buf && esc == 1;
        buf[1 + at] = (char)0xC3;
        buf[2 + at] = (char)0xA9;
        q = decode_string(buf, buf + sizeof buf, &s, &len, &esc);
        scan_ok &= q == buf + sizeof buf && esc == 0 && len == sizeof buf - 2;
    }
    CHECK(scan_ok, "quotes, escapes, control and UTF-8 bytes found at every offset of the word scan");
    const char *unterminated = "\"aaaaaaaaaaaaaaaa";
    CHECK(decode_string(unterminated, unterminated + 17, &s, &len, &esc) == NULL,
          "the word scan stops at the end of the text");

    check_skip("{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":\"x\"}", 1);
    check_skip("[ ]", 1);
    check_skip("{ }", 1);
    check_skip("\"\\ud83d\\ude00\"", 0); /* surrogates: cjson decides */
    check_skip("\"a\x01\"", 0);          /* a control byte in a string */
    check_skip("\"\\x\"", 0);            /* an unknown escape */
    check_skip("{\"a\":1,}", 0);
    check_skip("[1 2]", 0);
    check_skip("tru", 0);
    check_skip("nul", 0);
    char deep[2 * (DECODE_MAX_DEPTH + 2) + 1];
    memset(deep, '[', DECODE_MAX_DEPTH + 2);
    memset(deep + DECODE_MAX_DEPTH + 2, ']', DECODE_MAX_DEPTH + 2);
    deep[sizeof deep - 1] = '\0';
    check_skip(deep, 0); /* deeper than the scanner follows */

    CHECK(decode_hash("price", 5) == decode_hash("price", 5) && decode_hash("price", 5) != decode_hash("state", 5),
          "key hash is stable and separates keys");
    /* finite numbers (issue 24 #9): 1e400 overflows a double and is no
     * longer inside the scanner's subset; the finder names it and its key */
    static const struct { const char *tok; int finite; } fin[] = {
        {"1e308", 1}, {"1.7976931348623157e308", 1}, {"1.7976931348623159e308", 0}, {"1e309", 0},
        {"-1E+400", 0}, {"1e-400", 1}, {"0.000e999", 1}, {"123456789", 1}, {"0.5e308", 1},
    };
    for (size_t k = 0; k < sizeof fin / sizeof fin[0]; k++)
        CHECK(decode_number_finite(fin[k].tok, strlen(fin[k].tok)) == fin[k].finite, "finite(%s) = %d", fin[k].tok,
              fin[k].finite);
    char digits[400];
    memset(digits, '9', sizeof digits);
    CHECK(!decode_number_finite(digits, sizeof digits), "400 digits are not finite");
    double dv;
    const char *big = "1e400,";
    CHECK(decode_number(big, big + 6, &dv) == NULL && decode_number(big, big + 6, NULL) == NULL,
          "1e400 is outside the subset, converted or skipped");
    static const struct { const char *json; const char *bad; const char *key; } finds[] = {
        {"{\"a\":1,\"price\":1e400}", "1e400", "price"},
        {"{\"s\":\"NaN 1e999\",\"x\":[1,NaN]}", "NaN]", "x"},
        {"{\"x\":-Infinity}", "-Infinity", "x"},
        {"{\"x\":0x10}", "0x10", "x"},
        {"{\"x\":[true,false,null,1.5e3,-0]}", NULL, NULL},
    };
    for (size_t k = 0; k < sizeof finds / sizeof finds[0]; k++) {
        const char *j = finds[k].json, *key;
        size_t klen;
        const char *at = decode_find_bad_number(j, j + strlen(j), 0, &key, &klen);
        CHECK(finds[k].bad ? (at && strncmp(at, finds[k].bad, strlen(finds[k].bad)) == 0 && key
                              && klen == strlen(finds[k].key) && strncmp(key, finds[k].key, klen) == 0)
                           : at == NULL,
              "bad number in %s: %s", j, finds[k].bad ? finds[k].bad : "none");
    }
    return done_testing();
}
