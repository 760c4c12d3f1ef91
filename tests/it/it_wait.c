/* it_wait: waiting as completed, all, any (issue 7).
 *  1. Commit order: 50 tasks already terminal + 200 test.sleep (0..50 ms)
 *     held in a paused queue. taskq_wait_all over all 250: the 50 come
 *     first (any order); once they are delivered the WAIT is registered for
 *     sure, and a second thread (its own handle) resumes the queue; the 200
 *     then arrive exactly in the broker's commit order (history `terminal`
 *     lines), each once, and that order is not the submission order.
 *  2. wait_any: with one already-terminal id it returns that one at once;
 *     over 3 running sleeps (0.6, 0.2, 0.4 s) it returns the 0.2 s one, the
 *     first in commit order; the callback runs exactly once.
 *  3. CLI: `taskq wait --all ID... --json`, `wait --any`, `wait --group
 *     GID`, `wait --all ... --timeout 1` on a held task (exit 3); `taskq map
 *     test.sum ITEMS --chunk 1 --wait` prints the results in item order,
 *     --chunk 10 one sum per chunk in order; `map --wait --timeout 1` with
 *     the queue paused exits 3; taskq_map with a --then callback.
 *  4. Measured (a fresh broker, no history; 3,000 under ASan+UBSan):
 *     wait_any over 10,000 held ids + 1 terminal (time to return), wait_all
 *     over the same 10,001 ids:
 *     time to the first delivery (registration), the broker's RSS before
 *     and while the 10,000 waiters are registered, and the time to deliver
 *     all once the queue runs. Printed as `metric` lines. */
#define _GNU_SOURCE
#include <msgpack.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hevents.h"
#include "harness.h"

#define OUTSZ 262144
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

/* ---- a thread that resumes a queue when told ------------------------------------ */

typedef struct {
    const char *ep, *queue;
    int fd[2];
    taskq_err_t rc;
    int64_t resumed_at;
    pthread_t th;
} resumer_t;

static void *resumer_main(void *p)
{
    resumer_t *r = p;
    char ch;
    ssize_t n;
    do {
        n = read(r->fd[0], &ch, 1);
    } while (n < 0);
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(r->ep, &err);
    if (!c) {
        r->rc = err;
        return NULL;
    }
    taskq_client_set_timeout(c, 10000);
    r->resumed_at = h_now_ms();
    r->rc = taskq_queue_pause(c, r->queue, 0);
    taskq_client_destroy(&c);
    return NULL;
}

static void resumer_start(resumer_t *r, const char *ep, const char *queue)
{
    memset(r, 0, sizeof *r);
    r->ep = ep;
    r->queue = queue;
    H_ASSERT(pipe(r->fd) == 0, "pipe");
    H_ASSERT(pthread_create(&r->th, NULL, resumer_main, r) == 0, "pthread_create");
}

static void resumer_kick(resumer_t *r)
{
    H_ASSERT(write(r->fd[1], "x", 1) == 1, "pipe write");
}

static void resumer_join(resumer_t *r)
{
    pthread_join(r->th, NULL);
    close(r->fd[0]);
    close(r->fd[1]);
    H_ASSERT(r->rc == TASKQ_OK, "resume queue %s: %s", r->queue, taskq_err_name(r->rc));
}

/* ---- 1. commit order -------------------------------------------------------------- */

typedef struct {
    taskq_id_t *got;
    size_t n, cap, kick_after;
    resumer_t *res;
    int64_t first_at, kicked_at;
    long rss_pid;
    long rss_at_kick;
} collect_t;

static int collect(const taskq_task_t *t, void *arg)
{
    collect_t *c = arg;
    H_ASSERT(taskq_state_is_terminal(t->state), "wait delivered %s in state %s",
             h_id_str(&t->id), taskq_state_name(t->state));
    H_ASSERT(c->n < c->cap, "wait delivered more than %zu tasks", c->cap);
    if (c->n == 0)
        c->first_at = h_now_ms();
    c->got[c->n++] = t->id;
    if (c->res && c->n == c->kick_after) {
        if (c->rss_pid > 0)
            c->rss_at_kick = h_rss_kb((pid_t)c->rss_pid);
        c->kicked_at = h_now_ms();
        resumer_kick(c->res);
    }
    return 0;
}

static long index_in(const taskq_id_t *ids, size_t n, const taskq_id_t *id)
{
    for (size_t i = 0; i < n; i++)
        if (id_eq(&ids[i], id))
            return (long)i;
    return -1;
}

static void commit_order(taskq_client_t *c, const char *ep)
{
    enum { K = 50, N = 200 };
    taskq_task_spec_t s[K + N];
    uint8_t a[K + N][16];
    taskq_err_t codes[K + N];
    taskq_id_t ids[K + N];
    unsigned seed = h_seed();
    for (int i = 0; i < K; i++)
        s[i] = h_spec("test.square", a[i], h_args_int(a[i], sizeof a[i], i));
    H_OK(taskq_submit_batch(c, s, K, codes));
    H_OK(taskq_queue_pause(c, "wq", 1));
    for (int i = K; i < K + N; i++) {
        s[i] = h_spec("test.sleep", a[i],
                    h_args_fmt(a[i], sizeof a[i], "f", (rand_r(&seed) % 51) / 1000.0));
        s[i].queue = "wq";
    }
    H_OK(taskq_submit_batch(c, s + K, N, codes));
    for (int i = 0; i < K + N; i++)
        ids[i] = s[i].id;
    for (int i = 0; i < K; i++) {
        taskq_task_t *t = h_wait_task(c, &ids[i], is_terminal, NULL, 20000, "pre-terminal task");
        taskq_task_destroy(&t);
    }
    resumer_t res;
    resumer_start(&res, ep, "wq");
    taskq_id_t got[K + N];
    collect_t col = {got, 0, K + N, K, &res, 0, 0, 0, 0};
    taskq_err_t rc = taskq_wait_all(c, ids, K + N, 60000, collect, &col);
    resumer_join(&res);
    H_ASSERT(rc == TASKQ_OK && col.n == K + N, "taskq_wait_all: %s, %zu of %d delivered",
             taskq_err_name(rc), col.n, K + N);
    for (size_t i = 0; i < col.n; i++) {
        long j = index_in(ids, K + N, &got[i]);
        H_ASSERT(j >= 0, "delivered an id not asked for");
        for (size_t k = 0; k < i; k++)
            H_ASSERT(!id_eq(&got[k], &got[i]), "id %s delivered twice", h_id_str(&got[i]));
        if (i < K)
            H_ASSERT(j < K, "delivery %zu was a held task before all 50 terminal ones", i);
    }
    /* the broker's commit order of the 200 */
    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h, "history");
    taskq_id_t order[N];
    size_t no = 0;
    for (size_t e = 0; e < h->n; e++) {
        const hev_t *ev = &h->ev[e];
        if (strcmp(ev->role, "broker") || strcmp(ev->ev, "terminal") || ev->nf < 1)
            continue;
        taskq_id_t id;
        if (taskq_id_parse(ev->f[0], &id) != TASKQ_OK)
            continue;
        long j = index_in(ids + K, N, &id);
        if (j >= 0) {
            H_ASSERT(no < N, "more than one terminal line for a task");
            order[no++] = id;
        }
    }
    hevents_destroy(&h);
    H_ASSERT(no == N, "history has %zu terminal lines for the %d held tasks", no, N);
    size_t differs = 0;
    for (size_t i = 0; i < N; i++) {
        H_ASSERT(id_eq(&got[K + i], &order[i]),
                 "delivery %zu is %s (submitted #%ld) but the broker committed %s (submitted "
                 "#%ld) at that place: not commit order", K + i, h_id_str(&got[K + i]),
                 index_in(ids, K + N, &got[K + i]) - K, h_id_str(&order[i]),
                 index_in(ids, K + N, &order[i]) - K);
        differs += !id_eq(&order[i], &ids[K + i]);
    }
    H_ASSERT(differs > 0, "commit order equals submission order: the check has no teeth");
    h_log("wait_all: %d terminal first, then %d in commit order (%zu places differ from "
          "submission order)", K, N, differs);
}

/* ---- 2. wait_any ------------------------------------------------------------------ */

typedef struct {
    int calls;
    taskq_id_t id;
} first_t;

static int take_first(const taskq_task_t *t, void *arg)
{
    first_t *f = arg;
    f->calls++;
    f->id = t->id;
    return 1;
}

static void wait_any(taskq_client_t *c)
{
    H_OK(taskq_queue_pause(c, "held", 1));
    uint8_t a[16], b[16];
    taskq_task_spec_t held = h_spec("test.square", a, h_args_int(a, sizeof a, 2));
    held.queue = "held";
    H_OK(taskq_submit(c, &held));
    taskq_task_spec_t done = h_spec("test.square", b, h_args_int(b, sizeof b, 3));
    H_OK(taskq_submit(c, &done));
    taskq_task_t *t = h_wait_task(c, &done.id, is_terminal, NULL, 20000, "done task");
    taskq_task_destroy(&t);
    taskq_id_t two[2] = {held.id, done.id};
    first_t f = {0, {{0}}};
    int64_t t0 = h_now_ms();
    taskq_err_t rc = taskq_wait_any(c, two, 2, 10000, take_first, &f);
    int64_t ms = h_now_ms() - t0;
    H_ASSERT(rc == TASKQ_OK && f.calls == 1 && id_eq(&f.id, &done.id),
             "wait_any [held, done]: %s calls=%d id=%s", taskq_err_name(rc), f.calls,
             h_id_str(&f.id));
    H_ASSERT(ms < 2000, "wait_any with a terminal id took %lld ms", (long long)ms);

    /* three running sleeps: the shortest commits first */
    double secs[3] = {0.6, 0.2, 0.4};
    uint8_t sa[3][16];
    taskq_task_spec_t s[3];
    taskq_err_t codes[3];
    taskq_id_t ids[3];
    for (int i = 0; i < 3; i++)
        s[i] = h_spec("test.sleep", sa[i], h_args_fmt(sa[i], sizeof sa[i], "f", secs[i]));
    H_OK(taskq_submit_batch(c, s, 3, codes));
    for (int i = 0; i < 3; i++)
        ids[i] = s[i].id;
    memset(&f, 0, sizeof f);
    rc = taskq_wait_any(c, ids, 3, 20000, take_first, &f);
    H_ASSERT(rc == TASKQ_OK && f.calls == 1, "wait_any over 3 sleeps: %s calls=%d",
             taskq_err_name(rc), f.calls);
    hevents_t *h = hevents_load(h_history_dir());
    char first_commit[HEV_FIELD_MAX] = "";
    for (size_t e = 0; h && e < h->n && !first_commit[0]; e++) {
        const hev_t *ev = &h->ev[e];
        if (!strcmp(ev->role, "broker") && !strcmp(ev->ev, "terminal"))
            for (int i = 0; i < 3; i++)
                if (!strcmp(ev->f[0], h_id_str(&ids[i])))
                    snprintf(first_commit, sizeof first_commit, "%s", ev->f[0]);
    }
    hevents_destroy(&h);
    H_ASSERT(!strcmp(first_commit, h_id_str(&f.id)) && id_eq(&f.id, &ids[1]),
             "wait_any returned %s; first committed %s; the 0.2 s task is %s", h_id_str(&f.id),
             first_commit, h_id_str(&ids[1]));
    for (int i = 0; i < 3; i++) {
        t = h_wait_task(c, &ids[i], is_terminal, NULL, 20000, "sleep");
        taskq_task_destroy(&t);
    }
    h_log("wait_any: terminal id returned in %lld ms; over 3 sleeps the first committed",
          (long long)ms);
    taskq_revoke_result_t r;
    H_OK(taskq_revoke(c, &held.id, 1, NULL, &r));
}

/* ---- 3. CLI wait and map ------------------------------------------------------------ */

static char *json_items(int n)
{
    char *s = malloc((size_t)n * 8 + 8);
    H_ASSERT(s, "out of memory");
    size_t l = 0;
    s[l++] = '[';
    for (int i = 0; i < n; i++)
        l += (size_t)sprintf(s + l, "%s%d", i ? "," : "", i);
    s[l++] = ']';
    s[l] = '\0';
    return s;
}

static void cli_wait_map(taskq_client_t *c, const char *ep)
{
    uint8_t a[3][16];
    taskq_task_spec_t s[3];
    taskq_err_t codes[3];
    for (int i = 0; i < 3; i++)
        s[i] = h_spec("test.square", a[i], h_args_int(a[i], sizeof a[i], 10 + i));
    H_OK(taskq_submit_batch(c, s, 3, codes));
    char i0[TASKQ_ID_STRLEN + 1], i1[TASKQ_ID_STRLEN + 1], i2[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&s[0].id, i0);
    taskq_id_format(&s[1].id, i1);
    taskq_id_format(&s[2].id, i2);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--all", i0, i1, i2, "--json",
                      "--timeout", "20");
    H_ASSERT(x == 0 && strstr(out, i0) && strstr(out, i1) && strstr(out, i2),
             "taskq wait --all --json: exit %d '%.500s'", x, out);
    x = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--any", i0, i1, "--timeout", "20");
    H_ASSERT(x == 0 && (strstr(out, i0) || strstr(out, i1)), "taskq wait --any: exit %d '%.300s'",
             x, out);

    /* a held task: --timeout gives the timeout exit code */
    H_OK(taskq_queue_pause(c, "held2", 1));
    taskq_task_spec_t held = h_spec("test.square", a[0], h_args_int(a[0], sizeof a[0], 1));
    held.queue = "held2";
    H_OK(taskq_submit(c, &held));
    char hs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&held.id, hs);
    int64_t ms = 0;
    x = h_run_cli(out, OUTSZ, &ms, ep, "wait", "--all", i0, hs, "--timeout", "1");
    H_ASSERT(x == 3 && ms < 10000, "taskq wait --all (one held) --timeout 1: exit %d after %lld "
             "ms, expected 3 (timeout)", x, (long long)ms);

    /* map --wait: results in item order */
    enum { NI = 120 };
    char *items = json_items(NI);
    x = h_run_cli(out, OUTSZ, NULL, ep, "map", "test.sum", items, "--chunk", "1", "--wait",
                  "--timeout", "30");
    H_ASSERT(x == 0, "taskq map --chunk 1 --wait: exit %d", x);
    {
        char *save = NULL, *line = strtok_r(out, "\n", &save);
        for (int i = 0; i < NI; i++) {
            H_ASSERT(line, "taskq map --wait printed %d lines, expected %d", i, NI);
            H_ASSERT(atoi(line) == i && strspn(line, "0123456789") == strlen(line),
                     "taskq map --wait line %d is '%s', expected %d (item order)", i, line, i);
            line = strtok_r(NULL, "\n", &save);
        }
        H_ASSERT(line == NULL, "taskq map --wait printed more than %d lines", NI);
    }
    x = h_run_cli(out, OUTSZ, NULL, ep, "map", "test.sum", items, "--chunk", "10", "--wait",
                  "--timeout", "30");
    H_ASSERT(x == 0, "taskq map --chunk 10 --wait: exit %d", x);
    {
        char *save = NULL, *line = strtok_r(out, "\n", &save);
        for (int k = 0; k < NI / 10; k++) {
            long want = 0;
            for (int i = 10 * k; i < 10 * k + 10; i++)
                want += i;
            H_ASSERT(line && atol(line) == want, "taskq map --chunk 10 --wait line %d: '%s', "
                     "expected the chunk's sum %ld", k, line ? line : "(none)", want);
            line = strtok_r(NULL, "\n", &save);
        }
        H_ASSERT(line == NULL, "taskq map --chunk 10 printed more than %d lines", NI / 10);
    }
    /* not done in time */
    H_OK(taskq_queue_pause(c, "default", 1));
    x = h_run_cli(out, OUTSZ, &ms, ep, "map", "test.sum", "[1,2,3]", "--wait", "--timeout", "1");
    H_ASSERT(x == 3, "taskq map --wait --timeout 1 with the queue paused: exit %d, expected 3", x);
    H_OK(taskq_queue_pause(c, "default", 0));
    free(items);

    /* taskq_map with a callback */
    char buf[1024];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 100);
    for (int i = 0; i < 100; i++)
        msgpack_pack_int(&pk, i);
    H_ASSERT(sb.size < sizeof buf, "items");
    memcpy(buf, sb.data, sb.size);
    size_t blen = sb.size;
    msgpack_sbuffer_destroy(&sb);
    taskq_task_spec_t then = h_spec("test.sum", NULL, 0);
    taskq_id_t gid, *mids = NULL;
    size_t nm = 0;
    H_OK(taskq_map(c, "test.sum", buf, blen, 10, &then, &gid, &mids, &nm));
    H_ASSERT(nm == 10, "taskq_map of 100 items, chunk 10: %zu members", nm);
    taskq_task_t *t = h_wait_task(c, &then.id, is_terminal, NULL, 20000, "map callback");
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == 4950,
             "map --then test.sum: %s %lld, expected 4950", taskq_state_name(t->state),
             (long long)v);
    taskq_task_destroy(&t);
    for (size_t i = 0; i < nm; i++) {
        t = h_wait_task(c, &mids[i], is_terminal, NULL, 20000, "map member");
        int64_t want = 0;
        for (size_t k = 10 * i; k < 10 * i + 10; k++)
            want += (int64_t)k;
        H_ASSERT(h_result_int(t->result, t->result_len, &v) && v == want,
                 "map member %zu: %lld, expected %lld (item order)", i, (long long)v,
                 (long long)want);
        taskq_task_destroy(&t);
    }
    free(mids);
    char gs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&gid, gs);
    x = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--group", gs, "--timeout", "20");
    H_ASSERT(x == 0, "taskq wait --group: exit %d '%.300s'", x, out);
    taskq_revoke_result_t r;
    H_OK(taskq_revoke(c, &held.id, 1, NULL, &r));
    h_log("CLI wait --all/--any/--group/--timeout, map --wait in item order, taskq_map --then");
}

/* ---- 4. measured: 10,000 waiters ---------------------------------------------------- */

static void bench_10k(void)
{
    /* 10,000 (3,000 under ASan+UBSan: draining 10,000 takes ~18 s there) */
    const int NB = h_sanitized() ? 3000 : 10000;
    char db[512];
    snprintf(db, sizeof db, "%s/bench.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 30000);
    h_worker_t *w = h_worker_start(ep, 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    H_OK(taskq_queue_pause(c, "bq", 1));
    taskq_task_spec_t *s = calloc((size_t)NB + 1, sizeof *s);
    uint8_t (*a)[16] = calloc((size_t)NB + 1, sizeof *a);
    taskq_err_t *codes = calloc((size_t)NB + 1, sizeof *codes);
    taskq_id_t *ids = calloc((size_t)NB + 1, sizeof *ids);
    taskq_id_t *got = calloc((size_t)NB + 1, sizeof *got);
    H_ASSERT(s && a && codes && ids && got, "out of memory");
    for (int i = 0; i <= NB; i++) {
        s[i] = h_spec("test.square", a[i], h_args_int(a[i], sizeof a[i], i));
        s[i].queue = i < NB ? "bq" : NULL;
    }
    H_OK(taskq_submit_batch(c, s, (size_t)NB + 1, codes));
    /* the done one first: in the first WAIT the client sends */
    ids[0] = s[NB].id;
    for (int i = 0; i < NB; i++)
        ids[i + 1] = s[i].id;
    taskq_task_t *t = h_wait_task(c, &ids[0], is_terminal, NULL, 20000, "the one done task");
    taskq_task_destroy(&t);

    /* wait_any over 10,000 held + 1 done: the done one, at once */
    first_t f = {0, {{0}}};
    int64_t t0 = h_now_ms();
    taskq_err_t rc = taskq_wait_any(c, ids, (size_t)NB + 1, 20000, take_first, &f);
    int64_t any_ms = h_now_ms() - t0;
    H_ASSERT(rc == TASKQ_OK && f.calls == 1 && id_eq(&f.id, &ids[0]),
             "wait_any over %d: %s calls=%d", NB + 1, taskq_err_name(rc), f.calls);

    /* wait_all: the done one first (the WAIT is registered), then resume */
    long rss0 = h_rss_kb(h_broker_pid(b));
    resumer_t res;
    resumer_start(&res, ep, "bq");
    collect_t col = {got, 0, (size_t)NB + 1, 1, &res, 0, 0, (long)h_broker_pid(b), 0};
    t0 = h_now_ms();
    rc = taskq_wait_all(c, ids, (size_t)NB + 1, 90000, collect, &col);
    int64_t all_ms = h_now_ms() - t0;
    resumer_join(&res);
    H_ASSERT(rc == TASKQ_OK && col.n == (size_t)NB + 1, "wait_all over %d: %s, %zu delivered", NB + 1,
             taskq_err_name(rc), col.n);
    H_ASSERT(id_eq(&got[0], &ids[0]), "wait_all: the terminal task was not delivered first");
    long rss1 = h_rss_kb(h_broker_pid(b));
    int64_t first_ms = col.first_at - t0, drain_ms = h_now_ms() - res.resumed_at;
    h_log("%d waiters: wait_any %lld ms; wait_all first delivery %lld ms, all %lld ms "
          "(%lld ms after the resume); broker RSS %ld kB before, %ld kB with the waiters, %ld kB "
          "after", NB, (long long)any_ms, (long long)first_ms, (long long)all_ms,
          (long long)drain_ms, rss0, col.rss_at_kick, rss1);
    printf("metric wait_bench_tasks %d\nmetric wait_any_ms %lld\n"
           "metric wait_all_first_delivery_ms %lld\nmetric wait_all_total_ms %lld\n"
           "metric wait_all_after_resume_ms %lld\nmetric wait_broker_rss_before_kb %ld\n"
           "metric wait_broker_rss_waiting_kb %ld\nmetric wait_broker_rss_delta_kb %ld\n",
           NB, (long long)any_ms, (long long)first_ms, (long long)all_ms, (long long)drain_ms,
           rss0, col.rss_at_kick, col.rss_at_kick - rss0);
    free(s);
    free(a);
    free(codes);
    free(ids);
    free(got);
    taskq_client_destroy(&c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    h_history_enable();
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    h_worker_t *w = h_worker_start(ep, 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    int64_t t0 = h_now_ms();
    commit_order(c, ep);
    wait_any(c);
    int64_t t1 = h_now_ms();
    cli_wait_map(c, ep);
    int64_t t2 = h_now_ms();
    taskq_client_destroy(&c);
    /* the measurement without history writes */
    unsetenv("TASKQ_HISTORY");
    bench_10k();
    h_log("times: order/any %lld ms, CLI %lld ms, 10k bench %lld ms", (long long)(t1 - t0),
          (long long)(t2 - t1), (long long)(h_now_ms() - t2));
    (void)is_running;
    h_check_expects();
    return 0;
}
