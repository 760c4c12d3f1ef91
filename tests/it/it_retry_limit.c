/* it_retry_limit: a task whose child always crashes fails after exactly
 * max_attempts attempts with "attempt limit (N) reached: ..."; one that
 * crashes only on attempt 1 succeeds on attempt 2. */
#include <stdio.h>
#include <string.h>

#include "harness.h"

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    uint8_t a99[16], a2[16];
    size_t l99 = h_args_int(a99, sizeof a99, 99);
    size_t l2 = h_args_int(a2, sizeof a2, 2);
    taskq_id_t always, once;
    h_submit(c, &always, "test.crash_until", a99, l99, 0, 3);
    h_submit(c, &once, "test.crash_until", a2, l2, 0, 0);

    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, &always, 30000, &t));
    h_log("crash_until [99]: %s attempts=%u error='%s'", taskq_state_name(t->state),
          t->attempts, t->error);
    H_ASSERT(t->state == TASKQ_STATE_FAILED, "crash_until [99] ended %s",
             taskq_state_name(t->state));
    H_ASSERT(t->attempts == 3, "attempts=%u, expected exactly 3", t->attempts);
    H_ASSERT(t->max_attempts == 3, "max_attempts=%u", t->max_attempts);
    H_ASSERT(strstr(t->error, "attempt limit (3) reached") != NULL,
             "error '%s' does not mention the attempt limit", t->error);
    taskq_task_destroy(&t);

    H_OK(taskq_wait(c, &once, 30000, &t));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "crash_until [2] ended %s: '%s'",
             taskq_state_name(t->state), t->error);
    H_ASSERT(t->attempts == 2, "crash_until [2]: attempts=%u, expected 2", t->attempts);
    int64_t v = 0;
    H_ASSERT(h_result_int(t->result, t->result_len, &v) && v == 2,
             "crash_until [2]: result %lld, expected the attempt number 2", (long long)v);
    taskq_task_destroy(&t);

    /* the node survived all of it with both slots */
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 10000);
    taskq_client_destroy(&c);
    return 0;
}
