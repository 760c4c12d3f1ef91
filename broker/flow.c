/* flow.c - what happens when a task ends, beyond its own row: waiters, its
 * unique key, and its workflow dependents (chain children, group counters,
 * chord callbacks); and revoke. See docs/tasks.md ("Workflows", "Revoke").
 *
 * Every change is made in the transaction of the transition that triggers
 * it, so after a crash a callback is either still pending (the last
 * member's end was not committed and will come again) or queued: never
 * lost, never doubled. Propagation is iterative (a work list), so a long
 * chain that fails does not recurse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "thist.h"
#include "tlog.h"
#include "tmem.h"

typedef struct {
    taskq_id_t id;
    int state;
    uint8_t flags;
} ended_t;

typedef struct {
    ended_t *v;
    size_t n, cap;
} worklist_t;

static void push(worklist_t *w, const taskq_id_t *id, int state, uint8_t flags)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? w->cap * 2 : 16;
        w->v = xrealloc(w->v, w->cap * sizeof *w->v);
    }
    w->v[w->n].id = *id;
    w->v[w->n].state = state;
    w->v[w->n].flags = flags;
    w->n++;
}

typedef struct {
    taskq_id_t *v;
    size_t n, cap;
} idvec_t;

static void collect_id(const taskq_id_t *id, void *arg)
{
    idvec_t *x = arg;
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 16;
        x->v = xrealloc(x->v, x->cap * sizeof *x->v);
    }
    x->v[x->n++] = *id;
}

/* args (one msgpack array, or empty = []) with `extra` (one packed value)
 * appended as the last element, into sb. false if args is not an array. */
static bool append_arg(proto_bin_t args, const void *extra, size_t extra_len,
                       msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    uint32_t n = 0;
    const msgpack_object *items = NULL;
    if (args.len) {
        size_t off = 0;
        if (msgpack_unpack_next(&u, (const char *)args.ptr, args.len, &off) !=
                MSGPACK_UNPACK_SUCCESS ||
            (u.data.type != MSGPACK_OBJECT_ARRAY && u.data.type != MSGPACK_OBJECT_NIL)) {
            msgpack_unpacked_destroy(&u);
            return false;
        }
        if (u.data.type == MSGPACK_OBJECT_ARRAY) {
            n = u.data.via.array.size;
            items = u.data.via.array.ptr;
        }
    }
    msgpack_pack_array(&pk, n + 1);
    for (uint32_t i = 0; i < n; i++)
        msgpack_pack_object(&pk, items[i]);
    if (extra_len)
        msgpack_sbuffer_write(sb, extra, extra_len);
    else
        msgpack_pack_nil(&pk);
    msgpack_unpacked_destroy(&u);
    return true;
}

/* A task that will never run: pending/queued/... -> revoked, and its own
 * dependents follow through the work list. */
static void revoke_dependent(broker_t *b, worklist_t *w, const taskq_id_t *id,
                             const char *reason)
{
    int prev = -1;
    uint32_t attempt = 0;
    taskq_err_t e = store_revoke(b->store, id, reason, broker_now(b), &prev, &attempt);
    if (e == TASKQ_ESTORE) {
        b->turn_failed = true;
        return;
    }
    if (e != TASKQ_OK)
        return; /* already terminal: nothing to do */
    if (prev == TASKQ_STATE_RUNNING) {
        /* cannot happen for a dependent (it waits pending), but be exact */
        handlers_void_lease(b, id, attempt, false, 0);
    }
    if (thist_is_enabled()) {
        char ids[TASKQ_ID_STRLEN + 1];
        taskq_id_format(id, ids);
        thist_event("terminal %s %u revoked 0000000000000000", ids, attempt);
    }
    push(w, id, TASKQ_STATE_REVOKED, TASK_FLAGS_UNKNOWN);
}

typedef struct {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    bool settle;
    uint32_t n;
} results_t;

static void pack_member(const store_member_t *m, void *arg)
{
    results_t *r = arg;
    r->n++;
    if (r->sb.size > TQ_CHORD_RESULTS_MAX)
        return; /* too large already: stop growing */
    if (!r->settle) {
        if (m->result.len)
            msgpack_sbuffer_write(&r->sb, (const char *)m->result.ptr, m->result.len);
        else
            msgpack_pack_nil(&r->pk);
        return;
    }
    bool ok = m->state == TASKQ_STATE_SUCCEEDED;
    msgpack_pack_map(&r->pk, ok ? 3 : 4);
    proto_pack_key(&r->pk, "id");
    msgpack_pack_bin_with_body(&r->pk, m->id.b, sizeof m->id.b);
    proto_pack_key(&r->pk, "state");
    proto_pack_str(&r->pk, proto_str(taskq_state_name(m->state)));
    if (ok) {
        proto_pack_key(&r->pk, "result");
        if (m->result.len)
            msgpack_sbuffer_write(&r->sb, (const char *)m->result.ptr, m->result.len);
        else
            msgpack_pack_nil(&r->pk);
    } else {
        proto_pack_key(&r->pk, "error");
        proto_pack_str(&r->pk, m->error);
        proto_pack_key(&r->pk, "code");
        proto_pack_str(&r->pk, m->code);
    }
}

/* Every member of g is terminal: give the callback its results and queue
 * it, or fail it (taskq.too_large) before it runs. */
static void release_callback(broker_t *b, worklist_t *w, const store_group_t *g)
{
    results_t r = {.settle = g->on_fail == 1};
    msgpack_sbuffer_init(&r.sb);
    msgpack_packer_init(&r.pk, &r.sb, msgpack_sbuffer_write);
    /* the array header needs the count: pack the members after a fixed
     * array32 header patched at the end */
    char hdr[5] = {(char)0xdd, 0, 0, 0, 0};
    msgpack_sbuffer_write(&r.sb, hdr, sizeof hdr);
    taskq_err_t e = store_group_results(b->store, &g->id, pack_member, &r);
    if (e != TASKQ_OK) {
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        msgpack_sbuffer_destroy(&r.sb);
        return;
    }
    r.sb.data[1] = (char)(r.n >> 24);
    r.sb.data[2] = (char)(r.n >> 16);
    r.sb.data[3] = (char)(r.n >> 8);
    r.sb.data[4] = (char)r.n;
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&g->callback, ids);
    if (r.sb.size > TQ_CHORD_RESULTS_MAX) {
        char msg[160];
        snprintf(msg, sizeof msg, "chord results exceed %u bytes (%u members)",
                 TQ_CHORD_RESULTS_MAX, r.n);
        msgpack_sbuffer_destroy(&r.sb);
        e = store_fail_unrun(b->store, &g->callback, "taskq.too_large", msg, broker_now(b));
        if (e == TASKQ_ESTORE) {
            b->turn_failed = true;
            return;
        }
        if (e == TASKQ_OK) {
            tlog_warn("chord callback %s failed before dispatch: %s", ids, msg);
            thist_event("terminal %s 0 failed 0000000000000000", ids);
            push(w, &g->callback, TASKQ_STATE_FAILED, TASK_FLAGS_UNKNOWN);
        }
        return;
    }
    store_pending_t p;
    e = store_get_pending(b->store, &g->callback, &p);
    if (e != TASKQ_OK || p.state != TASKQ_STATE_PENDING) {
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        msgpack_sbuffer_destroy(&r.sb);
        return;
    }
    msgpack_sbuffer args;
    msgpack_sbuffer_init(&args);
    bool ok = append_arg(p.args, r.sb.data, r.sb.size, &args);
    msgpack_sbuffer_destroy(&r.sb);
    if (!ok) {
        msgpack_sbuffer_destroy(&args);
        e = store_fail_unrun(b->store, &g->callback, "taskq.error",
                             "chord callback args are not an array", broker_now(b));
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        else if (e == TASKQ_OK)
            push(w, &g->callback, TASKQ_STATE_FAILED, TASK_FLAGS_UNKNOWN);
        return;
    }
    bool queued = false;
    proto_bin_t nb = {.ptr = (const uint8_t *)args.data, .len = (uint32_t)args.size};
    e = store_dep_done(b->store, &g->callback, nb, &queued);
    msgpack_sbuffer_destroy(&args);
    if (e == TASKQ_ESTORE)
        b->turn_failed = true;
    else if (queued)
        tlog_debug("chord callback %s queued with %u results", ids, r.n);
}

/* The group side of a member's end. */
static void member_ended(broker_t *b, worklist_t *w, const taskq_id_t *group, bool ok)
{
    store_group_t g;
    taskq_err_t e = store_group_member_ended(b->store, group, ok, &g);
    if (e != TASKQ_OK) {
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        return;
    }
    if (!g.has_callback)
        return;
    uint32_t remaining = g.total - g.succeeded - g.failed;
    if (!ok && g.on_fail == 0) {
        /* fail: the callback can never get all results */
        if (g.failed == 1) /* the first failure revokes it; later ones find it terminal */
            revoke_dependent(b, w, &g.callback, "upstream_failed");
        return;
    }
    if (remaining == 0 && (g.on_fail == 1 || g.failed == 0))
        release_callback(b, w, &g);
}

/* The chain side: children of a parent that ended. */
static void children_of(broker_t *b, worklist_t *w, const taskq_id_t *parent, int state)
{
    idvec_t kids = {0};
    taskq_err_t e = store_children(b->store, parent, collect_id, &kids);
    if (e != TASKQ_OK) {
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        free(kids.v);
        return;
    }
    if (kids.n == 0) {
        free(kids.v);
        return;
    }
    uint8_t *result = NULL;
    size_t result_len = 0;
    if (state == TASKQ_STATE_SUCCEEDED) {
        proto_task_rec_t rec;
        if (store_get_task(b->store, parent, &rec) == TASKQ_OK && rec.has_result &&
            rec.result.len) {
            result = xmalloc(rec.result.len);
            memcpy(result, rec.result.ptr, rec.result.len);
            result_len = rec.result.len;
        }
    }
    for (size_t i = 0; i < kids.n && !b->turn_failed; i++) {
        if (state != TASKQ_STATE_SUCCEEDED) {
            revoke_dependent(b, w, &kids.v[i],
                             state == TASKQ_STATE_REVOKED ? "upstream_revoked"
                                                          : "upstream_failed");
            continue;
        }
        store_pending_t p;
        e = store_get_pending(b->store, &kids.v[i], &p);
        if (e != TASKQ_OK) {
            if (e == TASKQ_ESTORE)
                b->turn_failed = true;
            continue;
        }
        msgpack_sbuffer args;
        msgpack_sbuffer_init(&args);
        proto_bin_t nb = {0};
        if (!p.immutable) {
            if (!append_arg(p.args, result, result_len, &args)) {
                msgpack_sbuffer_destroy(&args);
                e = store_fail_unrun(b->store, &kids.v[i], "taskq.error",
                                     "chain child args are not an array", broker_now(b));
                if (e == TASKQ_ESTORE)
                    b->turn_failed = true;
                else if (e == TASKQ_OK)
                    push(w, &kids.v[i], TASKQ_STATE_FAILED, TASK_FLAGS_UNKNOWN);
                continue;
            }
            nb.ptr = (const uint8_t *)args.data;
            nb.len = (uint32_t)args.size;
        }
        bool queued = false;
        e = store_dep_done(b->store, &kids.v[i], nb, &queued);
        msgpack_sbuffer_destroy(&args);
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
    }
    free(result);
    free(kids.v);
}

void handlers_task_ended(broker_t *b, const taskq_id_t *id, int state, uint8_t flags)
{
    worklist_t w = {0};
    push(&w, id, state, flags);
    for (size_t i = 0; i < w.n && !b->turn_failed; i++) {
        ended_t e = w.v[i];
        b->pending--;
        handlers_notify_waiters(b, &e.id);
        if (e.flags == 0)
            continue; /* a plain task: no key, no workflow */
        if (store_unique_release(b->store, &e.id, 0) == TASKQ_ESTORE) {
            b->turn_failed = true;
            break;
        }
        store_pending_t p;
        taskq_err_t r = store_get_pending(b->store, &e.id, &p);
        if (r != TASKQ_OK) {
            if (r == TASKQ_ESTORE)
                b->turn_failed = true;
            continue;
        }
        taskq_id_t group = p.group;
        bool is_callback = p.is_callback;
        children_of(b, &w, &e.id, e.state);
        if (!taskq_id_is_zero(&group) && !is_callback)
            member_ended(b, &w, &group, e.state == TASKQ_STATE_SUCCEEDED);
    }
    free(w.v);
}

void handlers_group_settled(broker_t *b, const taskq_id_t *group)
{
    store_group_t g;
    taskq_err_t e = store_group_get(b->store, group, &g);
    if (e != TASKQ_OK) {
        if (e == TASKQ_ESTORE)
            b->turn_failed = true;
        return;
    }
    if (!g.has_callback || g.succeeded + g.failed < g.total)
        return;
    worklist_t w = {0};
    if (g.on_fail == 1 || g.failed == 0)
        release_callback(b, &w, &g);
    for (size_t i = 0; i < w.n && !b->turn_failed; i++)
        handlers_task_ended(b, &w.v[i].id, w.v[i].state, w.v[i].flags);
    free(w.v);
}

/* ---- revoke ------------------------------------------------------------- */

taskq_err_t handlers_revoke(broker_t *b, const taskq_id_t *id, const char *reason,
                            bool terminate, int64_t grace_ms, int *prev_state)
{
    uint32_t attempt = 0;
    taskq_err_t e = store_revoke(b->store, id, reason, broker_now(b), prev_state, &attempt);
    if (e == TASKQ_ESTORE)
        b->turn_failed = true;
    if (e != TASKQ_OK)
        return e;
    uint8_t flags = TASK_FLAGS_UNKNOWN;
    if (*prev_state == TASKQ_STATE_RUNNING)
        handlers_void_lease(b, id, attempt, terminate, grace_ms);
    char ids[TASKQ_ID_STRLEN + 1];
    taskq_id_format(id, ids);
    tlog_info("task %s revoked (%s, was %s)%s", ids, reason, taskq_state_name(*prev_state),
              terminate && *prev_state == TASKQ_STATE_RUNNING ? ": terminating its child" : "");
    thist_event("terminal %s %u revoked 0000000000000000", ids, attempt);
    handlers_task_ended(b, id, TASKQ_STATE_REVOKED, flags);
    return TASKQ_OK;
}
