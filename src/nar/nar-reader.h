#pragma once
/*
 * A streaming, push-style NAR parser.
 *
 * Feed it bytes in chunks of any size with nar_reader_feed(); it calls the
 * visitor as it recognises nodes, and never holds more than one name or
 * symlink target in memory.  Directory nesting is tracked on an explicit
 * stack bounded by NAR_MAX_DEPTH, so no input can exhaust the C stack.
 *
 * Only the canonical form that `nix-store --dump` writes is accepted: the
 * grammar of nix-formats.md section 3.2 with tokens in canonical order,
 * directory entries in strictly increasing byte order, names that are not
 * "", ".", ".." and hold no '/' or NUL and are at most NAR_NAME_MAX bytes,
 * non-empty symlink targets of at most NAR_TARGET_MAX bytes without NUL,
 * zero padding, and nothing after the final ")".  A non-canonical NAR could
 * never match its NarHash when dumped again, so refusing it costs nothing.
 *
 * Errors are sticky: after a failure every further call fails.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util-error.h"

#define NAR_MAGIC "nix-archive-1"
#define NAR_NAME_MAX 255
#define NAR_TARGET_MAX 4095
#define NAR_MAX_DEPTH 256

/*
 * Callbacks, each optional.  `name` is the node's entry name within its
 * parent directory (not NUL-terminated), or NULL with namelen 0 for the
 * root node.  A callback returns 0, or -1 with *err set to stop parsing.
 */
struct nar_visitor {
    int (*directory_begin)(void *ctx, const char *name, size_t namelen, struct rx_error **err);
    int (*directory_end)(void *ctx, struct rx_error **err);
    int (*file_begin)(void *ctx, const char *name, size_t namelen, bool executable,
                      uint64_t size, uint64_t offset, struct rx_error **err);
    int (*file_data)(void *ctx, const void *data, size_t len, struct rx_error **err);
    int (*file_end)(void *ctx, struct rx_error **err);
    int (*symlink)(void *ctx, const char *name, size_t namelen, const char *target,
                   size_t targetlen, struct rx_error **err);
};

struct nar_reader;

/* A new reader calling v with ctx.  Free with nar_reader_free(). */
struct nar_reader *nar_reader_new(const struct nar_visitor *v, void *ctx);
void nar_reader_free(struct nar_reader *r);

/*
 * Parse the next n bytes.  Returns 0, or -1 with *err naming the problem and
 * the byte offset.  Bytes after the end of the archive are an error.
 */
int nar_reader_feed(struct nar_reader *r, const void *data, size_t n, struct rx_error **err);

/* The input has ended: fails unless a complete archive was read. */
int nar_reader_finish(struct nar_reader *r, struct rx_error **err);

/*
 * Feed everything readable from fd until end of file, then finish.  Returns
 * 0 for a complete, valid archive.
 */
int nar_reader_read_fd(struct nar_reader *r, int fd, struct rx_error **err);

/* True once the final ")" has been read. */
bool nar_reader_done(const struct nar_reader *r);

/* Bytes consumed so far. */
uint64_t nar_reader_offset(const struct nar_reader *r);
