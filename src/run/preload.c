/* librunix-preload.so: the preload engine's LD_PRELOAD library, which maps paths in libc calls. */
/*
 * librunix-preload.so: the preload engine.  Loaded with LD_PRELOAD it wraps
 * the libc calls that take or return paths, so that /nix/store/... means the
 * runix store.  Its partner librunix-audit.so (LD_AUDIT) answers the dynamic
 * loader's own library searches.
 *
 * The view comes from the environment (RUNIX_STORE_DIR, RUNIX_PRELOAD,
 * RUNIX_AUDIT, RUNIX_EXE, RUNIX_LOADER); without RUNIX_STORE_DIR every wrapper passes
 * through unchanged.  The library is loaded into host programs too, so it
 * only uses symbols that every glibc since 2.17 has (tests check this), and
 * does its own work with raw system calls.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run-exec.h"
#include "run-next.h"

#include "banned.h"

/*
 * The libc functions this library wraps and still calls are found by
 * rx_next_symbol() (run-next.h), not dlsym: dlsym was in libdl.so.2 before
 * glibc 2.34, and needing it would make the loader load libdl into every
 * program.  dlsym is only the fallback for what rx_next_symbol() does not
 * read (an IFUNC); a weak reference to the version every glibc has, so that
 * without libdl loaded it is NULL rather than an error (glibc 2.34 and later
 * have it in libc).
 */
#if defined(__x86_64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver dlsym,dlsym@GLIBC_2.17");
#endif
extern __typeof__(dlsym) dlsym __attribute__((weak));

#define EXPORT __attribute__((visibility("default")))

static struct rx_map g_map;
static volatile int g_state; /* 0 not yet read, 1 active, -1 inactive */
static const char *g_loader; /* RUNIX_LOADER, until exe_check() has looked */

/* The view's settings, as the environment gives them. */
struct view_env {
    const char *store, *shim, *audit, *exe, *loader;
};

/* *slot = the value of entry if it is "name=...", and the first such one (as for getenv). */
static bool take_env(const char *entry, const char *name, size_t len, const char **slot)
{
    if (strncmp(entry, name, len) != 0 || entry[len] != '=')
        return false;
    if (!*slot)
        *slot = entry + len + 1;
    return true;
}

#define TAKE_ENV(e, name, slot) take_env(e, name, sizeof name - 1, slot)

/*
 * Every setting in one pass over the environment, looking closer only at
 * the entries that start with "RUNIX_": a program starts with the whole
 * environment to scan, and five lookups would scan it five times.
 */
static void read_env(struct view_env *v)
{
    *v = (struct view_env){0};
    for (char **e = environ; e && *e; e++) {
        const char *s = *e;
        if (strncmp(s, "RUNIX_", 6) != 0)
            continue;
        (void)(TAKE_ENV(s, RX_ENV_STORE, &v->store) || TAKE_ENV(s, RX_ENV_SHIM, &v->shim) ||
               TAKE_ENV(s, RX_ENV_AUDIT, &v->audit) || TAKE_ENV(s, RX_ENV_EXE, &v->exe) ||
               TAKE_ENV(s, RX_ENV_LOADER, &v->loader));
    }
}

static void init(void)
{
    /*
     * Not in a set-user-ID, set-group-ID or file-capability program
     * (AT_SECURE): the view comes from the caller's environment, and would
     * redirect the privileged program's files.  glibc does not load an
     * LD_PRELOAD path with a '/' into such a program at all, nor a name
     * unless it is set-user-ID in a system directory; this holds when it is
     * loaded anyway (listed in /etc/ld.so.preload, or so installed).
     */
    if (getauxval(AT_SECURE)) {
        g_state = -1;
        return;
    }
    struct view_env v;
    read_env(&v);
    if (!v.store || v.store[0] != '/') {
        g_state = -1;
        return;
    }
    const char *exe = v.loader ? v.exe : NULL;
    /* Too long a setting drops only that setting, as before: the store is needed. */
    if (rx_map_init(&g_map, v.store, v.shim, v.audit, exe) < 0 &&
        rx_map_init(&g_map, v.store, NULL, NULL, NULL) < 0) {
        g_state = -1;
        return;
    }
    g_loader = exe ? v.loader : NULL;
    g_state = 1;
}

/*
 * RUNIX_EXE holds only while we are the program that loader was started
 * for (a program that execs another with a raw system call passes it on).
 * Looked at when first needed, not at every start: most programs never ask.
 */
static void exe_check(void)
{
    const char *loader = g_loader;
    if (!loader)
        return;
    char self[PATH_MAX];
    long n = syscall(SYS_readlinkat, AT_FDCWD, "/proc/self/exe", self, sizeof self - 1);
    if (n > 0)
        self[n] = '\0';
    if (n <= 0 || strcmp(self, loader) != 0)
        g_map.store[g_map.exe_off] = '\0'; /* the kernel's /proc/self/exe is right */
    g_loader = NULL;
}

__attribute__((constructor)) static void preload_init(void)
{
    if (!g_state)
        init();
}

static inline bool active(void)
{
    if (!g_state)
        init();
    return g_state > 0;
}

/* The next definition of name after this library's; NULL (and ENOSYS) when there is none. */
static void *next(const char *name)
{
    void *fn = rx_next_symbol((const void *)next, name);
    if (!fn && dlsym)
        fn = dlsym(RTLD_NEXT, name);
    if (!fn)
        errno = ENOSYS;
    return fn;
}

#define REAL(name)                                                                            \
    ({                                                                                        \
        static __typeof__(&name) fn_;                                                         \
        if (!fn_)                                                                             \
            fn_ = (__typeof__(&name))next(#name);                                             \
        fn_;                                                                                  \
    })

/* ---- mapping helpers ------------------------------------------------------ */

/* The cheap first try: /nix/store/X -> <store>/X, everything else unchanged. */
static const char *map_fast(const char *path, char *buf)
{
    if (path && rx_is_store_path(path) && rx_subst(&g_map, path, buf, PATH_MAX) == 0)
        return buf;
    return path;
}

static bool cwd_in_store(void)
{
    char cwd[PATH_MAX];
    return rx_getcwd(&g_map, cwd, sizeof cwd) == 0 && rx_is_store_path(cwd);
}

/* The logical path of an open directory, if it is in the store. */
static bool fd_logical_dir(int fd, char *out)
{
    char link[32] = "/proc/self/fd/";
    char digits[16];
    int n = 0;
    unsigned v = (unsigned)fd;
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 15);
    size_t l = strlen(link);
    while (n)
        link[l++] = digits[--n];
    link[l] = '\0';
    long r = syscall(SYS_readlinkat, AT_FDCWD, link, out, PATH_MAX - 1);
    if (r <= 0)
        return false;
    out[r] = '\0';
    if (!rx_is_real_store_path(&g_map, out))
        return false;
    rx_unmap(&g_map, out);
    return true;
}

/*
 * The full resolution, tried when the fast mapping failed with ENOENT or
 * ENOTDIR: a symlink into /nix/store on the way, or a relative path from a
 * store directory.  Returns true when out holds a path worth retrying.
 */
static bool remap_at(int dirfd, const char *path, bool follow, char *out)
{
    if (!path || !active())
        return false;
    if (path[0] == '/') {
        if (!rx_is_store_path(path))
            return false;
        return rx_resolve(&g_map, path, follow, out, PATH_MAX) == 0;
    }
    if (dirfd == AT_FDCWD) {
        if (!cwd_in_store())
            return false;
        return rx_resolve(&g_map, path, follow, out, PATH_MAX) == 0;
    }
    char dir[PATH_MAX];
    if (!fd_logical_dir(dirfd, dir))
        return false;
    size_t dl = strlen(dir), pl = strlen(path);
    if (dl + 1 + pl + 1 > PATH_MAX)
        return false;
    char joined[PATH_MAX];
    memcpy(joined, dir, dl);
    joined[dl] = '/';
    memcpy(joined + dl + 1, path, pl + 1);
    return rx_resolve(&g_map, joined, follow, out, PATH_MAX) == 0;
}

static inline bool retryable(long r)
{
    return r < 0 && (errno == ENOENT || errno == ENOTDIR);
}

/*
 * Run `call` (an expression using `p` and, for *at calls, `fd`) with the
 * mapped path, once more with the fully resolved one if that failed.
 */
#define PATHCALL_AT(dirfd, path, follow, call)                                                \
    ({                                                                                        \
        char b_[PATH_MAX];                                                                    \
        int fd = (dirfd);                                                                     \
        const char *p = active() ? map_fast(path, b_) : (path);                               \
        long r_ = (long)(call);                                                               \
        if (retryable(r_) && remap_at(fd, path, follow, b_)) {                                \
            p = b_;                                                                           \
            fd = AT_FDCWD;                                                                    \
            r_ = (long)(call);                                                                \
        }                                                                                     \
        r_;                                                                                   \
    })
#define PATHCALL(path, follow, call) PATHCALL_AT(AT_FDCWD, path, follow, call)

/* Would a change at dirfd/path land below /nix/store? */
static bool store_target(int dirfd, const char *path)
{
    if (!path || !active())
        return false;
    if (path[0] == '/')
        return rx_is_store_path(path) || rx_is_real_store_path(&g_map, path);
    if (dirfd == AT_FDCWD) {
        char cwd[PATH_MAX];
        return rx_getcwd(&g_map, cwd, sizeof cwd) == 0 && rx_is_store_path(cwd);
    }
    char dir[PATH_MAX];
    return fd_logical_dir(dirfd, dir);
}

#define DENY_STORE(dirfd, path)                                                               \
    do {                                                                                      \
        if (store_target(dirfd, path)) {                                                      \
            errno = EROFS;                                                                    \
            return -1;                                                                        \
        }                                                                                     \
    } while (0)

static int ret(long r)
{
    return (int)r;
}

/* ---- open ------------------------------------------------------------------ */

static bool writes(int flags)
{
    return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC);
}

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
    if (active() && (writes(flags) || (flags & O_CREAT)) && store_target(dirfd, path)) {
        if (writes(flags)) {
            errno = EROFS;
            return -1;
        }
        /* O_CREAT|O_RDONLY: fine if the file is there. */
        int r = ret(PATHCALL_AT(dirfd, path, !(flags & O_NOFOLLOW),
                                syscall(SYS_openat, fd, p, flags & ~(O_CREAT | O_EXCL), 0)));
        if (r < 0 && errno == ENOENT)
            errno = EROFS;
        return r;
    }
    return ret(PATHCALL_AT(dirfd, path, !(flags & O_NOFOLLOW),
                           syscall(SYS_openat, fd, p, flags, mode)));
}

static mode_t va_mode(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags, mode);
}

EXPORT int open64(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, mode);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags, mode);
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = va_mode(flags, ap);
    va_end(ap);
    return do_openat(dirfd, path, flags | O_LARGEFILE, mode);
}

EXPORT int __open_2(const char *path, int flags);
EXPORT int __open_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags, 0);
}

EXPORT int __open64_2(const char *path, int flags);
EXPORT int __open64_2(const char *path, int flags)
{
    return do_openat(AT_FDCWD, path, flags | O_LARGEFILE, 0);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags);
EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags, 0);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags);
EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
    return do_openat(dirfd, path, flags | O_LARGEFILE, 0);
}

EXPORT int creat(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
    return do_openat(AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_LARGEFILE, mode);
}

static bool mode_writes(const char *mode)
{
    return mode && (mode[0] == 'w' || mode[0] == 'a' || strchr(mode, '+'));
}

#define FOPEN_BODY(fn, path, mode, ...)                                                       \
    do {                                                                                      \
        if (mode_writes(mode) && store_target(AT_FDCWD, path)) {                              \
            errno = EROFS;                                                                    \
            return NULL;                                                                      \
        }                                                                                     \
        char b_[PATH_MAX];                                                                    \
        const char *p = active() ? map_fast(path, b_) : (path);                               \
        FILE *f = REAL(fn)(p, mode, ##__VA_ARGS__);                                           \
        if (!f && (errno == ENOENT || errno == ENOTDIR) && remap_at(AT_FDCWD, path, true, b_)) \
            f = REAL(fn)(b_, mode, ##__VA_ARGS__);                                            \
        return f;                                                                             \
    } while (0)

EXPORT FILE *fopen(const char *path, const char *mode)
{
    FOPEN_BODY(fopen, path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
    FOPEN_BODY(fopen64, path, mode);
}

EXPORT FILE *freopen(const char *path, const char *mode, FILE *stream)
{
    if (!path)
        return REAL(freopen)(path, mode, stream);
    FOPEN_BODY(freopen, path, mode, stream);
}

EXPORT FILE *freopen64(const char *path, const char *mode, FILE *stream)
{
    if (!path)
        return REAL(freopen64)(path, mode, stream);
    FOPEN_BODY(freopen64, path, mode, stream);
}

EXPORT DIR *opendir(const char *path)
{
    char b_[PATH_MAX];
    const char *p = active() ? map_fast(path, b_) : path;
    DIR *d = REAL(opendir)(p);
    if (!d && (errno == ENOENT || errno == ENOTDIR) && remap_at(AT_FDCWD, path, true, b_))
        d = REAL(opendir)(b_);
    return d;
}

/* ---- stat ------------------------------------------------------------------ */

#ifdef SYS_newfstatat
#define SYS_FSTATAT SYS_newfstatat
#else
#define SYS_FSTATAT SYS_fstatat
#endif

static int do_fstatat(int dirfd, const char *path, void *buf, int flags)
{
    if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH))
        return ret(syscall(SYS_FSTATAT, dirfd, path, buf, flags));
    return ret(PATHCALL_AT(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                           syscall(SYS_FSTATAT, fd, p, buf, flags)));
}

EXPORT int stat(const char *path, struct stat *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int stat64(const char *path, struct stat64 *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int lstat(const char *path, struct stat *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int lstat64(const char *path, struct stat64 *buf)
{
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *buf, int flags)
{
    return do_fstatat(dirfd, path, buf, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags)
{
    return do_fstatat(dirfd, path, buf, flags);
}

/* The entry points programs built against glibc before 2.33 call. */
EXPORT int __xstat(int ver, const char *path, struct stat *buf);
EXPORT int __xstat(int ver, const char *path, struct stat *buf)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int __xstat64(int ver, const char *path, struct stat64 *buf);
EXPORT int __xstat64(int ver, const char *path, struct stat64 *buf)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, buf, 0);
}

EXPORT int __lxstat(int ver, const char *path, struct stat *buf);
EXPORT int __lxstat(int ver, const char *path, struct stat *buf)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int __lxstat64(int ver, const char *path, struct stat64 *buf);
EXPORT int __lxstat64(int ver, const char *path, struct stat64 *buf)
{
    (void)ver;
    return do_fstatat(AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *buf, int flags);
EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *buf, int flags)
{
    (void)ver;
    return do_fstatat(dirfd, path, buf, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *buf, int flags);
EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *buf, int flags)
{
    (void)ver;
    return do_fstatat(dirfd, path, buf, flags);
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf)
{
    if (path && path[0] == '\0' && (flags & AT_EMPTY_PATH))
        return ret(syscall(SYS_statx, dirfd, path, flags, mask, buf));
    return ret(PATHCALL_AT(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                           syscall(SYS_statx, fd, p, flags, mask, buf)));
}

/* ---- access ---------------------------------------------------------------- */

static int do_faccessat(int dirfd, const char *path, int mode, int flags)
{
    if ((mode & W_OK) && store_target(dirfd, path)) {
        errno = EROFS;
        return -1;
    }
#ifdef SYS_faccessat2
    if (flags)
        return ret(PATHCALL_AT(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW),
                               syscall(SYS_faccessat2, fd, p, mode, flags)));
#endif
    return ret(PATHCALL_AT(dirfd, path, true, syscall(SYS_faccessat, fd, p, mode)));
}

EXPORT int access(const char *path, int mode)
{
    return do_faccessat(AT_FDCWD, path, mode, 0);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
    return do_faccessat(dirfd, path, mode, flags);
}

EXPORT int euidaccess(const char *path, int mode)
{
    return do_faccessat(AT_FDCWD, path, mode, AT_EACCESS);
}

EXPORT int eaccess(const char *path, int mode)
{
    return do_faccessat(AT_FDCWD, path, mode, AT_EACCESS);
}

/* ---- paths going out: readlink, getcwd, realpath --------------------------- */

static bool is_self_exe(const char *path)
{
    exe_check();
    if (!rx_map_exe(&g_map)[0])
        return false;
    if (strcmp(path, "/proc/self/exe") == 0 || strcmp(path, "/proc/thread-self/exe") == 0)
        return true;
    char own[32] = "/proc/";
    char digits[16];
    int n = 0;
    unsigned v = (unsigned)syscall(SYS_getpid);
    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) && n < 15);
    size_t l = strlen(own);
    while (n)
        own[l++] = digits[--n];
    memcpy(own + l, "/exe", 5);
    return strcmp(path, own) == 0;
}

static ssize_t copy_out(const char *src, char *buf, size_t size)
{
    size_t n = strlen(src);
    if (n > size)
        n = size;
    memcpy(buf, src, n);
    return (ssize_t)n;
}

static ssize_t do_readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    if (!active())
        return syscall(SYS_readlinkat, dirfd, path, buf, size);
    char t[PATH_MAX];
    if (path && is_self_exe(path))
        return copy_out(rx_map_exe(&g_map), buf, size);
    long n = PATHCALL_AT(dirfd, path, false, syscall(SYS_readlinkat, fd, p, t, sizeof t - 1));
    if (n < 0)
        return -1;
    t[n] = '\0';
    rx_unmap(&g_map, t);
    return copy_out(t, buf, size);
}

EXPORT ssize_t readlink(const char *path, char *buf, size_t size)
{
    return do_readlinkat(AT_FDCWD, path, buf, size);
}

EXPORT ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t size)
{
    return do_readlinkat(dirfd, path, buf, size);
}

EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t size, size_t bufsize);
EXPORT ssize_t __readlink_chk(const char *path, char *buf, size_t size, size_t bufsize)
{
    return do_readlinkat(AT_FDCWD, path, buf, size < bufsize ? size : bufsize);
}

EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t size,
                                size_t bufsize);
EXPORT ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t size,
                                size_t bufsize)
{
    return do_readlinkat(dirfd, path, buf, size < bufsize ? size : bufsize);
}

EXPORT char *getcwd(char *buf, size_t size)
{
    char t[PATH_MAX];
    if (syscall(SYS_getcwd, t, sizeof t) < 0)
        return NULL;
    if (active())
        rx_unmap(&g_map, t);
    size_t n = strlen(t) + 1;
    if (!buf) {
        if (size != 0 && size < n) {
            errno = ERANGE;
            return NULL;
        }
        buf = malloc(size ? size : n);
        if (!buf)
            return NULL;
    } else if (size < n) {
        errno = size == 0 ? EINVAL : ERANGE;
        return NULL;
    }
    memcpy(buf, t, n);
    return buf;
}

EXPORT char *__getcwd_chk(char *buf, size_t size, size_t bufsize);
EXPORT char *__getcwd_chk(char *buf, size_t size, size_t bufsize)
{
    return getcwd(buf, size < bufsize ? size : bufsize);
}

EXPORT char *get_current_dir_name(void)
{
    return getcwd(NULL, 0);
}

EXPORT char *getwd(char *buf)
{
    return getcwd(buf, PATH_MAX);
}

EXPORT int chdir(const char *path)
{
    return ret(PATHCALL(path, true, syscall(SYS_chdir, p)));
}

EXPORT char *realpath(const char *path, char *resolved)
{
    if (!active() || !path)
        return REAL(realpath)(path, resolved);
    char real[PATH_MAX];
    const char *p = path;
    if (rx_is_store_path(path) || (path[0] != '/' && cwd_in_store())) {
        int r = rx_resolve(&g_map, path, true, real, sizeof real);
        if (r < 0) {
            errno = -r;
            return NULL;
        }
        p = real;
    }
    char out[PATH_MAX];
    if (!REAL(realpath)(p, out))
        return NULL;
    rx_unmap(&g_map, out);
    if (!resolved) {
        resolved = malloc(strlen(out) + 1);
        if (!resolved)
            return NULL;
    }
    memcpy(resolved, out, strlen(out) + 1);
    return resolved;
}

EXPORT char *__realpath_chk(const char *path, char *resolved, size_t size);
EXPORT char *__realpath_chk(const char *path, char *resolved, size_t size)
{
    (void)size;
    return realpath(path, resolved);
}

EXPORT char *canonicalize_file_name(const char *path)
{
    return realpath(path, NULL);
}

/* ---- changes: refused below /nix/store ------------------------------------ */

EXPORT int mkdir(const char *path, mode_t mode)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_mkdirat, AT_FDCWD, path, mode));
}

EXPORT int mkdirat(int dirfd, const char *path, mode_t mode)
{
    DENY_STORE(dirfd, path);
    return ret(syscall(SYS_mkdirat, dirfd, path, mode));
}

EXPORT int rmdir(const char *path)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_unlinkat, AT_FDCWD, path, AT_REMOVEDIR));
}

EXPORT int unlink(const char *path)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_unlinkat, AT_FDCWD, path, 0));
}

EXPORT int unlinkat(int dirfd, const char *path, int flags)
{
    DENY_STORE(dirfd, path);
    return ret(syscall(SYS_unlinkat, dirfd, path, flags));
}

EXPORT int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                     unsigned flags)
{
    DENY_STORE(olddirfd, oldpath);
    DENY_STORE(newdirfd, newpath);
#ifdef SYS_renameat2
    return ret(syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags));
#else
    if (flags) {
        errno = EINVAL;
        return -1;
    }
    return ret(syscall(SYS_renameat, olddirfd, oldpath, newdirfd, newpath));
#endif
}

EXPORT int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath)
{
    return renameat2(olddirfd, oldpath, newdirfd, newpath, 0);
}

EXPORT int rename(const char *oldpath, const char *newpath)
{
    return renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

EXPORT int linkat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                  int flags)
{
    DENY_STORE(newdirfd, newpath);
    return ret(PATHCALL_AT(olddirfd, oldpath, (flags & AT_SYMLINK_FOLLOW) != 0,
                           syscall(SYS_linkat, fd, p, newdirfd, newpath, flags)));
}

EXPORT int link(const char *oldpath, const char *newpath)
{
    return linkat(AT_FDCWD, oldpath, AT_FDCWD, newpath, 0);
}

EXPORT int symlinkat(const char *target, int dirfd, const char *path)
{
    DENY_STORE(dirfd, path);
    return ret(syscall(SYS_symlinkat, target, dirfd, path));
}

EXPORT int symlink(const char *target, const char *path)
{
    return symlinkat(target, AT_FDCWD, path);
}

EXPORT int fchmodat(int dirfd, const char *path, mode_t mode, int flags)
{
    DENY_STORE(dirfd, path);
    return REAL(fchmodat)(dirfd, path, mode, flags);
}

EXPORT int chmod(const char *path, mode_t mode)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_fchmodat, AT_FDCWD, path, mode));
}

EXPORT int fchownat(int dirfd, const char *path, uid_t uid, gid_t gid, int flags)
{
    DENY_STORE(dirfd, path);
    return ret(syscall(SYS_fchownat, dirfd, path, uid, gid, flags));
}

EXPORT int chown(const char *path, uid_t uid, gid_t gid)
{
    return fchownat(AT_FDCWD, path, uid, gid, 0);
}

EXPORT int lchown(const char *path, uid_t uid, gid_t gid)
{
    return fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW);
}

EXPORT int truncate(const char *path, off_t len)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_truncate, path, len));
}

EXPORT int truncate64(const char *path, off64_t len)
{
    DENY_STORE(AT_FDCWD, path);
    return ret(syscall(SYS_truncate, path, len));
}

EXPORT int utimensat(int dirfd, const char *path, const struct timespec times[2], int flags)
{
    if (path)
        DENY_STORE(dirfd, path);
    return ret(syscall(SYS_utimensat, dirfd, path, times, flags));
}

/* ---- exec ------------------------------------------------------------------ */

static int exec_mapped(const char *path, char *const argv[], char *const envp[])
{
    exe_check();
    struct rx_exec x;
    int r = rx_exec_prepare(&g_map, path, argv, envp, &x);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    syscall(SYS_execve, x.file, x.argv, x.envp);
    int e = errno;
    rx_exec_free(&x);
    errno = e;
    return -1;
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    if (!active())
        return ret(syscall(SYS_execve, path, argv, envp));
    return exec_mapped(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    if (!active())
        return REAL(execvpe)(file, argv, envp);
    char path[PATH_MAX];
    int r = rx_path_search(&g_map, file, environ, path, sizeof path);
    if (r < 0) {
        errno = -r;
        return -1;
    }
    exec_mapped(path, argv, envp);
    if (errno == ENOEXEC) {
        /* Like execvp: a file without a #! line is a shell script. */
        size_t n = 0;
        while (argv[n])
            n++;
        char **sh = calloc(n + 2, sizeof *sh);
        if (!sh)
            return -1;
        sh[0] = (char *)"/bin/sh";
        sh[1] = path;
        for (size_t i = 1; i < n; i++)
            sh[i + 1] = argv[i];
        exec_mapped("/bin/sh", sh, envp);
        free(sh);
    }
    return -1;
}

EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* execl, execle and execlp: collect the variadic arguments. */
#define COLLECT_ARGS(arg0, ap, argv)                                                          \
    size_t n_ = 1;                                                                            \
    va_list c_;                                                                               \
    va_copy(c_, ap);                                                                          \
    while (va_arg(c_, char *))                                                                \
        n_++;                                                                                 \
    va_end(c_);                                                                               \
    char **argv = calloc(n_ + 1, sizeof *argv);                                               \
    if (!argv) {                                                                              \
        va_end(ap);                                                                           \
        return -1;                                                                            \
    }                                                                                         \
    argv[0] = (char *)(arg0);                                                                 \
    for (size_t i_ = 1; i_ <= n_; i_++)                                                       \
        argv[i_] = va_arg(ap, char *);

EXPORT int execl(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    execve(path, argv, environ);
    free(argv);
    return -1;
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    va_end(ap);
    execvp(file, argv);
    free(argv);
    return -1;
}

EXPORT int execle(const char *path, const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    COLLECT_ARGS(arg, ap, argv);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    execve(path, argv, envp);
    free(argv);
    return -1;
}

/* An fd or dirfd-relative exec: name the file by its logical path if it is in the store. */
static int exec_at(int dirfd, const char *path, char *const argv[], char *const envp[],
                   int flags)
{
    char logical[PATH_MAX];
    if (path[0] == '/')
        return exec_mapped(path, argv, envp);
    if ((flags & AT_EMPTY_PATH) && path[0] == '\0') {
        if (fd_logical_dir(dirfd, logical))
            return exec_mapped(logical, argv, envp);
    } else if (dirfd != AT_FDCWD && fd_logical_dir(dirfd, logical)) {
        size_t dl = strlen(logical), pl = strlen(path);
        if (dl + 1 + pl + 1 <= sizeof logical) {
            logical[dl] = '/';
            memcpy(logical + dl + 1, path, pl + 1);
            return exec_mapped(logical, argv, envp);
        }
    } else if (dirfd == AT_FDCWD) {
        return exec_mapped(path, argv, envp);
    }
    return ret(syscall(SYS_execveat, dirfd, path, argv, envp, flags));
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    if (!active())
        return ret(syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH));
    return exec_at(fd, "", argv, envp, AT_EMPTY_PATH);
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                    int flags)
{
    if (!active())
        return ret(syscall(SYS_execveat, dirfd, path, argv, envp, flags));
    return exec_at(dirfd, path, argv, envp, flags);
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!active())
        return REAL(posix_spawn)(pid, path, fa, attr, argv, envp);
    exe_check();
    struct rx_exec x;
    int r = rx_exec_prepare(&g_map, path, argv, envp, &x);
    if (r < 0)
        return -r;
    r = REAL(posix_spawn)(pid, x.file, fa, attr, x.argv, x.envp);
    rx_exec_free(&x);
    return r;
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                        const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    if (!active())
        return REAL(posix_spawnp)(pid, file, fa, attr, argv, envp);
    char path[PATH_MAX];
    int r = rx_path_search(&g_map, file, environ, path, sizeof path);
    if (r < 0)
        return -r;
    return posix_spawn(pid, path, fa, attr, argv, envp);
}

/* runix calls this in itself: its own store writes and execs are real. */
EXPORT void runix_preload_disable(void);
EXPORT void runix_preload_disable(void)
{
    g_state = -1;
}
