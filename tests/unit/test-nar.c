#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-helpers.h"

#include "crypto-hash.h"
#include "nar-dump.h"
#include "nar-reader.h"
#include "nar-unpack.h"
#include "util-buf.h"
#include "util-mem.h"

/* ---- helpers ---- */

/* A visitor that logs events as text, to check structure and order. */
struct log {
    struct rx_buf b;
};

static void logf_(struct log *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct log *l, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    assert_int_equal(rx_buf_append(&l->b, tmp, (size_t)n), 0);
}

static int log_dir(void *ctx, const char *name, size_t n, struct rx_error **err)
{
    (void)err;
    logf_(ctx, "D(%.*s)", (int)n, name ? name : "");
    return 0;
}
static int log_dir_end(void *ctx, struct rx_error **err)
{
    (void)err;
    logf_(ctx, "E ");
    return 0;
}
static int log_file(void *ctx, const char *name, size_t n, bool exec, uint64_t size,
                    uint64_t off, struct rx_error **err)
{
    (void)err;
    (void)off;
    logf_(ctx, "F(%.*s%s %llu) ", (int)n, name ? name : "", exec ? "*" : "",
          (unsigned long long)size);
    return 0;
}
static int log_link(void *ctx, const char *name, size_t n, const char *t, size_t tl,
                    struct rx_error **err)
{
    (void)err;
    logf_(ctx, "L(%.*s->%.*s) ", (int)n, name ? name : "", (int)tl, t);
    return 0;
}
static const struct nar_visitor log_visitor = {
    .directory_begin = log_dir,
    .directory_end = log_dir_end,
    .file_begin = log_file,
    .symlink = log_link,
};

/* Parse data in chunks of `chunk` bytes (0: all at once); returns the log or NULL with *err. */
static char *parse_mem(const void *data, size_t len, size_t chunk, struct rx_error **err)
{
    struct log l = {RX_BUF_INIT((size_t)-1)};
    struct nar_reader *r = nar_reader_new(&log_visitor, &l);
    const unsigned char *p = data;
    int ret = 0;
    if (chunk == 0)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len && ret == 0; off += chunk)
        ret = nar_reader_feed(r, p + off, len - off < chunk ? len - off : chunk, err);
    if (ret == 0)
        ret = nar_reader_finish(r, err);
    nar_reader_free(r);
    if (ret < 0) {
        rx_buf_release(&l.b);
        return NULL;
    }
    return rx_buf_detach(&l.b, NULL);
}

static int buf_sink(void *ctx, const void *d, size_t n, struct rx_error **err)
{
    (void)err;
    return rx_buf_append(ctx, d, n);
}

static char *dump_mem(const char *path, size_t *len)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    struct rx_error *err = NULL;
    if (nar_dump_path(path, buf_sink, &b, &err) < 0)
        fail_msg("dump of '%s' failed: %s", path, err->msg);
    return rx_buf_detach(&b, len);
}

/* Whether unpack_mem writes small files from a helper thread. */
static bool unpack_helper = true;

/* Unpack data (in 4 KiB pieces) into dir/name. */
static int unpack_mem(const void *data, size_t len, const char *dir, const char *name,
                      bool canonical, struct rx_error **err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    struct nar_unpack_opts o = {.canonical = canonical, .umask = 022, .helper_thread = unpack_helper};
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    /* Feed through a pipe from a child so nar_unpack_fd's cleanup path is used. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pipefd[0]);
        const char *p = data;
        size_t left = len;
        while (left) {
            size_t n = left < 4096 ? left : 4096;
            ssize_t w = write(pipefd[1], p, n);
            if (w <= 0)
                _exit(1);
            p += w;
            left -= (size_t)w;
        }
        _exit(0);
    }
    close(pipefd[1]);
    int r = nar_unpack_fd(pipefd[0], dfd, name, &o, err);
    /* Drain so the writer can finish. */
    char sink[4096];
    while (read(pipefd[0], sink, sizeof sink) > 0)
        ;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    close(dfd);
    return r;
}

static char *nix32_of(const void *data, size_t len)
{
    struct hash h;
    sha256_buf(data, len, &h);
    char *s = xmalloc(HASH_STR_MAX);
    hash_format(&h, HASH_NIX32, s);
    return s;
}

static void write_file(const char *path, const char *content, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    chmod(path, mode);
}

/* A tiny NAR builder for hand-made hostile inputs. */
static void put_u64(struct rx_buf *b, uint64_t v)
{
    unsigned char x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (unsigned char)(v >> (8 * i));
    assert_int_equal(rx_buf_append(b, x, 8), 0);
}
static void put_bytes(struct rx_buf *b, const char *s, size_t n)
{
    static const char zero[8];
    put_u64(b, n);
    assert_int_equal(rx_buf_append(b, s, n), 0);
    assert_int_equal(rx_buf_append(b, zero, (8 - n % 8) % 8), 0);
}
static void put_s(struct rx_buf *b, const char *s)
{
    put_bytes(b, s, strlen(s));
}
/* Put several string tokens separated by spaces ("" for an empty token is '~'). */
static void put_tokens(struct rx_buf *b, const char *spaced)
{
    char *copy = xstrdup(spaced), *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
        put_s(b, strcmp(t, "~") == 0 ? "" : t);
    free(copy);
}

/* ---- third-party vectors ---- */

static const struct {
    const char *file, *nix32;
} valid_nars[] = {
    {"attic/3k1wymic8p7h5pfcqfhh0jan8ny2a712-attic-test-with-deps-c-final.nar", "0irrblnkd53iq8giwqs62xwajapg83qz9dq4psf05d9fr07apd8h"},
    {"attic/544qcchwgcgpz3xi1bbml28f8jj6009p-attic-test-with-deps-b.nar", "1z1yb2nknlk53j6har56dzb1z6mambxrljw8cgdpn6hwbh5bprzk"},
    {"attic/n7q4i7rlmbk4xz8qdsxpm6jbhrnxraq2-attic-test-with-deps-a.nar", "12isigapby2207zgazr567y6jjk9rinl4mlpalzdpnml4w40bh4p"},
    {"attic/nm1w9sdm6j6icmhd2q3260hl1w9zj6li-attic-test-no-deps.nar", "0hjszid30ak3rkzvc3m94c3risg8wz2hayy100c1fg92bjvvvsms"},
    {"go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar", "0lxjvvpr59c2mdram7ympy5ay741f180kv3349hvfc3f8nrmbqf6"},
    {"harmonia/test-dir.nar", "0npcbvb31s59va3xb30662k265pfnjb3160l9kj07f8ij090rp0a"},
    {"harmonia/test-exec.nar", "1mqhkzv79y57jhx04cwc3bmkk91ilv345sjynq4lyqb0j2blwq6l"},
    {"harmonia/test-text.nar", "0agh4wma8c648p1wljsrllzkjadl8s5mcckprh2h9v6akp28qm8s"},
    {"nixos-nix/functional/case-collision.nar", "1a5dmiy3zw1slqzyqhjwckg6qib8d9afdb7qqr0xf4xlvp423nyq"},
    {"nixos-nix/functional/case.nar", "18y2j60c0p8p6n21ybhxs74wpfg8aw2izq48622zcvxv7wsw5l6c"},
    {"nixos-nix/functional/unnormalized.nar", "19brl1ylmd08390x9yvcyddgsgb0ph7yj0nnxg7qd9zda3aksrbl"},
    {"nixos-nix/fuzz/empty-subdir.nar", "0a2rpdryvrms5faqh6n1p070sm5pn9a5b804nf4k5yc56b059b46"},
    {"nixos-nix/fuzz/simple.nar", "0wa15b4x926wm9a4bp8hzqc0gz0cf788j6g92zj1wwjcbycdlb84"},
    {"nixos-nix/unit/regular-one-byte-zero-padding.nar", "0rsv7kag23nvdpy4500mv2m0b4sm4c8fkgqrfsrmv1kgk77bi81c"},
    {"tvix/complicated.nar", "06li2smqgskxxr291x1cgzf61rzm7c8f93bisnglq0nzm1wj5mgb"},
    {"tvix/helloworld.nar", "0h40zg6hakjv951nyhdad7mv9za56m3za5gnpiw5s1hbwcxzdrq3"},
    {"tvix/symlink.nar", "1wcwacrb5q36hpsx1shk0dkm26hwbmqmgi0nm973h9jqkdz3jz89"},
    {"zombiezen-go-nix/1byte-regular.nar", "0k8kx7xr2ylxdwwxypipf6gswv5ag5xfhbnwd0xbz79526l5023k"},
    {"zombiezen-go-nix/empty-directory-siblings.nar", "1hzj1gbqri5c4l7xfqlkhah0dfbh9p1lw7vxca9s2zniyd59zkal"},
    {"zombiezen-go-nix/empty-directory.nar", "0sjjj9z1dhilhpc8pq4154czrb79z9cm044jvn75kxcjv6v5l2m5"},
    {"zombiezen-go-nix/empty-file.nar", "0ip26j2h11n1kgkz36rl4akv694yz65hr72q4kv4b3lxcbi65b3p"},
    {"zombiezen-go-nix/hello-script.nar", "1jyf1flklp5bvbbg9hcysvhrzckp7wgp0g22qljhwx34r0p3x99z"},
    {"zombiezen-go-nix/hello-world.nar", "0xmvxmsmmc6n79sk2h3r6db3yp8drmxps61mdk7iqnvc6vcsww60"},
    {"zombiezen-go-nix/mini-drv.nar", "0s7jkwhzasrxwxpcgb2lk10hp7cd1mppw931i24arzyzrlgp0af3"},
    {"zombiezen-go-nix/nested-dir-and-common-prefix.nar", "1lasf0wmax5vaz0ysg9ja9mvbzsfbqb3jls8mz7sc9fry6p56i5h"},
};

/*
 * Every valid vector: its sha256 is the listed NarHash; it parses the same
 * in any chunking; it unpacks, and dumping the result gives the same bytes
 * and the same hash from nar_hash_path().
 */
static void test_nar_valid_vectors_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(valid_nars); i++) {
        char *rel = xasprintf("nar/%s", valid_nars[i].file);
        size_t len;
        char *data = td_read_rel(rel, &len);
        char *h = nix32_of(data, len);
        assert_string_equal(h + 7, valid_nars[i].nix32);

        struct rx_error *err = NULL;
        char *whole = parse_mem(data, len, 0, &err);
        if (!whole)
            fail_msg("%s: %s", rel, err->msg);
        static const size_t chunks[] = {1, 3, 7, 8, 13, 4096};
        for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
            char *again = parse_mem(data, len, chunks[c], NULL);
            assert_non_null(again);
            assert_string_equal(again, whole);
            free(again);
        }

        char *tmp = td_tmpdir();
        for (int mode = 0; mode < 4; mode++) {
            bool canonical = mode & 1;
            unpack_helper = mode & 2;
            static const char *const names[] = {"plain", "canon", "plain-helper", "canon-helper"};
            const char *name = names[mode];
            if (unpack_mem(data, len, tmp, name, canonical, &err) < 0)
                fail_msg("%s: unpack: %s", rel, err->msg);
            char *out = xasprintf("%s/%s", tmp, name);
            size_t dlen;
            char *dumped = dump_mem(out, &dlen);
            assert_int_equal(dlen, len);
            assert_memory_equal(dumped, data, len);
            struct hash nh;
            uint64_t nsize;
            assert_int_equal(nar_hash_path(out, &nh, &nsize, NULL), 0);
            char hs[HASH_STR_MAX];
            hash_format(&nh, HASH_NIX32, hs);
            assert_string_equal(hs, h);
            assert_int_equal(nsize, len);
            free(dumped);
            free(out);
        }
        unpack_helper = true;
        td_rmtree(tmp);
        free(tmp);
        free(whole);
        free(h);
        free(data);
        free(rel);
    }
}

/* The real cache.nixos.org NAR: tree as the vectors README lists it, and bin/arp byte-exact. */
static void test_nar_net_tools_tree(void **state)
{
    (void)state;
    size_t len;
    char *data = td_read_rel("nar/go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar", &len);
    assert_int_equal(len, 464152);
    char *log = parse_mem(data, len, 0, NULL);
    assert_non_null(log);
    const char *want_prefix =
        "D()D(bin)F(arp* 55288) L(dnsdomainname->hostname) L(domainname->hostname) "
        "F(hostname* 17704) F(ifconfig* 72576) F(nameif* 18776) F(netstat* 131784) "
        "L(nisdomainname->hostname) F(plipconfig* 13160) F(rarp* 30384) F(route* 61928) "
        "F(slattach* 35672) L(ypdomainname->hostname) E L(sbin->bin) D(share)D(man)D(man1)"
        "F(dnsdomainname.1.gz 40) F(domainname.1.gz 40) F(hostname.1.gz 1660) "
        "F(nisdomainname.1.gz 40) F(ypdomainname.1.gz 40) E D(man5)F(ethers.5.gz 563) E "
        "D(man8)F(arp.8.gz 2464) F(ifconfig.8.gz 3382) F(nameif.8.gz 523) F(netstat.8.gz 4284) "
        "F(plipconfig.8.gz 889) F(rarp.8.gz 1198) F(route.8.gz 3525) F(slattach.8.gz 1441) "
        "E E E E ";
    assert_string_equal(log, want_prefix);

    char *tmp = td_tmpdir();
    struct rx_error *err = NULL;
    assert_int_equal(unpack_mem(data, len, tmp, "out", true, &err), 0);
    char *arp = xasprintf("%s/out/bin/arp", tmp);
    size_t alen, wlen;
    char *got = td_read(arp, &alen);
    char *want = td_read_rel("nar/go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar_bin_arp", &wlen);
    assert_int_equal(alen, wlen);
    assert_memory_equal(got, want, wlen);
    struct stat st;
    assert_int_equal(stat(arp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtime, 1);
    char *sbin = xasprintf("%s/out/sbin", tmp);
    char target[64];
    ssize_t tl = readlink(sbin, target, sizeof target);
    assert_int_equal(tl, 3);
    assert_memory_equal(target, "bin", 3);
    assert_int_equal(lstat(sbin, &st), 0);
    assert_int_equal(st.st_mtime, 1);
    char *man = xasprintf("%s/out/share/man/man8/arp.8.gz", tmp);
    assert_int_equal(stat(man, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0444);
    assert_int_equal(st.st_size, 2464);
    char *root = xasprintf("%s/out", tmp);
    assert_int_equal(stat(root, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    assert_int_equal(st.st_mtime, 1);
    free(root);
    free(man);
    free(sbin);
    free(got);
    free(want);
    free(arp);
    free(log);
    free(data);
    td_rmtree(tmp);
    free(tmp);
}

static const struct {
    const char *file, *msg;
} bad_nars[] = {
    {"nixos-nix/unit/dot.nar", "invalid file name '.'"},
    {"nixos-nix/unit/dotdot.nar", "invalid file name '..'"},
    {"nixos-nix/unit/slash.nar", "invalid file name 'x/y'"},
    {"nixos-nix/unit/nul-character.nar", "invalid file name 'f\\x00o"},
    {"nixos-nix/unit/empty.nar", "invalid file name ''"},
    {"nixos-nix/unit/executable-after-contents.nar", "expected ')', got 'executable'"},
    {"nixos-nix/unit/invalid-tag-instead-of-contents.nar", "'contents', got 'AAAAAAAA'"},
    {"nixos-nix/unit/name-after-node.nar", "expected 'name', got 'node'"},
    {"nixos-nix/unit/regular-one-byte-non-zero-padding.nar", "non-zero padding"},
    {"nixos-nix/unit/regular-truncated-large-contents.nar", "unexpected end of input"},
    {"nixos-nix/unit/regular-truncated-padding.nar", "unexpected end of input"},
    {"nixos-nix/functional/duplicate.nar", "not sorted or are duplicated"},
    {"zombiezen-go-nix/invalid-order.nar", "not sorted or are duplicated"},
    {"zombiezen-go-nix/only-magic.nar", "unexpected end of input"},
};

/* Every rejected vector fails with the expected reason, in any chunking, and unpacks to nothing. */
static void test_nar_rejects_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(bad_nars); i++) {
        char *rel = xasprintf("nar/%s", bad_nars[i].file);
        size_t len;
        char *data = td_read_rel(rel, &len);
        static const size_t chunks[] = {0, 1, 5};
        for (size_t c = 0; c < ARRAY_SIZE(chunks); c++) {
            struct rx_error *err = NULL;
            char *log = parse_mem(data, len, chunks[c], &err);
            if (log)
                fail_msg("%s was accepted", rel);
            assert_non_null(err);
            assert_int_equal(err->code, RX_EFORMAT);
            if (!strstr(err->msg, bad_nars[i].msg))
                fail_msg("%s: message '%s' lacks '%s'", rel, err->msg, bad_nars[i].msg);
            rx_error_free(err);
        }
        char *tmp = td_tmpdir();
        struct rx_error *err = NULL;
        assert_int_equal(unpack_mem(data, len, tmp, "out", true, &err), -1);
        rx_error_free(err);
        char *out = xasprintf("%s/out", tmp);
        struct stat st;
        if (lstat(out, &st) == 0)
            fail_msg("%s: a rejected NAR left '%s' behind", rel, out);
        free(out);
        td_rmtree(tmp);
        free(tmp);
        free(data);
        free(rel);
    }
}

/* A parser consumes exactly the 120 bytes; anything after them is an error. */
static void test_nar_trailing_bytes_rejected(void **state)
{
    (void)state;
    size_t len;
    char *data = td_read_rel("nar/nixos-nix/unit/regular-one-byte-zero-padding.nar", &len);
    assert_int_equal(len, 120);
    struct nar_reader *r = nar_reader_new(NULL, NULL);
    assert_int_equal(nar_reader_feed(r, data, len, NULL), 0);
    assert_true(nar_reader_done(r));
    assert_int_equal(nar_reader_offset(r), 120);
    struct rx_error *err = NULL;
    assert_int_equal(nar_reader_feed(r, "\0", 1, &err), -1);
    assert_non_null(strstr(err->msg, "after the end"));
    rx_error_free(err);
    nar_reader_free(r);
    free(data);
}

/*
 * Symlink-escape probes: a symlink to "/" next to a directory whose name
 * differs only by case or Unicode form.  Everything must land inside the
 * output, and the symlink must stay a symlink.
 */
static void test_nar_escape_probes_stay_inside(void **state)
{
    (void)state;
    const char *files[] = {"nar/nixos-nix/functional/case-collision.nar",
                           "nar/nixos-nix/functional/unnormalized.nar"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        size_t len;
        char *data = td_read_rel(files[i], &len);
        char *tmp = td_tmpdir();
        struct rx_error *err = NULL;
        if (unpack_mem(data, len, tmp, "out", false, &err) < 0)
            fail_msg("%s: %s", files[i], err->msg);
        char *meow = NULL;
        if (i == 0) {
            meow = xasprintf("%s/out/test/nix/var/nix/profiles/default/bin/meow", tmp);
            char *link = xasprintf("%s/out/Test~nix~case~hack~1", tmp);
            struct stat st;
            assert_int_equal(lstat(link, &st), 0);
            assert_true(S_ISLNK(st.st_mode));
            free(link);
        } else {
            meow = xasprintf("%s/out/a\xcc\x82/nix/var/nix/profiles/default/bin/meow", tmp);
            struct stat st;
            if (stat(meow, &st) != 0) {
                free(meow);
                meow = xasprintf("%s/out/\xc3\xa2/nix/var/nix/profiles/default/bin/meow", tmp);
            }
        }
        struct stat st;
        assert_int_equal(lstat(meow, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        free(meow);
        td_rmtree(tmp);
        free(tmp);
        free(data);
    }
}

/* Hand-made hostile inputs for each refusal the reader promises. */
static void test_nar_rejects_hostile_inputs(void **state)
{
    (void)state;
    struct {
        const char *what, *msg;
        struct rx_buf b;
    } c[20];
    size_t n = 0;
    char big[5000];
    memset(big, 'a', sizeof big);

#define CASE(w, m) (c[n].what = (w), c[n].msg = (m), c[n].b = (struct rx_buf)RX_BUF_INIT((size_t)-1), &c[n++].b)
    struct rx_buf *b;
    b = CASE("bad magic", "bad magic");
    put_tokens(b, "nix-archive-2 ( type regular contents x )");
    b = CASE("unknown type", "expected 'regular', 'symlink' or 'directory', got 'fifo'");
    put_tokens(b, "nix-archive-1 ( type fifo )");
    b = CASE("unknown field", "got 'foo'");
    put_tokens(b, "nix-archive-1 ( type regular foo ~ contents x )");
    b = CASE("non-empty executable marker", "executable marker has a non-empty value");
    put_tokens(b, "nix-archive-1 ( type regular executable 1 contents x )");
    b = CASE("regular without contents", "expected 'executable' or 'contents', got ')'");
    put_tokens(b, "nix-archive-1 ( type regular )");
    b = CASE("name of 256 bytes", "file name longer than 255 bytes");
    put_tokens(b, "nix-archive-1 ( type directory entry ( name");
    put_bytes(b, big, 256);
    put_tokens(b, "node ( type regular contents x ) ) )");
    b = CASE("target of 4096 bytes", "symlink target longer than 4095 bytes");
    put_tokens(b, "nix-archive-1 ( type symlink target");
    put_bytes(b, big, 4096);
    put_tokens(b, ")");
    b = CASE("empty target", "empty target");
    put_tokens(b, "nix-archive-1 ( type symlink target ~ )");
    b = CASE("NUL in target", "target contains NUL");
    put_tokens(b, "nix-archive-1 ( type symlink target");
    put_bytes(b, "a\0b", 3);
    put_tokens(b, ")");
    b = CASE("keyword of 2^63 bytes", "got a 9223372036854775808-byte token");
    put_tokens(b, "nix-archive-1 (");
    put_u64(b, (uint64_t)1 << 63);
    b = CASE("contents of 2^63 bytes", "unexpected end of input");
    put_tokens(b, "nix-archive-1 ( type regular contents");
    put_u64(b, (uint64_t)1 << 63);
    assert_int_equal(rx_buf_append(b, "abc", 3), 0);
    b = CASE("duplicate entries", "not sorted or are duplicated");
    put_tokens(b, "nix-archive-1 ( type directory entry ( name a node ( type regular contents x ) ) "
                  "entry ( name a node ( type regular contents y ) ) )");
    b = CASE("unsorted (B after a)", "not sorted");
    put_tokens(b, "nix-archive-1 ( type directory entry ( name a node ( type regular contents x ) ) "
                  "entry ( name B node ( type regular contents y ) ) )");
    b = CASE("two root nodes", "after the end");
    put_tokens(b, "nix-archive-1 ( type regular contents x ) ( type regular contents x )");
    b = CASE("missing entry close", "expected ')', got 'entry'");
    put_tokens(b, "nix-archive-1 ( type directory entry ( name a node ( type regular contents x ) "
                  "entry ( name b node ( type regular contents y ) ) )");
    b = CASE("empty input", "unexpected end of input");
#undef CASE

    for (size_t i = 0; i < n; i++) {
        struct rx_error *err = NULL;
        char *log = parse_mem(c[i].b.data ? c[i].b.data : "", c[i].b.len, 0, &err);
        if (log)
            fail_msg("%s: accepted", c[i].what);
        if (!strstr(err->msg, c[i].msg))
            fail_msg("%s: message '%s' lacks '%s'", c[i].what, err->msg, c[i].msg);
        rx_error_free(err);
        rx_buf_release(&c[i].b);
    }
}

static void nested(struct rx_buf *b, int depth)
{
    put_tokens(b, "nix-archive-1 ( type directory");
    for (int i = 0; i < depth - 1; i++)
        put_tokens(b, "entry ( name d node ( type directory");
    for (int i = 0; i < depth - 1; i++)
        put_tokens(b, ") )");
    put_tokens(b, ")");
}

/* Nesting up to NAR_MAX_DEPTH directories is fine; one more is refused without recursion. */
static void test_nar_depth_bound(void **state)
{
    (void)state;
    struct rx_buf ok = RX_BUF_INIT((size_t)-1), deep = RX_BUF_INIT((size_t)-1);
    nested(&ok, NAR_MAX_DEPTH);
    nested(&deep, NAR_MAX_DEPTH + 1);
    char *log = parse_mem(ok.data, ok.len, 0, NULL);
    assert_non_null(log);
    free(log);
    char *tmp = td_tmpdir();
    assert_int_equal(unpack_mem(ok.data, ok.len, tmp, "ok", true, NULL), 0);
    struct rx_error *err = NULL;
    assert_null(parse_mem(deep.data, deep.len, 0, &err));
    assert_non_null(strstr(err->msg, "nested deeper than 256"));
    rx_error_clear(&err);
    /* A million-deep NAR costs nothing: refused at level 257. */
    struct rx_buf huge = RX_BUF_INIT((size_t)-1);
    put_tokens(&huge, "nix-archive-1 ( type directory");
    for (int i = 0; i < 100000; i++)
        put_tokens(&huge, "entry ( name d node ( type directory");
    assert_null(parse_mem(huge.data, huge.len, 0, &err));
    rx_error_clear(&err);
    td_rmtree(tmp);
    free(tmp);
    rx_buf_release(&ok);
    rx_buf_release(&deep);
    rx_buf_release(&huge);
}

/*
 * A tree NAR_MAX_DEPTH directories deep, with a file before and after the
 * subdirectory at every level, unpacks with few fds: a hostile NAR must not
 * use up the process's fds (16 unpacks at once share them).
 */
static void test_nar_unpack_deep_tree_with_few_fds(void **state)
{
    (void)state;
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    put_tokens(&b, "nix-archive-1 ( type directory");
    for (int i = 0; i < NAR_MAX_DEPTH - 1; i++)
        put_tokens(&b, "entry ( name a node ( type regular contents x ) ) "
                       "entry ( name d node ( type directory");
    for (int i = 0; i < NAR_MAX_DEPTH - 1; i++)
        put_tokens(&b, ") ) entry ( name z node ( type symlink target a ) )");
    put_tokens(&b, ")");
    char *tmp = td_tmpdir();
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 40;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    bool helper = unpack_helper;
    unpack_helper = false;
    struct rx_error *err = NULL;
    int r = unpack_mem(b.data, b.len, tmp, "deep", true, &err);
    unpack_helper = helper;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    if (r < 0)
        fail_msg("unpack failed: %s", err->msg);
    _cleanup_free_ char *root = xasprintf("%s/deep", tmp);
    size_t len;
    _cleanup_free_ char *again = dump_mem(root, &len);
    assert_int_equal(len, b.len);
    assert_memory_equal(again, b.data, len);
    td_rmtree(tmp);
    free(tmp);
    rx_buf_release(&b);
}

/* Unpacking refuses to touch an existing target and removes a partial tree on failure. */
static void test_nar_unpack_failure_leaves_nothing(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    put_tokens(&b, "nix-archive-1 ( type directory entry ( name a node ( type regular contents x ) ) "
                   "entry ( name b node ( type directory entry ( name c node ( type regular contents y ) ) ) ) "
                   "entry ( name c node ( type symlink target /etc ) ) "
                   "entry ( name d node ( type regular executable 1 contents z ) ) )");
    struct rx_error *err = NULL;
    assert_int_equal(unpack_mem(b.data, b.len, tmp, "out", true, &err), -1);
    rx_error_clear(&err);
    char *out = xasprintf("%s/out", tmp);
    struct stat st;
    assert_int_equal(lstat(out, &st), -1);
    assert_int_equal(errno, ENOENT);

    /* An existing target is left alone. */
    assert_int_equal(mkdir(out, 0755), 0);
    char *keep = xasprintf("%s/keep", out);
    write_file(keep, "precious", 0644);
    rx_buf_reset(&b);
    put_tokens(&b, "nix-archive-1 ( type directory )");
    assert_int_equal(unpack_mem(b.data, b.len, tmp, "out", false, &err), -1);
    assert_int_equal(err->code, EEXIST);
    rx_error_clear(&err);
    assert_int_equal(lstat(keep, &st), 0);
    free(keep);
    free(out);
    rx_buf_release(&b);
    td_rmtree(tmp);
    free(tmp);
}

/* The worked examples of nix-formats.md 3.3: exact sizes and NarHashes of dumps. */
static void test_nar_dump_spec_examples(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    char *leaf = xasprintf("%s/leaf", tmp);
    assert_int_equal(mkdir(leaf, 0755), 0);
    char *data = xasprintf("%s/data", leaf);
    write_file(data, "leaf\n", 0644);
    char *exe = xasprintf("%s/exe", tmp);
    write_file(exe, "hi", 0755);
    char *link = xasprintf("%s/link", tmp);
    assert_int_equal(symlink("target", link), 0);
    const struct {
        const char *path;
        size_t size;
        const char *hash;
    } v[] = {
        {leaf, 288, "sha256:02i2d7q1k8xiq821ycarn3rsf1a4mbdav0vm9sw23plissngimgs"},
        {exe, 152, "sha256:1c6rqkr5bwysisjp98p61rizlvbckn59sqg8jybzi950d8rd50dq"},
        {link, 120, "sha256:0x67g3311ihxwarw846p2jc8wbxmv9bd8ryh7qjpp6d8yb56536b"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(v); i++) {
        struct hash h;
        uint64_t size;
        assert_int_equal(nar_hash_path(v[i].path, &h, &size, NULL), 0);
        char s[HASH_STR_MAX];
        hash_format(&h, HASH_NIX32, s);
        assert_string_equal(s, v[i].hash);
        assert_int_equal(size, v[i].size);
    }
    /* Only owner-execute matters: 0170 is executable, 0610 is not. */
    chmod(exe, 0170);
    struct hash h;
    assert_int_equal(nar_hash_path(exe, &h, NULL, NULL), 0);
    char s[HASH_STR_MAX];
    hash_format(&h, HASH_NIX32, s);
    assert_string_equal(s, v[1].hash);
    chmod(exe, 0611);
    assert_int_equal(nar_hash_path(exe, &h, NULL, NULL), 0);
    hash_format(&h, HASH_NIX32, s);
    assert_string_not_equal(s, v[1].hash);
    free(leaf);
    free(data);
    free(exe);
    free(link);
    td_rmtree(tmp);
    free(tmp);
}

/* Entries are written in byte order, not locale order: B < a < deep < f < z < é. */
static void test_nar_dump_sorts_bytewise(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    const char *names[] = {"\xc3\xa9", "z", "f", "B", "a"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        char *p = xasprintf("%s/%s", tmp, names[i]);
        write_file(p, "", 0644);
        free(p);
    }
    char *deep = xasprintf("%s/deep", tmp);
    assert_int_equal(mkdir(deep, 0755), 0);
    size_t len;
    char *nar = dump_mem(tmp, &len);
    char *log = parse_mem(nar, len, 0, NULL);
    assert_non_null(log);
    assert_string_equal(log, "D()F(B 0) F(a 0) D(deep)E F(f 0) F(z 0) F(\xc3\xa9 0) E ");
    free(log);
    free(nar);
    free(deep);
    td_rmtree(tmp);
    free(tmp);
}

static void test_nar_dump_rejects_special_files(void **state)
{
    (void)state;
    char *tmp = td_tmpdir();
    char *fifo = xasprintf("%s/fifo", tmp);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    struct rx_error *err = NULL;
    assert_int_equal(nar_dump_path(tmp, buf_sink, &b, &err), -1);
    assert_non_null(strstr(err->msg, "unsupported type"));
    rx_error_free(err);
    err = NULL;
    assert_int_equal(nar_dump_path("/nonexistent/runix", buf_sink, &b, &err), -1);
    assert_int_equal(err->code, ENOENT);
    rx_error_free(err);
    rx_buf_release(&b);
    free(fifo);
    td_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nar_valid_vectors_round_trip),
        cmocka_unit_test(test_nar_net_tools_tree),
        cmocka_unit_test(test_nar_rejects_vectors),
        cmocka_unit_test(test_nar_trailing_bytes_rejected),
        cmocka_unit_test(test_nar_escape_probes_stay_inside),
        cmocka_unit_test(test_nar_rejects_hostile_inputs),
        cmocka_unit_test(test_nar_depth_bound),
        cmocka_unit_test(test_nar_unpack_deep_tree_with_few_fds),
        cmocka_unit_test(test_nar_unpack_failure_leaves_nothing),
        cmocka_unit_test(test_nar_dump_spec_examples),
        cmocka_unit_test(test_nar_dump_sorts_bytewise),
        cmocka_unit_test(test_nar_dump_rejects_special_files),
    };
    return cmocka_run_group_tests_name("nar", tests, NULL, NULL);
}
