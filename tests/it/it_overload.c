/* it_overload: admission control (--max-pending) and the broker's memory
 * under a large backlog.
 *  1. --max-pending 1000, no worker: 1000 tasks are accepted, then every
 *     further SUBMIT is answered EBUSY at once (latency measured), batches
 *     too, the CLI exits with a clear message; the count survives a restart;
 *     a worker drains the backlog and submissions are accepted again.
 *  2. 200,000 pending tasks (1,000,000 with TASKQ_FAULT_SCALE=full): the
 *     broker's VmRSS stays under 128 MiB (queued tasks live in SQLite). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "storefault.h"

#define LIMIT 1000
#define PROBES 200

#if defined(__SANITIZE_ADDRESS__)
#define RSS_LIMIT_KB (512L * 1024) /* ASan's shadow and quarantine; the bound is for release */
#else
#define RSS_LIMIT_KB (128L * 1024)
#endif

static uint8_t args1[16];

static taskq_task_spec_t *make_specs(size_t n)
{
    taskq_task_spec_t *s = calloc(n, sizeof *s);
    H_ASSERT(s, "out of memory");
    size_t len = h_args_int(args1, sizeof args1, 3);
    for (size_t i = 0; i < n; i++) {
        s[i].name = "test.square";
        s[i].args = args1;
        s[i].args_len = len;
    }
    return s;
}

static bool drained(void *p)
{
    taskq_stats_t st;
    return taskq_stats(p, &st) == TASKQ_OK && st.queued == 0 && st.running == 0;
}

/* Every further submit must be EBUSY, answered fast. */
static void probe_busy(taskq_client_t *c, const char *phase)
{
    int64_t lat[PROBES];
    for (int i = 0; i < PROBES; i++) {
        taskq_task_spec_t s = {.name = "test.square", .args = args1,
                               .args_len = h_args_int(args1, sizeof args1, 3)};
        int64_t t0 = h_now_ms();
        taskq_err_t e = taskq_submit(c, &s);
        lat[i] = h_now_ms() - t0;
        H_ASSERT(e == TASKQ_EBUSY, "%s: submit %d over the limit returned %s", phase, i,
                 taskq_err_name(e));
    }
    int64_t p50 = sf_quantile(lat, PROBES, 0.5), p99 = sf_quantile(lat, PROBES, 0.99);
    h_log("%s: %d submits over the limit all EBUSY: latency p50 %lld ms, p99 %lld ms, max %lld ms",
          phase, PROBES, (long long)p50, (long long)p99, (long long)lat[PROBES - 1]);
    /* no resend loop on BUSY: well under the client's timeout (10 s) */
    H_ASSERT(p99 < 1000, "%s: EBUSY p99 %lld ms: the client waits or resends", phase,
             (long long)p99);
}

static void admission(void)
{
    h_broker_t *b = h_broker_start(NULL, "--max-pending", "1000");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);

    taskq_task_spec_t *specs = make_specs(LIMIT);
    taskq_err_t *codes = calloc(LIMIT, sizeof *codes);
    H_OK(taskq_submit_batch(c, specs, LIMIT, codes));
    h_log("%d tasks accepted (the limit)", LIMIT);
    probe_busy(c, "at the limit");

    /* a batch over the limit: refused whole, promptly */
    taskq_task_spec_t *more = make_specs(600);
    taskq_err_t *mcodes = calloc(600, sizeof *mcodes);
    int64_t t0 = h_now_ms();
    taskq_err_t e = taskq_submit_batch(c, more, 600, mcodes);
    int64_t ms = h_now_ms() - t0;
    H_ASSERT(e == TASKQ_EBUSY, "batch over the limit: %s", taskq_err_name(e));
    for (int i = 0; i < 600; i++)
        H_ASSERT(mcodes[i] == TASKQ_EBUSY, "batch task %d: %s", i, taskq_err_name(mcodes[i]));
    h_log("batch of 600 over the limit: EBUSY for all in %lld ms", (long long)ms);
    H_ASSERT(ms < 2000, "batch EBUSY took %lld ms", (long long)ms);
    for (int i = 0; i < 600; i++)
        H_ASSERT(h_status(c, &more[i].id) == NULL, "refused task %d was stored", i);

    /* the CLI says so and exits non-zero */
    char out[256];
    int rc = h_run_cli(out, sizeof out, &ms, ep, "submit", "test.square", "[3]");
    H_ASSERT(rc == 7, "taskq submit over the limit exited %d (expected 7: busy)", rc);
    h_log("CLI over the limit: exit %d in %lld ms", rc, (long long)ms);

    /* the pending count is loaded at start-up */
    h_broker_kill(b, SIGTERM);
    h_broker_restart(b);
    taskq_client_destroy(&c);
    c = h_client(ep, 10000);
    probe_busy(c, "after a restart");

    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.queued == LIMIT && st.total == LIMIT, "queued=%llu total=%llu, expected %d",
             (unsigned long long)st.queued, (unsigned long long)st.total, LIMIT);

    h_worker_t *w = h_worker_start(ep, 2);
    (void)w;
    int64_t took = h_wait_for(drained, c, 120000, "the backlog drained");
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.succeeded == LIMIT, "succeeded=%llu", (unsigned long long)st.succeeded);
    h_log("worker drained the backlog of %d in %lld ms", LIMIT, (long long)took);
    H_OK(taskq_submit_batch(c, more, 600, mcodes));
    h_log("after the drain: 600 more accepted");
    free(specs);
    free(codes);
    free(more);
    free(mcodes);
    taskq_client_destroy(&c);
}

static void rss_backlog(void)
{
    size_t n = (size_t)h_scale(200000, 1000000);
    char db[512];
    snprintf(db, sizeof db, "%s/backlog.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db, "--max-pending", "0", "--durability", "normal");
    taskq_client_t *c = h_client(h_broker_endpoint(b), 30000);
    long rss0 = sf_rss_kb(h_broker_pid(b)), peak = rss0;
    const size_t chunk = 20000;
    taskq_task_spec_t *specs = make_specs(chunk);
    int64_t t0 = h_now_ms();
    for (size_t done = 0; done < n; done += chunk) {
        size_t k = n - done < chunk ? n - done : chunk;
        for (size_t i = 0; i < k; i++)
            memset(&specs[i].id, 0, sizeof specs[i].id); /* fresh ids */
        H_OK(taskq_submit_batch(c, specs, k, NULL));
        long rss = sf_rss_kb(h_broker_pid(b));
        peak = rss > peak ? rss : peak;
    }
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.queued == n, "queued=%llu, expected %zu", (unsigned long long)st.queued, n);
    long rss = sf_rss_kb(h_broker_pid(b));
    peak = rss > peak ? rss : peak;
    h_log("%zu pending tasks submitted in %lld ms: broker VmRSS %ld kB at start, %ld kB now, "
          "peak %ld kB (limit %ld kB)",
          n, (long long)(h_now_ms() - t0), rss0, rss, peak, RSS_LIMIT_KB);
    H_ASSERT(peak < RSS_LIMIT_KB, "broker RSS %ld kB with %zu pending", peak, n);
    free(specs);
    taskq_client_destroy(&c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(280);
    admission();
    rss_backlog();
    return 0;
}
