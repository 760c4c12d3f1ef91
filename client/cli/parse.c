/* parse.c - the CLI's value parsers (see parse.h). */
#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "taskq.h"

#define SECONDS_MAX 1e9 /* ~31 years: larger is a typo */

/* A non-negative finite decimal number; *end points past it. Refuses
 * blanks, signs, hex, inf and nan (strtod would take them). */
static bool number(const char *s, double *v, const char **end)
{
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '.' && isdigit((unsigned char)s[1])))
        return false;
    const char *p = s;
    while (isdigit((unsigned char)*p))
        p++;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p))
            p++;
    }
    char buf[64];
    size_t n = (size_t)(p - s);
    if (n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    double d = strtod(buf, NULL);
    if (errno || !isfinite(d))
        return false;
    *v = d;
    *end = p;
    return true;
}

bool parse_seconds(const char *s, int64_t *ms)
{
    double v;
    const char *end;
    if (!number(s, &v, &end) || *end || v > SECONDS_MAX)
        return false;
    *ms = (int64_t)llround(v * 1000.0);
    return true;
}

bool parse_uint_max(const char *s, uint64_t max, uint64_t *out)
{
    if (!isdigit((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

bool parse_uint(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!parse_uint_max(s, 1000000, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

bool parse_priority(const char *s, int *out)
{
    if (s[0] < '0' || s[0] > '9' || s[1])
        return false;
    *out = s[0] - '0';
    return true;
}

bool parse_duration_ms(const char *s, int64_t *ms)
{
    double v;
    const char *u;
    if (!number(s, &v, &u))
        return false;
    double mult;
    if (!*u || !strcmp(u, "s"))
        mult = 1000;
    else if (!strcmp(u, "ms"))
        mult = 1;
    else if (!strcmp(u, "m"))
        mult = 60e3;
    else if (!strcmp(u, "h"))
        mult = 3600e3;
    else if (!strcmp(u, "d"))
        mult = 86400e3;
    else
        return false;
    double r = v * mult;
    if (r > SECONDS_MAX * 1000)
        return false;
    *ms = (int64_t)llround(r);
    return true;
}

/* Exactly n digits at *p -> *v; advances *p. */
static bool digits(const char **p, int n, int *v)
{
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        r = r * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *v = r;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

static bool fail_why(const char **why, const char *text)
{
    if (why)
        *why = text;
    return false;
}

/* "YYYY-MM-DD(T| )HH:MM[:SS[.fff]](Z|±HH[:MM]|±HHMM)" */
static bool parse_iso(const char *s, int64_t *unix_ms, const char **why)
{
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, ms = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return fail_why(why, "expected YYYY-MM-DDTHH:MM:SS+HH:MM");
    if (*p != 'T' && *p != 't' && *p != ' ')
        return fail_why(why, "expected a time after the date (YYYY-MM-DDTHH:MM:SS+HH:MM)");
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return fail_why(why, "expected HH:MM after the date");
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec))
            return fail_why(why, "expected two digits of seconds");
        if (*p == '.' || *p == ',') {
            p++;
            if (!isdigit((unsigned char)*p))
                return fail_why(why, "expected digits after the decimal point");
            int scale = 100;
            for (int i = 0; isdigit((unsigned char)*p); i++, p++) {
                if (i >= 9)
                    return fail_why(why, "more than 9 fractional digits");
                ms += (*p - '0') * scale;
                scale /= 10;
            }
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59)
        return fail_why(why, "a date or time field is out of range");
    int off = 0; /* minutes east of UTC */
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
        if (!digits(&p, 2, &oh))
            return fail_why(why, "expected the offset as +HH:MM");
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &om))
                return fail_why(why, "expected the offset as +HH:MM");
        } else if (isdigit((unsigned char)*p) && !digits(&p, 2, &om)) {
            return fail_why(why, "expected the offset as +HH:MM");
        }
        if (oh > 23 || om > 59)
            return fail_why(why, "the UTC offset is out of range");
        off = sign * (oh * 60 + om);
    } else if (!*p) {
        return fail_why(why, "needs a UTC offset (Z or +HH:MM): a local time is ambiguous");
    } else {
        return fail_why(why, "unexpected text after the time");
    }
    if (*p)
        return fail_why(why, "unexpected text after the offset");
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)off * 60;
    if (t <= 0)
        return fail_why(why, "before 1970");
    *unix_ms = t * 1000 + ms;
    return true;
}

/* Unix seconds, possibly fractional. */
static bool parse_unix(const char *s, int64_t *unix_ms, const char **why)
{
    double v;
    const char *end;
    if (!number(s, &v, &end) || *end)
        return fail_why(why, "expected ISO-8601 with an offset or unix seconds");
    if (v <= 0 || v > 253402300799.0) /* 9999-12-31 */
        return fail_why(why, "unix seconds out of range");
    *unix_ms = (int64_t)llround(v * 1000.0);
    return true;
}

bool parse_time_ms(const char *s, int64_t *unix_ms, const char **why)
{
    if (s[0] == '@')
        return parse_unix(s + 1, unix_ms, why);
    if (strlen(s) >= 10 && s[4] == '-')
        return parse_iso(s, unix_ms, why);
    return parse_unix(s, unix_ms, why);
}

bool parse_expires(const char *s, int64_t *rel_ms, int64_t *abs_ms, const char **why)
{
    int64_t v;
    if (s[0] == '@' || (strlen(s) >= 10 && s[4] == '-')) {
        if (!parse_time_ms(s, &v, why))
            return false;
        *rel_ms = 0;
        *abs_ms = v;
        return true;
    }
    if (!parse_seconds(s, &v) || v == 0)
        return fail_why(why, "expected seconds > 0, an ISO-8601 time with an offset, or @UNIX");
    *rel_ms = v;
    *abs_ms = 0;
    return true;
}

bool parse_backoff(const char *s, int64_t *base_ms, double *factor, int64_t *max_ms)
{
    char buf[128];
    if (strlen(s) >= sizeof buf)
        return false;
    strcpy(buf, s);
    char *c1 = strchr(buf, ',');
    char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ','))
        return false;
    *c1 = *c2 = '\0';
    int64_t b, m;
    double f;
    const char *end;
    if (!parse_duration_ms(buf, &b) || !parse_duration_ms(c2 + 1, &m) || !number(c1 + 1, &f, &end) ||
        *end || f < 1 || f > 1000 || b > m)
        return false;
    *base_ms = b;
    *factor = f;
    *max_ms = m;
    return true;
}

bool parse_rate(const char *s, double *per_second)
{
    double v;
    const char *u;
    if (!number(s, &v, &u))
        return false;
    double div;
    if (!*u || !strcmp(u, "/s"))
        div = 1;
    else if (!strcmp(u, "/m"))
        div = 60;
    else if (!strcmp(u, "/h"))
        div = 3600;
    else
        return false;
    if (v / div > 1e9)
        return false;
    *per_second = v / div;
    return true;
}

bool queue_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

bool task_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

bool limit_key_ok(const char *s)
{
    if (!strncmp(s, "task:", 5))
        return task_name_ok(s + 5);
    if (!strncmp(s, "queue:", 6))
        return queue_name_ok(s + 6);
    return false;
}

/* ---- issue 7: workflows, revoke, dead letters ------------------------------ */

static bool json_ok(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &err);
    if (!j)
        return false;
    json_decref(j);
    return true;
}

bool parse_task_arg(const char *s, char *name, size_t namesz, const char **json_text)
{
    size_t len = strlen(s);
    /* the leftmost ':' whose right side is JSON (or empty); names have no
     * JSON-opening characters, so "a:b:[1]" splits before "[1]" */
    for (size_t i = 0; i < len; i++) {
        if (s[i] != ':')
            continue;
        const char *rest = s + i + 1;
        if (i == 0 || i >= namesz || (*rest && !json_ok(rest)))
            continue;
        char tmp[129];
        if (i >= sizeof tmp)
            return false;
        memcpy(tmp, s, i);
        tmp[i] = '\0';
        if (!task_name_ok(tmp))
            continue;
        memcpy(name, tmp, i + 1);
        *json_text = *rest ? rest : NULL;
        return true;
    }
    if (len >= namesz || !task_name_ok(s))
        return false;
    memcpy(name, s, len + 1);
    *json_text = NULL;
    return true;
}

bool parse_states(const char *s, unsigned *bits)
{
    unsigned b = 0;
    const char *p = s;
    if (!*p)
        return false;
    for (;;) {
        size_t n = strcspn(p, ",");
        char w[16];
        if (n == 0 || n >= sizeof w)
            return false;
        memcpy(w, p, n);
        w[n] = '\0';
        int st = taskq_state_from_name(w);
        if (st < 0)
            return false;
        b |= 1u << st;
        p += n;
        if (!*p)
            break;
        p++; /* ',' */
    }
    *bits = b;
    return true;
}

bool parse_since(const char *s, int64_t now_ms, int64_t *unix_ms, const char **why)
{
    size_t n = strlen(s);
    /* a duration needs its unit ("90m", "2h", "7d"): a bare number is a
     * unix time, as for --eta */
    if (n > 0 && strchr("smhd", s[n - 1])) {
        int64_t d;
        if (parse_duration_ms(s, &d)) {
            *unix_ms = now_ms - d > 0 ? now_ms - d : 1;
            return true;
        }
    }
    return parse_time_ms(s, unix_ms, why);
}
