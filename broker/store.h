/*
 * store.h - the broker's durable truth: every task and its state, as domain
 * verbs (no SQL outside the backend; store_sqlite.c is the only sqlite3.h
 * user). One transaction per loop turn: store_begin, the turn's verbs,
 * store_commit. Replies wait for store_commit: an ack must never precede
 * durability; a failed commit means TASKQ_ESTORE for every request of the
 * turn and no ack at all.
 *
 * Every verb returns TASKQ_OK, TASKQ_ENOTFOUND (no such task), TASKQ_ESTALE
 * (the compare-and-set did not match: wrong state or attempt), or
 * TASKQ_ESTORE (the database failed; logged with its message here).
 * Borrowed pointers handed out (records, rows) live until the next call of
 * the same verb or the end of the transaction.
 */
#ifndef TASKQ_STORE_H
#define TASKQ_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct store store_t;

/* full: synchronous=FULL, a committed turn survives power loss.
 * normal: synchronous=NORMAL in WAL, survives a process crash (kill -9) but
 * the last committed turns may be lost on power loss. */
typedef enum { STORE_DURABILITY_FULL = 0, STORE_DURABILITY_NORMAL = 1 } store_durability_t;

/* A queued task handed to dispatch (borrowed for the callback). */
typedef struct {
    taskq_id_t id;
    proto_str_t name;
    proto_bin_t args;
    int64_t time_limit_ms;
    uint32_t attempts; /* dispatches so far: the next attempt is attempts + 1 */
} store_queued_t;

typedef bool (*store_queued_fn)(const store_queued_t *row, void *arg); /* false: stop */
typedef void (*store_running_fn)(const taskq_id_t *id, uint32_t attempt, const char *worker,
                                 void *arg);

/* Opens (creating if absent) "PATH" or "sqlite:PATH". Caller owns the store;
 * NULL and *err = TASKQ_ESTORE on failure (logged). */
store_t *store_open(const char *url, store_durability_t durability, taskq_err_t *err);
/* Checkpoints the WAL, finalises statements, closes; sets *self_p = NULL. */
void store_close(store_t **self_p);

taskq_err_t store_begin(store_t *self);
taskq_err_t store_commit(store_t *self);
void store_rollback(store_t *self);

/* Inserts a queued task; a known id is a no-op (*inserted = false). */
taskq_err_t store_insert_task(store_t *self, const proto_task_spec_t *spec,
                              uint32_t max_attempts, int64_t submitted_at, bool *inserted);
/* Fills *rec (strings borrowed, see above). */
taskq_err_t store_get_task(store_t *self, const taskq_id_t *id, proto_task_rec_t *rec);
/* Calls fn for up to limit queued tasks, oldest (lowest seq) first. */
taskq_err_t store_next_queued(store_t *self, size_t limit, store_queued_fn fn, void *arg);
/* queued with attempts = attempt - 1 -> running attempt, on worker. */
taskq_err_t store_mark_running(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               const char *worker, int64_t started_at, int64_t lease_deadline_at);
/* running with attempts = attempt -> succeeded (ok) or failed. */
taskq_err_t store_finish(store_t *self, const taskq_id_t *id, uint32_t attempt, bool ok,
                         proto_bin_t result, proto_str_t error, int32_t child_pid,
                         int64_t finished_at);
/* running with attempts = attempt -> queued, or failed with "attempt limit
 * (N) reached: <reason>" when attempts >= max_attempts. *state_out: the new state. */
taskq_err_t store_requeue(store_t *self, const taskq_id_t *id, uint32_t attempt,
                          const char *reason, int64_t now_at, int *state_out);
/* Progress of running attempt; ESTALE if it is not current. */
taskq_err_t store_set_progress(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               uint64_t current, uint64_t total, proto_str_t message);
/* Calls fn for every running task (start-up lease rebuild). */
taskq_err_t store_load_running(store_t *self, store_running_fn fn, void *arg);
/* counts[state] for the 4 states, and *total rows: O(1), from memory. The
 * counts are kept by the verbs above, restored by store_rollback, persisted
 * by store_commit (start-up reads one row, never counts the table); as of
 * the current transaction, uncommitted changes included. */
taskq_err_t store_counts(store_t *self, uint64_t counts[4], uint64_t *total);
/* Deletes up to limit terminal tasks finished before before_at; *purged = rows. */
taskq_err_t store_purge_finished(store_t *self, int64_t before_at, size_t limit, size_t *purged);

#endif
