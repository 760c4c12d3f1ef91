/*
 * gearman_bench.c - the Gearman side of bench/compare: the W1 and W2
 * shapes of bench/taskq_bench.c with libgearman against gearmand.
 *
 *   gearman-bench w1|w2 --port P [-N n] [--workers K] [--chunk C]
 *
 * K worker processes (forked before any connection; default 2, for parity
 * with `taskq-worker -n 2`) register the function "echo", the no-op task
 * (its result is its payload: one integer in decimal, like taskq.echo).
 * The client waits until gearmand reports K workers able to run "echo"
 * (admin "status" command), then submits N foreground jobs and checks every
 * result is its own index.
 * w1: C jobs in flight at a time (gearman_client_add_task C times, then
 * gearman_client_run_tasks, which sends them all and collects every
 * WORK_COMPLETE), N/C rounds; rate from the first submit to the last result.
 * w2: one gearman_client_do (submit and wait for the result), N times in a
 * row; p50/p99/p99.9 in microseconds.
 * gearmand runs with its in-memory queue only (bench/compare/setup.sh):
 * Gearman's jobs are not durable, taskq's are; the JSON line says so.
 * One JSON line on stdout, like taskq-bench. Exit 0 ok, 1 error, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libgearman/gearman.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "peer_bench.h"

#define FUNC "echo"
#define NOTE "gearmand in memory (no persistent queue): jobs not durable"

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "gearman-bench[%d]: %s%s%s\n", (int)getpid(), what, detail ? ": " : "",
            detail ? detail : "");
    exit(1);
}

/* The no-op task: a malloc'd copy of the payload, which libgearman sends
 * back as WORK_COMPLETE and frees. */
static void *echo_fn(gearman_job_st *job, void *context, size_t *result_size,
                     gearman_return_t *ret_ptr)
{
    (void)context;
    size_t n = gearman_job_workload_size(job);
    char *out = malloc(n ? n : 1);
    if (!out) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    memcpy(out, gearman_job_workload(job), n);
    *result_size = n;
    *ret_ptr = GEARMAN_SUCCESS;
    return out;
}

static void worker_main(int port)
{
    gearman_worker_st *w = gearman_worker_create(NULL);
    if (!w)
        die("gearman_worker_create", NULL);
    if (gearman_worker_add_server(w, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS)
        die("gearman_worker_add_server", gearman_worker_error(w));
    if (gearman_worker_add_function(w, FUNC, 0, echo_fn, NULL) != GEARMAN_SUCCESS)
        die("gearman_worker_add_function", gearman_worker_error(w));
    for (;;) {
        gearman_return_t rc = gearman_worker_work(w);
        if (rc != GEARMAN_SUCCESS)
            die("gearman_worker_work", gearman_worker_error(w));
    }
}

/* Available workers for FUNC, from gearmand's admin "status" command (a
 * text protocol on the same port: "FUNC\tqueued\trunning\tavailable" lines,
 * then "."). */
static int available_workers(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("connect", strerror(errno));
    if (write(fd, "status\n", 7) != 7)
        die("write", strerror(errno));
    char buf[8192];
    size_t len = 0;
    for (;;) {
        if (len >= 2 && (len == 2 ? !memcmp(buf, ".\n", 2) : !memcmp(buf + len - 3, "\n.\n", 3)))
            break;
        if (len == sizeof buf - 1)
            die("status reply too long", NULL);
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            die("status reply", k ? strerror(errno) : "closed");
        len += (size_t)k;
    }
    close(fd);
    buf[len] = 0;
    int avail = 0;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        unsigned q, r, av;
        char name[64];
        if (sscanf(line, "%63[^\t]\t%u\t%u\t%u", name, &q, &r, &av) == 4 && !strcmp(name, FUNC))
            avail = (int)av;
        line = next;
    }
    return avail;
}

static void wait_workers(int port, int k)
{
    double deadline = pb_now_s() + 30;
    while (available_workers(port) < k) {
        if (pb_now_s() > deadline)
            die("workers did not register with gearmand in 30 s", NULL);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Parses a result: a decimal index < n, else (size_t)-1. */
static size_t parse_result(const void *data, size_t size, size_t n)
{
    char tmp[32], *end;
    if (!data || size == 0 || size >= sizeof tmp)
        return (size_t)-1;
    memcpy(tmp, data, size);
    tmp[size] = 0;
    unsigned long long v = strtoull(tmp, &end, 10);
    return (*end || v >= n) ? (size_t)-1 : (size_t)v;
}

/* W1 state, for the complete callback (a task does not give its client). */
typedef struct {
    size_t n, done, bad;
    bool *seen;
} w1_state_t;
static w1_state_t *w1_st;

static gearman_return_t on_complete(gearman_task_st *task)
{
    w1_state_t *st = w1_st;
    size_t want = (size_t)(uintptr_t)gearman_task_context(task);
    size_t v = parse_result(gearman_task_data(task), gearman_task_data_size(task), st->n);
    if (v != want || st->seen[v])
        st->bad++;
    else
        st->seen[v] = true;
    st->done++;
    return GEARMAN_SUCCESS;
}

static gearman_client_st *client_open(int port)
{
    gearman_client_st *c = gearman_client_create(NULL);
    if (!c)
        die("gearman_client_create", NULL);
    if (gearman_client_add_server(c, "127.0.0.1", (in_port_t)port) != GEARMAN_SUCCESS)
        die("gearman_client_add_server", gearman_client_error(c));
    gearman_client_set_timeout(c, 60000);
    return c;
}

static int run_w1(int port, int workers, size_t n, size_t chunk)
{
    gearman_client_st *c = client_open(port);
    w1_state_t st = {.n = n, .seen = calloc(n, 1)};
    char(*payload)[24] = malloc(chunk * sizeof *payload);
    if (!st.seen || !payload)
        die("out of memory", NULL);
    w1_st = &st;
    gearman_client_set_complete_fn(c, on_complete);
    double t0 = pb_now_s();
    for (size_t lo = 0; lo < n; lo += chunk) {
        size_t hi = lo + chunk < n ? lo + chunk : n;
        for (size_t i = lo; i < hi; i++) {
            int len = snprintf(payload[i - lo], sizeof payload[i - lo], "%zu", i);
            gearman_return_t rc;
            /* NULL unique: gearmand does not coalesce the jobs */
            if (!gearman_client_add_task(c, NULL, (void *)(uintptr_t)i, FUNC, NULL, payload[i - lo],
                                         (size_t)len, &rc))
                die("gearman_client_add_task", gearman_client_error(c));
        }
        gearman_return_t rc = gearman_client_run_tasks(c);
        if (rc != GEARMAN_SUCCESS)
            die("gearman_client_run_tasks", gearman_client_error(c));
        /* without this the client keeps every finished task */
        gearman_client_task_free_all(c);
    }
    double secs = pb_now_s() - t0;
    if (st.done != n)
        st.bad += n - st.done;
    printf("{\"bench\":\"gearman\",\"workload\":\"w1\",\"workers\":%d,\"tasks\":%zu,"
           "\"chunk\":%zu,\"seconds\":%.3f,\"rate\":%.1f,\"bad\":%zu,\"note\":\"%s\"}\n",
           workers, n, chunk, secs, (double)n / secs, st.bad, NOTE);
    free(payload);
    free(st.seen);
    gearman_client_free(c);
    return st.bad ? 1 : 0;
}

static int run_w2(int port, int workers, size_t n)
{
    gearman_client_st *c = client_open(port);
    double *lat = calloc(n, sizeof *lat), sum = 0;
    if (!lat)
        die("out of memory", NULL);
    size_t bad = 0;
    double t0 = pb_now_s();
    for (size_t i = 0; i < n; i++) {
        char payload[24];
        int len = snprintf(payload, sizeof payload, "%zu", i);
        size_t rsize = 0;
        gearman_return_t rc;
        double s = pb_now_s();
        void *r = gearman_client_do(c, FUNC, NULL, payload, (size_t)len, &rsize, &rc);
        lat[i] = (pb_now_s() - s) * 1e6;
        if (rc != GEARMAN_SUCCESS)
            die("gearman_client_do", gearman_client_error(c));
        if (parse_result(r, rsize, n) != i)
            bad++;
        free(r); /* gearman_client_do's result is the caller's */
        sum += lat[i];
    }
    double secs = pb_now_s() - t0;
    qsort(lat, n, sizeof *lat, pb_cmp_double);
    printf("{\"bench\":\"gearman\",\"workload\":\"w2\",\"workers\":%d,\"tasks\":%zu,"
           "\"seconds\":%.3f,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"p999_us\":%.1f,\"max_us\":%.1f,\"bad\":%zu,\"note\":\"%s\"}\n",
           workers, n, secs, sum / (double)n, pb_pct(lat, n, 50), pb_pct(lat, n, 99),
           pb_pct(lat, n, 99.9), lat[n - 1], bad, NOTE);
    free(lat);
    gearman_client_free(c);
    return bad ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: gearman-bench w1|w2 --port P [-N n] [--workers K] [--chunk C]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    pb_opts_t o;
    if (!pb_parse(argc, argv, true, &o))
        usage();
    bool w1 = o.w1;
    int port = o.port, workers = o.workers;
    size_t n = o.n, chunk = o.chunk;
    pid_t pids[64];
    for (int i = 0; i < workers; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            die("fork", strerror(errno));
        if (pids[i] == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            worker_main(port);
            _exit(0);
        }
    }
    wait_workers(port, workers);
    int rc = w1 ? run_w1(port, workers, n, chunk) : run_w2(port, workers, n);
    fflush(stdout);
    for (int i = 0; i < workers; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    return rc;
}
