#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"

#include "store-gc.h"
#include "store-roots.h"
#include "store.h"
#include "util-mem.h"
#include "util-units.h"

#define P_LEAF "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define P_APP "/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"
#define P_MID "/nix/store/00000000000000000000000000000000-spec-mid-1.0"
#define P_OTHER "/nix/store/11111111111111111111111111111111-spec-other-1.0"

static void test_sizes(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(parse_size("1024", "t", &v, NULL), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(parse_size("500M", "t", &v, NULL), 0);
    assert_int_equal(v, 500ULL << 20);
    assert_int_equal(parse_size("2G", "t", &v, NULL), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_equal(parse_size("1.5K", "t", &v, NULL), 0);
    assert_int_equal(v, 1536);
    assert_int_equal(parse_size("3TiB", "t", &v, NULL), 0);
    assert_int_equal(v, 3ULL << 40);
    assert_int_equal(parse_size("18446744073709551615", "t", &v, NULL), 0);
    assert_int_equal(v, UINT64_MAX);
    static const char *const bad[] = {"", "x", "5Q", "-1", "1MM", "M", " 1", "99999999T"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct rx_error *err = NULL;
        assert_int_equal(parse_size(bad[i], "--max-freed", &v, &err), -1);
        assert_int_equal(err->code, RX_EUSAGE);
        assert_non_null(strstr(err->msg, "--max-freed"));
        rx_error_free(err);
    }
    char b[32];
    assert_string_equal(format_size(512, b), "512 bytes");
    assert_string_equal(format_size(3 << 20, b), "3.0 MiB");
}

static void test_durations(void **state)
{
    (void)state;
    int64_t v;
    static const struct { const char *s; int64_t want; } good[] = {
        {"45s", 45}, {"90m", 5400}, {"12h", 43200}, {"30d", 2592000}, {"2w", 1209600}, {"10", 10},
        {"1.5h", 5400},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        assert_int_equal(parse_duration(good[i].s, "t", &v, NULL), 0);
        assert_int_equal(v, good[i].want);
    }
    static const char *const bad[] = {"", "3x", "d", "-1d", "1dd"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(parse_duration(bad[i], "t", &v, NULL), -1);
}

static struct store_path sp(const char *s)
{
    struct store_path p;
    assert_int_equal(store_path_parse(s, strlen(s), &p, NULL), 0);
    return p;
}

/* A store path as a read-only tree, as a NAR unpacks: a directory with a file. */
static void put(const char *root, const char *path)
{
    char *d = xasprintf("%s%s", root, path), *f = xasprintf("%s/file", d);
    assert_int_equal(mkdir(d, 0755), 0);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fputs("x", fp);
    fclose(fp);
    assert_int_equal(chmod(f, 0444), 0);
    assert_int_equal(chmod(d, 0555), 0);
    free(f);
    free(d);
}

static bool exists(const char *root, const char *path)
{
    char *d = xasprintf("%s%s", root, path);
    struct stat st;
    bool r = lstat(d, &st) == 0;
    free(d);
    return r;
}

struct seen {
    char names[8][STORE_PATH_MAX + 1];
    size_t n;
};

static void on_path(void *ctx, const struct store_path *p, uint64_t size)
{
    (void)size;
    struct seen *s = ctx;
    assert_true(s->n < 8);
    store_path_format(p, s->names[s->n++]);
}

/* leaf <- mid <- app, and other; mid rooted. */
static struct store *make_store(const char *root)
{
    struct store *s;
    assert_int_equal(store_open(root, &s, NULL), 0);
    struct store_path leaf = sp(P_LEAF), mid = sp(P_MID), app = sp(P_APP), other = sp(P_OTHER);
    struct store_path mid_refs[] = {leaf}, app_refs[] = {mid, leaf, app};
    struct store_info infos[] = {
        {.path = leaf, .nar_size = 1},
        {.path = mid, .refs = mid_refs, .nrefs = 1, .nar_size = 10},
        {.path = app, .refs = app_refs, .nrefs = 3, .nar_size = 100},
        {.path = other, .nar_size = 1000},
    };
    put(root, P_LEAF);
    put(root, P_MID);
    put(root, P_APP);
    put(root, P_OTHER);
    assert_int_equal(store_register(s, infos, 4, NULL), 0);
    int rfd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(rfd >= 0);
    assert_int_equal(store_root_set(rfd, store_root(s), STORE_ROOT_MANUAL, "m", &mid, 1, NULL), 0);
    close(rfd);
    return s;
}

static void test_gc(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s = make_store(root);
    /* A lock file nobody holds, of a path that is not there: a killed fetch's. */
    char *stale = xasprintf("%s/nix/store/22222222222222222222222222222222-gone.lock", root);
    int sfd = open(stale, O_RDWR | O_CREAT, 0600);
    assert_true(sfd >= 0);
    close(sfd);
    struct seen seen = {0};
    struct store_gc_opts o = {.older_than = -1, .max_freed = STORE_GC_NO_LIMIT,
                              .keep_size = STORE_GC_NO_LIMIT, .dry_run = true,
                              .on_path = on_path, .ctx = &seen};
    struct store_gc_result res;
    struct rx_error *err = NULL;
    if (store_gc(s, &o, &res, &err) < 0)
        fail_msg("%s", err->msg);
    /* Both dead ones, neither referencing the other: by path. */
    assert_int_equal(res.npaths, 2);
    assert_int_equal(res.bytes, 1100);
    assert_string_equal(seen.names[0], P_OTHER);
    assert_string_equal(seen.names[1], P_APP);
    assert_true(exists(root, P_APP));

    assert_true(access(stale, F_OK) == 0); /* a dry run removes nothing */

    /* --max-freed 1: one path. */
    seen.n = 0;
    o.dry_run = false;
    o.max_freed = 1;
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 1);
    assert_false(exists(root, P_OTHER));
    assert_true(exists(root, P_APP));
    assert_false(access(stale, F_OK) == 0);
    free(stale);
    o.max_freed = STORE_GC_NO_LIMIT;
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 1);
    assert_false(exists(root, P_APP));
    assert_true(exists(root, P_MID) && exists(root, P_LEAF));
    struct store_path app = sp(P_APP), leaf = sp(P_LEAF);
    assert_int_equal(store_is_valid(s, &app, NULL), 0);
    char *last = xasprintf("%s/" STORE_LAST_GC, root);
    assert_true(access(last, F_OK) == 0);
    free(last);

    /* store delete: refused, naming referrer and root; then --force. */
    char *why = NULL;
    assert_int_equal(store_delete(s, &leaf, 1, false, false, NULL, NULL, &res, &why, NULL), 1);
    assert_non_null(strstr(why, "is referenced by '" P_MID "'"));
    free(why);
    struct store_path mid = sp(P_MID);
    assert_int_equal(store_delete(s, &mid, 1, false, false, NULL, NULL, &res, &why, NULL), 1);
    assert_non_null(strstr(why, "kept alive by the manual root 'm'"));
    free(why);
    seen.n = 0;
    assert_int_equal(store_delete(s, &leaf, 1, true, false, on_path, &seen, &res, &why, NULL), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], P_MID);
    assert_string_equal(seen.names[1], P_LEAF);
    assert_false(exists(root, P_MID) || exists(root, P_LEAF));
    assert_false(exists(root, "/nix/var/nix/gcroots/runix/manual/m"));

    store_close(s);
    td_rmtree(root);
    free(root);
}

static void test_gc_in_use_index(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s = make_store(root);
    struct store_path app = sp(P_APP);
    assert_int_equal(store_index_write(s, &app, NULL), 0);
    char *ix = xasprintf("%s/nix/var/runix/closures/%s", root, strrchr(P_APP, '/') + 1);
    int fd = open(ix, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_SH), 0);
    struct store_gc_opts o = {.older_than = -1, .max_freed = STORE_GC_NO_LIMIT,
                              .keep_size = STORE_GC_NO_LIMIT};
    struct store_gc_result res;
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 1); /* other; app is in use */
    assert_true(exists(root, P_APP));
    assert_true(access(ix, F_OK) == 0);
    char *why = NULL;
    assert_int_equal(store_destroy_check(s, &why, NULL), 1);
    assert_non_null(strstr(why, "a program is running from the store"));
    free(why);
    close(fd);
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 1);
    assert_false(exists(root, P_APP));
    assert_false(access(ix, F_OK) == 0);
    assert_int_equal(store_destroy_check(s, &why, NULL), 0);
    assert_int_equal(store_destroy(s, NULL), 0);
    store_close(s);
    assert_false(access(root, F_OK) == 0);
    free(ix);
    free(root);
}

static void test_gc_nix_temp_roots(void **state)
{
    (void)state;
    char *root = td_tmpdir();
    struct store *s = make_store(root);
    char *dir = xasprintf("%s/nix/var/nix/temproots", root), *f = xasprintf("%s/4242", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    int fd = open(f, O_RDWR | O_CREAT, 0644);
    assert_true(fd >= 0);
    static const char paths[] = P_APP "\0" P_OTHER "\0";
    assert_int_equal(write(fd, paths, sizeof paths - 1), (ssize_t)(sizeof paths - 1));
    assert_int_equal(flock(fd, LOCK_SH), 0); /* a live Nix process */
    struct store_gc_opts o = {.older_than = -1, .max_freed = STORE_GC_NO_LIMIT,
                              .keep_size = STORE_GC_NO_LIMIT};
    struct store_gc_result res;
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 0);
    close(fd); /* it died */
    assert_int_equal(store_gc(s, &o, &res, NULL), 0);
    assert_int_equal(res.npaths, 2);
    store_close(s);
    td_rmtree(root);
    free(f);
    free(dir);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_gc_in_use_index),
        cmocka_unit_test(test_gc_nix_temp_roots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
