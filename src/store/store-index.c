/* Closure indexes: reading and writing them (see store-index.h). */
#include "config.h"
#include "store-index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* An index larger than this is not ours: 1 MiB is ~6,000 paths. */
#define INDEX_MAX (1u << 20)

/* The caller's euid, asked once (runix never changes it); threads may race to ask. */
static uid_t my_uid(void)
{
    static uid_t me = (uid_t)-1;
    uid_t u = __atomic_load_n(&me, __ATOMIC_RELAXED);
    if (u == (uid_t)-1) {
        u = geteuid();
        __atomic_store_n(&me, u, __ATOMIC_RELAXED);
    }
    return u;
}

/* The trust rule for an object whose fstat is st (store_check_fd()). */
static int check_stat(const struct stat *sp, const char *root, const char *rel,
                      struct rx_error **err)
{
    const struct stat st = *sp;
    uid_t me = my_uid();
    if (st.st_uid != me && st.st_uid != 0)
        return rx_error_set(err, EPERM,
                            "store '%s' is not safe to use: '%s%s%s' belongs to uid %u, not to "
                            "you (uid %u) or root, who could make runix run anything; use a "
                            "store of your own (--store DIR), or have its owner give it to you "
                            "with 'chown -R'",
                            root, root, *rel ? "/" : "", rel, (unsigned)st.st_uid, (unsigned)me);
    /* A shared directory such as /tmp is no store, but a fine place for one. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (st.st_mode & S_ISVTX))
        return rx_error_set(err, EPERM,
                            "store '%s' is not safe to use: '%s%s%s' is a shared directory "
                            "(mode %04o) that other users can write to; use a directory of "
                            "your own in it, such as '%s%s%s/store'",
                            root, root, *rel ? "/" : "", rel, (unsigned)(st.st_mode & 07777),
                            root, *rel ? "/" : "", rel);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return rx_error_set(err, EPERM,
                            "store '%s' is not safe to use: '%s%s%s' is writable by %s (mode "
                            "%04o), who could make runix run anything; run 'chmod go-w "
                            "%s%s%s'",
                            root, root, *rel ? "/" : "", rel,
                            st.st_mode & S_IWOTH ? "other users" : "its group",
                            (unsigned)(st.st_mode & 07777), root, *rel ? "/" : "", rel);
    return 0;
}

int store_check_fd(int fd, const char *root, const char *rel, struct rx_error **err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return rx_error_errno(err, "cannot stat '%s%s%s'", root, *rel ? "/" : "", rel);
    return check_stat(&st, root, rel, err);
}

int store_root_open(const char *root, char **real, struct rx_error **err)
{
    *real = NULL;
    struct stat lst;
    if (lstat(root, &lst) < 0)
        return rx_error_errno(err, "cannot open store root '%s'", root);
    /* A link someone else owns could be pointed elsewhere: refuse it as such. */
    if (S_ISLNK(lst.st_mode) && lst.st_uid != my_uid() && lst.st_uid != 0)
        return rx_error_set(err, EPERM,
                            "store '%s' is not safe to use: it is a symlink that belongs to uid "
                            "%u, not to you or root, who could point it anywhere; use the "
                            "directory itself or a store of your own (--store DIR)",
                            root, (unsigned)lst.st_uid);
    char *r = realpath(root, NULL);
    if (!r)
        return rx_error_errno(err, "cannot resolve store root '%s'", root);
    int fd = open(r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rx_error_errno(err, "cannot open store root '%s'", r);
        free(r);
        return -1;
    }
    if (store_check_fd(fd, r, "", err) < 0) {
        close(fd);
        free(r);
        return -1;
    }
    *real = r;
    return fd;
}

/*
 * store_dir_open() from the component of rel that starts at rel + skip,
 * fd being the directory of what comes before it (rel names the whole in
 * messages).
 */
static int dir_open_from(int fd, const char *root, const char *rel, size_t skip, bool create,
                         struct rx_error **err)
{
    char path[PATH_MAX];
    size_t len = strlen(rel);
    if (len >= sizeof path)
        return rx_error_set(err, ENAMETOOLONG, "store path '%s' is too long", rel);
    memcpy(path, rel, len + 1);
    if (!path[skip]) { /* nothing to open: a descriptor of its own for the caller */
        int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        return d >= 0 ? d : rx_error_errno(err, "dup");
    }
    bool own = false; /* fd is the caller's until the first component is open */
    for (char *c = path + skip, *end; *c; c = end) {
        end = strchrnul(c, '/');
        bool last = !*end;
        *end = '\0';
        /* 0755 less the umask never lets anyone else write: the check below passes. */
        if (create && mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            rx_error_errno(err, "cannot create '%s/%s'", root, path);
            if (own)
                close(fd);
            return -1;
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (own)
            close(fd);
        own = true;
        if (next < 0)
            return rx_error_errno(
                err, "cannot open '%s/%s' (it must be a directory, not a symlink)", root, path);
        if (store_check_fd(next, root, path, err) < 0) {
            close(next);
            return -1;
        }
        fd = next;
        if (!last)
            *end++ = '/';
    }
    return fd;
}

int store_dir_open(int root_fd, const char *root, const char *rel, bool create,
                   struct rx_error **err)
{
    return dir_open_from(root_fd, root, rel, 0, create, err);
}

/* Parse a decimal number ending in `stop`; advances *s past it. */
static bool parse_num(char **s, char stop, unsigned long long *v)
{
    char *c = *s;
    unsigned long long n = 0;
    if (*c < '0' || *c > '9' || (c[0] == '0' && c[1] != stop))
        return false;
    for (; *c >= '0' && *c <= '9'; c++) {
        if (n > (ULLONG_MAX - 9) / 10)
            return false;
        n = n * 10 + (unsigned long long)(*c - '0');
    }
    if (*c != stop)
        return false;
    *v = n;
    *s = c + 1;
    return true;
}

/*
 * One line: "<basename> <dev> <ino> <ctime s> <ctime ns>", the path as
 * store_index_save() saw it.  True if it is well formed and the path in
 * nix/store (sfd) still is that very inode, unchanged since.
 */
static bool line_holds(int sfd, char *line, struct store_path *sp)
{
    char *sep = strchr(line, ' ');
    if (!sep || store_path_parse_basename(line, (size_t)(sep - line), sp, NULL) < 0)
        return false;
    *sep = '\0';
    char *f = sep + 1;
    unsigned long long dev, ino, sec, nsec;
    if (!parse_num(&f, ' ', &dev) || !parse_num(&f, ' ', &ino) || !parse_num(&f, ' ', &sec) ||
        !parse_num(&f, '\0', &nsec))
        return false;
    struct stat sb;
    return fstatat(sfd, line, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
           (unsigned long long)sb.st_dev == dev && (unsigned long long)sb.st_ino == ino &&
           (unsigned long long)sb.st_ctim.tv_sec == sec &&
           (unsigned long long)sb.st_ctim.tv_nsec == nsec;
}

/* The index's file name: "<basename>", or "<basename>@<tag>". */
static void index_name(const struct store_path *p, const char *tag, char *out, size_t outsz)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    snprintf(out, outsz, "%s%s%s", base, tag ? "@" : "", tag ? tag : "");
}

#define INDEX_NAME_MAX (STORE_BASENAME_MAX + 1 + STORE_INDEX_TAG_MAX + 1)

int store_index_read(int root_fd, const char *root, const struct store_path *p,
                     struct store_path **out, size_t *n, struct rx_error **err)
{
    return store_index_read_tagged(root_fd, root, NULL, p, out, n, err);
}

int store_index_save(int root_fd, const char *root, const struct store_path *p,
                     const struct store_path *closure, size_t n, struct rx_error **err)
{
    return store_index_save_tagged(root_fd, root, NULL, p, closure, n, err);
}

int store_index_read_tagged(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, struct store_path **out, size_t *n,
                            struct rx_error **err)
{
    return store_index_read_locked(root_fd, root, tag, p, out, n, NULL, err);
}

/* Move fd (close-on-exec) to STORE_INDEX_LOCK_FD_MIN or above, if it can be. */
static int move_high(int fd)
{
    int high = fcntl(fd, F_DUPFD_CLOEXEC, STORE_INDEX_LOCK_FD_MIN);
    if (high < 0) /* a low RLIMIT_NOFILE: the fd stays where it is */
        return fd;
    close(fd);
    return high;
}

int store_index_read_locked(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, struct store_path **out, size_t *n,
                            int *lock_fd, struct rx_error **err)
{
    *out = NULL;
    *n = 0;
    if (lock_fd)
        *lock_fd = -1;
    struct rx_error *e = NULL;
    /* nix/ once, for both: the warm start pays for every syscall. */
    _cleanup_close_ int nfd = store_dir_open(root_fd, root, "nix", false, &e);
    _cleanup_close_ int sfd =
        nfd < 0 ? -1 : dir_open_from(nfd, root, "nix/store", strlen("nix/"), false, &e);
    _cleanup_close_ int dfd =
        sfd < 0 ? -1 : dir_open_from(nfd, root, STORE_INDEX_DIR, strlen("nix/"), false, &e);
    if (dfd < 0) {
        /* Missing is for the database to sort out; unsafe is refused here. */
        if (e->code == EPERM) {
            if (err) {
                rx_error_clear(err);
                *err = e;
            } else {
                rx_error_clear(&e);
            }
            return -1;
        }
        rx_error_clear(&e);
        return 1;
    }
    if (tag && strlen(tag) > STORE_INDEX_TAG_MAX)
        return 1;
    char base[INDEX_NAME_MAX];
    index_name(p, tag, base, sizeof base);
    _cleanup_close_ int fd = openat(dfd, base, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return 1;
    /*
     * The lock before the content: once it is held, no collector deletes
     * what the index lists (the protocol above).  One a collector holds is
     * being collected; one it unlinked after we opened it may be gone.
     * A file system without flock (ENOLCK) protects nothing but still runs.
     */
    if (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno != ENOLCK && errno != EOPNOTSUPP)
        return 1;
    struct stat st;
    _cleanup_free_ char *rel = xasprintf(STORE_INDEX_DIR "/%s", base);
    if (fstat(fd, &st) < 0)
        return rx_error_errno(err, "cannot stat '%s/%s'", root, rel);
    if (check_stat(&st, root, rel, err) < 0)
        return -1;
    if (st.st_nlink == 0)
        return 1;
    struct rx_buf b = RX_BUF_INIT(INDEX_MAX);
    if (read_fd(fd, base, &b, NULL) < 0 || b.len == 0) {
        rx_buf_release(&b);
        return 1;
    }
    size_t len;
    _cleanup_free_ char *text = rx_buf_detach(&b, &len);
    if (memchr(text, '\0', len) || text[len - 1] != '\n')
        return 1;

    struct store_path *v = NULL;
    size_t count = 0, cap = 0;
    bool has_root = false;
    char *line = text;
    char *nl = strchr(line, '\n');
    *nl = '\0';
    if (strcmp(line, STORE_INDEX_HEADER) != 0)
        return 1;
    for (line = nl + 1; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0';
        struct store_path sp;
        if (!line_holds(sfd, line, &sp)) {
            free(v);
            return 1;
        }
        has_root |= store_path_cmp(&sp, p) == 0;
        if (count == cap) {
            cap = cap ? 2 * cap : 32;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[count++] = sp;
    }
    if (!has_root) {
        free(v);
        return 1;
    }
    *out = v;
    *n = count;
    if (lock_fd) {
        *lock_fd = move_high(fd);
        fd = -1;
    }
    return 0;
}

/* A line per path: basename, device, inode, ctime (s, ns) */
#define LINE_MAX_LEN (STORE_BASENAME_MAX + 4 * 21 + 1)

int store_index_save_tagged(int root_fd, const char *root, const char *tag,
                            const struct store_path *p, const struct store_path *closure,
                            size_t n, struct rx_error **err)
{
    if (tag && (strlen(tag) > STORE_INDEX_TAG_MAX || strchr(tag, '/')))
        BUG("bad closure index tag '%s'", tag);
    char base[INDEX_NAME_MAX];
    index_name(p, tag, base, sizeof base);
    _cleanup_close_ int sfd = store_dir_open(root_fd, root, "nix/store", false, err);
    if (sfd < 0)
        return rx_error_wrap(err, "closure index of %s", base);
    size_t cap = sizeof STORE_INDEX_HEADER + 1 + n * LINE_MAX_LEN + 1, k = 0;
    _cleanup_free_ char *text = xmalloc(cap);
    k += (size_t)snprintf(text, cap, "%s\n", STORE_INDEX_HEADER);
    for (size_t i = 0; i < n; i++) {
        char b[STORE_BASENAME_MAX + 1];
        struct stat sb;
        store_path_basename(&closure[i], b);
        if (fstatat(sfd, b, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            return rx_error_errno(err, "closure index of %s: cannot stat '%s'", base, b);
        k += (size_t)snprintf(text + k, cap - k, "%s %llu %llu %llu %llu\n", b,
                              (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino,
                              (unsigned long long)sb.st_ctim.tv_sec,
                              (unsigned long long)sb.st_ctim.tv_nsec);
    }
    _cleanup_close_ int dfd = store_dir_open(root_fd, root, STORE_INDEX_DIR, true, err);
    if (dfd < 0 || write_file_atomic_at(dfd, base, text, true, err) < 0)
        return rx_error_wrap(err, "closure index of %s", base);
    return 0;
}
