/* it_history.c - every process records its history (TASKQ_HISTORY); after
 * a run with a killed child and crash_until retries the checker finds no
 * violation and counts the duplicates as explained; a corrupted copy of the
 * history (a second terminal for one id) makes it fail. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checker.h"
#include "harness.h"
#include "thist.h"

#define NSQUARE 500
#define NCRASH 3

typedef struct {
    taskq_client_t *c;
    pid_t pid;
} pid_arg_t;

static bool running_with_pid(const taskq_task_t *t, void *arg)
{
    pid_arg_t *a = arg;
    if (t->state != TASKQ_STATE_RUNNING || t->child_pid == 0)
        return false;
    a->pid = t->child_pid;
    return true;
}

static int count_done(const taskq_task_t *t, void *arg)
{
    (*(size_t *)arg)++;
    return 0;
}

/* test.square [n] -> n*n; other tasks are not checked */
static bool verify_square(const char *name, const void *args, size_t args_len,
                          const void *result, size_t result_len, void *arg)
{
    if (strcmp(name, "test.square") != 0)
        return true;
    const uint8_t *a = args;
    int64_t r;
    /* the test submits [n] with 0 <= n < 128: 0x91 then a positive fixint */
    if (args_len != 2 || a[0] != 0x91 || a[1] > 0x7f)
        return false;
    return h_result_int(result, result_len, &r) && r == (int64_t)a[1] * a[1];
}

static void copy_file(const char *from, const char *to, const char *extra)
{
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    H_ASSERT(in && out, "copy %s -> %s", from, to);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        H_ASSERT(fwrite(buf, 1, n, out) == n, "write %s", to);
    if (extra)
        fputs(extra, out);
    fclose(in);
    fclose(out);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(200);
    char hist[512], db[512];
    snprintf(hist, sizeof hist, "%s/hist", h_tmpdir());
    snprintf(db, sizeof db, "%s/taskq.db", h_tmpdir());
    H_ASSERT(mkdir(hist, 0755) == 0, "mkdir %s", hist);
    /* before any process starts: the harness passes our environment on */
    H_ASSERT(setenv("TASKQ_HISTORY", hist, 1) == 0, "setenv");
    thist_open("fault"); /* this process's fault events */
    H_ASSERT(thist_is_enabled(), "history not enabled in the test process");

    h_broker_t *b = h_broker_start(db);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 20000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);

    /* one long task whose child is killed mid-task */
    uint8_t sargs[16];
    size_t slen = h_args_int(sargs, sizeof sargs, 2);
    taskq_id_t victim_id;
    h_submit(c, &victim_id, "test.sleep", sargs, slen, 0, 0);
    pid_arg_t pa = {c, 0};
    taskq_task_t *t =
        h_wait_task(c, &victim_id, running_with_pid, &pa, 20000, "test.sleep running");
    taskq_task_destroy(&t);

    /* the load: squares and crash_until [2] (one SIGSEGV each, then success) */
    static taskq_task_spec_t specs[NSQUARE + NCRASH];
    static uint8_t args[NSQUARE + NCRASH][16];
    for (size_t i = 0; i < NSQUARE + NCRASH; i++) {
        bool crash = i >= NSQUARE;
        size_t len = h_args_int(args[i], sizeof args[i], crash ? 2 : (int64_t)(i % 100));
        specs[i] = (taskq_task_spec_t){.name = crash ? "test.crash_until" : "test.square",
                                       .args = args[i], .args_len = len};
    }
    /* the fault line goes first: it must precede the requeue it explains */
    H_ASSERT(h_pid_alive(pa.pid), "child %d of the sleeping task is gone", (int)pa.pid);
    thist_event("fault kill_child %d", (int)pa.pid);
    H_ASSERT(kill(pa.pid, SIGKILL) == 0, "kill(%d)", (int)pa.pid);
    h_log("killed child %d mid-task", (int)pa.pid);
    H_OK(taskq_submit_batch(c, specs, NSQUARE + NCRASH, NULL));

    /* drain */
    static taskq_id_t ids[NSQUARE + NCRASH + 1];
    for (size_t i = 0; i < NSQUARE + NCRASH; i++)
        ids[i] = specs[i].id;
    ids[NSQUARE + NCRASH] = victim_id;
    size_t done = 0;
    H_OK(taskq_wait_many(c, ids, NSQUARE + NCRASH + 1, 120000, count_done, &done));
    H_ASSERT(done == NSQUARE + NCRASH + 1, "%zu tasks finished", done);
    H_OK(taskq_wait(c, &victim_id, 1000, &t));
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 2,
             "killed task: %s after %u attempts", taskq_state_name(t->state), t->attempts);
    taskq_task_destroy(&t);
    taskq_client_destroy(&c);

    /* stop cleanly so that every line is written and the WAL checkpointed */
    h_worker_signal(w, SIGTERM);
    h_worker_wait_exit(w, 30000);
    int st = h_broker_kill(b, SIGTERM);
    H_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0, "broker exit status %d", st);

    checker_t *ck = checker_new();
    H_OK(checker_load_dir(ck, hist));
    H_OK(checker_load_db(ck, db));
    checker_set_verifier(ck, verify_square, NULL);
    checker_summary_t s;
    int violations = checker_run(ck, stdout, &s);
    checker_destroy(&ck);
    fflush(stdout);
    H_ASSERT(violations == 0, "%d violations in a clean run", violations);
    H_ASSERT(s.submitted == NSQUARE + NCRASH + 1 && s.acked == s.submitted &&
                 s.terminal == s.submitted,
             "submitted=%zu acked=%zu terminal=%zu", s.submitted, s.acked, s.terminal);
    /* one duplicate per crash_until task, one for the killed child */
    H_ASSERT(s.dup_explained == NCRASH + 1, "dup_explained=%zu, expected %d", s.dup_explained,
             NCRASH + 1);
    H_ASSERT(s.malformed == 0, "%zu malformed lines", s.malformed);

    /* negative: a copy with a second terminal for the killed task */
    char bad[512], cmd[1200];
    snprintf(bad, sizeof bad, "%s/hist-bad", h_tmpdir());
    H_ASSERT(mkdir(bad, 0755) == 0, "mkdir %s", bad);
    snprintf(cmd, sizeof cmd, "cp %s/*.hist %s/", hist, bad);
    H_ASSERT(system(cmd) == 0, "%s", cmd);
    char from[1024], to[1024], extra[256];
    snprintf(from, sizeof from, "%s/fault.%d.hist", hist, (int)getpid());
    snprintf(to, sizeof to, "%s/fault.%d.hist", bad, (int)getpid());
    snprintf(extra, sizeof extra, "%lld broker 1 terminal %s 2 succeeded 0000000000000001\n",
             (long long)time(NULL) * 1000000, h_id_str(&victim_id));
    copy_file(from, to, extra);
    ck = checker_new();
    H_OK(checker_load_dir(ck, bad));
    H_OK(checker_load_db(ck, db));
    violations = checker_run(ck, stdout, &s);
    checker_destroy(&ck);
    H_ASSERT(violations >= 1 && s.multi_terminal == 1,
             "corrupted history: %d violations, multi_terminal=%zu", violations,
             s.multi_terminal);
    printf("history: clean run 0 violations, dup_explained=%d; corrupted copy caught\n",
           NCRASH + 1);
    return 0;
}
