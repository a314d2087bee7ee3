/*
 * ingest.h — internal readers used by `retape import` (not part of the
 * public API): a line reader over plain or gzip files, a reader of whole SQL
 * statements on top of it, and the staging of dump statements.
 */
#ifndef RETAPE_INGEST_H
#define RETAPE_INGEST_H

#include "retape.h"

typedef struct retape_lines retape_lines;

/* Longest line (and SQL statement) read by default: 16 MiB.  Longer ones
 * are skipped without being held in memory (retape import --max-line-bytes). */
#define RETAPE_MAX_LINE_DEFAULT ((size_t)16 << 20)

/* Opens a text file, gzip-compressed or not (detected from its content);
 * "-" is standard input (named "<stdin>" in messages).  max_line: the line
 * cap (0 = RETAPE_MAX_LINE_DEFAULT); skip_blank: lines of only spaces, tabs
 * and CRs are skipped here (they still count in line numbers).  A gzip input
 * is checked whole first (one from a pipe is copied, compressed, to an
 * unlinked temporary file for that): see retape_lines_problem. */
retape_lines *retape_lines_open(const char *path, size_t max_line, int skip_blank, char **errptr);
/* What the check of a gzip file found (a damaged or truncated member,
 * bytes after the last member), or NULL.  The reader stops where the
 * damaged member starts, so none of its lines is ever returned; the same
 * message then comes back as that read's error.  Borrowed. */
const char *retape_lines_problem(const retape_lines *lr);
/* Reads the next line without its line ending.  *line is borrowed until the
 * next call and may contain NUL bytes (*len is exact); *lineno is 1-based.
 * 1 = line, 2 = a line longer than the cap (skipped: *line is NULL, *len
 * its length), 0 = end of file, -1 = error (read error, a damaged or
 * truncated gzip member, trailing garbage after the last member). */
int retape_lines_next(retape_lines *lr, const char **line, size_t *len, long *lineno, char **errptr);
void retape_lines_close(retape_lines *lr);

/* Reads the next complete SQL statement (as judged by sqlite3_complete) from
 * a line reader.  *sql (*sql_len bytes) is borrowed until the next call;
 * *first_line is the line the statement starts on.  Each statement stands
 * alone: a line that starts a new statement of a dump (INSERT, CREATE,
 * BEGIN, COMMIT, PRAGMA... at its first byte) while the one read so far is
 * incomplete ends that one.  1 = statement, 2 = a statement that contained
 * NUL bytes (replaced by spaces; to be rejected), 3 = a statement rejected
 * here (incomplete when the next one starts, or longer than the line cap:
 * the reason is in *errptr, which the caller frees; reading goes on),
 * 0 = end, -1 = error (an unterminated statement at the end of the file,
 * even after comments, is an error naming its line). */
int retape_sql_next(retape_lines *lr, const char **sql, size_t *sql_len, long *first_line, char **errptr);

/* The eight columns of ingest_receipts as text (NULL for SQL NULL), in DDL
 * order: receipt_id, ticker, ts, bucket_5m, received_ts, payload_hash,
 * script_version, payload_json.  Borrowed for the callback only. */
typedef struct retape_staged_row {
    const char *col[8];
    size_t len[8];
} retape_staged_row;

typedef int (*retape_stage_fn)(const retape_staged_row *row, void *ud);

/* Runs one INSERT statement of a dump against a constraint-free staging copy
 * of ingest_receipts (an authorizer refuses any other write), calls fn for
 * each staged row, then empties the staging table.  Returns the number of
 * rows staged, or -1 with a message (the statement's own SQLite error).  A
 * non-zero return from fn stops the walk and is passed back as -2. */
int retape_writer_stage_sql(retape_writer *w, const char *sql, retape_stage_fn fn, void *ud, char **errptr);

/* Checks that the text is one strict JSON value (RFC 8259: no NaN, hex or
 * "1." numbers, no raw control characters in strings, nesting up to 1000)
 * with only white space around it, whose numbers are finite as doubles
 * (1e400 is not) and whose objects never repeat a key.  Returns 0, or the
 * 1-based offset of the first byte that breaks it, with *why (if why is not
 * NULL) saying how (a static string).  UTF-8 is not checked here.  Never
 * fails (out of memory is reported as a break). */
size_t retape_json_invalid_at(const char *json, size_t len, const char **why);

#endif
