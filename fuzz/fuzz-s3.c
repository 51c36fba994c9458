/* libFuzzer harness: s3:// URLs, AWS credentials and config files, S3's error documents. */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "s3.h"
#include "util-mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The first byte picks the parser: 'P' (and 'C' for a config file) a
 * credentials file, looked up for the profile "ci"; 'E' an error
 * document; anything else an s3:// URL.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] == 'P' || data[0] == 'C') {
        char *id, *key, *tok;
        s3_profile_parse(text, len, "ci", data[0] == 'C', &id, &key, &tok);
        free(id);
        free(key);
        free(tok);
    } else if (data[0] == 'E') {
        char code[64], msg[512];
        if (s3_error_parse(text, len, code, sizeof code, msg, sizeof msg)) {
            (void)s3_error_is_missing(403, code);
            (void)s3_error_hint(code);
        }
    } else {
        char *url = xasprintf("s3://%.*s", (int)len, text);
        struct s3_cache *s = NULL;
        if (strlen(url) == len + 5 && s3_cache_new(url, url, &s, NULL) == 0) {
            free(s3_cache_url(s));
            free(s3_sigv4_provider(s));
            s3_cache_free(s);
        }
        free(url);
    }
    return 0;
}
