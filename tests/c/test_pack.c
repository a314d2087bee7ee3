/* test_pack.c — the packed value format of the state store (pack.h): every
 * primitive written and read back, numbers as a JSON round trip gives them
 * (NaN and infinities as nil, -0 as 0), varints at their boundaries, and
 * malformed or truncated input refused without reading past its end. */
#include "check.h"
#include "pack.h"

#include <math.h>
#include <stdint.h>

static void check_number(double x, int want_tag, double want)
{
    pack_writer w = {0};
    pack_put_number(&w, x);
    pack_reader r;
    pack_reader_init(&r, w.data, w.len);
    int tag = pack_get_tag(&r);
    double got = 12345;
    int ok = tag == want_tag;
    if (ok && tag == PACK_NUMBER)
        ok = pack_get_number(&r, &got) == 0 && memcmp(&got, &want, sizeof got) == 0;
    CHECK(ok && r.p == r.end, "number %.17g packs as %c %.17g", x, want_tag, want);
    pack_writer_free(&w);
}

static void check_varint(uint64_t n, size_t want_len)
{
    pack_writer w = {0};
    pack_put_count(&w, PACK_LIST, n);
    pack_reader r;
    pack_reader_init(&r, w.data, w.len);
    uint64_t got = 0;
    CHECK(pack_get_tag(&r) == PACK_LIST && pack_get_count(&r, &got) == 0 && got == n && w.len == want_len,
          "count %llu: %zu bytes, reads back", (unsigned long long)n, want_len);
    pack_writer_free(&w);
}

/* Every strict prefix of a whole value is refused by pack_skip_value. */
static void check_prefixes_refused(const pack_writer *w, const char *what)
{
    int all = 1;
    for (size_t n = 0; n < w->len; n++) {
        pack_reader r;
        pack_reader_init(&r, w->data, n);
        if (pack_skip_value(&r, 0) == 0)
            all = 0;
    }
    CHECK(all, "every truncation of %s is refused", what);
}

int main(void)
{
    check_number(1.5, PACK_NUMBER, 1.5);
    check_number(1769543700000.0, PACK_NUMBER, 1769543700000.0);
    check_number(0.1 + 0.2, PACK_NUMBER, 0.1 + 0.2);
    check_number(-0.0, PACK_NUMBER, 0.0);
    check_number(NAN, PACK_NIL, 0);
    check_number(INFINITY, PACK_NIL, 0);
    check_number(-INFINITY, PACK_NIL, 0);

    check_varint(0, 2);
    check_varint(127, 2);
    check_varint(128, 3);
    check_varint(16383, 3);
    check_varint(16384, 4);
    check_varint(UINT64_MAX, 11);

    /* an object {"a": [true, false, nil, "x\0y"], "b": 2} */
    pack_writer w = {0};
    pack_put_count(&w, PACK_OBJECT, 2);
    pack_put_key(&w, "a", 1);
    pack_put_count(&w, PACK_LIST, 4);
    pack_put_bool(&w, 1);
    pack_put_bool(&w, 0);
    pack_put_nil(&w);
    pack_put_string(&w, "x\0y", 3);
    pack_put_key(&w, "b", 1);
    pack_put_number(&w, 2);
    CHECK(!w.failed && w.len == 2 + 2 + 2 + 1 + 1 + 1 + 5 + 2 + 9, "an object packs to %zu bytes", w.len);
    pack_reader r;
    pack_reader_init(&r, w.data, w.len);
    CHECK(pack_skip_value(&r, 0) == 0 && r.p == r.end, "the object skips whole");
    pack_reader_init(&r, w.data, w.len);
    uint64_t n = 0;
    const char *s;
    size_t len;
    double x;
    int ok = pack_get_tag(&r) == PACK_OBJECT && pack_get_count(&r, &n) == 0 && n == 2;
    ok = ok && pack_get_string(&r, &s, &len) == 0 && len == 1 && s[0] == 'a';
    ok = ok && pack_get_tag(&r) == PACK_LIST && pack_get_count(&r, &n) == 0 && n == 4;
    ok = ok && pack_get_tag(&r) == PACK_TRUE && pack_get_tag(&r) == PACK_FALSE && pack_get_tag(&r) == PACK_NIL;
    ok = ok && pack_get_tag(&r) == PACK_STRING && pack_get_string(&r, &s, &len) == 0 && len == 3 && memcmp(s, "x\0y", 3) == 0;
    ok = ok && pack_get_string(&r, &s, &len) == 0 && len == 1 && s[0] == 'b';
    ok = ok && pack_get_tag(&r) == PACK_NUMBER && pack_get_number(&r, &x) == 0 && x == 2;
    CHECK(ok && pack_get_tag(&r) == 0, "the object reads back field by field, then the end");
    check_prefixes_refused(&w, "the object");
    pack_writer_free(&w);

    /* malformed: an unknown tag, a string longer than its input, a varint that never ends */
    const char bad_tag[] = "x";
    pack_reader_init(&r, bad_tag, 1);
    CHECK(pack_skip_value(&r, 0) == -1, "an unknown tag is refused");
    const char long_string[] = {PACK_STRING, 10, 'a', 'b'};
    pack_reader_init(&r, long_string, sizeof long_string);
    CHECK(pack_skip_value(&r, 0) == -1, "a string longer than the input is refused");
    const char endless[] = {PACK_LIST, (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff,
                            (char)0xff, (char)0xff, (char)0xff, (char)0xff, (char)0xff};
    pack_reader_init(&r, endless, sizeof endless);
    CHECK(pack_skip_value(&r, 0) == -1, "a varint of more than 64 bits is refused");

    /* nesting: PACK_MAX_DEPTH lists deep is read, one more is refused */
    pack_writer deep = {0};
    for (int i = 0; i <= PACK_MAX_DEPTH; i++)
        pack_put_count(&deep, PACK_LIST, 1);
    pack_put_nil(&deep);
    pack_reader_init(&r, deep.data, deep.len);
    CHECK(pack_skip_value(&r, 0) == -1, "lists nested deeper than %d are refused", PACK_MAX_DEPTH);
    pack_reader_init(&r, deep.data + 2, deep.len - 2);
    CHECK(pack_skip_value(&r, 0) == 0 && r.p == r.end, "lists nested %d deep are read", PACK_MAX_DEPTH);
    pack_writer_free(&deep);

    /* a reset writer starts over, keeping its buffer */
    pack_writer again = {0};
    pack_put_string(&again, "hello", 5);
    char *buf = again.data;
    pack_writer_reset(&again);
    pack_put_nil(&again);
    CHECK(again.len == 1 && again.data == buf && again.data[0] == PACK_NIL, "reset keeps the buffer and starts over");
    pack_writer_free(&again);
    return done_testing();
}
