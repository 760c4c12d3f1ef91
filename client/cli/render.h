/*
 * render.h - how the CLI shows records: JSON documents (jansson; new
 * references, caller json_decref's) and aligned tables (to a FILE). Pure:
 * no I/O but the FILE given and notes on stderr about lossy results; the
 * current time is a parameter. tests/unit/test_cliparse.c covers them.
 */
#ifndef TASKQ_CLI_RENDER_H
#define TASKQ_CLI_RENDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "taskq.h"

/* ISO-8601 UTC with ms ("2026-11-25T12:00:00.123Z") into buf; "" for <= 0. */
const char *iso_time(int64_t unix_ms, char *buf, size_t sz);
/* The same as a JSON string, or null for <= 0. */
json_t *json_time(int64_t unix_ms);
/* A rate in dispatches per second as the CLI takes it: "10/s", "6/m",
 * "5/h"; "-" for 0. */
const char *format_rate(double per_second, char *buf, size_t sz);
/* An age or duration: "850ms", "12.3s", "5m03s", "2h05m", "3d04h". */
const char *format_age(int64_t ms, char *buf, size_t sz);
/* 8 characters that differ between ids of one batch. */
void short_id(const taskq_id_t *id, char out[9]);

/* An id as a JSON string, or null for the zero id. */
json_t *json_id_or_null(const taskq_id_t *id);

/* The result as JSON (null if none); notes lossy parts on stderr. */
json_t *result_json(const taskq_task_t *t);
/* `status --json`: the record (with group_id, parent_id, rerun_of,
 * rerun_by, unique_key; error is the reason for a revoked task). */
json_t *task_json(const taskq_task_t *t);
void print_task_human(FILE *f, const taskq_task_t *t);

/* Lists are shown one item at a time (the list objects of libtaskq are
 * opaque; the commands loop over them): *_json(item) is one element of the
 * JSON list, print_*_header + print_*_row make the table. */

/* {attempt, worker, child_pid, started_at, finished_at, duration_s, state,
 * code, message} */
json_t *attempt_json(const taskq_attempt_t *a);
/* ATTEMPT WORKER PID START DURATION STATE CODE MESSAGE */
void print_attempt_header(FILE *f);
void print_attempt_row(FILE *f, const taskq_attempt_t *a, int64_t now_ms);

/* {name, paused, max_pending, counts{9 states}, oldest_queued_s, slots,
 * limit}; limit is the queue's "queue:Q" limit or NULL (null). */
json_t *queue_json(const taskq_queue_info_t *q, const taskq_limit_t *limit);
/* QUEUE PAUSED MAX_PENDING SCHEDULED QUEUED RUNNING RETRYING SUCCEEDED
 * FAILED EXPIRED OLDEST SLOTS */
void print_queue_header(FILE *f);
void print_queue_row(FILE *f, const taskq_queue_info_t *q);

/* {key, rate, burst, max_running, running, tokens, paused_until} */
json_t *limit_json(const taskq_limit_t *l);
/* KEY RATE BURST MAX_RUNNING RUNNING TOKENS PAUSED_UNTIL */
void print_limit_header(FILE *f);
void print_limit_row(FILE *f, const taskq_limit_t *l);

/* {name, cron, tz, task, args, queue, priority, overlap, catchup,
 * max_attempts, paused, next_at, last_fire_at, last_task_id, fires,
 * skipped} */
json_t *schedule_json(const taskq_schedule_t *s);
/* NAME CRON TZ TASK QUEUE PRIO PAUSED NEXT LAST FIRES SKIPPED */
void print_schedule_header(FILE *f);
void print_schedule_row(FILE *f, const taskq_schedule_t *s);

/* `status GID --json`: {group, total, succeeded, failed, remaining,
 * on_fail, callback (id or null), callback_state (state name or null)} */
json_t *group_json(const taskq_group_info_t *g);
void print_group_human(FILE *f, const taskq_group_info_t *g);

/* The `taskq wait` progress line: "[#####...............] 512/2000 done,
 * 3 failed, 12.3 s" (20 cells; done counts every terminal task). */
const char *format_wait_bar(char *buf, size_t sz, uint64_t done, uint64_t total, uint64_t failed,
                            int64_t elapsed_ms);

/* `taskq failed`: ID NAME QUEUE FINISHED ATTEMPTS CODE ERROR */
void print_failed_header(FILE *f);
void print_failed_row(FILE *f, const taskq_task_t *t);

#endif
