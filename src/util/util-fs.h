#pragma once
/* File-system helpers that work relative to directory fds. */

#include <stdbool.h>
#include <sys/types.h>

#include "util-error.h"

/*
 * Remove `name` in dirfd and, if it is a directory, everything below it,
 * making read-only directories writable first (store paths are 0555).
 * Symlinks are removed, never followed.  A missing `name` is not an error.
 */
int rm_rf_at(int dirfd, const char *name, struct rx_error **err);

/*
 * Replace `name` in dirfd (or a path, with AT_FDCWD) with `text`: written to
 * a new "<name>.<16 random hex digits>.tmp" beside it (O_EXCL|O_NOFOLLOW, so
 * nothing planted at a name is followed or overwritten; another name is tried
 * when one exists), fsynced when durable, then renamed over it.  Readers see
 * the old file or the new one, never a part.
 */
int write_file_atomic_at(int dirfd, const char *name, const char *text, bool durable,
                         struct rx_error **err);
/* The same for len bytes of data, the file getting mode (the umask aside). */
int write_data_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         bool durable, struct rx_error **err);

/*
 * Create the directories of the relative path `rel` under dirfd, each
 * component in turn (0755), and return an fd of the last in *out_fd (the
 * caller closes it).  A component that is a symlink is refused, not
 * followed.
 */
int mkdir_p_at(int dirfd, const char *rel, int *out_fd, struct rx_error **err);

/* Create the directory `path` and its missing parents (0755), as mkdir -p. */
int mkdir_p(const char *path, struct rx_error **err);
/* The same with the new directories' mode (before the umask). */
int mkdir_p_mode(const char *path, mode_t mode, struct rx_error **err);

/*
 * The names in the directory dirfd (not "." or ".."), sorted by bytes, in
 * *names (*n of them; free with dir_names_free()).  dirfd stays the caller's.
 * Returns 0, or -1 with errno set and nothing to free.
 */
int dir_names_at(int dirfd, char ***names, size_t *n);
void dir_names_free(char **names, size_t n);
