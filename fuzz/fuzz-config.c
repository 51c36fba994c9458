/* libFuzzer harness: the config file parser, cache URLs and nix-cache-info. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "util-conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int setting(void *ctx, const char *name, const char *value, const char *file,
                   unsigned line, struct rx_error **err)
{
    (void)file;
    (void)line;
    (void)err;
    (void)name;
    /* Every value is tried as a cache URL too. */
    struct cache c;
    if (cache_init(&c, value, 0, NULL) == 0) {
        free(cache_file_url(&c, "nix-cache-info"));
        cache_release(&c);
    }
    (*(size_t *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser takes text without NUL (the file reader refuses NUL). */
    if (memchr(data, '\0', size))
        return 0;
    size_t n = 0;
    struct rx_error *err = NULL;
    conf_parse((const char *)data, size, "fuzz.conf", setting, &n, &err);
    rx_error_clear(&err);
    struct cache c;
    if (cache_init(&c, "https://cache.example.org", 0, NULL) == 0) {
        cache_apply_info(&c, (const char *)data, size, &err);
        rx_error_clear(&err);
        cache_release(&c);
    }
    return 0;
}
