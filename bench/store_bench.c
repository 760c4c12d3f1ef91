/* store_bench.c - the store's per-task write path alone (no network, no
 * broker): what a task's happy life costs in SQLite.
 *
 * For each durability (normal, full) and each turn size T (1, 8, 64, 512)
 * it opens a fresh database in a temp dir with the broker's settings
 * (store_open), inserts N echo tasks in transactions of 500
 * (store_insert_task, as SUBMIT batches), then runs them the way the
 * broker's loop does: every transaction ("turn") ends the T tasks
 * dispatched by the previous turn (store_end_attempt, succeeded), reads
 * each one's record as for a waiting client's RESULT (store_get_task), and
 * dispatches T more (store_next_ready + store_mark_running); store_commit
 * writes the turn's qcounts. One line per (durability, T):
 *
 *   insert us/task, run+end us/task (wall and CPU), and bytes / write
 *   syscalls per task of each phase (/proc/self/io wchar / syscw: the WAL
 *   appends plus the checkpoints' copies into the main file).
 *
 * Usage: store-bench [-n TASKS] [-r RUN_TASKS_FULL_T1] [-d DIR] [-t T,...] [-D normal|full|both] [-v]
 * -v adds a line per run: the run phase's time by verb (wall, us per task).
 * -r caps the tasks of the run phase at durability full (every commit is
 * an fsync: T = 1 would take minutes); default 5000 for T < 64. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define INSERT_BATCH 500

static double now_s(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* wchar and syscw of /proc/self/io (0 if unreadable) */
static void io_now(uint64_t *wchar, uint64_t *syscw)
{
    *wchar = *syscw = 0;
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return;
    char line[128];
    unsigned long long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "wchar: %llu", &v) == 1)
            *wchar = v;
        else if (sscanf(line, "syscw: %llu", &v) == 1)
            *syscw = v;
    }
    fclose(f);
}

typedef struct {
    double wall, cpu;
    uint64_t wchar, syscw;
} mark_t;

static mark_t mark(void)
{
    mark_t m;
    m.wall = now_s(CLOCK_MONOTONIC);
    m.cpu = now_s(CLOCK_PROCESS_CPUTIME_ID);
    io_now(&m.wchar, &m.syscw);
    return m;
}

static void die(const char *what, taskq_err_t e)
{
    fprintf(stderr, "store-bench: %s: %s\n", what, taskq_err_name(e));
    exit(1);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* a UUIDv7-like id: ms timestamp (about 50 tasks per ms) then random bits */
static taskq_id_t make_id(int64_t base_ms, size_t i)
{
    taskq_id_t id;
    uint64_t ms = (uint64_t)base_ms + i / 50;
    for (int k = 0; k < 6; k++)
        id.b[k] = (uint8_t)(ms >> (8 * (5 - k)));
    uint64_t r1 = rnd(), r2 = rnd();
    memcpy(id.b + 6, &r1, 2);
    memcpy(id.b + 8, &r2, 8);
    id.b[6] = (uint8_t)(0x70 | (id.b[6] & 0x0f));
    id.b[8] = (uint8_t)(0x80 | (id.b[8] & 0x3f));
    return id;
}

typedef struct {
    taskq_id_t *ids;
    uint32_t *attempts;
    size_t n, cap;
} picked_t;

static bool pick(const store_queued_t *row, void *arg)
{
    picked_t *p = arg;
    if (p->n == p->cap)
        return false;
    p->ids[p->n] = row->id;
    p->attempts[p->n] = row->attempts;
    p->n++;
    return true;
}

static bool verbose; /* -v: time of each verb of the run phase */

typedef struct {
    double ins_wall, ins_cpu, run_wall, run_cpu;
    double t_end, t_result, t_ready, t_mark, t_commit; /* -v: us per task in each verb */
    double ins_bytes, ins_writes, run_bytes, run_writes;
    size_t inserted, ran;
} result_t;

static void rm_db(const char *path)
{
    char p[640];
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static result_t bench_one(const char *dir, store_durability_t dur, size_t n, size_t turn,
                          size_t run_n)
{
    char path[600];
    snprintf(path, sizeof path, "%.500s/bench.db", dir);
    rm_db(path);
    taskq_err_t err;
    store_t *s = store_open(path, dur, &err);
    if (!s)
        die("open", err);
    result_t r;
    memset(&r, 0, sizeof r);
    int64_t base_ms = 1700000000000LL;
    taskq_id_t *ids = malloc(n * sizeof *ids);
    static const uint8_t args[] = "\x91\xa5hello"; /* ["hello"] */
    static const uint8_t result[] = "\xa5hello";

    /* insert: SUBMIT batches of 500 per turn */
    mark_t a = mark();
    for (size_t i = 0; i < n;) {
        if ((err = store_begin(s)) != TASKQ_OK)
            die("begin", err);
        for (size_t k = 0; k < INSERT_BATCH && i < n; k++, i++) {
            store_new_task_t t;
            memset(&t, 0, sizeof t);
            t.id = ids[i] = make_id(base_ms, i);
            t.name = proto_str("echo");
            t.args.ptr = args;
            t.args.len = sizeof args - 1;
            t.queue = proto_str("default");
            t.priority = 5;
            t.state = TASKQ_STATE_QUEUED;
            t.policy.jitter = -1;
            t.submitted_at = base_ms + (int64_t)(i / 50);
            bool inserted = false;
            if ((err = store_insert_task(s, &t, &inserted)) != TASKQ_OK || !inserted)
                die("insert", err);
        }
        if ((err = store_commit(s)) != TASKQ_OK)
            die("commit", err);
    }
    mark_t b = mark();
    r.inserted = n;
    r.ins_wall = (b.wall - a.wall) * 1e6 / (double)n;
    r.ins_cpu = (b.cpu - a.cpu) * 1e6 / (double)n;
    r.ins_bytes = (double)(b.wchar - a.wchar) / (double)n;
    r.ins_writes = (double)(b.syscw - a.syscw) / (double)n;

    /* run: each turn ends the previous turn's dispatches and dispatches T */
    picked_t cur = {malloc(turn * sizeof(taskq_id_t)), malloc(turn * sizeof(uint32_t)), 0, turn};
    picked_t prev = {malloc(turn * sizeof(taskq_id_t)), malloc(turn * sizeof(uint32_t)), 0, turn};
    size_t dispatched = 0, ended = 0;
    int64_t now = base_ms + 100000;
    a = mark();
    double t0 = 0;
#define TIC() (t0 = verbose ? now_s(CLOCK_MONOTONIC) : 0)
#define TOC(field) (verbose ? (r.field += now_s(CLOCK_MONOTONIC) - t0) : 0)
    while (ended < run_n) {
        TIC();
        if ((err = store_begin(s)) != TASKQ_OK)
            die("begin", err);
        TOC(t_commit);
        now++;
        TIC();
        for (size_t k = 0; k < prev.n; k++) {
            store_outcome_t o = {.to_state = TASKQ_STATE_SUCCEEDED,
                                 .result = {result, sizeof result - 1},
                                 .code = proto_str(""),
                                 .message = proto_str(""),
                                 .label = "succeeded",
                                 .child_pid = 4242,
                                 .now = now};
            if ((err = store_end_attempt(s, &prev.ids[k], prev.attempts[k], &o)) != TASKQ_OK)
                die("end attempt", err);
            ended++;
        }
        TOC(t_end);
        /* the record a waiting client gets in RESULT (handlers_notify_waiters) */
        TIC();
        for (size_t k = 0; k < prev.n; k++) {
            proto_task_rec_t rec;
            if ((err = store_get_task(s, &prev.ids[k], &rec)) != TASKQ_OK)
                die("get task", err);
        }
        TOC(t_result);
        prev.n = 0;
        uint64_t counts[TASKQ_NSTATES], total;
        if ((err = store_counts(s, counts, &total)) != TASKQ_OK) /* as handlers_dispatch */
            die("counts", err);
        cur.n = 0;
        size_t want = run_n - dispatched < turn ? run_n - dispatched : turn;
        if (want && counts[TASKQ_STATE_QUEUED]) {
            cur.cap = want;
            TIC();
            if ((err = store_next_ready(s, "default", NULL, 0, want, pick, &cur)) != TASKQ_OK)
                die("next ready", err);
            TOC(t_ready);
            TIC();
            for (size_t k = 0; k < cur.n; k++) {
                uint32_t attempt = cur.attempts[k] + 1;
                if ((err = store_mark_running(s, &cur.ids[k], attempt, "node-1", now,
                                              now + 30000)) != TASKQ_OK)
                    die("mark running", err);
                cur.attempts[k] = attempt;
            }
            TOC(t_mark);
            dispatched += cur.n;
        }
        TIC();
        if ((err = store_commit(s)) != TASKQ_OK)
            die("commit", err);
        TOC(t_commit);
        picked_t t = prev;
        prev = cur;
        cur = t;
        if (prev.n == 0 && ended < run_n && dispatched >= run_n)
            break; /* cannot happen */
    }
    b = mark();
    r.ran = ended;
    r.run_wall = (b.wall - a.wall) * 1e6 / (double)ended;
    r.run_cpu = (b.cpu - a.cpu) * 1e6 / (double)ended;
    r.run_bytes = (double)(b.wchar - a.wchar) / (double)ended;
    r.run_writes = (double)(b.syscw - a.syscw) / (double)ended;
    r.t_end *= 1e6 / (double)ended;
    r.t_result *= 1e6 / (double)ended;
    r.t_ready *= 1e6 / (double)ended;
    r.t_mark *= 1e6 / (double)ended;
    r.t_commit *= 1e6 / (double)ended;
    uint64_t counts[TASKQ_NSTATES], total;
    store_counts(s, counts, &total);
    if (counts[TASKQ_STATE_SUCCEEDED] != ended) {
        fprintf(stderr, "store-bench: %llu succeeded, %zu ended\n",
                (unsigned long long)counts[TASKQ_STATE_SUCCEEDED], ended);
        exit(1);
    }
    free(cur.ids);
    free(cur.attempts);
    free(prev.ids);
    free(prev.attempts);
    free(ids);
    store_close(&s);
    rm_db(path);
    return r;
}

int main(int argc, char **argv)
{
    size_t n = 100000, run_full_small = 5000;
    const char *dir = NULL, *turns = "1,8,64,512", *durs = "both";
    int c;
    while ((c = getopt(argc, argv, "n:r:d:t:D:v")) != -1) {
        switch (c) {
        case 'n':
            n = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            run_full_small = strtoull(optarg, NULL, 10);
            break;
        case 'd':
            dir = optarg;
            break;
        case 't':
            turns = optarg;
            break;
        case 'D':
            durs = optarg;
            break;
        case 'v':
            verbose = true;
            break;
        default:
            fprintf(stderr, "usage: %s [-n TASKS] [-r RUN_TASKS_FULL_SMALL_T] [-d DIR]"
                            " [-t T,...] [-D normal|full|both] [-v]\n",
                    argv[0]);
            return 2;
        }
    }
    if (n == 0)
        n = 1;
    char tmpl[512];
    bool own_dir = !dir;
    if (own_dir) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/store_bench.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "store-bench: mkdtemp: %s\n", strerror(errno));
            return 1;
        }
        dir = tmpl;
    }
    printf("# store-bench: N=%zu tasks, insert batches of %d; run = end previous turn +"
           " next_ready/mark_running T\n",
           n, INSERT_BATCH);
    printf("# %-6s %4s | %9s %9s %8s %6s | %7s %9s %9s %8s %6s\n", "dur", "T", "ins_us", "ins_cpu",
           "ins_B", "ins_w", "ran", "run_us", "run_cpu", "run_B", "run_w");
    for (int d = 0; d < 2; d++) {
        store_durability_t dur = d == 0 ? STORE_DURABILITY_NORMAL : STORE_DURABILITY_FULL;
        const char *dname = d == 0 ? "normal" : "full";
        if (strcmp(durs, "both") != 0 && strcmp(durs, dname) != 0)
            continue;
        char tl[128];
        snprintf(tl, sizeof tl, "%s", turns);
        for (char *save = NULL, *tok = strtok_r(tl, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            size_t turn = strtoull(tok, NULL, 10);
            if (turn == 0)
                continue;
            size_t run_n = n;
            if (dur == STORE_DURABILITY_FULL && turn < 64 && run_full_small < run_n)
                run_n = run_full_small;
            result_t r = bench_one(dir, dur, n, turn, run_n);
            printf("  %-6s %4zu | %9.2f %9.2f %8.0f %6.2f | %7zu %9.2f %9.2f %8.0f %6.2f\n", dname,
                   turn, r.ins_wall, r.ins_cpu, r.ins_bytes, r.ins_writes, r.ran, r.run_wall,
                   r.run_cpu, r.run_bytes, r.run_writes);
            if (verbose)
                printf("         run us/task: end %.2f  result read %.2f  next_ready %.2f"
                       "  mark_running %.2f  begin+commit %.2f\n",
                       r.t_end, r.t_result, r.t_ready, r.t_mark, r.t_commit);
            fflush(stdout);
        }
    }
    if (own_dir)
        rmdir(dir);
    return 0;
}
