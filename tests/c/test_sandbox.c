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

    /* strings: capped at frame.string_max, their copy charged to the budget */
    sb.on_trip = NULL;
    sb.frame = (sandbox_frame){.active = 1, .budget = 1000000, .mem_cap = 64 << 20, .mem_hard = 64 << 20,
                               .string_max = SANDBOX_STRING_MAX};
    void *s1 = retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, 40);
    CHECK(s1 != NULL && sb.frame.used == 0, "a short string is never charged (interning depends on history)");
    void *s2 = retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, 16000);
    CHECK(s2 != NULL && sb.frame.used == 16000 / SANDBOX_BYTES_PER_INSTRUCTION, "a 16 KB string costs 1000 instructions");
    void *t1 = retape_sandbox_alloc(&sb, NULL, 5 /* LUA_TTABLE */, 16000);
    CHECK(t1 != NULL && sb.frame.used == 1000, "other blocks are not charged (a table's growth depends on its history)");
    CHECK(retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, (size_t)SANDBOX_STRING_MAX + 1000) == NULL &&
              sb.frame.tripped == SANDBOX_MEMORY && sb.frame.refused_string > SANDBOX_STRING_MAX,
          "a string longer than the cap is refused, the frame tripped on memory");
    CHECK(retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, SANDBOX_TRIPPED_STRING_MAX + 1) == NULL,
          "once tripped a big string stays refused (Lua retries after a collection)");
    void *msg = retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, 2000);
    CHECK(msg != NULL, "but the error message can still be made");
    retape_sandbox_alloc(&sb, msg, 2000, 0);
    sb.frame = (sandbox_frame){.active = 1, .budget = 100, .mem_cap = 64 << 20, .mem_hard = 64 << 20,
                               .string_max = SANDBOX_STRING_MAX};
    void *s3 = retape_sandbox_alloc(&sb, NULL, SANDBOX_TSTRING, 4000);
    CHECK(s3 != NULL && sb.frame.tripped == SANDBOX_INSTRUCTIONS,
          "a string past the budget is made, the frame tripped on instructions (the hook raises next)");
    retape_sandbox_alloc(&sb, s1, 40, 0);
    retape_sandbox_alloc(&sb, s2, 16000, 0);
    retape_sandbox_alloc(&sb, s3, 4000, 0);
    retape_sandbox_alloc(&sb, t1, 16000, 0);
    CHECK(sb.in_use == 0, "every string returned");

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
    retape_slab_release(&sb.slab); /* the small blocks it served (sandbox.h) */
    return done_testing();
}
