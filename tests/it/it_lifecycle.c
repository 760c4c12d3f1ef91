/*
 * it_lifecycle: the ends of a task's and a child's life.
 *  - retention: with `taskq-broker --retention 1` a finished task is deleted
 *    (STATUS answers EPURGED) a second or two after it finished (that only
 *    terminal rows are purged is test_store's business);
 *  - `taskq-worker --max-tasks-per-child 2 -n 1`: after two tasks the child
 *    gets its poison pill and a new child serves, so 6 tasks run in exactly
 *    3 distinct child processes, and the node never has more than 1 child.
 */
#include <string.h>

#include "harness.h"

static bool terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *id;
} gone_arg_t;

static bool purged(void *arg)
{
    gone_arg_t *g = arg;
    taskq_task_t *t = NULL;
    taskq_err_t err = taskq_status(g->c, g->id, &t);
    taskq_task_destroy(&t);
    /* a purged record answers EPURGED ("gone"), never ENOTFOUND ("never
     * existed"): its id is older than the purge horizon */
    H_ASSERT(err == TASKQ_OK || err == TASKQ_EPURGED, "status: %s", taskq_strerror(err));
    return err == TASKQ_EPURGED;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(120);
    h_broker_t *b = h_broker_start(NULL, "--retention", "1");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    uint8_t args[16];

    h_worker_t *w = h_worker_start(ep, 1, "--max-tasks-per-child", "2");
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);

    taskq_id_t ids[6];
    pid_t pids[6];
    for (int i = 0; i < 6; i++) {
        h_submit(c, &ids[i], "test.square", args, h_args_int(args, sizeof args, i), 0, 0);
        taskq_task_t *t = h_wait_task(c, &ids[i], terminal, NULL, 20000, "task terminal");
        int64_t v = -1;
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                     v == (int64_t)i * i,
                 "task %d: state %s result %lld", i, taskq_state_name(t->state), (long long)v);
        H_ASSERT(t->child_pid > 0, "task %d has no child pid", i);
        pids[i] = t->child_pid;
        taskq_task_destroy(&t);
        pid_t kids[8];
        int nk = h_worker_children(w, kids, 8);
        H_ASSERT(nk <= 1, "node has %d children with -n 1", nk);
    }
    int distinct = 0;
    for (int i = 0; i < 6; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen = seen || pids[j] == pids[i];
        distinct += !seen;
    }
    h_log("max-tasks-per-child 2: 6 tasks ran in %d children", distinct);
    H_ASSERT(distinct == 3, "6 tasks with --max-tasks-per-child 2 ran in %d children, want 3",
             distinct);
    H_ASSERT(pids[0] == pids[1] && pids[2] == pids[3] && pids[4] == pids[5],
             "each child should run exactly 2 tasks in a row");

    /* every finished task disappears after the 1 s retention */
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 6; i++) {
        gone_arg_t g = {c, &ids[i]};
        h_wait_for(purged, &g, 15000, "finished task purged after --retention 1");
    }
    h_log("retention 1 s: all finished tasks purged %lld ms after the last one finished",
          (long long)(h_now_ms() - t0));
    taskq_client_destroy(&c);
    return 0;
}
