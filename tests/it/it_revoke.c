/* it_revoke: revoke as one committed state change (issue 7).
 *  1. Revoke of queued / scheduled tasks with no worker (C API, CLI, bulk by
 *     queue), a second revoke answers ETERMINAL "already revoked", an
 *     unknown id ENOTFOUND (CLI exits 6 / 5); kill -9 + restart of the
 *     broker; a worker then drains the queue (control tasks succeed) and the
 *     revoked tasks never ran (state revoked, 0 attempts).
 *  2. --terminate of a running test.ignore_term [60] (grace 1 s): revoked at
 *     once, the child is gone within grace + 1 s, killed by SIGKILL (it
 *     ignores SIGTERM: history child_died sig9), a new child serves the
 *     next task. test.sleep [60] with the default grace: SIGTERM (sig15),
 *     gone within 1 s. test.sleep_cancel without --terminate: the task sees
 *     taskq_cancelled() and returns early, its DONE is refused as stale, the
 *     same child serves the next task, the state stays revoked.
 *  3. A forged late result: a raw TQP worker (DEALER + the proto codec)
 *     takes a task, the task is revoked, the worker gets CANCEL (id,
 *     attempt, terminate, grace_ms as given) and its DONE for that attempt
 *     is answered DONE_ACK ESTALE; the state stays revoked with no result.
 * The 1,000 revoke-at-finish races are in it_revoke_race. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "hevents.h"
#include "harness.h"
#include "proto.h"
#include "tclock.h"

#define OUTSZ 65536
static char out[OUTSZ];

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static bool is_running(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING && t->child_pid > 0;
}

static void submit(taskq_client_t *c, taskq_task_spec_t *s)
{
    taskq_err_t rc = taskq_submit(c, s);
    H_ASSERT(rc == TASKQ_OK, "submit %s: %s '%s'", s->name, taskq_err_name(rc),
             taskq_client_last_error(c));
}

static void revoke_one(taskq_client_t *c, const taskq_id_t *id, const taskq_revoke_opts_t *o,
                       const char *what)
{
    taskq_revoke_result_t r;
    memset(&r, 0, sizeof r);
    taskq_err_t rc = taskq_revoke(c, id, 1, o, &r);
    H_ASSERT(rc == TASKQ_OK && r.revoked == 1 && r.terminal == 0 && r.not_found == 0,
             "revoke %s (%s): %s '%s' revoked=%llu terminal=%llu not_found=%llu", h_id_str(id),
             what, taskq_err_name(rc), taskq_client_last_error(c), (unsigned long long)r.revoked,
             (unsigned long long)r.terminal, (unsigned long long)r.not_found);
}

static void expect_never_ran(taskq_client_t *c, const taskq_id_t *id, const char *what)
{
    taskq_task_t *t = h_status(c, id);
    H_ASSERT(t != NULL, "%s: record gone", what);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->attempts == 0 && t->started_at == 0 &&
                 t->result == NULL && t->finished_at > 0,
             "%s: state %s attempts=%u started_at=%lld finished_at=%lld result_len=%zu, "
             "expected revoked and never dispatched",
             what, taskq_state_name(t->state), t->attempts, (long long)t->started_at,
             (long long)t->finished_at, t->result_len);
    taskq_task_destroy(&t);
}

static const char *cli_log_text(void)
{
    static char buf[8192];
    buf[0] = '\0';
    FILE *f = fopen(h_cli_last_log(), "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* ---- 1. queued, scheduled, bulk; restart ------------------------------------- */

static void queued_survives_restart(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/queued.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    uint8_t a7[16], a8[16], a9[16], a10[16];
    taskq_task_spec_t q1 = h_spec("test.square", a7, h_args_int(a7, sizeof a7, 7));
    taskq_task_spec_t ctl = h_spec("test.square", a8, h_args_int(a8, sizeof a8, 8));
    taskq_task_spec_t s1 = h_spec("test.square", a9, h_args_int(a9, sizeof a9, 9));
    s1.countdown_ms = 3600 * 1000;
    taskq_task_spec_t q3 = h_spec("test.square", a10, h_args_int(a10, sizeof a10, 10));
    submit(c, &q1);
    submit(c, &ctl);
    submit(c, &s1);
    submit(c, &q3);

    revoke_one(c, &q1.id, NULL, "queued, C API");
    expect_never_ran(c, &q1.id, "revoked queued task");
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.reason = "not needed";
    revoke_one(c, &s1.id, &o, "scheduled in 1 h");
    expect_never_ran(c, &s1.id, "revoked scheduled task");

    /* a terminal task: typed error with its state; nothing changes */
    taskq_revoke_result_t r;
    taskq_err_t rc = taskq_revoke(c, &q1.id, 1, NULL, &r);
    H_ASSERT(rc == TASKQ_ETERMINAL && strstr(taskq_client_last_error(c), "already revoked"),
             "second revoke of %s: %s '%s', expected ETERMINAL 'already revoked'",
             h_id_str(&q1.id), taskq_err_name(rc), taskq_client_last_error(c));
    taskq_id_t unknown;
    taskq_id_generate(&unknown);
    rc = taskq_revoke(c, &unknown, 1, NULL, &r);
    H_ASSERT(rc == TASKQ_ENOTFOUND, "revoke of an unknown id: %s '%s'", taskq_err_name(rc),
             taskq_client_last_error(c));
    /* several ids: counts instead of errors */
    taskq_id_t mix[2] = {q1.id, unknown};
    memset(&r, 0, sizeof r);
    rc = taskq_revoke(c, mix, 2, NULL, &r);
    H_ASSERT(rc == TASKQ_OK && r.revoked == 0 && r.terminal == 1 && r.not_found == 1,
             "revoke [terminal, unknown]: %s revoked=%llu terminal=%llu not_found=%llu",
             taskq_err_name(rc), (unsigned long long)r.revoked, (unsigned long long)r.terminal,
             (unsigned long long)r.not_found);

    /* the CLI */
    char q3s[TASKQ_ID_STRLEN + 1], us[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&q3.id, q3s);
    taskq_id_format(&unknown, us);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "revoke", q3s, "--reason", "manual");
    H_ASSERT(x == 0, "taskq revoke %s: exit %d, stdout '%.200s' stderr '%.300s'", q3s, x, out,
             cli_log_text());
    expect_never_ran(c, &q3.id, "task revoked with the CLI");
    x = h_run_cli(out, OUTSZ, NULL, ep, "revoke", q3s);
    H_ASSERT(x == 6 && strstr(cli_log_text(), "already revoked"),
             "taskq revoke of a revoked task: exit %d, stderr '%.300s' (expected 6, 'already "
             "revoked')", x, cli_log_text());
    x = h_run_cli(out, OUTSZ, NULL, ep, "revoke", us);
    H_ASSERT(x == 5, "taskq revoke of an unknown id: exit %d (expected 5)", x);

    /* bulk by queue (paused, so nothing can start meanwhile) */
    H_OK(taskq_queue_pause(c, "bulkq", 1));
    taskq_task_spec_t bulk[5];
    uint8_t ab[5][16];
    for (int i = 0; i < 5; i++) {
        bulk[i] = h_spec("test.square", ab[i], h_args_int(ab[i], sizeof ab[i], 100 + i));
        bulk[i].queue = "bulkq";
    }
    taskq_err_t codes[5];
    H_OK(taskq_submit_batch(c, bulk, 5, codes));
    memset(&o, 0, sizeof o);
    o.queue = "bulkq";
    memset(&r, 0, sizeof r);
    rc = taskq_revoke(c, NULL, 0, &o, &r);
    H_ASSERT(rc == TASKQ_OK && r.revoked == 5, "bulk revoke --queue bulkq: %s revoked=%llu '%s'",
             taskq_err_name(rc), (unsigned long long)r.revoked, taskq_client_last_error(c));
    taskq_client_destroy(&c);

    /* the revokes are committed: kill -9, restart, then a worker */
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    c = h_client(ep, 15000);
    expect_never_ran(c, &q1.id, "revoked task after kill -9 + restart");
    H_OK(taskq_queue_pause(c, "bulkq", 0));
    h_worker_t *w = h_worker_start(ep, 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    /* controls in both queues: the worker drained them, FIFO behind the revoked ones */
    taskq_task_spec_t ctl2 = h_spec("test.square", a8, h_args_int(a8, sizeof a8, 8));
    ctl2.queue = "bulkq";
    submit(c, &ctl2);
    taskq_task_t *t = h_wait_task(c, &ctl.id, is_terminal, NULL, 20000, "control task");
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == 64,
             "control task: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    t = h_wait_task(c, &ctl2.id, is_terminal, NULL, 20000, "control task in bulkq");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "bulkq control: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    expect_never_ran(c, &q1.id, "revoked queued task (worker drained the queue)");
    expect_never_ran(c, &s1.id, "revoked scheduled task");
    expect_never_ran(c, &q3.id, "task revoked with the CLI");
    for (int i = 0; i < 5; i++)
        expect_never_ran(c, &bulk[i].id, "bulk-revoked task");
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.queued == 0 && st.running == 0, "stats after the drain: queued=%llu running=%llu",
             (unsigned long long)st.queued, (unsigned long long)st.running);
    taskq_client_destroy(&c);
    h_log("revoked queued/scheduled/bulk tasks survived kill -9 + restart and never ran");
}

/* ---- 2. --terminate and cancel ------------------------------------------------ */

typedef struct {
    const char *ev, *f0, *f1;
    int pid;                    /* 0 = any */
    int64_t after_us;
    char f1_out[HEV_FIELD_MAX]; /* field 1 of the match */
    char f2_out[HEV_FIELD_MAX]; /* field 2 of the match */
} evq_t;

static bool has_event(void *p)
{
    evq_t *q = p;
    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h != NULL, "cannot read the history");
    bool found = false;
    for (size_t i = 0; i < h->n && !found; i++) {
        const hev_t *e = &h->ev[i];
        if (e->us < q->after_us || strcmp(e->ev, q->ev) != 0)
            continue;
        if (q->pid && e->pid != q->pid)
            continue;
        if (q->f0 && (e->nf < 1 || strcmp(e->f[0], q->f0) != 0))
            continue;
        if (q->f1 && (e->nf < 2 || strcmp(e->f[1], q->f1) != 0))
            continue;
        if (e->nf >= 2)
            snprintf(q->f1_out, sizeof q->f1_out, "%s", e->f[1]);
        if (e->nf >= 3)
            snprintf(q->f2_out, sizeof q->f2_out, "%s", e->f[2]);
        found = true;
    }
    hevents_destroy(&h);
    return found;
}

static int64_t wall_us(void)
{
    return tclock_wall_ms() * 1000;
}

static bool pid_gone(void *p)
{
    return !h_pid_alive(*(pid_t *)p);
}

/* Revokes a running task of `name` with --terminate (grace_ms 0 = default
 * 5 s) and returns ms from the revoke call to the child's death; *sig gets
 * the signal in the worker's child_died event. */
static int64_t terminate_running(taskq_client_t *c, const char *name, int64_t grace_ms,
                                 char *sig, size_t sigsz)
{
    uint8_t a[16];
    taskq_task_spec_t s = h_spec(name, a, h_args_int(a, sizeof a, 60));
    submit(c, &s);
    taskq_task_t *t = h_wait_task(c, &s.id, is_running, NULL, 20000, "task running");
    pid_t child = t->child_pid;
    taskq_task_destroy(&t);
    /* the child entered the task function (past exec_start): its SIGTERM
     * disposition is set a few instructions later */
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s.id, ids);
    evq_t q = {"exec_start", ids, "1", (int)child, 0, "", ""};
    h_wait_for(has_event, &q, 10000, "the child's exec_start");
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.terminate = 1;
    o.grace_ms = grace_ms;
    o.reason = "operator";
    int64_t t0 = h_now_ms();
    revoke_one(c, &s.id, &o, "running, --terminate");
    /* committed before the answer: revoked at once, whatever the child does */
    t = h_status(c, &s.id);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->result == NULL,
             "%s right after revoke --terminate: %s", name, taskq_state_name(t->state));
    taskq_task_destroy(&t);
    int64_t limit = (grace_ms > 0 ? grace_ms : 5000) + 1000;
    h_wait_for(pid_gone, &child, limit + 2000, "the terminated child is gone");
    int64_t gone = h_now_ms() - t0;
    H_ASSERT(gone <= limit, "%s: child %d gone %lld ms after revoke --terminate, limit grace + "
             "1 s = %lld ms", name, (int)child, (long long)gone, (long long)limit);
    char pids[16];
    snprintf(pids, sizeof pids, "%d", (int)child);
    evq_t d = {"child_died", pids, NULL, 0, 0, "", ""};
    h_wait_for(has_event, &d, 10000, "the worker's child_died event of the terminated child");
    snprintf(sig, sigsz, "%s", d.f1_out);
    /* never retried, whatever the child's death looked like */
    t = h_status(c, &s.id);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->attempts == 1, "%s after the kill: %s "
             "attempts=%u", name, taskq_state_name(t->state), t->attempts);
    taskq_task_destroy(&t);
    h_log("revoke --terminate %s (grace %lld ms): child %d gone after %lld ms (%s)", name,
          (long long)grace_ms, (int)child, (long long)gone, sig);
    return gone;
}

static pid_t run_square(taskq_client_t *c, int n)
{
    uint8_t a[16];
    taskq_task_spec_t s = h_spec("test.square", a, h_args_int(a, sizeof a, n));
    submit(c, &s);
    taskq_task_t *t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "test.square after");
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == (int64_t)n * n,
             "test.square [%d] after a revoke: %s '%s'", n, taskq_state_name(t->state), t->error);
    pid_t p = t->child_pid;
    taskq_task_destroy(&t);
    return p;
}

static void terminate_and_cancel(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/term.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    h_worker_t *w = h_worker_start(ep, 1);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);
    pid_t kids[4];
    H_ASSERT(h_worker_children(w, kids, 4) == 1, "expected 1 child");

    char sig[HEV_FIELD_MAX];
    terminate_running(c, "test.ignore_term", 1000, sig, sizeof sig);
    H_ASSERT(strcmp(sig, "sig9") == 0, "test.ignore_term (ignores SIGTERM) died by '%s', "
             "expected the SIGKILL after the grace (sig9)", sig);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 10000);
    pid_t p1 = run_square(c, 5);
    H_ASSERT(p1 != kids[0], "the next task ran in the killed child %d", (int)p1);

    int64_t gone = terminate_running(c, "test.sleep", 0, sig, sizeof sig);
    H_ASSERT(strcmp(sig, "sig15") == 0, "test.sleep died by '%s', expected SIGTERM (sig15)",
             sig);
    H_ASSERT(gone <= 1000, "test.sleep (dies on SIGTERM) took %lld ms to go", (long long)gone);
    pid_t p2 = run_square(c, 6);
    H_ASSERT(p2 != p1, "a new child should serve after the second terminate");

    /* cooperative cancel: no signal, the task polls taskq_cancelled() */
    uint8_t a[16];
    taskq_task_spec_t s = h_spec("test.sleep_cancel", a, h_args_int(a, sizeof a, 30));
    submit(c, &s);
    taskq_task_t *t = h_wait_task(c, &s.id, is_running, NULL, 20000, "test.sleep_cancel running");
    pid_t child = t->child_pid;
    taskq_task_destroy(&t);
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s.id, ids);
    evq_t q = {"exec_start", ids, "1", (int)child, 0, "", ""};
    h_wait_for(has_event, &q, 10000, "test.sleep_cancel's exec_start");
    int64_t since = wall_us();
    int64_t t0 = h_now_ms();
    revoke_one(c, &s.id, NULL, "running, cancel only");
    /* the task returns early; its DONE is answered (worker: done_acked ID 1 CODE) */
    evq_t st = {"done_acked", ids, "1", 0, since - 1000000, "", ""};
    h_wait_for(has_event, &st, 5000, "the cancelled attempt's DONE answered");
    int64_t ended = h_now_ms() - t0;
    H_EXPECT(strcmp(st.f2_out, "ESTALE") == 0,
             "the DONE of a revoked (cancelled) attempt was answered %s, expected ESTALE (the "
             "broker took it as a repeat: history done_repeat)", st.f2_out);
    H_ASSERT(ended < 5000, "test.sleep_cancel [30] ended %lld ms after the revoke",
             (long long)ended);
    H_ASSERT(h_pid_alive(child), "cancel without --terminate killed child %d", (int)child);
    t = h_status(c, &s.id);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->result == NULL && t->attempts == 1,
             "cancelled task: %s result_len=%zu attempts=%u (its 'cancelled' result must be "
             "discarded)", taskq_state_name(t->state), t->result_len, t->attempts);
    taskq_task_destroy(&t);
    pid_t p3 = run_square(c, 7);
    H_ASSERT(p3 == child, "after a plain cancel the same child should serve (ran in %d, "
             "cancelled child %d)", (int)p3, (int)child);
    h_log("cancel without --terminate: task stopped after %lld ms, its DONE answered %s, "
          "child %d kept", (long long)ended, st.f2_out, (int)child);
    taskq_client_destroy(&c);
}

/* ---- 3. a forged late DONE from a raw TQP worker ------------------------------- */

typedef struct {
    void *ctx, *sock;
    int64_t next_hb;
} raw_t;

static void raw_send(raw_t *w, const proto_msg_t *m)
{
    taskq_err_t e = proto_send(w->sock, NULL, 0, m, false);
    H_ASSERT(e == TASKQ_OK, "raw worker send %d: %s", m->type, taskq_err_name(e));
}

static raw_t *raw_new(const char *ep)
{
    raw_t *w = calloc(1, sizeof *w);
    H_ASSERT(w, "out of memory");
    w->ctx = zmq_ctx_new();
    w->sock = w->ctx ? zmq_socket(w->ctx, ZMQ_DEALER) : NULL;
    H_ASSERT(w->sock, "zmq socket: %s", zmq_strerror(errno));
    int zero = 0;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &zero, sizeof zero);
    H_ASSERT(zmq_connect(w->sock, ep) == 0, "connect %s: %s", ep, zmq_strerror(errno));
    proto_msg_t m;
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str("forger");
    m.u.hello.host = proto_str("localhost");
    m.u.hello.pid = (int32_t)getpid();
    m.u.hello.slots = 1;
    raw_send(w, &m);
    return w;
}

static void raw_destroy(raw_t **p)
{
    raw_t *w = *p;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_BYE);
    raw_send(w, &m);
    zmq_close(w->sock);
    zmq_ctx_term(w->ctx);
    free(w);
    *p = NULL;
}

typedef struct {
    int type;
    taskq_id_t id;
    uint32_t attempt, code;
    bool terminate;
    int64_t grace_ms;
} raw_got_t;

/* Receives until a message of type `want` (answering WELCOME with READY and
 * sending heartbeats); fails the test after timeout_ms. */
static raw_got_t raw_expect(raw_t *w, int want, int64_t timeout_ms)
{
    int64_t until = h_now_ms() + timeout_ms;
    for (;;) {
        int64_t now = h_now_ms();
        H_ASSERT(now < until, "raw worker: no message of type 0x%02x within %lld ms", want,
                 (long long)timeout_ms);
        if (now >= w->next_hb) {
            proto_msg_t hb;
            proto_msg_init(&hb, PROTO_HEARTBEAT);
            raw_send(w, &hb);
            w->next_hb = now + 500;
        }
        zmq_pollitem_t it = {.socket = w->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        proto_frames_t f;
        if (proto_recv(w->sock, false, true, &f) != TASKQ_OK) {
            proto_frames_clear(&f);
            continue;
        }
        proto_msg_t in;
        proto_msg_init(&in, f.type);
        const char *detail = NULL;
        taskq_err_t e = proto_decode(f.type, f.body, f.body_len, &in, &detail);
        H_ASSERT(e == TASKQ_OK, "raw worker: undecodable message 0x%02x: %s", f.type,
                 detail ? detail : "?");
        raw_got_t g;
        memset(&g, 0, sizeof g);
        g.type = in.type;
        if (in.type == PROTO_WELCOME) {
            proto_msg_t r;
            proto_msg_init(&r, PROTO_READY);
            r.u.ready.credit = 1;
            raw_send(w, &r);
        } else if (in.type == PROTO_TASK) {
            g.id = in.u.task.id;
            g.attempt = in.u.task.attempt;
        } else if (in.type == PROTO_CANCEL) {
            g.id = in.u.cancel.id;
            g.attempt = in.u.cancel.attempt;
            g.terminate = in.u.cancel.terminate;
            g.grace_ms = in.u.cancel.grace_ms;
        } else if (in.type == PROTO_DONE_ACK) {
            g.id = in.u.done_ack.id;
            g.attempt = in.u.done_ack.attempt;
            g.code = in.u.done_ack.code;
        } else if (in.type == PROTO_ERROR) {
            H_FAIL("raw worker got ERROR %u '%.*s'", in.u.error.code,
                   (int)in.u.error.message.len, in.u.error.message.ptr);
        }
        proto_msg_clear(&in);
        proto_frames_clear(&f);
        if (g.type == want)
            return g;
        H_ASSERT(g.type == PROTO_WELCOME || g.type == PROTO_HEARTBEAT,
                 "raw worker: got 0x%02x while waiting for 0x%02x", g.type, want);
    }
}

static void raw_done(raw_t *w, const taskq_id_t *id, uint32_t attempt)
{
    static const uint8_t nine = 0x09; /* msgpack 9 */
    proto_msg_t m;
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = *id;
    m.u.done.attempt = attempt;
    m.u.done.ok = true;
    m.u.done.result.ptr = &nine;
    m.u.done.result.len = 1;
    m.u.done.child_pid = (int32_t)getpid();
    m.u.done.started_at = tclock_wall_ms();
    raw_send(w, &m);
}

static void forged_late_done(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/raw.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db);
    taskq_client_t *c = h_client(h_broker_endpoint(b), 10000);
    raw_t *w = raw_new(h_broker_endpoint(b));
    for (int k = 0; k < 2; k++) {
        uint8_t a[16];
        taskq_task_spec_t s = h_spec("test.square", a, h_args_int(a, sizeof a, 3));
        submit(c, &s);
        raw_got_t task = raw_expect(w, PROTO_TASK, 10000);
        H_ASSERT(memcmp(task.id.b, s.id.b, 16) == 0 && task.attempt == 1,
                 "raw worker got task %s attempt %u, expected %s attempt 1",
                 h_id_str(&task.id), task.attempt, h_id_str(&s.id));
        taskq_revoke_opts_t o;
        memset(&o, 0, sizeof o);
        o.terminate = k;
        o.grace_ms = k ? 1234 : 0;
        revoke_one(c, &s.id, &o, k ? "raw worker, --terminate" : "raw worker");
        raw_got_t cancel = raw_expect(w, PROTO_CANCEL, 5000);
        H_ASSERT(memcmp(cancel.id.b, s.id.b, 16) == 0 && cancel.attempt == 1 &&
                     cancel.terminate == (k == 1) && (k == 0 || cancel.grace_ms == 1234),
                 "CANCEL: id %s attempt %u terminate %d grace_ms %lld, expected %s 1 %d %s",
                 h_id_str(&cancel.id), cancel.attempt, cancel.terminate,
                 (long long)cancel.grace_ms, h_id_str(&s.id), k, k ? "1234" : "-");
        raw_done(w, &s.id, 1);
        raw_got_t ack = raw_expect(w, PROTO_DONE_ACK, 5000);
        H_ASSERT(memcmp(ack.id.b, s.id.b, 16) == 0 && ack.attempt == 1,
                 "DONE_ACK for %s attempt %u", h_id_str(&ack.id), ack.attempt);
        H_EXPECT(ack.code == TASKQ_ESTALE,
                 "forged late DONE of a revoked attempt (%s) answered code %u (%s), expected "
                 "ESTALE", k ? "--terminate" : "cancel", ack.code, taskq_err_name((int)ack.code));
        taskq_task_t *t = h_status(c, &s.id);
        H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->result == NULL,
                 "after the forged DONE: %s result_len=%zu", taskq_state_name(t->state),
                 t->result_len);
        taskq_task_destroy(&t);
        /* the raw worker frees its slot */
        proto_msg_t r;
        proto_msg_init(&r, PROTO_READY);
        r.u.ready.credit = 1;
        raw_send(w, &r);
    }
    raw_destroy(&w);
    taskq_client_destroy(&c);
    h_log("forged late DONE of a revoked attempt: CANCEL received, DONE_ACK ESTALE, revoked");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_history_enable();
    int64_t t0 = h_now_ms();
    queued_survives_restart();
    int64_t t1 = h_now_ms();
    terminate_and_cancel();
    int64_t t2 = h_now_ms();
    forged_late_done();
    h_log("times: queued+restart %lld ms, terminate/cancel %lld ms, forged DONE %lld ms",
          (long long)(t1 - t0), (long long)(t2 - t1), (long long)(h_now_ms() - t2));
    h_check_expects();
    return 0;
}
