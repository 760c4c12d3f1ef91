/* test_store_flow.c - the store's task lifecycle verbs (issue 7): workflow
 * fields and the pending state, dependencies released with replaced args,
 * group counters, members and results, revoke and fail-before-run (CAS and
 * ETERMINAL), TTLs and purge (order, counter, horizon, groups and keys that
 * go with their tasks), selections and the failed listing, re-run links,
 * unique keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "store_fx.h"

static int setup(void **state)
{
    return fx_setup(state, "test_store_flow", STORE_DURABILITY_NORMAL, true);
}

static int teardown(void **state)
{
    return fx_teardown(state);
}

/* A UUIDv7-shaped id: unix ms ts in bytes 0..5, n in byte 15. */
static taskq_id_t tid_at(int64_t ts, uint8_t n)
{
    taskq_id_t id;
    memset(id.b, 0, sizeof id.b);
    for (int i = 0; i < 6; i++)
        id.b[i] = (uint8_t)(ts >> (8 * (5 - i)));
    id.b[6] = 0x70;
    id.b[15] = n;
    return id;
}

static taskq_id_t tid(uint8_t n)
{
    return tid_at(1000 + n, n);
}

static const taskq_id_t ZERO_ID = {{0}};

static store_new_task_t task(uint8_t n, const char *name, const char *queue)
{
    store_new_task_t t;
    memset(&t, 0, sizeof t);
    t.id = tid(n);
    t.name = proto_str(name);
    t.args.ptr = (const uint8_t *)"\x91\x01";
    t.args.len = 2;
    t.max_attempts = 2;
    t.queue = proto_str(queue);
    t.priority = 5;
    t.state = TASKQ_STATE_QUEUED;
    t.policy.jitter = -1;
    t.schedule = proto_str("");
    t.submitted_at = 100 + n;
    return t;
}

static void put(store_t *s, const store_new_task_t *t)
{
    bool inserted = false;
    assert_int_equal(store_insert_task(s, t, &inserted), TASKQ_OK);
    assert_true(inserted);
}

static void insert(store_t *s, uint8_t n, const char *name, const char *queue)
{
    store_new_task_t t = task(n, name, queue);
    put(s, &t);
}

/* A pending task waiting for deps_left dependencies. */
static void insert_pending(store_t *s, uint8_t n, const taskq_id_t *parent, uint32_t deps)
{
    store_new_task_t t = task(n, "child", "default");
    t.state = TASKQ_STATE_PENDING;
    t.deps_left = deps;
    if (parent)
        t.parent = *parent;
    put(s, &t);
}

static void expect_str(proto_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    if (s.len)
        assert_memory_equal(s.ptr, want, s.len);
}

static void expect_id(const taskq_id_t *got, const taskq_id_t *want)
{
    assert_memory_equal(got->b, want->b, sizeof want->b);
}

static store_outcome_t outcome(int to, const char *code, const char *msg, int64_t now)
{
    store_outcome_t o;
    memset(&o, 0, sizeof o);
    o.to_state = to;
    o.failure = to == TASKQ_STATE_FAILED || to == TASKQ_STATE_RETRYING;
    o.code = proto_str(code);
    o.message = proto_str(msg);
    o.now = now;
    if (to == TASKQ_STATE_SUCCEEDED) {
        o.result.ptr = (const uint8_t *)"\x2a";
        o.result.len = 1;
    }
    return o;
}

/* Dispatches task n (attempt 1) and ends it in state `to` at now. */
static void run_to(store_t *s, uint8_t n, int to, const char *code, int64_t now)
{
    taskq_id_t id = tid(n);
    assert_int_equal(store_mark_running(s, &id, 1, "node", now - 1, now + 100), TASKQ_OK);
    store_outcome_t o = outcome(to, code, to == TASKQ_STATE_FAILED ? "boom" : "", now);
    assert_int_equal(store_end_attempt(s, &id, 1, &o), TASKQ_OK);
}

static int state_of(store_t *s, uint8_t n)
{
    proto_task_rec_t rec;
    taskq_id_t id = tid(n);
    taskq_err_t err = store_get_task(s, &id, &rec);
    return err == TASKQ_OK ? rec.state : -(int)err;
}

static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* ids collected by a store_task_fn / store_member_fn (last byte) */
typedef struct {
    int n;
    uint8_t id[64];
    uint32_t index[64];
    store_t *s; /* set: the callback revokes each task (may change rows) */
} ids_t;

static void on_task(const taskq_id_t *id, void *arg)
{
    ids_t *r = arg;
    r->id[r->n++] = id->b[15];
    if (r->s)
        assert_int_equal(store_revoke(r->s, id, "cb", 1, NULL, NULL), TASKQ_OK);
}

static void on_member(const store_member_t *m, void *arg)
{
    ids_t *r = arg;
    r->index[r->n] = m->index;
    r->id[r->n++] = m->id.b[15];
}

typedef struct {
    bool ready;
    uint8_t id;
    uint8_t args[8];
    uint32_t args_len;
} first_t;

static bool on_ready(const store_queued_t *row, void *arg)
{
    first_t *f = arg;
    f->ready = true;
    f->id = row->id.b[15];
    f->args_len = row->args.len < sizeof f->args ? row->args.len : sizeof f->args;
    memcpy(f->args, row->args.ptr, f->args_len);
    return false;
}

static void expect_counts(store_t *s, const char *queue, int state, uint64_t want)
{
    uint64_t c[TASKQ_NSTATES];
    store_queue_counts(s, queue, c);
    assert_int_equal(c[state], want);
    uint64_t all[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(s, all, &total), TASKQ_OK);
    assert_true(all[state] >= want);
}

/* ---- tests ---------------------------------------------------------------- */

/* The lifecycle fields are stored and read back; pending needs deps and
 * is counted per queue but never dispatched. */
static void test_flow_insert_fields_and_pending(void **state)
{
    fx_t *fx = *state;
    taskq_id_t p = tid(1), g = tid_at(5, 99), old = tid(9);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "parent", "default");
    store_new_task_t t = task(2, "child", "default");
    t.state = TASKQ_STATE_PENDING;
    t.deps_left = 1;
    t.parent = p;
    t.group = g;
    t.group_index = 3;
    t.immutable = true;
    t.unique_key = proto_str("k1");
    t.unique_until = 1;
    t.result_ttl_ms = 77;
    t.rerun_of = old;
    put(fx->s, &t);
    /* pending iff deps_left > 0 */
    store_new_task_t bad = task(3, "x", "default");
    bad.state = TASKQ_STATE_PENDING;
    assert_int_equal(store_insert_task(fx->s, &bad, NULL), TASKQ_EINVAL);
    bad.state = TASKQ_STATE_QUEUED;
    bad.deps_left = 1;
    assert_int_equal(store_insert_task(fx->s, &bad, NULL), TASKQ_EINVAL);
    /* a known id with lifecycle fields is still a no-op */
    bool inserted = true;
    assert_int_equal(store_insert_task(fx->s, &t, &inserted), TASKQ_OK);
    assert_false(inserted);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    proto_task_rec_t rec;
    taskq_id_t c = tid(2);
    assert_int_equal(store_get_task(fx->s, &c, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_PENDING);
    expect_id(&rec.parent_id, &p);
    expect_id(&rec.group_id, &g);
    expect_id(&rec.rerun_of, &old);
    expect_id(&rec.rerun_by, &ZERO_ID);
    expect_str(rec.unique_key, "k1");
    assert_int_equal(store_get_task(fx->s, &p, &rec), TASKQ_OK);
    expect_id(&rec.parent_id, &ZERO_ID);
    expect_id(&rec.group_id, &ZERO_ID);
    expect_str(rec.unique_key, "");

    store_pending_t pd;
    assert_int_equal(store_get_pending(fx->s, &c, &pd), TASKQ_OK);
    assert_int_equal(pd.state, TASKQ_STATE_PENDING);
    assert_true(pd.immutable);
    assert_false(pd.is_callback);
    expect_id(&pd.group, &g);
    assert_int_equal(pd.deps_left, 1);
    assert_int_equal(pd.args.len, 2);
    assert_memory_equal(pd.args.ptr, "\x91\x01", 2);
    taskq_id_t nope = tid(77);
    assert_int_equal(store_get_pending(fx->s, &nope, &pd), TASKQ_ENOTFOUND);

    expect_counts(fx->s, "default", TASKQ_STATE_PENDING, 1);
    expect_counts(fx->s, "default", TASKQ_STATE_QUEUED, 1);
    first_t f = {0};
    assert_int_equal(store_next_ready(fx->s, "default", NULL, 0, 10, on_ready, &f), TASKQ_OK);
    assert_int_equal(f.id, 1); /* only the parent */
    const char *ex[] = {"parent"};
    memset(&f, 0, sizeof f);
    assert_int_equal(store_next_ready(fx->s, "default", ex, 1, 10, on_ready, &f), TASKQ_OK);
    assert_false(f.ready); /* the pending child is not ready either */
    bool terminal = true;
    assert_int_equal(store_is_terminal(fx->s, &c, &terminal), TASKQ_OK);
    assert_false(terminal);
    /* counts persist */
    fx_reopen(fx);
    expect_counts(fx->s, "default", TASKQ_STATE_PENDING, 1);
}

/* dep_done counts down; the last one queues the task, with its args
 * replaced when given. */
static void test_flow_dep_done_releases_with_replaced_args(void **state)
{
    fx_t *fx = *state;
    taskq_id_t p = tid(1), c = tid(2), d = tid(3);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "parent", "default");
    insert_pending(fx->s, 2, &p, 2);
    insert_pending(fx->s, 3, &p, 1);
    bool queued = true;
    proto_bin_t none = {0};
    assert_int_equal(store_dep_done(fx->s, &c, none, &queued), TASKQ_OK);
    assert_false(queued);
    store_pending_t pd;
    assert_int_equal(store_get_pending(fx->s, &c, &pd), TASKQ_OK);
    assert_int_equal(pd.deps_left, 1);
    assert_int_equal(pd.state, TASKQ_STATE_PENDING);
    proto_bin_t args = {(const uint8_t *)"\x92\x01\x2a", 3};
    assert_int_equal(store_dep_done(fx->s, &c, args, &queued), TASKQ_OK);
    assert_true(queued);
    expect_counts(fx->s, "default", TASKQ_STATE_PENDING, 1);
    expect_counts(fx->s, "default", TASKQ_STATE_QUEUED, 2);
    /* not pending any more: a CAS miss */
    assert_int_equal(store_dep_done(fx->s, &c, none, &queued), TASKQ_ESTALE);
    assert_false(queued);
    taskq_id_t nope = tid(50);
    assert_int_equal(store_dep_done(fx->s, &nope, none, &queued), TASKQ_ENOTFOUND);
    /* empty new args (ptr set, no bytes) become [] */
    proto_bin_t empty = {(const uint8_t *)"", 0};
    assert_int_equal(store_dep_done(fx->s, &d, empty, &queued), TASKQ_OK);
    assert_true(queued);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    /* dispatch sees the replaced args: parent first (FIFO), then c, d */
    first_t f = {0};
    const char *ex[] = {"parent"};
    assert_int_equal(store_next_ready(fx->s, "default", ex, 1, 10, on_ready, &f), TASKQ_OK);
    assert_int_equal(f.id, 2);
    assert_int_equal(f.args_len, 3);
    assert_memory_equal(f.args, "\x92\x01\x2a", 3);
    assert_int_equal(store_get_pending(fx->s, &d, &pd), TASKQ_OK);
    assert_int_equal(pd.state, TASKQ_STATE_QUEUED);
    assert_int_equal(pd.args.len, 1);
    assert_memory_equal(pd.args.ptr, "\x90", 1);
    /* the rolled back release leaves it pending */
    taskq_id_t e = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_pending(fx->s, 4, &p, 1);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_dep_done(fx->s, &e, args, &queued), TASKQ_OK);
    store_rollback(fx->s);
    assert_int_equal(state_of(fx->s, 4), TASKQ_STATE_PENDING);
    expect_counts(fx->s, "default", TASKQ_STATE_PENDING, 1);
}

/* store_children: the pending children of a parent only; the callback may
 * change them (they were collected first). */
static void test_flow_children(void **state)
{
    fx_t *fx = *state;
    taskq_id_t p = tid(1), q = tid(2), c3 = tid(3);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "parent", "default");
    insert(fx->s, 2, "other", "default");
    insert_pending(fx->s, 3, &p, 1);
    insert_pending(fx->s, 4, &p, 1);
    insert_pending(fx->s, 5, &q, 1);
    insert_pending(fx->s, 6, &p, 1);
    proto_bin_t none = {0};
    bool queued;
    assert_int_equal(store_dep_done(fx->s, &c3, none, &queued), TASKQ_OK); /* no longer pending */
    ids_t r = {0};
    assert_int_equal(store_children(fx->s, &p, on_task, &r), TASKQ_OK);
    assert_int_equal(r.n, 2);
    assert_true((r.id[0] == 4 && r.id[1] == 6) || (r.id[0] == 6 && r.id[1] == 4));
    /* revoking each child inside the callback */
    memset(&r, 0, sizeof r);
    r.s = fx->s;
    assert_int_equal(store_children(fx->s, &p, on_task, &r), TASKQ_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(state_of(fx->s, 4), TASKQ_STATE_REVOKED);
    assert_int_equal(state_of(fx->s, 6), TASKQ_STATE_REVOKED);
    memset(&r, 0, sizeof r);
    assert_int_equal(store_children(fx->s, &p, on_task, &r), TASKQ_OK);
    assert_int_equal(r.n, 0);
    taskq_id_t none_parent = tid(60);
    assert_int_equal(store_children(fx->s, &none_parent, on_task, &r), TASKQ_OK);
    assert_int_equal(r.n, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
}

typedef struct {
    int n;
    store_member_t m[4];
    char err[4][32], code[4][32];
    uint8_t res[4];
} res_t;

static void on_result(const store_member_t *m, void *arg)
{
    res_t *r = arg;
    r->m[r->n] = *m;
    snprintf(r->err[r->n], sizeof r->err[0], "%.*s", (int)m->error.len, m->error.ptr);
    snprintf(r->code[r->n], sizeof r->code[0], "%.*s", (int)m->code.len, m->code.ptr);
    r->res[r->n] = m->result.len ? m->result.ptr[0] : 0;
    r->n++;
}

/* Group rows: insert (idempotent), counters, members and results in member
 * order, the callback apart. */
static void test_flow_group_counters_members_results(void **state)
{
    fx_t *fx = *state;
    taskq_id_t g = tid_at(7, 200), cb = tid(9), nog = tid_at(7, 201);
    store_group_t grp;
    memset(&grp, 0, sizeof grp);
    grp.id = g;
    grp.total = 3;
    grp.has_callback = true;
    grp.callback = cb;
    grp.on_fail = 1;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_group_insert(fx->s, &grp), TASKQ_OK);
    /* members inserted out of index order */
    const uint8_t members[3] = {3, 1, 2};
    const uint32_t index[3] = {2, 0, 1};
    for (int i = 0; i < 3; i++) {
        store_new_task_t t = task(members[i], "m", "default");
        t.group = g;
        t.group_index = index[i];
        put(fx->s, &t);
    }
    store_new_task_t t = task(9, "cb", "default");
    t.state = TASKQ_STATE_PENDING;
    t.deps_left = 1;
    t.group = g;
    t.is_callback = true;
    put(fx->s, &t);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    store_group_t out;
    assert_int_equal(store_group_get(fx->s, &g, &out), TASKQ_OK);
    expect_id(&out.id, &g);
    assert_int_equal(out.total, 3);
    assert_int_equal(out.succeeded, 0);
    assert_int_equal(out.failed, 0);
    assert_true(out.has_callback);
    expect_id(&out.callback, &cb);
    assert_int_equal(out.on_fail, 1);
    assert_int_equal(store_group_get(fx->s, &nog, &out), TASKQ_ENOTFOUND);

    ids_t r = {0};
    assert_int_equal(store_group_members(fx->s, &g, on_member, &r), TASKQ_OK);
    assert_int_equal(r.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.index[i], (uint32_t)i);
        assert_int_equal(r.id[i], i + 1);
    }
    assert_int_equal(store_group_members(fx->s, &nog, on_member, &r), TASKQ_ENOTFOUND);

    /* members end: 1 succeeds, 2 fails, 3 is revoked */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    run_to(fx->s, 1, TASKQ_STATE_SUCCEEDED, "", 50);
    assert_int_equal(store_group_member_ended(fx->s, &g, true, &out), TASKQ_OK);
    assert_int_equal(out.succeeded, 1);
    assert_int_equal(out.failed, 0);
    run_to(fx->s, 2, TASKQ_STATE_FAILED, "e.bad", 51);
    assert_int_equal(store_group_member_ended(fx->s, &g, false, &out), TASKQ_OK);
    assert_int_equal(out.failed, 1);
    taskq_id_t m3 = tid(3);
    assert_int_equal(store_revoke(fx->s, &m3, "upstream_failed", 52, NULL, NULL), TASKQ_OK);
    assert_int_equal(store_group_member_ended(fx->s, &g, false, NULL), TASKQ_OK);
    /* every member counted: one more is a CAS miss that changes nothing */
    assert_int_equal(store_group_member_ended(fx->s, &g, true, &out), TASKQ_ESTALE);
    assert_int_equal(out.succeeded, 1);
    assert_int_equal(out.failed, 2);
    assert_int_equal(store_group_member_ended(fx->s, &nog, true, &out), TASKQ_ENOTFOUND);
    /* a known group id: a no-op, counters kept */
    grp.total = 50;
    assert_int_equal(store_group_insert(fx->s, &grp), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_group_get(fx->s, &g, &out), TASKQ_OK);
    assert_int_equal(out.total, 3);
    assert_int_equal(out.succeeded + out.failed, 3);

    /* a rolled-back count is not kept */
    taskq_id_t g2 = tid_at(8, 202);
    store_group_t grp2;
    memset(&grp2, 0, sizeof grp2);
    grp2.id = g2;
    grp2.total = 0; /* empty group, no callback */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_group_insert(fx->s, &grp2), TASKQ_OK);
    assert_int_equal(store_group_member_ended(fx->s, &g2, true, NULL), TASKQ_ESTALE);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_group_get(fx->s, &g2, &out), TASKQ_OK);
    assert_false(out.has_callback);
    assert_int_equal(out.total, 0);
    assert_int_equal(out.on_fail, 0);

    /* results in member order: result / error and code */
    res_t rr;
    memset(&rr, 0, sizeof rr);
    assert_int_equal(store_group_results(fx->s, &g, on_result, &rr), TASKQ_OK);
    assert_int_equal(rr.n, 3);
    assert_int_equal(rr.m[0].index, 0);
    assert_int_equal(rr.m[0].state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rr.res[0], 0x2a);
    assert_int_equal(rr.m[1].state, TASKQ_STATE_FAILED);
    assert_string_equal(rr.err[1], "boom");
    assert_string_equal(rr.code[1], "e.bad");
    assert_int_equal(rr.m[2].state, TASKQ_STATE_REVOKED);
    assert_string_equal(rr.err[2], "upstream_failed");
    assert_int_equal(rr.m[2].index, 2);
    assert_int_equal(store_group_results(fx->s, &nog, on_result, &rr), TASKQ_ENOTFOUND);
}

typedef struct {
    int n;
    char state[4][16], message[4][32];
    int64_t finished[4];
} hist_t;

static void on_attempt(const store_attempt_t *a, void *arg)
{
    hist_t *h = arg;
    snprintf(h->state[h->n], sizeof h->state[0], "%s", a->state);
    snprintf(h->message[h->n], sizeof h->message[0], "%s", a->message);
    h->finished[h->n] = a->finished_at;
    h->n++;
}

/* Revoke: every non-terminal state; a running attempt ends (its row says
 * so, its later result is stale); terminal: ETERMINAL and the state. */
static void test_flow_revoke(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "default");             /* queued */
    insert(fx->s, 2, "t", "default");             /* running */
    store_new_task_t t = task(3, "t", "default"); /* scheduled */
    t.state = TASKQ_STATE_SCHEDULED;
    t.due_at = 500;
    put(fx->s, &t);
    insert(fx->s, 4, "t", "default"); /* retrying */
    insert_pending(fx->s, 5, NULL, 1);
    insert(fx->s, 6, "t", "default"); /* succeeded */
    taskq_id_t id2 = tid(2), id4 = tid(4);
    assert_int_equal(store_mark_running(fx->s, &id2, 1, "node", 10, 99), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &id4, 1, "node", 10, 99), TASKQ_OK);
    store_outcome_t rt = outcome(TASKQ_STATE_RETRYING, "e", "x", 11);
    rt.due_at = 600;
    assert_int_equal(store_end_attempt(fx->s, &id4, 1, &rt), TASKQ_OK);
    run_to(fx->s, 6, TASKQ_STATE_SUCCEEDED, "", 12);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    const int before[] = {TASKQ_STATE_QUEUED, TASKQ_STATE_RUNNING, TASKQ_STATE_SCHEDULED,
                          TASKQ_STATE_RETRYING, TASKQ_STATE_PENDING};
    for (uint8_t n = 1; n <= 5; n++) {
        taskq_id_t id = tid(n);
        int prev = -1;
        uint32_t attempt = 99;
        assert_int_equal(store_revoke(fx->s, &id, "by user", 20, &prev, &attempt), TASKQ_OK);
        assert_int_equal(prev, before[n - 1]);
        assert_int_equal(attempt, n == 2 ? 1u : 0u);
        assert_int_equal(state_of(fx->s, n), TASKQ_STATE_REVOKED);
    }
    uint64_t c[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(fx->s, c, &total), TASKQ_OK);
    assert_int_equal(c[TASKQ_STATE_REVOKED], 5);
    assert_int_equal(c[TASKQ_STATE_QUEUED] + c[TASKQ_STATE_RUNNING] + c[TASKQ_STATE_SCHEDULED] +
                         c[TASKQ_STATE_RETRYING] + c[TASKQ_STATE_PENDING],
                     0);
    /* terminal: ETERMINAL with its state, nothing changes */
    taskq_id_t id1 = tid(1), id6 = tid(6), nope = tid(70);
    int prev = -1;
    uint32_t attempt = 5;
    assert_int_equal(store_revoke(fx->s, &id6, "x", 30, &prev, &attempt), TASKQ_ETERMINAL);
    assert_int_equal(prev, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(attempt, 0);
    assert_int_equal(store_revoke(fx->s, &id1, "again", 30, &prev, NULL), TASKQ_ETERMINAL);
    assert_int_equal(prev, TASKQ_STATE_REVOKED);
    assert_int_equal(store_revoke(fx->s, &nope, "x", 30, NULL, NULL), TASKQ_ENOTFOUND);
    /* the revoked attempt's late result and progress are stale */
    store_outcome_t ok = outcome(TASKQ_STATE_SUCCEEDED, "", "", 40);
    assert_int_equal(store_end_attempt(fx->s, &id2, 1, &ok), TASKQ_ESTALE);
    assert_int_equal(store_set_progress(fx->s, &id2, 1, 1, 2, proto_str("p")), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &id1, 1, "node", 41, 99), TASKQ_ESTALE);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &id2, &rec), TASKQ_OK);
    expect_str(rec.error, "by user");
    assert_int_equal(rec.finished_at, 20);
    assert_int_equal(rec.due_at, 0);
    assert_int_equal(rec.attempts, 1);
    hist_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &id2, on_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.state[0], "revoked");
    assert_string_equal(h.message[0], "by user");
    assert_int_equal(h.finished[0], 20);
    /* revoked tasks are neither due nor ready */
    size_t n = 9;
    int64_t next = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_promote_due(fx->s, 10000, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    first_t f = {0};
    assert_int_equal(store_next_ready(fx->s, "default", NULL, 0, 10, on_ready, &f), TASKQ_OK);
    assert_false(f.ready);
    /* a rolled-back revoke */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 7, "t", "default");
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    taskq_id_t id7 = tid(7);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_revoke(fx->s, &id7, "x", 50, NULL, NULL), TASKQ_OK);
    store_rollback(fx->s);
    assert_int_equal(state_of(fx->s, 7), TASKQ_STATE_QUEUED);
    expect_counts(fx->s, "default", TASKQ_STATE_QUEUED, 1);
    expect_counts(fx->s, "default", TASKQ_STATE_REVOKED, 5);
}

/* fail_unrun: pending / queued -> failed with a code, no attempt. */
static void test_flow_fail_unrun(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1), b = tid(2), c = tid(3), nope = tid(40);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_pending(fx->s, 1, NULL, 1);
    insert(fx->s, 2, "t", "default");
    insert(fx->s, 3, "t", "default");
    assert_int_equal(store_mark_running(fx->s, &c, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_fail_unrun(fx->s, &a, "taskq.too_large", "results too large", 9),
                     TASKQ_OK);
    assert_int_equal(store_fail_unrun(fx->s, &b, "taskq.too_large", "", 9), TASKQ_OK);
    assert_int_equal(store_fail_unrun(fx->s, &c, "x", "y", 9), TASKQ_ESTALE);
    assert_int_equal(store_fail_unrun(fx->s, &a, "x", "y", 9), TASKQ_ESTALE);
    assert_int_equal(store_fail_unrun(fx->s, &nope, "x", "y", 9), TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_FAILED);
    expect_str(rec.code, "taskq.too_large");
    expect_str(rec.error, "results too large");
    assert_int_equal(rec.finished_at, 9);
    assert_int_equal(rec.attempts, 0);
    assert_int_equal(store_get_task(fx->s, &b, &rec), TASKQ_OK);
    expect_str(rec.error, "taskq.too_large"); /* no message: the code */
    hist_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &a, on_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 0);
    expect_counts(fx->s, "default", TASKQ_STATE_FAILED, 2);
    expect_counts(fx->s, "default", TASKQ_STATE_PENDING, 0);
}

static int64_t purge_at_of(const char *path, uint8_t n)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT purge_at FROM tasks WHERE substr(id, 16, 1) = x'%02x'",
             (unsigned)n);
    return query_int(path, sql);
}

/* Every terminal path sets purge_at from the TTLs; store_purge_due deletes
 * in purge_at order, counts, and raises the horizon (persistent). */
static void test_flow_ttl_purge_order_and_horizon(void **state)
{
    fx_t *fx = *state;
    store_set_ttls(fx->s, 100, 1000);
    taskq_id_t g = tid_at(3, 150);
    store_group_t grp;
    memset(&grp, 0, sizeof grp);
    grp.id = g;
    grp.total = 2;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_group_insert(fx->s, &grp), TASKQ_OK);
    for (uint8_t n = 1; n <= 2; n++) { /* group members */
        store_new_task_t t = task(n, "m", "default");
        t.group = g;
        t.group_index = n - 1u;
        put(fx->s, &t);
    }
    insert(fx->s, 3, "t", "a");
    store_new_task_t t = task(4, "t", "default");
    t.result_ttl_ms = 5;
    put(fx->s, &t);
    insert(fx->s, 5, "t", "default");
    insert(fx->s, 6, "t", "default");
    insert_pending(fx->s, 7, NULL, 1);
    insert(fx->s, 8, "t", "default");
    t = task(9, "t", "default");
    t.result_ttl_ms = 5000; /* a task's own TTL does not apply to failed */
    put(fx->s, &t);
    insert(fx->s, 10, "t", "default");               /* stays queued */
    run_to(fx->s, 1, TASKQ_STATE_SUCCEEDED, "", 10); /* purge_at 110 */
    run_to(fx->s, 2, TASKQ_STATE_FAILED, "e", 5);    /* 1005 */
    taskq_id_t id3 = tid(3), id5 = tid(5), id7 = tid(7), id8 = tid(8);
    assert_int_equal(store_revoke(fx->s, &id3, "r", 20, NULL, NULL), TASKQ_OK); /* 120 */
    run_to(fx->s, 4, TASKQ_STATE_SUCCEEDED, "", 50);                            /* own TTL 5: 55 */
    assert_int_equal(store_expire_task(fx->s, &id5, 30), TASKQ_OK);             /* 130 */
    assert_int_equal(store_fail_unrun(fx->s, &id7, "c", "m", 40), TASKQ_OK);    /* 1040 */
    assert_int_equal(store_mark_running(fx->s, &id8, 1, "n", 1, 2), TASKQ_OK);
    store_outcome_t rv = outcome(TASKQ_STATE_REVOKED, "", "", 60);
    assert_int_equal(store_end_attempt(fx->s, &id8, 1, &rv), TASKQ_OK); /* 160 */
    run_to(fx->s, 9, TASKQ_STATE_FAILED, "e", 70);                      /* 1070 */
    /* expire_due: the timer path */
    store_new_task_t x = task(11, "t", "default");
    x.expires_at = 35;
    put(fx->s, &x);
    size_t n = 0;
    int64_t next;
    assert_int_equal(store_expire_due(fx->s, 35, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 1); /* 11: 135 */
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(purge_at_of(fx->path, 1), 110);
    assert_int_equal(purge_at_of(fx->path, 2), 1005);
    assert_int_equal(purge_at_of(fx->path, 3), 120);
    assert_int_equal(purge_at_of(fx->path, 4), 55);
    assert_int_equal(purge_at_of(fx->path, 5), 130);
    assert_int_equal(purge_at_of(fx->path, 6), 0);
    assert_int_equal(purge_at_of(fx->path, 7), 1040);
    assert_int_equal(purge_at_of(fx->path, 8), 160);
    assert_int_equal(purge_at_of(fx->path, 9), 1070);
    assert_int_equal(purge_at_of(fx->path, 11), 135);

    uint64_t purged = 9;
    int64_t horizon = 9;
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 0);
    assert_int_equal(horizon, 0);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_due(fx->s, 54, 10, &n), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_purge_due(fx->s, 55, 10, &n), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(fx->s, 4), -TASKQ_ENOTFOUND);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 1);
    assert_int_equal(horizon, 1004);
    /* the earliest purge_at first, across states: 110 (1), 120 (3) */
    assert_int_equal(store_purge_due(fx->s, 5000, 2, &n), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(state_of(fx->s, 1), -TASKQ_ENOTFOUND);
    assert_int_equal(state_of(fx->s, 3), -TASKQ_ENOTFOUND);
    assert_int_equal(state_of(fx->s, 5), TASKQ_STATE_EXPIRED);
    expect_counts(fx->s, "a", TASKQ_STATE_REVOKED, 0);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 3);
    assert_int_equal(horizon, 1004); /* max of the ids' times so far */
    /* then 130 (5), 135 (11) */
    assert_int_equal(store_purge_due(fx->s, 5000, 2, &n), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(state_of(fx->s, 5), -TASKQ_ENOTFOUND);
    assert_int_equal(state_of(fx->s, 11), -TASKQ_ENOTFOUND);
    assert_int_equal(state_of(fx->s, 8), TASKQ_STATE_REVOKED);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 5);
    assert_int_equal(horizon, 1011);
    /* the group row stays while a member (2) is left */
    store_group_t out;
    assert_int_equal(store_group_get(fx->s, &g, &out), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    /* a rolled-back purge restores the counter and horizon */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_due(fx->s, 5000, 100, &n), TASKQ_OK);
    assert_int_equal(n, 4); /* 8, 2, 7, 9 */
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 9);
    store_rollback(fx->s);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 5);
    assert_int_equal(horizon, 1011);
    assert_int_equal(state_of(fx->s, 2), TASKQ_STATE_FAILED);

    /* persistent across a reopen */
    fx_reopen(fx);
    store_set_ttls(fx->s, 100, 1000);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 5);
    assert_int_equal(horizon, 1011);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_due(fx->s, 1039, 100, &n), TASKQ_OK);
    assert_int_equal(n, 2); /* 8 (160), 2 (1005) */
    /* the group's last task is gone: so is the group */
    assert_int_equal(store_group_get(fx->s, &g, &out), TASKQ_ENOTFOUND);
    assert_int_equal(store_purge_due(fx->s, 1000000, 100, &n), TASKQ_OK);
    assert_int_equal(n, 2); /* 7, 9 */
    assert_int_equal(store_purge_due(fx->s, 1000000, 100, &n), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_purge_due(fx->s, 1000000, 0, &n), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 9);
    assert_int_equal(horizon, 1011);
    assert_int_equal(query_int(fx->path, "SELECT v FROM meta WHERE k = 'purged'"), 9);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM attempts"), 0);
    uint64_t c[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(fx->s, c, &total), TASKQ_OK);
    assert_int_equal(total, 2); /* 6 and 10 queued */
    assert_int_equal(c[TASKQ_STATE_QUEUED], 2);
}

/* purge by state (admin) and the old purge by finish time: both count. */
static void test_flow_purge_state(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (uint8_t n = 1; n <= 6; n++)
        insert(fx->s, n, "t", "default");
    run_to(fx->s, 1, TASKQ_STATE_SUCCEEDED, "", 10);
    run_to(fx->s, 2, TASKQ_STATE_SUCCEEDED, "", 20);
    run_to(fx->s, 3, TASKQ_STATE_FAILED, "e", 10);
    run_to(fx->s, 4, TASKQ_STATE_FAILED, "e", 30);
    run_to(fx->s, 5, TASKQ_STATE_SUCCEEDED, "", 30);
    size_t n = 9;
    assert_int_equal(store_purge_state(fx->s, TASKQ_STATE_QUEUED, 100, 10, &n), TASKQ_EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(store_purge_state(fx->s, TASKQ_STATE_SUCCEEDED, 25, 10, &n), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(state_of(fx->s, 3), TASKQ_STATE_FAILED);
    assert_int_equal(state_of(fx->s, 5), TASKQ_STATE_SUCCEEDED);
    assert_int_equal(store_purge_state(fx->s, TASKQ_STATE_FAILED, 31, 1, &n), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(state_of(fx->s, 3), -TASKQ_ENOTFOUND); /* the older one first */
    assert_int_equal(state_of(fx->s, 4), TASKQ_STATE_FAILED);
    assert_int_equal(store_purge_finished(fx->s, 31, 10, &n), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(state_of(fx->s, 6), TASKQ_STATE_QUEUED);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    uint64_t purged;
    int64_t horizon;
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 5);
    assert_int_equal(horizon, 1005);
}

typedef struct {
    int n;
    uint8_t id[16];
    int64_t finished[16];
    char code[16][16];
    store_t *s;
    int attempts[16];
} recs_t;

static void count_attempt(const store_attempt_t *a, void *arg)
{
    (void)a;
    (*(int *)arg)++;
}

static void on_rec(const proto_task_rec_t *rec, void *arg)
{
    recs_t *r = arg;
    r->id[r->n] = rec->id.b[15];
    r->finished[r->n] = rec->finished_at;
    snprintf(r->code[r->n], sizeof r->code[0], "%.*s", (int)rec->code.len, rec->code.ptr);
    /* the admin listing reads each task's attempts while listing */
    r->attempts[r->n] = 0;
    if (r->s)
        assert_int_equal(store_attempts(r->s, &rec->id, count_attempt, &r->attempts[r->n]),
                         TASKQ_OK);
    r->n++;
}

static int select_n(store_t *s, const store_filter_t *f, bool terminal_ok, ids_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(store_select(s, f, terminal_ok, on_task, r), TASKQ_OK);
    return r->n;
}

static bool has(const ids_t *r, uint8_t id)
{
    for (int i = 0; i < r->n; i++)
        if (r->id[i] == id)
            return true;
    return false;
}

/* store_select: queue, name, code (exact, prefix), states, since, group,
 * limit; live tasks only by default. store_list_failed: newest first. */
static void test_flow_select_and_list_failed(void **state)
{
    fx_t *fx = *state;
    taskq_id_t g = tid_at(2, 210), p = tid(1);
    store_group_t grp;
    memset(&grp, 0, sizeof grp);
    grp.id = g;
    grp.total = 2;
    grp.has_callback = true;
    grp.callback = tid(12);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_group_insert(fx->s, &grp), TASKQ_OK);
    insert(fx->s, 1, "a", "q1");             /* queued */
    insert(fx->s, 2, "b", "q1");             /* running */
    store_new_task_t t = task(3, "a", "q2"); /* scheduled */
    t.state = TASKQ_STATE_SCHEDULED;
    t.due_at = 1000;
    put(fx->s, &t);
    insert(fx->s, 4, "a", "q1");         /* failed e.timeout at 40 */
    insert(fx->s, 5, "b", "q1");         /* failed e.value at 50 */
    insert(fx->s, 6, "a", "q2");         /* failed x.other at 60 */
    insert(fx->s, 7, "a", "q1");         /* succeeded */
    insert_pending(fx->s, 8, &p, 1);     /* pending child of 1, queue default */
    insert(fx->s, 9, "a", "q1");         /* retrying */
    for (uint8_t n = 10; n <= 11; n++) { /* group members, queued in q3 */
        store_new_task_t m = task(n, "m", "q3");
        m.group = g;
        m.group_index = n - 10u;
        put(fx->s, &m);
    }
    store_new_task_t cb = task(12, "cb", "q3"); /* the group's pending callback */
    cb.state = TASKQ_STATE_PENDING;
    cb.deps_left = 1;
    cb.group = g;
    cb.is_callback = true;
    put(fx->s, &cb);
    taskq_id_t id2 = tid(2), id9 = tid(9);
    assert_int_equal(store_mark_running(fx->s, &id2, 1, "n", 1, 2), TASKQ_OK);
    run_to(fx->s, 4, TASKQ_STATE_FAILED, "e.timeout", 40);
    run_to(fx->s, 5, TASKQ_STATE_FAILED, "e.value", 50);
    run_to(fx->s, 6, TASKQ_STATE_FAILED, "x.other", 60);
    run_to(fx->s, 7, TASKQ_STATE_SUCCEEDED, "", 70);
    assert_int_equal(store_mark_running(fx->s, &id9, 1, "n", 1, 2), TASKQ_OK);
    store_outcome_t rt = outcome(TASKQ_STATE_RETRYING, "e.x", "m", 80);
    rt.due_at = 5000;
    assert_int_equal(store_end_attempt(fx->s, &id9, 1, &rt), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    ids_t r;
    store_filter_t f;
    memset(&f, 0, sizeof f);
    /* everything live: 1, 2, 3, 8, 9, 10, 11, 12 */
    assert_int_equal(select_n(fx->s, &f, false, &r), 8);
    assert_true(has(&r, 8) && has(&r, 12) && has(&r, 9) && has(&r, 3) && has(&r, 2));
    assert_int_equal(select_n(fx->s, &f, true, &r), 12); /* and the terminal ones */
    f.queue = "q1";
    assert_int_equal(select_n(fx->s, &f, false, &r), 3); /* 1, 2, 9 */
    assert_true(has(&r, 1) && has(&r, 2) && has(&r, 9));
    f.name = "a";
    assert_int_equal(select_n(fx->s, &f, false, &r), 2); /* 1, 9 */
    f.states = 1u << TASKQ_STATE_QUEUED;
    assert_int_equal(select_n(fx->s, &f, false, &r), 1);
    assert_int_equal(r.id[0], 1);
    f.states = 1u << TASKQ_STATE_FAILED;
    assert_int_equal(select_n(fx->s, &f, false, &r), 1); /* 4 */
    assert_int_equal(r.id[0], 4);
    memset(&f, 0, sizeof f);
    f.states = 1u << TASKQ_STATE_FAILED;
    f.code = "e.*";
    assert_int_equal(select_n(fx->s, &f, false, &r), 2); /* 4, 5 */
    f.code = "e.value";
    assert_int_equal(select_n(fx->s, &f, false, &r), 1);
    assert_int_equal(r.id[0], 5);
    f.code = "e.valu";
    assert_int_equal(select_n(fx->s, &f, false, &r), 0);
    f.code = "*";
    assert_int_equal(select_n(fx->s, &f, false, &r), 3);
    f.code = NULL;
    f.since_ms = 50;
    assert_int_equal(select_n(fx->s, &f, false, &r), 2); /* 5, 6 */
    f.since_ms = 0;
    f.limit = 2;
    assert_int_equal(select_n(fx->s, &f, false, &r), 2);
    memset(&f, 0, sizeof f);
    f.states = 1u << TASKQ_STATE_PENDING;
    assert_int_equal(select_n(fx->s, &f, false, &r), 2); /* the child and the callback */
    assert_true(has(&r, 8) && has(&r, 12));
    f.queue = "q3";
    assert_int_equal(select_n(fx->s, &f, false, &r), 1);
    memset(&f, 0, sizeof f);
    f.states =
        (1u << TASKQ_STATE_SCHEDULED) | (1u << TASKQ_STATE_RETRYING) | (1u << TASKQ_STATE_RUNNING);
    assert_int_equal(select_n(fx->s, &f, false, &r), 3);
    /* by group: members (in order) then the callback */
    memset(&f, 0, sizeof f);
    f.group = &g;
    assert_int_equal(select_n(fx->s, &f, false, &r), 3);
    assert_int_equal(r.id[0], 10);
    assert_int_equal(r.id[1], 11);
    assert_int_equal(r.id[2], 12);
    f.states = 1u << TASKQ_STATE_PENDING;
    assert_int_equal(select_n(fx->s, &f, false, &r), 1);
    f.limit = 1;
    f.states = 0;
    assert_int_equal(select_n(fx->s, &f, false, &r), 1);
    /* bulk revoke through the selection (the callback changes the rows) */
    memset(&f, 0, sizeof f);
    f.queue = "q1";
    memset(&r, 0, sizeof r);
    r.s = fx->s;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_select(fx->s, &f, false, on_task, &r), TASKQ_OK);
    assert_int_equal(r.n, 3);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(select_n(fx->s, &f, false, &r), 0);
    assert_int_equal(state_of(fx->s, 2), TASKQ_STATE_REVOKED);

    /* the failed listing, newest first, with filters and the attempts */
    recs_t l;
    memset(&l, 0, sizeof l);
    l.s = fx->s;
    memset(&f, 0, sizeof f);
    assert_int_equal(store_list_failed(fx->s, &f, on_rec, &l), TASKQ_OK);
    assert_int_equal(l.n, 3);
    assert_int_equal(l.id[0], 6);
    assert_int_equal(l.id[1], 5);
    assert_int_equal(l.id[2], 4);
    assert_int_equal(l.finished[0], 60);
    assert_string_equal(l.code[0], "x.other");
    assert_int_equal(l.attempts[0], 1);
    memset(&l, 0, sizeof l);
    f.queue = "q1";
    assert_int_equal(store_list_failed(fx->s, &f, on_rec, &l), TASKQ_OK);
    assert_int_equal(l.n, 2);
    assert_int_equal(l.id[0], 5);
    memset(&l, 0, sizeof l);
    f.queue = NULL;
    f.name = "a";
    f.code = "e.*";
    assert_int_equal(store_list_failed(fx->s, &f, on_rec, &l), TASKQ_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.id[0], 4);
    memset(&l, 0, sizeof l);
    memset(&f, 0, sizeof f);
    f.since_ms = 45;
    f.limit = 1;
    assert_int_equal(store_list_failed(fx->s, &f, on_rec, &l), TASKQ_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(l.id[0], 6);
    memset(&l, 0, sizeof l);
    f.limit = 0;
    assert_int_equal(store_list_failed(fx->s, &f, on_rec, &l), TASKQ_OK);
    assert_int_equal(l.n, 2);
}

/* Re-run: a new queued copy linked both ways; the old row keeps its state. */
static void test_flow_rerun_links(void **state)
{
    fx_t *fx = *state;
    taskq_id_t old = tid(1), ok = tid(2), nw = tid(20), nw2 = tid(21), nope = tid(60);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_new_task_t t = task(1, "job", "q");
    t.priority = 8;
    t.time_limit_ms = 1234;
    t.max_attempts = 4;
    t.policy.backoff_base_ms = 10;
    t.policy.backoff_factor = 2.5;
    t.policy.backoff_max_ms = 99;
    t.policy.jitter = 1;
    t.policy.retry_on = proto_str("e.*");
    t.policy.no_retry_on = proto_str("e.fatal");
    t.result_ttl_ms = 42;
    t.args.ptr = (const uint8_t *)"\x92\x01\x02";
    t.args.len = 3;
    put(fx->s, &t);
    insert(fx->s, 2, "t", "q");
    run_to(fx->s, 1, TASKQ_STATE_FAILED, "e.x", 10);
    run_to(fx->s, 2, TASKQ_STATE_SUCCEEDED, "", 10);
    assert_int_equal(store_rerun(fx->s, &ok, &nw, 20), TASKQ_ETERMINAL);
    assert_int_equal(store_rerun(fx->s, &nope, &nw, 20), TASKQ_ENOTFOUND);
    assert_int_equal(store_rerun(fx->s, &old, &nw, 20), TASKQ_OK);
    assert_int_equal(store_rerun(fx->s, &old, &nw2, 21), TASKQ_EEXIST);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &old, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_FAILED);
    assert_int_equal(rec.attempts, 1);
    expect_id(&rec.rerun_by, &nw);
    expect_id(&rec.rerun_of, &ZERO_ID);
    assert_int_equal(store_get_task(fx->s, &nw, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    expect_id(&rec.rerun_of, &old);
    expect_id(&rec.rerun_by, &ZERO_ID);
    expect_str(rec.name, "job");
    expect_str(rec.queue, "q");
    assert_int_equal(rec.priority, 8);
    assert_int_equal(rec.attempts, 0);
    assert_int_equal(rec.failures, 0);
    assert_int_equal(rec.max_attempts, 4);
    assert_int_equal(rec.submitted_at, 20);
    expect_str(rec.code, "");
    expect_str(rec.error, "");
    store_policy_t pol;
    assert_int_equal(store_get_policy(fx->s, &nw, &pol), TASKQ_OK);
    assert_int_equal(pol.policy.backoff_base_ms, 10);
    assert_true(pol.policy.backoff_factor == 2.5);
    assert_int_equal(pol.policy.backoff_max_ms, 99);
    assert_int_equal(pol.policy.jitter, 1);
    expect_str(pol.policy.retry_on, "e.*");
    expect_str(pol.policy.no_retry_on, "e.fatal");
    first_t f = {0};
    assert_int_equal(store_next_ready(fx->s, "q", NULL, 0, 1, on_ready, &f), TASKQ_OK);
    assert_int_equal(f.id, 20);
    assert_int_equal(f.args_len, 3);
    assert_memory_equal(f.args, "\x92\x01\x02", 3);
    expect_counts(fx->s, "q", TASKQ_STATE_QUEUED, 1);
    expect_counts(fx->s, "q", TASKQ_STATE_FAILED, 1);
    /* its time limit and own TTL came along */
    assert_int_equal(
        query_int(fx->path, "SELECT time_limit_ms FROM tasks WHERE rerun_of IS NOT NULL"), 1234);
    assert_int_equal(
        query_int(fx->path, "SELECT result_ttl_ms FROM tasks WHERE rerun_of IS NOT NULL"), 42);
    /* the re-run that failed can be re-run in turn */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &nw, 1, "n", 30, 99), TASKQ_OK);
    store_outcome_t o = outcome(TASKQ_STATE_FAILED, "e.y", "m", 31);
    assert_int_equal(store_end_attempt(fx->s, &nw, 1, &o), TASKQ_OK);
    assert_int_equal(store_rerun(fx->s, &nw, &nw2, 32), TASKQ_OK);
    /* a taken new id */
    taskq_id_t n3 = tid(22);
    assert_int_equal(store_mark_running(fx->s, &nw2, 1, "n", 33, 99), TASKQ_OK);
    o = outcome(TASKQ_STATE_FAILED, "e.y", "m", 34);
    assert_int_equal(store_end_attempt(fx->s, &nw2, 1, &o), TASKQ_OK);
    assert_int_equal(store_rerun(fx->s, &nw2, &old, 35), TASKQ_EEXIST);
    assert_int_equal(store_rerun(fx->s, &nw2, &n3, 35), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_get_task(fx->s, &n3, &rec), TASKQ_OK);
    expect_id(&rec.rerun_of, &nw2);
}

/* Unique keys: get / put (upsert) / release by holder with until; a purged
 * holder's key goes once its hold is over. */
static void test_flow_unique(void **state)
{
    fx_t *fx = *state;
    store_set_ttls(fx->s, 10, 10);
    taskq_id_t a = tid(1), b = tid(2), c = tid(3);
    store_unique_t u;
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_ENOTFOUND);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    /* nothing held yet: release is a no-op */
    assert_int_equal(store_unique_release(fx->s, &a, -1), TASKQ_OK);
    store_new_task_t t = task(1, "t", "default");
    t.unique_key = proto_str("k");
    t.unique_until = 0; /* until done */
    put(fx->s, &t);
    assert_int_equal(store_unique_put(fx->s, "k", &a, 0), TASKQ_OK);
    t = task(2, "t", "default");
    t.unique_key = proto_str("s");
    t.unique_until = 1; /* until start */
    put(fx->s, &t);
    assert_int_equal(store_unique_put(fx->s, "s", &b, 500), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    expect_id(&u.holder, &a);
    assert_false(u.released);
    assert_int_equal(u.hold_until, 0);

    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    /* started: only an until-start key goes */
    assert_int_equal(store_unique_release(fx->s, &a, 1), TASKQ_OK);
    assert_int_equal(store_unique_release(fx->s, &b, 1), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    assert_false(u.released);
    assert_int_equal(store_unique_get(fx->s, "s", &u), TASKQ_OK);
    assert_true(u.released);
    assert_int_equal(u.hold_until, 500);
    /* ended: released whatever its until */
    assert_int_equal(store_unique_release(fx->s, &a, 0), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    assert_true(u.released);
    /* a new holder takes the key: held again */
    assert_int_equal(store_unique_put(fx->s, "k", &c, 77), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    expect_id(&u.holder, &c);
    assert_false(u.released);
    assert_int_equal(u.hold_until, 77);
    /* the old holder's release does not touch the new holder's key */
    assert_int_equal(store_unique_release(fx->s, &a, -1), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    assert_false(u.released);
    store_rollback(fx->s);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    expect_id(&u.holder, &a);
    assert_false(u.released);

    /* after a reopen, release still finds the keys */
    fx_reopen(fx);
    store_set_ttls(fx->s, 10, 10);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_unique_release(fx->s, &a, -1), TASKQ_OK);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_OK);
    assert_true(u.released);
    /* purge: a's key goes (no hold); b's key (hold until 500) stays
     * released until its hold is over */
    run_to(fx->s, 1, TASKQ_STATE_SUCCEEDED, "", 100);
    run_to(fx->s, 2, TASKQ_STATE_SUCCEEDED, "", 100);
    size_t n = 0;
    assert_int_equal(store_purge_due(fx->s, 110, 10, &n), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_unique_get(fx->s, "k", &u), TASKQ_ENOTFOUND);
    assert_int_equal(store_unique_get(fx->s, "s", &u), TASKQ_OK);
    assert_true(u.released);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    /* a holder purged while its key was (wrongly) still held: the key is
     * freed, not stuck on a task that is gone */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    t = task(4, "t", "default");
    t.unique_key = proto_str("z");
    put(fx->s, &t);
    taskq_id_t d = tid(4);
    assert_int_equal(store_unique_put(fx->s, "z", &d, 0), TASKQ_OK);
    run_to(fx->s, 4, TASKQ_STATE_SUCCEEDED, "", 200);
    assert_int_equal(store_purge_due(fx->s, 210, 10, &n), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_unique_get(fx->s, "z", &u), TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_flow_insert_fields_and_pending),
        T(test_flow_dep_done_releases_with_replaced_args),
        T(test_flow_children),
        T(test_flow_group_counters_members_results),
        T(test_flow_revoke),
        T(test_flow_fail_unrun),
        T(test_flow_ttl_purge_order_and_horizon),
        T(test_flow_purge_state),
        T(test_flow_select_and_list_failed),
        T(test_flow_rerun_links),
        T(test_flow_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
