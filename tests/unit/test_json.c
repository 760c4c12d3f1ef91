/* test_json.c - JSON <-> msgpack conversions of the CLI (client/cli/json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"

/* JSON text -> msgpack -> JSON text must give the same compact text. */
static void roundtrip(const char *text)
{
    void *mp = NULL;
    size_t len = 0;
    char err[128];
    assert_int_equal(json_text_to_msgpack(text, &mp, &len, err, sizeof err), TASKQ_OK);
    json_t *back = NULL;
    int lossy = 0;
    assert_int_equal(json_from_msgpack_bytes(mp, len, &back, &lossy), TASKQ_OK);
    assert_int_equal(lossy, 0);
    char *s = json_dumps(back, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    json_t *orig = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    char *o = json_dumps(orig, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, o);
    free(s);
    free(o);
    json_decref(orig);
    json_decref(back);
    free(mp);
}

static void test_json_roundtrip_integers(void **state)
{
    (void)state;
    roundtrip("[0,1,-1,127,128,-32,-33,255,256,65536,-2147483649]");
    roundtrip("[9007199254740993,-9007199254740993]"); /* 2^53+1: exact, not a double */
    roundtrip("[9223372036854775807,-9223372036854775808]");
    roundtrip("42");
}

static void test_json_keeps_integer_and_real_apart(void **state)
{
    (void)state;
    void *mp;
    size_t len;
    assert_int_equal(json_text_to_msgpack("[1, 1.0, 2.5e-3]", &mp, &len, NULL, 0), TASKQ_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, mp, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.via.array.ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(u.data.via.array.ptr[1].type, MSGPACK_OBJECT_FLOAT64);
    assert_true(u.data.via.array.ptr[2].via.f64 == 2.5e-3);
    msgpack_unpacked_destroy(&u);
    free(mp);
    roundtrip("[1.5,-0.25,1e+300]");
}

static void test_json_roundtrip_strings_nested_null_bool(void **state)
{
    (void)state;
    roundtrip("\"h\\u00e9llo \\u4e16\\u754c \\ud83d\\ude00\"");
    roundtrip("[null,true,false,\"\",[],{}]");
    roundtrip("{\"a\":[1,{\"b\":[null,{\"c\":\"d\"}]}],\"\\u00fc\":2}");
    roundtrip("\"nul\\u0000inside\"");
}

static void test_json_rejects_bad_text(void **state)
{
    (void)state;
    void *mp = (void *)1;
    size_t len;
    char err[128] = "";
    assert_int_equal(json_text_to_msgpack("[1,", &mp, &len, err, sizeof err), TASKQ_EINVAL);
    assert_null(mp);
    assert_true(strlen(err) > 0);
}

/* msgpack-only shapes: bin, ext, uint64 > INT64_MAX, non-string keys, bad UTF-8. */
static void test_json_from_msgpack_fallbacks(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "abc", 3);
    msgpack_pack_ext(&pk, 1, 5);
    msgpack_pack_ext_body(&pk, "\0", 1);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_int(&pk, 7);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "x", 1);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "a\xff"
                               "b", 3);
    json_t *j = NULL;
    int lossy = 0;
    assert_int_equal(json_from_msgpack_bytes(sb.data, sb.size, &j, &lossy), TASKQ_OK);
    assert_int_equal(lossy, 2);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "[\"YWJj\",null,1.8446744073709552e19,{\"7\":\"x\",\"true\":null},"
                           "\"a\xef\xbf\xbd"
                           "b\"]");
    free(s);
    json_decref(j);
    assert_int_equal(json_from_msgpack_bytes(sb.data, sb.size - 1, &j, NULL), TASKQ_EPROTO);
    assert_int_equal(json_from_msgpack_bytes("", 0, &j, NULL), TASKQ_OK);
    assert_true(json_is_null(j));
    json_decref(j);
    msgpack_sbuffer_destroy(&sb);
}

static void test_json_base64(void **state)
{
    (void)state;
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *s = json_base64(in[i], strlen(in[i]));
        assert_string_equal(s, out[i]);
        free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_roundtrip_integers),
        cmocka_unit_test(test_json_keeps_integer_and_real_apart),
        cmocka_unit_test(test_json_roundtrip_strings_nested_null_bool),
        cmocka_unit_test(test_json_rejects_bad_text),
        cmocka_unit_test(test_json_from_msgpack_fallbacks),
        cmocka_unit_test(test_json_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
