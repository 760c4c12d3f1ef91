/* test_taskfifo.c - the prefetch FIFO: order, capacity, wrap-around with
 * reused args buffers, lookup, limits, removal of a revoked entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
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

/* Pushes seed s with args of (s + 1) * 10 bytes of 'A' + s. */
static void push_seed(taskfifo_t *f, uint8_t s)
{
    char args[256];
    taskq_id_t id = id_of(s);
    memset(args, 'A' + s, sizeof args);
    assert_int_equal(taskfifo_push(f, &id, s, "t.r", 3, args, (size_t)(s + 1) * 10, s), TASKQ_OK);
}

static void expect_seeds(taskfifo_t *f, const uint8_t *seeds, size_t n)
{
    assert_int_equal(taskfifo_count(f), n);
    for (size_t i = 0; i < n; i++) {
        const taskfifo_entry_t *e = taskfifo_at(f, i);
        assert_non_null(e);
        taskq_id_t id = id_of(seeds[i]);
        assert_memory_equal(e->id.b, id.b, 16);
        assert_int_equal(e->attempt, seeds[i]);
        assert_int_equal(e->args_len, (seeds[i] + 1) * 10);
        assert_int_equal(e->args[0], 'A' + seeds[i]);
        assert_int_equal(e->args[e->args_len - 1], 'A' + seeds[i]);
        assert_int_equal(e->time_limit_ms, seeds[i]);
    }
}

static void test_taskfifo_remove_keeps_order_and_buffers(void **state)
{
    (void)state;
    taskfifo_t *f = taskfifo_new(4);
    /* wrap the ring first, so removal crosses the end of the array */
    push_seed(f, 0);
    push_seed(f, 1);
    taskfifo_pop(f);
    taskfifo_pop(f);
    for (uint8_t s = 1; s <= 4; s++)
        push_seed(f, s);
    taskq_id_t id = id_of(3);
    assert_false(taskfifo_remove(f, &id, 4)); /* right id, other attempt */
    id = id_of(9);
    assert_false(taskfifo_remove(f, &id, 9));
    id = id_of(3);
    assert_true(taskfifo_remove(f, &id, 3)); /* middle */
    assert_false(taskfifo_has(f, &id, 3));
    assert_false(taskfifo_remove(f, &id, 3)); /* only once */
    expect_seeds(f, (const uint8_t[]){1, 2, 4}, 3);
    id = id_of(1);
    assert_true(taskfifo_remove(f, &id, 1)); /* head */
    expect_seeds(f, (const uint8_t[]){2, 4}, 2);
    id = id_of(4);
    assert_true(taskfifo_remove(f, &id, 4)); /* tail */
    expect_seeds(f, (const uint8_t[]){2}, 1);
    /* the freed slots take new entries (their buffers reused, none lost:
     * ASan/LSan would see a leak or a double free) */
    push_seed(f, 5);
    push_seed(f, 6);
    push_seed(f, 7);
    expect_seeds(f, (const uint8_t[]){2, 5, 6, 7}, 4);
    id = id_of(7);
    assert_true(taskfifo_remove(f, &id, 7));
    push_seed(f, 8);
    expect_seeds(f, (const uint8_t[]){2, 5, 6, 8}, 4);
    while (taskfifo_count(f) > 0) {
        const taskfifo_entry_t *e = taskfifo_at(f, 0);
        id = e->id;
        assert_true(taskfifo_remove(f, &id, e->attempt));
    }
    assert_null(taskfifo_at(f, 0));
    assert_false(taskfifo_remove(f, &id, 8));
    taskfifo_destroy(&f);
    f = taskfifo_new(0);
    assert_false(taskfifo_remove(f, &id, 1));
    taskfifo_destroy(&f);
}

/* taskfifo_has (a hash set since it showed in the supervisor's profile)
 * against a scan of the ring, over many random pushes, pops and removals
 * of ids that collide on purpose (few distinct tails: long probe runs, and
 * deletions that must shift members back across the wrap). */
static void test_taskfifo_has_matches_a_scan(void **state)
{
    (void)state;
    taskfifo_t *f = taskfifo_new(37);
    uint64_t rnd = 42;
    for (int step = 0; step < 20000; step++) {
        rnd = rnd * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(rnd >> 33);
        taskq_id_t id;
        memset(&id, 0, sizeof id);
        id.b[0] = (uint8_t)(r % 23);      /* 23 ids ... */
        id.b[15] = (uint8_t)((r >> 8) % 3); /* ... over 3 tails */
        uint32_t attempt = 1 + (r >> 12) % 2;
        switch ((r >> 16) % 3) {
        case 0:
            if (!taskfifo_has(f, &id, attempt))
                (void)taskfifo_push(f, &id, attempt, "t", 1, NULL, 0, 0);
            break;
        case 1:
            taskfifo_pop(f);
            break;
        default:
            (void)taskfifo_remove(f, &id, attempt);
        }
        for (uint8_t a = 0; a < 23; a++)
            for (uint8_t t = 0; t < 3; t++)
                for (uint32_t at = 1; at <= 2; at++) {
                    taskq_id_t q;
                    memset(&q, 0, sizeof q);
                    q.b[0] = a;
                    q.b[15] = t;
                    bool scan = false;
                    for (size_t i = 0; i < taskfifo_count(f); i++) {
                        const taskfifo_entry_t *e = taskfifo_at(f, i);
                        scan |= e->attempt == at && !memcmp(e->id.b, q.b, sizeof q.b);
                    }
                    if (scan != taskfifo_has(f, &q, at))
                        fail_msg("step %d: id %u/%u attempt %u: scan %d, has %d", step, a, t,
                                 at, scan, !scan);
                }
    }
    taskfifo_destroy(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taskfifo_keeps_order_and_capacity),
        cmocka_unit_test(test_taskfifo_rejects_over_limit),
        cmocka_unit_test(test_taskfifo_remove_keeps_order_and_buffers),
        cmocka_unit_test(test_taskfifo_has_matches_a_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
