/* main.c - taskq-broker: options -> broker_new -> broker_run -> broker_destroy.
 * Exit codes: 0 clean stop, 1 runtime failure (cannot bind, cannot open the
 * store), 2 bad usage. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "tlog.h"

/* The only global: set by SIGINT/SIGTERM, read by the loop. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: taskq-broker [options]\n"
            "  --bind EP            endpoint to bind (default tcp://127.0.0.1:5555;\n"
            "                       tcp://127.0.0.1:* picks a free port)\n"
            "  --db PATH            SQLite database file (default ./taskq.db)\n"
            "  --store sqlite:PATH  same as --db PATH\n"
            "  --durability MODE    full (default): synchronous=FULL, a committed task\n"
            "                       survives power loss; normal: synchronous=NORMAL (WAL),\n"
            "                       survives a crash of the process (kill -9) but the last\n"
            "                       commits may be lost on power loss\n"
            "  --heartbeat-ms N     heartbeat interval (default 1000)\n"
            "  --liveness N         missed heartbeats before a node is dead (default 3)\n"
            "  --lease-ms N         a lease not renewed for N ms expires (default 10000)\n"
            "  --max-attempts N     default attempts per task (default 3)\n"
            "  --retention S        seconds a succeeded, revoked or expired task is kept\n"
            "                       (default 86400; a submit's --result-ttl wins)\n"
            "  --failed-ttl S       seconds a failed task is kept (default 604800: 7 days)\n"
            "  --max-pending N      queued + running tasks beyond which a SUBMIT is refused\n"
            "                       whole with ERROR EBUSY (retry later); default 1000000,\n"
            "                       0 = no limit\n"
            "  --routes FILE        routing rules, one 'PATTERN QUEUE' per line (task-name\n"
            "                       glob with *, first match wins) for submits that name\n"
            "                       no queue; default: every task to queue 'default'\n"
            "  --strict-queues      refuse a submit to an unknown queue (ENOQUEUE) instead\n"
            "                       of creating the queue\n"
            "  --schedules FILE     JSON array of periodic schedules to add or redefine at\n"
            "                       start (keys as in `taskq schedule add`; docs/tasks.md)\n"
            "  --test-clock[=MS]    tests only: the broker clock (ETAs, retries, expiry,\n"
            "                       schedules, rate buckets) starts at MS unix ms (default\n"
            "                       now) and moves only by `taskq clock advance|set`\n"
            "  --id ID              broker id (default broker-HOSTNAME)\n"
            "  --log-level L        debug|info|warn|error (default info, or $TASKQ_LOG)\n"
            "  --help               this text\n"
            "On start it prints one line on stdout: ready endpoint=<endpoint>.\n"
            "Exit: 0 clean stop (SIGINT/SIGTERM), 1 runtime failure, 2 bad usage.\n");
}

static int parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "taskq-broker: %s: expected an integer in [%lld, %lld], got '%s'\n", opt,
                (long long)min, (long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    tlog_init("broker");
    static char default_id[128];
    char host[64] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(default_id, sizeof default_id, "broker-%s", host);

    broker_config_t cfg = {
        .bind = "tcp://127.0.0.1:5555",
        .db = "./taskq.db",
        .durability = STORE_DURABILITY_FULL,
        .heartbeat_ms = 1000,
        .liveness = 3,
        .lease_ms = 10000,
        .max_attempts = 3,
        .retention_ms = 86400LL * 1000,
        .failed_ttl_ms = TQ_DEFAULT_FAILED_TTL_MS,
        .max_pending = 1000000,
        .id = default_id,
        .stop = &g_stop,
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        char name[32];
        const char *eq = strchr(a, '=');
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "taskq-broker: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        /* flags without a value */
        if (!strcmp(a, "--strict-queues")) {
            cfg.strict_queues = true;
            continue;
        }
        if (!strcmp(a, "--test-clock")) {
            cfg.test_clock = true;
            continue;
        }
        if (eq && (size_t)(eq - a) < sizeof name) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            v = eq + 1;
        } else {
            snprintf(name, sizeof name, "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "taskq-broker: %s needs a value\n", a);
                return 2;
            }
            v = argv[++i];
        }
        int64_t n = 0;
        int bad = 0;
        if (!strcmp(name, "--bind")) {
            cfg.bind = v;
        } else if (!strcmp(name, "--db")) {
            cfg.db = v;
        } else if (!strcmp(name, "--store")) {
            if (strncmp(v, "sqlite:", 7) != 0 || !v[7]) {
                fprintf(stderr, "taskq-broker: --store: expected sqlite:PATH\n");
                return 2;
            }
            cfg.db = v + 7;
        } else if (!strcmp(name, "--durability")) {
            if (!strcmp(v, "full"))
                cfg.durability = STORE_DURABILITY_FULL;
            else if (!strcmp(v, "normal"))
                cfg.durability = STORE_DURABILITY_NORMAL;
            else
                bad = 1;
        } else if (!strcmp(name, "--heartbeat-ms")) {
            bad = parse_i64(name, v, 10, 3600000, &cfg.heartbeat_ms);
        } else if (!strcmp(name, "--liveness")) {
            bad = parse_i64(name, v, 1, 1000, &n);
            cfg.liveness = (uint32_t)n;
        } else if (!strcmp(name, "--lease-ms")) {
            bad = parse_i64(name, v, 10, 86400000, &cfg.lease_ms);
        } else if (!strcmp(name, "--max-attempts")) {
            bad = parse_i64(name, v, 1, TQ_ATTEMPTS_MAX, &n);
            cfg.max_attempts = (uint32_t)n;
        } else if (!strcmp(name, "--retention")) {
            bad = parse_i64(name, v, 0, 100LL * 365 * 86400, &n);
            cfg.retention_ms = n * 1000;
        } else if (!strcmp(name, "--max-pending")) {
            bad = parse_i64(name, v, 0, INT64_MAX, &n);
            cfg.max_pending = (uint64_t)n;
        } else if (!strcmp(name, "--failed-ttl")) {
            bad = parse_i64(name, v, 1, TQ_TTL_MAX_MS / 1000, &n);
            cfg.failed_ttl_ms = n * 1000;
        } else if (!strcmp(name, "--routes")) {
            cfg.routes_path = v;
        } else if (!strcmp(name, "--schedules")) {
            cfg.schedules_path = v;
        } else if (!strcmp(name, "--test-clock")) {
            cfg.test_clock = true;
            bad = parse_i64(name, v, 1, INT64_MAX / 4, &cfg.test_clock_start);
        } else if (!strcmp(name, "--id")) {
            if (!proto_name_is_valid(v, strlen(v), 63)) {
                fprintf(stderr, "taskq-broker: --id: [A-Za-z0-9_.:-]{1,63} expected\n");
                return 2;
            }
            cfg.id = v;
        } else if (!strcmp(name, "--log-level")) {
            int lv = !strcmp(v, "debug")  ? TLOG_DEBUG
                     : !strcmp(v, "info") ? TLOG_INFO
                     : !strcmp(v, "warn") ? TLOG_WARN
                     : !strcmp(v, "error") ? TLOG_ERROR
                                           : -1;
            if (lv < 0)
                bad = 1;
            else
                tlog_set_level(lv);
        } else {
            fprintf(stderr, "taskq-broker: unknown option %s\n", name);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "taskq-broker: bad value for %s: '%s'\n", name, v);
            return 2;
        }
    }
    if (!proto_name_is_valid(cfg.id, strlen(cfg.id), 63)) /* a hostname with odd characters */
        snprintf(default_id, sizeof default_id, "broker");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    taskq_err_t err;
    broker_t *b = broker_new(&cfg, &err);
    if (!b) {
        fprintf(stderr, "taskq-broker: cannot start (bind %s, store %s): %s\n", cfg.bind, cfg.db,
                taskq_strerror(err));
        return 1;
    }
    err = broker_run(b);
    broker_destroy(&b);
    tlog_info("stopped%s", err ? " after an error" : " cleanly");
    return err ? 1 : 0;
}
