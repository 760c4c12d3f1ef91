/*
 * outbox.h - the client's unacknowledged SUBMIT messages, kept so that they
 * can be resent with the SAME task ids (and the same req) until the broker
 * acknowledges them. Submission is idempotent on the id, so a resend after a
 * lost ack or a broker restart never creates a duplicate task.
 *
 * An entry owns its encoded body (the msgpack map of one SUBMIT) and records
 * which specs it carries (first, count), when it was last sent and the
 * current resend interval. The outbox does no I/O and never reads the clock:
 * callers pass now_ms (monotonic). Entries are few (the submit window), so
 * a plain array is kept in send order.
 */
#ifndef TASKQ_OUTBOX_H
#define TASKQ_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskq.h"

typedef struct {
    uint64_t req;          /* req of the SUBMIT; an ack carries it back */
    size_t first, count;   /* specs[first .. first+count) of the batch */
    void *body;            /* encoded SUBMIT body (owned) */
    size_t len;
    int64_t sent_at;       /* mono ms of the last send; 0 = not sent yet */
    int64_t interval_ms;   /* resend when now >= sent_at + interval_ms */
    uint32_t sends;        /* how many times it went out (since the last defer) */
    int64_t hold_until;    /* mono ms before which it is not sent; 0 = none */
} outbox_entry_t;

typedef struct outbox outbox_t;

/* NULL on allocation failure. */
outbox_t *outbox_new(void);
/* Frees every entry; accepts NULL; sets *self_p = NULL. */
void outbox_destroy(outbox_t **self_p);

/* Adds an unsent entry and takes *body_p (set to NULL, also on failure).
 * TASKQ_EINVAL if req is already present, TASKQ_ENOMEM. */
taskq_err_t outbox_add(outbox_t *self, uint64_t req, size_t first, size_t count, void **body_p,
                       size_t len, int64_t interval_ms);
/* Borrowed until the entry is acked; NULL if req is not in the outbox. */
outbox_entry_t *outbox_find(outbox_t *self, uint64_t req);
/* Removes and frees the entry of req. false if req is unknown (a late or
 * duplicate ack: the caller ignores it). */
bool outbox_ack(outbox_t *self, uint64_t req);
size_t outbox_count(const outbox_t *self);
/* Entry i in send order, borrowed; NULL if out of range. */
outbox_entry_t *outbox_at(outbox_t *self, size_t i);
/* Records a send of e at now_ms; a resend (not the first send) doubles the
 * interval, capped at max_interval_ms. */
void outbox_mark_sent(outbox_entry_t *e, int64_t now_ms, int64_t max_interval_ms);
/* Backpressure: the broker refused e (BUSY). It goes out again, as a first
 * send with the resend interval interval_ms, at until_ms and not before. */
void outbox_defer(outbox_entry_t *e, int64_t until_ms, int64_t interval_ms);
/* true if e must go (out again) at now_ms: not held, and never sent (since
 * the last defer) or its interval passed. */
bool outbox_is_due(const outbox_entry_t *e, int64_t now_ms);
/* Mono ms of the earliest (re)send among sent or held entries; INT64_MAX if
 * none. */
int64_t outbox_next_due_at(const outbox_t *self);

#endif
