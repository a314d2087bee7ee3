/*
 * lua_time.c — Lua bridge of nytime.c: `require "retape.time"`.
 */
#include "lua_common.h"

#include <stdio.h>
#include <string.h>

/* Argument arg as an instant within +-8.64e15 ms, or raises naming it
 * (rule code reaches these functions). */
static int64_t check_ms(lua_State *L, int arg)
{
    lua_Integer ms = luaL_checkinteger(L, arg);
    luaL_argcheck(L, ms >= -8640000000000000LL && ms <= 8640000000000000LL, arg,
                  "timestamp out of range (+-8.64e15 ms)");
    return ms;
}

/* Argument arg as an int within [lo, hi] (default def), or raises. */
static int check_range(lua_State *L, int arg, lua_Integer def, lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = def == LUA_MININTEGER ? luaL_checkinteger(L, arg) : luaL_optinteger(L, arg, def);
    if (v < lo || v > hi)
        luaL_argerror(L, arg, lua_pushfstring(L, "out of range (%I..%I)", lo, hi));
    return (int)v;
}

/* The text forms of a civil time. */
typedef enum civil_form {
    CIVIL_DATE,      /* "2026-02-02" */
    CIVIL_MINUTE_ET, /* "2026-02-02 10:35 ET" */
    CIVIL_SECOND_ET, /* "2026-02-02 10:35:00 ET" */
    CIVIL_ISO_UTC,   /* "2026-02-02T15:35:00.000Z", as JavaScript's toISOString() */
} civil_form;

/* Pushes a civil time as text in one of its forms: the one formatter of
 * this module.  Raises only on a memory error. */
static void push_civil(lua_State *L, const retape_civil *c, civil_form form)
{
    char buf[64];
    switch (form) {
    case CIVIL_DATE:
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", c->year, c->month, c->day);
        break;
    case CIVIL_MINUTE_ET:
        snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d ET", c->year, c->month, c->day, c->hour, c->minute);
        break;
    case CIVIL_SECOND_ET:
        snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d ET", c->year, c->month, c->day, c->hour, c->minute,
                 c->second);
        break;
    case CIVIL_ISO_UTC:
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c->year, c->month, c->day, c->hour,
                 c->minute, c->second, c->ms);
        break;
    }
    lua_pushstring(L, buf);
}

/* time.to_ny(ms) -> {year, month, day, hour, min, sec, ms, wday (0=Sun), offset_min} */
static int l_to_ny(lua_State *L)
{
    retape_civil c;
    retape_time_to_ny(check_ms(L, 1), &c);
    lua_createtable(L, 0, 9);
    const struct { const char *k; int v; } f[] = {
        {"year", c.year}, {"month", c.month}, {"day", c.day}, {"hour", c.hour},
        {"min", c.minute}, {"sec", c.second}, {"ms", c.ms}, {"wday", c.weekday},
        {"offset_min", c.utc_offset_min},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        lua_pushinteger(L, f[i].v);
        lua_setfield(L, -2, f[i].k);
    }
    return 1;
}

/* time.from_ny(year, month, day [, hour, min, sec]) -> ms */
static int l_from_ny(lua_State *L)
{
    int year = check_range(L, 1, LUA_MININTEGER, -270000, 270000);
    int month = check_range(L, 2, LUA_MININTEGER, 1, 12);
    int day = check_range(L, 3, LUA_MININTEGER, 1, 31);
    int hour = check_range(L, 4, 0, -1000000, 1000000);
    int minute = check_range(L, 5, 0, -1000000, 1000000);
    int second = check_range(L, 6, 0, -1000000, 1000000);
    lua_pushinteger(L, retape_time_from_ny(year, month, day, hour, minute, second));
    return 1;
}

/* Parses argument 1 as "YYYY-MM-DD" or raises naming it. */
static void check_date(lua_State *L, int arg, int *y, int *m, int *d)
{
    const char *text = luaL_checkstring(L, arg);
    if (retape_time_parse_date(text, y, m, d) != 0)
        luaL_error(L, "bad date '%s' (expected YYYY-MM-DD)", text);
}

/* time.session("YYYY-MM-DD") -> open_ms, close_ms (09:30 and 16:00 ET) */
static int l_session(lua_State *L)
{
    int y, m, d;
    check_date(L, 1, &y, &m, &d);
    int64_t open, close;
    retape_time_session(y, m, d, &open, &close);
    lua_pushinteger(L, open);
    lua_pushinteger(L, close);
    return 2;
}

/* time.parse_date(text) -> year, month, day | nil, message */
static int l_parse_date(lua_State *L)
{
    int y, m, d;
    const char *text = luaL_checkstring(L, 1);
    if (retape_time_parse_date(text, &y, &m, &d) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad date '%s' (expected YYYY-MM-DD)", text);
        return 2;
    }
    lua_pushinteger(L, y);
    lua_pushinteger(L, m);
    lua_pushinteger(L, d);
    return 3;
}

/* time.parse_iso(text) -> ms | nil: "2026-02-02T20:53:00.000Z" (the form
 * of time.iso_utc and JavaScript's toISOString) as ms since the epoch; nil
 * for anything else, a non-string included (a trade field may be absent). */
static int l_parse_iso(lua_State *L)
{
    int64_t ms;
    size_t len;
    const char *text = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
    if (!text || strlen(text) != len || retape_time_parse_iso(text, &ms) != 0)
        lua_pushnil(L);
    else
        lua_pushinteger(L, ms);
    return 1;
}

/* time.days(from, to) -> { "YYYY-MM-DD", ... } every calendar day of the
 * inclusive range, and a parallel list of weekdays (0 = Sunday); nil,
 * message for a bad date or from after to.  The one calendar: Lua code never
 * steps days itself. */
static int l_days(lua_State *L)
{
    int y1, m1, d1, y2, m2, d2;
    const char *from = luaL_checkstring(L, 1), *to = luaL_checkstring(L, 2);
    const char *bad = retape_time_parse_date(from, &y1, &m1, &d1) != 0 ? from
                    : retape_time_parse_date(to, &y2, &m2, &d2) != 0 ? to : NULL;
    if (bad) {
        lua_pushnil(L);
        lua_pushfstring(L, "bad date '%s' (expected YYYY-MM-DD)", bad);
        return 2;
    }
    int64_t a = retape_time_day_number(y1, m1, d1), b = retape_time_day_number(y2, m2, d2);
    if (a > b) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s is after %s", from, to);
        return 2;
    }
    if (b - a > 100000)
        return luaL_error(L, "range %s..%s is too long", from, to);
    lua_createtable(L, (int)(b - a + 1), 0);
    lua_createtable(L, (int)(b - a + 1), 0);
    for (int64_t z = a; z <= b; z++) {
        retape_civil c = {0};
        int wd;
        retape_time_from_day_number(z, &c.year, &c.month, &c.day, &wd);
        push_civil(L, &c, CIVIL_DATE);
        lua_rawseti(L, -3, (lua_Integer)(z - a + 1));
        lua_pushinteger(L, wd);
        lua_rawseti(L, -2, (lua_Integer)(z - a + 1));
    }
    return 2;
}

/* time.ny_date(ms) -> "YYYY-MM-DD" (the New York calendar day) */
static int l_ny_date(lua_State *L)
{
    retape_civil c;
    retape_time_to_ny(check_ms(L, 1), &c);
    push_civil(L, &c, CIVIL_DATE);
    return 1;
}

/* time.utc_date(ms) -> "YYYY-MM-DD" (the UTC calendar day, as the original's day keys) */
static int l_utc_date(lua_State *L)
{
    retape_civil c;
    retape_time_to_utc(check_ms(L, 1), &c);
    push_civil(L, &c, CIVIL_DATE);
    return 1;
}

/* time.format_ny(ms [, with_seconds]) -> "YYYY-MM-DD HH:MM[:SS] ET" */
static int l_format_ny(lua_State *L)
{
    retape_civil c;
    retape_time_to_ny(check_ms(L, 1), &c);
    push_civil(L, &c, lua_toboolean(L, 2) ? CIVIL_SECOND_ET : CIVIL_MINUTE_ET);
    return 1;
}

/* time.bucket_5m(ms) -> ms */
static int l_bucket_5m(lua_State *L)
{
    lua_pushinteger(L, retape_time_bucket_5m(check_ms(L, 1)));
    return 1;
}

/* time.iso_utc(ms) -> "YYYY-MM-DDTHH:MM:SS.mmmZ", as JavaScript's toISOString() */
static int l_iso_utc(lua_State *L)
{
    retape_civil c;
    retape_time_to_utc(check_ms(L, 1), &c);
    push_civil(L, &c, CIVIL_ISO_UTC);
    return 1;
}

int luaopen_retape_time(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"to_ny", l_to_ny}, {"from_ny", l_from_ny}, {"session", l_session},
        {"parse_date", l_parse_date}, {"ny_date", l_ny_date}, {"format_ny", l_format_ny},
        {"bucket_5m", l_bucket_5m}, {"iso_utc", l_iso_utc},
        {"utc_date", l_utc_date}, {"days", l_days}, {"parse_iso", l_parse_iso}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_pushinteger(L, RETAPE_BUCKET_MS); /* the one bucket length of the engine */
    lua_setfield(L, -2, "BUCKET_MS");
    lua_pushinteger(L, (lua_Integer)RETAPE_TS_MIN); /* plausible receipt times, [TS_MIN, TS_MAX) */
    lua_setfield(L, -2, "TS_MIN");
    lua_pushinteger(L, (lua_Integer)RETAPE_TS_MAX);
    lua_setfield(L, -2, "TS_MAX");
    return 1;
}
