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
#include <fcntl.h>
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

/* The value of NAME in the environment envp, or NULL (getenv does not work
 * yet where the restart runs: libc sets environ up after it). */
static const char *env_value(char **envp, const char *name)
{
    size_t len = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
            return *e + len + 1;
    return NULL;
}

/* out = a b c, when it fits in cap bytes; returns whether it did (no
 * stdio where the restart runs). */
static int join(char *out, size_t cap, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    if (la + lb + lc >= cap)
        return 0;
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    memcpy(out + la + lb, c, lc + 1);
    return 1;
}

/* Whether the kernel gives transparent huge pages only to memory that asks
 * for them (its "madvise" mode, Debian's default).  Plain system calls:
 * stdio is not set up yet where the restart runs. */
static int huge_pages_on_request(void)
{
    char mode[128];
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, mode, sizeof mode - 1);
    close(fd);
    if (n <= 0)
        return 0;
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

/* Runs this program again, once, with glibc's malloc asking the kernel for
 * transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, read only
 * at a process's start): the heap and RocksDB's memtables then fault in
 * 2 MB at a time instead of 4 KB (real days on one thread: 5.9k -> 2.5k
 * page faults, 0.92x the wall time; peak RSS +1.5-2.5 MB).  Only the
 * commands that walk receipts take it; the second start puts the variable
 * back as it was (restore_tunables, from main).
 *
 * It runs from the executable's preinit array: the dynamic loader calls it
 * after relocating and before any library's initialisers (RocksDB's,
 * gnutls', simdjson's), so the first image stops before paying for them (a
 * walker's start 0.87-0.89x of a restart from main).  Nothing here may
 * need libc's set-up (no stdio, malloc, getenv or setenv): the new
 * environment is built in static storage.
 *
 * Not when the variable already names the tunable (the user's choice:
 * glibc.malloc.hugetlb=0 turns this off), when the kernel gives huge pages
 * to every mapping anyway or to none, under valgrind (the new image would
 * run outside it), in a setuid or capability start (glibc drops the
 * tunable there: it would loop), when the dynamic loader was run as the
 * program, or when the binary was replaced on disk.  The new image is the
 * binary's own path, so the process keeps its name.  Returns only when it
 * did not re-execute. */
static void restart_with_huge_pages(int argc, char **argv, char **envp)
{
    if (env_value(envp, TUNABLES_BEFORE) || !walks_receipts(argc, argv) || getauxval(AT_SECURE) ||
        getauxval(AT_BASE) == 0)
        return;
    const char *tunables = env_value(envp, "GLIBC_TUNABLES");
    const char *preload = env_value(envp, "LD_PRELOAD");
    if ((tunables && strstr(tunables, "glibc.malloc.hugetlb")) || (preload && strstr(preload, "vgpreload")) ||
        !huge_pages_on_request())
        return;
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0 || (size_t)n >= sizeof exe - 1)
        return;
    exe[n] = '\0';
    static const char deleted[] = " (deleted)";
    if ((size_t)n >= sizeof deleted - 1 && strcmp(exe + n - (sizeof deleted - 1), deleted) == 0)
        return;
    /* the new environment: the same, GLIBC_TUNABLES with the tunable added,
     * and the note of what it was */
    static char value[8192], before[8192];
    static char *env[4096];
    int fits = 1;
    if (tunables && *tunables)
        fits &= join(value, sizeof value, "GLIBC_TUNABLES=", tunables, ":glibc.malloc.hugetlb=1");
    else
        fits &= join(value, sizeof value, "GLIBC_TUNABLES=", "", "glibc.malloc.hugetlb=1");
    fits &= join(before, sizeof before, TUNABLES_BEFORE "=", tunables ? "=" : "", tunables ? tunables : "");
    if (!fits)
        return;
    size_t k = 0;
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "GLIBC_TUNABLES=", 15) == 0)
            continue;
        if (k + 3 >= sizeof env / sizeof *env)
            return;
        env[k++] = *e;
    }
    env[k++] = value;
    env[k++] = before;
    env[k] = NULL;
    execve(exe, argv, env); /* returns only on failure: run as we are */
}

/* Called by the dynamic loader from the preinit array, with the start's
 * arguments and environment (glibc passes them). */
static void restart_before_libraries(int argc, char **argv, char **envp)
{
    restart_with_huge_pages(argc, argv, envp);
}

__attribute__((section(".preinit_array"), used)) static void (*const restart_hook)(int, char **, char **) =
    restart_before_libraries;

/* In the second start: puts GLIBC_TUNABLES back as it was (glibc has read
 * it by now), so that the processes this one starts get the user's
 * environment. */
static void restore_tunables(void)
{
    const char *before = getenv(TUNABLES_BEFORE);
    if (!before)
        return;
    if (*before == '=')
        setenv("GLIBC_TUNABLES", before + 1, 1);
    else
        unsetenv("GLIBC_TUNABLES");
    unsetenv(TUNABLES_BEFORE);
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
    restore_tunables();
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
