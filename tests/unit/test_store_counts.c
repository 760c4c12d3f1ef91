/* test_store_counts.c - the store's per-state counts (O(1) STATS): kept by
 * every verb, restored by a rollback, persisted by the commit and read back
 * at open without counting; a version-1 database is migrated with its
 * counts computed once. */
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

typedef struct {
    char dir[64];
    char path[96];
    store_t *s;
} fx_t;

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof *fx);
    strcpy(fx->dir, "/tmp/test_store_counts.XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    snprintf(fx->path, sizeof fx->path, "%s/t.db", fx->dir);
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

static void insert(store_t *s, uint8_t n, bool want_inserted)
{
    proto_task_spec_t t;
    memset(&t, 0, sizeof t);
    t.id = tid(n);
    t.name = proto_str("t");
    bool inserted = !want_inserted;
    assert_int_equal(store_insert_task(s, &t, 1, 0, &inserted), TASKQ_OK);
    assert_int_equal(inserted, want_inserted);
}

static void expect(store_t *s, uint64_t q, uint64_t r, uint64_t ok, uint64_t failed)
{
    uint64_t c[4], total;
    assert_int_equal(store_counts(s, c, &total), TASKQ_OK);
    assert_int_equal(c[TASKQ_STATE_QUEUED], q);
    assert_int_equal(c[TASKQ_STATE_RUNNING], r);
    assert_int_equal(c[TASKQ_STATE_SUCCEEDED], ok);
    assert_int_equal(c[TASKQ_STATE_FAILED], failed);
    assert_int_equal(total, q + r + ok + failed);
}

static void reopen(fx_t *fx)
{
    store_close(&fx->s);
    taskq_err_t err;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, &err);
    assert_non_null(fx->s);
    assert_int_equal(err, TASKQ_OK);
}

static void test_counts_follow_every_verb_and_survive_reopen(void **state)
{
    fx_t *fx = *state;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, NULL);
    assert_non_null(fx->s);
    expect(fx->s, 0, 0, 0, 0);
    taskq_id_t a = tid(1), b = tid(2), c = tid(3), d = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    for (uint8_t i = 1; i <= 4; i++)
        insert(fx->s, i, true);
    insert(fx->s, 1, false); /* a known id changes nothing */
    expect(fx->s, 4, 0, 0, 0);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n", 1, 2), TASKQ_ESTALE); /* no move */
    assert_int_equal(store_mark_running(fx->s, &b, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &c, 1, "n", 1, 2), TASKQ_OK);
    expect(fx->s, 1, 3, 0, 0);
    assert_int_equal(store_finish(fx->s, &a, 1, true, (proto_bin_t){0}, proto_str(""), 7, 10),
                     TASKQ_OK);
    assert_int_equal(store_finish(fx->s, &a, 1, true, (proto_bin_t){0}, proto_str(""), 7, 10),
                     TASKQ_ESTALE);
    assert_int_equal(store_finish(fx->s, &b, 1, false, (proto_bin_t){0}, proto_str("x"), 7, 10),
                     TASKQ_OK);
    int st = -1;
    /* max_attempts 1: the requeue fails it at the limit */
    assert_int_equal(store_requeue(fx->s, &c, 1, "lost", 10, &st), TASKQ_OK);
    assert_int_equal(st, TASKQ_STATE_FAILED);
    expect(fx->s, 1, 0, 1, 2);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    /* a rolled-back turn leaves the counts as they were */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 9, true);
    assert_int_equal(store_mark_running(fx->s, &d, 1, "n", 1, 2), TASKQ_OK);
    expect(fx->s, 1, 1, 1, 2);
    store_rollback(fx->s);
    expect(fx->s, 1, 0, 1, 2);

    reopen(fx);
    expect(fx->s, 1, 0, 1, 2);

    size_t purged = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 11, 500, &purged), TASKQ_OK);
    assert_int_equal(purged, 3);
    expect(fx->s, 1, 0, 0, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    reopen(fx);
    expect(fx->s, 1, 0, 0, 0);
}

/* A database written by a schema-1 broker: the migration counts once. */
static void test_version_1_database_is_counted_once(void **state)
{
    fx_t *fx = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    const char *v1 =
        "CREATE TABLE tasks (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
        " name TEXT NOT NULL, args BLOB, state INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
        " time_limit_ms INTEGER NOT NULL DEFAULT 0, worker TEXT NOT NULL DEFAULT '',"
        " child_pid INTEGER NOT NULL DEFAULT 0, submitted_at INTEGER NOT NULL,"
        " started_at INTEGER NOT NULL DEFAULT 0, finished_at INTEGER NOT NULL DEFAULT 0,"
        " progress_current INTEGER NOT NULL DEFAULT 0, progress_total INTEGER NOT NULL DEFAULT 0,"
        " progress_message TEXT NOT NULL DEFAULT '', result BLOB,"
        " error TEXT NOT NULL DEFAULT '', lease_deadline INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX tasks_queued ON tasks(seq) WHERE state = 0;"
        "CREATE INDEX tasks_finished ON tasks(finished_at) WHERE state IN (2, 3);"
        "CREATE INDEX tasks_running ON tasks(worker) WHERE state = 1;"
        "INSERT INTO tasks (id, name, state, max_attempts, submitted_at) VALUES"
        " (x'01000000000000000000000000000001', 't', 0, 1, 0),"
        " (x'01000000000000000000000000000002', 't', 0, 1, 0),"
        " (x'01000000000000000000000000000003', 't', 1, 1, 0),"
        " (x'01000000000000000000000000000004', 't', 3, 1, 0);"
        "PRAGMA user_version = 1;";
    assert_int_equal(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    reopen(fx);
    expect(fx->s, 2, 1, 0, 1);
    taskq_id_t a = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    reopen(fx);
    expect(fx->s, 1, 2, 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counts_follow_every_verb_and_survive_reopen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_version_1_database_is_counted_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
