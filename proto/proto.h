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
 *   SUBMIT   req, tasks[], groups[]       SUBMIT_ACK     req, codes[], queues[],
 *                                                         soft, holders[]
 *   STATUS   req, id                      STATUS_REPLY   req, task
 *   WAIT     req, ids[], timeout_ms       RESULT         req, code, task (one per id)
 *   WORKERS  req                          WORKERS_REPLY  req, nodes[]
 *   STATS    req                          STATS_REPLY    req, stats
 *   ADMIN    req, op, params              ADMIN_REPLY    req, data
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
 *   BYE      (empty body)                 CANCEL         id, attempt, terminate,
 *                                                        grace_ms
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
    PROTO_ADMIN = 0x06,
    PROTO_HELLO = 0x10,
    PROTO_READY = 0x11,
    PROTO_PROGRESS = 0x12,
    PROTO_DONE = 0x13,
    PROTO_HEARTBEAT = 0x14, /* both directions */
    PROTO_BYE = 0x15,
    PROTO_BATCH = 0x20, /* either direction: several messages in one (below) */
    PROTO_SUBMIT_ACK = 0x81,
    PROTO_STATUS_REPLY = 0x82,
    PROTO_RESULT = 0x83,
    PROTO_WORKERS_REPLY = 0x84,
    PROTO_STATS_REPLY = 0x85,
    PROTO_ADMIN_REPLY = 0x86,
    PROTO_WELCOME = 0x90,
    PROTO_TASK = 0x91,
    PROTO_DONE_ACK = 0x93,
    PROTO_CANCEL = 0x94,
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

/* A retry policy: fields of a task spec, of DONE's "policy" map, and of a
 * schedule; every one optional, zero = not given (the next level decides:
 * submit > registration > broker default). Wire keys as named. */
typedef struct {
    uint32_t max_attempts;   /* "max_attempts": uint 0..TQ_ATTEMPTS_MAX (only in DONE policy) */
    int64_t backoff_base_ms; /* "backoff_base_ms": uint <= TQ_BACKOFF_MS_MAX */
    double backoff_factor;   /* "backoff_factor": float or uint, 0 or 1..1000 */
    int64_t backoff_max_ms;  /* "backoff_max_ms": uint <= TQ_BACKOFF_MS_MAX */
    int32_t jitter;          /* "jitter": str "equal"|"full"|"none"; absent = -1 */
    proto_str_t retry_on;    /* "retry_on": str <= TQ_PATTERNS_MAX, "" = every code */
    proto_str_t no_retry_on; /* "no_retry_on": str <= TQ_PATTERNS_MAX */
} proto_retry_policy_t;
typedef enum { PROTO_JITTER_EQUAL = 0, PROTO_JITTER_FULL = 1, PROTO_JITTER_NONE = 2 } proto_jitter_t;

/* One task in a SUBMIT. */
typedef struct {
    taskq_id_t id;          /* "id": bin 16, must not be all-zero */
    proto_str_t name;       /* "name": str, TQ_NAME_MAX, name charset */
    proto_bin_t args;       /* "args": bin, TQ_ARGS_MAX, one valid msgpack value; optional (empty = []) */
    int64_t time_limit_ms;  /* "time_limit_ms": uint, optional, 0 = worker default */
    uint32_t max_attempts;  /* "max_attempts": uint 0..TQ_ATTEMPTS_MAX, optional, 0 = default */
    /* Dispatch policy; every field optional (absent = the zero value). */
    proto_str_t queue;      /* "queue": str, [a-z0-9_.-]{0,TQ_QUEUE_MAX}, "" = route */
    int32_t priority;       /* "priority": uint 0..TQ_PRIORITY_MAX; absent = -1 (default):
                               0 is a real priority, so fill specs from
                               proto_task_spec_init() (priority and jitter -1) */
    int64_t countdown_ms;   /* "countdown_ms": uint <= TQ_ETA_MAX_MS */
    int64_t eta_at;         /* "eta_at": uint, unix ms */
    int64_t expires_in_ms;  /* "expires_in_ms": uint <= TQ_ETA_MAX_MS */
    int64_t expires_at;     /* "expires_at": uint, unix ms */
    proto_retry_policy_t policy; /* "backoff_base_ms", "backoff_factor", ... (below) */
    /* Lifecycle (issue 7); every field optional. */
    bool has_parent;        /* "parent": bin 16, a task of the same SUBMIT */
    taskq_id_t parent;
    bool has_group;         /* "group": bin 16, one of this SUBMIT's "groups" */
    taskq_id_t group;
    uint32_t index;         /* "index": uint, position in the group (member order) */
    bool has_callback_of;   /* "callback_of": bin 16: this task is that group's chord callback */
    taskq_id_t callback_of;
    bool immutable;         /* "immutable": bool */
    proto_str_t unique_key; /* "unique_key": str, printable ASCII, <= TQ_UNIQUE_KEY_MAX */
    bool unique;            /* "unique": bool, key = hash(name, canonical args, queue) */
    int32_t unique_until;   /* "unique_until": "done" (0, default) | "start" (1) */
    int64_t unique_for_ms;  /* "unique_for_ms": uint <= TQ_TTL_MAX_MS */
    int64_t result_ttl_ms;  /* "result_ttl_ms": uint <= TQ_TTL_MAX_MS, 0 = default */
} proto_task_spec_t;

/* A group in a SUBMIT's "groups": {"id": bin16, "size": uint, "on_fail":
 * "fail" | "settle"}. Members name it in "group"; at most one task names
 * it in "callback_of" (a chord). */
typedef struct {
    taskq_id_t id;
    uint32_t size;
    int32_t on_fail; /* 0 fail, 1 settle */
} proto_group_t;

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
    proto_str_t queue;        /* "queue" */
    int32_t priority;         /* "priority"; absent (older broker) = TQ_DEFAULT_PRIORITY */
    uint32_t failures;        /* "failures" */
    proto_str_t code;         /* "code": failure code of the last failed attempt, "" */
    int64_t due_at;           /* "due_at": unix ms, 0 unless scheduled / retrying */
    int64_t expires_at;       /* "expires_at": unix ms, 0 = never */
    proto_str_t schedule;     /* "schedule": "" unless created by a schedule */
    taskq_id_t group_id;      /* "group_id": bin 16 or nil (zero) */
    taskq_id_t parent_id;     /* "parent_id": bin 16 or nil */
    taskq_id_t rerun_of;      /* "rerun_of": bin 16 or nil */
    taskq_id_t rerun_by;      /* "rerun_by": bin 16 or nil */
    proto_str_t unique_key;   /* "unique_key": str, "" if none */
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
    uint64_t purged;         /* "purged": records deleted by TTL or purge, ever */
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
        /* ntasks <= TQ_BATCH_MAX, or <= TQ_GRAPH_MAX when the SUBMIT has
         * "groups" or any task has a parent / group / callback_of */
        struct {
            uint64_t req; uint32_t ntasks; proto_task_spec_t *tasks;
            uint32_t ngroups; proto_group_t *groups; /* "groups", optional */
        } submit;
        /* ncodes <= TQ_GRAPH_MAX (one per task of the SUBMIT).
         * queues[i]: the queue task i went to (ncodes entries when
         * encoded by the broker; 0 entries accepted on decode from old
         * brokers); soft: some queue is past TQ_SOFT_WATERMARK_PCT. */
        struct {
            uint64_t req; uint32_t ncodes; uint32_t *codes;
            uint32_t nqueues; proto_str_t *queues; bool soft;
            /* "holders": [bin16 | nil] per task (optional): the live task
             * that holds a unique key; that task was not created. nholders
             * is 0 or ncodes; encoded only when some holder is non-zero
             * (so decode gives 0 entries when no task was a duplicate) */
            uint32_t nholders; taskq_id_t *holders; /* zero id = created */
        } submit_ack;
        struct { uint64_t req; taskq_id_t id; } status;
        struct { uint64_t req; proto_task_rec_t task; } status_reply;
        /* batch: "batch": bool, optional: the client takes its RESULTs
         * in BATCH messages */
        struct {
            uint64_t req; uint32_t nids; taskq_id_t *ids; int64_t timeout_ms; bool batch;
        } wait;
        /* code: TASKQ_OK with a terminal task, or TASKQ_ENOTFOUND with only task.id set */
        struct { uint64_t req; uint32_t code; proto_task_rec_t task; } result;
        struct { uint64_t req; } workers;
        struct { uint64_t req; uint32_t nnodes; proto_node_t *nodes; } workers_reply;
        struct { uint64_t req; } stats;
        struct { uint64_t req; proto_stats_t stats; } stats_reply;
        /* params: "params", one msgpack map (raw bytes; encode copies them
         * verbatim, empty = {}); decode also unpacks it into *params_obj
         * (a MSGPACK_OBJECT_MAP, in the message's zone) and sets params to
         * the map's raw bytes in the body (empty when the key is absent:
         * then *params_obj is an empty map). op: name charset, <= 64 bytes. */
        struct {
            uint64_t req; proto_str_t op; proto_bin_t params; const msgpack_object *params_obj;
        } admin;
        /* data: "data", one msgpack value (raw; empty = nil); decode also
         * unpacks it into *data_obj and sets data to its raw bytes in the
         * body (empty when absent: then *data_obj is nil). */
        struct { uint64_t req; proto_bin_t data; const msgpack_object *data_obj; } admin_reply;
        /* queues: "queues": [[name, weight], ...] (<= TQ_QUEUES_MAX,
         * weight 1..TQ_WEIGHT_MAX), absent/empty = every queue; "strict": bool */
        struct {
            proto_str_t node; proto_str_t host; int32_t pid; uint32_t slots;
            uint32_t nleases; proto_lease_t *leases;
            uint32_t nqueues; proto_str_t *queue_names; uint32_t *queue_weights;
            bool strict;
            bool batch; /* "batch": bool, optional: the node takes BATCH messages */
        } hello;
        /* batch: "batch": bool, optional: the broker takes BATCH messages */
        struct {
            proto_str_t broker; int64_t heartbeat_ms; uint32_t liveness; bool batch;
        } welcome;
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
            /* Only with !ok, all optional:
             * "code": str [A-Za-z0-9_.]{1,TQ_CODE_MAX}; absent = "taskq.crash"
             *   when retry, else "taskq.error" (decode fills that in; encode
             *   omits a code equal to it);
             * "permanent": bool, never retry;
             * "retry_delay_ms": uint, the next attempt's delay instead of the
             *   backoff (absent = -1);
             * "rate_limited_ms": uint > 0: not a failure; put back and run
             *   again after this long (absent = 0);
             * "policy": map, the registration's retry policy. */
            proto_str_t code;
            bool permanent;
            int64_t retry_delay_ms;
            int64_t rate_limited_ms;
            proto_retry_policy_t policy;
        } done;
        struct { taskq_id_t id; uint32_t attempt; uint32_t code; } done_ack;
        /* broker -> worker: the attempt was revoked; "terminate": kill its
         * child (SIGTERM, SIGKILL after "grace_ms"). All four keys are
         * required; grace_ms >= 0 (the broker sends the resolved grace) */
        struct { taskq_id_t id; uint32_t attempt; bool terminate; int64_t grace_ms; } cancel;
        struct {
            uint32_t nchildren; proto_child_t *children;
            uint32_t nleases; proto_lease_t *leases;
        } heartbeat;
        /* With code TASKQ_EBUSY, optional: "queue" (str, "" = broker-wide),
         * "depth", "limit" (uint), "retry_after_ms" (uint). Encoded only
         * with TASKQ_EBUSY, all four when any is non-zero; decoded whenever
         * present. */
        struct {
            uint64_t req; uint32_t code; proto_str_t message;
            proto_str_t queue; uint64_t depth, limit; int64_t retry_after_ms;
        } error;
    } u;
    /* private: memory for decoded arrays */
    msgpack_zone *zone;
} proto_msg_t;

/* Zeroes a message so it can be filled for encoding or passed to decode.
 * For PROTO_DONE it also sets the "absent" values whose zero would mean
 * something: retry_delay_ms = -1 and policy.jitter = -1. */
void proto_msg_init(proto_msg_t *msg, int type);
/* Zeroes a task spec with priority = -1 and policy.jitter = -1 (absent). */
void proto_task_spec_init(proto_task_spec_t *t);
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

/* ---- BATCH --------------------------------------------------------------
 * A BATCH body is a msgpack array of 1..TQ_BATCH_ITEMS_MAX items, each a
 * 2-array [type: uint, body: bin], the body being what a message of that
 * type carries alone. It saves a ZeroMQ message (and wake-ups) per item;
 * the items mean exactly what they mean alone, in order. A sender uses it
 * only towards a peer that said it takes it (HELLO / WELCOME / WAIT
 * "batch"). A BATCH never holds a BATCH. */
typedef struct {
    int type;
    const uint8_t *body; /* borrowed from the BATCH body */
    uint32_t len;
} proto_item_t;

typedef struct {
    const uint8_t *p;
    size_t len, pos;
    uint32_t left;
} proto_batch_iter_t;

/* Reads the array header: TASKQ_OK, or TASKQ_EPROTO / TASKQ_ETOOBIG (an
 * empty, oversized or malformed batch); no allocation, bounded. */
taskq_err_t proto_batch_open(proto_batch_iter_t *it, const void *body, size_t len);
/* The next item: TASKQ_OK; TASKQ_ENOTFOUND after the last (and the body had
 * no trailing bytes); TASKQ_EPROTO if malformed (stop there: items already
 * returned were well-formed). An item's body is checked by proto_decode. */
taskq_err_t proto_batch_next(proto_batch_iter_t *it, proto_item_t *item);

/* Builds a BATCH body in an empty buf while the item count is not known
 * yet: begin (an array32 header with count 0), add each item, then end
 * with the count (patched into the header). */
void proto_batch_begin(msgpack_sbuffer *buf);
void proto_batch_add(msgpack_sbuffer *buf, int type, const void *body, size_t len);
void proto_batch_end(msgpack_sbuffer *buf, uint32_t nitems);
/* The framing bytes proto_batch_add puts around a body (at most 8, whatever
 * its length): a sender checks that a batch stays under its size with it. */
size_t proto_batch_item_overhead(size_t len);

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
/* Queue names: [a-z0-9_.-]{1,TQ_QUEUE_MAX}. */
bool proto_queue_is_valid(const char *s, size_t len);
/* Failure codes: [A-Za-z0-9_.]{1,TQ_CODE_MAX}. */
bool proto_code_is_valid(const char *s, size_t len);

/* Bounded readers for ADMIN params / ADMIN_REPLY data maps (peer input):
 * the value under key in map (NULL if absent or map is not a map; the first
 * of repeated keys; non-string keys are skipped). The typed getters return
 * TASKQ_OK, TASKQ_ENOTFOUND (absent or nil; *out untouched), or
 * TASKQ_EPROTO (wrong type / out of range: a str or bin longer than max,
 * a uint above INT64_MAX for i64, a non-finite float). Strings are
 * borrowed. */
const msgpack_object *proto_obj_get(const msgpack_object *map, const char *key);
taskq_err_t proto_obj_str(const msgpack_object *map, const char *key, size_t max,
                          proto_str_t *out);
taskq_err_t proto_obj_u64(const msgpack_object *map, const char *key, uint64_t *out);
taskq_err_t proto_obj_i64(const msgpack_object *map, const char *key, int64_t *out);
taskq_err_t proto_obj_f64(const msgpack_object *map, const char *key, double *out); /* float or int */
taskq_err_t proto_obj_bool(const msgpack_object *map, const char *key, bool *out);
taskq_err_t proto_obj_bin(const msgpack_object *map, const char *key, size_t max,
                          proto_bin_t *out);
/* A task record as a msgpack map (the STATUS_REPLY "task" encoding), for
 * ADMIN replies that list tasks; and its bounded decoder (strings borrowed
 * from the object). pack returns TASKQ_OK, or TASKQ_EINVAL for a record
 * that breaks a limit (then it packs nil, so the caller's container stays
 * well-formed; logged), or TASKQ_ENOMEM. unpack reads a full record (the
 * keys a STATUS_REPLY requires) with the same checks and defaults as
 * proto_decode: TASKQ_OK, TASKQ_EPROTO / TASKQ_ETOOBIG / TASKQ_ENAME (then
 * *rec is zeroed), TASKQ_EINVAL for NULL arguments. */
taskq_err_t proto_pack_task_rec(msgpack_packer *pk, const proto_task_rec_t *rec);
taskq_err_t proto_unpack_task_rec(const msgpack_object *obj, proto_task_rec_t *rec);
/* Packs a proto_str_t as a msgpack str. */
void proto_pack_str(msgpack_packer *pk, proto_str_t s);
/* Packs a C string key followed by nothing (caller packs the value). */
void proto_pack_key(msgpack_packer *pk, const char *key);

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
