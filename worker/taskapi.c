/*
 * taskapi.c - implements include/taskq_task.h for task code running in a
 * child. Compiled with TASKQ_BUILDING so that these symbols are exported
 * from taskq-worker and resolve in dlopen'ed modules.
 */
#include "taskapi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqlimits.h"
#include "proto.h"
#include "taskfn.h"
#include "tclock.h"
#include "tmem.h"

struct taskq_ctx {
    taskq_id_t id;
    char id_str[TASKQ_ID_STRLEN + 1];
    uint32_t attempt;
    const void *args;
    size_t args_len;
    bool args_ok;
    msgpack_unpacked args_obj;
    msgpack_object nil;
    msgpack_sbuffer result;
    msgpack_packer packer;
    bool failed;
    char error[TQ_ERROR_MAX + 1];
    char code[TQ_CODE_MAX + 1];
    bool permanent;
    int64_t retry_delay_ms;  /* -1: none */
    int64_t rate_limited_ms; /* 0: none */
    taskapi_progress_fn progress_fn;
    void *progress_arg;
    int64_t progress_sent_mono;
    bool progress_held;           /* a value newer than the last one sent */
    uint64_t held_current, held_total;
    char held_message[TQ_PROGRESS_MSG_MAX + 1];
    bool cancelled;               /* sticky */
    taskapi_cancel_fn cancel_fn;
    void *cancel_arg;
    int64_t cancel_checked_us;    /* 0: never asked */
};

taskq_ctx_t *taskapi_ctx_new(const taskq_id_t *id, uint32_t attempt, const void *args,
                             size_t args_len)
{
    taskq_ctx_t *self = xcalloc(1, sizeof *self);
    self->id = *id;
    taskq_id_format(id, self->id_str);
    self->attempt = attempt;
    self->args = args;
    self->args_len = args_len;
    self->nil.type = MSGPACK_OBJECT_NIL;
    self->retry_delay_ms = -1;
    /* the first progress report waits one interval too: a task shorter than
     * that sends only its last value, with its DONE (one message per task
     * fewer through the supervisor and the broker) */
    self->progress_sent_mono = tclock_mono_ms();
    msgpack_unpacked_init(&self->args_obj);
    msgpack_sbuffer_init(&self->result);
    msgpack_packer_init(&self->packer, &self->result, msgpack_sbuffer_write);
    if (args_len == 0) {
        self->args_ok = true; /* absent args: nil */
    } else if (proto_precheck(args, args_len, TQ_MAX_DEPTH) == TASKQ_OK) {
        size_t off = 0;
        self->args_ok = msgpack_unpack_next(&self->args_obj, args, args_len, &off) ==
                            MSGPACK_UNPACK_SUCCESS && off == args_len;
    }
    return self;
}

void taskapi_ctx_destroy(taskq_ctx_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_ctx_t *self = *self_p;
    msgpack_unpacked_destroy(&self->args_obj);
    msgpack_sbuffer_destroy(&self->result);
    free(self);
    *self_p = NULL;
}

void taskapi_set_progress(taskq_ctx_t *self, taskapi_progress_fn fn, void *arg)
{
    self->progress_fn = fn;
    self->progress_arg = arg;
}

void taskapi_set_cancel_check(taskq_ctx_t *self, taskapi_cancel_fn fn, void *arg)
{
    self->cancel_fn = fn;
    self->cancel_arg = arg;
}

void taskapi_cancel(taskq_ctx_t *self) { self->cancelled = true; }

static void progress_emit(taskq_ctx_t *self)
{
    self->progress_held = false;
    self->progress_sent_mono = tclock_mono_ms();
    if (self->progress_fn)
        self->progress_fn(self->progress_arg, self->held_current, self->held_total,
                          self->held_message);
}

bool taskapi_run(taskq_ctx_t *self, taskq_task_fn fn)
{
    /* Failures found here are the task's own doing and would recur on every
     * attempt (the same args, the same code): permanent, so they do not
     * spend the retry budget on backoff. A task that returns
     * TASKQ_TASK_FAILED without saying why is an ordinary, retried error. */
    if (!self->args_ok) {
        taskq_fail_permanent(self, "taskq.error", "malformed args: not one valid msgpack value");
    } else {
        int rc = fn(self);
        if (rc != TASKQ_TASK_OK && !self->failed)
            taskq_fail(self, "taskq.error", "task failed (returned %d)", rc);
    }
    if (!self->failed && self->result.size > 0) {
        /* the broker stores these bytes as the result: they must be exactly
         * one value, or every reader downstream would trip over them */
        if (self->result.size > TQ_RESULT_MAX)
            taskq_fail_permanent(self, "taskq.error", "result too big (%zu bytes, limit %u)",
                                 self->result.size, TQ_RESULT_MAX);
        else if (proto_precheck(self->result.data, self->result.size, TQ_MAX_DEPTH) != TASKQ_OK)
            taskq_fail_permanent(self, "taskq.error", "result is not one valid msgpack value");
    }
    if (self->progress_held)
        progress_emit(self);
    return !self->failed;
}

const void *taskapi_result(taskq_ctx_t *self, size_t *len)
{
    *len = self->failed ? 0 : self->result.size;
    return self->result.data;
}

const char *taskapi_error(taskq_ctx_t *self) { return self->failed ? self->error : ""; }

void taskapi_failure(taskq_ctx_t *self, taskapi_failure_t *out)
{
    out->code = self->failed ? self->code : "";
    out->permanent = self->failed && self->permanent;
    out->retry_delay_ms = self->failed ? self->retry_delay_ms : -1;
    out->rate_limited_ms = self->failed ? self->rate_limited_ms : 0;
}

/* ---- include/taskq_task.h -------------------------------------------- */

int taskq_register(taskq_registry_t *reg, const char *name, taskq_task_fn fn)
{
    return reg && taskfn_add(reg, name, fn) == TASKQ_OK ? 0 : -1;
}

int taskq_register_opts(taskq_registry_t *reg, const char *name, taskq_task_fn fn,
                        const taskq_task_opts_t *opts)
{
    return reg && taskfn_add_opts(reg, name, fn, opts) == TASKQ_OK ? 0 : -1;
}

const msgpack_object *taskq_args(taskq_ctx_t *ctx)
{
    if (!ctx->args_ok || ctx->args_len == 0)
        return &ctx->nil;
    return &ctx->args_obj.data;
}

const void *taskq_args_raw(taskq_ctx_t *ctx, size_t *len)
{
    if (len)
        *len = ctx->args_len;
    return ctx->args;
}

const char *taskq_task_id(taskq_ctx_t *ctx) { return ctx->id_str; }

uint32_t taskq_attempt(taskq_ctx_t *ctx) { return ctx->attempt; }

msgpack_packer *taskq_result_packer(taskq_ctx_t *ctx)
{
    msgpack_sbuffer_clear(&ctx->result); /* the result replaces any earlier one */
    return &ctx->packer;
}

void taskq_result_raw(taskq_ctx_t *ctx, const void *data, size_t len)
{
    msgpack_sbuffer_clear(&ctx->result);
    if (len > 0)
        msgpack_sbuffer_write(&ctx->result, data, len);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static void utf8_truncate(char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    s[n] = '\0';
}

void taskq_progress(taskq_ctx_t *ctx, uint64_t current, uint64_t total, const char *message)
{
    ctx->held_current = current;
    ctx->held_total = total;
    snprintf(ctx->held_message, sizeof ctx->held_message, "%s", message ? message : "");
    utf8_truncate(ctx->held_message, TQ_PROGRESS_MSG_MAX);
    ctx->progress_held = true;
    /* at most one report per interval, the first one interval after the
     * start; taskapi_finish delivers a value held back */
    int64_t now = tclock_mono_ms();
    if (now - ctx->progress_sent_mono >= TASKAPI_PROGRESS_MS)
        progress_emit(ctx);
}

int taskq_cancelled(taskq_ctx_t *ctx)
{
    if (!ctx)
        return 0;
    if (!ctx->cancelled && ctx->cancel_fn) {
        /* a clock read (vDSO) is far cheaper than the check's syscall */
        int64_t now = tclock_mono_us();
        if (ctx->cancel_checked_us == 0 ||
            now - ctx->cancel_checked_us >= TASKAPI_CANCEL_CHECK_US) {
            ctx->cancel_checked_us = now;
            if (ctx->cancel_fn(ctx->cancel_arg))
                ctx->cancelled = true;
        }
    }
    return ctx->cancelled ? 1 : 0;
}

static int64_t clamp_ms(int64_t v, int64_t lo)
{
    return v < lo ? lo : v > TQ_BACKOFF_MS_MAX ? TQ_BACKOFF_MS_MAX : v;
}

/* Records the attempt's failure; every taskq_fail* call replaces the last. */
static int set_failure(taskq_ctx_t *ctx, const char *code, bool permanent, int64_t retry_delay_ms,
                       int64_t rate_limited_ms, const char *fmt, va_list ap)
{
    /* one byte more than the limit, so truncation can back off to a
     * character boundary */
    char buf[TQ_ERROR_MAX + 8];
    vsnprintf(buf, sizeof buf, fmt ? fmt : "", ap);
    utf8_truncate(buf, TQ_ERROR_MAX);
    memcpy(ctx->error, buf, strlen(buf) + 1);
    if (!code || !proto_code_is_valid(code, strlen(code)))
        code = "taskq.error";
    memcpy(ctx->code, code, strlen(code) + 1);
    ctx->permanent = permanent;
    ctx->retry_delay_ms = retry_delay_ms;
    ctx->rate_limited_ms = rate_limited_ms;
    ctx->failed = true;
    return TASKQ_TASK_FAILED;
}

int taskq_fail(taskq_ctx_t *ctx, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_failure(ctx, code, false, -1, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int taskq_fail_permanent(taskq_ctx_t *ctx, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_failure(ctx, code, true, -1, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int taskq_retry(taskq_ctx_t *ctx, int64_t delay_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_failure(ctx, "taskq.retry", false, clamp_ms(delay_ms, 0), 0, fmt, ap);
    va_end(ap);
    return rc;
}

/* vsnprintf needs a va_list: this wrapper builds one for a fixed message. */
static int set_failure_f(taskq_ctx_t *ctx, const char *code, bool permanent,
                         int64_t retry_delay_ms, int64_t rate_limited_ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static int set_failure_f(taskq_ctx_t *ctx, const char *code, bool permanent,
                         int64_t retry_delay_ms, int64_t rate_limited_ms, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = set_failure(ctx, code, permanent, retry_delay_ms, rate_limited_ms, fmt, ap);
    va_end(ap);
    return rc;
}

int taskq_rate_limited(taskq_ctx_t *ctx, int64_t retry_after_ms)
{
    /* on the wire "rate_limited_ms" > 0 is what marks a put-back, so "at
     * once" is the smallest delay that says so: 1 ms */
    int64_t ms = clamp_ms(retry_after_ms, 1);
    return set_failure_f(ctx, "taskq.rate_limited", false, -1, ms,
                         "rate limited: retry after %lld ms", (long long)ms);
}
