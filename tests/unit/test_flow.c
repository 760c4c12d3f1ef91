/* test_flow.c - workflows without a broker: graph planning and map chunking
 * (client/flow.c), and the checks libtaskq makes before sending anything
 * (flow builder, chain / chord / map, revoke / failed / purge arguments,
 * unique-key options). The client handle points at a port nothing listens
 * on: every call here must refuse before it sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "flow.h"
#include "tqlimits.h"
#include "taskq.h"

#define NOBODY "tcp://127.0.0.1:1"

static flow_node_t node(int32_t parent, int32_t group, uint32_t index, int32_t callback_of)
{
    return (flow_node_t){.parent = parent, .group = group, .index = index, .callback_of = callback_of};
}

static taskq_err_t plan(const flow_node_t *n, size_t k, const flow_group_t *g, size_t ng,
                        size_t *order)
{
    const char *why = NULL;
    taskq_err_t e = flow_plan(n, k, g, ng, order, &why);
    if (e != TASKQ_OK)
        assert_non_null(why);
    return e;
}

/* ---- flow_plan ----------------------------------------------------------------- */

static void test_plan_orders(void **state)
{
    (void)state;
    size_t order[8];
    /* a chain already in order keeps it */
    flow_node_t chain[3] = {node(-1, -1, 0, -1), node(0, -1, 0, -1), node(1, -1, 0, -1)};
    assert_int_equal(plan(chain, 3, NULL, 0, order), TASKQ_OK);
    assert_int_equal(order[0], 0);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 2);
    /* parents given after their children move first */
    flow_node_t rev[3] = {node(1, -1, 0, -1), node(2, -1, 0, -1), node(-1, -1, 0, -1)};
    assert_int_equal(plan(rev, 3, NULL, 0, order), TASKQ_OK);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 0);
    /* a chord whose callback was added first goes after its members; a
     * task after the callback after that */
    flow_group_t g = {.size = 3, .on_fail = 0, .callback = 0};
    flow_node_t chord[5] = {node(-1, -1, 0, 0), node(-1, 0, 2, -1), node(-1, 0, 0, -1),
                            node(-1, 0, 1, -1), node(0, -1, 0, -1)};
    assert_int_equal(plan(chord, 5, &g, 1, order), TASKQ_OK);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 0);
    assert_int_equal(order[4], 4);
    /* an empty chord: the callback alone */
    flow_group_t empty = {.size = 0, .on_fail = 1, .callback = 0};
    flow_node_t cb[1] = {node(-1, -1, 0, 0)};
    assert_int_equal(plan(cb, 1, &empty, 1, order), TASKQ_OK);
    assert_int_equal(order[0], 0);
    /* a group member may wait for a parent (a task, then a fan-out) */
    flow_group_t g2 = {.size = 2, .on_fail = 0, .callback = -1};
    flow_node_t fan[3] = {node(2, 0, 0, -1), node(2, 0, 1, -1), node(-1, -1, 0, -1)};
    assert_int_equal(plan(fan, 3, &g2, 1, order), TASKQ_OK);
    assert_int_equal(order[0], 2);
    /* nothing at all */
    assert_int_equal(plan(NULL, 0, NULL, 0, order), TASKQ_OK);
}

static void test_plan_refusals(void **state)
{
    (void)state;
    size_t order[8];
    flow_node_t self[1] = {node(0, -1, 0, -1)};
    assert_int_equal(plan(self, 1, NULL, 0, order), TASKQ_EINVAL);
    flow_node_t cyc[3] = {node(2, -1, 0, -1), node(0, -1, 0, -1), node(1, -1, 0, -1)};
    assert_int_equal(plan(cyc, 3, NULL, 0, order), TASKQ_EINVAL);
    flow_node_t range[1] = {node(5, -1, 0, -1)};
    assert_int_equal(plan(range, 1, NULL, 0, order), TASKQ_EINVAL);
    flow_node_t nogroup[1] = {node(-1, 0, 0, -1)};
    assert_int_equal(plan(nogroup, 1, NULL, 0, order), TASKQ_EINVAL);
    /* size differs from the members */
    flow_group_t g = {.size = 3, .on_fail = 0, .callback = -1};
    flow_node_t two[2] = {node(-1, 0, 0, -1), node(-1, 0, 1, -1)};
    assert_int_equal(plan(two, 2, &g, 1, order), TASKQ_EINVAL);
    /* the same index twice, an index past the size */
    g.size = 2;
    flow_node_t same[2] = {node(-1, 0, 1, -1), node(-1, 0, 1, -1)};
    assert_int_equal(plan(same, 2, &g, 1, order), TASKQ_EINVAL);
    flow_node_t past[2] = {node(-1, 0, 0, -1), node(-1, 0, 2, -1)};
    assert_int_equal(plan(past, 2, &g, 1, order), TASKQ_EINVAL);
    /* a callback the group does not name, or two callbacks */
    flow_node_t stray[3] = {node(-1, 0, 0, -1), node(-1, 0, 1, -1), node(-1, -1, 0, 0)};
    assert_int_equal(plan(stray, 3, &g, 1, order), TASKQ_EINVAL);
    g.callback = 2;
    flow_node_t twocb[4] = {node(-1, 0, 0, -1), node(-1, 0, 1, -1), node(-1, -1, 0, 0),
                            node(-1, -1, 0, 0)};
    assert_int_equal(plan(twocb, 4, &g, 1, order), TASKQ_EINVAL);
    /* a member that is also a callback (of another group) */
    flow_group_t gg[2] = {{.size = 1, .on_fail = 0, .callback = -1},
                          {.size = 1, .on_fail = 0, .callback = 0}};
    flow_node_t both[2] = {node(-1, 0, 0, 1), node(-1, 1, 0, -1)};
    assert_int_equal(plan(both, 2, gg, 2, order), TASKQ_EINVAL);
    /* a cycle through a chord: a member waits for the callback */
    flow_group_t gc = {.size = 2, .on_fail = 0, .callback = 2};
    flow_node_t loop[3] = {node(-1, 0, 0, -1), node(2, 0, 1, -1), node(-1, -1, 0, 0)};
    assert_int_equal(plan(loop, 3, &gc, 1, order), TASKQ_EINVAL);
    /* a bad on_fail */
    flow_group_t bad = {.size = 0, .on_fail = 7, .callback = -1};
    assert_int_equal(plan(NULL, 0, &bad, 1, order), TASKQ_EINVAL);
    /* limits */
    assert_int_equal(flow_plan(NULL, TQ_GRAPH_MAX + 1, NULL, 0, order, NULL), TASKQ_ETOOBIG);
    assert_int_equal(flow_plan(NULL, 0, NULL, TQ_GROUPS_MAX + 1, order, NULL), TASKQ_ETOOBIG);
}

static void test_plan_long_chain(void **state)
{
    (void)state;
    /* the whole graph limit, given backwards: no recursion, linear time */
    size_t n = TQ_GRAPH_MAX;
    flow_node_t *v = malloc(n * sizeof *v);
    size_t *order = malloc(n * sizeof *order);
    assert_non_null(v);
    assert_non_null(order);
    for (size_t i = 0; i < n; i++)
        v[i] = node(i + 1 < n ? (int32_t)(i + 1) : -1, -1, 0, -1);
    assert_int_equal(flow_plan(v, n, NULL, 0, order, NULL), TASKQ_OK);
    for (size_t k = 0; k < n; k++)
        assert_int_equal(order[k], n - 1 - k);
    free(v);
    free(order);
}

static void test_on_fail_words(void **state)
{
    (void)state;
    assert_int_equal(flow_on_fail(NULL), 0);
    assert_int_equal(flow_on_fail(""), 0);
    assert_int_equal(flow_on_fail("fail"), 0);
    assert_int_equal(flow_on_fail("settle"), 1);
    assert_int_equal(flow_on_fail("Settle"), -1);
}

/* ---- flow_map_args -------------------------------------------------------------- */

static void expect_chunks(const uint8_t *items, size_t len, size_t chunk, size_t nexp,
                          const uint8_t *const *exp, const size_t *explen)
{
    uint8_t *buf = NULL;
    size_t *off = NULL, n = 99;
    assert_int_equal(flow_map_args(items, len, chunk, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, nexp);
    for (size_t k = 0; k < n; k++) {
        assert_int_equal(off[k + 1] - off[k], explen[k]);
        assert_memory_equal(buf + off[k], exp[k], explen[k]);
    }
    free(buf);
    free(off);
}

static void test_map_chunks(void **state)
{
    (void)state;
    static const uint8_t five[] = {0x95, 1, 2, 3, 4, 5};
    static const uint8_t c0[] = {0x91, 0x92, 1, 2}, c1[] = {0x91, 0x92, 3, 4},
                         c2[] = {0x91, 0x91, 5};
    const uint8_t *e2[] = {c0, c1, c2};
    size_t l2[] = {4, 4, 3};
    expect_chunks(five, sizeof five, 2, 3, e2, l2);
    /* chunk 0 means 1; one item per task: [[item]] */
    static const uint8_t d0[] = {0x91, 0x91, 1}, d4[] = {0x91, 0x91, 5};
    uint8_t *buf = NULL;
    size_t *off = NULL, n = 0;
    assert_int_equal(flow_map_args(five, sizeof five, 0, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(buf + off[0], d0, 3);
    assert_memory_equal(buf + off[4], d4, 3);
    free(buf);
    free(off);
    /* the empty array: no member */
    static const uint8_t none[] = {0x90};
    assert_int_equal(flow_map_args(none, 1, 3, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, 0);
    free(buf);
    free(off);
    /* items of every kind are copied byte for byte: str8, negative int,
     * float64, bin, fixext, map, nested array, nil */
    static const uint8_t mixed[] = {
        0x98,
        0xd9, 0x03, 'a', 'b', 'c',
        0xd0, 0x85,
        0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,
        0xc4, 0x02, 0xff, 0x00,
        0xd4, 0x01, 0x07,
        0x81, 0xa1, 'k', 0x92, 0x01, 0xc0,
        0x92, 0x90, 0x80,
        0xc0,
    };
    static const uint8_t m0[] = {0x91, 0x93, 0xd9, 0x03, 'a', 'b', 'c', 0xd0, 0x85, 0xcb, 0x3f,
                                 0xf8, 0, 0, 0, 0, 0, 0};
    static const uint8_t m1[] = {0x91, 0x93, 0xc4, 0x02, 0xff, 0x00, 0xd4, 0x01, 0x07,
                                 0x81, 0xa1, 'k', 0x92, 0x01, 0xc0};
    static const uint8_t m2[] = {0x91, 0x92, 0x92, 0x90, 0x80, 0xc0};
    const uint8_t *em[] = {m0, m1, m2};
    size_t lm[] = {sizeof m0, sizeof m1, sizeof m2};
    expect_chunks(mixed, sizeof mixed, 3, 3, em, lm);
}

static void test_map_big_and_bad(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t *off = NULL, n = 0;
    /* 20 items in one chunk: an array16 header inside */
    uint8_t twenty[3 + 20] = {0xdc, 0x00, 20};
    for (int i = 0; i < 20; i++)
        twenty[3 + i] = (uint8_t)i;
    assert_int_equal(flow_map_args(twenty, sizeof twenty, 100, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(off[1], 1 + 3 + 20);
    assert_int_equal(buf[0], 0x91);
    assert_int_equal(buf[1], 0xdc);
    assert_int_equal(buf[3], 20);
    assert_memory_equal(buf + 4, twenty + 3, 20);
    free(buf);
    free(off);
    /* every chunk is one msgpack value that msgpack-c reads back */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(flow_map_args(twenty, sizeof twenty, 3, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, 7);
    for (size_t k = 0; k < n; k++) {
        size_t pos = 0;
        assert_int_equal(msgpack_unpack_next(&u, (const char *)buf + off[k], off[k + 1] - off[k], &pos),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(pos, off[k + 1] - off[k]);
        assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
        const msgpack_object *inner = &u.data.via.array.ptr[0];
        assert_int_equal(inner->via.array.size, k < 6 ? 3 : 2);
        assert_int_equal(inner->via.array.ptr[0].via.u64, 3 * k);
    }
    msgpack_unpacked_destroy(&u);
    free(buf);
    free(off);
    /* not an array, truncated, trailing bytes, nothing */
    static const uint8_t map[] = {0x80}, trunc[] = {0x92, 0x01}, trail[] = {0x91, 0x01, 0x02},
                         str[] = {0xa1, 'x'};
    assert_int_equal(flow_map_args(map, 1, 1, &buf, &off, &n), TASKQ_EINVAL);
    assert_int_equal(flow_map_args(str, 2, 1, &buf, &off, &n), TASKQ_EINVAL);
    assert_int_equal(flow_map_args(trunc, 2, 1, &buf, &off, &n), TASKQ_EINVAL);
    assert_int_equal(flow_map_args(trail, 3, 1, &buf, &off, &n), TASKQ_EINVAL);
    assert_int_equal(flow_map_args(trail, 0, 1, &buf, &off, &n), TASKQ_EINVAL);
    assert_null(buf);
    assert_null(off);
    /* too many members for one workflow (the callback needs a place) */
    size_t cnt = TQ_GRAPH_MAX;
    uint8_t *many = malloc(5 + cnt);
    assert_non_null(many);
    many[0] = 0xdd;
    many[1] = 0;
    many[2] = 0;
    many[3] = (uint8_t)(cnt >> 8);
    many[4] = (uint8_t)cnt;
    memset(many + 5, 0x01, cnt);
    assert_int_equal(flow_map_args(many, 5 + cnt, 1, &buf, &off, &n), TASKQ_ETOOBIG);
    assert_int_equal(flow_map_args(many, 5 + cnt, 2, &buf, &off, &n), TASKQ_OK);
    assert_int_equal(n, cnt / 2);
    free(buf);
    free(off);
    free(many);
    /* one chunk past the args limit */
    size_t big = TQ_ARGS_MAX;
    uint8_t *huge = malloc(big + 16);
    assert_non_null(huge);
    huge[0] = 0x92;
    huge[1] = 0xc6; /* bin32 of big - 7 bytes: [[it]] is exactly the limit */
    uint32_t bl = (uint32_t)(big - 7);
    huge[2] = (uint8_t)(bl >> 24);
    huge[3] = (uint8_t)(bl >> 16);
    huge[4] = (uint8_t)(bl >> 8);
    huge[5] = (uint8_t)bl;
    memset(huge + 6, 0xab, bl);
    huge[6 + bl] = 0x07;
    size_t hl = 7 + bl;
    assert_int_equal(flow_map_args(huge, hl, 1, &buf, &off, &n), TASKQ_OK); /* each alone fits */
    free(buf);
    free(off);
    assert_int_equal(flow_map_args(huge, hl, 2, &buf, &off, &n), TASKQ_ETOOBIG);
    free(huge);
}

/* ---- the public builder and the checks before sending ------------------------------ */

static void test_builder_validation(void **state)
{
    (void)state;
    taskq_flow_t *f = taskq_flow_new();
    assert_non_null(f);
    taskq_task_spec_t s = {.name = "a.b"};
    taskq_task_spec_t bad = {.name = "bad name"};
    assert_int_equal(taskq_flow_add(f, &bad), -1);
    assert_int_equal(taskq_flow_add(f, NULL), -1);
    int a = taskq_flow_add(f, &s), b = taskq_flow_add(f, &s), c = taskq_flow_add(f, &s),
        d = taskq_flow_add(f, &s);
    assert_int_equal(a, 0);
    assert_int_equal(d, 3);
    /* ids are generated at once and distinct */
    assert_false(taskq_id_is_zero(taskq_flow_task_id(f, a)));
    assert_memory_not_equal(taskq_flow_task_id(f, a), taskq_flow_task_id(f, b), 16);
    assert_null(taskq_flow_task_id(f, 4));
    assert_int_equal(taskq_flow_after(f, a, a), -1);
    assert_int_equal(taskq_flow_after(f, a, 9), -1);
    assert_int_equal(taskq_flow_after(f, b, a), 0);
    assert_int_equal(taskq_flow_after(f, b, c), -1); /* one parent per node */
    int dup[2] = {c, c};
    assert_int_equal(taskq_flow_group(f, dup, 2), -1);
    int m[2] = {b, c};
    int g = taskq_flow_group(f, m, 2);
    assert_int_equal(g, 0);
    assert_non_null(taskq_flow_group_id(f, g));
    assert_null(taskq_flow_group_id(f, 1));
    assert_int_equal(taskq_flow_group(f, m, 1), -1);        /* b is in a group already */
    assert_int_equal(taskq_flow_chord(f, g, b, NULL), -1);  /* a member cannot be its callback */
    assert_int_equal(taskq_flow_chord(f, g, d, "maybe"), -1);
    assert_int_equal(taskq_flow_chord(f, 5, d, NULL), -1);
    assert_int_equal(taskq_flow_chord(f, g, d, "settle"), 0);
    assert_int_equal(taskq_flow_chord(f, g, d, NULL), -1);  /* one callback per group */
    int e0 = taskq_flow_group(f, NULL, 0);                  /* an empty group is fine */
    assert_int_equal(e0, 1);
    assert_int_equal(taskq_flow_chord(f, e0, d, NULL), -1); /* d is a callback already */
    /* a cycle through the chord: a waits for the callback d, b (a member)
     * waits for a: refused before anything is sent */
    assert_int_equal(taskq_flow_after(f, a, d), 0);
    taskq_err_t err;
    taskq_client_t *cl = taskq_client_new(NOBODY, &err);
    assert_non_null(cl);
    taskq_client_set_timeout(cl, 200);
    assert_int_equal(taskq_flow_submit(cl, f), TASKQ_EINVAL);
    taskq_flow_destroy(&f);
    assert_null(f);
    taskq_flow_destroy(&f);
    taskq_client_destroy(&cl);
}

static void test_refused_before_sending(void **state)
{
    (void)state;
    taskq_err_t err;
    taskq_client_t *c = taskq_client_new(NOBODY, &err);
    assert_non_null(c);
    taskq_client_set_timeout(c, 200);
    /* a chained task must take array args (the parent's result is appended) */
    static const uint8_t one[] = {0x01}, arr[] = {0x91, 0x01};
    taskq_task_spec_t ch[2] = {{.name = "a"}, {.name = "b", .args = one, .args_len = 1}};
    assert_int_equal(taskq_chain(c, ch, 2), TASKQ_EINVAL);
    taskq_task_spec_t cb = {.name = "cb", .args = one, .args_len = 1};
    taskq_task_spec_t mem[1] = {{.name = "m", .args = arr, .args_len = 2}};
    taskq_id_t gid;
    assert_int_equal(taskq_chord(c, mem, 1, &cb, NULL, &gid), TASKQ_EINVAL);
    cb.args = arr;
    cb.args_len = 2;
    assert_int_equal(taskq_chord(c, mem, 1, &cb, "sometimes", &gid), TASKQ_EINVAL);
    /* map: items must be an array; a bad name */
    taskq_id_t *ids = (taskq_id_t *)1;
    size_t nids = 7;
    assert_int_equal(taskq_map(c, "m", one, 1, 1, NULL, &gid, &ids, &nids), TASKQ_EINVAL);
    assert_null(ids);
    assert_int_equal(nids, 0);
    assert_int_equal(taskq_map(c, "bad name", arr, 2, 1, NULL, &gid, &ids, &nids), TASKQ_ENAME);
    /* unique keys and TTLs */
    taskq_task_spec_t u = {.name = "u", .unique_key = "k", .unique = 1};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    u = (taskq_task_spec_t){.name = "u", .unique_until = "start"};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    u = (taskq_task_spec_t){.name = "u", .unique = 1, .unique_until = "later"};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    u = (taskq_task_spec_t){.name = "u", .unique_for_ms = 1000};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    u = (taskq_task_spec_t){.name = "u", .unique_key = "tab\there"};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    char longkey[TQ_UNIQUE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    u = (taskq_task_spec_t){.name = "u", .unique_key = longkey};
    assert_int_equal(taskq_submit(c, &u), TASKQ_ETOOBIG);
    u = (taskq_task_spec_t){.name = "u", .result_ttl_ms = -1};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    u = (taskq_task_spec_t){.name = "u", .result_ttl_ms = TQ_TTL_MAX_MS + 1};
    assert_int_equal(taskq_submit(c, &u), TASKQ_EINVAL);
    /* revoke: a bulk revoke needs a selector; terminal states; the reason */
    taskq_revoke_opts_t ro = {.states = 1u << TASKQ_STATE_QUEUED};
    taskq_revoke_result_t rr;
    assert_int_equal(taskq_revoke(c, NULL, 0, &ro, &rr), TASKQ_EINVAL);
    ro = (taskq_revoke_opts_t){.queue = "q", .states = 1u << TASKQ_STATE_SUCCEEDED};
    assert_int_equal(taskq_revoke(c, NULL, 0, &ro, &rr), TASKQ_EINVAL);
    ro = (taskq_revoke_opts_t){.queue = "Not A Queue"};
    assert_int_equal(taskq_revoke(c, NULL, 0, &ro, &rr), TASKQ_ENAME);
    char reason[TQ_REASON_MAX + 2];
    memset(reason, 'r', sizeof reason - 1);
    reason[sizeof reason - 1] = '\0';
    taskq_id_t one_id;
    taskq_id_generate(&one_id);
    ro = (taskq_revoke_opts_t){.reason = reason};
    assert_int_equal(taskq_revoke(c, &one_id, 1, &ro, &rr), TASKQ_ETOOBIG);
    ro = (taskq_revoke_opts_t){.grace_ms = -5};
    assert_int_equal(taskq_revoke(c, &one_id, 1, &ro, &rr), TASKQ_EINVAL);
    /* dead letters, purge */
    taskq_task_list_t *l = NULL;
    taskq_failed_filter_t ff = {.code = "bad code"};
    assert_int_equal(taskq_failed(c, &ff, &l), TASKQ_EINVAL);
    assert_null(l);
    ff = (taskq_failed_filter_t){.since_ms = -1};
    assert_int_equal(taskq_failed(c, &ff, &l), TASKQ_EINVAL);
    uint64_t purged = 5;
    assert_int_equal(taskq_purge(c, TASKQ_STATE_QUEUED, 0, &purged), TASKQ_EINVAL);
    assert_int_equal(purged, 0);
    assert_int_equal(taskq_purge(c, TASKQ_STATE_SUCCEEDED, -1, &purged), TASKQ_EINVAL);
    assert_int_equal(taskq_task_list_count(NULL), 0);
    assert_null(taskq_task_list_get(NULL, 0));
    taskq_task_list_destroy(&l);
    /* the new error codes have names */
    assert_string_equal(taskq_err_name(TASKQ_EPURGED), "EPURGED");
    assert_string_equal(taskq_err_name(TASKQ_ETERMINAL), "ETERMINAL");
    taskq_client_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_orders),
        cmocka_unit_test(test_plan_refusals),
        cmocka_unit_test(test_plan_long_chain),
        cmocka_unit_test(test_on_fail_words),
        cmocka_unit_test(test_map_chunks),
        cmocka_unit_test(test_map_big_and_bad),
        cmocka_unit_test(test_builder_validation),
        cmocka_unit_test(test_refused_before_sending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
