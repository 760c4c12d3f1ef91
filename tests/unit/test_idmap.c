/* test_idmap.c - the byte-keyed hash map under growth, removal and iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "idmap.h"

static void make_key(uint8_t k[16], uint32_t i)
{
    memset(k, 0x42, 16); /* shared prefix, like UUIDv7 ids from one ms */
    memcpy(k + 12, &i, 4);
}

static void test_idmap_put_find_remove_many(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    static int vals[5000];
    uint8_t k[16];
    for (uint32_t i = 0; i < 5000; i++) {
        make_key(k, i);
        assert_null(idmap_put(m, k, 16, &vals[i]));
    }
    assert_int_equal(idmap_count(m), 5000);
    for (uint32_t i = 0; i < 5000; i += 2) {
        make_key(k, i);
        assert_ptr_equal(idmap_remove(m, k, 16), &vals[i]);
    }
    assert_int_equal(idmap_count(m), 2500);
    for (uint32_t i = 0; i < 5000; i++) {
        make_key(k, i);
        if (i % 2)
            assert_ptr_equal(idmap_find(m, k, 16), &vals[i]);
        else
            assert_null(idmap_find(m, k, 16));
    }
    make_key(k, 1);
    assert_ptr_equal(idmap_put(m, k, 16, &vals[0]), &vals[1]); /* replace */
    idmap_destroy(&m);
    assert_null(m);
}

static void test_idmap_long_keys_and_iteration_with_removal(void **state)
{
    (void)state;
    idmap_t *m = idmap_new();
    char key[200];
    static int v[100];
    for (int i = 0; i < 100; i++) {
        memset(key, 'a' + i % 26, sizeof key);
        memcpy(key, &i, sizeof i);
        idmap_put(m, key, sizeof key, &v[i]);
    }
    size_t c = 0, seen = 0, len;
    const void *k;
    void *val;
    while (idmap_next(m, &c, &k, &len, &val)) {
        assert_int_equal(len, sizeof key);
        seen++;
        assert_ptr_equal(idmap_remove(m, k, len), val); /* removal while iterating */
    }
    assert_int_equal(seen, 100);
    assert_int_equal(idmap_count(m), 0);
    assert_null(idmap_find(m, "", 0));
    idmap_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idmap_put_find_remove_many),
        cmocka_unit_test(test_idmap_long_keys_and_iteration_with_removal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
