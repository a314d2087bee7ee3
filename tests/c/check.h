/*
 * check.h — a minimal TAP producer for the C unit tests.  Each CHECK prints
 * "ok N - what" or "not ok N - what (file:line)"; done_testing() prints the
 * plan and returns the exit status.
 */
#ifndef RETAPE_CHECK_H
#define RETAPE_CHECK_H

#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_count, check_failed;

#define CHECK(cond, ...) check_report((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)

__attribute__((format(printf, 4, 5)))
static int check_report(int ok, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    check_count++;
    if (!ok)
        check_failed++;
    printf("%sok %d - ", ok ? "" : "not ", check_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (!ok)
        printf(" (%s:%d)", file, line);
    printf("\n");
    fflush(stdout);
    return ok;
}

/* Strings equal (either may be NULL). */
#define CHECK_STR(a, b, what) do { \
        const char *a_ = (a), *b_ = (b); \
        int ok_ = (a_ && b_) ? strcmp(a_, b_) == 0 : a_ == b_; \
        if (!CHECK(ok_, "%s", what)) \
            printf("#   got:      %s\n#   expected: %s\n", a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)

/* A message contains a fragment. */
#define CHECK_CONTAINS(msg, frag, what) do { \
        const char *m_ = (msg); \
        if (!CHECK(m_ && strstr(m_, frag), "%s", what)) \
            printf("#   message: %s\n#   expected to contain: %s\n", m_ ? m_ : "(null)", frag); \
    } while (0)

/* A fresh temporary directory (removed by the runner's temp root). */
static inline char *check_tempdir(void)
{
    const char *root = getenv("RETAPE_TEST_TMP");
    static char path[512];
    snprintf(path, sizeof path, "%s/ctest.XXXXXX", root && *root ? root : "/tmp");
    return mkdtemp(path) ? strdup(path) : NULL;
}

static inline int done_testing(void)
{
    printf("1..%d\n", check_count);
    return check_failed ? 1 : 0;
}

#endif
