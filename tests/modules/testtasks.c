/*
 * testtasks.c - libtesttasks.so: deterministic tasks for the integration and
 * fault tests. Argument convention as the built-ins: the first element of an
 * args array, or a bare value.
 *   test.square [n]          -> n*n
 *   test.fail [msg]          -> fails with msg
 *   test.crash ["segv"|"abort"|"exit"] -> the child dies that way
 *   test.hang []             -> never returns
 *   test.sleep [seconds]     -> like taskq.sleep
 *   test.progress_spam [n]   -> n progress calls as fast as possible, returns n
 *   test.crash_until [k]     -> SIGSEGV while attempt < k, then returns attempt
 *   test.echo ARGS           -> ARGS (the same bytes: what the raw worker of
 *                               storefault.h answers, so both agree)
 */
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taskq_task.h"

static const msgpack_object *first_arg(taskq_ctx_t *ctx)
{
    const msgpack_object *a = taskq_args(ctx);
    if (a->type == MSGPACK_OBJECT_ARRAY)
        return a->via.array.size > 0 ? &a->via.array.ptr[0] : NULL;
    return a->type == MSGPACK_OBJECT_NIL ? NULL : a;
}

static bool get_int(taskq_ctx_t *ctx, int64_t *n)
{
    const msgpack_object *a = first_arg(ctx);
    if (a && a->type == MSGPACK_OBJECT_POSITIVE_INTEGER && a->via.u64 <= INT64_MAX) {
        *n = (int64_t)a->via.u64;
        return true;
    }
    if (a && a->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *n = a->via.i64;
        return true;
    }
    return false;
}

static bool get_str(taskq_ctx_t *ctx, const char **s, size_t *len)
{
    const msgpack_object *a = first_arg(ctx);
    if (!a || a->type != MSGPACK_OBJECT_STR)
        return false;
    *s = a->via.str.ptr;
    *len = a->via.str.size;
    return true;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void segv(void)
{
    /* raise() rather than a NULL store: sanitizers would turn the store into
     * an abort, and the tests want exactly SIGSEGV */
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    _exit(139);
}

static int t_square(taskq_ctx_t *ctx)
{
    int64_t n;
    if (!get_int(ctx, &n))
        return taskq_fail(ctx, "test.square: expected an integer n");
    msgpack_pack_int64(taskq_result_packer(ctx), (int64_t)((uint64_t)n * (uint64_t)n));
    return TASKQ_TASK_OK;
}

static int t_echo(taskq_ctx_t *ctx)
{
    msgpack_pack_object(taskq_result_packer(ctx), *taskq_args(ctx));
    return TASKQ_TASK_OK;
}

static int t_fail(taskq_ctx_t *ctx)
{
    const char *s;
    size_t len;
    if (!get_str(ctx, &s, &len))
        return taskq_fail(ctx, "test.fail");
    return taskq_fail(ctx, "%.*s", (int)len, s);
}

static int t_crash(taskq_ctx_t *ctx)
{
    const char *s = "segv";
    size_t len = 4;
    get_str(ctx, &s, &len);
    if (len == 5 && !memcmp(s, "abort", 5))
        abort();
    if (len == 4 && !memcmp(s, "exit", 4))
        _exit(3);
    segv();
    return TASKQ_TASK_FAILED;
}

static int t_hang(taskq_ctx_t *ctx)
{
    (void)ctx;
    for (volatile int forever = 1; forever;)
        pause();
    return TASKQ_TASK_FAILED; /* not reached */
}

static int t_sleep(taskq_ctx_t *ctx)
{
    const msgpack_object *a = first_arg(ctx);
    double secs;
    if (a && a->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        secs = (double)a->via.u64;
    else if (a && (a->type == MSGPACK_OBJECT_FLOAT64 || a->type == MSGPACK_OBJECT_FLOAT32))
        secs = a->via.f64;
    else
        return taskq_fail(ctx, "test.sleep: expected a number of seconds >= 0");
    if (!(secs >= 0.0) || secs > 86400.0)
        return taskq_fail(ctx, "test.sleep: seconds must be between 0 and 86400");
    long total = (long)(secs * 1000.0 + 0.5);
    for (long done = 0; done < total;) {
        long slice = total - done < 100 ? total - done : 100;
        nap_ms(slice);
        done += slice;
        taskq_progress(ctx, (uint64_t)done, (uint64_t)total, "sleeping");
    }
    msgpack_pack_object(taskq_result_packer(ctx), *a);
    return TASKQ_TASK_OK;
}

static int t_progress_spam(taskq_ctx_t *ctx)
{
    int64_t n;
    if (!get_int(ctx, &n) || n < 0)
        return taskq_fail(ctx, "test.progress_spam: expected an integer n >= 0");
    for (int64_t i = 1; i <= n; i++)
        taskq_progress(ctx, (uint64_t)i, (uint64_t)n, "spam");
    msgpack_pack_int64(taskq_result_packer(ctx), n);
    return TASKQ_TASK_OK;
}

static int t_crash_until(taskq_ctx_t *ctx)
{
    int64_t k;
    if (!get_int(ctx, &k))
        return taskq_fail(ctx, "test.crash_until: expected an integer attempt");
    uint32_t attempt = taskq_attempt(ctx);
    if ((int64_t)attempt < k)
        segv();
    msgpack_pack_uint32(taskq_result_packer(ctx), attempt);
    return TASKQ_TASK_OK;
}

__attribute__((visibility("default"))) int taskq_module_init(taskq_registry_t *reg);

int taskq_module_init(taskq_registry_t *reg)
{
    int rc = 0;
    rc |= taskq_register(reg, "test.square", t_square);
    rc |= taskq_register(reg, "test.fail", t_fail);
    rc |= taskq_register(reg, "test.crash", t_crash);
    rc |= taskq_register(reg, "test.hang", t_hang);
    rc |= taskq_register(reg, "test.sleep", t_sleep);
    rc |= taskq_register(reg, "test.progress_spam", t_progress_spam);
    rc |= taskq_register(reg, "test.crash_until", t_crash_until);
    rc |= taskq_register(reg, "test.echo", t_echo);
    return rc ? -1 : 0;
}
