/*
 * main.c - the `taskq` command-line client: the command table and the task
 * commands (submit, status, result, workers, stats); the queue, limit,
 * schedule and clock commands have a file each (cli.h). Everything talks to
 * the broker through libtaskq. Results and records go to stdout (JSON with
 * --json); errors are one line on stderr; the exit code comes from one
 * table (util.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "json.h"
#include "parse.h"
#include "render.h"
#include "taskq.h"
#include "tclock.h"

/* Prints a terminal task the way `taskq result` does; returns the exit code:
 * 0 succeeded, 1 anything else (failed, expired, revoked). */
static int print_outcome(const taskq_task_t *t, bool as_record)
{
    if (as_record) {
        json_t *o = task_json(t);
        print_json(o);
        json_decref(o);
    }
    if (t->state == TASKQ_STATE_SUCCEEDED) {
        if (!as_record) {
            json_t *r = result_json(t);
            print_json(r);
            json_decref(r);
        }
        return EXIT_OK;
    }
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, id);
    if (t->state == TASKQ_STATE_FAILED)
        fprintf(stderr, "taskq: task %s failed: %s%s%s%s\n", id, t->error[0] ? t->error : "(no message)",
                t->code[0] ? " [" : "", t->code, t->code[0] ? "]" : "");
    else if (t->error[0])
        fprintf(stderr, "taskq: task %s ended %s: %s\n", id, taskq_state_name(t->state), t->error);
    else
        fprintf(stderr, "taskq: task %s ended %s\n", id, taskq_state_name(t->state));
    return EXIT_FAILED;
}

/* ---- submit ------------------------------------------------------------ */

static int wait_and_print(const cli_t *cli, taskq_client_t *c, const taskq_id_t *id,
                          int64_t timeout_ms, bool as_record);

/* The submit options beyond the name and args. */
typedef struct {
    bool wait, as_json;
    int64_t wait_ms, block_ms;
    taskq_task_spec_t spec; /* without name and args */
} submit_opts_t;

/* Value of option argv[*i] into the spec; returns -1 if not a spec option,
 * else the exit code (EXIT_OK to go on). */
static int submit_spec_opt(submit_opts_t *o, int argc, char **argv, int *i)
{
    static const char *const spec_opts[] = {
        "--time-limit", "--max-attempts", "--queue", "--priority", "--countdown", "--eta",
        "--expires", "--backoff", "--jitter", "--retry-on", "--no-retry-on", "--block",
        "--unique-key", "--unique-until", "--unique-for", "--result-ttl", NULL};
    const char *a = argv[*i];
    bool known = false;
    for (size_t k = 0; spec_opts[k]; k++)
        known = known || !strcmp(a, spec_opts[k]);
    if (!known)
        return -1;
    if (*i + 1 >= argc)
        return usage_error("submit ", "missing value for %s", a), EXIT_USAGE;
    const char *v = argv[++*i], *why = NULL;
    taskq_task_spec_t *sp = &o->spec;
    bool ok = true;
    if (!strcmp(a, "--time-limit")) {
        ok = parse_seconds(v, &sp->time_limit_ms);
    } else if (!strcmp(a, "--max-attempts")) {
        ok = parse_uint(v, &sp->max_attempts) && sp->max_attempts <= 100;
    } else if (!strcmp(a, "--queue")) {
        ok = queue_name_ok(v);
        sp->queue = v;
        why = "a queue name is [a-z0-9_.-], 1-64 characters";
    } else if (!strcmp(a, "--priority")) {
        ok = parse_priority(v, &sp->priority);
        sp->has_priority = 1;
    } else if (!strcmp(a, "--countdown")) {
        ok = parse_seconds(v, &sp->countdown_ms);
    } else if (!strcmp(a, "--eta")) {
        ok = parse_time_ms(v, &sp->eta_ms, &why);
    } else if (!strcmp(a, "--expires")) {
        ok = parse_expires(v, &sp->expires_in_ms, &sp->expires_at_ms, &why);
    } else if (!strcmp(a, "--backoff")) {
        ok = parse_backoff(v, &sp->backoff_base_ms, &sp->backoff_factor, &sp->backoff_max_ms);
        why = "expected BASE,FACTOR,MAX, e.g. 2s,2,10m (BASE <= MAX, FACTOR 1-1000)";
    } else if (!strcmp(a, "--jitter")) {
        ok = !strcmp(v, "equal") || !strcmp(v, "full") || !strcmp(v, "none");
        sp->jitter = v;
        why = "expected equal, full or none";
    } else if (!strcmp(a, "--retry-on")) {
        sp->retry_on = v;
    } else if (!strcmp(a, "--no-retry-on")) {
        sp->no_retry_on = v;
    } else if (!strcmp(a, "--block")) {
        ok = parse_seconds(v, &o->block_ms);
    } else if (!strcmp(a, "--unique-key")) {
        size_t n = strlen(v);
        for (size_t k = 0; k < n; k++)
            ok = ok && v[k] >= 0x20 && v[k] <= 0x7e;
        ok = ok && n >= 1 && n <= 200;
        sp->unique_key = v;
        why = "a unique key is 1-200 printable ASCII characters";
    } else if (!strcmp(a, "--unique-until")) {
        ok = !strcmp(v, "done") || !strcmp(v, "start");
        sp->unique_until = v;
        why = "expected done or start";
    } else if (!strcmp(a, "--unique-for")) {
        ok = parse_duration_ms(v, &sp->unique_for_ms) && sp->unique_for_ms > 0;
        why = "expected a duration > 0 (e.g. 30, 90s, 10m, 1h)";
    } else if (!strcmp(a, "--result-ttl")) {
        ok = parse_duration_ms(v, &sp->result_ttl_ms) && sp->result_ttl_ms > 0;
        why = "expected a duration > 0 (e.g. 3600, 90m, 7d)";
    }
    if (!ok) {
        if (why)
            usage_error("submit ", "%s '%s': %s", a, v, why);
        else
            usage_error("submit ", "%s: invalid value '%s'", a, v);
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* A spec the library refused before sending: say which option is wrong. */
static int submit_spec_error(taskq_err_t e, const char *name, const taskq_task_spec_t *sp)
{
    if (e == TASKQ_ENAME)
        fprintf(stderr, "taskq: invalid task name '%s' (allowed: [A-Za-z0-9_.:-], 1-128)\n", name);
    else if ((sp->retry_on && sp->retry_on[0]) || (sp->no_retry_on && sp->no_retry_on[0]))
        fprintf(stderr, "taskq: submit: %s (check --retry-on / --no-retry-on: codes "
                        "[A-Za-z0-9_.], comma separated, '*' only at the end)\n",
                taskq_strerror(e));
    else
        fprintf(stderr, "taskq: submit: %s (%s)\n", taskq_strerror(e), taskq_err_name(e));
    return EXIT_USAGE;
}

static int cmd_submit(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq submit NAME [ARGS_JSON] [--wait] [--timeout S] [--json]\n"
        "                    [--queue Q] [--priority P] [--countdown S | --eta TIME]\n"
        "                    [--expires S|TIME] [--time-limit S] [--max-attempts N]\n"
        "                    [--backoff BASE,FACTOR,MAX] [--jitter equal|full|none]\n"
        "                    [--retry-on CODES] [--no-retry-on CODES] [--block S]\n"
        "                    [--unique-key K | --unique] [--unique-until done|start]\n"
        "                    [--unique-for D] [--result-ttl D] [--broker EP]\n"
        "Submits one task and prints its id. ARGS_JSON is a JSON array of arguments or\n"
        "a single JSON value (sent as that value).\n"
        "  --wait            wait for the task and print its result as JSON (with\n"
        "                    --json: the whole record); --timeout S bounds the wait\n"
        "                    (default: forever)\n"
        "  --json            print {\"id\", \"queue\", \"soft_limit\", \"duplicate\"}\n"
        "                    (without --wait)\n"
        "  --queue Q         queue [a-z0-9_.-]{1,64} (default: the broker's routes, else\n"
        "                    \"default\")\n"
        "  --priority P      0-9, default 5, 9 runs first (FIFO within a priority)\n"
        "  --countdown S     run no sooner than S seconds after the broker accepts it\n"
        "  --eta TIME        run no sooner than TIME: ISO-8601 with an offset\n"
        "                    (2026-11-25T18:00:00+01:00, ...Z) or unix seconds\n"
        "  --expires S|TIME  end 'expired' if not started S seconds after acceptance,\n"
        "                    or by TIME (ISO-8601 with an offset, or @UNIX seconds)\n"
        "  --time-limit S    the task's hard time limit on the worker\n"
        "  --max-attempts N  attempts before it fails (0-100; default: the task's\n"
        "                    registration, else 3)\n"
        "  --backoff B,F,M   retry delay min(M, B*F^(failures-1)); durations take ms, s,\n"
        "                    m, h (default 2s,2,10m)\n"
        "  --jitter J        equal (default: a delay in [d/2,d]), full ([0,d]), none\n"
        "  --retry-on CODES  retry only these failure codes (comma list, 'http.5*'\n"
        "                    prefixes); --no-retry-on CODES never retries these\n"
        "  --block S         if the queue is full, retry for up to S seconds instead of\n"
        "                    failing at once (exit 7 when still refused)\n"
        "  --unique-key K    at most one live task with key K (1-200 printable ASCII):\n"
        "                    a duplicate creates nothing, prints \"duplicate of ID\" on\n"
        "                    stderr and the holder's id on stdout (exit 0)\n"
        "  --unique          the key is a hash of the name, the arguments and the queue\n"
        "  --unique-until W  done (default: held until the holder ends) or start (held\n"
        "                    only while it waits to start)\n"
        "  --unique-for D    also hold the key D after the submit (a throttle; D: 30,\n"
        "                    90s, 10m, 1h)\n"
        "  --result-ttl D    keep the record D after it ends (default: the broker's\n"
        "                    --retention, 24 h); then status answers 'purged'\n";
    const char *name = NULL, *args_text = NULL;
    submit_opts_t o;
    memset(&o, 0, sizeof o);
    o.wait_ms = -1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("submit ", "missing value for %s", a), EXIT_USAGE;
        if (c > 0)
            continue;
        int rc = submit_spec_opt(&o, argc, argv, &i);
        if (rc > 0)
            return rc;
        if (rc == 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--wait")) {
            o.wait = true;
        } else if (!strcmp(a, "--unique")) {
            o.spec.unique = 1;
        } else if (!strcmp(a, "--json")) {
            o.as_json = true;
        } else if (!strcmp(a, "--timeout")) {
            if (i + 1 >= argc || !parse_seconds(argv[i + 1], &o.wait_ms))
                return usage_error("submit ", "%s needs a number of seconds", a), EXIT_USAGE;
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("submit ", "unknown option %s", a), EXIT_USAGE;
        } else if (!name) {
            name = a;
        } else if (!args_text) {
            args_text = a;
        } else {
            return usage_error("submit ", "unexpected argument '%s'", a), EXIT_USAGE;
        }
    }
    if (!name)
        return usage_error("submit ", "missing task NAME"), EXIT_USAGE;
    if (o.spec.countdown_ms > 0 && o.spec.eta_ms > 0)
        return usage_error("submit ", "--countdown and --eta exclude each other"), EXIT_USAGE;
    if (o.spec.unique && o.spec.unique_key)
        return usage_error("submit ", "--unique and --unique-key exclude each other"), EXIT_USAGE;
    if ((o.spec.unique_until || o.spec.unique_for_ms > 0) && !o.spec.unique && !o.spec.unique_key)
        return usage_error("submit ", "--unique-until and --unique-for need --unique-key or "
                                      "--unique"), EXIT_USAGE;
    void *args = NULL;
    size_t args_len = 0;
    if (args_text) {
        char err[200];
        taskq_err_t e = json_text_to_msgpack(args_text, &args, &args_len, err, sizeof err);
        if (e == TASKQ_EINVAL)
            return usage_error("submit ", "ARGS_JSON: %s", err), EXIT_USAGE;
        if (e != TASKQ_OK)
            return fail(cli, e, "submit", NULL);
    }
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK) {
        free(args);
        return rc;
    }
    taskq_client_set_block(c, o.block_ms);
    taskq_task_spec_t spec = o.spec;
    spec.name = name;
    spec.args = args;
    spec.args_len = args_len;
    taskq_err_t e = taskq_submit(c, &spec);
    free(args);
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&spec.id, id);
    if (e == TASKQ_ENAME || (e == TASKQ_EINVAL && !taskq_client_last_error(c)[0]) ||
        (e == TASKQ_ETOOBIG && !taskq_client_last_error(c)[0])) {
        rc = submit_spec_error(e, name, &spec);
    } else if (e == TASKQ_ENOQUEUE) {
        fprintf(stderr, "taskq: unknown queue '%s' (the broker runs with --strict-queues)\n",
                spec.queue ? spec.queue : "");
        rc = exit_for(e);
    } else if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "submit", "task", id);
    } else {
        if (spec.soft_limit)
            fprintf(stderr, "taskq: note: queue %s is past %d%% of its max_pending: slow down\n",
                    spec.queue_out[0] ? spec.queue_out : "?", 80);
        /* a live task holds the unique key: nothing was created; the
         * holder stands in for it (wait for it, print its id) */
        const taskq_id_t *tid = spec.duplicate ? &spec.holder_id : &spec.id;
        taskq_id_format(tid, id);
        if (spec.duplicate)
            fprintf(stderr, "duplicate of %s\n", id);
        if (o.wait) {
            if (!spec.duplicate)
                fprintf(stderr, "submitted %s\n", id);
            rc = wait_and_print(cli, c, tid, o.wait_ms, o.as_json);
        } else if (o.as_json) {
            json_t *j = json_pack("{s:s, s:o, s:b, s:b}", "id", id, "queue",
                                  spec.queue_out[0] ? json_string(spec.queue_out) : json_null(),
                                  "soft_limit", spec.soft_limit, "duplicate", spec.duplicate);
            print_json(j);
            json_decref(j);
        } else {
            puts(id);
        }
    }
    taskq_client_destroy(&c);
    return rc;
}

/* ---- status ------------------------------------------------------------ */

static int cmd_status(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq status ID|GID [--attempts] [--json] [--broker EP]\n"
        "Prints a task's record: aligned key: value lines, or one JSON object with\n"
        "--json (id, name, state, queue, priority, attempts, max_attempts, failures,\n"
        "code, progress{current,total,message}, result, error (failed: the error;\n"
        "revoked: the reason), worker, child_pid, submitted_at, started_at,\n"
        "finished_at, due_at, expires_at, schedule, group_id, parent_id, rerun_of,\n"
        "rerun_by, unique_key).\n"
        "A group id (group, chord, map) prints its progress instead: JSON {group,\n"
        "total, succeeded, failed, remaining, on_fail, callback, callback_state}.\n"
        "A task deleted after its retention time is reported as purged (exit 5).\n"
        "--attempts adds every attempt, oldest first: one line each (attempt, worker,\n"
        "pid, start, duration, state, code, message), or with --json the array\n"
        "\"attempt_history\" of {attempt, worker, child_pid, started_at, finished_at,\n"
        "duration_s, state, code, message}.\n";
    const char *ids = NULL;
    bool as_json = false, with_attempts = false;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("status ", "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(argv[i], "--json"))
            as_json = true;
        else if (!strcmp(argv[i], "--attempts"))
            with_attempts = true;
        else if (argv[i][0] == '-' || ids)
            return usage_error("status ", "unexpected argument '%s'", argv[i]), EXIT_USAGE;
        else
            ids = argv[i];
    }
    taskq_id_t id;
    if (!ids)
        return usage_error("status ", "missing task ID"), EXIT_USAGE;
    if (!parse_id_arg("status ", ids, &id))
        return EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_task_t *t = NULL;
    taskq_attempts_t *at = NULL;
    taskq_err_t e = taskq_status(c, &id, &t);
    if (e == TASKQ_ENOTFOUND || e == TASKQ_EPURGED) {
        /* not a task: maybe a group (group, chord or map; its id may be
         * older than the purge horizon of task ids) */
        taskq_group_info_t g;
        taskq_err_t ge = taskq_group_status(c, &id, &g);
        if (ge == TASKQ_OK) {
            if (as_json) {
                json_t *o = group_json(&g);
                print_json(o);
                json_decref(o);
            } else {
                print_group_human(stdout, &g);
            }
            taskq_client_destroy(&c);
            return EXIT_OK;
        }
        if (ge != TASKQ_ENOTFOUND)
            e = ge;
        rc = fail_on(cli, c, e, "status", e == TASKQ_EPURGED ? "task" : "task or group", ids);
        taskq_client_destroy(&c);
        return rc;
    }
    if (e == TASKQ_OK && with_attempts)
        e = taskq_attempts(c, &id, &at);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "status", "task", ids);
    } else if (as_json) {
        json_t *o = task_json(t);
        if (with_attempts) {
            json_t *arr = json_array();
            for (size_t i = 0; i < taskq_attempts_count(at); i++)
                json_array_append_new(arr, attempt_json(taskq_attempts_get(at, i)));
            json_object_set_new(o, "attempt_history", arr);
        }
        print_json_flags(o, JSON_REAL_PRECISION(15));
        json_decref(o);
    } else {
        print_task_human(stdout, t);
        if (with_attempts) {
            int64_t now = tclock_wall_ms();
            printf("\n");
            print_attempt_header(stdout);
            for (size_t i = 0; i < taskq_attempts_count(at); i++)
                print_attempt_row(stdout, taskq_attempts_get(at, i), now);
        }
    }
    taskq_attempts_destroy(&at);
    taskq_task_destroy(&t);
    taskq_client_destroy(&c);
    return rc;
}

/* ---- result ------------------------------------------------------------ */

static void draw_progress(const taskq_task_t *t, int64_t elapsed_ms)
{
    enum { W = 30 };
    double f = t->progress_total ? (double)t->progress_current / (double)t->progress_total : 0.0;
    if (f > 1 || t->state == TASKQ_STATE_SUCCEEDED)
        f = 1; /* progress is coalesced: the last report may predate the end */
    char bar[W * 3 + 1];
    size_t o = 0;
    int full = (int)(f * W);
    for (int i = 0; i < W; i++) {
        const char *g = i < full ? "\xe2\x96\x88" : "\xe2\x96\x91"; /* █ ░ */
        memcpy(bar + o, g, 3);
        o += 3;
    }
    bar[o] = '\0';
    fprintf(stderr, "\r\x1b[2K%s %3.0f%% %llu/%llu %-9s %.40s  %.1fs", bar, f * 100,
            (unsigned long long)t->progress_current, (unsigned long long)t->progress_total,
            taskq_state_name(t->state), t->progress_message, (double)elapsed_ms / 1000.0);
    fflush(stderr);
}

/* Waits for the task (timeout_ms < 0: forever) and prints its outcome. */
static int wait_and_print(const cli_t *cli, taskq_client_t *c, const taskq_id_t *id,
                          int64_t timeout_ms, bool as_record)
{
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, ids);
    taskq_task_t *t = NULL;
    taskq_err_t e = taskq_wait(c, id, timeout_ms, &t);
    if (e != TASKQ_OK)
        return fail(cli, e, "waiting for the result", ids);
    int rc = print_outcome(t, as_record);
    taskq_task_destroy(&t);
    return rc;
}

/* The live view: a short WAIT doubles as the ~200 ms tick, then STATUS
 * brings the progress; ends when the task is terminal or at the deadline. */
static int wait_with_progress(const cli_t *cli, taskq_client_t *c, const taskq_id_t *id,
                              int64_t timeout_ms)
{
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, ids);
    int64_t start = tclock_mono_ms();
    for (;;) {
        taskq_task_t *t = NULL;
        taskq_err_t e = taskq_status(c, id, &t);
        if (e != TASKQ_OK) {
            fputs("\r\x1b[2K", stderr);
            return fail(cli, e, "status", ids);
        }
        int64_t elapsed = tclock_mono_ms() - start;
        draw_progress(t, elapsed);
        if (taskq_state_is_terminal(t->state)) {
            fputs("\n", stderr);
            int rc = print_outcome(t, false);
            taskq_task_destroy(&t);
            return rc;
        }
        taskq_task_destroy(&t);
        if (timeout_ms >= 0 && elapsed >= timeout_ms) {
            fputs("\n", stderr);
            return fail(cli, TASKQ_ETIMEDOUT, "waiting for the result", ids);
        }
        e = taskq_wait(c, id, 200, &t);
        if (e == TASKQ_OK)
            taskq_task_destroy(&t); /* terminal: the next STATUS shows it */
        else if (e != TASKQ_ETIMEDOUT) {
            fputs("\n", stderr);
            return fail(cli, e, "waiting for the result", ids);
        }
    }
}

static int cmd_result(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq result ID [--timeout S] [--progress] [--broker EP]\n"
        "Waits until the task is terminal (default: forever). Prints the result as JSON\n"
        "on success (exit 0); on failure prints the error on stderr (exit 1). With\n"
        "--progress and a terminal, draws a live progress bar on stderr.\n";
    const char *ids = NULL;
    bool progress = false;
    int64_t timeout_ms = -1;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("result ", "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(argv[i], "--progress")) {
            progress = true;
        } else if (!strcmp(argv[i], "--timeout")) {
            if (i + 1 >= argc || !parse_seconds(argv[i + 1], &timeout_ms))
                return usage_error("result ", "%s needs a number of seconds", argv[i]), EXIT_USAGE;
            i++;
        } else if (argv[i][0] == '-' || ids) {
            return usage_error("result ", "unexpected argument '%s'", argv[i]), EXIT_USAGE;
        } else {
            ids = argv[i];
        }
    }
    taskq_id_t id;
    if (!ids)
        return usage_error("result ", "missing task ID"), EXIT_USAGE;
    if (!parse_id_arg("result ", ids, &id))
        return EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    if (progress && isatty(STDOUT_FILENO) && isatty(STDERR_FILENO)) {
        rc = wait_with_progress(cli, c, &id, timeout_ms);
    } else {
        /* STATUS first: it tells "no such task" and "no broker" apart from
         * a long wait (a WAIT is silent until the task ends) */
        taskq_task_t *t = NULL;
        taskq_err_t e = taskq_status(c, &id, &t);
        if (e != TASKQ_OK)
            rc = fail(cli, e, "status", ids);
        else if (taskq_state_is_terminal(t->state))
            rc = print_outcome(t, false);
        else
            rc = wait_and_print(cli, c, &id, timeout_ms, false);
        taskq_task_destroy(&t);
    }
    taskq_client_destroy(&c);
    return rc;
}

/* ---- workers ----------------------------------------------------------- */

static json_t *workers_json(const taskq_workers_t *w)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < taskq_workers_count(w); i++) {
        const taskq_node_info_t *n = taskq_workers_node(w, i);
        json_t *kids = json_array();
        for (size_t j = 0; j < n->nchildren; j++) {
            const taskq_child_info_t *k = &n->children[j];
            char tid[TASKQ_ID_STRLEN + 1];
            taskq_id_format(&k->task_id, tid);
            json_array_append_new(
                kids, json_pack("{s:i, s:s, s:o, s:o, s:f, s:I, s:I, s:I}", "pid", (int)k->pid,
                                "state", k->state, "task_id", k->has_task ? json_string(tid) : json_null(),
                                "task_name", k->task_name[0] ? json_string(k->task_name) : json_null(),
                                "running_s", (double)k->running_ms / 1000.0, "done", (json_int_t)k->done,
                                "failed", (json_int_t)k->failed, "rss_kb", (json_int_t)k->rss_kb));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:I, s:o, s:o}", "id", n->id, "host",
                                             n->host, "pid", (int)n->pid, "slots", (json_int_t)n->slots,
                                             "last_heartbeat", json_time(n->last_heartbeat),
                                             "children", kids));
    }
    return arr;
}

static void print_workers_human(const taskq_workers_t *w)
{
    size_t nn = taskq_workers_count(w);
    if (nn == 0) {
        printf("no live worker nodes\n");
        return;
    }
    int64_t now = tclock_wall_ms();
    printf("%-24s %-20s %8s %5s  %s\n", "NODE", "HOST", "PID", "SLOTS", "LAST HEARTBEAT");
    for (size_t i = 0; i < nn; i++) {
        const taskq_node_info_t *n = taskq_workers_node(w, i);
        char b[40];
        printf("%-24s %-20s %8d %5u  %s (%.1f s ago)\n", n->id, n->host, (int)n->pid, n->slots,
               iso_time(n->last_heartbeat, b, sizeof b), (double)(now - n->last_heartbeat) / 1000.0);
    }
    for (size_t i = 0; i < nn; i++) {
        const taskq_node_info_t *n = taskq_workers_node(w, i);
        printf("\n%s:\n  %8s  %-9s %-8s  %-24s %9s %7s %7s %8s\n", n->id, "PID", "STATE", "TASK",
               "NAME", "RUNNING", "DONE", "FAILED", "RSS MB");
        for (size_t j = 0; j < n->nchildren; j++) {
            const taskq_child_info_t *k = &n->children[j];
            char sid[9] = "-";
            if (k->has_task)
                short_id(&k->task_id, sid);
            printf("  %8d  %-9s %-8s  %-24.24s %8.1fs %7llu %7llu %8.1f\n", (int)k->pid, k->state,
                   sid, k->task_name[0] ? k->task_name : "-", (double)k->running_ms / 1000.0,
                   (unsigned long long)k->done, (unsigned long long)k->failed,
                   (double)k->rss_kb / 1024.0);
        }
    }
}

static int cmd_workers(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq workers [--json] [--broker EP]\n"
        "Lists live worker nodes and their child processes. JSON: a list of nodes\n"
        "{id, host, pid, slots, last_heartbeat, children[{pid, state, task_id,\n"
        "task_name, running_s, done, failed, rss_kb}]}.\n";
    bool as_json;
    int prc = parse_simple(cli, argc, argv, "workers ", help, &as_json, NULL, 0);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_workers_t *w = NULL;
    taskq_err_t e = taskq_workers(c, &w);
    if (e != TASKQ_OK) {
        rc = fail(cli, e, "workers", NULL);
    } else if (as_json) {
        json_t *j = workers_json(w);
        print_json_flags(j, JSON_REAL_PRECISION(15));
        json_decref(j);
    } else {
        print_workers_human(w);
    }
    taskq_workers_destroy(&w);
    taskq_client_destroy(&c);
    return rc;
}

/* ---- stats ------------------------------------------------------------- */

static int cmd_stats(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq stats [--json] [--broker EP]\n"
        "Tasks by state, totals, records purged (by TTL or purge, ever), nodes and\n"
        "children, broker uptime. JSON fields: queued, running, succeeded, failed,\n"
        "total, submitted, purged, nodes, children, uptime_s, broker.\n";
    bool as_json;
    int prc = parse_simple(cli, argc, argv, "stats ", help, &as_json, NULL, 0);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_stats_t s;
    taskq_err_t e = taskq_stats(c, &s);
    taskq_client_destroy(&c);
    if (e != TASKQ_OK)
        return fail(cli, e, "stats", NULL);
    if (as_json) {
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s}", "queued",
                              (json_int_t)s.queued, "running", (json_int_t)s.running, "succeeded",
                              (json_int_t)s.succeeded, "failed", (json_int_t)s.failed, "total",
                              (json_int_t)s.total, "submitted", (json_int_t)s.submitted,
                              "purged", (json_int_t)s.purged, "nodes",
                              (json_int_t)s.nodes, "children", (json_int_t)s.children, "uptime_s",
                              (double)s.uptime_ms / 1000.0, "broker", s.broker_id);
        print_json_flags(o, JSON_REAL_PRECISION(15));
        json_decref(o);
        return EXIT_OK;
    }
    int64_t up = s.uptime_ms / 1000;
    printf("%-11s %llu\n%-11s %llu\n%-11s %llu\n%-11s %llu\n", "queued:",
           (unsigned long long)s.queued, "running:", (unsigned long long)s.running,
           "succeeded:", (unsigned long long)s.succeeded, "failed:", (unsigned long long)s.failed);
    printf("%-11s %llu\n%-11s %llu (since broker start)\n", "total:", (unsigned long long)s.total,
           "submitted:", (unsigned long long)s.submitted);
    printf("%-11s %llu (records deleted by TTL or purge, ever)\n", "purged:",
           (unsigned long long)s.purged);
    printf("%-11s %llu\n%-11s %llu\n", "nodes:", (unsigned long long)s.nodes, "children:",
           (unsigned long long)s.children);
    printf("%-11s %lldh %02lldm %02llds\n%-11s %s\n", "uptime:", (long long)(up / 3600),
           (long long)(up / 60 % 60), (long long)(up % 60), "broker:", s.broker_id);
    return EXIT_OK;
}

/* ---- main -------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(cli_t *, int, char **);
    const char *summary;
} commands[] = {
    {"submit", cmd_submit, "submit a task; print its id (or its result with --wait)"},
    {"status", cmd_status, "show a task's record"},
    {"result", cmd_result, "wait for a task and print its result"},
    {"workers", cmd_workers, "list worker nodes and their children"},
    {"stats", cmd_stats, "broker statistics"},
    {"queues", cmd_queues, "list queues: tasks per state, oldest age, slots, paused"},
    {"queue", cmd_queue, "pause | resume | set a queue (max_pending)"},
    {"limit", cmd_limit, "set | list | rm rate and concurrency limits"},
    {"schedule", cmd_schedule, "add | list | pause | resume | rm | run-now periodic schedules"},
    {"clock", cmd_clock, "advance | set the broker's test clock (--test-clock only)"},
    {"revoke", cmd_revoke, "revoke tasks (by id, group, queue, name, state); --terminate"},
    {"chain", cmd_chain, "submit a chain: each task gets the previous one's result"},
    {"group", cmd_group, "submit a group (with --then: a chord)"},
    {"map", cmd_map, "one task per chunk of items, as a group; --wait prints results"},
    {"wait", cmd_wait, "wait for any / all of some tasks, or a group"},
    {"failed", cmd_failed, "list failed tasks (the dead-letter set)"},
    {"rerun", cmd_rerun, "re-run failed tasks as new tasks"},
    {"purge", cmd_purge, "delete terminal task records older than a duration"},
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: taskq [--broker EP] COMMAND [ARGS] [--help]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions:\n  --broker EP  broker endpoint list (else $TASKQ_BROKER, else %s)\n"
               "  --help       this text; 'taskq COMMAND --help' for a command\n\n"
               "Dispatch policy (queues, priorities, ETAs, retries, limits, schedules)\n"
               "and task lifecycle (revoke, workflows, waiting, unique tasks, retention,\n"
               "dead letters): docs/tasks.md.\n\nexit codes:\n",
            TASKQ_DEFAULT_BROKER);
    print_exit_codes(f);
}

/* First endpoint of the list that the client will use, for messages. */
static void resolve_endpoint(const char *broker)
{
    const char *b = broker && *broker ? broker : getenv("TASKQ_BROKER");
    if (!b || !*b)
        b = TASKQ_DEFAULT_BROKER;
    while (*b == ' ')
        b++;
    size_t n = strcspn(b, ", ");
    if (n >= sizeof g_endpoint)
        n = sizeof g_endpoint - 1;
    memcpy(g_endpoint, b, n);
    g_endpoint[n] = '\0';
}

int main(int argc, char **argv)
{
    cli_t cli = {.broker = NULL, .timeout_ms = 5000};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(stdout);
            return EXIT_OK;
        }
        int c = common_opt(&cli, argc, argv, &i);
        if (c <= 0) {
            usage_error(NULL, c < 0 ? "missing value for %s" : "unknown option %s", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (i >= argc) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++) {
        if (strcmp(argv[i], commands[k].name) != 0)
            continue;
        /* options after the command may also name the broker: resolve late */
        int sub_argc = argc - i - 1;
        char **sub_argv = argv + i + 1;
        for (int j = 0; j + 1 < sub_argc; j++)
            if (!strcmp(sub_argv[j], "--broker"))
                cli.broker = sub_argv[j + 1];
        resolve_endpoint(cli.broker);
        return commands[k].fn(&cli, sub_argc, sub_argv);
    }
    usage_error(NULL, "unknown command '%s'", argv[i]);
    return EXIT_USAGE;
}
