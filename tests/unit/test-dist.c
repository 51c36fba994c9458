#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "dist.h"
#include "util-mem.h"

/* tests/dist, beside this directory. */
static char *example(const char *name)
{
    const char *dir = getenv("RUNIX_DIST_EXAMPLES");
    if (!dir)
        fail_msg("RUNIX_DIST_EXAMPLES is not set");
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Every file in tests/dist/expect.tsv parses, or fails with its message. */
static void test_dist_examples(void **state)
{
    (void)state;
    char *tsv = example("expect.tsv");
    FILE *f = fopen(tsv, "r");
    assert_non_null(f);
    char line[2048];
    size_t valid = 0, invalid = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        line[strcspn(line, "\n")] = '\0';
        char *name = line, *tab1 = strchr(line, '\t');
        assert_non_null(tab1);
        *tab1 = '\0';
        char *tab2 = strchr(tab1 + 1, '\t');
        assert_non_null(tab2);
        const char *want = tab2 + 1;
        char *path = example(name);
        struct dist d = DIST_INIT;
        struct rx_error *err = NULL;
        int r = dist_load(path, &d, &err);
        if (*want == '\0') {
            if (r < 0)
                fail_msg("%s refused: %s", name, err->msg);
            assert_string_equal(d.name, "hello");
            assert_true(d.nsystems >= 1);
            valid++;
        } else {
            if (r == 0)
                fail_msg("%s accepted, but must fail with '%s'", name, want);
            if (!strstr(err->msg, want))
                fail_msg("%s: got '%s', wanted it to contain '%s'", name, err->msg, want);
            /* The file is named first, so that the user knows which one. */
            if (!strstr(err->msg, name))
                fail_msg("%s: the error '%s' does not name the file", name, err->msg);
            assert_int_equal(err->code, RX_EFORMAT);
            rx_error_free(err);
            invalid++;
        }
        dist_release(&d);
        free(path);
    }
    fclose(f);
    free(tsv);
    assert_true(valid >= 5);
    assert_true(invalid >= 25);
}

static void test_dist_full(void **state)
{
    (void)state;
    char *path = example("valid-full.runix");
    struct dist d = DIST_INIT;
    struct rx_error *err = NULL;
    if (dist_load(path, &d, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(d.format_major, 1);
    assert_string_equal(d.description, "GNU Hello, from nixpkgs");
    assert_int_equal(d.nsystems, 2);

    const struct dist_system *s = dist_system_find(&d, "t", "x86_64-linux", &err);
    assert_non_null(s);
    assert_int_equal(s->npaths, 1);
    assert_string_equal(s->paths[0].name, "hello-2.12.1");
    assert_int_equal(s->nclosure, 3);
    assert_non_null(dist_narinfo_find(s, &s->paths[0]));

    assert_null(dist_system_find(&d, "t.runix", "aarch64-darwin", &err));
    assert_non_null(strstr(err->msg, "'t.runix' has nothing for aarch64-darwin; it lists "));
    assert_non_null(strstr(err->msg, "x86_64-linux"));
    assert_non_null(strstr(err->msg, "aarch64-linux"));
    rx_error_clear(&err);

    const struct dist_app *a = dist_app_find(&d, "t", NULL, &err);
    assert_non_null(a);
    assert_string_equal(a->program, "bin/hello");
    a = dist_app_find(&d, "t", "greet", &err);
    assert_non_null(a);
    assert_int_equal(a->nargs, 2);
    assert_string_equal(a->args[1], "hi");
    assert_int_equal(a->nenv, 1);
    assert_string_equal(a->env[0], "LANG=C.UTF-8");
    assert_null(dist_app_find(&d, "t", "nope", &err));
    assert_string_equal(err->msg, "'t' has no app 'nope'; its apps are: default, greet");
    rx_error_clear(&err);

    assert_int_equal(d.ncaches, 2);
    assert_string_equal(d.caches[1].url, "https://tools.example.com/cache");
    assert_int_equal(d.caches[0].nkeys, 1);
    dist_release(&d);
    free(path);
}

static void test_dist_implicit_default_app(void **state)
{
    (void)state;
    char *path = example("valid-minimal.runix");
    struct dist d = DIST_INIT;
    struct rx_error *err = NULL;
    if (dist_load(path, &d, &err) < 0)
        fail_msg("%s", err->msg);
    const struct dist_app *a = dist_app_find(&d, "t", NULL, &err);
    assert_non_null(a);
    assert_null(a->program);
    assert_null(dist_app_find(&d, "t", "x", &err));
    rx_error_clear(&err);
    dist_release(&d);
    free(path);
}

/* A sandbox policy is kept as written; false and true are policies too. */
static void test_dist_sandbox(void **state)
{
    (void)state;
    char *path = example("valid-sandbox.runix");
    struct dist d = DIST_INIT;
    struct rx_error *err = NULL;
    assert_int_equal(dist_load(path, &d, &err), 0);
    free(path);
    const struct dist_sandbox *sb = d.apps[0].sandbox;
    assert_non_null(sb);
    assert_true(sb->enable);
    assert_string_equal(sb->cwd, "ro");
    assert_string_equal(sb->network, "allow:api.example.com:443,*.pypi.org,127.0.0.1:8080,[::1]:9000");
    assert_int_equal(sb->nro, 2);
    assert_string_equal(sb->ro[0], "~/.config/agent");
    assert_int_equal(sb->nrw, 2);
    assert_string_equal(sb->rw[0], "$PWD/out");
    assert_int_equal(sb->nhide, 2);
    assert_string_equal(sb->hide[1], "~/.config/agent/token");
    assert_true(sb->clearenv);
    assert_int_equal(sb->nsetenv, 1);
    assert_string_equal(sb->setenv[0], "LANG=C.UTF-8");
    assert_int_equal(sb->nkeep, 1);
    assert_string_equal(sb->keep[0], "TERM");
    assert_int_equal(sb->ndeny, 2);
    assert_string_equal(sb->deny[1], "AWS_*");
    dist_release(&d);

    static const char *const cases[][2] = {
        {"false", NULL},
        {"{\"enable\": false, \"network\": \"host\"}", NULL},
        {"{\"network\": \"allow:[::1]:70000\"}", "sandbox.network: expected"},
        {"{\"network\": \"allow:a.b,\"}", "sandbox.network: expected"},
        {"{\"network\": \"allow:*.\"}", "sandbox.network: expected"},
        {"{\"network\": \"allow:exa mple.com\"}", "sandbox.network: expected"},
        {"{\"ro\": [\"~user/x\"]}", "sandbox.ro[0]: expected paths"},
        {"{\"ro\": [\"$PWDX\"]}", "sandbox.ro[0]: expected paths"},
        {"{\"hide\": [\"/a//b\"]}", "sandbox.hide[0]: expected paths"},
        {"{\"rw\": \"/tmp\"}", "sandbox.rw: expected an array of paths"},
        {"{\"enable\": 1}", "sandbox.enable: expected true or false"},
        {"{\"env\": {\"deny\": [\"A=B\"]}}", "sandbox.env.deny[0]: expected"},
        {"{\"env\": {\"keep\": [\"A*\"]}}", "sandbox.env.keep[0]: expected"},
        {"{\"env\": []}", "sandbox.env: expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = xasprintf("#!/usr/bin/env runix\n{\"format\": \"1.0\", \"name\": \"t\", "
                               "\"systems\": {\"x86_64-linux\": {\"paths\": "
                               "[\"/nix/store/0c8khgcd5yvdyqdbd8mx6rzp9xx3z5h8-hello-2.12.1\"]}}, "
                               "\"apps\": {\"a\": {\"program\": \"x\", \"sandbox\": %s}}}",
                               cases[i][0]);
        struct dist t = DIST_INIT;
        int r = dist_parse("t.runix", text, strlen(text), &t, &err);
        if (!cases[i][1]) {
            if (r < 0)
                fail_msg("%s refused: %s", cases[i][0], err->msg);
            assert_non_null(t.apps[0].sandbox);
            assert_false(t.apps[0].sandbox->enable);
            dist_release(&t);
        } else {
            if (r == 0)
                fail_msg("%s accepted", cases[i][0]);
            if (!strstr(err->msg, cases[i][1]) || !strstr(err->msg, "'t.runix': apps.a."))
                fail_msg("%s: got '%s', wanted '%s'", cases[i][0], err->msg, cases[i][1]);
            rx_error_clear(&err);
        }
        free(text);
    }
}

static void test_dist_sniff(void **state)
{
    (void)state;
    static const struct {
        const char *head;
        bool want;
    } cases[] = {
        { "#!/usr/bin/env runix\n{}", true },
        { "#!/usr/local/bin/runix\n", true },
        { "#!/usr/bin/env -S runix run\n", true },
        { "#!/usr/bin/env runix", true },
        { "#!/bin/sh\n: <<'RUNIX_JSON'\n{}\nRUNIX_JSON\n", true },
        { "#!/bin/sh\necho runix\n", false },
        { "#!/usr/bin/env python3\n# runix\n", false },
        { "#!/usr/bin/env runixx\n", false },
        { "#!/usr/bin/env myrunix\n", false },
        { "{\"format\":\"1.0\"}", false },
        { "", false },
        { "#", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (dist_sniff(cases[i].head, strlen(cases[i].head)) != cases[i].want)
            fail_msg("dist_sniff(\"%s\") is not %d", cases[i].head, cases[i].want);
}

/* Hostile sizes and shapes fail cleanly (the sanitizer build checks the rest). */
static void test_dist_hostile(void **state)
{
    (void)state;
    struct dist d = DIST_INIT;
    struct rx_error *err = NULL;
    static const char *texts[] = {
        "#!/usr/bin/env runix\n",
        "#!/usr/bin/env runix\n\"format\"",
        "#!/usr/bin/env runix\n{\"format\":\"1.\"}",
        "#!/usr/bin/env runix\n{\"format\":\"01x\"}",
        "#!/usr/bin/env runix\n{\"format\":\"1.99999999999999999999\"}",
        "#!/usr/bin/env runix\n{\"format\":\"1.0\",\"name\":\"x\",\"systems\":{\"a-b\":[]}}",
        "#!/usr/bin/env runix\n{\"format\":\"1.0\",\"name\":\"x\",\"systems\":{\"a-b\":{\"paths\":[]}},\"apps\":[]}",
        "#!/usr/bin/env runix\n[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        if (dist_parse("h", texts[i], strlen(texts[i]), &d, &err) == 0)
            fail_msg("accepted: %s", texts[i]);
        assert_non_null(err);
        rx_error_clear(&err);
    }
    size_t big = DIST_FILE_MAX + 1;
    char *huge = xmalloc(big);
    memset(huge, ' ', big);
    memcpy(huge, "#!/usr/bin/env runix\n", 21);
    assert_int_equal(dist_parse("h", huge, big, &d, &err), -1);
    assert_non_null(strstr(err->msg, "larger than"));
    rx_error_clear(&err);
    free(huge);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dist_examples),
        cmocka_unit_test(test_dist_full),
        cmocka_unit_test(test_dist_implicit_default_app),
        cmocka_unit_test(test_dist_sniff),
        cmocka_unit_test(test_dist_sandbox),
        cmocka_unit_test(test_dist_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
