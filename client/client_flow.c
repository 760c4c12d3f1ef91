/*
 * client_flow.c - workflows: the graph builder (taskq_flow_*), the
 * shorthands (chain, group, chord, map) and group progress (ADMIN "group").
 *
 * A workflow is submitted as ONE SUBMIT holding every task and group
 * (client_submit_specs with a graph): the broker inserts it in one
 * transaction, all or nothing, and a resend after a lost acknowledgement
 * carries the same ids and req, so it is accepted once. flow.c checks the
 * graph and orders it (parents and group members before what waits for
 * them) before anything is sent.
 */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "flow.h"
#include "tlog.h"

/* ---- the builder ---------------------------------------------------------- */

typedef struct {
    taskq_task_spec_t spec; /* its strings and args point into mem */
    void *mem;
} fnode_t;

struct taskq_flow {
    fnode_t *v;
    flow_node_t *nodes;
    size_t n, cap;
    flow_group_t *groups;
    size_t ng, gcap;
};

taskq_flow_t *taskq_flow_new(void)
{
    return calloc(1, sizeof(taskq_flow_t));
}

void taskq_flow_destroy(taskq_flow_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_flow_t *f = *self_p;
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].mem);
    free(f->v);
    free(f->nodes);
    free(f->groups);
    free(f);
    *self_p = NULL;
}

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies a C string into *p (advanced); NULL stays NULL. */
static const char *put(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *r = *p;
    *p += n;
    return r;
}

/* A deep copy of src in dst, its strings and args in one block (*mem). */
static taskq_err_t spec_copy(const taskq_task_spec_t *src, taskq_task_spec_t *dst, void **mem)
{
    size_t sz = src->args_len + slen(src->name) + slen(src->queue) + slen(src->jitter) +
                slen(src->retry_on) + slen(src->no_retry_on) + slen(src->unique_key) +
                slen(src->unique_until) + 1;
    char *m = malloc(sz);
    if (!m)
        return TASKQ_ENOMEM;
    *dst = *src;
    char *p = m;
    if (src->args_len > 0) {
        memcpy(p, src->args, src->args_len);
        dst->args = p;
        p += src->args_len;
    } else {
        dst->args = NULL;
    }
    dst->name = put(&p, src->name);
    dst->queue = put(&p, src->queue);
    dst->jitter = put(&p, src->jitter);
    dst->retry_on = put(&p, src->retry_on);
    dst->no_retry_on = put(&p, src->no_retry_on);
    dst->unique_key = put(&p, src->unique_key);
    dst->unique_until = put(&p, src->unique_until);
    dst->queue_out[0] = '\0';
    dst->soft_limit = 0;
    dst->duplicate = 0;
    memset(&dst->holder_id, 0, sizeof dst->holder_id);
    *mem = m;
    return TASKQ_OK;
}

int taskq_flow_add(taskq_flow_t *self, const taskq_task_spec_t *spec)
{
    if (!self || !spec || self->n >= TQ_GRAPH_MAX || client_spec_check(spec) != TASKQ_OK)
        return -1;
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 16;
        fnode_t *v = realloc(self->v, cap * sizeof *v);
        if (!v)
            return -1;
        self->v = v;
        flow_node_t *d = realloc(self->nodes, cap * sizeof *d);
        if (!d)
            return -1;
        self->nodes = d;
        self->cap = cap;
    }
    fnode_t *x = &self->v[self->n];
    if (spec_copy(spec, &x->spec, &x->mem) != TASKQ_OK)
        return -1;
    if (taskq_id_is_zero(&x->spec.id))
        taskq_id_generate(&x->spec.id);
    self->nodes[self->n] = (flow_node_t){.parent = -1, .group = -1, .index = 0, .callback_of = -1};
    return (int)self->n++;
}

static bool node_ok(const taskq_flow_t *self, int i)
{
    return self && i >= 0 && (size_t)i < self->n;
}

int taskq_flow_after(taskq_flow_t *self, int child, int parent)
{
    if (!node_ok(self, child) || !node_ok(self, parent) || child == parent ||
        self->nodes[child].parent >= 0)
        return -1;
    self->nodes[child].parent = parent;
    return 0;
}

int taskq_flow_group(taskq_flow_t *self, const int *members, size_t n)
{
    if (!self || (n > 0 && !members) || self->ng >= TQ_GROUPS_MAX || n > self->n)
        return -1;
    for (size_t k = 0; k < n; k++) {
        int i = members[k];
        if (!node_ok(self, i) || self->nodes[i].group >= 0 || self->nodes[i].callback_of >= 0)
            return -1;
        for (size_t j = 0; j < k; j++)
            if (members[j] == i)
                return -1; /* twice in one group */
    }
    if (self->ng == self->gcap) {
        size_t cap = self->gcap ? self->gcap * 2 : 4;
        flow_group_t *g = realloc(self->groups, cap * sizeof *g);
        if (!g)
            return -1;
        self->groups = g;
        self->gcap = cap;
    }
    int g = (int)self->ng++;
    flow_group_t *grp = &self->groups[g];
    taskq_id_generate(&grp->id);
    grp->size = (uint32_t)n;
    grp->on_fail = 0;
    grp->callback = -1;
    for (size_t k = 0; k < n; k++) {
        self->nodes[members[k]].group = g;
        self->nodes[members[k]].index = (uint32_t)k;
    }
    return g;
}

int taskq_flow_chord(taskq_flow_t *self, int group, int callback, const char *on_fail)
{
    int of = flow_on_fail(on_fail);
    if (!self || group < 0 || (size_t)group >= self->ng || !node_ok(self, callback) || of < 0 ||
        self->groups[group].callback >= 0 || self->nodes[callback].group >= 0 ||
        self->nodes[callback].callback_of >= 0)
        return -1;
    self->groups[group].callback = callback;
    self->groups[group].on_fail = of;
    self->nodes[callback].callback_of = group;
    return 0;
}

const taskq_id_t *taskq_flow_task_id(const taskq_flow_t *self, int node)
{
    return node_ok(self, node) ? &self->v[node].spec.id : NULL;
}

const taskq_id_t *taskq_flow_group_id(const taskq_flow_t *self, int group)
{
    return self && group >= 0 && (size_t)group < self->ng ? &self->groups[group].id : NULL;
}

/* Args a result can be appended to: none (= []), nil or an array. */
static bool args_appendable(const taskq_task_spec_t *s)
{
    if (s->args_len == 0)
        return true;
    uint8_t b = ((const uint8_t *)s->args)[0];
    return (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd || b == 0xc0;
}

/* Submits specs[0..n) with graph nodes[0..n) (already in submit order).
 * A chained task (unless immutable) and a chord callback get results
 * appended to their args: those must be an array (or empty). */
static taskq_err_t submit_graph(taskq_client_t *self, taskq_task_spec_t *specs,
                                const flow_node_t *nodes, size_t n, const flow_group_t *groups,
                                size_t ng)
{
    for (size_t i = 0; i < n; i++) {
        bool appends = (nodes[i].parent >= 0 && !specs[i].immutable) || nodes[i].callback_of >= 0;
        if (appends && specs[i].args && !args_appendable(&specs[i])) {
            tlog_debug("workflow task %zu (%s): args must be an array to receive results", i,
                       specs[i].name ? specs[i].name : "?");
            return TASKQ_EINVAL;
        }
    }
    client_graph_t g = {.nodes = nodes, .groups = groups, .ngroups = ng};
    return client_submit_specs(self, specs, n, NULL, &g);
}

taskq_err_t taskq_flow_submit(taskq_client_t *self, taskq_flow_t *flow)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!flow)
        return TASKQ_EINVAL;
    size_t n = flow->n;
    if (n == 0)
        return TASKQ_OK; /* nothing to run (an empty group without a callback) */
    size_t *order = malloc(n * sizeof *order);
    size_t *pos = malloc(n * sizeof *pos);
    taskq_task_spec_t *specs = malloc(n * sizeof *specs);
    flow_node_t *nodes = malloc(n * sizeof *nodes);
    if (!order || !pos || !specs || !nodes) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    const char *why = NULL;
    e = flow_plan(flow->nodes, n, flow->groups, flow->ng, order, &why);
    if (e != TASKQ_OK) {
        tlog_debug("workflow refused before sending: %s", why ? why : taskq_strerror(e));
        goto out;
    }
    for (size_t k = 0; k < n; k++)
        pos[order[k]] = k;
    /* the wire order; groups keep their indexes (callbacks are not sent by
     * index) */
    for (size_t k = 0; k < n; k++) {
        const flow_node_t *d = &flow->nodes[order[k]];
        specs[k] = flow->v[order[k]].spec;
        nodes[k] = *d;
        nodes[k].parent = d->parent >= 0 ? (int32_t)pos[d->parent] : -1;
    }
    e = submit_graph(self, specs, nodes, n, flow->groups, flow->ng);
    for (size_t k = 0; k < n; k++) {
        taskq_task_spec_t *s = &flow->v[order[k]].spec;
        memcpy(s->queue_out, specs[k].queue_out, sizeof s->queue_out);
        s->soft_limit = specs[k].soft_limit;
        s->duplicate = specs[k].duplicate;
        s->holder_id = specs[k].holder_id;
    }
out:
    free(order);
    free(pos);
    free(specs);
    free(nodes);
    return e;
}

/* ---- shorthands ------------------------------------------------------------- */

taskq_err_t taskq_chain(taskq_client_t *self, taskq_task_spec_t *specs, size_t n)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n == 0)
        return TASKQ_OK;
    if (!specs)
        return TASKQ_EINVAL;
    if (n > TQ_GRAPH_MAX)
        return TASKQ_ETOOBIG;
    flow_node_t *nodes = malloc(n * sizeof *nodes);
    if (!nodes)
        return TASKQ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        nodes[i] = (flow_node_t){.parent = (int32_t)i - 1, .group = -1, .callback_of = -1};
    e = submit_graph(self, specs, nodes, n, NULL, 0);
    free(nodes);
    return e;
}

/* members specs[0..n) and, if cb, the callback as specs[n]. */
static taskq_err_t submit_group(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                                bool cb, int on_fail, taskq_id_t *group_id)
{
    size_t total = n + (cb ? 1 : 0);
    if (total > TQ_GRAPH_MAX)
        return TASKQ_ETOOBIG;
    /* always a fresh group id: a retry with the same task ids is a no-op
     * on the broker (the first group stands; a member's record names it) */
    flow_group_t g = {.size = (uint32_t)n, .on_fail = on_fail, .callback = cb ? (int32_t)n : -1};
    taskq_id_generate(&g.id);
    if (group_id)
        *group_id = g.id;
    if (total == 0)
        return TASKQ_OK; /* an empty group without a callback: nothing to run */
    flow_node_t *nodes = malloc(total * sizeof *nodes);
    if (!nodes)
        return TASKQ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        nodes[i] = (flow_node_t){.parent = -1, .group = 0, .index = (uint32_t)i, .callback_of = -1};
    if (cb)
        nodes[n] = (flow_node_t){.parent = -1, .group = -1, .callback_of = 0};
    taskq_err_t e = submit_graph(self, specs, nodes, total, &g, 1);
    free(nodes);
    return e;
}

taskq_err_t taskq_group(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                        taskq_id_t *group_id)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n > 0 && !specs)
        return TASKQ_EINVAL;
    return submit_group(self, specs, n, false, 0, group_id);
}

taskq_err_t taskq_chord(taskq_client_t *self, taskq_task_spec_t *specs, size_t n,
                        taskq_task_spec_t *callback, const char *on_fail, taskq_id_t *group_id)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    int of = flow_on_fail(on_fail);
    if ((n > 0 && !specs) || !callback || of < 0)
        return TASKQ_EINVAL;
    if (n + 1 > TQ_GRAPH_MAX)
        return TASKQ_ETOOBIG;
    /* members and callback side by side for one submit; copied back */
    taskq_task_spec_t *all = malloc((n + 1) * sizeof *all);
    if (!all)
        return TASKQ_ENOMEM;
    if (n > 0)
        memcpy(all, specs, n * sizeof *all);
    all[n] = *callback;
    e = submit_group(self, all, n, true, of, group_id);
    if (n > 0)
        memcpy(specs, all, n * sizeof *all);
    *callback = all[n];
    free(all);
    return e;
}

taskq_err_t taskq_map(taskq_client_t *self, const char *name, const void *items,
                      size_t items_len, size_t chunk, taskq_task_spec_t *then,
                      taskq_id_t *group_id, taskq_id_t **ids, size_t *nids)
{
    if (ids)
        *ids = NULL;
    if (nids)
        *nids = 0;
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!name || !items)
        return TASKQ_EINVAL;
    uint8_t *buf = NULL;
    size_t *off = NULL, nch = 0;
    e = flow_map_args(items, items_len, chunk, &buf, &off, &nch);
    if (e != TASKQ_OK)
        return e;
    bool cb = then != NULL;
    taskq_task_spec_t *specs = calloc(nch + 1, sizeof *specs);
    taskq_id_t *out = calloc(nch ? nch : 1, sizeof *out);
    if (!specs || !out) {
        e = TASKQ_ENOMEM;
        goto done;
    }
    for (size_t k = 0; k < nch; k++) {
        specs[k].name = name;
        specs[k].args = buf + off[k];
        specs[k].args_len = off[k + 1] - off[k];
    }
    if (cb)
        specs[nch] = *then;
    e = submit_group(self, specs, nch, cb, 0, group_id);
    if (cb)
        *then = specs[nch];
    for (size_t k = 0; k < nch; k++)
        out[k] = specs[k].id;
    if (e == TASKQ_OK && ids) {
        *ids = out;
        out = NULL;
    }
    if (e == TASKQ_OK && nids)
        *nids = nch;
done:
    free(specs);
    free(out);
    free(buf);
    free(off);
    return e;
}

/* ---- group progress --------------------------------------------------------- */

static taskq_err_t group_request(taskq_client_t *self, const taskq_id_t *id, bool members,
                                 inmsg_t *in)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    client_params_init(&sb, &pk);
    msgpack_pack_map(&pk, members ? 2 : 1);
    client_pack_kv_bin(&pk, "id", id->b, sizeof id->b);
    if (members)
        client_pack_kv_bool(&pk, "members", true);
    taskq_err_t e = client_admin(self, "group", &sb, ADMIN_RESEND, in);
    msgpack_sbuffer_destroy(&sb);
    return e;
}

taskq_err_t taskq_group_status(taskq_client_t *self, const taskq_id_t *group_id,
                               taskq_group_info_t *out)
{
    if (!group_id || !out)
        return TASKQ_EINVAL;
    inmsg_t in;
    taskq_err_t e = group_request(self, group_id, false, &in);
    if (e != TASKQ_OK)
        return e;
    const msgpack_object *d = in.msg.u.admin_reply.data_obj;
    taskq_group_info_t g;
    memset(&g, 0, sizeof g);
    g.id = *group_id;
    int64_t cbs = -1;
    proto_str_t of = {"", 0};
    if (!d || d->type != MSGPACK_OBJECT_MAP) {
        e = TASKQ_EPROTO;
    } else {
        e = client_get_u64(d, "total", &g.total);
        if (e == TASKQ_OK)
            e = client_get_u64(d, "succeeded", &g.succeeded);
        if (e == TASKQ_OK)
            e = client_get_u64(d, "failed", &g.failed);
        if (e == TASKQ_OK)
            e = client_get_u64(d, "remaining", &g.remaining);
        if (e == TASKQ_OK)
            e = client_get_id(d, "callback", &g.callback);
        if (e == TASKQ_OK)
            e = client_get_i64(d, "callback_state", &cbs);
        taskq_err_t se = proto_obj_str(d, "on_fail", 16, &of);
        if (e == TASKQ_OK && se != TASKQ_OK && se != TASKQ_ENOTFOUND)
            e = TASKQ_EPROTO;
    }
    if (e == TASKQ_OK && (cbs < -1 || cbs >= TASKQ_NSTATES)) {
        tlog_warn("ADMIN_REPLY group: callback_state %lld out of range", (long long)cbs);
        e = TASKQ_EPROTO;
    }
    if (e == TASKQ_OK) {
        /* static words: the reply's buffer goes away below */
        g.on_fail = proto_str_eq(of, "settle") ? "settle" : "fail";
        g.callback_state = taskq_id_is_zero(&g.callback) ? -1 : (int)cbs;
        *out = g;
    }
    client_inmsg_clear(&in);
    return e;
}

taskq_err_t taskq_group_members(taskq_client_t *self, const taskq_id_t *group_id,
                                taskq_id_t **ids, size_t *n)
{
    if (!group_id || !ids || !n)
        return TASKQ_EINVAL;
    *ids = NULL;
    *n = 0;
    inmsg_t in;
    taskq_err_t e = group_request(self, group_id, true, &in);
    if (e != TASKQ_OK)
        return e;
    e = client_get_ids(in.msg.u.admin_reply.data_obj, "members", TQ_GRAPH_MAX, ids, n);
    client_inmsg_clear(&in);
    return e;
}
