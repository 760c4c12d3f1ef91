/*
 * chan.h - supervisor <-> child framing over one end of a
 * socketpair(AF_UNIX, SOCK_STREAM): a 4-byte big-endian length, then a
 * msgpack body of at most TQ_MAX_BODY bytes. A longer declared length, a
 * malformed body or EOF mean the channel is broken (the caller treats the
 * child as lost). Every frame but READY/STOP carries (id, attempt) so that a
 * child could one day run several tasks at once.
 *
 *   READY    [5, pid]                         child started, tasks loaded
 *   TASK     [1, id, attempt, name, args, time_limit_ms]
 *   POLICY   [6, id, attempt, max_attempts, backoff_base_ms, backoff_factor,
 *             backoff_max_ms, jitter, retry_on, no_retry_on]
 *                                             the task's registration policy,
 *                                             sent before it runs (only when
 *                                             it has one): the supervisor
 *                                             adds it to any failed DONE,
 *                                             also a crash or a time limit
 *   PROGRESS [2, id, attempt, current, total, message]
 *   DONE     [3, id, attempt, true, result(bin)]
 *            [3, id, attempt, false, error(str), code(str), permanent(bool),
 *             retry_delay_ms(int, -1 = none), rate_limited_ms(uint, 0 = no)]
 *   STOP     [4]                              poison pill: child exits 0
 *   CANCEL   [7, id, attempt]                 the broker revoked that attempt:
 *                                             taskq_cancelled() turns 1 if it
 *                                             is the one running (the child
 *                                             reads it only from there, or
 *                                             skips it as stale when idle)
 *   RETIRE   [8]                              start nothing more: a revoke
 *                                             with terminate retires this
 *                                             child; the tasks queued in it
 *                                             are handed back unstarted
 *   RETIRED  [9]                              child's answer, then it exits 0:
 *                                             it started no task after its
 *                                             last DONE
 *
 * Parent side: non-blocking fd, chan_read() buffers what is there and
 * chan_next() yields whole frames; chan_send() queues and writes what it
 * can, chan_queue() only queues, and chan_flush() writes (once per loop
 * turn, and when poll says POLLOUT). Child side: blocking fd, chan_recv() waits
 * for a whole frame and chan_send() writes it all. The chan owns its fd.
 * Decoded strings and binaries borrow from the chan's read buffer and live
 * until the next chan_read/chan_next/chan_recv call.
 */
#ifndef TASKQ_CHAN_H
#define TASKQ_CHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "tqlimits.h"
#include "taskq.h"

typedef enum {
    CHAN_TASK = 1,
    CHAN_PROGRESS = 2,
    CHAN_DONE = 3,
    CHAN_STOP = 4,
    CHAN_READY = 5,
    CHAN_POLICY = 6,
    CHAN_CANCEL = 7,
    CHAN_RETIRE = 8,
    CHAN_RETIRED = 9,
} chan_kind_t;

typedef struct {
    int kind;               /* chan_kind_t */
    taskq_id_t id;
    uint32_t attempt;
    int32_t pid;            /* READY */
    const char *name;       /* TASK: borrowed, NOT NUL-terminated */
    uint32_t name_len;
    const void *data;       /* TASK args / DONE result (ok) or error (!ok) */
    uint32_t data_len;
    int64_t time_limit_ms;  /* TASK */
    uint64_t current, total;/* PROGRESS */
    const char *message;    /* PROGRESS: borrowed, NOT NUL-terminated */
    uint32_t message_len;
    bool ok;                /* DONE */
    /* DONE with !ok (zero = "taskq.error", not permanent, backoff): */
    const char *code;       /* borrowed, NOT NUL-terminated; [A-Za-z0-9_.]{0,TQ_CODE_MAX} */
    uint32_t code_len;
    bool permanent;
    bool has_retry_delay;   /* retry_delay_ms given (taskq_retry) */
    int64_t retry_delay_ms; /* 0..TQ_BACKOFF_MS_MAX */
    int64_t rate_limited_ms;/* 0 = not rate limited, else 1..TQ_BACKOFF_MS_MAX */
    /* POLICY: strings borrowed, NOT NUL-terminated; jitter -1 = absent */
    proto_retry_policy_t policy;
} chan_frame_t;

typedef struct chan chan_t;

/* Takes ownership of fd. blocking selects the child-side behaviour. */
chan_t *chan_new(int fd, bool blocking);
/* Closes the fd and frees; accepts NULL; sets *self_p = NULL. */
void chan_destroy(chan_t **self_p);
int chan_fd(const chan_t *self);

/* Encodes f and sends (blocking) or queues it (non-blocking). TASKQ_EINVAL
 * if a field breaks a limit, TASKQ_ECLOSED if the peer is gone, TASKQ_ESYS. */
taskq_err_t chan_send(chan_t *self, const chan_frame_t *f);
/* Non-blocking only: encodes f and appends it to the queued bytes without
 * writing (the caller flushes once per loop turn: several frames, one
 * send, one wake-up of the peer). TASKQ_EINVAL as chan_send. */
taskq_err_t chan_queue(chan_t *self, const chan_frame_t *f);
/* Non-blocking: bytes still queued for the peer (poll for POLLOUT). */
bool chan_has_output(const chan_t *self);
/* Writes queued bytes until EAGAIN. TASKQ_ECLOSED / TASKQ_ESYS if broken. */
taskq_err_t chan_flush(chan_t *self);

/* Non-blocking: reads what the fd has. TASKQ_OK (maybe nothing),
 * TASKQ_ECLOSED at EOF (complete frames already read stay available to
 * chan_next), TASKQ_ESYS on a read error. */
taskq_err_t chan_read(chan_t *self);
/* Non-blocking: the next complete frame, if any (*got). TASKQ_ETOOBIG for an
 * oversize length, TASKQ_EPROTO for a malformed body: the channel is broken. */
taskq_err_t chan_next(chan_t *self, chan_frame_t *f, bool *got);
/* Either side: one read of what is there without waiting (recv with
 * MSG_DONTWAIT). TASKQ_OK (maybe nothing), TASKQ_ECLOSED, TASKQ_ESYS. */
taskq_err_t chan_read_nowait(chan_t *self);
/* Blocking: waits for one frame. TASKQ_ECLOSED at EOF, else as chan_next. */
taskq_err_t chan_recv(chan_t *self, chan_frame_t *f);

#endif
