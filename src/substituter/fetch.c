#include "config.h"
#include "fetch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "decompress.h"
#include "nar-reader.h"
#include "nar-unpack.h"
#include "narinfo.h"
#include "util-buf.h"
#include "util-fs.h"
#include "util-mem.h"
#include "util-signal.h"

#include "banned.h"

#define MAX_ACTIVE_QUERIES 64
#define CACHE_INFO_MAX (64 * 1024)
#define TICK_MS 200
#define REGISTER_EVERY_S 0.25
#define MAX_WORKERS 16
#define BIG_DOWNLOAD (1024 * 1024)
#define BIG_NAR (8 * 1024 * 1024)
#define KEEP_DECODER_MAX (1024 * 1024) /* NarSize */

/* ---- outcome of one request ---- */

enum outcome {
    OUT_OK,
    OUT_NOT_FOUND, /* 404, 410, 401, 403, 407, missing file: ask the next cache */
    OUT_TRANSIENT, /* retry here after a pause */
    OUT_PERMANENT, /* give up on this cache for this path */
    OUT_LOCAL,     /* writing to the store failed (no space, I/O error): stop */
};

static enum outcome classify(CURLcode rc, long code)
{
    switch (rc) {
    case CURLE_OK:
        return (code == 0 || (code >= 200 && code < 300)) ? OUT_OK : OUT_PERMANENT;
    case CURLE_HTTP_RETURNED_ERROR:
        if (code == 404 || code == 410 || code == 401 || code == 403 || code == 407)
            return OUT_NOT_FOUND;
        if (code == 408 || code == 429 ||
            (code >= 500 && code != 501 && code != 505 && code != 511))
            return OUT_TRANSIENT;
        return OUT_PERMANENT;
    case CURLE_FILE_COULDNT_READ_FILE:
    case CURLE_REMOTE_FILE_NOT_FOUND:
        return OUT_NOT_FOUND;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_TOO_MANY_REDIRECTS:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_LOGIN_DENIED:
    case CURLE_WRITE_ERROR:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
        return OUT_PERMANENT;
    default:
        return OUT_TRANSIENT;
    }
}

static char *describe(CURLcode rc, long code, const char *errbuf)
{
    if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && code >= 300))
        return xasprintf("HTTP status %ld", code);
    return xasprintf("%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nix's backoff: 250 ms * 2^(attempt-1), times a random 1..1.41. */
static double backoff_s(unsigned attempt)
{
    uint16_t r = 0;
    if (getrandom(&r, sizeof r, 0) != sizeof r)
        r = 0;
    double f = 1.0 + 0.41 * (double)r / 65535.0;
    return 0.25 * (double)(1u << (attempt > 10 ? 10 : attempt - 1)) * f;
}

static void setup_easy(CURL *e, const struct fetch_opts *o, CURLSH *share)
{
    if (share)
        curl_easy_setopt(e, CURLOPT_SHARE, share);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "runix/" RUNIX_VERSION);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     o->stalled_timeout > 0 ? o->stalled_timeout : (long)FETCH_DEFAULT_STALL);
    if (o->connect_timeout > 0)
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (o->netrc_file) {
        curl_easy_setopt(e, CURLOPT_NETRC, (long)CURL_NETRC_OPTIONAL);
        curl_easy_setopt(e, CURLOPT_NETRC_FILE, o->netrc_file);
    }
}

/* ---- items: the paths of the closure ---- */

enum item_state {
    S_VALID,       /* in the store already, or registered by us */
    S_NEED_INFO,   /* narinfo to be asked for (at retry_at) */
    S_QUERYING,    /* narinfo request in flight */
    S_HAVE_INFO,   /* narinfo accepted; nothing more (dry run) */
    S_DOWNLOADING, /* ours, locked, with a download thread */
    S_FOREIGN,     /* another process holds its lock */
    S_ON_DISK,     /* ours, in nix/store, not yet registered */
    S_FAILED,
};

struct item {
    struct store_path path;
    enum item_state state;
    bool top;
    bool have_ni;
    struct narinfo ni;
    size_t cache;      /* index of the cache being asked / the narinfo's cache */
    unsigned attempt;  /* of the current request on that cache */
    double retry_at;
    int lock_fd;
    struct rx_buf why; /* "cache: reason" lines, for the final error */
    size_t *refs;      /* item indices of the references, self excluded */
    size_t nrefs;
};

/* ---- download jobs, run by worker threads ---- */

struct job {
    struct job *next;
    size_t item;
    char *url;       /* owned */
    char *cache_url; /* owned, for messages */
    char base[STORE_BASENAME_MAX + 1];
    char compression[16];
    bool has_file_hash, has_file_size;
    bool file_is_nar; /* uncompressed, with FileHash = NarHash: one hash checks both */
    struct hash file_hash;
    uint64_t file_size;
    struct hash nar_hash;
    uint64_t nar_size;
    /* result */
    int rc;
    enum outcome outcome;
    struct rx_error *err;
};

struct fetch;

struct pipeline {
    struct fetch *f;
    struct job *job;
    struct sha256_ctx fh, nh;
    uint64_t fsize, nsize, counted;
    struct decompressor *dec;
    struct nar_reader *reader;
    struct nar_unpacker *unp;
    struct rx_error *err;
    bool content_error; /* the data was wrong, not short */
    bool local_error;   /* the store could not take it (errno) */
    bool encoded;       /* sent with a Content-Encoding: byte offsets are not ours */
};

struct fetch {
    struct store *store;
    const struct fetch_opts *o;
    struct item *items;
    size_t nitems, cap;
    size_t *table; /* open addressing on the hash part; SIZE_MAX = empty */
    size_t table_cap;

    CURLM *multi;
    unsigned info_active;  /* nix-cache-info requests among `active` */
    bool infos_pending;    /* nix-cache-info not all in yet: hold narinfos */
    struct xfer *xfers;    /* all live ones, held ones included */
    CURLSH *share; /* DNS answers and TLS sessions, for every handle */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
    unsigned active;
    bool aborting;
    bool local_failed;      /* the store itself failed; said once */
    struct rx_buf failures; /* what made us abort */

    /* worker pool */
    pthread_t *threads;
    unsigned nthreads, max_threads;
    unsigned idle, waking; /* workers waiting for a job; of those, signalled */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct job *queue, *done; /* queue: unordered (see queue_take) */
    bool stop;
    unsigned outstanding;
    unsigned big_running, big_max; /* see job_is_big */

    /* progress */
    _Atomic uint64_t bytes_done;
    uint64_t bytes_total;
    size_t paths_total, paths_done;
    double started, last_tick;
    bool status_shown;
    double registered_at; /* when register_some last ran */

    /* nix-cache-info requests, per cache */
    unsigned *info_attempt;
    double *info_retry_at; /* < 0: not due */
};

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *ctx)
{
    (void)h;
    (void)access;
    struct fetch *f = ctx;
    pthread_mutex_lock(&f->share_mu[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *ctx)
{
    (void)h;
    struct fetch *f = ctx;
    pthread_mutex_unlock(&f->share_mu[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

/*
 * Every connection, the download threads' included, looks a host up once
 * and resumes the TLS session an earlier one got, saving a round trip per
 * new connection to a distant cache.  (libcurl cannot share connections
 * themselves between threads.)
 */
static void share_start(struct fetch *f)
{
    for (size_t i = 0; i < ARRAY_SIZE(f->share_mu); i++)
        pthread_mutex_init(&f->share_mu[i], NULL);
    f->share = curl_share_init();
    if (!f->share)
        return;
    curl_share_setopt(f->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(f->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(f->share, CURLSHOPT_USERDATA, f);
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(f->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
}

static void share_end(struct fetch *f)
{
    /* Only once no handle uses it; libcurl refuses otherwise, and it stays. */
    if (f->share && curl_share_cleanup(f->share) != CURLSHE_OK)
        return;
    f->share = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(f->share_mu); i++)
        pthread_mutex_destroy(&f->share_mu[i]);
}

static uint64_t hash_key(const char *h)
{
    uint64_t x = 1469598103934665603ull;
    for (int i = 0; i < STORE_HASH_LEN; i++)
        x = (x ^ (unsigned char)h[i]) * 1099511628211ull;
    return x;
}

static void table_grow(struct fetch *f)
{
    size_t ncap = f->table_cap ? f->table_cap * 2 : 256;
    size_t *t = xmalloc(ncap * sizeof *t);
    for (size_t i = 0; i < ncap; i++)
        t[i] = SIZE_MAX;
    for (size_t i = 0; i < f->nitems; i++) {
        size_t h = hash_key(f->items[i].path.hash) & (ncap - 1);
        while (t[h] != SIZE_MAX)
            h = (h + 1) & (ncap - 1);
        t[h] = i;
    }
    free(f->table);
    f->table = t;
    f->table_cap = ncap;
}

/* The item for p, created if new (*created set).  Returns its index. */
static size_t item_get(struct fetch *f, const struct store_path *p, bool *created)
{
    if ((f->nitems + 1) * 2 > f->table_cap)
        table_grow(f);
    size_t h = hash_key(p->hash) & (f->table_cap - 1);
    while (f->table[h] != SIZE_MAX) {
        struct item *it = &f->items[f->table[h]];
        if (memcmp(it->path.hash, p->hash, STORE_HASH_LEN) == 0 &&
            strcmp(it->path.name, p->name) == 0) {
            *created = false;
            return f->table[h];
        }
        h = (h + 1) & (f->table_cap - 1);
    }
    if (f->nitems == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->items = xrealloc(f->items, f->cap * sizeof *f->items);
    }
    size_t idx = f->nitems++;
    struct item *it = &f->items[idx];
    memset(it, 0, sizeof *it);
    it->path = *p;
    it->lock_fd = -1;
    it->state = S_NEED_INFO;
    struct rx_buf why = RX_BUF_INIT(64 * 1024);
    it->why = why;
    f->table[h] = idx;
    *created = true;
    return idx;
}

static void item_note(struct item *it, const char *cache, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void item_note(struct item *it, const char *cache, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    _cleanup_free_ char *msg = xvasprintf(fmt, ap);
    va_end(ap);
    _cleanup_free_ char *line = xasprintf("\n  %s: %s", cache, msg);
    if (rx_buf_append(&it->why, line, strlen(line)) < 0) {
        /* Enough has been said already. */
    }
}

static void fail_path(struct fetch *f, struct item *it, const char *summary)
{
    char full[STORE_PATH_MAX + 1];
    store_path_format(&it->path, full);
    it->state = S_FAILED;
    f->aborting = true;
    _cleanup_free_ char *msg = xasprintf("%scannot fetch '%s': %s%s", f->failures.len ? "\n" : "",
                                         full, summary, it->why.data ? it->why.data : "");
    if (rx_buf_append(&f->failures, msg, strlen(msg)) < 0) {
        /* Enough has been said already. */
    }
}

/* ---- progress ---- */

static void fmt_size(uint64_t b, char *out, size_t n)
{
    if (b < 1024)
        snprintf(out, n, "%" PRIu64 " B", b);
    else if (b < 1024 * 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024);
    else if (b < 1024ull * 1024 * 1024)
        snprintf(out, n, "%.1f MiB", (double)b / (1024 * 1024));
    else
        snprintf(out, n, "%.2f GiB", (double)b / (1024.0 * 1024 * 1024));
}

static void status_clear(struct fetch *f)
{
    if (f->status_shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        f->status_shown = false;
    }
}

static void status_tick(struct fetch *f, bool force)
{
    if (f->o->output != FETCH_TTY)
        return;
    double t = now_s();
    if (!force && t - f->last_tick < TICK_MS / 1000.0)
        return;
    f->last_tick = t;
    uint64_t done = atomic_load(&f->bytes_done);
    double el = t - f->started;
    double rate = el > 0.2 ? (double)done / el : 0;
    char a[32], b[32], r[32], eta[32] = "";
    fmt_size(done, a, sizeof a);
    fmt_size(f->bytes_total, b, sizeof b);
    fmt_size((uint64_t)rate, r, sizeof r);
    if (rate > 0 && f->bytes_total > done)
        snprintf(eta, sizeof eta, ", ETA %.0fs", (double)(f->bytes_total - done) / rate);
    fprintf(stderr, "\r\033[Kfetching: %zu/%zu paths, %s/%s, %s/s%s", f->paths_done,
            f->paths_total, a, b, r, eta);
    fflush(stderr);
    f->status_shown = true;
}

static void announce_done(struct fetch *f, const struct item *it)
{
    f->paths_done++;
    if (f->o->output == FETCH_LINES) {
        char full[STORE_PATH_MAX + 1], sz[32];
        store_path_format(&it->path, full);
        fmt_size(it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size, sz, sizeof sz);
        fprintf(stderr, "fetched %s (%s)\n", full, sz);
    } else {
        status_tick(f, true);
    }
}

/* ---- the NAR pipeline (worker threads) ---- */

/* Did writing to the store fail, rather than the data or the network? */
static bool is_local(const struct rx_error *e)
{
    return e->code < RX_EBASE;
}

static int nar_sink(void *ctx, const void *data, size_t len, struct rx_error **err)
{
    struct pipeline *p = ctx;
    if (len > p->job->nar_size - p->nsize) {
        p->content_error = true;
        return rx_error_set(err, RX_EHASH, "NAR is larger than its NarSize %" PRIu64,
                            p->job->nar_size);
    }
    p->nsize += len;
    sha256_update(&p->nh, data, len);
    if (nar_reader_feed(p->reader, data, len, err) < 0) {
        /* The unpacker's system calls fail with errno; the reader's checks do not. */
        if (*err && is_local(*err))
            p->local_error = true;
        else
            p->content_error = true;
        return -1;
    }
    return 0;
}

static size_t body_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct pipeline *p = ctx;
    size_t n = size * nmemb;
    if (p->err || rx_interrupted)
        return 0;
    if (p->job->has_file_size && n > p->job->file_size - p->fsize) {
        p->content_error = true;
        rx_error_set(&p->err, RX_EHASH, "download is larger than its FileSize %" PRIu64,
                     p->job->file_size);
        return 0;
    }
    p->fsize += n;
    p->counted += n;
    atomic_fetch_add(&p->f->bytes_done, n);
    if (!p->job->file_is_nar)
        sha256_update(&p->fh, data, n);
    if (decompressor_feed(p->dec, data, n, &p->err) < 0) {
        /* Corrupt compressed data is wrong content; a sink error says itself. */
        if (p->err && p->err->code == RX_EFORMAT)
            p->content_error = true;
        return 0;
    }
    return n;
}

/*
 * Notes a Content-Encoding (libcurl decodes it): a Range request counts in
 * the encoded bytes, so such a download cannot be resumed from what we hold.
 */
static size_t header_cb(char *line, size_t size, size_t nmemb, void *ctx)
{
    struct pipeline *p = ctx;
    size_t n = size * nmemb;
    static const char name[] = "content-encoding:";
    if (n > 5 && memcmp(line, "HTTP/", 5) == 0) {
        p->encoded = false; /* a new response (after a redirect) */
    } else if (n > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        const char *v = line + sizeof name - 1, *end = line + n;
        while (v < end && (*v == ' ' || *v == '\t'))
            v++;
        size_t vl = (size_t)(end - v);
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        if (vl > 0 && !(vl == 8 && strncasecmp(v, "identity", 8) == 0))
            p->encoded = true;
    }
    return n;
}

/* Stops a download that waits for data when we are asked to stop. */
static int stop_cb(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow)
{
    (void)ctx;
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return rx_interrupted != 0;
}

/* Sleep for d seconds, or less when asked to stop. */
static void pause_s(double d)
{
    double end = now_s() + d;
    for (double t = now_s(); t < end && !rx_interrupted; t = now_s()) {
        double step = end - t < 0.05 ? end - t : 0.05;
        struct timespec ts = {0, (long)(step * 1e9)};
        nanosleep(&ts, NULL);
    }
}

static void pipeline_release(struct pipeline *p, int tmp_fd, bool remove)
{
    nar_reader_free(p->reader);
    bool created = p->unp && nar_unpacker_created(p->unp);
    nar_unpacker_free(p->unp);
    if (remove && created)
        rm_rf_at(tmp_fd, p->job->base, NULL);
    rx_error_free(p->err);
    p->dec = NULL;
    p->reader = NULL;
    p->unp = NULL;
    p->err = NULL;
}

static const struct timespec mtime_one[2] = {{1, 0}, {1, 0}};

/* Finish a sha256 and compare it with `want`; -1 with an error naming `what` if it differs. */
static int check_hash(struct sha256_ctx *c, const struct hash *want, const char *what,
                      struct rx_error **err)
{
    struct hash h;
    sha256_final(c, &h);
    if (hash_equal(&h, want))
        return 0;
    char got[HASH_STR_MAX], exp[HASH_STR_MAX];
    hash_format(&h, HASH_NIX32, got);
    hash_format(want, HASH_NIX32, exp);
    return rx_error_set(err, RX_EHASH, "%s mismatch: expected %s, got %s", what, exp, got);
}

/* Check everything after the last byte, then move the tree into nix/store. */
static enum outcome pipeline_finish(struct pipeline *p, struct rx_error **err)
{
    struct job *j = p->job;
    if (decompressor_finish(p->dec, err) < 0 || nar_reader_finish(p->reader, err) < 0) {
        if (*err && is_local(*err))
            return OUT_LOCAL;
        if (j->has_file_size && p->fsize < j->file_size)
            rx_error_set(err, RX_ENET, "body ended after %" PRIu64 " of %" PRIu64 " bytes",
                         p->fsize, j->file_size);
        return OUT_TRANSIENT;
    }
    if (nar_unpacker_finish(p->unp, err) < 0)
        return OUT_LOCAL;
    if (j->has_file_size && p->fsize != j->file_size) {
        rx_error_set(err, RX_EHASH, "download is %" PRIu64 " bytes, but FileSize is %" PRIu64,
                     p->fsize, j->file_size);
        return OUT_PERMANENT;
    }
    if (j->has_file_hash && !j->file_is_nar && j->file_hash.algo == HASH_SHA256 &&
        check_hash(&p->fh, &j->file_hash, "FileHash", err) < 0)
        return OUT_PERMANENT;
    if (p->nsize != j->nar_size) {
        rx_error_set(err, RX_EHASH, "NAR is %" PRIu64 " bytes, but NarSize is %" PRIu64,
                     p->nsize, j->nar_size);
        return OUT_PERMANENT;
    }
    if (check_hash(&p->nh, &j->nar_hash, "NarHash", err) < 0)
        return OUT_PERMANENT;
    struct store_path sp;
    if (store_path_parse_basename(j->base, strlen(j->base), &sp, err) < 0)
        return OUT_PERMANENT;
    if (store_install(p->f->store, j->base, &sp, err) < 0)
        return OUT_LOCAL;
    /* The root was left writable so it could move; now make it canonical. */
    int sfd = store_dir_fd(p->f->store);
    struct stat st;
    if (fstatat(sfd, j->base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
        fchmodat(sfd, j->base, 0555, 0);
    utimensat(sfd, j->base, mtime_one, AT_SYMLINK_NOFOLLOW);
    return OUT_OK;
}

/* Download and unpack one NAR; decp is the thread's decompressor, kept across jobs. */
static void run_job(struct fetch *f, CURL *e, struct job *j, struct decompressor **decp)
{
    const struct fetch_opts *o = f->o;
    unsigned attempts = o->attempts ? o->attempts : FETCH_DEFAULT_ATTEMPTS;
    if (rx_interrupted) {
        j->outcome = OUT_PERMANENT;
        return;
    }
    int tmp_fd = store_tmp_fd(f->store, NULL);
    /* Parallel downloads keep the cores busy: no helper thread per NAR. */
    struct nar_unpack_opts uo = {.canonical = true, .umask = o->umask, .root_writable = true};

    rm_rf_at(tmp_fd, j->base, NULL);
    struct pipeline p = {.f = f, .job = j};
    bool resume = false, can_resume = true;
    for (unsigned attempt = 1;; attempt++) {
        if (!resume) {
            p = (struct pipeline){.f = f, .job = j};
            sha256_init(&p.fh);
            sha256_init(&p.nh);
            if (*decp ? decompressor_restart(*decp, j->compression, nar_sink, &p, &j->err) < 0
                      : !(*decp = decompressor_new(j->compression, nar_sink, &p, &j->err))) {
                j->outcome = OUT_PERMANENT;
                return;
            }
            p.dec = *decp;
            p.unp = nar_unpacker_new(tmp_fd, j->base, &uo);
            p.reader = nar_reader_new(&nar_unpack_visitor, p.unp);
        }

        char errbuf[CURL_ERROR_SIZE] = "";
        curl_easy_setopt(e, CURLOPT_URL, j->url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, body_cb);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &p);
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, &p);
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
        /* Resuming asks for the rest only; libcurl fails with CURLE_RANGE_ERROR unless
         * the server answers 206 from exactly that offset. */
        curl_easy_setopt(e, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)(resume ? p.fsize : 0));
        CURLcode rc = curl_easy_perform(e);
        long code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);

        enum outcome out;
        rx_error_clear(&j->err);
        bool transfer_error = false; /* the connection failed, not the data */
        if (p.err) {
            out = p.local_error ? OUT_LOCAL : p.content_error ? OUT_PERMANENT : OUT_TRANSIENT;
            j->err = steal_pointer(&p.err);
        } else if (rc != CURLE_OK) {
            out = classify(rc, code);
            if (out == OUT_NOT_FOUND)
                out = OUT_PERMANENT; /* the narinfo said it was there */
            char *d = describe(rc, code, errbuf);
            rx_error_set(&j->err, RX_ENET, "%s", d);
            free(d);
            transfer_error = true;
        } else {
            out = pipeline_finish(&p, &j->err);
        }
        /*
         * A connection that broke mid-body leaves the pipeline (hashes, decompressor,
         * half-written tree) exactly after the last byte received: the next attempt asks
         * for the rest with a Range request and feeds it on.  Anything else starts over.
         */
        if (rc == CURLE_RANGE_ERROR && resume) {
            /* The server cannot resume: start over at once, this attempt not counted. */
            can_resume = false;
            resume = false;
            atomic_fetch_sub(&f->bytes_done, p.counted);
            pipeline_release(&p, tmp_fd, true);
            attempt--;
            continue;
        }
        resume = can_resume && !p.encoded && out == OUT_TRANSIENT && transfer_error &&
                 p.fsize > 0 && attempt < attempts;
        if (!resume) {
            atomic_fetch_sub(&f->bytes_done, out == OUT_OK ? 0 : p.counted);
            pipeline_release(&p, tmp_fd, out != OUT_OK);
        }
        j->outcome = out;
        if (out != OUT_TRANSIENT || attempt >= attempts || rx_interrupted)
            return;
        pause_s(backoff_s(attempt));
    }
}

static void job_free(struct job *j)
{
    free(j->url);
    free(j->cache_url);
    rx_error_free(j->err);
    free(j);
}

static uint64_t job_size(const struct job *j)
{
    return j->has_file_size ? j->file_size : j->nar_size;
}

/*
 * A download that keeps a core busy for a while: much to download, or much
 * to decompress, hash and write (a NAR that compressed well also fills a
 * large decoder window).
 */
static bool job_is_big(const struct job *j)
{
    return job_size(j) >= BIG_DOWNLOAD || j->nar_size >= BIG_NAR;
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
    CURL *e = curl_easy_init();
    if (e) {
        setup_easy(e, f->o, f->share);
        /* Fewer, larger callbacks for the NAR pipeline. */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L * 1024);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, stop_cb);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
    }
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

        if (e) {
            run_job(f, e, j, &dec);
            /* Keep the decoder's memory only if a small NAR touched little of it. */
            if (j->nar_size > KEEP_DECODER_MAX) {
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
        curl_multi_wakeup(f->multi);
    }
    pthread_mutex_unlock(&f->mu);
    decompressor_free(dec);
    if (e)
        curl_easy_cleanup(e);
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
 * Downloads in all: enough to hide the latency of many small paths.
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
 * others start as jobs are queued with none idle (job_submit).
 */
static int workers_start(struct fetch *f, struct rx_error **err)
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

static void workers_stop(struct fetch *f)
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
    for (unsigned i = 0; i < f->nthreads; i++)
        pthread_join(f->threads[i], NULL);
    free(f->threads);
    f->threads = NULL;
    f->nthreads = 0;
}

static void job_submit(struct fetch *f, size_t idx)
{
    struct item *it = &f->items[idx];
    const struct cache *c = &f->o->caches[it->cache];
    struct job *j = xcalloc(1, sizeof *j);
    j->item = idx;
    j->url = cache_file_url(c, it->ni.url);
    j->cache_url = xstrdup(c->url);
    store_path_basename(&it->path, j->base);
    snprintf(j->compression, sizeof j->compression, "%s", it->ni.compression);
    j->has_file_hash = it->ni.has_file_hash;
    j->file_hash = it->ni.file_hash;
    j->has_file_size = it->ni.has_file_size;
    j->file_size = it->ni.file_size;
    j->nar_hash = it->ni.nar_hash;
    j->nar_size = it->ni.nar_size;
    /* Uncompressed, the download is the NAR: the NarHash check is the FileHash check. */
    j->file_is_nar = strcmp(j->compression, "none") == 0 && j->has_file_hash &&
                     hash_equal(&j->file_hash, &j->nar_hash);
    it->state = S_DOWNLOADING;
    pthread_mutex_lock(&f->mu);
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
}

/* Ask the next cache for an item's narinfo, or fail it when none is left. */
static void next_cache(struct fetch *f, struct item *it)
{
    it->cache++;
    it->attempt = 0;
    it->retry_at = 0;
    if (it->have_ni) {
        narinfo_release(&it->ni);
        it->have_ni = false;
    }
    while (it->cache < f->o->ncaches && !f->o->caches[it->cache].usable)
        it->cache++;
    if (it->cache < f->o->ncaches) {
        it->state = S_NEED_INFO;
        return;
    }
    fail_path(f, it, "no cache could provide it");
}

static void handle_job(struct fetch *f, struct job *j)
{
    struct item *it = &f->items[j->item];
    f->outstanding--;
    if (j->outcome == OUT_OK) {
        it->state = S_ON_DISK;
        announce_done(f, it);
        return;
    }
    if (rx_interrupted) {
        it->state = S_FAILED; /* stopped on purpose: nothing to say */
        return;
    }
    if (j->outcome == OUT_LOCAL) {
        /* No other cache can help; one such message says it all. */
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
        fail_path(f, it, msg);
        return;
    }
    item_note(it, j->cache_url, "%s: %s", j->url, j->err ? j->err->msg : "download failed");
    status_clear(f);
    if (f->o->output != FETCH_QUIET) {
        char full[STORE_PATH_MAX + 1];
        store_path_format(&it->path, full);
        fprintf(stderr, "warning: cannot download '%s' from '%s': %s\n", full, j->url,
                j->err ? j->err->msg : "download failed");
    }
    next_cache(f, it);
}

static void drain_jobs(struct fetch *f)
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

/* ---- narinfo and nix-cache-info requests (main thread, curl multi) ---- */

enum xfer_kind { X_CACHE_INFO, X_NARINFO };

struct xfer {
    enum xfer_kind kind;
    size_t idx; /* cache index or item index */
    CURL *easy;
    struct rx_buf body;
    bool too_big;
    char errbuf[CURL_ERROR_SIZE];
    /* a narinfo answered before its cache's nix-cache-info: kept for later */
    bool held;
    CURLcode rc;
    long code;
    struct xfer *prev_all, *next_all; /* every live xfer */
};

static size_t buf_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct xfer *x = ctx;
    size_t n = size * nmemb;
    if (rx_buf_append(&x->body, data, n) < 0) {
        x->too_big = true;
        return 0;
    }
    return n;
}

static void xfer_start(struct fetch *f, enum xfer_kind kind, size_t idx, const char *url)
{
    struct xfer *x = xcalloc(1, sizeof *x);
    x->kind = kind;
    x->idx = idx;
    struct rx_buf b = RX_BUF_INIT(kind == X_NARINFO ? NARINFO_MAX : CACHE_INFO_MAX);
    x->body = b;
    x->easy = curl_easy_init();
    if (!x->easy) {
        free(x);
        return;
    }
    setup_easy(x->easy, f->o, f->share);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    /*
     * Over TLS, wait for the first connection to say whether it speaks
     * HTTP/2 and can carry every request; in cleartext only HTTP/1.1 is
     * used, and waiting would only hold the second request back.
     */
    curl_easy_setopt(x->easy, CURLOPT_PIPEWAIT, strncmp(url, "https://", 8) == 0 ? 1L : 0L);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, buf_cb);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
    curl_multi_add_handle(f->multi, x->easy);
    x->next_all = f->xfers;
    if (f->xfers)
        f->xfers->prev_all = x;
    f->xfers = x;
    f->active++;
    if (kind == X_CACHE_INFO)
        f->info_active++;
}

static void xfer_free(struct fetch *f, struct xfer *x)
{
    if (!x->held) {
        curl_multi_remove_handle(f->multi, x->easy);
        f->active--;
        if (x->kind == X_CACHE_INFO)
            f->info_active--;
    }
    if (x->prev_all)
        x->prev_all->next_all = x->next_all;
    else
        f->xfers = x->next_all;
    if (x->next_all)
        x->next_all->prev_all = x->prev_all;
    curl_easy_cleanup(x->easy);
    rx_buf_release(&x->body);
    free(x);
}

static void query_start(struct fetch *f, size_t idx)
{
    struct item *it = &f->items[idx];
    char rel[STORE_HASH_LEN + 16];
    snprintf(rel, sizeof rel, "%s.narinfo", it->path.hash);
    _cleanup_free_ char *url = cache_file_url(&f->o->caches[it->cache], rel);
    it->state = S_QUERYING;
    it->attempt++;
    xfer_start(f, X_NARINFO, idx, url);
}

/* A reference found in an accepted narinfo: look it up, or queue its narinfo. */
static int add_ref(struct fetch *f, size_t referrer, const struct store_path *p,
                   struct rx_error **err)
{
    bool created;
    size_t idx = item_get(f, p, &created);
    struct item *it = &f->items[referrer];
    it->refs[it->nrefs++] = idx;
    if (!created)
        return 0;
    int v = store_is_valid(f->store, p, err);
    if (v < 0)
        return -1;
    if (v) {
        f->items[idx].state = S_VALID;
    } else {
        f->items[idx].cache = 0;
        while (f->items[idx].cache < f->o->ncaches && !f->o->caches[f->items[idx].cache].usable)
            f->items[idx].cache++;
    }
    return 0;
}

/* Try to take on an item whose narinfo was accepted. */
static int claim(struct fetch *f, size_t idx, struct rx_error **err)
{
    struct item *it = &f->items[idx];
    if (f->o->dry_run) {
        it->state = S_HAVE_INFO;
        return 0;
    }
    if (it->lock_fd < 0) {
        int r = store_lock_path(f->store, &it->path, false, &it->lock_fd, err);
        if (r < 0)
            return -1;
        if (r == 0) {
            it->state = S_FOREIGN;
            return 0;
        }
        int v = store_is_valid(f->store, &it->path, err);
        if (v != 0) {
            store_unlock_path(f->store, &it->path, it->lock_fd);
            it->lock_fd = -1;
            if (v < 0)
                return -1;
            it->state = S_VALID;
            return 0;
        }
    }
    /* Ours now; anything already there was left by a crash. */
    if (store_remove_invalid(f->store, &it->path, err) < 0)
        return -1;
    job_submit(f, idx);
    return 0;
}

static void narinfo_done(struct fetch *f, struct xfer *x, CURLcode rc, long code,
                         struct rx_error **fatal)
{
    struct item *it = &f->items[x->idx];
    const struct cache *c = &f->o->caches[it->cache];
    char full[STORE_PATH_MAX + 1];
    store_path_format(&it->path, full);
    enum outcome out = x->too_big ? OUT_PERMANENT : classify(rc, code);
    if (out == OUT_NOT_FOUND) {
        item_note(it, c->url, "not found");
        next_cache(f, it);
        return;
    }
    if (out == OUT_TRANSIENT) {
        unsigned attempts = f->o->attempts ? f->o->attempts : FETCH_DEFAULT_ATTEMPTS;
        _cleanup_free_ char *d = describe(rc, code, x->errbuf);
        if (it->attempt < attempts) {
            it->state = S_NEED_INFO;
            it->retry_at = now_s() + backoff_s(it->attempt);
            return;
        }
        item_note(it, c->url, "%s.narinfo: %s (after %u attempts)", it->path.hash, d,
                  it->attempt);
        next_cache(f, it);
        return;
    }
    if (out == OUT_PERMANENT) {
        if (x->too_big)
            item_note(it, c->url, "narinfo larger than %d bytes", NARINFO_MAX);
        else {
            _cleanup_free_ char *d = describe(rc, code, x->errbuf);
            item_note(it, c->url, "%s.narinfo: %s", it->path.hash, d);
        }
        next_cache(f, it);
        return;
    }

    struct rx_error *e = NULL;
    struct narinfo ni = NARINFO_INIT;
    if (narinfo_parse(x->body.data ? x->body.data : "", x->body.len, &ni, &e) < 0) {
        item_note(it, c->url, "invalid narinfo: %s", e->msg);
        goto refuse;
    }
    if (store_path_cmp(&ni.path, &it->path) != 0) {
        char got[STORE_PATH_MAX + 1];
        store_path_format(&ni.path, got);
        item_note(it, c->url, "narinfo is for '%s', not the path asked for", got);
        goto refuse;
    }
    if (!decompress_supported(ni.compression)) {
        item_note(it, c->url, "unsupported compression '%s'", ni.compression);
        goto refuse;
    }
    if (!f->o->no_verify && narinfo_verify(&ni, f->o->keys, &e) < 0) {
        item_note(it, c->url, "%s", e->msg);
        goto refuse;
    }
    /* Make room first: add_ref may move f->items. */
    free(it->refs);
    it->refs = ni.nrefs ? xmalloc(ni.nrefs * sizeof *it->refs) : NULL;
    it->nrefs = 0;
    it->ni = ni;
    it->have_ni = true;
    size_t idx = x->idx;
    for (size_t i = 0; i < f->items[idx].ni.nrefs; i++) {
        struct store_path r = f->items[idx].ni.refs[i];
        if (store_path_cmp(&r, &f->items[idx].path) == 0)
            continue;
        if (add_ref(f, idx, &r, fatal) < 0)
            return;
    }
    if (claim(f, idx, fatal) < 0)
        return;
    f->paths_total++;
    f->bytes_total += f->items[idx].ni.has_file_size ? f->items[idx].ni.file_size
                                                       : f->items[idx].ni.nar_size;
    return;

refuse:
    rx_error_free(e);
    narinfo_release(&ni);
    next_cache(f, it);
}

static void cache_info_done(struct fetch *f, struct xfer *x, CURLcode rc, long code)
{
    struct cache *c = &f->o->caches[x->idx];
    enum outcome out = x->too_big ? OUT_PERMANENT : classify(rc, code);
    struct rx_error *e = NULL;
    unsigned attempts = f->o->attempts ? f->o->attempts : FETCH_DEFAULT_ATTEMPTS;
    free(c->why);
    c->why = NULL;
    if (out == OUT_OK) {
        if (cache_apply_info(c, x->body.data ? x->body.data : "", x->body.len, &e) == 0) {
            c->usable = true;
            return;
        }
        c->why = xstrdup(e->msg);
        rx_error_free(e);
    } else if (out == OUT_NOT_FOUND) {
        c->why = xasprintf("'%s' does not appear to be a binary cache (no nix-cache-info)",
                           c->url);
    } else {
        _cleanup_free_ char *d = describe(rc, code, x->errbuf);
        c->why = xasprintf("cannot read '%s/nix-cache-info': %s", c->url, d);
        if (out == OUT_TRANSIENT && f->info_attempt[x->idx] < attempts)
            f->info_retry_at[x->idx] = now_s() + backoff_s(f->info_attempt[x->idx]);
    }
}

static void multi_collect(struct fetch *f, struct rx_error **fatal)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        long code = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
        if (x->kind == X_NARINFO && f->infos_pending) {
            /* Its cache is not known to be usable yet: keep it (see fetch_closure). */
            curl_multi_remove_handle(f->multi, x->easy);
            f->active--;
            x->held = true;
            x->rc = rc;
            x->code = code;
            continue;
        }
        if (x->kind == X_CACHE_INFO)
            cache_info_done(f, x, rc, code);
        else
            narinfo_done(f, x, rc, code, fatal);
        xfer_free(f, x);
    }
}

/* Hand `e` to the caller as *err (replacing what was there); returns -1. */
static int pass_error(struct rx_error *e, struct rx_error **err)
{
    rx_error_clear(err);
    if (err)
        *err = e;
    else
        rx_error_free(e);
    return -1;
}

/* Take in the narinfos that arrived before their cache's nix-cache-info. */
static int take_held(struct fetch *f, struct rx_error **err)
{
    struct rx_error *fatal = NULL;
    for (struct xfer *x = f->xfers, *next; x; x = next) {
        next = x->next_all;
        if (!x->held)
            continue;
        if (!fatal)
            narinfo_done(f, x, x->rc, x->code, &fatal);
        xfer_free(f, x);
    }
    return fatal ? pass_error(fatal, err) : 0;
}

static int multi_wait(struct fetch *f, int timeout_ms, struct rx_error **err)
{
    if (rx_interrupted)
        return rx_error_set(err, EINTR, "interrupted");
    int running;
    if (curl_multi_perform(f->multi, &running) != CURLM_OK)
        return rx_error_set(err, RX_ENET, "libcurl multi interface failed");
    /* A transfer finished already: collect it before waiting for more. */
    if ((unsigned)running < f->active)
        return 0;
    if (curl_multi_poll(f->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK ||
        curl_multi_perform(f->multi, &running) != CURLM_OK)
        return rx_error_set(err, RX_ENET, "libcurl multi interface failed");
    return 0;
}

static int load_cache_infos(struct fetch *f, struct rx_error **err)
{
    const struct fetch_opts *o = f->o;
    f->info_attempt = xcalloc(o->ncaches, sizeof *f->info_attempt);
    f->info_retry_at = xcalloc(o->ncaches, sizeof *f->info_retry_at);
    for (size_t i = 0; i < o->ncaches; i++)
        f->info_retry_at[i] = o->caches[i].usable || o->caches[i].why ? -1 : 0;
    for (;;) {
        /* Start what is due; a transient failure sets a retry time. */
        double t = now_s(), next = -1;
        for (size_t i = 0; i < o->ncaches; i++) {
            if (f->info_retry_at[i] < 0)
                continue;
            if (f->info_retry_at[i] > t) {
                next = next < 0 || f->info_retry_at[i] < next ? f->info_retry_at[i] : next;
                continue;
            }
            f->info_retry_at[i] = -1;
            f->info_attempt[i]++;
            _cleanup_free_ char *url = cache_file_url(&o->caches[i], "nix-cache-info");
            xfer_start(f, X_CACHE_INFO, i, url);
        }
        if (f->info_active == 0 && next < 0)
            break;
        int timeout = 1000;
        if (next >= 0 && f->info_active == 0)
            timeout = (int)((next - t) * 1000) + 1;
        if (multi_wait(f, timeout, err) < 0)
            return -1;
        multi_collect(f, NULL);
    }
    cache_sort(o->caches, o->ncaches);
    size_t usable = 0;
    for (size_t i = 0; i < o->ncaches; i++) {
        if (o->caches[i].usable) {
            usable++;
        } else if (o->output != FETCH_QUIET) {
            status_clear(f);
            fprintf(stderr, "warning: not using cache: %s\n", o->caches[i].why);
        }
    }
    if (usable == 0) {
        struct rx_buf b = RX_BUF_INIT(SIZE_MAX / 2);
        for (size_t i = 0; i < o->ncaches; i++) {
            _cleanup_free_ char *l = xasprintf("\n  %s", o->caches[i].why);
            if (rx_buf_append(&b, l, strlen(l)) < 0)
                break;
        }
        rx_error_set(err, RX_ENOTFOUND, "no usable binary cache%s",
                     o->ncaches ? b.data : " is configured (use --cache URL)");
        rx_buf_release(&b);
        return -1;
    }
    return 0;
}

static int register_ready(struct fetch *f, struct rx_error **err);

/*
 * Register what is ready every REGISTER_EVERY_S, not only at the end: a
 * run that is interrupted keeps what it has fetched so far, and other
 * processes waiting for those paths go on.  Each batch is closed under
 * references (a path goes in only with or after all it references).
 */
static int register_some(struct fetch *f, double now, struct rx_error **err)
{
    if (now - f->registered_at < REGISTER_EVERY_S)
        return 0;
    f->registered_at = now;
    return register_ready(f, err);
}

/* Walk the closure and download, until nothing is in flight. */
static int walk(struct fetch *f, struct rx_error **err)
{
    struct rx_error *fatal = NULL;
    for (;;) {
        double t = now_s();
        double next_retry = -1;
        bool waiting = false;
        for (size_t i = 0; i < f->nitems && !f->aborting; i++) {
            struct item *it = &f->items[i];
            if (it->state != S_NEED_INFO)
                continue;
            waiting = true;
            if (it->retry_at > t) {
                if (next_retry < 0 || it->retry_at < next_retry)
                    next_retry = it->retry_at;
                continue;
            }
            if (f->active >= MAX_ACTIVE_QUERIES)
                break;
            if (it->cache >= f->o->ncaches) {
                fail_path(f, it, "no cache could provide it");
                continue;
            }
            query_start(f, i);
        }
        drain_jobs(f);
        if (register_some(f, t, err) < 0)
            return -1;
        if (f->active == 0 && f->outstanding == 0 && (!waiting || f->aborting)) {
            /* Everything has settled, unless a job finished just now. */
            drain_jobs(f);
            bool again = false;
            for (size_t i = 0; i < f->nitems && !f->aborting; i++)
                again |= f->items[i].state == S_NEED_INFO;
            if (!again)
                return 0;
            continue;
        }
        int timeout = TICK_MS;
        if (next_retry >= 0 && f->active == 0) {
            double d = (next_retry - t) * 1000;
            timeout = d < 1 ? 1 : d < TICK_MS ? (int)d : TICK_MS;
        }
        if (multi_wait(f, timeout, err) < 0)
            return -1;
        multi_collect(f, &fatal);
        if (fatal)
            return pass_error(fatal, err);
        status_tick(f, false);
    }
}

/* ---- registration ---- */

static bool refs_valid(const struct fetch *f, const struct item *it, const bool *in_batch)
{
    for (size_t k = 0; k < it->nrefs; k++) {
        size_t r = it->refs[k];
        if (f->items[r].state != S_VALID && !(in_batch && in_batch[r]))
            return false;
    }
    return true;
}

/* Register every path of ours whose references are (or become) valid. */
static int register_ready(struct fetch *f, struct rx_error **err)
{
    bool *in = xcalloc(f->nitems, sizeof *in);
    size_t n = 0;
    for (bool changed = true; changed;) {
        changed = false;
        for (size_t i = 0; i < f->nitems; i++) {
            if (f->items[i].state == S_ON_DISK && !in[i] && refs_valid(f, &f->items[i], in)) {
                in[i] = true;
                n++;
                changed = true;
            }
        }
    }
    if (n == 0) {
        free(in);
        return 0;
    }
    struct store_info *infos = xcalloc(n, sizeof *infos);
    size_t k = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        if (!in[i])
            continue;
        const struct narinfo *ni = &f->items[i].ni;
        struct store_info *si = &infos[k++];
        si->path = ni->path;
        si->nar_hash = ni->nar_hash;
        si->nar_size = ni->nar_size;
        si->refs = ni->refs;
        si->nrefs = ni->nrefs;
        si->deriver = ni->has_deriver ? &ni->deriver : NULL;
        si->sigs = (const char *const *)ni->sigs;
        si->nsigs = ni->nsigs;
        si->ca = ni->ca;
    }
    int r = store_register(f->store, infos, n, err);
    free(infos);
    if (r == 0) {
        for (size_t i = 0; i < f->nitems; i++) {
            if (!in[i])
                continue;
            f->items[i].state = S_VALID;
            store_unlock_path(f->store, &f->items[i].path, f->items[i].lock_fd);
            f->items[i].lock_fd = -1;
        }
    }
    free(in);
    return r;
}

/* Wait for the paths other processes are fetching; fetch those they dropped. */
static int settle(struct fetch *f, struct rx_error **err)
{
    for (;;) {
        if (register_ready(f, err) < 0)
            return -1;
        if (f->aborting)
            return 0;
        size_t pick = SIZE_MAX;
        for (size_t i = 0; i < f->nitems && pick == SIZE_MAX; i++)
            if (f->items[i].state == S_FOREIGN && refs_valid(f, &f->items[i], NULL))
                pick = i;
        if (pick == SIZE_MAX)
            return 0;
        struct item *it = &f->items[pick];
        status_clear(f);
        int r = store_lock_path(f->store, &it->path, true, &it->lock_fd, err);
        if (r < 0)
            return -1;
        int v = store_is_valid(f->store, &it->path, err);
        if (v != 0) {
            store_unlock_path(f->store, &it->path, it->lock_fd);
            it->lock_fd = -1;
            if (v < 0)
                return -1;
            it->state = S_VALID;
            announce_done(f, it);
            continue;
        }
        /* Its fetcher gave up or died: fetch it ourselves. */
        if (claim(f, pick, err) < 0 || walk(f, err) < 0)
            return -1;
    }
}

static void release_all(struct fetch *f)
{
    for (size_t i = 0; i < f->nitems; i++) {
        struct item *it = &f->items[i];
        if (it->lock_fd >= 0) {
            /* Never leave an unregistered path behind. */
            if (it->state == S_ON_DISK)
                store_remove_invalid(f->store, &it->path, NULL);
            store_unlock_path(f->store, &it->path, it->lock_fd);
        }
        if (it->have_ni)
            narinfo_release(&it->ni);
        free(it->refs);
        rx_buf_release(&it->why);
    }
    free(f->items);
    free(f->table);
}

static void print_dry_run(struct fetch *f)
{
    FILE *out = f->o->out ? f->o->out : stdout;
    uint64_t dl = 0, nar = 0;
    size_t n = 0;
    for (size_t i = 0; i < f->nitems; i++) {
        const struct item *it = &f->items[i];
        if (it->state != S_HAVE_INFO)
            continue;
        n++;
        dl += it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size;
        nar += it->ni.nar_size;
    }
    char a[32], b[32];
    fmt_size(dl, a, sizeof a);
    fmt_size(nar, b, sizeof b);
    fprintf(out, "%zu path%s to fetch (%s download, %s unpacked)%s\n", n, n == 1 ? "" : "s", a,
            b, n ? ":" : "");
    for (size_t i = 0; i < f->nitems; i++) {
        const struct item *it = &f->items[i];
        if (it->state != S_HAVE_INFO)
            continue;
        char full[STORE_PATH_MAX + 1];
        store_path_format(&it->path, full);
        fmt_size(it->ni.has_file_size ? it->ni.file_size : it->ni.nar_size, a, sizeof a);
        fmt_size(it->ni.nar_size, b, sizeof b);
        fprintf(out, "  %s  (%s, %s unpacked, from %s)\n", full, a, b,
                f->o->caches[it->cache].url);
    }
}

int fetch_closure(struct store *s, const struct fetch_opts *o, const struct store_path *paths,
                  size_t n, struct rx_error **err)
{
    struct fetch f = {.store = s, .o = o};
    struct rx_buf fb = RX_BUF_INIT(1024 * 1024);
    f.failures = fb;
    int ret = -1;

    size_t todo = 0;
    for (size_t i = 0; i < n; i++) {
        bool created;
        size_t idx = item_get(&f, &paths[i], &created);
        f.items[idx].top = true;
        if (!created)
            continue;
        int v = store_is_valid(s, &paths[i], err);
        if (v < 0)
            goto out_items;
        if (v)
            f.items[idx].state = S_VALID;
        else
            todo++;
    }
    if (todo == 0) {
        if (o->dry_run)
            print_dry_run(&f);
        ret = 0;
        goto out_items;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rx_error_set(err, ENOMEM, "cannot initialise libcurl");
        goto out_items;
    }
    share_start(&f);
    f.multi = curl_multi_init();
    unsigned conns = o->http_connections ? o->http_connections : FETCH_DEFAULT_CONNECTIONS;
    curl_multi_setopt(f.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(f.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cond, NULL);
    f.started = now_s();

    if (o->no_verify && o->output != FETCH_QUIET)
        fprintf(stderr, "warning: signatures are NOT checked (--insecure-no-verify): a cache "
                        "or anyone between you and it can put any file in your store\n");
    /*
     * With a single cache, ask for the top-level narinfos while its
     * nix-cache-info is on the way, saving a round trip; the answers are
     * taken in only once the cache is known to be usable.  (With several,
     * which to ask first depends on their priorities.)
     */
    if (o->ncaches == 1) {
        f.infos_pending = true;
        for (size_t i = 0; i < f.nitems; i++)
            if (f.items[i].state == S_NEED_INFO)
                query_start(&f, i);
    }
    if (load_cache_infos(&f, err) < 0)
        goto out;
    f.infos_pending = false;
    for (size_t i = 0; i < f.nitems; i++) {
        struct item *it = &f.items[i];
        while (it->state == S_NEED_INFO && it->cache < o->ncaches && !o->caches[it->cache].usable)
            it->cache++;
    }
    if (!o->dry_run) {
        if (store_tmp_fd(s, err) < 0 || store_clean_leftovers(s, err) < 0)
            goto out;
        if (workers_start(&f, err) < 0)
            goto out;
    }
    if (take_held(&f, err) < 0 || walk(&f, err) < 0)
        goto out;
    if (o->dry_run) {
        status_clear(&f);
        if (!f.aborting)
            print_dry_run(&f);
    } else if (settle(&f, err) < 0) {
        goto out;
    }
    if (f.aborting) {
        rx_error_set(err, RX_ENOTFOUND, "%s", f.failures.data);
        goto out;
    }
    if (!o->dry_run) {
        for (size_t i = 0; i < f.nitems; i++) {
            const struct item *it = &f.items[i];
            if (it->state != S_VALID) {
                char full[STORE_PATH_MAX + 1];
                store_path_format(&it->path, full);
                if (it->state == S_ON_DISK)
                    /* Downloaded and checked, but its references never all became valid. */
                    rx_error_set(err, RX_EFORMAT,
                                 "cannot register '%s': its references lead back to it, a "
                                 "cycle that no Nix store can hold; the narinfos of '%s' are "
                                 "wrong",
                                 full, o->caches[it->cache].url);
                else
                    rx_error_set(err, RX_EFORMAT, "internal error: '%s' was left unfinished",
                                 full);
                goto out;
            }
        }
    }
    ret = 0;
out:
    if (f.threads) {
        /* Let running downloads finish; their paths are removed below. */
        if (ret < 0)
            f.aborting = true; /* and start no more */
        workers_stop(&f);
        drain_jobs(&f);
        if (ret < 0)
            register_ready(&f, NULL);
    }
    status_clear(&f);
    if (ret < 0 && rx_interrupted && !o->dry_run)
        rx_error_set(err, EINTR, "interrupted; the paths fetched so far are kept in %s",
                     store_root(s));
    /* Requests still in flight or held (after an error). */
    while (f.xfers)
        xfer_free(&f, f.xfers);
    curl_multi_cleanup(f.multi);
    share_end(&f);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.cond);
out_items:
    release_all(&f);
    free(f.info_attempt);
    free(f.info_retry_at);
    rx_buf_release(&f.failures);
    return ret;
}
