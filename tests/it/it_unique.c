/* it_unique: exact unique tasks (issue 7).
 *  1. 10 clients (threads, one handle each) x 100 concurrent submits of one
 *     unique key (5 as one batch of 100, 5 as 100 single submits, all
 *     released at once by a barrier), the holder held back in a paused
 *     queue: exactly 1 task created (stats total 1) and 999 DUPLICATE
 *     answers, each carrying its id; after it succeeds a new submit creates
 *     a new task. The CLI prints "duplicate of <id>" on stderr, the holder
 *     id on stdout, exit 0.
 *  2. --unique: the key is a hash of (name, canonical args, queue): the
 *     same args packed with other integer widths are a duplicate; other
 *     args or another queue are not.
 *  3. --unique-until start frees the key when the holder is dispatched;
 *     a revoke frees it at once.
 *  4. --unique-for 60 s (test clock): after the holder succeeded the key is
 *     still held until exactly submit + 60 s. */
#define _GNU_SOURCE
#include <msgpack.h>
#include <pthread.h>
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

static bool is_running(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING;
}

static bool id_eq(const taskq_id_t *a, const taskq_id_t *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static void submit(taskq_client_t *c, taskq_task_spec_t *s)
{
    taskq_err_t rc = taskq_submit(c, s);
    H_ASSERT(rc == TASKQ_OK, "submit %s key %s: %s '%s'", s->name,
             s->unique_key ? s->unique_key : (s->unique ? "(auto)" : "-"), taskq_err_name(rc),
             taskq_client_last_error(c));
}

/* a submit that must create a task */
static void expect_created(taskq_client_t *c, taskq_task_spec_t *s, const char *what)
{
    submit(c, s);
    H_ASSERT(!s->duplicate, "%s: answered DUPLICATE of %s, expected a new task", what,
             h_id_str(&s->holder_id));
    taskq_task_t *t = h_status(c, &s->id);
    H_ASSERT(t != NULL, "%s: the new task %s does not exist", what, h_id_str(&s->id));
    taskq_task_destroy(&t);
}

/* a submit that must be a duplicate of holder */
static void expect_dup(taskq_client_t *c, taskq_task_spec_t *s, const taskq_id_t *holder,
                       const char *what)
{
    submit(c, s);
    H_ASSERT(s->duplicate && id_eq(&s->holder_id, holder),
             "%s: duplicate=%d holder %s, expected DUPLICATE of %s", what, s->duplicate,
             h_id_str(&s->holder_id), h_id_str(holder));
    /* nothing was created under the id the client offered */
    if (!taskq_id_is_zero(&s->id) && !id_eq(&s->id, holder)) {
        taskq_task_t *t = NULL;
        taskq_err_t rc = taskq_status(c, &s->id, &t);
        H_ASSERT(rc == TASKQ_ENOTFOUND, "%s: a duplicate created task %s (%s)", what,
                 h_id_str(&s->id), taskq_err_name(rc));
        taskq_task_destroy(&t);
    }
}

/* ---- 1. 10 x 100 concurrent ------------------------------------------------------ */

#define NCL 10
#define PER 100

static const char *g_ep;
static pthread_barrier_t g_bar;

typedef struct {
    int k;
    taskq_task_spec_t s[PER];
    taskq_err_t codes[PER];
    taskq_err_t rc;
} cl_t;

static void *client_main(void *p)
{
    cl_t *a = p;
    static const uint8_t args[2] = {0x91, 0x06}; /* [6] */
    for (int i = 0; i < PER; i++) {
        a->s[i] = h_spec("test.square", args, sizeof args);
        a->s[i].unique_key = "report:2026-11-25";
        a->s[i].queue = "uq";
    }
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(g_ep, &err);
    pthread_barrier_wait(&g_bar);
    if (!c) {
        a->rc = err;
        return NULL;
    }
    taskq_client_set_timeout(c, 20000);
    if (a->k < NCL / 2) {
        a->rc = taskq_submit_batch(c, a->s, PER, a->codes);
    } else {
        a->rc = TASKQ_OK;
        for (int i = 0; i < PER && a->rc == TASKQ_OK; i++)
            a->rc = a->codes[i] = taskq_submit(c, &a->s[i]);
    }
    taskq_client_destroy(&c);
    return NULL;
}

static void concurrent_key(const char *ep, h_broker_t *b)
{
    g_ep = ep;
    taskq_client_t *c = h_client(ep, 15000);
    H_OK(taskq_queue_pause(c, "uq", 1));
    static cl_t cl[NCL];
    pthread_t th[NCL];
    H_ASSERT(pthread_barrier_init(&g_bar, NULL, NCL) == 0, "barrier");
    for (int k = 0; k < NCL; k++) {
        cl[k].k = k;
        H_ASSERT(pthread_create(&th[k], NULL, client_main, &cl[k]) == 0, "pthread_create");
    }
    for (int k = 0; k < NCL; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&g_bar);
    int created = 0, dups = 0;
    taskq_id_t holder = {{0}};
    for (int k = 0; k < NCL; k++) {
        H_ASSERT(cl[k].rc == TASKQ_OK, "client %d: %s", k, taskq_err_name(cl[k].rc));
        for (int i = 0; i < PER; i++) {
            H_ASSERT(cl[k].codes[i] == TASKQ_OK, "client %d submit %d: %s", k, i,
                     taskq_err_name(cl[k].codes[i]));
            if (!cl[k].s[i].duplicate) {
                created++;
                holder = cl[k].s[i].id;
            }
        }
    }
    H_ASSERT(created == 1, "%d of %d submits created a task, expected exactly 1", created,
             NCL * PER);
    for (int k = 0; k < NCL; k++)
        for (int i = 0; i < PER; i++)
            if (cl[k].s[i].duplicate) {
                dups++;
                H_ASSERT(id_eq(&cl[k].s[i].holder_id, &holder),
                         "client %d submit %d: DUPLICATE of %s, but the holder is %s", k, i,
                         h_id_str(&cl[k].s[i].holder_id), h_id_str(&holder));
            }
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    H_ASSERT(st.total == 1 && h_queue_total(c, "uq") == 1,
             "the store holds %llu tasks (queue uq %llu), expected 1",
             (unsigned long long)st.total, (unsigned long long)h_queue_total(c, "uq"));
    taskq_task_t *t = h_status(c, &holder);
    H_ASSERT(t && !strcmp(t->unique_key, "report:2026-11-25"), "holder's unique_key '%s'",
             t ? t->unique_key : "(no record)");
    taskq_task_destroy(&t);
    h_log("10 x 100 concurrent submits of one key: 1 task, %d DUPLICATE answers with its id",
          dups);

    /* the CLI, still held */
    char hs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&holder, hs);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[6]", "--queue", "uq",
                      "--unique-key", "report:2026-11-25");
    FILE *f = fopen(h_cli_last_log(), "r");
    char err[1024] = "";
    if (f) {
        size_t n = fread(err, 1, sizeof err - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    char want[128];
    snprintf(want, sizeof want, "duplicate of %s", hs);
    H_ASSERT(x == 0 && strstr(out, hs) && strstr(err, want),
             "CLI duplicate submit: exit %d stdout '%.200s' stderr '%.300s', expected exit 0, "
             "the holder id on stdout and '%s' on stderr", x, out, err, want);

    /* the holder runs; then the key is free */
    H_OK(taskq_queue_pause(c, "uq", 0));
    t = h_wait_task(c, &holder, is_terminal, NULL, 20000, "the key's holder");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "holder: %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    static const uint8_t args[2] = {0x91, 0x06};
    taskq_task_spec_t s = h_spec("test.square", args, sizeof args);
    s.unique_key = "report:2026-11-25";
    s.queue = "uq";
    expect_created(c, &s, "submit after the holder succeeded");
    H_ASSERT(!id_eq(&s.id, &holder), "the new task has the old id");
    t = h_wait_task(c, &s.id, is_terminal, NULL, 20000, "the second holder");
    taskq_task_destroy(&t);
    (void)b;
    taskq_client_destroy(&c);
}

/* ---- 2. --unique: canonical args --------------------------------------------------- */

static void auto_key(taskq_client_t *c)
{
    H_OK(taskq_queue_pause(c, "aq", 1));
    H_OK(taskq_queue_pause(c, "aq2", 1));
    /* [5, {"k": 300}] packed minimally, and with the widest integer encodings */
    static const uint8_t small[] = {0x92, 0x05, 0x81, 0xa1, 'k', 0xcd, 0x01, 0x2c};
    static const uint8_t wide[] = {0x92, 0xd3, 0, 0, 0, 0, 0, 0, 0, 0x05, 0x81, 0xa1, 'k',
                                   0xcf, 0, 0, 0, 0, 0, 0, 0x01, 0x2c};
    static const uint8_t other[] = {0x92, 0x06, 0x81, 0xa1, 'k', 0xcd, 0x01, 0x2c};
    taskq_task_spec_t a = h_spec("test.echo", small, sizeof small);
    a.unique = 1;
    a.queue = "aq";
    expect_created(c, &a, "--unique, first");
    taskq_task_t *t = h_status(c, &a.id);
    H_ASSERT(!strncmp(t->unique_key, "auto:", 5) && strlen(t->unique_key) == 5 + 32,
             "auto key '%s', expected auto: + 32 hex", t->unique_key);
    taskq_task_destroy(&t);
    taskq_task_spec_t b = h_spec("test.echo", wide, sizeof wide);
    b.unique = 1;
    b.queue = "aq";
    expect_dup(c, &b, &a.id, "--unique, same args with wide integers");
    taskq_task_spec_t d = h_spec("test.echo", other, sizeof other);
    d.unique = 1;
    d.queue = "aq";
    expect_created(c, &d, "--unique, other args");
    taskq_task_spec_t e = h_spec("test.echo", small, sizeof small);
    e.unique = 1;
    e.queue = "aq2";
    expect_created(c, &e, "--unique, same args, other queue");
    taskq_task_spec_t g = h_spec("test.concat", small, sizeof small);
    g.unique = 1;
    g.queue = "aq";
    expect_created(c, &g, "--unique, same args, other name");
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.queue = "aq";
    taskq_revoke_result_t r;
    H_OK(taskq_revoke(c, NULL, 0, &o, &r));
    o.queue = "aq2";
    H_OK(taskq_revoke(c, NULL, 0, &o, &r));
    h_log("--unique: canonical args (integer widths) collide; other args/queue/name do not");
}

/* ---- 3. until start; revoke frees ------------------------------------------------- */

static void until_start_and_revoke(taskq_client_t *c)
{
    H_OK(taskq_queue_pause(c, "sq", 1));
    uint8_t a[16];
    size_t al = h_args_int(a, sizeof a, 30);
    taskq_task_spec_t h1 = h_spec("test.sleep", a, al);
    h1.unique_key = "start-key";
    h1.unique_until = "start";
    h1.queue = "sq";
    expect_created(c, &h1, "until start: holder");
    taskq_task_spec_t d1 = h1;
    memset(&d1.id, 0, sizeof d1.id);
    expect_dup(c, &d1, &h1.id, "until start: while the holder waits");
    H_OK(taskq_queue_pause(c, "sq", 0));
    taskq_task_t *t = h_wait_task(c, &h1.id, is_running, NULL, 20000, "holder dispatched");
    taskq_task_destroy(&t);
    taskq_task_spec_t n1 = h1;
    memset(&n1.id, 0, sizeof n1.id);
    H_OK(taskq_queue_pause(c, "sq", 1));
    submit(c, &n1);
    H_EXPECT(!n1.duplicate, "--unique-until start: a submit after the holder was dispatched "
             "(running) answered DUPLICATE of %s: the key was not released at dispatch",
             h_id_str(&n1.holder_id));
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.terminate = 1;
    taskq_revoke_result_t r;
    taskq_id_t two[2] = {h1.id, n1.id};
    H_OK(taskq_revoke(c, two, 2, &o, &r));

    /* a revoke frees the key in its commit */
    taskq_task_spec_t r1 = h_spec("test.square", a, al);
    r1.unique_key = "revoke-key";
    r1.queue = "sq";
    expect_created(c, &r1, "revoke: holder");
    taskq_task_spec_t r2 = r1;
    memset(&r2.id, 0, sizeof r2.id);
    expect_dup(c, &r2, &r1.id, "revoke: duplicate before the revoke");
    H_OK(taskq_revoke(c, &r1.id, 1, NULL, &r));
    taskq_task_spec_t r3 = r1;
    memset(&r3.id, 0, sizeof r3.id);
    expect_created(c, &r3, "revoke: submit after the holder was revoked");
    H_OK(taskq_revoke(c, &r3.id, 1, NULL, &r));
    H_OK(taskq_queue_pause(c, "sq", 0));
    h_log("--unique-until start frees the key at dispatch; revoke frees it at once");
}

/* ---- 4. --unique-for, test clock ------------------------------------------------- */

static void unique_for(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/clock.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db, "--test-clock");
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_t *w = h_worker_start(ep, 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    uint8_t a[16];
    size_t al = h_args_int(a, sizeof a, 4);
    taskq_task_spec_t h1 = h_spec("test.square", a, al);
    h1.unique_key = "throttle";
    h1.unique_for_ms = 60000;
    expect_created(c, &h1, "--unique-for 60 s: holder");
    taskq_task_t *t = h_wait_task(c, &h1.id, is_terminal, NULL, 20000, "throttled holder");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "holder %s", taskq_state_name(t->state));
    taskq_task_destroy(&t);
    taskq_task_spec_t d = h1;
    memset(&d.id, 0, sizeof d.id);
    expect_dup(c, &d, &h1.id, "--unique-for: after the holder succeeded, same instant");
    h_clock(c, 59999, 0);
    d = h1;
    memset(&d.id, 0, sizeof d.id);
    expect_dup(c, &d, &h1.id, "--unique-for: 59.999 s after submit");
    h_clock(c, 1, 0);
    d = h1;
    memset(&d.id, 0, sizeof d.id);
    expect_created(c, &d, "--unique-for: 60 s after submit");
    t = h_wait_task(c, &d.id, is_terminal, NULL, 20000, "next throttled task");
    taskq_task_destroy(&t);
    /* the CLI's --unique-for */
    int x = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[9]", "--unique-key", "cli-t",
                      "--unique-for", "10");
    taskq_id_t first;
    H_ASSERT(x == 0 && h_parse_ids(out, &first, 1) == 1, "CLI --unique-for: exit %d", x);
    t = h_wait_task(c, &first, is_terminal, NULL, 20000, "CLI throttled task");
    taskq_task_destroy(&t);
    h_clock(c, 9000, 0);
    x = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[9]", "--unique-key", "cli-t",
                  "--unique-for", "10");
    taskq_id_t second;
    H_ASSERT(x == 0 && h_parse_ids(out, &second, 1) == 1 && id_eq(&first, &second),
             "CLI --unique-for 10, 9 s later: exit %d '%.200s', expected the holder %s", x, out,
             h_id_str(&first));
    h_clock(c, 1000, 0);
    x = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[9]", "--unique-key", "cli-t",
                  "--unique-for", "10");
    H_ASSERT(x == 0 && h_parse_ids(out, &second, 1) == 1 && !id_eq(&first, &second),
             "CLI --unique-for 10, 10 s later: exit %d '%.200s', expected a new task", x, out);
    taskq_client_destroy(&c);
    h_log("--unique-for 60 s: held until exactly submit + 60 s (test clock)");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(100);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    h_worker_t *w = h_worker_start(ep, 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    int64_t t0 = h_now_ms();
    concurrent_key(ep, b);
    int64_t t1 = h_now_ms();
    auto_key(c);
    until_start_and_revoke(c);
    int64_t t2 = h_now_ms();
    unique_for();
    h_log("times: concurrent %lld ms, auto/start/revoke %lld ms, unique-for %lld ms",
          (long long)(t1 - t0), (long long)(t2 - t1), (long long)(h_now_ms() - t2));
    taskq_client_destroy(&c);
    h_check_expects();
    return 0;
}
