/* The NAR pipeline: compressed bytes -> checked hashes and sizes -> an unpacked tree. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <errno.h>
#include <inttypes.h>

#include "decompress.h"
#include "nar-reader.h"
#include "util-fs.h"

#include "banned.h"

/*
 * Without a FileSize, what a download may hold beyond its NAR: the worst
 * expansion of incompressible data (a few per mille for xz, zstd, bzip2
 * and brotli) with room to spare, and the stream's headers and index.
 * After the NAR's last byte, NAR_TRAILER_MAX more is taken at most; the
 * bytes are taken in pieces of NAR_FEED_PIECE, so that for a small NAR that
 * limit comes before the cap.
 */
#define NAR_TRAILER_MAX (64 * 1024)
#define NAR_FEED_PIECE (16 * 1024)
static uint64_t download_cap(uint64_t nar_size)
{
    return nar_size + nar_size / 16 + 2 * NAR_TRAILER_MAX;
}

/*
 * Did writing to the store fail, rather than the data or the network?
 * Only errors about the store itself: any other failure while unpacking
 * bytes not yet verified (EMFILE from a NAR of deep directories, ENAMETOOLONG,
 * EMLINK, ...) may be the NAR's doing, so another cache is asked.
 */
static bool is_local(const struct rx_error *e)
{
    return e->code == ENOSPC || e->code == EDQUOT || e->code == EROFS || e->code == EIO;
}

static int nar_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct nar_pipeline *p = ctx;
    if (len > p->want->nar_size - p->nsize) {
        p->content_error = true;
        return rx_error_set(err, RX_EHASH, "NAR is larger than its NarSize %" PRIu64,
                            p->want->nar_size);
    }
    p->nsize += len;
    sha256_update(&p->nh, data, len);
    if (nar_reader_feed(p->reader, data, len, err) < 0) {
        /* The unpacker's system calls fail with errno; the reader's checks do not. */
        if (*err && is_local(*err))
            p->local_error = true;
        else
            p->content_error = true;
        return -1;
    }
    return 0;
}

int nar_pipeline_start(struct nar_pipeline *p, const struct nar_expect *want, int dir_fd,
                       const char *name, const struct nar_unpack_opts *uo,
                       struct decompressor **decp, struct rx_error **err)
{
    *p = (struct nar_pipeline){.want = want, .dir_fd = dir_fd, .name = name};
    sha256_init(&p->fh);
    sha256_init(&p->nh);
    if (*decp ? decompressor_restart(*decp, want->compression, nar_sink, p, err) < 0
              : !(*decp = decompressor_new(want->compression, nar_sink, p, err)))
        return -1;
    p->dec = *decp;
    p->unp = nar_unpacker_new(dir_fd, name, uo);
    p->reader = nar_reader_new(&nar_unpack_visitor, p->unp);
    return 0;
}

static int feed_piece(struct nar_pipeline *p, const void *data, size_t n)
{
    if (p->want->has_file_size && n > p->want->file_size - p->fsize) {
        p->content_error = true;
        return rx_error_set(&p->err, RX_EHASH, "download is larger than its FileSize %" PRIu64,
                            p->want->file_size);
    }
    /* The whole NAR came out, and a trailer's worth since: the rest is padding. */
    if (!p->want->has_file_size && p->nsize == p->want->nar_size &&
        p->fsize + n - p->nar_end > NAR_TRAILER_MAX) {
        p->complete = true;
        return 0;
    }
    if (!p->want->has_file_size && n > download_cap(p->want->nar_size) - p->fsize) {
        p->content_error = true;
        return rx_error_set(&p->err, RX_EHASH,
                            "download is larger than its NarSize %" PRIu64 " allows",
                            p->want->nar_size);
    }
    bool nar_done = p->nsize == p->want->nar_size;
    p->fsize += n;
    if (!p->want->file_is_nar)
        sha256_update(&p->fh, data, n);
    if (decompressor_feed(p->dec, data, n, &p->err) < 0) {
        /* Corrupt compressed data is wrong content; a sink error says itself. */
        if (p->err && p->err->code == RX_EFORMAT)
            p->content_error = true;
        return -1;
    }
    /* Count what follows the end of the NAR; a trailer is short. */
    if (!nar_done && p->nsize == p->want->nar_size)
        p->nar_end = p->fsize;
    if (!p->want->has_file_size && p->nsize == p->want->nar_size &&
        p->fsize - p->nar_end > NAR_TRAILER_MAX)
        p->complete = true;
    return 0;
}

int nar_pipeline_feed(struct nar_pipeline *p, const void *data, size_t n)
{
    if (p->err)
        return -1;
    /* In pieces, so that the end of the NAR is seen before padding after it reaches the cap. */
    const char *d = data;
    for (size_t off = 0; off < n && !p->complete;) {
        size_t len = n - off < NAR_FEED_PIECE ? n - off : NAR_FEED_PIECE;
        if (feed_piece(p, d + off, len) < 0)
            return -1;
        off += len;
    }
    return 0;
}

enum outcome nar_pipeline_outcome(const struct nar_pipeline *p)
{
    return p->local_error ? OUT_LOCAL : p->content_error ? OUT_PERMANENT : OUT_TRANSIENT;
}

void nar_pipeline_release(struct nar_pipeline *p, bool remove)
{
    nar_reader_free(p->reader);
    bool created = p->unp && nar_unpacker_created(p->unp);
    nar_unpacker_free(p->unp);
    if (remove && created)
        rm_rf_at(p->dir_fd, p->name, NULL);
    rx_error_free(p->err);
    p->dec = NULL;
    p->reader = NULL;
    p->unp = NULL;
    p->err = NULL;
}

/* Finish a sha256 and compare it with `want`; -1 with an error naming `what` if it differs. */
static int check_hash(struct sha256_ctx *c, const struct hash *want, const char *what,
                      struct rx_error **err)
{
    struct hash h;
    sha256_final(c, &h);
    if (hash_equal(&h, want))
        return 0;
    char got[HASH_STR_MAX], exp[HASH_STR_MAX];
    hash_format(&h, HASH_NIX32, got);
    hash_format(want, HASH_NIX32, exp);
    return rx_error_set(err, RX_EHASH, "%s mismatch: expected %s, got %s", what, exp, got);
}

enum outcome nar_pipeline_finish(struct nar_pipeline *p, struct rx_error **err)
{
    const struct nar_expect *w = p->want;
    /* Stopped in padding after the NAR: the compressed stream has no end to check. */
    bool early = p->complete;
    if ((!early && decompressor_finish(p->dec, err) < 0) ||
        nar_reader_finish(p->reader, err) < 0) {
        if (*err && is_local(*err))
            return OUT_LOCAL;
        if (*err && (*err)->code < RX_EBASE)
            return OUT_PERMANENT; /* the unpacker failed on what the NAR holds */
        if (w->has_file_size && p->fsize < w->file_size)
            rx_error_set(err, RX_ENET, "body ended after %" PRIu64 " of %" PRIu64 " bytes",
                         p->fsize, w->file_size);
        return OUT_TRANSIENT;
    }
    if (nar_unpacker_finish(p->unp, err) < 0)
        return *err && is_local(*err) ? OUT_LOCAL : OUT_PERMANENT;
    if (w->has_file_size && p->fsize != w->file_size) {
        rx_error_set(err, RX_EHASH, "download is %" PRIu64 " bytes, but FileSize is %" PRIu64,
                     p->fsize, w->file_size);
        return OUT_PERMANENT;
    }
    if (!early && w->has_file_hash && !w->file_is_nar && w->file_hash.algo == HASH_SHA256 &&
        check_hash(&p->fh, &w->file_hash, "FileHash", err) < 0)
        return OUT_PERMANENT;
    if (p->nsize != w->nar_size) {
        rx_error_set(err, RX_EHASH, "NAR is %" PRIu64 " bytes, but NarSize is %" PRIu64, p->nsize,
                     w->nar_size);
        return OUT_PERMANENT;
    }
    if (check_hash(&p->nh, &w->nar_hash, "NarHash", err) < 0)
        return OUT_PERMANENT;
    return OUT_OK;
}
