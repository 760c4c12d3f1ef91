/*
 * peer_bench.h - what the peers' benchmark clients (bstalk_bench.c,
 * gearman_bench.c) share: a monotonic clock, percentiles of a sorted
 * array, and their command line
 *
 *   w1|w2 --port P [-N n] [--workers K] [--chunk C]
 *
 * (--chunk only where the caller takes it). Header-only, static inline:
 * each client is one program.
 */
#ifndef TASKQ_PEER_BENCH_H
#define TASKQ_PEER_BENCH_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline double pb_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* qsort's comparison for doubles */
static inline int pb_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n-1], sorted ascending. */
static inline double pb_pct(const double *v, size_t n, double p)
{
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    k = k < 1 ? 1 : k > n ? n : k;
    return v[k - 1];
}

typedef struct {
    bool w1; /* else w2 */
    int port;
    int workers;  /* 1..64, default 2 */
    size_t n;     /* default 50,000 (w1) or 2,000 (w2) */
    size_t chunk; /* default 1,000; only if with_chunk */
} pb_opts_t;

/* false: the command line is wrong (the caller prints its usage). */
static inline bool pb_parse(int argc, char **argv, bool with_chunk, pb_opts_t *o)
{
    *o = (pb_opts_t){.workers = 2, .chunk = 1000};
    if (argc < 2)
        return false;
    const char *mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            o->port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-N"))
            o->n = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--workers"))
            o->workers = atoi(argv[i + 1]);
        else if (with_chunk && !strcmp(argv[i], "--chunk"))
            o->chunk = (size_t)strtoull(argv[i + 1], NULL, 10);
        else
            return false;
    }
    o->w1 = !strcmp(mode, "w1");
    if ((!o->w1 && strcmp(mode, "w2")) || o->port <= 0 || o->port > 65535 || o->workers < 1 ||
        o->workers > 64 || o->chunk == 0)
        return false;
    if (o->n == 0)
        o->n = o->w1 ? 50000 : 2000;
    return true;
}

#endif
