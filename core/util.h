/*
 * util.h — small helpers shared by the C subsystems (not part of the public API).
 */
#ifndef RETAPE_UTIL_H
#define RETAPE_UTIL_H

#include <stddef.h>

/* Stores a malloc'd formatted message in *errptr (if errptr is not NULL and
 * no message is there yet).  Always returns -1, so `return set_error(...)`
 * reads naturally.  Never raises; on allocation failure stores nothing. */
int set_error(char **errptr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Makes the malloc'd buffer *buf (capacity *cap) hold at least `need`
 * bytes, doubling from `first` (when empty) until it does; its contents
 * are kept.  0, or -1 when out of memory (then *buf and *cap are unchanged).
 * Never raises. */
int grow_buffer(char **buf, size_t *cap, size_t need, size_t first);

/* strdup that returns NULL for NULL. */
char *dup_string(const char *s);

#endif
