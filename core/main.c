/*
 * main.c — the `retape` command: creates the host and hands the command line
 * to the Lua layer (retape.cli).  Only `--lua-dir DIR` is read here, because
 * it decides which Lua layer is loaded.
 */
#include "retape.h"

#include <stdio.h>
#include <string.h>

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

int main(int argc, char **argv)
{
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
