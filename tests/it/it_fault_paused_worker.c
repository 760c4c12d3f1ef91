/* it_fault_paused_worker: kill -STOP a worker node (supervisor and
 * children) while it holds leases, for longer than the broker's liveness.
 * The broker declares it dead; its tasks run on the other node. After
 * kill -CONT every late DONE from it is rejected as stale (history: `stale`,
 * checker: no stale result accepted), it says HELLO again and takes work
 * again (a later task runs on it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_util.h"

#define SLOTS 2

typedef struct {
    taskq_client_t *c;
    taskq_id_t *ids;
    int n;
    const char *node;
} run_arg_t;

static bool all_running_on(void *p)
{
    run_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && t->state == TASKQ_STATE_RUNNING && strcmp(t->worker, a->node) == 0;
        taskq_task_destroy(&t);
        if (!ok)
            return false;
    }
    return true;
}

static int on_done(const taskq_task_t *t, void *arg)
{
    const char **node = arg;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %s ended %s: '%s'", h_id_str(&t->id),
             taskq_state_name(t->state), t->error);
    H_ASSERT(strcmp(t->worker, node[0]) == 0 && t->attempts == 2,
             "task %s finished on %s attempt %u, expected %s attempt 2", h_id_str(&t->id),
             t->worker, t->attempts, node[0]);
    return 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(150);
    h_history_enable();
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *wa = h_worker_start(ep, SLOTS);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(wa), SLOTS, 20000);

    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 3);
    taskq_id_t ids[SLOTS];
    for (int i = 0; i < SLOTS; i++)
        h_submit(c, &ids[i], "test.sleep", args, alen, 0, 0);
    run_arg_t ra = {c, ids, SLOTS, h_worker_node_id(wa)};
    h_wait_for(all_running_on, &ra, 10000, "both tasks running on node A");
    h_worker_t *wb = h_worker_start(ep, SLOTS);
    h_worker_wait_ready(c, h_worker_node_id(wb), SLOTS, 20000);

    int64_t stop_us = fu_wall_us();
    int64_t t0 = h_now_ms();
    h_worker_stop(wa);
    fu_wait_event("broker", "node_dead", h_worker_node_id(wa), NULL, stop_us, 10000,
                  "the broker declares the paused node dead");
    int64_t dead_ms = h_now_ms() - t0;
    const char *nodeb[1] = {h_worker_node_id(wb)};
    taskq_err_t rc = taskq_wait_many(c, ids, SLOTS, 30000, on_done, (void *)nodeb);
    H_ASSERT(rc == TASKQ_OK, "tasks of the paused node did not finish elsewhere: %s",
             taskq_err_name(rc));
    h_log("paused node declared dead after %lld ms; its tasks finished on %s",
          (long long)dead_ms, nodeb[0]);

    int64_t cont_us = fu_wall_us();
    h_worker_cont(wa);
    /* the late DONEs: attempt 1 of each task, refused as stale */
    /* it rejoins (a HELLO from the same supervisor after the CONT) and works */
    int on_a = fu_node_rejoins(c, wa, ids, SLOTS, SLOTS, cont_us, cont_us, "resumed");
    checker_summary_t s = fu_check(h_broker_db(b));
    H_ASSERT(s.stale_rejected >= SLOTS, "checker: stale_rejected=%zu, expected >= %d",
             s.stale_rejected, SLOTS);
    printf("FIGURES it_fault_paused_worker: declared_dead_after_ms=%lld stale_rejected=%zu "
           "later_tasks_on_resumed_node=%d dup_explained=%zu\n",
           (long long)dead_ms, s.stale_rejected, on_a, s.dup_explained);
    taskq_client_destroy(&c);
    return 0;
}
