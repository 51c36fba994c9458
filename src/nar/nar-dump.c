/* Serialising a file tree as a NAR, as nix-store --dump does. */
#include "config.h"
#include "nar-dump.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nar-reader.h"
#include "util-io.h"
#include "util-mem.h"
#include "banned.h"

#define OUT_BUF_SIZE (1 << 16)
#define FILE_CHUNK (1 << 18)
/* A bound on nesting so that a pathological tree cannot exhaust the stack. */
#define DUMP_MAX_DEPTH 4096

struct dumper {
    nar_sink_fn sink;
    void *ctx;
    unsigned char *buf; /* owned, OUT_BUF_SIZE */
    size_t len;
    unsigned char *chunk; /* owned, FILE_CHUNK */
    nar_node_fn node;     /* or NULL */
    void *node_ctx;
    char *rel; /* owned when node is set: the current node's path below the root */
    size_t rel_len, rel_cap;
};

/* Append "/name" (or "name" at the root) to d->rel; returns the old length. */
static size_t rel_push(struct dumper *d, const char *name)
{
    size_t old = d->rel_len, n = strlen(name), need = old + n + 2;
    if (need > d->rel_cap) {
        d->rel_cap = need * 2;
        d->rel = xrealloc(d->rel, d->rel_cap);
    }
    if (old)
        d->rel[d->rel_len++] = '/';
    memcpy(d->rel + d->rel_len, name, n + 1);
    d->rel_len += n;
    return old;
}

static int flush(struct dumper *d, struct rx_error **err)
{
    if (d->len == 0)
        return 0;
    int r = d->sink(d->ctx, d->buf, d->len, err);
    d->len = 0;
    return r;
}

static int put(struct dumper *d, const void *p, size_t n, struct rx_error **err)
{
    if (n > OUT_BUF_SIZE - d->len) {
        if (flush(d, err) < 0)
            return -1;
        if (n > OUT_BUF_SIZE)
            return d->sink(d->ctx, p, n, err);
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

static int put_u64(struct dumper *d, uint64_t v, struct rx_error **err)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return put(d, b, 8, err);
}

static int put_pad(struct dumper *d, uint64_t len, struct rx_error **err)
{
    static const unsigned char zero[8];
    size_t pad = (size_t)((8 - len % 8) % 8);
    return pad ? put(d, zero, pad, err) : 0;
}

static int put_str(struct dumper *d, const char *s, size_t n, struct rx_error **err)
{
    if (put_u64(d, n, err) < 0 || put(d, s, n, err) < 0)
        return -1;
    return put_pad(d, n, err);
}

#define PUT(d, lit, err) put_str(d, lit, sizeof lit - 1, err)

static int dump_node(struct dumper *d, int dirfd, const char *name, unsigned char dtype,
                     int depth, struct rx_error **err);

/* The regular file open as fd, whose fstat is fst. */
static int dump_regular_fd(struct dumper *d, int fd, const char *name, const struct stat *fst,
                           struct rx_error **err)
{
    uint64_t size = (uint64_t)fst->st_size;

    if (PUT(d, "type", err) < 0 || PUT(d, "regular", err) < 0)
        return -1;
    if ((fst->st_mode & S_IXUSR) && (PUT(d, "executable", err) < 0 || put_str(d, "", 0, err) < 0))
        return -1;
    if (PUT(d, "contents", err) < 0 || put_u64(d, size, err) < 0)
        return -1;
    /* Read-ahead advice pays for itself only on large files; each call is a system call. */
    if (size >= FILE_CHUNK)
        posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    uint64_t left = size;
    bool eof_seen = false; /* a read asked for one byte more than was left, and got none */
    while (left > 0) {
        size_t want = left < FILE_CHUNK ? (size_t)left : FILE_CHUNK;
        ssize_t n;
        if (want < OUT_BUF_SIZE - d->len) {
            /*
             * Small files go straight into the output buffer, asking for a
             * byte more than is left: a short answer at the end then proves
             * the file did not grow, with no read of its own.
             */
            n = read_retry(fd, d->buf + d->len, want + 1);
            if (n > (ssize_t)want)
                return rx_error_set(err, EAGAIN, "'%s' grew while it was being read", name);
            if (n > 0)
                d->len += (size_t)n;
            eof_seen = n == (ssize_t)want && (uint64_t)n == left;
        } else {
            if (flush(d, err) < 0)
                return -1;
            n = read_retry(fd, d->chunk, want);
            if (n > 0 && d->sink(d->ctx, d->chunk, (size_t)n, err) < 0)
                return -1;
        }
        if (n < 0)
            return rx_error_errno(err, "cannot read '%s'", name);
        if (n == 0)
            return rx_error_set(err, EAGAIN, "'%s' shrank while it was being read", name);
        left -= (uint64_t)n;
    }
    char extra;
    if (!eof_seen && read_retry(fd, &extra, 1) > 0)
        return rx_error_set(err, EAGAIN, "'%s' grew while it was being read", name);
    return put_pad(d, size, err);
}

static int dump_regular(struct dumper *d, int dirfd, const char *name, const struct stat *st,
                        struct rx_error **err)
{
    _cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open '%s'", name);
    struct stat fst;
    if (fstat(fd, &fst) < 0)
        return rx_error_errno(err, "cannot stat '%s'", name);
    if (!S_ISREG(fst.st_mode) || fst.st_ino != st->st_ino)
        return rx_error_set(err, EAGAIN, "'%s' changed while it was being read", name);
    return dump_regular_fd(d, fd, name, &fst, err);
}

static int dump_symlink(struct dumper *d, int dirfd, const char *name, struct rx_error **err)
{
    char target[NAR_TARGET_MAX + 2];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target);
    if (n < 0)
        return rx_error_errno(err, "cannot read symlink '%s'", name);
    if ((size_t)n > NAR_TARGET_MAX)
        return rx_error_set(err, ENAMETOOLONG, "symlink '%s' has a target longer than %d bytes",
                            name, NAR_TARGET_MAX);
    if (PUT(d, "type", err) < 0 || PUT(d, "symlink", err) < 0 || PUT(d, "target", err) < 0)
        return -1;
    return put_str(d, target, (size_t)n, err);
}

/* Each name is kept as its readdir d_type byte, then the name. */
static int cmp_names(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: exactly the NAR's byte order. */
    return strcmp(*(char *const *)a + 1, *(char *const *)b + 1);
}

static int dump_directory(struct dumper *d, int parent_fd, const char *name, int depth,
                          struct rx_error **err)
{
    if (depth >= DUMP_MAX_DEPTH)
        return rx_error_set(err, ELOOP, "directories nested deeper than %d levels at '%s'",
                            DUMP_MAX_DEPTH, name);
    int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open directory '%s'", name);
    DIR *dir = fdopendir(fd);
    if (!dir) {
        close(fd);
        return rx_error_errno(err, "cannot read directory '%s'", name);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int ret = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(dir);
        if (!e) {
            if (errno)
                ret = rx_error_errno(err, "cannot read directory '%s'", name);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            names = xrealloc(names, cap * sizeof *names);
        }
        size_t len = strlen(e->d_name);
        char *t = xmalloc(len + 2);
        t[0] = (char)e->d_type;
        memcpy(t + 1, e->d_name, len + 1);
        names[n++] = t;
    }
    if (ret == 0) {
        if (n > 1)
            qsort(names, n, sizeof *names, cmp_names);
        ret = PUT(d, "type", err) < 0 || PUT(d, "directory", err) < 0 ? -1 : 0;
    }
    for (size_t i = 0; ret == 0 && i < n; i++) {
        const char *nm = names[i] + 1;
        size_t old = d->node ? rel_push(d, nm) : 0;
        if (PUT(d, "entry", err) < 0 || PUT(d, "(", err) < 0 || PUT(d, "name", err) < 0 ||
            put_str(d, nm, strlen(nm), err) < 0 || PUT(d, "node", err) < 0 ||
            dump_node(d, dirfd(dir), nm, (unsigned char)names[i][0], depth + 1, err) < 0 ||
            PUT(d, ")", err) < 0) {
            rx_error_wrap(err, "%s", name);
            ret = -1;
        }
        if (d->node) {
            d->rel_len = old;
            d->rel[old] = '\0';
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(dir);
    return ret;
}

static int dump_node(struct dumper *d, int dirfd, const char *name, unsigned char dtype,
                     int depth, struct rx_error **err)
{
    struct stat st;
    if (dtype == DT_REG) {
        /*
         * readdir said a regular file: open it first and fstat what was
         * opened, saving the lstat of every file.  O_NONBLOCK and O_NOCTTY
         * in case it has been replaced meanwhile (a FIFO would block, a
         * terminal would become ours); anything but a regular file is
         * closed again and looked at as any other entry.
         */
        int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            if (d->node)
                d->node(d->node_ctx, d->rel, &st);
            int r = PUT(d, "(", err) < 0 ? -1 : dump_regular_fd(d, fd, name, &st, err);
            close(fd);
            return r < 0 ? -1 : PUT(d, ")", err);
        }
        if (fd >= 0)
            close(fd);
    }
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot stat '%s'", name);
    if (d->node)
        d->node(d->node_ctx, d->rel, &st);
    if (PUT(d, "(", err) < 0)
        return -1;
    int r;
    if (S_ISREG(st.st_mode))
        r = dump_regular(d, dirfd, name, &st, err);
    else if (S_ISLNK(st.st_mode))
        r = dump_symlink(d, dirfd, name, err);
    else if (S_ISDIR(st.st_mode))
        r = dump_directory(d, dirfd, name, depth, err);
    else
        r = rx_error_set(err, RX_EUNSUPPORTED,
                         "'%s' has an unsupported type (only files, directories and symlinks)",
                         name);
    if (r < 0)
        return -1;
    return PUT(d, ")", err);
}

int nar_dump_at(int dirfd, const char *name, nar_sink_fn sink, void *ctx,
                struct rx_error **err)
{
    return nar_dump_at_visit(dirfd, name, sink, ctx, NULL, NULL, err);
}

int nar_dump_at_visit(int dirfd, const char *name, nar_sink_fn sink, void *ctx, nar_node_fn node,
                      void *node_ctx, struct rx_error **err)
{
    struct dumper d = {.sink = sink, .ctx = ctx, .node = node, .node_ctx = node_ctx};
    if (node) {
        d.rel_cap = 256;
        d.rel = xmalloc(d.rel_cap);
        d.rel[0] = '\0';
    }
    d.buf = xmalloc(OUT_BUF_SIZE);
    d.chunk = xmalloc(FILE_CHUNK);
    int r = PUT(&d, NAR_MAGIC, err);
    if (r == 0)
        r = dump_node(&d, dirfd, name, DT_UNKNOWN, 0, err);
    if (r == 0)
        r = flush(&d, err);
    free(d.buf);
    free(d.chunk);
    free(d.rel);
    return r;
}

int nar_dump_path(const char *path, nar_sink_fn sink, void *ctx, struct rx_error **err)
{
    return nar_dump_at(AT_FDCWD, path, sink, ctx, err);
}

struct hash_sink {
    struct sha256_ctx sha;
    uint64_t size;
};

static int hash_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)err;
    struct hash_sink *h = ctx;
    sha256_update(&h->sha, data, len);
    h->size += len;
    return 0;
}

int nar_hash_path(const char *path, struct hash *hash, uint64_t *size, struct rx_error **err)
{
    struct hash_sink h = {.size = 0};
    sha256_init(&h.sha);
    if (nar_dump_path(path, hash_sink, &h, err) < 0)
        return -1;
    sha256_final(&h.sha, hash);
    if (size)
        *size = h.size;
    return 0;
}
