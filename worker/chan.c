/*
 * chan.c - length-prefixed msgpack frames between the supervisor and a child.
 * The child is our own code, but a crashing child can leave half a frame, so
 * the parent decodes defensively (proto_precheck, then typed checks) and
 * treats anything odd as a broken channel, never as an assertion.
 */
#include "chan.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "tlog.h"
#include "tmem.h"

#define CHAN_HDR 4u
#define CHAN_FRAME_MAX (CHAN_HDR + TQ_MAX_BODY)
#define CHAN_READ_CHUNK (64u * 1024)

struct chan {
    int fd;
    bool blocking;
    uint8_t *rbuf;          /* [rpos, rlen) not yet consumed */
    size_t rcap, rlen, rpos;
    uint8_t *wbuf;          /* [wpos, wlen) queued for the peer (non-blocking) */
    size_t wcap, wlen, wpos;
    msgpack_unpacked up;    /* the last decoded frame (borrows rbuf) */
    msgpack_sbuffer sb;     /* encode buffer, kept between frames: no malloc per frame */
};

chan_t *chan_new(int fd, bool blocking)
{
    chan_t *self = xcalloc(1, sizeof *self);
    self->fd = fd;
    self->blocking = blocking;
    msgpack_unpacked_init(&self->up);
    msgpack_sbuffer_init(&self->sb);
    return self;
}

void chan_destroy(chan_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chan_t *self = *self_p;
    if (self->fd >= 0)
        close(self->fd);
    msgpack_unpacked_destroy(&self->up);
    msgpack_sbuffer_destroy(&self->sb);
    free(self->rbuf);
    free(self->wbuf);
    free(self);
    *self_p = NULL;
}

int chan_fd(const chan_t *self) { return self->fd; }

bool chan_has_output(const chan_t *self) { return self->wpos < self->wlen; }

static void pack_id(msgpack_packer *pk, const taskq_id_t *id)
{
    msgpack_pack_bin(pk, sizeof id->b);
    msgpack_pack_bin_body(pk, id->b, sizeof id->b);
}

static bool delay_ok(bool has, int64_t ms)
{
    return !has || (ms >= 0 && ms <= TQ_BACKOFF_MS_MAX);
}

/* The bounds the broker's codec will check again; a frame that breaks them
 * is refused on both sides. */
static bool policy_ok(const proto_retry_policy_t *p)
{
    return p->max_attempts <= TQ_ATTEMPTS_MAX && p->backoff_base_ms >= 0 &&
           p->backoff_base_ms <= TQ_BACKOFF_MS_MAX && p->backoff_max_ms >= 0 &&
           p->backoff_max_ms <= TQ_BACKOFF_MS_MAX &&
           (p->backoff_factor == 0 || (p->backoff_factor >= 1 && p->backoff_factor <= 1000)) &&
           p->jitter >= -1 && p->jitter <= PROTO_JITTER_NONE &&
           p->retry_on.len <= TQ_PATTERNS_MAX && p->no_retry_on.len <= TQ_PATTERNS_MAX;
}

static taskq_err_t encode(const chan_frame_t *f, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    /* room for the length prefix, filled in below */
    static const char zero[CHAN_HDR] = {0};
    msgpack_sbuffer_write(sb, zero, sizeof zero);
    switch (f->kind) {
    case CHAN_READY:
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int(&pk, CHAN_READY);
        msgpack_pack_int32(&pk, f->pid);
        break;
    case CHAN_STOP:
    case CHAN_RETIRE:
    case CHAN_RETIRED:
        msgpack_pack_array(&pk, 1);
        msgpack_pack_int(&pk, f->kind);
        break;
    case CHAN_CANCEL:
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int(&pk, CHAN_CANCEL);
        pack_id(&pk, &f->id);
        msgpack_pack_uint32(&pk, f->attempt);
        break;
    case CHAN_TASK:
        if (f->name_len > TQ_NAME_MAX || f->data_len > TQ_TASK_ARGS_MAX || f->time_limit_ms < 0)
            return TASKQ_EINVAL;
        msgpack_pack_array(&pk, 6);
        msgpack_pack_int(&pk, CHAN_TASK);
        pack_id(&pk, &f->id);
        msgpack_pack_uint32(&pk, f->attempt);
        msgpack_pack_str(&pk, f->name_len);
        msgpack_pack_str_body(&pk, f->name, f->name_len);
        msgpack_pack_bin(&pk, f->data_len);
        msgpack_pack_bin_body(&pk, f->data, f->data_len);
        msgpack_pack_int64(&pk, f->time_limit_ms);
        break;
    case CHAN_PROGRESS:
        if (f->message_len > TQ_PROGRESS_MSG_MAX)
            return TASKQ_EINVAL;
        msgpack_pack_array(&pk, 6);
        msgpack_pack_int(&pk, CHAN_PROGRESS);
        pack_id(&pk, &f->id);
        msgpack_pack_uint32(&pk, f->attempt);
        msgpack_pack_uint64(&pk, f->current);
        msgpack_pack_uint64(&pk, f->total);
        msgpack_pack_str(&pk, f->message_len);
        msgpack_pack_str_body(&pk, f->message, f->message_len);
        break;
    case CHAN_DONE:
        if (f->data_len > (f->ok ? TQ_RESULT_MAX : TQ_ERROR_MAX))
            return TASKQ_EINVAL;
        if (!f->ok &&
            (f->code_len > TQ_CODE_MAX || !delay_ok(f->has_retry_delay, f->retry_delay_ms) ||
             f->rate_limited_ms < 0 || f->rate_limited_ms > TQ_BACKOFF_MS_MAX))
            return TASKQ_EINVAL;
        msgpack_pack_array(&pk, f->ok ? 5 : 9);
        msgpack_pack_int(&pk, CHAN_DONE);
        pack_id(&pk, &f->id);
        msgpack_pack_uint32(&pk, f->attempt);
        if (f->ok) {
            msgpack_pack_true(&pk);
            msgpack_pack_bin(&pk, f->data_len);
            msgpack_pack_bin_body(&pk, f->data, f->data_len);
        } else {
            msgpack_pack_false(&pk);
            msgpack_pack_str(&pk, f->data_len);
            msgpack_pack_str_body(&pk, f->data, f->data_len);
            msgpack_pack_str(&pk, f->code_len);
            msgpack_pack_str_body(&pk, f->code, f->code_len);
            if (f->permanent)
                msgpack_pack_true(&pk);
            else
                msgpack_pack_false(&pk);
            msgpack_pack_int64(&pk, f->has_retry_delay ? f->retry_delay_ms : -1);
            msgpack_pack_int64(&pk, f->rate_limited_ms);
        }
        break;
    case CHAN_POLICY: {
        const proto_retry_policy_t *p = &f->policy;
        if (!policy_ok(p))
            return TASKQ_EINVAL;
        msgpack_pack_array(&pk, 10);
        msgpack_pack_int(&pk, CHAN_POLICY);
        pack_id(&pk, &f->id);
        msgpack_pack_uint32(&pk, f->attempt);
        msgpack_pack_uint32(&pk, p->max_attempts);
        msgpack_pack_int64(&pk, p->backoff_base_ms);
        msgpack_pack_double(&pk, p->backoff_factor);
        msgpack_pack_int64(&pk, p->backoff_max_ms);
        msgpack_pack_int32(&pk, p->jitter);
        msgpack_pack_str(&pk, p->retry_on.len);
        msgpack_pack_str_body(&pk, p->retry_on.ptr, p->retry_on.len);
        msgpack_pack_str(&pk, p->no_retry_on.len);
        msgpack_pack_str_body(&pk, p->no_retry_on.ptr, p->no_retry_on.len);
        break;
    }
    default:
        return TASKQ_EINVAL;
    }
    size_t body = sb->size - CHAN_HDR;
    if (body > TQ_MAX_BODY)
        return TASKQ_EINVAL;
    uint8_t *p = (uint8_t *)sb->data;
    p[0] = (uint8_t)(body >> 24);
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    return TASKQ_OK;
}

static taskq_err_t write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EPIPE || errno == ECONNRESET) ? TASKQ_ECLOSED : TASKQ_ESYS;
        }
        p += w;
        n -= (size_t)w;
    }
    return TASKQ_OK;
}

taskq_err_t chan_flush(chan_t *self)
{
    while (self->wpos < self->wlen) {
        ssize_t w = send(self->fd, self->wbuf + self->wpos, self->wlen - self->wpos,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return TASKQ_OK;
            return (errno == EPIPE || errno == ECONNRESET) ? TASKQ_ECLOSED : TASKQ_ESYS;
        }
        self->wpos += (size_t)w;
    }
    self->wpos = self->wlen = 0;
    return TASKQ_OK;
}

static taskq_err_t send_or_queue(chan_t *self, const chan_frame_t *f, bool flush)
{
    msgpack_sbuffer sb = self->sb;
    msgpack_sbuffer_clear(&sb);
    taskq_err_t rc = encode(f, &sb);
    if (rc == TASKQ_OK) {
        if (self->blocking) {
            rc = write_all(self->fd, (const uint8_t *)sb.data, sb.size);
        } else {
            if (self->wpos > 0) { /* compact before appending */
                memmove(self->wbuf, self->wbuf + self->wpos, self->wlen - self->wpos);
                self->wlen -= self->wpos;
                self->wpos = 0;
            }
            if (self->wlen + sb.size > self->wcap) {
                self->wcap = self->wlen + sb.size;
                self->wbuf = xrealloc(self->wbuf, self->wcap);
            }
            memcpy(self->wbuf + self->wlen, sb.data, sb.size);
            self->wlen += sb.size;
            if (flush)
                rc = chan_flush(self);
        }
    }
    if (sb.alloc > 64u * 1024) { /* a large result: do not keep its buffer */
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_init(&sb);
    }
    self->sb = sb;
    return rc;
}

taskq_err_t chan_send(chan_t *self, const chan_frame_t *f)
{
    return send_or_queue(self, f, true);
}

taskq_err_t chan_queue(chan_t *self, const chan_frame_t *f)
{
    return self->blocking ? TASKQ_EINVAL : send_or_queue(self, f, false);
}

taskq_err_t chan_read(chan_t *self)
{
    if (self->rpos > 0) { /* frames handed out before this call are dead now */
        memmove(self->rbuf, self->rbuf + self->rpos, self->rlen - self->rpos);
        self->rlen -= self->rpos;
        self->rpos = 0;
    }
    for (;;) {
        if (self->rcap - self->rlen < CHAN_READ_CHUNK && self->rcap < CHAN_FRAME_MAX) {
            size_t ncap = self->rcap ? self->rcap * 2 : CHAN_READ_CHUNK * 2;
            if (ncap > CHAN_FRAME_MAX)
                ncap = CHAN_FRAME_MAX;
            self->rbuf = xrealloc(self->rbuf, ncap);
            self->rcap = ncap;
        }
        if (self->rlen == self->rcap)
            return TASKQ_OK; /* full: the caller consumes a frame first */
        ssize_t r = read(self->fd, self->rbuf + self->rlen, self->rcap - self->rlen);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return TASKQ_OK;
            return errno == ECONNRESET ? TASKQ_ECLOSED : TASKQ_ESYS;
        }
        if (r == 0)
            return TASKQ_ECLOSED;
        size_t want = self->rcap - self->rlen;
        self->rlen += (size_t)r;
        if (self->blocking || (size_t)r < want)
            return TASKQ_OK; /* a short read drained the socket: another would
                              * only say EAGAIN (one syscall per task saved);
                              * anything newer wakes the caller's poll again */
    }
}

taskq_err_t chan_read_nowait(chan_t *self)
{
    if (self->rpos > 0) { /* frames handed out before this call are dead now */
        memmove(self->rbuf, self->rbuf + self->rpos, self->rlen - self->rpos);
        self->rlen -= self->rpos;
        self->rpos = 0;
    }
    if (self->rcap - self->rlen < CHAN_READ_CHUNK && self->rcap < CHAN_FRAME_MAX) {
        size_t ncap = self->rcap ? self->rcap * 2 : CHAN_READ_CHUNK * 2;
        if (ncap > CHAN_FRAME_MAX)
            ncap = CHAN_FRAME_MAX;
        self->rbuf = xrealloc(self->rbuf, ncap);
        self->rcap = ncap;
    }
    if (self->rlen == self->rcap)
        return TASKQ_OK;
    for (;;) {
        ssize_t r = recv(self->fd, self->rbuf + self->rlen, self->rcap - self->rlen, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return TASKQ_OK;
            return errno == ECONNRESET ? TASKQ_ECLOSED : TASKQ_ESYS;
        }
        if (r == 0)
            return TASKQ_ECLOSED;
        self->rlen += (size_t)r;
        return TASKQ_OK;
    }
}

/* Typed accessors over a decoded array; false on a wrong type or limit. */
static bool get_uint(const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > max)
        return false;
    *out = o->via.u64;
    return true;
}

static bool get_id(const msgpack_object *o, taskq_id_t *id)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != sizeof id->b)
        return false;
    memcpy(id->b, o->via.bin.ptr, sizeof id->b);
    return true;
}

static bool get_str(const msgpack_object *o, uint32_t max, const char **p, uint32_t *len)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max)
        return false;
    *p = o->via.str.ptr;
    *len = o->via.str.size;
    return true;
}

/* A positive or negative integer in [min, max]. */
static bool get_int(const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX &&
        (int64_t)o->via.u64 >= min && (int64_t)o->via.u64 <= max) {
        *out = (int64_t)o->via.u64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= min && o->via.i64 <= max) {
        *out = o->via.i64;
        return true;
    }
    return false;
}

static bool get_f64(const msgpack_object *o, double *out)
{
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        *out = o->via.f64;
        return true;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = (double)o->via.u64;
        return true;
    }
    return false;
}

static bool get_pstr(const msgpack_object *o, uint32_t max, proto_str_t *s)
{
    return get_str(o, max, &s->ptr, &s->len);
}

static bool get_bin(const msgpack_object *o, uint32_t max, const void **p, uint32_t *len)
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max)
        return false;
    *p = o->via.bin.ptr;
    *len = o->via.bin.size;
    return true;
}

static taskq_err_t decode(chan_t *self, const uint8_t *body, size_t len, chan_frame_t *f)
{
    memset(f, 0, sizeof *f);
    /* depth 2: the frame array holds scalars only (args travel as bin) */
    taskq_err_t rc = proto_precheck(body, len, 2);
    if (rc != TASKQ_OK)
        return rc;
    msgpack_unpacked_destroy(&self->up);
    msgpack_unpacked_init(&self->up);
    size_t off = 0;
    if (msgpack_unpack_next(&self->up, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS)
        return TASKQ_EPROTO;
    const msgpack_object *o = &self->up.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1)
        return TASKQ_EPROTO;
    const msgpack_object *a = o->via.array.ptr;
    uint32_t n = o->via.array.size;
    uint64_t kind, u;
    if (!get_uint(&a[0], 255, &kind))
        return TASKQ_EPROTO;
    f->kind = (int)kind;
    bool ok = true;
    switch (kind) {
    case CHAN_STOP:
    case CHAN_RETIRE:
    case CHAN_RETIRED:
        break;
    case CHAN_READY:
        ok = n >= 2 && get_uint(&a[1], INT32_MAX, &u);
        f->pid = ok ? (int32_t)u : 0;
        break;
    case CHAN_TASK:
        ok = n >= 6 && get_id(&a[1], &f->id) && get_uint(&a[2], UINT32_MAX, &u) &&
             get_str(&a[3], TQ_NAME_MAX, &f->name, &f->name_len) &&
             get_bin(&a[4], TQ_TASK_ARGS_MAX, &f->data, &f->data_len);
        if (ok) {
            f->attempt = (uint32_t)u;
            ok = get_uint(&a[5], INT64_MAX, &u);
            f->time_limit_ms = (int64_t)u;
        }
        break;
    case CHAN_CANCEL:
        ok = n >= 3 && get_id(&a[1], &f->id) && get_uint(&a[2], UINT32_MAX, &u);
        f->attempt = ok ? (uint32_t)u : 0;
        break;
    case CHAN_PROGRESS:
        ok = n >= 6 && get_id(&a[1], &f->id) && get_uint(&a[2], UINT32_MAX, &u);
        if (ok) {
            f->attempt = (uint32_t)u;
            ok = get_uint(&a[3], UINT64_MAX, &f->current) &&
                 get_uint(&a[4], UINT64_MAX, &f->total) &&
                 get_str(&a[5], TQ_PROGRESS_MSG_MAX, &f->message, &f->message_len);
        }
        break;
    case CHAN_DONE:
        ok = n >= 5 && get_id(&a[1], &f->id) && get_uint(&a[2], UINT32_MAX, &u) &&
             a[3].type == MSGPACK_OBJECT_BOOLEAN;
        if (ok) {
            f->attempt = (uint32_t)u;
            f->ok = a[3].via.boolean;
            if (f->ok)
                ok = get_bin(&a[4], TQ_RESULT_MAX, &f->data, &f->data_len);
            else
                ok = get_str(&a[4], TQ_ERROR_MAX, (const char **)&f->data, &f->data_len);
        }
        if (ok && !f->ok && n >= 9) {
            int64_t delay, rl;
            ok = get_str(&a[5], TQ_CODE_MAX, &f->code, &f->code_len) &&
                 a[6].type == MSGPACK_OBJECT_BOOLEAN &&
                 get_int(&a[7], -1, TQ_BACKOFF_MS_MAX, &delay) &&
                 get_int(&a[8], 0, TQ_BACKOFF_MS_MAX, &rl);
            if (ok) {
                f->permanent = a[6].via.boolean;
                f->has_retry_delay = delay >= 0;
                f->retry_delay_ms = delay >= 0 ? delay : 0;
                f->rate_limited_ms = rl;
            }
        }
        break;
    case CHAN_POLICY: {
        proto_retry_policy_t *p = &f->policy;
        int64_t v;
        ok = n >= 10 && get_id(&a[1], &f->id) && get_uint(&a[2], UINT32_MAX, &u);
        if (ok) {
            f->attempt = (uint32_t)u;
            ok = get_uint(&a[3], TQ_ATTEMPTS_MAX, &u);
            p->max_attempts = (uint32_t)u;
        }
        ok = ok && get_int(&a[4], 0, TQ_BACKOFF_MS_MAX, &p->backoff_base_ms) &&
             get_f64(&a[5], &p->backoff_factor) &&
             get_int(&a[6], 0, TQ_BACKOFF_MS_MAX, &p->backoff_max_ms) &&
             get_int(&a[7], -1, PROTO_JITTER_NONE, &v) &&
             get_pstr(&a[8], TQ_PATTERNS_MAX, &p->retry_on) &&
             get_pstr(&a[9], TQ_PATTERNS_MAX, &p->no_retry_on);
        if (ok) {
            p->jitter = (int32_t)v;
            ok = policy_ok(p);
        }
        break;
    }
    default:
        ok = false;
    }
    return ok ? TASKQ_OK : TASKQ_EPROTO;
}

taskq_err_t chan_next(chan_t *self, chan_frame_t *f, bool *got)
{
    *got = false;
    size_t avail = self->rlen - self->rpos;
    if (avail < CHAN_HDR)
        return TASKQ_OK;
    const uint8_t *p = self->rbuf + self->rpos;
    size_t len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    if (len > TQ_MAX_BODY)
        return TASKQ_ETOOBIG;
    if (len == 0)
        return TASKQ_EPROTO;
    if (avail < CHAN_HDR + len)
        return TASKQ_OK;
    self->rpos += CHAN_HDR + len;
    taskq_err_t rc = decode(self, p + CHAN_HDR, len, f);
    if (rc == TASKQ_OK)
        *got = true;
    return rc;
}

taskq_err_t chan_recv(chan_t *self, chan_frame_t *f)
{
    for (;;) {
        bool got;
        taskq_err_t rc = chan_next(self, f, &got);
        if (rc != TASKQ_OK || got)
            return rc;
        rc = chan_read(self);
        if (rc != TASKQ_OK)
            return rc;
    }
}
