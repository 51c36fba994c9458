/* The preload engine's exec preparation: what execve(path) becomes in the mapped view. */
#pragma once
/*
 * Store programs whose ELF interpreter is in /nix/store, and store scripts,
 * must be started in a way the kernel can follow without the view.  Linked
 * into runix and librunix-preload.so, not into the audit module: the rules
 * of run-map.h hold, except that it may also call pread, close, mmap,
 * munmap, memchr, memcmp, memmem, strchr and strrchr (the preload library
 * gets them from libc).
 */

#include "run-map.h"

/*
 * Room for what an exec usually needs (pointer arrays for argv and envp, a
 * few paths): in the struct, so on the caller's stack.  Only a larger one
 * maps memory.  The stack matters because an exec from a vfork child runs
 * in its parent's memory: what it maps is never unmapped (the parent goes on
 * with it after the exec), and the pages of a fresh mapping fault in again
 * at every exec, while the parent's stack pages stay.
 */
#define RX_EXEC_INLINE 8192

/* What an exec turns into in the mapped view. */
struct rx_exec {
    const char *file; /* what to pass to the kernel's execve */
    char **argv;
    char **envp;
    bool static_store_elf; /* a static ELF below /nix/store: not remapped */
    /* private */
    const char *exe; /* the program's logical path when file is its store loader */
    char *arena;     /* inline, or mapped when mapped is set */
    size_t arena_size, used;
    bool mapped;
    _Alignas(16) char inline_arena[RX_EXEC_INLINE];
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
 * a static ELF), or -1 if it is not a readable ELF file or its PT_INTERP is
 * one the kernel refuses (empty, longer than isz, outside the file, not
 * NUL-terminated).  Every offset and size in the file is checked without
 * overflow.
 */
int rx_elf_interp(const char *real, char *interp, size_t isz);
