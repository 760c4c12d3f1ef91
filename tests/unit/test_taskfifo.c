/* test_taskfifo.c - the prefetch FIFO: order, capacity, wrap-around with
 * reused args buffers, lookup, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "taskfifo.h"

static taskq_id_t id_of(uint8_t seed)
{
    taskq_id_t id;
    for (int i = 0; i < 16; i++)
        id.b[i] = (uint8_t)(seed + i);
    return id;
}

static void test_taskfifo_keeps_order_and_capacity(void **state)
{
    (void)state;
    taskfifo_t *f = taskfifo_new(3);
    assert_int_equal(taskfifo_cap(f), 3);
    char args[64];
    /* 10 rounds through a ring of 3: every slot is reused, buffers grow */
    for (uint8_t round = 0; round < 10; round++) {
        for (uint8_t k = 0; k < 3; k++) {
            taskq_id_t id = id_of((uint8_t)(round * 3 + k));
            memset(args, 'a' + k, sizeof args);
            assert_int_equal(taskfifo_push(f, &id, k + 1u, "t.x", 3, args, (size_t)(k + 1) * 20,
                                           k * 100),
                             TASKQ_OK);
        }
        taskq_id_t extra = id_of(200);
        assert_int_equal(taskfifo_push(f, &extra, 1, "t.x", 3, NULL, 0, 0), TASKQ_EBUSY);
        assert_int_equal(taskfifo_count(f), 3);
        taskq_id_t mid = id_of((uint8_t)(round * 3 + 1));
        assert_true(taskfifo_has(f, &mid, 2));
        assert_false(taskfifo_has(f, &mid, 3));
        for (uint8_t k = 0; k < 3; k++) {
            const taskfifo_entry_t *e = taskfifo_at(f, 0);
            assert_non_null(e);
            taskq_id_t id = id_of((uint8_t)(round * 3 + k));
            assert_memory_equal(e->id.b, id.b, 16);
            assert_int_equal(e->attempt, k + 1u);
            assert_string_equal(e->name, "t.x");
            assert_int_equal(e->args_len, (k + 1) * 20);
            assert_int_equal(e->args[e->args_len - 1], 'a' + k);
            assert_int_equal(e->time_limit_ms, k * 100);
            taskfifo_pop(f);
        }
        assert_int_equal(taskfifo_count(f), 0);
        assert_null(taskfifo_at(f, 0));
        taskfifo_pop(f); /* no-op when empty */
    }
    taskfifo_destroy(&f);
    assert_null(f);
    taskfifo_destroy(&f);
}

static void test_taskfifo_rejects_over_limit(void **state)
{
    (void)state;
    taskfifo_t *f = taskfifo_new(2);
    taskq_id_t id = id_of(1);
    char name[TQ_NAME_MAX + 2];
    memset(name, 'n', sizeof name);
    assert_int_equal(taskfifo_push(f, &id, 1, name, TQ_NAME_MAX + 1, NULL, 0, 0), TASKQ_EINVAL);
    assert_int_equal(taskfifo_push(f, &id, 1, name, TQ_NAME_MAX, NULL, 0, 0), TASKQ_OK);
    assert_int_equal(strlen(taskfifo_at(f, 0)->name), TQ_NAME_MAX);
    assert_int_equal(taskfifo_count(f), 1);
    taskfifo_destroy(&f);
    /* capacity 0 (no slots at all) holds nothing */
    f = taskfifo_new(0);
    assert_int_equal(taskfifo_push(f, &id, 1, "t", 1, NULL, 0, 0), TASKQ_EBUSY);
    taskfifo_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taskfifo_keeps_order_and_capacity),
        cmocka_unit_test(test_taskfifo_rejects_over_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
