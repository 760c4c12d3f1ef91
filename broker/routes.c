/* routes.c - routing rules; see routes.h. */
#include "routes.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmem.h"

typedef struct {
    char pattern[TQ_NAME_MAX + 1];
    char queue[TQ_QUEUE_MAX + 1];
} rule_t;

struct routes {
    rule_t *rules;
    size_t n;
};

int routes_glob(const char *p, const char *s, size_t len)
{
    /* iterative glob with backtracking on the last '*' */
    size_t si = 0, star_si = 0;
    const char *star = NULL;
    while (si < len) {
        if (*p == '*') {
            star = p++;
            star_si = si;
        } else if (*p && *p == s[si]) {
            p++;
            si++;
        } else if (star) {
            p = star + 1;
            si = ++star_si;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

static bool pattern_valid(const char *p, size_t n)
{
    if (n == 0 || n > TQ_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!(isalnum((unsigned char)c) || c == '_' || c == '.' || c == ':' || c == '-' ||
              c == '*'))
            return false;
    }
    return true;
}

routes_t *routes_parse(const char *text, char *err, size_t errsz)
{
    routes_t *self = xcalloc(1, sizeof *self);
    size_t cap = 0, lineno = 0;
    const char *line = text;
    while (line && *line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        lineno++;
        char buf[512];
        if (len >= sizeof buf) {
            snprintf(err, errsz, "line %zu: too long", lineno);
            routes_destroy(&self);
            return NULL;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end ? end + 1 : NULL;
        char *hash = strchr(buf, '#');
        if (hash)
            *hash = '\0';
        char pat[512], q[512], extra[8];
        int k = sscanf(buf, "%511s %511s %7s", pat, q, extra);
        if (k <= 0)
            continue;
        if (k != 2) {
            snprintf(err, errsz, "line %zu: expected 'PATTERN QUEUE'", lineno);
            routes_destroy(&self);
            return NULL;
        }
        if (!pattern_valid(pat, strlen(pat))) {
            snprintf(err, errsz, "line %zu: invalid pattern '%s' (task-name characters and *)",
                     lineno, pat);
            routes_destroy(&self);
            return NULL;
        }
        if (!proto_queue_is_valid(q, strlen(q))) {
            snprintf(err, errsz, "line %zu: invalid queue name '%s' ([a-z0-9_.-]{1,%d})",
                     lineno, q, TQ_QUEUE_MAX);
            routes_destroy(&self);
            return NULL;
        }
        if (self->n == cap) {
            cap = cap ? cap * 2 : 8;
            self->rules = xrealloc(self->rules, cap * sizeof *self->rules);
        }
        /* lengths were checked above: the copies fit */
        memcpy(self->rules[self->n].pattern, pat, strlen(pat) + 1);
        memcpy(self->rules[self->n].queue, q, strlen(q) + 1);
        self->n++;
    }
    return self;
}

routes_t *routes_load(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot open %s", path);
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            text = xrealloc(text, cap);
        }
        memcpy(text + len, chunk, got);
        len += got;
        if (len > (1u << 20)) {
            fclose(f);
            free(text);
            snprintf(err, errsz, "%s: larger than 1 MiB", path);
            return NULL;
        }
    }
    fclose(f);
    if (!text)
        text = xcalloc(1, 1);
    text[len] = '\0';
    char inner[256];
    routes_t *r = routes_parse(text, inner, sizeof inner);
    free(text);
    if (!r)
        snprintf(err, errsz, "%s: %s", path, inner);
    return r;
}

void routes_destroy(routes_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->rules);
    free(*self_p);
    *self_p = NULL;
}

const char *routes_match(const routes_t *self, const char *name, size_t len)
{
    for (size_t i = 0; self && i < self->n; i++)
        if (routes_glob(self->rules[i].pattern, name, len))
            return self->rules[i].queue;
    return TQ_DEFAULT_QUEUE;
}

size_t routes_count(const routes_t *self) { return self ? self->n : 0; }
