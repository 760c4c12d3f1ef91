/*
 * ratelimit.h - global rate and concurrency limits, decided at dispatch.
 *
 * A limit is a broker object on a key "task:NAME" or "queue:Q" with a
 * token bucket (rate per second, capacity burst) and/or max_running. The
 * bucket is checked and taken by every dispatch (retries included); its
 * state is written to the store in the same turn (limits_save), so a
 * broker restart grants no fresh burst. max_running counts live leases of
 * the key, which the lease table keeps (lease_key_count): the permit is the
 * lease. No I/O and no clock here: times (unix ms, the broker's clock) are
 * passed in. The table mirrors the store's limits rows; after a failed
 * commit the broker reloads it.
 */
#ifndef TASKQ_RATELIMIT_H
#define TASKQ_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lease.h"
#include "store.h"

typedef struct limits limits_t;

typedef struct {
    char key[TQ_LIMIT_KEY_MAX + 1];
    double rate;          /* tokens per second, 0 = no rate limit */
    uint32_t burst;       /* bucket capacity */
    uint32_t max_running; /* 0 = none */
    double tokens;
    int64_t tokens_at;    /* unix ms the tokens were counted at */
    int64_t paused_until; /* unix ms; the bucket gives nothing before */
    bool dirty;           /* bucket changed this turn: save it */
} limit_t;

limits_t *limits_new(void);
void limits_destroy(limits_t **self_p);
/* Replaces the table with the store's rows. */
taskq_err_t limits_load(limits_t *self, store_t *store);
size_t limits_count(const limits_t *self);
/* Borrowed, NULL if none. */
limit_t *limits_find(limits_t *self, const char *key);
/* Inserts or replaces a limit's settings (a new bucket starts full). */
limit_t *limits_set(limits_t *self, const char *key, double rate, uint32_t burst,
                    uint32_t max_running, int64_t now);
bool limits_rm(limits_t *self, const char *key);

/* Whether one more dispatch of a task `name` in `queue` is allowed now by
 * both keys; when it is and take is true, takes a token from each bucket. */
bool limits_admit(limits_t *self, const lease_table_t *leases, const char *name,
                  const char *queue, int64_t now, bool take);
/* Whether the queue's own limit ("queue:Q") allows a dispatch now. */
bool limits_queue_open(limits_t *self, const lease_table_t *leases, const char *queue,
                       int64_t now);
/* Pauses the bucket of key until `until` (rate-limited by an outside API). */
void limits_pause(limits_t *self, const char *key, int64_t until);
/* Earliest time (unix ms) a currently empty or paused bucket gives a token,
 * INT64_MAX if none waits (the loop wakes then to dispatch). */
int64_t limits_next_refill(limits_t *self, int64_t now);
/* Writes every dirty bucket to the store (in the turn's transaction). */
taskq_err_t limits_save(limits_t *self, store_t *store);
/* Iteration for listings: *cursor = 0 first; NULL at the end. */
limit_t *limits_next(limits_t *self, size_t *cursor);
/* Tokens now (refilled, capped), without changing the bucket. */
double limits_tokens_now(const limit_t *l, int64_t now);

#endif
