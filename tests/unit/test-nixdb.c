/* Unit tests of nix-index databases: the reader, the writer, file trees. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "test-helpers.h"

#include "nixdb.h"
#include "util-buf.h"
#include "util-mem.h"

#define HASH_A "0i2jd68mp5g6h2sa5k9c85rb80sn8hi9"
#define PKG_JSON(hash, name, attr, top)                                                        \
    "{\"store_dir\":\"/nix/store\",\"hash\":\"" hash "\",\"name\":\"" name                     \
    "\",\"origin\":{\"attr\":\"" attr "\",\"output\":\"out\",\"toplevel\":" top                \
    ",\"system\":\"x86_64-linux\"}}"

/* A database of the given frcode bytes: the header, then one zstd frame. */
static unsigned char *make_db(const void *plain, size_t len, size_t *out_len)
{
    size_t bound = ZSTD_compressBound(len);
    unsigned char *db = xmalloc(NIXDB_HEADER_LEN + bound);
    memcpy(db, "NIXI\1\0\0\0\0\0\0\0", NIXDB_HEADER_LEN);
    size_t z = ZSTD_compress(db + NIXDB_HEADER_LEN, bound, plain, len, 3);
    assert_false(ZSTD_isError(z));
    *out_len = NIXDB_HEADER_LEN + z;
    return db;
}

/* Read the whole database; returns nixdb_next's last result, the error in *err. */
static int read_all(const void *db, size_t len, size_t *files, size_t *pkgs, struct rx_error **err)
{
    struct nixdb_reader *r;
    *files = *pkgs = 0;
    if (nixdb_open_mem(db, len, "test.db", &r, err) < 0)
        return -2;
    struct nixdb_line l;
    int k;
    while ((k = nixdb_next(r, &l, err)) > 0) {
        if (l.kind == NIXDB_FILE) {
            (*files)++;
        } else {
            struct nixdb_package p;
            if (nixdb_package_parse(r, &l, &p, err) < 0) {
                k = -1;
                break;
            }
            nixdb_package_release(&p);
            (*pkgs)++;
        }
    }
    nixdb_close(r);
    return k;
}

/* The lines of nix-index's own frcode example, with a package line after them. */
static void test_nixdb_reads_handmade_lines(void **state)
{
    (void)state;
    static const char plain[] = "2d\0\0\n"
                                "1d\0\0/bin\n"
                                "5x\0\4/jq\n"
                                "7r\0\3-x\n" /* shares "/bin/jq": 4 + 3 */
                                "/nix/store/x/bin/jqs\0\xfey\n" /* shares "/bin/": 7 - 2 */
                                "p\0\xfb" PKG_JSON(HASH_A, "jq-1.7", "jq", "true") "\n";
    size_t len;
    _cleanup_free_ unsigned char *db = make_db(plain, sizeof plain - 1, &len);
    struct nixdb_reader *r;
    assert_int_equal(nixdb_open_mem(db, len, "t", &r, NULL), 0);
    struct nixdb_line l;
    const char *paths[] = { "", "/bin", "/bin/jq", "/bin/jq-x", "/bin/y" };
    const char types[] = { 'd', 'd', 'x', 'r', 's' };
    const uint64_t sizes[] = { 2, 1, 5, 7, 0 };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(nixdb_next(r, &l, NULL), 1);
        assert_int_equal(l.kind, NIXDB_FILE);
        assert_int_equal(l.path_len, strlen(paths[i]));
        assert_memory_equal(l.path, paths[i], l.path_len);
        assert_int_equal(l.type, types[i]);
        assert_int_equal(l.size, sizes[i]);
    }
    assert_int_equal(l.target_len, strlen("/nix/store/x/bin/jq"));
    assert_memory_equal(l.target, "/nix/store/x/bin/jq", l.target_len);
    assert_int_equal(nixdb_next(r, &l, NULL), 1);
    assert_int_equal(l.kind, NIXDB_PACKAGE);
    assert_true(nixdb_line_may_have_attr(&l, "jq", 2));
    assert_false(nixdb_line_may_have_attr(&l, "j", 1));
    struct nixdb_package p;
    assert_int_equal(nixdb_package_parse(r, &l, &p, NULL), 0);
    assert_string_equal(p.path.hash, HASH_A);
    assert_string_equal(p.path.name, "jq-1.7");
    assert_string_equal(p.attr, "jq");
    assert_string_equal(p.output, "out");
    assert_string_equal(p.system, "x86_64-linux");
    assert_true(p.toplevel);
    nixdb_package_release(&p);
    assert_int_equal(nixdb_next(r, &l, NULL), 0);
    nixdb_close(r);
}

static char *write_to_string(const struct nixdb_package *p, const struct nixdb_file *files,
                             size_t n, size_t npkgs, size_t *len)
{
    char *dir = td_tmpdir();
    char *f = xasprintf("%s/db", dir);
    int fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    struct nixdb_writer *w = nixdb_writer_new(fd, f, 3, NULL);
    assert_non_null(w);
    for (size_t i = 0; i < npkgs; i++)
        assert_int_equal(nixdb_writer_add(w, &p[i], files, n, NULL), 0);
    assert_int_equal(nixdb_writer_finish(w, NULL), 0);
    nixdb_writer_free(w);
    close(fd);
    char *data = td_read(f, len);
    free(f);
    td_tmpdir_free(dir, -1);
    return data;
}

/* What the writer writes reads back the same, long shared prefixes (3-byte differences) too. */
static void test_nixdb_round_trip(void **state)
{
    (void)state;
    char longdir[400];
    memset(longdir, 'a', sizeof longdir - 1);
    longdir[0] = '/';
    longdir[sizeof longdir - 1] = '\0';
    char *p1 = xasprintf("%s/x", longdir), *p2 = xasprintf("%s/y", longdir);
    struct nixdb_file files[] = {
        { (char *)"", NIXDB_DIRECTORY, 3, NULL },
        { (char *)"/bin", NIXDB_DIRECTORY, 1, NULL },
        { (char *)"/bin/tool", NIXDB_EXECUTABLE, 12345678901ULL, NULL },
        { p1, NIXDB_REGULAR, 1, NULL },
        { p2, NIXDB_SYMLINK, 0, (char *)"../x" },
        { (char *)"/z", NIXDB_REGULAR, 0, NULL },
    };
    struct nixdb_package pk[2] = {
        { .attr = (char *)"tool", .output = (char *)"bin", .toplevel = true },
        { .attr = (char *)"tool", .output = (char *)"bin", .system = (char *)"aarch64-linux" },
    };
    static const char tool[] = "/nix/store/" HASH_A "-tool-1.0-bin";
    assert_int_equal(store_path_parse(tool, strlen(tool), &pk[0].path, NULL), 0);
    pk[1].path = pk[0].path;
    size_t len;
    _cleanup_free_ char *db = write_to_string(pk, files, ARRAY_SIZE(files), 2, &len);
    assert_memory_equal(db, "NIXI\1\0\0\0\0\0\0\0", 12);
    struct nixdb_reader *r;
    assert_int_equal(nixdb_open_mem(db, len, "t", &r, NULL), 0);
    struct nixdb_line l;
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
            assert_int_equal(nixdb_next(r, &l, NULL), 1);
            assert_int_equal(l.kind, NIXDB_FILE);
            assert_string_equal(l.path, files[i].path);
            assert_int_equal(l.type, files[i].type);
            assert_int_equal(l.size, files[i].size);
        }
        assert_int_equal(nixdb_next(r, &l, NULL), 1);
        assert_int_equal(l.kind, NIXDB_PACKAGE);
        struct nixdb_package p;
        assert_int_equal(nixdb_package_parse(r, &l, &p, NULL), 0);
        assert_string_equal(p.path.name, "tool-1.0-bin");
        assert_string_equal(p.output, "bin");
        assert_int_equal(p.toplevel, k == 0);
        if (k == 0)
            assert_null(p.system);
        else
            assert_string_equal(p.system, "aarch64-linux");
        nixdb_package_release(&p);
    }
    assert_int_equal(nixdb_next(r, &l, NULL), 0);
    nixdb_close(r);
    free(p1);
    free(p2);
}

static void expect_refusal(const void *db, size_t len, const char *needle)
{
    size_t files, pkgs;
    struct rx_error *err = NULL;
    int k = read_all(db, len, &files, &pkgs, &err);
    assert_true(k < 0);
    assert_non_null(err);
    if (!strstr(err->msg, needle) || !strstr(err->msg, "'test.db'"))
        fail_msg("error '%s' does not say '%s' (and name the file)", err->msg, needle);
    rx_error_free(err);
}

static void test_nixdb_refuses_bad_headers(void **state)
{
    (void)state;
    expect_refusal("GZIP\1\0\0\0\0\0\0\0", 12, "not a nix-index database");
    expect_refusal("", 0, "not a nix-index database");
    expect_refusal("NIXI\2\0\0\0\0\0\0\0", 12, "format version 2");
    expect_refusal("NIXI\1\0\0", 7, "truncated");
    expect_refusal("NIXI\1\0\0\0\0\0\0\0", 12, "no zstd stream");
    expect_refusal("NIXI\1\0\0\0\0\0\0\0garbage!", 20, "corrupt zstd stream");
}

static void test_nixdb_refuses_truncated_stream(void **state)
{
    (void)state;
    /* Enough data that the frame has several blocks: cut in the middle. */
    struct rx_buf b = RX_BUF_INIT(64 * 1024 * 1024);
    for (int i = 0; i < 20000; i++) {
        char line[512];
        int n = snprintf(line, sizeof line, "%dr%c%c/f%08d\np%c%c" PKG_JSON(HASH_A, "x-1", "x", "true") "\n",
                         i, 0, 0, i * 7919, 0, 0);
        /* the package line's difference: back from 0 is 0 */
        assert_int_equal(rx_buf_append(&b, line, (size_t)n), 0);
    }
    size_t len;
    _cleanup_free_ unsigned char *db = make_db(b.data, b.len, &len);
    size_t files, pkgs;
    assert_int_equal(read_all(db, len, &files, &pkgs, NULL), 0);
    assert_int_equal(files, 20000);
    assert_int_equal(pkgs, 20000);
    expect_refusal(db, len / 2, "truncated zstd stream");
    rx_buf_release(&b);
}

static void test_nixdb_refuses_bad_lines(void **state)
{
    (void)state;
    size_t len;
    /* shares 5 bytes with a previous path of 4 */
    static const char shared[] = "1d\0\0/bin\n5x\0\5/jq\n";
    _cleanup_free_ unsigned char *a = make_db(shared, sizeof shared - 1, &len);
    expect_refusal(a, len, "shares 5 bytes with a previous path of 4");
    /* a negative shared length */
    static const char neg[] = "1d\0\xff/bin\n";
    _cleanup_free_ unsigned char *b = make_db(neg, sizeof neg - 1, &len);
    expect_refusal(b, len, "shares -1 bytes");
    /* file entries and no package line after them */
    static const char orphan[] = "1d\0\0/bin\n";
    _cleanup_free_ unsigned char *c = make_db(orphan, sizeof orphan - 1, &len);
    expect_refusal(c, len, "no package entry");
    /* the stream ends inside a line */
    static const char cut[] = "1d\0\0/bi";
    _cleanup_free_ unsigned char *d = make_db(cut, sizeof cut - 1, &len);
    expect_refusal(d, len, "ends inside the line");
    /* unknown metadata, and a bad size */
    static const char meta[] = "12q\0\0/bin\n";
    _cleanup_free_ unsigned char *e = make_db(meta, sizeof meta - 1, &len);
    expect_refusal(e, len, "unknown metadata");
    static const char size[] = "1-2r\0\0/bin\n";
    _cleanup_free_ unsigned char *f = make_db(size, sizeof size - 1, &len);
    expect_refusal(f, len, "bad size");
    /* a line longer than the format's limit, in the metadata and in the path */
    size_t big = NIXDB_LINE_MAX + 10;
    char *longm = xmalloc(big + 16);
    memset(longm, '/', big);
    memcpy(longm + big, "s\0\0/x\n", 6);
    _cleanup_free_ unsigned char *g = make_db(longm, big + 6, &len);
    expect_refusal(g, len, "longer than 65536 bytes");
    memcpy(longm, "1r\0\0", 4);
    memset(longm + 4, 'a', big);
    longm[4 + big] = '\n';
    _cleanup_free_ unsigned char *h = make_db(longm, big + 5, &len);
    expect_refusal(h, len, "longer than 65536 bytes");
    free(longm);
}

static void test_nixdb_refuses_bad_packages(void **state)
{
    (void)state;
    size_t len;
    static const char badhash[] = "1d\0\0/bin\np\0\0" PKG_JSON("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "x-1", "x", "true") "\n";
    _cleanup_free_ unsigned char *a = make_db(badhash, sizeof badhash - 1, &len);
    expect_refusal(a, len, "store path that does not parse");
    static const char badname[] = "1d\0\0/bin\np\0\0" PKG_JSON(HASH_A, "a/b", "x", "true") "\n";
    _cleanup_free_ unsigned char *b = make_db(badname, sizeof badname - 1, &len);
    expect_refusal(b, len, "store path that does not parse");
    static const char otherdir[] = "1d\0\0/bin\np\0\0{\"store_dir\":\"/gnu/store\",\"hash\":\"" HASH_A
                                   "\",\"name\":\"x\",\"origin\":{\"attr\":\"x\",\"output\":\"out\","
                                   "\"toplevel\":true,\"system\":null}}\n";
    _cleanup_free_ unsigned char *c = make_db(otherdir, sizeof otherdir - 1, &len);
    expect_refusal(c, len, "not /nix/store");
    static const char notjson[] = "1d\0\0/bin\np\0\0{nope\n";
    _cleanup_free_ unsigned char *d = make_db(notjson, sizeof notjson - 1, &len);
    expect_refusal(d, len, "is not JSON");
    static const char noorigin[] = "1d\0\0/bin\np\0\0{\"store_dir\":\"/nix/store\",\"hash\":\"" HASH_A
                                   "\",\"name\":\"x\"}\n";
    _cleanup_free_ unsigned char *e = make_db(noorigin, sizeof noorigin - 1, &len);
    expect_refusal(e, len, "lacks store_dir");
}

static void test_nixdb_refuses_missing_file(void **state)
{
    (void)state;
    struct nixdb_reader *r;
    struct rx_error *err = NULL;
    assert_int_equal(nixdb_open("/nonexistent/files", &r, &err), -1);
    assert_int_equal(err->code, ENOENT);
    assert_non_null(strstr(err->msg, "/nonexistent/files"));
    rx_error_free(err);
}

/* nix-index's order: a directory, then its entries from the last name to the first. */
static void test_nixdb_tree_order(void **state)
{
    (void)state;
    static const char ls[] =
        "{\"version\":1,\"root\":{\"type\":\"directory\",\"entries\":{"
        "\"bin\":{\"type\":\"directory\",\"entries\":{"
        "\"a\":{\"type\":\"regular\",\"size\":3,\"executable\":true},"
        "\"b\":{\"type\":\"symlink\",\"target\":\"a\"},"
        "\"new\\nline\":{\"type\":\"regular\",\"size\":1}}},"
        "\"share\":{\"type\":\"directory\",\"entries\":{}},"
        "\"lib\":{\"type\":\"regular\",\"size\":7,\"narOffset\":96}}}}";
    struct nixdb_tree t;
    assert_int_equal(nixdb_tree_from_listing(ls, sizeof ls - 1, &t, NULL), 0);
    struct nixdb_file *f;
    size_t n;
    nixdb_tree_list(&t, "", &f, &n);
    const char *want[] = { "", "/share", "/lib", "/bin", "/bin/b", "/bin/a" };
    assert_int_equal(n, ARRAY_SIZE(want));
    for (size_t i = 0; i < n; i++)
        assert_string_equal(f[i].path, want[i]);
    assert_int_equal(f[0].type, NIXDB_DIRECTORY);
    assert_int_equal(f[0].size, 3);
    assert_int_equal(f[3].size, 3); /* bin: three entries, the newline's included */
    assert_int_equal(f[4].type, NIXDB_SYMLINK);
    assert_string_equal(f[4].target, "a");
    assert_int_equal(f[5].type, NIXDB_EXECUTABLE);
    nixdb_files_free(f, n);
    nixdb_tree_list(&t, "/bin/", &f, &n);
    assert_int_equal(n, 2);
    assert_string_equal(f[0].path, "/bin/b");
    nixdb_files_free(f, n);
    nixdb_tree_release(&t);

    struct rx_error *err = NULL;
    static const char bad[] = "{\"version\":1,\"root\":{\"type\":\"directory\",\"entries\":{"
                              "\"..\":{\"type\":\"regular\",\"size\":1}}}}";
    assert_int_equal(nixdb_tree_from_listing(bad, sizeof bad - 1, &t, &err), -1);
    assert_non_null(strstr(err->msg, "bad entry name"));
    rx_error_clear(&err);
    assert_int_equal(nixdb_tree_from_listing("{\"version\":2}", 13, &t, &err), -1);
    rx_error_free(err);
}

static int count_line(void *ctx, char **f, size_t n)
{
    size_t *k = ctx;
    assert_true(n == 9 || n == 4);
    (void)f;
    (*k)++;
    return 0;
}

/* The sidecars: every /bin/ entry and every top-level attribute, found by bisection. */
static void test_nixdb_sidecars(void **state)
{
    (void)state;
    char *dir = td_tmpdir();
    char *db = xasprintf("%s/files", dir), *bins = xasprintf("%s/files.bins", dir),
         *attrs = xasprintf("%s/files.attrs", dir);
    int fd = open(db, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    struct nixdb_writer *w = nixdb_writer_new(fd, db, 3, NULL);
    struct nixdb_file jq[] = { { (char *)"/bin", NIXDB_DIRECTORY, 2, NULL },
                               { (char *)"/bin/jq-x", NIXDB_EXECUTABLE, 9, NULL },
                               { (char *)"/bin/jq", NIXDB_EXECUTABLE, 7, NULL } };
    struct nixdb_file rg[] = { { (char *)"/share/x", NIXDB_REGULAR, 1, NULL },
                               { (char *)"/bin/rg", NIXDB_SYMLINK, 0, (char *)"x" } };
    /* many packages, so that the bisection has room */
    for (int i = 0; i < 3000; i++) {
        char name[64], attr[32], path[32];
        snprintf(name, sizeof name, "/nix/store/" HASH_A "-pkg%04d-1", i);
        snprintf(attr, sizeof attr, "pkg%04d", i);
        snprintf(path, sizeof path, "/bin/pkg%04d", i);
        struct nixdb_package p = { .attr = attr, .output = (char *)"out", .toplevel = true };
        assert_int_equal(store_path_parse(name, strlen(name), &p.path, NULL), 0);
        struct nixdb_file f = { path, NIXDB_EXECUTABLE, 1, NULL };
        assert_int_equal(nixdb_writer_add(w, &p, &f, 1, NULL), 0);
    }
    struct nixdb_package p = { .attr = (char *)"jq", .output = (char *)"bin", .toplevel = true };
    static const char jqp[] = "/nix/store/" HASH_A "-jq-1.7-bin";
    assert_int_equal(store_path_parse(jqp, strlen(jqp), &p.path, NULL), 0);
    assert_int_equal(nixdb_writer_add(w, &p, jq, 3, NULL), 0);
    p.toplevel = false;
    assert_int_equal(nixdb_writer_add(w, &p, jq + 2, 1, NULL), 0);
    p.toplevel = true;
    p.attr = (char *)"ripgrep";
    assert_int_equal(nixdb_writer_add(w, &p, rg, 2, NULL), 0);
    assert_int_equal(nixdb_writer_finish(w, NULL), 0);
    nixdb_writer_free(w);
    close(fd);

    assert_int_equal(nixdb_side_build(db, bins, attrs, "ID1", NULL), 0);
    struct nixdb_side s;
    assert_int_equal(nixdb_side_open(bins, "ID2", &s, NULL), 0); /* stale */
    assert_int_equal(nixdb_side_open(bins, "ID1", &s, NULL), 1);
    assert_false(s.small); /* /share/x */
    assert_true(s.complete);
    size_t k = 0;
    assert_int_equal(nixdb_side_find(&s, "jq", true, count_line, &k), 0);
    assert_int_equal(k, 2);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "jq", false, count_line, &k), 0);
    assert_int_equal(k, 3);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "pkg1234", true, count_line, &k), 0);
    assert_int_equal(k, 1);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "pkg0", false, count_line, &k), 0);
    assert_int_equal(k, 1000);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "", false, count_line, &k), 0);
    assert_int_equal(k, 3000 + 4);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "zz", false, count_line, &k), 0);
    assert_int_equal(k, 0);
    nixdb_side_close(&s);
    assert_int_equal(nixdb_side_open(attrs, "ID1", &s, NULL), 1);
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "jq", true, count_line, &k), 0);
    assert_int_equal(k, 1); /* the top-level one only */
    k = 0;
    assert_int_equal(nixdb_side_find(&s, "ripgrep", true, count_line, &k), 0);
    assert_int_equal(k, 1);
    nixdb_side_close(&s);
    /* a sidecar cut short is not believed */
    assert_int_equal(truncate(attrs, 100), 0);
    assert_int_equal(nixdb_side_open(attrs, "ID1", &s, NULL), 0);
    free(db);
    free(bins);
    free(attrs);
    td_tmpdir_free(dir, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nixdb_reads_handmade_lines),
        cmocka_unit_test(test_nixdb_round_trip),
        cmocka_unit_test(test_nixdb_refuses_bad_headers),
        cmocka_unit_test(test_nixdb_refuses_truncated_stream),
        cmocka_unit_test(test_nixdb_refuses_bad_lines),
        cmocka_unit_test(test_nixdb_refuses_bad_packages),
        cmocka_unit_test(test_nixdb_refuses_missing_file),
        cmocka_unit_test(test_nixdb_tree_order),
        cmocka_unit_test(test_nixdb_sidecars),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
