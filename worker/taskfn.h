/*
 * taskfn.h - the task table of a child process: name -> function. The table
 * is the `taskq_registry_t` that modules receive in taskq_module_init(), so
 * taskq_register() (taskapi.c) is a thin wrapper over taskfn_add(). Module
 * libraries opened by taskfn_load() stay loaded until taskfn_destroy().
 */
#ifndef TASKQ_TASKFN_H
#define TASKQ_TASKFN_H

#include <stddef.h>

#include "taskq.h"
#include "taskq_task.h"

typedef struct taskq_registry taskfn_t;

taskfn_t *taskfn_new(void);
/* Frees the table and dlcloses the modules; sets *self_p = NULL. */
void taskfn_destroy(taskfn_t **self_p);

/* Adds name -> fn (name copied). TASKQ_ENAME if the name breaks
 * [A-Za-z0-9_.:-]{1,TQ_NAME_MAX}, TASKQ_EINVAL if it is taken or fn is NULL. */
taskq_err_t taskfn_add(taskfn_t *self, const char *name, taskq_task_fn fn);
/* The function registered under name[0..len), or NULL. */
taskq_task_fn taskfn_find(const taskfn_t *self, const char *name, size_t len);
size_t taskfn_count(const taskfn_t *self);

/* dlopens path and calls its taskq_module_init(self). TASKQ_EINVAL (logged)
 * if the library cannot be loaded, lacks the symbol or its init fails. */
taskq_err_t taskfn_load(taskfn_t *self, const char *path);

/* Registers taskq.echo, taskq.sleep, taskq.primes, taskq.sumsq (builtin.c). */
taskq_err_t builtin_register(taskfn_t *self);

#endif
