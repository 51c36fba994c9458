/* File-system helpers relative to directory fds: rm -rf, atomic writes, mkdir -p. */
#include "config.h"
#include "util-fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* Empty the directory open as fd (which this takes over). */
static int empty_dir(int fd, const char *name, struct rx_error **err)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return rx_error_errno(err, "cannot read directory '%s'", name);
    }
    int ret = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                ret = rx_error_errno(err, "cannot read directory '%s'", name);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (rm_rf_at(dirfd(d), e->d_name, err) < 0) {
            ret = -1;
            break;
        }
    }
    closedir(d);
    return ret;
}

int rm_rf_at(int dirfd, const char *name, struct rx_error **err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return rx_error_errno(err, "cannot stat '%s'", name);
    }
    if (S_ISDIR(st.st_mode)) {
        if ((st.st_mode & 0700) != 0700 && fchmodat(dirfd, name, st.st_mode | 0700, 0) < 0)
            return rx_error_errno(err, "cannot make '%s' writable", name);
        int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return rx_error_errno(err, "cannot open directory '%s'", name);
        if (empty_dir(fd, name, err) < 0)
            return -1;
        if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            return rx_error_errno(err, "cannot remove directory '%s'", name);
        return 0;
    }
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
        return rx_error_errno(err, "cannot remove '%s'", name);
    return 0;
}

/* Tries at a fresh name before giving up: only someone planting names collides. */
#define TMP_TRIES 16

int write_file_atomic_at(int dirfd, const char *name, const char *text, bool durable,
                         struct rx_error **err)
{
    return write_data_atomic_at(dirfd, name, text, strlen(text), 0644, durable, err);
}

int write_data_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
                         bool durable, struct rx_error **err)
{
    char tmp[PATH_MAX];
    int fd = -1;
    for (int i = 0; i < TMP_TRIES && fd < 0; i++) {
        /* An unguessable name, created here and now or not at all: whatever else sits
         * at it (a symlink, someone's file) is neither followed nor truncated. */
        uint64_t r;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            return rx_error_errno(err, "cannot get random bytes for a name beside '%s'", name);
        if ((size_t)snprintf(tmp, sizeof tmp, "%s.%016llx.tmp", name, (unsigned long long)r) >=
            sizeof tmp)
            return rx_error_set(err, RX_EFORMAT, "file name '%s' is too long", name);
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            return rx_error_errno(err, "cannot create '%s'", tmp);
    }
    if (fd < 0)
        return rx_error_errno(err, "cannot create a file beside '%s'", name);
    if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
        rx_error_errno(err, "cannot write '%s'", tmp);
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    if (close(fd) < 0) {
        rx_error_errno(err, "cannot write '%s'", tmp);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    if (renameat(dirfd, tmp, dirfd, name) < 0) {
        rx_error_errno(err, "cannot rename '%s' to '%s'", tmp, name);
        unlinkat(dirfd, tmp, 0);
        return -1;
    }
    return 0;
}

int mkdir_p_at(int dirfd, const char *rel, int *out_fd, struct rx_error **err)
{
    _cleanup_free_ char *copy = xstrdup(rel);
    int fd = dup(dirfd);
    if (fd < 0)
        return rx_error_errno(err, "dup");
    char *save = NULL;
    for (char *c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
        if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
            close(fd);
            return rx_error_errno(err, "cannot create '%s'", rel);
        }
        int next = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0)
            return rx_error_errno(err, "cannot open '%s' (it must be a directory, not a symlink)",
                                  rel);
        fd = next;
    }
    *out_fd = fd;
    return 0;
}

int mkdir_p(const char *path, struct rx_error **err)
{
    return mkdir_p_mode(path, 0755, err);
}

int mkdir_p_mode(const char *path, mode_t mode, struct rx_error **err)
{
    _cleanup_free_ char *copy = xstrdup(path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, mode) < 0 && errno != EEXIST)
            return rx_error_errno(err, "cannot create '%s'", copy);
        *p = '/';
    }
    if (mkdir(copy, mode) < 0 && errno != EEXIST)
        return rx_error_errno(err, "cannot create '%s'", copy);
    return 0;
}

static int cmp_dir_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void dir_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int dir_names_at(int dirfd, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        errno = saved;
        return -1;
    }
    rewinddir(d); /* the dup shares dirfd's offset */
    size_t cap = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *names = xrealloc(*names, cap * sizeof **names);
        }
        (*names)[(*n)++] = xstrdup(e->d_name);
        errno = 0;
    }
    int saved = errno;
    closedir(d);
    if (saved) {
        dir_names_free(*names, *n);
        *names = NULL;
        *n = 0;
        errno = saved;
        return -1;
    }
    if (*n > 1)
        qsort(*names, *n, sizeof **names, cmp_dir_names);
    return 0;
}
