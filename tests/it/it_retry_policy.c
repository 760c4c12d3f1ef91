/* it_retry_policy: failure codes, attempt budget, backoff, retry filters.
 * Real clock (broker R):
 *  1. test.crash with --max-attempts 3 runs exactly 3 times (3 attempts,
 *     3 children), ends failed with code taskq.crash and the signal in the
 *     message; a crash is re-queued at once (no backoff).
 *  2. --no-retry-on 'http.4*': test.fail_code http.404 fails after one
 *     attempt; http.500 is retried; --retry-on 'http.5*' stops http.404;
 *     taskq_fail_permanent never retries; the CLI's --no-retry-on.
 *  3. A time limit fails with taskq.timeout and spends budget.
 *  4. Measured backoff: base 200 ms, factor 2, equal jitter: the gaps
 *     between an attempt's end and the next start lie in [d/2, d + slack].
 * Test clock (broker T):
 *  5. Exact backoff: due_at - now of every retry lies in the jitter bounds
 *     of d = min(max, base * factor^(failures-1)) for equal, full and none,
 *     and jitter is really applied (not every delay is d).
 *  6. test.policy (registered max_attempts 2, backoff 100ms,1,100ms, no
 *     jitter): retried after exactly 100 ms, fails after 2 attempts with
 *     code test.policy; a submitted --max-attempts 3 overrides it.
 *  7. taskq_retry(delay): retrying with exactly that delay, code taskq.retry. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static taskq_task_t *run_to_end(taskq_client_t *c, taskq_task_spec_t *s, int64_t timeout_ms)
{
    H_OK(taskq_submit(c, s));
    return h_wait_task(c, &s->id, is_terminal, NULL, timeout_ms, s->name);
}

static taskq_attempts_t *attempts_of(taskq_client_t *c, const taskq_id_t *id, size_t want)
{
    taskq_attempts_t *a = NULL;
    H_OK(taskq_attempts(c, id, &a));
    H_ASSERT(taskq_attempts_count(a) == want, "task %s: %zu attempts in the history, expected %zu",
             h_id_str(id), taskq_attempts_count(a), want);
    for (size_t i = 0; i < want; i++)
        H_ASSERT(taskq_attempts_get(a, i)->attempt == i + 1, "attempt %zu numbered %u", i + 1,
                 taskq_attempts_get(a, i)->attempt);
    return a;
}

static void expect_failed(const taskq_task_t *t, uint32_t attempts, const char *code,
                          const char *what)
{
    H_ASSERT(t->state == TASKQ_STATE_FAILED && t->attempts == attempts &&
                 t->failures == attempts && strcmp(t->code, code) == 0,
             "%s: %s attempts=%u failures=%u code='%s' error='%s', expected failed after %u "
             "with %s",
             what, taskq_state_name(t->state), t->attempts, t->failures, t->code, t->error,
             attempts, code);
}

/* ---- real clock ------------------------------------------------------------- */

static void crash_budget(taskq_client_t *c)
{
    uint8_t a[32];
    taskq_task_spec_t s = h_spec("test.crash", a, h_args_str(a, sizeof a, "segv"));
    s.max_attempts = 3;
    taskq_task_t *t = run_to_end(c, &s, 30000);
    expect_failed(t, 3, "taskq.crash", "always-crashing task, --max-attempts 3");
    taskq_task_destroy(&t);
    taskq_attempts_t *at = attempts_of(c, &s.id, 3);
    for (size_t i = 0; i < 3; i++) {
        const taskq_attempt_t *x = taskq_attempts_get(at, i);
        bool ended = !strcmp(x->state, "failed") || !strcmp(x->state, "requeued") ||
                     !strcmp(x->state, "retrying");
        H_ASSERT(strcmp(x->code, "taskq.crash") == 0 && strstr(x->message, "signal") && ended,
                 "attempt %zu: state '%s' code '%s' message '%s'", i + 1, x->state, x->code,
                 x->message);
        H_ASSERT(x->child_pid > 0 && x->finished_at >= x->started_at, "attempt %zu: pid %d",
                 i + 1, x->child_pid);
        for (size_t k = 0; k < i; k++)
            H_ASSERT(taskq_attempts_get(at, k)->child_pid != x->child_pid,
                     "attempts %zu and %zu ran in the same child %d: a crash did not kill it",
                     k + 1, i + 1, x->child_pid);
        if (i > 0) {
            int64_t gap = x->started_at - taskq_attempts_get(at, i - 1)->finished_at;
            /* the default backoff (2 s, equal jitter) would be >= 1 s */
            H_ASSERT(gap < 1000, "crash re-queue took %lld ms: a crash is re-queued at once",
                     (long long)gap);
        }
    }
    H_ASSERT(strcmp(taskq_attempts_get(at, 2)->state, "failed") == 0, "last attempt '%s'",
             taskq_attempts_get(at, 2)->state);
    taskq_attempts_destroy(&at);
    h_log("test.crash --max-attempts 3: 3 attempts in 3 children, failed taskq.crash");
}

static void retry_filters(taskq_client_t *c, const char *ep)
{
    uint8_t a404[64], a500[64], aperm[64];
    size_t l404 = h_args_fmt(a404, sizeof a404, "ss", "http.404", "not found");
    size_t l500 = h_args_fmt(a500, sizeof a500, "ss", "http.500", "oops");
    taskq_task_spec_t s = h_spec("test.fail_code", a404, l404);
    s.max_attempts = 5;
    s.backoff_base_ms = 50;
    s.no_retry_on = "http.4*";
    taskq_task_t *t = run_to_end(c, &s, 20000);
    expect_failed(t, 1, "http.404", "http.404 with --no-retry-on http.4*");
    H_ASSERT(strstr(t->error, "not found"), "error '%s'", t->error);
    taskq_task_destroy(&t);

    s = h_spec("test.fail_code", a500, l500);
    s.max_attempts = 2;
    s.backoff_base_ms = 50;
    s.no_retry_on = "http.4*";
    t = run_to_end(c, &s, 20000);
    expect_failed(t, 2, "http.500", "http.500 with --no-retry-on http.4*, --max-attempts 2");
    taskq_task_destroy(&t);

    s = h_spec("test.fail_code", a404, l404);
    s.max_attempts = 5;
    s.backoff_base_ms = 50;
    s.retry_on = "http.5*,taskq.crash";
    t = run_to_end(c, &s, 20000);
    expect_failed(t, 1, "http.404", "http.404 with --retry-on http.5*");
    taskq_task_destroy(&t);

    s = h_spec("test.fail_perm", aperm, h_args_str(aperm, sizeof aperm, "bad.input"));
    s.max_attempts = 5;
    t = run_to_end(c, &s, 20000);
    expect_failed(t, 1, "bad.input", "taskq_fail_permanent");
    taskq_task_destroy(&t);

    /* the CLI */
    int rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.fail_code", "[\"http.404\",\"nf\"]",
                       "--no-retry-on", "http.4*", "--max-attempts", "5");
    H_ASSERT(rc == 0, "CLI submit --no-retry-on: exit %d", rc);
    taskq_id_t id;
    bool found = false;
    for (const char *p = out; !found && strlen(p) >= TASKQ_ID_STRLEN; p++) {
        char buf[TASKQ_ID_STRLEN + 1];
        memcpy(buf, p, TASKQ_ID_STRLEN);
        buf[TASKQ_ID_STRLEN] = '\0';
        found = taskq_id_parse(buf, &id) == TASKQ_OK;
    }
    H_ASSERT(found, "CLI submit printed no id: '%.300s'", out);
    t = h_wait_task(c, &id, is_terminal, NULL, 20000, "CLI --no-retry-on task");
    expect_failed(t, 1, "http.404", "CLI submit --no-retry-on 'http.4*'");
    taskq_task_destroy(&t);
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&id, ids);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", ids, "--attempts", "--json");
    H_ASSERT(rc == 0, "status --attempts --json: exit %d", rc);
    H_ASSERT(strstr(out, "\"attempts\"") && strstr(out, "http.404"),
             "status --attempts --json lacks the attempts / code: '%.400s'", out);
    h_log("retry filters: no-retry-on, retry-on and permanent failures stop at once");
}

static void time_limit(taskq_client_t *c)
{
    taskq_task_spec_t s = h_spec("test.hang", NULL, 0);
    s.time_limit_ms = 300;
    s.max_attempts = 2;
    s.backoff_base_ms = 100;
    s.jitter = "none";
    taskq_task_t *t = run_to_end(c, &s, 20000);
    expect_failed(t, 2, "taskq.timeout", "time limit 300 ms, --max-attempts 2");
    taskq_task_destroy(&t);
    taskq_attempts_t *at = attempts_of(c, &s.id, 2);
    int64_t gap = taskq_attempts_get(at, 1)->started_at - taskq_attempts_get(at, 0)->finished_at;
    H_ASSERT(gap >= 100, "timeout retried after %lld ms, backoff is 100 ms", (long long)gap);
    taskq_attempts_destroy(&at);
}

static void measured_backoff(taskq_client_t *c)
{
    enum { NT = 4, NA = 4 };
    uint8_t a[64];
    size_t alen = h_args_fmt(a, sizeof a, "ss", "svc.down", "unavailable");
    taskq_task_spec_t s[NT];
    taskq_err_t codes[NT];
    for (int i = 0; i < NT; i++) {
        s[i] = h_spec("test.fail_code", a, alen);
        s[i].max_attempts = NA;
        s[i].backoff_base_ms = 200;
        s[i].backoff_factor = 2;
        s[i].backoff_max_ms = 60000;
        s[i].jitter = "equal";
    }
    H_OK(taskq_submit_batch(c, s, NT, codes));
    for (int i = 0; i < NT; i++) {
        taskq_task_t *t = h_wait_task(c, &s[i].id, is_terminal, NULL, 20000, "backoff task");
        expect_failed(t, NA, "svc.down", "backoff 200ms,2 --max-attempts 4");
        taskq_task_destroy(&t);
        taskq_attempts_t *at = attempts_of(c, &s[i].id, NA);
        char gaps[128] = "";
        size_t gl = 0;
        for (int k = 1; k < NA; k++) {
            int64_t d = 200LL << (k - 1);
            int64_t gap = taskq_attempts_get(at, (size_t)k)->started_at -
                          taskq_attempts_get(at, (size_t)k - 1)->finished_at;
            gl += (size_t)snprintf(gaps + gl, sizeof gaps - gl, " %lld/%lld", (long long)gap,
                                   (long long)d);
            /* ms timestamps: 1 ms rounding; dispatch to a free slot adds a bit */
            H_ASSERT(gap >= d / 2 - 1 && gap <= d + 150,
                     "task %d retry %d: %lld ms after the failure, expected [%lld, %lld] (+150 "
                     "ms dispatch slack)", i, k, (long long)gap, (long long)(d / 2),
                     (long long)d);
        }
        h_log("measured backoff (gap/d ms):%s", gaps);
        taskq_attempts_destroy(&at);
    }
}

/* ---- test clock ---------------------------------------------------------------- */

typedef struct {
    taskq_client_t *c;
    taskq_id_t *ids;
    int n;
    uint32_t failures;
} round_t;

/* every task has `failures` failures and waits (retrying) or is done */
static bool round_done(void *p)
{
    round_t *r = p;
    for (int i = 0; i < r->n; i++) {
        taskq_task_t *t = h_status(r->c, &r->ids[i]);
        bool ok = t && t->failures >= r->failures &&
                  (t->state == TASKQ_STATE_RETRYING || taskq_state_is_terminal(t->state));
        taskq_task_destroy(&t);
        if (!ok)
            return false;
    }
    return true;
}

static void exact_backoff(taskq_client_t *c)
{
    enum { PER = 10, NA = 6 };
    const char *jit[3] = {"equal", "full", "none"};
    taskq_task_spec_t s[3 * PER];
    taskq_err_t codes[3 * PER];
    taskq_id_t ids[3 * PER];
    uint8_t a[64];
    size_t alen = h_args_fmt(a, sizeof a, "ss", "svc.busy", "busy");
    for (int i = 0; i < 3 * PER; i++) {
        s[i] = h_spec("test.fail_code", a, alen);
        s[i].max_attempts = NA;
        s[i].backoff_base_ms = 1000;
        s[i].backoff_factor = 2.5;
        s[i].backoff_max_ms = 10000;
        s[i].jitter = jit[i / PER];
    }
    H_OK(taskq_submit_batch(c, s, 3 * PER, codes));
    for (int i = 0; i < 3 * PER; i++)
        ids[i] = s[i].id;
    int below_d[3] = {0, 0, 0};
    int64_t lo_seen[3] = {INT64_MAX, INT64_MAX, INT64_MAX};
    for (uint32_t f = 1; f < NA; f++) {
        round_t r = {c, ids, 3 * PER, f};
        h_wait_for(round_done, &r, 20000, "every task failed once more");
        int64_t now = h_clock(c, 0, 0);
        double dd = 1000.0 * pow(2.5, (double)(f - 1));
        int64_t d = dd > 10000 ? 10000 : (int64_t)dd;
        int64_t latest = now;
        for (int i = 0; i < 3 * PER; i++) {
            taskq_task_t *t = h_status(c, &ids[i]);
            H_ASSERT(t->state == TASKQ_STATE_RETRYING && t->failures == f,
                     "task %d (%s): %s failures=%u, expected retrying after failure %u", i,
                     jit[i / PER], taskq_state_name(t->state), t->failures, f);
            int64_t delay = t->due_at - now;
            int64_t lo = i / PER == 0 ? d / 2 : i / PER == 1 ? 0 : d;
            H_ASSERT(delay >= lo && delay <= d,
                     "jitter %s, failure %u: delay %lld ms, expected [%lld, %lld] (d = min(10000,"
                     " 1000*2.5^%u))",
                     jit[i / PER], f, (long long)delay, (long long)lo, (long long)d, f - 1);
            below_d[i / PER] += delay < d;
            int64_t rel = delay * 1000 / d; /* per mille of d */
            if (rel < lo_seen[i / PER])
                lo_seen[i / PER] = rel;
            if (t->due_at > latest)
                latest = t->due_at;
            taskq_task_destroy(&t);
        }
        h_clock(c, 0, latest); /* every retry is due now */
    }
    round_t r = {c, ids, 3 * PER, NA};
    h_wait_for(round_done, &r, 20000, "every task failed for good");
    for (int i = 0; i < 3 * PER; i++) {
        taskq_task_t *t = h_status(c, &ids[i]);
        expect_failed(t, NA, "svc.busy", "exact backoff task");
        taskq_task_destroy(&t);
    }
    h_log("exact backoff over %d delays per jitter: below d equal=%d full=%d none=%d; lowest "
          "delay/d equal=%lld%% full=%lld%%",
          PER * (NA - 1), below_d[0], below_d[1], below_d[2], (long long)lo_seen[0] / 10,
          (long long)lo_seen[1] / 10);
    H_ASSERT(below_d[2] == 0, "jitter none gave a delay below d");
    H_ASSERT(below_d[0] > PER && below_d[1] > PER,
             "jitter is not applied: only %d (equal) / %d (full) of %d delays below d", below_d[0],
             below_d[1], PER * (NA - 1));
    H_ASSERT(lo_seen[1] < 500, "full jitter never went below d/2 in %d draws", PER * (NA - 1));
}

static void registered_policy(taskq_client_t *c)
{
    taskq_task_spec_t s = h_spec("test.policy", NULL, 0);
    H_OK(taskq_submit(c, &s));
    round_t r = {c, &s.id, 1, 1};
    h_wait_for(round_done, &r, 20000, "test.policy failed once");
    int64_t now = h_clock(c, 0, 0);
    taskq_task_t *t = h_status(c, &s.id);
    H_ASSERT(t->state == TASKQ_STATE_RETRYING && t->due_at == now + 100 &&
                 strcmp(t->code, "test.policy") == 0,
             "test.policy after failure 1: %s due_at=now%+lld code '%s', expected retrying in "
             "exactly 100 ms (registered backoff, no jitter)",
             taskq_state_name(t->state), (long long)(t->due_at - now), t->code);
    taskq_task_destroy(&t);
    h_clock(c, 100, 0);
    t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "test.policy ends");
    expect_failed(t, 2, "test.policy", "test.policy (registered max_attempts 2)");
    /* the record states the limit that applied (0 = "not given" is fine too) */
    H_ASSERT(t->max_attempts == 2 || t->max_attempts == 0,
             "test.policy failed with 'attempt limit (2) reached' but its record says "
             "max_attempts %u", t->max_attempts);
    taskq_task_destroy(&t);

    /* the submitter's max_attempts beats the registration */
    s = h_spec("test.policy", NULL, 0);
    s.max_attempts = 3;
    H_OK(taskq_submit(c, &s));
    for (uint32_t f = 1; f < 3; f++) {
        round_t rr = {c, &s.id, 1, f};
        h_wait_for(round_done, &rr, 20000, "test.policy --max-attempts 3 failed again");
        h_clock(c, 100, 0);
    }
    t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "test.policy --max-attempts 3 ends");
    expect_failed(t, 3, "test.policy", "test.policy submitted with --max-attempts 3");
    taskq_task_destroy(&t);
    h_log("registered policy: 2 attempts, 100 ms apart; submit override: 3 attempts");
}

static void explicit_retry(taskq_client_t *c)
{
    uint8_t a[32];
    taskq_task_spec_t s = h_spec("test.retry_in", a, h_args_fmt(a, sizeof a, "dd", 5000, 3));
    H_OK(taskq_submit(c, &s));
    for (uint32_t f = 1; f <= 2; f++) {
        round_t r = {c, &s.id, 1, f};
        h_wait_for(round_done, &r, 20000, "test.retry_in asked for a retry");
        int64_t now = h_clock(c, 0, 0);
        taskq_task_t *t = h_status(c, &s.id);
        H_ASSERT(t->state == TASKQ_STATE_RETRYING && t->due_at == now + 5000 &&
                     strcmp(t->code, "taskq.retry") == 0,
                 "taskq_retry(5000) #%u: %s due_at=now%+lld code '%s'", f,
                 taskq_state_name(t->state), (long long)(t->due_at - now), t->code);
        taskq_task_destroy(&t);
        h_clock(c, 4999, 0);
        t = h_status(c, &s.id);
        H_ASSERT(t->state == TASKQ_STATE_RETRYING, "retried before its delay: %s",
                 taskq_state_name(t->state));
        taskq_task_destroy(&t);
        h_clock(c, 1, 0);
    }
    taskq_task_t *t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "test.retry_in ends");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 3, "test.retry_in: %s after %u "
             "attempts: %s", taskq_state_name(t->state), t->attempts, t->error);
    taskq_task_destroy(&t);
    h_log("taskq_retry(5000): retrying for exactly 5 s twice, then succeeded on attempt 3");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    char db[512];

    /* real clock */
    h_broker_t *br = h_broker_start(NULL);
    taskq_client_t *c = h_client(h_broker_endpoint(br), 10000);
    h_worker_t *w = h_worker_start(h_broker_endpoint(br), 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    crash_budget(c);
    retry_filters(c, h_broker_endpoint(br));
    time_limit(c);
    measured_backoff(c);
    taskq_client_destroy(&c);

    /* test clock */
    snprintf(db, sizeof db, "%s/clock.db", h_tmpdir());
    h_broker_t *bt = h_broker_start(db, "--test-clock");
    c = h_client(h_broker_endpoint(bt), 10000);
    h_worker_t *wt = h_worker_start(h_broker_endpoint(bt), 4);
    h_worker_wait_ready(c, h_worker_node_id(wt), 4, 20000);
    registered_policy(c);
    explicit_retry(c);
    exact_backoff(c);
    taskq_client_destroy(&c);
    return 0;
}
