/* test_store.c - the SQLite store on a temp file with the production pragmas:
 * idempotent insert and the task record, dispatch order (priority desc,
 * FIFO) with and without excluded names, the compare-and-set verbs,
 * attempt history, due / expiry promotion, progress, retention (attempts
 * die with their task) and reopening. */
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
    return fx_setup(state, "test_store", STORE_DURABILITY_FULL, true);
}

static int teardown(void **state)
{
    return fx_teardown(state);
}

static taskq_id_t tid(uint8_t n)
{
    taskq_id_t id;
    memset(id.b, 0, sizeof id.b);
    id.b[0] = 0x01;
    id.b[15] = n;
    return id;
}

static store_new_task_t task(uint8_t n, const char *name, const char *queue, int prio)
{
    store_new_task_t t;
    memset(&t, 0, sizeof t);
    t.id = tid(n);
    t.name = proto_str(name);
    t.args.ptr = (const uint8_t *)"\x91\x01";
    t.args.len = 2;
    t.max_attempts = 2;
    t.queue = proto_str(queue);
    t.priority = prio;
    t.state = TASKQ_STATE_QUEUED;
    t.policy.jitter = -1;
    t.schedule = proto_str("");
    t.submitted_at = 1000 + n;
    return t;
}

static void put(store_t *s, const store_new_task_t *t, bool expect_new)
{
    bool inserted = !expect_new;
    assert_int_equal(store_insert_task(s, t, &inserted), TASKQ_OK);
    assert_int_equal(inserted, expect_new);
}

static void insert(store_t *s, uint8_t n, const char *name, const char *queue, int prio)
{
    store_new_task_t t = task(n, name, queue, prio);
    put(s, &t, true);
}

static void insert_at(store_t *s, uint8_t n, int state, int64_t due_at, int64_t expires_at)
{
    store_new_task_t t = task(n, "t", "default", 5);
    t.state = state;
    t.due_at = due_at;
    t.expires_at = expires_at;
    put(s, &t, true);
}

static void expect_str(proto_str_t s, const char *want)
{
    assert_int_equal(s.len, strlen(want));
    assert_memory_equal(s.ptr, want, s.len);
}

typedef struct {
    int n, stop_after;
    uint8_t last[300];
    uint32_t attempts[300];
    int32_t prio[300];
    char queue[16];
} rows_t;

static bool collect(const store_queued_t *row, void *arg)
{
    rows_t *r = arg;
    r->last[r->n] = row->id.b[15];
    r->attempts[r->n] = row->attempts;
    r->prio[r->n] = row->priority;
    proto_str_copy(r->queue, sizeof r->queue, row->queue);
    r->n++;
    return r->stop_after == 0 || r->n < r->stop_after;
}

static void ready(store_t *s, const char *queue, const char *const *ex, size_t nex, size_t limit,
                  rows_t *r)
{
    memset(r->last, 0, sizeof r->last);
    r->n = 0;
    assert_int_equal(store_next_ready(s, queue, ex, nex, limit, collect, r), TASKQ_OK);
}

static store_outcome_t outcome(int to, bool failure, const char *code, const char *msg,
                               const char *label, int64_t now)
{
    store_outcome_t o;
    memset(&o, 0, sizeof o);
    o.to_state = to;
    o.failure = failure;
    o.code = proto_str(code);
    o.message = proto_str(msg);
    o.label = label;
    o.child_pid = 77;
    o.now = now;
    return o;
}

static void test_store_insert_is_idempotent_and_fills_the_record(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_new_task_t t = task(9, "b.task", "media", 7);
    t.expires_at = 99999;
    t.time_limit_ms = 1234;
    t.max_attempts = 0;
    t.schedule = proto_str("nightly");
    t.policy.backoff_base_ms = 100;
    t.policy.backoff_factor = 1.5;
    t.policy.backoff_max_ms = 900;
    t.policy.jitter = PROTO_JITTER_NONE;
    t.policy.retry_on = proto_str("http.5*");
    t.policy.no_retry_on = proto_str("http.404");
    put(fx->s, &t, true);
    store_new_task_t dup = task(9, "other", "default", 1);
    put(fx->s, &dup, false); /* same id: no-op */
    store_new_task_t bad = task(10, "x", "default", 10);
    bool ins = true;
    assert_int_equal(store_insert_task(fx->s, &bad, &ins), TASKQ_EINVAL);
    assert_false(ins);
    bad = task(10, "x", "default", 5);
    bad.state = TASKQ_STATE_RUNNING;
    assert_int_equal(store_insert_task(fx->s, &bad, &ins), TASKQ_EINVAL);
    store_new_task_t sch = task(11, "s", "", 5); /* "" queue: the default queue */
    sch.state = TASKQ_STATE_SCHEDULED;
    sch.due_at = 5000;
    put(fx->s, &sch, true);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    proto_task_rec_t rec;
    taskq_id_t id9 = tid(9);
    assert_int_equal(store_get_task(fx->s, &id9, &rec), TASKQ_OK);
    expect_str(rec.name, "b.task");
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    assert_int_equal(rec.max_attempts, 0);
    assert_int_equal(rec.submitted_at, 1009);
    expect_str(rec.queue, "media");
    assert_int_equal(rec.priority, 7);
    assert_int_equal(rec.failures, 0);
    expect_str(rec.code, "");
    assert_int_equal(rec.due_at, 0);
    assert_int_equal(rec.expires_at, 99999);
    expect_str(rec.schedule, "nightly");
    expect_str(rec.error, "");
    assert_false(rec.has_result);

    store_policy_t pol;
    assert_int_equal(store_get_policy(fx->s, &id9, &pol), TASKQ_OK);
    expect_str(pol.name, "b.task");
    expect_str(pol.queue, "media");
    assert_int_equal(pol.state, TASKQ_STATE_QUEUED);
    assert_int_equal(pol.max_attempts, 0);
    assert_int_equal(pol.policy.backoff_base_ms, 100);
    assert_true(pol.policy.backoff_factor == 1.5);
    assert_int_equal(pol.policy.backoff_max_ms, 900);
    assert_int_equal(pol.policy.jitter, PROTO_JITTER_NONE);
    expect_str(pol.policy.retry_on, "http.5*");
    expect_str(pol.policy.no_retry_on, "http.404");

    taskq_id_t id11 = tid(11);
    assert_int_equal(store_get_task(fx->s, &id11, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_SCHEDULED);
    assert_int_equal(rec.due_at, 5000);
    expect_str(rec.queue, "default");
    assert_int_equal(store_get_policy(fx->s, &id11, &pol), TASKQ_OK);
    assert_int_equal(pol.policy.jitter, -1);

    taskq_id_t none = tid(200);
    assert_int_equal(store_get_task(fx->s, &none, &rec), TASKQ_ENOTFOUND);
    assert_int_equal(store_get_policy(fx->s, &none, &pol), TASKQ_ENOTFOUND);
}

static void test_store_ready_is_priority_then_fifo_per_queue(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "a", 5);
    insert(fx->s, 2, "t", "a", 9);
    insert(fx->s, 3, "t", "b", 9);
    insert(fx->s, 4, "t", "a", 5);
    insert(fx->s, 5, "t", "a", 0);
    insert(fx->s, 6, "t", "a", 9);
    insert_at(fx->s, 7, TASKQ_STATE_SCHEDULED, 10, 0); /* not ready */
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    rows_t r = {0};
    ready(fx->s, "a", NULL, 0, 10, &r);
    assert_int_equal(r.n, 5);
    const uint8_t want[] = {2, 6, 1, 4, 5};
    const int32_t wantp[] = {9, 9, 5, 5, 0};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(r.last[i], want[i]);
        assert_int_equal(r.prio[i], wantp[i]);
    }
    assert_string_equal(r.queue, "a");
    ready(fx->s, "a", NULL, 0, 2, &r); /* limit */
    assert_int_equal(r.n, 2);
    r.stop_after = 1; /* fn returns false: stop */
    ready(fx->s, "a", NULL, 0, 10, &r);
    assert_int_equal(r.n, 1);
    r.stop_after = 0;
    ready(fx->s, "b", NULL, 0, 10, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.last[0], 3);
    ready(fx->s, "nope", NULL, 0, 10, &r);
    assert_int_equal(r.n, 0);
    ready(fx->s, "a", NULL, 0, 0, &r);
    assert_int_equal(r.n, 0);
    ready(fx->s, "default", NULL, 0, 10, &r);
    assert_int_equal(r.n, 0); /* the scheduled task waits */

    /* dispatching the head moves on to the next */
    taskq_id_t a2 = tid(2);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a2, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    ready(fx->s, "a", NULL, 0, 1, &r);
    assert_int_equal(r.last[0], 6);
}

static void test_store_ready_with_excluded_names(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "x", "q", 5);
    insert(fx->s, 2, "y", "q", 9);
    insert(fx->s, 3, "z", "q", 5);
    insert(fx->s, 4, "y", "q", 5);
    insert(fx->s, 5, "x", "q", 9);
    insert(fx->s, 6, "x", "other", 9);
    insert(fx->s, 7, "z", "q", 1);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    rows_t r = {0};
    const char *ex_y[] = {"y"};
    ready(fx->s, "q", ex_y, 1, 10, &r);
    const uint8_t want[] = {5, 1, 3, 7};
    assert_int_equal(r.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.last[i], want[i]);
    assert_string_equal(r.queue, "q");
    ready(fx->s, "q", ex_y, 1, 2, &r); /* limit */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.last[0], 5);
    assert_int_equal(r.last[1], 1);
    r.stop_after = 1;
    ready(fx->s, "q", ex_y, 1, 10, &r);
    assert_int_equal(r.n, 1);
    r.stop_after = 0;
    const char *ex_all[] = {"z", "x", "y"};
    ready(fx->s, "q", ex_all, 3, 10, &r);
    assert_int_equal(r.n, 0);
    const char *ex_none[] = {"absent"};
    ready(fx->s, "q", ex_none, 1, 10, &r);
    const uint8_t all[] = {2, 5, 1, 3, 4, 7};
    assert_int_equal(r.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(r.last[i], all[i]);
}

/* The exclusion path agrees with the plain path filtered, on random data. */
static void test_store_exclusion_path_matches_filtered_order(void **state)
{
    fx_t *fx = *state;
    const char *names[] = {"a", "b", "b.long.name", "c", "d", "e"};
    uint8_t name_of[256];
    srand(42);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (int n = 1; n <= 250; n++) {
        int k = rand() % 6;
        name_of[n] = (uint8_t)k;
        insert(fx->s, (uint8_t)n, names[k], "q", rand() % 10);
    }
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    rows_t full = {0}, r = {0};
    ready(fx->s, "q", NULL, 0, 300, &full);
    assert_int_equal(full.n, 250);
    for (int trial = 0; trial < 40; trial++) {
        const char *ex[6];
        size_t nex = 0;
        bool excluded[6] = {false};
        for (int k = 0; k < 6; k++)
            if (rand() % 3 == 0) {
                ex[nex++] = names[k];
                excluded[k] = true;
            }
        if (nex == 0)
            continue;
        size_t limit = 1 + (size_t)(rand() % 60);
        ready(fx->s, "q", ex, nex, limit, &r);
        int j = 0;
        for (int i = 0; i < full.n && (size_t)j < limit; i++) {
            if (excluded[name_of[full.last[i]]])
                continue;
            assert_true(j < r.n);
            assert_int_equal(r.last[j], full.last[i]);
            j++;
        }
        assert_int_equal(r.n, j);
    }
}

typedef struct {
    store_t *s;
    int n;
    uint8_t ids[16];
} marker_t;

static bool mark_each(const store_queued_t *row, void *arg)
{
    marker_t *m = arg;
    assert_int_equal(store_mark_running(m->s, &row->id, row->attempts + 1, "n", 1, 2), TASKQ_OK);
    m->ids[m->n++] = row->id.b[15];
    return true;
}

/* The callback may dispatch the row it is handed (the scan goes on past
 * it), on both paths. */
static void test_store_ready_callback_may_mark_running(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (uint8_t n = 1; n <= 8; n++)
        insert(fx->s, n, n % 2 ? "odd" : "even", "q", n % 3);
    marker_t m = {fx->s, 0, {0}};
    assert_int_equal(store_next_ready(fx->s, "q", NULL, 0, 4, mark_each, &m), TASKQ_OK);
    const uint8_t want[] = {2, 5, 8, 1};
    assert_int_equal(m.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(m.ids[i], want[i]);
    const char *ex[] = {"odd"};
    m.n = 0;
    assert_int_equal(store_next_ready(fx->s, "q", ex, 1, 10, mark_each, &m), TASKQ_OK);
    const uint8_t want2[] = {4, 6};
    assert_int_equal(m.n, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(m.ids[i], want2[i]);
    m.n = 0;
    assert_int_equal(store_next_ready(fx->s, "q", NULL, 0, 10, mark_each, &m), TASKQ_OK);
    const uint8_t want3[] = {7, 3};
    assert_int_equal(m.n, 2);
    for (int i = 0; i < 2; i++)
        assert_int_equal(m.ids[i], want3[i]);
    uint64_t c[TASKQ_NSTATES];
    store_queue_counts(fx->s, "q", c);
    assert_int_equal(c[TASKQ_STATE_RUNNING], 8);
    assert_int_equal(c[TASKQ_STATE_QUEUED], 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
}

static void test_store_mark_running_and_end_attempt_are_compare_and_set(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "default", 5);
    assert_int_equal(store_mark_running(fx->s, &a, 2, "n1", 5, 6), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_ESTALE);
    store_outcome_t ok = outcome(TASKQ_STATE_SUCCEEDED, false, "", "", NULL, 9);
    ok.result.ptr = (const uint8_t *)"\x2a";
    ok.result.len = 1;
    assert_int_equal(store_end_attempt(fx->s, &a, 2, &ok), TASKQ_ESTALE);
    store_outcome_t bad = ok;
    bad.to_state = TASKQ_STATE_RUNNING;
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &bad), TASKQ_EINVAL);
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &ok), TASKQ_OK);
    store_outcome_t f = outcome(TASKQ_STATE_FAILED, true, "x", "boom", NULL, 9);
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &f), TASKQ_ESTALE); /* terminal */
    assert_int_equal(store_expire_task(fx->s, &a, 10), TASKQ_ESTALE);
    taskq_id_t none = tid(99);
    assert_int_equal(store_end_attempt(fx->s, &none, 1, &ok), TASKQ_ENOTFOUND);
    assert_int_equal(store_mark_running(fx->s, &none, 1, "n1", 5, 6), TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rec.attempts, 1);
    assert_int_equal(rec.failures, 0);
    assert_int_equal(rec.child_pid, 77);
    assert_int_equal(rec.finished_at, 9);
    assert_int_equal(rec.started_at, 5);
    assert_true(rec.has_result);
    assert_int_equal(rec.result.len, 1);
    assert_int_equal(rec.result.ptr[0], 0x2a);
    expect_str(rec.worker, "n1");
    bool term = false;
    assert_int_equal(store_is_terminal(fx->s, &a, &term), TASKQ_OK);
    assert_true(term);
    term = true;
    assert_int_equal(store_is_terminal(fx->s, &none, &term), TASKQ_ENOTFOUND);
    assert_false(term);
}

typedef struct {
    int n;
    store_attempt_t a[8];
    char state[8][16], code[8][32], message[8][64], worker[8][16];
} attempts_t;

static void collect_attempt(const store_attempt_t *a, void *arg)
{
    attempts_t *r = arg;
    r->a[r->n] = *a;
    snprintf(r->state[r->n], sizeof r->state[0], "%s", a->state);
    snprintf(r->code[r->n], sizeof r->code[0], "%s", a->code);
    snprintf(r->message[r->n], sizeof r->message[0], "%s", a->message);
    snprintf(r->worker[r->n], sizeof r->worker[0], "%s", a->worker);
    r->n++;
}

static void test_store_retry_path_and_attempt_history(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1);
    proto_task_rec_t rec;
    size_t n = 9;
    int64_t next = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "default", 5);
    /* attempt 1: error, retried after a backoff */
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 10, 20), TASKQ_OK);
    store_outcome_t o = outcome(TASKQ_STATE_RETRYING, true, "http.500", "server error", NULL, 15);
    o.due_at = 100;
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &o), TASKQ_OK);
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_RETRYING);
    assert_int_equal(rec.due_at, 100);
    assert_int_equal(rec.failures, 1);
    expect_str(rec.code, "http.500");
    expect_str(rec.error, "");
    assert_int_equal(rec.finished_at, 0);
    assert_int_equal(store_mark_running(fx->s, &a, 2, "n1", 10, 20), TASKQ_ESTALE);
    assert_int_equal(store_promote_due(fx->s, 99, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, 100);
    assert_int_equal(store_promote_due(fx->s, 100, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    assert_int_equal(rec.due_at, 0);
    /* attempt 2: rate limited, not a failure, straight back to queued */
    assert_int_equal(store_mark_running(fx->s, &a, 2, "n2", 110, 120), TASKQ_OK);
    o = outcome(TASKQ_STATE_QUEUED, false, "", "", "rate_limited", 111);
    assert_int_equal(store_end_attempt(fx->s, &a, 2, &o), TASKQ_OK);
    /* attempt 3: crash, requeued at once, spends budget */
    assert_int_equal(store_mark_running(fx->s, &a, 3, "n2", 120, 130), TASKQ_OK);
    o = outcome(TASKQ_STATE_QUEUED, true, "taskq.crash", "child killed by signal 9", NULL, 125);
    assert_int_equal(store_end_attempt(fx->s, &a, 3, &o), TASKQ_OK);
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    assert_int_equal(rec.failures, 2);
    assert_int_equal(rec.attempts, 3);
    expect_str(rec.code, "taskq.crash");
    store_policy_t pol;
    assert_int_equal(store_get_policy(fx->s, &a, &pol), TASKQ_OK);
    assert_int_equal(pol.attempts, 3);
    assert_int_equal(pol.failures, 2);
    assert_int_equal(pol.max_attempts, 2);
    /* attempt 4: fails for good */
    assert_int_equal(store_mark_running(fx->s, &a, 4, "n3", 130, 140), TASKQ_OK);
    o = outcome(TASKQ_STATE_FAILED, true, "test.bad", "bad input", NULL, 135);
    assert_int_equal(store_end_attempt(fx->s, &a, 4, &o), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_FAILED);
    assert_int_equal(rec.failures, 3);
    assert_int_equal(rec.finished_at, 135);
    expect_str(rec.error, "bad input");
    expect_str(rec.code, "test.bad");
    assert_false(rec.has_result);

    attempts_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &a, collect_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 4);
    const char *states[] = {"retrying", "rate_limited", "requeued", "failed"};
    const char *codes[] = {"http.500", "", "taskq.crash", "test.bad"};
    const char *workers[] = {"n1", "n2", "n2", "n3"};
    const int64_t started[] = {10, 110, 120, 130}, finished[] = {15, 111, 125, 135};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(h.a[i].attempt, i + 1);
        assert_string_equal(h.state[i], states[i]);
        assert_string_equal(h.code[i], codes[i]);
        assert_string_equal(h.worker[i], workers[i]);
        assert_int_equal(h.a[i].started_at, started[i]);
        assert_int_equal(h.a[i].finished_at, finished[i]);
        assert_int_equal(h.a[i].child_pid, 77);
    }
    assert_string_equal(h.message[2], "child killed by signal 9");

    /* a running attempt is listed as such; a task never run has none */
    taskq_id_t b = tid(2), c = tid(3), none = tid(99);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 2, "t", "default", 5);
    insert(fx->s, 3, "t", "default", 5);
    assert_int_equal(store_mark_running(fx->s, &b, 1, "n9", 200, 300), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &b, collect_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.state[0], "running");
    assert_string_equal(h.worker[0], "n9");
    assert_int_equal(h.a[0].finished_at, 0);
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &c, collect_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 0);
    assert_int_equal(store_attempts(fx->s, &none, collect_attempt, &h), TASKQ_ENOTFOUND);
}

typedef struct {
    int n;
    uint8_t ids[32];
} seen_t;

static void seen(const taskq_id_t *id, void *arg)
{
    seen_t *s = arg;
    s->ids[s->n++] = id->b[15];
}

static void test_store_promote_due_in_due_order(void **state)
{
    fx_t *fx = *state;
    size_t n = 0;
    int64_t next = 0;
    seen_t s = {0};
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_at(fx->s, 1, TASKQ_STATE_SCHEDULED, 300, 0);
    insert_at(fx->s, 2, TASKQ_STATE_SCHEDULED, 100, 0);
    insert_at(fx->s, 3, TASKQ_STATE_SCHEDULED, 200, 0);
    insert_at(fx->s, 4, TASKQ_STATE_SCHEDULED, 100, 0); /* tie: submission order */
    insert(fx->s, 5, "t", "default", 5);
    /* 6 becomes retrying, due at 150 */
    insert(fx->s, 6, "t", "default", 5);
    taskq_id_t t6 = tid(6);
    assert_int_equal(store_mark_running(fx->s, &t6, 1, "n", 1, 2), TASKQ_OK);
    store_outcome_t o = outcome(TASKQ_STATE_RETRYING, true, "e", "m", NULL, 3);
    o.due_at = 150;
    assert_int_equal(store_end_attempt(fx->s, &t6, 1, &o), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_promote_due(fx->s, 50, 10, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, 100);
    assert_int_equal(store_promote_due(fx->s, 160, 10, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 3);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[0], 2);
    assert_int_equal(s.ids[1], 4);
    assert_int_equal(s.ids[2], 6);
    assert_int_equal(next, 200);
    /* limit: one at a time, still in due order */
    assert_int_equal(store_promote_due(fx->s, 1000, 1, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s.ids[3], 3);
    assert_int_equal(next, 300);
    assert_int_equal(store_promote_due(fx->s, 1000, 10, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 1);
    assert_int_equal(s.ids[4], 1);
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    /* everything is queued now, in priority / submission order */
    rows_t r = {0};
    ready(fx->s, "default", NULL, 0, 10, &r);
    assert_int_equal(r.n, 6);
    for (int i = 0; i < 6; i++)
        assert_int_equal(r.last[i], i + 1);
    assert_int_equal(r.attempts[5], 1);
    uint64_t c[TASKQ_NSTATES];
    store_queue_counts(fx->s, "default", c);
    assert_int_equal(c[TASKQ_STATE_QUEUED], 6);
    assert_int_equal(c[TASKQ_STATE_SCHEDULED], 0);
    assert_int_equal(c[TASKQ_STATE_RETRYING], 0);
}

/* More than one scan chunk (256) in one call. */
static void test_store_promote_due_many(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (int i = 0; i < 300; i++) {
        store_new_task_t t = task(0, "t", "default", 5);
        t.id.b[14] = (uint8_t)(i >> 8);
        t.id.b[15] = (uint8_t)i;
        t.state = TASKQ_STATE_SCHEDULED;
        t.due_at = 1000 - i;
        put(fx->s, &t, true);
    }
    size_t n = 0;
    int64_t next = 0;
    assert_int_equal(store_promote_due(fx->s, 1000, 290, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 290);
    assert_int_equal(next, 991);
    assert_int_equal(store_promote_due(fx->s, 1000, SIZE_MAX, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 10);
    assert_int_equal(next, INT64_MAX);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
}

static void test_store_expiry(void **state)
{
    fx_t *fx = *state;
    size_t n = 0;
    int64_t next = 0;
    seen_t s = {0};
    taskq_id_t run = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_at(fx->s, 1, TASKQ_STATE_QUEUED, 0, 50);
    insert_at(fx->s, 2, TASKQ_STATE_SCHEDULED, 1000, 40);
    insert_at(fx->s, 3, TASKQ_STATE_QUEUED, 0, 60);
    insert_at(fx->s, 4, TASKQ_STATE_QUEUED, 0, 10); /* started in time */
    insert_at(fx->s, 5, TASKQ_STATE_QUEUED, 0, 0);  /* never expires */
    insert_at(fx->s, 6, TASKQ_STATE_QUEUED, 0, 0);
    assert_int_equal(store_mark_running(fx->s, &run, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_expire_due(fx->s, 30, 10, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, 40);
    assert_int_equal(store_expire_due(fx->s, 55, 10, seen, &s, &n, &next), TASKQ_OK);
    assert_int_equal(n, 2);
    assert_int_equal(s.ids[0], 2);
    assert_int_equal(s.ids[1], 1);
    assert_int_equal(next, 60);
    /* the expired scheduled task is no longer due */
    assert_int_equal(store_promote_due(fx->s, 5000, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(next, INT64_MAX);
    /* expire_task: queued only */
    taskq_id_t t1 = tid(1), t5 = tid(5), none = tid(99);
    assert_int_equal(store_expire_task(fx->s, &t1, 70), TASKQ_ESTALE);
    assert_int_equal(store_expire_task(fx->s, &run, 70), TASKQ_ESTALE);
    assert_int_equal(store_expire_task(fx->s, &none, 70), TASKQ_ENOTFOUND);
    assert_int_equal(store_expire_task(fx->s, &t5, 70), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    proto_task_rec_t rec;
    taskq_id_t t2 = tid(2);
    assert_int_equal(store_get_task(fx->s, &t2, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_EXPIRED);
    assert_int_equal(rec.finished_at, 55);
    assert_int_equal(rec.due_at, 0);
    assert_int_equal(store_get_task(fx->s, &t5, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_EXPIRED);
    assert_int_equal(rec.finished_at, 70);
    rows_t r = {0};
    ready(fx->s, "default", NULL, 0, 10, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.last[0], 3);
    assert_int_equal(r.last[1], 6);
    uint64_t c[TASKQ_NSTATES];
    store_queue_counts(fx->s, "default", c);
    assert_int_equal(c[TASKQ_STATE_EXPIRED], 3);
    assert_int_equal(c[TASKQ_STATE_QUEUED], 2);
    assert_int_equal(c[TASKQ_STATE_RUNNING], 1);
}

static int64_t count_rows(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

static void test_store_progress_purge_and_reopen(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1), b = tid(2), c = tid(3), d = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "default", 5);
    insert(fx->s, 2, "t", "default", 5);
    insert(fx->s, 3, "t", "default", 5);
    insert_at(fx->s, 4, TASKQ_STATE_QUEUED, 0, 0);
    assert_int_equal(store_set_progress(fx->s, &a, 1, 1, 2, proto_str("m")), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_set_progress(fx->s, &a, 1, 3, 10, proto_str("three")), TASKQ_OK);
    assert_int_equal(store_set_progress(fx->s, &a, 2, 3, 10, proto_str("x")), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &b, 1, "n1", 5, 6), TASKQ_OK);
    store_outcome_t o = outcome(TASKQ_STATE_FAILED, true, "e", "boom", NULL, 100);
    assert_int_equal(store_end_attempt(fx->s, &b, 1, &o), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &d, 1, "n1", 5, 6), TASKQ_OK);
    o = outcome(TASKQ_STATE_SUCCEEDED, false, "", "", NULL, 200);
    assert_int_equal(store_end_attempt(fx->s, &d, 1, &o), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    /* stored rows (schema v5): b's failed attempt only; a's running and
     * d's successful attempt are the task rows' (store_attempts) */
    assert_int_equal(count_rows(fx->path, "SELECT COUNT(*) FROM attempts"), 1);

    /* reopen: everything is still there */
    store_close(&fx->s);
    assert_null(fx->s);
    taskq_err_t err;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, &err);
    assert_non_null(fx->s);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.progress_current, 3);
    assert_int_equal(rec.progress_total, 10);
    expect_str(rec.progress_message, "three");
    rows_t r = {0};
    ready(fx->s, "default", NULL, 0, 10, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.last[0], c.b[15]);

    size_t purged = 9;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 100, 500, &purged), TASKQ_OK);
    assert_int_equal(purged, 0); /* finished at 100: not before 100 */
    assert_int_equal(store_purge_finished(fx->s, 101, 500, &purged), TASKQ_OK);
    assert_int_equal(purged, 1);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_get_task(fx->s, &b, &rec), TASKQ_ENOTFOUND);
    assert_int_equal(count_rows(fx->path, "SELECT COUNT(*) FROM attempts"), 0);
    /* the highest seq goes: a new task may reuse it, with no old attempts */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 1000, 500, &purged), TASKQ_OK);
    assert_int_equal(purged, 1);
    insert(fx->s, 5, "t", "default", 5);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(count_rows(fx->path, "SELECT COUNT(*) FROM attempts"), 0);
    attempts_t h;
    memset(&h, 0, sizeof h);
    taskq_id_t e = tid(5);
    assert_int_equal(store_attempts(fx->s, &e, collect_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 0);
}

typedef struct {
    int n;
    char worker[16], name[16], queue[16];
    uint32_t attempt;
} running_t;

static void count_running(const taskq_id_t *id, uint32_t attempt, const char *worker,
                          const char *name, const char *queue, void *arg)
{
    (void)id;
    running_t *r = arg;
    r->attempt = attempt;
    snprintf(r->worker, sizeof r->worker, "%s", worker);
    snprintf(r->name, sizeof r->name, "%s", name);
    snprintf(r->queue, sizeof r->queue, "%s", queue);
    r->n++;
}

static void test_store_rollback_discards_the_turn(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 4, "t", "default", 5);
    store_rollback(fx->s);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_ENOTFOUND);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 4, "img.resize", "media", 5);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    running_t r = {0};
    assert_int_equal(store_load_running(fx->s, count_running, &r), TASKQ_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.attempt, 1);
    assert_string_equal(r.worker, "n1");
    assert_string_equal(r.name, "img.resize");
    assert_string_equal(r.queue, "media");
}

static void test_store_queue_oldest(void **state)
{
    fx_t *fx = *state;
    int64_t at = -1;
    assert_int_equal(store_queue_oldest(fx->s, "default", &at), TASKQ_OK);
    assert_int_equal(at, 0);
    assert_int_equal(store_queue_oldest(fx->s, "nope", &at), TASKQ_OK);
    assert_int_equal(at, 0);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", "q", 9);
    insert(fx->s, 2, "t", "q", 1); /* the oldest is not the best */
    insert(fx->s, 3, "t", "q", 5);
    insert(fx->s, 4, "t", "r", 5);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_queue_oldest(fx->s, "q", &at), TASKQ_OK);
    assert_int_equal(at, 1001);
    taskq_id_t t1 = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &t1, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_queue_oldest(fx->s, "q", &at), TASKQ_OK);
    assert_int_equal(at, 1002);
    assert_int_equal(store_queue_oldest(fx->s, "r", &at), TASKQ_OK);
    assert_int_equal(at, 1004);
}

static void test_store_open_fails_cleanly_on_bad_path(void **state)
{
    (void)state;
    taskq_err_t err = TASKQ_OK;
    store_t *s = store_open("sqlite:/nonexistent-dir/x/y.db", STORE_DURABILITY_FULL, &err);
    assert_null(s);
    assert_int_equal(err, TASKQ_ESTORE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_store_insert_is_idempotent_and_fills_the_record),
        T(test_store_ready_is_priority_then_fifo_per_queue),
        T(test_store_ready_with_excluded_names),
        T(test_store_exclusion_path_matches_filtered_order),
        T(test_store_ready_callback_may_mark_running),
        T(test_store_mark_running_and_end_attempt_are_compare_and_set),
        T(test_store_retry_path_and_attempt_history),
        T(test_store_promote_due_in_due_order),
        T(test_store_promote_due_many),
        T(test_store_expiry),
        T(test_store_progress_purge_and_reopen),
        T(test_store_rollback_discards_the_turn),
        T(test_store_queue_oldest),
        cmocka_unit_test(test_store_open_fails_cleanly_on_bad_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
