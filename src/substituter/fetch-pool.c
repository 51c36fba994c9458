/* The download threads: a queue of NAR jobs, each streamed through the NAR pipeline. */
#include "config.h"

#define RUNIX_FETCH_INTERNAL
#include "fetch-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "decompress.h"
#include "nar-dump.h"
#include "store.h"
#include "util-fs.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

/* One NAR on its way: the pipeline, and how much of the progress it has counted. */
struct download {
    struct fetch *f;
    struct nar_pipeline p;
    uint64_t counted;
};

static bool download_body(void *ctx, const void *data, size_t len)
{
    struct download *d = ctx;
    if (d->p.err || rx_interrupted)
        return false;
    if (nar_pipeline_feed(&d->p, data, len) < 0)
        return false;
    d->counted += len;
    atomic_fetch_add(&d->f->bytes_done, len);
    /* The NAR is complete and only padding follows: no need for the rest. */
    return !d->p.complete;
}

static const struct timespec mtime_one[2] = {{1, 0}, {1, 0}};

/* Check everything after the last byte, then move the tree into nix/store. */
static enum outcome install(struct fetch *f, struct nar_pipeline *p, const struct job *j,
                            struct rx_error **err)
{
    enum outcome out = nar_pipeline_finish(p, err);
    if (out != OUT_OK)
        return out;
    struct store_path sp;
    if (store_path_parse_basename(j->base, strlen(j->base), &sp, err) < 0)
        return OUT_PERMANENT;
    if (store_install(f->store, j->base, &sp, err) < 0)
        return OUT_LOCAL;
    /* The root was left writable so it could move; now make it canonical. */
    int sfd = store_dir_fd(f->store);
    struct stat st;
    if (fstatat(sfd, j->base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        fchmodat(sfd, j->base, 0555, 0);
    utimensat(sfd, j->base, mtime_one, AT_SYMLINK_NOFOLLOW);
    return OUT_OK;
}

static uint64_t job_size(const struct job *j)
{
    return j->want.has_file_size ? j->want.file_size : j->want.nar_size;
}

/*
 * Is the tree name in dfd as canonicalisation leaves it: directories 0555,
 * files 0444 or 0555, everything with mtime 1 and ours?
 */
static bool tree_canonical(int dfd, const char *name, uid_t me, int depth)
{
    struct stat st;
    if (depth > 256 || fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_uid != me ||
        st.st_mtim.tv_sec != 1)
        return false;
    mode_t m = st.st_mode & 07777;
    if (S_ISLNK(st.st_mode))
        return true;
    if (S_ISREG(st.st_mode))
        return m == 0444 || m == 0555;
    if (!S_ISDIR(st.st_mode) || m != 0555)
        return false;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ok = tree_canonical(dirfd(d), e->d_name, me, depth + 1);
    closedir(d);
    return ok;
}

struct nar_count {
    struct sha256_ctx h;
    uint64_t size;
};

static int count_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    (void)err;
    struct nar_count *c = ctx;
    sha256_update(&c->h, data, len);
    c->size += len;
    return 0;
}

/*
 * A tree already in nix/store under our lock is what a run left that was
 * killed between installing and registering it (or one unregistered since,
 * because a path it needs had gone).  When it is exactly the NAR the
 * narinfo names, in canonical form, it is kept rather than downloaded
 * again: 1.  0 when there is none or it is not that (it is removed then),
 * -1 when it cannot be removed.
 */
static int reuse_leftover(struct fetch *f, struct job *j, struct rx_error **err)
{
    int sfd = store_dir_fd(f->store);
    struct store_path sp;
    if (store_path_parse_basename(j->base, strlen(j->base), &sp, err) < 0)
        return -1;
    struct stat st;
    if (fstatat(sfd, j->base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return 0;
    if (tree_canonical(sfd, j->base, geteuid(), 0)) {
        struct nar_count c = {.size = 0};
        sha256_init(&c.h);
        struct hash h;
        if (nar_dump_at(sfd, j->base, count_sink, &c, NULL) == 0) {
            sha256_final(&c.h, &h);
            if (c.size == j->want.nar_size && hash_equal(&h, &j->want.nar_hash))
                return 1;
        }
    }
    return store_remove_invalid(f->store, &sp, err) < 0 ? -1 : 0;
}

/* Download and unpack one NAR; decp is the thread's decompressor, kept across jobs. */
static void run_job(struct fetch *f, struct fetch_http_conn *c, struct job *j,
                    struct decompressor **decp)
{
    const struct fetch_opts *o = f->o;
    unsigned attempts = o->attempts ? o->attempts : FETCH_DEFAULT_ATTEMPTS;
    if (rx_interrupted) {
        j->outcome = OUT_PERMANENT;
        return;
    }
    int kept = reuse_leftover(f, j, &j->err);
    if (kept != 0) {
        j->outcome = kept > 0 ? OUT_OK : OUT_LOCAL;
        if (kept > 0)
            atomic_fetch_add(&f->bytes_done, job_size(j));
        return;
    }
    int tmp_fd = store_tmp_fd(f->store, NULL);
    /* Parallel downloads keep the cores busy: no helper thread per NAR. */
    struct nar_unpack_opts uo = {.canonical = true, .umask = o->umask, .root_writable = true};

    rm_rf_at(tmp_fd, j->base, NULL);
    struct download d = {.f = f};
    bool resume = false, can_resume = true;
    for (unsigned attempt = 1;; attempt++) {
        if (!resume) {
            d.counted = 0;
            if (nar_pipeline_start(&d.p, &j->want, tmp_fd, j->base, &uo, decp, &j->err) < 0) {
                j->outcome = OUT_PERMANENT;
                return;
            }
        }
        struct http_get_result res;
        fetch_http_get(c, j->url, resume ? d.p.fsize : 0, download_body, &d, &res);

        enum outcome out;
        rx_error_clear(&j->err);
        bool transfer_error = false; /* the connection failed, not the data */
        if (d.p.err) {
            out = nar_pipeline_outcome(&d.p);
            j->err = steal_pointer(&d.p.err);
        } else if (d.p.complete) {
            out = install(f, &d.p, j, &j->err);
        } else if (res.outcome != OUT_OK) {
            /* Not found is final too: the narinfo said it was there. */
            out = res.outcome == OUT_NOT_FOUND ? OUT_PERMANENT : res.outcome;
            rx_error_set(&j->err, RX_ENET, "%s", res.why);
            transfer_error = true;
        } else {
            out = install(f, &d.p, j, &j->err);
        }
        free(res.why);
        /*
         * A connection that broke mid-body leaves the pipeline (hashes, decompressor,
         * half-written tree) exactly after the last byte received: the next attempt asks
         * for the rest with a Range request and feeds it on.  Anything else starts over.
         */
        if (res.range_refused && resume) {
            /* The server cannot resume: start over at once, this attempt not counted. */
            can_resume = false;
            resume = false;
            atomic_fetch_sub(&f->bytes_done, d.counted);
            nar_pipeline_release(&d.p, true);
            attempt--;
            continue;
        }
        resume = can_resume && !res.encoded && out == OUT_TRANSIENT && transfer_error &&
                 d.p.fsize > 0 && attempt < attempts;
        if (!resume) {
            atomic_fetch_sub(&f->bytes_done, out == OUT_OK ? 0 : d.counted);
            nar_pipeline_release(&d.p, out != OUT_OK);
        }
        j->outcome = out;
        if (out != OUT_TRANSIENT || attempt >= attempts || rx_interrupted)
            return;
        fetch_pause_s(fetch_backoff_s(attempt));
    }
}

static void job_free(struct job *j)
{
    free(j->url);
    free(j->cache_url);
    rx_error_free(j->err);
    free(j);
}

/*
 * A download that keeps a core busy for a while: much to download, or much
 * to decompress, hash and write (a NAR that compressed well also fills a
 * large decoder window).
 */
static bool job_is_big(const struct job *j)
{
    return job_size(j) >= BIG_DOWNLOAD || j->want.nar_size >= BIG_NAR;
}

/*
 * The queued job to start next, taken off the queue, or NULL; f->mu held.
 * The largest goes first: decompressing the largest NAR is usually the
 * critical path.  Big downloads keep a core busy each, so at most
 * f->big_max of them run at once; small ones spend their time waiting for
 * the network, and the other workers take them meanwhile.
 */
static struct job *queue_take(struct fetch *f)
{
    bool big_ok = f->big_running < f->big_max;
    struct job **best = NULL;
    for (struct job **pp = &f->queue; *pp; pp = &(*pp)->next) {
        uint64_t size = job_size(*pp);
        if ((big_ok || !job_is_big(*pp)) && (!best || size > job_size(*best)))
            best = pp;
    }
    if (!best)
        return NULL;
    struct job *j = *best;
    *best = j->next;
    j->next = NULL;
    if (job_is_big(j))
        f->big_running++;
    return j;
}

static void *worker_main(void *arg)
{
    struct fetch *f = arg;
    struct decompressor *dec = NULL; /* kept from one NAR to the next */
    struct fetch_http_conn *c = fetch_http_conn_new(f);
    pthread_mutex_lock(&f->mu);
    for (;;) {
        struct job *j;
        /* Queued big jobs wait for a running one to end; its worker takes them then. */
        while (!(j = queue_take(f)) && !(f->stop && !f->queue)) {
            f->idle++;
            pthread_cond_wait(&f->cond, &f->mu);
            f->idle--;
            if (f->waking > 0)
                f->waking--;
        }
        if (!j)
            break;
        pthread_mutex_unlock(&f->mu);

        if (c) {
            run_job(f, c, j, &dec);
            /* Keep the decoder's memory only if a small NAR touched little of it. */
            if (j->want.nar_size > KEEP_DECODER_MAX) {
                decompressor_free(dec);
                dec = NULL;
            }
        } else {
            j->outcome = OUT_PERMANENT;
            rx_error_set(&j->err, ENOMEM, "cannot initialise libcurl");
        }

        pthread_mutex_lock(&f->mu);
        if (job_is_big(j))
            f->big_running--;
        j->next = f->done;
        f->done = j;
        fetch_http_wakeup(f);
    }
    pthread_mutex_unlock(&f->mu);
    decompressor_free(dec);
    fetch_http_conn_free(c);
    return NULL;
}

/* The CPUs this process may run on. */
static unsigned usable_cores(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return (unsigned)CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (unsigned)n;
}

/*
 * Big downloads: two per core, so that one waiting on the network leaves no
 * core idle, and memory stays bounded (each holds a decoder window).
 * Downloads in all: one per connection (http-connections, at most
 * MAX_WORKERS), so that a closure of many small paths is asked for in as
 * few round trips as the connections allow.
 */
static void worker_counts(const struct fetch_opts *o, unsigned *big, unsigned *all)
{
    if (o->jobs) {
        *big = *all = o->jobs;
        return;
    }
    unsigned conns = o->http_connections ? o->http_connections : FETCH_DEFAULT_CONNECTIONS;
    unsigned b = usable_cores() * 2;
    b = b < 2 ? 2 : b > 8 ? 8 : b;
    *big = b < conns ? b : conns;
    unsigned a = *big > MAX_WORKERS ? *big : MAX_WORKERS;
    *all = a < conns ? a : conns;
}

/*
 * The first worker starts here, so that a thread can always be had; the
 * others start as jobs are queued with none idle (fetch_job_submit).
 */
int fetch_workers_start(struct fetch *f, struct rx_error **err)
{
    worker_counts(f->o, &f->big_max, &f->max_threads);
    f->threads = xcalloc(f->max_threads, sizeof *f->threads);
    int r = pthread_create(&f->threads[0], NULL, worker_main, f);
    if (r != 0) {
        errno = r;
        return rx_error_errno(err, "cannot start a download thread");
    }
    f->nthreads = 1;
    return 0;
}

void fetch_workers_stop(struct fetch *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    if (f->aborting) {
        /* Not started yet: not needed any more. */
        while (f->queue) {
            struct job *j = f->queue;
            f->queue = j->next;
            f->outstanding--;
            job_free(j);
        }
    }
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    /* The requests holding connections are not served any more. */
    if (f->aborting)
        fetch_http_stop_waiting(f);
    for (unsigned i = 0; i < f->nthreads; i++)
        pthread_join(f->threads[i], NULL);
    free(f->threads);
    f->threads = NULL;
    f->nthreads = 0;
}

/* Queue the download of an item whose narinfo was accepted; it is ours and locked. */
void fetch_job_submit(struct fetch *f, size_t idx)
{
    struct item *it = &f->items[idx];
    const struct cache *c = &f->o->caches[it->cache];
    struct job *j = xcalloc(1, sizeof *j);
    j->item = idx;
    j->url = cache_file_url(c, it->ni.url);
    j->cache_url = xstrdup(c->url);
    store_path_basename(&it->path, j->base);
    if (it->ni.dropped) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&it->path, full);
        fetch_warn(f, "narinfo of '%s' from '%s': %s", full, c->url, it->ni.dropped);
    }
    struct nar_expect *w = &j->want;
    snprintf(w->compression, sizeof w->compression, "%s", it->ni.compression);
    w->has_file_hash = it->ni.has_file_hash;
    w->file_hash = it->ni.file_hash;
    w->has_file_size = it->ni.has_file_size;
    w->file_size = it->ni.file_size;
    w->nar_hash = it->ni.nar_hash;
    w->nar_size = it->ni.nar_size;
    /* Uncompressed, the download is the NAR: the NarHash check is the FileHash check. */
    w->file_is_nar = strcmp(w->compression, "none") == 0 && w->has_file_hash &&
                     hash_equal(&w->file_hash, &w->nar_hash);
    it->state = S_DOWNLOADING;
    bool inside = cache_rel_inside(it->ni.url) && cache_file_resolves_inside(c, it->ni.url);
    pthread_mutex_lock(&f->mu);
    if (!inside) {
        /* The narinfo parser refuses this; a second check where the URL is made. */
        j->outcome = OUT_PERMANENT;
        rx_error_set(&j->err, RX_EFORMAT, "URL '%s' is not inside the cache", it->ni.url);
        j->next = f->done;
        f->done = j;
        f->outstanding++;
        fetch_http_wakeup(f);
        pthread_mutex_unlock(&f->mu);
        return;
    }
    j->next = f->queue;
    f->queue = j;
    f->outstanding++;
    if (f->idle > f->waking) {
        f->waking++;
        pthread_cond_signal(&f->cond);
    } else if (f->nthreads < f->max_threads &&
               pthread_create(&f->threads[f->nthreads], NULL, worker_main, f) == 0) {
        f->nthreads++;
    }
    pthread_mutex_unlock(&f->mu);
    fetch_announce_start(f, it); /* the caller's, outside the lock */
}

/* A store that cannot take the path: no other cache can help. */
static void local_failure(struct fetch *f, struct item *it, const struct job *j)
{
    /* One such message says it all. */
    if (f->local_failed) {
        it->state = S_FAILED;
        return;
    }
    f->local_failed = true;
    bool space = j->err && (j->err->code == ENOSPC || j->err->code == EDQUOT);
    _cleanup_free_ char *msg =
        xasprintf("%s (in the store %s%s)", j->err ? j->err->msg : "cannot write to the store",
                  store_root(f->store),
                  space ? "; free some space there, or choose another store with --store" : "");
    fetch_fail_path(f, it, msg);
    f->aborting = true;
}

static void handle_job(struct fetch *f, struct job *j)
{
    struct item *it = &f->items[j->item];
    f->outstanding--;
    if (j->outcome == OUT_OK) {
        it->state = S_ON_DISK;
        fetch_count_done(f);
        return;
    }
    if (rx_interrupted) {
        it->state = S_FAILED; /* stopped on purpose: nothing to say */
        return;
    }
    if (j->outcome == OUT_LOCAL) {
        local_failure(f, it, j);
        return;
    }
    const char *why = j->err ? j->err->msg : "download failed";
    _cleanup_free_ char *url = cache_url_redact(j->url); /* without credentials */
    size_t next = it->cache + 1;
    while (next < f->o->ncaches && !f->o->caches[next].usable)
        next++;
    if (next >= f->o->ncaches) {
        /* The last cache: the error says what happened, once, not "no cache could". */
        _cleanup_free_ char *s = xasprintf("downloading '%s': %s", url, why);
        fetch_fail_path(f, it, s);
        return;
    }
    /* Another cache is asked: a warning now, and a line of the error if that fails too. */
    fetch_item_note(it, j->cache_url, "%s: %s", url, why);
    char full[STORE_PATH_MAX + 1];
    store_path_format(&it->path, full);
    fetch_warn(f, "cannot download '%s' from '%s': %s", full, url, why);
    fetch_next_cache(f, it);
}

/* Take in the jobs the workers have finished (main thread). */
void fetch_drain_jobs(struct fetch *f)
{
    pthread_mutex_lock(&f->mu);
    struct job *d = f->done;
    f->done = NULL;
    pthread_mutex_unlock(&f->mu);
    while (d) {
        struct job *next = d->next;
        handle_job(f, d);
        job_free(d);
        d = next;
    }
}
