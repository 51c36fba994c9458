/* CLI settings resolution: flags over the environment over the config file over defaults. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"

#include "cli-settings.h"
#include "cli.h"
#include "crypto-hash.h"
#include "util-mem.h"

#include "banned.h"

/* main.c's, which the test does not link. */
const char *cli_progname = "runix";
mode_t cli_umask = 022;

#define KEY_A "a-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="
#define KEY_B "b-1:mB9FSh9qf2dCimDSUo8Zy7bkq5CX+/rkCWyvRCYg3Fs="
#define KEY_C "c-1:50KleASUx2rJIGmAGc8V1D+Xam/oscT39zWy1VCujUA="

static const char *const env_vars[] = {
    "RUNIX_STORE",     "RUNIX_CACHES",  "RUNIX_TRUSTED_KEYS", "RUNIX_CONFIG",
    "XDG_CONFIG_HOME", "XDG_DATA_HOME", "NIX_SSL_CERT_FILE",  "SSL_CERT_FILE",
};

/* Each test: a fresh HOME, none of the variables that change the result. */
static int setup(void **state)
{
    char *home = td_tmpdir();
    setenv("HOME", home, 1);
    for (size_t i = 0; i < ARRAY_SIZE(env_vars); i++)
        unsetenv(env_vars[i]);
    *state = home;
    return 0;
}

static int teardown(void **state)
{
    td_rmtree(*state);
    free(*state);
    return 0;
}

/* Write the default config file, $HOME/.config/runix/runix.conf. */
static void write_conf(const char *home, const char *text)
{
    _cleanup_free_ char *dir = xasprintf("%s/.config/runix", home);
    _cleanup_free_ char *mk = xasprintf("mkdir -p '%s'", dir);
    assert_int_equal(system(mk), 0);
    _cleanup_free_ char *path = xasprintf("%s/runix.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void finish_ok(struct cli_settings *s)
{
    struct rx_error *err = NULL;
    if (cli_settings_finish(s, &err) < 0)
        fail_msg("cli_settings_finish: %s", err->msg);
}

/* cli_settings_finish() fails with an error containing want. */
static void finish_fails(struct cli_settings *s, const char *want)
{
    struct rx_error *err = NULL;
    assert_int_equal(cli_settings_finish(s, &err), -1);
    assert_non_null(err);
    if (!strstr(err->msg, want))
        fail_msg("error '%s' does not contain '%s'", err->msg, want);
    rx_error_free(err);
}

/* What check() compares: the store, or the caches' URLs or the keys' names joined by spaces. */
enum field { F_STORE, F_CACHES, F_KEYS };

/* Resolve with the flags given as (option code, argument) pairs and check one field. */
static void check(enum field f, const int *opts, const char *const *args, size_t n,
                  const char *want)
{
    struct cli_settings s = {0};
    for (size_t i = 0; i < n; i++)
        assert_int_equal(cli_settings_option(&s, opts[i], args[i]), 1);
    finish_ok(&s);
    char *got = xstrdup(f == F_STORE ? s.store : "");
    size_t count = f == F_CACHES ? s.ncaches : f == F_KEYS ? s.keys.n : 0;
    for (size_t i = 0; i < count; i++) {
        const char *item = f == F_CACHES ? s.caches[i].url : s.keys.keys[i].name;
        char *next = xasprintf("%s%s%s", got, i ? " " : "", item);
        free(got);
        got = next;
    }
    assert_string_equal(got, want);
    free(got);
    cli_settings_release(&s);
}

/* check() with at most one flag: opt with arg, unless arg is NULL. */
static void check1(enum field f, int opt, const char *arg, const char *want)
{
    check(f, &opt, &arg, arg ? 1 : 0, want);
}

static void test_cli_settings_store_precedence(void **state)
{
    const char *home = *state;
    _cleanup_free_ char *xdg_default = xasprintf("%s/.local/share/runix", home);
    check1(F_STORE, OPT_STORE, NULL, xdg_default);
    setenv("XDG_DATA_HOME", "/xdg-data", 1);
    check1(F_STORE, OPT_STORE, NULL, "/xdg-data/runix");
    write_conf(home, "store = /from-conf\n");
    check1(F_STORE, OPT_STORE, NULL, "/from-conf");
    setenv("RUNIX_STORE", "/from-env", 1);
    check1(F_STORE, OPT_STORE, NULL, "/from-env");
    check1(F_STORE, OPT_STORE, "/from-flag", "/from-flag");
    /* An empty $RUNIX_STORE counts as unset. */
    setenv("RUNIX_STORE", "", 1);
    check1(F_STORE, OPT_STORE, NULL, "/from-conf");
}

static void test_cli_settings_store_needs_a_home(void **state)
{
    (void)state;
    unsetenv("HOME");
    struct cli_settings s = {0};
    finish_fails(&s, "no store location");
    cli_settings_release(&s);
    check1(F_STORE, OPT_STORE, "/from-flag", "/from-flag");
}

static void test_cli_settings_cache_flags(void **state)
{
    check(F_CACHES, NULL, NULL, 0, DEFAULT_CACHE);
    write_conf(*state, "substituters = file:///a file:///b\n"
                       "extra-substituters = file:///c\n");
    check(F_CACHES, NULL, NULL, 0, "file:///a file:///b file:///c");
    /* --cache replaces the configured list, extras included. */
    static const int cache[] = {OPT_CACHE, OPT_CACHE};
    static const char *const cache_args[] = {"file:///d", "file:///e"};
    check(F_CACHES, cache, cache_args, 2, "file:///d file:///e");
    /* --extra-cache adds, and each URL comes once. */
    static const int extra[] = {OPT_EXTRA_CACHE, OPT_EXTRA_CACHE};
    static const char *const extra_args[] = {"file:///e", "file:///a"};
    check(F_CACHES, extra, extra_args, 2, "file:///a file:///b file:///c file:///e");
    static const int both[] = {OPT_CACHE, OPT_EXTRA_CACHE};
    static const char *const both_args[] = {"file:///d", "file:///e"};
    check(F_CACHES, both, both_args, 2, "file:///d file:///e");
}

static void test_cli_settings_env_caches(void **state)
{
    write_conf(*state, "substituters = file:///a\nextra-substituters = file:///c\n");
    setenv("RUNIX_CACHES", "file:///x  file:///y", 1);
    check(F_CACHES, NULL, NULL, 0, "file:///x file:///y");
    static const int extra[] = {OPT_EXTRA_CACHE};
    static const char *const extra_args[] = {"file:///e"};
    check(F_CACHES, extra, extra_args, 1, "file:///x file:///y file:///e");
    static const int cache[] = {OPT_CACHE};
    static const char *const cache_args[] = {"file:///d"};
    check(F_CACHES, cache, cache_args, 1, "file:///d");
    /* Set but empty: no cache at all, not the default. */
    setenv("RUNIX_CACHES", "", 1);
    check(F_CACHES, NULL, NULL, 0, "");
}

static void test_cli_settings_trusted_keys(void **state)
{
    check1(F_KEYS, OPT_TRUSTED_KEY, NULL, "cache.nixos.org-1");
    check1(F_KEYS, OPT_TRUSTED_KEY, KEY_C, "cache.nixos.org-1 c-1");
    write_conf(*state, "trusted-public-keys = " KEY_A "\n"
                       "extra-trusted-public-keys = " KEY_B "\n");
    check1(F_KEYS, OPT_TRUSTED_KEY, NULL, "a-1 b-1");
    check1(F_KEYS, OPT_TRUSTED_KEY, KEY_C, "a-1 b-1 c-1");
    /* $RUNIX_TRUSTED_KEYS replaces the config file's keys, extras included. */
    setenv("RUNIX_TRUSTED_KEYS", KEY_C, 1);
    check1(F_KEYS, OPT_TRUSTED_KEY, NULL, "c-1");
    check1(F_KEYS, OPT_TRUSTED_KEY, KEY_A, "c-1 a-1");
}

static void test_cli_settings_bad_key(void **state)
{
    write_conf(*state, "trusted-public-keys = nonsense\n");
    struct cli_settings s = {0};
    finish_fails(&s, "runix.conf: trusted key 'nonsense'");
    cli_settings_release(&s);
    memset(&s, 0, sizeof s);
    assert_int_equal(cli_settings_option(&s, OPT_TRUSTED_KEY, "x:y"), 1);
    write_conf(*state, "");
    finish_fails(&s, "bad --trusted-key 'x:y'");
    cli_settings_release(&s);
    setenv("RUNIX_TRUSTED_KEYS", "bad", 1);
    memset(&s, 0, sizeof s);
    finish_fails(&s, "RUNIX_TRUSTED_KEYS: trusted key 'bad'");
    cli_settings_release(&s);
}

static void test_cli_settings_numbers(void **state)
{
    write_conf(*state, "http-connections = 7\nconnect-timeout = 0\n"
                       "stalled-download-timeout = 30\ndownload-attempts = 3\n"
                       "narinfo-timeout = 4\n");
    struct cli_settings s = {0};
    finish_ok(&s);
    assert_int_equal(s.http_connections, 7);
    assert_int_equal(s.connect_timeout, 0);
    assert_int_equal(s.stalled_timeout, 30);
    assert_int_equal(s.attempts, 3);
    assert_int_equal(s.narinfo_timeout, 4);
    cli_settings_release(&s);

    static const struct {
        const char *conf, *want;
    } bad[] = {
        {"http-connections = lots\n",
         "runix.conf:1: 'http-connections' must be a number from 0 to 1024"},
        {"\nhttp-connections = 1025\n", "runix.conf:2: 'http-connections'"},
        {"connect-timeout = -1\n", "'connect-timeout' must be a number from 0 to 86400"},
        {"stalled-download-timeout = 0\n", "'stalled-download-timeout' must be a number from 1"},
        {"narinfo-timeout = 0\n", "'narinfo-timeout' must be a number from 1 to 86400"},
        {"download-attempts = 3x\n", "'download-attempts' must be a number from 1 to 100"},
        {"download-attempts =\n", "'download-attempts'"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        write_conf(*state, bad[i].conf);
        memset(&s, 0, sizeof s);
        finish_fails(&s, bad[i].want);
        cli_settings_release(&s);
    }
}

static void test_cli_settings_runix_config(void **state)
{
    const char *home = *state;
    write_conf(home, "store = /from-default-conf\n");
    _cleanup_free_ char *other = xasprintf("%s/other.conf", home);
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    fputs("store = /from-other-conf\nsubstituters = file:///o\n", f);
    assert_int_equal(fclose(f), 0);
    setenv("RUNIX_CONFIG", other, 1);
    check1(F_STORE, OPT_STORE, NULL, "/from-other-conf");
    check(F_CACHES, NULL, NULL, 0, "file:///o");
    /* A missing default config file is fine; a missing $RUNIX_CONFIG is not. */
    _cleanup_free_ char *missing = xasprintf("%s/missing.conf", home);
    setenv("RUNIX_CONFIG", missing, 1);
    struct cli_settings s = {0};
    finish_fails(&s, "missing.conf");
    cli_settings_release(&s);
    unsetenv("RUNIX_CONFIG");
    write_conf(home, "");
    _cleanup_free_ char *conf = xasprintf("%s/.config/runix/runix.conf", home);
    assert_int_equal(unlink(conf), 0);
    _cleanup_free_ char *xdg_default = xasprintf("%s/.local/share/runix", home);
    check1(F_STORE, OPT_STORE, NULL, xdg_default);
}

/* '~' in the config file's store is $HOME; a relative one is the config file's directory's. */
static void test_cli_settings_store_conf_paths(void **state)
{
    const char *home = *state;
    _cleanup_free_ char *want = xasprintf("%s/st/x", home);
    write_conf(home, "store = ~/st//x/\n");
    check1(F_STORE, OPT_STORE, NULL, want);
    write_conf(home, "store = ~\n");
    check1(F_STORE, OPT_STORE, NULL, home);
    _cleanup_free_ char *rel = xasprintf("%s/.config/runix/st/../y", home);
    write_conf(home, "store = ./st/./../y\n");
    check1(F_STORE, OPT_STORE, NULL, rel);
    /* Only the config key: --store is the shell's to expand, so "~" there is a name. */
    assert_int_equal(chdir(home), 0);
    _cleanup_free_ char *lit = xasprintf("%s/~/z", home);
    check1(F_STORE, OPT_STORE, "~/z", lit);
    write_conf(home, "store = ~other/st\n");
    struct cli_settings s = {0};
    finish_fails(&s, "'~other/st' names another user's home");
    cli_settings_release(&s);
    write_conf(home, "store = ~/st\n");
    _cleanup_free_ char *conf = xasprintf("%s/.config/runix/runix.conf", home);
    setenv("RUNIX_CONFIG", conf, 1);
    setenv("HOME", "relative", 1);
    finish_fails(&s, "needs HOME");
    cli_settings_release(&s);
    setenv("HOME", home, 1);
    unsetenv("RUNIX_CONFIG");
}

/* A relative --store or RUNIX_STORE is the current directory's, made absolute at once. */
static void test_cli_settings_store_relative_to_cwd(void **state)
{
    const char *home = *state;
    _cleanup_free_ char *sub = xasprintf("%s/sub", home);
    assert_int_equal(mkdir(sub, 0755), 0);
    assert_int_equal(chdir(sub), 0);
    _cleanup_free_ char *want = xasprintf("%s/sub/flag", home);
    check1(F_STORE, OPT_STORE, "flag/", want);
    check1(F_STORE, OPT_STORE, ".//flag/.", want);
    _cleanup_free_ char *up = xasprintf("%s/sub/../env", home);
    setenv("RUNIX_STORE", "../env", 1);
    check1(F_STORE, OPT_STORE, NULL, up);
    check1(F_STORE, OPT_STORE, "/abs//x/", "/abs/x");
    check1(F_STORE, OPT_STORE, "/", "/");
    /* A config file named relatively: its store is beside it, seen from here. */
    unsetenv("RUNIX_STORE");
    FILE *f = fopen("c.conf", "w");
    assert_non_null(f);
    fputs("store = s\n", f);
    assert_int_equal(fclose(f), 0);
    setenv("RUNIX_CONFIG", "c.conf", 1);
    _cleanup_free_ char *beside = xasprintf("%s/sub/s", home);
    check1(F_STORE, OPT_STORE, NULL, beside);
    unsetenv("RUNIX_CONFIG");
    assert_int_equal(chdir("/"), 0);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_cli_settings_store_precedence), T(test_cli_settings_store_needs_a_home),
        T(test_cli_settings_cache_flags),      T(test_cli_settings_env_caches),
        T(test_cli_settings_trusted_keys),     T(test_cli_settings_bad_key),
        T(test_cli_settings_numbers),          T(test_cli_settings_runix_config),
        T(test_cli_settings_store_conf_paths), T(test_cli_settings_store_relative_to_cwd),
    };
    return cmocka_run_group_tests_name("cli-settings", tests, NULL, NULL);
}
