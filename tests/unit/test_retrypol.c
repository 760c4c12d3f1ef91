/* test_retrypol.c - the retry decision: policy resolution (submit >
 * registration > broker > defaults), --backoff and duration parsing,
 * backoff delays with factor, cap and jitter bounds, code patterns, and
 * whether a failure is retried. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "retrypol.h"
#include "tqlimits.h"

static proto_str_t S(const char *s)
{
    proto_str_t r = {s, (uint32_t)strlen(s)};
    return r;
}

static proto_retry_policy_t none_given(void)
{
    proto_retry_policy_t p;
    memset(&p, 0, sizeof p);
    p.jitter = -1;
    return p;
}

static const double U_MAX = 0.99999999999999989; /* the largest double below 1 */

/* ------------------------------------------------------------- resolve */

static void test_resolve_defaults(void **state)
{
    (void)state;
    retrypol_t p;
    retrypol_resolve(&p, 0, NULL, NULL, 0);
    assert_int_equal(p.max_attempts, TQ_DEFAULT_MAX_ATTEMPTS);
    assert_int_equal(p.base_ms, 2000);
    assert_true(p.factor == 2.0);
    assert_int_equal(p.max_ms, 600000);
    assert_int_equal(p.jitter, PROTO_JITTER_EQUAL);
    assert_string_equal(p.retry_on, "");
    assert_string_equal(p.no_retry_on, "");

    proto_retry_policy_t a = none_given(), b = none_given();
    retrypol_resolve(&p, 0, &a, &b, 5); /* nothing given: broker, then defaults */
    assert_int_equal(p.max_attempts, 5);
    assert_int_equal(p.base_ms, 2000);
    assert_int_equal(p.jitter, PROTO_JITTER_EQUAL);
}

static void test_resolve_precedence_field_by_field(void **state)
{
    (void)state;
    proto_retry_policy_t reg = none_given();
    reg.max_attempts = 2;
    reg.backoff_base_ms = 100;
    reg.backoff_factor = 1.0;
    reg.backoff_max_ms = 100;
    reg.jitter = PROTO_JITTER_NONE;
    reg.retry_on = S("http.5*,taskq.*");
    reg.no_retry_on = S("http.501");

    retrypol_t p;
    retrypol_resolve(&p, 0, NULL, &reg, 7); /* registration beats the broker */
    assert_int_equal(p.max_attempts, 2);
    assert_int_equal(p.base_ms, 100);
    assert_true(p.factor == 1.0);
    assert_int_equal(p.max_ms, 100);
    assert_int_equal(p.jitter, PROTO_JITTER_NONE);
    assert_string_equal(p.retry_on, "http.5*,taskq.*");
    assert_string_equal(p.no_retry_on, "http.501");

    proto_retry_policy_t sub = none_given();
    sub.backoff_base_ms = 500;
    sub.jitter = PROTO_JITTER_FULL;
    sub.no_retry_on = S("http.4*");
    retrypol_resolve(&p, 9, &sub, &reg, 7); /* submit beats registration */
    assert_int_equal(p.max_attempts, 9);
    assert_int_equal(p.base_ms, 500);
    assert_true(p.factor == 1.0);    /* from the registration */
    assert_int_equal(p.max_ms, 100); /* from the registration */
    assert_int_equal(p.jitter, PROTO_JITTER_FULL);
    assert_string_equal(p.retry_on, "http.5*,taskq.*");
    assert_string_equal(p.no_retry_on, "http.4*");

    /* the submit's max_attempts argument is the task spec's; 0 = not given */
    retrypol_resolve(&p, 0, &sub, &reg, 7);
    assert_int_equal(p.max_attempts, 2);
    sub.backoff_factor = 3.5;
    sub.backoff_max_ms = 60000;
    retrypol_resolve(&p, 0, &sub, NULL, 0);
    assert_int_equal(p.max_attempts, TQ_DEFAULT_MAX_ATTEMPTS);
    assert_true(p.factor == 3.5);
    assert_int_equal(p.max_ms, 60000);
    assert_string_equal(p.retry_on, "");
}

static void test_resolve_ignores_out_of_range_values(void **state)
{
    (void)state;
    /* the codec validates; resolve still treats nonsense as "not given" */
    proto_retry_policy_t sub = none_given();
    sub.backoff_base_ms = -5;
    sub.backoff_factor = 0.5;
    sub.backoff_max_ms = TQ_BACKOFF_MS_MAX + 1;
    sub.jitter = 7;
    retrypol_t p;
    retrypol_resolve(&p, 0, &sub, NULL, 0);
    assert_int_equal(p.base_ms, 2000);
    assert_true(p.factor == 2.0);
    assert_int_equal(p.max_ms, 600000);
    assert_int_equal(p.jitter, PROTO_JITTER_EQUAL);
}

/* ------------------------------------------------------------- parsing */

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"30", 30000},   {"30s", 30000},   {"500ms", 500}, {"10m", 600000},
        {"2h", 7200000}, {"1d", 86400000}, {"0", 0},       {"1.5s", 1500},
        {"0.25", 250},   {"1.5m", 90000},  {"0.0001s", 0}, {"007", 7000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        if (retrypol_parse_duration_ms(ok[i].s, &ms) != 0 || ms != ok[i].ms)
            fail_msg("duration \"%s\": got %lld, want %lld", ok[i].s, (long long)ms,
                     (long long)ok[i].ms);
    }
    static const char *const bad[] = {"",
                                      "-1",
                                      "1x",
                                      "s",
                                      "1.s",
                                      ".5",
                                      " 1",
                                      "1 ",
                                      "1 s",
                                      "1S",
                                      "1sec",
                                      "1e3",
                                      "1,5",
                                      "99999999999999999999d",
                                      "400000000000d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        if (retrypol_parse_duration_ms(bad[i], &ms) != -1)
            fail_msg("duration \"%s\" accepted (%lld)", bad[i], (long long)ms);
    }
    int64_t ms;
    assert_int_equal(retrypol_parse_duration_ms(NULL, &ms), -1);
}

static void test_parse_backoff(void **state)
{
    (void)state;
    int64_t b = 0, m = 0;
    double f = 0;
    char err[200] = "";
    assert_int_equal(retrypol_parse_backoff("2s,2,10m", &b, &f, &m, err, sizeof err), 0);
    assert_int_equal(b, 2000);
    assert_true(f == 2.0);
    assert_int_equal(m, 600000);
    assert_int_equal(retrypol_parse_backoff("500ms,1.5,1h", &b, &f, &m, err, sizeof err), 0);
    assert_int_equal(b, 500);
    assert_true(f == 1.5);
    assert_int_equal(m, 3600000);
    assert_int_equal(retrypol_parse_backoff(" 1 , 3 , 90 ", &b, &f, &m, err, sizeof err), 0);
    assert_int_equal(b, 1000);
    assert_true(f == 3.0);
    assert_int_equal(m, 90000);
    assert_int_equal(retrypol_parse_backoff("100ms,1,100ms", &b, &f, &m, NULL, 0), 0);
    assert_int_equal(b, 100);
    assert_true(f == 1.0);
    assert_int_equal(m, 100);

    static const struct {
        const char *s, *want;
    } bad[] = {
        {"2s,2", "expected BASE,FACTOR,MAX"},
        {"2s,2,10m,1h", "expected BASE,FACTOR,MAX"},
        {"", "expected BASE,FACTOR,MAX"},
        {"x,2,10m", "backoff base: bad duration 'x'"},
        {",2,10m", "backoff base: bad duration ''"},
        {"0,2,10m", "backoff base: '0' out of range 1ms-30d"},
        {"31d,2,31d", "backoff base: '31d' out of range"},
        {"2s,0.5,10m", "backoff factor: '0.5' is not a number from 1 to 1000"},
        {"2s,abc,10m", "backoff factor: 'abc'"},
        {"2s,2x,10m", "backoff factor: '2x'"},
        {"2s,1001,10m", "backoff factor: '1001'"},
        {"2s,nan,10m", "backoff factor: 'nan'"},
        {"2s,-2,10m", "backoff factor: '-2'"},
        {"2s,2,10q", "backoff max: bad duration '10q'"},
        {"2s,2,31d", "backoff max: '31d' out of range 1ms-30d"},
        {"10m,2,1m", "backoff max (1m) is below base (10m)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        b = m = 7;
        err[0] = '\0';
        if (retrypol_parse_backoff(bad[i].s, &b, &f, &m, err, sizeof err) != -1)
            fail_msg("backoff \"%s\" accepted", bad[i].s);
        if (!strstr(err, bad[i].want))
            fail_msg("backoff \"%s\": error \"%s\", want \"%s\"", bad[i].s, err, bad[i].want);
        assert_int_equal(b, 7); /* outputs untouched on error */
        assert_int_equal(m, 7);
    }
    assert_int_equal(retrypol_parse_backoff(NULL, &b, &f, &m, err, sizeof err), -1);
}

static void test_jitter_names(void **state)
{
    (void)state;
    assert_int_equal(retrypol_jitter_from_name("equal", 5), PROTO_JITTER_EQUAL);
    assert_int_equal(retrypol_jitter_from_name("full", 4), PROTO_JITTER_FULL);
    assert_int_equal(retrypol_jitter_from_name("none", 4), PROTO_JITTER_NONE);
    assert_int_equal(retrypol_jitter_from_name("nonesuch", 4), PROTO_JITTER_NONE); /* by len */
    assert_int_equal(retrypol_jitter_from_name("non", 3), -1);
    assert_int_equal(retrypol_jitter_from_name("Full", 4), -1);
    assert_int_equal(retrypol_jitter_from_name("", 0), -1);
    assert_int_equal(retrypol_jitter_from_name(NULL, 0), -1);
    assert_string_equal(retrypol_jitter_name(PROTO_JITTER_EQUAL), "equal");
    assert_string_equal(retrypol_jitter_name(PROTO_JITTER_FULL), "full");
    assert_string_equal(retrypol_jitter_name(PROTO_JITTER_NONE), "none");
    assert_string_equal(retrypol_jitter_name(-1), "unknown");
}

/* --------------------------------------------------------------- delays */

static retrypol_t pol(int64_t base, double factor, int64_t max, int jitter)
{
    retrypol_t p;
    memset(&p, 0, sizeof p);
    p.max_attempts = 3;
    p.base_ms = base;
    p.factor = factor;
    p.max_ms = max;
    p.jitter = jitter;
    return p;
}

static void test_delay_sequence_factor_and_cap(void **state)
{
    (void)state;
    retrypol_t p = pol(1000, 2.0, 10000, PROTO_JITTER_NONE);
    static const int64_t want[] = {1000, 2000, 4000, 8000, 10000, 10000};
    for (uint32_t f = 1; f <= 6; f++)
        assert_int_equal(retrypol_delay_ms(&p, f, 0.5), want[f - 1]);
    assert_int_equal(retrypol_delay_ms(&p, 0, 0.5), 1000); /* treated as the first */
    assert_int_equal(retrypol_delay_ms(&p, 100, 0.5), 10000);
    assert_int_equal(retrypol_delay_ms(&p, UINT32_MAX, 0.5), 10000);

    p = pol(500, 1.5, 3600000, PROTO_JITTER_NONE);
    static const int64_t want15[] = {500, 750, 1125, 1687, 2531};
    for (uint32_t f = 1; f <= 5; f++)
        assert_int_equal(retrypol_delay_ms(&p, f, 0.0), want15[f - 1]);

    p = pol(100, 1.0, 100, PROTO_JITTER_NONE); /* a constant delay */
    for (uint32_t f = 1; f <= 10; f++)
        assert_int_equal(retrypol_delay_ms(&p, f, 0.9), 100);

    /* the defaults 2s,2,10m: 2, 4, 8, ... capped at 600 s */
    retrypol_resolve(&p, 0, NULL, NULL, 0);
    p.jitter = PROTO_JITTER_NONE;
    assert_int_equal(retrypol_delay_ms(&p, 1, 0.0), 2000);
    assert_int_equal(retrypol_delay_ms(&p, 9, 0.0), 512000);
    assert_int_equal(retrypol_delay_ms(&p, 10, 0.0), 600000);

    /* a base above the cap is capped */
    p = pol(5000, 2.0, 3000, PROTO_JITTER_NONE);
    assert_int_equal(retrypol_delay_ms(&p, 1, 0.0), 3000);
}

static void test_delay_jitter_bounds(void **state)
{
    (void)state;
    retrypol_t eq = pol(1000, 2.0, 10000, PROTO_JITTER_EQUAL);
    retrypol_t full = pol(1000, 2.0, 10000, PROTO_JITTER_FULL);
    /* failures 4: d = 8000 */
    assert_int_equal(retrypol_delay_ms(&eq, 4, 0.0), 4000);
    assert_int_equal(retrypol_delay_ms(&eq, 4, 0.5), 6000);
    assert_int_equal(retrypol_delay_ms(&eq, 4, U_MAX), 7999);
    assert_int_equal(retrypol_delay_ms(&full, 4, 0.0), 0);
    assert_int_equal(retrypol_delay_ms(&full, 4, 0.5), 4000);
    assert_int_equal(retrypol_delay_ms(&full, 4, U_MAX), 7999);
    /* u outside [0,1) is clamped into it */
    assert_int_equal(retrypol_delay_ms(&eq, 4, 1.0), 7999);
    assert_int_equal(retrypol_delay_ms(&eq, 4, 7.0), 7999);
    assert_int_equal(retrypol_delay_ms(&eq, 4, -1.0), 4000);
    assert_int_equal(retrypol_delay_ms(&full, 4, 1.0), 7999);
    /* odd d: equal stays within [floor(d/2), d] */
    retrypol_t odd = pol(999, 1.0, 999, PROTO_JITTER_EQUAL);
    assert_int_equal(retrypol_delay_ms(&odd, 1, 0.0), 499);
    assert_int_equal(retrypol_delay_ms(&odd, 1, U_MAX), 998);
    /* a sweep: every draw within its bounds, for every failure count */
    for (uint32_t f = 1; f <= 8; f++) {
        int64_t d = retrypol_delay_ms(&(retrypol_t){.max_attempts = 3,
                                                    .base_ms = 1000,
                                                    .factor = 2.0,
                                                    .max_ms = 10000,
                                                    .jitter = PROTO_JITTER_NONE},
                                      f, 0.0);
        for (int i = 0; i <= 1000; i++) {
            double u = i == 1000 ? U_MAX : i / 1000.0;
            int64_t e = retrypol_delay_ms(&eq, f, u), g = retrypol_delay_ms(&full, f, u);
            assert_in_range(e, d / 2, d);
            assert_in_range(g, 0, d);
        }
    }
}

/* ------------------------------------------------------------- patterns */

static bool m(const char *patterns, const char *code)
{
    return retrypol_match(patterns, code, strlen(code));
}

static void test_match_prefixes(void **state)
{
    (void)state;
    assert_true(m("http.4*", "http.404"));
    assert_true(m("http.4*", "http.4"));
    assert_false(m("http.4*", "http.500"));
    assert_false(m("http.4*", "http."));
    assert_true(m("*", "http.500"));
    assert_true(m("*", "taskq.crash"));
    assert_true(m("taskq.crash", "taskq.crash"));
    assert_false(m("taskq.crash", "taskq.crash2"));
    assert_false(m("taskq.crash", "taskq.cras"));
    assert_true(m("http.5*, taskq.timeout ,db.*", "taskq.timeout"));
    assert_true(m("http.5*, taskq.timeout ,db.*", "db.locked"));
    assert_true(m(" http.5* ", "http.503"));
    assert_false(m("http.5*, taskq.timeout ,db.*", "taskq.lost"));
    assert_false(m("", "anything"));
    assert_false(m(NULL, "anything"));
    /* code is a (pointer, length) pair, not NUL-terminated */
    assert_true(retrypol_match("http.404", "http.404xyz", 8));
    assert_false(retrypol_match("http.404", "http.404xyz", 9));
    assert_true(retrypol_match("http.*", "http.404xyz", 5));
}

static void test_patterns_valid(void **state)
{
    (void)state;
    static const char *const ok[] = {"",        "http.4*", "http.4*,taskq.timeout", "*",
                                     " a , b ", "A_b.9",   "taskq.*,http.5*"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!retrypol_patterns_valid(ok[i], strlen(ok[i])))
            fail_msg("patterns \"%s\" refused", ok[i]);
    static const char *const bad[] = {"a,,b",   "a,",  ",a", "a*b", "**",
                                      "http-4", "a b", "é",  " ",   "a;b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (retrypol_patterns_valid(bad[i], strlen(bad[i])))
            fail_msg("patterns \"%s\" accepted", bad[i]);
    char big[TQ_PATTERNS_MAX + 2];
    memset(big, 'a', sizeof big);
    for (size_t i = 0; i + 1 < sizeof big; i += 8)
        big[i] = ','; /* entries of 7 chars */
    big[0] = 'a';
    assert_true(retrypol_patterns_valid(big, TQ_PATTERNS_MAX));
    assert_false(retrypol_patterns_valid(big, TQ_PATTERNS_MAX + 1));
    char code[TQ_CODE_MAX + 2];
    memset(code, 'x', sizeof code);
    assert_true(retrypol_patterns_valid(code, TQ_CODE_MAX));
    assert_false(retrypol_patterns_valid(code, TQ_CODE_MAX + 1));
    code[TQ_CODE_MAX] = '*'; /* a 64-char prefix plus '*' */
    assert_true(retrypol_patterns_valid(code, TQ_CODE_MAX + 1));
    assert_false(retrypol_patterns_valid("a\0b", 3));
}

/* ------------------------------------------------------------- decision */

static bool retry(const retrypol_t *p, uint32_t failures, const char *code, bool permanent)
{
    return retrypol_should_retry(p, failures, code, strlen(code), permanent);
}

static void test_should_retry(void **state)
{
    (void)state;
    retrypol_t p;
    retrypol_resolve(&p, 0, NULL, NULL, 0); /* max 3, every code */
    assert_true(retry(&p, 1, "taskq.error", false));
    assert_true(retry(&p, 2, "taskq.crash", false));
    assert_false(retry(&p, 3, "taskq.crash", false)); /* budget spent */
    assert_false(retry(&p, 4, "taskq.error", false));
    assert_false(retry(&p, 1, "taskq.error", true)); /* permanent */

    proto_retry_policy_t sub = none_given();
    sub.no_retry_on = S("http.4*");
    retrypol_resolve(&p, 5, &sub, NULL, 0);
    assert_false(retry(&p, 1, "http.404", false));
    assert_true(retry(&p, 1, "http.500", false));
    assert_true(retry(&p, 4, "http.500", false));
    assert_false(retry(&p, 5, "http.500", false));

    sub = none_given();
    sub.retry_on = S("http.5*");
    retrypol_resolve(&p, 0, &sub, NULL, 0);
    assert_true(retry(&p, 1, "http.503", false));
    assert_false(retry(&p, 1, "http.404", false));
    assert_false(retry(&p, 1, "taskq.crash", false)); /* retry_on is the whole list */
    assert_false(retry(&p, 1, "http.503", true));

    /* no_retry_on wins over retry_on */
    sub.retry_on = S("http.*");
    sub.no_retry_on = S("http.404, http.410");
    retrypol_resolve(&p, 0, &sub, NULL, 0);
    assert_true(retry(&p, 1, "http.500", false));
    assert_true(retry(&p, 1, "http.403", false));
    assert_false(retry(&p, 1, "http.404", false));
    assert_false(retry(&p, 1, "http.410", false));
    sub.no_retry_on = S("*");
    retrypol_resolve(&p, 0, &sub, NULL, 0);
    assert_false(retry(&p, 1, "http.500", false));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_defaults),
        cmocka_unit_test(test_resolve_precedence_field_by_field),
        cmocka_unit_test(test_resolve_ignores_out_of_range_values),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_backoff),
        cmocka_unit_test(test_jitter_names),
        cmocka_unit_test(test_delay_sequence_factor_and_cap),
        cmocka_unit_test(test_delay_jitter_bounds),
        cmocka_unit_test(test_match_prefixes),
        cmocka_unit_test(test_patterns_valid),
        cmocka_unit_test(test_should_retry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
