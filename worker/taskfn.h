/*
 * taskfn.h - the task table of a child process: name -> function and an
 * optional retry policy given at registration. The table is the
 * `taskq_registry_t` that modules receive in taskq_module_init(), so
 * taskq_register() / taskq_register_opts() (taskapi.c) are thin wrappers
 * over taskfn_add() / taskfn_add_opts(). Module libraries opened by
 * taskfn_load() stay loaded until taskfn_destroy().
 */
#ifndef TASKQ_TASKFN_H
#define TASKQ_TASKFN_H

#include <stdbool.h>
#include <stddef.h>

#include "proto.h"
#include "taskq.h"
#include "taskq_task.h"

typedef struct taskq_registry taskfn_t;

taskfn_t *taskfn_new(void);
/* Frees the table and dlcloses the modules; sets *self_p = NULL. */
void taskfn_destroy(taskfn_t **self_p);

/* Adds name -> fn (name copied). TASKQ_ENAME if the name breaks
 * [A-Za-z0-9_.:-]{1,TQ_NAME_MAX}, TASKQ_EINVAL if it is taken or fn is NULL. */
taskq_err_t taskfn_add(taskfn_t *self, const char *name, taskq_task_fn fn);
/* taskfn_add with a retry policy (copied; NULL = none). TASKQ_EINVAL (logged)
 * if a field is out of range: max_attempts > TQ_ATTEMPTS_MAX, a backoff
 * outside 0..TQ_BACKOFF_MS_MAX, a factor neither 0 nor 1..1000, a jitter
 * other than NULL/"equal"/"full"/"none", or a retry_on / no_retry_on list
 * that is not comma-separated codes (each optionally ending in '*'). */
taskq_err_t taskfn_add_opts(taskfn_t *self, const char *name, taskq_task_fn fn,
                            const taskq_task_opts_t *opts);
/* The function registered under name[0..len), or NULL. */
taskq_task_fn taskfn_find(const taskfn_t *self, const char *name, size_t len);
/* The function and, in *policy, the registration policy in wire form
 * (strings borrowed from the table; *has_policy false and *policy cleared
 * with jitter -1 when the task was registered without one). */
taskq_task_fn taskfn_find_policy(const taskfn_t *self, const char *name, size_t len,
                                 bool *has_policy, proto_retry_policy_t *policy);
size_t taskfn_count(const taskfn_t *self);

/* dlopens path and calls its taskq_module_init(self). TASKQ_EINVAL (logged)
 * if the library cannot be loaded, lacks the symbol or its init fails. */
taskq_err_t taskfn_load(taskfn_t *self, const char *path);

/* Registers taskq.echo, taskq.sleep, taskq.primes, taskq.sumsq (builtin.c). */
taskq_err_t builtin_register(taskfn_t *self);

#endif
