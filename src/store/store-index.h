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
 * SQLite).  The database stays the truth: an index is only believed while
 * every path it names is still in nix/store, and anything else (no index, a
 * malformed one, a missing path) sends the caller back to the database.
 *
 * This file uses libc and util only, so the runix front can link it alone:
 * the writer takes the closure as given rather than asking the database.
 */

#include <stddef.h>

#include "store-path.h"
#include "util-error.h"

#define STORE_INDEX_HEADER "runix closure index 1"
#define STORE_INDEX_DIR "nix/var/runix/closures"

/*
 * Read the index of p in the store whose canonical root is root and check
 * that every path in it is present.  Returns 0 with the closure (sorted as
 * written, p included) in *out (free it), or 1 when the index cannot be used
 * (absent, malformed, not naming p, or a path is missing).
 */
int store_index_read(const char *root, const struct store_path *p, struct store_path **out,
                     size_t *n);

/*
 * Write the index of p, whose closure (p included) is closure[0..n), into
 * the store whose root directory is open as root_fd:
 * R/nix/var/runix/closures/<basename of p>, creating the directory if needed
 * and replacing an older index atomically (a reader sees the old one or the
 * new one).
 */
int store_index_save(int root_fd, const struct store_path *p, const struct store_path *closure,
                     size_t n, struct rx_error **err);
