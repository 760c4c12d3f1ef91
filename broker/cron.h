/*
 * cron.h - cron expressions and their next fire time in a time zone. Pure:
 * no I/O besides the system tz database, no clock, no SQLite.
 *
 * Syntax (docs/tasks.md, "Periodic schedules"):
 *  - five fields: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or
 *    jan-dec, day-of-week 0-7 (0 and 7 = Sunday) or sun-sat; each field a
 *    comma list of `*`, `N`, `N-M`, with an optional `/STEP` on `*` and
 *    ranges (`*\/15`, `1-30/5`, `N/STEP` = N-max/STEP); names are
 *    case-insensitive and may form ranges (`mon-fri`).
 *  - Vixie-cron day rule: if both day-of-month and day-of-week are
 *    restricted (neither starts with `*`), a day matches when EITHER does;
 *    otherwise both must match.
 *  - aliases: @yearly @annually @monthly @weekly @daily @midnight @hourly.
 *  - "@every D": a fixed interval, D = N followed by s, m, h or d, optionally
 *    combined ("1h30m"), from 1 s to 366 d; independent of the zone.
 *
 * Time zones: IANA names from the system tz database (/usr/share/zoneinfo),
 * "UTC" by default. DST rules (written down in docs/tasks.md):
 *  - Skipped hour (spring forward): a fire whose local time does not exist
 *    runs once at the first instant after the gap, unless the hour field
 *    starts with `*` (an hourly-or-finer schedule), whose nonexistent times
 *    are simply skipped. Several fires mapping to one instant run once.
 *  - Repeated hour (fall back): a local time that occurs twice fires only at
 *    its first occurrence, unless the hour field starts with `*`, which
 *    fires at both (it follows real time).
 */
#ifndef TASKQ_CRON_H
#define TASKQ_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t minutes;  /* bit m set: minute m matches */
    uint32_t hours;    /* bits 0-23 */
    uint32_t mdays;    /* bits 1-31 */
    uint16_t months;   /* bits 1-12 */
    uint8_t wdays;     /* bits 0-6, Sunday = 0 */
    bool mday_star, wday_star; /* field began with '*' (Vixie rule) */
    bool hour_star;    /* hour field began with '*' (DST rules) */
    int64_t every_ms;  /* > 0: "@every"; the fields above are unused */
} cron_t;

/* Parses expr. 0 on success; -1 with a message naming the field in err
 * (e.g. "hour field: 25 out of range 0-23", "expected 5 fields, got 4",
 * "unknown alias @minutely"). */
int cron_parse(const char *expr, cron_t *out, char *err, size_t errsz);

/* true if tz names a zone the system knows ("UTC" always; NULL and "" mean
 * UTC too): a TZif file under $TZDIR or /usr/share/zoneinfo. POSIX TZ
 * strings ("CET-1CEST,...") and "right/" zones are refused. */
bool cron_tz_is_valid(const char *tz);

/* The first nominal fire time strictly after after_ms (unix ms) in zone
 * tz (NULL or "" = UTC), per the DST rules above. For "@every", anchor_ms
 * is the start of the series: fires are anchor + k * every (k >= 1) and
 * the result is the first of those after after_ms. 0 on success; -1 if
 * there is none within 5 years (e.g. "0 0 30 2 *") or tz is unknown.
 * Not thread-safe for a zone other than UTC: it sets TZ and calls tzset(),
 * and restores the caller's TZ (and tzset()) before returning; callers are
 * single-threaded (the broker loop). */
int cron_next(const cron_t *c, const char *tz, int64_t anchor_ms, int64_t after_ms,
              int64_t *next_ms);

#endif
