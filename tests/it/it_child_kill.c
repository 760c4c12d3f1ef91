/* it_child_kill: kill -9 the child running a task; the supervisor reports
 * the lost attempt (DONE retry=true), the broker requeues it as attempt 2,
 * it succeeds, and the node is back to 2 children (a replacement forked). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static bool running_with_pid(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING && t->child_pid != 0;
}

static bool requeued(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->attempts >= 2 &&
           (t->state == TASKQ_STATE_QUEUED || t->state == TASKQ_STATE_RUNNING ||
            taskq_state_is_terminal(t->state));
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 3);
    taskq_id_t id;
    h_submit(c, &id, "taskq.sleep", args, alen, 0, 0);

    taskq_task_t *t = h_wait_task(c, &id, running_with_pid, NULL, 10000,
                                  "state running with child_pid != 0 in STATUS");
    pid_t victim = t->child_pid;
    H_ASSERT(t->attempts == 1, "first dispatch has attempts=%u", t->attempts);
    H_ASSERT(strcmp(t->worker, h_worker_node_id(w)) == 0, "worker '%s'", t->worker);
    taskq_task_destroy(&t);
    H_ASSERT(h_pid_alive(victim), "child_pid %d from STATUS is not a live process", (int)victim);
    h_log("killing child %d", (int)victim);
    int64_t t0 = h_now_ms();
    H_ASSERT(kill(victim, SIGKILL) == 0, "kill(%d)", (int)victim);

    t = h_wait_task(c, &id, requeued, NULL, 10000, "attempts == 2 after the child was killed");
    int64_t requeue_ms = h_now_ms() - t0;
    printf("requeue_ms=%lld\n", (long long)requeue_ms);
    fflush(stdout);
    H_ASSERT(t->attempts == 2, "attempts=%u, expected 2 (state %s)", t->attempts,
             taskq_state_name(t->state));
    taskq_task_destroy(&t);

    H_OK(taskq_wait(c, &id, 20000, &t));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task ended %s: '%s'",
             taskq_state_name(t->state), t->error);
    H_ASSERT(t->attempts == 2, "attempts=%u, expected 2", t->attempts);
    H_ASSERT(t->child_pid != victim, "attempt 2 reports the killed child %d", (int)victim);
    taskq_task_destroy(&t);

    /* a replacement child was forked: the node is back to 2 idle children */
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 10000);
    taskq_workers_t *ws = NULL;
    H_OK(taskq_workers(c, &ws));
    bool found = false;
    for (size_t i = 0; i < taskq_workers_count(ws); i++) {
        const taskq_node_info_t *n = taskq_workers_node(ws, i);
        if (strcmp(n->id, h_worker_node_id(w)) != 0)
            continue;
        found = true;
        H_ASSERT(n->nchildren == 2, "node has %zu children, expected 2", n->nchildren);
        for (size_t k = 0; k < n->nchildren; k++)
            H_ASSERT(n->children[k].pid != victim, "killed child %d still listed", (int)victim);
    }
    H_ASSERT(found, "node %s missing from workers", h_worker_node_id(w));
    taskq_workers_destroy(&ws);
    H_ASSERT(h_pid_alive(h_worker_pid(w)), "the supervisor died");
    taskq_client_destroy(&c);
    return 0;
}
