#define _GNU_SOURCE
/*
 * child.c - one task at a time: TASK in, PROGRESS* and DONE out; a CANCEL
 * is read only when the task asks (taskq_cancelled).
 */
#include "child.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "chan.h"
#include "tqlimits.h"
#include "taskapi.h"
#include "taskfn.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    chan_t *ch;
    const chan_frame_t *task;
} run_t;

/* The supervisor's pid, for the SIGTERM handler. */
static volatile pid_t g_parent;

/* SIGTERM: from the supervisor it means "terminate the running task" (a
 * revoke with terminate): die of it, as with the default action. From
 * anyone else (systemd's SIGTERM to the whole cgroup, a stray kill) it is
 * ignored: shutdown is the supervisor's decision. A task that installs its
 * own SIGTERM disposition replaces this one (the supervisor then SIGKILLs
 * after the grace). SA_RESTART: an ignored signal restarts what it can. */
static void on_sigterm(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    if (si && si->si_code == SI_USER && si->si_pid == g_parent) {
        signal(sig, SIG_DFL); /* async-signal-safe */
        raise(sig);           /* delivered when the handler returns */
    }
}

/* The current task's args, copied out of the channel's read buffer: a
 * taskq_cancelled() check reads the channel, which may move that buffer.
 * Kept between tasks (grown, never shrunk): no malloc per task. */
static uint8_t *g_args;
static size_t g_args_cap;

/* taskq_cancelled(): reads whatever the supervisor sent, without blocking.
 * Only CANCEL can arrive while a task runs (the supervisor sends TASK and
 * STOP to idle children only); one for another (id, attempt) is stale (its
 * task ended before the supervisor saw the DONE) and skipped. */
static bool on_cancel_check(void *arg)
{
    run_t *r = arg;
    struct pollfd p = {.fd = chan_fd(r->ch), .events = POLLIN};
    int n = poll(&p, 1, 0);
    if (n <= 0)
        return false; /* nothing (or EINTR: next time) */
    taskq_err_t rrc = chan_read(r->ch);
    bool cancelled = false;
    for (;;) {
        chan_frame_t f;
        bool got;
        taskq_err_t rc = chan_next(r->ch, &f, &got);
        if (rc != TASKQ_OK) {
            tlog_error("channel broken: %s", taskq_strerror(rc));
            _exit(3);
        }
        if (!got)
            break;
        if (f.kind != CHAN_CANCEL) {
            tlog_error("unexpected frame kind %d from the supervisor during a task", f.kind);
            _exit(3);
        }
        if (f.attempt == r->task->attempt && !memcmp(f.id.b, r->task->id.b, sizeof f.id.b))
            cancelled = true;
        else
            tlog_debug("stale CANCEL (attempt %u) skipped", f.attempt);
    }
    if (rrc != TASKQ_OK)
        _exit(3); /* the supervisor is gone: nobody will read the result either */
    if (cancelled) {
        char idbuf[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&r->task->id, idbuf);
        tlog_info("task %s attempt %u: cancelled (revoked)", idbuf, r->task->attempt);
        thist_event("cancelled %s %u", idbuf, r->task->attempt);
    }
    return cancelled;
}

static void on_progress(void *arg, uint64_t current, uint64_t total, const char *message)
{
    run_t *r = arg;
    chan_frame_t f = {.kind = CHAN_PROGRESS, .id = r->task->id, .attempt = r->task->attempt,
                      .current = current, .total = total, .message = message,
                      .message_len = (uint32_t)strlen(message)};
    if (chan_send(r->ch, &f) != TASKQ_OK) {
        /* the supervisor is gone: nobody will read the result either */
        _exit(3);
    }
}

static void send_or_exit(chan_t *ch, const chan_frame_t *f)
{
    if (chan_send(ch, f) != TASKQ_OK)
        _exit(3); /* the supervisor is gone: nobody will read the result either */
}

static void run_task(chan_t *ch, taskfn_t *fns, const chan_frame_t *t)
{
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, idbuf);
    chan_frame_t done = {.kind = CHAN_DONE, .id = t->id, .attempt = t->attempt};
    bool has_policy;
    proto_retry_policy_t policy;
    taskq_task_fn fn = taskfn_find_policy(fns, t->name, t->name_len, &has_policy, &policy);
    char error[TQ_ERROR_MAX + 1];
    if (!fn) {
        /* not permanent: another node may have the module */
        snprintf(error, sizeof error, "unknown task '%.*s'", (int)t->name_len, t->name);
        tlog_warn("task %s: %s", idbuf, error);
        done.ok = false;
        done.data = error;
        done.data_len = (uint32_t)strlen(error);
        done.code = "taskq.error";
        done.code_len = (uint32_t)strlen(done.code);
        send_or_exit(ch, &done);
        return;
    }
    if (has_policy) {
        /* before the task runs, so that the supervisor has it even if the
         * task crashes or overruns its time limit */
        chan_frame_t pf = {.kind = CHAN_POLICY, .id = t->id, .attempt = t->attempt,
                           .policy = policy};
        send_or_exit(ch, &pf);
    }
    tlog_debug("task %s attempt %u: %.*s starts", idbuf, t->attempt, (int)t->name_len, t->name);
    if (t->data_len > g_args_cap) {
        free(g_args);
        g_args = xmalloc(t->data_len);
        g_args_cap = t->data_len;
    }
    if (t->data_len)
        memcpy(g_args, t->data, t->data_len);
    /* from here on t->name and t->data may be moved by a channel read */
    taskq_ctx_t *ctx = taskapi_ctx_new(&t->id, t->attempt, g_args, t->data_len);
    run_t r = {ch, t};
    taskapi_set_progress(ctx, on_progress, &r);
    taskapi_set_cancel_check(ctx, on_cancel_check, &r);
    thist_event("exec_start %s %u", idbuf, t->attempt);
    done.ok = taskapi_run(ctx, fn);
    if (done.ok) {
        size_t len;
        done.data = taskapi_result(ctx, &len);
        done.data_len = (uint32_t)len;
        /* hashed as the broker will store it (an empty result is nil) */
        thist_event("exec_end %s %u 1 %016llx", idbuf, t->attempt,
                    (unsigned long long)thist_result_hash(done.data, len));
    } else {
        thist_event("exec_end %s %u 0 0000000000000000", idbuf, t->attempt);
        taskapi_failure_t fl;
        taskapi_failure(ctx, &fl);
        done.data = taskapi_error(ctx);
        done.data_len = (uint32_t)strlen(done.data);
        done.code = fl.code;
        done.code_len = (uint32_t)strlen(fl.code);
        done.permanent = fl.permanent;
        done.has_retry_delay = fl.retry_delay_ms >= 0;
        done.retry_delay_ms = fl.retry_delay_ms >= 0 ? fl.retry_delay_ms : 0;
        done.rate_limited_ms = fl.rate_limited_ms;
    }
    taskq_err_t rc = chan_send(ch, &done);
    taskapi_ctx_destroy(&ctx);
    if (rc != TASKQ_OK)
        _exit(3);
}

void child_main(int fd, const char *const *modules, size_t nmodules)
{
    /* exec keeps PDEATHSIG for a non-setuid binary, but say it again: a
     * child must not outlive its supervisor */
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(2);
    g_parent = parent;
    signal(SIGPIPE, SIG_IGN);
    /* Ctrl-C reaches the whole foreground process group and systemd sends
     * SIGTERM to the whole cgroup: shutdown is the supervisor's decision
     * (STOP after the current task, or SIGKILL), so the child ignores both,
     * except a SIGTERM from the supervisor itself (revoke --terminate) */
    signal(SIGINT, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigterm;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0)
        signal(SIGTERM, SIG_IGN);
    tlog_init("child");
    thist_open("child");
    taskfn_t *fns = taskfn_new();
    if (builtin_register(fns) != TASKQ_OK)
        _exit(2);
    for (size_t i = 0; i < nmodules; i++)
        if (taskfn_load(fns, modules[i]) != TASKQ_OK)
            _exit(2);
    chan_t *ch = chan_new(fd, true);
    chan_frame_t ready = {.kind = CHAN_READY, .pid = (int32_t)getpid()};
    if (chan_send(ch, &ready) != TASKQ_OK)
        _exit(3);
    for (;;) {
        chan_frame_t f;
        taskq_err_t rc = chan_recv(ch, &f);
        if (rc == TASKQ_ECLOSED)
            break;
        if (rc != TASKQ_OK) {
            tlog_error("channel broken: %s", taskq_strerror(rc));
            _exit(3);
        }
        if (f.kind == CHAN_STOP)
            break;
        if (f.kind == CHAN_CANCEL) {
            /* its task ended before the supervisor saw the DONE: stale */
            tlog_debug("stale CANCEL (attempt %u) while idle: skipped", f.attempt);
            continue;
        }
        if (f.kind != CHAN_TASK) {
            tlog_error("unexpected frame kind %d from the supervisor", f.kind);
            _exit(3);
        }
        run_task(ch, fns, &f);
    }
    tlog_debug("stopping");
    chan_destroy(&ch);
    taskfn_destroy(&fns);
    free(g_args);
    _exit(0);
}
