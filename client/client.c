/*
 * client.c - libtaskq: the handle, its DEALER socket, request/reply with
 * resend, and the pipelined submit with backpressure (client_task.c:
 * records, status, wait; client_info.c: workers, stats; client_admin.c and
 * one file per ADMIN noun: queues, limits, schedules, attempts, test clock).
 *
 * Invariants:
 *  - every request carries a req number unique within the handle (monotonic
 *    from 1; 0 is "not a reply" on the wire); a reply is matched by req and
 *    type, anything else (late or duplicate replies of finished calls,
 *    unrelated messages) is dropped;
 *  - an unacknowledged SUBMIT stays in the outbox and is resent with the same
 *    ids and req: the broker stores by id, so a resend never duplicates;
 *    a SUBMIT refused BUSY is resent the same way after the broker's
 *    retry-after while the handle's block_ms lasts (taskq_client_set_block);
 *  - the handle belongs to the process that created it: after fork() every
 *    call returns TASKQ_ECLOSED and destroy frees memory without touching
 *    ZeroMQ (its context is not fork-safe).
 * The library never prints to stdout and never aborts; allocation failures
 * are TASKQ_ENOMEM.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "client_priv.h"
#include "flow.h"
#include "outbox.h"
#include "proto.h"
#include "taskq.h"
#include "tclock.h"
#include "thist.h"
#include "tlog.h"

#define DEFAULT_TIMEOUT_MS 5000
#define SUBMIT_CHUNK 500       /* tasks per SUBMIT (<= TQ_BATCH_MAX) */
#define SUBMIT_WINDOW 8        /* SUBMITs in flight */
/* a SUBMIT body must stay under TQ_MAX_BODY: leave room for the map keys */
#define CHUNK_BYTES_MAX (TQ_MAX_BODY - 64 * 1024)
#define TASK_OVERHEAD 96       /* bytes of keys and fixed fields per task */
#define POLICY_OVERHEAD 256    /* bytes of the dispatch policy keys and values */
#define LIFE_OVERHEAD 160      /* lifecycle and workflow keys and values */

void client_inmsg_clear(inmsg_t *in)
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
taskq_err_t client_send_raw(taskq_client_t *self, int type, const void *body, size_t len)
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
taskq_err_t client_encode(const proto_msg_t *msg, void **body, size_t *len)
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
 * filled (client_inmsg_clear it). TASKQ_ETIMEDOUT: nothing arrived. TASKQ_EPROTO:
 * something malformed arrived and was dropped (logged). Any arrival counts
 * as a sign of life of the broker. */
/* The next item of the BATCH being handed out, as if it had come alone. */
static taskq_err_t batch_item(taskq_client_t *self, inmsg_t *in)
{
    proto_item_t item;
    taskq_err_t e;
    while ((e = proto_batch_next(&self->batch_it, &item)) == TASKQ_OK) {
        in->f.type = item.type;
        in->f.body = malloc(item.len ? item.len : 1);
        if (!in->f.body)
            break; /* out of memory: drop the rest, the client re-sends WAIT */
        memcpy(in->f.body, item.body, item.len);
        in->f.body_len = item.len;
        const char *detail = NULL;
        proto_msg_init(&in->msg, item.type);
        if (proto_decode(item.type, in->f.body, in->f.body_len, &in->msg, &detail) == TASKQ_OK)
            return TASKQ_OK;
        tlog_warn("dropping a malformed %s from the broker (in a BATCH): %s",
                  proto_type_name(item.type), detail ? detail : "-");
        client_inmsg_clear(in);
        memset(in, 0, sizeof *in);
    }
    if (e != TASKQ_ENOTFOUND)
        tlog_warn("dropping the rest of a malformed BATCH from the broker");
    self->in_batch = false;
    proto_frames_clear(&self->batch);
    return TASKQ_ETIMEDOUT;
}

taskq_err_t client_recv(taskq_client_t *self, int64_t wait_ms, inmsg_t *in)
{
    memset(in, 0, sizeof *in);
    if (self->in_batch && batch_item(self, in) == TASKQ_OK)
        return TASKQ_OK;
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
    if (in->f.type == PROTO_BATCH) {
        self->batch = in->f;
        memset(&in->f, 0, sizeof in->f);
        if (proto_batch_open(&self->batch_it, self->batch.body, self->batch.body_len) != TASKQ_OK) {
            tlog_warn("dropping a malformed BATCH from the broker");
            proto_frames_clear(&self->batch);
            return TASKQ_EPROTO;
        }
        self->in_batch = true;
        return batch_item(self, in) == TASKQ_OK ? TASKQ_OK : TASKQ_EPROTO;
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
uint64_t client_reply_req(const proto_msg_t *m)
{
    switch (m->type) {
    case PROTO_SUBMIT_ACK: return m->u.submit_ack.req;
    case PROTO_STATUS_REPLY: return m->u.status_reply.req;
    case PROTO_RESULT: return m->u.result.req;
    case PROTO_WORKERS_REPLY: return m->u.workers_reply.req;
    case PROTO_STATS_REPLY: return m->u.stats_reply.req;
    case PROTO_ADMIN_REPLY: return m->u.admin_reply.req;
    case PROTO_ERROR: return m->u.error.req;
    default: return 0;
    }
}

/* An ERROR code from the wire: a known nonzero code, else EPROTO. */
taskq_err_t client_wire_code(uint32_t code)
{
    return code >= 1 && code <= TASKQ_ETERMINAL ? (taskq_err_t)code : TASKQ_EPROTO;
}

taskq_err_t client_on_error(taskq_client_t *self, const proto_msg_t *m)
{
    tlog_debug("broker answered req %llu with %s: %.*s", (unsigned long long)m->u.error.req,
               taskq_err_name((int)m->u.error.code), (int)m->u.error.message.len,
               m->u.error.message.ptr ? m->u.error.message.ptr : "");
    taskq_err_t code = client_wire_code(m->u.error.code);
    proto_str_copy(self->last_error, sizeof self->last_error, m->u.error.message);
    if (code == TASKQ_EBUSY) {
        taskq_busy_info_t *b = &self->last_busy;
        proto_str_copy(b->queue, sizeof b->queue, m->u.error.queue);
        b->depth = m->u.error.depth;
        b->limit = m->u.error.limit;
        b->retry_after_ms = m->u.error.retry_after_ms;
    }
    return code;
}

/* The error for a deadline that passed: a handle that never heard from a
 * broker cannot tell "slow" from "absent", and says EUNREACH. */
static taskq_err_t deadline_error(const taskq_client_t *self)
{
    return self->heard_ever ? TASKQ_ETIMEDOUT : TASKQ_EUNREACH;
}

taskq_err_t client_check_handle(const taskq_client_t *self)
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
    proto_frames_clear(&self->batch);
    free(self->brokers);
    free(self);
    *self_p = NULL;
}

void taskq_client_set_timeout(taskq_client_t *self, int64_t timeout_ms)
{
    if (self)
        self->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

void taskq_client_set_block(taskq_client_t *self, int64_t block_ms)
{
    if (self)
        self->block_ms = block_ms > 0 ? block_ms : 0;
}

void taskq_client_last_busy(const taskq_client_t *self, taskq_busy_info_t *out)
{
    if (!out)
        return;
    if (!self) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = self->last_busy;
}

const char *taskq_client_last_error(const taskq_client_t *self)
{
    return self ? self->last_error : "";
}

/* ---- submit --------------------------------------------------------- */

static const uint8_t EMPTY_ARRAY[1] = {0x90};

/* A retry_on / no_retry_on list: codes separated by commas (spaces around
 * them allowed), each optionally ending in '*' (a prefix), or just "*". */
static bool patterns_valid(const char *p)
{
    size_t len = strlen(p);
    if (len > TQ_PATTERNS_MAX)
        return false;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            return false; /* empty entry */
        size_t code = p[n - 1] == '*' ? n - 1 : n;
        if (code > 0 && !proto_code_is_valid(p, code))
            return false;
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',') {
            p++;
            if (!*p)
                return false; /* trailing comma */
        } else if (*p) {
            return false;
        }
    }
    return true;
}

static bool jitter_valid(const char *j)
{
    return !strcmp(j, "equal") || !strcmp(j, "full") || !strcmp(j, "none");
}

/* The dispatch-policy fields of a spec, with the codec's limits. */
static taskq_err_t policy_check(const taskq_task_spec_t *s)
{
    if (s->queue && s->queue[0]) {
        size_t ql = strlen(s->queue);
        if (ql > TQ_QUEUE_MAX)
            return TASKQ_ETOOBIG;
        if (!proto_queue_is_valid(s->queue, ql))
            return TASKQ_ENAME;
    }
    if (s->has_priority && (s->priority < 0 || s->priority > TQ_PRIORITY_MAX))
        return TASKQ_EINVAL;
    if (s->countdown_ms < 0 || s->countdown_ms > TQ_ETA_MAX_MS || s->eta_ms < 0 ||
        s->expires_in_ms < 0 || s->expires_in_ms > TQ_ETA_MAX_MS || s->expires_at_ms < 0)
        return TASKQ_EINVAL;
    if (s->backoff_base_ms < 0 || s->backoff_base_ms > TQ_BACKOFF_MS_MAX ||
        s->backoff_max_ms < 0 || s->backoff_max_ms > TQ_BACKOFF_MS_MAX)
        return TASKQ_EINVAL;
    if (s->backoff_factor != 0 && !(s->backoff_factor >= 1 && s->backoff_factor <= 1000))
        return TASKQ_EINVAL; /* also NaN */
    if (s->jitter && s->jitter[0] && !jitter_valid(s->jitter))
        return TASKQ_EINVAL;
    if ((s->retry_on && !patterns_valid(s->retry_on)) ||
        (s->no_retry_on && !patterns_valid(s->no_retry_on)))
        return TASKQ_EINVAL;
    return TASKQ_OK;
}

static bool printable_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Unique keys and retention (docs/tasks.md, "Unique tasks"). */
static taskq_err_t lifecycle_check(const taskq_task_spec_t *s)
{
    bool key = s->unique_key && s->unique_key[0];
    if (key) {
        size_t kl = strlen(s->unique_key);
        if (kl > TQ_UNIQUE_KEY_MAX)
            return TASKQ_ETOOBIG;
        if (!printable_ascii(s->unique_key, kl))
            return TASKQ_EINVAL;
        if (s->unique)
            return TASKQ_EINVAL; /* a key, or one computed by the broker: not both */
    }
    bool until = s->unique_until && s->unique_until[0];
    if (until && strcmp(s->unique_until, "done") != 0 && strcmp(s->unique_until, "start") != 0)
        return TASKQ_EINVAL;
    if (s->unique_for_ms < 0 || s->unique_for_ms > TQ_TTL_MAX_MS || s->result_ttl_ms < 0 ||
        s->result_ttl_ms > TQ_TTL_MAX_MS)
        return TASKQ_EINVAL;
    if ((until || s->unique_for_ms > 0) && !key && !s->unique)
        return TASKQ_EINVAL; /* options of a unique key without one */
    return TASKQ_OK;
}

taskq_err_t client_spec_check(const taskq_task_spec_t *s)
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
    taskq_err_t e = policy_check(s);
    return e != TASKQ_OK ? e : lifecycle_check(s);
}

static int32_t jitter_to_wire(const char *j)
{
    if (!j || !j[0])
        return -1;
    return !strcmp(j, "full") ? PROTO_JITTER_FULL : !strcmp(j, "none") ? PROTO_JITTER_NONE
                                                                       : PROTO_JITTER_EQUAL;
}

/* The dispatch policy of a (checked) spec as SUBMIT fields. countdown and
 * expires_in go as durations so that the broker's clock applies. */
static void spec_policy_to_wire(const taskq_task_spec_t *s, proto_task_spec_t *t)
{
    t->queue = proto_str(s->queue ? s->queue : "");
    t->priority = s->has_priority ? s->priority : -1;
    t->countdown_ms = s->countdown_ms;
    t->eta_at = s->eta_ms;
    t->expires_in_ms = s->expires_in_ms;
    t->expires_at = s->expires_at_ms;
    t->policy.max_attempts = 0; /* the spec's own max_attempts field carries it */
    t->policy.backoff_base_ms = s->backoff_base_ms;
    t->policy.backoff_factor = s->backoff_factor;
    t->policy.backoff_max_ms = s->backoff_max_ms;
    t->policy.jitter = jitter_to_wire(s->jitter);
    t->policy.retry_on = proto_str(s->retry_on);
    t->policy.no_retry_on = proto_str(s->no_retry_on);
}

/* The lifecycle fields of a (checked) spec. */
static void spec_life_to_wire(const taskq_task_spec_t *s, proto_task_spec_t *t)
{
    t->immutable = s->immutable != 0;
    t->unique_key = proto_str(s->unique_key ? s->unique_key : "");
    t->unique = s->unique != 0;
    t->unique_until = s->unique_until && !strcmp(s->unique_until, "start") ? 1 : 0;
    t->unique_for_ms = s->unique_for_ms;
    t->result_ttl_ms = s->result_ttl_ms;
}

/* The bytes a spec takes in a SUBMIT, roughly (for chunking). */
static size_t spec_bytes(const taskq_task_spec_t *s)
{
    return s->args_len + strlen(s->name) + TASK_OVERHEAD + POLICY_OVERHEAD + LIFE_OVERHEAD +
           (s->retry_on ? strlen(s->retry_on) : 0) + (s->no_retry_on ? strlen(s->no_retry_on) : 0) +
           (s->unique_key ? strlen(s->unique_key) : 0);
}

/* Encodes specs[first..] into one SUBMIT of at most SUBMIT_CHUNK tasks and
 * CHUNK_BYTES_MAX bytes; *count says how many it took (>= 1). A workflow
 * (graph not NULL) goes whole in one SUBMIT with its groups, or not at all
 * (TASKQ_ETOOBIG past TQ_MAX_BODY): its parts refer to each other. */
static taskq_err_t encode_chunk(uint64_t req, const taskq_task_spec_t *specs, size_t first, size_t n,
                                const client_graph_t *graph, size_t *count, void **body,
                                size_t *len)
{
    size_t k = 0, bytes = 0;
    if (graph) {
        k = n - first;
    } else {
        while (first + k < n && k < SUBMIT_CHUNK) {
            size_t b = spec_bytes(&specs[first + k]);
            if (k > 0 && bytes + b > CHUNK_BYTES_MAX)
                break;
            bytes += b;
            k++;
        }
    }
    proto_task_spec_t *ts = calloc(k ? k : 1, sizeof *ts);
    proto_group_t *gs = NULL;
    if (!ts)
        return TASKQ_ENOMEM;
    for (size_t i = 0; i < k; i++) {
        const taskq_task_spec_t *s = &specs[first + i];
        proto_task_spec_init(&ts[i]);
        ts[i].id = s->id;
        ts[i].name = proto_str(s->name);
        if (s->args_len > 0)
            ts[i].args = (proto_bin_t){s->args, (uint32_t)s->args_len};
        else
            ts[i].args = (proto_bin_t){EMPTY_ARRAY, 1};
        ts[i].time_limit_ms = s->time_limit_ms;
        ts[i].max_attempts = s->max_attempts;
        spec_policy_to_wire(s, &ts[i]);
        spec_life_to_wire(s, &ts[i]);
        if (!graph)
            continue;
        const flow_node_t *d = &graph->nodes[first + i];
        if (d->parent >= 0) {
            ts[i].has_parent = true;
            ts[i].parent = specs[d->parent].id;
        }
        if (d->group >= 0) {
            ts[i].has_group = true;
            ts[i].group = graph->groups[d->group].id;
            ts[i].index = d->index;
        }
        if (d->callback_of >= 0) {
            ts[i].has_callback_of = true;
            ts[i].callback_of = graph->groups[d->callback_of].id;
        }
    }
    proto_msg_t m;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = req;
    m.u.submit.ntasks = (uint32_t)k;
    m.u.submit.tasks = ts;
    if (graph && graph->ngroups > 0) {
        gs = calloc(graph->ngroups, sizeof *gs);
        if (!gs) {
            free(ts);
            return TASKQ_ENOMEM;
        }
        for (size_t g = 0; g < graph->ngroups; g++)
            gs[g] = (proto_group_t){graph->groups[g].id, graph->groups[g].size,
                                    graph->groups[g].on_fail};
        m.u.submit.ngroups = (uint32_t)graph->ngroups;
        m.u.submit.groups = gs;
    }
    taskq_err_t e = client_encode(&m, body, len);
    free(ts);
    free(gs);
    if (e == TASKQ_OK && graph && *len > TQ_MAX_BODY) {
        free(*body);
        *body = NULL;
        e = TASKQ_ETOOBIG; /* one message or nothing: the broker could not take it */
    }
    *count = k;
    return e;
}

/* Handles one SUBMIT_ACK / ERROR for an outbox entry; false if the message
 * answers none of ours (ignored). A BUSY refusal before block_until (mono
 * ms, 0 = fail fast) keeps the entry for a resend after the retry-after. */
static bool submit_on_reply(taskq_client_t *self, outbox_t *ob, const proto_msg_t *m,
                            taskq_task_spec_t *specs, taskq_err_t *codes, int64_t block_until)
{
    uint64_t req = client_reply_req(m);
    outbox_entry_t *e = req ? outbox_find(ob, req) : NULL;
    if (!e || (m->type != PROTO_SUBMIT_ACK && m->type != PROTO_ERROR))
        return false;
    if (m->type == PROTO_ERROR) {
        taskq_err_t code = client_on_error(self, m);
        int64_t now = tclock_mono_ms();
        if (code == TASKQ_EBUSY && now < block_until) {
            int64_t after = m->u.error.retry_after_ms > 0 ? m->u.error.retry_after_ms
                                                          : TQ_BUSY_RETRY_AFTER_MS;
            int64_t at = now + after < block_until ? now + after : block_until;
            tlog_debug("SUBMIT req %llu refused busy: again in %lld ms", (unsigned long long)req,
                       (long long)(at - now));
            outbox_defer(e, at, RESEND_FIRST_MS);
            return true;
        }
        for (size_t i = 0; i < e->count; i++)
            codes[e->first + i] = code;
    } else if (m->u.submit_ack.ncodes != e->count) {
        tlog_warn("SUBMIT_ACK for req %llu has %u codes for %zu tasks", (unsigned long long)req,
                  m->u.submit_ack.ncodes, e->count);
        for (size_t i = 0; i < e->count; i++)
            codes[e->first + i] = TASKQ_EPROTO;
    } else {
        /* queues: one per task from a current broker, none from an old one;
         * holders: only when some task hit a live unique key */
        bool has_queues = m->u.submit_ack.nqueues == e->count;
        bool has_holders = m->u.submit_ack.nholders == e->count;
        for (size_t i = 0; i < e->count; i++) {
            uint32_t c = m->u.submit_ack.codes[i];
            taskq_task_spec_t *s = &specs[e->first + i];
            codes[e->first + i] = c == 0 ? TASKQ_OK : client_wire_code(c);
            if (c == 0 && has_queues)
                proto_str_copy(s->queue_out, sizeof s->queue_out, m->u.submit_ack.queues[i]);
            s->soft_limit = m->u.submit_ack.soft ? 1 : 0;
            if (c == 0 && has_holders && !taskq_id_is_zero(&m->u.submit_ack.holders[i])) {
                s->duplicate = 1;
                s->holder_id = m->u.submit_ack.holders[i];
            }
        }
    }
    outbox_ack(ob, req);
    return true;
}

/* The pipelined submit loop: fill the window, send what is due, read acks.
 * The deadline is measured from the last progress (any answer), so a large
 * batch that keeps moving never times out. codes[] starts as -1 (pending). */
static taskq_err_t submit_loop(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                               const client_graph_t *graph, taskq_err_t *codes)
{
    outbox_t *ob = outbox_new();
    if (!ob)
        return TASKQ_ENOMEM;
    taskq_err_t fatal = TASKQ_OK;
    size_t next = 0; /* first spec not yet in the outbox */
    int64_t progress_at = tclock_mono_ms();
    int64_t block_until = self->block_ms > 0 ? progress_at + self->block_ms : 0;
    for (;;) {
        while (next < n && outbox_count(ob) < SUBMIT_WINDOW) {
            void *body = NULL;
            size_t len = 0, k = 0;
            uint64_t req = self->next_req++;
            fatal = encode_chunk(req, specs, next, n, graph, &k, &body, &len);
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
            taskq_err_t se = client_send_raw(self, PROTO_SUBMIT, e->body, e->len);
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
        taskq_err_t re = client_recv(self, until - now, &in);
        if (re == TASKQ_ESYS) {
            fatal = re;
            goto out;
        }
        if (re != TASKQ_OK)
            continue;
        if (submit_on_reply(self, ob, &in.msg, specs, codes, block_until))
            progress_at = tclock_mono_ms();
        client_inmsg_clear(&in);
    }
out:
    outbox_destroy(&ob);
    return fatal;
}

taskq_err_t client_submit_specs(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                                taskq_err_t *results, const client_graph_t *graph)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n == 0)
        return TASKQ_OK;
    if (!specs)
        return TASKQ_EINVAL;
    if (graph && n > TQ_GRAPH_MAX)
        return TASKQ_ETOOBIG;
    taskq_err_t *codes = results ? results : malloc(n * sizeof *codes);
    if (!codes)
        return TASKQ_ENOMEM;
    /* the whole batch is checked before anything is sent, as the broker
     * does: one bad task rejects it (the others get EINVAL: not sent) */
    taskq_err_t bad = TASKQ_OK;
    for (size_t i = 0; i < n; i++) {
        codes[i] = client_spec_check(&specs[i]);
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
        specs[i].queue_out[0] = '\0';
        specs[i].soft_limit = 0;
        specs[i].duplicate = 0;
        memset(&specs[i].holder_id, 0, sizeof specs[i].holder_id);
        codes[i] = (taskq_err_t)-1;
    }
    /* history (TASKQ_HISTORY): opened on first use; a no-op when unset */
    thist_open("client");
    bool hist = thist_is_enabled();
    char ids[TASKQ_ID_STRLEN + 1];
    for (size_t i = 0; hist && i < n; i++) {
        taskq_id_format(&specs[i].id, ids);
        thist_event("submit_invoke %s", ids);
    }
    taskq_err_t fatal = submit_loop(self, specs, n, graph, codes);
    e = TASKQ_OK;
    for (size_t i = 0; i < n; i++) {
        if ((int)codes[i] == -1)
            codes[i] = fatal != TASKQ_OK ? fatal : TASKQ_EINTERNAL;
        if (codes[i] != TASKQ_OK && e == TASKQ_OK)
            e = codes[i];
        if (!hist)
            continue;
        taskq_id_format(&specs[i].id, ids);
        if (codes[i] == TASKQ_OK)
            thist_event("submit_ack %s", ids);
        else if (codes[i] == TASKQ_ETIMEDOUT || codes[i] == TASKQ_EUNREACH)
            thist_event("submit_timeout %s", ids);
        else
            thist_event("submit_fail %s %s", ids, taskq_err_name(codes[i]));
    }
out:
    if (codes != results)
        free(codes);
    return e;
}

taskq_err_t taskq_submit_batch(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                               taskq_err_t *results)
{
    return client_submit_specs(self, specs, n, results, NULL);
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
taskq_err_t client_request(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                           int reply_type, inmsg_t *in)
{
    return client_request_ex(self, msg, req, reply_type, in, true);
}

taskq_err_t client_request_ex(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                              int reply_type, inmsg_t *in, bool resend)
{
    void *body = NULL;
    size_t len = 0;
    taskq_err_t e = client_encode(msg, &body, &len);
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
            e = client_send_raw(self, msg->type, body, len);
            if (e == TASKQ_OK) {
                sends++;
                sent_at = now;
                next_send = resend ? now + interval : INT64_MAX;
                interval = interval * 2 < self->timeout_ms ? interval * 2 : self->timeout_ms;
            } else if (e == TASKQ_EBUSY) {
                next_send = now + RETRY_SEND_MS;
            } else {
                break;
            }
        }
        int64_t until = next_send < deadline ? next_send : deadline;
        e = client_recv(self, until - now, in);
        if (e == TASKQ_ESYS)
            break;
        if (e != TASKQ_OK)
            continue;
        if (client_reply_req(&in->msg) == req && in->msg.type == reply_type) {
            e = TASKQ_OK;
            break;
        }
        if (client_reply_req(&in->msg) == req && in->msg.type == PROTO_ERROR) {
            e = client_on_error(self, &in->msg);
            client_inmsg_clear(in);
            break;
        }
        client_inmsg_clear(in); /* late or unrelated: ignored */
    }
    free(body);
    return e;
}
