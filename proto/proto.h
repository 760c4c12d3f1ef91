/*
 * proto.h - the taskq wire protocol (TQP/1): one codec for broker, worker and
 * client. docs/protocol.md is the normative text; this header must agree with
 * it, and tests/unit/test_proto.c checks the vectors both quote.
 *
 * A message is 3 ZeroMQ frames (a ROUTER adds the peer identity in front):
 *   frame 0  signature, 7 bytes: "TASKQ01"   (protocol name + version 01)
 *   frame 1  type, 1 byte (proto_type_t)
 *   frame 2  body: one msgpack map with string keys (fields below)
 * Unknown keys in a body are ignored (forward compatibility); missing
 * required keys, wrong types and out-of-limit values are TASKQ_EPROTO /
 * TASKQ_ETOOBIG / TASKQ_ENAME.
 *
 * Client -> broker                      Broker -> client
 *   SUBMIT   req, tasks[]                 SUBMIT_ACK     req, codes[]
 *   STATUS   req, id                      STATUS_REPLY   req, task
 *   WAIT     req, ids[], timeout_ms       RESULT         req, code, task (one per id)
 *   WORKERS  req                          WORKERS_REPLY  req, nodes[]
 *   STATS    req                          STATS_REPLY    req, stats
 * Worker -> broker                      Broker -> worker
 *   HELLO    node, host, pid, slots,      WELCOME        broker, heartbeat_ms, liveness
 *            leases[]
 *   READY    credit                       TASK           id, attempt, name, args,
 *   PROGRESS id, attempt, current,                       time_limit_ms
 *            total, message
 *   DONE     id, attempt, ok, result|     DONE_ACK       id, attempt, code
 *            error, retry, child_pid,
 *            started_at
 *   HEARTBEAT children[], leases[]        HEARTBEAT      (empty body)
 *   BYE      (empty body)
 * Either direction: ERROR req, code, message  (req is 0 when not a reply)
 *
 * Decoded strings and binaries are borrowed: they point into the body buffer
 * passed to proto_decode() or into the message's zone, and live until
 * proto_msg_clear() or until that buffer is freed, whichever comes first.
 */
#ifndef TASKQ_PROTO_H
#define TASKQ_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tqlimits.h"
#include "taskq.h"

/* Protocol version: bump the last two digits on any incompatible change,
 * document the change in docs/protocol.md, and keep decoding the old
 * signature only if a migration says so. */
#define PROTO_SIGNATURE "TASKQ01"
#define PROTO_SIGNATURE_LEN 7

typedef enum {
    PROTO_SUBMIT = 0x01,
    PROTO_STATUS = 0x02,
    PROTO_WAIT = 0x03,
    PROTO_WORKERS = 0x04,
    PROTO_STATS = 0x05,
    PROTO_HELLO = 0x10,
    PROTO_READY = 0x11,
    PROTO_PROGRESS = 0x12,
    PROTO_DONE = 0x13,
    PROTO_HEARTBEAT = 0x14, /* both directions */
    PROTO_BYE = 0x15,
    PROTO_SUBMIT_ACK = 0x81,
    PROTO_STATUS_REPLY = 0x82,
    PROTO_RESULT = 0x83,
    PROTO_WORKERS_REPLY = 0x84,
    PROTO_STATS_REPLY = 0x85,
    PROTO_WELCOME = 0x90,
    PROTO_TASK = 0x91,
    PROTO_DONE_ACK = 0x93,
    PROTO_ERROR = 0xFF,
} proto_type_t;

/* "SUBMIT", "SUBMIT_ACK", ...; "UNKNOWN" otherwise. */
const char *proto_type_name(int type);

typedef struct {
    const char *ptr; /* NOT NUL-terminated */
    uint32_t len;
} proto_str_t;

typedef struct {
    const uint8_t *ptr;
    uint32_t len;
} proto_bin_t;

/* One task in a SUBMIT. */
typedef struct {
    taskq_id_t id;          /* "id": bin 16, must not be all-zero */
    proto_str_t name;       /* "name": str, TQ_NAME_MAX, name charset */
    proto_bin_t args;       /* "args": bin, TQ_ARGS_MAX, one valid msgpack value; optional (empty = []) */
    int64_t time_limit_ms;  /* "time_limit_ms": uint, optional, 0 = worker default */
    uint32_t max_attempts;  /* "max_attempts": uint 0..TQ_ATTEMPTS_MAX, optional, 0 = default */
} proto_task_spec_t;

/* A task record (STATUS_REPLY, RESULT). */
typedef struct {
    taskq_id_t id;            /* "id" */
    proto_str_t name;         /* "name" */
    int state;                /* "state": str, one of taskq_state_name() */
    uint32_t attempts;        /* "attempts" */
    uint32_t max_attempts;    /* "max_attempts" */
    proto_str_t worker;       /* "worker": str, "" if never dispatched */
    int32_t child_pid;        /* "child_pid" */
    int64_t submitted_at;     /* "submitted_at": unix ms */
    int64_t started_at;       /* "started_at": unix ms, 0 = never */
    int64_t finished_at;      /* "finished_at": unix ms, 0 = not terminal */
    uint64_t progress_current;/* "progress": [current, total, message] */
    uint64_t progress_total;
    proto_str_t progress_message;
    bool has_result;          /* "result": bin (msgpack value), present iff succeeded */
    proto_bin_t result;
    proto_str_t error;        /* "error": str, "" unless failed */
} proto_task_rec_t;

/* (task, attempt): a lease held by a worker node. Encoded [id, attempt]. */
typedef struct {
    taskq_id_t id;
    uint32_t attempt;
} proto_lease_t;

/* One child in a HEARTBEAT / WORKERS_REPLY. */
typedef struct {
    int32_t pid;             /* "pid" */
    proto_str_t state;       /* "state": "starting" | "idle" | "busy" | "stopping" */
    bool has_task;           /* "task_id": bin 16 or nil */
    taskq_id_t task_id;
    proto_str_t task_name;   /* "task_name": str, "" if idle */
    int64_t running_ms;      /* "running_ms" */
    uint64_t done;           /* "done" */
    uint64_t failed;         /* "failed" */
    uint64_t rss_kb;         /* "rss_kb" */
} proto_child_t;

/* One node in a WORKERS_REPLY. */
typedef struct {
    proto_str_t id;          /* "id" */
    proto_str_t host;        /* "host" */
    int32_t pid;             /* "pid" */
    uint32_t slots;          /* "slots" */
    int64_t last_heartbeat;  /* "last_heartbeat": unix ms */
    uint32_t nchildren;      /* "children": array of child maps */
    proto_child_t *children;
} proto_node_t;

typedef struct {
    uint64_t queued, running, succeeded, failed; /* "queued", ... */
    uint64_t total;          /* "total" */
    uint64_t submitted;      /* "submitted" */
    uint64_t nodes;          /* "nodes" */
    uint64_t children;       /* "children" */
    int64_t uptime_ms;       /* "uptime_ms" */
    proto_str_t broker;      /* "broker": broker id */
} proto_stats_t;

typedef struct {
    int type; /* proto_type_t */
    union {
        struct { uint64_t req; uint32_t ntasks; proto_task_spec_t *tasks; } submit;
        struct { uint64_t req; uint32_t ncodes; uint32_t *codes; } submit_ack;
        struct { uint64_t req; taskq_id_t id; } status;
        struct { uint64_t req; proto_task_rec_t task; } status_reply;
        struct { uint64_t req; uint32_t nids; taskq_id_t *ids; int64_t timeout_ms; } wait;
        /* code: TASKQ_OK with a terminal task, or TASKQ_ENOTFOUND with only task.id set */
        struct { uint64_t req; uint32_t code; proto_task_rec_t task; } result;
        struct { uint64_t req; } workers;
        struct { uint64_t req; uint32_t nnodes; proto_node_t *nodes; } workers_reply;
        struct { uint64_t req; } stats;
        struct { uint64_t req; proto_stats_t stats; } stats_reply;
        struct {
            proto_str_t node; proto_str_t host; int32_t pid; uint32_t slots;
            uint32_t nleases; proto_lease_t *leases;
        } hello;
        struct { proto_str_t broker; int64_t heartbeat_ms; uint32_t liveness; } welcome;
        struct { uint32_t credit; } ready;
        struct {
            taskq_id_t id; uint32_t attempt; proto_str_t name; proto_bin_t args;
            int64_t time_limit_ms;
        } task;
        struct {
            taskq_id_t id; uint32_t attempt; uint64_t current; uint64_t total;
            proto_str_t message;
        } progress;
        struct {
            taskq_id_t id; uint32_t attempt; bool ok;
            proto_bin_t result;  /* "result": bin when ok (may be empty = nil) */
            proto_str_t error;   /* "error": str when !ok */
            /* "retry": bool, only with !ok: the attempt was lost through no
             * fault of the task (its child process died); the broker requeues
             * it with the next attempt unless max_attempts is reached. */
            bool retry;
            int32_t child_pid; int64_t started_at;
        } done;
        struct { taskq_id_t id; uint32_t attempt; uint32_t code; } done_ack;
        struct {
            uint32_t nchildren; proto_child_t *children;
            uint32_t nleases; proto_lease_t *leases;
        } heartbeat;
        struct { uint64_t req; uint32_t code; proto_str_t message; } error;
    } u;
    /* private: memory for decoded arrays */
    msgpack_zone *zone;
} proto_msg_t;

/* Zeroes a message so it can be filled for encoding or passed to decode. */
void proto_msg_init(proto_msg_t *msg, int type);
/* Frees what decode allocated; the message is zeroed. Safe to call twice. */
void proto_msg_clear(proto_msg_t *msg);

/* Checks frame 0. TASKQ_OK, TASKQ_EVERSION ("TASKQ" with other digits) or
 * TASKQ_EPROTO (anything else). */
taskq_err_t proto_check_signature(const void *data, size_t len);

/* Bounded pre-check of a msgpack buffer: walks it without allocating and
 * fails (TASKQ_EPROTO / TASKQ_ETOOBIG) on truncation, a container whose
 * declared count exceeds the bytes left or TQ_MAX_ARRAY, depth past
 * max_depth, more than TQ_MAX_OBJECTS objects, or trailing bytes. Only
 * after it passes may msgpack-c unpack the buffer. */
taskq_err_t proto_precheck(const void *data, size_t len, int max_depth);

/* Decodes a body of the given type into *msg (which must be proto_msg_init'ed
 * or cleared). Runs proto_precheck first. On error *msg holds nothing to free
 * and, if detail is not NULL, *detail points to a human-readable
 * reason ("SUBMIT tasks[3].name: invalid character"), valid until the next
 * proto_decode on the same thread. Unknown type: TASKQ_EUNKNOWN. */
taskq_err_t proto_decode(int type, const void *body, size_t len, proto_msg_t *msg,
                         const char **detail);

/* Encodes msg's body into buf (appended; caller initialises and destroys
 * buf). TASKQ_EINVAL if a field breaks a limit. */
taskq_err_t proto_encode(const proto_msg_t *msg, msgpack_sbuffer *buf);

/* Sends one message on a ZeroMQ socket: [identity] + signature + type +
 * body. identity may be NULL (DEALER). Uses ZMQ_DONTWAIT when dontwait.
 * Returns TASKQ_OK, TASKQ_EBUSY (EAGAIN: high-water mark), TASKQ_EUNREACH
 * (EHOSTUNREACH: unknown peer on a ROUTER_MANDATORY socket), or TASKQ_ESYS. */
taskq_err_t proto_send(void *socket, const void *identity, size_t identity_len,
                       const proto_msg_t *msg, bool dontwait);

/* Sends an already encoded body as a message of the given type (what
 * proto_send does after encoding; the broker encodes replies before its
 * commit and sends them after). Same return values as proto_send. */
taskq_err_t proto_send_body(void *socket, const void *identity, size_t identity_len, int type,
                            const void *body, size_t body_len, bool dontwait);

/* A received message's raw frames. */
typedef struct {
    uint8_t identity[TQ_MAX_IDENTITY];
    size_t identity_len;     /* 0 on a DEALER */
    int type;                /* -1 if not parsed */
    void *body;              /* owned copy of frame 2 (malloc), or NULL */
    size_t body_len;
} proto_frames_t;

/* Receives one whole multipart message (all frames, even when malformed, so
 * the socket stays in step). with_identity: the socket is a ROUTER. On
 * success the frames are in *f (free with proto_frames_clear). Returns
 * TASKQ_OK, TASKQ_ETIMEDOUT (EAGAIN with dontwait), TASKQ_EPROTO /
 * TASKQ_EVERSION / TASKQ_ETOOBIG for a malformed envelope (f->identity is
 * still filled so the caller can answer with ERROR), or TASKQ_ESYS. */
taskq_err_t proto_recv(void *socket, bool with_identity, bool dontwait, proto_frames_t *f);
void proto_frames_clear(proto_frames_t *f);

/* Name checks: [A-Za-z0-9_.:-]{1,max}. */
bool proto_name_is_valid(const char *s, size_t len, size_t max);

/* Helpers for proto_str_t. */
static inline proto_str_t proto_str(const char *s)
{
    proto_str_t r = {s, 0};
    if (s)
        while (s[r.len])
            r.len++;
    return r;
}
/* Copies into dst (size dstsz, always NUL-terminated, truncated). */
void proto_str_copy(char *dst, size_t dstsz, proto_str_t s);
bool proto_str_eq(proto_str_t s, const char *cstr);

#endif
