/*
 * storefault.h - helpers for the storage-fault and overload tests
 * (it_power_loss, it_storage_errors, it_overload, it_slow_client): flag
 * files for the fault VFS (broker/faultvfs.h), a broker started with
 * TASKQ_FAULT_VFS, a read-only integrity check, and a raw in-process worker
 * that answers every TASK with DONE at once (no worker process needed).
 *
 * Like the harness, any call that cannot do its job fails the test.
 */
#ifndef TASKQ_STOREFAULT_H
#define TASKQ_STOREFAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* Creates (empty) / removes a flag file. */
void sf_touch(const char *path);
void sf_remove(const char *path);

/* Sets TASKQ_FAULT_VFS=spec (NULL = unset) for processes started from now
 * on (the harness's children inherit the environment). */
void sf_set_fault_env(const char *spec);

/* Opens dbpath read-only and runs PRAGMA integrity_check; true if "ok".
 * why receives the first problem. */
bool sf_integrity_ok(const char *dbpath, char *why, size_t whysz);

/* VmRSS of pid in kB (fails the test if unreadable). */
long sf_rss_kb(pid_t pid);

/* Sorts v[0..n) and returns the q-quantile (0..1). */
int64_t sf_quantile(int64_t *v, size_t n, double q);

/* Runs the at-least-once checker (checker.h) over h_history_dir() and db
 * and fails the test on any violation; prints its summary. A no-op when
 * history is off or the checker is not built (TASKQ_HAVE_CHECKER). */
void sf_check_history(const char *db);

/* ---- raw worker ---------------------------------------------------------- */

typedef struct sf_worker sf_worker_t;
/* Called for each DONE_ACK with code 0 (the result is then committed). */
typedef void (*sf_acked_fn)(const taskq_id_t *id, uint32_t attempt, void *arg);

/* Connects a DEALER to endpoint and says HELLO as node_id with `credit`
 * slots. The worker answers each TASK with DONE ok, result = its args. */
sf_worker_t *sf_worker_new(const char *endpoint, const char *node_id, uint32_t credit);
/* Handles what arrives for up to wait_ms (returns early after handling at
 * least one message); heartbeats every 500 ms. Returns messages handled. */
int sf_worker_pump(sf_worker_t *w, int64_t wait_ms, sf_acked_fn fn, void *arg);
void sf_worker_destroy(sf_worker_t **self_p);

#endif
