/* Verifying valid paths against the database, comparing trees, and repairing in place. */
#pragma once
/*
 * runix verify's core.  A valid path is checked by serialising it as a NAR
 * (nar-dump.c) straight into sha256, and comparing that hash and size with
 * what the database registered (ValidPaths.hash, narSize), as
 * `nix-store --verify --check-contents` does.  The same walk checks what a
 * NAR does not record but a canonical store keeps (nix-formats.md section
 * 7): no write bit, no setuid/setgid/sticky bit, mtime 1, every entry the
 * store owner's.
 *
 * A NAR hash says only that something changed.  Given a copy of the right
 * tree (a cache's NAR unpacked, whose hash was checked against the
 * registered one), store_verify_compare() names each file changed,
 * deleted or added and each executable bit changed.
 *
 * Repairs hold the path's lock and keep the store valid at every moment:
 * store_verify_swap() exchanges a verified tree with the damaged one in a
 * single renameat2(RENAME_EXCHANGE) (a plain rename when the path is gone),
 * so nix/store holds either the old tree or the new one, never a part;
 * store_verify_fix_modes() re-canonicalises a tree whose NAR is right.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto-hash.h"
#include "store-path.h"
#include "store.h"
#include "util-error.h"

enum store_problem_kind {
    STORE_PROBLEM_CHANGED,    /* contents, symlink target or type differ */
    STORE_PROBLEM_DELETED,    /* in the right tree, not on disk */
    STORE_PROBLEM_ADDED,      /* on disk, not in the right tree */
    STORE_PROBLEM_MODE,       /* the executable bit differs (the NAR records it) */
    STORE_PROBLEM_META,       /* not canonical (write bit, setuid, mtime, owner): NAR the same */
    STORE_PROBLEM_UNREADABLE, /* could not be read, or is no file, directory or symlink */
};

/* The kind's name in output: "changed", "deleted", "added", "mode", "meta", "unreadable". */
const char *store_problem_kind_name(enum store_problem_kind k);

struct store_problem {
    enum store_problem_kind kind;
    char *file;   /* owned: the path below the store path, "" for the path itself */
    char *detail; /* owned: what is wrong, in words */
};

enum store_verify_status {
    STORE_VERIFY_OK,
    STORE_VERIFY_CORRUPTED,   /* the NAR hash or size differs from the registered one */
    STORE_VERIFY_MISSING,     /* registered, not on disk */
    STORE_VERIFY_NONCANONICAL /* the NAR is right, but modes, mtimes or owners are not */
};

struct store_verify_result {
    struct store_path path;
    enum store_verify_status status;
    struct hash want_hash; /* registered */
    uint64_t want_size;
    bool hashed; /* the tree could be serialised: got_* are set */
    struct hash got_hash;
    uint64_t got_size;
    struct store_problem *problems; /* owned */
    size_t nproblems;
    bool detailed;         /* problems come from a comparison with a right copy */
    bool owner_wrong;      /* some entry is not the store owner's (needs root to fix in place) */
    bool repaired;         /* checked again after a repair and found right */
    char *note;            /* owned or NULL: why it was not detailed or not repaired */
};

/* Adds a problem to r (file and detail are copied). */
void store_verify_add_problem(struct store_verify_result *r, enum store_problem_kind kind,
                              const char *file, const char *detail);

/* Frees what r owns and forgets its problems (path and hashes stay). */
void store_verify_result_clear(struct store_verify_result *r);
void store_verify_results_free(struct store_verify_result *v, size_t n);

/* Progress, called from the thread that called store_verify() about every 200 ms. */
struct store_verify_events {
    void *ctx;
    void (*progress)(void *ctx, size_t paths_done, size_t paths_total, uint64_t bytes_done,
                     uint64_t bytes_total);
};

/*
 * Check paths[0..n) (each must be valid; else an error naming it, code
 * RX_ENOTFOUND), or every valid path when paths is NULL, with `jobs`
 * threads (0: the CPUs this process may use), one path per job.  Returns 0 with one
 * result per path, sorted by path, in *out (free with
 * store_verify_results_free()); -1 with err when the database cannot be read.
 * What is wrong with a path is in its result, never an error.
 */
int store_verify(struct store *s, const struct store_path *paths, size_t n, unsigned jobs,
                 const struct store_verify_events *ev, struct store_verify_result **out,
                 size_t *nout, struct rx_error **err);

/* Check one path again (after a repair): r's status and problems are recomputed. */
int store_verify_one(struct store *s, struct store_verify_result *r, struct rx_error **err);

/*
 * Compare the tree on disk with the right one, `name` in the store's work
 * dir (store_tmp_fd()), adding a problem to r for every file changed,
 * deleted or added and each executable bit changed; r->detailed is set.
 * -1 with err when a tree cannot be read.
 */
int store_verify_compare(struct store *s, struct store_verify_result *r, const char *name,
                         struct rx_error **err);

/*
 * Put the verified, canonical tree `name` of the work dir (its root may be
 * writable) in place of p, which the caller has locked: exchanged with
 * what is there in one step, the damaged tree then removed; or renamed in
 * when nothing is there.  The new tree is synced to disk first.
 */
int store_verify_swap(struct store *s, const struct store_path *p, const char *name,
                      struct rx_error **err);

/*
 * Make p's tree canonical in place (modes 0444/0555, mtime 1; the store
 * owner's, if this process may chown), p locked by the caller.
 */
int store_verify_fix_modes(struct store *s, const struct store_path *p, struct rx_error **err);

/* The registered signatures of valid p ("name:base64" each) into *sigs (free each and it). */
int store_query_sigs(struct store *s, const struct store_path *p, char ***sigs, size_t *nsigs,
                     struct rx_error **err);
