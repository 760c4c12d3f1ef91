/* it_storage_errors: the disk fills up (SQLITE_FULL) and then fails with
 * EIO, through the fault VFS (broker/faultvfs.h), while a client keeps
 * submitting. During each fault: submissions fail with ESTORE (never
 * acknowledged), STATS and STATUS keep working; after the flag file is
 * removed, submissions succeed again without a broker restart. At the end a
 * worker drains everything and every acknowledged task must be there and
 * terminal, also after a restart. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "storefault.h"

#define MAX_IDS 20000

static taskq_id_t acked[MAX_IDS];
static size_t nacked;
static taskq_id_t refused[MAX_IDS];
static size_t nrefused;

/* Submits one fresh task; records it as acked or refused. */
static taskq_err_t submit_one(taskq_client_t *c, int64_t *ms)
{
    static uint8_t args[64];
    size_t len = h_args_int(args, sizeof args, 7);
    taskq_task_spec_t s = {.name = "test.square", .args = args, .args_len = len};
    int64_t t0 = h_now_ms();
    taskq_err_t e = taskq_submit(c, &s);
    if (ms)
        *ms = h_now_ms() - t0;
    H_ASSERT(nacked < MAX_IDS && nrefused < MAX_IDS, "too many submissions");
    if (e == TASKQ_OK)
        acked[nacked++] = s.id;
    else if (e == TASKQ_ESTORE)
        refused[nrefused++] = s.id;
    else
        H_FAIL("submit during a storage fault: %s (expected OK or ESTORE)", taskq_err_name(e));
    return e;
}

static void reads_work(taskq_client_t *c, const char *phase)
{
    taskq_stats_t st;
    H_OK(taskq_stats(c, &st));
    if (nacked) {
        taskq_task_t *t = NULL;
        H_OK(taskq_status(c, &acked[nacked - 1], &t));
        taskq_task_destroy(&t);
    }
    h_log("%s: STATS ok (total=%llu queued=%llu)", phase, (unsigned long long)st.total,
          (unsigned long long)st.queued);
}

/* One fault window: flag on, submit until ESTORE, check reads, flag off,
 * check that submissions resume. */
static void fault_window(taskq_client_t *c, const char *flag, const char *kind, pid_t broker)
{
    size_t refused0 = nrefused, acked0 = nacked;
    h_fault("disk_full", "%d", (int)broker); /* the history's one storage-fault kind */
    sf_touch(flag);
    int64_t t0 = h_now_ms(), ms = 0;
    /* the WAL may still have room: a few commits can succeed first */
    int tries = 0;
    while (nrefused == refused0) {
        H_ASSERT(++tries <= 5000, "%s: 5000 submissions, none refused", kind);
        submit_one(c, &ms);
    }
    h_log("%s: first ESTORE after %d submissions (%zu acked first), %lld ms; ESTORE answered "
          "in %lld ms",
          kind, tries, nacked - acked0, (long long)(h_now_ms() - t0), (long long)ms);
    reads_work(c, kind);
    for (int i = 0; i < 20; i++) {
        H_ASSERT(submit_one(c, NULL) == TASKQ_ESTORE, "%s: submission %d acked during the fault",
                 kind, i);
        if (i % 5 == 0)
            reads_work(c, kind);
    }
    h_fault("disk_ok", "%d", (int)broker);
    sf_remove(flag);
    t0 = h_now_ms();
    for (int i = 0; i < 50; i++)
        H_ASSERT(submit_one(c, NULL) == TASKQ_OK, "%s removed: submission %d refused", kind, i);
    h_log("%s removed: 50 submissions acked again in %lld ms, no restart", kind,
          (long long)(h_now_ms() - t0));
}

typedef struct {
    taskq_client_t *c;
    bool restart;
} verify_t;

static void verify(taskq_client_t *c, bool want_terminal, const char *phase)
{
    size_t present_refused = 0;
    for (size_t i = 0; i < nacked; i++) {
        taskq_task_t *t = h_status(c, &acked[i]);
        H_ASSERT(t, "%s: acknowledged task %s is lost", phase, h_id_str(&acked[i]));
        if (want_terminal)
            H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "%s: task %s is %s", phase,
                     h_id_str(&acked[i]), taskq_state_name(t->state));
        taskq_task_destroy(&t);
    }
    for (size_t i = 0; i < nrefused; i++) {
        taskq_task_t *t = h_status(c, &refused[i]);
        present_refused += t != NULL;
        taskq_task_destroy(&t);
    }
    h_log("%s: %zu acked all present; %zu ESTORE-refused, of which %zu stored anyway", phase,
          nacked, nrefused, present_refused);
}

static bool drained(void *p)
{
    taskq_stats_t st;
    if (taskq_stats(p, &st) != TASKQ_OK)
        return false;
    return st.queued == 0 && st.running == 0;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(170);
    h_history_enable();
    char full[512], eio[512], spec[1200];
    snprintf(full, sizeof full, "%s/disk-full", h_tmpdir());
    snprintf(eio, sizeof eio, "%s/disk-eio", h_tmpdir());
    snprintf(spec, sizeof spec, "full_file=%s,eio_file=%s", full, eio);
    sf_set_fault_env(spec);
    h_broker_t *b = h_broker_start(NULL, "--durability", "full");
    sf_set_fault_env(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 10000);

    for (int i = 0; i < 20; i++)
        H_OK(submit_one(c, NULL));
    fault_window(c, full, "disk full (SQLITE_FULL)", h_broker_pid(b));
    fault_window(c, eio, "I/O error (SQLITE_IOERR_WRITE)", h_broker_pid(b));
    fault_window(c, full, "disk full again", h_broker_pid(b)); /* no leftovers */
    verify(c, false, "after the faults");

    h_worker_t *w = h_worker_start(ep, 2);
    (void)w;
    h_wait_for(drained, c, 120000, "every stored task finished");
    verify(c, true, "drained");

    h_broker_kill(b, SIGTERM);
    h_broker_restart(b);
    taskq_client_destroy(&c);
    c = h_client(ep, 10000);
    verify(c, true, "after a restart");
    char why[256];
    H_ASSERT(sf_integrity_ok(h_broker_db(b), why, sizeof why), "integrity_check: %s", why);
    sf_check_history(h_broker_db(b));
    taskq_client_destroy(&c);
    return 0;
}
