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
} taskq_err_t;

/* Never returns NULL; unknown codes give "unknown error". */
TASKQ_EXPORT const char *taskq_strerror(int err);
/* Short stable symbol, e.g. "ETIMEDOUT"; never NULL. */
TASKQ_EXPORT const char *taskq_err_name(int err);

/* Task states. Terminal: SUCCEEDED, FAILED. Wire-stable numbers. */
typedef enum {
    TASKQ_STATE_QUEUED = 0,
    TASKQ_STATE_RUNNING = 1,
    TASKQ_STATE_SUCCEEDED = 2,
    TASKQ_STATE_FAILED = 3,
} taskq_state_t;

/* "queued", "running", "succeeded", "failed"; "unknown" otherwise. */
TASKQ_EXPORT const char *taskq_state_name(int state);
TASKQ_EXPORT int taskq_state_is_terminal(int state);

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

/* One task to submit. `args` is one msgpack-encoded value (usually an
 * array); NULL/0 means an empty array. `id` is in/out: if all-zero a fresh
 * id is generated and written back. Submitting an id the broker already has
 * is a no-op that succeeds (idempotent retries). */
typedef struct {
    taskq_id_t id;
    const char *name;       /* [A-Za-z0-9_.:-]{1,128} */
    const void *args;       /* borrowed msgpack bytes */
    size_t args_len;
    int64_t time_limit_ms;  /* hard limit, 0 = the worker's default */
    uint32_t max_attempts;  /* 0 = broker default (3) */
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
} taskq_stats_t;

TASKQ_EXPORT taskq_err_t taskq_stats(taskq_client_t *self, taskq_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
