/* it_fault_broker_kill: kill -9 the broker several times under load (3
 * submitting clients, each its own handle in its own thread, plus 2 worker
 * nodes) and restart it on the same port and db. After each kill, before the
 * restart, the db passes PRAGMA integrity_check (opened read-only); the
 * restarted broker serves again within 1 s (restart -> `ready` line and ->
 * first successful STATUS, printed). libtaskq resends unacknowledged SUBMITs
 * with the same ids: at the end every task exists exactly once (no row
 * beyond the submitted ids) and succeeded with its result; checker clean. */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fault_util.h"

#define NCLIENTS 3
#define CHUNK 250

static long N;
static taskq_task_spec_t *specs;
static uint8_t (*args)[16];
static taskq_err_t *codes;
static taskq_id_t *ids;
static const char *g_ep;

typedef struct {
    long from, to;
    taskq_err_t rc;
    long failed_at;
} client_arg_t;

static void *client_main(void *p)
{
    client_arg_t *a = p;
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(g_ep, &err);
    if (!c) {
        a->rc = err;
        return NULL;
    }
    /* long enough to ride out a kill + restart */
    taskq_client_set_timeout(c, 30000);
    a->rc = TASKQ_OK;
    for (long i = a->from; i < a->to && a->rc == TASKQ_OK; i += CHUNK) {
        long n = a->to - i < CHUNK ? a->to - i : CHUNK;
        a->rc = taskq_submit_batch(c, specs + i, (size_t)n, codes + i);
        if (a->rc != TASKQ_OK)
            a->failed_at = i;
    }
    taskq_client_destroy(&c);
    return NULL;
}

static void integrity_check(const char *db)
{
    sqlite3 *s = NULL;
    int rc = sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL);
    H_ASSERT(rc == SQLITE_OK, "open %s read-only: %s", db, s ? sqlite3_errmsg(s) : "?");
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s, "PRAGMA integrity_check", -1, &st, NULL);
    H_ASSERT(rc == SQLITE_OK, "prepare integrity_check: %s", sqlite3_errmsg(s));
    rc = sqlite3_step(st);
    H_ASSERT(rc == SQLITE_ROW, "integrity_check: %s", sqlite3_errmsg(s));
    const char *r = (const char *)sqlite3_column_text(st, 0);
    H_ASSERT(r && strcmp(r, "ok") == 0, "PRAGMA integrity_check after kill: %s",
             r ? r : "(null)");
    sqlite3_finalize(st);
    sqlite3_close(s);
}

static int index_of(const taskq_id_t *id)
{
    for (long i = 0; i < N; i++)
        if (memcmp(ids[i].b, id->b, 16) == 0)
            return (int)i;
    return -1;
}

static int on_done(const taskq_task_t *t, void *arg)
{
    long *n = arg;
    int i = index_of(&t->id);
    H_ASSERT(i >= 0, "unknown id %s", h_id_str(&t->id));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %d ended %s: '%s' attempts=%u", i,
             taskq_state_name(t->state), t->error, t->attempts);
    int64_t got = 0;
    H_ASSERT(h_result_int(t->result, t->result_len, &got) && got == (int64_t)i * i,
             "task %d: wrong result", i);
    (*n)++;
    return 0;
}

static void sleep_ms(long ms)
{
    /* the interval between faults, not synchronisation */
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(280);
    h_history_enable();
    /* a third of the tasks under sanitizers (CI size only); the kills are
     * cheap and stay 3 */
    N = h_scale(h_sanitized() ? 1666 : 5000, 20000);
    int nkills = (int)h_scale(3, 8);
    specs = calloc((size_t)N, sizeof *specs);
    args = calloc((size_t)N, sizeof *args);
    codes = calloc((size_t)N, sizeof *codes);
    ids = calloc((size_t)N, sizeof *ids);
    H_ASSERT(specs && args && codes && ids, "out of memory");
    for (long i = 0; i < N; i++) {
        specs[i].name = "test.square";
        specs[i].args = args[i];
        specs[i].args_len = h_args_int(args[i], sizeof args[i], i);
        taskq_id_generate(&specs[i].id);
        ids[i] = specs[i].id;
        codes[i] = TASKQ_EINTERNAL;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    h_broker_t *b = h_broker_start(NULL);
    g_ep = h_broker_endpoint(b);
    h_worker_t *w1 = h_worker_start(g_ep, 2);
    h_worker_t *w2 = h_worker_start(g_ep, 2);
    taskq_client_t *c = h_client(g_ep, 30000);
    h_worker_wait_ready(c, h_worker_node_id(w1), 2, 20000);
    h_worker_wait_ready(c, h_worker_node_id(w2), 2, 20000);

    pthread_t th[NCLIENTS];
    client_arg_t ca[NCLIENTS];
    for (int k = 0; k < NCLIENTS; k++) {
        ca[k].from = N * k / NCLIENTS;
        ca[k].to = N * (k + 1) / NCLIENTS;
        ca[k].rc = TASKQ_EINTERNAL;
        ca[k].failed_at = -1;
        H_ASSERT(pthread_create(&th[k], NULL, client_main, &ca[k]) == 0, "pthread_create");
    }

    int64_t worst_ready = 0, worst_status = 0;
    for (int k = 0; k < nkills; k++) {
        sleep_ms(300 + rand() % 1200);
        h_broker_kill(b, SIGKILL);
        integrity_check(h_broker_db(b));
        int64_t t0 = h_now_ms();
        h_broker_restart(b);
        int64_t ready_ms = h_broker_ready_at(b) - t0;
        /* a fresh handle: its first STATUS that gets an answer */
        taskq_client_t *probe = h_client(g_ep, 2000);
        taskq_task_t *t = NULL;
        int64_t status_ms = -1;
        while (h_now_ms() - t0 < 10000) {
            taskq_err_t rc = taskq_status(probe, &ids[0], &t);
            if (rc == TASKQ_OK || rc == TASKQ_ENOTFOUND) {
                status_ms = h_now_ms() - t0;
                break;
            }
        }
        taskq_task_destroy(&t);
        taskq_client_destroy(&probe);
        H_ASSERT(status_ms >= 0, "no STATUS answered within 10 s of restart %d", k + 1);
        h_log("restart %d: ready after %lld ms, first STATUS after %lld ms", k + 1,
              (long long)ready_ms, (long long)status_ms);
        worst_ready = ready_ms > worst_ready ? ready_ms : worst_ready;
        worst_status = status_ms > worst_status ? status_ms : worst_status;
    }
    for (int k = 0; k < NCLIENTS; k++) {
        pthread_join(th[k], NULL);
        H_ASSERT(ca[k].rc == TASKQ_OK, "client %d: taskq_submit_batch: %s at task %ld", k,
                 taskq_err_name(ca[k].rc), ca[k].failed_at);
    }
    for (long i = 0; i < N; i++)
        H_ASSERT(codes[i] == TASKQ_OK, "task %ld: code %s", i, taskq_err_name(codes[i]));
    h_log("all %ld submissions acknowledged across %d broker kills", N, nkills);

    long n = 0;
    taskq_err_t rc = taskq_wait_many(c, ids, (size_t)N, 180000, on_done, &n);
    H_ASSERT(rc == TASKQ_OK && n == N, "taskq_wait_many: %s (%ld of %ld)", taskq_err_name(rc), n,
             N);
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.total == (uint64_t)N && st.succeeded == (uint64_t)N,
             "stats total=%llu succeeded=%llu, expected %ld (resends must not duplicate)",
             (unsigned long long)st.total, (unsigned long long)st.succeeded, N);
    checker_summary_t s = fu_check(h_broker_db(b));
    H_ASSERT(s.acked == (size_t)N, "checker: acked=%zu, expected %ld", s.acked, N);
    printf("FIGURES it_fault_broker_kill: tasks=%ld kills=%d restart_to_ready_max_ms=%lld "
           "restart_to_status_max_ms=%lld dup_explained=%zu\n",
           N, nkills, (long long)worst_ready, (long long)worst_status, s.dup_explained);
    H_ASSERT(worst_ready <= 1000 && worst_status <= 1000,
             "serving again took %lld ms (ready) / %lld ms (STATUS), limit 1000",
             (long long)worst_ready, (long long)worst_status);
    taskq_client_destroy(&c);
    free(specs);
    free(args);
    free(codes);
    free(ids);
    return 0;
}
