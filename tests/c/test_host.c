/* test_host.c — the Lua host: protected calls, file:line + traceback, script
 * arguments, the embedded layer and the version check of an override. */
#include "check.h"
#include <string.h>
#include <stdlib.h>
#include "retape.h"

#include <sys/stat.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    char *err = NULL;
    retape_host *host = retape_host_new(NULL, &err);
    CHECK(host != NULL, "host starts with the embedded Lua layer");
    CHECK(retape_host_run_string(host, "assert(require('retape').version == '" RETAPE_VERSION "')", "=version", &err) == 0,
          "require 'retape' works and reports the core version");
    err = NULL;
    CHECK(retape_host_run_string(host, "local x = nil\nlocal y = x.field", "@rule.lua", &err) == -1, "a Lua error is caught");
    CHECK_CONTAINS(err, "rule.lua:2: attempt to index a nil value", "message carries file:line");
    CHECK_CONTAINS(err, "stack traceback:", "and a traceback");
    retape_free(err);
    err = NULL;
    CHECK(retape_host_run_string(host, "error({})", "@t.lua", &err) == -1, "a non-string error is caught");
    CHECK_CONTAINS(err, "error object is a table value", "and described");
    retape_free(err);
    err = NULL;
    CHECK(retape_host_run_string(host, "this is not lua", "@bad.lua", &err) == -1, "a syntax error is caught");
    CHECK_CONTAINS(err, "bad.lua:1:", "with its line");
    retape_free(err);

    char *dir = check_tempdir(), path[800];
    snprintf(path, sizeof path, "%s/s.lua", dir);
    write_file(path, "local a, b = ...\nassert(a == 'x' and b == 'y' and arg[0]:match('s.lua$') and arg[2] == 'y')\n");
    char x[] = "x", y[] = "y";
    char *argv[] = {path, x, y, NULL};
    err = NULL;
    CHECK(retape_host_run_file(host, path, 3, argv, &err) == 0, "script receives ... and arg");
    if (err)
        printf("# %s\n", err);
    retape_free(err);
    retape_host_free(host);

    /* An override directory whose version differs is refused at start. */
    char lua_dir[600], sub[700];
    snprintf(lua_dir, sizeof lua_dir, "%s/lua", dir);
    snprintf(sub, sizeof sub, "%s/retape", lua_dir);
    mkdir(lua_dir, 0700);
    mkdir(sub, 0700);
    snprintf(path, sizeof path, "%s/version.lua", sub);
    write_file(path, "return { version = '9.9.9', lua_api = 1 }\n");
    retape_host_options opts = {.lua_dir = lua_dir};
    err = NULL;
    CHECK(retape_host_new(&opts, &err) == NULL, "a Lua layer of another version is refused");
    CHECK_CONTAINS(err, "is version 9.9.9 (Lua API 1) but the core is " RETAPE_VERSION, "message names both versions");
    retape_free(err);

    /* A matching override is used in place of the embedded module. */
    write_file(path, "return { version = '" RETAPE_VERSION "', lua_api = 1, overridden = true }\n");
    err = NULL;
    host = retape_host_new(&opts, &err);
    CHECK(host != NULL, "a matching override loads");
    CHECK(host && retape_host_run_string(host, "assert(require('retape.version').overridden)", "=t", &err) == 0,
          "modules come from the override directory");
    retape_host_free(host);

    /* a --lua-dir path longer than any buffer: refused with a message, no overflow (ASan) */
    char *long_dir = malloc(6001);
    memset(long_dir, 'd', 6000);
    long_dir[0] = '/';
    long_dir[6000] = '\0';
    retape_host_options long_opts = {.lua_dir = long_dir};
    err = NULL;
    CHECK(retape_host_new(&long_opts, &err) == NULL, "a --lua-dir of 6000 characters is refused");
    CHECK_CONTAINS(err, "path too long", "the message says the path is too long");
    retape_free(err);
    free(long_dir);
    free(dir);
    return done_testing();
}
