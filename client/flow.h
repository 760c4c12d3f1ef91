/*
 * flow.h - the pure parts of workflow submission (no I/O, no clock), so
 * tests/unit/test_flow.c covers them without a broker:
 *  - flow_plan: checks a graph of nodes (a parent each, group membership,
 *    chord callbacks) and computes the order in which its tasks go into the
 *    one SUBMIT (every parent, and every member of a group, before the
 *    nodes that wait for them: the broker requires parents first);
 *  - flow_map_args: splits a msgpack array of items into the args of the
 *    members of a map ([[item, ...]] per chunk), copying each item's bytes
 *    verbatim.
 * Private to libtaskq (never installed).
 */
#ifndef TASKQ_FLOW_H
#define TASKQ_FLOW_H

#include <stddef.h>
#include <stdint.h>

#include "taskq.h"

/* A node's place in the graph. */
typedef struct {
    int32_t parent;       /* node index it waits for, -1 = none */
    int32_t group;        /* group it is a member of, -1 = none */
    uint32_t index;       /* its position among the group's members */
    int32_t callback_of;  /* group whose chord callback it is, -1 = none */
} flow_node_t;

/* A group: its members are the nodes naming it in .group. */
typedef struct {
    taskq_id_t id;
    uint32_t size;        /* number of members */
    int32_t on_fail;      /* 0 "fail", 1 "settle" */
    int32_t callback;     /* node index of the chord callback, -1 = none */
} flow_group_t;

/* Checks the graph and writes a submit order into order[0..n) (a
 * permutation of the node indexes, as close to index order as the
 * dependencies allow). TASKQ_EINVAL with *why (static text) if: an index
 * is out of range; a node is its own parent; a group's size differs from
 * its members, or member indexes are not 0..size-1 once each; a group's
 * callback and the node's callback_of disagree; a node is both a member
 * and a callback (the broker keeps one group per task); the dependencies
 * have a cycle (through parents and chord callbacks). TASKQ_ETOOBIG past
 * TQ_GRAPH_MAX nodes or TQ_GROUPS_MAX groups. TASKQ_ENOMEM. */
taskq_err_t flow_plan(const flow_node_t *nodes, size_t n, const flow_group_t *groups, size_t ng,
                      size_t *order, const char **why);

/* The on_fail word ("fail", "settle"; NULL or "" = "fail") -> 0 / 1, or -1. */
int flow_on_fail(const char *word);

/* Splits the msgpack array `items` into chunks of `chunk` items (0 = 1).
 * *buf (malloc'd) holds the args of every chunk back to back, chunk k at
 * [off[k], off[k+1]), each the msgpack value [[item, ...]]; *off
 * (malloc'd) has *nchunks + 1 entries. An empty array gives 0 chunks.
 * TASKQ_EINVAL if items is not one msgpack array; TASKQ_ETOOBIG if a
 * chunk's args exceed TQ_ARGS_MAX or there are more than TQ_GRAPH_MAX - 1
 * chunks; TASKQ_ENOMEM. On error nothing is allocated. */
taskq_err_t flow_map_args(const void *items, size_t len, size_t chunk, uint8_t **buf,
                          size_t **off, size_t *nchunks);

#endif
