/* storefault.c - see storefault.h. Test code: it may open the database
 * read-only with sqlite3 (integrity check). */
#include "storefault.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "proto.h"
#include "tclock.h"
#ifdef TASKQ_HAVE_CHECKER
#include "checker.h"
#endif

void sf_touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    H_ASSERT(fd >= 0, "create %s: %s", path, strerror(errno));
    close(fd);
}

void sf_remove(const char *path)
{
    H_ASSERT(unlink(path) == 0 || errno == ENOENT, "unlink %s: %s", path, strerror(errno));
}

void sf_set_fault_env(const char *spec)
{
    if (spec)
        setenv("TASKQ_FAULT_VFS", spec, 1);
    else
        unsetenv("TASKQ_FAULT_VFS");
}

bool sf_integrity_ok(const char *dbpath, char *why, size_t whysz)
{
    sqlite3 *db = NULL;
    snprintf(why, whysz, "ok");
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(why, whysz, "open: %s", db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return false;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    bool ok = false;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        ok = r && strcmp(r, "ok") == 0;
        snprintf(why, whysz, "%s", r ? r : "(null)");
    } else {
        snprintf(why, whysz, "integrity_check: %s", sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return ok;
}

long sf_rss_kb(pid_t pid)
{
    long kb = h_rss_kb(pid);
    H_ASSERT(kb > 0, "cannot read VmRSS of pid %d", (int)pid);
    return kb;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int64_t sf_quantile(int64_t *v, size_t n, double q)
{
    H_ASSERT(n > 0, "quantile of nothing");
    qsort(v, n, sizeof *v, cmp64);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

void sf_check_history(const char *db)
{
#ifdef TASKQ_HAVE_CHECKER
    const char *dir = h_history_dir();
    if (!dir)
        return;
    checker_t *ck = checker_new();
    H_ASSERT(ck, "checker_new");
    H_OK(checker_load_dir(ck, dir));
    H_OK(checker_load_db(ck, db));
    checker_summary_t sum;
    int v = checker_run(ck, stderr, &sum);
    checker_destroy(&ck);
    H_ASSERT(v == 0, "the checker found %d violations (above)", v);
    h_log("checker: %zu events, %zu acked, %zu terminal, no violation", sum.events, sum.acked,
          sum.terminal);
#else
    (void)db;
#endif
}

/* ---- raw worker ---------------------------------------------------------- */

struct sf_worker {
    void *ctx, *sock;
    char node[64];
    uint32_t credit;
    int64_t next_hb;
};

static void w_send(sf_worker_t *w, const proto_msg_t *m)
{
    /* never blocks: with the broker gone (power-loss runs) a full queue
     * just drops; the protocol's resends cover it */
    taskq_err_t e = proto_send(w->sock, NULL, 0, m, true);
    H_ASSERT(e == TASKQ_OK || e == TASKQ_EBUSY, "raw worker send %s: %s",
             proto_type_name(m->type), taskq_err_name(e));
}

static void w_hello(sf_worker_t *w)
{
    proto_msg_t m;
    proto_msg_init(&m, PROTO_HELLO);
    m.u.hello.node = proto_str(w->node);
    m.u.hello.host = proto_str("localhost");
    m.u.hello.pid = (int32_t)getpid();
    m.u.hello.slots = w->credit;
    w_send(w, &m);
}

sf_worker_t *sf_worker_new(const char *endpoint, const char *node_id, uint32_t credit)
{
    sf_worker_t *w = calloc(1, sizeof *w);
    H_ASSERT(w, "out of memory");
    snprintf(w->node, sizeof w->node, "%s", node_id);
    w->credit = credit;
    w->ctx = zmq_ctx_new();
    w->sock = w->ctx ? zmq_socket(w->ctx, ZMQ_DEALER) : NULL;
    H_ASSERT(w->sock, "zmq socket: %s", zmq_strerror(errno));
    int zero = 0, ivl = 100;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    H_ASSERT(zmq_connect(w->sock, endpoint) == 0, "connect %s: %s", endpoint,
             zmq_strerror(errno));
    w_hello(w);
    w->next_hb = tclock_mono_ms() + 500;
    return w;
}

static void w_handle(sf_worker_t *w, const proto_msg_t *in, sf_acked_fn fn, void *arg)
{
    proto_msg_t m;
    switch (in->type) {
    case PROTO_WELCOME:
        proto_msg_init(&m, PROTO_READY);
        m.u.ready.credit = w->credit;
        w_send(w, &m);
        break;
    case PROTO_TASK:
        proto_msg_init(&m, PROTO_DONE);
        m.u.done.id = in->u.task.id;
        m.u.done.attempt = in->u.task.attempt;
        m.u.done.ok = true;
        m.u.done.result = in->u.task.args; /* echo */
        m.u.done.child_pid = (int32_t)getpid();
        m.u.done.started_at = tclock_wall_ms();
        w_send(w, &m);
        break;
    case PROTO_DONE_ACK:
        if (in->u.done_ack.code == TASKQ_OK && fn)
            fn(&in->u.done_ack.id, in->u.done_ack.attempt, arg);
        proto_msg_init(&m, PROTO_READY);
        m.u.ready.credit = 1;
        w_send(w, &m);
        break;
    case PROTO_ERROR:
        if (in->u.error.code == TASKQ_ECLOSED)
            w_hello(w); /* the broker forgot us (restart): new session */
        break;
    default:
        break; /* HEARTBEAT */
    }
}

int sf_worker_pump(sf_worker_t *w, int64_t wait_ms, sf_acked_fn fn, void *arg)
{
    int handled = 0;
    int64_t until = tclock_mono_ms() + wait_ms;
    for (;;) {
        int64_t now = tclock_mono_ms();
        if (now >= w->next_hb) {
            proto_msg_t hb;
            proto_msg_init(&hb, PROTO_HEARTBEAT);
            w_send(w, &hb);
            w->next_hb = now + 500;
        }
        long left = handled ? 0 : (long)(until - now);
        zmq_pollitem_t it = {.socket = w->sock, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&it, 1, left > 0 ? left : 0);
        if (rc <= 0)
            return handled;
        proto_frames_t f;
        if (proto_recv(w->sock, false, true, &f) != TASKQ_OK) {
            proto_frames_clear(&f);
            continue;
        }
        proto_msg_t in;
        proto_msg_init(&in, f.type);
        const char *detail = NULL;
        if (proto_decode(f.type, f.body, f.body_len, &in, &detail) == TASKQ_OK) {
            w_handle(w, &in, fn, arg);
            handled++;
        }
        proto_msg_clear(&in);
        proto_frames_clear(&f);
    }
}

void sf_worker_destroy(sf_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sf_worker_t *w = *self_p;
    if (w->sock)
        zmq_close(w->sock);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    free(w);
    *self_p = NULL;
}
