/*
 * handlers.h - the broker's state shared by the loop (broker.c) and the
 * message handlers (handlers.c), and the handler entry points.
 *
 * Turn contract: handlers and timers change the store (inside the turn's
 * transaction) and the in-memory indexes, and queue outgoing messages with
 * out_queue(); nothing is sent until broker.c has committed. If a store verb
 * fails, the handler sets turn_failed and the loop rolls back and answers
 * ESTORE instead of every queued reply.
 */
#ifndef TASKQ_HANDLERS_H
#define TASKQ_HANDLERS_H

#include <msgpack.h>
#include <stdbool.h>

#include "broker.h"
#include "idmap.h"
#include "lease.h"
#include "ratelimit.h"
#include "proto.h"
#include "registry.h"
#include "routes.h"
#include "store.h"
#include "waiters.h"

/* What an outgoing message is, for the commit-failure path. */
typedef enum {
    OUT_PLAIN = 0, /* WELCOME, HEARTBEAT, RESULT to a waiter: send as is / drop */
    OUT_REPLY,     /* answers a request of this turn: ERROR ESTORE if the commit fails */
    OUT_TASK,      /* a dispatch: dropped and its credit given back if the commit fails */
    OUT_WAITER,    /* RESULT to an earlier WAIT: dropped if the commit fails */
} out_kind_t;

typedef struct {
    uint8_t identity[TQ_MAX_IDENTITY];
    size_t identity_len;
    int type;           /* proto_type_t; 0 = cancelled */
    out_kind_t kind;
    uint64_t req;       /* OUT_REPLY: the request's req (0 for worker acks) */
    bool batch;         /* the peer takes BATCH: may travel in one with others */
    size_t body_off;    /* the encoded body: body_len bytes at out_arena.data + body_off */
    size_t body_len;
} out_t;

/* A BATCH being built for one peer while the turn's messages are sent. */
typedef struct {
    const out_t *first;  /* the first item (sent alone if it stays the only one) */
    uint32_t n;
    msgpack_sbuffer buf;
} out_batch_t;
#define OUT_BATCHES 32   /* peers with an open BATCH at once (more: flush one) */

/* A queue's settings (mirror of the store's queues table). */
typedef struct {
    char name[TQ_QUEUE_MAX + 1];
    bool paused;
    uint64_t max_pending; /* 0 = none */
} bqueue_t;

typedef struct sched sched_t; /* sched.h */

typedef struct {
    taskq_id_t id;
    uint32_t attempt;
    uint64_t current, total;
    char message[TQ_PROGRESS_MSG_MAX + 1];
    bool dirty;
} progress_t;

struct broker {
    broker_config_t cfg;
    void *ctx, *sock;
    store_t *store;
    lease_table_t *leases;
    registry_t *nodes;
    waiters_t *waiters;
    idmap_t *progress;     /* task id -> progress_t* (latest, coalesced) */
    out_t *out;            /* this turn's outgoing messages, sent after commit */
    size_t nout, out_cap;
    /* their bodies, one after another (a turn may answer a WAIT for 10,000
     * ids: one buffer, not one per message) */
    msgpack_sbuffer out_arena;
    out_batch_t batches[OUT_BATCHES];
    size_t nbatches;
    bool turn_failed;      /* a store verb failed: roll the turn back */
    size_t turn_items;     /* messages (BATCH items counted) handled this turn */
    uint64_t turns, items; /* all turns, all messages handled (logged at stop) */
    uint64_t submitted, submitted_at_turn_start;
    /* non-terminal tasks (queued + running): loaded at start-up, kept on
     * every transition, restored with the turn on a failed commit */
    uint64_t pending, pending_at_turn_start;
    uint64_t busy_refused;   /* tasks refused EBUSY (--max-pending) */
    int64_t drops_logged_at; /* last "replies dropped" warning (mono ms) */
    uint64_t dropped_busy; /* replies dropped because a peer's HWM was full */
    int64_t started_mono, now_mono, now_wall;
    /* timers (monotonic ms) */
    int64_t next_heartbeat, next_liveness, next_progress, next_retention, next_waiters;
    size_t rr;             /* round-robin start for dispatch */
    /* dispatch policy (docs/tasks.md) */
    limits_t *limits;      /* rate / concurrency limits (mirror of the store) */
    routes_t *routes;      /* --routes rules, NULL = none */
    idmap_t *queue_map;    /* name -> bqueue_t* (owned; mirror of the store) */
    bqueue_t **queue_list; /* the same, in creation order */
    size_t nqueues, queues_cap;
    sched_t *sched;        /* periodic schedules */
    int64_t next_due;      /* broker-clock ms: earliest scheduled / retrying due_at */
    int64_t next_expiry;   /* broker-clock ms: earliest expires_at of a waiting task */
    int64_t next_refill;   /* broker-clock ms: a limit gives a token again */
    bool dispatch_blocked; /* last dispatch left credit and work: limits held it back */
    uint64_t rng;          /* xorshift state for jitter */
    int64_t test_now;      /* --test-clock: the broker clock (unix ms) */
};

/* The broker's clock (unix ms): real time, or the test clock. Every
 * time-dependent decision (ETA, backoff, expiry, cron, buckets) uses it. */
int64_t broker_now(const broker_t *b);
/* Sets the test clock (only with --test-clock); returns false otherwise. */
bool broker_set_test_clock(broker_t *b, int64_t now_ms);

/* Queue mirror: find (NULL if unknown) / ensure (creates in the store and
 * the mirror; NULL and turn_failed on a store error). */
bqueue_t *handlers_queue_find(broker_t *b, const char *name, size_t len);
bqueue_t *handlers_queue_ensure(broker_t *b, const char *name, size_t len);
/* Reloads queues, limits and schedules from the store (start-up, failed commit). */
taskq_err_t handlers_reload(broker_t *b);
/* Non-terminal tasks of a queue (its depth for max_pending). */
uint64_t handlers_queue_depth(broker_t *b, const char *queue);

/* A task was inserted (submit, schedule fire): counts, timers, history. */
void handlers_task_inserted(broker_t *b, const store_new_task_t *t);
/* The task just became terminal in this turn: queue RESULT to its waiters. */
void handlers_notify_waiters(broker_t *b, const taskq_id_t *id);
/* What the broker knows of a task's extras without reading its row
 * (lease_t.flags): TASK_FLAG_FLOW (workflow member, parent or callback),
 * TASK_FLAG_UNIQUE (holds a unique key), or TASK_FLAGS_UNKNOWN (look it up). */
#define TASK_FLAG_FLOW 0x01
#define TASK_FLAG_UNIQUE 0x02
#define TASK_FLAG_UNIQUE_START 0x04 /* the key is released at dispatch */
#define TASK_FLAGS_UNKNOWN 0xFF
/* A task just became terminal in this turn, by any path (flow.c): pending
 * count, waiters, its unique key, its workflow dependents (transitively). */
void handlers_task_ended(broker_t *b, const taskq_id_t *id, int state, uint8_t flags);
/* An unknown id that is older than the purge horizon: it ended and was
 * purged ("gone"), rather than never submitted. */
bool handlers_is_purged(broker_t *b, const taskq_id_t *id);
/* A group may be complete (an empty chord at submit): release its callback. */
void handlers_group_settled(broker_t *b, const taskq_id_t *group);
/* Revokes one task (flow.c); ETERMINAL / ENOTFOUND as store_revoke. */
taskq_err_t handlers_revoke(broker_t *b, const taskq_id_t *id, const char *reason,
                            bool terminate, int64_t grace_ms, int *prev_state);
/* The running attempt was revoked: drop its lease (and permits) and
 * progress, and queue CANCEL to its node (handlers.c). */
void handlers_void_lease(broker_t *b, const taskq_id_t *id, uint32_t attempt, bool terminate,
                         int64_t grace_ms);
/* ADMIN (admin.c). */
void admin_on_message(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg);

/* Handles one decoded message from the peer `identity`. */
void handlers_on_message(broker_t *b, const uint8_t *identity, size_t identity_len,
                         proto_msg_t *msg);
/* Answers a message that failed to decode (code, detail) and logs it. */
void handlers_on_malformed(broker_t *b, const uint8_t *identity, size_t identity_len, int type,
                           const void *body, size_t len, taskq_err_t code, const char *detail);
/* Timers: dead nodes, expired leases, heartbeats, progress flush, retention. */
void handlers_run_timers(broker_t *b);
/* Earliest broker-clock time (unix ms) a clock timer is due: a scheduled /
 * retrying task, an expiry, a schedule's fire, a limit's refill. */
int64_t handlers_next_clock_deadline(broker_t *b);
/* Gives each free slot a task by the dispatch policy (dispatch.c). */
void handlers_dispatch(broker_t *b);
/* Requeues (or fails at the limit) attempt `attempt` of id with a reason. */
void handlers_requeue(broker_t *b, const taskq_id_t *id, uint32_t attempt, const char *reason);
/* Rebuilds the lease table from the store (start-up, failed commit). */
taskq_err_t handlers_rebuild_leases(broker_t *b);

/* Encodes msg for the peer into the outgoing queue. */
void out_queue(broker_t *b, const uint8_t *identity, size_t identity_len, const proto_msg_t *msg,
               out_kind_t kind, uint64_t req);
/* The same for a peer that takes BATCH (batch true): the loop may send it
 * in one BATCH with the peer's other messages of the turn, in order. */
void out_queue_x(broker_t *b, const uint8_t *identity, size_t identity_len,
                 const proto_msg_t *msg, out_kind_t kind, uint64_t req, bool batch);
/* Queues ERROR {req, code, message}. */
void out_error(broker_t *b, const uint8_t *identity, size_t identity_len, uint64_t req,
               taskq_err_t code, const char *message);

#endif
