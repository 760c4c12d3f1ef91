/* test_checker.c - the checker must catch each rule's violation, and only
 * that one: synthetic histories (one file per role and pid, as thist writes
 * them) and a synthetic database with the broker's table layout. */
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

#include "checker.h"
#include "thist.h"

/* the broker's tasks table (broker/store_sqlite.c, schema version 1) */
static const char *const SCHEMA =
    "CREATE TABLE tasks (seq INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, name TEXT NOT NULL,"
    " args BLOB, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " max_attempts INTEGER NOT NULL, time_limit_ms INTEGER NOT NULL DEFAULT 0,"
    " worker TEXT NOT NULL DEFAULT '', child_pid INTEGER NOT NULL DEFAULT 0,"
    " submitted_at INTEGER NOT NULL, started_at INTEGER NOT NULL DEFAULT 0,"
    " finished_at INTEGER NOT NULL DEFAULT 0, progress_current INTEGER NOT NULL DEFAULT 0,"
    " progress_total INTEGER NOT NULL DEFAULT 0, progress_message TEXT NOT NULL DEFAULT '',"
    " result BLOB, error TEXT NOT NULL DEFAULT '', lease_deadline INTEGER NOT NULL DEFAULT 0)";

typedef struct {
    char dir[64];
    char db[96];
    sqlite3 *sql;
    int64_t t;
} fx_t;

static const uint8_t RESULT[] = {0x92, 0x01, 0x02}; /* [1, 2] */
static char HASH[17];

static const char *ID(int n)
{
    static char buf[8][37];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, 37, "01938a6e-7b2c-7d00-8000-0000000000%02d", n);
    return b;
}

static int setup(void **state)
{
    fx_t *x = calloc(1, sizeof *x);
    strcpy(x->dir, "/tmp/test_checker-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(x->db, sizeof x->db, "%s/taskq.db", x->dir);
    assert_int_equal(sqlite3_open(x->db, &x->sql), SQLITE_OK);
    assert_int_equal(sqlite3_exec(x->sql, SCHEMA, NULL, NULL, NULL), SQLITE_OK);
    x->t = 1700000000000000;
    snprintf(HASH, sizeof HASH, "%016llx",
             (unsigned long long)thist_result_hash(RESULT, sizeof RESULT));
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx_t *x = *state;
    sqlite3_close(x->sql);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", x->dir);
    free(x);
    return 0;
}

/* Appends one event line to DIR/role.pid.hist, 1 ms after the previous one. */
static void ev(fx_t *x, const char *role, int pid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ev(fx_t *x, const char *role, int pid, const char *fmt, ...)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.%d.hist", x->dir, role, pid);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    x->t += 1000;
    fprintf(f, "%lld %s %d ", (long long)x->t, role, pid);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fclose(f);
}

static void row(fx_t *x, const char *id, int state, int attempts, const void *result, int rlen)
{
    uint8_t b[16];
    for (int i = 0, j = 0; i < 16; j++) {
        if (id[j] == '-')
            continue;
        unsigned v;
        assert_int_equal(sscanf(id + j, "%2x", &v), 1);
        b[i++] = (uint8_t)v;
        j++;
    }
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(x->sql,
                                        "INSERT INTO tasks (id, name, args, state, attempts,"
                                        " max_attempts, submitted_at, result)"
                                        " VALUES (?1, 'test.square', x'9103', ?2, ?3, 3, 1, ?4)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_blob(st, 1, b, 16, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, state);
    sqlite3_bind_int(st, 3, attempts);
    if (result)
        sqlite3_bind_blob(st, 4, result, rlen, SQLITE_TRANSIENT);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
}

/* The clean life of one task: submitted, run once by child cpid, succeeded. */
static void clean_task(fx_t *x, const char *id, int cpid)
{
    ev(x, "client", 10, "submit_invoke %s", id);
    ev(x, "broker", 20, "accept %s", id);
    ev(x, "client", 10, "submit_ack %s", id);
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", id);
    ev(x, "child", cpid, "exec_start %s 1", id);
    ev(x, "child", cpid, "exec_end %s 1 1 %s", id, HASH);
    ev(x, "broker", 20, "terminal %s 1 succeeded %s", id, HASH);
    row(x, id, 2, 1, RESULT, sizeof RESULT);
}

static checker_summary_t run(fx_t *x, bool (*verify)(const char *, const void *, size_t,
                                                     const void *, size_t, void *))
{
    checker_t *c = checker_new();
    assert_non_null(c);
    assert_int_equal(checker_load_dir(c, x->dir), TASKQ_OK);
    assert_int_equal(checker_load_db(c, x->db), TASKQ_OK);
    if (verify)
        checker_set_verifier(c, verify, NULL);
    checker_summary_t s;
    int n = checker_run(c, stdout, &s);
    assert_int_equal((size_t)n, s.lost + s.unexpected + s.multi_terminal + s.stale_accepted +
                                    s.overlap + s.dup_unexplained + s.mismatch);
    checker_destroy(&c);
    assert_null(c);
    return s;
}

/* Exactly one violation, and it is of kind `field`. */
#define ASSERT_ONLY(s, field)                                                           \
    do {                                                                                \
        size_t all_ = (s).lost + (s).unexpected + (s).multi_terminal + (s).stale_accepted + \
                      (s).overlap + (s).dup_unexplained + (s).mismatch;                 \
        assert_int_equal((s).field, 1);                                                 \
        assert_int_equal(all_, 1);                                                      \
    } while (0)

static void test_checker_passes_a_clean_history(void **state)
{
    fx_t *x = *state;
    ev(x, "broker", 20, "start broker-a");
    ev(x, "worker", 30, "hello it-1");
    for (int i = 1; i <= 3; i++)
        clean_task(x, ID(i), 100 + i);
    ev(x, "worker", 30, "done_sent %s 1", ID(1));
    ev(x, "worker", 30, "done_acked %s 1 OK", ID(1));
    ev(x, "broker", 20, "stale %s 1", ID(2)); /* a refused DONE is counted, not failed */
    ev(x, "broker", 20, "stop");
    checker_summary_t s = run(x, NULL);
    assert_int_equal(s.submitted, 3);
    assert_int_equal(s.acked, 3);
    assert_int_equal(s.terminal, 3);
    assert_int_equal(s.stale_rejected, 1);
    assert_int_equal(s.dup_explained, 0);
    assert_int_equal(s.lost + s.unexpected + s.multi_terminal + s.stale_accepted + s.overlap +
                         s.dup_unexplained + s.mismatch,
                     0);
}

/* A crash_until-style retry: child 201 dies, attempt 2 runs elsewhere. */
static void retried_task(fx_t *x, const char *id, const char *fault)
{
    ev(x, "client", 10, "submit_invoke %s", id);
    ev(x, "broker", 20, "accept %s", id);
    ev(x, "client", 10, "submit_ack %s", id);
    ev(x, "worker", 30, "hello it-1");
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", id);
    ev(x, "child", 201, "exec_start %s 1", id);
    if (fault)
        ev(x, "fault", 5, "%s", fault);
    ev(x, "broker", 20, "requeue %s 1 lease_expired", id);
    ev(x, "broker", 20, "dispatch %s 2 it-1 10000", id);
    ev(x, "child", 202, "exec_start %s 2", id);
    ev(x, "child", 202, "exec_end %s 2 1 %s", id, HASH);
    ev(x, "broker", 20, "terminal %s 2 succeeded %s", id, HASH);
    row(x, id, 2, 2, RESULT, sizeof RESULT);
}

static void test_checker_counts_explained_duplicates(void **state)
{
    fx_t *x = *state;
    /* child_died names the earlier child */
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "client", 10, "submit_ack %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "child", 301, "exec_start %s 1", ID(1));
    ev(x, "worker", 30, "child_died 301 sig11 %s 1", ID(1));
    ev(x, "broker", 20, "requeue %s 1 child_died", ID(1));
    ev(x, "broker", 20, "dispatch %s 2 it-1 10000", ID(1));
    ev(x, "child", 302, "exec_start %s 2", ID(1));
    ev(x, "child", 302, "exec_end %s 2 1 %s", ID(1), HASH);
    ev(x, "broker", 20, "terminal %s 2 succeeded %s", ID(1), HASH);
    row(x, ID(1), 2, 2, RESULT, sizeof RESULT);
    /* fault kill_child, kill_node by node id and by supervisor pid, kill_broker */
    retried_task(x, ID(2), "fault kill_child 201");
    retried_task(x, ID(3), "fault kill_node it-1");
    retried_task(x, ID(4), "fault stop_node 30");
    retried_task(x, ID(5), "fault kill_broker 20");
    checker_summary_t s = run(x, NULL);
    assert_int_equal(s.dup_explained, 5);
    assert_int_equal(s.lost + s.unexpected + s.multi_terminal + s.stale_accepted + s.overlap +
                         s.dup_unexplained + s.mismatch,
                     0);
}

static void test_checker_catches_lost(void **state)
{
    fx_t *x = *state;
    clean_task(x, ID(1), 101);
    ev(x, "client", 10, "submit_invoke %s", ID(2));
    ev(x, "client", 10, "submit_ack %s", ID(2));
    row(x, ID(2), 0, 0, NULL, 0); /* still queued after the drain */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, lost);
}

static void test_checker_catches_lost_row(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(2));
    ev(x, "client", 10, "submit_ack %s", ID(2)); /* acked, no row at all */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, lost);
    assert_int_equal(s.submitted, 1);
}

static void test_checker_catches_unexpected(void **state)
{
    fx_t *x = *state;
    clean_task(x, ID(1), 101);
    row(x, ID(9), 0, 0, NULL, 0); /* nobody submitted it */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, unexpected);
}

static void test_checker_catches_multi_terminal(void **state)
{
    fx_t *x = *state;
    clean_task(x, ID(1), 101);
    ev(x, "broker", 21, "terminal %s 1 succeeded %s", ID(1), HASH); /* a restarted broker */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, multi_terminal);
}

static void test_checker_catches_db_terminal_disagreement(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "broker", 20, "terminal %s 1 failed 0000000000000000", ID(1));
    row(x, ID(1), 2, 1, RESULT, sizeof RESULT); /* DB says succeeded */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, multi_terminal);
}

static void test_checker_catches_stale_accepted(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "broker", 20, "requeue %s 1 node_lost", ID(1));
    ev(x, "broker", 20, "dispatch %s 2 it-2 10000", ID(1));
    ev(x, "broker", 20, "terminal %s 1 succeeded %s", ID(1), HASH); /* the old attempt won */
    row(x, ID(1), 2, 1, RESULT, sizeof RESULT);
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, stale_accepted);
}

static void test_checker_catches_terminal_never_dispatched(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "broker", 20, "terminal %s 4 failed 0000000000000000", ID(1));
    row(x, ID(1), 3, 4, NULL, 0);
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, stale_accepted);
}

static void test_checker_catches_overlap(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "broker", 20, "dispatch %s 2 it-2 10000", ID(1)); /* no requeue of 1 */
    ev(x, "broker", 20, "terminal %s 2 succeeded %s", ID(1), HASH);
    row(x, ID(1), 2, 2, RESULT, sizeof RESULT);
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, overlap);
}

static void test_checker_catches_same_attempt_twice(void **state)
{
    fx_t *x = *state;
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "child", 401, "exec_start %s 1", ID(1));
    ev(x, "worker", 30, "child_died 401 sig9 %s 1", ID(1)); /* explains the duplicate ... */
    ev(x, "child", 402, "exec_start %s 1", ID(1));          /* ... not the same attempt */
    ev(x, "child", 402, "exec_end %s 1 1 %s", ID(1), HASH);
    ev(x, "broker", 20, "terminal %s 1 succeeded %s", ID(1), HASH);
    row(x, ID(1), 2, 1, RESULT, sizeof RESULT);
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, overlap);
    assert_int_equal(s.dup_explained, 1);
}

static void test_checker_catches_unexplained_duplicate(void **state)
{
    fx_t *x = *state;
    retried_task(x, ID(1), NULL); /* lease expired, no fault anywhere */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, dup_unexplained);
    assert_int_equal(s.dup_explained, 0);
}

static void test_checker_rejects_faults_that_do_not_explain(void **state)
{
    fx_t *x = *state;
    /* another child, another node: not this execution's */
    retried_task(x, ID(1), "fault kill_child 999");
    retried_task(x, ID(2), "fault kill_node it-7");
    /* a kill_broker before the execution started */
    ev(x, "fault", 5, "fault kill_broker 20");
    retried_task(x, ID(3), NULL);
    checker_summary_t s = run(x, NULL);
    assert_int_equal(s.dup_unexplained, 3);
    assert_int_equal(s.dup_explained, 0);
    assert_int_equal(s.lost + s.unexpected + s.multi_terminal + s.stale_accepted + s.overlap +
                         s.mismatch,
                     0);
}

static void test_checker_catches_result_mismatch(void **state)
{
    fx_t *x = *state;
    static const uint8_t other[] = {0x92, 0x01, 0x03};
    ev(x, "client", 10, "submit_invoke %s", ID(1));
    ev(x, "broker", 20, "dispatch %s 1 it-1 10000", ID(1));
    ev(x, "child", 101, "exec_start %s 1", ID(1));
    ev(x, "child", 101, "exec_end %s 1 1 %s", ID(1), HASH);
    ev(x, "broker", 20, "terminal %s 1 succeeded %s", ID(1), HASH);
    row(x, ID(1), 2, 1, other, sizeof other); /* stored bytes differ */
    checker_summary_t s = run(x, NULL);
    ASSERT_ONLY(s, mismatch);
}

static bool verify_never(const char *name, const void *args, size_t args_len, const void *result,
                         size_t result_len, void *arg)
{
    return strcmp(name, "test.square") != 0;
}

static void test_checker_uses_the_verifier(void **state)
{
    fx_t *x = *state;
    clean_task(x, ID(1), 101);
    checker_summary_t s = run(x, verify_never);
    ASSERT_ONLY(s, mismatch);
}

static void test_checker_counts_malformed_lines(void **state)
{
    fx_t *x = *state;
    clean_task(x, ID(1), 101);
    char path[128];
    snprintf(path, sizeof path, "%s/broker.20.hist", x->dir);
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fputs("garbage\n1700000000000000 broker 20 dispatch not-an-id 1 it-1 10\n", f);
    fclose(f);
    checker_summary_t s = run(x, NULL);
    assert_int_equal(s.malformed, 2);
    assert_int_equal(s.lost + s.unexpected + s.multi_terminal + s.stale_accepted + s.overlap +
                         s.dup_unexplained + s.mismatch,
                     0);
}

static void test_thist_hash_is_fnv1a(void **state)
{
    (void)state;
    /* FNV-1a 64 reference values */
    assert_true(thist_fnv64("", 0) == 0xcbf29ce484222325ULL);
    assert_true(thist_fnv64("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_true(thist_result_hash(NULL, 0) == thist_fnv64("\xc0", 1));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_checker_passes_a_clean_history),
        T(test_checker_counts_explained_duplicates),
        T(test_checker_catches_lost),
        T(test_checker_catches_lost_row),
        T(test_checker_catches_unexpected),
        T(test_checker_catches_multi_terminal),
        T(test_checker_catches_db_terminal_disagreement),
        T(test_checker_catches_stale_accepted),
        T(test_checker_catches_terminal_never_dispatched),
        T(test_checker_catches_overlap),
        T(test_checker_catches_same_attempt_twice),
        T(test_checker_catches_unexplained_duplicate),
        T(test_checker_rejects_faults_that_do_not_explain),
        T(test_checker_catches_result_mismatch),
        T(test_checker_uses_the_verifier),
        T(test_checker_counts_malformed_lines),
        T(test_thist_hash_is_fnv1a),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
