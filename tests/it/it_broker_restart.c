/* it_broker_restart: kill -9 the broker mid-run and restart it on the same
 * db and port. Every acknowledged task must finish with the right result,
 * none lost, none duplicated. A second batch is submitted by another thread
 * (its own handle) while the broker is down: the client resends it with the
 * same ids until the restarted broker acknowledges it. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N1 2000
#define N2 200
#define NALL (N1 + N2)

static taskq_task_spec_t specs[NALL];
static uint8_t args[NALL][16];
static taskq_err_t codes[NALL];
static taskq_id_t ids[NALL];
static bool seen[NALL];

typedef struct {
    const char *ep;
    taskq_err_t rc;
    int64_t ms;
} batch2_t;

static void *submit_batch2(void *p)
{
    batch2_t *a = p;
    taskq_err_t err = TASKQ_OK;
    /* one handle per thread (taskq.h); created here, destroyed here */
    taskq_client_t *c2 = taskq_client_new(a->ep, &err);
    if (!c2) {
        a->rc = err;
        return NULL;
    }
    taskq_client_set_timeout(c2, 30000);
    int64_t t0 = h_now_ms();
    a->rc = taskq_submit_batch(c2, specs + N1, N2, codes + N1);
    a->ms = h_now_ms() - t0;
    taskq_client_destroy(&c2);
    return NULL;
}

static int index_of(const taskq_id_t *id)
{
    for (int i = 0; i < NALL; i++)
        if (memcmp(ids[i].b, id->b, 16) == 0)
            return i;
    return -1;
}

typedef struct {
    int n;
} ctx_t;

static int on_done(const taskq_task_t *t, void *arg)
{
    ctx_t *ctx = arg;
    int i = index_of(&t->id);
    H_ASSERT(i >= 0, "unknown id %s delivered", h_id_str(&t->id));
    H_ASSERT(!seen[i], "task %d delivered twice", i);
    seen[i] = true;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %d (%s) ended %s: '%s' attempts=%u", i,
             h_id_str(&t->id), taskq_state_name(t->state), t->error, t->attempts);
    int64_t got = 0;
    H_ASSERT(h_result_int(t->result, t->result_len, &got), "task %d: result not an integer", i);
    H_ASSERT(got == (int64_t)i * i, "task %d: square = %lld", i, (long long)got);
    ctx->n++;
    return 0;
}

typedef struct {
    taskq_client_t *c;
    uint64_t done;
} stats_arg_t;

static bool some_done(void *p)
{
    stats_arg_t *a = p;
    taskq_stats_t st;
    if (taskq_stats(a->c, &st) != TASKQ_OK)
        return false;
    a->done = st.succeeded;
    return st.succeeded >= 100;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(280);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 30000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    for (int i = 0; i < NALL; i++) {
        specs[i].name = "test.square";
        specs[i].args = args[i];
        specs[i].args_len = h_args_int(args[i], sizeof args[i], i);
        taskq_id_generate(&specs[i].id); /* known before submission */
        ids[i] = specs[i].id;
    }
    H_OK(taskq_submit_batch(c, specs, N1, codes));
    for (int i = 0; i < N1; i++)
        H_ASSERT(codes[i] == TASKQ_OK, "task %d: %s", i, taskq_err_name(codes[i]));
    h_log("%d tasks acknowledged", N1);

    stats_arg_t sa = {c, 0};
    h_wait_for(some_done, &sa, 60000, "at least 100 tasks succeeded");
    h_log("%llu done before the kill", (unsigned long long)sa.done);

    h_broker_kill(b, SIGKILL);
    batch2_t b2 = {ep, TASKQ_EINTERNAL, 0};
    pthread_t th;
    H_ASSERT(pthread_create(&th, NULL, submit_batch2, &b2) == 0, "pthread_create");
    h_broker_restart(b);
    pthread_join(th, NULL);
    H_ASSERT(b2.rc == TASKQ_OK, "second batch (submitted while the broker was down): %s",
             taskq_err_name(b2.rc));
    for (int i = N1; i < NALL; i++)
        H_ASSERT(codes[i] == TASKQ_OK, "task %d: %s", i, taskq_err_name(codes[i]));
    h_log("second batch of %d acknowledged after %lld ms", N2, (long long)b2.ms);

    ctx_t ctx = {0};
    taskq_err_t rc = taskq_wait_many(c, ids, NALL, 180000, on_done, &ctx);
    if (rc != TASKQ_OK) {
        for (int i = 0; i < NALL; i++)
            if (!seen[i]) {
                taskq_task_t *t = h_status(c, &ids[i]);
                H_FAIL("taskq_wait_many: %s after %d of %d; e.g. task %d %s is %s attempts=%u",
                       taskq_err_name(rc), ctx.n, NALL, i, h_id_str(&ids[i]),
                       t ? taskq_state_name(t->state) : "NOT FOUND", t ? t->attempts : 0);
            }
    }
    H_ASSERT(ctx.n == NALL, "%d of %d delivered", ctx.n, NALL);

    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.total == NALL, "stats total=%llu, expected %d (lost or duplicated rows)",
             (unsigned long long)st.total, NALL);
    H_ASSERT(st.succeeded == NALL, "stats succeeded=%llu, expected %d",
             (unsigned long long)st.succeeded, NALL);
    taskq_client_destroy(&c);
    return 0;
}
