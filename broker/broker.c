/* broker.c - the loop; see broker.h. No SQL and no message parsing here.
 *
 * One turn:  timeout = time to the next deadline -> zmq_poll -> store_begin
 *   -> drain up to DRAIN_MAX messages (decode, on_<msg>) -> timers
 *   -> dispatch -> store_commit -> send everything queued.
 * Every state change precedes the commit and every send follows it: an ack
 * must never precede durability. A failed commit rolls back, answers ESTORE
 * instead of each reply, drops the TASKs (their credit is given back) and
 * rebuilds the leases from the store. */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "handlers.h"
#include "sched.h"
#include "tclock.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

#define DRAIN_MAX 1024
#define HWM 100000
/* Replies queued for one peer that does not read them: beyond this they are
 * dropped (counted, logged), never blocking the loop nor growing memory. A
 * WAIT for TQ_WAIT_MAX ids answers at once with as many RESULTs: keep room. */
#define PEER_SNDHWM TQ_WAIT_MAX
#define DROP_LOG_EVERY_MS 1000
#define WAITERS_MAX 1000000
#define OUT_KEEP_BYTES (64 * 1024) /* larger BATCH buffers are freed after a turn */
#define OUT_ARENA_KEEP_BYTES (4 * 1024 * 1024) /* the same for the bodies' arena */

/* Every socket option in one place. */
static taskq_err_t configure_socket(void *sock)
{
    int one = 1, linger = 100, hwm = HWM, sndhwm = PEER_SNDHWM;
    /* a body up to twice the limit is read and answered ETOOBIG; a frame
     * larger than that closes its connection before it is buffered whole */
    int64_t maxmsg = 2 * (int64_t)TQ_MAX_BODY;
    if (zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one) ||
        zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) ||
        zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger) ||
        zmq_setsockopt(sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) || /* per peer on a ROUTER */
        zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm)) {
        tlog_error("zmq_setsockopt: %s", zmq_strerror(errno));
        return TASKQ_ESYS;
    }
    return TASKQ_OK;
}

int64_t broker_now(const broker_t *b)
{
    return b->cfg.test_clock ? b->test_now : b->now_wall;
}

bool broker_set_test_clock(broker_t *b, int64_t now_ms)
{
    if (!b->cfg.test_clock)
        return false;
    b->test_now = now_ms;
    return true;
}

/* Start-up work that writes: the schedules file. One transaction. */
static taskq_err_t load_schedules_file(broker_t *b)
{
    if (!b->cfg.schedules_path)
        return TASKQ_OK;
    taskq_err_t e = store_begin(b->store);
    if (e != TASKQ_OK)
        return e;
    char err[512];
    e = sched_load_file(b->sched, b, b->cfg.schedules_path, broker_now(b), err, sizeof err);
    if (e == TASKQ_OK && !b->turn_failed)
        e = store_commit(b->store);
    if (e != TASKQ_OK || b->turn_failed) {
        if (e != TASKQ_OK)
            tlog_error("schedules file: %s", err);
        store_rollback(b->store);
        b->turn_failed = false;
        return e != TASKQ_OK ? e : TASKQ_ESTORE;
    }
    tlog_info("schedules file %s loaded", b->cfg.schedules_path);
    return TASKQ_OK;
}

broker_t *broker_new(const broker_config_t *cfg, taskq_err_t *err)
{
    broker_t *b = xcalloc(1, sizeof *b);
    b->cfg = *cfg;
    b->now_mono = b->started_mono = tclock_mono_ms();
    b->now_wall = tclock_wall_ms();
    b->test_now = cfg->test_clock_start > 0 ? cfg->test_clock_start : b->now_wall;
    b->leases = lease_table_new();
    b->nodes = registry_new();
    b->waiters = waiters_new(WAITERS_MAX);
    b->progress = idmap_new();
    b->limits = limits_new();
    b->queue_map = idmap_new();
    b->sched = sched_new();
    taskq_err_t e = TASKQ_OK;
    if (cfg->routes_path) {
        char rerr[512];
        b->routes = routes_load(cfg->routes_path, rerr, sizeof rerr);
        if (!b->routes) {
            tlog_error("routes: %s", rerr);
            e = TASKQ_EINVAL;
            goto fail;
        }
        tlog_info("%zu routing rules from %s", routes_count(b->routes), cfg->routes_path);
    }
    b->store = store_open(cfg->db, cfg->durability, &e);
    if (!b->store) {
        tlog_error("cannot open the store %s", cfg->db);
        goto fail;
    }
    store_set_ttls(b->store, cfg->retention_ms, cfg->failed_ttl_ms);
    if ((e = handlers_rebuild_leases(b)) != TASKQ_OK || (e = handlers_reload(b)) != TASKQ_OK ||
        (e = load_schedules_file(b)) != TASKQ_OK)
        goto fail;
    uint64_t counts[TASKQ_NSTATES], total;
    if ((e = store_counts(b->store, counts, &total)) != TASKQ_OK)
        goto fail;
    for (int st = 0; st < TASKQ_NSTATES; st++)
        if (!taskq_state_is_terminal(st))
            b->pending += counts[st];
    if (lease_count(b->leases))
        tlog_info("%zu running tasks keep their leases (honoured)", lease_count(b->leases));
    b->ctx = zmq_ctx_new();
    b->sock = b->ctx ? zmq_socket(b->ctx, ZMQ_ROUTER) : NULL;
    if (!b->sock) {
        tlog_error("zmq socket: %s", zmq_strerror(errno));
        e = TASKQ_ESYS;
        goto fail;
    }
    if ((e = configure_socket(b->sock)) != TASKQ_OK)
        goto fail;
    if (zmq_bind(b->sock, cfg->bind) != 0) {
        tlog_error("cannot bind %s: %s", cfg->bind, zmq_strerror(errno));
        e = TASKQ_ESYS;
        goto fail;
    }
    char ep[256];
    size_t eplen = sizeof ep;
    if (zmq_getsockopt(b->sock, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0) {
        e = TASKQ_ESYS;
        goto fail;
    }
    /* The one line on stdout: tests and scripts wait for it. */
    printf("ready endpoint=%s\n", ep);
    fflush(stdout);
    tlog_info("broker %s serving on %s (store %s)", cfg->id, ep, cfg->db);
    /* history (TASKQ_HISTORY): from here on, events wait for the turn's commit */
    thist_open("broker");
    thist_event("start %s", cfg->id);
    thist_defer(true);
    if (err)
        *err = TASKQ_OK;
    return b;
fail:
    broker_destroy(&b);
    if (err)
        *err = e ? e : TASKQ_ESYS;
    return NULL;
}

void broker_destroy(broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_t *b = *self_p;
    if (b->sock)
        zmq_close(b->sock);
    if (b->ctx)
        zmq_ctx_term(b->ctx);
    store_close(&b->store);
    lease_table_destroy(&b->leases);
    limits_destroy(&b->limits);
    routes_destroy(&b->routes);
    sched_destroy(&b->sched);
    for (size_t i = 0; i < b->nqueues; i++)
        free(b->queue_list[i]);
    free(b->queue_list);
    idmap_destroy(&b->queue_map);
    registry_destroy(&b->nodes);
    waiters_destroy(&b->waiters);
    size_t c = 0;
    void *v;
    while (idmap_next(b->progress, &c, NULL, NULL, &v))
        free(v);
    idmap_destroy(&b->progress);
    msgpack_sbuffer_destroy(&b->out_arena);
    for (size_t k = 0; k < b->nbatches; k++)
        msgpack_sbuffer_destroy(&b->batches[k].buf);
    free(b->out);
    free(b);
    *self_p = NULL;
    thist_close();
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Milliseconds until the next timer or lease deadline (0 = now). */
static long next_timeout(broker_t *b)
{
    int64_t now = tclock_mono_ms();
    int64_t t = min64(min64(b->next_heartbeat, b->next_liveness),
                      min64(b->next_progress, min64(b->next_retention, b->next_waiters)));
    t = min64(t, lease_next_deadline(b->leases)) - now;
    /* broker-clock deadlines (ETAs, retries, expiries, schedules, buckets);
     * a test clock only moves by ADMIN, which wakes the loop itself */
    if (!b->cfg.test_clock) {
        int64_t c = handlers_next_clock_deadline(b);
        if (c != INT64_MAX) {
            int64_t wall = tclock_wall_ms();
            int64_t d = c <= wall ? 0 : c - wall;
            t = min64(t, d);
        }
    } else if (handlers_next_clock_deadline(b) <= b->test_now) {
        t = 0;
    }
    return t < 0 ? 0 : (long)t;
}

/* Decodes and handles one message body (alone or a BATCH item). */
static void handle_body(broker_t *b, const proto_frames_t *f, int type, const void *body,
                        size_t len, proto_msg_t *msg)
{
    b->turn_items++;
    const char *detail = NULL;
    taskq_err_t err = proto_decode(type, body, len, msg, &detail);
    if (err != TASKQ_OK)
        handlers_on_malformed(b, f->identity, f->identity_len, type, body, len, err, detail);
    else
        handlers_on_message(b, f->identity, f->identity_len, msg);
    proto_msg_clear(msg);
}

/* A BATCH: its items in order, as if each had come alone. A malformed
 * framing ends it there (the items before it stand), answered like any
 * malformed message. */
static void handle_batch(broker_t *b, const proto_frames_t *f, proto_msg_t *msg)
{
    proto_batch_iter_t it;
    proto_item_t item;
    taskq_err_t err = proto_batch_open(&it, f->body, f->body_len);
    while (err == TASKQ_OK && (err = proto_batch_next(&it, &item)) == TASKQ_OK)
        handle_body(b, f, item.type, item.body, item.len, msg);
    if (err != TASKQ_ENOTFOUND)
        handlers_on_malformed(b, f->identity, f->identity_len, PROTO_BATCH, f->body, f->body_len,
                              err, "malformed BATCH framing");
}

/* Receives and handles up to DRAIN_MAX messages without blocking. */
static void drain(broker_t *b)
{
    proto_msg_t msg;
    proto_msg_init(&msg, 0);
    for (int i = 0; i < DRAIN_MAX && !*b->cfg.stop; i++) {
        proto_frames_t f;
        taskq_err_t err = proto_recv(b->sock, true, true, &f);
        if (err == TASKQ_ETIMEDOUT || err == TASKQ_ESYS) {
            proto_frames_clear(&f);
            break; /* nothing left (ESYS: EINTR or logged by proto_recv) */
        }
        if (err != TASKQ_OK) {
            handlers_on_malformed(b, f.identity, f.identity_len, f.type, NULL, 0, err,
                                  "malformed envelope");
        } else if (f.type == PROTO_BATCH) {
            handle_batch(b, &f, &msg);
        } else {
            handle_body(b, &f, f.type, f.body, f.body_len, &msg);
        }
        proto_frames_clear(&f);
    }
}

/* The commit failed: nothing of this turn is durable, so nothing of it may
 * be acknowledged. */
static void turn_rolled_back(broker_t *b)
{
    store_rollback(b->store);
    b->submitted = b->submitted_at_turn_start;
    b->pending = b->pending_at_turn_start;
    size_t n = b->nout;
    for (size_t i = 0; i < n; i++) {
        out_t *o = &b->out[i];
        if (o->type == 0)
            continue;
        if (o->kind == OUT_TASK) {
            registry_node_t *node = registry_find_identity(b->nodes, o->identity, o->identity_len);
            if (node)
                registry_add_credit(node, 1);
            o->type = 0;
        } else if (o->kind == OUT_WAITER) {
            o->type = 0; /* clients re-send WAIT after 2 s of silence */
        } else if (o->kind == OUT_REPLY && o->type != PROTO_ERROR) {
            /* copy out first: out_error may grow (move) b->out */
            uint8_t identity[TQ_MAX_IDENTITY];
            size_t len = o->identity_len;
            uint64_t req = o->req;
            memcpy(identity, o->identity, len);
            o->type = 0;
            out_error(b, identity, len, req, TASKQ_ESTORE,
                      "store commit failed: nothing was acknowledged");
        }
    }
    /* progress entries may describe attempts that no longer exist */
    size_t c = 0;
    void *v;
    while (idmap_next(b->progress, &c, NULL, NULL, &v)) {
        progress_t *p = v;
        idmap_remove(b->progress, p->id.b, sizeof p->id.b);
        free(p);
    }
    if (handlers_rebuild_leases(b) != TASKQ_OK)
        tlog_error("cannot rebuild leases from the store; they will be rebuilt next failure");
    /* queues, limits and schedules as the store holds them */
    if (handlers_reload(b) != TASKQ_OK)
        tlog_error("cannot reload queues, limits and schedules from the store");
}

static const void *out_body(const broker_t *b, const out_t *o)
{
    return b->out_arena.data ? b->out_arena.data + o->body_off : NULL;
}

static void send_one(broker_t *b, const out_t *o, const void *body, size_t len)
{
    taskq_err_t err = proto_send_body(b->sock, o->identity, o->identity_len, o->type, body, len,
                                      true);
    if (err == TASKQ_EUNREACH) {
        /* Peer gone: the store holds the truth (a TASK then expires). */
        tlog_debug("%s to a peer that is gone: dropped", proto_type_name(o->type));
    } else if (err == TASKQ_EBUSY) {
        /* A peer that does not read its replies: drop, count, and warn at
         * most once a second (a flood of drops must not flood the log). */
        b->dropped_busy++;
        int64_t now = tclock_mono_ms();
        if (b->dropped_busy == 1 || now - b->drops_logged_at >= DROP_LOG_EVERY_MS) {
            b->drops_logged_at = now;
            tlog_warn("%s dropped: peer's queue is full (%llu replies dropped so far)",
                      proto_type_name(o->type), (unsigned long long)b->dropped_busy);
        }
    }
    /* other errors were logged by proto_send_body */
}

/* Sends a peer's open BATCH (a lone item as itself) and closes it. */
static void batch_flush(broker_t *b, size_t k)
{
    out_batch_t *bt = &b->batches[k];
    if (bt->n == 1) {
        send_one(b, bt->first, out_body(b, bt->first), bt->first->body_len);
    } else if (bt->n > 1) {
        proto_batch_end(&bt->buf, bt->n);
        out_t o = {.type = PROTO_BATCH, .identity_len = bt->first->identity_len};
        memcpy(o.identity, bt->first->identity, o.identity_len);
        send_one(b, &o, bt->buf.data, bt->buf.size);
    }
    bt->n = 0;
    bt->first = NULL;
    bt->buf.size = 0;
}

static bool same_peer(const out_t *a, const out_t *o)
{
    return a->identity_len == o->identity_len &&
           memcmp(a->identity, o->identity, o->identity_len) == 0;
}

/* The open BATCH of o's peer, or OUT_BATCHES. */
static size_t batch_find(broker_t *b, const out_t *o)
{
    for (size_t k = 0; k < b->nbatches; k++)
        if (b->batches[k].first && same_peer(b->batches[k].first, o))
            return k;
    return OUT_BATCHES;
}

/* Adds o to its peer's BATCH (opening one, or flushing a full one first). */
static void batch_add(broker_t *b, const out_t *o)
{
    size_t k = batch_find(b, o);
    if (k < OUT_BATCHES) {
        out_batch_t *bt = &b->batches[k];
        if (bt->n >= TQ_BATCH_ITEMS_MAX ||
            bt->buf.size + o->body_len + proto_batch_item_overhead(o->body_len) > TQ_BATCH_BYTES)
            batch_flush(b, k);
    } else {
        for (k = 0; k < b->nbatches && b->batches[k].first; k++)
            ;
        if (k == b->nbatches) {
            if (b->nbatches == OUT_BATCHES)
                batch_flush(b, k = 0); /* too many peers at once: send one early */
            else
                msgpack_sbuffer_init(&b->batches[b->nbatches++].buf);
        }
    }
    out_batch_t *bt = &b->batches[k];
    if (bt->n == 0) {
        bt->first = o;
        bt->buf.size = 0;
        proto_batch_begin(&bt->buf); /* the count goes in at flush */
    }
    proto_batch_add(&bt->buf, o->type, out_body(b, o), o->body_len);
    bt->n++;
}

static void send_all(broker_t *b)
{
    for (size_t i = 0; i < b->nout; i++) {
        out_t *o = &b->out[i];
        if (o->type != 0 && o->batch) {
            batch_add(b, o);
        } else if (o->type != 0) {
            size_t k = b->nbatches ? batch_find(b, o) : OUT_BATCHES;
            if (k < OUT_BATCHES)
                batch_flush(b, k); /* keep the peer's order */
            send_one(b, o, out_body(b, o), o->body_len);
        }
    }
    for (size_t k = 0; k < b->nbatches; k++) {
        batch_flush(b, k);
        if (b->batches[k].buf.alloc > OUT_KEEP_BYTES) {
            msgpack_sbuffer_destroy(&b->batches[k].buf);
            msgpack_sbuffer_init(&b->batches[k].buf);
        }
    }
    if (b->out_arena.alloc > OUT_ARENA_KEEP_BYTES) {
        msgpack_sbuffer_destroy(&b->out_arena);
        msgpack_sbuffer_init(&b->out_arena);
    }
    b->out_arena.size = 0;
    b->nout = 0;
}

static void turn(broker_t *b)
{
    b->now_mono = tclock_mono_ms();
    b->now_wall = tclock_wall_ms();
    b->submitted_at_turn_start = b->submitted;
    b->pending_at_turn_start = b->pending;
    b->turn_failed = store_begin(b->store) != TASKQ_OK;
    b->turn_items = 0;
    drain(b);
    b->turns++;
    b->items += b->turn_items;
    if (!b->turn_failed)
        handlers_run_timers(b);
    if (!b->turn_failed)
        handlers_dispatch(b);
    if (b->turn_failed || store_commit(b->store) != TASKQ_OK) {
        thist_discard(); /* the history shows committed transitions only */
        turn_rolled_back(b);
    } else {
        thist_flush();
    }
    send_all(b);
}

taskq_err_t broker_run(broker_t *b)
{
    zmq_pollitem_t item = {.socket = b->sock, .events = ZMQ_POLLIN};
    while (!*b->cfg.stop) {
        long timeout = next_timeout(b);
        if (zmq_poll(&item, 1, timeout) < 0 && errno != EINTR) {
            tlog_error("zmq_poll: %s", zmq_strerror(errno));
            return TASKQ_ESYS;
        }
        if (*b->cfg.stop)
            break;
        turn(b);
    }
    tlog_info("stopping: %zu leases, %zu nodes; closing the store (%llu turns, %llu messages)",
              lease_count(b->leases), registry_count(b->nodes), (unsigned long long)b->turns,
              (unsigned long long)b->items);
    thist_defer(false);
    thist_event("stop");
    return TASKQ_OK;
}
