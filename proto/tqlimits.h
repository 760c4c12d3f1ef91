/*
 * tqlimits.h - every size, depth and count limit of the protocol and the
 * processes, in one place. docs/protocol.md ("Limits") cites these names;
 * change both together.
 */
#ifndef TASKQ_LIMITS_H
#define TASKQ_LIMITS_H

/* Frames */
#define TQ_MAX_FRAMES 8                  /* frames in one message incl. identity */
#define TQ_MAX_IDENTITY 255              /* ZeroMQ routing id */
#define TQ_MAX_BODY (20u * 1024 * 1024)  /* msgpack body frame, bytes (a TASK may carry
                                            a chord callback's results) */

/* msgpack pre-check (applied before msgpack-c allocates anything) */
#define TQ_MAX_DEPTH 16                  /* nesting of arrays/maps, incl. args */
#define TQ_MAX_OBJECTS 1000000           /* total objects in one body */
#define TQ_MAX_ARRAY 100000              /* elements in one array / pairs in one map */

/* Fields */
#define TQ_NAME_MAX 128                  /* task name, [A-Za-z0-9_.:-] */
#define TQ_NODE_MAX 128                  /* worker node id, same charset as names */
#define TQ_HOST_MAX 255                  /* host name, printable ASCII */
#define TQ_ARGS_MAX (1u * 1024 * 1024)   /* args bytes of one submitted task */
#define TQ_TASK_ARGS_MAX (17u * 1024 * 1024) /* args of a TASK: a chord callback's or a chain
                                            child's args grow by their parents' results */
#define TQ_RESULT_MAX (1u * 1024 * 1024) /* result bytes of one task */
#define TQ_ERROR_MAX 1024                /* error message bytes */
#define TQ_PROGRESS_MSG_MAX 256          /* progress message bytes */
#define TQ_MESSAGE_MAX 1024              /* ERROR reply message bytes */
#define TQ_BATCH_MAX 1000                /* tasks in one SUBMIT */
#define TQ_BATCH_ITEMS_MAX 4096          /* messages in one BATCH */
#define TQ_BATCH_BYTES (1u * 1024 * 1024) /* a sender closes a BATCH past this size */
#define TQ_WAIT_MAX 10000                /* ids in one WAIT */
#define TQ_SLOTS_MAX 1024                /* children of one worker node */
#define TQ_LEASES_MAX 1024               /* leases listed in HELLO / HEARTBEAT */
#define TQ_CREDIT_MAX 100000             /* credit one worker may hold */
#define TQ_ATTEMPTS_MAX 100              /* max_attempts accepted from a client */
#define TQ_STATE_MAX 16                  /* child state string */
/* Dispatch policy (docs/tasks.md) */
#define TQ_QUEUE_MAX 64                  /* queue name, [a-z0-9_.-] */
#define TQ_QUEUES_MAX 64                 /* queues one worker subscribes to (-Q) */
#define TQ_WEIGHT_MAX 1000               /* weight of one subscribed queue */
#define TQ_PRIORITY_MAX 9                /* priorities 0..9, 9 runs first */
#define TQ_CODE_MAX 64                   /* failure code, [A-Za-z0-9_.] */
#define TQ_PATTERNS_MAX 512              /* retry_on / no_retry_on list, bytes */
#define TQ_LIMIT_KEY_MAX 140             /* "task:NAME" or "queue:Q" */
#define TQ_SCHED_NAME_MAX 128            /* schedule name, name charset */
#define TQ_CRON_MAX 256                  /* cron expression bytes */
#define TQ_TZ_MAX 64                     /* IANA zone name, e.g. Europe/Paris */
#define TQ_BACKOFF_MS_MAX (30LL * 24 * 3600 * 1000) /* longest backoff / delay */
#define TQ_ETA_MAX_MS (10LL * 366 * 24 * 3600 * 1000) /* furthest ETA ahead */
/* Task lifecycle (docs/tasks.md, "Workflows", "Revoke", "Unique tasks") */
#define TQ_GRAPH_MAX 20000               /* tasks in one workflow SUBMIT (with groups/parents) */
#define TQ_GROUPS_MAX 1000               /* groups in one SUBMIT */
#define TQ_UNIQUE_KEY_MAX 200            /* unique key bytes, printable ASCII */
#define TQ_REASON_MAX 256                /* revoke reason bytes */
#define TQ_REVOKE_MAX 10000              /* ids in one revoke */
#define TQ_LIST_MAX 1000                 /* rows in one failed-task listing */
#define TQ_CHORD_RESULTS_MAX (16u * 1024 * 1024) /* callback's results, bytes */
#define TQ_TTL_MAX_MS (3660LL * 24 * 3600 * 1000) /* longest result / failed TTL */

/* Defaults */
#define TQ_DEFAULT_MAX_ATTEMPTS 3
#define TQ_DEFAULT_PRIORITY 5
#define TQ_DEFAULT_QUEUE "default"
#define TQ_DEFAULT_BACKOFF_BASE_MS 2000
#define TQ_DEFAULT_BACKOFF_FACTOR 2.0
#define TQ_DEFAULT_BACKOFF_MAX_MS (600LL * 1000)
#define TQ_SOFT_WATERMARK_PCT 80         /* ack says "slow down" past this % of max_pending */
#define TQ_BUSY_RETRY_AFTER_MS 250       /* retry-after in a BUSY answer */
#define TQ_DEFAULT_HEARTBEAT_MS 1000
#define TQ_DEFAULT_LIVENESS 3            /* missed heartbeats before a node is dead */
#define TQ_DEFAULT_LEASE_MS 10000        /* a lease not renewed for this long expires */
#define TQ_DEFAULT_RETENTION_MS (24LL * 3600 * 1000) /* result TTL: succeeded, revoked, expired */
#define TQ_DEFAULT_FAILED_TTL_MS (7LL * 24 * 3600 * 1000) /* failed (the dead-letter set) */
#define TQ_DEFAULT_REVOKE_GRACE_MS 5000  /* --terminate: SIGTERM, SIGKILL after this */
#define TQ_DEFAULT_WAIT_MAX_MS (3600LL * 1000) /* longest a broker keeps a waiter */

#endif
