/* runix enter: a view in which /nix is the runix root, read-write, for real Nix to use. */
#pragma once
/*
 * Linux only, built on the userns engine's machinery (run-engine-internal.h):
 * a user + mount namespace whose root is a copy of the host's (every
 * top-level entry bound, as the userns engine's new root) with the runix
 * root's nix/ bound read-write at /nix, entered with pivot_root so that
 * nested user namespaces (the Nix sandbox, bwrap, runix) still work.
 * docs/enter.md describes it.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

/* Where the GPU driver's user-space files are gathered, below the runix root. */
#define ENTER_DRIVER_DIR "nix/var/nix/opengl-driver"
/* Where programs built by nixpkgs look for them (their RUNPATH has its lib/). */
#define ENTER_DRIVER_VIEW "/run/opengl-driver"

/*
 * Fill <root>/ENTER_DRIVER_DIR with symlinks to the host's GPU user-space
 * libraries (libcuda, libnvidia-*, libGL*, libEGL*, libGLX*, libGLES*,
 * libGLdispatch, libOpenGL, libvulkan, libdrm, libgbm) as the host's
 * dynamic loader cache lists them for this machine's architecture
 * (`ldconfig -p`, or `ldconfig -p -C FILE` for cache), in lib/, and to the
 * Vulkan and EGL ICD files in share/.  Links made before are replaced.
 * Sets *nlibs to how many libraries were linked.  0, or -1 with err.
 */
int enter_gpu_fill(const char *root, const char *cache, size_t *nlibs, struct rx_error **err);

/*
 * Call fn with each file the links of <root>/ENTER_DRIVER_DIR name (what a
 * sandbox must show for them to resolve).
 */
void enter_gpu_each_target(const char *root, void (*fn)(void *ctx, const char *target),
                           void *ctx);

/*
 * In a view already entered (the userns engine's, or enter's): make
 * ENTER_DRIVER_VIEW show dir (a directory outside the view's /run).  When
 * the host's /run has no opengl-driver, /run becomes a tmpfs that mirrors
 * the host's /run (every entry bound, sockets directly in /run excepted)
 * plus this one.  0, or -1 with err.
 */
int enter_bind_driver(const char *dir, struct rx_error **err);

/*
 * Do nested user namespaces work here as the Nix sandbox needs them (a
 * child in new user, mount, pid, network, ipc and uts namespaces that
 * mounts a tmpfs and /proc)?  Run inside the view.  A yes is remembered for
 * this boot in state_file (NULL: none), as the userns engine remembers its
 * own, so that later entries do not pay for the probe (a network namespace
 * costs tens of milliseconds to make and take down).
 */
bool enter_nested_sandbox_works(const char *state_file);

/*
 * Write <root>/nix/etc/nix/nix.conf for Nix inside: build-users-group empty,
 * sandbox as given, substituters and trusted-public-keys from runix's
 * caches and keys (space-separated, may be empty).  A nix.conf the user
 * wrote (without runix's first line) is left as it is.  0, or -1 with err.
 */
int enter_write_nix_conf(const char *root, bool sandbox, const char *substituters,
                         const char *keys, struct rx_error **err);

/* Has text (an /etc/passwd or /etc/group) a line whose third field is id? */
bool enter_has_id(const char *text, unsigned id);

/*
 * Enter the view in this process: unshare, map the caller's ids, build the
 * new root with <root>/nix at /nix (read-write), <root>/ENTER_DRIVER_DIR at
 * ENTER_DRIVER_VIEW when it has a lib/, a generated /etc/passwd (or
 * /etc/group) when the host's file lacks the caller's uid (gid), pivot_root,
 * and go back to the working directory.  root is canonical.  The process
 * must be single-threaded.  0; -1 with err (the process may be in a new
 * namespace then: the caller should exit).  When the working directory is
 * not in the view, or the driver directory cannot be shown, a newly
 * allocated message is stored in *warning.
 */
int enter_view(const char *root, char **warning, struct rx_error **err);
