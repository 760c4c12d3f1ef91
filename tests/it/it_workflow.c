/* it_workflow: chains, groups, chords (issue 7), through the C API and CLI.
 *  1. A chord of 1,000 taskq.sumsq [i] with a test.echo callback: the
 *     callback gets its args + [[r0..r999]] in member order; group status
 *     (O(1)) 1000/1000, callback succeeded; members listed in order; `taskq
 *     status GID`. The latency from the last member's commit to the
 *     callback's dispatch (broker history, us) over this chord and 20 small
 *     ones is printed as `metric` lines.
 *  2. settle: 1,000 members, one fails permanently: the callback gets 999
 *     {id, state, result} and 1 {id, state, error, code}, in member order.
 *  3. fail (test clock): one member fails with retries (3 attempts, backoff
 *     1 s): while it is retrying the callback stays pending and the group
 *     counts no failure; the commit of its last failure revokes the callback
 *     (upstream_failed), never dispatched.
 *  4. An empty chord runs its callback with []; `taskq group ... --then`.
 *  5. Chains: 3 nodes pass results along (C API and `taskq chain`);
 *     immutable; a failure in the middle revokes the rest (upstream_failed,
 *     never dispatched); revoking a pending node revokes what follows
 *     (upstream_revoked) and not what precedes; revoke --group. */
#define _GNU_SOURCE
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hevents.h"
#include "harness.h"

#define OUTSZ 65536
static char out[OUTSZ];
static char text[OUTSZ];

static bool is_terminal(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return taskq_state_is_terminal(t->state);
}

static bool is_running(const taskq_task_t *t, void *arg)
{
    (void)arg;
    return t->state == TASKQ_STATE_RUNNING;
}

static int64_t sumsq(int64_t n)
{
    return n <= 0 ? 0 : (n - 1) * n * (2 * n - 1) / 6;
}

static bool id_eq(const taskq_id_t *a, const taskq_id_t *b)
{
    return memcmp(a->b, b->b, 16) == 0;
}

static taskq_task_t *wait_end(taskq_client_t *c, const taskq_id_t *id, const char *what)
{
    return h_wait_task(c, id, is_terminal, NULL, 60000, what);
}

/* The result of a succeeded task as text (fails the test otherwise). */
static const char *result_text(const taskq_task_t *t, const char *what)
{
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "%s: %s code '%s' error '%s'", what,
             taskq_state_name(t->state), t->code, t->error);
    H_ASSERT(h_msgpack_text(t->result, t->result_len, text, sizeof text), "%s: result %s", what,
             text);
    return text;
}

static void expect_result(taskq_client_t *c, const taskq_id_t *id, const char *want,
                          const char *what)
{
    taskq_task_t *t = wait_end(c, id, what);
    const char *got = result_text(t, what);
    H_ASSERT(strcmp(got, want) == 0, "%s: result %s, expected %s", what, got, want);
    taskq_task_destroy(&t);
}

static void expect_revoked_upstream(taskq_client_t *c, const taskq_id_t *id, const char *reason,
                                    const char *what)
{
    taskq_task_t *t = wait_end(c, id, what);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->attempts == 0 && t->result == NULL,
             "%s: %s attempts=%u, expected revoked and never dispatched", what,
             taskq_state_name(t->state), t->attempts);
    H_ASSERT(strstr(t->error, reason) || strstr(t->code, reason),
             "%s: revoked with error '%s' code '%s', expected reason %s", what, t->error,
             t->code, reason);
    taskq_task_destroy(&t);
}

static void group_status(taskq_client_t *c, const taskq_id_t *gid, taskq_group_info_t *g)
{
    memset(g, 0, sizeof *g);
    taskq_err_t rc = taskq_group_status(c, gid, g);
    H_ASSERT(rc == TASKQ_OK, "group status %s: %s '%s'", h_id_str(gid), taskq_err_name(rc),
             taskq_client_last_error(c));
}

/* ---- latency from history ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

typedef char idstr_t[TASKQ_ID_STRLEN + 1];

/* us from the last member's `terminal` to the callback's first `dispatch`
 * (broker history); -1 if either is missing. */
static int64_t chord_latency_us(const hevents_t *h, const taskq_id_t *members, size_t n,
                                const taskq_id_t *cb)
{
    idstr_t *set = calloc(n ? n : 1, sizeof *set);
    H_ASSERT(set, "out of memory");
    for (size_t i = 0; i < n; i++)
        taskq_id_format(&members[i], set[i]);
    qsort(set, n, sizeof *set, cmp_str);
    idstr_t cbs;
    taskq_id_format(cb, cbs);
    int64_t last = -1, disp = -1;
    size_t seen = 0;
    for (size_t i = 0; i < h->n; i++) {
        const hev_t *e = &h->ev[i];
        if (strcmp(e->role, "broker") != 0 || e->nf < 1)
            continue;
        if (!strcmp(e->ev, "terminal") && bsearch(e->f[0], set, n, sizeof *set, cmp_str)) {
            seen++;
            if (e->us > last)
                last = e->us;
        } else if (!strcmp(e->ev, "dispatch") && !strcmp(e->f[0], cbs) && disp < 0) {
            disp = e->us;
        }
    }
    free(set);
    if (seen < n || disp < 0)
        return -1;
    return disp - last;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- 1. chord of 1,000 --------------------------------------------------------- */

static const msgpack_object *array_at(const msgpack_object *o, uint32_t i)
{
    return o->type == MSGPACK_OBJECT_ARRAY && i < o->via.array.size ? &o->via.array.ptr[i] : NULL;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static bool obj_str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

typedef struct {
    taskq_task_spec_t *specs;
    uint8_t (*args)[16];
    size_t n;
    taskq_task_spec_t cb;
    uint8_t cbargs[32];
    taskq_id_t gid;
} chord_t;

static void chord_build(chord_t *ch, size_t n, const char *cbname, const char *cbarg)
{
    memset(ch, 0, sizeof *ch);
    ch->n = n;
    ch->specs = calloc(n ? n : 1, sizeof *ch->specs);
    ch->args = calloc(n ? n : 1, sizeof *ch->args);
    H_ASSERT(ch->specs && ch->args, "out of memory");
    for (size_t i = 0; i < n; i++)
        ch->specs[i] =
            h_spec("taskq.sumsq", ch->args[i],
                   h_args_int(ch->args[i], sizeof ch->args[i], (int64_t)i));
    ch->cb = h_spec(cbname, ch->cbargs, h_args_str(ch->cbargs, sizeof ch->cbargs, cbarg));
}

static void chord_submit(taskq_client_t *c, chord_t *ch, const char *on_fail)
{
    taskq_err_t rc = taskq_chord(c, ch->specs, ch->n, &ch->cb, on_fail, &ch->gid);
    H_ASSERT(rc == TASKQ_OK, "taskq_chord(%zu members, %s): %s '%s'", ch->n,
             on_fail ? on_fail : "default", taskq_err_name(rc), taskq_client_last_error(c));
    H_ASSERT(!taskq_id_is_zero(&ch->gid) && !taskq_id_is_zero(&ch->cb.id),
             "taskq_chord did not fill the group / callback ids");
}

static void chord_free(chord_t *ch)
{
    free(ch->specs);
    free(ch->args);
}

static void members_ids(const chord_t *ch, taskq_id_t *ids)
{
    for (size_t i = 0; i < ch->n; i++)
        ids[i] = ch->specs[i].id;
}

static void chord_1000(taskq_client_t *c, const char *ep)
{
    enum { NC = 1000 };
    chord_t ch;
    chord_build(&ch, NC, "test.echo", "cb");
    int64_t t0 = h_now_ms();
    chord_submit(c, &ch, "fail");
    taskq_task_t *t = wait_end(c, &ch.cb.id, "chord callback");
    int64_t ms = h_now_ms() - t0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && t->attempts == 1,
             "callback of the 1000-chord: %s attempts %u '%s'", taskq_state_name(t->state),
             t->attempts, t->error);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    H_ASSERT(msgpack_unpack_next(&u, t->result, t->result_len, NULL) == MSGPACK_UNPACK_SUCCESS,
             "callback result does not unpack");
    const msgpack_object *root = &u.data, *rs = array_at(root, 1);
    H_ASSERT(root->type == MSGPACK_OBJECT_ARRAY && root->via.array.size == 2 &&
                 obj_str_is(array_at(root, 0), "cb") && rs && rs->type == MSGPACK_OBJECT_ARRAY &&
                 rs->via.array.size == NC,
             "callback args: expected [\"cb\", [1000 results]], got %s",
             (h_msgpack_text(t->result, t->result_len, text, 400), text));
    for (uint32_t i = 0; i < NC; i++) {
        const msgpack_object *r = array_at(rs, i);
        H_ASSERT(r->type == MSGPACK_OBJECT_POSITIVE_INTEGER,
                 "result %u has msgpack type %d", i, (int)r->type);
        H_ASSERT((int64_t)r->via.u64 == sumsq(i), "result %u is %llu, expected sumsq(%u) = %lld "
                 "(member order)", i, (unsigned long long)r->via.u64, i, (long long)sumsq(i));
    }
    msgpack_unpacked_destroy(&u);
    taskq_task_destroy(&t);

    taskq_group_info_t g;
    group_status(c, &ch.gid, &g);
    H_ASSERT(id_eq(&g.id, &ch.gid) && g.total == NC && g.succeeded == NC && g.failed == 0 &&
                 g.remaining == 0 && id_eq(&g.callback, &ch.cb.id) &&
                 g.callback_state == TASKQ_STATE_SUCCEEDED && g.on_fail &&
                 strcmp(g.on_fail, "fail") == 0,
             "group status: total=%llu succeeded=%llu failed=%llu remaining=%llu cb_state=%d "
             "on_fail=%s", (unsigned long long)g.total, (unsigned long long)g.succeeded,
             (unsigned long long)g.failed, (unsigned long long)g.remaining, g.callback_state,
             g.on_fail ? g.on_fail : "(null)");
    taskq_id_t *mids = NULL;
    size_t nm = 0;
    H_OK(taskq_group_members(c, &ch.gid, &mids, &nm));
    H_ASSERT(nm == NC, "group members: %zu", nm);
    for (size_t i = 0; i < nm; i++)
        H_ASSERT(id_eq(&mids[i], &ch.specs[i].id), "member %zu out of order", i);
    free(mids);
    t = h_status(c, &ch.specs[17].id);
    H_ASSERT(t && id_eq(&t->group_id, &ch.gid), "member record's group_id is not the group");
    taskq_task_destroy(&t);

    char gs[TASKQ_ID_STRLEN + 1];
    taskq_id_format(&ch.gid, gs);
    int x = h_run_cli(out, OUTSZ, NULL, ep, "status", gs);
    H_ASSERT(x == 0 && strstr(out, "1000"), "taskq status GID: exit %d, '%.400s'", x, out);

    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h, "history");
    taskq_id_t *ids = calloc(NC, sizeof *ids);
    H_ASSERT(ids, "out of memory");
    members_ids(&ch, ids);
    int64_t lat = chord_latency_us(h, ids, NC, &ch.cb.id);
    hevents_destroy(&h);
    free(ids);
    H_ASSERT(lat >= 0, "no terminal/dispatch events for the chord in the broker history");
    h_log("chord of %d: callback done %lld ms after submit; last member -> callback dispatch "
          "%lld us", NC, (long long)ms, (long long)lat);
    printf("metric chord1000_total_ms %lld\nmetric chord1000_last_member_to_callback_dispatch_us "
           "%lld\n", (long long)ms, (long long)lat);
    chord_free(&ch);
}

static void chord_latency_small(taskq_client_t *c)
{
    enum { NCH = 20, NM = 10 };
    chord_t ch[NCH];
    for (int k = 0; k < NCH; k++) {
        chord_build(&ch[k], NM, "test.sum", "x"); /* test.sum ignores the string */
        chord_submit(c, &ch[k], NULL);
    }
    int64_t want = 0;
    for (int i = 0; i < NM; i++)
        want += sumsq(i);
    for (int k = 0; k < NCH; k++) {
        taskq_task_t *t = wait_end(c, &ch[k].cb.id, "small chord callback");
        int64_t v = 0;
        H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                     v == want,
                 "chord %d: callback %s result %lld, expected %lld", k, taskq_state_name(t->state),
                 (long long)v, (long long)want);
        taskq_task_destroy(&t);
    }
    hevents_t *h = hevents_load(h_history_dir());
    H_ASSERT(h, "history");
    int64_t lat[NCH];
    for (int k = 0; k < NCH; k++) {
        taskq_id_t ids[NM];
        members_ids(&ch[k], ids);
        lat[k] = chord_latency_us(h, ids, NM, &ch[k].cb.id);
        H_ASSERT(lat[k] >= 0, "chord %d: events missing", k);
        chord_free(&ch[k]);
    }
    hevents_destroy(&h);
    qsort(lat, NCH, sizeof lat[0], cmp_i64);
    h_log("%d chords of %d: last member -> callback dispatch p50 %lld us, max %lld us", NCH, NM,
          (long long)lat[NCH / 2], (long long)lat[NCH - 1]);
    printf("metric chord_last_member_to_callback_dispatch_p50_us %lld\n"
           "metric chord_last_member_to_callback_dispatch_max_us %lld\n",
           (long long)lat[NCH / 2], (long long)lat[NCH - 1]);
}

/* ---- 2. settle ------------------------------------------------------------------ */

static void chord_settle(taskq_client_t *c)
{
    enum { NC = 1000, BAD = 437 };
    chord_t ch;
    chord_build(&ch, NC, "test.echo", "settled");
    uint8_t bad[32];
    ch.specs[BAD] = h_spec("test.fail_perm", bad, h_args_str(bad, sizeof bad, "x.bad"));
    chord_submit(c, &ch, "settle");
    taskq_task_t *t = wait_end(c, &ch.cb.id, "settle callback");
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED, "settle callback: %s '%s'",
             taskq_state_name(t->state), t->error);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    H_ASSERT(msgpack_unpack_next(&u, t->result, t->result_len, NULL) == MSGPACK_UNPACK_SUCCESS,
             "settle result does not unpack");
    const msgpack_object *rs = array_at(&u.data, 1);
    H_ASSERT(obj_str_is(array_at(&u.data, 0), "settled") && rs &&
                 rs->type == MSGPACK_OBJECT_ARRAY && rs->via.array.size == NC,
             "settle callback args: %s", (h_msgpack_text(t->result, t->result_len, text, 400), text));
    int nres = 0, nerr = 0;
    for (uint32_t i = 0; i < NC; i++) {
        const msgpack_object *m = array_at(rs, i), *id = map_get(m, "id"),
                             *st = map_get(m, "state");
        H_ASSERT(id && id->type == MSGPACK_OBJECT_BIN && id->via.bin.size == 16 &&
                     memcmp(id->via.bin.ptr, ch.specs[i].id.b, 16) == 0,
                 "settle entry %u: not the id of member %u (member order)", i, i);
        if (i == BAD) {
            const msgpack_object *er = map_get(m, "error"), *code = map_get(m, "code");
            H_ASSERT(obj_str_is(st, "failed") && er && er->type == MSGPACK_OBJECT_STR &&
                         obj_str_is(code, "x.bad") && !map_get(m, "result"),
                     "settle entry %u (the failed member) lacks state failed / error / code x.bad",
                     i);
            nerr++;
        } else {
            const msgpack_object *r = map_get(m, "result");
            H_ASSERT(obj_str_is(st, "succeeded") && r &&
                         r->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
                         (int64_t)r->via.u64 == sumsq(i) && !map_get(m, "error"),
                     "settle entry %u: expected succeeded with result %lld", i,
                     (long long)sumsq(i));
            nres++;
        }
    }
    msgpack_unpacked_destroy(&u);
    taskq_task_destroy(&t);
    taskq_group_info_t g;
    group_status(c, &ch.gid, &g);
    H_ASSERT(g.total == NC && g.succeeded == NC - 1 && g.failed == 1 && g.remaining == 0 &&
                 g.callback_state == TASKQ_STATE_SUCCEEDED && g.on_fail &&
                 !strcmp(g.on_fail, "settle"),
             "settle group: succeeded=%llu failed=%llu remaining=%llu cb_state=%d",
             (unsigned long long)g.succeeded, (unsigned long long)g.failed,
             (unsigned long long)g.remaining, g.callback_state);
    h_log("settle: the callback got %d results and %d error in member order", nres, nerr);
    chord_free(&ch);
}

/* ---- 3. fail fast, test clock --------------------------------------------------- */

typedef struct {
    uint32_t failures;
} fwait_t;

static bool failed_n(const taskq_task_t *t, void *arg)
{
    fwait_t *f = arg;
    return t->failures >= f->failures &&
           (t->state == TASKQ_STATE_RETRYING || taskq_state_is_terminal(t->state));
}

typedef struct {
    taskq_client_t *c;
    const taskq_id_t *gid;
    uint64_t succeeded;
} gwait_t;

static bool group_succeeded(void *p)
{
    gwait_t *w = p;
    taskq_group_info_t g;
    group_status(w->c, w->gid, &g);
    return g.succeeded >= w->succeeded;
}

static void chord_fail_fast(void)
{
    char db[512];
    snprintf(db, sizeof db, "%s/clock.db", h_tmpdir());
    h_broker_t *b = h_broker_start(db, "--test-clock");
    taskq_client_t *c = h_client(h_broker_endpoint(b), 10000);
    h_worker_t *w = h_worker_start(h_broker_endpoint(b), 2);
    h_worker_wait_ready(c, h_worker_node_id(w), 2, 20000);
    enum { NC = 10, BAD = 5 };
    chord_t ch;
    chord_build(&ch, NC, "test.echo", "never");
    uint8_t bad[64];
    ch.specs[BAD] =
        h_spec("test.fail_code", bad, h_args_fmt(bad, sizeof bad, "ss", "x.flaky", "nope"));
    ch.specs[BAD].max_attempts = 3;
    ch.specs[BAD].backoff_base_ms = 1000;
    ch.specs[BAD].jitter = "none";
    chord_submit(c, &ch, "fail");
    gwait_t gw = {c, &ch.gid, NC - 1};
    h_wait_for(group_succeeded, &gw, 20000, "the 9 good members succeeded");
    for (uint32_t f = 1; f < 3; f++) {
        fwait_t fw = {f};
        taskq_task_t *t = h_wait_task(c, &ch.specs[BAD].id, failed_n, &fw, 20000,
                                      "the flaky member failed once more");
        H_ASSERT(t->state == TASKQ_STATE_RETRYING, "flaky member after failure %u: %s", f,
                 taskq_state_name(t->state));
        int64_t due = t->due_at;
        taskq_task_destroy(&t);
        t = h_status(c, &ch.cb.id);
        H_ASSERT(t->state == TASKQ_STATE_PENDING,
                 "callback while a member is only retrying (failure %u of 3): %s, expected "
                 "pending (a retry is not an end)", f, taskq_state_name(t->state));
        taskq_task_destroy(&t);
        taskq_group_info_t g;
        group_status(c, &ch.gid, &g);
        H_ASSERT(g.failed == 0 && g.remaining == 1 && g.callback_state == TASKQ_STATE_PENDING,
                 "group while retrying: failed=%llu remaining=%llu cb_state=%d",
                 (unsigned long long)g.failed, (unsigned long long)g.remaining,
                 g.callback_state);
        h_clock(c, 0, due);
    }
    taskq_task_t *t = h_wait_task(c, &ch.specs[BAD].id, is_terminal, NULL, 20000,
                                  "the flaky member's last attempt");
    H_ASSERT(t->state == TASKQ_STATE_FAILED && t->attempts == 3, "flaky member: %s attempts %u",
             taskq_state_name(t->state), t->attempts);
    taskq_task_destroy(&t);
    /* the same commit revoked the callback: the first read after sees it */
    t = h_status(c, &ch.cb.id);
    H_ASSERT(t->state == TASKQ_STATE_REVOKED && t->attempts == 0,
             "callback right after the member's last failure: %s attempts %u, expected revoked "
             "in the same commit", taskq_state_name(t->state), t->attempts);
    H_ASSERT(strstr(t->error, "upstream_failed") || strstr(t->code, "upstream_failed"),
             "callback revoked with error '%s' code '%s', expected upstream_failed", t->error,
             t->code);
    taskq_task_destroy(&t);
    taskq_group_info_t g;
    group_status(c, &ch.gid, &g);
    H_ASSERT(g.succeeded == NC - 1 && g.failed == 1 && g.remaining == 0 &&
                 g.callback_state == TASKQ_STATE_REVOKED,
             "group after the failure: succeeded=%llu failed=%llu remaining=%llu cb_state=%d",
             (unsigned long long)g.succeeded, (unsigned long long)g.failed,
             (unsigned long long)g.remaining, g.callback_state);
    chord_free(&ch);
    taskq_client_destroy(&c);
    h_log("fail: callback pending through 2 retries, revoked with the last failure's commit");
}

/* ---- 4. empty chord, CLI group --------------------------------------------------- */

static void chord_empty_and_cli(taskq_client_t *c, const char *ep)
{
    chord_t ch;
    chord_build(&ch, 0, "test.echo", "empty");
    chord_submit(c, &ch, NULL);
    expect_result(c, &ch.cb.id, "[\"empty\",[]]", "empty chord's callback");
    taskq_group_info_t g;
    group_status(c, &ch.gid, &g);
    H_ASSERT(g.total == 0 && g.remaining == 0 && g.callback_state == TASKQ_STATE_SUCCEEDED,
             "empty group: total=%llu cb_state=%d", (unsigned long long)g.total,
             g.callback_state);
    chord_free(&ch);

    int x = h_run_cli(out, OUTSZ, NULL, ep, "group", "taskq.sumsq:[3]", "taskq.sumsq:[4]",
                      "--then", "test.sum:[]");
    H_ASSERT(x == 0, "taskq group --then: exit %d '%.300s'", x, out);
    taskq_id_t ids[4];
    size_t n = h_parse_ids(out, ids, 4);
    H_ASSERT(n == 4, "taskq group --then printed %zu ids, expected the group, 2 members and "
             "the callback: '%.300s'", n, out);
    group_status(c, &ids[0], &g);
    H_ASSERT(g.total == 2 && id_eq(&g.callback, &ids[3]), "CLI group: total %llu, callback %s "
             "(printed %s)", (unsigned long long)g.total, h_id_str(&g.callback),
             h_id_str(&ids[3]));
    taskq_id_t cb = g.callback;
    taskq_task_t *t = wait_end(c, &cb, "CLI chord callback");
    int64_t v = 0;
    H_ASSERT(t->state == TASKQ_STATE_SUCCEEDED && h_result_int(t->result, t->result_len, &v) &&
                 v == 5 + 14,
             "taskq group sumsq 3, 4 --then test.sum: %s %lld, expected 19",
             taskq_state_name(t->state), (long long)v);
    taskq_task_destroy(&t);
    taskq_id_t *mids = NULL;
    size_t nm = 0;
    H_OK(taskq_group_members(c, &ids[0], &mids, &nm));
    H_ASSERT(nm == 2 && id_eq(&mids[0], &ids[1]) && id_eq(&mids[1], &ids[2]),
             "the CLI's member ids are not the group's members in order");
    free(mids);
    h_log("empty chord ran its callback with []; taskq group --then: 19");
}

/* ---- 5. chains ------------------------------------------------------------------- */

static void chains(taskq_client_t *c, const char *ep)
{
    uint8_t a0[16], a1[16], a2[16], a3[16];
    taskq_task_spec_t s[4];
    s[0] = h_spec("test.square", a0, h_args_int(a0, sizeof a0, 3));
    s[1] = h_spec("test.concat", a1, h_args_str(a1, sizeof a1, "a"));
    s[2] = h_spec("test.concat", a2, h_args_str(a2, sizeof a2, "b"));
    H_OK(taskq_chain(c, s, 3));
    expect_result(c, &s[2].id, "[\"b\",[\"a\",9]]", "chain of 3, last node");
    expect_result(c, &s[1].id, "[\"a\",9]", "chain of 3, middle node");
    taskq_task_t *t = h_status(c, &s[2].id);
    H_ASSERT(id_eq(&t->parent_id, &s[1].id), "node 2's parent_id is not node 1");
    taskq_task_destroy(&t);

    /* immutable: the parent's result is not appended */
    s[0] = h_spec("test.square", a0, h_args_int(a0, sizeof a0, 4));
    s[1] = h_spec("test.concat", a1, h_args_str(a1, sizeof a1, "c"));
    s[1].immutable = 1;
    H_OK(taskq_chain(c, s, 2));
    expect_result(c, &s[1].id, "[\"c\"]", "immutable chain node");

    /* the CLI */
    int x = h_run_cli(out, OUTSZ, NULL, ep, "chain", "taskq.sumsq:[4]", "test.concat:[\"x\"]",
                      "test.concat:[\"y\"]");
    H_ASSERT(x == 0, "taskq chain: exit %d", x);
    taskq_id_t ids[4];
    size_t n = h_parse_ids(out, ids, 4);
    H_ASSERT(n == 3, "taskq chain printed %zu ids: '%.300s'", n, out);
    expect_result(c, &ids[2], "[\"y\",[\"x\",14]]", "taskq chain, last node");

    /* a failure in the middle revokes the rest */
    s[0] = h_spec("test.square", a0, h_args_int(a0, sizeof a0, 2));
    s[1] = h_spec("test.fail_perm", a1, h_args_str(a1, sizeof a1, "x.mid"));
    s[2] = h_spec("test.concat", a2, h_args_str(a2, sizeof a2, "z"));
    s[3] = h_spec("test.concat", a3, h_args_str(a3, sizeof a3, "w"));
    H_OK(taskq_chain(c, s, 4));
    /* the reason names the direct parent's end: node 3's parent was revoked */
    expect_revoked_upstream(c, &s[3].id, "upstream_revoked", "last node after a failed middle");
    expect_revoked_upstream(c, &s[2].id, "upstream_failed", "node after the failed one");
    t = wait_end(c, &s[1].id, "failing middle node");
    H_ASSERT(t->state == TASKQ_STATE_FAILED && !strcmp(t->code, "x.mid"), "middle: %s '%s'",
             taskq_state_name(t->state), t->code);
    taskq_task_destroy(&t);
    expect_result(c, &s[0].id, "4", "head of the failing chain");

    /* revoking a pending node revokes what follows, not what precedes */
    s[0] = h_spec("test.sleep", a0, h_args_int(a0, sizeof a0, 30));
    s[1] = h_spec("test.square", a1, h_args_int(a1, sizeof a1, 1));
    s[2] = h_spec("test.square", a2, h_args_int(a2, sizeof a2, 2));
    H_OK(taskq_chain(c, s, 3));
    t = h_wait_task(c, &s[0].id, is_running, NULL, 20000, "chain head running");
    taskq_task_destroy(&t);
    for (int i = 1; i < 3; i++) {
        t = h_status(c, &s[i].id);
        H_ASSERT(t->state == TASKQ_STATE_PENDING, "chain node %d while its head runs: %s", i,
                 taskq_state_name(t->state));
        taskq_task_destroy(&t);
    }
    taskq_revoke_result_t r;
    H_OK(taskq_revoke(c, &s[1].id, 1, NULL, &r));
    expect_revoked_upstream(c, &s[2].id, "upstream_revoked", "node after a revoked pending node");
    t = h_status(c, &s[0].id);
    H_ASSERT(t->state == TASKQ_STATE_RUNNING, "revoking node 1 touched its parent: %s",
             taskq_state_name(t->state));
    taskq_task_destroy(&t);
    taskq_revoke_opts_t o;
    memset(&o, 0, sizeof o);
    o.terminate = 1;
    H_OK(taskq_revoke(c, &s[0].id, 1, &o, &r));

    /* revoke --group: members (running or queued) and the callback */
    chord_t ch;
    chord_build(&ch, 6, "test.echo", "never");
    uint8_t sl[16];
    for (size_t i = 0; i < ch.n; i++)
        ch.specs[i] = h_spec("test.sleep", sl, h_args_int(sl, sizeof sl, 30));
    chord_submit(c, &ch, NULL);
    t = h_wait_task(c, &ch.specs[0].id, is_running, NULL, 20000, "group member running");
    taskq_task_destroy(&t);
    memset(&o, 0, sizeof o);
    o.group = &ch.gid;
    o.terminate = 1;
    memset(&r, 0, sizeof r);
    H_OK(taskq_revoke(c, NULL, 0, &o, &r));
    /* all 7 became revoked in this commit: none was terminal before */
    H_EXPECT(r.revoked == 7 && r.terminal == 0,
             "revoke --group of 6 unfinished members + pending callback: revoked %llu, "
             "terminal %llu (expected 7, 0: the callback was revoked by the cascade and then "
             "counted as 'already terminal')",
             (unsigned long long)r.revoked, (unsigned long long)r.terminal);
    for (size_t i = 0; i < ch.n; i++) {
        t = h_status(c, &ch.specs[i].id);
        H_ASSERT(t->state == TASKQ_STATE_REVOKED, "member %zu after revoke --group: %s", i,
                 taskq_state_name(t->state));
        taskq_task_destroy(&t);
    }
    taskq_group_info_t g;
    group_status(c, &ch.gid, &g);
    H_ASSERT(g.failed == 6 && g.remaining == 0 && g.callback_state == TASKQ_STATE_REVOKED,
             "group after revoke --group: failed=%llu remaining=%llu cb_state=%d",
             (unsigned long long)g.failed, (unsigned long long)g.remaining, g.callback_state);
    chord_free(&ch);
    h_log("chains: results passed along (API, CLI), immutable, upstream_failed / "
          "upstream_revoked; revoke --group");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_set_deadline_s(110);
    h_history_enable();
    h_broker_t *b = h_broker_start(NULL);
    const char *ep = h_broker_endpoint(b);
    taskq_client_t *c = h_client(ep, 15000);
    h_worker_t *w = h_worker_start(ep, 4);
    h_worker_wait_ready(c, h_worker_node_id(w), 4, 20000);
    int64_t t[6];
    t[0] = h_now_ms();
    chord_1000(c, ep);
    chord_latency_small(c);
    t[1] = h_now_ms();
    chord_settle(c);
    t[2] = h_now_ms();
    chord_empty_and_cli(c, ep);
    chains(c, ep);
    t[3] = h_now_ms();
    chord_fail_fast();
    t[4] = h_now_ms();
    h_log("times: chords %lld ms, settle %lld ms, empty/cli/chains %lld ms, fail-fast %lld ms",
          (long long)(t[1] - t[0]), (long long)(t[2] - t[1]), (long long)(t[3] - t[2]),
          (long long)(t[4] - t[3]));
    taskq_client_destroy(&c);
    h_check_expects();
    return 0;
}
