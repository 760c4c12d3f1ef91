/* test_store_history.c - the attempts history a user sees (store_attempts:
 * ATTEMPTS and the failed listing's "history") for the common lives of a
 * task: succeeded first time, failed then succeeded, running now, revoked
 * while running, and a few edges (a success with a message, a rolled back
 * dispatch, a stale end, seq reuse after a purge, reopening).
 *
 * Schema v5 stores no row for a running attempt nor for one that ended
 * its task successfully (it is read from the task row); the expected
 * listings below are the ones schema v4 gave (which stored every attempt),
 * field by field and in the same order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_fx.h"

static int setup(void **state)
{
    return fx_setup(state, "test_store_history", STORE_DURABILITY_NORMAL, true);
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
    id.b[9] = (uint8_t)(n * 37); /* spread the hint hash a little */
    id.b[15] = n;
    return id;
}

static void insert(store_t *s, uint8_t n)
{
    store_new_task_t t;
    memset(&t, 0, sizeof t);
    t.id = tid(n);
    t.name = proto_str("t");
    t.max_attempts = 3;
    t.queue = proto_str("default");
    t.priority = 5;
    t.state = TASKQ_STATE_QUEUED;
    t.policy.jitter = -1;
    t.submitted_at = 1000 + n;
    bool inserted = false;
    assert_int_equal(store_insert_task(s, &t, &inserted), TASKQ_OK);
    assert_true(inserted);
}

static store_outcome_t outcome(int to, bool failure, const char *code, const char *msg,
                               const char *label, int32_t pid, int64_t now)
{
    store_outcome_t o;
    memset(&o, 0, sizeof o);
    o.to_state = to;
    o.failure = failure;
    o.code = proto_str(code);
    o.message = proto_str(msg);
    o.label = label;
    o.child_pid = pid;
    o.now = now;
    if (to == TASKQ_STATE_SUCCEEDED) {
        o.result.ptr = (const uint8_t *)"\x2a";
        o.result.len = 1;
    }
    return o;
}

static store_outcome_t ok(int32_t pid, int64_t now)
{
    /* as handlers.c on_done sends a success */
    return outcome(TASKQ_STATE_SUCCEEDED, false, "", "", "succeeded", pid, now);
}

/* The listing as text: one "attempt|worker|pid|started|finished|state|code|message;" per row. */
typedef struct {
    char buf[1024];
    size_t len;
} text_t;

static void on_attempt(const store_attempt_t *a, void *arg)
{
    text_t *t = arg;
    int n = snprintf(t->buf + t->len, sizeof t->buf - t->len, "%u|%s|%d|%lld|%lld|%s|%s|%s;",
                     a->attempt, a->worker, a->child_pid, (long long)a->started_at,
                     (long long)a->finished_at, a->state, a->code, a->message);
    assert_true(n > 0 && (size_t)n < sizeof t->buf - t->len);
    t->len += (size_t)n;
}

static void expect_history(store_t *s, uint8_t n, const char *want)
{
    text_t t;
    memset(&t, 0, sizeof t);
    taskq_id_t id = tid(n);
    assert_int_equal(store_attempts(s, &id, on_attempt, &t), TASKQ_OK);
    assert_string_equal(t.buf, want);
}

typedef struct {
    taskq_id_t ids[16];
    uint32_t attempts[16];
    int n;
} picked_t;

static bool pick(const store_queued_t *row, void *arg)
{
    picked_t *p = arg;
    p->ids[p->n] = row->id;
    p->attempts[p->n] = row->attempts;
    p->n++;
    return p->n < 16;
}

/* Dispatches task n the broker's way: store_next_ready (limit 1 over a
 * queue where n is first), then store_mark_running. */
static void dispatch_next(store_t *s, uint8_t n, uint32_t attempt, const char *worker, int64_t at)
{
    picked_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(store_next_ready(s, "default", NULL, 0, 1, pick, &p), TASKQ_OK);
    assert_int_equal(p.n, 1);
    taskq_id_t id = tid(n);
    assert_memory_equal(p.ids[0].b, id.b, 16);
    assert_int_equal(p.attempts[0] + 1, attempt);
    assert_int_equal(store_mark_running(s, &id, attempt, worker, at, at + 1000), TASKQ_OK);
}

static void mark(store_t *s, uint8_t n, uint32_t attempt, const char *worker, int64_t at)
{
    taskq_id_t id = tid(n);
    assert_int_equal(store_mark_running(s, &id, attempt, worker, at, at + 1000), TASKQ_OK);
}

static void end(store_t *s, uint8_t n, uint32_t attempt, store_outcome_t o)
{
    taskq_id_t id = tid(n);
    assert_int_equal(store_end_attempt(s, &id, attempt, &o), TASKQ_OK);
}

static void test_history_succeeded_first_time(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1);
    insert(fx->s, 2);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    /* 1: next_ready then mark_running then end, each in its own turn */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 1, 1, "node-a", 10);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    end(fx->s, 1, 1, ok(4242, 15));
    /* inside the turn that ended it, then committed, then after a reopen */
    expect_history(fx->s, 1, "1|node-a|4242|10|15|succeeded||;");
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|node-a|4242|10|15|succeeded||;");
    /* 2: marked by id (no next_ready first), ended in the same turn */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    mark(fx->s, 2, 1, "node-b", 20);
    end(fx->s, 2, 1, ok(7, 21));
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 2, "1|node-b|7|20|21|succeeded||;");
    fx_reopen(fx);
    expect_history(fx->s, 1, "1|node-a|4242|10|15|succeeded||;");
    expect_history(fx->s, 2, "1|node-b|7|20|21|succeeded||;");
    proto_task_rec_t rec;
    taskq_id_t one = tid(1);
    assert_int_equal(store_get_task(fx->s, &one, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rec.attempts, 1);
    assert_int_equal(rec.child_pid, 4242);
    assert_true(rec.has_result);
    assert_int_equal(rec.result.len, 1);
}

static void test_history_failed_then_succeeded(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1);
    dispatch_next(fx->s, 1, 1, "n1", 10);
    store_outcome_t o =
        outcome(TASKQ_STATE_QUEUED, true, "taskq.crash", "child killed", "requeued", 55, 12);
    end(fx->s, 1, 1, o);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|55|10|12|requeued|taskq.crash|child killed;");
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 1, 2, "n2", 20);
    expect_history(fx->s, 1,
                   "1|n1|55|10|12|requeued|taskq.crash|child killed;"
                   "2|n2|0|20|0|running||;");
    end(fx->s, 1, 2, ok(66, 25));
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    const char *want = "1|n1|55|10|12|requeued|taskq.crash|child killed;"
                       "2|n2|66|20|25|succeeded||;";
    expect_history(fx->s, 1, want);
    fx_reopen(fx);
    expect_history(fx->s, 1, want);
    /* the task keeps the failure's code (as before) */
    proto_task_rec_t rec;
    taskq_id_t one = tid(1);
    assert_int_equal(store_get_task(fx->s, &one, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rec.failures, 1);
    assert_int_equal(rec.code.len, strlen("taskq.crash"));
}

static void test_history_running_now(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1);
    insert(fx->s, 2);
    expect_history(fx->s, 1, ""); /* never ran */
    dispatch_next(fx->s, 1, 1, "n1", 10);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|0|10|0|running||;");
    /* progress does not change the history */
    taskq_id_t one = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_set_progress(fx->s, &one, 1, 1, 2, proto_str("half")), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|0|10|0|running||;");
    /* a retried task running its second attempt */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 2, 1, "n1", 11);
    store_outcome_t o = outcome(TASKQ_STATE_RETRYING, true, "e.x", "boom", "retrying", 9, 12);
    o.due_at = 50;
    end(fx->s, 2, 1, o);
    size_t promoted = 0;
    int64_t next = 0;
    assert_int_equal(store_promote_due(fx->s, 50, 10, NULL, NULL, &promoted, &next), TASKQ_OK);
    assert_int_equal(promoted, 1);
    mark(fx->s, 2, 2, "n3", 60);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    const char *want = "1|n1|9|11|12|retrying|e.x|boom;2|n3|0|60|0|running||;";
    expect_history(fx->s, 2, want);
    fx_reopen(fx);
    expect_history(fx->s, 1, "1|n1|0|10|0|running||;");
    expect_history(fx->s, 2, want);
    /* still ends normally after a reopen (no hint left) */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    end(fx->s, 1, 1, ok(3, 70));
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|3|10|70|succeeded||;");
}

static void test_history_revoked_while_running(void **state)
{
    fx_t *fx = *state;
    taskq_id_t one = tid(1), two = tid(2), three = tid(3);
    int prev = -1;
    uint32_t attempt = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1);
    insert(fx->s, 2);
    insert(fx->s, 3);
    dispatch_next(fx->s, 1, 1, "n1", 10);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_revoke(fx->s, &one, "by user", 30, &prev, &attempt), TASKQ_OK);
    assert_int_equal(prev, TASKQ_STATE_RUNNING);
    assert_int_equal(attempt, 1);
    /* the late DONE of the revoked attempt is stale */
    store_outcome_t o = ok(5, 31);
    assert_int_equal(store_end_attempt(fx->s, &one, 1, &o), TASKQ_ESTALE);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|0|10|30|revoked||by user;");

    /* second attempt revoked after a failed first one */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 2, 1, "n1", 40);
    end(fx->s, 2, 1, outcome(TASKQ_STATE_QUEUED, true, "e", "m", "requeued", 8, 41));
    dispatch_next(fx->s, 2, 2, "n2", 42);
    assert_int_equal(store_revoke(fx->s, &two, "stop", 43, &prev, &attempt), TASKQ_OK);
    assert_int_equal(attempt, 2);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    const char *want2 = "1|n1|8|40|41|requeued|e|m;2|n2|0|42|43|revoked||stop;";
    expect_history(fx->s, 2, want2);

    /* revoked while queued after a failure: no row for the revoke */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 3, 1, "n1", 50);
    end(fx->s, 3, 1, outcome(TASKQ_STATE_QUEUED, false, "", "", "requeued", 0, 51));
    assert_int_equal(store_revoke(fx->s, &three, "gone", 52, &prev, &attempt), TASKQ_OK);
    assert_int_equal(prev, TASKQ_STATE_QUEUED);
    assert_int_equal(attempt, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 3, "1|n1|0|50|51|requeued||;");
    fx_reopen(fx);
    expect_history(fx->s, 1, "1|n1|0|10|30|revoked||by user;");
    expect_history(fx->s, 2, want2);
    expect_history(fx->s, 3, "1|n1|0|50|51|requeued||;");
}

/* Edges: a success that carries a message or another label keeps a stored
 * row; a rolled back dispatch leaves nothing; a stale end changes nothing. */
static void test_history_edges(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1);
    insert(fx->s, 2);
    insert(fx->s, 3);
    dispatch_next(fx->s, 1, 1, "n1", 10);
    end(fx->s, 1, 1, outcome(TASKQ_STATE_SUCCEEDED, false, "", "warn: slow", NULL, 4, 11));
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|n1|4|10|11|succeeded||warn: slow;");

    /* a dispatch rolled back: still queued, no history; then it runs */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 2, 1, "n1", 20);
    store_rollback(fx->s);
    expect_history(fx->s, 2, "");
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_outcome_t o = ok(1, 21);
    taskq_id_t two = tid(2);
    assert_int_equal(store_end_attempt(fx->s, &two, 1, &o), TASKQ_ESTALE);
    dispatch_next(fx->s, 2, 1, "n2", 22);
    o = ok(1, 23);
    assert_int_equal(store_end_attempt(fx->s, &two, 2, &o), TASKQ_ESTALE); /* wrong attempt */
    expect_history(fx->s, 2, "1|n2|0|22|0|running||;");
    end(fx->s, 2, 1, ok(2, 24));
    assert_int_equal(store_end_attempt(fx->s, &two, 1, &o), TASKQ_ESTALE); /* repeat */
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 2, "1|n2|2|22|24|succeeded||;");
    uint64_t c[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(fx->s, c, &total), TASKQ_OK);
    assert_int_equal(c[TASKQ_STATE_SUCCEEDED], 2);
    assert_int_equal(c[TASKQ_STATE_QUEUED], 1);
    assert_int_equal(c[TASKQ_STATE_RUNNING], 0);

    /* the last task (highest seq) fails once then succeeds; once purged,
     * a new task reuses its seq and has no history */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    dispatch_next(fx->s, 3, 1, "n1", 30);
    end(fx->s, 3, 1, outcome(TASKQ_STATE_QUEUED, true, "e", "m", "requeued", 3, 31));
    dispatch_next(fx->s, 3, 2, "n1", 32);
    end(fx->s, 3, 2, ok(3, 33));
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 3, "1|n1|3|30|31|requeued|e|m;2|n1|3|32|33|succeeded||;");
    taskq_id_t three = tid(3);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &three, &rec), TASKQ_OK); /* by the ended seq */
    assert_memory_equal(rec.id.b, three.b, sizeof three.b);
    assert_int_equal(rec.state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rec.attempts, 2);
    size_t purged = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 1000, 10, &purged), TASKQ_OK);
    assert_int_equal(purged, 3);
    insert(fx->s, 4);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 4, "");
    text_t t;
    memset(&t, 0, sizeof t);
    assert_int_equal(store_attempts(fx->s, &three, on_attempt, &t), TASKQ_ENOTFOUND);
    /* the record read after an end goes by the ended seq (store_get_task):
     * never to the new task that took the seq */
    assert_int_equal(store_get_task(fx->s, &three, &rec), TASKQ_ENOTFOUND);
    taskq_id_t four = tid(4);
    assert_int_equal(store_get_task(fx->s, &four, &rec), TASKQ_OK);
    assert_memory_equal(rec.id.b, four.b, sizeof four.b);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
}

/* Many tasks through the hinted path, turn after turn, with a revoke and
 * a failure among them: counts and every history as expected. */
static void test_history_many_turns(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (uint8_t n = 1; n <= 200; n++)
        insert(fx->s, n);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    picked_t prev;
    memset(&prev, 0, sizeof prev);
    for (int turn = 0; turn < 14; turn++) {
        assert_int_equal(store_begin(fx->s), TASKQ_OK);
        for (int k = 0; k < prev.n; k++) {
            uint8_t n = prev.ids[k].b[15];
            store_outcome_t o =
                n % 50 == 0 ? outcome(TASKQ_STATE_FAILED, true, "e", "no", "failed", n, 100 + turn)
                            : ok(n, 100 + turn);
            if (n % 70 == 0) {
                assert_int_equal(store_revoke(fx->s, &prev.ids[k], "r", 100 + turn, NULL, NULL),
                                 TASKQ_OK);
                assert_int_equal(store_end_attempt(fx->s, &prev.ids[k], 1, &o), TASKQ_ESTALE);
                continue;
            }
            assert_int_equal(store_end_attempt(fx->s, &prev.ids[k], 1, &o), TASKQ_OK);
        }
        memset(&prev, 0, sizeof prev);
        assert_int_equal(store_next_ready(fx->s, "default", NULL, 0, 15, pick, &prev), TASKQ_OK);
        for (int k = 0; k < prev.n; k++)
            assert_int_equal(
                store_mark_running(fx->s, &prev.ids[k], 1, "w", 100 + turn, 200 + turn), TASKQ_OK);
        assert_int_equal(store_commit(fx->s), TASKQ_OK);
    }
    uint64_t c[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(fx->s, c, &total), TASKQ_OK);
    /* 13 turns ended 195 tasks: 50, 100, 150 failed; 70, 140 revoked */
    assert_int_equal(c[TASKQ_STATE_SUCCEEDED], 190);
    assert_int_equal(c[TASKQ_STATE_FAILED], 3);
    assert_int_equal(c[TASKQ_STATE_REVOKED], 2);
    assert_int_equal(c[TASKQ_STATE_RUNNING], 5);
    assert_int_equal(c[TASKQ_STATE_QUEUED], 0);
    char want[128];
    for (uint8_t n = 1; n <= 195; n++) {
        int turn = (n - 1) / 15 + 1; /* ended one turn after its dispatch */
        if (n % 70 == 0)
            snprintf(want, sizeof want, "1|w|0|%d|%d|revoked||r;", 100 + turn - 1, 100 + turn);
        else if (n % 50 == 0)
            snprintf(want, sizeof want, "1|w|%d|%d|%d|failed|e|no;", n, 100 + turn - 1,
                     100 + turn);
        else
            snprintf(want, sizeof want, "1|w|%d|%d|%d|succeeded||;", n, 100 + turn - 1,
                     100 + turn);
        expect_history(fx->s, n, want);
    }
    expect_history(fx->s, 196, "1|w|0|113|0|running||;");
    fx_reopen(fx);
    assert_int_equal(store_counts(fx->s, c, &total), TASKQ_OK);
    assert_int_equal(c[TASKQ_STATE_SUCCEEDED], 190);
    assert_int_equal(c[TASKQ_STATE_RUNNING], 5);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_history_succeeded_first_time),
        T(test_history_failed_then_succeeded),
        T(test_history_running_now),
        T(test_history_revoked_while_running),
        T(test_history_edges),
        T(test_history_many_turns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
