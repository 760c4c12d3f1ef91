/* cron.c - cron expressions and their next fire time in a zone; see cron.h.
 *
 * Parsing fills bit sets per field. cron_next walks local calendar days
 * (pure arithmetic, no time zone), and only for a day whose date matches
 * it asks the tz database for that day's UTC offsets: it samples the
 * offset every hour over a window around the day and locates each change
 * to the second, which gives the day as a few segments of constant offset.
 * A local time then maps to 0 (in a gap), 1, or 2 (in a fold) instants by
 * plain arithmetic, and the DST rules of cron.h pick the fire instants.
 *
 * Zones other than UTC go through the C library: TZ is set to the zone,
 * tzset(), localtime_r(), and the caller's TZ is restored (and tzset()
 * again) before cron_next returns. That is invisible to a single-threaded
 * caller (the broker) but not thread-safe. */
#include "cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tqlimits.h"

#define DAY_S 86400
#define EVERY_MAX_MS (366LL * DAY_S * 1000)
#define YEARS_AHEAD 5
/* An offset from UTC never exceeds this (real zones stay within -12h..+14h;
 * a day's search window is widened by it on both sides). */
#define OFF_MAX_S (26 * 3600)
#define SAMPLE_S 3600 /* offset sampling step: two changes are never closer */
#define SEG_MAX 16
/* |after_ms| beyond this (about 35,000 years) is refused: keeps every sum
 * below far from overflow and inside what localtime_r handles. */
#define AFTER_LIMIT_MS (1LL << 50)

/* ---------------------------------------------------------------- errors */

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

/* -------------------------------------------------------------- calendar */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ----------------------------------------------------------------- parse */

typedef struct {
    const char *label;
    int min, max; /* accepted values */
    int imax;     /* upper end of '*' and of "N/STEP" */
    const char *const *names;
    int names_base; /* value of names[0] */
} field_def_t;

static const char *const k_months[] = {"jan", "feb", "mar", "apr", "may", "jun", "jul",
                                       "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const k_wdays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

enum { F_MIN, F_HOUR, F_MDAY, F_MONTH, F_WDAY, F_COUNT };

static const field_def_t k_fields[F_COUNT] = {
    {"minute field", 0, 59, 59, NULL, 0},
    {"hour field", 0, 23, 23, NULL, 0},
    {"day-of-month field", 1, 31, 31, NULL, 0},
    {"month field", 1, 12, 12, k_months, 1},
    /* 7 is Sunday too; '*' and N/STEP stop at 6 so "1/2" is mon,wed,fri */
    {"day-of-week field", 0, 7, 6, k_wdays, 0},
};

static int parse_value(const field_def_t *f, const char *s, size_t n, int *out, char *err,
                       size_t errsz)
{
    if (n == 0)
        return fail(err, errsz, "%s: missing value", f->label);
    if (isdigit((unsigned char)s[0])) {
        long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)s[i]))
                return fail(err, errsz, "%s: bad value '%.*s'", f->label, (int)n, s);
            if (v < 1000)
                v = v * 10 + (s[i] - '0');
        }
        if (v < f->min || v > f->max)
            return fail(err, errsz, "%s: %.*s out of range %d-%d", f->label, (int)n, s, f->min,
                        f->max);
        *out = (int)v;
        return 0;
    }
    bool alpha = true;
    for (size_t i = 0; i < n; i++)
        alpha = alpha && isalpha((unsigned char)s[i]);
    if (!alpha)
        return fail(err, errsz, "%s: bad value '%.*s'", f->label, (int)n, s);
    if (!f->names)
        return fail(err, errsz, "%s: '%.*s' is not a number", f->label, (int)n, s);
    if (n == 3)
        for (int i = 0; f->names[i]; i++)
            if (tolower((unsigned char)s[0]) == f->names[i][0] &&
                tolower((unsigned char)s[1]) == f->names[i][1] &&
                tolower((unsigned char)s[2]) == f->names[i][2]) {
                *out = f->names_base + i;
                return 0;
            }
    return fail(err, errsz, "%s: unknown name '%.*s'", f->label, (int)n, s);
}

/* One comma-separated item: '*', N, N-M, each with an optional /STEP. */
static int parse_item(const field_def_t *f, bool is_wday, const char *s, size_t n, uint64_t *bits,
                      char *err, size_t errsz)
{
    if (n == 0)
        return fail(err, errsz, "%s: empty list item", f->label);
    const char *slash = memchr(s, '/', n);
    size_t rn = slash ? (size_t)(slash - s) : n;
    int step = 1;
    if (slash) {
        const char *p = slash + 1;
        size_t pn = n - rn - 1;
        if (pn == 0)
            return fail(err, errsz, "%s: missing step after '/' in '%.*s'", f->label, (int)n, s);
        long v = 0;
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)p[i]))
                return fail(err, errsz, "%s: bad step '%.*s'", f->label, (int)pn, p);
            if (v < 1000)
                v = v * 10 + (p[i] - '0');
        }
        if (v < 1 || v > f->max)
            return fail(err, errsz, "%s: step %.*s out of range 1-%d", f->label, (int)pn, p,
                        f->max);
        step = (int)v;
    }
    int lo, hi;
    if (rn == 1 && s[0] == '*') {
        lo = f->min;
        hi = f->imax;
    } else {
        const char *dash = memchr(s, '-', rn);
        if (dash) {
            size_t an = (size_t)(dash - s);
            if (parse_value(f, s, an, &lo, err, errsz) != 0 ||
                parse_value(f, dash + 1, rn - an - 1, &hi, err, errsz) != 0)
                return -1;
            if (is_wday && hi == 0 && lo > 0)
                hi = 7; /* fri-sun */
            if (lo > hi)
                return fail(err, errsz, "%s: range '%.*s' goes backwards", f->label, (int)rn, s);
        } else {
            if (parse_value(f, s, rn, &lo, err, errsz) != 0)
                return -1;
            hi = slash ? (lo > f->imax ? lo : f->imax) : lo; /* N/STEP = N-max/STEP */
        }
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= 1ULL << (is_wday && v == 7 ? 0 : v);
    return 0;
}

static int parse_field(int idx, const char *s, size_t n, uint64_t *bits, bool *star, char *err,
                       size_t errsz)
{
    const field_def_t *f = &k_fields[idx];
    *bits = 0;
    *star = n > 0 && s[0] == '*';
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        if (parse_item(f, idx == F_WDAY, s + i, j - i, bits, err, errsz) != 0)
            return -1;
        if (j == n)
            break;
        i = j + 1;
    }
    return 0;
}

static int parse_every(const char *s, size_t n, int64_t *out_ms, char *err, size_t errsz)
{
    static const char units[] = "dhms";
    static const int64_t unit_ms[] = {DAY_S * 1000LL, 3600000, 60000, 1000};
    if (n == 0)
        return fail(err, errsz, "@every: missing duration (e.g. @every 30s, @every 1h30m)");
    int64_t total = 0;
    int next_unit = 0; /* units must come in order d, h, m, s, each once */
    size_t i = 0;
    while (i < n) {
        if (!isdigit((unsigned char)s[i]))
            goto bad;
        int64_t v = 0;
        while (i < n && isdigit((unsigned char)s[i])) {
            if (v < 1000000)
                v = v * 10 + (s[i] - '0');
            i++;
        }
        if (i == n)
            goto bad; /* a number without unit */
        const char *u = strchr(units, s[i]);
        if (!u || s[i] == '\0' || (int)(u - units) < next_unit)
            goto bad;
        next_unit = (int)(u - units) + 1;
        total += v * unit_ms[u - units];
        i++;
    }
    if (total < 1000 || total > EVERY_MAX_MS)
        return fail(err, errsz, "@every: %.*s out of range 1s-366d", (int)n, s);
    *out_ms = total;
    return 0;
bad:
    return fail(err, errsz, "@every: bad duration '%.*s' (e.g. 30s, 5m, 1h30m, 1d)", (int)n, s);
}

static const struct {
    const char *name;
    const char *expr;
} k_aliases[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int parse_fields(const char *const tok[], const size_t len[], cron_t *out, char *err,
                        size_t errsz)
{
    uint64_t b[F_COUNT];
    bool star[F_COUNT];
    for (int i = 0; i < F_COUNT; i++)
        if (parse_field(i, tok[i], len[i], &b[i], &star[i], err, errsz) != 0)
            return -1;
    out->minutes = b[F_MIN];
    out->hours = (uint32_t)b[F_HOUR];
    out->mdays = (uint32_t)b[F_MDAY];
    out->months = (uint16_t)b[F_MONTH];
    out->wdays = (uint8_t)b[F_WDAY];
    out->hour_star = star[F_HOUR];
    out->mday_star = star[F_MDAY];
    out->wday_star = star[F_WDAY];
    return 0;
}

/* Splits s at blanks; returns the number of tokens (counting past max). */
static int split(const char *s, const char *tok[], size_t len[], int max)
{
    int n = 0;
    while (*s) {
        while (*s && isspace((unsigned char)*s))
            s++;
        if (!*s)
            break;
        const char *b = s;
        while (*s && !isspace((unsigned char)*s))
            s++;
        if (n < max) {
            tok[n] = b;
            len[n] = (size_t)(s - b);
        }
        n++;
    }
    return n;
}

int cron_parse(const char *expr, cron_t *out, char *err, size_t errsz)
{
    cron_t c;
    memset(&c, 0, sizeof c);
    if (out)
        memset(out, 0, sizeof *out);
    if (!expr || !out)
        return fail(err, errsz, "no expression");
    if (strlen(expr) > TQ_CRON_MAX)
        return fail(err, errsz, "expression longer than %d bytes", TQ_CRON_MAX);
    const char *tok[6];
    size_t len[6];
    int n = split(expr, tok, len, 6);
    if (n == 0)
        return fail(err, errsz, "empty expression");
    if (tok[0][0] == '@') {
        if (len[0] == 6 && strncmp(tok[0], "@every", 6) == 0) {
            if (n != 2)
                return fail(err, errsz,
                            "@every takes one duration (e.g. @every 30s, @every 1h30m)");
            if (parse_every(tok[1], len[1], &c.every_ms, err, errsz) != 0)
                return -1;
            *out = c;
            return 0;
        }
        for (size_t i = 0; i < sizeof k_aliases / sizeof k_aliases[0]; i++) {
            if (strlen(k_aliases[i].name) != len[0] ||
                strncmp(k_aliases[i].name, tok[0], len[0]) != 0)
                continue;
            if (n != 1)
                return fail(err, errsz, "%s takes no argument", k_aliases[i].name);
            const char *at[5];
            size_t al[5];
            split(k_aliases[i].expr, at, al, 5);
            if (parse_fields(at, al, &c, err, errsz) != 0)
                return -1;
            *out = c;
            return 0;
        }
        return fail(err, errsz, "unknown alias %.*s", (int)(len[0] > 32 ? 32 : len[0]), tok[0]);
    }
    if (n != 5)
        return fail(err, errsz, "expected 5 fields, got %d", n);
    if (parse_fields(tok, len, &c, err, errsz) != 0)
        return -1;
    *out = c;
    return 0;
}

/* ------------------------------------------------------------------ zones */

static bool tz_is_utc(const char *tz)
{
    return !tz || !*tz || strcmp(tz, "UTC") == 0;
}

bool cron_tz_is_valid(const char *tz)
{
    if (tz_is_utc(tz))
        return true;
    size_t n = strlen(tz);
    if (n > TQ_TZ_MAX || tz[0] == '/' || tz[n - 1] == '/' || strstr(tz, "//") ||
        strncmp(tz, "right/", 6) == 0) /* leap-second zones: not POSIX time */
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)tz[i];
        if (!isalnum(ch) && ch != '_' && ch != '-' && ch != '+' && ch != '/')
            return false; /* also rules out "." and ".." components */
    }
    const char *dir = getenv("TZDIR"); /* glibc reads zones from here too */
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, tz) >= sizeof path)
        return false;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    char magic[4];
    bool ok = fread(magic, 1, 4, fp) == 4 && memcmp(magic, "TZif", 4) == 0;
    fclose(fp);
    return ok;
}

typedef struct {
    bool utc;
    bool switched;
    bool had_tz;
    char *saved_tz;
} zone_t;

static int zone_enter(zone_t *z, const char *tz)
{
    memset(z, 0, sizeof *z);
    if (tz_is_utc(tz)) {
        z->utc = true;
        return 0;
    }
    if (!cron_tz_is_valid(tz))
        return -1;
    char want[TQ_TZ_MAX + 2];
    snprintf(want, sizeof want, ":%s", tz);
    const char *cur = getenv("TZ");
    if (cur && strcmp(cur, want) == 0) {
        tzset();
        return 0;
    }
    z->had_tz = cur != NULL;
    if (cur && !(z->saved_tz = strdup(cur)))
        return -1;
    if (setenv("TZ", want, 1) != 0) {
        free(z->saved_tz);
        z->saved_tz = NULL;
        return -1;
    }
    z->switched = true;
    tzset();
    return 0;
}

static void zone_leave(zone_t *z)
{
    if (!z->switched)
        return;
    if (z->had_tz)
        setenv("TZ", z->saved_tz, 1);
    else
        unsetenv("TZ");
    tzset();
    free(z->saved_tz);
    z->saved_tz = NULL;
    z->switched = false;
}

/* UTC offset (seconds, local - UTC) at instant t. */
static int zone_offset(const zone_t *z, int64_t t, int *off)
{
    if (z->utc) {
        *off = 0;
        return 0;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (!localtime_r(&tt, &tm))
        return -1;
    int64_t local =
        days_from_civil((int64_t)tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday) *
            DAY_S +
        tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    *off = (int)(local - t);
    return 0;
}

/* The offsets over [w0, w1): segment i has offset off[i] on
 * [start[i], start[i+1]), start[n] = w1. */
typedef struct {
    int n;
    int64_t start[SEG_MAX + 1];
    int off[SEG_MAX];
} segs_t;

static int build_segs(const zone_t *z, int64_t w0, int64_t w1, segs_t *s)
{
    int cur;
    if (zone_offset(z, w0, &cur) != 0)
        return -1;
    s->n = 1;
    s->start[0] = w0;
    s->off[0] = cur;
    int64_t t = w0;
    while (!z->utc && t < w1) {
        int64_t nt = w1 - t > SAMPLE_S ? t + SAMPLE_S : w1;
        int o;
        if (zone_offset(z, nt, &o) != 0)
            return -1;
        if (o == cur) {
            t = nt;
            continue;
        }
        /* first instant in (t, nt] whose offset is not cur */
        int64_t lo = t, hi = nt;
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (zone_offset(z, mid, &o) != 0)
                return -1;
            if (o == cur)
                lo = mid;
            else
                hi = mid;
        }
        if (zone_offset(z, hi, &cur) != 0 || s->n == SEG_MAX)
            return -1;
        s->start[s->n] = hi;
        s->off[s->n] = cur;
        s->n++;
        t = hi;
    }
    s->start[s->n] = w1;
    return 0;
}

/* The fire instants of local time L (local seconds) under the DST rules:
 * 0, 1, or (hour_star in a fold) 2 of them, ascending. */
static int fires_of(const segs_t *s, int64_t L, bool hour_star, int64_t out[2])
{
    int k = 0;
    for (int i = 0; i < s->n && k < 2; i++) {
        int64_t t = L - s->off[i];
        if (t >= s->start[i] && t < s->start[i + 1]) {
            out[k++] = t; /* segments ascend, so instants do */
            if (!hour_star)
                return k; /* repeated time: first occurrence only */
        }
    }
    if (k > 0 || hour_star)
        return k; /* nonexistent time of an hourly-or-finer schedule: skipped */
    for (int i = 1; i < s->n; i++)
        if (L - s->off[i - 1] >= s->start[i] && L - s->off[i] < s->start[i]) {
            out[0] = s->start[i]; /* the first instant after the gap */
            return 1;
        }
    return 0;
}

static bool day_matches(const cron_t *c, int64_t day)
{
    unsigned m, d;
    civil_from_days(day, &m, &d);
    if (!(c->months >> m & 1))
        return false;
    int wd = (int)(((day % 7) + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
    bool dm = c->mdays >> d & 1, wm = c->wdays >> wd & 1;
    if (!c->mday_star && !c->wday_star)
        return dm || wm; /* Vixie: either restricted day field */
    return dm && wm;
}

/* Lowers *best (if *found) to the earliest fire of local day `day` after
 * after_s. -1 on a tz database error. */
static int eval_day(const cron_t *c, const zone_t *z, int64_t day, int64_t after_s, bool *found,
                    int64_t *best)
{
    int64_t L0 = day * DAY_S;
    segs_t s;
    if (build_segs(z, L0 - OFF_MAX_S, L0 + DAY_S + OFF_MAX_S, &s) != 0)
        return -1;
    for (int h = 0; h < 24; h++) {
        if (!(c->hours >> h & 1))
            continue;
        for (int m = 0; m < 60; m++) {
            if (!(c->minutes >> m & 1))
                continue;
            int64_t f[2];
            int k = fires_of(&s, L0 + h * 3600 + m * 60, c->hour_star, f);
            for (int i = 0; i < k; i++)
                if (f[i] > after_s && (!*found || f[i] < *best)) {
                    *best = f[i];
                    *found = true;
                }
        }
    }
    return 0;
}

static int next_every(const cron_t *c, int64_t anchor_ms, int64_t after_ms, int64_t *next_ms)
{
    int64_t e = c->every_ms;
    if (anchor_ms < -AFTER_LIMIT_MS || anchor_ms > AFTER_LIMIT_MS)
        return -1;
    int64_t k = after_ms < anchor_ms ? 1 : (after_ms - anchor_ms) / e + 1;
    *next_ms = anchor_ms + k * e;
    return 0;
}

int cron_next(const cron_t *c, const char *tz, int64_t anchor_ms, int64_t after_ms,
              int64_t *next_ms)
{
    if (!c || !next_ms || after_ms < -AFTER_LIMIT_MS || after_ms > AFTER_LIMIT_MS)
        return -1;
    if (c->every_ms > 0) {
        if (!cron_tz_is_valid(tz))
            return -1;
        return next_every(c, anchor_ms, after_ms, next_ms);
    }
    if (!c->minutes || !c->hours || !c->months || !c->mdays || !c->wdays)
        return -1;
    zone_t z;
    if (zone_enter(&z, tz) != 0)
        return -1;
    int rc = -1;
    int64_t after_s = floor_div(after_ms, 1000);
    int off;
    if (zone_offset(&z, after_s, &off) != 0)
        goto out;
    /* from the local day before after's (a fold can put a later instant
     * on an earlier date) over five years */
    int64_t day = floor_div(after_s + off, DAY_S) - 1;
    int64_t last = day + YEARS_AHEAD * 366 + 2;
    for (; day <= last; day++) {
        if (!day_matches(c, day))
            continue;
        int64_t best = 0;
        bool found = false;
        if (eval_day(c, &z, day, after_s, &found, &best) != 0)
            goto out;
        if (!found)
            continue;
        /* fires of adjacent days interleave only around a fold at midnight */
        if (day_matches(c, day + 1) && eval_day(c, &z, day + 1, after_s, &found, &best) != 0)
            goto out;
        *next_ms = best * 1000;
        rc = 0;
        break;
    }
out:
    zone_leave(&z);
    return rc;
}
