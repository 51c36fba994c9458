/*
 * The sandbox's policy parsing: environment patterns, the --network
 * allow-list (names, wildcards, IP literals, ports, malformed entries) and
 * the proxy's host matching; the names read from /etc/passwd and /etc/group.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <cmocka.h>

#include "run-proxy.h"
#include "run-sandbox.h"
#include "util-error.h"

static void test_sandbox_env_patterns(void **state)
{
    (void)state;
    assert_true(sandbox_env_match("*_TOKEN", "GITHUB_TOKEN"));
    assert_false(sandbox_env_match("*_TOKEN", "TOKEN"));
    assert_false(sandbox_env_match("*_TOKEN", "GITHUB_TOKENS"));
    assert_true(sandbox_env_match("AWS_*", "AWS_SECRET_ACCESS_KEY"));
    assert_false(sandbox_env_match("AWS_*", "XAWS_A"));
    assert_true(sandbox_env_match("*SECRET*", "MY_SECRET_X"));
    assert_true(sandbox_env_match("SSH_AUTH_SOCK", "SSH_AUTH_SOCK"));
    assert_false(sandbox_env_match("SSH_AUTH_SOCK", "SSH_AUTH_SOCKET"));
    assert_true(sandbox_env_match("*", "ANY"));
}

static void test_sandbox_allow_list_parses(void **state)
{
    (void)state;
    struct sandbox_policy p = SANDBOX_POLICY_INIT;
    struct rx_error *err = NULL;
    assert_int_equal(sandbox_net_parse(&p, "allow:API.example.com:443,*.pypi.org,10.0.0.1:8080,[::1]:9", &err), 0);
    assert_int_equal(p.net, SANDBOX_NET_ALLOW);
    assert_int_equal(p.nallow, 4);
    assert_string_equal(p.allow[0].host, "api.example.com");
    assert_int_equal(p.allow[0].port, 443);
    assert_string_equal(p.allow[1].host, "*.pypi.org");
    assert_int_equal(p.allow[1].port, 0);
    assert_string_equal(p.allow[3].host, "::1");
    assert_int_equal(p.allow[3].port, 9);
    assert_true(proxy_allowed(&p, "api.example.com", 443));
    assert_false(proxy_allowed(&p, "api.example.com", 80));
    assert_true(proxy_allowed(&p, "files.pypi.org", 443));
    assert_true(proxy_allowed(&p, "files.pypi.org", 80));
    assert_false(proxy_allowed(&p, "files.pypi.org", 8443));
    assert_false(proxy_allowed(&p, "pypi.org", 443)); /* a wildcard is below the domain only */
    assert_false(proxy_allowed(&p, "evilpypi.org", 443));
    assert_true(proxy_allowed(&p, "10.0.0.1", 8080));
    sandbox_policy_release(&p);
}

static void test_sandbox_allow_list_rejects_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "allow:", "allow:a,,b", "allow:a:0", "allow:a:65536", "allow:a:", "allow:a b",
        "allow:[::1", "allow:[nothex]:1", "allow:a:1x", "allow:*", "allow:a.*.b", "lan",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct sandbox_policy p = SANDBOX_POLICY_INIT;
        struct rx_error *err = NULL;
        assert_int_equal(sandbox_net_parse(&p, bad[i], &err), -1);
        assert_non_null(err);
        assert_int_equal(err->code, RX_EUSAGE);
        assert_int_equal(p.nallow, 0);
        rx_error_free(err);
        sandbox_policy_release(&p);
    }
}

static void test_sandbox_etc_name_finds_the_id(void **state)
{
    (void)state;
    char path[] = "/tmp/test-run-sandbox-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char text[] = "# a comment\n"
                               "+nisuser:x:1000:1000::/:/bin/sh\n"
                               "root:x:0:0:root:/root:/bin/sh\n"
                               "bad:x:10x:10::/:/bin/sh\n"
                               ":x:11:11::/:/bin/sh\n"
                               "neg:x:-12:12::/:/bin/sh\n"
                               "alice:x:1000:1000:Alice:/home/alice:/bin/sh\n"
                               "long-name-of-a-user:x:1001:1001::/:/bin/sh\n"
                               "bob:x:1000:1000::/:/bin/sh\n"
                               "last:x:2000";
    assert_int_equal(write(fd, text, sizeof text - 1), (int)(sizeof text - 1));
    close(fd);
    char name[16];
    assert_int_equal(sandbox_etc_name(path, 0, name, sizeof name), 0);
    assert_string_equal(name, "root");
    assert_int_equal(sandbox_etc_name(path, 1000, name, sizeof name), 0);
    assert_string_equal(name, "alice"); /* the first entry, not the NIS line or bob */
    assert_int_equal(sandbox_etc_name(path, 10, name, sizeof name), -1);
    assert_int_equal(sandbox_etc_name(path, 11, name, sizeof name), -1);
    assert_int_equal(sandbox_etc_name(path, 12, name, sizeof name), -1);
    assert_int_equal(sandbox_etc_name(path, (unsigned long)-12, name, sizeof name), -1);
    assert_int_equal(sandbox_etc_name(path, 1001, name, sizeof name), -1); /* does not fit */
    assert_int_equal(sandbox_etc_name(path, 2000, name, sizeof name), -1); /* no ':' after the id */
    assert_int_equal(sandbox_etc_name(path, 3000, name, sizeof name), -1);
    unlink(path);
    assert_int_equal(sandbox_etc_name(path, 0, name, sizeof name), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sandbox_env_patterns),
        cmocka_unit_test(test_sandbox_allow_list_parses),
        cmocka_unit_test(test_sandbox_allow_list_rejects_malformed),
        cmocka_unit_test(test_sandbox_etc_name_finds_the_id),
    };
    return cmocka_run_group_tests_name("run-sandbox", tests, NULL, NULL);
}
