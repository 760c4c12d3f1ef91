/* client_limit.c - global rate and concurrency limits: set ("limit_set"),
 * remove ("limit_rm"), list ("limits"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"

#define LIMITS_LIST_MAX 100000 /* limits listed (a lying peer) */
#define RATE_MAX 1e9           /* dispatches per second */

struct taskq_limits {
    size_t n;
    taskq_limit_t *v;
    strpool_t sp;
};

/* "task:NAME" (name charset) or "queue:Q" (queue charset). */
static taskq_err_t key_check(const char *key)
{
    if (!key)
        return TASKQ_EINVAL;
    size_t len = strlen(key);
    if (len > TQ_LIMIT_KEY_MAX)
        return TASKQ_ETOOBIG;
    if (!strncmp(key, "task:", 5))
        return proto_name_is_valid(key + 5, len - 5, TQ_NAME_MAX) ? TASKQ_OK : TASKQ_EINVAL;
    if (!strncmp(key, "queue:", 6))
        return proto_queue_is_valid(key + 6, len - 6) ? TASKQ_OK : TASKQ_EINVAL;
    return TASKQ_EINVAL;
}

taskq_err_t taskq_limit_set(taskq_client_t *self, const taskq_limit_t *limit)
{
    if (!limit)
        return TASKQ_EINVAL;
    taskq_err_t e = key_check(limit->key);
    if (e != TASKQ_OK)
        return e;
    if (!isfinite(limit->rate) || limit->rate < 0 || limit->rate > RATE_MAX)
        return TASKQ_EINVAL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 4);
    client_pack_kv_str(&pk, "key", limit->key);
    client_pack_kv_f64(&pk, "rate", limit->rate);
    client_pack_kv_u64(&pk, "burst", limit->burst);
    client_pack_kv_u64(&pk, "max_running", limit->max_running);
    inmsg_t in;
    e = client_admin(self, "limit_set", &sb, ADMIN_RESEND, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e == TASKQ_OK)
        client_inmsg_clear(&in);
    return e;
}

taskq_err_t taskq_limit_rm(taskq_client_t *self, const char *key)
{
    taskq_err_t e = key_check(key);
    if (e != TASKQ_OK)
        return e;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    client_pack_kv_str(&pk, "key", key);
    inmsg_t in;
    /* a resend after a lost reply would say ENOTFOUND: send once */
    e = client_admin(self, "limit_rm", &sb, ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e == TASKQ_OK)
        client_inmsg_clear(&in);
    return e;
}

void taskq_limits_destroy(taskq_limits_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->v);
    free((*self_p)->sp.base);
    free(*self_p);
    *self_p = NULL;
}

static taskq_err_t limit_read(const msgpack_object *o, strpool_t *sp, taskq_limit_t *l)
{
    memset(l, 0, sizeof *l);
    proto_str_t key;
    if (proto_obj_str(o, "key", TQ_LIMIT_KEY_MAX, &key) != TASKQ_OK)
        return TASKQ_EPROTO; /* required */
    l->key = strpool_put(sp, key.ptr, key.len);
    taskq_err_t e = l->key ? TASKQ_OK : TASKQ_EPROTO;
    if (e == TASKQ_OK)
        e = client_get_f64(o, "rate", &l->rate);
    if (e == TASKQ_OK)
        e = client_get_u32(o, "burst", &l->burst);
    if (e == TASKQ_OK)
        e = client_get_u32(o, "max_running", &l->max_running);
    if (e == TASKQ_OK)
        e = client_get_u32(o, "running", &l->running);
    if (e == TASKQ_OK)
        e = client_get_f64(o, "tokens", &l->tokens);
    if (e == TASKQ_OK)
        e = client_get_i64(o, "paused_until", &l->paused_until);
    if (e == TASKQ_OK && (!isfinite(l->rate) || !isfinite(l->tokens)))
        e = TASKQ_EPROTO;
    return e;
}

taskq_err_t taskq_limits(taskq_client_t *self, taskq_limits_t **out)
{
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    inmsg_t in;
    taskq_err_t e = client_admin(self, "limits", NULL, ADMIN_RESEND, &in);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *items;
    uint32_t n;
    taskq_limits_t *r = calloc(1, sizeof *r);
    if (!r) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    e = client_data_array(in.msg.u.admin_reply.data_obj, "limits", LIMITS_LIST_MAX, &items, &n);
    if (e == TASKQ_OK)
        e = strpool_init(&r->sp, in.f.body_len + n + 1);
    if (e == TASKQ_OK && !(r->v = calloc(n ? n : 1, sizeof *r->v)))
        e = TASKQ_ENOMEM;
    for (uint32_t i = 0; e == TASKQ_OK && i < n; i++)
        e = limit_read(&items[i], &r->sp, &r->v[i]);
    if (e == TASKQ_OK) {
        r->n = n;
        *out = r;
        r = NULL;
    }
out:
    taskq_limits_destroy(&r);
    client_inmsg_clear(&in);
    return e;
}

size_t taskq_limits_count(const taskq_limits_t *self)
{
    return self ? self->n : 0;
}

const taskq_limit_t *taskq_limits_get(const taskq_limits_t *self, size_t i)
{
    return self && i < self->n ? &self->v[i] : NULL;
}
