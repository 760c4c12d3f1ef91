/* cmd_queue.c - `taskq queues` and `taskq queue pause|resume|set`. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "parse.h"
#include "render.h"

static bool check_queue(const char *cmd, const char *q)
{
    if (queue_name_ok(q))
        return true;
    usage_error(cmd, "invalid queue name '%s' (allowed: [a-z0-9_.-], 1-64)", q);
    return false;
}

/* The "queue:Q" limit in ls, or NULL. */
static const taskq_limit_t *queue_limit(const taskq_limits_t *ls, const char *queue)
{
    for (size_t i = 0; i < taskq_limits_count(ls); i++) {
        const taskq_limit_t *l = taskq_limits_get(ls, i);
        if (!strncmp(l->key, "queue:", 6) && !strcmp(l->key + 6, queue))
            return l;
    }
    return NULL;
}

int cmd_queues(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq queues [--json] [--broker EP]\n"
        "Lists every queue: a table of QUEUE PAUSED MAX_PENDING SCHEDULED QUEUED\n"
        "RUNNING RETRYING SUCCEEDED FAILED EXPIRED OLDEST SLOTS (OLDEST: age of the\n"
        "oldest queued task; SLOTS: child slots of live workers subscribed to it).\n"
        "--json prints one JSON list of {name, paused, max_pending (null = none),\n"
        "counts {one per state}, oldest_queued_s, slots, limit (the queue:Q limit,\n"
        "as in 'taskq limit list --json', or null)}.\n";
    bool as_json;
    int prc = parse_simple(cli, argc, argv, "queues ", help, &as_json, NULL, 0);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_queues_t *qs = NULL;
    taskq_limits_t *ls = NULL;
    taskq_err_t e = taskq_queues(c, &qs);
    if (e == TASKQ_OK && as_json)
        e = taskq_limits(c, &ls);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "queues", "queue", "?");
    } else if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < taskq_queues_count(qs); i++) {
            const taskq_queue_info_t *q = taskq_queues_get(qs, i);
            json_array_append_new(arr, queue_json(q, queue_limit(ls, q->name)));
        }
        print_json_flags(arr, JSON_REAL_PRECISION(15));
        json_decref(arr);
    } else {
        print_queue_header(stdout);
        for (size_t i = 0; i < taskq_queues_count(qs); i++)
            print_queue_row(stdout, taskq_queues_get(qs, i));
    }
    taskq_limits_destroy(&ls);
    taskq_queues_destroy(&qs);
    taskq_client_destroy(&c);
    return rc;
}

static int queue_pause_resume(cli_t *cli, int argc, char **argv, bool pause)
{
    const char *cmd = pause ? "queue pause " : "queue resume ";
    static const char *help_pause =
        "usage: taskq queue pause Q [--broker EP]\n"
        "Stops dispatching from queue Q (it is created if unknown). Queued tasks stay\n"
        "queued and submits are still accepted; running tasks finish.\n";
    static const char *help_resume = "usage: taskq queue resume Q [--broker EP]\n"
                                     "Dispatches from queue Q again.\n";
    const char *q = NULL;
    int prc = parse_simple(cli, argc, argv, cmd, pause ? help_pause : help_resume, NULL, &q, 1);
    if (prc >= 0)
        return prc;
    if (!check_queue(cmd, q))
        return EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_err_t e = taskq_queue_pause(c, q, pause);
    if (e != TASKQ_OK)
        rc = fail_on(cli, c, e, pause ? "queue pause" : "queue resume", "queue", q);
    taskq_client_destroy(&c);
    return rc;
}

static int queue_pause(cli_t *cli, int argc, char **argv)
{
    return queue_pause_resume(cli, argc, argv, true);
}

static int queue_resume(cli_t *cli, int argc, char **argv)
{
    return queue_pause_resume(cli, argc, argv, false);
}

static int queue_set(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq queue set Q --max-pending N [--broker EP]\n"
        "Bounds queue Q (created if unknown): a submit that would make it hold more\n"
        "than N unfinished tasks is refused BUSY (exit 7), whole batches at once;\n"
        "past 80 % the acknowledgement asks producers to slow down. 0 = no bound\n"
        "(the broker-wide --max-pending still applies).\n";
    const char *q = NULL;
    uint64_t max_pending = 0;
    bool have = false;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("queue set ", "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(argv[i], "--max-pending")) {
            if (i + 1 >= argc || !parse_uint_max(argv[i + 1], UINT64_MAX >> 1, &max_pending))
                return usage_error("queue set ", "--max-pending needs a count"), EXIT_USAGE;
            have = true;
            i++;
        } else if (argv[i][0] == '-' || q) {
            return usage_error("queue set ", "unexpected argument '%s'", argv[i]), EXIT_USAGE;
        } else {
            q = argv[i];
        }
    }
    if (!q)
        return usage_error("queue set ", "missing queue name"), EXIT_USAGE;
    if (!have)
        return usage_error("queue set ", "nothing to set (--max-pending N)"), EXIT_USAGE;
    if (!check_queue("queue set ", q))
        return EXIT_USAGE;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_err_t e = taskq_queue_set_max_pending(c, q, max_pending);
    if (e != TASKQ_OK)
        rc = fail_on(cli, c, e, "queue set", "queue", q);
    taskq_client_destroy(&c);
    return rc;
}

int cmd_queue(cli_t *cli, int argc, char **argv)
{
    static const subcmd_t subs[] = {
        {"pause", queue_pause, "pause Q"},
        {"resume", queue_resume, "resume Q"},
        {"set", queue_set, "set Q --max-pending N"},
    };
    return run_subcommand(cli, argc, argv, "queue ",
                          "Pauses, resumes or bounds a queue; 'taskq queues' lists them.\n"
                          "'taskq queue VERB --help' for each.\n",
                          subs, sizeof subs / sizeof subs[0]);
}
