/*
 * main.c — the `retape` command: creates the host and hands the command line
 * to the Lua layer (retape.cli).  Only `--lua-dir DIR` is read here, because
 * it decides which Lua layer is loaded.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, readlink */
#include "retape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#include <sys/auxv.h>
#include <unistd.h>
#endif

/* Removes "--lua-dir DIR" / "--lua-dir=DIR" from argv; returns DIR or NULL. */
static const char *take_lua_dir(int *argc, char **argv)
{
    const char *dir = NULL;
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        if (strcmp(argv[i], "--lua-dir") == 0 && i + 1 < *argc)
            dir = argv[++i];
        else if (strncmp(argv[i], "--lua-dir=", 10) == 0)
            dir = argv[i] + 10;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return dir;
}

/* AddressSanitizer builds (gcc says so with __SANITIZE_ADDRESS__, clang
 * with __has_feature) keep their own malloc: no restart there. */
#if defined(__SANITIZE_ADDRESS__)
#define RETAPE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RETAPE_ASAN 1
#endif
#endif

/* glibc reads glibc.malloc.hugetlb from 2.35 on. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) && !defined(RETAPE_ASAN)
#define RETAPE_HUGE_PAGES_RESTART 1
#endif

#ifdef RETAPE_HUGE_PAGES_RESTART
/* What the first start leaves in the environment for the second: "=" and
 * GLIBC_TUNABLES's value when it was set, "" when it was not. */
#define TUNABLES_BEFORE "RETAPE_TUNABLES_BEFORE"

/* Whether the kernel gives transparent huge pages only to memory that asks
 * for them (its "madvise" mode, Debian's default). */
static int huge_pages_on_request(void)
{
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f)
        return 0;
    size_t n = fread(mode, 1, sizeof mode - 1, f);
    fclose(f);
    mode[n] = '\0';
    return strstr(mode, "[madvise]") != NULL;
}

/* Whether the command (past --lua-dir) is one that walks receipts. */
static int walks_receipts(int argc, char **argv)
{
    static const char *const walkers[] = {"replay", "run", "sweep", "serve", "test", NULL};
    int at = 1;
    while (at < argc && (strcmp(argv[at], "--lua-dir") == 0 || strncmp(argv[at], "--lua-dir=", 10) == 0))
        at += argv[at][9] == '=' ? 1 : 2;
    for (int i = 0; at < argc && walkers[i]; i++)
        if (strcmp(argv[at], walkers[i]) == 0)
            return 1;
    return 0;
}

/* In the second start: puts GLIBC_TUNABLES back as it was (glibc has read
 * it by now), so that the processes this one starts get the user's
 * environment, and returns 1; 0 in a first start. */
static int restore_tunables(void)
{
    const char *before = getenv(TUNABLES_BEFORE);
    if (!before)
        return 0;
    if (*before == '=')
        setenv("GLIBC_TUNABLES", before + 1, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    unsetenv(TUNABLES_BEFORE);
    return 1;
}

/* Runs this program again, once, with glibc's malloc asking the kernel for
 * transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read only
 * at a process's start): the heap and RocksDB's memtables then fault in
 * 2 MB at a time instead of 4 KB (real days on one thread: 5.9k -> 2.5k
 * page faults, 0.94x the wall time with the second start counted; peak RSS
 * +1.5-2.5 MB).  The second start costs ~20 ms (loading the libraries
 * again), so only the commands that walk receipts take it, and it puts the
 * variable back as it was.  Not when the variable already names the
 * tunable (the user's choice: glibc.malloc.hugetlb=0 turns this off), when
 * the kernel gives huge pages to every mapping anyway or to none, under
 * valgrind (the new image would run outside it), in a setuid or
 * capability start (glibc drops the tunable there: it would loop), when
 * the dynamic loader was run as the program, or when the binary was
 * replaced on disk.  The new image is the binary's own path, so the
 * process keeps its name.  Returns only when it did not re-execute. */
static void restart_with_huge_pages(int argc, char **argv)
{
    if (restore_tunables() || !walks_receipts(argc, argv) || getauxval(AT_SECURE) || getauxval(AT_BASE) == 0)
        return;
    const char *tunables = getenv("GLIBC_TUNABLES");
    const char *preload = getenv("LD_PRELOAD");
    if ((tunables && strstr(tunables, "glibc.malloc.hugetlb")) || (preload && strstr(preload, "vgpreload")) ||
        !huge_pages_on_request())
        return;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1)
        return;
    exe[n] = '\0';
    static const char deleted[] = " (deleted)";
    if ((size_t)n >= sizeof deleted - 1 && strcmp(exe + n - (sizeof deleted - 1), deleted) == 0)
        return;
    static const char tunable[] = "glibc.malloc.hugetlb=1";
    size_t len = (tunables ? strlen(tunables) : 0) + sizeof tunable + 2;
    char *value = malloc(len), *before = malloc(len);
    if (value && before) {
        if (tunables && *tunables)
            snprintf(value, len, "%s:%s", tunables, tunable);
        else
            snprintf(value, len, "%s", tunable);
        snprintf(before, len, "%s%s", tunables ? "=" : "", tunables ? tunables : "");
        if (setenv(TUNABLES_BEFORE, before, 1) == 0 && setenv("GLIBC_TUNABLES", value, 1) == 0)
            execv(exe, argv);
        /* still here: run as we are, with the environment as it was */
        if (*before == '=')
            setenv("GLIBC_TUNABLES", before + 1, 1);
        else
            unsetenv("GLIBC_TUNABLES");
        unsetenv(TUNABLES_BEFORE);
    }
    free(value);
    free(before);
}
#endif

int main(int argc, char **argv)
{
#ifdef __GLIBC__
    /* Give freed memory back past 128 KB instead of glibc's self-raising
     * threshold, which keeps the high water of every bucket's payloads and
     * RocksDB's flushes: a 5-day replay of full-size bodies held 75 MB
     * against 64 MB for one day; now both ~57 MB, at the same CPU (make bench). */
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
#endif
#ifdef RETAPE_HUGE_PAGES_RESTART
    restart_with_huge_pages(argc, argv); /* before argv is rewritten */
#endif
    retape_host_options opts = {.lua_dir = take_lua_dir(&argc, argv)};
    char *err = NULL;
    retape_host *host = retape_host_new(&opts, &err);
    if (!host) {
        fprintf(stderr, "retape: %s\n", err ? err : "cannot start");
        retape_free(err);
        return 1;
    }
    int status = retape_host_run_cli(host, argc, argv, &err);
    if (err) {
        fflush(stdout);
        fprintf(stderr, "retape: %s\n", err);
        retape_free(err);
    }
    retape_host_free(host);
    return status;
}
