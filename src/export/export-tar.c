/* A minimal, reproducible tar writer (export-tar.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "export-tar.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* The largest size ustar's 11 octal digits hold. */
#define USTAR_SIZE_MAX 077777777777ULL
#define USTAR_NAME_MAX 100

static const unsigned char zeros[TAR_BLOCK * 2];

void tar_writer_init(struct tar_writer *w, tar_sink_fn sink, void *ctx)
{
    w->sink = sink;
    w->ctx = ctx;
    w->size = 0;
}

static int emit(struct tar_writer *w, const void *data, size_t len, struct rx_error **err)
{
    if (len == 0)
        return 0;
    if (w->sink(w->ctx, data, len, err) < 0)
        return -1;
    w->size += len;
    return 0;
}

/* Zero bytes up to the next block boundary after `len` bytes of data. */
static int pad(struct tar_writer *w, uint64_t len, struct rx_error **err)
{
    size_t rest = (size_t)(len % TAR_BLOCK);
    return rest ? emit(w, zeros, TAR_BLOCK - rest, err) : 0;
}

static void octal(char *field, size_t width, uint64_t v)
{
    /* width - 1 digits and a NUL */
    snprintf(field, width, "%0*llo", (int)(width - 1), (unsigned long long)v);
}

static int header(struct tar_writer *w, char type, const char *name, mode_t mode, uint64_t size,
                  const char *link, struct rx_error **err)
{
    unsigned char h[TAR_BLOCK] = {0};
    char *b = (char *)h;
    memcpy(b, name, strnlen(name, USTAR_NAME_MAX));
    octal(b + 100, 8, mode & 07777);
    octal(b + 108, 8, 0);
    octal(b + 116, 8, 0);
    octal(b + 124, 12, size > USTAR_SIZE_MAX ? 0 : size);
    octal(b + 136, 12, TAR_MTIME);
    b[156] = type;
    if (link)
        memcpy(b + 157, link, strnlen(link, USTAR_NAME_MAX));
    memcpy(b + 257, "ustar", 6);
    memcpy(b + 263, "00", 2);
    memset(b + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof h; i++)
        sum += h[i];
    snprintf(b + 148, 8, "%06o", sum);
    b[155] = ' ';
    return emit(w, h, sizeof h, err);
}

/* Names and link targets longer than this are refused (Linux's PATH_MAX). */
#define TAR_PATH_MAX 4096
#define PAX_MAX (2 * (TAR_PATH_MAX + 32) + 64)

static size_t ndigits(size_t v)
{
    size_t n = 1;
    while (v >= 10)
        v /= 10, n++;
    return n;
}

/* Append one pax record "LEN key=value\n" (LEN counts itself) at buf + *used. */
static void pax_record(char *buf, size_t *used, const char *key, const char *value)
{
    size_t body = 1 + strlen(key) + 1 + strlen(value) + 1; /* " key=value\n" */
    size_t len = body + ndigits(body);
    if (ndigits(len) != ndigits(body))
        len = body + ndigits(len);
    *used += (size_t)snprintf(buf + *used, PAX_MAX - *used, "%zu %s=%s\n", len, key, value);
}

/* The pax header an entry needs (none for most). */
static int pax_header(struct tar_writer *w, const char *name, const char *link, uint64_t size,
                      struct rx_error **err)
{
    if (strlen(name) > TAR_PATH_MAX || (link && strlen(link) > TAR_PATH_MAX))
        return rx_error_set(err, ENAMETOOLONG, "'%.64s...' is too long a name for a tar entry",
                            name);
    char buf[PAX_MAX];
    size_t used = 0;
    if (strlen(name) > USTAR_NAME_MAX)
        pax_record(buf, &used, "path", name);
    if (link && strlen(link) > USTAR_NAME_MAX)
        pax_record(buf, &used, "linkpath", link);
    if (size > USTAR_SIZE_MAX) {
        char s[24];
        snprintf(s, sizeof s, "%llu", (unsigned long long)size);
        pax_record(buf, &used, "size", s);
    }
    if (used == 0)
        return 0;
    if (header(w, 'x', "PaxHeader", 0644, used, NULL, err) < 0 || emit(w, buf, used, err) < 0)
        return -1;
    return pad(w, used, err);
}

static int entry(struct tar_writer *w, char type, const char *name, mode_t mode, uint64_t size,
                 const char *link, struct rx_error **err)
{
    if (pax_header(w, name, link, size, err) < 0)
        return -1;
    return header(w, type, name, mode, size, link, err);
}

int tar_add_dir(struct tar_writer *w, const char *name, mode_t mode, struct rx_error **err)
{
    _cleanup_free_ char *n = xasprintf("%s/", name);
    return entry(w, '5', n, mode, 0, NULL, err);
}

int tar_add_symlink(struct tar_writer *w, const char *name, const char *target,
                    struct rx_error **err)
{
    return entry(w, '2', name, 0777, 0, target, err);
}

int tar_add_file_fd(struct tar_writer *w, const char *name, mode_t mode, uint64_t size, int fd,
                    struct rx_error **err)
{
    if (entry(w, '0', name, mode, size, NULL, err) < 0)
        return -1;
    char buf[1 << 16];
    for (uint64_t left = size; left > 0;) {
        ssize_t n = read_retry(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (n <= 0) {
            if (n == 0)
                return rx_error_set(err, RX_EFORMAT, "'%s' changed while it was read", name);
            return rx_error_errno(err, "cannot read '%s'", name);
        }
        if (emit(w, buf, (size_t)n, err) < 0)
            return -1;
        left -= (uint64_t)n;
    }
    return pad(w, size, err);
}

int tar_add_file_data(struct tar_writer *w, const char *name, mode_t mode, const void *data,
                      size_t len, struct rx_error **err)
{
    if (entry(w, '0', name, mode, len, NULL, err) < 0 || emit(w, data, len, err) < 0)
        return -1;
    return pad(w, len, err);
}

int tar_finish(struct tar_writer *w, struct rx_error **err)
{
    return emit(w, zeros, sizeof zeros, err);
}
