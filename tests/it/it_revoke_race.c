/* it_revoke_race: 1,000 revoke-at-finish races (issue 7). N short
 * test.sleep tasks (5..40 ms) run on 4 children (history on); 4 revoker
 * threads (one handle each) watch their tasks in order and, once a task is
 * running, revoke it with --terminate (grace 300 ms) after a random delay in
 * [0, 1.5 d], so revokes land before, at and after the task's end.
 * Checked:
 *  - exactly one terminal state per task: the checker (multi_terminal,
 *    stale_accepted, overlap, ...) and the final states: succeeded or
 *    revoked, never failed; the revoke's answer agrees with the end (OK ->
 *    revoked, ETERMINAL "already succeeded" -> succeeded); a succeeded
 *    task ran once with its own result; a revoked one has no result;
 *  - no signal ever reached a child running another task: every child the
 *    worker saw die by a signal (history child_died sigN ID ATTEMPT) was
 *    running a task that ended revoked, that exact attempt, and the child's
 *    own history agrees (its last exec_start is that (id, attempt));
 *  - both sides of the race happened (some revoked while running, some
 *    answered ETERMINAL), so the test can fail. */
#define _GNU_SOURCE
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fault_util.h"

#define NREV 4

static long N;
static taskq_task_spec_t *specs;
static uint8_t (*argbuf)[16];
static int *dur_ms;
static taskq_err_t *answer;     /* the revoke's answer */
static char (*answer_msg)[128];
static int *seen_running;       /* 1: the revoker saw it running before revoking */
static const char *g_ep;
static unsigned g_seed;

typedef struct {
    int k;
    taskq_err_t rc;
    char why[256];
} rev_arg_t;

static void *revoker(void *p)
{
    rev_arg_t *a = p;
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(g_ep, &err);
    if (!c) {
        a->rc = err;
        snprintf(a->why, sizeof a->why, "client: %s", taskq_err_name(err));
        return NULL;
    }
    taskq_client_set_timeout(c, 15000);
    unsigned seed = g_seed + (unsigned)a->k * 7919u;
    a->rc = TASKQ_OK;
    for (long i = a->k; i < N && a->rc == TASKQ_OK; i += NREV) {
        /* poll until it runs (or already ended) */
        int64_t t0 = h_now_ms();
        for (;;) {
            taskq_task_t *t = NULL;
            taskq_err_t rc = taskq_status(c, &specs[i].id, &t);
            if (rc != TASKQ_OK) {
                a->rc = rc;
                snprintf(a->why, sizeof a->why, "status of task %ld: %s", i, taskq_err_name(rc));
                break;
            }
            int st = t->state;
            taskq_task_destroy(&t);
            if (st == TASKQ_STATE_RUNNING) {
                seen_running[i] = 1;
                break;
            }
            if (taskq_state_is_terminal(st))
                break;
            if (h_now_ms() - t0 > 20000) {
                a->rc = TASKQ_ETIMEDOUT;
                snprintf(a->why, sizeof a->why, "task %ld never ran (state %s)", i,
                         taskq_state_name(st));
                break;
            }
            h_nap_ms(1); /* poll interval */
        }
        if (a->rc != TASKQ_OK)
            break;
        /* place the revoke around the task's end: a race position, not a wait */
        if (seen_running[i])
            h_nap_ms((int64_t)(rand_r(&seed) % (unsigned)(dur_ms[i] * 3 / 2 + 1)));
        taskq_revoke_opts_t o;
        memset(&o, 0, sizeof o);
        o.terminate = 1;
        o.grace_ms = 300;
        taskq_revoke_result_t r;
        memset(&r, 0, sizeof r);
        answer[i] = taskq_revoke(c, &specs[i].id, 1, &o, &r);
        snprintf(answer_msg[i], sizeof answer_msg[i], "%s", taskq_client_last_error(c));
        if (answer[i] == TASKQ_OK && r.revoked != 1) {
            a->rc = TASKQ_EINTERNAL;
            snprintf(a->why, sizeof a->why, "revoke of task %ld: OK but revoked=%llu", i,
                     (unsigned long long)r.revoked);
        } else if (answer[i] != TASKQ_OK && answer[i] != TASKQ_ETERMINAL) {
            a->rc = answer[i];
            snprintf(a->why, sizeof a->why, "revoke of task %ld: %s '%s'", i,
                     taskq_err_name(answer[i]), answer_msg[i]);
        }
    }
    taskq_client_destroy(&c);
    return NULL;
}

static long index_of(const char *ids)
{
    taskq_id_t id;
    if (taskq_id_parse(ids, &id) != TASKQ_OK)
        return -1;
    for (long i = 0; i < N; i++)
        if (memcmp(specs[i].id.b, id.b, 16) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    h_history_enable();
    /* 1,000 races (600 under ASan+UBSan, ~3x slower, to stay near 30 s) */
    N = h_sanitized() ? 600 : 1000;
    g_seed = h_seed();
    srand(g_seed);
    specs = calloc((size_t)N, sizeof *specs);
    argbuf = calloc((size_t)N, sizeof *argbuf);
    dur_ms = calloc((size_t)N, sizeof *dur_ms);
    answer = calloc((size_t)N, sizeof *answer);
    answer_msg = calloc((size_t)N, sizeof *answer_msg);
    seen_running = calloc((size_t)N, sizeof *seen_running);
    H_ASSERT(specs && argbuf && dur_ms && answer && answer_msg && seen_running, "out of memory");
    for (long i = 0; i < N; i++) {
        dur_ms[i] = 5 + rand() % 36;
        specs[i].name = "test.sleep";
        specs[i].args = argbuf[i];
        specs[i].args_len = h_args_fmt(argbuf[i], sizeof argbuf[i], "f", dur_ms[i] / 1000.0);
        specs[i].max_attempts = 1; /* a stray signal would show as a failure, not a retry */
        taskq_id_generate(&specs[i].id);
        answer[i] = TASKQ_EINTERNAL;
    }

    h_broker_t *b = h_broker_start(NULL);
    g_ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(g_ep, 20000);
    h_worker_t *w = h_worker_start(g_ep, 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);

    int64_t t0 = h_now_ms();
    taskq_err_t *codes = calloc((size_t)N, sizeof *codes);
    H_ASSERT(codes, "out of memory");
    pthread_t th[NREV];
    rev_arg_t ra[NREV];
    H_OK(taskq_submit_batch(c, specs, (size_t)N, codes));
    for (int k = 0; k < NREV; k++) {
        memset(&ra[k], 0, sizeof ra[k]);
        ra[k].k = k;
        H_ASSERT(pthread_create(&th[k], NULL, revoker, &ra[k]) == 0, "pthread_create");
    }
    for (int k = 0; k < NREV; k++) {
        pthread_join(th[k], NULL);
        H_ASSERT(ra[k].rc == TASKQ_OK, "revoker %d: %s", k, ra[k].why);
    }
    int64_t race_ms = h_now_ms() - t0;

    /* final states */
    long n_succ = 0, n_rev_running = 0, n_rev_before = 0, n_eterm = 0;
    for (long i = 0; i < N; i++) {
        taskq_task_t *t = NULL;
        taskq_err_t rc = taskq_wait(c, &specs[i].id, 20000, &t);
        H_ASSERT(rc == TASKQ_OK, "wait task %ld: %s", i, taskq_err_name(rc));
        if (answer[i] == TASKQ_OK) {
            H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->result == NULL,
                     "task %ld: revoke answered OK but it ended %s (result_len %zu)", i,
                     taskq_state_name(t->state), t->result_len);
            H_ASSERT(t->attempts <= 1, "revoked task %ld: %u attempts", i, t->attempts);
            if (t->attempts == 1)
                n_rev_running++;
            else
                n_rev_before++;
        } else {
            H_ASSERT(answer[i] == TASKQ_ETERMINAL && t->state == TASKQ_STATE_SUCCEEDED &&
                         strstr(answer_msg[i], "already succeeded"),
                     "task %ld: revoke answered %s '%s' but it ended %s", i,
                     taskq_err_name(answer[i]), answer_msg[i], taskq_state_name(t->state));
            n_eterm++;
        }
        if (t->state == TASKQ_STATE_SUCCEEDED) {
            msgpack_unpacked u;
            msgpack_unpacked_init(&u);
            bool ok = msgpack_unpack_next(&u, t->result, t->result_len, NULL) ==
                          MSGPACK_UNPACK_SUCCESS &&
                      u.data.type == MSGPACK_OBJECT_FLOAT64 &&
                      (int)(u.data.via.f64 * 1000.0 + 0.5) == dur_ms[i];
            msgpack_unpacked_destroy(&u);
            H_ASSERT(ok && t->attempts == 1, "succeeded task %ld: attempts=%u, result not its "
                     "own argument %d ms", i, t->attempts, dur_ms[i]);
            n_succ++;
        }
        taskq_task_destroy(&t);
    }

    /* signals. The worker writes "cancel ID ATT PID terminate" before it
     * SIGTERMs PID and "cancel_kill ID ATT PID" before a SIGKILL; each child
     * writes exec_start / exec_end; "child_died PID sigN ID|- ATT|-". */
    hevents_t *h = fu_load();
    long n_sig = 0, n_term_sent = 0, n_kill = 0, n_late_ok = 0;
    for (size_t e = 0; e < h->n; e++) {
        const hev_t *ev = &h->ev[e];
        if (strcmp(ev->role, "worker") != 0)
            continue;
        bool term = !strcmp(ev->ev, "cancel") && ev->nf >= 4 && !strcmp(ev->f[3], "terminate");
        bool kill9 = !strcmp(ev->ev, "cancel_kill") && ev->nf >= 3;
        if (term || kill9) {
            /* the signalled child ran exactly that (id, attempt) when it was sent */
            long i = index_of(ev->f[0]);
            H_ASSERT(i >= 0 && answer[i] == TASKQ_OK && !strcmp(ev->f[1], "1"),
                     "the worker signalled child %s for task %s attempt %s, which was not a "
                     "revoked attempt (revoke answered %s)", ev->f[2], ev->f[0], ev->f[1],
                     i >= 0 ? taskq_err_name(answer[i]) : "-");
            int cpid = atoi(ev->f[2]);
            /* the child's own history: what did it run when the signal was sent,
             * and did it start anything else before it died? */
            const hev_t *last = NULL, *last_end = NULL, *died = NULL, *other = NULL;
            for (size_t k = 0; k < h->n; k++) {
                const hev_t *x = &h->ev[k];
                if (!died && x->us >= ev->us && !strcmp(x->role, "worker") &&
                    !strcmp(x->ev, "child_died") && x->nf >= 1 && atoi(x->f[0]) == cpid)
                    died = x;
                if (x->pid != cpid || strcmp(x->role, "child") != 0)
                    continue;
                if (!strcmp(x->ev, "exec_start") && x->us <= ev->us)
                    last = x, last_end = NULL;
                else if (!strcmp(x->ev, "exec_end") && x->us <= ev->us)
                    last_end = x;
                else if (!strcmp(x->ev, "exec_start") && !other && !died &&
                         (strcmp(x->f[0], ev->f[0]) || strcmp(x->f[1], ev->f[1])))
                    other = x;
            }
            /* running = started and not ended before the signal */
            bool running_other = last && !last_end &&
                                 (strcmp(last->f[0], ev->f[0]) || strcmp(last->f[1], ev->f[1]));
            H_ASSERT(!running_other,
                     "%s sent to child %d for %s %s while the child was running %s %s",
                     term ? "SIGTERM" : "SIGKILL", cpid, ev->f[0], ev->f[1], last->f[0],
                     last->f[1]);
            H_ASSERT(!other, "child %d was sent %s for %s %s and then started %s %s before it "
                     "died: the signal reached a child running another task", cpid,
                     term ? "SIGTERM" : "SIGKILL", ev->f[0], ev->f[1], other->f[0], other->f[1]);
            H_EXPECT(died != NULL, "child %d got %s for %s but never died", cpid,
                     term ? "SIGTERM" : "SIGKILL", ev->f[0]);
            n_term_sent += term;
            n_kill += kill9;
        }
        if (!strcmp(ev->ev, "done_acked") && ev->nf >= 3) {
            long i = index_of(ev->f[0]);
            if (i >= 0 && answer[i] == TASKQ_OK && strcmp(ev->f[2], "ESTALE") != 0)
                n_late_ok++; /* a revoked attempt's late DONE must be ESTALE */
        }
        if (!strcmp(ev->ev, "child_died")) {
            H_ASSERT(ev->nf >= 4, "child_died with %d fields", ev->nf);
            H_ASSERT(strncmp(ev->f[1], "sig", 3) == 0,
                     "child %s exited (%s) while running %s %s: only revokes end children here",
                     ev->f[0], ev->f[1], ev->f[2], ev->f[3]);
            n_sig++;
            /* every signal death follows a terminate of that child */
            const hev_t *cause = NULL;
            for (size_t k = 0; k < e; k++) {
                const hev_t *x = &h->ev[k];
                if (!strcmp(x->role, "worker") && !strcmp(x->ev, "cancel") && x->nf >= 4 &&
                    !strcmp(x->f[3], "terminate") && !strcmp(x->f[2], ev->f[0]))
                    cause = x;
            }
            H_ASSERT(cause, "child %s died by %s running %s %s without a revoke --terminate of "
                     "it", ev->f[0], ev->f[1], ev->f[2], ev->f[3]);
            H_ASSERT(!strcmp(ev->f[2], "-") ||
                         (!strcmp(ev->f[2], cause->f[0]) && !strcmp(ev->f[3], cause->f[1])),
                     "child %s died by %s while the worker had it running %s %s, but the "
                     "terminate was for %s %s", ev->f[0], ev->f[1], ev->f[2], ev->f[3],
                     cause->f[0], cause->f[1]);
        }
    }
    hevents_destroy(&h);
    H_EXPECT(n_late_ok == 0, "%ld late DONEs of revoked attempts were acknowledged (not ESTALE)",
             n_late_ok);
    checker_summary_t s = fu_check(h_broker_db(b));
    (void)s;

    /* the worker still has its 4 children, and serves */
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    uint8_t a3[16];
    taskq_id_t after;
    h_submit(c, &after, "test.square", a3, h_args_int(a3, sizeof a3, 3), 0, 0);
    taskq_task_t *t = NULL;
    H_OK(taskq_wait(c, &after, 20000, &t));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "a task after the races: %s",
             taskq_state_name(t->state));
    taskq_task_destroy(&t);

    h_log("races: %ld tasks in %lld ms: %ld revoked while running, %ld revoked before start, "
          "%ld already succeeded (ETERMINAL); %ld SIGTERMs and %ld SIGKILLs sent, each to the "
          "child running that revoked attempt; %ld children died by a signal",
          N, (long long)race_ms, n_rev_running, n_rev_before, n_eterm, n_term_sent, n_kill,
          n_sig);
    printf("metric revoke_race_tasks %ld\nmetric revoke_race_revoked_running %ld\n"
           "metric revoke_race_revoked_before_start %ld\nmetric revoke_race_already_succeeded "
           "%ld\nmetric revoke_race_children_signalled %ld\nmetric revoke_race_sigkills %ld\n"
           "metric revoke_race_ms %lld\n",
           N, n_rev_running, n_rev_before, n_eterm, n_term_sent, n_kill, (long long)race_ms);
    H_ASSERT(n_succ == n_eterm, "succeeded %ld != ETERMINAL answers %ld", n_succ, n_eterm);
    /* both sides of the race must have happened, or this tested nothing */
    H_ASSERT(n_rev_running >= N / 20 && n_eterm >= N / 20,
             "the race did not happen: %ld revoked while running, %ld after the end (each "
             "should be >= %ld)", n_rev_running, n_eterm, N / 20);
    H_ASSERT(n_term_sent > 0 && n_sig > 0, "no child was ever terminated: --terminate not "
             "exercised");
    taskq_client_destroy(&c);
    free(specs);
    free(argbuf);
    free(dur_ms);
    free(answer);
    free(answer_msg);
    free(seen_running);
    free(codes);
    h_check_expects();
    return 0;
}
