/* it_cli: the `taskq` CLI end to end: exit codes (0 ok, 1 task failed,
 * 2 usage, 3 timeout, 4 broker unreachable, 5 not found, 6 other, 7 busy)
 * and the documented JSON of `status --json`, `workers --json`, `queues
 * --json`, `limit list --json`; the task-lifecycle commands (chain, group,
 * map --wait, wait, status GID, revoke, failed, rerun, purge, submit
 * --unique-key) once each. The broker is passed through $TASKQ_BROKER. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];

/* Parses the CLI's stdout as one JSON value (any type). */
static json_t *parse_json(const char *what)
{
    json_error_t e;
    json_t *j = json_loads(out, JSON_DECODE_ANY, &e);
    H_ASSERT(j != NULL, "%s: stdout is not JSON (%s at %d): '%.300s'", what, e.text, e.position,
             out);
    return j;
}

/* The first task id (36-char form) found in stdout. */
static taskq_id_t find_id(const char *what)
{
    taskq_id_t id;
    for (const char *p = out; *p; p++) {
        char buf[TASKQ_ID_STRLEN + 1];
        if (strlen(p) < TASKQ_ID_STRLEN)
            break;
        memcpy(buf, p, TASKQ_ID_STRLEN);
        buf[TASKQ_ID_STRLEN] = '\0';
        if (taskq_id_parse(buf, &id) == TASKQ_OK)
            return id;
    }
    H_FAIL("%s: no task id in stdout: '%.300s'", what, out);
}

static void need_key(json_t *o, const char *key, int type, const char *what)
{
    json_t *v = json_object_get(o, key);
    H_ASSERT(v != NULL, "%s: key '%s' missing in %.400s", what, key, out);
    if (type >= 0)
        H_ASSERT(json_typeof(v) == (json_type)type ||
                     (type == JSON_INTEGER && json_typeof(v) == JSON_REAL) ||
                     (type == JSON_REAL && json_typeof(v) == JSON_INTEGER),
                 "%s: key '%s' has JSON type %d, expected %d", what, key, json_typeof(v), type);
}

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    H_ASSERT(s >= 0, "socket");
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    H_ASSERT(bind(s, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    socklen_t l = sizeof a;
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

/* The n-th (0-based) line of stdout as an id. */
static taskq_id_t line_id(int n, const char *what)
{
    const char *p = out;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    H_ASSERT(p && strlen(p) >= TASKQ_ID_STRLEN, "%s: no line %d in stdout '%.300s'", what, n, out);
    char buf[TASKQ_ID_STRLEN + 1];
    memcpy(buf, p, TASKQ_ID_STRLEN);
    buf[TASKQ_ID_STRLEN] = '\0';
    taskq_id_t id;
    H_ASSERT(taskq_id_parse(buf, &id) == TASKQ_OK, "%s: line %d is not an id: '%.300s'", what, n,
             out);
    return id;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* True if the stderr log of the last CLI run contains needle. */
static bool cli_stderr_has(const char *needle)
{
    FILE *f = fopen(h_cli_last_log(), "r");
    if (!f)
        return false;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

/* Issue 7 commands, once each. test.hang occupies one of the two children:
 * everything here runs on the other one, or waits in a paused queue. */
static void lifecycle_checks(const char *ep)
{
    int rc;
    json_t *j;
    char a[TASKQ_ID_STRLEN + 1], b[TASKQ_ID_STRLEN + 1], g[TASKQ_ID_STRLEN + 1];

    /* chain: ids in order; the second gets the first's result appended */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "chain", "test.concat:[\"a\"]", "test.concat:[\"b\"]");
    H_ASSERT(rc == 0 && count_lines(out) == 2, "chain: exit %d, stdout '%.300s'", rc, out);
    taskq_id_t c0 = line_id(0, "chain"), c1 = line_id(1, "chain");
    taskq_id_format(&c0, a);
    taskq_id_format(&c1, b);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--all", a, b, "--timeout", "20");
    H_ASSERT(rc == 0 && count_lines(out) == 2, "wait --all (chain): exit %d, '%.300s'", rc, out);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", b, "--json");
    H_ASSERT(rc == 0, "status of a chained task: exit %d", rc);
    j = parse_json("status (chained)");
    char *res = json_dumps(json_object_get(j, "result"), JSON_COMPACT | JSON_ENCODE_ANY);
    H_ASSERT(res && strcmp(res, "[\"b\",[\"a\"]]") == 0, "chain result '%s'", res ? res : "?");
    free(res);
    need_key(j, "parent_id", JSON_STRING, "status (chained)");
    H_ASSERT(strcmp(json_string_value(json_object_get(j, "parent_id")), a) == 0, "parent_id");
    json_decref(j);

    /* group with --then (a chord): group id, members, callback */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "group", "test.sum:[1]", "test.sum:[2]", "--then",
                   "test.sum:[]");
    H_ASSERT(rc == 0 && count_lines(out) == 4, "group --then: exit %d, '%.300s'", rc, out);
    taskq_id_t gid = line_id(0, "group"), cb = line_id(3, "group");
    taskq_id_format(&gid, g);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--group", g, "--json", "--timeout", "20");
    H_ASSERT(rc == 0 && count_lines(out) == 3, "wait --group: exit %d, '%.300s'", rc, out);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", g, "--json");
    H_ASSERT(rc == 0, "status GID: exit %d", rc);
    j = parse_json("status GID");
    H_ASSERT(json_integer_value(json_object_get(j, "total")) == 2 &&
                 json_integer_value(json_object_get(j, "succeeded")) == 2 &&
                 json_integer_value(json_object_get(j, "remaining")) == 0,
             "status GID: '%.300s'", out);
    need_key(j, "callback", JSON_STRING, "status GID");
    json_decref(j);
    taskq_id_format(&cb, a);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "result", a, "--timeout", "10");
    H_ASSERT(rc == 0 && atoi(out) == 3, "chord callback result: exit %d, '%.100s'", rc, out);

    /* map --wait: results in item order, one per line */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "map", "test.sum", "[5,6,7]", "--wait", "--timeout", "20");
    H_ASSERT(rc == 0 && strcmp(out, "5\n6\n7\n") == 0, "map --wait: exit %d, '%.300s'", rc, out);

    /* a paused queue holds a task queued: wait --any returns the other one */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "queue", "pause", "cliq7");
    H_ASSERT(rc == 0, "queue pause cliq7: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[4]", "--queue", "cliq7",
                   "--unique-key", "cli-k");
    H_ASSERT(rc == 0, "submit --unique-key: exit %d", rc);
    taskq_id_t held = find_id("submit --unique-key");
    taskq_id_format(&held, a);
    /* the same key again: nothing created, the holder's id, exit 0 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[4]", "--queue", "cliq7",
                   "--unique-key", "cli-k");
    H_ASSERT(rc == 0 && strncmp(out, a, TASKQ_ID_STRLEN) == 0,
             "duplicate submit: exit %d, stdout '%.100s', expected the holder %s", rc, out, a);
    H_ASSERT(cli_stderr_has("duplicate of"), "duplicate submit: no 'duplicate of' on stderr");
    rc = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--any", a, b, "--timeout", "10");
    H_ASSERT(rc == 0 && count_lines(out) == 1 && strncmp(out, b, TASKQ_ID_STRLEN) == 0,
             "wait --any: exit %d, '%.300s'", rc, out);

    /* revoke: once (exit 0), again (already revoked: exit 6), unknown (5) */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "revoke", a, "--reason", "cli test");
    H_ASSERT(rc == 0 && strstr(out, "revoked 1"), "revoke: exit %d, '%.200s'", rc, out);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "revoke", a);
    H_ASSERT(rc == 6 && cli_stderr_has("already revoked"), "revoke twice: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "revoke", "01890a5d-ac96-774b-bcce-b302099a8057");
    H_ASSERT(rc == 5, "revoke of an unknown id: exit %d, expected 5", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", a, "--json");
    j = parse_json("status (revoked)");
    H_ASSERT(strcmp(json_string_value(json_object_get(j, "state")), "revoked") == 0 &&
                 json_is_string(json_object_get(j, "error")),
             "revoked task: '%.300s'", out);
    json_decref(j);

    /* failed --json lists test.fail (from above) with its attempts; rerun
     * makes a new task once, the second time exit 6 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "failed", "--name", "test.fail", "--json");
    H_ASSERT(rc == 0, "failed --json: exit %d", rc);
    j = parse_json("failed --json");
    H_ASSERT(json_is_array(j) && json_array_size(j) >= 1, "failed --json: '%.300s'", out);
    json_t *f0 = json_array_get(j, 0);
    need_key(f0, "attempt_history", JSON_ARRAY, "failed --json");
    H_ASSERT(strcmp(json_string_value(json_object_get(f0, "state")), "failed") == 0, "not failed");
    snprintf(a, sizeof a, "%s", json_string_value(json_object_get(f0, "id")));
    json_decref(j);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "rerun", a);
    H_ASSERT(rc == 0 && count_lines(out) == 1, "rerun: exit %d, '%.200s'", rc, out);
    taskq_id_t again = line_id(0, "rerun");
    rc = h_run_cli(out, OUTSZ, NULL, ep, "rerun", a);
    H_ASSERT(rc == 6, "rerun of a re-run task: exit %d, expected 6", rc);
    taskq_id_format(&again, b);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", b, "--json");
    j = parse_json("status (rerun)");
    H_ASSERT(json_is_string(json_object_get(j, "rerun_of")) &&
                 strcmp(json_string_value(json_object_get(j, "rerun_of")), a) == 0,
             "rerun_of: '%.300s'", out);
    json_decref(j);

    /* purge (nothing that old) and the purged counter */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "purge", "--state", "succeeded", "--older-than", "30d");
    H_ASSERT(rc == 0 && strcmp(out, "purged 0\n") == 0, "purge: exit %d, '%.100s'", rc, out);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "stats", "--json");
    j = parse_json("stats --json");
    need_key(j, "purged", JSON_INTEGER, "stats --json");
    json_decref(j);

    /* usage errors: exit 2 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "chain");
    H_ASSERT(rc == 2, "chain without tasks: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "map", "test.sum", "{\"a\":1}");
    H_ASSERT(rc == 2, "map with an object: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "wait", "--any", "--all", a);
    H_ASSERT(rc == 2, "wait --any --all: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "revoke", "--state", "queued");
    H_ASSERT(rc == 2, "revoke --state without a selector: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "purge", "--state", "queued", "--older-than", "1d");
    H_ASSERT(rc == 2, "purge of a non-terminal state: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "chain", "test.concat:[1]", "test.concat:7");
    H_ASSERT(rc == 2, "chain into non-array args: exit %d", rc);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(160);
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    h_worker_t *w = h_worker_start(ep, 2);
    taskq_client_t *c = h_client(ep, 10000);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    int rc;

    /* submit --wait: exit 0 and the JSON result (49, or an object with it) */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[7]", "--wait");
    H_ASSERT(rc == 0, "submit --wait test.square [7]: exit %d, stdout '%.300s'", rc, out);
    json_t *j = parse_json("submit --wait");
    json_t *r = json_is_object(j) ? json_object_get(j, "result") : j;
    H_ASSERT(r && json_is_integer(r) && json_integer_value(r) == 49,
             "submit --wait printed '%.300s', expected the result 49", out);
    json_decref(j);

    /* a failing task: exit 1 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.fail", "[\"boom\"]", "--wait");
    H_ASSERT(rc == 1, "submit --wait test.fail: exit %d, expected 1", rc);

    /* result with a 0.5 s timeout on a hanging task: exit 3 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.hang");
    H_ASSERT(rc == 0, "submit test.hang: exit %d", rc);
    taskq_id_t hang = find_id("submit test.hang");
    char hang_s[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&hang, hang_s);
    int64_t ms = 0;
    rc = h_run_cli(out, OUTSZ, &ms, ep, "result", hang_s, "--timeout", "0.5");
    H_ASSERT(rc == 3, "result --timeout 0.5 on a hanging task: exit %d, expected 3", rc);
    H_ASSERT(ms < 5000, "result --timeout 0.5 took %lld ms", (long long)ms);

    /* status --json has the documented fields */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", hang_s, "--json");
    H_ASSERT(rc == 0, "status --json: exit %d", rc);
    j = parse_json("status --json");
    H_ASSERT(json_is_object(j), "status --json is not an object");
    const char *what = "status --json";
    need_key(j, "id", JSON_STRING, what);
    H_ASSERT(strcmp(json_string_value(json_object_get(j, "id")), hang_s) == 0, "id differs");
    need_key(j, "name", JSON_STRING, what);
    need_key(j, "state", JSON_STRING, what);
    const char *state = json_string_value(json_object_get(j, "state"));
    H_ASSERT(strcmp(state, "running") == 0 || strcmp(state, "queued") == 0,
             "hanging task state '%s'", state);
    need_key(j, "attempts", JSON_INTEGER, what);
    need_key(j, "progress", JSON_OBJECT, what);
    json_t *pg = json_object_get(j, "progress");
    need_key(pg, "current", JSON_INTEGER, "status --json progress");
    need_key(pg, "total", JSON_INTEGER, "status --json progress");
    need_key(pg, "message", JSON_STRING, "status --json progress");
    need_key(j, "result", -1, what);
    need_key(j, "error", -1, what);
    need_key(j, "worker", -1, what); /* null until dispatched */
    json_t *wk = json_object_get(j, "worker");
    H_ASSERT(json_is_null(wk) || json_is_string(wk), "status --json: worker is neither a "
             "string nor null");
    need_key(j, "submitted_at", -1, what);
    need_key(j, "started_at", -1, what);
    need_key(j, "finished_at", -1, what);
    need_key(j, "queue", JSON_STRING, what);
    H_ASSERT(strcmp(json_string_value(json_object_get(j, "queue")), "default") == 0,
             "status --json: queue is not 'default'");
    need_key(j, "priority", JSON_INTEGER, what);
    H_ASSERT(json_integer_value(json_object_get(j, "priority")) == 5, "default priority is not 5");
    need_key(j, "failures", JSON_INTEGER, what);
    need_key(j, "code", -1, what);
    need_key(j, "due_at", -1, what);
    need_key(j, "expires_at", -1, what);
    need_key(j, "schedule", -1, what);
    json_decref(j);

    /* status --attempts --json: the attempt history (the hang runs attempt 1) */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "status", hang_s, "--attempts", "--json");
    H_ASSERT(rc == 0, "status --attempts --json: exit %d", rc);
    j = parse_json("status --attempts --json");
    json_t *hist = json_object_get(j, "attempt_history");
    H_ASSERT(hist && json_is_array(hist), "status --attempts --json: no attempt_history array");
    json_decref(j);

    /* submit --json names the queue; a bounded queue refuses with exit 7 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "queue", "set", "cliq", "--max-pending", "1");
    H_ASSERT(rc == 0, "queue set cliq --max-pending 1: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "queue", "pause", "cliq");
    H_ASSERT(rc == 0, "queue pause cliq: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[2]", "--queue", "cliq",
                   "--priority", "9", "--json");
    H_ASSERT(rc == 0, "submit --queue cliq: exit %d", rc);
    j = parse_json("submit --json");
    need_key(j, "queue", JSON_STRING, "submit --json");
    H_ASSERT(strcmp(json_string_value(json_object_get(j, "queue")), "cliq") == 0,
             "submit --json: queue '%s'", json_string_value(json_object_get(j, "queue")));
    json_decref(j);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[2]", "--queue", "cliq");
    H_ASSERT(rc == 7, "submit to a full queue: exit %d, expected 7 (busy)", rc);

    /* queues --json: one list, the paused bounded queue with its counts */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "queues", "--json");
    H_ASSERT(rc == 0, "queues --json: exit %d", rc);
    j = parse_json("queues --json");
    H_ASSERT(json_is_array(j), "queues --json is not a list");
    bool qfound = false;
    size_t qi;
    json_t *q;
    json_array_foreach(j, qi, q) {
        json_t *qn = json_object_get(q, "name");
        if (!qn || !json_is_string(qn) || strcmp(json_string_value(qn), "cliq"))
            continue;
        qfound = true;
        what = "queues --json queue";
        need_key(q, "paused", JSON_TRUE, what);
        need_key(q, "max_pending", JSON_INTEGER, what);
        need_key(q, "counts", JSON_OBJECT, what);
        need_key(q, "oldest_queued_s", JSON_REAL, what);
        need_key(q, "slots", JSON_INTEGER, what);
        need_key(q, "limit", -1, what);
        json_t *qc = json_object_get(json_object_get(q, "counts"), "queued");
        H_ASSERT(qc && json_integer_value(qc) == 1, "queues --json: cliq has not 1 queued task");
    }
    H_ASSERT(qfound, "queues --json does not list cliq: '%.300s'", out);
    json_decref(j);

    /* limits: set, list --json, rm; rm again is "not found" */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "set", "task:test.square", "--rate", "600/m",
                   "--max-running", "4");
    H_ASSERT(rc == 0, "limit set: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "list", "--json");
    H_ASSERT(rc == 0, "limit list --json: exit %d", rc);
    j = parse_json("limit list --json");
    H_ASSERT(json_is_array(j) && json_array_size(j) == 1, "limit list --json: '%.300s'", out);
    json_t *lim = json_array_get(j, 0);
    H_ASSERT(json_real_value(json_object_get(lim, "rate")) == 10.0 &&
                 json_integer_value(json_object_get(lim, "max_running")) == 4,
             "limit list --json: '%.300s'", out);
    json_decref(j);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "rm", "task:test.square");
    H_ASSERT(rc == 0, "limit rm: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "rm", "task:test.square");
    H_ASSERT(rc == 5, "limit rm of no limit: exit %d, expected 5", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "limit", "set", "nokey", "--rate", "1");
    H_ASSERT(rc == 2, "limit set with a bad key: exit %d, expected 2", rc);

    /* a bad cron expression is refused with the broker's message: exit 2 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "add", "cli.bad", "--cron", "0 25 * * *",
                   "--task", "test.square");
    H_ASSERT(rc == 2, "schedule add with hour 25: exit %d, expected 2", rc);
    /* a good one is listed, then removed; removing it again is "not found" */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "add", "cli.s", "--cron", "@every 1h",
                   "--task", "test.square", "--args", "[3]", "--priority", "7");
    H_ASSERT(rc == 0, "schedule add cli.s: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "list", "--json");
    H_ASSERT(rc == 0, "schedule list --json: exit %d", rc);
    j = parse_json("schedule list --json");
    H_ASSERT(json_is_array(j) && json_array_size(j) == 1, "schedule list --json: '%.300s'", out);
    json_t *sc = json_array_get(j, 0);
    what = "schedule list --json";
    need_key(sc, "next_at", JSON_STRING, what);
    H_ASSERT(strcmp(json_string_value(json_object_get(sc, "name")), "cli.s") == 0 &&
                 json_integer_value(json_object_get(sc, "priority")) == 7 &&
                 json_is_array(json_object_get(sc, "args")),
             "schedule list --json: '%.300s'", out);
    json_decref(j);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "rm", "cli.s");
    H_ASSERT(rc == 0, "schedule rm cli.s: exit %d", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "schedule", "rm", "cli.s");
    H_ASSERT(rc == 5, "schedule rm of a removed schedule: exit %d, expected 5", rc);
    /* no test clock on this broker: refused */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "clock", "advance", "1000");
    H_ASSERT(rc == 2, "clock advance without --test-clock: exit %d, expected 2", rc);

    lifecycle_checks(ep);

    /* workers --json lists our node and its children */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "workers", "--json");
    H_ASSERT(rc == 0, "workers --json: exit %d", rc);
    j = parse_json("workers --json");
    json_t *nodes = j; /* the documented shape: a list of nodes */
    H_ASSERT(nodes && json_is_array(nodes), "workers --json: no node array in '%.300s'", out);
    bool found = false;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node) {
        json_t *id = json_object_get(node, "id");
        if (!id || !json_is_string(id) || strcmp(json_string_value(id), h_worker_node_id(w)))
            continue;
        found = true;
        json_t *kids = json_object_get(node, "children");
        H_ASSERT(kids && json_is_array(kids) && json_array_size(kids) == 2,
                 "workers --json: node children '%.300s'", out);
        size_t k;
        json_t *kid;
        json_array_foreach(kids, k, kid) {
            what = "workers --json child";
            need_key(kid, "pid", JSON_INTEGER, what);
            need_key(kid, "state", JSON_STRING, what);
            need_key(kid, "task_id", -1, what);
            need_key(kid, "task_name", -1, what);
            need_key(kid, "running_s", JSON_REAL, what);
            need_key(kid, "done", JSON_INTEGER, what);
            need_key(kid, "failed", JSON_INTEGER, what);
            need_key(kid, "rss_kb", JSON_INTEGER, what);
        }
    }
    H_ASSERT(found, "workers --json does not list node %s: '%.300s'", h_worker_node_id(w), out);
    json_decref(j);

    /* nothing listens: exit 4 within a few seconds */
    char dead[64];
    snprintf(dead, sizeof dead, "tcp://127.0.0.1:%d", free_port());
    rc = h_run_cli(out, OUTSZ, &ms, dead, "stats");
    H_ASSERT(rc == 4, "stats against %s: exit %d, expected 4", dead, rc);
    H_ASSERT(ms < 15000, "stats against a dead endpoint took %lld ms", (long long)ms);

    /* bad usage: exit 2 */
    rc = h_run_cli(out, OUTSZ, NULL, ep, "frobnicate");
    H_ASSERT(rc == 2, "unknown subcommand: exit %d, expected 2", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit");
    H_ASSERT(rc == 2, "submit without a name: exit %d, expected 2", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "[not json");
    H_ASSERT(rc == 2, "submit with bad JSON args: exit %d, expected 2", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "--priority", "10");
    H_ASSERT(rc == 2, "submit --priority 10: exit %d, expected 2", rc);
    rc = h_run_cli(out, OUTSZ, NULL, ep, "submit", "test.square", "--eta", "2026-11-25T18:00:00");
    H_ASSERT(rc == 2, "submit --eta without an offset: exit %d, expected 2", rc);

    /* test.hang still runs there: a warm shutdown would wait out the grace */
    h_worker_signal(w, SIGKILL);
    h_worker_wait_exit(w, 5000);
    taskq_client_destroy(&c);
    return 0;
}
