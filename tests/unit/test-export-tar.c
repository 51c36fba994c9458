#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

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
    assert_memory_equal(h + 257,
                        "ustar\0"
                        "00",
                        8);
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

/* A store of n small paths, "<i>-p" each holding a file; their names sorted in *bases. */
static int fake_store(const char *dir, size_t n, char ***bases)
{
    _cleanup_free_ char *store = xasprintf("%s/store", dir);
    assert_int_equal(mkdir(store, 0755), 0);
    *bases = xcalloc(n, sizeof **bases);
    for (size_t i = 0; i < n; i++) {
        (*bases)[i] = xasprintf("%03zu-p", i);
        _cleanup_free_ char *p = xasprintf("%s/%s", store, (*bases)[i]);
        assert_int_equal(mkdir(p, 0755), 0);
        _cleanup_free_ char *f = xasprintf("%s/file", p);
        FILE *fp = fopen(f, "w");
        assert_non_null(fp);
        fprintf(fp, "%zu\n", i);
        fclose(fp);
    }
    int fd = open(store, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    return fd;
}

static json_t *load_json(int dirfd, const char *rel)
{
    int fd = openat(dirfd, rel, O_RDONLY);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "r");
    json_t *j = json_loadf(f, 0, NULL);
    fclose(f);
    assert_non_null(j);
    return j;
}

/* Layers: one per path up to EXPORT_MAX_LAYERS, the rest in the last; or one in all. */
static void layers_of(size_t npaths, bool one, size_t want)
{
    char *dir = td_tmpdir();
    char **bases;
    int sfd = fake_store(dir, npaths, &bases);
    _cleanup_free_ char *out = xasprintf("%s/out", dir);
    assert_int_equal(mkdir(out, 0755), 0);
    int ofd = open(out, O_RDONLY | O_DIRECTORY);
    json_t *labels = json_pack("{s:s}", "k", "v");
    struct export_image im = {.store_fd = sfd,
                              .bases = bases,
                              .nbases = npaths,
                              .one_layer = one,
                              .entry = "/nix/store/000-p/file",
                              .path_env = "PATH=/x",
                              .labels = labels,
                              .arch = "amd64",
                              .ref_name = "latest"};
    struct export_digests d;
    struct rx_error *err = NULL;
    if (export_oci_layout(&im, ofd, &d, &err) < 0)
        fail_msg("%s", err->msg);
    assert_int_equal(d.nlayers, want);
    json_t *index = load_json(ofd, "index.json");
    const char *digest = json_string_value(
        json_object_get(json_array_get(json_object_get(index, "manifests"), 0), "digest"));
    _cleanup_free_ char *want_digest = xasprintf("sha256:%s", d.manifest);
    assert_string_equal(digest, want_digest);
    _cleanup_free_ char *mrel = xasprintf("blobs/sha256/%s", d.manifest);
    json_t *manifest = load_json(ofd, mrel);
    assert_int_equal(json_array_size(json_object_get(manifest, "layers")), want);
    /* Every path is in exactly one layer, in order; /init in the last. */
    _cleanup_free_ char *cmd = xasprintf("set -e; cd '%s/blobs/sha256'; for l in", out);
    for (size_t i = 0; i < d.nlayers; i++) {
        char *next = xasprintf("%s %s", cmd, d.layers[i]);
        free(cmd);
        cmd = next;
    }
    char *next = xasprintf("%s; do tar -tf $l; done | grep -v '/$' > '%s/list'; "
                           "test \"$(grep -c '/file$' '%s/list')\" = %zu; "
                           "test \"$(tail -n 1 '%s/list')\" = init; "
                           "test \"$(grep -c . '%s/list')\" = %zu",
                           cmd, dir, dir, npaths, dir, dir, npaths + 1);
    free(cmd);
    cmd = next;
    assert_int_equal(system(cmd), 0);
    /* The docker archive names the same blobs. */
    _cleanup_free_ char *tar = xasprintf("%s/a.tar", dir);
    int afd = open(tar, O_WRONLY | O_CREAT | O_EXCL, 0644);
    assert_true(afd >= 0);
    assert_int_equal(export_docker_archive(ofd, &d, "p:latest", afd, NULL), 0);
    close(afd);
    _cleanup_free_ char *check = xasprintf(
        "set -e; cd '%s'; test \"$(tar -xOf a.tar manifest.json | "
        "python3 -c 'import json,sys; m=json.load(sys.stdin)[0]; print(len(m[\"Layers\"]), "
        "m[\"Config\"], m[\"RepoTags\"][0])')\" = '%zu %s.json p:latest'",
        dir, want, d.config);
    assert_int_equal(system(check), 0);
    json_decref(index);
    json_decref(manifest);
    json_decref(labels);
    export_digests_release(&d);
    close(ofd);
    close(sfd);
    for (size_t i = 0; i < npaths; i++)
        free(bases[i]);
    free(bases);
    td_rmtree(dir);
    free(dir);
}

static void test_oci_layers(void **state)
{
    (void)state;
    layers_of(3, false, 3);
    layers_of(3, true, 1);
    layers_of(EXPORT_MAX_LAYERS, false, EXPORT_MAX_LAYERS);
    layers_of(EXPORT_MAX_LAYERS + 2, false, EXPORT_MAX_LAYERS);
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
        cmocka_unit_test(test_tar_headers),        cmocka_unit_test(test_tar_long_names),
        cmocka_unit_test(test_tar_tree_roundtrip), cmocka_unit_test(test_oci_layers),
        cmocka_unit_test(test_export_mode),
    };
    return cmocka_run_group_tests_name("export-tar", tests, NULL, NULL);
}
