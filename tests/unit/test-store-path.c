#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "crypto-hash.h"
#include "store-path.h"
#include "util-mem.h"

static void test_store_path_third_party_vectors(void **state)
{
    (void)state;
    char ***rows = td_tsv("storepath/vectors.tsv");
    size_t counts[6] = {0};
    for (size_t i = 0; rows[i]; i++) {
        const char *expect = rows[i][0], *s = rows[i][1];
        size_t len = strlen(s);
        struct store_path p;
        struct rx_error *err = NULL;
        if (strcmp(expect, "valid") == 0) {
            if (store_path_parse(s, len, &p, &err) < 0)
                fail_msg("'%s' rejected: %s", s, err->msg);
            char back[STORE_PATH_MAX + 1];
            store_path_format(&p, back);
            assert_string_equal(back, s);
            counts[0]++;
        } else if (strcmp(expect, "invalid") == 0 || strcmp(expect, "noncanonical") == 0) {
            if (store_path_parse(s, len, &p, &err) == 0)
                fail_msg("'%s' accepted but must be rejected (%s)", s, expect);
            assert_int_equal(err->code, RX_EFORMAT);
            rx_error_free(err);
            counts[1]++;
        } else if (strcmp(expect, "valid-basename") == 0) {
            if (store_path_parse_basename(s, len, &p, &err) < 0)
                fail_msg("basename '%s' rejected: %s", s, err->msg);
            char back[STORE_BASENAME_MAX + 1];
            store_path_basename(&p, back);
            assert_string_equal(back, s);
            counts[2]++;
        } else if (strcmp(expect, "invalid-basename") == 0) {
            if (store_path_parse_basename(s, len, &p, &err) == 0)
                fail_msg("basename '%s' accepted but must be rejected", s);
            rx_error_free(err);
            counts[3]++;
        } else if (strcmp(expect, "valid-with-subpath") == 0) {
            const char *sub;
            assert_int_equal(store_path_parse_with_subpath(s, len, &p, &sub, NULL), 0);
            assert_string_equal(sub, "/bin/arp");
            assert_string_equal(p.name, "net-tools-1.60_p20170221182432");
            /* ...but it is not a store path by itself. */
            assert_int_equal(store_path_parse(s, len, &p, NULL), -1);
            counts[4]++;
        } else {
            fail_msg("unknown expectation '%s'", expect);
        }
    }
    for (int i = 0; i < 5; i++)
        assert_true(counts[i] > 0);
    td_rows_free(rows);
}

static void test_store_path_name_length_boundary(void **state)
{
    (void)state;
    char s[STORE_PATH_MAX + 8];
    int n = snprintf(s, sizeof s, "/nix/store/ffffffffffffffffffffffffffffffff-");
    memset(s + n, 'x', 211);
    s[n + 211] = '\0';
    struct store_path p;
    assert_int_equal(store_path_parse(s, strlen(s), &p, NULL), 0);
    assert_int_equal(strlen(p.name), 211);
    s[n + 211] = 'x';
    s[n + 212] = '\0';
    struct rx_error *err = NULL;
    assert_int_equal(store_path_parse(s, strlen(s), &p, &err), -1);
    assert_non_null(strstr(err->msg, "longer than 211"));
    rx_error_free(err);
}

static void test_store_path_rejects_other_store_dir(void **state)
{
    (void)state;
    const char *s = "/gnu/store/ffffffffffffffffffffffffffffffff-x";
    struct rx_error *err = NULL;
    struct store_path p;
    assert_int_equal(store_path_parse(s, strlen(s), &p, &err), -1);
    assert_non_null(strstr(err->msg, "only /nix/store is supported"));
    rx_error_free(err);
    /* NUL inside and non-ASCII names are rejected. */
    assert_int_equal(store_path_parse("/nix/store/ffffffffffffffffffffffffffffffff-a\0b", 46, &p, NULL), -1);
    const char *u = "/nix/store/ffffffffffffffffffffffffffffffff-caf\xc3\xa9";
    assert_int_equal(store_path_parse(u, strlen(u), &p, NULL), -1);
}

static void test_store_path_order(void **state)
{
    (void)state;
    struct store_path a, b;
    assert_int_equal(store_path_parse_basename("00bgd045z0d4icpbc2yyz4gx48ak44la-a", 34, &a, NULL), 0);
    assert_int_equal(store_path_parse_basename("00bgd045z0d4icpbc2yyz4gx48ak44la-a-b", 36, &b, NULL), 0);
    assert_true(store_path_cmp(&a, &b) < 0);
    assert_true(store_path_cmp(&b, &a) > 0);
    assert_int_equal(store_path_cmp(&a, &a), 0);
}

static void test_store_name_package(void **state)
{
    (void)state;
    const char *cases[][2] = {
        {"hello-2.12", "hello"},       {"busybox-static-1.35", "busybox-static"},
        {"hello-scripts-1.0", "hello-scripts"}, {"hello.c", "hello.c"},
        {"python3-3.11", "python3"},   {"x-", "x-"},
        {"-1", ""},
    };
    for (size_t k = 0; k < ARRAY_SIZE(cases); k++) {
        char *got = store_name_package(cases[k][0]);
        assert_string_equal(got, cases[k][1]);
        free(got);
    }
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_path_third_party_vectors),
        cmocka_unit_test(test_store_path_name_length_boundary),
        cmocka_unit_test(test_store_path_rejects_other_store_dir),
        cmocka_unit_test(test_store_path_order),
        cmocka_unit_test(test_store_name_package),
    };
    return cmocka_run_group_tests_name("store-path", tests, NULL, NULL);
}
