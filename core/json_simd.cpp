/*
 * json_simd.cpp — json_simd.h's scanner: simdjson over one payload, emitting
 * the build operations of the declared fields.
 *
 * Two passes of simdjson: its DOM parser validates the whole text (On-Demand
 * checks only what it reads, and reading every value through it costs as
 * much as the hand-written scanner, where the DOM parse is ~2.5x faster),
 * then On-Demand walks the declared fields only, skipping the rest, and
 * gives the exact tokens (numbers' text, keys' raw bytes, partial objects'
 * spans) that the scanner's results are made of.
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
 *     (the scanner's own doubles, bit for bit; simdjson 3.0.1's On-Demand
 *     get_double misreads some long decimals); simdjson's validator refuses
 *     numbers outside the double range (strtod: infinity) and integers past
 *     2^64, which the scanner decides (or hands to lua-cjson);
 *   - strings are unescaped by simdjson as decode.c unescapes them; the
 *     escapes decode.c leaves to lua-cjson (UTF-16 surrogates) and escaped
 *     keys of declared objects are refused;
 *   - the tables' shape comes from the same field-set walk: the same keys
 *     in document order, the same partial objects with the same texts.
 */
#include "json_simd.h"

#include <simdjson.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

using namespace simdjson;

struct json_simd {
    dom::parser validator;         /* checks the whole text */
    ondemand::parser parser;       /* reads the declared fields */
    char *buf = nullptr;           /* the text plus SIMDJSON_PADDING */
    size_t buf_cap = 0;
    json_simd_op *ops = nullptr;
    size_t n_ops = 0, ops_cap = 0;
};

namespace {

/* One scan: the state the walk shares.  Each walk function visits one value
 * (consuming it) and returns false to give up (undecided). */
struct scan {
    json_simd *js;
    ondemand::document &doc;
    const char *buf, *buf_end; /* the padded copy */
    const char *text;          /* the caller's text (same offsets as buf) */
    bool escapes;              /* the text has a backslash somewhere */

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

    /* The contents of a string token whose raw contents start at raw, when
     * the text has no backslash (the first quote closes it). */
    std::string_view plain(const char *raw) const
    {
        const void *q = std::memchr(raw, '"', static_cast<size_t>(buf_end - raw));
        return std::string_view(raw, q ? static_cast<size_t>(static_cast<const char *>(q) - raw) : 0);
    }

    /* A string value's contents (unescaped); false if invalid. */
    bool string_value(ondemand::value &v, std::string_view &out)
    {
        if (escapes)
            return !v.get_string().get(out);
        ondemand::raw_json_string raw;
        if (v.get_raw_json_string().get(raw))
            return false;
        out = plain(raw.raw());
        return true;
    }

    /* A field's key (unescaped); with declared, false if it holds an
     * escape (decode.c leaves those keys to lua-cjson). */
    bool key_of(ondemand::field &f, std::string_view &out, bool declared)
    {
        const char *raw = f.key().raw();
        if (!escapes) {
            out = plain(raw);
            return true;
        }
        if (f.unescaped_key().get(out))
            return false;
        if (declared && (std::memchr(raw, '\\', out.size()) || raw[out.size()] != '"'))
            return false;
        return true;
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

    bool scalar(ondemand::value &v, ondemand::json_type type);
    bool whole(ondemand::value &v, int depth);
    bool node(ondemand::value &v, const decode_node *nd, int depth);
    bool object_end(const char *start, bool partial, int depth);
};

/* Emits a string, number, boolean or null. */
bool scan::scalar(ondemand::value &v, ondemand::json_type type)
{
    switch (type) {
    case ondemand::json_type::string: {
        std::string_view s;
        return string_value(v, s) && emit(JSON_SIMD_STRING, 0, 0, s.data(), s.size());
    }
    case ondemand::json_type::number: {
        /* decode.c's own conversion of the token (the validator has checked
         * it): On-Demand's get_double in simdjson 3.0.1 misreads some
         * decimals of more than 19 digits (0.12345678901234567890123 ->
         * 4.8e-05), and this is decode.c's result by definition. */
        double d;
        return decode_number(v.raw_json_token().data(), buf_end, &d) && emit(JSON_SIMD_NUMBER, 0, d);
    }
    case ondemand::json_type::boolean: {
        bool b;
        return !v.get_bool().get(b) && emit(b ? JSON_SIMD_TRUE : JSON_SIMD_FALSE);
    }
    case ondemand::json_type::null: {
        bool is_null;
        return !v.is_null().get(is_null) && is_null && emit(JSON_SIMD_NULL);
    }
    default:
        return false;
    }
}

/* Emits a whole value: every key of every object. */
bool scan::whole(ondemand::value &v, int depth)
{
    if (depth >= DECODE_MAX_DEPTH) /* stricter than decode.c for scalars: fine */
        return false;
    ondemand::json_type type;
    if (v.type().get(type))
        return false;
    if (type == ondemand::json_type::object) {
        ondemand::object obj;
        size_t at = js->n_ops;
        int count = 0;
        if (v.get_object().get(obj) || !emit(JSON_SIMD_OBJECT))
            return false;
        for (auto f : obj) {
            ondemand::field field;
            std::string_view k;
            if (std::move(f).get(field) || !key_of(field, k, false) || !emit(JSON_SIMD_KEY, -1, 0, k.data(), k.size()) ||
                !whole(field.value(), depth + 1))
                return false;
            if (count < INT_MAX)
                count++;
        }
        js->ops[at].entry = count; /* (ops may have moved: indexed, not held) */
        return emit(JSON_SIMD_END);
    }
    if (type == ondemand::json_type::array) {
        ondemand::array arr;
        size_t at = js->n_ops, count = 0;
        if (v.get_array().get(arr) || !emit(JSON_SIMD_ARRAY))
            return false;
        for (auto e : arr) {
            ondemand::value el;
            if (e.get(el) || !whole(el, depth + 1))
                return false;
            count++;
        }
        return counted(at, count) && emit(JSON_SIMD_END);
    }
    return scalar(v, type);
}

/* Emits the END of an object built per a node; a partial nested object
 * carries its text [start, '}'] (the iterator now sits on the token after
 * its '}': only whitespace lies between). */
bool scan::object_end(const char *start, bool partial, int depth)
{
    if (!partial || depth == 0)
        return emit(JSON_SIMD_END, partial);
    const char *next;
    if (doc.current_location().get(next))
        return false;
    const char *close = next - 1;
    while (close > start && (*close == ' ' || *close == '\n' || *close == '\r' || *close == '\t'))
        close--;
    if (*close != '}')
        return false;
    return emit(JSON_SIMD_END, 1, 0, text + (start - buf), static_cast<size_t>(close + 1 - start));
}

/* Emits a value per the node nd: an object with its declared keys only (or
 * every key for "*"), an array element by element per "*", a scalar as is. */
bool scan::node(ondemand::value &v, const decode_node *nd, int depth)
{
    if (depth >= DECODE_MAX_DEPTH) /* stricter than decode.c for scalars: fine */
        return false;
    ondemand::json_type type;
    if (v.type().get(type))
        return false;
    if (type == ondemand::json_type::array) {
        if (nd->wild != 2)
            return whole(v, depth);
        ondemand::array arr;
        size_t at = js->n_ops, count = 0;
        if (v.get_array().get(arr) || !emit(JSON_SIMD_ARRAY))
            return false;
        for (auto e : arr) {
            ondemand::value el;
            if (e.get(el) || !node(el, nd->wild_node, depth + 1))
                return false;
            count++;
        }
        return counted(at, count) && emit(JSON_SIMD_END);
    }
    if (type != ondemand::json_type::object)
        return scalar(v, type);
    ondemand::object obj;
    const char *start = v.raw_json_token().data();
    if (v.get_object().get(obj) || !emit(JSON_SIMD_OBJECT))
        return false;
    bool partial = false;
    for (auto f : obj) {
        ondemand::field field;
        std::string_view k;
        if (std::move(f).get(field) || !key_of(field, k, true))
            return false;
        int index = nd->wild ? -1 : decode_node_find(nd, k.data(), k.size());
        if (!nd->wild && index < 0) { /* On-Demand skips it (validated) */
            partial = true;
            continue;
        }
        if (!emit(JSON_SIMD_KEY, index, 0, k.data(), k.size()))
            return false;
        const decode_node *child = index >= 0 ? nd->entries[index].child : nd->wild_node;
        if (!(child ? node(field.value(), child, depth + 1) : whole(field.value(), depth + 1)))
            return false;
    }
    return object_end(start, partial, depth);
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
    /* The whole text first, by the DOM parser: On-Demand checks only what
     * it reads, and checking every value through it costs as much as the
     * hand-written scanner, where the DOM parse is ~2.5x faster.  Nesting:
     * simdjson's limit counts containers as decode.c does, but refuses a
     * scalar inside the deepest one too (stricter: the scanner decides). */
    if (js->validator.capacity() < len && js->validator.allocate(len, DECODE_MAX_DEPTH))
        return 0;
    dom::element root_element;
    if (js->validator.parse(js->buf, len, false).get(root_element))
        return 0;
    ondemand::document doc;
    if (js->parser.iterate(js->buf, len, js->buf_cap).get(doc))
        return 0;
    scan sc{js, doc, js->buf, js->buf + len, text, escapes};
    ondemand::json_type type;
    ondemand::value value;
    if (doc.type().get(type) || type != ondemand::json_type::object || doc.get_value().get(value) ||
        !sc.node(value, root, 0))
        return 0;
    /* nothing but whitespace may follow the object */
    const char *after;
    if (doc.current_location().get(after) != OUT_OF_BOUNDS)
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
