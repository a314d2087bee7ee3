/*
 * main.c — the `retape` command: creates the host and hands the command line
 * to the Lua layer (retape.cli).  Only `--lua-dir DIR` is read here, because
 * it decides which Lua layer is loaded.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, strdup */
#include "retape.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
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

#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
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

/* Runs this program again, once, with glibc's malloc asking the kernel for
 * transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read only
 * at a process's start): the heap and RocksDB's memtables then fault in
 * 2 MB at a time instead of 4 KB (real days on one thread: 5.9k -> 2.5k
 * page faults, 0.94x the wall time with the second start counted; a day of
 * full-size bodies on two threads 0.94x, peak RSS +1.6 MB).  The second
 * start costs ~20 ms (loading the libraries again), so only the commands
 * that walk receipts take it.  Not when the variable already names the
 * tunable (the second start, or the user's own choice:
 * glibc.malloc.hugetlb=0 turns this off), when the kernel gives huge pages
 * to every mapping anyway or to none, or under valgrind (the new image
 * would run outside it).  Returns only when it did not re-execute. */
static void restart_with_huge_pages(int argc, char **argv)
{
    static const char *const walkers[] = {"replay", "run", "sweep", "serve", "test", NULL};
    int at = 1; /* the command word, past --lua-dir */
    while (at < argc && (strcmp(argv[at], "--lua-dir") == 0 || strncmp(argv[at], "--lua-dir=", 10) == 0))
        at += argv[at][9] == '=' ? 1 : 2;
    int walks = 0;
    for (int i = 0; at < argc && walkers[i]; i++)
        walks |= strcmp(argv[at], walkers[i]) == 0;
    if (!walks)
        return;
    const char *tunables = getenv("GLIBC_TUNABLES");
    const char *preload = getenv("LD_PRELOAD");
    if ((tunables && strstr(tunables, "glibc.malloc.hugetlb")) || (preload && strstr(preload, "vgpreload")) ||
        !huge_pages_on_request())
        return;
    static const char tunable[] = "glibc.malloc.hugetlb=1";
    char *value = NULL;
    if (tunables && *tunables) {
        size_t len = strlen(tunables) + sizeof tunable + 1;
        value = malloc(len);
        if (!value)
            return;
        snprintf(value, len, "%s:%s", tunables, tunable);
    }
    char *saved = tunables ? strdup(tunables) : NULL;
    if (setenv("GLIBC_TUNABLES", value ? value : tunable, 1) == 0)
        execv("/proc/self/exe", argv);
    /* still here: run as we are, with the environment as it was */
    if (saved)
        setenv("GLIBC_TUNABLES", saved, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    free(saved);
    free(value);
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
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
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
