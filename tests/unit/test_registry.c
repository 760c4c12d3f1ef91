/* test_registry.c - worker nodes by identity and node id; waiters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry.h"
#include "waiters.h"

static void test_registry_reconnect_replaces_session(void **state)
{
    (void)state;
    registry_t *r = registry_new();
    bool existed = true;
    registry_node_t *n = registry_hello(r, "id-1", 4, "node-a", &existed);
    assert_false(existed);
    registry_add_credit(n, 5);
    assert_ptr_equal(registry_find_identity(r, "id-1", 4), n);
    assert_ptr_equal(registry_find_node(r, "node-a"), n);
    registry_node_t *m = registry_hello(r, "id-2", 4, "node-a", &existed);
    assert_true(existed);
    assert_ptr_equal(m, n);
    assert_int_equal(m->credit, 0); /* HELLO resets credit */
    assert_null(registry_find_identity(r, "id-1", 4));
    assert_ptr_equal(registry_find_identity(r, "id-2", 4), m);
    assert_int_equal(registry_count(r), 1);
    registry_add_credit(m, TQ_CREDIT_MAX);
    registry_add_credit(m, 10);
    assert_int_equal(m->credit, TQ_CREDIT_MAX);
    registry_remove(r, &m);
    assert_null(m);
    assert_null(registry_find_node(r, "node-a"));
    assert_int_equal(registry_count(r), 0);
    registry_destroy(&r);
    assert_null(r);
}

static void test_registry_children_are_copied(void **state)
{
    (void)state;
    registry_t *r = registry_new();
    bool existed;
    registry_node_t *n = registry_hello(r, "x", 1, "node-b", &existed);
    char buf[32];
    strcpy(buf, "busyXXXX");
    proto_child_t c[2];
    memset(c, 0, sizeof c);
    c[0].pid = 10;
    c[0].state.ptr = buf;
    c[0].state.len = 4;
    c[0].task_name = proto_str("taskq.echo");
    c[1].pid = 11;
    c[1].state = proto_str("idle");
    registry_set_children(n, c, 2);
    memset(buf, 0, sizeof buf); /* the message buffer goes away */
    assert_string_equal(n->children[0].state, "busy");
    assert_string_equal(n->children[0].task_name, "taskq.echo");
    assert_string_equal(n->children[1].state, "idle");
    registry_hello(r, "y", 1, "node-c", &existed);
    assert_int_equal(registry_children_total(r), 2);
    size_t cur = 0, k = 0;
    while (registry_next(r, &cur))
        k++;
    assert_int_equal(k, 2);
    registry_set_children(n, c, 1);
    assert_int_equal(n->nchildren, 1);
    registry_destroy(&r);
}

static int g_taken;
static void count_taken(const taskq_id_t *id, const void *identity, size_t len, uint64_t req,
                        bool batch, void *arg)
{
    (void)id, (void)identity, (void)len, (void)req, (void)batch, (void)arg;
    g_taken++;
}

static void test_waiters_dedupe_cap_expire(void **state)
{
    (void)state;
    waiters_t *w = waiters_new(3);
    taskq_id_t a = {{1}}, b = {{2}};
    assert_int_equal(waiters_add(w, &a, "p1", 2, 7, 100, false), TASKQ_OK);
    assert_int_equal(waiters_add(w, &a, "p1", 2, 7, 200, false), TASKQ_OK); /* repeat */
    assert_int_equal(waiters_count(w), 1);
    assert_int_equal(waiters_add(w, &a, "p2", 2, 7, 100, false), TASKQ_OK);
    assert_int_equal(waiters_add(w, &b, "p1", 2, 8, 100, false), TASKQ_OK);
    assert_int_equal(waiters_add(w, &b, "p1", 2, 9, 100, false), TASKQ_EBUSY);
    assert_int_equal(waiters_expire(w, 150), 2); /* p2/a and p1/b; p1/a extended */
    assert_int_equal(waiters_count(w), 1);
    g_taken = 0;
    assert_int_equal(waiters_take(w, &a, count_taken, NULL), 1);
    assert_int_equal(g_taken, 1);
    assert_int_equal(waiters_take(w, &a, count_taken, NULL), 0);
    assert_int_equal(waiters_add(w, &b, "p3", 2, 1, 100, false), TASKQ_OK);
    waiters_destroy(&w); /* frees what is left */
    assert_null(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_reconnect_replaces_session),
        cmocka_unit_test(test_registry_children_are_copied),
        cmocka_unit_test(test_waiters_dedupe_cap_expire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
