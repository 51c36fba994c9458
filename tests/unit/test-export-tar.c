#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test-helpers.h"

#include "export-tar.h"
#include "export.h"
#include "util-error.h"
#include "util-mem.h"

struct mem {
    unsigned char *p;
    size_t len;
};

static int mem_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)err;
    struct mem *m = ctx;
    m->p = xrealloc(m->p, m->len + len);
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
}

static unsigned long field(const unsigned char *h, size_t off, size_t len)
{
    char buf[16] = {0};
    memcpy(buf, h + off, len);
    return strtoul(buf, NULL, 8);
}

/* Check the ustar fields every header shares: checksum, magic, mtime 1, owner 0:0. */
static void check_header(const unsigned char *h)
{
    unsigned sum = 0;
    for (size_t i = 0; i < TAR_BLOCK; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    assert_int_equal(field(h, 148, 8), sum);
    assert_memory_equal(h + 257, "ustar\0" "00", 8);
    assert_int_equal(field(h, 136, 12), TAR_MTIME);
    assert_int_equal(field(h, 108, 8), 0);
    assert_int_equal(field(h, 116, 8), 0);
    assert_int_equal(h[265], 0); /* no user name */
    assert_int_equal(h[297], 0); /* no group name */
}

static void test_tar_headers(void **state)
{
    (void)state;
    struct mem m = {0};
    struct tar_writer w;
    tar_writer_init(&w, mem_sink, &m);
    assert_int_equal(tar_add_dir(&w, "nix", 0555, NULL), 0);
    assert_int_equal(tar_add_file_data(&w, "nix/a", 0444, "hello", 5, NULL), 0);
    assert_int_equal(tar_add_symlink(&w, "nix/l", "a", NULL), 0);
    assert_int_equal(tar_finish(&w, NULL), 0);
    assert_int_equal(m.len, 6 * TAR_BLOCK); /* dir, file and its data, symlink, end */
    assert_int_equal(w.size, m.len);
    const unsigned char *h = m.p;
    check_header(h);
    assert_string_equal((const char *)h, "nix/");
    assert_int_equal(h[156], '5');
    assert_int_equal(field(h, 100, 8), 0555);
    h += TAR_BLOCK;
    check_header(h);
    assert_string_equal((const char *)h, "nix/a");
    assert_int_equal(h[156], '0');
    assert_int_equal(field(h, 124, 12), 5);
    assert_int_equal(field(h, 100, 8), 0444);
    assert_memory_equal(h + TAR_BLOCK, "hello\0\0", 7);
    h += 2 * TAR_BLOCK;
    check_header(h);
    assert_int_equal(h[156], '2');
    assert_string_equal((const char *)h + 157, "a");
    for (size_t i = 3 * TAR_BLOCK + TAR_BLOCK; i < m.len; i++)
        assert_int_equal(m.p[i], 0);
    free(m.p);
}

/* A name of n bytes: pax header exactly when n > 100, its record's length right. */
static void long_name(size_t n)
{
    struct mem m = {0};
    struct tar_writer w;
    tar_writer_init(&w, mem_sink, &m);
    char *name = xmalloc(n + 1);
    memset(name, 'x', n);
    name[n] = '\0';
    assert_int_equal(tar_add_file_data(&w, name, 0444, "", 0, NULL), 0);
    if (n <= 100) {
        assert_int_equal(m.len, TAR_BLOCK);
        assert_memory_equal(m.p, name, n);
    } else {
        check_header(m.p);
        assert_int_equal(m.p[156], 'x');
        size_t plen = field(m.p, 124, 12);
        const char *rec = (const char *)m.p + TAR_BLOCK;
        char *end;
        unsigned long reclen = strtoul(rec, &end, 10);
        assert_int_equal(reclen, plen); /* one record, counting its own length */
        assert_int_equal(rec[plen - 1], '\n');
        assert_memory_equal(end, " path=", 6);
        assert_memory_equal(end + 6, name, n);
        size_t next = TAR_BLOCK + (plen + TAR_BLOCK - 1) / TAR_BLOCK * TAR_BLOCK;
        assert_int_equal(m.len, next + TAR_BLOCK);
        check_header(m.p + next);
    }
    free(name);
    free(m.p);
}

static void test_tar_long_names(void **state)
{
    (void)state;
    /* 100 fits ustar; 101 needs pax; around 88-92 and 990-999 the record's
     * length gains a digit. */
    size_t ns[] = {1, 99, 100, 101, 150, 984, 985, 986, 987, 988, 995, 996, 997, 4000};
    for (size_t i = 0; i < ARRAY_SIZE(ns); i++)
        long_name(ns[i]);
    struct tar_writer w;
    struct mem m = {0};
    tar_writer_init(&w, mem_sink, &m);
    char *huge = xmalloc(5000);
    memset(huge, 'y', 4999);
    huge[4999] = '\0';
    struct rx_error *err = NULL;
    assert_int_equal(tar_add_dir(&w, huge, 0555, &err), -1);
    assert_non_null(strstr(err->msg, "too long"));
    rx_error_free(err);
    free(huge);
    free(m.p);
}

/* A tree written by export_tar_path(), unpacked by GNU tar (the oracle), twice the same. */
static void test_tar_tree_roundtrip(void **state)
{
    (void)state;
    char *dir = td_tmpdir();
    _cleanup_free_ char *store = xasprintf("%s/store", dir);
    _cleanup_free_ char *base = xasprintf("%s/store/abc-pkg", dir);
    _cleanup_free_ char *sub = xasprintf("%s/bin", base);
    _cleanup_free_ char *lname = xasprintf("%s/%0150d", base, 7);
    assert_int_equal(mkdir(store, 0755), 0);
    assert_int_equal(mkdir(base, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    _cleanup_free_ char *prog = xasprintf("%s/zz", sub);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "line %d\n", i);
    fclose(f);
    assert_int_equal(chmod(prog, 0755), 0);
    f = fopen(lname, "w");
    assert_non_null(f);
    fputs("long", f);
    fclose(f);
    _cleanup_free_ char *link = xasprintf("%s/aa", sub);
    assert_int_equal(symlink("zz", link), 0);
    int sfd = open(store, O_RDONLY | O_DIRECTORY);
    assert_true(sfd >= 0);
    struct mem a = {0}, b = {0};
    struct tar_writer w;
    tar_writer_init(&w, mem_sink, &a);
    assert_int_equal(export_tar_path(&w, sfd, "abc-pkg", NULL), 0);
    assert_int_equal(tar_finish(&w, NULL), 0);
    assert_int_equal(chmod(lname, 0600), 0); /* modes are normalised: no change */
    tar_writer_init(&w, mem_sink, &b);
    assert_int_equal(export_tar_path(&w, sfd, "abc-pkg", NULL), 0);
    assert_int_equal(tar_finish(&w, NULL), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    close(sfd);

    _cleanup_free_ char *tarfile = xasprintf("%s/t.tar", dir);
    f = fopen(tarfile, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(a.p, 1, a.len, f), a.len);
    fclose(f);
    _cleanup_free_ char *cmd = xasprintf(
        "set -e; cd '%s'; mkdir out; tar -xf t.tar -C out; "
        "test \"$(tar -tf t.tar | tr '\\n' ' ')\" = 'nix/store/abc-pkg/ nix/store/abc-pkg/%0150d "
        "nix/store/abc-pkg/bin/ nix/store/abc-pkg/bin/aa nix/store/abc-pkg/bin/zz '; "
        "cmp out/nix/store/abc-pkg/bin/zz store/abc-pkg/bin/zz; "
        "test \"$(readlink out/nix/store/abc-pkg/bin/aa)\" = zz; "
        "test \"$(cat out/nix/store/abc-pkg/%0150d)\" = long; "
        "test \"$(stat -c %%a out/nix/store/abc-pkg/bin/zz)\" = 555; "
        "test \"$(stat -c %%a out/nix/store/abc-pkg/%0150d)\" = 444; "
        "test \"$(stat -c %%Y out/nix/store/abc-pkg/bin/zz)\" = 1; "
        "test \"$(tar --numeric-owner -tvf t.tar | awk '{print $2}' | sort -u)\" = 0/0",
        dir, 7, 7, 7);
    assert_int_equal(system(cmd), 0);
    free(a.p);
    free(b.p);
    td_rmtree(dir);
    free(dir);
}

static void test_export_mode(void **state)
{
    (void)state;
    struct stat st = {0};
    st.st_mode = S_IFREG | 0644;
    assert_int_equal(export_mode(&st), 0444);
    st.st_mode = S_IFREG | 0700;
    assert_int_equal(export_mode(&st), 0555);
    st.st_mode = S_IFDIR | 0700;
    assert_int_equal(export_mode(&st), 0555);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tar_headers),
        cmocka_unit_test(test_tar_long_names),
        cmocka_unit_test(test_tar_tree_roundtrip),
        cmocka_unit_test(test_export_mode),
    };
    return cmocka_run_group_tests_name("export-tar", tests, NULL, NULL);
}
