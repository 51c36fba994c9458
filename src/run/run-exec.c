/* The preload engine's exec preparation: shebangs, ELF interpreters in the store, the environment, PATH. */
#include "config.h"

#include "run-exec.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "banned.h"

/*
 * File system accesses are raw system calls, as in run-map.c: inside the
 * preload library the libc names are our own wrappers.
 */

#define MAX_INTERP 5  /* shebang recursion: the kernel allows 4 levels */
#define HDR_SIZE 1024 /* "#!" lines; the ELF header, usually with its program headers */

static int sys_open(const char *path, int flags)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0);
}

static int sys_stat(const char *path, struct stat *st)
{
#ifdef SYS_newfstatat
    return (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
#else
    return (int)syscall(SYS_fstatat, AT_FDCWD, path, st, 0);
#endif
}

const char *rx_envp_get(char *const envp[], const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

static void *arena_alloc(struct rx_exec *x, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (x->used + n > x->arena_size)
        return NULL;
    void *p = x->arena + x->used;
    x->used += n;
    return p;
}

static char *arena_strndup(struct rx_exec *x, const char *s, size_t n)
{
    char *p = arena_alloc(x, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *arena_concat(struct rx_exec *x, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = arena_alloc(x, la + lb + 1);
    if (p) {
        memcpy(p, a, la);
        memcpy(p + la, b, lb + 1);
    }
    return p;
}

void rx_exec_free(struct rx_exec *x)
{
    if (x->mapped && x->arena)
        munmap(x->arena, x->arena_size);
    x->arena = NULL;
    x->mapped = false;
}

static bool is_proc_self_exe(const char *p)
{
    if (strcmp(p, "/proc/self/exe") == 0 || strcmp(p, "/proc/thread-self/exe") == 0)
        return true;
    if (strncmp(p, "/proc/", 6) != 0)
        return false;
    /* Pids have at most 7 digits (pid_max is at most 2^22); reading at most 9 cannot
     * overflow, and a longer number is left unread, so it does not match. */
    long pid = 0;
    const char *q = p + 6;
    while (*q >= '0' && *q <= '9' && q - (p + 6) < 9)
        pid = pid * 10 + (*q++ - '0');
    return q != p + 6 && strcmp(q, "/exe") == 0 && pid == (long)syscall(SYS_getpid);
}

/*
 * Is [off, off + size) inside a buffer of n bytes?  Written so that nothing
 * wraps: off and size come from the file, and off + size overflows for an
 * offset near 2^64.
 */
static bool in_bounds(uint64_t off, uint64_t size, size_t n)
{
    return off <= n && size <= n - off;
}

/*
 * The interpreter named by an ELF's PT_INTERP, "" for none; -1 if not an
 * ELF file this can read.  Every field is the file's word: a PT_INTERP that
 * is empty, too long, outside the file or not NUL-terminated is refused, as
 * the kernel refuses it (load_elf_binary: ENOEXEC), so the kernel decides.
 */
static int elf_interp(int fd, const unsigned char *hdr, size_t n, char *interp, size_t isz)
{
    interp[0] = '\0';
    if (n < sizeof(Elf64_Ehdr) || memcmp(hdr, ELFMAG, SELFMAG) != 0)
        return -1;
    bool is64 = hdr[EI_CLASS] == ELFCLASS64;
    if (!is64 && hdr[EI_CLASS] != ELFCLASS32)
        return 0;
    uint64_t phoff;
    unsigned phnum, phentsize, want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
    if (is64) {
        Elf64_Ehdr eh;
        memcpy(&eh, hdr, sizeof eh);
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    } else {
        Elf32_Ehdr eh;
        memcpy(&eh, hdr, sizeof eh);
        phoff = eh.e_phoff, phnum = eh.e_phnum, phentsize = eh.e_phentsize;
    }
    if (phentsize != want || phnum == 0 || phnum > 128 || phoff > (1u << 30))
        return 0;
    /* The whole table in one read (usually already in hdr). */
    unsigned char table[128 * sizeof(Elf64_Phdr)];
    size_t tsize = (size_t)phnum * want;
    const unsigned char *t;
    if (in_bounds(phoff, tsize, n)) {
        t = hdr + phoff;
    } else {
        if (pread(fd, table, tsize, (off_t)phoff) != (ssize_t)tsize)
            return 0;
        t = table;
    }
    for (unsigned i = 0; i < phnum; i++) {
        uint64_t type, off, size;
        if (is64) {
            Elf64_Phdr ph;
            memcpy(&ph, t + (size_t)i * want, sizeof ph);
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
        } else {
            Elf32_Phdr ph;
            memcpy(&ph, t + (size_t)i * want, sizeof ph);
            type = ph.p_type, off = ph.p_offset, size = ph.p_filesz;
        }
        if (type != PT_INTERP)
            continue;
        /* pread takes a signed offset: one above INT64_MAX is outside any file. */
        if (size < 2 || size > isz || off > (uint64_t)INT64_MAX - size)
            return -1;
        if (in_bounds(off, size, n))
            memcpy(interp, hdr + off, size);
        else if (pread(fd, interp, size, (off_t)off) != (ssize_t)size)
            goto refuse;
        if (interp[size - 1] != '\0')
            goto refuse;
        return 0;
    }
    return 0;
refuse:
    interp[0] = '\0';
    return -1;
}

/*
 * Does this ld.so accept --argv0 (glibc 2.33 and later)?  Finding out means
 * reading the loader, so the answer for the last loader is kept, keyed by its
 * identity, in one word that threads (and vfork children) update atomically:
 * a shell running many store programs asks once.
 */
static bool loader_has_argv0(const char *loader, bool *regular)
{
    static uint64_t cache; /* key with the answer in bit 0; 0 = empty */
    struct stat st;
    *regular = false;
    if (sys_stat(loader, &st) < 0)
        return false;
    *regular = S_ISREG(st.st_mode);
    uint64_t key = ((uint64_t)st.st_dev * 0x9e3779b97f4a7c15u) ^ ((uint64_t)st.st_ino << 20) ^
                   ((uint64_t)st.st_size << 1) ^ ((uint64_t)st.st_mtime << 40);
    key &= ~(uint64_t)1; /* bit 0 is the answer */
    uint64_t c = __atomic_load_n(&cache, __ATOMIC_ACQUIRE);
    if (c && (c & ~(uint64_t)1) == key)
        return c & 1;

    int fd = sys_open(loader, O_RDONLY);
    if (fd < 0)
        return false;
    bool yes = false;
    if (st.st_size > 0 && st.st_size < (64 << 20)) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            yes = memmem(p, (size_t)st.st_size, "--argv0", 8) != NULL;
            munmap(p, (size_t)st.st_size);
        }
    }
    close(fd);
    if (key)
        __atomic_store_n(&cache, key | (yes ? 1 : 0), __ATOMIC_RELEASE);
    return yes;
}

/*
 * The last store loader an exec went through: its logical path (the
 * PT_INTERP), where it is, and whether it takes --argv0.  The store is
 * read-only, so the answer never changes: written once, by the first exec
 * that finds it, and read by every later one, which then needs no system
 * call for it.  A shell running store programs from vfork children (dash)
 * keeps it, since a vfork child writes its parent's memory.  state: 0
 * empty, 1 being written, 2 ready.
 */
static struct {
    int state;
    bool argv0;
    char interp[PATH_MAX], real[PATH_MAX];
} g_loader_seen;

static bool loader_seen(const struct rx_map *m, const char *interp, char *real, size_t realsz,
                        bool *argv0)
{
    if (__atomic_load_n(&g_loader_seen.state, __ATOMIC_ACQUIRE) != 2 ||
        strcmp(g_loader_seen.interp, interp) != 0 || !rx_is_real_store_path(m, g_loader_seen.real))
        return false;
    size_t n = strlen(g_loader_seen.real);
    if (n >= realsz)
        return false;
    memcpy(real, g_loader_seen.real, n + 1);
    *argv0 = g_loader_seen.argv0;
    return true;
}

static void loader_remember(const char *interp, const char *real, bool argv0)
{
    size_t il = strlen(interp), rl = strlen(real);
    int empty = 0;
    if (il >= PATH_MAX || rl >= PATH_MAX ||
        !__atomic_compare_exchange_n(&g_loader_seen.state, &empty, 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return;
    memcpy(g_loader_seen.interp, interp, il + 1);
    memcpy(g_loader_seen.real, real, rl + 1);
    g_loader_seen.argv0 = argv0;
    __atomic_store_n(&g_loader_seen.state, 2, __ATOMIC_RELEASE);
}

/* Parse "#!interp [arg]\n" as Linux does: one optional argument, the rest of the line. */
static int parse_shebang(struct rx_exec *x, const char *hdr, size_t n, char **interp, char **arg)
{
    const char *end = memchr(hdr, '\n', n);
    if (!end)
        end = hdr + n;
    const char *p = hdr + 2;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *q = p;
    while (q < end && *q != ' ' && *q != '\t')
        q++;
    if (q == p)
        return -ENOEXEC;
    *interp = arena_strndup(x, p, (size_t)(q - p));
    while (q < end && (*q == ' ' || *q == '\t'))
        q++;
    const char *e = end;
    while (e > q && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    *arg = e > q ? arena_strndup(x, q, (size_t)(e - q)) : NULL;
    return *interp ? 0 : -ENOMEM;
}

static bool env_is(const char *e, const char *name)
{
    size_t n = strlen(name);
    return strncmp(e, name, n) == 0 && e[n] == '=';
}

/* "NAME=shim" followed by the old value's entries other than the shim. */
static char *with_shim(struct rx_exec *x, const char *name, const char *old, const char *shim)
{
    size_t nl = strlen(name), sl = strlen(shim), ol = old ? strlen(old) : 0;
    char *v = arena_alloc(x, nl + 1 + sl + 1 + ol + 1);
    if (!v)
        return NULL;
    char *w = v;
    memcpy(w, name, nl);
    w += nl;
    *w++ = '=';
    memcpy(w, shim, sl);
    w += sl;
    const char *p = old;
    while (p && *p) {
        while (*p == ':' || *p == ' ')
            p++;
        const char *q = p;
        while (*q && *q != ':' && *q != ' ')
            q++;
        if (q > p && !((size_t)(q - p) == sl && memcmp(p, shim, sl) == 0)) {
            *w++ = ':';
            memcpy(w, p, (size_t)(q - p));
            w += q - p;
        }
        p = q;
    }
    *w = '\0';
    return v;
}

/*
 * var (LD_PRELOAD, LD_AUDIT) with lib first and then the old entries, and
 * rx_var ("RUNIX_PRELOAD=") with lib; the old var unchanged when lib is "".
 */
static int put_lib(struct rx_exec *x, char **e, size_t *k, const char *var, const char *old,
                   const char *lib, const char *rx_var)
{
    if (lib[0]) {
        if (!(e[(*k)++] = with_shim(x, var, old, lib)) ||
            !(e[(*k)++] = arena_concat(x, rx_var, lib)))
            return -ENOMEM;
    } else if (old) {
        e[(*k)++] = (char *)old - strlen(var) - 1; /* back to "var=" */
    }
    return 0;
}

static int build_env(const struct rx_map *m, struct rx_exec *x, char *const envp[],
                     const char *exe, const char *loader)
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    char **e = arena_alloc(x, (n + 10) * sizeof *e);
    if (!e)
        return -ENOMEM;
    size_t k = 0;
    const char *old_preload = NULL, *old_audit = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *v = envp[i];
        if (env_is(v, "LD_PRELOAD")) {
            old_preload = v + 11;
            continue;
        }
        if (env_is(v, "LD_AUDIT")) {
            old_audit = v + 9;
            continue;
        }
        if (env_is(v, RX_ENV_STORE) || env_is(v, RX_ENV_SHIM) || env_is(v, RX_ENV_AUDIT) ||
            env_is(v, RX_ENV_EXE) || env_is(v, RX_ENV_LOADER))
            continue;
        e[k++] = envp[i];
    }
    if (put_lib(x, e, &k, "LD_PRELOAD", old_preload, rx_map_shim(m), RX_ENV_SHIM "=") < 0 ||
        put_lib(x, e, &k, "LD_AUDIT", old_audit, rx_map_audit(m), RX_ENV_AUDIT "=") < 0)
        return -ENOMEM;
    if (!(e[k++] = arena_concat(x, RX_ENV_STORE "=", m->store)))
        return -ENOMEM;
    if (exe) {
        if (!(e[k++] = arena_concat(x, RX_ENV_EXE "=", exe)) ||
            !(e[k++] = arena_concat(x, RX_ENV_LOADER "=", loader)))
            return -ENOMEM;
    }
    e[k] = NULL;
    x->envp = e;
    return 0;
}

/*
 * The arena every string of the prepared exec lives in: the inline one, or
 * (big) one mapped and sized for argv and envp.  argc out.
 */
static int arena_open(struct rx_exec *x, char *const argv[], char *const envp[], size_t *argc,
                      bool big)
{
    x->file = NULL;
    x->argv = x->envp = NULL;
    x->static_store_elf = false;
    x->exe = NULL;
    x->used = 0;
    size_t n = 0, bytes = 0;
    while (argv && argv[n])
        bytes += strlen(argv[n++]) + 1;
    *argc = n;
    if (!big) {
        x->arena = x->inline_arena;
        x->arena_size = sizeof x->inline_arena;
        x->mapped = false;
        return 0;
    }
    for (size_t i = 0; envp && envp[i]; i++)
        bytes += strlen(envp[i]) + 1;
    x->arena_size = 64 * 1024 + 2 * bytes + (n + 16) * 8 * sizeof(char *) + 16 * PATH_MAX;
    x->arena_size = (x->arena_size + 4095) & ~(size_t)4095;
    x->arena = mmap(NULL, x->arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
    if (x->arena == MAP_FAILED) {
        x->arena = NULL;
        x->mapped = false;
        return -ENOMEM;
    }
    x->mapped = true;
    return 0;
}

/*
 * Where the kernel finds cur (logical): into *realp, in the arena.  *in_store
 * tells whether it is below the store (logically, or as a real path).
 */
static int real_of(const struct rx_map *m, struct rx_exec *x, const char *cur, char **realp,
                   bool *in_store)
{
    char real[PATH_MAX];
    int r = 0;
    *in_store = rx_is_store_path(cur);
    if (*in_store) {
        r = rx_resolve(m, cur, true, real, sizeof real);
    } else if (cur[0] != '/' && strchr(cur, '/') && rx_getcwd(m, real, sizeof real) == 0 &&
               rx_is_store_path(real)) {
        /* relative to a working directory in the store (real holds it for a moment) */
        *in_store = true;
        r = rx_resolve(m, cur, true, real, sizeof real);
    } else {
        size_t l = strlen(cur);
        if (l >= PATH_MAX)
            return -ENAMETOOLONG;
        memcpy(real, cur, l + 1);
        *in_store = rx_is_real_store_path(m, real);
    }
    if (r < 0)
        return r;
    *realp = arena_strndup(x, real, strlen(real));
    return *realp ? 0 : -ENOMEM;
}

/* A script's argv as the kernel makes it: "interp [arg] <script> args".  false when out of memory. */
static bool through_interp(struct rx_exec *x, char *interp, char *arg, const char *cur,
                           char ***avp, size_t *argcp)
{
    char **av = *avp;
    size_t argc = *argcp;
    /* interp, arg, cur, av[1..argc), NULL: argc may be 0 (execve with an empty argv). */
    char **nav = arena_alloc(x, ((arg ? 3 : 2) + (argc ? argc - 1 : 0) + 1) * sizeof *nav);
    if (!nav)
        return false;
    size_t k = 0;
    nav[k++] = interp;
    if (arg)
        nav[k++] = arg;
    nav[k++] = (char *)cur;
    for (size_t i = 1; i < argc; i++)
        nav[k++] = av[i];
    nav[k] = NULL;
    *avp = nav;
    *argcp = k;
    return true;
}

/*
 * The ELF at real (logical cur) has the store loader interp: start it as
 * "<loader> --library-path ... [--argv0 A] <real> args".  Sets x->file to
 * the loader and x->exe to the program's logical path.  0 or -errno.
 */
static int through_loader(const struct rx_map *m, struct rx_exec *x, char *const envp[],
                          const char *interp, char *real, const char *cur, char ***avp,
                          size_t *argcp)
{
    char **av = *avp;
    size_t argc = *argcp;
    char ldbuf[PATH_MAX];
    bool argv0;
    bool seen = loader_seen(m, interp, ldbuf, sizeof ldbuf, &argv0);
    if (!seen) {
        int r = rx_resolve(m, interp, true, ldbuf, sizeof ldbuf);
        if (r < 0)
            return r;
    }
    char *ld = arena_strndup(x, ldbuf, strlen(ldbuf));
    char *lexe = arena_strndup(x, real, strlen(real));
    if (!ld || !lexe)
        return -ENOMEM;
    rx_unmap(m, lexe);
    if (!seen) {
        bool regular;
        argv0 = loader_has_argv0(ld, &regular);
        /* Only a loader that is there, and in the store (which does not change). */
        if (regular && rx_is_real_store_path(m, ld))
            loader_remember(interp, ld, argv0);
    }
    /*
     * The loader's own directory goes first in the library path: the audit module's libc
     * must come from the glibc of this loader, and is searched before the module can map
     * anything (a failed search would also mark the program's RUNPATH dirs as missing).
     */
    const char *llp = rx_envp_get(envp, "LD_LIBRARY_PATH");
    const char *slash = strrchr(ld, '/');
    size_t dl = slash && slash != ld ? (size_t)(slash - ld) : 1;
    size_t ll = llp && *llp ? strlen(llp) : 0;
    char *libpath = arena_alloc(x, dl + 1 + ll + 1);
    char **nav = arena_alloc(x, (argc + 7) * sizeof *nav);
    if (!nav || !libpath)
        return -ENOMEM;
    memcpy(libpath, ld, dl);
    if (ll) {
        libpath[dl] = ':';
        memcpy(libpath + dl + 1, llp, ll + 1);
    } else {
        libpath[dl] = '\0';
    }
    size_t k = 0;
    nav[k++] = ld;
    nav[k++] = (char *)"--library-path";
    nav[k++] = libpath;
    if (argv0) {
        nav[k++] = (char *)"--argv0";
        nav[k++] = argc > 0 ? av[0] : (char *)cur;
    }
    nav[k++] = real;
    for (size_t i = 1; i < argc; i++)
        nav[k++] = av[i];
    nav[k] = NULL;
    *avp = nav;
    *argcp = k;
    x->file = ld;
    x->exe = lexe;
    return 0;
}

/*
 * The store programs execs have started through their store loader: for
 * each, its logical path, where it is and its PT_INTERP, packed one after
 * the other ("logical\0real\0interp\0") in a pool that only grows.  The
 * store is read-only, so an entry never goes stale, and a later exec of the
 * same program needs no system call before its execve: no resolving, no
 * reading of the ELF header.  Entries are published by moving `used` on
 * (release), so a reader sees whole ones only; one exec appends at a time
 * (lock), and when another is appending, or the pool is full, nothing is
 * kept.  As with the loader above, a vfork child (dash, posix_spawn) fills
 * its parent's.
 */
#define PROGRAMS_POOL (16 * 1024)
static struct {
    int lock;
    unsigned used;
    char pool[PROGRAMS_POOL];
} g_programs;

/* The entry for logical path cur: its real path and interpreter, or false. */
static bool program_seen(const struct rx_map *m, const char *cur, const char **real,
                         const char **interp)
{
    unsigned used = __atomic_load_n(&g_programs.used, __ATOMIC_ACQUIRE);
    for (const char *e = g_programs.pool; e < g_programs.pool + used;) {
        const char *r = e + strlen(e) + 1, *i = r + strlen(r) + 1;
        if (strcmp(e, cur) == 0 && rx_is_real_store_path(m, r)) {
            *real = r;
            *interp = i;
            return true;
        }
        e = i + strlen(i) + 1;
    }
    return false;
}

static void program_remember(const char *cur, const char *real, const char *interp)
{
    size_t cl = strlen(cur) + 1, rl = strlen(real) + 1, il = strlen(interp) + 1;
    int open_ = 0;
    if (!__atomic_compare_exchange_n(&g_programs.lock, &open_, 1, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return;
    unsigned used = g_programs.used;
    if (cl + rl + il <= PROGRAMS_POOL - used) {
        char *w = g_programs.pool + used;
        memcpy(w, cur, cl);
        memcpy(w + cl, real, rl);
        memcpy(w + cl + rl, interp, il);
        __atomic_store_n(&g_programs.used, used + (unsigned)(cl + rl + il), __ATOMIC_RELEASE);
    }
    __atomic_store_n(&g_programs.lock, 0, __ATOMIC_RELEASE);
}

static int prepare(const struct rx_map *m, const char *path, char *const argv[],
                   char *const envp[], struct rx_exec *x, bool big);

int rx_exec_prepare(const struct rx_map *m, const char *path, char *const argv[],
                    char *const envp[], struct rx_exec *x)
{
    int r = prepare(m, path, argv, envp, x, false);
    if (r == -ENOMEM) /* more than the inline arena holds */
        r = prepare(m, path, argv, envp, x, true);
    return r;
}

static int prepare(const struct rx_map *m, const char *path, char *const argv[],
                   char *const envp[], struct rx_exec *x, bool big)
{
    size_t argc;
    int r = arena_open(x, argv, envp, &argc, big);
    if (r < 0)
        return r;

    char **av = arena_alloc(x, (argc + 1) * sizeof *av);
    if (!av)
        goto nomem;
    for (size_t i = 0; i < argc; i++)
        av[i] = argv[i];
    av[argc] = NULL;
    const char *cur = path;
    const char *exe = NULL, *loader = NULL;

    for (int depth = 0;; depth++) {
        if (is_proc_self_exe(cur) && rx_map_exe(m)[0])
            cur = rx_map_exe(m);
        const char *seen_real, *seen_interp;
        if (program_seen(m, cur, &seen_real, &seen_interp)) {
            char *real = arena_strndup(x, seen_real, strlen(seen_real));
            if (!real)
                goto nomem;
            x->file = real;
            if ((r = through_loader(m, x, envp, seen_interp, real, cur, &av, &argc)) < 0)
                goto fail;
            exe = x->exe;
            loader = x->file;
            break;
        }
        char *real;
        bool in_store;
        if ((r = real_of(m, x, cur, &real, &in_store)) < 0)
            goto fail;
        x->file = real;

        int fd = sys_open(real, O_RDONLY);
        if (fd < 0)
            break; /* the kernel reports it (or runs an unreadable binary) */
        unsigned char hdr[HDR_SIZE];
        ssize_t n = pread(fd, hdr, sizeof hdr, 0);
        if (n >= 2 && hdr[0] == '#' && hdr[1] == '!') {
            close(fd);
            char *interp, *arg;
            if ((r = parse_shebang(x, (const char *)hdr, (size_t)n, &interp, &arg)) < 0)
                goto fail;
            if (!in_store && !rx_is_store_path(interp))
                break; /* a host script with a host interpreter: the kernel does it */
            if (depth + 1 >= MAX_INTERP) {
                r = -ELOOP;
                goto fail;
            }
            if (!through_interp(x, interp, arg, cur, &av, &argc))
                goto nomem;
            cur = interp;
            continue;
        }
        char interp[PATH_MAX];
        int isel = n > 0 ? elf_interp(fd, hdr, (size_t)n, interp, sizeof interp) : -1;
        close(fd);
        if (isel < 0)
            break; /* not ELF: ENOEXEC or a binfmt handler, the kernel decides */
        if (interp[0] == '\0') {
            x->static_store_elf = in_store;
            break;
        }
        if (!rx_is_store_path(interp))
            break; /* a host program */
        if ((r = through_loader(m, x, envp, interp, real, cur, &av, &argc)) < 0)
            goto fail;
        /* A logical path names the same file from any working directory. */
        if (rx_is_store_path(cur) && rx_is_real_store_path(m, real))
            program_remember(cur, real, interp);
        exe = x->exe;
        loader = x->file;
        break;
    }
    x->argv = av;
    if ((r = build_env(m, x, envp, exe, loader)) < 0)
        goto fail;
    return 0;
nomem:
    r = -ENOMEM;
fail:
    rx_exec_free(x);
    return r;
}

int rx_path_search(const struct rx_map *m, const char *file, char *const envp[], char *out,
                   size_t outsz)
{
    size_t fl = strlen(file);
    if (fl == 0)
        return -ENOENT;
    if (strchr(file, '/')) {
        if (fl + 1 > outsz)
            return -ENAMETOOLONG;
        memcpy(out, file, fl + 1);
        return 0;
    }
    const char *path = rx_envp_get(envp, "PATH");
    if (!path)
        path = "/bin:/usr/bin";
    int err = -ENOENT;
    for (const char *p = path;; p++) {
        const char *q = strchrnul(p, ':');
        size_t dl = (size_t)(q - p);
        char cand[PATH_MAX], real[PATH_MAX];
        if (dl == 0) {
            cand[0] = '.';
            dl = 1;
        } else if (dl < sizeof cand) {
            memcpy(cand, p, dl);
        }
        if (dl + 1 + fl + 1 <= sizeof cand) {
            cand[dl] = '/';
            memcpy(cand + dl + 1, file, fl + 1);
            const char *check = cand;
            if (rx_is_store_path(cand) && rx_resolve(m, cand, true, real, sizeof real) == 0)
                check = real;
            struct stat st;
            if (sys_stat(check, &st) == 0 && S_ISREG(st.st_mode)) {
                if (syscall(SYS_faccessat, AT_FDCWD, check, X_OK) == 0) {
                    if (strlen(cand) + 1 > outsz)
                        return -ENAMETOOLONG;
                    memcpy(out, cand, strlen(cand) + 1);
                    return 0;
                }
                err = -EACCES;
            }
        }
        if (*q == '\0')
            break;
        p = q;
    }
    return err;
}

int rx_elf_interp(const char *real, char *interp, size_t isz)
{
    int fd = sys_open(real, O_RDONLY);
    if (fd < 0)
        return -1;
    unsigned char hdr[HDR_SIZE];
    ssize_t n = pread(fd, hdr, sizeof hdr, 0);
    int r = n > 0 ? elf_interp(fd, hdr, (size_t)n, interp, isz) : -1;
    close(fd);
    return r;
}
