/* it_bounded: per-queue max_pending and backpressure.
 *  1. Queue max_pending 100, no worker: 150 single submits give exactly 100
 *     acks and 50 BUSY (queue, depth 100, limit 100, retry-after) that
 *     create nothing; acks past the 80 % watermark say so (soft); the
 *     CLI exits 7 with "queue Q is full (depth D, limit L): retry after R
 *     ms".
 *  2. A batch of 20 at depth 90 is refused whole; a batch of 10 fits.
 *  3. taskq_client_set_block(10 s): 150 submits from a thread while a
 *     worker is started 2 s later (a deliberate delay, not a
 *     synchronisation): all 150 accepted, the submitter did block, none
 *     duplicated (the queue holds 150 tasks, each ran once).
 *  4. A blocked submit gives up with EBUSY after its block time. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define OUTSZ 8192
static char out[OUTSZ];

static taskq_task_spec_t square_to(uint8_t *a, size_t asz, const char *queue, int i)
{
    taskq_task_spec_t s;
    memset(&s, 0, sizeof s);
    s.name = "test.square";
    s.args = a;
    s.args_len = h_args_int(a, asz, i);
    s.queue = queue;
    return s;
}

static uint64_t queued_in(taskq_client_t *c, const char *q)
{
    taskq_queue_info_t info;
    H_ASSERT(h_queue_info(c, q, &info), "queue %s not listed", q);
    return info.counts[TASKQ_STATE_QUEUED];
}

/* ---- 1 ----------------------------------------------------------------------- */

static void single_submits(taskq_client_t *c, const char *ep)
{
    H_OK(taskq_queue_set_max_pending(c, "bq", 100));
    taskq_queue_info_t info;
    H_ASSERT(h_queue_info(c, "bq", &info) && info.max_pending == 100, "bq max_pending %llu",
             (unsigned long long)info.max_pending);
    int ok = 0, busy = 0;
    for (int i = 0; i < 150; i++) {
        uint8_t a[16];
        taskq_task_spec_t s = square_to(a, sizeof a, "bq", i);
        taskq_err_t rc = taskq_submit(c, &s);
        if (rc == TASKQ_OK) {
            ok++;
            /* ack k leaves depth k: below 80 % no warning, past it one */
            if (ok < 80)
                H_ASSERT(!s.soft_limit, "ack %d (depth %d of 100) is marked soft", ok, ok);
            if (ok > 81)
                H_ASSERT(s.soft_limit, "ack %d (depth %d of 100) is not marked soft", ok, ok);
            continue;
        }
        H_ASSERT(rc == TASKQ_EBUSY, "submit %d: %s, expected OK or EBUSY", i, taskq_err_name(rc));
        H_ASSERT(ok == 100, "BUSY at submit %d with only %d accepted", i, ok);
        busy++;
        taskq_busy_info_t bi;
        taskq_client_last_busy(c, &bi);
        H_ASSERT(strcmp(bi.queue, "bq") == 0 && bi.depth == 100 && bi.limit == 100 &&
                     bi.retry_after_ms > 0,
                 "BUSY details: queue '%s' depth %llu limit %llu retry_after %lld", bi.queue,
                 (unsigned long long)bi.depth, (unsigned long long)bi.limit,
                 (long long)bi.retry_after_ms);
        H_ASSERT(h_status(c, &s.id) == NULL, "a refused task %s exists", h_id_str(&s.id));
    }
    H_ASSERT(ok == 100 && busy == 50, "150 submits: %d ok, %d busy; expected 100 and 50", ok,
             busy);
    H_ASSERT(queued_in(c, "bq") == 100, "bq holds %llu queued", (unsigned long long)queued_in(c, "bq"));

    int rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[1]", "--queue", "bq");
    H_ASSERT(rc == 7, "CLI submit to a full queue: exit %d, expected 7 (busy)", rc);
    h_lines_t l = h_read_lines(h_cli_last_log());
    bool said = false;
    for (size_t i = 0; i < l.n; i++)
        said |= strstr(l.line[i], "queue bq is full (depth 100, limit 100): retry after") != NULL;
    H_ASSERT(said, "CLI BUSY message missing in %s", h_cli_last_log());
    h_lines_free(&l);
    h_log("max_pending 100: 100 acks (soft past 80 %%), 50 BUSY creating nothing, CLI exit 7");
}

/* ---- 2 ----------------------------------------------------------------------- */

static void batches(taskq_client_t *c)
{
    H_OK(taskq_queue_set_max_pending(c, "bq2", 100));
    enum { N = 120 };
    static taskq_task_spec_t s[N];
    static uint8_t a[N][16];
    taskq_err_t codes[N];
    for (int i = 0; i < N; i++)
        s[i] = square_to(a[i], sizeof a[i], "bq2", i);
    H_OK(taskq_submit_batch(c, s, 90, codes));
    H_ASSERT(queued_in(c, "bq2") == 90, "depth %llu", (unsigned long long)queued_in(c, "bq2"));
    taskq_err_t rc = taskq_submit_batch(c, s + 90, 20, codes + 90);
    H_ASSERT(rc == TASKQ_EBUSY, "a batch of 20 at depth 90 of 100: %s, expected EBUSY",
             taskq_err_name(rc));
    for (int i = 90; i < 110; i++) {
        H_ASSERT(codes[i] == TASKQ_EBUSY, "batch task %d: %s", i - 90, taskq_err_name(codes[i]));
        H_ASSERT(h_status(c, &s[i].id) == NULL, "batch task %d exists: the batch was split",
                 i - 90);
    }
    H_ASSERT(queued_in(c, "bq2") == 90, "depth %llu after a refused batch",
             (unsigned long long)queued_in(c, "bq2"));
    for (int i = 110; i < 120; i++)
        memset(&s[i].id, 0, sizeof s[i].id);
    H_OK(taskq_submit_batch(c, s + 110, 10, codes + 110));
    H_ASSERT(queued_in(c, "bq2") == 100, "depth %llu after a batch of 10",
             (unsigned long long)queued_in(c, "bq2"));
    h_log("batch of 20 at depth 90 refused whole; batch of 10 accepted");
}

/* ---- 3 ----------------------------------------------------------------------- */

typedef struct {
    const char *ep;
    const char *path;
    int ok;
    taskq_err_t first_err;
    int64_t ms;
    taskq_id_t ids[150];
} blocker_t;

static void *blocker(void *p)
{
    blocker_t *b = p;
    taskq_err_t err = TASKQ_OK;
    taskq_client_t *c = taskq_client_new(b->ep, &err); /* one handle per thread */
    if (!c) {
        b->first_err = err;
        return NULL;
    }
    taskq_client_set_timeout(c, 10000);
    taskq_client_set_block(c, 10000);
    int64_t t0 = h_now_ms();
    for (int i = 0; i < 150; i++) {
        uint8_t a[512];
        char tag[16];
        snprintf(tag, sizeof tag, "%d", i);
        taskq_task_spec_t s;
        memset(&s, 0, sizeof s);
        s.name = "test.append";
        s.args = a;
        s.args_len = h_args_fmt(a, sizeof a, "ss", b->path, tag);
        s.queue = "bq3";
        taskq_err_t rc = taskq_submit(c, &s);
        if (rc != TASKQ_OK) {
            b->first_err = rc;
            break;
        }
        b->ids[i] = s.id;
        b->ok++;
    }
    b->ms = h_now_ms() - t0;
    taskq_client_destroy(&c);
    return NULL;
}

static void blocking(taskq_client_t *c, const char *ep)
{
    H_OK(taskq_queue_set_max_pending(c, "bq3", 100));
    char path[512];
    snprintf(path, sizeof path, "%s/bq3.txt", h_tmpdir());
    static blocker_t bl;
    bl.ep = ep;
    bl.path = path;
    pthread_t th;
    H_ASSERT(pthread_create(&th, NULL, blocker, &bl) == 0, "pthread_create");
    /* a deliberate delay: the submitter must block on the full queue */
    struct timespec ts = {2, 0};
    nanosleep(&ts, NULL);
    h_worker_t *w = h_worker_start(ep, 2, "-Q", "bq3");
    pthread_join(th, NULL);
    H_ASSERT(bl.ok == 150, "blocking submitter: %d of 150 accepted, then %s", bl.ok,
             taskq_err_name(bl.first_err));
    H_ASSERT(bl.ms >= 1500, "150 submits to a queue of 100 took %lld ms: they did not block",
             (long long)bl.ms);
    for (int64_t t0 = h_now_ms();;) {
        taskq_queue_info_t q;
        if (h_queue_info(c, "bq3", &q) && q.counts[TASKQ_STATE_SUCCEEDED] == 150)
            break;
        H_ASSERT(h_now_ms() - t0 < 30000, "bq3 tasks did not all run");
        struct timespec p = {0, 20000000};
        nanosleep(&p, NULL);
    }
    H_ASSERT(h_queue_total(c, "bq3") == 150, "bq3 holds %llu tasks, expected 150 (duplicates?)",
             (unsigned long long)h_queue_total(c, "bq3"));
    h_lines_t l = h_read_lines(path);
    H_ASSERT(l.n == 150, "%zu runs of 150 tasks", l.n);
    bool seen[150] = {false};
    for (size_t i = 0; i < l.n; i++) {
        int k = atoi(l.line[i]);
        H_ASSERT(k >= 0 && k < 150 && !seen[k], "run '%s' unknown or repeated", l.line[i]);
        seen[k] = true;
    }
    h_lines_free(&l);
    h_log("blocking submits: 150 accepted in %lld ms, each ran once", (long long)bl.ms);
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 15000);
}

/* ---- 4 ----------------------------------------------------------------------- */

static void block_timeout(const char *ep)
{
    taskq_client_t *c = h_client(ep, 10000);
    taskq_client_set_block(c, 1000);
    uint8_t a[16];
    taskq_task_spec_t s = square_to(a, sizeof a, "bq", 1); /* bq is full, nothing drains it */
    int64_t t0 = h_now_ms();
    taskq_err_t rc = taskq_submit(c, &s);
    int64_t ms = h_now_ms() - t0;
    H_ASSERT(rc == TASKQ_EBUSY && ms >= 900 && ms < 5000,
             "block 1 s on a full queue: %s after %lld ms, expected EBUSY after ~1 s",
             taskq_err_name(rc), (long long)ms);
    H_ASSERT(h_status(c, &s.id) == NULL, "the refused task exists");
    taskq_client_destroy(&c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);
    single_submits(c, ep);
    batches(c);
    block_timeout(ep);
    blocking(c, ep);
    taskq_client_destroy(&c);
    return 0;
}
