#pragma once
/*
 * Serialise a file tree as a NAR, byte for byte what `nix-store --dump`
 * writes: directory entries sorted by bytes, only the owner-execute bit
 * recorded, symlink targets verbatim.  Anything other than a regular file,
 * directory or symlink is an error.
 *
 * The bytes go to a sink callback in chunks; nothing is held whole.
 */

#include <stddef.h>
#include <stdint.h>

#include "crypto-hash.h"
#include "util-error.h"

typedef int (*nar_sink_fn)(void *ctx, const void *data, size_t len, struct rx_error **err);

/* Dump `path` (not followed if it is a symlink). */
int nar_dump_path(const char *path, nar_sink_fn sink, void *ctx, struct rx_error **err);

/* Dump `name` in dirfd (may be AT_FDCWD). */
int nar_dump_at(int dirfd, const char *name, nar_sink_fn sink, void *ctx,
                struct rx_error **err);

struct stat;
/*
 * Called once for every node as it is dumped, with its lstat: rel is its
 * path below the root, '/'-separated ("" for the root itself).  For checks
 * of what the NAR does not record (modes, owners, mtimes) in the same walk.
 */
typedef void (*nar_node_fn)(void *ctx, const char *rel, const struct stat *st);

/* nar_dump_at(), calling node (with node_ctx) for every node. */
int nar_dump_at_visit(int dirfd, const char *name, nar_sink_fn sink, void *ctx, nar_node_fn node,
                      void *node_ctx, struct rx_error **err);

/* The NarHash (sha256) and NarSize of `path`. */
int nar_hash_path(const char *path, struct hash *hash, uint64_t *size, struct rx_error **err);
