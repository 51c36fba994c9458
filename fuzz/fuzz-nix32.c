/* libFuzzer harness: nix32 decoding (and re-encoding what decodes) and hash strings. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto-hash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char out[256];
    size_t n;
    if (size <= 400 && nix32_decode((const char *)data, size, out, sizeof out, &n) == 0) {
        char back[512];
        nix32_encode(out, n, back);
        /* Decoding is exact: what decodes re-encodes to the same string. */
        if (strlen(back) != size || memcmp(back, data, size) != 0)
            abort();
    }
    struct hash h;
    struct rx_error *err = NULL;
    if (hash_parse((const char *)data, size, NULL, &h, &err) == 0) {
        char s[HASH_STR_MAX];
        hash_format(&h, HASH_NIX32, s);
        struct hash h2;
        if (hash_parse(s, strlen(s), NULL, &h2, NULL) < 0 || !hash_equal(&h, &h2))
            abort();
    }
    rx_error_free(err);
    return 0;
}
