#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <brotli/encode.h>
#include <bzlib.h>
#include <lzma.h>
#include <zstd.h>

#include "test-helpers.h"

#include "decompress.h"
#include "util-buf.h"
#include "util-mem.h"

#define DATA_LEN (300 * 1000)

static unsigned char *make_data(void)
{
    /* Compressible but not trivial. */
    unsigned char *d = xmalloc(DATA_LEN);
    uint32_t x = 12345;
    for (size_t i = 0; i < DATA_LEN; i++) {
        x = x * 1103515245 + 12345;
        d[i] = (unsigned char)("nix-archive-1 (( ))"[(x >> 16) % 19]);
    }
    return d;
}

static unsigned char *compress(const char *method, const unsigned char *in, size_t n, size_t *outn)
{
    size_t cap = n + n / 2 + 65536;
    unsigned char *out = xmalloc(cap);
    if (strcmp(method, "none") == 0) {
        memcpy(out, in, n);
        *outn = n;
    } else if (strcmp(method, "xz") == 0) {
        size_t pos = 0;
        assert_int_equal(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, NULL, in, n, out, &pos, cap),
                         LZMA_OK);
        *outn = pos;
    } else if (strcmp(method, "zstd") == 0) {
        size_t r = ZSTD_compress(out, cap, in, n, 3);
        assert_false(ZSTD_isError(r));
        *outn = r;
    } else if (strcmp(method, "bzip2") == 0) {
        unsigned int len = (unsigned int)cap;
        assert_int_equal(BZ2_bzBuffToBuffCompress((char *)out, &len, (char *)in, (unsigned)n, 9, 0, 0),
                         BZ_OK);
        *outn = len;
    } else if (strcmp(method, "br") == 0) {
        size_t len = cap;
        assert_true(BrotliEncoderCompress(5, 22, BROTLI_MODE_GENERIC, n, in, &len, out));
        *outn = len;
    } else {
        fail_msg("unknown method %s", method);
    }
    return out;
}

static int sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct rx_buf *b = ctx;
    if (rx_buf_append(b, data, len) < 0)
        return rx_error_set(err, E2BIG, "too much output");
    return 0;
}

/* Decompress in chunks of `chunk`; returns 0 or -1 (err message in *msg). */
static int run(const char *method, const unsigned char *in, size_t n, size_t chunk, struct rx_buf *out,
               char **msg)
{
    struct rx_error *err = NULL;
    struct decompressor *d = decompressor_new(method, sink, out, &err);
    assert_non_null(d);
    int r = 0;
    for (size_t off = 0; off < n && r == 0; off += chunk)
        r = decompressor_feed(d, in + off, n - off < chunk ? n - off : chunk, &err);
    if (r == 0)
        r = decompressor_finish(d, &err);
    decompressor_free(d);
    if (r < 0 && msg)
        *msg = xstrdup(err->msg);
    rx_error_free(err);
    return r;
}

static const char *const methods[] = {"none", "xz", "zstd", "bzip2", "br"};

static void test_round_trip(void **state)
{
    (void)state;
    unsigned char *data = make_data();
    for (size_t m = 0; m < ARRAY_SIZE(methods); m++) {
        size_t n;
        unsigned char *c = compress(methods[m], data, DATA_LEN, &n);
        size_t chunks[] = {1, 7, 4096, n};
        for (size_t k = 0; k < ARRAY_SIZE(chunks); k++) {
            if (chunks[k] == 1 && n > 20000 && strcmp(methods[m], "none") == 0)
                continue;
            struct rx_buf out = RX_BUF_INIT(2 * DATA_LEN);
            char *msg = NULL;
            if (run(methods[m], c, n, chunks[k], &out, &msg) < 0)
                fail_msg("%s, chunk %zu: %s", methods[m], chunks[k], msg);
            assert_int_equal(out.len, DATA_LEN);
            assert_memory_equal(out.data, data, DATA_LEN);
            rx_buf_release(&out);
        }
        free(c);
    }
    free(data);
}

static void test_truncated_and_trailing(void **state)
{
    (void)state;
    unsigned char *data = make_data();
    for (size_t m = 1; m < ARRAY_SIZE(methods); m++) {
        size_t n;
        unsigned char *c = compress(methods[m], data, DATA_LEN, &n);
        struct rx_buf out = RX_BUF_INIT(2 * DATA_LEN);
        char *msg = NULL;
        /* Cut short anywhere: never accepted. */
        size_t cuts[] = {0, 1, n / 2, n - 1};
        for (size_t k = 0; k < ARRAY_SIZE(cuts); k++) {
            rx_buf_reset(&out);
            assert_int_equal(run(methods[m], c, cuts[k], 4096, &out, &msg), -1);
            free(msg);
            msg = NULL;
        }
        /* Garbage after the end. */
        unsigned char *g = xmalloc(n + 16);
        memcpy(g, c, n);
        memset(g + n, 0x5a, 16);
        rx_buf_reset(&out);
        assert_int_equal(run(methods[m], g, n + 16, 4096, &out, &msg), -1);
        free(msg);
        msg = NULL;
        /* A flipped byte in the middle. */
        memcpy(g, c, n);
        g[n / 2] ^= 0xff;
        rx_buf_reset(&out);
        int r = run(methods[m], g, n, 4096, &out, &msg);
        /* Either refused, or (for formats without a checksum) different output. */
        assert_true(r < 0 || out.len != DATA_LEN || memcmp(out.data, data, DATA_LEN) != 0);
        free(msg);
        free(g);
        rx_buf_release(&out);
        free(c);
    }
    free(data);
}

/* Feed all of in to d (restarted for method) and finish; 0 or -1. */
static int run_on(struct decompressor *d, const char *method, const unsigned char *in, size_t n,
                  struct rx_buf *out)
{
    struct rx_error *err = NULL;
    int r = decompressor_restart(d, method, sink, out, &err);
    for (size_t off = 0; off < n && r == 0; off += 5000)
        r = decompressor_feed(d, in + off, n - off < 5000 ? n - off : 5000, &err);
    if (r == 0)
        r = decompressor_finish(d, &err);
    rx_error_free(err);
    return r;
}

/*
 * One decompressor restarted for stream after stream, as a download thread
 * uses it: every method after every other, after a stream abandoned halfway
 * and after a corrupt one, gives exactly the data.
 */
static void test_restart(void **state)
{
    (void)state;
    unsigned char *data = make_data();
    unsigned char *c[ARRAY_SIZE(methods)];
    size_t n[ARRAY_SIZE(methods)];
    for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
        c[m] = compress(methods[m], data, DATA_LEN, &n[m]);
    struct rx_buf out = RX_BUF_INIT(2 * DATA_LEN);
    struct rx_error *err = NULL;
    struct decompressor *d = decompressor_new("zstd", sink, &out, &err);
    assert_non_null(d);
    for (size_t a = 0; a < ARRAY_SIZE(methods); a++) {
        for (size_t b = 0; b < ARRAY_SIZE(methods); b++) {
            /* a: abandoned halfway; then a corrupt stream of b; then b whole, twice. */
            rx_buf_reset(&out);
            assert_int_equal(decompressor_restart(d, methods[a], sink, &out, &err), 0);
            assert_int_equal(decompressor_feed(d, c[a], n[a] / 2, &err), 0);
            unsigned char *bad = xmalloc(n[b]);
            memcpy(bad, c[b], n[b]);
            bad[n[b] / 3] ^= 0x55;
            rx_buf_reset(&out);
            int r = run_on(d, methods[b], bad, n[b], &out);
            assert_true(r < 0 || out.len != DATA_LEN || memcmp(out.data, data, DATA_LEN) != 0);
            free(bad);
            for (int k = 0; k < 2; k++) {
                rx_buf_reset(&out);
                if (run_on(d, methods[b], c[b], n[b], &out) < 0)
                    fail_msg("%s after %s: refused", methods[b], methods[a]);
                assert_int_equal(out.len, DATA_LEN);
                assert_memory_equal(out.data, data, DATA_LEN);
            }
        }
    }
    /* An unknown method leaves it restartable. */
    assert_int_equal(decompressor_restart(d, "lz4", sink, &out, &err), -1);
    assert_int_equal(err->code, RX_EUNSUPPORTED);
    rx_error_free(err);
    err = NULL;
    rx_buf_reset(&out);
    assert_int_equal(run_on(d, "xz", c[1], n[1], &out), 0);
    assert_int_equal(out.len, DATA_LEN);
    decompressor_free(d);
    rx_buf_release(&out);
    for (size_t m = 0; m < ARRAY_SIZE(methods); m++)
        free(c[m]);
    free(data);
}

static void test_concatenated_streams(void **state)
{
    (void)state;
    const char *multi[] = {"xz", "bzip2", "zstd"};
    unsigned char *data = make_data();
    for (size_t m = 0; m < ARRAY_SIZE(multi); m++) {
        size_t n1, n2;
        unsigned char *a = compress(multi[m], data, DATA_LEN / 2, &n1);
        unsigned char *b = compress(multi[m], data + DATA_LEN / 2, DATA_LEN / 2, &n2);
        unsigned char *both = xmalloc(n1 + n2);
        memcpy(both, a, n1);
        memcpy(both + n1, b, n2);
        struct rx_buf out = RX_BUF_INIT(2 * DATA_LEN);
        char *msg = NULL;
        if (run(multi[m], both, n1 + n2, 1000, &out, &msg) < 0)
            fail_msg("%s: %s", multi[m], msg);
        assert_int_equal(out.len, DATA_LEN);
        assert_memory_equal(out.data, data, DATA_LEN);
        rx_buf_release(&out);
        free(a);
        free(b);
        free(both);
    }
    free(data);
}

static void test_unsupported(void **state)
{
    (void)state;
    struct rx_error *err = NULL;
    assert_null(decompressor_new("lz4", sink, NULL, &err));
    assert_int_equal(err->code, RX_EUNSUPPORTED);
    assert_non_null(strstr(err->msg, "unsupported compression 'lz4'"));
    rx_error_free(err);
    assert_true(decompress_supported("xz"));
    assert_true(decompress_supported("br"));
    assert_false(decompress_supported("gzip"));
    assert_false(decompress_supported(""));
}

static int failing_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)ctx;
    (void)data;
    (void)len;
    return rx_error_set(err, RX_EHASH, "sink says no");
}

static void test_sink_error_stops(void **state)
{
    (void)state;
    unsigned char *data = make_data();
    for (size_t m = 0; m < ARRAY_SIZE(methods); m++) {
        size_t n;
        unsigned char *c = compress(methods[m], data, DATA_LEN, &n);
        struct rx_error *err = NULL;
        struct decompressor *d = decompressor_new(methods[m], failing_sink, NULL, &err);
        int r = decompressor_feed(d, c, n, &err);
        if (r == 0)
            r = decompressor_finish(d, &err);
        assert_int_equal(r, -1);
        assert_string_equal(err->msg, "sink says no");
        rx_error_free(err);
        decompressor_free(d);
        free(c);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_concatenated_streams),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_sink_error_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
