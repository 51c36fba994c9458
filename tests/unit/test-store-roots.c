/* Unit tests of GC roots: names, making and refreshing runix's, finding Nix's. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "test-helpers.h"

#include "store-roots.h"
#include "util-mem.h"

#define P_LEAF "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define P_LIB "/nix/store/0c9ay7pbqcm5mx4ddvbs1gvnlzyixlm3-spec-lib-2.1"
#define P_APP "/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"

struct fixture {
    char *root;
    int root_fd;
    struct store_path leaf, lib, app;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    f->root = td_tmpdir();
    char *cmd = xasprintf("mkdir -p '%s/nix/store' '%s/nix/var/nix/gcroots' "
                          "'%s/nix/var/nix/profiles'",
                          f->root, f->root, f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_int_equal(store_path_parse(P_LEAF, strlen(P_LEAF), &f->leaf, NULL), 0);
    assert_int_equal(store_path_parse(P_LIB, strlen(P_LIB), &f->lib, NULL), 0);
    assert_int_equal(store_path_parse(P_APP, strlen(P_APP), &f->app, NULL), 0);
    f->root_fd = td_open_dir(f->root);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    td_tmpdir_free(f->root, f->root_fd);
    free(f);
    return 0;
}

static void encode_ok(const char *ref, const char *want)
{
    char name[STORE_ROOT_NAME_MAX + 1];
    assert_int_equal(store_root_name_encode(ref, name, NULL), 0);
    assert_string_equal(name, want);
    assert_true(store_root_name_valid(name));
    char *back = store_root_name_decode(name);
    assert_string_equal(back, ref);
    free(back);
}

static void test_names(void **state)
{
    (void)state;
    encode_ok("github:owner/repo", "github:owner%2Frepo");
    encode_ok("/home/u/jq.runix", "%2Fhome%2Fu%2Fjq.runix");
    encode_ok("https://host/a b?x=1#y", "https:%2F%2Fhost%2Fa%20b%3Fx=1%23y");
    encode_ok(".hidden", "%2Ehidden");
    encode_ok("..", "%2E.");
    encode_ok("100%~", "100%25%7E");
    encode_ok("75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0",
              "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0");
    struct rx_error *err = NULL;
    char name[STORE_ROOT_NAME_MAX + 1];
    assert_int_equal(store_root_name_encode("", name, &err), -1);
    rx_error_free(err);

    /* Long references are cut, told apart by a hash, and still valid names. */
    char a[600], b[600];
    memset(a, '/', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[500] = 'x';
    char na[STORE_ROOT_NAME_MAX + 1], nb[STORE_ROOT_NAME_MAX + 1];
    assert_int_equal(store_root_name_encode(a, na, NULL), 0);
    assert_int_equal(store_root_name_encode(b, nb, NULL), 0);
    assert_true(strlen(na) <= STORE_ROOT_NAME_MAX);
    assert_true(store_root_name_valid(na));
    assert_string_not_equal(na, nb);
    /* One that just fits is kept whole. */
    char c[STORE_ROOT_NAME_MAX + 1];
    memset(c, 'c', STORE_ROOT_NAME_MAX);
    c[STORE_ROOT_NAME_MAX] = '\0';
    encode_ok(c, c);

    assert_false(store_root_name_valid(""));
    assert_false(store_root_name_valid("."));
    assert_false(store_root_name_valid("a/b"));
    assert_false(store_root_name_valid(".new-1-x"));
}

static void test_kinds(void **state)
{
    (void)state;
    for (int k = STORE_ROOT_AUTO; k <= STORE_ROOT_NIX; k++)
        assert_int_equal(store_root_kind_parse(store_root_kind_name((enum store_root_kind)k)), k);
    assert_int_equal(store_root_kind_parse("other"), -1);
}

static char *link_at(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    char buf[4096];
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    free(p);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

static bool exists(const char *root, const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    struct stat st;
    bool r = lstat(p, &st) == 0;
    free(p);
    return r;
}

#define AUTO_DIR STORE_ROOTS_DIR "/auto/"

static void test_set_use_remove(void **state)
{
    struct fixture *f = *state;
    struct store_path two[] = {f->app, f->lib};
    assert_int_equal(store_root_set(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", two, 2, NULL),
                     0);
    char *l = link_at(f->root, AUTO_DIR "tool/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0");
    assert_non_null(l);
    assert_string_equal(l, P_APP);
    free(l);
    assert_true(exists(f->root, AUTO_DIR "tool/0c9ay7pbqcm5mx4ddvbs1gvnlzyixlm3-spec-lib-2.1"));

    /* An old root is marked used again; a fresh one is left alone. */
    char *dir = xasprintf("%s/" AUTO_DIR "tool", f->root);
    struct timespec old[2] = {{.tv_sec = 1000}, {.tv_sec = 1000}};
    assert_int_equal(utimensat(AT_FDCWD, dir, old, 0), 0);
    assert_int_equal(store_root_use(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", two, 2, NULL),
                     0);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_true(st.st_mtim.tv_sec > time(NULL) - 10);
    struct timespec recent[2] = {{.tv_sec = time(NULL) - 5}, {.tv_sec = time(NULL) - 5}};
    assert_int_equal(utimensat(AT_FDCWD, dir, recent, 0), 0);
    assert_int_equal(store_root_use(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", two, 2, NULL),
                     0);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mtim.tv_sec, recent[1].tv_sec);

    /* Other targets: the root is changed to hold exactly them. */
    struct store_path one[] = {f->leaf};
    assert_int_equal(store_root_use(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", one, 1, NULL),
                     0);
    assert_true(exists(f->root, AUTO_DIR "tool/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"));
    assert_false(exists(f->root, AUTO_DIR "tool/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"));
    assert_false(exists(f->root, AUTO_DIR "tool/0c9ay7pbqcm5mx4ddvbs1gvnlzyixlm3-spec-lib-2.1"));

    /* A link replaced by hand is put right. */
    char *lp = xasprintf("%s/" AUTO_DIR "tool/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0",
                         f->root);
    assert_int_equal(unlink(lp), 0);
    assert_int_equal(symlink("/elsewhere", lp), 0);
    assert_int_equal(store_root_use(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", one, 1, NULL),
                     0);
    l = link_at(f->root, AUTO_DIR "tool/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0");
    assert_string_equal(l, P_LEAF);
    free(l);
    free(lp);

    assert_int_equal(store_root_remove(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", NULL), 0);
    assert_false(exists(f->root, AUTO_DIR "tool"));
    assert_int_equal(store_root_remove(f->root_fd, f->root, STORE_ROOT_AUTO, "tool", NULL), 1);
    free(dir);

    struct rx_error *err = NULL;
    assert_int_equal(store_root_set(f->root_fd, f->root, STORE_ROOT_NIX, "x", one, 1, &err), -1);
    rx_error_free(err);
    err = NULL;
    assert_int_equal(store_root_set(f->root_fd, f->root, STORE_ROOT_MANUAL, "../x", one, 1, &err),
                     -1);
    rx_error_free(err);
}

/* Run a shell command with $R set to the store root. */
static void sh(const char *cmd, const char *root)
{
    assert_int_equal(setenv("R", root, 1), 0);
    assert_int_equal(system(cmd), 0);
}

static void test_scan(void **state)
{
    struct fixture *f = *state;
    struct store_path two[] = {f->lib, f->app};
    assert_int_equal(
        store_root_set(f->root_fd, f->root, STORE_ROOT_INSTALLED, "jq", two, 2, NULL), 0);
    assert_int_equal(
        store_root_set(f->root_fd, f->root, STORE_ROOT_AUTO, "github:o%2Fr", &f->leaf, 1, NULL),
        0);
    /* Nix's own: a direct link (into a path's subdirectory), a profile, an
     * indirect root on the host, a regular file named like a path, and
     * things that keep nothing. */
    sh("mkdir -p $R/nix/var/nix/gcroots/auto $R/nix/var/nix/gcroots/per-user/u && "
       "ln -s " P_LEAF "/bin/x $R/nix/var/nix/gcroots/per-user/u/direct && "
       "ln -s " P_APP " $R/nix/var/nix/profiles/default-1-link",
       f->root);
    sh("ln -s $R/result $R/nix/var/nix/gcroots/auto/abc && ln -s " P_LIB " $R/result && "
       "ln -s /nowhere $R/nix/var/nix/gcroots/dangling",
       f->root);
    sh("touch $R/nix/var/nix/gcroots/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0 "
       "$R/nix/var/nix/gcroots/not-a-path && ln -s " P_APP " $R/" STORE_ROOTS_DIR "/stray",
       f->root);

    struct store_root *r;
    size_t n;
    assert_int_equal(store_roots_scan(f->root_fd, f->root, &r, &n, NULL), 0);
    assert_int_equal(n, 6);
    assert_int_equal(r[0].kind, STORE_ROOT_AUTO);
    assert_string_equal(r[0].name, "github:o/r");
    assert_string_equal(r[0].where, STORE_ROOTS_DIR "/auto/github:o%2Fr");
    assert_int_equal(r[0].ntargets, 1);
    assert_int_equal(store_path_cmp(&r[0].targets[0], &f->leaf), 0);
    assert_true(r[0].last_used > time(NULL) - 60);
    assert_int_equal(r[1].kind, STORE_ROOT_INSTALLED);
    assert_string_equal(r[1].name, "jq");
    assert_int_equal(r[1].ntargets, 2);
    assert_int_equal(store_path_cmp(&r[1].targets[0], &f->lib), 0); /* sorted */
    assert_int_equal(store_path_cmp(&r[1].targets[1], &f->app), 0);
    const char *nix[] = {
        "nix/var/nix/gcroots/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0",
        "nix/var/nix/gcroots/auto/abc",
        "nix/var/nix/gcroots/per-user/u/direct",
        "nix/var/nix/profiles/default-1-link",
    };
    const struct store_path *want[] = {&f->leaf, &f->lib, &f->leaf, &f->app};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(r[2 + i].kind, STORE_ROOT_NIX);
        assert_string_equal(r[2 + i].name, nix[i]);
        assert_int_equal(r[2 + i].ntargets, 1);
        assert_int_equal(store_path_cmp(&r[2 + i].targets[0], want[i]), 0);
    }
    store_roots_free(r, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_kinds),
        cmocka_unit_test_setup_teardown(test_set_use_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
