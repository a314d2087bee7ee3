/*
 * readahead.h — an SQLite VFS that reads a database file in large windows
 * (not part of the public API).
 *
 * A replay reads the receipts file almost in file order (rows are stored
 * as they arrived, and a bucket's rows in time order), one 4 KB page per
 * `pread`: on a day of full-size bodies, 63,000 system calls for 39,500
 * rows, each costing more in the kernel's entry and exit than in its copy.
 * This VFS wraps the default one and serves the page reads of a main
 * database file opened read-only from a few windows, each read at once
 * (RETAPE_READAHEAD_BYTES in all); every other file (WAL, journals) and
 * every other call go straight through.  Several windows, because a
 * threaded replay's part looks its rows up by rowid in time order, which
 * walks a few regions of the file at once.
 *
 * The windows never serve bytes the file no longer holds: they are dropped at
 * every lock change (xLock, xUnlock, xShmLock: the start and end of each
 * read transaction, in rollback and in WAL mode), on every write, truncate
 * and sync, and at close.  Within one read transaction SQLite itself
 * relies on the pages it reads from the database file staying as they are
 * (a WAL checkpoint never overwrites a page a reader may still read from
 * the file), so a window filled inside it stays true until it ends.
 * Tested against a second connection's rewrites in both journal modes,
 * checkpoints included (tests/c/test_readahead.c).
 */
#ifndef RETAPE_READAHEAD_H
#define RETAPE_READAHEAD_H

/* The bytes of the windows of one open file, all together. */
#define RETAPE_READAHEAD_BYTES (256 * 1024)

/* The name of the read-ahead VFS, registered (not as the default) on the
 * first call, to pass to sqlite3_open_v2; NULL when it could not be
 * registered (the caller then opens with the default VFS).  Thread-safe;
 * never raises. */
const char *retape_readahead_vfs(void);

/* What the windows of every file closed so far did: the reads they served
 * (hits), the windows filled from the file (fills), and the page reads
 * that went straight through (passed).  For tests;
 * thread-safe. */
typedef struct retape_readahead_counts {
    unsigned long long hits, fills, passed;
} retape_readahead_counts;
void retape_readahead_totals(retape_readahead_counts *out);

#endif
