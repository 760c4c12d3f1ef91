/*
 * client_life.c - the end of a task's life: revoke (ADMIN "revoke"), the
 * dead-letter set (ADMIN "failed"), re-run (ADMIN "rerun") and purge
 * (ADMIN "purge").
 *
 * Revoke, rerun and purge change state and are sent once (ADMIN_ONCE): a
 * resent revoke of one task would answer "already revoked", a resent
 * re-run EEXIST, and their counts would be wrong; a lost reply ends in
 * TASKQ_ETIMEDOUT instead. The listing is a read and is resent.
 */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "tlog.h"

#define RERUN_REPLY_MAX TQ_MAX_ARRAY /* new ids in one rerun reply (a lying peer) */

/* ---- selectors ------------------------------------------------------------- */

static taskq_err_t queue_check(const char *q)
{
    if (!q || !q[0])
        return TASKQ_OK;
    size_t len = strlen(q);
    if (len > TQ_QUEUE_MAX)
        return TASKQ_ETOOBIG;
    return proto_queue_is_valid(q, len) ? TASKQ_OK : TASKQ_ENAME;
}

static taskq_err_t name_check(const char *n)
{
    if (!n || !n[0])
        return TASKQ_OK;
    size_t len = strlen(n);
    if (len > TQ_NAME_MAX)
        return TASKQ_ETOOBIG;
    return proto_name_is_valid(n, len, TQ_NAME_MAX) ? TASKQ_OK : TASKQ_ENAME;
}

/* A failure code, or a prefix of codes when it ends in '*'. */
static taskq_err_t code_check(const char *c)
{
    if (!c || !c[0])
        return TASKQ_OK;
    size_t len = strlen(c);
    if (c[len - 1] == '*')
        len--;
    if (len > TQ_CODE_MAX)
        return TASKQ_ETOOBIG;
    return len == 0 || proto_code_is_valid(c, len) ? TASKQ_OK : TASKQ_EINVAL;
}

static taskq_err_t filter_check(const taskq_failed_filter_t *f)
{
    if (!f)
        return TASKQ_OK;
    taskq_err_t e = queue_check(f->queue);
    if (e == TASKQ_OK)
        e = name_check(f->name);
    if (e == TASKQ_OK)
        e = code_check(f->code);
    if (e == TASKQ_OK && f->since_ms < 0)
        e = TASKQ_EINVAL;
    return e;
}

static bool given(const char *s)
{
    return s && s[0];
}

/* The filter's fields (queue, name, code, since_ms) as map pairs; returns
 * how many it will pack when pk is NULL. */
static uint32_t pack_filter(msgpack_packer *pk, const taskq_failed_filter_t *f)
{
    if (!f)
        return 0;
    uint32_t k = 0;
    if (given(f->queue) && ++k && pk)
        client_pack_kv_str(pk, "queue", f->queue);
    if (given(f->name) && ++k && pk)
        client_pack_kv_str(pk, "name", f->name);
    if (given(f->code) && ++k && pk)
        client_pack_kv_str(pk, "code", f->code);
    if (f->since_ms > 0 && ++k && pk)
        client_pack_kv_u64(pk, "since_ms", (uint64_t)f->since_ms);
    return k;
}

/* ---- revoke ------------------------------------------------------------------ */

static taskq_err_t revoke_read(const msgpack_object *d, taskq_revoke_result_t *r)
{
    if (!d || d->type != MSGPACK_OBJECT_MAP) {
        tlog_warn("ADMIN_REPLY revoke: data is not a map");
        return TASKQ_EPROTO;
    }
    taskq_err_t e = client_get_u64(d, "revoked", &r->revoked);
    if (e == TASKQ_OK)
        e = client_get_u64(d, "terminal", &r->terminal);
    if (e == TASKQ_OK)
        e = client_get_u64(d, "not_found", &r->not_found);
    return e;
}

/* The options every revoke carries. */
static uint32_t pack_revoke_opts(msgpack_packer *pk, const taskq_revoke_opts_t *o)
{
    uint32_t k = 0;
    if (o->terminate && ++k && pk) {
        client_pack_kv_bool(pk, "terminate", true);
    }
    if (o->grace_ms > 0 && ++k && pk)
        client_pack_kv_u64(pk, "grace_ms", (uint64_t)o->grace_ms);
    if (given(o->reason) && ++k && pk)
        client_pack_kv_str(pk, "reason", o->reason);
    return k;
}

/* One ADMIN "revoke" of ids[0..n) (n > 0) or of the bulk selection. */
static taskq_err_t revoke_once(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                               const taskq_revoke_opts_t *o, taskq_revoke_result_t *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    uint32_t nstates = 0;
    for (int s = 0; s < TASKQ_NSTATES; s++)
        nstates += (o->states >> s) & 1u;
    uint32_t pairs = pack_revoke_opts(NULL, o);
    if (n > 0)
        pairs += 1;
    else
        pairs += (o->group != NULL) + given(o->queue) + given(o->name) + (nstates > 0);
    msgpack_pack_map(&pk, pairs);
    pack_revoke_opts(&pk, o);
    if (n > 0) {
        client_pack_kv_ids(&pk, "ids", ids, n);
    } else {
        if (o->group)
            client_pack_kv_bin(&pk, "group", o->group->b, sizeof o->group->b);
        if (given(o->queue))
            client_pack_kv_str(&pk, "queue", o->queue);
        if (given(o->name))
            client_pack_kv_str(&pk, "name", o->name);
        if (nstates > 0) {
            proto_pack_key(&pk, "states");
            msgpack_pack_array(&pk, nstates);
            for (int s = 0; s < TASKQ_NSTATES; s++)
                if ((o->states >> s) & 1u)
                    proto_pack_str(&pk, proto_str(taskq_state_name(s)));
        }
    }
    inmsg_t in;
    taskq_err_t e = client_admin(self, "revoke", &sb, ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    e = revoke_read(in.msg.u.admin_reply.data_obj, r);
    client_inmsg_clear(&in);
    return e;
}

taskq_err_t taskq_revoke(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                         const taskq_revoke_opts_t *opts, taskq_revoke_result_t *result)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n > 0 && !ids)
        return TASKQ_EINVAL;
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (result)
        memset(result, 0, sizeof *result);
    if (o.grace_ms < 0 || o.grace_ms > TQ_BACKOFF_MS_MAX)
        return TASKQ_EINVAL;
    if (given(o.reason) && strlen(o.reason) > TQ_REASON_MAX)
        return TASKQ_ETOOBIG;
    if (n == 0) {
        /* bulk: something must narrow it (revoking everything is not a
         * default); only non-terminal states can be revoked */
        if (!o.group && !given(o.queue) && !given(o.name))
            return TASKQ_EINVAL;
        if ((e = queue_check(o.queue)) != TASKQ_OK || (e = name_check(o.name)) != TASKQ_OK)
            return e;
        if (o.states >> TASKQ_NSTATES)
            return TASKQ_EINVAL;
        for (int s = 0; s < TASKQ_NSTATES; s++)
            if (((o.states >> s) & 1u) && taskq_state_is_terminal(s))
                return TASKQ_EINVAL;
    }
    taskq_revoke_result_t sum = {0, 0, 0};
    if (n == 0) {
        e = revoke_once(self, NULL, 0, &o, &sum);
    } else {
        /* chunks of TQ_REVOKE_MAX; a lone id answers ETERMINAL / ENOTFOUND,
         * which only a one-id call reports as an error */
        for (size_t i = 0; i < n && e == TASKQ_OK; i += TQ_REVOKE_MAX) {
            size_t k = n - i < TQ_REVOKE_MAX ? n - i : TQ_REVOKE_MAX;
            taskq_revoke_result_t r = {0, 0, 0};
            e = revoke_once(self, ids + i, k, &o, &r);
            if (n > 1 && k == 1 && e == TASKQ_ETERMINAL) {
                r.terminal = 1;
                e = TASKQ_OK;
            } else if (n > 1 && k == 1 && e == TASKQ_ENOTFOUND) {
                r.not_found = 1;
                e = TASKQ_OK;
            }
            sum.revoked += r.revoked;
            sum.terminal += r.terminal;
            sum.not_found += r.not_found;
        }
    }
    if (result)
        *result = sum;
    return e;
}

/* ---- the dead-letter set ---------------------------------------------------------- */

struct taskq_task_list {
    size_t n;
    taskq_task_t **v;
};

void taskq_task_list_destroy(taskq_task_list_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_task_list_t *l = *self_p;
    for (size_t i = 0; i < l->n; i++)
        taskq_task_destroy(&l->v[i]);
    free(l->v);
    free(l);
    *self_p = NULL;
}

size_t taskq_task_list_count(const taskq_task_list_t *self)
{
    return self ? self->n : 0;
}

const taskq_task_t *taskq_task_list_get(const taskq_task_list_t *self, size_t i)
{
    return self && i < self->n ? self->v[i] : NULL;
}

taskq_err_t taskq_failed(taskq_client_t *self, const taskq_failed_filter_t *filter,
                         taskq_task_list_t **out)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    if ((e = filter_check(filter)) != TASKQ_OK)
        return e;
    size_t limit = filter && filter->limit > 0 ? filter->limit : TQ_LIST_MAX;
    if (limit > TQ_LIST_MAX)
        limit = TQ_LIST_MAX;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, pack_filter(NULL, filter) + 1);
    pack_filter(&pk, filter);
    client_pack_kv_u64(&pk, "limit", limit);
    inmsg_t in;
    e = client_admin(self, "failed", &sb, ADMIN_RESEND, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *items;
    uint32_t n = 0;
    taskq_task_list_t *l = calloc(1, sizeof *l);
    if (!l) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    e = client_data_array(in.msg.u.admin_reply.data_obj, "tasks", TQ_LIST_MAX, &items, &n);
    if (e == TASKQ_OK && !(l->v = calloc(n ? n : 1, sizeof *l->v)))
        e = TASKQ_ENOMEM;
    for (uint32_t i = 0; e == TASKQ_OK && i < n; i++) {
        proto_task_rec_t rec;
        memset(&rec, 0, sizeof rec);
        e = proto_unpack_task_rec(&items[i], &rec);
        if (e != TASKQ_OK) {
            tlog_warn("ADMIN_REPLY failed: tasks[%u] is not a task record", i);
            e = TASKQ_EPROTO;
            break;
        }
        e = client_task_from_rec(&rec, &l->v[i]);
        if (e == TASKQ_OK)
            l->n++;
    }
    if (e == TASKQ_OK) {
        *out = l;
        l = NULL;
    }
out:
    taskq_task_list_destroy(&l);
    client_inmsg_clear(&in);
    return e;
}

/* ---- re-run ------------------------------------------------------------------------ */

taskq_err_t taskq_rerun(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                        const taskq_failed_filter_t *filter, taskq_id_t *new_ids,
                        uint64_t *count)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    size_t cap = n > 0 ? n : (count ? (size_t)*count : 0);
    if (count)
        *count = 0;
    if (n > 0 && !ids)
        return TASKQ_EINVAL;
    if (n > TQ_REVOKE_MAX)
        return TASKQ_ETOOBIG;
    if (n == 0 && (e = filter_check(filter)) != TASKQ_OK)
        return e;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    if (n > 0) {
        msgpack_pack_map(&pk, 1);
        client_pack_kv_ids(&pk, "ids", ids, n);
    } else {
        msgpack_pack_map(&pk, pack_filter(NULL, filter));
        pack_filter(&pk, filter);
    }
    inmsg_t in;
    e = client_admin(self, "rerun", &sb, ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    taskq_id_t *made = NULL;
    size_t k = 0;
    e = client_get_ids(in.msg.u.admin_reply.data_obj, "ids", n > 0 ? n : RERUN_REPLY_MAX, &made,
                       &k);
    if (e == TASKQ_OK) {
        if (new_ids && cap > 0 && k > 0)
            memcpy(new_ids, made, (k < cap ? k : cap) * sizeof *made);
        if (count)
            *count = k;
    }
    free(made);
    client_inmsg_clear(&in);
    return e;
}

/* ---- purge --------------------------------------------------------------------------- */

taskq_err_t taskq_purge(taskq_client_t *self, int state, int64_t older_than_ms,
                        uint64_t *purged)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (purged)
        *purged = 0;
    if (!taskq_state_is_terminal(state) || older_than_ms < 0)
        return TASKQ_EINVAL;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, 2);
    client_pack_kv_str(&pk, "state", taskq_state_name(state));
    client_pack_kv_u64(&pk, "older_than_ms", (uint64_t)older_than_ms);
    inmsg_t in;
    e = client_admin(self, "purge", &sb, ADMIN_ONCE, &in);
    msgpack_sbuffer_destroy(&sb);
    if (e != TASKQ_OK)
        return e;
    uint64_t p = 0;
    const msgpack_object *d = in.msg.u.admin_reply.data_obj;
    if (!d || proto_obj_u64(d, "purged", &p) != TASKQ_OK) {
        tlog_warn("ADMIN_REPLY purge: no 'purged'");
        e = TASKQ_EPROTO;
    } else if (purged) {
        *purged = p;
    }
    client_inmsg_clear(&in);
    return e;
}
