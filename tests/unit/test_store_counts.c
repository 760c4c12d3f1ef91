/* test_store_counts.c - the store's counts per (queue, state) (O(1) STATS
 * and queue listings): kept by every verb, restored by a rollback,
 * persisted by the commit and read back at open without counting; version
 * 1 and 2 databases are migrated with their counts computed once; a
 * version 3 database gets the lifecycle schema (v4) with its rows' TTLs; a
 * version 4 database keeps its stored attempt history under v5; a newer
 * database is refused. */
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
    return fx_setup(state, "test_store_counts", STORE_DURABILITY_NORMAL, false);
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

static void insert_q(store_t *s, uint8_t n, const char *queue, int state, bool want_inserted)
{
    store_new_task_t t;
    memset(&t, 0, sizeof t);
    t.id = tid(n);
    t.name = proto_str("t");
    t.max_attempts = 1;
    t.queue = proto_str(queue);
    t.priority = 5;
    t.state = state;
    t.due_at = state == TASKQ_STATE_SCHEDULED ? 500 : 0;
    t.policy.jitter = -1;
    bool inserted = !want_inserted;
    assert_int_equal(store_insert_task(s, &t, &inserted), TASKQ_OK);
    assert_int_equal(inserted, want_inserted);
}

static void insert(store_t *s, uint8_t n, bool want_inserted)
{
    insert_q(s, n, "default", TASKQ_STATE_QUEUED, want_inserted);
}

/* want: "q r s f sch rt rv ex" as 8 numbers (pending is always 0) */
typedef struct {
    uint64_t q, r, ok, failed, sched, retry, revoked, expired;
} want_t;

static void check(const uint64_t *c, want_t w)
{
    assert_int_equal(c[TASKQ_STATE_QUEUED], w.q);
    assert_int_equal(c[TASKQ_STATE_RUNNING], w.r);
    assert_int_equal(c[TASKQ_STATE_SUCCEEDED], w.ok);
    assert_int_equal(c[TASKQ_STATE_FAILED], w.failed);
    assert_int_equal(c[TASKQ_STATE_SCHEDULED], w.sched);
    assert_int_equal(c[TASKQ_STATE_RETRYING], w.retry);
    assert_int_equal(c[TASKQ_STATE_REVOKED], w.revoked);
    assert_int_equal(c[TASKQ_STATE_EXPIRED], w.expired);
    assert_int_equal(c[TASKQ_STATE_PENDING], 0);
}

static void expect_all(store_t *s, want_t w)
{
    uint64_t c[TASKQ_NSTATES], total;
    assert_int_equal(store_counts(s, c, &total), TASKQ_OK);
    check(c, w);
    assert_int_equal(total,
                     w.q + w.r + w.ok + w.failed + w.sched + w.retry + w.revoked + w.expired);
}

static void expect_queue(store_t *s, const char *queue, want_t w)
{
    uint64_t c[TASKQ_NSTATES];
    memset(c, 0xff, sizeof c);
    store_queue_counts(s, queue, c);
    check(c, w);
}

/* the old 4-state expectation on the default queue and overall */
static void expect(store_t *s, uint64_t q, uint64_t r, uint64_t ok, uint64_t failed)
{
    want_t w = {q, r, ok, failed, 0, 0, 0, 0};
    expect_all(s, w);
    expect_queue(s, "default", w);
}

static store_outcome_t outcome(int to, bool failure, int64_t now)
{
    store_outcome_t o;
    memset(&o, 0, sizeof o);
    o.to_state = to;
    o.failure = failure;
    o.code = proto_str(failure ? "e" : "");
    o.message = proto_str(failure ? "m" : "");
    o.now = now;
    o.due_at = to == TASKQ_STATE_RETRYING ? 50 : 0;
    return o;
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
    store_outcome_t ok = outcome(TASKQ_STATE_SUCCEEDED, false, 10);
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &ok), TASKQ_OK);
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &ok), TASKQ_ESTALE);
    store_outcome_t f = outcome(TASKQ_STATE_FAILED, true, 10);
    assert_int_equal(store_end_attempt(fx->s, &b, 1, &f), TASKQ_OK);
    store_outcome_t rq = outcome(TASKQ_STATE_QUEUED, true, 10);
    assert_int_equal(store_end_attempt(fx->s, &c, 1, &rq), TASKQ_OK);
    expect(fx->s, 2, 0, 1, 1);
    assert_int_equal(store_mark_running(fx->s, &c, 2, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_end_attempt(fx->s, &c, 2, &f), TASKQ_OK);
    expect(fx->s, 1, 0, 1, 2);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    /* a rolled-back turn leaves the counts as they were */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert(fx->s, 9, true);
    assert_int_equal(store_mark_running(fx->s, &d, 1, "n", 1, 2), TASKQ_OK);
    expect(fx->s, 1, 1, 1, 2);
    store_rollback(fx->s);
    expect(fx->s, 1, 0, 1, 2);

    fx_reopen(fx);
    expect(fx->s, 1, 0, 1, 2);

    size_t purged = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 11, 500, &purged), TASKQ_OK);
    assert_int_equal(purged, 3);
    expect(fx->s, 1, 0, 0, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    fx_reopen(fx);
    expect(fx->s, 1, 0, 0, 0);
}

/* Every state, several queues; a rollback restores each queue's cells and
 * forgets queues it created. */
static void test_counts_per_queue_and_state(void **state)
{
    fx_t *fx = *state;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, NULL);
    assert_non_null(fx->s);
    taskq_id_t t1 = tid(1), t2 = tid(2), t3 = tid(3), t5 = tid(5);
    size_t n;
    int64_t next;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_q(fx->s, 1, "a", TASKQ_STATE_QUEUED, true);
    insert_q(fx->s, 2, "a", TASKQ_STATE_QUEUED, true);
    insert_q(fx->s, 3, "a", TASKQ_STATE_QUEUED, true);
    insert_q(fx->s, 4, "b", TASKQ_STATE_SCHEDULED, true);
    insert_q(fx->s, 5, "b", TASKQ_STATE_QUEUED, true);
    assert_int_equal(store_mark_running(fx->s, &t1, 1, "n", 1, 2), TASKQ_OK);
    store_outcome_t rt = outcome(TASKQ_STATE_RETRYING, true, 10);
    assert_int_equal(store_end_attempt(fx->s, &t1, 1, &rt), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &t2, 1, "n", 1, 2), TASKQ_OK);
    store_outcome_t rv = outcome(TASKQ_STATE_REVOKED, false, 10);
    assert_int_equal(store_end_attempt(fx->s, &t2, 1, &rv), TASKQ_OK);
    assert_int_equal(store_expire_task(fx->s, &t3, 10), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &t5, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    want_t wa = {.retry = 1, .revoked = 1, .expired = 1};
    want_t wb = {.sched = 1, .r = 1};
    want_t wall = {.retry = 1, .revoked = 1, .expired = 1, .sched = 1, .r = 1};
    want_t zero = {0};
    expect_queue(fx->s, "a", wa);
    expect_queue(fx->s, "b", wb);
    expect_queue(fx->s, "default", zero);
    expect_queue(fx->s, "unknown", zero);
    expect_all(fx->s, wall);

    /* promotion moves the counts of the task's own queue */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_promote_due(fx->s, 1000, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 2);
    want_t wa2 = {.q = 1, .revoked = 1, .expired = 1};
    want_t wb2 = {.q = 1, .r = 1};
    expect_queue(fx->s, "a", wa2);
    expect_queue(fx->s, "b", wb2);
    /* a new queue in a turn that rolls back */
    insert_q(fx->s, 6, "c", TASKQ_STATE_QUEUED, true);
    want_t wc = {.q = 1};
    expect_queue(fx->s, "c", wc);
    store_rollback(fx->s);
    expect_queue(fx->s, "a", wa);
    expect_queue(fx->s, "b", wb);
    expect_queue(fx->s, "c", zero);
    expect_all(fx->s, wall);
    bool created = false;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_queue_ensure(fx->s, "c", &created), TASKQ_OK);
    assert_true(created); /* the rolled-back turn's queue row is gone */
    assert_int_equal(store_expire_due(fx->s, 1000, 10, NULL, NULL, &n, &next), TASKQ_OK);
    assert_int_equal(n, 0);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    fx_reopen(fx);
    expect_queue(fx->s, "a", wa);
    expect_queue(fx->s, "b", wb);
    expect_all(fx->s, wall);
}

/* Start-up reads the qcounts rows; it never counts the tasks. */
static void test_counts_are_read_not_counted_at_open(void **state)
{
    fx_t *fx = *state;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, NULL);
    assert_non_null(fx->s);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    insert_q(fx->s, 1, "a", TASKQ_STATE_QUEUED, true);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    store_close(&fx->s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE qcounts SET n = 41 WHERE queue = 'a' AND state = 0",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
    fx_reopen(fx);
    want_t w = {.q = 41};
    expect_queue(fx->s, "a", w);
    expect_all(fx->s, w);
}

static const char *const V1_SQL =
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
    "CREATE INDEX tasks_running ON tasks(worker) WHERE state = 1;";

/* Schema steps 2 and 3 as a v3 broker ran them (store_sqlite.c: SCHEMA_V2,
 * SCHEMA_V3; steps never change once released). */
#define STATE_EXPIRABLE "(state = 0 OR state BETWEEN 4 AND 5)"
#define STATE_TERMINAL "(state BETWEEN 2 AND 3 OR state BETWEEN 6 AND 7)"
static const char *const V2_SQL =
    "CREATE TABLE IF NOT EXISTS counts ("
    " k INTEGER PRIMARY KEY CHECK (k = 0),"
    " queued INTEGER NOT NULL, running INTEGER NOT NULL,"
    " succeeded INTEGER NOT NULL, failed INTEGER NOT NULL);"
    "INSERT OR REPLACE INTO counts (k, queued, running, succeeded, failed) SELECT 0,"
    " COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 1), 0),"
    " COALESCE(SUM(state = 2), 0), COALESCE(SUM(state = 3), 0) FROM tasks;";
static const char *const V3_SQL =
    "ALTER TABLE tasks ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';"
    "ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;"
    "ALTER TABLE tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN due_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN code TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN schedule TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN backoff_base_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN backoff_factor REAL NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN backoff_max_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN jitter INTEGER NOT NULL DEFAULT -1;"
    "ALTER TABLE tasks ADD COLUMN retry_on TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN no_retry_on TEXT NOT NULL DEFAULT '';"
    "UPDATE tasks SET failures = attempts WHERE state = 0 AND attempts > 0;"
    "UPDATE tasks SET failures = attempts - 1 WHERE state = 1 AND attempts > 1;"
    "DROP INDEX IF EXISTS tasks_queued;"
    "DROP INDEX IF EXISTS tasks_finished;"
    /* dispatch: a queue's best task (priority desc, FIFO) */
    "CREATE INDEX tasks_ready ON tasks(queue, priority DESC, seq) WHERE state = 0;"
    /* dispatch with names excluded (limits): distinct names, then per name */
    "CREATE INDEX tasks_ready_name ON tasks(queue, name, priority DESC, seq) WHERE state = 0;"
    /* ETAs and retry backoffs: earliest due first */
    "CREATE INDEX tasks_due ON tasks(due_at) WHERE state IN (4, 5);"
    /* expiry of tasks not started yet (state 0, 4, 5: see STATE_EXPIRABLE) */
    "CREATE INDEX tasks_expiry ON tasks(expires_at)"
    " WHERE " STATE_EXPIRABLE " AND expires_at > 0;"
    /* retention: oldest finished first (2, 3, 6, 7) */
    "CREATE INDEX tasks_terminal ON tasks(finished_at) WHERE " STATE_TERMINAL ";"
    "CREATE TABLE attempts ("
    " task_seq INTEGER NOT NULL,"
    " attempt INTEGER NOT NULL,"
    " worker TEXT NOT NULL DEFAULT '',"
    " child_pid INTEGER NOT NULL DEFAULT 0,"
    " started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0,"
    " state TEXT NOT NULL DEFAULT '',"
    " code TEXT NOT NULL DEFAULT '',"
    " message TEXT NOT NULL DEFAULT '',"
    " PRIMARY KEY (task_seq, attempt)) WITHOUT ROWID;"
    "CREATE TRIGGER tasks_delete_attempts AFTER DELETE ON tasks"
    " BEGIN DELETE FROM attempts WHERE task_seq = old.seq; END;"
    "CREATE TABLE queues ("
    " name TEXT PRIMARY KEY,"
    " paused INTEGER NOT NULL DEFAULT 0,"
    " max_pending INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE qcounts ("
    " queue TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " n INTEGER NOT NULL,"
    " PRIMARY KEY (queue, state)) WITHOUT ROWID;"
    "INSERT INTO qcounts (queue, state, n) SELECT queue, state, COUNT(*) FROM tasks"
    " GROUP BY queue, state;"
    "INSERT INTO queues (name) VALUES ('default');"
    "INSERT OR IGNORE INTO queues (name) SELECT DISTINCT queue FROM qcounts;"
    "DROP TABLE counts;"
    "CREATE TABLE limits ("
    " key TEXT PRIMARY KEY,"
    " rate REAL NOT NULL DEFAULT 0,"
    " burst INTEGER NOT NULL DEFAULT 0,"
    " max_running INTEGER NOT NULL DEFAULT 0,"
    " tokens REAL NOT NULL DEFAULT 0,"
    " tokens_at INTEGER NOT NULL DEFAULT 0,"
    " paused_until INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE schedules ("
    " name TEXT PRIMARY KEY,"
    " cron TEXT NOT NULL,"
    " task TEXT NOT NULL,"
    " args BLOB,"
    " queue TEXT NOT NULL DEFAULT '',"
    " priority INTEGER NOT NULL DEFAULT -1,"
    " tz TEXT NOT NULL DEFAULT '',"
    " max_attempts INTEGER NOT NULL DEFAULT 0,"
    " overlap INTEGER NOT NULL DEFAULT 0,"
    " catchup INTEGER NOT NULL DEFAULT 1,"
    " paused INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL DEFAULT 0,"
    " last_fire_at INTEGER NOT NULL DEFAULT 0,"
    " last_task_id BLOB,"
    " fires INTEGER NOT NULL DEFAULT 0,"
    " skipped INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL DEFAULT 0);";

/* Schema step 4 as a v4 broker ran it (store_sqlite.c: SCHEMA_V4). */
static const char *const V4_SQL =
    "ALTER TABLE tasks ADD COLUMN parent_id BLOB;"
    "ALTER TABLE tasks ADD COLUMN group_id BLOB;"
    "ALTER TABLE tasks ADD COLUMN group_index INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN is_callback INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN immutable INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN deps_left INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN unique_key TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE tasks ADD COLUMN unique_until INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN result_ttl_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN purge_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE tasks ADD COLUMN rerun_of BLOB;"
    "ALTER TABLE tasks ADD COLUMN rerun_by BLOB;"
    "ALTER TABLE tasks ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX IF EXISTS tasks_terminal;"
    "CREATE INDEX tasks_purge ON tasks(state, purge_at) WHERE " STATE_TERMINAL ";"
    "CREATE INDEX tasks_children ON tasks(parent_id) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX tasks_group ON tasks(group_id, group_index) WHERE group_id IS NOT NULL;"
    "CREATE TABLE groups ("
    " id BLOB PRIMARY KEY,"
    " total INTEGER NOT NULL,"
    " succeeded INTEGER NOT NULL DEFAULT 0,"
    " failed INTEGER NOT NULL DEFAULT 0,"
    " callback BLOB,"
    " on_fail INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE uniques ("
    " key TEXT PRIMARY KEY,"
    " holder BLOB NOT NULL,"
    " released INTEGER NOT NULL DEFAULT 0,"
    " hold_until INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX uniques_holder ON uniques(holder);"
    "CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (k, v) VALUES ('purged', 0), ('purge_horizon_ms', 0);";

static void write_db(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "write_db: %s\n", msg ? msg : "?");
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
    sqlite3_close(db);
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

/* A database written by a schema-1 broker: the migration counts once. */
static void test_version_1_database_is_counted_once(void **state)
{
    fx_t *fx = *state;
    write_db(fx->path, V1_SQL);
    write_db(fx->path, "INSERT INTO tasks (id, name, state, max_attempts, submitted_at) VALUES"
                       " (x'01000000000000000000000000000001', 't', 0, 1, 0),"
                       " (x'01000000000000000000000000000002', 't', 0, 1, 0),"
                       " (x'01000000000000000000000000000003', 't', 1, 1, 0),"
                       " (x'01000000000000000000000000000004', 't', 3, 1, 0);"
                       "PRAGMA user_version = 1;");
    fx_reopen(fx);
    expect(fx->s, 2, 1, 0, 1);
    taskq_id_t a = tid(1);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_mark_running(fx->s, &a, 1, "n", 1, 2), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    fx_reopen(fx);
    expect(fx->s, 1, 2, 0, 1);
}

typedef struct {
    int n;
    char state[4][16], worker[4][16];
    int64_t started[4];
} hist_t;

static void on_attempt(const store_attempt_t *a, void *arg)
{
    hist_t *h = arg;
    snprintf(h->state[h->n], sizeof h->state[0], "%s", a->state);
    snprintf(h->worker[h->n], sizeof h->worker[0], "%s", a->worker);
    h->started[h->n] = a->started_at;
    h->n++;
}

static bool first_ready(const store_queued_t *row, void *arg)
{
    *(uint8_t *)arg = row->id.b[15];
    return false;
}

/* A database written by a schema-2 broker (issue 5): tasks move to the
 * default queue with their budget kept, qcounts is counted once, the old
 * indexes and the counts row go, and every verb works on the old rows. */
static void test_version_2_database_is_migrated(void **state)
{
    fx_t *fx = *state;
    write_db(fx->path, V1_SQL);
    write_db(fx->path,
             "CREATE TABLE counts (k INTEGER PRIMARY KEY CHECK (k = 0),"
             " queued INTEGER NOT NULL, running INTEGER NOT NULL,"
             " succeeded INTEGER NOT NULL, failed INTEGER NOT NULL);"
             "INSERT INTO tasks (id, name, state, attempts, max_attempts, submitted_at, worker,"
             " started_at, finished_at, result, error) VALUES"
             " (x'01000000000000000000000000000001', 'a', 0, 0, 3, 1, '', 0, 0, NULL, ''),"
             " (x'01000000000000000000000000000002', 'b', 0, 1, 3, 2, 'old', 5, 0, NULL, ''),"
             " (x'01000000000000000000000000000003', 'c', 1, 2, 3, 3, 'w7', 6, 0, NULL, ''),"
             " (x'01000000000000000000000000000004', 'd', 2, 1, 3, 4, 'w7', 7, 8, x'2a', ''),"
             " (x'01000000000000000000000000000005', 'e', 3, 3, 3, 5, 'w7', 7, 9, NULL, 'x');"
             "INSERT INTO counts VALUES (0, 2, 1, 1, 1);"
             "PRAGMA user_version = 2;");
    fx_reopen(fx);
    assert_int_equal(query_int(fx->path, "PRAGMA user_version"), 5);
    expect(fx->s, 2, 1, 1, 1);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                                         " ('counts', 'tasks_queued', 'tasks_finished')"),
                     0);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM queues WHERE name = 'default'"), 1);
    /* the history checker's read-only query still works */
    assert_int_equal(query_int(fx->path,
                               "SELECT COUNT(*) FROM (SELECT id, name, args, state, attempts,"
                               " result FROM tasks)"),
                     5);

    proto_task_rec_t rec;
    taskq_id_t b = tid(2), c = tid(3), d = tid(4);
    assert_int_equal(store_get_task(fx->s, &b, &rec), TASKQ_OK);
    assert_int_equal(rec.queue.len, 7);
    assert_memory_equal(rec.queue.ptr, "default", 7);
    assert_int_equal(rec.priority, 5);
    assert_int_equal(rec.failures, 1); /* a v2 dispatch spent budget */
    assert_int_equal(rec.max_attempts, 3);
    assert_int_equal(rec.due_at, 0);
    assert_int_equal(rec.expires_at, 0);
    assert_int_equal(rec.schedule.len, 0);
    assert_int_equal(rec.code.len, 0);
    assert_int_equal(store_get_task(fx->s, &c, &rec), TASKQ_OK);
    assert_int_equal(rec.failures, 1); /* attempt 2 still running */
    store_policy_t pol;
    assert_int_equal(store_get_policy(fx->s, &c, &pol), TASKQ_OK);
    assert_int_equal(pol.policy.jitter, -1);
    assert_true(pol.policy.backoff_factor == 0);
    assert_int_equal(store_get_task(fx->s, &d, &rec), TASKQ_OK);
    assert_true(rec.has_result);

    /* dispatch order over the old rows: FIFO at the default priority */
    uint8_t first = 0;
    assert_int_equal(store_next_ready(fx->s, "default", NULL, 0, 1, first_ready, &first), TASKQ_OK);
    assert_int_equal(first, 1);

    /* the running attempt started before v3 has no row: ending it adds one */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_outcome_t o = outcome(TASKQ_STATE_SUCCEEDED, false, 20);
    o.child_pid = 4242;
    assert_int_equal(store_end_attempt(fx->s, &c, 2, &o), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    hist_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &c, on_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.state[0], "succeeded");
    assert_string_equal(h.worker[0], "w7");
    assert_int_equal(h.started[0], 6);
    expect(fx->s, 2, 0, 2, 1);

    /* purge works over the old terminal rows */
    size_t purged = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 100, 10, &purged), TASKQ_OK);
    assert_int_equal(purged, 3);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect(fx->s, 2, 0, 0, 0);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM attempts"), 0);
    fx_reopen(fx);
    expect(fx->s, 2, 0, 0, 0);
}

static int64_t id_ms(uint8_t n)
{
    (void)n;
    return 0x010000000000LL; /* tid(): byte 0 = 1, bytes 1..5 = 0 */
}

/* A database written by a schema-3 broker (issue 6), made with its own
 * schema steps: the v4 step adds the lifecycle columns and tables, gives
 * the terminal rows a purge_at from the default TTLs, replaces the
 * terminal index, and the new verbs work on the old rows. */
static void test_version_3_database_is_migrated(void **state)
{
    fx_t *fx = *state;
    write_db(fx->path, V1_SQL);
    write_db(fx->path, V2_SQL);
    write_db(fx->path, V3_SQL);
    write_db(fx->path,
             "INSERT INTO tasks (id, name, state, attempts, max_attempts, submitted_at, worker,"
             " started_at, finished_at, result, error, queue, priority, code, due_at) VALUES"
             " (x'01000000000000000000000000000001', 'a', 0, 0, 3, 1, '', 0, 0, NULL, '', 'q', 5,"
             "  '', 0),"
             " (x'01000000000000000000000000000002', 'b', 1, 1, 3, 2, 'w', 5, 0, NULL, '',"
             "  'default', 5, '', 0),"
             " (x'01000000000000000000000000000003', 'c', 2, 1, 3, 3, 'w', 5, 100, x'2a', '',"
             "  'default', 5, '', 0),"
             " (x'01000000000000000000000000000004', 'd', 3, 3, 3, 4, 'w', 5, 200, NULL, 'boom',"
             "  'q', 7, 'e.x', 0),"
             " (x'01000000000000000000000000000005', 'e', 7, 0, 3, 5, '', 0, 300, NULL, '',"
             "  'default', 5, '', 0),"
             " (x'01000000000000000000000000000006', 'f', 4, 0, 3, 6, '', 0, 0, NULL, '',"
             "  'default', 5, '', 50);"
             "INSERT INTO attempts (task_seq, attempt, worker, started_at, state)"
             " SELECT seq, 1, 'w', 5, 'running' FROM tasks WHERE name = 'b';"
             "INSERT INTO queues (name) VALUES ('q');"
             "DELETE FROM qcounts;"
             "INSERT INTO qcounts (queue, state, n) SELECT queue, state, COUNT(*) FROM tasks"
             " GROUP BY queue, state;"
             "PRAGMA user_version = 3;");
    fx_reopen(fx);
    assert_int_equal(query_int(fx->path, "PRAGMA user_version"), 5);
    want_t w = {.q = 1, .r = 1, .ok = 1, .failed = 1, .sched = 1, .expired = 1};
    expect_all(fx->s, w);
    want_t wq = {.q = 1, .failed = 1};
    expect_queue(fx->s, "q", wq);
    /* indexes: the terminal one replaced; no partial index tests a list of
     * more than two values (see STATE_TERMINAL in store_sqlite.c) */
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                                         " ('tasks_terminal', 'tasks_finished')"),
                     0);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM sqlite_master WHERE name IN"
                                         " ('tasks_purge', 'tasks_children', 'tasks_group',"
                                         " 'uniques_holder', 'groups', 'uniques', 'meta')"),
                     7);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
                                         " AND sql LIKE '%IN (%,%,%)%'"),
                     0);
    /* terminal rows: purge_at = finished_at + the default TTL of their state */
    assert_int_equal(query_int(fx->path, "SELECT purge_at FROM tasks WHERE name = 'c'"),
                     100 + TQ_DEFAULT_RETENTION_MS);
    assert_int_equal(query_int(fx->path, "SELECT purge_at FROM tasks WHERE name = 'd'"),
                     200 + TQ_DEFAULT_FAILED_TTL_MS);
    assert_int_equal(query_int(fx->path, "SELECT purge_at FROM tasks WHERE name = 'e'"),
                     300 + TQ_DEFAULT_RETENTION_MS);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM tasks WHERE purge_at <> 0"), 3);
    assert_int_equal(query_int(fx->path, "SELECT v FROM meta WHERE k = 'purged'"), 0);
    uint64_t purged = 9;
    int64_t horizon = 9;
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 0);
    assert_int_equal(horizon, 0);

    /* old records read with empty lifecycle fields */
    proto_task_rec_t rec;
    taskq_id_t a = tid(1), b = tid(2), c = tid(3), d = tid(4), zero;
    memset(&zero, 0, sizeof zero);
    assert_int_equal(store_get_task(fx->s, &c, &rec), TASKQ_OK);
    assert_true(rec.has_result);
    assert_memory_equal(rec.group_id.b, zero.b, 16);
    assert_memory_equal(rec.parent_id.b, zero.b, 16);
    assert_memory_equal(rec.rerun_of.b, zero.b, 16);
    assert_memory_equal(rec.rerun_by.b, zero.b, 16);
    assert_int_equal(rec.unique_key.len, 0);

    /* the new verbs on old rows */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    int prev = -1;
    uint32_t attempt = 0;
    assert_int_equal(store_revoke(fx->s, &b, "stop", 1000, &prev, &attempt), TASKQ_OK);
    assert_int_equal(prev, TASKQ_STATE_RUNNING);
    assert_int_equal(attempt, 1);
    assert_int_equal(store_revoke(fx->s, &c, "stop", 1000, &prev, &attempt), TASKQ_ETERMINAL);
    assert_int_equal(prev, TASKQ_STATE_SUCCEEDED);
    taskq_id_t n7 = tid(7);
    assert_int_equal(store_rerun(fx->s, &d, &n7, 1000), TASKQ_OK);
    size_t n = 0;
    assert_int_equal(store_purge_due(fx->s, 100 + TQ_DEFAULT_RETENTION_MS, 10, &n), TASKQ_OK);
    assert_int_equal(n, 1); /* c */
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    hist_t h;
    memset(&h, 0, sizeof h);
    assert_int_equal(store_attempts(fx->s, &b, on_attempt, &h), TASKQ_OK);
    assert_int_equal(h.n, 1);
    assert_string_equal(h.state[0], "revoked");
    assert_int_equal(store_get_task(fx->s, &d, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_FAILED);
    assert_memory_equal(rec.rerun_by.b, n7.b, 16);
    assert_int_equal(store_get_task(fx->s, &n7, &rec), TASKQ_OK);
    assert_int_equal(rec.state, TASKQ_STATE_QUEUED);
    assert_int_equal(rec.priority, 7);
    assert_int_equal(rec.queue.len, 1);
    assert_memory_equal(rec.rerun_of.b, d.b, 16);
    uint8_t first = 0;
    assert_int_equal(store_next_ready(fx->s, "q", NULL, 0, 1, first_ready, &first), TASKQ_OK);
    assert_int_equal(first, 7); /* priority 7 before a's 5 */
    (void)a;
    want_t w2 = {.q = 2, .revoked = 1, .failed = 1, .sched = 1, .expired = 1};
    expect_all(fx->s, w2);
    fx_reopen(fx);
    expect_all(fx->s, w2);
    store_purge_info(fx->s, &purged, &horizon);
    assert_int_equal(purged, 1);
    assert_int_equal(horizon, id_ms(3));
}

/* The history as text: "attempt|worker|pid|started|finished|state|code|message;" */
typedef struct {
    char buf[512];
    size_t len;
} text_t;

static void on_attempt_text(const store_attempt_t *a, void *arg)
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
    assert_int_equal(store_attempts(s, &id, on_attempt_text, &t), TASKQ_OK);
    assert_string_equal(t.buf, want);
}

static bool pick_first(const store_queued_t *row, void *arg)
{
    *(taskq_id_t *)arg = row->id;
    return false;
}

/* A database written by a schema-4 broker (issue 7), made with its own
 * schema steps: v5 (issue 4) stores no attempts row for a running attempt
 * nor for a plain success. The v4 rows keep showing the history they
 * stored (a v4 running attempt's 'running' row is completed at its end or
 * revoke), a task that succeeded before v3 still lists none, and
 * attempts started after the migration list the same fields from the
 * task row. */
static void test_version_4_database_is_migrated(void **state)
{
    fx_t *fx = *state;
    write_db(fx->path, V1_SQL);
    write_db(fx->path, V2_SQL);
    write_db(fx->path, V3_SQL);
    write_db(fx->path, V4_SQL);
    write_db(fx->path,
             "INSERT INTO tasks (id, name, state, attempts, failures, max_attempts, submitted_at,"
             " worker, child_pid, started_at, finished_at, result, error, code, purge_at) VALUES"
             /* 1: running attempt 1 (v4 'running' row) */
             " (x'01000000000000000000000000000001', 'a', 1, 1, 0, 3, 1, 'w', 0, 5, 0, NULL,"
             "  '', '', 0),"
             /* 2: succeeded at attempt 1 (its v4 row) */
             " (x'01000000000000000000000000000002', 'b', 2, 1, 0, 3, 2, 'w', 9, 5, 8, x'2a',"
             "  '', '', 100008),"
             /* 3: queued again after a crash (its v4 row) */
             " (x'01000000000000000000000000000003', 'c', 0, 1, 1, 3, 3, 'w', 4, 5, 0, NULL,"
             "  '', 'taskq.crash', 0),"
             /* 4: running attempt 1 (v4 'running' row), to be revoked */
             " (x'01000000000000000000000000000004', 'd', 1, 1, 0, 3, 4, 'w2', 0, 6, 0, NULL,"
             "  '', '', 0),"
             /* 5: succeeded before v3: no row */
             " (x'01000000000000000000000000000005', 'e', 2, 1, 0, 3, 5, 'w', 0, 5, 7, x'2a',"
             "  '', '', 100007);"
             "INSERT INTO attempts (task_seq, attempt, worker, child_pid, started_at, finished_at,"
             " state, code, message) SELECT seq, 1, worker, 0, started_at, 0, 'running', '', ''"
             " FROM tasks WHERE name IN ('a', 'd');"
             "INSERT INTO attempts (task_seq, attempt, worker, child_pid, started_at, finished_at,"
             " state, code, message) SELECT seq, 1, 'w', 9, 5, 8, 'succeeded', '', ''"
             " FROM tasks WHERE name = 'b';"
             "INSERT INTO attempts (task_seq, attempt, worker, child_pid, started_at, finished_at,"
             " state, code, message) SELECT seq, 1, 'w', 4, 5, 6, 'requeued', 'taskq.crash',"
             " 'killed' FROM tasks WHERE name = 'c';"
             "DELETE FROM qcounts;"
             "INSERT INTO qcounts (queue, state, n) SELECT queue, state, COUNT(*) FROM tasks"
             " GROUP BY queue, state;"
             "PRAGMA user_version = 4;");
    fx_reopen(fx);
    assert_int_equal(query_int(fx->path, "PRAGMA user_version"), 5);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM tasks WHERE live_attempt <> 0"), 0);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger'"
                                         " AND name = 'tasks_delete_attempts'"
                                         " AND sql LIKE '%WHEN old.attempts%'"),
                     1);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM attempts"), 4);
    want_t w = {.q = 1, .r = 2, .ok = 2};
    expect_all(fx->s, w);

    /* the stored history, unchanged (no synthesised duplicate) */
    expect_history(fx->s, 1, "1|w|0|5|0|running||;");
    expect_history(fx->s, 2, "1|w|9|5|8|succeeded||;");
    expect_history(fx->s, 3, "1|w|4|5|6|requeued|taskq.crash|killed;");
    expect_history(fx->s, 4, "1|w2|0|6|0|running||;");
    expect_history(fx->s, 5, "");

    /* v4 attempts end as v4 ended them: their row completed */
    taskq_id_t a = tid(1), c = tid(3), d = tid(4);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_outcome_t o;
    memset(&o, 0, sizeof o);
    o.to_state = TASKQ_STATE_SUCCEEDED;
    o.code = proto_str("");
    o.message = proto_str("");
    o.label = "succeeded";
    o.child_pid = 77;
    o.now = 20;
    assert_int_equal(store_end_attempt(fx->s, &a, 1, &o), TASKQ_OK);
    int prev = -1;
    uint32_t attempt = 0;
    assert_int_equal(store_revoke(fx->s, &d, "stop", 21, &prev, &attempt), TASKQ_OK);
    assert_int_equal(attempt, 1);
    /* a v4 queued task's next attempt is a v5 one */
    taskq_id_t first;
    assert_int_equal(store_next_ready(fx->s, "default", NULL, 0, 1, pick_first, &first),
                     TASKQ_OK);
    assert_memory_equal(first.b, c.b, 16);
    assert_int_equal(store_mark_running(fx->s, &c, 2, "w3", 22, 99), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 1, "1|w|77|5|20|succeeded||;");
    expect_history(fx->s, 4, "1|w2|0|6|21|revoked||stop;");
    expect_history(fx->s, 3, "1|w|4|5|6|requeued|taskq.crash|killed;2|w3|0|22|0|running||;");
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    o.now = 23;
    o.child_pid = 78;
    assert_int_equal(store_end_attempt(fx->s, &c, 2, &o), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    expect_history(fx->s, 3, "1|w|4|5|6|requeued|taskq.crash|killed;2|w3|78|22|23|succeeded||;");
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM attempts"), 4);
    fx_reopen(fx);
    expect_history(fx->s, 3, "1|w|4|5|6|requeued|taskq.crash|killed;2|w3|78|22|23|succeeded||;");
    want_t w2 = {.ok = 4, .revoked = 1};
    expect_all(fx->s, w2);

    /* purged tasks take their stored rows with them */
    size_t purged = 0;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_purge_finished(fx->s, 1000, 10, &purged), TASKQ_OK);
    assert_int_equal(purged, 5);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    assert_int_equal(query_int(fx->path, "SELECT COUNT(*) FROM attempts"), 0);
}

static void test_newer_schema_is_refused(void **state)
{
    fx_t *fx = *state;
    write_db(fx->path, "CREATE TABLE x (a); PRAGMA user_version = 99;");
    taskq_err_t err = TASKQ_OK;
    fx->s = store_open(fx->path, STORE_DURABILITY_NORMAL, &err);
    assert_null(fx->s);
    assert_int_equal(err, TASKQ_ESTORE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_counts_follow_every_verb_and_survive_reopen),
        T(test_counts_per_queue_and_state),
        T(test_counts_are_read_not_counted_at_open),
        T(test_version_1_database_is_counted_once),
        T(test_version_2_database_is_migrated),
        T(test_version_3_database_is_migrated),
        T(test_version_4_database_is_migrated),
        T(test_newer_schema_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
