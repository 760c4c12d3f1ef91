/* test_qspec.c - the worker's -Q parser: weights, defaults, order, and a
 * clear refusal for every kind of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "qspec.h"

static void test_qspec_weights_default_and_order(void **state)
{
    (void)state;
    qspec_t q = {0};
    char err[256];
    assert_int_equal(qspec_parse(&q, "critical=6,default=3,low", err, sizeof err), TASKQ_OK);
    assert_int_equal(q.n, 3);
    assert_string_equal(q.names[0], "critical");
    assert_int_equal(q.weights[0], 6);
    assert_string_equal(q.names[1], "default");
    assert_int_equal(q.weights[1], 3);
    assert_string_equal(q.names[2], "low");
    assert_int_equal(q.weights[2], 1);
    /* repeated -Q appends */
    assert_int_equal(qspec_parse(&q, "a.b-c_9=1000", err, sizeof err), TASKQ_OK);
    assert_int_equal(q.n, 4);
    assert_string_equal(q.names[3], "a.b-c_9");
    assert_int_equal(q.weights[3], 1000);
}

static void test_qspec_refuses_bad_input_whole(void **state)
{
    (void)state;
    static const struct {
        const char *spec, *why;
    } bad[] = {
        {"", "empty"},
        {"a,,b", "empty entry"},
        {"a,", "trailing"},
        {",a", "empty entry"},
        {"A", "not valid"},
        {"a b", "not valid"},
        {"a=0", "weight"},
        {"a=1001", "weight"},
        {"a=", "weight"},
        {"a=x", "weight"},
        {"a=-1", "weight"},
        {"a=1=2", "weight"},
        {"=3", "not valid"},
        {"a,b,a", "twice"},
        {"a=2,a=3", "twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qspec_t q = {0};
        char err[256] = "";
        assert_int_equal(qspec_parse(&q, "keep", err, sizeof err), TASKQ_OK);
        assert_int_equal(qspec_parse(&q, bad[i].spec, err, sizeof err), TASKQ_EINVAL);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': error '%s' does not say '%s'", bad[i].spec, err, bad[i].why);
        assert_int_equal(q.n, 1); /* unchanged: all or nothing */
        assert_string_equal(q.names[0], "keep");
    }
    /* a name of TQ_QUEUE_MAX chars is fine, one more is not */
    char name[TQ_QUEUE_MAX + 2];
    memset(name, 'q', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    qspec_t q = {0};
    char err[256];
    assert_int_equal(qspec_parse(&q, name, err, sizeof err), TASKQ_EINVAL);
    name[TQ_QUEUE_MAX] = '\0';
    assert_int_equal(qspec_parse(&q, name, err, sizeof err), TASKQ_OK);
    /* a duplicate across two -Q options is caught too */
    assert_int_equal(qspec_parse(&q, name, err, sizeof err), TASKQ_EINVAL);
    assert_non_null(strstr(err, "twice"));
}

static void test_qspec_at_most_queues_max(void **state)
{
    (void)state;
    qspec_t q = {0};
    char err[256], one[16];
    for (int i = 0; i < TQ_QUEUES_MAX; i++) {
        snprintf(one, sizeof one, "q%d", i);
        assert_int_equal(qspec_parse(&q, one, err, sizeof err), TASKQ_OK);
    }
    assert_int_equal(qspec_parse(&q, "one.more", err, sizeof err), TASKQ_EINVAL);
    assert_non_null(strstr(err, "more than"));
    assert_int_equal(q.n, TQ_QUEUES_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qspec_weights_default_and_order),
        cmocka_unit_test(test_qspec_refuses_bad_input_whole),
        cmocka_unit_test(test_qspec_at_most_queues_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
