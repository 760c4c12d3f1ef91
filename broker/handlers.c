/* handlers.c - one on_<msg>() per protocol message, the timers and dispatch.
 * See handlers.h for the turn contract and docs/protocol.md for semantics.
 *
 * Sessions: a worker-type message (READY, PROGRESS, DONE, HEARTBEAT) from an
 * identity without a session is answered ERROR ECLOSED "unknown session, send
 * HELLO": the broker cannot tell a peer that never said HELLO from one it
 * forgot (broker restart, declared dead), and in both cases the right move for
 * the worker is a new HELLO. BYE without a session gets ERROR EPROTO. */
#include "handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thist.h"
#include "tlog.h"
#include "tmem.h"

#define PROGRESS_FLUSH_MS 250
#define RETENTION_TICK_MS 1000
#define RETENTION_BATCH 500
#define WAITERS_TICK_MS 1000
#define DISPATCH_MAX 1024 /* TASKs per turn */

static void fmt_id(const taskq_id_t *id, char out[TASKQ_ID_STRLEN + 1])
{
    taskq_id_format(id, out);
}

/* ---- outgoing queue ---------------------------------------------------- */

void out_queue(broker_t *b, const uint8_t *identity, size_t identity_len, const proto_msg_t *msg,
               out_kind_t kind, uint64_t req)
{
    if (b->nout == b->out_cap) {
        size_t cap = b->out_cap ? b->out_cap * 2 : 256;
        b->out = xrealloc(b->out, cap * sizeof *b->out);
        for (size_t i = b->out_cap; i < cap; i++)
            msgpack_sbuffer_init(&b->out[i].body);
        b->out_cap = cap;
    }
    out_t *o = &b->out[b->nout];
    o->body.size = 0;
    taskq_err_t err = proto_encode(msg, &o->body);
    if (err != TASKQ_OK) {
        /* Our own record broke a limit: a bug, not the peer's fault. */
        tlog_error("cannot encode %s: %s", proto_type_name(msg->type), taskq_err_name(err));
        if (msg->type == PROTO_ERROR)
            return;
        out_error(b, identity, identity_len, req, TASKQ_EINTERNAL, "cannot encode the reply");
        return;
    }
    memcpy(o->identity, identity, identity_len);
    o->identity_len = identity_len;
    o->type = msg->type;
    o->kind = kind;
    o->req = req;
    b->nout++;
}

void out_error(broker_t *b, const uint8_t *identity, size_t identity_len, uint64_t req,
               taskq_err_t code, const char *message)
{
    proto_msg_t m;
    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = req;
    m.u.error.code = code;
    m.u.error.message = proto_str(message);
    if (m.u.error.message.len > TQ_MESSAGE_MAX)
        m.u.error.message.len = TQ_MESSAGE_MAX;
    out_queue(b, identity, identity_len, &m, OUT_REPLY, req);
}

/* A store verb failed: the turn will be rolled back. */
static void store_failed(broker_t *b, const uint8_t *identity, size_t identity_len, uint64_t req)
{
    b->turn_failed = true;
    if (identity)
        out_error(b, identity, identity_len, req, TASKQ_ESTORE, "store failure");
}

/* ---- progress and task settling ---------------------------------------- */

static void progress_drop(broker_t *b, const taskq_id_t *id)
{
    free(idmap_remove(b->progress, id->b, sizeof id->b));
}

/* STATUS of a running task shows which child runs it, from the holder's
 * latest heartbeat (the store learns the pid only with DONE). */
static void overlay_child(broker_t *b, proto_task_rec_t *rec)
{
    if (rec->state != TASKQ_STATE_RUNNING || rec->child_pid != 0)
        return;
    const lease_t *l = lease_find(b->leases, &rec->id);
    registry_node_t *node = l ? registry_find_node(b->nodes, l->node) : NULL;
    for (uint32_t i = 0; node && i < node->nchildren; i++) {
        const registry_child_t *c = &node->children[i];
        if (c->has_task && memcmp(c->task_id.b, rec->id.b, sizeof rec->id.b) == 0) {
            rec->child_pid = c->pid;
            return;
        }
    }
}

/* STATUS of a running task shows the in-memory progress if newer. */
static void overlay_progress(broker_t *b, proto_task_rec_t *rec)
{
    const progress_t *p = idmap_find(b->progress, rec->id.b, sizeof rec->id.b);
    if (p && rec->state == TASKQ_STATE_RUNNING && p->attempt == rec->attempts) {
        rec->progress_current = p->current;
        rec->progress_total = p->total;
        rec->progress_message = proto_str(p->message);
    }
}

typedef struct {
    broker_t *b;
    bool loaded;
    proto_task_rec_t rec;
} notify_t;

static void send_result(const taskq_id_t *id, const void *identity, size_t len, uint64_t req,
                        void *arg)
{
    notify_t *n = arg;
    if (!n->loaded) {
        if (store_get_task(n->b->store, id, &n->rec) != TASKQ_OK) {
            n->b->turn_failed = true;
            return;
        }
        n->loaded = true;
    }
    proto_msg_t m;
    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.req = req;
    m.u.result.code = TASKQ_OK;
    m.u.result.task = n->rec;
    out_queue(n->b, identity, len, &m, OUT_WAITER, req);
}

/* The task just became terminal in this turn: queue RESULT to its waiters. */
static void notify_waiters(broker_t *b, const taskq_id_t *id)
{
    notify_t n = {.b = b};
    waiters_take(b->waiters, id, send_result, &n);
}

/* Forgets a stopping node once its last lease is gone. */
static void maybe_forget(broker_t *b, registry_node_t *node)
{
    if (node->stopping && lease_node_count(b->leases, node->id) == 0) {
        tlog_info("worker node %s stopped and has no leases: forgotten", node->id);
        registry_remove(b->nodes, &node);
    }
}

/* code: the history reason (child_died, node_lost, lease_expired, hello_reconcile) */
static void requeue_coded(broker_t *b, const taskq_id_t *id, uint32_t attempt, const char *reason,
                          const char *code)
{
    char ids[TASKQ_ID_STRLEN + 1];
    fmt_id(id, ids);
    int state = -1;
    taskq_err_t err = store_requeue(b->store, id, attempt, reason, b->now_wall, &state);
    lease_release(b->leases, id);
    progress_drop(b, id);
    if (err == TASKQ_ESTORE) {
        b->turn_failed = true;
        return;
    }
    if (err != TASKQ_OK) {
        tlog_debug("requeue %s attempt %u: %s", ids, attempt, taskq_err_name(err));
        return;
    }
    tlog_info("task %s attempt %u %s: %s", ids, attempt,
              state == TASKQ_STATE_FAILED ? "failed (attempt limit)" : "requeued", reason);
    if (state == TASKQ_STATE_FAILED) {
        b->pending--; /* terminal */
        thist_event("terminal %s %u failed 0000000000000000", ids, attempt);
    } else {
        thist_event("requeue %s %u %s", ids, attempt, code);
    }
    if (state == TASKQ_STATE_FAILED)
        notify_waiters(b, id);
}

void handlers_requeue(broker_t *b, const taskq_id_t *id, uint32_t attempt, const char *reason)
{
    requeue_coded(b, id, attempt, reason,
                  strncmp(reason, "lease", 5) == 0 ? "lease_expired" : "node_lost");
}

/* ---- client messages -------------------------------------------------- */

static void on_submit(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    static uint32_t zeros[TQ_BATCH_MAX]; /* every stored task's code is 0 */
    uint64_t req = msg->u.submit.req;
    uint32_t n = msg->u.submit.ntasks;
    if (n > TQ_BATCH_MAX) {
        out_error(b, from, flen, req, TASKQ_ETOOBIG, "too many tasks in one SUBMIT");
        return;
    }
    /* The codec validated every task; check the one thing it must not let
     * through before storing anything: the whole batch or nothing. */
    for (uint32_t i = 0; i < n; i++) {
        if (taskq_id_is_zero(&msg->u.submit.tasks[i].id)) {
            out_error(b, from, flen, req, TASKQ_EPROTO, "task id is all-zero");
            return;
        }
    }
    /* Overload: refuse the whole SUBMIT rather than grow without bound; the
     * client hears EBUSY at once and retries later. Resent ids count too
     * (checking which are new would cost a lookup each). */
    if (b->cfg.max_pending && b->pending + n > b->cfg.max_pending) {
        char text[128];
        snprintf(text, sizeof text, "%llu pending, limit %llu: retry later",
                 (unsigned long long)b->pending, (unsigned long long)b->cfg.max_pending);
        b->busy_refused += n;
        for (uint32_t i = 0; i < n && thist_is_enabled(); i++) {
            char ids[TASKQ_ID_STRLEN + 1];
            fmt_id(&msg->u.submit.tasks[i].id, ids);
            thist_event("busy %s", ids);
        }
        out_error(b, from, flen, req, TASKQ_EBUSY, text);
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        uint32_t max = t->max_attempts ? t->max_attempts : b->cfg.max_attempts;
        bool inserted = false;
        if (store_insert_task(b->store, t, max, b->now_wall, &inserted) != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        }
        b->submitted += inserted;
        b->pending += inserted;
        if (inserted && thist_is_enabled()) {
            char ids[TASKQ_ID_STRLEN + 1];
            fmt_id(&t->id, ids);
            thist_event("accept %s", ids);
        }
    }
    proto_msg_t ack;
    proto_msg_init(&ack, PROTO_SUBMIT_ACK);
    ack.u.submit_ack.req = req;
    ack.u.submit_ack.ncodes = n;
    ack.u.submit_ack.codes = zeros;
    out_queue(b, from, flen, &ack, OUT_REPLY, req);
}

static void on_status(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    uint64_t req = msg->u.status.req;
    proto_msg_t r;
    proto_msg_init(&r, PROTO_STATUS_REPLY);
    taskq_err_t err = store_get_task(b->store, &msg->u.status.id, &r.u.status_reply.task);
    if (err == TASKQ_ENOTFOUND) {
        out_error(b, from, flen, req, TASKQ_ENOTFOUND, "no such task");
        return;
    }
    if (err != TASKQ_OK) {
        store_failed(b, from, flen, req);
        return;
    }
    overlay_progress(b, &r.u.status_reply.task);
    overlay_child(b, &r.u.status_reply.task);
    r.u.status_reply.req = req;
    out_queue(b, from, flen, &r, OUT_REPLY, req);
}

static void on_wait(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    uint64_t req = msg->u.wait.req;
    int64_t t = msg->u.wait.timeout_ms;
    if (t <= 0 || t > TQ_DEFAULT_WAIT_MAX_MS)
        t = TQ_DEFAULT_WAIT_MAX_MS; /* capped at one hour; clients re-send */
    for (uint32_t i = 0; i < msg->u.wait.nids && i < TQ_WAIT_MAX; i++) {
        const taskq_id_t *id = &msg->u.wait.ids[i];
        proto_msg_t r;
        proto_msg_init(&r, PROTO_RESULT);
        r.u.result.req = req;
        taskq_err_t err = store_get_task(b->store, id, &r.u.result.task);
        if (err == TASKQ_ENOTFOUND) {
            memset(&r.u.result.task, 0, sizeof r.u.result.task);
            r.u.result.task.id = *id;
            r.u.result.code = TASKQ_ENOTFOUND;
            out_queue(b, from, flen, &r, OUT_REPLY, req);
        } else if (err != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        } else if (taskq_state_is_terminal(r.u.result.task.state)) {
            r.u.result.code = TASKQ_OK;
            out_queue(b, from, flen, &r, OUT_REPLY, req);
        } else if (waiters_add(b->waiters, id, from, flen, req, b->now_mono + t) != TASKQ_OK) {
            tlog_warn("waiter table full (%zu): WAIT req %llu refused", waiters_count(b->waiters),
                      (unsigned long long)req);
            out_error(b, from, flen, req, TASKQ_EBUSY, "too many waiters; retry later");
            return;
        }
    }
}

static void on_workers(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    size_t n = registry_count(b->nodes), k = 0, cur = 0;
    proto_node_t *nodes = xcalloc(n ? n : 1, sizeof *nodes);
    registry_node_t *node;
    while ((node = registry_next(b->nodes, &cur)) != NULL && k < n) {
        proto_node_t *p = &nodes[k++];
        p->id = proto_str(node->id);
        p->host = proto_str(node->host);
        p->pid = node->pid;
        p->slots = node->slots;
        p->last_heartbeat = node->last_heartbeat_at;
        p->nchildren = node->nchildren;
        p->children = node->nchildren ? xcalloc(node->nchildren, sizeof *p->children) : NULL;
        for (uint32_t i = 0; i < node->nchildren; i++) {
            const registry_child_t *c = &node->children[i];
            proto_child_t *d = &p->children[i];
            d->pid = c->pid;
            d->state = proto_str(c->state);
            d->has_task = c->has_task;
            d->task_id = c->task_id;
            d->task_name = proto_str(c->task_name);
            d->running_ms = c->running_ms;
            d->done = c->done;
            d->failed = c->failed;
            d->rss_kb = c->rss_kb;
        }
    }
    proto_msg_t r;
    proto_msg_init(&r, PROTO_WORKERS_REPLY);
    r.u.workers_reply.req = msg->u.workers.req;
    r.u.workers_reply.nnodes = (uint32_t)k;
    r.u.workers_reply.nodes = nodes;
    out_queue(b, from, flen, &r, OUT_REPLY, msg->u.workers.req);
    for (size_t i = 0; i < k; i++)
        free(nodes[i].children);
    free(nodes);
}

static void on_stats(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    uint64_t req = msg->u.stats.req, counts[4], total;
    if (store_counts(b->store, counts, &total) != TASKQ_OK) {
        store_failed(b, from, flen, req);
        return;
    }
    proto_msg_t r;
    proto_msg_init(&r, PROTO_STATS_REPLY);
    proto_stats_t *s = &r.u.stats_reply.stats;
    r.u.stats_reply.req = req;
    s->queued = counts[TASKQ_STATE_QUEUED];
    s->running = counts[TASKQ_STATE_RUNNING];
    s->succeeded = counts[TASKQ_STATE_SUCCEEDED];
    s->failed = counts[TASKQ_STATE_FAILED];
    s->total = total;
    s->submitted = b->submitted;
    s->nodes = registry_count(b->nodes);
    s->children = registry_children_total(b->nodes);
    s->uptime_ms = b->now_mono - b->started_mono;
    s->broker = proto_str(b->cfg.id);
    out_queue(b, from, flen, &r, OUT_REPLY, req);
}

/* ---- worker messages -------------------------------------------------- */

typedef struct {
    broker_t *b;
    idmap_t *claimed; /* HELLO's leases: id -> (attempt + 1) cast to a pointer */
    const char *reason;
} hello_ctx_t;

static void requeue_unclaimed(const lease_t *l, void *arg)
{
    hello_ctx_t *h = arg;
    uintptr_t a = (uintptr_t)idmap_find(h->claimed, l->id.b, sizeof l->id.b);
    if (a && a - 1 == l->attempt)
        return; /* the node still runs it: honoured */
    requeue_coded(h->b, &l->id, l->attempt, h->reason, "hello_reconcile");
}

static void on_hello(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    char node_id[TQ_NODE_MAX + 1];
    proto_str_copy(node_id, sizeof node_id, msg->u.hello.node);
    if (!proto_name_is_valid(msg->u.hello.node.ptr, msg->u.hello.node.len, TQ_NODE_MAX)) {
        out_error(b, from, flen, 0, TASKQ_ENAME, "invalid node id");
        return;
    }
    bool existed = false;
    registry_node_t *node = registry_hello(b->nodes, from, flen, node_id, &existed);
    proto_str_copy(node->host, sizeof node->host, msg->u.hello.host);
    node->pid = msg->u.hello.pid;
    node->slots = msg->u.hello.slots;
    node->last_seen_ms = b->now_mono;
    node->last_heartbeat_at = b->now_wall;

    /* Keep the leases the node lists that match ours; requeue its others. */
    hello_ctx_t h = {.b = b, .claimed = idmap_new()};
    char reason[TQ_NODE_MAX + 64];
    snprintf(reason, sizeof reason, "worker node %s lost", node_id);
    h.reason = reason;
    for (uint32_t i = 0; i < msg->u.hello.nleases; i++) {
        const proto_lease_t *l = &msg->u.hello.leases[i];
        if (lease_renew(b->leases, &l->id, l->attempt, node_id, b->now_mono + b->cfg.lease_ms) ==
            TASKQ_OK)
            idmap_put(h.claimed, l->id.b, sizeof l->id.b, (void *)((uintptr_t)l->attempt + 1));
    }
    lease_foreach_node(b->leases, node_id, requeue_unclaimed, &h);
    tlog_info("worker node %s %s (host %s pid %d slots %u): %zu leases kept", node_id,
              existed ? "reconnected" : "joined", node->host, (int)node->pid, node->slots,
              idmap_count(h.claimed));
    idmap_destroy(&h.claimed);

    proto_msg_t w;
    proto_msg_init(&w, PROTO_WELCOME);
    w.u.welcome.broker = proto_str(b->cfg.id);
    w.u.welcome.heartbeat_ms = b->cfg.heartbeat_ms;
    w.u.welcome.liveness = b->cfg.liveness;
    out_queue(b, from, flen, &w, OUT_PLAIN, 0);
}

static void on_ready(broker_t *b, registry_node_t *node, proto_msg_t *msg)
{
    if (node->stopping)
        return; /* after BYE the node takes no more tasks */
    registry_add_credit(node, msg->u.ready.credit);
}

static void on_progress(broker_t *b, registry_node_t *node, proto_msg_t *msg)
{
    const taskq_id_t *id = &msg->u.progress.id;
    if (lease_check(b->leases, id, msg->u.progress.attempt, node->id) != TASKQ_OK) {
        tlog_debug("stale PROGRESS from %s dropped", node->id);
        return;
    }
    /* Progress for the current attempt proves its holder runs it: renew the
     * lease. Heartbeats alone race the deadline when --lease-ms is close to
     * the heartbeat interval, and a live task would be run twice. */
    lease_renew(b->leases, id, msg->u.progress.attempt, node->id, b->now_mono + b->cfg.lease_ms);
    progress_t *p = idmap_find(b->progress, id->b, sizeof id->b);
    if (!p) {
        p = xcalloc(1, sizeof *p);
        p->id = *id;
        idmap_put(b->progress, p->id.b, sizeof p->id.b, p);
    }
    p->attempt = msg->u.progress.attempt;
    p->current = msg->u.progress.current;
    p->total = msg->u.progress.total;
    proto_str_copy(p->message, sizeof p->message, msg->u.progress.message);
    p->dirty = true; /* written by the next flush: coalesced */
}

static void on_done(broker_t *b, registry_node_t *node, proto_msg_t *msg)
{
    const taskq_id_t *id = &msg->u.done.id;
    uint32_t attempt = msg->u.done.attempt;
    char ids[TASKQ_ID_STRLEN + 1];
    fmt_id(id, ids);
    taskq_err_t err;
    int state = -1;
    /* The last progress reported before DONE is part of the record: write
     * the coalesced value now, while the attempt is still the running one. */
    const progress_t *p = idmap_find(b->progress, id->b, sizeof id->b);
    if (p && p->attempt == attempt &&
        store_set_progress(b->store, id, attempt, p->current, p->total, proto_str(p->message)) ==
            TASKQ_ESTORE) {
        store_failed(b, node->identity, node->identity_len, 0);
        return;
    }
    if (msg->u.done.ok) {
        err = store_finish(b->store, id, attempt, true, msg->u.done.result, proto_str(""),
                           msg->u.done.child_pid, b->now_wall);
        state = TASKQ_STATE_SUCCEEDED;
    } else if (!msg->u.done.retry) {
        err = store_finish(b->store, id, attempt, false, (proto_bin_t){0}, msg->u.done.error,
                           msg->u.done.child_pid, b->now_wall);
        state = TASKQ_STATE_FAILED;
    } else {
        char reason[TQ_ERROR_MAX + 1];
        proto_str_copy(reason, sizeof reason, msg->u.done.error);
        err = store_requeue(b->store, id, attempt, reason, b->now_wall, &state);
    }
    if (err == TASKQ_OK && state == TASKQ_STATE_SUCCEEDED)
        thist_event("terminal %s %u succeeded %016llx", ids, attempt,
                    (unsigned long long)thist_result_hash(msg->u.done.result.ptr,
                                                         msg->u.done.result.len));
    else if (err == TASKQ_OK && state == TASKQ_STATE_FAILED)
        thist_event("terminal %s %u failed 0000000000000000", ids, attempt);
    else if (err == TASKQ_OK)
        thist_event("requeue %s %u child_died", ids, attempt);
    uint32_t code = TASKQ_OK;
    if (err == TASKQ_ESTORE) {
        store_failed(b, node->identity, node->identity_len, 0);
        return;
    } else if (err == TASKQ_OK) {
        if (taskq_state_is_terminal(state))
            b->pending--;
        /* The attempt number is the fencing token: the store's CAS on
         * (running, attempt) decided; the lease follows it. */
        lease_release(b->leases, id);
        progress_drop(b, id);
        tlog_debug("task %s attempt %u done by %s: %s", ids, attempt, node->id,
                   taskq_state_name(state));
        if (taskq_state_is_terminal(state))
            notify_waiters(b, id);
    } else {
        /* A repeat of the DONE that finished the task is acknowledged again. */
        proto_task_rec_t rec;
        taskq_err_t g = store_get_task(b->store, id, &rec);
        if (g == TASKQ_ESTORE) {
            store_failed(b, node->identity, node->identity_len, 0);
            return;
        }
        bool repeat = g == TASKQ_OK && taskq_state_is_terminal(rec.state) &&
                      rec.attempts == attempt && !msg->u.done.retry;
        code = repeat ? TASKQ_OK : TASKQ_ESTALE;
        thist_event("%s %s %u", repeat ? "done_repeat" : "stale", ids, attempt);
        if (!repeat)
            tlog_info("stale DONE for task %s attempt %u from %s", ids, attempt, node->id);
    }
    proto_msg_t a;
    proto_msg_init(&a, PROTO_DONE_ACK);
    a.u.done_ack.id = *id;
    a.u.done_ack.attempt = attempt;
    a.u.done_ack.code = code;
    out_queue(b, node->identity, node->identity_len, &a, OUT_REPLY, 0);
    maybe_forget(b, node);
}

static void on_heartbeat(broker_t *b, registry_node_t *node, proto_msg_t *msg)
{
    node->last_heartbeat_at = b->now_wall;
    registry_set_children(node, msg->u.heartbeat.children, msg->u.heartbeat.nchildren);
    for (uint32_t i = 0; i < msg->u.heartbeat.nleases; i++) {
        const proto_lease_t *l = &msg->u.heartbeat.leases[i];
        if (lease_renew(b->leases, &l->id, l->attempt, node->id, b->now_mono + b->cfg.lease_ms) !=
            TASKQ_OK)
            tlog_debug("heartbeat of %s lists a stale lease (attempt %u)", node->id, l->attempt);
    }
}

static void on_bye(broker_t *b, registry_node_t *node)
{
    tlog_info("worker node %s says BYE (%zu leases left)", node->id,
              lease_node_count(b->leases, node->id));
    node->stopping = true;
    node->credit = 0;
    maybe_forget(b, node);
}

void handlers_on_message(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    int type = msg->type;
    bool worker_msg = type == PROTO_READY || type == PROTO_PROGRESS || type == PROTO_DONE ||
                      type == PROTO_HEARTBEAT || type == PROTO_BYE;
    registry_node_t *node = registry_find_identity(b->nodes, from, flen);
    if (node)
        node->last_seen_ms = b->now_mono; /* any message is a sign of life */
    if (worker_msg && !node) {
        if (type == PROTO_BYE)
            out_error(b, from, flen, 0, TASKQ_EPROTO, "HELLO first");
        else
            out_error(b, from, flen, 0, TASKQ_ECLOSED, "unknown session, send HELLO");
        return;
    }
    /* After a store failure in this turn, only memory-only messages run. */
    if (b->turn_failed && type != PROTO_READY && type != PROTO_PROGRESS &&
        type != PROTO_HEARTBEAT && type != PROTO_BYE && type != PROTO_ERROR) {
        uint64_t req = type == PROTO_SUBMIT    ? msg->u.submit.req
                       : type == PROTO_STATUS  ? msg->u.status.req
                       : type == PROTO_WAIT    ? msg->u.wait.req
                       : type == PROTO_WORKERS ? msg->u.workers.req
                       : type == PROTO_STATS   ? msg->u.stats.req
                                               : 0;
        out_error(b, from, flen, req, TASKQ_ESTORE, "store failure");
        return;
    }
    switch (type) {
    case PROTO_SUBMIT: on_submit(b, from, flen, msg); break;
    case PROTO_STATUS: on_status(b, from, flen, msg); break;
    case PROTO_WAIT: on_wait(b, from, flen, msg); break;
    case PROTO_WORKERS: on_workers(b, from, flen, msg); break;
    case PROTO_STATS: on_stats(b, from, flen, msg); break;
    case PROTO_HELLO: on_hello(b, from, flen, msg); break;
    case PROTO_READY: on_ready(b, node, msg); break;
    case PROTO_PROGRESS: on_progress(b, node, msg); break;
    case PROTO_DONE: on_done(b, node, msg); break;
    case PROTO_HEARTBEAT: on_heartbeat(b, node, msg); break;
    case PROTO_BYE: on_bye(b, node); break;
    case PROTO_ERROR: {
        char text[TQ_MESSAGE_MAX + 1];
        proto_str_copy(text, sizeof text, msg->u.error.message);
        tlog_warn("peer %s sent ERROR req %llu %s: %s", node ? node->id : "(client)",
                  (unsigned long long)msg->u.error.req, taskq_err_name((int)msg->u.error.code),
                  text);
        break;
    }
    default:
        tlog_warn("unexpected %s from a peer", proto_type_name(type));
        out_error(b, from, flen, 0, TASKQ_EPROTO, "message type not accepted by the broker");
    }
}

/* Best effort: the "req" of a body that failed to decode, else 0. */
static uint64_t salvage_req(const void *body, size_t len)
{
    if (!body || proto_precheck(body, len, TQ_MAX_DEPTH) != TASKQ_OK)
        return 0;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    uint64_t req = 0;
    size_t off = 0;
    if (msgpack_unpack_next(&u, body, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &u.data.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3 &&
                memcmp(k->via.str.ptr, "req", 3) == 0 &&
                v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                req = v->via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    return req;
}

void handlers_on_malformed(broker_t *b, const uint8_t *from, size_t flen, int type,
                           const void *body, size_t len, taskq_err_t code, const char *detail)
{
    uint64_t req = salvage_req(body, len);
    tlog_warn("malformed %s (type %d, %zu bytes, req %llu): %s: %s", proto_type_name(type), type,
              len, (unsigned long long)req, taskq_err_name(code), detail ? detail : "");
    if (flen == 0)
        return; /* no identity: nobody to answer */
    registry_node_t *node = registry_find_identity(b->nodes, from, flen);
    if (node)
        node->last_seen_ms = b->now_mono;
    out_error(b, from, flen, req, code, detail ? detail : taskq_strerror((int)code));
}

/* ---- timers ------------------------------------------------------------ */

static void on_lease_expired(const lease_t *l, void *arg)
{
    broker_t *b = arg;
    handlers_requeue(b, &l->id, l->attempt, "lease expired");
}

static void requeue_lost(const lease_t *l, void *arg)
{
    broker_t *b = ((void **)arg)[0];
    handlers_requeue(b, &l->id, l->attempt, ((void **)arg)[1]);
}

/* A node silent for liveness x heartbeat is dead: its leases are requeued in
 * the same turn it is forgotten, so no task is orphaned. */
static void check_liveness(broker_t *b)
{
    int64_t silence = (int64_t)b->cfg.liveness * b->cfg.heartbeat_ms;
    size_t cur = 0;
    registry_node_t *node;
    while ((node = registry_next(b->nodes, &cur)) != NULL) {
        if (b->now_mono - node->last_seen_ms <= silence)
            continue;
        char reason[TQ_NODE_MAX + 64];
        snprintf(reason, sizeof reason, "worker node %s lost", node->id);
        tlog_warn("worker node %s silent for %lld ms: declared dead, %zu leases requeued",
                  node->id, (long long)(b->now_mono - node->last_seen_ms),
                  lease_node_count(b->leases, node->id));
        thist_event("node_dead %s", node->id);
        void *arg[2] = {b, reason};
        lease_foreach_node(b->leases, node->id, requeue_lost, arg);
        registry_remove(b->nodes, &node);
    }
}

static void flush_progress(broker_t *b)
{
    size_t cur = 0;
    void *v;
    while (idmap_next(b->progress, &cur, NULL, NULL, &v)) {
        progress_t *p = v;
        if (!p->dirty)
            continue;
        taskq_err_t err = store_set_progress(b->store, &p->id, p->attempt, p->current, p->total,
                                             proto_str(p->message));
        if (err == TASKQ_ESTORE) {
            b->turn_failed = true;
            return;
        }
        p->dirty = false;
    }
}

static void send_heartbeats(broker_t *b)
{
    proto_msg_t hb;
    proto_msg_init(&hb, PROTO_HEARTBEAT);
    size_t cur = 0;
    registry_node_t *node;
    while ((node = registry_next(b->nodes, &cur)) != NULL)
        out_queue(b, node->identity, node->identity_len, &hb, OUT_PLAIN, 0);
}

void handlers_run_timers(broker_t *b)
{
    int64_t now = b->now_mono;
    if (now >= b->next_liveness) {
        check_liveness(b);
        b->next_liveness = now + b->cfg.heartbeat_ms / 2;
    }
    lease_expire(b->leases, now, on_lease_expired, b);
    if (now >= b->next_heartbeat) {
        send_heartbeats(b);
        b->next_heartbeat = now + b->cfg.heartbeat_ms;
    }
    if (now >= b->next_progress) {
        flush_progress(b);
        b->next_progress = now + PROGRESS_FLUSH_MS;
    }
    if (now >= b->next_waiters) {
        size_t n = waiters_expire(b->waiters, now);
        if (n)
            tlog_debug("%zu waiters expired", n);
        b->next_waiters = now + WAITERS_TICK_MS;
    }
    if (now >= b->next_retention) {
        size_t purged = 0;
        if (store_purge_finished(b->store, b->now_wall - b->cfg.retention_ms, RETENTION_BATCH,
                                 &purged) != TASKQ_OK)
            b->turn_failed = true;
        else if (purged)
            tlog_info("retention: %zu finished tasks deleted", purged);
        /* a full batch means more are due: come back next turn */
        b->next_retention = now + (purged == RETENTION_BATCH ? 0 : RETENTION_TICK_MS);
    }
}

/* ---- dispatch ---------------------------------------------------------- */

typedef struct {
    broker_t *b;
    registry_node_t **nodes;
    size_t nnodes, next;
    size_t npending;
    struct {
        taskq_id_t id;
        uint32_t attempt;
        registry_node_t *node;
        size_t out;
    } pending[DISPATCH_MAX];
} dispatch_t;

/* Assigns one queued task to the next node with credit (round robin) and
 * queues its TASK; the store is updated after the scan, not during it. */
static bool assign(const store_queued_t *row, void *arg)
{
    dispatch_t *d = arg;
    registry_node_t *node = NULL;
    for (size_t tries = 0; tries < d->nnodes; tries++) {
        registry_node_t *n = d->nodes[d->next];
        d->next = (d->next + 1) % d->nnodes;
        if (n->credit > 0) {
            node = n;
            break;
        }
    }
    if (!node || d->npending == DISPATCH_MAX)
        return false;
    node->credit--;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_TASK);
    m.u.task.id = row->id;
    m.u.task.attempt = row->attempts + 1;
    m.u.task.name = row->name;
    m.u.task.args = row->args;
    m.u.task.time_limit_ms = row->time_limit_ms;
    size_t before = d->b->nout;
    out_queue(d->b, node->identity, node->identity_len, &m, OUT_TASK, 0);
    d->pending[d->npending].id = row->id;
    d->pending[d->npending].attempt = row->attempts + 1;
    d->pending[d->npending].node = node;
    d->pending[d->npending].out = d->b->nout > before ? before : SIZE_MAX;
    d->npending++;
    return true;
}

void handlers_dispatch(broker_t *b)
{
    size_t n = registry_count(b->nodes), k = 0, cur = 0;
    if (n == 0)
        return;
    static dispatch_t d; /* large (pending[]); the broker has one thread */
    registry_node_t **nodes = xmalloc(n * sizeof *nodes);
    uint64_t credit = 0;
    registry_node_t *node;
    while ((node = registry_next(b->nodes, &cur)) != NULL) {
        if (node->credit > 0 && !node->stopping) {
            nodes[k++] = node;
            credit += node->credit;
        }
    }
    if (k > 0) {
        d.b = b;
        d.nodes = nodes;
        d.nnodes = k;
        d.next = b->rr++ % k;
        d.npending = 0;
        size_t limit = credit < DISPATCH_MAX ? (size_t)credit : DISPATCH_MAX;
        if (store_next_queued(b->store, limit, assign, &d) != TASKQ_OK)
            b->turn_failed = true;
        for (size_t i = 0; i < d.npending; i++) {
            registry_node_t *dn = d.pending[i].node;
            taskq_err_t err =
                store_mark_running(b->store, &d.pending[i].id, d.pending[i].attempt, dn->id,
                                   b->now_wall, b->now_wall + b->cfg.lease_ms);
            if (err == TASKQ_OK) {
                lease_grant(b->leases, &d.pending[i].id, d.pending[i].attempt, dn->id,
                            b->now_mono + b->cfg.lease_ms);
                if (thist_is_enabled()) {
                    char ids[TASKQ_ID_STRLEN + 1];
                    fmt_id(&d.pending[i].id, ids);
                    thist_event("dispatch %s %u %s %lld", ids, d.pending[i].attempt, dn->id,
                                (long long)b->cfg.lease_ms);
                }
                continue;
            }
            /* Not dispatched after all: cancel its TASK, give the credit back. */
            if (err == TASKQ_ESTORE)
                b->turn_failed = true;
            else
                tlog_error("dispatch: task changed under the broker: %s", taskq_err_name(err));
            if (d.pending[i].out != SIZE_MAX)
                b->out[d.pending[i].out].type = 0;
            registry_add_credit(dn, 1);
        }
    }
    free(nodes);
}

/* ---- lease rebuild ----------------------------------------------------- */

static void grant_loaded(const taskq_id_t *id, uint32_t attempt, const char *worker, void *arg)
{
    broker_t *b = arg;
    /* Honoured: a running task keeps its lease with a fresh deadline; if
     * nobody claims it, it expires and is requeued. */
    lease_grant(b->leases, id, attempt, worker, b->now_mono + b->cfg.lease_ms);
}

taskq_err_t handlers_rebuild_leases(broker_t *b)
{
    lease_table_destroy(&b->leases);
    b->leases = lease_table_new();
    return store_load_running(b->store, grant_loaded, b);
}
