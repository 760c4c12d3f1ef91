/* cmd_limit.c - `taskq limit set|list|rm`: global rate and concurrency
 * limits on "task:NAME" or "queue:Q". */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parse.h"
#include "render.h"

static bool check_key(const char *cmd, const char *key)
{
    if (limit_key_ok(key))
        return true;
    usage_error(cmd, "invalid limit key '%s' (task:NAME or queue:Q)", key);
    return false;
}

static int limit_set(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq limit set KEY [--rate N/s|N/m|N/h] [--burst N] [--max-running N]\n"
        "                       [--broker EP]\n"
        "Sets (replaces) the limit on KEY: task:NAME (every task of that name) or\n"
        "queue:Q (every task of that queue), enforced by the broker at dispatch, so\n"
        "it holds across all workers. A task held back stays queued, spends no\n"
        "attempt and does not delay other keys.\n"
        "  --rate R         token bucket: R dispatches per second (\"10/s\", \"600/m\",\n"
        "                   \"5/h\"; a bare number is per second); retries count\n"
        "  --burst N        bucket size (default max(1, ceil(rate per second)))\n"
        "  --max-running N  at most N tasks of KEY running at once anywhere\n"
        "Options not given are off (0).\n";
    const char *key = NULL;
    taskq_limit_t l;
    memset(&l, 0, sizeof l);
    bool any = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("limit set ", "missing value for %s", a), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(a, "--rate") || !strcmp(a, "--burst") || !strcmp(a, "--max-running")) {
            if (i + 1 >= argc)
                return usage_error("limit set ", "missing value for %s", a), EXIT_USAGE;
            const char *v = argv[++i];
            bool ok = !strcmp(a, "--rate")    ? parse_rate(v, &l.rate)
                      : !strcmp(a, "--burst") ? parse_uint(v, &l.burst)
                                              : parse_uint(v, &l.max_running);
            if (!ok)
                return usage_error("limit set ", "%s: invalid value '%s'%s", a, v,
                                   !strcmp(a, "--rate") ? " (e.g. 10/s, 600/m, 5/h, 2.5)" : ""),
                       EXIT_USAGE;
            any = true;
        } else if (a[0] == '-' && a[1] == '-') {
            return usage_error("limit set ", "unknown option %s", a), EXIT_USAGE;
        } else if (!key) {
            key = a;
        } else {
            return usage_error("limit set ", "unexpected argument '%s'", a), EXIT_USAGE;
        }
    }
    if (!key)
        return usage_error("limit set ", "missing KEY (task:NAME or queue:Q)"), EXIT_USAGE;
    if (!check_key("limit set ", key))
        return EXIT_USAGE;
    if (!any)
        return usage_error("limit set ", "nothing to set (--rate, --burst, --max-running)"),
               EXIT_USAGE;
    l.key = key;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_err_t e = taskq_limit_set(c, &l);
    if (e != TASKQ_OK)
        rc = fail_on(cli, c, e, "limit set", "limit", key);
    taskq_client_destroy(&c);
    return rc;
}

static int limit_list(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq limit list [--json] [--broker EP]\n"
        "Lists every limit: KEY RATE BURST MAX_RUNNING RUNNING TOKENS PAUSED_UNTIL\n"
        "(RUNNING: live leases of the key; TOKENS: the bucket now; PAUSED_UNTIL: a\n"
        "task reported rate limiting, taskq_rate_limited). --json: a list of {key,\n"
        "rate (per second), burst, max_running, running, tokens, paused_until}.\n";
    bool as_json;
    int prc = parse_simple(cli, argc, argv, "limit list ", help, &as_json, NULL, 0);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_limits_t *ls = NULL;
    taskq_err_t e = taskq_limits(c, &ls);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "limit list", "limit", "?");
    } else if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < taskq_limits_count(ls); i++)
            json_array_append_new(arr, limit_json(taskq_limits_get(ls, i)));
        print_json_flags(arr, JSON_REAL_PRECISION(15));
        json_decref(arr);
    } else {
        print_limit_header(stdout);
        for (size_t i = 0; i < taskq_limits_count(ls); i++)
            print_limit_row(stdout, taskq_limits_get(ls, i));
    }
    taskq_limits_destroy(&ls);
    taskq_client_destroy(&c);
    return rc;
}

static int limit_rm(cli_t *cli, int argc, char **argv)
{
    static const char *help = "usage: taskq limit rm KEY [--broker EP]\n"
                              "Removes the limit on KEY (exit 5 if there is none).\n";
    const char *key = NULL;
    int prc = parse_simple(cli, argc, argv, "limit rm ", help, NULL, &key, 1);
    if (prc >= 0)
        return prc;
    if (!check_key("limit rm ", key))
        return EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_err_t e = taskq_limit_rm(c, key);
    if (e != TASKQ_OK)
        rc = fail_on(cli, c, e, "limit rm", "limit", key);
    taskq_client_destroy(&c);
    return rc;
}

int cmd_limit(cli_t *cli, int argc, char **argv)
{
    static const subcmd_t subs[] = {
        {"set", limit_set, "set KEY [--rate N/s|N/m|N/h] [--burst N] [--max-running N]"},
        {"list", limit_list, "list [--json]"},
        {"rm", limit_rm, "rm KEY"},
    };
    return run_subcommand(cli, argc, argv, "limit ",
                          "KEY is task:NAME or queue:Q. 'taskq limit VERB --help' for each.\n",
                          subs, sizeof subs / sizeof subs[0]);
}
