/* The preload engine's path resolver; what it may call is in run-map.h. */
#include "config.h"

#include "run-map.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "banned.h"

/*
 * Every file system access here is a raw system call: inside the preload
 * library the libc names (open, readlink, ...) are our own wrappers, which
 * call back into this module.
 */

#define MAX_LINKS 40  /* the kernel's limit before ELOOP */

static ssize_t sys_readlink(const char *path, char *buf, size_t n)
{
    return syscall(SYS_readlinkat, AT_FDCWD, path, buf, n);
}

_Static_assert(sizeof((struct rx_map *)0)->store == 4 * PATH_MAX,
               "rx_map_init() packs four strings of less than PATH_MAX bytes each");

/* Append s (NULL for "") at *at; false when it is PATH_MAX bytes or longer. */
static bool put_str(struct rx_map *m, size_t *at, const char *s, size_t *len)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= PATH_MAX)
        return false;
    memcpy(m->store + *at, s ? s : "", n);
    m->store[*at + n] = '\0';
    *len = n;
    *at += n + 1;
    return true;
}

int rx_map_init(struct rx_map *m, const char *store, const char *shim, const char *audit,
                const char *exe)
{
    size_t at = 0, n;
    m->store_len = 0;
    if (!put_str(m, &at, store, &m->store_len))
        goto toolong;
    while (m->store_len > 1 && m->store[m->store_len - 1] == '/')
        m->store[--m->store_len] = '\0';
    m->shim_off = (unsigned)at;
    if (!put_str(m, &at, shim, &n))
        goto toolong;
    m->audit_off = (unsigned)at;
    if (!put_str(m, &at, audit, &n))
        goto toolong;
    m->exe_off = (unsigned)at;
    if (!put_str(m, &at, exe, &n))
        goto toolong;
    return 0;
toolong:
    m->store_len = 0;
    m->store[0] = '\0';
    m->shim_off = m->audit_off = m->exe_off = 0;
    return -ENAMETOOLONG;
}

bool rx_is_store_path(const char *path)
{
    return strncmp(path, RX_STORE, RX_STORE_LEN) == 0 &&
           (path[RX_STORE_LEN] == '/' || path[RX_STORE_LEN] == '\0');
}

bool rx_is_real_store_path(const struct rx_map *m, const char *path)
{
    return m->store_len > 0 && strncmp(path, m->store, m->store_len) == 0 &&
           (path[m->store_len] == '/' || path[m->store_len] == '\0');
}

int rx_subst(const struct rx_map *m, const char *path, char *out, size_t outsz)
{
    size_t rest = strlen(path + RX_STORE_LEN);
    if (m->store_len + rest + 1 > outsz)
        return -ENAMETOOLONG;
    memmove(out + m->store_len, path + RX_STORE_LEN, rest + 1);
    memcpy(out, m->store, m->store_len);
    return 0;
}

void rx_unmap(const struct rx_map *m, char *path)
{
    if (!rx_is_real_store_path(m, path))
        return;
    memmove(path + RX_STORE_LEN, path + m->store_len, strlen(path + m->store_len) + 1);
    memcpy(path, RX_STORE, RX_STORE_LEN);
}

int rx_getcwd(const struct rx_map *m, char *out, size_t outsz)
{
    long r = syscall(SYS_getcwd, out, outsz);
    if (r < 0)
        return -errno;
    rx_unmap(m, out);
    return 0;
}

/* Is res (a resolved logical prefix) strictly below /nix/store? */
static bool below_store(const char *res)
{
    return strncmp(res, RX_STORE "/", RX_STORE_LEN + 1) == 0;
}

static void pop(char *res, size_t *len)
{
    while (*len > 0 && res[*len - 1] != '/')
        (*len)--;
    if (*len > 0)
        (*len)--; /* the '/' */
    res[*len] = '\0';
}

/* Long, but one walk like the kernel's: its buffers and link count are shared by every step. */
int rx_resolve(const struct rx_map *m, const char *path, bool follow, char *out, size_t outsz)
{
    char res[PATH_MAX]; /* resolved logical prefix; "" is "/" */
    char rest[2][PATH_MAX];
    char link[PATH_MAX];
    size_t len = 0;
    int cur = 0, links = 0;

    if (path[0] != '/') {
        int r = rx_getcwd(m, res, sizeof res);
        if (r < 0)
            return r;
        len = strlen(res);
        if (len == 1)
            len = 0;
        res[len] = '\0';
    } else {
        res[0] = '\0';
    }
    size_t plen = strlen(path);
    if (plen >= sizeof rest[0])
        return -ENAMETOOLONG;
    memcpy(rest[cur], path, plen + 1);
    const char *p = rest[cur];

    for (;;) {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *end = strchrnul(p, '/');
        size_t clen = (size_t)(end - p);
        const char *after = end;
        while (*after == '/')
            after++;
        bool last = *after == '\0';
        bool trailing_slash = last && *end == '/';
        if (clen == 1 && p[0] == '.') {
            p = end;
            continue;
        }
        if (clen == 2 && p[0] == '.' && p[1] == '.') {
            pop(res, &len);
            p = end;
            continue;
        }
        if (len + 1 + clen >= sizeof res)
            return -ENAMETOOLONG;
        res[len++] = '/';
        memcpy(res + len, p, clen);
        len += clen;
        res[len] = '\0';
        p = end;
        if (!below_store(res)) {
            if (strcmp(res, "/nix") == 0 || strcmp(res, RX_STORE) == 0)
                continue;
            break; /* outside the store: the kernel resolves the rest */
        }
        if (last && !follow && !trailing_slash)
            break;
        char real[PATH_MAX];
        int r = rx_subst(m, res, real, sizeof real);
        if (r < 0)
            return r;
        ssize_t n = sys_readlink(real, link, sizeof link);
        if (n == -1 && (errno == ENOENT || errno == ENOTDIR))
            break; /* nothing below a missing component exists: the real call will say */
        if (n < 0)
            continue; /* not a symlink: the real call will say */
        if ((size_t)n >= sizeof link)
            return -ENAMETOOLONG;
        if (++links > MAX_LINKS)
            return -ELOOP;
        size_t restlen = strlen(p);
        if ((size_t)n + restlen + 1 > sizeof rest[0])
            return -ENAMETOOLONG;
        int next = !cur;
        memcpy(rest[next], link, (size_t)n);
        memcpy(rest[next] + n, p, restlen + 1);
        cur = next;
        p = rest[cur];
        if (link[0] == '/') {
            len = 0;
            res[0] = '\0';
        } else {
            pop(res, &len);
        }
    }

    /* res, then whatever the loop left unresolved. */
    if (len == 0) {
        res[0] = '/';
        res[1] = '\0';
        len = 1;
    }
    size_t restlen = strlen(p);
    char full[PATH_MAX];
    if (len + restlen + 2 > sizeof full)
        return -ENAMETOOLONG;
    memcpy(full, res, len);
    if (restlen > 0) {
        if (full[len - 1] != '/' && p[0] != '/')
            full[len++] = '/';
        memcpy(full + len, p, restlen);
        len += restlen;
    }
    full[len] = '\0';
    if (rx_is_store_path(full))
        return rx_subst(m, full, out, outsz);
    if (len + 1 > outsz)
        return -ENAMETOOLONG;
    memcpy(out, full, len + 1);
    return 0;
}

