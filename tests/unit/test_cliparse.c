/* test_cliparse.c - the CLI's option values (client/cli/parse.c) and its
 * JSON documents and tables (client/cli/render.c), without a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parse.h"
#include "render.h"

static int64_t iso(const char *s)
{
    int64_t ms = -1;
    const char *why = NULL;
    if (!parse_time_ms(s, &ms, &why))
        fail_msg("'%s' refused: %s", s, why ? why : "?");
    return ms;
}

static void refused_time(const char *s)
{
    int64_t ms = 42;
    const char *why = NULL;
    if (parse_time_ms(s, &ms, &why))
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    assert_int_equal(ms, 42);
    assert_non_null(why);
}

static void test_time_iso8601(void **state)
{
    (void)state;
    /* 2026-11-25T17:00:00Z = 1795626000 (date -u -d ... +%s) */
    assert_int_equal(iso("2026-11-25T17:00:00Z"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T18:00:00+01:00"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T12:00:00-05:00"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T18:00:00+0100"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T18:00:00+01"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25 17:00:00z"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T17:00Z"), 1795626000000LL);
    assert_int_equal(iso("2026-11-25T17:00:00.250Z"), 1795626000250LL);
    assert_int_equal(iso("2026-11-25T17:00:00,5Z"), 1795626000500LL);
    assert_int_equal(iso("2026-11-25T17:00:00.123456789Z"), 1795626000123LL);
    assert_int_equal(iso("2026-11-25T22:30:00+05:30"), 1795626000000LL);
    /* day and year boundaries, leap days */
    assert_int_equal(iso("1970-01-01T00:00:01Z"), 1000);
    assert_int_equal(iso("2000-02-29T00:00:00Z"), 951782400000LL);
    assert_int_equal(iso("2024-02-29T12:00:00Z"), 1709208000000LL);
    assert_int_equal(iso("2027-01-01T00:30:00+01:00"), 1798759800000LL);
    assert_int_equal(iso("2038-01-19T03:14:08Z"), 2147483648000LL); /* past 2^31 s */
}

static void test_time_unix_and_refusals(void **state)
{
    (void)state;
    assert_int_equal(iso("1795626000"), 1795626000000LL);
    assert_int_equal(iso("1795626000.5"), 1795626000500LL);
    assert_int_equal(iso("@1795626000"), 1795626000000LL);
    refused_time("2026-11-25T17:00:00");       /* no offset: ambiguous */
    refused_time("2026-11-25");                /* no time */
    refused_time("2026-13-01T00:00:00Z");
    refused_time("2026-02-29T00:00:00Z");      /* not a leap year */
    refused_time("2100-02-29T00:00:00Z");      /* not a leap year either */
    refused_time("2026-11-25T24:00:00Z");
    refused_time("2026-11-25T17:60:00Z");
    refused_time("2026-11-25T17:00:61Z");
    refused_time("2026-11-25T17:00:00+24:00");
    refused_time("2026-11-25T17:00:00+01:60");
    refused_time("2026-11-25T17:00:00Zjunk");
    refused_time("2026-11-25T17:00:00.Z");
    refused_time("2026-11-25T17:00:00.1234567891Z");
    refused_time("2026-11-25T7:00:00Z");
    refused_time("1969-12-31T23:59:59Z");
    refused_time("");
    refused_time("-5");
    refused_time("0");
    refused_time("12abc");
    refused_time("1e9");
    refused_time(" 1795626000");
    refused_time("inf");
    refused_time("nan");
}

static void test_expires(void **state)
{
    (void)state;
    int64_t rel = -1, abs = -1;
    assert_true(parse_expires("30", &rel, &abs, NULL));
    assert_int_equal(rel, 30000);
    assert_int_equal(abs, 0);
    assert_true(parse_expires("0.25", &rel, &abs, NULL));
    assert_int_equal(rel, 250);
    assert_true(parse_expires("2026-11-25T18:00:00+01:00", &rel, &abs, NULL));
    assert_int_equal(rel, 0);
    assert_int_equal(abs, 1795626000000LL);
    assert_true(parse_expires("@1795626000", &rel, &abs, NULL));
    assert_int_equal(abs, 1795626000000LL);
    const char *why = NULL;
    assert_false(parse_expires("0", &rel, &abs, &why));
    assert_non_null(why);
    assert_false(parse_expires("soon", &rel, &abs, NULL));
    assert_false(parse_expires("2026-11-25T18:00:00", &rel, &abs, NULL));
}

static void test_durations_and_backoff(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_true(parse_duration_ms("2s", &ms));
    assert_int_equal(ms, 2000);
    assert_true(parse_duration_ms("100ms", &ms));
    assert_int_equal(ms, 100);
    assert_true(parse_duration_ms("10m", &ms));
    assert_int_equal(ms, 600000);
    assert_true(parse_duration_ms("1.5h", &ms));
    assert_int_equal(ms, 5400000);
    assert_true(parse_duration_ms("2d", &ms));
    assert_int_equal(ms, 172800000);
    assert_true(parse_duration_ms("3", &ms)); /* bare: seconds */
    assert_int_equal(ms, 3000);
    assert_false(parse_duration_ms("", &ms));
    assert_false(parse_duration_ms("s", &ms));
    assert_false(parse_duration_ms("-1s", &ms));
    assert_false(parse_duration_ms("2 s", &ms));
    assert_false(parse_duration_ms("2sec", &ms));
    assert_false(parse_duration_ms("2w", &ms));

    int64_t base = 0, max = 0;
    double f = 0;
    assert_true(parse_backoff("2s,2,10m", &base, &f, &max));
    assert_int_equal(base, 2000);
    assert_true(f == 2.0);
    assert_int_equal(max, 600000);
    assert_true(parse_backoff("100ms,1,100ms", &base, &f, &max));
    assert_int_equal(base, 100);
    assert_true(f == 1.0);
    assert_int_equal(max, 100);
    assert_true(parse_backoff("0.5,1.5,1h", &base, &f, &max));
    assert_int_equal(base, 500);
    assert_true(f == 1.5);
    assert_false(parse_backoff("2s,2", &base, &f, &max));
    assert_false(parse_backoff("2s,2,10m,1", &base, &f, &max));
    assert_false(parse_backoff("2s,0.5,10m", &base, &f, &max)); /* factor < 1 */
    assert_false(parse_backoff("2s,1001,10m", &base, &f, &max));
    assert_false(parse_backoff("10m,2,2s", &base, &f, &max));   /* base > max */
    assert_false(parse_backoff("2s,x,10m", &base, &f, &max));
    assert_false(parse_backoff(",,", &base, &f, &max));
}

static void test_rate_priority_numbers_names(void **state)
{
    (void)state;
    double r = -1;
    assert_true(parse_rate("10/s", &r));
    assert_true(r == 10.0);
    assert_true(parse_rate("600/m", &r));
    assert_true(r == 10.0);
    assert_true(parse_rate("5/h", &r));
    assert_true(r > 0.001388 && r < 0.001389);
    assert_true(parse_rate("2.5", &r));
    assert_true(r == 2.5);
    assert_true(parse_rate("0", &r));
    assert_true(r == 0.0);
    assert_false(parse_rate("10/d", &r));
    assert_false(parse_rate("10/", &r));
    assert_false(parse_rate("/s", &r));
    assert_false(parse_rate("-1/s", &r));
    assert_false(parse_rate("10 /s", &r));

    int p = -1;
    for (int i = 0; i <= 9; i++) {
        char b[2] = {(char)('0' + i), 0};
        assert_true(parse_priority(b, &p));
        assert_int_equal(p, i);
    }
    assert_false(parse_priority("10", &p));
    assert_false(parse_priority("-1", &p));
    assert_false(parse_priority("", &p));
    assert_false(parse_priority("5x", &p));

    uint32_t u = 0;
    assert_true(parse_uint("100", &u));
    assert_int_equal(u, 100);
    assert_false(parse_uint("-1", &u));
    assert_false(parse_uint("1000001", &u));
    assert_false(parse_uint(" 1", &u));
    uint64_t v = 0;
    assert_true(parse_uint_max("18446744073709551615", UINT64_MAX, &v));
    assert_true(v == UINT64_MAX);
    assert_false(parse_uint_max("18446744073709551616", UINT64_MAX, &v));
    int64_t ms = 0;
    assert_true(parse_seconds("0.5", &ms));
    assert_int_equal(ms, 500);
    assert_false(parse_seconds("1e3", &ms));
    assert_false(parse_seconds("-0.5", &ms));

    assert_true(queue_name_ok("default"));
    assert_true(queue_name_ok("media.img-2_x"));
    assert_false(queue_name_ok("Media"));
    assert_false(queue_name_ok(""));
    assert_false(queue_name_ok("a b"));
    char q65[66];
    memset(q65, 'a', 65);
    q65[65] = '\0';
    assert_false(queue_name_ok(q65));
    q65[64] = '\0';
    assert_true(queue_name_ok(q65));
    assert_true(limit_key_ok("task:img.resize"));
    assert_true(limit_key_ok("queue:media"));
    assert_false(limit_key_ok("queue:Media"));
    assert_false(limit_key_ok("task:"));
    assert_false(limit_key_ok("img.resize"));
    assert_false(limit_key_ok("node:x"));
}

/* ---- rendering -------------------------------------------------------- */

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
    json_decref(j);
    return s;
}

static void test_format_helpers(void **state)
{
    (void)state;
    char b[40];
    assert_string_equal(format_rate(0, b, sizeof b), "-");
    assert_string_equal(format_rate(10, b, sizeof b), "10/s");
    assert_string_equal(format_rate(2.5, b, sizeof b), "2.5/s");
    assert_string_equal(format_rate(0.5, b, sizeof b), "30/m");
    assert_string_equal(format_rate(5.0 / 3600, b, sizeof b), "5/h");
    assert_string_equal(format_age(850, b, sizeof b), "850ms");
    assert_string_equal(format_age(12345, b, sizeof b), "12.3s");
    assert_string_equal(format_age(303000, b, sizeof b), "5m03s");
    assert_string_equal(format_age(7500000, b, sizeof b), "2h05m");
    assert_string_equal(format_age(273600000, b, sizeof b), "3d04h");
    assert_string_equal(iso_time(1795626000250LL, b, sizeof b), "2026-11-25T17:00:00.250Z");
    assert_string_equal(iso_time(0, b, sizeof b), "");
}

static void test_task_json_fields(void **state)
{
    (void)state;
    static const uint8_t res[] = {0x31}; /* 49 */
    taskq_task_t t = {
        .name = "test.square", .state = TASKQ_STATE_SUCCEEDED, .attempts = 2, .max_attempts = 3,
        .worker = "h.1", .child_pid = 77, .submitted_at = 1795626000000LL,
        .started_at = 1795626000100LL, .finished_at = 1795626000200LL, .progress_message = "",
        .result = res, .result_len = 1, .error = "", .queue = "media", .priority = 9,
        .failures = 1, .code = "taskq.crash", .due_at = 0, .expires_at = 1795626060000LL,
        .schedule = "",
    };
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8057", &t.id);
    char *s = dump(task_json(&t));
    assert_string_equal(
        s, "{\"attempts\":2,\"child_pid\":77,\"code\":\"taskq.crash\",\"due_at\":null,"
           "\"error\":null,\"expires_at\":\"2026-11-25T17:01:00.000Z\",\"failures\":1,"
           "\"finished_at\":\"2026-11-25T17:00:00.200Z\",\"group_id\":null,"
           "\"id\":\"01890a5d-ac96-774b-bcce-b302099a8057\",\"max_attempts\":3,"
           "\"name\":\"test.square\",\"parent_id\":null,\"priority\":9,"
           "\"progress\":{\"current\":0,\"message\":\"\",\"total\":0},\"queue\":\"media\","
           "\"rerun_by\":null,\"rerun_of\":null,"
           "\"result\":49,\"schedule\":null,\"started_at\":\"2026-11-25T17:00:00.100Z\","
           "\"state\":\"succeeded\",\"submitted_at\":\"2026-11-25T17:00:00.000Z\","
           "\"unique_key\":null,\"worker\":\"h.1\"}");
    free(s);
    /* a scheduled task: due_at shown, no worker yet */
    t.state = TASKQ_STATE_SCHEDULED;
    t.worker = "";
    t.due_at = 1795633200000LL;
    t.schedule = "nightly";
    json_t *j = task_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "scheduled");
    assert_string_equal(json_string_value(json_object_get(j, "due_at")), "2026-11-25T19:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "schedule")), "nightly");
    assert_true(json_is_null(json_object_get(j, "worker")));
    assert_true(json_is_null(json_object_get(j, "result")));
    json_decref(j);
}

static void test_task_json_lifecycle(void **state)
{
    (void)state;
    /* a revoked chain member re-run from a failed task, with a unique key:
     * the links are ids, the reason shows as the error */
    taskq_task_t t = {.name = "n", .state = TASKQ_STATE_REVOKED, .progress_message = "",
                      .error = "upstream_failed", .queue = "default", .code = "",
                      .schedule = "", .worker = "", .unique_key = "k:1"};
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8057", &t.id);
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8058", &t.group_id);
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8059", &t.parent_id);
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a805a", &t.rerun_of);
    json_t *j = task_json(&t);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "revoked");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "upstream_failed");
    assert_string_equal(json_string_value(json_object_get(j, "group_id")),
                        "01890a5d-ac96-774b-bcce-b302099a8058");
    assert_string_equal(json_string_value(json_object_get(j, "parent_id")),
                        "01890a5d-ac96-774b-bcce-b302099a8059");
    assert_string_equal(json_string_value(json_object_get(j, "rerun_of")),
                        "01890a5d-ac96-774b-bcce-b302099a805a");
    assert_true(json_is_null(json_object_get(j, "rerun_by")));
    assert_string_equal(json_string_value(json_object_get(j, "unique_key")), "k:1");
    json_decref(j);
    /* an expired task has no error even if a message is stored */
    t.state = TASKQ_STATE_EXPIRED;
    j = task_json(&t);
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    t.state = TASKQ_STATE_REVOKED;
    print_task_human(f, &t);
    fclose(f);
    assert_non_null(strstr(buf, "reason:       upstream_failed"));
    assert_non_null(strstr(buf, "parent:       01890a5d-ac96-774b-bcce-b302099a8059"));
    assert_non_null(strstr(buf, "unique_key:   k:1"));
    assert_null(strstr(buf, "rerun_by:"));
    free(buf);
}

static void test_group_json_and_bar(void **state)
{
    (void)state;
    taskq_group_info_t g = {.total = 1000, .succeeded = 509, .failed = 3, .remaining = 488,
                            .callback_state = TASKQ_STATE_PENDING, .on_fail = "settle"};
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8057", &g.id);
    taskq_id_parse("01890a5d-ac96-774b-bcce-b302099a8058", &g.callback);
    char *s = dump(group_json(&g));
    assert_string_equal(s, "{\"callback\":\"01890a5d-ac96-774b-bcce-b302099a8058\","
                           "\"callback_state\":\"pending\",\"failed\":3,"
                           "\"group\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
                           "\"on_fail\":\"settle\",\"remaining\":488,\"succeeded\":509,"
                           "\"total\":1000}");
    free(s);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_group_human(f, &g);
    fclose(f);
    assert_non_null(strstr(buf, "512/1000 done (509 succeeded, 3 failed), 488 remaining"));
    assert_non_null(strstr(buf, "(pending)"));
    free(buf);
    /* no callback */
    g.callback = (taskq_id_t){{0}};
    g.callback_state = -1;
    json_t *j = group_json(&g);
    assert_true(json_is_null(json_object_get(j, "callback")));
    assert_true(json_is_null(json_object_get(j, "callback_state")));
    json_decref(j);

    char b[128];
    assert_string_equal(format_wait_bar(b, sizeof b, 512, 1000, 3, 12345),
                        "[##########..........] 512/1000 done, 3 failed, 12.3 s");
    assert_string_equal(format_wait_bar(b, sizeof b, 0, 7, 0, 0),
                        "[....................] 0/7 done, 0 failed, 0.0 s");
    assert_string_equal(format_wait_bar(b, sizeof b, 7, 7, 7, 61000),
                        "[####################] 7/7 done, 7 failed, 61.0 s");
    assert_string_equal(format_wait_bar(b, sizeof b, 0, 0, 0, -5),
                        "[####################] 0/0 done, 0 failed, 0.0 s");
}

static void task_arg(const char *s, const char *name, const char *json)
{
    char n[129] = "unset";
    const char *j = "unset";
    if (!parse_task_arg(s, n, sizeof n, &j))
        fail_msg("'%s' refused", s);
    assert_string_equal(n, name);
    if (json)
        assert_string_equal(j, json);
    else
        assert_null(j);
}

static void test_task_args_states_since(void **state)
{
    (void)state;
    task_arg("test.add:[1,2]", "test.add", "[1,2]");
    task_arg("test.add", "test.add", NULL);
    task_arg("test.add:", "test.add", NULL);
    task_arg("mod:resize", "mod:resize", NULL);          /* "resize" is not JSON */
    task_arg("mod:resize:[3]", "mod:resize", "[3]");
    task_arg("a:1", "a", "1");                           /* a bare value */
    task_arg("a:1:", "a:1", NULL);
    task_arg("t:[\"a:b\"]", "t", "[\"a:b\"]");            /* ':' inside the JSON */
    task_arg("t:{\"k\": [1, {\"x\": null}]}", "t", "{\"k\": [1, {\"x\": null}]}");
    task_arg("taskq.sleep:0.5", "taskq.sleep", "0.5");
    char n[129];
    const char *j;
    assert_false(parse_task_arg("", n, sizeof n, &j));
    assert_false(parse_task_arg(":[1]", n, sizeof n, &j));
    assert_false(parse_task_arg("bad name:[1]", n, sizeof n, &j));
    assert_false(parse_task_arg("x:[1", n, sizeof n, &j)); /* "x:[1" is no name either */
    char longname[140];
    memset(longname, 'n', 129);
    strcpy(longname + 129, ":[1]");
    assert_false(parse_task_arg(longname, n, sizeof n, &j));
    longname[128] = '\0';
    task_arg(longname, longname, NULL);

    unsigned bits = 0;
    assert_true(parse_states("queued", &bits));
    assert_int_equal(bits, 1u << TASKQ_STATE_QUEUED);
    assert_true(parse_states("pending,scheduled,retrying", &bits));
    assert_int_equal(bits, (1u << TASKQ_STATE_PENDING) | (1u << TASKQ_STATE_SCHEDULED) |
                               (1u << TASKQ_STATE_RETRYING));
    bits = 42;
    assert_false(parse_states("", &bits));
    assert_false(parse_states("queued,", &bits));
    assert_false(parse_states("queued,,running", &bits));
    assert_false(parse_states("Queued", &bits));
    assert_int_equal(bits, 42);

    int64_t ms = 0;
    const char *why = NULL;
    int64_t now = 1795626000000LL;
    assert_true(parse_since("2h", now, &ms, &why));
    assert_int_equal(ms, now - 7200000);
    assert_true(parse_since("7d", now, &ms, &why));
    assert_int_equal(ms, now - 7 * 86400000LL);
    assert_true(parse_since("2026-11-25T17:00:00Z", now, &ms, &why));
    assert_int_equal(ms, 1795626000000LL);
    assert_true(parse_since("1795626000", now, &ms, &why)); /* bare: unix seconds */
    assert_int_equal(ms, 1795626000000LL);
    assert_false(parse_since("yesterday", now, &ms, &why));
    assert_false(parse_since("2026-11-25T17:00:00", now, &ms, &why));
}

static void test_attempt_json_and_row(void **state)
{
    (void)state;
    taskq_attempt_t a = {.attempt = 2, .worker = "h.1", .child_pid = 4242,
                         .started_at = 1795626000000LL, .finished_at = 1795626001500LL,
                         .state = "failed", .code = "http.404", .message = "not found"};
    char *s = dump(attempt_json(&a));
    assert_string_equal(s, "{\"attempt\":2,\"child_pid\":4242,\"code\":\"http.404\","
                           "\"duration_s\":1.5,\"finished_at\":\"2026-11-25T17:00:01.500Z\","
                           "\"message\":\"not found\",\"started_at\":\"2026-11-25T17:00:00.000Z\","
                           "\"state\":\"failed\",\"worker\":\"h.1\"}");
    free(s);
}

static void test_attempt_rows_text(void **state)
{
    (void)state;
    taskq_attempt_t a = {.attempt = 1, .worker = "h.1", .child_pid = 4242,
                         .started_at = 1795626000000LL, .finished_at = 1795626001500LL,
                         .state = "failed", .code = "http.404", .message = "not found"};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_attempt_header(f);
    print_attempt_row(f, &a, 0);
    a.attempt = 2;
    a.finished_at = 0;
    a.state = "running";
    a.code = "";
    a.message = "";
    print_attempt_row(f, &a, 1795626002000LL);
    fclose(f);
    char *l1 = buf, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_true(strncmp(l1, "ATTEMPT", 7) == 0);
    assert_non_null(strstr(l1, "WORKER"));
    assert_non_null(strstr(l1, "DURATION"));
    assert_non_null(strstr(l1, "MESSAGE"));
    assert_non_null(strstr(l2, "4242"));
    assert_non_null(strstr(l2, "2026-11-25T17:00:00.000Z"));
    assert_non_null(strstr(l2, "1.5s"));
    assert_non_null(strstr(l2, "http.404"));
    assert_non_null(strstr(l2, "not found"));
    assert_non_null(strstr(l3, "2.0s+")); /* running: time so far */
    free(buf);
}

static void test_queue_json_and_table(void **state)
{
    (void)state;
    taskq_queue_info_t q = {.name = "media", .paused = 1, .max_pending = 100,
                            .oldest_queued_ms = 2500, .slots = 8};
    for (int i = 0; i < TASKQ_NSTATES; i++)
        q.counts[i] = (uint64_t)(i + 1) * 10;
    taskq_limit_t l = {.key = "queue:media", .rate = 10, .burst = 20, .max_running = 4,
                       .running = 1, .tokens = 3.5, .paused_until = 0};
    char *s = dump(queue_json(&q, &l));
    assert_string_equal(
        s, "{\"counts\":{\"expired\":80,\"failed\":40,\"pending\":90,\"queued\":10,"
           "\"retrying\":60,\"revoked\":70,\"running\":20,\"scheduled\":50,\"succeeded\":30},"
           "\"limit\":{\"burst\":20,\"key\":\"queue:media\",\"max_running\":4,"
           "\"paused_until\":null,\"rate\":10.0,\"running\":1,\"tokens\":3.5},"
           "\"max_pending\":100,\"name\":\"media\",\"oldest_queued_s\":2.5,\"paused\":true,"
           "\"slots\":8}");
    free(s);
    q.max_pending = 0;
    json_t *j = queue_json(&q, NULL);
    assert_true(json_is_null(json_object_get(j, "max_pending")));
    assert_true(json_is_null(json_object_get(j, "limit")));
    json_decref(j);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_queue_header(f);
    q.max_pending = 100;
    print_queue_row(f, &q);
    fclose(f);
    /* header and row have the same columns, in the documented order */
    char *row = strchr(buf, '\n') + 1;
    const char *cols[] = {"QUEUE", "PAUSED", "MAX_PENDING", "SCHEDULED", "QUEUED", "RUNNING",
                          "RETRYING", "SUCCEEDED", "FAILED", "EXPIRED", "OLDEST", "SLOTS"};
    const char *vals[] = {"media", "yes", "100", "50", "10", "20", "60", "30", "40", "80",
                          "2.5s", "8"};
    char *h = buf, *r = row;
    for (size_t i = 0; i < 12; i++) {
        char hw[32], rw[32];
        int hn = 0, rn = 0;
        assert_int_equal(sscanf(h, "%31s%n", hw, &hn), 1);
        assert_int_equal(sscanf(r, "%31s%n", rw, &rn), 1);
        assert_string_equal(hw, cols[i]);
        assert_string_equal(rw, vals[i]);
        h += hn;
        r += rn;
    }
    free(buf);
}

static void test_limit_and_schedule_json(void **state)
{
    (void)state;
    taskq_limit_t l = {.key = "task:img.resize", .rate = 5.0 / 3600, .burst = 0,
                       .max_running = 0, .running = 0, .tokens = 1, .paused_until = 1795626000000LL};
    json_t *j = limit_json(&l);
    assert_string_equal(json_string_value(json_object_get(j, "paused_until")),
                        "2026-11-25T17:00:00.000Z");
    json_decref(j);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_limit_row(f, &l);
    fclose(f);
    assert_non_null(strstr(buf, "task:img.resize"));
    assert_non_null(strstr(buf, "5/h"));
    free(buf);

    static const uint8_t args[] = {0x92, 0x01, 0xa1, 'x'}; /* [1, "x"] */
    taskq_schedule_t s = {.name = "nightly", .cron = "0 6 * * *", .task = "report.build",
                          .args = args, .args_len = sizeof args, .queue = "", .tz = "Europe/Paris",
                          .overlap = "skip", .catchup = "last", .next_at = 1795626000000LL,
                          .fires = 3, .skipped = 1};
    char *d = dump(schedule_json(&s));
    assert_string_equal(
        d, "{\"args\":[1,\"x\"],\"catchup\":\"last\",\"cron\":\"0 6 * * *\",\"fires\":3,"
           "\"last_fire_at\":null,\"last_task_id\":null,\"max_attempts\":0,\"name\":\"nightly\","
           "\"next_at\":\"2026-11-25T17:00:00.000Z\",\"overlap\":\"skip\",\"paused\":false,"
           "\"priority\":5,\"queue\":null,\"skipped\":1,\"task\":\"report.build\","
           "\"tz\":\"Europe/Paris\"}");
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_iso8601),
        cmocka_unit_test(test_time_unix_and_refusals),
        cmocka_unit_test(test_expires),
        cmocka_unit_test(test_durations_and_backoff),
        cmocka_unit_test(test_rate_priority_numbers_names),
        cmocka_unit_test(test_format_helpers),
        cmocka_unit_test(test_task_json_fields),
        cmocka_unit_test(test_task_json_lifecycle),
        cmocka_unit_test(test_group_json_and_bar),
        cmocka_unit_test(test_task_args_states_since),
        cmocka_unit_test(test_attempt_json_and_row),
        cmocka_unit_test(test_attempt_rows_text),
        cmocka_unit_test(test_queue_json_and_table),
        cmocka_unit_test(test_limit_and_schedule_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
