/*
 * cli.h - what the files of the `taskq` CLI share: the exit codes, the
 * per-run state, and the helpers every command uses (util.c). One file per
 * noun: main.c (submit, status, result, workers, stats, the command table),
 * cmd_queue.c (queues, queue), cmd_limit.c, cmd_schedule.c, cmd_clock.c,
 * cmd_flow.c (chain, group, map, wait), cmd_life.c (revoke, failed, rerun,
 * purge);
 * render.c builds the JSON and tables, parse.c parses option values.
 */
#ifndef TASKQ_CLI_H
#define TASKQ_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "taskq.h"

/* ---- exit codes: the one table (docs/client.md and --help quote it) ---- */
enum {
    EXIT_OK = 0,       /* success */
    EXIT_FAILED = 1,   /* the task failed */
    EXIT_USAGE = 2,    /* bad usage */
    EXIT_TIMEOUT = 3,  /* timed out */
    EXIT_UNREACH = 4,  /* cannot reach the broker */
    EXIT_NOTFOUND = 5, /* no such task, queue, limit or schedule */
    EXIT_OTHER = 6,    /* any other error */
    EXIT_BUSY = 7,     /* refused by backpressure (a full queue) */
};

typedef struct {
    const char *broker;   /* --broker, else $TASKQ_BROKER, else default */
    int64_t timeout_ms;   /* libtaskq request timeout */
} cli_t;

extern char g_endpoint[256]; /* first broker endpoint, for messages */

/* The exit code for an error. */
int exit_for(taskq_err_t e);
/* Prints the exit code table (for --help). */
void print_exit_codes(FILE *f);
/* cmd is "submit " (with the space) or NULL for the global level. */
void usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the one-line error for e and returns the exit code. `id` names
 * the task for ENOTFOUND. */
int fail(const cli_t *cli, taskq_err_t e, const char *what, const char *id);
/* Like fail, for a call on handle c: BUSY prints the queue, depth, limit
 * and retry-after; ENOTFOUND says "no such NOUN: NAME"; an error the
 * broker explained prints its message. */
int fail_on(const cli_t *cli, const taskq_client_t *c, taskq_err_t e, const char *what,
            const char *noun, const char *name);
int connect_broker(const cli_t *cli, taskq_client_t **out);
/* Options common to every subcommand; returns 1 if consumed (and *i moved),
 * 0 if not an option we know, -1 on a usage error. */
int common_opt(cli_t *cli, int argc, char **argv, int *i);
/* Parses the options of a command that takes only --json (and the common
 * ones) plus up to npos positional arguments (pos may be NULL when npos is
 * 0). Returns -1 to go on, else the exit code to return at once. */
int parse_simple(cli_t *cli, int argc, char **argv, const char *what, const char *help,
                 bool *as_json, const char **pos, int npos);
bool parse_id_arg(const char *cmd, const char *s, taskq_id_t *id);

void print_json(json_t *j);
void print_json_flags(json_t *j, size_t extra);

/* Commands outside main.c. */
int cmd_queues(cli_t *cli, int argc, char **argv);
int cmd_queue(cli_t *cli, int argc, char **argv);
int cmd_limit(cli_t *cli, int argc, char **argv);
int cmd_schedule(cli_t *cli, int argc, char **argv);
int cmd_clock(cli_t *cli, int argc, char **argv);
/* cmd_flow.c: workflows and waiting */
int cmd_chain(cli_t *cli, int argc, char **argv);
int cmd_group(cli_t *cli, int argc, char **argv);
int cmd_map(cli_t *cli, int argc, char **argv);
int cmd_wait(cli_t *cli, int argc, char **argv);
/* cmd_life.c: revoke, dead letters, re-run, purge */
int cmd_revoke(cli_t *cli, int argc, char **argv);
int cmd_failed(cli_t *cli, int argc, char **argv);
int cmd_rerun(cli_t *cli, int argc, char **argv);
int cmd_purge(cli_t *cli, int argc, char **argv);

/* A "verb" dispatcher for commands with subcommands (queue, limit,
 * schedule, clock). */
typedef struct {
    const char *name;
    int (*fn)(cli_t *, int, char **);
    const char *usage; /* one line */
} subcmd_t;
/* Runs argv[0] among subs; prints help (including each usage line) for
 * --help or no verb. cmd is "queue " etc. */
int run_subcommand(cli_t *cli, int argc, char **argv, const char *cmd, const char *intro,
                   const subcmd_t *subs, size_t nsubs);

#endif
