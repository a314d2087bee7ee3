/*
 * fuzz_target.c — libFuzzer entry for the input paths of retape,
 * built once per kind with -DFUZZ_KIND="jsonl" | "sql" | "payload" | "simd" | "gz" | "sqlcut" by
 * `make fuzz`: the JSON-lines reader (import of JSON lines), the SQL-dump
 * reader (import of a dump) and the payload decoder (the source cursor's
 * decoding of payload_json, then the state encoder).  Every input goes
 * through tests/fuzz/harness.lua, which raises when an invariant breaks;
 * this file turns that into a crash libFuzzer reports.  The host (and its
 * Lua state) is made once; each input runs in a protected call.
 */
#define _POSIX_C_SOURCE 200809L
#include "retape.h"

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FUZZ_KIND
#define FUZZ_KIND "jsonl"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static retape_host *host;
static const char *work_dir;

/* atexit: removes the harness's files and the work directory. */
static void remove_work_dir(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/input", work_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/payload.db", work_dir);
    unlink(path);
    rmdir(work_dir);
}

/* Creates the host and the harness once: H = harness(workdir) in a global.
 * Aborts (a finding) if the set-up itself fails. */
static lua_State *setup(void)
{
    if (host)
        return retape_host_lua(host);
    char *err = NULL;
    host = retape_host_new(NULL, &err);
    if (!host) {
        fprintf(stderr, "fuzz: cannot create the host: %s\n", err ? err : "?");
        abort();
    }
    /* tmpfs when there is one: every input creates an SQLite file */
    static char shm_dir[] = "/dev/shm/retape-fuzz.XXXXXX", tmp_dir[] = "/tmp/retape-fuzz.XXXXXX";
    const char *dir = mkdtemp(shm_dir);
    if (!dir)
        dir = mkdtemp(tmp_dir);
    if (!dir)
        abort();
    work_dir = dir;
    atexit(remove_work_dir);
    lua_State *L = retape_host_lua(host);
    const char *code = "FUZZ_H = dofile('tests/fuzz/harness.lua')(...)";
    if (luaL_loadstring(L, code) != LUA_OK)
        abort();
    lua_pushstring(L, dir);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz: harness: %s\n", lua_tostring(L, -1));
        abort();
    }
    return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = setup();
    int top = lua_gettop(L);
    lua_getglobal(L, "FUZZ_H");
    lua_getfield(L, -1, FUZZ_KIND);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz %s: invariant broken: %s\n", FUZZ_KIND, lua_tostring(L, -1));
        abort();
    }
    lua_settop(L, top);
    lua_gc(L, LUA_GCCOLLECT, 0);
    return 0;
}
