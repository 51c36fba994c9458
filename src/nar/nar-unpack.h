#pragma once
/*
 * Restore a NAR into the file system, as a nar_visitor.
 *
 * Everything is written relative to directory fds: the root node is created
 * as `name` inside `parent_fd`, every entry with openat/mkdirat/symlinkat
 * and O_EXCL|O_NOFOLLOW on its own directory's fd.  A symlink the NAR
 * creates is therefore never followed, whatever it points to, and an entry
 * can never be written outside the tree.
 *
 * With `canonical` set, the result is what Nix keeps in its store: regular
 * files 0444 (0555 if executable), directories 0555 once filled, and every
 * entry, symlinks included, with mtime 1.  Without it, files get 0666/0777
 * and directories 0777 less the umask, as `nix-store --restore` does.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "nar-reader.h"
#include "util-error.h"

struct nar_unpack_opts {
    bool canonical;
    /* The process umask, so canonical modes can be enforced with fchmod. */
    mode_t umask;
    /*
     * With canonical: leave a root directory 0755, because moving a
     * directory to another parent needs write access to it.  The caller
     * makes it 0555 once it is in place.
     */
    bool root_writable;
    /*
     * Write small files from a second thread.  This pays off when the
     * unpacker has a core to itself; when several unpack at once (a fetch
     * of many paths), every core is busy already and the hand-over only
     * adds work.
     */
    bool helper_thread;
};

struct nar_unpacker;

/* Prepare to create `name` in parent_fd (the fd is not taken over). */
struct nar_unpacker *nar_unpacker_new(int parent_fd, const char *name,
                                      const struct nar_unpack_opts *opts);
/*
 * After the reader has finished: wait until every file is written and
 * report the first write error.
 */
int nar_unpacker_finish(struct nar_unpacker *u, struct rx_error **err);
/* Has the root node been created (so there is something to remove)? */
bool nar_unpacker_created(const struct nar_unpacker *u);
/* Closes every fd it holds; does not remove what was written. */
void nar_unpacker_free(struct nar_unpacker *u);

/* The visitor to give nar_reader_new() with the unpacker as ctx. */
extern const struct nar_visitor nar_unpack_visitor;

/*
 * Unpack a whole NAR from fd into parent_fd/name.  On any failure the
 * partial tree is removed again, so either the complete tree exists or
 * nothing does.
 */
int nar_unpack_fd(int in_fd, int parent_fd, const char *name, const struct nar_unpack_opts *opts,
                  struct rx_error **err);
