#pragma once
/*
 * Garbage collection: deleting the store paths nothing keeps alive.
 *
 * Alive is what a root keeps (store-roots.h: runix's own, and Nix's under
 * gcroots/ and profiles/, each with its closure), what a running program
 * uses (a closure index someone holds flock(LOCK_SH) on, store-index.h),
 * the temporary roots of running Nix processes (nix/var/nix/temproots/, as
 * Nix's collector reads them; not the paths Nix would find open in /proc)
 * and what the caller adds (the paths a fetch was asked for).  Everything
 * else valid is dead.
 *
 * Locking.  The collector holds R/nix/var/runix/gc.lock exclusively for its
 * whole run (STORE_GC_LOCK; every process that writes the store holds it
 * shared from store_open(), so a fetch's new paths are never collected
 * before they are rooted).  Before deleting a path an index lists, or the
 * index's top, it takes the index with flock(LOCK_EX|LOCK_NB): failing, a
 * program runs from it and all it lists stays alive; succeeding, it unlinks
 * the index while holding it.  Indexes of tops that are gone are removed.
 *
 * Deleting.  Dead paths go in an order where every referrer goes before
 * what it references, in batches: each batch is unregistered in one
 * transaction (so no valid path ever references an invalid one), then each
 * path is renamed into the work dir and removed there.  A kill at any moment
 * leaves a valid store: unregistered leftovers in nix/store and stale work
 * dirs are removed by the next collection (store_clean_leftovers(),
 * store_tmp_clean_stale()), as are stale lock files.
 *
 * Sizes are NAR sizes (narSize), which is what a path takes on disk give
 * or take the file system's blocks.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store-path.h"
#include "store-roots.h"
#include "store.h"
#include "util-error.h"

#define STORE_LAST_GC "nix/var/runix/last-gc"
#define STORE_GC_NO_LIMIT UINT64_MAX

struct store_gc_opts {
    /* Drop automatic roots not used for this many seconds first; -1: keep all roots. */
    int64_t older_than;
    /* Stop once this much is freed (STORE_GC_NO_LIMIT: no limit). */
    uint64_t max_freed;
    /* Stop once the valid paths total at most this (STORE_GC_NO_LIMIT: no limit). */
    uint64_t keep_size;
    bool dry_run; /* change nothing; report what would go */
    /* More paths to keep alive, with their closures (valid or not). */
    const struct store_path *keep;
    size_t nkeep;
    /* Called for each path deleted (or that would be), in order; and each root dropped. */
    void (*on_path)(void *ctx, const struct store_path *p, uint64_t nar_size);
    void (*on_root)(void *ctx, const struct store_root *r);
    void *ctx;
};

struct store_gc_result {
    size_t npaths;  /* deleted (or that would be) */
    uint64_t bytes; /* their NAR sizes */
    size_t nroots;  /* automatic roots dropped */
    uint64_t store_bytes_before;
};

/*
 * Take the gc lock exclusively (s from store_open(), which holds it shared).
 * When other processes use the store: with `wait`, say so once on stderr
 * ("waiting for other runix processes using R") and wait, else return 0.
 * 1 when held, -1 on error.
 */
int store_gc_lock(struct store *s, bool wait, struct rx_error **err);
/* Back to the shared lock of an open store. */
void store_gc_unlock(struct store *s);

/*
 * Collect garbage in s (from store_open()), taking the gc lock exclusively
 * (store_gc_lock(wait)) and keeping it until store_close().  Unless dry_run,
 * removes leftovers first and records the run in STORE_LAST_GC.
 */
int store_gc(struct store *s, const struct store_gc_opts *o, struct store_gc_result *res,
             struct rx_error **err);

/*
 * Automatic collection, as Nix's min-free/max-free: when the file system of
 * s has less than min_free bytes free (statvfs), delete dead paths, least
 * recently used first, then drop the oldest automatic roots one at a time
 * and delete what that makes dead, until max_free bytes are free (0: as
 * much as can go) or nothing more can go.  keep[0..nkeep) stay, with their
 * closures.  Does nothing when min_free is 0, or (saying so on stderr) when
 * other runix processes use the store.  Leaves the gc lock shared again.
 * Reports on stderr what it freed.  0, or -1 on error.
 */
int store_gc_auto(struct store *s, uint64_t min_free, uint64_t max_free,
                  const struct store_path *keep, size_t nkeep, struct store_gc_result *res,
                  struct rx_error **err);

/*
 * Delete paths[0..n) (runix store delete), taking the gc lock as store_gc()
 * does.  Without `force`, only when nothing alive needs them: no root keeps
 * them, no valid path outside the set references them, no running program
 * uses them; otherwise 1 with *why saying what keeps each (free it).  With
 * `force`, they go with every path that references them, directly or not,
 * and the runix roots that held any of those; still 1 (and *why) for a path
 * a running program uses.  A path that is not valid is an error (ENOENT).
 */
int store_delete(struct store *s, const struct store_path *paths, size_t n, bool force,
                 bool dry_run, void (*on_path)(void *ctx, const struct store_path *p, uint64_t),
                 void *ctx, struct store_gc_result *res, char **why, struct rx_error **err);

/*
 * Whether another process uses s: 0 when none (s then holds the gc lock
 * exclusively), 1 with *why (free it) when another runix process has the
 * store open or a program runs from one of its closures.
 */
int store_destroy_check(struct store *s, char **why, struct rx_error **err);

/*
 * Remove the whole store: R/nix, and R itself if that leaves it empty,
 * read-only store files included.  After store_destroy_check(); then only
 * store_close() may be called.
 */
int store_destroy(struct store *s, struct rx_error **err);
