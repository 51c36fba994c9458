/* Walking store paths into tars and root file systems (export.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

mode_t export_mode(const struct stat *st)
{
    if (S_ISDIR(st->st_mode) || (S_ISREG(st->st_mode) && (st->st_mode & S_IXUSR)))
        return 0555;
    return 0444;
}

int export_walk(int dirfd, const char *name, const char *rel, export_visit_fn fn, void *ctx,
                struct rx_error **err)
{
    struct stat st;
    if (rx_interrupted)
        return rx_error_set(err, EINTR, "interrupted");
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot read '%s'", rel);
    if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
        return rx_error_set(err, RX_EFORMAT, "'%s' is not a file, directory or symlink", rel);
    if (fn(ctx, dirfd, name, rel, &st, false, err) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode))
        return 0;
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open the directory '%s'", rel);
    size_t n;
    char **names;
    if (dir_names_at(fd, &names, &n) < 0)
        return rx_error_errno(err, "cannot read the directory '%s'", rel);
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        if (r == 0) {
            _cleanup_free_ char *child = xasprintf("%s/%s", rel, names[i]);
            r = export_walk(fd, names[i], child, fn, ctx, err);
        }
        free(names[i]);
    }
    free(names);
    if (r < 0)
        return -1;
    return fn(ctx, dirfd, name, rel, &st, true, err);
}

/* readlinkat into a new string. */
static char *read_link(int dirfd, const char *name, const char *rel, struct rx_error **err)
{
    char buf[PATH_MAX];
    ssize_t n = readlinkat(dirfd, name, buf, sizeof buf);
    if (n < 0 || (size_t)n >= sizeof buf) {
        if (n >= 0)
            errno = ENAMETOOLONG;
        return rx_error_errno(err, "cannot read the symlink '%s'", rel), NULL;
    }
    return xstrndup(buf, (size_t)n);
}

static int tar_node(void *ctx, int dirfd, const char *name, const char *rel, const struct stat *st,
                    bool leaving, struct rx_error **err)
{
    struct tar_writer *w = ctx;
    if (leaving)
        return 0;
    if (S_ISDIR(st->st_mode))
        return tar_add_dir(w, rel, export_mode(st), err);
    if (S_ISLNK(st->st_mode)) {
        _cleanup_free_ char *target = read_link(dirfd, name, rel, err);
        return target ? tar_add_symlink(w, rel, target, err) : -1;
    }
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot read '%s'", rel);
    return tar_add_file_fd(w, rel, export_mode(st), (uint64_t)st->st_size, fd, err);
}

int export_tar_path(struct tar_writer *w, int store_fd, const char *base, struct rx_error **err)
{
    _cleanup_free_ char *rel = xasprintf("nix/store/%s", base);
    return export_walk(store_fd, base, rel, tar_node, w, err);
}

struct rootfs_ctx {
    int out_fd;
    size_t ncopied;
};

/* Copy a regular file the store cannot lend by hard link. */
static int copy_node(int dirfd, const char *name, const char *rel, const struct stat *st,
                     int out_fd, struct rx_error **err)
{
    _cleanup_close_ int in = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return rx_error_errno(err, "cannot read '%s'", rel);
    _cleanup_close_ int out =
        openat(out_fd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0)
        return rx_error_errno(err, "cannot create '%s'", rel);
    off_t left = st->st_size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EXDEV before Linux 5.19, EOPNOTSUPP, ...: copy by hand */
        left -= n;
    }
    char buf[1 << 16];
    while (left > 0) {
        ssize_t n = read_retry(in, buf, sizeof buf);
        if (n <= 0 || write_all(out, buf, (size_t)n) < 0) {
            if (n == 0)
                errno = EIO;
            return rx_error_errno(err, "cannot copy '%s'", rel);
        }
        left -= n;
    }
    if (fchmod(out, export_mode(st)) < 0)
        return rx_error_errno(err, "cannot set the mode of '%s'", rel);
    return 0;
}

static int rootfs_node(void *ctx, int dirfd, const char *name, const char *rel,
                       const struct stat *st, bool leaving, struct rx_error **err)
{
    struct rootfs_ctx *c = ctx;
    if (S_ISDIR(st->st_mode)) {
        /* Writable while it is filled, read-only as in the store once it is. */
        if (!leaving && mkdirat(c->out_fd, rel, 0755) < 0)
            return rx_error_errno(err, "cannot create '%s'", rel);
        if (leaving && fchmodat(c->out_fd, rel, 0555, 0) < 0)
            return rx_error_errno(err, "cannot set the mode of '%s'", rel);
        return 0;
    }
    if (S_ISLNK(st->st_mode)) {
        _cleanup_free_ char *target = read_link(dirfd, name, rel, err);
        if (!target)
            return -1;
        if (symlinkat(target, c->out_fd, rel) < 0)
            return rx_error_errno(err, "cannot create '%s'", rel);
        return 0;
    }
    if (linkat(dirfd, name, c->out_fd, rel, 0) == 0)
        return 0;
    /* Another file system, or a store of someone else's (fs.protected_hardlinks). */
    if (errno != EXDEV && errno != EPERM && errno != EACCES && errno != EMLINK)
        return rx_error_errno(err, "cannot link '%s'", rel);
    c->ncopied++;
    return copy_node(dirfd, name, rel, st, c->out_fd, err);
}

int export_rootfs(int store_fd, char *const *bases, size_t n, int out_fd, size_t *ncopied,
                  struct rx_error **err)
{
    struct rootfs_ctx c = {.out_fd = out_fd};
    if ((mkdirat(out_fd, "nix", 0755) < 0 && errno != EEXIST) ||
        (mkdirat(out_fd, "nix/store", 0755) < 0 && errno != EEXIST))
        return rx_error_errno(err, "cannot create 'nix/store'");
    for (size_t i = 0; i < n; i++) {
        _cleanup_free_ char *rel = xasprintf("nix/store/%s", bases[i]);
        if (export_walk(store_fd, bases[i], rel, rootfs_node, &c, err) < 0)
            return -1;
    }
    *ncopied = c.ncopied;
    return 0;
}
