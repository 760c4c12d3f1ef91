/*
 * taskapi.h - the worker side of include/taskq_task.h: the task context a
 * child builds for each task. The ctx owns its decoded arguments (a zone),
 * its result buffer and its failure (code, message, permanent, explicit
 * retry delay, rate-limit delay); the caller owns the ctx. The last
 * taskq_fail / taskq_fail_permanent / taskq_retry / taskq_rate_limited
 * call of a run decides its failure.
 * Cancellation (taskq_cancelled) is asked of a second callback, which the
 * child points at its channel.
 * Progress goes to a callback, coalesced here: at most one call per
 * TASKAPI_PROGRESS_MS per task (the first one interval after the start), and
 * taskapi_finish() delivers the last value if it was held back.
 */
#ifndef TASKQ_TASKAPI_H
#define TASKQ_TASKAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskq.h"
#include "taskq_task.h"

#define TASKAPI_PROGRESS_MS 100
/* taskq_cancelled() asks its check function at most once per this many
 * microseconds (a task may call it in a tight loop; a check is a syscall). */
#define TASKAPI_CANCEL_CHECK_US 1000

typedef void (*taskapi_progress_fn)(void *arg, uint64_t current, uint64_t total,
                                    const char *message);

/* A ctx for one run of (id, attempt) with raw msgpack args (borrowed for the
 * ctx's life). Malformed args do not fail here: the task fails when run. */
taskq_ctx_t *taskapi_ctx_new(const taskq_id_t *id, uint32_t attempt, const void *args,
                             size_t args_len);
void taskapi_ctx_destroy(taskq_ctx_t **self_p);
void taskapi_set_progress(taskq_ctx_t *self, taskapi_progress_fn fn, void *arg);

/* taskq_cancelled(): fn is asked (rate-limited, see TASKAPI_CANCEL_CHECK_US)
 * whether this run was cancelled; once it says true the ctx stays cancelled.
 * Without a check function taskq_cancelled() returns 0 until
 * taskapi_cancel(). */
typedef bool (*taskapi_cancel_fn)(void *arg);
void taskapi_set_cancel_check(taskq_ctx_t *self, taskapi_cancel_fn fn, void *arg);
/* Marks the run cancelled (taskq_cancelled() returns 1 from now on). */
void taskapi_cancel(taskq_ctx_t *self);

/* Runs fn (or fails with "malformed args" without calling it), checks the
 * result (one msgpack value, at most TQ_RESULT_MAX bytes) and flushes held
 * back progress. Returns true if the task succeeded. */
bool taskapi_run(taskq_ctx_t *self, taskq_task_fn fn);
/* After taskapi_run: the result bytes (borrowed; len 0 = nil) or the error. */
const void *taskapi_result(taskq_ctx_t *self, size_t *len);
const char *taskapi_error(taskq_ctx_t *self);

/* After a failed taskapi_run: how it failed (strings borrowed from the ctx). */
typedef struct {
    const char *code;        /* [A-Za-z0-9_.]{1,TQ_CODE_MAX}, e.g. "taskq.error" */
    bool permanent;          /* taskq_fail_permanent: never retried */
    int64_t retry_delay_ms;  /* taskq_retry: 0..TQ_BACKOFF_MS_MAX; -1 = backoff */
    int64_t rate_limited_ms; /* taskq_rate_limited: 1..TQ_BACKOFF_MS_MAX; 0 = no */
} taskapi_failure_t;
/* Fills *out; all "none" (code "") when the run succeeded. */
void taskapi_failure(taskq_ctx_t *self, taskapi_failure_t *out);

#endif
