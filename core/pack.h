/*
 * pack.h — the packed value format of the state store (layout 3): a compact
 * binary twin of the JSON a version record used to be, written and read in
 * C with no number formatting or parsing.
 *
 * A value is one tag byte and its body:
 *   'n' nil (JSON null)     'f' false     't' true
 *   'd' number: 8 bytes, the IEEE-754 double, little-endian
 *   's' string: varint length, then the bytes
 *   '[' list: varint count, then that many values
 *   '{' object: varint count, then count times (varint key length, key bytes, value)
 * Varints are unsigned LEB128.  Numbers are written as a JSON round trip
 * would give them back: NaN and infinities as nil, -0 as 0.  Object keys
 * come in byte order, so equal values pack to equal bytes.
 *
 * Conventions: a writer owns a malloc'd buffer (pack_writer_free releases
 * it); a put that cannot grow the buffer sets `failed` and does nothing
 * more.  Readers never allocate: a get returns 0, or -1 on truncated or
 * malformed input.  Nothing here raises or knows about Lua.
 */
#ifndef RETAPE_PACK_H
#define RETAPE_PACK_H

#include <stddef.h>
#include <stdint.h>

enum { PACK_NIL = 'n', PACK_FALSE = 'f', PACK_TRUE = 't', PACK_NUMBER = 'd', PACK_STRING = 's',
       PACK_LIST = '[', PACK_OBJECT = '{' };
#define PACK_MAX_DEPTH 64

typedef struct pack_writer {
    char *data;
    size_t len, cap;
    int failed;
    size_t values_left; /* lua_pack.c's walkers: values they may still put (set by each entry point) */
    size_t bytes_from, bytes_max; /* ... and bytes past bytes_from (SIZE_MAX: no bound) */
    int bound_members;  /* pack.encode: the bound holds for each member of a top-level object */
} pack_writer;

typedef struct pack_reader {
    const unsigned char *p, *end;
} pack_reader;

void pack_writer_reset(pack_writer *w);
void pack_writer_free(pack_writer *w);
void pack_put_nil(pack_writer *w);
void pack_put_bool(pack_writer *w, int b);
void pack_put_number(pack_writer *w, double x);
void pack_put_string(pack_writer *w, const char *s, size_t len);
/* The header of a list or object of n entries (tag PACK_LIST or PACK_OBJECT). */
void pack_put_count(pack_writer *w, int tag, uint64_t n);
/* An object key (its value follows). */
void pack_put_key(pack_writer *w, const char *s, size_t len);
/* The bytes of a value packed before, copied as they are. */
void pack_put_raw(pack_writer *w, const char *s, size_t len);

void pack_reader_init(pack_reader *r, const char *data, size_t len);
/* The next tag, consumed (0 at the end of the input). */
int pack_get_tag(pack_reader *r);
int pack_get_number(pack_reader *r, double *out);
/* A string body or an object key: points into the input. */
int pack_get_string(pack_reader *r, const char **s, size_t *len);
int pack_get_count(pack_reader *r, uint64_t *n);
/* Skips one whole value (tag included); -1 if malformed or nested deeper than PACK_MAX_DEPTH. */
int pack_skip_value(pack_reader *r, int depth);

#endif
