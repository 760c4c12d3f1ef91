/*
 * registry.h - the worker nodes the broker knows: keyed by ZeroMQ routing
 * identity and by node id. A node id is stable across reconnects while the
 * routing identity is not: a HELLO under a known node id replaces the old
 * session. Holds credit, liveness times and the children status copied out of
 * the latest HEARTBEAT. No I/O, no clock (times are passed in).
 * Ownership: the registry owns its nodes; registry_node_t pointers are
 * borrowed until registry_remove() or registry_destroy().
 */
#ifndef TASKQ_REGISTRY_H
#define TASKQ_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

typedef struct {
    int32_t pid;
    char state[TQ_STATE_MAX + 1];
    bool has_task;
    taskq_id_t task_id;
    char task_name[TQ_NAME_MAX + 1];
    int64_t running_ms;
    uint64_t done, failed, rss_kb;
} registry_child_t;

typedef struct {
    char id[TQ_NODE_MAX + 1];
    char host[TQ_HOST_MAX + 1];
    uint8_t identity[TQ_MAX_IDENTITY];
    size_t identity_len;
    int32_t pid;
    uint32_t slots;
    uint32_t credit;          /* TASKs we may still send; <= TQ_CREDIT_MAX */
    int64_t last_seen_ms;     /* monotonic: any message */
    int64_t last_heartbeat_at;/* unix ms: last HEARTBEAT (or HELLO) */
    bool stopping;            /* sent BYE: no more dispatch */
    bool batch;               /* HELLO "batch": takes BATCH messages */
    uint32_t nchildren;
    registry_child_t *children;
    /* Subscription from HELLO (worker -Q): nqueues == 0 means every queue. */
    uint32_t nqueues;
    char queues[TQ_QUEUES_MAX][TQ_QUEUE_MAX + 1];
    uint32_t weights[TQ_QUEUES_MAX];
    int64_t cw[TQ_QUEUES_MAX]; /* smooth weighted round-robin state */
    bool strict;               /* --strict: first non-empty queue in -Q order */
    size_t all_rr;             /* every-queue mode: where the next round starts */
} registry_node_t;

typedef struct registry registry_t;

registry_t *registry_new(void);
void registry_destroy(registry_t **self_p);

/* Registers a session (HELLO). If node_id is known, its old session is
 * replaced (new identity, credit 0, stopping cleared) and *existed is set;
 * an identity that belonged to another node id is detached from it first
 * (that node is removed). Returns the node (borrowed). */
registry_node_t *registry_hello(registry_t *self, const void *identity, size_t identity_len,
                                const char *node_id, bool *existed);
registry_node_t *registry_find_identity(const registry_t *self, const void *identity,
                                        size_t len);
registry_node_t *registry_find_node(const registry_t *self, const char *node_id);
/* Forgets the node; *node_p is freed and set to NULL. */
void registry_remove(registry_t *self, registry_node_t **node_p);
/* Adds credit, capped at TQ_CREDIT_MAX. */
void registry_add_credit(registry_node_t *node, uint32_t credit);
/* Sets the node's subscription (names[i] with weights[i]; n == 0 = every
 * queue) and resets the round-robin state. */
void registry_set_queues(registry_node_t *node, const proto_str_t *names,
                         const uint32_t *weights, uint32_t n, bool strict);
/* Whether the node takes tasks of queue (subscribed, or every queue). */
bool registry_node_serves(const registry_node_t *node, const char *queue);
/* Replaces the node's children with copies of children[0..n). */
void registry_set_children(registry_node_t *node, const proto_child_t *children, uint32_t n);

/* Iteration: *cursor = 0 first; NULL at the end. Removing the returned node
 * during iteration is allowed. */
registry_node_t *registry_next(const registry_t *self, size_t *cursor);
size_t registry_count(const registry_t *self);
/* Sum of nchildren over all nodes. */
uint64_t registry_children_total(const registry_t *self);

#endif
