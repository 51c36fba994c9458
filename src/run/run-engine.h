/* The engines: how a program started by runix sees the runix store at /nix/store. */
#pragma once
/*
 * This is the platform seam: everything above it (run, shell, doctor) only
 * calls these functions, and what is Linux-specific below it (namespaces,
 * /proc, ELF, the glibc loader) sits in the engine files and the platform
 * layer (run-platform.h).  docs/macos.md describes what a port adds.
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

/* ---- choosing and entering an engine: what run and shell call ------------- */

/* Which engine runs the program, and why it is not the first choice. */
struct engine_choice {
    enum engine_kind kind;       /* ENGINE_USERNS (this process is in the view) or ENGINE_PRELOAD */
    struct rx_error *userns_why; /* auto fell back to preload: why userns is not usable; owned */
};
#define ENGINE_CHOICE_INIT { ENGINE_AUTO, NULL }

/*
 * Choose the engine for want and enter it.  auto takes userns when it
 * works here (remembered for this boot under root, the store root, so that
 * later runs enter directly instead of probing), else preload; a remembered
 * userns that no longer works is forgotten and preload is taken.  userns is
 * entered in this process (see engine_userns_enter(); paths are the
 * basenames of the closure); preload is entered by engine_exec().  Returns
 * 0 with *out filled (release it with engine_choice_release()), or -1 with
 * "userns engine: <reason>" in err when userns was asked for, or was about
 * to be entered, and failed: the caller should exit then.
 */
int engine_enter(enum engine_kind want, const char *root, const char *store_dir,
                 const char *const *paths, size_t npaths, struct engine_choice *out,
                 struct rx_error **err);

/* "userns", "preload" or "preload (userns is not usable: <reason>)": for -v.  Owned by the caller. */
char *engine_choice_describe(const struct engine_choice *c);

void engine_choice_release(struct engine_choice *c);

/*
 * Replace this process with prog (a logical /nix/store path or a host
 * program; NULL: look argv[0] up in PATH, in the view) under the chosen
 * engine, with the current environment.  Returns -1 only, with err->code
 * telling what the caller reports: an errno value when the program could
 * not be found (ENOENT) or run ("cannot run <prog>: <strerror>");
 * RX_EUNSUPPORTED when the engine cannot run it (a static program under
 * preload); RX_ENOTFOUND when the preload library is missing ("preload
 * engine: <reason>").
 */
int engine_exec(const struct engine_choice *c, const char *store_dir, const char *prog,
                char *const argv[], struct rx_error **err);

/* Is logical (below /nix/store) a regular executable file in the store at store_dir? */
bool engine_is_program(const char *store_dir, const char *logical);

/* ---- the engines one by one: doctor, and engine_enter() ------------------- */

/*
 * Try the userns engine for real in a short-lived child (unshare, uid/gid
 * maps, a mount), without changing this process.  Returns 0 when it works,
 * else -1 with the precise reason in err (code RX_EUNSUPPORTED).
 */
int engine_userns_probe(struct rx_error **err);

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
 * them cheaper to reach.
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
 * (or in ../lib/runix, or $RUNIX_PRELOAD_LIB and its directory).  Returns
 * 0, or -1 with the reason in err (code RX_ENOTFOUND).
 */
int engine_preload_find(char *out, size_t outsz, struct rx_error **err);

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
