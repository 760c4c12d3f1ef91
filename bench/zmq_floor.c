/* zmq_floor.c - the latency floor of one ZeroMQ hop on this machine, with
 * nothing of taskq in it: a DEALER in this process sends a 4-byte message
 * to a ROUTER in a forked process over tcp loopback, which sends it back;
 * N round trips, one at a time, as W2 does (zmq_poll, then zmq_recv).
 * W2 makes two such round trips per task (client <-> broker, broker <->
 * worker), so twice this p50 is W2's floor before any commit or child.
 *
 *   zmq-floor [N]        (default 5000; one JSON line on stdout) */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void echo_server(int fd_port, int n)
{
    void *ctx = zmq_ctx_new();
    void *r = zmq_socket(ctx, ZMQ_ROUTER);
    char ep[64];
    size_t len = sizeof ep;
    if (!r || zmq_bind(r, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, ep, &len) != 0)
        _exit(1);
    if (write(fd_port, ep, strlen(ep) + 1) < 0)
        _exit(1);
    close(fd_port);
    for (int i = 0; i < n + 1; i++) {
        char id[256], b[64];
        int il = zmq_recv(r, id, sizeof id, 0), bl = zmq_recv(r, b, sizeof b, 0);
        if (il < 0 || bl < 0 || zmq_send(r, id, (size_t)il, ZMQ_SNDMORE) < 0 ||
            zmq_send(r, b, (size_t)bl, 0) < 0)
            _exit(1);
    }
    zmq_close(r);
    zmq_ctx_term(ctx);
    _exit(0);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    if (n < 1) {
        fprintf(stderr, "usage: zmq-floor [N]\n");
        return 2;
    }
    int p[2];
    if (pipe(p) != 0)
        return 1;
    pid_t pid = fork(); /* before any ZeroMQ context */
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(p[0]);
        echo_server(p[1], n);
    }
    close(p[1]);
    char ep[64] = {0};
    if (read(p[0], ep, sizeof ep - 1) <= 0)
        return 1;
    close(p[0]);
    void *ctx = zmq_ctx_new();
    void *d = zmq_socket(ctx, ZMQ_DEALER);
    if (!d || zmq_connect(d, ep) != 0)
        return 1;
    char b[64] = "ping";
    if (zmq_send(d, b, 4, 0) < 0 || zmq_recv(d, b, sizeof b, 0) < 0) /* warm-up */
        return 1;
    double *lat = malloc((size_t)n * sizeof *lat);
    if (!lat)
        return 1;
    for (int i = 0; i < n; i++) {
        double t = now_us();
        zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
        if (zmq_send(d, b, 4, 0) < 0 || zmq_poll(&it, 1, -1) != 1 ||
            zmq_recv(d, b, sizeof b, 0) < 0)
            return 1;
        lat[i] = now_us() - t;
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("{\"bench\":\"zmq-floor\",\"transport\":\"tcp-loopback\",\"round_trips\":%d,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
           n, lat[n / 2], lat[(size_t)n * 99 / 100]);
    free(lat);
    zmq_close(d);
    zmq_ctx_term(ctx);
    waitpid(pid, NULL, 0);
    return 0;
}
