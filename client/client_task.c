/*
 * client_task.c - task records (STATUS) and waiting for results (WAIT).
 * A wait registers its ids with the broker, delivers each RESULT once, and
 * re-registers the outstanding ids after 2 s of silence (a restarted broker
 * has forgotten them; a live one ignores the repeat of (peer, req, id)).
 */
#include <stdlib.h>
#include <string.h>

#include "client_priv.h"
#include "tclock.h"
#include "tlog.h"

/* ---- tasks ---------------------------------------------------------- */

/* One allocation: the struct, then its strings, then the result bytes. */
taskq_err_t client_task_from_rec(const proto_task_rec_t *r, taskq_task_t **out)
{
    size_t rlen = r->has_result ? r->result.len : 0;
    enum { NSTR = 8 };
    const proto_str_t *src[NSTR] = {&r->name,  &r->worker, &r->progress_message, &r->error,
                                    &r->queue, &r->code,   &r->schedule,         &r->unique_key};
    size_t sz = sizeof(taskq_task_t) + NSTR + rlen;
    for (int i = 0; i < NSTR; i++)
        sz += src[i]->len;
    taskq_task_t *t = malloc(sz);
    if (!t)
        return TASKQ_ENOMEM;
    char *p = (char *)(t + 1);
    const char *dst[NSTR];
    for (int i = 0; i < NSTR; i++) {
        if (src[i]->len)
            memcpy(p, src[i]->ptr, src[i]->len);
        p[src[i]->len] = '\0';
        dst[i] = p;
        p += src[i]->len + 1;
    }
    *t = (taskq_task_t){
        .id = r->id, .name = dst[0], .state = r->state, .attempts = r->attempts,
        .max_attempts = r->max_attempts, .worker = dst[1], .child_pid = r->child_pid,
        .submitted_at = r->submitted_at, .started_at = r->started_at,
        .finished_at = r->finished_at, .progress_current = r->progress_current,
        .progress_total = r->progress_total, .progress_message = dst[2],
        .result = NULL, .result_len = 0, .error = dst[3], .queue = dst[4],
        .priority = r->priority < 0 ? TQ_DEFAULT_PRIORITY : r->priority,
        .failures = r->failures, .code = dst[5], .due_at = r->due_at,
        .expires_at = r->expires_at, .schedule = dst[6], .group_id = r->group_id,
        .parent_id = r->parent_id, .rerun_of = r->rerun_of, .rerun_by = r->rerun_by,
        .unique_key = dst[7],
    };
    if (r->has_result) {
        if (rlen)
            memcpy(p, r->result.ptr, rlen);
        t->result = p;
        t->result_len = rlen;
    }
    *out = t;
    return TASKQ_OK;
}

void taskq_task_destroy(taskq_task_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

taskq_err_t taskq_status(taskq_client_t *self, const taskq_id_t *id, taskq_task_t **out)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (!id || !out)
        return TASKQ_EINVAL;
    *out = NULL;
    proto_msg_t m;
    proto_msg_init(&m, PROTO_STATUS);
    uint64_t req = self->next_req++;
    m.u.status.req = req;
    m.u.status.id = *id;
    inmsg_t in;
    e = client_request(self, &m, req, PROTO_STATUS_REPLY, &in);
    if (e != TASKQ_OK)
        return e;
    e = client_task_from_rec(&in.msg.u.status_reply.task, out);
    client_inmsg_clear(&in);
    return e;
}

/* ---- wait ----------------------------------------------------------- */

typedef struct {
    taskq_id_t id;
    size_t idx;
} id_index_t;

static int id_index_cmp(const void *a, const void *b)
{
    return memcmp(((const id_index_t *)a)->id.b, ((const id_index_t *)b)->id.b, 16);
}

enum { W_PENDING = 0, W_DONE = 1 };

typedef struct {
    const taskq_id_t *ids;
    size_t n;
    uint8_t *state;      /* W_PENDING / W_DONE per input index */
    uint64_t req_base;   /* chunk c has req req_base + c */
    size_t nchunks;
} waitset_t;

/* (Re-)registers the outstanding ids of every chunk. The same req is reused
 * so that a live broker ignores the repeat (same peer, req, id). */
static taskq_err_t wait_send(taskq_client_t *self, const waitset_t *w, int64_t remaining_ms,
                             taskq_id_t *tmp)
{
    for (size_t c = 0; c < w->nchunks; c++) {
        size_t lo = c * TQ_WAIT_MAX, hi = lo + TQ_WAIT_MAX < w->n ? lo + TQ_WAIT_MAX : w->n;
        uint32_t k = 0;
        for (size_t i = lo; i < hi; i++)
            if (w->state[i] == W_PENDING)
                tmp[k++] = w->ids[i];
        if (k == 0)
            continue;
        proto_msg_t m;
        proto_msg_init(&m, PROTO_WAIT);
        m.u.wait.req = w->req_base + c;
        m.u.wait.nids = k;
        m.u.wait.ids = tmp;
        m.u.wait.batch = true; /* client_recv unpacks BATCHes of RESULTs */
        m.u.wait.timeout_ms = remaining_ms < 0 || remaining_ms > TQ_DEFAULT_WAIT_MAX_MS
                                  ? TQ_DEFAULT_WAIT_MAX_MS
                                  : remaining_ms;
        void *body = NULL;
        size_t len = 0;
        taskq_err_t e = client_encode(&m, &body, &len);
        if (e == TASKQ_OK)
            e = client_send_raw(self, PROTO_WAIT, body, len);
        free(body);
        if (e != TASKQ_OK)
            return e; /* EBUSY: not connected yet, the caller retries */
    }
    return TASKQ_OK;
}

taskq_err_t client_wait_core(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                             int64_t timeout_ms, size_t stop_after, client_take_fn fn, void *arg)
{
    taskq_err_t e = client_check_handle(self);
    if (e != TASKQ_OK)
        return e;
    if (n == 0)
        return TASKQ_OK;
    if (!ids || !fn)
        return TASKQ_EINVAL;
    id_index_t *index = malloc(n * sizeof *index);
    uint8_t *state = calloc(n, 1);
    taskq_id_t *tmp = malloc((n < TQ_WAIT_MAX ? n : TQ_WAIT_MAX) * sizeof *tmp);
    if (!index || !state || !tmp) {
        e = TASKQ_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        index[i] = (id_index_t){ids[i], i};
    qsort(index, n, sizeof *index, id_index_cmp);
    for (size_t i = 1; i < n; i++) {
        if (id_index_cmp(&index[i - 1], &index[i]) == 0) {
            e = TASKQ_EINVAL; /* duplicate id */
            goto out;
        }
    }
    waitset_t w = {.ids = ids, .n = n, .state = state, .req_base = self->next_req,
                   .nchunks = (n + TQ_WAIT_MAX - 1) / TQ_WAIT_MAX};
    self->next_req += w.nchunks;
    int64_t start = tclock_mono_ms();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + timeout_ms;
    size_t outstanding = n, notfound = 0, delivered = 0;
    taskq_err_t first_err = TASKQ_OK;
    int64_t next_send = start, last_activity = start;
    bool stopped = false;
    while (outstanding > 0 && !stopped) {
        int64_t now = tclock_mono_ms();
        if (now >= deadline) {
            e = TASKQ_ETIMEDOUT;
            goto out;
        }
        if (self->heard_at > last_activity)
            last_activity = self->heard_at;
        if (now >= next_send || now >= last_activity + WAIT_SILENCE_MS) {
            e = wait_send(self, &w, timeout_ms < 0 ? -1 : deadline - now, tmp);
            if (e == TASKQ_EBUSY) {
                next_send = now + RETRY_SEND_MS;
            } else if (e != TASKQ_OK) {
                goto out;
            } else {
                next_send = INT64_MAX;
                last_activity = now;
            }
        }
        int64_t until = last_activity + WAIT_SILENCE_MS;
        if (next_send < until)
            until = next_send;
        if (deadline < until)
            until = deadline;
        inmsg_t in;
        e = client_recv(self, until - now, &in);
        if (e == TASKQ_ESYS)
            goto out;
        if (e != TASKQ_OK)
            continue;
        uint64_t req = client_reply_req(&in.msg);
        bool ours = req >= w.req_base && req < w.req_base + w.nchunks;
        if (ours && in.msg.type == PROTO_ERROR) {
            /* the broker refused the WAIT itself (e.g. a limit): give up */
            e = client_on_error(self, &in.msg);
            client_inmsg_clear(&in);
            goto out;
        }
        if (ours && in.msg.type == PROTO_RESULT) {
            id_index_t key = {.id = in.msg.u.result.task.id};
            id_index_t *hit = bsearch(&key, index, n, sizeof *index, id_index_cmp);
            /* delivered once: a repeat (after a re-registration) is ignored */
            if (hit && state[hit->idx] == W_PENDING) {
                uint32_t code = in.msg.u.result.code;
                state[hit->idx] = W_DONE;
                outstanding--;
                if (code == TASKQ_ENOTFOUND) {
                    notfound++; /* purged ids (EPURGED) are the first error */
                } else if (code != TASKQ_OK) {
                    if (first_err == TASKQ_OK)
                        first_err = client_wire_code(code);
                } else {
                    taskq_task_t *t = NULL;
                    e = client_task_from_rec(&in.msg.u.result.task, &t);
                    if (e != TASKQ_OK) {
                        client_inmsg_clear(&in);
                        goto out;
                    }
                    stopped = fn(&t, arg) != 0;
                    taskq_task_destroy(&t);
                    if (++delivered == stop_after)
                        stopped = true;
                }
            }
        }
        client_inmsg_clear(&in);
    }
    e = stopped ? TASKQ_OK : first_err != TASKQ_OK ? first_err : notfound ? TASKQ_ENOTFOUND : TASKQ_OK;
out:
    free(index);
    free(state);
    free(tmp);
    return e;
}

typedef struct {
    taskq_wait_fn fn;
    void *arg;
} borrow_arg_t;

static int wait_borrow(taskq_task_t **task, void *arg)
{
    borrow_arg_t *b = arg;
    return b->fn(*task, b->arg);
}

taskq_err_t taskq_wait_many(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                            int64_t timeout_ms, taskq_wait_fn fn, void *arg)
{
    if (!fn)
        return TASKQ_EINVAL;
    borrow_arg_t b = {fn, arg};
    return client_wait_core(self, ids, n, timeout_ms, 0, wait_borrow, &b);
}

/* fn may be NULL: only wait. */
static int wait_borrow_opt(taskq_task_t **task, void *arg)
{
    borrow_arg_t *b = arg;
    return b->fn ? b->fn(*task, b->arg) : 0;
}

taskq_err_t taskq_wait_any(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                           int64_t timeout_ms, taskq_wait_fn fn, void *arg)
{
    borrow_arg_t b = {fn, arg};
    return client_wait_core(self, ids, n, timeout_ms, 1, wait_borrow_opt, &b);
}

taskq_err_t taskq_wait_all(taskq_client_t *self, const taskq_id_t *ids, size_t n,
                           int64_t timeout_ms, taskq_wait_fn fn, void *arg)
{
    borrow_arg_t b = {fn, arg};
    return client_wait_core(self, ids, n, timeout_ms, 0, wait_borrow_opt, &b);
}

static int wait_take(taskq_task_t **task, void *arg)
{
    *(taskq_task_t **)arg = *task;
    *task = NULL;
    return 1;
}

taskq_err_t taskq_wait(taskq_client_t *self, const taskq_id_t *id, int64_t timeout_ms,
                       taskq_task_t **out)
{
    if (!id || !out)
        return TASKQ_EINVAL;
    *out = NULL;
    taskq_err_t e = client_wait_core(self, id, 1, timeout_ms, 0, wait_take, out);
    if (e == TASKQ_OK && !*out)
        e = TASKQ_EINTERNAL;
    if (e != TASKQ_OK)
        taskq_task_destroy(out);
    return e;
}
