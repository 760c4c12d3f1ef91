/* test_chan.c - parent/child framing: round trips, partial reads, oversize
 * and malformed frames, EOF, a large frame through the non-blocking path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
}

static taskq_id_t some_id(uint8_t seed)
{
    taskq_id_t id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(seed + i);
    return id;
}

/* Reads from a non-blocking chan until one frame arrives. */
static taskq_err_t next_frame(chan_t *r, chan_frame_t *f)
{
    for (int i = 0; i < 1000; i++) {
        bool got;
        taskq_err_t rc = chan_next(r, f, &got);
        if (rc != TASKQ_OK || got)
            return rc;
        rc = chan_read(r);
        if (rc != TASKQ_OK)
            return rc;
    }
    return TASKQ_ETIMEDOUT;
}

static void test_chan_round_trips_every_kind(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *parent = chan_new(sv[0], false), *child = chan_new(sv[1], true);
    taskq_id_t id = some_id(7);
    const uint8_t args[] = {0x91, 0x05}; /* [5] */
    chan_frame_t t = {.kind = CHAN_TASK, .id = id, .attempt = 3, .name = "taskq.sumsq",
                      .name_len = 11, .data = args, .data_len = 2, .time_limit_ms = 1500};
    assert_int_equal(chan_send(parent, &t), TASKQ_OK);
    chan_frame_t f;
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_TASK);
    assert_memory_equal(f.id.b, id.b, 16);
    assert_int_equal(f.attempt, 3);
    assert_int_equal(f.name_len, 11);
    assert_memory_equal(f.name, "taskq.sumsq", 11);
    assert_int_equal(f.data_len, 2);
    assert_memory_equal(f.data, args, 2);
    assert_int_equal(f.time_limit_ms, 1500);

    chan_frame_t p = {.kind = CHAN_PROGRESS, .id = id, .attempt = 3, .current = 5,
                      .total = 10, .message = "half", .message_len = 4};
    chan_frame_t d = {.kind = CHAN_DONE, .id = id, .attempt = 3, .ok = false,
                      .data = "boom", .data_len = 4};
    chan_frame_t rdy = {.kind = CHAN_READY, .pid = 4242};
    assert_int_equal(chan_send(child, &rdy), TASKQ_OK);
    assert_int_equal(chan_send(child, &p), TASKQ_OK);
    assert_int_equal(chan_send(child, &d), TASKQ_OK);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_READY);
    assert_int_equal(f.pid, 4242);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_PROGRESS);
    assert_int_equal(f.current, 5);
    assert_int_equal(f.total, 10);
    assert_memory_equal(f.message, "half", 4);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_DONE);
    assert_false(f.ok);
    assert_memory_equal(f.data, "boom", 4);

    chan_frame_t stop = {.kind = CHAN_STOP};
    assert_int_equal(chan_send(parent, &stop), TASKQ_OK);
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_STOP);
    chan_frame_t retire = {.kind = CHAN_RETIRE}, retired = {.kind = CHAN_RETIRED};
    assert_int_equal(chan_send(parent, &retire), TASKQ_OK);
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_RETIRE);
    assert_int_equal(chan_send(child, &retired), TASKQ_OK);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_RETIRED);
    chan_destroy(&parent);
    assert_null(parent);
    chan_destroy(&child);
    chan_destroy(&child); /* twice is harmless */
}

static void test_chan_done_failure_fields_and_policy(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *parent = chan_new(sv[0], false), *child = chan_new(sv[1], true);
    taskq_id_t id = some_id(11);
    chan_frame_t pol = {.kind = CHAN_POLICY, .id = id, .attempt = 2,
                        .policy = {.max_attempts = 4, .backoff_base_ms = 100,
                                   .backoff_factor = 1.5, .backoff_max_ms = 900,
                                   .jitter = PROTO_JITTER_NONE,
                                   .retry_on = {"http.5*", 7}, .no_retry_on = {"", 0}}};
    chan_frame_t d1 = {.kind = CHAN_DONE, .id = id, .attempt = 2, .ok = false,
                       .data = "nope", .data_len = 4, .code = "http.503", .code_len = 8,
                       .permanent = true, .has_retry_delay = true, .retry_delay_ms = 0};
    chan_frame_t d2 = {.kind = CHAN_DONE, .id = id, .attempt = 2, .ok = false,
                       .data = "429", .data_len = 3, .code = "taskq.rate_limited",
                       .code_len = 18, .rate_limited_ms = 2500};
    chan_frame_t nopol = {.kind = CHAN_POLICY, .id = id, .attempt = 3,
                          .policy = {.jitter = -1}};
    assert_int_equal(chan_send(child, &pol), TASKQ_OK);
    assert_int_equal(chan_send(child, &d1), TASKQ_OK);
    assert_int_equal(chan_send(child, &d2), TASKQ_OK);
    assert_int_equal(chan_send(child, &nopol), TASKQ_OK);
    chan_frame_t f;
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_POLICY);
    assert_memory_equal(f.id.b, id.b, 16);
    assert_int_equal(f.attempt, 2);
    assert_int_equal(f.policy.max_attempts, 4);
    assert_int_equal(f.policy.backoff_base_ms, 100);
    assert_true(f.policy.backoff_factor == 1.5);
    assert_int_equal(f.policy.backoff_max_ms, 900);
    assert_int_equal(f.policy.jitter, PROTO_JITTER_NONE);
    assert_int_equal(f.policy.retry_on.len, 7);
    assert_memory_equal(f.policy.retry_on.ptr, "http.5*", 7);
    assert_int_equal(f.policy.no_retry_on.len, 0);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_DONE);
    assert_false(f.ok);
    assert_memory_equal(f.data, "nope", 4);
    assert_int_equal(f.code_len, 8);
    assert_memory_equal(f.code, "http.503", 8);
    assert_true(f.permanent);
    assert_true(f.has_retry_delay);
    assert_int_equal(f.retry_delay_ms, 0);
    assert_int_equal(f.rate_limited_ms, 0);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_DONE);
    assert_false(f.permanent);
    assert_false(f.has_retry_delay);
    assert_int_equal(f.rate_limited_ms, 2500);
    assert_memory_equal(f.code, "taskq.rate_limited", 18);
    assert_int_equal(next_frame(parent, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_POLICY);
    assert_int_equal(f.attempt, 3);
    assert_int_equal(f.policy.jitter, -1);

    /* out-of-range fields are refused before they are sent */
    chan_frame_t bad = d1;
    bad.retry_delay_ms = -1;
    assert_int_equal(chan_send(child, &bad), TASKQ_EINVAL);
    bad = d1;
    bad.rate_limited_ms = TQ_BACKOFF_MS_MAX + 1;
    assert_int_equal(chan_send(child, &bad), TASKQ_EINVAL);
    bad = d1;
    bad.code_len = TQ_CODE_MAX + 1;
    assert_int_equal(chan_send(child, &bad), TASKQ_EINVAL);
    chan_frame_t badp = pol;
    badp.policy.backoff_factor = 0.5;
    assert_int_equal(chan_send(child, &badp), TASKQ_EINVAL);
    badp = pol;
    badp.policy.jitter = 3;
    assert_int_equal(chan_send(child, &badp), TASKQ_EINVAL);
    badp = pol;
    badp.policy.max_attempts = TQ_ATTEMPTS_MAX + 1;
    assert_int_equal(chan_send(child, &badp), TASKQ_EINVAL);
    chan_destroy(&parent);
    chan_destroy(&child);
}

static void test_chan_reassembles_byte_by_byte(void **state)
{
    (void)state;
    int enc[2], sv[2];
    pair(enc);
    chan_t *w = chan_new(enc[1], true);
    chan_frame_t d = {.kind = CHAN_DONE, .id = some_id(1), .attempt = 1, .ok = true,
                      .data = "\x2a", .data_len = 1};
    assert_int_equal(chan_send(w, &d), TASKQ_OK);
    uint8_t bytes[256];
    ssize_t n = read(enc[0], bytes, sizeof bytes);
    assert_true(n > 4);
    close(enc[0]);
    chan_destroy(&w);

    pair(sv);
    chan_t *r = chan_new(sv[0], false);
    chan_frame_t f;
    bool got = false;
    for (ssize_t i = 0; i < n; i++) {
        assert_int_equal(write(sv[1], &bytes[i], 1), 1);
        assert_int_equal(chan_read(r), TASKQ_OK);
        assert_int_equal(chan_next(r, &f, &got), TASKQ_OK);
        assert_int_equal(got, i == n - 1);
    }
    assert_int_equal(f.kind, CHAN_DONE);
    assert_true(f.ok);
    assert_int_equal(f.data_len, 1);
    close(sv[1]);
    assert_int_equal(chan_read(r), TASKQ_ECLOSED);
    chan_destroy(&r);
}

static void test_chan_rejects_oversize_length(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *r = chan_new(sv[0], false);
    const uint8_t hdr[4] = {0xFF, 0xFF, 0xFF, 0xFF};
    assert_int_equal(write(sv[1], hdr, 4), 4);
    assert_int_equal(chan_read(r), TASKQ_OK);
    chan_frame_t f;
    bool got;
    assert_int_equal(chan_next(r, &f, &got), TASKQ_ETOOBIG);
    assert_false(got);
    close(sv[1]);
    chan_destroy(&r);
}

static void test_chan_cancel_round_trip(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *parent = chan_new(sv[0], false), *child = chan_new(sv[1], true);
    taskq_id_t id = some_id(42);
    chan_frame_t c = {.kind = CHAN_CANCEL, .id = id, .attempt = UINT32_MAX};
    chan_frame_t t = {.kind = CHAN_TASK, .id = id, .attempt = 1, .name = "x", .name_len = 1};
    /* a CANCEL followed by a TASK: both arrive, in order */
    assert_int_equal(chan_send(parent, &c), TASKQ_OK);
    assert_int_equal(chan_send(parent, &t), TASKQ_OK);
    chan_frame_t f;
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_CANCEL);
    assert_memory_equal(f.id.b, id.b, 16);
    assert_int_equal(f.attempt, UINT32_MAX);
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_TASK);
    assert_int_equal(f.attempt, 1);
    /* chan_queue writes nothing until chan_flush; then all, in order */
    assert_int_equal(chan_queue(parent, &t), TASKQ_OK);
    assert_int_equal(chan_queue(parent, &c), TASKQ_OK);
    assert_true(chan_has_output(parent));
    struct pollfd pf = {.fd = sv[1], .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 0), 0);
    assert_int_equal(chan_flush(parent), TASKQ_OK);
    assert_false(chan_has_output(parent));
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_TASK);
    assert_int_equal(chan_recv(child, &f), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_CANCEL);
    assert_int_equal(chan_queue(child, &t), TASKQ_EINVAL); /* blocking side: chan_send */
    /* malformed CANCELs break the channel */
    static const uint8_t bad[][24] = {
        {0, 0, 0, 2, 0x91, 0x07},                   /* [7] */
        {0, 0, 0, 4, 0x93, 0x07, 0xc4, 0x00},       /* [7, bin0, ...] truncated */
        {0, 0, 0, 5, 0x93, 0x07, 0xa1, 'x', 0x01},  /* [7, "x", 1]: id not a bin */
        {0, 0, 0, 3, 0x92, 0x07, 0xc0},             /* [7, nil] */
    };
    static const size_t len[] = {6, 8, 9, 7};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) {
        int bv[2];
        pair(bv);
        chan_t *r = chan_new(bv[0], false);
        assert_int_equal(write(bv[1], bad[i], len[i]), (ssize_t)len[i]);
        assert_int_equal(chan_read(r), TASKQ_OK);
        bool got;
        assert_int_equal(chan_next(r, &f, &got), TASKQ_EPROTO);
        assert_false(got);
        close(bv[1]);
        chan_destroy(&r);
    }
    /* an id of the wrong size */
    int bv[2];
    pair(bv);
    chan_t *r = chan_new(bv[0], false);
    const uint8_t short_id[] = {0, 0, 0, 7, 0x93, 0x07, 0xc4, 0x02, 1, 2, 0x01};
    assert_int_equal(write(bv[1], short_id, sizeof short_id), (ssize_t)sizeof short_id);
    assert_int_equal(chan_read(r), TASKQ_OK);
    bool got;
    assert_int_equal(chan_next(r, &f, &got), TASKQ_EPROTO);
    close(bv[1]);
    chan_destroy(&r);
    chan_destroy(&parent);
    chan_destroy(&child);
}

static void test_chan_rejects_malformed_bodies(void **state)
{
    (void)state;
    static const uint8_t bad[][8] = {
        {0, 0, 0, 1, 0xc1},             /* reserved byte */
        {0, 0, 0, 2, 0x91, 0x0a},       /* [10]: unknown kind */
        {0, 0, 0, 2, 0x91, 0x01},       /* [1]: TASK without fields */
        {0, 0, 0, 3, 0x92, 0x03, 0xa1}, /* truncated */
        {0, 0, 0, 0},                   /* empty body */
    };
    static const size_t len[] = {5, 6, 6, 7, 4};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) {
        int sv[2];
        pair(sv);
        chan_t *r = chan_new(sv[0], false);
        assert_int_equal(write(sv[1], bad[i], len[i]), (ssize_t)len[i]);
        assert_int_equal(chan_read(r), TASKQ_OK);
        chan_frame_t f;
        bool got;
        assert_int_equal(chan_next(r, &f, &got), TASKQ_EPROTO);
        assert_false(got);
        close(sv[1]);
        chan_destroy(&r);
    }
}

static void test_chan_eof_mid_frame_is_closed(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *child = chan_new(sv[1], true);
    const uint8_t half[3] = {0, 0, 0};
    assert_int_equal(write(sv[0], half, 3), 3);
    close(sv[0]);
    chan_frame_t f;
    assert_int_equal(chan_recv(child, &f), TASKQ_ECLOSED);
    chan_destroy(&child);
}

static void test_chan_large_frame_nonblocking(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
    chan_t *w = chan_new(sv[0], false), *r = chan_new(sv[1], false);
    size_t n = 1024 * 1024 - 16;
    uint8_t *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)i;
    chan_frame_t t = {.kind = CHAN_TASK, .id = some_id(2), .attempt = 1, .name = "x",
                      .name_len = 1, .data = big, .data_len = (uint32_t)n};
    assert_int_equal(chan_send(w, &t), TASKQ_OK);
    assert_true(chan_has_output(w)); /* more than a socket buffer */
    chan_frame_t f;
    bool got = false;
    for (int i = 0; i < 100000 && !got; i++) {
        assert_int_equal(chan_flush(w), TASKQ_OK);
        assert_int_equal(chan_read(r), TASKQ_OK);
        assert_int_equal(chan_next(r, &f, &got), TASKQ_OK);
    }
    assert_true(got);
    assert_false(chan_has_output(w));
    assert_int_equal(f.data_len, n);
    assert_memory_equal(f.data, big, n);
    free(big);
    chan_destroy(&w);
    chan_destroy(&r);
}

static void test_chan_send_refuses_limits(void **state)
{
    (void)state;
    int sv[2];
    pair(sv);
    chan_t *w = chan_new(sv[0], false);
    char msg[TQ_PROGRESS_MSG_MAX + 1];
    memset(msg, 'x', sizeof msg);
    chan_frame_t p = {.kind = CHAN_PROGRESS, .message = msg, .message_len = sizeof msg};
    assert_int_equal(chan_send(w, &p), TASKQ_EINVAL);
    chan_frame_t bogus = {.kind = 99};
    assert_int_equal(chan_send(w, &bogus), TASKQ_EINVAL);
    close(sv[1]);
    chan_frame_t stop = {.kind = CHAN_STOP};
    assert_int_equal(chan_send(w, &stop), TASKQ_ECLOSED);
    chan_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chan_round_trips_every_kind),
        cmocka_unit_test(test_chan_done_failure_fields_and_policy),
        cmocka_unit_test(test_chan_reassembles_byte_by_byte),
        cmocka_unit_test(test_chan_rejects_oversize_length),
        cmocka_unit_test(test_chan_rejects_malformed_bodies),
        cmocka_unit_test(test_chan_cancel_round_trip),
        cmocka_unit_test(test_chan_eof_mid_frame_is_closed),
        cmocka_unit_test(test_chan_large_frame_nonblocking),
        cmocka_unit_test(test_chan_send_refuses_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
