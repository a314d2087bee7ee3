/*
 * dtoa.h — the decimal text of a number, as retape's JSON encoder writes it
 * (not part of the public API).
 */
#ifndef RETAPE_DTOA_H
#define RETAPE_DTOA_H

#include <stddef.h>

/* Room for any text retape_format_double writes, with its NUL. */
#define RETAPE_DOUBLE_TEXT 40

/* Writes the text of the finite double x into buf: an integral x below
 * 1e15 in magnitude as an integer ("3", "-0" as "0"), any other as the
 * shortest of "%.15g", "%.16g", "%.17g" that reads back (strtod) to x.
 * Returns the text's length.  Never raises; x must be finite. */
size_t retape_format_double(double x, char buf[RETAPE_DOUBLE_TEXT]);

/* Writes the decimal digits of v (with a '-' when negative) ending just
 * before `end`, NUL-terminated at end[-1]; returns where the text starts.
 * `end` must have at least 22 bytes before it. */
char *retape_format_integer(char *end, long long v);

#endif
