/* Where the installed parts of runix are, found from the running binary. */
#pragma once
/*
 * runix is relocatable: nothing is found through an absolute path chosen at
 * build time.  A part is looked for first next to the running binary (the
 * build tree, where everything is side by side), then where `meson install`
 * puts it relative to the running binary's own install directory: bindir
 * for runix, libexecdir/runix for runix-core.  config.h has those relative
 * paths, computed by meson.build from the build's bindir, libdir and
 * libexecdir.
 */

#include <stddef.h>

#include "util-error.h"

enum rx_install_item {
    RX_INSTALL_CORE,    /* runix-core, the binary with every command */
    RX_INSTALL_PRELOAD, /* librunix-preload.so (its librunix-audit.so is beside it) */
    RX_INSTALL_FRONT,   /* runix, the front (for launchers that runix-core writes) */
};

/*
 * Write the path of item to out (not resolved: it may go through the
 * running binary's directory and "..").  Returns 0; or -1 with err saying
 * where it was looked for (RX_ENOTFOUND), or why the running binary's own
 * path is unknown.
 */
int rx_install_find(enum rx_install_item item, char *out, size_t outsz, struct rx_error **err);
