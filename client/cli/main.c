/*
 * main.c - the `taskq` command-line client: one cmd_<verb>() per
 * subcommand, all talking to the broker through libtaskq. Results and
 * records go to stdout (JSON with --json); errors are one line on stderr;
 * the exit code comes from one table (exit_codes below).
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

#include "json.h"
#include "taskq.h"
#include "tclock.h"

/* ---- exit codes: the one table (docs/client.md and --help quote it) ---- */

enum {
    EXIT_OK = 0,       /* success */
    EXIT_FAILED = 1,   /* the task failed */
    EXIT_USAGE = 2,    /* bad usage */
    EXIT_TIMEOUT = 3,  /* timed out */
    EXIT_UNREACH = 4,  /* cannot reach the broker */
    EXIT_NOTFOUND = 5, /* no such task */
    EXIT_OTHER = 6,    /* any other error */
};

static const struct {
    int code;
    const char *meaning;
} exit_codes[] = {
    {EXIT_OK, "success"},
    {EXIT_FAILED, "the task failed (error printed on stderr)"},
    {EXIT_USAGE, "bad usage"},
    {EXIT_TIMEOUT, "timed out"},
    {EXIT_UNREACH, "cannot reach the broker"},
    {EXIT_NOTFOUND, "task not found"},
    {EXIT_OTHER, "other error"},
};

static int exit_for(taskq_err_t e)
{
    switch (e) {
    case TASKQ_OK: return EXIT_OK;
    case TASKQ_EINVAL:
    case TASKQ_ENAME:
    case TASKQ_ETOOBIG: return EXIT_USAGE;
    case TASKQ_ETIMEDOUT: return EXIT_TIMEOUT;
    case TASKQ_EUNREACH: return EXIT_UNREACH;
    case TASKQ_ENOTFOUND: return EXIT_NOTFOUND;
    default: return EXIT_OTHER;
    }
}

/* ---- shared state and helpers ---------------------------------------- */

typedef struct {
    const char *broker;   /* --broker, else $TASKQ_BROKER, else default */
    int64_t timeout_ms;   /* libtaskq request timeout */
} cli_t;

static char g_endpoint[256]; /* first broker endpoint, for messages */

/* cmd is "submit " (with the space) or NULL for the global level. */
static void usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "taskq: %.*s%s%s (see 'taskq %s--help')\n", cmd ? (int)strlen(cmd) - 1 : 0,
            cmd ? cmd : "", cmd ? ": " : "", msg, cmd ? cmd : "");
}

/* Prints the one-line error for e and returns the exit code. */
static int fail(const cli_t *cli, taskq_err_t e, const char *what, const char *id)
{
    double s = (double)cli->timeout_ms / 1000.0;
    switch (e) {
    case TASKQ_EUNREACH:
        fprintf(stderr, "taskq: cannot reach the broker at %s (timed out after %.1f s)\n",
                g_endpoint, s);
        break;
    case TASKQ_ETIMEDOUT:
        fprintf(stderr, "taskq: %s: timed out (broker %s)\n", what, g_endpoint);
        break;
    case TASKQ_ENOTFOUND:
        fprintf(stderr, "taskq: no such task: %s\n", id ? id : "?");
        break;
    default:
        fprintf(stderr, "taskq: %s: %s (%s)\n", what, taskq_strerror(e), taskq_err_name(e));
    }
    return exit_for(e);
}

static int connect_broker(const cli_t *cli, taskq_client_t **out)
{
    taskq_err_t e;
    *out = taskq_client_new(cli->broker, &e);
    if (!*out)
        return fail(cli, e, "connect", NULL);
    taskq_client_set_timeout(*out, cli->timeout_ms);
    return EXIT_OK;
}

/* Seconds (float) -> ms; false if not a non-negative number. */
static bool parse_seconds(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e9)
        return false;
    *ms = (int64_t)llround(v * 1000.0);
    return true;
}

static bool parse_uint(const char *s, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > 1000000 || s[0] == '-')
        return false;
    *out = (uint32_t)v;
    return true;
}

/* ISO-8601 UTC with ms into buf; "" for 0. */
static const char *iso_time(int64_t unix_ms, char *buf, size_t sz)
{
    if (unix_ms <= 0) {
        buf[0] = '\0';
        return buf;
    }
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char tmp[32];
    strftime(tmp, sizeof tmp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, sz, "%s.%03dZ", tmp, (int)(unix_ms % 1000));
    return buf;
}

static json_t *json_time(int64_t unix_ms)
{
    char buf[40];
    return unix_ms > 0 ? json_string(iso_time(unix_ms, buf, sizeof buf)) : json_null();
}

/* 8 characters that differ between ids of one batch (bytes 8..11 carry
 * the per-process counter of a UUIDv7 taskq id). */
static void short_id(const taskq_id_t *id, char out[9])
{
    char full[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, full);
    memcpy(out, full + 19, 4);
    memcpy(out + 4, full + 24, 4);
    out[8] = '\0';
}

/* The result as JSON (new reference; null if none). Notes lossy parts. */
static json_t *result_json(const taskq_task_t *t)
{
    if (!t->result)
        return json_null();
    json_t *j = NULL;
    int lossy = 0;
    taskq_err_t e = json_from_msgpack_bytes(t->result, t->result_len, &j, &lossy);
    if (e != TASKQ_OK) {
        char *b = json_base64(t->result, t->result_len);
        fprintf(stderr, "taskq: note: the result is not valid msgpack; shown as base64\n");
        j = b ? json_string(b) : json_null();
        free(b);
    } else if (lossy) {
        fprintf(stderr, "taskq: note: %d msgpack value(s) without a JSON form shown as null or real\n",
                lossy);
    }
    return j;
}

/* Results keep full double precision (17 digits); durations in our own
 * records are ms-exact and print better with 15 digits (43.413, not
 * 43.412999999999997). */
static void print_json_flags(json_t *j, size_t extra)
{
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | extra);
    if (s)
        puts(s);
    free(s);
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    if (s)
        puts(s);
    free(s);
}

static json_t *task_json(const taskq_task_t *t)
{
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "name", json_string(t->name));
    json_object_set_new(o, "state", json_string(taskq_state_name(t->state)));
    json_object_set_new(o, "attempts", json_integer(t->attempts));
    json_object_set_new(o, "max_attempts", json_integer(t->max_attempts));
    json_t *p = json_object();
    json_object_set_new(p, "current", json_integer((json_int_t)t->progress_current));
    json_object_set_new(p, "total", json_integer((json_int_t)t->progress_total));
    json_object_set_new(p, "message", json_string(t->progress_message));
    json_object_set_new(o, "progress", p);
    json_object_set_new(o, "result", t->state == TASKQ_STATE_SUCCEEDED ? result_json(t) : json_null());
    json_object_set_new(o, "error", t->state == TASKQ_STATE_FAILED ? json_string(t->error) : json_null());
    json_object_set_new(o, "worker", t->worker[0] ? json_string(t->worker) : json_null());
    json_object_set_new(o, "child_pid", json_integer(t->child_pid));
    json_object_set_new(o, "submitted_at", json_time(t->submitted_at));
    json_object_set_new(o, "started_at", json_time(t->started_at));
    json_object_set_new(o, "finished_at", json_time(t->finished_at));
    return o;
}

/* Prints a terminal task the way `taskq result` does; returns the exit code. */
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
    fprintf(stderr, "taskq: task %s failed: %s\n", id, t->error[0] ? t->error : "(no message)");
    return EXIT_FAILED;
}

/* Options common to every subcommand; returns 1 if consumed (and *i moved),
 * 0 if not an option we know, -1 on a usage error. */
static int common_opt(cli_t *cli, int argc, char **argv, int *i)
{
    if (!strcmp(argv[*i], "--broker")) {
        if (*i + 1 >= argc)
            return -1;
        cli->broker = argv[++*i];
        return 1;
    }
    return 0;
}

/* ---- submit ------------------------------------------------------------ */

static int wait_and_print(const cli_t *cli, taskq_client_t *c, const taskq_id_t *id,
                          int64_t timeout_ms, bool as_record);

static int cmd_submit(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq submit NAME [ARGS_JSON] [--wait] [--timeout S] [--time-limit S]\n"
        "                    [--max-attempts N] [--json] [--broker EP]\n"
        "Submits one task and prints its id. ARGS_JSON is a JSON array of arguments or\n"
        "a single JSON value (sent as that value). --wait waits for the task and prints\n"
        "its result as JSON (with --json: the whole record). --timeout bounds the wait\n"
        "(default: forever); --time-limit is the task's hard limit on the worker.\n";
    const char *name = NULL, *args_text = NULL;
    bool wait = false, as_json = false;
    int64_t wait_ms = -1, limit_ms = 0;
    uint32_t max_attempts = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("submit ", "missing value for %s", a), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--wait")) {
            wait = true;
        } else if (!strcmp(a, "--json")) {
            as_json = true;
        } else if (!strcmp(a, "--timeout") || !strcmp(a, "--time-limit")) {
            int64_t *dst = !strcmp(a, "--timeout") ? &wait_ms : &limit_ms;
            if (i + 1 >= argc || !parse_seconds(argv[i + 1], dst))
                return usage_error("submit ", "%s needs a number of seconds", a), EXIT_USAGE;
            i++;
        } else if (!strcmp(a, "--max-attempts")) {
            if (i + 1 >= argc || !parse_uint(argv[i + 1], &max_attempts))
                return usage_error("submit ", "%s needs a count", a), EXIT_USAGE;
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
    taskq_task_spec_t spec = {.name = name, .args = args, .args_len = args_len,
                              .time_limit_ms = limit_ms, .max_attempts = max_attempts};
    taskq_err_t e = taskq_submit(c, &spec);
    free(args);
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&spec.id, id);
    if (e != TASKQ_OK) {
        if (e == TASKQ_ENAME)
            fprintf(stderr, "taskq: invalid task name '%s' (allowed: [A-Za-z0-9_.:-], 1-128)\n", name);
        rc = e == TASKQ_ENAME ? EXIT_USAGE : fail(cli, e, "submit", id);
    } else if (wait) {
        fprintf(stderr, "submitted %s\n", id);
        rc = wait_and_print(cli, c, &spec.id, wait_ms, as_json);
    } else if (as_json) {
        json_t *o = json_pack("{s:s}", "id", id);
        print_json(o);
        json_decref(o);
    } else {
        puts(id);
    }
    taskq_client_destroy(&c);
    return rc;
}

/* ---- status ------------------------------------------------------------ */

static bool parse_id_arg(const char *cmd, const char *s, taskq_id_t *id)
{
    if (taskq_id_parse(s, id) != TASKQ_OK) {
        usage_error(cmd, "'%s' is not a task id", s);
        return false;
    }
    return true;
}

static void print_task_human(const taskq_task_t *t)
{
    char id[TASKQ_ID_STRLEN + 1], b1[40];
    taskq_id_format(&t->id, id);
    printf("%-13s %s\n", "id:", id);
    printf("%-13s %s\n", "name:", t->name);
    printf("%-13s %s\n", "state:", taskq_state_name(t->state));
    printf("%-13s %u/%u\n", "attempts:", t->attempts, t->max_attempts);
    if (t->progress_total > 0)
        printf("%-13s %llu/%llu (%.0f%%) %s\n", "progress:",
               (unsigned long long)t->progress_current, (unsigned long long)t->progress_total,
               100.0 * (double)t->progress_current / (double)t->progress_total, t->progress_message);
    else if (t->progress_current > 0 || t->progress_message[0])
        printf("%-13s %llu %s\n", "progress:", (unsigned long long)t->progress_current,
               t->progress_message);
    else
        printf("%-13s -\n", "progress:");
    if (t->state == TASKQ_STATE_SUCCEEDED) {
        json_t *r = result_json(t);
        char *s = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%-13s %s\n", "result:", s ? s : "?");
        free(s);
        json_decref(r);
    }
    if (t->state == TASKQ_STATE_FAILED)
        printf("%-13s %s\n", "error:", t->error);
    printf("%-13s %s\n", "worker:", t->worker[0] ? t->worker : "-");
    printf("%-13s %d\n", "child_pid:", (int)t->child_pid);
    printf("%-13s %s\n", "submitted_at:", t->submitted_at ? iso_time(t->submitted_at, b1, sizeof b1) : "-");
    printf("%-13s %s\n", "started_at:", t->started_at ? iso_time(t->started_at, b1, sizeof b1) : "-");
    printf("%-13s %s\n", "finished_at:", t->finished_at ? iso_time(t->finished_at, b1, sizeof b1) : "-");
}

static int cmd_status(cli_t *cli, int argc, char **argv)
{
    static const char *help = "usage: taskq status ID [--json] [--broker EP]\n"
                              "Prints a task's record: aligned key: value lines, or one JSON object\n"
                              "with --json (id, name, state, attempts, max_attempts, progress{current,\n"
                              "total,message}, result, error, worker, child_pid, submitted_at,\n"
                              "started_at, finished_at).\n";
    const char *ids = NULL;
    bool as_json = false;
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
    taskq_err_t e = taskq_status(c, &id, &t);
    if (e != TASKQ_OK) {
        rc = fail(cli, e, "status", ids);
    } else if (as_json) {
        json_t *o = task_json(t);
        print_json(o);
        json_decref(o);
    } else {
        print_task_human(t);
    }
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

/* Parses the options of a command that takes only --json (and the common
 * ones). Returns -1 to go on, else the exit code to return at once. */
static int parse_json_only(cli_t *cli, int argc, char **argv, const char *what,
                           const char *help, bool *as_json)
{
    *as_json = false;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error(what, "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(argv[i], "--json"))
            *as_json = true;
        else
            return usage_error(what, "unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    return -1;
}

static int cmd_workers(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq workers [--json] [--broker EP]\n"
        "Lists live worker nodes and their child processes. JSON: a list of nodes\n"
        "{id, host, pid, slots, last_heartbeat, children[{pid, state, task_id,\n"
        "task_name, running_s, done, failed, rss_kb}]}.\n";
    bool as_json;
    int prc = parse_json_only(cli, argc, argv, "workers ", help, &as_json);
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
        "Tasks by state, totals, nodes and children, broker uptime. JSON fields:\n"
        "queued, running, succeeded, failed, total, submitted, nodes, children,\n"
        "uptime_s, broker.\n";
    bool as_json;
    int prc = parse_json_only(cli, argc, argv, "stats ", help, &as_json);
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
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:s}", "queued",
                              (json_int_t)s.queued, "running", (json_int_t)s.running, "succeeded",
                              (json_int_t)s.succeeded, "failed", (json_int_t)s.failed, "total",
                              (json_int_t)s.total, "submitted", (json_int_t)s.submitted, "nodes",
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
};

static void print_help(FILE *f)
{
    fprintf(f, "usage: taskq [--broker EP] COMMAND [ARGS] [--help]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\noptions:\n  --broker EP  broker endpoint list (else $TASKQ_BROKER, else %s)\n"
               "  --help       this text; 'taskq COMMAND --help' for a command\n\nexit codes:\n",
            TASKQ_DEFAULT_BROKER);
    for (size_t i = 0; i < sizeof exit_codes / sizeof exit_codes[0]; i++)
        fprintf(f, "  %d  %s\n", exit_codes[i].code, exit_codes[i].meaning);
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
