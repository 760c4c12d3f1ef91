/*
 * tmem.h - allocation for the broker and the worker: abort on OOM (their
 * memory is bounded by limits.h and admission control, so running out is a
 * bug or a misconfigured host, not a condition to limp through). libtaskq
 * does NOT use these: it returns TASKQ_ENOMEM to its caller.
 */
#ifndef TASKQ_TMEM_H
#define TASKQ_TMEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
