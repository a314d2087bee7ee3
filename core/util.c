/*
 * util.c — error messages and string helpers for the C subsystems.
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"
#include "retape.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void retape_free(void *ptr)
{
    free(ptr);
}

int set_error(char **errptr, const char *fmt, ...)
{
    if (!errptr || *errptr)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    char *msg = malloc((size_t)n + 1);
    if (!msg)
        return -1;
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    va_end(ap);
    *errptr = msg;
    return -1;
}

int grow_buffer(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    char *p = realloc(*buf, ncap);
    if (!p)
        return -1;
    *buf = p;
    *cap = ncap;
    return 0;
}

char *dup_string(const char *s)
{
    return s ? strdup(s) : NULL;
}
