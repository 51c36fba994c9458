/* Streaming decompression of NARs by a narinfo's Compression field. */
#include "config.h"
#include "decompress.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <brotli/decode.h>
#include <bzlib.h>
#include <lzma.h>
#include <zstd.h>

#include "util-mem.h"

#include "banned.h"

#define OUT_SIZE (128 * 1024)

enum method { M_NONE, M_XZ, M_ZSTD, M_BZIP2, M_BR };

struct decompressor {
    enum method method;
    decompress_sink sink;
    void *ctx;
    unsigned char *out; /* owned, OUT_SIZE bytes */
    bool ended;         /* the compressed stream is complete */
    bool any_input;
    union {
        lzma_stream xz;
        ZSTD_DCtx *zstd;
        bz_stream bz;
        BrotliDecoderState *br;
    } u;
};

static const struct {
    const char *name;
    enum method method;
} methods[] = {
    {"none", M_NONE}, {"xz", M_XZ}, {"zstd", M_ZSTD}, {"bzip2", M_BZIP2}, {"br", M_BR},
};

static int method_find(const char *name, enum method *m)
{
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
        if (strcmp(methods[i].name, name) == 0) {
            *m = methods[i].method;
            return 0;
        }
    }
    return -1;
}

int decompress_supported(const char *method)
{
    enum method m;
    return method_find(method, &m) == 0;
}

static int bz_init(struct decompressor *d, struct rx_error **err)
{
    memset(&d->u.bz, 0, sizeof d->u.bz);
    if (BZ2_bzDecompressInit(&d->u.bz, 0, 0) != BZ_OK)
        return rx_error_set(err, ENOMEM, "cannot initialise the bzip2 decoder");
    return 0;
}

/*
 * Set up the state of d->method; -1 with *err set (and nothing to free) on
 * failure.  With reuse, d already holds a stream of that method to start
 * afresh.
 */
static int method_init(struct decompressor *d, bool reuse, struct rx_error **err)
{
    switch (d->method) {
    case M_NONE:
        break;
    case M_XZ: {
        /*
         * On a stream used before, liblzma keeps the dictionary it has if it fits.
         * The stream's own check (CRC64 by default) is not computed: callers verify
         * the output against the signed NarHash, and skipping it saves a tenth of
         * the decoding time.
         */
        if (!reuse) {
            lzma_stream init = LZMA_STREAM_INIT;
            d->u.xz = init;
        }
        if (lzma_stream_decoder(&d->u.xz, DECOMPRESS_MEMLIMIT,
                                LZMA_CONCATENATED | LZMA_IGNORE_CHECK) != LZMA_OK) {
            lzma_end(&d->u.xz);
            return rx_error_set(err, ENOMEM, "cannot initialise the xz decoder");
        }
        break;
    }
    case M_ZSTD:
        d->u.zstd = ZSTD_createDCtx();
        if (!d->u.zstd ||
            ZSTD_isError(ZSTD_DCtx_setParameter(d->u.zstd, ZSTD_d_windowLogMax, 27))) {
            ZSTD_freeDCtx(d->u.zstd);
            return rx_error_set(err, ENOMEM, "cannot initialise the zstd decoder");
        }
        break;
    case M_BZIP2:
        return bz_init(d, err);
    case M_BR:
        d->u.br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
        if (!d->u.br)
            return rx_error_set(err, ENOMEM, "cannot initialise the brotli decoder");
        break;
    }
    return 0;
}

static void method_end(struct decompressor *d)
{
    switch (d->method) {
    case M_NONE:
        break;
    case M_XZ:
        lzma_end(&d->u.xz);
        break;
    case M_ZSTD:
        ZSTD_freeDCtx(d->u.zstd);
        break;
    case M_BZIP2:
        BZ2_bzDecompressEnd(&d->u.bz);
        break;
    case M_BR:
        BrotliDecoderDestroyInstance(d->u.br);
        break;
    }
}

struct decompressor *decompressor_new(const char *method, decompress_sink sink, void *ctx,
                                      struct rx_error **err)
{
    enum method m;
    if (method_find(method, &m) < 0) {
        rx_error_set(err, RX_EUNSUPPORTED, "unsupported compression '%s'", method);
        return NULL;
    }
    struct decompressor *d = xcalloc(1, sizeof *d);
    d->method = m;
    d->sink = sink;
    d->ctx = ctx;
    d->out = xmalloc(OUT_SIZE);
    if (method_init(d, false, err) < 0) {
        free(d->out);
        free(d);
        return NULL;
    }
    return d;
}

int decompressor_restart(struct decompressor *d, const char *method, decompress_sink sink,
                         void *ctx, struct rx_error **err)
{
    enum method m;
    if (method_find(method, &m) < 0)
        return rx_error_set(err, RX_EUNSUPPORTED, "unsupported compression '%s'", method);
    d->sink = sink;
    d->ctx = ctx;
    d->ended = false;
    d->any_input = false;
    if (m == d->method && m == M_ZSTD) {
        /* Keeps the window buffer and the parameters. */
        ZSTD_DCtx_reset(d->u.zstd, ZSTD_reset_session_only);
        return 0;
    }
    bool reuse = m == d->method && m == M_XZ;
    if (!reuse)
        method_end(d);
    d->method = m;
    if (method_init(d, reuse, err) < 0) {
        d->method = M_NONE; /* nothing left to free */
        return -1;
    }
    return 0;
}

void decompressor_free(struct decompressor *d)
{
    if (!d)
        return;
    method_end(d);
    free(d->out);
    free(d);
}

static int emit(struct decompressor *d, size_t n, struct rx_error **err)
{
    return n ? d->sink(d->ctx, d->out, n, err) : 0;
}

static int xz_run(struct decompressor *d, const void *data, size_t len, lzma_action action,
                  struct rx_error **err)
{
    lzma_stream *s = &d->u.xz;
    s->next_in = data;
    s->avail_in = len;
    for (;;) {
        s->next_out = d->out;
        s->avail_out = OUT_SIZE;
        lzma_ret r = lzma_code(s, action);
        if (emit(d, OUT_SIZE - s->avail_out, err) < 0)
            return -1;
        if (r == LZMA_STREAM_END) {
            d->ended = true;
            return 0;
        }
        if (r == LZMA_BUF_ERROR && action == LZMA_FINISH)
            return rx_error_set(err, RX_EFORMAT, "xz data ends early");
        if (r != LZMA_OK) {
            const char *why = r == LZMA_FORMAT_ERROR ? "not xz data"
                            : r == LZMA_MEMLIMIT_ERROR ? "xz window larger than 128 MiB"
                            : r == LZMA_DATA_ERROR ? "corrupt xz data"
                            : "xz decoder error";
            return rx_error_set(err, RX_EFORMAT, "%s", why);
        }
        if (s->avail_in == 0 && s->avail_out != 0 && action == LZMA_RUN)
            return 0;
    }
}

static int zstd_run(struct decompressor *d, const void *data, size_t len, struct rx_error **err)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {d->out, OUT_SIZE, 0};
        size_t r = ZSTD_decompressStream(d->u.zstd, &out, &in);
        if (ZSTD_isError(r))
            return rx_error_set(err, RX_EFORMAT, "corrupt zstd data: %s", ZSTD_getErrorName(r));
        if (emit(d, out.pos, err) < 0)
            return -1;
        /* r == 0: a frame is complete and fully flushed. */
        d->ended = r == 0;
        if (in.pos == in.size && out.pos < out.size)
            return 0;
    }
}

static int bz_run(struct decompressor *d, const void *data, size_t len, struct rx_error **err)
{
    bz_stream *s = &d->u.bz;
    s->next_in = (char *)data;
    s->avail_in = (unsigned)len;
    for (;;) {
        if (d->ended) {
            if (s->avail_in == 0)
                return 0;
            /* Another stream follows (as with `cat a.bz2 b.bz2`). */
            const char *next = s->next_in;
            unsigned left = s->avail_in;
            BZ2_bzDecompressEnd(s);
            if (bz_init(d, err) < 0)
                return -1;
            s->next_in = (char *)next;
            s->avail_in = left;
            d->ended = false;
        }
        s->next_out = (char *)d->out;
        s->avail_out = OUT_SIZE;
        int r = BZ2_bzDecompress(s);
        if (emit(d, OUT_SIZE - s->avail_out, err) < 0)
            return -1;
        if (r == BZ_STREAM_END) {
            d->ended = true;
            continue;
        }
        if (r != BZ_OK)
            return rx_error_set(err, RX_EFORMAT, "corrupt bzip2 data (%d)", r);
        if (s->avail_in == 0 && s->avail_out != 0)
            return 0;
    }
}

static int br_run(struct decompressor *d, const void *data, size_t len, struct rx_error **err)
{
    const uint8_t *next_in = data;
    size_t avail_in = len;
    for (;;) {
        uint8_t *next_out = d->out;
        size_t avail_out = OUT_SIZE;
        BrotliDecoderResult r = BrotliDecoderDecompressStream(d->u.br, &avail_in, &next_in,
                                                              &avail_out, &next_out, NULL);
        if (emit(d, OUT_SIZE - avail_out, err) < 0)
            return -1;
        switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
            d->ended = true;
            if (avail_in)
                return rx_error_set(err, RX_EFORMAT, "data after the end of the brotli stream");
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
            return 0;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
            continue;
        case BROTLI_DECODER_RESULT_ERROR:
        default:
            return rx_error_set(err, RX_EFORMAT, "corrupt brotli data: %s",
                                BrotliDecoderErrorString(BrotliDecoderGetErrorCode(d->u.br)));
        }
    }
}

int decompressor_feed(struct decompressor *d, const void *data, size_t len, struct rx_error **err)
{
    if (len == 0)
        return 0;
    d->any_input = true;
    switch (d->method) {
    case M_NONE:
        return d->sink(d->ctx, data, len, err);
    case M_XZ:
        if (d->ended)
            return rx_error_set(err, RX_EFORMAT, "data after the end of the xz stream");
        return xz_run(d, data, len, LZMA_RUN, err);
    case M_ZSTD:
        return zstd_run(d, data, len, err);
    case M_BZIP2:
        return bz_run(d, data, len, err);
    case M_BR:
        if (d->ended)
            return rx_error_set(err, RX_EFORMAT, "data after the end of the brotli stream");
        return br_run(d, data, len, err);
    }
    return rx_error_set(err, RX_EUNSUPPORTED, "unknown compression method");
}

int decompressor_finish(struct decompressor *d, struct rx_error **err)
{
    switch (d->method) {
    case M_NONE:
        return 0;
    case M_XZ:
        if (!d->ended && xz_run(d, NULL, 0, LZMA_FINISH, err) < 0)
            return -1;
        break;
    default:
        break;
    }
    if (!d->any_input || !d->ended)
        return rx_error_set(err, RX_EFORMAT, "compressed data ends early");
    return 0;
}
