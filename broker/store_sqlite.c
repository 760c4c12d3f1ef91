/* store_sqlite.c - the SQLite store; see store.h. The only file that
 * includes sqlite3.h. One connection, every statement prepared once at open.
 *
 * Schema version (PRAGMA user_version). Migration procedure: bump
 * SCHEMA_VERSION, add a step `if (version < N) { ALTER/CREATE ...; }` to
 * migrate() that runs inside one transaction and sets user_version = N, and
 * never edit an older step; a database newer than this binary is refused. */
#include "store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "tlog.h"
#include "tmem.h"

#define SCHEMA_VERSION 2
#define WAL_AUTOCHECKPOINT_PAGES "8192" /* see store_open */
#define CACHE_KIB "32768"               /* 32 MiB page cache; see store_open */

static const char *const SCHEMA_V1 =
    "CREATE TABLE IF NOT EXISTS tasks ("
    " seq INTEGER PRIMARY KEY,"
    " id BLOB NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " args BLOB,"
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL,"
    " time_limit_ms INTEGER NOT NULL DEFAULT 0,"
    " worker TEXT NOT NULL DEFAULT '',"
    " child_pid INTEGER NOT NULL DEFAULT 0,"
    " submitted_at INTEGER NOT NULL,"
    " started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0,"
    " progress_current INTEGER NOT NULL DEFAULT 0,"
    " progress_total INTEGER NOT NULL DEFAULT 0,"
    " progress_message TEXT NOT NULL DEFAULT '',"
    " result BLOB,"
    " error TEXT NOT NULL DEFAULT '',"
    " lease_deadline INTEGER NOT NULL DEFAULT 0);"
    /* dispatch: oldest queued first */
    "CREATE INDEX IF NOT EXISTS tasks_queued ON tasks(seq) WHERE state = 0;"
    /* retention: oldest finished first */
    "CREATE INDEX IF NOT EXISTS tasks_finished ON tasks(finished_at) WHERE state IN (2, 3);"
    "CREATE INDEX IF NOT EXISTS tasks_running ON tasks(worker) WHERE state = 1;";

/* v2: the count of tasks in each state, one row, written with every commit
 * that changed a count. Start-up reads it instead of counting a table that
 * may hold millions of rows (a full scan took ~2 s at 1 M tasks); the
 * migration counts once. */
static const char *const SCHEMA_V2 =
    "CREATE TABLE IF NOT EXISTS counts ("
    " k INTEGER PRIMARY KEY CHECK (k = 0),"
    " queued INTEGER NOT NULL, running INTEGER NOT NULL,"
    " succeeded INTEGER NOT NULL, failed INTEGER NOT NULL);"
    "INSERT OR REPLACE INTO counts (k, queued, running, succeeded, failed) SELECT 0,"
    " COALESCE(SUM(state = 0), 0), COALESCE(SUM(state = 1), 0),"
    " COALESCE(SUM(state = 2), 0), COALESCE(SUM(state = 3), 0) FROM tasks;";

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INSERT,
    S_GET,
    S_EXISTS,
    S_NEXT_QUEUED,
    S_MARK_RUNNING,
    S_FINISH,
    S_REQUEUE,
    S_PROGRESS,
    S_LOAD_RUNNING,
    S_COUNTS,
    S_SAVE_COUNTS,
    S_PURGE,
    S_COUNT
};

static const char *const SQL[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INSERT] = "INSERT INTO tasks (id, name, args, state, max_attempts, time_limit_ms,"
                 " submitted_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)"
                 " ON CONFLICT(id) DO NOTHING",
    [S_GET] = "SELECT name, state, attempts, max_attempts, worker, child_pid, submitted_at,"
              " started_at, finished_at, progress_current, progress_total, progress_message,"
              " result, error FROM tasks WHERE id = ?1",
    [S_EXISTS] = "SELECT 1 FROM tasks WHERE id = ?1",
    [S_NEXT_QUEUED] = "SELECT id, name, args, time_limit_ms, attempts FROM tasks"
                      " WHERE state = 0 ORDER BY seq LIMIT ?1",
    [S_MARK_RUNNING] = "UPDATE tasks SET state = 1, attempts = attempts + 1, worker = ?3,"
                       " started_at = ?4, lease_deadline = ?5, child_pid = 0"
                       " WHERE id = ?1 AND state = 0 AND attempts = ?2 - 1",
    [S_FINISH] = "UPDATE tasks SET state = ?3, result = ?4, error = ?5, child_pid = ?6,"
                 " finished_at = ?7, lease_deadline = 0"
                 " WHERE id = ?1 AND state = 1 AND attempts = ?2",
    [S_REQUEUE] = "UPDATE tasks SET"
                  " state = CASE WHEN attempts >= max_attempts THEN 3 ELSE 0 END,"
                  " error = CASE WHEN attempts >= max_attempts"
                  "   THEN printf('attempt limit (%d) reached: %s', max_attempts, ?3)"
                  "   ELSE error END,"
                  " finished_at = CASE WHEN attempts >= max_attempts THEN ?4 ELSE 0 END,"
                  " lease_deadline = 0"
                  " WHERE id = ?1 AND state = 1 AND attempts = ?2 RETURNING state",
    [S_PROGRESS] = "UPDATE tasks SET progress_current = ?3, progress_total = ?4,"
                   " progress_message = ?5 WHERE id = ?1 AND state = 1 AND attempts = ?2",
    [S_LOAD_RUNNING] = "SELECT id, attempts, worker FROM tasks WHERE state = 1",
    [S_COUNTS] = "SELECT queued, running, succeeded, failed FROM counts WHERE k = 0",
    [S_SAVE_COUNTS] = "UPDATE counts SET queued = ?1, running = ?2, succeeded = ?3, failed = ?4"
                      " WHERE k = 0",
    [S_PURGE] = "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks"
                " WHERE state IN (2, 3) AND finished_at < ?1 ORDER BY finished_at LIMIT ?2)"
                " RETURNING state",
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    bool in_tx;
    /* Tasks per state, kept by every verb that changes a state (O(1)
     * STATS); counts_at_begin restores them when the transaction rolls
     * back; saved to the counts row by store_commit when changed. */
    uint64_t counts[4], counts_at_begin[4];
};

/* One task moved from state `from` (-1: new) to `to` (-1: deleted). */
static void count_move(store_t *self, int from, int to)
{
    if (from >= 0 && from < 4 && self->counts[from] > 0)
        self->counts[from]--;
    if (to >= 0 && to < 4)
        self->counts[to]++;
}

static taskq_err_t fail(store_t *self, const char *what)
{
    tlog_error("store: %s: %s", what, sqlite3_errmsg(self->db));
    return TASKQ_ESTORE;
}

/* Runs a statement that returns no rows; resets it. */
static taskq_err_t run(store_t *self, int which)
{
    sqlite3_stmt *st = self->st[which];
    int rc = sqlite3_step(st);
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, SQL[which]);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

static taskq_err_t exec(store_t *self, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(self->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        tlog_error("store: %s: %s", sql, msg ? msg : "?");
        sqlite3_free(msg);
        return TASKQ_ESTORE;
    }
    return TASKQ_OK;
}

static taskq_err_t migrate(store_t *self)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fail(self, "user_version");
    int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (version < 0)
        return fail(self, "user_version");
    if (version > SCHEMA_VERSION) {
        tlog_error("store: schema version %d is newer than this broker's (%d)", version,
                   SCHEMA_VERSION);
        return TASKQ_ESTORE;
    }
    if (version == SCHEMA_VERSION)
        return TASKQ_OK;
    if (exec(self, "BEGIN IMMEDIATE") != TASKQ_OK)
        return TASKQ_ESTORE;
    if (version < 1 && exec(self, SCHEMA_V1) != TASKQ_OK)
        goto bad;
    if (version < 2 && exec(self, SCHEMA_V2) != TASKQ_OK)
        goto bad;
    if (exec(self, "PRAGMA user_version = 2") != TASKQ_OK || exec(self, "COMMIT") != TASKQ_OK)
        goto bad;
    return TASKQ_OK;
bad:
    exec(self, "ROLLBACK");
    return TASKQ_ESTORE;
}

/* Start-up: the counts row (one row, not a scan of the tasks). */
static taskq_err_t load_counts(store_t *self)
{
    sqlite3_stmt *st = self->st[S_COUNTS];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        for (int i = 0; i < 4; i++) {
            sqlite3_int64 n = sqlite3_column_int64(st, i);
            self->counts[i] = n > 0 ? (uint64_t)n : 0;
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW) {
        tlog_error("store: the counts row is missing or unreadable");
        return TASKQ_ESTORE;
    }
    memcpy(self->counts_at_begin, self->counts, sizeof self->counts);
    return TASKQ_OK;
}

store_t *store_open(const char *url, store_durability_t durability, taskq_err_t *err)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        url += 7;
    store_t *self = xcalloc(1, sizeof *self);
    /* NULL (the default VFS) unless a test set TASKQ_FAULT_VFS (faultvfs.h) */
    const char *vfs = faultvfs_install();
    int rc = sqlite3_open_v2(url, &self->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             vfs);
    if (rc != SQLITE_OK) {
        tlog_error("store: cannot open %s: %s", url,
                   self->db ? sqlite3_errmsg(self->db) : sqlite3_errstr(rc));
        goto bad;
    }
    sqlite3_busy_timeout(self->db, 5000);
    if (exec(self, "PRAGMA journal_mode = WAL") != TASKQ_OK)
        goto bad;
    if (exec(self, durability == STORE_DURABILITY_NORMAL ? "PRAGMA synchronous = NORMAL"
                                                         : "PRAGMA synchronous = FULL") != TASKQ_OK)
        goto bad;
    if (exec(self, "PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY") != TASKQ_OK)
        goto bad;
    /* WAL_AUTOCHECKPOINT_PAGES: the default (1000 pages, ~4 MiB) checkpoints
     * every ~0.3 s under W1 load, each time in a commit's path (a stall of
     * the turn) and copying the same hot pages (queue head, table tail)
     * again; a larger WAL folds many more commits into one copy. The WAL
     * stays bounded (~32 MiB) and store_close truncates it.
     * CACHE_KIB: the id index is searched at random (DONE, STATUS, WAIT);
     * with a million rows the default 2 MiB cache misses on most lookups. */
    if (exec(self, "PRAGMA wal_autocheckpoint = " WAL_AUTOCHECKPOINT_PAGES
                   "; PRAGMA cache_size = -" CACHE_KIB) != TASKQ_OK)
        goto bad;
    if (migrate(self) != TASKQ_OK)
        goto bad;
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(self->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &self->st[i],
                               NULL) != SQLITE_OK) {
            fail(self, SQL[i]);
            goto bad;
        }
    }
    if (load_counts(self) != TASKQ_OK)
        goto bad;
    if (err)
        *err = TASKQ_OK;
    return self;
bad:
    store_close(&self);
    if (err)
        *err = TASKQ_ESTORE;
    return NULL;
}

void store_close(store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_t *self = *self_p;
    if (self->in_tx)
        store_rollback(self);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(self->st[i]);
    if (self->db) {
        /* Fold the WAL into the main file so a clean stop leaves one file. */
        sqlite3_wal_checkpoint_v2(self->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
        if (sqlite3_close(self->db) != SQLITE_OK)
            tlog_error("store: close: %s", sqlite3_errmsg(self->db));
    }
    free(self);
    *self_p = NULL;
}

/* Ends every read left open (borrowed rows die here). */
static void reset_reads(store_t *self)
{
    sqlite3_reset(self->st[S_GET]);
    sqlite3_reset(self->st[S_NEXT_QUEUED]);
}

taskq_err_t store_begin(store_t *self)
{
    memcpy(self->counts_at_begin, self->counts, sizeof self->counts);
    taskq_err_t err = run(self, S_BEGIN);
    self->in_tx = err == TASKQ_OK;
    return err;
}

taskq_err_t store_commit(store_t *self)
{
    reset_reads(self);
    if (memcmp(self->counts, self->counts_at_begin, sizeof self->counts) != 0) {
        sqlite3_stmt *st = self->st[S_SAVE_COUNTS];
        for (int i = 0; i < 4; i++)
            sqlite3_bind_int64(st, i + 1, (sqlite3_int64)self->counts[i]);
        if (run(self, S_SAVE_COUNTS) != TASKQ_OK)
            return TASKQ_ESTORE; /* the caller rolls back */
    }
    taskq_err_t err = run(self, S_COMMIT);
    if (err == TASKQ_OK)
        self->in_tx = false;
    return err;
}

void store_rollback(store_t *self)
{
    reset_reads(self);
    memcpy(self->counts, self->counts_at_begin, sizeof self->counts);
    if (sqlite3_get_autocommit(self->db)) { /* SQLite already rolled back */
        self->in_tx = false;
        return;
    }
    if (run(self, S_ROLLBACK) == TASKQ_OK)
        self->in_tx = false;
}

static void bind_id(sqlite3_stmt *st, int col, const taskq_id_t *id)
{
    sqlite3_bind_blob(st, col, id->b, sizeof id->b, SQLITE_STATIC);
}

static void bind_str(sqlite3_stmt *st, int col, proto_str_t s)
{
    sqlite3_bind_text(st, col, s.ptr ? s.ptr : "", (int)s.len, SQLITE_STATIC);
}

/* After a CAS that changed nothing: ESTALE if the task exists, else ENOTFOUND. */
static taskq_err_t stale_or_missing(store_t *self, const taskq_id_t *id)
{
    sqlite3_stmt *st = self->st[S_EXISTS];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    taskq_err_t err = rc == SQLITE_ROW    ? TASKQ_ESTALE
                      : rc == SQLITE_DONE ? TASKQ_ENOTFOUND
                                          : fail(self, "exists");
    sqlite3_reset(st);
    return err;
}

taskq_err_t store_insert_task(store_t *self, const proto_task_spec_t *spec,
                              uint32_t max_attempts, int64_t submitted_at, bool *inserted)
{
    sqlite3_stmt *st = self->st[S_INSERT];
    bind_id(st, 1, &spec->id);
    bind_str(st, 2, spec->name);
    if (spec->args.len)
        sqlite3_bind_blob(st, 3, spec->args.ptr, (int)spec->args.len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 3, "\x90", 1, SQLITE_STATIC); /* empty = [] */
    sqlite3_bind_int64(st, 4, max_attempts);
    sqlite3_bind_int64(st, 5, spec->time_limit_ms);
    sqlite3_bind_int64(st, 6, submitted_at);
    taskq_err_t err = run(self, S_INSERT);
    bool added = err == TASKQ_OK && sqlite3_changes(self->db) > 0;
    if (added)
        count_move(self, -1, TASKQ_STATE_QUEUED);
    if (inserted)
        *inserted = added;
    return err;
}

static proto_str_t col_str(sqlite3_stmt *st, int col)
{
    proto_str_t s;
    s.ptr = (const char *)sqlite3_column_text(st, col);
    s.len = (uint32_t)sqlite3_column_bytes(st, col);
    if (!s.ptr) {
        s.ptr = "";
        s.len = 0;
    }
    return s;
}

static proto_bin_t col_bin(sqlite3_stmt *st, int col)
{
    proto_bin_t b;
    b.ptr = sqlite3_column_blob(st, col);
    b.len = (uint32_t)sqlite3_column_bytes(st, col);
    return b;
}

taskq_err_t store_get_task(store_t *self, const taskq_id_t *id, proto_task_rec_t *rec)
{
    sqlite3_stmt *st = self->st[S_GET];
    sqlite3_reset(st); /* ends the previous record's borrow */
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return TASKQ_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(self, "get task");
    }
    memset(rec, 0, sizeof *rec);
    rec->id = *id;
    rec->name = col_str(st, 0);
    rec->state = sqlite3_column_int(st, 1);
    rec->attempts = (uint32_t)sqlite3_column_int64(st, 2);
    rec->max_attempts = (uint32_t)sqlite3_column_int64(st, 3);
    rec->worker = col_str(st, 4);
    rec->child_pid = sqlite3_column_int(st, 5);
    rec->submitted_at = sqlite3_column_int64(st, 6);
    rec->started_at = sqlite3_column_int64(st, 7);
    rec->finished_at = sqlite3_column_int64(st, 8);
    rec->progress_current = (uint64_t)sqlite3_column_int64(st, 9);
    rec->progress_total = (uint64_t)sqlite3_column_int64(st, 10);
    rec->progress_message = col_str(st, 11);
    rec->has_result = rec->state == TASKQ_STATE_SUCCEEDED;
    rec->result = col_bin(st, 12);
    rec->error = col_str(st, 13);
    return TASKQ_OK;
}

taskq_err_t store_next_queued(store_t *self, size_t limit, store_queued_fn fn, void *arg)
{
    sqlite3_stmt *st = self->st[S_NEXT_QUEUED];
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_queued_t row;
        const void *idb = sqlite3_column_blob(st, 0);
        if (sqlite3_column_bytes(st, 0) != (int)sizeof row.id.b || !idb)
            continue; /* cannot happen: ids are validated on insert */
        memcpy(row.id.b, idb, sizeof row.id.b);
        row.name = col_str(st, 1);
        row.args = col_bin(st, 2);
        row.time_limit_ms = sqlite3_column_int64(st, 3);
        row.attempts = (uint32_t)sqlite3_column_int64(st, 4);
        if (!fn(&row, arg)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "next queued");
    sqlite3_reset(st);
    return err;
}

taskq_err_t store_mark_running(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               const char *worker, int64_t started_at, int64_t lease_deadline_at)
{
    sqlite3_stmt *st = self->st[S_MARK_RUNNING];
    bind_id(st, 1, id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, worker, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, started_at);
    sqlite3_bind_int64(st, 5, lease_deadline_at);
    taskq_err_t err = run(self, S_MARK_RUNNING);
    if (err == TASKQ_OK && sqlite3_changes(self->db) == 0)
        err = stale_or_missing(self, id);
    else if (err == TASKQ_OK)
        count_move(self, TASKQ_STATE_QUEUED, TASKQ_STATE_RUNNING);
    return err;
}

taskq_err_t store_finish(store_t *self, const taskq_id_t *id, uint32_t attempt, bool ok,
                         proto_bin_t result, proto_str_t error, int32_t child_pid,
                         int64_t finished_at)
{
    sqlite3_stmt *st = self->st[S_FINISH];
    bind_id(st, 1, id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int(st, 3, ok ? TASKQ_STATE_SUCCEEDED : TASKQ_STATE_FAILED);
    if (ok && result.len)
        sqlite3_bind_blob(st, 4, result.ptr, (int)result.len, SQLITE_STATIC);
    else if (ok)
        sqlite3_bind_blob(st, 4, "\xc0", 1, SQLITE_STATIC); /* no result = nil */
    else
        sqlite3_bind_null(st, 4);
    bind_str(st, 5, ok ? proto_str("") : error);
    sqlite3_bind_int(st, 6, child_pid);
    sqlite3_bind_int64(st, 7, finished_at);
    taskq_err_t err = run(self, S_FINISH);
    if (err == TASKQ_OK && sqlite3_changes(self->db) == 0)
        err = stale_or_missing(self, id);
    else if (err == TASKQ_OK)
        count_move(self, TASKQ_STATE_RUNNING,
                   ok ? TASKQ_STATE_SUCCEEDED : TASKQ_STATE_FAILED);
    return err;
}

taskq_err_t store_requeue(store_t *self, const taskq_id_t *id, uint32_t attempt,
                          const char *reason, int64_t now_at, int *state_out)
{
    sqlite3_stmt *st = self->st[S_REQUEUE];
    bind_id(st, 1, id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_at);
    int rc = sqlite3_step(st);
    taskq_err_t err;
    if (rc == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0);
        if (state_out)
            *state_out = state;
        count_move(self, TASKQ_STATE_RUNNING, state);
        rc = sqlite3_step(st);
        err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "requeue");
    } else if (rc == SQLITE_DONE) {
        err = TASKQ_ESTALE; /* resolved below */
    } else {
        err = fail(self, "requeue");
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (err == TASKQ_ESTALE)
        err = stale_or_missing(self, id);
    return err;
}

taskq_err_t store_set_progress(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               uint64_t current, uint64_t total, proto_str_t message)
{
    sqlite3_stmt *st = self->st[S_PROGRESS];
    bind_id(st, 1, id);
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)current);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)total);
    bind_str(st, 5, message);
    taskq_err_t err = run(self, S_PROGRESS);
    if (err == TASKQ_OK && sqlite3_changes(self->db) == 0)
        err = stale_or_missing(self, id);
    return err;
}

taskq_err_t store_load_running(store_t *self, store_running_fn fn, void *arg)
{
    sqlite3_stmt *st = self->st[S_LOAD_RUNNING];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        taskq_id_t id;
        const void *idb = sqlite3_column_blob(st, 0);
        if (sqlite3_column_bytes(st, 0) != (int)sizeof id.b || !idb)
            continue;
        memcpy(id.b, idb, sizeof id.b);
        const char *worker = (const char *)sqlite3_column_text(st, 2);
        fn(&id, (uint32_t)sqlite3_column_int64(st, 1), worker ? worker : "", arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "load running");
    sqlite3_reset(st);
    return err;
}

taskq_err_t store_counts(store_t *self, uint64_t counts[4], uint64_t *total)
{
    *total = 0;
    for (int i = 0; i < 4; i++) {
        counts[i] = self->counts[i];
        *total += counts[i];
    }
    return TASKQ_OK;
}

taskq_err_t store_purge_finished(store_t *self, int64_t before_at, size_t limit, size_t *purged)
{
    sqlite3_stmt *st = self->st[S_PURGE];
    sqlite3_bind_int64(st, 1, before_at);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    size_t n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        count_move(self, sqlite3_column_int(st, 0), -1);
        n++;
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "purge");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (purged)
        *purged = err == TASKQ_OK ? n : 0;
    return err;
}
