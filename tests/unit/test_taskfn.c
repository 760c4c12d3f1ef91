/* test_taskfn.c - the task table, module loading and the built-in tasks run
 * directly through a task context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    assert_int_equal(taskfn_count(t), 4 + 18); /* builtins + testtasks */
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
    assert_int_equal(taskfn_count(t), 22);
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

/* ---- failure codes, permanent, retry delay, rate limit ---------------- */

static const char *g_code;
static int g_mode;

static int failer(taskq_ctx_t *ctx)
{
    switch (g_mode) {
    case 0:
        return taskq_fail(ctx, g_code, "plain %d", 1);
    case 1:
        return taskq_fail_permanent(ctx, g_code, "perm");
    case 2:
        return taskq_retry(ctx, 1500, "again in %d", 1500);
    case 3:
        return taskq_retry(ctx, -5, "negative");
    case 4:
        return taskq_retry(ctx, INT64_MAX, "huge");
    case 5:
        return taskq_rate_limited(ctx, 2500);
    case 6:
        return taskq_rate_limited(ctx, 0);
    case 7: /* the last call wins */
        taskq_rate_limited(ctx, 100);
        taskq_retry(ctx, 10, "x");
        return taskq_fail_permanent(ctx, "last.one", "last");
    case 8:
        return TASKQ_TASK_FAILED; /* without saying why */
    default: /* fails, then returns OK: still a failure */
        taskq_fail(ctx, "c", "m");
        return TASKQ_TASK_OK;
    }
}

static void run_failer(int mode, const char *code, taskapi_failure_t *fl, char *err,
                       size_t errsz)
{
    g_mode = mode;
    g_code = code;
    taskq_id_t id = {{6}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    assert_false(taskapi_run(ctx, failer));
    taskapi_failure_t f;
    taskapi_failure(ctx, &f);
    static char code_copy[TQ_CODE_MAX + 1];
    snprintf(code_copy, sizeof code_copy, "%s", f.code);
    *fl = f;
    fl->code = code_copy; /* outlives the ctx */
    snprintf(err, errsz, "%s", taskapi_error(ctx));
    taskapi_ctx_destroy(&ctx);
}

static void test_fail_codes_and_outcomes(void **state)
{
    (void)state;
    taskapi_failure_t f;
    char err[256];
    run_failer(0, "http.404", &f, err, sizeof err);
    assert_string_equal(f.code, "http.404");
    assert_string_equal(err, "plain 1");
    assert_false(f.permanent);
    assert_int_equal(f.retry_delay_ms, -1);
    assert_int_equal(f.rate_limited_ms, 0);
    /* NULL and invalid codes become taskq.error */
    run_failer(0, NULL, &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    run_failer(0, "", &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    run_failer(0, "has space", &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    run_failer(0, "http:404", &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    char longcode[TQ_CODE_MAX + 2];
    memset(longcode, 'c', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    run_failer(0, longcode, &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    longcode[TQ_CODE_MAX] = '\0'; /* exactly the limit: kept */
    run_failer(0, longcode, &f, err, sizeof err);
    assert_string_equal(f.code, longcode);

    run_failer(1, "Bad_Input.x", &f, err, sizeof err);
    assert_string_equal(f.code, "Bad_Input.x");
    assert_true(f.permanent);
    assert_string_equal(err, "perm");

    run_failer(2, NULL, &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.retry");
    assert_int_equal(f.retry_delay_ms, 1500);
    assert_false(f.permanent);
    assert_string_equal(err, "again in 1500");
    run_failer(3, NULL, &f, err, sizeof err);
    assert_int_equal(f.retry_delay_ms, 0);
    run_failer(4, NULL, &f, err, sizeof err);
    assert_int_equal(f.retry_delay_ms, TQ_BACKOFF_MS_MAX);

    run_failer(5, NULL, &f, err, sizeof err);
    assert_int_equal(f.rate_limited_ms, 2500);
    assert_int_equal(f.retry_delay_ms, -1);
    assert_false(f.permanent);
    assert_string_equal(f.code, "taskq.rate_limited");
    assert_non_null(strstr(err, "2500 ms"));
    run_failer(6, NULL, &f, err, sizeof err);
    assert_int_equal(f.rate_limited_ms, 1); /* "at once" is still a put-back */

    run_failer(7, NULL, &f, err, sizeof err);
    assert_string_equal(f.code, "last.one");
    assert_true(f.permanent);
    assert_int_equal(f.retry_delay_ms, -1);
    assert_int_equal(f.rate_limited_ms, 0);

    run_failer(8, NULL, &f, err, sizeof err);
    assert_string_equal(f.code, "taskq.error");
    assert_false(f.permanent);
    assert_non_null(strstr(err, "returned 1"));
    run_failer(9, NULL, &f, err, sizeof err);
    assert_string_equal(f.code, "c");
}

static void test_success_has_no_failure(void **state)
{
    (void)state;
    taskq_id_t id = {{7}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    assert_true(taskapi_run(ctx, dummy));
    taskapi_failure_t f;
    taskapi_failure(ctx, &f);
    assert_string_equal(f.code, "");
    assert_false(f.permanent);
    assert_int_equal(f.retry_delay_ms, -1);
    assert_int_equal(f.rate_limited_ms, 0);
    taskapi_ctx_destroy(&ctx);
}

static void test_internal_failures_are_permanent_taskq_error(void **state)
{
    (void)state;
    /* malformed args, bad builtin args: the same on every attempt */
    taskq_id_t id = {{8}};
    const uint8_t junk[] = {0x92, 0x01};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, junk, sizeof junk);
    assert_false(taskapi_run(ctx, dummy));
    taskapi_failure_t f;
    taskapi_failure(ctx, &f);
    assert_string_equal(f.code, "taskq.error");
    assert_true(f.permanent);
    taskapi_ctx_destroy(&ctx);

    taskfn_t *t = taskfn_new();
    assert_int_equal(builtin_register(t), TASKQ_OK);
    ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    assert_false(taskapi_run(ctx, taskfn_find(t, "taskq.sumsq", 11)));
    taskapi_failure(ctx, &f);
    assert_string_equal(f.code, "taskq.error");
    assert_true(f.permanent);
    taskapi_ctx_destroy(&ctx);
    taskfn_destroy(&t);
}

/* ---- registration policies ---------------------------------------------- */

static void test_register_opts_validates_and_keeps_policy(void **state)
{
    (void)state;
    taskfn_t *t = taskfn_new();
    const taskq_task_opts_t ok = {.max_attempts = 5, .backoff_base_ms = 250,
                                  .backoff_factor = 1.5, .backoff_max_ms = 60000,
                                  .jitter = "full", .retry_on = "http.5*, net.*",
                                  .no_retry_on = "http.404"};
    assert_int_equal(taskq_register_opts(t, "p.ok", dummy, &ok), 0);
    assert_int_equal(taskq_register_opts(t, "p.null", dummy, NULL), 0);
    const taskq_task_opts_t zero = {0};
    assert_int_equal(taskq_register_opts(t, "p.zero", dummy, &zero), 0);
    const taskq_task_opts_t star = {.retry_on = "*"};
    assert_int_equal(taskq_register_opts(t, "p.star", dummy, &star), 0);

    static const taskq_task_opts_t bad[] = {
        {.max_attempts = TQ_ATTEMPTS_MAX + 1},
        {.backoff_base_ms = -1},
        {.backoff_max_ms = TQ_BACKOFF_MS_MAX + 1},
        {.backoff_factor = 0.5},
        {.backoff_factor = 1001},
        {.jitter = "random"},
        {.retry_on = "http.4*4"},
        {.retry_on = "a,,b"},
        {.no_retry_on = "has space"},
        {.no_retry_on = ","},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "p.bad%zu", i);
        assert_int_equal(taskq_register_opts(t, name, dummy, &bad[i]), -1);
        assert_null(taskfn_find(t, name, strlen(name)));
    }

    bool has;
    proto_retry_policy_t p;
    assert_ptr_equal(taskfn_find_policy(t, "p.ok", 4, &has, &p), dummy);
    assert_true(has);
    assert_int_equal(p.max_attempts, 5);
    assert_int_equal(p.backoff_base_ms, 250);
    assert_true(p.backoff_factor == 1.5);
    assert_int_equal(p.backoff_max_ms, 60000);
    assert_int_equal(p.jitter, PROTO_JITTER_FULL);
    assert_true(proto_str_eq(p.retry_on, "http.5*, net.*"));
    assert_true(proto_str_eq(p.no_retry_on, "http.404"));
    assert_ptr_equal(taskfn_find_policy(t, "p.null", 6, &has, &p), dummy);
    assert_false(has);
    assert_int_equal(p.jitter, -1);
    assert_int_equal(p.retry_on.len, 0);
    assert_ptr_equal(taskfn_find_policy(t, "p.zero", 6, &has, &p), dummy);
    assert_true(has);
    assert_int_equal(p.jitter, -1);
    assert_int_equal(p.max_attempts, 0);
    assert_null(taskfn_find_policy(t, "nope", 4, &has, &p));
    assert_false(has);
    taskfn_destroy(&t);
}

/* ---- the test module's tasks ---------------------------------------------- */

typedef struct {
    bool ok;
    uint8_t result[256];
    size_t result_len;
    char error[256];
    taskapi_failure_t f;
    char code[TQ_CODE_MAX + 1];
} outcome_t;

static void run_module(taskfn_t *t, const char *name, uint32_t attempt, const void *args,
                       size_t len, outcome_t *o)
{
    taskq_task_fn fn = taskfn_find(t, name, strlen(name));
    assert_non_null(fn);
    taskq_id_t id = {{9}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, attempt, args, len);
    memset(o, 0, sizeof *o);
    o->ok = taskapi_run(ctx, fn);
    size_t rl;
    const void *r = taskapi_result(ctx, &rl);
    assert_true(rl <= sizeof o->result);
    if (rl)
        memcpy(o->result, r, rl);
    o->result_len = rl;
    snprintf(o->error, sizeof o->error, "%s", taskapi_error(ctx));
    taskapi_failure(ctx, &o->f);
    snprintf(o->code, sizeof o->code, "%s", o->f.code);
    o->f.code = o->code;
    taskapi_ctx_destroy(&ctx);
}

/* Packs a msgpack array of the given items into buf ("s" str, "i" int). */
static size_t pack_args(msgpack_sbuffer *sb, const char *types, ...)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    va_list ap;
    va_start(ap, types);
    msgpack_pack_array(&pk, strlen(types));
    for (const char *c = types; *c; c++) {
        if (*c == 's') {
            const char *v = va_arg(ap, const char *);
            msgpack_pack_str(&pk, strlen(v));
            msgpack_pack_str_body(&pk, v, strlen(v));
        } else {
            msgpack_pack_int64(&pk, va_arg(ap, int64_t));
        }
    }
    va_end(ap);
    return sb->size;
}

static void test_module_new_tasks(void **state)
{
    (void)state;
    taskfn_t *t = taskfn_new();
    assert_int_equal(taskfn_load(t, TESTTASKS_PATH), TASKQ_OK);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    outcome_t o;

    /* test.append: one line per call, returns the tag */
    char path[] = "/tmp/test_taskfn_appendXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pack_args(&sb, "ss", path, "alpha");
    run_module(t, "test.append", 1, sb.data, sb.size, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 6);
    assert_memory_equal(o.result, "\xa5" "alpha", 6);
    pack_args(&sb, "ss", path, "b");
    run_module(t, "test.append", 1, sb.data, sb.size, &o);
    assert_true(o.ok);
    FILE *fp = fopen(path, "r");
    char buf[64] = {0};
    assert_int_equal(fread(buf, 1, sizeof buf - 1, fp), 8);
    fclose(fp);
    unlink(path);
    assert_string_equal(buf, "alpha\nb\n");
    pack_args(&sb, "s", path);
    run_module(t, "test.append", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_true(o.f.permanent);

    /* test.fail_code / test.fail_perm */
    pack_args(&sb, "ss", "http.404", "not found");
    run_module(t, "test.fail_code", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "http.404");
    assert_string_equal(o.error, "not found");
    assert_false(o.f.permanent);
    pack_args(&sb, "s", "bad.input");
    run_module(t, "test.fail_perm", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "bad.input");
    assert_true(o.f.permanent);

    /* test.retry_in [delay, succeed_on] */
    pack_args(&sb, "ii", (int64_t)300, (int64_t)3);
    run_module(t, "test.retry_in", 2, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "taskq.retry");
    assert_int_equal(o.f.retry_delay_ms, 300);
    run_module(t, "test.retry_in", 3, sb.data, sb.size, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 1);
    assert_int_equal(o.result[0], 3);

    /* test.rate_limited [after, times] */
    pack_args(&sb, "ii", (int64_t)700, (int64_t)2);
    run_module(t, "test.rate_limited", 2, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_int_equal(o.f.rate_limited_ms, 700);
    run_module(t, "test.rate_limited", 3, sb.data, sb.size, &o);
    assert_true(o.ok);
    assert_int_equal(o.result[0], 3);

    /* test.policy: registered policy, always fails */
    run_module(t, "test.policy", 1, NULL, 0, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "test.policy");
    assert_false(o.f.permanent);
    bool has;
    proto_retry_policy_t p;
    assert_non_null(taskfn_find_policy(t, "test.policy", 11, &has, &p));
    assert_true(has);
    assert_int_equal(p.max_attempts, 2);
    assert_int_equal(p.backoff_base_ms, 100);
    assert_true(p.backoff_factor == 1.0);
    assert_int_equal(p.backoff_max_ms, 100);
    assert_int_equal(p.jitter, PROTO_JITTER_NONE);
    assert_non_null(taskfn_find_policy(t, "test.square", 11, &has, &p));
    assert_false(has);

    /* test.fail stays a permanent failure with its message */
    pack_args(&sb, "s", "boom");
    run_module(t, "test.fail", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.error, "boom");
    assert_string_equal(o.code, "test.fail");
    assert_true(o.f.permanent);

    msgpack_sbuffer_destroy(&sb);
    taskfn_destroy(&t);
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
    /* the first report waits one interval: a run this short sends only
     * its final value (a slow machine may add one or two in between) */
    assert_true(log.calls >= 1 && log.calls < 100);
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
    return taskq_fail(ctx, NULL, "%s", big);
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

typedef struct {
    int calls;
    int say_yes_at; /* the check answers true from this call on (0 = never) */
} cancel_probe_t;

static bool probe_check(void *arg)
{
    cancel_probe_t *p = arg;
    p->calls++;
    return p->say_yes_at && p->calls >= p->say_yes_at;
}

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_cancelled_is_sticky_and_rate_limited(void **state)
{
    (void)state;
    taskq_id_t id = {{6}};
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    assert_int_equal(taskq_cancelled(ctx), 0); /* no check function: never */
    assert_int_equal(taskq_cancelled(NULL), 0);
    cancel_probe_t p = {.say_yes_at = 2};
    taskapi_set_cancel_check(ctx, probe_check, &p);
    assert_int_equal(taskq_cancelled(ctx), 0);
    assert_int_equal(p.calls, 1);
    /* a tight loop asks the check at most once per TASKAPI_CANCEL_CHECK_US */
    for (int i = 0; i < 1000; i++)
        (void)taskq_cancelled(ctx);
    assert_true(p.calls <= 1 + 50); /* generous: a slow, sanitized machine */
    nap(2 * TASKAPI_CANCEL_CHECK_US / 1000 + 1);
    int calls = p.calls;
    assert_int_equal(taskq_cancelled(ctx), 1);
    assert_int_equal(p.calls, calls + 1);
    /* sticky, and the check is not asked any more */
    nap(2 * TASKAPI_CANCEL_CHECK_US / 1000 + 1);
    assert_int_equal(taskq_cancelled(ctx), 1);
    assert_int_equal(p.calls, calls + 1);
    taskapi_ctx_destroy(&ctx);
    /* taskapi_cancel marks it directly */
    ctx = taskapi_ctx_new(&id, 1, NULL, 0);
    taskapi_cancel(ctx);
    assert_int_equal(taskq_cancelled(ctx), 1);
    taskapi_ctx_destroy(&ctx);
}

static void test_module_lifecycle_tasks(void **state)
{
    (void)state;
    taskfn_t *t = taskfn_new();
    assert_int_equal(taskfn_load(t, TESTTASKS_PATH), TASKQ_OK);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    outcome_t o;

    /* test.concat: the args array as given; nil -> []; v -> [v] */
    pack_args(&sb, "sii", "a", (int64_t)1, (int64_t)-2);
    run_module(t, "test.concat", 1, sb.data, sb.size, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, sb.size);
    assert_memory_equal(o.result, sb.data, sb.size);
    run_module(t, "test.concat", 1, NULL, 0, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 1);
    assert_int_equal(o.result[0], 0x90);
    run_module(t, "test.concat", 1, "\x05", 1, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 2);
    assert_memory_equal(o.result, "\x91\x05", 2);

    /* test.sum: [n...], [[n...]], settle maps; strings ignored */
    pack_args(&sb, "iii", (int64_t)1, (int64_t)2, (int64_t)-10);
    run_module(t, "test.sum", 1, sb.data, sb.size, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 1);
    assert_int_equal(o.result[0], 0xf9); /* -7 as a negative fixint */
    /* [[1, 2, 300]] */
    run_module(t, "test.sum", 1, "\x91\x93\x01\x02\xcd\x01,", 7, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 3);
    assert_memory_equal(o.result, "\xcd\x01/", 3); /* 303 */
    /* [[{"result": 4, "state": "x"}, {"error": "e"}], 5] */
    const char settle[] = "\x92\x92\x82\xa6result\x04\xa5state\xa1x\x81\xa5" "error\xa1" "e\x05";
    run_module(t, "test.sum", 1, settle, sizeof settle - 1, &o);
    assert_true(o.ok);
    assert_int_equal(o.result_len, 1);
    assert_int_equal(o.result[0], 9);
    run_module(t, "test.sum", 1, NULL, 0, &o);
    assert_true(o.ok);
    assert_int_equal(o.result[0], 0);

    /* test.sleep_cancel: returns "cancelled" once taskq_cancelled says so */
    taskq_task_fn fn = taskfn_find(t, "test.sleep_cancel", 17);
    assert_non_null(fn);
    taskq_id_t id = {{7}};
    const uint8_t ten[] = {0x91, 0x0a}; /* [10] seconds */
    taskq_ctx_t *ctx = taskapi_ctx_new(&id, 1, ten, sizeof ten);
    cancel_probe_t p = {.say_yes_at = 3};
    taskapi_set_cancel_check(ctx, probe_check, &p);
    assert_true(taskapi_run(ctx, fn));
    size_t n;
    const uint8_t *r = taskapi_result(ctx, &n);
    assert_int_equal(n, 10);
    assert_memory_equal(r, "\xa9" "cancelled", 10);
    assert_int_equal(p.calls, 3); /* about 20 ms, not 10 s */
    taskapi_ctx_destroy(&ctx);
    const uint8_t zero[] = {0x91, 0xcb, 0x3f, 0xa9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a}; /* [0.05] */
    ctx = taskapi_ctx_new(&id, 1, zero, sizeof zero);
    p = (cancel_probe_t){0};
    taskapi_set_cancel_check(ctx, probe_check, &p);
    assert_true(taskapi_run(ctx, fn));
    r = taskapi_result(ctx, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(r, zero + 1, 9);
    assert_true(p.calls >= 2);
    taskapi_ctx_destroy(&ctx);
    pack_args(&sb, "s", "x");
    run_module(t, "test.sleep_cancel", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "test.args");

    /* test.ignore_term: SIGTERM ignored while it runs, the old disposition
     * restored after */
    struct sigaction before, after;
    sigaction(SIGTERM, NULL, &before);
    run_module(t, "test.ignore_term", 1, "\x91\x00", 2, &o);
    assert_true(o.ok);
    assert_memory_equal(o.result, "\x00", 1);
    sigaction(SIGTERM, NULL, &after);
    assert_true(after.sa_handler == before.sa_handler);
    pack_args(&sb, "s", "x");
    run_module(t, "test.ignore_term", 1, sb.data, sb.size, &o);
    assert_false(o.ok);
    assert_string_equal(o.code, "test.args");

    msgpack_sbuffer_destroy(&sb);
    taskfn_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cancelled_is_sticky_and_rate_limited),
        cmocka_unit_test(test_module_lifecycle_tasks),
        cmocka_unit_test(test_taskfn_validates_names),
        cmocka_unit_test(test_taskfn_loads_module),
        cmocka_unit_test(test_builtin_echo_returns_args_bytes),
        cmocka_unit_test(test_builtin_sumsq_and_primes),
        cmocka_unit_test(test_builtin_bad_args_fail_clearly),
        cmocka_unit_test(test_progress_is_coalesced_and_final_value_kept),
        cmocka_unit_test(test_builtin_sleep_reports_progress),
        cmocka_unit_test(test_fail_truncates_and_bad_result_fails),
        cmocka_unit_test(test_fail_codes_and_outcomes),
        cmocka_unit_test(test_success_has_no_failure),
        cmocka_unit_test(test_internal_failures_are_permanent_taskq_error),
        cmocka_unit_test(test_register_opts_validates_and_keeps_policy),
        cmocka_unit_test(test_module_new_tasks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
