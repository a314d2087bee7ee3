/* test_time.c — New York wall time across DST changes, sessions, buckets. */
#include "check.h"
#include "retape.h"

static void check_session(const char *date, int64_t open_expected, int64_t close_expected)
{
    int y, m, d;
    CHECK(retape_time_parse_date(date, &y, &m, &d) == 0, "parse %s", date);
    int64_t open, close;
    retape_time_session(y, m, d, &open, &close);
    CHECK(open == open_expected, "%s session opens at %lld (got %lld)", date, (long long)open_expected, (long long)open);
    CHECK(close == close_expected, "%s session closes at %lld (got %lld)", date, (long long)close_expected, (long long)close);
    CHECK((close - open) / 300000 + 1 == 79, "%s has 79 buckets", date);
}

int main(void)
{
    /* Winter (EST, UTC-5): 2026-02-02 09:30 ET = 14:30 UTC, as the parity data. */
    check_session("2026-02-02", 1770042600000LL, 1770066000000LL);
    /* Friday before the 2026 spring change (EST) and Monday after (EDT). */
    check_session("2026-03-06", 1772807400000LL, 1772830800000LL);
    check_session("2026-03-09", 1773063000000LL, 1773086400000LL);
    /* Fall back on 2026-11-01: Friday before EDT, Monday after EST. */
    check_session("2026-10-30", 1793367000000LL, 1793390400000LL);
    check_session("2026-11-02", 1793629800000LL, 1793653200000LL);
    /* 2006 used the old rule: 2006-04-03 is EDT (first Sunday of April = 04-02). */
    check_session("2006-04-03", 1144071000000LL, 1144094400000LL);

    retape_civil c;
    retape_time_to_ny(1770388200000LL, &c); /* payload A: 2026-02-06 09:30 ET, a Friday */
    CHECK(c.year == 2026 && c.month == 2 && c.day == 6 && c.hour == 9 && c.minute == 30, "to_ny of payload A");
    CHECK(c.weekday == 5 && c.utc_offset_min == -300, "Friday, EST");
    /* The instant of the spring change: 2026-03-08 07:00 UTC = 03:00 EDT. */
    retape_time_to_ny(1772953200000LL, &c);
    CHECK(c.hour == 3 && c.utc_offset_min == -240, "03:00 EDT right at the change");
    retape_time_to_ny(1772953200000LL - 1, &c);
    CHECK(c.hour == 1 && c.minute == 59 && c.utc_offset_min == -300, "01:59 EST just before");
    /* A gap time reads with the old offset; an ambiguous one is the EDT instance. */
    CHECK(retape_time_from_ny(2026, 3, 8, 2, 30, 0) == 1772955000000LL, "02:30 in the gap = 07:30 UTC");
    CHECK(retape_time_from_ny(2026, 11, 1, 1, 30, 0) == 1793511000000LL, "01:30 at fall-back = first (EDT) occurrence");
    /* The New York day differs from the UTC day in the evening. */
    retape_time_to_ny(1770080400000LL, &c); /* 2026-02-03 01:00 UTC */
    CHECK(c.day == 2 && c.hour == 20, "01:00 UTC is 20:00 ET the day before");
    retape_time_to_utc(1770080400000LL, &c);
    CHECK(c.day == 3 && c.hour == 1 && c.utc_offset_min == 0, "UTC civil time");

    int y, m, d;
    CHECK(retape_time_parse_date("2026-02-30", &y, &m, &d) != 0, "2026-02-30 rejected");
    CHECK(retape_time_parse_date("2026-2-3", &y, &m, &d) != 0, "short form rejected");
    CHECK(retape_time_parse_date("2024-02-29", &y, &m, &d) == 0 && d == 29, "leap day accepted");
    CHECK(retape_time_parse_date("", &y, &m, &d) != 0 && retape_time_parse_date(NULL, &y, &m, &d) != 0, "empty and NULL rejected");

    /* ISO time stamps of trades (toISOString's form): the one parser */
    int64_t iso;
    CHECK(retape_time_parse_iso("2026-02-02T14:30:00.000Z", &iso) == 0 && iso == 1770042600000LL, "ISO to ms");
    CHECK(retape_time_parse_iso("2026-02-02T14:30:07.5Z", &iso) == 0 && iso == 1770042607500LL, "ISO .5 is 500 ms");
    CHECK(retape_time_parse_iso("2024-02-29T00:00:00Z", &iso) == 0 && iso == 1709164800000LL, "ISO without ms, leap day");
    CHECK(retape_time_parse_iso("2026-02-02T14:30:00.000", &iso) != 0, "ISO without Z rejected");
    CHECK(retape_time_parse_iso("2026-13-02T14:30:00Z", &iso) != 0, "ISO month 13 rejected");
    CHECK(retape_time_parse_iso("2026-02-02 14:30:00Z", &iso) != 0, "ISO with a space rejected");
    CHECK(retape_time_parse_iso("", &iso) != 0, "empty ISO rejected");

    CHECK(retape_time_bucket_5m(1770042899999LL) == 1770042600000LL, "bucket floors");
    CHECK(retape_time_bucket_5m(-1) == -300000, "bucket floors negative times");

    /* extreme instants are clamped, never overflow (UBSan in the sanitizer build) */
    CHECK(retape_time_bucket_5m(INT64_MIN) == -8640000000000000LL, "bucket of INT64_MIN is clamped");
    CHECK(retape_time_bucket_5m(INT64_MAX) == 8640000000000000LL, "bucket of INT64_MAX is clamped");
    retape_time_to_ny(INT64_MAX, &c);
    CHECK(c.year == 275760 && c.month >= 1 && c.month <= 12, "to_ny(INT64_MAX) is the last representable day");
    retape_time_to_utc(INT64_MIN, &c);
    CHECK(c.year < -270000, "to_utc(INT64_MIN) is the first representable day");
    CHECK(retape_time_from_ny(2147483647, 2147483647, 2147483647, 2147483647, 2147483647, 2147483647) > 0,
          "from_ny with INT_MAX fields does not overflow");
    return done_testing();
}
