/*
 * lease.h - the lease table: which (task, attempt) each worker node holds and
 * until when. One lease per task id; the attempt number is the fencing token.
 * Deadlines are monotonic ms passed in by the caller: lease does no I/O, never
 * reads the clock and knows nothing of SQLite. What an expiry means (requeue
 * or fail) is decided by the caller (handlers.c) and recorded by the store.
 * The table is an in-memory index rebuilt from store_load_running at start-up.
 */
#ifndef TASKQ_LEASE_H
#define TASKQ_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "tqlimits.h"
#include "taskq.h"

typedef struct lease_table lease_table_t;

typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    char node[TQ_NODE_MAX + 1]; /* node id, NUL-terminated */
    int64_t deadline_at;        /* monotonic ms */
    char name[TQ_NAME_MAX + 1]; /* task name: the lease is a permit of "task:NAME" */
    char queue[TQ_QUEUE_MAX + 1]; /* and of "queue:Q" */
    uint8_t flags;              /* the caller's notes on the task (0xFF after grant) */
} lease_t;

/* Called with a copy of a lease that the table no longer holds. */
typedef void (*lease_fn)(const lease_t *lease, void *arg);

lease_table_t *lease_table_new(void);
void lease_table_destroy(lease_table_t **self_p);

/* Grants (id, attempt) of task `name` in `queue` to node until deadline_at,
 * replacing any lease on id. Each lease counts as one permit of the limit
 * keys "task:NAME" and "queue:Q" (lease_key_count) until it is released or
 * expires: a concurrency permit cannot outlive its lease. */
void lease_grant(lease_table_t *self, const taskq_id_t *id, uint32_t attempt, const char *node,
                 const char *name, const char *queue, int64_t deadline_at);
/* Sets the caller's flags of the lease on id (no-op if none). */
void lease_set_flags(lease_table_t *self, const taskq_id_t *id, uint8_t flags);
/* TASKQ_OK if (id, attempt) is the current lease (and held by node, unless
 * node is NULL); TASKQ_ESTALE otherwise. */
taskq_err_t lease_check(const lease_table_t *self, const taskq_id_t *id, uint32_t attempt,
                        const char *node);
/* Moves the deadline of a current lease; TASKQ_ESTALE if it is not current. */
taskq_err_t lease_renew(lease_table_t *self, const taskq_id_t *id, uint32_t attempt,
                        const char *node, int64_t deadline_at);
/* Drops the lease on id (any attempt); TASKQ_ENOTFOUND if there is none. */
taskq_err_t lease_release(lease_table_t *self, const taskq_id_t *id);
/* The lease on id (borrowed until the next change), or NULL. */
const lease_t *lease_find(const lease_table_t *self, const taskq_id_t *id);
/* Removes every lease whose deadline <= now_ms and calls fn for each; returns
 * ms until the next deadline, or -1 if there is none. */
int64_t lease_expire(lease_table_t *self, int64_t now_ms, lease_fn fn, void *arg);
/* The earliest deadline of any lease, or INT64_MAX if there is none. */
int64_t lease_next_deadline(lease_table_t *self);
/* Calls fn for each lease held by node (the leases stay; fn may release them). */
void lease_foreach_node(lease_table_t *self, const char *node, lease_fn fn, void *arg);
size_t lease_count(const lease_table_t *self);
size_t lease_node_count(const lease_table_t *self, const char *node);
/* Live leases of a limit key ("task:NAME" or "queue:Q"). */
size_t lease_key_count(const lease_table_t *self, const char *key);

#endif
