#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"

#include "nar-dump.h"
#include "store-verify.h"
#include "store.h"
#include "util-fs.h"
#include "util-mem.h"

#define P_LEAF "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define B_LEAF "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"

static const struct timespec one[2] = {{1, 0}, {1, 0}};

static struct store_path sp(const char *s)
{
    struct store_path p;
    assert_int_equal(store_path_parse(s, strlen(s), &p, NULL), 0);
    return p;
}

static void write_at(int dir, const char *name, const char *text, mode_t mode)
{
    int fd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(fchmodat(dir, name, mode, 0), 0);
    assert_int_equal(utimensat(dir, name, one, AT_SYMLINK_NOFOLLOW), 0);
}

/* The canonical tree: a (text), bin/x (executable), l -> a. */
static void make_tree(int parent, const char *name)
{
    assert_int_equal(mkdirat(parent, name, 0755), 0);
    int d = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(d >= 0);
    write_at(d, "a", "hello\n", 0444);
    assert_int_equal(mkdirat(d, "bin", 0755), 0);
    int b = openat(d, "bin", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    write_at(b, "x", "#!/bin/sh\n", 0555);
    close(b);
    assert_int_equal(fchmodat(d, "bin", 0555, 0), 0);
    assert_int_equal(utimensat(d, "bin", one, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(symlinkat("a", d, "l"), 0);
    assert_int_equal(utimensat(d, "l", one, AT_SYMLINK_NOFOLLOW), 0);
    close(d);
    assert_int_equal(fchmodat(parent, name, 0555, 0), 0);
    assert_int_equal(utimensat(parent, name, one, AT_SYMLINK_NOFOLLOW), 0);
}

struct fx {
    char *root;
    struct store *s;
    struct store_path leaf;
    struct hash h;
    uint64_t size;
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof *f);
    f->root = td_tmpdir();
    assert_int_equal(store_open(f->root, &f->s, NULL), 0);
    f->leaf = sp(P_LEAF);
    make_tree(store_dir_fd(f->s), B_LEAF);
    char *full = xasprintf("%s%s", f->root, P_LEAF);
    assert_int_equal(nar_hash_path(full, &f->h, &f->size, NULL), 0);
    free(full);
    struct store_info info = {.path = f->leaf, .nar_hash = f->h, .nar_size = f->size};
    assert_int_equal(store_register(f->s, &info, 1, NULL), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    td_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

static struct store_verify_result *verify_all(struct fx *f, unsigned jobs, size_t *n)
{
    struct store_verify_result *v;
    struct rx_error *err = NULL;
    if (store_verify(f->s, NULL, 0, jobs, NULL, &v, n, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(*n, 1);
    return v;
}

/* "kind:file" of each problem, ';'-joined. */
static char *problems(const struct store_verify_result *r)
{
    char *out = xstrdup("");
    for (size_t i = 0; i < r->nproblems; i++) {
        char *n = xasprintf("%s%s:%s;", out, store_problem_kind_name(r->problems[i].kind),
                            r->problems[i].file);
        free(out);
        out = n;
    }
    return out;
}

static void test_verify_clean(void **state)
{
    struct fx *f = *state;
    size_t n;
    struct store_verify_result *v = verify_all(f, 2, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_OK);
    assert_true(v[0].hashed);
    assert_true(hash_equal(&v[0].got_hash, &f->h));
    assert_int_equal(v[0].got_size, f->size);
    assert_int_equal(v[0].nproblems, 0);
    store_verify_results_free(v, n);

    /* A path that is not valid is an error naming it. */
    struct store_path other = sp("/nix/store/00000000000000000000000000000000-missing-1.0");
    struct rx_error *err = NULL;
    assert_int_equal(store_verify(f->s, &other, 1, 0, NULL, &v, &n, &err), -1);
    assert_int_equal(err->code, RX_ENOTFOUND);
    assert_non_null(strstr(err->msg, "00000000000000000000000000000000-missing-1.0"));
    rx_error_free(err);
}

static void test_verify_modes_fixed_in_place(void **state)
{
    struct fx *f = *state;
    char *a = xasprintf("%s%s/a", f->root, P_LEAF);
    assert_int_equal(chmod(a, 0644), 0);
    size_t n;
    struct store_verify_result *v = verify_all(f, 1, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_NONCANONICAL);
    char *p = problems(&v[0]);
    assert_string_equal(p, "meta:a;");
    assert_non_null(strstr(v[0].problems[0].detail, "mode 0644, should be 0444"));
    free(p);
    store_verify_results_free(v, n);

    assert_int_equal(store_verify_fix_modes(f->s, &f->leaf, NULL), 0);
    v = verify_all(f, 1, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_OK);
    store_verify_results_free(v, n);
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    free(a);
}

static void test_verify_compare_and_swap(void **state)
{
    struct fx *f = *state;
    /* Damage: a rewritten, bin/x deleted, new added, l pointing elsewhere. */
    char *d = xasprintf("%s%s", f->root, P_LEAF);
    int dir = td_open_dir(d);
    assert_int_equal(fchmodat(dir, ".", 0755, 0), 0);
    assert_int_equal(unlinkat(dir, "a", 0), 0);
    write_at(dir, "a", "HELLO\n", 0444);
    assert_int_equal(rm_rf_at(dir, "bin", NULL), 0);
    write_at(dir, "new", "x", 0444);
    assert_int_equal(unlinkat(dir, "l", 0), 0);
    assert_int_equal(symlinkat("/etc/passwd", dir, "l"), 0);
    assert_int_equal(utimensat(dir, "l", one, AT_SYMLINK_NOFOLLOW), 0);
    assert_int_equal(fchmodat(dir, ".", 0555, 0), 0);
    assert_int_equal(utimensat(dir, ".", one, 0), 0);
    close(dir);

    size_t n;
    struct store_verify_result *v = verify_all(f, 0, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_CORRUPTED);
    assert_false(hash_equal(&v[0].got_hash, &f->h));

    /* The right copy, as a download leaves it, in the work dir. */
    int tmp = store_tmp_fd(f->s, NULL);
    assert_true(tmp >= 0);
    make_tree(tmp, "right");
    struct rx_error *err = NULL;
    if (store_verify_compare(f->s, &v[0], "right", &err) < 0)
        fail_msg("%s", err->msg);
    assert_true(v[0].detailed);
    char *p = problems(&v[0]);
    assert_string_equal(p, "changed:a;deleted:bin;changed:l;added:new;");
    free(p);
    assert_non_null(strstr(v[0].problems[0].detail, "contents differ from byte 0"));
    assert_non_null(strstr(v[0].problems[2].detail, "should point to 'a'"));

    /* Swapped in: the store path is right, the damaged tree gone. */
    if (store_verify_swap(f->s, &f->leaf, "right", &err) < 0)
        fail_msg("%s", err->msg);
    struct stat st;
    assert_int_equal(fstatat(tmp, "right", &st, AT_SYMLINK_NOFOLLOW), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(d, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    store_verify_results_free(v, n);
    v = verify_all(f, 2, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_OK);
    store_verify_results_free(v, n);
    free(d);
}

static void test_verify_missing_renamed_in(void **state)
{
    struct fx *f = *state;
    assert_int_equal(rm_rf_at(store_dir_fd(f->s), B_LEAF, NULL), 0);
    size_t n;
    struct store_verify_result *v = verify_all(f, 2, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_MISSING);
    assert_false(v[0].hashed);
    store_verify_results_free(v, n);

    int tmp = store_tmp_fd(f->s, NULL);
    make_tree(tmp, "right");
    assert_int_equal(store_verify_swap(f->s, &f->leaf, "right", NULL), 0);
    v = verify_all(f, 2, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_OK);
    store_verify_results_free(v, n);
}

static void test_verify_owner_and_mtime(void **state)
{
    struct fx *f = *state;
    char *x = xasprintf("%s%s/bin/x", f->root, P_LEAF);
    struct timespec t[2] = {{5, 0}, {5, 0}};
    assert_int_equal(utimensat(AT_FDCWD, x, t, AT_SYMLINK_NOFOLLOW), 0);
    size_t n;
    struct store_verify_result *v = verify_all(f, 1, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_NONCANONICAL);
    char *p = problems(&v[0]);
    assert_string_equal(p, "meta:bin/x;");
    assert_string_equal(v[0].problems[0].detail, "mtime 5, should be 1");
    free(p);
    store_verify_results_free(v, n);
    assert_int_equal(store_verify_fix_modes(f->s, &f->leaf, NULL), 0);
    v = verify_all(f, 1, &n);
    assert_int_equal(v[0].status, STORE_VERIFY_OK);
    store_verify_results_free(v, n);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_verify_clean, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_modes_fixed_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_compare_and_swap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_missing_renamed_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_owner_and_mtime, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
