/* The fetcher's shared state and the calls between its parts (fetch*.c). */
#pragma once

/*
 * Private to src/substituter/fetch*.c and the unit test of the NAR
 * pipeline, which define RUNIX_FETCH_INTERNAL first; everyone else uses
 * fetch.h.  No libcurl type appears here: only fetch-http.c uses libcurl.
 */
#ifndef RUNIX_FETCH_INTERNAL
#error "fetch-internal.h is private to src/substituter/fetch*.c; include fetch.h"
#endif

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto-hash.h"
#include "fetch.h"
#include "narinfo.h"
#include "nar-unpack.h"
#include "store-path.h"
#include "util-buf.h"
#include "util-error.h"

#define MAX_ACTIVE_QUERIES 64
#define CACHE_INFO_MAX (64 * 1024)
#define TICK_MS 200
#define REGISTER_EVERY_S 0.25
#define MAX_WORKERS 32
#define BIG_DOWNLOAD (1024 * 1024)
#define BIG_NAR (8 * 1024 * 1024)
#define KEEP_DECODER_MAX (1024 * 1024) /* NarSize */
/*
 * Path locks held at once (one fd each): paths are locked as they can be
 * downloaded, in the closure's order (fetch_claim_ready), and unlocked as
 * they are registered, so a closure of any size fits in the usual 1,024
 * fds.
 */
#define LOCKS_MAX 256

/* ---- outcome of one request ---- */

enum outcome {
    OUT_OK,
    OUT_NOT_FOUND, /* 404, 410, 401, 403, 407, missing file: ask the next cache */
    OUT_TRANSIENT, /* retry here after a pause */
    OUT_PERMANENT, /* give up on this cache for this path */
    OUT_LOCAL,     /* writing to the store failed (no space, I/O error): stop */
};

/* ---- items: the paths of the closure (fetch-items.c) ---- */

enum item_state {
    S_VALID,       /* in the store already, or registered by us */
    S_NEED_INFO,   /* narinfo to be asked for (at retry_at) */
    S_QUERYING,    /* narinfo request in flight */
    S_HAVE_INFO,   /* narinfo accepted, not locked yet (for ever in a dry run) */
    S_DOWNLOADING, /* ours, locked, with a download thread */
    S_FOREIGN,     /* another process holds its lock */
    S_ON_DISK,     /* ours, in nix/store, not yet registered */
    S_FAILED,      /* no cache could provide it (nor, then, what needs it) */
};

struct item {
    struct store_path path;
    enum item_state state;
    bool top;
    bool have_ni;
    struct narinfo ni;
    size_t cache;     /* index of the cache being asked / the narinfo's cache */
    unsigned attempt; /* of the current request on that cache */
    double retry_at;
    int lock_fd;
    bool waited_for;   /* fetch_report_waiting() said so already */
    struct rx_buf why; /* "cache: reason" lines, for the final error */
    size_t *refs;      /* item indices of the references, self excluded */
    size_t nrefs;
};

/* ---- the NAR pipeline (fetch-nar.c) ---- */

/* What a narinfo promises about its NAR; every field is checked. */
struct nar_expect {
    char compression[16];
    bool has_file_hash, has_file_size;
    bool file_is_nar; /* uncompressed, with FileHash = NarHash: one hash checks both */
    struct hash file_hash;
    uint64_t file_size;
    struct hash nar_hash;
    uint64_t nar_size;
};

/*
 * Compressed bytes in, a checked tree out: FileHash/FileSize ->
 * decompression -> NarHash/NarSize -> NAR unpack into dir_fd/name.  It
 * knows nothing of the network; the download threads and the unit tests
 * feed it.  The struct must not move between start and release.
 */
struct nar_pipeline {
    const struct nar_expect *want;
    int dir_fd;
    const char *name;
    struct sha256_ctx fh, nh;
    uint64_t fsize, nsize; /* compressed and NAR bytes taken so far */
    uint64_t nar_end;      /* fsize when the NAR's last byte came out */
    struct decompressor *dec;
    struct nar_reader *reader;
    struct nar_unpacker *unp;
    struct rx_error *err; /* the first failure, owned */
    bool content_error;   /* the data was wrong, not short */
    bool local_error;     /* the store could not take it (errno) */
    bool complete;        /* the whole NAR came out and only padding followed: stop */
};

/*
 * Start a pipeline unpacking to dir_fd/name (which must not exist).  *decp
 * is reused when set (a thread keeps one across NARs), else created there;
 * either way the caller frees it.  -1 with err when the compression cannot
 * be decoded.
 */
int nar_pipeline_start(struct nar_pipeline *p, const struct nar_expect *want, int dir_fd,
                       const char *name, const struct nar_unpack_opts *uo,
                       struct decompressor **decp, struct rx_error **err);

/*
 * Take the next compressed bytes.  -1 once anything is wrong; p->err then
 * says what and nar_pipeline_outcome() whose fault it is.  Without a
 * FileSize, the download may not exceed NarSize by more than a margin, and
 * once the NAR is complete only a short trailer may follow: past that,
 * p->complete is set and the caller stops downloading (padding, such as xz
 * stream padding or zstd skippable frames, could go on forever).
 */
int nar_pipeline_feed(struct nar_pipeline *p, const void *data, size_t len);

/* Why a failed feed failed: OUT_LOCAL, OUT_PERMANENT (bad data) or OUT_TRANSIENT. */
enum outcome nar_pipeline_outcome(const struct nar_pipeline *p);

/*
 * After the last byte: check that the streams ended and every size and
 * hash matched (after p->complete stopped a download, only the NAR's: the
 * compressed stream has not ended, and there is no FileSize).  OUT_OK leaves a verified tree at dir_fd/name; otherwise
 * err names what failed.
 */
enum outcome nar_pipeline_finish(struct nar_pipeline *p, struct rx_error **err);

/* Free the pipeline (not the decompressor); `remove` deletes what it unpacked. */
void nar_pipeline_release(struct nar_pipeline *p, bool remove);

/* ---- download jobs, run by worker threads (fetch-pool.c) ---- */

struct job {
    struct job *next;
    size_t item;
    char *url;       /* owned */
    char *cache_url; /* owned, for messages */
    char base[STORE_BASENAME_MAX + 1];
    struct nar_expect want;
    /* result */
    enum outcome outcome;
    struct rx_error *err;
};

/* ---- the whole fetch ---- */

struct fetch_http; /* fetch-http.c */

struct fetch {
    struct store *store;
    const struct fetch_opts *o;
    const struct fetch_events *ev; /* never NULL; callbacks may be */
    struct item *items;
    size_t nitems, cap;
    size_t *table; /* open addressing on the hash part; SIZE_MAX = empty */
    size_t table_cap;

    struct fetch_http *http; /* NULL until fetch_http_start */
    unsigned active;         /* requests in flight */
    unsigned info_active;    /* nix-cache-info requests among `active` */
    bool infos_pending;      /* nix-cache-info not all in yet: hold narinfos */
    bool info_trailing;      /* the embedded cache's nix-cache-info not in yet: register nothing */
    bool aborting;
    bool local_failed;      /* the store itself failed; said once */
    struct rx_buf failures; /* the paths that failed, and why */
    size_t kept;            /* paths this fetch registered */

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
    double registered_at; /* when fetch_register_some last ran */

    /* nix-cache-info requests, per cache */
    unsigned *info_attempt;
    double *info_retry_at; /* < 0: not due */
};

/* fetch-items.c */
size_t fetch_item_get(struct fetch *f, const struct store_path *p, bool *created);
void fetch_item_note(struct item *it, const char *cache, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/*
 * No cache can provide it: S_FAILED, unlocked, and the reason added to
 * f->failures.  The fetch goes on: whatever does not need the path is still
 * fetched and kept; what needs it is never registered.
 */
void fetch_fail_path(struct fetch *f, struct item *it, const char *summary);
/*
 * With the item's lock held: has another process made it valid meanwhile?
 * Then it is unlocked and S_VALID, and 1 is returned; 0 if not, -1 on error.
 */
int fetch_item_unlock_if_valid(struct fetch *f, struct item *it, struct rx_error **err);
void fetch_items_release(struct fetch *f);

/* fetch-progress.c: the events, as fetch.h describes them */
void fetch_progress_tick(struct fetch *f, bool force);
/* A path of ours is downloaded (progress only). */
void fetch_count_done(struct fetch *f);
/* A path of ours starts downloading: events->path_started. */
void fetch_announce_start(struct fetch *f, const struct item *it);
/* A path is registered now, by us or another process: events->path_done. */
void fetch_announce_done(struct fetch *f, const struct item *it);
void fetch_warn(struct fetch *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning about a weakened check, which even a quiet reporter shows. */
void fetch_warn_security(struct fetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void fetch_report_waiting(struct fetch *f, const struct item *it);
/* Nothing has come from cache_url for a while; the oldest request is `secs` old. */
void fetch_report_cache_wait(struct fetch *f, const char *cache_url, unsigned secs);
void fetch_report_plan(struct fetch *f);

/* ---- fetch-http.c: the only libcurl user ---- */

double fetch_now_s(void);
double fetch_backoff_s(unsigned attempt);
void fetch_pause_s(double d);

/* libcurl, the shared DNS/TLS cache and the multi handle; -1 with err. */
int fetch_http_start(struct fetch *f, struct rx_error **err);
/* Drop the requests still in flight or held, then the handles. */
void fetch_http_end(struct fetch *f);

/* A finished narinfo or nix-cache-info request, as the walk sees it. */
struct http_reply {
    enum outcome outcome; /* OUT_PERMANENT when the body was over its cap */
    bool too_big;
    const char *body; /* what arrived, not NUL-terminated; never NULL */
    size_t len;
    const char *why; /* the failure in words, unless OUT_OK or OUT_NOT_FOUND */
};

enum fetch_request { REQ_CACHE_INFO, REQ_NARINFO };
/* Ask for url on the multi handle; idx is the cache (REQ_CACHE_INFO) or item index. */
void fetch_http_request(struct fetch *f, enum fetch_request kind, size_t idx, const char *url);
/* Wait up to timeout_ms for a request to progress; -1 with err when interrupted. */
int fetch_http_wait(struct fetch *f, int timeout_ms, struct rx_error **err);
/* Hand every finished request to the walk (narinfos held while f->infos_pending). */
void fetch_http_collect(struct fetch *f, struct rx_error **fatal);
/* Take in the narinfos that arrived before their cache's nix-cache-info. */
int fetch_http_take_held(struct fetch *f, struct rx_error **err);
/* Let download threads waiting for a connection go on without one (they are being stopped). */
void fetch_http_stop_waiting(struct fetch *f);
/* Make fetch_http_wait return (from a download thread: a job is done). */
void fetch_http_wakeup(struct fetch *f);

/* One download thread's connection, kept from one NAR to the next. */
struct fetch_http_conn;
struct fetch_http_conn *fetch_http_conn_new(struct fetch *f);
void fetch_http_conn_free(struct fetch_http_conn *c);

/* Receives the body; false stops the transfer. */
typedef bool (*fetch_body_fn)(void *ctx, const void *data, size_t len);

struct http_get_result {
    enum outcome outcome; /* of the transfer: OUT_OK when the body ended normally */
    bool range_refused;   /* asked to resume, the server did not answer from there */
    bool encoded;         /* sent with a Content-Encoding: byte offsets are not ours */
    char *why;            /* owned; the failure in words, unless OUT_OK */
};

/* GET url from byte `from` on, handing the body to fn; res is filled. */
void fetch_http_get(struct fetch_http_conn *c, const char *url, uint64_t from, fetch_body_fn fn,
                    void *ctx, struct http_get_result *res);

/* ---- fetch-walk.c ---- */

void fetch_query_start(struct fetch *f, size_t idx);
/* Does a distributable embed the narinfo of item idx (fetch_opts.embedded)? */
bool fetch_has_embedded(const struct fetch *f, size_t idx);
void fetch_next_cache(struct fetch *f, struct item *it);
int fetch_claim(struct fetch *f, size_t idx, struct rx_error **err);
/*
 * Lock and start downloading the paths whose narinfo is in and whose
 * references are each valid or locked by us for download (so that what we
 * lock never waits for another process, and registers as soon as its
 * downloads are done), at most LOCKS_MAX at once.  With `foreign`, also
 * try (without waiting) the locks of paths other processes held until
 * now.  Returns how many items it moved on (claimed or found valid), -1
 * with err.
 */
int fetch_claim_ready(struct fetch *f, bool foreign, struct rx_error **err);
/*
 * Re-read the database for every path another process holds: those it
 * registered become valid.  Then fetch_claim_ready(f, true).  Returns
 * what that returns.
 */
int fetch_poll_foreign(struct fetch *f, struct rx_error **err);
void fetch_narinfo_done(struct fetch *f, size_t idx, const struct http_reply *r,
                        struct rx_error **fatal);
void fetch_cache_info_done(struct fetch *f, size_t cache, const struct http_reply *r);
int fetch_load_cache_infos(struct fetch *f, struct rx_error **err);
/* Ask for the only cache's nix-cache-info without waiting (f->info_trailing until it is in). */
void fetch_follow_info_start(struct fetch *f);
int fetch_walk(struct fetch *f, struct rx_error **err);
int fetch_pass_error(struct rx_error *e, struct rx_error **err);

/* ---- fetch-pool.c ---- */

int fetch_workers_start(struct fetch *f, struct rx_error **err);
void fetch_workers_stop(struct fetch *f);
void fetch_job_submit(struct fetch *f, size_t idx);
void fetch_drain_jobs(struct fetch *f);

/* ---- fetch-register.c ---- */

bool fetch_refs_valid(const struct fetch *f, const struct item *it, const bool *in_batch);
int fetch_register_ready(struct fetch *f, struct rx_error **err);
int fetch_register_some(struct fetch *f, double now, struct rx_error **err);
