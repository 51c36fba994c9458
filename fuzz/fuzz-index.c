/*
 * libFuzzer harness: nix-index databases.  The input is either a whole
 * file (header and zstd stream) or, when it starts with 'F', the frcode
 * lines themselves, which the harness compresses behind a valid header so
 * that the line decoder sees them; 'L' feeds a .ls listing to the tree code.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "nixdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(const void *db, size_t len)
{
    struct nixdb_reader *r;
    struct rx_error *err = NULL;
    if (nixdb_open_mem(db, len, "fuzz", &r, &err) == 0) {
        struct nixdb_line l;
        while (nixdb_next(r, &l, &err) > 0) {
            if (l.kind == NIXDB_PACKAGE) {
                struct nixdb_package p;
                (void)nixdb_line_may_have_attr(&l, "jq", 2);
                if (nixdb_package_parse(r, &l, &p, &err) == 0)
                    nixdb_package_release(&p);
                rx_error_clear(&err);
            } else if (l.path_len > NIXDB_LINE_MAX || strlen(l.path) != l.path_len) {
                if (memchr(l.path, 0, l.path_len) == NULL)
                    abort(); /* the length must be the path's */
            }
        }
        nixdb_close(r);
    }
    rx_error_free(err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 0 && data[0] == 'L') {
        struct nixdb_tree t;
        struct rx_error *err = NULL;
        if (nixdb_tree_from_listing((const char *)data + 1, size - 1, &t, &err) == 0) {
            struct nixdb_file *f;
            size_t n;
            nixdb_tree_list(&t, "", &f, &n);
            nixdb_files_free(f, n);
            nixdb_tree_release(&t);
        }
        rx_error_free(err);
        return 0;
    }
    if (size > 0 && data[0] == 'F') {
        size_t bound = ZSTD_compressBound(size - 1);
        unsigned char *db = malloc(NIXDB_HEADER_LEN + bound);
        memcpy(db, "NIXI\1\0\0\0\0\0\0\0", NIXDB_HEADER_LEN);
        size_t z = ZSTD_compress(db + NIXDB_HEADER_LEN, bound, data + 1, size - 1, 1);
        if (!ZSTD_isError(z))
            read_all(db, NIXDB_HEADER_LEN + z);
        free(db);
        return 0;
    }
    read_all(data, size);
    return 0;
}
