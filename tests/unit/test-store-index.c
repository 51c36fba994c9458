/* Unit tests of closure indexes: what store_index_save() writes, store_index_read() believes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test-helpers.h"

#include "store-index.h"
#include "store.h"
#include "util-mem.h"

#define P_LEAF "/nix/store/75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define P_LIB "/nix/store/0c9ay7pbqcm5mx4ddvbs1gvnlzyixlm3-spec-lib-2.1"
#define P_APP "/nix/store/s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"
#define B_LEAF "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-leaf-1.0"
#define B_LIB "0c9ay7pbqcm5mx4ddvbs1gvnlzyixlm3-spec-lib-2.1"
#define B_APP "s4ypaci9m2alq96p9xk8raxsnqc1bgv8-spec-app-1.0"
#define HEADER STORE_INDEX_HEADER "\n"

/* A fresh store root per test, holding the three paths on disk (not registered). */
struct fixture {
    char *root;
    int root_fd;
    struct store_path leaf, lib, app;
};

static void mkdirs(const char *root, const char *rel)
{
    char *cmd = xasprintf("mkdir -p '%s%s'", root, rel);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof *f);
    f->root = td_tmpdir();
    const char *paths[] = {P_LEAF, P_LIB, P_APP};
    struct store_path *dst[] = {&f->leaf, &f->lib, &f->app};
    for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
        mkdirs(f->root, paths[i]);
        assert_int_equal(store_path_parse(paths[i], strlen(paths[i]), dst[i], NULL), 0);
    }
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

/* The index line of nix/store/<base> as it is now (format 2). */
static char *line_of(const struct fixture *f, const char *base)
{
    char *path = xasprintf("%s/nix/store/%s", f->root, base);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    free(path);
    return xasprintf("%s %llu %llu %llu %llu\n", base, (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, (unsigned long long)st.st_ctim.tv_sec,
                     (unsigned long long)st.st_ctim.tv_nsec);
}

/* The index of app, lib and leaf that store_index_save() writes now. */
static char *good_text(const struct fixture *f)
{
    char *a = line_of(f, B_APP), *b = line_of(f, B_LIB), *c = line_of(f, B_LEAF);
    char *t = xasprintf(HEADER "%s%s%s", a, b, c);
    free(a);
    free(b);
    free(c);
    return t;
}

static char *index_path(const struct fixture *f, const char *base)
{
    return xasprintf("%s/" STORE_INDEX_DIR "/%s", f->root, base);
}

/* Put len bytes of text in place as the index of app. */
static void put_index(const struct fixture *f, const char *text, size_t len)
{
    mkdirs(f->root, "/" STORE_INDEX_DIR);
    char *path = index_path(f, B_APP);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    free(path);
}

static void put_good(const struct fixture *f)
{
    char *t = good_text(f);
    put_index(f, t, strlen(t));
    free(t);
}

/* Assert that the index of app is not believed, and that nothing is handed back. */
static void assert_refused(const struct fixture *f, const char *why)
{
    static struct store_path sentinel;
    struct store_path *out = &sentinel; /* must be reset to NULL */
    size_t n = 99;
    struct rx_error *err = NULL;
    int r = store_index_read(f->root_fd, f->root, &f->app, &out, &n, &err);
    if (r != 1)
        fail_msg("an index was %s: %s", r == 0 ? "believed" : "refused as unsafe", why);
    assert_null(err);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void assert_believed(const struct fixture *f, const struct store_path *want, size_t nwant)
{
    struct store_path *out;
    size_t n;
    struct rx_error *err = NULL;
    if (store_index_read(f->root_fd, f->root, &f->app, &out, &n, &err) != 0)
        fail_msg("the index was not believed%s%s", err ? ": " : "", err ? err->msg : "");
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(store_path_cmp(&out[i], &want[i]), 0);
    free(out);
}

static void test_store_index_round_trip(void **state)
{
    struct fixture *f = *state;
    struct store_path cl[] = {f->app, f->lib, f->leaf};
    struct rx_error *err = NULL;
    if (store_index_save(f->root_fd, f->root, &f->app, cl, 3, &err) < 0)
        fail_msg("%s", err->msg);
    char *path = index_path(f, B_APP);
    size_t len;
    char *text = td_read(path, &len), *good = good_text(f);
    assert_int_equal(len, strlen(good));
    assert_memory_equal(text, good, len);
    free(text);
    free(good);
    /* Read in the order written. */
    assert_believed(f, cl, 3);

    /* Written again, it is replaced, and no temporary file is left beside it. */
    struct store_path shorter[] = {f->leaf, f->app};
    assert_int_equal(store_index_save(f->root_fd, f->root, &f->app, shorter, 2, NULL), 0);
    assert_believed(f, shorter, 2);
    char *ls = xasprintf("test \"$(ls -A '%s/" STORE_INDEX_DIR "')\" = " B_APP, f->root);
    assert_int_equal(system(ls), 0);
    free(ls);
    free(path);
}

static void test_store_index_write_from_database(void **state)
{
    struct fixture *f = *state;
    struct store *s;
    assert_int_equal(store_open(f->root, &s, NULL), 0);
    struct store_path app_refs[] = {f->leaf, f->app};
    struct store_info infos[] = {
        {.path = f->leaf, .nar_size = 1},
        {.path = f->app, .nar_size = 2, .refs = app_refs, .nrefs = 2},
    };
    struct rx_error *err = NULL;
    if (store_register(s, infos, 2, &err) < 0)
        fail_msg("%s", err->msg);
    if (store_index_write(s, &f->app, &err) < 0)
        fail_msg("%s", err->msg);
    /* The database's closure, sorted by path; lib is on disk but not in it. */
    struct store_path want[] = {f->leaf, f->app};
    assert_believed(f, want, 2);

    /* A path that is not valid gets no index. */
    assert_int_equal(store_index_write(s, &f->lib, &err), -1);
    assert_int_equal(err->code, RX_ENOTFOUND);
    assert_non_null(strstr(err->msg, "is not valid"));
    rx_error_clear(&err);
    char *lib_index = index_path(f, B_LIB);
    struct stat st;
    assert_int_equal(lstat(lib_index, &st), -1);
    free(lib_index);
    store_close(s);
}

static void test_store_index_absent(void **state)
{
    struct fixture *f = *state;
    /* No closures directory at all. */
    assert_refused(f, "no index directory");
    /* The directory, but no index of app. */
    mkdirs(f->root, "/" STORE_INDEX_DIR);
    assert_refused(f, "no index");
    /* No nix/store beside a good index. */
    put_good(f);
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    char *store = xasprintf("%s/nix/store", f->root), *moved = xasprintf("%s/nix/moved", f->root);
    assert_int_equal(rename(store, moved), 0);
    assert_refused(f, "no nix/store");
    assert_int_equal(rename(moved, store), 0);
    free(store);
    free(moved);
}

static void test_store_index_empty(void **state)
{
    struct fixture *f = *state;
    put_index(f, "", 0);
    assert_refused(f, "an empty file");
    put_index(f, HEADER, strlen(HEADER));
    assert_refused(f, "a header and no paths");
    put_index(f, "\n", 1);
    assert_refused(f, "one empty line");
}

static void test_store_index_damaged(void **state)
{
    struct fixture *f = *state;
    char *good = good_text(f), *app = line_of(f, B_APP), *leaf = line_of(f, B_LEAF);
    size_t n_app = strlen(app) - 1, n_leaf = strlen(leaf) - 1; /* without the newline */
    char *bad[] = {
        /* truncated: the last line has lost its end */
        xstrndup(good, strlen(good) - 5),
        xstrndup(good, strlen(good) - 1),
        xstrdup(STORE_INDEX_HEADER),
        /* a line cut short but still ending in a newline */
        xasprintf(HEADER "%s" B_LEAF "\n", app),
        xasprintf(HEADER "%.*s\n%s", (int)(n_app - 3), app, leaf),
        /* format 1 (paths without what they were), another header, no header */
        xstrdup("runix closure index 1\n" B_APP "\n" B_LIB "\n" B_LEAF "\n"),
        xasprintf("runix closure index 1\n%s%s", app, leaf),
        xstrdup(good + strlen(HEADER)),
        xasprintf("%s%s", HEADER "\n", good + strlen(HEADER)),
        /* lines that are not store basenames, fields that are not numbers */
        xasprintf(HEADER "%s\n%s", app, leaf),
        xasprintf(HEADER "%s/nix/store/%s", app, leaf),
        xasprintf(HEADER "%s../../etc%s", app, leaf + strlen(B_LEAF)),
        xasprintf(HEADER "%.*s\r\n%s", (int)n_app, app, leaf),
        xasprintf(HEADER "%.*s \n%s", (int)n_app, app, leaf),
        xasprintf(HEADER "%s%.*s 0\n", app, (int)n_leaf, leaf),
        xasprintf(HEADER "%s%.*s5\n", app, (int)n_leaf, leaf),
        xasprintf(HEADER "%s" B_LEAF " 1 2 3\n", app),
        xasprintf(HEADER "%s" B_LEAF " +1 2 3 4\n", app),
        xasprintf(HEADER "%s" B_LEAF " 1  2 3 4\n", app),
        xasprintf(HEADER "%s" B_LEAF " 99999999999999999999999 2 3 4\n", app),
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        put_index(f, bad[i], strlen(bad[i]));
        assert_refused(f, bad[i]);
        free(bad[i]);
    }
    /* A NUL byte inside. */
    size_t len = strlen(good);
    char *nul = xstrdup(good);
    nul[len - 2] = '\0';
    put_index(f, nul, len);
    assert_refused(f, "a NUL byte");
    free(nul);
    /* The good one still is believed, so the cases above fail for their damage. */
    put_index(f, good, strlen(good));
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    free(good);
    free(app);
    free(leaf);
}

static void test_store_index_missing_path(void **state)
{
    struct fixture *f = *state;
    put_good(f);
    /* A path of the closure was removed from nix/store (by a gc, by hand). */
    char *cmd = xasprintf("rm -rf '%s%s'", f->root, P_LIB);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_refused(f, "a path is missing");
    /* A symlink in its place is not the directory the index saw. */
    char *lib = xasprintf("%s%s", f->root, P_LIB);
    assert_int_equal(symlink("nowhere", lib), 0);
    assert_refused(f, "a symlink in place of a path");
    free(lib);
}

static void test_store_index_replaced_path(void **state)
{
    struct fixture *f = *state;
    struct store_path cl[] = {f->app, f->lib, f->leaf};
    assert_int_equal(store_index_save(f->root_fd, f->root, &f->app, cl, 3, NULL), 0);
    assert_believed(f, cl, 3);
    /* Moved away and copied back after the index was written: another inode. */
    char *cmd = xasprintf("cd '%s/nix/store' && mv " B_LIB " old && cp -a old " B_LIB
                          " && rm -rf old",
                          f->root);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_refused(f, "a path replaced by a copy");
    /* Written again, the copy is believed; a change of its inode (ctime) is not. */
    assert_int_equal(store_index_save(f->root_fd, f->root, &f->app, cl, 3, NULL), 0);
    assert_believed(f, cl, 3);
    char *leaf = xasprintf("%s%s", f->root, P_LEAF);
    struct stat st;
    assert_int_equal(stat(leaf, &st), 0);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    assert_int_equal(chmod(leaf, st.st_mode), 0); /* the same mode: only ctime changes */
    assert_refused(f, "a path whose inode changed");
    free(leaf);
}

/* store_index_read() on a store one component of which is unsafe: -1, naming it. */
static void assert_unsafe(const struct fixture *f, const char *rel, const char *what)
{
    struct store_path *out = NULL;
    size_t n = 0;
    struct rx_error *err = NULL;
    assert_int_equal(store_index_read(f->root_fd, f->root, &f->app, &out, &n, &err), -1);
    assert_null(out);
    assert_non_null(err);
    assert_int_equal(err->code, EPERM);
    char *path = xasprintf("'%s/%s'", f->root, rel);
    if (!strstr(err->msg, path) || !strstr(err->msg, what))
        fail_msg("unexpected message: %s", err->msg);
    free(path);
    rx_error_clear(&err);
}

static void test_store_index_unsafe_store(void **state)
{
    struct fixture *f = *state;
    put_good(f);
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    static const char *const rels[] = {"nix", "nix/store", "nix/var", "nix/var/runix",
                                       STORE_INDEX_DIR, STORE_INDEX_DIR "/" B_APP};
    for (size_t i = 0; i < ARRAY_SIZE(rels); i++) {
        char *path = xasprintf("%s/%s", f->root, rels[i]);
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        assert_int_equal(chmod(path, st.st_mode | S_IWGRP), 0);
        assert_unsafe(f, rels[i], "chmod go-w");
        assert_int_equal(chmod(path, st.st_mode | S_IWOTH), 0);
        assert_unsafe(f, rels[i], "writable by other users");
        if (geteuid() == 0) { /* another user's, even read-only */
            assert_int_equal(chmod(path, st.st_mode), 0);
            assert_int_equal(lchown(path, 65534, 65534), 0);
            assert_unsafe(f, rels[i], "belongs to uid 65534");
            assert_int_equal(lchown(path, 0, 0), 0);
        }
        assert_int_equal(chmod(path, st.st_mode), 0);
        assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
        free(path);
    }
}

static void test_store_index_root_open(void **state)
{
    struct fixture *f = *state;
    char *real = NULL;
    struct rx_error *err = NULL;
    int fd = store_root_open(f->root, &real, &err);
    assert_true(fd >= 0);
    assert_string_equal(real, f->root);
    close(fd);
    free(real);
    /* A symlink of one's own to it is followed, and the directory is checked. */
    char *link = xasprintf("%s.link", f->root);
    assert_int_equal(symlink(f->root, link), 0);
    fd = store_root_open(link, &real, &err);
    assert_true(fd >= 0);
    assert_string_equal(real, f->root);
    close(fd);
    free(real);
    assert_int_equal(chmod(f->root, 01777), 0);
    assert_int_equal(store_root_open(link, &real, &err), -1);
    assert_int_equal(err->code, EPERM);
    assert_non_null(strstr(err->msg, "is a shared directory (mode 1777)"));
    assert_non_null(strstr(err->msg, "use a directory of your own in it"));
    rx_error_clear(&err);
    assert_int_equal(chmod(f->root, 0777), 0);
    assert_int_equal(store_root_open(link, &real, &err), -1);
    assert_non_null(strstr(err->msg, "is writable by other users (mode 0777)"));
    assert_null(real);
    rx_error_clear(&err);
    assert_int_equal(chmod(f->root, 0700), 0);
    if (geteuid() == 0) { /* another user's link, to a good root */
        assert_int_equal(lchown(link, 65534, 65534), 0);
        assert_int_equal(store_root_open(link, &real, &err), -1);
        assert_non_null(strstr(err->msg, "symlink that belongs to uid 65534"));
        rx_error_clear(&err);
    }
    unlink(link);
    /* A missing root is ENOENT: no store yet, not an unsafe one. */
    assert_int_equal(store_root_open(link, &real, &err), -1);
    assert_int_equal(err->code, ENOENT);
    rx_error_clear(&err);
    free(link);
}

static void test_store_index_not_naming_its_path(void **state)
{
    struct fixture *f = *state;
    static const char text[] = HEADER B_LIB "\n" B_LEAF "\n";
    put_index(f, text, strlen(text));
    assert_refused(f, "the index does not name app");
    /* Another path's index under app's name is not app's. */
    struct store_path cl[] = {f->lib, f->leaf};
    assert_int_equal(store_index_save(f->root_fd, f->root, &f->lib, cl, 2, NULL), 0);
    char *from = index_path(f, B_LIB), *to = index_path(f, B_APP);
    assert_int_equal(rename(from, to), 0);
    assert_refused(f, "lib's index under app's name");
    free(from);
    free(to);
}

static void test_store_index_not_a_plain_file(void **state)
{
    struct fixture *f = *state;
    /* A symlink to a good index is not followed. */
    put_good(f);
    char *path = index_path(f, B_APP), *good = index_path(f, "good");
    assert_int_equal(rename(path, good), 0);
    assert_int_equal(symlink("good", path), 0);
    assert_refused(f, "a symlink");
    assert_int_equal(unlink(path), 0);
    /* A directory. */
    assert_int_equal(mkdir(path, 0755), 0);
    assert_refused(f, "a directory");
    assert_int_equal(rmdir(path), 0);
    free(path);
    free(good);
}

static void test_store_index_too_large(void **state)
{
    struct fixture *f = *state;
    /* 1 MiB and more is not an index runix wrote: refused before it is parsed. */
    char *good = good_text(f), *leaf = line_of(f, B_LEAF);
    size_t line = strlen(leaf), n = (1u << 20) / line + 1;
    size_t len = strlen(good) + n * line;
    char *text = xmalloc(len + 1);
    size_t k = strlen(good);
    memcpy(text, good, k);
    for (size_t i = 0; i < n; i++, k += line)
        memcpy(text + k, leaf, line);
    put_index(f, text, len);
    assert_refused(f, "more than 1 MiB");
    /* The same lines below the limit are believed: repeats are not checked. */
    put_index(f, text, strlen(good) + 1000 * line);
    struct store_path *out;
    size_t nout;
    assert_int_equal(store_index_read(f->root_fd, f->root, &f->app, &out, &nout, NULL), 0);
    assert_int_equal(nout, 3 + 1000);
    free(out);
    free(text);
    free(good);
    free(leaf);
}

/*
 * The collector's side, provoked: this flock() stands in for libc's (the
 * store library calls it) and, when unlink_before_lock names a file,
 * removes it first, as a collector that deleted the index between the
 * reader's open and its lock would have.
 */
static const char *unlink_before_lock;

int flock(int fd, int op)
{
    if (unlink_before_lock) {
        assert_int_equal(unlink(unlink_before_lock), 0);
        unlink_before_lock = NULL;
    }
    return (int)syscall(SYS_flock, fd, op);
}

/* Can the index of app be locked exclusively by someone else right now? */
static bool lockable(const struct fixture *f)
{
    char *path = index_path(f, B_APP);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    assert_true(fd >= 0);
    bool ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return ok;
}

static void test_store_index_locked(void **state)
{
    struct fixture *f = *state;
    put_good(f);
    struct store_path *out;
    size_t n;
    int lock = -1;
    struct rx_error *err = NULL;
    if (store_index_read_locked(f->root_fd, f->root, NULL, &f->app, &out, &n, &lock, &err) != 0)
        fail_msg("the index was not believed: %s", err ? err->msg : "1");
    free(out);
    /* Held shared, out of a program's low fds, close-on-exec until the run clears it. */
    assert_true(lock >= STORE_INDEX_LOCK_FD_MIN);
    assert_int_equal(fcntl(lock, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_false(lockable(f));
    /* Others may read it meanwhile: a shared lock each. */
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    close(lock);
    assert_true(lockable(f));
    /* The plain read releases its lock. */
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    assert_true(lockable(f));
}

static void test_store_index_collected(void **state)
{
    struct fixture *f = *state;
    put_good(f);
    /* A collector holds it: the reader goes the slow way, and keeps no fd. */
    char *path = index_path(f, B_APP);
    int held = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(held >= 0);
    assert_int_equal(flock(held, LOCK_EX | LOCK_NB), 0);
    assert_refused(f, "an index a collector holds");
    struct store_path *out;
    size_t n;
    int lock = 7;
    assert_int_equal(
        store_index_read_locked(f->root_fd, f->root, NULL, &f->app, &out, &n, &lock, NULL), 1);
    assert_int_equal(lock, -1);
    close(held);
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    /* Removed by a collector after the open, before the lock: not believed. */
    unlink_before_lock = path;
    assert_int_equal(
        store_index_read_locked(f->root_fd, f->root, NULL, &f->app, &out, &n, &lock, NULL), 1);
    assert_null(unlink_before_lock);
    assert_int_equal(lock, -1);
    free(path);
}

/* Each test in a fresh store root. */
#define TEST(name) cmocka_unit_test_setup_teardown(test_store_index_##name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(round_trip),
        TEST(write_from_database),
        TEST(absent),
        TEST(empty),
        TEST(damaged),
        TEST(missing_path),
        TEST(replaced_path),
        TEST(unsafe_store),
        TEST(root_open),
        TEST(not_naming_its_path),
        TEST(not_a_plain_file),
        TEST(too_large),
        TEST(locked),
        TEST(collected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
