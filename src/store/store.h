#pragma once
/*
 * The local store: a Nix chroot store under a root directory R.
 *
 *   R/nix/store/<hash>-<name>     store paths, read-only, mtime 1
 *   R/nix/store/<basename>.lock   per-path lock files (Nix's convention)
 *   R/nix/var/nix/db/db.sqlite    Nix's database, schema version 10
 *   R/nix/var/nix/db/schema       "10"
 *   R/nix/var/nix/gcroots/        GC roots
 *   R/nix/var/runix/tmp/<id>/     one private work dir per process,
 *                                 locked while the process lives
 *   R/nix/var/runix/closures/<basename>
 *                                 closure indexes (store-index.h)
 *   R/nix/var/runix/gc.lock       held shared by every process that has the
 *                                 store open to write (store_open()),
 *                                 exclusively by the collector (store-gc.h)
 *   R/nix/var/runix/last-gc       "<time> <paths> <bytes>" of the last collection
 *
 * Invariants (nix-formats.md section 7):
 *  - a path is registered in ValidPaths only once it is complete on disk,
 *    verified and canonicalised, and only together with or after every path
 *    it references;
 *  - work happens in the private temp dir and is renamed into nix/store, so
 *    a crash leaves at most unregistered store entries and temp dirs, which
 *    later runs remove;
 *  - whoever creates a store path holds its lock from before the first byte
 *    is written until it is registered.
 *
 * The db is opened with foreign keys on, WAL and a long busy timeout, so
 * several processes can share a store.
 *
 * Trust (sshd's StrictModes rule): whoever can change a store decides what
 * runix runs, so a store is refused unless the root, nix/, nix/store,
 * nix/var, nix/var/nix, nix/var/nix/db, nix/var/nix/gcroots, nix/var/runix,
 * its tmp/ and closures/, the database and schema files and the closure
 * indexes each belong to the caller (euid) or root and are writable by
 * neither group nor others.  Each is checked with fstat on the fd runix
 * opened it as, walking down from the root without following symlinks
 * (store-index.h: store_root_open(), store_dir_open(), store_check_fd()), in
 * runix-core and in the front's warm path alike.  The root itself may be a
 * symlink only if the link too belongs to the caller or root (another user
 * could re-point it); it is resolved, and the directory it names is checked.
 * The root's parents are not checked: a sticky /tmp is a fine place for a
 * root.  A store of root's that the caller cannot write (a prefetched one)
 * is fine to run from.  runix makes directories 0755 and files 0644 or 0600
 * less the umask, so its own stores pass.
 *
 * The code is split by concern: store-db.c (open, schema), store-register.c
 * (queries, registration), store-lock.c, store-install.c (work dirs,
 * install, leftovers), store-closure.c, store-repair.c (paths gone from
 * disk) and store-verify.c (runix verify: NAR hashes, canonical metadata,
 * repairs; store-verify.h), sharing store-internal.h.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto-hash.h"
#include "crypto-sig.h"
#include "store-path.h"
#include "util-error.h"

struct store;

/* What gets registered for one path. */
struct store_info {
    struct store_path path;
    struct hash nar_hash; /* sha256 */
    uint64_t nar_size;
    const struct store_path *refs;
    size_t nrefs;
    const struct store_path *deriver; /* or NULL */
    const char *const *sigs;          /* raw "name:base64" values */
    size_t nsigs;
    const char *ca; /* or NULL */
};

#define STORE_GC_LOCK "nix/var/runix/gc.lock"

/*
 * Open the store rooted at `root`, creating the layout and the database if
 * they do not exist.  Holds the gc lock shared until store_close(): while a
 * collection runs, says so on stderr ("waiting for garbage collection to
 * finish in R") and waits for it.  Refuses a database of another schema version, and a
 * store that is not safe to trust (above; the error has code EPERM).
 */
int store_open(const char *root, struct store **out, struct rx_error **err);
/*
 * Open an existing store only to read it: nothing is created or written,
 * no lock is taken (the database is read as store-db.c explains, so a
 * store in a directory the caller cannot write, such as root's prefetched
 * one, works too).  Returns 0, 1 when there is no store at root yet
 * (nothing there, or no database), or -1 on error (a store not safe to
 * trust, one that cannot be read, a database of another schema).  Only
 * queries, store_closure() and store_index_write() work on it.
 *
 * store_open() of a store the caller cannot write (the directories it
 * writes in are another's) fails with code EACCES (EROFS on a read-only
 * file system) and says to use a store of one's own.
 */
int store_open_readonly(const char *root, struct store **out, struct rx_error **err);

/*
 * A store with no paths, named root in messages, for what reads a store
 * that does not exist yet (fetch --dry-run): nothing is made on disk.
 */
struct store *store_new_empty(const char *root);

/*
 * Whether this process may write in the store: always for store_open();
 * for a read-only one, whether the directory where the closure indexes go
 * (or the nearest that exists above it) is writable by it.
 */
bool store_writable(const struct store *s);

void store_close(struct store *s);

/* The root, absolute and free of symlinks. */
const char *store_root(const struct store *s);
/* An fd of R/nix/store. */
int store_dir_fd(const struct store *s);

/* 1 if p is registered, 0 if not, -1 on error. */
int store_is_valid(struct store *s, const struct store_path *p, struct rx_error **err);

/* The registered references of p (self-reference included), caller frees *refs. */
int store_query_references(struct store *s, const struct store_path *p, struct store_path **refs,
                           size_t *nrefs, struct rx_error **err);

/*
 * Register paths, all in one transaction: every path first, then the
 * references.  Each path must be on disk and every reference must be
 * valid or in the same batch, or nothing is registered.  Paths that are
 * already valid are left as they are.
 */
int store_register(struct store *s, const struct store_info *infos, size_t n,
                   struct rx_error **err);

/*
 * syncfs() the store's file system, so that what was written and renamed
 * into nix/store is on disk before store_register() says it is there.
 * -1 with err (EIO, ...).
 */
int store_sync(struct store *s, struct rx_error **err);

/*
 * Lock p (flock on R/nix/store/<basename>.lock).  Returns 1 with *fd set
 * when locked, 0 when another process holds the lock and !wait, -1 on error.
 */
int store_lock_path(struct store *s, const struct store_path *p, bool wait, int *fd,
                    struct rx_error **err);
/* Release a lock from store_lock_path(), deleting its lock file. */
void store_unlock_path(struct store *s, const struct store_path *p, int fd);

/*
 * This process's private work dir (created on first use, after removing
 * the work dirs of processes that died).  Returns its fd, or -1.
 */
int store_tmp_fd(struct store *s, struct rx_error **err);

/* Move tmp/<name> (a finished, canonical tree) to nix/store/<basename of p>. */
int store_install(struct store *s, const char *name, const struct store_path *p,
                  struct rx_error **err);

/*
 * Remove nix/store/<basename of p> if it exists.  The caller holds p's lock
 * and knows p is not valid: whatever is there was left by a crash.
 */
int store_remove_invalid(struct store *s, const struct store_path *p, struct rx_error **err);

/*
 * Remove every unregistered store path that nobody holds a lock on: the
 * leftovers of runs that were killed between install and registration (or
 * of collections killed between unregistering and removing), and the lock
 * files nobody holds of paths that are not there.
 */
int store_clean_leftovers(struct store *s, struct rx_error **err);

/*
 * The closure of roots (every path they reference, directly or not, and
 * themselves), sorted.  Returns 0 with the paths in *out (free it), 1 when
 * a root is not valid (the closure is not complete), -1 on error.
 */
int store_closure(struct store *s, const struct store_path *roots, size_t n,
                  struct store_path **out, size_t *nout, struct rx_error **err);

/*
 * Write the closure index of p (see store-index.h), which must be valid:
 * R/nix/var/runix/closures/<basename>, replaced atomically.
 */
int store_index_write(struct store *s, const struct store_path *p, struct rx_error **err);

/*
 * The fingerprint Nix signs for a path:
 *   1;<path>;sha256:<nix32 NarHash>;<NarSize>;<sorted reference paths, ','-joined>
 * Returned string is owned by the caller.
 */
char *store_fingerprint(const struct store_path *p, const struct hash *nar_hash, uint64_t nar_size,
                        const struct store_path *refs, size_t nrefs);

/*
 * Does a key in `keys` vouch for each of paths[0..n) (valid paths): one of
 * its registered signatures verifies, or it is content-addressed?  0 when
 * all are; 1 with the first that is not in *bad and its signatures
 * (space-separated, maybe "") in *bad_sigs (free it); -1 on error.
 */
int store_check_sigs(struct store *s, const struct store_path *paths, size_t n,
                     const struct trusted_keys *keys, struct store_path *bad, char **bad_sigs,
                     struct rx_error **err);

/* Does p's closure index (plain, or tagged) exist and still hold? */
bool store_index_holds(struct store *s, const struct store_path *p, const char *tag);

/* The NarHash registered for valid path p. */
int store_query_nar_hash(struct store *s, const struct store_path *p, struct hash *out,
                         struct rx_error **err);

/* Register one more signature ("name:base64") for valid path p, as Nix keeps them. */
int store_add_sig(struct store *s, const struct store_path *p, const char *sig,
                  struct rx_error **err);

/*
 * Write p's closure index, plain (tag NULL) or tagged (store-index.h), once
 * `keys` vouch for every path of the closure (store_check_sigs(); keys NULL:
 * no check, for --insecure-no-verify).  0; 1 with the first path they do not
 * vouch for in *bad and its signatures in *bad_sigs (free it), writing
 * nothing; -1 on error.
 */
int store_index_write_checked(struct store *s, const struct store_path *p, const char *tag,
                              const struct trusted_keys *keys, struct store_path *bad,
                              char **bad_sigs, struct rx_error **err);

/*
 * Registered paths that are not whole on disk (store-repair.c): absent from
 * nix/store, not a directory, regular file or symlink (nothing else comes
 * out of a NAR), or one that lstat or reading fails on.  With roots, the
 * closures of those roots that are valid; with roots NULL, every valid path.
 * One lstat per path: cheap enough for fetch and doctor, not for the warm
 * path of runix run (store-index.h guards that one).  Returns 0 with the
 * paths, sorted, in *out (free it; NULL when none), -1 on error.
 */
int store_check_missing(struct store *s, const struct store_path *roots, size_t n,
                        struct store_path **out, size_t *nout, struct rx_error **err);

/*
 * Unregister missing[0..n) (from store_check_missing()) and every valid path
 * that references one of them, directly or not, in one transaction: the
 * database then again only holds paths whose whole closure is on disk,
 * which is what `nix-store --verify` asks for (Nix refuses a path that
 * disappeared but still has valid referrers).  Each path is looked at again
 * inside the transaction, so one that another process has fetched again
 * meanwhile stays.  What is left on disk of the referrers is unregistered,
 * to be fetched again (or cleaned up, store_clean_leftovers()).
 * *nunregistered gets how many paths were unregistered.
 */
int store_unregister_missing(struct store *s, const struct store_path *missing, size_t n,
                             size_t *nunregistered, struct rx_error **err);

/* Number of valid paths and the sum of their NAR sizes. */
int store_stats(struct store *s, uint64_t *npaths, uint64_t *nar_bytes, struct rx_error **err);
