/*
 * client_admin.c - ADMIN requests (op + params map -> ADMIN_REPLY data),
 * the packers for params, the bounded readers for reply data, and the test
 * clock. The nouns (attempts, queues, limits, schedules) have a file each.
 *
 * The broker is a peer like any other: every value read from a reply is
 * type-checked and bounded (proto_obj_* readers), lists are capped, and the
 * strings copied out go to a pool sized by the reply body, so a lying reply
 * is TASKQ_EPROTO, never an overflow.
 */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "tlog.h"

/* ---- request ------------------------------------------------------------ */

taskq_err_t client_admin(taskq_client_t *self, const char *op, const msgpack_sbuffer *params,
                         int resend, inmsg_t *in)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    static const uint8_t EMPTY_MAP[1] = {0x80};
    proto_msg_t m;
    proto_msg_init(&m, PROTO_ADMIN);
    uint64_t req = self->next_req++;
    m.u.admin.req = req;
    m.u.admin.op = proto_str(op);
    if (params && params->size > 0)
        m.u.admin.params = (proto_bin_t){(const uint8_t *)params->data, (uint32_t)params->size};
    else
        m.u.admin.params = (proto_bin_t){EMPTY_MAP, 1};
    return client_request_ex(self, &m, req, PROTO_ADMIN_REPLY, in, resend == ADMIN_RESEND);
}

void client_params_init(msgpack_sbuffer *sb, msgpack_packer *pk)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

void client_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    proto_pack_key(pk, key);
    proto_pack_str(pk, proto_str(val ? val : ""));
}

void client_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
    proto_pack_key(pk, key);
    msgpack_pack_uint64(pk, val);
}

void client_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
    proto_pack_key(pk, key);
    if (val)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void client_pack_kv_f64(msgpack_packer *pk, const char *key, double val)
{
    proto_pack_key(pk, key);
    msgpack_pack_double(pk, val);
}

void client_pack_kv_bin(msgpack_packer *pk, const char *key, const void *p, size_t len)
{
    proto_pack_key(pk, key);
    msgpack_pack_bin(pk, len);
    if (len)
        msgpack_pack_bin_body(pk, p, len);
}

/* ---- reading reply data ------------------------------------------------- */

taskq_err_t strpool_init(strpool_t *sp, size_t cap)
{
    sp->base = malloc(cap ? cap : 1);
    sp->cap = cap ? cap : 1;
    sp->used = 0;
    return sp->base ? TASKQ_OK : TASKQ_ENOMEM;
}

const char *strpool_put(strpool_t *sp, const void *p, size_t len)
{
    if (len >= sp->cap - sp->used)
        return NULL;
    char *r = sp->base + sp->used;
    if (len)
        memcpy(r, p, len);
    r[len] = '\0';
    sp->used += len + 1;
    return r;
}

taskq_err_t client_data_array(const msgpack_object *data, const char *key, size_t max,
                              const msgpack_object **items, uint32_t *n)
{
    *items = NULL;
    *n = 0;
    const msgpack_object *a = data && data->type == MSGPACK_OBJECT_MAP ? proto_obj_get(data, key)
                                                                        : NULL;
    if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > max) {
        tlog_warn("ADMIN_REPLY: '%s' is missing or not an array of at most %zu", key, max);
        return TASKQ_EPROTO;
    }
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        if (a->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
            tlog_warn("ADMIN_REPLY: %s[%u] is not a map", key, i);
            return TASKQ_EPROTO;
        }
    }
    *items = a->via.array.ptr;
    *n = a->via.array.size;
    return TASKQ_OK;
}

/* ENOTFOUND (absent) is fine for an optional field; anything else is not. */
static taskq_err_t optional(taskq_err_t e, const char *key)
{
    if (e == TASKQ_OK || e == TASKQ_ENOTFOUND)
        return TASKQ_OK;
    tlog_warn("ADMIN_REPLY: field '%s' has a wrong type or is out of range", key);
    return TASKQ_EPROTO;
}

static bool is_nil(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = proto_obj_get(map, key);
    return v && v->type == MSGPACK_OBJECT_NIL;
}

taskq_err_t client_get_str(const msgpack_object *map, const char *key, size_t max, strpool_t *sp,
                           const char **out)
{
    proto_str_t s = {"", 0};
    if (!is_nil(map, key)) {
        taskq_err_t e = optional(proto_obj_str(map, key, max, &s), key);
        if (e != TASKQ_OK)
            return e;
    }
    const char *r = strpool_put(sp, s.ptr, s.len);
    if (!r)
        return TASKQ_EPROTO;
    *out = r;
    return TASKQ_OK;
}

taskq_err_t client_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    return optional(proto_obj_u64(map, key, out), key);
}

taskq_err_t client_get_u32(const msgpack_object *map, const char *key, uint32_t *out)
{
    uint64_t v = *out;
    taskq_err_t e = client_get_u64(map, key, &v);
    if (e == TASKQ_OK && v > UINT32_MAX)
        e = optional(TASKQ_EPROTO, key);
    if (e == TASKQ_OK)
        *out = (uint32_t)v;
    return e;
}

taskq_err_t client_get_i64(const msgpack_object *map, const char *key, int64_t *out)
{
    if (is_nil(map, key))
        return TASKQ_OK;
    return optional(proto_obj_i64(map, key, out), key);
}

taskq_err_t client_get_f64(const msgpack_object *map, const char *key, double *out)
{
    return optional(proto_obj_f64(map, key, out), key);
}

taskq_err_t client_get_bool(const msgpack_object *map, const char *key, int *out)
{
    bool b = *out != 0;
    taskq_err_t e = optional(proto_obj_bool(map, key, &b), key);
    if (e == TASKQ_OK)
        *out = b ? 1 : 0;
    return e;
}

taskq_err_t client_get_id(const msgpack_object *map, const char *key, taskq_id_t *out)
{
    memset(out, 0, sizeof *out);
    if (is_nil(map, key))
        return TASKQ_OK;
    proto_bin_t b = {NULL, 0};
    taskq_err_t e = proto_obj_bin(map, key, 16, &b);
    if (e == TASKQ_ENOTFOUND)
        return TASKQ_OK;
    if (e != TASKQ_OK || b.len != 16)
        return optional(TASKQ_EPROTO, key);
    memcpy(out->b, b.ptr, 16);
    return TASKQ_OK;
}

void client_pack_kv_ids(msgpack_packer *pk, const char *key, const taskq_id_t *ids, size_t n)
{
    proto_pack_key(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_bin(pk, sizeof ids[i].b);
        msgpack_pack_bin_body(pk, ids[i].b, sizeof ids[i].b);
    }
}

taskq_err_t client_get_ids(const msgpack_object *data, const char *key, size_t max,
                           taskq_id_t **ids, size_t *n)
{
    *ids = NULL;
    *n = 0;
    const msgpack_object *a = data && data->type == MSGPACK_OBJECT_MAP ? proto_obj_get(data, key)
                                                                        : NULL;
    if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > max) {
        tlog_warn("ADMIN_REPLY: '%s' is missing or not an array of at most %zu ids", key, max);
        return TASKQ_EPROTO;
    }
    uint32_t k = a->via.array.size;
    if (k == 0)
        return TASKQ_OK;
    taskq_id_t *v = malloc(k * sizeof *v);
    if (!v)
        return TASKQ_ENOMEM;
    for (uint32_t i = 0; i < k; i++) {
        const msgpack_object *o = &a->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 16) {
            tlog_warn("ADMIN_REPLY: %s[%u] is not a 16-byte id", key, i);
            free(v);
            return TASKQ_EPROTO;
        }
        memcpy(v[i].b, o->via.bin.ptr, 16);
    }
    *ids = v;
    *n = k;
    return TASKQ_OK;
}

/* ---- test clock --------------------------------------------------------- */

taskq_err_t taskq_test_clock(taskq_client_t *self, int64_t advance_ms, int64_t set_ms,
                             int64_t *now_ms)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (advance_ms < 0 || set_ms < 0)
        return TASKQ_EINVAL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 1);
    if (set_ms > 0)
        client_pack_kv_u64(&pk, "set_ms", (uint64_t)set_ms);
    else
        client_pack_kv_u64(&pk, "advance_ms", (uint64_t)advance_ms);
    inmsg_t in;
    /* advancing twice would be wrong: only "set" may be resent */
    e = client_admin(self, "clock", &sb, set_ms > 0 ? ADMIN_RESEND : ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    int64_t now = 0;
    const msgpack_object *d = in.msg.u.admin_reply.data_obj;
    if (!d || proto_obj_i64(d, "now", &now) != TASKQ_OK) {
        tlog_warn("ADMIN_REPLY clock: no 'now'");
        e = TASKQ_EPROTO;
    } else if (now_ms) {
        *now_ms = now;
    }
    client_inmsg_clear(&in);
    return e;
}
