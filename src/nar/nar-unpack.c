/* Restoring a NAR into the file system with dirfd-relative writes. */
#include "config.h"
#include "nar-unpack.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "banned.h"

/*
 * Small files can be written and closed by a second thread while this one
 * parses and creates the next entries (nar_unpack_opts.helper_thread):
 * creating, writing and closing a file are separate system calls of
 * similar cost, so two cores finish a tree of many small files sooner.
 * The queue is bounded in entries (open fds) and bytes, so memory stays
 * bounded whatever the NAR holds, and the thread is woken for a batch of
 * files, not for each.
 */
#define SMALL_FILE_MAX (64 * 1024)
#define QUEUE_SLOTS 128
#define QUEUE_BYTES (2 * 1024 * 1024)
#define WAKE_SLOTS 32
#define WAKE_BYTES (256 * 1024)

struct pending {
    int fd;
    char *data; /* owned, or NULL if the contents were already written */
    size_t len;
};

struct writer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    struct pending q[QUEUE_SLOTS];
    size_t head, count, bytes;
    bool stop, waiting;
    bool canonical;
    int error; /* first errno seen, 0 if none */
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    static const struct timespec one[2] = {{1, 0}, {1, 0}};
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->count == 0 && !w->stop) {
            w->waiting = true;
            pthread_cond_wait(&w->nonempty, &w->mu);
            w->waiting = false;
        }
        if (w->count == 0)
            break;
        struct pending p = w->q[w->head];
        pthread_mutex_unlock(&w->mu);

        int e = 0;
        if (p.data && write_all(p.fd, p.data, p.len) < 0)
            e = errno;
        if (!e && w->canonical && futimens(p.fd, one) < 0)
            e = errno;
        if (close(p.fd) < 0 && !e)
            e = errno;
        free(p.data);

        pthread_mutex_lock(&w->mu);
        if (e && !w->error)
            w->error = e;
        w->head = (w->head + 1) % QUEUE_SLOTS;
        w->count--;
        w->bytes -= p.len;
        pthread_cond_signal(&w->nonfull);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* A started writer thread, or NULL if none could be started. */
static struct writer *writer_start(bool canonical)
{
    struct writer *w = xcalloc(1, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->nonempty, NULL);
    pthread_cond_init(&w->nonfull, NULL);
    w->canonical = canonical;
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->nonempty);
        pthread_cond_destroy(&w->nonfull);
        free(w);
        return NULL;
    }
    return w;
}

/* Queue fd (and its contents, taken over) for writing and closing; returns the first errno. */
static int writer_push(struct writer *w, int fd, char *data, size_t len)
{
    pthread_mutex_lock(&w->mu);
    while (w->count == QUEUE_SLOTS || (w->count > 0 && w->bytes + len > QUEUE_BYTES)) {
        pthread_cond_signal(&w->nonempty);
        pthread_cond_wait(&w->nonfull, &w->mu);
    }
    size_t tail = (w->head + w->count) % QUEUE_SLOTS;
    w->q[tail] = (struct pending){fd, data, len};
    w->count++;
    w->bytes += len;
    if (w->waiting && (w->count >= WAKE_SLOTS || w->bytes >= WAKE_BYTES))
        pthread_cond_signal(&w->nonempty);
    int e = w->error;
    pthread_mutex_unlock(&w->mu);
    return e;
}

/* Wait for every queued file to be written, free w; returns the first errno, or 0. */
static int writer_stop(struct writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->nonempty);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->nonempty);
    pthread_cond_destroy(&w->nonfull);
    int e = w->error;
    free(w);
    return e;
}

struct nar_unpacker {
    int parent_fd;              /* not owned */
    char *root_name;            /* owned */
    struct nar_unpack_opts opts;
    /*
     * The directories entered, root first: their names (owned; NULL for the
     * root) and fds, of which only the deepest DIR_FDS_OPEN are kept open
     * (the others are -1), so a deep NAR cannot use up the process's fds.
     */
    int *dirs;
    char **dir_names;
    size_t ndirs, dirs_cap;
    int file_fd;
    const char *file_name; /* of file_fd: namebuf or root_name */
    char *small;       /* owned: contents of the current small file */
    size_t small_len;
    struct writer *writer; /* owned; NULL when not started */
    bool no_writer;        /* it could not be started */
    bool root_created;
    char namebuf[NAR_NAME_MAX + 1];
};

static const struct timespec mtime_one[2] = {{1, 0}, {1, 0}};

/*
 * Directory fds one unpacker keeps open.  Deeper trees reopen a directory
 * from the root when they return to it: up to NAR_MAX_DEPTH openat() calls
 * at most once per DIR_FDS_OPEN levels climbed.
 */
#define DIR_FDS_OPEN 16

struct nar_unpacker *nar_unpacker_new(int parent_fd, const char *name,
                                      const struct nar_unpack_opts *opts)
{
    struct nar_unpacker *u = xcalloc(1, sizeof *u);
    u->parent_fd = parent_fd;
    u->root_name = xstrdup(name);
    u->opts = *opts;
    u->file_fd = -1;
    return u;
}

/* Should the next small file go to the writer thread?  It starts with the first. */
static bool want_writer(struct nar_unpacker *u)
{
    if (!u->opts.helper_thread || u->no_writer)
        return false;
    if (!u->writer) {
        u->writer = writer_start(u->opts.canonical);
        u->no_writer = !u->writer;
    }
    return u->writer != NULL;
}

/* Wait for the writer thread and report its first error. */
static int finish_writes(struct nar_unpacker *u, struct rx_error **err)
{
    if (!u->writer)
        return 0;
    int e = writer_stop(u->writer);
    u->writer = NULL;
    if (e) {
        errno = e;
        return rx_error_errno(err, "cannot write file");
    }
    return 0;
}

int nar_unpacker_finish(struct nar_unpacker *u, struct rx_error **err)
{
    return finish_writes(u, err);
}

bool nar_unpacker_created(const struct nar_unpacker *u)
{
    return u->root_created;
}

void nar_unpacker_free(struct nar_unpacker *u)
{
    if (!u)
        return;
    finish_writes(u, NULL);
    free(u->small);
    for (size_t i = 0; i < u->ndirs; i++) {
        if (u->dirs[i] >= 0)
            close(u->dirs[i]);
        free(u->dir_names[i]);
    }
    if (u->file_fd >= 0)
        close(u->file_fd);
    free(u->dirs);
    free(u->dir_names);
    free(u->root_name);
    free(u);
}

/* Where to create the node: its directory fd and NUL-terminated name. */
static void target(struct nar_unpacker *u, const char *name, size_t len, int *dfd,
                   const char **cname)
{
    if (!name) {
        *dfd = u->parent_fd;
        *cname = u->root_name;
        return;
    }
    memcpy(u->namebuf, name, len);
    u->namebuf[len] = '\0';
    *dfd = u->dirs[u->ndirs - 1];
    *cname = u->namebuf;
}

static int fix_mode(struct nar_unpacker *u, int fd, mode_t want, const char *name,
                    struct rx_error **err)
{
    if ((want & u->opts.umask) == 0)
        return 0;
    if (fchmod(fd, want) < 0)
        return rx_error_errno(err, "cannot set mode of '%s'", name);
    return 0;
}

static int on_dir_begin(void *ctx, const char *name, size_t len, struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    int dfd;
    const char *cname;
    target(u, name, len, &dfd, &cname);
    if (mkdirat(dfd, cname, u->opts.canonical ? 0755 : 0777) < 0)
        return rx_error_errno(err, "cannot create directory '%s'", cname);
    if (!name)
        u->root_created = true;
    int fd = openat(dfd, cname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return rx_error_errno(err, "cannot open directory '%s'", cname);
    if (u->ndirs == u->dirs_cap) {
        u->dirs_cap = u->dirs_cap ? u->dirs_cap * 2 : 16;
        u->dirs = xrealloc(u->dirs, u->dirs_cap * sizeof *u->dirs);
        u->dir_names = xrealloc(u->dir_names, u->dirs_cap * sizeof *u->dir_names);
    }
    u->dir_names[u->ndirs] = name ? xstrdup(cname) : NULL;
    u->dirs[u->ndirs++] = fd;
    if (u->ndirs > DIR_FDS_OPEN) {
        int *old = &u->dirs[u->ndirs - 1 - DIR_FDS_OPEN];
        if (*old >= 0)
            close(steal_fd(old));
    }
    return 0;
}

/* Open the directory entered at level i again, from the root (its fds below are closed). */
static int reopen_dir(struct nar_unpacker *u, size_t i, struct rx_error **err)
{
    int fd = openat(u->parent_fd, u->root_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    for (size_t k = 1; k <= i && fd >= 0; k++) {
        int next = openat(fd, u->dir_names[k], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(fd);
        errno = e;
        fd = next;
    }
    if (fd < 0)
        return rx_error_errno(err, "cannot open directory '%s' again",
                              i ? u->dir_names[i] : u->root_name);
    u->dirs[i] = fd;
    return 0;
}

static int on_dir_end(void *ctx, struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    int fd = u->dirs[--u->ndirs];
    free(u->dir_names[u->ndirs]);
    int r = 0;
    if (u->opts.canonical) {
        /* Read-only only now that the directory is complete. */
        mode_t mode = u->ndirs == 0 && u->opts.root_writable ? 0755 : 0555;
        if (fchmod(fd, mode) < 0 || futimens(fd, mtime_one) < 0)
            r = rx_error_errno(err, "cannot make directory read-only");
    }
    close(fd);
    if (r == 0 && u->ndirs > 0 && u->dirs[u->ndirs - 1] < 0)
        r = reopen_dir(u, u->ndirs - 1, err);
    return r;
}

static int on_file_begin(void *ctx, const char *name, size_t len, bool exec, uint64_t size,
                         uint64_t offset, struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    (void)offset;
    int dfd;
    const char *cname;
    target(u, name, len, &dfd, &cname);
    mode_t mode = u->opts.canonical ? (exec ? 0555 : 0444) : (exec ? 0777 : 0666);
    int fd = openat(dfd, cname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return rx_error_errno(err, "cannot create file '%s'", cname);
    if (!name)
        u->root_created = true;
    u->file_fd = fd;
    u->file_name = cname;
    if (u->opts.canonical && fix_mode(u, fd, mode, cname, err) < 0)
        return -1;
    if (size <= SMALL_FILE_MAX && want_writer(u)) {
        u->small = xmalloc(size ? (size_t)size : 1);
        u->small_len = 0;
    }
    return 0;
}

static int on_file_data(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    if (u->small) {
        /* The reader never passes more than the size announced. */
        memcpy(u->small + u->small_len, data, len);
        u->small_len += len;
        return 0;
    }
    if (write_all(u->file_fd, data, len) < 0)
        return rx_error_errno(err, "cannot write file '%s'", u->file_name);
    return 0;
}

static int on_file_end(void *ctx, struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    int fd = steal_fd(&u->file_fd);
    if (u->small) {
        char *data = steal_pointer(&u->small);
        int e = writer_push(u->writer, fd, data, u->small_len);
        if (e) {
            errno = e;
            return rx_error_errno(err, "cannot write file");
        }
        return 0;
    }
    if (u->opts.canonical && futimens(fd, mtime_one) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return rx_error_errno(err, "cannot set the time of file '%s'", u->file_name);
    }
    if (close(fd) < 0)
        return rx_error_errno(err, "cannot write file '%s'", u->file_name);
    return 0;
}

static int on_symlink(void *ctx, const char *name, size_t len, const char *tgt, size_t tlen,
                      struct rx_error **err)
{
    struct nar_unpacker *u = ctx;
    char target_buf[NAR_TARGET_MAX + 1];
    memcpy(target_buf, tgt, tlen);
    target_buf[tlen] = '\0';
    int dfd;
    const char *cname;
    target(u, name, len, &dfd, &cname);
    if (symlinkat(target_buf, dfd, cname) < 0)
        return rx_error_errno(err, "cannot create symlink '%s'", cname);
    if (!name)
        u->root_created = true;
    if (u->opts.canonical && utimensat(dfd, cname, mtime_one, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot set time of symlink '%s'", cname);
    return 0;
}

const struct nar_visitor nar_unpack_visitor = {
    .directory_begin = on_dir_begin,
    .directory_end = on_dir_end,
    .file_begin = on_file_begin,
    .file_data = on_file_data,
    .file_end = on_file_end,
    .symlink = on_symlink,
};

int nar_unpack_fd(int in_fd, int parent_fd, const char *name, const struct nar_unpack_opts *opts,
                  struct rx_error **err)
{
    struct nar_unpacker *u = nar_unpacker_new(parent_fd, name, opts);
    struct nar_reader *r = nar_reader_new(&nar_unpack_visitor, u);
    int ret = nar_reader_read_fd(r, in_fd, err);
    if (finish_writes(u, ret < 0 ? NULL : err) < 0)
        ret = -1;
    bool created = u->root_created;
    nar_reader_free(r);
    nar_unpacker_free(u);
    /* Never leave half a tree behind; remove only what we created. */
    if (ret < 0 && created)
        rm_rf_at(parent_fd, name, NULL);
    return ret;
}
