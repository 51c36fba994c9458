#pragma once
/*
 * The mapped view of the preload engine: programs name /nix/store/..., the
 * files live in a real directory elsewhere (the runix store).  This module
 * turns logical paths into real ones and back, resolves store symlinks the
 * way the kernel would in the mapped view, and prepares execs so that store
 * programs (whose ELF interpreter is in /nix/store) and store scripts run.
 *
 * It is shared by runix and by the preload library, so it uses libc and
 * system calls only: no allocation from the heap (execs may run in a vfork
 * child), no global state, nothing that sets a newer symbol version.
 */

#include <limits.h>
#include <linux/limits.h> /* PATH_MAX, also when freestanding */
#include <stdbool.h>
#include <stddef.h>

#define RX_STORE "/nix/store"
#define RX_STORE_LEN 10

/* Environment variables that carry the view from process to process. */
#define RX_ENV_STORE "RUNIX_STORE_DIR" /* the real directory behind /nix/store */
#define RX_ENV_SHIM "RUNIX_PRELOAD"    /* the preload library */
#define RX_ENV_AUDIT "RUNIX_AUDIT"     /* the LD_AUDIT module */
#define RX_ENV_EXE "RUNIX_EXE"         /* logical /proc/self/exe of a loader-run program */
#define RX_ENV_LOADER "RUNIX_LOADER"   /* ... valid only while /proc/self/exe is this loader */

struct rx_map {
    char store[PATH_MAX]; /* real directory standing for /nix/store, no trailing '/' */
    size_t store_len;
    char shim[PATH_MAX];  /* the preload library, for LD_PRELOAD ("" for none) */
    char audit[PATH_MAX]; /* the audit module, for LD_AUDIT ("" for none) */
    char exe[PATH_MAX];  /* logical /proc/self/exe, or "" when the kernel's is right */
};

/* Is path /nix/store or below it ("/nix/store/...")? */
bool rx_is_store_path(const char *path);
/* Is path the real store directory or below it? */
bool rx_is_real_store_path(const struct rx_map *m, const char *path);

/*
 * Prefix substitution only: /nix/store/X -> <store>/X.  Returns 0, or
 * -ENAMETOOLONG.  path must satisfy rx_is_store_path().
 */
int rx_subst(const struct rx_map *m, const char *path, char *out, size_t outsz);

/*
 * Resolve path in the mapped view and write the real path to out: every
 * symlink below /nix/store is followed component by component (a target
 * starting with /nix/store is mapped again), "." and ".." are applied to the
 * resolved prefix, and the last component is followed only when follow is
 * set.  Relative paths start from the logical working directory.  Once the
 * path leaves /nix/store the rest is left to the kernel.  Returns 0, or
 * -ELOOP / -ENAMETOOLONG; a missing component is not an error here (the
 * real call that follows reports it).
 */
int rx_resolve(const struct rx_map *m, const char *path, bool follow, char *out, size_t outsz);

/* Real -> logical, in place: <store>/X becomes /nix/store/X. */
void rx_unmap(const struct rx_map *m, char *path);

/* Logical working directory into out (size PATH_MAX); 0 or -errno. */
int rx_getcwd(const struct rx_map *m, char *out, size_t outsz);

/* What an exec turns into in the mapped view. */
struct rx_exec {
    const char *file; /* what to pass to the kernel's execve */
    char **argv;
    char **envp;
    bool static_store_elf; /* a static ELF below /nix/store: not remapped */
    /* private */
    char *arena;
    size_t arena_size, used;
};

/*
 * Prepare execve(path, argv, envp): scripts with a shebang are expanded
 * (recursively, like the kernel, with the interpreter mapped when it is in
 * the store); an ELF whose PT_INTERP is in /nix/store is started through
 * that store loader with --argv0; the environment gets the preload library
 * back in LD_PRELOAD and LD_AUDIT and the view's variables.  Returns 0 or
 * -errno; free with rx_exec_free() when the exec did not happen.
 */
int rx_exec_prepare(const struct rx_map *m, const char *path, char *const argv[],
                    char *const envp[], struct rx_exec *x);
void rx_exec_free(struct rx_exec *x);

/*
 * Search PATH (from envp, else the default) for file like execvp does, in
 * the mapped view.  Writes the logical path to out.  0 or -errno.
 */
int rx_path_search(const struct rx_map *m, const char *file, char *const envp[], char *out,
                   size_t outsz);

/* Value of name in envp, or NULL. */
const char *rx_envp_get(char *const envp[], const char *name);

/*
 * Read the PT_INTERP of the ELF file at real path: 0 with interp set ("" for
 * a static ELF), or -1 if it is not a readable ELF file.
 */
int rx_elf_interp(const char *real, char *interp, size_t isz);
