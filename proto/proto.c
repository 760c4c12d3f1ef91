/*
 * proto.c - the TQP/1 wire codec: pre-check, decode, encode, send, receive.
 *
 * Decoding runs in three steps, and the order is the security argument:
 *   1. proto_precheck() walks the raw bytes without allocating and bounds
 *      every declared length, count, the depth and the object total;
 *   2. only then msgpack_unpack() builds a msgpack_object tree in the
 *      message's zone (msgpack-c reserves memory for a container's declared
 *      size before reading it: 5 hostile bytes could ask for gigabytes);
 *   3. the per-message decoders read that tree with a sticky error: each
 *      reader is a no-op once an error is set, so decoders read like the spec
 *      and the first problem is the one reported.
 * Strings and binaries point into the caller's body buffer (msgpack_unpack is
 * zero-copy for str/bin); arrays of structs live in msg->zone.
 *
 * This file is linked into libtaskq too, so it uses plain malloc and returns
 * TASKQ_ENOMEM rather than the aborting xmalloc.
 */
#include "proto.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "tlog.h"

/* msgpack-c's unpacker cannot nest deeper than MSGPACK_EMBED_STACK_SIZE (32)
 * anyway, so the pre-check's explicit stack has that size and a larger
 * max_depth is clamped to it. */
#define PRECHECK_STACK 32

/* ADMIN "op": a name of at most this many bytes. */
#define ADMIN_OP_MAX 64

const char *proto_type_name(int type)
{
    switch (type) {
    case PROTO_SUBMIT: return "SUBMIT";
    case PROTO_STATUS: return "STATUS";
    case PROTO_WAIT: return "WAIT";
    case PROTO_WORKERS: return "WORKERS";
    case PROTO_STATS: return "STATS";
    case PROTO_ADMIN: return "ADMIN";
    case PROTO_HELLO: return "HELLO";
    case PROTO_READY: return "READY";
    case PROTO_PROGRESS: return "PROGRESS";
    case PROTO_DONE: return "DONE";
    case PROTO_HEARTBEAT: return "HEARTBEAT";
    case PROTO_BYE: return "BYE";
    case PROTO_BATCH: return "BATCH";
    case PROTO_SUBMIT_ACK: return "SUBMIT_ACK";
    case PROTO_STATUS_REPLY: return "STATUS_REPLY";
    case PROTO_RESULT: return "RESULT";
    case PROTO_WORKERS_REPLY: return "WORKERS_REPLY";
    case PROTO_STATS_REPLY: return "STATS_REPLY";
    case PROTO_ADMIN_REPLY: return "ADMIN_REPLY";
    case PROTO_WELCOME: return "WELCOME";
    case PROTO_TASK: return "TASK";
    case PROTO_DONE_ACK: return "DONE_ACK";
    case PROTO_CANCEL: return "CANCEL";
    case PROTO_ERROR: return "ERROR";
    default: return "UNKNOWN";
    }
}

void proto_msg_init(proto_msg_t *msg, int type)
{
    memset(msg, 0, sizeof *msg);
    msg->type = type;
    if (type == PROTO_DONE) {
        /* the "absent" values of the fields whose zero means something */
        msg->u.done.retry_delay_ms = -1;
        msg->u.done.policy.jitter = -1;
    }
}

void proto_task_spec_init(proto_task_spec_t *t)
{
    memset(t, 0, sizeof *t);
    t->priority = -1;
    t->policy.jitter = -1;
}

void proto_msg_clear(proto_msg_t *msg)
{
    if (!msg)
        return;
    if (msg->zone)
        msgpack_zone_free(msg->zone);
    memset(msg, 0, sizeof *msg);
}

taskq_err_t proto_check_signature(const void *data, size_t len)
{
    const char *s = data;
    if (!s || len != PROTO_SIGNATURE_LEN || memcmp(s, "TASKQ", 5) != 0)
        return TASKQ_EPROTO;
    if (s[5] < '0' || s[5] > '9' || s[6] < '0' || s[6] > '9')
        return TASKQ_EPROTO;
    if (memcmp(s, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN) != 0)
        return TASKQ_EVERSION;
    return TASKQ_OK;
}

bool proto_name_is_valid(const char *s, size_t len, size_t max)
{
    if (!s || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == ':' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool proto_queue_is_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > TQ_QUEUE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                  c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool proto_code_is_valid(const char *s, size_t len)
{
    if (!s || len == 0 || len > TQ_CODE_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.';
        if (!ok)
            return false;
    }
    return true;
}

/* A retry_on / no_retry_on list: entries separated by ',', each a code
 * optionally ending in '*', or "*" alone; spaces around an entry are
 * allowed; no empty entry. The empty list is valid (callers check it). */
static bool patterns_valid(const char *s, size_t len)
{
    if (!s || len > TQ_PATTERNS_MAX)
        return false;
    size_t i = 0;
    for (;;) {
        size_t b = i;
        while (b < len && s[b] != ',')
            b++;
        size_t lo = i, hi = b; /* the entry is s[lo, hi) */
        while (lo < hi && s[lo] == ' ')
            lo++;
        while (hi > lo && s[hi - 1] == ' ')
            hi--;
        if (hi == lo)
            return false;
        if (s[hi - 1] == '*')
            hi--; /* a prefix: the rest may be empty ("*") */
        if (hi > lo && !proto_code_is_valid(s + lo, hi - lo))
            return false;
        if (b == len)
            return true;
        i = b + 1;
    }
}

void proto_str_copy(char *dst, size_t dstsz, proto_str_t s)
{
    if (!dst || dstsz == 0)
        return;
    size_t n = s.ptr ? s.len : 0;
    if (n > dstsz - 1)
        n = dstsz - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

bool proto_str_eq(proto_str_t s, const char *cstr)
{
    if (!cstr)
        return false;
    size_t n = strlen(cstr);
    return n == s.len && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

/* ---- bounded readers for ADMIN params / ADMIN_REPLY data ----------------- */

const msgpack_object *proto_obj_get(const msgpack_object *map, const char *key)
{
    if (!map || !key || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    const msgpack_object_map *m = &map->via.map;
    if (m->size && !m->ptr)
        return NULL;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            (n == 0 || memcmp(k->via.str.ptr, key, n) == 0))
            return &m->ptr[i].val;
    }
    return NULL;
}

/* The value, or NULL when absent or nil (the typed getters' ENOTFOUND). */
static const msgpack_object *obj_val(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = proto_obj_get(map, key);
    return o && o->type != MSGPACK_OBJECT_NIL ? o : NULL;
}

taskq_err_t proto_obj_str(const msgpack_object *map, const char *key, size_t max,
                          proto_str_t *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        (o->via.str.size && !o->via.str.ptr))
        return TASKQ_EPROTO;
    out->ptr = o->via.str.size ? o->via.str.ptr : "";
    out->len = o->via.str.size;
    return TASKQ_OK;
}

taskq_err_t proto_obj_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return TASKQ_EPROTO;
    *out = o->via.u64;
    return TASKQ_OK;
}

taskq_err_t proto_obj_i64(const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return TASKQ_EPROTO;
        *out = (int64_t)o->via.u64;
        return TASKQ_OK;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return TASKQ_OK;
    }
    return TASKQ_EPROTO;
}

taskq_err_t proto_obj_f64(const msgpack_object *map, const char *key, double *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        v = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = (double)o->via.i64;
    else
        return TASKQ_EPROTO;
    if (!isfinite(v))
        return TASKQ_EPROTO;
    *out = v;
    return TASKQ_OK;
}

taskq_err_t proto_obj_bool(const msgpack_object *map, const char *key, bool *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return TASKQ_EPROTO;
    *out = o->via.boolean;
    return TASKQ_OK;
}

taskq_err_t proto_obj_bin(const msgpack_object *map, const char *key, size_t max,
                          proto_bin_t *out)
{
    const msgpack_object *o = obj_val(map, key);
    if (!o)
        return TASKQ_ENOTFOUND;
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > max ||
        (o->via.bin.size && !o->via.bin.ptr))
        return TASKQ_EPROTO;
    out->ptr = o->via.bin.size ? (const uint8_t *)o->via.bin.ptr : NULL;
    out->len = o->via.bin.size;
    return TASKQ_OK;
}

void proto_pack_str(msgpack_packer *pk, proto_str_t s)
{
    size_t n = s.ptr ? s.len : 0;
    msgpack_pack_str(pk, n);
    if (n)
        msgpack_pack_str_body(pk, s.ptr, n);
}

void proto_pack_key(msgpack_packer *pk, const char *key)
{
    proto_pack_str(pk, proto_str(key));
}

/* ---- pre-check -------------------------------------------------------- */

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads the header of the value at *pos: *pos moves past the header (type
 * byte and length/count bytes, not the payload). Returns -1 if the header is
 * truncated or the type byte is 0xc1; else 0 for a scalar whose payload is
 * *skip bytes, 1 for an array or 2 for a map of *count elements / pairs.
 * Nothing beyond the header is bounded here. */
static int mp_head(const uint8_t *p, size_t len, size_t *pos, uint64_t *skip, uint64_t *count)
{
    *skip = 0;
    *count = 0;
    if (*pos >= len)
        return -1;
    uint8_t b = p[(*pos)++];
    size_t left = len - *pos;
    int hdr = 0;       /* extra header bytes holding a length/count */
    int container = 0; /* 1 array, 2 map */

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if (b <= 0x8f) {
        *count = b & 0x0f;
        return 2;
    }
    if (b <= 0x9f) {
        *count = b & 0x0f;
        return 1;
    }
    if (b <= 0xbf) {
        *skip = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc1: return -1; /* never used */
    case 0xc4: case 0xd9: hdr = 1; break;
    case 0xc5: case 0xda: hdr = 2; break;
    case 0xc6: case 0xdb: hdr = 4; break;
    case 0xc7: hdr = 1, *skip = 1; break; /* ext: + type byte */
    case 0xc8: hdr = 2, *skip = 1; break;
    case 0xc9: hdr = 4, *skip = 1; break;
    case 0xca: *skip = 4; break;
    case 0xcb: *skip = 8; break;
    case 0xcc: case 0xd0: *skip = 1; break;
    case 0xcd: case 0xd1: *skip = 2; break;
    case 0xce: case 0xd2: *skip = 4; break;
    case 0xcf: case 0xd3: *skip = 8; break;
    case 0xd4: *skip = 2; break; /* fixext 1..16: type + data */
    case 0xd5: *skip = 3; break;
    case 0xd6: *skip = 5; break;
    case 0xd7: *skip = 9; break;
    case 0xd8: *skip = 17; break;
    case 0xdc: container = 1, hdr = 2; break;
    case 0xdd: container = 1, hdr = 4; break;
    case 0xde: container = 2, hdr = 2; break;
    case 0xdf: container = 2, hdr = 4; break;
    default: return -1;
    }
    if ((size_t)hdr > left)
        return -1;
    if (hdr) {
        uint64_t v = be(p + *pos, hdr);
        *pos += (size_t)hdr;
        if (container)
            *count = v;
        else
            *skip += v;
    }
    return container;
}

taskq_err_t proto_precheck(const void *data, size_t len, int max_depth)
{
    const uint8_t *p = data;
    /* stack[i]: values still to read in the i-th open container (always > 0) */
    uint32_t stack[PRECHECK_STACK];
    int sp = 0;
    size_t pos = 0;
    uint64_t objects = 0;

    if (!p && len)
        return TASKQ_EPROTO;
    if (max_depth < 0)
        max_depth = 0;
    if (max_depth > PRECHECK_STACK)
        max_depth = PRECHECK_STACK;

    for (;;) {
        if (pos >= len)
            return TASKQ_EPROTO; /* truncated */
        if (++objects > TQ_MAX_OBJECTS)
            return TASKQ_ETOOBIG;
        uint64_t skip, count;
        int container = mp_head(p, len, &pos, &skip, &count);
        if (container < 0)
            return TASKQ_EPROTO;
        size_t left = len - pos;

        if (!container) {
            if (skip > left)
                return TASKQ_EPROTO;
            pos += (size_t)skip;
        } else {
            /* every element needs at least one byte, a map pair two */
            uint64_t elements = container == 2 ? count * 2 : count;
            if (elements > left)
                return TASKQ_EPROTO;
            if (count > TQ_MAX_ARRAY)
                return TASKQ_ETOOBIG;
            if (sp + 1 > max_depth)
                return TASKQ_ETOOBIG;
            if (elements > 0) {
                stack[sp++] = (uint32_t)elements;
                continue; /* the container completes with its last element */
            }
        }
        /* one value complete: count it against its parents */
        while (sp > 0) {
            if (--stack[sp - 1] > 0)
                break;
            sp--;
        }
        if (sp == 0)
            break;
    }
    return pos == len ? TASKQ_OK : TASKQ_EPROTO; /* trailing bytes */
}

/* Skips the value at *pos of a buffer that passed proto_precheck (checked
 * again anyway: false on any overrun). */
static bool mp_skip(const uint8_t *p, size_t len, size_t *pos)
{
    uint64_t pending = 1;
    size_t i = *pos;
    while (pending > 0) {
        uint64_t skip, count;
        int k = mp_head(p, len, &i, &skip, &count);
        if (k < 0)
            return false;
        pending--;
        if (k == 0) {
            if (skip > len - i)
                return false;
            i += (size_t)skip;
        } else {
            uint64_t elements = k == 2 ? count * 2 : count;
            if (elements > len - i)
                return false;
            pending += elements;
        }
    }
    *pos = i;
    return true;
}

/* The raw bytes of the value under a string key of the map that is the
 * whole of body (which passed proto_precheck); the first occurrence wins,
 * like dget(). {NULL, 0} if absent. */
static proto_bin_t mp_raw_value(const uint8_t *body, size_t len, const char *key)
{
    proto_bin_t r = {NULL, 0};
    size_t pos = 0, n = strlen(key);
    uint64_t skip, pairs;
    if (mp_head(body, len, &pos, &skip, &pairs) != 2)
        return r;
    for (uint64_t i = 0; i < pairs; i++) {
        size_t kpos = pos;
        if (kpos >= len)
            return r;
        uint8_t kb = body[kpos];
        bool is_str = (kb >= 0xa0 && kb <= 0xbf) || (kb >= 0xd9 && kb <= 0xdb);
        uint64_t kskip, kcount;
        if (mp_head(body, len, &kpos, &kskip, &kcount) < 0)
            return r;
        bool match = is_str && kskip == n && kskip <= len - kpos &&
                     (n == 0 || memcmp(body + kpos, key, n) == 0);
        if (!mp_skip(body, len, &pos)) /* the key */
            return r;
        size_t vstart = pos;
        if (!mp_skip(body, len, &pos)) /* the value */
            return r;
        if (match) {
            r.ptr = body + vstart;
            r.len = (uint32_t)(pos - vstart);
            return r;
        }
    }
    return r;
}

/* ---- decode ----------------------------------------------------------- */

/* The detail of the last decode error of this thread. A buffer rather than a
 * literal so that it can name the array index ("tasks[3].name"); it is valid
 * until the next proto_decode() on the same thread. */
static _Thread_local char g_detail[192];

typedef struct {
    const char *type;  /* "SUBMIT" */
    char pfx[96];      /* path of the enclosing element, "tasks[3]." */
    size_t pfxlen;
    taskq_err_t err;
    msgpack_zone *zone;
    const uint8_t *body; /* the whole body (it passed proto_precheck) */
    size_t len;
} dec_t;

static void dfail(dec_t *d, taskq_err_t err, const char *field, const char *problem)
{
    if (d->err)
        return;
    d->err = err;
    size_t plen = d->pfxlen;
    if (!field[0] && plen > 0 && d->pfx[plen - 1] == '.')
        plen--; /* the element itself: "tasks[3]: not a map" */
    snprintf(g_detail, sizeof g_detail, "%s %.*s%s: %s", d->type, (int)plen, d->pfx, field,
             problem);
}

/* Descends into element `idx` of array `field`; returns the old length. */
static size_t dpush(dec_t *d, const char *field, long idx)
{
    size_t old = d->pfxlen;
    int n = idx >= 0 ? snprintf(d->pfx + old, sizeof d->pfx - old, "%s[%ld].", field, idx)
                     : snprintf(d->pfx + old, sizeof d->pfx - old, "%s.", field);
    if (n > 0)
        d->pfxlen = old + (size_t)n < sizeof d->pfx ? old + (size_t)n : sizeof d->pfx - 1;
    return old;
}

static void dpop(dec_t *d, size_t old)
{
    d->pfxlen = old;
    d->pfx[old] = '\0';
}

/* A map with string keys, or NULL after setting the error. */
static const msgpack_object_map *dmap(dec_t *d, const msgpack_object *o, const char *field)
{
    if (d->err)
        return NULL;
    if (o->type != MSGPACK_OBJECT_MAP) {
        dfail(d, TASKQ_EPROTO, field, "not a map");
        return NULL;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
            dfail(d, TASKQ_EPROTO, field, "map key is not a string");
            return NULL;
        }
    }
    return &o->via.map;
}

/* The value of key, or NULL (missing: an error if required). The first
 * occurrence wins if a hostile peer repeats a key. */
static const msgpack_object *dget(dec_t *d, const msgpack_object_map *m, const char *key,
                                  bool required)
{
    if (d->err || !m)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_str *k = &m->ptr[i].key.via.str;
        if (k->size == n && memcmp(k->ptr, key, n) == 0)
            return &m->ptr[i].val;
    }
    if (required)
        dfail(d, TASKQ_EPROTO, key, "missing");
    return NULL;
}

static uint64_t du64(dec_t *d, const msgpack_object_map *m, const char *key, bool required,
                     uint64_t max)
{
    const msgpack_object *o = dget(d, m, key, required);
    if (!o)
        return 0;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        dfail(d, TASKQ_EPROTO, key, "negative");
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        dfail(d, TASKQ_EPROTO, key, "not an unsigned integer");
        return 0;
    }
    if (o->via.u64 > max) {
        dfail(d, max >= UINT32_MAX ? TASKQ_EPROTO : TASKQ_ETOOBIG, key, "out of range");
        return 0;
    }
    return o->via.u64;
}

static int64_t di64(dec_t *d, const msgpack_object_map *m, const char *key, bool required,
                    int64_t min, int64_t max)
{
    const msgpack_object *o = dget(d, m, key, required);
    if (!o)
        return 0;
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            dfail(d, TASKQ_EPROTO, key, "out of range");
            return 0;
        }
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        dfail(d, TASKQ_EPROTO, key, "not an integer");
        return 0;
    }
    if (v < min) {
        dfail(d, TASKQ_EPROTO, key, min == 0 ? "negative" : "out of range");
        return 0;
    }
    if (v > max) {
        dfail(d, TASKQ_EPROTO, key, "out of range");
        return 0;
    }
    return v;
}

static bool dbool_o(dec_t *d, const msgpack_object_map *m, const char *key, bool required)
{
    const msgpack_object *o = dget(d, m, key, required);
    if (!o)
        return false;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        dfail(d, TASKQ_EPROTO, key, "not a boolean");
        return false;
    }
    return o->via.boolean;
}

static bool dbool(dec_t *d, const msgpack_object_map *m, const char *key)
{
    return dbool_o(d, m, key, true);
}

/* An optional uint: dflt when absent; above max is ETOOBIG (a limit), or
 * EPROTO when max is INT64_MAX (the type's range). */
static int64_t dopt_u(dec_t *d, const msgpack_object_map *m, const char *key, int64_t max,
                      int64_t dflt)
{
    const msgpack_object *o = dget(d, m, key, false);
    if (!o || d->err)
        return dflt;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        dfail(d, TASKQ_EPROTO, key, "negative");
        return dflt;
    }
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        dfail(d, TASKQ_EPROTO, key, "not an unsigned integer");
        return dflt;
    }
    if (o->via.u64 > (uint64_t)max) {
        dfail(d, max == INT64_MAX ? TASKQ_EPROTO : TASKQ_ETOOBIG, key, "out of range");
        return dflt;
    }
    return (int64_t)o->via.u64;
}

enum {
    STR_ANY = 0,
    STR_NAME = 1,           /* [A-Za-z0-9_.:-]{1,max} */
    STR_NAME_OR_EMPTY = 2,
    STR_PRINTABLE = 3,      /* printable ASCII, may be empty */
    STR_QUEUE = 4,          /* [a-z0-9_.-]{1,max} */
    STR_QUEUE_OR_EMPTY = 5,
    STR_CODE = 6,           /* [A-Za-z0-9_.]{1,max} */
    STR_CODE_OR_EMPTY = 7,
    STR_PATTERNS = 8,       /* a retry_on list, may be empty */
    STR_PRINTABLE1 = 9,     /* printable ASCII, 1..max (a unique key) */
};

static bool printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Whether kind allows the empty string. */
static bool kind_allows_empty(int kind)
{
    return kind != STR_NAME && kind != STR_QUEUE && kind != STR_CODE && kind != STR_PRINTABLE1;
}

/* The character set of kind, for a non-empty s of at most max bytes. */
static bool kind_charset_ok(const char *s, size_t n, size_t max, int kind)
{
    switch (kind) {
    case STR_NAME:
    case STR_NAME_OR_EMPTY: return proto_name_is_valid(s, n, max);
    case STR_PRINTABLE:
    case STR_PRINTABLE1: return printable(s, n);
    case STR_QUEUE:
    case STR_QUEUE_OR_EMPTY: return proto_queue_is_valid(s, n);
    case STR_CODE:
    case STR_CODE_OR_EMPTY: return proto_code_is_valid(s, n);
    case STR_PATTERNS: return patterns_valid(s, n);
    default: return true;
    }
}

static proto_str_t dstr_obj(dec_t *d, const msgpack_object *o, const char *key, size_t max,
                            int kind)
{
    proto_str_t r = {"", 0};
    if (d->err || !o)
        return r;
    if (o->type != MSGPACK_OBJECT_STR) {
        dfail(d, TASKQ_EPROTO, key, "not a string");
        return r;
    }
    if (o->via.str.size > max) {
        dfail(d, TASKQ_ETOOBIG, key, "too long");
        return r;
    }
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    if (n == 0 && !kind_allows_empty(kind)) {
        dfail(d, TASKQ_ENAME, key, "empty");
        return r;
    }
    if (n > 0 && !kind_charset_ok(s, n, max, kind)) {
        dfail(d, TASKQ_ENAME, key,
              kind == STR_PRINTABLE || kind == STR_PRINTABLE1 ? "not printable ASCII"
              : kind == STR_PATTERNS ? "invalid pattern list"
                                     : "invalid character");
        return r;
    }
    if (n)
        r.ptr = s;
    r.len = (uint32_t)n;
    return r;
}

static proto_str_t dstr(dec_t *d, const msgpack_object_map *m, const char *key, bool required,
                        size_t max, int kind)
{
    return dstr_obj(d, dget(d, m, key, required), key, max, kind);
}

static void did_obj(dec_t *d, const msgpack_object *o, const char *key, taskq_id_t *id)
{
    if (d->err || !o)
        return;
    if (o->type != MSGPACK_OBJECT_BIN) {
        dfail(d, TASKQ_EPROTO, key, "not a binary");
        return;
    }
    if (o->via.bin.size != sizeof id->b) {
        dfail(d, TASKQ_EPROTO, key, "not 16 bytes");
        return;
    }
    memcpy(id->b, o->via.bin.ptr, sizeof id->b);
    if (taskq_id_is_zero(id))
        dfail(d, TASKQ_EPROTO, key, "all-zero id");
}

static void did(dec_t *d, const msgpack_object_map *m, const char *key, taskq_id_t *id)
{
    did_obj(d, dget(d, m, key, true), key, id);
}

/* An optional id of a SUBMIT task ("parent", "group", "callback_of"):
 * true when present; nil is no id (EPROTO), like any other wrong type. */
static bool did_opt(dec_t *d, const msgpack_object_map *m, const char *key, taskq_id_t *id)
{
    const msgpack_object *o = dget(d, m, key, false);
    if (!o || d->err)
        return false;
    did_obj(d, o, key, id);
    return !d->err;
}

/* An id or nil (record links, SUBMIT_ACK holders): nil or absent (o NULL)
 * is the zero id; an all-zero bin is still EPROTO. */
static void did_or_nil_obj(dec_t *d, const msgpack_object *o, const char *key, taskq_id_t *id)
{
    memset(id, 0, sizeof *id);
    if (!o || d->err || o->type == MSGPACK_OBJECT_NIL)
        return;
    did_obj(d, o, key, id);
}

/* A bin holding one msgpack value (args, result); empty is allowed. */
static proto_bin_t dvalue(dec_t *d, const msgpack_object_map *m, const char *key, bool required,
                          size_t max)
{
    proto_bin_t r = {NULL, 0};
    const msgpack_object *o = dget(d, m, key, required);
    if (!o)
        return r;
    if (o->type != MSGPACK_OBJECT_BIN) {
        dfail(d, TASKQ_EPROTO, key, "not a binary");
        return r;
    }
    if (o->via.bin.size > max) {
        dfail(d, TASKQ_ETOOBIG, key, "too big");
        return r;
    }
    if (o->via.bin.size > 0) {
        taskq_err_t e = proto_precheck(o->via.bin.ptr, o->via.bin.size, TQ_MAX_DEPTH);
        if (e) {
            dfail(d, e, key, "not exactly one valid msgpack value");
            return r;
        }
        r.ptr = (const uint8_t *)o->via.bin.ptr;
    }
    r.len = o->via.bin.size;
    return r;
}

/* An array of at most max elements; *n receives its size. */
static const msgpack_object *darray(dec_t *d, const msgpack_object_map *m, const char *key,
                                    bool required, uint32_t max, uint32_t *n)
{
    *n = 0;
    const msgpack_object *o = dget(d, m, key, required);
    if (!o)
        return NULL;
    if (o->type != MSGPACK_OBJECT_ARRAY) {
        dfail(d, TASKQ_EPROTO, key, "not an array");
        return NULL;
    }
    if (o->via.array.size > max) {
        dfail(d, TASKQ_ETOOBIG, key, "too many elements");
        return NULL;
    }
    *n = o->via.array.size;
    return o->via.array.ptr;
}

static void *dalloc(dec_t *d, size_t n, size_t size)
{
    if (d->err || n == 0)
        return NULL;
    void *p = msgpack_zone_malloc(d->zone, n * size);
    if (!p) {
        d->err = TASKQ_ENOMEM;
        snprintf(g_detail, sizeof g_detail, "%s: out of memory", d->type);
        return NULL;
    }
    memset(p, 0, n * size);
    return p;
}

static proto_lease_t *dleases(dec_t *d, const msgpack_object_map *m, bool required,
                              uint32_t *nout)
{
    uint32_t n;
    const msgpack_object *a = darray(d, m, "leases", required, TQ_LEASES_MAX, &n);
    proto_lease_t *ls = dalloc(d, n, sizeof *ls);
    for (uint32_t i = 0; i < n && !d->err; i++) {
        size_t old = dpush(d, "leases", (long)i);
        const msgpack_object *e = &a[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2) {
            dfail(d, TASKQ_EPROTO, "", "not a [id, attempt] pair");
        } else {
            did_obj(d, &e->via.array.ptr[0], "id", &ls[i].id);
            const msgpack_object *at = &e->via.array.ptr[1];
            if (!d->err && (at->type != MSGPACK_OBJECT_POSITIVE_INTEGER || at->via.u64 > UINT32_MAX))
                dfail(d, TASKQ_EPROTO, "attempt", "not a uint32");
            else
                ls[i].attempt = (uint32_t)at->via.u64;
        }
        dpop(d, old);
    }
    *nout = d->err ? 0 : n;
    return ls;
}

static void dchild(dec_t *d, const msgpack_object *o, proto_child_t *c)
{
    const msgpack_object_map *m = dmap(d, o, "");
    c->pid = (int32_t)di64(d, m, "pid", true, INT32_MIN, INT32_MAX);
    c->state = dstr(d, m, "state", true, TQ_STATE_MAX, STR_ANY);
    const msgpack_object *t = dget(d, m, "task_id", false);
    if (t && t->type != MSGPACK_OBJECT_NIL) {
        did_obj(d, t, "task_id", &c->task_id);
        c->has_task = true;
    }
    c->task_name = dstr(d, m, "task_name", true, TQ_NAME_MAX, STR_NAME_OR_EMPTY);
    c->running_ms = di64(d, m, "running_ms", true, 0, INT64_MAX);
    c->done = du64(d, m, "done", true, UINT64_MAX);
    c->failed = du64(d, m, "failed", true, UINT64_MAX);
    c->rss_kb = du64(d, m, "rss_kb", true, UINT64_MAX);
}

static proto_child_t *dchildren(dec_t *d, const msgpack_object_map *m, bool required,
                                uint32_t *nout)
{
    uint32_t n;
    const msgpack_object *a = darray(d, m, "children", required, TQ_SLOTS_MAX, &n);
    proto_child_t *cs = dalloc(d, n, sizeof *cs);
    for (uint32_t i = 0; i < n && !d->err; i++) {
        size_t old = dpush(d, "children", (long)i);
        dchild(d, &a[i], &cs[i]);
        dpop(d, old);
    }
    *nout = d->err ? 0 : n;
    return cs;
}

/* "backoff_factor": float or uint, 0 (not given) or 1..1000. */
static double dfactor(dec_t *d, const msgpack_object_map *m)
{
    static const char key[] = "backoff_factor";
    const msgpack_object *o = dget(d, m, key, false);
    if (!o || d->err)
        return 0;
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
        v = o->via.f64;
    } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        v = (double)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        dfail(d, TASKQ_EPROTO, key, "negative");
        return 0;
    } else {
        dfail(d, TASKQ_EPROTO, key, "not a number");
        return 0;
    }
    if (v != v) {
        dfail(d, TASKQ_EPROTO, key, "not a number");
        return 0;
    }
    if (v == 0)
        return 0; /* also -0.0 */
    if (v < 1) {
        dfail(d, TASKQ_EPROTO, key, "out of range (0 or 1..1000)");
        return 0;
    }
    if (v > 1000) {
        dfail(d, TASKQ_ETOOBIG, key, "out of range (0 or 1..1000)");
        return 0;
    }
    return v;
}

static const char *const g_jitter_names[] = {"equal", "full", "none"};

/* "jitter": "equal" | "full" | "none"; -1 when absent. */
static int32_t djitter(dec_t *d, const msgpack_object_map *m)
{
    const msgpack_object *o = dget(d, m, "jitter", false);
    if (!o || d->err)
        return -1;
    proto_str_t s = dstr_obj(d, o, "jitter", 16, STR_ANY);
    if (d->err)
        return -1;
    for (int32_t j = 0; j < 3; j++)
        if (proto_str_eq(s, g_jitter_names[j]))
            return j;
    dfail(d, TASKQ_EPROTO, "jitter", "unknown jitter (equal, full or none)");
    return -1;
}

static const char *const g_until_names[] = {"done", "start"};
static const char *const g_on_fail_names[] = {"fail", "settle"};

/* An optional str naming one of names[0..n): its index; dflt when absent. */
static int32_t denum(dec_t *d, const msgpack_object_map *m, const char *key,
                     const char *const *names, int32_t n, int32_t dflt, const char *problem)
{
    const msgpack_object *o = dget(d, m, key, false);
    if (!o || d->err)
        return dflt;
    proto_str_t s = dstr_obj(d, o, key, 16, STR_ANY);
    if (d->err)
        return dflt;
    for (int32_t j = 0; j < n; j++)
        if (proto_str_eq(s, names[j]))
            return j;
    dfail(d, TASKQ_EPROTO, key, problem);
    return dflt;
}

/* The retry policy keys of a task map or of DONE's "policy" map (but
 * max_attempts, which the callers read). */
static void dpolicy(dec_t *d, const msgpack_object_map *m, proto_retry_policy_t *p)
{
    p->backoff_base_ms = dopt_u(d, m, "backoff_base_ms", TQ_BACKOFF_MS_MAX, 0);
    p->backoff_factor = dfactor(d, m);
    p->backoff_max_ms = dopt_u(d, m, "backoff_max_ms", TQ_BACKOFF_MS_MAX, 0);
    p->jitter = djitter(d, m);
    p->retry_on = dstr(d, m, "retry_on", false, TQ_PATTERNS_MAX, STR_PATTERNS);
    p->no_retry_on = dstr(d, m, "no_retry_on", false, TQ_PATTERNS_MAX, STR_PATTERNS);
}

/* A task record map (the STATUS_REPLY "task"); full=false for RESULT with
 * a nonzero code (only id is required). */
static void drec_obj(dec_t *d, const msgpack_object *o, proto_task_rec_t *t, bool full)
{
    const msgpack_object_map *m = dmap(d, o, "");
    did(d, m, "id", &t->id);
    t->name = dstr(d, m, "name", full, TQ_NAME_MAX, STR_NAME_OR_EMPTY);
    proto_str_t st = dstr(d, m, "state", full, 16, STR_ANY);
    t->state = TASKQ_STATE_QUEUED;
    if (!d->err && (st.len || full)) {
        int s;
        for (s = 0; s < TASKQ_NSTATES; s++)
            if (proto_str_eq(st, taskq_state_name(s)))
                break;
        if (s >= TASKQ_NSTATES)
            dfail(d, TASKQ_EPROTO, "state", "unknown state");
        t->state = s;
    }
    t->attempts = (uint32_t)du64(d, m, "attempts", full, UINT32_MAX);
    t->max_attempts = (uint32_t)du64(d, m, "max_attempts", full, UINT32_MAX);
    t->worker = dstr(d, m, "worker", full, TQ_NODE_MAX, STR_NAME_OR_EMPTY);
    t->child_pid = (int32_t)di64(d, m, "child_pid", full, INT32_MIN, INT32_MAX);
    t->submitted_at = di64(d, m, "submitted_at", full, 0, INT64_MAX);
    t->started_at = di64(d, m, "started_at", full, 0, INT64_MAX);
    t->finished_at = di64(d, m, "finished_at", full, 0, INT64_MAX);
    const msgpack_object *p = dget(d, m, "progress", full);
    if (p) {
        if (p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 3) {
            dfail(d, TASKQ_EPROTO, "progress", "not a [current, total, message] array");
        } else {
            const msgpack_object *pa = p->via.array.ptr;
            for (int i = 0; i < 2 && !d->err; i++)
                if (pa[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    dfail(d, TASKQ_EPROTO, "progress", "current/total not unsigned integers");
            if (!d->err) {
                t->progress_current = pa[0].via.u64;
                t->progress_total = pa[1].via.u64;
            }
            t->progress_message =
                dstr_obj(d, &pa[2], "progress", TQ_PROGRESS_MSG_MAX, STR_ANY);
        }
    }
    if (dget(d, m, "result", false)) {
        t->result = dvalue(d, m, "result", true, TQ_RESULT_MAX);
        t->has_result = true;
    }
    t->error = dstr(d, m, "error", full, TQ_ERROR_MAX, STR_ANY);
    /* dispatch policy: optional (absent from older brokers) */
    t->queue = dstr(d, m, "queue", false, TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
    t->priority = (int32_t)dopt_u(d, m, "priority", TQ_PRIORITY_MAX, TQ_DEFAULT_PRIORITY);
    t->failures = (uint32_t)du64(d, m, "failures", false, UINT32_MAX);
    t->code = dstr(d, m, "code", false, TQ_CODE_MAX, STR_CODE_OR_EMPTY);
    t->due_at = di64(d, m, "due_at", false, 0, INT64_MAX);
    t->expires_at = di64(d, m, "expires_at", false, 0, INT64_MAX);
    t->schedule = dstr(d, m, "schedule", false, TQ_SCHED_NAME_MAX, STR_NAME_OR_EMPTY);
    /* lifecycle: optional (absent from older brokers, and when none) */
    did_or_nil_obj(d, dget(d, m, "group_id", false), "group_id", &t->group_id);
    did_or_nil_obj(d, dget(d, m, "parent_id", false), "parent_id", &t->parent_id);
    did_or_nil_obj(d, dget(d, m, "rerun_of", false), "rerun_of", &t->rerun_of);
    did_or_nil_obj(d, dget(d, m, "rerun_by", false), "rerun_by", &t->rerun_by);
    t->unique_key = dstr(d, m, "unique_key", false, TQ_UNIQUE_KEY_MAX, STR_PRINTABLE);
}

/* The "task" key of a STATUS_REPLY / RESULT body. */
static void drec(dec_t *d, const msgpack_object_map *top, proto_task_rec_t *t, bool full)
{
    const msgpack_object *o = dget(d, top, "task", true);
    if (!o)
        return;
    size_t old = dpush(d, "task", -1);
    drec_obj(d, o, t, full);
    dpop(d, old);
}

taskq_err_t proto_unpack_task_rec(const msgpack_object *obj, proto_task_rec_t *rec)
{
    if (!obj || !rec)
        return TASKQ_EINVAL;
    memset(rec, 0, sizeof *rec);
    dec_t d = {.type = "task record"};
    drec_obj(&d, obj, rec, true);
    if (d.err)
        memset(rec, 0, sizeof *rec);
    return d.err;
}

static void dnode(dec_t *d, const msgpack_object *o, proto_node_t *n)
{
    const msgpack_object_map *m = dmap(d, o, "");
    n->id = dstr(d, m, "id", true, TQ_NODE_MAX, STR_NAME);
    n->host = dstr(d, m, "host", true, TQ_HOST_MAX, STR_PRINTABLE);
    n->pid = (int32_t)di64(d, m, "pid", true, INT32_MIN, INT32_MAX);
    n->slots = (uint32_t)du64(d, m, "slots", true, TQ_SLOTS_MAX);
    n->last_heartbeat = di64(d, m, "last_heartbeat", true, 0, INT64_MAX);
    n->children = dchildren(d, m, true, &n->nchildren);
}

/* HELLO "queues": [[name, weight], ...], optional. */
static void dqueues(dec_t *d, const msgpack_object_map *m, proto_msg_t *msg)
{
    uint32_t n;
    const msgpack_object *a = darray(d, m, "queues", false, TQ_QUEUES_MAX, &n);
    proto_str_t *names = dalloc(d, n, sizeof *names);
    uint32_t *weights = dalloc(d, n, sizeof *weights);
    for (uint32_t i = 0; i < n && !d->err; i++) {
        size_t old = dpush(d, "queues", (long)i);
        const msgpack_object *e = &a[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2) {
            dfail(d, TASKQ_EPROTO, "", "not a [name, weight] pair");
        } else {
            names[i] = dstr_obj(d, &e->via.array.ptr[0], "name", TQ_QUEUE_MAX, STR_QUEUE);
            const msgpack_object *w = &e->via.array.ptr[1];
            if (!d->err) {
                if (w->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                    dfail(d, TASKQ_EPROTO, "weight", "not an unsigned integer");
                else if (w->via.u64 == 0)
                    dfail(d, TASKQ_EPROTO, "weight", "zero");
                else if (w->via.u64 > TQ_WEIGHT_MAX)
                    dfail(d, TASKQ_ETOOBIG, "weight", "out of range");
                else
                    weights[i] = (uint32_t)w->via.u64;
            }
            for (uint32_t j = 0; j < i && !d->err; j++)
                if (names[j].len == names[i].len &&
                    memcmp(names[j].ptr, names[i].ptr, names[i].len) == 0)
                    dfail(d, TASKQ_EPROTO, "name", "duplicate queue");
        }
        dpop(d, old);
    }
    msg->u.hello.queue_names = names;
    msg->u.hello.queue_weights = weights;
    msg->u.hello.nqueues = d->err ? 0 : n;
}

static const char CODE_CRASH[] = "taskq.crash";
static const char CODE_ERROR[] = "taskq.error";

/* DONE's failure fields (ok = false), all optional. */
static void ddone_failure(dec_t *d, const msgpack_object_map *m, proto_msg_t *msg)
{
    const msgpack_object *c = dget(d, m, "code", false);
    if (c)
        msg->u.done.code = dstr_obj(d, c, "code", TQ_CODE_MAX, STR_CODE);
    else
        msg->u.done.code = proto_str(msg->u.done.retry ? CODE_CRASH : CODE_ERROR);
    msg->u.done.permanent = dbool_o(d, m, "permanent", false);
    msg->u.done.retry_delay_ms = dopt_u(d, m, "retry_delay_ms", TQ_BACKOFF_MS_MAX, -1);
    msg->u.done.rate_limited_ms = dopt_u(d, m, "rate_limited_ms", TQ_BACKOFF_MS_MAX, 0);
    const msgpack_object *po = dget(d, m, "policy", false);
    if (!po || d->err)
        return;
    const msgpack_object_map *pm = dmap(d, po, "policy");
    size_t old = dpush(d, "policy", -1);
    proto_retry_policy_t *p = &msg->u.done.policy;
    p->max_attempts = (uint32_t)du64(d, pm, "max_attempts", false, TQ_ATTEMPTS_MAX);
    dpolicy(d, pm, p);
    dpop(d, old);
}

/* One task map of a SUBMIT. */
static void dtask(dec_t *d, const msgpack_object *o, proto_task_spec_t *t)
{
    const msgpack_object_map *tm = dmap(d, o, "");
    did(d, tm, "id", &t->id);
    t->name = dstr(d, tm, "name", true, TQ_NAME_MAX, STR_NAME);
    t->args = dvalue(d, tm, "args", false, TQ_ARGS_MAX);
    t->time_limit_ms = di64(d, tm, "time_limit_ms", false, 0, INT64_MAX);
    t->max_attempts = (uint32_t)du64(d, tm, "max_attempts", false, TQ_ATTEMPTS_MAX);
    t->queue = dstr(d, tm, "queue", false, TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
    t->priority = (int32_t)dopt_u(d, tm, "priority", TQ_PRIORITY_MAX, -1);
    t->countdown_ms = dopt_u(d, tm, "countdown_ms", TQ_ETA_MAX_MS, 0);
    t->eta_at = dopt_u(d, tm, "eta_at", INT64_MAX, 0);
    t->expires_in_ms = dopt_u(d, tm, "expires_in_ms", TQ_ETA_MAX_MS, 0);
    t->expires_at = dopt_u(d, tm, "expires_at", INT64_MAX, 0);
    dpolicy(d, tm, &t->policy);
    /* lifecycle; the structure (same SUBMIT, sizes, order) is the broker's */
    t->has_parent = did_opt(d, tm, "parent", &t->parent);
    t->has_group = did_opt(d, tm, "group", &t->group);
    t->index = (uint32_t)du64(d, tm, "index", false, UINT32_MAX);
    t->has_callback_of = did_opt(d, tm, "callback_of", &t->callback_of);
    t->immutable = dbool_o(d, tm, "immutable", false);
    t->unique_key = dstr(d, tm, "unique_key", false, TQ_UNIQUE_KEY_MAX, STR_PRINTABLE1);
    t->unique = dbool_o(d, tm, "unique", false);
    t->unique_until = denum(d, tm, "unique_until", g_until_names, 2, 0,
                            "unknown unique_until (done or start)");
    t->unique_for_ms = dopt_u(d, tm, "unique_for_ms", TQ_TTL_MAX_MS, 0);
    t->result_ttl_ms = dopt_u(d, tm, "result_ttl_ms", TQ_TTL_MAX_MS, 0);
}

/* Whether a SUBMIT is a workflow graph, which may hold TQ_GRAPH_MAX tasks
 * instead of TQ_BATCH_MAX: a non-empty "groups", or a task map with a
 * "parent", "group" or "callback_of" key. Looks at the keys only (the
 * fields' decoders check their values). */
static bool dsubmit_is_graph(dec_t *d, const msgpack_object_map *m, const msgpack_object *tasks,
                             uint32_t n)
{
    const msgpack_object *g = dget(d, m, "groups", false);
    if (g && g->type == MSGPACK_OBJECT_ARRAY && g->via.array.size > 0)
        return true;
    for (uint32_t i = 0; i < n; i++)
        if (proto_obj_get(&tasks[i], "parent") || proto_obj_get(&tasks[i], "group") ||
            proto_obj_get(&tasks[i], "callback_of"))
            return true;
    return false;
}

static void dsubmit(dec_t *d, const msgpack_object_map *m, proto_msg_t *msg)
{
    uint32_t n;
    msg->u.submit.req = du64(d, m, "req", true, UINT64_MAX);
    const msgpack_object *a = darray(d, m, "tasks", true, TQ_GRAPH_MAX, &n);
    if (!d->err && n > TQ_BATCH_MAX && !dsubmit_is_graph(d, m, a, n))
        dfail(d, TASKQ_ETOOBIG, "tasks", "too many elements");
    msg->u.submit.tasks = dalloc(d, n, sizeof *msg->u.submit.tasks);
    for (uint32_t i = 0; i < n && !d->err; i++) {
        size_t old = dpush(d, "tasks", (long)i);
        dtask(d, &a[i], &msg->u.submit.tasks[i]);
        dpop(d, old);
    }
    msg->u.submit.ntasks = d->err ? 0 : n;

    uint32_t ng;
    const msgpack_object *ga = darray(d, m, "groups", false, TQ_GROUPS_MAX, &ng);
    proto_group_t *gs = dalloc(d, ng, sizeof *gs);
    for (uint32_t i = 0; i < ng && !d->err; i++) {
        size_t old = dpush(d, "groups", (long)i);
        const msgpack_object_map *gm = dmap(d, &ga[i], "");
        did(d, gm, "id", &gs[i].id);
        gs[i].size = (uint32_t)du64(d, gm, "size", true, TQ_GRAPH_MAX);
        gs[i].on_fail = denum(d, gm, "on_fail", g_on_fail_names, 2, 0,
                              "unknown on_fail (fail or settle)");
        dpop(d, old);
    }
    msg->u.submit.groups = gs;
    msg->u.submit.ngroups = d->err ? 0 : ng;
}

/* ADMIN "params" / ADMIN_REPLY "data": one msgpack value inline. want is
 * MSGPACK_OBJECT_MAP (params: must be a map; absent = {}) or
 * MSGPACK_OBJECT_NIL (data: any value; absent = nil). Returns the object
 * (in the zone) and sets *raw to its bytes in the body (empty if absent). */
static const msgpack_object *draw_value(dec_t *d, const msgpack_object_map *m, const char *key,
                                        msgpack_object_type want, proto_bin_t *raw)
{
    raw->ptr = NULL;
    raw->len = 0;
    const msgpack_object *o = dget(d, m, key, false);
    if (d->err)
        return NULL;
    if (!o) {
        msgpack_object *z = dalloc(d, 1, sizeof *z);
        if (z)
            z->type = want; /* an empty map / nil (zeroed by dalloc) */
        return z;
    }
    if (want == MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_MAP) {
        dfail(d, TASKQ_EPROTO, key, "not a map");
        return NULL;
    }
    *raw = mp_raw_value(d->body, d->len, key);
    if (!raw->ptr) { /* cannot happen after the pre-check */
        dfail(d, TASKQ_EINTERNAL, key, "raw value not found");
        return NULL;
    }
    return o;
}

static void dbody(dec_t *d, int type, const msgpack_object_map *m, proto_msg_t *msg)
{
    uint32_t n;
    const msgpack_object *a;
    switch (type) {
    case PROTO_SUBMIT:
        dsubmit(d, m, msg);
        break;
    case PROTO_SUBMIT_ACK:
        msg->u.submit_ack.req = du64(d, m, "req", true, UINT64_MAX);
        a = darray(d, m, "codes", true, TQ_GRAPH_MAX, &n);
        msg->u.submit_ack.codes = dalloc(d, n, sizeof(uint32_t));
        for (uint32_t i = 0; i < n && !d->err; i++) {
            if (a[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[i].via.u64 > UINT32_MAX)
                dfail(d, TASKQ_EPROTO, "codes", "element not a uint32");
            else
                msg->u.submit_ack.codes[i] = (uint32_t)a[i].via.u64;
        }
        msg->u.submit_ack.ncodes = d->err ? 0 : n;
        {
            uint32_t nq;
            const msgpack_object *q = darray(d, m, "queues", false, TQ_GRAPH_MAX, &nq);
            if (!d->err && nq != 0 && nq != n)
                dfail(d, TASKQ_EPROTO, "queues", "not one per code");
            msg->u.submit_ack.queues = dalloc(d, nq, sizeof(proto_str_t));
            for (uint32_t i = 0; i < nq && !d->err; i++) {
                size_t old = dpush(d, "queues", (long)i);
                msg->u.submit_ack.queues[i] =
                    dstr_obj(d, &q[i], "", TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
                dpop(d, old);
            }
            msg->u.submit_ack.nqueues = d->err ? 0 : nq;
            msg->u.submit_ack.soft = dbool_o(d, m, "soft", false);
        }
        {
            uint32_t nh;
            const msgpack_object *h = darray(d, m, "holders", false, TQ_GRAPH_MAX, &nh);
            if (!d->err && nh != 0 && nh != n)
                dfail(d, TASKQ_EPROTO, "holders", "not one per code");
            msg->u.submit_ack.holders = dalloc(d, nh, sizeof(taskq_id_t));
            for (uint32_t i = 0; i < nh && !d->err; i++) {
                size_t old = dpush(d, "holders", (long)i);
                did_or_nil_obj(d, &h[i], "", &msg->u.submit_ack.holders[i]);
                dpop(d, old);
            }
            msg->u.submit_ack.nholders = d->err ? 0 : nh;
        }
        break;
    case PROTO_STATUS:
        msg->u.status.req = du64(d, m, "req", true, UINT64_MAX);
        did(d, m, "id", &msg->u.status.id);
        break;
    case PROTO_STATUS_REPLY:
        msg->u.status_reply.req = du64(d, m, "req", true, UINT64_MAX);
        drec(d, m, &msg->u.status_reply.task, true);
        break;
    case PROTO_WAIT:
        msg->u.wait.req = du64(d, m, "req", true, UINT64_MAX);
        a = darray(d, m, "ids", true, TQ_WAIT_MAX, &n);
        msg->u.wait.ids = dalloc(d, n, sizeof(taskq_id_t));
        for (uint32_t i = 0; i < n && !d->err; i++) {
            size_t old = dpush(d, "ids", (long)i);
            did_obj(d, &a[i], "", &msg->u.wait.ids[i]);
            dpop(d, old);
        }
        msg->u.wait.nids = d->err ? 0 : n;
        msg->u.wait.timeout_ms = di64(d, m, "timeout_ms", true, 0, INT64_MAX);
        msg->u.wait.batch = dbool_o(d, m, "batch", false);
        break;
    case PROTO_RESULT:
        msg->u.result.req = du64(d, m, "req", true, UINT64_MAX);
        msg->u.result.code = (uint32_t)du64(d, m, "code", true, UINT32_MAX);
        drec(d, m, &msg->u.result.task, !d->err && msg->u.result.code == TASKQ_OK);
        break;
    case PROTO_WORKERS:
        msg->u.workers.req = du64(d, m, "req", true, UINT64_MAX);
        break;
    case PROTO_STATS:
        msg->u.stats.req = du64(d, m, "req", true, UINT64_MAX);
        break;
    case PROTO_WORKERS_REPLY:
        msg->u.workers_reply.req = du64(d, m, "req", true, UINT64_MAX);
        a = darray(d, m, "nodes", true, TQ_MAX_ARRAY, &n);
        msg->u.workers_reply.nodes = dalloc(d, n, sizeof(proto_node_t));
        for (uint32_t i = 0; i < n && !d->err; i++) {
            size_t old = dpush(d, "nodes", (long)i);
            dnode(d, &a[i], &msg->u.workers_reply.nodes[i]);
            dpop(d, old);
        }
        msg->u.workers_reply.nnodes = d->err ? 0 : n;
        break;
    case PROTO_STATS_REPLY: {
        proto_stats_t *s = &msg->u.stats_reply.stats;
        msg->u.stats_reply.req = du64(d, m, "req", true, UINT64_MAX);
        const msgpack_object *so = dget(d, m, "stats", true);
        const msgpack_object_map *sm = so ? dmap(d, so, "stats") : NULL;
        size_t old = dpush(d, "stats", -1);
        s->queued = du64(d, sm, "queued", true, UINT64_MAX);
        s->running = du64(d, sm, "running", true, UINT64_MAX);
        s->succeeded = du64(d, sm, "succeeded", true, UINT64_MAX);
        s->failed = du64(d, sm, "failed", true, UINT64_MAX);
        s->total = du64(d, sm, "total", true, UINT64_MAX);
        s->submitted = du64(d, sm, "submitted", true, UINT64_MAX);
        s->nodes = du64(d, sm, "nodes", true, UINT64_MAX);
        s->children = du64(d, sm, "children", true, UINT64_MAX);
        s->uptime_ms = di64(d, sm, "uptime_ms", true, 0, INT64_MAX);
        s->broker = dstr(d, sm, "broker", true, TQ_NODE_MAX, STR_PRINTABLE);
        s->purged = du64(d, sm, "purged", false, UINT64_MAX);
        dpop(d, old);
        break;
    }
    case PROTO_HELLO:
        msg->u.hello.node = dstr(d, m, "node", true, TQ_NODE_MAX, STR_NAME);
        msg->u.hello.host = dstr(d, m, "host", true, TQ_HOST_MAX, STR_PRINTABLE);
        msg->u.hello.pid = (int32_t)di64(d, m, "pid", true, INT32_MIN, INT32_MAX);
        msg->u.hello.slots = (uint32_t)du64(d, m, "slots", true, TQ_SLOTS_MAX);
        msg->u.hello.leases = dleases(d, m, true, &msg->u.hello.nleases);
        dqueues(d, m, msg);
        msg->u.hello.strict = dbool_o(d, m, "strict", false);
        msg->u.hello.batch = dbool_o(d, m, "batch", false);
        break;
    case PROTO_WELCOME:
        msg->u.welcome.broker = dstr(d, m, "broker", true, TQ_NODE_MAX, STR_PRINTABLE);
        msg->u.welcome.heartbeat_ms = di64(d, m, "heartbeat_ms", true, 1, INT32_MAX);
        msg->u.welcome.liveness = (uint32_t)du64(d, m, "liveness", true, UINT32_MAX);
        if (!d->err && msg->u.welcome.liveness == 0)
            dfail(d, TASKQ_EPROTO, "liveness", "zero");
        msg->u.welcome.batch = dbool_o(d, m, "batch", false);
        break;
    case PROTO_READY:
        msg->u.ready.credit = (uint32_t)du64(d, m, "credit", true, TQ_CREDIT_MAX);
        break;
    case PROTO_TASK:
        did(d, m, "id", &msg->u.task.id);
        msg->u.task.attempt = (uint32_t)du64(d, m, "attempt", true, UINT32_MAX);
        msg->u.task.name = dstr(d, m, "name", true, TQ_NAME_MAX, STR_NAME);
        msg->u.task.args = dvalue(d, m, "args", true, TQ_TASK_ARGS_MAX);
        msg->u.task.time_limit_ms = di64(d, m, "time_limit_ms", true, 0, INT64_MAX);
        break;
    case PROTO_PROGRESS:
        did(d, m, "id", &msg->u.progress.id);
        msg->u.progress.attempt = (uint32_t)du64(d, m, "attempt", true, UINT32_MAX);
        msg->u.progress.current = du64(d, m, "current", true, UINT64_MAX);
        msg->u.progress.total = du64(d, m, "total", true, UINT64_MAX);
        msg->u.progress.message = dstr(d, m, "message", true, TQ_PROGRESS_MSG_MAX, STR_ANY);
        break;
    case PROTO_DONE:
        did(d, m, "id", &msg->u.done.id);
        msg->u.done.attempt = (uint32_t)du64(d, m, "attempt", true, UINT32_MAX);
        msg->u.done.ok = dbool(d, m, "ok");
        msg->u.done.retry_delay_ms = -1;
        msg->u.done.policy.jitter = -1;
        if (d->err)
            break;
        if (msg->u.done.ok) {
            msg->u.done.result = dvalue(d, m, "result", true, TQ_RESULT_MAX);
        } else {
            msg->u.done.error = dstr(d, m, "error", true, TQ_ERROR_MAX, STR_ANY);
            msg->u.done.retry = dbool(d, m, "retry");
            ddone_failure(d, m, msg);
        }
        msg->u.done.child_pid = (int32_t)di64(d, m, "child_pid", true, INT32_MIN, INT32_MAX);
        msg->u.done.started_at = di64(d, m, "started_at", true, 0, INT64_MAX);
        break;
    case PROTO_DONE_ACK:
        did(d, m, "id", &msg->u.done_ack.id);
        msg->u.done_ack.attempt = (uint32_t)du64(d, m, "attempt", true, UINT32_MAX);
        msg->u.done_ack.code = (uint32_t)du64(d, m, "code", true, UINT32_MAX);
        break;
    case PROTO_CANCEL:
        did(d, m, "id", &msg->u.cancel.id);
        msg->u.cancel.attempt = (uint32_t)du64(d, m, "attempt", true, UINT32_MAX);
        msg->u.cancel.terminate = dbool(d, m, "terminate");
        msg->u.cancel.grace_ms = di64(d, m, "grace_ms", true, 0, INT64_MAX);
        break;
    case PROTO_HEARTBEAT:
        /* the broker's HEARTBEAT is {}, the worker's lists children and
         * leases: one decoder, both keys optional */
        msg->u.heartbeat.children = dchildren(d, m, false, &msg->u.heartbeat.nchildren);
        msg->u.heartbeat.leases = dleases(d, m, false, &msg->u.heartbeat.nleases);
        break;
    case PROTO_BYE:
        break;
    case PROTO_ERROR:
        msg->u.error.req = du64(d, m, "req", true, UINT64_MAX);
        msg->u.error.code = (uint32_t)du64(d, m, "code", true, UINT32_MAX);
        msg->u.error.message = dstr(d, m, "message", true, TQ_MESSAGE_MAX, STR_ANY);
        /* EBUSY details; read whatever the code, all optional */
        msg->u.error.queue = dstr(d, m, "queue", false, TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
        msg->u.error.depth = du64(d, m, "depth", false, UINT64_MAX);
        msg->u.error.limit = du64(d, m, "limit", false, UINT64_MAX);
        msg->u.error.retry_after_ms = dopt_u(d, m, "retry_after_ms", INT64_MAX, 0);
        break;
    case PROTO_ADMIN:
        msg->u.admin.req = du64(d, m, "req", true, UINT64_MAX);
        msg->u.admin.op = dstr(d, m, "op", true, ADMIN_OP_MAX, STR_NAME);
        msg->u.admin.params_obj =
            draw_value(d, m, "params", MSGPACK_OBJECT_MAP, &msg->u.admin.params);
        break;
    case PROTO_ADMIN_REPLY:
        msg->u.admin_reply.req = du64(d, m, "req", true, UINT64_MAX);
        msg->u.admin_reply.data_obj =
            draw_value(d, m, "data", MSGPACK_OBJECT_NIL, &msg->u.admin_reply.data);
        break;
    default:
        break;
    }
}

taskq_err_t proto_decode(int type, const void *body, size_t len, proto_msg_t *msg,
                         const char **detail)
{
    const char *tname = proto_type_name(type);
    if (detail)
        *detail = NULL;
    proto_msg_clear(msg);
    if (strcmp(tname, "UNKNOWN") == 0) {
        snprintf(g_detail, sizeof g_detail, "unknown message type 0x%02x", (unsigned)type & 0xffu);
        if (detail)
            *detail = g_detail;
        return TASKQ_EUNKNOWN;
    }
    taskq_err_t err;
    if (type == PROTO_BATCH) {
        err = TASKQ_EPROTO; /* read with proto_batch_open/next, and never nested */
        snprintf(g_detail, sizeof g_detail, "BATCH here: not expected (a BATCH in a BATCH?)");
        goto fail;
    }
    if (len > TQ_MAX_BODY) {
        err = TASKQ_ETOOBIG;
        snprintf(g_detail, sizeof g_detail, "%s body: larger than %u bytes", tname, TQ_MAX_BODY);
        goto fail;
    }
    err = proto_precheck(body, len, TQ_MAX_DEPTH);
    if (err) {
        snprintf(g_detail, sizeof g_detail, "%s body: %s", tname,
                 err == TASKQ_ETOOBIG ? "exceeds a depth or count limit"
                                      : "not exactly one valid msgpack value");
        goto fail;
    }

    msg->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    if (!msg->zone) {
        err = TASKQ_ENOMEM;
        snprintf(g_detail, sizeof g_detail, "%s: out of memory", tname);
        goto fail;
    }
    msgpack_object root;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(body, len, &off, msg->zone, &root);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        /* the pre-check accepted it, so only NOMEM is expected here */
        err = ur == MSGPACK_UNPACK_NOMEM_ERROR ? TASKQ_ENOMEM : TASKQ_EPROTO;
        snprintf(g_detail, sizeof g_detail, "%s body: msgpack unpack failed (%d)", tname, (int)ur);
        goto fail;
    }

    dec_t d = {.type = tname, .zone = msg->zone, .body = body, .len = len};
    const msgpack_object_map *m = dmap(&d, &root, "body");
    msg->type = type;
    if (m)
        dbody(&d, type, m, msg);
    if (d.err) {
        err = d.err;
        goto fail;
    }
    return TASKQ_OK;

fail:
    proto_msg_clear(msg);
    if (detail)
        *detail = g_detail;
    return err;
}

/* ---- encode ----------------------------------------------------------- */

typedef struct {
    msgpack_packer pk;
    taskq_err_t err;
} enc_t;

static void efail(enc_t *e, taskq_err_t err, const char *what)
{
    if (!e->err) {
        e->err = err;
        tlog_debug("encode: %s", what);
    }
}

static void echeck(enc_t *e, int rc)
{
    if (rc != 0)
        efail(e, TASKQ_ENOMEM, "buffer allocation failed");
}

static void emap(enc_t *e, size_t n)
{
    if (!e->err)
        echeck(e, msgpack_pack_map(&e->pk, n));
}

static void earray(enc_t *e, size_t n)
{
    if (!e->err)
        echeck(e, msgpack_pack_array(&e->pk, n));
}

static void eraw_str(enc_t *e, const char *s, size_t n)
{
    if (e->err)
        return;
    echeck(e, msgpack_pack_str(&e->pk, n));
    if (!e->err && n)
        echeck(e, msgpack_pack_str_body(&e->pk, s, n));
}

static void ekey(enc_t *e, const char *k) { eraw_str(e, k, strlen(k)); }

static void eu64(enc_t *e, const char *k, uint64_t v)
{
    ekey(e, k);
    if (!e->err)
        echeck(e, msgpack_pack_uint64(&e->pk, v));
}

static void ei64(enc_t *e, const char *k, int64_t v)
{
    ekey(e, k);
    if (!e->err)
        echeck(e, msgpack_pack_int64(&e->pk, v));
}

static void ebool(enc_t *e, const char *k, bool v)
{
    ekey(e, k);
    if (!e->err)
        echeck(e, v ? msgpack_pack_true(&e->pk) : msgpack_pack_false(&e->pk));
}

static void estr_val(enc_t *e, proto_str_t s, size_t max, int kind, const char *what)
{
    if (e->err)
        return;
    if (!s.ptr && s.len) {
        efail(e, TASKQ_EINVAL, what);
        return;
    }
    if (s.len > max || (s.len == 0 && !kind_allows_empty(kind)) ||
        (s.len > 0 && !kind_charset_ok(s.ptr, s.len, max, kind))) {
        efail(e, TASKQ_EINVAL, what);
        return;
    }
    eraw_str(e, s.ptr, s.len);
}

static void estr(enc_t *e, const char *k, proto_str_t s, size_t max, int kind)
{
    ekey(e, k);
    estr_val(e, s, max, kind, k);
}

static void eid_val(enc_t *e, const taskq_id_t *id)
{
    if (e->err)
        return;
    if (taskq_id_is_zero(id)) {
        efail(e, TASKQ_EINVAL, "all-zero id");
        return;
    }
    echeck(e, msgpack_pack_bin(&e->pk, sizeof id->b));
    if (!e->err)
        echeck(e, msgpack_pack_bin_body(&e->pk, id->b, sizeof id->b));
}

static void eid(enc_t *e, const char *k, const taskq_id_t *id)
{
    ekey(e, k);
    eid_val(e, id);
}

static void evalue(enc_t *e, const char *k, proto_bin_t b, size_t max)
{
    ekey(e, k);
    if (e->err)
        return;
    if ((!b.ptr && b.len) || b.len > max ||
        (b.len && proto_precheck(b.ptr, b.len, TQ_MAX_DEPTH) != TASKQ_OK)) {
        efail(e, TASKQ_EINVAL, k);
        return;
    }
    echeck(e, msgpack_pack_bin(&e->pk, b.len));
    if (!e->err && b.len)
        echeck(e, msgpack_pack_bin_body(&e->pk, b.ptr, b.len));
}

static void edouble(enc_t *e, const char *k, double v)
{
    ekey(e, k);
    if (!e->err)
        echeck(e, msgpack_pack_double(&e->pk, v));
}

/* Packs raw bytes that must be exactly one msgpack value (a map when
 * want_map) nested one level below the body: nesting <= TQ_MAX_DEPTH - 1.
 * Empty: {} when want_map, else nil. */
static void eraw_value(enc_t *e, const char *k, proto_bin_t b, bool want_map)
{
    ekey(e, k);
    if (e->err)
        return;
    if (b.len == 0) {
        echeck(e, want_map ? msgpack_pack_map(&e->pk, 0) : msgpack_pack_nil(&e->pk));
        return;
    }
    if (!b.ptr || b.len > TQ_MAX_BODY ||
        proto_precheck(b.ptr, b.len, TQ_MAX_DEPTH - 1) != TASKQ_OK) {
        efail(e, TASKQ_EINVAL, k);
        return;
    }
    uint8_t t = b.ptr[0];
    if (want_map && !((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf)) {
        efail(e, TASKQ_EINVAL, k);
        return;
    }
    echeck(e, e->pk.callback(e->pk.data, (const char *)b.ptr, b.len));
}

static bool factor_ok(double f)
{
    return f == 0 || (f >= 1 && f <= 1000); /* false for NaN */
}

/* Checks a retry policy for encoding (max_attempts only when with_max). */
static bool policy_ok(const proto_retry_policy_t *p, bool with_max)
{
    if (with_max && p->max_attempts > TQ_ATTEMPTS_MAX)
        return false;
    if (p->backoff_base_ms < 0 || p->backoff_base_ms > TQ_BACKOFF_MS_MAX ||
        p->backoff_max_ms < 0 || p->backoff_max_ms > TQ_BACKOFF_MS_MAX)
        return false;
    if (!factor_ok(p->backoff_factor) || p->jitter < -1 || p->jitter > PROTO_JITTER_NONE)
        return false;
    return true;
}

/* How many keys epolicy() writes. */
static size_t policy_nkeys(const proto_retry_policy_t *p, bool with_max)
{
    return (size_t)(with_max && p->max_attempts != 0) + (p->backoff_base_ms != 0) +
           (p->backoff_factor != 0) + (p->backoff_max_ms != 0) + (p->jitter >= 0) +
           (p->retry_on.len != 0) + (p->no_retry_on.len != 0);
}

/* The policy keys that are given (non-zero), in this order. */
static void epolicy(enc_t *e, const proto_retry_policy_t *p, bool with_max)
{
    if (!policy_ok(p, with_max))
        efail(e, TASKQ_EINVAL, "retry policy");
    if (with_max && p->max_attempts)
        eu64(e, "max_attempts", p->max_attempts);
    if (p->backoff_base_ms)
        ei64(e, "backoff_base_ms", p->backoff_base_ms);
    if (p->backoff_factor != 0)
        edouble(e, "backoff_factor", p->backoff_factor);
    if (p->backoff_max_ms)
        ei64(e, "backoff_max_ms", p->backoff_max_ms);
    if (p->jitter >= 0 && !e->err)
        estr(e, "jitter", proto_str(g_jitter_names[p->jitter]), 16, STR_ANY);
    if (p->retry_on.len)
        estr(e, "retry_on", p->retry_on, TQ_PATTERNS_MAX, STR_PATTERNS);
    if (p->no_retry_on.len)
        estr(e, "no_retry_on", p->no_retry_on, TQ_PATTERNS_MAX, STR_PATTERNS);
}

static void eleases(enc_t *e, const proto_lease_t *ls, uint32_t n)
{
    ekey(e, "leases");
    if (n > TQ_LEASES_MAX || (n && !ls))
        efail(e, TASKQ_EINVAL, "leases");
    earray(e, n);
    for (uint32_t i = 0; i < n && !e->err; i++) {
        earray(e, 2);
        eid_val(e, &ls[i].id);
        if (!e->err)
            echeck(e, msgpack_pack_uint32(&e->pk, ls[i].attempt));
    }
}

static void echildren(enc_t *e, const proto_child_t *cs, uint32_t n)
{
    ekey(e, "children");
    if (n > TQ_SLOTS_MAX || (n && !cs))
        efail(e, TASKQ_EINVAL, "children");
    earray(e, n);
    for (uint32_t i = 0; i < n && !e->err; i++) {
        const proto_child_t *c = &cs[i];
        emap(e, 8);
        ei64(e, "pid", c->pid);
        estr(e, "state", c->state, TQ_STATE_MAX, STR_ANY);
        ekey(e, "task_id");
        if (c->has_task)
            eid_val(e, &c->task_id);
        else if (!e->err)
            echeck(e, msgpack_pack_nil(&e->pk));
        estr(e, "task_name", c->task_name, TQ_NAME_MAX, STR_NAME_OR_EMPTY);
        if (c->running_ms < 0)
            efail(e, TASKQ_EINVAL, "running_ms");
        ei64(e, "running_ms", c->running_ms);
        eu64(e, "done", c->done);
        eu64(e, "failed", c->failed);
        eu64(e, "rss_kb", c->rss_kb);
    }
}

/* An id, or nil for the zero id (record links, SUBMIT_ACK holders). */
static void eid_or_nil_val(enc_t *e, const taskq_id_t *id)
{
    if (taskq_id_is_zero(id)) {
        if (!e->err)
            echeck(e, msgpack_pack_nil(&e->pk));
    } else {
        eid_val(e, id);
    }
}

/* A full task record map. The lifecycle keys are written only when set, so
 * a record without them is encoded as before they existed. */
static void erec_map(enc_t *e, const proto_task_rec_t *t)
{
    if (t->state < 0 || t->state >= TASKQ_NSTATES)
        efail(e, TASKQ_EINVAL, "state");
    if (t->submitted_at < 0 || t->started_at < 0 || t->finished_at < 0 || t->due_at < 0 ||
        t->expires_at < 0)
        efail(e, TASKQ_EINVAL, "timestamps");
    if (t->priority < 0 || t->priority > TQ_PRIORITY_MAX)
        efail(e, TASKQ_EINVAL, "priority");
    bool wgroup = !taskq_id_is_zero(&t->group_id), wparent = !taskq_id_is_zero(&t->parent_id);
    bool wof = !taskq_id_is_zero(&t->rerun_of), wby = !taskq_id_is_zero(&t->rerun_by);
    emap(e, (t->has_result ? 20u : 19u) + wgroup + wparent + wof + wby +
                (t->unique_key.len != 0));
    eid(e, "id", &t->id);
    estr(e, "name", t->name, TQ_NAME_MAX, STR_NAME_OR_EMPTY);
    estr(e, "state", proto_str(taskq_state_name(t->state)), 16, STR_ANY);
    eu64(e, "attempts", t->attempts);
    eu64(e, "max_attempts", t->max_attempts);
    estr(e, "worker", t->worker, TQ_NODE_MAX, STR_NAME_OR_EMPTY);
    ei64(e, "child_pid", t->child_pid);
    ei64(e, "submitted_at", t->submitted_at);
    ei64(e, "started_at", t->started_at);
    ei64(e, "finished_at", t->finished_at);
    ekey(e, "progress");
    earray(e, 3);
    if (!e->err)
        echeck(e, msgpack_pack_uint64(&e->pk, t->progress_current));
    if (!e->err)
        echeck(e, msgpack_pack_uint64(&e->pk, t->progress_total));
    estr_val(e, t->progress_message, TQ_PROGRESS_MSG_MAX, STR_ANY, "progress message");
    if (t->has_result)
        evalue(e, "result", t->result, TQ_RESULT_MAX);
    estr(e, "error", t->error, TQ_ERROR_MAX, STR_ANY);
    estr(e, "queue", t->queue, TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
    eu64(e, "priority", (uint64_t)(t->priority < 0 ? 0 : t->priority));
    eu64(e, "failures", t->failures);
    estr(e, "code", t->code, TQ_CODE_MAX, STR_CODE_OR_EMPTY);
    ei64(e, "due_at", t->due_at);
    ei64(e, "expires_at", t->expires_at);
    estr(e, "schedule", t->schedule, TQ_SCHED_NAME_MAX, STR_NAME_OR_EMPTY);
    if (wgroup)
        eid(e, "group_id", &t->group_id);
    if (wparent)
        eid(e, "parent_id", &t->parent_id);
    if (wof)
        eid(e, "rerun_of", &t->rerun_of);
    if (wby)
        eid(e, "rerun_by", &t->rerun_by);
    if (t->unique_key.len)
        estr(e, "unique_key", t->unique_key, TQ_UNIQUE_KEY_MAX, STR_PRINTABLE);
}

/* The "task" key of STATUS_REPLY / RESULT: the record, or only its id. */
static void erec(enc_t *e, const proto_task_rec_t *t, bool full)
{
    ekey(e, "task");
    if (!full) {
        emap(e, 1);
        eid(e, "id", &t->id);
        return;
    }
    erec_map(e, t);
}

taskq_err_t proto_pack_task_rec(msgpack_packer *pk, const proto_task_rec_t *rec)
{
    if (!pk)
        return TASKQ_EINVAL;
    /* into a buffer of its own first: a record that breaks a limit must not
     * leave half a map in the caller's container */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    enc_t e = {.err = TASKQ_OK};
    msgpack_packer_init(&e.pk, &sb, msgpack_sbuffer_write);
    if (rec)
        erec_map(&e, rec);
    else
        efail(&e, TASKQ_EINVAL, "NULL record");
    taskq_err_t err = e.err;
    if (!err) {
        if (pk->callback(pk->data, sb.data, sb.size) != 0)
            err = TASKQ_ENOMEM;
    } else {
        tlog_warn("task record not encodable (%s): packed as nil", taskq_err_name(err));
        msgpack_pack_nil(pk);
    }
    msgpack_sbuffer_destroy(&sb);
    return err;
}

/* One task map of a SUBMIT: id, name, args, then each optional key that
 * is given, in the order of docs/protocol.md section 4.1. */
static void etask(enc_t *e, const proto_task_spec_t *t)
{
    if (t->time_limit_ms < 0 || t->max_attempts > TQ_ATTEMPTS_MAX)
        efail(e, TASKQ_EINVAL, "time_limit_ms/max_attempts");
    if (t->priority < -1 || t->priority > TQ_PRIORITY_MAX || t->countdown_ms < 0 ||
        t->countdown_ms > TQ_ETA_MAX_MS || t->eta_at < 0 || t->expires_in_ms < 0 ||
        t->expires_in_ms > TQ_ETA_MAX_MS || t->expires_at < 0)
        efail(e, TASKQ_EINVAL, "priority/countdown_ms/eta_at/expires_*");
    if (t->unique_until < 0 || t->unique_until > 1 || t->unique_for_ms < 0 ||
        t->unique_for_ms > TQ_TTL_MAX_MS || t->result_ttl_ms < 0 ||
        t->result_ttl_ms > TQ_TTL_MAX_MS)
        efail(e, TASKQ_EINVAL, "unique_until/unique_for_ms/result_ttl_ms");
    bool windex = t->has_group || t->index != 0;
    emap(e, 3u + (t->time_limit_ms != 0) + (t->max_attempts != 0) + (t->queue.len != 0) +
                (t->priority >= 0) + (t->countdown_ms != 0) + (t->eta_at != 0) +
                (t->expires_in_ms != 0) + (t->expires_at != 0) +
                policy_nkeys(&t->policy, false) + t->has_parent + t->has_group + windex +
                t->has_callback_of + t->immutable + (t->unique_key.len != 0) + t->unique +
                (t->unique_until != 0) + (t->unique_for_ms != 0) + (t->result_ttl_ms != 0));
    eid(e, "id", &t->id);
    estr(e, "name", t->name, TQ_NAME_MAX, STR_NAME);
    evalue(e, "args", t->args, TQ_ARGS_MAX);
    if (t->time_limit_ms)
        ei64(e, "time_limit_ms", t->time_limit_ms);
    if (t->max_attempts)
        eu64(e, "max_attempts", t->max_attempts);
    if (t->queue.len)
        estr(e, "queue", t->queue, TQ_QUEUE_MAX, STR_QUEUE);
    if (t->priority >= 0)
        eu64(e, "priority", (uint64_t)t->priority);
    if (t->countdown_ms)
        ei64(e, "countdown_ms", t->countdown_ms);
    if (t->eta_at)
        ei64(e, "eta_at", t->eta_at);
    if (t->expires_in_ms)
        ei64(e, "expires_in_ms", t->expires_in_ms);
    if (t->expires_at)
        ei64(e, "expires_at", t->expires_at);
    epolicy(e, &t->policy, false);
    if (t->has_parent)
        eid(e, "parent", &t->parent);
    if (t->has_group)
        eid(e, "group", &t->group);
    if (windex)
        eu64(e, "index", t->index);
    if (t->has_callback_of)
        eid(e, "callback_of", &t->callback_of);
    if (t->immutable)
        ebool(e, "immutable", true);
    if (t->unique_key.len)
        estr(e, "unique_key", t->unique_key, TQ_UNIQUE_KEY_MAX, STR_PRINTABLE1);
    if (t->unique)
        ebool(e, "unique", true);
    if (t->unique_until && !e->err)
        estr(e, "unique_until", proto_str(g_until_names[t->unique_until]), 16, STR_ANY);
    if (t->unique_for_ms)
        ei64(e, "unique_for_ms", t->unique_for_ms);
    if (t->result_ttl_ms)
        ei64(e, "result_ttl_ms", t->result_ttl_ms);
}

static void ebody(enc_t *e, const proto_msg_t *msg)
{
    switch (msg->type) {
    case PROTO_SUBMIT: {
        uint32_t n = msg->u.submit.ntasks, ng = msg->u.submit.ngroups;
        const proto_task_spec_t *ts = msg->u.submit.tasks;
        bool graph = ng != 0;
        for (uint32_t i = 0; i < n && n <= TQ_GRAPH_MAX && ts && !graph; i++)
            graph = ts[i].has_parent || ts[i].has_group || ts[i].has_callback_of;
        if (n > (graph ? TQ_GRAPH_MAX : TQ_BATCH_MAX) || (n && !ts))
            efail(e, TASKQ_EINVAL, "tasks");
        if (ng > TQ_GROUPS_MAX || (ng && !msg->u.submit.groups))
            efail(e, TASKQ_EINVAL, "groups");
        emap(e, 2u + (ng != 0));
        eu64(e, "req", msg->u.submit.req);
        ekey(e, "tasks");
        earray(e, n);
        for (uint32_t i = 0; i < n && !e->err; i++)
            etask(e, &ts[i]);
        if (ng) {
            ekey(e, "groups");
            earray(e, ng);
            for (uint32_t i = 0; i < ng && !e->err; i++) {
                const proto_group_t *g = &msg->u.submit.groups[i];
                if (g->size > TQ_GRAPH_MAX || g->on_fail < 0 || g->on_fail > 1)
                    efail(e, TASKQ_EINVAL, "group size/on_fail");
                emap(e, 3);
                eid(e, "id", &g->id);
                eu64(e, "size", g->size);
                if (!e->err)
                    estr(e, "on_fail", proto_str(g_on_fail_names[g->on_fail]), 16, STR_ANY);
            }
        }
        break;
    }
    case PROTO_SUBMIT_ACK: {
        uint32_t n = msg->u.submit_ack.ncodes;
        if (n > TQ_GRAPH_MAX || (n && !msg->u.submit_ack.codes))
            efail(e, TASKQ_EINVAL, "codes");
        uint32_t nq = msg->u.submit_ack.nqueues;
        if ((nq != 0 && nq != n) || (nq && !msg->u.submit_ack.queues))
            efail(e, TASKQ_EINVAL, "queues");
        /* holders: written only when some task was a duplicate */
        uint32_t nh = msg->u.submit_ack.nholders;
        const taskq_id_t *hs = msg->u.submit_ack.holders;
        if ((nh != 0 && nh != n) || (nh && !hs))
            efail(e, TASKQ_EINVAL, "holders");
        bool wh = false;
        for (uint32_t i = 0; i < nh && hs && !wh; i++)
            wh = !taskq_id_is_zero(&hs[i]);
        emap(e, 2u + (nq != 0) + msg->u.submit_ack.soft + wh);
        eu64(e, "req", msg->u.submit_ack.req);
        ekey(e, "codes");
        earray(e, n);
        for (uint32_t i = 0; i < n && !e->err; i++)
            echeck(e, msgpack_pack_uint32(&e->pk, msg->u.submit_ack.codes[i]));
        if (nq) {
            ekey(e, "queues");
            earray(e, nq);
            for (uint32_t i = 0; i < nq && !e->err; i++)
                estr_val(e, msg->u.submit_ack.queues[i], TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY,
                         "queues");
        }
        if (msg->u.submit_ack.soft)
            ebool(e, "soft", true);
        if (wh) {
            ekey(e, "holders");
            earray(e, nh);
            for (uint32_t i = 0; i < nh && !e->err; i++)
                eid_or_nil_val(e, &hs[i]);
        }
        break;
    }
    case PROTO_STATUS:
        emap(e, 2);
        eu64(e, "req", msg->u.status.req);
        eid(e, "id", &msg->u.status.id);
        break;
    case PROTO_STATUS_REPLY:
        emap(e, 2);
        eu64(e, "req", msg->u.status_reply.req);
        erec(e, &msg->u.status_reply.task, true);
        break;
    case PROTO_WAIT: {
        uint32_t n = msg->u.wait.nids;
        if (n > TQ_WAIT_MAX || (n && !msg->u.wait.ids) || msg->u.wait.timeout_ms < 0)
            efail(e, TASKQ_EINVAL, "ids/timeout_ms");
        emap(e, 3u + msg->u.wait.batch);
        eu64(e, "req", msg->u.wait.req);
        ekey(e, "ids");
        earray(e, n);
        for (uint32_t i = 0; i < n && !e->err; i++)
            eid_val(e, &msg->u.wait.ids[i]);
        ei64(e, "timeout_ms", msg->u.wait.timeout_ms);
        if (msg->u.wait.batch)
            ebool(e, "batch", true);
        break;
    }
    case PROTO_RESULT:
        emap(e, 3);
        eu64(e, "req", msg->u.result.req);
        eu64(e, "code", msg->u.result.code);
        erec(e, &msg->u.result.task, msg->u.result.code == TASKQ_OK);
        break;
    case PROTO_WORKERS:
        emap(e, 1);
        eu64(e, "req", msg->u.workers.req);
        break;
    case PROTO_STATS:
        emap(e, 1);
        eu64(e, "req", msg->u.stats.req);
        break;
    case PROTO_WORKERS_REPLY: {
        uint32_t n = msg->u.workers_reply.nnodes;
        if (n > TQ_MAX_ARRAY || (n && !msg->u.workers_reply.nodes))
            efail(e, TASKQ_EINVAL, "nodes");
        emap(e, 2);
        eu64(e, "req", msg->u.workers_reply.req);
        ekey(e, "nodes");
        earray(e, n);
        for (uint32_t i = 0; i < n && !e->err; i++) {
            const proto_node_t *nd = &msg->u.workers_reply.nodes[i];
            if (nd->slots > TQ_SLOTS_MAX || nd->last_heartbeat < 0)
                efail(e, TASKQ_EINVAL, "slots/last_heartbeat");
            emap(e, 6);
            estr(e, "id", nd->id, TQ_NODE_MAX, STR_NAME);
            estr(e, "host", nd->host, TQ_HOST_MAX, STR_PRINTABLE);
            ei64(e, "pid", nd->pid);
            eu64(e, "slots", nd->slots);
            ei64(e, "last_heartbeat", nd->last_heartbeat);
            echildren(e, nd->children, nd->nchildren);
        }
        break;
    }
    case PROTO_STATS_REPLY: {
        const proto_stats_t *s = &msg->u.stats_reply.stats;
        if (s->uptime_ms < 0)
            efail(e, TASKQ_EINVAL, "uptime_ms");
        emap(e, 2);
        eu64(e, "req", msg->u.stats_reply.req);
        ekey(e, "stats");
        emap(e, 10u + (s->purged != 0));
        eu64(e, "queued", s->queued);
        eu64(e, "running", s->running);
        eu64(e, "succeeded", s->succeeded);
        eu64(e, "failed", s->failed);
        eu64(e, "total", s->total);
        eu64(e, "submitted", s->submitted);
        eu64(e, "nodes", s->nodes);
        eu64(e, "children", s->children);
        ei64(e, "uptime_ms", s->uptime_ms);
        estr(e, "broker", s->broker, TQ_NODE_MAX, STR_PRINTABLE);
        if (s->purged)
            eu64(e, "purged", s->purged);
        break;
    }
    case PROTO_HELLO: {
        uint32_t nq = msg->u.hello.nqueues;
        if (msg->u.hello.slots > TQ_SLOTS_MAX)
            efail(e, TASKQ_EINVAL, "slots");
        if (nq > TQ_QUEUES_MAX ||
            (nq && (!msg->u.hello.queue_names || !msg->u.hello.queue_weights)))
            efail(e, TASKQ_EINVAL, "queues");
        for (uint32_t i = 0; i < nq && !e->err; i++) {
            const proto_str_t *qn = msg->u.hello.queue_names;
            uint32_t w = msg->u.hello.queue_weights[i];
            if (w == 0 || w > TQ_WEIGHT_MAX)
                efail(e, TASKQ_EINVAL, "queue weight");
            for (uint32_t j = 0; j < i; j++)
                if (qn[j].len == qn[i].len && qn[i].ptr && qn[j].ptr &&
                    memcmp(qn[j].ptr, qn[i].ptr, qn[i].len) == 0)
                    efail(e, TASKQ_EINVAL, "duplicate queue");
        }
        emap(e, 5u + (nq != 0) + msg->u.hello.strict + msg->u.hello.batch);
        estr(e, "node", msg->u.hello.node, TQ_NODE_MAX, STR_NAME);
        estr(e, "host", msg->u.hello.host, TQ_HOST_MAX, STR_PRINTABLE);
        ei64(e, "pid", msg->u.hello.pid);
        eu64(e, "slots", msg->u.hello.slots);
        eleases(e, msg->u.hello.leases, msg->u.hello.nleases);
        if (nq) {
            ekey(e, "queues");
            earray(e, nq);
            for (uint32_t i = 0; i < nq && !e->err; i++) {
                earray(e, 2);
                estr_val(e, msg->u.hello.queue_names[i], TQ_QUEUE_MAX, STR_QUEUE, "queues");
                if (!e->err)
                    echeck(e, msgpack_pack_uint32(&e->pk, msg->u.hello.queue_weights[i]));
            }
        }
        if (msg->u.hello.strict)
            ebool(e, "strict", true);
        if (msg->u.hello.batch)
            ebool(e, "batch", true);
        break;
    }
    case PROTO_WELCOME:
        if (msg->u.welcome.heartbeat_ms < 1 || msg->u.welcome.heartbeat_ms > INT32_MAX ||
            msg->u.welcome.liveness == 0)
            efail(e, TASKQ_EINVAL, "heartbeat_ms/liveness");
        emap(e, 3u + msg->u.welcome.batch);
        estr(e, "broker", msg->u.welcome.broker, TQ_NODE_MAX, STR_PRINTABLE);
        ei64(e, "heartbeat_ms", msg->u.welcome.heartbeat_ms);
        eu64(e, "liveness", msg->u.welcome.liveness);
        if (msg->u.welcome.batch)
            ebool(e, "batch", true);
        break;
    case PROTO_READY:
        if (msg->u.ready.credit > TQ_CREDIT_MAX)
            efail(e, TASKQ_EINVAL, "credit");
        emap(e, 1);
        eu64(e, "credit", msg->u.ready.credit);
        break;
    case PROTO_TASK:
        if (msg->u.task.time_limit_ms < 0)
            efail(e, TASKQ_EINVAL, "time_limit_ms");
        emap(e, 5);
        eid(e, "id", &msg->u.task.id);
        eu64(e, "attempt", msg->u.task.attempt);
        estr(e, "name", msg->u.task.name, TQ_NAME_MAX, STR_NAME);
        evalue(e, "args", msg->u.task.args, TQ_TASK_ARGS_MAX);
        ei64(e, "time_limit_ms", msg->u.task.time_limit_ms);
        break;
    case PROTO_PROGRESS:
        emap(e, 5);
        eid(e, "id", &msg->u.progress.id);
        eu64(e, "attempt", msg->u.progress.attempt);
        eu64(e, "current", msg->u.progress.current);
        eu64(e, "total", msg->u.progress.total);
        estr(e, "message", msg->u.progress.message, TQ_PROGRESS_MSG_MAX, STR_ANY);
        break;
    case PROTO_DONE: {
        if (msg->u.done.started_at < 0)
            efail(e, TASKQ_EINVAL, "started_at");
        /* the failure fields (only when !ok), each written only when given;
         * "code" not when it is the default a decoder fills in */
        const proto_retry_policy_t *pol = &msg->u.done.policy;
        bool f = !msg->u.done.ok;
        proto_str_t code = msg->u.done.code;
        bool wcode = f && code.len &&
                     !proto_str_eq(code, msg->u.done.retry ? CODE_CRASH : CODE_ERROR);
        bool wperm = f && msg->u.done.permanent;
        bool wdelay = f && msg->u.done.retry_delay_ms >= 0;
        bool wrate = f && msg->u.done.rate_limited_ms != 0;
        size_t npol = f ? policy_nkeys(pol, true) : 0;
        if (f && (msg->u.done.retry_delay_ms < -1 ||
                  msg->u.done.retry_delay_ms > TQ_BACKOFF_MS_MAX ||
                  msg->u.done.rate_limited_ms < 0 ||
                  msg->u.done.rate_limited_ms > TQ_BACKOFF_MS_MAX))
            efail(e, TASKQ_EINVAL, "retry_delay_ms/rate_limited_ms");
        emap(e, (msg->u.done.ok ? 6u : 7u) + wcode + wperm + wdelay + wrate + (npol != 0));
        eid(e, "id", &msg->u.done.id);
        eu64(e, "attempt", msg->u.done.attempt);
        ebool(e, "ok", msg->u.done.ok);
        if (msg->u.done.ok) {
            evalue(e, "result", msg->u.done.result, TQ_RESULT_MAX);
        } else {
            estr(e, "error", msg->u.done.error, TQ_ERROR_MAX, STR_ANY);
            ebool(e, "retry", msg->u.done.retry);
        }
        ei64(e, "child_pid", msg->u.done.child_pid);
        ei64(e, "started_at", msg->u.done.started_at);
        if (wcode)
            estr(e, "code", code, TQ_CODE_MAX, STR_CODE);
        if (wperm)
            ebool(e, "permanent", true);
        if (wdelay)
            ei64(e, "retry_delay_ms", msg->u.done.retry_delay_ms);
        if (wrate)
            ei64(e, "rate_limited_ms", msg->u.done.rate_limited_ms);
        if (npol) {
            ekey(e, "policy");
            emap(e, npol);
            epolicy(e, pol, true);
        } else if (f && !policy_ok(pol, true)) {
            efail(e, TASKQ_EINVAL, "policy");
        }
        break;
    }
    case PROTO_DONE_ACK:
        emap(e, 3);
        eid(e, "id", &msg->u.done_ack.id);
        eu64(e, "attempt", msg->u.done_ack.attempt);
        eu64(e, "code", msg->u.done_ack.code);
        break;
    case PROTO_CANCEL:
        if (msg->u.cancel.grace_ms < 0)
            efail(e, TASKQ_EINVAL, "grace_ms");
        emap(e, 4);
        eid(e, "id", &msg->u.cancel.id);
        eu64(e, "attempt", msg->u.cancel.attempt);
        ebool(e, "terminate", msg->u.cancel.terminate);
        ei64(e, "grace_ms", msg->u.cancel.grace_ms);
        break;
    case PROTO_HEARTBEAT:
        if (msg->u.heartbeat.nchildren == 0 && msg->u.heartbeat.nleases == 0) {
            emap(e, 0); /* the broker's heartbeat (or a worker with nothing to list) */
            break;
        }
        emap(e, 2);
        echildren(e, msg->u.heartbeat.children, msg->u.heartbeat.nchildren);
        eleases(e, msg->u.heartbeat.leases, msg->u.heartbeat.nleases);
        break;
    case PROTO_BYE:
        emap(e, 0);
        break;
    case PROTO_ERROR: {
        /* EBUSY details: all four or none */
        bool busy = msg->u.error.code == TASKQ_EBUSY &&
                    (msg->u.error.queue.len || msg->u.error.depth || msg->u.error.limit ||
                     msg->u.error.retry_after_ms);
        if (busy && msg->u.error.retry_after_ms < 0)
            efail(e, TASKQ_EINVAL, "retry_after_ms");
        emap(e, busy ? 7 : 3);
        eu64(e, "req", msg->u.error.req);
        eu64(e, "code", msg->u.error.code);
        estr(e, "message", msg->u.error.message, TQ_MESSAGE_MAX, STR_ANY);
        if (busy) {
            estr(e, "queue", msg->u.error.queue, TQ_QUEUE_MAX, STR_QUEUE_OR_EMPTY);
            eu64(e, "depth", msg->u.error.depth);
            eu64(e, "limit", msg->u.error.limit);
            ei64(e, "retry_after_ms", msg->u.error.retry_after_ms);
        }
        break;
    }
    case PROTO_ADMIN:
        emap(e, 3);
        eu64(e, "req", msg->u.admin.req);
        estr(e, "op", msg->u.admin.op, ADMIN_OP_MAX, STR_NAME);
        eraw_value(e, "params", msg->u.admin.params, true);
        break;
    case PROTO_ADMIN_REPLY:
        emap(e, 2);
        eu64(e, "req", msg->u.admin_reply.req);
        eraw_value(e, "data", msg->u.admin_reply.data, false);
        break;
    default:
        efail(e, TASKQ_EINVAL, "unknown message type");
        break;
    }
}

taskq_err_t proto_encode(const proto_msg_t *msg, msgpack_sbuffer *buf)
{
    if (!msg || !buf)
        return TASKQ_EINVAL;
    size_t start = buf->size;
    enc_t e = {.err = TASKQ_OK};
    msgpack_packer_init(&e.pk, buf, msgpack_sbuffer_write);
    ebody(&e, msg);
    if (!e.err && buf->size - start > TQ_MAX_BODY)
        efail(&e, TASKQ_EINVAL, "body larger than TQ_MAX_BODY");
    /* raw values spliced in: the whole body must pass the receiver's
     * pre-check (object count, depth) */
    if (!e.err && (msg->type == PROTO_ADMIN || msg->type == PROTO_ADMIN_REPLY) &&
        proto_precheck(buf->data + start, buf->size - start, TQ_MAX_DEPTH) != TASKQ_OK)
        efail(&e, TASKQ_EINVAL, "params/data break a pre-check limit");
    if (e.err) {
        buf->size = start; /* nothing half-written is left behind */
        tlog_debug("cannot encode %s: %s", proto_type_name(msg->type), taskq_err_name(e.err));
    }
    return e.err;
}

/* ---- send / receive --------------------------------------------------- */

static taskq_err_t send_err(int e)
{
    if (e == EAGAIN)
        return TASKQ_EBUSY;
    if (e == EHOSTUNREACH)
        return TASKQ_EUNREACH;
    return TASKQ_ESYS;
}

taskq_err_t proto_send(void *socket, const void *identity, size_t identity_len,
                       const proto_msg_t *msg, bool dontwait)
{
    if (!msg)
        return TASKQ_EINVAL;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    taskq_err_t err = proto_encode(msg, &sb);
    if (!err)
        err = proto_send_body(socket, identity, identity_len, msg->type, sb.data, sb.size,
                              dontwait);
    msgpack_sbuffer_destroy(&sb);
    return err;
}

taskq_err_t proto_send_body(void *socket, const void *identity, size_t identity_len, int type,
                            const void *body, size_t body_len, bool dontwait)
{
    if (!socket || (identity && (identity_len == 0 || identity_len > TQ_MAX_IDENTITY)))
        return TASKQ_EINVAL;
    const int flags = dontwait ? ZMQ_DONTWAIT : 0;
    const uint8_t tbyte = (uint8_t)type;
    /*
     * Only the first frame can be refused. zmq_send(3): "peers shall receive
     * either all message parts of a message or none at all";
     * zmq_setsockopt(3), ZMQ_ROUTER_MANDATORY: EHOSTUNREACH "if the message
     * cannot be routed", EAGAIN "if the SNDHWM is reached and ZMQ_DONTWAIT was
     * used". libzmq decides both when the first part arrives (the ROUTER
     * looks the identity up and checks the pipe's HWM then; the pipe counts
     * whole messages against the HWM, router.cpp/pipe.cpp), and it accepts
     * the remaining parts of a started message without a new check. So a
     * failure on frame 0 leaves nothing queued, and a failure on a later frame
     * (ETERM, a bug) is reported as ESYS with the message dropped by libzmq.
     */
    const void *parts[4];
    size_t lens[4];
    int n = 0;
    if (identity) {
        parts[n] = identity;
        lens[n++] = identity_len;
    }
    parts[n] = PROTO_SIGNATURE;
    lens[n++] = PROTO_SIGNATURE_LEN;
    parts[n] = &tbyte;
    lens[n++] = 1;
    parts[n] = body ? body : "";
    lens[n++] = body ? body_len : 0;
    taskq_err_t err = TASKQ_OK;
    for (int i = 0; i < n; i++) {
        int rc = zmq_send(socket, parts[i], lens[i], flags | (i < n - 1 ? ZMQ_SNDMORE : 0));
        if (rc < 0) {
            int e = errno;
            err = send_err(e);
            if (i > 0 || err == TASKQ_ESYS)
                tlog_warn("zmq_send %s frame %d: %s", proto_type_name(type), i,
                          zmq_strerror(e));
            if (i > 0 && err != TASKQ_ESYS)
                err = TASKQ_ESYS;
            break;
        }
    }
    return err;
}

void proto_frames_clear(proto_frames_t *f)
{
    if (!f)
        return;
    free(f->body);
    memset(f, 0, sizeof *f);
    f->type = -1;
}

taskq_err_t proto_recv(void *socket, bool with_identity, bool dontwait, proto_frames_t *f)
{
    if (!socket || !f)
        return TASKQ_EINVAL;
    memset(f, 0, sizeof *f);
    f->type = -1;
    taskq_err_t err = TASKQ_OK;
    int idx = 0; /* frame index in the message */
    const int base = with_identity ? 1 : 0;
    bool more = true;

    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        /* only the first frame may be absent: the rest of a multipart
         * message arrives atomically with it */
        int rc = zmq_msg_recv(&m, socket, idx == 0 && dontwait ? ZMQ_DONTWAIT : 0);
        if (rc < 0) {
            int e = errno;
            zmq_msg_close(&m);
            if (idx == 0 && e == EAGAIN)
                return TASKQ_ETIMEDOUT;
            if (idx == 0 && e == EINTR)
                return TASKQ_ESYS;
            tlog_warn("zmq_msg_recv frame %d: %s", idx, zmq_strerror(e));
            free(f->body);
            f->body = NULL;
            f->body_len = 0;
            return TASKQ_ESYS;
        }
        more = zmq_msg_more(&m) != 0;
        const uint8_t *data = zmq_msg_data(&m);
        size_t len = zmq_msg_size(&m);
        int rel = idx - base; /* 0 signature, 1 type, 2 body */

        if (idx >= TQ_MAX_FRAMES) {
            if (!err)
                tlog_warn("message with more than %d frames", TQ_MAX_FRAMES);
            if (!err)
                err = TASKQ_EPROTO;
        } else if (rel < 0) {
            if (len > TQ_MAX_IDENTITY) {
                if (!err)
                    err = TASKQ_EPROTO;
            } else {
                memcpy(f->identity, data, len);
                f->identity_len = len;
            }
        } else if (rel == 0) {
            taskq_err_t e = proto_check_signature(data, len);
            if (e && !err) {
                tlog_warn("bad signature (%zu bytes): %s", len, taskq_err_name(e));
                err = e;
            }
        } else if (rel == 1) {
            if (len != 1) {
                if (!err) {
                    tlog_warn("type frame of %zu bytes", len);
                    err = TASKQ_EPROTO;
                }
            } else {
                f->type = data[0];
            }
        } else if (rel == 2) {
            if (len > TQ_MAX_BODY) {
                if (!err) {
                    tlog_warn("body of %zu bytes exceeds %u", len, TQ_MAX_BODY);
                    err = TASKQ_ETOOBIG;
                }
            } else if (!err) {
                f->body = malloc(len ? len : 1);
                if (!f->body) {
                    err = TASKQ_ENOMEM;
                } else {
                    if (len)
                        memcpy(f->body, data, len);
                    f->body_len = len;
                }
            }
        }
        /* frames past the body (up to TQ_MAX_FRAMES) are ignored: reserved */
        zmq_msg_close(&m);
        idx++;
    }
    if (!err && idx - base < 3) {
        tlog_warn("message with %d frames", idx);
        err = TASKQ_EPROTO;
    }
    if (err) {
        free(f->body);
        f->body = NULL;
        f->body_len = 0;
    }
    return err;
}

/* ---- BATCH ------------------------------------------------------------ */

/* Big-endian reads for the hand-parsed BATCH framing (no msgpack-c unpack:
 * nothing is allocated on a declared count). */
static bool rd(proto_batch_iter_t *it, size_t n, uint64_t *v)
{
    if (it->len - it->pos < n)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = x << 8 | it->p[it->pos + i];
    it->pos += n;
    *v = x;
    return true;
}

taskq_err_t proto_batch_open(proto_batch_iter_t *it, const void *body, size_t len)
{
    memset(it, 0, sizeof *it);
    if (!body || len == 0)
        return TASKQ_EPROTO;
    if (len > TQ_MAX_BODY)
        return TASKQ_ETOOBIG;
    it->p = body;
    it->len = len;
    uint64_t tag, n;
    if (!rd(it, 1, &tag))
        return TASKQ_EPROTO;
    if ((tag & 0xf0) == 0x90)
        n = tag & 0x0f;
    else if (tag == 0xdc) {
        if (!rd(it, 2, &n))
            return TASKQ_EPROTO;
    } else if (tag == 0xdd) {
        if (!rd(it, 4, &n))
            return TASKQ_EPROTO;
    } else {
        return TASKQ_EPROTO;
    }
    if (n == 0)
        return TASKQ_EPROTO;
    if (n > TQ_BATCH_ITEMS_MAX)
        return TASKQ_ETOOBIG;
    /* each item takes at least 4 bytes: [type, bin8 len 0] */
    if (n * 4 > len - it->pos)
        return TASKQ_EPROTO;
    it->left = (uint32_t)n;
    return TASKQ_OK;
}

taskq_err_t proto_batch_next(proto_batch_iter_t *it, proto_item_t *item)
{
    if (!it->p)
        return TASKQ_EPROTO;
    if (it->left == 0)
        return it->pos == it->len ? TASKQ_ENOTFOUND : TASKQ_EPROTO; /* trailing bytes */
    uint64_t tag, type, n;
    if (!rd(it, 1, &tag) || tag != 0x92) /* fixarray of 2 */
        return TASKQ_EPROTO;
    if (!rd(it, 1, &tag))
        return TASKQ_EPROTO;
    if (tag <= 0x7f)
        type = tag;
    else if (tag == 0xcc) {
        if (!rd(it, 1, &type))
            return TASKQ_EPROTO;
    } else {
        return TASKQ_EPROTO;
    }
    if (type == PROTO_BATCH || type == 0)
        return TASKQ_EPROTO;
    if (!rd(it, 1, &tag))
        return TASKQ_EPROTO;
    size_t w = tag == 0xc4 ? 1 : tag == 0xc5 ? 2 : tag == 0xc6 ? 4 : 0;
    if (w == 0 || !rd(it, w, &n) || n > it->len - it->pos)
        return TASKQ_EPROTO;
    item->type = (int)type;
    item->body = it->p + it->pos;
    item->len = (uint32_t)n;
    it->pos += n;
    it->left--;
    return TASKQ_OK;
}

void proto_batch_begin(msgpack_sbuffer *buf)
{
    static const char array32[5] = {(char)0xdd, 0, 0, 0, 0};
    msgpack_sbuffer_write(buf, array32, sizeof array32);
}

void proto_batch_end(msgpack_sbuffer *buf, uint32_t nitems)
{
    uint8_t *h = (uint8_t *)buf->data;
    h[1] = (uint8_t)(nitems >> 24);
    h[2] = (uint8_t)(nitems >> 16);
    h[3] = (uint8_t)(nitems >> 8);
    h[4] = (uint8_t)nitems;
}

void proto_batch_add(msgpack_sbuffer *buf, int type, const void *body, size_t len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint8(&pk, (uint8_t)type);
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, body, len);
}

size_t proto_batch_item_overhead(size_t len)
{
    (void)len;
    return 1 + 2 + 5; /* fixarray, uint8 (<= 2 bytes), bin32 header (<= 5) */
}
