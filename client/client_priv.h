/*
 * client_priv.h - what the libtaskq files (client.c: handle, requests,
 * submit; client_task.c: task records, status, wait; client_info.c:
 * workers, stats) share. Private: never installed, nothing here is
 * exported from libtaskq.
 */
#ifndef TASKQ_CLIENT_PRIV_H
#define TASKQ_CLIENT_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto.h"
#include "taskq.h"

#define RESEND_FIRST_MS 1000   /* first resend of an unanswered request */
#define WAIT_SILENCE_MS 2000   /* re-register WAITs after this much silence */
#define RETRY_SEND_MS 10       /* no connected peer yet (ZMQ_IMMEDIATE) */

struct taskq_client {
    void *zctx;
    void *sock;
    char *brokers;      /* owned copy of the list; entries split by NULs */
    size_t nbrokers;
    const char *endpoint; /* first entry of brokers */
    pid_t pid;          /* creator; another pid means we are a forked child */
    uint64_t next_req;
    int64_t timeout_ms;
    bool heard_ever;    /* any message from a broker on this handle */
    int64_t heard_at;   /* mono ms of the last message received, 0 = never */
};

/* A received message: msg borrows strings from f.body. */
typedef struct {
    proto_frames_t f;
    proto_msg_t msg;
} inmsg_t;

/* Frees a received message (frames and decoded arrays). */
void client_inmsg_clear(inmsg_t *in);
/* TASKQ_OK, TASKQ_EINVAL (NULL), TASKQ_ECLOSED (used after fork()). */
taskq_err_t client_check_handle(const taskq_client_t *self);
/* Encodes msg into a malloc'd body (caller frees). */
taskq_err_t client_encode(const proto_msg_t *msg, void **body, size_t *len);
/* Sends signature + type + body without blocking; TASKQ_EBUSY when no
 * broker connection is up yet (retry shortly). */
taskq_err_t client_send_raw(taskq_client_t *self, int type, const void *body, size_t len);
/* Waits up to wait_ms for one decoded message (TASKQ_OK: *in filled,
 * client_inmsg_clear it); TASKQ_ETIMEDOUT: none; TASKQ_EPROTO: a malformed
 * one was dropped. Any arrival marks the broker as heard. */
taskq_err_t client_recv(taskq_client_t *self, int64_t wait_ms, inmsg_t *in);
/* The req a broker message answers; 0 if none. */
uint64_t client_reply_req(const proto_msg_t *m);
/* An ERROR code from the wire: a known nonzero code, else TASKQ_EPROTO. */
taskq_err_t client_wire_code(uint32_t code);
void client_log_error(const proto_msg_t *m);
/* One idempotent request with resend, within the handle's timeout; on
 * TASKQ_OK *in holds the reply of reply_type matching req. */
taskq_err_t client_request(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                           int reply_type, inmsg_t *in);

#endif
