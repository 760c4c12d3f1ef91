/*
 * qspec.c - parses the worker's -Q list. Every refusal names the entry and
 * the rule it breaks: this is what an operator sees on a typo.
 */
#include "qspec.h"

#include <stdio.h>
#include <string.h>

#include "proto.h"

/* A weight: decimal digits only, 1..TQ_WEIGHT_MAX. */
static bool parse_weight(const char *s, size_t len, uint32_t *out)
{
    if (len == 0 || len > 4)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v < 1 || v > TQ_WEIGHT_MAX)
        return false;
    *out = v;
    return true;
}

taskq_err_t qspec_parse(qspec_t *q, const char *spec, char *err, size_t errsz)
{
    qspec_t t = *q; /* all or nothing */
    if (!spec || !*spec) {
        snprintf(err, errsz, "empty queue list (expected NAME[=WEIGHT],...)");
        return TASKQ_EINVAL;
    }
    const char *p = spec;
    for (;;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        size_t nlen = eq ? (size_t)(eq - p) : len;
        uint32_t w = 1;
        if (len == 0) {
            snprintf(err, errsz, "empty entry in '%s' (expected NAME[=WEIGHT],...)", spec);
            return TASKQ_EINVAL;
        }
        if (!proto_queue_is_valid(p, nlen)) {
            snprintf(err, errsz, "queue name '%.*s' is not valid (expected [a-z0-9_.-]{1,%d})",
                     (int)(nlen > 80 ? 80 : nlen), p, TQ_QUEUE_MAX);
            return TASKQ_EINVAL;
        }
        if (eq && !parse_weight(eq + 1, len - nlen - 1, &w)) {
            snprintf(err, errsz, "queue '%.*s': weight '%.*s' is not valid (expected 1..%d)",
                     (int)nlen, p, (int)((len - nlen - 1) > 20 ? 20 : len - nlen - 1), eq + 1,
                     TQ_WEIGHT_MAX);
            return TASKQ_EINVAL;
        }
        for (size_t i = 0; i < t.n; i++) {
            if (strlen(t.names[i]) == nlen && !memcmp(t.names[i], p, nlen)) {
                snprintf(err, errsz, "queue '%.*s' is listed twice", (int)nlen, p);
                return TASKQ_EINVAL;
            }
        }
        if (t.n == TQ_QUEUES_MAX) {
            snprintf(err, errsz, "more than %d queues", TQ_QUEUES_MAX);
            return TASKQ_EINVAL;
        }
        memcpy(t.names[t.n], p, nlen);
        t.names[t.n][nlen] = '\0';
        t.weights[t.n] = w;
        t.n++;
        if (p[len] == '\0')
            break;
        p += len + 1;
        if (*p == '\0') {
            snprintf(err, errsz, "trailing ',' in '%s'", spec);
            return TASKQ_EINVAL;
        }
    }
    *q = t;
    return TASKQ_OK;
}
