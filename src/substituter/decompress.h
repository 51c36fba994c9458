/* Streaming decompression of NARs by a narinfo's Compression field. */
#pragma once
/*
 * Streaming decompression of NAR files by a narinfo's Compression field:
 * "none", "xz", "zstd", "bzip2" and "br".  The method comes from the field,
 * never from magic bytes (brotli has none).
 *
 * Push-style: decompressor_feed() takes compressed bytes as they arrive and
 * hands every decompressed chunk to the sink; decompressor_finish() fails
 * unless the compressed stream ended exactly there.  The container's own
 * checksum (xz's CRC64) is not verified: what comes out must be checked by
 * the caller, as the NAR's hash is.  Memory is bounded by
 * the method's window, which is capped (DECOMPRESS_MEMLIMIT), whatever the
 * stream claims.
 */

#include <stddef.h>

#include "util-error.h"

#define DECOMPRESS_MEMLIMIT (128u * 1024 * 1024)

/* Receives decompressed data; returns 0, or -1 with *err set to stop. */
typedef int (*decompress_sink)(void *ctx, const void *data, size_t len, struct rx_error **err);

struct decompressor;

/* Is `method` one we can decompress? */
int decompress_supported(const char *method);

/* A decompressor for `method`, or NULL with an RX_EUNSUPPORTED error. */
struct decompressor *decompressor_new(const char *method, decompress_sink sink, void *ctx,
                                      struct rx_error **err);
void decompressor_free(struct decompressor *d);

/*
 * Make d ready for a new stream of `method`, feeding `sink`.  What d has
 * allocated is kept where the method allows (zstd's window, xz's
 * dictionary), so one decompressor per thread does not fault in fresh
 * memory for every NAR.  On failure d holds no stream and can only be
 * restarted again or freed.
 */
int decompressor_restart(struct decompressor *d, const char *method, decompress_sink sink,
                         void *ctx, struct rx_error **err);

int decompressor_feed(struct decompressor *d, const void *data, size_t len, struct rx_error **err);
int decompressor_finish(struct decompressor *d, struct rx_error **err);
