/* it_warm_shutdown: SIGTERM a worker while 2 tasks run and 10 wait. It
 * finishes the running ones (attempt 1, not requeued), takes nothing more,
 * exits 0; the waiting tasks stay queued and a new worker runs them. */
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "harness.h"

#define NSQ 10

typedef struct {
    taskq_client_t *c;
    taskq_id_t *ids;
    int n;
    int state;
} state_arg_t;

static bool all_in_state(void *p)
{
    state_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && t->state == a->state;
        taskq_task_destroy(&t);
        if (!ok)
            return false;
    }
    return true;
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
    size_t alen = h_args_int(args, sizeof args, 2);
    taskq_id_t sl[2], sq[NSQ];
    for (int i = 0; i < 2; i++)
        h_submit(c, &sl[i], "test.sleep", args, alen, 0, 0);
    state_arg_t ra = {c, sl, 2, TASKQ_STATE_RUNNING};
    h_wait_for(all_in_state, &ra, 10000, "both test.sleep tasks running");
    for (int i = 0; i < NSQ; i++) {
        alen = h_args_int(args, sizeof args, i);
        h_submit(c, &sq[i], "test.square", args, alen, 0, 0);
    }
    /* no idle slot, so no credit: the squares must be queued */
    for (int i = 0; i < NSQ; i++) {
        taskq_task_t *t = h_status(c, &sq[i]);
        H_ASSERT(t && t->state == TASKQ_STATE_QUEUED, "square %d is %s before SIGTERM", i,
                 t ? taskq_state_name(t->state) : "missing");
        taskq_task_destroy(&t);
    }

    int64_t t0 = h_now_ms();
    h_worker_signal(w, SIGTERM);
    int st = h_worker_wait_exit(w, 20000);
    h_log("worker exited %lld ms after SIGTERM (status 0x%x)", (long long)(h_now_ms() - t0), st);
    H_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status 0x%x, expected exit 0",
             st);

    for (int i = 0; i < 2; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &sl[i], 5000, &t));
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "sleep %d ended %s: '%s'", i,
                 taskq_state_name(t->state), t->error);
        H_ASSERT(t->attempts == 1, "sleep %d: attempts=%u, expected 1 (finished, not requeued)",
                 i, t->attempts);
        taskq_task_destroy(&t);
    }
    for (int i = 0; i < NSQ; i++) {
        taskq_task_t *t = h_status(c, &sq[i]);
        H_ASSERT(t && t->state == TASKQ_STATE_QUEUED && t->attempts == 0,
                 "square %d after the warm shutdown: %s attempts=%u (expected queued, 0)", i,
                 t ? taskq_state_name(t->state) : "missing", t ? t->attempts : 0);
        taskq_task_destroy(&t);
    }

    h_worker_t *w2 = h_worker_start(ep, 2);
    (void)w2;
    for (int i = 0; i < NSQ; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &sq[i], 20000, &t));
        int64_t v = -1;
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                     v == (int64_t)i * i,
                 "square %d: %s result %lld '%s'", i, taskq_state_name(t->state), (long long)v,
                 t->error);
        taskq_task_destroy(&t);
    }
    taskq_client_destroy(&c);
    return 0;
}
