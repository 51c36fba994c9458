/* What the engine files share with run-engine.c, below the interface of run-engine.h. */
#pragma once

#include "run-engine.h"

#include <sys/types.h>

/* Why unshare(CLONE_NEWUSER) failed with errno e, in words, into why. */
void userns_unshare_reason(int e, char *why, size_t n);
/*
 * In a new user and mount namespace: mount a tmpfs on a directory that can
 * take one, pivot into it, and leave the host's root at /oldroot and an
 * empty /newroot to build in.  0, or -1 with err naming what (for what).
 */
int userns_stage_root(const char *what, struct rx_error **err);
/*
 * Make dst mirror the entries of src (except skip): binds for directories
 * and files, copies of symlinks.  Entries that cannot be mirrored (sockets,
 * devices, entries gone meanwhile) are left out.
 */
void userns_mirror(const char *src, const char *dst, const char *skip);
/*
 * After userns_stage_root() and building /newroot: pivot into it, detach
 * the staging tmpfs and the host's root, and make the new root's own
 * directory read-only.  0, or -1 with err.
 */
int userns_pivot_newroot(struct rx_error **err);
/* MS_* flags of the mount holding path that a bind may not drop in a user namespace. */
unsigned long userns_locked_flags(const char *path);

/*
 * Just after unshare(CLONE_NEWUSER | CLONE_NEWNS): map uid and gid to
 * themselves, deny setgroups, and keep our mounts to ourselves (MS_SLAVE).
 * Returns 0, or -1 with the reason in why.
 */
int userns_setup_ids(uid_t uid, gid_t gid, char *why, size_t n);
/* The same in a new user namespace alone (no mount namespace): only the maps and setgroups. */
int userns_write_ids(uid_t uid, gid_t gid, char *why, size_t n);

/*
 * The preload half of engine_exec(): find the library, look prog up in PATH
 * when it is NULL, run a static program from the store's real location
 * (telling c->notice) unless the kernel cannot, exec.  Returns -1 only.
 */
int engine_preload_run(const struct engine_choice *c, const char *store_dir, const char *prog, char *const argv[],
                       char *const envp[], struct rx_error **err);

/*
 * Enter the view in this process: afterwards /nix/store is store_dir
 * (read-only; united with a host /nix/store when there is one), everything
 * else as before, the caller's uid and gid unchanged.  The process must be
 * single-threaded.  Returns 0; 1 when no user namespace could be created
 * (the process is unchanged: another engine may be tried; err has code
 * RX_EUNSUPPORTED); -1 when setting up the view failed later (the process
 * is in a new namespace: the caller should exit, not try another engine).
 * The reason in err is bare: engine_enter() adds "userns engine".  paths
 * are the basenames of the closure the program needs: the view may make
 * them cheaper to reach.  When the view is entered but something the user
 * should hear about went wrong (the working directory is not in it), a
 * newly allocated message is stored in *warning.
 */
int engine_userns_enter(const char *store_dir, const char *const *paths, size_t npaths,
                        char **warning, struct rx_error **err);

/*
 * auto remembers, in state_file, that the userns engine fully worked during
 * this boot, so that later runs enter it directly instead of probing first.
 * A run that finds it no longer works forgets it (good = false).
 */
bool engine_userns_known_good(const char *state_file);
void engine_userns_remember(const char *state_file, bool good);

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
 * calls the preload engine could see, so they run from the store's real
 * location.  0 no, 1 yes, -1 unreadable.
 */
int engine_is_static_elf(const char *store_dir, const char *path);

#if RUNIX_ONE_FILE
/*
 * The one-file build's engine libraries (scripts/embed-engines.py writes
 * them): their bytes, and the hex SHA-256 of both, which names the
 * directory of the user's data directory they are extracted to.
 */
extern const unsigned char rx_embedded_preload[];
extern const size_t rx_embedded_preload_len;
extern const unsigned char rx_embedded_audit[];
extern const size_t rx_embedded_audit_len;
extern const char rx_embedded_hash[];

/*
 * The directory the embedded libraries are in, extracted first if needed:
 * $XDG_DATA_HOME/runix/engines/HASH (else ~/.local/share/runix/...).  Each
 * directory on the way must be the user's and writable by no one else, and
 * each file must be the user's, writable by no one else and byte for byte
 * the embedded one; a missing or different file is written again (a
 * temporary file renamed over it, so that two runs at once only both write
 * the same bytes).  Returns 0, or -1 with err.
 */
int engine_preload_extract(char *dir, size_t dirsz, struct rx_error **err);
#endif
