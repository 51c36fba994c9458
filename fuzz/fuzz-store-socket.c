/*
 * libFuzzer harness: the request parser of the sandbox's store socket
 * (run-storesock.h), fed what a sandboxed program could send, whole and cut
 * at every length a reader could see.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run-storesock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    /* An exact-size copy, so reading past it is caught. */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    for (size_t n = 0; n <= size; n++) {
        char path[STORESOCK_STORE_PATH_MAX + 1];
        const char *why = NULL;
        int r = storesock_parse(buf, n, path, &why);
        if (r == 0) {
            size_t pl = strlen(path);
            if (!storesock_store_path_valid(path, pl) || memcmp(path, "/nix/store/", 11) != 0 ||
                strchr(path, '/' ) != path || memchr(buf, '\n', n) != buf + n - 1)
                abort();
        } else if (r < 0 && !why) {
            abort();
        } else if (r == 1 && (memchr(buf, '\n', n) || n >= STORESOCK_REQUEST_MAX)) {
            abort();
        }
        if (r != 1)
            break;
    }
    free(buf);
    return 0;
}
