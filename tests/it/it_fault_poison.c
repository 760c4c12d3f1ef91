/* it_fault_poison: tasks that crash their child every time (test.crash
 * "segv", test.crash_until [99]) mixed into normal load. Each poison task
 * fails after exactly max_attempts (3) attempts with an error naming the
 * attempt limit, executed exactly 3 times (history: exec_start), no requeue
 * loop; every normal task succeeds with the right result. Checker at the
 * end. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault_util.h"

static taskq_task_spec_t *specs;
static uint8_t (*args)[32];
static taskq_err_t *codes;
static taskq_id_t *ids;
static bool *poison;
static int npoison_done, nnormal_done;
static long N;

static int index_of(const taskq_id_t *id)
{
    for (long i = 0; i < N; i++)
        if (memcmp(ids[i].b, id->b, 16) == 0)
            return (int)i;
    return -1;
}

static int on_done(const taskq_task_t *t, void *arg)
{
    (void)arg;
    int i = index_of(&t->id);
    H_ASSERT(i >= 0, "unknown id %s", h_id_str(&t->id));
    if (poison[i]) {
        H_ASSERT(t->state == TASKQ_STATE_FAILED, "poison task %d (%s) ended %s", i,
                 h_id_str(&t->id), taskq_state_name(t->state));
        H_ASSERT(t->attempts == 3, "poison task %d: attempts=%u, expected exactly 3", i,
                 t->attempts);
        H_ASSERT(strstr(t->error, "attempt limit (3)") != NULL,
                 "poison task %d: error '%s' does not name the attempt limit", i, t->error);
        npoison_done++;
    } else {
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "normal task %d ended %s: '%s'", i,
                 taskq_state_name(t->state), t->error);
        int64_t got = 0;
        H_ASSERT(h_result_int(t->result, t->result_len, &got) && got == (int64_t)i * i,
                 "normal task %d: bad result", i);
        nnormal_done++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(200);
    h_history_enable();
    /* a third under sanitizers (CI size only) */
    long npoison = h_scale(h_sanitized() ? 10 : 30, 100);
    N = h_scale(h_sanitized() ? 500 : 1500, 10000);
    specs = calloc((size_t)N, sizeof *specs);
    args = calloc((size_t)N, sizeof *args);
    codes = calloc((size_t)N, sizeof *codes);
    ids = calloc((size_t)N, sizeof *ids);
    poison = calloc((size_t)N, sizeof *poison);
    H_ASSERT(specs && args && codes && ids && poison, "out of memory");

    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w1 = h_worker_start(ep, 2);
    h_worker_t *w2 = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 30000);
    h_worker_wait_ready(c, h_worker_node_id(w1), 2, 20000);
    h_worker_wait_ready(c, h_worker_node_id(w2), 2, 20000);

    /* poison spread evenly through the load */
    long step = N / npoison;
    for (long i = 0; i < N; i++) {
        bool p = i % step == step / 2 && i / step < npoison;
        poison[i] = p;
        if (p && (i / step) % 2 == 0) {
            specs[i].name = "test.crash";
            specs[i].args_len = h_args_str(args[i], sizeof args[i], "segv");
        } else if (p) {
            specs[i].name = "test.crash_until";
            specs[i].args_len = h_args_int(args[i], sizeof args[i], 99);
        } else {
            specs[i].name = "test.square";
            specs[i].args_len = h_args_int(args[i], sizeof args[i], i);
        }
        specs[i].args = args[i];
        taskq_id_generate(&specs[i].id);
        ids[i] = specs[i].id;
    }
    int64_t t0 = h_now_ms();
    H_OK(taskq_submit_batch(c, specs, (size_t)N, codes));
    taskq_err_t rc = taskq_wait_many(c, ids, (size_t)N, 150000, on_done, NULL);
    H_ASSERT(rc == TASKQ_OK, "taskq_wait_many: %s (%d poison + %d normal of %ld)",
             taskq_err_name(rc), npoison_done, nnormal_done, N);
    h_log("%ld tasks (%d poison) done in %lld ms", N, npoison_done,
          (long long)(h_now_ms() - t0));
    H_ASSERT(npoison_done == (int)npoison, "%d poison tasks, expected %ld", npoison_done,
             npoison);

    /* no requeue loop: exactly 3 executions per poison task, 1 per normal */
    hevents_t *h = fu_load();
    char idb[TASKQ_ID_STRLEN + 1];
    size_t extra_normal = 0;
    for (long i = 0; i < N; i++) {
        taskq_id_format(&ids[i], idb);
        size_t n = hevents_count(h, "child", "exec_start", idb);
        if (poison[i])
            H_ASSERT(n == 3, "poison task %ld (%s): %zu exec_start, expected exactly 3", i, idb,
                     n);
        else
            extra_normal += n != 1;
    }
    H_ASSERT(extra_normal == 0, "%zu normal tasks did not run exactly once", extra_normal);
    size_t died = hevents_count(h, "worker", "child_died", NULL);
    H_ASSERT(died >= (size_t)npoison * 3, "%zu child_died events, expected >= %ld", died,
             npoison * 3);
    hevents_destroy(&h);
    checker_summary_t s = fu_check(h_broker_db(b));
    printf("FIGURES it_fault_poison: tasks=%ld poison=%ld exec_per_poison=3 child_died=%zu "
           "normal_reruns=%zu dup_explained=%zu\n",
           N, npoison, died, extra_normal, s.dup_explained);
    taskq_client_destroy(&c);
    free(specs);
    free(args);
    free(codes);
    free(ids);
    free(poison);
    return 0;
}
