/* How a distributable's sandbox policy and the command line combine. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "run-sandbox-policy.h"
#include "util-mem.h"

struct merged {
    struct sandbox_policy out;
    char **notes;
    size_t n;
};

static void merge(const struct sandbox_policy *f, const struct sandbox_policy *c, unsigned set,
                  struct merged *m)
{
    m->notes = NULL;
    m->n = 0;
    sandbox_policy_merge(f, c, set, &m->out, &m->notes, &m->n);
}

static void merged_release(struct merged *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->notes[i]);
    free(m->notes);
    sandbox_policy_release(&m->out);
}

static bool has_note(const struct merged *m, const char *sub)
{
    for (size_t i = 0; i < m->n; i++)
        if (strstr(m->notes[i], sub))
            return true;
    return false;
}

static void net(struct sandbox_policy *p, const char *s)
{
    struct rx_error *err = NULL;
    if (sandbox_net_parse(p, s, &err) < 0)
        fail_msg("%s: %s", s, err->msg);
}

static void test_expand(void **state)
{
    (void)state;
    struct rx_error *err = NULL;
    char *s = sandbox_path_expand("~/x/y", "/home/u/", "/w", &err);
    assert_string_equal(s, "/home/u/x/y");
    free(s);
    s = sandbox_path_expand("~", "/home/u", "/w", &err);
    assert_string_equal(s, "/home/u");
    free(s);
    s = sandbox_path_expand("$PWD/out", "/home/u", "/w", &err);
    assert_string_equal(s, "/w/out");
    free(s);
    s = sandbox_path_expand("$PWD/out", "/home/u", "/", &err);
    assert_string_equal(s, "/out");
    free(s);
    s = sandbox_path_expand("/etc/ssl", NULL, NULL, &err);
    assert_string_equal(s, "/etc/ssl");
    free(s);
    assert_null(sandbox_path_expand("~/x", NULL, "/w", &err));
    assert_non_null(strstr(err->msg, "HOME"));
    rx_error_clear(&err);
    assert_null(sandbox_path_expand("~/x", "rel", "/w", &err));
    rx_error_clear(&err);
    assert_null(sandbox_path_expand("$PWD", "/h", NULL, &err));
    rx_error_clear(&err);
}

/* Without options the file's policy applies as it is, and nothing is said. */
static void test_file_alone(void **state)
{
    (void)state;
    struct sandbox_policy f = SANDBOX_POLICY_INIT, c = SANDBOX_POLICY_INIT;
    f.on = true;
    f.cwd = SANDBOX_CWD_RO;
    net(&f, "allow:example.com:443");
    sandbox_policy_add_bind(&f, SANDBOX_RW, "/w/out");
    sandbox_policy_add_bind(&f, SANDBOX_HIDE, "/w/.env");
    f.clearenv = true;
    sandbox_policy_add_str(&f.setenv, &f.nsetenv, "A=1");
    c.log_fd = 7;
    struct merged m;
    merge(&f, &c, 0, &m);
    assert_int_equal(m.n, 0);
    assert_true(m.out.on);
    assert_int_equal(m.out.cwd, SANDBOX_CWD_RO);
    assert_int_equal(m.out.net, SANDBOX_NET_ALLOW);
    assert_int_equal(m.out.nallow, 1);
    assert_string_equal(m.out.allow[0].host, "example.com");
    assert_int_equal(m.out.nbinds, 2);
    assert_int_equal(m.out.binds[1].kind, SANDBOX_HIDE);
    assert_true(m.out.clearenv);
    assert_int_equal(m.out.nsetenv, 1);
    assert_int_equal(m.out.log_fd, 7);
    merged_release(&m);
    sandbox_policy_release(&f);
}

/* What restricts more applies silently. */
static void test_tighten(void **state)
{
    (void)state;
    struct sandbox_policy f = SANDBOX_POLICY_INIT, c = SANDBOX_POLICY_INIT;
    f.on = true;
    net(&f, "allow:example.com,pypi.org:443");
    sandbox_policy_add_bind(&f, SANDBOX_RW, "/w/data");
    c.cwd = SANDBOX_CWD_NONE;
    net(&c, "allow:pypi.org:443,example.com:80");
    sandbox_policy_add_bind(&c, SANDBOX_RO, "/w/data/sub");
    sandbox_policy_add_bind(&c, SANDBOX_RW, "/w/data");
    sandbox_policy_add_bind(&c, SANDBOX_HIDE, "/w/data/key");
    c.clearenv = true;
    sandbox_policy_add_str(&c.env_deny, &c.nenv_deny, "*_KEY");
    struct merged m;
    merge(&f, &c, SANDBOX_SET_CWD | SANDBOX_SET_NET, &m);
    for (size_t i = 0; i < m.n; i++)
        fail_msg("a tightening said: %s", m.notes[i]);
    assert_int_equal(m.out.cwd, SANDBOX_CWD_NONE);
    assert_int_equal(m.out.nallow, 2);
    assert_string_equal(m.out.allow[0].host, "pypi.org");
    assert_int_equal(m.out.nbinds, 4);
    assert_true(m.out.clearenv);
    assert_int_equal(m.out.nenv_deny, 1);
    merged_release(&m);

    /* --network none over an allow-list. */
    sandbox_policy_release(&c);
    net(&c, "none");
    merge(&f, &c, SANDBOX_SET_NET, &m);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.out.net, SANDBOX_NET_NONE);
    assert_int_equal(m.out.nallow, 0);
    merged_release(&m);
    sandbox_policy_release(&f);
    sandbox_policy_release(&c);
}

/* What widens applies only as given, and each widening is said. */
static void test_widen(void **state)
{
    (void)state;
    struct sandbox_policy f = SANDBOX_POLICY_INIT, c = SANDBOX_POLICY_INIT;
    f.on = true;
    f.cwd = SANDBOX_CWD_NONE;
    net(&f, "allow:example.com:443");
    sandbox_policy_add_bind(&f, SANDBOX_RO, "/w/data");
    sandbox_policy_add_bind(&f, SANDBOX_HIDE, "/w/data/key");
    c.cwd = SANDBOX_CWD_RW;
    net(&c, "allow:example.com:443,evil.example:443");
    sandbox_policy_add_bind(&c, SANDBOX_RW, "/w/data");     /* rw over ro */
    sandbox_policy_add_bind(&c, SANDBOX_RO, "/w/data/key"); /* reveals a hidden file */
    sandbox_policy_add_bind(&c, SANDBOX_RO, "/w/data/x");   /* covered: no note */
    sandbox_policy_add_bind(&c, SANDBOX_RO, "/w/database"); /* not below /w/data */
    c.allow_nested = true;
    sandbox_policy_add_str(&c.env_keep, &c.nenv_keep, "GH_TOKEN");
    struct merged m;
    merge(&f, &c, SANDBOX_SET_CWD | SANDBOX_SET_NET, &m);
    assert_true(has_note(&m, "--cwd rw: the policy says none"));
    assert_true(has_note(&m, "evil.example:443 is not in the policy's list"));
    assert_false(has_note(&m, "example.com:443 is not"));
    assert_true(has_note(&m, "--rw /w/data:"));
    assert_true(has_note(&m, "--ro /w/data/key:"));
    assert_false(has_note(&m, "/w/data/x"));
    assert_true(has_note(&m, "--ro /w/database:"));
    assert_true(has_note(&m, "--allow-nested"));
    assert_true(has_note(&m, "--env-keep GH_TOKEN"));
    assert_int_equal(m.n, 7);
    assert_int_equal(m.out.cwd, SANDBOX_CWD_RW);
    assert_int_equal(m.out.nallow, 2);
    assert_true(m.out.allow_nested);
    /* The file's binds first, the command line's after (they win). */
    assert_int_equal(m.out.nbinds, 6);
    assert_string_equal(m.out.binds[2].path, "/w/data");
    assert_int_equal(m.out.binds[2].kind, SANDBOX_RW);
    merged_release(&m);

    /* host over an allow-list, allow: over none. */
    sandbox_policy_release(&c);
    net(&c, "host");
    merge(&f, &c, SANDBOX_SET_NET, &m);
    assert_true(has_note(&m, "--network host: the policy says allow:"));
    assert_int_equal(m.out.net, SANDBOX_NET_HOST);
    merged_release(&m);
    sandbox_policy_release(&f);
    f.on = true;
    net(&c, "allow:a.example");
    merge(&f, &c, SANDBOX_SET_NET, &m);
    assert_true(has_note(&m, "--network allow:...: the policy says none"));
    merged_release(&m);

    /* --no-sandbox drops it all. */
    merge(&f, &c, SANDBOX_SET_OFF, &m);
    assert_false(m.out.on);
    assert_true(has_note(&m, "--no-sandbox"));
    merged_release(&m);
    sandbox_policy_release(&f);
    sandbox_policy_release(&c);
}

/* A file without a policy leaves the command line's as it is. */
static void test_no_file_policy(void **state)
{
    (void)state;
    struct sandbox_policy f = SANDBOX_POLICY_INIT, c = SANDBOX_POLICY_INIT;
    c.on = true;
    c.cwd = SANDBOX_CWD_RO;
    net(&c, "host");
    sandbox_policy_add_bind(&c, SANDBOX_RW, "/x");
    struct merged m;
    merge(&f, &c, SANDBOX_SET_NET | SANDBOX_SET_CWD, &m);
    assert_int_equal(m.n, 0);
    assert_true(m.out.on);
    assert_int_equal(m.out.cwd, SANDBOX_CWD_RO);
    assert_int_equal(m.out.net, SANDBOX_NET_HOST);
    assert_int_equal(m.out.nbinds, 1);
    merged_release(&m);
    c.on = false;
    merge(NULL, &c, SANDBOX_SET_OFF, &m);
    assert_false(m.out.on);
    assert_int_equal(m.n, 0);
    merged_release(&m);
    sandbox_policy_release(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expand),         cmocka_unit_test(test_file_alone),
        cmocka_unit_test(test_tighten),        cmocka_unit_test(test_widen),
        cmocka_unit_test(test_no_file_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
