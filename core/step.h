/*
 * step.h — the bookkeeping of the per-receipt loop that needs no Lua
 * (lua_step.c runs the loop): the run's receipts checksum and the clock of
 * the per-receipt budget.  Nothing here allocates or raises.
 */
#ifndef RETAPE_STEP_H
#define RETAPE_STEP_H

#include <stddef.h>
#include <stdint.h>

/* The stages of a receipt the budget times (`make bench`). */
enum { STEP_FETCH, STEP_RULE, STEP_SIMULATE, STEP_PACK, STEP_STAGES };

typedef struct step_budget {
    int on;                   /* 0: no clock is read */
    double ms[STEP_STAGES];   /* milliseconds spent in each stage */
} step_budget;

/* A monotonic clock in milliseconds (sub-microsecond resolution). */
double step_clock_ms(void);

/* The receipts checksum after one more receipt: the sum, modulo 2^32, of
 * the FNV-1a 32 (UTF-16 code units, as the original) of every receipt id. */
uint32_t step_sum_add(uint32_t sum, const char *receipt_id, size_t len);

#endif
