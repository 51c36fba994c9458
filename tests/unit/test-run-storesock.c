/*
 * The store socket's request parser (run-storesock.h): the one request it
 * accepts, partial reads, and every kind of refusal; and the client against
 * a server on a socket pair.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "run-storesock.h"

#define HELLO "/nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-hello-2.12"

static int parse(const char *s, char *path, const char **why)
{
    return storesock_parse(s, strlen(s), path, why);
}

static void test_storesock_accepts(void **state)
{
    (void)state;
    char path[STORESOCK_STORE_PATH_MAX + 1];
    const char *why = NULL;
    assert_int_equal(parse("realise " HELLO "\n", path, &why), 0);
    assert_string_equal(path, HELLO);
    assert_int_equal(parse("realise " HELLO "\r\n", path, &why), 0);
    assert_string_equal(path, HELLO);
    /* Cut anywhere before the newline: more is needed. */
    assert_int_equal(parse("realise " HELLO, path, &why), 1);
    assert_int_equal(parse("real", path, &why), 1);
    assert_int_equal(parse("", path, &why), 1);
}

static void expect_refused(const char *req, size_t len, const char *want)
{
    char path[STORESOCK_STORE_PATH_MAX + 1];
    const char *why = NULL;
    assert_int_equal(storesock_parse(req, len, path, &why), -1);
    assert_non_null(why);
    assert_non_null(strstr(why, want));
}

static void test_storesock_refuses(void **state)
{
    (void)state;
    static const char *const not_paths[] = {
        "realise /etc/passwd\n",
        "realise " HELLO "/bin/hello\n",
        "realise /nix/store/../../etc/shadow\n",
        "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4p-hello\n",   /* 31 chars */
        "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pze-hello\n", /* 'e' is not nix32 */
        "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-.hidden\n",
        "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-\n",
        "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-a b\n",
        "realise  " HELLO "\n",
        "realise " HELLO " \n",
    };
    for (size_t i = 0; i < sizeof not_paths / sizeof *not_paths; i++)
        expect_refused(not_paths[i], strlen(not_paths[i]), "not a store path name");
    expect_refused("delete " HELLO "\n", strlen("delete " HELLO "\n"), "unknown request");
    expect_refused("realise\n", 8, "unknown request");
    expect_refused("\n", 1, "unknown request");
    expect_refused("realise " HELLO "\nrealise " HELLO "\n", strlen(HELLO) * 2 + 18,
                   "one request per connection");
    static const char nul[] = "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-h\0llo\n";
    expect_refused(nul, sizeof nul - 1, "NUL byte");
    char big[STORESOCK_REQUEST_MAX + 10];
    memset(big, 'a', sizeof big);
    expect_refused(big, STORESOCK_REQUEST_MAX, "too long");
    big[STORESOCK_REQUEST_MAX + 2] = '\n';
    expect_refused(big, STORESOCK_REQUEST_MAX + 3, "too long");
    /* A name of 211 characters is a store path; of 212, not. */
    char longest[8 + 44 + 212 + 2];
    int n = snprintf(longest, sizeof longest, "realise /nix/store/6xkds5xf8bjjl64v0zldlikvw61rg4pz-");
    memset(longest + n, 'x', 211);
    longest[n + 211] = '\n';
    char path[STORESOCK_STORE_PATH_MAX + 1];
    const char *why = NULL;
    assert_int_equal(storesock_parse(longest, (size_t)n + 212, path, &why), 0);
    longest[n + 211] = 'x';
    longest[n + 212] = '\n';
    expect_refused(longest, (size_t)n + 213, "not a store path name");
}

static void test_storesock_client_refuses_locally(void **state)
{
    (void)state;
    char why[256];
    assert_int_equal(storesock_realise("/nonexistent/sock", "/etc/passwd", why, sizeof why), -1);
    assert_non_null(strstr(why, "not a store path name"));
    assert_int_equal(storesock_realise("/nonexistent/sock", HELLO, why, sizeof why), -1);
    assert_non_null(strstr(why, "cannot ask /nonexistent/sock"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storesock_accepts),
        cmocka_unit_test(test_storesock_refuses),
        cmocka_unit_test(test_storesock_client_refuses_locally),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
