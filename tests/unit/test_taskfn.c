/* test_taskfn.c - the task table, module loading and the built-in tasks run
 * directly through a task context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "tqlimits.h"
#include "taskapi.h"
#include "taskfn.h"

static int dummy(taskq_ctx_t *ctx)
{
    (void)ctx;
    return TASKQ_TASK_OK;
}

static void test_taskfn_validates_names(void **state)
{
    (void)state;
    taskfn_t *t = taskfn_new();
    assert_int_equal(taskfn_add(t, "a.b:c-d_e", dummy), TASKQ_OK);
    assert_int_equal(taskfn_add(t, "a.b:c-d_e", dummy), TASKQ_EINVAL);
    assert_int_equal(taskfn_add(t, "", dummy), TASKQ_ENAME);
    assert_int_equal(taskfn_add(t, "has space", dummy), TASKQ_ENAME);
    assert_int_equal(taskfn_add(t, "ok", NULL), TASKQ_EINVAL);
    char longname[TQ_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(taskfn_add(t, longname, dummy), TASKQ_ENAME);
    assert_int_equal(taskq_register(t, "via.api", dummy), 0);
    assert_int_equal(taskq_register(t, "via.api", dummy), -1);
    assert_ptr_equal(taskfn_find(t, "via.api", 7), dummy);
    assert_null(taskfn_find(t, "via.ap", 6));
    assert_int_equal(taskfn_count(t), 2);
    taskfn_destroy(&t);
    assert_null(t);
}

static void test_taskfn_loads_module(void **state)
{
    (void)state;
    taskfn_t *t = taskfn_new();
    assert_int_equal(builtin_register(t), TASKQ_OK);
    assert_int_equal(taskfn_load(t, TESTTASKS_PATH), TASKQ_OK);
    assert_int_equal(taskfn_count(t), 4 + 8); /* builtins + testtasks */
    taskq_task_fn sq = taskfn_find(t, "test.square", 11);
    assert_non_null(sq);
    const uint8_t args[] = {0x91, 0x07}; /* [7] */
    taskq_id_t id = {{1}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, args, sizeof args);
    assert_true(taskapi_run(ctx, sq));
    size_t len;
    const uint8_t *r = taskapi_result(ctx, &len);
    assert_int_equal(len, 1);
    assert_int_equal(r[0], 49);
    taskapi_ctx_destroy(&ctx);
    /* loading twice collides on every name: refused, table unchanged */
    assert_int_equal(taskfn_load(t, TESTTASKS_PATH), TASKQ_EINVAL);
    assert_int_equal(taskfn_count(t), 12);
    assert_int_equal(taskfn_load(t, "/nonexistent/libnope.so"), TASKQ_EINVAL);
    taskfn_destroy(&t);
}

/* Runs a built-in with raw args; returns ok and copies result/error out. */
static bool run(const char *name, const void *args, size_t len, uint8_t *out, size_t *outlen,
                char *err, size_t errsz)
{
    taskfn_t *t = taskfn_new();
    assert_int_equal(builtin_register(t), TASKQ_OK);
    taskq_task_fn fn = taskfn_find(t, name, strlen(name));
    assert_non_null(fn);
    taskq_id_t id = {{2}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, args, len);
    bool ok = taskapi_run(ctx, fn);
    size_t rl;
    const void *r = taskapi_result(ctx, &rl);
    if (out) {
        memcpy(out, r, rl);
        *outlen = rl;
    }
    if (err)
        snprintf(err, errsz, "%s", taskapi_error(ctx));
    taskapi_ctx_destroy(&ctx);
    taskfn_destroy(&t);
    return ok;
}

static void test_builtin_echo_returns_args_bytes(void **state)
{
    (void)state;
    const uint8_t args[] = {0x92, 0xa2, 'h', 'i', 0xc3}; /* ["hi", true] */
    uint8_t out[16];
    size_t n;
    assert_true(run("taskq.echo", args, sizeof args, out, &n, NULL, 0));
    assert_int_equal(n, sizeof args);
    assert_memory_equal(out, args, sizeof args);
}

static void test_builtin_sumsq_and_primes(void **state)
{
    (void)state;
    uint8_t out[16];
    size_t n;
    const uint8_t ten[] = {0x91, 0x0a}; /* [10] */
    assert_true(run("taskq.sumsq", ten, sizeof ten, out, &n, NULL, 0));
    assert_int_equal(n, 3); /* 285 = 0x011d: uint16 */
    assert_memory_equal(out, "\xcd\x01\x1d", 3);
    const uint8_t hundred[] = {0x64}; /* bare 100 */
    assert_true(run("taskq.primes", hundred, sizeof hundred, out, &n, NULL, 0));
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 25);
}

static void test_builtin_bad_args_fail_clearly(void **state)
{
    (void)state;
    char err[256];
    const uint8_t neg[] = {0x91, 0xff}; /* [-1] */
    assert_false(run("taskq.primes", neg, sizeof neg, NULL, NULL, err, sizeof err));
    assert_string_equal(err, "taskq.primes: expected an integer n >= 0");
    assert_false(run("taskq.sumsq", NULL, 0, NULL, NULL, err, sizeof err));
    assert_string_equal(err, "taskq.sumsq: expected an integer n >= 0");
    const uint8_t str[] = {0xa1, 'x'};
    assert_false(run("taskq.sleep", str, sizeof str, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "taskq.sleep"));
    const uint8_t junk[] = {0x92, 0x01}; /* truncated array */
    assert_false(run("taskq.echo", junk, sizeof junk, NULL, NULL, err, sizeof err));
    assert_non_null(strstr(err, "malformed args"));
}

typedef struct {
    int calls;
    uint64_t last_current, last_total;
    char last_message[300];
} progress_log_t;

static void on_progress(void *arg, uint64_t current, uint64_t total, const char *message)
{
    progress_log_t *p = arg;
    p->calls++;
    p->last_current = current;
    p->last_total = total;
    snprintf(p->last_message, sizeof p->last_message, "%s", message);
}

static int spam(taskq_ctx_t *ctx)
{
    for (uint64_t i = 1; i <= 100000; i++)
        taskq_progress(ctx, i, 100000, "spam");
    return TASKQ_TASK_OK;
}

static void test_progress_is_coalesced_and_final_value_kept(void **state)
{
    (void)state;
    taskq_id_t id = {{3}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    progress_log_t log = {0};
    taskapi_set_progress(ctx, on_progress, &log);
    assert_true(taskapi_run(ctx, spam));
    assert_true(log.calls >= 2 && log.calls < 100); /* first + final at least */
    assert_int_equal(log.last_current, 100000);
    assert_string_equal(log.last_message, "spam");
    taskapi_ctx_destroy(&ctx);
}

static void test_builtin_sleep_reports_progress(void **state)
{
    (void)state;
    const uint8_t args[] = {0x91, 0xcb, 0x3f, 0xc9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}; /* [0.2] */
    taskfn_t *t = taskfn_new();
    builtin_register(t);
    taskq_id_t id = {{4}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, args, sizeof args);
    progress_log_t log = {0};
    taskapi_set_progress(ctx, on_progress, &log);
    assert_true(taskapi_run(ctx, taskfn_find(t, "taskq.sleep", 11)));
    assert_true(log.calls >= 2);
    assert_int_equal(log.last_current, 200);
    assert_int_equal(log.last_total, 200);
    assert_string_equal(log.last_message, "sleeping");
    size_t n;
    const uint8_t *r = taskapi_result(ctx, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(r, args + 1, 9);
    taskapi_ctx_destroy(&ctx);
    taskfn_destroy(&t);
}

static int long_fail(taskq_ctx_t *ctx)
{
    char big[3000];
    memset(big, 'e', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    return taskq_fail(ctx, "%s", big);
}

static int bad_result(taskq_ctx_t *ctx)
{
    taskq_result_raw(ctx, "\x92\x01", 2); /* an array missing an element */
    return TASKQ_TASK_OK;
}

static void test_fail_truncates_and_bad_result_fails(void **state)
{
    (void)state;
    taskq_id_t id = {{5}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 2, NULL, 0);
    assert_int_equal(taskq_attempt(ctx), 2);
    assert_int_equal(strlen(taskq_task_id(ctx)), TASKQ_ID_STRLEN);
    assert_int_equal(taskq_args(ctx)->type, MSGPACK_OBJECT_NIL);
    assert_false(taskapi_run(ctx, long_fail));
    assert_int_equal(strlen(taskapi_error(ctx)), TQ_ERROR_MAX);
    taskapi_ctx_destroy(&ctx);
    ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    assert_false(taskapi_run(ctx, bad_result));
    assert_non_null(strstr(taskapi_error(ctx), "not one valid msgpack value"));
    taskapi_ctx_destroy(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_taskfn_validates_names),
        cmocka_unit_test(test_taskfn_loads_module),
        cmocka_unit_test(test_builtin_echo_returns_args_bytes),
        cmocka_unit_test(test_builtin_sumsq_and_primes),
        cmocka_unit_test(test_builtin_bad_args_fail_clearly),
        cmocka_unit_test(test_progress_is_coalesced_and_final_value_kept),
        cmocka_unit_test(test_builtin_sleep_reports_progress),
        cmocka_unit_test(test_fail_truncates_and_bad_result_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
