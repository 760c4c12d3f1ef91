/*
 * retrypol.h - the retry decision: backoff with jitter, code patterns,
 * and whether a failed attempt is retried. Pure (no I/O, no clock: the
 * random draw comes from the caller).
 */
#ifndef TASKQ_RETRYPOL_H
#define TASKQ_RETRYPOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* A resolved policy (defaults filled). */
typedef struct {
    uint32_t max_attempts;
    int64_t base_ms;
    double factor;
    int64_t max_ms;
    int jitter; /* proto_jitter_t */
    char retry_on[TQ_PATTERNS_MAX + 1];    /* "" = every code */
    char no_retry_on[TQ_PATTERNS_MAX + 1]; /* "" = none */
} retrypol_t;

/* Resolves submit > registration > defaults (broker_max_attempts, then
 * TQ_DEFAULT_BACKOFF_*, equal jitter) field by field. */
void retrypol_resolve(retrypol_t *out, uint32_t submit_max_attempts,
                      const proto_retry_policy_t *submit, const proto_retry_policy_t *registered,
                      uint32_t broker_max_attempts);

/* Parses "BASE,FACTOR,MAX" with durations like "2s", "500ms", "10m", "1h"
 * (a bare number is seconds): e.g. "2s,2,10m". 0 on success; -1 with err. */
int retrypol_parse_backoff(const char *s, int64_t *base_ms, double *factor, int64_t *max_ms,
                           char *err, size_t errsz);
/* Parses a duration ("30", "30s", "500ms", "10m", "2h", "1d"); -1 if bad. */
int retrypol_parse_duration_ms(const char *s, int64_t *out_ms);
/* "equal" / "full" / "none" -> proto_jitter_t, or -1. */
int retrypol_jitter_from_name(const char *s, size_t len);
const char *retrypol_jitter_name(int jitter);

/* true if code matches the comma list (entries exact, or prefix when they
 * end in '*': "http.4*" matches "http.404"; "*" matches all). Empty list
 * matches nothing. Whitespace around entries is ignored. */
bool retrypol_match(const char *patterns, const char *code, size_t code_len);
/* Validates a pattern list (each entry a code, optionally ending in '*'). */
bool retrypol_patterns_valid(const char *patterns, size_t len);

/* The delay before retry number `failures` (>= 1: the delay after the
 * first failure is base): d = min(max, base * factor^(failures-1)), then
 * jitter: none -> d; equal -> d/2 + u*(d/2); full -> u*d, with u in [0,1)
 * given by the caller. */
int64_t retrypol_delay_ms(const retrypol_t *p, uint32_t failures, double u);

/* Whether a failed attempt with this code is retried: not if permanent,
 * not if failures (already incremented) >= max_attempts, not if code
 * matches no_retry_on, not if retry_on is non-empty and code matches it
 * not. */
bool retrypol_should_retry(const retrypol_t *p, uint32_t failures, const char *code,
                           size_t code_len, bool permanent);

#endif
