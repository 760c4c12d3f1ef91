/*
 * supervisor.h - the worker's parent process: one loop over the broker
 * DEALER socket, the children's socketpairs and a signalfd. It forks the
 * children (pool), hands them TASKs, forwards their PROGRESS (coalesced) and
 * DONE (kept until DONE_ACK), grants credit for idle children plus up to
 * `prefetch` tasks held in a local FIFO (taskfifo), sends
 * heartbeats, reconnects when the broker falls silent, enforces time limits
 * and shuts down warm (first SIGTERM/SIGINT) or cold (grace over, or a
 * second signal). It runs no task code and never touches SQLite. A failed
 * DONE carries a code (the task's, or taskq.crash / taskq.timeout /
 * taskq.lost set here) and the task's registration retry policy, which the
 * child sends before running it; the broker decides whether to retry.
 * CANCEL (a revoke) touches only the child running exactly that (id,
 * attempt): a CANCEL frame (taskq_cancelled), with terminate also SIGTERM
 * and, after the grace, SIGKILL if that child still runs that attempt; a
 * SIGTERMed child never gets another task (STOP after its DONE) and is
 * replaced. A prefetched copy is dropped; anything else is ignored.
 */
#ifndef TASKQ_SUPERVISOR_H
#define TASKQ_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "qspec.h"
#include "taskq.h"

typedef struct {
    size_t nchildren;              /* 1..TQ_SLOTS_MAX */
    size_t prefetch;               /* tasks held beyond idle children; 0 = none.
                                      nchildren + prefetch <= TQ_LEASES_MAX */
    const char *broker;            /* endpoint */
    const char *node_id;           /* [A-Za-z0-9_.:-]{1,TQ_NODE_MAX} */
    int64_t time_limit_ms;         /* default per task, 0 = none */
    uint64_t max_tasks_per_child;  /* 0 = unlimited */
    int64_t grace_ms;              /* warm shutdown budget */
    const char *const *modules;    /* --module paths, passed to children */
    size_t nmodules;
    int64_t heartbeat_ms;
    uint32_t liveness;
    const char *exe;               /* what children exec: "/proc/self/exe" */
    const qspec_t *queues;         /* -Q, sent in HELLO (copied); NULL or empty =
                                      every queue, weight 1 each */
    bool strict;                   /* --strict: first non-empty queue in -Q order */
} supervisor_opts_t;

typedef struct supervisor supervisor_t;

/* Blocks SIGCHLD/SIGTERM/SIGINT, forks all children, THEN creates the
 * ZeroMQ context and socket (so no child is forked from a process that
 * already has ZeroMQ threads at start-up). opts' strings are copied.
 * Returns NULL and sets *err on failure. */
supervisor_t *supervisor_new(const supervisor_opts_t *opts, taskq_err_t *err);
/* Runs until shutdown. Returns the process exit code: 0 after a warm
 * shutdown, 1 after a cold one. */
int supervisor_run(supervisor_t *self);
/* Kills any child still alive, closes the socket and context, frees. */
void supervisor_destroy(supervisor_t **self_p);

#endif
