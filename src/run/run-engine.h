#pragma once
/*
 * Engines: how a program started by runix sees the runix store at
 * /nix/store.  This is the platform layer; everything above it (run, shell,
 * doctor) only calls these functions.
 *
 *   userns   an unprivileged user + mount namespace (Linux): the kernel
 *            resolves /nix/store itself, so everything works, static
 *            binaries and raw system calls included.
 *   preload  librunix-preload.so in LD_PRELOAD maps the paths of libc calls,
 *            librunix-audit.so in LD_AUDIT the loader's library searches;
 *            for machines without user namespaces.
 */

#include <stdbool.h>
#include <stddef.h>

#include "util-error.h"

enum engine_kind {
    ENGINE_AUTO,
    ENGINE_USERNS,
    ENGINE_PRELOAD,
};

/* "auto", "userns", "preload" -> kind; -1 for anything else. */
int engine_parse(const char *name);
const char *engine_name(enum engine_kind k);

/*
 * Try the userns engine for real in a short-lived child (unshare, uid/gid
 * maps, a mount), without changing this process.  Returns 0 when it works,
 * else -1 with the precise reason in why.
 */
int engine_userns_probe(char *why, size_t whysz);

/*
 * Enter the view in this process: afterwards /nix/store is store_dir
 * (read-only; united with a host /nix/store when there is one), everything
 * else as before, the caller's uid and gid unchanged.  The process must be
 * single-threaded.  Returns 0; 1 when no user namespace could be created
 * (the process is unchanged: another engine may be tried); -1 when setting
 * up the view failed later (the process is in a new namespace: the caller
 * should exit, not try another engine).  paths are the basenames of the
 * closure the program needs: the view may make them cheaper to reach.
 */
int engine_userns_enter(const char *store_dir, const char *const *paths, size_t npaths,
                        struct rx_error **err);

/*
 * auto remembers, in state_file, that the userns engine fully worked during
 * this boot, so that later runs enter it directly instead of probing first.
 * A run that finds it no longer works forgets it (good = false).
 */
bool engine_userns_known_good(const char *state_file);
void engine_userns_remember(const char *state_file, bool good);

/*
 * Find librunix-preload.so and librunix-audit.so next to the runix binary
 * (or in ../lib/runix, or $RUNIX_PRELOAD_LIB and its directory).  Returns 0, or -1 with the reason in why.
 */
int engine_preload_find(char *out, size_t outsz, char *why, size_t whysz);

/* The audit module that goes with the library at shim. */
void engine_preload_audit_path(const char *shim, char *out, size_t outsz);

/*
 * Replace this process with path (a /nix/store path or a host program)
 * under the preload engine.  Returns only on failure.
 */
int engine_preload_exec(const char *store_dir, const char *shim, const char *audit,
                        const char *path,
                        char *const argv[], char *const envp[], struct rx_error **err);

/*
 * Is path (in the view) a statically linked ELF?  Such programs make no libc
 * calls the preload engine could see.  0 no, 1 yes, -1 unreadable.
 */
int engine_is_static_elf(const char *store_dir, const char *path);
