/* GC roots: runix's own, and finding Nix's (see store-roots.h). */
#include "config.h"
#include "store-roots.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store-index.h"
#include "util-mem.h"

#include "banned.h"

static const char *const kind_names[] = {"auto", "manual", "installed", "nix"};

const char *store_root_kind_name(enum store_root_kind k)
{
    return k <= STORE_ROOT_NIX ? kind_names[k] : "?";
}

int store_root_kind_parse(const char *s)
{
    for (int k = 0; k <= STORE_ROOT_NIX; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return k;
    return -1;
}

static bool name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._+,=@:~-", c) != NULL;
}

/* FNV-1a: names a cut NAME apart from others cut alike; not a security measure. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

int store_root_name_encode(const char *ref, char out[static STORE_ROOT_NAME_MAX + 1],
                           struct rx_error **err)
{
    if (!*ref)
        return rx_error_set(err, EINVAL, "a root needs a name");
    static const char hex[] = "0123456789ABCDEF";
    enum { CUT = STORE_ROOT_NAME_MAX - 17 }; /* room for "~" and 16 hex digits */
    size_t o = 0;
    for (const char *c = ref; *c; c++) {
        unsigned char b = (unsigned char)*c;
        bool plain = name_char(b) && b != '~' && !(c == ref && b == '.');
        if (o + (plain ? 1 : 3) > CUT) {
            size_t rest = 0; /* does the rest fit whole? */
            for (const char *d = c; *d && o + rest <= STORE_ROOT_NAME_MAX; d++)
                rest += name_char((unsigned char)*d) && *d != '~' ? 1 : 3;
            if (o + rest > STORE_ROOT_NAME_MAX) {
                snprintf(out + o, STORE_ROOT_NAME_MAX + 1 - o, "~%016llx",
                         (unsigned long long)fnv1a(ref));
                return 0;
            }
        }
        if (plain) {
            out[o++] = (char)b;
        } else {
            out[o++] = '%';
            out[o++] = hex[b >> 4];
            out[o++] = hex[b & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

char *store_root_name_decode(const char *name)
{
    size_t len = strlen(name);
    char *out = xmalloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (name[i] == '%' && i + 2 < len + 1 && (hi = hexval(name[i + 1])) >= 0 &&
            (lo = hexval(name[i + 2])) >= 0 && (hi || lo)) {
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[o++] = name[i];
        }
    }
    out[o] = '\0';
    return out;
}

bool store_root_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > STORE_ROOT_NAME_MAX || name[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char((unsigned char)name[i]) && name[i] != '%')
            return false;
    return true;
}

/* R/STORE_ROOTS_DIR/<kind>, checked, made when `create`; -1 with err (ENOENT: absent). */
static int kind_dir_open(int root_fd, const char *root, enum store_root_kind kind, bool create,
                         struct rx_error **err)
{
    char rel[64];
    snprintf(rel, sizeof rel, STORE_ROOTS_DIR "/%s", store_root_kind_name(kind));
    return store_dir_open(root_fd, root, rel, create, err);
}

static void target_of(const struct store_path *p, char out[static STORE_PATH_MAX + 1],
                      char base[static STORE_BASENAME_MAX + 1])
{
    store_path_basename(p, base);
    store_path_format(p, out);
}

/* Does the link dfd/base point at target? */
static bool link_is(int dfd, const char *base, const char *target)
{
    char buf[STORE_PATH_MAX + 2];
    ssize_t n = readlinkat(dfd, base, buf, sizeof buf);
    return n >= 0 && (size_t)n == strlen(target) && memcmp(buf, target, (size_t)n) == 0;
}

static bool in_paths(const char *base, const struct store_path *paths, size_t n)
{
    struct store_path p;
    if (store_path_parse_basename(base, strlen(base), &p, NULL) < 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (store_path_cmp(&p, &paths[i]) == 0)
            return true;
    return false;
}

/* Does the root dir open as nfd hold exactly paths[0..n)? */
static bool holds_exactly(int nfd, const struct store_path *paths, size_t n)
{
    char target[STORE_PATH_MAX + 1], base[STORE_BASENAME_MAX + 1];
    for (size_t i = 0; i < n; i++) {
        target_of(&paths[i], target, base);
        if (!link_is(nfd, base, target))
            return false;
    }
    int d = fcntl(nfd, F_DUPFD_CLOEXEC, 0);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return false;
    }
    bool exact = true;
    struct dirent *e;
    while (exact && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            !in_paths(e->d_name, paths, n))
            exact = false;
    closedir(dir);
    return exact;
}

int store_root_set(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                   const struct store_path *paths, size_t n, struct rx_error **err)
{
    if (kind == STORE_ROOT_NIX || !store_root_name_valid(name))
        return rx_error_set(err, EINVAL, "'%s' is not a name for a runix root", name);
    _cleanup_close_ int kfd = kind_dir_open(root_fd, root, kind, true, err);
    if (kfd < 0)
        return -1;
    const char *kn = store_root_kind_name(kind);
    if (mkdirat(kfd, name, 0755) < 0 && errno != EEXIST)
        return rx_error_errno(err, "cannot create root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    _cleanup_close_ int nfd = openat(kfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0)
        return rx_error_errno(err, "cannot open root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    char target[STORE_PATH_MAX + 1], base[STORE_BASENAME_MAX + 1];
    /* The new links first: a path that both the old and the new root hold stays held. */
    for (size_t i = 0; i < n; i++) {
        target_of(&paths[i], target, base);
        if (link_is(nfd, base, target))
            continue;
        char tmp[STORE_BASENAME_MAX + 32];
        snprintf(tmp, sizeof tmp, ".new-%ld-%s", (long)getpid(), base);
        unlinkat(nfd, tmp, 0);
        if (symlinkat(target, nfd, tmp) < 0 || renameat(nfd, tmp, nfd, base) < 0) {
            rx_error_errno(err, "cannot write root '%s/" STORE_ROOTS_DIR "/%s/%s/%s'", root, kn,
                           name, base);
            unlinkat(nfd, tmp, 0);
            return -1;
        }
    }
    int d = fcntl(nfd, F_DUPFD_CLOEXEC, 0);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return rx_error_errno(err, "cannot read root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    }
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            !in_paths(e->d_name, paths, n) && strncmp(e->d_name, ".new-", 5) != 0)
            unlinkat(nfd, e->d_name, 0);
    closedir(dir);
    if (utimensat(kfd, name, NULL, 0) < 0)
        return rx_error_errno(err, "cannot mark root '%s/" STORE_ROOTS_DIR "/%s/%s' as used",
                              root, kn, name);
    return 0;
}

int store_root_use(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                   const struct store_path *paths, size_t n, struct rx_error **err)
{
    if (faccessat(root_fd, "nix/var/nix", W_OK, AT_EACCESS) < 0 && errno != ENOENT)
        return 0; /* someone else's store (a prefetched one): nothing of ours to keep */
    struct rx_error *e = NULL;
    _cleanup_close_ int kfd = kind_dir_open(root_fd, root, kind, false, &e);
    if (kfd < 0) {
        if (e->code != ENOENT) {
            *err = e;
            return -1;
        }
        rx_error_free(e);
        return store_root_set(root_fd, root, kind, name, paths, n, err);
    }
    _cleanup_close_ int nfd = openat(kfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (nfd < 0 || fstat(nfd, &st) < 0 || !holds_exactly(nfd, paths, n))
        return store_root_set(root_fd, root, kind, name, paths, n, err);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec - st.st_mtim.tv_sec < STORE_ROOT_REFRESH_S &&
        now.tv_sec >= st.st_mtim.tv_sec)
        return 0;
    if (utimensat(kfd, name, NULL, 0) < 0)
        return rx_error_errno(err, "cannot mark root '%s/" STORE_ROOTS_DIR "/%s/%s' as used",
                              root, store_root_kind_name(kind), name);
    return 0;
}

int store_root_remove(int root_fd, const char *root, enum store_root_kind kind, const char *name,
                      struct rx_error **err)
{
    if (kind == STORE_ROOT_NIX || !store_root_name_valid(name))
        return rx_error_set(err, EINVAL, "'%s' is not a name for a runix root", name);
    struct rx_error *e = NULL;
    _cleanup_close_ int kfd = kind_dir_open(root_fd, root, kind, false, &e);
    if (kfd < 0) {
        if (e->code != ENOENT) {
            *err = e;
            return -1;
        }
        rx_error_free(e);
        return 1;
    }
    const char *kn = store_root_kind_name(kind);
    int nfd = openat(kfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (nfd < 0) {
        if (errno == ENOENT)
            return 1;
        return rx_error_errno(err, "cannot open root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    }
    DIR *dir = fdopendir(nfd);
    if (!dir) {
        close(nfd);
        return rx_error_errno(err, "cannot read root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    }
    struct dirent *e2;
    while ((e2 = readdir(dir)))
        if (strcmp(e2->d_name, ".") != 0 && strcmp(e2->d_name, "..") != 0)
            unlinkat(dirfd(dir), e2->d_name, 0);
    closedir(dir);
    if (unlinkat(kfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return rx_error_errno(err, "cannot remove root '%s/" STORE_ROOTS_DIR "/%s/%s'", root, kn,
                              name);
    return 0;
}

/* Scanning. */

struct scan {
    struct store_root *roots;
    size_t n, cap;
    const char *root; /* the store root, for host paths of Nix's indirect roots */
};

static struct store_root *scan_add(struct scan *s, enum store_root_kind kind, char *name,
                                   char *where, int64_t last_used)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->roots = xrealloc(s->roots, s->cap * sizeof *s->roots);
    }
    struct store_root *r = &s->roots[s->n++];
    *r = (struct store_root){.kind = kind, .name = name, .where = where, .last_used = last_used};
    return r;
}

static void add_target(struct store_root *r, const struct store_path *p)
{
    for (size_t i = 0; i < r->ntargets; i++)
        if (store_path_cmp(&r->targets[i], p) == 0)
            return;
    r->targets = xrealloc(r->targets, (r->ntargets + 1) * sizeof *r->targets);
    r->targets[r->ntargets++] = *p;
}

/* The store path a link target names: "/nix/store/<basename>[/...]". */
static bool target_path(const char *t, struct store_path *p)
{
    const char *sub;
    return strncmp(t, STORE_DIR "/", STORE_DIR_LEN + 1) == 0 &&
           store_path_parse_with_subpath(t, strlen(t), p, &sub, NULL) == 0;
}

static char *read_link_at(int dfd, const char *name)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(dfd, name, buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = '\0';
    return xstrdup(buf);
}

/* A runix root directory NAME (open as nfd) of kind. */
static void scan_runix_root(struct scan *s, int nfd, enum store_root_kind kind, const char *name)
{
    struct stat st;
    if (fstat(nfd, &st) < 0)
        return;
    DIR *dir = fdopendir(nfd);
    if (!dir) {
        close(nfd);
        return;
    }
    struct store_root *r =
        scan_add(s, kind, store_root_name_decode(name),
                 xasprintf(STORE_ROOTS_DIR "/%s/%s", store_root_kind_name(kind), name),
                 (int64_t)st.st_mtim.tv_sec);
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        _cleanup_free_ char *t = read_link_at(dirfd(dir), e->d_name);
        struct store_path p;
        if (t && target_path(t, &p))
            add_target(r, &p);
    }
    closedir(dir);
    if (r->ntargets == 0) { /* keeps nothing: not a root (a half-made one, say) */
        free(r->name);
        free(r->where);
        s->n--;
    }
}

static void scan_runix(struct scan *s, int root_fd, const char *root)
{
    for (int k = STORE_ROOT_AUTO; k <= STORE_ROOT_INSTALLED; k++) {
        struct rx_error *e = NULL;
        int kfd = kind_dir_open(root_fd, root, (enum store_root_kind)k, false, &e);
        if (kfd < 0) {
            rx_error_free(e);
            continue;
        }
        DIR *dir = fdopendir(kfd);
        if (!dir) {
            close(kfd);
            continue;
        }
        struct dirent *de;
        while ((de = readdir(dir))) {
            if (!store_root_name_valid(de->d_name))
                continue;
            int nfd = openat(dirfd(dir), de->d_name,
                             O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nfd >= 0)
                scan_runix_root(s, nfd, (enum store_root_kind)k, de->d_name);
        }
        closedir(dir);
    }
}

/*
 * A Nix root at rel (relative to the store root, open as root_fd): as Nix's
 * collector reads gcroots/ and profiles/, recursing into directories
 * without following symlinks to them.
 */
static void scan_nix(struct scan *s, int dfd, const char *name, const char *rel, int depth)
{
    struct stat st;
    if (depth > 32 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    struct store_path p;
    if (S_ISDIR(st.st_mode)) {
        if (depth == 1 && strcmp(rel, STORE_ROOTS_DIR) == 0)
            return; /* runix's own, read by kind */
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
        if (!dir) {
            if (fd >= 0)
                close(fd);
            return;
        }
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            _cleanup_free_ char *sub = xasprintf("%s/%s", rel, e->d_name);
            scan_nix(s, dirfd(dir), e->d_name, sub, depth + 1);
        }
        closedir(dir);
    } else if (S_ISLNK(st.st_mode)) {
        _cleanup_free_ char *t = read_link_at(dfd, name);
        if (!t)
            return;
        if (!target_path(t, &p)) {
            /* Indirect: a link to a link into the store, on the host (as Nix reads it). */
            _cleanup_free_ char *host = NULL;
            if (t[0] == '/') {
                host = xstrdup(t);
            } else {
                const char *slash = strrchr(rel, '/');
                int dl = slash ? (int)(slash - rel) : 0;
                host = xasprintf("%s/%.*s/%s", s->root, dl, rel, t);
            }
            struct stat hs;
            char buf[PATH_MAX];
            ssize_t n;
            if (lstat(host, &hs) < 0 || !S_ISLNK(hs.st_mode) ||
                (n = readlink(host, buf, sizeof buf - 1)) < 0)
                return;
            buf[n] = '\0';
            if (!target_path(buf, &p))
                return;
        }
        struct store_root *r = scan_add(s, STORE_ROOT_NIX, xstrdup(rel), xstrdup(rel),
                                        (int64_t)st.st_mtim.tv_sec);
        add_target(r, &p);
    } else if (S_ISREG(st.st_mode)) {
        if (store_path_parse_basename(name, strlen(name), &p, NULL) < 0)
            return;
        struct store_root *r = scan_add(s, STORE_ROOT_NIX, xstrdup(rel), xstrdup(rel),
                                        (int64_t)st.st_mtim.tv_sec);
        add_target(r, &p);
    }
}

static int cmp_root(const void *a, const void *b)
{
    const struct store_root *x = a, *y = b;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_path(const void *a, const void *b)
{
    return store_path_cmp(a, b);
}

int store_roots_scan(int root_fd, const char *root, struct store_root **out, size_t *n,
                     struct rx_error **err)
{
    (void)err;
    struct scan s = {.root = root};
    scan_runix(&s, root_fd, root);
    scan_nix(&s, root_fd, "nix/var/nix/gcroots", "nix/var/nix/gcroots", 0);
    scan_nix(&s, root_fd, "nix/var/nix/profiles", "nix/var/nix/profiles", 0);
    for (size_t i = 0; i < s.n; i++)
        qsort(s.roots[i].targets, s.roots[i].ntargets, sizeof *s.roots[i].targets, cmp_path);
    if (s.n)
        qsort(s.roots, s.n, sizeof *s.roots, cmp_root);
    *out = s.roots;
    *n = s.n;
    return 0;
}

void store_roots_free(struct store_root *roots, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(roots[i].name);
        free(roots[i].where);
        free(roots[i].targets);
    }
    free(roots);
}
