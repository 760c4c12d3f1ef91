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
    proto_str_t queue;
    int32_t priority;
    int64_t expires_at; /* unix ms, 0 = never */
    uint8_t flags;      /* as inserted (store_new_task_t.flags) */
} store_queued_t;

typedef bool (*store_queued_fn)(const store_queued_t *row, void *arg); /* false: stop */
/* A running task (start-up lease rebuild). */
typedef void (*store_running_fn)(const taskq_id_t *id, uint32_t attempt, const char *worker,
                                 const char *name, const char *queue, void *arg);
/* A task that changed state in a timer verb (promoted, expired). */
typedef void (*store_task_fn)(const taskq_id_t *id, void *arg);

/* A task to insert: everything resolved by the broker. */
typedef struct {
    taskq_id_t id;
    proto_str_t name;
    proto_bin_t args;
    int64_t time_limit_ms;
    uint32_t max_attempts;        /* as submitted: 0 = not given */
    proto_str_t queue;            /* resolved, valid */
    int32_t priority;             /* 0..9 */
    int state;                    /* TASKQ_STATE_QUEUED or TASKQ_STATE_SCHEDULED */
    int64_t due_at;               /* SCHEDULED: unix ms it becomes queued; else 0 */
    int64_t expires_at;           /* unix ms, 0 = never */
    proto_retry_policy_t policy;  /* as submitted (zeros = not given) */
    proto_str_t schedule;         /* creating schedule, "" if none */
    int64_t submitted_at;         /* unix ms (broker clock) */
    /* lifecycle (issue 7); zero = none */
    taskq_id_t parent;            /* workflow parent */
    taskq_id_t group;             /* member of (with group_index) or callback of */
    uint32_t group_index;
    bool is_callback;             /* the chord callback of `group` */
    bool immutable;
    uint32_t deps_left;           /* > 0: state must be TASKQ_STATE_PENDING */
    proto_str_t unique_key;       /* "" = none (the broker resolved --unique) */
    int32_t unique_until;         /* 0 done, 1 start */
    int64_t result_ttl_ms;        /* 0 = store default (store_set_ttls) */
    taskq_id_t rerun_of;
    uint8_t flags;                /* the broker's notes, given back by next_ready */
} store_new_task_t;

/* A workflow group (group / chord / map). */
typedef struct {
    taskq_id_t id;
    uint32_t total, succeeded, failed; /* failed: any non-succeeded terminal */
    bool has_callback;
    taskq_id_t callback;
    int32_t on_fail;              /* 0 fail, 1 settle */
} store_group_t;

/* One member's end, for a chord callback's arguments (member order). */
typedef struct {
    uint32_t index;
    taskq_id_t id;
    int state;
    proto_bin_t result;           /* succeeded */
    proto_str_t error, code;      /* otherwise */
} store_member_t;
typedef void (*store_member_fn)(const store_member_t *m, void *arg);

/* Selection for bulk revoke / failed listing / rerun (fields zero = any). */
typedef struct {
    const taskq_id_t *group;      /* members and callback of the group */
    const char *queue, *name;
    const char *code;             /* exact, or prefix when it ends in '*' */
    unsigned states;              /* bit (1 << state), 0 = any */
    int64_t since_ms;             /* finished_at >= since_ms */
    size_t limit;                 /* 0 = no limit */
} store_filter_t;

/* What the store holds to decide a retry (borrowed strings, see above). */
typedef struct {
    proto_str_t name, queue;
    int state;
    uint32_t attempts, failures, max_attempts; /* max_attempts: 0 = not given */
    proto_retry_policy_t policy;
} store_policy_t;

/* How an attempt ended. */
typedef struct {
    int to_state;        /* SUCCEEDED, FAILED, QUEUED or RETRYING */
    bool failure;        /* failures += 1 */
    proto_bin_t result;  /* SUCCEEDED */
    proto_str_t code;    /* failure code ("" on success / rate_limited) */
    proto_str_t message; /* error message; FAILED: becomes the task's error */
    const char *label;   /* the attempt row's state: "succeeded", "failed", "retrying",
                            "requeued", "rate_limited", "revoked" */
    int32_t child_pid;
    int64_t due_at;      /* RETRYING: unix ms it becomes queued */
    int64_t now;         /* unix ms: finished_at of the attempt (and of the task if terminal) */
} store_outcome_t;

typedef struct {
    const char *name;
    bool paused;
    uint64_t max_pending;
} store_queue_t;
typedef void (*store_queue_fn)(const store_queue_t *q, void *arg);

typedef struct {
    uint32_t attempt;
    const char *worker;
    int32_t child_pid;
    int64_t started_at, finished_at;
    const char *state, *code, *message;
} store_attempt_t;
typedef void (*store_attempt_fn)(const store_attempt_t *a, void *arg);

typedef struct {
    const char *key;
    double rate;          /* per second, 0 = none */
    uint32_t burst;
    uint32_t max_running; /* 0 = none */
    double tokens;        /* bucket as of tokens_at */
    int64_t tokens_at;    /* unix ms */
    int64_t paused_until; /* unix ms */
} store_limit_t;
typedef void (*store_limit_fn)(const store_limit_t *l, void *arg);

typedef struct {
    const char *name, *cron, *task, *queue, *tz;
    proto_bin_t args;
    int32_t priority;     /* -1 = default */
    uint32_t max_attempts;
    int overlap;          /* 0 skip, 1 allow */
    int catchup;          /* 0 none, 1 last, 2 all */
    bool paused;
    int64_t next_at;      /* unix ms of the next nominal fire */
    int64_t last_fire_at; /* nominal ms of the last fire, 0 = never */
    taskq_id_t last_task_id;
    uint64_t fires, skipped;
    int64_t created_at;
} store_schedule_t;
typedef void (*store_schedule_fn)(const store_schedule_t *s, void *arg);

/* Opens (creating if absent) "PATH" or "sqlite:PATH". Caller owns the store;
 * NULL and *err = TASKQ_ESTORE on failure (logged). */
store_t *store_open(const char *url, store_durability_t durability, taskq_err_t *err);
/* Checkpoints the WAL, finalises statements, closes; sets *self_p = NULL. */
void store_close(store_t **self_p);

taskq_err_t store_begin(store_t *self);
taskq_err_t store_commit(store_t *self);
void store_rollback(store_t *self);

/* ---- tasks -------------------------------------------------------------- */

/* Inserts a task (creating its queue row if new); a known id is a no-op
 * (*inserted = false). */
taskq_err_t store_insert_task(store_t *self, const store_new_task_t *t, bool *inserted);
/* Fills *rec (strings borrowed, see above). */
taskq_err_t store_get_task(store_t *self, const taskq_id_t *id, proto_task_rec_t *rec);
/* Retry inputs of a task. */
taskq_err_t store_get_policy(store_t *self, const taskq_id_t *id, store_policy_t *out);
/* Calls fn for up to limit queued tasks of `queue`, by priority (9 first)
 * then submission order, skipping tasks whose name is one of the nexclude
 * names in exclude. O(log n) per row without exclusions; with them
 * O(L log n) where L is the number of distinct names queued in the queue. */
taskq_err_t store_next_ready(store_t *self, const char *queue, const char *const *exclude,
                             size_t nexclude, size_t limit, store_queued_fn fn, void *arg);
/* queued with attempts = attempt - 1 -> running attempt, on worker;
 * store_attempts lists it from now on (state "running"). */
taskq_err_t store_mark_running(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               const char *worker, int64_t started_at, int64_t lease_deadline_at);
/* running with attempts = attempt -> o->to_state, recording the attempt's
 * end; ESTALE if not running that attempt. */
taskq_err_t store_end_attempt(store_t *self, const taskq_id_t *id, uint32_t attempt,
                              const store_outcome_t *o);
/* queued -> expired (terminal) at now; ESTALE if not queued. */
taskq_err_t store_expire_task(store_t *self, const taskq_id_t *id, int64_t now);
/* Progress of running attempt; ESTALE if it is not current. */
taskq_err_t store_set_progress(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               uint64_t current, uint64_t total, proto_str_t message);
/* Calls fn for every running task (start-up lease rebuild). */
taskq_err_t store_load_running(store_t *self, store_running_fn fn, void *arg);
/* Up to limit scheduled / retrying tasks with due_at <= now -> queued, in
 * due order; fn for each. *next_due: the earliest due_at still waiting
 * afterwards, INT64_MAX if none. */
taskq_err_t store_promote_due(store_t *self, int64_t now, size_t limit, store_task_fn fn,
                              void *arg, size_t *promoted, int64_t *next_due);
/* Up to limit queued / scheduled / retrying tasks with 0 < expires_at <=
 * now -> expired; fn for each. *next_expiry as above. */
taskq_err_t store_expire_due(store_t *self, int64_t now, size_t limit, store_task_fn fn,
                             void *arg, size_t *expired, int64_t *next_expiry);
/* Every attempt of a task, oldest first; ENOTFOUND if no such task. */
taskq_err_t store_attempts(store_t *self, const taskq_id_t *id, store_attempt_fn fn, void *arg);
/* Whether a task is terminal (false if unknown). */
taskq_err_t store_is_terminal(store_t *self, const taskq_id_t *id, bool *terminal);

/* counts[state] over all queues, and *total rows: O(1), from memory. The
 * counts are kept by the verbs above, restored by store_rollback, persisted
 * by store_commit (start-up reads them, never counts the table); as of
 * the current transaction, uncommitted changes included. */
taskq_err_t store_counts(store_t *self, uint64_t counts[TASKQ_NSTATES], uint64_t *total);
/* The same for one queue (all zero for an unknown queue). O(1). */
void store_queue_counts(store_t *self, const char *queue, uint64_t counts[TASKQ_NSTATES]);
/* Submission time (unix ms) of the oldest queued task of queue, 0 if none. */
taskq_err_t store_queue_oldest(store_t *self, const char *queue, int64_t *submitted_at);
/* Deletes up to limit terminal tasks finished before before_at (and their
 * attempts); *purged = rows. */
taskq_err_t store_purge_finished(store_t *self, int64_t before_at, size_t limit, size_t *purged);

/* ---- lifecycle (issue 7) ------------------------------------------------- */

/* TTLs applied when a task becomes terminal (purge_at = finished_at + TTL):
 * result_ttl_ms for succeeded / revoked / expired unless the task has its
 * own, failed_ttl_ms for failed. Call once after open. */
void store_set_ttls(store_t *self, int64_t result_ttl_ms, int64_t failed_ttl_ms);
/* Deletes up to limit terminal tasks with purge_at <= now (and their
 * attempts; group rows whose members are all gone); *purged = rows. Adds
 * to the persistent purged counter and raises the purge horizon. */
taskq_err_t store_purge_due(store_t *self, int64_t now, size_t limit, size_t *purged);
/* Deletes up to limit tasks in terminal `state` finished before before_at. */
taskq_err_t store_purge_state(store_t *self, int state, int64_t before_at, size_t limit,
                              size_t *purged);
/* Records ever purged, and the largest id timestamp (ms, UUIDv7 bytes 0-5)
 * of a purged task: an unknown id at or below it answers EPURGED. O(1). */
void store_purge_info(store_t *self, uint64_t *purged, int64_t *horizon_ms);

taskq_err_t store_group_insert(store_t *self, const store_group_t *g); /* EEXIST-safe: a known id is a no-op */
taskq_err_t store_group_get(store_t *self, const taskq_id_t *id, store_group_t *out); /* ENOTFOUND */
/* A member ended: succeeded or failed += 1; *out: the group after. */
taskq_err_t store_group_member_ended(store_t *self, const taskq_id_t *id, bool ok,
                                     store_group_t *out);
/* Members in index order (ids only: fn gets m->id, m->index). */
taskq_err_t store_group_members(store_t *self, const taskq_id_t *id, store_member_fn fn,
                                void *arg);
/* Members in index order with their end (for the callback's args). */
taskq_err_t store_group_results(store_t *self, const taskq_id_t *id, store_member_fn fn,
                                void *arg);
/* Pending tasks whose parent is id (their ids). */
taskq_err_t store_children(store_t *self, const taskq_id_t *parent, store_task_fn fn, void *arg);
/* What a pending task needs to be released: its args, immutability and
 * group / callback role (borrowed until the next call). */
typedef struct {
    int state;
    proto_bin_t args;
    bool immutable, is_callback;
    taskq_id_t group;
    uint32_t deps_left;
} store_pending_t;
taskq_err_t store_get_pending(store_t *self, const taskq_id_t *id, store_pending_t *out);
/* pending: deps_left -= 1; when it reaches 0 the task becomes queued; if
 * new_args.ptr is not NULL the args are replaced first. *queued: it did. */
taskq_err_t store_dep_done(store_t *self, const taskq_id_t *id, proto_bin_t new_args,
                           bool *queued);
/* Any non-terminal state -> revoked (terminal) at now with the reason as
 * its error. *prev_state and *attempt (the running attempt, if it ran)
 * tell the caller what to undo. ETERMINAL (*prev_state = its state) if
 * terminal already; ENOTFOUND. */
taskq_err_t store_revoke(store_t *self, const taskq_id_t *id, const char *reason, int64_t now,
                         int *prev_state, uint32_t *attempt);
/* pending / queued -> failed at now with code and message (e.g. a chord
 * callback whose results are too large): not an attempt. */
taskq_err_t store_fail_unrun(store_t *self, const taskq_id_t *id, const char *code,
                             const char *message, int64_t now);
/* Calls fn with the id of every task matching f (non-terminal only when
 * f->states is 0 and terminal_ok is false). */
taskq_err_t store_select(store_t *self, const store_filter_t *f, bool terminal_ok,
                         store_task_fn fn, void *arg);
/* Failed tasks matching f, newest finished first (rec borrowed for fn). */
typedef void (*store_rec_fn)(const proto_task_rec_t *rec, void *arg);
taskq_err_t store_list_failed(store_t *self, const store_filter_t *f, store_rec_fn fn,
                              void *arg);
/* A new queued task copying old's name, args, queue, priority, time limit
 * and policy, with rerun_of = old; old.rerun_by = new_id (its state is
 * unchanged). ETERMINAL unless old is failed; EEXIST if already re-run. */
taskq_err_t store_rerun(store_t *self, const taskq_id_t *old, const taskq_id_t *new_id,
                        int64_t now);

/* Unique keys: one row per key: holder, released (the holder ended, or
 * started with until=start) and hold_until (unix ms, --unique-for). */
typedef struct {
    taskq_id_t holder;
    bool released;
    int64_t hold_until;
} store_unique_t;
taskq_err_t store_unique_get(store_t *self, const char *key, store_unique_t *out); /* ENOTFOUND */
taskq_err_t store_unique_put(store_t *self, const char *key, const taskq_id_t *holder,
                             int64_t hold_until); /* upsert, released = false */
/* The holder's key (if any) is released: until must match the task's
 * unique_until (0 at its end, 1 at its start), or -1 for either. */
taskq_err_t store_unique_release(store_t *self, const taskq_id_t *holder, int until);

/* ---- queues --------------------------------------------------------------- */

/* Creates the queue if unknown (not paused, no max_pending); *created. */
taskq_err_t store_queue_ensure(store_t *self, const char *name, bool *created);
taskq_err_t store_queue_set(store_t *self, const store_queue_t *q); /* upsert */
/* Every known queue, by name ("default" always exists). */
taskq_err_t store_queue_list(store_t *self, store_queue_fn fn, void *arg);

/* ---- limits ---------------------------------------------------------------- */

taskq_err_t store_limit_put(store_t *self, const store_limit_t *l); /* upsert */
taskq_err_t store_limit_rm(store_t *self, const char *key);         /* ENOTFOUND */
taskq_err_t store_limit_list(store_t *self, store_limit_fn fn, void *arg);
/* Saves a bucket's state (tokens, tokens_at, paused_until) only. */
taskq_err_t store_limit_save_bucket(store_t *self, const char *key, double tokens,
                                    int64_t tokens_at, int64_t paused_until);

/* ---- schedules ------------------------------------------------------------ */

/* Inserts; TASKQ_EEXIST if the name is taken (unless replace). */
taskq_err_t store_schedule_put(store_t *self, const store_schedule_t *s, bool replace);
taskq_err_t store_schedule_rm(store_t *self, const char *name); /* ENOTFOUND */
taskq_err_t store_schedule_set_paused(store_t *self, const char *name, bool paused);
taskq_err_t store_schedule_list(store_t *self, store_schedule_fn fn, void *arg);
/* Records a fire / skip: sets next_at, and if fired last_fire_at and
 * last_task_id; adds to the counters. */
taskq_err_t store_schedule_advance(store_t *self, const char *name, int64_t next_at,
                                   int64_t last_fire_at, const taskq_id_t *last_task_id,
                                   uint64_t add_fires, uint64_t add_skipped);

#endif
