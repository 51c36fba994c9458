/* Verifying valid paths: NAR hashes, canonical metadata, tree comparison, repair in place. */
#include "config.h"
#include "store-verify.h"
#include "store-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "nar-dump.h"
#include "nar-reader.h"
#include "util-fs.h"
#include "util-io.h"
#include "util-mem.h"

#include "banned.h"

/* A bound on nesting, as nar-dump.c has, so that a hostile tree cannot exhaust the stack. */
#define VERIFY_MAX_DEPTH 4096
#define COMPARE_CHUNK (1 << 16)

const char *store_problem_kind_name(enum store_problem_kind k)
{
    switch (k) {
    case STORE_PROBLEM_CHANGED:
        return "changed";
    case STORE_PROBLEM_DELETED:
        return "deleted";
    case STORE_PROBLEM_ADDED:
        return "added";
    case STORE_PROBLEM_MODE:
        return "mode";
    case STORE_PROBLEM_META:
        return "meta";
    case STORE_PROBLEM_UNREADABLE:
        return "unreadable";
    default:
        return "unknown";
    }
}

void store_verify_add_problem(struct store_verify_result *r, enum store_problem_kind kind,
                              const char *file, const char *detail)
{
    /* Grows by doubling: capacity is the next power of two above nproblems. */
    size_t n = r->nproblems;
    if ((n & (n - 1)) == 0)
        r->problems = xrealloc(r->problems, (n ? 2 * n : 1) * sizeof *r->problems);
    r->problems[n] = (struct store_problem){kind, xstrdup(file), xstrdup(detail)};
    r->nproblems++;
}

void store_verify_result_clear(struct store_verify_result *r)
{
    for (size_t i = 0; i < r->nproblems; i++) {
        free(r->problems[i].file);
        free(r->problems[i].detail);
    }
    free(r->problems);
    r->problems = NULL;
    r->nproblems = 0;
    free(r->note);
    r->note = NULL;
    r->detailed = false;
    r->owner_wrong = false;
}

void store_verify_results_free(struct store_verify_result *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        store_verify_result_clear(&v[i]);
    free(v);
}

/* ---- one path ---- */

struct walk {
    struct store_verify_result *r;
    uid_t owner;
    struct sha256_ctx sha;
    uint64_t size;
    _Atomic uint64_t *bytes_done; /* or NULL */
};

static int hash_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)err;
    struct walk *w = ctx;
    sha256_update(&w->sha, data, len);
    w->size += len;
    if (w->bytes_done)
        atomic_fetch_add_explicit(w->bytes_done, len, memory_order_relaxed);
    return 0;
}

/* The mode Nix keeps: 0444 for files, 0555 for executables and directories. */
static mode_t canonical_perm(const struct stat *st)
{
    if (S_ISDIR(st->st_mode) || (st->st_mode & S_IXUSR))
        return 0555;
    return 0444;
}

/* What the NAR does not record, checked as each node is dumped. */
static void check_meta(void *ctx, const char *rel, const struct stat *st)
{
    struct walk *w = ctx;
    char d[160];
    if (!S_ISLNK(st->st_mode)) {
        mode_t perm = st->st_mode & 07777, want = canonical_perm(st);
        if (perm != want) {
            const char *what = (perm & 07000) ? "setuid, setgid or sticky bit set"
                               : (perm & 0222) ? "writable"
                                               : "not the canonical mode";
            snprintf(d, sizeof d, "mode %04o, should be %04o (%s)", (unsigned)perm,
                     (unsigned)want, what);
            store_verify_add_problem(w->r, STORE_PROBLEM_META, rel, d);
        }
    }
    if (st->st_mtim.tv_sec != 1) {
        snprintf(d, sizeof d, "mtime %lld, should be 1", (long long)st->st_mtim.tv_sec);
        store_verify_add_problem(w->r, STORE_PROBLEM_META, rel, d);
    }
    if (st->st_uid != w->owner) {
        snprintf(d, sizeof d, "owned by uid %u, not by the store's owner (uid %u)",
                 (unsigned)st->st_uid, (unsigned)w->owner);
        store_verify_add_problem(w->r, STORE_PROBLEM_META, rel, d);
        w->r->owner_wrong = true;
    }
}

static uid_t store_owner(struct store *s)
{
    struct stat st;
    return fstat(s->store_fd, &st) == 0 ? st.st_uid : geteuid();
}

static void check_path(struct store *s, uid_t owner, struct store_verify_result *r,
                       _Atomic uint64_t *bytes_done)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(&r->path, base);
    store_verify_result_clear(r);
    r->hashed = false;
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT) {
            r->status = STORE_VERIFY_MISSING;
        } else {
            char d[256];
            snprintf(d, sizeof d, "cannot stat it: %s", strerror(errno));
            store_verify_add_problem(r, STORE_PROBLEM_UNREADABLE, "", d);
            r->status = STORE_VERIFY_CORRUPTED;
        }
        return;
    }
    struct walk w = {.r = r, .owner = owner, .bytes_done = bytes_done};
    sha256_init(&w.sha);
    struct rx_error *e = NULL;
    if (nar_dump_at_visit(s->store_fd, base, hash_sink, &w, check_meta, &w, &e) < 0) {
        store_verify_add_problem(r, STORE_PROBLEM_UNREADABLE, "", e ? e->msg : "cannot read it");
        rx_error_free(e);
        r->status = STORE_VERIFY_CORRUPTED;
        return;
    }
    sha256_final(&w.sha, &r->got_hash);
    r->got_size = w.size;
    r->hashed = true;
    if (!hash_equal(&r->got_hash, &r->want_hash) || r->got_size != r->want_size)
        r->status = STORE_VERIFY_CORRUPTED;
    else if (r->nproblems > 0)
        r->status = STORE_VERIFY_NONCANONICAL;
    else
        r->status = STORE_VERIFY_OK;
}

int store_verify_one(struct store *s, struct store_verify_result *r, struct rx_error **err)
{
    (void)err;
    check_path(s, store_owner(s), r, NULL);
    return 0;
}

/* ---- the database ---- */

static int row_result(struct store *s, sqlite3_stmt *st, struct store_verify_result *r,
                      struct rx_error **err)
{
    const char *path = (const char *)sqlite3_column_text(st, 0);
    const char *h = (const char *)sqlite3_column_text(st, 1);
    sqlite3_int64 size = sqlite3_column_int64(st, 2);
    enum hash_algo want = HASH_SHA256;
    *r = (struct store_verify_result){.status = STORE_VERIFY_OK};
    if (!path || store_path_parse(path, strlen(path), &r->path, err) < 0 || !h ||
        hash_parse(h, strlen(h), &want, &r->want_hash, err) < 0 || size < 0)
        return rx_error_wrap(err, "store database of '%s': the row of '%s'", s->root,
                             path ? path : "?");
    r->want_size = (uint64_t)size;
    return 0;
}

static int load_all(struct store *s, struct store_verify_result **out, size_t *nout,
                    struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select path, hash, narSize from ValidPaths order by path", &st,
                         err) < 0)
        return -1;
    size_t cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (*nout == cap) {
            cap = cap ? 2 * cap : 64;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        if (row_result(s, st, &(*out)[*nout], err) < 0) {
            sqlite3_finalize(st);
            return -1;
        }
        (*nout)++;
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        return store_db_error(s, err, "listing the valid paths");
    return 0;
}

static int cmp_result(const void *a, const void *b)
{
    return store_path_cmp(&((const struct store_verify_result *)a)->path,
                          &((const struct store_verify_result *)b)->path);
}

static int load_given(struct store *s, const struct store_path *paths, size_t n,
                      struct store_verify_result **out, size_t *nout, struct rx_error **err)
{
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select path, hash, narSize from ValidPaths where path = ?", &st,
                         err) < 0)
        return -1;
    *out = xcalloc(n ? n : 1, sizeof **out);
    int ret = 0;
    for (size_t i = 0; ret == 0 && i < n; i++) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&paths[i], full);
        sqlite3_bind_text(st, 1, full, -1, SQLITE_TRANSIENT);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            ret = row_result(s, st, &(*out)[*nout], err);
        else if (r == SQLITE_DONE)
            ret = rx_error_set(err, RX_ENOTFOUND, "'%s' is not a valid path in the store '%s'",
                               full, s->root);
        else
            ret = store_db_error(s, err, "reading a valid path");
        sqlite3_reset(st);
        if (ret == 0) {
            /* The same path twice is checked once. */
            bool dup = false;
            for (size_t k = 0; k < *nout && !dup; k++)
                dup = store_path_cmp(&(*out)[k].path, &paths[i]) == 0;
            if (!dup)
                (*nout)++;
        }
    }
    sqlite3_finalize(st);
    if (ret == 0 && *nout > 1)
        qsort(*out, *nout, sizeof **out, cmp_result);
    return ret;
}

int store_query_sigs(struct store *s, const struct store_path *p, char ***sigs, size_t *nsigs,
                     struct rx_error **err)
{
    *sigs = NULL;
    *nsigs = 0;
    sqlite3_stmt *st;
    if (store_db_prepare(s, "select sigs from ValidPaths where path = ?", &st, err) < 0)
        return -1;
    char full[STORE_PATH_MAX + 1];
    store_path_format(p, full);
    sqlite3_bind_text(st, 1, full, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st), ret = 0;
    if (r == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        for (const char *q = t ? t : ""; *q;) {
            q += strspn(q, " ");
            size_t len = strcspn(q, " ");
            if (len == 0)
                break;
            *sigs = xrealloc(*sigs, (*nsigs + 1) * sizeof **sigs);
            (*sigs)[(*nsigs)++] = xstrndup(q, len);
            q += len;
        }
    } else if (r == SQLITE_DONE) {
        ret = rx_error_set(err, RX_ENOTFOUND, "'%s' is not valid", full);
    } else {
        ret = store_db_error(s, err, "reading a path's signatures");
    }
    sqlite3_finalize(st);
    return ret;
}

/* ---- the pool ---- */

struct pool {
    struct store *s;
    uid_t owner;
    struct store_verify_result *v;
    size_t *order; /* indices of v, largest NAR first */
    size_t n;
    _Atomic size_t next;
    _Atomic uint64_t bytes_done;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t done;
};

static void *pool_main(void *arg)
{
    struct pool *p = arg;
    for (;;) {
        size_t k = atomic_fetch_add(&p->next, 1);
        if (k >= p->n)
            break;
        check_path(p->s, p->owner, &p->v[p->order[k]], &p->bytes_done);
        pthread_mutex_lock(&p->mu);
        /* The reporting thread wakes every 200 ms, and at the end. */
        if (++p->done == p->n)
            pthread_cond_signal(&p->cond);
        pthread_mutex_unlock(&p->mu);
    }
    return NULL;
}

static int cmp_size_desc(const void *a, const void *b, void *ctx)
{
    const struct store_verify_result *v = ctx;
    uint64_t x = v[*(const size_t *)a].want_size;
    uint64_t y = v[*(const size_t *)b].want_size;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The CPUs this process may run on (its affinity), else the online ones. */
static unsigned online_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (unsigned)n;
}

int store_verify(struct store *s, const struct store_path *paths, size_t n, unsigned jobs,
                 const struct store_verify_events *ev, struct store_verify_result **out,
                 size_t *nout, struct rx_error **err)
{
    *out = NULL;
    *nout = 0;
    struct store_verify_result *v = NULL;
    size_t nv = 0;
    if ((paths ? load_given(s, paths, n, &v, &nv, err) : load_all(s, &v, &nv, err)) < 0) {
        store_verify_results_free(v, nv);
        return -1;
    }
    struct pool p = {.s = s, .owner = store_owner(s), .v = v, .n = nv};
    uint64_t total = 0;
    p.order = xmalloc((nv ? nv : 1) * sizeof *p.order);
    for (size_t i = 0; i < nv; i++) {
        p.order[i] = i;
        total += v[i].want_size;
    }
    /* Largest first, so that the longest jobs do not start last (2 cores, one big glibc). */
    if (nv > 1)
        qsort_r(p.order, nv, sizeof *p.order, cmp_size_desc, v);
    if (jobs == 0)
        jobs = online_cpus();
    if (jobs > nv)
        jobs = nv ? (unsigned)nv : 1;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cond, NULL);
    pthread_t *threads = xcalloc(jobs, sizeof *threads);
    unsigned started = 0;
    /* The calling thread is one of the workers when there is no progress to report. */
    bool self = !(ev && ev->progress);
    for (unsigned i = self ? 1 : 0; i < jobs; i++) {
        if (pthread_create(&threads[started], NULL, pool_main, &p) != 0)
            break;
        started++;
    }
    if (self || started == 0) {
        pool_main(&p);
    } else {
        pthread_mutex_lock(&p.mu);
        while (p.done < nv) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&p.cond, &p.mu, &ts);
            size_t done = p.done;
            if (done == nv)
                break;
            pthread_mutex_unlock(&p.mu);
            ev->progress(ev->ctx, done, nv, atomic_load(&p.bytes_done), total);
            pthread_mutex_lock(&p.mu);
        }
        pthread_mutex_unlock(&p.mu);
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    free(p.order);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cond);
    *out = v;
    *nout = nv;
    return 0;
}

/* ---- comparing with the right tree ---- */

struct cmp {
    struct store_verify_result *r;
    char *rel;
    size_t len, cap;
};

static void cmp_note(struct cmp *c, enum store_problem_kind k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cmp_note(struct cmp *c, enum store_problem_kind k, const char *fmt, ...)
{
    char d[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    store_verify_add_problem(c->r, k, c->rel, d);
}

static size_t cmp_push(struct cmp *c, const char *name)
{
    size_t old = c->len, n = strlen(name), need = old + n + 2;
    if (need > c->cap) {
        c->cap = need * 2;
        c->rel = xrealloc(c->rel, c->cap);
    }
    if (old)
        c->rel[c->len++] = '/';
    memcpy(c->rel + c->len, name, n + 1);
    c->len += n;
    return old;
}

static void cmp_pop(struct cmp *c, size_t old)
{
    c->len = old;
    c->rel[old] = '\0';
}

static const char *type_name(mode_t m)
{
    return S_ISREG(m)   ? "a regular file"
           : S_ISDIR(m) ? "a directory"
           : S_ISLNK(m) ? "a symlink"
                        : "a special file";
}

/* Do the two regular files hold the same bytes?  -1 on a read error. */
static int same_contents(int afd, int bfd, uint64_t *first_diff)
{
    unsigned char *a = xmalloc(COMPARE_CHUNK), *b = xmalloc(COMPARE_CHUNK);
    uint64_t off = 0;
    int ret = 1;
    for (;;) {
        ssize_t na = read_retry(afd, a, COMPARE_CHUNK), nb = read_retry(bfd, b, COMPARE_CHUNK);
        if (na < 0 || nb < 0) {
            ret = -1;
            break;
        }
        size_t m = (size_t)(na < nb ? na : nb);
        if (memcmp(a, b, m) != 0) {
            size_t i = 0;
            while (a[i] == b[i])
                i++;
            *first_diff = off + i;
            ret = 0;
            break;
        }
        if (na != nb) {
            *first_diff = off + m;
            ret = 0;
            break;
        }
        if (na == 0)
            break;
        off += (uint64_t)na;
    }
    free(a);
    free(b);
    return ret;
}

/* Compare `good` in gdir (the right tree) with `bad` in bdir (on disk). */
static int cmp_node(struct cmp *c, int gdir, const char *good, int bdir, const char *bad,
                    int depth, struct rx_error **err)
{
    if (depth >= VERIFY_MAX_DEPTH)
        return rx_error_set(err, ELOOP, "directories nested deeper than %d levels at '%s'",
                            VERIFY_MAX_DEPTH, c->rel);
    struct stat g, b;
    if (fstatat(gdir, good, &g, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot stat the right copy of '%s'", c->rel);
    if (fstatat(bdir, bad, &b, AT_SYMLINK_NOFOLLOW) < 0) {
        cmp_note(c, STORE_PROBLEM_UNREADABLE, "cannot stat it: %s", strerror(errno));
        return 0;
    }
    if ((g.st_mode & S_IFMT) != (b.st_mode & S_IFMT)) {
        cmp_note(c, STORE_PROBLEM_CHANGED, "%s, should be %s", type_name(b.st_mode),
                 type_name(g.st_mode));
        return 0;
    }
    if (S_ISLNK(g.st_mode)) {
        char tg[NAR_TARGET_MAX + 2], tb[NAR_TARGET_MAX + 2];
        ssize_t ng = readlinkat(gdir, good, tg, sizeof tg - 1);
        ssize_t nb = readlinkat(bdir, bad, tb, sizeof tb - 1);
        if (ng < 0)
            return rx_error_errno(err, "cannot read the right copy of '%s'", c->rel);
        if (nb < 0 || ng != nb || memcmp(tg, tb, (size_t)ng) != 0) {
            tg[ng] = '\0';
            tb[nb < 0 ? 0 : nb] = '\0';
            cmp_note(c, STORE_PROBLEM_CHANGED, "symlink to '%s', should point to '%s'", tb, tg);
        }
        return 0;
    }
    if (S_ISREG(g.st_mode)) {
        bool gx = g.st_mode & S_IXUSR, bx = b.st_mode & S_IXUSR;
        if (gx != bx)
            cmp_note(c, STORE_PROBLEM_MODE, bx ? "executable, should not be"
                                               : "not executable, should be");
        if (g.st_size != b.st_size) {
            cmp_note(c, STORE_PROBLEM_CHANGED, "%lld bytes, should be %lld",
                     (long long)b.st_size, (long long)g.st_size);
            return 0;
        }
        _cleanup_close_ int gf = openat(gdir, good, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (gf < 0)
            return rx_error_errno(err, "cannot open the right copy of '%s'", c->rel);
        _cleanup_close_ int bf = openat(bdir, bad, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (bf < 0) {
            cmp_note(c, STORE_PROBLEM_UNREADABLE, "cannot open it: %s", strerror(errno));
            return 0;
        }
        uint64_t at = 0;
        int same = same_contents(gf, bf, &at);
        if (same < 0)
            cmp_note(c, STORE_PROBLEM_UNREADABLE, "cannot read it: %s", strerror(errno));
        else if (!same)
            cmp_note(c, STORE_PROBLEM_CHANGED, "contents differ from byte %" PRIu64, at);
        return 0;
    }
    /* Directories: a merge of the sorted entries. */
    _cleanup_close_ int gfd = openat(gdir, good, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    char **gn, **bn;
    size_t ngn, nbn;
    if (gfd < 0 || dir_names_at(gfd, &gn, &ngn) < 0)
        return rx_error_errno(err, "cannot read the right copy of '%s'", c->rel);
    _cleanup_close_ int bfd = openat(bdir, bad, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (bfd < 0 || dir_names_at(bfd, &bn, &nbn) < 0) {
        dir_names_free(gn, ngn);
        cmp_note(c, STORE_PROBLEM_UNREADABLE, "cannot read the directory: %s", strerror(errno));
        return 0;
    }
    int ret = 0;
    size_t i = 0, k = 0;
    while (ret == 0 && (i < ngn || k < nbn)) {
        int o = i >= ngn ? 1 : k >= nbn ? -1 : strcmp(gn[i], bn[k]);
        size_t old = cmp_push(c, o <= 0 ? gn[i] : bn[k]);
        struct stat est;
        if (o < 0) {
            bool ok = fstatat(gfd, gn[i], &est, AT_SYMLINK_NOFOLLOW) == 0;
            cmp_note(c, STORE_PROBLEM_DELETED, "%s", ok ? type_name(est.st_mode) : "");
            i++;
        } else if (o > 0) {
            bool ok = fstatat(bfd, bn[k], &est, AT_SYMLINK_NOFOLLOW) == 0;
            cmp_note(c, STORE_PROBLEM_ADDED, "%s", ok ? type_name(est.st_mode) : "");
            k++;
        } else {
            ret = cmp_node(c, gfd, gn[i], bfd, bn[k], depth + 1, err);
            i++;
            k++;
        }
        cmp_pop(c, old);
    }
    dir_names_free(gn, ngn);
    dir_names_free(bn, nbn);
    return ret;
}

int store_verify_compare(struct store *s, struct store_verify_result *r, const char *name,
                         struct rx_error **err)
{
    int tmp = store_tmp_fd(s, err);
    if (tmp < 0)
        return -1;
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(&r->path, base);
    /* What the comparison says replaces what the hash alone could say. */
    struct store_problem *keep = NULL;
    size_t nkeep = 0;
    for (size_t i = 0; i < r->nproblems; i++) {
        if (r->problems[i].kind == STORE_PROBLEM_META) {
            keep = xrealloc(keep, (nkeep + 1) * sizeof *keep);
            keep[nkeep++] = r->problems[i];
        } else {
            free(r->problems[i].file);
            free(r->problems[i].detail);
        }
    }
    free(r->problems);
    r->problems = NULL;
    r->nproblems = 0;
    struct cmp c = {.r = r, .cap = 256};
    c.rel = xmalloc(c.cap);
    c.rel[0] = '\0';
    int ret = 0;
    struct stat st;
    if (fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        cmp_note(&c, STORE_PROBLEM_DELETED, "the whole path");
    else
        ret = cmp_node(&c, tmp, name, s->store_fd, base, 0, err);
    free(c.rel);
    for (size_t i = 0; i < nkeep; i++) {
        store_verify_add_problem(r, keep[i].kind, keep[i].file, keep[i].detail);
        free(keep[i].file);
        free(keep[i].detail);
    }
    free(keep);
    if (ret == 0)
        r->detailed = true;
    return ret;
}

/* ---- repair ---- */

static const struct timespec mtime_one[2] = {{1, 0}, {1, 0}};

static int fix_node(int dirfd, const char *name, uid_t owner, bool may_chown, int depth,
                    struct rx_error **err);

int store_verify_swap(struct store *s, const struct store_path *p, const char *name,
                      struct rx_error **err)
{
    int tmp = store_tmp_fd(s, err);
    if (tmp < 0)
        return -1;
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    /* Root repairs a user's store: the new tree is the store owner's too. */
    uid_t owner = store_owner(s);
    if (geteuid() == 0 && owner != 0 && fix_node(tmp, name, owner, true, 0, err) < 0)
        return -1;
    /* The new tree is on disk before it takes the old one's place. */
    if (store_sync(s, err) < 0)
        return -1;
    struct stat st;
    bool there = fstatat(s->store_fd, base, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!there && errno != ENOENT)
        return rx_error_errno(err, "cannot stat '%s/nix/store/%s'", s->root, base);
    if (there) {
        /* Moving a directory to another parent needs write access to it. */
        if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IWUSR) &&
            fchmodat(s->store_fd, base, (st.st_mode & 07777) | S_IWUSR, 0) < 0)
            return rx_error_errno(err, "cannot make '%s/nix/store/%s' writable to replace it",
                                  s->root, base);
        if (renameat2(tmp, name, s->store_fd, base, RENAME_EXCHANGE) < 0)
            return rx_error_errno(err,
                                  "cannot exchange '%s/nix/store/%s' with its repaired copy "
                                  "(the file system needs renameat2 RENAME_EXCHANGE)",
                                  s->root, base);
    } else if (renameat2(tmp, name, s->store_fd, base, RENAME_NOREPLACE) < 0) {
        return rx_error_errno(err, "cannot move the repaired copy of '%s' into '%s/nix/store'",
                              base, s->root);
    }
    /* The root was left writable so that it could move; now it is canonical. */
    struct stat nst;
    if (fstatat(s->store_fd, base, &nst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(nst.st_mode) &&
        fchmodat(s->store_fd, base, 0555, 0) < 0)
        return rx_error_errno(err, "cannot make '%s/nix/store/%s' read-only", s->root, base);
    utimensat(s->store_fd, base, mtime_one, AT_SYMLINK_NOFOLLOW);
    /* The damaged tree, now in the work dir under the new tree's name. */
    if (there && rm_rf_at(tmp, name, err) < 0)
        return rx_error_wrap(err, "removing the damaged copy of '%s'", base);
    return 0;
}

static int fix_node(int dirfd, const char *name, uid_t owner, bool may_chown, int depth,
                    struct rx_error **err)
{
    if (depth >= VERIFY_MAX_DEPTH)
        return rx_error_set(err, ELOOP, "directories nested deeper than %d levels", depth);
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot stat '%s'", name);
    if (st.st_uid != owner && may_chown &&
        fchownat(dirfd, name, owner, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0)
        return rx_error_errno(err, "cannot give '%s' to the store's owner", name);
    if (!S_ISLNK(st.st_mode) && (st.st_mode & 07777) != canonical_perm(&st) &&
        fchmodat(dirfd, name, canonical_perm(&st), 0) < 0)
        return rx_error_errno(err, "cannot change the mode of '%s'", name);
    if (S_ISDIR(st.st_mode)) {
        _cleanup_close_ int fd =
            openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char **names;
        size_t n;
        if (fd < 0 || dir_names_at(fd, &names, &n) < 0)
            return rx_error_errno(err, "cannot read directory '%s'", name);
        int ret = 0;
        for (size_t i = 0; ret == 0 && i < n; i++)
            ret = fix_node(fd, names[i], owner, may_chown, depth + 1, err);
        dir_names_free(names, n);
        if (ret < 0)
            return rx_error_wrap(err, "%s", name);
    }
    if (st.st_mtim.tv_sec != 1 || st.st_mtim.tv_nsec != 0)
        if (utimensat(dirfd, name, mtime_one, AT_SYMLINK_NOFOLLOW) < 0)
            return rx_error_errno(err, "cannot set the mtime of '%s'", name);
    return 0;
}

int store_verify_fix_modes(struct store *s, const struct store_path *p, struct rx_error **err)
{
    char base[STORE_BASENAME_MAX + 1];
    store_path_basename(p, base);
    if (fix_node(s->store_fd, base, store_owner(s), geteuid() == 0, 0, err) < 0)
        return rx_error_wrap(err, "'%s/nix/store'", s->root);
    return 0;
}
