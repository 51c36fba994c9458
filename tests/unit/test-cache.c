#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"

#include "cache.h"
#include "fetch-hosts.h"
#include "util-conf.h"
#include "util-mem.h"

static void url_is(const char *in, const char *want, int prio, bool from_url)
{
    struct cache c;
    struct rx_error *err = NULL;
    if (cache_init(&c, in, 0, &err) < 0)
        fail_msg("%s: %s", in, err->msg);
    assert_string_equal(c.url, want);
    assert_int_equal(c.priority, prio);
    assert_int_equal(c.priority_from_url, from_url);
    cache_release(&c);
}

static void url_bad(const char *in, const char *msg)
{
    struct cache c;
    struct rx_error *err = NULL;
    assert_int_equal(cache_init(&c, in, 0, &err), -1);
    if (!strstr(err->msg, msg))
        fail_msg("%s: got '%s', wanted '%s'", in, err->msg, msg);
    rx_error_free(err);
}

static void test_cache_urls(void **state)
{
    (void)state;
    url_is("https://cache.nixos.org", "https://cache.nixos.org", 0, false);
    url_is("https://cache.nixos.org/", "https://cache.nixos.org", 0, false);
    url_is("https://cache.nixos.org//", "https://cache.nixos.org", 0, false);
    url_is("http://127.0.0.1:8080/sub/", "http://127.0.0.1:8080/sub", 0, false);
    url_is("file:///srv/cache/", "file:///srv/cache", 0, false);
    url_is("file:///srv/cache", "file:///srv/cache", 0, false);
    url_is("https://x.cachix.org?priority=41", "https://x.cachix.org", 41, true);
    url_is("https://x.cachix.org/?trusted=1&priority=-3", "https://x.cachix.org", -3, true);
    url_is("https://x.cachix.org?want-mass-query=1", "https://x.cachix.org", 0, false);
    url_bad("ftp://example.org", "unsupported URL");
    url_bad("s3://", "is not a bucket name");
    url_bad("/just/a/dir", "unsupported URL");
    url_bad("https://", "no host");
    url_bad("file://relative/dir", "no absolute path");
    url_bad("https://x.org?priority=high", "priority is not a number");
    url_bad("https://x.org/a b", "space or control");
    url_bad("https://x.org/#frag", "fragment");

    struct cache c;
    assert_int_equal(cache_init(&c, "https://a.org/", 0, NULL), 0);
    char *u = cache_file_url(&c, "nar/abc.nar.xz");
    assert_string_equal(u, "https://a.org/nar/abc.nar.xz");
    free(u);
    cache_release(&c);
}

static int apply(struct cache *c, const char *text, char **msg)
{
    struct rx_error *err = NULL;
    int r = cache_apply_info(c, text, strlen(text), &err);
    if (r < 0 && msg)
        *msg = xstrdup(err->msg);
    rx_error_free(err);
    return r;
}

static void test_cache_rel_inside_refuses_escapes(void **state)
{
    (void)state;
    assert_true(cache_rel_inside("nar/abc.nar.xz"));
    assert_true(cache_rel_inside("nar/./abc.nar.xz"));
    assert_true(cache_rel_inside("nar/x/../abc.nar.xz"));
    assert_true(cache_rel_inside("nar/abc.nar.xz?x=../../.."));
    assert_true(cache_rel_inside("nar/%61bc.nar.xz"));
    assert_false(cache_rel_inside(""));
    assert_false(cache_rel_inside("../x"));
    assert_false(cache_rel_inside("nar/../../x"));
    assert_false(cache_rel_inside("nar/%2e%2e/%2e%2e/etc/passwd"));
    assert_false(cache_rel_inside("nar/%2E%2e%2f%2e%2E%2fx"));
    assert_false(cache_rel_inside("%2fetc/passwd"));
    assert_false(cache_rel_inside("/etc/passwd"));
    assert_false(cache_rel_inside("nar/a%00b"));
    assert_false(cache_rel_inside("nar/..\\..\\x"));
    assert_false(cache_rel_inside("nar/.."));
}

/* Credentials in a cache URL are used for requests and shown nowhere else. */
/* A file:// cache's NAR must stay inside it once links are resolved. */
static void test_cache_file_resolves_inside(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    _cleanup_free_ char *cdir = xasprintf("%s/c", tmp);
    _cleanup_free_ char *nar = xasprintf("%s/c/nar", tmp);
    _cleanup_free_ char *secret = xasprintf("%s/secret", tmp);
    assert_int_equal(mkdir(cdir, 0755), 0);
    assert_int_equal(mkdir(nar, 0755), 0);
    close(open(secret, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    _cleanup_free_ char *in = xasprintf("%s/c/nar/in.nar", tmp);
    close(open(in, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    _cleanup_free_ char *out = xasprintf("%s/c/nar/out.nar", tmp);
    assert_int_equal(symlink(secret, out), 0);
    _cleanup_free_ char *up = xasprintf("%s/c/nar/up", tmp);
    assert_int_equal(symlink("../..", up), 0);

    _cleanup_free_ char *url = xasprintf("file://%s", cdir);
    struct cache c;
    assert_int_equal(cache_init(&c, url, 0, NULL), 0);
    assert_true(cache_file_resolves_inside(&c, "nar/in.nar"));
    assert_true(cache_file_resolves_inside(&c, "nar/in.nar?x=1"));
    assert_true(cache_file_resolves_inside(&c, "nar/missing.nar"));
    assert_false(cache_file_resolves_inside(&c, "nar/out.nar"));
    assert_false(cache_file_resolves_inside(&c, "nar/up/secret"));
    cache_release(&c);

    assert_int_equal(cache_init(&c, "https://x.org", 0, NULL), 0);
    assert_true(cache_file_resolves_inside(&c, "nar/out.nar"));
    cache_release(&c);
    td_rmtree(tmp);
    free(tmp);
}

static void test_cache_url_credentials_are_redacted(void **state)
{
    (void)state;
    struct cache c;
    struct rx_error *err = NULL;
    assert_int_equal(cache_init(&c, "https://me:s3cret@x.org/sub/?priority=4", 0, &err), 0);
    assert_string_equal(c.url, "https://x.org/sub");
    assert_int_equal(c.priority, 4);
    char *u = cache_file_url(&c, "nix-cache-info");
    assert_string_equal(u, "https://me:s3cret@x.org/sub/nix-cache-info");
    free(u);
    cache_release(&c);
    assert_int_equal(cache_init(&c, "http://tok@[::1]:80", 0, &err), 0);
    assert_string_equal(c.url, "http://[::1]:80");
    cache_release(&c);
    /* An '@' after the host is part of the path. */
    assert_int_equal(cache_init(&c, "https://x.org/a@b", 0, &err), 0);
    assert_string_equal(c.url, "https://x.org/a@b");
    u = cache_file_url(&c, "n");
    assert_string_equal(u, "https://x.org/a@b/n");
    free(u);
    cache_release(&c);
    static const char *const bad[] = {"https://me:s3cret@x.org/#f", "https://me:s3cret@x.org?priority=x",
                                      "https://me:s3cret@x.org/a\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(cache_init(&c, bad[i], 0, &err), -1);
        if (strstr(err->msg, "s3cret") || strstr(err->msg, "me:") || !strstr(err->msg, "https://x.org"))
            fail_msg("'%s': %s", bad[i], err->msg);
        rx_error_clear(&err);
    }
    char *r = cache_url_redact("https://me:s3cret@x.org/nar/a@b.nar");
    assert_string_equal(r, "https://x.org/nar/a@b.nar");
    free(r);
    r = cache_url_redact("file:///srv/a@b");
    assert_string_equal(r, "file:///srv/a@b");
    free(r);
}

static void test_cache_info(void **state)
{
    (void)state;
    struct cache c;
    char *msg = NULL;
    assert_int_equal(cache_init(&c, "https://cache.nixos.org", 0, NULL), 0);
    assert_int_equal(apply(&c, "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n", NULL), 0);
    assert_int_equal(c.priority, 40);
    /* Nix's own file:// cache writes just the StoreDir line. */
    assert_int_equal(apply(&c, "StoreDir: /nix/store\n", NULL), 0);
    assert_int_equal(apply(&c, "StoreDir:/nix/store\r\nPriority:  7 \r\n", NULL), 0);
    assert_int_equal(c.priority, 7);
    assert_int_equal(apply(&c, "junk line\nStoreDir: /nix/store\nUnknown: x\n", NULL), 0);
    assert_int_equal(apply(&c, "StoreDir: /gnu/store\n", &msg), -1);
    assert_non_null(strstr(msg, "is for store dir '/gnu/store', not /nix/store"));
    free(msg);
    assert_int_equal(apply(&c, "StoreDir: /nix/store/\n", NULL), -1);
    assert_int_equal(apply(&c, "Priority: 10\n", &msg), -1);
    assert_non_null(strstr(msg, "no StoreDir"));
    free(msg);
    assert_int_equal(apply(&c, "<html>not a cache</html>", NULL), -1);
    assert_int_equal(apply(&c, "StoreDir: /nix/store\nPriority: ten\n", NULL), -1);
    cache_release(&c);

    /* The URL's priority wins over the file's. */
    assert_int_equal(cache_init(&c, "https://x.org?priority=99", 0, NULL), 0);
    assert_int_equal(apply(&c, "StoreDir: /nix/store\nPriority: 1\n", NULL), 0);
    assert_int_equal(c.priority, 99);
    cache_release(&c);
}

static void test_cache_sort_is_stable(void **state)
{
    (void)state;
    const char *urls[] = {"https://a.org", "https://b.org?priority=40", "https://c.org",
                          "https://d.org?priority=10", "https://e.org?priority=40"};
    struct cache cs[5];
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(cache_init(&cs[i], urls[i], i, NULL), 0);
    cache_sort(cs, 5);
    const char *want[] = {"https://a.org", "https://c.org", "https://d.org", "https://b.org",
                          "https://e.org"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(cs[i].url, want[i]);
        cache_release(&cs[i]);
    }
}

/* ---- config files ---- */

struct seen {
    char text[2048];
};

static int record(void *ctx, const char *name, const char *value, const char *file,
                  unsigned line, struct rx_error **err)
{
    (void)file;
    (void)err;
    struct seen *s = ctx;
    size_t l = strlen(s->text);
    snprintf(s->text + l, sizeof s->text - l, "%s=%s@%u;", name, value, line);
    return 0;
}

static void test_conf_parse(void **state)
{
    (void)state;
    struct seen s = {""};
    const char *text = "# a comment\n"
                       "\n"
                       "substituters = https://a.org https://b.org   # trailing comment\n"
                       "  store=/tmp/x\n"
                       "empty =\n"
                       "trusted-public-keys = k1:AAAA k2:BBBB\r\n";
    assert_int_equal(conf_parse(text, strlen(text), "t.conf", record, &s, NULL), 0);
    assert_string_equal(s.text, "substituters=https://a.org https://b.org@3;store=/tmp/x@4;"
                                "empty=@5;trusted-public-keys=k1:AAAA k2:BBBB@6;");

    struct rx_error *err = NULL;
    const char *bad = "ok = 1\nthis line has no equals sign\n";
    assert_int_equal(conf_parse(bad, strlen(bad), "t.conf", record, &s, &err), -1);
    assert_string_equal(err->msg, "t.conf:2: expected 'name = value'");
    rx_error_clear(&err);
    const char *bad2 = "two words = 1\n";
    assert_int_equal(conf_parse(bad2, strlen(bad2), "t.conf", record, &s, &err), -1);
    assert_non_null(strstr(err->msg, "bad setting name"));
    rx_error_clear(&err);
}

static void test_conf_include(void **state)
{
    (void)state;
    char *dir = td_tmpdir();
    char *main_conf = xasprintf("%s/main.conf", dir);
    char *inc = xasprintf("%s/inc.conf", dir);
    FILE *f = fopen(main_conf, "w");
    fprintf(f, "a = 1\ninclude inc.conf\n!include missing.conf\nb = 2\n");
    fclose(f);
    f = fopen(inc, "w");
    fprintf(f, "c = 3\n");
    fclose(f);
    struct seen s = {""};
    struct rx_error *err = NULL;
    if (conf_parse_file(main_conf, 0, record, &s, &err) < 0)
        fail_msg("%s", err->msg);
    assert_string_equal(s.text, "a=1@1;c=3@1;b=2@4;");

    /* A missing plain include is an error; so is a missing file unless optional. */
    f = fopen(main_conf, "w");
    fprintf(f, "include nope.conf\n");
    fclose(f);
    assert_int_equal(conf_parse_file(main_conf, 0, record, &s, &err), -1);
    assert_non_null(strstr(err->msg, "nope.conf"));
    rx_error_clear(&err);
    char *missing = xasprintf("%s/absent.conf", dir);
    assert_int_equal(conf_parse_file(missing, 1, record, &s, NULL), 0);
    assert_int_equal(conf_parse_file(missing, 0, record, &s, NULL), -1);

    /* Self-inclusion stops at the depth limit. */
    f = fopen(main_conf, "w");
    fprintf(f, "include main.conf\n");
    fclose(f);
    assert_int_equal(conf_parse_file(main_conf, 0, record, &s, &err), -1);
    assert_non_null(strstr(err->msg, "nested too deeply"));
    rx_error_clear(&err);

    free(missing);
    free(main_conf);
    free(inc);
    td_rmtree(dir);
    free(dir);
}

static void test_host_key(void **state)
{
    (void)state;
    char k[HOST_KEY_MAX + 1];
    assert_int_equal(host_key("https://Cache.Example.ORG/nix?x#y", k), 0);
    assert_string_equal(k, "https://cache.example.org");
    /* Credentials are never part of the key (it is written to a file). */
    assert_int_equal(host_key("HTTP://user:s3cr%40t@Host:8080/c", k), 0);
    assert_string_equal(k, "http://host:8080");
    assert_int_equal(host_key("http://a@b@c/x", k), 0);
    assert_string_equal(k, "http://c");
    assert_int_equal(host_key("no-scheme/x", k), -1);
    assert_int_equal(host_key("://host", k), -1);
    assert_int_equal(host_key("http:///path", k), -1);
    assert_int_equal(host_key("http://user@/path", k), -1);
    assert_int_equal(host_key("http://ho st/", k), -1);
    assert_int_equal(host_key("http://h\x01st/", k), -1);
    char *longurl = xmalloc(HOST_KEY_MAX + 16);
    memset(longurl, 'a', HOST_KEY_MAX + 15);
    memcpy(longurl, "http://", 7);
    longurl[HOST_KEY_MAX + 15] = '\0';
    assert_int_equal(host_key(longurl, k), -1);
    free(longurl);
}

static void test_host_notes_parse(void **state)
{
    (void)state;
    int64_t now = 1800000000;
    const char *text = "http://a:1 12 1799999000\n"
                       "garbage\n"
                       "http://b 0 1799999000\n"           /* no connections */
                       "http://c 99999 1799999000\n"       /* absurd */
                       "http://d -3 1799999000\n"
                       "http://e 5 -1\n"
                       "http://f 5 1799999000 extra\n"
                       "HTTP://G 5 1799999000\n"          /* not as written */
                       "http://u:p@h 5 1799999000\n"      /* credentials: not a key */
                       "http://old 9 1000\n"                /* too old to use */
                       "http://a:1 3 1799990000\n"          /* an older note of a */
                       "http://z 7 1799999999";             /* no final newline */
    struct host_notes h;
    host_notes_parse(&h, text, strlen(text));
    assert_int_equal(host_notes_get(&h, "http://a:1", now), 12);
    assert_int_equal(host_notes_get(&h, "http://z", now), 7);
    assert_int_equal(host_notes_get(&h, "http://old", now), 0);
    assert_int_equal(host_notes_get(&h, "http://missing", now), 0);
    for (const char *k = "bcdefgh"; *k; k++) {
        char key[16];
        snprintf(key, sizeof key, "http://%c", *k);
        assert_int_equal(host_notes_get(&h, key, now), 0);
    }
    /* A note from the future (a clock set back) is not believed. */
    host_notes_set(&h, "http://future", 9, now + 10 * 24 * 3600);
    assert_int_equal(host_notes_get(&h, "http://future", now), 0);
    /* set replaces, and refuses what it could not read back. */
    host_notes_set(&h, "http://a:1", 20, now);
    assert_int_equal(host_notes_get(&h, "http://a:1", now), 20);
    host_notes_set(&h, "http://x y", 4, now);
    host_notes_set(&h, "http://q", 0, now);
    assert_int_equal(host_notes_get(&h, "http://q", now), 0);
    /* The text drops what is older than a month, newest first, and reads back the same. */
    char *out = host_notes_format(&h, now);
    assert_null(strstr(out, "http://old"));
    assert_int_equal(strncmp(out, "http://future 9 ", 16), 0);
    struct host_notes back;
    host_notes_parse(&back, out, strlen(out));
    assert_int_equal(host_notes_get(&back, "http://a:1", now), 20);
    assert_int_equal(host_notes_get(&back, "http://z", now), 7);
    free(out);
    host_notes_release(&back);
    host_notes_release(&h);
}

static void test_host_notes_save(void **state)
{
    (void)state;
    char *dir = td_tmpdir();
    char *file = xasprintf("%s/sub/dir/hosts", dir);
    int64_t now = 1800000000;
    /* A missing file is no notes; saving creates its directory. */
    struct host_notes h;
    host_notes_load(&h, file);
    assert_int_equal(h.n, 0);
    struct host_notes news = { 0 };
    host_notes_set(&news, "http://a", 10, now);
    assert_int_equal(host_notes_save(file, &news, now), 0);
    host_notes_release(&news);
    /* Another fetch's notes merge with what the file has by then. */
    host_notes_set(&news, "http://b", 4, now + 1);
    assert_int_equal(host_notes_save(file, &news, now + 1), 0);
    host_notes_release(&news);
    host_notes_load(&h, file);
    assert_int_equal(host_notes_get(&h, "http://a", now), 10);
    assert_int_equal(host_notes_get(&h, "http://b", now), 4);
    host_notes_release(&h);
    /* At most HOST_NOTES_MAX hosts are kept, the most recent. */
    for (int i = 0; i < HOST_NOTES_MAX + 10; i++) {
        char key[32];
        snprintf(key, sizeof key, "http://h%d", i);
        host_notes_set(&news, key, 5, now + 10 + i);
    }
    assert_int_equal(host_notes_save(file, &news, now + 400), 0);
    host_notes_release(&news);
    host_notes_load(&h, file);
    assert_int_equal(h.n, HOST_NOTES_MAX);
    assert_int_equal(host_notes_get(&h, "http://a", now + 400), 0);
    assert_int_equal(host_notes_get(&h, "http://h265", now + 400), 5);
    host_notes_release(&h);
    /* A file that is not text (or is a directory) gives no notes, and no crash. */
    FILE *f = fopen(file, "w");
    fwrite("\0\xff\n\n http://a 3 4\n", 1, 19, f);
    fclose(f);
    host_notes_load(&h, file);
    assert_int_equal(h.n, 0);
    host_notes_release(&h);
    char *d2 = xasprintf("%s/sub", dir);
    host_notes_load(&h, d2);
    assert_int_equal(h.n, 0);
    host_notes_release(&h);
    free(d2);
    free(file);
    td_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_urls),
        cmocka_unit_test(test_cache_rel_inside_refuses_escapes),
        cmocka_unit_test(test_cache_file_resolves_inside),
        cmocka_unit_test(test_cache_url_credentials_are_redacted),
        cmocka_unit_test(test_cache_info),
        cmocka_unit_test(test_cache_sort_is_stable),
        cmocka_unit_test(test_conf_parse),
        cmocka_unit_test(test_conf_include),
        cmocka_unit_test(test_host_key),
        cmocka_unit_test(test_host_notes_parse),
        cmocka_unit_test(test_host_notes_save),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
