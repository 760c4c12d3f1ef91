/* it_progress: taskq.sleep reports progress while it runs; STATUS shows a
 * partial 0 < current < total with a message, and the finished task's
 * progress is complete (current == total, or at least past what we saw). */
#include <stdio.h>
#include <string.h>

#include "harness.h"

static bool partial(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->progress_total > 0 && t->progress_current > 0 &&
           t->progress_current < t->progress_total && t->progress_message &&
           t->progress_message[0] != '\0';
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 1);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);

    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 2);
    taskq_id_t id;
    h_submit(c, &id, "taskq.sleep", args, alen, 0, 0);
    taskq_task_t *t = h_wait_task(c, &id, partial, NULL, 10000,
                                  "progress 0 < current < total with a message");
    uint64_t cur = t->progress_current, tot = t->progress_total;
    h_log("progress seen: %llu/%llu '%s' (state %s)", (unsigned long long)cur,
          (unsigned long long)tot, t->progress_message, taskq_state_name(t->state));
    H_ASSERT(t->state == TASKQ_STATE_RUNNING, "state %s while in progress",
             taskq_state_name(t->state));
    taskq_task_destroy(&t);

    H_OK(taskq_wait(c, &id, 15000, &t));
    h_log("final progress: %llu/%llu '%s'", (unsigned long long)t->progress_current,
          (unsigned long long)t->progress_total, t->progress_message);
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "ended %s: '%s'", taskq_state_name(t->state),
             t->error);
    H_ASSERT(t->progress_current == t->progress_total || t->progress_current > cur,
             "final progress %llu/%llu is neither complete nor past %llu/%llu",
             (unsigned long long)t->progress_current, (unsigned long long)t->progress_total,
             (unsigned long long)cur, (unsigned long long)tot);
    taskq_task_destroy(&t);
    taskq_client_destroy(&c);
    return 0;
}
