/*
 * client.c - libtaskq: one DEALER per handle, synchronous calls with
 * deadlines, resend with the same ids.
 *
 * Invariants:
 *  - every request carries a req number unique within the handle (monotonic
 *    from 1; 0 is "not a reply" on the wire); a reply is matched by req and
 *    type, anything else (late or duplicate replies of finished calls,
 *    unrelated messages) is dropped;
 *  - an unacknowledged SUBMIT stays in the outbox and is resent with the same
 *    ids and req: the broker stores by id, so a resend never duplicates;
 *  - the handle belongs to the process that created it: after fork() every
 *    call returns TASKQ_ECLOSED and destroy frees memory without touching
 *    ZeroMQ (its context is not fork-safe).
 * The library never prints to stdout and never aborts; allocation failures
 * are TASKQ_ENOMEM.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "outbox.h"
#include "proto.h"
#include "taskq.h"
#include "tclock.h"
#include "tlog.h"

#define DEFAULT_TIMEOUT_MS 5000
#define RESEND_FIRST_MS 1000   /* first resend of an unanswered request */
#define WAIT_SILENCE_MS 2000   /* re-register WAITs after this much silence */
#define RETRY_SEND_MS 10       /* no connected peer yet (ZMQ_IMMEDIATE) */
#define SUBMIT_CHUNK 500       /* tasks per SUBMIT (<= TQ_BATCH_MAX) */
#define SUBMIT_WINDOW 8        /* SUBMITs in flight */
/* a SUBMIT body must stay under TQ_MAX_BODY: leave room for the map keys */
#define CHUNK_BYTES_MAX (TQ_MAX_BODY - 64 * 1024)
#define TASK_OVERHEAD 96       /* bytes of keys and fixed fields per task */

struct taskq_client {
    void *zctx;
    void *sock;
    char *brokers;      /* owned copy of the list; entries split by NULs */
    size_t nbrokers;
    const char *endpoint; /* first entry of brokers */
    pid_t pid;          /* creator; another pid means we are a forked child */
    uint64_t next_req;
    int64_t timeout_ms;
    bool heard_ever;    /* any message from a broker on this handle */
    int64_t heard_at;   /* mono ms of the last message received, 0 = never */
};

/* A received message: msg borrows strings from f.body. */
typedef struct {
    proto_frames_t f;
    proto_msg_t msg;
} inmsg_t;

static void inmsg_clear(inmsg_t *in)
{
    proto_msg_clear(&in->msg);
    proto_frames_clear(&in->f);
}

/* ---- socket --------------------------------------------------------- */

/* Every socket option in one place. LINGER 0: destroy never blocks on
 * unsent messages. IMMEDIATE: queue only on a completed connection, so a
 * send with no broker fails at once (EAGAIN) instead of piling up in a
 * pipe that a restarted broker will never read. Reconnect fast (100 ms). */
static taskq_err_t socket_open(taskq_client_t *self)
{
    void *s = zmq_socket(self->zctx, ZMQ_DEALER);
    if (!s) {
        tlog_warn("zmq_socket: %s", zmq_strerror(zmq_errno()));
        return TASKQ_ESYS;
    }
    int zero = 0, one = 1, ivl = 100, ivl_max = 1000, hwm = 100000;
    int64_t maxmsg = (int64_t)TQ_MAX_BODY + 4096;
    if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) || zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one) ||
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl) ||
        zmq_setsockopt(s, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max) ||
        /* a WAIT for 10000 ids gets 10000 RESULTs: a ROUTER drops what
         * does not fit our receive queue, so make it large */
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg)) {
        tlog_warn("zmq_setsockopt: %s", zmq_strerror(zmq_errno()));
        zmq_close(s);
        return TASKQ_ESYS;
    }
    if (zmq_connect(s, self->endpoint) != 0) {
        tlog_warn("cannot connect to '%s': %s", self->endpoint, zmq_strerror(zmq_errno()));
        zmq_close(s);
        return TASKQ_EINVAL;
    }
    self->sock = s;
    return TASKQ_OK;
}

/* A fresh DEALER: used when nothing at all was heard since the last send,
 * so a half-dead connection to a restarted broker is not reused. */
static taskq_err_t socket_reopen(taskq_client_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
    tlog_debug("re-creating the socket to %s", self->endpoint);
    return socket_open(self);
}

/* Sends signature + type + an encoded body. TASKQ_EBUSY when no broker
 * connection is up yet (ZMQ_IMMEDIATE): the caller retries shortly. */
static taskq_err_t send_raw(taskq_client_t *self, int type, const void *body, size_t len)
{
    uint8_t t = (uint8_t)type;
    if (zmq_send(self->sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return zmq_errno() == EAGAIN || zmq_errno() == EINTR ? TASKQ_EBUSY : TASKQ_ESYS;
    /* the rest of a multipart message is accepted once its first frame is */
    if (zmq_send(self->sock, &t, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->sock, body, len, ZMQ_DONTWAIT) < 0) {
        tlog_warn("zmq_send: %s", zmq_strerror(zmq_errno()));
        return TASKQ_ESYS;
    }
    return TASKQ_OK;
}

/* Encodes msg; the body is malloc'd (caller frees). */
static taskq_err_t encode(const proto_msg_t *msg, void **body, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    taskq_err_t e = proto_encode(msg, &sb);
    if (e != TASKQ_OK) {
        msgpack_sbuffer_destroy(&sb);
        return e;
    }
    if (!sb.data) { /* msgpack-c reports OOM only by not growing */
        return TASKQ_ENOMEM;
    }
    *len = sb.size;
    *body = msgpack_sbuffer_release(&sb);
    return TASKQ_OK;
}

/* Waits up to wait_ms for one message and decodes it. TASKQ_OK: *in is
 * filled (inmsg_clear it). TASKQ_ETIMEDOUT: nothing arrived. TASKQ_EPROTO:
 * something malformed arrived and was dropped (logged). Any arrival counts
 * as a sign of life of the broker. */
static taskq_err_t recv_msg(taskq_client_t *self, int64_t wait_ms, inmsg_t *in)
{
    memset(in, 0, sizeof *in);
    if (wait_ms < 0)
        wait_ms = 0;
    if (wait_ms > 1000000)
        wait_ms = 1000000;
    zmq_pollitem_t item = {.socket = self->sock, .events = ZMQ_POLLIN};
    int rc = zmq_poll(&item, 1, (long)wait_ms);
    if (rc < 0)
        return zmq_errno() == EINTR ? TASKQ_ETIMEDOUT : TASKQ_ESYS;
    if (rc == 0)
        return TASKQ_ETIMEDOUT;
    taskq_err_t e = proto_recv(self->sock, false, true, &in->f);
    if (e == TASKQ_ETIMEDOUT)
        return e;
    self->heard_ever = true;
    self->heard_at = tclock_mono_ms();
    if (e != TASKQ_OK) {
        tlog_warn("dropping a malformed message from the broker: %s", taskq_strerror(e));
        proto_frames_clear(&in->f);
        return e == TASKQ_ESYS ? e : TASKQ_EPROTO;
    }
    const char *detail = NULL;
    proto_msg_init(&in->msg, in->f.type);
    e = proto_decode(in->f.type, in->f.body, in->f.body_len, &in->msg, &detail);
    if (e != TASKQ_OK) {
        tlog_warn("dropping a malformed %s from the broker: %s (%s)", proto_type_name(in->f.type),
                  taskq_strerror(e), detail ? detail : "-");
        proto_frames_clear(&in->f);
        return TASKQ_EPROTO;
    }
    return TASKQ_OK;
}

/* The req a broker message answers; 0 if it answers none. */
static uint64_t reply_req(const proto_msg_t *m)
{
    switch (m->type) {
    case PROTO_SUBMIT_ACK: return m->u.submit_ack.req;
    case PROTO_STATUS_REPLY: return m->u.status_reply.req;
    case PROTO_RESULT: return m->u.result.req;
    case PROTO_WORKERS_REPLY: return m->u.workers_reply.req;
    case PROTO_STATS_REPLY: return m->u.stats_reply.req;
    case PROTO_ERROR: return m->u.error.req;
    default: return 0;
    }
}

/* An ERROR code from the wire: a known nonzero code, else EPROTO. */
static taskq_err_t wire_code(uint32_t code)
{
    return code >= 1 && code <= TASKQ_EUNKNOWN ? (taskq_err_t)code : TASKQ_EPROTO;
}

static void log_error_reply(const proto_msg_t *m)
{
    tlog_debug("broker answered req %llu with %s: %.*s", (unsigned long long)m->u.error.req,
               taskq_err_name((int)m->u.error.code), (int)m->u.error.message.len,
               m->u.error.message.ptr ? m->u.error.message.ptr : "");
}

/* The error for a deadline that passed: a handle that never heard from a
 * broker cannot tell "slow" from "absent", and says EUNREACH. */
static taskq_err_t deadline_error(const taskq_client_t *self)
{
    return self->heard_ever ? TASKQ_ETIMEDOUT : TASKQ_EUNREACH;
}

static taskq_err_t check_handle(const taskq_client_t *self)
{
    if (!self)
        return TASKQ_EINVAL;
    if (getpid() != self->pid)
        return TASKQ_ECLOSED; /* a forked child must not touch the parent's zmq */
    return TASKQ_OK;
}

/* ---- handle --------------------------------------------------------- */

taskq_client_t *taskq_client_new(const char *brokers, taskq_err_t *err)
{
    taskq_err_t e = TASKQ_OK;
    if (!brokers || !*brokers)
        brokers = getenv("TASKQ_BROKER");
    if (!brokers || !*brokers)
        brokers = TASKQ_DEFAULT_BROKER;
    taskq_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        e = TASKQ_ENOMEM;
        goto fail;
    }
    self->pid = getpid();
    self->next_req = 1;
    self->timeout_ms = DEFAULT_TIMEOUT_MS;
    self->brokers = strdup(brokers);
    if (!self->brokers) {
        e = TASKQ_ENOMEM;
        goto fail;
    }
    /* split "a, b,c" in place; keep the whole list for later fail-over */
    char *save = NULL;
    char *first = NULL;
    for (char *tok = strtok_r(self->brokers, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!*tok)
            continue;
        if (!first)
            first = tok;
        self->nbrokers++;
    }
    if (!first) {
        e = TASKQ_EINVAL;
        goto fail;
    }
    self->endpoint = first;
    self->zctx = zmq_ctx_new();
    if (!self->zctx) {
        e = TASKQ_ESYS;
        goto fail;
    }
    e = socket_open(self);
    if (e != TASKQ_OK)
        goto fail;
    if (err)
        *err = TASKQ_OK;
    return self;
fail:
    taskq_client_destroy(&self);
    if (err)
        *err = e;
    return NULL;
}

void taskq_client_destroy(taskq_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_client_t *self = *self_p;
    /* in a forked child the context belongs to the parent: leave it alone */
    if (getpid() == self->pid) {
        if (self->sock)
            zmq_close(self->sock);
        if (self->zctx)
            zmq_ctx_term(self->zctx);
    }
    free(self->brokers);
    free(self);
    *self_p = NULL;
}

void taskq_client_set_timeout(taskq_client_t *self, int64_t timeout_ms)
{
    if (self)
        self->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

/* ---- submit --------------------------------------------------------- */

static const uint8_t EMPTY_ARRAY[1] = {0x90};

static taskq_err_t spec_check(const taskq_task_spec_t *s)
{
    if (!s->name)
        return TASKQ_EINVAL;
    size_t len = strlen(s->name);
    if (len > TQ_NAME_MAX)
        return TASKQ_ETOOBIG;
    if (!proto_name_is_valid(s->name, len, TQ_NAME_MAX))
        return TASKQ_ENAME;
    if (s->args_len > TQ_ARGS_MAX)
        return TASKQ_ETOOBIG;
    if (s->args_len > 0 && !s->args)
        return TASKQ_EINVAL;
    /* args must be exactly one msgpack value: the broker rejects the whole
     * SUBMIT otherwise, so catch it here with the task's own index */
    if (s->args_len > 0 && proto_precheck(s->args, s->args_len, TQ_MAX_DEPTH) != TASKQ_OK)
        return TASKQ_EINVAL;
    if (s->time_limit_ms < 0 || s->max_attempts > TQ_ATTEMPTS_MAX)
        return TASKQ_EINVAL;
    return TASKQ_OK;
}

/* Encodes specs[first..] into one SUBMIT of at most SUBMIT_CHUNK tasks and
 * CHUNK_BYTES_MAX bytes; *count says how many it took (>= 1). */
static taskq_err_t encode_chunk(uint64_t req, const taskq_task_spec_t *specs, size_t first, size_t n,
                                size_t *count, void **body, size_t *len)
{
    size_t k = 0, bytes = 0;
    while (first + k < n && k < SUBMIT_CHUNK) {
        size_t b = specs[first + k].args_len + strlen(specs[first + k].name) + TASK_OVERHEAD;
        if (k > 0 && bytes + b > CHUNK_BYTES_MAX)
            break;
        bytes += b;
        k++;
    }
    proto_task_spec_t *ts = calloc(k, sizeof *ts);
    if (!ts)
        return TASKQ_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        const taskq_task_spec_t *s = &specs[first + i];
        ts[i].id = s->id;
        ts[i].name = proto_str(s->name);
        if (s->args_len > 0)
            ts[i].args = (proto_bin_t){s->args, (uint32_t)s->args_len};
        else
            ts[i].args = (proto_bin_t){EMPTY_ARRAY, 1};
        ts[i].time_limit_ms = s->time_limit_ms;
        ts[i].max_attempts = s->max_attempts;
    }
    proto_msg_t m;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = req;
    m.u.submit.ntasks = (uint32_t)k;
    m.u.submit.tasks = ts;
    taskq_err_t e = encode(&m, body, len);
    free(ts);
    *count = k;
    return e;
}

/* Handles one SUBMIT_ACK / ERROR for an outbox entry; false if the message
 * answers none of ours (ignored). */
static bool submit_on_reply(outbox_t *ob, const proto_msg_t *m, taskq_err_t *codes)
{
    uint64_t req = reply_req(m);
    outbox_entry_t *e = req ? outbox_find(ob, req) : NULL;
    if (!e || (m->type != PROTO_SUBMIT_ACK && m->type != PROTO_ERROR))
        return false;
    if (m->type == PROTO_ERROR) {
        log_error_reply(m);
        for (size_t i = 0; i < e->count; i++)
            codes[e->first + i] = wire_code(m->u.error.code);
    } else if (m->u.submit_ack.ncodes != e->count) {
        tlog_warn("SUBMIT_ACK for req %llu has %u codes for %zu tasks", (unsigned long long)req,
                  m->u.submit_ack.ncodes, e->count);
        for (size_t i = 0; i < e->count; i++)
            codes[e->first + i] = TASKQ_EPROTO;
    } else {
        for (size_t i = 0; i < e->count; i++) {
            uint32_t c = m->u.submit_ack.codes[i];
            codes[e->first + i] = c == 0 ? TASKQ_OK : wire_code(c);
        }
    }
    outbox_ack(ob, req);
    return true;
}

/* The pipelined submit loop: fill the window, send what is due, read acks.
 * The deadline is measured from the last progress (any answer), so a large
 * batch that keeps moving never times out. codes[] starts as -1 (pending). */
static taskq_err_t submit_loop(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                               taskq_err_t *codes)
{
    outbox_t *ob = outbox_new();
    if (!ob)
        return TASKQ_ENOMEM;
    taskq_err_t fatal = TASKQ_OK;
    size_t next = 0; /* first spec not yet in the outbox */
    int64_t progress_at = tclock_mono_ms();
    for (;;) {
        while (next < n && outbox_count(ob) < SUBMIT_WINDOW) {
            void *body = NULL;
            size_t len = 0, k = 0;
            uint64_t req = self->next_req++;
            fatal = encode_chunk(req, specs, next, n, &k, &body, &len);
            if (fatal == TASKQ_OK)
                fatal = outbox_add(ob, req, next, k, &body, len, RESEND_FIRST_MS);
            if (fatal != TASKQ_OK) {
                free(body);
                goto out;
            }
            next += k;
        }
        if (outbox_count(ob) == 0)
            break;
        int64_t now = tclock_mono_ms();
        if (now >= progress_at + self->timeout_ms) {
            fatal = deadline_error(self);
            goto out;
        }
        bool retry_soon = false, reopened = false;
        for (size_t i = 0; i < outbox_count(ob); i++) {
            outbox_entry_t *e = outbox_at(ob, i);
            if (!outbox_is_due(e, now))
                continue;
            if (e->sends > 0 && self->heard_at <= e->sent_at && !reopened) {
                /* silence since we sent: the broker may have restarted */
                fatal = socket_reopen(self);
                if (fatal != TASKQ_OK)
                    goto out;
                reopened = true;
            }
            taskq_err_t se = send_raw(self, PROTO_SUBMIT, e->body, e->len);
            if (se == TASKQ_EBUSY) {
                retry_soon = true;
                break;
            }
            if (se != TASKQ_OK) {
                fatal = se;
                goto out;
            }
            if (e->sends > 0)
                tlog_debug("resending SUBMIT req %llu (%zu tasks)", (unsigned long long)e->req, e->count);
            outbox_mark_sent(e, now, self->timeout_ms);
        }
        int64_t until = progress_at + self->timeout_ms;
        int64_t due = outbox_next_due_at(ob);
        if (due < until)
            until = due;
        if (retry_soon && now + RETRY_SEND_MS < until)
            until = now + RETRY_SEND_MS;
        inmsg_t in;
        taskq_err_t re = recv_msg(self, until - now, &in);
        if (re == TASKQ_ESYS) {
            fatal = re;
            goto out;
        }
        if (re != TASKQ_OK)
            continue;
        if (submit_on_reply(ob, &in.msg, codes))
            progress_at = tclock_mono_ms();
        inmsg_clear(&in);
    }
out:
    outbox_destroy(&ob);
    return fatal;
}

taskq_err_t taskq_submit_batch(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                               taskq_err_t *results)
{
    taskq_err_t e = check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n == 0)
        return TASKQ_OK;
    if (!specs)
        return TASKQ_EINVAL;
    taskq_err_t *codes = results ? results : malloc(n * sizeof *codes);
    if (!codes)
        return TASKQ_ENOMEM;
    /* the whole batch is checked before anything is sent, as the broker
     * does: one bad task rejects it (the others get EINVAL: not sent) */
    taskq_err_t bad = TASKQ_OK;
    for (size_t i = 0; i < n; i++) {
        codes[i] = spec_check(&specs[i]);
        if (codes[i] != TASKQ_OK && bad == TASKQ_OK)
            bad = codes[i];
    }
    if (bad != TASKQ_OK) {
        for (size_t i = 0; i < n; i++)
            if (codes[i] == TASKQ_OK)
                codes[i] = TASKQ_EINVAL;
        e = bad;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (taskq_id_is_zero(&specs[i].id))
            taskq_id_generate(&specs[i].id); /* written back: the caller keeps it */
        codes[i] = (taskq_err_t)-1;
    }
    taskq_err_t fatal = submit_loop(self, specs, n, codes);
    e = TASKQ_OK;
    for (size_t i = 0; i < n; i++) {
        if ((int)codes[i] == -1)
            codes[i] = fatal != TASKQ_OK ? fatal : TASKQ_EINTERNAL;
        if (codes[i] != TASKQ_OK && e == TASKQ_OK)
            e = codes[i];
    }
out:
    if (codes != results)
        free(codes);
    return e;
}

taskq_err_t taskq_submit(taskq_client_t *self, taskq_task_spec_t *spec)
{
    if (!spec)
        return TASKQ_EINVAL;
    return taskq_submit_batch(self, spec, 1, NULL);
}

/* ---- request / reply ------------------------------------------------ */

/* Sends one idempotent request and waits for its reply of reply_type.
 * Resends after 1 s, then with doubling intervals, within the handle's
 * timeout; re-creates the socket before a resend if nothing at all was
 * heard since the previous send. On TASKQ_OK *in holds the reply. */
static taskq_err_t request(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                           int reply_type, inmsg_t *in)
{
    void *body = NULL;
    size_t len = 0;
    taskq_err_t e = encode(msg, &body, &len);
    if (e != TASKQ_OK)
        return e;
    int64_t start = tclock_mono_ms();
    int64_t deadline = start + self->timeout_ms;
    int64_t next_send = start, sent_at = 0, interval = RESEND_FIRST_MS;
    int sends = 0;
    for (;;) {
        int64_t now = tclock_mono_ms();
        if (now >= deadline) {
            e = deadline_error(self);
            break;
        }
        if (now >= next_send) {
            if (sends > 0 && self->heard_at <= sent_at && (e = socket_reopen(self)) != TASKQ_OK)
                break;
            e = send_raw(self, msg->type, body, len);
            if (e == TASKQ_OK) {
                sends++;
                sent_at = now;
                next_send = now + interval;
                interval = interval * 2 < self->timeout_ms ? interval * 2 : self->timeout_ms;
            } else if (e == TASKQ_EBUSY) {
                next_send = now + RETRY_SEND_MS;
            } else {
                break;
            }
        }
        int64_t until = next_send < deadline ? next_send : deadline;
        e = recv_msg(self, until - now, in);
        if (e == TASKQ_ESYS)
            break;
        if (e != TASKQ_OK)
            continue;
        if (reply_req(&in->msg) == req && in->msg.type == reply_type) {
            e = TASKQ_OK;
            break;
        }
        if (reply_req(&in->msg) == req && in->msg.type == PROTO_ERROR) {
            log_error_reply(&in->msg);
            e = wire_code(in->msg.u.error.code);
            inmsg_clear(in);
            break;
        }
        inmsg_clear(in); /* late or unrelated: ignored */
    }
    free(body);
    return e;
}

/* ---- tasks ---------------------------------------------------------- */

/* One allocation: the struct, then its strings, then the result bytes. */
static taskq_err_t task_from_rec(const proto_task_rec_t *r, taskq_task_t **out)
{
    size_t rlen = r->has_result ? r->result.len : 0;
    size_t sz = sizeof(taskq_task_t) + r->name.len + r->worker.len + r->progress_message.len +
                r->error.len + 4 + rlen;
    taskq_task_t *t = malloc(sz);
    if (!t)
        return TASKQ_ENOMEM;
    char *p = (char *)(t + 1);
    const proto_str_t *src[4] = {&r->name, &r->worker, &r->progress_message, &r->error};
    const char *dst[4];
    for (int i = 0; i < 4; i++) {
        if (src[i]->len)
            memcpy(p, src[i]->ptr, src[i]->len);
        p[src[i]->len] = '\0';
        dst[i] = p;
        p += src[i]->len + 1;
    }
    *t = (taskq_task_t){
        .id = r->id, .name = dst[0], .state = r->state, .attempts = r->attempts,
        .max_attempts = r->max_attempts, .worker = dst[1], .child_pid = r->child_pid,
        .submitted_at = r->submitted_at, .started_at = r->started_at,
        .finished_at = r->finished_at, .progress_current = r->progress_current,
        .progress_total = r->progress_total, .progress_message = dst[2],
        .result = NULL, .result_len = 0, .error = dst[3],
    };
    if (r->has_result) {
        if (rlen)
            memcpy(p, r->result.ptr, rlen);
        t->result = p;
        t->result_len = rlen;
    }
    *out = t;
    return TASKQ_OK;
}

void taskq_task_destroy(taskq_task_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

taskq_err_t taskq_status(taskq_client_t *self, const taskq_id_t *id, taskq_task_t **out)
{
    taskq_err_t e = check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!id || !out)
        return TASKQ_EINVAL;
    *out = NULL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_STATUS);
    uint64_t req = self->next_req++;
    m.u.status.req = req;
    m.u.status.id = *id;
    inmsg_t in;
    e = request(self, &m, req, PROTO_STATUS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    e = task_from_rec(&in.msg.u.status_reply.task, out);
    inmsg_clear(&in);
    return e;
}

/* ---- wait ----------------------------------------------------------- */

typedef struct {
    taskq_id_t id;
    size_t idx;
} id_index_t;

static int id_index_cmp(const void *a, const void *b)
{
    return memcmp(((const id_index_t *)a)->id.b, ((const id_index_t *)b)->id.b, 16);
}

enum { W_PENDING = 0, W_DONE = 1 };

/* Called with an owned task; may take it (set *task = NULL). Nonzero stops. */
typedef int (*wait_take_fn)(taskq_task_t **task, void *arg);

typedef struct {
    const taskq_id_t *ids;
    size_t n;
    uint8_t *state;      /* W_PENDING / W_DONE per input index */
    uint64_t req_base;   /* chunk c has req req_base + c */
    size_t nchunks;
} waitset_t;

/* (Re-)registers the outstanding ids of every chunk. The same req is reused
 * so that a live broker ignores the repeat (same peer, req, id). */
static taskq_err_t wait_send(taskq_client_t *self, const waitset_t *w, int64_t remaining_ms,
                             taskq_id_t *tmp)
{
    for (size_t c = 0; c < w->nchunks; c++) {
        size_t lo = c * TQ_WAIT_MAX, hi = lo + TQ_WAIT_MAX < w->n ? lo + TQ_WAIT_MAX : w->n;
        uint32_t k = 0;
        for (size_t i = lo; i < hi; i++)
            if (w->state[i] == W_PENDING)
                tmp[k++] = w->ids[i];
        if (k == 0)
            continue;
        proto_msg_t m;
        proto_msg_init(&m, PROTO_WAIT);
        m.u.wait.req = w->req_base + c;
        m.u.wait.nids = k;
        m.u.wait.ids = tmp;
        m.u.wait.timeout_ms = remaining_ms < 0 || remaining_ms > TQ_DEFAULT_WAIT_MAX_MS
                                  ? TQ_DEFAULT_WAIT_MAX_MS
                                  : remaining_ms;
        void *body = NULL;
        size_t len = 0;
        taskq_err_t e = encode(&m, &body, &len);
        if (e == TASKQ_OK)
            e = send_raw(self, PROTO_WAIT, body, len);
        free(body);
        if (e != TASKQ_OK)
            return e; /* EBUSY: not connected yet, the caller retries */
    }
    return TASKQ_OK;
}

static taskq_err_t wait_core(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                             int64_t timeout_ms, wait_take_fn fn, void *arg)
{
    taskq_err_t e = check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n == 0)
        return TASKQ_OK;
    if (!ids || !fn)
        return TASKQ_EINVAL;
    id_index_t *index = malloc(n * sizeof *index);
    uint8_t *state = calloc(n, 1);
    taskq_id_t *tmp = malloc((n < TQ_WAIT_MAX ? n : TQ_WAIT_MAX) * sizeof *tmp);
    if (!index || !state || !tmp) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = (id_index_t){ids[i], i};
    qsort(index, n, sizeof *index, id_index_cmp);
    for (size_t i = 1; i < n; i++) {
        if (id_index_cmp(&index[i - 1], &index[i]) == 0) {
            e = TASKQ_EINVAL; /* duplicate id */
            goto out;
        }
    }
    waitset_t w = {.ids = ids, .n = n, .state = state, .req_base = self->next_req,
                   .nchunks = (n + TQ_WAIT_MAX - 1) / TQ_WAIT_MAX};
    self->next_req += w.nchunks;
    int64_t start = tclock_mono_ms();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + timeout_ms;
    size_t outstanding = n, notfound = 0;
    taskq_err_t first_err = TASKQ_OK;
    int64_t next_send = start, last_activity = start;
    bool stopped = false;
    while (outstanding > 0 && !stopped) {
        int64_t now = tclock_mono_ms();
        if (now >= deadline) {
            e = TASKQ_ETIMEDOUT;
            goto out;
        }
        if (self->heard_at > last_activity)
            last_activity = self->heard_at;
        if (now >= next_send || now >= last_activity + WAIT_SILENCE_MS) {
            e = wait_send(self, &w, timeout_ms < 0 ? -1 : deadline - now, tmp);
            if (e == TASKQ_EBUSY) {
                next_send = now + RETRY_SEND_MS;
            } else if (e != TASKQ_OK) {
                goto out;
            } else {
                next_send = INT64_MAX;
                last_activity = now;
            }
        }
        int64_t until = last_activity + WAIT_SILENCE_MS;
        if (next_send < until)
            until = next_send;
        if (deadline < until)
            until = deadline;
        inmsg_t in;
        e = recv_msg(self, until - now, &in);
        if (e == TASKQ_ESYS)
            goto out;
        if (e != TASKQ_OK)
            continue;
        uint64_t req = reply_req(&in.msg);
        bool ours = req >= w.req_base && req < w.req_base + w.nchunks;
        if (ours && in.msg.type == PROTO_ERROR) {
            /* the broker refused the WAIT itself (e.g. a limit): give up */
            log_error_reply(&in.msg);
            e = wire_code(in.msg.u.error.code);
            inmsg_clear(&in);
            goto out;
        }
        if (ours && in.msg.type == PROTO_RESULT) {
            id_index_t key = {.id = in.msg.u.result.task.id};
            id_index_t *hit = bsearch(&key, index, n, sizeof *index, id_index_cmp);
            /* delivered once: a repeat (after a re-registration) is ignored */
            if (hit && state[hit->idx] == W_PENDING) {
                uint32_t code = in.msg.u.result.code;
                state[hit->idx] = W_DONE;
                outstanding--;
                if (code == TASKQ_ENOTFOUND) {
                    notfound++;
                } else if (code != TASKQ_OK) {
                    if (first_err == TASKQ_OK)
                        first_err = wire_code(code);
                } else {
                    taskq_task_t *t = NULL;
                    e = task_from_rec(&in.msg.u.result.task, &t);
                    if (e != TASKQ_OK) {
                        inmsg_clear(&in);
                        goto out;
                    }
                    stopped = fn(&t, arg) != 0;
                    taskq_task_destroy(&t);
                }
            }
        }
        inmsg_clear(&in);
    }
    e = stopped ? TASKQ_OK : first_err != TASKQ_OK ? first_err : notfound ? TASKQ_ENOTFOUND : TASKQ_OK;
out:
    free(index);
    free(state);
    free(tmp);
    return e;
}

typedef struct {
    taskq_wait_fn fn;
    void *arg;
} borrow_arg_t;

static int wait_borrow(taskq_task_t **task, void *arg)
{
    borrow_arg_t *b = arg;
    return b->fn(*task, b->arg);
}

taskq_err_t taskq_wait_many(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                            int64_t timeout_ms, taskq_wait_fn fn, void *arg)
{
    if (!fn)
        return TASKQ_EINVAL;
    borrow_arg_t b = {fn, arg};
    return wait_core(self, ids, n, timeout_ms, wait_borrow, &b);
}

static int wait_take(taskq_task_t **task, void *arg)
{
    *(taskq_task_t **)arg = *task;
    *task = NULL;
    return 1;
}

taskq_err_t taskq_wait(taskq_client_t *self, const taskq_id_t *id, int64_t timeout_ms,
                       taskq_task_t **out)
{
    if (!id || !out)
        return TASKQ_EINVAL;
    *out = NULL;
    taskq_err_t e = wait_core(self, id, 1, timeout_ms, wait_take, out);
    if (e == TASKQ_OK && !*out)
        e = TASKQ_EINTERNAL;
    if (e != TASKQ_OK)
        taskq_task_destroy(out);
    return e;
}

/* ---- workers and stats --------------------------------------------- */

struct taskq_workers {
    size_t n;
    taskq_node_info_t *nodes;
    taskq_child_info_t *children;
    char *strings;
};

static const char *put_str(char **p, proto_str_t s)
{
    char *r = *p;
    if (s.len)
        memcpy(r, s.ptr, s.len);
    r[s.len] = '\0';
    *p += s.len + 1;
    return r;
}

static taskq_err_t workers_from_msg(const proto_msg_t *m, taskq_workers_t **out)
{
    size_t nn = m->u.workers_reply.nnodes, nc = 0, sb = 1;
    const proto_node_t *src = m->u.workers_reply.nodes;
    for (size_t i = 0; i < nn; i++) {
        nc += src[i].nchildren;
        sb += src[i].id.len + src[i].host.len + 2;
        for (size_t j = 0; j < src[i].nchildren; j++)
            sb += src[i].children[j].state.len + src[i].children[j].task_name.len + 2;
    }
    taskq_workers_t *w = calloc(1, sizeof *w);
    if (w) {
        w->nodes = calloc(nn ? nn : 1, sizeof *w->nodes);
        w->children = calloc(nc ? nc : 1, sizeof *w->children);
        w->strings = malloc(sb);
    }
    if (!w || !w->nodes || !w->children || !w->strings) {
        taskq_workers_destroy(&w);
        return TASKQ_ENOMEM;
    }
    char *p = w->strings;
    taskq_child_info_t *c = w->children;
    for (size_t i = 0; i < nn; i++) {
        taskq_node_info_t *d = &w->nodes[i];
        d->id = put_str(&p, src[i].id);
        d->host = put_str(&p, src[i].host);
        d->pid = src[i].pid;
        d->slots = src[i].slots;
        d->last_heartbeat = src[i].last_heartbeat;
        d->nchildren = src[i].nchildren;
        d->children = c;
        for (size_t j = 0; j < src[i].nchildren; j++, c++) {
            const proto_child_t *sc = &src[i].children[j];
            c->pid = sc->pid;
            c->state = put_str(&p, sc->state);
            c->has_task = sc->has_task;
            c->task_id = sc->task_id;
            c->task_name = put_str(&p, sc->task_name);
            c->running_ms = sc->running_ms;
            c->done = sc->done;
            c->failed = sc->failed;
            c->rss_kb = sc->rss_kb;
        }
    }
    w->n = nn;
    *out = w;
    return TASKQ_OK;
}

taskq_err_t taskq_workers(taskq_client_t *self, taskq_workers_t **out)
{
    taskq_err_t e = check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_WORKERS);
    uint64_t req = self->next_req++;
    m.u.workers.req = req;
    inmsg_t in;
    e = request(self, &m, req, PROTO_WORKERS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    e = workers_from_msg(&in.msg, out);
    inmsg_clear(&in);
    return e;
}

size_t taskq_workers_count(const taskq_workers_t *self)
{
    return self ? self->n : 0;
}

const taskq_node_info_t *taskq_workers_node(const taskq_workers_t *self, size_t i)
{
    return self && i < self->n ? &self->nodes[i] : NULL;
}

void taskq_workers_destroy(taskq_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_workers_t *w = *self_p;
    free(w->nodes);
    free(w->children);
    free(w->strings);
    free(w);
    *self_p = NULL;
}

taskq_err_t taskq_stats(taskq_client_t *self, taskq_stats_t *out)
{
    taskq_err_t e = check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!out)
        return TASKQ_EINVAL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_STATS);
    uint64_t req = self->next_req++;
    m.u.stats.req = req;
    inmsg_t in;
    e = request(self, &m, req, PROTO_STATS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    const proto_stats_t *s = &in.msg.u.stats_reply.stats;
    memset(out, 0, sizeof *out);
    out->queued = s->queued;
    out->running = s->running;
    out->succeeded = s->succeeded;
    out->failed = s->failed;
    out->total = s->total;
    out->submitted = s->submitted;
    out->nodes = s->nodes;
    out->children = s->children;
    out->uptime_ms = s->uptime_ms;
    proto_str_copy(out->broker_id, sizeof out->broker_id, s->broker);
    inmsg_clear(&in);
    return TASKQ_OK;
}
