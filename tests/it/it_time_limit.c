/* it_time_limit: a hanging task is killed at the worker's --time-limit and
 * its attempt fails "time limit exceeded" with code taskq.timeout; with
 * --max-attempts 1 the task fails at once, and the replacement child runs
 * the next task. Then a task's own time_limit_ms overrides a larger worker
 * limit. Last, a time limit is a failure like any other: with 2 attempts it
 * runs twice (after the backoff) and names the attempt limit. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static void expect_time_limit(taskq_client_t *c, const taskq_id_t *id, int64_t max_ms,
                              uint32_t attempts)
{
    int64_t t0 = h_now_ms();
    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, id, max_ms + 5000, &t));
    int64_t ms = h_now_ms() - t0;
    h_log("test.hang ended %s after %lld ms: '%s'", taskq_state_name(t->state), (long long)ms,
          t->error);
    H_ASSERT(t->state == TASKQ_STATE_FAILED, "test.hang ended %s", taskq_state_name(t->state));
    H_ASSERT(strstr(t->error, "time limit exceeded") != NULL, "error '%s'", t->error);
    H_ASSERT(t->attempts == attempts, "attempts=%u, expected %u", t->attempts, attempts);
    H_ASSERT(t->failures == attempts, "failures=%u, expected %u", t->failures, attempts);
    H_ASSERT(strcmp(t->code, "taskq.timeout") == 0, "code '%s'", t->code);
    char want[64];
    snprintf(want, sizeof want, "attempt limit (%u) reached", attempts);
    H_ASSERT(strstr(t->error, want) != NULL, "error '%s'", t->error);
    H_ASSERT(ms <= max_ms, "took %lld ms, expected <= %lld", (long long)ms, (long long)max_ms);
    taskq_task_destroy(&t);
}

static void expect_square(taskq_client_t *c, int n)
{
    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, n);
    taskq_id_t id;
    h_submit(c, &id, "test.square", args, alen, 0, 0);
    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, &id, 15000, &t));
    int64_t v = -1;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == (int64_t)n * n,
             "test.square [%d] after the time limit: %s result %lld '%s'", n,
             taskq_state_name(t->state), (long long)v, t->error);
    taskq_task_destroy(&t);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);

    /* 1. the worker's limit */
    h_worker_t *w1 = h_worker_start(ep, 1, "--time-limit", "1");
    h_worker_wait_ready(c, h_worker_node_id(w1), 1, 20000);
    taskq_id_t id;
    h_submit(c, &id, "test.hang", NULL, 0, 0, 1);
    expect_time_limit(c, &id, 4000, 1);
    expect_square(c, 7);
    h_worker_signal(w1, SIGTERM);
    h_worker_wait_exit(w1, 15000);

    /* 2. the task's limit (1 s) beats the worker's (30 s) */
    h_worker_t *w2 = h_worker_start(ep, 1, "--time-limit", "30");
    h_worker_wait_ready(c, h_worker_node_id(w2), 1, 20000);
    h_submit(c, &id, "test.hang", NULL, 0, 1000, 1);
    expect_time_limit(c, &id, 4000, 1);
    expect_square(c, 9);

    /* 3. retried by the policy: 2 attempts, 1 s limit, default backoff 2 s
     * with equal jitter ([1, 2] s) between them */
    h_submit(c, &id, "test.hang", NULL, 0, 1000, 2);
    expect_time_limit(c, &id, 8000, 2);
    taskq_client_destroy(&c);
    return 0;
}
