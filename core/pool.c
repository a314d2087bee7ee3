/*
 * pool.c — the inboxes of a threaded replay.  The main thread reads a
 * bucket's rows once, in the cursor's (ts, receipt_id) order, and copies
 * each into the inbox of the part that owns its ticker (retape_part_of in
 * hash.c, the function of `--shard` too).  A ticker's rows therefore always
 * reach the same part, in their order, whatever the number of parts; each
 * row keeps its index in the bucket so that the parts' reports can be put
 * back in row order.
 *
 * An inbox is one growing arena of strings plus a row array; both are reused
 * from bucket to bucket, so memory is bounded by the largest bucket.  It
 * also carries the part's answer back: the serialized writes it queued
 * (`out`, reused the same way), which the committing thread appends to its
 * batch without another copy.
 *
 * Also how many processors the threads may use (retape_cpus).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "retape.h"
#include "util.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct inbox_row {
    size_t receipt_id, ticker, script_version, payload; /* arena offsets; SIZE_MAX = NULL */
    size_t payload_len;
    int64_t ts, bucket_5m, index;
} inbox_row;

struct retape_inbox {
    char *arena;
    size_t used, cap;
    inbox_row *rows;
    size_t n, rows_cap, next;
    char *out; /* the part's writes, serialized batches one after the other */
    size_t out_used, out_cap;
};

retape_inbox *retape_inbox_new(void)
{
    return calloc(1, sizeof(retape_inbox));
}

void retape_inbox_free(retape_inbox *in)
{
    if (!in)
        return;
    free(in->arena);
    free(in->rows);
    free(in->out);
    free(in);
}

void retape_inbox_reset(retape_inbox *in)
{
    in->used = in->n = in->next = in->out_used = 0;
}

size_t retape_inbox_bytes(const retape_inbox *in)
{
    return in->used;
}

/* Appends len bytes to the inbox's writes.  0, or -1 when out of memory
 * (nothing appended). */
int retape_inbox_keep(retape_inbox *in, const char *data, size_t len)
{
    if (grow_buffer(&in->out, &in->out_cap, in->out_used + len, 65536) != 0)
        return -1;
    memcpy(in->out + in->out_used, data, len);
    in->out_used += len;
    return 0;
}

/* The inbox's writes (borrowed, valid until it is reset or written to). */
const char *retape_inbox_kept(const retape_inbox *in, size_t *len)
{
    *len = in->out_used;
    return in->out;
}

size_t retape_inbox_count(const retape_inbox *in)
{
    return in->n;
}

/* Copies len bytes (plus a NUL) into the arena; returns the offset, or
 * SIZE_MAX - 1 when out of memory.  NULL text is recorded as SIZE_MAX. */
static size_t arena_copy(retape_inbox *in, const char *text, size_t len)
{
    if (!text)
        return SIZE_MAX;
    if (grow_buffer(&in->arena, &in->cap, in->used + len + 1, 65536) != 0)
        return SIZE_MAX - 1;
    size_t at = in->used;
    memcpy(in->arena + at, text, len);
    in->arena[at + len] = '\0';
    in->used += len + 1;
    return at;
}

/* Appends a copy of row r with its index in the bucket.  0, or -1 when out
 * of memory (the inbox is unchanged then). */
int retape_inbox_add(retape_inbox *in, const retape_receipt *r, int64_t index)
{
    if (in->n == in->rows_cap) {
        size_t cap = in->rows_cap ? in->rows_cap * 2 : 256;
        inbox_row *rows = realloc(in->rows, cap * sizeof *rows);
        if (!rows)
            return -1;
        in->rows = rows;
        in->rows_cap = cap;
    }
    size_t mark = in->used;
    inbox_row *row = &in->rows[in->n];
    row->receipt_id = arena_copy(in, r->receipt_id, strlen(r->receipt_id));
    row->ticker = arena_copy(in, r->ticker, strlen(r->ticker));
    row->script_version = arena_copy(in, r->script_version, r->script_version ? strlen(r->script_version) : 0);
    row->payload = arena_copy(in, r->payload, r->payload_len);
    if (row->receipt_id == SIZE_MAX - 1 || row->ticker == SIZE_MAX - 1 || row->script_version == SIZE_MAX - 1 ||
        row->payload == SIZE_MAX - 1) {
        in->used = mark;
        return -1;
    }
    row->payload_len = r->payload_len;
    row->ts = r->ts;
    row->bucket_5m = r->bucket_5m;
    row->index = index;
    in->n++;
    return 0;
}

static const char *at(const retape_inbox *in, size_t off)
{
    return off == SIZE_MAX ? NULL : in->arena + off;
}

/* Reads the next row (pointers valid until the inbox is reset): 1, or 0
 * when every row was read. */
int retape_inbox_next(retape_inbox *in, retape_receipt *r, int64_t *index)
{
    if (in->next >= in->n)
        return 0;
    const inbox_row *row = &in->rows[in->next++];
    r->receipt_id = at(in, row->receipt_id);
    r->ticker = at(in, row->ticker);
    r->script_version = at(in, row->script_version);
    r->payload = at(in, row->payload);
    r->payload_len = row->payload_len;
    r->ts = row->ts;
    r->bucket_5m = row->bucket_5m;
    *index = row->index;
    return 1;
}

/* The bucket of the next row (0 when every row was read). */
int64_t retape_inbox_peek_bucket(const retape_inbox *in)
{
    return in->next < in->n ? in->rows[in->next].bucket_5m : 0;
}

/* Reads the cursor to its end: rows with index in [first, stop) (stop < 0:
 * no end) are routed to inboxes[part of ticker]; the rows before `first`
 * are skipped, and reading stops after the first row at `stop` (*more = 1).
 * *routed = rows routed.  0, or -1 + *errptr (a read error, or out of
 * memory). */
int retape_route(retape_cursor *cur, retape_inbox **inboxes, unsigned parts, int64_t first, int64_t stop,
                 int64_t *routed, int *more, char **errptr)
{
    *routed = 0;
    *more = 0;
    for (int64_t index = 0;; index++) {
        retape_receipt r;
        int rc = retape_cursor_next(cur, &r, errptr);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 0;
        if (index < first)
            continue;
        if (stop >= 0 && index >= stop) {
            *more = 1;
            return 0;
        }
        if (retape_inbox_add(inboxes[retape_part_of(r.ticker, parts)], &r, index) != 0)
            return set_error(errptr, "out of memory routing receipt %s", r.receipt_id);
        (*routed)++;
    }
}

unsigned retape_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}
