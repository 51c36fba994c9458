#pragma once
/* File-system helpers that work relative to directory fds. */

#include "util-error.h"

/*
 * Remove `name` in dirfd and, if it is a directory, everything below it,
 * making read-only directories writable first (store paths are 0555).
 * Symlinks are removed, never followed.  A missing `name` is not an error.
 */
int rm_rf_at(int dirfd, const char *name, struct rx_error **err);
