/* cmd_life.c - the end of a task's life: `taskq revoke`, `taskq failed` (the
 * dead-letter set), `taskq rerun`, `taskq purge` (docs/tasks.md, "Revoke and
 * cancel" and "Retention, dead letters, re-run"). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "parse.h"
#include "render.h"
#include "tclock.h"
#include "tqlimits.h"

/* The options with a value that these commands take; NULL = not given. */
typedef struct {
    const char *group, *queue, *name, *state, *code, *since, *limit, *grace, *reason,
        *older_than;
} life_opts_t;

/* Parses the options named in `allowed` (by their long name) and the
 * flags --json, --terminate, --all; positionals are task ids into ids.
 * Returns -1 to go on, else the exit code. */
static int parse_life(cli_t *cli, int argc, char **argv, const char *cmd, const char *help,
                      const char *const *allowed, life_opts_t *o, bool *as_json, bool *terminate,
                      bool *all, taskq_id_t *ids, size_t *n)
{
    static const struct {
        const char *opt;
        size_t off;
    } table[] = {
        {"--group", offsetof(life_opts_t, group)},   {"--queue", offsetof(life_opts_t, queue)},
        {"--name", offsetof(life_opts_t, name)},     {"--state", offsetof(life_opts_t, state)},
        {"--code", offsetof(life_opts_t, code)},     {"--since", offsetof(life_opts_t, since)},
        {"--limit", offsetof(life_opts_t, limit)},   {"--grace", offsetof(life_opts_t, grace)},
        {"--reason", offsetof(life_opts_t, reason)},
        {"--older-than", offsetof(life_opts_t, older_than)},
    };
    memset(o, 0, sizeof *o);
    *n = 0;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error(cmd, "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return fputs(help, stdout), EXIT_OK;
        bool ok = false;
        for (size_t k = 0; allowed[k]; k++)
            ok = ok || !strcmp(a, allowed[k]);
        if (ok && !strcmp(a, "--json")) {
            *as_json = true;
            continue;
        }
        if (ok && !strcmp(a, "--terminate")) {
            *terminate = true;
            continue;
        }
        if (ok && !strcmp(a, "--all")) {
            *all = true;
            continue;
        }
        bool done = false;
        for (size_t k = 0; ok && k < sizeof table / sizeof table[0]; k++) {
            if (strcmp(a, table[k].opt) != 0)
                continue;
            if (i + 1 >= argc)
                return usage_error(cmd, "missing value for %s", a), EXIT_USAGE;
            *(const char **)((char *)o + table[k].off) = argv[++i];
            done = true;
        }
        if (done)
            continue;
        if (a[0] == '-' && a[1] == '-')
            return usage_error(cmd, "unknown option %s", a), EXIT_USAGE;
        if (!ids)
            return usage_error(cmd, "unexpected argument '%s'", a), EXIT_USAGE;
        if (!parse_id_arg(cmd, a, &ids[*n]))
            return EXIT_USAGE;
        (*n)++;
    }
    return -1;
}

/* --since TIME into *ms; the exit code. */
static int since_opt(const char *cmd, const char *v, int64_t *ms)
{
    const char *why = NULL;
    if (!parse_since(v, tclock_wall_ms(), ms, &why))
        return usage_error(cmd, "--since '%s': %s", v,
                           why ? why : "expected a time (ISO-8601 with an offset, unix seconds) "
                                       "or a duration ago (90m, 2h, 7d)"),
               EXIT_USAGE;
    return EXIT_OK;
}

/* The filter options of failed / rerun --all; the exit code. */
static int filter_opts(const char *cmd, const life_opts_t *o, taskq_failed_filter_t *f)
{
    memset(f, 0, sizeof *f);
    if (o->queue && !queue_name_ok(o->queue))
        return usage_error(cmd, "--queue '%s': a queue name is [a-z0-9_.-], 1-64 characters",
                           o->queue), EXIT_USAGE;
    if (o->name && !task_name_ok(o->name))
        return usage_error(cmd, "--name '%s': a task name is [A-Za-z0-9_.:-], 1-128", o->name),
               EXIT_USAGE;
    f->queue = o->queue;
    f->name = o->name;
    f->code = o->code;
    if (o->since) {
        int rc = since_opt(cmd, o->since, &f->since_ms);
        if (rc != EXIT_OK)
            return rc;
    }
    if (o->limit) {
        uint32_t l;
        if (!parse_uint(o->limit, &l) || l == 0 || l > 1000)
            return usage_error(cmd, "--limit '%s': expected 1-1000", o->limit), EXIT_USAGE;
        f->limit = l;
    }
    return EXIT_OK;
}

/* ---- revoke ------------------------------------------------------------------ */

int cmd_revoke(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq revoke ID... [--terminate [--grace S]] [--reason TEXT] [--json]\n"
        "       taskq revoke --group GID [--terminate [--grace S]] [--reason TEXT]\n"
        "       taskq revoke --queue Q [--name N] [--state S,...] [--terminate ...]\n"
        "Revokes tasks in one committed change (it survives a broker restart):\n"
        "pending, scheduled, queued and retrying tasks become 'revoked' and never\n"
        "run; a running task's attempt is voided (its late result is rejected) and\n"
        "its worker is told to cancel it (task code sees taskq_cancelled()). A revoked\n"
        "task is never retried; its workflow dependents are revoked too.\n"
        "  --terminate    also kill a running task's child process: SIGTERM, then\n"
        "                 SIGKILL after the grace (default 5 s); the worker forks a\n"
        "                 replacement\n"
        "  --grace S      seconds between SIGTERM and SIGKILL (with --terminate)\n"
        "  --reason TEXT  stored as the task's error (default \"revoked\"; <= 256 bytes)\n"
        "  --group GID    every unfinished member of a group / chord / map, and its\n"
        "                 callback\n"
        "  --queue Q, --name N, --state S,...\n"
        "                 every unfinished task matching all given (states among\n"
        "                 pending, scheduled, queued, retrying, running)\n"
        "Prints \"revoked N, already terminal N, not found N\" (--json: {\"revoked\",\n"
        "\"terminal\", \"not_found\"}). One id that already ended: exit 6 (\"task ID is\n"
        "already STATE\"); an unknown id: exit 5.\n";
    static const char *const allowed[] = {"--json", "--terminate", "--grace", "--reason",
                                          "--group", "--queue", "--name", "--state", NULL};
    taskq_id_t *ids = calloc(argc > 0 ? (size_t)argc : 1, sizeof *ids);
    if (!ids)
        return EXIT_OTHER;
    life_opts_t o;
    bool as_json = false, terminate = false, all = false;
    size_t n = 0;
    taskq_client_t *c = NULL;
    taskq_revoke_opts_t ro;
    memset(&ro, 0, sizeof ro);
    taskq_id_t gid;
    int rc = parse_life(cli, argc, argv, "revoke ", help, allowed, &o, &as_json, &terminate, &all,
                        ids, &n);
    if (rc >= 0)
        goto out;
    rc = EXIT_USAGE;
    bool bulk = o.group || o.queue || o.name;
    if (n > 0 && (bulk || o.state)) {
        usage_error("revoke ", "give ids, or --group / --queue / --name, not both");
        goto out;
    }
    if (n == 0 && !bulk) {
        usage_error("revoke ", "missing task IDs, --group GID or --queue Q");
        goto out;
    }
    if (o.grace && !terminate) {
        usage_error("revoke ", "--grace goes with --terminate");
        goto out;
    }
    if (o.grace && !parse_seconds(o.grace, &ro.grace_ms)) {
        usage_error("revoke ", "--grace needs a number of seconds");
        goto out;
    }
    if (o.reason && (!o.reason[0] || strlen(o.reason) > 256)) {
        usage_error("revoke ", "--reason: 1-256 bytes");
        goto out;
    }
    if (o.group && !parse_id_arg("revoke ", o.group, &gid))
        goto out;
    if (o.queue && !queue_name_ok(o.queue)) {
        usage_error("revoke ", "--queue '%s': a queue name is [a-z0-9_.-], 1-64 characters", o.queue);
        goto out;
    }
    if (o.name && !task_name_ok(o.name)) {
        usage_error("revoke ", "--name '%s': a task name is [A-Za-z0-9_.:-], 1-128", o.name);
        goto out;
    }
    if (o.state) {
        if (!parse_states(o.state, &ro.states)) {
            usage_error("revoke ", "--state '%s': expected state names separated by commas", o.state);
            goto out;
        }
        for (int s = 0; s < TASKQ_NSTATES; s++) {
            if (((ro.states >> s) & 1u) && taskq_state_is_terminal(s)) {
                usage_error("revoke ", "--state %s: a task in that state already ended",
                            taskq_state_name(s));
                goto out;
            }
        }
    }
    ro.terminate = terminate;
    ro.reason = o.reason;
    ro.group = o.group ? &gid : NULL;
    ro.queue = o.queue;
    ro.name = o.name;
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    taskq_revoke_result_t r;
    taskq_err_t e = taskq_revoke(c, ids, n, &ro, &r);
    if (e != TASKQ_OK) {
        char first[TASKQ_ID_STRLEN + 1] = "";
        if (n > 0)
            taskq_id_format(&ids[0], first);
        rc = fail_on(cli, c, e, "revoke", o.group ? "group" : "task", o.group ? o.group : first);
        goto out;
    }
    if (as_json) {
        json_t *j = json_pack("{s:I, s:I, s:I}", "revoked", (json_int_t)r.revoked, "terminal",
                              (json_int_t)r.terminal, "not_found", (json_int_t)r.not_found);
        print_json(j);
        json_decref(j);
    } else {
        printf("revoked %llu, already terminal %llu, not found %llu\n",
               (unsigned long long)r.revoked, (unsigned long long)r.terminal,
               (unsigned long long)r.not_found);
    }
    rc = n > 0 && r.not_found > 0 ? EXIT_NOTFOUND : EXIT_OK;
out:
    taskq_client_destroy(&c);
    free(ids);
    return rc;
}

/* ---- failed ------------------------------------------------------------------ */

int cmd_failed(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq failed [--queue Q] [--name N] [--code C] [--since TIME]\n"
        "                    [--limit N] [--json] [--broker EP]\n"
        "Lists failed tasks (the dead-letter set), newest first: a table ID NAME QUEUE\n"
        "FINISHED ATTEMPTS CODE ERROR, or with --json a list of status objects (as\n"
        "'taskq status --json') each with \"attempt_history\" (as 'status --attempts').\n"
        "Failed records are kept for the broker's --failed-ttl (default 7 days).\n"
        "  --code C      a failure code, or a prefix ending in '*' (http.5*)\n"
        "  --since TIME  finished at or after TIME (ISO-8601 with an offset, unix\n"
        "                seconds) or that long ago (90m, 2h, 7d)\n"
        "  --limit N     at most N tasks (1-1000, default 1000)\n";
    static const char *const allowed[] = {"--json", "--queue", "--name", "--code", "--since",
                                          "--limit", NULL};
    life_opts_t o;
    bool as_json = false, terminate = false, all = false;
    size_t n = 0;
    int rc = parse_life(cli, argc, argv, "failed ", help, allowed, &o, &as_json, &terminate, &all,
                        NULL, &n);
    if (rc >= 0)
        return rc;
    taskq_failed_filter_t f;
    if ((rc = filter_opts("failed ", &o, &f)) != EXIT_OK)
        return rc;
    taskq_client_t *c = NULL;
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        return rc;
    taskq_task_list_t *l = NULL;
    taskq_err_t e = taskq_failed(c, &f, &l);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "failed", "queue", o.queue ? o.queue : "");
    } else if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < taskq_task_list_count(l) && rc == EXIT_OK; i++) {
            const taskq_task_t *t = taskq_task_list_get(l, i);
            json_t *obj = task_json(t);
            /* the history: one ADMIN read per task */
            taskq_attempts_t *at = NULL;
            taskq_err_t ae = taskq_attempts(c, &t->id, &at);
            json_t *h = json_array();
            for (size_t k = 0; ae == TASKQ_OK && k < taskq_attempts_count(at); k++)
                json_array_append_new(h, attempt_json(taskq_attempts_get(at, k)));
            taskq_attempts_destroy(&at);
            if (ae != TASKQ_OK && ae != TASKQ_ENOTFOUND && ae != TASKQ_EPURGED) {
                char id[TASKQ_ID_STRLEN + 1];
                taskq_id_format(&t->id, id);
                rc = fail_on(cli, c, ae, "failed: attempts", "task", id);
            }
            json_object_set_new(obj, "attempt_history", h);
            json_array_append_new(arr, obj);
        }
        if (rc == EXIT_OK)
            print_json_flags(arr, JSON_REAL_PRECISION(15));
        json_decref(arr);
    } else if (taskq_task_list_count(l) == 0) {
        printf("no failed tasks\n");
    } else {
        print_failed_header(stdout);
        for (size_t i = 0; i < taskq_task_list_count(l); i++)
            print_failed_row(stdout, taskq_task_list_get(l, i));
    }
    taskq_task_list_destroy(&l);
    taskq_client_destroy(&c);
    return rc;
}

/* ---- rerun ------------------------------------------------------------------- */

int cmd_rerun(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq rerun ID... [--json] [--broker EP]\n"
        "       taskq rerun --all [--queue Q] [--name N] [--code C] [--since TIME] [--json]\n"
        "Creates a NEW task for each failed one: same name, arguments, queue,\n"
        "priority, time limit and retry policy, a fresh attempt budget, queued at\n"
        "once. The old and new records point at each other (rerun_by / rerun_of);\n"
        "the old one stays failed. Prints the new ids, one per line (with --all: the\n"
        "count; --json: {\"count\", \"ids\"}, ids empty with --all: see each old\n"
        "task's rerun_by). One id that is not failed, or was re-run already: exit 6.\n";
    static const char *const allowed[] = {"--json", "--all", "--queue", "--name", "--code",
                                          "--since", NULL};
    taskq_id_t *ids = calloc(argc > 0 ? (size_t)argc : 1, sizeof *ids);
    taskq_id_t *made = calloc(argc > 0 ? (size_t)argc : 1, sizeof *made);
    taskq_client_t *c = NULL;
    int rc = EXIT_OTHER;
    if (!ids || !made)
        goto out;
    life_opts_t o;
    bool as_json = false, terminate = false, all = false;
    size_t n = 0;
    rc = parse_life(cli, argc, argv, "rerun ", help, allowed, &o, &as_json, &terminate, &all, ids,
                    &n);
    if (rc >= 0)
        goto out;
    rc = EXIT_USAGE;
    bool filters = o.queue || o.name || o.code || o.since;
    if (n > 0 && (all || filters)) {
        usage_error("rerun ", "give ids, or --all with filters, not both");
        goto out;
    }
    if (n == 0 && !all) {
        usage_error("rerun ", filters ? "filters go with --all" : "missing task IDs or --all");
        goto out;
    }
    taskq_failed_filter_t f;
    if ((rc = filter_opts("rerun ", &o, &f)) != EXIT_OK)
        goto out;
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    /* --all: room for every id the broker may make in one call */
    uint64_t count = 0;
    if (n == 0) {
        free(made);
        made = calloc(TQ_REVOKE_MAX, sizeof *made);
        count = made ? TQ_REVOKE_MAX : 0;
    }
    taskq_err_t e = taskq_rerun(c, ids, n, all ? &f : NULL, made, &count);
    if (e != TASKQ_OK) {
        char first[TASKQ_ID_STRLEN + 1] = "";
        if (n > 0)
            taskq_id_format(&ids[0], first);
        rc = fail_on(cli, c, e, "rerun", "task", first);
        goto out;
    }
    size_t cap = n > 0 ? n : TQ_REVOKE_MAX;
    size_t shown = made ? (count < cap ? (size_t)count : cap) : 0;
    if (as_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < shown; i++)
            json_array_append_new(arr, json_id_or_null(&made[i]));
        json_t *j = json_pack("{s:I, s:o}", "count", (json_int_t)count, "ids", arr);
        print_json(j);
        json_decref(j);
    } else if (n == 0) {
        printf("re-ran %llu failed task(s)\n", (unsigned long long)count);
    } else {
        for (size_t i = 0; i < shown; i++) {
            char s[TASKQ_ID_STRLEN + 1];
            taskq_id_format(&made[i], s);
            puts(s);
        }
    }
    rc = EXIT_OK;
out:
    taskq_client_destroy(&c);
    free(ids);
    free(made);
    return rc;
}

/* ---- purge ------------------------------------------------------------------- */

int cmd_purge(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq purge --state S --older-than DURATION [--json] [--broker EP]\n"
        "Deletes the records of tasks in the terminal state S (succeeded, failed,\n"
        "revoked, expired) that ended more than DURATION ago (30, 90m, 12h, 7d).\n"
        "Their ids then answer 'purged'; the count goes to 'taskq stats' (purged).\n"
        "Prints \"purged N\" (--json: {\"purged\"}).\n";
    static const char *const allowed[] = {"--json", "--state", "--older-than", NULL};
    life_opts_t o;
    bool as_json = false, terminate = false, all = false;
    size_t n = 0;
    int rc = parse_life(cli, argc, argv, "purge ", help, allowed, &o, &as_json, &terminate, &all,
                        NULL, &n);
    if (rc >= 0)
        return rc;
    if (!o.state || !o.older_than)
        return usage_error("purge ", "--state and --older-than are required"), EXIT_USAGE;
    int st = taskq_state_from_name(o.state);
    if (st < 0 || !taskq_state_is_terminal(st))
        return usage_error("purge ", "--state '%s': expected succeeded, failed, revoked or expired",
                           o.state),
               EXIT_USAGE;
    int64_t ms;
    if (!parse_duration_ms(o.older_than, &ms))
        return usage_error("purge ", "--older-than '%s': expected a duration (30, 90m, 12h, 7d)",
                           o.older_than),
               EXIT_USAGE;
    taskq_client_t *c = NULL;
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        return rc;
    uint64_t purged = 0;
    taskq_err_t e = taskq_purge(c, st, ms, &purged);
    if (e != TASKQ_OK) {
        rc = fail_on(cli, c, e, "purge", "state", o.state);
    } else if (as_json) {
        json_t *j = json_pack("{s:I}", "purged", (json_int_t)purged);
        print_json(j);
        json_decref(j);
    } else {
        printf("purged %llu\n", (unsigned long long)purged);
    }
    taskq_client_destroy(&c);
    return rc;
}
