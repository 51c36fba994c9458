/*
 * libFuzzer harness: streaming decompression of hostile input.  The first
 * byte picks the method and the chunk size; the rest is the compressed
 * stream.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "decompress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sink(void *ctx, const void *p, size_t len, struct rx_error **err)
{
    size_t *total = ctx;
    (void)p;
    *total += len;
    /* Bounded output, as NarSize bounds it in runix. */
    if (*total > 64 * 1024 * 1024)
        return rx_error_set(err, RX_EHASH, "too much output");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"none", "xz", "zstd", "bzip2", "br"};
    if (size < 1)
        return 0;
    const char *m = methods[data[0] % 5];
    size_t chunk = 1 + (size_t)(data[0] / 5) * 97;
    size_t total = 0;
    struct rx_error *err = NULL;
    struct decompressor *d = decompressor_new(m, sink, &total, &err);
    if (!d)
        abort();
    int r = 0;
    for (size_t off = 1; off < size && r == 0; off += chunk)
        r = decompressor_feed(d, data + off, size - off < chunk ? size - off : chunk, &err);
    if (r == 0)
        decompressor_finish(d, &err);
    decompressor_free(d);
    rx_error_free(err);
    return 0;
}
