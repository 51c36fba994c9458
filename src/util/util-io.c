/* Small, EINTR-safe I/O helpers: whole writes, whole-file reads with a cap. */
#include "config.h"
#include "util-io.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "util-mem.h"

int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t read_retry(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

int read_fd(int fd, const char *what, struct rx_buf *b, struct rx_error **err)
{
    char chunk[65536];
    for (;;) {
        ssize_t r = read_retry(fd, chunk, sizeof chunk);
        if (r < 0)
            return rx_error_errno(err, "cannot read '%s'", what);
        if (r == 0)
            return 0;
        if (rx_buf_append(b, chunk, (size_t)r) < 0)
            return rx_error_set(err, RX_EFORMAT, "'%s' is larger than %zu bytes", what, b->max);
    }
}

int read_file(const char *path, struct rx_buf *b, struct rx_error **err)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open '%s'", path);
    return read_fd(fd, path, b, err);
}
