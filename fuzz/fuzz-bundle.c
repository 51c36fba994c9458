/* libFuzzer harness: a bundle's trailer (its bounds) and its manifest's app document. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli-bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The first 8 bytes: the file's size; then a trailer; then the manifest. */
    if (size < 8 + BUNDLE_TRAILER_SIZE)
        return 0;
    uint64_t fsize;
    memcpy(&fsize, data, 8);
    unsigned char tr[BUNDLE_TRAILER_SIZE];
    memcpy(tr, data + 8, sizeof tr);
    memcpy(tr + 56, BUNDLE_MAGIC, 8); /* reach the bounds checks */
    struct bundle_trailer t;
    struct rx_error *err = NULL;
    int r = bundle_trailer_decode(tr, fsize, &t, &err);
    if (r > 0 && (t.payload_off == 0 || t.payload_off > t.manifest_off ||
                  t.manifest_off + t.manifest_len + BUNDLE_TRAILER_SIZE != fsize))
        abort(); /* accepted bounds that do not fit */
    rx_error_clear(&err);
    const char *text = (const char *)data + 8 + BUNDLE_TRAILER_SIZE;
    size_t len = size - 8 - BUNDLE_TRAILER_SIZE, used = 0;
    struct cli_bundle b;
    memset(&b, 0, sizeof b);
    if (bundle_app_parse(text, len, &b, &used, &err) == 0 && (used > len || !b.root))
        abort();
    cli_bundle_release(&b);
    rx_error_free(err);
    return 0;
}
