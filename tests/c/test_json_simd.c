/* test_json_simd.c — the simdjson front end of the payload decoder from C
 * (json_simd.h), with field sets built by hand as decode.h describes them:
 * the operations of declared fields (partial objects and their texts), the
 * payloads it leaves undecided (so the scanner decides them), numbers read
 * as decode_number reads them, and a scanner reused across payloads. */
#include "check.h"
#include "json_simd.h"

#include <math.h>

/* Fills node with the n entries (names, children), hashed into slots. */
static void node_init(decode_node *node, decode_entry *entries, const char *const *names, decode_node *const *children,
                      int n, int32_t *slots, uint32_t nslots)
{
    memset(node, 0, sizeof *node);
    memset(slots, 0, nslots * sizeof *slots);
    node->mask = nslots - 1;
    node->entries = entries;
    node->slots = slots;
    for (int i = 0; i < n; i++) {
        decode_entry *e = &entries[i];
        e->name = names[i];
        e->len = strlen(names[i]);
        e->hash = decode_hash(e->name, e->len);
        e->child = children[i];
        uint32_t k = e->hash & node->mask;
        while (slots[k])
            k = (k + 1) & node->mask;
        slots[k] = ++node->n;
    }
}

static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

int main(void)
{
    /* the field set { "price", "flags.sq30_on" } */
    decode_node root, flags;
    decode_entry root_e[2], flags_e[1];
    int32_t root_s[4], flags_s[4];
    node_init(&flags, flags_e, (const char *const[]){"sq30_on"}, (decode_node *const[]){NULL}, 1, flags_s, 4);
    node_init(&root, root_e, (const char *const[]){"price", "flags"}, (decode_node *const[]){NULL, &flags}, 2, root_s, 4);

    json_simd *js = json_simd_new();
    CHECK(js != NULL, "a scanner is made");
    const json_simd_op *ops;
    const char *text = "{\"price\": 1.5, \"other\": [1, {\"a\": \"x\"}], \"flags\": {\"sq30_on\": true, \"x\": [1]}  }";
    size_t n = json_simd_scan(js, &root, text, strlen(text), &ops);
    CHECK(n == 9, "declared fields only: 9 operations (got %zu)", n);
    if (n == 9) {
        CHECK(ops[0].kind == JSON_SIMD_OBJECT && ops[1].kind == JSON_SIMD_KEY && ops[1].entry == 0, "the root, then key price");
        CHECK(ops[2].kind == JSON_SIMD_NUMBER && ops[2].number == 1.5, "price 1.5");
        CHECK(ops[3].kind == JSON_SIMD_KEY && ops[3].entry == 1 && ops[4].kind == JSON_SIMD_OBJECT, "key flags, an object");
        CHECK(ops[5].kind == JSON_SIMD_KEY && ops[5].entry == 0 && ops[6].kind == JSON_SIMD_TRUE, "flags.sq30_on true");
        const char *flags_text = strstr(text, "{\"sq30_on\"");
        CHECK(ops[7].kind == JSON_SIMD_END && ops[7].entry == 1 && ops[7].str == flags_text &&
                  ops[7].len == strlen("{\"sq30_on\": true, \"x\": [1]}"),
              "flags is partial: its text, in the caller's text");
        CHECK(ops[8].kind == JSON_SIMD_END && ops[8].entry == 1 && ops[8].str == NULL, "the root is partial (its text: the payload)");
    }

    /* an array declared whole: its ARRAY operation counts its elements
     * (the builder sizes the table once) */
    decode_node root2;
    decode_entry root2_e[1];
    int32_t root2_s[4];
    node_init(&root2, root2_e, (const char *const[]){"levels"}, (decode_node *const[]){NULL}, 1, root2_s, 4);
    const char *arrays = "{\"levels\": [1, [2, 3], {\"a\": []}, \"x\"], \"y\": [1]}";
    n = json_simd_scan(js, &root2, arrays, strlen(arrays), &ops);
    CHECK(n == 16, "an array of 4 elements, one a list of 2 and one an object holding an empty list (got %zu)", n);
    if (n == 16) {
        CHECK(ops[2].kind == JSON_SIMD_ARRAY && ops[2].entry == 4, "levels: 4 elements (got %d)", ops[2].entry);
        CHECK(ops[4].kind == JSON_SIMD_ARRAY && ops[4].entry == 2, "the nested list: 2 elements (got %d)", ops[4].entry);
        CHECK(ops[10].kind == JSON_SIMD_ARRAY && ops[10].entry == 0, "the empty list: 0 elements (got %d)", ops[10].entry);
    }

    /* a small rest (decode.h's DECODE_REST_MAX): at most that many
     * undeclared scalars at the top level come after the declared keys,
     * and the root is whole; a nested object stays partial */
    const char *rest = "{\"a\": \"s\", \"flags\": {\"y\": null, \"sq30_on\": false}, \"price\": 2, \"b\": true, \"c\": -1}";
    n = json_simd_scan(js, &root, rest, strlen(rest), &ops);
    CHECK(n == 15, "a rest of 3 scalars at the root: 15 operations (got %zu)", n);
    if (n == 15) {
        CHECK(ops[2].kind == JSON_SIMD_OBJECT && ops[3].entry == 0 && ops[4].kind == JSON_SIMD_FALSE, "flags.sq30_on");
        CHECK(ops[5].kind == JSON_SIMD_END && ops[5].entry == 1 && ops[5].str == strstr(rest, "{\"y\""),
              "flags keeps its undeclared y for later: partial (a nested object)");
        CHECK(ops[6].entry == 0 && ops[7].number == 2, "price");
        CHECK(ops[8].entry == -1 && ops[8].str[0] == 'a' && ops[9].kind == JSON_SIMD_STRING && ops[9].len == 1 &&
                  ops[10].str[0] == 'b' && ops[11].kind == JSON_SIMD_TRUE && ops[12].str[0] == 'c' && ops[13].number == -1,
              "then the root's a, b, c in document order");
        CHECK(ops[14].kind == JSON_SIMD_END && ops[14].entry == 0, "the root is whole");
    }
    const char *five = "{\"a\": 1, \"b\": 2, \"c\": 3, \"d\": 4, \"e\": 5, \"price\": 1}";
    n = json_simd_scan(js, &root, five, strlen(five), &ops);
    CHECK(n == 4 && ops[3].kind == JSON_SIMD_END && ops[3].entry == 1, "five undeclared scalars: partial (got %zu)", n);

    /* undecided: the scanner decides (or hands on to lua-cjson) */
    const char *undecided[] = {
        "{\"other\": [1 2], \"price\": 1}",        /* malformed where nothing is declared */
        "{\"other\": tru, \"price\": 1}",
        "{\"price\": 1} x",                       /* trailing garbage */
        "[1, 2]",                                 /* not an object */
        "{\"pri\\u0063e\": 1}",                   /* an escaped key in a declared object */
        "{\"other\": \"\\ud83d\\ude00\"}",        /* a surrogate pair anywhere */
        "{\"price\": 1e400}",                     /* past the double range */
        "{\"price\": \"caf\xe9\"}",               /* invalid UTF-8 */
        "",
    };
    for (size_t i = 0; i < sizeof undecided / sizeof undecided[0]; i++)
        CHECK(json_simd_scan(js, &root, undecided[i], strlen(undecided[i]), &ops) == 0, "undecided: %s", undecided[i]);
    char deep[256];
    int len = snprintf(deep, sizeof deep, "{\"a\":%.*s%.*s}", DECODE_MAX_DEPTH, "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
                       DECODE_MAX_DEPTH, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
    CHECK(json_simd_scan(js, &root, deep, (size_t)len, &ops) == 0, "undecided: %d nested containers", DECODE_MAX_DEPTH + 1);

    /* numbers as decode_number reads them, including the long decimals
     * simdjson 3.0.1's On-Demand get_double misreads */
    const char *numbers[] = {"0.12345678901234567890123", "-0.0019774879968961554637", "-0", "9007199254740993",
                             "2.2250738585072011e-308", "4.9e-324", "1e-400", "278.53", "1.7976931348623157e308"};
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        char buf[128];
        int blen = snprintf(buf, sizeof buf, "{\"price\": %s}", numbers[i]);
        double want = 0;
        decode_number(numbers[i], numbers[i] + strlen(numbers[i]), &want);
        n = json_simd_scan(js, &root, buf, (size_t)blen, &ops);
        CHECK(n == 4 && ops[2].kind == JSON_SIMD_NUMBER && same_bits(ops[2].number, want), "number %s as decode_number reads it (%.17g)",
              numbers[i], n == 4 ? ops[2].number : NAN);
    }

    /* a bigger payload after small ones: the buffers grow */
    size_t big_len = 200000;
    char *big = malloc(big_len + 1);
    CHECK(big != NULL, "a 200 KB payload");
    if (big) {
        size_t at = (size_t)sprintf(big, "{\"pad\": \"");
        memset(big + at, 'x', big_len - at - 16);
        at = big_len - 16;
        at += (size_t)sprintf(big + at, "\", \"price\": 7}");
        n = json_simd_scan(js, &root, big, at, &ops);
        CHECK(n == 6 && ops[2].number == 7 && ops[4].kind == JSON_SIMD_STRING && ops[4].len == big_len - 16 - 9,
              "a 200 KB payload after small ones (its 200 KB string, undeclared, a small remainder)");
        free(big);
    }
    json_simd_free(js);
    json_simd_free(NULL);
    return done_testing();
}
