/* Work dirs, installing finished trees into nix/store and removing what dead runs left. */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util-fs.h"
#include "util-mem.h"

#include "banned.h"

void store_tmp_clean_stale(struct store *s)
{
    int fd = dup(s->tmp_parent_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int l = store_lock_dir(s->tmp_parent_fd, e->d_name, false);
        if (l == -1 && errno == ENOTDIR) {
            unlinkat(s->tmp_parent_fd, e->d_name, 0);
            continue;
        }
        if (l < 0)
            continue;
        /* Its owner is gone: nobody else can be using it. */
        rm_rf_at(s->tmp_parent_fd, e->d_name, NULL);
        close(l);
    }
    closedir(d);
}

int store_tmp_fd(struct store *s, struct rx_error **err)
{
    if (s->tmp_fd >= 0)
        return s->tmp_fd;
    for (int tries = 0; tries < 100; tries++) {
        uint32_t rnd;
        if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
            rnd = (uint32_t)time(NULL) ^ (uint32_t)tries;
        char name[64];
        snprintf(name, sizeof name, "%ld-%08x", (long)getpid(), rnd);
        if (mkdirat(s->tmp_parent_fd, name, 0700) < 0) {
            if (errno == EEXIST)
                continue;
            return rx_error_errno(err, "cannot create a work dir in '%s/nix/var/runix/tmp'",
                                  s->root);
        }
        int fd = store_lock_dir(s->tmp_parent_fd, name, true);
        if (fd < 0)
            continue; /* removed by a cleaner between mkdir and lock */
        struct stat st;
        if (fstat(fd, &st) < 0 || st.st_nlink == 0) {
            close(fd);
            continue;
        }
        s->tmp_fd = fd;
        s->tmp_name = xstrdup(name);
        return fd;
    }
    return rx_error_set(err, EEXIST, "cannot create a work dir in '%s/nix/var/runix/tmp'", s->root);
}

int store_install(struct store *s, const char *name, const struct store_path *p,
                  struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    if (renameat(s->tmp_fd, name, s->store_fd, base) < 0)
        return rx_error_errno(err, "cannot move '%s' into '%s/nix/store'", base, s->root);
    return 0;
}

int store_remove_invalid(struct store *s, const struct store_path *p, struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return rx_error_errno(err, "cannot stat '%s/nix/store/%s'", s->root, base);
    }
    if (store_tmp_fd(s, err) < 0)
        return -1;
    /* Move it out of nix/store first, so it vanishes in one step. */
    char trash[64];
    snprintf(trash, sizeof trash, "trash-%u", s->trash_seq++);
    if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IWUSR))
        fchmodat(s->store_fd, base, 0755, 0);
    if (renameat(s->store_fd, base, s->tmp_fd, trash) < 0)
        return rx_error_errno(err, "cannot remove incomplete '%s/nix/store/%s'", s->root, base);
    return rm_rf_at(s->tmp_fd, trash, err);
}

int store_clean_leftovers(struct store *s, struct rx_error **err)
{
    int fd = dup(s->store_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return rx_error_errno(err, "cannot list '%s/nix/store'", s->root);
    }
    int ret = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct store_path p;
        size_t len = strlen(e->d_name);
        bool lock = len > 5 && strcmp(e->d_name + len - 5, ".lock") == 0;
        if (e->d_name[0] == '.' ||
            store_path_parse_basename(e->d_name, lock ? len - 5 : len, &p, NULL) < 0)
            continue;
        if (lock) {
            /* The lock file of a path that is neither there nor being made: stale. */
            char base[STORE_BASENAME_MAX + 1];
            store_path_basename(&p, base);
            struct stat st;
            int lfd;
            if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT &&
                store_is_valid(s, &p, NULL) == 0 && store_lock_path(s, &p, false, &lfd, NULL) == 1)
                store_unlock_path(s, &p, lfd);
            continue;
        }
        int v = store_is_valid(s, &p, err);
        if (v != 0) {
            if (v < 0) {
                ret = -1;
                break;
            }
            continue;
        }
        int lfd;
        int l = store_lock_path(s, &p, false, &lfd, err);
        if (l < 0) {
            ret = -1;
            break;
        }
        if (l == 0)
            continue; /* someone is creating it right now */
        v = store_is_valid(s, &p, err);
        if (v == 0 && store_remove_invalid(s, &p, err) < 0)
            v = -1;
        store_unlock_path(s, &p, lfd);
        if (v < 0) {
            ret = -1;
            break;
        }
    }
    closedir(d);
    return ret;
}
