/* util.c - the helpers every `taskq` command shares (see cli.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

char g_endpoint[256];

static const struct {
    int code;
    const char *meaning;
} exit_codes[] = {
    {EXIT_OK, "success"},
    {EXIT_FAILED, "the task failed, expired or was revoked (error on stderr)"},
    {EXIT_USAGE, "bad usage"},
    {EXIT_TIMEOUT, "timed out"},
    {EXIT_UNREACH, "cannot reach the broker"},
    {EXIT_NOTFOUND, "not found (task, group, queue, limit or schedule), or purged"},
    {EXIT_OTHER, "other error (e.g. revoke of a task that already ended)"},
    {EXIT_BUSY, "busy: refused by backpressure (the queue is full)"},
};

void print_exit_codes(FILE *f)
{
    for (size_t i = 0; i < sizeof exit_codes / sizeof exit_codes[0]; i++)
        fprintf(f, "  %d  %s\n", exit_codes[i].code, exit_codes[i].meaning);
}

int exit_for(taskq_err_t e)
{
    switch (e) {
    case TASKQ_OK: return EXIT_OK;
    case TASKQ_EINVAL:
    case TASKQ_ENAME:
    case TASKQ_ETOOBIG: return EXIT_USAGE;
    case TASKQ_ETIMEDOUT: return EXIT_TIMEOUT;
    case TASKQ_EUNREACH: return EXIT_UNREACH;
    case TASKQ_ENOTFOUND:
    case TASKQ_EPURGED:
    case TASKQ_ENOQUEUE: return EXIT_NOTFOUND;
    case TASKQ_EBUSY: return EXIT_BUSY;
    default: return EXIT_OTHER;
    }
}

void usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "taskq: %.*s%s%s (see 'taskq %s--help')\n", cmd ? (int)strlen(cmd) - 1 : 0,
            cmd ? cmd : "", cmd ? ": " : "", msg, cmd ? cmd : "");
}

int fail(const cli_t *cli, taskq_err_t e, const char *what, const char *id)
{
    return fail_on(cli, NULL, e, what, "task", id);
}

int fail_on(const cli_t *cli, const taskq_client_t *c, taskq_err_t e, const char *what,
            const char *noun, const char *name)
{
    double s = (double)cli->timeout_ms / 1000.0;
    const char *msg = c ? taskq_client_last_error(c) : "";
    switch (e) {
    case TASKQ_EUNREACH:
        fprintf(stderr, "taskq: cannot reach the broker at %s (timed out after %.1f s)\n",
                g_endpoint, s);
        break;
    case TASKQ_ETIMEDOUT:
        fprintf(stderr, "taskq: %s: timed out (broker %s)\n", what, g_endpoint);
        break;
    case TASKQ_ENOTFOUND:
        fprintf(stderr, "taskq: no such %s: %s\n", noun ? noun : "task", name ? name : "?");
        break;
    case TASKQ_EPURGED:
        fprintf(stderr, "taskq: %s %s was purged (it ended and its record was deleted after its "
                        "retention time)\n", noun ? noun : "task", name ? name : "?");
        break;
    case TASKQ_EBUSY: {
        taskq_busy_info_t b = {{0}, 0, 0, 0};
        if (c)
            taskq_client_last_busy(c, &b);
        if (b.limit == 0 && !b.queue[0]) {
            fprintf(stderr, "taskq: %s: %s\n", what, msg[0] ? msg : taskq_strerror(e));
            break;
        }
        char where[96];
        if (b.queue[0])
            snprintf(where, sizeof where, "queue %s is", b.queue);
        else
            snprintf(where, sizeof where, "the broker is");
        fprintf(stderr, "taskq: %s full (depth %llu, limit %llu): retry after %lld ms\n", where,
                (unsigned long long)b.depth, (unsigned long long)b.limit,
                (long long)b.retry_after_ms);
        break;
    }
    default:
        if (msg[0])
            fprintf(stderr, "taskq: %s: %s (%s)\n", what, msg, taskq_err_name(e));
        else
            fprintf(stderr, "taskq: %s: %s (%s)\n", what, taskq_strerror(e), taskq_err_name(e));
    }
    return exit_for(e);
}

int connect_broker(const cli_t *cli, taskq_client_t **out)
{
    taskq_err_t e;
    *out = taskq_client_new(cli->broker, &e);
    if (!*out)
        return fail(cli, e, "connect", NULL);
    taskq_client_set_timeout(*out, cli->timeout_ms);
    return EXIT_OK;
}

int common_opt(cli_t *cli, int argc, char **argv, int *i)
{
    if (!strcmp(argv[*i], "--broker")) {
        if (*i + 1 >= argc)
            return -1;
        cli->broker = argv[++*i];
        return 1;
    }
    return 0;
}

int parse_simple(cli_t *cli, int argc, char **argv, const char *what, const char *help,
                 bool *as_json, const char **pos, int npos)
{
    int got = 0;
    if (as_json)
        *as_json = false;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error(what, "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (as_json && !strcmp(argv[i], "--json"))
            *as_json = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return usage_error(what, "unknown option %s", argv[i]), EXIT_USAGE;
        else if (got < npos)
            pos[got++] = argv[i];
        else
            return usage_error(what, "unexpected argument '%s'", argv[i]), EXIT_USAGE;
    }
    if (got < npos)
        return usage_error(what, "missing argument (see the usage line)"), EXIT_USAGE;
    return -1;
}

bool parse_id_arg(const char *cmd, const char *s, taskq_id_t *id)
{
    if (taskq_id_parse(s, id) != TASKQ_OK) {
        usage_error(cmd, "'%s' is not a task id", s);
        return false;
    }
    return true;
}

void print_json_flags(json_t *j, size_t extra)
{
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | extra);
    if (s)
        puts(s);
    free(s);
}

void print_json(json_t *j)
{
    print_json_flags(j, 0);
}

int run_subcommand(cli_t *cli, int argc, char **argv, const char *cmd, const char *intro,
                   const subcmd_t *subs, size_t nsubs)
{
    bool help = argc == 0 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h");
    if (!help) {
        for (size_t k = 0; k < nsubs; k++)
            if (!strcmp(argv[0], subs[k].name))
                return subs[k].fn(cli, argc - 1, argv + 1);
    }
    FILE *f = help && argc > 0 ? stdout : stderr;
    if (!help)
        usage_error(cmd, "unknown subcommand '%s'", argv[0]);
    else {
        fprintf(f, "usage:\n");
        for (size_t k = 0; k < nsubs; k++)
            fprintf(f, "  taskq %s%s\n", cmd, subs[k].usage);
        fputs(intro, f);
    }
    return help && argc > 0 ? EXIT_OK : EXIT_USAGE;
}
