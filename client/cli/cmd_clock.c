/* cmd_clock.c - `taskq clock advance|set`: drive the broker's test clock
 * (a broker started with --test-clock). */
#include <string.h>

#include "cli.h"
#include "parse.h"

static int clock_cmd(cli_t *cli, int argc, char **argv, bool set)
{
    const char *cmd = set ? "clock set " : "clock advance ";
    static const char *help_advance =
        "usage: taskq clock advance MS [--broker EP]\n"
        "Moves the broker's test clock forward by MS milliseconds and prints the new\n"
        "broker time (unix ms). Only for a broker started with --test-clock.\n";
    static const char *help_set =
        "usage: taskq clock set MS [--broker EP]\n"
        "Sets the broker's test clock to MS (unix ms) and prints it. Only for a\n"
        "broker started with --test-clock.\n";
    const char *v = NULL;
    int prc = parse_simple(cli, argc, argv, cmd, set ? help_set : help_advance, NULL, &v, 1);
    if (prc >= 0)
        return prc;
    uint64_t ms;
    if (!parse_uint_max(v, (uint64_t)INT64_MAX, &ms) || (set && ms == 0))
        return usage_error(cmd, "'%s' is not a number of milliseconds", v), EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    int64_t now = 0;
    taskq_err_t e = set ? taskq_test_clock(c, 0, (int64_t)ms, &now)
                        : taskq_test_clock(c, (int64_t)ms, 0, &now);
    if (e != TASKQ_OK)
        rc = fail_on(cli, c, e, set ? "clock set" : "clock advance", "clock", "");
    else
        printf("%lld\n", (long long)now);
    taskq_client_destroy(&c);
    return rc;
}

static int clock_advance(cli_t *cli, int argc, char **argv)
{
    return clock_cmd(cli, argc, argv, false);
}

static int clock_set(cli_t *cli, int argc, char **argv)
{
    return clock_cmd(cli, argc, argv, true);
}

int cmd_clock(cli_t *cli, int argc, char **argv)
{
    static const subcmd_t subs[] = {
        {"advance", clock_advance, "advance MS"},
        {"set", clock_set, "set MS"},
    };
    return run_subcommand(cli, argc, argv, "clock ",
                          "The broker's test clock (--test-clock): ETAs, backoff, expiry, cron and\n"
                          "rate buckets run on it. Prints the new broker time in unix ms.\n",
                          subs, sizeof subs / sizeof subs[0]);
}
