/*
 * readahead.c — readahead.h's VFS: a shim over the default SQLite VFS whose
 * read-only main database files keep a few windows of the file's bytes.
 *
 * Layout of an open file: our ra_file, then the default VFS's own file
 * object (szOsFile bytes), which every method forwards to.  A page read of
 * a windowed file is served from the window holding its bytes, else the
 * least recently used window is refilled with the aligned block around it
 * (clamped to the file's size: a page read never goes past it).  A read
 * shorter than a page (the header's change counter, read at each
 * transaction's start in rollback mode) never fills a window, though the
 * windows serve it when they hold its bytes; one longer than half a block
 * goes straight through.
 */
#include "readahead.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define RA_VFS_NAME "retape-readahead"
/* The smallest read that fills a window (SQLite's smallest page). */
#define RA_MIN_FILL 512
/* The windows a file keeps, and the bytes of each: a threaded replay's
 * part reads its rows by rowid in time order, which on a full-size day
 * walks three regions of the file at once (the leaf pages and the
 * overflow pages of rows stored at different times). */
#define RA_WINDOWS 4
#define RA_BLOCK (RETAPE_READAHEAD_BYTES / RA_WINDOWS)

/* One window: the bytes of the file at [start, start + len). */
typedef struct ra_window {
    sqlite3_int64 start;
    size_t len;          /* 0: empty */
    unsigned long used;  /* the file's read count at its last hit (least recently used goes first) */
} ra_window;

typedef struct ra_file {
    sqlite3_file base;     /* pMethods: one of ra_methods */
    sqlite3_file *real;    /* the default VFS's file, after this struct */
    int windowed;          /* a read-only main database file */
    char *buf;             /* RA_WINDOWS windows of RA_BLOCK bytes, malloc'd on the first fill */
    ra_window win[RA_WINDOWS];
    sqlite3_int64 size;    /* the file's size, read at the first fill (-1: not known) */
    unsigned long reads;
    retape_readahead_counts counts; /* added to the totals at close */
} ra_file;

/* The real file object sits after ours, aligned for any type. */
#define RA_HEADER ((sizeof(ra_file) + 15) & ~(size_t)15)

static sqlite3_vfs ra_vfs;
static sqlite3_io_methods ra_methods[3]; /* by the real file's iVersion - 1 */
static const char *ra_name;              /* RA_VFS_NAME once registered */
static pthread_once_t ra_once = PTHREAD_ONCE_INIT;
static _Atomic unsigned long long total_hits, total_fills, total_passed;

static sqlite3_vfs *parent(void)
{
    return ra_vfs.pAppData;
}

/* Forgets every window and the file's size (the file or its lock may
 * have changed). */
static void drop_windows(ra_file *f)
{
    for (int i = 0; i < RA_WINDOWS; i++)
        f->win[i].len = 0;
    f->size = -1;
}

/* --- the file's methods: forwarded, the windows dropped where the file or
 *     its lock may change --- */

static int ra_close(sqlite3_file *file)
{
    ra_file *f = (ra_file *)file;
    int rc = f->real->pMethods->xClose(f->real);
    atomic_fetch_add_explicit(&total_hits, f->counts.hits, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_fills, f->counts.fills, memory_order_relaxed);
    atomic_fetch_add_explicit(&total_passed, f->counts.passed, memory_order_relaxed);
    f->counts = (retape_readahead_counts){0, 0, 0};
    free(f->buf);
    f->buf = NULL;
    drop_windows(f);
    return rc;
}

/* The window holding [off, off + amt): one already filled, else the least
 * recently used one refilled with the block around off (clamped to the
 * file's size); NULL when it cannot be had (the read then goes straight
 * through). */
static ra_window *window_for(ra_file *f, sqlite3_int64 off, int amt)
{
    ra_window *lru = &f->win[0];
    for (int i = 0; i < RA_WINDOWS; i++) {
        ra_window *w = &f->win[i];
        if (w->len && off >= w->start && (sqlite3_uint64)(off - w->start) + (size_t)amt <= w->len)
            return w;
        if (w->used < lru->used)
            lru = w;
    }
    if (amt < RA_MIN_FILL)
        return NULL;
    if (f->size < 0 && f->real->pMethods->xFileSize(f->real, &f->size) != SQLITE_OK) {
        f->size = -1;
        return NULL;
    }
    sqlite3_int64 start = off - off % RA_BLOCK;
    if (start >= f->size)
        return NULL;
    sqlite3_int64 avail = f->size - start;
    size_t want = avail < RA_BLOCK ? (size_t)avail : RA_BLOCK;
    if ((sqlite3_uint64)(off - start) + (size_t)amt > want)
        return NULL; /* past the end, or across blocks */
    if (!f->buf && !(f->buf = malloc((size_t)RA_WINDOWS * RA_BLOCK)))
        return NULL;
    lru->len = 0;
    if (f->real->pMethods->xRead(f->real, f->buf + (lru - f->win) * RA_BLOCK, (int)want, start) != SQLITE_OK)
        return NULL;
    lru->start = start;
    lru->len = want;
    f->counts.fills++;
    return lru;
}

static int ra_read(sqlite3_file *file, void *buf, int amt, sqlite3_int64 off)
{
    ra_file *f = (ra_file *)file;
    if (f->windowed && amt > 0 && amt <= RA_BLOCK / 2) {
        ra_window *w = window_for(f, off, amt);
        if (w) {
            f->counts.hits++;
            w->used = ++f->reads;
            memcpy(buf, f->buf + (w - f->win) * RA_BLOCK + (off - w->start), (size_t)amt);
            return SQLITE_OK;
        }
    }
    if (f->windowed)
        f->counts.passed++;
    return f->real->pMethods->xRead(f->real, buf, amt, off);
}

static int ra_write(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 off)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xWrite(f->real, buf, amt, off);
}

static int ra_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xTruncate(f->real, size);
}

static int ra_sync(sqlite3_file *file, int flags)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xSync(f->real, flags);
}

static int ra_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xFileSize(f->real, size);
}

static int ra_lock(sqlite3_file *file, int level)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xLock(f->real, level);
}

static int ra_unlock(sqlite3_file *file, int level)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xUnlock(f->real, level);
}

static int ra_check_reserved_lock(sqlite3_file *file, int *out)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int ra_file_control(sqlite3_file *file, int op, void *arg)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xFileControl(f->real, op, arg);
}

static int ra_sector_size(sqlite3_file *file)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int ra_device_characteristics(sqlite3_file *file)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int ra_shm_map(sqlite3_file *file, int page, int size, int extend, void volatile **out)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int ra_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void ra_shm_barrier(sqlite3_file *file)
{
    ra_file *f = (ra_file *)file;
    f->real->pMethods->xShmBarrier(f->real);
}

static int ra_shm_unmap(sqlite3_file *file, int delete_flag)
{
    ra_file *f = (ra_file *)file;
    drop_windows(f);
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int ra_fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int ra_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    ra_file *f = (ra_file *)file;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

/* --- the VFS: xOpen wraps, the rest is the default VFS's --- */

static int ra_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)vfs;
    ra_file *f = (ra_file *)file;
    memset(f, 0, sizeof *f);
    f->size = -1;
    f->real = (sqlite3_file *)(void *)((char *)file + RA_HEADER); /* RA_HEADER keeps its alignment */
    f->real->pMethods = NULL;
    int rc = parent()->xOpen(parent(), name, f->real, flags, out_flags);
    /* SQLite closes a file whose pMethods is set, even after a failed open */
    const sqlite3_io_methods *real = f->real->pMethods;
    if (real) {
        int version = real->iVersion < 1 ? 1 : real->iVersion > 3 ? 3 : real->iVersion;
        f->base.pMethods = &ra_methods[version - 1];
    }
    /* With "nolock" (a URI parameter) SQLite takes no lock, so nothing would
     * ever drop the windows: such a file reads as the default VFS reads it. */
    f->windowed = rc == SQLITE_OK && (flags & SQLITE_OPEN_MAIN_DB) && (flags & SQLITE_OPEN_READONLY) &&
                  !(name && sqlite3_uri_boolean(name, "nolock", 0));
    return rc;
}

static int ra_delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return parent()->xDelete(parent(), name, sync_dir);
}

static int ra_access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return parent()->xAccess(parent(), name, flags, out);
}

static int ra_full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return parent()->xFullPathname(parent(), name, n, out);
}

static void *ra_dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return parent()->xDlOpen(parent(), name);
}

static void ra_dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    parent()->xDlError(parent(), n, out);
}

static void (*ra_dl_sym(sqlite3_vfs *vfs, void *handle, const char *sym))(void)
{
    (void)vfs;
    return parent()->xDlSym(parent(), handle, sym);
}

static void ra_dl_close(sqlite3_vfs *vfs, void *handle)
{
    (void)vfs;
    parent()->xDlClose(parent(), handle);
}

static int ra_randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return parent()->xRandomness(parent(), n, out);
}

static int ra_sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return parent()->xSleep(parent(), us);
}

static int ra_current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return parent()->xCurrentTime(parent(), out);
}

static int ra_get_last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return parent()->xGetLastError ? parent()->xGetLastError(parent(), n, out) : 0;
}

static int ra_current_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    return parent()->xCurrentTimeInt64(parent(), out);
}

static int ra_set_system_call(sqlite3_vfs *vfs, const char *name, sqlite3_syscall_ptr fn)
{
    (void)vfs;
    return parent()->xSetSystemCall(parent(), name, fn);
}

static sqlite3_syscall_ptr ra_get_system_call(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return parent()->xGetSystemCall(parent(), name);
}

static const char *ra_next_system_call(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return parent()->xNextSystemCall(parent(), name);
}

/* Builds the VFS over the default one and registers it (once). */
static void register_vfs(void)
{
    if (sqlite3_initialize() != SQLITE_OK)
        return;
    sqlite3_vfs *base = sqlite3_vfs_find(NULL);
    if (!base || base->iVersion < 2)
        return; /* every VFS SQLite ships is version 3 */
    for (int v = 1; v <= 3; v++) {
        sqlite3_io_methods *m = &ra_methods[v - 1];
        *m = (sqlite3_io_methods){v, ra_close, ra_read, ra_write, ra_truncate, ra_sync, ra_file_size, ra_lock,
                                  ra_unlock, ra_check_reserved_lock, ra_file_control, ra_sector_size,
                                  ra_device_characteristics, NULL, NULL, NULL, NULL, NULL, NULL};
        if (v >= 2) {
            m->xShmMap = ra_shm_map;
            m->xShmLock = ra_shm_lock;
            m->xShmBarrier = ra_shm_barrier;
            m->xShmUnmap = ra_shm_unmap;
        }
        if (v >= 3) {
            m->xFetch = ra_fetch;
            m->xUnfetch = ra_unfetch;
        }
    }
    ra_vfs = (sqlite3_vfs){.iVersion = base->iVersion < 3 ? base->iVersion : 3,
                           .szOsFile = (int)RA_HEADER + base->szOsFile,
                           .mxPathname = base->mxPathname,
                           .zName = RA_VFS_NAME,
                           .pAppData = base,
                           .xOpen = ra_open,
                           .xDelete = ra_delete,
                           .xAccess = ra_access,
                           .xFullPathname = ra_full_pathname,
                           .xDlOpen = ra_dl_open,
                           .xDlError = ra_dl_error,
                           .xDlSym = ra_dl_sym,
                           .xDlClose = ra_dl_close,
                           .xRandomness = ra_randomness,
                           .xSleep = ra_sleep,
                           .xCurrentTime = ra_current_time,
                           .xGetLastError = ra_get_last_error,
                           .xCurrentTimeInt64 = ra_current_time_int64};
    if (ra_vfs.iVersion >= 3) {
        ra_vfs.xSetSystemCall = ra_set_system_call;
        ra_vfs.xGetSystemCall = ra_get_system_call;
        ra_vfs.xNextSystemCall = ra_next_system_call;
    }
    if (sqlite3_vfs_register(&ra_vfs, 0) == SQLITE_OK)
        ra_name = RA_VFS_NAME;
}

void retape_readahead_totals(retape_readahead_counts *out)
{
    out->hits = atomic_load_explicit(&total_hits, memory_order_relaxed);
    out->fills = atomic_load_explicit(&total_fills, memory_order_relaxed);
    out->passed = atomic_load_explicit(&total_passed, memory_order_relaxed);
}

const char *retape_readahead_vfs(void)
{
    pthread_once(&ra_once, register_vfs);
    return ra_name;
}
