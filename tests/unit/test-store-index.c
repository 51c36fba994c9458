/* Unit tests of closure indexes: what store_index_save() writes, store_index_read() believes. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#define GOOD HEADER B_APP "\n" B_LIB "\n" B_LEAF "\n"

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

/* Assert that the index of app is not believed, and that nothing is handed back. */
static void assert_refused(const struct fixture *f, const char *why)
{
    static struct store_path sentinel;
    struct store_path *out = &sentinel; /* must be reset to NULL */
    size_t n = 99;
    if (store_index_read(f->root, &f->app, &out, &n) != 1)
        fail_msg("an index was believed: %s", why);
    assert_null(out);
    assert_int_equal(n, 0);
}

static void assert_believed(const struct fixture *f, const struct store_path *want, size_t nwant)
{
    struct store_path *out;
    size_t n;
    assert_int_equal(store_index_read(f->root, &f->app, &out, &n), 0);
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
    if (store_index_save(f->root_fd, &f->app, cl, 3, &err) < 0)
        fail_msg("%s", err->msg);
    char *path = index_path(f, B_APP);
    size_t len;
    char *text = td_read(path, &len);
    assert_int_equal(len, strlen(GOOD));
    assert_memory_equal(text, GOOD, len);
    free(text);
    /* Read in the order written. */
    assert_believed(f, cl, 3);

    /* Written again, it is replaced, and no temporary file is left beside it. */
    struct store_path shorter[] = {f->leaf, f->app};
    assert_int_equal(store_index_save(f->root_fd, &f->app, shorter, 2, NULL), 0);
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
    put_index(f, GOOD, strlen(GOOD));
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
    static const char *const bad[] = {
        /* truncated: the last line has lost its end */
        HEADER B_APP "\n" B_LIB "\n"
                     "75hrvzq7mk4aqldmdyqnfz5gilklskr5-spec-le",
        HEADER B_APP "\n" B_LIB "\n" B_LEAF,
        STORE_INDEX_HEADER,
        /* a line cut short but still ending in a newline */
        HEADER B_APP "\n" B_LIB "\n"
                     "75hrvzq7mk4aqldmdyqnfz5gilklskr5\n",
        /* another format or no header */
        "runix closure index 2\n" B_APP "\n" B_LIB "\n" B_LEAF "\n",
        B_APP "\n" B_LIB "\n" B_LEAF "\n",
        /* lines that are not store basenames */
        HEADER B_APP "\n\n" B_LEAF "\n",
        HEADER B_APP "\n" P_LEAF "\n",
        HEADER B_APP "\n../../etc\n",
        HEADER B_APP "\r\n" B_LEAF "\r\n",
        HEADER B_APP " \n",
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        put_index(f, bad[i], strlen(bad[i]));
        assert_refused(f, bad[i]);
    }
    /* A NUL byte inside. */
    static const char nul[] = HEADER B_APP "\n" B_LEAF "\0\n";
    put_index(f, nul, sizeof nul - 1);
    assert_refused(f, "a NUL byte");
    /* The good one still is believed, so the cases above fail for their damage. */
    put_index(f, GOOD, strlen(GOOD));
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
}

static void test_store_index_missing_path(void **state)
{
    struct fixture *f = *state;
    put_index(f, GOOD, strlen(GOOD));
    /* A path of the closure was removed from nix/store (by a gc, by hand). */
    char *cmd = xasprintf("rm -rf '%s%s'", f->root, P_LIB);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    assert_refused(f, "a path is missing");
    /* A symlink in its place is an entry of nix/store: as Nix sees it, it is there. */
    char *lib = xasprintf("%s%s", f->root, P_LIB);
    assert_int_equal(symlink("nowhere", lib), 0);
    assert_believed(f, (struct store_path[]){f->app, f->lib, f->leaf}, 3);
    free(lib);
}

static void test_store_index_not_naming_its_path(void **state)
{
    struct fixture *f = *state;
    static const char text[] = HEADER B_LIB "\n" B_LEAF "\n";
    put_index(f, text, strlen(text));
    assert_refused(f, "the index does not name app");
    /* Another path's index under app's name is not app's. */
    struct store_path cl[] = {f->lib, f->leaf};
    assert_int_equal(store_index_save(f->root_fd, &f->lib, cl, 2, NULL), 0);
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
    put_index(f, GOOD, strlen(GOOD));
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
    size_t line = strlen(B_LEAF) + 1, n = (1u << 20) / line + 1;
    size_t len = strlen(GOOD) + n * line;
    char *text = xmalloc(len + 1);
    size_t k = strlen(GOOD);
    memcpy(text, GOOD, k);
    for (size_t i = 0; i < n; i++, k += line)
        memcpy(text + k, B_LEAF "\n", line);
    put_index(f, text, len);
    assert_refused(f, "more than 1 MiB");
    /* The same lines below the limit are believed: repeats are not checked. */
    put_index(f, text, strlen(GOOD) + 1000 * line);
    struct store_path *out;
    size_t nout;
    assert_int_equal(store_index_read(f->root, &f->app, &out, &nout), 0);
    assert_int_equal(nout, 3 + 1000);
    free(out);
    free(text);
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
        TEST(not_naming_its_path),
        TEST(not_a_plain_file),
        TEST(too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
