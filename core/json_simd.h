/*
 * json_simd.h — the simdjson front end of the selective payload decoder
 * (core/json_simd.cpp, C++ behind a C-callable interface).
 *
 * json_simd_scan checks one payload whole with simdjson's DOM parser
 * (Debian's libsimdjson, its SIMD kernel chosen at run time), then walks
 * the parse's tape and structural index together and describes the fields
 * a compiled field set (decode.h's decode_node) declares as a flat list of
 * build operations; lua_decode.c turns that list into the same Lua tables
 * the hand-written scanner (decode.c) builds.  It accepts a payload only
 * when the scanner would accept it with the same values; everything else
 * (malformed JSON, escaped keys in declared objects, UTF-16 surrogate
 * escapes, nesting past DECODE_MAX_DEPTH, numbers outside the double
 * range, invalid UTF-8) is "undecided" and the caller runs the
 * hand-written path, which gives today's results and error messages.
 *
 * Ownership: a json_simd holds the parser, a padded copy of the text and the
 * operation list; json_simd_new / json_simd_free pair up.  The operations
 * (and the strings they point at) live until the next scan or the free.
 * No function raises or throws; none calls Lua.
 */
#ifndef RETAPE_JSON_SIMD_H
#define RETAPE_JSON_SIMD_H

#include "decode.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What one operation builds.  A value is one scalar operation, or ARRAY
 * followed by its elements' values and END, or OBJECT followed by (KEY,
 * value) pairs and END. */
typedef enum json_simd_kind {
    JSON_SIMD_NUMBER,   /* number */
    JSON_SIMD_STRING,   /* str, len (unescaped) */
    JSON_SIMD_TRUE,
    JSON_SIMD_FALSE,
    JSON_SIMD_NULL,
    JSON_SIMD_ARRAY,    /* entry: how many elements follow */
    JSON_SIMD_OBJECT,   /* entry: a whole object's keys (duplicates counted),
                           0 for one built per a node */
    JSON_SIMD_KEY,      /* entry >= 0: that declared entry of the object's
                           node; entry -1: the key is str, len (any key of a
                           "*" node or a whole object; an undeclared one of
                           a small remainder, decode.h's DECODE_REST_MAX) */
    JSON_SIMD_END,      /* closes an ARRAY or OBJECT; of an object built per
                           a node: entry 1 if keys were left out (a partial
                           table), str, len its text (nested objects only) */
} json_simd_kind;

typedef struct json_simd_op {
    int kind;           /* json_simd_kind */
    int entry;
    double number;
    const char *str;    /* into the parser's buffer or the caller's text */
    size_t len;
} json_simd_op;

typedef struct json_simd json_simd;

/* A scanner with no buffers yet (they grow to the largest payload seen).
 * NULL when out of memory. */
json_simd *json_simd_new(void);

/* Frees js and everything it holds (NULL is fine). */
void json_simd_free(json_simd *js);

/* Scans the payload [text, text+len), which must be a JSON object, per the
 * field set root.  Returns the number of operations (at least 2, the root
 * OBJECT and its END) with *ops pointing at them, or 0 when undecided (see
 * above; also when out of memory).  text is not modified and must outlive
 * the operations (partial objects' texts point into it). */
size_t json_simd_scan(json_simd *js, const decode_node *root, const char *text, size_t len, const json_simd_op **ops);

#ifdef __cplusplus
}
#endif

#endif
