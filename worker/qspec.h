/*
 * qspec.h - the worker's queue subscription (-Q critical=6,default=3,low=1):
 * an ordered list of (queue, weight) sent in HELLO. The broker picks among
 * the listed queues by smooth weighted round-robin, or takes the first
 * non-empty one in this order with --strict. An empty list means every
 * queue, weight 1 each. Pure: no I/O.
 */
#ifndef TASKQ_QSPEC_H
#define TASKQ_QSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "taskq.h"
#include "tqlimits.h"

typedef struct {
    size_t n;                                   /* 0..TQ_QUEUES_MAX */
    char names[TQ_QUEUES_MAX][TQ_QUEUE_MAX + 1];
    uint32_t weights[TQ_QUEUES_MAX];            /* 1..TQ_WEIGHT_MAX */
} qspec_t;

/* Appends the comma-separated entries of spec ("NAME[=WEIGHT],...": NAME
 * [a-z0-9_.-]{1,TQ_QUEUE_MAX}, WEIGHT 1..TQ_WEIGHT_MAX, default 1) to q, so
 * -Q may be repeated. TASKQ_EINVAL with a one-line reason in err (q is then
 * unchanged) for bad syntax, a bad name or weight, a queue listed twice or
 * more than TQ_QUEUES_MAX queues. */
taskq_err_t qspec_parse(qspec_t *q, const char *spec, char *err, size_t errsz);

#endif
