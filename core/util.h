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

/* Sorts arr[from..n) (elements of `type`, a struct) by insertion with
 * cmp(const type *, const type *) (<0, 0, >0 as qsort's): the small arrays
 * of an object's keys, where glibc's qsort (a merge sort through a
 * callback) cost ~1.7 % of a replay.  Stable; `from` and `n` are evaluated
 * more than once. */
#define INSERTION_SORT(type, arr, from, n, cmp)                              \
    do {                                                                     \
        for (size_t is_i_ = (size_t)(from) + 1; is_i_ < (size_t)(n); is_i_++) { \
            type is_k_ = (arr)[is_i_];                                        \
            size_t is_j_ = is_i_;                                            \
            for (; is_j_ > (size_t)(from) && cmp(&(arr)[is_j_ - 1], &is_k_) > 0; is_j_--) \
                (arr)[is_j_] = (arr)[is_j_ - 1];                             \
            (arr)[is_j_] = is_k_;                                            \
        }                                                                    \
    } while (0)

#endif
