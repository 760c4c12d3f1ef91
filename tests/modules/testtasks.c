/*
 * testtasks.c - libtesttasks.so: deterministic tasks for the integration and
 * fault tests. Argument convention as the built-ins: the first element of an
 * args array, or a bare value.
 *   test.square [n]          -> n*n
 *   test.fail [msg]          -> fails with msg, code "test.fail", permanently
 *                               (never retried, as before retry policies)
 *   test.crash ["segv"|"abort"|"exit"] -> the child dies that way
 *   test.hang []             -> never returns
 *   test.sleep [seconds]     -> like taskq.sleep
 *   test.progress_spam [n]   -> n progress calls as fast as possible, returns n
 *   test.crash_until [k]     -> SIGSEGV while attempt < k, then returns attempt
 *   test.echo ARGS           -> ARGS (the same bytes: what the raw worker of
 *                               storefault.h answers, so both agree)
 *   test.append [path, tag]  -> appends "<tag>\n" to path (O_APPEND, one
 *                               write(2), so concurrent appends never
 *                               interleave) and returns tag
 *   test.fail_code [code, message] -> taskq_fail(code, message)
 *   test.fail_perm [code]    -> taskq_fail_permanent(code, ...)
 *   test.retry_in [delay_ms, succeed_on_attempt]
 *                            -> taskq_retry(delay_ms) while attempt <
 *                               succeed_on_attempt, then returns attempt
 *   test.rate_limited [retry_after_ms, times]
 *                            -> taskq_rate_limited(retry_after_ms) while
 *                               attempt <= times, then returns attempt
 *   test.policy []           -> always fails with code "test.policy";
 *                               registered with max_attempts 2, backoff
 *                               100 ms, factor 1, max 100 ms, jitter none
 *   test.concat [a, b, ...]  -> the args array as given (so a chain's
 *                               appended parent result is visible); nil
 *                               args -> [], a bare value v -> [v]
 *   test.sum [[n...]] | [n...] -> the sum (int64, wrapping) of every integer
 *                               found in the args, in nested arrays and map
 *                               values too (chord callbacks, settle maps)
 *   test.sleep_cancel [seconds] -> sleeps in 10 ms steps checking
 *                               taskq_cancelled(); returns "cancelled" as
 *                               soon as it is, else seconds (as test.sleep)
 *   test.ignore_term [seconds] -> ignores SIGTERM while it sleeps (a revoke
 *                               --terminate must escalate to SIGKILL), then
 *                               restores the old disposition; returns seconds
 * Bad arguments fail permanently with code "test.args".
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
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

/* Element i of an args array (NULL if absent). */
static const msgpack_object *arg_at(taskq_ctx_t *ctx, uint32_t i)
{
    const msgpack_object *a = taskq_args(ctx);
    if (a->type != MSGPACK_OBJECT_ARRAY)
        return i == 0 ? first_arg(ctx) : NULL;
    return i < a->via.array.size ? &a->via.array.ptr[i] : NULL;
}

static bool int_at(taskq_ctx_t *ctx, uint32_t i, int64_t *n)
{
    const msgpack_object *a = arg_at(ctx, i);
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

/* Element i as a NUL-terminated copy in buf (false if not a string or too
 * long). */
static bool str_at(taskq_ctx_t *ctx, uint32_t i, char *buf, size_t bufsz)
{
    const msgpack_object *a = arg_at(ctx, i);
    if (!a || a->type != MSGPACK_OBJECT_STR || a->via.str.size >= bufsz)
        return false;
    memcpy(buf, a->via.str.ptr, a->via.str.size);
    buf[a->via.str.size] = '\0';
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
        return taskq_fail_permanent(ctx, "test.args", "test.square: expected an integer n");
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
        return taskq_fail_permanent(ctx, "test.fail", "test.fail");
    return taskq_fail_permanent(ctx, "test.fail", "%.*s", (int)len, s);
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

/* The first argument as milliseconds (0..86400 s); false after failing the
 * task with test.args. */
static bool get_secs_ms(taskq_ctx_t *ctx, const char *task, long *ms)
{
    const msgpack_object *a = first_arg(ctx);
    double secs;
    if (a && a->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        secs = (double)a->via.u64;
    } else if (a && (a->type == MSGPACK_OBJECT_FLOAT64 || a->type == MSGPACK_OBJECT_FLOAT32)) {
        secs = a->via.f64;
    } else {
        taskq_fail_permanent(ctx, "test.args", "%s: expected a number of seconds >= 0", task);
        return false;
    }
    if (!(secs >= 0.0) || secs > 86400.0) {
        taskq_fail_permanent(ctx, "test.args", "%s: seconds must be between 0 and 86400", task);
        return false;
    }
    *ms = (long)(secs * 1000.0 + 0.5);
    return true;
}

static int t_sleep(taskq_ctx_t *ctx)
{
    const msgpack_object *a = first_arg(ctx);
    long total;
    if (!get_secs_ms(ctx, "test.sleep", &total))
        return TASKQ_TASK_FAILED;
    for (long done = 0; done < total;) {
        long slice = total - done < 100 ? total - done : 100;
        nap_ms(slice);
        done += slice;
        taskq_progress(ctx, (uint64_t)done, (uint64_t)total, "sleeping");
    }
    msgpack_pack_object(taskq_result_packer(ctx), *a);
    return TASKQ_TASK_OK;
}

static int t_sleep_cancel(taskq_ctx_t *ctx)
{
    long total;
    if (!get_secs_ms(ctx, "test.sleep_cancel", &total))
        return TASKQ_TASK_FAILED;
    for (long done = 0;; done += 10) {
        if (taskq_cancelled(ctx)) {
            msgpack_packer *pk = taskq_result_packer(ctx);
            msgpack_pack_str(pk, 9);
            msgpack_pack_str_body(pk, "cancelled", 9);
            return TASKQ_TASK_OK;
        }
        if (done >= total)
            break;
        nap_ms(total - done < 10 ? total - done : 10);
    }
    msgpack_pack_object(taskq_result_packer(ctx), *first_arg(ctx));
    return TASKQ_TASK_OK;
}

static int t_ignore_term(taskq_ctx_t *ctx)
{
    long total;
    if (!get_secs_ms(ctx, "test.ignore_term", &total))
        return TASKQ_TASK_FAILED;
    struct sigaction ign, old;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    if (sigaction(SIGTERM, &ign, &old) != 0)
        return taskq_fail(ctx, "test.io", "test.ignore_term: sigaction: %s", strerror(errno));
    /* an ignored signal interrupts nothing, but be exact anyway */
    struct timespec ts = {total / 1000, (total % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    sigaction(SIGTERM, &old, NULL);
    msgpack_pack_object(taskq_result_packer(ctx), *first_arg(ctx));
    return TASKQ_TASK_OK;
}

static int t_concat(taskq_ctx_t *ctx)
{
    const msgpack_object *a = taskq_args(ctx);
    msgpack_packer *pk = taskq_result_packer(ctx);
    if (a->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_object(pk, *a);
    } else if (a->type == MSGPACK_OBJECT_NIL) {
        msgpack_pack_array(pk, 0);
    } else {
        msgpack_pack_array(pk, 1);
        msgpack_pack_object(pk, *a);
    }
    return TASKQ_TASK_OK;
}

/* Adds every integer in o (arrays and map values, recursively) to *sum,
 * wrapping; args are at most TQ_MAX_DEPTH deep, so the recursion is bounded. */
static void sum_ints(const msgpack_object *o, uint64_t *sum)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *sum += o->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *sum += (uint64_t)o->via.i64;
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            sum_ints(&o->via.array.ptr[i], sum);
        break;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++)
            sum_ints(&o->via.map.ptr[i].val, sum);
        break;
    default:
        break;
    }
}

static int t_sum(taskq_ctx_t *ctx)
{
    uint64_t sum = 0;
    sum_ints(taskq_args(ctx), &sum);
    msgpack_pack_int64(taskq_result_packer(ctx), (int64_t)sum);
    return TASKQ_TASK_OK;
}

static int t_progress_spam(taskq_ctx_t *ctx)
{
    int64_t n;
    if (!get_int(ctx, &n) || n < 0)
        return taskq_fail_permanent(ctx, "test.args",
                                    "test.progress_spam: expected an integer n >= 0");
    for (int64_t i = 1; i <= n; i++)
        taskq_progress(ctx, (uint64_t)i, (uint64_t)n, "spam");
    msgpack_pack_int64(taskq_result_packer(ctx), n);
    return TASKQ_TASK_OK;
}

static int t_crash_until(taskq_ctx_t *ctx)
{
    int64_t k;
    if (!get_int(ctx, &k))
        return taskq_fail_permanent(ctx, "test.args",
                                    "test.crash_until: expected an integer attempt");
    uint32_t attempt = taskq_attempt(ctx);
    if ((int64_t)attempt < k)
        segv();
    msgpack_pack_uint32(taskq_result_packer(ctx), attempt);
    return TASKQ_TASK_OK;
}

static int t_append(taskq_ctx_t *ctx)
{
    char path[4096], tag[1024], line[1026];
    if (!str_at(ctx, 0, path, sizeof path) || !str_at(ctx, 1, tag, sizeof tag))
        return taskq_fail_permanent(ctx, "test.args", "test.append: expected [path, tag]");
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return taskq_fail(ctx, "test.io", "test.append: open %s: %s", path, strerror(errno));
    int n = snprintf(line, sizeof line, "%s\n", tag);
    ssize_t w = write(fd, line, (size_t)n);
    int err = errno;
    close(fd);
    if (w != n)
        return taskq_fail(ctx, "test.io", "test.append: write %s: %s", path,
                          w < 0 ? strerror(err) : "short write");
    msgpack_packer *pk = taskq_result_packer(ctx);
    msgpack_pack_str(pk, strlen(tag));
    msgpack_pack_str_body(pk, tag, strlen(tag));
    return TASKQ_TASK_OK;
}

static int t_fail_code(taskq_ctx_t *ctx)
{
    char code[128], msg[1024] = "test.fail_code";
    if (!str_at(ctx, 0, code, sizeof code))
        return taskq_fail_permanent(ctx, "test.args", "test.fail_code: expected [code, message]");
    str_at(ctx, 1, msg, sizeof msg); /* optional */
    /* an invalid code is passed on as is: taskq_fail turns it into taskq.error */
    return taskq_fail(ctx, code, "%s", msg);
}

static int t_fail_perm(taskq_ctx_t *ctx)
{
    char code[128];
    if (!str_at(ctx, 0, code, sizeof code))
        return taskq_fail_permanent(ctx, "test.args", "test.fail_perm: expected [code]");
    return taskq_fail_permanent(ctx, code, "test.fail_perm: permanent failure %s", code);
}

static int t_retry_in(taskq_ctx_t *ctx)
{
    int64_t delay, succeed_on;
    if (!int_at(ctx, 0, &delay) || !int_at(ctx, 1, &succeed_on))
        return taskq_fail_permanent(ctx, "test.args",
                                    "test.retry_in: expected [delay_ms, succeed_on_attempt]");
    uint32_t attempt = taskq_attempt(ctx);
    if ((int64_t)attempt < succeed_on)
        return taskq_retry(ctx, delay, "test.retry_in: attempt %u, next in %lld ms", attempt,
                           (long long)delay);
    msgpack_pack_uint32(taskq_result_packer(ctx), attempt);
    return TASKQ_TASK_OK;
}

static int t_rate_limited(taskq_ctx_t *ctx)
{
    int64_t after, times;
    if (!int_at(ctx, 0, &after) || !int_at(ctx, 1, &times))
        return taskq_fail_permanent(ctx, "test.args",
                                    "test.rate_limited: expected [retry_after_ms, times]");
    uint32_t attempt = taskq_attempt(ctx);
    if ((int64_t)attempt <= times)
        return taskq_rate_limited(ctx, after);
    msgpack_pack_uint32(taskq_result_packer(ctx), attempt);
    return TASKQ_TASK_OK;
}

static int t_policy(taskq_ctx_t *ctx)
{
    return taskq_fail(ctx, "test.policy", "test.policy always fails (attempt %u)",
                      taskq_attempt(ctx));
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
    rc |= taskq_register(reg, "test.append", t_append);
    rc |= taskq_register(reg, "test.fail_code", t_fail_code);
    rc |= taskq_register(reg, "test.fail_perm", t_fail_perm);
    rc |= taskq_register(reg, "test.retry_in", t_retry_in);
    rc |= taskq_register(reg, "test.rate_limited", t_rate_limited);
    rc |= taskq_register(reg, "test.concat", t_concat);
    rc |= taskq_register(reg, "test.sum", t_sum);
    rc |= taskq_register(reg, "test.sleep_cancel", t_sleep_cancel);
    rc |= taskq_register(reg, "test.ignore_term", t_ignore_term);
    const taskq_task_opts_t policy = {.max_attempts = 2, .backoff_base_ms = 100,
                                      .backoff_factor = 1, .backoff_max_ms = 100,
                                      .jitter = "none"};
    rc |= taskq_register_opts(reg, "test.policy", t_policy, &policy);
    return rc ? -1 : 0;
}
