/* The preload engine's path resolver: /nix/store paths to the runix store and back. */
#pragma once
/*
 * The mapped view of the preload engine: programs name /nix/store/..., the
 * files live in a real directory elsewhere (the runix store).  This module
 * turns logical paths into real ones and back, and resolves store symlinks
 * the way the kernel would in the mapped view.  Exec preparation, which
 * builds on it, is run-exec.h.
 *
 * The contract: run-map.c is linked into three places, runix itself,
 * librunix-preload.so (loaded into arbitrary programs, host ones included)
 * and librunix-audit.so (the LD_AUDIT module, which has no libc at all and
 * brings its own copy of every function it calls; see audit.c).  So it may
 * call only these, and a new one must be added to audit.c first:
 *
 *   strlen strcmp strncmp strchrnul memcpy memmove memset   (audit.c's own)
 *   syscall and errno                                       (audit.c's own)
 *
 * and every file system access is a raw system call (readlinkat, getcwd):
 * inside the preload library the libc names are our own wrappers, which
 * call back here.  No allocation from the heap (execs may run in a vfork
 * child), no global state, nothing that needs a newer glibc symbol version
 * than 2.17, no stdio.
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

/*
 * The four strings are packed one after the other at the front of store[],
 * so that filling a map touches one page, not four: the preload library and
 * the audit module each keep one in every process, and on some machines a
 * page fault costs as much as dozens of system calls.  Offsets, not
 * pointers, so that a map may be copied.
 */
struct rx_map {
    size_t store_len;
    unsigned shim_off, audit_off, exe_off; /* where the other strings start in store[] */
    /* the real directory standing for /nix/store (no trailing '/'), then the others */
    char store[4 * PATH_MAX];
};

/* The preload library, for LD_PRELOAD ("" for none). */
static inline const char *rx_map_shim(const struct rx_map *m)
{
    return m->store + m->shim_off;
}

/* The audit module, for LD_AUDIT ("" for none). */
static inline const char *rx_map_audit(const struct rx_map *m)
{
    return m->store + m->audit_off;
}

/* The logical /proc/self/exe, or "" when the kernel's is right. */
static inline const char *rx_map_exe(const struct rx_map *m)
{
    return m->store + m->exe_off;
}

/*
 * Fill m with the store directory (trailing '/' dropped) and the optional
 * shim, audit and exe paths (NULL or "" for none).  The one way to fill a
 * struct rx_map.  Returns 0, or -ENAMETOOLONG (m then maps nothing: its
 * store is empty) when any of them is PATH_MAX bytes or longer.
 */
int rx_map_init(struct rx_map *m, const char *store, const char *shim, const char *audit,
                const char *exe);

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

