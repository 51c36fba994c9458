#pragma once
/*
 * GC roots: what keeps store paths alive, laid out as Nix lays out its own
 * so that real Nix on the same store keeps what runix keeps.
 *
 *   R/nix/var/nix/gcroots/runix/<kind>/<NAME>/<basename> -> /nix/store/<basename>
 *
 * kind is "auto" (made by runix run for what it ran), "manual" (runix roots
 * add) or "installed" (runix install).  A root is the directory NAME: one
 * symlink per store path it keeps, named after the path's basename.  Nix's
 * collector walks gcroots/ recursively and takes every symlink into
 * /nix/store as a root, so it sees these as it sees its own.  NAME is the
 * reference the root was made for (a store path's basename, a distributable's
 * absolute file name, a github: or https:// reference, an installed tool's
 * name), encoded by store_root_name_encode() to be one file name.
 *
 * The directory's mtime is when the root was last used: runs refresh it
 * (store_root_use()) when it is more than STORE_ROOT_REFRESH_S old, with
 * utimensat and no fsync, so a warm start pays one stat and, at most once a
 * minute, one metadata update.
 *
 * Everything else under gcroots/ and profiles/ is Nix's (kind "nix"): a
 * symlink into /nix/store (the path it names, or the store path holding
 * it), an indirect root (a symlink to a symlink into /nix/store, resolved
 * on the host, as Nix does), or a regular file named like a store path's
 * basename.
 *
 * This file uses libc and util only, so the runix front can link it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-path.h"
#include "util-error.h"

#define STORE_ROOTS_DIR "nix/var/nix/gcroots/runix"
#define STORE_ROOT_REFRESH_S 60
/* An encoded NAME is at most this long (a file name is at most 255 bytes). */
#define STORE_ROOT_NAME_MAX 200

enum store_root_kind {
    STORE_ROOT_AUTO,
    STORE_ROOT_MANUAL,
    STORE_ROOT_INSTALLED,
    STORE_ROOT_NIX, /* found under gcroots/ or profiles/, not runix's */
};

/* "auto", "manual", "installed", "nix". */
const char *store_root_kind_name(enum store_root_kind k);
/* The kind named s (one of the above), or -1. */
int store_root_kind_parse(const char *s);

/*
 * Encode ref as a root's NAME: bytes other than [A-Za-z0-9._+,=@:~-] become
 * %XX, as does a leading '.', so any reference becomes one file name that
 * decodes back to it.  An encoding longer than STORE_ROOT_NAME_MAX is cut and
 * ends in "~" and 16 hex digits of a hash of the whole reference.  out has
 * room for STORE_ROOT_NAME_MAX + 1 bytes.  -1 (EINVAL) for an empty ref.
 */
int store_root_name_encode(const char *ref, char out[static STORE_ROOT_NAME_MAX + 1],
                           struct rx_error **err);
/* The reference a NAME was encoded from (a cut one stays cut); caller frees. */
char *store_root_name_decode(const char *name);
/* Whether name is what store_root_name_encode() makes (safe to use as NAME). */
bool store_root_name_valid(const char *name);

/*
 * Make root kind/NAME hold exactly paths[0..n) (n >= 1) and mark it used
 * now.  Links to the new paths are made before links to others are removed,
 * so a path both hold is never unprotected.  The directories are made (0755)
 * and checked by the store's trust rule (store-index.h).  root_fd is the
 * store root (store_root_open()), root its name in messages.
 */
int store_root_set(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                   const struct store_path *paths, size_t n, struct rx_error **err);

/*
 * What a run calls: if root kind/NAME already holds exactly paths, refresh
 * its last use when older than STORE_ROOT_REFRESH_S (no fsync) and return 0
 * (a stat and a readlink per path); otherwise store_root_set().  A store the
 * caller cannot write is left as it is (0).
 */
int store_root_use(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                   const struct store_path *paths, size_t n, struct rx_error **err);

/* Remove root kind/NAME: 0, 1 when there is no such root, -1 on error. */
int store_root_remove(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                      struct rx_error **err);

struct store_root {
    enum store_root_kind kind;
    char *name;  /* runix's: the decoded NAME; Nix's: the link, relative to R */
    char *where; /* the root's location relative to R (its directory, or Nix's link) */
    struct store_path *targets; /* sorted, each once; not checked for validity */
    size_t ntargets;
    int64_t last_used; /* seconds since the epoch (the mtime); 0 when unknown */
};

/*
 * Every root of the store: runix's (under STORE_ROOTS_DIR, by kind) and
 * Nix's (the rest of gcroots/, and profiles/).  Unreadable or dangling
 * entries are skipped: they keep nothing alive, for Nix either.  Sorted by
 * kind, then name.  Free with store_roots_free().
 */
int store_roots_scan(int root_fd, const char *root, struct store_root **out, size_t *n,
                     struct rx_error **err);
void store_roots_free(struct store_root *roots, size_t n);
