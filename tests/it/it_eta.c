/* it_eta: countdown, ETA and expiry.
 *  1. Test clock: a 2-hour ETA and a 2-hour countdown are `scheduled` with
 *     the right due_at, are not dispatched at +1h59m59s (a probe task due
 *     then has run, so the broker looked), and run exactly once after +2h.
 *     ETA through the CLI in ISO-8601 with an offset and in unix seconds.
 *  2. Real clock: 20 tasks with countdowns 1 s + 50 ms * i (each due
 *     alone, free slots): dispatch lateness started_at - due_at <= 100 ms;
 *     p50 and max are printed.
 *  3. Test clock: 30 ETAs that fall due while the broker is down (kill -9)
 *     run once each after the restart.
 *  4. Test clock: --expires: a queued task and a scheduled task that did
 *     not start in time end `expired` (terminal, no attempt; taskq_wait
 *     returns them); a task that started in time is not expired; the CLI's
 *     --expires.
 *  5. Test clock: retention (a TTL) runs on the broker clock too. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define HOUR_MS (3600LL * 1000)
#define OUTSZ 8192
static char out[OUTSZ];

static bool is_succeeded(const taskq_task_t *t, void *arg)
{
    (void)arg;
    H_ASSERT(t->state != TASKQ_STATE_FAILED && t->state != TASKQ_STATE_EXPIRED,
             "task %s ended %s: %s", h_id_str(&t->id), taskq_state_name(t->state), t->error);
    return t->state == TASKQ_STATE_SUCCEEDED;
}

static bool is_expired(const taskq_task_t *t, void *arg)
{
    (void)arg;
    H_ASSERT(t->state != TASKQ_STATE_SUCCEEDED && t->state != TASKQ_STATE_FAILED &&
                 t->state != TASKQ_STATE_RUNNING,
             "task %s is %s, expected it to expire", h_id_str(&t->id), taskq_state_name(t->state));
    return t->state == TASKQ_STATE_EXPIRED;
}

static taskq_task_spec_t append_spec(uint8_t *args, size_t argsz, const char *path,
                                     const char *tag, const char *queue)
{
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = "test.append";
    s.args = args;
    s.args_len = h_args_fmt(args, argsz, "ss", path, tag);
    s.queue = queue;
    return s;
}

static void expect_state(taskq_client_t *c, const taskq_id_t *id, int state, uint32_t attempts,
                         const char *what)
{
    taskq_task_t *t = h_status(c, id);
    H_ASSERT(t, "%s: task not found", what);
    H_ASSERT(t->state == state && t->attempts == attempts, "%s: %s attempts=%u, expected %s "
             "attempts=%u", what, taskq_state_name(t->state), t->attempts,
             taskq_state_name(state), attempts);
    taskq_task_destroy(&t);
}

static int count_tag(const char *path, const char *tag)
{
    h_lines_t l = h_read_lines(path);
    int n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += strcmp(l.line[i], tag) == 0;
    h_lines_free(&l);
    return n;
}

static taskq_id_t cli_id(const char *what)
{
    taskq_id_t id;
    for (const char *p = out; strlen(p) >= TASKQ_ID_STRLEN; p++) {
        char buf[TASKQ_ID_STRLEN + 1];
        memcpy(buf, p, TASKQ_ID_STRLEN);
        buf[TASKQ_ID_STRLEN] = '\0';
        if (taskq_id_parse(buf, &id) == TASKQ_OK)
            return id;
    }
    H_FAIL("%s: no task id in stdout '%.300s'", what, out);
}

/* ---- 1: 2-hour ETA on the test clock --------------------------------------- */

static void two_hours(taskq_client_t *c, const char *ep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/eta.txt", h_tmpdir());
    int64_t t0 = h_clock(c, 0, 0);
    uint8_t a1[512], a2[512], a3[512];
    taskq_task_spec_t eta = append_spec(a1, sizeof a1, path, "eta", NULL);
    eta.eta_ms = t0 + 2 * HOUR_MS;
    H_OK(taskq_submit(c, &eta));
    taskq_task_spec_t cd = append_spec(a2, sizeof a2, path, "countdown", NULL);
    cd.countdown_ms = 2 * HOUR_MS;
    H_OK(taskq_submit(c, &cd));
    /* the probe falls due one second before them */
    taskq_task_spec_t probe = append_spec(a3, sizeof a3, path, "probe", NULL);
    probe.eta_ms = t0 + 2 * HOUR_MS - 1000;
    H_OK(taskq_submit(c, &probe));

    taskq_task_t *t = h_status(c, &eta.id);
    H_ASSERT(t && t->state == TASKQ_STATE_SCHEDULED && t->due_at == t0 + 2 * HOUR_MS,
             "2 h ETA: %s due_at=%lld, expected scheduled due_at=%lld",
             t ? taskq_state_name(t->state) : "missing", t ? (long long)t->due_at : 0,
             (long long)(t0 + 2 * HOUR_MS));
    taskq_task_destroy(&t);
    t = h_status(c, &cd.id);
    H_ASSERT(t && t->state == TASKQ_STATE_SCHEDULED && t->due_at == t0 + 2 * HOUR_MS,
             "2 h countdown: %s due_at=%lld, expected scheduled due_at=%lld (the broker clock "
             "did not move)", t ? taskq_state_name(t->state) : "missing",
             t ? (long long)t->due_at : 0, (long long)(t0 + 2 * HOUR_MS));
    taskq_task_destroy(&t);

    /* CLI: ISO-8601 with an offset, and unix seconds */
    struct tm tm = {.tm_year = 2030 - 1900, .tm_mon = 5, .tm_mday = 15, .tm_hour = 16,
                    .tm_min = 30};
    int64_t iso_ms = (int64_t)timegm(&tm) * 1000; /* 2030-06-15T18:30:00+02:00 */
    int rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[2]", "--eta",
                       "2030-06-15T18:30:00+02:00");
    H_ASSERT(rc == 0, "submit --eta ISO-8601: exit %d", rc);
    taskq_id_t iso = cli_id("submit --eta ISO");
    t = h_status(c, &iso);
    H_ASSERT(t && t->state == TASKQ_STATE_SCHEDULED && t->due_at == iso_ms,
             "--eta 2030-06-15T18:30:00+02:00: %s due_at=%lld, expected %lld",
             t ? taskq_state_name(t->state) : "missing", t ? (long long)t->due_at : 0,
             (long long)iso_ms);
    taskq_task_destroy(&t);
    char secs[32];
    snprintf(secs, sizeof secs, "%lld", (long long)(t0 / 1000 + 7200));
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[2]", "--eta", secs);
    H_ASSERT(rc == 0, "submit --eta %s: exit %d", secs, rc);
    taskq_id_t unix_id = cli_id("submit --eta seconds");
    t = h_status(c, &unix_id);
    H_ASSERT(t && t->state == TASKQ_STATE_SCHEDULED && t->due_at == (t0 / 1000 + 7200) * 1000,
             "--eta %s: due_at=%lld", secs, t ? (long long)t->due_at : 0);
    taskq_task_destroy(&t);

    h_worker_t *w = h_worker_start(ep, 2, "-Q", "default");
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    h_clock(c, 2 * HOUR_MS - 1000, 0); /* +1h59m59s */
    t = h_wait_task(c, &probe.id, is_succeeded, NULL, 10000, "probe due at +1h59m59s ran");
    taskq_task_destroy(&t);
    /* the broker has promoted what was due at +1h59m59s: not these */
    expect_state(c, &eta.id, TASKQ_STATE_SCHEDULED, 0, "2 h ETA at +1h59m59s");
    expect_state(c, &cd.id, TASKQ_STATE_SCHEDULED, 0, "2 h countdown at +1h59m59s");
    H_ASSERT(count_tag(path, "eta") == 0 && count_tag(path, "countdown") == 0,
             "a 2 h task ran early");

    int64_t now = h_clock(c, 1000, 0); /* +2h */
    H_ASSERT(now == t0 + 2 * HOUR_MS, "clock %lld, expected %lld", (long long)now,
             (long long)(t0 + 2 * HOUR_MS));
    const taskq_id_t *ids[2] = {&eta.id, &cd.id};
    for (int i = 0; i < 2; i++) {
        t = h_wait_task(c, ids[i], is_succeeded, NULL, 10000, "2 h task ran at +2h");
        H_ASSERT(t->attempts == 1, "2 h task: attempts=%u", t->attempts);
        H_ASSERT(t->started_at >= t0 + 2 * HOUR_MS,
                 "2 h task started at %lld, before its due time %lld (broker clock)",
                 (long long)t->started_at, (long long)(t0 + 2 * HOUR_MS));
        taskq_task_destroy(&t);
    }
    H_ASSERT(count_tag(path, "eta") == 1 && count_tag(path, "countdown") == 1 &&
                 count_tag(path, "probe") == 1,
             "runs: eta=%d countdown=%d probe=%d, expected 1 each", count_tag(path, "eta"),
             count_tag(path, "countdown"), count_tag(path, "probe"));
    h_log("2 h ETA and countdown: scheduled at +1h59m59s, ran once at +2h");
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- 2: lateness on the real clock ------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void lateness(void)
{
    char db[512], path[512];
    snprintf(db, sizeof db, "%s/real.db", h_tmpdir());
    snprintf(path, sizeof path, "%s/late.txt", h_tmpdir());
    h_broker_t *b = h_broker_start(db);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_t *w = h_worker_start(ep, 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    enum { NL = 20 };
    taskq_task_spec_t s[NL];
    uint8_t args[NL][512];
    taskq_err_t codes[NL];
    for (int i = 0; i < NL; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "l%d", i);
        s[i] = append_spec(args[i], sizeof args[i], path, tag, NULL);
        s[i].countdown_ms = 1000 + 50 * i;
    }
    H_OK(taskq_submit_batch(c, s, NL, codes));
    int64_t due[NL];
    for (int i = 0; i < NL; i++) {
        taskq_task_t *t = h_status(c, &s[i].id);
        H_ASSERT(t && t->state == TASKQ_STATE_SCHEDULED, "countdown task %d is %s right after "
                 "submit", i, t ? taskq_state_name(t->state) : "missing");
        H_ASSERT(t->due_at == t->submitted_at + s[i].countdown_ms,
                 "countdown %lld ms: due_at %lld != submitted_at %lld + countdown",
                 (long long)s[i].countdown_ms, (long long)t->due_at, (long long)t->submitted_at);
        due[i] = t->due_at;
        taskq_task_destroy(&t);
    }
    int64_t late[NL];
    for (int i = 0; i < NL; i++) {
        taskq_task_t *t = h_wait_task(c, &s[i].id, is_succeeded, NULL, 15000, "countdown task");
        H_ASSERT(t->attempts == 1, "attempts=%u", t->attempts);
        taskq_attempts_t *at = NULL;
        H_OK(taskq_attempts(c, &s[i].id, &at));
        H_ASSERT(taskq_attempts_count(at) == 1, "%zu attempts", taskq_attempts_count(at));
        const taskq_attempt_t *a = taskq_attempts_get(at, 0);
        H_ASSERT(a->started_at == t->started_at, "attempt started_at %lld != task %lld",
                 (long long)a->started_at, (long long)t->started_at);
        late[i] = t->started_at - due[i];
        H_ASSERT(late[i] >= 0, "task %d started %lld ms before its countdown ended", i,
                 (long long)-late[i]);
        taskq_attempts_destroy(&at);
        taskq_task_destroy(&t);
    }
    qsort(late, NL, sizeof late[0], cmp_i64);
    h_log("due countdowns (real clock, idle broker): dispatch lateness p50=%lld ms max=%lld ms "
          "over %d tasks", (long long)late[NL / 2], (long long)late[NL - 1], NL);
    H_ASSERT(late[NL - 1] <= 100, "a due task was dispatched %lld ms late (limit 100 ms)",
             (long long)late[NL - 1]);
    taskq_client_destroy(&c);
}

/* ---- 3: overdue after a restart --------------------------------------------- */

static void overdue_after_restart(h_broker_t *b, taskq_client_t **cp)
{
    taskq_client_t *c = *cp;
    const char *ep = h_broker_endpoint(b);
    char path[512];
    snprintf(path, sizeof path, "%s/overdue.txt", h_tmpdir());
    enum { NO = 30 };
    taskq_task_spec_t s[NO];
    uint8_t args[NO][512];
    taskq_err_t codes[NO];
    int64_t t0 = h_clock(c, 0, 0);
    for (int i = 0; i < NO; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "o%d", i);
        s[i] = append_spec(args[i], sizeof args[i], path, tag, "late");
        s[i].eta_ms = t0 + 600000 + 1000LL * (NO - i); /* due in reverse order */
    }
    H_OK(taskq_submit_batch(c, s, NO, codes));
    for (int i = 0; i < NO; i++)
        expect_state(c, &s[i].id, TASKQ_STATE_SCHEDULED, 0, "ETA +10 min");
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    *cp = c = h_client(ep, 10000);
    /* the restarted broker's clock starts again: move it past every ETA */
    h_clock(c, 0, t0 + 3600000);
    h_worker_t *w = h_worker_start(ep, 2, "-Q", "late");
    for (int i = 0; i < NO; i++) {
        taskq_task_t *t = h_wait_task(c, &s[i].id, is_succeeded, NULL, 20000, "overdue ETA");
        H_ASSERT(t->attempts == 1, "overdue task %d: attempts=%u", i, t->attempts);
        taskq_task_destroy(&t);
    }
    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == NO, "%zu runs of %d overdue tasks", l.n, NO);
    bool seen[NO] = {false};
    for (size_t k = 0; k < l.n; k++) {
        int i = -1;
        H_ASSERT(sscanf(l.line[k], "o%d", &i) == 1 && i >= 0 && i < NO && !seen[i],
                 "line '%s': unknown or repeated", l.line[k]);
        seen[i] = true;
    }
    h_lines_free(&l);
    h_log("%d ETAs overdue across kill -9 + restart ran once each", NO);
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- 4: expiry ---------------------------------------------------------------- */

static void expiry(taskq_client_t *c, const char *ep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/exp.txt", h_tmpdir());
    H_OK(taskq_queue_pause(c, "held", 1));
    int64_t t0 = h_clock(c, 0, 0);
    uint8_t a1[512], a2[512], a3[512], a4[512];
    /* queued (paused queue), expires in 60 s */
    taskq_task_spec_t q = append_spec(a1, sizeof a1, path, "q", "held");
    q.expires_in_ms = 60000;
    H_OK(taskq_submit(c, &q));
    /* scheduled for +10 min, expires at +5 min */
    taskq_task_spec_t sch = append_spec(a2, sizeof a2, path, "sch", "exq");
    sch.eta_ms = t0 + 600000;
    sch.expires_at_ms = t0 + 300000;
    H_OK(taskq_submit(c, &sch));
    /* starts at once, expires in 60 s: it ran, so it does not expire */
    taskq_task_spec_t ok = append_spec(a3, sizeof a3, path, "ok", "exq");
    ok.expires_in_ms = 60000;
    H_OK(taskq_submit(c, &ok));
    /* queued, never expires */
    taskq_task_spec_t keep = append_spec(a4, sizeof a4, path, "keep", "held");
    H_OK(taskq_submit(c, &keep));
    taskq_task_t *t = h_status(c, &q.id);
    H_ASSERT(t && t->expires_at == t0 + 60000, "expires_at %lld, expected %lld",
             t ? (long long)t->expires_at : 0, (long long)(t0 + 60000));
    taskq_task_destroy(&t);
    /* CLI --expires S */
    int rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[5]", "--queue", "held",
                       "--expires", "30");
    H_ASSERT(rc == 0, "submit --expires 30: exit %d", rc);
    taskq_id_t cli = cli_id("submit --expires");
    t = h_status(c, &cli);
    H_ASSERT(t && t->expires_at == t0 + 30000, "--expires 30: expires_at %lld, expected %lld",
             t ? (long long)t->expires_at : 0, (long long)(t0 + 30000));
    taskq_task_destroy(&t);

    h_worker_t *w = h_worker_start(ep, 1, "-Q", "exq");
    t = h_wait_task(c, &ok.id, is_succeeded, NULL, 15000, "task that starts before expiry");
    taskq_task_destroy(&t);

    h_clock(c, 61000, 0); /* +61 s: q and the CLI task expire */
    t = h_wait_task(c, &q.id, is_expired, NULL, 10000, "queued task past expires_in");
    H_ASSERT(t->attempts == 0, "expired task has attempts=%u", t->attempts);
    taskq_task_destroy(&t);
    t = h_wait_task(c, &cli, is_expired, NULL, 10000, "CLI --expires 30 task");
    taskq_task_destroy(&t);
    /* taskq_wait treats expired as terminal */
    H_OK(taskq_wait(c, &q.id, 5000, &t));
    H_ASSERT(t->state == TASKQ_STATE_EXPIRED, "taskq_wait: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    expect_state(c, &sch.id, TASKQ_STATE_SCHEDULED, 0, "ETA +10 min, expiry +5 min, at +61 s");

    h_clock(c, 0, t0 + 301000); /* +5 min 1 s: sch expires before it is due */
    t = h_wait_task(c, &sch.id, is_expired, NULL, 10000, "scheduled task past expires_at");
    H_ASSERT(t->attempts == 0, "attempts=%u", t->attempts);
    taskq_task_destroy(&t);
    h_clock(c, 0, t0 + 700000); /* past sch's ETA: an expired task stays expired */
    expect_state(c, &ok.id, TASKQ_STATE_SUCCEEDED, 1, "task that ran before its expiry");
    expect_state(c, &keep.id, TASKQ_STATE_QUEUED, 0, "task without expiry");

    /* resume: only `keep` runs from held; q/sch never ran */
    H_OK(taskq_queue_pause(c, "held", 0));
    h_worker_t *w2 = h_worker_start(ep, 1, "-Q", "held");
    t = h_wait_task(c, &keep.id, is_succeeded, NULL, 15000, "task without expiry");
    taskq_task_destroy(&t);
    expect_state(c, &sch.id, TASKQ_STATE_EXPIRED, 0, "expired task after its ETA");
    H_ASSERT(count_tag(path, "q") == 0 && count_tag(path, "sch") == 0 &&
                 count_tag(path, "ok") == 1 && count_tag(path, "keep") == 1,
             "runs: q=%d sch=%d ok=%d keep=%d", count_tag(path, "q"), count_tag(path, "sch"),
             count_tag(path, "ok"), count_tag(path, "keep"));
    h_log("expiry: queued and scheduled tasks expired unrun; started and unlimited ones ran");
    h_worker_signal(w, SIGTERM);
    h_worker_signal(w2, SIGTERM);
    h_worker_wait_exit(w, 15000);
    h_worker_wait_exit(w2, 15000);
}

/* ---- 5: retention runs on the broker clock ----------------------------------- */

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *id;
} gone_arg_t;

/* ENOTFOUND, or EPURGED where the broker keeps a tombstone */
static bool is_gone(void *p)
{
    gone_arg_t *a = p;
    taskq_task_t *t = NULL;
    taskq_err_t rc = taskq_status(a->c, a->id, &t);
    taskq_task_destroy(&t);
    H_ASSERT(rc == TASKQ_OK || rc == TASKQ_ENOTFOUND || rc == TASKQ_EPURGED,
             "taskq_status: %s", taskq_err_name(rc));
    return rc != TASKQ_OK;
}

static void retention(taskq_client_t *c, const char *ep)
{
    uint8_t a[16];
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = "test.square";
    s.args = a;
    s.args_len = h_args_int(a, sizeof a, 3);
    s.queue = "ret";
    H_OK(taskq_submit(c, &s));
    h_worker_t *w = h_worker_start(ep, 1, "-Q", "ret");
    taskq_task_t *t = h_wait_task(c, &s.id, is_succeeded, NULL, 15000, "task to forget");
    taskq_task_destroy(&t);
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
    /* default --retention 86400 s: 25 h of broker clock later it is gone
     * (the purge runs every second or so) */
    h_clock(c, 25 * HOUR_MS, 0);
    gone_arg_t ga = {c, &s.id};
    h_wait_for(is_gone, &ga, 10000, "finished task purged 25 h (broker clock) after it "
               "finished: retention must run on the broker clock");
    h_log("retention: a finished task is purged 25 h later on the test clock");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    h_broker_t *b = h_broker_start(NULL, "--test-clock");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);

    two_hours(c, ep);
    expiry(c, ep);
    overdue_after_restart(b, &c);
    lateness();
    retention(c, ep); /* last: it moves the clock a day on */

    taskq_client_destroy(&c);
    return 0;
}
