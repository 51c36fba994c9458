/* Locks: one per store path being created and one per live work dir (see store.h). */
#include "config.h"
#include "store.h"
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-signal.h"

#include "banned.h"

/* The lock file of p, "<basename>.lock" beside it, as Nix names it. */
static void lock_name(const struct store_path *p, char lock[static STORE_BASENAME_MAX + 8])
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    snprintf(lock, STORE_BASENAME_MAX + 8, "%s.lock", base);
}

/*
 * flock(LOCK_EX), retried when a signal interrupts it, unless that signal
 * asked runix to stop (util-signal.h): a waiting lock must not hold up a
 * fetch that was told to stop.
 */
static int lock_ex(int fd, bool wait)
{
    int r;
    while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR && !rx_interrupted)
        ;
    return r;
}

int store_lock_path(struct store *s, const struct store_path *p, bool wait, int *fd,
                    struct rx_error **err)
{
    char lock[STORE_BASENAME_MAX + 8];
    lock_name(p, lock);
    for (;;) {
        int l = openat(s->store_fd, lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (l < 0)
            return rx_error_errno(err, "cannot open lock '%s/nix/store/%s'", s->root, lock);
        if (lock_ex(l, wait) < 0) {
            int e = errno;
            close(l);
            if (e == EWOULDBLOCK)
                return 0;
            errno = e;
            return rx_error_errno(err, "cannot lock '%s/nix/store/%s'", s->root, lock);
        }
        /* The holder before us may have deleted the file: then lock anew. */
        struct stat st;
        if (fstat(l, &st) < 0) {
            close(l);
            return rx_error_errno(err, "cannot stat lock '%s'", lock);
        }
        if (st.st_nlink > 0) {
            *fd = l;
            return 1;
        }
        close(l);
    }
}

void store_unlock_path(struct store *s, const struct store_path *p, int fd)
{
    char lock[STORE_BASENAME_MAX + 8];
    lock_name(p, lock);
    unlinkat(s->store_fd, lock, 0);
    close(fd);
}

int store_flock(int fd, int op)
{
    int r;
    while ((r = flock(fd, op)) < 0 && errno == EINTR && !rx_interrupted)
        ;
    return r;
}

int store_lock_dir(int parent, const char *name, bool wait)
{
    int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (lock_ex(fd, wait) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return e == EWOULDBLOCK ? -2 : -1;
    }
    return fd;
}
