/*
 * step.c — bookkeeping of the per-receipt loop (step.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "step.h"

#include <time.h>

#include "retape.h"

double step_clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

uint32_t step_sum_add(uint32_t sum, const char *receipt_id, size_t len)
{
    return sum + retape_fnv1a32_utf16(receipt_id, len); /* wraps modulo 2^32 */
}
