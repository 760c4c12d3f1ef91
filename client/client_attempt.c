/* client_attempt.c - every attempt of a task (ADMIN "attempts"). */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"

#define ATTEMPTS_MAX 100000 /* attempts listed for one task (a lying peer) */
#define STATE_MAX 32        /* "rate_limited" and friends */

struct taskq_attempts {
    size_t n;
    taskq_attempt_t *v;
    strpool_t sp;
};

void taskq_attempts_destroy(taskq_attempts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free((*self_p)->sp.base);
    free(*self_p);
    *self_p = NULL;
}

static taskq_err_t attempt_read(const msgpack_object *o, strpool_t *sp, taskq_attempt_t *a)
{
    memset(a, 0, sizeof *a);
    taskq_err_t e = client_get_u32(o, "attempt", &a->attempt);
    uint64_t pid = 0;
    if (e == TASKQ_OK)
        e = client_get_u64(o, "child_pid", &pid);
    if (e == TASKQ_OK && pid > INT32_MAX)
        e = TASKQ_EPROTO;
    a->child_pid = (int32_t)pid;
    if (e == TASKQ_OK)
        e = client_get_str(o, "worker", TQ_NODE_MAX, sp, &a->worker);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "started_at", &a->started_at);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "finished_at", &a->finished_at);
    if (e == TASKQ_OK)
        e = client_get_str(o, "state", STATE_MAX, sp, &a->state);
    if (e == TASKQ_OK)
        e = client_get_str(o, "code", TQ_CODE_MAX, sp, &a->code);
    if (e == TASKQ_OK)
        e = client_get_str(o, "message", TQ_ERROR_MAX, sp, &a->message);
    return e;
}

taskq_err_t taskq_attempts(taskq_client_t *self, const taskq_id_t *id, taskq_attempts_t **out)
{
    if (!id || !out)
        return TASKQ_EINVAL;
    *out = NULL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    client_pack_kv_bin(&pk, "id", id->b, sizeof id->b);
    inmsg_t in;
    taskq_err_t e = client_admin(self, "attempts", &sb, ADMIN_RESEND, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *items;
    uint32_t n;
    taskq_attempts_t *r = calloc(1, sizeof *r);
    if (!r) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    e = client_data_array(in.msg.u.admin_reply.data_obj, "attempts", ATTEMPTS_MAX, &items, &n);
    if (e == TASKQ_OK)
        e = strpool_init(&r->sp, in.f.body_len + 4u * n + 1);
    if (e == TASKQ_OK && !(r->v = calloc(n ? n : 1, sizeof *r->v)))
        e = TASKQ_ENOMEM;
    for (uint32_t i = 0; e == TASKQ_OK && i < n; i++)
        e = attempt_read(&items[i], &r->sp, &r->v[i]);
    if (e == TASKQ_OK) {
        r->n = n;
        *out = r;
        r = NULL;
    }
out:
    taskq_attempts_destroy(&r);
    client_inmsg_clear(&in);
    return e;
}

size_t taskq_attempts_count(const taskq_attempts_t *self)
{
    return self ? self->n : 0;
}

const taskq_attempt_t *taskq_attempts_get(const taskq_attempts_t *self, size_t i)
{
    return self && i < self->n ? &self->v[i] : NULL;
}
