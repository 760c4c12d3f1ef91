/* client_schedule.c - periodic schedules: add ("schedule_add"), pause /
 * resume / rm, run-now, list ("schedules"). The broker parses the cron
 * expression and the zone; its EINVAL message (taskq_client_last_error)
 * names the bad field. */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"

#define SCHEDULES_LIST_MAX 100000 /* schedules listed (a lying peer) */
#define WORD_MAX 16               /* "skip", "allow", "none", "last", "all" */

struct taskq_schedules {
    size_t n;
    taskq_schedule_t *v;
    strpool_t sp;
};

static bool one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (!strcmp(s, *words))
            return true;
    return false;
}

static const char *const OVERLAP[] = {"skip", "allow", NULL};
static const char *const CATCHUP[] = {"none", "last", "all", NULL};

static taskq_err_t sched_name_check(const char *name)
{
    if (!name)
        return TASKQ_EINVAL;
    size_t len = strlen(name);
    if (len > TQ_SCHED_NAME_MAX)
        return TASKQ_ETOOBIG;
    return proto_name_is_valid(name, len, TQ_SCHED_NAME_MAX) ? TASKQ_OK : TASKQ_ENAME;
}

static taskq_err_t schedule_check(const taskq_schedule_t *s)
{
    taskq_err_t e = sched_name_check(s->name);
    if (e != TASKQ_OK)
        return e;
    if (!s->cron || !s->cron[0] || !s->task)
        return TASKQ_EINVAL;
    if (strlen(s->cron) > TQ_CRON_MAX || strlen(s->task) > TQ_NAME_MAX ||
        s->args_len > TQ_ARGS_MAX || (s->tz && strlen(s->tz) > TQ_TZ_MAX))
        return TASKQ_ETOOBIG;
    if (!proto_name_is_valid(s->task, strlen(s->task), TQ_NAME_MAX))
        return TASKQ_ENAME;
    if (s->args_len > 0 && (!s->args || proto_precheck(s->args, s->args_len, TQ_MAX_DEPTH) != TASKQ_OK))
        return TASKQ_EINVAL;
    if (s->queue && s->queue[0]) {
        size_t ql = strlen(s->queue);
        if (ql > TQ_QUEUE_MAX)
            return TASKQ_ETOOBIG;
        if (!proto_queue_is_valid(s->queue, ql))
            return TASKQ_ENAME;
    }
    if (s->has_priority && (s->priority < 0 || s->priority > TQ_PRIORITY_MAX))
        return TASKQ_EINVAL;
    if ((s->overlap && s->overlap[0] && !one_of(s->overlap, OVERLAP)) ||
        (s->catchup && s->catchup[0] && !one_of(s->catchup, CATCHUP)))
        return TASKQ_EINVAL;
    if (s->max_attempts > TQ_ATTEMPTS_MAX)
        return TASKQ_EINVAL;
    return TASKQ_OK;
}

taskq_err_t taskq_schedule_add(taskq_client_t *self, const taskq_schedule_t *s)
{
    if (!s)
        return TASKQ_EINVAL;
    taskq_err_t e = schedule_check(s);
    if (e != TASKQ_OK)
        return e;
    static const uint8_t EMPTY_ARRAY[1] = {0x90};
    bool q = s->queue && s->queue[0], tz = s->tz && s->tz[0];
    bool ov = s->overlap && s->overlap[0], cu = s->catchup && s->catchup[0];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 4 + q + (s->has_priority != 0) + tz + ov + cu + (s->max_attempts > 0));
    client_pack_kv_str(&pk, "name", s->name);
    client_pack_kv_str(&pk, "cron", s->cron);
    client_pack_kv_str(&pk, "task", s->task);
    if (s->args_len > 0)
        client_pack_kv_bin(&pk, "args", s->args, s->args_len);
    else
        client_pack_kv_bin(&pk, "args", EMPTY_ARRAY, sizeof EMPTY_ARRAY);
    if (q)
        client_pack_kv_str(&pk, "queue", s->queue);
    if (s->has_priority)
        client_pack_kv_u64(&pk, "priority", (uint64_t)s->priority);
    if (tz)
        client_pack_kv_str(&pk, "tz", s->tz);
    if (ov)
        client_pack_kv_str(&pk, "overlap", s->overlap);
    if (cu)
        client_pack_kv_str(&pk, "catchup", s->catchup);
    if (s->max_attempts > 0)
        client_pack_kv_u64(&pk, "max_attempts", s->max_attempts);
    inmsg_t in;
    /* a resend after a lost reply would say EEXIST: send once */
    e = client_admin(self, "schedule_add", &sb, ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e == TASKQ_OK)
        client_inmsg_clear(&in);
    return e;
}

/* {"name": name} ops: pause and resume are idempotent; rm is sent once. */
static taskq_err_t name_op(taskq_client_t *self, const char *op, const char *name, int resend,
                           inmsg_t *in)
{
    taskq_err_t e = sched_name_check(name);
    if (e != TASKQ_OK)
        return e;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    client_pack_kv_str(&pk, "name", name);
    e = client_admin(self, op, &sb, resend, in);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

taskq_err_t taskq_schedule_ctl(taskq_client_t *self, const char *name, const char *op)
{
    const char *wire;
    int resend = ADMIN_RESEND;
    if (!op)
        return TASKQ_EINVAL;
    if (!strcmp(op, "pause")) {
        wire = "schedule_pause";
    } else if (!strcmp(op, "resume")) {
        wire = "schedule_resume";
    } else if (!strcmp(op, "rm")) {
        wire = "schedule_rm";
        resend = ADMIN_ONCE;
    } else {
        return TASKQ_EINVAL;
    }
    inmsg_t in;
    taskq_err_t e = name_op(self, wire, name, resend, &in);
    if (e == TASKQ_OK)
        client_inmsg_clear(&in);
    return e;
}

taskq_err_t taskq_schedule_run_now(taskq_client_t *self, const char *name, taskq_id_t *id)
{
    inmsg_t in;
    /* a resend would fire twice: send once */
    taskq_err_t e = name_op(self, "schedule_run_now", name, ADMIN_ONCE, &in);
    if (e != TASKQ_OK)
        return e;
    taskq_id_t got;
    const msgpack_object *d = in.msg.u.admin_reply.data_obj;
    proto_bin_t b = {NULL, 0};
    if (!d || proto_obj_bin(d, "id", 16, &b) != TASKQ_OK || b.len != 16) {
        e = TASKQ_EPROTO;
    } else {
        memcpy(got.b, b.ptr, 16);
        if (id)
            *id = got;
    }
    client_inmsg_clear(&in);
    return e;
}

void taskq_schedules_destroy(taskq_schedules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free((*self_p)->sp.base);
    free(*self_p);
    *self_p = NULL;
}

static taskq_err_t schedule_read(const msgpack_object *o, strpool_t *sp, taskq_schedule_t *s)
{
    memset(s, 0, sizeof *s);
    proto_str_t name;
    if (proto_obj_str(o, "name", TQ_SCHED_NAME_MAX, &name) != TASKQ_OK)
        return TASKQ_EPROTO; /* required */
    s->name = strpool_put(sp, name.ptr, name.len);
    taskq_err_t e = s->name ? TASKQ_OK : TASKQ_EPROTO;
    if (e == TASKQ_OK)
        e = client_get_str(o, "cron", TQ_CRON_MAX, sp, &s->cron);
    if (e == TASKQ_OK)
        e = client_get_str(o, "task", TQ_NAME_MAX, sp, &s->task);
    proto_bin_t args = {NULL, 0};
    if (e == TASKQ_OK && proto_obj_get(o, "args") &&
        proto_obj_get(o, "args")->type != MSGPACK_OBJECT_NIL) {
        e = proto_obj_bin(o, "args", TQ_ARGS_MAX, &args) == TASKQ_OK ? TASKQ_OK : TASKQ_EPROTO;
    }
    if (e == TASKQ_OK) {
        s->args = args.len ? strpool_put(sp, args.ptr, args.len) : NULL;
        s->args_len = args.len;
        if (args.len && !s->args)
            e = TASKQ_EPROTO;
    }
    if (e == TASKQ_OK)
        e = client_get_str(o, "queue", TQ_QUEUE_MAX, sp, &s->queue);
    /* priority: 0..9, or absent / nil / negative = not set (default 5) */
    int64_t prio = -1;
    if (e == TASKQ_OK)
        e = client_get_i64(o, "priority", &prio);
    if (e == TASKQ_OK && prio > TQ_PRIORITY_MAX)
        e = TASKQ_EPROTO;
    if (e == TASKQ_OK && prio >= 0) {
        s->has_priority = 1;
        s->priority = (int)prio;
    }
    if (e == TASKQ_OK)
        e = client_get_str(o, "tz", TQ_TZ_MAX, sp, &s->tz);
    if (e == TASKQ_OK)
        e = client_get_str(o, "overlap", WORD_MAX, sp, &s->overlap);
    if (e == TASKQ_OK)
        e = client_get_str(o, "catchup", WORD_MAX, sp, &s->catchup);
    if (e == TASKQ_OK)
        e = client_get_u32(o, "max_attempts", &s->max_attempts);
    if (e == TASKQ_OK)
        e = client_get_bool(o, "paused", &s->paused);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "next_at", &s->next_at);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "last_fire_at", &s->last_fire_at);
    if (e == TASKQ_OK)
        e = client_get_id(o, "last_task_id", &s->last_task_id);
    if (e == TASKQ_OK)
        e = client_get_u64(o, "fires", &s->fires);
    if (e == TASKQ_OK)
        e = client_get_u64(o, "skipped", &s->skipped);
    return e;
}

taskq_err_t taskq_schedules(taskq_client_t *self, taskq_schedules_t **out)
{
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    inmsg_t in;
    taskq_err_t e = client_admin(self, "schedules", NULL, ADMIN_RESEND, &in);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *items;
    uint32_t n;
    taskq_schedules_t *r = calloc(1, sizeof *r);
    if (!r) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    e = client_data_array(in.msg.u.admin_reply.data_obj, "schedules", SCHEDULES_LIST_MAX, &items,
                          &n);
    if (e == TASKQ_OK)
        e = strpool_init(&r->sp, in.f.body_len + 8u * n + 1);
    if (e == TASKQ_OK && !(r->v = calloc(n ? n : 1, sizeof *r->v)))
        e = TASKQ_ENOMEM;
    for (uint32_t i = 0; e == TASKQ_OK && i < n; i++)
        e = schedule_read(&items[i], &r->sp, &r->v[i]);
    if (e == TASKQ_OK) {
        r->n = n;
        *out = r;
        r = NULL;
    }
out:
    taskq_schedules_destroy(&r);
    client_inmsg_clear(&in);
    return e;
}

size_t taskq_schedules_count(const taskq_schedules_t *self)
{
    return self ? self->n : 0;
}

const taskq_schedule_t *taskq_schedules_get(const taskq_schedules_t *self, size_t i)
{
    return self && i < self->n ? &self->v[i] : NULL;
}
