#define _GNU_SOURCE
/*
 * supervisor.c - the worker's loop. Each turn: compute the next deadline
 * (heartbeat, broker liveness, time limits, progress flush, respawns, grace),
 * zmq_poll, then handle children's frames, signals and broker messages in
 * that order (a child's last frames are read before its SIGCHLD is handled),
 * then hand queued tasks to idle children and grant credit (one READY per
 * turn at most, for everything freed in it).
 *
 * Credit invariant: credit granted to the broker in this session and not yet
 * spent by a TASK (credit_out), plus the tasks received and not yet started
 * (the FIFO), never exceeds the idle children plus --prefetch. With the
 * default prefetch of 0 a TASK always finds an idle child; with prefetch N
 * up to N tasks wait in the FIFO for the next free child (their time limit
 * starts when a child takes them; they are leased, so HELLO and HEARTBEAT
 * list them). A HELLO resets the broker's credit, so credit_out restarts at
 * 0 with each session.
 *
 * Lookahead (only with --prefetch): once every child is busy, queued tasks
 * are also sent to busy children behind their running task, up to
 * `lookahead` each (min(LOOKAHEAD_MAX, prefetch / children)), so that a
 * child that finishes a short task starts the next one without waiting for
 * this loop (one wake-up per several tasks instead of per task). They still
 * count as queued for the invariant above. A task in a child's lookahead
 * has not started: its time limit starts when the child's DONE for the task
 * before it arrives; if the child dies they go back to the FIFO (no attempt
 * is spent); a CANCEL for one is passed to the child, which skips it.
 */
#include "supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "chan.h"
#include "pool.h"
#include "proto.h"
#include "taskfifo.h"
#include "tclock.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

#define PROGRESS_FWD_MS 200     /* at most ~5 PROGRESS per second per task */
#define LOOKAHEAD_MAX 4         /* tasks sent to a busy child behind its running one */
#define EOF_KILL_MS 2000        /* a child that closed its channel but lives on */
#define RESPAWN_BACKOFF_MS 1000 /* after a child died during start-up */
#define RECV_BATCH 256          /* broker messages per turn */
#define CANCEL_GRACE_MAX_MS (24LL * 3600 * 1000) /* a longer grace is cut to this */

typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    bool ok, retry;
    uint8_t *result;
    size_t result_len;
    char *error;
    /* !ok only */
    char code[TQ_CODE_MAX + 1];
    bool permanent;
    int64_t retry_delay_ms;  /* -1: none */
    int64_t rate_limited_ms; /* 0: none */
    bool has_policy;
    proto_retry_policy_t policy; /* retry_on / no_retry_on owned (NULL when empty) */
    int32_t child_pid;
    int64_t started_at;
    int64_t sent_mono; /* 0: not sent in this session */
} outbox_entry_t;

/* How an attempt failed, for report_done. */
typedef struct {
    const char *code;        /* NULL or "" = "taskq.error" */
    size_t code_len;
    bool retry;              /* DONE "retry": the child died or the task was handed back */
    bool permanent;
    int64_t retry_delay_ms;  /* -1: none */
    int64_t rate_limited_ms; /* 0: none */
    const proto_retry_policy_t *policy; /* the registration's, or NULL */
} failure_t;

/* A task sent to a busy child to run after its current one (not started). */
typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    char name[TQ_NAME_MAX + 1];
    uint32_t name_len;
    uint8_t *args;            /* owned copy: the task goes back to the FIFO if the child dies */
    uint32_t args_len;
    int64_t time_limit_ms;
    bool cancelled;           /* CANCEL passed to the child: it skips the task */
} ahead_t;

/* Per-slot state of the supervisor (the pool knows no sockets or frames). */
typedef struct {
    chan_t *ch;
    bool eof;
    int64_t eof_mono;
    int64_t respawn_at;       /* DEAD slot: fork again at this time, 0 = never */
    bool prog_pending;        /* a PROGRESS not yet forwarded */
    uint64_t prog_current, prog_total;
    char prog_message[TQ_PROGRESS_MSG_MAX + 1];
    int64_t prog_sent_mono;
    bool has_policy;          /* POLICY received for the running task */
    proto_retry_policy_t policy; /* strings point into the two buffers below */
    char retry_on[TQ_PATTERNS_MAX + 1], no_retry_on[TQ_PATTERNS_MAX + 1];
    /* CANCEL of the running task (reset when the slot takes another task or
     * its child is replaced). A terminated child is never given another
     * task: after its DONE it gets STOP, so a signal meant for one attempt
     * can never land on the next. */
    bool cancelled;           /* CANCEL frame sent to the child */
    bool terminating;         /* SIGTERM sent; the child is retired */
    pid_t term_pid;           /* the child signalled ... */
    taskq_id_t term_id;       /* ... while it ran this (id, attempt) */
    uint32_t term_attempt;
    int64_t kill_at;          /* SIGKILL if it still runs it then; 0 = none */
    /* SIGKILLed at the running task's time limit while tasks waited behind
     * it: the timeout is reported on reap, after the frames the child wrote
     * before it died (a DONE at the limit is accepted, and the next task,
     * which it may then have started, counts as started: a crash) */
    bool limit_hit;
    ahead_t ahead[LOOKAHEAD_MAX]; /* lookahead, in the order the child runs them */
    size_t nahead;
    /* A revoke with terminate of a child with a lookahead also sends it
     * RETIRE: after its running task it starts nothing more and answers
     * RETIRED. Until then each DONE makes the next lookahead task the
     * running one, held here (args kept): the child may have started it
     * before it read RETIRE. RETIRED proves it did not: the held task goes
     * back to the FIFO with no attempt spent. */
    bool retiring;
    bool has_held;
    ahead_t held;
} slotx_t;

enum { SESS_HELLO, SESS_ACTIVE };

struct supervisor {
    supervisor_opts_t o;
    char *broker, *node_id;
    char **modules;
    char host[TQ_HOST_MAX + 1];
    qspec_t queues;           /* -Q: sent in HELLO */
    pool_t *pool;
    slotx_t *x;
    taskfifo_t *fifo;         /* received, not yet started (prefetch) */
    int sfd;
    void *zctx, *sock;
    int sess;
    bool hello_sent;
    int64_t last_rx, next_hb, next_hello;
    int64_t peer_hb_ms;
    uint32_t peer_liveness;
    uint32_t credit_out;
    outbox_entry_t *out;
    size_t nout, capout;
    int shutdown;             /* 0 running, 1 warm, 2 cold */
    int64_t grace_at, reserve_until;
    /* BATCH to the broker (WELCOME said it takes them): DONE, READY,
     * PROGRESS and HEARTBEAT of one loop turn travel in one message */
    bool peer_batch;
    msgpack_sbuffer bat;      /* the BATCH so far (proto_batch_begin/add/end) */
    uint32_t bat_n;
    int bat_type;             /* the type of a lone item */
    size_t bat_first;         /* where its body starts in bat */
    uint32_t bat_credit;      /* READY credit in the batch (undone if it is lost) */
    msgpack_sbuffer enc;      /* one item's encoding (reused) */
    size_t lookahead;         /* per busy child; 0 = off (no --prefetch) */
    size_t nahead;            /* tasks in all children's lookahead */
};

static void lookahead_promote(supervisor_t *self, pool_slot_t *s, int64_t now, bool hold);
static void held_drop(slotx_t *x);
static void lookahead_return(supervisor_t *self, pool_slot_t *s);

/* ---- broker socket --------------------------------------------------- */

/* Every socket option in one place. */
static void *open_socket(supervisor_t *self)
{
    void *s = zmq_socket(self->zctx, ZMQ_DEALER);
    if (!s) {
        tlog_error("zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 1000;     /* a last DONE/BYE gets a second to leave */
    int immediate = 1;     /* never queue messages to a connection that is down */
    int ivl = 100, ivl_max = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(s, self->broker) != 0) {
        tlog_error("zmq_connect %s: %s", self->broker, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

/* Sends the turn's BATCH (a lone item as itself). A lost batch is like
 * lost messages: DONEs are resent from the outbox, a READY's credit is
 * taken back so the next turn grants it again. */
static void flush_batch(supervisor_t *self)
{
    if (self->bat_n == 0)
        return;
    taskq_err_t rc;
    if (self->bat_n == 1) {
        rc = proto_send_body(self->sock, NULL, 0, self->bat_type, self->bat.data + self->bat_first,
                             self->bat.size - self->bat_first, true);
    } else {
        proto_batch_end(&self->bat, self->bat_n);
        rc = proto_send_body(self->sock, NULL, 0, PROTO_BATCH, self->bat.data, self->bat.size,
                             true);
    }
    if (rc != TASKQ_OK) {
        tlog_debug("send BATCH of %u: %s", self->bat_n, taskq_strerror(rc));
        self->credit_out -= self->bat_credit < self->credit_out ? self->bat_credit
                                                                : self->credit_out;
    }
    self->bat_n = 0;
    self->bat_credit = 0;
    self->bat.size = 0;
    if (self->bat.alloc > 256 * 1024) {
        msgpack_sbuffer_destroy(&self->bat);
        msgpack_sbuffer_init(&self->bat);
    }
}

static bool batchable(int type)
{
    return type == PROTO_DONE || type == PROTO_READY || type == PROTO_PROGRESS ||
           type == PROTO_HEARTBEAT;
}

static taskq_err_t send_msg(supervisor_t *self, const proto_msg_t *msg)
{
    if (self->peer_batch && self->sess == SESS_ACTIVE && self->sock && batchable(msg->type)) {
        msgpack_sbuffer *body = &self->enc;
        body->size = 0;
        taskq_err_t rc = proto_encode(msg, body);
        if (rc == TASKQ_OK) {
            if (self->bat_n > 0 &&
                (self->bat_n >= TQ_BATCH_ITEMS_MAX ||
                 self->bat.size + body->size + proto_batch_item_overhead(body->size) >
                     TQ_BATCH_BYTES))
                flush_batch(self);
            if (self->bat_n == 0)
                proto_batch_begin(&self->bat);
            proto_batch_add(&self->bat, msg->type, body->data, body->size);
            self->bat_type = msg->type;
            self->bat_first = self->bat.size - body->size; /* the body is the item's tail */
            self->bat_n++;
            if (msg->type == PROTO_READY)
                self->bat_credit += msg->u.ready.credit;
        } else {
            tlog_debug("encode %s: %s", proto_type_name(msg->type), taskq_strerror(rc));
        }
        if (body->alloc > 256 * 1024) {
            msgpack_sbuffer_destroy(body);
            msgpack_sbuffer_init(body);
        }
        return rc;
    }
    flush_batch(self); /* keep the order */
    taskq_err_t rc = proto_send(self->sock, NULL, 0, msg, true);
    if (rc != TASKQ_OK)
        tlog_debug("send %s: %s", proto_type_name(msg->type), taskq_strerror(rc));
    return rc;
}

static int64_t silence_ms(const supervisor_t *self)
{
    return self->peer_hb_ms * (int64_t)self->peer_liveness;
}

/* The (task, attempt) pairs this node holds: the running ones, then those
 * whose DONE is not yet acknowledged. Listing the latter in HELLO keeps the
 * broker from requeueing a finished task whose DONE is about to be resent
 * (it would then be answered ESTALE and the task run again). ls has room
 * for leases_cap() entries. */
static size_t leases_cap(const supervisor_t *self)
{
    return pool_size(self->pool) + self->nahead + taskfifo_count(self->fifo) + self->nout;
}

static uint32_t collect_leases(supervisor_t *self, proto_lease_t *ls)
{
    uint32_t n = 0;
    for (size_t i = 0; i < pool_size(self->pool) && n < TQ_LEASES_MAX; i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        if (s->state == POOL_BUSY && s->has_task) {
            ls[n].id = s->task_id;
            ls[n].attempt = s->attempt;
            n++;
        }
        const slotx_t *x = &self->x[i];
        for (size_t j = 0; j < x->nahead && n < TQ_LEASES_MAX; j++) {
            ls[n].id = x->ahead[j].id;
            ls[n].attempt = x->ahead[j].attempt;
            n++;
        }
    }
    for (size_t i = 0; i < taskfifo_count(self->fifo) && n < TQ_LEASES_MAX; i++) {
        const taskfifo_entry_t *e = taskfifo_at(self->fifo, i);
        ls[n].id = e->id;
        ls[n].attempt = e->attempt;
        n++;
    }
    for (size_t i = 0; i < self->nout && n < TQ_LEASES_MAX; i++) {
        ls[n].id = self->out[i].id;
        ls[n].attempt = self->out[i].attempt;
        n++;
    }
    return n;
}

static void send_hello(supervisor_t *self, int64_t now)
{
    proto_lease_t *ls = xcalloc(leases_cap(self) + 1, sizeof *ls);
    proto_str_t qn[TQ_QUEUES_MAX];
    for (size_t i = 0; i < self->queues.n; i++)
        qn[i] = proto_str(self->queues.names[i]);
    proto_msg_t m;
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str(self->node_id);
    m.u.hello.host = proto_str(self->host);
    m.u.hello.pid = (int32_t)getpid();
    m.u.hello.slots = (uint32_t)pool_size(self->pool);
    m.u.hello.leases = ls;
    m.u.hello.nleases = collect_leases(self, ls);
    m.u.hello.nqueues = (uint32_t)self->queues.n;
    m.u.hello.queue_names = self->queues.n ? qn : NULL;
    m.u.hello.queue_weights = self->queues.n ? self->queues.weights : NULL;
    m.u.hello.strict = self->o.strict;
    m.u.hello.batch = true;
    self->sess = SESS_HELLO;
    self->peer_batch = false; /* until the WELCOME says so */
    self->bat_n = 0;          /* items of the old session: resent or granted anew */
    self->bat_credit = 0;
    self->bat.size = 0;
    self->credit_out = 0; /* a HELLO resets the broker's credit for us */
    self->hello_sent = send_msg(self, &m) == TASKQ_OK;
    if (self->hello_sent) {
        thist_event("hello %s", self->node_id);
        tlog_info("HELLO sent to %s as node %s (%zu slots, %u leases)", self->broker,
                  self->node_id, pool_size(self->pool), m.u.hello.nleases);
        self->last_rx = now; /* the silence window starts with the HELLO */
    }
    /* with ZMQ_IMMEDIATE a HELLO is refused until the connection is up:
     * try again soon rather than a whole heartbeat later */
    self->next_hello = now + (self->o.heartbeat_ms < 100 ? self->o.heartbeat_ms : 100);
    for (size_t i = 0; i < self->nout; i++)
        self->out[i].sent_mono = 0;
    free(ls);
}

static void reconnect(supervisor_t *self, int64_t now, const char *why)
{
    tlog_warn("broker %s: %s: reconnecting", self->broker, why);
    zmq_close(self->sock);
    self->sock = open_socket(self);
    if (!self->sock) {
        tlog_error("cannot open a new broker socket; retrying next turn");
        self->sess = SESS_HELLO;
        self->hello_sent = false;
        self->next_hello = now + self->o.heartbeat_ms;
        return;
    }
    send_hello(self, now);
}

/* ---- outbox: DONEs until DONE_ACK ------------------------------------- */

static void outbox_policy_free(outbox_entry_t *e)
{
    free((char *)e->policy.retry_on.ptr);
    free((char *)e->policy.no_retry_on.ptr);
    memset(&e->policy, 0, sizeof e->policy);
    e->policy.jitter = -1;
    e->has_policy = false;
}

static void outbox_entry_free(outbox_entry_t *e)
{
    free(e->result);
    free(e->error);
    outbox_policy_free(e);
}

static proto_str_t str_dup(proto_str_t s)
{
    return s.len ? (proto_str_t){xstrndup(s.ptr, s.len), s.len} : (proto_str_t){NULL, 0};
}

static void outbox_send(supervisor_t *self, outbox_entry_t *e, int64_t now)
{
    if (self->sess != SESS_ACTIVE || !self->sock)
        return;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = e->id;
    m.u.done.attempt = e->attempt;
    m.u.done.ok = e->ok;
    m.u.done.result.ptr = e->result;
    m.u.done.result.len = (uint32_t)e->result_len;
    m.u.done.error = proto_str(e->error);
    m.u.done.retry = e->retry;
    m.u.done.child_pid = e->child_pid;
    m.u.done.started_at = e->started_at;
    m.u.done.retry_delay_ms = -1;
    m.u.done.policy.jitter = -1;
    if (!e->ok) {
        m.u.done.code = proto_str(e->code);
        m.u.done.permanent = e->permanent;
        m.u.done.retry_delay_ms = e->retry_delay_ms;
        m.u.done.rate_limited_ms = e->rate_limited_ms;
        if (e->has_policy)
            m.u.done.policy = e->policy;
    }
    taskq_err_t rc = send_msg(self, &m);
    if (rc == TASKQ_OK) {
        e->sent_mono = now;
    } else if (rc == TASKQ_EINVAL) {
        /* cannot be encoded (a result the codec refuses): report that
         * instead, so the task does not stay running forever */
        tlog_error("DONE refused by the codec; reporting a failure instead");
        free(e->result);
        e->result = NULL;
        e->result_len = 0;
        e->ok = false;
        e->retry = false;
        free(e->error);
        e->error = xstrdup("result could not be encoded");
        snprintf(e->code, sizeof e->code, "taskq.error");
        e->permanent = true; /* it would not encode the next time either */
        e->retry_delay_ms = -1;
        e->rate_limited_ms = 0;
        outbox_policy_free(e);
    }
}

/* Queues and sends a DONE: ok with the result, or (fail != NULL) failed
 * with error and fail's code, flags and policy. Everything is copied. */
static void report_done(supervisor_t *self, const taskq_id_t *id, uint32_t attempt, bool ok,
                        const void *result, size_t result_len, const char *error,
                        size_t error_len, const failure_t *fail, int32_t child_pid,
                        int64_t started_at, int64_t now)
{
    if (self->nout == self->capout) {
        self->capout = self->capout ? self->capout * 2 : 16;
        self->out = xrealloc(self->out, self->capout * sizeof *self->out);
    }
    outbox_entry_t *e = &self->out[self->nout++];
    memset(e, 0, sizeof *e);
    e->id = *id;
    e->attempt = attempt;
    e->ok = ok;
    e->retry_delay_ms = -1;
    e->policy.jitter = -1;
    if (ok && result_len) {
        e->result = xmalloc(result_len);
        memcpy(e->result, result, result_len);
        e->result_len = result_len;
    }
    e->error = xstrndup(ok ? "" : error, ok ? 0 : error_len);
    if (!ok) {
        static const failure_t plain = {.retry_delay_ms = -1};
        if (!fail)
            fail = &plain;
        size_t clen = fail->code ? fail->code_len : 0;
        if (clen == 0 || clen > TQ_CODE_MAX)
            snprintf(e->code, sizeof e->code, "taskq.error");
        else
            memcpy(e->code, fail->code, clen); /* e->code was zeroed */
        e->retry = fail->retry;
        e->permanent = fail->permanent;
        e->retry_delay_ms = fail->retry_delay_ms;
        e->rate_limited_ms = fail->rate_limited_ms;
        if (fail->policy) {
            e->has_policy = true;
            e->policy = *fail->policy;
            e->policy.retry_on = str_dup(fail->policy->retry_on);
            e->policy.no_retry_on = str_dup(fail->policy->no_retry_on);
        }
    }
    e->child_pid = child_pid;
    e->started_at = started_at;
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, idbuf);
    if (ok)
        tlog_info("task %s attempt %u succeeded (child %d)", idbuf, attempt, (int)child_pid);
    else if (e->rate_limited_ms > 0)
        tlog_info("task %s attempt %u rate limited (child %d): back in %lld ms", idbuf, attempt,
                  (int)child_pid, (long long)e->rate_limited_ms);
    else
        tlog_info("task %s attempt %u failed [%s%s] (child %d): %s", idbuf, attempt, e->code,
                  e->permanent ? ", permanent" : "", (int)child_pid, e->error);
    thist_event("done_sent %s %u", idbuf, attempt);
    outbox_send(self, e, now);
}

static void outbox_ack(supervisor_t *self, const proto_msg_t *m)
{
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&m->u.done_ack.id, idbuf);
    for (size_t i = 0; i < self->nout; i++) {
        outbox_entry_t *e = &self->out[i];
        if (e->attempt != m->u.done_ack.attempt ||
            memcmp(e->id.b, m->u.done_ack.id.b, sizeof e->id.b))
            continue;
        uint32_t code = m->u.done_ack.code;
        if (code != TASKQ_OK && code != TASKQ_ESTALE) {
            /* e.g. ESTORE: nothing was recorded; resent after the silence window */
            tlog_warn("DONE %s/%u not accepted: %s; will resend", idbuf, e->attempt,
                      taskq_err_name((int)code));
            return;
        }
        if (code == TASKQ_ESTALE)
            tlog_info("DONE %s/%u is stale (attempt no longer current)", idbuf, e->attempt);
        thist_event("done_acked %s %u %s", idbuf, e->attempt, taskq_err_name((int)code));
        outbox_entry_free(e);
        self->out[i] = self->out[--self->nout];
        return;
    }
    tlog_debug("DONE_ACK for %s/%u: not in the outbox", idbuf, m->u.done_ack.attempt);
}

/* ---- children ---------------------------------------------------------- */

static void cancel_reset(slotx_t *x)
{
    x->cancelled = false;
    x->limit_hit = false;
    x->terminating = false;
    x->term_pid = 0;
    x->kill_at = 0;
}

/* True if slot s still holds the child that was SIGTERMed for a CANCEL and
 * that child still runs the very (id, attempt) it was signalled for. */
static bool still_runs_terminated(const pool_slot_t *s, const slotx_t *x)
{
    return x->terminating && s->pid > 0 && s->pid == x->term_pid && s->state == POOL_BUSY &&
           s->has_task && s->attempt == x->term_attempt &&
           !memcmp(s->task_id.b, x->term_id.b, sizeof s->task_id.b);
}

static void send_stop(supervisor_t *self, pool_slot_t *s, const char *why)
{
    chan_frame_t stop = {.kind = CHAN_STOP};
    slotx_t *x = &self->x[s->index];
    if (pool_on(s, POOL_EV_STOP) != TASKQ_OK)
        return;
    tlog_info("child %d: STOP (%s)", (int)s->pid, why);
    if (x->ch && chan_queue(x->ch, &stop) != TASKQ_OK)
        pool_kill(s, SIGKILL);
}

static void forward_progress(supervisor_t *self, pool_slot_t *s, int64_t now)
{
    slotx_t *x = &self->x[s->index];
    if (!x->prog_pending || !s->has_task)
        return;
    x->prog_pending = false;
    x->prog_sent_mono = now;
    if (self->sess != SESS_ACTIVE)
        return; /* progress is advisory: not kept across a reconnect */
    proto_msg_t m;
    proto_msg_init(&m, PROTO_PROGRESS);
    m.u.progress.id = s->task_id;
    m.u.progress.attempt = s->attempt;
    m.u.progress.current = x->prog_current;
    m.u.progress.total = x->prog_total;
    m.u.progress.message = proto_str(x->prog_message);
    send_msg(self, &m);
}

static void on_child_frame(supervisor_t *self, pool_slot_t *s, const chan_frame_t *f,
                           int64_t now)
{
    slotx_t *x = &self->x[s->index];
    bool mine = s->state == POOL_BUSY && s->has_task && f->attempt == s->attempt &&
                !memcmp(f->id.b, s->task_id.b, sizeof f->id.b);
    switch (f->kind) {
    case CHAN_READY:
        if (s->state == POOL_STOPPING)
            return; /* told to stop while starting: it will read STOP next */
        if (pool_on(s, POOL_EV_READY) == TASKQ_OK) {
            tlog_info("child %d ready (slot %zu)", (int)s->pid, s->index);
            if (self->shutdown && taskfifo_count(self->fifo) == 0)
                send_stop(self, s, "shutting down");
        }
        return;
    case CHAN_PROGRESS:
        if (!mine) {
            tlog_debug("child %d: PROGRESS for a task it is not running", (int)s->pid);
            return;
        }
        x->prog_pending = true;
        x->prog_current = f->current;
        x->prog_total = f->total;
        memcpy(x->prog_message, f->message, f->message_len);
        x->prog_message[f->message_len] = '\0';
        if (now - x->prog_sent_mono >= PROGRESS_FWD_MS)
            forward_progress(self, s, now);
        return;
    case CHAN_POLICY:
        if (!mine) {
            tlog_error("child %d: POLICY for a task it is not running: killing it", (int)s->pid);
            pool_kill(s, SIGKILL);
            return;
        }
        x->has_policy = true;
        x->policy = f->policy;
        /* the chan bounds both by TQ_PATTERNS_MAX, the buffers' size - 1 */
        proto_str_copy(x->retry_on, sizeof x->retry_on, f->policy.retry_on);
        proto_str_copy(x->no_retry_on, sizeof x->no_retry_on, f->policy.no_retry_on);
        x->policy.retry_on.ptr = x->retry_on;
        x->policy.no_retry_on.ptr = x->no_retry_on;
        return;
    case CHAN_DONE: {
        if (!mine) {
            tlog_error("child %d: DONE for a task it is not running: killing it", (int)s->pid);
            pool_kill(s, SIGKILL);
            return;
        }
        forward_progress(self, s, now); /* the latest value goes out before DONE */
        failure_t fl = {.code = f->code, .code_len = f->code_len, .permanent = f->permanent,
                        .retry_delay_ms = f->has_retry_delay ? f->retry_delay_ms : -1,
                        .rate_limited_ms = f->rate_limited_ms,
                        .policy = x->has_policy ? &x->policy : NULL};
        report_done(self, &s->task_id, s->attempt, f->ok, f->data, f->data_len, f->data,
                    f->data_len, f->ok ? NULL : &fl, (int32_t)s->pid, s->started_at, now);
        if (f->ok)
            s->done++;
        else
            s->failed++;
        pool_on(s, POOL_EV_DONE);
        bool retire = x->terminating;
        cancel_reset(x);
        held_drop(x); /* if it was the held task, it had started */
        if (x->retiring && x->nahead)
            /* the child may have started the next before it read RETIRE:
             * it runs until RETIRED says it did not */
            lookahead_promote(self, s, now, true);
        else if (x->retiring)
            send_stop(self, s, "its task was revoked with terminate");
        else if (retire && x->nahead) {
            /* The child does not wait for us between tasks: it may already
             * run (or have finished) the first of its lookahead. Make that
             * one the running task before killing the child, so that a DONE
             * it already wrote is accepted (the reap reads it), and
             * otherwise the kill is reported as its crash (an attempt
             * spent, never a second run under the same attempt). The
             * others go back to the FIFO on reap. */
            lookahead_promote(self, s, now, false);
            tlog_info("child %d: retired after a revoke with terminate", (int)s->pid);
            pool_kill(s, SIGKILL);
        } else if (retire)
            /* SIGTERMed (maybe still pending, or ignored by the task): it
             * must not start another task; a fresh child replaces it */
            send_stop(self, s, "its task was revoked with terminate");
        else if (x->nahead)
            lookahead_promote(self, s, now, false); /* the child has started it */
        else if (self->shutdown && taskfifo_count(self->fifo) == 0)
            send_stop(self, s, "shutting down"); /* else it runs a queued task first */
        else if (self->o.max_tasks_per_child &&
                 s->done + s->failed >= self->o.max_tasks_per_child)
            send_stop(self, s, "max tasks per child reached");
        return;
    }
    case CHAN_RETIRED: {
        /* frames come in order: every task it started has its DONE read */
        if (!x->retiring || (s->state == POOL_BUSY && s->has_task &&
                             !(x->has_held && x->held.attempt == s->attempt &&
                               !memcmp(x->held.id.b, s->task_id.b, sizeof s->task_id.b)))) {
            tlog_error("child %d: RETIRED unasked or with its task unreported: killing it",
                       (int)s->pid);
            pool_kill(s, SIGKILL);
            return;
        }
        size_t back = x->nahead;
        if (s->state == POOL_BUSY && s->has_task) {
            /* the held task never started: no attempt spent (a revoked one
             * is dropped, as a revoked queued task is) */
            back++;
            if (!x->cancelled &&
                taskfifo_push(self->fifo, &x->held.id, x->held.attempt, x->held.name,
                              x->held.name_len, x->held.args, x->held.args_len,
                              x->held.time_limit_ms) != TASKQ_OK)
                tlog_error("queued task lost from the FIFO (full): the broker requeues it "
                           "when its lease expires");
            pool_on(s, POOL_EV_DONE);
        }
        if (s->state == POOL_IDLE)
            pool_on(s, POOL_EV_STOP); /* it exits: no task for it */
        held_drop(x);
        lookahead_return(self, s);
        tlog_info("child %d: retired after a revoke with terminate; %zu unstarted task(s) "
                  "back to the queue", (int)s->pid, back);
        return;
    }
    default:
        tlog_error("child %d: unexpected frame kind %d: killing it", (int)s->pid, f->kind);
        pool_kill(s, SIGKILL);
    }
}

/* Reads what a child wrote and handles whole frames. A broken channel (EOF,
 * oversize, garbage) closes it; the child's exit is then handled on reap. */
static void read_child(supervisor_t *self, pool_slot_t *s, int64_t now)
{
    slotx_t *x = &self->x[s->index];
    if (!x->ch)
        return;
    taskq_err_t rrc = chan_read(x->ch);
    for (;;) {
        chan_frame_t f;
        bool got;
        taskq_err_t rc = chan_next(x->ch, &f, &got);
        if (rc != TASKQ_OK) {
            tlog_error("child %d: broken channel (%s): killing it", (int)s->pid,
                       taskq_strerror(rc));
            pool_kill(s, SIGKILL);
            rrc = TASKQ_ECLOSED;
            break;
        }
        if (!got)
            break;
        on_child_frame(self, s, &f, now);
        if (!x->ch)
            return;
    }
    if (rrc != TASKQ_OK) {
        tlog_debug("child %d: channel closed (%s)", (int)s->pid, taskq_strerror(rrc));
        chan_destroy(&x->ch);
        x->eof = true;
        x->eof_mono = now;
    }
}

/* The running task of slot s overran its time limit (its child killed). */
static void report_timeout(supervisor_t *self, pool_slot_t *s, pid_t pid, int64_t now)
{
    slotx_t *x = &self->x[s->index];
    char err[96];
    snprintf(err, sizeof err, "time limit exceeded (%g s)", (double)s->time_limit_ms / 1000.0);
    forward_progress(self, s, now);
    /* retry false: whether a timeout is retried is the policy's call */
    static const char code[] = "taskq.timeout";
    failure_t fl = {.code = code, .code_len = sizeof code - 1, .retry_delay_ms = -1,
                    .policy = x->has_policy ? &x->policy : NULL};
    report_done(self, &s->task_id, s->attempt, false, NULL, 0, err, strlen(err), &fl,
                (int32_t)pid, s->started_at, now);
}

static void on_reap(void *arg, pool_slot_t *s, pid_t pid, int status)
{
    supervisor_t *self = arg;
    char how[96];
    pool_describe_status(status, how, sizeof how);
    if (!s) {
        tlog_debug("reaped unknown process %d (%s)", (int)pid, how);
        return;
    }
    int64_t now = tclock_mono_ms();
    slotx_t *x = &self->x[s->index];
    read_child(self, s, now); /* frames written just before it died */
    if (thist_is_enabled()) {
        char hid[TASKQ_ID_STRLEN + 1] = "-", hatt[16] = "-";
        if (s->state == POOL_BUSY && s->has_task) {
            taskq_id_format(&s->task_id, hid);
            snprintf(hatt, sizeof hatt, "%u", s->attempt);
        }
        thist_event("child_died %d %s%d %s %s", (int)pid, WIFSIGNALED(status) ? "sig" : "exit",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), hid, hatt);
    }
    if (s->state == POOL_BUSY && s->has_task && x->limit_hit) {
        /* killed at its time limit and no DONE came before the death */
        report_timeout(self, s, pid, now);
        x->respawn_at = now;
    } else if (s->state == POOL_BUSY && s->has_task) {
        char idbuf[TASKQ_ID_STRLEN + 1], err[128];
        taskq_id_format(&s->task_id, idbuf);
        /* the message of a taskq.crash failure: the child's pid is in DONE */
        if (x->cancelled)
            snprintf(err, sizeof err, "revoked; child %s", how);
        else if (WIFSIGNALED(status))
            snprintf(err, sizeof err, "child killed by signal %d", WTERMSIG(status));
        else if (WIFEXITED(status))
            snprintf(err, sizeof err, "child exited with status %d", WEXITSTATUS(status));
        else
            snprintf(err, sizeof err, "child ended with wait status 0x%x", (unsigned)status);
        tlog_warn("child %d died (%s) while running task %s (%s) attempt %u", (int)pid, how,
                  idbuf, s->task_name, s->attempt);
        forward_progress(self, s, now);
        static const char code[] = "taskq.crash";
        failure_t fl = {.code = code, .code_len = sizeof code - 1, .retry = true,
                        .retry_delay_ms = -1, .policy = x->has_policy ? &x->policy : NULL};
        report_done(self, &s->task_id, s->attempt, false, NULL, 0, err, strlen(err), &fl,
                    (int32_t)pid, s->started_at, now);
        x->respawn_at = now;
    } else if (s->state == POOL_STARTING) {
        tlog_error("child %d %s during start-up (bad --module?)", (int)pid, how);
        x->respawn_at = now + RESPAWN_BACKOFF_MS;
    } else if (s->state == POOL_STOPPING) {
        tlog_info("child %d %s", (int)pid, how);
        x->respawn_at = now;
    } else {
        tlog_warn("child %d %s while %s", (int)pid, how, pool_state_name(s->state));
        x->respawn_at = now;
    }
    lookahead_return(self, s);
    held_drop(x); /* a held task running at the death was reported above */
    x->retiring = false;
    if (self->shutdown && taskfifo_count(self->fifo) == 0)
        x->respawn_at = 0; /* queued tasks still need a child, even when stopping */
    chan_destroy(&x->ch);
    x->eof = false;
    x->prog_pending = false;
    x->has_policy = false;
    cancel_reset(x);
}

static void spawn_slot(supervisor_t *self, pool_slot_t *s, int64_t now)
{
    slotx_t *x = &self->x[s->index];
    x->respawn_at = 0;
    if (pool_spawn(self->pool, s) != TASKQ_OK) {
        x->respawn_at = now + RESPAWN_BACKOFF_MS;
        return;
    }
    x->ch = chan_new(s->fd, false);
    x->eof = false;
    x->prog_pending = false;
    x->prog_sent_mono = 0;
    x->retiring = false;
    cancel_reset(x);
}

/* ---- broker messages --------------------------------------------------- */

/* An idle child with a working channel, or NULL. */
static pool_slot_t *find_idle(supervisor_t *self)
{
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_slot_t *c = pool_slot(self->pool, i);
        if (c->state == POOL_IDLE && self->x[i].ch)
            return c;
    }
    return NULL;
}

static taskq_err_t send_task(supervisor_t *self, pool_slot_t *s, const taskq_id_t *id,
                             uint32_t attempt, const char *name, size_t name_len,
                             const void *args, size_t args_len, int64_t time_limit_ms)
{
    chan_frame_t t = {.kind = CHAN_TASK, .id = *id, .attempt = attempt, .name = name,
                      .name_len = (uint32_t)name_len, .data = args,
                      .data_len = (uint32_t)args_len, .time_limit_ms = time_limit_ms};
    return chan_queue(self->x[s->index].ch, &t);
}

/* The idle child s now runs (id, attempt): its time limit starts now. */
static void start_task(supervisor_t *self, pool_slot_t *s, const taskq_id_t *id,
                       uint32_t attempt, const char *name, size_t name_len,
                       int64_t time_limit_ms, int64_t now)
{
    int64_t limit = time_limit_ms > 0 ? time_limit_ms : self->o.time_limit_ms;
    pool_on(s, POOL_EV_ASSIGN);
    s->has_task = true;
    s->task_id = *id;
    s->attempt = attempt;
    proto_str_copy(s->task_name, sizeof s->task_name,
                   (proto_str_t){name, (uint32_t)name_len});
    s->started_at = tclock_wall_ms();
    s->started_mono = now;
    s->time_limit_ms = limit;
    s->deadline_mono = limit > 0 ? now + limit : 0;
    self->x[s->index].prog_pending = false;
    self->x[s->index].prog_sent_mono = 0;
    self->x[s->index].has_policy = false; /* the child sends the task's, if any */
    cancel_reset(&self->x[s->index]);
    if (tlog_level() <= TLOG_INFO) {
        char idbuf[TASKQ_ID_STRLEN + 1];
        taskq_id_format(id, idbuf);
        tlog_info("task %s attempt %u (%s) -> child %d", idbuf, s->attempt, s->task_name,
                  (int)s->pid);
    }
}

/* Hands a task to the idle child s; its time limit starts now. */
static void assign(supervisor_t *self, pool_slot_t *s, const taskq_id_t *id, uint32_t attempt,
                   const char *name, size_t name_len, const void *args, size_t args_len,
                   int64_t time_limit_ms, int64_t now)
{
    taskq_err_t rc = send_task(self, s, id, attempt, name, name_len, args, args_len,
                               time_limit_ms);
    start_task(self, s, id, attempt, name, name_len, time_limit_ms, now);
    if (rc != TASKQ_OK) {
        /* the child is gone or broken: its reap reports the task (retry) */
        tlog_warn("child %d: cannot pass the task (%s): killing it", (int)s->pid,
                  taskq_strerror(rc));
        pool_kill(s, SIGKILL);
    }
}

/* ---- lookahead ---------------------------------------------------------- */

/* The busy child that should take the next task behind its running one:
 * the one with the shortest lookahead, among those that may take one. */
static pool_slot_t *lookahead_target(supervisor_t *self)
{
    pool_slot_t *best = NULL;
    size_t best_n = self->lookahead;
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        slotx_t *x = &self->x[i];
        if (s->state != POOL_BUSY || !s->has_task || !x->ch || x->eof || x->cancelled ||
            x->terminating || x->retiring || x->limit_hit || x->nahead >= best_n)
            continue;
        if (self->o.max_tasks_per_child &&
            s->done + s->failed + 1 + x->nahead >= self->o.max_tasks_per_child)
            continue; /* its last task is the running or a queued one */
        best = s;
        best_n = x->nahead;
    }
    return best;
}

/* Moves the FIFO's head into child s's lookahead and sends it. */
static void lookahead_push(supervisor_t *self, pool_slot_t *s)
{
    slotx_t *x = &self->x[s->index];
    const taskfifo_entry_t *e = taskfifo_at(self->fifo, 0);
    ahead_t *a = &x->ahead[x->nahead++];
    self->nahead++;
    a->id = e->id;
    a->attempt = e->attempt;
    memcpy(a->name, e->name, e->name_len);
    a->name[e->name_len] = '\0';
    a->name_len = e->name_len;
    a->args = e->args_len ? xmalloc(e->args_len) : NULL;
    if (e->args_len)
        memcpy(a->args, e->args, e->args_len);
    a->args_len = e->args_len;
    a->time_limit_ms = e->time_limit_ms;
    a->cancelled = false;
    taskfifo_pop(self->fifo);
    if (send_task(self, s, &a->id, a->attempt, a->name, a->name_len, a->args, a->args_len,
                  a->time_limit_ms) != TASKQ_OK) {
        /* broken: its reap hands the lookahead back to the FIFO */
        tlog_warn("child %d: cannot pass a queued task: killing it", (int)s->pid);
        pool_kill(s, SIGKILL);
    }
}

/* Child s reported its running task: the first of its lookahead runs now. */
static void lookahead_promote(supervisor_t *self, pool_slot_t *s, int64_t now, bool hold)
{
    slotx_t *x = &self->x[s->index];
    ahead_t a = x->ahead[0];
    memmove(&x->ahead[0], &x->ahead[1], (x->nahead - 1) * sizeof x->ahead[0]);
    x->nahead--;
    self->nahead--;
    start_task(self, s, &a.id, a.attempt, a.name, a.name_len, a.time_limit_ms, now);
    if (a.cancelled)
        x->cancelled = true; /* the child skips it; its CANCEL is not sent again */
    if (hold) {
        held_drop(x);
        x->held = a; /* keeps the args: RETIRED hands it back to the FIFO */
        x->has_held = true;
    } else
        free(a.args);
}

static void held_drop(slotx_t *x)
{
    if (x->has_held)
        free(x->held.args);
    x->has_held = false;
}

/* Child s is gone: its lookahead never started; back to the FIFO (no
 * attempt spent). They go to the FIFO's tail: order after a crash is best
 * effort. A cancelled one is dropped, as a revoked queued task is. */
static void lookahead_return(supervisor_t *self, pool_slot_t *s)
{
    slotx_t *x = &self->x[s->index];
    for (size_t j = 0; j < x->nahead; j++) {
        ahead_t *a = &x->ahead[j];
        if (!a->cancelled &&
            taskfifo_push(self->fifo, &a->id, a->attempt, a->name, a->name_len, a->args,
                          a->args_len, a->time_limit_ms) != TASKQ_OK)
            tlog_error("queued task lost from the FIFO (full): the broker requeues it when "
                       "its lease expires");
        free(a->args);
    }
    self->nahead -= x->nahead;
    x->nahead = 0;
}

/* (id, attempt) in some child's lookahead: its slot and position. */
static bool lookahead_find(supervisor_t *self, const taskq_id_t *id, uint32_t attempt,
                           size_t *slot, size_t *pos)
{
    for (size_t i = 0; i < pool_size(self->pool) && self->nahead; i++) {
        slotx_t *x = &self->x[i];
        for (size_t j = 0; j < x->nahead; j++)
            if (x->ahead[j].attempt == attempt &&
                !memcmp(x->ahead[j].id.b, id->b, sizeof id->b)) {
                *slot = i;
                *pos = j;
                return true;
            }
    }
    return false;
}

/* Queued tasks go to free children, oldest first; then, with lookahead,
 * behind busy children's running tasks. */
static void dispatch_fifo(supervisor_t *self, int64_t now)
{
    while (taskfifo_count(self->fifo) > 0) {
        pool_slot_t *s = find_idle(self);
        if (!s)
            break;
        const taskfifo_entry_t *e = taskfifo_at(self->fifo, 0);
        /* e stays valid across the pop until the next push */
        taskfifo_pop(self->fifo);
        assign(self, s, &e->id, e->attempt, e->name, e->name_len, e->args, e->args_len,
               e->time_limit_ms, now);
    }
    while (self->lookahead && taskfifo_count(self->fifo) > 0) {
        pool_slot_t *s = lookahead_target(self);
        if (!s)
            break;
        lookahead_push(self, s);
    }
}

/* True if some child is or will be able to take a task (not stopping). */
static bool has_live_child(supervisor_t *self)
{
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_state_t st = pool_slot(self->pool, i)->state;
        if (st == POOL_IDLE || st == POOL_BUSY || st == POOL_STARTING)
            return true;
    }
    return false;
}

static void on_task(supervisor_t *self, const proto_msg_t *m, int64_t now)
{
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&m->u.task.id, idbuf);
    if (self->credit_out > 0)
        self->credit_out--;
    else
        tlog_warn("TASK %s received without outstanding credit", idbuf);
    size_t ai, aj;
    if (pool_find_task(self->pool, &m->u.task.id, m->u.task.attempt) ||
        taskfifo_has(self->fifo, &m->u.task.id, m->u.task.attempt) ||
        lookahead_find(self, &m->u.task.id, m->u.task.attempt, &ai, &aj)) {
        tlog_warn("TASK %s attempt %u is already running or queued here: ignored", idbuf,
                  m->u.task.attempt);
        return;
    }
    /* FIFO order: a TASK overtakes no queued one */
    pool_slot_t *s = taskfifo_count(self->fifo) == 0 ? find_idle(self) : NULL;
    if (s) {
        assign(self, s, &m->u.task.id, m->u.task.attempt, m->u.task.name.ptr,
               m->u.task.name.len, m->u.task.args.ptr, m->u.task.args.len,
               m->u.task.time_limit_ms, now);
        return;
    }
    /* Queue it for the next free child. The FIFO has room for --prefetch plus
     * one per child, so a TASK sent against the credit of a child that died
     * idle waits for the respawned one instead of costing an attempt. */
    if ((!self->shutdown || has_live_child(self)) &&
        taskfifo_push(self->fifo, &m->u.task.id, m->u.task.attempt, m->u.task.name.ptr,
                      m->u.task.name.len, m->u.task.args.ptr, m->u.task.args.len,
                      m->u.task.time_limit_ms) == TASKQ_OK) {
        tlog_debug("task %s attempt %u queued (%zu waiting)", idbuf, m->u.task.attempt,
                   taskfifo_count(self->fifo));
        return;
    }
    if (self->shutdown)
        tlog_warn("TASK %s: no free slot (shutting down): handing it back", idbuf);
    else
        tlog_error("TASK %s: no free slot and the queue is full: handing it back (credit "
                   "accounting bug?)", idbuf);
    /* the node gives the lease up unrun, as a dead node would: taskq.lost */
    static const char err[] = "no free slot", code[] = "taskq.lost";
    failure_t fl = {.code = code, .code_len = sizeof code - 1, .retry = true,
                    .retry_delay_ms = -1};
    report_done(self, &m->u.task.id, m->u.task.attempt, false, NULL, 0, err, sizeof err - 1,
                &fl, 0, tclock_wall_ms(), now);
}

/* CANCEL (id, attempt): the broker has committed the revoke and voided the
 * lease. Only the child running exactly that attempt is touched; a
 * prefetched copy is dropped (its credit returns with the next READY); any
 * other CANCEL (the DONE is already out, or it never came here) is ignored.
 * History: "cancel ID ATTEMPT PID terminate|soft" is written BEFORE the
 * frame and the signal, then "cancel_kill ID ATTEMPT PID" before a
 * SIGKILL, "cancel_drop ID ATTEMPT" for a prefetched one and
 * "cancel_ignored ID ATTEMPT" otherwise. */
static void on_cancel(supervisor_t *self, const proto_msg_t *m, int64_t now)
{
    const taskq_id_t *id = &m->u.cancel.id;
    uint32_t attempt = m->u.cancel.attempt;
    bool terminate = m->u.cancel.terminate;
    int64_t grace = m->u.cancel.grace_ms > 0 ? m->u.cancel.grace_ms : TQ_DEFAULT_REVOKE_GRACE_MS;
    if (grace > CANCEL_GRACE_MAX_MS)
        grace = CANCEL_GRACE_MAX_MS; /* the codec allows any uint64 */
    char idbuf[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, idbuf);
    pool_slot_t *s = pool_find_task(self->pool, id, attempt);
    if (s) {
        slotx_t *x = &self->x[s->index];
        tlog_info("task %s (%s) attempt %u revoked: %s child %d", idbuf, s->task_name, attempt,
                  terminate ? "terminating" : "cancelling in", (int)s->pid);
        thist_event("cancel %s %u %d %s", idbuf, attempt, (int)s->pid,
                    terminate ? "terminate" : "soft");
        if (!x->cancelled) {
            x->cancelled = true;
            chan_frame_t cf = {.kind = CHAN_CANCEL, .id = *id, .attempt = attempt};
            taskq_err_t rc = x->ch ? chan_queue(x->ch, &cf) : TASKQ_ECLOSED;
            if (rc != TASKQ_OK)
                /* the child is dying or gone: its reap reports the attempt */
                tlog_debug("child %d: CANCEL not passed (%s)", (int)s->pid, taskq_strerror(rc));
        }
        if (terminate && !x->terminating) {
            x->terminating = true;
            x->term_pid = s->pid;
            x->term_id = *id;
            x->term_attempt = attempt;
            x->kill_at = now + grace;
            if (x->nahead && !x->retiring && x->ch) {
                /* the tasks behind it must not start in a child that a
                 * SIGTERM may still hit: hand them back (RETIRED) */
                chan_frame_t rf = {.kind = CHAN_RETIRE};
                if (chan_queue(x->ch, &rf) == TASKQ_OK)
                    x->retiring = true;
            }
            pool_kill(s, SIGTERM);
        }
        return;
    }
    size_t ai, aj;
    if (lookahead_find(self, id, attempt, &ai, &aj)) {
        /* sent to a busy child behind its running task: the child skips it
         * (a terminate never signals that child: it runs another task) */
        slotx_t *x = &self->x[ai];
        pool_slot_t *cs = pool_slot(self->pool, ai);
        tlog_info("task %s attempt %u revoked before it started: child %d skips it", idbuf,
                  attempt, (int)cs->pid);
        thist_event("cancel_ahead %s %u", idbuf, attempt);
        if (!x->ahead[aj].cancelled) {
            x->ahead[aj].cancelled = true;
            chan_frame_t cf = {.kind = CHAN_CANCEL, .id = *id, .attempt = attempt};
            if (x->ch && chan_queue(x->ch, &cf) != TASKQ_OK)
                tlog_debug("child %d: CANCEL not passed", (int)cs->pid);
        }
        return;
    }
    if (taskfifo_remove(self->fifo, id, attempt)) {
        tlog_info("task %s attempt %u revoked before it started: dropped (%zu still waiting)",
                  idbuf, attempt, taskfifo_count(self->fifo));
        thist_event("cancel_drop %s %u", idbuf, attempt);
        return;
    }
    tlog_debug("CANCEL %s attempt %u: not running or waiting here: ignored", idbuf, attempt);
    thist_event("cancel_ignored %s %u", idbuf, attempt);
}

static void on_welcome(supervisor_t *self, const proto_msg_t *m, int64_t now)
{
    if (self->sess == SESS_ACTIVE) {
        tlog_warn("WELCOME while already in session: ignored");
        return;
    }
    self->sess = SESS_ACTIVE;
    self->peer_hb_ms = m->u.welcome.heartbeat_ms;
    self->peer_liveness = m->u.welcome.liveness;
    self->peer_batch = m->u.welcome.batch;
    self->credit_out = 0;
    self->next_hb = now;
    char bid[TQ_NODE_MAX + 1];
    proto_str_copy(bid, sizeof bid, m->u.welcome.broker);
    tlog_info("WELCOME from broker %s (heartbeat %lld ms, liveness %u); %zu DONE(s) to resend",
              bid, (long long)self->peer_hb_ms, self->peer_liveness, self->nout);
    if (self->shutdown) {
        proto_msg_t bye;
        proto_msg_init(&bye, PROTO_BYE);
        send_msg(self, &bye);
    }
    /* READY (credit for the idle children) goes out at the end of the turn */
    for (size_t i = 0; i < self->nout; i++)
        outbox_send(self, &self->out[i], now);
}

static void on_broker_msg(supervisor_t *self, const proto_msg_t *m, int64_t now)
{
    switch (m->type) {
    case PROTO_WELCOME:
        on_welcome(self, m, now);
        break;
    case PROTO_TASK:
        on_task(self, m, now);
        break;
    case PROTO_DONE_ACK:
        outbox_ack(self, m);
        break;
    case PROTO_CANCEL:
        on_cancel(self, m, now);
        break;
    case PROTO_HEARTBEAT:
        break;
    case PROTO_ERROR: {
        char text[TQ_MESSAGE_MAX + 1];
        proto_str_copy(text, sizeof text, m->u.error.message);
        tlog_write(self->shutdown ? TLOG_INFO : TLOG_WARN, __FILE__, __LINE__, __func__,
                   "ERROR from broker: %s: %s", taskq_err_name((int)m->u.error.code), text);
        if (m->u.error.code != TASKQ_ECLOSED)
            break;
        /* "unknown session". After BYE the broker forgets a node that holds
         * no leases: expected then, and no reason to register again. */
        if (self->shutdown && self->nout == 0 && pool_count(self->pool, POOL_BUSY) == 0) {
            tlog_info("broker has forgotten this node after BYE");
            self->sess = SESS_HELLO;
            self->hello_sent = false;
            self->next_hello = INT64_MAX;
        } else {
            send_hello(self, now); /* start the session again */
        }
        break;
    }
    default:
        tlog_warn("unexpected %s from the broker: ignored", proto_type_name(m->type));
    }
}

static void broker_body(supervisor_t *self, int type, const void *body, size_t len, int64_t now)
{
    proto_msg_t m;
    proto_msg_init(&m, 0);
    const char *detail = NULL;
    taskq_err_t rc = proto_decode(type, body, len, &m, &detail);
    if (rc != TASKQ_OK)
        tlog_warn("bad %s from the broker: %s (%s)", proto_type_name(type), taskq_strerror(rc),
                  detail ? detail : "");
    else
        on_broker_msg(self, &m, now);
    proto_msg_clear(&m);
}

static void read_broker(supervisor_t *self, int64_t now)
{
    for (int i = 0; i < RECV_BATCH && self->sock; i++) {
        proto_frames_t f;
        memset(&f, 0, sizeof f);
        taskq_err_t rc = proto_recv(self->sock, false, true, &f);
        if (rc == TASKQ_ETIMEDOUT)
            break;
        self->last_rx = now; /* anything from the broker is a sign of life */
        if (rc != TASKQ_OK) {
            tlog_warn("malformed message from the broker: %s", taskq_strerror(rc));
            proto_frames_clear(&f);
            if (rc == TASKQ_ESYS)
                break;
            continue;
        }
        if (f.type == PROTO_BATCH) {
            proto_batch_iter_t it;
            proto_item_t item;
            rc = proto_batch_open(&it, f.body, f.body_len);
            while (rc == TASKQ_OK && (rc = proto_batch_next(&it, &item)) == TASKQ_OK)
                broker_body(self, item.type, item.body, item.len, now);
            if (rc != TASKQ_ENOTFOUND)
                tlog_warn("malformed BATCH from the broker: %s", taskq_strerror(rc));
        } else {
            broker_body(self, f.type, f.body, f.body_len, now);
        }
        proto_frames_clear(&f);
    }
}

/* ---- timers ------------------------------------------------------------ */

static void send_heartbeat(supervisor_t *self, int64_t now)
{
    size_t n = pool_size(self->pool);
    proto_child_t *cs = xcalloc(n, sizeof *cs);
    proto_lease_t *ls = xcalloc(leases_cap(self) + 1, sizeof *ls);
    uint32_t nc = 0;
    size_t busy = 0, idle = 0;
    for (size_t i = 0; i < n; i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        if (s->state == POOL_DEAD)
            continue;
        proto_child_t *c = &cs[nc++];
        c->pid = (int32_t)s->pid;
        c->state = proto_str(pool_state_name(s->state));
        c->has_task = s->state == POOL_BUSY && s->has_task;
        if (c->has_task) {
            c->task_id = s->task_id;
            c->task_name = proto_str(s->task_name);
            c->running_ms = now - s->started_mono;
            busy++;
        } else {
            c->task_name = proto_str("");
        }
        idle += s->state == POOL_IDLE;
        c->done = s->done;
        c->failed = s->failed;
        c->rss_kb = pool_rss_kb(s->pid);
    }
    proto_msg_t m;
    proto_msg_init(&m, PROTO_HEARTBEAT);
    m.u.heartbeat.children = cs;
    m.u.heartbeat.nchildren = nc;
    m.u.heartbeat.leases = ls;
    m.u.heartbeat.nleases = collect_leases(self, ls);
    send_msg(self, &m);
    tlog_debug("node %s: %u children (%zu busy, %zu idle), %zu queued, credit %u, "
               "%zu DONE unacked%s", self->node_id, nc, busy, idle,
               taskfifo_count(self->fifo), self->credit_out, self->nout,
               self->shutdown ? ", shutting down" : "");
    free(cs);
    free(ls);
}

/* Runs what is due and returns the next deadline (monotonic ms). */
static int64_t run_timers(supervisor_t *self, int64_t now)
{
    int64_t next = now + 1000;
#define DUE(t) ((t) <= now ? true : ((t) < next ? (next = (t), false) : false))
    /* broker session */
    if (self->sess == SESS_ACTIVE) {
        if (DUE(self->next_hb)) {
            send_heartbeat(self, now);
            self->next_hb = now + self->o.heartbeat_ms;
            if (self->next_hb < next)
                next = self->next_hb;
        }
    } else if (!self->hello_sent && DUE(self->next_hello)) {
        if (self->sock)
            send_hello(self, now);
        else
            reconnect(self, now, "no socket");
    }
    if (self->hello_sent || self->sess == SESS_ACTIVE) {
        int64_t dead_at = self->last_rx + silence_ms(self);
        if (DUE(dead_at)) {
            char why[64];
            snprintf(why, sizeof why, "silent for %lld ms", (long long)(now - self->last_rx));
            self->sess = SESS_HELLO;
            if (self->shutdown) {
                tlog_warn("broker %s: %s during shutdown: giving up on it", self->broker, why);
                self->hello_sent = false;
                self->next_hello = INT64_MAX;
            } else {
                reconnect(self, now, why);
            }
        }
    }
    /* DONEs not acknowledged for a whole silence window are sent again
     * (DONE is idempotent on the broker) */
    for (size_t i = 0; i < self->nout && self->sess == SESS_ACTIVE; i++) {
        outbox_entry_t *e = &self->out[i];
        if (e->sent_mono == 0 || DUE(e->sent_mono + silence_ms(self)))
            outbox_send(self, e, now);
    }
    /* children */
    size_t idle_allowed = 0;
    if (self->shutdown == 1 && now < self->reserve_until) {
        idle_allowed = self->credit_out; /* TASKs may still be on the way */
        (void)DUE(self->reserve_until);
    }
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        slotx_t *x = &self->x[i];
        if (s->state == POOL_BUSY && s->deadline_mono && DUE(s->deadline_mono)) {
            char idbuf[TASKQ_ID_STRLEN + 1], err[96];
            taskq_id_format(&s->task_id, idbuf);
            snprintf(err, sizeof err, "time limit exceeded (%g s)", (double)s->time_limit_ms / 1000.0);
            tlog_warn("task %s (%s) attempt %u: %s: killing child %d", idbuf, s->task_name,
                      s->attempt, err, (int)s->pid);
            thist_event("time_limit %s %u %d", idbuf, s->attempt, (int)s->pid);
            pool_kill(s, SIGKILL);
            if (x->nahead) {
                /* the child may have written the DONE and started the next
                 * one just now: the reap decides (limit_hit) */
                x->limit_hit = true;
                s->deadline_mono = 0;
            } else {
                report_timeout(self, s, s->pid, now);
                s->failed++;
                pool_on(s, POOL_EV_KILL);
            }
        }
        if (x->kill_at && DUE(x->kill_at)) {
            /* the grace of a revoke --terminate is over: SIGKILL, but only
             * the same child still running the same (id, attempt) */
            x->kill_at = 0;
            if (still_runs_terminated(s, x)) {
                char idbuf[TASKQ_ID_STRLEN + 1];
                taskq_id_format(&s->task_id, idbuf);
                tlog_warn("task %s (%s) attempt %u: child %d still running after SIGTERM: "
                          "SIGKILL", idbuf, s->task_name, s->attempt, (int)s->pid);
                thist_event("cancel_kill %s %u %d", idbuf, s->attempt, (int)s->pid);
                pool_kill(s, SIGKILL);
            }
        }
        if (s->state == POOL_BUSY && x->prog_pending &&
            DUE(x->prog_sent_mono + PROGRESS_FWD_MS))
            forward_progress(self, s, now);
        if (x->eof && s->state != POOL_DEAD && DUE(x->eof_mono + EOF_KILL_MS)) {
            tlog_warn("child %d closed its channel but did not exit: killing it", (int)s->pid);
            pool_kill(s, SIGKILL);
            x->eof_mono = now; /* again later if SIGKILL got lost somehow */
        }
        if (s->state == POOL_DEAD && x->respawn_at &&
            (!self->shutdown || taskfifo_count(self->fifo) > 0) && DUE(x->respawn_at))
            spawn_slot(self, s, now);
        if (self->shutdown == 1 && s->state == POOL_IDLE && taskfifo_count(self->fifo) == 0) {
            if (idle_allowed > 0)
                idle_allowed--;
            else
                send_stop(self, s, "warm shutdown");
        }
    }
    if (self->shutdown == 1)
        (void)DUE(self->grace_at);
#undef DUE
    return next;
}

/* ---- signals and shutdown ---------------------------------------------- */

static void start_warm_shutdown(supervisor_t *self, int signo, int64_t now)
{
    self->shutdown = 1;
    self->grace_at = now + self->o.grace_ms;
    /* TASKs the broker sent against credit before it saw BYE still arrive:
     * keep that many idle children for a couple of broker heartbeats */
    self->reserve_until = now + 2 * self->peer_hb_ms;
    tlog_info("signal %d: warm shutdown (grace %lld ms): BYE, no more credit, %zu busy "
              "children finish their tasks, then the %zu queued ones", signo,
              (long long)self->o.grace_ms, pool_count(self->pool, POOL_BUSY),
              taskfifo_count(self->fifo));
    if (self->sess == SESS_ACTIVE) {
        proto_msg_t bye;
        proto_msg_init(&bye, PROTO_BYE);
        send_msg(self, &bye);
    }
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        if (taskfifo_count(self->fifo) > 0)
            continue; /* queued tasks run first: children stop when it is empty */
        self->x[i].respawn_at = 0;
        if (s->state == POOL_STARTING)
            send_stop(self, s, "warm shutdown");
    }
}

static void kill_all(supervisor_t *self)
{
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        pool_slot_t *s = pool_slot(self->pool, i);
        if (s->state == POOL_DEAD)
            continue;
        pool_kill(s, SIGKILL);
        int st;
        while (waitpid(s->pid, &st, 0) < 0 && errno == EINTR) {
        }
        pool_on(s, POOL_EV_EXIT);
        chan_destroy(&self->x[i].ch);
    }
}

static void read_signals(supervisor_t *self, int64_t now)
{
    struct signalfd_siginfo si;
    while (read(self->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            pool_reap(self->pool, on_reap, self);
        } else if (self->shutdown == 0) {
            start_warm_shutdown(self, (int)si.ssi_signo, now);
        } else {
            tlog_error("second signal %u: cold shutdown", si.ssi_signo);
            self->shutdown = 2;
        }
    }
    pool_reap(self->pool, on_reap, self); /* SIGCHLDs coalesce */
}

/* ---- the loop ----------------------------------------------------------- */

static void grant_credit(supervisor_t *self)
{
    if (self->sess != SESS_ACTIVE || self->shutdown)
        return;
    /* credit_out + queued <= idle + prefetch (the invariant at the top) */
    size_t want = pool_count(self->pool, POOL_IDLE) + self->o.prefetch;
    size_t queued = taskfifo_count(self->fifo) + self->nahead;
    want = want > queued ? want - queued : 0;
    if (want <= self->credit_out)
        return;
    /* With prefetch, top up in batches of a quarter of it rather than one
     * READY per freed slot, unless the children could run dry first. */
    size_t batch = self->o.prefetch / 4 ? self->o.prefetch / 4 : 1;
    if (want - self->credit_out < batch && self->credit_out + queued >= pool_size(self->pool))
        return;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_READY);
    m.u.ready.credit = (uint32_t)(want - self->credit_out);
    if (send_msg(self, &m) == TASKQ_OK) {
        tlog_debug("READY credit %u", m.u.ready.credit);
        self->credit_out += m.u.ready.credit;
    }
}

static bool warm_done(supervisor_t *self)
{
    if (pool_count(self->pool, POOL_DEAD) != pool_size(self->pool) ||
        taskfifo_count(self->fifo) > 0)
        return false; /* queued tasks wait for a respawned child */
    if (self->nout == 0)
        return true;
    if (self->sess != SESS_ACTIVE) {
        tlog_warn("broker unreachable: %zu DONE(s) unacknowledged; the broker requeues "
                  "them when their leases expire", self->nout);
        return true;
    }
    return false;
}

/* Writes what each child's channel has queued (chan_queue). A child whose
 * channel is broken is killed: its reap reports its task. What the socket
 * does not take now goes on POLLOUT. */
static void flush_children(supervisor_t *self)
{
    for (size_t i = 0; i < pool_size(self->pool); i++) {
        chan_t *ch = self->x[i].ch;
        if (!ch || !chan_has_output(ch))
            continue;
        taskq_err_t rc = chan_flush(ch);
        if (rc != TASKQ_OK) {
            pool_slot_t *s = pool_slot(self->pool, i);
            tlog_warn("child %d: cannot write to its channel (%s): killing it", (int)s->pid,
                      taskq_strerror(rc));
            pool_kill(s, SIGKILL);
        }
    }
}

int supervisor_run(supervisor_t *self)
{
    size_t n = pool_size(self->pool);
    zmq_pollitem_t *items = xcalloc(n + 2, sizeof *items);
    size_t *slot_of = xcalloc(n + 2, sizeof *slot_of);
    int code = 0;
    self->last_rx = tclock_mono_ms();
    thist_open("worker");
    send_hello(self, self->last_rx);
    for (;;) {
        int64_t now = tclock_mono_ms();
        if (self->shutdown == 1 && now >= self->grace_at) {
            tlog_error("grace of %lld ms over: cold shutdown", (long long)self->o.grace_ms);
            self->shutdown = 2;
        }
        if (self->shutdown == 2) {
            tlog_error("cold shutdown: killing %zu children; their tasks and %zu queued "
                       "ones are left to the broker to requeue",
                       n - pool_count(self->pool, POOL_DEAD), taskfifo_count(self->fifo));
            kill_all(self);
            code = 1;
            break;
        }
        if (self->shutdown == 1 && warm_done(self)) {
            tlog_info("warm shutdown complete");
            break;
        }
        int64_t next = run_timers(self, now);
        dispatch_fifo(self, now);
        grant_credit(self);
        flush_children(self); /* this turn's frames to each child: one send each */
        size_t k = 0;
        if (self->sock) {
            items[k].socket = self->sock;
            items[k].fd = -1;
            items[k++].events = ZMQ_POLLIN;
        }
        items[k].socket = NULL;
        items[k].fd = self->sfd;
        items[k++].events = ZMQ_POLLIN;
        size_t first_child = k;
        for (size_t i = 0; i < n; i++) {
            chan_t *ch = self->x[i].ch;
            if (!ch)
                continue;
            items[k].socket = NULL;
            items[k].fd = chan_fd(ch);
            items[k].events = (short)(ZMQ_POLLIN | (chan_has_output(ch) ? ZMQ_POLLOUT : 0));
            slot_of[k++] = i;
        }
        int64_t wait = next - now;
        if (wait < 0)
            wait = 0;
        flush_batch(self); /* this turn's DONE / READY / PROGRESS / HEARTBEAT */
        int rc = zmq_poll(items, (int)k, (long)wait);
        if (rc < 0 && errno != EINTR) {
            tlog_error("zmq_poll: %s", zmq_strerror(errno));
            code = 1;
            kill_all(self);
            break;
        }
        now = tclock_mono_ms();
        if (rc <= 0)
            continue;
        /* children first: frames a child wrote before dying are read before
         * its SIGCHLD is handled */
        for (size_t j = first_child; j < k; j++) {
            pool_slot_t *s = pool_slot(self->pool, slot_of[j]);
            chan_t *ch = self->x[slot_of[j]].ch;
            if (!ch || chan_fd(ch) != items[j].fd)
                continue; /* replaced during this turn */
            if (items[j].revents & ZMQ_POLLOUT && chan_flush(ch) != TASKQ_OK)
                items[j].revents |= ZMQ_POLLIN; /* the read sees the EOF */
            if (items[j].revents & (ZMQ_POLLIN | ZMQ_POLLERR))
                read_child(self, s, now);
        }
        if (items[first_child - 1].revents & ZMQ_POLLIN)
            read_signals(self, now);
        if (self->sock && items[0].socket == self->sock && (items[0].revents & ZMQ_POLLIN))
            read_broker(self, now);
        dispatch_fifo(self, now);
        grant_credit(self); /* one READY per turn, for every child freed in it */
    }
    if (self->sock)
        flush_batch(self);
    free(items);
    free(slot_of);
    return code;
}

/* ---- construction ------------------------------------------------------- */

supervisor_t *supervisor_new(const supervisor_opts_t *opts, taskq_err_t *err)
{
    taskq_err_t e = TASKQ_OK;
    if (!opts || opts->nchildren == 0 || opts->nchildren > TQ_SLOTS_MAX ||
        opts->prefetch > TQ_LEASES_MAX - opts->nchildren || !opts->broker ||
        !opts->node_id ||
        !proto_name_is_valid(opts->node_id, strlen(opts->node_id), TQ_NODE_MAX) ||
        opts->heartbeat_ms <= 0 || opts->liveness == 0 ||
        (opts->queues && opts->queues->n > TQ_QUEUES_MAX)) {
        if (err)
            *err = TASKQ_EINVAL;
        return NULL;
    }
    supervisor_t *self = xcalloc(1, sizeof *self);
    self->o = *opts;
    self->broker = xstrdup(opts->broker);
    self->node_id = xstrdup(opts->node_id);
    self->modules = xcalloc(opts->nmodules + 1, sizeof *self->modules);
    for (size_t i = 0; i < opts->nmodules; i++)
        self->modules[i] = xstrdup(opts->modules[i]);
    self->o.broker = self->broker;
    self->o.node_id = self->node_id;
    self->o.modules = (const char *const *)self->modules;
    if (opts->queues)
        self->queues = *opts->queues;
    self->o.queues = &self->queues;
    self->peer_hb_ms = opts->heartbeat_ms;
    self->peer_liveness = opts->liveness;
    self->sfd = -1;
    if (gethostname(self->host, sizeof self->host - 1) != 0)
        snprintf(self->host, sizeof self->host, "unknown");
    for (char *p = self->host; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            *p = '_';

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
        (self->sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
        tlog_error("signalfd: %s", strerror(errno));
        e = TASKQ_ESYS;
        goto fail;
    }
    /* children first, then ZeroMQ: the start-up children are forked from a
     * process without ZeroMQ threads (later ones exec at once anyway) */
    self->pool = pool_new(opts->nchildren, opts->exe, self->o.modules, opts->nmodules);
    self->x = xcalloc(opts->nchildren, sizeof *self->x);
    self->fifo = taskfifo_new(opts->prefetch + opts->nchildren);
    if (opts->prefetch && opts->nchildren) {
        size_t per = opts->prefetch / opts->nchildren;
        self->lookahead = per < 1 ? 1 : per > LOOKAHEAD_MAX ? LOOKAHEAD_MAX : per;
    }
    int64_t now = tclock_mono_ms();
    for (size_t i = 0; i < opts->nchildren; i++)
        spawn_slot(self, pool_slot(self->pool, i), now);
    self->zctx = zmq_ctx_new();
    if (!self->zctx) {
        tlog_error("zmq_ctx_new: %s", zmq_strerror(errno));
        e = TASKQ_ESYS;
        goto fail;
    }
    self->sock = open_socket(self);
    if (!self->sock) {
        e = TASKQ_EINVAL;
        goto fail;
    }
    char qs[256] = "every queue";
    if (self->queues.n) {
        size_t off = 0;
        for (size_t i = 0; i < self->queues.n && off < sizeof qs; i++)
            off += (size_t)snprintf(qs + off, sizeof qs - off, "%s%s=%u", i ? "," : "",
                                    self->queues.names[i], self->queues.weights[i]);
    }
    tlog_info("node %s: %zu children, prefetch %zu, queues %s%s, broker %s", self->node_id,
              opts->nchildren, opts->prefetch, qs, opts->strict ? " (strict)" : "",
              self->broker);
    return self;
fail:
    if (err)
        *err = e;
    supervisor_destroy(&self);
    return NULL;
}

void supervisor_destroy(supervisor_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    supervisor_t *self = *self_p;
    if (self->pool) {
        kill_all(self);
        pool_destroy(&self->pool);
    }
    for (size_t i = 0; self->x && i < self->o.nchildren; i++) {
        for (size_t j = 0; j < self->x[i].nahead; j++)
            free(self->x[i].ahead[j].args);
        held_drop(&self->x[i]);
    }
    free(self->x);
    taskfifo_destroy(&self->fifo);
    if (self->sock)
        zmq_close(self->sock);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    if (self->sfd >= 0)
        close(self->sfd);
    for (size_t i = 0; i < self->nout; i++)
        outbox_entry_free(&self->out[i]);
    free(self->out);
    for (size_t i = 0; i < self->o.nmodules; i++)
        free(self->modules[i]);
    free(self->modules);
    free(self->broker);
    free(self->node_id);
    msgpack_sbuffer_destroy(&self->bat);
    msgpack_sbuffer_destroy(&self->enc);
    free(self);
    *self_p = NULL;
}
