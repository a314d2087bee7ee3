/*
 * decode.h — the JSON scanning primitives of the selective payload decoder
 * (core/decode.c).  Pure C, no Lua: lua_decode.c walks a payload with these
 * and builds only the fields a ruleset declared.
 *
 * The scanner accepts a strict subset of JSON (RFC 8259 grammar; whitespace
 * space, tab, CR, LF; no control bytes inside strings; escapes limited to
 * the simple ones and \u outside the surrogate range).  Anything outside the
 * subset is reported as DECODE_FALLBACK, never guessed at: the caller then
 * hands the whole text to lua-cjson, which decides (and reports malformed
 * input with its own message and byte offset).  So the subset only has to
 * be one that lua-cjson accepts with the same values, never a superset.
 *
 * Every function takes the text as [p, end) and never reads past end.
 * Nothing allocates; nothing can fail other than by returning NULL.
 */
#ifndef RETAPE_DECODE_H
#define RETAPE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* core/json_simd.cpp walks field sets too */
#endif

/* Deepest nesting of a payload: at most this many objects and arrays inside
 * one another, the root counted (as lua-cjson's decode_max_depth counts
 * them): with depth 0 at the root object, a container at depth
 * DECODE_MAX_DEPTH or more is refused.  The scanner gives up there and the
 * cjson fallback (set to the same depth) reports the receipt as malformed, so
 * whatever the rules keep of a payload still fits the store's encoder (64
 * levels with the record around it). */
#define DECODE_MAX_DEPTH 48

/* A payload whose top level has at most this many undeclared members, all
 * scalars (strings, numbers, true, false, null), gets them too and comes
 * out whole, a plain table: a rule's read of a declared key the payload
 * lacks is then a table miss, with no metamethod call and no lazy rest
 * kept (the real receipts: two undeclared scalars beside the parity
 * ruleset's fields, ~33 reads of absent declared keys a receipt).  Larger
 * rests, or any undeclared object or array, leave it partial; so do nested
 * objects always: rules read their declared keys, and their values cost
 * more than a lazy rest (the six `ema` objects of a full-size body whole:
 * 1.04x the time of a full-size day; the 16 `tp_levels` entries too: 1.15x).
 * Both decoders decide alike: the same members, added after the declared
 * ones in document order. */
#define DECODE_REST_MAX 4

/* Skips JSON whitespace; returns the first other byte's position (or end). */
const char *decode_skip_ws(const char *p, const char *end);

/* Scans a string token starting at the opening quote p.  On success returns
 * the position after the closing quote, sets *s and *len to the raw contents
 * (between the quotes) and *escaped to 1 if they contain a backslash (the
 * contents then need unescaping; the scanner has checked the escapes).
 * Returns NULL outside the subset. */
const char *decode_string(const char *p, const char *end, const char **s, size_t *len, int *escaped);

/* Parses a number token at p into *out, exactly as strtod would read it
 * (Clinger's fast path when the digits and exponent allow an exact
 * correctly-rounded result, strtod otherwise).  The text must be followed
 * by a delimiter (, } ] whitespace) or end.  With out NULL the token is
 * only validated (no conversion: skipped values).  Returns the position after the token, or NULL outside the RFC grammar
 * or when the number is not finite as a double (1e400: the caller falls back and reports it). */
const char *decode_number(const char *p, const char *end, double *out);

/* 1 if the number token tok (len bytes, RFC 8259 grammar) is finite as a
 * double: its magnitude decides, strtod only at the edge (~1e308).  So
 * 1e400 and 400 digits are not; 1e-400 is (it rounds to 0). */
int decode_number_finite(const char *tok, size_t len);

/* Finds the first value token outside strings that is not a finite JSON
 * number, true, false or null (NaN, Infinity, hex, 1e400...); with
 * finite_only, only a number in JSON's grammar that is not finite (1e400).
 * Returns its position or NULL; *key, *key_len: the last object key before
 * it (the field it belongs to; NULL if none).  A lexical scan for error
 * messages, not a validator. */
const char *decode_find_bad_number(const char *p, const char *end, int finite_only, const char **key,
                                   size_t *key_len);

/* Skips one value of any type (validating it as the subset).  depth is the
 * current nesting.  Returns the position after it, or NULL. */
const char *decode_skip_value(const char *p, const char *end, int depth);

/* The key hash of compiled field sets (cheap: length and edge bytes). */
uint32_t decode_hash(const char *s, size_t len);

/* A compiled field set as the decoders walk it: one node per object level
 * the ruleset declares keys of.  lua_decode.c builds the nodes inside
 * GC-owned userdata (decode.compile) and owns them; the decoders only read
 * them.  A node's declared keys sit in an open-addressing table of
 * entry indexes (slots, mask + 1 of them, 0 = empty, else index + 1). */
typedef struct decode_entry {
    const char *name;            /* anchored by the field set */
    size_t len;
    uint32_t hash;               /* decode_hash(name, len) */
    struct decode_node *child;   /* NULL: the whole value */
} decode_entry;

typedef struct decode_node {
    int n;                       /* declared keys at this level */
    uint32_t mask;               /* hash slots - 1 */
    int wild;                    /* 0 no "*", 1 "*" = whole values, 2 "*" partial */
    struct decode_node *wild_node; /* wild == 2: the node of every key / element */
    decode_entry *entries;       /* n of them */
    int32_t *slots;              /* mask + 1 */
    int id;                      /* its place in the field set's list of nodes (1..) */
} decode_node;

/* The index of the declared key [s, s+len) in node's entries, or -1. */
int decode_node_find(const decode_node *node, const char *s, size_t len);

#ifdef __cplusplus
}
#endif

#endif
