/* it_retention: result TTLs, purge, dead letters and re-run (issue 7).
 * Broker with --test-clock --retention 10 --failed-ttl 100.
 *  1. TTLs: a task with --result-ttl 2 s is kept until exactly finished + 2 s
 *     and then answers EPURGED (STATUS and WAIT, CLI "purged"); succeeded
 *     and revoked tasks go after 10 s, a failed one stays until 100 s; an
 *     id newer than anything purged is still ENOTFOUND ("never existed");
 *     stats.purged counts every purge and survives a restart.
 *  2. `purge --state succeeded --older-than`: only tasks ended that long ago.
 *  3. Dead letters: `failed --code test.io` lists a failed task with its
 *     attempts; re-running it (after fixing its cause) makes a new task that
 *     succeeds, linked both ways (rerun_of / rerun_by), while the old row
 *     keeps state, attempts, times, code and error unchanged; a second
 *     re-run is EEXIST, a re-run of a succeeded task ETERMINAL; `taskq rerun`
 *     and `rerun --all --code`. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static bool id_eq(const taskq_id_t *a, const taskq_id_t *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static taskq_task_t *run_to_end(taskq_client_t *c, taskq_task_spec_t *s)
{
    taskq_err_t rc = taskq_submit(c, s);
    H_ASSERT(rc == TASKQ_OK, "submit %s: %s", s->name, taskq_err_name(rc));
    return h_wait_task(c, &s->id, is_terminal, NULL, 20000, s->name);
}

static taskq_err_t status_code(taskq_client_t *c, const taskq_id_t *id)
{
    taskq_task_t *t = NULL;
    taskq_err_t rc = taskq_status(c, id, &t);
    taskq_task_destroy(&t);
    return rc;
}

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *id;
    taskq_err_t last;
} pw_t;

static bool is_purged(void *p)
{
    pw_t *w = p;
    w->last = status_code(w->c, w->id);
    H_ASSERT(w->last == TASKQ_OK || w->last == TASKQ_EPURGED, "status while waiting for the "
             "purge: %s", taskq_err_name(w->last));
    return w->last == TASKQ_EPURGED;
}

static void wait_purged(taskq_client_t *c, const taskq_id_t *id, const char *what)
{
    pw_t w = {c, id, TASKQ_OK};
    h_wait_for(is_purged, &w, 15000, what);
}

static void expect_kept(taskq_client_t *c, const taskq_id_t *id, const char *what)
{
    taskq_err_t rc = status_code(c, id);
    H_ASSERT(rc == TASKQ_OK, "%s: status %s, expected the record still kept", what,
             taskq_err_name(rc));
}

static uint64_t purged_count(taskq_client_t *c)
{
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    return st.purged;
}

static const char *cli_err(void)
{
    static char buf[4096];
    buf[0] = '\0';
    FILE *f = fopen(h_cli_last_log(), "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    return buf;
}

/* ---- 1. TTLs ---------------------------------------------------------------------- */

static void ttls(h_broker_t *b, taskq_client_t **cp)
{
    taskq_client_t *c = *cp;
    const char *ep = h_broker_endpoint(b);
    uint8_t a3[16], a4[16], af[32], ar[16];
    taskq_task_spec_t s1 = h_spec("test.square", a3, h_args_int(a3, sizeof a3, 3));
    taskq_task_spec_t s2 = h_spec("test.square", a4, h_args_int(a4, sizeof a4, 4));
    s2.result_ttl_ms = 2000;
    taskq_task_spec_t f1 = h_spec("test.fail_perm", af, h_args_str(af, sizeof af, "x.dead"));
    taskq_task_spec_t r1 = h_spec("test.square", ar, h_args_int(ar, sizeof ar, 5));
    r1.queue = "held";
    H_OK(taskq_queue_pause(c, "held", 1));
    taskq_task_t *t = run_to_end(c, &s1);
    taskq_task_destroy(&t);
    t = run_to_end(c, &s2);
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "s2: %s", taskq_state_name(t->state));
    int64_t fin2 = t->finished_at;
    taskq_task_destroy(&t);
    t = run_to_end(c, &f1);
    H_ASSERT(t->state == TASKQ_STATE_FAILED, "f1: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    H_OK(taskq_submit(c, &r1));
    taskq_revoke_result_t rr;
    H_OK(taskq_revoke(c, &r1.id, 1, NULL, &rr));
    uint64_t p0 = purged_count(c);
    H_ASSERT(p0 == 0, "stats.purged %llu before any TTL", (unsigned long long)p0);

    int64_t now = h_clock(c, 0, 0);
    H_ASSERT(fin2 <= now, "finished_at %lld is after the broker clock %lld", (long long)fin2,
             (long long)now);
    h_clock(c, 0, fin2 + 1999);
    /* give the purge its chance: a task ended after s2 is the sync point */
    uint8_t a6[16];
    taskq_task_spec_t sync = h_spec("test.square", a6, h_args_int(a6, sizeof a6, 6));
    sync.result_ttl_ms = 3600 * 1000;
    t = run_to_end(c, &sync);
    taskq_task_destroy(&t);
    expect_kept(c, &s2.id, "--result-ttl 2 s, 1.999 s after it ended");
    h_clock(c, 0, fin2 + 2000);
    wait_purged(c, &s2.id, "the 2 s result purged");
    taskq_task_t *w = NULL;
    taskq_err_t rc = taskq_wait(c, &s2.id, 5000, &w);
    H_ASSERT(rc == TASKQ_EPURGED, "taskq_wait on a purged id: %s, expected EPURGED",
             taskq_err_name(rc));
    taskq_task_destroy(&w);
    expect_kept(c, &s1.id, "default retention 10 s, 2 s after");
    char s2s[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s2.id, s2s);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "status", s2s);
    H_ASSERT(x != 0 && strcasestr(cli_err(), "purged"), "taskq status of a purged id: exit %d "
             "stderr '%.300s'", x, cli_err());
    /* an id newer than anything purged never existed */
    taskq_id_t fresh;
    taskq_id_generate(&fresh);
    H_ASSERT(status_code(c, &fresh) == TASKQ_ENOTFOUND, "a never-submitted new id: %s",
             taskq_err_name(status_code(c, &fresh)));

    h_clock(c, 10000, 0);
    wait_purged(c, &s1.id, "succeeded, default retention 10 s");
    wait_purged(c, &r1.id, "revoked, default retention 10 s");
    expect_kept(c, &f1.id, "failed, --failed-ttl 100 s, after 12 s");
    expect_kept(c, &sync.id, "--result-ttl 1 h");
    h_clock(c, 100000, 0);
    wait_purged(c, &f1.id, "failed, --failed-ttl 100 s");
    uint64_t p1 = purged_count(c);
    H_ASSERT(p1 == 4, "stats.purged %llu, expected 4 (s1, s2, r1, f1)", (unsigned long long)p1);
    /* counted for good */
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    *cp = c = h_client(ep, 15000);
    uint64_t p2 = purged_count(c);
    H_ASSERT(p2 == p1, "stats.purged %llu after restart, was %llu", (unsigned long long)p2,
             (unsigned long long)p1);
    H_ASSERT(status_code(c, &s1.id) == TASKQ_EPURGED, "purged id after restart: %s",
             taskq_err_name(status_code(c, &s1.id)));
    h_log("TTLs: 2 s result purged at exactly +2 s; retention 10 s; failed 100 s; purged=%llu "
          "kept across a restart", (unsigned long long)p2);
}

/* ---- 2. purge -------------------------------------------------------------------- */

static void purge_op(taskq_client_t *c, const char *ep)
{
    uint8_t a[16];
    taskq_task_spec_t old = h_spec("test.square", a, h_args_int(a, sizeof a, 7));
    old.result_ttl_ms = 3600 * 1000;
    taskq_task_t *t = run_to_end(c, &old);
    taskq_task_destroy(&t);
    h_clock(c, 5000, 0);
    taskq_task_spec_t young = h_spec("test.square", a, h_args_int(a, sizeof a, 8));
    young.result_ttl_ms = 3600 * 1000;
    t = run_to_end(c, &young);
    taskq_task_destroy(&t);
    uint64_t before = purged_count(c), n = 0;
    H_OK(taskq_purge(c, TASKQ_STATE_SUCCEEDED, 3000, &n));
    H_ASSERT(n >= 1 && status_code(c, &old.id) == TASKQ_EPURGED, "purge --older-than 3s: "
             "purged %llu, old task %s", (unsigned long long)n,
             taskq_err_name(status_code(c, &old.id)));
    expect_kept(c, &young.id, "a task ended 0 s ago, purge --older-than 3s");
    H_ASSERT(purged_count(c) == before + n, "stats.purged did not count the purge");
    h_clock(c, 5000, 0);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "purge", "--state", "succeeded", "--older-than",
                      "3s");
    H_ASSERT(x == 0 && status_code(c, &young.id) == TASKQ_EPURGED,
             "taskq purge --state succeeded --older-than 3s: exit %d, young task %s", x,
             taskq_err_name(status_code(c, &young.id)));
    uint64_t bad = 0;
    taskq_err_t rc = taskq_purge(c, TASKQ_STATE_QUEUED, 0, &bad);
    H_ASSERT(rc == TASKQ_EINVAL, "purge of a non-terminal state: %s", taskq_err_name(rc));
    h_log("purge: older-than respected, counted in stats");
}

/* ---- 3. dead letters and re-run ---------------------------------------------------- */

static void rerun(taskq_client_t *c, const char *ep)
{
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/dl", h_tmpdir());
    snprintf(path, sizeof path, "%s/out.txt", dir);
    uint8_t a[1024];
    size_t al = h_args_fmt(a, sizeof a, "ss", path, "tagX");
    taskq_task_spec_t f = h_spec("test.append", a, al);
    f.max_attempts = 1;
    f.queue = "dlq";
    f.priority = 7;
    f.has_priority = 1;
    taskq_task_t *old = run_to_end(c, &f);
    H_ASSERT(old->state == TASKQ_STATE_FAILED && !strcmp(old->code, "test.io"),
             "append to a missing dir: %s code '%s'", taskq_state_name(old->state), old->code);

    /* the dead-letter list */
    taskq_failed_filter_t flt;
    memset(&flt, 0, sizeof flt);
    flt.code = "test.io";
    taskq_task_list_t *l = NULL;
    H_OK(taskq_failed(c, &flt, &l));
    bool listed = false;
    for (size_t i = 0; i < taskq_task_list_count(l); i++) {
        const taskq_task_t *x = taskq_task_list_get(l, i);
        H_ASSERT(!strcmp(x->code, "test.io"), "failed --code test.io listed code '%s'", x->code);
        listed |= id_eq(&x->id, &f.id);
    }
    taskq_task_list_destroy(&l);
    H_ASSERT(listed, "taskq_failed --code test.io does not list the failed task");
    char fs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&f.id, fs);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "failed", "--code", "test.io", "--json");
    H_ASSERT(x == 0 && strstr(out, fs) && strstr(out, "attempts"),
             "taskq failed --json: exit %d, lacks the id / attempts: '%.400s'", x, out);

    /* fix the cause, re-run */
    H_ASSERT(mkdir(dir, 0755) == 0, "mkdir %s", dir);
    taskq_id_t nid;
    uint64_t made = 0;
    taskq_err_t rc = taskq_rerun(c, &f.id, 1, NULL, &nid, &made);
    H_ASSERT(rc == TASKQ_OK && made == 1 && !id_eq(&nid, &f.id),
             "rerun: %s made %llu '%s'", taskq_err_name(rc), (unsigned long long)made,
             taskq_client_last_error(c));
    taskq_task_t *n = h_wait_task(c, &nid, is_terminal, NULL, 20000, "the re-run");
    H_ASSERT(n->state == TASKQ_STATE_SUCCEEDED && id_eq(&n->rerun_of, &f.id) &&
                 !strcmp(n->queue, "dlq") && n->priority == 7 && n->attempts == 1,
             "re-run: %s rerun_of %s queue %s priority %d attempts %u",
             taskq_state_name(n->state), h_id_str(&n->rerun_of), n->queue, n->priority,
             n->attempts);
    taskq_task_destroy(&n);
    H_ASSERT(h_count_lines(path) == 1, "the re-run wrote %zu lines", h_count_lines(path));
    taskq_task_t *now = h_status(c, &f.id);
    H_ASSERT(now->state == old->state && now->attempts == old->attempts &&
                 now->finished_at == old->finished_at && now->started_at == old->started_at &&
                 !strcmp(now->code, old->code) && !strcmp(now->error, old->error) &&
                 now->failures == old->failures && id_eq(&now->rerun_by, &nid) &&
                 taskq_id_is_zero(&old->rerun_by),
             "the old row changed: %s/%s attempts %u/%u finished %lld/%lld code %s/%s "
             "rerun_by %s", taskq_state_name(now->state), taskq_state_name(old->state),
             now->attempts, old->attempts, (long long)now->finished_at,
             (long long)old->finished_at, now->code, old->code, h_id_str(&now->rerun_by));
    taskq_task_destroy(&now);
    taskq_task_destroy(&old);
    rc = taskq_rerun(c, &f.id, 1, NULL, NULL, &made);
    H_ASSERT(rc == TASKQ_EEXIST, "second re-run of the same task: %s, expected EEXIST",
             taskq_err_name(rc));
    rc = taskq_rerun(c, &nid, 1, NULL, NULL, &made);
    H_ASSERT(rc == TASKQ_ETERMINAL, "re-run of a succeeded task: %s, expected ETERMINAL",
             taskq_err_name(rc));

    /* CLI: rerun ID, rerun --all --code */
    uint8_t b[64];
    taskq_task_spec_t g = h_spec("test.fail_perm", b, h_args_str(b, sizeof b, "x.cli"));
    taskq_task_t *t = run_to_end(c, &g);
    taskq_task_destroy(&t);
    char gs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&g.id, gs);
    x = h_run_cli(out, OUTSZ, NULL, ep, "rerun", gs);
    taskq_id_t cid;
    H_ASSERT(x == 0 && h_parse_ids(out, &cid, 1) == 1 && !id_eq(&cid, &g.id),
             "taskq rerun ID: exit %d '%.200s'", x, out);
    t = h_wait_task(c, &cid, is_terminal, NULL, 20000, "CLI re-run");
    H_ASSERT(t->state == TASKQ_STATE_FAILED && id_eq(&t->rerun_of, &g.id),
             "CLI re-run of an always-failing task: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    taskq_task_spec_t h[3];
    uint8_t hb[64];
    for (int i = 0; i < 3; i++) {
        h[i] = h_spec("test.fail_perm", hb, h_args_str(hb, sizeof hb, "x.bulk"));
        t = run_to_end(c, &h[i]);
        taskq_task_destroy(&t);
    }
    /* --all prints the count; --json the ids too */
    x = h_run_cli(out, OUTSZ, NULL, ep, "rerun", "--all", "--code", "x.bulk", "--json");
    taskq_id_t ids[8];
    size_t nn = h_parse_ids(out, ids, 8);
    H_ASSERT(x == 0 && strstr(out, "\"count\":3"),
             "taskq rerun --all --code x.bulk --json: exit %d '%.300s'", x, out);
    H_EXPECT(nn == 3, "taskq rerun --all --json lists %zu new ids, expected 3 ('%.200s'; "
             "taskq_rerun with n == 0 returns no ids: new_ids gets up to n)", nn, out);
    for (int i = 0; i < 3; i++) {
        t = h_status(c, &h[i].id);
        H_ASSERT(t->state == TASKQ_STATE_FAILED && !taskq_id_is_zero(&t->rerun_by),
                 "bulk re-run: old task %d %s rerun_by %s", i, taskq_state_name(t->state),
                 h_id_str(&t->rerun_by));
        taskq_task_destroy(&t);
    }
    h_log("dead letters: listed with attempts; re-run succeeded, old row unchanged, linked; "
          "EEXIST / ETERMINAL; CLI rerun ID and --all --code");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL, "--test-clock", "--retention", "10", "--failed-ttl",
                                   "100");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    h_worker_t *w = h_worker_start(ep, 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    int64_t t0 = h_now_ms();
    ttls(b, &c);
    int64_t t1 = h_now_ms();
    purge_op(c, ep);
    rerun(c, ep);
    h_log("times: TTLs %lld ms, purge + rerun %lld ms", (long long)(t1 - t0),
          (long long)(h_now_ms() - t1));
    taskq_client_destroy(&c);
    h_check_expects();
    return 0;
}
