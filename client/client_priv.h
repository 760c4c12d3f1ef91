/*
 * client_priv.h - what the libtaskq files (client.c: handle, requests,
 * submit; client_task.c: task records, status, wait; client_info.c:
 * workers, stats; client_admin.c: ADMIN requests, reply readers, test
 * clock; client_attempt.c, client_queue.c, client_limit.c,
 * client_schedule.c: one ADMIN noun each; client_flow.c: workflows and
 * groups (flow.c: their pure planning); client_life.c: revoke, dead
 * letters, re-run, purge) share. Private: never installed, nothing here is
 * exported from libtaskq.
 */
#ifndef TASKQ_CLIENT_PRIV_H
#define TASKQ_CLIENT_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "flow.h"
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
    int64_t block_ms;   /* submit: retry a BUSY refusal this long (0 = fail fast) */
    taskq_busy_info_t last_busy;          /* the last BUSY answer */
    char last_error[TQ_MESSAGE_MAX + 1];  /* message of the last ERROR answer */
    /* a BATCH being handed out one item per client_recv */
    bool in_batch;
    proto_frames_t batch;
    proto_batch_iter_t batch_it;
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
/* Logs an ERROR answer (debug) and records its message (and, for EBUSY,
 * its details) on the handle; returns its code (client_wire_code). */
taskq_err_t client_on_error(taskq_client_t *self, const proto_msg_t *m);
/* One idempotent request with resend, within the handle's timeout; on
 * TASKQ_OK *in holds the reply of reply_type matching req. */
taskq_err_t client_request(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                           int reply_type, inmsg_t *in);
/* Same; resend = false sends the request once (after the connection is
 * up) and only waits: for requests that must not run twice. */
taskq_err_t client_request_ex(taskq_client_t *self, const proto_msg_t *msg, uint64_t req,
                              int reply_type, inmsg_t *in, bool resend);

/* ---- submit (client.c) -------------------------------------------------- */

/* A workflow's structure for a submit: nodes[i] describes specs[i] (specs
 * in submit order: every parent before its children), groups as in
 * flow.h. */
typedef struct {
    const flow_node_t *nodes;
    const flow_group_t *groups;
    size_t ngroups;
} client_graph_t;

/* The checks taskq_submit_batch applies to one spec (name, args, limits,
 * dispatch policy, unique key and TTLs): TASKQ_OK, EINVAL, ENAME, ETOOBIG. */
taskq_err_t client_spec_check(const taskq_task_spec_t *s);
/* taskq_submit_batch; with graph, all n specs go in ONE SUBMIT with the
 * groups (resent whole with the same ids and req until acknowledged). */
taskq_err_t client_submit_specs(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                                taskq_err_t *results, const client_graph_t *graph);

/* ---- records and waits (client_task.c) ---------------------------------- */

/* A decoded record as an owned taskq_task_t (one allocation). */
taskq_err_t client_task_from_rec(const proto_task_rec_t *r, taskq_task_t **out);
/* Called with an owned task; may take it (set *task = NULL). Nonzero stops. */
typedef int (*client_take_fn)(taskq_task_t **task, void *arg);
/* The WAIT loop: delivers each of ids[0..n) once as it becomes terminal;
 * stops after `stop_after` deliveries (0 = all), when fn returns nonzero,
 * at the deadline (TASKQ_ETIMEDOUT) or once every id is answered (unknown
 * or purged ids are not delivered: the call then returns TASKQ_ENOTFOUND /
 * TASKQ_EPURGED, unless it stopped early). */
taskq_err_t client_wait_core(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                             int64_t timeout_ms, size_t stop_after, client_take_fn fn, void *arg);

/* ---- ADMIN (client_admin.c) -------------------------------------------- */

/* Admin ops that change something and must not run twice on a resend
 * (schedule_add, schedule_rm, schedule_run_now, limit_rm, clock advance)
 * pass ADMIN_ONCE; reads and idempotent settings pass ADMIN_RESEND. */
enum { ADMIN_ONCE = 0, ADMIN_RESEND = 1 };

/* Sends ADMIN {op, params} (params: one packed msgpack map, NULL = {}) and
 * waits for ADMIN_REPLY. On TASKQ_OK *in holds the reply; its data is
 * in->msg.u.admin_reply.data_obj (may be NULL or nil). */
taskq_err_t client_admin(taskq_client_t *self, const char *op, const msgpack_sbuffer *params,
                         int resend, inmsg_t *in);

/* A packer over a fresh sbuffer for ADMIN params (msgpack_sbuffer_destroy
 * it). */
void client_params_init(msgpack_sbuffer *sb, msgpack_packer *pk);
/* Packs "key": value pairs (the caller packs the map header first). */
void client_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void client_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val);
void client_pack_kv_bool(msgpack_packer *pk, const char *key, bool val);
void client_pack_kv_f64(msgpack_packer *pk, const char *key, double val);
void client_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t len);

/* Bounded string storage for a list copied out of a reply: every string
 * of a reply is in its body, so body_len + one NUL per string is enough. */
typedef struct {
    char *base;
    size_t cap, used;
} strpool_t;
taskq_err_t strpool_init(strpool_t *sp, size_t cap);
/* A NUL-terminated copy in the pool; "" for an empty string; NULL if the
 * pool is full (the reply lied about its sizes: treat as TASKQ_EPROTO). */
const char *strpool_put(strpool_t *sp, const void *p, size_t len);

/* The array under key in a reply's data map, each element checked to be
 * a map; TASKQ_EPROTO if data is not a map, the key is missing or not an
 * array of maps, or has more than max elements. */
taskq_err_t client_data_array(const msgpack_object *data, const char *key, size_t max,
                              const msgpack_object **items, uint32_t *n);
/* Optional typed readers: absent leaves *out at its default and is OK;
 * present with the wrong type or range is TASKQ_EPROTO. Strings are
 * copied into sp (max bytes) and nil is accepted as "". */
taskq_err_t client_get_str(const msgpack_object *map, const char *key, size_t max, strpool_t *sp,
                           const char **out);
taskq_err_t client_get_u64(const msgpack_object *map, const char *key, uint64_t *out);
taskq_err_t client_get_u32(const msgpack_object *map, const char *key, uint32_t *out);
taskq_err_t client_get_i64(const msgpack_object *map, const char *key, int64_t *out);
taskq_err_t client_get_f64(const msgpack_object *map, const char *key, double *out);
taskq_err_t client_get_bool(const msgpack_object *map, const char *key, int *out);
/* A 16-byte id (bin 16) or nil / absent (zero id). */
taskq_err_t client_get_id(const msgpack_object *map, const char *key, taskq_id_t *out);
/* Packs "key": [bin16, ...] of ids[0..n). */
void client_pack_kv_ids(msgpack_packer *pk, const char *key, const taskq_id_t *ids, size_t n);
/* The array of ids (bin 16 each) under key in data into *ids (malloc'd,
 * caller frees; NULL when empty) and *n; at most max. TASKQ_EPROTO if it is
 * missing or malformed. */
taskq_err_t client_get_ids(const msgpack_object *data, const char *key, size_t max,
                           taskq_id_t **ids, size_t *n);

#endif
