/*
 * routes.h - routing rules: which queue a task goes to when its submit names
 * none. Ordered "PATTERN QUEUE" rules from the file given to
 * `taskq-broker --routes FILE`; first match wins; no match -> "default".
 * PATTERN is a task-name glob where `*` matches any run of characters
 * ("img.*", "*.report", "*"). Lines starting with `#` and blank lines are
 * ignored. No I/O after routes_load.
 */
#ifndef TASKQ_ROUTES_H
#define TASKQ_ROUTES_H

#include <stddef.h>

#include "proto.h"

typedef struct routes routes_t;

/* Reads path; NULL with a message in err (naming the line) on any error. */
routes_t *routes_load(const char *path, char *err, size_t errsz);
/* Parses rules from a string (same syntax); used by routes_load and tests. */
routes_t *routes_parse(const char *text, char *err, size_t errsz);
void routes_destroy(routes_t **self_p);
/* The queue for a task name (borrowed): first matching rule, else "default".
 * self may be NULL (no rules). */
const char *routes_match(const routes_t *self, const char *name, size_t len);
size_t routes_count(const routes_t *self);
/* Glob match with '*' only. */
int routes_glob(const char *pattern, const char *s, size_t len);

#endif
