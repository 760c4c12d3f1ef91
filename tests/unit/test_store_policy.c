/* test_store_policy.c - the store's dispatch-policy objects: queues
 * (settings, "default" always present, created on first insert), limits
 * (upsert, bucket state, removal) and schedules (insert / EEXIST / replace,
 * pause, advance, removal), each surviving a reopen and undone by a
 * rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"
#include "store_fx.h"

static int setup(void **state)
{
    return fx_setup(state, "test_store_policy", STORE_DURABILITY_NORMAL, true);
}

static int teardown(void **state)
{
    return fx_teardown(state);
}

/* ---- queues ---------------------------------------------------------------- */

typedef struct {
    int n;
    char name[8][16];
    bool paused[8];
    uint64_t max_pending[8];
} queues_t;

static void on_queue(const store_queue_t *q, void *arg)
{
    queues_t *r = arg;
    snprintf(r->name[r->n], sizeof r->name[0], "%s", q->name);
    r->paused[r->n] = q->paused;
    r->max_pending[r->n] = q->max_pending;
    r->n++;
}

static void list_queues(store_t *s, queues_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(store_queue_list(s, on_queue, r), TASKQ_OK);
}

static void test_queues(void **state)
{
    fx_t *fx = *state;
    queues_t r;
    list_queues(fx->s, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.name[0], "default");
    assert_false(r.paused[0]);
    assert_int_equal(r.max_pending[0], 0);

    bool created = false;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_queue_ensure(fx->s, "media", &created), TASKQ_OK);
    assert_true(created);
    assert_int_equal(store_queue_ensure(fx->s, "media", &created), TASKQ_OK);
    assert_false(created);
    assert_int_equal(store_queue_ensure(fx->s, "default", &created), TASKQ_OK);
    assert_false(created);
    store_queue_t q = {"critical", true, 100};
    assert_int_equal(store_queue_set(fx->s, &q), TASKQ_OK); /* insert */
    store_queue_t m = {"media", false, 7};
    assert_int_equal(store_queue_set(fx->s, &m), TASKQ_OK); /* update */
    /* a task in a new queue creates it */
    store_new_task_t t;
    memset(&t, 0, sizeof t);
    t.id.b[0] = 1;
    t.name = proto_str("x");
    t.queue = proto_str("bulk");
    t.priority = 5;
    t.policy.jitter = -1;
    bool inserted = false;
    assert_int_equal(store_insert_task(fx->s, &t, &inserted), TASKQ_OK);
    assert_true(inserted);
    assert_int_equal(store_queue_ensure(fx->s, "bulk", &created), TASKQ_OK);
    assert_false(created);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    fx_reopen(fx);
    list_queues(fx->s, &r);
    assert_int_equal(r.n, 4);
    const char *names[] = {"bulk", "critical", "default", "media"};
    for (int i = 0; i < 4; i++)
        assert_string_equal(r.name[i], names[i]);
    assert_true(r.paused[1]);
    assert_int_equal(r.max_pending[1], 100);
    assert_false(r.paused[3]);
    assert_int_equal(r.max_pending[3], 7);

    /* rolled back: neither the setting nor the new queue stays */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_queue_t unpause = {"critical", false, 0};
    assert_int_equal(store_queue_set(fx->s, &unpause), TASKQ_OK);
    assert_int_equal(store_queue_ensure(fx->s, "zzz", &created), TASKQ_OK);
    assert_true(created);
    store_rollback(fx->s);
    list_queues(fx->s, &r);
    assert_int_equal(r.n, 4);
    assert_true(r.paused[1]);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_queue_ensure(fx->s, "zzz", &created), TASKQ_OK);
    assert_true(created);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
}

/* ---- limits ---------------------------------------------------------------- */

typedef struct {
    int n;
    char key[4][32];
    store_limit_t l[4];
} limits_t;

static void on_limit(const store_limit_t *l, void *arg)
{
    limits_t *r = arg;
    snprintf(r->key[r->n], sizeof r->key[0], "%s", l->key);
    r->l[r->n] = *l;
    r->l[r->n].key = r->key[r->n];
    r->n++;
}

static void list_limits(store_t *s, limits_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(store_limit_list(s, on_limit, r), TASKQ_OK);
}

static void test_limits(void **state)
{
    fx_t *fx = *state;
    limits_t r;
    list_limits(fx->s, &r);
    assert_int_equal(r.n, 0);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_limit_t a = {"task:img.resize", 10.0, 20, 4, 20.0, 1000, 0};
    store_limit_t b = {"queue:media", 0.5, 1, 0, 1.0, 1000, 0};
    assert_int_equal(store_limit_put(fx->s, &a), TASKQ_OK);
    assert_int_equal(store_limit_put(fx->s, &b), TASKQ_OK);
    a.rate = 2.5;
    a.max_running = 3;
    assert_int_equal(store_limit_put(fx->s, &a), TASKQ_OK); /* upsert */
    assert_int_equal(store_limit_save_bucket(fx->s, "queue:media", 0.25, 2000, 5000), TASKQ_OK);
    assert_int_equal(store_limit_save_bucket(fx->s, "task:nope", 1, 1, 1), TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    fx_reopen(fx);
    list_limits(fx->s, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.key[0], "queue:media");
    assert_true(r.l[0].rate == 0.5);
    assert_int_equal(r.l[0].burst, 1);
    assert_int_equal(r.l[0].max_running, 0);
    assert_true(r.l[0].tokens == 0.25);
    assert_int_equal(r.l[0].tokens_at, 2000);
    assert_int_equal(r.l[0].paused_until, 5000);
    assert_string_equal(r.key[1], "task:img.resize");
    assert_true(r.l[1].rate == 2.5);
    assert_int_equal(r.l[1].burst, 20);
    assert_int_equal(r.l[1].max_running, 3);
    assert_true(r.l[1].tokens == 20.0);

    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_limit_rm(fx->s, "queue:media"), TASKQ_OK);
    assert_int_equal(store_limit_rm(fx->s, "queue:media"), TASKQ_ENOTFOUND);
    store_rollback(fx->s);
    list_limits(fx->s, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_limit_rm(fx->s, "queue:media"), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    list_limits(fx->s, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.key[0], "task:img.resize");
}

/* ---- schedules ------------------------------------------------------------- */

typedef struct {
    int n;
    char name[4][32], cron[4][32], task[4][32], queue[4][16], tz[4][32];
    uint8_t args[4][8];
    size_t args_len[4];
    store_schedule_t s[4];
} scheds_t;

static void on_sched(const store_schedule_t *s, void *arg)
{
    scheds_t *r = arg;
    int i = r->n++;
    r->s[i] = *s;
    snprintf(r->name[i], sizeof r->name[0], "%s", s->name);
    snprintf(r->cron[i], sizeof r->cron[0], "%s", s->cron);
    snprintf(r->task[i], sizeof r->task[0], "%s", s->task);
    snprintf(r->queue[i], sizeof r->queue[0], "%s", s->queue);
    snprintf(r->tz[i], sizeof r->tz[0], "%s", s->tz);
    r->args_len[i] = s->args.len < 8 ? s->args.len : 8;
    memcpy(r->args[i], s->args.ptr, r->args_len[i]);
}

static void list_scheds(store_t *s, scheds_t *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(store_schedule_list(s, on_sched, r), TASKQ_OK);
}

static store_schedule_t sched(const char *name, const char *cron)
{
    store_schedule_t s;
    memset(&s, 0, sizeof s);
    s.name = name;
    s.cron = cron;
    s.task = "report.daily";
    s.queue = "reports";
    s.tz = "Europe/Paris";
    s.args.ptr = (const uint8_t *)"\x92\x01\x02";
    s.args.len = 3;
    s.priority = -1;
    s.max_attempts = 2;
    s.overlap = 0;
    s.catchup = 1;
    s.next_at = 6000;
    s.created_at = 100;
    return s;
}

static void test_schedules(void **state)
{
    fx_t *fx = *state;
    scheds_t r;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    store_schedule_t a = sched("morning", "0 6 * * *");
    store_schedule_t b = sched("every", "@every 30s");
    b.queue = NULL; /* "" */
    b.tz = NULL;
    b.args.len = 0;
    b.priority = 9;
    b.overlap = 1;
    b.catchup = 2;
    assert_int_equal(store_schedule_put(fx->s, &a, false), TASKQ_OK);
    assert_int_equal(store_schedule_put(fx->s, &b, false), TASKQ_OK);
    store_schedule_t a2 = sched("morning", "0 7 * * *");
    assert_int_equal(store_schedule_put(fx->s, &a2, false), TASKQ_EEXIST);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);

    fx_reopen(fx);
    list_scheds(fx->s, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.name[0], "every");
    assert_string_equal(r.queue[0], "");
    assert_string_equal(r.tz[0], "");
    assert_int_equal(r.args_len[0], 1);
    assert_int_equal(r.args[0][0], 0x90); /* no args = [] */
    assert_int_equal(r.s[0].priority, 9);
    assert_int_equal(r.s[0].overlap, 1);
    assert_int_equal(r.s[0].catchup, 2);
    assert_string_equal(r.name[1], "morning");
    assert_string_equal(r.cron[1], "0 6 * * *");
    assert_string_equal(r.task[1], "report.daily");
    assert_string_equal(r.queue[1], "reports");
    assert_string_equal(r.tz[1], "Europe/Paris");
    assert_int_equal(r.args_len[1], 3);
    assert_memory_equal(r.args[1], "\x92\x01\x02", 3);
    assert_int_equal(r.s[1].priority, -1);
    assert_int_equal(r.s[1].max_attempts, 2);
    assert_int_equal(r.s[1].overlap, 0);
    assert_int_equal(r.s[1].catchup, 1);
    assert_false(r.s[1].paused);
    assert_int_equal(r.s[1].next_at, 6000);
    assert_int_equal(r.s[1].last_fire_at, 0);
    taskq_id_t zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(r.s[1].last_task_id.b, zero.b, 16); /* never fired */
    assert_int_equal(r.s[1].fires, 0);
    assert_int_equal(r.s[1].skipped, 0);
    assert_int_equal(r.s[1].created_at, 100);

    /* a fire, then a skip: counters add up, the last task stays */
    taskq_id_t fired;
    memset(&fired, 0, sizeof fired);
    fired.b[0] = 0xab;
    fired.b[15] = 0xcd;
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_schedule_advance(fx->s, "morning", 7000, 6000, &fired, 1, 0), TASKQ_OK);
    assert_int_equal(store_schedule_advance(fx->s, "morning", 8000, 0, NULL, 0, 2), TASKQ_OK);
    assert_int_equal(store_schedule_advance(fx->s, "nope", 8000, 0, NULL, 0, 1), TASKQ_ENOTFOUND);
    assert_int_equal(store_schedule_set_paused(fx->s, "morning", true), TASKQ_OK);
    assert_int_equal(store_schedule_set_paused(fx->s, "nope", true), TASKQ_ENOTFOUND);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    list_scheds(fx->s, &r);
    assert_int_equal(r.s[1].next_at, 8000);
    assert_int_equal(r.s[1].last_fire_at, 6000);
    assert_memory_equal(r.s[1].last_task_id.b, fired.b, 16);
    assert_int_equal(r.s[1].fires, 1);
    assert_int_equal(r.s[1].skipped, 2);
    assert_true(r.s[1].paused);

    /* replace: the new definition wins, whole */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    a2.fires = 1;
    a2.last_task_id = fired;
    a2.last_fire_at = 6000;
    assert_int_equal(store_schedule_put(fx->s, &a2, true), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    list_scheds(fx->s, &r);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.cron[1], "0 7 * * *");
    assert_false(r.s[1].paused);
    assert_int_equal(r.s[1].fires, 1);
    assert_int_equal(r.s[1].skipped, 0);
    assert_memory_equal(r.s[1].last_task_id.b, fired.b, 16);

    /* removal, undone by a rollback, then for real */
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_schedule_rm(fx->s, "every"), TASKQ_OK);
    assert_int_equal(store_schedule_rm(fx->s, "every"), TASKQ_ENOTFOUND);
    store_rollback(fx->s);
    list_scheds(fx->s, &r);
    assert_int_equal(r.n, 2);
    assert_int_equal(store_begin(fx->s), TASKQ_OK);
    assert_int_equal(store_schedule_rm(fx->s, "every"), TASKQ_OK);
    assert_int_equal(store_commit(fx->s), TASKQ_OK);
    list_scheds(fx->s, &r);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.name[0], "morning");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_queues),
        T(test_limits),
        T(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
