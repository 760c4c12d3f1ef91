/* sched.c - periodic schedules; see sched.h. */
#include "sched.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"
#include "handlers.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    store_schedule_t s; /* strings below own their memory */
    char name[TQ_SCHED_NAME_MAX + 1], cron_expr[TQ_CRON_MAX + 1], task[TQ_NAME_MAX + 1];
    char queue[TQ_QUEUE_MAX + 1], tz[TQ_TZ_MAX + 1];
    uint8_t *args;
    cron_t cron;
} entry_t;

struct sched {
    entry_t **e;
    size_t n, cap;
};

sched_t *sched_new(void) { return xcalloc(1, sizeof(sched_t)); }

static void entry_free(entry_t *e)
{
    if (e) {
        free(e->args);
        free(e);
    }
}

static void clear(sched_t *self)
{
    for (size_t i = 0; i < self->n; i++)
        entry_free(self->e[i]);
    self->n = 0;
}

void sched_destroy(sched_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    clear(*self_p);
    free((*self_p)->e);
    free(*self_p);
    *self_p = NULL;
}

static entry_t *find(const sched_t *self, const char *name, size_t *idx)
{
    for (size_t i = 0; i < self->n; i++)
        if (strcmp(self->e[i]->name, name) == 0) {
            if (idx)
                *idx = i;
            return self->e[i];
        }
    return NULL;
}

/* Copies def into a new entry (strings owned); NULL with err if the cron
 * expression or the zone is bad. */
static entry_t *entry_new(const store_schedule_t *def, char *err, size_t errsz)
{
    entry_t *e = xcalloc(1, sizeof *e);
    e->s = *def;
    snprintf(e->name, sizeof e->name, "%s", def->name ? def->name : "");
    snprintf(e->cron_expr, sizeof e->cron_expr, "%s", def->cron ? def->cron : "");
    snprintf(e->task, sizeof e->task, "%s", def->task ? def->task : "");
    snprintf(e->queue, sizeof e->queue, "%s", def->queue ? def->queue : "");
    snprintf(e->tz, sizeof e->tz, "%s", def->tz && def->tz[0] ? def->tz : "UTC");
    e->s.name = e->name;
    e->s.cron = e->cron_expr;
    e->s.task = e->task;
    e->s.queue = e->queue;
    e->s.tz = e->tz;
    if (def->args.len) {
        e->args = xmalloc(def->args.len);
        memcpy(e->args, def->args.ptr, def->args.len);
    }
    e->s.args.ptr = e->args;
    e->s.args.len = def->args.len;
    char cerr[200];
    if (cron_parse(e->cron_expr, &e->cron, cerr, sizeof cerr) != 0) {
        snprintf(err, errsz, "cron: %s", cerr);
        entry_free(e);
        return NULL;
    }
    if (!cron_tz_is_valid(e->tz)) {
        snprintf(err, errsz, "unknown time zone %s", e->tz);
        entry_free(e);
        return NULL;
    }
    return e;
}

static void insert_sorted(sched_t *self, entry_t *e)
{
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 8;
        self->e = xrealloc(self->e, self->cap * sizeof *self->e);
    }
    size_t i = self->n;
    while (i > 0 && strcmp(self->e[i - 1]->name, e->name) > 0) {
        self->e[i] = self->e[i - 1];
        i--;
    }
    self->e[i] = e;
    self->n++;
}

static void load_one(const store_schedule_t *s, void *arg)
{
    sched_t *self = arg;
    char err[256];
    entry_t *e = entry_new(s, err, sizeof err);
    if (!e) {
        tlog_error("schedule %s in the store is invalid (%s): ignored", s->name, err);
        return;
    }
    insert_sorted(self, e);
}

taskq_err_t sched_load(sched_t *self, store_t *store)
{
    clear(self);
    return store_schedule_list(store, load_one, self);
}

int64_t sched_next_at(const sched_t *self)
{
    int64_t t = INT64_MAX;
    for (size_t i = 0; i < self->n; i++)
        if (!self->e[i]->s.paused && self->e[i]->s.next_at < t)
            t = self->e[i]->s.next_at;
    return t;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

void sched_task_id(const char *name, int64_t nominal, const char *salt, taskq_id_t *out)
{
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
    h1 = fnv1a(h1, name, strlen(name) + 1);
    h1 = fnv1a(h1, &nominal, sizeof nominal);
    h1 = fnv1a(h1, salt, strlen(salt));
    h2 = fnv1a(h2, salt, strlen(salt) + 1);
    h2 = fnv1a(h2, &nominal, sizeof nominal);
    h2 = fnv1a(h2, name, strlen(name));
    h1 = mix(h1);
    h2 = mix(h2 ^ h1);
    uint64_t ts = (uint64_t)nominal;
    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ts >> (40 - 8 * i));
    for (int i = 0; i < 2; i++)
        out->b[6 + i] = (uint8_t)(h1 >> (8 * i));
    for (int i = 0; i < 8; i++)
        out->b[8 + i] = (uint8_t)(h2 >> (8 * i));
    out->b[6] = (uint8_t)(0x70 | (out->b[6] & 0x0f)); /* version 7 */
    out->b[8] = (uint8_t)(0x80 | (out->b[8] & 0x3f)); /* variant 10 */
    if (taskq_id_is_zero(out))
        out->b[15] = 1;
}

/* Inserts the task of one fire; false if the turn failed. */
static bool fire(broker_t *b, entry_t *e, int64_t nominal, const char *salt, int64_t now,
                 taskq_id_t *id)
{
    sched_task_id(e->name, nominal, salt, id);
    const char *qname =
        e->queue[0] ? e->queue : routes_match(b->routes, e->task, strlen(e->task));
    bqueue_t *q = handlers_queue_ensure(b, qname, strlen(qname));
    if (!q)
        return false;
    store_new_task_t nt = {
        .id = *id,
        .name = proto_str(e->task),
        .args = e->s.args,
        .max_attempts = e->s.max_attempts,
        .queue = proto_str(q->name),
        .priority = e->s.priority >= 0 ? e->s.priority : TQ_DEFAULT_PRIORITY,
        .state = TASKQ_STATE_QUEUED,
        .policy = {.jitter = -1},
        .schedule = proto_str(e->name),
        .submitted_at = now,
    };
    bool inserted = false;
    if (store_insert_task(b->store, &nt, &inserted) != TASKQ_OK) {
        b->turn_failed = true;
        return false;
    }
    if (inserted)
        handlers_task_inserted(b, &nt);
    return true;
}

static bool prev_unfinished(broker_t *b, const entry_t *e)
{
    if (taskq_id_is_zero(&e->s.last_task_id))
        return false;
    bool terminal = true;
    taskq_err_t err = store_is_terminal(b->store, &e->s.last_task_id, &terminal);
    if (err == TASKQ_ESTORE)
        b->turn_failed = true;
    return err == TASKQ_OK && !terminal;
}

static int64_t next_after(const entry_t *e, int64_t after)
{
    int64_t next = INT64_MAX;
    if (cron_next(&e->cron, e->tz, e->s.created_at, after, &next) != 0)
        return INT64_MAX; /* never again (e.g. Feb 30): stays listed, never due */
    return next;
}

/* Fires one due schedule: every nominal time <= now is either run or
 * recorded as skipped, and next_at moves past now, in this transaction. */
static void tick_one(broker_t *b, entry_t *e, int64_t now)
{
    int64_t due[SCHED_CATCHUP_MAX];
    size_t ndue = 0;
    uint64_t overflow = 0;
    int64_t t = e->s.next_at, last = t;
    while (t <= now) {
        if (ndue < SCHED_CATCHUP_MAX)
            due[ndue++] = t;
        else {
            due[SCHED_CATCHUP_MAX - 1] = t; /* keep the latest */
            overflow++;
        }
        last = t;
        t = next_after(e, t);
    }
    if (ndue == 0)
        return;
    uint64_t fires = 0, skipped = overflow;
    int64_t last_fire = e->s.last_fire_at;
    taskq_id_t last_id = e->s.last_task_id;
    for (size_t i = 0; i < ndue; i++) {
        bool latest = i + 1 == ndue;
        bool missed = !latest || now - due[i] > SCHED_MISSED_MS;
        bool run = !missed || e->s.catchup == 2 || (e->s.catchup == 1 && latest);
        if (run && e->s.overlap == 0) {
            entry_t tmp = *e;
            tmp.s.last_task_id = last_id;
            if (prev_unfinished(b, &tmp))
                run = false;
            if (b->turn_failed)
                return;
        }
        if (!run) {
            skipped++;
            continue;
        }
        taskq_id_t id;
        if (!fire(b, e, due[i], "fire", now, &id))
            return;
        fires++;
        last_fire = due[i];
        last_id = id;
    }
    (void)last;
    if (store_schedule_advance(b->store, e->name, t, last_fire, &last_id, fires, skipped) !=
        TASKQ_OK) {
        b->turn_failed = true;
        return;
    }
    e->s.next_at = t;
    e->s.last_fire_at = last_fire;
    e->s.last_task_id = last_id;
    e->s.fires += fires;
    e->s.skipped += skipped;
    if (skipped)
        tlog_info("schedule %s: %llu fires run, %llu skipped (overlap / catch-up)", e->name,
                  (unsigned long long)fires, (unsigned long long)skipped);
}

void sched_tick(sched_t *self, broker_t *b, int64_t now)
{
    for (size_t i = 0; i < self->n && !b->turn_failed; i++) {
        entry_t *e = self->e[i];
        if (!e->s.paused && e->s.next_at <= now)
            tick_one(b, e, now);
    }
}

static bool same_def(const entry_t *a, const entry_t *c)
{
    return strcmp(a->cron_expr, c->cron_expr) == 0 && strcmp(a->task, c->task) == 0 &&
           strcmp(a->queue, c->queue) == 0 && strcmp(a->tz, c->tz) == 0 &&
           a->s.priority == c->s.priority && a->s.max_attempts == c->s.max_attempts &&
           a->s.overlap == c->s.overlap && a->s.catchup == c->s.catchup &&
           a->s.args.len == c->s.args.len &&
           (a->s.args.len == 0 || memcmp(a->args, c->args, a->s.args.len) == 0);
}

taskq_err_t sched_add(sched_t *self, broker_t *b, const store_schedule_t *def, bool replace,
                      int64_t now, char *err, size_t errsz, int64_t *next_at)
{
    if (!def->name || !proto_name_is_valid(def->name, strlen(def->name), TQ_SCHED_NAME_MAX)) {
        snprintf(err, errsz, "invalid schedule name");
        return TASKQ_EINVAL;
    }
    if (!def->task || !proto_name_is_valid(def->task, strlen(def->task), TQ_NAME_MAX)) {
        snprintf(err, errsz, "invalid task name");
        return TASKQ_EINVAL;
    }
    if (def->queue && def->queue[0] && !proto_queue_is_valid(def->queue, strlen(def->queue))) {
        snprintf(err, errsz, "invalid queue name");
        return TASKQ_EINVAL;
    }
    if (def->priority > TQ_PRIORITY_MAX || def->overlap < 0 || def->overlap > 1 ||
        def->catchup < 0 || def->catchup > 2) {
        snprintf(err, errsz, "priority, overlap or catchup out of range");
        return TASKQ_EINVAL;
    }
    entry_t *e = entry_new(def, err, errsz);
    if (!e)
        return TASKQ_EINVAL;
    size_t idx = 0;
    entry_t *old = find(self, e->name, &idx);
    if (old && !replace) {
        entry_free(e);
        snprintf(err, errsz, "schedule %s already exists", def->name);
        return TASKQ_EEXIST;
    }
    if (old && same_def(old, e)) {
        /* unchanged (a schedules file loaded again): keep its state */
        entry_free(e);
        if (next_at)
            *next_at = old->s.next_at;
        return TASKQ_OK;
    }
    e->s.created_at = now;
    e->s.paused = old ? old->s.paused : false;
    e->s.fires = old ? old->s.fires : 0;
    e->s.skipped = old ? old->s.skipped : 0;
    e->s.last_fire_at = old ? old->s.last_fire_at : 0;
    e->s.last_task_id = old ? old->s.last_task_id : (taskq_id_t){{0}};
    e->s.next_at = next_after(e, now);
    if (e->s.next_at == INT64_MAX) {
        snprintf(err, errsz, "cron: '%s' never fires within 5 years", e->cron_expr);
        entry_free(e);
        return TASKQ_EINVAL;
    }
    taskq_err_t r = store_schedule_put(b->store, &e->s, replace);
    if (r != TASKQ_OK) {
        entry_free(e);
        if (r == TASKQ_ESTORE)
            b->turn_failed = true;
        snprintf(err, errsz, "%s", r == TASKQ_EEXIST ? "schedule already exists" : "store failure");
        return r;
    }
    if (old) {
        entry_free(old);
        self->e[idx] = e;
    } else {
        insert_sorted(self, e);
    }
    if (next_at)
        *next_at = e->s.next_at;
    return TASKQ_OK;
}

taskq_err_t sched_rm(sched_t *self, broker_t *b, const char *name)
{
    size_t idx = 0;
    entry_t *e = find(self, name, &idx);
    if (!e)
        return TASKQ_ENOTFOUND;
    taskq_err_t r = store_schedule_rm(b->store, name);
    if (r == TASKQ_ESTORE)
        b->turn_failed = true;
    if (r != TASKQ_OK && r != TASKQ_ENOTFOUND)
        return r;
    entry_free(e);
    memmove(&self->e[idx], &self->e[idx + 1], (self->n - idx - 1) * sizeof *self->e);
    self->n--;
    return TASKQ_OK;
}

taskq_err_t sched_set_paused(sched_t *self, broker_t *b, const char *name, bool paused)
{
    entry_t *e = find(self, name, NULL);
    if (!e)
        return TASKQ_ENOTFOUND;
    taskq_err_t r = store_schedule_set_paused(b->store, name, paused);
    if (r == TASKQ_ESTORE)
        b->turn_failed = true;
    if (r != TASKQ_OK)
        return r;
    e->s.paused = paused;
    return TASKQ_OK;
}

taskq_err_t sched_run_now(sched_t *self, broker_t *b, const char *name, int64_t now,
                          taskq_id_t *id)
{
    entry_t *e = find(self, name, NULL);
    if (!e)
        return TASKQ_ENOTFOUND;
    if (!fire(b, e, now, "run-now", now, id))
        return TASKQ_ESTORE;
    return TASKQ_OK;
}

void sched_list(const sched_t *self, store_schedule_fn fn, void *arg)
{
    for (size_t i = 0; i < self->n; i++)
        fn(&self->e[i]->s, arg);
}

/* ---- schedules file ------------------------------------------------------ */

static void pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            msgpack_pack_str_with_body(pk, k, strlen(k));
            pack_json(pk, x);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) pack_json(pk, x);
        break;
    }
    case JSON_STRING:
        msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
    }
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

taskq_err_t sched_load_file(sched_t *self, broker_t *b, const char *path, int64_t now,
                            char *err, size_t errsz)
{
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        snprintf(err, errsz, "%s:%d: %s", path, je.line, je.text);
        return TASKQ_EINVAL;
    }
    taskq_err_t r = TASKQ_OK;
    if (!json_is_array(root)) {
        snprintf(err, errsz, "%s: expected a JSON array of schedules", path);
        r = TASKQ_EINVAL;
    }
    size_t i;
    json_t *o;
    json_array_foreach(root, i, o)
    {
        if (r != TASKQ_OK)
            break;
        if (!json_is_object(o)) {
            snprintf(err, errsz, "%s: schedule %zu is not an object", path, i);
            r = TASKQ_EINVAL;
            break;
        }
        store_schedule_t def = {.priority = -1, .catchup = 1};
        def.name = jstr(o, "name");
        def.cron = jstr(o, "cron");
        def.task = jstr(o, "task");
        def.queue = jstr(o, "queue");
        def.tz = jstr(o, "tz");
        const json_t *p = json_object_get(o, "priority");
        if (json_is_integer(p))
            def.priority = (int32_t)json_integer_value(p);
        const json_t *m = json_object_get(o, "max_attempts");
        if (json_is_integer(m) && json_integer_value(m) >= 0 &&
            json_integer_value(m) <= TQ_ATTEMPTS_MAX)
            def.max_attempts = (uint32_t)json_integer_value(m);
        const char *ov = jstr(o, "overlap"), *cu = jstr(o, "catchup");
        def.overlap = !ov || !strcmp(ov, "skip") ? 0 : !strcmp(ov, "allow") ? 1 : -1;
        def.catchup = !cu || !strcmp(cu, "last") ? 1 : !strcmp(cu, "none") ? 0
                      : !strcmp(cu, "all")         ? 2
                                                   : -1;
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        const json_t *a = json_object_get(o, "args");
        if (a) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            pack_json(&pk, a);
        }
        def.args.ptr = (const uint8_t *)sb.data;
        def.args.len = (uint32_t)sb.size;
        char inner[256];
        if (!def.cron || !def.task) {
            snprintf(inner, sizeof inner, "needs \"cron\" and \"task\"");
            r = TASKQ_EINVAL;
        } else {
            r = sched_add(self, b, &def, true, now, inner, sizeof inner, NULL);
        }
        msgpack_sbuffer_destroy(&sb);
        if (r != TASKQ_OK)
            snprintf(err, errsz, "%s: schedule %s: %s", path, def.name ? def.name : "?", inner);
    }
    json_decref(root);
    return r;
}
