/*
 * nytime.c — America/New_York wall time, computed from the US DST rules.
 *
 * The replay must give the same trading-day window on every machine, so it
 * cannot depend on the TZ variable or on the tzdata package being installed.
 * The rules are short enough to compile in; dates use Howard Hinnant's
 * days-from-civil algorithms (proleptic Gregorian, any year).
 */
#define _POSIX_C_SOURCE 200809L
#include "retape.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define MS_PER_MIN 60000LL
#define MS_PER_DAY 86400000LL
#define EST_OFFSET_MIN (-300)
#define EDT_OFFSET_MIN (-240)

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* 0 = Sunday for a day count since the epoch (1970-01-01 was a Thursday). */
static int weekday_of_days(int64_t days)
{
    int64_t w = (days + 4) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* Day number of the n-th (1-based) given weekday of a month; n = -1 = last. */
static int64_t nth_weekday(int year, int month, int weekday, int n)
{
    if (n > 0) {
        int64_t first = days_from_civil(year, month, 1);
        int delta = (weekday - weekday_of_days(first) + 7) % 7;
        return first + delta + 7 * (n - 1);
    }
    int ny = month == 12 ? year + 1 : year, nm = month == 12 ? 1 : month + 1;
    int64_t last = days_from_civil(ny, nm, 1) - 1;
    int delta = (weekday_of_days(last) - weekday + 7) % 7;
    return last - delta;
}

/* The UTC instants at which daylight time starts and ends in a year. */
static void dst_bounds(int year, int64_t *start_ms, int64_t *end_ms)
{
    int64_t start_day, end_day;
    if (year >= 2007) {
        start_day = nth_weekday(year, 3, 0, 2);  /* second Sunday of March */
        end_day = nth_weekday(year, 11, 0, 1);   /* first Sunday of November */
    } else if (year >= 1987) {
        start_day = nth_weekday(year, 4, 0, 1);  /* first Sunday of April */
        end_day = nth_weekday(year, 10, 0, -1);  /* last Sunday of October */
    } else {
        start_day = nth_weekday(year, 4, 0, -1); /* last Sunday of April */
        end_day = nth_weekday(year, 10, 0, -1);
    }
    /* 02:00 EST = 07:00 UTC; 02:00 EDT = 06:00 UTC. */
    *start_ms = start_day * MS_PER_DAY + 7 * 60 * MS_PER_MIN;
    *end_ms = end_day * MS_PER_DAY + 6 * 60 * MS_PER_MIN;
}

/* Instants beyond +-8.64e15 ms (the ECMAScript range, about +-275,760
 * years) are clamped to it, so no arithmetic below can overflow. */
#define TIME_LIMIT_MS INT64_C(8640000000000000)
/* Years accepted by retape_time_from_ny (clamped likewise). */
#define YEAR_LIMIT 270000

static int64_t clamp_ms(int64_t ms)
{
    return ms > TIME_LIMIT_MS ? TIME_LIMIT_MS : ms < -TIME_LIMIT_MS ? -TIME_LIMIT_MS : ms;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* UTC offset in minutes of New York at an instant. */
static int offset_at(int64_t utc_ms)
{
    int y, m, d;
    civil_from_days(floor_div(utc_ms, MS_PER_DAY), &y, &m, &d);
    int64_t start, end;
    dst_bounds(y, &start, &end);
    return (utc_ms >= start && utc_ms < end) ? EDT_OFFSET_MIN : EST_OFFSET_MIN;
}

/* Fills a civil time from an instant shifted by a UTC offset in minutes. */
static void fill_civil(int64_t utc_ms, int offset_min, retape_civil *out)
{
    int64_t local = utc_ms + offset_min * MS_PER_MIN;
    int64_t days = floor_div(local, MS_PER_DAY);
    int64_t in_day = local - days * MS_PER_DAY;
    civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int)(in_day / 3600000);
    out->minute = (int)(in_day / 60000 % 60);
    out->second = (int)(in_day / 1000 % 60);
    out->ms = (int)(in_day % 1000);
    out->weekday = weekday_of_days(days);
    out->utc_offset_min = offset_min;
}

void retape_time_to_ny(int64_t utc_ms, retape_civil *out)
{
    utc_ms = clamp_ms(utc_ms);
    fill_civil(utc_ms, offset_at(utc_ms), out);
}

void retape_time_to_utc(int64_t utc_ms, retape_civil *out)
{
    fill_civil(clamp_ms(utc_ms), 0, out);
}

int64_t retape_time_from_ny(int year, int month, int day, int hour, int minute, int second)
{
    year = year > YEAR_LIMIT ? YEAR_LIMIT : year < -YEAR_LIMIT ? -YEAR_LIMIT : year;
    month = month < 1 ? 1 : month > 12 ? 12 : month;
    day = day < -1000000 ? -1000000 : day > 1000000 ? 1000000 : day;
    int64_t local = days_from_civil(year, month, day) * MS_PER_DAY
                  + ((int64_t)hour * 3600 + (int64_t)minute * 60 + second) * 1000;
    /* Try the daylight offset first (resolves the fall-back ambiguity to the
     * first occurrence), then standard time. */
    int64_t as_edt = local - EDT_OFFSET_MIN * MS_PER_MIN;
    if (offset_at(as_edt) == EDT_OFFSET_MIN)
        return as_edt;
    int64_t as_est = local - EST_OFFSET_MIN * MS_PER_MIN;
    return as_est; /* also the reading of a spring-forward gap time */
}

int retape_time_parse_date(const char *text, int *year, int *month, int *day)
{
    if (!text || strlen(text) != 10 || text[4] != '-' || text[7] != '-')
        return -1;
    int y = 0, m = 0, d = 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (text[i] < '0' || text[i] > '9')
            return -1;
    }
    if (sscanf(text, "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1)
        return -1;
    /* Round-trip through the day count rejects 2026-02-30 and the like. */
    int ry, rm, rd;
    civil_from_days(days_from_civil(y, m, d), &ry, &rm, &rd);
    if (ry != y || rm != m || rd != d)
        return -1;
    *year = y, *month = m, *day = d;
    return 0;
}

/* Reads 1..max digits at *p as a number (advancing *p); -1 if none. */
static int64_t read_digits(const char **p, int max)
{
    int64_t v = 0;
    int n = 0;
    while (n < max && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++, n++;
    }
    return n > 0 ? v : -1;
}

int retape_time_parse_iso(const char *text, int64_t *ms)
{
    static const char seps[] = "--T::"; /* after year, month, day, hour, minute */
    int64_t f[6];
    const char *p = text;
    for (int i = 0; i < 6; i++) {
        if ((f[i] = read_digits(&p, i == 0 ? 6 : 2)) < 0)
            return -1;
        if (i < 5 && *p++ != seps[i])
            return -1;
    }
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10; /* ".5" is 500 ms */
    }
    if (p[0] != 'Z' || p[1] != '\0')
        return -1;
    if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
        return -1;
    *ms = ((days_from_civil(f[0], (int)f[1], (int)f[2]) * 24 + f[3]) * 60 + f[4]) * MS_PER_MIN + f[5] * 1000 + frac;
    return 0;
}

void retape_time_session(int year, int month, int day, int64_t *open_ms, int64_t *close_ms)
{
    *open_ms = retape_time_from_ny(year, month, day, 9, 30, 0);
    *close_ms = retape_time_from_ny(year, month, day, 16, 0, 0);
}

int64_t retape_time_bucket_5m(int64_t ts_ms)
{
    return floor_div(clamp_ms(ts_ms), RETAPE_BUCKET_MS) * RETAPE_BUCKET_MS;
}

int64_t retape_time_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t retape_time_day_number(int year, int month, int day)
{
    return days_from_civil(year, month, day);
}

void retape_time_from_day_number(int64_t days, int *year, int *month, int *day, int *weekday)
{
    civil_from_days(days, year, month, day);
    if (weekday)
        *weekday = weekday_of_days(days);
}
