/* it_priority: 90 tasks of random priority (some without one: default 5)
 * submitted to an idle broker run, on a `-n 1` worker, in non-increasing
 * priority and in submission order within a priority; the second round
 * does the same across a kill -9 + restart of the broker before the worker
 * starts. Order is read from test.append's file (one line per run, written
 * by the child: with one child and no prefetch, file order = dispatch
 * order). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define N 90

typedef struct {
    taskq_id_t id;
    int prio; /* effective: 5 when none was given */
    bool given;
} task_t;

static task_t tasks[N];

/* Submits N test.append tasks, one at a time (submission order = the FIFO
 * order within a priority). Tag "R.I" = round R, task index I. */
static void submit_round(taskq_client_t *c, int round, const char *path)
{
    for (int i = 0; i < N; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "%d.%d", round, i);
        uint8_t args[512];
        taskq_task_spec_t s;
        memset(&s, 0, sizeof s);
        s.name = "test.append";
        s.args = args;
        s.args_len = h_args_fmt(args, sizeof args, "ss", path, tag);
        tasks[i].given = rand() % 10 != 0; /* ~10 % rely on the default */
        tasks[i].prio = tasks[i].given ? rand() % 10 : 5;
        s.has_priority = tasks[i].given;
        s.priority = tasks[i].prio;
        H_OK(taskq_submit(c, &s));
        H_ASSERT(strcmp(s.queue_out, "default") == 0, "ack queue '%s', expected default",
                 s.queue_out);
        tasks[i].id = s.id;
    }
}

typedef struct {
    taskq_client_t *c;
    uint64_t want;
} queued_arg_t;

static bool all_queued(void *p)
{
    queued_arg_t *a = p;
    taskq_queue_info_t q;
    return h_queue_info(a->c, "default", &q) && q.counts[TASKQ_STATE_QUEUED] == a->want;
}

static int on_done(const taskq_task_t *t, void *arg)
{
    (void)arg;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %s ended %s: %s", h_id_str(&t->id),
             taskq_state_name(t->state), t->error);
    return 0;
}

/* Runs the queued round on a fresh -n 1 worker and checks the order. */
static void run_and_check(taskq_client_t *c, const char *ep, int round, const char *path)
{
    /* the records say what was stored: default priority 5, queue default */
    for (int i = 0; i < N; i++) {
        taskq_task_t *t = h_status(c, &tasks[i].id);
        H_ASSERT(t != NULL, "round %d task %d not found", round, i);
        H_ASSERT(t->state == TASKQ_STATE_QUEUED && t->attempts == 0,
                 "round %d task %d: %s attempts=%u before any worker", round, i,
                 taskq_state_name(t->state), t->attempts);
        H_ASSERT(t->priority == tasks[i].prio, "round %d task %d: priority %d, submitted %d%s",
                 round, i, t->priority, tasks[i].prio, tasks[i].given ? "" : " (default)");
        H_ASSERT(t->queue && strcmp(t->queue, "default") == 0, "task queue '%s'", t->queue);
        taskq_task_destroy(&t);
    }
    h_worker_t *w = h_worker_start(ep, 1);
    taskq_id_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = tasks[i].id;
    H_OK(taskq_wait_many(c, ids, N, 60000, on_done, NULL));
    /* SIGTERM: warm shutdown of an idle node */
    h_worker_signal(w, SIGTERM);
    int st = h_worker_wait_exit(w, 15000);
    H_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status 0x%x", st);

    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == N, "round %d: %zu lines in %s, expected %d (each task runs once)", round,
             l.n, path, N);
    int prev_prio = 10, prev_idx = -1;
    bool seen[N] = {false};
    char order[N * 8] = "";
    size_t ol = 0;
    for (size_t k = 0; k < l.n; k++) {
        int r = -1, i = -1;
        H_ASSERT(sscanf(l.line[k], "%d.%d", &r, &i) == 2 && r == round && i >= 0 && i < N,
                 "round %d: unexpected line '%s'", round, l.line[k]);
        H_ASSERT(!seen[i], "round %d: task %d ran twice", round, i);
        seen[i] = true;
        int p = tasks[i].prio;
        ol += (size_t)snprintf(order + ol, sizeof order - ol, "%d%s", p, k + 1 < l.n ? "," : "");
        H_ASSERT(p <= prev_prio,
                 "round %d: dispatch %zu is task %d priority %d after priority %d (order so "
                 "far: %s)",
                 round, k, i, p, prev_prio, order);
        H_ASSERT(p < prev_prio || i > prev_idx,
                 "round %d: dispatch %zu is task %d, after task %d of the same priority %d "
                 "(not FIFO)",
                 round, k, i, prev_idx, p);
        prev_prio = p;
        prev_idx = i;
    }
    h_log("round %d: %d tasks ran in priority order: %s", round, N, order);
    h_lines_free(&l);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    srand(h_seed());
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    char path[512];

    /* round 1: no worker while submitting */
    snprintf(path, sizeof path, "%s/order1.txt", h_tmpdir());
    submit_round(c, 1, path);
    queued_arg_t qa = {c, N};
    h_wait_for(all_queued, &qa, 10000, "90 tasks queued in default");
    run_and_check(c, ep, 1, path);

    /* round 2: the same across kill -9 + restart before the worker */
    snprintf(path, sizeof path, "%s/order2.txt", h_tmpdir());
    submit_round(c, 2, path);
    h_wait_for(all_queued, &qa, 10000, "90 tasks queued in default");
    taskq_client_destroy(&c);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    qa.c = c = h_client(ep, 10000);
    h_wait_for(all_queued, &qa, 10000, "90 tasks still queued after the restart");
    run_and_check(c, ep, 2, path);

    taskq_client_destroy(&c);
    return 0;
}
