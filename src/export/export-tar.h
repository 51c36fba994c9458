/* A minimal, reproducible tar writer: what image layers need, and nothing else. */
#pragma once
/*
 * Writes POSIX ustar entries (directories, regular files, symlinks) with
 * every field that varies between machines fixed: mtime TAR_MTIME, uid and
 * gid 0, no user or group names, no device numbers.  A name or link target
 * longer than ustar's 100 bytes, or a file of 8 GiB or more, gets a pax
 * extended header ('x', named "PaxHeader") with "path", "linkpath" or
 * "size" before its entry; nothing else ever goes into a pax header, so the
 * same calls give the same bytes.  The caller gives entries in the order
 * they are to appear (sorted, for a reproducible archive).
 *
 * Names are relative, '/'-separated and without a leading "./"; a
 * directory's gets a trailing '/'.  The bytes go to a sink as they are made.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util-error.h"

#define TAR_BLOCK 512
/* The mtime of every entry: 1, as in the Nix store. */
#define TAR_MTIME 1

typedef int (*tar_sink_fn)(void *ctx, const void *data, size_t len, struct rx_error **err);

struct tar_writer {
    tar_sink_fn sink;
    void *ctx;
    uint64_t size; /* bytes written so far */
};

void tar_writer_init(struct tar_writer *w, tar_sink_fn sink, void *ctx);

int tar_add_dir(struct tar_writer *w, const char *name, mode_t mode, struct rx_error **err);
int tar_add_symlink(struct tar_writer *w, const char *name, const char *target,
                    struct rx_error **err);
/* A regular file of `size` bytes read from fd (which must give exactly that many). */
int tar_add_file_fd(struct tar_writer *w, const char *name, mode_t mode, uint64_t size, int fd,
                    struct rx_error **err);
/* A regular file holding data[0..len). */
int tar_add_file_data(struct tar_writer *w, const char *name, mode_t mode, const void *data,
                      size_t len, struct rx_error **err);
/* The two zero blocks that end an archive. */
int tar_finish(struct tar_writer *w, struct rx_error **err);
