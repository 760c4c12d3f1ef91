/* test_store.c - the SQLite store on a temp file with the production pragmas:
 * idempotent insert, dispatch order, the compare-and-set verbs, progress,
 * retention and reopening. */
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

typedef struct {
    char dir[64];
    char path[96];
    store_t *s;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
    taskq_err_t err;
    fx->s = store_open(fx->path, STORE_DURABILITY_FULL, &err);
    if (!fx->s || err != TASKQ_OK)
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    char p[128];
    store_close(&fx->s);
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", fx->path, sfx[i]);
        unlink(p);
    }
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static taskq_id_t tid(uint8_t n)
{
    taskq_id_t id;
    memset(id.b, 0, sizeof id.b);
    id.b[0] = 0x01;
    id.b[15] = n;
    return id;
}

static void insert(store_t *s, uint8_t n, const char *name, bool expect_new)
{
    proto_task_spec_t spec;
    memset(&spec, 0, sizeof spec);
    spec.id = tid(n);
    spec.name = proto_str(name);
    spec.args.ptr = (const uint8_t *)"\x91\x01";
    spec.args.len = 2;
    bool inserted = !expect_new;
    assert_int_equal(store_insert_task(s, &spec, 2, 1000 + n, &inserted), TASKQ_OK);
    assert_int_equal(inserted, expect_new);
}

typedef struct {
    int n;
    uint8_t last[8];
    uint32_t attempts[8];
} rows_t;

static bool collect(const store_queued_t *row, void *arg)
{
    rows_t *r = arg;
    r->last[r->n] = row->id.b[15];
    r->attempts[r->n] = row->attempts;
    r->n++;
    return true;
}

static void test_store_insert_is_idempotent_and_dispatch_is_by_seq(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 9, "b.task", true);
    insert(fx->s, 3, "a.task", true);
    insert(fx->s, 9, "other", false); /* same id: no-op */
    insert(fx->s, 5, "c.task", true);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    rows_t r = {0};
    assert_int_equal(store_next_queued(fx->s, 2, collect, &r), TASKQ_OK);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.last[0], 9); /* submission order, not id order */
    assert_int_equal(r.last[1], 3);
    proto_task_rec_t rec;
    taskq_id_t id9 = tid(9);
    assert_int_equal(store_get_task(fx->s, &id9, &rec), TASKQ_OK);
    assert_int_equal(rec.name.len, 6);
    assert_memory_equal(rec.name.ptr, "b.task", 6);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    assert_int_equal(rec.max_attempts, 2);
    taskq_id_t none = tid(200);
    assert_int_equal(store_get_task(fx->s, &none, &rec), TASKQ_ENOTFOUND);
}

static void test_store_mark_running_and_finish_are_compare_and_set(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", true);
    assert_int_equal(store_mark_running(fx->s, &a, 2, "n1", 5, 6), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_ESTALE);
    proto_bin_t res = {(const uint8_t *)"\x2a", 1};
    assert_int_equal(store_finish(fx->s, &a, 2, true, res, proto_str(""), 77, 9), TASKQ_ESTALE);
    assert_int_equal(store_finish(fx->s, &a, 1, true, res, proto_str(""), 77, 9), TASKQ_OK);
    assert_int_equal(store_finish(fx->s, &a, 1, false, res, proto_str("x"), 77, 9),
                     TASKQ_ESTALE); /* terminal states never change */
    taskq_id_t none = tid(99);
    assert_int_equal(store_finish(fx->s, &none, 1, true, res, proto_str(""), 0, 9),
                     TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_SUCCEEDED);
    assert_int_equal(rec.attempts, 1);
    assert_int_equal(rec.child_pid, 77);
    assert_int_equal(rec.finished_at, 9);
    assert_int_equal(rec.started_at, 5);
    assert_true(rec.has_result);
    assert_int_equal(rec.result.len, 1);
    assert_int_equal(rec.result.ptr[0], 0x2a);
    assert_int_equal(rec.worker.len, 2);
}

static void test_store_requeue_until_attempt_limit_then_fail(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(2);
    int st = -1;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 2, "t", true); /* max_attempts 2 */
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_requeue(fx->s, &a, 2, "lease expired", 10, &st), TASKQ_ESTALE);
    assert_int_equal(store_requeue(fx->s, &a, 1, "lease expired", 10, &st), TASKQ_OK);
    assert_int_equal(st, TASKQ_STATE_QUEUED);
    rows_t r = {0};
    assert_int_equal(store_next_queued(fx->s, 10, collect, &r), TASKQ_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.attempts[0], 1);
    assert_int_equal(store_mark_running(fx->s, &a, 2, "n2", 11, 12), TASKQ_OK);
    assert_int_equal(store_requeue(fx->s, &a, 2, "worker node n2 lost", 20, &st), TASKQ_OK);
    assert_int_equal(st, TASKQ_STATE_FAILED);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_FAILED);
    assert_int_equal(rec.finished_at, 20);
    const char *want = "attempt limit (2) reached: worker node n2 lost";
    assert_int_equal(rec.error.len, strlen(want));
    assert_memory_equal(rec.error.ptr, want, strlen(want));
    assert_false(rec.has_result);
}

static void test_store_progress_counts_purge_and_reopen(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(1), b = tid(2), c = tid(3);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 1, "t", true);
    insert(fx->s, 2, "t", true);
    insert(fx->s, 3, "t", true);
    assert_int_equal(store_set_progress(fx->s, &a, 1, 1, 2, proto_str("m")), TASKQ_ESTALE);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_set_progress(fx->s, &a, 1, 3, 10, proto_str("three")), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &b, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_finish(fx->s, &b, 1, false, (proto_bin_t){0}, proto_str("boom"), 1, 100),
                     TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    uint64_t counts[4], total;
    assert_int_equal(store_counts(fx->s, counts, &total), TASKQ_OK);
    assert_int_equal(total, 3);
    assert_int_equal(counts[TASKQ_STATE_QUEUED], 1);
    assert_int_equal(counts[TASKQ_STATE_RUNNING], 1);
    assert_int_equal(counts[TASKQ_STATE_FAILED], 1);

    /* reopen: everything is still there, running tasks can be reloaded */
    store_close(&fx->s);
    assert_null(fx->s);
    taskq_err_t err;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, &err);
    assert_non_null(fx->s);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_OK);
    assert_int_equal(rec.progress_current, 3);
    assert_int_equal(rec.progress_total, 10);
    assert_int_equal(rec.progress_message.len, 5);
    rows_t r = {0};
    assert_int_equal(store_next_queued(fx->s, 10, collect, &r), TASKQ_OK);
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
}

static void count_running(const taskq_id_t *id, uint32_t attempt, const char *worker, void *arg)
{
    (void)id;
    assert_int_equal(attempt, 1);
    assert_string_equal(worker, "n1");
    (*(int *)arg)++;
}

static void test_store_rollback_discards_the_turn(void **state)
{
    fx_t *fx = *state;
    taskq_id_t a = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 4, "t", true);
    store_rollback(fx->s);
    proto_task_rec_t rec;
    assert_int_equal(store_get_task(fx->s, &a, &rec), TASKQ_ENOTFOUND);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 4, "t", true);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n1", 5, 6), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    int n = 0;
    assert_int_equal(store_load_running(fx->s, count_running, &n), TASKQ_OK);
    assert_int_equal(n, 1);
}

static void test_store_open_fails_cleanly_on_bad_path(void **state)
{
    (void)state;
    taskq_err_t err = TASKQ_OK;
    store_t *s = store_open("sqlite:/nonexistent-dir/x/y.db", STORE_DURABILITY_FULL, &err);
    assert_null(s);
    assert_int_equal(err, TASKQ_ESTORE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_insert_is_idempotent_and_dispatch_is_by_seq,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_mark_running_and_finish_are_compare_and_set,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_requeue_until_attempt_limit_then_fail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_progress_counts_purge_and_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_rollback_discards_the_turn, setup, teardown),
        cmocka_unit_test(test_store_open_fails_cleanly_on_bad_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
