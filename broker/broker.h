/*
 * broker.h - the taskq broker: one ROUTER socket, one SQLite store, one
 * thread. broker_run() is the loop: poll, handle a batch of messages, run
 * timers, dispatch, commit, then send (an ack never precedes durability).
 */
#ifndef TASKQ_BROKER_H
#define TASKQ_BROKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "store.h"

typedef struct {
    const char *bind;          /* endpoint, e.g. tcp://127.0.0.1:5555 */
    const char *db;            /* PATH or sqlite:PATH */
    store_durability_t durability;
    int64_t heartbeat_ms;
    uint32_t liveness;         /* silent heartbeats before a node is dead */
    int64_t lease_ms;
    uint32_t max_attempts;     /* default for tasks submitted with 0 */
    int64_t retention_ms;      /* default result TTL: succeeded, revoked, expired */
    int64_t failed_ttl_ms;     /* TTL of failed tasks (the dead-letter set) */
    const char *id;            /* broker id shown in WELCOME and STATS */
    uint64_t max_pending;      /* queued + running beyond which SUBMIT is EBUSY; 0 = no limit */
    bool strict_queues;        /* unknown queue on submit -> ENOQUEUE */
    const char *routes_path;   /* --routes FILE, NULL = none */
    const char *schedules_path;/* --schedules FILE, NULL = none */
    bool test_clock;           /* --test-clock: the clock moves only by ADMIN "clock" */
    int64_t test_clock_start;  /* unix ms, 0 = real now at start */
    volatile sig_atomic_t *stop; /* set by a signal handler; polled by the loop */
} broker_config_t;

typedef struct broker broker_t;

/* Opens the store, rebuilds leases, binds and prints the `ready endpoint=`
 * line. Caller owns the broker; NULL and *err on failure (logged). cfg's
 * strings must outlive the broker. */
broker_t *broker_new(const broker_config_t *cfg, taskq_err_t *err);
/* Runs until *cfg->stop is set; finishes the current turn, commits and sends
 * what it owes. TASKQ_OK on a clean stop. */
taskq_err_t broker_run(broker_t *self);
/* Closes the socket and the store (WAL checkpoint); sets *self_p = NULL. */
void broker_destroy(broker_t **self_p);

#endif
