/* libFuzzer harness: the NAR reader must reject or accept any input without crashing. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "nar-reader.h"

static int on_data(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)err;
    /* Touch every byte so the sanitizer sees out-of-bounds reads. */
    const unsigned char *p = data;
    unsigned *sum = ctx;
    for (size_t i = 0; i < len; i++)
        *sum += p[i];
    return 0;
}

static int on_link(void *ctx, const char *name, size_t n, const char *t, size_t tl,
                   struct rx_error **err)
{
    (void)err;
    unsigned *sum = ctx;
    for (size_t i = 0; i < n; i++)
        *sum += (unsigned char)name[i];
    for (size_t i = 0; i < tl; i++)
        *sum += (unsigned char)t[i];
    return 0;
}

static const struct nar_visitor visitor = {
    .file_data = on_data,
    .symlink = on_link,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned sum = 0;
    /* Feed in two uneven pieces to exercise chunk boundaries. */
    size_t split = size ? data[0] % (size + 1) : 0;
    struct nar_reader *r = nar_reader_new(&visitor, &sum);
    struct rx_error *err = NULL;
    if (nar_reader_feed(r, data, split, &err) == 0 &&
        nar_reader_feed(r, data + split, size - split, &err) == 0)
        nar_reader_finish(r, &err);
    rx_error_free(err);
    nar_reader_free(r);
    return 0;
}
