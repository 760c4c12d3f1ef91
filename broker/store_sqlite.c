/* store_sqlite.c - the SQLite store; see store.h. The only file that
 * includes sqlite3.h. One connection, every statement prepared once at open.
 *
 * Schema version (PRAGMA user_version). Migration procedure: bump
 * SCHEMA_VERSION, add a step `if (version < N) { ALTER/CREATE ...; }` to
 * migrate() that runs inside one transaction and sets user_version = N, and
 * never edit an older step; a database newer than this binary is refused. */
#include "store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultvfs.h"
#include "tlog.h"
#include "tmem.h"

#define SCHEMA_VERSION 5
#define STR_(x) #x
#define STR(x) STR_(x)
#define WAL_AUTOCHECKPOINT_PAGES "8192" /* see store_open */
#define CACHE_KIB "32768"               /* 32 MiB page cache; see store_open */
#define SCAN_CHUNK 256                  /* rows per pass of the timer verbs */

/* State sets of the partial indexes, written as comparisons: SQLite
 * evaluates a constant IN list of more than two values through an
 * ephemeral b-tree opened by every statement that writes `state` (insert,
 * dispatch, end of attempt: it cost ~5x on the dispatch path). A query
 * uses a partial index only if its WHERE repeats the index's expression,
 * so index and queries share these macros. */
#define STATE_EXPIRABLE "(state = 0 OR state BETWEEN 4 AND 5)" /* queued, scheduled, retrying */
#define STATE_TERMINAL "(state BETWEEN 2 AND 3 OR state BETWEEN 6 AND 7)" /* see is_terminal */
#define STATE_DUE "state IN (4, 5)" /* scheduled, retrying: two values, no ephemeral table */

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

/* v3 (issue 6, dispatch policy): queues, priorities, ETAs, expiry, retry
 * policy per task, attempts history, limits, schedules, counts per
 * (queue, state).
 * - Existing rows go to queue 'default', priority 5. max_attempts keeps
 *   the value a v2 broker resolved (v3 stores it "as submitted", 0 = not
 *   given; a resolved value is a valid submitted one). failures: a v2
 *   broker spent budget on every dispatch (attempts), so a queued task has
 *   failures = attempts and a running one attempts - 1: the remaining
 *   budget is unchanged. Terminal rows keep failures 0.
 * - tasks_queued (FIFO over all tasks) is replaced by tasks_ready (per
 *   queue, priority desc, FIFO) and tasks_finished by tasks_terminal (the
 *   four terminal states).
 * - attempts rows die with their task (trigger), whoever deletes it.
 * - qcounts is counted once here; start-up reads it, commits keep it. */
static const char *const SCHEMA_V3 =
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

/* v4 (issue 7, task lifecycle): workflows, revoke, unique keys, TTLs.
 * - tasks gain their workflow links (parent_id, group_id + group_index,
 *   is_callback, immutable, deps_left: a `pending` (8) task waits for
 *   deps_left dependencies), unique key, result TTL, purge_at (set by
 *   every transition to a terminal state) and re-run links.
 * - tasks_terminal (finished_at) becomes tasks_purge (state, purge_at),
 *   still one index over the terminal rows (STATE_TERMINAL): TTL purge
 *   merges the four states' ranges in purge_at order (one statement),
 *   purge by state and the failed listing seek one state. A second
 *   terminal index would cost every end of a task another b-tree insert.
 * - tasks_children: workflow children by parent; tasks_group: members of a
 *   group in member order. Both are partial on "column IS NOT NULL", never
 *   on state: an UPDATE maintains (opens) only the indexes whose columns or
 *   WHERE it changes, and the dispatch path changes state, not these
 *   columns (a `WHERE state = 8` index cost every dispatch and every end
 *   ~2% more). An insert pays each index it has: ~5% for these two.
 * - groups: O(1) counters per group; uniques: one row per unique key;
 *   meta: persistent counters (records purged, purge horizon).
 * - terminal rows of an older database get purge_at from the default TTLs
 *   (TQ_DEFAULT_RETENTION_MS, TQ_DEFAULT_FAILED_TTL_MS; bound in migrate():
 *   --retention of the running broker is not known here). */
static const char *const SCHEMA_V4 =
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
    /* the broker's notes on a task (workflow, unique key): handed back at
     * dispatch, so plain tasks skip the lifecycle work when they end */
    "ALTER TABLE tasks ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX IF EXISTS tasks_terminal;"
    /* retention (earliest purge_at first), purge by state, failed listing */
    "CREATE INDEX tasks_purge ON tasks(state, purge_at) WHERE " STATE_TERMINAL ";"
    /* workflow: the children of a parent (pending ones: state = 8) */
    "CREATE INDEX tasks_children ON tasks(parent_id) WHERE parent_id IS NOT NULL;"
    /* workflow: members (and callback) of a group, member order */
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
/* v5 (issue 4, performance): the attempt a task is running, or the one
 * that ended it successfully, lives in the tasks row only (its worker,
 * child_pid, started_at, finished_at already are there); `attempts` holds
 * the others (failed, retried, requeued, rate limited, lost, revoked).
 * A dispatch then writes no attempts row and a first-time success none
 * either: two statements and a b-tree (a WAL page per commit) less.
 * - live_attempt: the attempt whose row is synthesised from the task
 *   (store_attempts) instead of stored; 0 = none. Set by mark_running,
 *   kept by an end that writes no row (plain success), 0 after any end
 *   or revoke that writes one. Invariant: live_attempt is 0 or equal to
 *   attempts, and no attempts row exists for (seq, live_attempt).
 * - Rows of v4: live_attempt = 0, so every attempt they show keeps its
 *   stored row (a v4 running attempt's 'running' row is completed at its
 *   end or revoke as v4 did; a task that succeeded before v3 has no row
 *   and gets none).
 * - The purge trigger skips the attempts lookup when a task cannot have
 *   rows (never ran, or its only attempt is the live one).
 * Indexes of tasks as of v5 and the statements that use them (EXPLAIN
 * QUERY PLAN); none is redundant: each is the only one its queries can
 * seek, and dropping it would make them scan the table:
 *   id UNIQUE (autoindex)  every lookup by id (S_FIND, S_GET, S_POLICY, ...)
 *   tasks_ready            S_READY, S_OLDEST (dispatch: O(log n) per row)
 *   tasks_ready_name       S_NAME_NEXT, S_READY_NAME (dispatch with names
 *                          excluded: O(L log n), store.h); tasks_ready
 *                          cannot give a queue's distinct names
 *   tasks_running          S_LOAD_RUNNING (start-up: O(running), not O(n))
 *   tasks_due              S_DUE_SCAN, S_NEXT_DUE
 *   tasks_expiry           S_EXPIRY_SCAN, S_NEXT_EXPIRY
 *   tasks_purge            S_PURGE_DUE, S_PURGE_STATE, the failed listing
 *                          (the v3 tasks_terminal on finished_at is gone
 *                          since v4: one terminal index)
 *   tasks_children         S_CHILDREN; tasks_group: S_GROUP_* */
static const char *const SCHEMA_V5 =
    "ALTER TABLE tasks ADD COLUMN live_attempt INTEGER NOT NULL DEFAULT 0;"
    "DROP TRIGGER IF EXISTS tasks_delete_attempts;"
    "CREATE TRIGGER tasks_delete_attempts AFTER DELETE ON tasks"
    " WHEN old.attempts > (old.live_attempt = old.attempts)"
    " BEGIN DELETE FROM attempts WHERE task_seq = old.seq; END;";

/* v4, data: purge_at of the terminal rows (?1 result TTL, ?2 failed TTL). */
static const char *const SCHEMA_V4_PURGE_AT =
    "UPDATE tasks SET purge_at = finished_at + CASE WHEN state = 3 THEN ?2 ELSE ?1 END"
    " WHERE " STATE_TERMINAL;

enum {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INSERT,
    S_INSERT_FULL,
    S_GET,
    S_GET_SEQ,
    S_POLICY,
    S_TASK_SEQ,
    S_FIND,
    S_STATE,
    S_READY,
    S_NAME_NEXT,
    S_READY_NAME,
    S_READY_SEQ,
    S_MARK_RUNNING,
    S_END,
    S_END_LIVE,
    S_ATTEMPT_END,
    S_EXPIRE,
    S_PROGRESS,
    S_LOAD_RUNNING,
    S_DUE_SCAN,
    S_PROMOTE,
    S_NEXT_DUE,
    S_EXPIRY_SCAN,
    S_EXPIRE_SEQ,
    S_NEXT_EXPIRY,
    S_ATTEMPTS,
    S_ATTEMPT_TASK,
    S_OLDEST,
    S_PURGE_STATE,
    S_PURGE_DUE,
    S_GROUP_GC,
    S_UNIQUE_GC,
    S_UNIQUE_ORPHAN,
    S_META_LOAD,
    S_META_SAVE,
    S_GROUP_INSERT,
    S_GROUP_GET,
    S_GROUP_END,
    S_GROUP_MEMBERS,
    S_GROUP_RESULTS,
    S_CHILDREN,
    S_PENDING,
    S_FIND_PENDING,
    S_DEP_DONE,
    S_REVOKE,
    S_ATTEMPT_REVOKE,
    S_FAIL_UNRUN,
    S_RERUN_FIND,
    S_RERUN_INSERT,
    S_RERUN_LINK,
    S_UNIQUE_GET,
    S_UNIQUE_PUT,
    S_UNIQUE_RELEASE,
    S_UNIQUE_ANY,
    S_LOAD_QCOUNTS,
    S_SAVE_QCOUNT,
    S_QUEUE_NAMES,
    S_QUEUE_ENSURE,
    S_QUEUE_SET,
    S_QUEUE_LIST,
    S_LIMIT_PUT,
    S_LIMIT_RM,
    S_LIMIT_LIST,
    S_LIMIT_BUCKET,
    S_SCHED_INSERT,
    S_SCHED_REPLACE,
    S_SCHED_RM,
    S_SCHED_PAUSE,
    S_SCHED_LIST,
    S_SCHED_ADVANCE,
    S_COUNT
};

#define SCHED_COLS                                                                                 \
    "name, cron, task, args, queue, priority, tz, max_attempts, overlap, catchup, paused,"         \
    " next_at, last_fire_at, last_task_id, fires, skipped, created_at"
#define SCHED_VALUES "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17"
#define READY_COLS "id, name, args, time_limit_ms, attempts, priority, expires_at, flags, seq"
/* a task record (rec_fill reads them in this order) */
#define REC_COLS                                                                                   \
    "name, state, attempts, max_attempts, worker, child_pid, submitted_at, started_at,"            \
    " finished_at, progress_current, progress_total, progress_message, result, error, queue,"      \
    " priority, failures, code, due_at, expires_at, schedule, group_id, parent_id, rerun_of,"      \
    " rerun_by, unique_key"
#define REC_NCOLS 26
/* what a purge learns of each deleted row (purge_rows) */
#define PURGED_COLS " RETURNING id, state, queue, group_id, unique_key"
/* one terminal state's due rows, in tasks_purge order (S_PURGE_DUE) */
#define PURGE_DUE_ARM(S)                                                                           \
    "SELECT seq, purge_at FROM tasks WHERE " STATE_TERMINAL " AND purge_at <= ?1 AND state = " S
/* purge_at of a task becoming terminal in state S at time T, with ?R the
 * store's result TTL and ?F its failed TTL (the task's own result TTL wins) */
#define PURGE_AT(S, T, R, F)                                                                       \
    "CASE WHEN " S " = 3 THEN " T " + " F " ELSE " T                                               \
    " + CASE WHEN result_ttl_ms > 0 THEN result_ttl_ms ELSE " R " END END"
#define PURGE_AT_END PURGE_AT("?3", "?9", "?11", "?12")    /* S_END */
#define PURGE_AT_EXPIRE PURGE_AT("7", "?2", "?3", "0")     /* S_EXPIRE */
#define PURGE_AT_EXPIRE_SEQ PURGE_AT("7", "?3", "?4", "0") /* S_EXPIRE_SEQ */
#define PURGE_AT_REVOKE PURGE_AT("6", "?4", "?5", "0")     /* S_REVOKE */
/* the end of an attempt (S_END, S_END_LIVE): ?3 to_state, ?4 failure,
 * ?5 code, ?6 result, ?7 error, ?8 child_pid, ?9 now, ?10 due_at, ?11 / ?12
 * TTLs, ?13 live_attempt after (see SCHEMA_V5) */
#define END_SET                                                                                    \
    "UPDATE tasks SET state = ?3, failures = failures + ?4,"                                       \
    " code = CASE WHEN ?5 <> '' THEN ?5 ELSE code END,"                                            \
    " result = CASE WHEN ?3 = 2 THEN ?6 ELSE result END,"                                          \
    " error = CASE WHEN ?3 = 3 THEN ?7 ELSE error END,"                                            \
    " child_pid = ?8,"                                                                             \
    " finished_at = CASE WHEN ?3 = 2 OR ?3 = 3 OR ?3 = 6 THEN ?9 ELSE 0 END,"                      \
    " purge_at = CASE WHEN ?3 = 2 OR ?3 = 3 OR ?3 = 6 THEN " PURGE_AT_END " ELSE 0 END,"           \
    " due_at = CASE WHEN ?3 = 5 THEN ?10 ELSE 0 END,"                                              \
    " lease_deadline = 0, live_attempt = ?13"
#define PURGE_DUE_23 PURGE_DUE_ARM("2") " UNION ALL " PURGE_DUE_ARM("3")
#define PURGE_DUE_67 PURGE_DUE_ARM("6") " UNION ALL " PURGE_DUE_ARM("7")

static const char *const SQL[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INSERT] = "INSERT INTO tasks (id, name, args, state, max_attempts, time_limit_ms,"
                 " submitted_at, queue, priority, due_at, expires_at, backoff_base_ms,"
                 " backoff_factor, backoff_max_ms, jitter, retry_on, no_retry_on, schedule)"
                 " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                 " ?16, ?17, ?18) ON CONFLICT(id) DO NOTHING",
    /* S_INSERT plus the lifecycle columns (issue 7): the plain insert stays
     * as it was for tasks that use none of them */
    [S_INSERT_FULL] = "INSERT INTO tasks (id, name, args, state, max_attempts, time_limit_ms,"
                      " submitted_at, queue, priority, due_at, expires_at, backoff_base_ms,"
                      " backoff_factor, backoff_max_ms, jitter, retry_on, no_retry_on, schedule,"
                      " parent_id, group_id, group_index, is_callback, immutable, deps_left,"
                      " unique_key, unique_until, result_ttl_ms, rerun_of, flags)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                      " ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
                      " ON CONFLICT(id) DO NOTHING",
    [S_GET] = "SELECT " REC_COLS " FROM tasks WHERE id = ?1",
    /* by a recent end's seq (recent_t): the rowid, no index seek */
    [S_GET_SEQ] = "SELECT " REC_COLS " FROM tasks WHERE seq = ?1 AND id = ?2",
    [S_POLICY] = "SELECT name, queue, state, attempts, failures, max_attempts, backoff_base_ms,"
                 " backoff_factor, backoff_max_ms, jitter, retry_on, no_retry_on"
                 " FROM tasks WHERE id = ?1",
    [S_TASK_SEQ] = "SELECT seq FROM tasks WHERE id = ?1",
    /* the CAS verbs look the row up, then update it by seq: an UPDATE ...
     * RETURNING materialises its rows in an ephemeral table (~2x slower) */
    [S_FIND] = "SELECT seq, queue, state, attempts, worker, started_at, live_attempt FROM tasks"
               " WHERE id = ?1",
    [S_STATE] = "SELECT state FROM tasks WHERE id = ?1",
    [S_READY] = "SELECT " READY_COLS " FROM tasks WHERE state = 0 AND queue = ?1"
                " ORDER BY priority DESC, seq LIMIT ?2",
    [S_NAME_NEXT] = "SELECT name FROM tasks WHERE state = 0 AND queue = ?1 AND name > ?2"
                    " ORDER BY name LIMIT 1",
    [S_READY_NAME] = "SELECT priority, seq FROM tasks WHERE state = 0 AND queue = ?1"
                     " AND name = ?2 ORDER BY priority DESC, seq LIMIT ?3",
    [S_READY_SEQ] = "SELECT " READY_COLS " FROM tasks WHERE seq = ?1 AND state = 0",
    /* by seq (from S_FIND, or a hint: hence the id check) */
    [S_MARK_RUNNING] = "UPDATE tasks SET state = 1, attempts = attempts + 1, worker = ?3,"
                       " started_at = ?4, lease_deadline = ?5, child_pid = 0, live_attempt = ?2"
                       " WHERE seq = ?1 AND state = 0 AND attempts = ?2 - 1 AND id = ?6",
    [S_END] = END_SET " WHERE seq = ?1 AND state = 1 AND attempts = ?2",
    /* S_END for a plain success of the live attempt, by a hint's seq */
    [S_END_LIVE] = END_SET " WHERE seq = ?1 AND state = 1 AND attempts = ?2"
                   " AND live_attempt = ?2 AND id = ?14",
    [S_ATTEMPT_END] = "INSERT INTO attempts (task_seq, attempt, worker, child_pid, started_at,"
                      " finished_at, state, code, message)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                      " ON CONFLICT(task_seq, attempt) DO UPDATE SET"
                      " child_pid = excluded.child_pid, finished_at = excluded.finished_at,"
                      " state = excluded.state, code = excluded.code,"
                      " message = excluded.message",
    [S_EXPIRE] = "UPDATE tasks SET state = 7, finished_at = ?2, due_at = 0, lease_deadline = 0,"
                 " purge_at = " PURGE_AT_EXPIRE " WHERE seq = ?1 AND state = 0",
    [S_PROGRESS] = "UPDATE tasks SET progress_current = ?3, progress_total = ?4,"
                   " progress_message = ?5 WHERE id = ?1 AND state = 1 AND attempts = ?2",
    [S_LOAD_RUNNING] = "SELECT id, attempts, worker, name, queue FROM tasks WHERE state = 1",
    [S_DUE_SCAN] = "SELECT seq, id, state, queue FROM tasks"
                   " WHERE state IN (4, 5) AND due_at <= ?1 ORDER BY due_at, seq LIMIT ?2",
    [S_PROMOTE] = "UPDATE tasks SET state = 0, due_at = 0 WHERE seq = ?1 AND state = ?2",
    [S_NEXT_DUE] = "SELECT due_at FROM tasks WHERE state IN (4, 5) ORDER BY due_at LIMIT 1",
    [S_EXPIRY_SCAN] = "SELECT seq, id, state, queue FROM tasks"
                      " WHERE " STATE_EXPIRABLE " AND expires_at > 0 AND expires_at <= ?1"
                      " ORDER BY expires_at, seq LIMIT ?2",
    [S_EXPIRE_SEQ] = "UPDATE tasks SET state = 7, finished_at = ?3, due_at = 0,"
                     " purge_at = " PURGE_AT_EXPIRE_SEQ " WHERE seq = ?1 AND state = ?2",
    [S_NEXT_EXPIRY] = "SELECT expires_at FROM tasks WHERE " STATE_EXPIRABLE
                      " AND expires_at > 0 ORDER BY expires_at LIMIT 1",
    [S_ATTEMPTS] = "SELECT attempt, worker, child_pid, started_at, finished_at, state, code,"
                   " message FROM attempts WHERE task_seq = ?1 ORDER BY attempt",
    /* the task row's part of its history (v5: the live attempt) */
    [S_ATTEMPT_TASK] = "SELECT seq, state, attempts, live_attempt, worker, child_pid, started_at,"
                       " finished_at FROM tasks WHERE id = ?1",
    [S_OLDEST] = "SELECT seq, submitted_at FROM tasks WHERE state = 0 AND queue = ?1"
                 " AND priority = ?2 ORDER BY seq LIMIT 1",
    /* in purge_at order: the rows finished earliest come first unless
     * their TTLs differ */
    [S_PURGE_STATE] = "DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks"
                      " WHERE " STATE_TERMINAL " AND state = ?1 AND finished_at < ?2"
                      " ORDER BY purge_at LIMIT ?3)" PURGED_COLS,
    /* the four terminal ranges of tasks_purge merged (co-routines, no sort) */
    [S_PURGE_DUE] = "DELETE FROM tasks WHERE seq IN (SELECT seq FROM (" PURGE_DUE_23
                    " UNION ALL " PURGE_DUE_67 " ORDER BY purge_at, seq LIMIT ?2))" PURGED_COLS,
    [S_GROUP_GC] = "DELETE FROM groups WHERE id = ?1"
                   " AND NOT EXISTS (SELECT 1 FROM tasks WHERE group_id = ?1)",
    /* a purged holder: its key goes once any --unique-for hold is over
     * (?3: a time known to be past), else it is marked released */
    [S_UNIQUE_GC] = "DELETE FROM uniques WHERE key = ?1 AND holder = ?2 AND hold_until <= ?3",
    [S_UNIQUE_ORPHAN] = "UPDATE uniques SET released = 1 WHERE key = ?1 AND holder = ?2",
    [S_META_LOAD] = "SELECT k, v FROM meta",
    [S_META_SAVE] = "INSERT INTO meta (k, v) VALUES (?1, ?2) ON CONFLICT(k) DO UPDATE SET"
                    " v = excluded.v",
    [S_GROUP_INSERT] = "INSERT INTO groups (id, total, succeeded, failed, callback, on_fail)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO NOTHING",
    [S_GROUP_GET] = "SELECT total, succeeded, failed, callback, on_fail FROM groups WHERE id = ?1",
    [S_GROUP_END] = "UPDATE groups SET succeeded = succeeded + ?2, failed = failed + ?3"
                    " WHERE id = ?1 AND succeeded + failed < total",
    [S_GROUP_MEMBERS] = "SELECT group_index, id FROM tasks WHERE group_id = ?1 AND is_callback = 0"
                        " ORDER BY group_index",
    [S_GROUP_RESULTS] = "SELECT group_index, id, state, result, error, code FROM tasks"
                        " WHERE group_id = ?1 AND is_callback = 0 ORDER BY group_index",
    [S_CHILDREN] = "SELECT id FROM tasks WHERE parent_id = ?1 AND state = 8",
    [S_PENDING] = "SELECT state, args, immutable, is_callback, group_id, deps_left FROM tasks"
                  " WHERE id = ?1",
    [S_FIND_PENDING] = "SELECT seq, queue, state, deps_left FROM tasks WHERE id = ?1",
    [S_DEP_DONE] = "UPDATE tasks SET deps_left = ?2, state = ?3,"
                   " args = CASE WHEN ?4 IS NOT NULL THEN ?4 ELSE args END"
                   " WHERE seq = ?1 AND state = 8",
    [S_REVOKE] =
        "UPDATE tasks SET state = 6, error = ?3, finished_at = ?4, due_at = 0,"
        " lease_deadline = 0, live_attempt = 0, purge_at = " PURGE_AT_REVOKE
        " WHERE seq = ?1 AND state = ?2",
    /* a running attempt started before v5 (it has its 'running' row) */
    [S_ATTEMPT_REVOKE] = "UPDATE attempts SET state = 'revoked', finished_at = ?3, message = ?4"
                         " WHERE task_seq = ?1 AND attempt = ?2",
    [S_FAIL_UNRUN] = "UPDATE tasks SET state = 3, code = ?3, error = ?4, finished_at = ?5,"
                     " due_at = 0, purge_at = ?5 + ?6 WHERE seq = ?1 AND state = ?2",
    [S_RERUN_FIND] = "SELECT seq, state, rerun_by IS NOT NULL, queue FROM tasks WHERE id = ?1",
    [S_RERUN_INSERT] = "INSERT INTO tasks (id, name, args, state, max_attempts, time_limit_ms,"
                       " submitted_at, queue, priority, backoff_base_ms, backoff_factor,"
                       " backoff_max_ms, jitter, retry_on, no_retry_on, result_ttl_ms, rerun_of)"
                       " SELECT ?2, name, args, 0, max_attempts, time_limit_ms, ?3, queue,"
                       " priority, backoff_base_ms, backoff_factor, backoff_max_ms, jitter,"
                       " retry_on, no_retry_on, result_ttl_ms, id FROM tasks WHERE seq = ?1"
                       " ON CONFLICT(id) DO NOTHING",
    [S_RERUN_LINK] = "UPDATE tasks SET rerun_by = ?2 WHERE seq = ?1 AND rerun_by IS NULL",
    [S_UNIQUE_GET] = "SELECT holder, released, hold_until FROM uniques WHERE key = ?1",
    [S_UNIQUE_PUT] = "INSERT INTO uniques (key, holder, released, hold_until)"
                     " VALUES (?1, ?2, 0, ?3) ON CONFLICT(key) DO UPDATE SET"
                     " holder = excluded.holder, released = 0, hold_until = excluded.hold_until",
    /* ?2: -1 or 0 (the holder ended: whatever its until) release; 1 (it
     * started) only a key held until start */
    [S_UNIQUE_RELEASE] = "UPDATE uniques SET released = 1 WHERE holder = ?1 AND released = 0"
                         " AND (?2 < 1 OR EXISTS (SELECT 1 FROM tasks WHERE id = ?1"
                         " AND unique_until = 1))",
    [S_UNIQUE_ANY] = "SELECT 1 FROM uniques LIMIT 1",
    [S_LOAD_QCOUNTS] = "SELECT queue, state, n FROM qcounts",
    [S_SAVE_QCOUNT] = "INSERT INTO qcounts (queue, state, n) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT(queue, state) DO UPDATE SET n = excluded.n",
    [S_QUEUE_NAMES] = "SELECT name FROM queues",
    [S_QUEUE_ENSURE] = "INSERT INTO queues (name) VALUES (?1) ON CONFLICT(name) DO NOTHING",
    [S_QUEUE_SET] = "INSERT INTO queues (name, paused, max_pending) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT(name) DO UPDATE SET paused = excluded.paused,"
                    " max_pending = excluded.max_pending",
    [S_QUEUE_LIST] = "SELECT name, paused, max_pending FROM queues ORDER BY name",
    [S_LIMIT_PUT] = "INSERT INTO limits (key, rate, burst, max_running, tokens, tokens_at,"
                    " paused_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    " ON CONFLICT(key) DO UPDATE SET rate = excluded.rate,"
                    " burst = excluded.burst, max_running = excluded.max_running,"
                    " tokens = excluded.tokens, tokens_at = excluded.tokens_at,"
                    " paused_until = excluded.paused_until",
    [S_LIMIT_RM] = "DELETE FROM limits WHERE key = ?1",
    [S_LIMIT_LIST] = "SELECT key, rate, burst, max_running, tokens, tokens_at, paused_until"
                     " FROM limits ORDER BY key",
    [S_LIMIT_BUCKET] = "UPDATE limits SET tokens = ?2, tokens_at = ?3, paused_until = ?4"
                       " WHERE key = ?1",
    [S_SCHED_INSERT] = "INSERT INTO schedules (" SCHED_COLS ") VALUES (" SCHED_VALUES ")"
                       " ON CONFLICT(name) DO NOTHING",
    [S_SCHED_REPLACE] =
        "INSERT OR REPLACE INTO schedules (" SCHED_COLS ") VALUES (" SCHED_VALUES ")",
    [S_SCHED_RM] = "DELETE FROM schedules WHERE name = ?1",
    [S_SCHED_PAUSE] = "UPDATE schedules SET paused = ?2 WHERE name = ?1",
    [S_SCHED_LIST] = "SELECT " SCHED_COLS " FROM schedules ORDER BY name",
    [S_SCHED_ADVANCE] = "UPDATE schedules SET next_at = ?2,"
                        " last_fire_at = CASE WHEN ?3 > 0 THEN ?3 ELSE last_fire_at END,"
                        " last_task_id = CASE WHEN ?4 IS NOT NULL THEN ?4 ELSE last_task_id END,"
                        " fires = fires + ?5, skipped = skipped + ?6 WHERE name = ?1",
};

/* A queue as the store keeps it in memory: its task counts by state
 * (O(1) STATS / queue listings) and whether its queues row exists. */
typedef struct {
    char *name;
    size_t len;
    uint64_t n[TASKQ_NSTATES];
    /* As committed, valid while dirty (copied at the first change of the
     * transaction): store_rollback restores them, store_commit writes the
     * cells that differ. */
    uint64_t base[TASKQ_NSTATES];
    bool has_row, base_has_row;
    bool dirty;
} qent_t;

/* (priority, seq) of a ready task: the exclusion path merges by these. */
typedef struct {
    int32_t priority;
    int64_t seq;
} rkey_t;

/* Where a task was last seen (id -> seq, queue entry): handed out by
 * store_next_ready, kept by store_mark_running, dropped at the end of the
 * attempt. Lets mark_running and a plain success skip the S_FIND lookup
 * by id (an index seek and a row read per verb). Only a hint: the
 * statement that uses one checks the id with the seq (a purged task's seq
 * may be reused) and the usual compare-and-set; if it changes nothing the
 * verb takes its ordinary path. A task's seq and queue never change. */
typedef struct {
    taskq_id_t id;
    sqlite3_int64 seq; /* 0 = empty slot */
    size_t q;
} hint_t;
#define HINTS_MAX 65536 /* more (hints never consumed): start again */

/* The seqs of the last attempts ended (direct-mapped by id): the RESULT
 * read that follows an end (store_get_task) goes by rowid. Only a hint, as
 * hint_t: the statement checks the id too. */
typedef struct {
    taskq_id_t id;
    sqlite3_int64 seq; /* 0 = empty */
} recent_t;
#define RECENT_CAP 4096 /* a power of two */

/* A row a timer verb changes (collected, then updated). */
typedef struct {
    int64_t seq;
    taskq_id_t id;
    int state;
    size_t q;
} trow_t;

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    bool in_tx;
    /* counts over all queues, and as of store_begin */
    uint64_t all[TASKQ_NSTATES], all_base[TASKQ_NSTATES];
    /* queues: entries, open-addressing index (entry + 1, 0 = empty) */
    qent_t *q;
    size_t nq, qcap;
    uint32_t *qidx;
    size_t qidx_cap; /* power of two */
    /* queues changed in this transaction */
    size_t *dirty;
    size_t ndirty, dirty_cap;
    /* reusable buffers (no malloc per row) */
    rkey_t *keys;
    size_t keys_cap;
    trow_t *trows;
    char *namebuf;
    size_t namebuf_cap;
    char worker[TQ_NODE_MAX + 1];
    /* lifecycle (issue 7): TTLs applied at terminal transitions */
    int64_t result_ttl_ms, failed_ttl_ms;
    /* records ever purged and the purge horizon (ms), as of the current
     * transaction; *_base: as committed (rollback restores, commit saves
     * what differs) */
    uint64_t purged, purged_base;
    int64_t horizon_ms, horizon_base;
    /* false: the uniques table is empty (store_unique_release has nothing
     * to do: the dispatch and end paths skip it) */
    bool has_unique;
    /* hints: open addressing, linear probing, capacity a power of two */
    hint_t *hints;
    size_t nhints, hints_cap;
    recent_t recent[RECENT_CAP];
};

static taskq_err_t fail(store_t *self, const char *what)
{
    tlog_error("store: %s: %s", what, sqlite3_errmsg(self->db));
    return TASKQ_ESTORE;
}

static void finish_stmt(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows; resets it. */
static taskq_err_t run(store_t *self, int which)
{
    sqlite3_stmt *st = self->st[which];
    int rc = sqlite3_step(st);
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, SQL[which]);
    finish_stmt(st);
    return err;
}

/* run() for a statement that must change a row: `none` if it changed none. */
static taskq_err_t run_one(store_t *self, int which, taskq_err_t none)
{
    taskq_err_t err = run(self, which);
    if (err == TASKQ_OK && sqlite3_changes(self->db) == 0)
        err = none;
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

static bool is_terminal(int state)
{
    return state == TASKQ_STATE_SUCCEEDED || state == TASKQ_STATE_FAILED ||
           state == TASKQ_STATE_REVOKED || state == TASKQ_STATE_EXPIRED;
}

/* ---- queues in memory ---------------------------------------------------- */

static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)s[i];
        h *= 16777619u;
    }
    return h;
}

static void qidx_rebuild(store_t *self, size_t cap)
{
    free(self->qidx);
    self->qidx = xcalloc(cap, sizeof *self->qidx);
    self->qidx_cap = cap;
    for (size_t i = 0; i < self->nq; i++) {
        size_t h = hash_name(self->q[i].name, self->q[i].len) & (cap - 1);
        while (self->qidx[h])
            h = (h + 1) & (cap - 1);
        self->qidx[h] = (uint32_t)(i + 1);
    }
}

/* The entry of queue name[0..len), or SIZE_MAX if unknown and !create. */
static size_t queue_find(store_t *self, const char *name, size_t len, bool create)
{
    if (self->qidx_cap) {
        size_t h = hash_name(name, len) & (self->qidx_cap - 1);
        uint32_t e;
        while ((e = self->qidx[h]) != 0) {
            const qent_t *q = &self->q[e - 1];
            if (q->len == len && memcmp(q->name, name, len) == 0)
                return e - 1;
            h = (h + 1) & (self->qidx_cap - 1);
        }
    }
    if (!create)
        return SIZE_MAX;
    if (self->nq == self->qcap) {
        self->qcap = self->qcap ? self->qcap * 2 : 8;
        self->q = xrealloc(self->q, self->qcap * sizeof *self->q);
    }
    qent_t *q = &self->q[self->nq];
    memset(q, 0, sizeof *q);
    q->name = xstrndup(name, len);
    q->len = len;
    self->nq++;
    if (self->nq * 2 > self->qidx_cap)
        qidx_rebuild(self, self->qidx_cap ? self->qidx_cap * 2 : 16);
    else {
        size_t h = hash_name(name, len) & (self->qidx_cap - 1);
        while (self->qidx[h])
            h = (h + 1) & (self->qidx_cap - 1);
        self->qidx[h] = (uint32_t)self->nq;
    }
    return self->nq - 1;
}

/* The entry of the queue in column col of st. */
static size_t queue_of_col(store_t *self, sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    size_t len = (size_t)sqlite3_column_bytes(st, col);
    if (!s) {
        s = TQ_DEFAULT_QUEUE;
        len = strlen(s);
    }
    return queue_find(self, s, len, true);
}

/* Called before the first change of a queue entry in a transaction. */
static void queue_touch(store_t *self, size_t qi)
{
    qent_t *q = &self->q[qi];
    if (q->dirty)
        return;
    memcpy(q->base, q->n, sizeof q->n);
    q->base_has_row = q->has_row;
    q->dirty = true;
    if (self->ndirty == self->dirty_cap) {
        self->dirty_cap = self->dirty_cap ? self->dirty_cap * 2 : 16;
        self->dirty = xrealloc(self->dirty, self->dirty_cap * sizeof *self->dirty);
    }
    self->dirty[self->ndirty++] = qi;
}

/* One task of queue qi moved from state `from` (-1: new) to `to` (-1:
 * deleted). */
static void count_move(store_t *self, size_t qi, int from, int to)
{
    queue_touch(self, qi);
    qent_t *q = &self->q[qi];
    if (from >= 0 && from < TASKQ_NSTATES) {
        if (q->n[from] > 0)
            q->n[from]--;
        if (self->all[from] > 0)
            self->all[from]--;
    }
    if (to >= 0 && to < TASKQ_NSTATES) {
        q->n[to]++;
        self->all[to]++;
    }
}

static void set_has_row(store_t *self, size_t qi)
{
    if (self->q[qi].has_row)
        return;
    queue_touch(self, qi);
    self->q[qi].has_row = true;
}

static void dirty_clear(store_t *self)
{
    for (size_t i = 0; i < self->ndirty; i++)
        self->q[self->dirty[i]].dirty = false;
    self->ndirty = 0;
}

/* ---- open / close / transactions ------------------------------------------ */

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
    if (version < 3 && exec(self, SCHEMA_V3) != TASKQ_OK)
        goto bad;
    if (version < 4) {
        if (exec(self, SCHEMA_V4) != TASKQ_OK)
            goto bad;
        if (sqlite3_prepare_v2(self->db, SCHEMA_V4_PURGE_AT, -1, &st, NULL) != SQLITE_OK) {
            fail(self, "v4 purge_at");
            goto bad;
        }
        sqlite3_bind_int64(st, 1, TQ_DEFAULT_RETENTION_MS);
        sqlite3_bind_int64(st, 2, TQ_DEFAULT_FAILED_TTL_MS);
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
            fail(self, "v4 purge_at");
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            goto bad;
    }
    if (version < 5 && exec(self, SCHEMA_V5) != TASKQ_OK)
        goto bad;
    if (exec(self, "PRAGMA user_version = " STR(SCHEMA_VERSION)) != TASKQ_OK ||
        exec(self, "COMMIT") != TASKQ_OK)
        goto bad;
    if (version > 0)
        tlog_info("store: schema migrated from version %d to %d", version, SCHEMA_VERSION);
    return TASKQ_OK;
bad:
    exec(self, "ROLLBACK");
    return TASKQ_ESTORE;
}

static const char *col_cstr(sqlite3_stmt *st, int col);

/* Start-up: the qcounts rows, the queue names (not a scan of the tasks),
 * the purge counters and whether any unique key exists. */
static taskq_err_t load_counts(store_t *self)
{
    sqlite3_stmt *st = self->st[S_LOAD_QCOUNTS];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t qi = queue_of_col(self, st, 0);
        int state = sqlite3_column_int(st, 1);
        sqlite3_int64 n = sqlite3_column_int64(st, 2);
        if (state < 0 || state >= TASKQ_NSTATES || n <= 0)
            continue;
        self->q[qi].n[state] += (uint64_t)n;
        self->all[state] += (uint64_t)n;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(self, "load qcounts");
    st = self->st[S_QUEUE_NAMES];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t qi = queue_of_col(self, st, 0); /* may grow self->q */
        self->q[qi].has_row = true;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(self, "load queues");
    memcpy(self->all_base, self->all, sizeof self->all);
    st = self->st[S_META_LOAD];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = col_cstr(st, 0);
        sqlite3_int64 v = sqlite3_column_int64(st, 1);
        if (strcmp(k, "purged") == 0)
            self->purged = v > 0 ? (uint64_t)v : 0;
        else if (strcmp(k, "purge_horizon_ms") == 0)
            self->horizon_ms = v > 0 ? v : 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return fail(self, "load meta");
    self->purged_base = self->purged;
    self->horizon_base = self->horizon_ms;
    st = self->st[S_UNIQUE_ANY];
    rc = sqlite3_step(st);
    self->has_unique = rc == SQLITE_ROW;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return fail(self, "load uniques");
    return TASKQ_OK;
}

store_t *store_open(const char *url, store_durability_t durability, taskq_err_t *err)
{
    if (strncmp(url, "sqlite:", 7) == 0)
        url += 7;
    store_t *self = xcalloc(1, sizeof *self);
    /* SQLite's memory statistics take a global mutex around every malloc
     * and free (a few % of the broker's CPU per task); nothing reads them.
     * Only possible before SQLite initialises, i.e. before the process's
     * first open (or VFS registration); later it is a harmless MISUSE. */
    static bool configured;
    if (!configured) {
        configured = true;
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    }
    /* NULL (the default VFS) unless a test set TASKQ_FAULT_VFS (faultvfs.h) */
    const char *vfs = faultvfs_install();
    int rc = sqlite3_open_v2(url, &self->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, vfs);
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
    self->trows = xmalloc(SCAN_CHUNK * sizeof *self->trows);
    self->result_ttl_ms = TQ_DEFAULT_RETENTION_MS;
    self->failed_ttl_ms = TQ_DEFAULT_FAILED_TTL_MS;
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
    for (size_t i = 0; i < self->nq; i++)
        free(self->q[i].name);
    free(self->q);
    free(self->qidx);
    free(self->dirty);
    free(self->keys);
    free(self->trows);
    free(self->namebuf);
    free(self->hints);
    free(self);
    *self_p = NULL;
}

/* Ends every read left open (borrowed rows die here). */
static void reset_reads(store_t *self)
{
    sqlite3_reset(self->st[S_GET]);
    sqlite3_reset(self->st[S_GET_SEQ]);
    sqlite3_reset(self->st[S_POLICY]);
    sqlite3_reset(self->st[S_PENDING]);
}

taskq_err_t store_begin(store_t *self)
{
    reset_reads(self);
    memcpy(self->all_base, self->all, sizeof self->all);
    self->purged_base = self->purged;
    self->horizon_base = self->horizon_ms;
    taskq_err_t err = run(self, S_BEGIN);
    self->in_tx = err == TASKQ_OK;
    return err;
}

/* Writes the count cells changed in this transaction. */
static taskq_err_t save_counts(store_t *self)
{
    sqlite3_stmt *st = self->st[S_SAVE_QCOUNT];
    for (size_t i = 0; i < self->ndirty; i++) {
        const qent_t *q = &self->q[self->dirty[i]];
        for (int s = 0; s < TASKQ_NSTATES; s++) {
            if (q->n[s] == q->base[s])
                continue;
            sqlite3_bind_text(st, 1, q->name, (int)q->len, SQLITE_STATIC);
            sqlite3_bind_int(st, 2, s);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)q->n[s]);
            if (run(self, S_SAVE_QCOUNT) != TASKQ_OK)
                return TASKQ_ESTORE;
        }
    }
    sqlite3_stmt *m = self->st[S_META_SAVE];
    if (self->purged != self->purged_base) {
        sqlite3_bind_text(m, 1, "purged", -1, SQLITE_STATIC);
        sqlite3_bind_int64(m, 2, (sqlite3_int64)self->purged);
        if (run(self, S_META_SAVE) != TASKQ_OK)
            return TASKQ_ESTORE;
    }
    if (self->horizon_ms != self->horizon_base) {
        sqlite3_bind_text(m, 1, "purge_horizon_ms", -1, SQLITE_STATIC);
        sqlite3_bind_int64(m, 2, self->horizon_ms);
        if (run(self, S_META_SAVE) != TASKQ_OK)
            return TASKQ_ESTORE;
    }
    return TASKQ_OK;
}

taskq_err_t store_commit(store_t *self)
{
    reset_reads(self);
    if (save_counts(self) != TASKQ_OK)
        return TASKQ_ESTORE; /* the caller rolls back */
    taskq_err_t err = run(self, S_COMMIT);
    if (err == TASKQ_OK) {
        self->in_tx = false;
        dirty_clear(self);
        memcpy(self->all_base, self->all, sizeof self->all);
        self->purged_base = self->purged;
        self->horizon_base = self->horizon_ms;
    }
    return err;
}

void store_rollback(store_t *self)
{
    reset_reads(self);
    for (size_t i = 0; i < self->ndirty; i++) {
        qent_t *q = &self->q[self->dirty[i]];
        memcpy(q->n, q->base, sizeof q->n);
        q->has_row = q->base_has_row;
    }
    dirty_clear(self);
    memcpy(self->all, self->all_base, sizeof self->all);
    self->purged = self->purged_base;
    self->horizon_ms = self->horizon_base;
    if (sqlite3_get_autocommit(self->db)) { /* SQLite already rolled back */
        self->in_tx = false;
        return;
    }
    if (run(self, S_ROLLBACK) == TASKQ_OK)
        self->in_tx = false;
}

/* ---- helpers ------------------------------------------------------------- */

static void bind_id(sqlite3_stmt *st, int col, const taskq_id_t *id)
{
    sqlite3_bind_blob(st, col, id->b, sizeof id->b, SQLITE_STATIC);
}

static void bind_str(sqlite3_stmt *st, int col, proto_str_t s)
{
    sqlite3_bind_text(st, col, s.ptr ? s.ptr : "", (int)s.len, SQLITE_STATIC);
}

static void bind_cstr(sqlite3_stmt *st, int col, const char *s)
{
    sqlite3_bind_text(st, col, s ? s : "", -1, SQLITE_STATIC);
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

static const char *col_cstr(sqlite3_stmt *st, int col)
{
    const char *s = (const char *)sqlite3_column_text(st, col);
    return s ? s : "";
}

static proto_bin_t col_bin(sqlite3_stmt *st, int col)
{
    proto_bin_t b;
    b.ptr = sqlite3_column_blob(st, col);
    b.len = (uint32_t)sqlite3_column_bytes(st, col);
    return b;
}

static bool col_id(sqlite3_stmt *st, int col, taskq_id_t *id)
{
    const void *b = sqlite3_column_blob(st, col);
    if (!b || sqlite3_column_bytes(st, col) != (int)sizeof id->b) {
        memset(id->b, 0, sizeof id->b);
        return false;
    }
    memcpy(id->b, b, sizeof id->b);
    return true;
}

/* After a CAS that changed nothing: ESTALE if the task exists, else ENOTFOUND. */
static taskq_err_t stale_or_missing(store_t *self, const taskq_id_t *id)
{
    sqlite3_stmt *st = self->st[S_TASK_SEQ];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    taskq_err_t err = rc == SQLITE_ROW    ? TASKQ_ESTALE
                      : rc == SQLITE_DONE ? TASKQ_ENOTFOUND
                                          : fail(self, "exists");
    finish_stmt(st);
    return err;
}

/* ---- hints (hint_t) ------------------------------------------------------ */

static size_t id_hash(const taskq_id_t *id)
{
    /* ids are UUIDv7: the random tail hashes well */
    uint64_t h;
    memcpy(&h, id->b + 8, sizeof h);
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return (size_t)h;
}

static size_t hint_slot(const store_t *self, const taskq_id_t *id)
{
    return id_hash(id) & (self->hints_cap - 1);
}

static void recent_put(store_t *self, const taskq_id_t *id, sqlite3_int64 seq)
{
    recent_t *r = &self->recent[id_hash(id) & (RECENT_CAP - 1)];
    r->id = *id;
    r->seq = seq;
}

static hint_t *hint_find(store_t *self, const taskq_id_t *id)
{
    if (!self->nhints)
        return NULL;
    for (size_t i = hint_slot(self, id);; i = (i + 1) & (self->hints_cap - 1)) {
        hint_t *h = &self->hints[i];
        if (!h->seq)
            return NULL;
        if (memcmp(h->id.b, id->b, sizeof id->b) == 0)
            return h;
    }
}

static void hint_put(store_t *self, const taskq_id_t *id, sqlite3_int64 seq, size_t q)
{
    hint_t *h = hint_find(self, id);
    if (h) {
        h->seq = seq;
        h->q = q;
        return;
    }
    if (self->nhints >= HINTS_MAX) {
        memset(self->hints, 0, self->hints_cap * sizeof *self->hints);
        self->nhints = 0;
    }
    if ((self->nhints + 1) * 2 > self->hints_cap) { /* load <= 1/2 */
        hint_t *old = self->hints;
        size_t oldcap = self->hints_cap;
        self->hints_cap = oldcap ? oldcap * 2 : 1024;
        self->hints = xcalloc(self->hints_cap, sizeof *self->hints);
        self->nhints = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].seq)
                hint_put(self, &old[i].id, old[i].seq, old[i].q);
        free(old);
    }
    size_t i = hint_slot(self, id);
    while (self->hints[i].seq)
        i = (i + 1) & (self->hints_cap - 1);
    self->hints[i].id = *id;
    self->hints[i].seq = seq;
    self->hints[i].q = q;
    self->nhints++;
}

/* Removes id's hint (backward-shift deletion: no tombstones). */
static void hint_drop(store_t *self, const taskq_id_t *id)
{
    hint_t *h = hint_find(self, id);
    if (!h)
        return;
    size_t mask = self->hints_cap - 1, i = (size_t)(h - self->hints);
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (!self->hints[j].seq)
            break;
        size_t home = hint_slot(self, &self->hints[j].id);
        /* j's entry may move to i unless its home lies cyclically in (i, j] */
        bool stay = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stay) {
            self->hints[i] = self->hints[j];
            i = j;
        }
    }
    self->hints[i].seq = 0;
    self->nhints--;
}

/* ---- tasks ---------------------------------------------------------------- */

static bool id_is_zero(const taskq_id_t *id)
{
    for (size_t i = 0; i < sizeof id->b; i++)
        if (id->b[i])
            return false;
    return true;
}

/* An id column: NULL for the zero id. */
static void bind_id_or_null(sqlite3_stmt *st, int col, const taskq_id_t *id)
{
    if (id && !id_is_zero(id))
        bind_id(st, col, id);
    else
        sqlite3_bind_null(st, col);
}

/* Whether t uses any lifecycle column (else the plain S_INSERT). */
static bool has_lifecycle(const store_new_task_t *t)
{
    return !id_is_zero(&t->parent) || !id_is_zero(&t->group) || t->group_index || t->is_callback ||
           t->immutable || t->deps_left || t->unique_key.len || t->unique_until ||
           t->result_ttl_ms > 0 || !id_is_zero(&t->rerun_of) || t->flags;
}

taskq_err_t store_insert_task(store_t *self, const store_new_task_t *t, bool *inserted)
{
    if (inserted)
        *inserted = false;
    bool pending = t->state == TASKQ_STATE_PENDING;
    if ((t->state != TASKQ_STATE_QUEUED && t->state != TASKQ_STATE_SCHEDULED && !pending) ||
        pending != (t->deps_left > 0) || t->priority < 0 || t->priority > TQ_PRIORITY_MAX) {
        tlog_error("store: insert: bad state %d (deps %u) or priority %d", t->state,
                   (unsigned)t->deps_left, (int)t->priority);
        return TASKQ_EINVAL;
    }
    proto_str_t queue = t->queue.len ? t->queue : proto_str(TQ_DEFAULT_QUEUE);
    int which = has_lifecycle(t) ? S_INSERT_FULL : S_INSERT;
    sqlite3_stmt *st = self->st[which];
    bind_id(st, 1, &t->id);
    bind_str(st, 2, t->name);
    if (t->args.len)
        sqlite3_bind_blob(st, 3, t->args.ptr, (int)t->args.len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 3, "\x90", 1, SQLITE_STATIC); /* empty = [] */
    sqlite3_bind_int(st, 4, t->state);
    sqlite3_bind_int64(st, 5, t->max_attempts);
    sqlite3_bind_int64(st, 6, t->time_limit_ms);
    sqlite3_bind_int64(st, 7, t->submitted_at);
    bind_str(st, 8, queue);
    sqlite3_bind_int(st, 9, t->priority);
    sqlite3_bind_int64(st, 10, t->state == TASKQ_STATE_SCHEDULED ? t->due_at : 0);
    sqlite3_bind_int64(st, 11, t->expires_at > 0 ? t->expires_at : 0);
    sqlite3_bind_int64(st, 12, t->policy.backoff_base_ms);
    sqlite3_bind_double(st, 13, t->policy.backoff_factor);
    sqlite3_bind_int64(st, 14, t->policy.backoff_max_ms);
    sqlite3_bind_int(st, 15, t->policy.jitter);
    bind_str(st, 16, t->policy.retry_on);
    bind_str(st, 17, t->policy.no_retry_on);
    bind_str(st, 18, t->schedule);
    if (which == S_INSERT_FULL) {
        bind_id_or_null(st, 19, &t->parent);
        bind_id_or_null(st, 20, &t->group);
        sqlite3_bind_int64(st, 21, t->group_index);
        sqlite3_bind_int(st, 22, t->is_callback ? 1 : 0);
        sqlite3_bind_int(st, 23, t->immutable ? 1 : 0);
        sqlite3_bind_int64(st, 24, t->deps_left);
        bind_str(st, 25, t->unique_key);
        sqlite3_bind_int(st, 26, t->unique_until == 1 ? 1 : 0);
        sqlite3_bind_int64(st, 27, t->result_ttl_ms > 0 ? t->result_ttl_ms : 0);
        bind_id_or_null(st, 28, &t->rerun_of);
        sqlite3_bind_int(st, 29, t->flags);
    }
    taskq_err_t err = run(self, which);
    if (err != TASKQ_OK || sqlite3_changes(self->db) == 0)
        return err;
    size_t qi = queue_find(self, queue.ptr, queue.len, true);
    if (!self->q[qi].has_row) {
        sqlite3_stmt *qs = self->st[S_QUEUE_ENSURE];
        bind_str(qs, 1, queue);
        if ((err = run(self, S_QUEUE_ENSURE)) != TASKQ_OK)
            return err;
        set_has_row(self, qi);
    }
    count_move(self, qi, -1, t->state);
    if (inserted)
        *inserted = true;
    return TASKQ_OK;
}

/* Fills *rec (but its id) from the REC_COLS of st's current row. */
static void rec_fill(sqlite3_stmt *st, proto_task_rec_t *rec)
{
    memset(rec, 0, sizeof *rec);
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
    rec->queue = col_str(st, 14);
    rec->priority = sqlite3_column_int(st, 15);
    rec->failures = (uint32_t)sqlite3_column_int64(st, 16);
    rec->code = col_str(st, 17);
    rec->due_at = sqlite3_column_int64(st, 18);
    rec->expires_at = sqlite3_column_int64(st, 19);
    rec->schedule = col_str(st, 20);
    col_id(st, 21, &rec->group_id);
    col_id(st, 22, &rec->parent_id);
    col_id(st, 23, &rec->rerun_of);
    col_id(st, 24, &rec->rerun_by);
    rec->unique_key = col_str(st, 25);
}

taskq_err_t store_get_task(store_t *self, const taskq_id_t *id, proto_task_rec_t *rec)
{
    sqlite3_reset(self->st[S_GET]); /* ends the previous record's borrow */
    sqlite3_reset(self->st[S_GET_SEQ]);
    const recent_t *r = &self->recent[id_hash(id) & (RECENT_CAP - 1)];
    int rc;
    sqlite3_stmt *st;
    if (r->seq && !memcmp(r->id.b, id->b, sizeof id->b)) {
        st = self->st[S_GET_SEQ];
        sqlite3_bind_int64(st, 1, r->seq);
        bind_id(st, 2, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            rec_fill(st, rec);
            rec->id = *id;
            return TASKQ_OK;
        }
        sqlite3_reset(st); /* not there (purged): by id */
    }
    st = self->st[S_GET];
    bind_id(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return TASKQ_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(self, "get task");
    }
    rec_fill(st, rec);
    rec->id = *id;
    return TASKQ_OK;
}

taskq_err_t store_get_policy(store_t *self, const taskq_id_t *id, store_policy_t *out)
{
    sqlite3_stmt *st = self->st[S_POLICY];
    sqlite3_reset(st);
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return TASKQ_ENOTFOUND;
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return fail(self, "get policy");
    }
    memset(out, 0, sizeof *out);
    out->name = col_str(st, 0);
    out->queue = col_str(st, 1);
    out->state = sqlite3_column_int(st, 2);
    out->attempts = (uint32_t)sqlite3_column_int64(st, 3);
    out->failures = (uint32_t)sqlite3_column_int64(st, 4);
    out->max_attempts = (uint32_t)sqlite3_column_int64(st, 5);
    out->policy.max_attempts = out->max_attempts;
    out->policy.backoff_base_ms = sqlite3_column_int64(st, 6);
    out->policy.backoff_factor = sqlite3_column_double(st, 7);
    out->policy.backoff_max_ms = sqlite3_column_int64(st, 8);
    out->policy.jitter = sqlite3_column_int(st, 9);
    out->policy.retry_on = col_str(st, 10);
    out->policy.no_retry_on = col_str(st, 11);
    return TASKQ_OK;
}

/* Fills a ready row from READY_COLS of st; hints its seq for
 * store_mark_running. */
static bool ready_row(store_t *self, sqlite3_stmt *st, const char *queue, size_t qi,
                      store_queued_t *row)
{
    if (!col_id(st, 0, &row->id))
        return false; /* cannot happen: ids are validated on insert */
    hint_put(self, &row->id, sqlite3_column_int64(st, 8), qi);
    row->name = col_str(st, 1);
    row->args = col_bin(st, 2);
    row->time_limit_ms = sqlite3_column_int64(st, 3);
    row->attempts = (uint32_t)sqlite3_column_int64(st, 4);
    row->priority = sqlite3_column_int(st, 5);
    row->expires_at = sqlite3_column_int64(st, 6);
    row->flags = (uint8_t)sqlite3_column_int(st, 7);
    row->queue = proto_str(queue);
    return true;
}

static bool name_excluded(const char *name, size_t len, const char *const *exclude, size_t nexclude)
{
    for (size_t i = 0; i < nexclude; i++)
        if (exclude[i] && strlen(exclude[i]) == len && memcmp(exclude[i], name, len) == 0)
            return true;
    return false;
}

/* a ranks before b: priority desc, then seq asc */
static bool rkey_before(rkey_t a, rkey_t b)
{
    return a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq;
}

/* Inserts k into the sorted keys[0..*n) of capacity cap, dropping the
 * worst when full; false if k ranks after all of a full array. */
static bool rkey_insert(rkey_t *keys, size_t *n, size_t cap, rkey_t k)
{
    if (*n == cap && !rkey_before(k, keys[cap - 1]))
        return false;
    size_t i = *n < cap ? (*n)++ : cap - 1;
    while (i > 0 && rkey_before(k, keys[i - 1])) {
        keys[i] = keys[i - 1];
        i--;
    }
    keys[i] = k;
    return true;
}

/* The exclusion path: distinct queued names of the queue (skip scan over
 * tasks_ready_name), for each allowed name its best rows, merged in C by
 * (priority desc, seq); then each chosen row by seq. */
static taskq_err_t next_ready_excluding(store_t *self, const char *queue,
                                        const char *const *exclude, size_t nexclude, size_t limit,
                                        store_queued_fn fn, void *arg)
{
    if (limit > self->keys_cap) {
        self->keys = xrealloc(self->keys, limit * sizeof *self->keys);
        self->keys_cap = limit;
    }
    size_t nkeys = 0;
    sqlite3_stmt *names = self->st[S_NAME_NEXT], *rows = self->st[S_READY_NAME];
    size_t curlen = 0;
    if (!self->namebuf) {
        self->namebuf_cap = TQ_NAME_MAX + 1;
        self->namebuf = xmalloc(self->namebuf_cap);
    }
    int rc;
    for (;;) {
        bind_cstr(names, 1, queue);
        sqlite3_bind_text(names, 2, self->namebuf, (int)curlen, SQLITE_STATIC);
        rc = sqlite3_step(names);
        if (rc != SQLITE_ROW)
            break;
        const char *name = (const char *)sqlite3_column_text(names, 0);
        size_t len = (size_t)sqlite3_column_bytes(names, 0);
        if (!name)
            break;
        if (len + 1 > self->namebuf_cap) {
            self->namebuf_cap = len + 1;
            self->namebuf = xrealloc(self->namebuf, self->namebuf_cap);
        }
        memcpy(self->namebuf, name, len);
        self->namebuf[len] = '\0';
        curlen = len;
        sqlite3_reset(names);
        if (name_excluded(self->namebuf, curlen, exclude, nexclude))
            continue;
        bind_cstr(rows, 1, queue);
        sqlite3_bind_text(rows, 2, self->namebuf, (int)curlen, SQLITE_STATIC);
        sqlite3_bind_int64(rows, 3, (sqlite3_int64)limit);
        while ((rc = sqlite3_step(rows)) == SQLITE_ROW) {
            rkey_t k = {sqlite3_column_int(rows, 0), sqlite3_column_int64(rows, 1)};
            if (!rkey_insert(self->keys, &nkeys, limit, k))
                break; /* this name's later rows rank lower still */
        }
        finish_stmt(rows);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return fail(self, "next ready by name");
    }
    finish_stmt(names);
    if (rc != SQLITE_DONE)
        return fail(self, "next queued name");
    sqlite3_stmt *one = self->st[S_READY_SEQ];
    size_t qi = queue_find(self, queue, strlen(queue), true);
    for (size_t i = 0; i < nkeys; i++) {
        sqlite3_bind_int64(one, 1, self->keys[i].seq);
        rc = sqlite3_step(one);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(one);
            continue; /* no longer queued (the callback changed it) */
        }
        if (rc != SQLITE_ROW) {
            finish_stmt(one);
            return fail(self, "next ready row");
        }
        store_queued_t row;
        bool go = !ready_row(self, one, queue, qi, &row) || fn(&row, arg);
        sqlite3_reset(one);
        if (!go)
            break;
    }
    finish_stmt(one);
    return TASKQ_OK;
}

taskq_err_t store_next_ready(store_t *self, const char *queue, const char *const *exclude,
                             size_t nexclude, size_t limit, store_queued_fn fn, void *arg)
{
    if (limit == 0)
        return TASKQ_OK;
    if (nexclude > 0)
        return next_ready_excluding(self, queue, exclude, nexclude, limit, fn, arg);
    size_t qi = queue_find(self, queue, strlen(queue), true);
    sqlite3_stmt *st = self->st[S_READY];
    bind_cstr(st, 1, queue);
    sqlite3_bind_int64(st, 2, limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_queued_t row;
        if (!ready_row(self, st, queue, qi, &row))
            continue;
        if (!fn(&row, arg)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "next ready");
    finish_stmt(st);
    return err;
}

/* A task row as the CAS verbs see it. */
typedef struct {
    sqlite3_int64 seq;
    size_t q;
    int state;
    uint32_t attempts;
    sqlite3_int64 started_at;
    uint32_t live_attempt; /* see SCHEMA_V5 */
} found_t;

/* Looks a task up by id: TASKQ_OK, ENOTFOUND or ESTORE. Copies the worker
 * into self->worker when want_worker. */
static taskq_err_t find_task(store_t *self, const taskq_id_t *id, found_t *f, bool want_worker)
{
    sqlite3_stmt *st = self->st[S_FIND];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    taskq_err_t err = TASKQ_OK;
    if (rc == SQLITE_ROW) {
        f->seq = sqlite3_column_int64(st, 0);
        f->q = queue_of_col(self, st, 1);
        f->state = sqlite3_column_int(st, 2);
        f->attempts = (uint32_t)sqlite3_column_int64(st, 3);
        if (want_worker)
            proto_str_copy(self->worker, sizeof self->worker, col_str(st, 4));
        f->started_at = sqlite3_column_int64(st, 5);
        f->live_attempt = (uint32_t)sqlite3_column_int64(st, 6);
    } else if (rc == SQLITE_DONE) {
        err = TASKQ_ENOTFOUND;
    } else {
        err = fail(self, "find task");
    }
    finish_stmt(st);
    return err;
}

/* Runs a CAS update by seq; ESTALE if it changed nothing. */
static taskq_err_t run_cas(store_t *self, int which)
{
    return run_one(self, which, TASKQ_ESTALE); /* none: cannot happen, the row was just read */
}

/* S_MARK_RUNNING on the row at seq: ESTALE if it changed nothing. */
static taskq_err_t mark_running_seq(store_t *self, sqlite3_int64 seq, const taskq_id_t *id,
                                    uint32_t attempt, const char *worker, int64_t started_at,
                                    int64_t lease_deadline_at)
{
    sqlite3_stmt *st = self->st[S_MARK_RUNNING];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, attempt);
    bind_cstr(st, 3, worker);
    sqlite3_bind_int64(st, 4, started_at);
    sqlite3_bind_int64(st, 5, lease_deadline_at);
    bind_id(st, 6, id);
    return run_cas(self, S_MARK_RUNNING);
}

taskq_err_t store_mark_running(store_t *self, const taskq_id_t *id, uint32_t attempt,
                               const char *worker, int64_t started_at, int64_t lease_deadline_at)
{
    /* the running attempt's history is the task row (live_attempt): no
     * attempts row (SCHEMA_V5) */
    hint_t *h = hint_find(self, id);
    taskq_err_t err;
    if (h) { /* from store_next_ready: no lookup by id */
        size_t q = h->q;
        err = mark_running_seq(self, h->seq, id, attempt, worker, started_at, lease_deadline_at);
        if (err == TASKQ_OK) {
            count_move(self, q, TASKQ_STATE_QUEUED, TASKQ_STATE_RUNNING);
            return TASKQ_OK;
        }
        if (err != TASKQ_ESTALE)
            return err;
        /* not as hinted: the ordinary path says why */
    }
    found_t f;
    if ((err = find_task(self, id, &f, false)) != TASKQ_OK)
        return err;
    if (f.state != TASKQ_STATE_QUEUED || f.attempts + 1 != attempt)
        return TASKQ_ESTALE;
    err = mark_running_seq(self, f.seq, id, attempt, worker, started_at, lease_deadline_at);
    if (err != TASKQ_OK)
        return err;
    count_move(self, f.q, TASKQ_STATE_QUEUED, TASKQ_STATE_RUNNING);
    hint_put(self, id, f.seq, f.q); /* for the end of the attempt */
    return TASKQ_OK;
}

static const char *default_label(int state)
{
    switch (state) {
    case TASKQ_STATE_SUCCEEDED:
        return "succeeded";
    case TASKQ_STATE_FAILED:
        return "failed";
    case TASKQ_STATE_RETRYING:
        return "retrying";
    case TASKQ_STATE_QUEUED:
        return "requeued";
    case TASKQ_STATE_REVOKED:
        return "revoked";
    default:
        return "";
    }
}

/* Binds END_SET's parameters ?2..?13 of `which` for outcome o. */
static sqlite3_stmt *bind_end(store_t *self, int which, uint32_t attempt, const store_outcome_t *o,
                              uint32_t live_after)
{
    int to = o->to_state;
    sqlite3_stmt *st = self->st[which];
    sqlite3_bind_int64(st, 2, attempt);
    sqlite3_bind_int(st, 3, to);
    sqlite3_bind_int(st, 4, o->failure ? 1 : 0);
    bind_str(st, 5, o->code);
    if (to == TASKQ_STATE_SUCCEEDED && o->result.len)
        sqlite3_bind_blob(st, 6, o->result.ptr, (int)o->result.len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 6, "\xc0", 1, SQLITE_STATIC); /* no result = nil */
    /* the task's error: the message, else the code */
    bind_str(st, 7, o->message.len ? o->message : o->code);
    sqlite3_bind_int(st, 8, o->child_pid);
    sqlite3_bind_int64(st, 9, o->now);
    sqlite3_bind_int64(st, 10, o->due_at);
    sqlite3_bind_int64(st, 11, self->result_ttl_ms);
    sqlite3_bind_int64(st, 12, self->failed_ttl_ms);
    sqlite3_bind_int64(st, 13, live_after);
    return st;
}

taskq_err_t store_end_attempt(store_t *self, const taskq_id_t *id, uint32_t attempt,
                              const store_outcome_t *o)
{
    int to = o->to_state;
    if (to != TASKQ_STATE_SUCCEEDED && to != TASKQ_STATE_FAILED && to != TASKQ_STATE_QUEUED &&
        to != TASKQ_STATE_RETRYING && to != TASKQ_STATE_REVOKED) {
        tlog_error("store: end attempt: bad target state %d", to);
        return TASKQ_EINVAL;
    }
    const char *label = o->label ? o->label : default_label(to);
    /* A plain success of a v5 attempt stays the live attempt: its history
     * row is the task row (store_attempts), nothing else to store. */
    bool plain = to == TASKQ_STATE_SUCCEEDED && o->code.len == 0 && o->message.len == 0 &&
                 strcmp(label, "succeeded") == 0;
    hint_t *h = hint_find(self, id);
    taskq_err_t err;
    if (h && plain) { /* from store_mark_running: no lookup by id */
        size_t q = h->q;
        sqlite3_stmt *st = bind_end(self, S_END_LIVE, attempt, o, attempt);
        sqlite3_bind_int64(st, 1, h->seq);
        bind_id(st, 14, id);
        if ((err = run(self, S_END_LIVE)) != TASKQ_OK)
            return err;
        if (sqlite3_changes(self->db) == 1) {
            count_move(self, q, TASKQ_STATE_RUNNING, to);
            recent_put(self, id, h->seq);
            hint_drop(self, id);
            return TASKQ_OK;
        }
        /* not as hinted (or not the live attempt): the ordinary path */
    }
    if (h)
        hint_drop(self, id); /* the attempt ends here, or it is not running */
    found_t f;
    if ((err = find_task(self, id, &f, true)) != TASKQ_OK)
        return err;
    if (f.state != TASKQ_STATE_RUNNING || f.attempts != attempt)
        return TASKQ_ESTALE;
    bool keep_live = plain && f.live_attempt == attempt;
    sqlite3_stmt *st = bind_end(self, S_END, attempt, o, keep_live ? attempt : 0);
    sqlite3_bind_int64(st, 1, f.seq);
    if ((err = run_cas(self, S_END)) != TASKQ_OK)
        return err;
    count_move(self, f.q, TASKQ_STATE_RUNNING, to);
    recent_put(self, id, f.seq);
    if (keep_live)
        return TASKQ_OK;
    /* the attempt's row: inserted (v5) or completed (a v4 'running' row) */
    sqlite3_stmt *a = self->st[S_ATTEMPT_END];
    sqlite3_bind_int64(a, 1, f.seq);
    sqlite3_bind_int64(a, 2, attempt);
    bind_cstr(a, 3, self->worker); /* the task row's: the same as a v4 row's */
    sqlite3_bind_int(a, 4, o->child_pid);
    sqlite3_bind_int64(a, 5, f.started_at);
    sqlite3_bind_int64(a, 6, o->now);
    bind_cstr(a, 7, label);
    bind_str(a, 8, o->code);
    bind_str(a, 9, o->message);
    return run(self, S_ATTEMPT_END);
}

taskq_err_t store_expire_task(store_t *self, const taskq_id_t *id, int64_t now)
{
    found_t f;
    taskq_err_t err = find_task(self, id, &f, false);
    if (err != TASKQ_OK)
        return err;
    if (f.state != TASKQ_STATE_QUEUED)
        return TASKQ_ESTALE;
    sqlite3_stmt *st = self->st[S_EXPIRE];
    sqlite3_bind_int64(st, 1, f.seq);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, self->result_ttl_ms);
    if ((err = run_cas(self, S_EXPIRE)) != TASKQ_OK)
        return err;
    count_move(self, f.q, TASKQ_STATE_QUEUED, TASKQ_STATE_EXPIRED);
    return TASKQ_OK;
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
        if (!col_id(st, 0, &id))
            continue;
        fn(&id, (uint32_t)sqlite3_column_int64(st, 1), col_cstr(st, 2), col_cstr(st, 3),
           col_cstr(st, 4), arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "load running");
    sqlite3_reset(st);
    return err;
}

/* Collects up to n rows (seq, id, state, queue) of a scan statement whose
 * ?1 is now and ?2 the limit; *got = rows. */
static taskq_err_t scan_rows(store_t *self, int which, int64_t now, size_t n, size_t *got)
{
    sqlite3_stmt *st = self->st[which];
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)n);
    size_t k = 0;
    int rc = SQLITE_DONE;
    while (k < n && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        trow_t *r = &self->trows[k];
        r->seq = sqlite3_column_int64(st, 0);
        col_id(st, 1, &r->id);
        r->state = sqlite3_column_int(st, 2);
        r->q = queue_of_col(self, st, 3);
        k++;
    }
    if (k < n && rc != SQLITE_DONE) {
        finish_stmt(st);
        return fail(self, SQL[which]);
    }
    finish_stmt(st);
    *got = k;
    return TASKQ_OK;
}

/* The first value of a one-column statement, INT64_MAX if no row. */
static taskq_err_t first_time(store_t *self, int which, int64_t *out)
{
    sqlite3_stmt *st = self->st[which];
    int rc = sqlite3_step(st);
    taskq_err_t err = TASKQ_OK;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *out = INT64_MAX;
    else
        err = fail(self, SQL[which]);
    sqlite3_reset(st);
    return err;
}

/* promote_due / expire_due: move rows found by scan to to_state, in
 * chunks of SCAN_CHUNK (the scan is done before the updates). */
static taskq_err_t move_due(store_t *self, int scan, int update, int to_state, int next,
                            int64_t now, size_t limit, store_task_fn fn, void *arg, size_t *moved,
                            int64_t *next_at)
{
    size_t total = 0;
    taskq_err_t err = TASKQ_OK;
    while (total < limit) {
        size_t want = limit - total < SCAN_CHUNK ? limit - total : SCAN_CHUNK, got = 0;
        if ((err = scan_rows(self, scan, now, want, &got)) != TASKQ_OK)
            break;
        for (size_t i = 0; i < got && err == TASKQ_OK; i++) {
            const trow_t *r = &self->trows[i];
            sqlite3_stmt *st = self->st[update];
            sqlite3_bind_int64(st, 1, r->seq);
            sqlite3_bind_int(st, 2, r->state);
            if (update == S_EXPIRE_SEQ) {
                sqlite3_bind_int64(st, 3, now);
                sqlite3_bind_int64(st, 4, self->result_ttl_ms);
            }
            if ((err = run(self, update)) != TASKQ_OK)
                break;
            if (sqlite3_changes(self->db) == 0)
                continue; /* changed since the scan (by fn) */
            count_move(self, r->q, r->state, to_state);
            total++;
            if (fn)
                fn(&r->id, arg);
        }
        if (err != TASKQ_OK || got < want)
            break;
    }
    if (moved)
        *moved = total;
    if (err == TASKQ_OK && next_at)
        err = first_time(self, next, next_at);
    return err;
}

taskq_err_t store_promote_due(store_t *self, int64_t now, size_t limit, store_task_fn fn, void *arg,
                              size_t *promoted, int64_t *next_due)
{
    return move_due(self, S_DUE_SCAN, S_PROMOTE, TASKQ_STATE_QUEUED, S_NEXT_DUE, now, limit, fn,
                    arg, promoted, next_due);
}

taskq_err_t store_expire_due(store_t *self, int64_t now, size_t limit, store_task_fn fn, void *arg,
                             size_t *expired, int64_t *next_expiry)
{
    return move_due(self, S_EXPIRY_SCAN, S_EXPIRE_SEQ, TASKQ_STATE_EXPIRED, S_NEXT_EXPIRY, now,
                    limit, fn, arg, expired, next_expiry);
}

taskq_err_t store_attempts(store_t *self, const taskq_id_t *id, store_attempt_fn fn, void *arg)
{
    /* the stored rows (attempts before the live one), then the live
     * attempt from the task row (SCHEMA_V5): the order and fields v4
     * listed; t stays on its row while the rows are read */
    sqlite3_stmt *t = self->st[S_ATTEMPT_TASK];
    bind_id(t, 1, id);
    int rc = sqlite3_step(t);
    if (rc != SQLITE_ROW) {
        finish_stmt(t);
        return rc == SQLITE_DONE ? TASKQ_ENOTFOUND : fail(self, "attempts");
    }
    sqlite3_int64 seq = sqlite3_column_int64(t, 0);
    int state = sqlite3_column_int(t, 1);
    uint32_t attempts = (uint32_t)sqlite3_column_int64(t, 2);
    uint32_t live = (uint32_t)sqlite3_column_int64(t, 3);
    sqlite3_stmt *st = self->st[S_ATTEMPTS];
    sqlite3_bind_int64(st, 1, seq);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_attempt_t a;
        a.attempt = (uint32_t)sqlite3_column_int64(st, 0);
        a.worker = col_cstr(st, 1);
        a.child_pid = sqlite3_column_int(st, 2);
        a.started_at = sqlite3_column_int64(st, 3);
        a.finished_at = sqlite3_column_int64(st, 4);
        a.state = col_cstr(st, 5);
        a.code = col_cstr(st, 6);
        a.message = col_cstr(st, 7);
        fn(&a, arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "attempts");
    finish_stmt(st);
    if (err == TASKQ_OK && live > 0 && live == attempts &&
        (state == TASKQ_STATE_RUNNING || state == TASKQ_STATE_SUCCEEDED)) {
        bool running = state == TASKQ_STATE_RUNNING;
        store_attempt_t a;
        a.attempt = live;
        a.worker = col_cstr(t, 4);
        a.child_pid = running ? 0 : sqlite3_column_int(t, 5);
        a.started_at = sqlite3_column_int64(t, 6);
        a.finished_at = running ? 0 : sqlite3_column_int64(t, 7);
        a.state = running ? "running" : "succeeded";
        a.code = "";
        a.message = "";
        fn(&a, arg);
    }
    finish_stmt(t);
    return err;
}

taskq_err_t store_is_terminal(store_t *self, const taskq_id_t *id, bool *terminal)
{
    *terminal = false;
    sqlite3_stmt *st = self->st[S_STATE];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    taskq_err_t err = TASKQ_OK;
    if (rc == SQLITE_ROW)
        *terminal = is_terminal(sqlite3_column_int(st, 0));
    else if (rc == SQLITE_DONE)
        err = TASKQ_ENOTFOUND;
    else
        err = fail(self, "is terminal");
    finish_stmt(st);
    return err;
}

taskq_err_t store_counts(store_t *self, uint64_t counts[TASKQ_NSTATES], uint64_t *total)
{
    *total = 0;
    for (int i = 0; i < TASKQ_NSTATES; i++) {
        counts[i] = self->all[i];
        *total += counts[i];
    }
    return TASKQ_OK;
}

void store_queue_counts(store_t *self, const char *queue, uint64_t counts[TASKQ_NSTATES])
{
    size_t qi = queue ? queue_find(self, queue, strlen(queue), false) : SIZE_MAX;
    if (qi == SIZE_MAX)
        memset(counts, 0, TASKQ_NSTATES * sizeof counts[0]);
    else
        memcpy(counts, self->q[qi].n, TASKQ_NSTATES * sizeof counts[0]);
}

taskq_err_t store_queue_oldest(store_t *self, const char *queue, int64_t *submitted_at)
{
    *submitted_at = 0;
    size_t qi = queue ? queue_find(self, queue, strlen(queue), false) : SIZE_MAX;
    if (qi == SIZE_MAX || self->q[qi].n[TASKQ_STATE_QUEUED] == 0)
        return TASKQ_OK;
    /* the lowest seq among each priority's head: 10 index seeks */
    sqlite3_stmt *st = self->st[S_OLDEST];
    sqlite3_int64 best = INT64_MAX;
    for (int p = 0; p <= TQ_PRIORITY_MAX; p++) {
        bind_cstr(st, 1, queue);
        sqlite3_bind_int(st, 2, p);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && sqlite3_column_int64(st, 0) < best) {
            best = sqlite3_column_int64(st, 0);
            *submitted_at = sqlite3_column_int64(st, 1);
        }
        finish_stmt(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return fail(self, "queue oldest");
    }
    return TASKQ_OK;
}

/* Deletes up to limit terminal tasks finished before before_at, one
 * terminal state after the other (store_purge_state). Kept for callers of
 * the v3 retention; store_purge_due replaces it. */
taskq_err_t store_purge_finished(store_t *self, int64_t before_at, size_t limit, size_t *purged)
{
    static const int terminal[] = {TASKQ_STATE_SUCCEEDED, TASKQ_STATE_FAILED, TASKQ_STATE_REVOKED,
                                   TASKQ_STATE_EXPIRED};
    size_t total = 0;
    taskq_err_t err = TASKQ_OK;
    for (size_t i = 0; i < sizeof terminal / sizeof terminal[0] && total < limit; i++) {
        size_t n = 0;
        if ((err = store_purge_state(self, terminal[i], before_at, limit - total, &n)) != TASKQ_OK)
            break;
        total += n;
    }
    if (purged)
        *purged = err == TASKQ_OK ? total : 0;
    return err;
}

/* ---- lifecycle (issue 7) ------------------------------------------------- */

static sqlite3_int64 sql_limit(size_t limit)
{
    return limit > INT64_MAX ? INT64_MAX : (sqlite3_int64)limit;
}

/* A UUIDv7's unix ms: bytes 0..5, big-endian. */
static int64_t id_time_ms(const taskq_id_t *id)
{
    int64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = (ms << 8) | id->b[i];
    return ms;
}

/* A growable list of (id, index) (workflow verbs collect their rows before
 * calling back: the callback may change those rows). */
typedef struct {
    store_member_t *v;
    size_t n, cap;
} idlist_t;

static void idlist_add(idlist_t *l, const taskq_id_t *id, uint32_t index)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    store_member_t *m = &l->v[l->n++];
    memset(m, 0, sizeof *m);
    m->id = *id;
    m->index = index;
}

/* Collects the ids in column 0 of st (bound) into l, up to max rows (0 =
 * no limit); resets st. */
static taskq_err_t collect_ids(store_t *self, sqlite3_stmt *st, idlist_t *l, size_t max,
                               const char *what)
{
    int rc = SQLITE_DONE;
    while ((max == 0 || l->n < max) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        taskq_id_t id;
        if (col_id(st, 0, &id))
            idlist_add(l, &id, 0);
    }
    taskq_err_t err = (max && l->n >= max) || rc == SQLITE_DONE ? TASKQ_OK : fail(self, what);
    finish_stmt(st);
    return err;
}

/* A row a purge deleted that leaves work behind: its group (gone with its
 * last task) or its unique key. */
typedef struct {
    taskq_id_t id, group;
    bool has_group;
    char *key; /* NULL: none */
} gone_t;

/* Steps a bound purge statement (PURGED_COLS): counts, the purge counter
 * and horizon; then the groups left without tasks go, and the unique keys
 * of the purged holders: deleted if their --unique-for hold ends at or
 * before `past` (a time known to be past), else marked released. */
static taskq_err_t purge_rows(store_t *self, int which, int64_t past, size_t *purged)
{
    sqlite3_stmt *st = self->st[which];
    gone_t *gone = NULL;
    size_t ngone = 0, cap = 0, n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        taskq_id_t id;
        col_id(st, 0, &id);
        count_move(self, queue_of_col(self, st, 2), sqlite3_column_int(st, 1), -1);
        int64_t ms = id_time_ms(&id);
        if (ms > self->horizon_ms)
            self->horizon_ms = ms;
        self->purged++;
        n++;
        taskq_id_t group;
        bool has_group = col_id(st, 3, &group);
        const char *key = col_cstr(st, 4);
        if (!has_group && !*key)
            continue;
        if (ngone == cap) {
            cap = cap ? cap * 2 : 16;
            gone = xrealloc(gone, cap * sizeof *gone);
        }
        gone[ngone].id = id;
        gone[ngone].group = group;
        gone[ngone].has_group = has_group;
        gone[ngone].key = *key ? xstrdup(key) : NULL;
        ngone++;
    }
    finish_stmt(st);
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "purge");
    for (size_t i = 0; i < ngone && err == TASKQ_OK; i++) {
        const gone_t *g = &gone[i];
        /* members of a group are mostly purged together: once per run */
        if (g->has_group && (i == 0 || !gone[i - 1].has_group ||
                             memcmp(gone[i - 1].group.b, g->group.b, sizeof g->group.b) != 0)) {
            bind_id(self->st[S_GROUP_GC], 1, &g->group);
            err = run(self, S_GROUP_GC);
        }
        if (g->key && err == TASKQ_OK) {
            sqlite3_stmt *u = self->st[S_UNIQUE_GC];
            bind_cstr(u, 1, g->key);
            bind_id(u, 2, &g->id);
            sqlite3_bind_int64(u, 3, past);
            if ((err = run(self, S_UNIQUE_GC)) == TASKQ_OK && sqlite3_changes(self->db) == 0) {
                u = self->st[S_UNIQUE_ORPHAN];
                bind_cstr(u, 1, g->key);
                bind_id(u, 2, &g->id);
                err = run(self, S_UNIQUE_ORPHAN);
            }
        }
    }
    for (size_t i = 0; i < ngone; i++)
        free(gone[i].key);
    free(gone);
    if (purged)
        *purged = err == TASKQ_OK ? n : 0;
    return err;
}

void store_set_ttls(store_t *self, int64_t result_ttl_ms, int64_t failed_ttl_ms)
{
    self->result_ttl_ms = result_ttl_ms > 0 ? result_ttl_ms : 0;
    self->failed_ttl_ms = failed_ttl_ms > 0 ? failed_ttl_ms : 0;
}

taskq_err_t store_purge_due(store_t *self, int64_t now, size_t limit, size_t *purged)
{
    if (purged)
        *purged = 0;
    if (limit == 0)
        return TASKQ_OK;
    sqlite3_stmt *st = self->st[S_PURGE_DUE];
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, sql_limit(limit));
    return purge_rows(self, S_PURGE_DUE, now, purged);
}

taskq_err_t store_purge_state(store_t *self, int state, int64_t before_at, size_t limit,
                              size_t *purged)
{
    if (purged)
        *purged = 0;
    if (!is_terminal(state)) {
        tlog_error("store: purge: state %d is not terminal", state);
        return TASKQ_EINVAL;
    }
    if (limit == 0)
        return TASKQ_OK;
    sqlite3_stmt *st = self->st[S_PURGE_STATE];
    sqlite3_bind_int(st, 1, state);
    sqlite3_bind_int64(st, 2, before_at);
    sqlite3_bind_int64(st, 3, sql_limit(limit));
    /* finished before before_at: a hold ending then is over */
    return purge_rows(self, S_PURGE_STATE, before_at, purged);
}

void store_purge_info(store_t *self, uint64_t *purged, int64_t *horizon_ms)
{
    if (purged)
        *purged = self->purged;
    if (horizon_ms)
        *horizon_ms = self->horizon_ms;
}

/* ---- groups ---- */

taskq_err_t store_group_insert(store_t *self, const store_group_t *g)
{
    sqlite3_stmt *st = self->st[S_GROUP_INSERT];
    bind_id(st, 1, &g->id);
    sqlite3_bind_int64(st, 2, g->total);
    sqlite3_bind_int64(st, 3, g->succeeded);
    sqlite3_bind_int64(st, 4, g->failed);
    bind_id_or_null(st, 5, g->has_callback ? &g->callback : NULL);
    sqlite3_bind_int(st, 6, g->on_fail == 1 ? 1 : 0);
    return run(self, S_GROUP_INSERT);
}

taskq_err_t store_group_get(store_t *self, const taskq_id_t *id, store_group_t *out)
{
    sqlite3_stmt *st = self->st[S_GROUP_GET];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    taskq_err_t err = TASKQ_OK;
    if (rc == SQLITE_ROW) {
        store_group_t g;
        memset(&g, 0, sizeof g);
        g.id = *id;
        g.total = (uint32_t)sqlite3_column_int64(st, 0);
        g.succeeded = (uint32_t)sqlite3_column_int64(st, 1);
        g.failed = (uint32_t)sqlite3_column_int64(st, 2);
        g.has_callback = col_id(st, 3, &g.callback);
        g.on_fail = sqlite3_column_int(st, 4);
        if (out)
            *out = g;
    } else if (rc == SQLITE_DONE) {
        err = TASKQ_ENOTFOUND;
    } else {
        err = fail(self, "group get");
    }
    finish_stmt(st);
    return err;
}

taskq_err_t store_group_member_ended(store_t *self, const taskq_id_t *id, bool ok,
                                     store_group_t *out)
{
    sqlite3_stmt *st = self->st[S_GROUP_END];
    bind_id(st, 1, id);
    sqlite3_bind_int(st, 2, ok ? 1 : 0);
    sqlite3_bind_int(st, 3, ok ? 0 : 1);
    taskq_err_t err = run(self, S_GROUP_END);
    if (err != TASKQ_OK)
        return err;
    bool changed = sqlite3_changes(self->db) > 0;
    err = store_group_get(self, id, out);
    if (err == TASKQ_OK && !changed)
        err = TASKQ_ESTALE; /* every member already counted */
    return err;
}

/* The members of group id (ids, indexes) into l; ENOTFOUND if no group. */
static taskq_err_t group_member_ids(store_t *self, const taskq_id_t *id, idlist_t *l)
{
    taskq_err_t err = store_group_get(self, id, NULL);
    if (err != TASKQ_OK)
        return err;
    sqlite3_stmt *st = self->st[S_GROUP_MEMBERS];
    bind_id(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        taskq_id_t mid;
        if (col_id(st, 1, &mid))
            idlist_add(l, &mid, (uint32_t)sqlite3_column_int64(st, 0));
    }
    err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "group members");
    finish_stmt(st);
    return err;
}

taskq_err_t store_group_members(store_t *self, const taskq_id_t *id, store_member_fn fn, void *arg)
{
    idlist_t l = {0};
    taskq_err_t err = group_member_ids(self, id, &l);
    for (size_t i = 0; err == TASKQ_OK && i < l.n; i++)
        fn(&l.v[i], arg);
    free(l.v);
    return err;
}

/* fn gets borrowed results: it must not change the store while called. */
taskq_err_t store_group_results(store_t *self, const taskq_id_t *id, store_member_fn fn, void *arg)
{
    taskq_err_t err = store_group_get(self, id, NULL);
    if (err != TASKQ_OK)
        return err;
    sqlite3_stmt *st = self->st[S_GROUP_RESULTS];
    bind_id(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_member_t m;
        memset(&m, 0, sizeof m);
        m.index = (uint32_t)sqlite3_column_int64(st, 0);
        if (!col_id(st, 1, &m.id))
            continue;
        m.state = sqlite3_column_int(st, 2);
        if (m.state == TASKQ_STATE_SUCCEEDED)
            m.result = col_bin(st, 3);
        m.error = col_str(st, 4);
        m.code = col_str(st, 5);
        fn(&m, arg);
    }
    err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "group results");
    finish_stmt(st);
    return err;
}

/* ---- dependencies ---- */

taskq_err_t store_children(store_t *self, const taskq_id_t *parent, store_task_fn fn, void *arg)
{
    idlist_t l = {0};
    sqlite3_stmt *st = self->st[S_CHILDREN];
    bind_id(st, 1, parent);
    taskq_err_t err = collect_ids(self, st, &l, 0, "children");
    for (size_t i = 0; err == TASKQ_OK && i < l.n; i++)
        fn(&l.v[i].id, arg);
    free(l.v);
    return err;
}

taskq_err_t store_get_pending(store_t *self, const taskq_id_t *id, store_pending_t *out)
{
    sqlite3_stmt *st = self->st[S_PENDING];
    sqlite3_reset(st); /* ends the previous borrow */
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? TASKQ_ENOTFOUND : fail(self, "get pending");
    }
    memset(out, 0, sizeof *out);
    out->state = sqlite3_column_int(st, 0);
    out->args = col_bin(st, 1);
    out->immutable = sqlite3_column_int(st, 2) != 0;
    out->is_callback = sqlite3_column_int(st, 3) != 0;
    col_id(st, 4, &out->group);
    out->deps_left = (uint32_t)sqlite3_column_int64(st, 5);
    return TASKQ_OK;
}

taskq_err_t store_dep_done(store_t *self, const taskq_id_t *id, proto_bin_t new_args, bool *queued)
{
    if (queued)
        *queued = false;
    sqlite3_stmt *st = self->st[S_FIND_PENDING];
    bind_id(st, 1, id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        finish_stmt(st);
        return rc == SQLITE_DONE ? TASKQ_ENOTFOUND : fail(self, "find pending");
    }
    sqlite3_int64 seq = sqlite3_column_int64(st, 0);
    size_t qi = queue_of_col(self, st, 1);
    int state = sqlite3_column_int(st, 2);
    sqlite3_int64 left = sqlite3_column_int64(st, 3);
    finish_stmt(st);
    if (state != TASKQ_STATE_PENDING)
        return TASKQ_ESTALE;
    left = left > 1 ? left - 1 : 0;
    int to = left == 0 ? TASKQ_STATE_QUEUED : TASKQ_STATE_PENDING;
    st = self->st[S_DEP_DONE];
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int64(st, 2, left);
    sqlite3_bind_int(st, 3, to);
    if (new_args.ptr && new_args.len)
        sqlite3_bind_blob(st, 4, new_args.ptr, (int)new_args.len, SQLITE_STATIC);
    else if (new_args.ptr)
        sqlite3_bind_blob(st, 4, "\x90", 1, SQLITE_STATIC); /* empty = [] */
    else
        sqlite3_bind_null(st, 4);
    taskq_err_t err = run_cas(self, S_DEP_DONE);
    if (err != TASKQ_OK)
        return err;
    if (to == TASKQ_STATE_QUEUED) {
        count_move(self, qi, TASKQ_STATE_PENDING, TASKQ_STATE_QUEUED);
        if (queued)
            *queued = true;
    }
    return TASKQ_OK;
}

/* ---- revoke / fail ---- */

taskq_err_t store_revoke(store_t *self, const taskq_id_t *id, const char *reason, int64_t now,
                         int *prev_state, uint32_t *attempt)
{
    if (attempt)
        *attempt = 0;
    hint_drop(self, id);
    found_t f;
    taskq_err_t err = find_task(self, id, &f, true);
    if (err != TASKQ_OK)
        return err;
    if (prev_state)
        *prev_state = f.state;
    if (is_terminal(f.state))
        return TASKQ_ETERMINAL;
    sqlite3_stmt *st = self->st[S_REVOKE];
    sqlite3_bind_int64(st, 1, f.seq);
    sqlite3_bind_int(st, 2, f.state);
    bind_cstr(st, 3, reason);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, self->result_ttl_ms);
    if ((err = run_cas(self, S_REVOKE)) != TASKQ_OK)
        return err;
    count_move(self, f.q, f.state, TASKQ_STATE_REVOKED);
    if (f.state != TASKQ_STATE_RUNNING)
        return TASKQ_OK;
    /* the running attempt ends here: its history row says so (v5: the
     * live attempt gets its row, as v4 showed it: child_pid 0, no code) */
    if (attempt)
        *attempt = f.attempts;
    if (f.live_attempt == f.attempts) {
        st = self->st[S_ATTEMPT_END];
        sqlite3_bind_int64(st, 1, f.seq);
        sqlite3_bind_int64(st, 2, f.attempts);
        bind_cstr(st, 3, self->worker);
        sqlite3_bind_int(st, 4, 0);
        sqlite3_bind_int64(st, 5, f.started_at);
        sqlite3_bind_int64(st, 6, now);
        bind_cstr(st, 7, "revoked");
        bind_cstr(st, 8, "");
        bind_cstr(st, 9, reason);
        return run(self, S_ATTEMPT_END);
    }
    st = self->st[S_ATTEMPT_REVOKE];
    sqlite3_bind_int64(st, 1, f.seq);
    sqlite3_bind_int64(st, 2, f.attempts);
    sqlite3_bind_int64(st, 3, now);
    bind_cstr(st, 4, reason);
    return run(self, S_ATTEMPT_REVOKE);
}

taskq_err_t store_fail_unrun(store_t *self, const taskq_id_t *id, const char *code,
                             const char *message, int64_t now)
{
    found_t f;
    taskq_err_t err = find_task(self, id, &f, false);
    if (err != TASKQ_OK)
        return err;
    if (f.state != TASKQ_STATE_PENDING && f.state != TASKQ_STATE_QUEUED)
        return TASKQ_ESTALE;
    sqlite3_stmt *st = self->st[S_FAIL_UNRUN];
    sqlite3_bind_int64(st, 1, f.seq);
    sqlite3_bind_int(st, 2, f.state);
    bind_cstr(st, 3, code);
    /* the task's error: the message, else the code (as store_end_attempt) */
    bind_cstr(st, 4, message && *message ? message : code);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, self->failed_ttl_ms);
    if ((err = run_cas(self, S_FAIL_UNRUN)) != TASKQ_OK)
        return err;
    count_move(self, f.q, f.state, TASKQ_STATE_FAILED);
    return TASKQ_OK;
}

/* ---- selections ---- */

/* Appends to a statement text being built (the buffers are sized for the
 * longest text: an overflow is a bug, logged and refused). */
typedef struct {
    char buf[1024];
    size_t len;
    bool overflow;
} sqlbuf_t;

static void sql_add(sqlbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n >= sizeof b->buf) {
        b->overflow = true;
        return;
    }
    memcpy(b->buf + b->len, s, n + 1);
    b->len += n;
}

/* The filter terms of f (parameters ?1 queue, ?2 name, ?3 code, ?4 code
 * prefix length, ?5 since, ?6 group). */
static void sql_filters(sqlbuf_t *b, const store_filter_t *f)
{
    if (f->group)
        sql_add(b, " AND group_id = ?6");
    if (f->queue)
        sql_add(b, " AND queue = ?1");
    if (f->name)
        sql_add(b, " AND name = ?2");
    if (f->code) {
        size_t n = strlen(f->code);
        if (n && f->code[n - 1] == '*')
            sql_add(b, " AND substr(code, 1, ?4) = ?3");
        else
            sql_add(b, " AND code = ?3");
    }
    if (f->since_ms > 0)
        sql_add(b, " AND finished_at >= ?5");
}

static void bind_filters(sqlite3_stmt *st, const store_filter_t *f)
{
    if (f->group)
        bind_id(st, 6, f->group);
    if (f->queue)
        bind_cstr(st, 1, f->queue);
    if (f->name)
        bind_cstr(st, 2, f->name);
    if (f->code) {
        size_t n = strlen(f->code);
        if (n && f->code[n - 1] == '*') {
            sqlite3_bind_text(st, 3, f->code, (int)(n - 1), SQLITE_STATIC);
            sqlite3_bind_int64(st, 4, (sqlite3_int64)(n - 1));
        } else {
            bind_cstr(st, 3, f->code);
        }
    }
    if (f->since_ms > 0)
        sqlite3_bind_int64(st, 5, f->since_ms);
}

/* Prepares the text of b (not a hot path: prepared per call). */
static sqlite3_stmt *sql_prepare(store_t *self, const sqlbuf_t *b)
{
    if (b->overflow) {
        tlog_error("store: statement too long");
        return NULL;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(self->db, b->buf, -1, &st, NULL) != SQLITE_OK) {
        fail(self, b->buf);
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

/* "SELECT id FROM tasks WHERE" + a term that finds one state through a
 * partial index: tasks_ready (0), tasks_running (1), tasks_due (4, 5),
 * tasks_purge (terminal); pending tasks (8) are children (tasks_children)
 * or chord callbacks (tasks_group): a union of the two. Filter terms
 * follow. */
static void sql_state(sqlbuf_t *b, int state)
{
    char t[240];
    if (state == TASKQ_STATE_PENDING)
        snprintf(t, sizeof t,
                 "SELECT id FROM tasks WHERE seq IN (SELECT seq FROM tasks"
                 " WHERE parent_id IS NOT NULL AND state = 8 UNION SELECT seq FROM tasks"
                 " WHERE group_id IS NOT NULL AND is_callback = 1 AND state = 8)");
    else if (state == TASKQ_STATE_SCHEDULED || state == TASKQ_STATE_RETRYING)
        snprintf(t, sizeof t, "SELECT id FROM tasks WHERE " STATE_DUE " AND state = %d", state);
    else if (is_terminal(state))
        snprintf(t, sizeof t, "SELECT id FROM tasks WHERE " STATE_TERMINAL " AND state = %d",
                 state);
    else
        snprintf(t, sizeof t, "SELECT id FROM tasks WHERE state = %d", state);
    sql_add(b, t);
}

#define STATES_ALL ((1u << TASKQ_NSTATES) - 1)
#define STATES_LIVE                                                                                \
    ((1u << TASKQ_STATE_QUEUED) | (1u << TASKQ_STATE_RUNNING) | (1u << TASKQ_STATE_SCHEDULED) |    \
     (1u << TASKQ_STATE_RETRYING) | (1u << TASKQ_STATE_PENDING))

taskq_err_t store_select(store_t *self, const store_filter_t *f, bool terminal_ok, store_task_fn fn,
                         void *arg)
{
    unsigned states = (f->states ? f->states : terminal_ok ? STATES_ALL : STATES_LIVE) & STATES_ALL;
    idlist_t l = {0};
    taskq_err_t err = TASKQ_OK;
    if (f->group) {
        /* one seek in tasks_group; the states filter the group's rows */
        sqlbuf_t b = {.len = 0};
        sql_add(&b, "SELECT id FROM tasks WHERE ((?7 >> state) & 1) = 1");
        sql_filters(&b, f);
        sql_add(&b, " ORDER BY is_callback, group_index");
        sqlite3_stmt *st = sql_prepare(self, &b);
        if (!st)
            return TASKQ_ESTORE;
        bind_filters(st, f);
        sqlite3_bind_int64(st, 7, states);
        err = collect_ids(self, st, &l, f->limit, "select");
        sqlite3_finalize(st);
    } else {
        /* state by state, each through its partial index */
        for (int s = 0; s < TASKQ_NSTATES && err == TASKQ_OK; s++) {
            if (!(states & (1u << s)) || (f->limit && l.n >= f->limit))
                continue;
            sqlbuf_t b = {.len = 0};
            sql_state(&b, s);
            sql_filters(&b, f);
            sqlite3_stmt *st = sql_prepare(self, &b);
            if (!st) {
                err = TASKQ_ESTORE;
                break;
            }
            bind_filters(st, f);
            err = collect_ids(self, st, &l, f->limit, "select");
            sqlite3_finalize(st);
        }
    }
    for (size_t i = 0; err == TASKQ_OK && i < l.n; i++)
        fn(&l.v[i].id, arg);
    free(l.v);
    return err;
}

taskq_err_t store_list_failed(store_t *self, const store_filter_t *f, store_rec_fn fn, void *arg)
{
    sqlbuf_t b = {.len = 0};
    /* newest first: tasks_purge backwards over the failed range (its rows
     * end in seq). A failed task's purge_at is finished_at + the failed
     * TTL: the order is by end time while --failed-ttl is unchanged, and
     * costs O(rows listed), not a sort of the dead-letter set. */
    sql_add(&b, "SELECT " REC_COLS ", id FROM tasks WHERE " STATE_TERMINAL " AND state = 3");
    sql_filters(&b, f);
    sql_add(&b, " ORDER BY purge_at DESC, seq DESC");
    if (f->limit)
        sql_add(&b, " LIMIT ?7");
    sqlite3_stmt *st = sql_prepare(self, &b);
    if (!st)
        return TASKQ_ESTORE;
    bind_filters(st, f);
    if (f->limit)
        sqlite3_bind_int64(st, 7, sql_limit(f->limit));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        proto_task_rec_t rec;
        rec_fill(st, &rec);
        if (!col_id(st, REC_NCOLS, &rec.id))
            continue;
        fn(&rec, arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "list failed");
    sqlite3_finalize(st);
    return err;
}

/* ---- rerun ---- */

taskq_err_t store_rerun(store_t *self, const taskq_id_t *old, const taskq_id_t *new_id, int64_t now)
{
    sqlite3_stmt *st = self->st[S_RERUN_FIND];
    bind_id(st, 1, old);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        finish_stmt(st);
        return rc == SQLITE_DONE ? TASKQ_ENOTFOUND : fail(self, "rerun find");
    }
    sqlite3_int64 seq = sqlite3_column_int64(st, 0);
    int state = sqlite3_column_int(st, 1);
    bool rerun = sqlite3_column_int(st, 2) != 0;
    size_t qi = queue_of_col(self, st, 3);
    finish_stmt(st);
    if (state != TASKQ_STATE_FAILED)
        return TASKQ_ETERMINAL;
    if (rerun)
        return TASKQ_EEXIST;
    st = self->st[S_RERUN_INSERT];
    sqlite3_bind_int64(st, 1, seq);
    bind_id(st, 2, new_id);
    sqlite3_bind_int64(st, 3, now);
    taskq_err_t err = run(self, S_RERUN_INSERT);
    if (err != TASKQ_OK)
        return err;
    if (sqlite3_changes(self->db) == 0)
        return TASKQ_EEXIST; /* new_id is taken */
    count_move(self, qi, -1, TASKQ_STATE_QUEUED);
    st = self->st[S_RERUN_LINK];
    sqlite3_bind_int64(st, 1, seq);
    bind_id(st, 2, new_id);
    return run_cas(self, S_RERUN_LINK);
}

/* ---- unique keys ---- */

taskq_err_t store_unique_get(store_t *self, const char *key, store_unique_t *out)
{
    sqlite3_stmt *st = self->st[S_UNIQUE_GET];
    bind_cstr(st, 1, key);
    int rc = sqlite3_step(st);
    taskq_err_t err = TASKQ_OK;
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        col_id(st, 0, &out->holder);
        out->released = sqlite3_column_int(st, 1) != 0;
        out->hold_until = sqlite3_column_int64(st, 2);
    } else if (rc == SQLITE_DONE) {
        err = TASKQ_ENOTFOUND;
    } else {
        err = fail(self, "unique get");
    }
    finish_stmt(st);
    return err;
}

taskq_err_t store_unique_put(store_t *self, const char *key, const taskq_id_t *holder,
                             int64_t hold_until)
{
    sqlite3_stmt *st = self->st[S_UNIQUE_PUT];
    bind_cstr(st, 1, key);
    bind_id(st, 2, holder);
    sqlite3_bind_int64(st, 3, hold_until > 0 ? hold_until : 0);
    taskq_err_t err = run(self, S_UNIQUE_PUT);
    if (err == TASKQ_OK)
        self->has_unique = true;
    return err;
}

taskq_err_t store_unique_release(store_t *self, const taskq_id_t *holder, int until)
{
    if (!self->has_unique)
        return TASKQ_OK; /* no key was ever taken: nothing to look up */
    sqlite3_stmt *st = self->st[S_UNIQUE_RELEASE];
    bind_id(st, 1, holder);
    sqlite3_bind_int(st, 2, until);
    return run(self, S_UNIQUE_RELEASE);
}

/* ---- queues --------------------------------------------------------------- */

taskq_err_t store_queue_ensure(store_t *self, const char *name, bool *created)
{
    if (created)
        *created = false;
    size_t qi = queue_find(self, name, strlen(name), true);
    if (self->q[qi].has_row)
        return TASKQ_OK;
    sqlite3_stmt *st = self->st[S_QUEUE_ENSURE];
    bind_cstr(st, 1, name);
    taskq_err_t err = run(self, S_QUEUE_ENSURE);
    if (err != TASKQ_OK)
        return err;
    if (created)
        *created = sqlite3_changes(self->db) > 0;
    set_has_row(self, qi);
    return TASKQ_OK;
}

taskq_err_t store_queue_set(store_t *self, const store_queue_t *q)
{
    sqlite3_stmt *st = self->st[S_QUEUE_SET];
    bind_cstr(st, 1, q->name);
    sqlite3_bind_int(st, 2, q->paused ? 1 : 0);
    sqlite3_bind_int64(st, 3,
                       q->max_pending > INT64_MAX ? INT64_MAX : (sqlite3_int64)q->max_pending);
    taskq_err_t err = run(self, S_QUEUE_SET);
    if (err == TASKQ_OK)
        set_has_row(self, queue_find(self, q->name, strlen(q->name), true));
    return err;
}

taskq_err_t store_queue_list(store_t *self, store_queue_fn fn, void *arg)
{
    sqlite3_stmt *st = self->st[S_QUEUE_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_queue_t q;
        q.name = col_cstr(st, 0);
        q.paused = sqlite3_column_int(st, 1) != 0;
        sqlite3_int64 mp = sqlite3_column_int64(st, 2);
        q.max_pending = mp > 0 ? (uint64_t)mp : 0;
        fn(&q, arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "queue list");
    sqlite3_reset(st);
    return err;
}

/* ---- limits ---------------------------------------------------------------- */

taskq_err_t store_limit_put(store_t *self, const store_limit_t *l)
{
    sqlite3_stmt *st = self->st[S_LIMIT_PUT];
    bind_cstr(st, 1, l->key);
    sqlite3_bind_double(st, 2, l->rate);
    sqlite3_bind_int64(st, 3, l->burst);
    sqlite3_bind_int64(st, 4, l->max_running);
    sqlite3_bind_double(st, 5, l->tokens);
    sqlite3_bind_int64(st, 6, l->tokens_at);
    sqlite3_bind_int64(st, 7, l->paused_until);
    return run(self, S_LIMIT_PUT);
}

taskq_err_t store_limit_rm(store_t *self, const char *key)
{
    bind_cstr(self->st[S_LIMIT_RM], 1, key);
    return run_one(self, S_LIMIT_RM, TASKQ_ENOTFOUND);
}

taskq_err_t store_limit_list(store_t *self, store_limit_fn fn, void *arg)
{
    sqlite3_stmt *st = self->st[S_LIMIT_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_limit_t l;
        l.key = col_cstr(st, 0);
        l.rate = sqlite3_column_double(st, 1);
        l.burst = (uint32_t)sqlite3_column_int64(st, 2);
        l.max_running = (uint32_t)sqlite3_column_int64(st, 3);
        l.tokens = sqlite3_column_double(st, 4);
        l.tokens_at = sqlite3_column_int64(st, 5);
        l.paused_until = sqlite3_column_int64(st, 6);
        fn(&l, arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "limit list");
    sqlite3_reset(st);
    return err;
}

taskq_err_t store_limit_save_bucket(store_t *self, const char *key, double tokens,
                                    int64_t tokens_at, int64_t paused_until)
{
    sqlite3_stmt *st = self->st[S_LIMIT_BUCKET];
    bind_cstr(st, 1, key);
    sqlite3_bind_double(st, 2, tokens);
    sqlite3_bind_int64(st, 3, tokens_at);
    sqlite3_bind_int64(st, 4, paused_until);
    return run_one(self, S_LIMIT_BUCKET, TASKQ_ENOTFOUND);
}

/* ---- schedules ------------------------------------------------------------ */

taskq_err_t store_schedule_put(store_t *self, const store_schedule_t *s, bool replace)
{
    int which = replace ? S_SCHED_REPLACE : S_SCHED_INSERT;
    sqlite3_stmt *st = self->st[which];
    bind_cstr(st, 1, s->name);
    bind_cstr(st, 2, s->cron);
    bind_cstr(st, 3, s->task);
    if (s->args.len)
        sqlite3_bind_blob(st, 4, s->args.ptr, (int)s->args.len, SQLITE_STATIC);
    else
        sqlite3_bind_blob(st, 4, "\x90", 1, SQLITE_STATIC); /* empty = [] */
    bind_cstr(st, 5, s->queue);
    sqlite3_bind_int(st, 6, s->priority);
    bind_cstr(st, 7, s->tz);
    sqlite3_bind_int64(st, 8, s->max_attempts);
    sqlite3_bind_int(st, 9, s->overlap);
    sqlite3_bind_int(st, 10, s->catchup);
    sqlite3_bind_int(st, 11, s->paused ? 1 : 0);
    sqlite3_bind_int64(st, 12, s->next_at);
    sqlite3_bind_int64(st, 13, s->last_fire_at);
    if (id_is_zero(&s->last_task_id))
        sqlite3_bind_null(st, 14);
    else
        bind_id(st, 14, &s->last_task_id);
    sqlite3_bind_int64(st, 15, (sqlite3_int64)s->fires);
    sqlite3_bind_int64(st, 16, (sqlite3_int64)s->skipped);
    sqlite3_bind_int64(st, 17, s->created_at);
    taskq_err_t err = run(self, which);
    if (err == TASKQ_OK && !replace && sqlite3_changes(self->db) == 0)
        err = TASKQ_EEXIST;
    return err;
}

taskq_err_t store_schedule_rm(store_t *self, const char *name)
{
    bind_cstr(self->st[S_SCHED_RM], 1, name);
    return run_one(self, S_SCHED_RM, TASKQ_ENOTFOUND);
}

taskq_err_t store_schedule_set_paused(store_t *self, const char *name, bool paused)
{
    sqlite3_stmt *st = self->st[S_SCHED_PAUSE];
    bind_cstr(st, 1, name);
    sqlite3_bind_int(st, 2, paused ? 1 : 0);
    return run_one(self, S_SCHED_PAUSE, TASKQ_ENOTFOUND);
}

taskq_err_t store_schedule_list(store_t *self, store_schedule_fn fn, void *arg)
{
    sqlite3_stmt *st = self->st[S_SCHED_LIST];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_schedule_t s;
        memset(&s, 0, sizeof s);
        s.name = col_cstr(st, 0);
        s.cron = col_cstr(st, 1);
        s.task = col_cstr(st, 2);
        s.args = col_bin(st, 3);
        s.queue = col_cstr(st, 4);
        s.priority = sqlite3_column_int(st, 5);
        s.tz = col_cstr(st, 6);
        s.max_attempts = (uint32_t)sqlite3_column_int64(st, 7);
        s.overlap = sqlite3_column_int(st, 8);
        s.catchup = sqlite3_column_int(st, 9);
        s.paused = sqlite3_column_int(st, 10) != 0;
        s.next_at = sqlite3_column_int64(st, 11);
        s.last_fire_at = sqlite3_column_int64(st, 12);
        col_id(st, 13, &s.last_task_id);
        s.fires = (uint64_t)sqlite3_column_int64(st, 14);
        s.skipped = (uint64_t)sqlite3_column_int64(st, 15);
        s.created_at = sqlite3_column_int64(st, 16);
        fn(&s, arg);
    }
    taskq_err_t err = rc == SQLITE_DONE ? TASKQ_OK : fail(self, "schedule list");
    sqlite3_reset(st);
    return err;
}

taskq_err_t store_schedule_advance(store_t *self, const char *name, int64_t next_at,
                                   int64_t last_fire_at, const taskq_id_t *last_task_id,
                                   uint64_t add_fires, uint64_t add_skipped)
{
    sqlite3_stmt *st = self->st[S_SCHED_ADVANCE];
    bind_cstr(st, 1, name);
    sqlite3_bind_int64(st, 2, next_at);
    sqlite3_bind_int64(st, 3, last_fire_at);
    if (last_task_id && !id_is_zero(last_task_id))
        bind_id(st, 4, last_task_id);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)add_fires);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)add_skipped);
    return run_one(self, S_SCHED_ADVANCE, TASKQ_ENOTFOUND);
}
