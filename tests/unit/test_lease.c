/* test_lease.c - lease table with a fake clock: grant, check, stale, renew,
 * expiry order, per-node iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"

static taskq_id_t tid(uint8_t n)
{
    taskq_id_t id;
    memset(id.b, 0, sizeof id.b);
    id.b[0] = 1;
    id.b[15] = n;
    return id;
}

typedef struct {
    int n;
    taskq_id_t ids[16];
    uint32_t attempts[16];
} seen_t;

static void collect(const lease_t *l, void *arg)
{
    seen_t *s = arg;
    s->ids[s->n] = l->id;
    s->attempts[s->n] = l->attempt;
    s->n++;
}

static void test_lease_rejects_stale_attempt(void **state)
{
    (void)state;
    lease_table_t *t = lease_table_new();
    taskq_id_t a = tid(1);
    lease_grant(t, &a, 1, "n1", "t.x", "default", 1000);
    assert_int_equal(lease_check(t, &a, 1, "n1"), TASKQ_OK);
    assert_int_equal(lease_check(t, &a, 1, NULL), TASKQ_OK);
    assert_int_equal(lease_check(t, &a, 2, "n1"), TASKQ_ESTALE);
    assert_int_equal(lease_check(t, &a, 1, "n2"), TASKQ_ESTALE);
    lease_grant(t, &a, 2, "n2", "t.x", "default", 2000); /* re-dispatch replaces */
    assert_int_equal(lease_check(t, &a, 1, NULL), TASKQ_ESTALE);
    assert_int_equal(lease_node_count(t, "n1"), 0);
    assert_int_equal(lease_node_count(t, "n2"), 1);
    assert_int_equal(lease_release(t, &a), TASKQ_OK);
    assert_int_equal(lease_release(t, &a), TASKQ_ENOTFOUND);
    assert_int_equal(lease_check(t, &a, 2, NULL), TASKQ_ESTALE);
    assert_int_equal(lease_count(t), 0);
    lease_table_destroy(&t);
    assert_null(t);
}

static void test_lease_expires_in_deadline_order_and_renew_postpones(void **state)
{
    (void)state;
    lease_table_t *t = lease_table_new();
    taskq_id_t a = tid(1), b = tid(2), c = tid(3);
    lease_grant(t, &a, 1, "n1", "t.x", "default", 300);
    lease_grant(t, &b, 1, "n1", "t.x", "default", 100);
    lease_grant(t, &c, 4, "n2", "t.x", "default", 200);
    seen_t s = {0};
    assert_int_equal(lease_expire(t, 50, collect, &s), 50);
    assert_int_equal(s.n, 0);
    assert_int_equal(lease_renew(t, &b, 1, "n1", 1000), TASKQ_OK);
    assert_int_equal(lease_renew(t, &b, 2, "n1", 1000), TASKQ_ESTALE);
    assert_int_equal(lease_expire(t, 250, collect, &s), 50); /* next: a at 300 */
    assert_int_equal(s.n, 1);
    assert_memory_equal(s.ids[0].b, c.b, 16);
    assert_int_equal(s.attempts[0], 4);
    assert_int_equal(lease_expire(t, 5000, collect, &s), -1);
    assert_int_equal(s.n, 3);
    assert_memory_equal(s.ids[1].b, a.b, 16);
    assert_memory_equal(s.ids[2].b, b.b, 16);
    assert_int_equal(lease_count(t), 0);
    lease_table_destroy(&t);
}

static void release_cb(const lease_t *l, void *arg)
{
    lease_table_t *t = arg;
    assert_int_equal(lease_release(t, &l->id), TASKQ_OK);
}

static void test_lease_foreach_node_allows_release(void **state)
{
    (void)state;
    lease_table_t *t = lease_table_new();
    for (uint8_t i = 0; i < 10; i++) {
        taskq_id_t id = tid(i);
        lease_grant(t, &id, 1, i % 2 ? "odd" : "even", "t.x", "default", 100 + i);
    }
    assert_int_equal(lease_node_count(t, "odd"), 5);
    lease_foreach_node(t, "odd", release_cb, t);
    assert_int_equal(lease_node_count(t, "odd"), 0);
    assert_int_equal(lease_count(t), 5);
    seen_t s = {0};
    lease_expire(t, 1000, collect, &s);
    assert_int_equal(s.n, 5);
    lease_table_destroy(&t);
}

static void test_lease_many_renewals_stay_bounded(void **state)
{
    (void)state;
    lease_table_t *t = lease_table_new();
    taskq_id_t a = tid(7);
    lease_grant(t, &a, 1, "n", "t.x", "default", 10);
    for (int64_t now = 0; now < 100000; now++)
        assert_int_equal(lease_renew(t, &a, 1, "n", now + 10), TASKQ_OK);
    assert_int_equal(lease_expire(t, 100000, NULL, NULL), 9);
    assert_int_equal(lease_count(t), 1);
    lease_table_destroy(&t);
}

/* A lease is the permit of its limit keys: counted while held, freed when
 * released or expired, moved when the same id is granted again. */
static void test_lease_key_counts_follow_leases(void **state)
{
    (void)state;
    lease_table_t *t = lease_table_new();
    taskq_id_t a = tid(1), b = tid(2);
    lease_grant(t, &a, 1, "n1", "img.resize", "media", 100);
    lease_grant(t, &b, 1, "n2", "img.resize", "default", 200);
    assert_int_equal(lease_key_count(t, "task:img.resize"), 2);
    assert_int_equal(lease_key_count(t, "queue:media"), 1);
    assert_int_equal(lease_key_count(t, "queue:default"), 1);
    lease_grant(t, &a, 2, "n1", "mail.send", "media", 300);
    assert_int_equal(lease_key_count(t, "task:img.resize"), 1);
    assert_int_equal(lease_key_count(t, "task:mail.send"), 1);
    assert_int_equal(lease_release(t, &b), TASKQ_OK);
    assert_int_equal(lease_key_count(t, "task:img.resize"), 0);
    assert_int_equal(lease_key_count(t, "queue:default"), 0);
    lease_expire(t, 1000, NULL, NULL);
    assert_int_equal(lease_key_count(t, "task:mail.send"), 0);
    assert_int_equal(lease_key_count(t, "queue:media"), 0);
    lease_table_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_key_counts_follow_leases),
        cmocka_unit_test(test_lease_rejects_stale_attempt),
        cmocka_unit_test(test_lease_expires_in_deadline_order_and_renew_postpones),
        cmocka_unit_test(test_lease_foreach_node_allows_release),
        cmocka_unit_test(test_lease_many_renewals_stay_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
