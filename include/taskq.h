/*
 * taskq.h - the public client API of taskq (libtaskq).
 *
 * A client handle talks to one broker over a ZeroMQ DEALER socket. It submits
 * tasks (one, or a pipelined batch), reads a task's status, and waits for one
 * or many results. Every call is synchronous and has a deadline.
 *
 * Ownership: a function returning `T *` through an out-parameter gives the
 * caller an owned object, freed with the matching `_destroy(&p)`, which also
 * sets the caller's pointer to NULL. `const char *` fields inside a returned
 * object are borrowed from it and live as long as it does.
 *
 * Threads: one handle per thread. Handles are not shared between threads and
 * never cross a fork().
 *
 * Errors: every fallible call returns taskq_err_t; taskq_strerror() names it.
 * The numbers are the same as the ERROR codes on the wire (docs/protocol.md).
 */
#ifndef TASKQ_H
#define TASKQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TASKQ_BUILDING) && defined(__GNUC__)
#define TASKQ_EXPORT __attribute__((visibility("default")))
#else
#define TASKQ_EXPORT
#endif

#define TASKQ_VERSION_MAJOR 0
#define TASKQ_VERSION_MINOR 1
#define TASKQ_DEFAULT_BROKER "tcp://127.0.0.1:5555"

/* Error codes. Wire-stable: never renumber, only append. */
typedef enum {
    TASKQ_OK = 0,
    TASKQ_EINVAL = 1,     /* invalid argument or usage */
    TASKQ_ENOMEM = 2,     /* out of memory */
    TASKQ_ETIMEDOUT = 3,  /* deadline passed before an answer */
    TASKQ_EPROTO = 4,     /* malformed message */
    TASKQ_EVERSION = 5,   /* peer speaks another protocol version */
    TASKQ_ETOOBIG = 6,    /* a frame, string or count exceeds a limit */
    TASKQ_ENOTFOUND = 7,  /* no such task */
    TASKQ_ESTALE = 8,     /* report for an attempt that is no longer current */
    TASKQ_EBUSY = 9,      /* broker refuses more work for now (backpressure) */
    TASKQ_ECLOSED = 10,   /* handle or broker is shutting down */
    TASKQ_ESTORE = 11,    /* the broker's store failed; nothing was acknowledged */
    TASKQ_ESYS = 12,      /* a system call failed (see errno in logs) */
    TASKQ_EINTERNAL = 13, /* a bug: please report */
    TASKQ_EUNREACH = 14,  /* cannot reach the broker */
    TASKQ_ENAME = 15,     /* a name is not in the allowed character set */
    TASKQ_EUNKNOWN = 16,  /* unknown message type */
    TASKQ_EEXIST = 17,    /* already exists (schedule name) */
    TASKQ_ENOQUEUE = 18,  /* unknown queue (broker runs with --strict-queues) */
    TASKQ_EPURGED = 19,   /* the task ended and its record was deleted after its TTL */
    TASKQ_ETERMINAL = 20, /* the task is already terminal (e.g. revoke of a finished task) */
} taskq_err_t;

/* Never returns NULL; unknown codes give "unknown error". */
TASKQ_EXPORT const char *taskq_strerror(int err);
/* Short stable symbol, e.g. "ETIMEDOUT"; never NULL. */
TASKQ_EXPORT const char *taskq_err_name(int err);

/* Task states. Terminal: SUCCEEDED, FAILED, REVOKED, EXPIRED. Wire-stable
 * numbers; the legal transitions are listed in docs/tasks.md. */
typedef enum {
    TASKQ_STATE_QUEUED = 0,    /* may run now */
    TASKQ_STATE_RUNNING = 1,   /* leased to a worker */
    TASKQ_STATE_SUCCEEDED = 2,
    TASKQ_STATE_FAILED = 3,
    TASKQ_STATE_SCHEDULED = 4, /* waiting for its ETA / countdown */
    TASKQ_STATE_RETRYING = 5,  /* waiting for its retry backoff */
    TASKQ_STATE_REVOKED = 6,
    TASKQ_STATE_EXPIRED = 7,   /* did not start before its expiry */
    TASKQ_STATE_PENDING = 8,   /* waiting for workflow parents (reserved) */
} taskq_state_t;
#define TASKQ_NSTATES 9

/* "queued", "running", "succeeded", "failed", "scheduled", "retrying",
 * "revoked", "expired", "pending"; "unknown" otherwise. */
TASKQ_EXPORT const char *taskq_state_name(int state);
TASKQ_EXPORT int taskq_state_is_terminal(int state);
/* The state number for a name above, or -1. */
TASKQ_EXPORT int taskq_state_from_name(const char *name);

/* 128-bit task id, time-ordered (UUIDv7 layout). All-zero means "unset". */
typedef struct {
    uint8_t b[16];
} taskq_id_t;

#define TASKQ_ID_STRLEN 36 /* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */

/* Fills *id with a fresh UUIDv7 (ms timestamp + random). */
TASKQ_EXPORT void taskq_id_generate(taskq_id_t *id);
/* Writes 36 chars + NUL into out. */
TASKQ_EXPORT void taskq_id_format(const taskq_id_t *id, char out[TASKQ_ID_STRLEN + 1]);
/* Accepts the 36-char form or 32 hex digits; TASKQ_EINVAL otherwise. */
TASKQ_EXPORT taskq_err_t taskq_id_parse(const char *s, taskq_id_t *id);
TASKQ_EXPORT int taskq_id_is_zero(const taskq_id_t *id);

/* ---- client handle ---------------------------------------------------- */

typedef struct taskq_client taskq_client_t;

/* Connects to `brokers` (a comma-separated endpoint list; only the first is
 * used today). NULL means $TASKQ_BROKER, else TASKQ_DEFAULT_BROKER. Does not
 * block: the connection is made in the background. Returns NULL and sets
 * *err (if err is not NULL) on failure. Caller owns the handle. */
TASKQ_EXPORT taskq_client_t *taskq_client_new(const char *brokers, taskq_err_t *err);
/* Closes and frees; accepts NULL and *self_p == NULL; sets *self_p = NULL. */
TASKQ_EXPORT void taskq_client_destroy(taskq_client_t **self_p);
/* How long submit/status/workers/stats wait for an answer (default 5000 ms).
 * Within it, unacknowledged submissions are resent with the same ids. */
TASKQ_EXPORT void taskq_client_set_timeout(taskq_client_t *self, int64_t timeout_ms);
/* Backpressure: when the broker answers BUSY (a queue or the broker is at
 * its max_pending), submit fails fast with TASKQ_EBUSY by default
 * (block_ms 0). With block_ms > 0 it retries the same task ids after the
 * broker's retry-after until accepted or block_ms passes (TASKQ_EBUSY). */
TASKQ_EXPORT void taskq_client_set_block(taskq_client_t *self, int64_t block_ms);
/* The last BUSY answer's details (queue "" = broker-wide limit). */
typedef struct {
    char queue[65];
    uint64_t depth, limit;
    int64_t retry_after_ms;
} taskq_busy_info_t;
TASKQ_EXPORT void taskq_client_last_busy(const taskq_client_t *self, taskq_busy_info_t *out);

/* One task to submit. `args` is one msgpack-encoded value (usually an
 * array); NULL/0 means an empty array. `id` is in/out: if all-zero a fresh
 * id is generated and written back. Submitting an id the broker already has
 * is a no-op that succeeds (idempotent retries). */
/* A zero-initialised spec plus a name is a valid task with every default:
 * queue chosen by the broker's routes (else "default"), priority 5, runs
 * at once, never expires, 3 attempts, backoff 2s,2,10m with equal jitter. */
typedef struct {
    taskq_id_t id;
    const char *name;       /* [A-Za-z0-9_.:-]{1,128} */
    const void *args;       /* borrowed msgpack bytes */
    size_t args_len;
    int64_t time_limit_ms;  /* hard limit, 0 = the worker's default */
    uint32_t max_attempts;  /* 0 = task registration's, else broker default (3) */
    /* --- dispatch policy (docs/tasks.md) --- */
    const char *queue;      /* [a-z0-9_.-]{1,64}; NULL/"" = broker routing */
    int has_priority;       /* 0: default priority 5 */
    int priority;           /* 0..9, 9 runs first (when has_priority) */
    int64_t countdown_ms;   /* > 0: run no sooner than this many ms after the
                               broker accepts it (broker clock) */
    int64_t eta_ms;         /* > 0: run no sooner than this unix time (ms) */
    int64_t expires_in_ms;  /* > 0: expire if not started this long after accept */
    int64_t expires_at_ms;  /* > 0: expire if not started by this unix time (ms) */
    int64_t backoff_base_ms;/* 0 = default (2000) */
    double backoff_factor;  /* 0 = default (2.0); >= 1 */
    int64_t backoff_max_ms; /* 0 = default (600000) */
    const char *jitter;     /* "equal" (default), "full", "none"; NULL = default */
    const char *retry_on;   /* comma list of codes, '*' suffix = prefix; NULL = all */
    const char *no_retry_on;/* comma list of codes never retried; NULL = none */
    /* --- lifecycle (docs/tasks.md) --- */
    const char *unique_key; /* at most one live task per key; NULL = none */
    int unique;             /* 1: key = hash of (name, canonical args, queue) */
    const char *unique_until; /* "done" (default: held until terminal) | "start" */
    int64_t unique_for_ms;  /* > 0: also held this long after submit (a throttle) */
    int64_t result_ttl_ms;  /* > 0: keep the record this long after it ends
                               (succeeded / revoked / expired); 0 = broker default */
    int immutable;          /* workflows: do not append the parent's result to args */
    /* --- filled by the broker's acknowledgement --- */
    char queue_out[65];     /* the queue the task went to */
    int soft_limit;         /* 1: the queue is past 80 % of its max_pending */
    int duplicate;          /* 1: a live task holds the unique key: nothing was
                               created and holder_id is that task (not an error) */
    taskq_id_t holder_id;
} taskq_task_spec_t;

/* Submits one task; returns after the broker has committed it. */
TASKQ_EXPORT taskq_err_t taskq_submit(taskq_client_t *self, taskq_task_spec_t *spec);
/* Submits n tasks pipelined in chunks (not one round trip each). Returns
 * TASKQ_OK if every task was acknowledged; else the first error. If
 * `results` is not NULL it receives one code per task. */
TASKQ_EXPORT taskq_err_t taskq_submit_batch(taskq_client_t *self, taskq_task_spec_t *specs,
                                            size_t n, taskq_err_t *results);

/* A task's record as the broker holds it. Owned by the caller. */
typedef struct {
    taskq_id_t id;
    const char *name;
    int state;                /* taskq_state_t */
    uint32_t attempts;        /* dispatches so far */
    uint32_t max_attempts;
    const char *worker;       /* node id of the last dispatch, "" if none */
    int32_t child_pid;        /* 0 if none */
    int64_t submitted_at;     /* unix ms */
    int64_t started_at;       /* unix ms, 0 if never started */
    int64_t finished_at;      /* unix ms, 0 if not terminal */
    uint64_t progress_current;
    uint64_t progress_total;
    const char *progress_message; /* "" if none */
    const void *result;       /* msgpack bytes if succeeded, else NULL */
    size_t result_len;
    const char *error;        /* message if failed, else "" */
    const char *queue;
    int priority;
    uint32_t failures;        /* attempts that ended in an error, crash, timeout or loss */
    const char *code;         /* failure code of the last failed attempt, "" if none */
    int64_t due_at;           /* scheduled / retrying: unix ms it becomes queued; else 0 */
    int64_t expires_at;       /* unix ms, 0 = never */
    const char *schedule;     /* the periodic schedule that created it, "" if none */
    taskq_id_t group_id;      /* group / chord it belongs to, zero if none */
    taskq_id_t parent_id;     /* workflow parent (chain), zero if none */
    taskq_id_t rerun_of;      /* the failed task this one re-runs, zero if none */
    taskq_id_t rerun_by;      /* the task that re-ran this one, zero if none */
    const char *unique_key;   /* "" if none */
} taskq_task_t;

TASKQ_EXPORT void taskq_task_destroy(taskq_task_t **self_p);

/* Reads a task's current record. TASKQ_ENOTFOUND if the broker has none. */
TASKQ_EXPORT taskq_err_t taskq_status(taskq_client_t *self, const taskq_id_t *id,
                                      taskq_task_t **out);
/* Waits until the task is terminal (succeeded or failed) or timeout_ms
 * passes (TASKQ_ETIMEDOUT; <0 waits forever). On TASKQ_OK *out is owned. */
TASKQ_EXPORT taskq_err_t taskq_wait(taskq_client_t *self, const taskq_id_t *id,
                                    int64_t timeout_ms, taskq_task_t **out);

/* Called once per task as it becomes terminal; `task` is borrowed for the
 * call. Return nonzero to stop waiting early. */
typedef int (*taskq_wait_fn)(const taskq_task_t *task, void *arg);
/* Waits for many tasks, calling fn as each completes (as-completed order).
 * Returns TASKQ_OK when all n were delivered, TASKQ_ETIMEDOUT if the
 * deadline passed first, or an error. An id the broker does not know is not
 * passed to fn; the call then returns TASKQ_ENOTFOUND once all others are
 * delivered. Duplicate ids in `ids` are TASKQ_EINVAL. */
TASKQ_EXPORT taskq_err_t taskq_wait_many(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                                         int64_t timeout_ms, taskq_wait_fn fn, void *arg);

/* ---- worker and broker status ----------------------------------------- */

typedef struct {
    int32_t pid;
    const char *state;      /* "starting", "idle", "busy", "stopping" */
    int has_task;
    taskq_id_t task_id;
    const char *task_name;  /* "" if idle */
    int64_t running_ms;     /* time in the current task, 0 if idle */
    uint64_t done;
    uint64_t failed;
    uint64_t rss_kb;
} taskq_child_info_t;

typedef struct {
    const char *id;
    const char *host;
    int32_t pid;
    uint32_t slots;
    int64_t last_heartbeat; /* unix ms */
    size_t nchildren;
    const taskq_child_info_t *children;
} taskq_node_info_t;

typedef struct taskq_workers taskq_workers_t;

/* Lists every live worker node. Caller owns *out. */
TASKQ_EXPORT taskq_err_t taskq_workers(taskq_client_t *self, taskq_workers_t **out);
TASKQ_EXPORT size_t taskq_workers_count(const taskq_workers_t *self);
/* Borrowed; NULL if i is out of range. */
TASKQ_EXPORT const taskq_node_info_t *taskq_workers_node(const taskq_workers_t *self, size_t i);
TASKQ_EXPORT void taskq_workers_destroy(taskq_workers_t **self_p);

typedef struct {
    uint64_t queued, running, succeeded, failed;
    uint64_t total;          /* rows in the store */
    uint64_t submitted;      /* accepted since broker start */
    uint64_t nodes, children;
    int64_t uptime_ms;
    char broker_id[64];
    uint64_t purged;         /* records deleted by TTL or purge, ever (never silent) */
} taskq_stats_t;

TASKQ_EXPORT taskq_err_t taskq_stats(taskq_client_t *self, taskq_stats_t *out);


/* ---- attempts -------------------------------------------------------- */
typedef struct {
    uint32_t attempt;
    const char *worker;
    int32_t child_pid;
    int64_t started_at, finished_at; /* unix ms; finished 0 = running */
    const char *state;        /* "running", "succeeded", "failed", "retrying",
                                 "requeued", "rate_limited", "revoked" */
    const char *code;         /* failure code, "" unless it failed */
    const char *message;
} taskq_attempt_t;
typedef struct taskq_attempts taskq_attempts_t;
/* Every attempt of a task, oldest first. Caller owns *out. */
TASKQ_EXPORT taskq_err_t taskq_attempts(taskq_client_t *self, const taskq_id_t *id,
                                        taskq_attempts_t **out);
TASKQ_EXPORT size_t taskq_attempts_count(const taskq_attempts_t *self);
TASKQ_EXPORT const taskq_attempt_t *taskq_attempts_get(const taskq_attempts_t *self, size_t i);
TASKQ_EXPORT void taskq_attempts_destroy(taskq_attempts_t **self_p);

/* ---- queues ------------------------------------------------------------ */
typedef struct {
    const char *name;
    int paused;
    uint64_t max_pending;      /* 0 = no per-queue limit */
    uint64_t counts[TASKQ_NSTATES]; /* tasks per taskq_state_t */
    int64_t oldest_queued_ms;  /* age of the oldest queued task, 0 if none */
    uint32_t slots;            /* child slots of live workers subscribed to it */
} taskq_queue_info_t;
typedef struct taskq_queues taskq_queues_t;
TASKQ_EXPORT taskq_err_t taskq_queues(taskq_client_t *self, taskq_queues_t **out);
TASKQ_EXPORT size_t taskq_queues_count(const taskq_queues_t *self);
TASKQ_EXPORT const taskq_queue_info_t *taskq_queues_get(const taskq_queues_t *self, size_t i);
TASKQ_EXPORT void taskq_queues_destroy(taskq_queues_t **self_p);
/* Pauses (paused = 1) or resumes a queue; creates it if unknown. */
TASKQ_EXPORT taskq_err_t taskq_queue_pause(taskq_client_t *self, const char *queue, int paused);
/* Sets a queue's max_pending (0 = none); creates it if unknown. */
TASKQ_EXPORT taskq_err_t taskq_queue_set_max_pending(taskq_client_t *self, const char *queue,
                                                     uint64_t max_pending);

/* ---- global rate and concurrency limits ---------------------------------- */
typedef struct {
    const char *key;          /* "task:NAME" or "queue:Q" */
    double rate;              /* dispatches per second, 0 = no rate limit */
    uint32_t burst;           /* bucket size, 0 = max(1, ceil(rate)) */
    uint32_t max_running;     /* 0 = no concurrency limit */
    /* read-only, filled by taskq_limits() */
    uint32_t running;
    double tokens;
    int64_t paused_until;     /* unix ms, 0 = not paused */
} taskq_limit_t;
typedef struct taskq_limits taskq_limits_t;
TASKQ_EXPORT taskq_err_t taskq_limit_set(taskq_client_t *self, const taskq_limit_t *limit);
TASKQ_EXPORT taskq_err_t taskq_limit_rm(taskq_client_t *self, const char *key);
TASKQ_EXPORT taskq_err_t taskq_limits(taskq_client_t *self, taskq_limits_t **out);
TASKQ_EXPORT size_t taskq_limits_count(const taskq_limits_t *self);
TASKQ_EXPORT const taskq_limit_t *taskq_limits_get(const taskq_limits_t *self, size_t i);
TASKQ_EXPORT void taskq_limits_destroy(taskq_limits_t **self_p);

/* ---- periodic schedules --------------------------------------------------- */
typedef struct {
    const char *name;         /* [A-Za-z0-9_.:-]{1,128} */
    const char *cron;         /* 5 fields, @hourly..., or "@every 30s" */
    const char *task;         /* task name */
    const void *args;         /* msgpack bytes, NULL = [] */
    size_t args_len;
    const char *queue;        /* NULL = routing */
    int has_priority;
    int priority;
    const char *tz;           /* IANA zone, NULL = "UTC" */
    const char *overlap;      /* "skip" (default) | "allow" */
    const char *catchup;      /* "none" | "last" (default) | "all" */
    uint32_t max_attempts;    /* 0 = default */
    /* read-only, filled by taskq_schedules() */
    int paused;
    int64_t next_at;          /* unix ms of the next nominal fire */
    int64_t last_fire_at;     /* nominal time of the last fire, 0 = never */
    taskq_id_t last_task_id;
    uint64_t fires, skipped;
} taskq_schedule_t;
typedef struct taskq_schedules taskq_schedules_t;
/* Adds a schedule (TASKQ_EEXIST if the name is taken; TASKQ_EINVAL with the
 * broker's message, e.g. "cron: hour field: 25 out of range 0-23", if the
 * expression or zone is bad: see taskq_client_last_error). */
TASKQ_EXPORT taskq_err_t taskq_schedule_add(taskq_client_t *self, const taskq_schedule_t *s);
/* op: "pause", "resume", "rm". */
TASKQ_EXPORT taskq_err_t taskq_schedule_ctl(taskq_client_t *self, const char *name,
                                            const char *op);
/* Fires the schedule now (not counted as a nominal fire); *id gets the task. */
TASKQ_EXPORT taskq_err_t taskq_schedule_run_now(taskq_client_t *self, const char *name,
                                                taskq_id_t *id);
TASKQ_EXPORT taskq_err_t taskq_schedules(taskq_client_t *self, taskq_schedules_t **out);
TASKQ_EXPORT size_t taskq_schedules_count(const taskq_schedules_t *self);
TASKQ_EXPORT const taskq_schedule_t *taskq_schedules_get(const taskq_schedules_t *self,
                                                         size_t i);
TASKQ_EXPORT void taskq_schedules_destroy(taskq_schedules_t **self_p);

/* ---- revoke -------------------------------------------------------------- */
typedef struct {
    int terminate;            /* running tasks: SIGTERM the child, SIGKILL after grace */
    int64_t grace_ms;         /* 0 = 5000 */
    const char *reason;       /* NULL = "revoked" */
    /* bulk selectors (with n == 0): every non-terminal task matching all given */
    const taskq_id_t *group;  /* members of this group / chord (and its callback) */
    const char *queue;
    const char *name;
    unsigned states;          /* bit (1 << state); 0 = every non-terminal state */
} taskq_revoke_opts_t;
typedef struct {
    uint64_t revoked;         /* tasks that became revoked */
    uint64_t terminal;        /* already terminal: unchanged */
    uint64_t not_found;
} taskq_revoke_result_t;
/* Revokes ids[0..n) (or, with n == 0, the bulk selection in opts). One
 * committed change: pending, scheduled, queued and retrying tasks become
 * revoked and never run; a running task's lease is voided (its late result
 * is rejected) and its worker is told to cancel it (taskq_cancelled), or with
 * terminate to kill the child. With one id: TASKQ_ETERMINAL if it is already
 * terminal (its state in taskq_client_last_error), TASKQ_ENOTFOUND. */
TASKQ_EXPORT taskq_err_t taskq_revoke(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                                      const taskq_revoke_opts_t *opts,
                                      taskq_revoke_result_t *result);

/* ---- workflows ------------------------------------------------------------ */
/* A graph built on the client and submitted atomically (all or nothing).
 * Nodes are task specs (copied, ids generated if zero). A node with a
 * parent waits `pending` until the parent succeeds; the parent's result is
 * then appended to its args array (unless spec.immutable); if the parent
 * ends any other way, the node and everything after it become revoked
 * (reason upstream_failed / upstream_revoked). A group is a set of nodes
 * with counters (done / failed / total); a chord is a group with a
 * callback node that runs when every member is terminal:
 *   on_fail "fail" (default): the callback is revoked as soon as a member
 *     ends non-succeeded (a retried attempt is not an end); otherwise it
 *     gets its args + [[result0, result1, ...]] in member order;
 *   on_fail "settle": it runs when all are terminal, with args +
 *     [[{"id": bin, "state": str, "result": value | "error": str,
 *        "code": str}, ...]].
 * An empty chord runs its callback with []. Past 16 MiB of results the
 * callback fails with code taskq.too_large before it is dispatched. */
typedef struct taskq_flow taskq_flow_t;
TASKQ_EXPORT taskq_flow_t *taskq_flow_new(void);
TASKQ_EXPORT void taskq_flow_destroy(taskq_flow_t **self_p);
/* Adds a node; returns its index (>= 0) or -1 (invalid spec). */
TASKQ_EXPORT int taskq_flow_add(taskq_flow_t *self, const taskq_task_spec_t *spec);
/* child waits for parent (one parent per node). 0 or -1. */
TASKQ_EXPORT int taskq_flow_after(taskq_flow_t *self, int child, int parent);
/* Makes a group of nodes members[0..n) (each in at most one group; n may
 * be 0); returns the group's index or -1. */
TASKQ_EXPORT int taskq_flow_group(taskq_flow_t *self, const int *members, size_t n);
/* Makes node `callback` the chord callback of group g. 0 or -1. */
TASKQ_EXPORT int taskq_flow_chord(taskq_flow_t *self, int group, int callback,
                                  const char *on_fail);
TASKQ_EXPORT taskq_err_t taskq_flow_submit(taskq_client_t *self, taskq_flow_t *flow);
/* After taskq_flow_add / submit: a node's task id, a group's id. */
TASKQ_EXPORT const taskq_id_t *taskq_flow_task_id(const taskq_flow_t *self, int node);
TASKQ_EXPORT const taskq_id_t *taskq_flow_group_id(const taskq_flow_t *self, int group);
/* Shorthands (one atomic submit each). ids of specs are filled in. */
TASKQ_EXPORT taskq_err_t taskq_chain(taskq_client_t *self, taskq_task_spec_t *specs, size_t n);
TASKQ_EXPORT taskq_err_t taskq_group(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                                     taskq_id_t *group_id);
TASKQ_EXPORT taskq_err_t taskq_chord(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                                     taskq_task_spec_t *callback, const char *on_fail,
                                     taskq_id_t *group_id);
/* One task `name` per chunk of `chunk` items of the msgpack array `items`
 * (each task's args: [[item, ...]]), as a group; with `then` (may be NULL)
 * a chord callback. *ids (caller frees) gets the member ids in item order. */
TASKQ_EXPORT taskq_err_t taskq_map(taskq_client_t *self, const char *name, const void *items,
                                   size_t items_len, size_t chunk, taskq_task_spec_t *then,
                                   taskq_id_t *group_id, taskq_id_t **ids, size_t *nids);
typedef struct {
    taskq_id_t id;
    uint64_t total, succeeded, failed, remaining; /* failed: any non-succeeded end */
    taskq_id_t callback;      /* zero if none */
    int callback_state;       /* -1 if no callback */
    const char *on_fail;
} taskq_group_info_t;
/* O(1) group progress. Caller owns nothing (fills *out). */
TASKQ_EXPORT taskq_err_t taskq_group_status(taskq_client_t *self, const taskq_id_t *group_id,
                                            taskq_group_info_t *out);
/* The member ids of a group in member order; caller frees *ids. */
TASKQ_EXPORT taskq_err_t taskq_group_members(taskq_client_t *self, const taskq_id_t *group_id,
                                             taskq_id_t **ids, size_t *n);

/* ---- waiting: as completed, all, any ------------------------------------- */
/* Calls fn for each task as it becomes terminal, in the broker's commit
 * order (already-terminal ones first), each exactly once, pushed by the
 * broker; stops when fn returns nonzero (wait_any: after the first), when
 * all n were delivered (TASKQ_OK), or at the deadline (TASKQ_ETIMEDOUT). */
TASKQ_EXPORT taskq_err_t taskq_wait_any(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                                        int64_t timeout_ms, taskq_wait_fn fn, void *arg);
TASKQ_EXPORT taskq_err_t taskq_wait_all(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                                        int64_t timeout_ms, taskq_wait_fn fn, void *arg);

/* ---- dead letters, re-run, purge ------------------------------------------ */
typedef struct {
    const char *queue, *name, *code; /* NULL = any; code may end in '*' */
    int64_t since_ms;         /* finished at or after (unix ms), 0 = any */
    size_t limit;             /* 0 = 1000 */
} taskq_failed_filter_t;
typedef struct taskq_task_list taskq_task_list_t;
/* Failed tasks (the dead-letter set), newest first. */
TASKQ_EXPORT taskq_err_t taskq_failed(taskq_client_t *self, const taskq_failed_filter_t *filter,
                                      taskq_task_list_t **out);
TASKQ_EXPORT size_t taskq_task_list_count(const taskq_task_list_t *self);
TASKQ_EXPORT const taskq_task_t *taskq_task_list_get(const taskq_task_list_t *self, size_t i);
TASKQ_EXPORT void taskq_task_list_destroy(taskq_task_list_t **self_p);
/* Creates a new task per failed one (same name, args, queue, priority and
 * options, fresh budget, linked both ways: rerun_of / rerun_by); the old one
 * keeps its state. ids[0..n), or with n == 0 every failed task matching
 * filter (at most 10,000 per call). new_ids (may be NULL) receives the new
 * ids: up to n of them, or with n == 0 up to *count on entry (its
 * capacity). On return *count is the number made. */
TASKQ_EXPORT taskq_err_t taskq_rerun(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                                     const taskq_failed_filter_t *filter, taskq_id_t *new_ids,
                                     uint64_t *count);
/* Deletes terminal tasks in `state` that ended more than older_than_ms ago. */
TASKQ_EXPORT taskq_err_t taskq_purge(taskq_client_t *self, int state, int64_t older_than_ms,
                                     uint64_t *purged);

/* The message of the last ERROR answer on this handle ("" if none). */
TASKQ_EXPORT const char *taskq_client_last_error(const taskq_client_t *self);

/* Test clock: only for a broker started with --test-clock. Moves the
 * broker's clock forward by advance_ms (or sets it to set_ms if > 0);
 * *now_ms (if not NULL) receives the new time. TASKQ_EINVAL otherwise. */
TASKQ_EXPORT taskq_err_t taskq_test_clock(taskq_client_t *self, int64_t advance_ms,
                                          int64_t set_ms, int64_t *now_ms);

#ifdef __cplusplus
}
#endif
#endif
