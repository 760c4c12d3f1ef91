/* it_fault_long_tasks: the broker runs with --lease-ms 1000 and tasks run
 * 4 s (test.sleep [4], reporting progress). Part 1: a live node holding
 * them keeps their leases, so they are never redelivered (attempts == 1,
 * one exec_start each). Part 2: the same with the node killed (supervisor
 * and children, SIGKILL): they are redelivered (lease expiry / liveness) to
 * the second node and succeed with attempts == 2. Checker at the end. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fault_util.h"

#define NT 2

typedef struct {
    taskq_client_t *c;
    taskq_id_t *ids;
    const char *node;
} run_arg_t;

static bool all_running_on(void *p)
{
    run_arg_t *a = p;
    for (int i = 0; i < NT; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && t->state == TASKQ_STATE_RUNNING && strcmp(t->worker, a->node) == 0;
        taskq_task_destroy(&t);
        if (!ok)
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(150);
    h_history_enable();
    h_broker_t *b = h_broker_start(NULL, "--lease-ms", "1000");
    const char *ep = h_broker_endpoint(b);
    h_worker_t *wa = h_worker_start(ep, NT);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(wa), NT, 20000);
    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 4);

    /* part 1: 4 x the lease, on a live node */
    taskq_id_t ids[NT];
    for (int i = 0; i < NT; i++)
        h_submit(c, &ids[i], "test.sleep", args, alen, 0, 0);
    char idb[TASKQ_ID_STRLEN + 1];
    for (int i = 0; i < NT; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &ids[i], 30000, &t));
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 1,
                 "long task %d: %s attempts=%u (redelivered while its node was alive)", i,
                 taskq_state_name(t->state), t->attempts);
        taskq_task_destroy(&t);
    }
    hevents_t *h = fu_load();
    for (int i = 0; i < NT; i++) {
        taskq_id_format(&ids[i], idb);
        size_t n = hevents_count(h, "child", "exec_start", idb);
        size_t rq = hevents_count(h, "broker", "requeue", idb);
        H_ASSERT(n == 1 && rq == 0, "long task %s: %zu exec_start, %zu requeue; expected 1, 0",
                 idb, n, rq);
    }
    hevents_destroy(&h);
    h_log("part 1: %d tasks of 4 s under a 1 s lease ran once each", NT);

    /* part 2: the node dies while it runs them */
    taskq_id_t ids2[NT];
    for (int i = 0; i < NT; i++)
        h_submit(c, &ids2[i], "test.sleep", args, alen, 0, 0);
    run_arg_t ra = {c, ids2, h_worker_node_id(wa)};
    h_wait_for(all_running_on, &ra, 10000, "both long tasks running on node A");
    h_worker_t *wb = h_worker_start(ep, NT);
    h_worker_wait_ready(c, h_worker_node_id(wb), NT, 20000);
    pid_t kids[16];
    int nk = h_worker_children(wa, kids, 16);
    int64_t t0 = h_now_ms();
    h_worker_kill_node(wa);
    for (int i = 0; i < nk; i++)
        kill(kids[i], SIGKILL);
    int64_t worst = 0;
    for (int i = 0; i < NT; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &ids2[i], 30000, &t));
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 2 &&
                     strcmp(t->worker, h_worker_node_id(wb)) == 0,
                 "task %d after the node kill: %s attempts=%u on %s", i,
                 taskq_state_name(t->state), t->attempts, t->worker);
        int64_t ms = h_now_ms() - t0;
        worst = ms > worst ? ms : worst;
        taskq_task_destroy(&t);
    }
    checker_summary_t s = fu_check(h_broker_db(b));
    printf("FIGURES it_fault_long_tasks: lease_ms=1000 task_s=4 redelivered_live=0 "
           "kill_to_done_on_b_max_ms=%lld dup_explained=%zu\n",
           (long long)worst, s.dup_explained);
    taskq_client_destroy(&c);
    return 0;
}
