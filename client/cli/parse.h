/*
 * parse.h - the CLI's value parsers: pure functions (no I/O, no clock), so
 * tests/unit/test_cliparse.c covers them. Each returns true and writes *out
 * on success, false (and leaves *out alone) otherwise; none accepts
 * trailing garbage.
 */
#ifndef TASKQ_CLI_PARSE_H
#define TASKQ_CLI_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Non-negative seconds, possibly fractional ("2", "0.5") -> ms. */
bool parse_seconds(const char *s, int64_t *ms);
/* Decimal 0..max (no sign, no blanks). */
bool parse_uint_max(const char *s, uint64_t max, uint64_t *out);
bool parse_uint(const char *s, uint32_t *out); /* 0..1000000 */
/* Priority "0".."9". */
bool parse_priority(const char *s, int *out);
/* A duration: a non-negative number with an optional unit ms, s, m, h or
 * d; no unit means seconds ("2s", "100ms", "10m", "1.5h", "30"). */
bool parse_duration_ms(const char *s, int64_t *ms);
/* An absolute time -> unix ms: ISO-8601 with a UTC offset
 * ("2026-11-25T18:00:00+01:00", "...T17:00:00Z", "...T17:00:00.250-05:00",
 * "+0100" or "+01" also; seconds optional; 'T' or one space between date
 * and time), or unix seconds ("1795000000", "1795000000.5", "@1795000000").
 * A time without an offset is refused (ambiguous): *why, if not NULL, says
 * what is wrong. */
bool parse_time_ms(const char *s, int64_t *unix_ms, const char **why);
/* --expires S|TIME: a plain number is seconds from acceptance (*rel_ms);
 * an ISO-8601 time or "@UNIX" is absolute (*abs_ms). Exactly one is set,
 * the other becomes 0. */
bool parse_expires(const char *s, int64_t *rel_ms, int64_t *abs_ms, const char **why);
/* --backoff BASE,FACTOR,MAX: two durations and a factor in [1, 1000]
 * ("2s,2,10m", "100ms,1,100ms"); BASE <= MAX. */
bool parse_backoff(const char *s, int64_t *base_ms, double *factor, int64_t *max_ms);
/* --rate: "10/s", "600/m", "5/h" or a bare number (per second) -> per
 * second; 0 means no rate limit. */
bool parse_rate(const char *s, double *per_second);

/* Queue names: [a-z0-9_.-]{1,64}. */
bool queue_name_ok(const char *s);
/* Limit keys: "task:NAME" (NAME [A-Za-z0-9_.:-]{1,128}) or "queue:Q". */
bool limit_key_ok(const char *s);
/* Task names: [A-Za-z0-9_.:-]{1,128}. */
bool task_name_ok(const char *s);

/* NAME:ARGS_JSON (chain, group, map --then): splits at the leftmost ':'
 * that leaves a valid task name on its left and valid JSON (or nothing) on
 * its right; without such a ':' the whole text is the name (no args). So
 * "test.add:[1,2]" -> test.add, [1,2]; "mod:resize" -> the name
 * "mod:resize"; "mod:resize:[3]" -> mod:resize, [3]; "a:1" -> a, 1 (write
 * "a:1:" for a task named "a:1" without args). name gets the name (namesz
 * >= 129); *json_text points into s, or is NULL for no args. false if no
 * valid name results. */
bool parse_task_arg(const char *s, char *name, size_t namesz, const char **json_text);
/* --state S,...: comma-separated state names -> bits (1 << state). */
bool parse_states(const char *s, unsigned *bits);
/* --since: an absolute time as parse_time_ms, or a duration with its unit
 * ("90m", "2h", "7d") meaning that long before now_ms. */
bool parse_since(const char *s, int64_t now_ms, int64_t *unix_ms, const char **why);

#endif
