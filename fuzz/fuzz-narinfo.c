/* libFuzzer harness: narinfo parsing, formatting, fingerprinting and verification. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto-hash.h"
#include "narinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct trusted_keys tk = TRUSTED_KEYS_INIT;
    if (tk.n == 0) {
        const char *k = "cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=";
        if (crypto_init() < 0 || trusted_keys_add(&tk, k, strlen(k), NULL) < 0)
            abort();
    }
    struct narinfo ni;
    struct rx_error *err = NULL;
    if (narinfo_parse((const char *)data, size, &ni, &err) == 0) {
        free(narinfo_format(&ni));
        narinfo_verify(&ni, &tk, &err);
        narinfo_release(&ni);
    }
    rx_error_free(err);
    return 0;
}
