/*
 * test_proto.c - the wire codec: round trips of every message, the test
 * vectors quoted in docs/protocol.md, hostile input, ids and error names.
 * Also exercises proto_send/proto_recv over an inproc socket pair.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "proto.h"

static const taskq_id_t ID1 = {{0x01, 0x93, 0x8a, 0x6e, 0x7b, 0x2c, 0x7d, 0x00, 0x80, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x01}};
static const taskq_id_t ID2 = {{0x01, 0x93, 0x8a, 0x6e, 0x7b, 0x2c, 0x7d, 0x00, 0x80, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x02}};
static const uint8_t ARGS[] = {0x92, 0x01, 0xa1, 'x'}; /* [1, "x"] */

static void assert_str(proto_str_t s, const char *want)
{
    if (!proto_str_eq(s, want)) {
        char buf[512];
        proto_str_copy(buf, sizeof buf, s);
        fail_msg("got \"%s\", want \"%s\"", buf, want);
    }
}

static void assert_id(const taskq_id_t *a, const taskq_id_t *b)
{
    assert_memory_equal(a->b, b->b, 16);
}

/* Encodes msg, decodes it into *out and re-encodes *out: the bytes must be
 * equal. The caller clears *out and frees *sb. */
static void round_trip(const proto_msg_t *msg, proto_msg_t *out, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    assert_int_equal(proto_encode(msg, sb), TASKQ_OK);
    proto_msg_init(out, 0);
    const char *detail = NULL;
    taskq_err_t e = proto_decode(msg->type, sb->data, sb->size, out, &detail);
    if (e)
        fail_msg("decode %s: %s (%s)", proto_type_name(msg->type), taskq_err_name(e),
                 detail ? detail : "");
    assert_int_equal(out->type, msg->type);
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    assert_int_equal(proto_encode(out, &again), TASKQ_OK);
    assert_int_equal(again.size, sb->size);
    assert_memory_equal(again.data, sb->data, sb->size);
    msgpack_sbuffer_destroy(&again);
}

static void test_round_trip_submit(void **state)
{
    (void)state;
    proto_task_spec_t t[2] = {
        {.id = ID1, .name = proto_str("taskq.echo"), .args = {ARGS, sizeof ARGS},
         .time_limit_ms = 5000, .max_attempts = 7},
        {.id = ID2, .name = proto_str("a:b-c_d")},
    };
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = 0x1122334455667788ULL;
    m.u.submit.ntasks = 2;
    m.u.submit.tasks = t;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit.req, 0x1122334455667788ULL);
    assert_int_equal(d.u.submit.ntasks, 2);
    assert_id(&d.u.submit.tasks[0].id, &ID1);
    assert_str(d.u.submit.tasks[0].name, "taskq.echo");
    assert_int_equal(d.u.submit.tasks[0].args.len, sizeof ARGS);
    assert_memory_equal(d.u.submit.tasks[0].args.ptr, ARGS, sizeof ARGS);
    assert_int_equal(d.u.submit.tasks[0].time_limit_ms, 5000);
    assert_int_equal(d.u.submit.tasks[0].max_attempts, 7);
    assert_id(&d.u.submit.tasks[1].id, &ID2);
    assert_str(d.u.submit.tasks[1].name, "a:b-c_d");
    assert_int_equal(d.u.submit.tasks[1].args.len, 0);
    assert_int_equal(d.u.submit.tasks[1].time_limit_ms, 0);
    assert_int_equal(d.u.submit.tasks[1].max_attempts, 0);
    /* zero copy: decoded strings point into the encoded buffer */
    assert_true(d.u.submit.tasks[0].name.ptr >= sb.data &&
                d.u.submit.tasks[0].name.ptr < sb.data + sb.size);
    proto_msg_clear(&d);
    proto_msg_clear(&d); /* safe twice */
    msgpack_sbuffer_destroy(&sb);
}

static void test_round_trip_small(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    uint32_t codes[3] = {0, TASKQ_ESTORE, 0xffffffffu};

    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.req = 9;
    m.u.submit_ack.ncodes = 3;
    m.u.submit_ack.codes = codes;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit_ack.req, 9);
    assert_int_equal(d.u.submit_ack.ncodes, 3);
    assert_memory_equal(d.u.submit_ack.codes, codes, sizeof codes);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_STATUS);
    m.u.status.req = 3;
    m.u.status.id = ID2;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.status.req, 3);
    assert_id(&d.u.status.id, &ID2);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    taskq_id_t ids[2] = {ID1, ID2};
    proto_msg_init(&m, PROTO_WAIT);
    m.u.wait.req = 4;
    m.u.wait.nids = 2;
    m.u.wait.ids = ids;
    m.u.wait.timeout_ms = 3600000;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.wait.req, 4);
    assert_int_equal(d.u.wait.nids, 2);
    assert_id(&d.u.wait.ids[0], &ID1);
    assert_id(&d.u.wait.ids[1], &ID2);
    assert_int_equal(d.u.wait.timeout_ms, 3600000);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_WORKERS);
    m.u.workers.req = 5;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.workers.req, 5);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_STATS);
    m.u.stats.req = 6;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.stats.req, 6);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_READY);
    m.u.ready.credit = TQ_CREDIT_MAX;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.ready.credit, TQ_CREDIT_MAX);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_WELCOME);
    m.u.welcome.broker = proto_str("broker-1");
    m.u.welcome.heartbeat_ms = 1000;
    m.u.welcome.liveness = 3;
    round_trip(&m, &d, &sb);
    assert_str(d.u.welcome.broker, "broker-1");
    assert_int_equal(d.u.welcome.heartbeat_ms, 1000);
    assert_int_equal(d.u.welcome.liveness, 3);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_TASK);
    m.u.task.id = ID1;
    m.u.task.attempt = 2;
    m.u.task.name = proto_str("taskq.sleep");
    m.u.task.args = (proto_bin_t){ARGS, sizeof ARGS};
    m.u.task.time_limit_ms = 1;
    round_trip(&m, &d, &sb);
    assert_id(&d.u.task.id, &ID1);
    assert_int_equal(d.u.task.attempt, 2);
    assert_str(d.u.task.name, "taskq.sleep");
    assert_memory_equal(d.u.task.args.ptr, ARGS, sizeof ARGS);
    assert_int_equal(d.u.task.time_limit_ms, 1);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_PROGRESS);
    m.u.progress.id = ID1;
    m.u.progress.attempt = 2;
    m.u.progress.current = UINT64_MAX;
    m.u.progress.total = 10;
    m.u.progress.message = proto_str("half way");
    round_trip(&m, &d, &sb);
    assert_id(&d.u.progress.id, &ID1);
    assert_int_equal(d.u.progress.attempt, 2);
    assert_true(d.u.progress.current == UINT64_MAX);
    assert_int_equal(d.u.progress.total, 10);
    assert_str(d.u.progress.message, "half way");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_DONE_ACK);
    m.u.done_ack.id = ID2;
    m.u.done_ack.attempt = 3;
    m.u.done_ack.code = TASKQ_ESTALE;
    round_trip(&m, &d, &sb);
    assert_id(&d.u.done_ack.id, &ID2);
    assert_int_equal(d.u.done_ack.attempt, 3);
    assert_int_equal(d.u.done_ack.code, TASKQ_ESTALE);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_BYE);
    round_trip(&m, &d, &sb);
    assert_int_equal(sb.size, 1);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = 0;
    m.u.error.code = TASKQ_EPROTO;
    m.u.error.message = proto_str("bad");
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.error.req, 0);
    assert_int_equal(d.u.error.code, TASKQ_EPROTO);
    assert_str(d.u.error.message, "bad");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_round_trip_done(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = ID1;
    m.u.done.attempt = 1;
    m.u.done.ok = true;
    m.u.done.result = (proto_bin_t){ARGS, sizeof ARGS};
    m.u.done.error = proto_str("ignored when ok");
    m.u.done.child_pid = -1;
    m.u.done.started_at = 1732536000000LL;
    round_trip(&m, &d, &sb);
    assert_true(d.u.done.ok);
    assert_memory_equal(d.u.done.result.ptr, ARGS, sizeof ARGS);
    assert_int_equal(d.u.done.error.len, 0);
    assert_false(d.u.done.retry);
    assert_int_equal(d.u.done.child_pid, -1);
    assert_int_equal(d.u.done.started_at, 1732536000000LL);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* ok with an empty result (nil) */
    m.u.done.result = (proto_bin_t){NULL, 0};
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.done.result.len, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    m.u.done.ok = false;
    m.u.done.retry = true;
    m.u.done.error = proto_str("child died on signal 9");
    round_trip(&m, &d, &sb);
    assert_false(d.u.done.ok);
    assert_true(d.u.done.retry);
    assert_str(d.u.done.error, "child died on signal 9");
    assert_int_equal(d.u.done.result.len, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
}

static proto_task_rec_t sample_rec(void)
{
    proto_task_rec_t t = {
        .id = ID1, .name = proto_str("taskq.echo"), .state = TASKQ_STATE_SUCCEEDED,
        .attempts = 2, .max_attempts = 3, .worker = proto_str("node-a.1"), .child_pid = 77,
        .submitted_at = 1000, .started_at = 2000, .finished_at = 3000,
        .progress_current = 5, .progress_total = 10, .progress_message = proto_str("ok"),
        .has_result = true, .result = {ARGS, sizeof ARGS}, .error = proto_str(""),
    };
    return t;
}

static void check_rec(const proto_task_rec_t *t)
{
    assert_id(&t->id, &ID1);
    assert_str(t->name, "taskq.echo");
    assert_int_equal(t->state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(t->attempts, 2);
    assert_int_equal(t->max_attempts, 3);
    assert_str(t->worker, "node-a.1");
    assert_int_equal(t->child_pid, 77);
    assert_int_equal(t->submitted_at, 1000);
    assert_int_equal(t->started_at, 2000);
    assert_int_equal(t->finished_at, 3000);
    assert_int_equal(t->progress_current, 5);
    assert_int_equal(t->progress_total, 10);
    assert_str(t->progress_message, "ok");
    assert_true(t->has_result);
    assert_memory_equal(t->result.ptr, ARGS, sizeof ARGS);
    assert_str(t->error, "");
}

static void test_round_trip_records(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;

    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.req = 11;
    m.u.status_reply.task = sample_rec();
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.status_reply.req, 11);
    check_rec(&d.u.status_reply.task);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.req = 12;
    m.u.result.code = TASKQ_OK;
    m.u.result.task = sample_rec();
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.result.req, 12);
    assert_int_equal(d.u.result.code, 0);
    check_rec(&d.u.result.task);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* a failed, never-started record without result */
    m.u.result.task.state = TASKQ_STATE_FAILED;
    m.u.result.task.has_result = false;
    m.u.result.task.error = proto_str("attempt limit (3) reached: worker node x lost");
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.result.task.state, TASKQ_STATE_FAILED);
    assert_false(d.u.result.task.has_result);
    assert_str(d.u.result.task.error, "attempt limit (3) reached: worker node x lost");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* ENOTFOUND: only the id travels */
    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.req = 13;
    m.u.result.code = TASKQ_ENOTFOUND;
    m.u.result.task.id = ID2;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.result.code, TASKQ_ENOTFOUND);
    assert_id(&d.u.result.task.id, &ID2);
    assert_int_equal(d.u.result.task.name.len, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_round_trip_nodes(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_child_t ch[2] = {
        {.pid = 100, .state = proto_str("busy"), .has_task = true, .task_id = ID1,
         .task_name = proto_str("taskq.primes"), .running_ms = 1500, .done = 3, .failed = 1,
         .rss_kb = 2048},
        {.pid = 101, .state = proto_str("idle"), .task_name = proto_str("")},
    };
    proto_node_t nodes[1] = {{.id = proto_str("node-a.1"), .host = proto_str("node a"),
                              .pid = 99, .slots = 2, .last_heartbeat = 123456789,
                              .nchildren = 2, .children = ch}};
    proto_lease_t leases[2] = {{ID1, 1}, {ID2, 4}};

    proto_msg_init(&m, PROTO_WORKERS_REPLY);
    m.u.workers_reply.req = 21;
    m.u.workers_reply.nnodes = 1;
    m.u.workers_reply.nodes = nodes;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.workers_reply.req, 21);
    assert_int_equal(d.u.workers_reply.nnodes, 1);
    const proto_node_t *n = &d.u.workers_reply.nodes[0];
    assert_str(n->id, "node-a.1");
    assert_str(n->host, "node a");
    assert_int_equal(n->pid, 99);
    assert_int_equal(n->slots, 2);
    assert_int_equal(n->last_heartbeat, 123456789);
    assert_int_equal(n->nchildren, 2);
    assert_int_equal(n->children[0].pid, 100);
    assert_str(n->children[0].state, "busy");
    assert_true(n->children[0].has_task);
    assert_id(&n->children[0].task_id, &ID1);
    assert_str(n->children[0].task_name, "taskq.primes");
    assert_int_equal(n->children[0].running_ms, 1500);
    assert_int_equal(n->children[0].done, 3);
    assert_int_equal(n->children[0].failed, 1);
    assert_int_equal(n->children[0].rss_kb, 2048);
    assert_false(n->children[1].has_task);
    assert_str(n->children[1].state, "idle");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_HEARTBEAT);
    m.u.heartbeat.nchildren = 2;
    m.u.heartbeat.children = ch;
    m.u.heartbeat.nleases = 2;
    m.u.heartbeat.leases = leases;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.heartbeat.nchildren, 2);
    assert_int_equal(d.u.heartbeat.children[0].pid, 100);
    assert_int_equal(d.u.heartbeat.nleases, 2);
    assert_id(&d.u.heartbeat.leases[1].id, &ID2);
    assert_int_equal(d.u.heartbeat.leases[1].attempt, 4);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_HEARTBEAT); /* broker -> worker: {} */
    round_trip(&m, &d, &sb);
    assert_int_equal(sb.size, 1);
    assert_int_equal((uint8_t)sb.data[0], 0x80);
    assert_int_equal(d.u.heartbeat.nchildren + d.u.heartbeat.nleases, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str("node-a.1");
    m.u.hello.host = proto_str("node-a");
    m.u.hello.pid = 1234;
    m.u.hello.slots = 4;
    m.u.hello.nleases = 2;
    m.u.hello.leases = leases;
    round_trip(&m, &d, &sb);
    assert_str(d.u.hello.node, "node-a.1");
    assert_str(d.u.hello.host, "node-a");
    assert_int_equal(d.u.hello.pid, 1234);
    assert_int_equal(d.u.hello.slots, 4);
    assert_int_equal(d.u.hello.nleases, 2);
    assert_id(&d.u.hello.leases[0].id, &ID1);
    assert_int_equal(d.u.hello.leases[0].attempt, 1);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_STATS_REPLY);
    m.u.stats_reply.req = 31;
    proto_stats_t st = {.queued = 1, .running = 2, .succeeded = 3, .failed = 4, .total = 10,
                        .submitted = 20, .nodes = 1, .children = 4, .uptime_ms = 99999,
                        .broker = proto_str("broker-1")};
    m.u.stats_reply.stats = st;
    round_trip(&m, &d, &sb);
    const proto_stats_t *s = &d.u.stats_reply.stats;
    assert_int_equal(d.u.stats_reply.req, 31);
    assert_int_equal(s->queued, 1);
    assert_int_equal(s->running, 2);
    assert_int_equal(s->succeeded, 3);
    assert_int_equal(s->failed, 4);
    assert_int_equal(s->total, 10);
    assert_int_equal(s->submitted, 20);
    assert_int_equal(s->nodes, 1);
    assert_int_equal(s->children, 4);
    assert_int_equal(s->uptime_ms, 99999);
    assert_str(s->broker, "broker-1");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_encode_rejects_bad_fields(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_msg_t m;
    proto_task_spec_t t = {.id = ID1, .name = proto_str("bad name")};
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &t;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0); /* nothing half-written */
    t.name = proto_str("ok");
    t.id = (taskq_id_t){{0}};
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    t.id = ID1;
    static const uint8_t bad_args[] = {0x92, 0x01};
    t.args = (proto_bin_t){bad_args, sizeof bad_args};
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    t.args = (proto_bin_t){NULL, 0};
    t.max_attempts = TQ_ATTEMPTS_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    t.max_attempts = 0;
    /* (the encoder reads the specs to tell a workflow graph: a real array) */
    proto_task_spec_t *many = calloc(TQ_BATCH_MAX + 1, sizeof *many);
    for (int i = 0; i <= TQ_BATCH_MAX; i++)
        many[i] = t;
    m.u.submit.tasks = many;
    m.u.submit.ntasks = TQ_BATCH_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.submit.tasks = &t;
    free(many);
    m.u.submit.ntasks = 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    assert_true(sb.size > 0);

    proto_msg_init(&m, 0x42);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    proto_msg_init(&m, PROTO_READY);
    m.u.ready.credit = TQ_CREDIT_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- vectors ---------------------------------------------------------- */

typedef struct {
    char name[64];
    int type;
    uint8_t data[4096];
    size_t len;
} vector_t;

static vector_t g_vec[32];
static int g_nvec;

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const vector_t *)a)->name, ((const vector_t *)b)->name);
}

/* Adds an encoded message to g_vec (named "~NAME" so that it sorts after
 * the files): the vector tests and the fuzzer then cover the issue-6
 * fields too. */
static int add_encoded(const char *name, const proto_msg_t *m)
{
    if (g_nvec >= 32)
        return -1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    vector_t *v = &g_vec[g_nvec];
    memset(v, 0, sizeof *v);
    int rc = -1;
    if (proto_encode(m, &sb) == TASKQ_OK && sb.size <= sizeof v->data) {
        snprintf(v->name, sizeof v->name, "~%s", name);
        v->type = m->type;
        memcpy(v->data, sb.data, sb.size);
        v->len = sb.size;
        g_nvec++;
        rc = 0;
    } else {
        fprintf(stderr, "cannot encode synthetic vector %s\n", name);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int add_synthetic_vectors(void)
{
    int rc = 0;
    proto_msg_t m;

    proto_task_spec_t t;
    proto_task_spec_init(&t);
    t.id = ID1;
    t.name = proto_str("img.resize");
    t.args = (proto_bin_t){ARGS, sizeof ARGS};
    t.queue = proto_str("media");
    t.priority = 7;
    t.countdown_ms = 1000;
    t.eta_at = 1732536000000LL;
    t.expires_in_ms = 5000;
    t.expires_at = 1732537000000LL;
    t.policy.backoff_base_ms = 100;
    t.policy.backoff_factor = 2.5;
    t.policy.backoff_max_ms = 60000;
    t.policy.jitter = PROTO_JITTER_FULL;
    t.policy.retry_on = proto_str("http.5*,x");
    t.policy.no_retry_on = proto_str("http.4*");
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = 3;
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &t;
    rc |= add_encoded("submit_policy", &m);

    uint32_t codes[2] = {0, 0};
    proto_str_t queues[2] = {proto_str("media"), proto_str("default")};
    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.req = 3;
    m.u.submit_ack.ncodes = 2;
    m.u.submit_ack.codes = codes;
    m.u.submit_ack.nqueues = 2;
    m.u.submit_ack.queues = queues;
    m.u.submit_ack.soft = true;
    rc |= add_encoded("submit_ack_queues", &m);

    proto_str_t qn[2] = {proto_str("critical"), proto_str("low")};
    uint32_t qw[2] = {6, 1};
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str("n1");
    m.u.hello.host = proto_str("h");
    m.u.hello.pid = 1;
    m.u.hello.slots = 2;
    m.u.hello.nqueues = 2;
    m.u.hello.queue_names = qn;
    m.u.hello.queue_weights = qw;
    m.u.hello.strict = true;
    rc |= add_encoded("hello_queues", &m);

    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = ID1;
    m.u.done.attempt = 2;
    m.u.done.error = proto_str("nope");
    m.u.done.code = proto_str("http.503");
    m.u.done.permanent = true;
    m.u.done.retry_delay_ms = 10;
    m.u.done.rate_limited_ms = 20;
    m.u.done.policy.max_attempts = 5;
    m.u.done.policy.backoff_factor = 3;
    m.u.done.policy.jitter = PROTO_JITTER_NONE;
    m.u.done.policy.retry_on = proto_str("*");
    rc |= add_encoded("done_policy", &m);

    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.req = 4;
    m.u.status_reply.task = sample_rec();
    m.u.status_reply.task.state = TASKQ_STATE_RETRYING;
    m.u.status_reply.task.queue = proto_str("media");
    m.u.status_reply.task.priority = 2;
    m.u.status_reply.task.failures = 1;
    m.u.status_reply.task.code = proto_str("taskq.lost");
    m.u.status_reply.task.due_at = 99;
    m.u.status_reply.task.schedule = proto_str("nightly");
    rc |= add_encoded("status_reply_policy", &m);

    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = 3;
    m.u.error.code = TASKQ_EBUSY;
    m.u.error.message = proto_str("queue media is full");
    m.u.error.queue = proto_str("media");
    m.u.error.depth = 100;
    m.u.error.limit = 100;
    m.u.error.retry_after_ms = 250;
    rc |= add_encoded("error_busy", &m);

    /* issue 7: a workflow SUBMIT (chain + chord) with every lifecycle field */
    static const taskq_id_t G1 = {{0x01, 0x93, 0x8a, 0x6e, 0x7b, 0x2c, 0x7d, 0x00, 0x80, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x09}};
    proto_task_spec_t wt[3];
    for (int i = 0; i < 3; i++) {
        proto_task_spec_init(&wt[i]);
        wt[i].name = proto_str("wf.step");
    }
    wt[0].id = ID1;
    wt[0].has_group = true;
    wt[0].group = G1;
    wt[0].unique_key = proto_str("order 42");
    wt[0].unique_until = 1;
    wt[0].unique_for_ms = 60000;
    wt[0].result_ttl_ms = 3600000;
    wt[1].id = ID2;
    wt[1].has_group = true;
    wt[1].group = G1;
    wt[1].index = 1;
    wt[1].unique = true;
    wt[2].id = G1; /* any non-zero id */
    wt[2].id.b[15] = 0x0a;
    wt[2].has_callback_of = true;
    wt[2].callback_of = G1;
    wt[2].has_parent = true;
    wt[2].parent = ID1;
    wt[2].immutable = true;
    proto_group_t wg = {.id = G1, .size = 2, .on_fail = 1};
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = 8;
    m.u.submit.ntasks = 3;
    m.u.submit.tasks = wt;
    m.u.submit.ngroups = 1;
    m.u.submit.groups = &wg;
    rc |= add_encoded("submit_graph", &m);

    uint32_t hcodes[3] = {0, 0, 0};
    taskq_id_t holders[3] = {{{0}}, ID2, {{0}}};
    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.req = 8;
    m.u.submit_ack.ncodes = 3;
    m.u.submit_ack.codes = hcodes;
    m.u.submit_ack.nholders = 3;
    m.u.submit_ack.holders = holders;
    rc |= add_encoded("submit_ack_holders", &m);

    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.req = 9;
    m.u.status_reply.task = sample_rec();
    m.u.status_reply.task.group_id = G1;
    m.u.status_reply.task.parent_id = ID2;
    m.u.status_reply.task.rerun_of = ID2;
    m.u.status_reply.task.rerun_by = G1;
    m.u.status_reply.task.unique_key = proto_str("auto:0123456789abcdef0123456789abcdef");
    rc |= add_encoded("status_reply_lifecycle", &m);

    proto_msg_init(&m, PROTO_STATS_REPLY);
    m.u.stats_reply.req = 10;
    m.u.stats_reply.stats.queued = 1;
    m.u.stats_reply.stats.purged = 12345;
    m.u.stats_reply.stats.broker = proto_str("b1");
    rc |= add_encoded("stats_purged", &m);

    proto_msg_init(&m, PROTO_CANCEL);
    m.u.cancel.id = ID1;
    m.u.cancel.attempt = 2;
    m.u.cancel.terminate = true;
    m.u.cancel.grace_ms = TQ_DEFAULT_REVOKE_GRACE_MS;
    rc |= add_encoded("cancel", &m);

    /* ADMIN {req, op, params: {"name": "s", "args": bin, "list": [1, {"k": nil}]}} */
    msgpack_sbuffer ps;
    msgpack_packer pk;
    msgpack_sbuffer_init(&ps);
    msgpack_packer_init(&pk, &ps, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    proto_pack_key(&pk, "name");
    proto_pack_str(&pk, proto_str("s"));
    proto_pack_key(&pk, "args");
    msgpack_pack_bin(&pk, sizeof ARGS);
    msgpack_pack_bin_body(&pk, ARGS, sizeof ARGS);
    proto_pack_key(&pk, "list");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "k");
    msgpack_pack_nil(&pk);
    proto_msg_init(&m, PROTO_ADMIN);
    m.u.admin.req = 5;
    m.u.admin.op = proto_str("schedule_add");
    m.u.admin.params = (proto_bin_t){(const uint8_t *)ps.data, (uint32_t)ps.size};
    rc |= add_encoded("admin", &m);
    proto_msg_init(&m, PROTO_ADMIN_REPLY);
    m.u.admin_reply.req = 5;
    m.u.admin_reply.data = (proto_bin_t){(const uint8_t *)ps.data, (uint32_t)ps.size};
    rc |= add_encoded("admin_reply", &m);
    msgpack_sbuffer_destroy(&ps);
    return rc;
}

static int load_vectors(void **state)
{
    (void)state;
    const char *dir = getenv("TASKQ_VECTORS");
    if (!dir)
        dir = "tests/vectors";
    DIR *dp = opendir(dir);
    if (!dp) {
        fprintf(stderr, "cannot open vectors dir %s\n", dir);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(dp)) && g_nvec < 32) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || nl >= 64 || strcmp(de->d_name + nl - 4, ".hex") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        vector_t *v = &g_vec[g_nvec];
        memset(v, 0, sizeof *v);
        strcpy(v->name, de->d_name);
        v->type = -1;
        char line[1024];
        while (fgets(line, sizeof line, f)) {
            if (line[0] == '#') {
                unsigned t;
                if (v->type < 0 && sscanf(line, "# type 0x%x", &t) == 1)
                    v->type = (int)t;
                continue;
            }
            for (char *p = line; *p; p++) {
                if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
                    continue;
                int hi = hexv(p[0]), lo = p[1] ? hexv(p[1]) : -1;
                if (hi < 0 || lo < 0 || v->len >= sizeof v->data) {
                    fprintf(stderr, "%s: bad hex\n", path);
                    fclose(f);
                    closedir(dp);
                    return -1;
                }
                v->data[v->len++] = (uint8_t)(hi << 4 | lo);
                p++;
            }
        }
        fclose(f);
        if (v->type < 0) {
            fprintf(stderr, "%s: no '# type 0x..' comment\n", path);
            closedir(dp);
            return -1;
        }
        g_nvec++;
    }
    closedir(dp);
    if (g_nvec < 5 || add_synthetic_vectors() != 0)
        return -1;
    qsort(g_vec, (size_t)g_nvec, sizeof g_vec[0], cmp_name);
    return 0;
}

static const vector_t *vec(const char *name)
{
    for (int i = 0; i < g_nvec; i++)
        if (strcmp(g_vec[i].name, name) == 0)
            return &g_vec[i];
    fail_msg("vector %s missing", name);
    return NULL;
}

static void decode_vec(const char *name, proto_msg_t *m)
{
    const vector_t *v = vec(name);
    proto_msg_init(m, 0);
    const char *detail = NULL;
    taskq_err_t e = proto_decode(v->type, v->data, v->len, m, &detail);
    if (e)
        fail_msg("%s: %s (%s)", name, taskq_err_name(e), detail ? detail : "");
}

static void test_vectors_reencode(void **state)
{
    (void)state;
    for (int i = 0; i < g_nvec; i++) {
        const vector_t *v = &g_vec[i];
        proto_msg_t m;
        proto_msg_init(&m, 0);
        const char *detail = NULL;
        taskq_err_t e = proto_decode(v->type, v->data, v->len, &m, &detail);
        if (e)
            fail_msg("%s: %s (%s)", v->name, taskq_err_name(e), detail ? detail : "");
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
        if (sb.size != v->len || memcmp(sb.data, v->data, v->len) != 0)
            fail_msg("%s: re-encoding differs", v->name);
        msgpack_sbuffer_destroy(&sb);
        proto_msg_clear(&m);
    }
}

static void test_vectors_fields(void **state)
{
    (void)state;
    proto_msg_t m;
    static const uint8_t args12[] = {0x92, 0x01, 0x02};

    decode_vec("submit_one.hex", &m);
    assert_int_equal(m.type, PROTO_SUBMIT);
    assert_int_equal(m.u.submit.req, 1);
    assert_int_equal(m.u.submit.ntasks, 1);
    assert_id(&m.u.submit.tasks[0].id, &ID1);
    assert_str(m.u.submit.tasks[0].name, "taskq.echo");
    assert_int_equal(m.u.submit.tasks[0].args.len, 3);
    assert_memory_equal(m.u.submit.tasks[0].args.ptr, args12, 3);
    assert_int_equal(m.u.submit.tasks[0].time_limit_ms, 0);
    assert_int_equal(m.u.submit.tasks[0].max_attempts, 0);
    proto_msg_clear(&m);

    decode_vec("submit_ack.hex", &m);
    assert_int_equal(m.u.submit_ack.req, 1);
    assert_int_equal(m.u.submit_ack.ncodes, 1);
    assert_int_equal(m.u.submit_ack.codes[0], 0);
    proto_msg_clear(&m);

    decode_vec("task.hex", &m);
    assert_id(&m.u.task.id, &ID1);
    assert_int_equal(m.u.task.attempt, 1);
    assert_str(m.u.task.name, "taskq.echo");
    assert_memory_equal(m.u.task.args.ptr, args12, 3);
    assert_int_equal(m.u.task.time_limit_ms, 30000);
    proto_msg_clear(&m);

    decode_vec("done_ok.hex", &m);
    assert_id(&m.u.done.id, &ID1);
    assert_int_equal(m.u.done.attempt, 1);
    assert_true(m.u.done.ok);
    assert_memory_equal(m.u.done.result.ptr, args12, 3);
    assert_int_equal(m.u.done.child_pid, 4242);
    assert_int_equal(m.u.done.started_at, 1732536000000LL);
    proto_msg_clear(&m);

    decode_vec("done_error.hex", &m);
    assert_int_equal(m.u.done.attempt, 2);
    assert_false(m.u.done.ok);
    assert_str(m.u.done.error, "boom");
    assert_true(m.u.done.retry);
    assert_int_equal(m.u.done.child_pid, 4243);
    proto_msg_clear(&m);

    decode_vec("heartbeat.hex", &m);
    assert_int_equal(m.type, PROTO_HEARTBEAT);
    assert_int_equal(m.u.heartbeat.nchildren + m.u.heartbeat.nleases, 0);
    proto_msg_clear(&m);

    decode_vec("error.hex", &m);
    assert_int_equal(m.u.error.req, 7);
    assert_int_equal(m.u.error.code, TASKQ_ENAME);
    assert_str(m.u.error.message, "SUBMIT tasks[0].name: invalid character");
    proto_msg_clear(&m);

    decode_vec("hello.hex", &m);
    assert_str(m.u.hello.node, "node-a.1");
    assert_str(m.u.hello.host, "node-a");
    assert_int_equal(m.u.hello.pid, 1234);
    assert_int_equal(m.u.hello.slots, 4);
    assert_int_equal(m.u.hello.nleases, 1);
    assert_id(&m.u.hello.leases[0].id, &ID1);
    assert_int_equal(m.u.hello.leases[0].attempt, 3);
    proto_msg_clear(&m);

    decode_vec("ready.hex", &m);
    assert_int_equal(m.u.ready.credit, 4);
    proto_msg_clear(&m);
}

static void test_vectors_truncated(void **state)
{
    (void)state;
    for (int i = 0; i < g_nvec; i++) {
        const vector_t *v = &g_vec[i];
        for (size_t cut = 0; cut < v->len; cut++) {
            /* a fresh heap copy so ASan sees any read past the end */
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, v->data, cut);
            proto_msg_t m;
            proto_msg_init(&m, 0);
            const char *detail = NULL;
            taskq_err_t e = proto_decode(v->type, copy, cut, &m, &detail);
            if (e == TASKQ_OK)
                fail_msg("%s cut at %zu decoded", v->name, cut);
            assert_non_null(detail);
            assert_null(m.zone);
            free(copy);
        }
    }
}

/* ---- hostile input ---------------------------------------------------- */

static taskq_err_t dec(int type, const void *p, size_t n, const char **detail)
{
    proto_msg_t m;
    proto_msg_init(&m, 0);
    const char *d = NULL;
    taskq_err_t e = proto_decode(type, p, n, &m, &d);
    if (detail)
        *detail = d;
    if (e) {
        assert_non_null(d);
        assert_null(m.zone);
    }
    proto_msg_clear(&m);
    return e;
}

static void test_precheck_formats(void **state)
{
    (void)state;
    static const uint8_t ok[] = {
        0xdc, 0, 17, /* array of 17 */
        0xc0, 0xc2, 0xc3, 0x7f, 0xe0, 0xcc, 1, 0xcd, 0, 1, 0xce, 0, 0, 0, 1,
        0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0,
        0xd9, 1, 'a', 0xc4, 2, 1, 2, 0xd4, 1, 9, 0xc7, 2, 5, 1, 2,
        0xdc, 0, 1, 0x80,
    };
    assert_int_equal(proto_precheck(ok, sizeof ok, 4), TASKQ_OK);
    static const uint8_t ext16[] = {0xd8, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    assert_int_equal(proto_precheck(ext16, sizeof ext16, 0), TASKQ_OK);
    static const uint8_t map16[] = {0xde, 0, 1, 0xa1, 'k', 0xc0};
    assert_int_equal(proto_precheck(map16, sizeof map16, 1), TASKQ_OK);
    static const uint8_t invalid[] = {0xc1};
    assert_int_equal(proto_precheck(invalid, 1, 4), TASKQ_EPROTO);
    static const uint8_t trailing[] = {0xc0, 0xc0};
    assert_int_equal(proto_precheck(trailing, 2, 4), TASKQ_EPROTO);
    assert_int_equal(proto_precheck(NULL, 0, 4), TASKQ_EPROTO);
    /* depth: [[ ]] is depth 2 */
    static const uint8_t d2[] = {0x91, 0x90};
    assert_int_equal(proto_precheck(d2, 2, 2), TASKQ_OK);
    assert_int_equal(proto_precheck(d2, 2, 1), TASKQ_ETOOBIG);
    /* huge declared lengths with nothing after */
    static const uint8_t huge[][5] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff}, {0xdf, 0xff, 0xff, 0xff, 0xff},
        {0xdb, 0xff, 0xff, 0xff, 0xff}, {0xc6, 0xff, 0xff, 0xff, 0xff},
        {0xc9, 0xff, 0xff, 0xff, 0xff},
    };
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_not_equal(proto_precheck(huge[i], 5, TQ_MAX_DEPTH), TASKQ_OK);
        assert_int_not_equal(dec(PROTO_SUBMIT, huge[i], 5, NULL), TASKQ_OK);
    }
    /* a map of 3 pairs needs 6 bytes */
    static const uint8_t shortmap[] = {0x83, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0};
    assert_int_equal(proto_precheck(shortmap, sizeof shortmap, 4), TASKQ_EPROTO);
}

static void test_precheck_limits(void **state)
{
    (void)state;
    /* depth 100000 */
    size_t n = 100000;
    uint8_t *deep = malloc(n + 1);
    memset(deep, 0x91, n);
    deep[n] = 0xc0;
    assert_int_equal(proto_precheck(deep, n + 1, TQ_MAX_DEPTH), TASKQ_ETOOBIG);
    assert_int_equal(proto_precheck(deep, n + 1, 1000000), TASKQ_ETOOBIG);
    assert_int_not_equal(dec(PROTO_SUBMIT, deep, n + 1, NULL), TASKQ_OK);
    free(deep);

    /* an array of TQ_MAX_ARRAY + 1 nils */
    size_t cnt = TQ_MAX_ARRAY + 1;
    uint8_t *big = malloc(5 + cnt);
    big[0] = 0xdd;
    big[1] = (uint8_t)(cnt >> 24), big[2] = (uint8_t)(cnt >> 16);
    big[3] = (uint8_t)(cnt >> 8), big[4] = (uint8_t)cnt;
    memset(big + 5, 0xc0, cnt);
    assert_int_equal(proto_precheck(big, 5 + cnt, 4), TASKQ_ETOOBIG);
    free(big);

    /* more than TQ_MAX_OBJECTS objects in arrays that are each legal */
    size_t per = 50000, arrays = TQ_MAX_OBJECTS / 50000 + 1;
    size_t len = 3 + arrays * (3 + per);
    uint8_t *many = malloc(len), *p = many;
    *p++ = 0xdc, *p++ = 0, *p++ = (uint8_t)arrays;
    for (size_t i = 0; i < arrays; i++) {
        *p++ = 0xdc, *p++ = (uint8_t)(per >> 8), *p++ = (uint8_t)per;
        memset(p, 0xc0, per);
        p += per;
    }
    assert_int_equal(proto_precheck(many, len, 4), TASKQ_ETOOBIG);
    free(many);
}

/* Builds a SUBMIT body with one task whose map is given as raw bytes. */
static size_t submit_with(uint8_t *out, const uint8_t *task, size_t tlen)
{
    static const uint8_t head[] = {0x82, 0xa3, 'r', 'e', 'q', 0x01,
                                   0xa5, 't', 'a', 's', 'k', 's', 0x91};
    memcpy(out, head, sizeof head);
    memcpy(out + sizeof head, task, tlen);
    return sizeof head + tlen;
}

static void test_decode_rejects_bad_fields(void **state)
{
    (void)state;
    uint8_t buf[512];
    const char *detail;
#define IDBIN 0xc4, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
    /* valid baseline */
    static const uint8_t good[] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, good, sizeof good), NULL), TASKQ_OK);
    /* bad name character */
    static const uint8_t badname[] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa2, 'x', '/'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, badname, sizeof badname), &detail),
                     TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT tasks[0].name: invalid character");
    /* empty name */
    static const uint8_t emptyname[] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa0};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, emptyname, sizeof emptyname), NULL),
                     TASKQ_ENAME);
    /* name of 129 characters */
    uint8_t longname[200] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xd9, 129};
    size_t ln = 1 + 3 + 18 + 5 + 2;
    memset(longname + ln, 'a', 129);
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, longname, ln + 129), NULL),
                     TASKQ_ETOOBIG);
    /* name not a string */
    static const uint8_t intname[] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0x05};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, intname, sizeof intname), &detail),
                     TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].name: not a string");
    /* 15- and 17-byte ids, zero id, id as a string */
    static const uint8_t id15[] = {0x82, 0xa2, 'i', 'd', 0xc4, 15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                   0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, id15, sizeof id15), NULL), TASKQ_EPROTO);
    static const uint8_t id17[] = {0x82, 0xa2, 'i', 'd', 0xc4, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                   0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, id17, sizeof id17), NULL), TASKQ_EPROTO);
    static const uint8_t id0[] = {0x82, 0xa2, 'i', 'd', 0xc4, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                  0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, id0, sizeof id0), NULL), TASKQ_EPROTO);
    static const uint8_t idstr[] = {0x82, 0xa2, 'i', 'd', 0xb0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, idstr, sizeof idstr), NULL), TASKQ_EPROTO);
    /* missing name, missing id */
    static const uint8_t noname[] = {0x81, 0xa2, 'i', 'd', IDBIN};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, noname, sizeof noname), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].name: missing");
    static const uint8_t noid[] = {0x81, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, noid, sizeof noid), NULL), TASKQ_EPROTO);
    /* args that are not one valid msgpack value: truncated, and two values */
    static const uint8_t badargs[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                      0xa4, 'a', 'r', 'g', 's', 0xc4, 2, 0x92, 0x01};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, badargs, sizeof badargs), NULL), TASKQ_EPROTO);
    static const uint8_t twoargs[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                      0xa4, 'a', 'r', 'g', 's', 0xc4, 2, 0x01, 0x01};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, twoargs, sizeof twoargs), NULL), TASKQ_EPROTO);
    static const uint8_t strargs[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                      0xa4, 'a', 'r', 'g', 's', 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, strargs, sizeof strargs), NULL), TASKQ_EPROTO);
    /* negative time limit, max_attempts above the limit */
    static const uint8_t negtl[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                    0xad, 't', 'i', 'm', 'e', '_', 'l', 'i', 'm', 'i', 't', '_', 'm', 's', 0xff};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, negtl, sizeof negtl), NULL), TASKQ_EPROTO);
    static const uint8_t maxatt[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                     0xac, 'm', 'a', 'x', '_', 'a', 't', 't', 'e', 'm', 'p', 't', 's', 0xcc, 101};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, maxatt, sizeof maxatt), NULL), TASKQ_ETOOBIG);
    /* unknown keys are ignored; int-typed positive value in an int8 format is fine */
    static const uint8_t extra[] = {0x84, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x',
                                    0xa3, 'z', 'z', 'z', 0xc0,
                                    0xac, 'm', 'a', 'x', '_', 'a', 't', 't', 'e', 'm', 'p', 't', 's', 0xd0, 5};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, extra, sizeof extra), NULL), TASKQ_OK);
    /* task not a map; key not a string */
    static const uint8_t notmap[] = {0x90};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, notmap, sizeof notmap), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0]: not a map");
    static const uint8_t intkey[] = {0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 'n', 'a', 'm', 'e', 0xa1, 'x', 0x01, 0x02};
    assert_int_equal(dec(PROTO_SUBMIT, buf, submit_with(buf, intkey, sizeof intkey), NULL), TASKQ_EPROTO);
#undef IDBIN

    /* body not a map, req negative, req missing */
    static const uint8_t arr[] = {0x90};
    assert_int_equal(dec(PROTO_STATS, arr, 1, NULL), TASKQ_EPROTO);
    static const uint8_t negreq[] = {0x81, 0xa3, 'r', 'e', 'q', 0xff};
    assert_int_equal(dec(PROTO_STATS, negreq, sizeof negreq, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "STATS req: negative");
    static const uint8_t empty[] = {0x80};
    assert_int_equal(dec(PROTO_STATS, empty, 1, NULL), TASKQ_EPROTO);
    assert_int_equal(dec(PROTO_BYE, empty, 1, NULL), TASKQ_OK);
    assert_int_equal(dec(PROTO_BYE, arr, 1, NULL), TASKQ_EPROTO);
    /* credit above the limit; bool where an int is expected */
    static const uint8_t credit[] = {0x81, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 0xce, 0, 0x0f, 0xff, 0xff};
    assert_int_equal(dec(PROTO_READY, credit, sizeof credit, NULL), TASKQ_ETOOBIG);
    static const uint8_t creditb[] = {0x81, 0xa6, 'c', 'r', 'e', 'd', 'i', 't', 0xc3};
    assert_int_equal(dec(PROTO_READY, creditb, sizeof creditb, NULL), TASKQ_EPROTO);
    /* unknown type */
    assert_int_equal(dec(0x42, empty, 1, &detail), TASKQ_EUNKNOWN);
    assert_int_equal(dec(-1, empty, 1, NULL), TASKQ_EUNKNOWN);
    /* body larger than TQ_MAX_BODY is refused before it is read */
    assert_int_equal(dec(PROTO_BYE, empty, (size_t)TQ_MAX_BODY + 1, NULL), TASKQ_ETOOBIG);
}

static void test_decode_rejects_bad_node_fields(void **state)
{
    (void)state;
    proto_msg_t m;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str("bad node");
    m.u.hello.host = proto_str("h");
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    /* hand-made HELLO with a bad node id and with a 3-element lease */
    static const uint8_t hello[] = {0x85, 0xa4, 'n', 'o', 'd', 'e', 0xa2, 'a', '/',
                                    0xa4, 'h', 'o', 's', 't', 0xa1, 'h',
                                    0xa3, 'p', 'i', 'd', 0x01, 0xa5, 's', 'l', 'o', 't', 's', 0x01,
                                    0xa6, 'l', 'e', 'a', 's', 'e', 's', 0x90};
    assert_int_equal(dec(PROTO_HELLO, hello, sizeof hello, NULL), TASKQ_ENAME);
    uint8_t ok[sizeof hello];
    memcpy(ok, hello, sizeof hello);
    ok[8] = 'b';
    assert_int_equal(dec(PROTO_HELLO, ok, sizeof ok, NULL), TASKQ_OK);
    static const uint8_t lease3[] = {0x85, 0xa4, 'n', 'o', 'd', 'e', 0xa2, 'a', 'b',
                                     0xa4, 'h', 'o', 's', 't', 0xa1, 'h',
                                     0xa3, 'p', 'i', 'd', 0x01, 0xa5, 's', 'l', 'o', 't', 's', 0x01,
                                     0xa6, 'l', 'e', 'a', 's', 'e', 's', 0x91, 0x93, 0xc0, 0xc0, 0xc0};
    const char *detail;
    assert_int_equal(dec(PROTO_HELLO, lease3, sizeof lease3, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "HELLO leases[0]: not a [id, attempt] pair");
    msgpack_sbuffer_destroy(&sb);
}

/* ---- dispatch policy (issue 6) ----------------------------------------- */

/* One extra key/value for the hand-made bodies below. */
enum { V_NONE, V_U64, V_I64, V_STR, V_F64, V_F32, V_BOOL, V_NIL, V_RAW };
typedef struct {
    const char *key;
    int t;
    uint64_t u;
    int64_t i;
    double f;
    const char *s;
    const uint8_t *raw;
    size_t rawlen;
} kv_t;

static kv_t KU(const char *k, uint64_t u) { return (kv_t){.key = k, .t = V_U64, .u = u}; }
static kv_t KI(const char *k, int64_t i) { return (kv_t){.key = k, .t = V_I64, .i = i}; }
static kv_t KS(const char *k, const char *s) { return (kv_t){.key = k, .t = V_STR, .s = s}; }
static kv_t KF(const char *k, double f) { return (kv_t){.key = k, .t = V_F64, .f = f}; }
static kv_t KF32(const char *k, double f) { return (kv_t){.key = k, .t = V_F32, .f = f}; }
static kv_t KB(const char *k, bool b) { return (kv_t){.key = k, .t = V_BOOL, .u = b}; }
static kv_t KN(const char *k) { return (kv_t){.key = k, .t = V_NIL}; }
static kv_t KR(const char *k, const void *raw, size_t n)
{
    return (kv_t){.key = k, .t = V_RAW, .raw = raw, .rawlen = n};
}

static void pack_kv(msgpack_packer *pk, kv_t v)
{
    proto_pack_key(pk, v.key);
    switch (v.t) {
    case V_U64: msgpack_pack_uint64(pk, v.u); break;
    case V_I64: msgpack_pack_int64(pk, v.i); break;
    case V_STR: proto_pack_str(pk, proto_str(v.s)); break;
    case V_F64: msgpack_pack_double(pk, v.f); break;
    case V_F32: msgpack_pack_float(pk, (float)v.f); break;
    case V_BOOL: v.u ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case V_NIL: msgpack_pack_nil(pk); break;
    case V_RAW: pk->callback(pk->data, (const char *)v.raw, v.rawlen); break;
    default: fail_msg("bad kv");
    }
}

static void pack_id(msgpack_packer *pk, const taskq_id_t *id)
{
    msgpack_pack_bin(pk, 16);
    msgpack_pack_bin_body(pk, id->b, 16);
}

/* Decodes a SUBMIT of one task {id, name: "x", extra...}. */
static taskq_err_t dec_task(const kv_t *extra, size_t n, const char **detail)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_kv(&pk, KU("req", 1));
    proto_pack_key(&pk, "tasks");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 2 + n);
    proto_pack_key(&pk, "id");
    pack_id(&pk, &ID1);
    pack_kv(&pk, KS("name", "x"));
    for (size_t i = 0; i < n; i++)
        pack_kv(&pk, extra[i]);
    taskq_err_t e = dec(PROTO_SUBMIT, sb.data, sb.size, detail);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

static taskq_err_t dec_task1(kv_t v, const char **detail) { return dec_task(&v, 1, detail); }

/* Decodes a failed DONE with one extra key. */
static taskq_err_t dec_done_fail(kv_t v, const char **detail)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 8);
    proto_pack_key(&pk, "id");
    pack_id(&pk, &ID1);
    pack_kv(&pk, KU("attempt", 1));
    pack_kv(&pk, KB("ok", false));
    pack_kv(&pk, KS("error", "e"));
    pack_kv(&pk, KB("retry", false));
    pack_kv(&pk, KU("child_pid", 1));
    pack_kv(&pk, KU("started_at", 0));
    pack_kv(&pk, v);
    taskq_err_t e = dec(PROTO_DONE, sb.data, sb.size, detail);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

/* Decodes a HELLO whose "queues" value is raw. */
static taskq_err_t dec_hello_queues(const void *raw, size_t n, const char **detail)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pack_kv(&pk, KS("node", "n1"));
    pack_kv(&pk, KS("host", "h"));
    pack_kv(&pk, KU("pid", 1));
    pack_kv(&pk, KU("slots", 1));
    proto_pack_key(&pk, "leases");
    msgpack_pack_array(&pk, 0);
    pack_kv(&pk, KR("queues", raw, n));
    taskq_err_t e = dec(PROTO_HELLO, sb.data, sb.size, detail);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

static void test_round_trip_submit_policy(void **state)
{
    (void)state;
    proto_task_spec_t t[3];
    proto_task_spec_init(&t[0]);
    t[0].id = ID1;
    t[0].name = proto_str("img.resize");
    t[0].queue = proto_str("media-1.hi_x");
    t[0].priority = 9;
    t[0].countdown_ms = TQ_ETA_MAX_MS;
    t[0].eta_at = 1732536000000LL;
    t[0].expires_in_ms = 60000;
    t[0].expires_at = 1732537000000LL;
    t[0].policy.backoff_base_ms = 250;
    t[0].policy.backoff_factor = 1.5;
    t[0].policy.backoff_max_ms = TQ_BACKOFF_MS_MAX;
    t[0].policy.jitter = PROTO_JITTER_NONE;
    t[0].policy.retry_on = proto_str("http.5*,taskq.crash");
    t[0].policy.no_retry_on = proto_str("*");
    proto_task_spec_init(&t[1]); /* every default: nothing extra on the wire */
    t[1].id = ID2;
    t[1].name = proto_str("x");
    proto_task_spec_init(&t[2]); /* priority 0 and jitter equal are real values */
    t[2].id = ID2;
    t[2].name = proto_str("y");
    t[2].priority = 0;
    t[2].policy.jitter = PROTO_JITTER_EQUAL;
    t[2].policy.backoff_factor = 1000;

    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = 1;
    m.u.submit.ntasks = 3;
    m.u.submit.tasks = t;
    round_trip(&m, &d, &sb);
    const proto_task_spec_t *a = &d.u.submit.tasks[0];
    assert_str(a->queue, "media-1.hi_x");
    assert_int_equal(a->priority, 9);
    assert_int_equal(a->countdown_ms, TQ_ETA_MAX_MS);
    assert_int_equal(a->eta_at, 1732536000000LL);
    assert_int_equal(a->expires_in_ms, 60000);
    assert_int_equal(a->expires_at, 1732537000000LL);
    assert_int_equal(a->policy.backoff_base_ms, 250);
    assert_true(a->policy.backoff_factor == 1.5);
    assert_int_equal(a->policy.backoff_max_ms, TQ_BACKOFF_MS_MAX);
    assert_int_equal(a->policy.jitter, PROTO_JITTER_NONE);
    assert_str(a->policy.retry_on, "http.5*,taskq.crash");
    assert_str(a->policy.no_retry_on, "*");
    assert_int_equal(a->policy.max_attempts, 0);
    const proto_task_spec_t *b = &d.u.submit.tasks[1];
    assert_int_equal(b->queue.len, 0);
    assert_int_equal(b->priority, -1);
    assert_int_equal(b->countdown_ms + b->eta_at + b->expires_in_ms + b->expires_at, 0);
    assert_int_equal(b->policy.backoff_base_ms + b->policy.backoff_max_ms, 0);
    assert_true(b->policy.backoff_factor == 0);
    assert_int_equal(b->policy.jitter, -1);
    assert_int_equal(b->policy.retry_on.len + b->policy.no_retry_on.len, 0);
    const proto_task_spec_t *c = &d.u.submit.tasks[2];
    assert_int_equal(c->priority, 0);
    assert_int_equal(c->policy.jitter, PROTO_JITTER_EQUAL);
    assert_true(c->policy.backoff_factor == 1000);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* a default spec encodes exactly like before issue 6 (3 keys) */
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &t[1];
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    assert_int_equal((uint8_t)sb.data[13], 0x83); /* after {req: 0, tasks: [ */
    msgpack_sbuffer_destroy(&sb);

    /* the submit_one vector: every new field at its default */
    decode_vec("submit_one.hex", &m);
    assert_int_equal(m.u.submit.tasks[0].priority, -1);
    assert_int_equal(m.u.submit.tasks[0].policy.jitter, -1);
    assert_int_equal(m.u.submit.tasks[0].queue.len, 0);
    proto_msg_clear(&m);

    /* backoff_factor as float32 and as a positive integer */
    kv_t f32 = KF32("backoff_factor", 2.5);
    assert_int_equal(dec_task(&f32, 1, NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("backoff_factor", 3), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("backoff_factor", 0), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KF("backoff_factor", -0.0), NULL), TASKQ_OK);
    /* an empty queue means "route"; an empty retry_on list is every code */
    assert_int_equal(dec_task1(KS("queue", ""), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KS("retry_on", ""), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KS("retry_on", " http.4* , taskq.lost"), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("priority", 0), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("countdown_ms", TQ_ETA_MAX_MS), NULL), TASKQ_OK);
}

static void test_decode_rejects_policy_fields(void **state)
{
    (void)state;
    const char *detail;
    char q65[66];
    memset(q65, 'q', 65);
    q65[65] = '\0';
    char p513[514]; /* "aaa,aaaaaaa,aaaaaaa,...": 513 bytes */
    for (int i = 0; i < 513; i++)
        p513[i] = i % 8 == 3 ? ',' : 'a';
    p513[513] = '\0';

    assert_int_equal(dec_task1(KS("queue", "Media"), &detail), TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT tasks[0].queue: invalid character");
    assert_int_equal(dec_task1(KS("queue", "a:b"), NULL), TASKQ_ENAME);
    assert_int_equal(dec_task1(KS("queue", "a b"), NULL), TASKQ_ENAME);
    assert_int_equal(dec_task1(KS("queue", q65), NULL), TASKQ_ETOOBIG);
    q65[64] = '\0';
    assert_int_equal(dec_task1(KS("queue", q65), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("queue", 1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].queue: not a string");

    assert_int_equal(dec_task1(KU("priority", 10), &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks[0].priority: out of range");
    assert_int_equal(dec_task1(KI("priority", -1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].priority: negative");
    assert_int_equal(dec_task1(KS("priority", "5"), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KN("priority"), NULL), TASKQ_EPROTO);

    assert_int_equal(dec_task1(KU("countdown_ms", TQ_ETA_MAX_MS + 1), &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks[0].countdown_ms: out of range");
    assert_int_equal(dec_task1(KU("expires_in_ms", TQ_ETA_MAX_MS + 1), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_task1(KI("eta_at", -5), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KU("eta_at", UINT64_MAX), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KF("expires_at", 1.0), NULL), TASKQ_EPROTO);

    assert_int_equal(dec_task1(KU("backoff_base_ms", TQ_BACKOFF_MS_MAX + 1), &detail),
                     TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks[0].backoff_base_ms: out of range");
    assert_int_equal(dec_task1(KU("backoff_max_ms", TQ_BACKOFF_MS_MAX + 1), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_task1(KF("backoff_factor", 0.5), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].backoff_factor: out of range (0 or 1..1000)");
    assert_int_equal(dec_task1(KF("backoff_factor", 1000.5), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_task1(KU("backoff_factor", 1001), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_task1(KF("backoff_factor", NAN), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].backoff_factor: not a number");
    assert_int_equal(dec_task1(KF("backoff_factor", INFINITY), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_task1(KF("backoff_factor", -2.0), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KI("backoff_factor", -2), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KS("backoff_factor", "2"), NULL), TASKQ_EPROTO);

    assert_int_equal(dec_task1(KS("jitter", "random"), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].jitter: unknown jitter (equal, full or none)");
    assert_int_equal(dec_task1(KS("jitter", "Equal"), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KU("jitter", 0), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KS("jitter", "full"), NULL), TASKQ_OK);

    static const char *const bad_patterns[] = {"a,,b", ",a", "a,", "a b", "http.4*x", "**",
                                               "a-b", "*x", " ", "é"};
    for (size_t i = 0; i < sizeof bad_patterns / sizeof bad_patterns[0]; i++) {
        if (dec_task1(KS("retry_on", bad_patterns[i]), &detail) != TASKQ_ENAME)
            fail_msg("retry_on \"%s\" accepted", bad_patterns[i]);
        assert_string_equal(detail, "SUBMIT tasks[0].retry_on: invalid pattern list");
    }
    assert_int_equal(dec_task1(KS("no_retry_on", "a,,b"), &detail), TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT tasks[0].no_retry_on: invalid pattern list");
    assert_int_equal(dec_task1(KS("no_retry_on", p513), NULL), TASKQ_ETOOBIG);
    p513[512] = '\0';
    assert_int_equal(dec_task1(KS("no_retry_on", p513), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KS("retry_on", "*,http.4*,A_b.9"), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KB("retry_on", true), NULL), TASKQ_EPROTO);
    /* the second task of a batch is named in the detail */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_kv(&pk, KU("req", 1));
    proto_pack_key(&pk, "tasks");
    msgpack_pack_array(&pk, 4);
    for (int i = 0; i < 4; i++) {
        msgpack_pack_map(&pk, 3);
        proto_pack_key(&pk, "id");
        pack_id(&pk, &ID1);
        pack_kv(&pk, KS("name", "x"));
        pack_kv(&pk, KS("queue", i == 3 ? "a/b" : "ok"));
    }
    assert_int_equal(dec(PROTO_SUBMIT, sb.data, sb.size, &detail), TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT tasks[3].queue: invalid character");
    msgpack_sbuffer_destroy(&sb);
}

static void test_round_trip_ack_hello_error(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;

    uint32_t codes[3] = {0, 0, TASKQ_ENOQUEUE};
    proto_str_t queues[3] = {proto_str("default"), proto_str("media"), proto_str("")};
    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.req = 2;
    m.u.submit_ack.ncodes = 3;
    m.u.submit_ack.codes = codes;
    m.u.submit_ack.nqueues = 3;
    m.u.submit_ack.queues = queues;
    m.u.submit_ack.soft = true;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit_ack.nqueues, 3);
    assert_str(d.u.submit_ack.queues[0], "default");
    assert_str(d.u.submit_ack.queues[1], "media");
    assert_str(d.u.submit_ack.queues[2], "");
    assert_int_equal(d.u.submit_ack.codes[2], TASKQ_ENOQUEUE);
    assert_true(d.u.submit_ack.soft);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* queues must be one per code, or none (an older broker) */
    m.u.submit_ack.nqueues = 2;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.submit_ack.nqueues = 0;
    m.u.submit_ack.soft = false;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_SUBMIT_ACK, sb.data, sb.size, &d, NULL), TASKQ_OK);
    assert_int_equal(d.u.submit_ack.nqueues, 0);
    assert_false(d.u.submit_ack.soft);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* hand-made: 1 code but 2 queues; a bad queue name */
    static const uint8_t ack2[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e', 's',
                                   0x91, 0x00, 0xa6, 'q', 'u', 'e', 'u', 'e', 's', 0x92, 0xa1,
                                   'a', 0xa1, 'b'};
    const char *detail;
    assert_int_equal(dec(PROTO_SUBMIT_ACK, ack2, sizeof ack2, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK queues: not one per code");
    static const uint8_t ackbad[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                     's', 0x91, 0x00, 0xa6, 'q', 'u', 'e', 'u', 'e', 's', 0x91,
                                     0xa1, 'A'};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, ackbad, sizeof ackbad, &detail), TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT_ACK queues[0]: invalid character");
    static const uint8_t acksoft[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                      's', 0x90, 0xa4, 's', 'o', 'f', 't', 0x01};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, acksoft, sizeof acksoft, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK soft: not a boolean");

    /* HELLO queues and strict */
    proto_str_t qn[3] = {proto_str("critical"), proto_str("default"), proto_str("low")};
    uint32_t qw[3] = {6, 3, TQ_WEIGHT_MAX};
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str("node-a.1");
    m.u.hello.host = proto_str("node-a");
    m.u.hello.pid = 1;
    m.u.hello.slots = 2;
    m.u.hello.nqueues = 3;
    m.u.hello.queue_names = qn;
    m.u.hello.queue_weights = qw;
    m.u.hello.strict = true;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.hello.nqueues, 3);
    assert_str(d.u.hello.queue_names[0], "critical");
    assert_str(d.u.hello.queue_names[2], "low");
    assert_int_equal(d.u.hello.queue_weights[0], 6);
    assert_int_equal(d.u.hello.queue_weights[2], TQ_WEIGHT_MAX);
    assert_true(d.u.hello.strict);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* encoder limits */
    msgpack_sbuffer_init(&sb);
    qw[1] = 0;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    qw[1] = TQ_WEIGHT_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    qw[1] = 3;
    qn[1] = proto_str("low");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL); /* duplicate */
    qn[1] = proto_str("Default");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    qn[1] = proto_str("default");
    m.u.hello.nqueues = TQ_QUEUES_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.hello.nqueues = 0;
    m.u.hello.strict = false;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    assert_int_equal((uint8_t)sb.data[0], 0x85); /* as before issue 6 */
    msgpack_sbuffer_destroy(&sb);
    /* decoder: hand-made queue lists */
    static const uint8_t q_ok[] = {0x92, 0x92, 0xa1, 'a', 0x06, 0x92, 0xa1, 'b', 0x01};
    assert_int_equal(dec_hello_queues(q_ok, sizeof q_ok, NULL), TASKQ_OK);
    static const uint8_t q_empty[] = {0x90};
    assert_int_equal(dec_hello_queues(q_empty, sizeof q_empty, NULL), TASKQ_OK);
    static const uint8_t q_w0[] = {0x91, 0x92, 0xa1, 'a', 0x00};
    assert_int_equal(dec_hello_queues(q_w0, sizeof q_w0, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "HELLO queues[0].weight: zero");
    static const uint8_t q_wbig[] = {0x91, 0x92, 0xa1, 'a', 0xcd, 0x03, 0xe9}; /* 1001 */
    assert_int_equal(dec_hello_queues(q_wbig, sizeof q_wbig, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "HELLO queues[0].weight: out of range");
    static const uint8_t q_wneg[] = {0x91, 0x92, 0xa1, 'a', 0xff};
    assert_int_equal(dec_hello_queues(q_wneg, sizeof q_wneg, NULL), TASKQ_EPROTO);
    static const uint8_t q_name[] = {0x91, 0x92, 0xa1, 'A', 0x01};
    assert_int_equal(dec_hello_queues(q_name, sizeof q_name, &detail), TASKQ_ENAME);
    assert_string_equal(detail, "HELLO queues[0].name: invalid character");
    static const uint8_t q_noname[] = {0x91, 0x92, 0xa0, 0x01};
    assert_int_equal(dec_hello_queues(q_noname, sizeof q_noname, &detail), TASKQ_ENAME);
    assert_string_equal(detail, "HELLO queues[0].name: empty");
    static const uint8_t q_dup[] = {0x92, 0x92, 0xa1, 'a', 0x01, 0x92, 0xa1, 'a', 0x02};
    assert_int_equal(dec_hello_queues(q_dup, sizeof q_dup, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "HELLO queues[1].name: duplicate queue");
    static const uint8_t q_pair[] = {0x91, 0x93, 0xa1, 'a', 0x01, 0x01};
    assert_int_equal(dec_hello_queues(q_pair, sizeof q_pair, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "HELLO queues[0]: not a [name, weight] pair");
    static const uint8_t q_map[] = {0x80};
    assert_int_equal(dec_hello_queues(q_map, sizeof q_map, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "HELLO queues: not an array");
    uint8_t q65[3 + 65 * 4];
    q65[0] = 0xdc, q65[1] = 0, q65[2] = 65;
    for (int i = 0; i < 65; i++) {
        q65[3 + 4 * i] = 0x92, q65[4 + 4 * i] = 0xa1;
        q65[5 + 4 * i] = (uint8_t)('0' + i % 10), q65[6 + 4 * i] = 1;
    }
    assert_int_equal(dec_hello_queues(q65, sizeof q65, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "HELLO queues: too many elements");

    /* ERROR: the BUSY details */
    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = 5;
    m.u.error.code = TASKQ_EBUSY;
    m.u.error.message = proto_str("queue media is full (depth 100, limit 100)");
    m.u.error.queue = proto_str("media");
    m.u.error.depth = 100;
    m.u.error.limit = 100;
    m.u.error.retry_after_ms = TQ_BUSY_RETRY_AFTER_MS;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.error.code, TASKQ_EBUSY);
    assert_str(d.u.error.queue, "media");
    assert_int_equal(d.u.error.depth, 100);
    assert_int_equal(d.u.error.limit, 100);
    assert_int_equal(d.u.error.retry_after_ms, TQ_BUSY_RETRY_AFTER_MS);
    assert_int_equal((uint8_t)sb.data[0], 0x87);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* broker-wide: queue "" */
    m.u.error.queue = proto_str("");
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.error.queue.len, 0);
    assert_int_equal(d.u.error.depth, 100);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* only with EBUSY, and only when given */
    m.u.error.code = TASKQ_EINVAL;
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x83);
    assert_int_equal(d.u.error.depth, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.code = TASKQ_EBUSY;
    m.u.error.message = proto_str("busy");
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x83);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.error.queue = proto_str("Q!");
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.error.queue = proto_str("q");
    m.u.error.retry_after_ms = -1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    static const uint8_t errbad[] = {0x84, 0xa3, 'r', 'e', 'q', 0x01, 0xa4, 'c', 'o', 'd', 'e',
                                     0x09, 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e', 0xa0,
                                     0xa5, 'd', 'e', 'p', 't', 'h', 0xa1, '1'};
    assert_int_equal(dec(PROTO_ERROR, errbad, sizeof errbad, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "ERROR depth: not an unsigned integer");
}

static void test_round_trip_done_failure(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;

    proto_msg_init(&m, PROTO_DONE);
    assert_int_equal(m.u.done.retry_delay_ms, -1);
    assert_int_equal(m.u.done.policy.jitter, -1);
    m.u.done.id = ID1;
    m.u.done.attempt = 3;
    m.u.done.ok = false;
    m.u.done.error = proto_str("HTTP 404 from upstream");
    m.u.done.code = proto_str("http.404");
    m.u.done.permanent = true;
    m.u.done.retry_delay_ms = 0; /* explicit: retry at once */
    m.u.done.rate_limited_ms = 1500;
    m.u.done.policy.max_attempts = 2;
    m.u.done.policy.backoff_base_ms = 100;
    m.u.done.policy.backoff_factor = 1;
    m.u.done.policy.backoff_max_ms = 100;
    m.u.done.policy.jitter = PROTO_JITTER_NONE;
    m.u.done.policy.retry_on = proto_str("http.5*");
    m.u.done.policy.no_retry_on = proto_str("http.4*");
    m.u.done.child_pid = 10;
    m.u.done.started_at = 5;
    round_trip(&m, &d, &sb);
    assert_false(d.u.done.ok);
    assert_str(d.u.done.code, "http.404");
    assert_true(d.u.done.permanent);
    assert_int_equal(d.u.done.retry_delay_ms, 0);
    assert_int_equal(d.u.done.rate_limited_ms, 1500);
    assert_int_equal(d.u.done.policy.max_attempts, 2);
    assert_int_equal(d.u.done.policy.backoff_base_ms, 100);
    assert_true(d.u.done.policy.backoff_factor == 1);
    assert_int_equal(d.u.done.policy.backoff_max_ms, 100);
    assert_int_equal(d.u.done.policy.jitter, PROTO_JITTER_NONE);
    assert_str(d.u.done.policy.retry_on, "http.5*");
    assert_str(d.u.done.policy.no_retry_on, "http.4*");
    assert_int_equal(d.u.done.child_pid, 10);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* nothing given: the pre-issue-6 layout; the decoder fills the default code */
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = ID1;
    m.u.done.attempt = 1;
    m.u.done.error = proto_str("boom");
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x87);
    assert_str(d.u.done.code, "taskq.error");
    assert_false(d.u.done.permanent);
    assert_int_equal(d.u.done.retry_delay_ms, -1);
    assert_int_equal(d.u.done.rate_limited_ms, 0);
    assert_int_equal(d.u.done.policy.jitter, -1);
    assert_int_equal(d.u.done.policy.max_attempts, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* the default code is not written: crash with retry */
    m.u.done.retry = true;
    m.u.done.code = proto_str("taskq.crash");
    m.u.done.error = proto_str("child killed by signal 9");
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x87);
    assert_str(d.u.done.code, "taskq.crash");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.done.retry = false;
    m.u.done.code = proto_str("taskq.timeout");
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x88);
    assert_str(d.u.done.code, "taskq.timeout");
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    decode_vec("done_error.hex", &d);
    assert_str(d.u.done.code, "taskq.crash"); /* retry = true */
    assert_int_equal(d.u.done.retry_delay_ms, -1);
    proto_msg_clear(&d);
    decode_vec("done_ok.hex", &d);
    assert_int_equal(d.u.done.code.len, 0);
    assert_int_equal(d.u.done.retry_delay_ms, -1);
    proto_msg_clear(&d);

    /* the failure fields are not written with ok */
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = ID1;
    m.u.done.ok = true;
    m.u.done.code = proto_str("x");
    m.u.done.permanent = true;
    m.u.done.rate_limited_ms = 5;
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x86);
    assert_false(d.u.done.permanent);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* encoder limits */
    proto_msg_init(&m, PROTO_DONE);
    m.u.done.id = ID1;
    m.u.done.error = proto_str("e");
    msgpack_sbuffer_init(&sb);
    m.u.done.code = proto_str("bad code");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.code = proto_str("a-b");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.code = proto_str("ok.code");
    m.u.done.retry_delay_ms = TQ_BACKOFF_MS_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.retry_delay_ms = -2;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.retry_delay_ms = -1;
    m.u.done.rate_limited_ms = -1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.rate_limited_ms = 0;
    m.u.done.policy.max_attempts = TQ_ATTEMPTS_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.policy.max_attempts = 0;
    m.u.done.policy.jitter = 3;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.policy.jitter = -1;
    m.u.done.policy.backoff_factor = 0.5;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.policy.backoff_factor = NAN;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.policy.backoff_factor = 0;
    m.u.done.policy.retry_on = proto_str("a,,b");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.done.policy.retry_on = proto_str("");
    assert_int_equal(sb.size, 0);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    msgpack_sbuffer_destroy(&sb);

    /* decoder: hand-made failure fields */
    const char *detail;
    assert_int_equal(dec_done_fail(KS("code", "a b"), &detail), TASKQ_ENAME);
    assert_string_equal(detail, "DONE code: invalid character");
    assert_int_equal(dec_done_fail(KS("code", ""), &detail), TASKQ_ENAME);
    assert_string_equal(detail, "DONE code: empty");
    char c65[66];
    memset(c65, 'c', 65);
    c65[65] = '\0';
    assert_int_equal(dec_done_fail(KS("code", c65), NULL), TASKQ_ETOOBIG);
    assert_int_equal(dec_done_fail(KU("code", 1), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_done_fail(KU("permanent", 1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "DONE permanent: not a boolean");
    assert_int_equal(dec_done_fail(KI("retry_delay_ms", -1), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_done_fail(KU("retry_delay_ms", TQ_BACKOFF_MS_MAX + 1), NULL),
                     TASKQ_ETOOBIG);
    assert_int_equal(dec_done_fail(KU("rate_limited_ms", TQ_BACKOFF_MS_MAX + 1), NULL),
                     TASKQ_ETOOBIG);
    assert_int_equal(dec_done_fail(KS("rate_limited_ms", "1"), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_done_fail(KU("policy", 1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "DONE policy: not a map");
    static const uint8_t pol_max[] = {0x81, 0xac, 'm', 'a', 'x', '_', 'a', 't', 't', 'e', 'm',
                                      'p', 't', 's', 0x65}; /* 101 */
    assert_int_equal(dec_done_fail(KR("policy", pol_max, sizeof pol_max), &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "DONE policy.max_attempts: out of range");
    static const uint8_t pol_jit[] = {0x81, 0xa6, 'j', 'i', 't', 't', 'e', 'r', 0xa1, 'x'};
    assert_int_equal(dec_done_fail(KR("policy", pol_jit, sizeof pol_jit), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "DONE policy.jitter: unknown jitter (equal, full or none)");
    static const uint8_t pol_key[] = {0x81, 0x01, 0x01};
    assert_int_equal(dec_done_fail(KR("policy", pol_key, sizeof pol_key), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "DONE policy: map key is not a string");
    static const uint8_t pol_empty[] = {0x80};
    assert_int_equal(dec_done_fail(KR("policy", pol_empty, 1), NULL), TASKQ_OK);
}

static void test_round_trip_record_policy(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_task_rec_t r = sample_rec();
    r.queue = proto_str("media");
    r.priority = 9;
    r.failures = 2;
    r.code = proto_str("taskq.lost");
    r.due_at = 1732536000000LL;
    r.expires_at = 1732539600000LL;
    r.schedule = proto_str("nightly.report");
    for (int s = 0; s < TASKQ_NSTATES; s++) {
        r.state = s;
        r.has_result = s == TASKQ_STATE_SUCCEEDED;
        proto_msg_init(&m, PROTO_STATUS_REPLY);
        m.u.status_reply.task = r;
        round_trip(&m, &d, &sb);
        const proto_task_rec_t *t = &d.u.status_reply.task;
        assert_int_equal(t->state, s);
        assert_str(t->queue, "media");
        assert_int_equal(t->priority, 9);
        assert_int_equal(t->failures, 2);
        assert_str(t->code, "taskq.lost");
        assert_int_equal(t->due_at, 1732536000000LL);
        assert_int_equal(t->expires_at, 1732539600000LL);
        assert_str(t->schedule, "nightly.report");
        proto_msg_clear(&d);
        msgpack_sbuffer_destroy(&sb);
    }
    /* encoder limits */
    msgpack_sbuffer_init(&sb);
    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.task = r;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    sb.size = 0;
    m.u.result.task.state = TASKQ_NSTATES;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.state = TASKQ_STATE_EXPIRED;
    m.u.result.task.priority = TQ_PRIORITY_MAX + 1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.priority = -1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.priority = 0;
    m.u.result.task.queue = proto_str("Q");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.queue = proto_str("");
    m.u.result.task.code = proto_str("a b");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.code = proto_str("");
    m.u.result.task.due_at = -1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.due_at = 0;
    m.u.result.task.schedule = proto_str("a b");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.result.task.schedule = proto_str("");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    msgpack_sbuffer_destroy(&sb);

    /* a record from a broker before issue 6: the new keys are optional */
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_kv(&pk, KU("req", 1));
    proto_pack_key(&pk, "task");
    msgpack_pack_map(&pk, 12);
    proto_pack_key(&pk, "id");
    pack_id(&pk, &ID1);
    pack_kv(&pk, KS("name", "x"));
    pack_kv(&pk, KS("state", "expired"));
    pack_kv(&pk, KU("attempts", 0));
    pack_kv(&pk, KU("max_attempts", 3));
    pack_kv(&pk, KS("worker", ""));
    pack_kv(&pk, KI("child_pid", 0));
    pack_kv(&pk, KU("submitted_at", 1));
    pack_kv(&pk, KU("started_at", 0));
    pack_kv(&pk, KU("finished_at", 2));
    proto_pack_key(&pk, "progress");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    proto_pack_str(&pk, proto_str(""));
    pack_kv(&pk, KS("error", ""));
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_STATUS_REPLY, sb.data, sb.size, &d, NULL), TASKQ_OK);
    assert_int_equal(d.u.status_reply.task.state, TASKQ_STATE_EXPIRED);
    assert_int_equal(d.u.status_reply.task.priority, TQ_DEFAULT_PRIORITY);
    assert_int_equal(d.u.status_reply.task.queue.len, 0);
    assert_int_equal(d.u.status_reply.task.failures, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* an unknown state name fails even in a RESULT with only an id */
    static const char *const bad_state[] = {"Queued", "unknown", "done", ""};
    for (size_t i = 0; i < 4; i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pack_kv(&pk, KU("req", 1));
        pack_kv(&pk, KU("code", TASKQ_ENOTFOUND));
        proto_pack_key(&pk, "task");
        msgpack_pack_map(&pk, 2);
        proto_pack_key(&pk, "id");
        pack_id(&pk, &ID1);
        pack_kv(&pk, KS("state", bad_state[i]));
        const char *detail;
        taskq_err_t e = dec(PROTO_RESULT, sb.data, sb.size, &detail);
        if (bad_state[i][0]) {
            assert_int_equal(e, TASKQ_EPROTO);
            assert_string_equal(detail, "RESULT task.state: unknown state");
        } else {
            assert_int_equal(e, TASKQ_OK);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    /* new record fields with wrong types */
    static const kv_t bad_rec[] = {
        {.key = "queue", .t = V_STR, .s = "Q"},   {.key = "priority", .t = V_U64, .u = 10},
        {.key = "failures", .t = V_I64, .i = -1}, {.key = "code", .t = V_STR, .s = "a b"},
        {.key = "due_at", .t = V_STR, .s = "1"},  {.key = "expires_at", .t = V_I64, .i = -1},
        {.key = "schedule", .t = V_STR, .s = "a b"},
    };
    for (size_t i = 0; i < sizeof bad_rec / sizeof bad_rec[0]; i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pack_kv(&pk, KU("req", 1));
        pack_kv(&pk, KU("code", TASKQ_ENOTFOUND));
        proto_pack_key(&pk, "task");
        msgpack_pack_map(&pk, 2);
        proto_pack_key(&pk, "id");
        pack_id(&pk, &ID1);
        pack_kv(&pk, bad_rec[i]);
        const char *detail;
        if (dec(PROTO_RESULT, sb.data, sb.size, &detail) == TASKQ_OK)
            fail_msg("record field %s accepted", bad_rec[i].key);
        assert_non_null(strstr(detail, bad_rec[i].key));
        msgpack_sbuffer_destroy(&sb);
    }
}

static void test_admin(void **state)
{
    (void)state;
    /* params: {"key": "task:img.resize", "rate": 10.5, "burst": 20,
     *          "nested": {"list": [1, {"deep": true}], "args": bin}} */
    msgpack_sbuffer params;
    msgpack_packer pk;
    msgpack_sbuffer_init(&params);
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_kv(&pk, KS("key", "task:img.resize"));
    pack_kv(&pk, KF("rate", 10.5));
    pack_kv(&pk, KU("burst", 20));
    pack_kv(&pk, KN("gone"));
    proto_pack_key(&pk, "nested");
    msgpack_pack_map(&pk, 2);
    proto_pack_key(&pk, "list");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 1);
    pack_kv(&pk, KB("deep", true));
    proto_pack_key(&pk, "args");
    msgpack_pack_bin(&pk, sizeof ARGS);
    msgpack_pack_bin_body(&pk, ARGS, sizeof ARGS);

    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_ADMIN);
    m.u.admin.req = 77;
    m.u.admin.op = proto_str("limit_set");
    m.u.admin.params = (proto_bin_t){(const uint8_t *)params.data, (uint32_t)params.size};
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.admin.req, 77);
    assert_str(d.u.admin.op, "limit_set");
    /* raw bytes: the same value, pointing into the body */
    assert_int_equal(d.u.admin.params.len, params.size);
    assert_memory_equal(d.u.admin.params.ptr, params.data, params.size);
    assert_true((const char *)d.u.admin.params.ptr > sb.data &&
                (const char *)d.u.admin.params.ptr < sb.data + sb.size);
    const msgpack_object *p = d.u.admin.params_obj;
    assert_non_null(p);
    assert_int_equal(p->type, MSGPACK_OBJECT_MAP);
    proto_str_t s;
    assert_int_equal(proto_obj_str(p, "key", TQ_LIMIT_KEY_MAX, &s), TASKQ_OK);
    assert_str(s, "task:img.resize");
    assert_int_equal(proto_obj_str(p, "key", 5, &s), TASKQ_EPROTO);
    double f = 0;
    assert_int_equal(proto_obj_f64(p, "rate", &f), TASKQ_OK);
    assert_true(f == 10.5);
    assert_int_equal(proto_obj_f64(p, "burst", &f), TASKQ_OK); /* an int reads as float */
    assert_true(f == 20);
    uint64_t u = 0;
    assert_int_equal(proto_obj_u64(p, "burst", &u), TASKQ_OK);
    assert_int_equal(u, 20);
    assert_int_equal(proto_obj_u64(p, "rate", &u), TASKQ_EPROTO);
    assert_int_equal(proto_obj_u64(p, "key", &u), TASKQ_EPROTO);
    u = 99;
    assert_int_equal(proto_obj_u64(p, "max_running", &u), TASKQ_ENOTFOUND);
    assert_int_equal(u, 99); /* untouched */
    assert_int_equal(proto_obj_u64(p, "gone", &u), TASKQ_ENOTFOUND); /* nil */
    assert_non_null(proto_obj_get(p, "gone"));
    const msgpack_object *n = proto_obj_get(p, "nested");
    assert_non_null(n);
    const msgpack_object *l = proto_obj_get(n, "list");
    assert_non_null(l);
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    bool bv = false;
    assert_int_equal(proto_obj_bool(&l->via.array.ptr[1], "deep", &bv), TASKQ_OK);
    assert_true(bv);
    proto_bin_t bin;
    assert_int_equal(proto_obj_bin(n, "args", TQ_ARGS_MAX, &bin), TASKQ_OK);
    assert_int_equal(bin.len, sizeof ARGS);
    assert_memory_equal(bin.ptr, ARGS, sizeof ARGS);
    assert_int_equal(proto_obj_bin(n, "args", 2, &bin), TASKQ_EPROTO);
    assert_int_equal(proto_obj_bin(n, "list", 100, &bin), TASKQ_EPROTO);
    assert_null(proto_obj_get(l, "x")); /* not a map */
    assert_null(proto_obj_get(NULL, "x"));
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* empty params = {} */
    m.u.admin.params = (proto_bin_t){NULL, 0};
    m.u.admin.op = proto_str("queues");
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.admin.params_obj->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(d.u.admin.params_obj->via.map.size, 0);
    assert_int_equal(d.u.admin.params.len, 1);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* encoder: op and params checks */
    msgpack_sbuffer_init(&sb);
    m.u.admin.op = proto_str("");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.admin.op = proto_str("bad op");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    char op65[66];
    memset(op65, 'o', 65);
    op65[65] = '\0';
    m.u.admin.op = proto_str(op65);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.admin.op = proto_str("queues");
    static const uint8_t arr[] = {0x91, 0x01};
    m.u.admin.params = (proto_bin_t){arr, sizeof arr}; /* not a map */
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    static const uint8_t two[] = {0x80, 0x80};
    m.u.admin.params = (proto_bin_t){two, sizeof two}; /* two values */
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    static const uint8_t trunc[] = {0x81, 0xa1, 'k'};
    m.u.admin.params = (proto_bin_t){trunc, sizeof trunc};
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    /* {"": [[...[nil]...]]}: a map and 14 arrays nest 15 deep, 16 in the body */
    uint8_t deep[TQ_MAX_DEPTH + 2];
    deep[0] = 0x81, deep[1] = 0xa0;
    memset(deep + 2, 0x91, TQ_MAX_DEPTH - 2);
    deep[TQ_MAX_DEPTH] = 0xc0;
    m.u.admin.params = (proto_bin_t){deep, TQ_MAX_DEPTH + 1}; /* depth 15: fits */
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_ADMIN, sb.data, sb.size, &d, NULL), TASKQ_OK);
    proto_msg_clear(&d);
    sb.size = 0;
    memset(deep + 2, 0x91, TQ_MAX_DEPTH - 1);
    deep[TQ_MAX_DEPTH + 1] = 0xc0;
    m.u.admin.params = (proto_bin_t){deep, TQ_MAX_DEPTH + 2}; /* 15 arrays: 17 in the body */
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);

    /* decoder: hostile and wrong params */
    const char *detail;
    static const uint8_t a_ok[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'o', 'p', 0xa1, 'x',
                                   0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0x81, 0xa1, 'k', 0x01};
    assert_int_equal(dec(PROTO_ADMIN, a_ok, sizeof a_ok, NULL), TASKQ_OK);
    uint8_t b[sizeof a_ok + 8];
    memcpy(b, a_ok, sizeof a_ok);
    b[18] = 0x92; /* params ["k", 1]: not a map */
    assert_int_equal(dec(PROTO_ADMIN, b, sizeof a_ok, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "ADMIN params: not a map");
    /* a map declaring 2^32-1 pairs: refused by the pre-check, nothing allocated */
    static const uint8_t a_huge[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'o', 'p', 0xa1, 'x',
                                     0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0xdf, 0xff, 0xff, 0xff,
                                     0xff, 0xa1, 'k', 0x01};
    assert_int_equal(dec(PROTO_ADMIN, a_huge, sizeof a_huge, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "ADMIN body: not exactly one valid msgpack value");
    /* a map declaring TQ_MAX_ARRAY + 1 pairs that are all there */
    size_t np = TQ_MAX_ARRAY + 1;
    size_t blen = 18 + 5 + np * 2;
    uint8_t *big = malloc(blen);
    memcpy(big, a_ok, 18);
    big[18] = 0xdf, big[19] = (uint8_t)(np >> 24), big[20] = (uint8_t)(np >> 16);
    big[21] = (uint8_t)(np >> 8), big[22] = (uint8_t)np;
    memset(big + 23, 0xc0, np * 2); /* nil: nil pairs */
    assert_int_equal(dec(PROTO_ADMIN, big, blen, NULL), TASKQ_ETOOBIG);
    free(big);
    memcpy(b, a_ok, sizeof a_ok);
    b[10] = '/'; /* op "/" */
    assert_int_equal(dec(PROTO_ADMIN, b, sizeof a_ok, &detail), TASKQ_ENAME);
    assert_string_equal(detail, "ADMIN op: invalid character");
    static const uint8_t a_noop[] = {0x82, 0xa3, 'r', 'e', 'q', 0x01, 0xa6, 'p', 'a', 'r', 'a',
                                     'm', 's', 0x80};
    assert_int_equal(dec(PROTO_ADMIN, a_noop, sizeof a_noop, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "ADMIN op: missing");
    static const uint8_t a_intop[] = {0x82, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'o', 'p', 0x05};
    assert_int_equal(dec(PROTO_ADMIN, a_intop, sizeof a_intop, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "ADMIN op: not a string");
    /* absent params: an empty map */
    static const uint8_t a_nop[] = {0x82, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'o', 'p', 0xa1, 'x'};
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_ADMIN, a_nop, sizeof a_nop, &d, NULL), TASKQ_OK);
    assert_non_null(d.u.admin.params_obj);
    assert_int_equal(d.u.admin.params_obj->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(d.u.admin.params_obj->via.map.size, 0);
    assert_int_equal(d.u.admin.params.len, 0);
    assert_null(proto_obj_get(d.u.admin.params_obj, "x"));
    proto_msg_clear(&d);
    /* a repeated key: the first wins, for the object and the raw bytes */
    static const uint8_t a_rep[] = {0x84, 0xa3, 'r', 'e', 'q', 0x01, 0xa2, 'o', 'p', 0xa1, 'x',
                                    0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0x81, 0xa1, 'k', 0x01,
                                    0xa6, 'p', 'a', 'r', 'a', 'm', 's', 0x80};
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_ADMIN, a_rep, sizeof a_rep, &d, NULL), TASKQ_OK);
    assert_int_equal(d.u.admin.params.len, 4);
    assert_int_equal(d.u.admin.params_obj->via.map.size, 1);
    proto_msg_clear(&d);

    /* ADMIN_REPLY: any value, nested */
    msgpack_sbuffer data;
    msgpack_sbuffer_init(&data);
    msgpack_packer_init(&pk, &data, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "queues");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    pack_kv(&pk, KS("name", "default"));
    pack_kv(&pk, KB("paused", false));
    proto_pack_key(&pk, "counts");
    msgpack_pack_map(&pk, TASKQ_NSTATES);
    for (int st = 0; st < TASKQ_NSTATES; st++)
        pack_kv(&pk, KU(taskq_state_name(st), (uint64_t)st * 10));
    proto_msg_init(&m, PROTO_ADMIN_REPLY);
    m.u.admin_reply.req = 78;
    m.u.admin_reply.data = (proto_bin_t){(const uint8_t *)data.data, (uint32_t)data.size};
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.admin_reply.req, 78);
    assert_int_equal(d.u.admin_reply.data.len, data.size);
    const msgpack_object *q = proto_obj_get(d.u.admin_reply.data_obj, "queues");
    assert_non_null(q);
    assert_int_equal(q->via.array.size, 1);
    const msgpack_object *counts = proto_obj_get(&q->via.array.ptr[0], "counts");
    assert_int_equal(proto_obj_u64(counts, "expired", &u), TASKQ_OK);
    assert_int_equal(u, 70);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* empty data = nil; data may be any value */
    m.u.admin_reply.data = (proto_bin_t){NULL, 0};
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.admin_reply.data_obj->type, MSGPACK_OBJECT_NIL);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.admin_reply.data = (proto_bin_t){arr, sizeof arr};
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.admin_reply.data_obj->type, MSGPACK_OBJECT_ARRAY);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.admin_reply.data = (proto_bin_t){two, sizeof two};
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    static const uint8_t r_nodata[] = {0x81, 0xa3, 'r', 'e', 'q', 0x01};
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_ADMIN_REPLY, r_nodata, sizeof r_nodata, &d, NULL),
                     TASKQ_OK);
    assert_int_equal(d.u.admin_reply.data_obj->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(d.u.admin_reply.data.len, 0);
    proto_msg_clear(&d);

    msgpack_sbuffer_destroy(&data);
    msgpack_sbuffer_destroy(&params);
}

static void test_obj_readers(void **state)
{
    (void)state;
    /* {"s": "abc", "u": 2^64-1, "i": -5, "big": 2^63, "f32": 1.5f, "nan": NaN,
     *  "inf": inf, "b": true, "bin": bin 3, 7: "int key", "s": "second"} */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 11);
    pack_kv(&pk, KS("s", "abc"));
    pack_kv(&pk, KU("u", UINT64_MAX));
    pack_kv(&pk, KI("i", -5));
    pack_kv(&pk, KU("big", (uint64_t)INT64_MAX + 1));
    pack_kv(&pk, KF32("f32", 1.5));
    pack_kv(&pk, KF("nan", NAN));
    pack_kv(&pk, KF("inf", -INFINITY));
    pack_kv(&pk, KB("b", true));
    proto_pack_key(&pk, "bin");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "xyz", 3);
    msgpack_pack_uint8(&pk, 7);
    proto_pack_str(&pk, proto_str("int key"));
    pack_kv(&pk, KS("s", "second"));
    msgpack_zone *z = msgpack_zone_new(1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(proto_precheck(sb.data, sb.size, TQ_MAX_DEPTH), TASKQ_OK);
    assert_int_equal(msgpack_unpack(sb.data, sb.size, &off, z, &o), MSGPACK_UNPACK_SUCCESS);

    proto_str_t s;
    assert_int_equal(proto_obj_str(&o, "s", 3, &s), TASKQ_OK);
    assert_str(s, "abc"); /* the first of a repeated key */
    assert_int_equal(proto_obj_str(&o, "s", 2, &s), TASKQ_EPROTO);
    assert_int_equal(proto_obj_str(&o, "u", 100, &s), TASKQ_EPROTO);
    assert_int_equal(proto_obj_str(&o, "7", 100, &s), TASKQ_ENOTFOUND); /* int keys skipped */
    uint64_t u;
    assert_int_equal(proto_obj_u64(&o, "u", &u), TASKQ_OK);
    assert_true(u == UINT64_MAX);
    assert_int_equal(proto_obj_u64(&o, "i", &u), TASKQ_EPROTO);
    assert_int_equal(proto_obj_u64(&o, "b", &u), TASKQ_EPROTO);
    int64_t i;
    assert_int_equal(proto_obj_i64(&o, "i", &i), TASKQ_OK);
    assert_int_equal(i, -5);
    assert_int_equal(proto_obj_i64(&o, "big", &i), TASKQ_EPROTO);
    assert_int_equal(proto_obj_i64(&o, "f32", &i), TASKQ_EPROTO);
    double f;
    assert_int_equal(proto_obj_f64(&o, "f32", &f), TASKQ_OK);
    assert_true(f == 1.5);
    assert_int_equal(proto_obj_f64(&o, "i", &f), TASKQ_OK);
    assert_true(f == -5);
    assert_int_equal(proto_obj_f64(&o, "nan", &f), TASKQ_EPROTO);
    assert_int_equal(proto_obj_f64(&o, "inf", &f), TASKQ_EPROTO);
    assert_int_equal(proto_obj_f64(&o, "s", &f), TASKQ_EPROTO);
    bool b;
    assert_int_equal(proto_obj_bool(&o, "b", &b), TASKQ_OK);
    assert_true(b);
    assert_int_equal(proto_obj_bool(&o, "u", &b), TASKQ_EPROTO);
    proto_bin_t bin;
    assert_int_equal(proto_obj_bin(&o, "bin", 3, &bin), TASKQ_OK);
    assert_memory_equal(bin.ptr, "xyz", 3);
    assert_int_equal(proto_obj_bin(&o, "s", 3, &bin), TASKQ_EPROTO); /* str is not bin */
    assert_int_equal(proto_obj_bin(&o, "none", 3, &bin), TASKQ_ENOTFOUND);
    /* not a map */
    msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
    assert_int_equal(proto_obj_u64(&nil, "u", &u), TASKQ_ENOTFOUND);
    assert_int_equal(proto_obj_str(NULL, "s", 3, &s), TASKQ_ENOTFOUND);
    msgpack_zone_free(z);
    msgpack_sbuffer_destroy(&sb);

    /* proto_pack_str with a NULL pointer packs "" */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_pack_str(&pk, (proto_str_t){NULL, 5});
    proto_pack_key(&pk, "k");
    assert_int_equal(sb.size, 3);
    assert_memory_equal(sb.data, "\xa0\xa1k", 3);
    msgpack_sbuffer_destroy(&sb);
}

static void test_validators_and_states(void **state)
{
    (void)state;
    assert_true(proto_queue_is_valid("default", 7));
    assert_true(proto_queue_is_valid("a-z_0.9", 7));
    assert_false(proto_queue_is_valid("", 0));
    assert_false(proto_queue_is_valid("A", 1));
    assert_false(proto_queue_is_valid("a:b", 3));
    assert_false(proto_queue_is_valid(NULL, 1));
    char q[TQ_QUEUE_MAX + 1];
    memset(q, 'q', sizeof q);
    assert_true(proto_queue_is_valid(q, TQ_QUEUE_MAX));
    assert_false(proto_queue_is_valid(q, TQ_QUEUE_MAX + 1));
    assert_true(proto_code_is_valid("taskq.crash", 11));
    assert_true(proto_code_is_valid("HTTP_404.x", 10));
    assert_false(proto_code_is_valid("a-b", 3));
    assert_false(proto_code_is_valid("a:b", 3));
    assert_false(proto_code_is_valid("a*", 2));
    assert_false(proto_code_is_valid("", 0));
    char c[TQ_CODE_MAX + 1];
    memset(c, 'c', sizeof c);
    assert_true(proto_code_is_valid(c, TQ_CODE_MAX));
    assert_false(proto_code_is_valid(c, TQ_CODE_MAX + 1));

    static const char *const names[TASKQ_NSTATES] = {"queued", "running", "succeeded",
                                                     "failed", "scheduled", "retrying",
                                                     "revoked", "expired", "pending"};
    for (int s = 0; s < TASKQ_NSTATES; s++) {
        assert_string_equal(taskq_state_name(s), names[s]);
        assert_int_equal(taskq_state_from_name(names[s]), s);
        bool term = s == TASKQ_STATE_SUCCEEDED || s == TASKQ_STATE_FAILED ||
                    s == TASKQ_STATE_REVOKED || s == TASKQ_STATE_EXPIRED;
        assert_int_equal(taskq_state_is_terminal(s) != 0, term);
    }
    assert_string_equal(taskq_state_name(TASKQ_NSTATES), "unknown");
    assert_string_equal(taskq_state_name(-1), "unknown");
    assert_false(taskq_state_is_terminal(-1));
    assert_false(taskq_state_is_terminal(TASKQ_NSTATES));
    assert_int_equal(taskq_state_from_name("unknown"), -1);
    assert_int_equal(taskq_state_from_name("Queued"), -1);
    assert_int_equal(taskq_state_from_name(""), -1);
    assert_int_equal(taskq_state_from_name(NULL), -1);

    assert_string_equal(taskq_err_name(TASKQ_EEXIST), "EEXIST");
    assert_string_equal(taskq_strerror(TASKQ_EEXIST), "already exists");
    assert_string_equal(taskq_err_name(TASKQ_ENOQUEUE), "ENOQUEUE");
    assert_string_equal(taskq_strerror(TASKQ_ENOQUEUE), "unknown queue");
    assert_string_equal(taskq_err_name(TASKQ_EPURGED), "EPURGED");
    assert_string_equal(taskq_strerror(TASKQ_EPURGED), "task record purged after its retention time");
    assert_string_equal(taskq_err_name(TASKQ_ETERMINAL), "ETERMINAL");
    assert_string_equal(taskq_strerror(TASKQ_ETERMINAL), "task already terminal");
    assert_int_equal(TASKQ_EPURGED, 19);
    assert_int_equal(TASKQ_ETERMINAL, 20);
    assert_string_equal(taskq_err_name(TASKQ_ETERMINAL + 1), "EUNKNOWNCODE");
    assert_string_equal(taskq_strerror(TASKQ_ETERMINAL + 1), "unknown error");
    assert_string_equal(proto_type_name(PROTO_ADMIN), "ADMIN");
    assert_string_equal(proto_type_name(PROTO_ADMIN_REPLY), "ADMIN_REPLY");
}

static void test_encode_rejects_policy_fields(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_msg_t m;
    proto_task_spec_t t;
    proto_task_spec_init(&t);
    t.id = ID1;
    t.name = proto_str("x");
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &t;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    sb.size = 0;
#define BAD(stmt, undo)                                                                          \
    do {                                                                                         \
        stmt;                                                                                    \
        if (proto_encode(&m, &sb) != TASKQ_EINVAL)                                               \
            fail_msg("encoded with " #stmt);                                                     \
        assert_int_equal(sb.size, 0);                                                            \
        undo;                                                                                    \
    } while (0)
    BAD(t.queue = proto_str("Media"), t.queue = proto_str(""));
    BAD(t.queue = proto_str("a/b"), t.queue = proto_str(""));
    BAD(t.priority = 10, t.priority = -1);
    BAD(t.priority = -2, t.priority = -1);
    BAD(t.countdown_ms = TQ_ETA_MAX_MS + 1, t.countdown_ms = 0);
    BAD(t.countdown_ms = -1, t.countdown_ms = 0);
    BAD(t.eta_at = -1, t.eta_at = 0);
    BAD(t.expires_in_ms = TQ_ETA_MAX_MS + 1, t.expires_in_ms = 0);
    BAD(t.expires_at = -1, t.expires_at = 0);
    BAD(t.policy.backoff_base_ms = TQ_BACKOFF_MS_MAX + 1, t.policy.backoff_base_ms = 0);
    BAD(t.policy.backoff_max_ms = -1, t.policy.backoff_max_ms = 0);
    BAD(t.policy.backoff_factor = 0.99, t.policy.backoff_factor = 0);
    BAD(t.policy.backoff_factor = 1000.01, t.policy.backoff_factor = 0);
    BAD(t.policy.backoff_factor = NAN, t.policy.backoff_factor = 0);
    BAD(t.policy.jitter = 3, t.policy.jitter = -1);
    BAD(t.policy.jitter = -2, t.policy.jitter = -1);
    BAD(t.policy.retry_on = proto_str("a,"), t.policy.retry_on = proto_str(""));
    BAD(t.policy.no_retry_on = proto_str("a b"), t.policy.no_retry_on = proto_str(""));
#undef BAD
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- task lifecycle (issue 7) ------------------------------------------ */

#define IDBIN 0xc4, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16

static const taskq_id_t ID3 = {{0x01, 0x93, 0x8a, 0x6e, 0x7b, 0x2c, 0x7d, 0x00, 0x80, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x03}};
static const taskq_id_t GID = {{0x01, 0x93, 0x8a, 0x6e, 0x7b, 0x2c, 0x7d, 0x00, 0x80, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x99}};

static void test_round_trip_submit_lifecycle(void **state)
{
    (void)state;
    /* a chord: two members of GID, a callback; a chain child of the callback */
    proto_task_spec_t t[4];
    for (int i = 0; i < 4; i++) {
        proto_task_spec_init(&t[i]);
        t[i].name = proto_str("wf.x");
        t[i].id = ID1;
        t[i].id.b[14] = (uint8_t)(0x10 + i);
    }
    t[0].has_group = true;
    t[0].group = GID;
    t[0].index = 0; /* written: it is a member */
    t[0].unique_key = proto_str("user:42 ~!");
    t[0].unique_until = 1;
    t[0].unique_for_ms = TQ_TTL_MAX_MS;
    t[0].result_ttl_ms = 1;
    t[1].has_group = true;
    t[1].group = GID;
    t[1].index = UINT32_MAX;
    t[1].unique = true;
    t[2].has_callback_of = true;
    t[2].callback_of = GID;
    t[3].has_parent = true;
    t[3].parent = t[2].id;
    t[3].immutable = true;
    t[3].index = 7; /* without a group: the codec carries it, the broker judges */
    proto_group_t g[2] = {{.id = GID, .size = 2, .on_fail = 1},
                          {.id = ID3, .size = 0, .on_fail = 0}};
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.req = 5;
    m.u.submit.ntasks = 4;
    m.u.submit.tasks = t;
    m.u.submit.ngroups = 2;
    m.u.submit.groups = g;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit.ntasks, 4);
    const proto_task_spec_t *a = d.u.submit.tasks;
    assert_true(a[0].has_group);
    assert_id(&a[0].group, &GID);
    assert_int_equal(a[0].index, 0);
    assert_str(a[0].unique_key, "user:42 ~!");
    assert_int_equal(a[0].unique_until, 1);
    assert_int_equal(a[0].unique_for_ms, TQ_TTL_MAX_MS);
    assert_int_equal(a[0].result_ttl_ms, 1);
    assert_false(a[0].unique);
    assert_false(a[0].has_parent || a[0].has_callback_of || a[0].immutable);
    assert_true(a[1].unique);
    assert_int_equal(a[1].index, UINT32_MAX);
    assert_int_equal(a[1].unique_key.len, 0);
    assert_int_equal(a[1].unique_until, 0);
    assert_true(a[2].has_callback_of);
    assert_id(&a[2].callback_of, &GID);
    assert_false(a[2].has_group);
    assert_true(a[3].has_parent);
    assert_id(&a[3].parent, &t[2].id);
    assert_true(a[3].immutable);
    assert_int_equal(a[3].index, 7);
    assert_int_equal(d.u.submit.ngroups, 2);
    assert_id(&d.u.submit.groups[0].id, &GID);
    assert_int_equal(d.u.submit.groups[0].size, 2);
    assert_int_equal(d.u.submit.groups[0].on_fail, 1);
    assert_id(&d.u.submit.groups[1].id, &ID3);
    assert_int_equal(d.u.submit.groups[1].size, 0);
    assert_int_equal(d.u.submit.groups[1].on_fail, 0);
    /* the body is {req, tasks, groups} */
    assert_int_equal((uint8_t)sb.data[0], 0x83);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* no lifecycle field: no new key, no "groups" (as before issue 7) */
    proto_task_spec_t plain;
    proto_task_spec_init(&plain);
    plain.id = ID1;
    plain.name = proto_str("x");
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &plain;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    assert_int_equal((uint8_t)sb.data[0], 0x82);
    assert_int_equal((uint8_t)sb.data[13], 0x83);
    msgpack_sbuffer_destroy(&sb);
    decode_vec("submit_one.hex", &m);
    assert_false(m.u.submit.tasks[0].has_parent || m.u.submit.tasks[0].has_group ||
                 m.u.submit.tasks[0].has_callback_of || m.u.submit.tasks[0].immutable ||
                 m.u.submit.tasks[0].unique);
    assert_int_equal(m.u.submit.tasks[0].unique_key.len + m.u.submit.tasks[0].index, 0);
    assert_int_equal(m.u.submit.tasks[0].unique_for_ms + m.u.submit.tasks[0].result_ttl_ms, 0);
    assert_int_equal(m.u.submit.ngroups, 0);
    assert_null(m.u.submit.groups);
    proto_msg_clear(&m);

    /* "unique_until": "done" is the default, accepted explicitly */
    assert_int_equal(dec_task1(KS("unique_until", "done"), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KS("unique_until", "start"), NULL), TASKQ_OK);
    char k200[TQ_UNIQUE_KEY_MAX + 1];
    memset(k200, '~', TQ_UNIQUE_KEY_MAX);
    k200[TQ_UNIQUE_KEY_MAX] = '\0';
    k200[0] = ' ';
    assert_int_equal(dec_task1(KS("unique_key", k200), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("unique_for_ms", TQ_TTL_MAX_MS), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("result_ttl_ms", 0), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KU("index", UINT32_MAX), NULL), TASKQ_OK);
    assert_int_equal(dec_task1(KB("immutable", false), NULL), TASKQ_OK);
}

/* A SUBMIT of n tasks; task i gets a "parent" (the previous task) when
 * chain, and the body gets groups_raw (a msgpack value) when not NULL. */
static taskq_err_t dec_submit_n(uint32_t n, bool chain, const void *groups_raw, size_t glen,
                                const char **detail)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, groups_raw ? 3 : 2);
    pack_kv(&pk, KU("req", 1));
    proto_pack_key(&pk, "tasks");
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        taskq_id_t id = ID1;
        id.b[12] = (uint8_t)(i >> 8), id.b[13] = (uint8_t)i, id.b[14] = 1;
        bool par = chain && i > 0;
        msgpack_pack_map(&pk, 2 + par);
        proto_pack_key(&pk, "id");
        pack_id(&pk, &id);
        pack_kv(&pk, KS("name", "x"));
        if (par) {
            id.b[12] = (uint8_t)((i - 1) >> 8), id.b[13] = (uint8_t)(i - 1);
            proto_pack_key(&pk, "parent");
            pack_id(&pk, &id);
        }
    }
    if (groups_raw)
        pack_kv(&pk, KR("groups", groups_raw, glen));
    taskq_err_t e = dec(PROTO_SUBMIT, sb.data, sb.size, detail);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

/* Decodes a SUBMIT of one task with a raw "groups" value. */
static taskq_err_t dec_groups(const void *raw, size_t n, const char **detail)
{
    return dec_submit_n(1, false, raw, n, detail);
}

static void test_submit_graph_limits(void **state)
{
    (void)state;
    const char *detail;
    /* a plain batch stays at TQ_BATCH_MAX */
    assert_int_equal(dec_submit_n(TQ_BATCH_MAX, false, NULL, 0, NULL), TASKQ_OK);
    assert_int_equal(dec_submit_n(TQ_BATCH_MAX + 1, false, NULL, 0, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks: too many elements");
    /* an empty "groups" does not make a graph */
    static const uint8_t g_empty[] = {0x90};
    assert_int_equal(dec_submit_n(TQ_BATCH_MAX + 1, false, g_empty, 1, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks: too many elements");
    assert_int_equal(dec_groups(g_empty, 1, NULL), TASKQ_OK);
    /* a non-empty "groups" does */
    static const uint8_t g_one[] = {0x91, 0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e',
                                    0x00};
    assert_int_equal(dec_submit_n(TQ_BATCH_MAX + 1, false, g_one, sizeof g_one, NULL), TASKQ_OK);
    /* a chain does, up to TQ_GRAPH_MAX */
    assert_int_equal(dec_submit_n(TQ_BATCH_MAX + 1, true, NULL, 0, NULL), TASKQ_OK);
    assert_int_equal(dec_submit_n(TQ_GRAPH_MAX, true, NULL, 0, NULL), TASKQ_OK);
    assert_int_equal(dec_submit_n(TQ_GRAPH_MAX + 1, true, NULL, 0, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks: too many elements");

    /* the encoder applies the same rule */
    uint32_t n = TQ_GRAPH_MAX + 1;
    proto_task_spec_t *ts = calloc(n, sizeof *ts);
    assert_non_null(ts);
    for (uint32_t i = 0; i < n; i++) {
        proto_task_spec_init(&ts[i]);
        ts[i].id = ID1;
        ts[i].id.b[12] = (uint8_t)(i >> 8), ts[i].id.b[13] = (uint8_t)i, ts[i].id.b[14] = 1;
        ts[i].name = proto_str("x");
    }
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.tasks = ts;
    m.u.submit.ntasks = TQ_BATCH_MAX + 1;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0);
    ts[TQ_BATCH_MAX].has_parent = true; /* the last one: a graph */
    ts[TQ_BATCH_MAX].parent = ts[0].id;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    msgpack_sbuffer_destroy(&sb);
    ts[TQ_BATCH_MAX].has_parent = false;
    proto_group_t g = {.id = GID, .size = 0};
    m.u.submit.ngroups = 1;
    m.u.submit.groups = &g;
    m.u.submit.ntasks = TQ_GRAPH_MAX;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit.ntasks, TQ_GRAPH_MAX);
    assert_int_equal(d.u.submit.ngroups, 1);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.submit.ntasks = TQ_GRAPH_MAX + 1;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);

    /* the acknowledgement of a graph: one code (and queue, holder) per task */
    uint32_t *codes = calloc(TQ_GRAPH_MAX + 1, sizeof *codes);
    taskq_id_t *hs = calloc(TQ_GRAPH_MAX + 1, sizeof *hs);
    proto_str_t *qs = calloc(TQ_GRAPH_MAX + 1, sizeof *qs);
    for (uint32_t i = 0; i <= TQ_GRAPH_MAX; i++)
        qs[i] = proto_str("default");
    hs[TQ_GRAPH_MAX - 1] = ID2;
    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.ncodes = m.u.submit_ack.nqueues = m.u.submit_ack.nholders = TQ_GRAPH_MAX;
    m.u.submit_ack.codes = codes;
    m.u.submit_ack.queues = qs;
    m.u.submit_ack.holders = hs;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit_ack.ncodes, TQ_GRAPH_MAX);
    assert_int_equal(d.u.submit_ack.nholders, TQ_GRAPH_MAX);
    assert_id(&d.u.submit_ack.holders[TQ_GRAPH_MAX - 1], &ID2);
    assert_true(taskq_id_is_zero(&d.u.submit_ack.holders[0]));
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.submit_ack.ncodes = m.u.submit_ack.nqueues = m.u.submit_ack.nholders = TQ_GRAPH_MAX + 1;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);
    free(qs);
    free(hs);
    free(codes);
    free(ts);
}

static void test_decode_rejects_lifecycle_fields(void **state)
{
    (void)state;
    const char *detail;
    static const uint8_t zero16[16] = {0};
    static const uint8_t bin15[] = {0xc4, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    uint8_t zbin[18] = {0xc4, 0x10};
    memcpy(zbin + 2, zero16, 16);
    static const char *const idkeys[] = {"parent", "group", "callback_of"};
    for (size_t i = 0; i < 3; i++) {
        char want[96];
        const char *k = idkeys[i];
        assert_int_equal(dec_task1(KN(k), &detail), TASKQ_EPROTO);
        snprintf(want, sizeof want, "SUBMIT tasks[0].%s: not a binary", k);
        assert_string_equal(detail, want);
        assert_int_equal(dec_task1(KR(k, bin15, sizeof bin15), &detail), TASKQ_EPROTO);
        snprintf(want, sizeof want, "SUBMIT tasks[0].%s: not 16 bytes", k);
        assert_string_equal(detail, want);
        assert_int_equal(dec_task1(KR(k, zbin, sizeof zbin), &detail), TASKQ_EPROTO);
        snprintf(want, sizeof want, "SUBMIT tasks[0].%s: all-zero id", k);
        assert_string_equal(detail, want);
        assert_int_equal(dec_task1(KS(k, "01938a6e-7b2c-7d00-8000-000000000001"), NULL),
                         TASKQ_EPROTO);
    }
    assert_int_equal(dec_task1(KU("index", (uint64_t)UINT32_MAX + 1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].index: out of range");
    assert_int_equal(dec_task1(KI("index", -1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].index: negative");
    assert_int_equal(dec_task1(KS("index", "1"), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KU("immutable", 1), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].immutable: not a boolean");
    assert_int_equal(dec_task1(KN("unique"), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].unique: not a boolean");

    assert_int_equal(dec_task1(KS("unique_key", ""), &detail), TASKQ_ENAME);
    assert_string_equal(detail, "SUBMIT tasks[0].unique_key: empty");
    char k201[TQ_UNIQUE_KEY_MAX + 2];
    memset(k201, 'k', TQ_UNIQUE_KEY_MAX + 1);
    k201[TQ_UNIQUE_KEY_MAX + 1] = '\0';
    assert_int_equal(dec_task1(KS("unique_key", k201), &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT tasks[0].unique_key: too long");
    static const char *const bad_keys[] = {"a\nb", "tab\t", "\x7f", "\xc3\xa9t\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        if (dec_task1(KS("unique_key", bad_keys[i]), &detail) != TASKQ_ENAME)
            fail_msg("unique_key #%zu accepted", i);
        assert_string_equal(detail, "SUBMIT tasks[0].unique_key: not printable ASCII");
    }
    assert_int_equal(dec_task1(KU("unique_key", 1), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KN("unique_key"), NULL), TASKQ_EPROTO);
    static const uint8_t keybin[] = {0xc4, 0x01, 'k'};
    assert_int_equal(dec_task1(KR("unique_key", keybin, sizeof keybin), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].unique_key: not a string");

    assert_int_equal(dec_task1(KS("unique_until", "end"), &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT tasks[0].unique_until: unknown unique_until (done or start)");
    assert_int_equal(dec_task1(KS("unique_until", "Start"), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KS("unique_until", ""), NULL), TASKQ_EPROTO);
    assert_int_equal(dec_task1(KU("unique_until", 1), NULL), TASKQ_EPROTO);
    static const char *const ttl_keys[] = {"unique_for_ms", "result_ttl_ms"};
    for (size_t i = 0; i < 2; i++) {
        char want[96];
        assert_int_equal(dec_task1(KU(ttl_keys[i], TQ_TTL_MAX_MS + 1), &detail), TASKQ_ETOOBIG);
        snprintf(want, sizeof want, "SUBMIT tasks[0].%s: out of range", ttl_keys[i]);
        assert_string_equal(detail, want);
        assert_int_equal(dec_task1(KU(ttl_keys[i], UINT64_MAX), NULL), TASKQ_ETOOBIG);
        assert_int_equal(dec_task1(KI(ttl_keys[i], -1), NULL), TASKQ_EPROTO);
        assert_int_equal(dec_task1(KF(ttl_keys[i], 1.0), NULL), TASKQ_EPROTO);
        assert_int_equal(dec_task1(KN(ttl_keys[i]), NULL), TASKQ_EPROTO);
    }

    /* groups */
    static const uint8_t g_ok[] = {0x91, 0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e',
                                   0x02, 0xa7, 'o', 'n', '_', 'f', 'a', 'i', 'l', 0xa6, 's', 'e',
                                   't', 't', 'l', 'e'};
    assert_int_equal(dec_groups(g_ok, sizeof g_ok, NULL), TASKQ_OK);
    uint8_t g[sizeof g_ok];
    memcpy(g, g_ok, sizeof g_ok);
    g[sizeof g - 1] = 'x'; /* "settlx" */
    assert_int_equal(dec_groups(g, sizeof g, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].on_fail: unknown on_fail (fail or settle)");
    static const uint8_t g_map[] = {0x81, 0xa1, 'a', 0x01};
    assert_int_equal(dec_groups(g_map, sizeof g_map, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups: not an array");
    static const uint8_t g_elem[] = {0x91, 0x90};
    assert_int_equal(dec_groups(g_elem, sizeof g_elem, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0]: not a map");
    static const uint8_t g_noid[] = {0x91, 0x81, 0xa4, 's', 'i', 'z', 'e', 0x00};
    assert_int_equal(dec_groups(g_noid, sizeof g_noid, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].id: missing");
    static const uint8_t g_nosize[] = {0x91, 0x81, 0xa2, 'i', 'd', IDBIN};
    assert_int_equal(dec_groups(g_nosize, sizeof g_nosize, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].size: missing");
    /* size TQ_GRAPH_MAX (0x4e20) fits, + 1 does not */
    static const uint8_t g_max[] = {0x91, 0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e',
                                    0xcd, 0x4e, 0x20};
    assert_int_equal(TQ_GRAPH_MAX, 0x4e20);
    assert_int_equal(dec_groups(g_max, sizeof g_max, NULL), TASKQ_OK);
    uint8_t g_big[sizeof g_max];
    memcpy(g_big, g_max, sizeof g_max);
    g_big[sizeof g_big - 1] = 0x21;
    assert_int_equal(dec_groups(g_big, sizeof g_big, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT groups[0].size: out of range");
    static const uint8_t g_neg[] = {0x91, 0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e',
                                    0xff};
    assert_int_equal(dec_groups(g_neg, sizeof g_neg, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].size: negative");
    static const uint8_t g_zero[] = {0x91, 0x82, 0xa2, 'i', 'd', 0xc4, 0x10, 0, 0, 0, 0, 0, 0, 0,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa4, 's', 'i', 'z', 'e', 0x00};
    assert_int_equal(dec_groups(g_zero, sizeof g_zero, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].id: all-zero id");
    static const uint8_t g_onf[] = {0x91, 0x83, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e',
                                    0x00, 0xa7, 'o', 'n', '_', 'f', 'a', 'i', 'l', 0x01};
    assert_int_equal(dec_groups(g_onf, sizeof g_onf, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT groups[0].on_fail: not a string");
    /* TQ_GROUPS_MAX + 1 groups */
    size_t one = 1 + 3 + 18 + 5 + 1, ng = TQ_GROUPS_MAX + 1;
    uint8_t *many = malloc(3 + ng * one), *p = many;
    *p++ = 0xdc, *p++ = (uint8_t)(ng >> 8), *p++ = (uint8_t)ng;
    for (size_t i = 0; i < ng; i++) {
        static const uint8_t elem[] = {0x82, 0xa2, 'i', 'd', IDBIN, 0xa4, 's', 'i', 'z', 'e', 0x00};
        memcpy(p, elem, sizeof elem);
        p += sizeof elem;
    }
    assert_int_equal(dec_groups(many, (size_t)(p - many), &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "SUBMIT groups: too many elements");
    many[1] = (uint8_t)(TQ_GROUPS_MAX >> 8), many[2] = (uint8_t)TQ_GROUPS_MAX;
    assert_int_equal(dec_groups(many, (size_t)(p - many) - one, NULL), TASKQ_OK);
    free(many);
}

static void test_encode_rejects_lifecycle_fields(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_msg_t m;
    proto_task_spec_t t;
    proto_task_spec_init(&t);
    t.id = ID1;
    t.name = proto_str("x");
    proto_group_t g = {.id = GID, .size = 1};
    proto_msg_init(&m, PROTO_SUBMIT);
    m.u.submit.ntasks = 1;
    m.u.submit.tasks = &t;
    m.u.submit.ngroups = 1;
    m.u.submit.groups = &g;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    sb.size = 0;
    char k201[TQ_UNIQUE_KEY_MAX + 2];
    memset(k201, 'k', TQ_UNIQUE_KEY_MAX + 1);
    k201[TQ_UNIQUE_KEY_MAX + 1] = '\0';
#define BAD(stmt, undo)                                                                          \
    do {                                                                                         \
        stmt;                                                                                    \
        if (proto_encode(&m, &sb) != TASKQ_EINVAL)                                               \
            fail_msg("encoded with " #stmt);                                                     \
        assert_int_equal(sb.size, 0);                                                            \
        undo;                                                                                    \
    } while (0)
    BAD(t.has_parent = true, t.has_parent = false); /* zero id */
    BAD(t.has_group = true, t.has_group = false);
    BAD(t.has_callback_of = true, t.has_callback_of = false);
    BAD(t.unique_key = proto_str("a\tb"), t.unique_key = proto_str(""));
    BAD(t.unique_key = proto_str(k201), t.unique_key = proto_str(""));
    BAD(t.unique_key = ((proto_str_t){NULL, 3}), t.unique_key = proto_str(""));
    BAD(t.unique_until = 2, t.unique_until = 0);
    BAD(t.unique_until = -1, t.unique_until = 0);
    BAD(t.unique_for_ms = TQ_TTL_MAX_MS + 1, t.unique_for_ms = 0);
    BAD(t.unique_for_ms = -1, t.unique_for_ms = 0);
    BAD(t.result_ttl_ms = TQ_TTL_MAX_MS + 1, t.result_ttl_ms = 0);
    BAD(t.result_ttl_ms = -5, t.result_ttl_ms = 0);
    BAD(g.id = (taskq_id_t){{0}}, g.id = GID);
    BAD(g.size = TQ_GRAPH_MAX + 1, g.size = 1);
    BAD(g.on_fail = 2, g.on_fail = 0);
    BAD(g.on_fail = -1, g.on_fail = 0);
    BAD(m.u.submit.groups = NULL, m.u.submit.groups = &g);
    BAD(m.u.submit.ngroups = TQ_GROUPS_MAX + 1, m.u.submit.ngroups = 1);
#undef BAD
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    sb.size = 0;
    /* the limits themselves encode */
    memset(k201, '~', TQ_UNIQUE_KEY_MAX);
    k201[TQ_UNIQUE_KEY_MAX] = '\0';
    t.unique_key = proto_str(k201);
    t.unique_for_ms = t.result_ttl_ms = TQ_TTL_MAX_MS;
    g.size = TQ_GRAPH_MAX;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_OK);
    msgpack_sbuffer_destroy(&sb);
}

static void test_submit_ack_holders(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    uint32_t codes[3] = {0, 0, 0};
    taskq_id_t hs[3] = {{{0}}, ID2, {{0}}};
    proto_msg_init(&m, PROTO_SUBMIT_ACK);
    m.u.submit_ack.req = 4;
    m.u.submit_ack.ncodes = 3;
    m.u.submit_ack.codes = codes;
    m.u.submit_ack.nholders = 3;
    m.u.submit_ack.holders = hs;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.submit_ack.nholders, 3);
    assert_true(taskq_id_is_zero(&d.u.submit_ack.holders[0]));
    assert_id(&d.u.submit_ack.holders[1], &ID2);
    assert_true(taskq_id_is_zero(&d.u.submit_ack.holders[2]));
    assert_int_equal(d.u.submit_ack.codes[1], 0); /* a duplicate is a success */
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* no duplicate: no "holders" at all (the ack of before issue 7) */
    hs[1] = (taskq_id_t){{0}};
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[0], 0x82);
    assert_int_equal(d.u.submit_ack.nholders, 0);
    assert_null(d.u.submit_ack.holders);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    decode_vec("submit_ack.hex", &d);
    assert_int_equal(d.u.submit_ack.nholders, 0);
    proto_msg_clear(&d);
    /* encoder: one per code, or none */
    msgpack_sbuffer_init(&sb);
    hs[1] = ID2;
    m.u.submit_ack.nholders = 2;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.submit_ack.nholders = 3;
    m.u.submit_ack.holders = NULL;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);

    /* decoder: nil = created; hand-made bodies */
    const char *detail;
    static const uint8_t h_ok[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e', 's',
                                   0x92, 0x00, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                   0x92, 0xc0, IDBIN};
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_SUBMIT_ACK, h_ok, sizeof h_ok, &d, NULL), TASKQ_OK);
    assert_int_equal(d.u.submit_ack.nholders, 2);
    assert_true(taskq_id_is_zero(&d.u.submit_ack.holders[0]));
    assert_int_equal(d.u.submit_ack.holders[1].b[15], 16);
    proto_msg_clear(&d);
    static const uint8_t h_nils[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                     's', 0x91, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                     0x91, 0xc0};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, h_nils, sizeof h_nils, NULL), TASKQ_OK);
    static const uint8_t h_count[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                      's', 0x91, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                      0x92, 0xc0, 0xc0};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, h_count, sizeof h_count, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK holders: not one per code");
    static const uint8_t h_short[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                      's', 0x91, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                      0x91, 0xc4, 0x01, 0x01};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, h_short, sizeof h_short, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK holders[0]: not 16 bytes");
    static const uint8_t h_str[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                    's', 0x91, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                    0x91, 0xa1, 'x'};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, h_str, sizeof h_str, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK holders[0]: not a binary");
    static const uint8_t h_map[] = {0x83, 0xa3, 'r', 'e', 'q', 0x01, 0xa5, 'c', 'o', 'd', 'e',
                                    's', 0x91, 0x00, 0xa7, 'h', 'o', 'l', 'd', 'e', 'r', 's',
                                    0x80};
    assert_int_equal(dec(PROTO_SUBMIT_ACK, h_map, sizeof h_map, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "SUBMIT_ACK holders: not an array");
}

static proto_task_rec_t lifecycle_rec(void)
{
    proto_task_rec_t r = sample_rec();
    r.state = TASKQ_STATE_PENDING;
    r.has_result = false;
    r.group_id = GID;
    r.parent_id = ID2;
    r.rerun_of = ID3;
    r.rerun_by = ID2;
    r.unique_key = proto_str("auto:00112233445566778899aabbccddeeff");
    return r;
}

static void check_lifecycle_rec(const proto_task_rec_t *t)
{
    assert_int_equal(t->state, TASKQ_STATE_PENDING);
    assert_id(&t->group_id, &GID);
    assert_id(&t->parent_id, &ID2);
    assert_id(&t->rerun_of, &ID3);
    assert_id(&t->rerun_by, &ID2);
    assert_str(t->unique_key, "auto:00112233445566778899aabbccddeeff");
}

/* A STATUS_REPLY whose record is sample_rec() plus one raw key. */
static taskq_err_t dec_rec_extra(kv_t v, proto_task_rec_t *out, const char **detail)
{
    proto_msg_t m;
    msgpack_sbuffer base;
    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.task = sample_rec();
    msgpack_sbuffer_init(&base);
    assert_int_equal(proto_encode(&m, &base), TASKQ_OK);
    /* {req, task: de 00 14 ...}: bump the record's count and append v */
    assert_int_equal((uint8_t)base.data[11], 0xde);
    base.data[13]++;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &base, msgpack_sbuffer_write);
    pack_kv(&pk, v);
    proto_msg_t d;
    proto_msg_init(&d, 0);
    const char *dt = NULL;
    taskq_err_t e = proto_decode(PROTO_STATUS_REPLY, base.data, base.size, &d, &dt);
    if (detail)
        *detail = dt;
    if (!e && out) {
        /* copy out what the checks need (strings would dangle) */
        *out = d.u.status_reply.task;
        out->unique_key = (proto_str_t){NULL, 0};
    }
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&base);
    return e;
}

static void test_record_lifecycle(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;

    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.task = lifecycle_rec();
    round_trip(&m, &d, &sb);
    check_lifecycle_rec(&d.u.status_reply.task);
    /* 19 keys + 5 */
    assert_memory_equal(sb.data + 11, "\xde\x00\x18", 3);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.task = lifecycle_rec();
    m.u.result.task.state = TASKQ_STATE_REVOKED;
    round_trip(&m, &d, &sb);
    assert_id(&d.u.result.task.group_id, &GID);
    assert_int_equal(d.u.result.task.state, TASKQ_STATE_REVOKED);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    /* EPURGED: only the id */
    proto_msg_init(&m, PROTO_RESULT);
    m.u.result.code = TASKQ_EPURGED;
    m.u.result.task = lifecycle_rec();
    round_trip(&m, &d, &sb);
    assert_int_equal(d.u.result.code, TASKQ_EPURGED);
    assert_id(&d.u.result.task.id, &ID1);
    assert_true(taskq_id_is_zero(&d.u.result.task.group_id));
    assert_int_equal(d.u.result.task.name.len, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* none set: the record of before issue 7 (20 keys with result) */
    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.task = sample_rec();
    round_trip(&m, &d, &sb);
    assert_memory_equal(sb.data + 11, "\xde\x00\x14", 3);
    assert_true(taskq_id_is_zero(&d.u.status_reply.task.group_id));
    assert_true(taskq_id_is_zero(&d.u.status_reply.task.rerun_by));
    assert_int_equal(d.u.status_reply.task.unique_key.len, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    /* nil reads as none; absent too */
    proto_task_rec_t r;
    static const char *const links[] = {"group_id", "parent_id", "rerun_of", "rerun_by"};
    for (size_t i = 0; i < 4; i++) {
        memset(&r, 0xff, sizeof r);
        assert_int_equal(dec_rec_extra(KN(links[i]), &r, NULL), TASKQ_OK);
        assert_true(taskq_id_is_zero(&r.group_id) && taskq_id_is_zero(&r.parent_id) &&
                    taskq_id_is_zero(&r.rerun_of) && taskq_id_is_zero(&r.rerun_by));
    }
    assert_int_equal(dec_rec_extra(KS("unique_key", ""), NULL, NULL), TASKQ_OK);
    /* wrong types and limits */
    static const uint8_t zbin[18] = {0xc4, 0x10};
    static const uint8_t bin15[] = {0xc4, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const char *detail;
    for (size_t i = 0; i < 4; i++) {
        char want[96];
        assert_int_equal(dec_rec_extra(KR(links[i], zbin, sizeof zbin), NULL, &detail),
                         TASKQ_EPROTO);
        snprintf(want, sizeof want, "STATUS_REPLY task.%s: all-zero id", links[i]);
        assert_string_equal(detail, want);
        assert_int_equal(dec_rec_extra(KR(links[i], bin15, sizeof bin15), NULL, &detail),
                         TASKQ_EPROTO);
        assert_int_equal(dec_rec_extra(KU(links[i], 1), NULL, &detail), TASKQ_EPROTO);
        snprintf(want, sizeof want, "STATUS_REPLY task.%s: not a binary", links[i]);
        assert_string_equal(detail, want);
    }
    char k201[TQ_UNIQUE_KEY_MAX + 2];
    memset(k201, 'k', TQ_UNIQUE_KEY_MAX + 1);
    k201[TQ_UNIQUE_KEY_MAX + 1] = '\0';
    assert_int_equal(dec_rec_extra(KS("unique_key", k201), NULL, &detail), TASKQ_ETOOBIG);
    assert_string_equal(detail, "STATUS_REPLY task.unique_key: too long");
    assert_int_equal(dec_rec_extra(KS("unique_key", "a\x01"), NULL, &detail), TASKQ_ENAME);
    assert_int_equal(dec_rec_extra(KU("unique_key", 1), NULL, NULL), TASKQ_EPROTO);

    /* encoder */
    msgpack_sbuffer_init(&sb);
    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.task = lifecycle_rec();
    m.u.status_reply.task.unique_key = proto_str(k201);
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.status_reply.task.unique_key = proto_str("tab\there");
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_stats_purged_and_cancel(void **state)
{
    (void)state;
    proto_msg_t m, d;
    msgpack_sbuffer sb;
    proto_msg_init(&m, PROTO_STATS_REPLY);
    m.u.stats_reply.stats.succeeded = 3;
    m.u.stats_reply.stats.purged = UINT64_MAX;
    m.u.stats_reply.stats.broker = proto_str("b");
    round_trip(&m, &d, &sb);
    assert_true(d.u.stats_reply.stats.purged == UINT64_MAX);
    assert_int_equal(d.u.stats_reply.stats.succeeded, 3);
    assert_int_equal((uint8_t)sb.data[12], 0x8b); /* {req, stats: {11 keys}} */
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.stats_reply.stats.purged = 0; /* as before issue 7: 10 keys */
    round_trip(&m, &d, &sb);
    assert_int_equal((uint8_t)sb.data[12], 0x8a);
    assert_int_equal(d.u.stats_reply.stats.purged, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);

    proto_msg_init(&m, PROTO_CANCEL);
    m.u.cancel.id = ID2;
    m.u.cancel.attempt = UINT32_MAX;
    m.u.cancel.terminate = true;
    m.u.cancel.grace_ms = 5000;
    round_trip(&m, &d, &sb);
    assert_int_equal(d.type, PROTO_CANCEL);
    assert_id(&d.u.cancel.id, &ID2);
    assert_int_equal(d.u.cancel.attempt, UINT32_MAX);
    assert_true(d.u.cancel.terminate);
    assert_int_equal(d.u.cancel.grace_ms, 5000);
    assert_int_equal((uint8_t)sb.data[0], 0x84);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    m.u.cancel.terminate = false;
    m.u.cancel.grace_ms = 0;
    round_trip(&m, &d, &sb);
    assert_false(d.u.cancel.terminate);
    assert_int_equal(d.u.cancel.grace_ms, 0);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_init(&sb);
    m.u.cancel.grace_ms = -1;
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    m.u.cancel.grace_ms = 0;
    m.u.cancel.id = (taskq_id_t){{0}};
    assert_int_equal(proto_encode(&m, &sb), TASKQ_EINVAL);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    /* decoder: every key required, typed */
    const char *detail;
    static const struct {
        kv_t drop_or_bad;
        bool drop;
        taskq_err_t err;
        const char *detail;
    } cases[] = {
        {{.key = "attempt"}, true, TASKQ_EPROTO, "CANCEL attempt: missing"},
        {{.key = "terminate"}, true, TASKQ_EPROTO, "CANCEL terminate: missing"},
        {{.key = "grace_ms"}, true, TASKQ_EPROTO, "CANCEL grace_ms: missing"},
        {{.key = "terminate", .t = V_U64, .u = 1}, false, TASKQ_EPROTO,
         "CANCEL terminate: not a boolean"},
        {{.key = "grace_ms", .t = V_I64, .i = -1}, false, TASKQ_EPROTO,
         "CANCEL grace_ms: negative"},
        {{.key = "attempt", .t = V_U64, .u = (uint64_t)UINT32_MAX + 1}, false, TASKQ_EPROTO,
         "CANCEL attempt: out of range"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        kv_t all[3] = {KU("attempt", 1), KB("terminate", true), KU("grace_ms", 1)};
        size_t n = 0;
        for (size_t i = 0; i < 3; i++)
            if (strcmp(all[i].key, cases[c].drop_or_bad.key) != 0 || !cases[c].drop)
                n++;
        msgpack_pack_map(&pk, 1 + n);
        proto_pack_key(&pk, "id");
        pack_id(&pk, &ID1);
        for (size_t i = 0; i < 3; i++) {
            if (strcmp(all[i].key, cases[c].drop_or_bad.key) != 0)
                pack_kv(&pk, all[i]);
            else if (!cases[c].drop)
                pack_kv(&pk, cases[c].drop_or_bad);
        }
        assert_int_equal(dec(PROTO_CANCEL, sb.data, sb.size, &detail), cases[c].err);
        assert_string_equal(detail, cases[c].detail);
        msgpack_sbuffer_destroy(&sb);
    }
    static const uint8_t c_noid[] = {0x80};
    assert_int_equal(dec(PROTO_CANCEL, c_noid, 1, &detail), TASKQ_EPROTO);
    assert_string_equal(detail, "CANCEL id: missing");
}

static void test_pack_unpack_task_rec(void **state)
{
    (void)state;
    /* {"tasks": [rec, lifecycle rec], "n": 2}: as an ADMIN "failed" reply */
    proto_task_rec_t recs[2] = {sample_rec(), lifecycle_rec()};
    recs[1].state = TASKQ_STATE_FAILED;
    recs[1].error = proto_str("boom");
    recs[1].code = proto_str("http.500");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    proto_pack_key(&pk, "tasks");
    msgpack_pack_array(&pk, 2);
    assert_int_equal(proto_pack_task_rec(&pk, &recs[0]), TASKQ_OK);
    assert_int_equal(proto_pack_task_rec(&pk, &recs[1]), TASKQ_OK);
    pack_kv(&pk, KU("n", 2));

    /* the same bytes as a STATUS_REPLY's "task" */
    proto_msg_t m;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    proto_msg_init(&m, PROTO_STATUS_REPLY);
    m.u.status_reply.task = recs[0];
    assert_int_equal(proto_encode(&m, &body), TASKQ_OK);
    size_t rec0_len = body.size - 11; /* after {req: 0, "task": */
    assert_memory_equal(sb.data + 8, body.data + 11, rec0_len);
    msgpack_sbuffer_destroy(&body);

    /* as ADMIN_REPLY data, through the codec */
    proto_msg_t r, d;
    msgpack_sbuffer rb;
    proto_msg_init(&r, PROTO_ADMIN_REPLY);
    r.u.admin_reply.req = 1;
    r.u.admin_reply.data = (proto_bin_t){(const uint8_t *)sb.data, (uint32_t)sb.size};
    round_trip(&r, &d, &rb);
    const msgpack_object *tasks = proto_obj_get(d.u.admin_reply.data_obj, "tasks");
    assert_non_null(tasks);
    assert_int_equal(tasks->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(tasks->via.array.size, 2);
    proto_task_rec_t out;
    assert_int_equal(proto_unpack_task_rec(&tasks->via.array.ptr[0], &out), TASKQ_OK);
    check_rec(&out);
    assert_true(taskq_id_is_zero(&out.group_id));
    assert_int_equal(out.priority, 0); /* written by the encoder, not defaulted */
    assert_int_equal(proto_unpack_task_rec(&tasks->via.array.ptr[1], &out), TASKQ_OK);
    assert_int_equal(out.state, TASKQ_STATE_FAILED);
    assert_id(&out.group_id, &GID);
    assert_id(&out.rerun_of, &ID3);
    assert_str(out.error, "boom");
    assert_str(out.code, "http.500");
    assert_str(out.unique_key, "auto:00112233445566778899aabbccddeeff");
    assert_false(out.has_result);
    /* hostile: not a map, a bare id, NULLs */
    assert_int_equal(proto_unpack_task_rec(proto_obj_get(d.u.admin_reply.data_obj, "n"), &out),
                     TASKQ_EPROTO);
    assert_true(taskq_id_is_zero(&out.id)); /* zeroed on error */
    assert_int_equal(proto_unpack_task_rec(tasks, &out), TASKQ_EPROTO);
    assert_int_equal(proto_unpack_task_rec(NULL, &out), TASKQ_EINVAL);
    assert_int_equal(proto_unpack_task_rec(&tasks->via.array.ptr[0], NULL), TASKQ_EINVAL);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&rb);
    msgpack_sbuffer_destroy(&sb);

    /* a record with only an id (the RESULT-with-a-code shape) is not a full record */
    static const uint8_t only_id[] = {0x81, 0xa2, 'i', 'd', IDBIN};
    msgpack_zone *z = msgpack_zone_new(1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)only_id, sizeof only_id, &off, z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(proto_unpack_task_rec(&o, &out), TASKQ_EPROTO);
    /* a non-string key */
    static const uint8_t intkey[] = {0x81, 0x01, 0x02};
    off = 0;
    assert_int_equal(msgpack_unpack((const char *)intkey, sizeof intkey, &off, z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(proto_unpack_task_rec(&o, &out), TASKQ_EPROTO);
    msgpack_zone_free(z);

    /* a record that breaks a limit packs as nil: the container stays whole */
    proto_task_rec_t bad = sample_rec();
    bad.name = proto_str("bad name");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    assert_int_equal(proto_pack_task_rec(&pk, &recs[0]), TASKQ_OK);
    assert_int_equal(proto_pack_task_rec(&pk, &bad), TASKQ_EINVAL);
    assert_int_equal(proto_pack_task_rec(&pk, NULL), TASKQ_EINVAL);
    assert_int_equal(proto_precheck(sb.data, sb.size, TQ_MAX_DEPTH), TASKQ_OK);
    assert_int_equal((uint8_t)sb.data[sb.size - 1], 0xc0);
    assert_int_equal((uint8_t)sb.data[sb.size - 2], 0xc0);
    assert_int_equal(proto_pack_task_rec(NULL, &recs[0]), TASKQ_EINVAL);
    msgpack_sbuffer_destroy(&sb);
}

static void test_signature(void **state)
{
    (void)state;
    assert_int_equal(proto_check_signature("TASKQ01", 7), TASKQ_OK);
    assert_int_equal(proto_check_signature("TASKQ02", 7), TASKQ_EVERSION);
    assert_int_equal(proto_check_signature("TASKQ00", 7), TASKQ_EVERSION);
    assert_int_equal(proto_check_signature("TASKQ0x", 7), TASKQ_EPROTO);
    assert_int_equal(proto_check_signature("TASKQ01", 6), TASKQ_EPROTO);
    assert_int_equal(proto_check_signature("TASKQ011", 8), TASKQ_EPROTO);
    assert_int_equal(proto_check_signature("MDPC01\0", 7), TASKQ_EPROTO);
    assert_int_equal(proto_check_signature(NULL, 0), TASKQ_EPROTO);
}

static void test_names_and_strings(void **state)
{
    (void)state;
    assert_true(proto_name_is_valid("a", 1, 128));
    assert_true(proto_name_is_valid("Az09_.:-", 8, 128));
    assert_false(proto_name_is_valid("", 0, 128));
    assert_false(proto_name_is_valid("a b", 3, 128));
    assert_false(proto_name_is_valid("a\0b", 3, 128));
    assert_false(proto_name_is_valid("\xc3\xa9", 2, 128));
    assert_false(proto_name_is_valid("abc", 3, 2));
    assert_false(proto_name_is_valid(NULL, 1, 128));
    char out[4];
    proto_str_copy(out, sizeof out, proto_str("abcdef"));
    assert_string_equal(out, "abc");
    proto_str_copy(out, sizeof out, (proto_str_t){NULL, 0});
    assert_string_equal(out, "");
    assert_true(proto_str_eq(proto_str("x"), "x"));
    assert_false(proto_str_eq(proto_str("x"), "xy"));
    assert_true(proto_str_eq((proto_str_t){NULL, 0}, ""));
    assert_string_equal(proto_type_name(PROTO_DONE_ACK), "DONE_ACK");
    assert_string_equal(proto_type_name(PROTO_CANCEL), "CANCEL");
    assert_string_equal(proto_type_name(0x42), "UNKNOWN");
}

/* Mutations of the vectors: byte flips, truncations, insertions and
 * deletions, with a fixed seed. Nothing may crash or leak (run under ASan). */
static uint64_t g_rng = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}

static void test_fuzz_mutations(void **state)
{
    (void)state;
    static const uint8_t interesting[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xc0, 0xc1, 0xc4, 0xc6,
                                          0xcf, 0xd3, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff};
    int iterations = 200000, ok = 0;
    const char *env = getenv("TASKQ_FUZZ_ITERATIONS");
    if (env)
        iterations = atoi(env);
    uint8_t work[4200];
    for (int it = 0; it < iterations; it++) {
        const vector_t *v = &g_vec[rnd() % (uint32_t)g_nvec];
        size_t len = v->len;
        memcpy(work, v->data, len);
        int nmut = 1 + (int)(rnd() % 4);
        for (int k = 0; k < nmut; k++) {
            uint32_t op = rnd() % 5;
            size_t pos = len ? rnd() % len : 0;
            if (op == 0 && len) {
                work[pos] ^= (uint8_t)(1u << (rnd() % 8));
            } else if (op == 1 && len) {
                work[pos] = interesting[rnd() % sizeof interesting];
            } else if (op == 2 && len) {
                len = rnd() % len; /* truncate */
            } else if (op == 3 && len < sizeof work - 8) {
                memmove(work + pos + 1, work + pos, len - pos);
                work[pos] = (uint8_t)rnd();
                len++;
            } else if (op == 4 && len) {
                memmove(work + pos, work + pos + 1, len - pos - 1);
                len--;
            }
        }
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, work, len);
        int type = (rnd() % 8 == 0) ? (int)(rnd() % 256) : v->type;
        proto_msg_t m;
        proto_msg_init(&m, 0);
        const char *detail = NULL;
        taskq_err_t e = proto_decode(type, copy, len, &m, &detail);
        if (e == TASKQ_OK) {
            ok++;
            /* whatever decodes must re-encode */
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            taskq_err_t ee = proto_encode(&m, &sb);
            if (ee)
                fail_msg("decoded but cannot re-encode %s: %s", proto_type_name(type),
                         taskq_err_name(ee));
            msgpack_sbuffer_destroy(&sb);
        } else {
            assert_non_null(detail);
            assert_null(m.zone);
        }
        proto_msg_clear(&m);
        free(copy);
    }
    print_message("fuzz: %d of %d mutations still decoded\n", ok, iterations);
}

/* ---- send / receive over inproc --------------------------------------- */

static void test_send_recv(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int one = 1, linger = 0, tmo = 5000;
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &tmo, sizeof tmo);
    zmq_setsockopt(dealer, ZMQ_ROUTING_ID, "client-1", 8);
    assert_int_equal(zmq_bind(router, "inproc://test_proto"), 0);
    assert_int_equal(zmq_connect(dealer, "inproc://test_proto"), 0);

    proto_frames_t f;
    assert_int_equal(proto_recv(router, true, true, &f), TASKQ_ETIMEDOUT);

    proto_msg_t m;
    proto_msg_init(&m, PROTO_STATUS);
    m.u.status.req = 42;
    m.u.status.id = ID1;
    assert_int_equal(proto_send(dealer, NULL, 0, &m, false), TASKQ_OK);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_OK);
    assert_int_equal(f.identity_len, 8);
    assert_memory_equal(f.identity, "client-1", 8);
    assert_int_equal(f.type, PROTO_STATUS);
    proto_msg_t d;
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(f.type, f.body, f.body_len, &d, NULL), TASKQ_OK);
    assert_int_equal(d.u.status.req, 42);
    proto_msg_clear(&d);

    /* reply through the ROUTER to the identity */
    proto_msg_init(&m, PROTO_ERROR);
    m.u.error.req = 42;
    m.u.error.code = TASKQ_ENOTFOUND;
    m.u.error.message = proto_str("no such task");
    assert_int_equal(proto_send(router, f.identity, f.identity_len, &m, true), TASKQ_OK);
    proto_frames_clear(&f);
    assert_int_equal(proto_recv(dealer, false, false, &f), TASKQ_OK);
    assert_int_equal(f.identity_len, 0);
    assert_int_equal(f.type, PROTO_ERROR);
    proto_frames_clear(&f);

    /* unknown peer on a ROUTER_MANDATORY socket */
    assert_int_equal(proto_send(router, "nobody", 6, &m, true), TASKQ_EUNREACH);

    /* malformed envelopes are drained whole and typed; the next message is fine */
    zmq_send(dealer, "TASKQ02", 7, ZMQ_SNDMORE);
    zmq_send(dealer, "\x02", 1, ZMQ_SNDMORE);
    zmq_send(dealer, "\x80", 1, 0);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_EVERSION);
    assert_int_equal(f.identity_len, 8);
    assert_null(f.body);
    proto_frames_clear(&f);
    zmq_send(dealer, "HELLO", 5, 0);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_EPROTO);
    proto_frames_clear(&f);
    for (int i = 0; i < 20; i++)
        zmq_send(dealer, "TASKQ01", 7, i < 19 ? ZMQ_SNDMORE : 0);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_EPROTO);
    proto_frames_clear(&f);
    zmq_send(dealer, "TASKQ01", 7, ZMQ_SNDMORE);
    zmq_send(dealer, "\x02\x02", 2, ZMQ_SNDMORE);
    zmq_send(dealer, "\x80", 1, 0);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_EPROTO);
    proto_frames_clear(&f);
    proto_msg_init(&m, PROTO_BYE);
    assert_int_equal(proto_send(dealer, NULL, 0, &m, false), TASKQ_OK);
    assert_int_equal(proto_recv(router, true, false, &f), TASKQ_OK);
    assert_int_equal(f.type, PROTO_BYE);
    assert_int_equal(f.body_len, 1);
    proto_frames_clear(&f);

    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* ---- ids and error names ---------------------------------------------- */

static void test_ids(void **state)
{
    (void)state;
    taskq_id_t prev, id;
    taskq_id_generate(&prev);
    assert_false(taskq_id_is_zero(&prev));
    assert_int_equal(prev.b[6] >> 4, 7);      /* version 7 */
    assert_int_equal(prev.b[8] & 0xc0, 0x80); /* RFC 9562 variant */
    for (int i = 0; i < 100000; i++) {
        taskq_id_generate(&id);
        assert_true(memcmp(prev.b, id.b, 16) < 0); /* strictly increasing */
        prev = id;
    }
    char s[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&ID1, s);
    assert_string_equal(s, "01938a6e-7b2c-7d00-8000-000000000001");
    taskq_id_t back;
    assert_int_equal(taskq_id_parse(s, &back), TASKQ_OK);
    assert_id(&back, &ID1);
    assert_int_equal(taskq_id_parse("01938A6E7B2C7D008000000000000001", &back), TASKQ_OK);
    assert_id(&back, &ID1);
    assert_int_equal(taskq_id_parse("01938a6e-7b2c-7d00-8000-00000000000", &back), TASKQ_EINVAL);
    assert_int_equal(taskq_id_parse("01938a6e-7b2c-7d00-8000-0000000000011", &back), TASKQ_EINVAL);
    assert_int_equal(taskq_id_parse("01938a6e+7b2c-7d00-8000-000000000001", &back), TASKQ_EINVAL);
    assert_int_equal(taskq_id_parse("01938a6e-7b2c-7d00-8000-00000000000g", &back), TASKQ_EINVAL);
    assert_int_equal(taskq_id_parse("", &back), TASKQ_EINVAL);
    assert_int_equal(taskq_id_parse(NULL, &back), TASKQ_EINVAL);
    taskq_id_t zero = {{0}};
    assert_true(taskq_id_is_zero(&zero));
}

/* BATCH: a built batch walks back item by item; every malformed framing
 * (truncation, wrong headers, nested BATCH, trailing bytes, counts past the
 * limit or the bytes) is refused without allocating. */
static void test_batch(void **state)
{
    (void)state;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    proto_msg_t m;
    proto_msg_init(&m, PROTO_READY);
    m.u.ready.credit = 7;
    msgpack_sbuffer one;
    msgpack_sbuffer_init(&one);
    assert_int_equal(proto_encode(&m, &one), TASKQ_OK);
    proto_batch_begin(&buf);
    for (int i = 0; i < 3; i++)
        proto_batch_add(&buf, PROTO_READY, one.data, one.size);
    proto_batch_end(&buf, 3);
    proto_batch_iter_t it;
    proto_item_t item;
    assert_int_equal(proto_batch_open(&it, buf.data, buf.size), TASKQ_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(proto_batch_next(&it, &item), TASKQ_OK);
        assert_int_equal(item.type, PROTO_READY);
        assert_int_equal(item.len, one.size);
        proto_msg_t d;
        proto_msg_init(&d, 0);
        assert_int_equal(proto_decode(item.type, item.body, item.len, &d, NULL), TASKQ_OK);
        assert_int_equal(d.u.ready.credit, 7);
        proto_msg_clear(&d);
    }
    assert_int_equal(proto_batch_next(&it, &item), TASKQ_ENOTFOUND);
    /* every truncation is refused somewhere, never read past the end */
    for (size_t cut = 0; cut < buf.size; cut++) {
        taskq_err_t e = proto_batch_open(&it, buf.data, cut);
        while (e == TASKQ_OK)
            e = proto_batch_next(&it, &item);
        assert_int_not_equal(e, TASKQ_ENOTFOUND);
    }
    /* trailing bytes after the last item */
    msgpack_sbuffer_write(&buf, "\xc0", 1);
    assert_int_equal(proto_batch_open(&it, buf.data, buf.size), TASKQ_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(proto_batch_next(&it, &item), TASKQ_OK);
    assert_int_equal(proto_batch_next(&it, &item), TASKQ_EPROTO);
    /* empty batch, not an array, a huge declared count, count past the bytes */
    assert_int_equal(proto_batch_open(&it, "\x90", 1), TASKQ_EPROTO);
    assert_int_equal(proto_batch_open(&it, "\x80", 1), TASKQ_EPROTO);
    assert_int_equal(proto_batch_open(&it, "\xdd\xff\xff\xff\xff", 5), TASKQ_ETOOBIG);
    assert_int_equal(proto_batch_open(&it, "\xdc\x00\x10\x92\x11\xc4\x00", 7), TASKQ_EPROTO);
    /* a BATCH inside a BATCH; a bin longer than what is left; not a bin */
    static const char nested[] = "\x91\x92\x20\xc4\x01\x90";
    assert_int_equal(proto_batch_open(&it, nested, sizeof nested - 1), TASKQ_OK);
    assert_int_equal(proto_batch_next(&it, &item), TASKQ_EPROTO);
    static const char longbin[] = "\x91\x92\x11\xc4\x09\x81";
    assert_int_equal(proto_batch_open(&it, longbin, sizeof longbin - 1), TASKQ_OK);
    assert_int_equal(proto_batch_next(&it, &item), TASKQ_EPROTO);
    static const char notbin[] = "\x91\x92\x11\xa1\x81";
    assert_int_equal(proto_batch_open(&it, notbin, sizeof notbin - 1), TASKQ_OK);
    assert_int_equal(proto_batch_next(&it, &item), TASKQ_EPROTO);
    /* proto_decode never takes a BATCH body */
    proto_msg_t d;
    proto_msg_init(&d, 0);
    assert_int_equal(proto_decode(PROTO_BATCH, buf.data, buf.size, &d, NULL), TASKQ_EPROTO);
    assert_string_equal(proto_type_name(PROTO_BATCH), "BATCH");
    /* the capability flags round-trip */
    proto_msg_t w;
    proto_msg_init(&w, PROTO_WELCOME);
    w.u.welcome.broker = proto_str("b1");
    w.u.welcome.heartbeat_ms = 1000;
    w.u.welcome.liveness = 3;
    w.u.welcome.batch = true;
    one.size = 0;
    assert_int_equal(proto_encode(&w, &one), TASKQ_OK);
    assert_int_equal(proto_decode(PROTO_WELCOME, one.data, one.size, &d, NULL), TASKQ_OK);
    assert_true(d.u.welcome.batch);
    proto_msg_clear(&d);
    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&buf);
}

static void test_strerror(void **state)
{
    (void)state;
    static const int probe[] = {INT32_MIN, -1000, -1, 0, 1, 16, 17, 255, 1000, INT32_MAX};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        assert_non_null(taskq_strerror(probe[i]));
        assert_non_null(taskq_err_name(probe[i]));
    }
    for (int e = TASKQ_OK; e <= TASKQ_ETERMINAL; e++) {
        assert_string_not_equal(taskq_strerror(e), "unknown error");
    }
    assert_string_equal(taskq_err_name(TASKQ_ESTALE), "ESTALE");
    assert_string_equal(taskq_strerror(99), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_submit),
        cmocka_unit_test(test_round_trip_small),
        cmocka_unit_test(test_round_trip_done),
        cmocka_unit_test(test_round_trip_records),
        cmocka_unit_test(test_round_trip_nodes),
        cmocka_unit_test(test_encode_rejects_bad_fields),
        cmocka_unit_test(test_vectors_reencode),
        cmocka_unit_test(test_vectors_fields),
        cmocka_unit_test(test_vectors_truncated),
        cmocka_unit_test(test_precheck_formats),
        cmocka_unit_test(test_precheck_limits),
        cmocka_unit_test(test_decode_rejects_bad_fields),
        cmocka_unit_test(test_decode_rejects_bad_node_fields),
        cmocka_unit_test(test_round_trip_submit_policy),
        cmocka_unit_test(test_decode_rejects_policy_fields),
        cmocka_unit_test(test_encode_rejects_policy_fields),
        cmocka_unit_test(test_round_trip_submit_lifecycle),
        cmocka_unit_test(test_submit_graph_limits),
        cmocka_unit_test(test_decode_rejects_lifecycle_fields),
        cmocka_unit_test(test_encode_rejects_lifecycle_fields),
        cmocka_unit_test(test_submit_ack_holders),
        cmocka_unit_test(test_record_lifecycle),
        cmocka_unit_test(test_stats_purged_and_cancel),
        cmocka_unit_test(test_pack_unpack_task_rec),
        cmocka_unit_test(test_round_trip_ack_hello_error),
        cmocka_unit_test(test_round_trip_done_failure),
        cmocka_unit_test(test_round_trip_record_policy),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_obj_readers),
        cmocka_unit_test(test_validators_and_states),
        cmocka_unit_test(test_signature),
        cmocka_unit_test(test_names_and_strings),
        cmocka_unit_test(test_fuzz_mutations),
        cmocka_unit_test(test_send_recv),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_batch),
    };
    return cmocka_run_group_tests(tests, load_vectors, NULL);
}
