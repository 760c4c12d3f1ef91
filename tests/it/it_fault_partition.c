/* it_fault_partition: one worker node runs in a network namespace the test
 * creates (veth pair 10.231.X.1 <-> .2); the broker binds the root side's
 * address and the second node and the client use it too. The link goes down
 * for longer than the liveness window while the namespaced node holds
 * leases: the broker declares it dead within liveness (+1 heartbeat), its
 * tasks run on the second node, its late DONEs are stale; after the heal it
 * reconnects (HELLO) and gets work again. Needs root and `ip`: otherwise
 * SKIP (exit 77). The namespace and veth are deleted at exit, always. */
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

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(150);
    h_netns_t ns;
    char why[256];
    if (!h_netns_create(&ns, why, sizeof why)) {
        printf("SKIP: %s\n", why);
        fflush(stdout);
        exit(77);
    }
    h_history_enable();
    char bind[96];
    snprintf(bind, sizeof bind, "tcp://%s:*", ns.host_ip);
    h_broker_t *b = h_broker_start_at(bind, NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *wa = h_worker_start_ns(ns.name, ep, SLOTS);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(wa), SLOTS, 20000);

    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 3);
    taskq_id_t ids[SLOTS];
    for (int i = 0; i < SLOTS; i++)
        h_submit(c, &ids[i], "test.sleep", args, alen, 0, 0);
    run_arg_t ra = {c, ids, SLOTS, h_worker_node_id(wa)};
    h_wait_for(all_running_on, &ra, 10000, "both tasks running on the namespaced node");
    h_worker_t *wb = h_worker_start(ep, SLOTS);
    h_worker_wait_ready(c, h_worker_node_id(wb), SLOTS, 20000);

    int64_t cut_us = fu_wall_us();
    h_netns_partition(&ns, h_worker_node_id(wa), true);
    fu_wait_event("broker", "node_dead", h_worker_node_id(wa), NULL, cut_us, 10000,
                  "the broker declares the partitioned node dead");
    hevents_t *h = fu_load();
    int64_t dead_ms = -1;
    for (size_t i = 0; i < h->n && dead_ms < 0; i++)
        if (h->ev[i].us >= cut_us && strcmp(h->ev[i].ev, "node_dead") == 0)
            dead_ms = (h->ev[i].us - cut_us) / 1000;
    hevents_destroy(&h);
    /* liveness 3 x 1000 ms, checked every half heartbeat, + 1 heartbeat */
    H_ASSERT(dead_ms <= 4000, "partitioned node declared dead after %lld ms (limit 4000)",
             (long long)dead_ms);
    for (int i = 0; i < SLOTS; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &ids[i], 30000, &t));
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 2 &&
                     strcmp(t->worker, h_worker_node_id(wb)) == 0,
                 "task %d: %s attempts=%u on %s, expected succeeded/2 on %s", i,
                 taskq_state_name(t->state), t->attempts, t->worker, h_worker_node_id(wb));
        taskq_task_destroy(&t);
    }
    /* the partitioned node finished its copies meanwhile (its DONEs wait) */
    int64_t heal_us = fu_wall_us();
    h_netns_partition(&ns, h_worker_node_id(wa), false);
    int on_a = fu_node_rejoins(c, wa, ids, SLOTS, SLOTS, cut_us, heal_us, "healed");
    checker_summary_t s = fu_check(h_broker_db(b));
    H_ASSERT(s.stale_rejected >= SLOTS, "stale_rejected=%zu, expected >= %d", s.stale_rejected,
             SLOTS);
    printf("FIGURES it_fault_partition: declared_dead_after_ms=%lld stale_rejected=%zu "
           "later_tasks_on_healed_node=%d dup_explained=%zu\n",
           (long long)dead_ms, s.stale_rejected, on_a, s.dup_explained);
    taskq_client_destroy(&c);
    return 0;
}
