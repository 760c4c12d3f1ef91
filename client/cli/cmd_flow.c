/* cmd_flow.c - workflows and waiting: `taskq chain`, `taskq group`, `taskq
 * map` and `taskq wait` (docs/tasks.md, "Workflows" and "Waiting"). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "parse.h"
#include "render.h"
#include "tclock.h"

#define NAME_ARGS_RULES                                                                     \
    "NAME:ARGS_JSON is a task name and its JSON arguments, split at the first ':'\n"        \
    "that leaves a valid name on the left and JSON on the right (test.add:[1,2],\n"         \
    "taskq.sleep:[1]); without one the whole word is the name (no arguments;\n"             \
    "'mod:x:' for a name that itself looks like NAME:JSON). A task that receives\n"         \
    "results (chained, or a chord callback) needs array arguments.\n"

/* ---- NAME:ARGS_JSON ------------------------------------------------------- */

typedef struct {
    char name[129]; /* TQ_NAME_MAX + 1 */
    void *args; /* msgpack, malloc'd; NULL = [] */
    size_t args_len;
} targ_t;

/* Parses one NAME:ARGS_JSON word into *t; the exit code (EXIT_OK). */
static int targ_parse(const cli_t *cli, const char *cmd, const char *word, targ_t *t)
{
    const char *json = NULL;
    memset(t, 0, sizeof *t);
    if (!parse_task_arg(word, t->name, sizeof t->name, &json))
        return usage_error(cmd, "'%s' is not NAME or NAME:ARGS_JSON (names: [A-Za-z0-9_.:-], "
                                "1-128)", word), EXIT_USAGE;
    if (!json)
        return EXIT_OK;
    char err[200];
    taskq_err_t e = json_text_to_msgpack(json, &t->args, &t->args_len, err, sizeof err);
    if (e == TASKQ_EINVAL)
        return usage_error(cmd, "'%s': %s", word, err), EXIT_USAGE;
    if (e != TASKQ_OK)
        return fail(cli, e, cmd, NULL);
    return EXIT_OK;
}

static void targ_spec(const targ_t *t, taskq_task_spec_t *s)
{
    memset(s, 0, sizeof *s);
    s->name = t->name;
    s->args = t->args;
    s->args_len = t->args_len;
}

static void targs_free(targ_t *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].args);
    free(v);
}

static void print_id_line(const taskq_id_t *id)
{
    char s[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, s);
    puts(s);
}

/* A workflow the library refused before sending, or the broker refused. */
static int flow_fail(const cli_t *cli, const taskq_client_t *c, taskq_err_t e, const char *what)
{
    if ((e == TASKQ_EINVAL || e == TASKQ_ENAME || e == TASKQ_ETOOBIG) &&
        !taskq_client_last_error(c)[0]) {
        fprintf(stderr, "taskq: %s: %s (%s): check the names, that arguments receiving "
                        "results are JSON arrays, and the sizes (docs/tasks.md)\n",
                what, taskq_strerror(e), taskq_err_name(e));
        return EXIT_USAGE;
    }
    return fail_on(cli, c, e, what, "task", NULL);
}

/* ---- waiting with a progress line ------------------------------------------ */

typedef struct {
    taskq_id_t id;
    size_t idx;
} idx_t;

static int idx_cmp(const void *a, const void *b)
{
    return memcmp(((const idx_t *)a)->id.b, ((const idx_t *)b)->id.b, 16);
}

typedef struct {
    size_t n;             /* ids waited for */
    idx_t *index;         /* sorted: id -> position */
    uint8_t *seen;        /* delivered, per position */
    uint64_t done, failed;
    bool bar;             /* stderr is a terminal */
    int64_t start, drawn_at;
    /* taskq wait: one line per task as it arrives */
    bool lines, as_json;
    /* taskq map --wait: results kept per position, printed at the end */
    json_t **results;
    int rc;               /* EXIT_OK, or EXIT_FAILED once a task did not succeed */
} waitview_t;

static void bar_draw(waitview_t *v, bool force)
{
    if (!v->bar)
        return;
    int64_t now = tclock_mono_ms();
    if (!force && now - v->drawn_at < 50)
        return; /* at most 20 redraws a second */
    char line[128];
    format_wait_bar(line, sizeof line, v->done, v->n, v->failed, now - v->start);
    fprintf(stderr, "\r\x1b[2K%s", line);
    fflush(stderr);
    v->drawn_at = now;
}

static void bar_clear(const waitview_t *v)
{
    if (v->bar) {
        fputs("\r\x1b[2K", stderr);
        fflush(stderr);
    }
}

/* One line for a terminal task: "ID STATE [RESULT_JSON | ERROR [CODE]]". */
static void print_task_line(const taskq_task_t *t, bool as_json)
{
    if (as_json) {
        json_t *o = task_json(t);
        print_json_flags(o, JSON_REAL_PRECISION(15));
        json_decref(o);
        return;
    }
    char id[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&t->id, id);
    if (t->state == TASKQ_STATE_SUCCEEDED) {
        json_t *r = result_json(t);
        char *s = json_dumps(r, JSON_ENCODE_ANY | JSON_COMPACT);
        printf("%s succeeded %s\n", id, s ? s : "null");
        free(s);
        json_decref(r);
    } else if (t->code[0]) {
        printf("%s %s %s [%s]\n", id, taskq_state_name(t->state), t->error, t->code);
    } else {
        printf("%s %s%s%s\n", id, taskq_state_name(t->state), t->error[0] ? " " : "", t->error);
    }
}

static int on_terminal(const taskq_task_t *t, void *arg)
{
    waitview_t *v = arg;
    idx_t key = {.id = t->id};
    idx_t *hit = bsearch(&key, v->index, v->n, sizeof *v->index, idx_cmp);
    if (!hit || v->seen[hit->idx])
        return 0;
    v->seen[hit->idx] = 1;
    v->done++;
    if (t->state != TASKQ_STATE_SUCCEEDED) {
        v->failed++;
        v->rc = EXIT_FAILED;
    }
    if (v->lines) {
        bar_clear(v);
        print_task_line(t, v->as_json);
        fflush(stdout);
    }
    if (v->results) {
        if (t->state == TASKQ_STATE_SUCCEEDED) {
            v->results[hit->idx] = result_json(t);
        } else {
            char id[TASKQ_ID_STRLEN + 1];
            taskq_id_format(&t->id, id);
            bar_clear(v);
            fprintf(stderr, "taskq: task %s ended %s%s%s%s%s%s\n", id, taskq_state_name(t->state),
                    t->error[0] ? ": " : "", t->error, t->code[0] ? " [" : "", t->code,
                    t->code[0] ? "]" : "");
        }
    }
    bar_draw(v, v->lines || v->done == v->n);
    return 0;
}

static int waitview_init(waitview_t *v, const taskq_id_t *ids, size_t n)
{
    memset(v, 0, sizeof *v);
    v->n = n;
    v->index = malloc((n ? n : 1) * sizeof *v->index);
    v->seen = calloc(n ? n : 1, 1);
    if (!v->index || !v->seen)
        return EXIT_OTHER;
    for (size_t i = 0; i < n; i++)
        v->index[i] = (idx_t){ids[i], i};
    qsort(v->index, n, sizeof *v->index, idx_cmp);
    for (size_t i = 1; i < n; i++)
        if (idx_cmp(&v->index[i - 1], &v->index[i]) == 0)
            return usage_error("wait ", "an id is given twice"), EXIT_USAGE;
    v->bar = isatty(STDERR_FILENO) != 0;
    v->start = tclock_mono_ms();
    v->rc = EXIT_OK;
    return EXIT_OK;
}

static void waitview_free(waitview_t *v)
{
    if (v->results)
        for (size_t i = 0; i < v->n; i++)
            json_decref(v->results[i]);
    free(v->results);
    free(v->index);
    free(v->seen);
}

/* Runs the wait (any: stop after the first) and reports how it ended:
 * the exit code. Tasks the broker did not know are named on stderr. */
static int waitview_run(const cli_t *cli, taskq_client_t *c, waitview_t *v, const taskq_id_t *ids,
                        bool any, int64_t timeout_ms, const char *what)
{
    bar_draw(v, true);
    taskq_err_t e = any ? taskq_wait_any(c, ids, v->n, timeout_ms, on_terminal, v)
                        : taskq_wait_all(c, ids, v->n, timeout_ms, on_terminal, v);
    bar_draw(v, true);
    if (v->bar)
        fputs("\n", stderr);
    if (e == TASKQ_OK)
        return v->rc;
    if (e == TASKQ_ETIMEDOUT) {
        fprintf(stderr, "taskq: %s: timed out: %llu of %zu done\n", what,
                (unsigned long long)v->done, v->n);
        return EXIT_TIMEOUT;
    }
    if (e == TASKQ_ENOTFOUND || e == TASKQ_EPURGED) {
        size_t shown = 0;
        for (size_t i = 0; i < v->n && shown < 10; i++) {
            if (v->seen[i])
                continue;
            char id[TASKQ_ID_STRLEN + 1];
            taskq_id_format(&ids[i], id);
            fprintf(stderr, "taskq: %s: no such task (unknown or purged): %s\n", what, id);
            shown++;
        }
        return EXIT_NOTFOUND;
    }
    return fail_on(cli, c, e, what, "task", NULL);
}

/* ---- chain ------------------------------------------------------------------ */

/* Collects NAME:ARGS_JSON positionals; handles --help, --broker, --json and
 * the options given in opt_names (each with a value, stored in opt_vals).
 * Returns -1 to go on, else the exit code. */
static int parse_words(cli_t *cli, int argc, char **argv, const char *cmd, const char *help,
                       const char *const *opt_names, const char **opt_vals, bool *as_json,
                       const char ***words, size_t *nwords)
{
    *words = calloc(argc > 0 ? (size_t)argc : 1, sizeof **words);
    *nwords = 0;
    if (!*words)
        return EXIT_OTHER;
    for (int i = 0; i < argc; i++) {
        int c = common_opt(cli, argc, argv, &i);
        if (c < 0)
            return usage_error(cmd, "missing value for %s", argv[i]), EXIT_USAGE;
        if (c > 0)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return fputs(help, stdout), EXIT_OK;
        if (!strcmp(a, "--json")) {
            *as_json = true;
            continue;
        }
        bool known = false;
        for (size_t k = 0; opt_names && opt_names[k]; k++) {
            if (strcmp(a, opt_names[k]) != 0)
                continue;
            if (i + 1 >= argc)
                return usage_error(cmd, "missing value for %s", a), EXIT_USAGE;
            opt_vals[k] = argv[++i];
            known = true;
        }
        if (known)
            continue;
        if (a[0] == '-' && a[1] == '-')
            return usage_error(cmd, "unknown option %s", a), EXIT_USAGE;
        (*words)[(*nwords)++] = a;
    }
    return -1;
}

int cmd_chain(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq chain NAME:ARGS_JSON NAME:ARGS_JSON ... [--json] [--broker EP]\n"
        "Submits the tasks as one chain, all or nothing: each waits ('pending') for\n"
        "the one before it and gets that one's result appended as its last argument;\n"
        "if one fails, expires or is revoked, every task after it is revoked\n"
        "(upstream_failed / upstream_revoked). Prints one id per line, in order\n"
        "(--json: {\"ids\": [...]}).\n" NAME_ARGS_RULES;
    const char **words = NULL;
    size_t n = 0;
    bool as_json = false;
    int rc = parse_words(cli, argc, argv, "chain ", help, NULL, NULL, &as_json, &words, &n);
    targ_t *t = NULL;
    taskq_task_spec_t *specs = NULL;
    taskq_client_t *c = NULL;
    if (rc >= 0)
        goto out;
    if (n == 0) {
        rc = (usage_error("chain ", "missing NAME:ARGS_JSON"), EXIT_USAGE);
        goto out;
    }
    t = calloc(n, sizeof *t);
    specs = calloc(n, sizeof *specs);
    if (!t || !specs) {
        rc = EXIT_OTHER;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = targ_parse(cli, "chain ", words[i], &t[i])) != EXIT_OK)
            goto out;
        targ_spec(&t[i], &specs[i]);
    }
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    taskq_err_t e = taskq_chain(c, specs, n);
    if (e != TASKQ_OK) {
        rc = flow_fail(cli, c, e, "chain");
    } else if (as_json) {
        json_t *ids = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(ids, json_id_or_null(&specs[i].id));
        json_t *o = json_pack("{s:o}", "ids", ids);
        print_json(o);
        json_decref(o);
    } else {
        for (size_t i = 0; i < n; i++)
            print_id_line(&specs[i].id);
    }
out:
    taskq_client_destroy(&c);
    targs_free(t, n);
    free(specs);
    free(words);
    return rc;
}

/* ---- group ------------------------------------------------------------------ */

static void print_group_ids(const taskq_id_t *gid, const taskq_id_t *members, size_t n,
                            const taskq_id_t *callback, bool as_json)
{
    if (as_json) {
        json_t *m = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(m, json_id_or_null(&members[i]));
        json_t *o = json_pack("{s:o, s:o, s:o}", "group", json_id_or_null(gid), "members", m,
                              "callback", callback ? json_id_or_null(callback) : json_null());
        print_json(o);
        json_decref(o);
        return;
    }
    print_id_line(gid);
    for (size_t i = 0; i < n; i++)
        print_id_line(&members[i]);
    if (callback)
        print_id_line(callback);
}

int cmd_group(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq group NAME:ARGS_JSON ... [--then NAME:ARGS_JSON]\n"
        "                   [--on-fail fail|settle] [--json] [--broker EP]\n"
        "Submits the tasks as one group, all or nothing, and prints the group id, then\n"
        "the member ids in order (and with --then the callback's id last; --json:\n"
        "{\"group\", \"members\": [...], \"callback\"}). 'taskq status GID' shows its\n"
        "progress, 'taskq wait --group GID' waits for it.\n"
        "  --then T      a chord: T runs once every member is terminal, with its\n"
        "                arguments + [[result0, result1, ...]] (member order)\n"
        "  --on-fail M   fail (default): the callback is revoked as soon as a member\n"
        "                ends non-succeeded (after its last retry); settle: it runs\n"
        "                when all are terminal, with [{id, state, result | error, code}]\n"
        NAME_ARGS_RULES;
    static const char *const opts[] = {"--then", "--on-fail", NULL};
    const char *vals[2] = {NULL, NULL};
    const char **words = NULL;
    size_t n = 0;
    bool as_json = false;
    int rc = parse_words(cli, argc, argv, "group ", help, opts, vals, &as_json, &words, &n);
    targ_t *t = NULL, cbt;
    memset(&cbt, 0, sizeof cbt);
    taskq_task_spec_t *specs = NULL, cb;
    taskq_id_t *ids = NULL;
    taskq_client_t *c = NULL;
    if (rc >= 0)
        goto out;
    if (n == 0) {
        rc = (usage_error("group ", "missing NAME:ARGS_JSON"), EXIT_USAGE);
        goto out;
    }
    if (vals[1] && strcmp(vals[1], "fail") != 0 && strcmp(vals[1], "settle") != 0) {
        rc = (usage_error("group ", "--on-fail '%s': expected fail or settle", vals[1]), EXIT_USAGE);
        goto out;
    }
    if (vals[1] && !vals[0]) {
        rc = (usage_error("group ", "--on-fail needs --then (a chord callback)"), EXIT_USAGE);
        goto out;
    }
    t = calloc(n, sizeof *t);
    specs = calloc(n, sizeof *specs);
    ids = calloc(n, sizeof *ids);
    if (!t || !specs || !ids) {
        rc = EXIT_OTHER;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rc = targ_parse(cli, "group ", words[i], &t[i])) != EXIT_OK)
            goto out;
        targ_spec(&t[i], &specs[i]);
    }
    if (vals[0]) {
        if ((rc = targ_parse(cli, "group ", vals[0], &cbt)) != EXIT_OK)
            goto out;
        targ_spec(&cbt, &cb);
    }
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    taskq_id_t gid;
    taskq_err_t e = vals[0] ? taskq_chord(c, specs, n, &cb, vals[1], &gid)
                            : taskq_group(c, specs, n, &gid);
    if (e != TASKQ_OK) {
        rc = flow_fail(cli, c, e, "group");
    } else {
        for (size_t i = 0; i < n; i++)
            ids[i] = specs[i].id;
        print_group_ids(&gid, ids, n, vals[0] ? &cb.id : NULL, as_json);
    }
out:
    taskq_client_destroy(&c);
    targs_free(t, n);
    free(cbt.args);
    free(specs);
    free(ids);
    free(words);
    return rc;
}

/* ---- map -------------------------------------------------------------------- */

int cmd_map(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq map NAME ITEMS_JSON [--chunk N] [--then NAME:ARGS_JSON]\n"
        "                 [--wait] [--timeout S] [--json] [--broker EP]\n"
        "Runs NAME over the items of the JSON array ITEMS_JSON: one task per chunk of\n"
        "N items (default 1), each with the arguments [[item, ...]], submitted as one\n"
        "group, all or nothing. Prints the group id, then the member ids in item order\n"
        "(with --then the callback's id last; --json: {\"group\", \"members\",\n"
        "\"callback\"}).\n"
        "  --then T      a chord: T runs with its arguments + [[result0, ...]] once\n"
        "                every member succeeded (revoked if one fails)\n"
        "  --wait        wait, then print the members' results in item order, one\n"
        "                JSON value per line (null for a member that did not succeed:\n"
        "                exit 1), and with --then the callback's result as the last\n"
        "                line; a progress line on stderr when it is a terminal\n"
        "  --timeout S   with --wait: give up after S seconds (exit 3, nothing on\n"
        "                stdout)\n" NAME_ARGS_RULES;
    static const char *const opts[] = {"--chunk", "--then", "--timeout", NULL};
    const char *vals[3] = {NULL, NULL, NULL};
    const char **words = NULL;
    size_t nw = 0;
    bool as_json = false, wait = false;
    /* --wait is a flag: take it out before the common parser */
    char **av = calloc(argc > 0 ? (size_t)argc : 1, sizeof *av);
    int ac = 0;
    if (!av)
        return EXIT_OTHER;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--wait"))
            wait = true;
        else
            av[ac++] = argv[i];
    }
    int rc = parse_words(cli, ac, av, "map ", help, opts, vals, &as_json, &words, &nw);
    targ_t cbt;
    memset(&cbt, 0, sizeof cbt);
    taskq_task_spec_t cb;
    void *items = NULL;
    size_t items_len = 0, nids = 0;
    taskq_id_t *ids = NULL;
    taskq_client_t *c = NULL;
    waitview_t v;
    memset(&v, 0, sizeof v);
    uint32_t chunk = 1;
    int64_t timeout_ms = -1;
    if (rc >= 0)
        goto out;
    if (nw < 2) {
        rc = (usage_error("map ", "missing NAME or ITEMS_JSON"), EXIT_USAGE);
        goto out;
    }
    if (nw > 2) {
        rc = (usage_error("map ", "unexpected argument '%s'", words[2]), EXIT_USAGE);
        goto out;
    }
    if (!task_name_ok(words[0])) {
        rc = (usage_error("map ", "invalid task name '%s'", words[0]), EXIT_USAGE);
        goto out;
    }
    if (vals[0] && (!parse_uint(vals[0], &chunk) || chunk == 0)) {
        rc = (usage_error("map ", "--chunk '%s': expected a number >= 1", vals[0]), EXIT_USAGE);
        goto out;
    }
    if (vals[2] && !parse_seconds(vals[2], &timeout_ms)) {
        rc = (usage_error("map ", "--timeout needs a number of seconds"), EXIT_USAGE);
        goto out;
    }
    if (vals[2] && !wait) {
        rc = (usage_error("map ", "--timeout goes with --wait"), EXIT_USAGE);
        goto out;
    }
    {
        const char *w = words[1];
        while (*w == ' ' || *w == '\t' || *w == '\n')
            w++;
        if (*w != '[') {
            rc = (usage_error("map ", "ITEMS_JSON must be a JSON array"), EXIT_USAGE);
            goto out;
        }
        char err[200];
        taskq_err_t e = json_text_to_msgpack(words[1], &items, &items_len, err, sizeof err);
        if (e == TASKQ_EINVAL) {
            rc = (usage_error("map ", "ITEMS_JSON: %s", err), EXIT_USAGE);
            goto out;
        }
        if (e != TASKQ_OK) {
            rc = fail(cli, e, "map", NULL);
            goto out;
        }
    }
    if (vals[1]) {
        if ((rc = targ_parse(cli, "map ", vals[1], &cbt)) != EXIT_OK)
            goto out;
        targ_spec(&cbt, &cb);
    }
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    taskq_id_t gid;
    taskq_err_t e = taskq_map(c, words[0], items, items_len, chunk, vals[1] ? &cb : NULL, &gid,
                              &ids, &nids);
    if (e != TASKQ_OK) {
        rc = flow_fail(cli, c, e, "map");
        goto out;
    }
    if (!wait) {
        print_group_ids(&gid, ids, nids, vals[1] ? &cb.id : NULL, as_json);
        goto out;
    }
    /* --wait: members (and the callback) as one set; results by position */
    size_t n = nids + (vals[1] ? 1 : 0);
    taskq_id_t *all = realloc(ids, (n ? n : 1) * sizeof *all);
    if (!all) {
        rc = EXIT_OTHER;
        goto out;
    }
    ids = all;
    if (vals[1])
        ids[nids] = cb.id;
    if ((rc = waitview_init(&v, ids, n)) != EXIT_OK)
        goto out;
    v.results = calloc(n ? n : 1, sizeof *v.results);
    if (!v.results) {
        rc = EXIT_OTHER;
        goto out;
    }
    rc = waitview_run(cli, c, &v, ids, false, timeout_ms, "map");
    if (rc == EXIT_OK || rc == EXIT_FAILED) {
        for (size_t i = 0; i < n; i++) {
            char *s = v.results[i] ? json_dumps(v.results[i], JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
            puts(s ? s : "null");
            free(s);
        }
    }
out:
    waitview_free(&v);
    taskq_client_destroy(&c);
    free(cbt.args);
    free(items);
    free(ids);
    free(words);
    free(av);
    return rc;
}

/* ---- wait ------------------------------------------------------------------- */

int cmd_wait(cli_t *cli, int argc, char **argv)
{
    static const char *help =
        "usage: taskq wait [--any | --all] ID... [--timeout S] [--json] [--broker EP]\n"
        "       taskq wait [--any | --all] --group GID [--timeout S] [--json]\n"
        "Waits until the tasks are terminal (--all, the default) or until the first\n"
        "one is (--any), printing one line per task as it ends, in the order the\n"
        "broker committed them (already-terminal ones first): 'ID succeeded RESULT',\n"
        "'ID failed ERROR [CODE]', 'ID revoked REASON', 'ID expired'; with --json one\n"
        "status object per line. --group waits for a group's members and its chord\n"
        "callback, if any. On a terminal, stderr shows a progress line:\n"
        "  [#####...............] 512/2000 done, 3 failed, 12.3 s\n"
        "Exit 0 if every task printed succeeded, 1 if one did not, 3 on timeout, 5\n"
        "if an id is unknown or purged.\n";
    bool any = false, all = false, as_json = false;
    const char *group = NULL;
    int64_t timeout_ms = -1;
    taskq_id_t *ids = calloc(argc > 0 ? (size_t)argc : 1, sizeof *ids);
    size_t n = 0;
    taskq_client_t *c = NULL;
    waitview_t v;
    memset(&v, 0, sizeof v);
    int rc = EXIT_OK;
    if (!ids)
        return EXIT_OTHER;
    for (int i = 0; i < argc; i++) {
        int co = common_opt(cli, argc, argv, &i);
        if (co < 0) {
            rc = (usage_error("wait ", "missing value for %s", argv[i]), EXIT_USAGE);
            goto out;
        }
        if (co > 0)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(help, stdout);
            goto out;
        } else if (!strcmp(a, "--any")) {
            any = true;
        } else if (!strcmp(a, "--all")) {
            all = true;
        } else if (!strcmp(a, "--json")) {
            as_json = true;
        } else if (!strcmp(a, "--group")) {
            if (i + 1 >= argc) {
                rc = (usage_error("wait ", "missing value for %s", a), EXIT_USAGE);
                goto out;
            }
            group = argv[++i];
        } else if (!strcmp(a, "--timeout")) {
            if (i + 1 >= argc || !parse_seconds(argv[i + 1], &timeout_ms)) {
                rc = (usage_error("wait ", "%s needs a number of seconds", a), EXIT_USAGE);
                goto out;
            }
            i++;
        } else if (a[0] == '-' && a[1] == '-') {
            rc = (usage_error("wait ", "unknown option %s", a), EXIT_USAGE);
            goto out;
        } else if (!parse_id_arg("wait ", a, &ids[n++])) {
            rc = EXIT_USAGE;
            goto out;
        }
    }
    if (any && all) {
        rc = (usage_error("wait ", "--any and --all exclude each other"), EXIT_USAGE);
        goto out;
    }
    if ((group != NULL) == (n > 0)) {
        if (group)
            usage_error("wait ", "give ids or --group, not both");
        else
            usage_error("wait ", "missing task IDs or --group GID");
        rc = EXIT_USAGE;
        goto out;
    }
    taskq_id_t gid;
    if (group && !parse_id_arg("wait ", group, &gid)) {
        rc = EXIT_USAGE;
        goto out;
    }
    if ((rc = connect_broker(cli, &c)) != EXIT_OK)
        goto out;
    if (group) {
        taskq_group_info_t g;
        taskq_id_t *members = NULL;
        size_t nm = 0;
        taskq_err_t e = taskq_group_status(c, &gid, &g);
        if (e == TASKQ_OK)
            e = taskq_group_members(c, &gid, &members, &nm);
        if (e != TASKQ_OK) {
            rc = fail_on(cli, c, e, "wait", "group", group);
            goto out;
        }
        free(ids);
        ids = realloc(members, (nm + 1) * sizeof *ids);
        if (!ids) {
            free(members);
            rc = EXIT_OTHER;
            goto out;
        }
        n = nm;
        if (!taskq_id_is_zero(&g.callback))
            ids[n++] = g.callback;
        if (n == 0) /* an empty group without a callback: nothing to wait for */
            goto out;
    }
    if ((rc = waitview_init(&v, ids, n)) != EXIT_OK)
        goto out;
    v.lines = true;
    v.as_json = as_json;
    rc = waitview_run(cli, c, &v, ids, any, timeout_ms, "wait");
out:
    waitview_free(&v);
    taskq_client_destroy(&c);
    free(ids);
    return rc;
}
