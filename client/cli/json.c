/* json.c - JSON <-> msgpack through jansson; see json.h for the mapping. */
#include "json.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

taskq_err_t json_to_msgpack(const json_t *v, msgpack_packer *pk)
{
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_NULL: rc = msgpack_pack_nil(pk); break;
    case JSON_TRUE: rc = msgpack_pack_true(pk); break;
    case JSON_FALSE: rc = msgpack_pack_false(pk); break;
    case JSON_INTEGER: rc = msgpack_pack_int64(pk, (int64_t)json_integer_value(v)); break;
    case JSON_REAL: rc = msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_STRING: {
        size_t n = json_string_length(v);
        rc = msgpack_pack_str(pk, n);
        if (!rc)
            rc = msgpack_pack_str_body(pk, json_string_value(v), n);
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        rc = msgpack_pack_array(pk, n);
        for (size_t i = 0; !rc && i < n; i++)
            if (json_to_msgpack(json_array_get(v, i), pk) != TASKQ_OK)
                rc = -1;
        break;
    }
    case JSON_OBJECT: {
        rc = msgpack_pack_map(pk, json_object_size(v));
        const char *key;
        size_t klen;
        json_t *val;
        /* json_t is const here, but the iteration macro wants non-const */
        json_t *obj = (json_t *)v;
        json_object_keylen_foreach(obj, key, klen, val)
        {
            if (rc)
                break;
            rc = msgpack_pack_str(pk, klen);
            if (!rc)
                rc = msgpack_pack_str_body(pk, key, klen);
            if (!rc && json_to_msgpack(val, pk) != TASKQ_OK)
                rc = -1;
        }
        break;
    }
    }
    return rc ? TASKQ_ENOMEM : TASKQ_OK;
}

taskq_err_t json_text_to_msgpack(const char *text, void **out, size_t *out_len, char *errbuf,
                                 size_t errsz)
{
    json_error_t jerr;
    *out = NULL;
    *out_len = 0;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        if (errbuf && errsz)
            snprintf(errbuf, errsz, "invalid JSON at line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return TASKQ_EINVAL;
    }
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    taskq_err_t e = json_to_msgpack(v, &pk);
    json_decref(v);
    if (e != TASKQ_OK) {
        msgpack_sbuffer_destroy(&sb);
        return e;
    }
    *out_len = sb.size; /* release() zeroes sb.size */
    *out = msgpack_sbuffer_release(&sb);
    return TASKQ_OK;
}

char *json_base64(const void *data, size_t len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = data;
    char *s = malloc(4 * ((len + 2) / 3) + 1);
    if (!s)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        s[o++] = tbl[x >> 18];
        s[o++] = tbl[(x >> 12) & 63];
        s[o++] = tbl[(x >> 6) & 63];
        s[o++] = tbl[x & 63];
    }
    if (i < len) {
        uint32_t x = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0);
        s[o++] = tbl[x >> 18];
        s[o++] = tbl[(x >> 12) & 63];
        s[o++] = i + 1 < len ? tbl[(x >> 6) & 63] : '=';
        s[o++] = '=';
    }
    s[o] = '\0';
    return s;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp;
    if ((p[0] & 0xE0) == 0xC0) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if ((p[0] & 0xF0) == 0xE0) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if ((p[0] & 0xF8) == 0xF0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    /* no overlong forms, no surrogates, nothing past U+10FFFF */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

/* A JSON string from arbitrary bytes: bad UTF-8 bytes become U+FFFD. */
static json_t *string_from_bytes(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *buf = malloc(n * 3 + 1);
    if (!buf)
        return NULL;
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(p + i, n - i);
        if (k) {
            memcpy(buf + o, p + i, k);
            o += k;
            i += k;
        } else {
            memcpy(buf + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(buf, o);
    free(buf);
    return j;
}

/* A map key as a NUL-terminated string (malloc'd), NULL on out of memory. */
static char *key_string(const msgpack_object *k, size_t *len, int *lossy)
{
    char *s = NULL;
    if (k->type == MSGPACK_OBJECT_STR) {
        json_t *j = string_from_bytes(k->via.str.ptr, k->via.str.size);
        if (!j)
            return NULL;
        *len = json_string_length(j);
        s = malloc(*len + 1);
        if (s) {
            memcpy(s, json_string_value(j), *len);
            s[*len] = '\0';
        }
        json_decref(j);
        return s;
    }
    json_t *j = json_from_msgpack(k, lossy);
    if (!j)
        return NULL;
    s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    if (s)
        *len = strlen(s);
    return s;
}

json_t *json_from_msgpack(const msgpack_object *o, int *lossy)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            if (lossy)
                (*lossy)++;
            return json_real((double)o->via.u64);
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return string_from_bytes(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *b = json_base64(o->via.bin.ptr, o->via.bin.size);
        if (!b)
            return NULL;
        json_t *j = json_string(b);
        free(b);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *e = json_from_msgpack(&o->via.array.ptr[i], lossy);
            if (!e || json_array_append_new(a, e) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            size_t klen = 0;
            char *k = key_string(&o->via.map.ptr[i].key, &klen, lossy);
            json_t *v = k ? json_from_msgpack(&o->via.map.ptr[i].val, lossy) : NULL;
            if (!v || json_object_setn_new(m, k, klen, v) != 0) {
                free(k);
                json_decref(m);
                return NULL;
            }
            free(k);
        }
        return m;
    }
    case MSGPACK_OBJECT_EXT:
    default:
        if (lossy)
            (*lossy)++;
        return json_null();
    }
}

taskq_err_t json_from_msgpack_bytes(const void *data, size_t len, json_t **out, int *lossy)
{
    *out = NULL;
    if (len == 0) {
        *out = json_null();
        return TASKQ_OK;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, data, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&u);
        return r == MSGPACK_UNPACK_NOMEM_ERROR ? TASKQ_ENOMEM : TASKQ_EPROTO;
    }
    *out = json_from_msgpack(&u.data, lossy);
    msgpack_unpacked_destroy(&u);
    return *out ? TASKQ_OK : TASKQ_ENOMEM;
}
