/*
 * sandbox.h — mechanism of the rule sandbox (not part of the public API):
 * an accounting allocator with a cap that can be switched on around rule
 * code, the per-call budget state the instruction hook works on, and the
 * cost estimate of a Lua pattern.  Knows nothing of Lua beyond the shape of
 * a lua_Alloc function; the Lua side is lua_sandbox.c.
 */
#ifndef RETAPE_SANDBOX_H
#define RETAPE_SANDBOX_H

#include "slab.h"

#include <stddef.h>
#include <stdint.h>

/* What stopped a guarded call (retape_sandbox.tripped).  SANDBOX_TIME is
 * the CPU-time safety net: the only limit that depends on the machine. */
enum { SANDBOX_OK = 0, SANDBOX_INSTRUCTIONS = 1, SANDBOX_MEMORY = 2, SANDBOX_COST = 3, SANDBOX_TIME = 4 };

/* Bytes an allocation may still take after the cap was hit, so the limit
 * error itself (a small table and a traceback) can be built. */
#define SANDBOX_GRACE_BYTES ((int64_t)4 << 20)

/* The longest string rule code may create (bytes of text): bigger strings
 * are refused where they would be made (concatenation, sub, rep, format,
 * table.concat, ...), so no single VM instruction can copy or compare
 * more than this. */
#define SANDBOX_STRING_MAX ((int64_t)1 << 20)

/* Bytes of a new long string that cost one instruction of the budget (the
 * copy that made it).  Short strings (interned, whose creation depends on
 * what the state saw before) are never charged: the charge is the same at
 * every thread count. */
#define SANDBOX_BYTES_PER_INSTRUCTION 16

/* The allocator's tag of a new string block (LUA_TSTRING; checked against
 * lua.h in lua_sandbox.c) and the largest short string block. */
#define SANDBOX_TSTRING 4
/* The longest string block made once a limit was hit (an error message, a
 * traceback). */
#define SANDBOX_TRIPPED_STRING_MAX (64 << 10)
#define SANDBOX_SHORT_STRING_BLOCK 80

/* One guarded call's limits and what it used (saved and restored around
 * nested guards by lua_sandbox.c). */
typedef struct sandbox_frame {
    int active;              /* 1 inside a guard */
    int tripped;             /* SANDBOX_* of the first limit hit, 0 if none */
    int64_t budget;          /* instructions allowed */
    int64_t used;            /* instructions (and charged library work) used */
    int64_t mem_cap;         /* bytes the call may add (soft: checked by the hook) */
    int64_t mem_hard;        /* bytes above mem_base the allocator refuses */
    int64_t mem_base;        /* in_use when the guard started */
    int64_t string_max;      /* longest string the call may create (bytes) */
    int64_t refused_string;  /* size of the string block refused, 0 if none */
    double cpu_limit;        /* seconds of thread CPU time (safety net), 0 = none */
    double cpu_start;        /* thread CPU time at the first hook tick, < 0 before */
    void *lua;               /* the lua_State running the guarded call */
    char where[160];         /* "file:line" of the rule code running when the frame tripped */
} sandbox_frame;

/* The sandbox state of one Lua state: the allocator's accounting plus the
 * current frame.  Owned by whoever created the Lua state (retape_host). */
typedef struct retape_sandbox {
    int64_t in_use; /* bytes currently allocated through retape_sandbox_alloc */
    int accounting; /* 1 when the Lua state uses retape_sandbox_alloc */
    retape_slab slab; /* the state's small blocks (retape_slab_release after lua_close) */
    sandbox_frame frame;
    /* Called once when the allocator trips the frame (notes where, asks the
     * hook to raise at the next instruction); may be NULL.  Must neither
     * allocate nor raise. */
    void (*on_trip)(struct retape_sandbox *sb);
} retape_sandbox;

/* A lua_Alloc: realloc/free (small blocks from the state's slab, slab.h)
 * that counts bytes in `ud` (a retape_sandbox)
 * and, inside an active frame, refuses growth beyond mem_base + mem_hard
 * (plus SANDBOX_GRACE_BYTES once tripped), marking the frame tripped with
 * SANDBOX_MEMORY; refuses a new string longer than frame.string_max (also
 * SANDBOX_MEMORY, size noted in refused_string) and charges each new long
 * string its size / SANDBOX_BYTES_PER_INSTRUCTION (when that exceeds the
 * budget the frame trips with SANDBOX_INSTRUCTIONS and the string is still
 * made: the hook raises at the next instruction).  Calls sb->on_trip when
 * it trips the frame.  Never fails a free or a
 * shrink.  Never raises. */
void *retape_sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Worst-case number of matching steps of a Lua pattern over a subject of
 * `subject_len` bytes: (n+1)^(q+1) for q quantified items (n^q when the
 * pattern is anchored; q counts the items quantified by *, + or -) times
 * (1 + plen/8), saturating at INT64_MAX.  A pattern without
 * specials (or plain = 1) costs n. */
int64_t retape_sandbox_pattern_cost(const char *pat, size_t plen, size_t subject_len, int plain);

/* Adds `cost` to the frame's work; returns 1 (and marks the frame tripped
 * with `kind`) when that exceeds the budget, 0 otherwise.  Saturating. */
int retape_sandbox_charge(retape_sandbox *sb, int64_t cost, int kind);

#endif
