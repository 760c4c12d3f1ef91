/*
 * taskfn.c - the task table. A handful of tasks per node, so a linear array
 * is enough; lookups happen once per task, not per message. A policy given
 * at registration is checked here, so a module with a bad one fails the
 * worker's start-up (main.c loads every module once) rather than each task.
 */
#include "taskfn.h"

#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tqlimits.h"
#include "proto.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    char *name;
    taskq_task_fn fn;
    bool has_policy;
    proto_retry_policy_t policy; /* retry_on / no_retry_on: owned, NUL-terminated */
} entry_t;

struct taskq_registry {
    entry_t *v;
    size_t n, cap;
    void **libs;
    size_t nlibs;
};

taskfn_t *taskfn_new(void) { return xcalloc(1, sizeof(taskfn_t)); }

static void entry_free(entry_t *e)
{
    free(e->name);
    free((char *)e->policy.retry_on.ptr);
    free((char *)e->policy.no_retry_on.ptr);
    memset(e, 0, sizeof *e);
}

/* "CODE[*],CODE[*],..." with optional spaces around entries; "*" alone
 * matches every code. NULL or "" is valid (no list). The same rule as the
 * codec's, so a policy accepted here is never refused when DONE is sent. */
static bool patterns_valid(const char *s)
{
    if (!s || !*s)
        return true;
    if (strlen(s) > TQ_PATTERNS_MAX)
        return false;
    for (const char *p = s;;) {
        size_t len = strcspn(p, ",");
        const char *b = p, *e = p + len;
        while (b < e && *b == ' ')
            b++;
        while (e > b && e[-1] == ' ')
            e--;
        size_t n = (size_t)(e - b);
        if (n > 0 && b[n - 1] == '*')
            n--; /* a prefix pattern; "*" alone leaves an empty prefix */
        if (e == b || (n > 0 && !proto_code_is_valid(b, n)))
            return false;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

static bool backoff_ms_valid(int64_t v) { return v >= 0 && v <= TQ_BACKOFF_MS_MAX; }

/* Checks opts and converts them to the wire form (strings copied). */
static taskq_err_t policy_from_opts(const char *name, const taskq_task_opts_t *o,
                                    proto_retry_policy_t *p)
{
    const char *bad = NULL;
    int jitter = -1;
    if (o->jitter) {
        static const char *names[] = {"equal", "full", "none"};
        for (int i = 0; i < 3; i++)
            if (!strcmp(o->jitter, names[i]))
                jitter = i; /* PROTO_JITTER_EQUAL, _FULL, _NONE */
    }
    if (o->max_attempts > TQ_ATTEMPTS_MAX)
        bad = "max_attempts";
    else if (!backoff_ms_valid(o->backoff_base_ms))
        bad = "backoff_base_ms";
    else if (!isfinite(o->backoff_factor) ||
             (o->backoff_factor != 0 && (o->backoff_factor < 1 || o->backoff_factor > 1000)))
        bad = "backoff_factor";
    else if (!backoff_ms_valid(o->backoff_max_ms))
        bad = "backoff_max_ms";
    else if (o->jitter && jitter < 0)
        bad = "jitter";
    else if (!patterns_valid(o->retry_on))
        bad = "retry_on";
    else if (!patterns_valid(o->no_retry_on))
        bad = "no_retry_on";
    if (bad) {
        tlog_error("task '%s': retry policy: %s is not valid", name, bad);
        return TASKQ_EINVAL;
    }
    memset(p, 0, sizeof *p);
    p->max_attempts = o->max_attempts;
    p->backoff_base_ms = o->backoff_base_ms;
    p->backoff_factor = o->backoff_factor;
    p->backoff_max_ms = o->backoff_max_ms;
    p->jitter = jitter;
    if (o->retry_on && *o->retry_on)
        p->retry_on = proto_str(xstrdup(o->retry_on));
    if (o->no_retry_on && *o->no_retry_on)
        p->no_retry_on = proto_str(xstrdup(o->no_retry_on));
    return TASKQ_OK;
}

void taskfn_destroy(taskfn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskfn_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        entry_free(&self->v[i]);
    free(self->v);
    for (size_t i = 0; i < self->nlibs; i++)
        dlclose(self->libs[i]);
    free(self->libs);
    free(self);
    *self_p = NULL;
}

taskq_err_t taskfn_add(taskfn_t *self, const char *name, taskq_task_fn fn)
{
    return taskfn_add_opts(self, name, fn, NULL);
}

taskq_err_t taskfn_add_opts(taskfn_t *self, const char *name, taskq_task_fn fn,
                            const taskq_task_opts_t *opts)
{
    if (!name || !proto_name_is_valid(name, strlen(name), TQ_NAME_MAX)) {
        tlog_error("task name '%.*s' is not valid ([A-Za-z0-9_.:-]{1,%d})", TQ_NAME_MAX,
                   name ? name : "(null)", TQ_NAME_MAX);
        return TASKQ_ENAME;
    }
    if (!fn || taskfn_find(self, name, strlen(name))) {
        tlog_error("task '%s': %s", name, fn ? "already registered" : "NULL function");
        return TASKQ_EINVAL;
    }
    proto_retry_policy_t policy = {.jitter = -1};
    if (opts && policy_from_opts(name, opts, &policy) != TASKQ_OK)
        return TASKQ_EINVAL;
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->v = xrealloc(self->v, self->cap * sizeof *self->v);
    }
    entry_t *e = &self->v[self->n++];
    e->name = xstrdup(name);
    e->fn = fn;
    e->has_policy = opts != NULL;
    e->policy = policy;
    return TASKQ_OK;
}

static const entry_t *find(const taskfn_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->n; i++)
        if (strlen(self->v[i].name) == len && !memcmp(self->v[i].name, name, len))
            return &self->v[i];
    return NULL;
}

taskq_task_fn taskfn_find(const taskfn_t *self, const char *name, size_t len)
{
    const entry_t *e = find(self, name, len);
    return e ? e->fn : NULL;
}

taskq_task_fn taskfn_find_policy(const taskfn_t *self, const char *name, size_t len,
                                 bool *has_policy, proto_retry_policy_t *policy)
{
    const entry_t *e = find(self, name, len);
    *has_policy = e && e->has_policy;
    if (*has_policy) {
        *policy = e->policy;
    } else {
        memset(policy, 0, sizeof *policy);
        policy->jitter = -1;
    }
    return e ? e->fn : NULL;
}

size_t taskfn_count(const taskfn_t *self) { return self->n; }

taskq_err_t taskfn_load(taskfn_t *self, const char *path)
{
    /* RTLD_NOW: an unresolved symbol fails here, at start-up, not mid-task */
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        tlog_error("module %s: %s", path, dlerror());
        return TASKQ_EINVAL;
    }
    typedef int (*init_fn)(taskq_registry_t *);
    init_fn init;
    /* dlsym returns void *; copying the bits is the POSIX-sanctioned way */
    void *sym = dlsym(h, "taskq_module_init");
    if (!sym) {
        tlog_error("module %s: no taskq_module_init: %s", path, dlerror());
        dlclose(h);
        return TASKQ_EINVAL;
    }
    memcpy(&init, &sym, sizeof init);
    size_t before = self->n;
    int rc = init(self);
    if (rc != 0) {
        tlog_error("module %s: taskq_module_init returned %d", path, rc);
        /* its functions point into the library we are about to close */
        for (size_t i = before; i < self->n; i++)
            entry_free(&self->v[i]);
        self->n = before;
        dlclose(h);
        return TASKQ_EINVAL;
    }
    self->libs = xrealloc(self->libs, (self->nlibs + 1) * sizeof *self->libs);
    self->libs[self->nlibs++] = h;
    tlog_debug("module %s: %zu task(s)", path, self->n - before);
    return TASKQ_OK;
}
