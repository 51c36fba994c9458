/* Garbage collection, store delete and store destroy (see store-gc.h). */
#include "config.h"
#include "store-gc.h"
#include "store-internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "store-graph.h"
#include "store-index.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"
#include "util-units.h"

#include "banned.h"

/* Paths per transaction: large enough to be fast, small enough to stop soon after a goal. */
#define BATCH 1000
#define AUTO_BATCH 64

int store_gc_lock(struct store *s, bool wait, struct rx_error **err)
{
    if (s->gc_lock_fd < 0)
        return rx_error_set(err, EINVAL, "the store '%s' is not open for writing", s->root);
    /* flock converts by releasing the shared lock first: two collectors never deadlock. */
    if (store_flock(s->gc_lock_fd, LOCK_EX | LOCK_NB) == 0)
        return 1;
    if (errno != EWOULDBLOCK)
        return rx_error_errno(err, "cannot lock '%s/" STORE_GC_LOCK "'", s->root);
    if (!wait) {
        /* The conversion may have let go of the shared lock: take it back. */
        if (store_flock(s->gc_lock_fd, LOCK_SH) < 0)
            return rx_error_errno(err, "cannot lock '%s/" STORE_GC_LOCK "'", s->root);
        return 0;
    }
    fprintf(stderr, "runix: waiting for other runix processes using %s\n", s->root);
    if (store_flock(s->gc_lock_fd, LOCK_EX) < 0)
        return rx_error_errno(err, "cannot lock '%s/" STORE_GC_LOCK "'", s->root);
    return 1;
}

void store_gc_unlock(struct store *s)
{
    if (s->gc_lock_fd >= 0)
        store_flock(s->gc_lock_fd, LOCK_SH);
}

/* ---- what the collector computes on ------------------------------------ */

/* A closure index: R/nix/var/runix/closures/<name>. */
struct gc_index {
    char *name;
    int fd;       /* locked exclusively by us, or -1 */
    bool in_use;  /* someone holds it: all it lists stays */
    long top;     /* node of its top, or -1 when that is not valid */
    uint32_t *listed; /* nodes of the valid paths it lists */
    size_t nlisted;
};

struct gc_plan {
    struct store *s;
    struct store_graph g;
    struct store_root *roots;
    size_t nroots;
    bool *dropped; /* per root */
    struct gc_index *ix;
    size_t nix;
    int ixdir; /* fd of the indexes' directory, or -1 */
    bool *alive;
    int64_t *last;   /* per node: last use, for the order */
    uint32_t *order; /* the dead, in the order they may go */
    size_t norder;
    uint64_t total; /* NAR bytes of every valid path */
    uint32_t *temp; /* nodes of Nix's temporary roots (live Nix processes) */
    size_t ntemp;
};

static void plan_release(struct gc_plan *p)
{
    for (size_t i = 0; i < p->nix; i++) {
        if (p->ix[i].fd >= 0)
            close(p->ix[i].fd);
        free(p->ix[i].name);
        free(p->ix[i].listed);
    }
    free(p->ix);
    if (p->ixdir >= 0)
        close(p->ixdir);
    store_roots_free(p->roots, p->nroots);
    free(p->dropped);
    free(p->alive);
    free(p->last);
    free(p->order);
    free(p->temp);
    store_graph_release(&p->g);
    memset(p, 0, sizeof *p);
    p->ixdir = -1;
}

/* The nodes of the valid paths an index lists (its first word per line after the header). */
static void read_index(struct gc_plan *p, struct gc_index *x)
{
    struct rx_buf b = RX_BUF_INIT(64 << 20);
    if (read_fd(x->fd >= 0 ? x->fd : -1, x->name, &b, NULL) < 0 || !b.data) {
        rx_buf_release(&b);
        return;
    }
    size_t cap = 0;
    const char *q = b.data, *end = b.data + b.len;
    const char *nl = memchr(q, '\n', (size_t)(end - q));
    q = nl ? nl + 1 : end; /* the header */
    while (q < end) {
        nl = memchr(q, '\n', (size_t)(end - q));
        const char *le = nl ? nl : end;
        size_t w = 0;
        while (q + w < le && q[w] != ' ')
            w++;
        struct store_path sp;
        long node;
        if (store_path_parse_basename(q, w, &sp, NULL) == 0 &&
            (node = store_graph_find(&p->g, &sp)) >= 0) {
            if (x->nlisted == cap) {
                cap = cap ? 2 * cap : 16;
                x->listed = xrealloc(x->listed, cap * sizeof *x->listed);
            }
            x->listed[x->nlisted++] = (uint32_t)node;
        }
        q = le + 1;
    }
    rx_buf_release(&b);
}

/* The temporary file of an index being written: "<name>.<16 hex digits>.tmp" (util-fs.h). */
static bool is_tmp_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 22 || strcmp(name + n - 4, ".tmp") != 0 || name[n - 21] != '.')
        return false;
    return strspn(name + n - 20, "0123456789abcdef") >= 16;
}

/*
 * Every closure index, each locked exclusively if nobody else holds it (a
 * running program does).  An unreadable one is taken to be in use.
 */
static int scan_indexes(struct gc_plan *p, struct rx_error **err)
{
    struct store *s = p->s;
    struct rx_error *e = NULL;
    p->ixdir = store_dir_open(s->root_fd, s->root, STORE_INDEX_DIR, false, &e);
    if (p->ixdir < 0) {
        if (e->code == ENOENT) {
            rx_error_free(e);
            return 0;
        }
        if (err)
            *err = e;
        else
            rx_error_free(e);
        return -1;
    }
    int d = fcntl(p->ixdir, F_DUPFD_CLOEXEC, 0);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return rx_error_errno(err, "cannot list '%s/" STORE_INDEX_DIR "'", s->root);
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        const char *name = de->d_name;
        if (name[0] == '.' || is_tmp_name(name))
            continue;
        size_t blen = strcspn(name, "@");
        struct store_path top;
        if (store_path_parse_basename(name, blen, &top, NULL) < 0)
            continue;
        int fd = openat(p->ixdir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (p->nix == cap) {
            cap = cap ? 2 * cap : 16;
            p->ix = xrealloc(p->ix, cap * sizeof *p->ix);
        }
        struct gc_index *x = &p->ix[p->nix++];
        *x = (struct gc_index){.name = xstrdup(name), .fd = -1,
                               .top = store_graph_find(&p->g, &top)};
        if (store_flock(fd, LOCK_EX | LOCK_NB) < 0)
            x->in_use = true;
        x->fd = fd; /* read it either way; unlocked ones are closed after reading */
        read_index(p, x);
        if (x->in_use) {
            close(fd);
            x->fd = -1;
        }
    }
    closedir(dir);
    return 0;
}

/*
 * Nix's temporary roots: nix/var/nix/temproots/<pid>, NUL-separated store
 * paths a running Nix process is making or using, locked while it lives
 * (a lock we get means its owner is gone), as Nix's collector reads them.
 */
static void scan_temp_roots(struct gc_plan *p)
{
    struct store *s = p->s;
    int fd = openat(s->root_fd, "nix/var/nix/temproots", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return;
    }
    size_t cap = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (de->d_name[0] == '.')
            continue;
        int f = openat(dirfd(dir), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (f < 0)
            continue;
        if (store_flock(f, LOCK_EX | LOCK_NB) == 0) {
            close(f); /* stale */
            continue;
        }
        struct rx_buf b = RX_BUF_INIT(64 << 20);
        if (read_fd(f, de->d_name, &b, NULL) == 0 && b.data) {
            for (size_t at = 0; at < b.len;) {
                const char *q = b.data + at;
                const char *z = memchr(q, '\0', b.len - at);
                size_t len = z ? (size_t)(z - q) : b.len - at;
                struct store_path sp;
                long node;
                if (store_path_parse(q, len, &sp, NULL) == 0 &&
                    (node = store_graph_find(&p->g, &sp)) >= 0) {
                    if (p->ntemp == cap) {
                        cap = cap ? 2 * cap : 16;
                        p->temp = xrealloc(p->temp, cap * sizeof *p->temp);
                    }
                    p->temp[p->ntemp++] = (uint32_t)node;
                }
                at += len + 1;
            }
        }
        rx_buf_release(&b);
        close(f);
    }
    closedir(dir);
}

static int plan_load(struct gc_plan *p, struct store *s, struct rx_error **err)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->ixdir = -1;
    if (store_graph_load(s, &p->g, err) < 0 ||
        store_roots_scan(s->root_fd, s->root, &p->roots, &p->nroots, err) < 0)
        return -1;
    p->dropped = xcalloc(p->nroots + 1, sizeof *p->dropped);
    p->alive = xcalloc(p->g.n + 1, sizeof *p->alive);
    p->last = xcalloc(p->g.n + 1, sizeof *p->last);
    for (size_t i = 0; i < p->g.n; i++)
        p->total += p->g.nodes[i].nar_size;
    scan_temp_roots(p);
    return scan_indexes(p, err);
}

static void mark_paths(struct gc_plan *p, const struct store_path *paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long k = store_graph_find(&p->g, &paths[i]);
        if (k >= 0) {
            uint32_t u = (uint32_t)k;
            store_graph_mark(&p->g, &u, 1, p->alive);
        }
    }
}

/* Alive: the closures of the roots not dropped, of keep, and of the indexes in use. */
static void plan_mark(struct gc_plan *p, const struct store_path *keep, size_t nkeep)
{
    memset(p->alive, 0, p->g.n * sizeof *p->alive);
    for (size_t i = 0; i < p->nroots; i++)
        if (!p->dropped[i])
            mark_paths(p, p->roots[i].targets, p->roots[i].ntargets);
    mark_paths(p, keep, nkeep);
    store_graph_mark(&p->g, p->temp, p->ntemp, p->alive);
    for (size_t i = 0; i < p->nix; i++) {
        struct gc_index *x = &p->ix[i];
        if (!x->in_use)
            continue;
        if (x->top >= 0) {
            uint32_t u = (uint32_t)x->top;
            store_graph_mark(&p->g, &u, 1, p->alive);
        }
        store_graph_mark(&p->g, x->listed, x->nlisted, p->alive);
    }
}

/* A min-heap of nodes by (last use, path). */
struct heap {
    uint32_t *v;
    size_t n;
    const struct gc_plan *p;
};

static bool before(const struct heap *h, uint32_t a, uint32_t b)
{
    if (h->p->last[a] != h->p->last[b])
        return h->p->last[a] < h->p->last[b];
    return store_path_cmp(&h->p->g.nodes[a].path, &h->p->g.nodes[b].path) < 0;
}

static void heap_push(struct heap *h, uint32_t x)
{
    size_t i = h->n++;
    h->v[i] = x;
    while (i > 0 && before(h, h->v[i], h->v[(i - 1) / 2])) {
        uint32_t t = h->v[i];
        h->v[i] = h->v[(i - 1) / 2];
        h->v[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static uint32_t heap_pop(struct heap *h)
{
    uint32_t top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && before(h, h->v[l], h->v[m]))
            m = l;
        if (r < h->n && before(h, h->v[r], h->v[m]))
            m = r;
        if (m == i)
            break;
        uint32_t t = h->v[i];
        h->v[i] = h->v[m];
        h->v[m] = t;
        i = m;
    }
    return top;
}

static int cmp_root_age_desc(const void *a, const void *b, void *ctx)
{
    const struct store_root *roots = ctx;
    int64_t x = roots[*(const size_t *)a].last_used, y = roots[*(const size_t *)b].last_used;
    return x > y ? -1 : x < y;
}

/*
 * The dead (not alive) in the order they may go: least recently used first,
 * every referrer before what it references.  A dead path's last use is the
 * latest of the dropped roots that kept it, else its registration time.
 */
static void plan_order(struct gc_plan *p)
{
    size_t n = p->g.n;
    for (size_t i = 0; i < n; i++)
        p->last[i] = p->g.nodes[i].registered;
    /* Dropped roots, latest first: the first to reach a path sets its last use. */
    size_t nd = 0;
    _cleanup_free_ size_t *drop = xmalloc((p->nroots + 1) * sizeof *drop);
    for (size_t i = 0; i < p->nroots; i++)
        if (p->dropped[i])
            drop[nd++] = i;
    qsort_r(drop, nd, sizeof *drop, cmp_root_age_desc, p->roots);
    if (nd) {
        _cleanup_free_ bool *set = xcalloc(n + 1, sizeof *set);
        _cleanup_free_ bool *seen = xcalloc(n + 1, sizeof *seen);
        for (size_t k = 0; k < nd; k++) {
            const struct store_root *r = &p->roots[drop[k]];
            memset(seen, 0, n * sizeof *seen);
            for (size_t t = 0; t < r->ntargets; t++) {
                long u = store_graph_find(&p->g, &r->targets[t]);
                if (u >= 0) {
                    uint32_t uu = (uint32_t)u;
                    store_graph_mark(&p->g, &uu, 1, seen);
                }
            }
            for (size_t i = 0; i < n; i++)
                if (seen[i] && !p->alive[i] && !set[i]) {
                    p->last[i] = r->last_used;
                    set[i] = true;
                }
        }
    }
    /* Kahn's algorithm over the dead, by dead referrers, least recently used first. */
    _cleanup_free_ uint32_t *pending = xcalloc(n + 1, sizeof *pending);
    struct heap h = {.v = xmalloc((n + 1) * sizeof *h.v), .p = p};
    free(p->order);
    p->order = xmalloc((n + 1) * sizeof *p->order);
    p->norder = 0;
    for (size_t i = 0; i < n; i++) {
        if (p->alive[i])
            continue;
        const struct store_graph_node *v = &p->g.nodes[i];
        for (uint32_t k = 0; k < v->nreferrers; k++)
            pending[i] += !p->alive[v->referrers[k]];
        if (pending[i] == 0)
            heap_push(&h, (uint32_t)i);
    }
    while (h.n) {
        uint32_t x = heap_pop(&h);
        p->order[p->norder++] = x;
        const struct store_graph_node *v = &p->g.nodes[x];
        for (uint32_t k = 0; k < v->nrefs; k++) {
            uint32_t r = v->refs[k];
            if (!p->alive[r] && --pending[r] == 0)
                heap_push(&h, r);
        }
    }
    free(h.v);
}

/* ---- deleting ------------------------------------------------------------ */

/* Unregister nodes[0..n) (referrers first) in one transaction. */
static int unregister(struct gc_plan *p, const uint32_t *nodes, size_t n, struct rx_error **err)
{
    struct store *s = p->s;
    sqlite3_stmt *del;
    if (store_db_prepare(s, "delete from ValidPaths where id = ?", &del, err) < 0)
        return -1;
    int ret = store_db_exec(s, "begin immediate;", err);
    for (size_t i = 0; ret == 0 && i < n; i++) {
        sqlite3_bind_int64(del, 1, p->g.nodes[nodes[i]].id);
        int r = sqlite3_step(del);
        sqlite3_reset(del);
        if (r != SQLITE_DONE) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&p->g.nodes[nodes[i]].path, full);
            store_db_error(s, err, "unregistering a dead path");
            rx_error_wrap(err, "'%s'", full);
            sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
            ret = -1;
        }
    }
    sqlite3_finalize(del);
    if (ret == 0 && store_db_exec(s, "commit;", err) < 0) {
        sqlite3_exec(s->db, "rollback;", NULL, NULL, NULL);
        ret = -1;
    }
    return ret;
}

/* Remove the lock file of sp, unless someone holds it (Nix's own, say). */
static void remove_lock_file(struct store *s, const struct store_path *sp, const char *base)
{
    char lock[STORE_BASENAME_MAX + 8];
    snprintf(lock, sizeof lock, "%s.lock", base);
    struct stat st;
    if (fstatat(s->store_fd, lock, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        int lfd;
        if (store_lock_path(s, sp, false, &lfd, NULL) == 1)
            store_unlock_path(s, sp, lfd);
    }
}

/* Move nix/store/<base of sp> (unregistered now) into the directory dfd. */
static int move_aside(struct store *s, const struct store_path *sp, int dfd,
                      struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(sp, base);
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        /* Moving a directory to another parent rewrites its "..": it must be writable. */
        if (S_ISDIR(st.st_mode) && (st.st_mode & 0700) != 0700)
            fchmodat(s->store_fd, base, 0700, 0);
        if (renameat(s->store_fd, base, dfd, base) < 0)
            return rx_error_errno(err, "cannot move '%s/nix/store/%s' aside to delete it",
                                  s->root, base);
    } else if (errno != ENOENT) {
        return rx_error_errno(err, "cannot stat '%s/nix/store/%s'", s->root, base);
    }
    remove_lock_file(s, sp, base);
    return 0;
}

/*
 * Removing files is bound by the file system's latency, not the CPU, and
 * removals in different directories proceed in parallel: so the paths of a
 * batch are spread over REMOVERS directories, each emptied by a thread.
 */
#define REMOVERS 8

struct remover {
    int dfd;
    pthread_t thread;
    bool started;
};

static void *remover_main(void *arg)
{
    struct remover *r = arg;
    int d = fcntl(r->dfd, F_DUPFD_CLOEXEC, 0);
    DIR *dir = d >= 0 ? fdopendir(d) : NULL;
    if (!dir) {
        if (d >= 0)
            close(d);
        return NULL;
    }
    struct dirent *e;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rm_rf_at(r->dfd, e->d_name, NULL);
    closedir(dir);
    return NULL;
}

/* Remove the files of nodes[0..n), unregistered now: moved aside, removed there. */
static int remove_files(struct gc_plan *p, const uint32_t *nodes, size_t n, struct rx_error **err)
{
    struct store *s = p->s;
    char name[64];
    snprintf(name, sizeof name, "gc-%u", s->trash_seq++);
    if (mkdirat(s->tmp_fd, name, 0700) < 0)
        return rx_error_errno(err, "cannot create '%s' in the work dir of '%s'", name, s->root);
    _cleanup_close_ int bfd = openat(s->tmp_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (bfd < 0)
        return rx_error_errno(err, "cannot open '%s' in the work dir of '%s'", name, s->root);
    struct remover rm[REMOVERS];
    size_t k = n < REMOVERS ? n : REMOVERS;
    int ret = 0;
    for (size_t i = 0; i < k; i++) {
        char sub[8];
        snprintf(sub, sizeof sub, "%zu", i);
        rm[i] = (struct remover){.dfd = -1};
        if (mkdirat(bfd, sub, 0700) < 0 ||
            (rm[i].dfd = openat(bfd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
            for (size_t j = 0; j < i; j++)
                close(rm[j].dfd);
            return rx_error_errno(err, "cannot create a directory in the work dir of '%s'",
                                  s->root);
        }
    }
    for (size_t i = 0; i < n && ret == 0; i++)
        ret = move_aside(s, &p->g.nodes[nodes[i]].path, rm[i % k].dfd, err);
    for (size_t i = 0; i < k; i++)
        rm[i].started = pthread_create(&rm[i].thread, NULL, remover_main, &rm[i]) == 0;
    for (size_t i = 0; i < k; i++) {
        if (rm[i].started)
            pthread_join(rm[i].thread, NULL);
        close(rm[i].dfd);
    }
    /* What a thread could not start on (or left) goes here. */
    if (rm_rf_at(s->tmp_fd, name, ret == 0 ? err : NULL) < 0)
        ret = -1;
    return ret;
}

/* The statvfs free bytes of the store's file system (for unprivileged users), or 0. */
static uint64_t free_bytes(struct store *s)
{
    struct statvfs v;
    if (fstatvfs(s->store_fd, &v) < 0)
        return 0;
    return (uint64_t)v.f_bavail * (uint64_t)v.f_frsize;
}

/* What stops a deletion: the limits of store_gc(), or enough free space. */
struct goal {
    uint64_t max_freed, keep_size, want_free;
    size_t batch;
};

static bool goal_met(const struct gc_plan *p, const struct goal *gl, uint64_t freed)
{
    if (gl->max_freed != STORE_GC_NO_LIMIT && freed >= gl->max_freed)
        return true;
    if (gl->keep_size != STORE_GC_NO_LIMIT && p->total - freed <= gl->keep_size)
        return true;
    return false;
}

/*
 * Unlink the indexes we hold whose top or listed paths are among
 * order[0..n) (or whose top is gone); release the others.
 */
static void drop_indexes(struct gc_plan *p, size_t n, bool dry_run)
{
    _cleanup_free_ bool *going = xcalloc(p->g.n + 1, sizeof *going);
    for (size_t i = 0; i < n; i++)
        going[p->order[i]] = true;
    for (size_t i = 0; i < p->nix; i++) {
        struct gc_index *x = &p->ix[i];
        if (x->fd < 0)
            continue;
        bool hit = x->top < 0 || going[x->top];
        for (size_t k = 0; !hit && k < x->nlisted; k++)
            hit = going[x->listed[k]];
        /* Still locked: no program starts from it.  Unless a fetch has replaced it since
         * (another inode under the name), which is not ours to remove. */
        struct stat a, b;
        if (hit && !dry_run && fstat(x->fd, &a) == 0 &&
            fstatat(p->ixdir, x->name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
            a.st_dev == b.st_dev)
            unlinkat(p->ixdir, x->name, 0);
        close(x->fd);
        x->fd = -1;
    }
}

/*
 * Delete the dead in order until the goal is met: unregister a batch, then
 * remove its files.  res grows by what went.
 */
static int delete_dead(struct gc_plan *p, const struct goal *gl, bool dry_run,
                       void (*on_path)(void *, const struct store_path *, uint64_t), void *ctx,
                       struct store_gc_result *res, struct rx_error **err)
{
    struct store *s = p->s;
    /* How many go: the limits are known in advance, free space only as we go. */
    size_t n = 0;
    uint64_t freed = 0;
    while (n < p->norder && !goal_met(p, gl, freed))
        freed += p->g.nodes[p->order[n++]].nar_size;
    drop_indexes(p, n, dry_run);
    if (dry_run) {
        for (size_t i = 0; i < n; i++) {
            const struct store_graph_node *v = &p->g.nodes[p->order[i]];
            if (on_path)
                on_path(ctx, &v->path, v->nar_size);
            res->npaths++;
            res->bytes += v->nar_size;
        }
        return 0;
    }
    if (n && store_tmp_fd(s, err) < 0)
        return -1;
    for (size_t at = 0; at < n;) {
        if (gl->want_free && free_bytes(s) >= gl->want_free)
            break;
        size_t k = n - at < gl->batch ? n - at : gl->batch;
        if (unregister(p, p->order + at, k, err) < 0)
            return -1;
        /* Unregistered: should this fail, the next collection removes what is left. */
        if (remove_files(p, p->order + at, k, err) < 0)
            return -1;
        for (size_t i = at; i < at + k; i++) {
            const struct store_graph_node *v = &p->g.nodes[p->order[i]];
            if (on_path)
                on_path(ctx, &v->path, v->nar_size);
            res->npaths++;
            res->bytes += v->nar_size;
        }
        at += k;
    }
    return 0;
}

/* Record a collection in STORE_LAST_GC: "<unix time> <paths> <bytes>\n". */
static void record(struct store *s, const struct store_gc_result *res)
{
    int d = store_dir_open(s->root_fd, s->root, "nix/var/runix", false, NULL);
    if (d < 0)
        return;
    char line[96];
    snprintf(line, sizeof line, "%lld %zu %llu\n", (long long)time(NULL), res->npaths,
             (unsigned long long)res->bytes);
    write_file_atomic_at(d, "last-gc", line, true, NULL);
    close(d);
}

/*
 * Nix's hard-link farm (nix-store --optimise): a file there that nothing in
 * the store links to any more is garbage too, as Nix's collector says.
 */
static void clean_links(struct store *s)
{
    int fd = openat(s->store_fd, ".links", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISREG(st.st_mode) && st.st_nlink == 1)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* Before collecting: what killed collections and fetches left behind. */
static int clean(struct store *s, struct rx_error **err)
{
    store_tmp_clean_stale(s);
    return store_clean_leftovers(s, err);
}

int store_gc(struct store *s, const struct store_gc_opts *o, struct store_gc_result *res,
             struct rx_error **err)
{
    memset(res, 0, sizeof *res);
    if (store_gc_lock(s, true, err) < 0)
        return -1;
    if (!o->dry_run && clean(s, err) < 0)
        return -1;
    struct gc_plan p;
    int ret = -1;
    if (plan_load(&p, s, err) < 0)
        goto out;
    res->store_bytes_before = p.total;
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < p.nroots; i++) {
        struct store_root *r = &p.roots[i];
        if (o->older_than < 0 || r->kind != STORE_ROOT_AUTO || r->last_used > now - o->older_than)
            continue;
        p.dropped[i] = true;
        res->nroots++;
        if (o->on_root)
            o->on_root(o->ctx, r);
        if (!o->dry_run) {
            const char *nm = strrchr(r->where, '/');
            if (store_root_remove(s->root_fd, s->root, r->kind, nm ? nm + 1 : r->where, err) < 0)
                goto out;
        }
    }
    plan_mark(&p, o->keep, o->nkeep);
    plan_order(&p);
    struct goal gl = {.max_freed = o->max_freed, .keep_size = o->keep_size, .batch = BATCH};
    if (delete_dead(&p, &gl, o->dry_run, o->on_path, o->ctx, res, err) < 0)
        goto out;
    if (!o->dry_run)
        clean_links(s);
    ret = 0;
out:
    if (!o->dry_run && (ret == 0 || res->npaths))
        record(s, res);
    plan_release(&p);
    return ret;
}

/* The automatic root of the plan used least recently that keeps nothing of keep. */
static long oldest_auto_root(const struct gc_plan *p, const struct store_path *keep, size_t nkeep)
{
    long best = -1;
    for (size_t i = 0; i < p->nroots; i++) {
        const struct store_root *r = &p->roots[i];
        if (r->kind != STORE_ROOT_AUTO)
            continue;
        bool needed = false;
        for (size_t t = 0; !needed && t < r->ntargets; t++)
            for (size_t k = 0; !needed && k < nkeep; k++)
                needed = store_path_cmp(&r->targets[t], &keep[k]) == 0;
        if (!needed && (best < 0 || r->last_used < p->roots[best].last_used))
            best = (long)i;
    }
    return best;
}

int store_gc_auto(struct store *s, uint64_t min_free, uint64_t max_free,
                  const struct store_path *keep, size_t nkeep, struct store_gc_result *res,
                  struct rx_error **err)
{
    memset(res, 0, sizeof *res);
    if (min_free == 0 || s->readonly)
        return 0;
    uint64_t before = free_bytes(s);
    if (before >= min_free)
        return 0;
    char b1[32], b2[32], b3[32];
    int l = store_gc_lock(s, false, err);
    if (l <= 0) {
        if (l == 0)
            fprintf(stderr,
                    "runix: %s has %s free, less than min-free (%s), but other runix processes "
                    "are using it: not collecting garbage now\n",
                    s->root, format_size(before, b1), format_size(min_free, b2));
        return l;
    }
    uint64_t want = max_free > min_free ? max_free : min_free;
    if (max_free == 0)
        want = STORE_GC_NO_LIMIT;
    int ret = clean(s, err);
    struct goal gl = {.max_freed = STORE_GC_NO_LIMIT, .keep_size = STORE_GC_NO_LIMIT,
                      .want_free = want, .batch = AUTO_BATCH};
    /* First what is dead already, then one automatic root after another, oldest first. */
    for (bool first = true; ret == 0 && free_bytes(s) < want; first = false) {
        struct gc_plan p;
        if (plan_load(&p, s, err) < 0) {
            plan_release(&p);
            ret = -1;
            break;
        }
        long drop = -1;
        if (!first) {
            drop = oldest_auto_root(&p, keep, nkeep);
            if (drop < 0) {
                plan_release(&p);
                break; /* nothing more can go */
            }
            struct store_root *r = &p.roots[drop];
            const char *nm = strrchr(r->where, '/');
            p.dropped[drop] = true;
            res->nroots++;
            if (store_root_remove(s->root_fd, s->root, r->kind, nm ? nm + 1 : r->where, err) < 0)
                ret = -1;
        }
        if (ret == 0) {
            plan_mark(&p, keep, nkeep);
            plan_order(&p);
            ret = delete_dead(&p, &gl, false, NULL, NULL, res, err);
        }
        plan_release(&p);
    }
    if (ret == 0 || res->npaths)
        record(s, res);
    uint64_t after = free_bytes(s);
    fprintf(stderr,
            "runix: %s had %s free, less than min-free (%s): deleted %zu paths%s, freed %s; "
            "%s free now\n",
            s->root, format_size(before, b1), format_size(min_free, b2), res->npaths,
            res->nroots ? " and old automatic roots" : "", format_size(res->bytes, b3),
            format_size(after, b1));
    store_gc_unlock(s);
    return ret;
}

/* ---- store delete --------------------------------------------------------- */

/* Append to the message being built in b. */
static void say(struct rx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct rx_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *m = NULL;
    if (vasprintf(&m, fmt, ap) >= 0 && m) {
        if (rx_buf_append(b, m, strlen(m)) < 0) {
            /* a message of a megabyte is enough */
        }
        free(m);
    }
    va_end(ap);
}

/* Does a running program use node u (an index someone holds lists it)?  The index, or NULL. */
static const char *in_use_by(const struct gc_plan *p, uint32_t u)
{
    for (size_t i = 0; i < p->nix; i++) {
        const struct gc_index *x = &p->ix[i];
        if (!x->in_use)
            continue;
        if (x->top == (long)u)
            return x->name;
        for (size_t k = 0; k < x->nlisted; k++)
            if (x->listed[k] == u)
                return x->name;
    }
    return NULL;
}

int store_delete(struct store *s, const struct store_path *paths, size_t n, bool force,
                 bool dry_run, void (*on_path)(void *ctx, const struct store_path *p, uint64_t),
                 void *ctx, struct store_gc_result *res, char **why, struct rx_error **err)
{
    memset(res, 0, sizeof *res);
    *why = NULL;
    if (store_gc_lock(s, true, err) < 0)
        return -1;
    struct gc_plan p;
    int ret = -1;
    struct rx_buf msg = RX_BUF_INIT(1 << 20);
    _cleanup_free_ uint32_t *stack = NULL;
    _cleanup_free_ bool *seen = NULL;
    if (plan_load(&p, s, err) < 0)
        goto out;
    /* The set: given paths (dead means "to delete" in the plan's terms). */
    stack = xmalloc((p.g.n + 1) * sizeof *stack);
    size_t top = 0;
    for (size_t i = 0; i < p.g.n; i++)
        p.alive[i] = true;
    for (size_t i = 0; i < n; i++) {
        long k = store_graph_find(&p.g, &paths[i]);
        char full[STORE_PATH_MAX + 1];
        store_path_format(&paths[i], full);
        if (k < 0) {
            rx_error_set(err, ENOENT, "'%s' is not in the store %s", full, s->root);
            goto out;
        }
        if (p.alive[k]) {
            p.alive[k] = false;
            stack[top++] = (uint32_t)k;
        }
    }
    if (force) {
        /* With everything that references them. */
        while (top) {
            const struct store_graph_node *v = &p.g.nodes[stack[--top]];
            for (uint32_t k = 0; k < v->nreferrers; k++)
                if (p.alive[v->referrers[k]]) {
                    p.alive[v->referrers[k]] = false;
                    stack[top++] = v->referrers[k];
                }
        }
    } else {
        /* Refused when a valid path outside the set references one. */
        for (size_t i = 0; i < p.g.n; i++) {
            if (p.alive[i])
                continue;
            const struct store_graph_node *v = &p.g.nodes[i];
            char full[STORE_PATH_MAX + 1], ref[STORE_PATH_MAX + 1];
            store_path_format(&v->path, full);
            for (uint32_t k = 0; k < v->nreferrers; k++)
                if (p.alive[v->referrers[k]]) {
                    store_path_format(&p.g.nodes[v->referrers[k]].path, ref);
                    say(&msg, "'%s' is referenced by '%s'\n", full, ref);
                    break;
                }
        }
        /* ...or a root keeps one. */
        seen = xcalloc(p.g.n + 1, sizeof *seen);
        for (size_t r = 0; r < p.nroots; r++) {
            memset(seen, 0, p.g.n * sizeof *seen);
            mark_paths(&(struct gc_plan){.g = p.g, .alive = seen}, p.roots[r].targets,
                       p.roots[r].ntargets);
            for (size_t i = 0; i < p.g.n; i++)
                if (seen[i] && !p.alive[i]) {
                    char full[STORE_PATH_MAX + 1];
                    store_path_format(&p.g.nodes[i].path, full);
                    say(&msg, "'%s' is kept alive by the %s root '%s' (%s/%s)\n", full,
                        store_root_kind_name(p.roots[r].kind), p.roots[r].name, s->root,
                        p.roots[r].where);
                }
        }
    }
    for (size_t i = 0; i < p.g.n; i++) {
        const char *ix;
        if (!p.alive[i] && (ix = in_use_by(&p, (uint32_t)i))) {
            char full[STORE_PATH_MAX + 1];
            store_path_format(&p.g.nodes[i].path, full);
            say(&msg, "'%s' is in use by a running program (closure index '%s')\n", full, ix);
        }
    }
    if (msg.len) {
        msg.data[msg.len - 1] = '\0'; /* the last newline */
        *why = msg.data;
        msg.data = NULL;
        ret = 1;
        goto out;
    }
    if (force && !dry_run) {
        /* The runix roots that held any of them are broken now: they go too. */
        for (size_t r = 0; r < p.nroots; r++) {
            if (p.roots[r].kind == STORE_ROOT_NIX)
                continue;
            bool hit = false;
            for (size_t t = 0; !hit && t < p.roots[r].ntargets; t++) {
                long k = store_graph_find(&p.g, &p.roots[r].targets[t]);
                hit = k >= 0 && !p.alive[k];
            }
            const char *nm = strrchr(p.roots[r].where, '/');
            if (hit && store_root_remove(s->root_fd, s->root, p.roots[r].kind,
                                         nm ? nm + 1 : p.roots[r].where, err) < 0)
                goto out;
        }
    }
    plan_order(&p);
    struct goal gl = {.max_freed = STORE_GC_NO_LIMIT, .keep_size = STORE_GC_NO_LIMIT,
                      .batch = BATCH};
    ret = delete_dead(&p, &gl, dry_run, on_path, ctx, res, err);
out:
    rx_buf_release(&msg);
    plan_release(&p);
    return ret;
}

/* ---- store destroy -------------------------------------------------------- */

int store_destroy_check(struct store *s, char **why, struct rx_error **err)
{
    *why = NULL;
    int l = store_gc_lock(s, false, err);
    if (l < 0)
        return -1;
    if (l == 0) {
        *why = xasprintf("other runix processes are using the store %s (a fetch, a run or a "
                         "collection); wait for them to finish",
                         s->root);
        return 1;
    }
    struct gc_plan p = {.s = s, .ixdir = -1};
    if (store_graph_load(s, &p.g, err) < 0 || scan_indexes(&p, err) < 0) {
        plan_release(&p);
        return -1;
    }
    int ret = 0;
    for (size_t i = 0; i < p.nix && !ret; i++)
        if (p.ix[i].in_use) {
            *why = xasprintf("a program is running from the store %s (closure index '%s' is "
                             "in use); stop it first",
                             s->root, p.ix[i].name);
            ret = 1;
        }
    plan_release(&p);
    return ret;
}

int store_destroy(struct store *s, struct rx_error **err)
{
    _cleanup_free_ char *nix = xasprintf("%s/nix", s->root);
    if (rm_rf_at(AT_FDCWD, nix, err) < 0)
        return rx_error_wrap(err, "removing the store %s", s->root);
    if (rmdir(s->root) < 0 && errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT)
        return rx_error_errno(err, "cannot remove '%s'", s->root);
    return 0;
}
