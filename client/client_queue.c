/* client_queue.c - queues: list (ADMIN "queues"), pause/resume
 * ("queue_pause"), max_pending ("queue_set"). */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"

#define QUEUES_LIST_MAX 100000 /* queues listed (a lying peer) */

struct taskq_queues {
    size_t n;
    taskq_queue_info_t *v;
    strpool_t sp;
};

void taskq_queues_destroy(taskq_queues_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free((*self_p)->sp.base);
    free(*self_p);
    *self_p = NULL;
}

/* counts: {state-name: uint}; unknown state names are ignored (a newer
 * broker), absent ones stay 0. */
static taskq_err_t counts_read(const msgpack_object *o, uint64_t counts[TASKQ_NSTATES])
{
    const msgpack_object *c = proto_obj_get(o, "counts");
    if (!c)
        return TASKQ_OK;
    if (c->type != MSGPACK_OBJECT_MAP)
        return TASKQ_EPROTO;
    for (int s = 0; s < TASKQ_NSTATES; s++) {
        taskq_err_t e = client_get_u64(c, taskq_state_name(s), &counts[s]);
        if (e != TASKQ_OK)
            return e;
    }
    return TASKQ_OK;
}

static taskq_err_t queue_read(const msgpack_object *o, strpool_t *sp, taskq_queue_info_t *q)
{
    memset(q, 0, sizeof *q);
    proto_str_t name;
    if (proto_obj_str(o, "name", TQ_QUEUE_MAX, &name) != TASKQ_OK)
        return TASKQ_EPROTO; /* required */
    q->name = strpool_put(sp, name.ptr, name.len);
    taskq_err_t e = q->name ? TASKQ_OK : TASKQ_EPROTO;
    if (e == TASKQ_OK)
        e = client_get_bool(o, "paused", &q->paused);
    if (e == TASKQ_OK)
        e = client_get_u64(o, "max_pending", &q->max_pending);
    if (e == TASKQ_OK)
        e = counts_read(o, q->counts);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "oldest_queued_ms", &q->oldest_queued_ms);
    if (e == TASKQ_OK)
        e = client_get_u32(o, "slots", &q->slots);
    return e;
}

taskq_err_t taskq_queues(taskq_client_t *self, taskq_queues_t **out)
{
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    inmsg_t in;
    taskq_err_t e = client_admin(self, "queues", NULL, ADMIN_RESEND, &in);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *items;
    uint32_t n;
    taskq_queues_t *r = calloc(1, sizeof *r);
    if (!r) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    e = client_data_array(in.msg.u.admin_reply.data_obj, "queues", QUEUES_LIST_MAX, &items, &n);
    if (e == TASKQ_OK)
        e = strpool_init(&r->sp, in.f.body_len + n + 1);
    if (e == TASKQ_OK && !(r->v = calloc(n ? n : 1, sizeof *r->v)))
        e = TASKQ_ENOMEM;
    for (uint32_t i = 0; e == TASKQ_OK && i < n; i++)
        e = queue_read(&items[i], &r->sp, &r->v[i]);
    if (e == TASKQ_OK) {
        r->n = n;
        *out = r;
        r = NULL;
    }
out:
    taskq_queues_destroy(&r);
    client_inmsg_clear(&in);
    return e;
}

size_t taskq_queues_count(const taskq_queues_t *self)
{
    return self ? self->n : 0;
}

const taskq_queue_info_t *taskq_queues_get(const taskq_queues_t *self, size_t i)
{
    return self && i < self->n ? &self->v[i] : NULL;
}

static taskq_err_t queue_check(const char *queue)
{
    if (!queue)
        return TASKQ_EINVAL;
    size_t len = strlen(queue);
    if (len > TQ_QUEUE_MAX)
        return TASKQ_ETOOBIG;
    return proto_queue_is_valid(queue, len) ? TASKQ_OK : TASKQ_ENAME;
}

/* A settings op with {"queue": Q, key: value}: idempotent, resent. */
static taskq_err_t queue_op(taskq_client_t *self, const char *op, const char *queue,
                            const char *key, int is_bool, uint64_t val)
{
    taskq_err_t e = queue_check(queue);
    if (e != TASKQ_OK)
        return e;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    client_pack_kv_str(&pk, "queue", queue);
    if (is_bool)
        client_pack_kv_bool(&pk, key, val != 0);
    else
        client_pack_kv_u64(&pk, key, val);
    inmsg_t in;
    e = client_admin(self, op, &sb, ADMIN_RESEND, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e == TASKQ_OK)
        client_inmsg_clear(&in);
    return e;
}

taskq_err_t taskq_queue_pause(taskq_client_t *self, const char *queue, int paused)
{
    return queue_op(self, "queue_pause", queue, "paused", 1, paused != 0);
}

taskq_err_t taskq_queue_set_max_pending(taskq_client_t *self, const char *queue,
                                        uint64_t max_pending)
{
    return queue_op(self, "queue_set", queue, "max_pending", 0, max_pending);
}
