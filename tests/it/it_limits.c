/* it_limits: global rate and concurrency limits (3 worker nodes x 4 slots).
 *  1. Rate 10/s burst 5 on task:test.echo, N tasks over the 3 nodes with a
 *     kill -9 + restart of the broker half-way: for every window [t_i, t_j]
 *     of dispatch timestamps (attempts' started_at, every attempt), count
 *     <= 5 + 10 * T (T in s, +1 ms rounding); and the limit does not
 *     throttle below its rate. N = 200, as the issue asks (~20 s at 10/s).
 *  2. Test clock (frozen: no refill): burst 5 dispatches exactly 5; after
 *     kill -9 + restart no fresh burst (0 more); +250 ms gives 2 more (2.5
 *     tokens), +250 ms 3 more, +1 s 5 more (capped at the burst).
 *  3. --max-running 3 on task:test.sleep with 12 free slots: peak exactly
 *     3, average >= 2.8 while backlogged (from the attempts' intervals);
 *     meanwhile an unlimited task name in the same queue keeps its latency.
 *  4. queue:Q max_running 2 (set with the CLI): peak 2.
 *  5. taskq_rate_limited puts the task back without a failure and the key
 *     waits retry_after.
 *  6. A killed child frees its permit (max_running 1): the next task of
 *     the key is dispatched at once.
 *  Bad keys are refused; limit list / rm. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static void set_limit(taskq_client_t *c, const char *key, double rate, uint32_t burst,
                      uint32_t max_running)
{
    taskq_limit_t l;
    memset(&l, 0, sizeof l);
    l.key = key;
    l.rate = rate;
    l.burst = burst;
    l.max_running = max_running;
    taskq_err_t rc = taskq_limit_set(c, &l);
    H_ASSERT(rc == TASKQ_OK, "limit set %s: %s '%s'", key, taskq_err_name(rc),
             taskq_client_last_error(c));
}

typedef struct {
    int64_t start, end; /* end 0: still running */
} span_t;

typedef struct {
    span_t *v;
    size_t n, cap;
} spans_t;

/* Appends every attempt of every task in ids to sp. */
static void collect(taskq_client_t *c, const taskq_id_t *ids, size_t n, spans_t *sp)
{
    for (size_t i = 0; i < n; i++) {
        taskq_attempts_t *a = NULL;
        H_OK(taskq_attempts(c, &ids[i], &a));
        for (size_t k = 0; k < taskq_attempts_count(a); k++) {
            const taskq_attempt_t *x = taskq_attempts_get(a, k);
            if (sp->n == sp->cap) {
                sp->cap = sp->cap ? 2 * sp->cap : 256;
                sp->v = realloc(sp->v, sp->cap * sizeof *sp->v);
                H_ASSERT(sp->v, "out of memory");
            }
            sp->v[sp->n++] = (span_t){x->started_at, x->finished_at};
        }
        taskq_attempts_destroy(&a);
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ev: time * 2 + (0 end, 1 start): ends sort before starts at equal times
 * (a permit released and taken again in the same ms is not an overlap). */
static void concurrency(const spans_t *sp, int *peak, double *avg, int64_t *t0_out,
                        int64_t *t1_out)
{
    int64_t *ev = calloc(2 * sp->n, sizeof *ev);
    int64_t t0 = INT64_MAX, t1 = 0; /* first start, last start */
    size_t ne = 0;
    for (size_t i = 0; i < sp->n; i++) {
        int64_t end = sp->v[i].end ? sp->v[i].end : INT64_MAX / 4;
        ev[ne++] = sp->v[i].start * 2 + 1;
        ev[ne++] = end * 2;
        if (sp->v[i].start < t0)
            t0 = sp->v[i].start;
        if (sp->v[i].start > t1)
            t1 = sp->v[i].start;
    }
    qsort(ev, ne, sizeof *ev, cmp_i64);
    int cur = 0;
    *peak = 0;
    double area = 0;
    int64_t prev = t0;
    for (size_t i = 0; i < ne; i++) {
        int64_t t = ev[i] >> 1;
        if (t > prev && prev < t1) {
            int64_t hi = t < t1 ? t : t1;
            if (hi > prev)
                area += (double)cur * (double)(hi - prev);
        }
        if (t > prev)
            prev = t;
        cur += (ev[i] & 1) ? 1 : -1;
        if (cur > *peak)
            *peak = cur;
    }
    *avg = t1 > t0 ? area / (double)(t1 - t0) : 0;
    *t0_out = t0;
    *t1_out = t1;
    free(ev);
}

/* Submits n tasks `name` (args) to queue; ids out. */
static void submit_many(taskq_client_t *c, const char *name, const void *args, size_t alen,
                        const char *queue, taskq_id_t *ids, size_t n)
{
    taskq_task_spec_t *s = calloc(n, sizeof *s);
    taskq_err_t *codes = calloc(n, sizeof *codes);
    H_ASSERT(s && codes, "out of memory");
    for (size_t i = 0; i < n; i++) {
        s[i].name = name;
        s[i].args = args;
        s[i].args_len = alen;
        s[i].queue = queue;
    }
    H_OK(taskq_submit_batch(c, s, n, codes));
    for (size_t i = 0; i < n; i++)
        ids[i] = s[i].id;
    free(s);
    free(codes);
}

static int cb_ok(const taskq_task_t *t, void *arg)
{
    (void)arg;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task %s (%s) ended %s: %s", h_id_str(&t->id),
             t->name, taskq_state_name(t->state), t->error);
    return 0;
}

/* ---- bad keys, CLI ------------------------------------------------------------ */

static void keys_and_cli(taskq_client_t *c, const char *ep)
{
    const char *bad[] = {"bogus", "task:", "queue:UPPER", "task:bad name", "node:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        taskq_limit_t l;
        memset(&l, 0, sizeof l);
        l.key = bad[i];
        l.rate = 1;
        taskq_err_t rc = taskq_limit_set(c, &l);
        H_ASSERT(rc == TASKQ_EINVAL, "limit key '%s': %s, expected EINVAL", bad[i],
                 taskq_err_name(rc));
    }
    H_ASSERT(taskq_limit_rm(c, "task:nosuch") == TASKQ_ENOTFOUND, "rm of an unknown limit");
    int rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "set", "queue:lq", "--max-running", "2");
    H_ASSERT(rc == 0, "taskq limit set queue:lq --max-running 2: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "set", "task:test.square", "--rate", "600/m",
                   "--burst", "7");
    H_ASSERT(rc == 0, "taskq limit set --rate 600/m: exit %d", rc);
    taskq_limits_t *ls = NULL;
    H_OK(taskq_limits(c, &ls));
    bool q = false, t = false;
    for (size_t i = 0; i < taskq_limits_count(ls); i++) {
        const taskq_limit_t *l = taskq_limits_get(ls, i);
        if (!strcmp(l->key, "queue:lq"))
            q = l->max_running == 2 && l->rate == 0;
        if (!strcmp(l->key, "task:test.square"))
            t = l->rate > 9.99 && l->rate < 10.01 && l->burst == 7;
    }
    taskq_limits_destroy(&ls);
    H_ASSERT(q && t, "limits do not list queue:lq max_running 2 (%d) and task:test.square "
             "10/s burst 7 (%d)", q, t);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "list", "--json");
    H_ASSERT(rc == 0 && strstr(out, "queue:lq"), "limit list --json: exit %d '%.300s'", rc, out);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "rm", "task:test.square");
    H_ASSERT(rc == 0, "taskq limit rm: exit %d", rc);
}

/* ---- 4: queue:lq max_running 2 ----------------------------------------------- */

static void queue_limit(taskq_client_t *c)
{
    uint8_t a[16];
    size_t alen = h_args_fmt(a, sizeof a, "f", 0.3);
    taskq_id_t ids[6];
    submit_many(c, "test.sleep", a, alen, "lq", ids, 6);
    H_OK(taskq_wait_many(c, ids, 6, 30000, cb_ok, NULL));
    spans_t sp = {0};
    collect(c, ids, 6, &sp);
    int peak;
    double avg;
    int64_t t0, t1;
    concurrency(&sp, &peak, &avg, &t0, &t1);
    h_log("queue:lq max_running 2: peak %d, average %.2f", peak, avg);
    H_ASSERT(peak == 2, "queue:lq max_running 2 with 12 slots: peak %d", peak);
    free(sp.v);
}

/* ---- 5: taskq_rate_limited ---------------------------------------------------- */

static void rate_limited(taskq_client_t *c)
{
    set_limit(c, "task:test.rate_limited", 100, 10, 0);
    uint8_t a[32];
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = "test.rate_limited";
    s.args = a;
    s.args_len = h_args_fmt(a, sizeof a, "dd", 300, 2);
    s.max_attempts = 1; /* a put-back is not a failure */
    H_OK(taskq_submit(c, &s));
    taskq_task_t *t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "test.rate_limited");
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 3 && t->failures == 0 &&
                 h_result_int(t->result, t->result_len, &v) && v == 3,
             "rate-limited twice, max_attempts 1: %s attempts=%u failures=%u result %lld: %s",
             taskq_state_name(t->state), t->attempts, t->failures, (long long)v, t->error);
    taskq_task_destroy(&t);
    taskq_attempts_t *at = NULL;
    H_OK(taskq_attempts(c, &s.id, &at));
    H_ASSERT(taskq_attempts_count(at) == 3, "%zu attempts", taskq_attempts_count(at));
    for (size_t k = 0; k < 2; k++) {
        const taskq_attempt_t *x = taskq_attempts_get(at, k);
        const taskq_attempt_t *y = taskq_attempts_get(at, k + 1);
        H_ASSERT(strcmp(x->state, "rate_limited") == 0, "attempt %zu state '%s'", k + 1,
                 x->state);
        H_ASSERT(y->started_at - x->finished_at >= 299, "attempt %zu started %lld ms after a "
                 "429 with retry-after 300 ms", k + 2, (long long)(y->started_at - x->finished_at));
    }
    taskq_attempts_destroy(&at);
    H_OK(taskq_limit_rm(c, "task:test.rate_limited"));
    h_log("taskq_rate_limited: 2 put-backs >= 300 ms apart, no failure, succeeded on attempt 3");
}

/* ---- 3: max_running 3 + the latency of an unlimited task --------------------------- */

static int64_t square_latency(taskq_client_t *c, int i)
{
    uint8_t a[16];
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = "test.square";
    s.args = a;
    s.args_len = h_args_int(a, sizeof a, i);
    int64_t t0 = h_now_ms();
    H_OK(taskq_submit(c, &s));
    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, &s.id, 10000, &t));
    int64_t ms = h_now_ms() - t0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "test.square: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    return ms;
}

static void max_running(taskq_client_t *c)
{
    enum { NS = 24, NQ = 20 };
    int64_t base[NQ], during[NQ];
    for (int i = 0; i < NQ; i++)
        base[i] = square_latency(c, i);
    set_limit(c, "task:test.sleep", 0, 0, 3);
    uint8_t a[16];
    size_t alen = h_args_fmt(a, sizeof a, "f", 0.5);
    taskq_id_t ids[NS];
    submit_many(c, "test.sleep", a, alen, NULL, ids, NS);
    /* the square tasks queue behind 24 held-back sleeps in the same queue */
    for (int i = 0; i < NQ; i++)
        during[i] = square_latency(c, i);
    taskq_task_t *t = h_status(c, &ids[NS - 1]);
    H_ASSERT(t && t->state == TASKQ_STATE_QUEUED, "the last sleep task is %s: the latency was "
             "not measured while backlogged", t ? taskq_state_name(t->state) : "missing");
    taskq_task_destroy(&t);
    H_OK(taskq_wait_many(c, ids, NS, 60000, cb_ok, NULL));
    spans_t sp = {0};
    collect(c, ids, NS, &sp);
    int peak;
    double avg;
    int64_t t0, t1;
    concurrency(&sp, &peak, &avg, &t0, &t1);
    qsort(base, NQ, sizeof base[0], cmp_i64);
    qsort(during, NQ, sizeof during[0], cmp_i64);
    h_log("max_running 3, 24 x 0.5 s on 12 slots: peak %d, average %.3f over %lld ms; "
          "test.square latency p50/max idle %lld/%lld ms, beside the backlog %lld/%lld ms",
          peak, avg, (long long)(t1 - t0), (long long)base[NQ / 2], (long long)base[NQ - 1],
          (long long)during[NQ / 2], (long long)during[NQ - 1]);
    H_ASSERT(peak == 3, "peak concurrency %d with max_running 3", peak);
    H_ASSERT(avg >= 2.8, "average concurrency %.3f < 2.8 while backlogged", avg);
    H_ASSERT(during[NQ / 2] <= 3 * base[NQ / 2] + 20 && during[NQ - 1] < 400,
             "an unlimited task beside a held-back backlog: p50 %lld ms (idle %lld), max %lld ms",
             (long long)during[NQ / 2], (long long)base[NQ / 2], (long long)during[NQ - 1]);
    free(sp.v);
    H_OK(taskq_limit_rm(c, "task:test.sleep"));
}

/* ---- 1: rate over 3 nodes, across kill -9 ---------------------------------------- */

typedef struct {
    taskq_client_t *c;
    uint64_t want;
} done_arg_t;

static bool echo_dispatched(void *p)
{
    done_arg_t *a = p;
    taskq_queue_info_t q;
    if (!h_queue_info(a->c, "rq", &q))
        return false;
    return q.counts[TASKQ_STATE_RUNNING] + q.counts[TASKQ_STATE_SUCCEEDED] >= a->want;
}

static void rate_window(h_broker_t *b, taskq_client_t **cp, h_worker_t **w, int nw)
{
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = *cp;
    const int n = 200; /* the size: 200 dispatches at 10/s, burst 5 */
    set_limit(c, "task:test.echo", 10, 5, 0);
    uint8_t a[16];
    size_t alen = h_args_int(a, sizeof a, 1);
    taskq_id_t *ids = calloc((size_t)n, sizeof *ids);
    submit_many(c, "test.echo", a, alen, "rq", ids, (size_t)n);
    done_arg_t da = {c, (uint64_t)n / 2};
    h_wait_for(echo_dispatched, &da, 60000, "half of the rate-limited tasks dispatched");
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    *cp = c = h_client(ep, 10000);
    for (int i = 0; i < nw; i++)
        h_worker_wait_ready(c, h_worker_node_id(w[i]), 1, 20000);
    H_OK(taskq_wait_many(c, ids, (size_t)n, 120000, cb_ok, NULL));
    spans_t sp = {0};
    collect(c, ids, (size_t)n, &sp);
    int64_t *ts = calloc(sp.n, sizeof *ts);
    for (size_t i = 0; i < sp.n; i++)
        ts[i] = sp.v[i].start;
    qsort(ts, sp.n, sizeof *ts, cmp_i64);
    double worst = -1e9;
    size_t wi = 0, wj = 0;
    for (size_t i = 0; i < sp.n; i++)
        for (size_t j = i; j < sp.n; j++) {
            double allowed = 5.0 + 10.0 * (double)(ts[j] - ts[i] + 1) / 1000.0;
            double excess = (double)(j - i + 1) - allowed;
            if (excess > worst) {
                worst = excess;
                wi = i;
                wj = j;
            }
        }
    int64_t maxgap = 0;
    for (size_t i = 1; i < sp.n; i++)
        if (ts[i] - ts[i - 1] > maxgap)
            maxgap = ts[i] - ts[i - 1];
    int64_t span = ts[sp.n - 1] - ts[0];
    h_log("rate 10/s burst 5: %zu dispatches of %d tasks in %lld ms (longest gap %lld ms, the "
          "restart); tightest window: %zu dispatches in %lld ms, %.2f under the bound",
          sp.n, n, (long long)span, (long long)maxgap, wj - wi + 1,
          (long long)(ts[wj] - ts[wi]), -worst);
    H_ASSERT(worst <= 0, "window [%lld, %lld]: %zu dispatches > 5 + 10 * %.3f s",
             (long long)ts[wi], (long long)ts[wj], wj - wi + 1, (double)(ts[wj] - ts[wi]) / 1000);
    /* and not throttled below the rate (the restart's pause aside) */
    double ideal_ms = (double)(sp.n - 5) * 100.0;
    H_ASSERT((double)(span - maxgap) <= ideal_ms * 1.3 + 1000,
             "%zu dispatches took %lld ms (+%lld ms restart gap), the rate allows %.0f ms", sp.n,
             (long long)(span - maxgap), (long long)maxgap, ideal_ms);
    free(ts);
    free(sp.v);
    free(ids);
    H_OK(taskq_limit_rm(c, "task:test.echo"));
}

/* ---- 2: the bucket across kill -9 on a frozen clock ------------------------------ */

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *id;
} probe_arg_t;

static bool probe_done(void *p)
{
    probe_arg_t *a = p;
    taskq_task_t *t = h_status(a->c, a->id);
    bool ok = t && t->state == TASKQ_STATE_SUCCEEDED;
    taskq_task_destroy(&t);
    return ok;
}

/* Runs an unlimited probe task in the same queue: once it succeeded, the
 * broker has dispatched every limited task it was going to. Returns how
 * many of ids have been dispatched. */
static int dispatched_after_probe(taskq_client_t *c, const taskq_id_t *ids, int n)
{
    uint8_t a[16];
    taskq_id_t probe;
    h_submit(c, &probe, "test.square", a, h_args_int(a, sizeof a, 2), 0, 0);
    probe_arg_t pa = {c, &probe};
    h_wait_for(probe_done, &pa, 20000, "probe task");
    int k = 0;
    for (int i = 0; i < n; i++) {
        taskq_task_t *t = h_status(c, &ids[i]);
        k += t && t->attempts > 0;
        taskq_task_destroy(&t);
    }
    return k;
}

static void frozen_bucket(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/bucket.db", h_tmpdir());
    /* a long retention: the finished tasks stay countable (it_eta checks
     * that retention runs on the broker clock) */
    h_broker_t *b = h_broker_start(db, "--test-clock=1767225600000", "--retention", "315360000");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_t *w = h_worker_start(ep, 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    set_limit(c, "task:test.echo", 10, 5, 0);
    enum { NB = 20 };
    uint8_t a[16];
    size_t alen = h_args_int(a, sizeof a, 1);
    taskq_id_t ids[NB];
    submit_many(c, "test.echo", a, alen, NULL, ids, NB);
    int k = dispatched_after_probe(c, ids, NB);
    H_ASSERT(k == 5, "frozen clock, burst 5: %d dispatched, expected exactly 5", k);
    /* no lease open across the kill: the 5 and the probe have finished */
    for (int64_t t0 = h_now_ms();;) {
        taskq_queue_info_t q;
        if (h_queue_info(c, "default", &q) && q.counts[TASKQ_STATE_SUCCEEDED] == 6)
            break;
        H_ASSERT(h_now_ms() - t0 < 10000, "the 5 dispatched tasks did not finish");
        usleep(20000);
    }
    taskq_client_destroy(&c);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b); /* the clock starts at the same instant again */
    c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    k = dispatched_after_probe(c, ids, NB);
    H_ASSERT(k == 5, "after kill -9 + restart on a frozen clock: %d dispatched, expected still 5 "
             "(a restart must not grant a fresh burst)", k);
    /* refill at 10/s (binary-exact steps), capped at the burst */
    const struct {
        int64_t ms;
        int want;
    } steps[] = {{250, 7}, {250, 10}, {1000, 15}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        h_clock(c, steps[i].ms, 0);
        k = dispatched_after_probe(c, ids, NB);
        H_ASSERT(k == steps[i].want, "+%lld ms at 10/s burst 5: %d dispatched, expected %d",
                 (long long)steps[i].ms, k, steps[i].want);
    }
    h_log("frozen clock: burst 5, no fresh burst after kill -9; +250 ms: +2, +250 ms: +3, "
          "+1 s: +5 (the burst)");
    h_clock(c, 1000, 0);
    H_OK(taskq_wait_many(c, ids, NB, 20000, cb_ok, NULL));
    taskq_client_destroy(&c);
}

/* ---- 6: a killed child frees its permit --------------------------------------------- */

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *ids;
    int n;
    pid_t not_pid;  /* a running task in another child than this */
    pid_t pid;
    int idx;
} running_arg_t;

static bool one_running(void *p)
{
    running_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && t->state == TASKQ_STATE_RUNNING && t->child_pid > 0 &&
                  t->child_pid != a->not_pid;
        if (ok) {
            a->pid = t->child_pid;
            a->idx = i;
        }
        taskq_task_destroy(&t);
        if (ok)
            return true;
    }
    return false;
}

/* one task running that is not the killed attempt (attempt 1 of idx) */
static bool next_dispatched(void *p)
{
    running_arg_t *a = p;
    for (int i = 0; i < a->n; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && t->state == TASKQ_STATE_RUNNING && (i != a->idx || t->attempts > 1);
        taskq_task_destroy(&t);
        if (ok)
            return true;
    }
    return false;
}

static void killed_child(taskq_client_t *c, h_worker_t **w, int nw)
{
    set_limit(c, "task:test.hang", 0, 0, 1);
    taskq_id_t ids[2];
    for (int i = 0; i < 2; i++)
        h_submit(c, &ids[i], "test.hang", NULL, 0, 0, 3);
    running_arg_t ra = {c, ids, 2, 0, 0, -1};
    h_wait_for(one_running, &ra, 10000, "one test.hang running");
    pid_t victim = ra.pid;
    taskq_task_t *t = h_status(c, &ids[ra.idx]);
    h_worker_t *owner = NULL;
    for (int i = 0; i < nw; i++)
        if (!strcmp(h_worker_node_id(w[i]), t->worker))
            owner = w[i];
    H_ASSERT(owner, "no worker named '%s'", t->worker);
    taskq_task_destroy(&t);
    h_worker_kill_child(owner, victim);
    /* the task the key runs next (the killed one's attempt 2, or the
     * other); its child pid reaches the broker only with a heartbeat, so
     * the wait looks at the state and the timing at the attempts */
    h_wait_for(next_dispatched, &ra, 5000, "the key's next task dispatched after the kill");
    int64_t crash_end = 0, next_start = 0;
    for (int i = 0; i < 2; i++) {
        taskq_attempts_t *at = NULL;
        H_OK(taskq_attempts(c, &ids[i], &at));
        for (size_t k = 0; k < taskq_attempts_count(at); k++) {
            const taskq_attempt_t *x = taskq_attempts_get(at, k);
            if (!strcmp(x->code, "taskq.crash"))
                crash_end = x->finished_at;
            else if (x->started_at > next_start)
                next_start = x->started_at;
        }
        taskq_attempts_destroy(&at);
    }
    H_ASSERT(crash_end > 0 && next_start >= crash_end,
             "attempts: crash ended at %lld, next dispatch at %lld", (long long)crash_end,
             (long long)next_start);
    int64_t ms = next_start - crash_end;
    H_ASSERT(ms <= 500, "the key's next dispatch came %lld ms after the crash freed its permit",
             (long long)ms);
    taskq_limits_t *ls = NULL;
    H_OK(taskq_limits(c, &ls));
    uint32_t running = 99;
    for (size_t i = 0; i < taskq_limits_count(ls); i++)
        if (!strcmp(taskq_limits_get(ls, i)->key, "task:test.hang"))
            running = taskq_limits_get(ls, i)->running;
    taskq_limits_destroy(&ls);
    H_ASSERT(running == 1, "task:test.hang running=%u after the kill, expected 1", running);
    int nrun = 0;
    for (int i = 0; i < 2; i++) {
        t = h_status(c, &ids[i]);
        nrun += t->state == TASKQ_STATE_RUNNING;
        taskq_task_destroy(&t);
    }
    H_ASSERT(nrun == 1, "%d test.hang running with max_running 1", nrun);
    h_log("killed child freed its permit: the key's next dispatch %lld ms after the crash",
          (long long)ms);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(170);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    enum { NW = 3 };
    h_worker_t *w[NW];
    for (int i = 0; i < NW; i++)
        w[i] = h_worker_start(ep, 4);
    for (int i = 0; i < NW; i++)
        h_worker_wait_ready(c, h_worker_node_id(w[i]), 4, 20000);

    keys_and_cli(c, ep);
    queue_limit(c);
    rate_limited(c);
    max_running(c);
    rate_window(b, &c, w, NW);
    frozen_bucket();
    killed_child(c, w, NW);

    /* test.hang runs on: a warm shutdown would wait out the grace */
    for (int i = 0; i < NW; i++)
        h_worker_kill_node(w[i]);
    taskq_client_destroy(&c);
    return 0;
}
