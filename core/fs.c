/*
 * fs.c — the few file-system operations the Lua layer needs (temporary
 * directories, listing a directory, removing a tree), so that no Lua code
 * shells out to mktemp, find or rm -rf.
 */
#define _XOPEN_SOURCE 700
#include "retape.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *retape_fs_tempdir(const char *parent, const char *prefix, char **errptr)
{
    const char *tmp = parent ? parent : getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    size_t n = strlen(tmp) + strlen(prefix) + 16;
    char *path = malloc(n);
    if (!path) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    snprintf(path, n, "%s/%s.XXXXXX", tmp, prefix);
    if (!mkdtemp(path)) {
        set_error(errptr, "%s: %s", path, strerror(errno));
        free(path);
        return NULL;
    }
    return path;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int retape_fs_list(const char *dir, char ***names, size_t *count, char **errptr)
{
    DIR *d = opendir(dir);
    if (!d)
        return set_error(errptr, "%s: %s", dir, strerror(errno));
    char **list = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **grown = realloc(list, ncap * sizeof *list);
            if (!grown)
                goto oom;
            list = grown;
            cap = ncap;
        }
        if (!(list[n] = dup_string(e->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(list, n, sizeof *list, by_name);
    *names = list;
    *count = n;
    return 0;
oom:
    closedir(d);
    retape_fs_free_list(list, n);
    return set_error(errptr, "out of memory");
}

void retape_fs_free_list(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

int retape_fs_remove_tree(const char *path, char **errptr)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : set_error(errptr, "%s: %s", path, strerror(errno));
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return set_error(errptr, "%s: %s", path, strerror(errno));
    return 0;
}

int retape_fs_mkdirs(const char *path, char **errptr)
{
    char *p = dup_string(path);
    if (!p)
        return set_error(errptr, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            set_error(errptr, "%s: %s", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST)
        rc = set_error(errptr, "%s: %s", p, strerror(errno));
    free(p);
    return rc;
}

int retape_fs_kind(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    return S_ISDIR(st.st_mode) ? 2 : 1;
}

int retape_fs_stat_of(const char *path, retape_fs_stat *out, char **errptr)
{
    struct stat st;
    memset(out, 0, sizeof *out);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        return set_error(errptr, "%s: %s", path, strerror(errno));
    }
    out->dev = (int64_t)st.st_dev;
    out->ino = (int64_t)st.st_ino;
    out->size = (int64_t)st.st_size;
    out->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    out->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return 0;
}

char *retape_fs_absolute(const char *path, char **errptr)
{
    char *real = realpath(path, NULL); /* malloc'd: retape_free is free */
    if (real)
        return real;
    if (path[0] == '/') {
        char *copy = dup_string(path);
        if (!copy)
            set_error(errptr, "out of memory");
        return copy;
    }
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) {
        set_error(errptr, "current directory: %s", strerror(errno));
        return NULL;
    }
    size_t n = strlen(cwd) + strlen(path) + 2;
    char *out = malloc(n);
    if (!out) {
        set_error(errptr, "out of memory");
        return NULL;
    }
    snprintf(out, n, "%s/%s", cwd, path);
    return out;
}
