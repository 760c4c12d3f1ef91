/* client_info.c - worker nodes (WORKERS) and broker statistics (STATS). */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "tclock.h"
#include "tlog.h"

/* ---- workers and stats --------------------------------------------- */

struct taskq_workers {
    size_t n;
    taskq_node_info_t *nodes;
    taskq_child_info_t *children;
    char *strings;
};

static const char *put_str(char **p, proto_str_t s)
{
    char *r = *p;
    if (s.len)
        memcpy(r, s.ptr, s.len);
    r[s.len] = '\0';
    *p += s.len + 1;
    return r;
}

static taskq_err_t workers_from_msg(const proto_msg_t *m, taskq_workers_t **out)
{
    size_t nn = m->u.workers_reply.nnodes, nc = 0, sb = 1;
    const proto_node_t *src = m->u.workers_reply.nodes;
    for (size_t i = 0; i < nn; i++) {
        nc += src[i].nchildren;
        sb += src[i].id.len + src[i].host.len + 2;
        for (size_t j = 0; j < src[i].nchildren; j++)
            sb += src[i].children[j].state.len + src[i].children[j].task_name.len + 2;
    }
    taskq_workers_t *w = calloc(1, sizeof *w);
    if (w) {
        w->nodes = calloc(nn ? nn : 1, sizeof *w->nodes);
        w->children = calloc(nc ? nc : 1, sizeof *w->children);
        w->strings = malloc(sb);
    }
    if (!w || !w->nodes || !w->children || !w->strings) {
        taskq_workers_destroy(&w);
        return TASKQ_ENOMEM;
    }
    char *p = w->strings;
    taskq_child_info_t *c = w->children;
    for (size_t i = 0; i < nn; i++) {
        taskq_node_info_t *d = &w->nodes[i];
        d->id = put_str(&p, src[i].id);
        d->host = put_str(&p, src[i].host);
        d->pid = src[i].pid;
        d->slots = src[i].slots;
        d->last_heartbeat = src[i].last_heartbeat;
        d->nchildren = src[i].nchildren;
        d->children = c;
        for (size_t j = 0; j < src[i].nchildren; j++, c++) {
            const proto_child_t *sc = &src[i].children[j];
            c->pid = sc->pid;
            c->state = put_str(&p, sc->state);
            c->has_task = sc->has_task;
            c->task_id = sc->task_id;
            c->task_name = put_str(&p, sc->task_name);
            c->running_ms = sc->running_ms;
            c->done = sc->done;
            c->failed = sc->failed;
            c->rss_kb = sc->rss_kb;
        }
    }
    w->n = nn;
    *out = w;
    return TASKQ_OK;
}

taskq_err_t taskq_workers(taskq_client_t *self, taskq_workers_t **out)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!out)
        return TASKQ_EINVAL;
    *out = NULL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_WORKERS);
    uint64_t req = self->next_req++;
    m.u.workers.req = req;
    inmsg_t in;
    e = client_request(self, &m, req, PROTO_WORKERS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    e = workers_from_msg(&in.msg, out);
    client_inmsg_clear(&in);
    return e;
}

size_t taskq_workers_count(const taskq_workers_t *self)
{
    return self ? self->n : 0;
}

const taskq_node_info_t *taskq_workers_node(const taskq_workers_t *self, size_t i)
{
    return self && i < self->n ? &self->nodes[i] : NULL;
}

void taskq_workers_destroy(taskq_workers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    taskq_workers_t *w = *self_p;
    free(w->nodes);
    free(w->children);
    free(w->strings);
    free(w);
    *self_p = NULL;
}

taskq_err_t taskq_stats(taskq_client_t *self, taskq_stats_t *out)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!out)
        return TASKQ_EINVAL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_STATS);
    uint64_t req = self->next_req++;
    m.u.stats.req = req;
    inmsg_t in;
    e = client_request(self, &m, req, PROTO_STATS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    const proto_stats_t *s = &in.msg.u.stats_reply.stats;
    memset(out, 0, sizeof *out);
    out->queued = s->queued;
    out->running = s->running;
    out->succeeded = s->succeeded;
    out->failed = s->failed;
    out->total = s->total;
    out->submitted = s->submitted;
    out->nodes = s->nodes;
    out->children = s->children;
    out->uptime_ms = s->uptime_ms;
    out->purged = s->purged;
    proto_str_copy(out->broker_id, sizeof out->broker_id, s->broker);
    client_inmsg_clear(&in);
    return TASKQ_OK;
}
