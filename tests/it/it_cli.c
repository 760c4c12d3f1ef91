/* it_cli: the `taskq` CLI end to end: exit codes (0 ok, 1 task failed,
 * 2 usage, 3 timeout, 4 broker unreachable) and the documented JSON of
 * `status --json` and `workers --json`. The broker is passed through
 * $TASKQ_BROKER. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
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
    json_decref(j);

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

    /* test.hang still runs there: a warm shutdown would wait out the grace */
    h_worker_signal(w, SIGKILL);
    h_worker_wait_exit(w, 5000);
    taskq_client_destroy(&c);
    return 0;
}
