/* it_lookahead: with --prefetch, once every child is busy the supervisor
 * sends up to min(4, max(1, prefetch / children)) queued tasks to each busy
 * child behind its running one (its lookahead). Every part starts a fresh
 * node on one broker (history on) and stops it before the next:
 *  1. child kill (-n 2 --prefetch 8): two test.sleep [6] occupy both
 *     children, 8 test.append are leased behind them; kill -9 of one child.
 *     Its running task fails with taskq.crash and runs again as attempt 2;
 *     none of the 8 ran in the killed child, each ran exactly once (file +
 *     history exec_start), on attempt 1, with no failure in its attempts,
 *     and some of them ran on the replacement child.
 *  2. revoke (-n 1 --prefetch 4): test.sleep [4] runs; A1, X, A2, Y
 *     (test.append) wait in its lookahead (worker history cancel_ahead).
 *     X revoked softly, Y with --terminate: both end revoked, never execute
 *     (no line in the file, no exec_start, the child's `cancelled`), the
 *     child is never signalled: the running task succeeds in the same child
 *     and A1, A2 and a later A3 run there, in order.
 *  3. time limit (-n 1 --prefetch 4 --time-limit 1.5): 5 x test.sleep [1]
 *     (every other one with its own 1.5 s limit) all succeed although the
 *     last waited ~5 s behind the others: the limit starts when a task
 *     starts. A test.hang [] with a 1 s limit behind them still times out.
 *     The first task is a test.hang [] killed at its 1 s limit while the
 *     sleeps wait behind it: they run on the replacement, attempt 1.
 *  4. --max-tasks-per-child 3 (-n 2 --prefetch 6): 18 test.sleep [0.1]; no
 *     child_pid appears in more than 3 succeeded records.
 *  5. revoke --terminate of a running test.ignore_term [1.5] (grace 5 s)
 *     with test.append b in its child's lookahead: the task ends by itself,
 *     the supervisor retires the child; b must run once per attempt (one
 *     exec_start of attempt 1, one line per attempt). (This found a bug:
 *     b ran in the retired child right after the revoked task, its DONE was
 *     dropped as "not running", and b ran again as attempt 1.) The child
 *     reads RETIRE long before its task ends, so b goes back unstarted and
 *     runs exactly once, as attempt 1, in the replacement child (the first
 *     fix, a SIGKILL after making b the running task, spent an attempt on
 *     b whenever the kill came first).
 * Throughout, every wait samples STATS: the broker never sees more tasks
 * running than -n + --prefetch of the only node (the credit invariant). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "hevents.h"

/* ---- the credit invariant, sampled by every wait ---------------------------- */

static struct {
    taskq_client_t *c;
    const char *part;
    uint64_t limit;       /* -n + --prefetch of the node running; 0 = not sampling */
    uint64_t max_running; /* the most seen in this part */
    size_t samples;
} g_cr;

static void credit_watch(taskq_client_t *c, const char *part, uint64_t limit)
{
    g_cr.c = c;
    g_cr.part = part;
    g_cr.limit = limit;
    g_cr.max_running = 0;
    g_cr.samples = 0;
}

static void credit_sample(void)
{
    taskq_stats_t st;
    if (!g_cr.limit || taskq_stats(g_cr.c, &st) != TASKQ_OK)
        return;
    g_cr.samples++;
    if (st.running > g_cr.max_running)
        g_cr.max_running = st.running;
    H_ASSERT(st.running <= g_cr.limit,
             "%s: the broker sees %llu tasks running on the only node (-n + --prefetch = %llu)",
             g_cr.part, (unsigned long long)st.running, (unsigned long long)g_cr.limit);
}

/* ---- tasks ----------------------------------------------------------------------- */

static void submit(taskq_client_t *c, taskq_task_spec_t *s)
{
    taskq_err_t rc = taskq_submit(c, s);
    H_ASSERT(rc == TASKQ_OK, "submit %s: %s '%s'", s->name, taskq_err_name(rc),
             taskq_client_last_error(c));
}

static bool is_running(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING;
}

static bool is_running_pid(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING && t->child_pid > 0;
}

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static bool is_requeued(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->attempts >= 2;
}

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *ids;
    size_t n;
    h_task_pred pred;
} ids_wait_t;

/* Every one of ids holds pred (a missing task does not); samples STATS. */
static bool ids_hold(void *p)
{
    ids_wait_t *a = p;
    credit_sample();
    for (size_t i = 0; i < a->n; i++) {
        taskq_task_t *t = h_status(a->c, &a->ids[i]);
        bool ok = t && a->pred(t, NULL);
        taskq_task_destroy(&t);
        if (!ok)
            return false;
    }
    return true;
}

static void wait_ids(taskq_client_t *c, const taskq_id_t *ids, size_t n, h_task_pred pred,
                     int64_t timeout_ms, const char *what)
{
    ids_wait_t a = {c, ids, n, pred};
    h_wait_for(ids_hold, &a, timeout_ms, what);
}

/* The record of one task, after wait_ids made it hold pred. */
static taskq_task_t *wait_one(taskq_client_t *c, const taskq_id_t *id, h_task_pred pred,
                              int64_t timeout_ms, const char *what)
{
    wait_ids(c, id, 1, pred, timeout_ms, what);
    taskq_task_t *t = h_status(c, id);
    H_ASSERT(t != NULL, "%s: %s vanished", what, h_id_str(id));
    return t;
}

/* Succeeded on its first and only attempt, no failure recorded anywhere;
 * returns its child_pid. */
static pid_t expect_clean_success(taskq_client_t *c, const taskq_id_t *id, const char *what)
{
    taskq_task_t *t = h_status(c, id);
    H_ASSERT(t != NULL, "%s %s: record gone", what, h_id_str(id));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 1 && t->failures == 0 &&
                 t->code[0] == '\0',
             "%s %s: %s attempts=%u failures=%u code '%s' error '%s' (expected succeeded on "
             "attempt 1: a task that waited behind a running one has not started)",
             what, h_id_str(id), taskq_state_name(t->state), t->attempts, t->failures, t->code,
             t->error);
    pid_t pid = t->child_pid;
    taskq_task_destroy(&t);
    taskq_attempts_t *as = NULL;
    H_OK(taskq_attempts(c, id, &as));
    size_t n = taskq_attempts_count(as);
    const taskq_attempt_t *a0 = n ? taskq_attempts_get(as, 0) : NULL;
    H_ASSERT(n == 1 && strcmp(a0->state, "succeeded") == 0 && a0->code[0] == '\0',
             "%s %s: %zu attempt(s), the first %s code '%s' '%s' (expected one, succeeded)", what,
             h_id_str(id), n, a0 ? a0->state : "-", a0 ? a0->code : "-",
             a0 ? a0->message : "-");
    taskq_attempts_destroy(&as);
    return pid;
}

/* ---- history ---------------------------------------------------------------------- */

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct {
    const char *role, *ev, *f0, *f1; /* NULL = any */
    int pid;                         /* 0 = any */
    int64_t after_us;
    size_t n;                        /* matches */
    int last_pid;                    /* pid of the last match */
    const char *f3;                  /* NULL = any */
} evq_t;

static size_t ev_count(evq_t *q)
{
    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h != NULL, "cannot read the history in %s", h_history_dir());
    q->n = 0;
    for (size_t i = 0; i < h->n; i++) {
        const hev_t *e = &h->ev[i];
        if (e->us < q->after_us || strcmp(e->ev, q->ev) != 0)
            continue;
        if ((q->role && strcmp(e->role, q->role) != 0) || (q->pid && e->pid != q->pid))
            continue;
        if (q->f0 && (e->nf < 1 || strcmp(e->f[0], q->f0) != 0))
            continue;
        if (q->f1 && (e->nf < 2 || strcmp(e->f[1], q->f1) != 0))
            continue;
        if (q->f3 && (e->nf < 4 || strcmp(e->f[3], q->f3) != 0))
            continue;
        q->n++;
        q->last_pid = e->pid;
    }
    hevents_destroy(&h);
    return q->n;
}

static bool ev_seen(void *p)
{
    credit_sample();
    return ev_count(p) > 0;
}

/* How the supervisor took the CANCEL of (id, 1): waits for the first of its
 * cancel events and returns its name (static). */
typedef struct {
    const char *id;
    char ev[20];
} cancel_wait_t;

static bool cancel_seen(void *p)
{
    cancel_wait_t *a = p;
    static const char *const evs[] = {"cancel_ahead", "cancel", "cancel_drop", "cancel_ignored"};
    credit_sample();
    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h != NULL, "cannot read the history");
    for (size_t i = 0; i < h->n && !a->ev[0]; i++) {
        const hev_t *e = &h->ev[i];
        if (strcmp(e->role, "worker") != 0 || e->nf < 2 || strcmp(e->f[0], a->id) != 0 ||
            strcmp(e->f[1], "1") != 0)
            continue;
        for (size_t k = 0; k < sizeof evs / sizeof evs[0]; k++)
            if (strcmp(e->ev, evs[k]) == 0)
                snprintf(a->ev, sizeof a->ev, "%s", evs[k]);
    }
    hevents_destroy(&h);
    return a->ev[0] != '\0';
}

static void stop_worker(h_worker_t *w)
{
    g_cr.limit = 0;
    h_worker_signal(w, SIGTERM);
    int st = h_worker_wait_exit(w, 20000);
    H_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %s: exit status 0x%x, expected 0",
             h_worker_node_id(w), st);
}

static void expect_lines(const char *path, const char *const *want, size_t n, const char *what)
{
    h_lines_t l = h_read_lines(path);
    bool same = l.n == n;
    for (size_t i = 0; same && i < n; i++)
        same = strcmp(l.line[i], want[i]) == 0;
    if (!same) {
        char got[512] = "", exp[512] = "";
        size_t go = 0, eo = 0;
        for (size_t i = 0; i < l.n && go < sizeof got; i++)
            go += (size_t)snprintf(got + go, sizeof got - go, "%s%s", i ? "," : "", l.line[i]);
        for (size_t i = 0; i < n && eo < sizeof exp; i++)
            eo += (size_t)snprintf(exp + eo, sizeof exp - eo, "%s%s", i ? "," : "", want[i]);
        H_FAIL("%s: %s holds [%s], expected [%s]", what, path, got, exp);
    }
    h_lines_free(&l);
}

/* ---- 1. kill -9 of a child with tasks in its lookahead --------------------------- */

#define K_N 8

static void child_kill(taskq_client_t *c, const char *ep)
{
    h_worker_t *w = h_worker_start(ep, 2, "--prefetch", "8", "--heartbeat-ms", "200");
    credit_watch(c, "child kill", 2 + 8);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    /* both children busy for 6 s; the first is the victim, retried at once */
    uint8_t la[16];
    size_t llen = h_args_int(la, sizeof la, 6);
    taskq_task_spec_t lt[2];
    for (int i = 0; i < 2; i++) {
        lt[i] = h_spec("test.sleep", la, llen);
        lt[i].backoff_base_ms = 100;
        lt[i].jitter = "none";
        submit(c, &lt[i]);
    }
    taskq_id_t lid[2] = {lt[0].id, lt[1].id};
    wait_ids(c, lid, 2, is_running_pid, 10000, "both test.sleep [6] running with a child pid");
    taskq_task_t *t0 = h_status(c, &lid[0]), *t1 = h_status(c, &lid[1]);
    pid_t victim = t0->child_pid, other = t1->child_pid;
    taskq_task_destroy(&t0);
    taskq_task_destroy(&t1);
    H_ASSERT(victim != other, "both sleeps report child %d", (int)victim);

    /* 8 tasks behind them: credit 2 + 8, so all are leased, 4 per child */
    char path[512];
    snprintf(path, sizeof path, "%s/kill.txt", h_tmpdir());
    uint8_t args[K_N][600];
    char tags[K_N][8];
    taskq_task_spec_t ks[K_N];
    taskq_err_t codes[K_N];
    for (int i = 0; i < K_N; i++) {
        snprintf(tags[i], sizeof tags[i], "k%d", i);
        ks[i] = h_spec("test.append", args[i], h_args_fmt(args[i], sizeof args[i], "ss", path,
                                                        tags[i]));
        ks[i].backoff_base_ms = 100;
        ks[i].jitter = "none";
    }
    H_OK(taskq_submit_batch(c, ks, K_N, codes));
    taskq_id_t kid[K_N];
    for (int i = 0; i < K_N; i++) {
        H_ASSERT(codes[i] == TASKQ_OK, "append %d not accepted: %s", i, taskq_err_name(codes[i]));
        kid[i] = ks[i].id;
    }
    wait_ids(c, kid, K_N, is_running, 10000, "all 8 test.append leased to the node");
    H_ASSERT(h_count_lines(path) == 0, "a task behind a busy child ran already: %zu lines",
             h_count_lines(path));
    taskq_task_t *t = h_status(c, &lid[0]);
    H_ASSERT(t->state == TASKQ_STATE_RUNNING && t->attempts == 1 && t->child_pid == victim,
             "the victim's task is %s attempts=%u child %d before the kill (too slow a run?)",
             taskq_state_name(t->state), t->attempts, (int)t->child_pid);
    taskq_task_destroy(&t);

    int64_t kill_us = wall_us();
    h_worker_kill_child(w, victim);
    t = wait_one(c, &lid[0], is_requeued, 10000, "the killed child's task requeued (attempt 2)");
    taskq_task_destroy(&t);
    wait_ids(c, kid, K_N, is_terminal, 30000, "the 8 test.append terminal");
    wait_ids(c, lid, 2, is_terminal, 30000, "both test.sleep terminal");
    h_log("child kill: max running seen %llu (%zu samples)", (unsigned long long)g_cr.max_running,
          g_cr.samples);

    /* the running task: attempt 1 crashed in the victim, attempt 2 succeeded */
    t = h_status(c, &lid[0]);
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 2 && t->failures == 1 &&
                 t->child_pid != victim,
             "the killed child's task: %s attempts=%u failures=%u child %d '%s'",
             taskq_state_name(t->state), t->attempts, t->failures, (int)t->child_pid, t->error);
    taskq_task_destroy(&t);
    taskq_attempts_t *as = NULL;
    H_OK(taskq_attempts(c, &lid[0], &as));
    const taskq_attempt_t *a0 = taskq_attempts_get(as, 0);
    H_ASSERT(taskq_attempts_count(as) == 2 && strcmp(a0->code, "taskq.crash") == 0 &&
                 a0->child_pid == victim,
             "the killed child's task: %zu attempts, the first %s code '%s' child %d",
             taskq_attempts_count(as), a0 ? a0->state : "-", a0 ? a0->code : "-",
             a0 ? (int)a0->child_pid : 0);
    taskq_attempts_destroy(&as);
    expect_clean_success(c, &lid[1], "the other child's test.sleep");

    /* the 8: once each, never in the victim, no attempt spent */
    size_t on_other = 0, on_new = 0;
    for (int i = 0; i < K_N; i++) {
        pid_t p = expect_clean_success(c, &kid[i], "test.append behind a busy child");
        H_ASSERT(p != victim, "test.append %s reports the killed child %d", tags[i], (int)victim);
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&kid[i], ids);
        evq_t q = {"child", "exec_start", ids, NULL, 0, 0, 0, 0, NULL};
        H_ASSERT(ev_count(&q) == 1, "test.append %s: %zu exec_start events, expected 1",
                 tags[i], q.n);
        H_ASSERT(q.last_pid != victim && q.last_pid == p,
                 "test.append %s started in child %d, its record says %d (victim %d)", tags[i],
                 q.last_pid, (int)p, (int)victim);
        if (p == other)
            on_other++;
        else
            on_new++;
    }
    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == K_N, "%s has %zu lines, expected %d (each task once)", path, l.n, K_N);
    for (int i = 0; i < K_N; i++) {
        size_t seen = 0;
        for (size_t j = 0; j < l.n; j++)
            seen += strcmp(l.line[j], tags[i]) == 0;
        H_ASSERT(seen == 1, "tag %s appears %zu times in %s", tags[i], seen, path);
    }
    h_lines_free(&l);
    /* the victim's lookahead went back to the node's FIFO and ran on the
     * replacement while the other child still slept */
    H_ASSERT(on_new > 0, "none of the 8 ran on the replacement child (%zu on child %d): the "
             "killed child's lookahead did not come back", on_other, (int)other);
    evq_t died = {"worker", "child_died", NULL, NULL, (int)h_worker_pid(w), kill_us, 0, 0, NULL};
    H_ASSERT(ev_count(&died) == 1, "%zu child_died events after the kill, expected 1", died.n);
    h_log("child kill: victim %d; the 8 ran %zu on child %d, %zu on the replacement", (int)victim,
          on_other, (int)other, on_new);
    stop_worker(w);
}

/* ---- 2. revoke of tasks in the lookahead ------------------------------------------ */

static void revoke_one(taskq_client_t *c, const taskq_id_t *id, const taskq_revoke_opts_t *o,
                       const char *what)
{
    taskq_revoke_result_t r;
    memset(&r, 0, sizeof r);
    taskq_err_t rc = taskq_revoke(c, id, 1, o, &r);
    H_ASSERT(rc == TASKQ_OK && r.revoked == 1, "revoke %s (%s): %s '%s' revoked=%llu",
             h_id_str(id), what, taskq_err_name(rc), taskq_client_last_error(c),
             (unsigned long long)r.revoked);
}

static void expect_skipped(taskq_client_t *c, const taskq_id_t *id, pid_t child,
                           const char *what)
{
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, ids);
    cancel_wait_t cw = {ids, ""};
    h_wait_for(cancel_seen, &cw, 10000, "the supervisor's cancel event");
    H_ASSERT(strcmp(cw.ev, "cancel_ahead") == 0,
             "%s: the supervisor took its CANCEL as '%s', expected cancel_ahead (a task in a "
             "busy child's lookahead)", what, cw.ev);
    evq_t sk = {"child", "cancelled", ids, "1", (int)child, 0, 0, 0, NULL};
    h_wait_for(ev_seen, &sk, 10000, "the child skips the revoked task (child cancelled event)");
    evq_t ex = {NULL, "exec_start", ids, NULL, 0, 0, 0, 0, NULL};
    H_ASSERT(ev_count(&ex) == 0, "%s: revoked in the lookahead but executed (%zu exec_start, "
             "child %d)", what, ex.n, ex.last_pid);
    taskq_task_t *t = h_status(c, id);
    H_ASSERT(t && t->state == TASKQ_STATE_REVOKED && t->result == NULL && t->attempts == 1,
             "%s: %s attempts=%u result_len=%zu, expected revoked (dispatched once, no result)",
             what, t ? taskq_state_name(t->state) : "missing", t ? t->attempts : 0,
             t ? t->result_len : 0);
    taskq_task_destroy(&t);
}

static void revoke_ahead(taskq_client_t *c, const char *ep)
{
    h_worker_t *w = h_worker_start(ep, 1, "--prefetch", "4", "--heartbeat-ms", "200");
    credit_watch(c, "revoke", 1 + 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);

    uint8_t ra[16];
    taskq_task_spec_t r = h_spec("test.sleep", ra, h_args_int(ra, sizeof ra, 4));
    submit(c, &r);
    taskq_task_t *t = wait_one(c, &r.id, is_running_pid, 10000, "test.sleep [4] running");
    pid_t child = t->child_pid;
    taskq_task_destroy(&t);

    char path[512];
    snprintf(path, sizeof path, "%s/revoke.txt", h_tmpdir());
    static const char *const tags[5] = {"a1", "x-soft", "a2", "y-terminate", "a3"};
    uint8_t args[5][600];
    taskq_task_spec_t s[5];
    for (int i = 0; i < 5; i++)
        s[i] = h_spec("test.append", args[i], h_args_fmt(args[i], sizeof args[i], "ss", path,
                                                       tags[i]));
    /* one at a time, in order: the first four fill the lookahead (credit
     * 1 + 4), a3 waits on the broker until the sleep is done */
    for (int i = 0; i < 4; i++)
        submit(c, &s[i]);
    taskq_id_t ahead[4] = {s[0].id, s[1].id, s[2].id, s[3].id};
    wait_ids(c, ahead, 4, is_running, 10000, "a1, x, a2, y leased to the node");
    submit(c, &s[4]);

    t = h_status(c, &r.id);
    H_ASSERT(t->state == TASKQ_STATE_RUNNING && h_count_lines(path) == 0,
             "before the revokes: the sleep is %s, %zu lines written (too slow a run?)",
             taskq_state_name(t->state), h_count_lines(path));
    taskq_task_destroy(&t);
    revoke_one(c, &s[1].id, NULL, "soft, in the lookahead");
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.terminate = 1;
    o.grace_ms = 1000;
    revoke_one(c, &s[3].id, &o, "--terminate, in the lookahead");
    int64_t revoked_us = wall_us();
    expect_skipped(c, &s[1].id, child, "x (soft revoke)");
    expect_skipped(c, &s[3].id, child, "y (revoke --terminate)");

    /* the terminate signalled nobody: the sleep ends in the same child */
    t = wait_one(c, &r.id, is_terminal, 15000, "the running test.sleep [4] terminal");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 1 && t->child_pid == child,
             "the running task after a revoke --terminate of a task behind it: %s attempts=%u "
             "child %d (was %d) code '%s' '%s'",
             taskq_state_name(t->state), t->attempts, (int)t->child_pid, (int)child, t->code,
             t->error);
    taskq_task_destroy(&t);
    taskq_id_t runs[3] = {s[0].id, s[2].id, s[4].id};
    wait_ids(c, runs, 3, is_terminal, 15000, "a1, a2, a3 terminal");
    for (int i = 0; i < 3; i++) {
        pid_t p = expect_clean_success(c, &runs[i], "test.append next to revoked ones");
        H_ASSERT(p == child, "test.append %d ran in child %d, expected the same child %d", i,
                 (int)p, (int)child);
    }
    static const char *const want[3] = {"a1", "a2", "a3"};
    expect_lines(path, want, 3, "revoked tasks never execute, the rest in order");
    H_ASSERT(h_pid_alive(child), "child %d is gone", (int)child);
    evq_t died = {"worker", "child_died", NULL, NULL, (int)h_worker_pid(w), revoked_us, 0, 0, NULL};
    H_ASSERT(ev_count(&died) == 0, "%zu child died after the revokes (pid %d)", died.n,
             died.last_pid);
    char ys[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s[3].id, ys);
    /* "cancel ID ATTEMPT PID terminate" precedes a SIGTERM; a soft one may
     * come from the broker's answer to a heartbeat listing y's void lease */
    evq_t sig = {"worker", "cancel", ys, NULL, 0, 0, 0, 0, "terminate"};
    H_ASSERT(ev_count(&sig) == 0, "the supervisor took y's terminate as for its running task "
             "(SIGTERM to child %d)", sig.last_pid);
    h_log("revoke: x and y skipped in child %d, the sleep and a1..a3 succeeded there", (int)child);
    stop_worker(w);
}

/* ---- 3. time limits start when a task starts -------------------------------------- */

#define T_N 5

static void time_limit(taskq_client_t *c, const char *ep)
{
    h_worker_t *w = h_worker_start(ep, 1, "--prefetch", "4", "--time-limit", "1.5",
                                   "--heartbeat-ms", "200");
    credit_watch(c, "time limit", 1 + 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);
    uint8_t a[16];
    size_t alen = h_args_int(a, sizeof a, 1);
    taskq_task_spec_t s[T_N + 2];
    taskq_err_t codes[T_N + 2];
    /* first a hang killed at its 1 s limit: the sleeps wait in the lookahead
     * of a child that dies, then run on its replacement */
    s[0] = h_spec("test.hang", NULL, 0);
    for (int i = 1; i <= T_N; i++) {
        s[i] = h_spec("test.sleep", a, alen);
        s[i].time_limit_ms = i % 2 ? 1500 : 0; /* its own, or the worker's 1.5 s */
    }
    /* last another hang: a limit is still enforced on a task that waited */
    s[T_N + 1] = h_spec("test.hang", NULL, 0);
    for (int i = 0; i < T_N + 2; i++)
        s[i].max_attempts = 1;
    s[0].time_limit_ms = s[T_N + 1].time_limit_ms = 1000;
    int64_t t0 = h_now_ms();
    H_OK(taskq_submit_batch(c, s, T_N + 2, codes));
    taskq_id_t ids[T_N + 2];
    for (int i = 0; i < T_N + 2; i++) {
        H_ASSERT(codes[i] == TASKQ_OK, "task %d not accepted: %s", i, taskq_err_name(codes[i]));
        ids[i] = s[i].id;
    }
    wait_ids(c, ids, T_N + 2, is_terminal, 40000, "the 2 hangs and 5 sleeps terminal");
    int64_t ms = h_now_ms() - t0;
    taskq_task_t *h0 = h_status(c, &ids[0]);
    pid_t killed = h0->child_pid;
    taskq_task_destroy(&h0);
    for (int i = 1; i <= T_N; i++) {
        pid_t p = expect_clean_success(c, &ids[i], "test.sleep [1] with a 1.5 s limit");
        H_ASSERT(p != killed, "sleep %d ran in child %d, killed at the first hang's time limit",
                 i, (int)killed);
    }
    for (int i = 0; i < T_N + 2; i += T_N + 1) {
        taskq_task_t *t = h_status(c, &ids[i]);
        H_ASSERT(t->state == TASKQ_STATE_FAILED && strcmp(t->code, "taskq.timeout") == 0 &&
                     strstr(t->error, "time limit exceeded") != NULL && t->attempts == 1,
                 "test.hang with a 1 s limit %s 5 sleeps: %s code '%s' '%s' attempts=%u",
                 i ? "behind" : "before", taskq_state_name(t->state), t->code, t->error,
                 t->attempts);
        taskq_task_destroy(&t);
    }
    /* one child at a time, in order: the last sleep waited ~5 s, the hang ~6 s */
    H_ASSERT(ms >= T_N * 1000 + 2000, "2 x test.hang (1 s limit) and 5 x test.sleep [1] on one "
             "child took only %lld ms", (long long)ms);
    h_log("time limit: 5 x test.sleep [1] (limit 1.5 s) all succeeded, both hangs timed out; "
          "%lld ms", (long long)ms);
    stop_worker(w);
}

/* ---- 4. --max-tasks-per-child ------------------------------------------------------ */

#define M_N 18
#define M_MAX 3

static void max_tasks(taskq_client_t *c, const char *ep)
{
    h_worker_t *w = h_worker_start(ep, 2, "--prefetch", "6", "--max-tasks-per-child", "3",
                                   "--heartbeat-ms", "200");
    credit_watch(c, "max tasks per child", 2 + 6);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    uint8_t a[16];
    size_t alen = h_args_fmt(a, sizeof a, "f", 0.1);
    taskq_task_spec_t s[M_N];
    taskq_err_t codes[M_N];
    for (int i = 0; i < M_N; i++) {
        s[i] = h_spec("test.sleep", a, alen);
        s[i].max_attempts = 1;
    }
    H_OK(taskq_submit_batch(c, s, M_N, codes));
    taskq_id_t ids[M_N];
    for (int i = 0; i < M_N; i++) {
        H_ASSERT(codes[i] == TASKQ_OK, "task %d not accepted: %s", i, taskq_err_name(codes[i]));
        ids[i] = s[i].id;
    }
    wait_ids(c, ids, M_N, is_terminal, 40000, "18 x test.sleep [0.1] terminal");
    pid_t pids[M_N];
    size_t cnt[M_N], np = 0;
    for (int i = 0; i < M_N; i++) {
        pid_t p = expect_clean_success(c, &ids[i], "test.sleep under --max-tasks-per-child");
        size_t k = 0;
        while (k < np && pids[k] != p)
            k++;
        if (k == np) {
            pids[np] = p;
            cnt[np++] = 0;
        }
        cnt[k]++;
    }
    for (size_t k = 0; k < np; k++)
        H_ASSERT(cnt[k] <= M_MAX, "child %d ran %zu tasks with --max-tasks-per-child %d",
                 (int)pids[k], cnt[k], M_MAX);
    H_ASSERT(np >= (M_N + M_MAX - 1) / M_MAX, "%zu children ran 18 tasks", np);
    h_log("max tasks: 18 tasks on %zu children, at most %d each; max running seen %llu "
          "(%zu samples)", np, M_MAX, (unsigned long long)g_cr.max_running, g_cr.samples);
    H_ASSERT(g_cr.max_running > 2, "prefetch not observed: at most %llu tasks ran at once on a "
             "node with 2 children and --prefetch 6", (unsigned long long)g_cr.max_running);
    stop_worker(w);
}

/* ---- 5. revoke --terminate of the running task, a task behind it ----------------- */

static void terminate_running(taskq_client_t *c, const char *ep)
{
    h_worker_t *w = h_worker_start(ep, 1, "--prefetch", "4", "--heartbeat-ms", "200");
    credit_watch(c, "terminate the running task", 1 + 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);

    /* a task that ignores SIGTERM for 1.5 s, then returns */
    uint8_t ia[16];
    taskq_task_spec_t r = h_spec("test.ignore_term", ia, h_args_fmt(ia, sizeof ia, "f", 1.5));
    submit(c, &r);
    taskq_task_t *t = wait_one(c, &r.id, is_running_pid, 10000, "test.ignore_term running");
    pid_t child = t->child_pid;
    taskq_task_destroy(&t);
    char rs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&r.id, rs);
    evq_t ex = {"child", "exec_start", rs, "1", (int)child, 0, 0, 0, NULL};
    h_wait_for(ev_seen, &ex, 10000, "test.ignore_term's exec_start");
    h_nap_ms(200); /* race placement: its SIGTERM disposition is set just after exec_start */

    char path[512];
    snprintf(path, sizeof path, "%s/terminate.txt", h_tmpdir());
    uint8_t ba[600];
    taskq_task_spec_t b = h_spec("test.append", ba, h_args_fmt(ba, sizeof ba, "ss", path, "b"));
    submit(c, &b);
    wait_ids(c, &b.id, 1, is_running, 10000, "b leased behind test.ignore_term");

    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.terminate = 1;
    o.grace_ms = 5000; /* longer than the task: it ends by itself, SIGTERM ignored */
    revoke_one(c, &r.id, &o, "--terminate, running, a task in its child's lookahead");
    t = wait_one(c, &b.id, is_terminal, 15000, "b terminal");
    taskq_task_destroy(&t);
    char bs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&b.id, bs);
    evq_t bx = {"child", "exec_start", bs, NULL, 0, 0, 0, 0, NULL};
    ev_count(&bx);
    evq_t bx1 = {"child", "exec_start", bs, "1", 0, 0, 0, 0, NULL};
    ev_count(&bx1);
    size_t lines = h_count_lines(path);
    t = h_status(c, &b.id);
    h_log("terminate: b %s attempts=%u child %d; exec_start %zu (attempt 1: %zu), %zu line(s); "
          "the terminated child was %d", taskq_state_name(t->state), t->attempts,
          (int)t->child_pid, bx.n, bx1.n, lines, (int)child);
    /* the lookahead's promise: a task sent behind a running one either has
     * not started (then it goes back to the FIFO, no attempt spent) or it is
     * accounted as started; never run twice under one attempt */
    H_EXPECT(bx1.n <= 1, "b (behind a task revoked with --terminate) executed %zu times as "
             "attempt 1 (children %d and %d): a task that had started went back to the FIFO "
             "and ran again under the same attempt; %zu line(s) in %s",
             bx1.n, (int)child, (int)t->child_pid, lines, path);
    H_EXPECT(t->state == TASKQ_STATE_SUCCEEDED && lines == bx.n && bx.n == t->attempts,
             "b: %s attempts=%u, %zu exec_start, %zu line(s)", taskq_state_name(t->state),
             t->attempts, bx.n, lines);
    /* the retired child read RETIRE long before its task ended (the task
     * runs 1.5 s): b never started there and went back unstarted */
    H_EXPECT(t->attempts == 1 && bx.n == 1 && t->child_pid != child,
             "b ran %zu time(s) over %u attempt(s), last in child %d: it should have gone "
             "back unstarted from the retired child %d (RETIRE) and run once elsewhere",
             bx.n, t->attempts, (int)t->child_pid, (int)child);
    taskq_task_destroy(&t);
    t = h_status(c, &r.id);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED, "the terminated task ended %s",
             taskq_state_name(t->state));
    taskq_task_destroy(&t);
    stop_worker(w);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(150);
    h_history_enable();
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    int64_t t0 = h_now_ms();
    child_kill(c, ep);
    int64_t t1 = h_now_ms();
    revoke_ahead(c, ep);
    int64_t t2 = h_now_ms();
    time_limit(c, ep);
    int64_t t3 = h_now_ms();
    max_tasks(c, ep);
    int64_t t4 = h_now_ms();
    terminate_running(c, ep);
    h_log("times: child kill %lld ms, revoke %lld ms, time limit %lld ms, max tasks %lld ms, "
          "terminate %lld ms", (long long)(t1 - t0), (long long)(t2 - t1), (long long)(t3 - t2),
          (long long)(t4 - t3), (long long)(h_now_ms() - t4));
    taskq_client_destroy(&c);
    h_check_expects();
    return 0;
}
