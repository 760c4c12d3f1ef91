/*
 * sched.h - periodic schedules: broker objects that insert a task at each
 * nominal fire time of a cron expression (cron.h) in a time zone.
 *
 * Exactly once across crashes: a fire inserts a task whose id is derived
 * from (schedule name, nominal time) in the same transaction that advances
 * the schedule's next_at, so a crash before the commit replays the same
 * fire with the same id (an INSERT of a known id is a no-op) and a crash
 * after it never sees that fire as due again.
 *
 * Overlap (skip, the default): a fire while the previous fire's task is
 * not terminal is recorded as skipped. Catch-up, for fire times that were
 * missed (the broker was down, or the schedule was paused):
 *   none: run no missed fire; last (default): run only the latest missed;
 *   all: run every missed fire (at most SCHED_CATCHUP_MAX per tick).
 * A fire is "missed" when a later nominal time is also due, or when it is
 * more than SCHED_MISSED_MS late. The schedules live in memory (they are
 * few) and in the store (the truth); after a failed commit the broker
 * reloads them.
 */
#ifndef TASKQ_SCHED_H
#define TASKQ_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SCHED_MISSED_MS 60000
#define SCHED_CATCHUP_MAX 1000

typedef struct sched sched_t;
typedef struct broker broker_t;

sched_t *sched_new(void);
void sched_destroy(sched_t **self_p);
/* Replaces the in-memory schedules with the store's. */
taskq_err_t sched_load(sched_t *self, store_t *store);
/* Fires every due schedule (inside the turn's transaction). */
void sched_tick(sched_t *self, broker_t *b, int64_t now);
/* Earliest next_at of an active schedule, INT64_MAX if none. */
int64_t sched_next_at(const sched_t *self);

/* Validates and adds (or with replace, redefines) a schedule. def->next_at
 * is computed here. EINVAL with err naming the problem; EEXIST. */
taskq_err_t sched_add(sched_t *self, broker_t *b, const store_schedule_t *def, bool replace,
                      int64_t now, char *err, size_t errsz, int64_t *next_at);
taskq_err_t sched_rm(sched_t *self, broker_t *b, const char *name);
/* Pausing keeps next_at; resuming treats fires passed meanwhile as missed. */
taskq_err_t sched_set_paused(sched_t *self, broker_t *b, const char *name, bool paused);
/* Inserts one task now (id from (name, now, "run-now")); not a nominal fire. */
taskq_err_t sched_run_now(sched_t *self, broker_t *b, const char *name, int64_t now,
                          taskq_id_t *id);
/* Calls fn for each schedule (sorted by name), from memory. */
void sched_list(const sched_t *self, store_schedule_fn fn, void *arg);
/* Loads a JSON file of schedule objects (the schedule_add keys; "args" a
 * JSON value) and adds / redefines each: definitions that did not change
 * keep their state. EINVAL with err on any error (nothing changes then is
 * not guaranteed: call inside the start-up transaction and roll back). */
taskq_err_t sched_load_file(sched_t *self, broker_t *b, const char *path, int64_t now,
                            char *err, size_t errsz);
/* The task id of (name, nominal, salt): UUIDv7 layout with the nominal
 * time as its timestamp and a hash of the rest. */
void sched_task_id(const char *name, int64_t nominal, const char *salt, taskq_id_t *out);

#endif
