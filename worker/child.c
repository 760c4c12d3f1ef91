#define _GNU_SOURCE
/*
 * child.c - one task at a time: TASK in, PROGRESS* and DONE out. Tasks the
 * supervisor sends ahead wait in a small queue; before each one starts the
 * child reads what else arrived (a CANCEL makes it skip that task), and a
 * CANCEL for the running task is read when the task asks (taskq_cancelled).
 */
#include "child.h"

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

/* A task received and not yet run. The supervisor sends a busy child up to
 * a few tasks behind its running one (lookahead, with --prefetch); they wait
 * here, in order. Everything is copied out of the channel's read buffer,
 * which a later read may move. Buffers are kept (grown, never shrunk): no
 * malloc per task. */
typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    char name[TQ_NAME_MAX + 1];
    uint32_t name_len;
    uint8_t *args;
    size_t args_len, args_cap;
    int64_t time_limit_ms;
    bool cancelled;           /* a CANCEL arrived before it started: skip it */
} qtask_t;

#define CHILD_QUEUE_MAX 16    /* the supervisor sends at most 1 + its lookahead (4) */

static qtask_t g_q[CHILD_QUEUE_MAX];
static size_t g_qhead, g_qn;
static bool g_stop;                 /* STOP read: exit once the queue is empty */
static bool g_retire;               /* RETIRE read: start nothing more */
static const qtask_t *g_running;    /* the task running now, or NULL */
static bool g_running_cancelled;    /* a CANCEL for it arrived */

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

static bool same_task(const qtask_t *t, const chan_frame_t *f)
{
    return t->attempt == f->attempt && !memcmp(t->id.b, f->id.b, sizeof f->id.b);
}

/* One frame from the supervisor: a TASK joins the queue, a CANCEL marks the
 * running or a queued task (one for neither is stale: its task ended before
 * the supervisor saw the DONE), STOP ends the child once the queue is done. */
static void take_frame(const chan_frame_t *f)
{
    switch (f->kind) {
    case CHAN_TASK: {
        if (g_qn == CHILD_QUEUE_MAX || f->name_len > TQ_NAME_MAX) {
            tlog_error("more queued tasks than the supervisor may send");
            _exit(3);
        }
        qtask_t *t = &g_q[(g_qhead + g_qn) % CHILD_QUEUE_MAX];
        t->id = f->id;
        t->attempt = f->attempt;
        memcpy(t->name, f->name, f->name_len);
        t->name[f->name_len] = '\0';
        t->name_len = f->name_len;
        if (f->data_len > t->args_cap) {
            free(t->args);
            t->args = xmalloc(f->data_len);
            t->args_cap = f->data_len;
        }
        if (f->data_len)
            memcpy(t->args, f->data, f->data_len);
        t->args_len = f->data_len;
        t->time_limit_ms = f->time_limit_ms;
        t->cancelled = false;
        g_qn++;
        return;
    }
    case CHAN_CANCEL:
        if (g_running && same_task(g_running, f)) {
            g_running_cancelled = true;
            return;
        }
        for (size_t i = 0; i < g_qn; i++) {
            qtask_t *t = &g_q[(g_qhead + i) % CHILD_QUEUE_MAX];
            if (same_task(t, f)) {
                t->cancelled = true;
                return;
            }
        }
        tlog_debug("stale CANCEL (attempt %u) skipped", f->attempt);
        return;
    case CHAN_STOP:
        g_stop = true;
        return;
    case CHAN_RETIRE:
        g_retire = true;
        return;
    default:
        tlog_error("unexpected frame kind %d from the supervisor", f->kind);
        _exit(3);
    }
}

/* Takes every whole frame already read. */
static void take_buffered(chan_t *ch)
{
    for (;;) {
        chan_frame_t f;
        bool got;
        taskq_err_t rc = chan_next(ch, &f, &got);
        if (rc != TASKQ_OK) {
            tlog_error("channel broken: %s", taskq_strerror(rc));
            _exit(3);
        }
        if (!got)
            return;
        take_frame(&f);
    }
}

/* Reads what the supervisor sent, without waiting. */
static void take_pending(chan_t *ch)
{
    taskq_err_t rrc = chan_read_nowait(ch);
    take_buffered(ch);
    if (rrc != TASKQ_OK)
        _exit(3); /* the supervisor is gone: nobody will read a result either */
}

/* taskq_cancelled(): reads whatever the supervisor sent, without blocking. */
static bool on_cancel_check(void *arg)
{
    chan_t *ch = arg;
    bool before = g_running_cancelled;
    take_pending(ch);
    if (g_running_cancelled && !before) {
        char idbuf[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&g_running->id, idbuf);
        tlog_info("task %s attempt %u: cancelled (revoked)", idbuf, g_running->attempt);
        thist_event("cancelled %s %u", idbuf, g_running->attempt);
    }
    return g_running_cancelled;
}

static void on_progress(void *arg, uint64_t current, uint64_t total, const char *message)
{
    chan_t *ch = arg;
    chan_frame_t f = {.kind = CHAN_PROGRESS, .id = g_running->id, .attempt = g_running->attempt,
                      .current = current, .total = total, .message = message,
                      .message_len = (uint32_t)strlen(message)};
    if (chan_send(ch, &f) != TASKQ_OK) {
        /* the supervisor is gone: nobody will read the result either */
        _exit(3);
    }
}

static void send_or_exit(chan_t *ch, const chan_frame_t *f)
{
    if (chan_send(ch, f) != TASKQ_OK)
        _exit(3); /* the supervisor is gone: nobody will read the result either */
}

static void run_task(chan_t *ch, taskfn_t *fns, const qtask_t *t)
{
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, idbuf);
    chan_frame_t done = {.kind = CHAN_DONE, .id = t->id, .attempt = t->attempt};
    char error[TQ_ERROR_MAX + 1];
    if (t->cancelled) {
        /* revoked while it waited here: never started */
        snprintf(error, sizeof error, "revoked before it started");
        tlog_info("task %s attempt %u: %s: skipped", idbuf, t->attempt, error);
        thist_event("cancelled %s %u", idbuf, t->attempt);
        done.ok = false;
        done.data = error;
        done.data_len = (uint32_t)strlen(error);
        done.code = "taskq.revoked";
        done.code_len = (uint32_t)strlen(done.code);
        done.permanent = true;
        send_or_exit(ch, &done);
        return;
    }
    bool has_policy;
    proto_retry_policy_t policy;
    taskq_task_fn fn = taskfn_find_policy(fns, t->name, t->name_len, &has_policy, &policy);
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
    taskq_ctx_t *ctx = taskapi_ctx_new(&t->id, t->attempt, t->args, t->args_len);
    g_running = t;
    g_running_cancelled = false;
    taskapi_set_progress(ctx, on_progress, ch);
    taskapi_set_cancel_check(ctx, on_cancel_check, ch);
    thist_event("exec_start %s %u", idbuf, t->attempt);
    done.ok = taskapi_run(ctx, fn);
    g_running = NULL;
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
        if (g_qn == 0) {
            if (g_stop)
                break;
            chan_frame_t f;
            taskq_err_t rc = chan_recv(ch, &f); /* waits */
            if (rc == TASKQ_ECLOSED)
                break;
            if (rc != TASKQ_OK) {
                tlog_error("channel broken: %s", taskq_strerror(rc));
                _exit(3);
            }
            take_frame(&f);
            take_buffered(ch); /* what came with it */
            if (g_qn == 0 && !g_retire)
                continue;
        } else {
            /* a queued task is next: first read anything newer (a CANCEL
             * for it) without waiting */
            take_pending(ch);
        }
        if (g_retire) {
            /* a revoke with terminate retired this child: its queued tasks
             * go back to the supervisor's FIFO unstarted. RETIRED tells it
             * that nothing started after the last DONE. */
            tlog_info("retired: %zu queued task(s) handed back", g_qn);
            chan_frame_t r = {.kind = CHAN_RETIRED};
            send_or_exit(ch, &r);
            break;
        }
        qtask_t *t = &g_q[g_qhead];
        run_task(ch, fns, t);
        g_qhead = (g_qhead + 1) % CHILD_QUEUE_MAX;
        g_qn--;
    }
    tlog_debug("stopping");
    chan_destroy(&ch);
    taskfn_destroy(&fns);
    for (size_t i = 0; i < CHILD_QUEUE_MAX; i++)
        free(g_q[i].args);
    _exit(0);
}
