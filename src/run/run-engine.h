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
    char *warning;               /* for the user, though the view was entered, or NULL; owned */
    /*
     * Set by the caller after engine_enter() to hear, before the exec, what
     * the engine does differently for this program (for -v): msg is one
     * line, without the program name in front.  NULL: nothing is said.
     */
    void (*notice)(const char *msg);
};
#define ENGINE_CHOICE_INIT { ENGINE_AUTO, NULL, NULL, NULL }

/*
 * Choose the engine for want and enter it.  auto takes userns when it
 * works here (remembered for this boot under root, the store root, so that
 * later runs enter directly instead of probing), else preload; a remembered
 * userns that no longer works is forgotten and preload is taken.  userns is
 * entered in this process (run-engine-internal.h tells how; paths are the
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
 * RX_EUNSUPPORTED when the engine cannot run it (under preload, a static
 * program on a store mounted noexec); RX_ENOTFOUND when the preload library
 * is missing ("preload engine: <reason>").  A static program under preload
 * runs from the store's real location and sees the host's /nix/store: the
 * notice callback hears so.
 */
int engine_exec(const struct engine_choice *c, const char *store_dir, const char *prog,
                char *const argv[], struct rx_error **err);

/* Is logical (below /nix/store) a regular executable file in the store at store_dir? */
bool engine_is_program(const char *store_dir, const char *logical);

/* ---- the engines one by one, for doctor (the rest: run-engine-internal.h) -- */

/*
 * Try the userns engine for real in a short-lived child (unshare, uid/gid
 * maps, a mount), without changing this process.  Returns 0 when it works,
 * else -1 with the precise reason in err (code RX_EUNSUPPORTED).
 */
int engine_userns_probe(struct rx_error **err);

/*
 * Find librunix-preload.so and librunix-audit.so: $RUNIX_PRELOAD_LIB and
 * its directory, else next to the running binary (the build tree), else
 * where meson install puts them (util-install.h).  Returns
 * 0, or -1 with the reason in err (code RX_ENOTFOUND).
 */
int engine_preload_find(char *out, size_t outsz, struct rx_error **err);
