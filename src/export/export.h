/* runix export: a closure as a root file system or an OCI image (docs/export.md). */
#pragma once
/*
 * Everything here reads store paths through an fd of R/nix/store and
 * names them by basename ("<hash>-<name>"); nothing is written outside the
 * directory (or file) the caller gives.  What the output holds depends on
 * the closure alone: entries sorted by name, modes as a NAR has them (0555
 * directories and executables, 0444 other files), mtime 1, owner 0:0, and
 * JSON with sorted keys.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <jansson.h>

#include "crypto-hash.h"
#include "export-tar.h"
#include "util-error.h"

/*
 * Visit dirfd/name and, for a directory, everything below it, in sorted
 * (byte) order: fn(ctx, fd, entry name, rel, lstat, leaving) before a node
 * and, for a directory, once more after its children with leaving true.
 * rel is the node's path in the output ("nix/store/<base>/bin/x").
 */
typedef int (*export_visit_fn)(void *ctx, int dirfd, const char *name, const char *rel,
                               const struct stat *st, bool leaving, struct rx_error **err);
int export_walk(int dirfd, const char *name, const char *rel, export_visit_fn fn, void *ctx,
                struct rx_error **err);

/* The mode a node of the store has in an export: 0555 or 0444 (as a NAR records it). */
mode_t export_mode(const struct stat *st);

/* Append nix/store/<base> (the tree below it too) to a tar. */
int export_tar_path(struct tar_writer *w, int store_fd, const char *base, struct rx_error **err);

/*
 * Lay the closure out under out_fd (an empty directory): nix/store/<base>
 * for each of bases[0..n), files hard-linked from the store where the file
 * system allows it, copied otherwise (*ncopied counts them).
 */
int export_rootfs(int store_fd, char *const *bases, size_t n, int out_fd, size_t *ncopied,
                  struct rx_error **err);

/* What an image holds and says. */
struct export_image {
    int store_fd;
    char *const *bases; /* the closure, sorted */
    size_t nbases;
    bool one_layer;       /* one layer for the whole closure, else one per path */
    const char *entry;    /* "/nix/store/<base>/bin/x" */
    const char *path_env; /* "PATH=..." */
    json_t *labels;       /* borrowed: the config's Labels */
    const char *arch;     /* "amd64", "arm64" */
    const char *ref_name; /* index.json's org.opencontainers.image.ref.name */
};

/* No more layers than this (overlay file systems stack about 128): the rest share the last. */
#define EXPORT_MAX_LAYERS 100

/* What was written: the digests, as 64 hex digits. */
struct export_digests {
    char manifest[65];
    char config[65];
    char (*layers)[65]; /* owned */
    size_t nlayers;
    uint64_t manifest_size, config_size;
};
void export_digests_release(struct export_digests *d);

/*
 * Write an OCI image layout (oci-layout, index.json, blobs/sha256/...) into
 * out_fd, an empty directory.  Layers are uncompressed tars
 * (application/vnd.oci.image.layer.v1.tar).
 */
int export_oci_layout(const struct export_image *im, int out_fd, struct export_digests *d,
                      struct rx_error **err);

/*
 * Write to out (a new, empty file) the docker-archive form of the layout
 * in layout_fd that export_oci_layout() wrote with digests d: manifest.json,
 * repositories, the config as <hex>.json and each layer as <hex>/layer.tar;
 * repo_tag is "name:tag".
 */
int export_docker_archive(int layout_fd, const struct export_digests *d, const char *repo_tag,
                          int out, struct rx_error **err);
