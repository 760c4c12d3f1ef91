/* it_malformed: a raw DEALER sends hostile messages; each one must be
 * answered with ERROR carrying the right typed code (and the request's req
 * when it was readable), while a normal client keeps working and the
 * broker's memory stays flat. A SUBMIT with one bad task stores nothing. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "harness.h"
#include "proto.h"

#define ROUNDS 20

static void *g_sock;

static void send_frames(const void *const *data, const size_t *len, int n)
{
    for (int i = 0; i < n; i++) {
        int rc = zmq_send(g_sock, data[i], len[i], i < n - 1 ? ZMQ_SNDMORE : 0);
        H_ASSERT(rc >= 0, "zmq_send: %s", zmq_strerror(zmq_errno()));
    }
}

static void send3(const char *sig, int type, const void *body, size_t blen)
{
    uint8_t t = (uint8_t)type;
    const void *d[3] = {sig, &t, body};
    size_t l[3] = {strlen(sig), 1, blen};
    send_frames(d, l, 3);
}

/* Receives one reply (deadline 5 s) and decodes it into *m (caller clears). */
static void recv_reply(const char *what, proto_msg_t *m)
{
    zmq_pollitem_t it = {g_sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll(&it, 1, 5000);
    H_ASSERT(rc == 1, "no reply within 5 s to: %s", what);
    proto_frames_t f;
    memset(&f, 0, sizeof f);
    taskq_err_t err = proto_recv(g_sock, false, true, &f);
    H_ASSERT(err == TASKQ_OK, "proto_recv of the reply to %s: %s", what, taskq_err_name(err));
    proto_msg_init(m, f.type);
    const char *detail = NULL;
    err = proto_decode(f.type, f.body, f.body_len, m, &detail);
    /* decoded strings borrow from f.body: copy what the caller needs first */
    H_ASSERT(err == TASKQ_OK, "reply to %s (type 0x%x) does not decode: %s %s", what, f.type,
             taskq_err_name(err), detail ? detail : "");
    static char msgcopy[TQ_MESSAGE_MAX + 1];
    if (m->type == PROTO_ERROR) {
        proto_str_copy(msgcopy, sizeof msgcopy, m->u.error.message);
        m->u.error.message = proto_str(msgcopy);
    }
    if (m->type != PROTO_STATS_REPLY) {
        proto_frames_clear(&f);
        return;
    }
    /* STATS_REPLY's broker id borrows the body; callers only read numbers */
    m->u.stats_reply.stats.broker = proto_str("");
    proto_frames_clear(&f);
}

/* Expects ERROR with one of two codes (b may equal a); req_want < 0: any. */
static void expect_error(const char *what, int a, int b, int64_t req_want)
{
    proto_msg_t m;
    recv_reply(what, &m);
    H_ASSERT(m.type == PROTO_ERROR, "reply to %s is %s, expected ERROR", what,
             proto_type_name(m.type));
    int code = (int)m.u.error.code;
    H_ASSERT(code == a || code == b, "reply to %s: ERROR %s ('%.*s'), expected %s%s%s", what,
             taskq_err_name(code), (int)m.u.error.message.len, m.u.error.message.ptr,
             taskq_err_name(a), b != a ? " or " : "", b != a ? taskq_err_name(b) : "");
    if (req_want >= 0)
        H_ASSERT(m.u.error.req == (uint64_t)req_want, "reply to %s: req %llu, expected %lld",
                 what, (unsigned long long)m.u.error.req, (long long)req_want);
    proto_msg_clear(&m);
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* {req: req} */
static void body_req(msgpack_sbuffer *sb, uint64_t req)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_key(&pk, "req");
    msgpack_pack_uint64(&pk, req);
}

/* SUBMIT {req, tasks: [{id, name, args}...]} with the given names */
static void body_submit(msgpack_sbuffer *sb, uint64_t req, const char *const *names, int n,
                        taskq_id_t *ids)
{
    static const uint8_t empty_array = 0x90;
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_key(&pk, "req");
    msgpack_pack_uint64(&pk, req);
    pack_key(&pk, "tasks");
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        taskq_id_generate(&ids[i]);
        msgpack_pack_map(&pk, 3);
        pack_key(&pk, "id");
        msgpack_pack_bin_with_body(&pk, ids[i].b, 16);
        pack_key(&pk, "name");
        msgpack_pack_str_with_body(&pk, names[i], strlen(names[i]));
        pack_key(&pk, "args");
        msgpack_pack_bin_with_body(&pk, &empty_array, 1);
    }
}

static void hostile_round(taskq_client_t *c, int round)
{
    msgpack_sbuffer sb;
    uint64_t req = (uint64_t)round * 100;

    /* 1. wrong signature */
    msgpack_sbuffer_init(&sb);
    body_req(&sb, req + 1);
    send3("XXXXXXX", PROTO_STATS, sb.data, sb.size);
    expect_error("a wrong signature", TASKQ_EPROTO, TASKQ_EPROTO, -1);
    /* 2. another protocol version */
    send3("TASKQ02", PROTO_STATS, sb.data, sb.size);
    expect_error("signature TASKQ02", TASKQ_EVERSION, TASKQ_EVERSION, -1);
    /* 3. unknown type byte */
    send3(PROTO_SIGNATURE, 0x42, sb.data, sb.size);
    expect_error("type 0x42", TASKQ_EUNKNOWN, TASKQ_EUNKNOWN, -1);
    /* 4. truncated msgpack */
    send3(PROTO_SIGNATURE, PROTO_STATS, sb.data, sb.size - 1);
    expect_error("a truncated body", TASKQ_EPROTO, TASKQ_EPROTO, 0);
    msgpack_sbuffer_destroy(&sb);

    /* 5. an array declaring 0xffffffff elements, in 5 bytes */
    static const uint8_t huge[5] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    send3(PROTO_SIGNATURE, PROTO_SUBMIT, huge, sizeof huge);
    expect_error("array32 of 0xffffffff elements", TASKQ_EPROTO, TASKQ_ETOOBIG, 0);

    /* 6. a SUBMIT with a bad task name; 6b. one bad task in a batch of two:
     * the whole batch is refused and nothing is stored */
    taskq_id_t ids[2];
    const char *bad1[1] = {"bad name!"};
    msgpack_sbuffer_init(&sb);
    body_submit(&sb, req + 6, bad1, 1, ids);
    send3(PROTO_SIGNATURE, PROTO_SUBMIT, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    expect_error("SUBMIT with task name 'bad name!'", TASKQ_ENAME, TASKQ_ENAME,
                 (int64_t)(req + 6));
    const char *bad2[2] = {"test.square", "bad/name"};
    msgpack_sbuffer_init(&sb);
    body_submit(&sb, req + 7, bad2, 2, ids);
    send3(PROTO_SIGNATURE, PROTO_SUBMIT, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    expect_error("SUBMIT [good, 'bad/name']", TASKQ_ENAME, TASKQ_ENAME, (int64_t)(req + 7));
    if (round == 0) {
        taskq_task_t *t = NULL;
        taskq_err_t rc = taskq_status(c, &ids[0], &t);
        H_ASSERT(rc == TASKQ_ENOTFOUND,
                 "the good task of a refused SUBMIT was stored (status %s, state %s)",
                 taskq_err_name(rc), t ? taskq_state_name(t->state) : "-");
    }

    /* 7. a 2-frame message (no body) */
    uint8_t t = PROTO_STATS;
    const void *d2[2] = {PROTO_SIGNATURE, &t};
    size_t l2[2] = {PROTO_SIGNATURE_LEN, 1};
    send_frames(d2, l2, 2);
    expect_error("a 2-frame message", TASKQ_EPROTO, TASKQ_EPROTO, 0);

    /* 8. one frame of junk */
    const void *d1[1] = {"hello"};
    size_t l1[1] = {5};
    send_frames(d1, l1, 1);
    expect_error("a 1-frame message", TASKQ_EPROTO, TASKQ_EPROTO, 0);

    /* 9. a body map of the wrong shape (req is a string) */
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_key(&pk, "req");
    pack_key(&pk, "nope");
    send3(PROTO_SIGNATURE, PROTO_STATS, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    expect_error("STATS with req as a string", TASKQ_EPROTO, TASKQ_EPROTO, 0);

    /* 10. the same socket is still served normally */
    msgpack_sbuffer_init(&sb);
    body_req(&sb, req + 10);
    send3(PROTO_SIGNATURE, PROTO_STATS, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    proto_msg_t m;
    recv_reply("a valid STATS", &m);
    H_ASSERT(m.type == PROTO_STATS_REPLY && m.u.stats_reply.req == req + 10,
             "valid STATS answered with %s", proto_type_name(m.type));
    proto_msg_clear(&m);
}

static int on_done(const taskq_task_t *t, void *arg)
{
    int *n = arg;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "normal task ended %s: '%s'",
             taskq_state_name(t->state), t->error);
    (*n)++;
    return 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    /* normal traffic in flight while the hostile messages arrive */
    enum { NN = 50 };
    taskq_task_spec_t specs[NN];
    uint8_t args[NN][16];
    taskq_id_t ids[NN];
    memset(specs, 0, sizeof specs);
    for (int i = 0; i < NN; i++) {
        specs[i].name = "test.square";
        specs[i].args = args[i];
        specs[i].args_len = h_args_int(args[i], sizeof args[i], i);
    }
    H_OK(taskq_submit_batch(c, specs, NN, NULL));
    for (int i = 0; i < NN; i++)
        ids[i] = specs[i].id;

    void *ctx = zmq_ctx_new();
    H_ASSERT(ctx != NULL, "zmq_ctx_new");
    g_sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(g_sock, ZMQ_LINGER, &linger, sizeof linger);
    H_ASSERT(zmq_connect(g_sock, ep) == 0, "zmq_connect(%s)", ep);

    long rss0 = h_rss_kb(h_broker_pid(b));
    for (int r = 0; r < ROUNDS; r++)
        hostile_round(c, r);

    /* a body over TQ_MAX_BODY */
    size_t big = TQ_MAX_BODY + 1;
    uint8_t *junk = calloc(1, big);
    H_ASSERT(junk != NULL, "out of memory");
    send3(PROTO_SIGNATURE, PROTO_SUBMIT, junk, big);
    free(junk);
    expect_error("a body of TQ_MAX_BODY+1 bytes", TASKQ_ETOOBIG, TASKQ_ETOOBIG, 0);

    /* a frame over twice TQ_MAX_BODY: the broker closes its connection
     * unread (a socket of its own: what else was queued on it may be lost) */
    {
        void *s2 = zmq_socket(ctx, ZMQ_DEALER);
        H_ASSERT(s2 && zmq_setsockopt(s2, ZMQ_LINGER, &linger, sizeof linger) == 0,
                 "second DEALER");
        H_ASSERT(zmq_socket_monitor(s2, "inproc://it-malformed-mon", ZMQ_EVENT_DISCONNECTED) == 0,
                 "zmq_socket_monitor: %s", zmq_strerror(zmq_errno()));
        void *mon = zmq_socket(ctx, ZMQ_PAIR);
        H_ASSERT(mon && zmq_connect(mon, "inproc://it-malformed-mon") == 0, "monitor socket");
        H_ASSERT(zmq_connect(s2, ep) == 0, "zmq_connect(%s)", ep);
        size_t huge = 2 * (size_t)TQ_MAX_BODY + 1;
        uint8_t *h = calloc(1, huge);
        H_ASSERT(h != NULL, "out of memory");
        uint8_t ty = PROTO_SUBMIT;
        H_ASSERT(zmq_send(s2, PROTO_SIGNATURE, strlen(PROTO_SIGNATURE), ZMQ_SNDMORE) >= 0 &&
                 zmq_send(s2, &ty, 1, ZMQ_SNDMORE) >= 0 && zmq_send(s2, h, huge, 0) >= 0,
                 "send the oversize frame");
        free(h);
        zmq_pollitem_t it = {mon, 0, ZMQ_POLLIN, 0};
        H_ASSERT(zmq_poll(&it, 1, 15000) == 1,
                 "the broker kept the connection of a %zu-byte frame (ZMQ_MAXMSGSIZE)", huge);
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        H_ASSERT(zmq_msg_recv(&ev, mon, 0) >= 6, "monitor event");
        uint16_t code;
        memcpy(&code, zmq_msg_data(&ev), sizeof code);
        zmq_msg_close(&ev);
        H_ASSERT(code == ZMQ_EVENT_DISCONNECTED, "monitor event %u", (unsigned)code);
        h_log("a %zu-byte frame: the broker closed its connection", huge);
        zmq_socket_monitor(s2, NULL, 0);
        zmq_close(mon);
        zmq_close(s2);
    }
    long rss1 = h_rss_kb(h_broker_pid(b));
    h_log("broker RSS %ld kB before, %ld kB after %d hostile rounds", rss0, rss1, ROUNDS);
    H_ASSERT(rss0 > 0 && rss1 > 0, "cannot read the broker's RSS");
    H_ASSERT(rss1 - rss0 < 64 * 1024, "broker RSS grew by %ld kB", rss1 - rss0);

    int n = 0;
    H_OK(taskq_wait_many(c, ids, NN, 30000, on_done, &n));
    H_ASSERT(n == NN, "%d of %d normal tasks delivered", n, NN);

    /* the broker still serves */
    uint8_t a1[16];
    size_t alen = h_args_int(a1, sizeof a1, 12);
    taskq_id_t id;
    h_submit(c, &id, "test.square", a1, alen, 0, 0);
    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, &id, 10000, &t));
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == 144,
             "final square: %s %lld", taskq_state_name(t->state), (long long)v);
    taskq_task_destroy(&t);
    H_ASSERT(h_pid_alive(h_broker_pid(b)), "broker died");

    zmq_close(g_sock);
    zmq_ctx_term(ctx);
    taskq_client_destroy(&c);
    return 0;
}
