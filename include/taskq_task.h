/*
 * taskq_task.h - the public API for task authors.
 *
 * A task is a C function registered under a name. It runs in a worker child
 * process (one task at a time per child), reads its arguments as msgpack,
 * may report progress, and ends by returning TASKQ_TASK_OK (with a result
 * set by taskq_result_*; none means nil) or by calling taskq_fail().
 *
 * Modules: a shared library passed to `taskq-worker --module PATH` must export
 *     int taskq_module_init(taskq_registry_t *reg);
 * which calls taskq_register() for each task and returns 0 on success.
 *
 * Everything here is called from the child process only. The ctx pointer is
 * valid for the duration of the task call; memory returned by the getters is
 * borrowed from it.
 */
#ifndef TASKQ_TASK_H
#define TASKQ_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <msgpack.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TASKQ_BUILDING) && defined(__GNUC__)
#define TASKQ_TASK_EXPORT __attribute__((visibility("default")))
#else
#define TASKQ_TASK_EXPORT
#endif

typedef struct taskq_ctx taskq_ctx_t;
typedef struct taskq_registry taskq_registry_t;

#define TASKQ_TASK_OK 0
#define TASKQ_TASK_FAILED 1

/* A task function: returns TASKQ_TASK_OK or TASKQ_TASK_FAILED. */
typedef int (*taskq_task_fn)(taskq_ctx_t *ctx);

/* Registers fn under name ([A-Za-z0-9_.:-]{1,128}); 0 on success, -1 if the
 * name is invalid or already taken. `name` is copied. */
TASKQ_TASK_EXPORT int taskq_register(taskq_registry_t *reg, const char *name, taskq_task_fn fn);

/* The arguments, decoded (borrowed; never NULL: an absent value is nil). */
TASKQ_TASK_EXPORT const msgpack_object *taskq_args(taskq_ctx_t *ctx);
/* The raw msgpack bytes of the arguments (borrowed). */
TASKQ_TASK_EXPORT const void *taskq_args_raw(taskq_ctx_t *ctx, size_t *len);
/* Task id as a 36-char string (borrowed) and the current attempt number. */
TASKQ_TASK_EXPORT const char *taskq_task_id(taskq_ctx_t *ctx);
TASKQ_TASK_EXPORT uint32_t taskq_attempt(taskq_ctx_t *ctx);

/* A packer that writes the result; pack exactly one value. The result
 * replaces any earlier one. */
TASKQ_TASK_EXPORT msgpack_packer *taskq_result_packer(taskq_ctx_t *ctx);
/* Sets the result to the given msgpack bytes (copied). */
TASKQ_TASK_EXPORT void taskq_result_raw(taskq_ctx_t *ctx, const void *data, size_t len);

/* Reports progress (coalesced before it reaches the broker, so it is cheap
 * to call often). `message` may be NULL; it is truncated to 256 bytes. */
TASKQ_TASK_EXPORT void taskq_progress(taskq_ctx_t *ctx, uint64_t current, uint64_t total,
                                      const char *message);

/* Marks the task failed with a code ([A-Za-z0-9_.]{1,64}; NULL or invalid
 * = "taskq.error") and a message (printf-style, truncated to 1 KiB), and
 * returns TASKQ_TASK_FAILED, so a task can `return taskq_fail(...)`. The
 * broker retries it by the task's retry policy (backoff, --retry-on,
 * --no-retry-on, max attempts). Codes "taskq.*" are reserved: taskq.error,
 * taskq.crash (child died), taskq.timeout (time limit), taskq.lost (node
 * dead or lease expired). */
TASKQ_TASK_EXPORT int taskq_fail(taskq_ctx_t *ctx, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like taskq_fail, but the task is never retried. */
TASKQ_TASK_EXPORT int taskq_fail_permanent(taskq_ctx_t *ctx, const char *code, const char *fmt,
                                           ...) __attribute__((format(printf, 3, 4)));
/* Fails this attempt (code "taskq.retry") and asks for the next one after
 * delay_ms instead of the backoff; still spends one attempt of the budget. */
TASKQ_TASK_EXPORT int taskq_retry(taskq_ctx_t *ctx, int64_t delay_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The task hit an outside rate limit (an HTTP 429): the broker puts it back
 * without a failure, runs it again after retry_after_ms, and pauses the
 * bucket of its `task:NAME` limit (if one is set) for that long. */
TASKQ_TASK_EXPORT int taskq_rate_limited(taskq_ctx_t *ctx, int64_t retry_after_ms);

/* Nonzero once the task was revoked (taskq revoke): the task should stop
 * early (its result will be discarded). Cheap: a non-blocking check. */
TASKQ_TASK_EXPORT int taskq_cancelled(taskq_ctx_t *ctx);

/* Retry policy given at registration; a submit's own values win. */
typedef struct {
    uint32_t max_attempts;   /* 0 = broker default */
    int64_t backoff_base_ms; /* 0 = default 2000 */
    double backoff_factor;   /* 0 = default 2 */
    int64_t backoff_max_ms;  /* 0 = default 600000 */
    const char *jitter;      /* NULL = "equal" */
    const char *retry_on;    /* NULL = every code */
    const char *no_retry_on; /* NULL = none */
} taskq_task_opts_t;
/* taskq_register with a retry policy (copied). */
TASKQ_TASK_EXPORT int taskq_register_opts(taskq_registry_t *reg, const char *name,
                                          taskq_task_fn fn, const taskq_task_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
