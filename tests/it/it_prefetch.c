/* it_prefetch: a worker node with -n 2 --prefetch 16 runs 2,000 test.square
 * tasks; mid-run (while tasks are still queued on the broker, so the node
 * holds its full credit) the test kills the node with kill -9, waits for the
 * broker to declare it dead, and starts another node. Asserts:
 *  - prefetch is real: at some point the broker had more tasks running
 *    (leased to the only live node) than the node has children, and never
 *    more than children + prefetch (2 + 16);
 *  - the kill hit leased tasks (the broker requeued some as node_lost);
 *  - zero lost, every result is i*i, duplicates only explained ones (checker).
 * Sampling STATS is observation, not synchronisation: every wait is a
 * condition with a deadline. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_util.h"

#define N 2000
#define SLOTS 2
#define PREFETCH 16

typedef struct {
    taskq_client_t *c;
    uint64_t max_running;   /* the most tasks running at once, as sampled */
    uint64_t terminal, queued, samples;
    uint64_t kill_at;       /* stop condition: terminal >= kill_at with queued >= 100 */
} sample_t;

static void sample(sample_t *a)
{
    taskq_stats_t st;
    if (taskq_stats(a->c, &st) != TASKQ_OK)
        return;
    a->samples++;
    if (st.running > a->max_running)
        a->max_running = st.running;
    H_ASSERT(st.running <= SLOTS + PREFETCH,
             "%llu tasks running on a single node with %d children and --prefetch %d",
             (unsigned long long)st.running, SLOTS, PREFETCH);
    a->terminal = st.succeeded + st.failed;
    a->queued = st.queued;
}

/* Mid-run: enough done to be well under way, enough queued on the broker
 * that the node holds all the credit it may (2 + 16 leases). */
static bool mid_run(void *p)
{
    sample_t *a = p;
    sample(a);
    return a->terminal >= a->kill_at && a->queued >= 100;
}

static bool all_terminal(void *p)
{
    sample_t *a = p;
    sample(a);
    return a->terminal >= N;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(240);
    h_history_enable();
    taskq_task_spec_t *specs = calloc(N, sizeof *specs);
    uint8_t(*args)[16] = calloc(N, sizeof *args);
    taskq_err_t *codes = calloc(N, sizeof *codes);
    H_ASSERT(specs && args && codes, "out of memory");
    for (long i = 0; i < N; i++) {
        specs[i].name = "test.square";
        specs[i].args = args[i];
        specs[i].args_len = h_args_int(args[i], sizeof args[i], i);
        taskq_id_generate(&specs[i].id);
    }

    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w1 = h_worker_start(ep, SLOTS, "--prefetch", "16");
    taskq_client_t *c = h_client(ep, 30000);
    h_worker_wait_ready(c, h_worker_node_id(w1), SLOTS, 20000);

    /* the node reports its children, not its prefetch: 2 slots */
    taskq_workers_t *ws = NULL;
    H_OK(taskq_workers(c, &ws));
    H_ASSERT(taskq_workers_count(ws) == 1 && taskq_workers_node(ws, 0)->slots == SLOTS,
             "expected one node with %d slots", SLOTS);
    taskq_workers_destroy(&ws);

    H_OK(taskq_submit_batch(c, specs, N, codes));
    for (long i = 0; i < N; i++)
        H_ASSERT(codes[i] == TASKQ_OK, "task %ld not accepted: %s", i, taskq_err_name(codes[i]));
    h_log("%d test.square tasks submitted", N);

    sample_t s = {.c = c, .kill_at = 300};
    h_wait_for(mid_run, &s, 120000, "300 tasks done with 100+ still queued");
    uint64_t running_before_kill = s.max_running;
    int64_t kill_us = fu_wall_us();
    h_worker_kill_node(w1);
    h_log("killed node %s after %llu terminal, %llu queued; max running seen %llu "
          "(%llu samples)", h_worker_node_id(w1), (unsigned long long)s.terminal,
          (unsigned long long)s.queued, (unsigned long long)running_before_kill,
          (unsigned long long)s.samples);
    H_ASSERT(running_before_kill > SLOTS,
             "prefetch not observed: at most %llu tasks ran at once on a node with %d children",
             (unsigned long long)running_before_kill, SLOTS);

    /* another node only after the broker gave up on the first: from then on
     * every running task is leased to the one live node again */
    fu_wait_event("broker", "node_dead", h_worker_node_id(w1), NULL, kill_us, 20000,
                  "broker declares the killed node dead");
    h_worker_t *w2 = h_worker_start(ep, SLOTS, "--prefetch", "16");
    h_wait_for(all_terminal, &s, 180000, "all tasks terminal after the second node started");
    h_log("all %d terminal; max running seen %llu", N, (unsigned long long)s.max_running);

    /* every result correct */
    for (long i = 0; i < N; i++) {
        taskq_task_t *t = h_status(c, &specs[i].id);
        H_ASSERT(t != NULL, "task %ld lost", i);
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %ld: %s (%s)", i,
                 taskq_state_name(t->state), t->error ? t->error : "");
        int64_t v;
        H_ASSERT(h_result_int(t->result, t->result_len, &v) && v == i * i,
                 "task %ld: wrong result", i);
        taskq_task_destroy(&t);
    }

    /* the kill hit prefetched leases: the broker requeued them as node_lost */
    hevents_t *h = fu_load();
    size_t requeued = 0;
    for (size_t i = 0; i < h->n; i++) {
        const hev_t *e = &h->ev[i];
        if (e->us >= kill_us && e->nf >= 3 && strcmp(e->role, "broker") == 0 &&
            strcmp(e->ev, "requeue") == 0 && strcmp(e->f[2], "node_lost") == 0)
            requeued++;
    }
    hevents_destroy(&h);
    H_ASSERT(requeued > 0, "the kill -9 hit no leased task");
    H_ASSERT(requeued <= SLOTS + PREFETCH, "%zu tasks requeued from one node (max %d)",
             requeued, SLOTS + PREFETCH);

    checker_summary_t cs = fu_check(h_broker_db(b));
    printf("FIGURES it_prefetch: tasks=%d max_running=%llu requeued_node_lost=%zu "
           "dup_explained=%zu\n", N, (unsigned long long)s.max_running, requeued,
           cs.dup_explained);
    fflush(stdout);
    (void)w2;
    taskq_client_destroy(&c);
    free(specs);
    free(args);
    free(codes);
    return 0;
}
