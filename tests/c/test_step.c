/* test_step.c — the bookkeeping of the per-receipt loop (step.h): the
 * receipts checksum is the original's FNV-1a 32 summed modulo 2^32, and the
 * budget's clock never runs backwards. */
#include "check.h"
#include "retape.h"
#include "step.h"

int main(void)
{
    const char *ids[] = {"AAPL:1769543700000:b7e6999d", "ALB:1769543700000:x", "é:1:ü"};
    uint32_t sum = 0;
    uint64_t wide = 0;
    for (int i = 0; i < 3; i++) {
        sum = step_sum_add(sum, ids[i], strlen(ids[i]));
        wide += retape_fnv1a32_utf16(ids[i], strlen(ids[i]));
    }
    CHECK(sum == (uint32_t)(wide & 0xffffffffu), "the checksum is the sum of the ids' FNV-1a 32 modulo 2^32");
    CHECK(step_sum_add(0xffffffffu, "a", 1) == retape_fnv1a32_utf16("a", 1) - 1, "the checksum wraps at 2^32");
    CHECK(step_sum_add(0, "", 0) == retape_fnv1a32_utf16("", 0), "an empty id adds the FNV offset basis");
    double t0 = step_clock_ms(), t1 = step_clock_ms();
    CHECK(t0 > 0 && t1 >= t0, "the clock runs forward (%.6f, %.6f)", t0, t1);
    return done_testing();
}
