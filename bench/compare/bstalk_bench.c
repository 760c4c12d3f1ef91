/*
 * bstalk_bench.c - the beanstalkd side of bench/compare: the W1 and W2
 * shapes of bench/taskq_bench.c over the beanstalkd text protocol.
 *
 *   bstalk-bench w1|w2 --port P [-N n] [--workers K]
 *
 * K worker processes (forked before any connection; default 2, for parity
 * with `taskq-worker -n 2`) reserve from tube "jobs", put the job's body
 * back into tube "results" (the no-op task: echo), then delete the job.
 * beanstalkd has no result store, so results come back through that second
 * tube. The producer (a forked process in w1) puts N jobs, pipelined 64
 * commands at a time; the collector (this process) reserves and deletes N
 * results and checks each body is a distinct index < N.
 * w1: rate from the first put to the last result. w2: one put + its result,
 * N times in a row; p50/p99/p99.9 in microseconds.
 * One JSON line on stdout, like taskq-bench. Exit 0 ok, 1 error, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* A connection with a read buffer: beanstalkd replies are lines, and
 * RESERVED is followed by <bytes> of body and CRLF. */
typedef struct {
    int fd;
    char buf[65536];
    size_t len, off;
} conn_t;

static void fail(const char *what)
{
    fprintf(stderr, "bstalk-bench[%d]: %s%s%s\n", (int)getpid(), what, errno ? ": " : "",
            errno ? strerror(errno) : "");
    exit(1);
}

static void conn_open(conn_t *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        fail("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail("connect");
}

static void conn_write(conn_t *c, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(c->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            fail("write");
        p += k;
        n -= (size_t)k;
    }
}

static void conn_fill(conn_t *c)
{
    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof c->buf)
        fail("reply too long");
    ssize_t k;
    do
        k = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
    while (k < 0 && errno == EINTR);
    if (k <= 0) {
        if (k == 0)
            errno = 0;
        fail(k == 0 ? "beanstalkd closed the connection" : "read");
    }
    c->len += (size_t)k;
}

/* Reads one reply line (without CRLF) into line. */
static void conn_line(conn_t *c, char *line, size_t cap)
{
    for (;;) {
        char *s = c->buf + c->off;
        char *e = memmem(s, c->len - c->off, "\r\n", 2);
        if (e) {
            size_t n = (size_t)(e - s);
            if (n >= cap)
                fail("reply line too long");
            memcpy(line, s, n);
            line[n] = 0;
            c->off += n + 2;
            return;
        }
        conn_fill(c);
    }
}

/* Reads `n` body bytes and the CRLF after them into body (cap > n). */
static void conn_body(conn_t *c, char *body, size_t n, size_t cap)
{
    if (n + 1 > cap)
        fail("body too large");
    while (c->len - c->off < n + 2)
        conn_fill(c);
    memcpy(body, c->buf + c->off, n);
    body[n] = 0;
    c->off += n + 2;
}

static void expect(conn_t *c, const char *prefix)
{
    char line[256];
    conn_line(c, line, sizeof line);
    if (strncmp(line, prefix, strlen(prefix)) != 0) {
        errno = 0;
        fprintf(stderr, "bstalk-bench: expected %s, got '%s'\n", prefix, line);
        exit(1);
    }
}

/* Reads a RESERVED reply: job id and body. */
static unsigned long long reserved(conn_t *c, char *body, size_t cap, size_t *len)
{
    char line[256];
    unsigned long long id, bytes;
    conn_line(c, line, sizeof line);
    if (sscanf(line, "RESERVED %llu %llu", &id, &bytes) != 2) {
        errno = 0;
        fprintf(stderr, "bstalk-bench: expected RESERVED, got '%s'\n", line);
        exit(1);
    }
    conn_body(c, body, (size_t)bytes, cap);
    *len = (size_t)bytes;
    return id;
}

static void cmd(conn_t *c, const char *command, const char *reply)
{
    conn_write(c, command, strlen(command));
    expect(c, reply);
}

/* The worker: reserve, put the body into "results", delete; forever. The
 * put and delete are written with the next reserve in one write. */
static void worker_main(int port)
{
    conn_t c;
    conn_open(&c, port);
    cmd(&c, "use results\r\n", "USING");
    cmd(&c, "watch jobs\r\n", "WATCHING");
    cmd(&c, "ignore default\r\n", "WATCHING");
    conn_write(&c, "reserve\r\n", 9);
    for (;;) {
        char body[256], out[512];
        size_t len;
        unsigned long long id = reserved(&c, body, sizeof body, &len);
        int k = snprintf(out, sizeof out, "put 0 0 60 %zu\r\n%s\r\ndelete %llu\r\nreserve\r\n", len,
                         body, id);
        conn_write(&c, out, (size_t)k);
        expect(&c, "INSERTED");
        expect(&c, "DELETED");
    }
}

static pid_t spawn(void (*fn)(int, size_t), int port, size_t n)
{
    pid_t pid = fork();
    if (pid < 0)
        fail("fork");
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn(port, n);
        _exit(0);
    }
    return pid;
}

static void worker_entry(int port, size_t n)
{
    (void)n;
    worker_main(port);
}

/* The producer: N puts to "jobs", 64 commands per write, then their replies. */
static void producer_entry(int port, size_t n)
{
    conn_t c;
    conn_open(&c, port);
    cmd(&c, "use jobs\r\n", "USING");
    char out[64 * 64];
    for (size_t lo = 0; lo < n; lo += 64) {
        size_t hi = lo + 64 < n ? lo + 64 : n, used = 0;
        for (size_t i = lo; i < hi; i++) {
            char body[32];
            int bl = snprintf(body, sizeof body, "%zu", i);
            used += (size_t)snprintf(out + used, sizeof out - used, "put 0 0 60 %d\r\n%s\r\n", bl,
                                     body);
        }
        conn_write(&c, out, used);
        for (size_t i = lo; i < hi; i++)
            expect(&c, "INSERTED");
    }
}

/* Collects one result: reserve from "results", check, delete. */
static size_t collect(conn_t *c, size_t n)
{
    char body[256], out[64], *end;
    size_t len;
    conn_write(c, "reserve\r\n", 9);
    unsigned long long id = reserved(c, body, sizeof body, &len);
    errno = 0;
    unsigned long long v = strtoull(body, &end, 10);
    if (len == 0 || *end || v >= n) {
        fprintf(stderr, "bstalk-bench: bad result body '%s'\n", body);
        exit(1);
    }
    int k = snprintf(out, sizeof out, "delete %llu\r\n", id);
    conn_write(c, out, (size_t)k);
    expect(c, "DELETED");
    return (size_t)v;
}

static void usage(void)
{
    fprintf(stderr, "usage: bstalk-bench w1|w2 --port P [-N n] [--workers K]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    pb_opts_t o;
    if (!pb_parse(argc, argv, false, &o))
        usage();
    bool w1 = o.w1;
    int port = o.port, workers = o.workers;
    size_t n = o.n;
    pid_t pids[65];
    int np = 0;
    for (int i = 0; i < workers; i++)
        pids[np++] = spawn(worker_entry, port, 0);
    conn_t col;
    conn_open(&col, port);
    cmd(&col, "watch results\r\n", "WATCHING");
    cmd(&col, "ignore default\r\n", "WATCHING");
    int rc = 0;
    if (w1) {
        bool *seen = calloc(n, 1);
        if (!seen)
            fail("calloc");
        double t0 = pb_now_s();
        pid_t prod = spawn(producer_entry, port, n);
        for (size_t i = 0; i < n; i++) {
            size_t v = collect(&col, n);
            if (seen[v]) {
                fprintf(stderr, "bstalk-bench: result %zu twice\n", v);
                rc = 1;
            }
            seen[v] = true;
        }
        double secs = pb_now_s() - t0;
        int st = 0;
        waitpid(prod, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            rc = 1;
        printf("{\"bench\":\"beanstalkd\",\"workload\":\"w1\",\"workers\":%d,\"tasks\":%zu,"
               "\"seconds\":%.3f,\"rate\":%.1f}\n",
               workers, n, secs, (double)n / secs);
        free(seen);
    } else {
        conn_t prod;
        conn_open(&prod, port);
        cmd(&prod, "use jobs\r\n", "USING");
        double *lat = calloc(n, sizeof *lat), sum = 0;
        if (!lat)
            fail("calloc");
        double t0 = pb_now_s();
        for (size_t i = 0; i < n; i++) {
            char out[64];
            char body[32];
            int bl = snprintf(body, sizeof body, "%zu", i);
            int k = snprintf(out, sizeof out, "put 0 0 60 %d\r\n%s\r\n", bl, body);
            double s = pb_now_s();
            conn_write(&prod, out, (size_t)k);
            expect(&prod, "INSERTED");
            if (collect(&col, n) != i)
                rc = 1;
            lat[i] = (pb_now_s() - s) * 1e6;
            sum += lat[i];
        }
        double secs = pb_now_s() - t0;
        qsort(lat, n, sizeof *lat, pb_cmp_double);
        printf("{\"bench\":\"beanstalkd\",\"workload\":\"w2\",\"workers\":%d,\"tasks\":%zu,"
               "\"seconds\":%.3f,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
               "\"p999_us\":%.1f,\"max_us\":%.1f}\n",
               workers, n, secs, sum / (double)n, pb_pct(lat, n, 50), pb_pct(lat, n, 99),
               pb_pct(lat, n, 99.9), lat[n - 1]);
        free(lat);
        close(prod.fd);
    }
    fflush(stdout);
    for (int i = 0; i < np; i++) {
        kill(pids[i], SIGKILL);
        waitpid(pids[i], NULL, 0);
    }
    close(col.fd);
    return rc;
}
