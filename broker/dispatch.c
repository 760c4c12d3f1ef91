/* dispatch.c - which queued task goes to which free child slot; see
 * docs/tasks.md ("How dispatch decides") and handlers.h.
 *
 * One dispatch round per loop turn. For each node with credit (round robin
 * over nodes, one task per node per pass so the work spreads), pick a queue
 * among the node's subscribed queues that have a dispatchable task: smooth
 * weighted round-robin (nginx's SWRR: deterministic, no queue starves), or
 * the first in -Q order with --strict, or every queue in turn when the node
 * named none. Then take that queue's best task (priority 9 first, then
 * submission order) whose limits admit it now. A task held back by a limit
 * stays queued, costs no attempt and no slot, and its name is excluded for
 * the rest of the turn so the queue's other tasks still flow.
 *
 * Each queue has a per-turn cursor: a batch of candidate rows copied from
 * the store (store_next_ready, O(log n) per row over the ready index),
 * refetched when used up. Every pick is committed with the turn (mark
 * running + bucket state), and the TASK leaves only after that commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

#define DISPATCH_MAX 1024 /* TASKs per turn */
#define FETCH_MAX 256     /* candidate rows per store read */
#define FETCH_MIN 8       /* the first read of a queue in a turn, at least */

typedef struct {
    taskq_id_t id;
    char name[TQ_NAME_MAX + 1];
    int64_t time_limit_ms;
    int64_t expires_at;
    uint32_t attempts;
    uint8_t flags;
    size_t args_off, args_len; /* in the turn's arena */
} cand_t;

typedef struct {
    bqueue_t *q;
    cand_t *rows;
    size_t n, pos, cap;
    bool exhausted; /* the store has nothing more for this queue this turn */
    bool fetched;
    size_t batch;   /* rows the next fetch asks for (grows while the queue is used) */
    char (*excl)[TQ_NAME_MAX + 1]; /* names held back by a limit this turn */
    size_t nexcl;
} qcur_t;

typedef struct {
    broker_t *b;
    qcur_t *cur; /* one per known queue (index = position in b->queue_list) */
    size_t ncur;
    uint8_t *arena;
    size_t arena_len, arena_cap;
    size_t want; /* credit still open: bounds a fetch */
    qcur_t *filling;
    size_t dispatched;
} round_t;

static bool collect(const store_queued_t *row, void *arg)
{
    round_t *r = arg;
    qcur_t *c = r->filling;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->rows = xrealloc(c->rows, c->cap * sizeof *c->rows);
    }
    cand_t *k = &c->rows[c->n++];
    k->id = row->id;
    proto_str_copy(k->name, sizeof k->name, row->name);
    k->time_limit_ms = row->time_limit_ms;
    k->expires_at = row->expires_at;
    k->attempts = row->attempts;
    k->flags = row->flags;
    if (r->arena_len + row->args.len > r->arena_cap) {
        size_t cap = r->arena_cap ? r->arena_cap : 64 * 1024;
        while (cap < r->arena_len + row->args.len)
            cap *= 2;
        r->arena = xrealloc(r->arena, cap);
        r->arena_cap = cap;
    }
    k->args_off = r->arena_len;
    k->args_len = row->args.len;
    if (row->args.len)
        memcpy(r->arena + r->arena_len, row->args.ptr, row->args.len);
    r->arena_len += row->args.len;
    return true;
}

static bool fetch(round_t *r, qcur_t *c)
{
    c->n = c->pos = 0;
    r->filling = c;
    const char *ex[64];
    size_t nex = c->nexcl < 64 ? c->nexcl : 64;
    for (size_t i = 0; i < nex; i++)
        ex[i] = c->excl[i];
    /* A node's slots are shared among its queues: a queue first gets its
     * share of the open credit, then twice as much at each refetch, so
     * that five weighted queues do not each copy rows for all the credit */
    if (c->batch == 0)
        c->batch = r->ncur > 1 ? r->want / r->ncur : r->want;
    if (c->batch < FETCH_MIN)
        c->batch = FETCH_MIN;
    size_t limit = r->want < c->batch ? r->want : c->batch;
    if (limit > FETCH_MAX)
        limit = FETCH_MAX;
    if (limit == 0)
        limit = 1;
    c->batch *= 2;
    /* Names beyond 64 exclusions are skipped row by row instead. */
    if (store_next_ready(r->b->store, c->q->name, ex, nex, limit, collect, r) != TASKQ_OK) {
        r->b->turn_failed = true;
        c->exhausted = true;
        return false;
    }
    c->fetched = true;
    if (c->n < limit)
        c->exhausted = true; /* read to the end (may still hold rows) */
    return c->n > 0;
}

static bool excluded(const qcur_t *c, const char *name)
{
    for (size_t i = 0; i < c->nexcl; i++)
        if (strcmp(c->excl[i], name) == 0)
            return true;
    return false;
}

static void exclude(qcur_t *c, const char *name)
{
    c->excl = xrealloc(c->excl, (c->nexcl + 1) * sizeof *c->excl);
    snprintf(c->excl[c->nexcl++], sizeof c->excl[0], "%s", name);
}

/* An expired candidate: queued -> expired now, instead of running late. */
static void expire(broker_t *b, const cand_t *k)
{
    taskq_err_t err = store_expire_task(b->store, &k->id, broker_now(b));
    if (err == TASKQ_ESTORE) {
        b->turn_failed = true;
        return;
    }
    if (err != TASKQ_OK)
        return;
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&k->id, ids);
        thist_event("terminal %s %u expired 0000000000000000", ids, k->attempts);
    }
    handlers_task_ended(b, &k->id, TASKQ_STATE_EXPIRED, TASK_FLAGS_UNKNOWN);
}

/* The queue's next task that its limits admit now, or NULL. */
static cand_t *peek(round_t *r, qcur_t *c)
{
    broker_t *b = r->b;
    int64_t now = broker_now(b);
    for (;;) {
        if (b->turn_failed)
            return NULL;
        if (c->pos == c->n) {
            if (c->exhausted || !fetch(r, c))
                return NULL;
        }
        cand_t *k = &c->rows[c->pos];
        if (excluded(c, k->name)) {
            c->pos++;
            continue;
        }
        if (k->expires_at && k->expires_at <= now) {
            expire(b, k);
            c->pos++;
            continue;
        }
        if (!limits_admit(b->limits, b->leases, k->name, c->q->name, now, false)) {
            exclude(c, k->name);
            b->dispatch_blocked = true;
            c->pos++;
            continue;
        }
        return k;
    }
}

/* Whether queue cursor c can give a task now. */
static bool eligible(round_t *r, qcur_t *c)
{
    broker_t *b = r->b;
    if (!c || c->q->paused)
        return false;
    if (c->exhausted && c->pos == c->n)
        return false;
    uint64_t counts[TASKQ_NSTATES];
    store_queue_counts(b->store, c->q->name, counts);
    if (counts[TASKQ_STATE_QUEUED] == 0)
        return false;
    if (!limits_queue_open(b->limits, b->leases, c->q->name, broker_now(b))) {
        b->dispatch_blocked = true;
        return false;
    }
    return peek(r, c) != NULL;
}

static qcur_t *cursor_of(round_t *r, const char *queue)
{
    for (size_t i = 0; i < r->ncur; i++)
        if (strcmp(r->cur[i].q->name, queue) == 0)
            return &r->cur[i];
    return NULL;
}

/* The queue this node's next free slot takes from, or NULL. */
static qcur_t *pick_queue(round_t *r, registry_node_t *node)
{
    if (node->nqueues == 0) {
        /* every queue, in turn */
        for (size_t k = 0; k < r->ncur; k++) {
            size_t i = (node->all_rr + k) % r->ncur;
            if (eligible(r, &r->cur[i])) {
                node->all_rr = i + 1;
                return &r->cur[i];
            }
        }
        return NULL;
    }
    qcur_t *ok[TQ_QUEUES_MAX];
    for (uint32_t i = 0; i < node->nqueues; i++) {
        qcur_t *c = cursor_of(r, node->queues[i]);
        ok[i] = eligible(r, c) ? c : NULL;
        if (ok[i] && node->strict)
            return ok[i];
    }
    /* smooth weighted round-robin over the eligible queues */
    int64_t total = 0;
    int best = -1;
    for (uint32_t i = 0; i < node->nqueues; i++) {
        if (!ok[i])
            continue;
        node->cw[i] += node->weights[i];
        total += node->weights[i];
        if (best < 0 || node->cw[i] > node->cw[best])
            best = (int)i;
    }
    if (best < 0)
        return NULL;
    node->cw[best] -= total;
    return ok[best];
}

/* Dispatches candidate k of cursor c to node. false if the turn failed. */
static bool give(round_t *r, qcur_t *c, cand_t *k, registry_node_t *node)
{
    broker_t *b = r->b;
    uint32_t attempt = k->attempts + 1;
    taskq_err_t err = store_mark_running(b->store, &k->id, attempt, node->id, broker_now(b),
                                         broker_now(b) + b->cfg.lease_ms);
    c->pos++;
    if (err == TASKQ_ESTORE) {
        b->turn_failed = true;
        return false;
    }
    if (err != TASKQ_OK) {
        tlog_error("dispatch: task changed under the broker: %s", taskq_err_name(err));
        return true;
    }
    limits_admit(b->limits, b->leases, k->name, c->q->name, broker_now(b), true);
    lease_grant(b->leases, &k->id, attempt, node->id, k->name, c->q->name,
                b->now_mono + b->cfg.lease_ms);
    lease_set_flags(b->leases, &k->id, k->flags);
    if ((k->flags & TASK_FLAG_UNIQUE_START) &&
        store_unique_release(b->store, &k->id, 1) != TASKQ_OK) {
        b->turn_failed = true;
        return false;
    }
    node->credit--;
    r->want--;
    r->dispatched++;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_TASK);
    m.u.task.id = k->id;
    m.u.task.attempt = attempt;
    m.u.task.name = proto_str(k->name);
    m.u.task.args.ptr = r->arena + k->args_off;
    m.u.task.args.len = (uint32_t)k->args_len;
    m.u.task.time_limit_ms = k->time_limit_ms;
    out_queue_x(b, node->identity, node->identity_len, &m, OUT_TASK, 0, node->batch);
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&k->id, ids);
        thist_event("dispatch %s %u %s %lld", ids, attempt, node->id, (long long)b->cfg.lease_ms);
    }
    return true;
}

void handlers_dispatch(broker_t *b)
{
    b->dispatch_blocked = false;
    size_t n = registry_count(b->nodes), k = 0, cur = 0;
    if (n == 0 || b->nqueues == 0)
        return;
    uint64_t counts[TASKQ_NSTATES], total;
    if (store_counts(b->store, counts, &total) != TASKQ_OK) {
        b->turn_failed = true;
        return;
    }
    if (counts[TASKQ_STATE_QUEUED] == 0)
        return;
    registry_node_t **nodes = xmalloc(n * sizeof *nodes);
    uint64_t credit = 0;
    registry_node_t *node;
    while ((node = registry_next(b->nodes, &cur)) != NULL) {
        if (node->credit > 0 && !node->stopping) {
            nodes[k++] = node;
            credit += node->credit;
        }
    }
    round_t r = {.b = b};
    if (k > 0) {
        r.ncur = b->nqueues;
        r.cur = xcalloc(r.ncur, sizeof *r.cur);
        for (size_t i = 0; i < r.ncur; i++)
            r.cur[i].q = b->queue_list[i];
        r.want = credit < DISPATCH_MAX ? (size_t)credit : DISPATCH_MAX;
        size_t start = b->rr++ % k;
        bool *done = xcalloc(k, sizeof *done);
        size_t open = k;
        while (open > 0 && r.dispatched < DISPATCH_MAX && !b->turn_failed) {
            for (size_t j = 0; j < k && r.dispatched < DISPATCH_MAX; j++) {
                size_t i = (start + j) % k;
                if (done[i])
                    continue;
                registry_node_t *nd = nodes[i];
                qcur_t *c = nd->credit > 0 ? pick_queue(&r, nd) : NULL;
                cand_t *cand = c ? peek(&r, c) : NULL;
                if (!cand) {
                    done[i] = true;
                    open--;
                    continue;
                }
                if (!give(&r, c, cand, nd))
                    break;
            }
        }
        free(done);
        for (size_t i = 0; i < r.ncur; i++) {
            free(r.cur[i].rows);
            free(r.cur[i].excl);
        }
        free(r.cur);
        free(r.arena);
    }
    free(nodes);
    if (limits_count(b->limits) && limits_save(b->limits, b->store) != TASKQ_OK)
        b->turn_failed = true;
}
