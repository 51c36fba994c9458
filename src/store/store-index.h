#pragma once
/*
 * Closure indexes: R/nix/var/runix/closures/<basename of P> lists the
 * closure of P, one store basename per line after a header line.  runix
 * fetch writes one for each path it was asked for, once the whole closure is
 * valid in the database (store_index_write() in store.h, which asks the
 * database for the closure and hands it to store_index_save()).
 *
 * They let a warm 'runix run' check that a closure is complete with a file
 * read and one stat per path, without opening the database (or loading
 * SQLite).  The database stays the truth: each line records the device,
 * inode and ctime the path had when the index was written, and an index is
 * only believed while every path it names is still that very inode,
 * unchanged, in nix/store.  Anything else (no index, a malformed one or one
 * of another format, a missing or replaced path) sends the caller back to
 * the database.
 *
 * Format 2: the header line, then "<basename> <dev> <ino> <ctime s> <ctime
 * ns>\n" per path, in decimal.
 *
 * In use: a program runs from its closure under a lock on the index.
 *
 *  - Every reader opens an index and takes flock(LOCK_SH | LOCK_NB) on it
 *    before it reads a byte; an index it cannot lock so (a collector holds
 *    it) or that fstat says is unlinked (st_nlink == 0: a collector removed
 *    it after the open) cannot be used: the caller goes the slow way,
 *    through the database (runix-core, which waits for the collector to be
 *    done and fetches again what it removed).
 *  - runix run keeps the index open and locked for the program's whole
 *    life: the fds are moved to STORE_INDEX_LOCK_FD_MIN or above, out of
 *    the program's way, and lose FD_CLOEXEC just before the exec, so the
 *    program (and whatever it starts that keeps them) holds the lock.
 *  - The collector holds R/nix/var/runix/gc.lock exclusively while it
 *    collects (runix-core processes that write the store hold it shared).
 *    Before it deletes a path that an index lists, it takes
 *    flock(LOCK_EX | LOCK_NB) on that index; failing means a program runs
 *    from it, and every path it lists stays.  Holding the lock, it checks
 *    that the index's name still is the inode it locked (fstatat against
 *    fstat: a fetch may have replaced it), and unlinks it before deleting
 *    any path, still holding the lock.
 *
 * A file system without flock (ENOLCK) runs programs unprotected.
 *
 * This file uses libc and util only, so the runix front can link it alone:
 * the writer takes the closure as given rather than asking the database.
 */

#include <stdbool.h>
#include <stddef.h>

#include "store-path.h"
#include "util-error.h"

#define STORE_INDEX_HEADER "runix closure index 2"
#define STORE_INDEX_DIR "nix/var/runix/closures"

/*
 * The trust rule of store.h, for the object open as fd, which is rel under
 * root ("" for the root itself): 0 if it belongs to the caller (euid) or
 * root and neither its group nor others may write to it; else -1 with an
 * error (code EPERM) naming the path and the fix.
 */
int store_check_fd(int fd, const char *root, const char *rel, struct rx_error **err);

/*
 * Open the store root `root` (as given) and check it: returns its fd and
 * the resolved root in *real (free it), or -1 with an error.  When root is a
 * symlink, the link must belong to the caller or root, and the directory it
 * resolves to is checked.  An error for a missing root has code ENOENT; an
 * unsafe root, EPERM.
 */
int store_root_open(const char *root, char **real, struct rx_error **err);

/*
 * Open the directory rel (relative, '/'-separated) under the store root open
 * as root_fd, component by component without following symlinks, checking
 * each one with store_check_fd(); with `create`, missing components are made
 * (0755).  root names the store in messages.  Returns the fd of the last (the
 * caller closes it), or -1 with an error: code EPERM when a component is
 * unsafe, the errno of open otherwise (ENOENT when it is missing).
 */
int store_dir_open(int root_fd, const char *root, const char *rel, bool create,
                   struct rx_error **err);

/*
 * Read the index of p in the store root open as root_fd (from
 * store_root_open(); root is its resolved name) and check that every path in
 * it is present and unchanged.  Returns 0 with the closure (sorted as
 * written, p included) in *out (free it), 1 when the index cannot be used
 * (absent, malformed, not naming p, a path is missing or was replaced, or a
 * collector holds it or removed it: the protocol above),
 * or -1 with an error when nix/store, the index's directories or the index
 * are not safe to trust (store_check_fd()): that store must not be used.
 */
int store_index_read(int root_fd, const char *root, const struct store_path *p,
                     struct store_path **out, size_t *n, struct rx_error **err);

/*
 * store_index_read_tagged() (tag NULL: the plain index) that, on success
 * (0), leaves the index open and locked shared in *lock_fd, at
 * STORE_INDEX_LOCK_FD_MIN or above when RLIMIT_NOFILE allows, close-on-exec:
 * the run's hold on its closure (the protocol above); the caller closes it.
 * *lock_fd is -1 otherwise, or with lock_fd NULL the lock is released as
 * store_index_read_tagged() does (every reader locks).
 */
#define STORE_INDEX_LOCK_FD_MIN 100
int store_index_read_locked(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, struct store_path **out, size_t *n,
                            int *lock_fd, struct rx_error **err);

/*
 * Write the index of p, whose closure (p included) is closure[0..n), into
 * the store whose root directory is open as root_fd (named root in
 * messages): R/nix/var/runix/closures/<basename of p>, creating the directory
 * if needed and replacing an older index atomically (a reader sees the old
 * one or the new one).  Every path must be in nix/store: its device, inode
 * and ctime are recorded.
 */
int store_index_save(int root_fd, const char *root, const struct store_path *p,
                     const struct store_path *closure, size_t n, struct rx_error **err);

/*
 * Indexes with a tag: "<basename>@<tag>" beside the plain ones.  A plain
 * index says that the user's own trusted keys vouch for every path of the
 * closure; a tagged one, that the keys of one distributable (the tag names
 * the very file, see cli-dist.h) and the user's do.  So a path fetched under
 * a distributable's key is never believed complete for a plain run.
 */
#define STORE_INDEX_TAG_MAX 128
int store_index_read_tagged(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, struct store_path **out, size_t *n,
                            struct rx_error **err);
int store_index_save_tagged(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, const struct store_path *closure,
                            size_t n, struct rx_error **err);
