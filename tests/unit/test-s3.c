#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-helpers.h"

#include "cache.h"
#include "s3.h"
#include "util-mem.h"

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID",           "AWS_SECRET_ACCESS_KEY",
                                       "AWS_SESSION_TOKEN",           "AWS_PROFILE",
                                       "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
    setenv("HOME", "/nonexistent-runix-home", 1);
}

static struct s3_cache *parsed(const char *url)
{
    struct s3_cache *s = NULL;
    struct rx_error *err = NULL;
    if (s3_cache_new(url, url, &s, &err) < 0)
        fail_msg("%s: %s", url, err->msg);
    return s;
}

static void bad(const char *url, const char *msg)
{
    struct s3_cache *s = NULL;
    struct rx_error *err = NULL;
    assert_int_equal(s3_cache_new(url, url, &s, &err), -1);
    assert_null(s);
    if (!strstr(err->msg, msg))
        fail_msg("%s: got '%s', wanted '%s'", url, err->msg, msg);
    rx_error_free(err);
}

static void test_s3_urls(void **state)
{
    (void)state;
    clear_env();
    /* Nix's defaults: us-east-1, https, AWS virtual-hosted addressing. */
    struct s3_cache *s = parsed("s3://my-cache");
    assert_string_equal(s->region, "us-east-1");
    assert_string_equal(s->scheme, "https");
    assert_null(s->endpoint);
    assert_string_equal(s->base, "https://my-cache.s3.us-east-1.amazonaws.com");
    char *u = s3_cache_url(s);
    assert_string_equal(u, "s3://my-cache");
    free(u);
    u = s3_sigv4_provider(s);
    assert_string_equal(u, "aws:amz:us-east-1:s3");
    free(u);
    assert_null(s->access_key);
    assert_non_null(strstr(s->cred_source, "anonymous"));
    s3_cache_free(s);
    /* A region; a bucket that cannot be a host name goes path-style. */
    s = parsed("s3://my.dotted.cache?region=eu-west-1");
    assert_string_equal(s->base, "https://s3.eu-west-1.amazonaws.com/my.dotted.cache");
    s3_cache_free(s);
    /* A custom endpoint is path-style, with the scheme given or its own. */
    s = parsed("s3://nix?endpoint=minio.lan:9000&scheme=http&region=garage&priority=3&trusted=1");
    assert_string_equal(s->base, "http://minio.lan:9000/nix");
    u = s3_cache_url(s);
    assert_string_equal(u, "s3://nix?region=garage&endpoint=minio.lan:9000&scheme=http");
    free(u);
    s3_cache_free(s);
    s = parsed("s3://nix?endpoint=http%3A%2F%2F127.0.0.1%3A9000%2F");
    assert_string_equal(s->base, "http://127.0.0.1:9000/nix");
    s3_cache_free(s);
    s = parsed("s3://nix/?endpoint=https://r2.example");
    assert_string_equal(s->base, "https://r2.example/nix");
    s3_cache_free(s);

    bad("s3://", "is not a bucket name");
    bad("s3://a/b/c", "names a bucket only");
    bad("s3://b?scheme=ftp", "not https or http");
    bad("s3://b?region=eu west", "not a region name");
    bad("s3://b?endpoint=host/path", "not HOST or HOST:PORT");
    bad("s3://b?endpoint=a%0ab", "control character");
    bad("s3://b?profile=", "not a profile name");
    bad("s3://b#frag", "fragment");
}

static void test_s3_cache_init(void **state)
{
    (void)state;
    clear_env();
    struct cache c;
    struct rx_error *err = NULL;
    assert_int_equal(cache_init(&c, "s3://nix?endpoint=127.0.0.1:9000&scheme=http&priority=7", 0,
                                &err), 0);
    assert_string_equal(c.url, "s3://nix?endpoint=127.0.0.1:9000&scheme=http");
    assert_int_equal(c.priority, 7);
    assert_true(c.priority_from_url);
    char *u = cache_file_url(&c, "abc.narinfo");
    assert_string_equal(u, "http://127.0.0.1:9000/nix/abc.narinfo");
    assert_ptr_equal(cache_find_s3(&c, 1, u), &c);
    assert_null(cache_find_s3(&c, 1, "http://127.0.0.1:9000/nixother/abc.narinfo"));
    free(u);
    cache_release(&c);
}

static void test_s3_profile_parse(void **state)
{
    (void)state;
    static const char creds[] = "# keys\n"
                                "[default]\n"
                                "aws_access_key_id = DEF\n"
                                "aws_secret_access_key=defsecret\n"
                                "\n"
                                "[ci]\n"
                                "  ; a comment\n"
                                "aws_access_key_id = CI  \r\n"
                                "aws_secret_access_key = ci/secret+x=\n"
                                "aws_session_token = tok\n"
                                "[other]\n"
                                "aws_access_key_id = OTHER\n";
    char *id, *key, *tok;
    assert_int_equal(s3_profile_parse(creds, strlen(creds), "ci", false, &id, &key, &tok), 1);
    assert_string_equal(id, "CI");
    assert_string_equal(key, "ci/secret+x=");
    assert_string_equal(tok, "tok");
    free(id), free(key), free(tok);
    assert_int_equal(s3_profile_parse(creds, strlen(creds), "default", false, &id, &key, &tok), 1);
    assert_string_equal(id, "DEF");
    assert_null(tok);
    free(id), free(key), free(tok);
    assert_int_equal(s3_profile_parse(creds, strlen(creds), "nope", false, &id, &key, &tok), 0);
    assert_null(id);
    /* The config file: [profile NAME], [default] as it is, nested settings skipped. */
    static const char conf[] = "[default]\nregion=us-east-1\n"
                               "[ci]\naws_access_key_id = NOT-A-PROFILE\n"
                               "[profile ci]\n"
                               "s3 =\n"
                               "  aws_access_key_id = NESTED\n"
                               "aws_access_key_id=CONF\n"
                               "aws_secret_access_key=confsecret";
    assert_int_equal(s3_profile_parse(conf, strlen(conf), "ci", true, &id, &key, &tok), 1);
    assert_string_equal(id, "CONF");
    assert_string_equal(key, "confsecret");
    free(id), free(key), free(tok);
    assert_int_equal(s3_profile_parse(conf, strlen(conf), "default", true, &id, &key, &tok), 1);
    assert_null(id);
    free(key), free(tok);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_s3_credential_chain(void **state)
{
    (void)state;
    clear_env();
    char *dir = td_tmpdir();
    char *cred = xasprintf("%s/credentials", dir), *conf = xasprintf("%s/config", dir);
    write_file(cred, "[default]\naws_access_key_id=FILEDEF\naws_secret_access_key=fd\n"
                     "[ci]\naws_access_key_id=FILECI\naws_secret_access_key=fc\n"
                     "[half]\naws_access_key_id=HALF\n");
    write_file(conf, "[profile conf]\naws_access_key_id=CONF\naws_secret_access_key=c\n"
                     "aws_session_token=ctok\n[profile sso]\nsso_session = corp\n");
    setenv("AWS_SHARED_CREDENTIALS_FILE", cred, 1);
    setenv("AWS_CONFIG_FILE", conf, 1);

    /* The environment first. */
    setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envtok", 1);
    struct s3_cache *s = parsed("s3://b");
    assert_string_equal(s->access_key, "ENVID");
    assert_string_equal(s->session_token, "envtok");
    assert_non_null(strstr(s->cred_source, "environment"));
    assert_null(strstr(s->cred_source, "envsecret"));
    s3_cache_free(s);
    /* profile= names the profile, as in Nix: the environment is not used. */
    s = parsed("s3://b?profile=ci");
    assert_string_equal(s->access_key, "FILECI");
    assert_null(s->session_token);
    assert_non_null(strstr(s->cred_source, "profile 'ci' in "));
    s3_cache_free(s);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    bad("s3://b", "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
    unsetenv("AWS_ACCESS_KEY_ID");

    /* Then AWS_PROFILE, else default; the credentials file before the config file. */
    s = parsed("s3://b");
    assert_string_equal(s->access_key, "FILEDEF");
    s3_cache_free(s);
    setenv("AWS_PROFILE", "conf", 1);
    s = parsed("s3://b");
    assert_string_equal(s->access_key, "CONF");
    assert_string_equal(s->session_token, "ctok");
    s3_cache_free(s);
    setenv("AWS_PROFILE", "missing", 1);
    bad("s3://b", "AWS profile 'missing' is in neither");
    unsetenv("AWS_PROFILE");
    bad("s3://b?profile=half", "has no aws_access_key_id and aws_secret_access_key");
    bad("s3://b?profile=sso", "has no aws_access_key_id and aws_secret_access_key");

    /* No file, no environment: anonymous. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    s = parsed("s3://b");
    assert_null(s->access_key);
    s3_cache_free(s);
    /* A file that cannot be read (a directory) is an error, not anonymous. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", dir, 1);
    bad("s3://b", "cannot read AWS credentials");

    unlink(cred);
    unlink(conf);
    td_rmtree(dir);
    free(dir);
    free(cred);
    free(conf);
    clear_env();
}

static void test_s3_errors(void **state)
{
    (void)state;
    char code[64], msg[256];
    static const char doc[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                              "<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
                              "&lt;signature&gt; &amp; more\nwrong</Message>"
                              "<RequestId>1</RequestId></Error>";
    assert_true(s3_error_parse(doc, strlen(doc), code, sizeof code, msg, sizeof msg));
    assert_string_equal(code, "SignatureDoesNotMatch");
    assert_string_equal(msg, "The request <signature> & more wrong");
    assert_false(s3_error_is_missing(403, code));
    assert_non_null(s3_error_hint(code));
    /* Cut to fit. */
    char small[8];
    assert_true(s3_error_parse(doc, strlen(doc), code, sizeof code, small, sizeof small));
    assert_string_equal(small, "The req");
    /* Not an error document, or a Code that is not a word. */
    assert_false(s3_error_parse("<html>", 6, code, sizeof code, msg, sizeof msg));
    assert_false(s3_error_parse("<Code>a b</Code>", 16, code, sizeof code, msg, sizeof msg));
    assert_false(s3_error_parse("<Code>unterminated", 18, code, sizeof code, msg, sizeof msg));
    assert_false(s3_error_parse("", 0, code, sizeof code, msg, sizeof msg));
    /* A missing key: 404, or 403 AccessDenied (or no document at all). */
    assert_true(s3_error_is_missing(404, "NoSuchKey"));
    assert_true(s3_error_is_missing(403, "AccessDenied"));
    assert_true(s3_error_is_missing(403, NULL));
    assert_false(s3_error_is_missing(403, "RequestTimeTooSkewed"));
    assert_false(s3_error_is_missing(503, "SlowDown"));
    assert_string_equal(s3_error_hint("RequestTimeTooSkewed"), "check this machine's clock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_urls),
        cmocka_unit_test(test_s3_cache_init),
        cmocka_unit_test(test_s3_profile_parse),
        cmocka_unit_test(test_s3_credential_chain),
        cmocka_unit_test(test_s3_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
