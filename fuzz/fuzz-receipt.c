/* libFuzzer harness: the install receipt and a release's SHA256SUMS. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util-error.h"
#include "util-receipt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct receipt r;
    struct rx_error *err = NULL;
    if (receipt_parse(text, size, &r, &err) == 0) {
        /* What parses formats to a text that parses to the same. */
        char *t = receipt_format(&r);
        struct receipt again;
        if (receipt_parse(t, strlen(t), &again, NULL) != 0 ||
            strcmp(again.binary, r.binary) != 0 || again.nfiles != r.nfiles)
            abort();
        receipt_release(&again);
        free(t);
        receipt_release(&r);
    }
    rx_error_free(err);
    err = NULL;
    char sum[65];
    sha256sums_find(text, size, "runix-x86_64-linux", sum, &err);
    rx_error_free(err);
    return 0;
}
