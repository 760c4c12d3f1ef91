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

#include "retrypol.h"
#include "sched.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

#define PROGRESS_FLUSH_MS 250
#define RETENTION_TICK_MS 1000
#define RETENTION_BATCH 500
#define WAITERS_TICK_MS 1000
#define TIMER_BATCH 1000 /* scheduled / retrying / expiring tasks moved per turn */

static void fmt_id(const taskq_id_t *id, char out[TASKQ_ID_STRLEN + 1])
{
    taskq_id_format(id, out);
}

/* ---- outgoing queue ---------------------------------------------------- */

void out_queue(broker_t *b, const uint8_t *identity, size_t identity_len, const proto_msg_t *msg,
               out_kind_t kind, uint64_t req)
{
    out_queue_x(b, identity, identity_len, msg, kind, req, false);
}

void out_queue_x(broker_t *b, const uint8_t *identity, size_t identity_len,
                 const proto_msg_t *msg, out_kind_t kind, uint64_t req, bool batch)
{
    if (b->nout == b->out_cap) {
        size_t cap = b->out_cap ? b->out_cap * 2 : 256;
        b->out = xrealloc(b->out, cap * sizeof *b->out);
        b->out_cap = cap;
    }
    out_t *o = &b->out[b->nout];
    o->body_off = b->out_arena.size;
    taskq_err_t err = proto_encode(msg, &b->out_arena); /* nothing left on error */
    if (err != TASKQ_OK) {
        /* Our own record broke a limit: a bug, not the peer's fault. */
        tlog_error("cannot encode %s: %s", proto_type_name(msg->type), taskq_err_name(err));
        if (msg->type == PROTO_ERROR)
            return;
        out_error(b, identity, identity_len, req, TASKQ_EINTERNAL, "cannot encode the reply");
        return;
    }
    o->body_len = b->out_arena.size - o->body_off;
    memcpy(o->identity, identity, identity_len);
    o->identity_len = identity_len;
    o->type = msg->type;
    o->kind = kind;
    o->req = req;
    o->batch = batch;
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
                        bool batch, void *arg)
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
    out_queue_x(n->b, identity, len, &m, OUT_WAITER, req, batch);
}

void handlers_notify_waiters(broker_t *b, const taskq_id_t *id)
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

/* How an attempt that did not succeed ends. */
typedef struct {
    const char *code;        /* failure code (taskq.crash, taskq.lost, ...) */
    const char *message;
    bool failure;            /* spends budget; false: reconcile after a broker restart */
    bool permanent;
    int64_t retry_delay_ms;  /* >= 0: explicit delay (taskq_retry); -1: the policy's */
    int64_t rate_limited_ms; /* > 0: put back without a failure, after this long */
    const proto_retry_policy_t *registered; /* the task's registration policy, or NULL */
    int32_t child_pid;
    const char *hist;        /* history reason of a requeue (child_died, node_lost, ...) */
} unsuccessful_t;

static double rand_unit(broker_t *b)
{
    /* xorshift64*: jitter needs spread, not secrecy */
    if (b->rng == 0)
        b->rng = ((uint64_t)b->now_mono * 0x9E3779B97F4A7C15ull + (uint64_t)b->now_wall) | 1u;
    b->rng ^= b->rng >> 12;
    b->rng ^= b->rng << 25;
    b->rng ^= b->rng >> 27;
    return (double)((b->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

/* Ends attempt `attempt` of id by its retry policy: queued at once,
 * retrying after a delay, or failed. Releases the lease (and with it the
 * concurrency permits). *state_out: the new state. ESTALE if the attempt is
 * not the running one; ESTORE sets turn_failed. */
static taskq_err_t end_unsuccessful(broker_t *b, const taskq_id_t *id, uint32_t attempt,
                                    const unsuccessful_t *f, int *state_out)
{
    char ids[TASKQ_ID_STRLEN + 1];
    fmt_id(id, ids);
    store_policy_t pol;
    taskq_err_t err = store_get_policy(b->store, id, &pol);
    if (err == TASKQ_OK && (pol.state != TASKQ_STATE_RUNNING || pol.attempts != attempt))
        err = TASKQ_ESTALE;
    if (err != TASKQ_OK) {
        if (err == TASKQ_ESTORE)
            b->turn_failed = true;
        return err;
    }
    char name[TQ_NAME_MAX + 1];
    proto_str_copy(name, sizeof name, pol.name);
    int64_t now = broker_now(b);
    char text[TQ_ERROR_MAX + 1];
    snprintf(text, sizeof text, "%s", f->message ? f->message : "");
    store_outcome_t o = {.child_pid = f->child_pid, .now = now};
    o.code = proto_str(f->code ? f->code : "taskq.error");
    if (f->rate_limited_ms > 0) {
        char key[TQ_LIMIT_KEY_MAX + 16];
        snprintf(key, sizeof key, "task:%s", name);
        limits_pause(b->limits, key, now + f->rate_limited_ms);
        o.to_state = TASKQ_STATE_RETRYING;
        o.due_at = now + f->rate_limited_ms;
        o.label = "rate_limited";
        o.code = proto_str("");
    } else if (!f->failure) {
        o.to_state = TASKQ_STATE_QUEUED;
        o.label = "requeued";
    } else {
        retrypol_t rp;
        retrypol_resolve(&rp, pol.max_attempts, &pol.policy, f->registered, b->cfg.max_attempts);
        uint32_t failures = pol.failures + 1;
        o.failure = true;
        /* A dead child or node is usually the node's fault: it is retried
         * whatever --retry-on lists (--no-retry-on still applies), at once
         * (still spending budget); errors back off. */
        bool infra = proto_str_eq(o.code, "taskq.crash") || proto_str_eq(o.code, "taskq.lost");
        if (infra)
            rp.retry_on[0] = '\0';
        if (retrypol_should_retry(&rp, failures, o.code.ptr, o.code.len, f->permanent)) {
            int64_t delay = f->retry_delay_ms >= 0 ? f->retry_delay_ms
                            : infra                ? 0
                                                   : retrypol_delay_ms(&rp, failures, rand_unit(b));
            o.to_state = delay > 0 ? TASKQ_STATE_RETRYING : TASKQ_STATE_QUEUED;
            o.due_at = delay > 0 ? now + delay : 0;
            o.label = delay > 0 ? "retrying" : "requeued";
        } else {
            o.to_state = TASKQ_STATE_FAILED;
            o.label = "failed";
            if (!f->permanent && failures >= rp.max_attempts)
                snprintf(text, sizeof text, "attempt limit (%u) reached: %s", rp.max_attempts,
                         f->message ? f->message : "");
        }
    }
    o.message = proto_str(text);
    err = store_end_attempt(b->store, id, attempt, &o);
    if (err == TASKQ_ESTORE)
        b->turn_failed = true;
    if (err != TASKQ_OK)
        return err;
    const lease_t *l = lease_find(b->leases, id);
    uint8_t flags = l ? l->flags : TASK_FLAGS_UNKNOWN;
    lease_release(b->leases, id);
    progress_drop(b, id);
    *state_out = o.to_state;
    if (o.to_state == TASKQ_STATE_RETRYING && o.due_at < b->next_due)
        b->next_due = o.due_at;
    if (o.to_state == TASKQ_STATE_FAILED) {
        tlog_info("task %s attempt %u failed: %s", ids, attempt, text);
        thist_event("terminal %s %u failed 0000000000000000", ids, attempt);
        handlers_task_ended(b, id, TASKQ_STATE_FAILED, flags);
    } else {
        tlog_info("task %s attempt %u %s (%.*s): %s", ids, attempt, o.label, (int)o.code.len,
                  o.code.ptr ? o.code.ptr : "", text);
        thist_event("requeue %s %u %s", ids, attempt, f->hist ? f->hist : o.label);
    }
    return TASKQ_OK;
}

bool handlers_is_purged(broker_t *b, const taskq_id_t *id)
{
    uint64_t purged = 0;
    int64_t horizon = 0;
    store_purge_info(b->store, &purged, &horizon);
    int64_t ts = 0;
    for (int i = 0; i < 6; i++)
        ts = (ts << 8) | id->b[i];
    return purged > 0 && ts <= horizon;
}

void handlers_void_lease(broker_t *b, const taskq_id_t *id, uint32_t attempt, bool terminate,
                         int64_t grace_ms)
{
    const lease_t *l = lease_find(b->leases, id);
    registry_node_t *node = l ? registry_find_node(b->nodes, l->node) : NULL;
    lease_release(b->leases, id);
    progress_drop(b, id);
    if (!node)
        return; /* node gone: nothing runs it, or its late DONE will be stale */
    proto_msg_t m;
    proto_msg_init(&m, PROTO_CANCEL);
    m.u.cancel.id = *id;
    m.u.cancel.attempt = attempt;
    m.u.cancel.terminate = terminate;
    m.u.cancel.grace_ms = grace_ms > 0 ? grace_ms : TQ_DEFAULT_REVOKE_GRACE_MS;
    out_queue(b, node->identity, node->identity_len, &m, OUT_PLAIN, 0);
    maybe_forget(b, node);
}

/* hist: the history reason (child_died, node_lost, lease_expired, hello_reconcile) */
static void requeue_coded(broker_t *b, const taskq_id_t *id, uint32_t attempt, const char *reason,
                          const char *hist)
{
    unsuccessful_t f = {.code = "taskq.lost", .message = reason, .failure = true,
                        .retry_delay_ms = -1, .hist = hist};
    if (strcmp(hist, "hello_reconcile") == 0) {
        /* The node does not hold it after a broker restart: not the task's fault. */
        f.failure = false;
    }
    int state = -1;
    taskq_err_t err = end_unsuccessful(b, id, attempt, &f, &state);
    if (err != TASKQ_OK) {
        char ids[TASKQ_ID_STRLEN + 1];
        fmt_id(id, ids);
        tlog_debug("requeue %s attempt %u: %s", ids, attempt, taskq_err_name(err));
        if (err == TASKQ_ESTALE)
            lease_release(b->leases, id);
    }
}

void handlers_requeue(broker_t *b, const taskq_id_t *id, uint32_t attempt, const char *reason)
{
    requeue_coded(b, id, attempt, reason,
                  strncmp(reason, "lease", 5) == 0 ? "lease_expired" : "node_lost");
}

/* ---- client messages -------------------------------------------------- */

/* ---- queues ------------------------------------------------------------ */

bqueue_t *handlers_queue_find(broker_t *b, const char *name, size_t len)
{
    return idmap_find(b->queue_map, name, len);
}

static bqueue_t *mirror_put(broker_t *b, const char *name, size_t len)
{
    bqueue_t *q = handlers_queue_find(b, name, len);
    if (q)
        return q;
    q = xcalloc(1, sizeof *q);
    if (len > TQ_QUEUE_MAX)
        len = TQ_QUEUE_MAX;
    memcpy(q->name, name, len);
    q->name[len] = '\0';
    idmap_put(b->queue_map, q->name, len, q);
    if (b->nqueues == b->queues_cap) {
        b->queues_cap = b->queues_cap ? b->queues_cap * 2 : 16;
        b->queue_list = xrealloc(b->queue_list, b->queues_cap * sizeof *b->queue_list);
    }
    b->queue_list[b->nqueues++] = q;
    return q;
}

bqueue_t *handlers_queue_ensure(broker_t *b, const char *name, size_t len)
{
    bqueue_t *q = handlers_queue_find(b, name, len);
    if (q)
        return q;
    q = mirror_put(b, name, len);
    bool created = false;
    if (store_queue_ensure(b->store, q->name, &created) != TASKQ_OK) {
        b->turn_failed = true;
        return NULL;
    }
    if (created)
        tlog_info("queue %s created", q->name);
    return q;
}

static void load_queue(const store_queue_t *sq, void *arg)
{
    broker_t *b = arg;
    bqueue_t *q = mirror_put(b, sq->name, strlen(sq->name));
    q->paused = sq->paused;
    q->max_pending = sq->max_pending;
}

taskq_err_t handlers_reload(broker_t *b)
{
    for (size_t i = 0; i < b->nqueues; i++) {
        idmap_remove(b->queue_map, b->queue_list[i]->name, strlen(b->queue_list[i]->name));
        free(b->queue_list[i]);
    }
    b->nqueues = 0;
    taskq_err_t err = store_queue_list(b->store, load_queue, b);
    if (err == TASKQ_OK)
        err = limits_load(b->limits, b->store);
    if (err == TASKQ_OK)
        err = sched_load(b->sched, b->store);
    /* timers recompute from the store on their next run */
    b->next_due = b->next_expiry = INT64_MIN;
    return err;
}

uint64_t handlers_queue_depth(broker_t *b, const char *queue)
{
    uint64_t c[TASKQ_NSTATES];
    store_queue_counts(b->store, queue, c);
    return c[TASKQ_STATE_QUEUED] + c[TASKQ_STATE_RUNNING] + c[TASKQ_STATE_SCHEDULED] +
           c[TASKQ_STATE_RETRYING] + c[TASKQ_STATE_PENDING];
}

void handlers_task_inserted(broker_t *b, const store_new_task_t *t)
{
    b->submitted++;
    b->pending++;
    if (t->state == TASKQ_STATE_SCHEDULED && t->due_at < b->next_due)
        b->next_due = t->due_at;
    if (t->expires_at && t->expires_at < b->next_expiry)
        b->next_expiry = t->expires_at;
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        fmt_id(&t->id, ids);
        thist_event("accept %s", ids);
    }
}

/* ERROR EBUSY with the queue, its depth and limit, and when to retry. */
static void out_busy(broker_t *b, const uint8_t *from, size_t flen, uint64_t req,
                     const char *queue, uint64_t depth, uint64_t limit)
{
    char text[256];
    if (queue[0])
        snprintf(text, sizeof text, "queue %s is full (depth %llu, limit %llu): retry after %d ms",
                 queue, (unsigned long long)depth, (unsigned long long)limit,
                 TQ_BUSY_RETRY_AFTER_MS);
    else
        snprintf(text, sizeof text, "%llu pending, limit %llu: retry after %d ms",
                 (unsigned long long)depth, (unsigned long long)limit, TQ_BUSY_RETRY_AFTER_MS);
    proto_msg_t m;
    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = req;
    m.u.error.code = TASKQ_EBUSY;
    m.u.error.message = proto_str(text);
    m.u.error.queue = proto_str(queue);
    m.u.error.depth = depth;
    m.u.error.limit = limit;
    m.u.error.retry_after_ms = TQ_BUSY_RETRY_AFTER_MS;
    out_queue(b, from, flen, &m, OUT_REPLY, req);
}

/* ---- client messages -------------------------------------------------- */

/* The unique key of a task: its own, or for "unique" a hash of (name,
 * canonical args, queue): "auto:" + 32 hex digits. "" if none. */
static void unique_key_of(const proto_task_spec_t *t, const char *queue, char *out,
                          size_t outsz)
{
    out[0] = '\0';
    if (t->unique_key.len) {
        proto_str_copy(out, outsz, t->unique_key);
        return;
    }
    if (!t->unique)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (t->args.len) {
        /* canonical: re-encoded by msgpack-c (minimal widths, map order kept) */
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, (const char *)t->args.ptr, t->args.len, &off) ==
            MSGPACK_UNPACK_SUCCESS) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, u.data);
        }
        msgpack_unpacked_destroy(&u);
    }
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x9ae16a3b2f90404full;
    const struct {
        const void *p;
        size_t n;
    } parts[3] = {{t->name.ptr, t->name.len}, {sb.data, sb.size}, {queue, strlen(queue)}};
    for (int k = 0; k < 3; k++) {
        const uint8_t *q = parts[k].p;
        for (size_t i = 0; i < parts[k].n; i++) {
            h1 = (h1 ^ q[i]) * 0x100000001b3ull;
            h2 = (h2 ^ q[i]) * 0x00000100000001b3ull + 0x9E3779B97F4A7C15ull;
        }
        h1 = (h1 ^ 0xff) * 0x100000001b3ull; /* separator */
        h2 = (h2 ^ 0xfe) * 0x100000001b3ull;
    }
    msgpack_sbuffer_destroy(&sb);
    snprintf(out, outsz, "auto:%016llx%016llx", (unsigned long long)h1, (unsigned long long)h2);
}

static bool is_graph(const proto_msg_t *msg)
{
    if (msg->u.submit.ngroups)
        return true;
    for (uint32_t i = 0; i < msg->u.submit.ntasks; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        if (t->has_parent || t->has_group || t->has_callback_of)
            return true;
    }
    return false;
}

static int group_index_of(const proto_msg_t *msg, const taskq_id_t *id)
{
    for (uint32_t g = 0; g < msg->u.submit.ngroups; g++)
        if (memcmp(msg->u.submit.groups[g].id.b, id->b, 16) == 0)
            return (int)g;
    return -1;
}

/* The rules of a graph SUBMIT (docs/protocol.md): every reference inside
 * this SUBMIT, parents before children, groups complete. NULL if fine,
 * else a message naming the task. */
static const char *graph_check(const proto_msg_t *msg, char *text, size_t textsz)
{
    uint32_t n = msg->u.submit.ntasks, ng = msg->u.submit.ngroups;
    idmap_t *seen = idmap_new();
    uint32_t *members = xcalloc(ng ? ng : 1, sizeof *members);
    uint32_t *callbacks = xcalloc(ng ? ng : 1, sizeof *callbacks);
    uint8_t **slots = xcalloc(ng ? ng : 1, sizeof *slots);
    const char *bad = NULL;
    /* sizes against member counts first: nothing is allocated on a
     * declared size (peer input) that the members do not back */
    for (uint32_t i = 0; i < n; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        int g = t->has_group ? group_index_of(msg, &t->group) : -1;
        if (g >= 0)
            members[g]++;
    }
    for (uint32_t g = 0; g < ng && !bad; g++) {
        if (group_index_of(msg, &msg->u.submit.groups[g].id) != (int)g)
            snprintf(text, textsz, "groups[%u]: duplicate group id", g), bad = text;
        else if (taskq_id_is_zero(&msg->u.submit.groups[g].id))
            snprintf(text, textsz, "groups[%u]: id is all-zero", g), bad = text;
        else if (members[g] != msg->u.submit.groups[g].size)
            snprintf(text, textsz, "groups[%u]: size %u but %u members", g,
                     msg->u.submit.groups[g].size, members[g]),
                bad = text;
    }
    for (uint32_t g = 0; g < ng; g++) {
        members[g] = 0;
        slots[g] = bad ? NULL : xcalloc(msg->u.submit.groups[g].size + 1u, 1);
    }
    for (uint32_t i = 0; i < n && !bad; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        if (idmap_find(seen, t->id.b, 16)) {
            snprintf(text, textsz, "task %u: duplicate id in one SUBMIT", i), bad = text;
            break;
        }
        if (t->has_parent && !idmap_find(seen, t->parent.b, 16)) {
            snprintf(text, textsz, "task %u: parent must be an earlier task of this SUBMIT", i);
            bad = text;
            break;
        }
        idmap_put(seen, t->id.b, 16, (void *)1);
        if ((t->has_parent || t->has_callback_of) && (t->eta_at || t->countdown_ms)) {
            snprintf(text, textsz, "task %u: a workflow child cannot have an ETA or countdown",
                     i);
            bad = text;
            break;
        }
        if (t->unique || t->unique_key.len) {
            snprintf(text, textsz, "task %u: unique keys are not supported inside a workflow", i);
            bad = text;
            break;
        }
        if (t->has_group) {
            int g = group_index_of(msg, &t->group);
            if (g < 0) {
                snprintf(text, textsz, "task %u: group is not in this SUBMIT's groups", i);
                bad = text;
                break;
            }
            if (t->index >= msg->u.submit.groups[g].size || slots[g][t->index]) {
                snprintf(text, textsz, "task %u: index %u is out of range or taken in its group",
                         i, t->index);
                bad = text;
                break;
            }
            slots[g][t->index] = 1;
            members[g]++;
        }
        if (t->has_callback_of) {
            int g = group_index_of(msg, &t->callback_of);
            if (g < 0 || ++callbacks[g] > 1 ||
                (t->has_group && memcmp(t->group.b, t->callback_of.b, 16) == 0)) {
                snprintf(text, textsz,
                         "task %u: callback_of names no group of this SUBMIT, a group with "
                         "another callback, or its own group",
                         i);
                bad = text;
                break;
            }
        }
    }
    for (uint32_t g = 0; g < ng && !bad; g++) {
        if (members[g] != msg->u.submit.groups[g].size) {
            snprintf(text, textsz, "groups[%u]: size %u but %u members", g,
                     msg->u.submit.groups[g].size, members[g]);
            bad = text;
        }
    }
    for (uint32_t g = 0; g < ng; g++)
        free(slots[g]);
    free(slots);
    free(members);
    free(callbacks);
    idmap_destroy(&seen);
    return bad;
}

static void on_submit(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    static uint32_t zeros[TQ_GRAPH_MAX]; /* every stored task's code is 0 */
    static proto_str_t queues[TQ_GRAPH_MAX];
    static bqueue_t *qs[TQ_GRAPH_MAX];
    static taskq_id_t holders[TQ_GRAPH_MAX];
    uint64_t req = msg->u.submit.req;
    uint32_t n = msg->u.submit.ntasks;
    bool graph = is_graph(msg);
    if (n > (graph ? TQ_GRAPH_MAX : TQ_BATCH_MAX)) {
        out_error(b, from, flen, req, TASKQ_ETOOBIG, "too many tasks in one SUBMIT");
        return;
    }
    /* The codec validated every task; check what it must not let through
     * and resolve each queue before storing anything: all or nothing. */
    for (uint32_t i = 0; i < n; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        if (taskq_id_is_zero(&t->id)) {
            out_error(b, from, flen, req, TASKQ_EPROTO, "task id is all-zero");
            return;
        }
        if (t->queue.len) {
            if (!proto_queue_is_valid(t->queue.ptr, t->queue.len)) {
                out_error(b, from, flen, req, TASKQ_ENAME, "invalid queue name");
                return;
            }
            queues[i] = t->queue;
        } else {
            queues[i] = proto_str(routes_match(b->routes, t->name.ptr, t->name.len));
        }
        qs[i] = handlers_queue_find(b, queues[i].ptr, queues[i].len);
        if (!qs[i] && b->cfg.strict_queues) {
            char text[160];
            snprintf(text, sizeof text, "unknown queue '%.*s' (the broker runs with --strict-queues)",
                     (int)queues[i].len, queues[i].ptr);
            out_error(b, from, flen, req, TASKQ_ENOQUEUE, text);
            return;
        }
    }
    if (graph) {
        char text[256];
        const char *bad = graph_check(msg, text, sizeof text);
        if (bad) {
            out_error(b, from, flen, req, TASKQ_EINVAL, bad);
            return;
        }
    }
    /* Overload: refuse the whole SUBMIT rather than grow without bound; the
     * client hears EBUSY at once and retries later. Resent ids count too
     * (checking which are new would cost a lookup each). */
    if (b->cfg.max_pending && b->pending + n > b->cfg.max_pending) {
        b->busy_refused += n;
        for (uint32_t i = 0; i < n && thist_is_enabled(); i++) {
            char ids[TASKQ_ID_STRLEN + 1];
            fmt_id(&msg->u.submit.tasks[i].id, ids);
            thist_event("busy %s", ids);
        }
        out_busy(b, from, flen, req, "", b->pending, b->cfg.max_pending);
        return;
    }
    /* Per-queue bounds: a batch is accepted whole or refused whole. */
    bool soft = false;
    for (uint32_t i = 0; i < n; i++) {
        if (!qs[i] || !qs[i]->max_pending)
            continue;
        bool first = true; /* count each queue once, at its first task */
        for (uint32_t j = 0; j < i && first; j++)
            first = qs[j] != qs[i];
        if (!first)
            continue;
        uint64_t add = 0;
        for (uint32_t j = i; j < n; j++)
            add += qs[j] == qs[i];
        uint64_t depth = handlers_queue_depth(b, qs[i]->name);
        if (depth + add > qs[i]->max_pending) {
            b->busy_refused += n;
            for (uint32_t j = 0; j < n && thist_is_enabled(); j++) {
                char ids[TASKQ_ID_STRLEN + 1];
                fmt_id(&msg->u.submit.tasks[j].id, ids);
                thist_event("busy %s", ids);
            }
            out_busy(b, from, flen, req, qs[i]->name, depth, qs[i]->max_pending);
            return;
        }
        if ((depth + add) * 100 > qs[i]->max_pending * TQ_SOFT_WATERMARK_PCT)
            soft = true;
    }
    int64_t now = broker_now(b);
    bool any_holder = false;
    /* tasks that are some task's parent: their end releases children */
    static bool is_parent[TQ_GRAPH_MAX];
    memset(is_parent, 0, n * sizeof *is_parent);
    if (graph) {
        idmap_t *pos = idmap_new();
        for (uint32_t i = 0; i < n; i++)
            idmap_put(pos, msg->u.submit.tasks[i].id.b, 16, (void *)((uintptr_t)i + 1));
        for (uint32_t i = 0; i < n; i++) {
            const proto_task_spec_t *t = &msg->u.submit.tasks[i];
            uintptr_t j = t->has_parent ? (uintptr_t)idmap_find(pos, t->parent.b, 16) : 0;
            if (j)
                is_parent[j - 1] = true;
        }
        idmap_destroy(&pos);
    }
    /* A resent graph (its first task is known) was accepted before: the
     * insert below is a no-op task by task, and the groups exist. A known
     * group id with unknown tasks would graft new members onto it: refused. */
    if (graph && msg->u.submit.ngroups) {
        store_pending_t first;
        taskq_err_t fe = store_get_pending(b->store, &msg->u.submit.tasks[0].id, &first);
        if (fe == TASKQ_ESTORE) {
            store_failed(b, from, flen, req);
            return;
        }
        for (uint32_t g = 0; fe == TASKQ_ENOTFOUND && g < msg->u.submit.ngroups; g++) {
            store_group_t old;
            taskq_err_t ge = store_group_get(b->store, &msg->u.submit.groups[g].id, &old);
            if (ge == TASKQ_ESTORE) {
                store_failed(b, from, flen, req);
                return;
            }
            if (ge == TASKQ_OK) {
                char text[96];
                snprintf(text, sizeof text, "groups[%u]: the group id exists already", g);
                out_error(b, from, flen, req, TASKQ_EINVAL, text);
                return;
            }
        }
    }
    for (uint32_t g = 0; g < msg->u.submit.ngroups; g++) {
        const proto_group_t *pg = &msg->u.submit.groups[g];
        store_group_t sg = {.id = pg->id, .total = pg->size, .on_fail = pg->on_fail};
        for (uint32_t i = 0; i < n; i++) {
            const proto_task_spec_t *t = &msg->u.submit.tasks[i];
            if (t->has_callback_of && memcmp(t->callback_of.b, pg->id.b, 16) == 0) {
                sg.has_callback = true;
                sg.callback = t->id;
            }
        }
        if (store_group_insert(b->store, &sg) != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        const proto_task_spec_t *t = &msg->u.submit.tasks[i];
        memset(&holders[i], 0, sizeof holders[i]);
        if (!qs[i] && !(qs[i] = handlers_queue_ensure(b, queues[i].ptr, queues[i].len))) {
            store_failed(b, from, flen, req);
            return;
        }
        char ukey[TQ_UNIQUE_KEY_MAX + 1];
        unique_key_of(t, qs[i]->name, ukey, sizeof ukey);
        if (ukey[0]) {
            store_unique_t u;
            taskq_err_t e = store_unique_get(b->store, ukey, &u);
            if (e == TASKQ_ESTORE) {
                store_failed(b, from, flen, req);
                return;
            }
            if (e == TASKQ_OK && memcmp(u.holder.b, t->id.b, 16) != 0 &&
                (!u.released || now < u.hold_until)) {
                holders[i] = u.holder; /* DUPLICATE: nothing is created */
                any_holder = true;
                queues[i] = proto_str(qs[i]->name);
                continue;
            }
        }
        store_new_task_t nt = {
            .id = t->id,
            .name = t->name,
            .args = t->args,
            .time_limit_ms = t->time_limit_ms,
            .max_attempts = t->max_attempts,
            .queue = proto_str(qs[i]->name),
            .priority = t->priority >= 0 ? t->priority : TQ_DEFAULT_PRIORITY,
            .state = TASKQ_STATE_QUEUED,
            .policy = t->policy,
            .schedule = proto_str(""),
            .submitted_at = now,
            .immutable = t->immutable,
            .unique_key = proto_str(ukey),
            .unique_until = t->unique_until,
            .result_ttl_ms = t->result_ttl_ms,
        };
        if (t->has_parent)
            nt.parent = t->parent;
        if (t->has_group) {
            nt.group = t->group;
            nt.group_index = t->index;
        }
        if (t->has_callback_of) {
            nt.group = t->callback_of;
            nt.is_callback = true;
        }
        nt.deps_left = (uint32_t)t->has_parent + (uint32_t)t->has_callback_of;
        if (graph && (t->has_parent || t->has_group || t->has_callback_of || is_parent[i]))
            nt.flags |= TASK_FLAG_FLOW;
        if (ukey[0])
            nt.flags |= TASK_FLAG_UNIQUE | (t->unique_until == 1 ? TASK_FLAG_UNIQUE_START : 0);
        int64_t eta = t->eta_at;
        if (t->countdown_ms > 0 && now + t->countdown_ms > eta)
            eta = now + t->countdown_ms;
        if (nt.deps_left) {
            nt.state = TASKQ_STATE_PENDING;
        } else if (eta > now) {
            nt.state = TASKQ_STATE_SCHEDULED;
            nt.due_at = eta;
        }
        nt.expires_at = t->expires_at;
        if (t->expires_in_ms > 0 && (nt.expires_at == 0 || now + t->expires_in_ms < nt.expires_at))
            nt.expires_at = now + t->expires_in_ms;
        bool inserted = false;
        if (store_insert_task(b->store, &nt, &inserted) != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        }
        if (inserted && ukey[0] &&
            store_unique_put(b->store, ukey, &t->id,
                             t->unique_for_ms > 0 ? now + t->unique_for_ms : 0) != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        }
        if (inserted)
            handlers_task_inserted(b, &nt);
        queues[i] = proto_str(qs[i]->name);
    }
    /* an empty chord runs its callback at once, with [] */
    for (uint32_t g = 0; g < msg->u.submit.ngroups && !b->turn_failed; g++)
        if (msg->u.submit.groups[g].size == 0)
            handlers_group_settled(b, &msg->u.submit.groups[g].id);
    proto_msg_t ack;
    proto_msg_init(&ack, PROTO_SUBMIT_ACK);
    ack.u.submit_ack.req = req;
    ack.u.submit_ack.ncodes = n;
    ack.u.submit_ack.codes = zeros;
    ack.u.submit_ack.nqueues = n;
    ack.u.submit_ack.queues = queues;
    ack.u.submit_ack.soft = soft;
    if (any_holder) {
        ack.u.submit_ack.nholders = n;
        ack.u.submit_ack.holders = holders;
    }
    out_queue(b, from, flen, &ack, OUT_REPLY, req);
}

static void on_status(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    uint64_t req = msg->u.status.req;
    proto_msg_t r;
    proto_msg_init(&r, PROTO_STATUS_REPLY);
    taskq_err_t err = store_get_task(b->store, &msg->u.status.id, &r.u.status_reply.task);
    if (err == TASKQ_ENOTFOUND && handlers_is_purged(b, &msg->u.status.id)) {
        out_error(b, from, flen, req, TASKQ_EPURGED,
                  "task record purged after its retention time (it had ended)");
        return;
    }
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
    bool batch = msg->u.wait.batch;
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
            r.u.result.code =
                handlers_is_purged(b, id) ? TASKQ_EPURGED : TASKQ_ENOTFOUND;
            out_queue_x(b, from, flen, &r, OUT_REPLY, req, batch);
        } else if (err != TASKQ_OK) {
            store_failed(b, from, flen, req);
            return;
        } else if (taskq_state_is_terminal(r.u.result.task.state)) {
            r.u.result.code = TASKQ_OK;
            out_queue_x(b, from, flen, &r, OUT_REPLY, req, batch);
        } else if (waiters_add(b->waiters, id, from, flen, req, b->now_mono + t, batch) !=
                   TASKQ_OK) {
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
    uint64_t req = msg->u.stats.req, counts[TASKQ_NSTATES], total;
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
    int64_t horizon = 0;
    store_purge_info(b->store, &s->purged, &horizon);
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
    node->batch = msg->u.hello.batch;
    registry_set_queues(node, msg->u.hello.queue_names, msg->u.hello.queue_weights,
                        msg->u.hello.nqueues, msg->u.hello.strict);
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
    w.u.welcome.batch = true; /* this broker reads BATCH from any peer */
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
        store_outcome_t o = {.to_state = TASKQ_STATE_SUCCEEDED,
                             .result = msg->u.done.result,
                             .code = proto_str(""),
                             .message = proto_str(""),
                             .label = "succeeded",
                             .child_pid = msg->u.done.child_pid,
                             .now = broker_now(b)};
        err = store_end_attempt(b->store, id, attempt, &o);
        state = TASKQ_STATE_SUCCEEDED;
        if (err == TASKQ_OK)
            thist_event("terminal %s %u succeeded %016llx", ids, attempt,
                        (unsigned long long)thist_result_hash(msg->u.done.result.ptr,
                                                             msg->u.done.result.len));
    } else {
        char code[TQ_CODE_MAX + 1], text[TQ_ERROR_MAX + 1];
        proto_str_copy(code, sizeof code, msg->u.done.code);
        if (!code[0])
            snprintf(code, sizeof code, "%s", msg->u.done.retry ? "taskq.crash" : "taskq.error");
        proto_str_copy(text, sizeof text, msg->u.done.error);
        const proto_retry_policy_t *reg = &msg->u.done.policy;
        bool has_reg = reg->max_attempts || reg->backoff_base_ms || reg->backoff_factor > 0 ||
                       reg->backoff_max_ms || reg->jitter >= 0 || reg->retry_on.len ||
                       reg->no_retry_on.len;
        unsuccessful_t f = {.code = code,
                            .message = text,
                            .failure = true,
                            .permanent = msg->u.done.permanent,
                            .retry_delay_ms = msg->u.done.retry_delay_ms,
                            .rate_limited_ms = msg->u.done.rate_limited_ms,
                            .registered = has_reg ? reg : NULL,
                            .child_pid = msg->u.done.child_pid,
                            .hist = msg->u.done.retry ? "child_died" : NULL};
        err = end_unsuccessful(b, id, attempt, &f, &state);
    }
    uint32_t code = TASKQ_OK;
    if (err == TASKQ_ESTORE) {
        store_failed(b, node->identity, node->identity_len, 0);
        return;
    } else if (err == TASKQ_OK) {
        /* The attempt number is the fencing token: the store's CAS on
         * (running, attempt) decided; the lease follows it (a failure was
         * settled by end_unsuccessful). */
        if (state == TASKQ_STATE_SUCCEEDED) {
            const lease_t *l = lease_find(b->leases, id);
            uint8_t flags = l ? l->flags : TASK_FLAGS_UNKNOWN;
            lease_release(b->leases, id);
            progress_drop(b, id);
            handlers_task_ended(b, id, TASKQ_STATE_SUCCEEDED, flags);
        }
        tlog_debug("task %s attempt %u done by %s: %s", ids, attempt, node->id,
                   taskq_state_name(state));
    } else {
        /* A repeat of the DONE that finished the task is acknowledged again. */
        proto_task_rec_t rec;
        taskq_err_t g = store_get_task(b->store, id, &rec);
        if (g == TASKQ_ESTORE) {
            store_failed(b, node->identity, node->identity_len, 0);
            return;
        }
        /* only a DONE can have made a task succeeded or failed with this
         * attempt; a revoked attempt's DONE is stale, never a repeat */
        bool repeat = g == TASKQ_OK &&
                      (rec.state == TASKQ_STATE_SUCCEEDED || rec.state == TASKQ_STATE_FAILED) &&
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
    out_queue_x(b, node->identity, node->identity_len, &a, OUT_REPLY, 0, node->batch);
    maybe_forget(b, node);
}

static void on_heartbeat(broker_t *b, registry_node_t *node, proto_msg_t *msg)
{
    node->last_heartbeat_at = b->now_wall;
    registry_set_children(node, msg->u.heartbeat.children, msg->u.heartbeat.nchildren);
    for (uint32_t i = 0; i < msg->u.heartbeat.nleases; i++) {
        const proto_lease_t *l = &msg->u.heartbeat.leases[i];
        if (lease_renew(b->leases, &l->id, l->attempt, node->id, b->now_mono + b->cfg.lease_ms) ==
            TASKQ_OK)
            continue;
        /* The node still runs an attempt that is no longer current (revoked
         * or requeued while it was cut off, so it missed the CANCEL): tell it
         * again, softly. Its result would be rejected as stale anyway. */
        tlog_debug("heartbeat of %s lists a stale lease (attempt %u): CANCEL", node->id,
                   l->attempt);
        proto_msg_t m;
        proto_msg_init(&m, PROTO_CANCEL);
        m.u.cancel.id = l->id;
        m.u.cancel.attempt = l->attempt;
        m.u.cancel.terminate = false;
        m.u.cancel.grace_ms = TQ_DEFAULT_REVOKE_GRACE_MS;
        out_queue(b, node->identity, node->identity_len, &m, OUT_PLAIN, 0);
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
                       : type == PROTO_ADMIN   ? msg->u.admin.req
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
    case PROTO_ADMIN: admin_on_message(b, from, flen, msg); break;
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

static void promoted(const taskq_id_t *id, void *arg)
{
    (void)id;
    (void)arg;
}

static void expired(const taskq_id_t *id, void *arg)
{
    broker_t *b = arg;
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        fmt_id(id, ids);
        thist_event("terminal %s 0 expired 0000000000000000", ids);
    }
    handlers_task_ended(b, id, TASKQ_STATE_EXPIRED, TASK_FLAGS_UNKNOWN);
}

/* Broker-clock timers: due ETAs and retries, expiries, schedules. */
static void run_clock_timers(broker_t *b)
{
    int64_t now = broker_now(b);
    if (now >= b->next_due) {
        size_t n = 0;
        int64_t next = INT64_MAX;
        if (store_promote_due(b->store, now, TIMER_BATCH, promoted, b, &n, &next) != TASKQ_OK) {
            b->turn_failed = true;
            return;
        }
        /* a full batch: more are due, come back next turn */
        b->next_due = n == TIMER_BATCH ? now : next;
        if (n)
            tlog_debug("%zu scheduled / retrying tasks are due: queued", n);
    }
    if (now >= b->next_expiry) {
        size_t n = 0;
        int64_t next = INT64_MAX;
        if (store_expire_due(b->store, now, TIMER_BATCH, expired, b, &n, &next) != TASKQ_OK) {
            b->turn_failed = true;
            return;
        }
        b->next_expiry = n == TIMER_BATCH ? now : next;
        if (n)
            tlog_info("%zu tasks expired before they started", n);
    }
    sched_tick(b->sched, b, now);
}

int64_t handlers_next_clock_deadline(broker_t *b)
{
    int64_t t = b->next_due < b->next_expiry ? b->next_due : b->next_expiry;
    int64_t s = sched_next_at(b->sched);
    if (s < t)
        t = s;
    if (b->dispatch_blocked) {
        int64_t r = limits_next_refill(b->limits, broker_now(b));
        if (r < t)
            t = r;
    }
    return t;
}

void handlers_run_timers(broker_t *b)
{
    int64_t now = b->now_mono;
    run_clock_timers(b);
    if (b->turn_failed)
        return;
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
        if (store_purge_due(b->store, broker_now(b), RETENTION_BATCH, &purged) != TASKQ_OK)
            b->turn_failed = true;
        else if (purged)
            tlog_info("retention: %zu finished tasks deleted", purged);
        /* a full batch means more are due: come back next turn */
        b->next_retention = now + (purged == RETENTION_BATCH ? 0 : RETENTION_TICK_MS);
    }
}

/* ---- lease rebuild ----------------------------------------------------- */

static void grant_loaded(const taskq_id_t *id, uint32_t attempt, const char *worker,
                         const char *name, const char *queue, void *arg)
{
    broker_t *b = arg;
    /* Honoured: a running task keeps its lease with a fresh deadline; if
     * nobody claims it, it expires and is requeued. */
    lease_grant(b->leases, id, attempt, worker, name, queue, b->now_mono + b->cfg.lease_ms);
}

taskq_err_t handlers_rebuild_leases(broker_t *b)
{
    lease_table_destroy(&b->leases);
    b->leases = lease_table_new();
    return store_load_running(b->store, grant_loaded, b);
}
