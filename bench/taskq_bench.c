/*
 * taskq_bench.c - the taskq benchmark: drives a running broker (and the
 * workers someone else started) through libtaskq only (include/taskq.h) and
 * prints one JSON line per result on stdout. bench/run.sh starts the
 * processes and calls it; see docs/performance.md for the method.
 *
 *   taskq-bench w1 --broker EP [-N n] [--chunk k] [--label full|normal]
 *       throughput: N taskq.echo [i] tasks, every result checked ([i] back);
 *       rate = N / (first submission .. last result).
 *   w2 --broker EP [-N n] [--label L]   latency: submit + wait, n times in a row
 *   w3 --broker EP [-N n] [--primes P] [--slots S]
 *       CPU: N taskq.primes [P] tasks through taskq, then the same function
 *       called N times in this process; overhead = S * wall / N - direct / N.
 *   w4 --broker EP [-N n]   backlog: submits N tasks (no worker should run)
 *   drain --broker EP [-N n] [--seconds S]   how fast the broker's backlog
 *       of N tasks drains (polls STATS; stops after S seconds)
 *   ready --broker EP --slots K [--seconds S]   waits for K idle children
 *   w5 --broker EP [-N n] [--chunk k] [--queues Q] [--limits L] [--label L]
 *       W1 with the dispatch policy engaged: task i goes to queue w5q<i%Q+1>
 *       (the worker subscribes with -Q w5q1=5,w5q2=4,...: bench/run.sh), and
 *       L limits are set first, high enough never to bind (queue:w5qK,
 *       task:taskq.echo, then task:w5.unused.K), so the dispatch cost of
 *       weighted queues and limit checks is measured, not throttling.
 *       --queues 0 --limits 0 is the bare W1 path (the baseline).
 *
 * Exit: 0 ok, 1 a task failed or a call returned an error, 2 bad usage.
 * The bench reads the clock itself (CLOCK_MONOTONIC): it is not product
 * code and must not depend on the broker's internals.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "taskq.h"

typedef struct {
    const char *broker;
    const char *label;
    size_t n;
    size_t chunk;
    uint64_t primes;
    int slots;
    double seconds;
    int queues; /* w5: weighted queues (0 = none: the default queue) */
    int limits; /* w5: non-binding limits set before the run */
} opts_t;

#define W5_QUEUES_MAX 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void die(const char *what, taskq_err_t e)
{
    fprintf(stderr, "taskq-bench: %s: %s (%s)\n", what, taskq_err_name(e), taskq_strerror(e));
    exit(1);
}

/* msgpack [v] for 0 <= v < 2^32: fixarray(1) + the shortest uint. */
static size_t args_uint(uint8_t out[8], uint64_t v)
{
    out[0] = 0x91;
    if (v < 0x80) {
        out[1] = (uint8_t)v;
        return 2;
    }
    if (v < 0x100) {
        out[1] = 0xcc;
        out[2] = (uint8_t)v;
        return 3;
    }
    if (v < 0x10000) {
        out[1] = 0xcd;
        out[2] = (uint8_t)(v >> 8);
        out[3] = (uint8_t)v;
        return 4;
    }
    out[1] = 0xce;
    for (int i = 0; i < 4; i++)
        out[2 + i] = (uint8_t)(v >> (24 - 8 * i));
    return 6;
}

/* A msgpack unsigned integer result; false if it is not one. */
static bool result_uint(const uint8_t *p, size_t n, uint64_t *v)
{
    if (n == 1 && p[0] < 0x80) {
        *v = p[0];
        return true;
    }
    if (n < 2 || p[0] < 0xcc || p[0] > 0xcf || n != 1 + (1u << (p[0] - 0xcc)))
        return false;
    *v = 0;
    for (size_t i = 1; i < n; i++)
        *v = *v << 8 | p[i];
    return true;
}

static taskq_client_t *connect_or_die(const opts_t *o)
{
    taskq_err_t e;
    taskq_client_t *c = taskq_client_new(o->broker, &e);
    if (!c)
        die("taskq_client_new", e);
    taskq_client_set_timeout(c, 60000);
    /* STATS answers once the connection is up: the clock starts after it */
    taskq_stats_t st;
    if ((e = taskq_stats(c, &st)) != TASKQ_OK)
        die("taskq_stats", e);
    return c;
}

/* ---- W1 ------------------------------------------------------------------ */

/* The tasks of one run: specs (with their args bytes) and a checked flag. */
typedef struct {
    taskq_task_spec_t *specs;
    uint8_t (*args)[8];
    taskq_id_t *ids;
    taskq_err_t *codes;
    size_t n;
    size_t delivered;
    size_t bad;
} batch_t;

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(taskq_id_t));
}

/* id -> index of the task, sorted by id, for checking each result. */
typedef struct {
    taskq_id_t id;
    size_t idx;
} id_index_t;

typedef struct {
    batch_t *b;
    id_index_t *index; /* sorted by id */
    size_t nindex;
} w1_ctx_t;

static int w1_on_done(const taskq_task_t *t, void *arg)
{
    w1_ctx_t *ctx = arg;
    id_index_t key = {.id = t->id};
    id_index_t *hit = bsearch(&key, ctx->index, ctx->nindex, sizeof key, cmp_id);
    batch_t *b = ctx->b;
    b->delivered++;
    /* taskq.echo returns its args: the result must be our [i] exactly */
    if (!hit || t->state != TASKQ_STATE_SUCCEEDED || t->result_len != b->specs[hit->idx].args_len ||
        memcmp(t->result, b->args[hit->idx], t->result_len) != 0) {
        if (b->bad++ < 5)
            fprintf(stderr, "taskq-bench: task %zu: state %s, wrong or missing result (%s)\n",
                    hit ? hit->idx : (size_t)-1, taskq_state_name(t->state), t->error);
    }
    return 0;
}

static void batch_init(batch_t *b, size_t n, const char *name, uint64_t arg_fixed, bool fixed)
{
    memset(b, 0, sizeof *b);
    b->n = n;
    b->specs = calloc(n, sizeof *b->specs);
    b->args = calloc(n, sizeof *b->args);
    b->ids = calloc(n, sizeof *b->ids);
    b->codes = calloc(n, sizeof *b->codes);
    if (!b->specs || !b->args || !b->ids || !b->codes)
        die("calloc", TASKQ_ENOMEM);
    for (size_t i = 0; i < n; i++) {
        b->specs[i].name = name;
        b->specs[i].args = b->args[i];
        b->specs[i].args_len = args_uint(b->args[i], fixed ? arg_fixed : (uint64_t)i);
    }
}

static void batch_free(batch_t *b)
{
    free(b->specs);
    free(b->args);
    free(b->ids);
    free(b->codes);
}

/* Submits tasks [lo, hi) and records their ids. */
static void submit_range(taskq_client_t *c, batch_t *b, size_t lo, size_t hi)
{
    taskq_err_t e = taskq_submit_batch(c, b->specs + lo, hi - lo, b->codes + lo);
    if (e != TASKQ_OK)
        die("taskq_submit_batch", e);
    for (size_t i = lo; i < hi; i++)
        b->ids[i] = b->specs[i].id;
}

/* Waits for the results of tasks [lo, hi), checking each. */
static void wait_range(taskq_client_t *c, batch_t *b, size_t lo, size_t hi, w1_ctx_t *ctx)
{
    size_t k = hi - lo;
    for (size_t i = 0; i < k; i++)
        ctx->index[i] = (id_index_t){b->ids[lo + i], lo + i};
    qsort(ctx->index, k, sizeof *ctx->index, cmp_id);
    ctx->nindex = k;
    taskq_err_t e = taskq_wait_many(c, b->ids + lo, k, 600000, w1_on_done, ctx);
    if (e != TASKQ_OK)
        die("taskq_wait_many", e);
}

/* W5: o->limits limits that never bind: the dispatch loop checks them on
 * every task (queue:w5qK first, then task:taskq.echo, the task every W5
 * run dispatches, then keys of names never submitted). */
static void set_limits(taskq_client_t *c, const opts_t *o)
{
    for (int i = 0; i < o->limits; i++) {
        char key[64];
        if (i < o->queues)
            snprintf(key, sizeof key, "queue:w5q%d", i + 1);
        else if (i == o->queues)
            snprintf(key, sizeof key, "task:taskq.echo");
        else
            snprintf(key, sizeof key, "task:w5.unused.%d", i - o->queues);
        taskq_limit_t l;
        memset(&l, 0, sizeof l);
        l.key = key;
        l.rate = 1e6;           /* dispatches per second (the broker's maximum) */
        l.burst = 1000000;      /* never empties within a run */
        l.max_running = 100000; /* far above any worker's slots */
        taskq_err_t e = taskq_limit_set(c, &l);
        if (e != TASKQ_OK) {
            fprintf(stderr, "taskq-bench: limit set %s: %s\n", key, taskq_client_last_error(c));
            die("taskq_limit_set", e);
        }
    }
}

/* Pipelined: chunk i+1 is submitted before the results of chunk i are
 * awaited, so the worker always has a chunk queued while the client waits;
 * libtaskq itself pipelines each chunk (SUBMITs of 500, 8 in flight). */
static int run_w1(const opts_t *o, const char *workload)
{
    taskq_client_t *c = connect_or_die(o);
    batch_t b;
    batch_init(&b, o->n, "taskq.echo", 0, false);
    static char qnames[W5_QUEUES_MAX][16];
    for (int q = 0; q < o->queues; q++)
        snprintf(qnames[q], sizeof qnames[q], "w5q%d", q + 1);
    for (size_t i = 0; o->queues > 0 && i < o->n; i++)
        b.specs[i].queue = qnames[i % (size_t)o->queues];
    if (o->limits > 0)
        set_limits(c, o);
    size_t chunk = o->chunk ? o->chunk : o->n;
    w1_ctx_t ctx = {.b = &b, .index = calloc(chunk, sizeof(id_index_t))};
    if (!ctx.index)
        die("calloc", TASKQ_ENOMEM);
    double t0 = now_s();
    size_t hi0 = chunk < o->n ? chunk : o->n;
    submit_range(c, &b, 0, hi0);
    double t_first_ack = now_s();
    for (size_t lo = 0; lo < o->n; lo += chunk) {
        size_t hi = lo + chunk < o->n ? lo + chunk : o->n;
        if (hi < o->n)
            submit_range(c, &b, hi, hi + chunk < o->n ? hi + chunk : o->n);
        wait_range(c, &b, lo, hi, &ctx);
    }
    double secs = now_s() - t0;
    if (strcmp(workload, "w1") == 0)
        printf("{\"bench\":\"taskq\",\"workload\":\"w1\",\"durability\":\"%s\",\"tasks\":%zu,"
               "\"chunk\":%zu,\"seconds\":%.3f,\"rate\":%.1f,\"first_ack_ms\":%.2f,"
               "\"bad\":%zu}\n",
               o->label, o->n, chunk, secs, (double)o->n / secs, (t_first_ack - t0) * 1e3, b.bad);
    else
        printf("{\"bench\":\"taskq\",\"workload\":\"%s\",\"durability\":\"%s\",\"queues\":%d,"
               "\"limits\":%d,\"tasks\":%zu,\"chunk\":%zu,\"seconds\":%.3f,\"rate\":%.1f,"
               "\"first_ack_ms\":%.2f,\"bad\":%zu}\n",
               workload, o->label, o->queues, o->limits, o->n, chunk, secs, (double)o->n / secs,
               (t_first_ack - t0) * 1e3, b.bad);
    free(ctx.index);
    batch_free(&b);
    taskq_client_destroy(&c);
    return b.delivered == o->n && b.bad == 0 ? 0 : 1;
}

/* ---- W2 ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

static int run_w2(const opts_t *o)
{
    taskq_client_t *c = connect_or_die(o);
    double *lat = calloc(o->n, sizeof *lat);
    if (!lat)
        die("calloc", TASKQ_ENOMEM);
    size_t bad = 0;
    double t0 = now_s();
    for (size_t i = 0; i < o->n; i++) {
        uint8_t args[8];
        taskq_task_spec_t spec = {.name = "taskq.echo", .args = args};
        spec.args_len = args_uint(args, i);
        taskq_task_t *t = NULL;
        double s = now_s();
        taskq_err_t e = taskq_submit(c, &spec);
        if (e != TASKQ_OK)
            die("taskq_submit", e);
        if ((e = taskq_wait(c, &spec.id, 60000, &t)) != TASKQ_OK)
            die("taskq_wait", e);
        lat[i] = (now_s() - s) * 1e6;
        if (t->state != TASKQ_STATE_SUCCEEDED || t->result_len != spec.args_len ||
            memcmp(t->result, args, spec.args_len) != 0)
            bad++;
        taskq_task_destroy(&t);
    }
    double secs = now_s() - t0;
    qsort(lat, o->n, sizeof *lat, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < o->n; i++)
        sum += lat[i];
    printf("{\"bench\":\"taskq\",\"workload\":\"w2\",\"durability\":\"%s\",\"tasks\":%zu,"
           "\"seconds\":%.3f,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
           "\"max_us\":%.1f,\"bad\":%zu}\n",
           o->label, o->n, secs, sum / (double)o->n, pct(lat, o->n, 50), pct(lat, o->n, 99),
           pct(lat, o->n, 99.9), lat[o->n - 1], bad);
    free(lat);
    taskq_client_destroy(&c);
    return bad == 0 ? 0 : 1;
}

/* ---- W3 ------------------------------------------------------------------ */

/* The same trial division as worker/builtin.c's taskq.primes, minus its
 * progress reports (those are part of what running through taskq costs). */
static uint64_t count_primes(uint64_t n)
{
    uint64_t count = 0;
    for (uint64_t i = 2; i <= n && i != 0; i++) {
        bool prime = true;
        for (uint64_t d = 2; d <= i / d; d++)
            if (i % d == 0) {
                prime = false;
                break;
            }
        count += prime;
    }
    return count;
}

typedef struct {
    uint64_t want;
    size_t delivered, bad;
} w3_ctx_t;

static int w3_on_done(const taskq_task_t *t, void *arg)
{
    w3_ctx_t *ctx = arg;
    uint64_t got = 0;
    ctx->delivered++;
    if (t->state != TASKQ_STATE_SUCCEEDED || !result_uint(t->result, t->result_len, &got) ||
        got != ctx->want) {
        if (ctx->bad++ < 5)
            fprintf(stderr, "taskq-bench: primes task: state %s, result %" PRIu64 ", want %" PRIu64
                            " (%s)\n",
                    taskq_state_name(t->state), got, ctx->want, t->error);
    }
    return 0;
}

static int run_w3(const opts_t *o)
{
    /* direct first: it also gives the expected result */
    volatile uint64_t sink = 0;
    double d0 = now_s();
    for (size_t i = 0; i < o->n; i++)
        sink += count_primes(o->primes);
    double direct = now_s() - d0;
    uint64_t want = count_primes(o->primes);
    (void)sink;

    taskq_client_t *c = connect_or_die(o);
    batch_t b;
    batch_init(&b, o->n, "taskq.primes", o->primes, true);
    w3_ctx_t ctx = {.want = want};
    double t0 = now_s();
    submit_range(c, &b, 0, o->n);
    taskq_err_t e = taskq_wait_many(c, b.ids, o->n, 600000, w3_on_done, &ctx);
    if (e != TASKQ_OK)
        die("taskq_wait_many", e);
    double secs = now_s() - t0;
    double direct_us = direct / (double)o->n * 1e6;
    double per_task_us = secs * o->slots / (double)o->n * 1e6;
    printf("{\"bench\":\"taskq\",\"workload\":\"w3\",\"slots\":%d,\"primes_n\":%" PRIu64
           ",\"tasks\":%zu,\"seconds\":%.3f,\"rate\":%.2f,\"direct_seconds\":%.3f,"
           "\"direct_us_per_task\":%.1f,\"slot_us_per_task\":%.1f,\"overhead_us_per_task\":%.1f,"
           "\"bad\":%zu}\n",
           o->slots, o->primes, o->n, secs, (double)o->n / secs, direct, direct_us, per_task_us,
           per_task_us - direct_us, ctx.bad);
    batch_free(&b);
    taskq_client_destroy(&c);
    return ctx.delivered == o->n && ctx.bad == 0 ? 0 : 1;
}

/* ---- W4 ------------------------------------------------------------------ */

/* Submits in slices so that memory stays bounded for 1,000,000 tasks. */
static int run_w4(const opts_t *o)
{
    taskq_client_t *c = connect_or_die(o);
    size_t slice = 10000;
    batch_t b;
    batch_init(&b, slice, "taskq.echo", 0, false);
    double t0 = now_s();
    for (size_t lo = 0; lo < o->n; lo += slice) {
        size_t k = lo + slice < o->n ? slice : o->n - lo;
        for (size_t i = 0; i < k; i++) {
            memset(&b.specs[i].id, 0, sizeof b.specs[i].id); /* fresh ids */
            b.specs[i].args_len = args_uint(b.args[i], (uint64_t)(lo + i));
        }
        submit_range(c, &b, 0, k);
    }
    double secs = now_s() - t0;
    printf("{\"bench\":\"taskq\",\"workload\":\"w4_submit\",\"durability\":\"%s\",\"tasks\":%zu,"
           "\"seconds\":%.3f,\"rate\":%.1f}\n",
           o->label, o->n, secs, (double)o->n / secs);
    batch_free(&b);
    taskq_client_destroy(&c);
    return 0;
}

static int run_drain(const opts_t *o)
{
    taskq_client_t *c = connect_or_die(o);
    taskq_stats_t st;
    taskq_err_t e;
    if ((e = taskq_stats(c, &st)) != TASKQ_OK)
        die("taskq_stats", e);
    uint64_t done0 = st.succeeded + st.failed;
    double t0 = now_s(), t = t0;
    uint64_t done = done0;
    while (done < o->n && t - t0 < o->seconds) {
        sleep_ms(100);
        if ((e = taskq_stats(c, &st)) != TASKQ_OK)
            die("taskq_stats", e);
        done = st.succeeded + st.failed;
        t = now_s();
    }
    double secs = t - t0;
    printf("{\"bench\":\"taskq\",\"workload\":\"w4_drain\",\"durability\":\"%s\",\"backlog\":%zu,"
           "\"drained\":%" PRIu64 ",\"seconds\":%.3f,\"rate\":%.1f,\"failed\":%" PRIu64
           ",\"queued_left\":%" PRIu64 "}\n",
           o->label, o->n, done - done0, secs, secs > 0 ? (double)(done - done0) / secs : 0.0,
           st.failed, st.queued);
    taskq_client_destroy(&c);
    return st.failed == 0 ? 0 : 1;
}

/* ---- readiness ------------------------------------------------------------ */

/* Waits until the broker lists at least `slots` idle children (0: until it
 * answers at all), so that a timed run never includes worker start-up. */
static int run_ready(const opts_t *o)
{
    taskq_client_t *c = connect_or_die(o);
    double t0 = now_s();
    for (;;) {
        size_t idle = 0;
        taskq_workers_t *w = NULL;
        taskq_err_t e = taskq_workers(c, &w);
        if (e != TASKQ_OK)
            die("taskq_workers", e);
        for (size_t i = 0; i < taskq_workers_count(w); i++) {
            const taskq_node_info_t *n = taskq_workers_node(w, i);
            for (size_t k = 0; k < n->nchildren; k++)
                idle += !strcmp(n->children[k].state, "idle");
        }
        taskq_workers_destroy(&w);
        if (idle >= (size_t)o->slots)
            break;
        if (now_s() - t0 > o->seconds) {
            fprintf(stderr, "taskq-bench: only %zu of %d children idle after %.0f s\n", idle,
                    o->slots, o->seconds);
            taskq_client_destroy(&c);
            return 1;
        }
        sleep_ms(50);
    }
    taskq_client_destroy(&c);
    return 0;
}

/* ---- main ----------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: taskq-bench w1|w2|w3|w4|w5|drain|ready [--broker EP] [-N n] [--chunk k]\n"
            "                   [--label L] [--primes P] [--slots S] [--seconds S]\n"
            "                   [--queues Q] [--limits L]   (w5)\n"
            "  prints one JSON line per result on stdout (docs/performance.md)\n");
    exit(2);
}

static unsigned long long num(const char *s)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-')
        usage();
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    const char *cmd = argv[1];
    opts_t o = {.broker = NULL, .label = "full", .n = 0, .chunk = 20000, .primes = 100000,
                .slots = 1, .seconds = 60};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(a, "--broker"))
            o.broker = v;
        else if (!strcmp(a, "-N"))
            o.n = (size_t)num(v);
        else if (!strcmp(a, "--chunk"))
            o.chunk = (size_t)num(v);
        else if (!strcmp(a, "--label"))
            o.label = v;
        else if (!strcmp(a, "--primes"))
            o.primes = num(v);
        else if (!strcmp(a, "--slots"))
            o.slots = (int)num(v);
        else if (!strcmp(a, "--seconds"))
            o.seconds = (double)num(v);
        else if (!strcmp(a, "--queues"))
            o.queues = (int)num(v);
        else if (!strcmp(a, "--limits"))
            o.limits = (int)num(v);
        else
            usage();
        i++;
    }
    if (strchr(o.label, '"') || strchr(o.label, '\\') || (o.slots < 1 && strcmp(cmd, "ready")) ||
        o.queues > W5_QUEUES_MAX || o.limits > 1000 || ((o.queues || o.limits) && strcmp(cmd, "w5")))
        usage();
    if (!strcmp(cmd, "w1"))
        return o.n = o.n ? o.n : 50000, run_w1(&o, "w1");
    if (!strcmp(cmd, "w5"))
        return o.n = o.n ? o.n : 50000, run_w1(&o, "w5");
    if (!strcmp(cmd, "w2"))
        return o.n = o.n ? o.n : 2000, run_w2(&o);
    if (!strcmp(cmd, "w3"))
        return o.n = o.n ? o.n : 200, run_w3(&o);
    if (!strcmp(cmd, "w4"))
        return o.n = o.n ? o.n : 1000000, run_w4(&o);
    if (!strcmp(cmd, "ready"))
        return run_ready(&o);
    if (!strcmp(cmd, "drain"))
        return o.n = o.n ? o.n : 1000000, run_drain(&o);
    usage();
    return 2;
}
