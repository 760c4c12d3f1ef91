/*
 * taskfn.c - the task table. A handful of tasks per node, so a linear array
 * is enough; lookups happen once per task, not per message.
 */
#include "taskfn.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "tqlimits.h"
#include "proto.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    char *name;
    taskq_task_fn fn;
} entry_t;

struct taskq_registry {
    entry_t *v;
    size_t n, cap;
    void **libs;
    size_t nlibs;
};

taskfn_t *taskfn_new(void) { return xcalloc(1, sizeof(taskfn_t)); }

void taskfn_destroy(taskfn_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskfn_t *self = *self_p;
    for (size_t i = 0; i < self->n; i++)
        free(self->v[i].name);
    free(self->v);
    for (size_t i = 0; i < self->nlibs; i++)
        dlclose(self->libs[i]);
    free(self->libs);
    free(self);
    *self_p = NULL;
}

taskq_err_t taskfn_add(taskfn_t *self, const char *name, taskq_task_fn fn)
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
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->v = xrealloc(self->v, self->cap * sizeof *self->v);
    }
    self->v[self->n].name = xstrdup(name);
    self->v[self->n].fn = fn;
    self->n++;
    return TASKQ_OK;
}

taskq_task_fn taskfn_find(const taskfn_t *self, const char *name, size_t len)
{
    for (size_t i = 0; i < self->n; i++)
        if (strlen(self->v[i].name) == len && !memcmp(self->v[i].name, name, len))
            return self->v[i].fn;
    return NULL;
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
            free(self->v[i].name);
        self->n = before;
        dlclose(h);
        return TASKQ_EINVAL;
    }
    self->libs = xrealloc(self->libs, (self->nlibs + 1) * sizeof *self->libs);
    self->libs[self->nlibs++] = h;
    tlog_debug("module %s: %zu task(s)", path, self->n - before);
    return TASKQ_OK;
}
