/* test_pool.c - slot transitions (legal and illegal) and real children:
 * fork+exec of taskq-worker --child, a task round trip, a crash, STOP;
 * CANCEL frames (taskq_cancelled) and SIGTERM from the parent only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "pool.h"
#include "tclock.h"

static void test_pool_legal_transitions(void **state)
{
    (void)state;
    pool_t *p = pool_new(2, "/bin/false", NULL, 0);
    pool_slot_t *s = pool_slot(p, 0);
    assert_int_equal(s->state, POOL_DEAD);
    assert_int_equal(pool_on(s, POOL_EV_SPAWN), TASKQ_OK);
    assert_string_equal(pool_state_name(s->state), "starting");
    assert_int_equal(pool_on(s, POOL_EV_READY), TASKQ_OK);
    assert_string_equal(pool_state_name(s->state), "idle");
    s->has_task = true;
    assert_int_equal(pool_on(s, POOL_EV_ASSIGN), TASKQ_OK);
    assert_string_equal(pool_state_name(s->state), "busy");
    assert_true(s->has_task);
    assert_int_equal(pool_on(s, POOL_EV_DONE), TASKQ_OK);
    assert_false(s->has_task);
    assert_int_equal(pool_on(s, POOL_EV_STOP), TASKQ_OK);
    assert_string_equal(pool_state_name(s->state), "stopping");
    assert_int_equal(pool_on(s, POOL_EV_EXIT), TASKQ_OK);
    assert_string_equal(pool_state_name(s->state), "dead");
    assert_int_equal(pool_count(p, POOL_DEAD), 2);
    /* busy -> kill -> stopping drops the task */
    pool_on(s, POOL_EV_SPAWN);
    pool_on(s, POOL_EV_READY);
    s->has_task = true;
    pool_on(s, POOL_EV_ASSIGN);
    assert_int_equal(pool_on(s, POOL_EV_KILL), TASKQ_OK);
    assert_int_equal(s->state, POOL_STOPPING);
    assert_false(s->has_task);
    pool_destroy(&p);
    assert_null(p);
}

static void test_pool_illegal_transitions_are_refused(void **state)
{
    (void)state;
    pool_t *p = pool_new(1, "/bin/false", NULL, 0);
    pool_slot_t *s = pool_slot(p, 0);
    assert_int_equal(pool_on(s, POOL_EV_ASSIGN), TASKQ_EINTERNAL); /* dead */
    assert_int_equal(pool_on(s, POOL_EV_EXIT), TASKQ_EINTERNAL);
    assert_int_equal(s->state, POOL_DEAD);
    pool_on(s, POOL_EV_SPAWN);
    assert_int_equal(pool_on(s, POOL_EV_ASSIGN), TASKQ_EINTERNAL); /* starting */
    assert_int_equal(pool_on(s, POOL_EV_DONE), TASKQ_EINTERNAL);
    pool_on(s, POOL_EV_READY);
    assert_int_equal(pool_on(s, POOL_EV_READY), TASKQ_EINTERNAL);
    pool_on(s, POOL_EV_ASSIGN);
    assert_int_equal(pool_on(s, POOL_EV_STOP), TASKQ_EINTERNAL); /* busy: STOP after DONE */
    assert_int_equal(pool_on(s, POOL_EV_SPAWN), TASKQ_EINTERNAL);
    assert_int_equal(s->state, POOL_BUSY);
    assert_int_equal(pool_on(s, (pool_event_t)42), TASKQ_EINTERNAL);
    pool_destroy(&p);
}

static void test_pool_describes_status(void **state)
{
    (void)state;
    char buf[128];
    pool_describe_status(SIGKILL, buf, sizeof buf); /* WIFSIGNALED encoding */
    assert_string_equal(buf, "killed by signal 9 (SIGKILL)");
    pool_describe_status(3 << 8, buf, sizeof buf);
    assert_string_equal(buf, "exited with status 3");
}

/* Waits (poll with a deadline) for the next frame from a child. */
static taskq_err_t wait_frame(chan_t *ch, chan_frame_t *f, int64_t timeout_ms)
{
    int64_t deadline = tclock_mono_ms() + timeout_ms;
    for (;;) {
        bool got;
        taskq_err_t rc = chan_next(ch, f, &got);
        if (rc != TASKQ_OK || got)
            return rc;
        int64_t left = deadline - tclock_mono_ms();
        if (left <= 0)
            return TASKQ_ETIMEDOUT;
        struct pollfd pfd = {chan_fd(ch), POLLIN, 0};
        poll(&pfd, 1, (int)left);
        rc = chan_read(ch);
        if (rc != TASKQ_OK)
            return rc;
    }
}

typedef struct {
    pid_t pid;
    int status;
    int calls;
} reaped_t;

static void on_reap(void *arg, pool_slot_t *slot, pid_t pid, int status)
{
    reaped_t *r = arg;
    assert_non_null(slot);
    r->pid = pid;
    r->status = status;
    r->calls++;
}

static void reap_with_deadline(pool_t *p, reaped_t *r, int64_t timeout_ms)
{
    int64_t deadline = tclock_mono_ms() + timeout_ms;
    while (r->calls == 0 && tclock_mono_ms() < deadline) {
        pool_reap(p, on_reap, r);
        if (r->calls == 0)
            poll(NULL, 0, 10); /* polling a condition with a deadline */
    }
    assert_int_equal(r->calls, 1);
}

static void test_pool_real_child_runs_task_crashes_and_stops(void **state)
{
    (void)state;
    const char *mods[] = {TESTTASKS_PATH};
    pool_t *p = pool_new(1, WORKER_EXE, mods, 1);
    pool_slot_t *s = pool_slot(p, 0);
    assert_int_equal(pool_spawn(p, s), TASKQ_OK);
    assert_int_equal(s->state, POOL_STARTING);
    chan_t *ch = chan_new(s->fd, false);
    chan_frame_t f;
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_READY);
    assert_int_equal(f.pid, s->pid);
    pool_on(s, POOL_EV_READY);

    taskq_id_t id = {{9}};
    const uint8_t args[] = {0x91, 0x0a};
    chan_frame_t t = {.kind = CHAN_TASK, .id = id, .attempt = 1, .name = "taskq.sumsq",
                      .name_len = 11, .data = args, .data_len = 2};
    assert_int_equal(chan_send(ch, &t), TASKQ_OK);
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_DONE);
    assert_true(f.ok);
    assert_int_equal(f.data_len, 3);
    assert_memory_equal(f.data, "\xcd\x01\x1d", 3);

    t.name = "no.such";
    t.name_len = 7;
    assert_int_equal(chan_send(ch, &t), TASKQ_OK);
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_DONE);
    assert_false(f.ok);
    assert_memory_equal(f.data, "unknown task 'no.such'", f.data_len);

    t.name = "test.crash";
    t.name_len = 10;
    t.data = "\x91\xa4segv";
    t.data_len = 6;
    assert_int_equal(chan_send(ch, &t), TASKQ_OK);
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_ECLOSED);
    reaped_t r = {0};
    pid_t pid = s->pid;
    reap_with_deadline(p, &r, 10000);
    assert_int_equal(r.pid, pid);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGSEGV);
    assert_int_equal(s->state, POOL_DEAD);
    chan_destroy(&ch);

    /* a fresh child in the same slot leaves cleanly on STOP */
    assert_int_equal(pool_spawn(p, s), TASKQ_OK);
    ch = chan_new(s->fd, false);
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_READY);
    pool_on(s, POOL_EV_READY);
    chan_frame_t stop = {.kind = CHAN_STOP};
    assert_int_equal(chan_send(ch, &stop), TASKQ_OK);
    assert_int_equal(pool_on(s, POOL_EV_STOP), TASKQ_OK);
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_ECLOSED);
    memset(&r, 0, sizeof r);
    reap_with_deadline(p, &r, 10000);
    assert_true(WIFEXITED(r.status));
    assert_int_equal(WEXITSTATUS(r.status), 0);
    chan_destroy(&ch);
    pool_destroy(&p);
}

/* Spawns a child into slot s and waits for its READY. */
static chan_t *start_child(pool_t *p, pool_slot_t *s)
{
    assert_int_equal(pool_spawn(p, s), TASKQ_OK);
    chan_t *ch = chan_new(s->fd, false);
    chan_frame_t f;
    assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
    assert_int_equal(f.kind, CHAN_READY);
    pool_on(s, POOL_EV_READY);
    return ch;
}

static void send_task(chan_t *ch, const taskq_id_t *id, uint32_t attempt, const char *name,
                      const void *args, size_t args_len)
{
    chan_frame_t t = {.kind = CHAN_TASK, .id = *id, .attempt = attempt, .name = name,
                      .name_len = (uint32_t)strlen(name), .data = args,
                      .data_len = (uint32_t)args_len};
    assert_int_equal(chan_send(ch, &t), TASKQ_OK);
}

static void send_cancel(chan_t *ch, const taskq_id_t *id, uint32_t attempt)
{
    chan_frame_t c = {.kind = CHAN_CANCEL, .id = *id, .attempt = attempt};
    assert_int_equal(chan_send(ch, &c), TASKQ_OK);
}

/* Waits for the DONE of (id, attempt), skipping PROGRESS/POLICY frames. */
static void expect_done(chan_t *ch, const taskq_id_t *id, uint32_t attempt, const void *result,
                        size_t len)
{
    chan_frame_t f;
    for (;;) {
        assert_int_equal(wait_frame(ch, &f, 10000), TASKQ_OK);
        if (f.kind == CHAN_DONE)
            break;
        assert_true(f.kind == CHAN_PROGRESS || f.kind == CHAN_POLICY);
    }
    assert_memory_equal(f.id.b, id->b, 16);
    assert_int_equal(f.attempt, attempt);
    assert_true(f.ok);
    assert_int_equal(f.data_len, len);
    assert_memory_equal(f.data, result, len);
}

static void test_pool_real_child_cancel_and_sigterm(void **state)
{
    (void)state;
    const char *mods[] = {TESTTASKS_PATH};
    pool_t *p = pool_new(1, WORKER_EXE, mods, 1);
    pool_slot_t *s = pool_slot(p, 0);
    chan_t *ch = start_child(p, s);
    taskq_id_t id = {{0x11}}, other = {{0x22}};
    const uint8_t ten[] = {0x91, 0x0a};       /* [10] */
    const uint8_t short_sleep[] = {0x91, 0xcb, 0x3f, 0xd3, 0x33, 0x33, 0x33, 0x33, 0x33, 0x33};
    /* [0.3] */

    /* a CANCEL for the running attempt: taskq_cancelled turns 1 at once */
    int64_t t0 = tclock_mono_ms();
    send_task(ch, &id, 4, "test.sleep_cancel", ten, sizeof ten);
    poll(NULL, 0, 50);
    send_cancel(ch, &id, 4);
    expect_done(ch, &id, 4, "\xa9" "cancelled", 10);
    assert_true(tclock_mono_ms() - t0 < 5000);

    /* stale CANCELs (another attempt, another id) change nothing: neither
     * while idle nor while a task runs */
    send_cancel(ch, &id, 3);
    send_task(ch, &id, 5, "test.sleep_cancel", short_sleep, sizeof short_sleep);
    send_cancel(ch, &id, 4);
    send_cancel(ch, &other, 5);
    expect_done(ch, &id, 5, short_sleep + 1, 9);

    /* SIGTERM from a process other than the supervisor: ignored */
    send_task(ch, &id, 6, "test.sleep", short_sleep, sizeof short_sleep);
    poll(NULL, 0, 50);
    pid_t helper = fork();
    assert_true(helper >= 0);
    if (helper == 0) {
        kill(s->pid, SIGTERM);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(helper, &st, 0), helper);
    expect_done(ch, &id, 6, short_sleep + 1, 9);

    /* a task that ignores SIGTERM outlives the supervisor's SIGTERM ... */
    send_task(ch, &id, 7, "test.ignore_term", short_sleep, sizeof short_sleep);
    poll(NULL, 0, 100);
    pool_kill(s, SIGTERM);
    expect_done(ch, &id, 7, short_sleep + 1, 9);

    /* ... and restores the child's disposition: the supervisor's SIGTERM
     * now kills the child running an ordinary task */
    send_task(ch, &id, 8, "test.sleep", ten, sizeof ten);
    poll(NULL, 0, 50);
    pid_t pid = s->pid;
    pool_kill(s, SIGTERM);
    chan_frame_t f;
    taskq_err_t rc;
    while ((rc = wait_frame(ch, &f, 10000)) == TASKQ_OK)
        assert_int_equal(f.kind, CHAN_PROGRESS);
    assert_int_equal(rc, TASKQ_ECLOSED);
    reaped_t r = {0};
    reap_with_deadline(p, &r, 10000);
    assert_int_equal(r.pid, pid);
    assert_true(WIFSIGNALED(r.status));
    assert_int_equal(WTERMSIG(r.status), SIGTERM);
    chan_destroy(&ch);
    pool_destroy(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_legal_transitions),
        cmocka_unit_test(test_pool_illegal_transitions_are_refused),
        cmocka_unit_test(test_pool_describes_status),
        cmocka_unit_test(test_pool_real_child_runs_task_crashes_and_stops),
        cmocka_unit_test(test_pool_real_child_cancel_and_sigterm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
