/*
 * checker.h - the at-least-once checker: reads the history files written
 * under TASKQ_HISTORY (proto/thist.h) and the broker's final database, and
 * reports every violation of the rules in docs/reliability.md
 * ("History and checker"): lost, unexpected, multi_terminal,
 * stale_accepted, overlap, dup_unexplained, mismatch.
 *
 * Test code: it opens the database read-only with sqlite3 (the one place
 * outside broker/store_sqlite.c that may). Order of events across files is
 * their wall_us timestamp; inside one file, line order (a timestamp that
 * steps back is raised to the previous one).
 *
 * Usage: c = checker_new(); checker_load_dir(c, dir); checker_load_db(c, db);
 * [checker_set_verifier(c, fn, arg);] checker_run(c, stdout, &sum);
 * checker_destroy(&c). Loading may be repeated (several dirs) before run.
 */
#ifndef TASKQ_CHECKER_H
#define TASKQ_CHECKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "taskq.h"

typedef struct checker checker_t;

typedef struct {
    size_t submitted;       /* distinct ids with submit_invoke */
    size_t acked;           /* distinct ids with submit_ack */
    size_t terminal;        /* DB rows in state succeeded or failed */
    size_t lost, unexpected, multi_terminal, stale_accepted, overlap;
    size_t dup_unexplained;
    size_t dup_explained;   /* extra executions explained by a fault: counted, not failed */
    size_t mismatch;
    size_t stale_rejected;  /* `stale` events: DONEs the broker refused (fencing worked) */
    size_t events;          /* lines parsed */
    size_t malformed;       /* lines that could not be parsed (reported, not failed) */
    size_t files;
} checker_summary_t;

/* Verifier for deterministic tasks: true if `result` (msgpack bytes, as
 * stored) is right for `name` and `args` (msgpack bytes). Tasks it does not
 * know should return true. */
typedef bool (*checker_verify_fn)(const char *name, const void *args, size_t args_len,
                                  const void *result, size_t result_len, void *arg);

/* NULL on allocation failure. Caller owns it. */
checker_t *checker_new(void);
void checker_destroy(checker_t **self_p);

/* Reads every *.hist in dir. TASKQ_ESYS if dir cannot be read. */
taskq_err_t checker_load_dir(checker_t *self, const char *dir);
/* Reads one history file (e.g. a corrupted copy). TASKQ_ESYS on I/O error. */
taskq_err_t checker_load_file(checker_t *self, const char *path);
/* Reads the tasks table (read-only). TASKQ_ESTORE if it cannot. */
taskq_err_t checker_load_db(checker_t *self, const char *dbpath);
void checker_set_verifier(checker_t *self, checker_verify_fn fn, void *arg);

/* Applies every rule; writes the summary line
 *   checker: submitted=N acked=N terminal=N lost=N ... stale_rejected=N
 * then each violation ("VIOLATION <kind> <id>: <why>", first 20 per kind)
 * to out (NULL = silent). Fills *sum if not NULL. Returns the number of
 * violations: 0 = the history is correct. Call once per checker. */
int checker_run(checker_t *self, FILE *out, checker_summary_t *sum);

#endif
