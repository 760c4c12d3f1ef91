/*
 * demo.c - the README quick-start demo: submits a batch of built-in tasks,
 * shows them live (one line per task plus the worker table), then prints
 * each result and the throughput.
 *
 *   demo [BROKER] [--primes N] [--sleeps N]
 *
 * BROKER defaults to $TASKQ_BROKER, then tcp://127.0.0.1:5555. Defaults:
 * 16 x taskq.primes with n between 2e6 and 6e6, 8 x taskq.sleep of 1-3 s.
 * Uses only include/taskq.h: task arguments are encoded by hand as msgpack.
 * On a terminal the view is redrawn in place every 250 ms (ANSI cursor
 * movement); otherwise one compact progress line is printed per second.
 * Exit status 0 iff every task succeeded.
 */
/* clock_gettime, isatty: POSIX (also without the build's global define) */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "taskq.h"

typedef struct {
    taskq_task_spec_t spec;
    uint8_t args[8];
    char label[32];     /* "primes 2000000", "sleep 2" */
    taskq_task_t *rec;  /* latest record (owned) */
} item_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* msgpack [n] with n as uint32: 0x91 0xce b3 b2 b1 b0 */
static size_t pack_uint_array(uint8_t *out, uint32_t n)
{
    out[0] = 0x91;
    out[1] = 0xce;
    out[2] = (uint8_t)(n >> 24);
    out[3] = (uint8_t)(n >> 16);
    out[4] = (uint8_t)(n >> 8);
    out[5] = (uint8_t)n;
    return 6;
}

/* A scalar msgpack value as text (ints, nil, bools, floats); else "<N bytes>". */
static void format_value(const uint8_t *p, size_t n, char *out, size_t sz)
{
    if (!p || n == 0) {
        snprintf(out, sz, "nil");
        return;
    }
    uint8_t t = p[0];
    if (t < 0x80 && n == 1) {
        snprintf(out, sz, "%u", t);
    } else if (t >= 0xe0 && n == 1) {
        snprintf(out, sz, "%d", (int8_t)t);
    } else if (t == 0xc0) {
        snprintf(out, sz, "nil");
    } else if (t == 0xc2 || t == 0xc3) {
        snprintf(out, sz, t == 0xc3 ? "true" : "false");
    } else if (t >= 0xcc && t <= 0xd3 && n == 1 + (1u << ((t - 0xcc) & 3))) {
        uint64_t v = 0;
        for (size_t i = 1; i < n; i++)
            v = v << 8 | p[i];
        if (t >= 0xd0) { /* signed: sign-extend from the width */
            unsigned bits = 8u * (unsigned)(n - 1);
            if (bits < 64 && (v >> (bits - 1)) & 1)
                v |= ~0ULL << bits;
            snprintf(out, sz, "%lld", (long long)v);
        } else {
            snprintf(out, sz, "%llu", (unsigned long long)v);
        }
    } else if (t == 0xcb && n == 9) {
        uint64_t v = 0;
        for (size_t i = 1; i < 9; i++)
            v = v << 8 | p[i];
        double d;
        memcpy(&d, &v, sizeof d);
        snprintf(out, sz, "%g", d);
    } else {
        snprintf(out, sz, "<%zu bytes of msgpack>", n);
    }
}

static void short_id(const taskq_id_t *id, char out[9])
{
    char full[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, full);
    memcpy(out, full + 19, 4); /* the counter part: differs within a batch */
    memcpy(out + 4, full + 24, 4);
    out[8] = '\0';
}

static void bar(char *out, double f, int width)
{
    int full = (int)(f * width + 0.5);
    size_t o = 0;
    for (int i = 0; i < width; i++) {
        memcpy(out + o, i < full ? "\xe2\x96\x88" : "\xe2\x96\x91", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Draws the live view; returns the number of lines printed. */
static int draw(item_t *items, size_t n, const taskq_workers_t *w, double elapsed_s)
{
    int lines = 0;
    printf("\x1b[2K%-8s  %-16s %-9s %-20s %5s  %s\n", "TASK", "NAME", "STATE", "PROGRESS", "", "MESSAGE");
    lines++;
    for (size_t i = 0; i < n; i++) {
        const taskq_task_t *t = items[i].rec;
        char sid[9], b[20 * 3 + 1];
        short_id(&items[i].spec.id, sid);
        double f = 0;
        if (t && t->progress_total)
            f = (double)t->progress_current / (double)t->progress_total;
        if (t && t->state == TASKQ_STATE_SUCCEEDED)
            f = 1;
        if (f > 1)
            f = 1;
        bar(b, f, 20);
        const char *state = t ? taskq_state_name(t->state) : "queued";
        const char *color = !t ? "" : t->state == TASKQ_STATE_SUCCEEDED ? "\x1b[32m"
                                  : t->state == TASKQ_STATE_FAILED   ? "\x1b[31m"
                                  : t->state == TASKQ_STATE_RUNNING  ? "\x1b[33m"
                                                                     : "";
        printf("\x1b[2K%-8s  %-16s %s%-9s\x1b[0m %s %4.0f%%  %.30s\n", sid, items[i].label, color,
               state, b, f * 100, t && t->state == TASKQ_STATE_FAILED ? t->error : t ? t->progress_message : "");
        lines++;
    }
    printf("\x1b[2K\n\x1b[2K%-22s %8s  %-9s %-16s %8s %6s\n", "NODE", "CHILD", "STATE", "TASK", "RUNNING",
           "DONE");
    lines += 2;
    for (size_t i = 0; w && i < taskq_workers_count(w); i++) {
        const taskq_node_info_t *node = taskq_workers_node(w, i);
        for (size_t j = 0; j < node->nchildren; j++) {
            const taskq_child_info_t *c = &node->children[j];
            printf("\x1b[2K%-22.22s %8d  %-9s %-16.16s %7.1fs %6llu\n", node->id, (int)c->pid,
                   c->state, c->task_name[0] ? c->task_name : "-", (double)c->running_ms / 1000.0,
                   (unsigned long long)c->done);
            lines++;
        }
    }
    if (!w || taskq_workers_count(w) == 0) {
        printf("\x1b[2K(no worker nodes: start one with taskq-worker)\n");
        lines++;
    }
    printf("\x1b[2K\n\x1b[2K%.1f s\n", elapsed_s);
    lines += 2;
    fflush(stdout);
    return lines;
}

static int on_done(const taskq_task_t *task, void *arg)
{
    (void)task;
    (void)arg;
    return 0; /* completion is picked up by the STATUS refresh */
}

int main(int argc, char **argv)
{
    const char *broker = NULL;
    long nprimes = 16, nsleeps = 8;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--primes") && i + 1 < argc) {
            nprimes = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--sleeps") && i + 1 < argc) {
            nsleeps = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") || argv[i][0] == '-') {
            fprintf(stderr, "usage: demo [BROKER] [--primes N] [--sleeps N]\n");
            return argv[i][1] == 'h' || argv[i][2] == 'h' ? 0 : 2;
        } else {
            broker = argv[i];
        }
    }
    if (nprimes < 0 || nsleeps < 0 || nprimes + nsleeps == 0 || nprimes + nsleeps > 100000) {
        fprintf(stderr, "demo: need between 1 and 100000 tasks\n");
        return 2;
    }
    size_t n = (size_t)(nprimes + nsleeps);
    item_t *items = calloc(n, sizeof *items);
    taskq_id_t *pending = calloc(n, sizeof *pending);
    taskq_err_t err;
    taskq_client_t *c = items && pending ? taskq_client_new(broker, &err) : NULL;
    if (!c) {
        fprintf(stderr, "demo: %s\n", items && pending ? taskq_strerror(err) : "out of memory");
        return 1;
    }
    taskq_task_spec_t *specs = calloc(n, sizeof *specs);
    for (size_t i = 0; i < n && specs; i++) {
        item_t *it = &items[i];
        uint32_t v;
        if (i < (size_t)nprimes) {
            v = 2000000u + (nprimes > 1 ? (uint32_t)(4000000ull * i / (size_t)(nprimes - 1)) : 0);
            it->spec.name = "taskq.primes";
            snprintf(it->label, sizeof it->label, "primes %u", v);
        } else {
            v = 1 + (uint32_t)(i % 3);
            it->spec.name = "taskq.sleep";
            snprintf(it->label, sizeof it->label, "sleep %u", v);
        }
        it->spec.args = it->args;
        it->spec.args_len = pack_uint_array(it->args, v);
        specs[i] = it->spec;
    }
    int64_t start = now_ms();
    err = specs ? taskq_submit_batch(c, specs, n, NULL) : TASKQ_ENOMEM;
    if (err != TASKQ_OK) {
        fprintf(stderr, "demo: submit failed: %s\n", taskq_strerror(err));
        free(specs);
        free(items);
        free(pending);
        taskq_client_destroy(&c);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        items[i].spec.id = specs[i].id; /* ids were generated and written back */
    free(specs);
    printf("submitted %zu tasks to %s\n", n, broker ? broker : getenv("TASKQ_BROKER") ? getenv("TASKQ_BROKER") : TASKQ_DEFAULT_BROKER);

    bool tty = isatty(STDOUT_FILENO);
    int drawn = 0;
    int64_t last_line = 0;
    size_t left = n;
    while (left > 0) {
        /* refresh the records of unfinished tasks */
        size_t np = 0;
        left = 0;
        size_t running = 0, done_ok = 0, done_bad = 0;
        for (size_t i = 0; i < n; i++) {
            item_t *it = &items[i];
            if (!it->rec || !taskq_state_is_terminal(it->rec->state)) {
                taskq_task_t *t = NULL;
                if (taskq_status(c, &it->spec.id, &t) == TASKQ_OK) {
                    taskq_task_destroy(&it->rec);
                    it->rec = t;
                }
            }
            int st = it->rec ? it->rec->state : TASKQ_STATE_QUEUED;
            if (!taskq_state_is_terminal(st)) {
                pending[np++] = it->spec.id;
                left++;
            }
            running += st == TASKQ_STATE_RUNNING;
            done_ok += st == TASKQ_STATE_SUCCEEDED;
            done_bad += st == TASKQ_STATE_FAILED;
        }
        double elapsed = (double)(now_ms() - start) / 1000.0;
        if (tty) {
            taskq_workers_t *w = NULL;
            taskq_workers(c, &w);
            if (drawn)
                printf("\x1b[%dA", drawn);
            drawn = draw(items, n, w, elapsed);
            taskq_workers_destroy(&w);
        } else if (now_ms() - last_line >= 1000 || left == 0) {
            printf("%5.1f s: %zu/%zu done (%zu failed), %zu running, %zu queued\n", elapsed,
                   done_ok + done_bad, n, done_bad, running, n - done_ok - done_bad - running);
            fflush(stdout);
            last_line = now_ms();
        }
        if (left == 0)
            break;
        /* the ~250 ms tick: a short wait returns early when tasks finish */
        err = taskq_wait_many(c, pending, np, 250, on_done, NULL);
        if (err != TASKQ_OK && err != TASKQ_ETIMEDOUT && err != TASKQ_ENOTFOUND) {
            fprintf(stderr, "demo: %s\n", taskq_strerror(err));
            break;
        }
    }
    double total_s = (double)(now_ms() - start) / 1000.0;

    size_t failed = 0;
    printf("\nresults:\n");
    for (size_t i = 0; i < n; i++) {
        const taskq_task_t *t = items[i].rec;
        char sid[9], val[64];
        short_id(&items[i].spec.id, sid);
        if (t && t->state == TASKQ_STATE_SUCCEEDED) {
            format_value(t->result, t->result_len, val, sizeof val);
            printf("  %s  %-16s -> %s\n", sid, items[i].label, val);
        } else {
            failed++;
            printf("  %s  %-16s FAILED: %s\n", sid, items[i].label, t ? t->error : "unknown");
        }
        taskq_task_destroy(&items[i].rec);
    }
    printf("\n%zu tasks in %.1f s: %.1f tasks/s; %zu failed\n", n, total_s,
           total_s > 0 ? (double)n / total_s : 0.0, failed);
    free(items);
    free(pending);
    taskq_client_destroy(&c);
    return failed == 0 && left == 0 ? 0 : 1;
}
