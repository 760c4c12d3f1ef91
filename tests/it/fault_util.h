/*
 * fault_util.h - small helpers shared by the it_fault_* tests (static, so
 * each test links only what it uses): reading the history, measuring
 * fault -> requeue latencies, running the checker (checker.h) at the end.
 */
#ifndef TASKQ_FAULT_UTIL_H
#define TASKQ_FAULT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "checker.h"
#include "harness.h"
#include "hevents.h"

static inline hevents_t *fu_load(void)
{
    const char *dir = h_history_dir();
    H_ASSERT(dir != NULL, "history is not enabled");
    hevents_t *h = hevents_load(dir);
    H_ASSERT(h != NULL, "cannot read history dir %s", dir);
    return h;
}

typedef struct {
    const char *ev, *role, *f0, *f1;
    int64_t after_us;
    size_t found;
} fu_evwait_t;

static inline bool fu_has_event(void *p)
{
    fu_evwait_t *a = p;
    hevents_t *h = fu_load();
    a->found = 0;
    for (size_t i = 0; i < h->n; i++) {
        const hev_t *e = &h->ev[i];
        if (e->us < a->after_us || strcmp(e->ev, a->ev) != 0)
            continue;
        if (a->role && strcmp(e->role, a->role) != 0)
            continue;
        if (a->f0 && (e->nf < 1 || strcmp(e->f[0], a->f0) != 0))
            continue;
        if (a->f1 && (e->nf < 2 || strcmp(e->f[1], a->f1) != 0))
            continue;
        a->found++;
    }
    hevents_destroy(&h);
    return a->found > 0;
}

/* Waits for an event (role/f0/f1 NULL = any) written at or after after_us. */
static inline void fu_wait_event(const char *role, const char *ev, const char *f0, const char *f1,
                          int64_t after_us, int64_t timeout_ms, const char *what)
{
    fu_evwait_t a = {ev, role, f0, f1, after_us, 0};
    h_wait_for(fu_has_event, &a, timeout_ms, what);
}

static inline int64_t fu_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Runs the at-least-once checker over the history and the final database
 * (read-only; the broker may still run); fails the test on any violation.
 * Prints the summary line and the violations; returns the summary. */
static inline checker_summary_t fu_check(const char *db)
{
    const char *dir = h_history_dir();
    H_ASSERT(dir != NULL, "history is not enabled");
    checker_t *ck = checker_new();
    H_ASSERT(ck != NULL, "checker_new");
    H_OK(checker_load_dir(ck, dir));
    H_OK(checker_load_db(ck, db));
    checker_summary_t s;
    memset(&s, 0, sizeof s);
    fflush(stderr);
    int v = checker_run(ck, stderr, &s);
    fflush(stderr);
    checker_destroy(&ck);
    H_ASSERT(v == 0 && s.lost == 0 && s.multi_terminal == 0 && s.stale_accepted == 0 &&
                 s.overlap == 0 && s.dup_unexplained == 0 && s.mismatch == 0 &&
                 s.unexpected == 0,
             "checker: %d violations (lost=%zu multi_terminal=%zu stale_accepted=%zu "
             "overlap=%zu dup_unexplained=%zu mismatch=%zu unexpected=%zu)",
             v, s.lost, s.multi_terminal, s.stale_accepted, s.overlap, s.dup_unexplained,
             s.mismatch, s.unexpected);
    H_ASSERT(s.acked > 0 && s.events > 0, "checker saw no history (acked=%zu events=%zu)",
             s.acked, s.events);
    h_log("checker ok: acked=%zu terminal=%zu dup_explained=%zu stale_rejected=%zu "
          "events=%zu files=%zu malformed=%zu",
          s.acked, s.terminal, s.dup_explained, s.stale_rejected, s.events, s.files,
          s.malformed);
    return s;
}


/* After a node came back (SIGCONT, healed partition) at since_us: each of
 * its n old tasks' late DONE (attempt 1) is refused as stale, the node says
 * HELLO again, and it takes work again. Returns how many of 4 x slots later
 * test.sleep [1] tasks ran on it (asserted > 0). `what` names the node's
 * comeback in messages ("resumed", "healed"). */
static inline int fu_node_rejoins(taskq_client_t *c, h_worker_t *w, const taskq_id_t *ids,
                                  int n, int slots, int64_t stale_since_us,
                                  int64_t hello_since_us, const char *what)
{
    char idb[TASKQ_ID_STRLEN + 1], msg[128];
    snprintf(msg, sizeof msg, "the %s node's late DONE is refused as stale", what);
    for (int i = 0; i < n; i++) {
        taskq_id_format(&ids[i], idb);
        fu_wait_event("broker", "stale", idb, "1", stale_since_us, 30000, msg);
    }
    snprintf(msg, sizeof msg, "the %s node says HELLO again", what);
    fu_wait_event("worker", "hello", h_worker_node_id(w), NULL, hello_since_us, 30000, msg);
    h_worker_wait_ready(c, h_worker_node_id(w), (size_t)slots, 20000);

    /* more tasks than the other node alone can hold at once */
    uint8_t a1[16];
    size_t a1len = h_args_int(a1, sizeof a1, 1);
    int nmore = 4 * slots, on_w = 0;
    taskq_id_t *more = calloc((size_t)nmore, sizeof *more);
    H_ASSERT(more, "out of memory");
    for (int i = 0; i < nmore; i++)
        h_submit(c, &more[i], "test.sleep", a1, a1len, 0, 0);
    for (int i = 0; i < nmore; i++) {
        taskq_task_t *t = NULL;
        H_OK(taskq_wait(c, &more[i], 30000, &t));
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "task ended %s", taskq_state_name(t->state));
        on_w += strcmp(t->worker, h_worker_node_id(w)) == 0;
        taskq_task_destroy(&t);
    }
    free(more);
    H_ASSERT(on_w > 0, "the %s node %s ran none of %d later tasks", what, h_worker_node_id(w),
             nmore);
    return on_w;
}

#endif
