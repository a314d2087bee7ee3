/*
 * json_simd.cpp — json_simd.h's scanner: simdjson over one payload, emitting
 * the build operations of the declared fields.
 *
 * One pass of simdjson: its DOM parser validates the whole text and leaves
 * two results side by side, which the walk here reads together:
 *   - the tape (one entry per value, key and container end, in document
 *     order: strings unescaped into its string buffer, each container's
 *     start pointing past its end);
 *   - stage 1's structural index (the offset in the text of every value's
 *     first byte, key, ':', ',' and bracket, in the same order), which
 *     gives the exact tokens the scanner's results are made of: numbers'
 *     text, keys' raw bytes, partial objects' spans '{' .. '}'.
 * The walk visits the declared fields only; an undeclared value is passed
 * over on both (the tape by its container's end index, the index by
 * counting brackets).  The structural index is the parser's
 * implementation's (a public member "for benchmarking access" in
 * simdjson 3.0.1): the test that compares both decoders on every bundled
 * receipt and on fuzzed payloads (test_decode) holds this to the scanner.
 *
 * One of the project's two C++ files (kv_hint.cpp the other).  It calls no Lua (Lua's errors are longjmps,
 * which must not cross C++ frames) and lets no exception out: simdjson is
 * used through its error codes, memory through malloc, and the entry point
 * catches anything else as "undecided".
 *
 * Equal results to the hand-written scanner (decode.c) by construction:
 *   - the validator accepts a subset of what the scanner accepts: the same
 *     grammar, nesting no deeper (its limit is DECODE_MAX_DEPTH containers,
 *     refusing a scalar inside the deepest one too), and it is stricter
 *     elsewhere (UTF-8): stricter only costs the slower path;
 *   - numbers are converted by decode.c's decode_number from their token
 *     (the scanner's own doubles, bit for bit, not the tape's); simdjson's
 *     validator refuses numbers outside the double range (strtod: infinity)
 *     and integers past 2^64, which the scanner decides (or hands to
 *     lua-cjson);
 *   - strings are unescaped by simdjson as decode.c unescapes them; the
 *     escapes decode.c leaves to lua-cjson (UTF-16 surrogates) and escaped
 *     keys of declared objects are refused;
 *   - the tables' shape comes from the same field-set walk: the same keys
 *     in document order, the same partial objects with the same texts.
 */
#include "json_simd.h"

#include <simdjson.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

using namespace simdjson;

struct json_simd {
    dom::parser parser;        /* validates the text; its tape and index are walked */
    char *buf = nullptr;       /* the text plus SIMDJSON_PADDING */
    size_t buf_cap = 0;
    json_simd_op *ops = nullptr;
    size_t n_ops = 0, ops_cap = 0;
};

namespace {

/* One scan: the state the walk shares.  t (a tape entry) and s (an index
 * entry) always name the same value; each walk function visits one value,
 * leaves both just past it, and returns false to give up (undecided). */
struct scan {
    json_simd *js;
    const uint64_t *tape;
    const uint8_t *strings;    /* the tape's string buffer */
    const uint32_t *index;     /* stage 1's structural offsets */
    const char *buf, *buf_end; /* the padded copy */
    const char *text;          /* the caller's text (same offsets as buf) */
    bool escapes;              /* the text has a backslash somewhere */
    size_t t = 1;              /* past the root entry */
    uint32_t s = 0;

    /* Appends an operation; false when out of memory. */
    bool emit(int kind, int entry = 0, double number = 0, const char *str = nullptr, size_t len = 0)
    {
        if (js->n_ops == js->ops_cap) {
            size_t cap = js->ops_cap ? js->ops_cap * 2 : 256;
            void *p = std::realloc(js->ops, cap * sizeof(json_simd_op));
            if (!p)
                return false;
            js->ops = static_cast<json_simd_op *>(p);
            js->ops_cap = cap;
        }
        js->ops[js->n_ops++] = json_simd_op{kind, entry, number, str, len};
        return true;
    }

    char type() const { return static_cast<char>(tape[t] >> 56); }
    const char *token() const { return buf + index[s]; }
    char structural() const { return buf[index[s]]; }

    /* The string (key or value) at t, s: its contents unescaped (the raw
     * bytes when the text has no backslash).  With raw_escaped (keys of
     * node objects only), *raw_escaped is set when its raw form holds an
     * escape.  Moves past it. */
    void string_at(const char *&str, size_t &len, bool *raw_escaped = nullptr)
    {
        size_t at = static_cast<size_t>(tape[t] & internal::JSON_VALUE_MASK);
        uint32_t n;
        std::memcpy(&n, strings + at, sizeof n);
        const char *raw = token() + 1;
        len = n;
        if (raw_escaped)
            *raw_escaped = false;
        if (!escapes) {
            str = raw;
        } else {
            str = reinterpret_cast<const char *>(strings + at + sizeof n);
            if (raw_escaped)
                *raw_escaped = raw[n] != '"' || std::memchr(raw, '\\', n) != nullptr;
        }
        t++;
        s++;
    }

    /* Passes over the value at t, s without emitting anything. */
    void skip()
    {
        char ty = type();
        if (ty == '{' || ty == '[') {
            t = static_cast<uint32_t>(tape[t]); /* past its end */
            int depth = 0;
            do {
                char c = structural();
                s++;
                if (c == '{' || c == '[')
                    depth++;
                else if (c == '}' || c == ']')
                    depth--;
            } while (depth > 0);
            return;
        }
        t += (ty == 'l' || ty == 'u' || ty == 'd') ? 2 : 1;
        s++;
    }

    /* Past the ',' after a member or element, if one follows. */
    void comma()
    {
        if (structural() == ',')
            s++;
    }

    /* Records on the ARRAY operation at index `at` how many elements it
     * has (the builder sizes the table once); false past INT_MAX. */
    bool counted(size_t at, size_t count)
    {
        if (count > static_cast<size_t>(INT_MAX))
            return false;
        js->ops[at].entry = static_cast<int>(count);
        return true;
    }

    bool scalar();
    bool whole(int depth);
    bool node(const decode_node *nd, int depth);
    bool array(const decode_node *element, int depth);
};

/* Emits a string, number, boolean or null. */
bool scan::scalar()
{
    switch (type()) {
    case '"': {
        const char *str;
        size_t len;
        string_at(str, len);
        return emit(JSON_SIMD_STRING, 0, 0, str, len);
    }
    case 'l':
    case 'u':
    case 'd': {
        /* decode.c's own conversion of the token (the validator has
         * checked it): this is decode.c's result by definition. */
        double d;
        if (!decode_number(token(), buf_end, &d))
            return false;
        t += 2;
        s++;
        return emit(JSON_SIMD_NUMBER, 0, d);
    }
    case 't':
    case 'f':
    case 'n': {
        char ty = type();
        t++;
        s++;
        return emit(ty == 't' ? JSON_SIMD_TRUE : ty == 'f' ? JSON_SIMD_FALSE : JSON_SIMD_NULL);
    }
    default:
        return false;
    }
}

/* Emits an array, each element per the node `element` (NULL: whole). */
bool scan::array(const decode_node *element, int depth)
{
    size_t at = js->n_ops, count = 0;
    if (!emit(JSON_SIMD_ARRAY))
        return false;
    t++;
    s++; /* past '[' */
    while (structural() != ']') {
        if (!(element ? node(element, depth + 1) : whole(depth + 1)))
            return false;
        comma();
        count++;
    }
    t++;
    s++; /* past ']' */
    return counted(at, count) && emit(JSON_SIMD_END);
}

/* Emits a whole value: every key of every object. */
bool scan::whole(int depth)
{
    if (depth >= DECODE_MAX_DEPTH) /* stricter than decode.c for scalars: fine */
        return false;
    char ty = type();
    if (ty == '[')
        return array(nullptr, depth);
    if (ty != '{')
        return scalar();
    size_t at = js->n_ops;
    int count = 0;
    if (!emit(JSON_SIMD_OBJECT))
        return false;
    t++;
    s++; /* past '{' */
    while (structural() != '}') {
        const char *k;
        size_t k_len;
        string_at(k, k_len);
        s++; /* past ':' */
        if (!emit(JSON_SIMD_KEY, -1, 0, k, k_len) || !whole(depth + 1))
            return false;
        comma();
        if (count < INT_MAX)
            count++;
    }
    t++;
    s++; /* past '}' */
    js->ops[at].entry = count; /* (ops may have moved: indexed, not held) */
    return emit(JSON_SIMD_END);
}

/* Emits a value per the node nd: an object with its declared keys only (or
 * every key for "*"), an array element by element per "*", a scalar as is.
 * The END of a partial nested object carries its text '{' .. '}'. */
bool scan::node(const decode_node *nd, int depth)
{
    if (depth >= DECODE_MAX_DEPTH) /* stricter than decode.c for scalars: fine */
        return false;
    char ty = type();
    if (ty == '[')
        return nd->wild == 2 ? array(nd->wild_node, depth) : whole(depth);
    if (ty != '{')
        return scalar();
    const char *start = token();
    if (!emit(JSON_SIMD_OBJECT))
        return false;
    t++;
    s++; /* past '{' */
    bool partial = false, rest_ok = depth == 0;
    /* the root's undeclared members, while they may still all be added
     * (decode.h's DECODE_REST_MAX): each key and where its scalar value is */
    struct { const char *key; size_t key_len, t; uint32_t s; } rest[DECODE_REST_MAX];
    int n_rest = 0;
    while (structural() != '}') {
        const char *k;
        size_t k_len;
        bool raw_escaped;
        string_at(k, k_len, &raw_escaped);
        if (raw_escaped) /* decode.c leaves escaped declared keys to lua-cjson */
            return false;
        s++; /* past ':' */
        int entry = nd->wild ? -1 : decode_node_find(nd, k, k_len);
        if (!nd->wild && entry < 0) {
            partial = true;
            if (rest_ok && n_rest < DECODE_REST_MAX && type() != '{' && type() != '[')
                rest[n_rest++] = {k, k_len, t, s};
            else
                rest_ok = false;
            skip();
        } else {
            const decode_node *child = entry >= 0 ? nd->entries[entry].child : nd->wild_node;
            if (!emit(JSON_SIMD_KEY, entry, 0, k, k_len) || !(child ? node(child, depth + 1) : whole(depth + 1)))
                return false;
        }
        comma();
    }
    const char *close = token();
    t++;
    s++; /* past '}' */
    if (partial && rest_ok) { /* a small remainder of scalars joins the declared keys */
        size_t after_t = t;
        uint32_t after_s = s;
        for (int i = 0; i < n_rest; i++) {
            t = rest[i].t;
            s = rest[i].s;
            if (!emit(JSON_SIMD_KEY, -1, 0, rest[i].key, rest[i].key_len) || !scalar())
                return false;
        }
        t = after_t;
        s = after_s;
        partial = false;
    }
    if (!partial || depth == 0)
        return emit(JSON_SIMD_END, partial);
    return emit(JSON_SIMD_END, 1, 0, text + (start - buf), static_cast<size_t>(close + 1 - start));
}

/* The text's escapes allow the fast path: false on a \u escape of a UTF-16
 * surrogate (D800-DFFF), which decode.c leaves to lua-cjson.  Sets
 * *escapes when there is any backslash. */
bool escapes_ok(const char *s, size_t len, bool *escapes)
{
    const char *end = s + len;
    *escapes = false;
    for (const char *p = s; (p = static_cast<const char *>(std::memchr(p, '\\', static_cast<size_t>(end - p))));) {
        *escapes = true;
        if (end - p >= 4 && p[1] == 'u' && (p[2] | 0x20) == 'd' &&
            ((p[3] >= '8' && p[3] <= '9') || ((p[3] | 0x20) >= 'a' && (p[3] | 0x20) <= 'f')))
            return false;
        if (end - p <= 2)
            break;
        p += 2; /* past the escaped character (a "\\" pair included) */
    }
    return true;
}

/* The scan proper (json_simd_scan without the exception guard). */
size_t scan_payload(json_simd *js, const decode_node *root, const char *text, size_t len)
{
    bool escapes;
    if (!escapes_ok(text, len, &escapes))
        return 0;
    size_t need = len + SIMDJSON_PADDING;
    if (need > js->buf_cap) {
        void *p = std::realloc(js->buf, need);
        if (!p)
            return 0;
        js->buf = static_cast<char *>(p);
        js->buf_cap = need;
    }
    std::memcpy(js->buf, text, len);
    std::memset(js->buf + len, 0, SIMDJSON_PADDING);
    js->n_ops = 0;
    /* Nesting: simdjson's limit counts containers as decode.c does, but
     * refuses a scalar inside the deepest one too (stricter: the scanner
     * decides). */
    dom::parser &parser = js->parser;
    if (parser.capacity() < len && parser.allocate(len, DECODE_MAX_DEPTH))
        return 0;
    dom::element root_element;
    if (parser.parse(js->buf, len, false).get(root_element) || root_element.type() != dom::element_type::OBJECT)
        return 0;
    const internal::dom_parser_implementation &impl = *parser.implementation;
    if (impl.n_structural_indexes == 0)
        return 0;
    scan sc{js, parser.doc.tape.get(), parser.doc.string_buf.get(), impl.structural_indexes.get(),
            js->buf, js->buf + len, text, escapes};
    if (!sc.node(root, 0))
        return 0;
    return js->n_ops;
}

} // namespace

extern "C" {

json_simd *json_simd_new(void)
{
    return new (std::nothrow) json_simd();
}

void json_simd_free(json_simd *js)
{
    if (!js)
        return;
    std::free(js->buf);
    std::free(js->ops);
    delete js;
}

size_t json_simd_scan(json_simd *js, const decode_node *root, const char *text, size_t len, const json_simd_op **ops)
{
    try {
        size_t n = scan_payload(js, root, text, len);
        *ops = js->ops;
        return n;
    } catch (...) {
        return 0;
    }
}

} // extern "C"
