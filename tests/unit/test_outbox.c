/* test_outbox.c - unacknowledged SUBMITs: add, ack, resend schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"

static void *body(const char *s)
{
    char *b = malloc(strlen(s) + 1);
    strcpy(b, s);
    return b;
}

static void test_outbox_add_find_ack(void **state)
{
    (void)state;
    outbox_t *ob = outbox_new();
    assert_non_null(ob);
    void *b = body("one");
    assert_int_equal(outbox_add(ob, 1, 0, 500, &b, 4, 1000), TASKQ_OK);
    assert_null(b); /* ownership moved */
    b = body("two");
    assert_int_equal(outbox_add(ob, 2, 500, 10, &b, 4, 1000), TASKQ_OK);
    b = body("dup");
    assert_int_equal(outbox_add(ob, 2, 0, 1, &b, 4, 1000), TASKQ_EINVAL);
    assert_null(b); /* freed on failure too */
    assert_int_equal(outbox_count(ob), 2);
    outbox_entry_t *e = outbox_find(ob, 2);
    assert_non_null(e);
    assert_int_equal(e->first, 500);
    assert_int_equal(e->count, 10);
    assert_memory_equal(e->body, "two", 4);
    assert_true(outbox_ack(ob, 1));
    assert_false(outbox_ack(ob, 1)); /* a duplicate ack is ignored */
    assert_false(outbox_ack(ob, 99));
    assert_int_equal(outbox_count(ob), 1);
    assert_int_equal(outbox_at(ob, 0)->req, 2);
    assert_null(outbox_at(ob, 1));
    outbox_destroy(&ob); /* frees the remaining entry */
    assert_null(ob);
    outbox_destroy(&ob);
}

static void test_outbox_resend_backoff(void **state)
{
    (void)state;
    outbox_t *ob = outbox_new();
    void *b = body("x");
    assert_int_equal(outbox_add(ob, 7, 0, 1, &b, 2, 1000), TASKQ_OK);
    outbox_entry_t *e = outbox_find(ob, 7);
    assert_true(outbox_is_due(e, 0)); /* never sent */
    assert_int_equal(outbox_next_due_at(ob), INT64_MAX);
    outbox_mark_sent(e, 100, 5000);
    assert_false(outbox_is_due(e, 1099));
    assert_true(outbox_is_due(e, 1100));
    assert_int_equal(outbox_next_due_at(ob), 1100);
    outbox_mark_sent(e, 1100, 5000); /* resend: interval doubles */
    assert_int_equal(e->interval_ms, 2000);
    assert_int_equal(outbox_next_due_at(ob), 3100);
    outbox_mark_sent(e, 3100, 5000);
    outbox_mark_sent(e, 7100, 5000);
    assert_int_equal(e->interval_ms, 5000); /* capped */
    assert_int_equal(e->sends, 4);
    outbox_destroy(&ob);
}

/* A BUSY refusal holds the entry until the retry-after, then it goes out as
 * a first send again (same req, same body). */
static void test_outbox_defer_busy(void **state)
{
    (void)state;
    outbox_t *ob = outbox_new();
    void *b = body("x");
    assert_int_equal(outbox_add(ob, 3, 0, 20, &b, 2, 1000), TASKQ_OK);
    outbox_entry_t *e = outbox_find(ob, 3);
    outbox_mark_sent(e, 100, 5000);
    outbox_mark_sent(e, 1100, 5000); /* one resend: interval 2000 */
    outbox_defer(e, 1350, 1000);     /* BUSY at 1100, retry after 250 ms */
    assert_int_equal(e->sends, 0);
    assert_int_equal(e->interval_ms, 1000);
    assert_false(outbox_is_due(e, 1349));
    assert_true(outbox_is_due(e, 1350));
    assert_int_equal(outbox_next_due_at(ob), 1350);
    outbox_mark_sent(e, 1350, 5000); /* a first send: interval stays 1000 */
    assert_int_equal(e->interval_ms, 1000);
    assert_false(outbox_is_due(e, 2349));
    assert_true(outbox_is_due(e, 2350));
    assert_int_equal(outbox_next_due_at(ob), 2350);
    /* a hold later than the resend time wins */
    outbox_defer(e, 9000, 1000);
    outbox_mark_sent(e, 9000, 5000);
    e->hold_until = 20000;
    assert_false(outbox_is_due(e, 10000));
    assert_int_equal(outbox_next_due_at(ob), 20000);
    outbox_destroy(&ob);
}

static void test_outbox_keeps_send_order(void **state)
{
    (void)state;
    outbox_t *ob = outbox_new();
    for (uint64_t r = 1; r <= 20; r++) {
        void *b = body("b");
        assert_int_equal(outbox_add(ob, r, (r - 1) * 10, 10, &b, 2, 1000), TASKQ_OK);
    }
    for (uint64_t r = 2; r <= 20; r += 2)
        assert_true(outbox_ack(ob, r));
    assert_int_equal(outbox_count(ob), 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(outbox_at(ob, i)->req, 2 * i + 1);
    outbox_destroy(&ob);
}

/* A workflow is one SUBMIT of up to TQ_GRAPH_MAX tasks: one entry, resent
 * whole with the same req and the same bytes (so the same ids), through
 * resends and a BUSY deferral, until its one acknowledgement. */
static void test_outbox_graph_is_one_entry(void **state)
{
    (void)state;
    outbox_t *ob = outbox_new();
    size_t len = 3 * 1024 * 1024;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(i * 31 + 7);
    uint8_t *copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, b, len);
    void *bp = b;
    assert_int_equal(outbox_add(ob, 42, 0, 20000, &bp, len, 1000), TASKQ_OK);
    outbox_entry_t *e = outbox_find(ob, 42);
    const void *sent = e->body;
    outbox_mark_sent(e, 0, 5000);
    assert_true(outbox_is_due(e, 1000));
    outbox_mark_sent(e, 1000, 5000);
    outbox_defer(e, 3000, 1000);
    assert_false(outbox_is_due(e, 2999));
    assert_true(outbox_is_due(e, 3000));
    outbox_mark_sent(e, 3000, 5000);
    e = outbox_find(ob, 42);
    assert_int_equal(outbox_count(ob), 1);
    assert_int_equal(e->first, 0);
    assert_int_equal(e->count, 20000);
    assert_ptr_equal(e->body, sent);
    assert_int_equal(e->len, len);
    assert_memory_equal(e->body, copy, len);
    assert_true(outbox_ack(ob, 42));
    assert_int_equal(outbox_count(ob), 0);
    free(copy);
    outbox_destroy(&ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outbox_add_find_ack),
        cmocka_unit_test(test_outbox_resend_backoff),
        cmocka_unit_test(test_outbox_defer_busy),
        cmocka_unit_test(test_outbox_keeps_send_order),
        cmocka_unit_test(test_outbox_graph_is_one_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
