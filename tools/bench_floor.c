/*
 * bench_floor.c — the floors `make bench` compares the engine with, measured
 * on the same rows in the same run:
 *
 *   bench_floor scan DB     one ordered SQLite scan of every receipt (the
 *                           columns the engine reads), nothing else
 *   bench_floor decode DB   the same scan plus lua-cjson decoding each
 *                           payload into a Lua table (no engine, no rules)
 *   bench_floor select DB FIELD...   the same scan plus retape.decode building
 *                           only the declared fields (the replay's parser)
 *   bench_floor tokenize DB the same scan plus retape.decode's tokenizer
 *                           building every field ("*"): the hand-written
 *                           parser against lua-cjson on the same work
 *
 * Prints "rows=N bytes=B peak_rss_kb=K cpu_ms=C" (C: user + system CPU time).  Exit 1 on any error.
 */
#include "lua_common.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int luaopen_cjson(lua_State *L);

static const char *SCAN_SQL =
    "SELECT receipt_id, ticker, ts, bucket_5m, script_version, payload_json FROM ingest_receipts"
    " ORDER BY bucket_5m, ts, receipt_id";

int main(int argc, char **argv)
{
    int selective = argc >= 3 && (strcmp(argv[1], "select") == 0 || strcmp(argv[1], "tokenize") == 0);
    if (argc < 3 || (!selective && (argc != 3 || (strcmp(argv[1], "scan") && strcmp(argv[1], "decode"))))) {
        fprintf(stderr, "usage: bench_floor scan|decode|tokenize DB | bench_floor select DB FIELD...\n");
        return 2;
    }
    int decode = strcmp(argv[1], "decode") == 0;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(argv[2], &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, SCAN_SQL, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "bench_floor: %s: %s\n", argv[2], sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    lua_State *L = NULL;
    if (decode) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "cjson", luaopen_cjson, 0);
        lua_getfield(L, -1, "decode");
        lua_remove(L, -2); /* decode function stays at index 1 */
    } else if (selective) {
        L = luaL_newstate();
        luaL_openlibs(L);
        luaL_requiref(L, "retape.decode", luaopen_retape_decode, 0);
        lua_getfield(L, -1, "compile");
        lua_remove(L, -2);
        lua_createtable(L, argc, 0);
        if (strcmp(argv[1], "tokenize") == 0) {
            lua_pushliteral(L, "*");
            lua_rawseti(L, -2, 1);
        }
        for (int i = 3; i < argc; i++) {
            lua_pushstring(L, argv[i]);
            lua_rawseti(L, -2, i - 2);
        }
        if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
            fprintf(stderr, "bench_floor: %s\n", lua_tostring(L, -1));
            return 1;
        }
        /* the field set stays at index 1 */
    }
    long long rows = 0, bytes = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *payload = (const char *)sqlite3_column_text(st, 5);
        int len = sqlite3_column_bytes(st, 5);
        bytes += len;
        rows++;
        if (decode && payload) {
            lua_pushvalue(L, 1);
            lua_pushlstring(L, payload, (size_t)len);
            if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
                fprintf(stderr, "bench_floor: row %lld: %s\n", rows, lua_tostring(L, -1));
                return 1;
            }
            lua_pop(L, 1);
        } else if (selective && payload) {
            lua_pushlstring(L, payload, (size_t)len);
            if (!retape_decode_payload(L, 1, -1)) {
                fprintf(stderr, "bench_floor: row %lld: %s\n", rows, lua_tostring(L, -1));
                return 1;
            }
            lua_pop(L, 2);
        }
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "bench_floor: %s\n", sqlite3_errmsg(db));
        return 1;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    if (L)
        lua_close(L);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000L + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000L;
    printf("rows=%lld bytes=%lld peak_rss_kb=%ld cpu_ms=%ld\n", rows, bytes, ru.ru_maxrss, cpu_ms);
    return 0;
}
