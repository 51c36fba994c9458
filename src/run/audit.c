/* librunix-audit.so: the preload engine's LD_AUDIT module, with no libc and only the resolver. */
/*
 * librunix-audit.so: the preload engine's LD_AUDIT module.  The dynamic
 * loader asks it for every library it looks for (DT_NEEDED through RUNPATH,
 * absolute names, dlopen); names below /nix/store are answered with the file
 * in the runix store.
 *
 * It depends on nothing, libc included.  The loader loads an audit module
 * and its dependencies before the module can answer anything, and it finds
 * them by searching the program's RUNPATH; a failed search there would mark
 * the program's /nix/store directories as missing for good, and a libc found
 * elsewhere may not match the program's loader.  So this file brings the few
 * C functions run-map.c may call (the list is in run-map.h; exec preparation,
 * run-exec.c, is not linked here) and makes system calls itself, and reads
 * its settings from /proc/self/environ.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "run-map.h"

#include "banned.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define EXPORT __attribute__((visibility("default")))

/* ---- system calls ---------------------------------------------------------- */

static long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
    long r;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return r;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0"
                     : "+r"(x0)
                     : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                     : "memory");
    return x0;
#else
#error "librunix-audit.so: unsupported architecture"
#endif
}

static int audit_errno;

HIDDEN int *__errno_location(void)
{
    return &audit_errno;
}

HIDDEN long syscall(long n, ...)
{
    va_list ap;
    va_start(ap, n);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
    va_end(ap);
    long r = raw_syscall6(n, a, b, c, d, e, f);
    if (r < 0 && r > -4096) {
        audit_errno = (int)-r;
        return -1;
    }
    return r;
}

HIDDEN int close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

/* ---- the C functions run-map.c may use (run-map.h), and memcmp for this file ---- */

/*
 * The loader asks about a few dozen paths of a hundred bytes or more at
 * every program start, each one copied and compared several times: so the
 * string functions go a word at a time, not a byte.  A word may be read
 * from anywhere (both architectures load unaligned words), and an aligned
 * word holding a string's end never crosses into the next page.
 */
typedef unsigned long __attribute__((may_alias, aligned(1))) word_t;
#define WORD sizeof(word_t)
#define ONES ((unsigned long)-1 / 255)
#define HIGHS (ONES * 128)

/* Does w hold a zero byte? */
static inline bool has_zero(unsigned long w)
{
    return ((w - ONES) & ~w & HIGHS) != 0;
}

HIDDEN size_t strlen(const char *s)
{
    const char *p = s;
    for (; (uintptr_t)p % WORD; p++)
        if (!*p)
            return (size_t)(p - s);
    while (!has_zero(*(const word_t *)p))
        p += WORD;
    while (*p)
        p++;
    return (size_t)(p - s);
}

/* The first NUL in p[0..n), or p + n. */
static const char *find_nul(const char *p, size_t n)
{
    const char *e = p + n;
    while ((size_t)(e - p) >= WORD && !has_zero(*(const word_t *)p))
        p += WORD;
    while (p < e && *p)
        p++;
    return p;
}

HIDDEN int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

HIDDEN int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (unsigned char)*a - (unsigned char)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

HIDDEN char *strchrnul(const char *s, int c)
{
    while (*s && *s != (char)c)
        s++;
    return (char *)s;
}

HIDDEN void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    for (; n >= WORD; n -= WORD, dp += WORD, sp += WORD)
        *(word_t *)dp = *(const word_t *)sp;
    while (n--)
        *dp++ = *sp++;
    return d;
}

HIDDEN void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp <= sp || dp >= sp + n)
        return memcpy(d, s, n);
    while (n--)
        dp[n] = sp[n];
    return d;
}

HIDDEN void *memset(void *d, int c, size_t n)
{
    unsigned char *dp = d;
    while (n--)
        *dp++ = (unsigned char)c;
    return d;
}

HIDDEN int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n >= WORD && *(const word_t *)x == *(const word_t *)y; n -= WORD)
        x += WORD, y += WORD;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

/* ---- the directory cache (see resolve_dir) and the settings ---------------- */

#define DIR_CACHE 64
#define DIR_MAX 1024
#define POOL_SIZE (32 * 1024)
/*
 * The strings live packed in one pool, entries in a small table before it:
 * a program's few dozen directories then touch a page or two of memory,
 * not one page per directory (a page fault can cost as much as dozens of
 * system calls).  When either is full, the cache starts over.
 */
static struct {
    struct {
        unsigned short logical, len, real; /* offsets into pool, and the logical length */
        bool missing;                      /* known not to exist: nothing below it does either */
    } dirs[DIR_CACHE];
    unsigned ndirs, used;
    char pool[POOL_SIZE];
} g_cache;

_Static_assert(POOL_SIZE <= 65536, "pool offsets are unsigned short");

/* ---- settings ----------------------------------------------------------------- */

static struct rx_map g_map;
static int g_state; /* 0 not read, 1 active, -1 inactive */

/*
 * One NUL-terminated entry of the environment: is it the store directory?
 * The first one counts, as for getenv().
 */
static bool take(const char *entry, size_t len)
{
    static const char key[] = RX_ENV_STORE "=";
    size_t kl = sizeof key - 1;
    if (len <= kl || memcmp(entry, key, kl) != 0)
        return false;
    rx_map_init(&g_map, entry + kl, NULL, NULL, NULL); /* too long: maps nothing */
    return true;
}

/*
 * Is this a set-user-ID, set-group-ID or file-capability program (AT_SECURE
 * in the auxiliary vector)?  Unknown counts as yes.  glibc loads no LD_AUDIT
 * path with a '/' into such a program, nor a name unless it is set-user-ID
 * in a system directory; this holds when it is loaded anyway, since the
 * view comes from the caller's environment.
 */
static bool secure_exec(void)
{
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/auxv", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    unsigned long av[64]; /* (type, value) pairs, ended by AT_NULL */
    size_t have = 0;
    long n;
    bool secure = true, done = false;
    while (!done && (n = syscall(SYS_read, fd, (char *)av + have, sizeof av - have)) > 0) {
        have += (size_t)n;
        size_t i = 0;
        for (; i + 2 <= have / sizeof av[0]; i += 2) {
            if (av[i] == AT_NULL) {
                done = true;
                break;
            }
            if (av[i] == AT_SECURE) {
                secure = av[i + 1] != 0;
                done = true;
                break;
            }
        }
        /* Keep a partial pair for the next read. */
        size_t used = i * sizeof av[0];
        memmove(av, (char *)av + used, have - used);
        have -= used;
    }
    close((int)fd);
    return secure;
}

/*
 * RUNIX_STORE_DIR from the environment the program was started with.  It is
 * read into the directory cache's pool, which is still empty: no buffer of
 * its own to touch.  An entry longer than the pool is skipped.
 */
static void init(void)
{
    g_state = -1;
    if (secure_exec())
        return;
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    char *buf = g_cache.pool;
    size_t have = 0;
    bool skipping = false, found = false;
    long n;
    while (!found && (n = syscall(SYS_read, fd, buf + have, POOL_SIZE - have)) > 0) {
        size_t end = have + (size_t)n, start = 0;
        for (size_t i = have; !found;) {
            i = (size_t)(find_nul(buf + i, end - i) - buf);
            if (i == end)
                break;
            if (!skipping)
                found = take(buf + start, i - start);
            skipping = false;
            start = ++i;
        }
        if (start == 0 && end == POOL_SIZE) {
            skipping = true; /* no end in sight: drop what there is */
            have = 0;
        } else {
            memmove(buf, buf + start, end - start);
            have = end - start;
        }
    }
    close((int)fd);
    g_cache.ndirs = g_cache.used = 0;
    if (g_map.store[0] == '/')
        g_state = 1;
}

/* ---- the audit interface ------------------------------------------------------ */

EXPORT unsigned int la_version(unsigned int version)
{
    return version < LAV_CURRENT ? version : LAV_CURRENT;
}

/*
 * The loader tries each library name in every search directory (and their
 * glibc-hwcaps, tls and platform subdirectories), so the same directories
 * come up again and again.  Their resolution in the view cannot change (the
 * store is read-only), so it is kept: a candidate then costs one readlink to
 * see whether the file itself is a symlink.
 */

/* A path component that names an entry: not empty, ".", or "..". */
static bool plain_name(const char *c, size_t n)
{
    return n > 0 && !(c[0] == '.' && (n == 1 || (n == 2 && c[1] == '.')));
}

static const char *cache_put(const char *logical, size_t len, const char *real, bool missing,
                             bool *missing_out)
{
    *missing_out = missing;
    size_t rl = strlen(real);
    if (len >= DIR_MAX || rl >= DIR_MAX)
        return NULL;
    if (g_cache.ndirs == DIR_CACHE || g_cache.used + len + rl + 2 > POOL_SIZE)
        g_cache.ndirs = g_cache.used = 0;
    unsigned slot = g_cache.ndirs++;
    char *l = g_cache.pool + g_cache.used, *r = l + len + 1;
    memcpy(l, logical, len);
    l[len] = '\0';
    memcpy(r, real, rl + 1);
    g_cache.dirs[slot].logical = (unsigned short)g_cache.used;
    g_cache.dirs[slot].len = (unsigned short)len;
    g_cache.dirs[slot].real = (unsigned short)(g_cache.used + len + 1);
    g_cache.dirs[slot].missing = missing;
    g_cache.used += (unsigned)(len + rl + 2);
    return r;
}

/* Where the component that ends dir[0..len) starts (after its '/'). */
static size_t component_start(const char *dir, size_t len)
{
    size_t cut = len;
    while (cut > RX_STORE_LEN && dir[cut - 1] != '/')
        cut--;
    return cut;
}

/*
 * The real directory behind the logical dir[0..len), when its parent's is
 * known (parent, NULL if not, and whether it is missing): one readlink of
 * the last component, else (a symlink, or too long) the full resolver.
 */
static const char *resolve_below(const char *dir, size_t len, const char *parent, bool gone,
                                 bool *missing)
{
    char real[PATH_MAX];
    size_t cut = component_start(dir, len);
    const char *comp = dir + cut;
    size_t clen = len - cut;
    *missing = false;
    if (parent) {
        size_t pl = strlen(parent);
        if (pl + 1 + clen < sizeof real) {
            memcpy(real, parent, pl);
            real[pl] = '/';
            memcpy(real + pl + 1, comp, clen);
            real[pl + 1 + clen] = '\0';
            if (gone)
                return cache_put(dir, len, real, true, missing);
            char link[8];
            if (syscall(SYS_readlinkat, AT_FDCWD, real, link, sizeof link) < 0) {
                /* a directory, or nothing: no symlink here */
                bool none = audit_errno == ENOENT || audit_errno == ENOTDIR;
                if (none && cut - 1 == RX_STORE_LEN) {
                    /* A store path may still arrive (another runix fetching it): not
                     * remembered, so that it is looked at afresh next time. */
                    static char fresh[PATH_MAX];
                    memcpy(fresh, real, strlen(real) + 1);
                    return fresh;
                }
                return cache_put(dir, len, real, none, missing);
            }
        }
    }
    char logical[DIR_MAX];
    if (len >= DIR_MAX)
        return NULL;
    memcpy(logical, dir, len);
    logical[len] = '\0';
    if (rx_resolve(&g_map, logical, true, real, sizeof real) < 0)
        return NULL;
    return cache_put(dir, len, real, false, missing);
}

/*
 * The real directory behind the logical dir[0..len) (below /nix/store):
 * from the cache, else from its parent's plus one readlink of the last
 * component, else (a symlink, "." or "..") the full resolver.
 *
 * A loop, not a recursion: the loader calls this from whichever thread
 * dlopens, whose stack may be small, and each level holds a PATH_MAX
 * buffer.  The way up stops at the nearest known ancestor (cached, or
 * /nix/store itself), at a component that is not a plain name, or after
 * DIR_DEPTH levels; the way down resolves one level at a time from it.
 */
#define DIR_DEPTH 64
static const char *resolve_dir(const char *dir, size_t len, bool *missing)
{
    size_t levels[DIR_DEPTH + 1]; /* the lengths still to resolve, deepest first */
    unsigned depth = 0;
    const char *known = NULL;
    bool known_found = false, gone = false;
    for (;;) {
        for (unsigned i = 0; i < g_cache.ndirs; i++)
            if (g_cache.dirs[i].len == len &&
                memcmp(g_cache.pool + g_cache.dirs[i].logical, dir, len) == 0) {
                gone = g_cache.dirs[i].missing;
                known = g_cache.pool + g_cache.dirs[i].real;
                known_found = true;
                break;
            }
        if (known_found)
            break;
        if (len == RX_STORE_LEN) { /* "/nix/store" itself */
            known = cache_put(dir, len, g_map.store, false, &gone);
            known_found = true;
            break;
        }
        size_t cut = component_start(dir, len);
        levels[depth++] = len;
        if (!plain_name(dir + cut, len - cut) || depth > DIR_DEPTH || cut <= RX_STORE_LEN)
            break; /* this level is the full resolver's */
        len = cut - 1;
    }
    /* known (with gone) is the answer for len when known_found; levels[] are below it. */
    char parent[PATH_MAX];
    const char *have = known;
    if (known_found && !depth) {
        *missing = gone;
        return known;
    }
    while (depth > 0) {
        size_t l = levels[--depth];
        const char *p = NULL;
        if (known_found && have) {
            /* The cache may start over while the child goes in: copy the parent first. */
            memcpy(parent, have, strlen(have) + 1);
            p = parent;
        }
        have = resolve_below(dir, l, p, gone, &gone);
        known_found = true;
    }
    *missing = gone;
    return have;
}

EXPORT char *la_objsearch(const char *name, uintptr_t *cookie, unsigned int flag)
{
    static char buf[PATH_MAX]; /* the loader holds its lock around searches */
    (void)cookie;
    (void)flag;
    if (!rx_is_store_path(name))
        return (char *)name;
    if (!g_state)
        init();
    if (g_state < 0)
        return (char *)name;
    size_t nlen = strlen(name);
    const char *slash = name + nlen;
    while (*slash != '/') /* there is one: name starts with "/nix/store" */
        slash--;
    const char *base = slash + 1;
    size_t dlen = (size_t)(slash - name), blen = nlen - dlen - 1;
    bool plain_base = plain_name(base, blen);
    bool missing = false;
    const char *rdir = plain_base && dlen >= RX_STORE_LEN && dlen < DIR_MAX
                           ? resolve_dir(name, dlen, &missing)
                           : NULL;
    if (rdir) {
        size_t rl = strlen(rdir);
        if (rl + 1 + blen < sizeof buf) {
            memcpy(buf, rdir, rl);
            buf[rl] = '/';
            memcpy(buf + rl + 1, base, blen + 1);
            char link[8];
            if (missing || syscall(SYS_readlinkat, AT_FDCWD, buf, link, sizeof link) < 0)
                return buf; /* not a symlink, or missing: the loader's open says */
        }
    }
    if (rx_resolve(&g_map, name, true, buf, sizeof buf) < 0)
        return (char *)name;
    return buf;
}
