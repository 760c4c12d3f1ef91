/* retrypol.c - the retry decision; see retrypol.h. */
#include "retrypol.h"

#include <ctype.h>
#include <float.h>
#include <math.h> /* isfinite (a macro: no libm) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tqlimits.h"

/* Durations above this are refused by the parser (about 31,000 years): the
 * arithmetic below never overflows. */
#define DURATION_LIMIT_MS 1000000000000000LL

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------- resolve */

static bool factor_ok(double f)
{
    return isfinite(f) && f >= 1.0 && f <= 1000.0;
}

static bool backoff_ms_ok(int64_t ms)
{
    return ms > 0 && ms <= TQ_BACKOFF_MS_MAX;
}

static bool jitter_ok(int32_t j)
{
    return j == PROTO_JITTER_EQUAL || j == PROTO_JITTER_FULL || j == PROTO_JITTER_NONE;
}

static bool patterns_given(proto_str_t s)
{
    return s.ptr && s.len > 0 && s.len <= TQ_PATTERNS_MAX;
}

static void copy_patterns(char *dst, proto_str_t s)
{
    memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
}

void retrypol_resolve(retrypol_t *out, uint32_t submit_max_attempts,
                      const proto_retry_policy_t *submit, const proto_retry_policy_t *registered,
                      uint32_t broker_max_attempts)
{
    memset(out, 0, sizeof *out);
    /* a level is skipped when absent (NULL) or when it leaves the field at
     * its "not given" value; out-of-range values count as not given */
    const proto_retry_policy_t *lv[2] = {submit, registered};

    out->max_attempts = TQ_DEFAULT_MAX_ATTEMPTS;
    if (broker_max_attempts > 0)
        out->max_attempts = broker_max_attempts;
    if (registered && registered->max_attempts > 0)
        out->max_attempts = registered->max_attempts;
    if (submit && submit->max_attempts > 0)
        out->max_attempts = submit->max_attempts;
    if (submit_max_attempts > 0)
        out->max_attempts = submit_max_attempts;

    out->base_ms = TQ_DEFAULT_BACKOFF_BASE_MS;
    out->factor = TQ_DEFAULT_BACKOFF_FACTOR;
    out->max_ms = TQ_DEFAULT_BACKOFF_MAX_MS;
    out->jitter = PROTO_JITTER_EQUAL;
    bool base = false, factor = false, max = false, jitter = false, ron = false, noron = false;
    for (int i = 0; i < 2; i++) {
        const proto_retry_policy_t *p = lv[i];
        if (!p)
            continue;
        if (!base && backoff_ms_ok(p->backoff_base_ms)) {
            out->base_ms = p->backoff_base_ms;
            base = true;
        }
        if (!factor && factor_ok(p->backoff_factor)) {
            out->factor = p->backoff_factor;
            factor = true;
        }
        if (!max && backoff_ms_ok(p->backoff_max_ms)) {
            out->max_ms = p->backoff_max_ms;
            max = true;
        }
        if (!jitter && jitter_ok(p->jitter)) {
            out->jitter = p->jitter;
            jitter = true;
        }
        if (!ron && patterns_given(p->retry_on)) {
            copy_patterns(out->retry_on, p->retry_on);
            ron = true;
        }
        if (!noron && patterns_given(p->no_retry_on)) {
            copy_patterns(out->no_retry_on, p->no_retry_on);
            noron = true;
        }
    }
}

/* ----------------------------------------------------------- durations */

/* "N[.F][unit]" over exactly s[0..n); no sign, no blanks. */
static int parse_duration_n(const char *s, size_t n, int64_t *out_ms)
{
    size_t i = 0;
    int64_t whole = 0;
    if (n == 0 || !isdigit((unsigned char)s[0]))
        return -1;
    while (i < n && isdigit((unsigned char)s[i])) {
        if (whole > DURATION_LIMIT_MS)
            return -1;
        whole = whole * 10 + (s[i] - '0');
        i++;
    }
    int64_t frac = 0, frac_div = 1;
    if (i < n && s[i] == '.') {
        i++;
        if (i == n || !isdigit((unsigned char)s[i]))
            return -1;
        while (i < n && isdigit((unsigned char)s[i])) {
            if (frac_div < 1000000000LL) { /* digits past the 9th do not matter */
                frac = frac * 10 + (s[i] - '0');
                frac_div *= 10;
            }
            i++;
        }
    }
    int64_t unit;
    size_t ul = n - i;
    const char *u = s + i;
    if (ul == 0 || (ul == 1 && u[0] == 's'))
        unit = 1000;
    else if (ul == 2 && u[0] == 'm' && u[1] == 's')
        unit = 1;
    else if (ul == 1 && u[0] == 'm')
        unit = 60 * 1000;
    else if (ul == 1 && u[0] == 'h')
        unit = 3600 * 1000;
    else if (ul == 1 && u[0] == 'd')
        unit = 86400LL * 1000;
    else
        return -1;
    if (whole > DURATION_LIMIT_MS / unit)
        return -1;
    /* fractions of a millisecond are dropped */
    *out_ms = whole * unit + frac * unit / frac_div;
    return 0;
}

int retrypol_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (!s || !out_ms)
        return -1;
    return parse_duration_n(s, strlen(s), out_ms);
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

int retrypol_parse_backoff(const char *s, int64_t *base_ms, double *factor, int64_t *max_ms,
                           char *err, size_t errsz)
{
    static const char usage[] = "expected BASE,FACTOR,MAX (e.g. 2s,2,10m)";
    if (!s)
        return fail(err, errsz, "backoff: %s", usage);
    const char *c1 = strchr(s, ',');
    const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ','))
        return fail(err, errsz, "backoff '%s': %s", s, usage);
    const char *bp = s, *fp = c1 + 1, *mp = c2 + 1;
    size_t bn = (size_t)(c1 - s), fn = (size_t)(c2 - fp), mn = strlen(mp);
    trim(&bp, &bn);
    trim(&fp, &fn);
    trim(&mp, &mn);

    int64_t b, m;
    if (parse_duration_n(bp, bn, &b) != 0)
        return fail(err, errsz, "backoff base: bad duration '%.*s' (e.g. 500ms, 2s, 10m)", (int)bn,
                    bp);
    if (b < 1 || b > TQ_BACKOFF_MS_MAX)
        return fail(err, errsz, "backoff base: '%.*s' out of range 1ms-30d", (int)bn, bp);
    char fbuf[32];
    double f = 0;
    char *end = NULL;
    bool fnum = fn > 0 && fn < sizeof fbuf && (isdigit((unsigned char)fp[0]) || fp[0] == '.');
    if (fnum) {
        memcpy(fbuf, fp, fn);
        fbuf[fn] = '\0';
        f = strtod(fbuf, &end);
        fnum = end == fbuf + fn;
    }
    if (!fnum || !factor_ok(f))
        return fail(err, errsz, "backoff factor: '%.*s' is not a number from 1 to 1000", (int)fn,
                    fp);
    if (parse_duration_n(mp, mn, &m) != 0)
        return fail(err, errsz, "backoff max: bad duration '%.*s' (e.g. 1m, 10m, 1h)", (int)mn, mp);
    if (m < 1 || m > TQ_BACKOFF_MS_MAX)
        return fail(err, errsz, "backoff max: '%.*s' out of range 1ms-30d", (int)mn, mp);
    if (m < b)
        return fail(err, errsz, "backoff max (%.*s) is below base (%.*s)", (int)mn, mp, (int)bn,
                    bp);
    if (base_ms)
        *base_ms = b;
    if (factor)
        *factor = f;
    if (max_ms)
        *max_ms = m;
    return 0;
}

/* ------------------------------------------------------------- jitter */

static const char *const k_jitter[] = {"equal", "full", "none"};

int retrypol_jitter_from_name(const char *s, size_t len)
{
    if (!s)
        return -1;
    for (int i = 0; i < 3; i++)
        if (strlen(k_jitter[i]) == len && memcmp(k_jitter[i], s, len) == 0)
            return i;
    return -1;
}

const char *retrypol_jitter_name(int jitter)
{
    return jitter >= 0 && jitter < 3 ? k_jitter[jitter] : "unknown";
}

/* ------------------------------------------------------------ patterns */

/* Calls fn on every trimmed entry of the list s[0..n) (empty ones too);
 * stops early when fn returns true, and returns that. */
static bool each_entry(const char *s, size_t n, bool (*fn)(const char *, size_t, void *), void *arg)
{
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        const char *e = s + i;
        size_t en = j - i;
        trim(&e, &en);
        if (fn(e, en, arg))
            return true;
        if (j >= n)
            return false;
        i = j + 1;
    }
}

typedef struct {
    const char *code;
    size_t len;
} code_arg_t;

static bool entry_matches(const char *e, size_t n, void *arg)
{
    const code_arg_t *c = arg;
    if (n == 0)
        return false;
    if (e[n - 1] == '*')
        return c->len >= n - 1 && memcmp(c->code, e, n - 1) == 0;
    return c->len == n && memcmp(c->code, e, n) == 0;
}

bool retrypol_match(const char *patterns, const char *code, size_t code_len)
{
    if (!patterns || !*patterns)
        return false;
    code_arg_t c = {code ? code : "", code ? code_len : 0};
    return each_entry(patterns, strlen(patterns), entry_matches, &c);
}

static bool entry_invalid(const char *e, size_t n, void *arg)
{
    (void)arg;
    if (n > 0 && e[n - 1] == '*')
        n--; /* a prefix: may be empty ("*") */
    else if (n == 0)
        return true;
    if (n > TQ_CODE_MAX)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)e[i];
        if (!isalnum(ch) && ch != '_' && ch != '.')
            return true;
    }
    return false;
}

bool retrypol_patterns_valid(const char *patterns, size_t len)
{
    if (len == 0)
        return true;
    if (!patterns || len > TQ_PATTERNS_MAX || memchr(patterns, '\0', len))
        return false;
    return !each_entry(patterns, len, entry_invalid, NULL);
}

/* ------------------------------------------------------------ decision */

int64_t retrypol_delay_ms(const retrypol_t *p, uint32_t failures, double u)
{
    double base = p->base_ms > 0 ? (double)p->base_ms : 0.0;
    double cap = p->max_ms > 0 ? (double)p->max_ms : 0.0;
    if (cap > (double)TQ_BACKOFF_MS_MAX)
        cap = (double)TQ_BACKOFF_MS_MAX;
    double f = isfinite(p->factor) && p->factor >= 1.0 ? p->factor : 1.0;
    double d = base;
    for (uint32_t i = 1; i < failures && d < cap; i++)
        d *= f;
    if (d > cap)
        d = cap;
    int64_t di = (int64_t)d;
    if (!(u >= 0.0)) /* also NaN */
        u = 0.0;
    if (u >= 1.0)
        u = 1.0 - DBL_EPSILON / 2; /* the largest double below 1 */
    switch (p->jitter) {
    case PROTO_JITTER_NONE:
        return di;
    case PROTO_JITTER_FULL:
        return (int64_t)(u * (double)di);
    default: { /* equal: [d/2, d] */
        int64_t half = di / 2;
        return half + (int64_t)(u * (double)(di - half));
    }
    }
}

bool retrypol_should_retry(const retrypol_t *p, uint32_t failures, const char *code,
                           size_t code_len, bool permanent)
{
    if (permanent || failures >= p->max_attempts)
        return false;
    if (retrypol_match(p->no_retry_on, code, code_len))
        return false;
    if (p->retry_on[0] && !retrypol_match(p->retry_on, code, code_len))
        return false;
    return true;
}
