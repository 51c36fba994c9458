/* Unit tests of the fetcher's NAR pipeline on its own: real NARs, compressed here, checked. */
#include "config.h"

#include <dirent.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lzma.h>
#include <zstd.h>

#include "test-helpers.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include "crypto-hash.h"
#include "decompress.h"
#include "util-buf.h"
#include "util-mem.h"

#include "banned.h"

/* A real NAR from cache.nixos.org (see the README of the vectors). */
#define NET_TOOLS "nar/go-nix/nar_1094wph9z4nwlgvsd53abfz8i117ykiv5dwnq9nnhz846s7xqd7d.nar"
#define ROOT "00bgd045z0d4icpbc2yyz4gx48ak44la-net-tools-1.60_p20170221182432"
#define CHUNK 4096

struct fixture {
    char *tmp;
    int dir_fd;
    unsigned char *nar; /* the NAR, NarHash and NarSize right for it */
    size_t nar_len;
    unsigned char *file; /* nar compressed, FileHash and FileSize right for it */
    size_t file_len;
    struct nar_expect want;
    size_t fed; /* what run_pipeline fed before it stopped */
};

static void sha256_of(const void *p, size_t n, struct hash *out)
{
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, p, n);
    sha256_final(&c, out);
}

static unsigned char *compress(const char *method, const unsigned char *in, size_t n, size_t *outn)
{
    size_t cap = n + n / 2 + 65536;
    unsigned char *out = xmalloc(cap);
    if (strcmp(method, "xz") == 0) {
        size_t pos = 0;
        assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, in, n, out, &pos, cap),
                         LZMA_OK);
        *outn = pos;
    } else {
        size_t r = ZSTD_compress(out, cap, in, n, 3);
        assert_false(ZSTD_isError(r));
        *outn = r;
    }
    return out;
}

/* The NAR (with `extra` junk bytes after it) compressed with `method`, and what a narinfo says. */
static void prepare(struct fixture *fx, const char *method, size_t extra)
{
    size_t len;
    char *nar = td_read_rel(NET_TOOLS, &len);
    fx->nar = xrealloc(nar, len + extra);
    memset(fx->nar + len, 'x', extra);
    fx->nar_len = len;
    fx->file = compress(method, fx->nar, len + extra, &fx->file_len);
    struct nar_expect *w = &fx->want;
    snprintf(w->compression, sizeof w->compression, "%s", method);
    w->has_file_hash = w->has_file_size = true;
    sha256_of(fx->file, fx->file_len, &w->file_hash);
    w->file_size = fx->file_len;
    sha256_of(fx->nar, fx->nar_len, &w->nar_hash);
    w->nar_size = fx->nar_len;
}

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof *fx);
    fx->tmp = td_tmpdir();
    fx->dir_fd = td_open_dir(fx->tmp);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    td_tmpdir_free(fx->tmp, fx->dir_fd);
    free(fx->nar);
    free(fx->file);
    free(fx);
    return 0;
}

/*
 * Feed the first `len` bytes of fx->file in chunks and finish; returns the
 * outcome and leaves the pipeline's error (NULL when OUT_OK) in *msg,
 * after the pipeline was released (removing its tree unless OUT_OK).
 */
static enum outcome run_pipeline(struct fixture *fx, size_t len, char **msg)
{
    static const struct nar_unpack_opts uo = {.canonical = true, .umask = 022};
    struct decompressor *dec = NULL;
    struct nar_pipeline p;
    struct rx_error *err = NULL;
    assert_int_equal(nar_pipeline_start(&p, &fx->want, fx->dir_fd, ROOT, &uo, &dec, &err), 0);
    enum outcome out = OUT_OK;
    fx->fed = 0;
    for (size_t off = 0; off < len && !p.complete; off += CHUNK) {
        size_t n = len - off < CHUNK ? len - off : CHUNK;
        if (nar_pipeline_feed(&p, fx->file + off, n) < 0) {
            out = nar_pipeline_outcome(&p);
            err = steal_pointer(&p.err);
            break;
        }
        fx->fed += n;
    }
    if (out == OUT_OK)
        out = nar_pipeline_finish(&p, &err);
    assert_true(out == OUT_OK ? err == NULL : err != NULL);
    *msg = err ? xstrdup(err->msg) : NULL;
    rx_error_free(err);
    nar_pipeline_release(&p, out != OUT_OK);
    decompressor_free(dec);
    return out;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void accepts(struct fixture *fx, const char *method)
{
    prepare(fx, method, 0);
    char *msg = NULL;
    assert_int_equal(run_pipeline(fx, fx->file_len, &msg), OUT_OK);
    assert_null(msg);
    /* bin/arp is the file the vectors carry on its own. */
    size_t want_len;
    char *want = td_read_rel(NET_TOOLS "_bin_arp", &want_len);
    _cleanup_free_ char *arp = xasprintf("%s/" ROOT "/bin/arp", fx->tmp);
    size_t got_len;
    char *got = td_read(arp, &got_len);
    assert_int_equal(got_len, want_len);
    assert_memory_equal(got, want, want_len);
    struct stat st;
    assert_int_equal(stat(arp, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0555);
    _cleanup_free_ char *sbin = xasprintf("%s/" ROOT "/sbin", fx->tmp);
    assert_int_equal(lstat(sbin, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    free(got);
    free(want);
}

static void test_fetch_nar_accepts_xz(void **state)
{
    accepts(*state, "xz");
}

static void test_fetch_nar_accepts_zstd(void **state)
{
    accepts(*state, "zstd");
}

/* What is wrong with a download, and what the refusal must name. */
enum fault {
    WRONG_NAR_HASH,
    WRONG_FILE_HASH,
    FILE_SIZE_ABOVE, /* FileSize says more than is sent */
    FILE_SIZE_BELOW, /* more is sent than FileSize says */
    NAR_SIZE_ABOVE,  /* NarSize says more than the NAR holds */
    NAR_SIZE_BELOW,  /* the NAR is longer than NarSize */
    TRUNCATED,       /* the compressed stream stops halfway, no FileSize to tell */
    TRUNCATED_SIZED, /* the same, with a FileSize */
    NAR_THEN_MORE,   /* a whole NAR, then more bytes, all within FileHash and FileSize */
};

static const struct refusal {
    enum fault fault;
    const char *method;
    enum outcome outcome;
    const char *what;
} refusals[] = {
    {WRONG_NAR_HASH, "xz", OUT_PERMANENT, "NarHash mismatch"},
    {WRONG_FILE_HASH, "xz", OUT_PERMANENT, "FileHash mismatch"},
    {FILE_SIZE_ABOVE, "xz", OUT_PERMANENT, "but FileSize is"},
    {FILE_SIZE_BELOW, "zstd", OUT_PERMANENT, "larger than its FileSize"},
    {NAR_SIZE_ABOVE, "zstd", OUT_PERMANENT, "but NarSize is"},
    {NAR_SIZE_BELOW, "xz", OUT_PERMANENT, "larger than its NarSize"},
    /* Short, not wrong: the download may be tried again. */
    {TRUNCATED, "xz", OUT_TRANSIENT, "xz data ends early"},
    {TRUNCATED_SIZED, "xz", OUT_TRANSIENT, "body ended after"},
    {NAR_THEN_MORE, "xz", OUT_PERMANENT, "NAR is larger than its NarSize"},
};

static void test_fetch_nar_refuses_bad_downloads(void **state)
{
    struct fixture *fx = *state;
    for (size_t i = 0; i < ARRAY_SIZE(refusals); i++) {
        const struct refusal *r = &refusals[i];
        free(fx->nar);
        free(fx->file);
        prepare(fx, r->method, r->fault == NAR_THEN_MORE ? 1000 : 0);
        struct nar_expect *w = &fx->want;
        size_t len = fx->file_len;
        switch (r->fault) {
        case WRONG_NAR_HASH:
            w->nar_hash.bytes[7] ^= 1;
            break;
        case WRONG_FILE_HASH:
            w->file_hash.bytes[0] ^= 1;
            break;
        case FILE_SIZE_ABOVE:
        case FILE_SIZE_BELOW:
            w->file_size = r->fault == FILE_SIZE_ABOVE ? len + 1 : len - 1;
            break;
        case NAR_SIZE_ABOVE:
        case NAR_SIZE_BELOW:
            w->nar_size = r->fault == NAR_SIZE_ABOVE ? fx->nar_len + 1 : fx->nar_len - 1;
            break;
        case TRUNCATED:
            w->has_file_size = w->has_file_hash = false;
            len /= 2;
            break;
        case TRUNCATED_SIZED:
            len /= 2;
            break;
        case NAR_THEN_MORE:
            break;
        }
        char *msg = NULL;
        enum outcome out = run_pipeline(fx, len, &msg);
        if (out != r->outcome || !msg || !strstr(msg, r->what))
            fail_msg("case %zu: outcome %d, error '%s'; expected %d naming '%s'", i, out,
                     msg ? msg : "(none)", r->outcome, r->what);
        free(msg);
        if (dir_entries(fx->tmp) != 0)
            fail_msg("case %zu: the work dir is not empty", i);
    }
}

/* Drop what the last case prepared and prepare the NAR compressed with `method`. */
static void prepare_again(struct fixture *fx, const char *method)
{
    free(fx->nar);
    free(fx->file);
    prepare(fx, method, 0);
}

/* Append n bytes of padding after the compressed NAR: xz stream padding or zstd skippable frames. */
static void pad(struct fixture *fx, const char *method, size_t n, bool before)
{
    unsigned char *padding = xcalloc(1, n);
    if (strcmp(method, "zstd") == 0) {
        /* Skippable frames: magic 0x184D2A5?, a 32-bit size, that many bytes. */
        for (size_t off = 0; off + 8 <= n;) {
            uint32_t size = n - off - 8 > 65536 ? 65536 : (uint32_t)(n - off - 8);
            const unsigned char hdr[8] = {0x50, 0x2a, 0x4d, 0x18, size & 0xff, (size >> 8) & 0xff,
                                          (size >> 16) & 0xff, size >> 24};
            memcpy(padding + off, hdr, 8);
            off += 8 + size;
        }
    }
    fx->file = xrealloc(fx->file, fx->file_len + n);
    if (before) {
        memmove(fx->file + n, fx->file, fx->file_len);
        memcpy(fx->file, padding, n);
    } else {
        memcpy(fx->file + fx->file_len, padding, n);
    }
    fx->file_len += n;
    fx->want.has_file_size = fx->want.has_file_hash = false;
    free(padding);
}

/*
 * Without a FileSize, a server could follow the NAR with padding for ever:
 * the pipeline says to stop once the NAR is complete and a short trailer
 * has passed, and the NAR is installed.
 */
static void test_fetch_nar_stops_in_padding_after_the_nar(void **state)
{
    struct fixture *fx = *state;
    static const char *const methods[] = {"xz", "zstd"};
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
        prepare_again(fx, methods[i]);
        size_t real = fx->file_len;
        pad(fx, methods[i], 16u << 20, false);
        char *msg = NULL;
        if (run_pipeline(fx, fx->file_len, &msg) != OUT_OK)
            fail_msg("%s: %s", methods[i], msg ? msg : "(none)");
        if (fx->fed > real + 64 * 1024 + 2 * CHUNK)
            fail_msg("%s: %zu bytes taken for a download of %zu and padding", methods[i], fx->fed,
                     real);
        _cleanup_free_ char *arp = xasprintf("%s/" ROOT "/bin/arp", fx->tmp);
        assert_int_equal(access(arp, F_OK), 0);
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s/" ROOT "'", fx->tmp);
        assert_int_equal(system(cmd), 0);
    }
}

/* Padding before the end of the NAR: capped at NarSize and a margin. */
static void test_fetch_nar_caps_a_download_without_file_size(void **state)
{
    struct fixture *fx = *state;
    static const char *const methods[] = {"xz", "zstd"};
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
        prepare_again(fx, methods[i]);
        /* xz takes padding only between streams: one stream of the NAR twice, cut. */
        pad(fx, methods[i], 2 * fx->nar_len + (1u << 20), strcmp(methods[i], "zstd") == 0);
        if (strcmp(methods[i], "xz") == 0) {
            /* A second copy of the stream after the padding never comes out before the cap. */
            fx->file = xrealloc(fx->file, fx->file_len * 2);
            memcpy(fx->file + fx->file_len, fx->file, fx->file_len);
            fx->file_len *= 2;
            fx->want.nar_size = 2 * fx->nar_len;
            fx->want.nar_hash.bytes[0] ^= 1; /* irrelevant: the cap comes first */
        }
        char *msg = NULL;
        enum outcome out = run_pipeline(fx, fx->file_len, &msg);
        if (out != OUT_PERMANENT || !msg || !strstr(msg, "NarSize"))
            fail_msg("%s: outcome %d, error '%s'", methods[i], out, msg ? msg : "(none)");
        if (fx->fed > fx->want.nar_size + fx->want.nar_size / 16 + 2 * 64 * 1024)
            fail_msg("%s: %zu bytes taken for a NAR of %" PRIu64, methods[i], fx->fed,
                     fx->want.nar_size);
        free(msg);
        assert_int_equal(dir_entries(fx->tmp), 0);
    }
}

/* A NAR of `depth` nested directories, each named d. */
static void deep_nar(struct fixture *fx, int depth)
{
    struct rx_buf b = RX_BUF_INIT((size_t)-1);
    static const char *const open_t[] = {"(", "type", "directory"};
    static const char *const entry_t[] = {"entry", "(", "name", "d", "node"};
    static const char *const close_t[] = {")", ")"};
    const char *magic = "nix-archive-1";
#define PUT(str)                                                                                   \
    do {                                                                                           \
        uint64_t n_ = strlen(str);                                                                 \
        unsigned char len_[8];                                                                     \
        for (int k_ = 0; k_ < 8; k_++)                                                             \
            len_[k_] = (unsigned char)(n_ >> (8 * k_));                                            \
        static const char zero_[8] = {0};                                                          \
        assert_int_equal(rx_buf_append(&b, len_, 8), 0);                                           \
        assert_int_equal(rx_buf_append(&b, str, n_), 0);                                           \
        assert_int_equal(rx_buf_append(&b, zero_, (8 - n_ % 8) % 8), 0);                           \
    } while (0)
    PUT(magic);
    for (int i = 0; i < depth; i++) {
        if (i)
            for (size_t k = 0; k < ARRAY_SIZE(entry_t); k++)
                PUT(entry_t[k]);
        for (size_t k = 0; k < ARRAY_SIZE(open_t); k++)
            PUT(open_t[k]);
    }
    for (int i = 0; i < depth; i++) {
        PUT(")");
        if (i < depth - 1)
            for (size_t k = 0; k < ARRAY_SIZE(close_t) - 1; k++)
                PUT(close_t[k]);
    }
#undef PUT
    fx->nar = (unsigned char *)rx_buf_detach(&b, &fx->nar_len);
    fx->file = xmalloc(fx->nar_len);
    memcpy(fx->file, fx->nar, fx->nar_len);
    fx->file_len = fx->nar_len;
    struct nar_expect *w = &fx->want;
    snprintf(w->compression, sizeof w->compression, "none");
    w->has_file_hash = w->has_file_size = false;
    sha256_of(fx->nar, fx->nar_len, &w->nar_hash);
    w->nar_size = fx->nar_len;
}

/*
 * Unpacking bytes not yet verified fails with EMFILE (a NAR deeper than the
 * fds left): that is the NAR's doing, and another cache may serve a good
 * one; only errors about the store itself (ENOSPC, EDQUOT, EROFS, EIO) are
 * local.
 */
static void test_fetch_nar_unpack_errors_are_the_nars(void **state)
{
    struct fixture *fx = *state;
    deep_nar(fx, 40);
    /* Room for only a few more fds than are open now. */
    int probe = dup(0);
    assert_true(probe >= 0);
    close(probe);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)probe + 4;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    char *msg = NULL;
    /* Keep the DIR_FDS_OPEN window from hiding it: open fds up to the limit. */
    int fill[3], nfill = 0;
    while (nfill < 3 && (fill[nfill] = dup(0)) >= 0)
        nfill++;
    enum outcome out = run_pipeline(fx, fx->file_len, &msg);
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    if (out != OUT_PERMANENT || !msg || !strstr(msg, "Too many open files"))
        fail_msg("outcome %d, error '%s'; expected %d for EMFILE", out, msg ? msg : "(none)",
                 OUT_PERMANENT);
    free(msg);
    /* The fds taken above kept the pipeline from removing its tree. */
    _cleanup_free_ char *cmd = xasprintf("chmod -R u+w '%s' && rm -rf '%s/" ROOT "'", fx->tmp,
                                         fx->tmp);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    if (crypto_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fetch_nar_accepts_xz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_nar_accepts_zstd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_nar_refuses_bad_downloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fetch_nar_stops_in_padding_after_the_nar, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_nar_caps_a_download_without_file_size, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_fetch_nar_unpack_errors_are_the_nars, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("fetch-nar", tests, NULL, NULL);
}
