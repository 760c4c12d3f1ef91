/*
 * builtin.c - the tasks every worker has: taskq.echo, taskq.sleep,
 * taskq.primes, taskq.sumsq. Argument convention (all tasks): args is a
 * msgpack array and the task takes its first element; a bare non-array value
 * is taken as the first argument too, so `taskq submit taskq.sleep 2` works
 * whether the CLI sends 2 or [2]. Bad arguments fail with code taskq.error,
 * permanently: the same args would fail every retry the same way.
 */
#include <math.h>
#include <stdbool.h>
#include <time.h>

#include "taskfn.h"
#include "tclock.h"

/* The first argument, or NULL if there is none. */
static const msgpack_object *first_arg(taskq_ctx_t *ctx)
{
    const msgpack_object *a = taskq_args(ctx);
    if (a->type == MSGPACK_OBJECT_ARRAY)
        return a->via.array.size > 0 ? &a->via.array.ptr[0] : NULL;
    return a->type == MSGPACK_OBJECT_NIL ? NULL : a;
}

static bool get_u64(taskq_ctx_t *ctx, uint64_t *n)
{
    const msgpack_object *a = first_arg(ctx);
    if (!a || a->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *n = a->via.u64;
    return true;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static int task_echo(taskq_ctx_t *ctx)
{
    size_t len;
    const void *raw = taskq_args_raw(ctx, &len);
    taskq_result_raw(ctx, raw, len);
    return TASKQ_TASK_OK;
}

static int task_sleep(taskq_ctx_t *ctx)
{
    const msgpack_object *a = first_arg(ctx);
    double secs;
    if (a && a->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        secs = (double)a->via.u64;
    else if (a && (a->type == MSGPACK_OBJECT_FLOAT64 || a->type == MSGPACK_OBJECT_FLOAT32))
        secs = a->via.f64;
    else
        return taskq_fail_permanent(ctx, "taskq.error",
                                    "taskq.sleep: expected a number of seconds >= 0");
    /* a year is far past any sane time limit and keeps the ms in range */
    if (!(secs >= 0.0) || secs > 366.0 * 86400)
        return taskq_fail_permanent(ctx, "taskq.error",
                                    "taskq.sleep: seconds must be between 0 and 31622400");
    int64_t total = (int64_t)llround(secs * 1000.0);
    int64_t start = tclock_mono_ms();
    for (;;) {
        int64_t elapsed = tclock_mono_ms() - start;
        if (elapsed >= total)
            break;
        taskq_progress(ctx, (uint64_t)elapsed, (uint64_t)total, "sleeping");
        int64_t slice = total - elapsed;
        sleep_ms(slice < 100 ? slice : 100);
    }
    taskq_progress(ctx, (uint64_t)total, (uint64_t)total, "sleeping");
    msgpack_pack_object(taskq_result_packer(ctx), *a);
    return TASKQ_TASK_OK;
}

static int task_primes(taskq_ctx_t *ctx)
{
    uint64_t n;
    if (!get_u64(ctx, &n))
        return taskq_fail_permanent(ctx, "taskq.error",
                                    "taskq.primes: expected an integer n >= 0");
    uint64_t count = 0, step = n / 100 ? n / 100 : 1, next_report = step;
    int64_t last = tclock_mono_ms();
    for (uint64_t i = 2; i <= n && i != 0; i++) {
        bool prime = true;
        for (uint64_t d = 2; d <= i / d; d++)
            if (i % d == 0) {
                prime = false;
                break;
            }
        count += prime;
        if (i >= next_report || (i & 1023) == 0) {
            int64_t now = tclock_mono_ms();
            if (i >= next_report || now - last >= 50) {
                taskq_progress(ctx, i, n, "counting primes");
                last = now;
                while (next_report <= i && next_report + step > next_report)
                    next_report += step;
            }
        }
    }
    taskq_progress(ctx, n, n, "counting primes");
    msgpack_pack_uint64(taskq_result_packer(ctx), count);
    return TASKQ_TASK_OK;
}

static int task_sumsq(taskq_ctx_t *ctx)
{
    uint64_t n;
    if (!get_u64(ctx, &n))
        return taskq_fail_permanent(ctx, "taskq.error",
                                    "taskq.sumsq: expected an integer n >= 0");
    uint64_t sum = 0; /* wraps mod 2^64 by definition */
    for (uint64_t i = 0; i < n; i++)
        sum += i * i;
    msgpack_pack_uint64(taskq_result_packer(ctx), sum);
    return TASKQ_TASK_OK;
}

taskq_err_t builtin_register(taskfn_t *self)
{
    taskq_err_t rc = taskfn_add(self, "taskq.echo", task_echo);
    if (rc == TASKQ_OK)
        rc = taskfn_add(self, "taskq.sleep", task_sleep);
    if (rc == TASKQ_OK)
        rc = taskfn_add(self, "taskq.primes", task_primes);
    if (rc == TASKQ_OK)
        rc = taskfn_add(self, "taskq.sumsq", task_sumsq);
    return rc;
}
