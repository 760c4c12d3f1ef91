/* it_node_kill: kill -9 a worker supervisor while it runs 4 tasks. Its
 * children die with it (PDEATHSIG, within 1 s); the broker notices the
 * silence (liveness x heartbeat) and requeues the 4 leases as attempt 2;
 * they all finish on the other node.
 *
 * Both nodes run 4 children (the brief says 2): with 2 slots only 2 of the
 * 4 tasks could run on A, and the "all 4 requeued with attempts == 2"
 * check would not hold for the 2 that B took directly. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define NT 4

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

typedef struct {
    pid_t *pids;
    int n;
} pids_t;

static bool all_dead(void *p)
{
    pids_t *a = p;
    for (int i = 0; i < a->n; i++)
        if (h_pid_alive(a->pids[i]))
            return false;
    return true;
}

typedef struct {
    const char *node_b;
    int n;
} done_ctx_t;

static int on_done(const taskq_task_t *t, void *arg)
{
    done_ctx_t *d = arg;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %s ended %s: '%s'", h_id_str(&t->id),
             taskq_state_name(t->state), t->error);
    H_ASSERT(strcmp(t->worker, d->node_b) == 0, "task %s finished on '%s', expected %s",
             h_id_str(&t->id), t->worker, d->node_b);
    H_ASSERT(t->attempts == 2, "task %s: attempts=%u, expected 2", h_id_str(&t->id),
             t->attempts);
    d->n++;
    return 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *wa = h_worker_start(ep, NT);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(wa), NT, 20000);

    uint8_t args[16];
    size_t alen = h_args_int(args, sizeof args, 4);
    taskq_id_t ids[NT];
    for (int i = 0; i < NT; i++)
        h_submit(c, &ids[i], "test.sleep", args, alen, 0, 0);
    run_arg_t ra = {c, ids, h_worker_node_id(wa)};
    h_wait_for(all_running_on, &ra, 10000, "all 4 test.sleep tasks running on node A");

    h_worker_t *wb = h_worker_start(ep, NT);
    h_worker_wait_ready(c, h_worker_node_id(wb), NT, 20000);

    /* A's child pids, from the broker's view, taken before the kill */
    pid_t kids[64];
    int nkids = 0;
    taskq_workers_t *ws = NULL;
    H_OK(taskq_workers(c, &ws));
    for (size_t i = 0; i < taskq_workers_count(ws); i++) {
        const taskq_node_info_t *n = taskq_workers_node(ws, i);
        if (strcmp(n->id, h_worker_node_id(wa)) != 0)
            continue;
        for (size_t k = 0; k < n->nchildren && nkids < 64; k++)
            kids[nkids++] = n->children[k].pid;
    }
    taskq_workers_destroy(&ws);
    H_ASSERT(nkids == NT, "node A lists %d children, expected %d", nkids, NT);
    for (int i = 0; i < nkids; i++)
        H_ASSERT(h_pid_alive(kids[i]), "A's child %d is not alive before the kill", (int)kids[i]);

    h_log("kill -9 supervisor of %s (pid %d)", h_worker_node_id(wa), (int)h_worker_pid(wa));
    h_worker_signal(wa, SIGKILL);
    h_worker_wait_exit(wa, 5000);
    pids_t pa = {kids, nkids};
    int64_t ms = h_wait_for(all_dead, &pa, 1000, "A's children to die (PR_SET_PDEATHSIG)");
    h_log("A's children gone %lld ms after the supervisor", (long long)ms);

    done_ctx_t d = {h_worker_node_id(wb), 0};
    taskq_err_t rc = taskq_wait_many(c, ids, NT, 40000, on_done, &d);
    H_ASSERT(rc == TASKQ_OK && d.n == NT, "taskq_wait_many: %s (%d of %d delivered)",
             taskq_err_name(rc), d.n, NT);

    /* the dead node is forgotten */
    H_OK(taskq_workers(c, &ws));
    for (size_t i = 0; i < taskq_workers_count(ws); i++)
        H_ASSERT(strcmp(taskq_workers_node(ws, i)->id, h_worker_node_id(wa)) != 0,
                 "dead node %s still listed by WORKERS", h_worker_node_id(wa));
    taskq_workers_destroy(&ws);
    taskq_client_destroy(&c);
    return 0;
}
