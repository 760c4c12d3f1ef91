/* it_queues: queues, weights, subscriptions, pause, routing.
 *  1. Two always-full queues a (weight 3) and b (weight 1) on one `-n 1`
 *     worker: of the first 400 dispatches a gets 300 +- 2 and b 100 +- 2,
 *     and neither waits long (smooth weighted round-robin).
 *  2. A paused queue is not dispatched, also after a kill -9 of the broker
 *     (the pause is a committed operator decision); resume (CLI) runs it.
 *  3. `--strict`: the second queue gets nothing while the first has work.
 *  4. A `-Q qa` worker never receives a qb task; `slots` per queue.
 *  5. Routing rules (--routes FILE, first match wins, explicit queue wins)
 *     and --strict-queues (ENOQUEUE for an unknown queue).
 * Dispatch order is read from test.append's files: one line per run. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];

typedef struct {
    taskq_client_t *c;
    const char *queue;
    int state;
    uint64_t want;
} qcount_arg_t;

static bool qcount_is(void *p)
{
    qcount_arg_t *a = p;
    taskq_queue_info_t q;
    return h_queue_info(a->c, a->queue, &q) && q.counts[a->state] == a->want;
}

static void wait_qcount(taskq_client_t *c, const char *queue, int state, uint64_t want,
                        int64_t timeout_ms)
{
    qcount_arg_t a = {c, queue, state, want};
    char what[160];
    snprintf(what, sizeof what, "queue %s: %llu tasks %s", queue, (unsigned long long)want,
             taskq_state_name(state));
    h_wait_for(qcount_is, &a, timeout_ms, what);
}

/* Submits n test.append [path, tag] tasks to queue (batch). */
static void submit_n(taskq_client_t *c, const char *queue, const char *path, const char *tag,
                     int n)
{
    taskq_task_spec_t *s = calloc((size_t)n, sizeof *s);
    uint8_t(*args)[512] = calloc((size_t)n, sizeof *args);
    taskq_err_t *codes = calloc((size_t)n, sizeof *codes);
    H_ASSERT(s && args && codes, "out of memory");
    for (int i = 0; i < n; i++) {
        s[i].name = "test.append";
        s[i].args = args[i];
        s[i].args_len = h_args_fmt(args[i], sizeof args[i], "ss", path, tag);
        s[i].queue = queue;
    }
    H_OK(taskq_submit_batch(c, s, (size_t)n, codes));
    for (int i = 0; i < n; i++) {
        H_ASSERT(codes[i] == TASKQ_OK, "task %d to %s: %s", i, queue, taskq_err_name(codes[i]));
        H_ASSERT(strcmp(s[i].queue_out, queue) == 0, "ack of a task to %s says queue '%s'",
                 queue, s[i].queue_out);
    }
    free(s);
    free(args);
    free(codes);
}

typedef struct {
    const char *path;
    size_t want;
} lines_arg_t;

static bool lines_at_least(void *p)
{
    lines_arg_t *a = p;
    return h_count_lines(a->path) >= a->want;
}

static void pause_queue(taskq_client_t *c, const char *q, int paused)
{
    H_OK(taskq_queue_pause(c, q, paused));
    taskq_queue_info_t info;
    H_ASSERT(h_queue_info(c, q, &info), "queue %s not listed", q);
    H_ASSERT(info.paused == paused, "queue %s: paused=%d after pause(%d)", q, info.paused, paused);
}

/* ---- 1 + 2: weights, pause ------------------------------------------------ */

static void weights_and_pause(h_broker_t *b, taskq_client_t **cp)
{
    taskq_client_t *c = *cp;
    const char *ep = h_broker_endpoint(b);
    char path[512];
    snprintf(path, sizeof path, "%s/wrr.txt", h_tmpdir());
    submit_n(c, "a", path, "a", 400);
    submit_n(c, "b", path, "b", 400);
    wait_qcount(c, "a", TASKQ_STATE_QUEUED, 400, 10000);
    wait_qcount(c, "b", TASKQ_STATE_QUEUED, 400, 10000);

    h_worker_t *w = h_worker_start(ep, 1, "-Q", "a=3,b=1");
    lines_arg_t la = {path, 400};
    h_wait_for(lines_at_least, &la, 60000, "400 dispatches of a/b");
    pause_queue(c, "a", 1);
    pause_queue(c, "b", 1);

    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n >= 400, "%zu lines", l.n);
    int na = 0, nb = 0, run = 0, max_run_a = 0, max_run_b = 0;
    char prev = 0;
    for (size_t k = 0; k < 400; k++) {
        char q = l.line[k][0];
        H_ASSERT((q == 'a' || q == 'b') && l.line[k][1] == '\0', "line '%s'", l.line[k]);
        na += q == 'a';
        nb += q == 'b';
        run = q == prev ? run + 1 : 1;
        prev = q;
        if (q == 'a' && run > max_run_a)
            max_run_a = run;
        if (q == 'b' && run > max_run_b)
            max_run_b = run;
    }
    h_log("first 400 dispatches: a=%d b=%d, longest run a=%d b=%d", na, nb, max_run_a, max_run_b);
    H_ASSERT(na >= 298 && na <= 302 && nb >= 98 && nb <= 102,
             "weights 3:1 gave a=%d b=%d of the first 400 dispatches, expected 300+-2 / 100+-2",
             na, nb);
    /* smooth: 3:1 is a a b a | a a b a ...; no queue waits long */
    H_ASSERT(max_run_a <= 6 && max_run_b <= 2,
             "weighted round-robin is not smooth: %d a's or %d b's in a row", max_run_a,
             max_run_b);
    h_lines_free(&l);

    /* 2. both paused: once the in-flight task is done nothing runs */
    wait_qcount(c, "a", TASKQ_STATE_RUNNING, 0, 10000);
    wait_qcount(c, "b", TASKQ_STATE_RUNNING, 0, 10000);
    size_t l1 = h_count_lines(path);
    taskq_queue_info_t qa, qb;
    H_ASSERT(h_queue_info(c, "a", &qa) && h_queue_info(c, "b", &qb), "queues a/b listed");
    H_ASSERT(qa.counts[TASKQ_STATE_QUEUED] + qb.counts[TASKQ_STATE_QUEUED] + l1 == 800,
             "queued a=%llu b=%llu + %zu run != 800",
             (unsigned long long)qa.counts[TASKQ_STATE_QUEUED],
             (unsigned long long)qb.counts[TASKQ_STATE_QUEUED], l1);
    uint64_t a_left = qa.counts[TASKQ_STATE_QUEUED], b_left = qb.counts[TASKQ_STATE_QUEUED];
    H_ASSERT(a_left > 0 && b_left > 0, "both queues must still hold work (a=%llu b=%llu)",
             (unsigned long long)a_left, (unsigned long long)b_left);
    H_ASSERT(qa.slots == 1 && qb.slots == 1, "slots a=%u b=%u, expected 1 each (one -n 1 "
             "worker subscribed)", qa.slots, qb.slots);

    /* the pause survives kill -9 */
    taskq_client_destroy(cp);
    h_broker_kill(b, SIGKILL);
    h_broker_restart(b);
    *cp = c = h_client(ep, 10000);
    H_ASSERT(h_queue_info(c, "a", &qa) && qa.paused == 1, "queue a not paused after a restart");
    H_ASSERT(h_queue_info(c, "b", &qb) && qb.paused == 1, "queue b not paused after a restart");
    h_worker_wait_ready(c, h_worker_node_id(w), 1, 20000);

    /* resume b only: all of b runs, none of a (which has weight 3) */
    int rc = h_run_cli(out, OUTSZ, NULL, ep, "queue", "resume", "b");
    H_ASSERT(rc == 0, "taskq queue resume b: exit %d", rc);
    wait_qcount(c, "b", TASKQ_STATE_QUEUED, 0, 30000);
    wait_qcount(c, "b", TASKQ_STATE_RUNNING, 0, 10000);
    l = h_read_lines(path);
    H_ASSERT(l.n == l1 + b_left, "%zu lines after b drained, expected %zu + %llu", l.n, l1,
             (unsigned long long)b_left);
    for (size_t k = l1; k < l.n; k++)
        H_ASSERT(strcmp(l.line[k], "b") == 0, "dispatch %zu is '%s' while a is paused", k,
                 l.line[k]);
    h_lines_free(&l);
    H_ASSERT(h_queue_info(c, "a", &qa) && qa.counts[TASKQ_STATE_QUEUED] == a_left,
             "paused a: %llu queued, expected %llu",
             (unsigned long long)qa.counts[TASKQ_STATE_QUEUED], (unsigned long long)a_left);

    /* `taskq queues --json` shows a paused with its backlog */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "queues", "--json");
    H_ASSERT(rc == 0, "taskq queues --json: exit %d", rc);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    H_ASSERT(j, "queues --json is not JSON (%s): '%.300s'", je.text, out);
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "queues");
    H_ASSERT(arr && json_is_array(arr), "queues --json: no array of queues: '%.300s'", out);
    bool found = false;
    size_t i;
    json_t *q;
    json_array_foreach(arr, i, q) {
        json_t *name = json_object_get(q, "name");
        if (!json_is_string(name) || strcmp(json_string_value(name), "a") != 0)
            continue;
        found = true;
        H_ASSERT(json_is_true(json_object_get(q, "paused")), "queues --json: a not paused: %.300s",
                 out);
    }
    H_ASSERT(found, "queues --json does not list queue a: '%.300s'", out);
    json_decref(j);

    rc = h_run_cli(out, OUTSZ, NULL, ep, "queue", "resume", "a");
    H_ASSERT(rc == 0, "taskq queue resume a: exit %d", rc);
    wait_qcount(c, "a", TASKQ_STATE_QUEUED, 0, 30000);
    wait_qcount(c, "a", TASKQ_STATE_RUNNING, 0, 10000);
    H_ASSERT(h_count_lines(path) == 800, "%zu lines, expected 800 (each task once)",
             h_count_lines(path));
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- 3: --strict ------------------------------------------------------------ */

static void strict_order(taskq_client_t *c, const char *ep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/strict.txt", h_tmpdir());
    /* sb first: FIFO across queues would start with it */
    submit_n(c, "sb", path, "sb", 40);
    submit_n(c, "sa", path, "sa", 40);
    h_worker_t *w = h_worker_start(ep, 1, "-Q", "sa,sb", "--strict");
    lines_arg_t la = {path, 80};
    h_wait_for(lines_at_least, &la, 30000, "80 dispatches of sa/sb");
    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == 80, "%zu lines, expected 80", l.n);
    for (size_t k = 0; k < 80; k++)
        H_ASSERT(strcmp(l.line[k], k < 40 ? "sa" : "sb") == 0,
                 "--strict -Q sa,sb: dispatch %zu is '%s' (sb must wait until sa is empty)", k,
                 l.line[k]);
    h_lines_free(&l);
    h_log("--strict: 40 sa then 40 sb");
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- 4: subscriptions ----------------------------------------------------- */

static void subscriptions(taskq_client_t *c, const char *ep)
{
    char path[512];
    snprintf(path, sizeof path, "%s/sub.txt", h_tmpdir());
    h_worker_t *w = h_worker_start(ep, 2, "-Q", "qa");
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    for (int i = 0; i < 30; i++) {
        submit_n(c, "qb", path, "qb", 1);
        submit_n(c, "qa", path, "qa", 1);
    }
    wait_qcount(c, "qa", TASKQ_STATE_SUCCEEDED, 30, 30000);
    taskq_queue_info_t qa, qb;
    H_ASSERT(h_queue_info(c, "qa", &qa) && h_queue_info(c, "qb", &qb), "qa/qb listed");
    H_ASSERT(qb.counts[TASKQ_STATE_QUEUED] == 30 && qb.counts[TASKQ_STATE_RUNNING] == 0 &&
                 qb.counts[TASKQ_STATE_SUCCEEDED] == 0,
             "qb: queued=%llu running=%llu succeeded=%llu with only a -Q qa worker",
             (unsigned long long)qb.counts[TASKQ_STATE_QUEUED],
             (unsigned long long)qb.counts[TASKQ_STATE_RUNNING],
             (unsigned long long)qb.counts[TASKQ_STATE_SUCCEEDED]);
    H_ASSERT(qa.slots == 2 && qb.slots == 0, "slots qa=%u qb=%u, expected 2 and 0", qa.slots,
             qb.slots);
    H_ASSERT(qb.oldest_queued_ms > 0 && qa.oldest_queued_ms == 0,
             "oldest waiting age: qb %lld ms (30 waiting), qa %lld ms (none waiting)",
             (long long)qb.oldest_queued_ms, (long long)qa.oldest_queued_ms);
    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == 30, "%zu lines, expected the 30 qa runs", l.n);
    for (size_t k = 0; k < l.n; k++)
        H_ASSERT(strcmp(l.line[k], "qa") == 0, "a -Q qa worker ran '%s'", l.line[k]);
    h_lines_free(&l);

    /* qb's tasks are runnable: a qb worker takes them */
    h_worker_t *w2 = h_worker_start(ep, 1, "-Q", "qb");
    wait_qcount(c, "qb", TASKQ_STATE_SUCCEEDED, 30, 30000);
    H_ASSERT(h_count_lines(path) == 60, "%zu lines, expected 60", h_count_lines(path));
    h_log("-Q qa ran 30 qa tasks and no qb task; a -Q qb worker ran the 30 qb tasks");
    h_worker_signal(w, SIGTERM);
    h_worker_signal(w2, SIGTERM);
    h_worker_wait_exit(w, 15000);
    h_worker_wait_exit(w2, 15000);
}

/* ---- 5: routing, strict queues -------------------------------------------- */

static taskq_task_spec_t spec_named(const char *name, const char *queue)
{
    static uint8_t args[16];
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.args = args;
    s.args_len = h_args_int(args, sizeof args, 3);
    s.queue = queue;
    return s;
}

static void routing(void)
{
    char routes[512], db[512];
    snprintf(routes, sizeof routes, "%s/routes.txt", h_tmpdir());
    FILE *f = fopen(routes, "w");
    H_ASSERT(f, "create %s", routes);
    fputs("# it_queues routing rules: PATTERN QUEUE, first match wins\n"
          "test.sq*     math\n"
          "\n"
          "test.square  shadowed\n"
          "test.echo    echoes\n",
          f);
    fclose(f);
    snprintf(db, sizeof db, "%s/routes.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db, "--routes", routes);
    taskq_client_t *c = h_client(h_broker_endpoint(b), 10000);
    struct {
        const char *name, *queue, *want;
    } cases[] = {
        {"test.square", NULL, "math"},
        {"test.echo", NULL, "echoes"},
        {"test.append", NULL, "default"},
        {"test.square", "explicit", "explicit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        taskq_task_spec_t s = spec_named(cases[i].name, cases[i].queue);
        H_OK(taskq_submit(c, &s));
        H_ASSERT(strcmp(s.queue_out, cases[i].want) == 0, "%s (queue %s): routed to '%s', "
                 "expected %s", cases[i].name, cases[i].queue ? cases[i].queue : "none",
                 s.queue_out, cases[i].want);
        taskq_task_t *t = h_status(c, &s.id);
        H_ASSERT(t && strcmp(t->queue, cases[i].want) == 0, "%s: record queue '%s'",
                 cases[i].name, t ? t->queue : "(not found)");
        taskq_task_destroy(&t);
    }
    /* the CLI's --json ack names the queue */
    int rc = h_run_cli(out, OUTSZ, NULL, h_broker_endpoint(b), "submit", "test.square", "[4]",
                       "--json");
    H_ASSERT(rc == 0, "taskq submit --json: exit %d", rc);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    H_ASSERT(j && json_is_object(j), "submit --json: not a JSON object: '%.300s'", out);
    json_t *q = json_object_get(j, "queue");
    H_ASSERT(json_is_string(q) && strcmp(json_string_value(q), "math") == 0,
             "submit --json: queue is not \"math\": '%.300s'", out);
    json_decref(j);
    h_log("routing: test.square -> math, test.echo -> echoes, test.append -> default, "
          "explicit queue kept");
    taskq_client_destroy(&c);

    snprintf(db, sizeof db, "%s/strict.db", h_tmpdir());
    b = h_broker_start(db, "--strict-queues");
    c = h_client(h_broker_endpoint(b), 10000);
    taskq_task_spec_t s = spec_named("test.square", "nosuch");
    rc = taskq_submit(c, &s);
    H_ASSERT(rc == TASKQ_ENOQUEUE, "--strict-queues, submit to an unknown queue: %s, expected "
             "ENOQUEUE", taskq_err_name(rc));
    H_ASSERT(h_status(c, &s.id) == NULL, "a refused task exists");
    s = spec_named("test.square", NULL);
    H_OK(taskq_submit(c, &s));
    H_ASSERT(strcmp(s.queue_out, "default") == 0, "queue '%s'", s.queue_out);
    H_OK(taskq_queue_set_max_pending(c, "made", 0)); /* creates it */
    s = spec_named("test.square", "made");
    H_OK(taskq_submit(c, &s));
    h_log("--strict-queues: unknown queue refused (ENOQUEUE), created queue accepted");
    taskq_client_destroy(&c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(170);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);

    weights_and_pause(b, &c);
    strict_order(c, ep);
    subscriptions(c, ep);
    routing();

    taskq_client_destroy(&c);
    return 0;
}
