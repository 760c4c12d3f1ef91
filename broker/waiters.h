/*
 * waiters.h - who waits for which task id (WAIT registrations): task id ->
 * list of (peer identity, req, deadline). Registrations live in memory only
 * (a broker restart loses them; clients re-send WAIT after 2 s of silence).
 * Bounded: at most max_total entries; beyond that waiters_add says EBUSY.
 * No I/O, no clock. Peer identities are interned (one copy per peer).
 */
#ifndef TASKQ_WAITERS_H
#define TASKQ_WAITERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskq.h"

typedef struct waiters waiters_t;

/* Called for each waiter taken; identity is borrowed for the call; batch:
 * the WAIT said the peer takes its RESULTs in BATCH messages. */
typedef void (*waiters_fn)(const taskq_id_t *id, const void *identity, size_t identity_len,
                           uint64_t req, bool batch, void *arg);

waiters_t *waiters_new(size_t max_total);
void waiters_destroy(waiters_t **self_p);

/* Registers (peer, req) for id until deadline_at (monotonic ms). A repeat of
 * the same (peer, req, id) only extends the deadline. TASKQ_EBUSY when full. */
taskq_err_t waiters_add(waiters_t *self, const taskq_id_t *id, const void *identity,
                        size_t identity_len, uint64_t req, int64_t deadline_at, bool batch);
/* Removes every waiter of id, calling fn for each; returns how many. */
size_t waiters_take(waiters_t *self, const taskq_id_t *id, waiters_fn fn, void *arg);
/* Drops registrations whose deadline <= now_ms; returns how many. O(entries). */
size_t waiters_expire(waiters_t *self, int64_t now_ms);
size_t waiters_count(const waiters_t *self);

#endif
