/*
 * test_sandbox.c — the sandbox mechanism from C alone (core/sandbox.c): the
 * accounting allocator and its cap, the budget arithmetic, the cost of a
 * Lua pattern.
 */
#include "check.h"
#include "sandbox.h"

#include <stdlib.h>
#include <string.h>

int main(void)
{
    retape_sandbox sb;
    memset(&sb, 0, sizeof sb);

    /* accounting: new blocks (Lua passes the type in osize), growth, shrink, free */
    void *p = retape_sandbox_alloc(&sb, NULL, 5 /* LUA_TTABLE */, 100);
    CHECK(p != NULL && sb.in_use == 100, "a new block of 100 bytes is counted");
    p = retape_sandbox_alloc(&sb, p, 100, 1000);
    CHECK(p != NULL && sb.in_use == 1000, "growth is counted");
    p = retape_sandbox_alloc(&sb, p, 1000, 10);
    CHECK(p != NULL && sb.in_use == 10, "a shrink is counted");
    CHECK(retape_sandbox_alloc(&sb, p, 10, 0) == NULL && sb.in_use == 0, "a free is counted");

    /* the cap applies only inside an active frame */
    sb.frame = (sandbox_frame){.active = 1, .budget = 1000, .mem_cap = 1 << 20, .mem_hard = 1 << 20, .mem_base = 0};
    void *small = retape_sandbox_alloc(&sb, NULL, 0, 1000);
    CHECK(small != NULL && !sb.frame.tripped, "an allocation under the cap succeeds");
    CHECK(retape_sandbox_alloc(&sb, NULL, 0, (size_t)1 << 30) == NULL, "1 GB past a 1 MB cap is refused");
    CHECK(sb.frame.tripped == SANDBOX_MEMORY && sb.in_use == 1000, "the frame is tripped, nothing counted");
    void *grace = retape_sandbox_alloc(&sb, NULL, 0, (size_t)2 << 20);
    CHECK(grace != NULL, "after the trip a little grace remains for the error itself");
    CHECK(retape_sandbox_alloc(&sb, NULL, 0, (size_t)8 << 20) == NULL, "but not more than the grace");
    void *shrunk = retape_sandbox_alloc(&sb, grace, (size_t)2 << 20, 16);
    CHECK(shrunk != NULL, "a shrink never fails, even over the cap");
    retape_sandbox_alloc(&sb, shrunk, 16, 0);
    retape_sandbox_alloc(&sb, small, 1000, 0);
    CHECK(sb.in_use == 0, "everything returned");
    sb.frame.active = 0;
    void *big = retape_sandbox_alloc(&sb, NULL, 0, (size_t)4 << 20);
    CHECK(big != NULL, "outside a frame there is no cap");
    retape_sandbox_alloc(&sb, big, (size_t)4 << 20, 0);

    /* budget */
    sb.frame = (sandbox_frame){.active = 1, .budget = 100};
    CHECK(retape_sandbox_charge(&sb, 60, SANDBOX_INSTRUCTIONS) == 0, "60 of 100 is within the budget");
    CHECK(retape_sandbox_charge(&sb, 60, SANDBOX_INSTRUCTIONS) == 1 && sb.frame.tripped == SANDBOX_INSTRUCTIONS,
          "120 of 100 trips the budget");
    CHECK(retape_sandbox_charge(&sb, INT64_MAX, SANDBOX_INSTRUCTIONS) == 1 && sb.frame.used == INT64_MAX,
          "charges saturate instead of overflowing");

    /* pattern cost: plain and anchored patterns are cheap, nested backtracking is not */
    CHECK(retape_sandbox_pattern_cost("abc", 3, 1000, 0) == 1001, "a pattern without specials costs n");
    CHECK(retape_sandbox_pattern_cost(".-.-", 4, 1000, 1) == 1001, "find with plain = true costs n");
    CHECK(retape_sandbox_pattern_cost("^%s*(.-)%s*$", 12, 200, 0) < 100000000, "trimming 200 bytes is affordable");
    CHECK(retape_sandbox_pattern_cost(".-.-.-.-b", 9, 5000, 0) > (int64_t)1e18, "4 nested .- over 5000 bytes is not");
    CHECK(retape_sandbox_pattern_cost(".-.-.-.-.-.-.-.-.-.-.-.-.-.-.-.-b", 33, 5000, 0) == INT64_MAX,
          "the cost saturates");
    return done_testing();
}
