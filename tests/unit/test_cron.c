/* test_cron.c - cron expressions: fields, names, steps, errors naming the
 * field, the Vixie day rule, aliases, @every, and the next fire time in a
 * zone, with the DST tables of Europe/Paris and America/New_York for their
 * 2026 change days. No clock: every instant is given.
 *
 * The zones come from the system tz database (tzdata). A missing zone
 * fails the test, never skips it. */
#define _GNU_SOURCE /* setenv, unsetenv */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"

/* ------------------------------------------------------------- helpers */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* UTC "YYYY-MM-DD HH:MM" -> unix ms */
static int64_t at(const char *s)
{
    int y, mo, d, h, mi;
    if (sscanf(s, "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi) != 5)
        fail_msg("bad time literal %s", s);
    return (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60) * 1000;
}

static void fmt_utc(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%d %H:%M", &tm);
}

static void need_zone(const char *tz)
{
    if (!cron_tz_is_valid(tz))
        fail_msg("time zone %s is missing from the tz database: install tzdata", tz);
}

static cron_t parse_ok(const char *expr)
{
    cron_t c;
    char err[256] = "";
    if (cron_parse(expr, &c, err, sizeof err) != 0)
        fail_msg("cron_parse(\"%s\") failed: %s", expr, err);
    return c;
}

/* Every fire in (from, to) of expr in tz, in order, compared with the UTC
 * table want[] ("2026-MM-DD HH:MM"); on a mismatch prints both lists. */
static void assert_fires(const char *expr, const char *tz, int64_t from, int64_t to,
                         const char *const *want, size_t nwant)
{
    need_zone(tz);
    cron_t c = parse_ok(expr);
    int64_t got[128];
    size_t n = 0;
    int64_t t = from;
    for (;;) {
        int64_t next;
        assert_int_equal(cron_next(&c, tz, 0, t, &next), 0);
        assert_true(next > t);
        if (next >= to)
            break;
        assert_true(n < sizeof got / sizeof got[0]);
        got[n++] = next;
        t = next;
    }
    bool same = n == nwant;
    for (size_t i = 0; same && i < n; i++)
        same = got[i] == at(want[i]);
    if (!same) {
        char buf[32];
        fprintf(stderr, "\"%s\" in %s: got %zu fires, want %zu\n", expr, tz, n, nwant);
        for (size_t i = 0; i < n || i < nwant; i++) {
            if (i < n)
                fmt_utc(got[i], buf, sizeof buf);
            fprintf(stderr, "  %-18s %s\n", i < n ? buf : "-", i < nwant ? want[i] : "-");
        }
        fail_msg("fire table mismatch for \"%s\" in %s", expr, tz);
    }
}

#define FIRES(expr, tz, from, to, ...)                                                             \
    do {                                                                                           \
        static const char *const w_[] = {__VA_ARGS__};                                             \
        assert_fires(expr, tz, at(from), at(to), w_, sizeof w_ / sizeof w_[0]);                    \
    } while (0)

static void expect_error(const char *expr, const char *want)
{
    cron_t c;
    char err[256] = "";
    if (cron_parse(expr, &c, err, sizeof err) == 0)
        fail_msg("cron_parse(\"%s\") accepted", expr);
    if (!strstr(err, want))
        fail_msg("cron_parse(\"%s\"): error \"%s\", want \"%s\"", expr, err, want);
}

static uint64_t bits(const int *v, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= 1ULL << v[i];
    return b;
}
#define BITS(...) bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

/* -------------------------------------------------------------- parsing */

static void test_parse_fields_ranges_steps(void **state)
{
    (void)state;
    cron_t c = parse_ok("*/15 9-17 1,15,31 * mon-fri");
    assert_int_equal(c.minutes, BITS(0, 15, 30, 45));
    assert_int_equal(c.hours, 0x3fe00); /* 9..17 */
    assert_int_equal(c.mdays, BITS(1, 15, 31));
    assert_int_equal(c.months, 0x1ffe); /* 1..12 */
    assert_int_equal(c.wdays, BITS(1, 2, 3, 4, 5));
    assert_true(c.hour_star == false && c.mday_star == false && c.wday_star == false);
    assert_int_equal(c.every_ms, 0);

    c = parse_ok("1-30/5 */6 */10 */4 */2");
    assert_int_equal(c.minutes, BITS(1, 6, 11, 16, 21, 26));
    assert_int_equal(c.hours, BITS(0, 6, 12, 18));
    assert_int_equal(c.mdays, BITS(1, 11, 21, 31));
    assert_int_equal(c.months, BITS(1, 5, 9));
    assert_int_equal(c.wdays, BITS(0, 2, 4, 6));
    assert_true(c.hour_star && c.mday_star && c.wday_star);

    /* N/STEP = N-max/STEP; day-of-week stops at 6 (no extra Sunday) */
    c = parse_ok("5/20 22/1 28/2 11/1 1/2");
    assert_int_equal(c.minutes, BITS(5, 25, 45));
    assert_int_equal(c.hours, BITS(22, 23));
    assert_int_equal(c.mdays, BITS(28, 30));
    assert_int_equal(c.months, BITS(11, 12));
    assert_int_equal(c.wdays, BITS(1, 3, 5));

    /* lists mix items; duplicates are harmless; blanks of any kind split */
    c = parse_ok("  0,0,59\t0-2,23  *   *  *  ");
    assert_int_equal(c.minutes, BITS(0, 59));
    assert_int_equal(c.hours, BITS(0, 1, 2, 23));
    assert_true(c.mday_star && c.wday_star && !c.hour_star);
}

static void test_parse_names_and_sunday(void **state)
{
    (void)state;
    cron_t c = parse_ok("0 0 * JAN-mar,Dec sun");
    assert_int_equal(c.months, BITS(1, 2, 3, 12));
    assert_int_equal(c.wdays, BITS(0));
    c = parse_ok("0 0 * * 7");
    assert_int_equal(c.wdays, BITS(0));
    c = parse_ok("0 0 * * 5-7");
    assert_int_equal(c.wdays, BITS(0, 5, 6));
    c = parse_ok("0 0 * * fri-sun"); /* ends on Sunday = 7 */
    assert_int_equal(c.wdays, BITS(0, 5, 6));
    c = parse_ok("0 0 * * Mon,WED,fRi");
    assert_int_equal(c.wdays, BITS(1, 3, 5));
    c = parse_ok("0 0 * jul-aug/1 *");
    assert_int_equal(c.months, BITS(7, 8));
}

static void test_parse_errors_name_the_field(void **state)
{
    (void)state;
    expect_error("60 * * * *", "minute field: 60 out of range 0-59");
    expect_error("0 25 * * *", "hour field: 25 out of range 0-23");
    expect_error("0 0 0 * *", "day-of-month field: 0 out of range 1-31");
    expect_error("0 0 32 * *", "day-of-month field: 32 out of range 1-31");
    expect_error("0 0 1 13 *", "month field: 13 out of range 1-12");
    expect_error("0 0 * * 8", "day-of-week field: 8 out of range 0-7");
    expect_error("0 0 * foo *", "month field: unknown name 'foo'");
    expect_error("0 0 * * fry", "day-of-week field: unknown name 'fry'");
    expect_error("0 0 * * monday", "day-of-week field: unknown name 'monday'");
    expect_error("0 mon * * *", "hour field: 'mon' is not a number");
    expect_error("a * * * *", "minute field: 'a' is not a number");
    expect_error("1x * * * *", "minute field: bad value '1x'");
    expect_error("*/0 * * * *", "minute field: step 0 out of range 1-59");
    expect_error("*/60 * * * *", "minute field: step 60 out of range 1-59");
    expect_error("0 */x * * *", "hour field: bad step 'x'");
    expect_error("0 0 */ * *", "day-of-month field: missing step");
    expect_error("30-10 * * * *", "minute field: range '30-10' goes backwards");
    expect_error("0 0 * dec-jan *", "month field: range 'dec-jan' goes backwards");
    expect_error("1,,2 * * * *", "minute field: empty list item");
    expect_error("1, * * * *", "minute field: empty list item");
    expect_error("0 0 * * 1-", "day-of-week field: missing value");
    expect_error("0 0 -3 * *", "day-of-month field: missing value");
    expect_error("99999999999 * * * *", "minute field: 99999999999 out of range 0-59");
    expect_error("* * * *", "expected 5 fields, got 4");
    expect_error("0 * * * * *", "expected 5 fields, got 6");
    expect_error("", "empty expression");
    expect_error("   \t ", "empty expression");
    expect_error("@minutely", "unknown alias @minutely");
    expect_error("@daily 5", "@daily takes no argument");
    expect_error("@every", "@every takes one duration");
    expect_error("@every 0s", "@every: 0s out of range 1s-366d");
    expect_error("@every 367d", "@every: 367d out of range 1s-366d");
    expect_error("@every 5", "@every: bad duration '5'");
    expect_error("@every 1m1h", "@every: bad duration '1m1h'");
    expect_error("@every 500ms", "@every: bad duration '500ms'");
    expect_error("@every -5s", "@every: bad duration '-5s'");

    char longexpr[400];
    memset(longexpr, ' ', sizeof longexpr - 1);
    longexpr[sizeof longexpr - 1] = '\0';
    memcpy(longexpr, "* * * * *", 9);
    expect_error(longexpr, "longer than 256 bytes");

    cron_t c;
    assert_int_equal(cron_parse(NULL, &c, NULL, 0), -1); /* err may be NULL */
}

static void test_aliases_and_every(void **state)
{
    (void)state;
    cron_t d = parse_ok("0 0 * * *");
    cron_t c = parse_ok("@daily");
    assert_memory_equal(&c, &d, sizeof c);
    c = parse_ok("@midnight");
    assert_memory_equal(&c, &d, sizeof c);
    c = parse_ok("@hourly");
    assert_int_equal(c.minutes, BITS(0));
    assert_int_equal(c.hours, 0xffffff);
    assert_true(c.hour_star); /* follows real time at DST changes */
    c = parse_ok("@weekly");
    assert_int_equal(c.wdays, BITS(0));
    assert_int_equal(c.hours, BITS(0));
    c = parse_ok("@monthly");
    assert_int_equal(c.mdays, BITS(1));
    c = parse_ok("@yearly");
    cron_t a = parse_ok("@annually");
    assert_memory_equal(&c, &a, sizeof c);
    assert_int_equal(c.mdays, BITS(1));
    assert_int_equal(c.months, BITS(1));

    assert_int_equal(parse_ok("@every 30s").every_ms, 30000);
    assert_int_equal(parse_ok("@every 1h30m").every_ms, 5400000);
    assert_int_equal(parse_ok("  @every\t2d3h4m5s ").every_ms,
                     ((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000LL);
    assert_int_equal(parse_ok("@every 1s").every_ms, 1000);
    assert_int_equal(parse_ok("@every 366d").every_ms, 366LL * 86400 * 1000);
}

/* ---------------------------------------------------------- next fire */

static void test_every_counts_from_the_anchor(void **state)
{
    (void)state;
    cron_t c = parse_ok("@every 90s");
    int64_t a = at("2026-03-29 00:59") + 7; /* any anchor, not aligned */
    int64_t n;
    assert_int_equal(cron_next(&c, NULL, a, a - 1000000, &n), 0);
    assert_int_equal(n, a + 90000); /* k >= 1 */
    assert_int_equal(cron_next(&c, "UTC", a, a, &n), 0);
    assert_int_equal(n, a + 90000);
    assert_int_equal(cron_next(&c, "", a, a + 89999, &n), 0);
    assert_int_equal(n, a + 90000);
    assert_int_equal(cron_next(&c, NULL, a, a + 90000, &n), 0);
    assert_int_equal(n, a + 180000);
    assert_int_equal(cron_next(&c, NULL, a, a + 10 * 90000 + 1, &n), 0);
    assert_int_equal(n, a + 11 * 90000);
    /* the zone does not matter, across a DST change too */
    need_zone("Europe/Paris");
    assert_int_equal(cron_next(&c, "Europe/Paris", a, a + 90000, &n), 0);
    assert_int_equal(n, a + 180000);
    assert_int_equal(cron_next(&c, "Mars/Olympus_Mons", a, a, &n), -1);
}

static void test_strictly_after_and_utc(void **state)
{
    (void)state;
    cron_t c = parse_ok("*/15 * * * *");
    int64_t n;
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-01-01 10:15") - 1, &n), 0);
    assert_int_equal(n, at("2026-01-01 10:15"));
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-01-01 10:15"), &n), 0);
    assert_int_equal(n, at("2026-01-01 10:30"));
    assert_int_equal(cron_next(&c, "UTC", 0, at("2026-12-31 23:45") + 59999, &n), 0);
    assert_int_equal(n, at("2027-01-01 00:00"));
    c = parse_ok("@yearly");
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-06-01 00:00"), &n), 0);
    assert_int_equal(n, at("2027-01-01 00:00"));
    c = parse_ok("59 23 31 12 *");
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-01-01 00:00"), &n), 0);
    assert_int_equal(n, at("2026-12-31 23:59"));
}

static void test_vixie_day_rule(void **state)
{
    (void)state;
    /* both day fields restricted: the 13th OR a Friday (April 2026: Fridays
     * 3, 10, 17, 24; the 13th is a Monday) */
    FIRES("0 0 13 * fri", "UTC", "2026-04-01 00:00", "2026-05-02 00:00", "2026-04-03 00:00",
          "2026-04-10 00:00", "2026-04-13 00:00", "2026-04-17 00:00", "2026-04-24 00:00",
          "2026-05-01 00:00");
    /* one of them '*': both must match (here: only the 13th / only Fridays) */
    FIRES("0 0 13 * *", "UTC", "2026-04-01 00:00", "2026-05-02 00:00", "2026-04-13 00:00");
    FIRES("0 0 * * fri", "UTC", "2026-04-01 00:00", "2026-05-02 00:00", "2026-04-03 00:00",
          "2026-04-10 00:00", "2026-04-17 00:00", "2026-04-24 00:00", "2026-05-01 00:00");
    /* a field starting with '*' counts as unrestricted even with a step:
     * odd days AND Fridays */
    FIRES("0 0 */2 * fri", "UTC", "2026-04-01 00:00", "2026-05-02 00:00", "2026-04-03 00:00",
          "2026-04-17 00:00", "2026-05-01 00:00");
    /* Friday the 13th of February and March 2026 fires once */
    FIRES("0 12 13 * 5", "UTC", "2026-02-12 00:00", "2026-02-15 00:00", "2026-02-13 12:00");
}

static void test_impossible_dates_give_minus_one(void **state)
{
    (void)state;
    int64_t n = 12345;
    cron_t c = parse_ok("0 0 30 2 *");
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-01-01 00:00"), &n), -1);
    need_zone("Europe/Paris");
    assert_int_equal(cron_next(&c, "Europe/Paris", 0, at("2026-01-01 00:00"), &n), -1);
    c = parse_ok("0 0 31 apr,jun,sep,nov *");
    assert_int_equal(cron_next(&c, NULL, 0, at("2026-01-01 00:00"), &n), -1);
    /* rare but possible: the next 29 February, years ahead, in a zone */
    c = parse_ok("0 0 29 2 *");
    assert_int_equal(cron_next(&c, "Europe/Paris", 0, at("2028-03-01 00:00"), &n), 0);
    assert_int_equal(n, at("2032-02-28 23:00"));
    /* unknown zone */
    c = parse_ok("* * * * *");
    assert_int_equal(cron_next(&c, "Mars/Olympus_Mons", 0, 0, &n), -1);
    assert_int_equal(cron_next(&c, "../../etc/passwd", 0, 0, &n), -1);
}

static void test_rare_expressions_are_fast(void **state)
{
    (void)state;
    /* a never-firing expression scans five years of days each call, and a
     * yearly one in a DST zone converts only its matching days */
    need_zone("America/New_York");
    cron_t never = parse_ok("0 0 30 2 *"), yearly = parse_ok("30 2 8 3 *");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t n, t = at("2026-01-01 00:00");
    for (int i = 0; i < 100; i++)
        assert_int_equal(cron_next(&never, "America/New_York", 0, t, &n), -1);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(cron_next(&yearly, "America/New_York", 0, t, &n), 0);
        t = n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("200 rare cron_next calls: %.3f s\n", s);
    assert_true(s < 10.0); /* generous: sanitizers, a shared machine */
    /* 2026-03-08 02:30 does not exist in New York: the first instant after
     * the gap */
    assert_int_equal(cron_next(&yearly, "America/New_York", 0, at("2026-01-01 00:00"), &n), 0);
    assert_int_equal(n, at("2026-03-08 07:00"));
}

static void test_tz_validity(void **state)
{
    (void)state;
    need_zone("Europe/Paris");
    assert_true(cron_tz_is_valid("UTC"));
    assert_true(cron_tz_is_valid(NULL));
    assert_true(cron_tz_is_valid(""));
    assert_true(cron_tz_is_valid("America/New_York"));
    assert_true(cron_tz_is_valid("Etc/GMT+5"));
    assert_false(cron_tz_is_valid("Mars/Olympus_Mons"));
    assert_false(cron_tz_is_valid("Europe"));       /* a directory */
    assert_false(cron_tz_is_valid("europe/paris")); /* names are case-sensitive */
    assert_false(cron_tz_is_valid("/usr/share/zoneinfo/Europe/Paris"));
    assert_false(cron_tz_is_valid("Europe/../Europe/Paris"));
    assert_false(cron_tz_is_valid("../../../etc/passwd"));
    assert_false(cron_tz_is_valid("Europe/Paris/"));
    assert_false(cron_tz_is_valid("Europe//Paris"));
    assert_false(cron_tz_is_valid("right/Europe/Paris"));
    assert_false(cron_tz_is_valid("CET-1CEST,M3.5.0,M10.5.0/3")); /* POSIX TZ strings */
}

static void test_caller_tz_is_restored(void **state)
{
    (void)state;
    need_zone("Europe/Paris");
    need_zone("America/New_York");
    cron_t c = parse_ok("30 2 * * *");
    int64_t n, t = at("2026-07-01 12:00");
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;

    setenv("TZ", "America/New_York", 1);
    tzset();
    assert_int_equal(cron_next(&c, "Europe/Paris", 0, t, &n), 0);
    assert_int_equal(n, at("2026-07-02 00:30"));
    assert_string_equal(getenv("TZ"), "America/New_York");
    time_t tt = (time_t)(t / 1000);
    struct tm tm;
    localtime_r(&tt, &tm);
    assert_int_equal(tm.tm_hour, 8); /* 12:00Z is 08:00 EDT: the caller's zone again */

    unsetenv("TZ");
    tzset();
    assert_int_equal(cron_next(&c, "Europe/Paris", 0, t, &n), 0);
    assert_null(getenv("TZ"));
    assert_int_equal(cron_next(&c, "Mars/Olympus_Mons", 0, t, &n), -1);
    assert_null(getenv("TZ"));

    setenv("TZ", ":Europe/Paris", 1); /* already the zone asked for */
    tzset();
    assert_int_equal(cron_next(&c, "Europe/Paris", 0, t, &n), 0);
    assert_int_equal(n, at("2026-07-02 00:30"));
    assert_string_equal(getenv("TZ"), ":Europe/Paris");

    if (saved)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    free(saved);
}

/* ------------------------------------------------------------ DST tables
 * Every fire across the 2026 change days, as UTC instants. Windows: the
 * local day before, of and after the change for daily expressions; the
 * local change day for the hourly ones. */

static void test_dst_paris_spring_forward(void **state)
{
    (void)state;
    /* Sun 2026-03-29 02:00 CET (+1) -> 03:00 CEST (+2) at 01:00Z */
    /* 02:30 does not exist that day: it runs once at 03:00 CEST */
    FIRES("30 2 * * *", "Europe/Paris", "2026-03-27 23:00", "2026-03-30 22:00", "2026-03-28 01:30",
          "2026-03-29 01:00", "2026-03-30 00:30");
    /* hourly: 02:00 is skipped, 23 fires that day, one per real hour */
    FIRES("0 * * * *", "Europe/Paris", "2026-03-28 22:59", "2026-03-29 22:00", "2026-03-28 23:00",
          "2026-03-29 00:00", "2026-03-29 01:00", "2026-03-29 02:00", "2026-03-29 03:00",
          "2026-03-29 04:00", "2026-03-29 05:00", "2026-03-29 06:00", "2026-03-29 07:00",
          "2026-03-29 08:00", "2026-03-29 09:00", "2026-03-29 10:00", "2026-03-29 11:00",
          "2026-03-29 12:00", "2026-03-29 13:00", "2026-03-29 14:00", "2026-03-29 15:00",
          "2026-03-29 16:00", "2026-03-29 17:00", "2026-03-29 18:00", "2026-03-29 19:00",
          "2026-03-29 20:00", "2026-03-29 21:00");
    /* every 30 min: 02:00 and 02:30 skipped, 46 fires */
    FIRES("*/30 * * * *", "Europe/Paris", "2026-03-28 22:59", "2026-03-29 22:00",
          "2026-03-28 23:00", "2026-03-28 23:30", "2026-03-29 00:00", "2026-03-29 00:30",
          "2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 02:00", "2026-03-29 02:30",
          "2026-03-29 03:00", "2026-03-29 03:30", "2026-03-29 04:00", "2026-03-29 04:30",
          "2026-03-29 05:00", "2026-03-29 05:30", "2026-03-29 06:00", "2026-03-29 06:30",
          "2026-03-29 07:00", "2026-03-29 07:30", "2026-03-29 08:00", "2026-03-29 08:30",
          "2026-03-29 09:00", "2026-03-29 09:30", "2026-03-29 10:00", "2026-03-29 10:30",
          "2026-03-29 11:00", "2026-03-29 11:30", "2026-03-29 12:00", "2026-03-29 12:30",
          "2026-03-29 13:00", "2026-03-29 13:30", "2026-03-29 14:00", "2026-03-29 14:30",
          "2026-03-29 15:00", "2026-03-29 15:30", "2026-03-29 16:00", "2026-03-29 16:30",
          "2026-03-29 17:00", "2026-03-29 17:30", "2026-03-29 18:00", "2026-03-29 18:30",
          "2026-03-29 19:00", "2026-03-29 19:30", "2026-03-29 20:00", "2026-03-29 20:30",
          "2026-03-29 21:00", "2026-03-29 21:30");
    /* several nominal times in the gap and the first one after it: once */
    FIRES("0,30 2,3 * * *", "Europe/Paris", "2026-03-28 22:59", "2026-03-29 22:00",
          "2026-03-29 01:00", "2026-03-29 01:30");
    FIRES("*/15 2 * * *", "Europe/Paris", "2026-03-28 22:59", "2026-03-29 22:00",
          "2026-03-29 01:00");
}

static void test_dst_paris_fall_back(void **state)
{
    (void)state;
    /* Sun 2026-10-25 03:00 CEST (+2) -> 02:00 CET (+1) at 01:00Z */
    /* 02:30 happens twice that day: the first one only */
    FIRES("30 2 * * *", "Europe/Paris", "2026-10-23 22:00", "2026-10-26 23:00", "2026-10-24 00:30",
          "2026-10-25 00:30", "2026-10-26 01:30");
    /* hourly: 02:00 fires twice (real time), 25 fires */
    FIRES("0 * * * *", "Europe/Paris", "2026-10-24 21:59", "2026-10-25 23:00", "2026-10-24 22:00",
          "2026-10-24 23:00", "2026-10-25 00:00", "2026-10-25 01:00", "2026-10-25 02:00",
          "2026-10-25 03:00", "2026-10-25 04:00", "2026-10-25 05:00", "2026-10-25 06:00",
          "2026-10-25 07:00", "2026-10-25 08:00", "2026-10-25 09:00", "2026-10-25 10:00",
          "2026-10-25 11:00", "2026-10-25 12:00", "2026-10-25 13:00", "2026-10-25 14:00",
          "2026-10-25 15:00", "2026-10-25 16:00", "2026-10-25 17:00", "2026-10-25 18:00",
          "2026-10-25 19:00", "2026-10-25 20:00", "2026-10-25 21:00", "2026-10-25 22:00");
    /* every 30 min: 02:00 and 02:30 twice each, 50 fires */
    FIRES("*/30 * * * *", "Europe/Paris", "2026-10-24 21:59", "2026-10-25 23:00",
          "2026-10-24 22:00", "2026-10-24 22:30", "2026-10-24 23:00", "2026-10-24 23:30",
          "2026-10-25 00:00", "2026-10-25 00:30", "2026-10-25 01:00", "2026-10-25 01:30",
          "2026-10-25 02:00", "2026-10-25 02:30", "2026-10-25 03:00", "2026-10-25 03:30",
          "2026-10-25 04:00", "2026-10-25 04:30", "2026-10-25 05:00", "2026-10-25 05:30",
          "2026-10-25 06:00", "2026-10-25 06:30", "2026-10-25 07:00", "2026-10-25 07:30",
          "2026-10-25 08:00", "2026-10-25 08:30", "2026-10-25 09:00", "2026-10-25 09:30",
          "2026-10-25 10:00", "2026-10-25 10:30", "2026-10-25 11:00", "2026-10-25 11:30",
          "2026-10-25 12:00", "2026-10-25 12:30", "2026-10-25 13:00", "2026-10-25 13:30",
          "2026-10-25 14:00", "2026-10-25 14:30", "2026-10-25 15:00", "2026-10-25 15:30",
          "2026-10-25 16:00", "2026-10-25 16:30", "2026-10-25 17:00", "2026-10-25 17:30",
          "2026-10-25 18:00", "2026-10-25 18:30", "2026-10-25 19:00", "2026-10-25 19:30",
          "2026-10-25 20:00", "2026-10-25 20:30", "2026-10-25 21:00", "2026-10-25 21:30",
          "2026-10-25 22:00", "2026-10-25 22:30");
    /* a fixed hour with a minute list: first occurrences only */
    FIRES("*/20 2 * * *", "Europe/Paris", "2026-10-24 21:59", "2026-10-25 23:00",
          "2026-10-25 00:00", "2026-10-25 00:20", "2026-10-25 00:40");
}

static void test_dst_new_york_spring_forward(void **state)
{
    (void)state;
    /* Sun 2026-03-08 02:00 EST (-5) -> 03:00 EDT (-4) at 07:00Z */
    FIRES("30 2 * * *", "America/New_York", "2026-03-07 05:00", "2026-03-10 04:00",
          "2026-03-07 07:30", "2026-03-08 07:00", "2026-03-09 06:30");
    FIRES("0 * * * *", "America/New_York", "2026-03-08 04:59", "2026-03-09 04:00",
          "2026-03-08 05:00", "2026-03-08 06:00", "2026-03-08 07:00", "2026-03-08 08:00",
          "2026-03-08 09:00", "2026-03-08 10:00", "2026-03-08 11:00", "2026-03-08 12:00",
          "2026-03-08 13:00", "2026-03-08 14:00", "2026-03-08 15:00", "2026-03-08 16:00",
          "2026-03-08 17:00", "2026-03-08 18:00", "2026-03-08 19:00", "2026-03-08 20:00",
          "2026-03-08 21:00", "2026-03-08 22:00", "2026-03-08 23:00", "2026-03-09 00:00",
          "2026-03-09 01:00", "2026-03-09 02:00", "2026-03-09 03:00");
    FIRES("*/30 * * * *", "America/New_York", "2026-03-08 04:59", "2026-03-09 04:00",
          "2026-03-08 05:00", "2026-03-08 05:30", "2026-03-08 06:00", "2026-03-08 06:30",
          "2026-03-08 07:00", "2026-03-08 07:30", "2026-03-08 08:00", "2026-03-08 08:30",
          "2026-03-08 09:00", "2026-03-08 09:30", "2026-03-08 10:00", "2026-03-08 10:30",
          "2026-03-08 11:00", "2026-03-08 11:30", "2026-03-08 12:00", "2026-03-08 12:30",
          "2026-03-08 13:00", "2026-03-08 13:30", "2026-03-08 14:00", "2026-03-08 14:30",
          "2026-03-08 15:00", "2026-03-08 15:30", "2026-03-08 16:00", "2026-03-08 16:30",
          "2026-03-08 17:00", "2026-03-08 17:30", "2026-03-08 18:00", "2026-03-08 18:30",
          "2026-03-08 19:00", "2026-03-08 19:30", "2026-03-08 20:00", "2026-03-08 20:30",
          "2026-03-08 21:00", "2026-03-08 21:30", "2026-03-08 22:00", "2026-03-08 22:30",
          "2026-03-08 23:00", "2026-03-08 23:30", "2026-03-09 00:00", "2026-03-09 00:30",
          "2026-03-09 01:00", "2026-03-09 01:30", "2026-03-09 02:00", "2026-03-09 02:30",
          "2026-03-09 03:00", "2026-03-09 03:30");
    /* 01:30 exists every day: no change */
    FIRES("30 1 * * *", "America/New_York", "2026-03-07 05:00", "2026-03-10 04:00",
          "2026-03-07 06:30", "2026-03-08 06:30", "2026-03-09 05:30");
}

static void test_dst_new_york_fall_back(void **state)
{
    (void)state;
    /* Sun 2026-11-01 02:00 EDT (-4) -> 01:00 EST (-5) at 06:00Z */
    /* 01:30 happens twice: the first (EDT) one only */
    FIRES("30 1 * * *", "America/New_York", "2026-10-31 04:00", "2026-11-03 05:00",
          "2026-10-31 05:30", "2026-11-01 05:30", "2026-11-02 06:30");
    /* 02:30 happens once */
    FIRES("30 2 * * *", "America/New_York", "2026-10-31 04:00", "2026-11-03 05:00",
          "2026-10-31 06:30", "2026-11-01 07:30", "2026-11-02 07:30");
    FIRES("0 * * * *", "America/New_York", "2026-11-01 03:59", "2026-11-02 05:00",
          "2026-11-01 04:00", "2026-11-01 05:00", "2026-11-01 06:00", "2026-11-01 07:00",
          "2026-11-01 08:00", "2026-11-01 09:00", "2026-11-01 10:00", "2026-11-01 11:00",
          "2026-11-01 12:00", "2026-11-01 13:00", "2026-11-01 14:00", "2026-11-01 15:00",
          "2026-11-01 16:00", "2026-11-01 17:00", "2026-11-01 18:00", "2026-11-01 19:00",
          "2026-11-01 20:00", "2026-11-01 21:00", "2026-11-01 22:00", "2026-11-01 23:00",
          "2026-11-02 00:00", "2026-11-02 01:00", "2026-11-02 02:00", "2026-11-02 03:00",
          "2026-11-02 04:00");
    FIRES("*/30 * * * *", "America/New_York", "2026-11-01 03:59", "2026-11-02 05:00",
          "2026-11-01 04:00", "2026-11-01 04:30", "2026-11-01 05:00", "2026-11-01 05:30",
          "2026-11-01 06:00", "2026-11-01 06:30", "2026-11-01 07:00", "2026-11-01 07:30",
          "2026-11-01 08:00", "2026-11-01 08:30", "2026-11-01 09:00", "2026-11-01 09:30",
          "2026-11-01 10:00", "2026-11-01 10:30", "2026-11-01 11:00", "2026-11-01 11:30",
          "2026-11-01 12:00", "2026-11-01 12:30", "2026-11-01 13:00", "2026-11-01 13:30",
          "2026-11-01 14:00", "2026-11-01 14:30", "2026-11-01 15:00", "2026-11-01 15:30",
          "2026-11-01 16:00", "2026-11-01 16:30", "2026-11-01 17:00", "2026-11-01 17:30",
          "2026-11-01 18:00", "2026-11-01 18:30", "2026-11-01 19:00", "2026-11-01 19:30",
          "2026-11-01 20:00", "2026-11-01 20:30", "2026-11-01 21:00", "2026-11-01 21:30",
          "2026-11-01 22:00", "2026-11-01 22:30", "2026-11-01 23:00", "2026-11-01 23:30",
          "2026-11-02 00:00", "2026-11-02 00:30", "2026-11-02 01:00", "2026-11-02 01:30",
          "2026-11-02 02:00", "2026-11-02 02:30", "2026-11-02 03:00", "2026-11-02 03:30",
          "2026-11-02 04:00", "2026-11-02 04:30");
    /* a fixed hour with a minute list: 01:00-01:45 EDT only */
    FIRES("*/15 1 * * *", "America/New_York", "2026-11-01 03:59", "2026-11-02 05:00",
          "2026-11-01 05:00", "2026-11-01 05:15", "2026-11-01 05:30", "2026-11-01 05:45");
}

static void test_dst_odd_zones(void **state)
{
    (void)state;
    /* Lord Howe moves by 30 minutes: 2026-10-04 02:00 (+10:30) -> 02:30
     * (+11) at 15:30Z; 2026-04-05 02:00 (+11) -> 01:30 (+10:30) at 15:00Z */
    FIRES("15 2 * * *", "Australia/Lord_Howe", "2026-10-03 13:00", "2026-10-04 13:00",
          "2026-10-03 15:30");
    /* hourly: 02:15 does not exist and is skipped (no fire at 02:30) */
    FIRES("15 * * * *", "Australia/Lord_Howe", "2026-10-03 14:00", "2026-10-03 17:00",
          "2026-10-03 14:45", "2026-10-03 16:15");
    FIRES("45 1 * * *", "Australia/Lord_Howe", "2026-04-04 13:00", "2026-04-05 13:00",
          "2026-04-04 14:45");
    FIRES("45 * * * *", "Australia/Lord_Howe", "2026-04-04 13:50", "2026-04-04 17:00",
          "2026-04-04 14:45", "2026-04-04 15:15", "2026-04-04 16:15");
    /* Santiago changes at midnight: 2026-09-06 00:00 (-4) -> 01:00 (-3) at
     * 04:00Z, so midnight does not exist; 2026-04-05 00:00 (-3) -> 04-04
     * 23:00 (-4) at 03:00Z, so 23:xx of the 4th happens twice */
    FIRES("0 0 * * *", "America/Santiago", "2026-09-05 00:00", "2026-09-07 12:00",
          "2026-09-05 04:00", "2026-09-06 04:00", "2026-09-07 03:00");
    FIRES("30 23 * * *", "America/Santiago", "2026-04-04 00:00", "2026-04-06 12:00",
          "2026-04-04 02:30", "2026-04-05 02:30", "2026-04-06 03:30");
    FIRES("30 * * * *", "America/Santiago", "2026-04-05 01:00", "2026-04-05 05:00",
          "2026-04-05 01:30", "2026-04-05 02:30", "2026-04-05 03:30", "2026-04-05 04:30");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields_ranges_steps),
        cmocka_unit_test(test_parse_names_and_sunday),
        cmocka_unit_test(test_parse_errors_name_the_field),
        cmocka_unit_test(test_aliases_and_every),
        cmocka_unit_test(test_every_counts_from_the_anchor),
        cmocka_unit_test(test_strictly_after_and_utc),
        cmocka_unit_test(test_vixie_day_rule),
        cmocka_unit_test(test_impossible_dates_give_minus_one),
        cmocka_unit_test(test_rare_expressions_are_fast),
        cmocka_unit_test(test_tz_validity),
        cmocka_unit_test(test_caller_tz_is_restored),
        cmocka_unit_test(test_dst_paris_spring_forward),
        cmocka_unit_test(test_dst_paris_fall_back),
        cmocka_unit_test(test_dst_new_york_spring_forward),
        cmocka_unit_test(test_dst_new_york_fall_back),
        cmocka_unit_test(test_dst_odd_zones),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
