/* it_child_kill: kill -9 the child running a task; the supervisor reports
 * the lost attempt (DONE retry=true), the broker requeues it as attempt 2,
 * it succeeds, and the node is back to 2 children (a replacement forked). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

typedef struct {
    taskq_client_t *c;
    const char *node;
    pid_t from_status;  /* child_pid in STATUS while running */
    pid_t from_workers; /* the child listed with this task in WORKERS */
} pid_arg_t;

/* The pid of the node's child whose task_id is id, or 0. */
static pid_t pid_in_workers(taskq_client_t *c, const char *node, const taskq_id_t *id)
{
    taskq_workers_t *ws = NULL;
    pid_t pid = 0;
    if (taskq_workers(c, &ws) != TASKQ_OK)
        return 0;
    for (size_t i = 0; i < taskq_workers_count(ws); i++) {
        const taskq_node_info_t *n = taskq_workers_node(ws, i);
        if (strcmp(n->id, node) != 0)
            continue;
        for (size_t k = 0; k < n->nchildren; k++)
            if (n->children[k].has_task && memcmp(n->children[k].task_id.b, id->b, 16) == 0)
                pid = n->children[k].pid;
    }
    taskq_workers_destroy(&ws);
    return pid;
}

static bool running_with_pid(const taskq_task_t *t, void *arg)
{
    pid_arg_t *a = arg;
    if (t->state != TASKQ_STATE_RUNNING)
        return false;
    a->from_status = t->child_pid;
    a->from_workers = pid_in_workers(a->c, a->node, &t->id);
    /* STATUS learns the pid from the node's next heartbeat (<= 1 s): wait
     * for it there, so the two reads cannot race a heartbeat in between */
    return a->from_status != 0;
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

    pid_arg_t pa = {c, h_worker_node_id(w), 0, 0};
    taskq_task_t *t = h_wait_task(c, &id, running_with_pid, &pa, 10000,
                                  "state running with its child pid in STATUS or WORKERS");
    h_log("running: child_pid in STATUS %d, in WORKERS %d", (int)pa.from_status,
          (int)pa.from_workers);
    pid_t victim = pa.from_status ? pa.from_status : pa.from_workers;
    H_ASSERT(!pa.from_status || !pa.from_workers || pa.from_status == pa.from_workers,
             "STATUS says child %d, WORKERS says %d", (int)pa.from_status, (int)pa.from_workers);
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
    /* checked last so that the requeue behaviour above is tested either way */
    H_ASSERT(pa.from_status != 0,
             "STATUS of a running task has child_pid 0 (WORKERS lists child %d running it); "
             "the broker should fill child_pid from the node's heartbeat",
             (int)pa.from_workers);
    taskq_client_destroy(&c);
    return 0;
}
