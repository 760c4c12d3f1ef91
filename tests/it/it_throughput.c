/* it_throughput: 10,000 taskq.sumsq tasks through one broker and a worker
 * with 4 children; every result must be sum_{k<n} k*k. The rate is printed
 * (informative, not asserted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N 10000

typedef struct {
    taskq_id_t id;
    int64_t n;
    bool seen;
} entry_t;

typedef struct {
    entry_t *by_id; /* sorted by id */
    size_t delivered;
} ctx_t;

static int cmp_id(const void *a, const void *b)
{
    return memcmp(((const entry_t *)a)->id.b, ((const entry_t *)b)->id.b, 16);
}

static int on_done(const taskq_task_t *t, void *arg)
{
    ctx_t *ctx = arg;
    entry_t key;
    key.id = t->id;
    entry_t *e = bsearch(&key, ctx->by_id, N, sizeof *e, cmp_id);
    H_ASSERT(e != NULL, "wait_many delivered unknown id %s", h_id_str(&t->id));
    H_ASSERT(!e->seen, "task %s delivered twice", h_id_str(&t->id));
    e->seen = true;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %s (n=%lld) is %s: %s", h_id_str(&t->id),
             (long long)e->n, taskq_state_name(t->state), t->error);
    int64_t got = 0, want = (e->n - 1) * e->n * (2 * e->n - 1) / 6;
    H_ASSERT(h_result_int(t->result, t->result_len, &got), "task %s: result is not an integer",
             h_id_str(&t->id));
    H_ASSERT(got == want, "sumsq(%lld) = %lld, expected %lld", (long long)e->n, (long long)got,
             (long long)want);
    ctx->delivered++;
    return 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(280);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 4);
    taskq_client_t *c = h_client(ep, 30000);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);

    taskq_task_spec_t *specs = calloc(N, sizeof *specs);
    uint8_t(*args)[16] = calloc(N, sizeof *args);
    taskq_err_t *codes = calloc(N, sizeof *codes);
    entry_t *ents = calloc(N, sizeof *ents);
    taskq_id_t *ids = calloc(N, sizeof *ids);
    H_ASSERT(specs && args && codes && ents && ids, "out of memory");
    for (size_t i = 0; i < N; i++) {
        specs[i].name = "taskq.sumsq";
        specs[i].args = args[i];
        specs[i].args_len = h_args_int(args[i], sizeof args[i], (int64_t)(i % 1000));
    }

    int64_t t0 = h_now_ms();
    H_OK(taskq_submit_batch(c, specs, N, codes));
    int64_t t_sub = h_now_ms();
    for (size_t i = 0; i < N; i++) {
        H_ASSERT(codes[i] == TASKQ_OK, "task %zu: code %s", i, taskq_err_name(codes[i]));
        H_ASSERT(!taskq_id_is_zero(&specs[i].id), "task %zu: id not written back", i);
        ids[i] = specs[i].id;
        ents[i].id = specs[i].id;
        ents[i].n = (int64_t)(i % 1000);
    }
    qsort(ents, N, sizeof *ents, cmp_id);
    for (size_t i = 1; i < N; i++)
        H_ASSERT(cmp_id(&ents[i - 1], &ents[i]) != 0, "duplicate id generated");
    h_log("submitted %d tasks in %lld ms", N, (long long)(t_sub - t0));

    ctx_t ctx = {ents, 0};
    taskq_err_t rc = taskq_wait_many(c, ids, N, 240000, on_done, &ctx);
    H_ASSERT(rc == TASKQ_OK, "taskq_wait_many: %s after %zu of %d results", taskq_err_name(rc),
             ctx.delivered, N);
    H_ASSERT(ctx.delivered == N, "delivered %zu of %d", ctx.delivered, N);
    double secs = (double)(h_now_ms() - t0) / 1000.0;
    printf("throughput tasks=%d seconds=%.3f rate=%.1f\n", N, secs, N / secs);
    fflush(stdout);

    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.succeeded == N && st.total == N, "stats: succeeded=%llu total=%llu, expected %d",
             (unsigned long long)st.succeeded, (unsigned long long)st.total, N);

    taskq_client_destroy(&c);
    free(specs);
    free(args);
    free(codes);
    free(ents);
    free(ids);
    return 0;
}
