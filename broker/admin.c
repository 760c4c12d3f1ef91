/* admin.c - ADMIN requests: queues, limits, schedules, attempts and the test
 * clock (docs/protocol.md, "ADMIN"). Every param is peer input: read with
 * the bounded proto_obj_* readers, range-checked, and answered with a typed
 * ERROR naming the field. Changes go to the store in the turn's
 * transaction; the ADMIN_REPLY leaves after the commit like every reply. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "sched.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    taskq_id_t *v;
    size_t n, cap;
} idvec_t;

static void collect_id(const taskq_id_t *id, void *arg)
{
    idvec_t *x = arg;
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 64;
        x->v = xrealloc(x->v, x->cap * sizeof *x->v);
    }
    x->v[x->n++] = *id;
}

static void thist_event_rerun(const taskq_id_t *id)
{
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(id, ids);
        thist_event("accept %s", ids);
    }
}

typedef struct {
    broker_t *b;
    const uint8_t *from;
    size_t flen;
    uint64_t req;
    const msgpack_object *p; /* params map */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool answered;
} admin_t;

static void fail(admin_t *a, taskq_err_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(admin_t *a, taskq_err_t code, const char *fmt, ...)
{
    char text[TQ_MESSAGE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (code == TASKQ_ESTORE)
        a->b->turn_failed = true;
    out_error(a->b, a->from, a->flen, a->req, code, text);
    a->answered = true;
}

static void reply(admin_t *a)
{
    proto_msg_t m;
    proto_msg_init(&m, PROTO_ADMIN_REPLY);
    m.u.admin_reply.req = a->req;
    m.u.admin_reply.data.ptr = (const uint8_t *)a->sb.data;
    m.u.admin_reply.data.len = (uint32_t)a->sb.size;
    out_queue(a->b, a->from, a->flen, &m, OUT_REPLY, a->req);
    a->answered = true;
}

static void empty_reply(admin_t *a)
{
    msgpack_pack_map(&a->pk, 0);
    reply(a);
}

static void kv_str(admin_t *a, const char *k, const char *v)
{
    proto_pack_key(&a->pk, k);
    proto_pack_str(&a->pk, proto_str(v ? v : ""));
}
static void kv_u64(admin_t *a, const char *k, uint64_t v)
{
    proto_pack_key(&a->pk, k);
    msgpack_pack_uint64(&a->pk, v);
}
static void kv_i64(admin_t *a, const char *k, int64_t v)
{
    proto_pack_key(&a->pk, k);
    msgpack_pack_int64(&a->pk, v);
}
static void kv_bool(admin_t *a, const char *k, bool v)
{
    proto_pack_key(&a->pk, k);
    if (v)
        msgpack_pack_true(&a->pk);
    else
        msgpack_pack_false(&a->pk);
}
static void kv_f64(admin_t *a, const char *k, double v)
{
    proto_pack_key(&a->pk, k);
    msgpack_pack_double(&a->pk, v);
}

/* Reads a required string param into buf; false (answered) if missing/bad. */
static bool need_str(admin_t *a, const char *key, size_t max, char *buf, size_t bufsz)
{
    proto_str_t s = {0};
    taskq_err_t e = proto_obj_str(a->p, key, max, &s);
    if (e != TASKQ_OK || s.len == 0) {
        fail(a, TASKQ_EINVAL, "%s: %s", key, e == TASKQ_ENOTFOUND || s.len == 0 ? "required" : "must be a string of at most the allowed length");
        return false;
    }
    proto_str_copy(buf, bufsz, s);
    return true;
}

static bool opt_str(admin_t *a, const char *key, size_t max, char *buf, size_t bufsz)
{
    proto_str_t s = {0};
    taskq_err_t e = proto_obj_str(a->p, key, max, &s);
    if (e == TASKQ_ENOTFOUND) {
        buf[0] = '\0';
        return true;
    }
    if (e != TASKQ_OK) {
        fail(a, TASKQ_EINVAL, "%s: must be a string of at most %zu bytes", key, max);
        return false;
    }
    proto_str_copy(buf, bufsz, s);
    return true;
}

static bool opt_u64(admin_t *a, const char *key, uint64_t max, uint64_t *out)
{
    taskq_err_t e = proto_obj_u64(a->p, key, out);
    if (e == TASKQ_ENOTFOUND)
        return true;
    if (e != TASKQ_OK || *out > max) {
        fail(a, TASKQ_EINVAL, "%s: must be an integer in [0, %llu]", key, (unsigned long long)max);
        return false;
    }
    return true;
}

static bool need_queue(admin_t *a, char *q)
{
    if (!need_str(a, "queue", TQ_QUEUE_MAX, q, TQ_QUEUE_MAX + 1))
        return false;
    if (!proto_queue_is_valid(q, strlen(q))) {
        fail(a, TASKQ_ENAME, "queue: '%s' is not [a-z0-9_.-]{1,%d}", q, TQ_QUEUE_MAX);
        return false;
    }
    return true;
}

/* ---- queues ------------------------------------------------------------ */

static void op_queues(admin_t *a)
{
    broker_t *b = a->b;
    msgpack_pack_map(&a->pk, 1);
    proto_pack_key(&a->pk, "queues");
    msgpack_pack_array(&a->pk, b->nqueues);
    for (size_t i = 0; i < b->nqueues; i++) {
        const bqueue_t *q = b->queue_list[i];
        uint64_t c[TASKQ_NSTATES];
        store_queue_counts(b->store, q->name, c);
        int64_t oldest = 0;
        if (c[TASKQ_STATE_QUEUED] && store_queue_oldest(b->store, q->name, &oldest) != TASKQ_OK) {
            fail(a, TASKQ_ESTORE, "store failure");
            return;
        }
        uint32_t slots = 0;
        size_t cur = 0;
        registry_node_t *n;
        while ((n = registry_next(b->nodes, &cur)) != NULL)
            if (!n->stopping && registry_node_serves(n, q->name))
                slots += n->slots;
        msgpack_pack_map(&a->pk, 6);
        kv_str(a, "name", q->name);
        kv_bool(a, "paused", q->paused);
        kv_u64(a, "max_pending", q->max_pending);
        proto_pack_key(&a->pk, "counts");
        msgpack_pack_map(&a->pk, TASKQ_NSTATES);
        for (int s = 0; s < TASKQ_NSTATES; s++)
            kv_u64(a, taskq_state_name(s), c[s]);
        int64_t age = oldest ? broker_now(b) - oldest : 0;
        kv_i64(a, "oldest_queued_ms", age > 0 ? age : 0);
        kv_u64(a, "slots", slots);
    }
    reply(a);
}

static void op_queue_pause(admin_t *a)
{
    char name[TQ_QUEUE_MAX + 1];
    if (!need_queue(a, name))
        return;
    bool paused = true;
    if (proto_obj_bool(a->p, "paused", &paused) == TASKQ_EPROTO) {
        fail(a, TASKQ_EINVAL, "paused: must be a boolean");
        return;
    }
    bqueue_t *q = handlers_queue_ensure(a->b, name, strlen(name));
    if (!q) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    store_queue_t sq = {.name = q->name, .paused = paused, .max_pending = q->max_pending};
    if (store_queue_set(a->b->store, &sq) != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    q->paused = paused;
    tlog_info("queue %s %s", q->name, paused ? "paused" : "resumed");
    empty_reply(a);
}

static void op_queue_set(admin_t *a)
{
    char name[TQ_QUEUE_MAX + 1];
    if (!need_queue(a, name))
        return;
    uint64_t maxp = 0;
    if (proto_obj_u64(a->p, "max_pending", &maxp) != TASKQ_OK) {
        fail(a, TASKQ_EINVAL, "max_pending: required, an integer >= 0");
        return;
    }
    bqueue_t *q = handlers_queue_ensure(a->b, name, strlen(name));
    if (!q) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    store_queue_t sq = {.name = q->name, .paused = q->paused, .max_pending = maxp};
    if (store_queue_set(a->b->store, &sq) != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    q->max_pending = maxp;
    empty_reply(a);
}

/* ---- limits -------------------------------------------------------------- */

static bool key_valid(const char *k)
{
    if (strncmp(k, "task:", 5) == 0)
        return proto_name_is_valid(k + 5, strlen(k + 5), TQ_NAME_MAX);
    if (strncmp(k, "queue:", 6) == 0)
        return proto_queue_is_valid(k + 6, strlen(k + 6));
    return false;
}

static void op_limit_set(admin_t *a)
{
    char key[TQ_LIMIT_KEY_MAX + 1];
    if (!need_str(a, "key", TQ_LIMIT_KEY_MAX, key, sizeof key))
        return;
    if (!key_valid(key)) {
        fail(a, TASKQ_EINVAL, "key: '%s' is not task:NAME or queue:QUEUE", key);
        return;
    }
    double rate = 0;
    uint64_t burst = 0, maxr = 0;
    taskq_err_t e = proto_obj_f64(a->p, "rate", &rate);
    if (e == TASKQ_EPROTO || !isfinite(rate) || rate < 0 || rate > 1e6) {
        fail(a, TASKQ_EINVAL, "rate: must be a number of dispatches per second in [0, 1e6]");
        return;
    }
    if (!opt_u64(a, "burst", 1000000, &burst) || !opt_u64(a, "max_running", 1000000, &maxr))
        return;
    if (rate == 0 && maxr == 0) {
        fail(a, TASKQ_EINVAL, "a limit needs rate > 0 or max_running > 0");
        return;
    }
    limit_t *l = limits_set(a->b->limits, key, rate, (uint32_t)burst, (uint32_t)maxr,
                            broker_now(a->b));
    store_limit_t sl = {.key = l->key,
                        .rate = l->rate,
                        .burst = l->burst,
                        .max_running = l->max_running,
                        .tokens = l->tokens,
                        .tokens_at = l->tokens_at,
                        .paused_until = l->paused_until};
    if (store_limit_put(a->b->store, &sl) != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    l->dirty = false;
    tlog_info("limit %s: rate %g/s burst %u max_running %u", key, rate, (unsigned)burst,
              (unsigned)maxr);
    empty_reply(a);
}

static void op_limit_rm(admin_t *a)
{
    char key[TQ_LIMIT_KEY_MAX + 1];
    if (!need_str(a, "key", TQ_LIMIT_KEY_MAX, key, sizeof key))
        return;
    taskq_err_t e = store_limit_rm(a->b->store, key);
    if (e == TASKQ_ENOTFOUND) {
        fail(a, TASKQ_ENOTFOUND, "no limit on %s", key);
        return;
    }
    if (e != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    limits_rm(a->b->limits, key);
    empty_reply(a);
}

static void op_limits(admin_t *a)
{
    broker_t *b = a->b;
    int64_t now = broker_now(b);
    msgpack_pack_map(&a->pk, 1);
    proto_pack_key(&a->pk, "limits");
    msgpack_pack_array(&a->pk, limits_count(b->limits));
    size_t cur = 0;
    limit_t *l;
    while ((l = limits_next(b->limits, &cur)) != NULL) {
        msgpack_pack_map(&a->pk, 7);
        kv_str(a, "key", l->key);
        kv_f64(a, "rate", l->rate);
        kv_u64(a, "burst", l->burst);
        kv_u64(a, "max_running", l->max_running);
        kv_u64(a, "running", lease_key_count(b->leases, l->key));
        kv_f64(a, "tokens", limits_tokens_now(l, now));
        kv_i64(a, "paused_until", l->paused_until > now ? l->paused_until : 0);
    }
    reply(a);
}

/* ---- schedules --------------------------------------------------------------- */

static int enum_of(const char *s, const char *const *names, int n, int dflt)
{
    if (!s[0])
        return dflt;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static const char *const OVERLAP[] = {"skip", "allow"};
static const char *const CATCHUP[] = {"none", "last", "all"};

static void op_schedule_add(admin_t *a)
{
    char name[TQ_SCHED_NAME_MAX + 1], cron[TQ_CRON_MAX + 1], task[TQ_NAME_MAX + 1];
    char queue[TQ_QUEUE_MAX + 1], tz[TQ_TZ_MAX + 1], ov[16], cu[16];
    if (!need_str(a, "name", TQ_SCHED_NAME_MAX, name, sizeof name) ||
        !need_str(a, "cron", TQ_CRON_MAX, cron, sizeof cron) ||
        !need_str(a, "task", TQ_NAME_MAX, task, sizeof task) ||
        !opt_str(a, "queue", TQ_QUEUE_MAX, queue, sizeof queue) ||
        !opt_str(a, "tz", TQ_TZ_MAX, tz, sizeof tz) || !opt_str(a, "overlap", 15, ov, sizeof ov) ||
        !opt_str(a, "catchup", 15, cu, sizeof cu))
        return;
    uint64_t prio = UINT64_MAX, maxa = 0;
    if (proto_obj_get(a->p, "priority") && !opt_u64(a, "priority", TQ_PRIORITY_MAX, &prio))
        return;
    if (!opt_u64(a, "max_attempts", TQ_ATTEMPTS_MAX, &maxa))
        return;
    proto_bin_t args = {0};
    taskq_err_t e = proto_obj_bin(a->p, "args", TQ_ARGS_MAX, &args);
    if (e == TASKQ_EPROTO ||
        (args.len && proto_precheck(args.ptr, args.len, TQ_MAX_DEPTH) != TASKQ_OK)) {
        fail(a, TASKQ_EINVAL, "args: must be one msgpack value (bin)");
        return;
    }
    store_schedule_t def = {.name = name,
                            .cron = cron,
                            .task = task,
                            .queue = queue,
                            .tz = tz,
                            .args = args,
                            .priority = prio == UINT64_MAX ? -1 : (int32_t)prio,
                            .max_attempts = (uint32_t)maxa,
                            .overlap = enum_of(ov, OVERLAP, 2, 0),
                            .catchup = enum_of(cu, CATCHUP, 3, 1)};
    if (def.overlap < 0 || def.catchup < 0) {
        fail(a, TASKQ_EINVAL, "%s", def.overlap < 0 ? "overlap: skip or allow"
                                                    : "catchup: none, last or all");
        return;
    }
    char err[256];
    int64_t next = 0;
    e = sched_add(a->b->sched, a->b, &def, false, broker_now(a->b), err, sizeof err, &next);
    if (e != TASKQ_OK) {
        fail(a, e, "%s", err);
        return;
    }
    tlog_info("schedule %s added: '%s' %s (tz %s), next fire at %lld", name, cron, task,
              tz[0] ? tz : "UTC", (long long)next);
    msgpack_pack_map(&a->pk, 1);
    kv_i64(a, "next_at", next);
    reply(a);
}

static void op_schedule_ctl(admin_t *a, const char *op)
{
    char name[TQ_SCHED_NAME_MAX + 1];
    if (!need_str(a, "name", TQ_SCHED_NAME_MAX, name, sizeof name))
        return;
    taskq_err_t e;
    taskq_id_t id = {{0}};
    if (!strcmp(op, "schedule_rm"))
        e = sched_rm(a->b->sched, a->b, name);
    else if (!strcmp(op, "schedule_run_now"))
        e = sched_run_now(a->b->sched, a->b, name, broker_now(a->b), &id);
    else
        e = sched_set_paused(a->b->sched, a->b, name, !strcmp(op, "schedule_pause"));
    if (e == TASKQ_ENOTFOUND) {
        fail(a, e, "no schedule named %s", name);
        return;
    }
    if (e != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    if (!strcmp(op, "schedule_run_now")) {
        msgpack_pack_map(&a->pk, 1);
        proto_pack_key(&a->pk, "id");
        msgpack_pack_bin_with_body(&a->pk, id.b, sizeof id.b);
        reply(a);
    } else {
        empty_reply(a);
    }
}

static void pack_schedule(const store_schedule_t *s, void *arg)
{
    admin_t *a = arg;
    msgpack_pack_map(&a->pk, 16);
    kv_str(a, "name", s->name);
    kv_str(a, "cron", s->cron);
    kv_str(a, "task", s->task);
    proto_pack_key(&a->pk, "args");
    msgpack_pack_bin_with_body(&a->pk, s->args.ptr, s->args.len);
    kv_str(a, "queue", s->queue);
    kv_i64(a, "priority", s->priority);
    kv_str(a, "tz", s->tz);
    kv_str(a, "overlap", OVERLAP[s->overlap == 1]);
    kv_str(a, "catchup", CATCHUP[s->catchup >= 0 && s->catchup <= 2 ? s->catchup : 1]);
    kv_u64(a, "max_attempts", s->max_attempts);
    kv_bool(a, "paused", s->paused);
    kv_i64(a, "next_at", s->next_at == INT64_MAX ? 0 : s->next_at);
    kv_i64(a, "last_fire_at", s->last_fire_at);
    proto_pack_key(&a->pk, "last_task_id");
    if (taskq_id_is_zero(&s->last_task_id))
        msgpack_pack_nil(&a->pk);
    else
        msgpack_pack_bin_with_body(&a->pk, s->last_task_id.b, sizeof s->last_task_id.b);
    kv_u64(a, "fires", s->fires);
    kv_u64(a, "skipped", s->skipped);
}

static void count_schedule(const store_schedule_t *s, void *arg)
{
    (void)s;
    (*(size_t *)arg)++;
}

static void op_schedules(admin_t *a)
{
    size_t n = 0;
    sched_list(a->b->sched, count_schedule, &n);
    msgpack_pack_map(&a->pk, 1);
    proto_pack_key(&a->pk, "schedules");
    msgpack_pack_array(&a->pk, n);
    sched_list(a->b->sched, pack_schedule, a);
    reply(a);
}

/* ---- attempts, clock ----------------------------------------------------- */

typedef struct {
    admin_t *a;
    size_t n;
    bool packing;
} attempts_t;

static void pack_attempt(const store_attempt_t *x, void *arg)
{
    attempts_t *t = arg;
    t->n++;
    if (!t->packing)
        return;
    admin_t *a = t->a;
    msgpack_pack_map(&a->pk, 8);
    kv_u64(a, "attempt", x->attempt);
    kv_str(a, "worker", x->worker);
    kv_i64(a, "child_pid", x->child_pid);
    kv_i64(a, "started_at", x->started_at);
    kv_i64(a, "finished_at", x->finished_at);
    kv_str(a, "state", x->state);
    kv_str(a, "code", x->code);
    kv_str(a, "message", x->message);
}

static void op_attempts(admin_t *a)
{
    proto_bin_t idb = {0};
    if (proto_obj_bin(a->p, "id", 16, &idb) != TASKQ_OK || idb.len != 16) {
        fail(a, TASKQ_EINVAL, "id: required, bin 16");
        return;
    }
    taskq_id_t id;
    memcpy(id.b, idb.ptr, 16);
    attempts_t t = {.a = a};
    taskq_err_t e = store_attempts(a->b->store, &id, pack_attempt, &t);
    if (e == TASKQ_ENOTFOUND) {
        fail(a, e, "no such task");
        return;
    }
    if (e != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    msgpack_pack_map(&a->pk, 1);
    proto_pack_key(&a->pk, "attempts");
    msgpack_pack_array(&a->pk, t.n);
    t.packing = true;
    t.n = 0;
    if (store_attempts(a->b->store, &id, pack_attempt, &t) != TASKQ_OK) {
        a->sb.size = 0;
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    reply(a);
}

static void op_clock(admin_t *a)
{
    broker_t *b = a->b;
    if (!b->cfg.test_clock) {
        fail(a, TASKQ_EINVAL, "broker has no test clock (start it with --test-clock)");
        return;
    }
    uint64_t adv = 0, set = 0;
    if (!opt_u64(a, "advance_ms", (uint64_t)TQ_ETA_MAX_MS, &adv) ||
        !opt_u64(a, "set_ms", (uint64_t)INT64_MAX / 2, &set))
        return;
    int64_t now = set ? (int64_t)set : broker_now(b) + (int64_t)adv;
    if (now < broker_now(b)) {
        fail(a, TASKQ_EINVAL, "the test clock never goes back (now %lld)",
             (long long)broker_now(b));
        return;
    }
    broker_set_test_clock(b, now);
    tlog_info("test clock set to %lld", (long long)now);
    msgpack_pack_map(&a->pk, 1);
    kv_i64(a, "now", now);
    reply(a);
}

/* ---- lifecycle (issue 7) ------------------------------------------------ */

/* Reads "ids": [bin16...] (at most max) into a new array; *n = 0 if absent.
 * false (answered) if malformed. */
static bool read_ids(admin_t *a, const char *key, size_t max, taskq_id_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    const msgpack_object *o = proto_obj_get(a->p, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return true;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > max) {
        fail(a, TASKQ_EINVAL, "%s: an array of at most %zu task ids", key, max);
        return false;
    }
    uint32_t k = o->via.array.size;
    *ids = xcalloc(k ? k : 1, sizeof **ids);
    for (uint32_t i = 0; i < k; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type != MSGPACK_OBJECT_BIN || e->via.bin.size != 16) {
            free(*ids);
            *ids = NULL;
            fail(a, TASKQ_EINVAL, "%s[%u]: a task id is bin 16", key, i);
            return false;
        }
        memcpy((*ids)[i].b, e->via.bin.ptr, 16);
    }
    *n = k;
    return true;
}

static bool read_id(admin_t *a, const char *key, taskq_id_t *id, bool *has)
{
    proto_bin_t bin = {0};
    taskq_err_t e = proto_obj_bin(a->p, key, 16, &bin);
    *has = false;
    if (e == TASKQ_ENOTFOUND)
        return true;
    if (e != TASKQ_OK || bin.len != 16) {
        fail(a, TASKQ_EINVAL, "%s: a task / group id is bin 16", key);
        return false;
    }
    memcpy(id->b, bin.ptr, 16);
    *has = true;
    return true;
}

/* The selector params shared by revoke (bulk), failed and rerun. */
typedef struct {
    store_filter_t f;
    taskq_id_t group;
    char queue[TQ_QUEUE_MAX + 1], name[TQ_NAME_MAX + 1], code[TQ_CODE_MAX + 2];
} selector_t;

static bool read_selector(admin_t *a, selector_t *s)
{
    memset(s, 0, sizeof *s);
    bool has_group = false;
    if (!read_id(a, "group", &s->group, &has_group) ||
        !opt_str(a, "queue", TQ_QUEUE_MAX, s->queue, sizeof s->queue) ||
        !opt_str(a, "name", TQ_NAME_MAX, s->name, sizeof s->name) ||
        !opt_str(a, "code", TQ_CODE_MAX + 1, s->code, sizeof s->code))
        return false;
    s->f.group = has_group ? &s->group : NULL;
    s->f.queue = s->queue[0] ? s->queue : NULL;
    s->f.name = s->name[0] ? s->name : NULL;
    s->f.code = s->code[0] ? s->code : NULL;
    int64_t since = 0;
    if (proto_obj_i64(a->p, "since_ms", &since) == TASKQ_EPROTO) {
        fail(a, TASKQ_EINVAL, "since_ms: unix ms");
        return false;
    }
    s->f.since_ms = since;
    const msgpack_object *st = proto_obj_get(a->p, "states");
    if (st && st->type != MSGPACK_OBJECT_NIL) {
        if (st->type != MSGPACK_OBJECT_ARRAY || st->via.array.size > TASKQ_NSTATES) {
            fail(a, TASKQ_EINVAL, "states: an array of state names");
            return false;
        }
        for (uint32_t i = 0; i < st->via.array.size; i++) {
            const msgpack_object *e = &st->via.array.ptr[i];
            char nm[32] = "";
            if (e->type == MSGPACK_OBJECT_STR && e->via.str.size < sizeof nm)
                memcpy(nm, e->via.str.ptr, e->via.str.size);
            int v = taskq_state_from_name(nm);
            if (v < 0) {
                fail(a, TASKQ_EINVAL, "states[%u]: unknown state '%s'", i, nm);
                return false;
            }
            s->f.states |= 1u << v;
        }
    }
    return true;
}

static void op_revoke(admin_t *a)
{
    taskq_id_t *ids = NULL;
    size_t n = 0;
    if (!read_ids(a, "ids", TQ_REVOKE_MAX, &ids, &n))
        return;
    bool terminate = false;
    uint64_t grace = 0;
    char reason[TQ_REASON_MAX + 1];
    if (proto_obj_bool(a->p, "terminate", &terminate) == TASKQ_EPROTO ||
        !opt_u64(a, "grace_ms", 3600 * 1000, &grace) ||
        !opt_str(a, "reason", TQ_REASON_MAX, reason, sizeof reason)) {
        if (!a->answered)
            fail(a, TASKQ_EINVAL, "terminate: a boolean");
        free(ids);
        return;
    }
    if (!reason[0])
        snprintf(reason, sizeof reason, "revoked");
    if (n == 0) {
        selector_t s;
        if (!read_selector(a, &s)) {
            free(ids);
            return;
        }
        if (!s.f.group && !s.f.queue && !s.f.name) {
            fail(a, TASKQ_EINVAL, "revoke: give ids, or a group, queue or name to select");
            free(ids);
            return;
        }
        idvec_t v = {0};
        if (store_select(a->b->store, &s.f, false, collect_id, &v) != TASKQ_OK) {
            free(v.v);
            free(ids);
            fail(a, TASKQ_ESTORE, "store failure");
            return;
        }
        free(ids);
        ids = v.v;
        n = v.n;
    }
    uint64_t revoked = 0, terminal = 0, notfound = 0;
    int last_state = -1;
    for (size_t i = 0; i < n && !a->b->turn_failed; i++) {
        int prev = -1;
        taskq_err_t e = handlers_revoke(a->b, &ids[i], reason, terminate, (int64_t)grace, &prev);
        if (e == TASKQ_OK) {
            revoked++;
        } else if (e == TASKQ_ETERMINAL) {
            /* revoked a moment ago in this very operation, by the cascade
             * of an earlier one (a chord's callback, a chain's rest)? */
            proto_task_rec_t rec;
            if (n > 1 && prev == TASKQ_STATE_REVOKED &&
                store_get_task(a->b->store, &ids[i], &rec) == TASKQ_OK &&
                rec.finished_at == broker_now(a->b))
                revoked++;
            else
                terminal++, last_state = prev;
        }
        else if (e == TASKQ_ENOTFOUND)
            notfound++;
    }
    bool single = proto_obj_get(a->p, "ids") && n == 1;
    if (a->b->turn_failed) {
        fail(a, TASKQ_ESTORE, "store failure");
    } else if (single && terminal) {
        char ids1[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&ids[0], ids1);
        fail(a, TASKQ_ETERMINAL, "task %s is already %s", ids1, taskq_state_name(last_state));
    } else if (single && notfound) {
        fail(a, TASKQ_ENOTFOUND, "no such task");
    } else {
        msgpack_pack_map(&a->pk, 3);
        kv_u64(a, "revoked", revoked);
        kv_u64(a, "terminal", terminal);
        kv_u64(a, "not_found", notfound);
        reply(a);
    }
    free(ids);
}

static void pack_member_id(const store_member_t *m, void *arg)
{
    admin_t *a = arg;
    msgpack_pack_bin_with_body(&a->pk, m->id.b, 16);
}

static void op_group(admin_t *a)
{
    taskq_id_t id;
    bool has = false;
    if (!read_id(a, "id", &id, &has))
        return;
    if (!has) {
        fail(a, TASKQ_EINVAL, "id: required");
        return;
    }
    bool members = false;
    proto_obj_bool(a->p, "members", &members);
    store_group_t g;
    taskq_err_t e = store_group_get(a->b->store, &id, &g);
    if (e == TASKQ_ENOTFOUND) {
        fail(a, e, handlers_is_purged(a->b, &id) ? "group purged" : "no such group");
        return;
    }
    if (e != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    int cb_state = -1;
    if (g.has_callback) {
        proto_task_rec_t rec;
        if (store_get_task(a->b->store, &g.callback, &rec) == TASKQ_OK)
            cb_state = rec.state;
    }
    msgpack_pack_map(&a->pk, members ? 9 : 8);
    proto_pack_key(&a->pk, "id");
    msgpack_pack_bin_with_body(&a->pk, g.id.b, 16);
    kv_u64(a, "total", g.total);
    kv_u64(a, "succeeded", g.succeeded);
    kv_u64(a, "failed", g.failed);
    kv_u64(a, "remaining", g.total - g.succeeded - g.failed);
    proto_pack_key(&a->pk, "callback");
    if (g.has_callback)
        msgpack_pack_bin_with_body(&a->pk, g.callback.b, 16);
    else
        msgpack_pack_nil(&a->pk);
    kv_i64(a, "callback_state", cb_state);
    kv_str(a, "on_fail", g.on_fail == 1 ? "settle" : "fail");
    if (members) {
        proto_pack_key(&a->pk, "members");
        msgpack_pack_array(&a->pk, g.total);
        size_t before = a->sb.size;
        if (store_group_members(a->b->store, &id, pack_member_id, a) != TASKQ_OK) {
            a->sb.size = before;
            fail(a, TASKQ_ESTORE, "store failure");
            return;
        }
    }
    reply(a);
}

typedef struct {
    admin_t *a;
    size_t n;
    proto_task_rec_t *recs; /* deep copies are not needed: packed at once */
} failed_t;

static void count_rec(const proto_task_rec_t *rec, void *arg)
{
    (void)rec;
    ((failed_t *)arg)->n++;
}

static void pack_failed(const proto_task_rec_t *rec, void *arg)
{
    failed_t *f = arg;
    admin_t *a = f->a;
    /* the record map, then its attempts: repack the record with one more key */
    msgpack_sbuffer tmp;
    msgpack_sbuffer_init(&tmp);
    msgpack_packer tp;
    msgpack_packer_init(&tp, &tmp, msgpack_sbuffer_write);
    proto_pack_task_rec(&tp, rec);
    /* tmp holds one map: rewrite its header to add "attempts" */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, tmp.data, tmp.size, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        msgpack_pack_map(&a->pk, u.data.via.map.size + 1);
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_pack_object(&a->pk, u.data.via.map.ptr[i].key);
            msgpack_pack_object(&a->pk, u.data.via.map.ptr[i].val);
        }
        proto_pack_key(&a->pk, "history");
        attempts_t t = {.a = a};
        store_attempts(a->b->store, &rec->id, pack_attempt, &t); /* count */
        msgpack_pack_array(&a->pk, t.n);
        t.n = 0;
        t.packing = true;
        store_attempts(a->b->store, &rec->id, pack_attempt, &t);
    } else {
        msgpack_pack_nil(&a->pk);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&tmp);
}

static void op_failed(admin_t *a)
{
    selector_t s;
    if (!read_selector(a, &s))
        return;
    uint64_t limit = TQ_LIST_MAX;
    if (!opt_u64(a, "limit", TQ_LIST_MAX, &limit))
        return;
    s.f.limit = limit ? limit : TQ_LIST_MAX;
    s.f.states = 1u << TASKQ_STATE_FAILED;
    failed_t f = {.a = a};
    if (store_list_failed(a->b->store, &s.f, count_rec, &f) != TASKQ_OK) {
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    msgpack_pack_map(&a->pk, 1);
    proto_pack_key(&a->pk, "tasks");
    msgpack_pack_array(&a->pk, f.n);
    if (store_list_failed(a->b->store, &s.f, pack_failed, &f) != TASKQ_OK) {
        a->sb.size = 0;
        fail(a, TASKQ_ESTORE, "store failure");
        return;
    }
    reply(a);
}

static void op_rerun(admin_t *a)
{
    taskq_id_t *ids = NULL;
    size_t n = 0;
    if (!read_ids(a, "ids", TQ_REVOKE_MAX, &ids, &n))
        return;
    bool single = n == 1;
    if (n == 0) {
        selector_t s;
        if (!read_selector(a, &s)) {
            free(ids);
            return;
        }
        s.f.states = 1u << TASKQ_STATE_FAILED;
        s.f.limit = TQ_REVOKE_MAX;
        idvec_t v = {0};
        if (store_select(a->b->store, &s.f, true, collect_id, &v) != TASKQ_OK) {
            free(v.v);
            free(ids);
            fail(a, TASKQ_ESTORE, "store failure");
            return;
        }
        free(ids);
        ids = v.v;
        n = v.n;
    }
    taskq_id_t *made = xcalloc(n ? n : 1, sizeof *made);
    size_t k = 0;
    taskq_err_t last = TASKQ_OK;
    for (size_t i = 0; i < n && !a->b->turn_failed; i++) {
        taskq_id_t nid;
        taskq_id_generate(&nid);
        taskq_err_t e = store_rerun(a->b->store, &ids[i], &nid, broker_now(a->b));
        if (e == TASKQ_OK) {
            made[k++] = nid;
            a->b->submitted++;
            a->b->pending++;
            thist_event_rerun(&nid);
        } else {
            last = e;
            if (e == TASKQ_ESTORE)
                a->b->turn_failed = true;
        }
    }
    if (a->b->turn_failed) {
        fail(a, TASKQ_ESTORE, "store failure");
    } else if (single && last != TASKQ_OK) {
        char ids1[TASKQ_ID_STRLEN + 1];
        taskq_id_format(&ids[0], ids1);
        fail(a, last,
             last == TASKQ_ETERMINAL ? "task %s is not failed: only failed tasks are re-run"
             : last == TASKQ_EEXIST  ? "task %s was re-run already (see its rerun_by)"
                                     : "task %s: cannot re-run",
             ids1);
    } else {
        msgpack_pack_map(&a->pk, 1);
        proto_pack_key(&a->pk, "ids");
        msgpack_pack_array(&a->pk, k);
        for (size_t i = 0; i < k; i++)
            msgpack_pack_bin_with_body(&a->pk, made[i].b, 16);
        reply(a);
    }
    free(made);
    free(ids);
}

static void op_purge(admin_t *a)
{
    char st[32];
    if (!need_str(a, "state", 31, st, sizeof st))
        return;
    int state = taskq_state_from_name(st);
    if (state < 0 || !taskq_state_is_terminal(state)) {
        fail(a, TASKQ_EINVAL, "state: one of succeeded, failed, revoked, expired");
        return;
    }
    uint64_t older = 0;
    if (!opt_u64(a, "older_than_ms", (uint64_t)TQ_TTL_MAX_MS, &older))
        return;
    size_t total = 0, got = 0;
    do {
        got = 0;
        if (store_purge_state(a->b->store, state, broker_now(a->b) - (int64_t)older, 5000,
                              &got) != TASKQ_OK) {
            fail(a, TASKQ_ESTORE, "store failure");
            return;
        }
        total += got;
    } while (got == 5000 && total < 1000000);
    tlog_info("purge: %zu %s tasks older than %llu ms deleted", total, st,
              (unsigned long long)older);
    msgpack_pack_map(&a->pk, 1);
    kv_u64(a, "purged", total);
    reply(a);
}

void admin_on_message(broker_t *b, const uint8_t *from, size_t flen, proto_msg_t *msg)
{
    admin_t a = {.b = b, .from = from, .flen = flen, .req = msg->u.admin.req,
                 .p = msg->u.admin.params_obj};
    msgpack_sbuffer_init(&a.sb);
    msgpack_packer_init(&a.pk, &a.sb, msgpack_sbuffer_write);
    char op[65];
    proto_str_copy(op, sizeof op, msg->u.admin.op);
    if (!strcmp(op, "queues"))
        op_queues(&a);
    else if (!strcmp(op, "queue_pause"))
        op_queue_pause(&a);
    else if (!strcmp(op, "queue_set"))
        op_queue_set(&a);
    else if (!strcmp(op, "limit_set"))
        op_limit_set(&a);
    else if (!strcmp(op, "limit_rm"))
        op_limit_rm(&a);
    else if (!strcmp(op, "limits"))
        op_limits(&a);
    else if (!strcmp(op, "schedule_add"))
        op_schedule_add(&a);
    else if (!strcmp(op, "schedule_pause") || !strcmp(op, "schedule_resume") ||
             !strcmp(op, "schedule_rm") || !strcmp(op, "schedule_run_now"))
        op_schedule_ctl(&a, op);
    else if (!strcmp(op, "schedules"))
        op_schedules(&a);
    else if (!strcmp(op, "attempts"))
        op_attempts(&a);
    else if (!strcmp(op, "clock"))
        op_clock(&a);
    else if (!strcmp(op, "revoke"))
        op_revoke(&a);
    else if (!strcmp(op, "group"))
        op_group(&a);
    else if (!strcmp(op, "failed"))
        op_failed(&a);
    else if (!strcmp(op, "rerun"))
        op_rerun(&a);
    else if (!strcmp(op, "purge"))
        op_purge(&a);
    else
        fail(&a, TASKQ_EINVAL, "unknown admin op '%s'", op);
    if (!a.answered)
        fail(&a, TASKQ_EINTERNAL, "admin op '%s' gave no answer", op);
    msgpack_sbuffer_destroy(&a.sb);
}
