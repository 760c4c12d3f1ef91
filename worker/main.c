/*
 * main.c - taskq-worker: options -> supervisor_new -> supervisor_run.
 * `taskq-worker --child FD [--module PATH]...` is the hidden mode a freshly
 * forked child execs into (see pool.c); it is handled before anything else.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "child.h"
#include "tqlimits.h"
#include "proto.h"
#include "qspec.h"
#include "supervisor.h"
#include "taskfn.h"
#include "tlog.h"
#include "tmem.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: taskq-worker [options]\n"
            "  -n N                      child processes (default: online CPUs)\n"
            "  -Q, --queues Q[=W],...    queues to take tasks from, with weights 1..%d\n"
            "                            (default 1); e.g. -Q critical=6,default=3,low=1.\n"
            "                            For each free child the broker picks one of the\n"
            "                            non-empty queues by smooth weighted round-robin\n"
            "                            (none starves). Repeatable. Default: every queue,\n"
            "                            weight 1 each\n"
            "  --strict                  with -Q: always the first non-empty queue in -Q\n"
            "                            order (a later queue waits while an earlier one\n"
            "                            has work)\n"
            "  --prefetch N              tasks to hold beyond the idle children, queued\n"
            "                            locally for the next free child (default 0: a\n"
            "                            task is only taken when a child is free; more\n"
            "                            throughput for short tasks, but a queued task\n"
            "                            waits behind the running ones; busy children\n"
            "                            also get up to min(4, N / children) of them in\n"
            "                            advance)\n"
            "  --broker EP               broker endpoint (default: $TASKQ_BROKER, else %s)\n"
            "  --node-id ID              node id [A-Za-z0-9_.:-] (default: HOST.PID)\n"
            "  --time-limit S            default task time limit in seconds (0 = none)\n"
            "  --max-tasks-per-child N   recycle a child after N tasks (0 = never)\n"
            "  --grace S                 warm shutdown grace in seconds (default 30)\n"
            "  --module PATH             load tasks from a shared library (repeatable)\n"
            "  --heartbeat-ms N          heartbeat interval (default %d)\n"
            "  --liveness N              missed heartbeats before the broker is dead (default %d)\n"
            "  --log-level L             debug|info|warn|error\n"
            "  --help\n"
            "Priorities are the broker's: a task's priority (0..9, 9 runs first, default\n"
            "%d) is set when it is submitted, and the broker hands out the best task of\n"
            "the chosen queue (priority, then submission order). The worker has no\n"
            "priority option of its own.\n",
            TQ_WEIGHT_MAX, TASKQ_DEFAULT_BROKER, TQ_DEFAULT_HEARTBEAT_MS, TQ_DEFAULT_LIVENESS,
            TQ_DEFAULT_PRIORITY);
}

static int child_mode(int argc, char **argv)
{
    char *end;
    long fd = strtol(argv[2], &end, 10);
    if (*end || fd < 0 || fd > 65535)
        _exit(2);
    const char **mods = xcalloc((size_t)argc, sizeof *mods);
    size_t n = 0;
    for (int i = 3; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--module"))
            mods[n++] = argv[i + 1];
    child_main((int)fd, mods, n); /* never returns */
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_secs(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v) || v < 0 || v > 1e9)
        return false;
    *ms = (int64_t)llround(v * 1000.0);
    return true;
}

/* The first endpoint of a comma-separated list (copied). */
static char *first_endpoint(const char *list)
{
    size_t n = strcspn(list, ",");
    while (n > 0 && list[n - 1] == ' ')
        n--;
    return xstrndup(list, n);
}

enum { OPT_BROKER = 256, OPT_NODE, OPT_TLIMIT, OPT_MAXT, OPT_GRACE, OPT_MODULE, OPT_HB,
       OPT_LIVE, OPT_LOG, OPT_PREFETCH, OPT_STRICT, OPT_HELP };

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--child"))
        return child_mode(argc, argv);
    tlog_init("worker");
    static const struct option longopts[] = {
        {"broker", required_argument, 0, OPT_BROKER},
        {"node-id", required_argument, 0, OPT_NODE},
        {"time-limit", required_argument, 0, OPT_TLIMIT},
        {"max-tasks-per-child", required_argument, 0, OPT_MAXT},
        {"grace", required_argument, 0, OPT_GRACE},
        {"module", required_argument, 0, OPT_MODULE},
        {"heartbeat-ms", required_argument, 0, OPT_HB},
        {"liveness", required_argument, 0, OPT_LIVE},
        {"log-level", required_argument, 0, OPT_LOG},
        {"prefetch", required_argument, 0, OPT_PREFETCH},
        {"queues", required_argument, 0, 'Q'},
        {"strict", no_argument, 0, OPT_STRICT},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    supervisor_opts_t o = {
        .nchildren = cpus > 0 ? (size_t)cpus : 1,
        .grace_ms = 30000,
        .heartbeat_ms = TQ_DEFAULT_HEARTBEAT_MS,
        .liveness = TQ_DEFAULT_LIVENESS,
        .exe = "/proc/self/exe",
    };
    if (o.nchildren > TQ_SLOTS_MAX)
        o.nchildren = TQ_SLOTS_MAX;
    const char **modules = xcalloc((size_t)argc, sizeof *modules);
    qspec_t *queues = xcalloc(1, sizeof *queues);
    char qerr[256];
    char *broker = NULL, *node = NULL;
    int c, rc = 2;
    uint64_t u;
    while ((c = getopt_long(argc, argv, "n:Q:", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (!parse_u64(optarg, TQ_SLOTS_MAX, &u) || u == 0) {
                fprintf(stderr, "taskq-worker: -n: expected 1..%d\n", TQ_SLOTS_MAX);
                goto out;
            }
            o.nchildren = (size_t)u;
            break;
        case 'Q':
            if (qspec_parse(queues, optarg, qerr, sizeof qerr) != TASKQ_OK) {
                fprintf(stderr, "taskq-worker: -Q: %s\n", qerr);
                goto out;
            }
            break;
        case OPT_STRICT:
            o.strict = true;
            break;
        case OPT_PREFETCH:
            if (!parse_u64(optarg, TQ_LEASES_MAX - 1, &u)) {
                fprintf(stderr, "taskq-worker: --prefetch: expected 0..%d\n", TQ_LEASES_MAX - 1);
                goto out;
            }
            o.prefetch = (size_t)u;
            break;
        case OPT_BROKER:
            free(broker);
            broker = first_endpoint(optarg);
            break;
        case OPT_NODE:
            free(node);
            node = xstrdup(optarg);
            break;
        case OPT_TLIMIT:
            if (!parse_secs(optarg, &o.time_limit_ms)) {
                fprintf(stderr, "taskq-worker: --time-limit: expected seconds >= 0\n");
                goto out;
            }
            break;
        case OPT_MAXT:
            if (!parse_u64(optarg, UINT64_MAX, &o.max_tasks_per_child)) {
                fprintf(stderr, "taskq-worker: --max-tasks-per-child: expected N >= 0\n");
                goto out;
            }
            break;
        case OPT_GRACE:
            if (!parse_secs(optarg, &o.grace_ms)) {
                fprintf(stderr, "taskq-worker: --grace: expected seconds >= 0\n");
                goto out;
            }
            break;
        case OPT_MODULE:
            modules[o.nmodules++] = optarg;
            break;
        case OPT_HB:
            if (!parse_u64(optarg, 3600000, &u) || u == 0) {
                fprintf(stderr, "taskq-worker: --heartbeat-ms: expected 1..3600000\n");
                goto out;
            }
            o.heartbeat_ms = (int64_t)u;
            break;
        case OPT_LIVE:
            if (!parse_u64(optarg, 1000, &u) || u == 0) {
                fprintf(stderr, "taskq-worker: --liveness: expected 1..1000\n");
                goto out;
            }
            o.liveness = (uint32_t)u;
            break;
        case OPT_LOG: {
            static const char *lv[] = {"debug", "info", "warn", "error"};
            int l = -1;
            for (int i = 0; i < 4; i++)
                if (!strcasecmp(optarg, lv[i]))
                    l = i;
            if (l < 0) {
                fprintf(stderr, "taskq-worker: --log-level: debug|info|warn|error\n");
                goto out;
            }
            tlog_set_level(l);
            break;
        }
        case OPT_HELP:
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "taskq-worker: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    if (o.strict && queues->n == 0) {
        fprintf(stderr, "taskq-worker: --strict needs -Q (the queue order it follows)\n");
        goto out;
    }
    o.queues = queues;
    if (!broker) {
        const char *env = getenv("TASKQ_BROKER");
        broker = first_endpoint(env && *env ? env : TASKQ_DEFAULT_BROKER);
    }
    if (!node) {
        char host[TQ_HOST_MAX + 1] = "localhost";
        gethostname(host, sizeof host - 1);
        host[TQ_NODE_MAX - 12] = '\0'; /* room for ".PID" */
        for (char *p = host; *p; p++)
            if (!proto_name_is_valid(p, 1, 1))
                *p = '_';
        /* host holds at most TQ_NODE_MAX - 12 chars, so "%.*s.PID" fits */
        char buf[TQ_NODE_MAX + 1];
        snprintf(buf, sizeof buf, "%.*s.%d", TQ_NODE_MAX - 12, host, (int)getpid());
        node = xstrdup(buf);
    }
    if (!proto_name_is_valid(node, strlen(node), TQ_NODE_MAX)) {
        fprintf(stderr, "taskq-worker: --node-id: expected [A-Za-z0-9_.:-]{1,%d}\n",
                TQ_NODE_MAX);
        goto out;
    }
    /* load every module once here, before any child or ZeroMQ thread exists:
     * a bad path fails the start, not every child forever */
    taskfn_t *check = taskfn_new();
    bool mods_ok = builtin_register(check) == TASKQ_OK;
    for (size_t i = 0; i < o.nmodules && mods_ok; i++)
        mods_ok = taskfn_load(check, modules[i]) == TASKQ_OK;
    size_t ntasks = taskfn_count(check);
    taskfn_destroy(&check);
    if (!mods_ok)
        goto out;
    tlog_info("%zu task(s) available from built-ins and %zu module(s)", ntasks, o.nmodules);
    if (o.nchildren + o.prefetch > TQ_LEASES_MAX) {
        /* every held task is a lease listed in HELLO/HEARTBEAT */
        fprintf(stderr, "taskq-worker: -n + --prefetch: at most %d\n", TQ_LEASES_MAX);
        goto out;
    }
    o.broker = broker;
    o.node_id = node;
    o.modules = modules;
    taskq_err_t err = TASKQ_OK;
    supervisor_t *sup = supervisor_new(&o, &err);
    if (!sup) {
        tlog_error("cannot start: %s", taskq_strerror(err));
        rc = 1;
        goto out;
    }
    rc = supervisor_run(sup);
    supervisor_destroy(&sup);
out:
    free(queues);
    free(modules);
    free(broker);
    free(node);
    return rc;
}
