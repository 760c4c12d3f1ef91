/* cmd_schedule.c - `taskq schedule add|list|pause|resume|rm|run-now`:
 * periodic schedules kept and fired by the broker. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "parse.h"
#include "render.h"

static int schedule_add(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq schedule add NAME --cron EXPR --task T [--args JSON] [--queue Q]\n"
        "                          [--priority P] [--tz ZONE] [--overlap skip|allow]\n"
        "                          [--catchup none|last|all] [--max-attempts N]\n"
        "                          [--broker EP]\n"
        "Adds a periodic schedule; the broker fires it (one task per nominal fire time,\n"
        "never doubled or lost across a broker crash) and prints the next fire time.\n"
        "  --cron EXPR       five fields 'MIN HOUR DOM MON DOW' with lists, ranges,\n"
        "                    steps and names, @hourly/@daily/@weekly/@monthly/@yearly,\n"
        "                    or '@every 30s' (see docs/tasks.md)\n"
        "  --task T          the task name; --args JSON its arguments (default [])\n"
        "  --queue Q         its queue (default: the broker's routes); --priority P 0-9,\n"
        "                    default 5, 9 runs first\n"
        "  --tz ZONE         IANA time zone of the expression (default UTC)\n"
        "  --overlap O       skip (default): a fire while the previous task is\n"
        "                    unfinished is recorded as skipped; allow: run anyway\n"
        "  --catchup C       fires missed while the broker was down: none, last\n"
        "                    (default: run one), all\n"
        "  --max-attempts N  attempts of each fired task (default: the task's)\n"
        "A bad expression or zone is refused with the broker's message (exit 2);\n"
        "an existing NAME is refused (exit 6).\n";
    taskq_schedule_t s;
    memset(&s, 0, sizeof s);
    const char *args_text = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error("schedule add ", "missing value for %s", a), EXIT_USAGE;
        if (c > 0)
            continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (a[0] == '-' && a[1] == '-') {
            if (i + 1 >= argc)
                return usage_error("schedule add ", "missing value for %s", a), EXIT_USAGE;
            const char *v = argv[++i];
            bool ok = true;
            if (!strcmp(a, "--cron"))
                s.cron = v;
            else if (!strcmp(a, "--task"))
                s.task = v;
            else if (!strcmp(a, "--args"))
                args_text = v;
            else if (!strcmp(a, "--queue"))
                ok = queue_name_ok(s.queue = v);
            else if (!strcmp(a, "--priority"))
                ok = parse_priority(v, &s.priority), s.has_priority = 1;
            else if (!strcmp(a, "--tz"))
                s.tz = v;
            else if (!strcmp(a, "--overlap"))
                ok = !strcmp(s.overlap = v, "skip") || !strcmp(v, "allow");
            else if (!strcmp(a, "--catchup"))
                ok = !strcmp(s.catchup = v, "none") || !strcmp(v, "last") || !strcmp(v, "all");
            else if (!strcmp(a, "--max-attempts"))
                ok = parse_uint(v, &s.max_attempts) && s.max_attempts <= 100;
            else
                return usage_error("schedule add ", "unknown option %s", a), EXIT_USAGE;
            if (!ok)
                return usage_error("schedule add ", "%s: invalid value '%s'", a, v), EXIT_USAGE;
        } else if (!s.name) {
            s.name = a;
        } else {
            return usage_error("schedule add ", "unexpected argument '%s'", a), EXIT_USAGE;
        }
    }
    if (!s.name)
        return usage_error("schedule add ", "missing schedule NAME"), EXIT_USAGE;
    if (!s.cron || !s.task)
        return usage_error("schedule add ", "--cron and --task are required"), EXIT_USAGE;
    void *args = NULL;
    size_t args_len = 0;
    if (args_text) {
        char err[200];
        taskq_err_t e = json_text_to_msgpack(args_text, &args, &args_len, err, sizeof err);
        if (e == TASKQ_EINVAL)
            return usage_error("schedule add ", "--args: %s", err), EXIT_USAGE;
        if (e != TASKQ_OK)
            return fail(cli, e, "schedule add", NULL);
    }
    s.args = args;
    s.args_len = args_len;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK) {
        free(args);
        return rc;
    }
    taskq_err_t e = taskq_schedule_add(c, &s);
    free(args);
    if (e == TASKQ_EEXIST) {
        fprintf(stderr, "taskq: schedule add: a schedule named '%s' already exists\n", s.name);
        rc = exit_for(e);
    } else if (e == TASKQ_ENAME && !taskq_client_last_error(c)[0]) {
        fprintf(stderr, "taskq: schedule add: invalid schedule or task name (allowed: "
                        "[A-Za-z0-9_.:-], 1-128)\n");
        rc = EXIT_USAGE;
    } else if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "schedule add", "schedule", s.name);
    } else {
        /* the next fire time confirms what the expression means */
        taskq_schedules_t *all = NULL;
        if (taskq_schedules(c, &all) == TASKQ_OK) {
            for (size_t i = 0; i < taskq_schedules_count(all); i++) {
                const taskq_schedule_t *x = taskq_schedules_get(all, i);
                char b[40];
                if (!strcmp(x->name, s.name) && x->next_at > 0)
                    printf("%s: next fire at %s\n", x->name, iso_time(x->next_at, b, sizeof b));
            }
        }
        taskq_schedules_destroy(&all);
    }
    taskq_client_destroy(&c);
    return rc;
}

static int schedule_list(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq schedule list [--json] [--broker EP]\n"
        "Lists every schedule: NAME CRON TZ TASK QUEUE PRIO PAUSED NEXT LAST FIRES\n"
        "SKIPPED (NEXT / LAST: nominal fire times, UTC). --json: a list of {name,\n"
        "cron, tz, task, args, queue, priority, overlap, catchup, max_attempts, paused,\n"
        "next_at, last_fire_at, last_task_id, fires, skipped}.\n";
    bool as_json;
    int prc = parse_simple(cli, argc, argv, "schedule list ", help, &as_json, NULL, 0);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_schedules_t *all = NULL;
    taskq_err_t e = taskq_schedules(c, &all);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "schedule list", "schedule", "?");
    } else if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < taskq_schedules_count(all); i++)
            json_array_append_new(arr, schedule_json(taskq_schedules_get(all, i)));
        print_json(arr);
        json_decref(arr);
    } else {
        print_schedule_header(stdout);
        for (size_t i = 0; i < taskq_schedules_count(all); i++)
            print_schedule_row(stdout, taskq_schedules_get(all, i));
    }
    taskq_schedules_destroy(&all);
    taskq_client_destroy(&c);
    return rc;
}

/* pause / resume / rm / run-now NAME */
static int schedule_name_cmd(cli_t *cli, int argc, char **argv, const char *verb,
                             const char *help)
{
    char cmd[32];
    snprintf(cmd, sizeof cmd, "schedule %s ", verb);
    const char *name = NULL;
    int prc = parse_simple(cli, argc, argv, cmd, help, NULL, &name, 1);
    if (prc >= 0)
        return prc;
    taskq_client_t *c = NULL;
    int rc = connect_broker(cli, &c);
    if (rc != EXIT_OK)
        return rc;
    taskq_err_t e;
    taskq_id_t id;
    if (!strcmp(verb, "run-now"))
        e = taskq_schedule_run_now(c, name, &id);
    else
        e = taskq_schedule_ctl(c, name, verb);
    char what[40];
    snprintf(what, sizeof what, "schedule %s", verb);
    if (e == TASKQ_ENAME && !taskq_client_last_error(c)[0]) {
        usage_error(cmd, "invalid schedule name '%s' (allowed: [A-Za-z0-9_.:-], 1-128)", name);
        rc = EXIT_USAGE;
    } else if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, what, "schedule", name);
    } else if (!strcmp(verb, "run-now")) {
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&id, ids);
        puts(ids);
    }
    taskq_client_destroy(&c);
    return rc;
}

static int schedule_pause(cli_t *cli, int argc, char **argv)
{
    return schedule_name_cmd(cli, argc, argv, "pause",
                             "usage: taskq schedule pause NAME [--broker EP]\n"
                             "Stops firing NAME until 'taskq schedule resume NAME'.\n");
}

static int schedule_resume(cli_t *cli, int argc, char **argv)
{
    return schedule_name_cmd(cli, argc, argv, "resume",
                             "usage: taskq schedule resume NAME [--broker EP]\n"
                             "Resumes firing a paused schedule.\n");
}

static int schedule_rm(cli_t *cli, int argc, char **argv)
{
    return schedule_name_cmd(cli, argc, argv, "rm",
                             "usage: taskq schedule rm NAME [--broker EP]\n"
                             "Deletes NAME; tasks it already fired are kept.\n");
}

static int schedule_run_now(cli_t *cli, int argc, char **argv)
{
    return schedule_name_cmd(cli, argc, argv, "run-now",
                             "usage: taskq schedule run-now NAME [--broker EP]\n"
                             "Fires NAME once now (not counted as a nominal fire) and prints the\n"
                             "task id.\n");
}

int cmd_schedule(cli_t *cli, int argc, char **argv)
{
    static const subcmd_t subs[] = {
        {"add", schedule_add,
         "add NAME --cron EXPR --task T [--args JSON] [--queue Q] [--priority P]\n"
         "                     [--tz ZONE] [--overlap skip|allow] [--catchup none|last|all]\n"
         "                     [--max-attempts N]"},
        {"list", schedule_list, "list [--json]"},
        {"pause", schedule_pause, "pause NAME"},
        {"resume", schedule_resume, "resume NAME"},
        {"rm", schedule_rm, "rm NAME"},
        {"run-now", schedule_run_now, "run-now NAME"},
    };
    return run_subcommand(cli, argc, argv, "schedule ",
                          "Periodic schedules live in the broker. 'taskq schedule VERB --help'\n"
                          "for each.\n",
                          subs, sizeof subs / sizeof subs[0]);
}
