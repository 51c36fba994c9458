/* runix-core's half of bundles: the whole manifest, and the import's cache. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "cli-bundle.h"
#include "crypto-sig.h"
#include "store-path.h"
#include "store.h"
#include "util-error.h"

/* One path of a bundle: its narinfo, and where its NAR file lies in the bundle. */
struct bundle_entry {
    struct store_path path;
    char *narinfo; /* owned; as its cache signed it */
    uint64_t offset, size;
};

/* A bundle's manifest, checked against the checksum in its trailer. */
struct bundle_manifest {
    struct bundle_trailer t;
    char tag[BUNDLE_TAG_MAX];
    struct store_path *roots; /* owned; the main path first */
    size_t nroots;
    struct bundle_entry *paths; /* owned; the closure */
    size_t npaths;
    struct trusted_keys keys; /* owned; the keys of its caches */
};

/*
 * Read and check the bundle `file`'s trailer and manifest (every offset
 * inside the payload, every key and path well-formed).  With fd_out, the
 * bundle's fd is handed over (the caller closes it).  -1 with err naming
 * what is damaged.
 */
int bundle_manifest_read(const char *file, struct bundle_manifest *m, int *fd_out,
                         struct rx_error **err);
void bundle_manifest_release(struct bundle_manifest *m);

/* The bundle's paths that st lacks, laid out as a file:// binary cache. */
struct bundle_cache {
    char *dir; /* owned, or NULL when the store has every path; private (0700) */
    struct cache cache;
    bool has_cache; /* false: no path to import, no cache */
    size_t nlaid; /* how many paths it holds */
};

/*
 * Lay out the narinfos and NAR files of m's paths that are not valid in st
 * in a new private directory under $TMPDIR (or /tmp), with a
 * nix-cache-info: a cache for fetch_closure().  When the store has them
 * all, no directory is made and has_cache stays false.  Nothing is checked here
 * but the layout: the fetch checks signatures and hashes.
 */
int bundle_import_prepare(const struct bundle_manifest *m, int bundle_fd, struct store *st,
                          struct bundle_cache *bc, struct rx_error **err);
/* Remove the directory. */
void bundle_import_release(struct bundle_cache *bc);
